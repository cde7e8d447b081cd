// The History view: a camera picker, the camera's events (newest first) with
// time, kind, person detection, thumbnail and duration, "Older" pagination via
// the `next` cursor, and an in-page player for recorded events. Events that
// cannot play say why (not recorded, still processing, no Ring Protect).
// "Play over RTSP" makes an event the camera's RTSP event stream
// (`PUT .../event-stream`) and shows the URL to copy into a player or NVR.

import { cameras, getJson, url, request } from "./api.js";
import { h, show, pill, icon, stateLoading, stateEmpty, stateError, fmtTime, fmtAgo, fmtDuration } from "./ui.js";

const PAGE = 25;
const $ = (id) => document.getElementById(id);

const hist = {
  cams: [],
  camId: null,
  caps: null,
  events: [],
  next: null,
  gen: 0, // bumps on every camera change/refresh; stale answers are dropped
  loadingOlder: false,
};

const KIND = {
  ding: ["Ding", "bell"],
  motion: ["Motion", "motion"],
  on_demand: ["Live view", "eye"],
};

function kindLabel(kind) {
  const k = KIND[kind];
  if (k) return k;
  const t = String(kind || "event").replace(/_/g, " ");
  return [t.charAt(0).toUpperCase() + t.slice(1), "film"];
}

/** Called once at start-up. */
export function initHistory() {
  $("hist-rtsp-copy").addEventListener("click", () => {
    const input = $("hist-rtsp-url");
    input.select();
    navigator.clipboard?.writeText(input.value).catch(() => {});
  });
  $("hist-camera").addEventListener("change", (e) => {
    hist.camId = e.target.value;
    try {
      sessionStorage.setItem("rb.history.camera", hist.camId);
    } catch {
      // storage may be off; the choice just isn't remembered
    }
    loadEvents();
  });
  $("hist-refresh").addEventListener("click", () => refresh());
  $("hist-older").addEventListener("click", () => loadOlder());
  $("hist-player-close").addEventListener("click", closePlayer);
  const v = $("hist-video");
  v.addEventListener("error", () => explainPlayError(v));
  v.addEventListener("playing", () => {
    $("hist-player-msg").textContent = "";
  });
}

let started = false;

/** The view became visible. */
export function showHistory() {
  if (!started) {
    started = true;
    refresh();
  }
}

async function refresh() {
  const state = $("hist-state");
  if (!hist.cams.length) show(state, stateLoading("Loading cameras…"));
  try {
    hist.cams = await cameras();
  } catch (e) {
    show(state, stateError("Could not load the cameras", e, refresh));
    $("hist-list").replaceChildren();
    $("hist-older").hidden = true;
    return;
  }
  const sel = $("hist-camera");
  let remembered = null;
  try {
    remembered = sessionStorage.getItem("rb.history.camera");
  } catch {
    remembered = null;
  }
  const wanted = hist.camId || remembered;
  show(sel, hist.cams.map((c) => h("option", { value: String(c.id) }, `${c.name}${c.online ? "" : " (offline)"}`)));
  hist.camId = hist.cams.some((c) => String(c.id) === wanted) ? wanted : hist.cams[0] ? String(hist.cams[0].id) : null;
  if (hist.camId) sel.value = hist.camId;
  if (!hist.camId) {
    show(state, stateEmpty("No cameras on this Ring account."));
    return;
  }
  loadEvents();
}

function historyPath(camId, olderThan) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (olderThan) q.set("older_than", olderThan);
  return `api/ring/cameras/${encodeURIComponent(camId)}/history?${q}`;
}

