// The Stats overlay of a live tile: a toggle button and a small panel over the
// video with the stream's statistics (GET api/ring/cameras/<id>/live → stats).
// While shown it polls once a second, one request at a time; nothing runs per
// video frame, and hiding the panel or closing the tile stops the polling.

import { getJson } from "./api.js";
import { h, icon } from "./ui.js";

/** Poll period while the panel is shown. */
const POLL_MS = 1000;

const kbps = (bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`);
const secs = (s) => (s == null ? "–" : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`);

/** Lines of the panel for one `stats` object. */
export function statsLines(s) {
  const viewers = Object.entries(s.viewers || {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";
  const lines = [
    ["Video", s.codec ? `${s.codec} ${s.width}×${s.height}` : "–"],
    ["Ingress", `${kbps(s.bitrate_bps)} · ${s.fps.toFixed(1)} fps`],
    ["Key frames", s.keyframe_interval_s == null ? "–" : `every ${s.keyframe_interval_s.toFixed(1)} s`],
    ["Loss", `${s.packets_lost} lost · ${s.nacks_sent} NACK · ${s.plis_sent} PLI`],
    ["Session", `${secs(s.session_age_s)} · ${s.renewals} renewals`],
    ["Viewers", viewers],
  ];
  for (const v of s.viewer_streams || []) {
    lines.push([`→ ${v.kind}`, `${kbps(v.bitrate_bps)} · ${v.drops} dropped`]);
  }
  return lines;
}

export class StatsOverlay {
  /** @param cam a camera from api/ring/cameras (its numeric `id` is used) */
  constructor(cam) {
    this.cam = cam;
    this.timer = null;
    this.gen = 0;
    this.polls = 0;
    this.button = h("button", { class: "btn small stats-btn", type: "button", "aria-pressed": "false", title: "Show live stream statistics", onclick: () => this.toggle() }, icon("motion"), "Stats");
    this.el = h("div", { class: "stats-panel", hidden: true, role: "status", "aria-label": `${cam.name}: stream statistics` });
  }

  get shown() {
    return !this.el.hidden;
  }

  toggle() {
    if (this.shown) this.stop();
    else this.start();
  }

  start() {
    this.gen += 1;
    this.el.hidden = false;
    this.button.setAttribute("aria-pressed", "true");
    this.el.replaceChildren(h("div", { class: "stats-row" }, "Loading…"));
    this.poll(this.gen);
  }

  stop() {
    this.gen += 1;
    clearTimeout(this.timer);
    this.timer = null;
    this.el.hidden = true;
    this.button.setAttribute("aria-pressed", "false");
  }

  async poll(gen) {
    try {
      const live = await getJson(`api/ring/cameras/${encodeURIComponent(this.cam.id)}/live`, { timeoutMs: 5000 });
      if (gen !== this.gen) return;
      this.polls += 1;
      this.render(live.stats);
    } catch (e) {
      if (gen !== this.gen) return;
      this.el.replaceChildren(h("div", { class: "stats-row error" }, `Stats unavailable: ${e.message}`));
    }
    if (gen === this.gen) this.timer = setTimeout(() => this.poll(gen), POLL_MS);
  }

  render(s) {
    if (!s) return;
    this.el.dataset.fps = String(s.fps);
    this.el.dataset.frames = String(s.video_frames);
    this.el.replaceChildren(
      ...statsLines(s).map(([k, v]) => h("div", { class: "stats-row" }, h("span", { class: "k" }, k), h("span", { class: "v" }, v))),
    );
  }
}
