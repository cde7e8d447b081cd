//! The add-on builds from source with nothing published first: the add-on
//! Dockerfile needs only official Debian and Rust base images, the folder that
//! `scripts/pack-addon.sh` assembles holds everything the Dockerfile copies,
//! and the release workflow publishes the images of the fast path.
//!
//! No Docker engine runs here, so this reads the files (hadolint runs on
//! `addon/Dockerfile` in `tests/packaging_docker.rs`).

mod common_docker;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common_docker::*;
use yaml_rust2::{Yaml, YamlLoader};

/// Base image of each stage with global `ARG` defaults substituted.
fn stage_bases(df: &Dockerfile) -> Vec<(String, Option<String>)> {
    let mut args = BTreeMap::new();
    for a in df.globals.iter().filter(|i| i.keyword == "ARG") {
        if let Some((k, v)) = a.args.split_once('=') {
            args.insert(format!("${{{k}}}"), v.to_string());
        }
    }
    df.stages
        .iter()
        .map(|s| {
            let words: Vec<&str> = s[0].args.split_whitespace().collect();
            let mut image = words[0].to_string();
            for (k, v) in &args {
                image = image.replace(k, v);
            }
            let alias = (words.len() == 3 && words[1].eq_ignore_ascii_case("as"))
                .then(|| words[2].to_string());
            (image, alias)
        })
        .collect()
}

/// An official Docker Hub library image (`debian:…`, `rust:…`): no registry,
/// no namespace, nothing left unsubstituted.
fn is_official(image: &str, allowed: &[&str]) -> bool {
    !image.contains('/')
        && !image.contains('$')
        && image
            .split_once(':')
            .is_some_and(|(name, tag)| allowed.contains(&name) && !tag.is_empty())
}

fn pack(out: &std::path::Path) -> std::process::Output {
    Command::new("bash")
        .arg(root().join("scripts/pack-addon.sh"))
        .arg(out)
        .output()
        .expect("bash runs")
}

#[test]
fn addon_dockerfile_builds_from_source_on_official_bases_only() {
    let df = parse_dockerfile(&read("addon/Dockerfile"));
    assert!(df.stages.len() >= 2, "builder + runtime");
    let bases = stage_bases(&df);
    let mut stages = BTreeSet::new();
    for (image, alias) in &bases {
        assert!(
            stages.contains(image) || is_official(image, &["rust", "debian"]),
            "FROM {image}: only official rust/debian images or earlier stages"
        );
        if let Some(a) = alias {
            stages.insert(a.clone());
        }
    }
    assert!(
        bases[0].0.starts_with("rust:"),
        "builder FROM {}",
        bases[0].0
    );
    let (runtime_image, _) = bases.last().expect("a runtime stage");
    assert!(
        runtime_image.starts_with("debian:") && runtime_image.ends_with("-slim"),
        "runtime FROM {runtime_image}"
    );
    assert!(
        !df.all().any(|i| i.args.contains("BUILD_FROM")),
        "no BUILD_FROM: without build.yaml the Supervisor passes none"
    );

    // Builder: the root Dockerfile's build packages and a locked release build
    // of the packed sources.
    let root_df = parse_dockerfile(&read("Dockerfile"));
    let builder = &df.stages[0];
    let built = apt_installed(builder);
    for p in apt_installed(&root_df.stages[0]) {
        assert!(built.contains(&p), "add-on builder lacks {p}");
    }
    assert!(
        find(builder, "COPY")
            .iter()
            .any(|c| c.args.starts_with("source/ ")),
        "the builder copies the packed sources"
    );
    assert!(
        find(builder, "RUN")
            .iter()
            .any(|r| r.args.contains("cargo build --release --locked")),
        "cargo build --release --locked"
    );

    // Runtime: everything the root image's runtime has, plus jq and curl for
    // run.sh; nothing to compile with; the binary from the builder.
    let runtime = df.last_stage();
    assert_no_build_tools(runtime, "addon/Dockerfile runtime");
    let installed = apt_installed(runtime);
    for p in apt_installed(root_df.last_stage())
        .into_iter()
        .chain(["jq".to_string(), "curl".to_string()])
    {
        assert!(installed.contains(&p), "add-on runtime lacks {p}");
    }
    assert!(
        find(runtime, "COPY")
            .iter()
            .any(|c| c.args == "--from=builder /out/ring-bridge /usr/local/bin/ring-bridge"),
        "the runtime copies the binary from the builder"
    );
    assert_healthcheck_subcommand(runtime, "addon/Dockerfile");
    // The health check reads the config run.sh writes.
    let run = read("addon/run.sh");
    let config_out = run
        .lines()
        .find_map(|l| l.strip_prefix("config_out=${RING_BRIDGE_ADDON_CONFIG_OUT:-"))
        .and_then(|l| l.strip_suffix('}'))
        .expect("config_out default in run.sh");
    assert!(
        find(runtime, "ENV")
            .iter()
            .any(|e| e.args.contains(&format!("RING_BRIDGE_CONFIG={config_out}"))),
        "ENV RING_BRIDGE_CONFIG={config_out}"
    );
    assert_no_baked_secrets(&df, "addon/Dockerfile");
}

