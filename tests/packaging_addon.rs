//! The Home Assistant add-on manifest (`addon/config.yaml`), its translations,
//! images and Dockerfile, checked against the Supervisor's rules.
//!
//! A manifest the Supervisor rejects fails silently: the store logs a warning
//! and the add-on never shows up. So the rules are checked here, transcribed
//! from the Supervisor's validation (`RE_SCHEMA_ELEMENT`, `RE_SLUG`,
//! `RE_SERVICE`, the Docker port pattern, the architecture list, the watchdog
//! pattern) and the add-on configuration docs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn yaml(rel: &str) -> Yaml {
    let mut docs =
        YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{rel} must hold exactly one YAML document");
    docs.remove(0)
}

fn manifest() -> Yaml {
    yaml("addon/config.yaml")
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .expect("a mapping")
        .keys()
        .map(|k| k.as_str().expect("string keys").to_owned())
        .collect()
}

fn cargo_version() -> String {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    manifest["package"]["version"]
        .as_str()
        .expect("package.version")
        .to_owned()
}

/// Supervisor `RE_SCHEMA_ELEMENT` (supervisor/addons/options.py), as a parser:
/// `bool|email|url|port|device(subsystem=x)|str(min,max)|password(min,max)|
/// int(min,max)|float(min,max)|match(re)|list(a|b)`, each with an optional `?`.
fn valid_schema_element(t: &str) -> bool {
    let t = t.strip_suffix('?').unwrap_or(t);
    fn digits(s: &str, signed: bool) -> bool {
        let s = if signed {
            s.strip_prefix('-').unwrap_or(s)
        } else {
            s
        };
        s.chars().all(|c| c.is_ascii_digit())
    }
    fn float(s: &str) -> bool {
        let s = s.strip_prefix('-').unwrap_or(s);
        match s.split_once('.') {
            Some((i, f)) => digits(i, false) && !f.is_empty() && digits(f, false),
            None => !s.is_empty() && digits(s, false),
        }
    }
    fn range(args: &str, ok: impl Fn(&str) -> bool) -> bool {
        match args.split_once(',') {
            Some((lo, hi)) => (lo.is_empty() || ok(lo)) && (hi.is_empty() || ok(hi)),
            None => false,
        }
    }
    let (head, args) = match t.split_once('(') {
        Some((h, rest)) => match rest.strip_suffix(')') {
            Some(a) => (h, Some(a)),
            None => return false,
        },
        None => (t, None),
    };
    match (head, args) {
        (
            "bool" | "email" | "url" | "port" | "device" | "str" | "password" | "int" | "float",
            None,
        ) => true,
        ("device", Some(a)) => a
            .strip_prefix("subsystem=")
            .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase())),
        ("str" | "password", Some(a)) => range(a, |s| !s.is_empty() && digits(s, false)),
        ("int", Some(a)) => range(a, |s| !s.is_empty() && s != "-" && digits(s, true)),
        ("float", Some(a)) => range(a, float),
        ("match", Some(_)) => true,
        ("list", Some(a)) => !a.is_empty(),
        _ => false,
    }
}

#[test]
fn schema_element_parser_matches_the_supervisor_grammar() {
    for ok in [
        "str",
        "str?",
        "password?",
        "bool",
        "int(1,65535)?",
        "int(-5,)",
        "float(0.5,2)",
        "port",
        "url?",
        "email",
        "list(trace|debug|info|warn|error)",
        "match(^\\w*$)",
        "device(subsystem=tty)",
        "str(,64)",
    ] {
        assert!(valid_schema_element(ok), "{ok} should be valid");
    }
    for bad in [
        "string",
        "str=foo",
        "int(a,b)",
        "list()",
        "integer",
        "str??",
        "password=x",
        "int(1)",
        "",
    ] {
        assert!(!valid_schema_element(bad), "{bad:?} should be invalid");
    }
}

#[test]
fn required_keys_and_identity() {
    let m = manifest();
    for key in ["name", "version", "slug", "description", "arch"] {
        let v = &m[key];
        assert!(
            !(v.is_badvalue() || v.is_null()),
            "config.yaml lacks the required key {key}"
        );
    }
    assert_eq!(m["name"].as_str(), Some("Ring Bridge"));
    let slug = m["slug"].as_str().expect("slug is a string");
    assert_eq!(slug, "ring_bridge");
    assert!(
        slug.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "slug {slug:?} breaks the Supervisor's RE_SLUG"
    );
    assert!(
        m["description"].as_str().is_some_and(|d| !d.is_empty()),
        "description must be a non-empty string"
    );
}

#[test]
fn version_matches_cargo_toml() {
    let m = manifest();
    // Quoted in YAML, so it is a string, not a float.
    let v = m["version"]
        .as_str()
        .expect("version must be a quoted string");
    assert_eq!(
        v,
        cargo_version(),
        "addon/config.yaml version vs Cargo.toml"
    );
    let changelog = read("addon/CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## {v}")),
        "addon/CHANGELOG.md has no section for {v}"
    );
}

