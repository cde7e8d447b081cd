//! The state directory: the Ring refresh token (rewritten on every rotation) and
//! the installation's stable `hardware_id` (ring-api.md §1.3, §1.4).
//!
//! Files (all mode 0600, directory created 0700):
//! - `hardware_id`: a UUID, generated once and never changed (changing it creates
//!   another "Authorized Client Device" at Ring and breaks push).
//! - `ring_token.json`: `{version, refresh_token, generation, env_seed, saved_at}`.
//!
//! Every write is atomic: a temp file in the same directory is written and
//! fsynced, renamed over the target, then the directory is fsynced. A crash at
//! any point leaves either the old or the new file, never a torn one. A temp file
//! that was completely written but not renamed (crash between fsync and rename)
//! holds a *newer* token than the target; [`TokenStore::load_token`] promotes it.
//!
//! Within one process every token-file operation holds one lock, so a reader
//! never takes a writer's staged file for an interrupted write (and renames it
//! away under the writer, which then fails); across processes the pid in the
//! temp file's name does the same.
//!
//! This module never logs a token and deletes a saved one only when a person
//! unlinks the account ([`TokenStore::delete_token`]). It does blocking file
//! I/O: async callers go through `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::{Error, ErrorInner};
use crate::base::Secret;

/// Name of the refresh-token file inside the state directory.
pub const TOKEN_FILE: &str = "ring_token.json";
/// Name of the hardware-id file inside the state directory.
pub const HARDWARE_ID_FILE: &str = "hardware_id";

/// A refresh token as saved in the state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    /// The Ring refresh token (single use: replaced on every refresh).
    pub refresh_token: Secret<String>,
    /// Incremented on every save; tells a newer leftover temp file from an older one.
    pub generation: u64,
    /// [`fingerprint`] of the `RING_REFRESH_TOKEN` value this state was last
    /// seeded from, if any. Kept across rotations and logins.
    pub env_seed: Option<String>,
}

impl StoredToken {
    /// The token that replaces `self` after a rotation or a login.
    pub fn successor(&self, refresh_token: Secret<String>) -> StoredToken {
        StoredToken {
            refresh_token,
            generation: self.generation + 1,
            env_seed: self.env_seed.clone(),
        }
    }
}

/// What [`TokenStore::seed_from_env`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    /// No token was saved; the env token is now saved.
    Seeded,
    /// A token from an earlier, different env value (or a login) was replaced
    /// by the new env token.
    Replaced,
    /// The env token is the one the state was seeded from; the state directory
    /// holds that token or a newer rotation of it and wins.
    KeptStateDir,
}

/// On-disk shape of `ring_token.json`. Deliberately not `Debug`.
#[derive(Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    refresh_token: String,
    generation: u64,
    #[serde(default)]
    env_seed: Option<String>,
    #[serde(default)]
    saved_at: u64,
}

/// A one-way fingerprint of a token (UUIDv5, i.e. SHA-1 based), safe to store
/// and compare; the token itself cannot be recovered from it.
pub fn fingerprint(token: &Secret<String>) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, token.expose().as_bytes()).to_string()
}

/// Accepts a refresh token as Ring issued it, or wrapped the way
/// ring-client-api and go2rtc print it (base64 of JSON `{rt, hid, ...}`,
/// ring-api.md §1.3): the wrapper's `rt` is returned. Its `hid` is ignored;
/// our own hardware id is used.
pub fn unwrap_refresh_token(token: &Secret<String>) -> Secret<String> {
    use base64::Engine as _;
    let raw = token.expose().trim();
    let rt = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("rt")?.as_str().map(str::to_owned))
        .filter(|rt| !rt.is_empty());
    Secret::new(rt.unwrap_or_else(|| raw.to_owned()))
}

/// The state directory. Cheap to clone; holds no open files.
#[derive(Clone, Debug)]
pub struct TokenStore {
    dir: PathBuf,
}

fn state_err(path: &Path, source: std::io::Error) -> Error {
    ErrorInner::State {
        path: path.to_owned(),
        source,
    }
    .into()
}

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    ErrorInner::StateCorrupt {
        path: path.to_owned(),
        detail: detail.into(),
    }
    .into()
}

/// Serializes this process's token-file operations (see the module doc).
static TOKEN_LOCK: Mutex<()> = Mutex::new(());

/// Takes [`TOKEN_LOCK`]. A panic while it was held left no half-state behind
/// (every write is atomic), so a poisoned lock is simply taken.
fn token_lock() -> MutexGuard<'static, ()> {
    TOKEN_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fully written and fsynced temp file, not yet renamed over its target.
/// Dropping it without [`StagedWrite::commit`] removes the temp file.
#[derive(Debug)]
pub struct StagedWrite {
    dir: PathBuf,
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedWrite {
    /// Renames the temp file over the target and fsyncs the directory.
    pub fn commit(mut self) -> Result<(), Error> {
        fs::rename(&self.tmp, &self.target).map_err(|e| state_err(&self.target, e))?;
        self.committed = true;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| state_err(&self.dir, e))
    }

