//! Lint of the container packaging without a Docker engine: the root
//! `Dockerfile`, `addon/Dockerfile`, `.dockerignore`, `docker-compose.yml`,
//! `.env.example` and `.gitignore`.
//!
//! hadolint is not packaged for Debian, so the rules that matter here are
//! checked by parsing the files. When a `hadolint` binary is on PATH, it runs
//! too.

mod common_docker;

use std::path::PathBuf;
use std::process::Command;

use common_docker::*;
use yaml_rust2::{Yaml, YamlLoader};

#[test]
fn dockerfile_is_multi_stage_with_a_lean_non_root_runtime() {
    let df = parse_dockerfile(&read("Dockerfile"));
    assert!(df.stages.len() >= 2, "multi-stage: builder + runtime");

    // Builder: the -dev packages of scripts/setup-deps.sh, a locked release build.
    let builder = &df.stages[0];
    assert!(
        builder[0].args.contains("rust:"),
        "builder FROM {}",
        builder[0].args
    );
    let built = apt_installed(builder);
    for p in setup_deps_build_packages()
        .into_iter()
        .filter(|p| p.ends_with("-dev"))
    {
        assert!(
            built.contains(&p),
            "builder lacks {p} (scripts/setup-deps.sh)"
        );
    }
    assert!(
        find(builder, "RUN")
            .iter()
            .any(|r| r.args.contains("cargo build --release --locked")),
        "builder must run cargo build --release --locked"
    );

    // Runtime: GStreamer runtime plugins, nothing to compile with.
    let runtime = df.last_stage();
    assert!(
        runtime[0].args.starts_with("debian:") && runtime[0].args.contains("-slim"),
        "runtime FROM {}",
        runtime[0].args
    );
    assert_no_build_tools(runtime, "the runtime stage");
    let installed = apt_installed(runtime);
    for p in setup_deps_build_packages()
        .into_iter()
        .filter(|p| p.starts_with("gstreamer1.0-plugins-") || p == "gstreamer1.0-libav")
    {
        assert!(installed.contains(&p), "runtime lacks {p}");
    }
    for p in [
        "libgstreamer1.0-0",
        "libgstrtspserver-1.0-0",
        "ca-certificates",
    ] {
        assert!(installed.iter().any(|i| i == p), "runtime lacks {p}");
    }
    assert!(
        find(runtime, "COPY")
            .iter()
            .any(|c| c.args.contains("--from=builder") && c.args.contains("ring-bridge")),
        "runtime copies only the binary from the builder"
    );

    // A non-root user.
    let user = find(runtime, "USER")
        .last()
        .map(|u| u.args.clone())
        .expect("the runtime stage sets USER");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "USER {user} must not be root"
    );

    // State volume.
    assert!(
        find(runtime, "VOLUME")
            .iter()
            .any(|v| v.args == "/data" || v.args.contains("\"/data\"")),
        "VOLUME /data"
    );
    assert!(
        find(runtime, "ENV")
            .iter()
            .any(|e| e.args.contains("RING_BRIDGE_STATE_DIR=/data")),
        "ENV RING_BRIDGE_STATE_DIR=/data"
    );

    // Ports.
    let exposed: Vec<String> = find(runtime, "EXPOSE")
        .iter()
        .flat_map(|e| e.args.split_whitespace().map(str::to_owned))
        .collect();
    for p in ["3000/tcp", "8554/tcp", "40000-40100/udp"] {
        assert!(exposed.iter().any(|e| e == p), "EXPOSE {p}");
    }

    // Health check from the effective configuration (file + environment),
    // not from HTTP_PORT alone (tests/packaging_healthcheck.rs runs it).
    assert_healthcheck_subcommand(runtime, "Dockerfile");

    // Entry point and default command.
    let ep = find(runtime, "ENTRYPOINT");
    assert!(
        ep.last()
            .is_some_and(|e| e.args.contains("\"ring-bridge\"")),
        "ENTRYPOINT runs ring-bridge"
    );
    assert_eq!(
        find(runtime, "CMD").last().map(|c| c.args.as_str()),
        Some("[\"run\"]")
    );

    assert_no_baked_secrets(&df, "Dockerfile");
}

