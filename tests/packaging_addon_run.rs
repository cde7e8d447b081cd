//! `addon/run.sh`: add-on options + the Supervisor's MQTT service → a ring-bridge
//! config that the real binary accepts (`ring-bridge check-config`).
//!
//! A fake Supervisor on 127.0.0.1:0 answers `GET /services/mqtt` like the real
//! one (`http://supervisor/services/mqtt` with `Authorization: Bearer
//! $SUPERVISOR_TOKEN`). Needs bash, jq and curl.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use ring_bridge::config::{self, Config};

const TOKEN: &str = "test-supervisor-token";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data(name: &str) -> PathBuf {
    root().join("tests/data/packaging").join(name)
}

/// One request the fake Supervisor saw: request line and Authorization header.
#[derive(Clone, Debug)]
struct Seen {
    request_line: String,
    authorization: Option<String>,
}

/// A minimal HTTP/1.1 server answering `GET <path>` from its routes when the
/// bearer token is right (404 for other paths), 401 otherwise. Runs until the
/// test ends.
struct FakeSupervisor {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeSupervisor {
    /// Answers `/services/mqtt` with `status` and `body`.
    fn start(status: u16, body: &str) -> FakeSupervisor {
        Self::start_routes(&[("/services/mqtt", status, body)])
    }

