#!/usr/bin/env bash
# Home Assistant add-on entry point for ring-bridge.
#
# Reads the add-on options (/data/options.json), asks the Supervisor for its MQTT
# broker and the host address (for WebRTC) when the options leave them empty,
# writes a ring-bridge TOML config (trusting Home Assistant's ingress proxy,
# browser WebRTC on UDP port 8555) and execs
# `ring-bridge run --config FILE`. State (the rotated Ring token, the hardware
# id) goes to /data, which survives restarts and add-on updates.
#
# Needs bash, jq and curl; no bashio, so it runs (and is tested) outside the
# Supervisor too. Every path and the command can be overridden:
#   RING_BRIDGE_ADDON_OPTIONS         options file        (/data/options.json)
#   RING_BRIDGE_ADDON_SUPERVISOR_URL  Supervisor API      (http://supervisor)
#   RING_BRIDGE_ADDON_CONFIG_OUT      generated TOML      (/tmp/ring-bridge/config.toml)
#   RING_BRIDGE_ADDON_STATE_DIR       state directory     (/data)
#   RING_BRIDGE_ADDON_BIN             ring-bridge binary  (ring-bridge)
#   RING_BRIDGE_ADDON_COMMAND         subcommand          (run; e.g. check-config)
# SUPERVISOR_TOKEN is set by the Supervisor in every add-on container.
set -euo pipefail