    /// Path of the temp file (for tests).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for StagedWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl TokenStore {
    /// Opens (creating with mode 0700 if needed) the state directory.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| state_err(dir, e))?;
        Ok(TokenStore {
            dir: dir.to_owned(),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the token file.
    pub fn token_path(&self) -> PathBuf {
        self.dir.join(TOKEN_FILE)
    }

    fn tmp_prefix(name: &str) -> String {
        format!(".{name}.tmp-")
    }

    /// Writes `bytes` to a fresh temp file (mode 0600) next to `name` and fsyncs
    /// it. Nothing is visible under `name` until [`StagedWrite::commit`].
    pub fn stage(&self, name: &str, bytes: &[u8]) -> Result<StagedWrite, Error> {
        let tmp = self.dir.join(format!(
            "{}{}-{:08x}",
            Self::tmp_prefix(name),
            std::process::id(),
            rand::random::<u32>()
        ));
        let staged = StagedWrite {
            dir: self.dir.clone(),
            tmp: tmp.clone(),
            target: self.dir.join(name),
            committed: false,
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| state_err(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| state_err(&tmp, e))?;
        Ok(staged)
    }

    /// Temp files left next to `name` by an interrupted write.
    ///
    /// Temp files of *another live process* (its pid is in the name and
    /// `/proc/<pid>` exists) are skipped: that writer is about to rename its
    /// file itself. Our own pid counts as interrupted: within one process
    /// writes are serialized, so an own leftover was abandoned.
    fn leftovers(&self, name: &str) -> Vec<PathBuf> {
        let prefix = Self::tmp_prefix(name);
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let me = std::process::id();
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let Some(rest) = n.strip_prefix(&prefix) else {
                    return false;
                };
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                match pid {
                    Some(p) if p != me => !Path::new(&format!("/proc/{p}")).exists(),
                    _ => true,
                }
            })
            .map(|e| e.path())
            .collect()
    }

    /// The installation's hardware id: read from `hardware_id`, or generated
    /// (UUIDv4) and saved on first use. A present but malformed file is an error
    /// (never silently replaced: that would change the id). Creation is
    /// create-if-absent (a hard link of a complete temp file), so two processes
    /// starting at once agree on one id.
    pub fn hardware_id(&self) -> Result<String, Error> {
        let path = self.dir.join(HARDWARE_ID_FILE);
        if let Some(id) = self.read_hardware_id(&path)? {
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let staged = self.stage(HARDWARE_ID_FILE, format!("{id}\n").as_bytes())?;
        match fs::hard_link(staged.temp_path(), &path) {
            Ok(()) => {
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| state_err(&self.dir, e))?;
                Ok(id)
            }
            Err(e) if e.kind() == IoKind::AlreadyExists => {
                drop(staged);
                self.read_hardware_id(&path)?
                    .ok_or_else(|| corrupt(&path, "vanished while being created"))
            }
            Err(e) => Err(state_err(&path, e)),
        }
    }

    fn read_hardware_id(&self, path: &Path) -> Result<Option<String>, Error> {
        match fs::read_to_string(path) {
            Ok(s) => {
                let id = s.trim();
                uuid::Uuid::parse_str(id).map_err(|e| corrupt(path, format!("not a UUID: {e}")))?;
                Ok(Some(id.to_owned()))
            }
            Err(e) if e.kind() == IoKind::NotFound => Ok(None),
            Err(e) => Err(state_err(path, e)),
        }
    }

    fn parse_token(path: &Path, bytes: &[u8]) -> Result<StoredToken, Error> {
        let f: TokenFile = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(path, format!("not valid token JSON ({e})")))?;
        if f.version != 1 {
            return Err(corrupt(path, format!("unknown version {}", f.version)));
        }
        if f.refresh_token.trim().is_empty() {
            return Err(corrupt(path, "empty refresh_token"));
        }
        Ok(StoredToken {
            refresh_token: Secret::new(f.refresh_token),
            generation: f.generation,
            env_seed: f.env_seed,
        })
    }

    /// The saved refresh token, or `None` when none was ever saved.
    ///
    /// Whether `dir` holds a saved token. A token file that cannot be read
    /// counts as saved: the client then reports it clearly instead of the
    /// daemon silently treating the account as unlinked. Blocking.
    pub fn has_saved_token(dir: &Path) -> bool {
        TokenStore::open(dir)
            .and_then(|s| s.load_token())
            .map(|t| t.is_some())
            .unwrap_or(true)
    }

    /// A complete temp file newer than `ring_token.json` (a crash between fsync
    /// and rename) is promoted first. A corrupt `ring_token.json` is
    /// [`ErrorInner::StateCorrupt`] and is left untouched.
    pub fn load_token(&self) -> Result<Option<StoredToken>, Error> {
        let _lock = token_lock();
        self.load_token_locked()
    }

