use super::*;

fn vars(pairs: &[(&str, &str)]) -> env::Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_without_file() {
    let c = load_with_env(None, &vars(&[])).unwrap();
    assert_eq!(c.http.port, 3000);
    assert_eq!(c.rtsp.port, 8554);
    assert_eq!(c.stream.linger, Duration::from_secs(10));
    assert!(c.ring.refresh_token.is_none());
}

#[test]
fn env_overrides_file() {
    let f = write("[http]\nport = 4000\n[rtsp]\nport = 9000\n");
    let c = load_with_env(
        Some(f.path()),
        &vars(&[
            ("HTTP_PORT", "5000"),
            ("RING_TALK_PT", "0"),
            ("RTC_MIN_PORT", ""),
        ]),
    )
    .unwrap();
    assert_eq!(c.http.port, 5000);
    assert_eq!(c.rtsp.port, 9000);
    assert_eq!(c.webrtc.talk_payload_type, Some(0));
    assert_eq!(c.webrtc.min_port, 40000, "empty env values are unset");
}

#[test]
fn unknown_key_names_file_key_and_allowed() {
    let f = write("[http]\nprot = 4000\n");
    let e = load_with_env(Some(f.path()), &vars(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&f.path().display().to_string()), "{e}");
    assert!(e.contains("prot"), "{e}");
    assert!(e.contains("port"), "allowed keys listed: {e}");
}

#[test]
fn bad_value_in_file() {
    let f = write("[stream]\nlinger = \"ten seconds\"\n");
    let e = load_with_env(Some(f.path()), &vars(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("linger"), "{e}");
}

#[test]
fn bad_env_names_variable_and_allowed() {
    let e = load_with_env(None, &vars(&[("HTTP_PORT", "http")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP_PORT") && e.contains("0..=65535"), "{e}");
    let e = load_with_env(None, &vars(&[("RING_DEBUG", "maybe")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("RING_DEBUG") && e.contains("true/false"), "{e}");
}

#[test]
fn cross_field_rules() {
    let e = load_with_env(
        None,
        &vars(&[("RTC_MIN_PORT", "500"), ("RTC_MAX_PORT", "400")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("webrtc.min_port"), "{e}");
    let f = write("[webrtc]\nmax_sessions = 0\n");
    let e = load_with_env(Some(f.path()), &vars(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("webrtc.max_sessions"), "{e}");
    let f = write("[webrtc]\nmax_sessions = 200\n");
    let c = load_with_env(Some(f.path()), &vars(&[])).unwrap();
    assert_eq!(c.webrtc.max_sessions, 200);
    let e = load_with_env(None, &vars(&[("MQTT_URL", "http://x")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mqtt.url") && e.contains("mqtts"), "{e}");
}

#[test]
fn redacted_output_hides_secrets() {
    let c = load_with_env(
        None,
        &vars(&[
            ("RING_REFRESH_TOKEN", "supersecret"),
            ("MQTT_URL", "mqtt://u:pw@h:1883"),
        ]),
    )
    .unwrap();
    let out = c.to_redacted_toml();
    assert!(
        !out.contains("supersecret") && !out.contains("pw@"),
        "{out}"
    );
    assert!(out.contains("<redacted>"), "{out}");
}

#[test]
fn example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ring-bridge.example.toml");
    load_with_env(Some(&path), &vars(&[])).unwrap();
}