#[test]
fn packed_folder_holds_everything_the_dockerfile_copies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ring_bridge");
    let r = pack(&out);
    assert!(
        r.status.success(),
        "pack-addon.sh: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let df = parse_dockerfile(&std::fs::read_to_string(out.join("Dockerfile")).unwrap());
    let mut copied = 0;
    for c in df
        .stages
        .iter()
        .flatten()
        .filter(|i| i.keyword == "COPY" && !i.args.starts_with("--from="))
    {
        let words: Vec<&str> = c.args.split_whitespace().collect();
        for src in &words[..words.len() - 1] {
            assert!(
                out.join(src).exists(),
                "COPY {src}: not in the packed folder"
            );
            copied += 1;
        }
    }
    assert!(copied >= 2, "source/ and run.sh");
    for f in [
        "config.yaml",
        "run.sh",
        "DOCS.md",
        "icon.png",
        "source/Cargo.toml",
        "source/Cargo.lock",
        "source/src/main.rs",
        "source/assets",
    ] {
        assert!(out.join(f).exists(), "packed folder lacks {f}");
    }
    assert!(!out.join("build.yaml").exists());
    // The packed sources are the ones of this version.
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(out.join("source/Cargo.toml")).unwrap()).unwrap();
    let manifest = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    let version = cargo["package"]["version"].as_str().unwrap();
    assert!(manifest.contains(&format!("version: \"{version}\"")));

    // Packing again over an earlier pack works; over anything else it refuses.
    assert!(pack(&out).status.success());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let r = pack(&other);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("refusing"));
    assert_eq!(
        std::fs::read_to_string(other.join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn release_workflow_publishes_the_images_the_docs_name() {
    let text = read(".github/workflows/release.yml");
    let docs = YamlLoader::load_from_str(&text).expect("release.yml is YAML");
    let wf = &docs[0];
    let jobs = wf["jobs"].as_hash().expect("jobs");
    assert!(jobs.len() >= 2, "an image job and an add-on job");
    // Tags v* trigger it.
    let on = &wf["on"];
    assert!(
        on["push"]["tags"]
            .as_vec()
            .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("v*"))),
        "on.push.tags: [v*]"
    );
    // Multi-arch image of the root Dockerfile.
    for p in ["linux/amd64", "linux/arm64"] {
        assert!(text.contains(p), "release.yml builds {p}");
    }
    // The add-on images match the commented `image:` fast path in config.yaml,
    // for every add-on architecture, built from the packed folder.
    let manifest = read("addon/config.yaml");
    let image = manifest
        .lines()
        .find_map(|l| l.strip_prefix("# image: \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("# image: in config.yaml");
    let name = image.rsplit('/').next().unwrap().replace("{arch}", "");
    assert!(text.contains(&name), "release.yml pushes *{name}");
    assert!(text.contains("scripts/pack-addon.sh"));
    let m = &YamlLoader::load_from_str(&manifest).unwrap()[0];
    for a in m["arch"].as_vec().unwrap() {
        let a = a.as_str().unwrap();
        assert!(text.contains(&format!("arch: {a}")), "add-on job for {a}");
    }
    // Only the workflow token, no stored secrets beyond it.
    for l in text.lines().filter(|l| l.contains("secrets.")) {
        assert!(l.contains("secrets.GITHUB_TOKEN"), "unexpected secret: {l}");
    }
    assert!(matches!(wf["permissions"]["packages"], Yaml::String(ref s) if s == "write"));
}
