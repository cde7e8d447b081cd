#!/usr/bin/env bash
# Runs the README's two commands on a new Debian 12, so a package installed by
# hand on this machine cannot hide a missing set-up step.
#
#   sudo scripts/fresh-machine-check.sh            # make test + make run smoke
#   sudo scripts/fresh-machine-check.sh --run-only # only the make run smoke
#   sudo scripts/fresh-machine-check.sh --keep     # keep the root for a look
#
# It builds a minbase Debian 12 root with debootstrap (cached in
# $FRESH_CACHE, default /var/cache/ring-bridge-fresh, so reruns skip it),
# installs there only the README's prerequisites, bind-mounts the caller's
# Rust toolchain (rustup + cargo, read-only) and cargo's download cache, clones
# this repository's committed HEAD inside, and runs as root in the chroot:
#   1. `make test` (set-up included: it installs what the suite needs);
#   2. `make run` (demo mode): the camera list, H.264 over RTSP (ffprobe) and a
#      JPEG snapshot of a demo camera.
# Every mount is undone and every process started inside is killed on exit.
# Takes about 30 minutes on 2 cores; not part of `make test`.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${FRESH_CACHE:-/var/cache/ring-bridge-fresh}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
run_tests=1
keep=0
for a in "$@"; do
  case "$a" in
    --run-only) run_tests=0 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--run-only] [--keep]" >&2; exit 2 ;;
  esac
done

[[ $(id -u) -eq 0 ]] || { echo "run as root (debootstrap and chroot need it)" >&2; exit 1; }
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
[[ -x "$cargo_home/bin/cargo" ]] || { echo "no Rust toolchain in $cargo_home (install it with rustup)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

# The README's prerequisites on a bare Debian 12 (README "Quick start").
prereqs="make git curl ca-certificates"

base="$cache/bookworm-minbase"
if [[ ! -f "$base/.complete" ]]; then
  echo "==> building the base root in $base (cached for later runs)"
  rm -rf "$base"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$base" "$mirror"
  touch "$base/.complete"
fi

root="$(mktemp -d /var/tmp/ring-bridge-fresh.XXXXXX)"
mounts=()
mnt() { # mnt SRC DEST [options]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [[ -n "${3:-}" ]]; then mount -o "remount,bind,$3" "$2"; fi
}
cleanup() {
  set +e
  # Kill whatever still runs inside the root.
  for p in /proc/[0-9]*; do
    if [[ "$(readlink "$p/root" 2>/dev/null)" == "$root" ]]; then kill -9 "${p#/proc/}" 2>/dev/null; fi
  done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}"; done
  if ((keep)); then echo "root kept in $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT

echo "==> copying the base root to $root"
cp -a "$base/." "$root/"
mnt /proc "$root/proc"
mnt /sys "$root/sys" ro
mnt /dev "$root/dev"
mnt /dev/pts "$root/dev/pts"
mnt "$rustup_home" "$root/root/.rustup" ro
mnt "$cargo_home/bin" "$root/root/.cargo/bin" ro
mkdir -p "$cargo_home/registry"
mnt "$cargo_home/registry" "$root/root/.cargo/registry"
mnt "$here" "$root/src" ro
cp /etc/resolv.conf "$root/etc/resolv.conf"

# The host's network trust goes in too: where HTTPS passes through a proxy with
# its own CA (this host's extra certificates and the variables naming the CA
# bundle), a fresh machine on the same network has them as well; without them
# pip and npm fail on the proxy's certificate, not on a missing set-up step.
trust_env=()
for v in SSL_CERT_FILE SSL_CERT_DIR PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE \
  NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO https_proxy http_proxy no_proxy HTTPS_PROXY HTTP_PROXY NO_PROXY; do
  [[ -n "${!v:-}" ]] && trust_env+=("$v=${!v}")
done

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${trust_env[@]}" \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTUP_AUTO_INSTALL=0 /bin/bash -euo pipefail -c "$1"
}

echo "==> the README's prerequisites: $prereqs"
in_root "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $prereqs"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  in_root "update-ca-certificates >/dev/null"
fi
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
in_root "git config --global --add safe.directory '*' && git clone -q /src /root/ring-bridge"

if ((run_tests)); then
  echo "==> make test"
  in_root "cd /root/ring-bridge && make test"
fi

echo "==> make run (demo mode) smoke"
in_root "cd /root/ring-bridge && make setup && cargo build -q --bin ring-bridge"
in_root "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg"
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rtsp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mqtt_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
in_root "cd /root/ring-bridge && HTTP_PORT=$http_port RTSP_PORT=$rtsp_port MQTT_LOCAL_PORT=$mqtt_port \
  RING_BRIDGE_STATE_DIR=/root/state nohup make run >/root/run.log 2>&1 &"
api="http://127.0.0.1:$http_port"
for _ in $(seq 1 120); do
  curl -fsS "$api/api/ring/cameras" -o /tmp/ring-bridge-fresh-cameras.json 2>/dev/null && break
  sleep 1
done
slug=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(next(x["slug"] for x in c if x.get("online", True)))' /tmp/ring-bridge-fresh-cameras.json)
id=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(next(x["id"] for x in c if x["slug"]==sys.argv[2]))' /tmp/ring-bridge-fresh-cameras.json "$slug")
echo "    cameras listed; probing $slug"
codec=$(in_root "ffprobe -v error -rtsp_transport tcp -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 rtsp://127.0.0.1:$rtsp_port/$slug")
[[ "$codec" == h264 ]] || { echo "RTSP gave codec '$codec', not h264"; cat "$root/root/run.log"; exit 1; }
echo "    RTSP: h264"
curl -fsS "$api/api/ring/cameras/$id/snapshot" -o /tmp/ring-bridge-fresh.jpg
[[ "$(head -c 2 /tmp/ring-bridge-fresh.jpg | od -An -tx1 | tr -d ' ')" == ffd8 ]] || {
  echo "the snapshot is not a JPEG"; cat "$root/root/run.log"; exit 1; }
echo "    snapshot: JPEG"
rm -f /tmp/ring-bridge-fresh.jpg /tmp/ring-bridge-fresh-cameras.json
echo "==> fresh machine: all passed"