#[test]
fn arch_names_are_valid() {
    const VALID: [&str; 5] = ["aarch64", "amd64", "armhf", "armv7", "i386"];
    let m = manifest();
    let arch: Vec<&str> = m["arch"]
        .as_vec()
        .expect("arch is a list")
        .iter()
        .map(|a| a.as_str().expect("arch entries are strings"))
        .collect();
    assert!(!arch.is_empty());
    for a in &arch {
        assert!(VALID.contains(a), "arch {a:?} is not one of {VALID:?}");
    }
    for want in ["aarch64", "amd64"] {
        assert!(arch.contains(&want), "arch lacks {want}");
    }
    // The Supervisor's ARCH_DEPRECATED (supervisor/const.py): it warns about
    // them on every store refresh.
    for deprecated in ["armhf", "armv7", "i386"] {
        assert!(
            !arch.contains(&deprecated),
            "arch {deprecated} is deprecated"
        );
    }
}

/// Supervisor `RE_DOCKER_IMAGE_BUILD`-compatible `image` (no tag: the
/// Supervisor appends the version), when the fast path is enabled.
#[test]
fn image_key_when_present_has_no_tag() {
    let m = manifest();
    if let Some(image) = m["image"].as_str() {
        let last = image.rsplit('/').next().unwrap_or_default();
        assert!(!last.contains(':'), "image {image} must not carry a tag");
        assert!(image.contains("{arch}"), "image {image} must be per arch");
    }
    let text = read("addon/config.yaml");
    assert!(
        text.contains("# image: \"ghcr.io/") || m["image"].as_str().is_some(),
        "the published-image fast path is documented in config.yaml"
    );
}

#[test]
fn options_and_schema_agree() {
    let m = manifest();
    let options = &m["options"];
    let schema = &m["schema"];
    assert_eq!(
        keys(options),
        keys(schema),
        "every option needs a schema entry and every schema entry a default"
    );
    for (k, ty) in schema.as_hash().expect("schema is a mapping") {
        let k = k.as_str().expect("string key");
        let default = &options[k];
        match ty {
            Yaml::String(t) => {
                assert!(valid_schema_element(t), "schema.{k}: {t:?} is no HA type");
                let base = t.trim_end_matches('?');
                match base {
                    "bool" => assert!(default.as_bool().is_some(), "options.{k} must be a bool"),
                    _ if base.starts_with("int") || base == "port" => {
                        assert!(default.as_i64().is_some(), "options.{k} must be an int")
                    }
                    _ if base.starts_with("list(") => {
                        let alts: Vec<&str> =
                            base["list(".len()..base.len() - 1].split('|').collect();
                        let d = default.as_str().expect("list() default is a string");
                        assert!(alts.contains(&d), "options.{k}={d:?} not in {alts:?}");
                    }
                    _ => {
                        let d = default
                            .as_str()
                            .unwrap_or_else(|| panic!("options.{k} must be a string"));
                        if !t.ends_with('?') {
                            assert!(!d.is_empty(), "required option {k} has an empty default");
                        }
                    }
                }
            }
            Yaml::Array(items) => {
                assert_eq!(
                    items.len(),
                    1,
                    "schema.{k}: a list schema has one element type"
                );
                let t = items[0].as_str().expect("scalar list element type");
                assert!(valid_schema_element(t), "schema.{k}[]: {t:?} is no HA type");
                assert!(default.as_vec().is_some(), "options.{k} must be a list");
            }
            other => panic!("schema.{k}: unexpected {other:?}"),
        }
    }
    // The options the add-on promises.
    let s = |k: &str| schema[k].as_str().map(str::to_owned);
    assert_eq!(s("refresh_token").as_deref(), Some("password?"));
    assert_eq!(s("rtsp_username").as_deref(), Some("str?"));
    assert_eq!(s("rtsp_password").as_deref(), Some("password?"));
    assert_eq!(s("mqtt_url").as_deref(), Some("str?"));
    assert_eq!(s("announced_ip").as_deref(), Some("str?"));
    assert_eq!(
        s("log_level").as_deref(),
        Some("list(trace|debug|info|warn|error)")
    );
    assert_eq!(schema["location_ids"][0].as_str(), Some("str"));
}

