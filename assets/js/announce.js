// The Announce box of a live tile: type a text (spoken by the camera) or pick
// an audio file (WAV, MP3, Ogg), then Announce. POSTs to
// api/ring/cameras/<slug>/announce, which answers once the clip has played.

import { request } from "./api.js";
import { h } from "./ui.js";

/** Audio types the server takes, by file extension (when the browser gives none). */
const TYPES = { wav: "audio/wav", mp3: "audio/mpeg", ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/opus" };

/** How long an announcement waits for someone talking on the camera to finish. */
const FLOOR_WAIT_S = 10;

/** Clips are at most 30 s; the set-up of the live call adds a few seconds. */
const ANNOUNCE_TIMEOUT_MS = 90000;

/**
 * Builds the box for `cam`. `say(text, tone)` shows the outcome on the tile;
 * `canTalk()` says whether the camera can talk now (else the reason).
 */
export function announceBox(cam, say, canTalk) {
  const text = h("input", {
    class: "announce-text", type: "text", maxlength: "500",
    placeholder: "Say something…", "aria-label": `Text to announce on ${cam.name}`,
  });
  const file = h("input", {
    class: "announce-file", type: "file", accept: "audio/wav,audio/mpeg,audio/ogg,audio/opus,.wav,.mp3,.ogg,.opus",
    "aria-label": `Audio file to play on ${cam.name}`,
  });
  const button = h("button", { class: "btn small announce-btn", type: "submit" }, "Announce");
  const form = h("form", { class: "announce", "aria-label": `Announce on ${cam.name}` }, text, file, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const blocker = canTalk();
    if (blocker) {
      say(blocker, "warn");
      return;
    }
    const picked = file.files && file.files[0];
    if (!picked && !text.value.trim()) {
      say("Type a text or pick an audio file to announce.", "warn");
      return;
    }
    let init;
    if (picked) {
      const ext = (picked.name.split(".").pop() || "").toLowerCase();
      const type = picked.type || TYPES[ext] || "application/octet-stream";
      init = { method: "POST", headers: { "Content-Type": type }, body: picked };
    } else {
      init = {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: text.value.trim(), wait_s: FLOOR_WAIT_S }),
      };
    }
    button.disabled = true;
    say(picked ? `Playing ${picked.name}…` : "Speaking…");
    try {
      const query = picked ? `?wait_s=${FLOOR_WAIT_S}` : "";
      const resp = await request(`api/ring/cameras/${encodeURIComponent(cam.slug)}/announce${query}`, {
        ...init, timeoutMs: ANNOUNCE_TIMEOUT_MS,
      });
      const a = await resp.json();
      say(`Announced (${(a.played_ms / 1000).toFixed(1)} s).`, "");
      form.dataset.lastPlayedMs = String(a.played_ms);
      if (picked) file.value = "";
    } catch (err) {
      if (err.status === 409) say(`Not announced: ${err.message}`, "warn");
      else say(`Announce failed: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
