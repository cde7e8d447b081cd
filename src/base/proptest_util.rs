//! Shared pieces of the parser property tests (`fuzz` modules next to each
//! parser): the run configuration and a text mutator that turns a valid sample
//! into near-valid input, which reaches deeper into a parser than random bytes.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256, a few seconds in the
//! suite); `docs/RELIABILITY.md` gives the longer run.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// 256 cases unless `PROPTEST_CASES` says otherwise; no regression files (found
/// crashers are kept as explicit test cases instead).
pub(crate) fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// One edit of [`mutate`].
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    /// Insert text at a position.
    Insert(usize, String),
    /// Delete up to `len` bytes at a position.
    Delete(usize, usize),
    /// Repeat the line around a position `n` times.
    RepeatLine(usize, usize),
    /// Overwrite a byte with another character.
    Replace(usize, char),
}

/// Edits that keep the input small (each at most a few hundred bytes more).
pub(crate) fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), "\\PC{0,40}").prop_map(|(p, s)| Edit::Insert(p, s)),
        (any::<usize>(), 0usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Edit::RepeatLine(p, n)),
        (any::<usize>(), any::<char>()).prop_map(|(p, c)| Edit::Replace(p, c)),
    ];
    proptest::collection::vec(edit, 0..12)
}

/// The char boundary at or before `pos % (len + 1)`.
fn boundary(s: &str, pos: usize) -> usize {
    let mut p = pos % (s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

/// Applies `edits` to `base`.
pub(crate) fn mutate(base: &str, edits: &[Edit]) -> String {
    let mut s = base.to_owned();
    for e in edits {
        match e {
            Edit::Insert(p, t) => {
                let p = boundary(&s, *p);
                s.insert_str(p, t);
            }
            Edit::Delete(p, n) => {
                let a = boundary(&s, *p);
                let b = boundary(&s, (a + n).min(s.len()));
                s.replace_range(a..b, "");
            }
            Edit::RepeatLine(p, n) => {
                let p = boundary(&s, *p);
                let start = s[..p].rfind('\n').map_or(0, |i| i + 1);
                let end = s[p..].find('\n').map_or(s.len(), |i| p + i + 1);
                let line = s[start..end].to_owned();
                s.insert_str(end, &line.repeat(*n));
            }
            Edit::Replace(p, c) => {
                let p = boundary(&s, *p);
                if let Some(old) = s[p..].chars().next() {
                    s.replace_range(p..p + old.len_utf8(), &c.to_string());
                }
            }
        }
    }
    s
}
