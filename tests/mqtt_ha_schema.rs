//! Every discovery payload ring-bridge publishes only uses keys that the
//! oldest supported Home Assistant release (2024.3) accepts.
//!
//! The accepted key sets are a reviewed fixture, `tests/data/ha-discovery/`
//! (see the README there for where each list comes from). Home Assistant drops
//! unknown top-level keys silently but rejects the whole config for an unknown
//! key in `device` (`extra keys not allowed @ data['device']['model_id']`), so
//! a key added here without checking the oldest release can hide every entity.
//! The test expands abbreviations the way HA's discovery intake does before
//! checking, so abbreviated payloads are covered too.

mod common_mqtt;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common_mqtt::*;
use ring_bridge::base::Secret;
use ring_bridge::mqtt::MqttOptions;
use ring_bridge::mqtt::entities::camera_entities;
use ring_bridge::mqtt::topics::Topics;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `tests/data/ha-discovery/<release>.json`.
#[derive(Deserialize)]
struct Fixture {
    release: String,
    common: BTreeSet<String>,
    availability_entry: BTreeSet<String>,
    device: BTreeSet<String>,
    origin: BTreeSet<String>,
    platforms: BTreeMap<String, BTreeSet<String>>,
    abbreviations: BTreeMap<String, String>,
    device_abbreviations: BTreeMap<String, String>,
    origin_abbreviations: BTreeMap<String, String>,
}

fn fixture(release: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ha-discovery")
        .join(format!("{release}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// HA's discovery intake: long names for abbreviated keys.
fn expand(obj: &Map<String, Value>, abbr: &BTreeMap<String, String>) -> Map<String, Value> {
    obj.iter()
        .map(|(k, v)| (abbr.get(k).cloned().unwrap_or_else(|| k.clone()), v.clone()))
        .collect()
}

/// Keys of `obj` missing from `allowed`, as `<where>.<key>`.
fn unknown(whr: &str, obj: &Map<String, Value>, allowed: &BTreeSet<String>) -> Vec<String> {
    obj.keys()
        .filter(|k| !allowed.contains(*k))
        .map(|k| format!("{whr}.{k}"))
        .collect()
}

/// The problems of one discovery payload under `fx`.
fn check(fx: &Fixture, component: &str, payload: &Value) -> Vec<String> {
    let Some(platform) = fx.platforms.get(component) else {
        return vec![format!(
            "platform {component} not in the {} fixture",
            fx.release
        )];
    };
    let top = expand(payload.as_object().expect("JSON object"), &fx.abbreviations);
    let allowed: BTreeSet<String> = fx.common.union(platform).cloned().collect();
    let mut bad = unknown("", &top, &allowed);
    if let Some(d) = top.get("device") {
        let d = expand(
            d.as_object().expect("device object"),
            &fx.device_abbreviations,
        );
        bad.extend(unknown("device", &d, &fx.device));
    }
    if let Some(o) = top.get("origin") {
        let o = expand(
            o.as_object().expect("origin object"),
            &fx.origin_abbreviations,
        );
        bad.extend(unknown("origin", &o, &fx.origin));
    }
    for a in top
        .get("availability")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = expand(
            a.as_object().expect("availability entry"),
            &fx.abbreviations,
        );
        bad.extend(unknown("availability[]", &a, &fx.availability_entry));
    }
    bad
}

fn options(instance: Option<&str>) -> MqttOptions {
    let mut o = MqttOptions::new(Secret::new("mqtt://127.0.0.1:1883".to_string()));
    o.instance = instance.map(str::to_string);
    o.console_url = "http://ring-bridge.local:3000/".into();
    o.support_url = Some("https://example.invalid/ring-bridge".into());
    o
}

#[test]
fn every_discovery_payload_fits_home_assistant_2024_3() {
    let fx = fixture("2024.3");
    assert_eq!(fx.release, "2024.3");
    let mut seen = 0;
    let mut components = BTreeSet::new();
    let mut problems = Vec::new();
    for instance in [None, Some("north")] {
        let opts = options(instance);
        let topics = Topics::new(&opts);
        for cam in sim_cameras() {
            for e in camera_entities(&topics, &opts, &cam) {
                let payload: Value = serde_json::from_slice(&e.config.to_json()).unwrap();
                let component = e.config.component();
                components.insert(component);
                seen += 1;
                for p in check(&fx, component, &payload) {
                    problems.push(format!("{}: {p}", e.topic));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "keys Home Assistant {} does not accept:\n{}",
        fx.release,
        problems.join("\n")
    );
    // The demo account's full entity set, twice (with and without instance):
    // 57, plus one `text` "Announce" per camera (6), plus `event_select` on the
    // 5 cameras with recordings.
    assert_eq!(
        seen,
        2 * (57 + 6 + 5),
        "entity count changed: review the fixture check"
    );
    assert_eq!(
        components.into_iter().collect::<Vec<_>>(),
        [
            "binary_sensor",
            "button",
            "camera",
            "event",
            "light",
            "select",
            "sensor",
            "switch",
            "text"
        ]
    );
}

#[test]
fn the_checker_catches_what_2024_3_rejects() {
    let fx = fixture("2024.3");
    // The payload shape of ring-bridge 0.1.0, which HA 2024.3 refused.
    let old = serde_json::json!({
        "name": "Motion",
        "unique_id": "a4c1380f0001_motion",
        "stat_t": "ring/x/state",
        "device": {"ids": ["a4c1380f0001"], "mdl": "Doorbell Pro 2", "model_id": "lpd_v4"},
        "origin": {"name": "ring-bridge", "sw": "0.1.0"},
        "availability": [{"t": "ring/status"}],
        "not_a_key": 1,
    });
    let mut got = check(&fx, "binary_sensor", &old);
    got.sort();
    assert_eq!(got, [".not_a_key", "device.model_id"]);
    assert_eq!(
        check(&fx, "vacuum", &serde_json::json!({})),
        ["platform vacuum not in the 2024.3 fixture"]
    );
}
