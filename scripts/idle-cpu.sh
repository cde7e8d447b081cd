#!/usr/bin/env bash
# The daemon's CPU while idle: demo mode (the built-in simulator, six cameras),
# MQTT off, no viewer and no hold. Starts the given binary on loopback with a
# throw-away state directory, lets it load the camera list, then reads its
# user + system CPU time from /proc over the measured window.
#
#   scripts/idle-cpu.sh target/release/ring-bridge [seconds]   # default 60
set -euo pipefail
BIN=${1:?usage: scripts/idle-cpu.sh BINARY [SECONDS]}
SECS=${2:-60}
STATE=$(mktemp -d)
export RING_BRIDGE_STATE_DIR="$STATE" LISTEN_IP=127.0.0.1 HTTP_PORT=0 RTSP_PORT=0 MQTT_ENABLED=false
"$BIN" run >"$STATE/log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$STATE"' EXIT
for _ in $(seq 60); do
  grep -q "camera list loaded" "$STATE/log" && break
  sleep 1
done
grep -q "camera list loaded" "$STATE/log" || { echo "the daemon did not load its cameras" >&2; exit 1; }
sleep 5 # settle after start-up
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
c0=$(cpu)
sleep "$SECS"
c1=$(cpu)
awk -v d=$((c1 - c0)) -v t="$tick" -v s="$SECS" \
  'BEGIN { printf "idle CPU: %.2f s over %d s (%.3f %% of a core)\n", d / t, s, 100 * d / t / s }'
