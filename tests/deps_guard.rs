//! The guard that a hand-installed package cannot fool.
//!
//! 1. Every GStreamer element the sources use (launch strings in `src/` and
//!    `tests/`, `ElementFactory::make`/`find` names) is in the one list
//!    `codec::elements::REQUIRED`.
//! 2. For each listed element, the GStreamer registry names the plugin file and
//!    `dpkg -S` its Debian package: that package must be the one the list
//!    names, must be installed by `scripts/setup-deps.sh`, and — for elements
//!    the daemon needs at run time — by the runtime stage of the `Dockerfile`.
//!
//! 3. The text-to-speech engine of announcements (`announce::tts::ESPEAK`) is
//!    the binary of the package the set-up script and both images install.
//!
//! So removing a package's name from the set-up script fails this test even on
//! a machine where the package stays installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use ring_bridge::codec::elements::{REQUIRED, requirement};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "node_modules") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literals of a Rust source file, unescaped enough to read
/// launch descriptions: `\"` → `"`, a `\` line continuation joins the lines.
/// Comments and char literals are skipped.
fn string_literals(src: &str) -> Vec<String> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                // A char literal ('x', '\n', '"') or a lifetime ('a).
                if b.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else if b.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < b.len() && b[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    i += 1;
                }
            }
            'r' if b.get(i + 1) == Some(&'#') || b.get(i + 1) == Some(&'"') => {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&'"')
                    || (i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
                {
                    i += 1;
                    continue;
                }
                j += 1;
                let start = j;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                        break;
                    }
                    j += 1;
                }
                out.push(b[start..j.min(b.len())].iter().collect());
                i = j + 1 + hashes;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        match b.get(i + 1) {
                            Some('\n') => {
                                i += 2;
                                while i < b.len() && b[i].is_whitespace() {
                                    i += 1;
                                }
                                s.push(' ');
                                continue;
                            }
                            Some(c) => {
                                s.push(if *c == 'n' { '\n' } else { *c });
                                i += 2;
                                continue;
                            }
                            None => break,
                        }
                    }
                    s.push(b[i]);
                    i += 1;
                }
                out.push(s);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The element names of a launch description (`a ! b name=x ! caps ! c`).
fn launch_elements(desc: &str) -> Vec<String> {
    desc.split('!')
        .filter_map(|segment| {
            let first = segment.split_whitespace().find(|t| !t.starts_with('-'))?;
            let is_name = first.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && first
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| first.to_owned())
        })
        .collect()
}

/// Names passed to `ElementFactory::make("…")`, `ElementFactory::find("…")`
/// and the RTSP bin's `make("…", …)` helper.
fn factory_calls(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in [
        "ElementFactory::make(\"",
        "ElementFactory::find(\"",
        " make(\"",
        // Python (the test players): `Gst.ElementFactory.make("…")`.
        "ElementFactory.make(\"",
        "ElementFactory.find(\"",
    ] {
        for (at, _) in src.match_indices(marker) {
            let rest = &src[at + marker.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

/// Every element name the sources use, with the files using it.
fn used_elements() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    // The test players in Python: their double-quoted launch strings and factory
    // calls read the same way.
    if let Ok(entries) = std::fs::read_dir(root().join("tests/whep_player")) {
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "py")),
        );
    }
    let this = root().join("tests/deps_guard.rs");
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| **f != this) {
        let src = std::fs::read_to_string(f).expect("read source");
        let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        let mut names = factory_calls(&src);
        for lit in string_literals(&src) {
            if lit.contains(" ! ") {
                names.extend(launch_elements(&lit));
            }
        }
        for n in names {
            used.entry(n).or_default().insert(rel.clone());
        }
    }
    used
}

#[test]
fn the_literal_scanner_reads_launch_strings() {
    let src = r#"
        // a comment with "quotes ! inside"
        let c = '"';
        let p = "appsrc name=src ! h264parse \
                 ! video/x-h264 ! {enc} ! mux. d.video_0 ! queue ! appsink";
        let q = format!("-q videotestsrc num-buffers=1 ! fakesink");
        let e = gst::ElementFactory::make("rtph264pay");
    "#;
    let lits = string_literals(src);
    let launch: Vec<_> = lits.iter().filter(|l| l.contains(" ! ")).collect();
    assert_eq!(launch.len(), 2, "{lits:?}");
    assert_eq!(
        launch_elements(launch[0]),
        ["appsrc", "h264parse", "queue", "appsink"]
    );
    assert_eq!(launch_elements(launch[1]), ["videotestsrc", "fakesink"]);
    assert_eq!(factory_calls(src), ["rtph264pay"]);
}

#[test]
fn every_element_in_the_code_is_in_the_one_list() {
    let used = used_elements();
    assert!(
        used.contains_key("rtph264pay") && used.contains_key("textoverlay"),
        "the scanner found too little: {used:?}"
    );
    let unlisted: Vec<_> = used
        .iter()
        .filter(|(name, _)| requirement(name).is_none())
        .collect();
    assert!(
        unlisted.is_empty(),
        "elements used in the code but not in codec::elements::REQUIRED: {unlisted:?}"
    );
    let unused: Vec<_> = REQUIRED
        .iter()
        .filter(|r| !used.contains_key(r.element))
        .map(|r| r.element)
        .collect();
    assert!(
        unused.is_empty(),
        "listed in codec::elements::REQUIRED but used nowhere: {unused:?}"
    );
}

