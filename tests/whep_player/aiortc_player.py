#!/usr/bin/env python3
"""A standard WHEP player built on aiortc, a WebRTC stack independent of webrtc-rs
and Chromium, for tests/whep_aiortc.rs.

It behaves as any WHEP player would and never calls ring-bridge's own API (no
`POST <session>/talk`): it POSTs an offer with recvonly H.264 video and a sendrecv
Opus microphone, plays what it receives (decoding the H.264 with aiortc's own
decoder), sends silence or a tone on its microphone, and DELETEs its session.

Control (stdin, one command per line):
  tone      the microphone sends a 440 Hz sine (about -13 dBFS)
  silence   the microphone sends digital silence (the default)
  stats     print a stats event now
  quit      DELETE the session, close the peer and exit

Events (stdout, one JSON object per line):
  {"event": "answer", "status": 201, "location": "...", "sdp": "..."}
  {"event": "state", "state": "connected"}
  {"event": "stats", "video_frames", "width", "height", "fps", "audio_frames",
   "mic_frames", "sps_profile_level_id"}
  {"event": "closed", "delete_status": 200}
  {"event": "error", "message": "..."}

`sps_profile_level_id` is read by the player itself from the SPS NAL units it
receives (profile_idc, constraint flags, level_idc), so a test can compare the
answer's `profile-level-id` with the stream really sent.

Options: --url <WHEP endpoint> (required); --h264 PLID[,PLID...] offers these
H.264 profile-level-ids (packetization-mode=1, level-asymmetry-allowed=1) instead
of aiortc's own (`42001f,42e01f`), e.g. `64001f` for a player that lists only
High. ICE is kept on 127.0.0.1 (the daemon under test listens there only).
"""

import argparse
import array
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.error
import urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.codecs import h264 as aiortc_h264
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from av import AudioFrame

RATE = 48_000
PTIME_SAMPLES = 960  # 20 ms
TONE_HZ = 440
TONE_AMPLITUDE = 0.3

state = {"sps": None}


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def keep_ice_on_loopback():
    """aioice gathers every interface but loopback; the daemon listens on
    127.0.0.1 only, and the test must not send to any other address."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def offer_h264(profile_level_ids):
    """Replaces aiortc's H.264 formats (and their RTX) with `profile_level_ids`."""
    video = CODECS["video"]
    h264 = {c.payloadType for c in video if c.mimeType.lower() == "video/h264"}
    video[:] = [
        c
        for c in video
        if c.payloadType not in h264 and c.parameters.get("apt") not in h264
    ]
    pt = max(c.payloadType for c in video) + 1
    for i, plid in enumerate(profile_level_ids):
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90_000,
                payloadType=pt + i,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": plid,
                },
            )
        )


def sniff_sps(annexb):
    """Records profile-level-id from the first SPS (NAL type 7) in an access unit."""
    i = 0
    n = len(annexb)
    while i + 3 < n:
        if annexb[i] == 0 and annexb[i + 1] == 0 and annexb[i + 2] == 1:
            nal = annexb[i + 3 : i + 8]
            if len(nal) >= 4 and nal[0] & 0x1F == 7:
                state["sps"] = "%02x%02x%02x" % (nal[1], nal[2], nal[3])
                return
            i += 3
        else:
            i += 1


def watch_decoded_sps():
    original = aiortc_h264.H264Decoder.decode

    def decode(self, encoded_frame):
        sniff_sps(encoded_frame.data)
        return original(self, encoded_frame)

    aiortc_h264.H264Decoder.decode = decode


class Microphone(MediaStreamTrack):
    """20 ms mono frames at 48 kHz, paced in real time: silence or a sine."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.tone = False
        self.sent = 0
        self._start = None
        self._pts = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += PTIME_SAMPLES
            wait = self._start + self._pts / RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = array.array("h", bytes(2 * PTIME_SAMPLES))
        if self.tone:
            for k in range(PTIME_SAMPLES):
                t = (self._pts + k) / RATE
                samples[k] = int(32767 * TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * t))
        frame = AudioFrame(format="s16", layout="mono", samples=PTIME_SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.pts = self._pts
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        return frame


class Player:
    def __init__(self):
        self.video_frames = 0
        self.audio_frames = 0
        self.width = 0
        self.height = 0
        self.recent = []  # arrival times of the last frames, for fps

    async def play_video(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.video_frames += 1
            self.width, self.height = frame.width, frame.height
            now = time.monotonic()
            self.recent = [t for t in self.recent if now - t <= 2.0] + [now]

    async def play_audio(self, track):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.audio_frames += 1

    def fps(self):
        if len(self.recent) < 2:
            return 0.0
        span = self.recent[-1] - self.recent[0]
        return (len(self.recent) - 1) / span if span > 0 else 0.0


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def run(args):
    keep_ice_on_loopback()
    watch_decoded_sps()
    if args.h264:
        offer_h264(args.h264.split(","))

    pc = RTCPeerConnection()
    player = Player()
    mic = Microphone()
    tasks = []

    @pc.on("track")
    def on_track(track):
        play = player.play_video if track.kind == "video" else player.play_audio
        tasks.append(asyncio.ensure_future(play(track)))

    @pc.on("connectionstatechange")
    def on_state():
        emit("state", state=pc.connectionState)

    pc.addTransceiver("video", direction="recvonly")
    pc.addTrack(mic)
    await pc.setLocalDescription(await pc.createOffer())

    status, headers, answer = await asyncio.to_thread(
        http, "POST", args.url, pc.localDescription.sdp.encode(), "application/sdp"
    )
    location = headers.get("Location") or headers.get("location") or ""
    emit("answer", status=status, location=location, sdp=answer)
    if status != 201:
        await pc.close()
        return 1
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    origin = args.url.split("/api/", 1)[0]
    session_url = location if location.startswith("http") else origin + location

    def stats():
        emit(
            "stats",
            video_frames=player.video_frames,
            width=player.width,
            height=player.height,
            fps=round(player.fps(), 2),
            audio_frames=player.audio_frames,
            mic_frames=mic.sent,
            sps_profile_level_id=state["sps"],
        )

    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        cmd = line.strip()
        if cmd == "tone":
            mic.tone = True
        elif cmd == "silence":
            mic.tone = False
        elif cmd == "stats":
            stats()
        elif cmd in ("quit", ""):  # "" is end of input: the test went away
            break
        else:
            emit("error", message=f"unknown command {cmd!r}")

    status, _, _ = await asyncio.to_thread(http, "DELETE", session_url)
    await pc.close()
    for t in tasks:
        t.cancel()
    emit("closed", delete_status=status)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the WHEP endpoint")
    parser.add_argument("--h264", help="H.264 profile-level-ids to offer, comma-separated")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except Exception as e:  # report, then fail
        emit("error", message=f"{type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
