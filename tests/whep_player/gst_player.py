#!/usr/bin/python3
"""A WHEP player on GStreamer's webrtcbin (libnice ICE, OpenSSL DTLS, libsrtp2):
a third WebRTC stack beside webrtc-rs and aiortc, and the one GStreamer-based
players and recorders use.

It offers recvonly H.264 and Opus with every candidate (no trickle), POSTs the
offer, applies the answer, decodes the video (avdec_h264) and counts Opus
buffers. Speaks the same line protocol as aiortc_player.py: JSON events on
stdout (`answer`, `state`, `stats`, `closed`, `error`), commands on stdin
(`stats`, `quit`).

Run with the system Python (python3-gi, gir1.2-gst-plugins-bad-1.0,
gstreamer1.0-nice; `scripts/setup-deps.sh test`).
"""

import argparse
import ctypes
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f,"
    "level-asymmetry-allowed=(string)1"
)
AUDIO_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
)
# (No `encoding-params=(string)2`: webrtcbin then offers `OPUS/48000` without the
# channel count RFC 7587 asks for, as many GStreamer applications do.)

lock = threading.Lock()
stats = {"frames": 0, "width": 0, "height": 0, "audio_buffers": 0, "state": "new"}


def emit(event, **fields):
    fields["event"] = event
    print(json.dumps(fields), flush=True)


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


class Player:
    def __init__(self, url):
        self.url = url
        self.session = None
        self.loop = GLib.MainLoop()
        self.pipe = Gst.Pipeline.new("player")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "recv")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipe.add(self.webrtc)
        # Loopback only, like the daemon under test (libnice skips loopback
        # unless an address is given), and UDP only.
        ice = self.webrtc.get_property("ice-agent")
        # GStreamer 1.22's getter hands out a reference it does not take, so
        # Python's wrapper would drop webrtcbin's own one: take one for it.
        ctypes.CDLL("libgobject-2.0.so.0").g_object_ref(ctypes.c_void_p(hash(ice)))
        ice.set_property("ice-tcp", False)
        loopback = Nice.Address()
        loopback.set_from_string("127.0.0.1")
        ice.get_property("agent").add_local_address(loopback)
        for caps in (VIDEO_CAPS, AUDIO_CAPS):
            self.webrtc.emit(
                "add-transceiver",
                GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                Gst.Caps.from_string(caps),
            )
        self.webrtc.connect("pad-added", self.on_pad)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_connection)
        self.offered = False
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def start(self):
        self.pipe.set_state(Gst.State.PLAYING)
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer(self, promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, *_):
        state = self.webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.offered:
            self.offered = True
            sdp = self.webrtc.get_property("local-description").sdp.as_text()
            threading.Thread(target=self.post, args=(sdp,), daemon=True).start()

    def post(self, sdp):
        status, headers, body = http("POST", self.url, sdp.encode())
        emit("answer", status=status, sdp=body, offer=sdp)
        if status != 201:
            emit("error", message=f"POST offer: {status} {body}")
            return
        self.session = urllib.parse.urljoin(self.url, headers.get("location", ""))
        ok, msg = GstSdp.SDPMessage.new_from_text(body)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        GLib.idle_add(self.apply, answer)

    def apply(self, answer):
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def on_connection(self, *_):
        state = self.webrtc.get_property("connection-state").value_nick
        with lock:
            stats["state"] = state
        emit("state", state=state)

    def on_pad(self, _, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media")
        if media == "video":
            chain = "rtph264depay ! h264parse ! avdec_h264 ! fakesink name=vsink signal-handoffs=true sync=false"
        else:
            chain = "rtpopusdepay ! fakesink name=asink signal-handoffs=true sync=false"
        bin_ = Gst.parse_bin_from_description("queue ! " + chain, True)
        self.pipe.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))
        sink = bin_.get_by_name("vsink" if media == "video" else "asink")
        sink.connect("handoff", self.on_video if media == "video" else self.on_audio)

    def on_video(self, _sink, _buf, pad):
        s = pad.get_current_caps().get_structure(0)
        with lock:
            stats["frames"] += 1
            stats["width"] = s.get_int("width")[1]
            stats["height"] = s.get_int("height")[1]

    def on_audio(self, *_):
        with lock:
            stats["audio_buffers"] += 1

    def on_error(self, _bus, msg):
        err, dbg = msg.parse_error()
        emit("error", message=f"{err.message} ({dbg})")

    def quit(self):
        status = 0
        if self.session:
            status = http("DELETE", self.session)[0]
        self.pipe.set_state(Gst.State.NULL)
        emit("closed", delete_status=status)
        self.loop.quit()
        return False


def commands(player):
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            with lock:
                emit("stats", **stats)
        elif cmd == "quit":
            GLib.idle_add(player.quit)
            return
    GLib.idle_add(player.quit)


def missing_elements():
    """What webrtcbin builds inside for ICE, DTLS and SRTP that is not installed:
    a clear error instead of a session that never connects."""
    found = {
        "webrtcbin": Gst.ElementFactory.find("webrtcbin"),
        "nicesrc": Gst.ElementFactory.find("nicesrc"),
        "nicesink": Gst.ElementFactory.find("nicesink"),
        "dtlssrtpdec": Gst.ElementFactory.find("dtlssrtpdec"),
        "srtpdec": Gst.ElementFactory.find("srtpdec"),
    }
    return [name for name, factory in found.items() if factory is None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    args = ap.parse_args()
    Gst.init(None)
    missing = missing_elements()
    if missing:
        emit("error", message=f"GStreamer elements missing: {missing}")
        sys.exit(1)
    player = Player(args.url)
    threading.Thread(target=commands, args=(player,), daemon=True).start()
    player.start()
    player.loop.run()


if __name__ == "__main__":
    main()
