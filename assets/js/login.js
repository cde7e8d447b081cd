// The sign-in page (#/login): links a Ring account with e-mail + password, then
// the 2FA code Ring sends; shows the linked account and unlinks it. Talks to
// api/auth (docs/API.md). After a login or unlink ring-bridge restarts itself
// with the new account; the page waits for that and then shows the result.
//
// The password lives only in this module while the code step is open and is
// dropped on success, on "Start over" and when the page is left.

import { auth, getJson, postJson } from "./api.js";
import { h, show, stateLoading, stateError } from "./ui.js";

const $ = (id) => document.getElementById(id);
const RESTART_WAIT_MS = 60000;

/** {email, password} between the password step and the code step. */
let pending = null;
/** The form is open although an account is linked ("another account"). */
let switching = false;
let busy = false;

const MODE_LABEL = { ring: "Ring", simulator: "Ring simulator", demo: "demo mode" };

function setError(text) {
  const el = $("login-error");
  el.textContent = text || "";
  el.hidden = !text;
}

function setBusy(on, label) {
  busy = on;
  const btn = $("login-submit");
  btn.disabled = on;
  if (label) btn.textContent = label;
  for (const id of ["login-email", "login-password", "login-code"]) $(id).disabled = on;
}

function resetForm() {
  pending = null;
  $("login-password").value = "";
  $("login-code").value = "";
  $("login-step-password").hidden = false;
  $("login-step-code").hidden = true;
  $("login-cancel").hidden = true;
  $("login-submit").textContent = "Sign in";
  setError("");
}

function accountText(st) {
  const a = st.account;
  if (!a) return "a Ring account";
  return a.name ? `${a.name} (${a.email})` : a.email;
}

/** Renders the page for an api/auth answer. */
function render(st) {
  const note = [];
  if (st.mode === "demo") {
    note.push(h("p", { class: "notice", id: "login-demo" },
      "Demo mode: ring-bridge runs on its built-in Ring simulator. Sign in to connect your Ring account."));
  }
  if (st.linked && st.state === "reauth_required") {
    note.push(h("p", { class: "notice", id: "login-reauth" },
      `Ring asks you to sign in again${st.reason ? `: ${st.reason}` : ""}.`));
  }
  if (st.login_target === "simulator") {
    note.push(h("p", { class: "hint" }, "Sign-ins go to the Ring simulator (RING_SIMULATOR_URL)."));
  }
  show($("login-state"), note);

  const linked = Boolean(st.linked);
  $("login-linked").hidden = !linked;
  if (linked) {
    $("login-account").textContent = accountText(st);
    $("login-mode").textContent = MODE_LABEL[st.mode] || st.mode;
    $("login-source").textContent = st.token_source === "environment"
      ? "The token comes from RING_REFRESH_TOKEN (or ring.refresh_token in the config file): " +
        "to unlink, remove it there and restart ring-bridge."
      : "The refresh token is saved in ring-bridge's state directory.";
    $("login-unlink-box").hidden = !st.can_unlink;
  }
  $("login-unlink-confirm").hidden = true;
  $("login-unlink").hidden = false;
  const formOpen = !linked || switching || st.state === "reauth_required";
  $("login-form").hidden = !formOpen;
  $("login-switch").hidden = formOpen;
  if (formOpen && !pending && !$("login-email").value && st.account) {
    $("login-email").value = st.account.email;
  }
}

async function load() {
  if (busy) return;
  show($("login-state"), stateLoading("Checking the Ring account…"));
  try {
    const st = await getJson("api/auth");
    auth.set(st);
    render(st);
  } catch (e) {
    show($("login-state"), stateError("Cannot read the Ring account state", e, load));
  }
}

/** How long the page waits for the account's details after a sign-in. */
const ACCOUNT_WAIT_MS = 10000;

/**
 * Waits (bounded) until ring-bridge, restarted, reports `linked === want` with a
 * settled state (and, after a sign-in, the account's details, up to
 * ACCOUNT_WAIT_MS longer); requests made during the restart simply wait for it.
 */