/// The package names in a bash array `name=( … )` of the set-up script.
fn script_packages(script: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in script.match_indices("_pkgs=(") {
        let rest = &script[at + "_pkgs=(".len()..];
        for line in rest.lines() {
            let line = line.split('#').next().unwrap_or("");
            let (words, end) = match line.find(')') {
                Some(i) => (&line[..i], true),
                None => (line, false),
            };
            out.extend(words.split_whitespace().map(str::to_owned));
            if end {
                break;
            }
        }
    }
    out
}

/// The package names `apt-get install` gets in a Dockerfile's last stage.
fn runtime_stage_packages(dockerfile: &str) -> BTreeSet<String> {
    let last = dockerfile
        .match_indices("\nFROM ")
        .last()
        .map_or(dockerfile, |(at, _)| &dockerfile[at..]);
    let mut out = BTreeSet::new();
    let joined = last.replace("\\\n", " ");
    for line in joined.lines().filter(|l| l.contains("apt-get install")) {
        for cmd in line.split("&&") {
            if let Some(args) = cmd.split("apt-get install").nth(1) {
                out.extend(
                    args.split_whitespace()
                        .filter(|t| !t.starts_with('-'))
                        .map(str::to_owned),
                );
            }
        }
    }
    out
}

/// The Debian package that installed `path`. With a merged `/usr`, GStreamer
/// may name `/lib/…` where dpkg knows `/usr/lib/…`, so both are asked.
fn dpkg_owner(path: &Path) -> Option<String> {
    let mut candidates = vec![path.to_owned()];
    if let Ok(rest) = path.strip_prefix("/lib") {
        candidates.push(Path::new("/usr/lib").join(rest));
    }
    if let Ok(real) = path.canonicalize() {
        candidates.push(real);
    }
    candidates.iter().find_map(|p| {
        let out = std::process::Command::new("dpkg")
            .arg("-S")
            .arg(p)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next()?;
        let pkg = line.split(':').next()?.trim();
        (!pkg.is_empty()).then(|| pkg.to_owned())
    })
}

#[test]
fn every_element_comes_from_a_package_the_setup_installs() {
    gst::init().expect("GStreamer initialises");
    let script = std::fs::read_to_string(root().join("scripts/setup-deps.sh")).expect("script");
    let script_pkgs = script_packages(&script);
    // The image and the add-on image (built from source) each carry the
    // runtime list.
    let images: Vec<(&str, BTreeSet<String>)> = ["Dockerfile", "addon/Dockerfile"]
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(f)).expect("Dockerfile");
            let pkgs = runtime_stage_packages(&text);
            assert!(
                pkgs.contains("gstreamer1.0-plugins-base"),
                "could not read {f}'s runtime stage: {pkgs:?}"
            );
            (f, pkgs)
        })
        .collect();
    let mut problems = Vec::new();
    for req in REQUIRED {
        let Some(factory) = gst::ElementFactory::find(req.element) else {
            problems.push(format!(
                "{}: not installed here (scripts/setup-deps.sh test should install {})",
                req.element, req.package
            ));
            continue;
        };
        let Some(file) = factory.plugin().and_then(|p| p.filename()) else {
            problems.push(format!("{}: GStreamer names no plugin file", req.element));
            continue;
        };
        match dpkg_owner(&file) {
            Some(pkg) if pkg == req.package => {}
            Some(pkg) => problems.push(format!(
                "{}: {} belongs to {pkg}, but codec::elements lists {}",
                req.element,
                file.display(),
                req.package
            )),
            None => problems.push(format!(
                "{}: no Debian package owns {} (installed by hand?)",
                req.element,
                file.display()
            )),
        }
        if !script_pkgs.contains(req.package) {
            problems.push(format!(
                "{}: its package {} is not installed by scripts/setup-deps.sh",
                req.element, req.package
            ));
        }
        let runtime = req.parts.iter().any(|p| p.runtime());
        for (image, pkgs) in &images {
            if runtime && !pkgs.contains(req.package) {
                problems.push(format!(
                    "{}: the daemon needs it at run time, but {image}'s runtime stage does not install {}",
                    req.element, req.package
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_pango_overlays_have_a_font() {
    // textoverlay renders with pango, which needs at least one font.
    let script = std::fs::read_to_string(root().join("scripts/setup-deps.sh")).expect("script");
    assert!(script_packages(&script).contains("fonts-dejavu-core"));
    for f in ["Dockerfile", "addon/Dockerfile"] {
        let docker = std::fs::read_to_string(root().join(f)).expect("Dockerfile");
        assert!(
            runtime_stage_packages(&docker).contains("fonts-dejavu-core"),
            "{f}"
        );
    }
}

#[test]
fn the_speech_engine_comes_from_its_package() {
    let program = ring_bridge::announce::tts::ESPEAK;
    let path = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not installed (scripts/setup-deps.sh)"));
    // /usr/bin may be reached through the /bin symlink: ask dpkg for both.
    let owner = dpkg_owner(&path)
        .or_else(|| dpkg_owner(&Path::new("/usr/bin").join(program)))
        .unwrap_or_else(|| panic!("no package owns {}", path.display()));
    assert_eq!(owner, "espeak-ng");
    let script = std::fs::read_to_string(root().join("scripts/setup-deps.sh")).expect("script");
    assert!(script_packages(&script).contains(&owner));
    for f in ["Dockerfile", "addon/Dockerfile"] {
        let docker = std::fs::read_to_string(root().join(f)).expect("Dockerfile");
        assert!(runtime_stage_packages(&docker).contains(&owner), "{f}");
    }
}
