#!/usr/bin/env bash
# Assembles the installable Home Assistant add-on folder: addon/ plus the
# ring-bridge sources its Dockerfile builds from (source/: Cargo.toml,
# Cargo.lock, src/, assets/).
#
#   scripts/pack-addon.sh [OUT]     (default target/addon/ring_bridge; `make addon`)
#
# Copy OUT to the Supervisor's /addons share (Samba or SSH add-on), e.g.
# `scripts/pack-addon.sh /mnt/ha-addons/ring_bridge`, then reload the add-on
# store and install "Ring Bridge". OUT is replaced only if it is empty or an
# earlier pack (it holds config.yaml with slug ring_bridge).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/target/addon/ring_bridge}

die() {
  printf 'pack-addon: %s\n' "$*" >&2
  exit 1
}

if [[ -e $out ]]; then
  [[ -d $out ]] || die "$out exists and is not a directory"
  if [[ -n $(ls -A "$out") ]]; then
    grep -q '^slug: ring_bridge$' "$out/config.yaml" 2>/dev/null ||
      die "$out is not empty and holds no earlier ring-bridge add-on; refusing to overwrite it"
    find "$out" -mindepth 1 -delete
  fi
fi
mkdir -p "$out/source"

# The add-on files, without the icon helper (a development tool).
for f in "$root"/addon/*; do
  case $(basename "$f") in
  make-icons.sh) ;;
  *) cp -R "$f" "$out/" ;;
  esac
done
for f in Cargo.toml Cargo.lock src assets; do
  cp -R "$root/$f" "$out/source/"
done
printf 'pack-addon: %s is ready (version %s)\n' "$out" \
  "$(sed -n 's/^version: "\(.*\)"$/\1/p' "$out/config.yaml")" >&2