    /// Answers each `(path, status, body)`.
    fn start_routes(routes: &[(&str, u16, &str)]) -> FakeSupervisor {
        let routes: Vec<(String, u16, String)> = routes
            .iter()
            .map(|(p, s, b)| (format!("GET {p} "), *s, (*b).to_owned()))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {
                            if let Some((k, v)) = line.split_once(':')
                                && k.eq_ignore_ascii_case("authorization")
                            {
                                authorization = Some(v.trim().to_owned());
                            }
                        }
                    }
                }
                let authorized = authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
                log.lock().expect("lock").push(Seen {
                    request_line: request_line.trim_end().to_owned(),
                    authorization,
                });
                let route = routes.iter().find(|(p, _, _)| request_line.starts_with(p));
                let (code, text) = match (authorized, route) {
                    (false, _) => (401, r#"{"result":"error","message":"Unauthorized"}"#),
                    (true, None) => (404, r#"{"result":"error","message":"Not found"}"#),
                    (true, Some((_, status, body))) => (*status, body.as_str()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        FakeSupervisor { url, seen }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The requests for the MQTT service.
    fn mqtt_requests(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.request_line.starts_with("GET /services/mqtt "))
            .collect()
    }
}

struct Run {
    out: Output,
    stdout: String,
    stderr: String,
    config_file: PathBuf,
    state_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs addon/run.sh in a clean environment with `check-config` as the command.
fn run_addon(options: &Path, supervisor: Option<&FakeSupervisor>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("gen/config.toml");
    let state_dir = dir.path().join("data");
    std::fs::create_dir_all(&state_dir).expect("state dir");
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("addon/run.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RING_BRIDGE_ADDON_OPTIONS", options)
        .env("RING_BRIDGE_ADDON_CONFIG_OUT", &config_file)
        .env("RING_BRIDGE_ADDON_STATE_DIR", &state_dir)
        .env("RING_BRIDGE_ADDON_BIN", env!("CARGO_BIN_EXE_ring-bridge"))
        .env("RING_BRIDGE_ADDON_COMMAND", "check-config");
    if let Some(s) = supervisor {
        cmd.env("SUPERVISOR_TOKEN", TOKEN)
            .env("RING_BRIDGE_ADDON_SUPERVISOR_URL", &s.url);
    }
    let out = cmd.output().expect("running bash addon/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Run {
        out,
        stdout,
        stderr,
        config_file,
        state_dir,
        _dir: dir,
    }
}

impl Run {
    fn assert_ok(&self) {
        assert!(
            self.out.status.success(),
            "run.sh failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.out.status,
            self.stdout,
            self.stderr
        );
    }

    /// The generated file, loaded by ring-bridge's own loader (no environment).
    fn config(&self) -> Config {
        config::load_with_env(Some(&self.config_file), &config::env::Vars::new())
            .expect("generated config loads")
    }

    /// The `[mqtt]` table of check-config's output.
    fn mqtt_section(&self) -> &str {
        let start = self.stdout.find("[mqtt]").expect("[mqtt] in output");
        let rest = &self.stdout[start..];
        let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    fn assert_never_printed(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "{secret:?} leaked into the output:\n{}\n{}",
            self.stdout,
            self.stderr
        );
    }
}

fn write_options(dir: &Path, json: &str) -> PathBuf {
    let p = dir.join("options.json");
    std::fs::write(&p, json).expect("write options");
    p
}

#[test]
fn supervisor_mqtt_service_is_used_and_redacted() {
    let sup = FakeSupervisor::start(
        200,
        &std::fs::read_to_string(data("supervisor_mqtt.json")).expect("fixture"),
    );
    let r = run_addon(&data("options.json"), Some(&sup));
    r.assert_ok();

    // The Supervisor was asked once, the documented way.
    let seen = sup.mqtt_requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]
            .request_line
            .starts_with("GET /services/mqtt HTTP/1.")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // check-config accepted it: MQTT on, the URL present and redacted.
    assert!(
        r.stdout.starts_with("# effective configuration"),
        "{}",
        r.stdout
    );
    let mqtt = r.mqtt_section();
    assert!(mqtt.contains("enabled = true"), "{mqtt}");
    assert!(mqtt.contains("url = \"<redacted>\""), "{mqtt}");
    r.assert_never_printed(":pw@");
    r.assert_never_printed("rtsp-secret-pw");
    r.assert_never_printed("backslash-token");
    assert!(r.stderr.contains("core-mosquitto:1883"), "{}", r.stderr);

    // The URL itself points at the Supervisor's broker.
    let cfg = r.config();
    let url = cfg.mqtt.url.as_ref().expect("mqtt.url");
    assert_eq!(url.expose(), "mqtt://addons:pw@core-mosquitto:1883");
    assert!(cfg.mqtt.enabled);

    // The rest of the options arrived intact.
    assert_eq!(
        cfg.ring.refresh_token.as_ref().map(|t| t.expose().as_str()),
        Some(r#"rt-"quoted"-\backslash-token"#)
    );
    assert_eq!(cfg.ring.location_ids, ["loc-1", "loc-2"]);
    assert_eq!(cfg.ring.state_dir, r.state_dir);
    assert_eq!(cfg.rtsp.username.as_deref(), Some("viewer"));
    assert_eq!(
        cfg.rtsp.password.as_ref().map(|p| p.expose().as_str()),
        Some("rtsp-secret-pw")
    );
    assert_eq!(
        cfg.network.announced_ip,
        Some("192.168.1.10".parse().expect("ip"))
    );
    assert!(!cfg.ring.debug);
    // State goes where the Supervisor keeps it (the env var wins in the daemon).
    assert!(
        r.stdout
            .contains(&format!("state_dir = \"{}\"", r.state_dir.display())),
        "{}",
        r.stdout
    );

    // The generated file holds secrets: owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&r.config_file)
            .expect("config file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "config file mode {mode:o}");
    }
}

#[test]
fn mqtt_url_option_wins_over_the_supervisor() {
    let sup = FakeSupervisor::start(
        200,
        &std::fs::read_to_string(data("supervisor_mqtt.json")).expect("fixture"),
    );
    let r = run_addon(&data("options_mqtt_url.json"), Some(&sup));
    r.assert_ok();
    assert!(
        sup.mqtt_requests().is_empty(),
        "the Supervisor must not be asked when mqtt_url is set"
    );
    let mqtt = r.mqtt_section();
    assert!(mqtt.contains("enabled = true"), "{mqtt}");
    assert!(mqtt.contains("url = \"<redacted>\""), "{mqtt}");
    r.assert_never_printed("own-broker-pw");
    let cfg = r.config();
    assert_eq!(
        cfg.mqtt.url.as_ref().map(|u| u.expose().as_str()),
        Some("mqtt://ring:own-broker-pw@broker.lan:1884")
    );
    // Empty optional options stay unset.
    assert!(cfg.ring.refresh_token.is_none());
    assert!(cfg.ring.location_ids.is_empty());
    assert!(cfg.rtsp.username.is_none() && cfg.rtsp.password.is_none());
    assert!(cfg.network.announced_ip.is_none());
    assert!(cfg.ring.debug, "log_level debug turns on ring.debug");
}

#[test]
fn credentials_are_url_encoded_and_ssl_gives_mqtts() {
    let sup = FakeSupervisor::start(
        200,
        r#"{"result":"ok","data":{"host":"core-mosquitto","port":8883,"username":"add ons","password":"p@ss:w/rd%","ssl":true,"protocol":"3.1.1","addon":"core_mosquitto"}}"#,
    );
    let r = run_addon(&data("options.json"), Some(&sup));
    r.assert_ok();
    r.assert_never_printed("p@ss");
    let cfg = r.config();
    let url = cfg.mqtt.url.as_ref().expect("mqtt.url").expose().clone();
    assert_eq!(
        url,
        "mqtts://add%20ons:p%40ss%3Aw%2Frd%25@core-mosquitto:8883"
    );
    let parsed = url::Url::parse(&url).expect("valid URL");
    assert_eq!(parsed.host_str(), Some("core-mosquitto"));
    assert_eq!(parsed.port(), Some(8883));
}

#[test]
fn without_a_broker_mqtt_is_off() {
    let opts = data("options.json");
    // No Supervisor at all (not running under Home Assistant).
    let r = run_addon(&opts, None);
    r.assert_ok();
    assert!(r.mqtt_section().contains("enabled = false"), "{}", r.stdout);
    assert!(!r.mqtt_section().contains("url ="));
    assert!(r.stderr.contains("MQTT: off"), "{}", r.stderr);

    // A Supervisor without an MQTT service answers 400.
    let sup = FakeSupervisor::start(400, r#"{"result":"error","message":"No mqtt service"}"#);
    let r = run_addon(&opts, Some(&sup));
    r.assert_ok();
    assert_eq!(sup.mqtt_requests().len(), 1);
    assert!(r.mqtt_section().contains("enabled = false"), "{}", r.stdout);
}

#[test]
fn mqtt_enabled_false_turns_mqtt_off_even_with_a_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = write_options(
        dir.path(),
        r#"{"log_level":"warn","mqtt_enabled":false,"mqtt_url":"mqtt://x:y@h:1883","location_ids":[]}"#,
    );
    let sup = FakeSupervisor::start(
        200,
        &std::fs::read_to_string(data("supervisor_mqtt.json")).expect("fixture"),
    );
    let r = run_addon(&opts, Some(&sup));
    r.assert_ok();
    assert!(sup.mqtt_requests().is_empty());
    assert!(r.mqtt_section().contains("enabled = false"), "{}", r.stdout);
    assert!(r.config().mqtt.url.is_none());
}

#[test]
fn bad_options_fail_with_a_message_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = write_options(
        dir.path(),
        r#"{"log_level":"info","mqtt_enabled":false,"rtsp_username":"viewer","rtsp_password":""}"#,
    );
    let r = run_addon(&opts, None);
    assert!(!r.out.status.success());
    assert!(
        r.stderr.contains("rtsp_username") && r.stderr.contains("rtsp_password"),
        "{}",
        r.stderr
    );

    let opts = write_options(dir.path(), r#"{"log_level":"loud","mqtt_enabled":false}"#);
    let r = run_addon(&opts, None);
    assert!(!r.out.status.success());
    assert!(r.stderr.contains("log_level"), "{}", r.stderr);

    // A value ring-bridge itself rejects: its error reaches the log.
    let opts = write_options(
        dir.path(),
        r#"{"log_level":"info","mqtt_enabled":false,"announced_ip":"not-an-ip"}"#,
    );
    let r = run_addon(&opts, None);
    assert!(!r.out.status.success());
    assert!(r.stderr.contains("announced_ip"), "{}", r.stderr);

    let missing = dir.path().join("nope.json");
    let r = run_addon(&missing, None);
    assert!(!r.out.status.success());
    assert!(r.stderr.contains("nope.json"), "{}", r.stderr);
}

/// The Supervisor's `/network/info` answer: one primary wired interface.
const NETWORK_INFO: &str = r#"{"result":"ok","data":{"interfaces":[
  {"interface":"docker0","type":"ethernet","enabled":true,"connected":true,"primary":false,
   "ipv4":{"method":"static","address":["172.30.32.1/23"],"gateway":null}},
  {"interface":"enp0s3","type":"ethernet","enabled":true,"connected":true,"primary":true,
   "ipv4":{"method":"auto","address":["192.168.1.50/24"],"gateway":"192.168.1.1"},
   "ipv6":{"method":"auto","address":["fe80::1/64"]}}],
  "docker":{"interface":"hassio","address":"172.30.32.0/23","gateway":"172.30.32.1"}}}"#;

#[test]
fn ingress_webrtc_port_host_address_and_console_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = write_options(
        dir.path(),
        r#"{"log_level":"info","mqtt_enabled":false,"location_ids":[],"announced_ip":"","console_password":"panel-pw-8c1"}"#,
    );
    let sup = FakeSupervisor::start_routes(&[("/network/info", 200, NETWORK_INFO)]);
    let r = run_addon(&opts, Some(&sup));
    r.assert_ok();
    r.assert_never_printed("panel-pw-8c1");
    let cfg = r.config();
    // The add-on listens on all interfaces: only ingress or the password get in,
    // which `run` accepts.
    assert!(cfg.network.listen_ip.is_unspecified());
    assert!(cfg.check_access().is_ok());
    assert_eq!(
        cfg.http.ingress_proxy,
        Some("172.30.32.2".parse().expect("ip"))
    );
    assert_eq!(
        cfg.http.password.as_ref().map(|p| p.expose().as_str()),
        Some("panel-pw-8c1")
    );
    assert_eq!(cfg.webrtc.udp_port, Some(8555));
    assert_eq!(
        cfg.network.announced_ip,
        Some("192.168.1.50".parse().expect("ip")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("primary interface"), "{}", r.stderr);

    // No network answer and no option: nothing announced, a hint logged; no
    // password: ingress only.
    let opts = write_options(
        dir.path(),
        r#"{"log_level":"info","mqtt_enabled":false,"location_ids":[]}"#,
    );
    let r = run_addon(&opts, None);
    r.assert_ok();
    let cfg = r.config();
    assert!(cfg.network.announced_ip.is_none());
    assert!(cfg.http.password.is_none() && cfg.http.ingress_proxy.is_some());
    assert!(cfg.check_access().is_ok());
    assert!(r.stderr.contains("set announced_ip"), "{}", r.stderr);
}
