//! Reading the crate's source for `tests/layering/main.rs`: blanking comments and
//! literals, tokens, `use` trees, `mod` declarations, test code, and the walk
//! of the module tree from `src/lib.rs`. Std only.

use std::path::{Path, PathBuf};

/// One token of blanked source, with its 1-based line.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    pub(crate) text: String,
    pub(crate) line: usize,
}

/// Blanks comments, string, byte-string, raw-string and char literals (newlines
/// kept, so line numbers stay), leaving only code. Lifetimes are kept.
pub(crate) fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let prev_ident = i > 0 && ident(b[i - 1]);
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c == 'r' || (c == 'b' && next == Some('r'))) && {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            b.get(j) == Some(&'"')
        } {
            // Raw string: r#"…"#, closed by a quote and as many hashes.
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            for _ in i..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < b.len() {
                if b[i] == '"' && (1..=hashes).all(|h| b.get(i + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote.
            let mut j = i + 2;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(b.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Splits blanked source into identifiers, numbers, `::` and single punctuation.
pub(crate) fn tokenize(code: &str) -> Vec<Tok> {
    let b: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            toks.push(Tok {
                text: b[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            toks.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            toks.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    toks
}

pub(crate) fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Expands one use tree (`a::{b, c::{d as e, *}}`) into full paths.
pub(crate) fn use_paths(
    toks: &[&str],
    pos: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    while let Some(&t) = toks.get(*pos) {
        match t {
            "{" => {
                *pos += 1;
                while let Some(&t) = toks.get(*pos) {
                    if t == "}" {
                        *pos += 1;
                        break;
                    }
                    if t == "," {
                        *pos += 1;
                        continue;
                    }
                    let before = *pos;
                    use_paths(toks, pos, path.clone(), out);
                    if *pos == before {
                        *pos += 1;
                    }
                }
                return;
            }
            "*" => {
                *pos += 1;
                out.push(path);
                return;
            }
            "::" | "$" => *pos += 1,
            t if is_ident(t) => {
                // `use a::{self}` names `a` itself.
                if t != "self" || path.is_empty() {
                    path.push(t.to_string());
                }
                *pos += 1;
                if toks.get(*pos) == Some(&"::") {
                    *pos += 1;
                    continue;
                }
                if toks.get(*pos) == Some(&"as") {
                    *pos += 2;
                }
                out.push(path);
                return;
            }
            _ => return,
        }
    }
}

/// A path found in a file, before resolution.
#[derive(Debug)]
pub(crate) struct RawPath {
    pub(crate) line: usize,
    pub(crate) segs: Vec<String>,
    /// Inline `mod x { }` blocks around the path.
    pub(crate) inline: Vec<String>,
    pub(crate) test: bool,
}

/// A `mod name;` declaration.
#[derive(Debug)]
pub(crate) struct ChildDecl {
    pub(crate) name: String,
    pub(crate) test: bool,
    /// The line of a `#[path]` attribute on it.
    pub(crate) path_attr: Option<usize>,
}

/// What one pass over a file's tokens finds.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub(crate) paths: Vec<RawPath>,
    pub(crate) children: Vec<ChildDecl>,
    pub(crate) path_attrs: Vec<usize>,
    /// Lines of `struct BitReader` / `& 0x1f` outside test code.
    pub(crate) h264: Vec<usize>,
}

/// One pass: attributes, `mod` declarations, `use` statements, inline paths.
pub(crate) fn scan(toks: &[Tok], file_test: bool) -> Scan {
    let mut s = Scan::default();
    // Brace frames: (inline mod name, test code).
    let mut stack: Vec<(Option<String>, bool)> = Vec::new();
    let (mut pending_test, mut pending_path) = (false, None);
    let text = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let mut i = 0;
    while i < toks.len() {
        let here_test = stack.last().map_or(file_test, |f| f.1);
        let inline: Vec<String> = stack.iter().filter_map(|f| f.0.clone()).collect();
        match text(i) {
            "#" if text(i + 1) == "[" || (text(i + 1) == "!" && text(i + 2) == "[") => {
                let open = if text(i + 1) == "[" { i + 1 } else { i + 2 };
                let (mut depth, mut k) = (0, open);
                while k < toks.len() {
                    match text(k) {
                        "[" => depth += 1,
                        "]" => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                let inner: Vec<&str> = (open + 1..k).map(text).collect();
                if inner == ["cfg", "(", "test", ")"] {
                    pending_test = true;
                }
                if inner.first() == Some(&"path") {
                    s.path_attrs.push(toks[i].line);
                    pending_path = Some(toks[i].line);
                }
                i = k + 1;
                continue;
            }
            "use" => {
                let start = i + 1;
                let mut end = start;
                while end < toks.len() && text(end) != ";" {
                    end += 1;
                }
                let words: Vec<&str> = (start..end).map(text).collect();
                let mut out = Vec::new();
                let mut pos = 0;
                use_paths(&words, &mut pos, Vec::new(), &mut out);
                for segs in out {
                    s.paths.push(RawPath {
                        line: toks[i].line,
                        segs,
                        inline: inline.clone(),
                        test: here_test || pending_test,
                    });
                }
                pending_test = false;
                pending_path = None;
                i = end + 1;
                continue;
            }
            "mod" if is_ident(text(i + 1)) && text(i + 2) == ";" => {
                s.children.push(ChildDecl {
                    name: text(i + 1).to_string(),
                    test: here_test || pending_test,
                    path_attr: pending_path.take(),
                });
                pending_test = false;
                i += 3;
                continue;
            }
            "mod" if is_ident(text(i + 1)) && text(i + 2) == "{" => {
                stack.push((Some(text(i + 1).to_string()), here_test || pending_test));
                pending_test = false;
                pending_path = None;
                i += 3;
                continue;
            }
            "{" => {
                stack.push((None, here_test || pending_test));
                pending_test = false;
            }
            "}" => {
                stack.pop();
            }
            ";" => pending_test = false,
            "crate" | "super" | "self"
                if text(i + 1) == "::" && text(i.wrapping_sub(1)) != "::" =>
            {
                let mut segs = vec![text(i).to_string()];
                let mut k = i + 1;
                while text(k) == "::" && is_ident(text(k + 1)) {
                    segs.push(text(k + 1).to_string());
                    k += 2;
                }
                s.paths.push(RawPath {
                    line: toks[i].line,
                    segs,
                    inline,
                    test: here_test,
                });
                i = k;
                continue;
            }
            "struct" if text(i + 1) == "BitReader" && !here_test => s.h264.push(toks[i].line),
            "&" if text(i + 1).eq_ignore_ascii_case("0x1f") && !here_test => {
                s.h264.push(toks[i].line)
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// One source file of the crate.
#[derive(Debug)]
pub(crate) struct SrcFile {
    /// Relative to the package root, `/`-separated (`src/media/hub.rs`).
    pub(crate) rel: String,
    /// Module path (`["media", "hub"]`).
    pub(crate) module: Vec<String>,
    /// The whole file is test code.
    pub(crate) test: bool,
    pub(crate) scan: Scan,
    pub(crate) children: Vec<String>,
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Walks the module tree from `src/lib.rs` through `mod x;` declarations.
pub(crate) fn crate_files() -> Vec<SrcFile> {
    let mut files = Vec::new();
    let mut queue = vec![(root().join("src/lib.rs"), Vec::<String>::new(), false)];
    while let Some((path, module, parent_test)) = queue.pop() {
        let src =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = rel(&path);
        let test = parent_test
            || name == "tests"
            || name == "testutil"
            || module.iter().any(|m| m == "tests" || m == "testutil");
        let scan = scan(&tokenize(&strip(&src)), test);
        // Children of `lib.rs`/`mod.rs` live beside it; of `foo.rs`, in `foo/`.
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let child_dir = if name == "mod" || name == "lib" {
            dir.clone()
        } else {
            dir.join(&name)
        };
        let lines: Vec<&str> = src.lines().collect();
        for c in &scan.children {
            let file = match c.path_attr {
                Some(line) => {
                    let l = lines.get(line - 1).copied().unwrap_or_default();
                    let quoted = l.split('"').nth(1).unwrap_or_default();
                    dir.join(quoted)
                }
                None if child_dir.join(format!("{}.rs", c.name)).exists() => {
                    child_dir.join(format!("{}.rs", c.name))
                }
                None => child_dir.join(&c.name).join("mod.rs"),
            };
            let mut m = module.clone();
            m.push(c.name.clone());
            queue.push((file, m, test || c.test));
        }
        let children = scan.children.iter().map(|c| c.name.clone()).collect();
        files.push(SrcFile {
            rel: r,
            module,
            test,
            scan,
            children,
        });
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

/// Resolves a path to an absolute module path (without `crate`), or `None`
/// for an external crate.
pub(crate) fn resolve(p: &RawPath, f: &SrcFile) -> Option<Vec<String>> {
    let mut here = f.module.clone();
    here.extend(p.inline.iter().cloned());
    let first = p.segs.first()?.as_str();
    let mut rest = &p.segs[..];
    let mut cur = match first {
        "crate" => {
            rest = &rest[1..];
            Vec::new()
        }
        "self" => {
            rest = &rest[1..];
            here
        }
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                here.pop();
                rest = &rest[1..];
            }
            here
        }
        name if p.inline.is_empty() && f.children.iter().any(|c| c == name) => here,
        _ => return None,
    };
    cur.extend(rest.iter().cloned());
    Some(cur)
}
