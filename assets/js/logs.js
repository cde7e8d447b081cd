// The Logs view: live server log lines from the SSE stream api/logs/stream
// (the backlog first, then new lines), a level filter, a text filter, pause
// and copy-to-clipboard. The stream opens the first time the view is shown
// and stays open; EventSource reconnects by itself with Last-Event-ID.

import { url } from "./api.js";
import { h, copyText } from "./ui.js";

/** Lines kept in the page (the server keeps about as many). */
const MAX_LINES = 2000;
const $ = (id) => document.getElementById(id);

const logs = {
  es: null,
  lines: [], // {line, el}
  paused: false,
  pending: [],
  lastSeq: 0,
};

/** Called once at start-up. */
export function initLogs() {
  const view = $("log-view");
  view.dataset.min = $("log-level").value;
  $("log-level").addEventListener("change", (e) => {
    view.dataset.min = e.target.value;
    stickToBottom(true);
  });
  $("log-search").addEventListener("input", applySearch);
  $("log-pause").addEventListener("click", togglePause);
  $("log-clear").addEventListener("click", () => {
    logs.lines = [];
    logs.pending = [];
    view.replaceChildren();
    renderPause();
  });
  $("log-copy").addEventListener("click", async () => {
    const text = visibleLines().map(lineText).join("\n");
    const ok = text ? await copyText(text) : false;
    const btn = $("log-copy");
    btn.textContent = ok ? "Copied ✓" : text ? "Copy failed" : "Nothing to copy";
    setTimeout(() => {
      btn.textContent = "Copy";
    }, 1800);
  });
}

/** The view became visible. */
export function showLogs() {
  if (!logs.es) connect();
  stickToBottom(true);
}

function setStatus(text, tone) {
  const s = $("log-status");
  s.textContent = text;
  s.className = `pill ${tone}`;
}

function connect() {
  setStatus("connecting…", "accent");
  const es = new EventSource(url("api/logs/stream"));
  logs.es = es;
  es.addEventListener("open", () => setStatus("live", "ok"));
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) setStatus("disconnected", "danger");
    else setStatus("reconnecting…", "warn");
  });
  es.addEventListener("log", (e) => {
    let line;
    try {
      line = JSON.parse(e.data);
    } catch {
      return;
    }
    // The server resumes after Last-Event-ID, so a smaller seq means the
    // daemon restarted (its seq starts again at 1).
    if (line.seq && line.seq <= logs.lastSeq) {
      receive({ marker: true, message: "… ring-bridge restarted …" });
    }
    logs.lastSeq = line.seq || logs.lastSeq;
    receive(line);
  });
  es.addEventListener("lagged", (e) => {
    let n = "some";
    try {
      n = JSON.parse(e.data).dropped;
    } catch {
      // keep "some"
    }
    receive({ marker: true, message: `… ${n} lines were skipped because the page fell behind …` });
  });
}

function receive(line) {
  if (logs.paused) {
    logs.pending.push(line);
    if (logs.pending.length > MAX_LINES) logs.pending.shift();
    renderPause();
    return;
  }
  appendLines([line]);
}

function appendLines(lines) {
  const view = $("log-view");
  const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
  const frag = document.createDocumentFragment();
  const q = $("log-search").value.trim().toLowerCase();
  for (const line of lines) {
    const el = renderLine(line);
    if (q && !lineText(line).toLowerCase().includes(q)) el.hidden = true;
    logs.lines.push({ line, el });
    frag.append(el);
  }
  view.append(frag);
  while (logs.lines.length > MAX_LINES) logs.lines.shift().el.remove();
  if (atBottom) stickToBottom(true);
}

function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function renderLine(line) {
  if (line.marker) return h("div", { class: "line marker lvl-warn" }, line.message);
  const fields = Object.entries(line.fields || {});
  return h(
    "div",
    { class: `line lvl-${line.level}`, dataset: { seq: line.seq, level: line.level } },
    h("span", { class: "t", title: line.time }, localTime(line.time)), " ",
    h("span", { class: "lv" }, String(line.level).toUpperCase()), " ",
    line.spans ? [h("span", { class: "sp" }, line.spans), " "] : null,
    h("span", { class: "tg" }, `${line.target}:`), " ",
    h("span", { class: "m" }, line.message),
    fields.length
      ? [" ", h("span", { class: "f" }, ...fields.flatMap(([k, v], i) => [i ? " " : "", h("b", {}, k), "=", v]))]
      : null,
  );
}

/** The line as the stderr log shows it (used for copy and the text filter). */
function lineText(line) {
  if (line.marker) return line.message;
  const f = Object.entries(line.fields || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return [line.time, String(line.level).toUpperCase().padStart(5), line.spans ? `${line.spans}:` : "", `${line.target}:`, line.message, f]
    .filter(Boolean)
    .join(" ");
}

const RANK = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

function visibleLines() {
  const max = RANK[$("log-level").value] || 5;
  return logs.lines.filter(({ line, el }) => !el.hidden && (line.marker || (RANK[line.level] || 5) <= max)).map(({ line }) => line);
}

function applySearch() {
  const q = $("log-search").value.trim().toLowerCase();
  for (const { line, el } of logs.lines) el.hidden = Boolean(q) && !lineText(line).toLowerCase().includes(q);
  stickToBottom(true);
}

function togglePause() {
  logs.paused = !logs.paused;
  if (!logs.paused && logs.pending.length) {
    const p = logs.pending;
    logs.pending = [];
    appendLines(p);
    stickToBottom(true);
  }
  renderPause();
}

function renderPause() {
  const b = $("log-pause");
  b.setAttribute("aria-pressed", String(logs.paused));
  b.textContent = logs.paused ? `Resume${logs.pending.length ? ` (${logs.pending.length} new)` : ""}` : "Pause";
}

function stickToBottom(force) {
  const view = $("log-view");
  if (force) view.scrollTop = view.scrollHeight;
}
