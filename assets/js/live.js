// The Live view: the camera list (name, model, battery, online, stream status,
// Connect/Disconnect) and the grid of video tiles. The list refreshes every
// few seconds while the view is shown; tiles keep streaming when another tab
// is chosen, and every session is hung up when the page goes away or stays
// hidden for a while (Ring cameras drain their battery while streaming).

import { cameras, getJson } from "./api.js";
import { h, show, pill, icon, stateLoading, stateEmpty, stateError, streamTone } from "./ui.js";
import { Tile } from "./tile.js";

const REFRESH_MS = 5000;
/** Hang up every tile after the page was hidden this long. */
const HIDDEN_HANGUP_MS = 120000;

const $ = (id) => document.getElementById(id);

const live = {
  cams: [],
  tiles: new Map(), // camera id → Tile
  caps: new Map(), // camera id → capabilities
  timer: null,
  loadedOnce: false,
  loading: false,
};

/** Called once at start-up. */
export function initLive() {
  $("cams-refresh").addEventListener("click", () => load(true));
  $("disconnect-all").addEventListener("click", () => {
    for (const t of [...live.tiles.values()]) t.close();
  });
  window.addEventListener("pagehide", () => {
    for (const t of [...live.tiles.values()]) t.close(true);
  });
  let hiddenTimer = null;
  document.addEventListener("visibilitychange", () => {
    clearTimeout(hiddenTimer);
    if (document.visibilityState === "hidden" && live.tiles.size) {
      hiddenTimer = setTimeout(() => {
        const names = [...live.tiles.values()].map((t) => t.cam.name);
        for (const t of [...live.tiles.values()]) t.close();
        $("grid-hint").textContent = `Disconnected ${names.join(", ")} while the page was in the background, to spare the cameras' batteries.`;
      }, HIDDEN_HANGUP_MS);
    }
  });
}

/** The view became visible. */
export function showLive() {
  load(!live.loadedOnce);
  clearInterval(live.timer);
  live.timer = setInterval(() => load(false), REFRESH_MS);
}

/** The view was hidden. */
export function hideLive() {
  clearInterval(live.timer);
  live.timer = null;
}

async function load(showSpinner) {
  if (live.loading) return;
  live.loading = true;
  const list = $("cam-list");
  if (showSpinner && !live.loadedOnce) show(list, stateLoading("Loading cameras…"));
  try {
    live.cams = await cameras();
    live.loadedOnce = true;
    list.setAttribute("aria-busy", "false");
    renderList();
  } catch (e) {
    list.setAttribute("aria-busy", "false");
    if (e.status === 503) {
      // Still loading from Ring: keep the spinner, the interval retries.
      show(list, stateLoading(e.message));
    } else if (!live.loadedOnce || showSpinner) {
      show(list, stateError("Could not load the cameras", e, () => load(true)));
    }
  } finally {
    live.loading = false;
  }
}

function batteryText(cam) {
  if (cam.battery === null || cam.battery === undefined) return null;
  const low = cam.battery <= 20;
  return h("span", { class: `battery${low ? " low" : ""}`, title: cam.on_battery ? "battery level (running on battery)" : "battery level" }, icon("battery"), `${cam.battery}%`);
}

function renderList() {
  const list = $("cam-list");
  if (!live.cams.length) {
    show(list, stateEmpty("No cameras on this Ring account.", "Cameras shared with you appear once the owner accepts; chimes and alarms are not cameras."));
    return;
  }
  // Keep unchanged rows (and the keyboard focus in them); replace changed ones.
  const old = new Map([...list.querySelectorAll(".cam")].map((el) => [el.dataset.sig, el]));
  const hadFocus = list.contains(document.activeElement) ? document.activeElement.closest(".cam") : null;
  const rows = live.cams.map((cam) => {
    const sig = signature(cam);
    const keep = old.get(sig);
    if (keep) return keep;
    const row = renderCam(cam);
    row.dataset.sig = sig;
    return row;
  });
  show(list, rows);
  if (hadFocus && !hadFocus.isConnected) {
    const again = rows.find((r) => r.dataset.id === hadFocus.dataset.id);
    if (again) again.querySelector("button")?.focus();
  }
}

