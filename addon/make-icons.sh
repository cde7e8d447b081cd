#!/usr/bin/env bash
# Regenerates icon.png (128x128) and logo.png (250x100) with ImageMagick 6
# (Debian: apt-get install imagemagick fonts-dejavu-core).
set -euo pipefail
cd "$(dirname "$0")"
big=$(mktemp --suffix=.png)
trap 'rm -f "$big"' EXIT
# A video doorbell (lens on top, button below) on a rounded blue tile, drawn at
# 512x512 and scaled down for smooth edges.
convert -size 512x512 xc:none \
  -fill '#1565C0' -draw 'roundrectangle 16,16 495,495 96,96' \
  -fill white -draw 'roundrectangle 166,72 346,440 90,90' \
  -fill '#0D2B52' -draw 'circle 256,170 256,122' \
  -fill '#4FC3F7' -draw 'circle 256,170 256,148' \
  -fill none -stroke '#1565C0' -strokewidth 22 -draw 'circle 256,340 256,282' \
  -stroke none -fill '#1565C0' -draw 'circle 256,340 256,318' \
  "PNG32:$big"
convert "$big" -resize 128x128 -strip PNG32:icon.png
convert -size 1000x400 xc:none \
  \( "$big" -resize 320x320 \) -geometry +30+40 -composite \
  -font DejaVu-Sans-Bold -pointsize 118 -fill '#1565C0' -annotate +380+205 'Ring' \
  -font DejaVu-Sans -pointsize 118 -fill '#37474F' -annotate +380+335 'Bridge' \
  -resize 250x100 -strip PNG32:logo.png