async function loadEvents() {
  const gen = ++hist.gen;
  const camId = hist.camId;
  hist.events = [];
  hist.next = null;
  $("hist-notice").hidden = true;
  $("hist-list").replaceChildren();
  $("hist-older").hidden = true;
  $("hist-summary").textContent = "";
  show($("hist-state"), stateLoading("Loading events…"));
  try {
    const [page, caps] = await Promise.all([
      getJson(historyPath(camId)),
      getJson(`api/ring/cameras/${encodeURIComponent(camId)}/capabilities`).catch(() => null),
    ]);
    if (gen !== hist.gen) return;
    hist.caps = caps;
    const notice = $("hist-notice");
    const cam = hist.cams.find((c) => String(c.id) === camId);
    notice.hidden = !(caps && caps.recordings === false);
    notice.textContent = notice.hidden ? "" : `${cam ? cam.name : "This camera"} has no Ring Protect plan, so Ring keeps no recordings: events are listed but cannot be played.`;
    $("hist-state").replaceChildren();
    append(page);
  } catch (e) {
    if (gen !== hist.gen) return;
    show($("hist-state"), stateError("Could not load the history", e, loadEvents));
  }
}

async function loadOlder() {
  if (!hist.next || hist.loadingOlder) return;
  const gen = hist.gen;
  const btn = $("hist-older");
  hist.loadingOlder = true;
  btn.disabled = true;
  btn.textContent = "Loading…";
  try {
    const page = await getJson(historyPath(hist.camId, hist.next));
    if (gen !== hist.gen) return;
    append(page);
  } catch (e) {
    if (gen === hist.gen) show($("hist-state"), stateError("Could not load older events", e, loadOlder));
  } finally {
    hist.loadingOlder = false;
    btn.disabled = false;
    btn.textContent = "Older";
  }
}

function append(page) {
  const seen = new Set(hist.events.map((e) => e.id));
  const fresh = (page.events || []).filter((e) => !seen.has(e.id));
  hist.events.push(...fresh);
  hist.next = page.next || null;
  const list = $("hist-list");
  list.append(...fresh.map(renderEvent));
  $("hist-older").hidden = !hist.next;
  if (!hist.events.length) {
    const cam = hist.cams.find((c) => String(c.id) === hist.camId);
    show($("hist-state"), stateEmpty(`No events for ${cam ? cam.name : "this camera"}.`, "Motion, dings and live views appear here as Ring records them."));
  } else {
    $("hist-state").replaceChildren();
  }
  $("hist-summary").textContent = `${hist.events.length} event${hist.events.length === 1 ? "" : "s"}${hist.next ? ", more available" : ""}`;
}

/** Why an event cannot be played, in words. */
function notPlayableReason(ev) {
  if (hist.caps && hist.caps.recordings === false) return "No Ring Protect plan";
  if (!ev.recorded) return "Not recorded";
  switch (ev.recording_status) {
    case "pending":
    case "processing":
      return "Processing at Ring; try again in a minute";
    case "failed":
    case "error":
      return "Ring failed to record this event";
    default:
      return ev.recording_status ? `Not available (${ev.recording_status})` : "Not available";
  }
}