#[test]
fn ingress_services_ports_and_watchdog() {
    let m = manifest();
    let http_port = ring_bridge::config::Config::default().http.port;
    let rtsp_port = ring_bridge::config::Config::default().rtsp.port;
    assert_eq!(m["ingress"].as_bool(), Some(true));
    assert_eq!(
        m["ingress_port"].as_i64(),
        Some(i64::from(http_port)),
        "ingress_port must be ring-bridge's HTTP port"
    );
    assert!(m["init"].as_bool().is_some(), "init must be a bool");
    assert!(
        m["panel_icon"]
            .as_str()
            .is_some_and(|i| i.starts_with("mdi:")),
        "panel_icon must be an mdi: icon"
    );
    for (key, allowed) in [
        (
            "startup",
            &["initialize", "system", "services", "application", "once"][..],
        ),
        ("boot", &["auto", "manual", "manual_only"][..]),
    ] {
        if let Some(v) = m[key].as_str() {
            assert!(allowed.contains(&v), "{key}: {v:?} not in {allowed:?}");
        }
    }

    // services: RE_SERVICE = ^(?:mqtt|mysql):(?:provide|want|need)$
    let services: Vec<&str> = m["services"]
        .as_vec()
        .expect("services is a list")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect();
    for s in &services {
        let ok = s.split_once(':').is_some_and(|(svc, f)| {
            ["mqtt", "mysql"].contains(&svc) && ["provide", "want", "need"].contains(&f)
        });
        assert!(ok, "service {s:?} breaks the Supervisor's RE_SERVICE");
    }
    assert!(services.contains(&"mqtt:want"));

    // ports: keys ^\d+(?:/tcp|/udp)?$ (no ranges), values a port or null.
    let ports = &m["ports"];
    for (k, v) in ports.as_hash().expect("ports is a mapping") {
        let k = k.as_str().expect("port keys are strings");
        let (num, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        assert!(
            !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()),
            "port key {k:?}: the Supervisor allows no ranges"
        );
        assert!(["tcp", "udp"].contains(&proto), "port key {k:?}");
        assert!(
            v.is_null() || v.as_i64().is_some_and(|p| (1..=65535).contains(&p)),
            "ports.{k} must be null or a port"
        );
    }
    let rtsp_key = format!("{rtsp_port}/tcp");
    assert!(
        ports[rtsp_key.as_str()].is_null(),
        "RTSP must be off the network by default (ports.{rtsp_key}: null)"
    );
    let http_key = format!("{http_port}/tcp");
    assert!(
        ports[http_key.as_str()].is_null(),
        "the console is reached through ingress; its port is off by default"
    );
    // Browser WebRTC: the single shared UDP port run.sh configures, mapped to
    // the same host port (ICE announces the container's port number).
    let run_sh = std::fs::read_to_string(root().join("addon/run.sh")).expect("run.sh");
    assert!(
        run_sh.contains("webrtc_udp_port=8555"),
        "run.sh sets udp_port 8555"
    );
    assert_eq!(
        ports["8555/udp"].as_i64(),
        Some(8555),
        "WebRTC port mapped 1:1"
    );
    assert_eq!(m["hassio_api"].as_bool(), Some(true), "for /network/info");
    assert_eq!(
        keys(&m["ports_description"]),
        keys(ports),
        "ports_description must describe exactly the ports"
    );

    // watchdog: ^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$
    let wd = m["watchdog"].as_str().expect("watchdog");
    assert_eq!(wd, format!("http://[HOST]:[PORT:{http_port}]/healthz"));
}

#[test]
fn translations_cover_every_option_and_port() {
    let m = manifest();
    let t = yaml("addon/translations/en.yaml");
    assert_eq!(
        keys(&t["configuration"]),
        keys(&m["schema"]),
        "translations/en.yaml configuration must name every schema key"
    );
    for (k, v) in t["configuration"].as_hash().expect("mapping") {
        for field in ["name", "description"] {
            assert!(
                v[field].as_str().is_some_and(|s| !s.trim().is_empty()),
                "translation of {k:?} lacks a {field}"
            );
        }
    }
    assert_eq!(keys(&t["network"]), keys(&m["ports"]));
}

#[test]
fn no_deprecated_build_yaml() {
    // "App ... uses build.yaml which is deprecated. Move build parameters into
    // the Dockerfile directly." (supervisor/apps/build.py)
    for f in ["build.yaml", "build.yml", "build.json"] {
        assert!(
            !root().join("addon").join(f).exists(),
            "addon/{f} is deprecated"
        );
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is no PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    (be(16), be(20))
}

#[test]
fn icon_and_logo_have_the_store_sizes() {
    assert_eq!(png_size(&root().join("addon/icon.png")), (128, 128));
    assert_eq!(png_size(&root().join("addon/logo.png")), (250, 100));
}

#[test]
fn addon_files_exist_and_dockerfile_runs_run_sh() {
    for f in ["DOCS.md", "CHANGELOG.md", "Dockerfile", "run.sh"] {
        assert!(root().join("addon").join(f).is_file(), "addon/{f} missing");
    }
    let df = read("addon/Dockerfile");
    assert!(
        !df.contains("BUILD_FROM"),
        "without build.yaml the Supervisor passes no BUILD_FROM"
    );
    assert!(df.contains("COPY run.sh /run.sh"));
    assert!(df.contains("CMD [\"/run.sh\"]"));
    assert!(df.contains("io.hass.type=\"addon\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root().join("addon/run.sh"))
            .expect("run.sh")
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "addon/run.sh must be executable");
    }
    let run = read("addon/run.sh");
    assert!(run.starts_with("#!/usr/bin/env bash\n"));
    assert!(!run.contains("bashio::"), "run.sh must work without bashio");
}
