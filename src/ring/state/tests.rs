//! Tests of `ring::state`: permissions, corrupt files, crash points
//! (kill -9 between write and rename), env-token precedence.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn tok(s: &str, generation: u64) -> StoredToken {
    StoredToken {
        refresh_token: Secret::new(s.to_owned()),
        generation,
        env_seed: None,
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn hardware_id_is_stable() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(&d.path().join("state")).unwrap();
    let a = s.hardware_id().unwrap();
    let b = TokenStore::open(s.dir()).unwrap().hardware_id().unwrap();
    assert_eq!(a, b);
    assert_eq!(mode(&s.dir().join(HARDWARE_ID_FILE)), 0o600);
    assert_eq!(mode(s.dir()), 0o700);
}

#[test]
fn corrupt_hardware_id_is_an_error_and_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    fs::write(d.path().join(HARDWARE_ID_FILE), "garbage").unwrap();
    let e = s.hardware_id().unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::StateCorrupt { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(d.path().join(HARDWARE_ID_FILE)).unwrap(),
        "garbage"
    );
}

#[test]
fn save_and_load() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    assert_eq!(s.load_token().unwrap(), None);
    s.save_token(&tok("one", 1)).unwrap();
    s.save_token(&tok("two", 2)).unwrap();
    assert_eq!(s.load_token().unwrap(), Some(tok("two", 2)));
    assert_eq!(mode(&s.token_path()), 0o600);
    assert!(s.leftovers(TOKEN_FILE).is_empty());
}

#[test]
fn corrupt_token_is_typed_error_and_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    fs::write(s.token_path(), "{\"version\":1,\"refresh_tok").unwrap();
    let e = s.load_token().unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::StateCorrupt { .. }), "{e}");
    assert!(!e.to_string().contains("refresh_tok\""));
    assert!(s.token_path().exists());
}

/// kill -9 between writing the temp file and renaming it: the old file is
/// intact, and the completely written newer token is recovered.
#[test]
fn crash_between_write_and_rename() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    s.save_token(&tok("old", 1)).unwrap();
    let staged = s.stage_token(&tok("new", 2)).unwrap();
    let tmp = staged.temp_path().to_owned();
    std::mem::forget(staged); // the process dies here: no rename, no cleanup
    let raw = fs::read_to_string(s.token_path()).unwrap();
    assert!(raw.contains("\"old\""), "old file intact");
    assert!(tmp.exists());
    // Restart: the newer complete token is promoted.
    let s2 = TokenStore::open(d.path()).unwrap();
    assert_eq!(s2.load_token().unwrap(), Some(tok("new", 2)));
    assert!(!tmp.exists());
    assert_eq!(mode(&s2.token_path()), 0o600);
}

/// kill -9 in the middle of writing the temp file: the torn temp file is
/// ignored and the old token is used.
#[test]
fn crash_while_writing_temp() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    s.save_token(&tok("old", 1)).unwrap();
    let staged = s
        .stage(TOKEN_FILE, b"{\"version\":1,\"refresh_token\":\"ne")
        .unwrap();
    std::mem::forget(staged);
    assert_eq!(s.load_token().unwrap(), Some(tok("old", 1)));
    // The next save cleans the torn temp file up.
    s.save_token(&tok("newer", 2)).unwrap();
    assert!(s.leftovers(TOKEN_FILE).is_empty());
    assert_eq!(s.load_token().unwrap(), Some(tok("newer", 2)));
}

/// A temp file of another live process (pid 1 always exists) is that
/// writer's business: neither promoted nor removed.
#[test]
fn live_writers_temp_is_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    s.save_token(&tok("old", 1)).unwrap();
    let staged = s.stage_token(&tok("theirs", 2)).unwrap();
    let theirs = d.path().join(format!(".{TOKEN_FILE}.tmp-1-0000abcd"));
    fs::rename(staged.temp_path(), &theirs).unwrap();
    drop(staged);
    assert_eq!(s.load_token().unwrap(), Some(tok("old", 1)));
    s.save_token(&tok("mine", 3)).unwrap();
    assert!(theirs.exists());
}

