//! Dockerfile parsing for the packaging tests (no Docker engine here): logical
//! instructions per stage, `apt-get install` package lists, and the rules every
//! image must keep (no build tools in a runtime stage, no baked secrets).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// One Dockerfile instruction: upper-cased keyword and its arguments, with line
/// continuations joined and comments dropped.
#[derive(Debug, Clone)]
pub struct Instr {
    pub keyword: String,
    pub args: String,
}

/// Stages of a Dockerfile; instructions before the first FROM (global ARGs) are
/// stage 0's prelude and kept in `globals`.
pub struct Dockerfile {
    pub globals: Vec<Instr>,
    pub stages: Vec<Vec<Instr>>,
}

pub fn parse_dockerfile(text: &str) -> Dockerfile {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = line.trim_end().strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(line);
            logical.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        logical.push(current);
    }
    let mut df = Dockerfile {
        globals: Vec::new(),
        stages: Vec::new(),
    };
    for l in logical {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let (kw, args) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let instr = Instr {
            keyword: kw.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instr.keyword == "FROM" {
            df.stages.push(vec![instr]);
        } else if let Some(stage) = df.stages.last_mut() {
            stage.push(instr);
        } else {
            df.globals.push(instr);
        }
    }
    df
}

impl Dockerfile {
    pub fn all(&self) -> impl Iterator<Item = &Instr> {
        self.globals.iter().chain(self.stages.iter().flatten())
    }

    pub fn last_stage(&self) -> &[Instr] {
        self.stages.last().expect("at least one FROM")
    }
}

pub fn find<'a>(stage: &'a [Instr], kw: &str) -> Vec<&'a Instr> {
    stage.iter().filter(|i| i.keyword == kw).collect()
}

/// Packages named by `apt-get install` in the RUN instructions of a stage.
pub fn apt_installed(stage: &[Instr]) -> Vec<String> {
    let mut pkgs = Vec::new();
    for run in find(stage, "RUN") {
        for cmd in run.args.split("&&") {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let Some(pos) = words
                .windows(2)
                .position(|w| w[0].ends_with("apt-get") && w[1] == "install")
            else {
                continue;
            };
            pkgs.extend(
                words[pos + 2..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| w.to_string()),
            );
        }
    }
    pkgs
}

/// The build package list of scripts/setup-deps.sh (`build_pkgs=( ... )`).
pub fn setup_deps_build_packages() -> Vec<String> {
    let s = read("scripts/setup-deps.sh");
    let start = s.find("build_pkgs=(").expect("build_pkgs in setup-deps.sh") + "build_pkgs=(".len();
    let end = start + s[start..].find(')').expect("closing paren");
    s[start..end]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

pub const COMPILERS: [&str; 10] = [
    "gcc",
    "g++",
    "clang",
    "build-essential",
    "cargo",
    "rustc",
    "make",
    "cmake",
    "pkg-config",
    "libc6-dev",
];

pub fn assert_no_build_tools(stage: &[Instr], what: &str) {
    for p in apt_installed(stage) {
        assert!(
            !p.ends_with("-dev") && !COMPILERS.contains(&p.as_str()),
            "{what} installs build-only package {p}"
        );
    }
}

/// No ENV/ARG that carries a secret (tokens, passwords, credentials in URLs).
pub fn assert_no_baked_secrets(df: &Dockerfile, what: &str) {
    for i in df
        .all()
        .filter(|i| i.keyword == "ENV" || i.keyword == "ARG")
    {
        let upper = i.args.to_ascii_uppercase();
        for word in ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "MQTT_URL"] {
            assert!(
                !upper.contains(word),
                "{what}: {} {} would bake a secret into the image",
                i.keyword,
                i.args
            );
        }
        assert!(
            !(i.args.contains("://") && i.args.contains('@')),
            "{what}: {} {} has credentials in a URL",
            i.keyword,
            i.args
        );
    }
}

/// The stage has exactly one HEALTHCHECK and it runs `ring-bridge healthcheck`.
pub fn assert_healthcheck_subcommand(stage: &[Instr], what: &str) {
    let hc = find(stage, "HEALTHCHECK");
    assert_eq!(hc.len(), 1, "{what}: one HEALTHCHECK");
    assert!(
        hc[0]
            .args
            .ends_with("CMD [\"ring-bridge\", \"healthcheck\"]"),
        "{what}: HEALTHCHECK {}",
        hc[0].args
    );
}
