//! Enforces the module layering of `docs/design/0008-layers.md` (and
//! docs/ARCHITECTURE.md) from the source, so the direction cannot erode.
//!
//! The test reads every `.rs` file reachable from `src/lib.rs` (`src/main.rs`,
//! the binary, goes through `ring_bridge::` paths and is left out), blanks
//! comments and literals, and collects every `use` path (brace groups
//! expanded, `crate::`/`super::`/`self::` and child-module paths resolved) and
//! every inline `crate::…`/`super::…` path. Then:
//!
//! - (a) an import of another top-level module must be allowed by [`RULES`]
//!   (test code may also import [`TEST_EXTRA`]);
//! - (b) inside one module the file graph of production code has no cycle
//!   (an edge to one's own ancestor `mod.rs` is a re-export and ignored);
//! - (c) outside test code, `struct BitReader` and the NAL type mask `& 0x1f`
//!   occur only under `src/media/h264/` (one H.264 parser in the crate);
//! - (d) no `#[path = …]` attribute and no `tests_*.rs` file under `src/`.
//!
//! All violations are reported at once; there is no list of exceptions. Test
//! code is a `#[cfg(test)]` item (and the files it declares), a
//! `tests.rs`/`testutil.rs` file, or a file under a `tests` folder of `src/`.
//!
//! A second test parses the layer table of docs/ARCHITECTURE.md ("may import"
//! column) and checks that it equals [`RULES`], so the documentation and the
//! check cannot drift apart.
//!
//! Std only, no new dependency.

mod source;

use std::collections::{BTreeMap, BTreeSet};

use source::{Scan, SrcFile, crate_files, resolve, root, scan, strip, tokenize};

/// The layer table: a module and the modules it may import. Every module may
/// import `base`; `app` (wiring) may import everything except `bench`.
const RULES: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("config", &[]),
    ("codec", &[]),
    ("media", &[]),
    ("ring", &["media"]),
    ("sim", &["media", "codec"]),
    ("cameras", &["ring"]),
    ("events", &["ring", "cameras"]),
    ("snapshot", &["media"]),
    ("webrtc", &["media", "codec"]),
    ("announce", &["media", "codec"]),
    ("rtsp", &["media", "cameras", "events"]),
    (
        "mqtt",
        &["ring", "media", "cameras", "events", "snapshot", "announce"],
    ),
    (
        "web",
        &[
            "ring", "media", "cameras", "events", "webrtc", "codec", "announce",
        ],
    ),
    ("bench", &["media", "sim"]),
    (
        "app",
        &[
            "config", "codec", "media", "ring", "sim", "cameras", "events", "snapshot", "webrtc",
            "announce", "rtsp", "mqtt", "web",
        ],
    ),
];

/// What test code may import on top of its module's row.
const TEST_EXTRA: &[&str] = &["sim", "codec"];

/// A violation: where, what the rule says, and a key naming it: (file,
/// imported module) for check (a), (`src/<module>/`, `"cycle"`) for (b),
/// (file, `"h264"`) for (c), (file, `"layout"`) for (d).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    key: (String, String),
    message: String,
}

