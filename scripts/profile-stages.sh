#!/usr/bin/env bash
# Where the daemon's CPU goes, by stage of the media path: runs one bench
# scenario, samples the daemon with `perf record --call-graph dwarf` in the
# middle of its load window, and sorts every sample into a stage by the task
# (or thread) it ran in (scripts/profile-stages.py). Needs Debian's linux-perf
# (`scripts/setup-deps.sh profile` installs it when missing and run as root)
# and python3. A developer tool, not part of `make run` or `make test`.
#
#   scripts/profile-stages.sh target/release/ring-bridge [bench flags...]
#   scripts/profile-stages.sh target/release/ring-bridge --cameras 2 --rtsp 8 --webrtc 8
set -euo pipefail
bash "$(dirname "$0")/setup-deps.sh" profile
BIN=$(realpath "${1:?usage: scripts/profile-stages.sh BINARY [BENCH FLAGS...]}")
shift
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BIN" bench --duration 40s --warmup 3s --ttff-rounds 0 --no-baseline --idle 0s \
  --quiet-wait 60s "$@" --out "$OUT/bench" >"$OUT/bench.log" 2>&1 &
BENCH=$!
PID=
for _ in $(seq 300); do
  PID=$(pgrep -f "$BIN --config $OUT/bench" | head -1 || true)
  [ -n "$PID" ] && break
  sleep 1
done
[ -n "$PID" ] || { echo "no daemon started; see $OUT/bench.log" >&2; exit 1; }
# The load window opens after the viewers' first key frames and the warm-up.
for _ in $(seq 120); do
  grep -q "bench: processes quiet" "$OUT/bench.log" && break
  sleep 1
done
sleep 15
perf stat -e task-clock,context-switches -p "$PID" -- sleep 10 2>&1 | grep -E "task-clock|context-switches"
perf record -q -F 999 --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep 10 2>/dev/null
perf script -i "$OUT/perf.data" 2>/dev/null >"$OUT/perf.txt"
wait "$BENCH" || true
grep -m1 -A2 "^| scenario | viewers" "$OUT/bench/bench.md" | tail -1
python3 "$(dirname "$0")/profile-stages.py" "$OUT/perf.txt"
