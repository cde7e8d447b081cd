#!/usr/bin/env python3
"""Sorts `perf script` samples of the daemon into stages of the media path.

Each sample is attributed to the task or thread it ran in: GStreamer streaming
threads by name, Tokio tasks by the future they poll (the webrtc-rs tasks of the
Ring call, our track tasks, the hub, the WHEP writer, the RTSP feeder), the rest
to the runtime itself (parking, epoll, wake-ups). Prints a Markdown table of the
share of samples per stage.

    perf script -i perf.data > perf.txt; scripts/profile-stages.py perf.txt
"""
import collections
import sys

# First match wins; the patterns are symbols seen on the sample's stack.
STAGES = [
    ("WHEP out: writer task (H.264 packetizer, interceptors, SRTP, sendto)", ["webrtc::outbound"]),
    ("Ring in: ICE socket read task (recvfrom, STUN, candidate lookup)", ["start_candidate"]),
    ("Ring in: DTLS/SRTP mux task", ["webrtc::mux::Mux"]),
    ("Ring in: SRTP session task (decrypt, replay check)", ["webrtc_srtp::session::Session::new"]),
    ("Ring in: track tasks (interceptor read chain, depacketize, frame)",
     ["TrackRemote::read_rtp", "ring::live::media", "VideoDepacketizer"]),
    ("hub: supervisor publish, subscriber wake-ups",
     ["media::supervisor", "media::subscriber", "LiveSource for", "media::stream"]),
    ("RTSP out: feeder task (appsrc push)", ["rtsp::", "app_src"]),
    ("RTCP: interceptor timers and readers (reports, TWCC, stats)", ["interceptor::", "read_rtcp", "rtcp"]),
    ("instrumented tasks (code inlined into the span wrapper; span enter/exit)", ["tracing"]),
]


def stage(comm, stack):
    if not comm.startswith("tokio"):
        if comm.startswith(("videosrc", "audiosrc")):
            return "RTSP out: GStreamer streaming thread (appsrc → rtph264pay → RTP session → TCP send)"
        return "GStreamer, other threads"
    for name, patterns in STAGES:
        if any(p in stack for p in patterns):
            return name
    return "Tokio runtime: parking, epoll, wake-ups"


def main(path):
    counts = collections.Counter()
    total = 0
    for block in open(path, encoding="utf-8", errors="replace").read().split("\n\n"):
        lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
        if not lines:
            continue
        total += 1
        counts[stage(lines[0].split()[0], "\n".join(lines[1:]))] += 1
    print("| stage | share of samples |\n|---|---|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f} % |")
    print(f"\n{total} samples")


if __name__ == "__main__":
    main(sys.argv[1])
