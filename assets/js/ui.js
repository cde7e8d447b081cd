// Small DOM and formatting helpers shared by the views. No framework: `h()`
// builds elements, the `state*` helpers render the loading / empty / error
// blocks every view uses, and the formatters turn API values into text.

/**
 * Creates an element. `attrs` keys: "class", "text", "dataset" (object),
 * "on<event>" (listener), boolean attributes as true/false, others as strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A coloured status pill. `tone`: ok | warn | danger | muted | accent. */
export function pill(text, tone = "muted", attrs = {}) {
  return h("span", { class: `pill ${tone}`, ...attrs }, text);
}

/** Loading block with a spinner. */
export function stateLoading(text = "Loading…") {
  return h("div", { class: "state loading", role: "status" }, h("div", { class: "spinner", "aria-hidden": "true" }), text);
}

/** Empty block. */
export function stateEmpty(text, detail) {
  return h("div", { class: "state empty" }, h("strong", {}, text), detail ? h("div", { class: "detail" }, detail) : null);
}

/**
 * Error block with the server's message and an optional retry button.
 * A 401 points at the sign-in page instead of a retry.
 */
export function stateError(title, err, retry) {
  const reauth = err && err.status === 401 && err.kind === "unauthenticated";
  return h(
    "div",
    { class: "state error", role: "alert" },
    h("strong", {}, title),
    h("div", { class: "detail" }, err ? err.message || String(err) : ""),
    reauth
      ? h("a", { href: "#/login", class: "btn" }, "Sign in again")
      : retry
        ? h("button", { class: "btn", type: "button", onclick: retry }, "Retry")
        : null,
  );
}

/** Replaces the children of `el`. */
export function show(el, ...children) {
  el.replaceChildren(...children.flat().filter(Boolean));
}

const rtf = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
  ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
  : null;

/** "Tue, 25 Nov, 13:49" in the browser's locale and time zone. */
export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  return d.toLocaleString(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
}

/** "3 hours ago". */
export function fmtAgo(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (!rtf || Number.isNaN(t)) return "";
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 60) return rtf.format(s, "second");
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

/** Seconds as "m:ss" (or "h:mm:ss"); "" for null. */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(Number(sec))) return "";
  const total = Math.max(0, Math.round(Number(sec)));
  const hh = Math.floor(total / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** Copies text to the clipboard, falling back to a hidden textarea on plain http. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the legacy path
    }
  }
  const ta = h("textarea", { style: "position:fixed;left:-9999px;top:0", "aria-hidden": "true" });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** Stream status → [label, tone]. */
export function streamTone(status) {
  switch (status) {
    case "active": return ["streaming", "ok"];
    case "activating": return ["starting", "accent"];
    case "failed": return ["stream failed", "danger"];
    default: return ["idle", "muted"];
  }
}

// Line icons (24×24, stroke = currentColor), so nothing depends on emoji fonts.
const ICONS = {
  mic: '<path d="M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3z"/><path d="M19 10v2a7 7 0 0 1-14 0v-2"/><path d="M12 19v4M8 23h8"/>',
  muted: '<path d="M11 5 6 9H2v6h4l5 4V5z"/><path d="m23 9-6 6M17 9l6 6"/>',
  sound: '<path d="M11 5 6 9H2v6h4l5 4V5z"/><path d="M19.07 4.93a10 10 0 0 1 0 14.14M15.54 8.46a5 5 0 0 1 0 7.07"/>',
  play: '<path d="M7 4v16l13-8z" fill="currentColor"/>',
  bell: '<path d="M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.73 21a2 2 0 0 1-3.46 0"/>',
  motion: '<path d="M22 12h-4l-3 9L9 3l-3 9H2"/>',
  eye: '<path d="M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8z"/><circle cx="12" cy="12" r="3"/>',
  clock: '<circle cx="12" cy="12" r="10"/><path d="M12 6v6l4 2"/>',
  battery: '<rect x="1" y="6" width="18" height="12" rx="2"/><path d="M23 13v-2"/>',
  film: '<rect x="2" y="2" width="20" height="20" rx="2.2"/><path d="M7 2v20M17 2v20M2 12h20"/>',
  close: '<path d="M18 6 6 18M6 6l12 12"/>',
  person: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
};

/** An inline SVG icon by name (see ICONS); decorative, hidden from screen readers. */
export function icon(name, cls = "icon") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.innerHTML = ICONS[name] || "";
  return svg;
}
