#!/usr/bin/env python3
"""Runs ring-bridge's discovery payloads through Home Assistant's own MQTT
discovery schemas (optional; not part of `make test`).

`tests/mqtt_ha_schema.rs` checks every payload against the reviewed key sets in
tests/data/ha-discovery/; this script is the slower cross-check with HA itself.
It expands abbreviations like HA's discovery intake, validates `origin`, then
calls the platform's DISCOVERY_SCHEMA and fails on a rejected config or on a
top-level key HA would silently drop.

    python3.11 -m venv /tmp/ha-2024.3
    /tmp/ha-2024.3/bin/pip install homeassistant==2024.3.3 numpy
    /tmp/ha-2024.3/bin/python scripts/ha-discovery-check.py tests/golden/mqtt/*.json

(numpy: the camera platform imports HA's stream component.) Input: JSON files
mapping discovery topic -> payload, the shape of tests/golden/mqtt/*.json.
Exit status 0 when every payload is accepted unchanged.
"""

import importlib
import json
import sys

from homeassistant.components.mqtt.abbreviations import (
    ABBREVIATIONS,
    DEVICE_ABBREVIATIONS,
    ORIGIN_ABBREVIATIONS,
)
from homeassistant.components.mqtt.discovery import MQTT_ORIGIN_INFO_SCHEMA
from homeassistant.const import __version__ as HA_VERSION


def expand(obj, table):
    return {table.get(k, k): v for k, v in obj.items()}


def check(topic, payload):
    """Returns a problem description, or None when HA accepts the payload."""
    component = topic.split("/")[1]
    module = importlib.import_module(f"homeassistant.components.mqtt.{component}")
    p = expand(payload, ABBREVIATIONS)
    if "device" in p:
        p["device"] = expand(p["device"], DEVICE_ABBREVIATIONS)
    if "origin" in p:
        p["origin"] = expand(p["origin"], ORIGIN_ABBREVIATIONS)
        MQTT_ORIGIN_INFO_SCHEMA(p["origin"])
    if "availability" in p:
        p["availability"] = [expand(a, ABBREVIATIONS) for a in p["availability"]]
    p["platform"] = "mqtt"
    try:
        out = module.DISCOVERY_SCHEMA(dict(p))
    except Exception as e:  # voluptuous.Invalid and friends
        return f"rejected: {e}"
    dropped = set(p) - set(out) - {"platform"}
    return f"keys dropped: {sorted(dropped)}" if dropped else None


def main(paths):
    ok = bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            configs = json.load(f)
        for topic, payload in sorted(configs.items()):
            problem = check(topic, payload)
            if problem:
                bad += 1
                print(f"{topic}: {problem}")
            else:
                ok += 1
    print(f"Home Assistant {HA_VERSION}: {ok} accepted, {bad} not")
    return 1 if bad or not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