#[test]
fn dockerignore_keeps_secrets_and_build_output_out() {
    let text = read(".dockerignore");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for want in [".env", "target", "*.log", ".git", "state/", "node_modules"] {
        assert!(lines.contains(&want), ".dockerignore lacks {want}");
    }
}

#[test]
fn gitignore_ignores_env() {
    let text = read(".gitignore");
    assert!(
        text.lines().any(|l| matches!(l.trim(), ".env" | "/.env")),
        ".gitignore must list .env"
    );
    assert!(
        !root().join(".env").exists() || {
            // A developer's own .env is fine as long as git ignores it.
            let out = Command::new("git")
                .args(["check-ignore", "-q", ".env"])
                .current_dir(root())
                .status();
            out.map(|s| s.success()).unwrap_or(true)
        },
        ".env exists and is not ignored"
    );
}

#[test]
fn compose_file_has_the_ports_env_file_and_volume() {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("YAML");
    let svc = &docs[0]["services"]["ring-bridge"];
    assert!(!svc.is_badvalue(), "service ring-bridge");
    assert_eq!(svc["build"].as_str(), Some("."));
    assert_eq!(svc["restart"].as_str(), Some("unless-stopped"));
    let env_file = match &svc["env_file"] {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        other => panic!("env_file: {other:?}"),
    };
    assert_eq!(env_file, [".env"]);
    let ports: Vec<&str> = svc["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .map(|p| p.as_str().expect("quoted port mappings"))
        .collect();
    for p in [
        "3000:3000/tcp",
        "8554:8554/tcp",
        "40000-40100:40000-40100/udp",
    ] {
        assert!(ports.contains(&p), "docker-compose.yml lacks port {p}");
    }
    let volumes: Vec<&str> = svc["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        volumes.iter().any(|v| v.ends_with(":/data")),
        "a volume for /data: {volumes:?}"
    );
    assert!(
        svc["environment"].is_badvalue(),
        "no inline environment: secrets belong in .env"
    );
    let test: Vec<&str> = svc["healthcheck"]["test"]
        .as_vec()
        .expect("healthcheck.test")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(test, ["CMD", "ring-bridge", "healthcheck"]);
}

/// Every environment variable ring-bridge reads is in .env.example, commented.
#[test]
fn env_example_lists_every_variable_commented() {
    let text = read(".env.example");
    for var in [
        "RING_REFRESH_TOKEN",
        "RING_DEBUG",
        "LISTEN_IP",
        "ANNOUNCED_IP",
        "RTC_MIN_PORT",
        "RTC_MAX_PORT",
        "RING_TALK_PT",
        "RING_TALK_SSRC",
        "HTTP_PORT",
        "HTTP_USERNAME",
        "HTTP_PASSWORD",
        "HTTP_API_TOKEN",
        "ALLOW_UNAUTHENTICATED",
        "RTC_UDP_PORT",
        "RTSP_PORT",
        "MQTT_URL",
        "MQTT_ENABLED",
        "RING_BRIDGE_STATE_DIR",
        "RING_SIMULATOR_URL",
        "RING_LOCATION_IDS",
        "RING_BRIDGE_CONFIG",
        "RINGBRIDGE_LOG",
        "RINGBRIDGE_FORMAT",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("#{var}="))),
            ".env.example lacks a commented #{var}= line"
        );
    }
    for l in text.lines() {
        let l = l.trim();
        assert!(
            l.is_empty() || l.starts_with('#'),
            ".env.example sets a value: {l:?} (keep every variable commented)"
        );
    }
}

#[test]
fn hadolint_when_available() {
    // On PATH, or where scripts/setup-deps.sh test puts the pinned binary.
    let local = root().join("target/tools/hadolint");
    let hadolint = if local.exists() {
        local
    } else {
        PathBuf::from("hadolint")
    };
    let Ok(out) = Command::new(&hadolint).arg("--version").output() else {
        eprintln!("hadolint is not installed; the parsing checks above stand in for it");
        return;
    };
    if !out.status.success() {
        return;
    }
    for f in ["Dockerfile", "addon/Dockerfile"] {
        let out = Command::new(&hadolint)
            // Version pinning of apt packages (DL3008) is not wanted: Debian
            // stable security updates should land on rebuild.
            .args(["--ignore", "DL3008", f])
            .current_dir(root())
            .output()
            .expect("hadolint");
        assert!(
            out.status.success(),
            "hadolint {f}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
