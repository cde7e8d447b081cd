// One live video tile: connects a WhepSession, shows its state (connecting,
// live, failed + Retry), unmutes on request, and implements Hold to Talk by
// mouse, touch (pointer events) and keyboard (Space while the tile has focus).
//
// "Stats" shows the stream's statistics over the video (stats.js).
//
// The microphone track stays disabled except while the floor is held; the
// talk floor is asked for with POST <session>/talk and given back on release.
// Below the controls, the Announce box (announce.js) plays a text or a file.

import { whepUrl } from "./api.js";
import { h, show, pill, icon } from "./ui.js";
import { StatsOverlay } from "./stats.js";
import { WhepSession, getMic, MicError } from "./whep.js";
import { announceBox } from "./announce.js";

/** Give up waiting for the first video frame after this long. */
const FIRST_FRAME_MS = 25000;
/** How long connect waits for the microphone before offering without it. */
const MIC_WAIT_MS = 1500;

/** Registry the tests (and the devtools) can read: slug → Tile. */
window.ringBridge = window.ringBridge || {};
window.ringBridge.tiles = window.ringBridge.tiles || {};

export class Tile {
  /**
   * @param cam a camera from api/ring/cameras
   * @param caps its capabilities ({talk, reason, ...})
   * @param onClose called after the tile removed itself
   * @param onState called with (tile, state) when the state changes
   */
  constructor(cam, caps, onClose, onState = () => {}) {
    this.cam = cam;
    this.caps = caps || {};
    this.onClose = onClose;
    this.onStateChange = onState;
    this.session = null;
    this.mic = null;
    this.micError = null;
    this.state = "idle";
    this.talkWanted = false;
    this.floorHeld = false;
    this.gen = 0; // bumps on every (re)connect and close; stale async work checks it
    this.build();
    window.ringBridge.tiles[cam.slug] = this;
  }

  build() {
    const c = this.cam;
    this.video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": `${c.name} live video` });
    this.video.muted = true;
    this.overlay = h("div", { class: "overlay" });
    this.badge = h("span", { class: "talk-badge", hidden: true }, "Talking");
    this.statusPill = pill("connecting", "accent", { class: "pill accent state-pill" });
    this.muteBtn = h("button", { class: "btn small mute-btn", type: "button", "aria-pressed": "false", onclick: () => this.toggleMute() });
    this.talkBtn = h("button", { class: "btn small talk-btn", type: "button", "aria-pressed": "false" }, icon("mic"), "Hold to Talk");
    this.msg = h("p", { class: "tile-msg", role: "status", "aria-live": "polite" });
    this.stats = new StatsOverlay(c);
    this.el = h(
      "figure",
      { class: "tile", tabindex: "0", "aria-label": `${c.name}: live view. Hold Space to talk.`, dataset: { slug: c.slug, state: "connecting" } },
      h(
        "div",
        { class: "tile-head" },
        h("span", { class: "title", title: c.name }, c.name),
        this.statusPill,
        h("button", { class: "btn ghost small close-btn", type: "button", "aria-label": `Disconnect ${c.name}`, title: "Disconnect", onclick: () => this.close() }, icon("close")),
      ),
      h("div", { class: "video-box" }, this.video, this.overlay, this.badge, this.stats.el),
      h("div", { class: "tile-controls" }, this.muteBtn, this.talkBtn, h("span", { class: "grow" }), this.stats.button),
      announceBox(c, (text, tone) => this.say(text, tone), () => (this.caps.talk ? null : this.talkBlocker())),
      this.msg,
    );
    this.renderMute();
    this.wireTalk();
    this.video.addEventListener("playing", () => this.setState("live"));
    // Autoplay with sound may be refused; the tile stays muted until asked.
    this.video.addEventListener("volumechange", () => this.renderMute());
  }