function thumb(ev) {
  const [, iconName] = kindLabel(ev.kind);
  const placeholder = () => h("div", { class: "thumb placeholder", "aria-hidden": "true" }, icon(iconName));
  if (!ev.thumbnail_url) return placeholder();
  const img = h("img", { class: "thumb", src: ev.thumbnail_url, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.replaceWith(placeholder()));
  return img;
}

function renderEvent(ev) {
  const [label] = kindLabel(ev.kind);
  const title = h("div", { class: "ev-title" }, icon(kindLabel(ev.kind)[1]), h("span", { class: "ev-kind" }, label));
  if (ev.person_detected) title.append(pill("person detected", "accent", { class: "pill accent person" }));
  if (ev.kind === "ding") title.append(ev.answered ? pill("answered", "ok") : pill("missed", "warn"));
  const meta = h(
    "div",
    { class: "ev-meta" },
    h("time", { datetime: ev.created_at, title: new Date(ev.created_at).toString() }, fmtTime(ev.created_at)),
    h("span", {}, fmtAgo(ev.created_at)),
    ev.duration_s != null ? h("span", { title: "duration" }, icon("clock"), ` ${fmtDuration(ev.duration_s)}`) : null,
  );
  const action = h("div", { class: "ev-action" });
  if (ev.playable && ev.recording_path) {
    action.append(h("button", {
      class: "btn small primary play",
      type: "button",
      "aria-label": `Play the ${label.toLowerCase()} recording of ${fmtTime(ev.created_at)}`,
      onclick: () => play(ev),
    }, icon("play"), "Play"), h("button", {
      class: "btn small rtsp",
      type: "button",
      title: "Serve this recording as the camera's RTSP event stream",
      "aria-label": `Play the ${label.toLowerCase()} recording of ${fmtTime(ev.created_at)} over RTSP`,
      onclick: () => playOverRtsp(ev),
    }, "Play over RTSP"));
  } else {
    const reason = notPlayableReason(ev);
    action.append(
      h("button", { class: "btn small play", type: "button", disabled: true, title: reason, "aria-label": `Play unavailable: ${reason}` }, icon("play"), "Play"),
      h("span", { class: "ev-reason" }, reason),
    );
  }
  return h("li", { class: "event", dataset: { id: ev.id, kind: ev.kind, playable: Boolean(ev.playable) } }, thumb(ev), h("div", { class: "ev-main" }, title, meta), action);
}

async function playOverRtsp(ev) {
  const box = $("hist-rtsp");
  box.hidden = false;
  $("hist-rtsp-msg").textContent = "Selecting…";
  $("hist-rtsp-url").value = "";
  try {
    const resp = await request(`/api/ring/cameras/${encodeURIComponent(ev.camera_id)}/event-stream`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event_id: ev.id }),
    });
    const v = await resp.json();
    if (!v.rtsp_url) {
      $("hist-rtsp-msg").textContent = "Selected, but RTSP is off in this ring-bridge.";
      return;
    }
    $("hist-rtsp-msg").textContent = "RTSP event stream (plays this recording from its start):";
    $("hist-rtsp-url").value = v.rtsp_url;
    box.dataset.eventId = v.event_id || "";
  } catch (e) {
    $("hist-rtsp-msg").textContent = `Cannot select this recording: ${e.message}`;
  }
}

function play(ev) {
  const [label] = kindLabel(ev.kind);
  const cam = hist.cams.find((c) => String(c.id) === String(ev.camera_id));
  $("hist-player").hidden = false;
  $("hist-layout").classList.add("playing");
  $("hist-player-title").textContent = `${label} · ${cam ? cam.name : ""} · ${fmtTime(ev.created_at)}`;
  $("hist-player-msg").textContent = "Loading the recording…";
  for (const li of document.querySelectorAll("#hist-list .event.current")) li.classList.remove("current");
  document.querySelector(`#hist-list .event[data-id="${CSS.escape(ev.id)}"]`)?.classList.add("current");
  const v = $("hist-video");
  v.src = url(ev.recording_path);
  v.play().catch(() => {
    // Autoplay may be refused; the controls are there.
    $("hist-player-msg").textContent = "Press play to start.";
  });
  $("hist-player").scrollIntoView({ block: "nearest" });
}

function closePlayer() {
  const v = $("hist-video");
  v.pause();
  v.removeAttribute("src");
  v.load();
  $("hist-player").hidden = true;
  $("hist-layout").classList.remove("playing");
  for (const li of document.querySelectorAll("#hist-list .event.current")) li.classList.remove("current");
}

/**
 * The video element only says "failed"; ask our endpoint (without following
 * the redirect) whether the recording link itself failed and why.
 */
async function explainPlayError(v) {
  const src = v.getAttribute("src");
  if (!src) return;
  const msg = $("hist-player-msg");
  msg.textContent = "Could not play this recording…";
  try {
    await request(src, { redirect: "manual", timeoutMs: 15000 });
    // The link works (a redirect): the media itself failed or expired.
    msg.textContent = "Could not play this recording: the browser could not load or decode the video. Press Play to try again with a fresh link.";
  } catch (e) {
    if (v.getAttribute("src") === src) msg.textContent = `Could not play this recording: ${e.message}`;
  }
}
