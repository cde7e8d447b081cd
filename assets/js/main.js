// Console entry point: hash routing between the views (#/live, #/history,
// #/logs, #/login), the Ring account pill, the push pill (from /healthz), the
// re-authentication banner and the banner for parts that cannot work
// (GStreamer elements missing, /healthz `degraded`).

import { auth, getJson } from "./api.js";
import { h } from "./ui.js";
import { initLive, showLive, hideLive } from "./live.js";
import { initHistory, showHistory } from "./history.js";
import { initLogs, showLogs } from "./logs.js";
import { initLogin, showLogin, hideLogin } from "./login.js";

const VIEWS = ["live", "history", "logs", "login"];
const AUTH_POLL_MS = 30000;
const PUSH_POLL_MS = 30000;
const PUSH_POLL_UNSETTLED_MS = 5000;
const $ = (id) => document.getElementById(id);

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const view = VIEWS.includes(name) ? name : "live";
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${view === "login" ? "Sign in" : view[0].toUpperCase() + view.slice(1)} · ring-bridge`;
  if (view === "live") showLive();
  else hideLive();
  if (view === "history") showHistory();
  if (view === "logs") showLogs();
  if (view === "login") showLogin();
  else hideLogin();
}

function renderAuth(st) {
  const p = $("auth-pill");
  const banner = $("banner");
  const who = st.account ? ` as ${st.account.email}` : "";
  if (st.mode === "demo") {
    p.textContent = "Demo mode";
    p.className = "pill accent";
    p.title = "Running on the built-in Ring simulator; sign in to connect your Ring account";
  } else if (st.state === "authenticated") {
    p.textContent = "Ring connected";
    p.className = "pill ok";
    p.title = `The Ring account is signed in${who}`;
  } else if (st.state === "reauth_required") {
    p.textContent = "Sign-in needed";
    p.className = "pill danger";
    p.title = st.reason || "Ring asks for a new sign-in";
  } else {
    p.textContent = st.unreachable ? "ring-bridge unreachable" : "Ring: checking…";
    p.className = st.unreachable ? "pill danger" : "pill muted";
    p.title = st.reason || "";
  }
  if (st.state === "reauth_required") {
    banner.replaceChildren(
      h("strong", {}, "Ring needs you to sign in again."),
      h("span", {}, st.reason ? `${st.reason}. ` : ""),
      h("span", {}, "Live view, history and snapshots stop working until then."),
      h("a", { class: "btn small", href: "#/login", id: "banner-login" }, "Sign in"),
    );
    banner.hidden = false;
  } else {
    banner.hidden = true;
    banner.replaceChildren();
  }
}

/** The banner for what /healthz lists under `degraded`: each part, what it breaks, and the packages to install. */
function renderDegraded(degraded) {
  const banner = $("degraded-banner");
  if (!degraded.length) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  banner.replaceChildren(
    h("strong", {}, "Some parts cannot work on this installation."),
    ...degraded.map((d) => {
      const pkgs = [...new Set(d.missing.map((m) => m.package))].join(", ");
      const elems = d.missing.map((m) => m.element).join(", ");
      return h("span", { class: "degraded-part" },
        `${d.breaks[0].toUpperCase()}${d.breaks.slice(1)}: GStreamer ${elems} missing (install ${pkgs}). `);
    }),
  );
  banner.hidden = false;
}

/** The push pill: push health as the watchdog sees it (`push` of /healthz). */
function renderPush(push) {
  const p = $("push-pill");
  const counts = `${push.missed_events} event(s) missed, ${push.reregistrations} re-registration(s)`;
  if (push.state === "degraded") {
    p.textContent = "Push degraded";
    p.className = "pill danger";
    p.title = `Ring stopped pushing events that polling found; re-registering (${counts})`;
  } else if (push.state === "connected") {
    p.textContent = "Push OK";
    p.className = "pill ok";
    p.title = `Ring push notifications arrive (${counts})`;
  } else {
    p.textContent = `Push ${push.state}`;
    p.className = push.state === "unavailable" ? "pill warn" : "pill muted";
    p.title = push.last_error || "Motion and dings come from history polling meanwhile";
  }
  p.hidden = false;
}

/**
 * Reads /healthz for the push pill and the degraded banner. Polls every 30 s
 * while push is connected, every 5 s otherwise.
 */
async function refreshHealth() {
  let health = null;
  try {
    health = await getJson("healthz", { timeoutMs: 10000 });
  } catch {
    // Unreachable: the account pill says so.
  }
  const push = health && health.push;
  setTimeout(refreshHealth, push && push.state === "connected" ? PUSH_POLL_MS : PUSH_POLL_UNSETTLED_MS);
  if (!health) return;
  renderDegraded(health.degraded || []);
  if (push) renderPush(push);
}

function start() {
  initLive();
  initHistory();
  initLogs();
  initLogin();
  auth.onChange(renderAuth);
  renderAuth(auth.current);
  auth.check();
  setInterval(() => auth.check(), AUTH_POLL_MS);
  refreshHealth();
  window.addEventListener("hashchange", route);
  route();
}

start();
