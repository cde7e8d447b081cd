// Console entry point: hash routing between the views (#/live, #/history,
// #/logs, #/login), the Ring account pill and the re-authentication banner.

import { auth } from "./api.js";
import { h } from "./ui.js";
import { initLive, showLive, hideLive } from "./live.js";
import { initHistory, showHistory } from "./history.js";
import { initLogs, showLogs } from "./logs.js";

const VIEWS = ["live", "history", "logs", "login"];
const AUTH_POLL_MS = 30000;
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
}

function renderAuth(st) {
  const p = $("auth-pill");
  const banner = $("banner");
  if (st.state === "authenticated") {
    p.textContent = "Ring connected";
    p.className = "pill ok";
    p.title = "The Ring account is signed in";
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
      h("a", { class: "btn small", href: "#/login", id: "banner-login" }, "How to sign in"),
    );
    banner.hidden = false;
  } else {
    banner.hidden = true;
    banner.replaceChildren();
  }
}

function start() {
  initLive();
  initHistory();
  initLogs();
  auth.onChange(renderAuth);
  renderAuth(auth.current);
  auth.check();
  setInterval(() => auth.check(), AUTH_POLL_MS);
  window.addEventListener("hashchange", route);
  route();
}

start();
