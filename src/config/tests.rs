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
    assert_eq!(
        c.webrtc.talk_floor,
        TalkFloorMode::Voice,
        "voice by default"
    );
    let f = write("[webrtc]\ntalk_floor = \"explicit\"\n");
    let c = load_with_env(Some(f.path()), &vars(&[])).unwrap();
    assert_eq!(c.webrtc.talk_floor, TalkFloorMode::Explicit);
    let f = write("[webrtc]\ntalk_floor = \"loud\"\n");
    let e = load_with_env(Some(f.path()), &vars(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("talk_floor") || e.contains("voice"), "{e}");
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

#[test]
fn non_loopback_listener_needs_credentials() {
    let open = load_with_env(None, &vars(&[("LISTEN_IP", "0.0.0.0")])).unwrap();
    let err = open.check_access().unwrap_err().to_string();
    assert!(err.contains("HTTP_PASSWORD"), "{err}");
    assert!(err.contains("ALLOW_UNAUTHENTICATED=true"), "{err}");
    assert!(err.contains("LISTEN_IP=127.0.0.1"), "{err}");

    for extra in [
        ("HTTP_PASSWORD", "correct horse"),
        ("HTTP_API_TOKEN", "t0ken"),
        ("ALLOW_UNAUTHENTICATED", "true"),
        ("INGRESS_PROXY_IP", "172.30.32.2"),
    ] {
        let c = load_with_env(None, &vars(&[("LISTEN_IP", "0.0.0.0"), extra])).unwrap();
        assert!(c.check_access().is_ok(), "{extra:?}");
    }
    let local = load_with_env(None, &vars(&[("LISTEN_IP", "127.0.0.1")])).unwrap();
    assert!(local.check_access().is_ok());
}

#[test]
fn http_credentials_are_redacted_and_checked() {
    let c = load_with_env(
        None,
        &vars(&[
            ("HTTP_PASSWORD", "hunter2hunter2"),
            ("HTTP_API_TOKEN", "tok-123"),
        ]),
    )
    .unwrap();
    let shown = c.to_redacted_toml();
    assert!(
        !shown.contains("hunter2hunter2") && !shown.contains("tok-123"),
        "{shown}"
    );
    assert_eq!(c.http.username, "admin");

    let f = write("[http]\nusername = \"a:b\"\npassword = \"x\"\n");
    let err = load_with_env(Some(f.path()), &vars(&[])).unwrap_err();
    assert!(err.to_string().contains("http.username"), "{err}");
    let f = write("[http]\napi_token = \" \"\n");
    let err = load_with_env(Some(f.path()), &vars(&[])).unwrap_err();
    assert!(err.to_string().contains("http.api_token"), "{err}");
    let err = load_with_env(None, &vars(&[("INGRESS_PROXY_IP", "nope")])).unwrap_err();
    assert!(err.to_string().contains("INGRESS_PROXY_IP"), "{err}");
}