    fn load_token_locked(&self) -> Result<Option<StoredToken>, Error> {
        let path = self.token_path();
        let main = match fs::read(&path) {
            Ok(b) => Some(Self::parse_token(&path, &b)?),
            Err(e) if e.kind() == IoKind::NotFound => None,
            Err(e) => return Err(state_err(&path, e)),
        };
        let main_gen = main.as_ref().map(|t| t.generation);
        let newer = self
            .leftovers(TOKEN_FILE)
            .into_iter()
            .filter_map(|p| {
                let t = fs::read(&p)
                    .ok()
                    .and_then(|b| Self::parse_token(&p, &b).ok())?;
                Some((p, t))
            })
            .filter(|(_, t)| main_gen.is_none_or(|g| t.generation > g))
            .max_by_key(|(_, t)| t.generation);
        let Some((tmp, t)) = newer else {
            return Ok(main);
        };
        tracing::info!(
            generation = t.generation,
            "recovering a refresh token saved just before an interruption"
        );
        fs::rename(&tmp, &path).map_err(|e| state_err(&path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| state_err(&self.dir, e))?;
        Ok(Some(t))
    }

    /// Stages `t` for `ring_token.json`; commit it to make it durable.
    pub fn stage_token(&self, t: &StoredToken) -> Result<StagedWrite, Error> {
        let file = TokenFile {
            version: 1,
            refresh_token: t.refresh_token.expose().clone(),
            generation: t.generation,
            env_seed: t.env_seed.clone(),
            saved_at: unix_now(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
            state_err(
                &self.token_path(),
                std::io::Error::new(IoKind::InvalidData, e),
            )
        })?;
        bytes.push(b'\n');
        self.stage(TOKEN_FILE, &bytes)
    }

    /// Atomically and durably replaces `ring_token.json` with `t`, then removes
    /// temp files older interrupted writes left behind.
    pub fn save_token(&self, t: &StoredToken) -> Result<(), Error> {
        let _lock = token_lock();
        self.save_token_locked(t)
    }

    fn save_token_locked(&self, t: &StoredToken) -> Result<(), Error> {
        let staged = self.stage_token(t)?;
        let mine = staged.temp_path().to_owned();
        staged.commit()?;
        for p in self.leftovers(TOKEN_FILE) {
            if p != mine {
                let _ = fs::remove_file(p);
            }
        }
        Ok(())
    }

    /// Moves an unreadable `ring_token.json` aside to
    /// `ring_token.json.corrupt-<unix time>-<random>` (kept for inspection, never deleted).
    pub fn quarantine_token(&self) -> Result<PathBuf, Error> {
        let _lock = token_lock();
        self.quarantine_token_locked()
    }

    fn quarantine_token_locked(&self) -> Result<PathBuf, Error> {
        let path = self.token_path();
        let aside = self.dir.join(format!(
            "{TOKEN_FILE}.corrupt-{}-{:04x}",
            unix_now(),
            rand::random::<u16>()
        ));
        fs::rename(&path, &aside).map_err(|e| state_err(&path, e))?;
        Ok(aside)
    }

    /// Unlinks the account: removes `ring_token.json` and any leftover temp file
    /// (which [`TokenStore::load_token`] would otherwise promote), then fsyncs
    /// the directory. Returns whether a token file existed. The hardware id is
    /// kept (it names this installation, not the account).
    pub fn delete_token(&self) -> Result<bool, Error> {
        let _lock = token_lock();
        let path = self.token_path();
        for p in self.leftovers(TOKEN_FILE) {
            fs::remove_file(&p).map_err(|e| state_err(&p, e))?;
        }
        let existed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == IoKind::NotFound => false,
            Err(e) => return Err(state_err(&path, e)),
        };
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| state_err(&self.dir, e))?;
        Ok(existed)
    }

    /// Applies a refresh token given from outside (the `RING_REFRESH_TOKEN`
    /// environment variable). Precedence:
    /// - nothing saved (or the saved file is corrupt, which is moved aside):
    ///   the env token is saved;
    /// - the saved state was seeded from this same env value: the state
    ///   directory wins (it holds this token or a newer rotation of it);
    /// - otherwise the env value is new (a person pasted a fresh token) and
    ///   replaces the saved token.
    ///
    /// A wrapped token is unwrapped first ([`unwrap_refresh_token`]).
    pub fn seed_from_env(&self, env: &Secret<String>) -> Result<SeedOutcome, Error> {
        let env = &unwrap_refresh_token(env);
        let fp = fingerprint(env);
        let _lock = token_lock();
        let (generation, outcome) = match self.load_token_locked() {
            Ok(Some(t)) if t.env_seed.as_deref() == Some(fp.as_str()) => {
                return Ok(SeedOutcome::KeptStateDir);
            }
            Ok(Some(t)) => (t.generation + 1, SeedOutcome::Replaced),
            Ok(None) => (1, SeedOutcome::Seeded),
            Err(e) if matches!(e.inner(), ErrorInner::StateCorrupt { .. }) => {
                let aside = self.quarantine_token_locked()?;
                tracing::warn!(aside = %aside.display(), "token file was corrupt; moved aside");
                (1, SeedOutcome::Seeded)
            }
            Err(e) => return Err(e),
        };
        self.save_token_locked(&StoredToken {
            refresh_token: env.clone(),
            generation,
            env_seed: Some(fp),
        })?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