#[test]
fn wrapped_tokens_are_unwrapped() {
    use base64::Engine as _;
    let wrapped =
        base64::engine::general_purpose::STANDARD.encode(br#"{"rt":"the-real-token","hid":"abc"}"#);
    let t = unwrap_refresh_token(&Secret::new(wrapped));
    assert_eq!(t.expose(), "the-real-token");
    let plain = Secret::new(" eyJhbGciOi.plain.jwt ".to_owned());
    assert_eq!(
        unwrap_refresh_token(&plain).expose(),
        "eyJhbGciOi.plain.jwt"
    );
}

#[test]
fn dropped_stage_leaves_no_temp() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    drop(s.stage_token(&tok("x", 1)).unwrap());
    assert!(s.leftovers(TOKEN_FILE).is_empty());
    assert_eq!(s.load_token().unwrap(), None);
}

#[test]
fn env_precedence() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    let env_a = Secret::new("env-a".to_owned());
    assert_eq!(s.seed_from_env(&env_a).unwrap(), SeedOutcome::Seeded);
    // Rotation keeps the seed fingerprint: the same env value no longer wins.
    let t = s.load_token().unwrap().unwrap();
    s.save_token(&t.successor(Secret::new("rotated".to_owned())))
        .unwrap();
    assert_eq!(s.seed_from_env(&env_a).unwrap(), SeedOutcome::KeptStateDir);
    assert_eq!(
        s.load_token().unwrap().unwrap().refresh_token.expose(),
        "rotated"
    );
    // A different env value replaces it.
    let env_b = Secret::new("env-b".to_owned());
    assert_eq!(s.seed_from_env(&env_b).unwrap(), SeedOutcome::Replaced);
    let t = s.load_token().unwrap().unwrap();
    assert_eq!(t.refresh_token.expose(), "env-b");
    assert_eq!(t.generation, 3);
    // Only a fingerprint of the env value is stored next to the token.
    let raw = fs::read_to_string(s.token_path()).unwrap();
    assert!(raw.contains(&fingerprint(&env_b)));
    assert!(!raw.contains("env-a"));
}

#[test]
fn env_replaces_corrupt_file_keeping_it_aside() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    fs::write(s.token_path(), "not json").unwrap();
    let env = Secret::new("env".to_owned());
    assert_eq!(s.seed_from_env(&env).unwrap(), SeedOutcome::Seeded);
    let aside: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read_to_string(aside[0].path()).unwrap(), "not json");
}

#[test]
fn delete_token_removes_the_file_and_leftovers() {
    let d = tempfile::tempdir().unwrap();
    let s = TokenStore::open(d.path()).unwrap();
    let hid = s.hardware_id().unwrap();
    s.save_token(&tok("rt-1", 1)).unwrap();
    // A complete temp file of an interrupted write would be promoted by
    // load_token; unlinking must remove it too.
    let staged = s.stage_token(&tok("rt-2", 2)).unwrap();
    std::mem::forget(staged);
    assert!(s.delete_token().unwrap());
    assert_eq!(s.load_token().unwrap(), None);
    assert!(!s.delete_token().unwrap(), "second delete: nothing there");
    assert_eq!(s.hardware_id().unwrap(), hid, "hardware id kept");
}

/// A reader in the same process (the console asking whether a token is saved)
/// while a rotation is being written: it must not promote the writer's staged
/// file, which would make the writer's rename fail.
#[test]
fn reads_during_saves_in_one_process_never_break_a_save() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_owned();
    let s = TokenStore::open(&dir).unwrap();
    s.save_token(&tok("t0", 0)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(TokenStore::has_saved_token(&dir));
                reads += 1;
            }
            reads
        })
    };
    for g in 1..=300 {
        s.save_token(&tok(&format!("t{g}"), g))
            .unwrap_or_else(|e| panic!("save {g}: {e}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(s.load_token().unwrap(), Some(tok("t300", 300)));
}
