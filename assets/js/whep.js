// A WHEP client (draft-ietf-wish-whep) for one camera, plus the talk floor.
//
// The offer has a recvonly video transceiver and a sendrecv audio transceiver.
// The audio sender carries the microphone track when we have one (disabled
// except while holding to talk); without one it is still sendrecv, and a track
// added later goes in with replaceTrack (no renegotiation). ICE gathering
// completes before the offer is sent, because the server answers non-trickle
// and we do not PATCH candidates.

import { errorFrom, ApiError } from "./api.js";

/** Longest wait for local ICE candidates before sending the offer anyway. */
const ICE_GATHER_MS = 2500;

/** Microphone failure with a message meant for the person. */
export class MicError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "MicError";
    this.code = code; // insecure | denied | missing | busy | other
  }
}

/** Asks for the microphone; resolves to an audio track or throws MicError. */
export async function getMic() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new MicError(
      "insecure",
      "Talking needs the console on HTTPS or http://localhost: browsers only allow the microphone on secure pages.",
    );
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    const track = stream.getAudioTracks()[0];
    if (!track) throw new MicError("missing", "The browser gave no microphone track.");
    return track;
  } catch (e) {
    if (e instanceof MicError) throw e;
    switch (e && e.name) {
      case "NotAllowedError":
      case "SecurityError":
        throw new MicError(
          "denied",
          "Microphone access is blocked. Allow it in the site settings (the icon left of the address bar), then press Hold to Talk again.",
        );
      case "NotFoundError":
      case "OverconstrainedError":
        throw new MicError("missing", "No microphone found on this device.");
      case "NotReadableError":
      case "AbortError":
        throw new MicError("busy", "The microphone is in use by another application or could not be opened.");
      default:
        throw new MicError("other", `Microphone unavailable: ${e && e.message ? e.message : e}`);
    }
  }
}

function waitIceGathering(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * One WHEP viewing session. Events go to `onState(pcConnectionState)`.
 * `stream` holds the remote tracks; `pc` is public for tests and stats.
 */
export class WhepSession {
  constructor(endpoint, { micTrack = null, onState = () => {} } = {}) {
    this.endpoint = endpoint;
    this.micTrack = micTrack;
    this.onState = onState;
    this.pc = null;
    this.location = null;
    this.stream = new MediaStream();
    this.closed = false;
  }

  /** Offers, posts, applies the answer. Throws ApiError (with the server's message). */
  async start(timeoutMs = 20000) {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    this.audio = pc.addTransceiver(this.micTrack || "audio", { direction: "sendrecv" });
    pc.addEventListener("track", (e) => {
      if (!this.stream.getTracks().includes(e.track)) this.stream.addTrack(e.track);
    });
    pc.addEventListener("connectionstatechange", () => this.onState(pc.connectionState));

    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc, ICE_GATHER_MS);
    if (this.closed) throw new ApiError(0, "cancelled", "disconnected");

    let resp;
    try {
      resp = await fetch(this.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Accept: "application/sdp" },
        body: pc.localDescription.sdp,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const why = e && e.name === "TimeoutError"
        ? `the camera did not answer within ${Math.round(timeoutMs / 1000)} s`
        : "cannot reach ring-bridge";
      throw new ApiError(0, "network", why);
    }
    if (resp.status === 404 || resp.status === 405) {
      const err = await errorFrom(resp);
      // No WHEP route at all (older ring-bridge) versus an unknown camera.
      if (err.kind === "not_found" && /endpoint/i.test(err.message)) {
        err.message = "this ring-bridge has no WebRTC (WHEP) endpoint yet; use the RTSP URL instead";
      }
      throw err;
    }
    if (!resp.ok) throw await errorFrom(resp);
    const loc = resp.headers.get("Location");
    this.location = loc ? new URL(loc, resp.url || this.endpoint).href : null;
    const answer = await resp.text();
    if (this.closed) {
      this.hangup(false);
      throw new ApiError(0, "cancelled", "disconnected");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  /** Puts `track` on the audio sender (no renegotiation). */
  async setMic(track) {
    this.micTrack = track;
    if (this.audio) await this.audio.sender.replaceTrack(track);
  }

  /**
   * Asks for or gives back the talk floor: POST <session>/talk {talking}.
   * Resolves on 200; throws ApiError (409: someone else is talking).
   */
  async talk(talking) {
    if (!this.location) throw new ApiError(0, "no_session", "the server gave no session URL, so talk is unavailable");
    const u = this.location.replace(/\/+$/, "") + "/talk";
    let resp;
    try {
      resp = await fetch(u, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ talking }),
        signal: AbortSignal.timeout(8000),
        keepalive: !talking,
      });
    } catch {
      throw new ApiError(0, "network", "cannot reach ring-bridge");
    }
    if (!resp.ok) throw await errorFrom(resp);
  }

  /** Ends the session: DELETE <session> (kept alive across page unload) and close the peer. */
  hangup(keepalive = false) {
    this.closed = true;
    if (this.location) {
      fetch(this.location, { method: "DELETE", keepalive }).catch(() => {});
      this.location = null;
    }
    if (this.pc) {
      this.pc.close();
    }
  }
}
