#!/usr/bin/env bash
# Installs the Debian packages ring-bridge needs, skipping those already there.
#   scripts/setup-deps.sh build   # to build and run (GStreamer, pkg-config)
#   scripts/setup-deps.sh test    # also what the test suite drives (ffmpeg, mosquitto, chromium)
# As root it runs apt-get itself; otherwise it prints the exact command and stops.
set -euo pipefail

build_pkgs=(
  pkg-config gcc
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
)
test_pkgs=(ffmpeg mosquitto mosquitto-clients chromium)

want=("${build_pkgs[@]}")
if [[ "${1:-build}" == "test" ]]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "ring-bridge needs these Debian packages: ${missing[*]}" >&2
    echo "Run as root:" >&2
    echo "  sudo sh -c '$cmd'" >&2
    exit 1
  fi
  echo "Installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust 1.95 or newer (https://rustup.rs) and re-run." >&2
  exit 1
fi
