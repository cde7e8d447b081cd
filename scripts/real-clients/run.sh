#!/usr/bin/env bash
# Real-client check (manual, not part of `make test`): the unmodified
# ring-client-api 14.3.0 (npm) and python ring_doorbell 0.9.14 (PyPI) against
# `ring-bridge sim` behind a loopback TLS reverse proxy on 127.0.0.1:443 that
# sends Host, X-Forwarded-Proto and X-Forwarded-For. Ring's host names resolve
# to 127.0.0.1 inside the two clients only (an aiohttp resolver; a Node dns
# preload), and they trust a throw-away certificate. Needs root (port 443),
# node/npm, python3 with venv, openssl, and network access to npm and PyPI.
#
# Usage: scripts/real-clients/run.sh [path/to/ring-bridge]   (default target/debug/ring-bridge)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-target/debug/ring-bridge}")
sim_port=${SIM_PORT:-18480}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 1 -config "$here/san.cnf" 2>/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q ring_doorbell==0.9.14
cp "$here/check_js.mjs" "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund ring-client-api@14.3.0)

"$bin" sim --listen "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
pids+=($!)
node "$here/proxy.js" 443 "$sim_port" "$work" >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_port "$sim_port"
wait_port 443

echo "== python ring_doorbell"
"$work/venv/bin/python" "$here/check_py.py" "$work/cert.pem"
echo "== ring-client-api"
(cd "$work" && NODE_EXTRA_CA_CERTS="$work/cert.pem" node -r "$here/dns-loopback.js" check_js.mjs)
echo "== simulator requests"
curl -s "http://127.0.0.1:$sim_port/_sim/state" | python3 -c \
    'import json,sys; s=json.load(sys.stdin); print(s["requests"], "sessions:", s["sessions_created"], "hang-ups:", s["live_hangups"])'