options_file=${RING_BRIDGE_ADDON_OPTIONS:-/data/options.json}
supervisor_url=${RING_BRIDGE_ADDON_SUPERVISOR_URL:-http://supervisor}
config_out=${RING_BRIDGE_ADDON_CONFIG_OUT:-/tmp/ring-bridge/config.toml}
state_dir=${RING_BRIDGE_ADDON_STATE_DIR:-/data}
bin=${RING_BRIDGE_ADDON_BIN:-ring-bridge}
command=${RING_BRIDGE_ADDON_COMMAND:-run}

log() { printf '[ring-bridge add-on] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

command -v jq >/dev/null || die "jq is not installed"
[[ -r $options_file ]] || die "cannot read the add-on options at $options_file"
options=$(jq -ce 'if type == "object" then . else error("not a JSON object") end' "$options_file") ||
  die "$options_file is not a JSON object"

# One option as text; "" when missing or null. Booleans print as true/false.
opt() {
  jq -r --arg k "$1" '.[$k] | if . == null then "" else tostring end' <<<"$options"
}

# --- MQTT ---------------------------------------------------------------------
# Precedence: mqtt_enabled=false > mqtt_url option > the Supervisor's MQTT
# service (the Mosquitto add-on). Without any broker MQTT is turned off: an
# embedded broker inside this container would be unreachable for Home Assistant.
mqtt_enabled=$(opt mqtt_enabled)
mqtt_url=$(opt mqtt_url)
if [[ $mqtt_enabled == false ]]; then
  mqtt_url=""
  log "MQTT: off (mqtt_enabled is false)"
elif [[ -n $mqtt_url ]]; then
  mqtt_enabled=true
  log "MQTT: using mqtt_url from the add-on options"
elif [[ -n ${SUPERVISOR_TOKEN:-} ]] &&
  service=$(curl -fsS --max-time 10 \
    -H "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
    "${supervisor_url%/}/services/mqtt" 2>/dev/null) &&
  mqtt_url=$(jq -er '
      .data // {} | select((.host // "") != "")
      | (if .ssl == true then "mqtts" else "mqtt" end) + "://"
        + (if (.username // "") != "" then
             (.username | @uri)
             + (if (.password // "") != "" then ":" + (.password | @uri) else "" end)
             + "@"
           else "" end)
        + (if (.host | contains(":")) then "[" + .host + "]" else .host end)
        + ":" + ((.port // 1883) | tostring)' <<<"$service" 2>/dev/null); then
  mqtt_enabled=true
  log "MQTT: using the Supervisor's broker at $(jq -r '.data | "\(.host):\(.port // 1883)"' <<<"$service")"
else
  mqtt_enabled=false
  mqtt_url=""
  log "MQTT: off (no broker: install the Mosquitto broker add-on or set mqtt_url)"
fi

# --- RTSP credentials -------------------------------------------------------------
rtsp_username=$(opt rtsp_username)
rtsp_password=$(opt rtsp_password)
if [[ -n $rtsp_username && -z $rtsp_password ]] || [[ -z $rtsp_username && -n $rtsp_password ]]; then
  die "set both rtsp_username and rtsp_password, or neither"
fi

# --- WebRTC address -----------------------------------------------------------------
# Browsers reach live video on the host's UDP port 8555 (mapped in config.yaml),
# so ICE must announce the host's LAN address, not the container's. Precedence:
# the announced_ip option > the Supervisor's primary network interface.
webrtc_udp_port=8555
announced_ip=$(opt announced_ip)
if [[ -n $announced_ip ]]; then
  log "WebRTC: announcing $announced_ip (announced_ip option)"
elif [[ -n ${SUPERVISOR_TOKEN:-} ]] &&
  network=$(curl -fsS --max-time 10 \
    -H "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
    "${supervisor_url%/}/network/info" 2>/dev/null) &&
  announced_ip=$(jq -er '
      [.data.interfaces // [] | .[] | select(.primary == true and .enabled != false)
       | .ipv4.address // [] | .[]] | first | select(. != null) | sub("/[0-9]+$"; "")' \
    <<<"$network" 2>/dev/null); then
  log "WebRTC: announcing $announced_ip (the host's primary interface)"
else
  announced_ip=""
  log "WebRTC: host address unknown; set announced_ip if live video stays black"
fi

# --- Logging ----------------------------------------------------------------------
log_level=$(opt log_level)
case ${log_level:-info} in
  trace | debug)
    export RINGBRIDGE_LOG="info,ring_bridge=${log_level},rumqttd=warn,webrtc=warn,webrtc_ice=warn"
    ;;
  info | warn | error)
    export RINGBRIDGE_LOG="${log_level:-info},rumqttd=warn,webrtc=error,webrtc_ice=error,webrtc_srtp=error,webrtc_dtls=error,webrtc_sctp=error"
    ;;
  *) die "log_level ${log_level@Q} is not one of trace, debug, info, warn, error" ;;
esac

# --- The config file ------------------------------------------------------------
# Strings are written with jq's tojson: a JSON string literal is a valid TOML basic
# string (jq escapes only ", \ and control characters). The file holds secrets:
# mode 0600.
umask 077
mkdir -p "$(dirname "$config_out")"
jq -r \
  --arg state_dir "$state_dir" \
  --arg mqtt_enabled "$mqtt_enabled" \
  --arg mqtt_url "$mqtt_url" \
  --arg announced_ip "$announced_ip" \
  --arg webrtc_udp_port "$webrtc_udp_port" \
  '
  def set: . != null and . != "";
  def str: tostring | tojson;
  "# Generated by the ring-bridge add-on from its options; edits are overwritten.",
  "[ring]",
  "state_dir = \($state_dir | str)",
  (if .refresh_token | set then "refresh_token = \(.refresh_token | str)" else empty end),
  "location_ids = \([.location_ids // [] | .[] | select(set) | tostring] | tojson)",
  "debug = \(.log_level == "debug" or .log_level == "trace")",
  "",
  "[network]",
  (if $announced_ip != "" then "announced_ip = \($announced_ip | str)" else empty end),
  "",
  "[http]",
  "# Home Assistant ingress: its proxy authenticates users.",
  "ingress_proxy = \"172.30.32.2\"",
  (if .console_password | set then "password = \(.console_password | str)" else empty end),
  "",
  "[webrtc]",
  "udp_port = \($webrtc_udp_port)",
  "",
  "[rtsp]",
  (if .rtsp_username | set then
     "username = \(.rtsp_username | str)", "password = \(.rtsp_password | str)"
   else empty end),
  "",
  "[mqtt]",
  "enabled = \($mqtt_enabled == "true")",
  (if $mqtt_url != "" then "url = \($mqtt_url | str)" else empty end)
  ' <<<"$options" >"$config_out.tmp"
mv -f "$config_out.tmp" "$config_out"

# The state dir must win over anything else: the token store lives there.
export RING_BRIDGE_STATE_DIR=$state_dir
unset RING_BRIDGE_CONFIG

log "config written to $config_out; starting ring-bridge $command"
exec "$bin" "$command" --config "$config_out"