async function awaitRestart(want) {
  const end = Date.now() + RESTART_WAIT_MS;
  let last = null;
  // Once linked, the account's name and e-mail may take a moment longer to load.
  let accountBy = null;
  while (Date.now() < end) {
    try {
      last = await getJson("api/auth", { timeoutMs: 20000 });
      if (last.linked === want && last.state !== "unknown") {
        if (!want || last.account) return last;
        accountBy ??= Date.now() + ACCOUNT_WAIT_MS;
        if (Date.now() >= accountBy) return last;
      }
    } catch {
      // restarting: try again
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}

async function finish(want, text) {
  show($("login-state"), stateLoading(text));
  $("login-form").hidden = true;
  $("login-linked").hidden = true;
  const st = await awaitRestart(want);
  setBusy(false, "Sign in");
  if (st) {
    auth.set(st);
    render(st);
  } else {
    show($("login-state"), stateError("ring-bridge did not come back in time", null, load));
  }
  if (want && st && st.linked) {
    $("login-state").prepend(h("p", { class: "notice", id: "login-success", role: "status" },
      `Signed in. ring-bridge now uses ${accountText(st)}.`));
  }
}

async function submit(ev) {
  ev.preventDefault();
  if (busy) return;
  setError("");
  const codeStep = Boolean(pending);
  const body = codeStep
    ? { ...pending, code: $("login-code").value.trim() }
    : { email: $("login-email").value.trim(), password: $("login-password").value };
  if (!codeStep && (!body.email || !body.password)) {
    setError("Enter the e-mail and password of your Ring account.");
    return;
  }
  if (codeStep && !body.code) {
    setError("Enter the verification code Ring sent you.");
    return;
  }
  setBusy(true, codeStep ? "Verifying…" : "Signing in…");
  let answer;
  try {
    answer = await postJson("api/auth/login", body, { keepAuth: true, timeoutMs: 60000 });
  } catch (e) {
    setBusy(false, codeStep ? "Verify" : "Sign in");
    setError(e.message || String(e));
    (codeStep ? $("login-code") : $("login-password")).focus();
    return;
  }
  if (answer && answer.status === "2fa_required") {
    pending = { email: body.email, password: body.password };
    $("login-password").value = "";
    $("login-step-password").hidden = true;
    $("login-step-code").hidden = false;
    $("login-cancel").hidden = false;
    $("login-code-message").textContent = answer.message || "Ring sent you a verification code.";
    setBusy(false, "Verify");
    $("login-code").focus();
    return;
  }
  resetForm();
  switching = false;
  await finish(true, "Signed in. ring-bridge is restarting with this account…");
}

async function unlink() {
  $("login-unlink-confirm").hidden = true;
  setBusy(true);
  try {
    await postJson("api/auth/logout", {}, { keepAuth: true });
  } catch (e) {
    setBusy(false, "Sign in");
    show($("login-state"), stateError("Unlinking failed", e));
    return;
  }
  switching = false;
  await finish(false, "Unlinked. ring-bridge is restarting without the account…");
}

/** Wires the page's controls (once). */
export function initLogin() {
  $("login-form").addEventListener("submit", submit);
  $("login-cancel").addEventListener("click", resetForm);
  $("login-switch").addEventListener("click", () => {
    switching = true;
    $("login-form").hidden = false;
    $("login-switch").hidden = true;
    $("login-email").focus();
  });
  $("login-unlink").addEventListener("click", () => {
    $("login-unlink").hidden = true;
    $("login-unlink-confirm").hidden = false;
    $("login-unlink-yes").focus();
  });
  $("login-unlink-no").addEventListener("click", () => {
    $("login-unlink-confirm").hidden = true;
    $("login-unlink").hidden = false;
  });
  $("login-unlink-yes").addEventListener("click", unlink);
}

/** Shows the page: reads api/auth and renders. */
export function showLogin() {
  load();
}

/** Leaves the page: forgets a half-finished sign-in (the password). */
export function hideLogin() {
  if (!busy) resetForm();
}
