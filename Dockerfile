# ring-bridge container image.
#
#   docker build -t ring-bridge .
#   docker run -d --name ring-bridge --env-file .env -v ring-bridge-data:/data \
#     -p 3000:3000/tcp -p 8554:8554/tcp -p 40000-40100:40000-40100/udp ring-bridge
#
# Or `docker compose up -d` with docker-compose.yml. Secrets (RING_REFRESH_TOKEN,
# MQTT_URL with a password) come from the environment at run time, never from
# this file. The rotated Ring token and the hardware id live in /data: keep that
# volume across upgrades.
#
# Two stages: a Rust + GStreamer -dev builder, then a slim Debian runtime with
# only the GStreamer runtime libraries and plugins, running as a non-root user.
# The same file builds every architecture Debian and the rust image support
# (amd64, arm64, armv7): `docker buildx build --platform linux/arm64 .`.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# The build list of scripts/setup-deps.sh, without the runtime plugins, plus
# protoc, cmake and the OpenSSL headers for the `fcm` feature (real Ring push
# through Google FCM; its `ece` crate links OpenSSL, hence libssl3 at run time).
ARG CARGO_FEATURES=fcm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config \
      protobuf-compiler \
      cmake \
      libssl-dev \
      libgstreamer1.0-dev \
      libgstreamer-plugins-base1.0-dev \
      libgstrtspserver-1.0-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first: this layer is rebuilt only when Cargo.toml or Cargo.lock
# change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --features "${CARGO_FEATURES}" \
 && rm -rf src

# The real sources. Touch the crate roots so cargo rebuilds over the dummy.
COPY . .
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --features "${CARGO_FEATURES}" --bin ring-bridge \
 && install -D -m 0755 target/release/ring-bridge /out/ring-bridge \
 && strip /out/ring-bridge

# ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# GStreamer runtime only (no -dev packages, no compiler):
# - libgstrtspserver for the RTSP server, plugins base/good for RTP payloaders,
#   parsers, MP4 and JPEG;
# - bad/ugly/libav/x and a font for the built-in simulator (demo mode): x264,
#   AAC, decoders and text overlays on the generated clips and snapshots;
# - espeak-ng: text to speech for announcements;
# - tini as PID 1 (signals, zombie reaping).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libssl3 \
      tini \
      fonts-dejavu-core \
      espeak-ng \
      libgstreamer1.0-0 \
      libgstreamer-plugins-base1.0-0 \
      libgstrtspserver-1.0-0 \
      gstreamer1.0-plugins-base \
      gstreamer1.0-plugins-good \
      gstreamer1.0-plugins-bad \
      gstreamer1.0-plugins-ugly \
      gstreamer1.0-libav \
      gstreamer1.0-x \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid, so bind mounts can be chown'ed to it (10001:10001).
RUN groupadd --gid 10001 ringbridge \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home \
      --home-dir /home/ringbridge --shell /usr/sbin/nologin ringbridge \
 && install -d -m 0700 -o 10001 -g 10001 /data

COPY --from=builder /out/ring-bridge /usr/local/bin/ring-bridge

# Token store, hardware id and other state: must survive restarts and upgrades.
ENV RING_BRIDGE_STATE_DIR=/data
VOLUME /data

# Console + REST API, RTSP, WebRTC (ICE) UDP range.
EXPOSE 3000/tcp 8554/tcp 40000-40100/udp

USER 10001:10001
WORKDIR /home/ringbridge

# `ring-bridge healthcheck` reads the configuration exactly like `run` (the
# file named by RING_BRIDGE_CONFIG, then the environment), so a port set in the
# TOML file (`http.port`) is followed as well as HTTP_PORT, and asks /healthz.
# Pass the config file through RING_BRIDGE_CONFIG rather than `--config`, which
# the health check cannot see.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["ring-bridge", "healthcheck"]

LABEL org.opencontainers.image.title="ring-bridge" \
      org.opencontainers.image.description="Ring doorbells and cameras: WebRTC console, RTSP, MQTT + Home Assistant" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

ENTRYPOINT ["/usr/bin/tini", "--", "ring-bridge"]
CMD ["run"]