  setState(state, detail) {
    const changed = this.state !== state;
    this.state = state;
    if (changed) this.onStateChange(this, state);
    this.el.dataset.state = state;
    const [label, tone] = {
      connecting: ["connecting", "accent"],
      live: ["live", "ok"],
      reconnecting: ["reconnecting", "warn"],
      failed: ["failed", "danger"],
      closed: ["closed", "muted"],
    }[state] || [state, "muted"];
    this.statusPill.textContent = label;
    this.statusPill.className = `pill ${tone} state-pill`;
    if (state === "live") {
      clearTimeout(this.frameTimer);
      this.overlay.hidden = true;
    } else if (state === "connecting" || state === "reconnecting") {
      this.overlay.hidden = false;
      show(this.overlay, h("div", { class: "spinner", "aria-hidden": "true" }),
        h("div", {}, state === "connecting" ? "Connecting to the camera…" : "Connection interrupted, reconnecting…"),
        detail ? h("div", { class: "detail" }, detail) : null);
    } else if (state === "failed") {
      clearTimeout(this.frameTimer);
      // Hang up at once: a failed tile must not keep a viewer (and the
      // camera's battery) busy on the server.
      this.stopTalk();
      this.teardown();
      this.overlay.hidden = false;
      show(this.overlay, h("strong", {}, "Live view failed"),
        h("div", { class: "detail" }, detail || "The connection failed."),
        h("button", { class: "btn primary retry", type: "button", onclick: () => this.connect() }, "Retry"));
    }
    this.renderTalk();
  }

  /** (Re)connects; any previous session is hung up first. */
  async connect() {
    this.teardown();
    const gen = this.gen;
    this.setState("connecting", this.cam.on_battery ? "Battery camera: keep live views short to save its battery." : "Ring usually answers in 2–5 s.");
    if (this.caps.talk && !this.mic) {
      await this.attachMic(gen);
      if (gen !== this.gen) return;
    }
    const session = new WhepSession(whepUrl(this.cam), {
      micTrack: this.mic,
      onState: (s) => this.onPeerState(session, s),
    });
    this.session = session;
    this.frameTimer = setTimeout(() => {
      if (this.session === session && this.state !== "live") {
        this.setState("failed", `No video arrived within ${FIRST_FRAME_MS / 1000} s. The camera may be busy or asleep.`);
      }
    }, FIRST_FRAME_MS);
    try {
      await session.start();
      if (this.session !== session) return;
      this.video.srcObject = session.stream;
      this.video.play().catch(() => {});
      this.renderTalk();
    } catch (e) {
      if (this.session !== session || e.kind === "cancelled") return;
      this.setState("failed", e.message);
    }
  }

  /**
   * Gets the microphone for talk. Waits briefly so the track is in the offer;
   * while a permission prompt is still open the video starts without it and
   * the track joins later through replaceTrack (no renegotiation).
   */
  async attachMic(gen) {
    const adopt = async (track) => {
      if (gen !== this.gen || this.state === "closed") {
        track.stop();
        return;
      }
      track.enabled = false;
      this.mic = track;
      this.micError = null;
      if (this.session) await this.session.setMic(track).catch(() => {});
      this.renderTalk();
    };
    const fail = (e) => {
      if (gen !== this.gen) return;
      this.micError = e;
      this.renderTalk();
    };
    const pending = getMic();
    const first = await Promise.race([
      pending.then((t) => ({ t }), (e) => ({ e })),
      new Promise((r) => setTimeout(() => r(null), MIC_WAIT_MS)),
    ]);
    if (first && first.t) await adopt(first.t);
    else if (first && first.e) fail(first.e);
    else {
      this.say("Allow the microphone to use Hold to Talk; the video starts anyway.");
      pending.then(adopt, fail).finally(() => {
        if (gen === this.gen && !this.micError && !this.talkMsg) this.say("");
      });
    }
  }

  onPeerState(session, s) {
    if (this.session !== session) return;
    if (s === "failed") this.setState("failed", "The WebRTC connection failed (network or firewall between browser and ring-bridge).");
    else if (s === "disconnected" && this.state === "live") this.setState("reconnecting");
    else if (s === "connected" && this.state === "reconnecting") this.setState("live");
  }

  toggleMute() {
    this.video.muted = !this.video.muted;
    if (!this.video.muted) this.video.play().catch(() => {});
    this.renderMute();
  }

  renderMute() {
    const muted = this.video.muted;
    this.muteBtn.setAttribute("aria-pressed", String(!muted));
    this.muteBtn.replaceChildren(icon(muted ? "muted" : "sound"), muted ? "Unmute" : "Mute");
  }