function signature(cam) {
  const caps = live.caps.get(cam.id);
  return JSON.stringify([cam.id, cam.name, cam.online, cam.stream_status, cam.video_codec, cam.battery, cam.model,
    live.tiles.has(cam.id), caps ? caps.reason || "" : ""]);
}

function renderCam(cam) {
  const tile = live.tiles.get(cam.id);
  const [label, tone] = streamTone(cam.stream_status);
  const caps = live.caps.get(cam.id);
  const btn = tile
    ? h("button", { class: "btn small", type: "button", onclick: () => tile.close() }, "Disconnect")
    : h("button", {
      class: "btn small primary",
      type: "button",
      disabled: !cam.online,
      title: cam.online ? `Watch ${cam.name} live` : "The camera is offline",
      onclick: (e) => connect(cam, e.currentTarget),
    }, "Connect");
  btn.setAttribute("aria-label", `${tile ? "Disconnect" : "Connect"} ${cam.name}`);
  const reason = !cam.online ? "Offline: live view is unavailable until the camera reconnects." : caps && !caps.live_view ? caps.reason : null;
  const note = reason ? h("div", { class: "cam-note" }, reason) : null;
  return h(
    "div",
    { class: "cam", dataset: { id: cam.id, slug: cam.slug, online: cam.online, stream: cam.stream_status } },
    h("div", { class: "cam-name" }, cam.name),
    h("div", { class: "cam-actions" }, btn),
    h(
      "div",
      { class: "cam-meta" },
      cam.online ? pill("online", "ok", { class: "pill ok online" }) : pill("offline", "danger", { class: "pill danger online" }),
      pill(label, tone, { class: `pill ${tone} stream`, title: "Ring live stream status" }),
      codecPill(cam.video_codec),
      batteryText(cam),
    ),
    h("div", { class: "cam-sub", title: `Ring kind ${cam.kind}` }, `${cam.model || cam.kind}${cam.doorbell ? " · doorbell" : ""}`),
    note,
  );
}

/** The codec Ring sends for the camera's live stream (known after its first stream). */
function codecPill(codec) {
  if (!codec) return null;
  const [text, title] = codec === "h265"
    ? ["H.265", "Ring sends H.265 (HEVC): RTSP passes it through; browsers that decode H.265 play it, others get an explanation instead"]
    : ["H.264", "Ring sends H.264"];
  return pill(text, "muted", { class: "pill muted plain codec", title });
}

async function capabilities(cam) {
  if (!live.caps.has(cam.id)) {
    live.caps.set(cam.id, await getJson(`api/ring/cameras/${encodeURIComponent(cam.id)}/capabilities`));
  }
  return live.caps.get(cam.id);
}

async function connect(cam, button) {
  if (live.tiles.has(cam.id)) return;
  if (button) {
    button.disabled = true;
    button.textContent = "Connecting…";
  }
  let caps;
  try {
    caps = await capabilities(cam);
  } catch (e) {
    caps = { live_view: true, talk: false, reason: `capabilities unavailable: ${e.message}` };
  }
  if (!caps.live_view) {
    button?.closest(".cam")?.removeAttribute("data-sig");
    renderList();
    return;
  }
  const tile = new Tile(cam, caps, (t) => {
    if (live.tiles.get(cam.id) === t) live.tiles.delete(cam.id);
    afterTilesChanged();
    // The stream status changes a moment after a hang-up; show it soon.
    setTimeout(() => load(false), 1500);
  }, (_t, state) => {
    if (state === "live" || state === "failed") load(false);
  });
  live.tiles.set(cam.id, tile);
  $("grid").append(tile.el);
  afterTilesChanged();
  tile.el.focus({ preventScroll: true });
  tile.connect();
}

function afterTilesChanged() {
  $("disconnect-all").hidden = live.tiles.size === 0;
  $("grid").dataset.count = String(live.tiles.size);
  if (live.cams.length) renderList();
}

// For tests and the devtools console.
window.ringBridge = window.ringBridge || {};
window.ringBridge.connect = (idOrSlug) => {
  const cam = live.cams.find((c) => String(c.id) === String(idOrSlug) || c.slug === idOrSlug);
  if (cam) connect(cam);
  return Boolean(cam);
};