fn rule(module: &str) -> Option<&'static [&'static str]> {
    RULES.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// All violations of checks (a)–(d) in the crate.
fn violations(files: &[SrcFile]) -> Vec<Violation> {
    let by_module: BTreeMap<&[String], &SrcFile> =
        files.iter().map(|f| (&f.module[..], f)).collect();
    let tops: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.module.first())
        .map(String::as_str)
        .collect();
    let mut out = Vec::new();
    // File graph per top module: (from rel, to rel).
    let mut graph: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        let from = f.module[0].as_str();
        for p in &f.scan.paths {
            let Some(abs) = resolve(p, f) else { continue };
            let Some(to) = abs.first().map(String::as_str).filter(|t| tops.contains(t)) else {
                continue;
            };
            let shown = format!("crate::{}", abs.join("::"));
            if to != from && to != "base" {
                let allowed = match rule(from) {
                    Some(r) => r.contains(&to) || (p.test && TEST_EXTRA.contains(&to)),
                    // Crate-private test harness modules (`#[cfg(test)] mod fuzz;`).
                    None => f.test,
                };
                if !allowed {
                    out.push(Violation {
                        key: (f.rel.clone(), to.to_string()),
                        message: format!(
                            "{}:{}: {from} must not import {to} ({shown}); see docs/ARCHITECTURE.md, Modules",
                            f.rel, p.line
                        ),
                    });
                }
            }
            if to == from && !p.test {
                // The file the path lands in: its longest module prefix.
                let target = (1..=abs.len()).rev().find_map(|n| by_module.get(&abs[..n]));
                if let Some(t) = target
                    && t.rel != f.rel
                    && !t.test
                    && !f.module.starts_with(&t.module)
                {
                    graph
                        .entry(from.to_string())
                        .or_default()
                        .insert((f.rel.clone(), t.rel.clone()));
                }
            }
        }
        if !f.test {
            for line in &f.scan.h264 {
                if !f.rel.starts_with("src/media/h264/") {
                    out.push(Violation {
                        key: (f.rel.clone(), "h264".into()),
                        message: format!(
                            "{}:{line}: H.264 parsing (BitReader, `& 0x1f`) outside src/media/h264/",
                            f.rel
                        ),
                    });
                }
            }
        }
        for line in &f.scan.path_attrs {
            out.push(Violation {
                key: (f.rel.clone(), "layout".into()),
                message: format!(
                    "{}:{line}: #[path] attribute; put tests in `tests.rs` beside the module",
                    f.rel
                ),
            });
        }
        let name = f.rel.rsplit('/').next().unwrap_or_default();
        if name.starts_with("tests_") {
            out.push(Violation {
                key: (f.rel.clone(), "layout".into()),
                message: format!("{}: a tests_*.rs sibling; use `<module>/tests.rs`", f.rel),
            });
        }
    }
    for (module, edges) in &graph {
        for cycle in cycles(edges) {
            let base = format!("src/{module}/");
            let names: Vec<&str> = cycle
                .iter()
                .map(|f| f.strip_prefix(&base).unwrap_or(f))
                .collect();
            out.push(Violation {
                key: (base.clone(), "cycle".into()),
                message: format!("cycle in {module}: {}", names.join(" -> ")),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// One cycle path (first node repeated at the end) per strongly connected
/// component of more than one file.
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default();
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            for &m in adj.get(n.as_str()).into_iter().flatten() {
                if seen.insert(m.to_string()) {
                    stack.push(m.to_string());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<String>> = adj.keys().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (&n, r) in &reaches {
        if done.contains(n) || !r.contains(n) {
            continue;
        }
        let scc: BTreeSet<&str> = reaches
            .iter()
            .filter(|(m, rm)| r.contains(**m) && rm.contains(n))
            .map(|(m, _)| *m)
            .collect();
        done.extend(scc.iter().copied());
        // Shortest way back to `n` inside the component (breadth first).
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([n]);
        'bfs: while let Some(x) = queue.pop_front() {
            for &y in &adj[x] {
                if !scc.contains(y) {
                    continue;
                }
                if y == n {
                    let mut back = Vec::new();
                    let mut z = x;
                    while z != n {
                        back.push(z.to_string());
                        z = prev[z];
                    }
                    back.reverse();
                    let mut path = vec![n.to_string()];
                    path.extend(back);
                    path.push(n.to_string());
                    out.push(path);
                    break 'bfs;
                }
                if !prev.contains_key(y) {
                    prev.insert(y, x);
                    queue.push_back(y);
                }
            }
        }
    }
    out
}

/// Checks the crate against [`RULES`] and the layout rules.
#[test]
fn imports_follow_the_layer_table() {
    let files = crate_files();
    assert!(
        files.len() > 50,
        "walked only {} files from src/lib.rs",
        files.len()
    );
    let report: Vec<String> = violations(&files).into_iter().map(|v| v.message).collect();
    assert!(
        report.is_empty(),
        "layering violations:\n{}",
        report.join("\n")
    );
}

/// Every `pub mod` of `src/lib.rs` has a row, so a new module cannot skip the table.
#[test]
fn every_module_has_a_rule() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("read src/lib.rs");
    let toks = tokenize(&strip(&lib));
    let missing: Vec<&str> = toks
        .windows(3)
        .filter(|w| w[0].text == "pub" && w[1].text == "mod")
        .map(|w| w[2].text.as_str())
        .filter(|m| rule(m).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a row in RULES: {missing:?}"
    );
    let allow_app: Vec<&str> = RULES
        .iter()
        .filter(|(_, r)| r.contains(&"app"))
        .map(|(m, _)| *m)
        .collect();
    assert!(
        allow_app.is_empty(),
        "nothing may import app: {allow_app:?}"
    );
}

/// The parser itself: blanking, brace groups, `super`, inline paths, test code.
#[test]
fn parser_finds_every_kind_of_import() {
    let src = r####"
//! use crate::app::Nope;
use crate::{media::{hub::Hub, Frame}, ring as r};
use super::{self, sibling::*};
const S: &str = "use crate::web::X;";
const R: &str = r#"crate::mqtt::Y"#;
fn f<'a>(c: char) -> &'a str { let _q = '"'; let _ = crate::app::account::Account::new(); "" }
#[cfg(test)]
#[allow(dead_code)]
mod tests {
    use crate::sim::Sim;
    fn g() { let _ = super::super::codec::X; }
}
struct BitReader;
fn mask(b: u8) -> u8 { b & 0x1F }
"####;
    let s = scan(&tokenize(&strip(src)), false);
    let f = SrcFile {
        rel: "src/web/x.rs".into(),
        module: vec!["web".into(), "x".into()],
        test: false,
        scan: Scan::default(),
        children: Vec::new(),
    };
    let got: Vec<(String, bool)> = s
        .paths
        .iter()
        .filter_map(|p| resolve(p, &f).map(|a| (a.join("::"), p.test)))
        .collect();
    let want: Vec<(String, bool)> = [
        ("media::hub::Hub", false),
        ("media::Frame", false),
        ("ring", false),
        ("web", false),
        ("web::sibling", false),
        ("app::account::Account::new", false),
        ("sim::Sim", true),
        ("web::codec::X", true),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), *t))
    .collect();
    assert_eq!(got, want);
    assert_eq!(s.h264.len(), 2, "BitReader and the 0x1F mask: {:?}", s.h264);
    assert_eq!(s.paths[5].line, 7, "line numbers survive blanking");

    // The checks turn these into violations: app is forbidden to web, H.264
    // parsing belongs to media; media and ring are allowed, sim in test code.
    let stub = |m: &str| SrcFile {
        rel: format!("src/{m}/mod.rs"),
        module: vec![m.to_string()],
        test: false,
        scan: Scan::default(),
        children: Vec::new(),
    };
    let files = vec![
        SrcFile { scan: s, ..f },
        stub("app"),
        stub("media"),
        stub("ring"),
        stub("sim"),
    ];
    let v = violations(&files);
    let keys: Vec<(&str, &str)> = v
        .iter()
        .map(|v| (v.key.0.as_str(), v.key.1.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("src/web/x.rs", "app"),
            ("src/web/x.rs", "h264"),
            ("src/web/x.rs", "h264")
        ],
        "{v:#?}"
    );
    assert!(v[0].message.starts_with(
        "src/web/x.rs:7: web must not import app (crate::app::account::Account::new)"
    ));
}

/// A cycle is reported with its path.
#[test]
fn cycles_are_found_with_their_path() {
    let e = |a: &str, b: &str| (a.to_string(), b.to_string());
    let edges: BTreeSet<_> = [
        e("a", "b"),
        e("b", "c"),
        e("c", "a"),
        e("c", "d"),
        e("x", "y"),
    ]
    .into();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c", "a"]]);
}

/// The "may import" table of docs/ARCHITECTURE.md, row by row: `(module,
/// allowed)`. Rows are the table lines whose header is `| module | may import |`.
fn doc_table(doc: &str) -> Vec<(String, Vec<String>)> {
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut lines = doc.lines().skip_while(|l| {
        !(l.starts_with("| module | may import |") && l.contains("must not import"))
    });
    assert!(
        lines.next().is_some(),
        "no layer table in docs/ARCHITECTURE.md"
    );
    lines
        .skip(1) // the |---| line
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let module = ticked(cells[1]).pop().unwrap_or_default();
            (module, ticked(cells[2]))
        })
        .collect()
}

/// docs/ARCHITECTURE.md's layer table equals [`RULES`] (same modules, same
/// order, same allowed imports).
#[test]
fn the_documented_table_is_the_enforced_one() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("read docs/ARCHITECTURE.md");
    let documented = doc_table(&doc);
    let enforced: Vec<(String, Vec<String>)> = RULES
        .iter()
        .map(|(m, r)| (m.to_string(), r.iter().map(|x| x.to_string()).collect()))
        .collect();
    assert_eq!(
        documented, enforced,
        "docs/ARCHITECTURE.md (Layers) and RULES in tests/layering/main.rs differ"
    );
}