  wireTalk() {
    const b = this.talkBtn;
    b.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      b.setPointerCapture?.(e.pointerId);
      this.startTalk();
    });
    for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) {
      b.addEventListener(ev, () => this.stopTalk());
    }
    b.addEventListener("contextmenu", (e) => e.preventDefault());
    // Keyboard: Space held anywhere on the focused tile (the button included).
    this.el.addEventListener("keydown", (e) => {
      if (e.code !== "Space" && e.key !== " ") return;
      if (e.target !== this.el && e.target !== b) return;
      e.preventDefault();
      if (!e.repeat) this.startTalk();
    });
    this.el.addEventListener("keyup", (e) => {
      if (e.code !== "Space" && e.key !== " ") return;
      if (e.target !== this.el && e.target !== b) return;
      e.preventDefault();
      this.stopTalk();
    });
    // Losing focus or the window while holding must never leave the mic open.
    this.el.addEventListener("focusout", (e) => {
      if (!this.el.contains(e.relatedTarget)) this.stopTalk();
    });
    this.onWindowBlur = () => this.stopTalk();
    window.addEventListener("blur", this.onWindowBlur);
  }

  /** Why talk is unavailable, or null when it can be tried. */
  talkBlocker() {
    if (!this.caps.talk) {
      return this.caps.reason ? `Talk unavailable: ${this.caps.reason}.` : "This camera has no speaker, so talk is unavailable.";
    }
    if (this.state !== "live") return "Talk is available once the video is live.";
    if (this.micError && this.micError.code === "insecure") return this.micError.message;
    return null;
  }

  renderTalk() {
    const blocker = this.talkBlocker();
    const b = this.talkBtn;
    b.disabled = Boolean(blocker);
    b.title = blocker || "Hold to talk (mouse, touch, or Space on the focused tile)";
    const talking = this.floorHeld && this.talkWanted;
    b.classList.toggle("active", talking);
    b.setAttribute("aria-pressed", String(talking));
    b.replaceChildren(icon("mic"), talking ? "Talking…" : "Hold to Talk");
    this.badge.hidden = !talking;
    this.el.classList.toggle("talking", talking);
    this.el.dataset.talking = String(talking);
    if (!this.caps.talk) this.say(blocker, "");
    else if (this.micError && !talking && !this.talkMsg) this.say(this.micError.message, "warn");
  }

  say(text, tone = "") {
    this.msg.title = "";
    this.msg.textContent = text || "";
    this.msg.className = `tile-msg ${tone}`;
  }

  async startTalk() {
    if (this.talkWanted || this.state !== "live" || !this.caps.talk) return;
    this.talkWanted = true;
    this.talkMsg = null;
    const session = this.session;
    try {
      if (!this.mic) {
        this.say("Asking for the microphone…");
        this.mic = await getMic();
        this.mic.enabled = false;
        this.micError = null;
        await session.setMic(this.mic);
      }
      if (!this.talkWanted || this.session !== session) return;
      this.say("Asking for the talk channel…");
      await session.talk(true);
      this.floorHeld = true;
      if (!this.talkWanted || this.session !== session) {
        await this.releaseFloor(session);
        return;
      }
      this.mic.enabled = true;
      this.say("");
    } catch (e) {
      this.talkWanted = false;
      if (e instanceof MicError) {
        this.micError = e;
        this.say(e.message, "error");
      } else if (e.status === 409) {
        this.talkMsg = e.message;
        this.say("Someone else is talking on this camera right now. Try again when they let go.", "warn");
        this.msg.title = e.message;
      } else if (e.status === 404 || e.status === 405) {
        this.say("This ring-bridge does not offer talk for WebRTC viewers yet.", "error");
      } else {
        this.say(`Talk failed: ${e.message}`, "error");
      }
    } finally {
      this.renderTalk();
    }
  }

  async stopTalk() {
    if (!this.talkWanted) return;
    this.talkWanted = false;
    if (this.mic) this.mic.enabled = false;
    if (this.floorHeld) await this.releaseFloor(this.session);
    this.renderTalk();
  }

  async releaseFloor(session) {
    if (this.mic) this.mic.enabled = false;
    this.floorHeld = false;
    try {
      if (session && !session.closed) await session.talk(false);
    } catch {
      // The server drops the floor with the session anyway.
    }
  }

  teardown(keepalive = false) {
    this.gen += 1;
    clearTimeout(this.frameTimer);
    this.talkWanted = false;
    this.floorHeld = false;
    if (this.session) this.session.hangup(keepalive);
    this.session = null;
    this.video.srcObject = null;
  }

  /** Hangs up, releases the microphone and removes the tile. */
  close(keepalive = false) {
    this.stats.stop();
    this.teardown(keepalive);
    if (this.mic) this.mic.stop();
    this.mic = null;
    this.state = "closed";
    window.removeEventListener("blur", this.onWindowBlur);
    this.el.remove();
    if (window.ringBridge.tiles[this.cam.slug] === this) delete window.ringBridge.tiles[this.cam.slug];
    if (this.onClose) this.onClose(this);
  }
}
