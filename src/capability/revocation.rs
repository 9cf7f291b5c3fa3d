//! Revoked token ids: a concurrent set for the hot path, persisted to a file of JSON lines that
//! several Warden processes may share.
//!
//! ```text
//! {"id":"mfrggzdfmztwq2lknnwg23tpoa","revoked_at":"2026-05-01T09:30:00Z"}
//! ```
//!
//! A revocation appends one line (`O_APPEND`, one write, then `fsync`). Every process reads the
//! lines appended since its last read (`refresh`), from a watcher thread every 250 ms by
//! default, so a revocation made by one process takes effect in the others within a second. A
//! process never forgets an id it has seen, even if the file is later replaced without it.
//!
//! The file is created `0600`; a file that exists keeps its mode.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use dashmap::DashMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::token::{TOKEN_ID_LEN, Token, is_token_id};

/// How often the watcher reads the file by default.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Why the revocation file could not be opened, read or appended to, or an id not revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(
        "the directory of the revocation file `{0}` does not exist: create it, or name a file in a directory that does"
    )]
    NoDirectory(PathBuf),
    #[error("cannot {action} the revocation file `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "`{path}:{line}` is not a revocation: {reason} (each line is `{{\"id\":\"<token id>\",\"revoked_at\":\"<RFC 3339>\"}}`)"
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: LineProblem,
    },
    #[error("`{0}` is not a token id ({TOKEN_ID_LEN} characters of `a`-`z` and `2`-`7`)")]
    BadId(String),
    #[error("shared revocations at `{url}`: {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
}

/// One line of the file.
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    revoked_at: std::borrow::Cow<'a, str>,
}

/// The revoked token ids, and the file that holds them, if any.
#[derive(Debug)]
pub struct Revocations {
    revoked: DashMap<Box<str>, Timestamp>,
    file: Option<Backing>,
    /// Redis, when revocations are shared through it (`revocations_redis`).
    shared: Option<super::shared::SharedRevocations>,
}

#[derive(Debug)]
struct Backing {
    path: PathBuf,
    read: Mutex<ReadState>,
}

/// How far the file has been read.
#[derive(Debug, Default)]
struct ReadState {
    /// The file read (device and inode), to notice a replaced file.
    identity: Option<(u64, u64)>,
    /// Bytes consumed: up to the end of the last complete line.
    offset: u64,
    /// Lines consumed, for messages.
    lines: usize,
}

impl Revocations {
    /// Revocations held in memory only: forgotten at exit.
    pub fn in_memory() -> Revocations {
        Revocations {
            revoked: DashMap::new(),
            file: None,
            shared: None,
        }
    }

    /// Revocations persisted to `path`, created `0600` if missing (its directory must exist).
    /// Every line already there is read; a malformed one is an error naming the file and line.
    pub fn open(path: impl AsRef<Path>) -> Result<Revocations, RevocationError> {
        let path = path.as_ref().to_path_buf();
        let directory = match path.parent() {
            Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
            Some(parent) => parent,
            None => Path::new("/"),
        };
        if !directory.is_dir() {
            return Err(RevocationError::NoDirectory(path));
        }
        creating()
            .append(true)
            .open(&path)
            .map_err(|source| RevocationError::Io {
                action: "create",
                path: path.clone(),
                source,
            })?;
        let revocations = Revocations {
            revoked: DashMap::new(),
            file: Some(Backing {
                path,
                read: Mutex::new(ReadState::default()),
            }),
            shared: None,
        };
        revocations.read_new(true)?;
        Ok(revocations)
    }

    /// These revocations, shared through Redis as well: every id stored there is read now,
    /// when Redis answers (else the watcher reads them once it does, and a replica still starts
    /// while Redis is down), and [`revoke`](Self::revoke) stores and publishes there.
    pub(crate) fn with_shared(mut self, shared: super::shared::SharedRevocations) -> Revocations {
        match shared.load() {
            Ok(all) => {
                for (id, at) in all {
                    self.hold(&id, at);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "shared revocations: not read at start; read once Redis answers");
            }
        }
        self.shared = Some(shared);
        self
    }

    /// Holds `id` as revoked at `at` (learnt from elsewhere: nothing is written). False when it
    /// was held already or is not a token id.
    pub fn hold(&self, id: &str, at: Timestamp) -> bool {
        if !is_token_id(id) || self.is_revoked(id) {
            return false;
        }
        self.revoked.insert(id.into(), at).is_none()
    }

    /// The file, if the revocations have one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|backing| backing.path.as_path())
    }

    /// True when `id` is revoked. Allocates nothing.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked.contains_key(id)
    }

    /// The first id of the token's lineage (its own id, then its `parent`s) that is revoked: a
    /// token is revoked when any of them is.
    pub(crate) fn revoked_lineage<'t>(&self, token: &'t Token) -> Option<&'t str> {
        token.lineage().find(|id| self.is_revoked(id))
    }

    /// How many ids are revoked.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// Revokes `id` at `now`: appends its line to the file (one write, then `fsync`) and holds it.
    /// False when it was already revoked.
    pub fn revoke(&self, id: &str, now: Timestamp) -> Result<bool, RevocationError> {
        if !is_token_id(id) {
            return Err(RevocationError::BadId(id.to_string()));
        }
        let newly = !self.is_revoked(id);
        if newly {
            if let Some(backing) = &self.file {
                append(&backing.path, id, now)?;
            }
            self.revoked.insert(id.into(), now);
        }
        // Published even when held already: a revocation whose publication failed is shared
        // when it is made again.
        if let Some(shared) = &self.shared {
            shared.publish(id, now)?;
        }
        Ok(newly)
    }

    /// Reads the lines appended to the file since the last read, or the whole file when it was
    /// replaced or shrank; a last line without its newline is left for the next time. Returns
    /// how many ids were newly revoked. A malformed line is skipped and reported (after the
    /// lines around it are taken), so that one bad line never hides later revocations.
    pub(crate) fn refresh(&self) -> Result<usize, RevocationError> {
        self.read_new(false)
    }

    fn read_new(&self, strict: bool) -> Result<usize, RevocationError> {
        let Some(backing) = &self.file else {
            return Ok(0);
        };
        let path = &backing.path;
        let io_error = |action: &'static str| {
            move |source| RevocationError::Io {
                action,
                path: path.clone(),
                source,
            }
        };
        let mut state = backing
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = File::open(path).map_err(io_error("open"))?;
        let metadata = file.metadata().map_err(io_error("read"))?;
        let identity = identity(&metadata);
        if state.identity != identity || metadata.len() < state.offset {
            *state = ReadState {
                identity,
                offset: 0,
                lines: 0,
            };
        }
        if metadata.len() == state.offset {
            return Ok(0);
        }
        file.seek(SeekFrom::Start(state.offset))
            .map_err(io_error("read"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error("read"))?;
        let complete = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        let mut added = 0;
        let mut first_error = None;
        for line in bytes
            .get(..complete)
            .unwrap_or_default()
            .split_inclusive(|&b| b == b'\n')
        {
            state.lines += 1;
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some((id, at))) => {
                    if !self.revoked.contains_key(id.as_str()) {
                        self.revoked.insert(id.into_boxed_str(), at);
                        added += 1;
                    }
                }
                Err(reason) => {
                    let error = RevocationError::Malformed {
                        path: path.clone(),
                        line: state.lines,
                        reason,
                    };
                    if strict {
                        return Err(error);
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
        state.offset += complete as u64;
        match first_error {
            Some(error) => Err(error),
            None => Ok(added),
        }
    }

    /// Starts a thread that calls [`refresh`](Self::refresh) every `interval`, logging errors
    /// (once each, until the next success) and keeping the ids already read. It ends when the
    /// returned [`RevocationWatcher`] is dropped or stopped, or when the last `Arc` of `self` is.
    pub(crate) fn spawn_watcher(
        self: &Arc<Self>,
        interval: Duration,
    ) -> io::Result<RevocationWatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if self.file.is_some() {
            let weak: Weak<Revocations> = Arc::downgrade(self);
            let flag = Arc::clone(&stop);
            threads.push(
                std::thread::Builder::new()
                    .name("warden-revocations".to_string())
                    .spawn(move || watch(&weak, &flag, interval))?,
            );
        }
        if let Some(shared) = self.shared.clone() {
            let weak: Weak<Revocations> = Arc::downgrade(self);
            let flag = Arc::clone(&stop);
            threads.push(
                std::thread::Builder::new()
                    .name("warden-revocations-redis".to_string())
                    .spawn(move || shared.follow(&weak, &flag, interval))?,
            );
        }
        Ok(RevocationWatcher { stop, threads })
    }
}

fn watch(revocations: &Weak<Revocations>, stop: &AtomicBool, interval: Duration) {
    let mut last_error: Option<String> = None;
    loop {
        std::thread::park_timeout(interval);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(revocations) = revocations.upgrade() else {
            return;
        };
        match revocations.refresh() {
            Ok(_) => last_error = None,
            Err(error) => {
                let message = error.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "revocations: keeping the ids already read");
                }
                last_error = Some(message);
            }
        }
    }
}

/// The revocation watcher threads (the file's, Redis'); dropping it stops them.
#[derive(Debug)]
pub struct RevocationWatcher {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RevocationWatcher {
    /// Stops the thread and waits for it (at most one refresh).
    pub fn stop(self) {}
}

impl Drop for RevocationWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            thread.thread().unpark();
            // A panic in the watcher has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// What is wrong with one line of a revocation file.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("the id is empty")]
    EmptyId,
    #[error("`{0}` is not an RFC 3339 time")]
    Time(String),
}

/// A line's id and time; `None` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<(String, Timestamp)>, LineProblem> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let entry: Entry<'_> = serde_json::from_slice(line)?;
    if entry.id.is_empty() {
        return Err(LineProblem::EmptyId);
    }
    let at = entry
        .revoked_at
        .parse::<Timestamp>()
        .map_err(|_| LineProblem::Time(entry.revoked_at.to_string()))?;
    Ok(Some((entry.id.into_owned(), at)))
}

/// Options that create a missing file readable and writable by its owner only (`0600`):
/// whoever can write it can revoke any token. Other users' processes that share it are given
/// access on purpose (a file that exists keeps its mode).
fn creating() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Appends one revocation line in a single write, after a newline if the file's last line lacks
/// one (a torn write), then syncs it to disk.
fn append(path: &Path, id: &str, now: Timestamp) -> Result<(), RevocationError> {
    let io_error = |action: &'static str| {
        move |source| RevocationError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = creating()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io_error("open"))?;
    let mut line = Vec::with_capacity(80);
    if file.metadata().map_err(io_error("read"))?.len() > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1)).map_err(io_error("read"))?;
        file.read_exact(&mut last).map_err(io_error("read"))?;
        if last[0] != b'\n' {
            line.push(b'\n');
        }
    }
    let entry = Entry {
        id: id.into(),
        revoked_at: now.to_string().into(),
    };
    serde_json::to_writer(&mut line, &entry).map_err(|e| io_error("write")(io::Error::other(e)))?;
    line.push(b'\n');
    file.write_all(&line).map_err(io_error("append to"))?;
    file.sync_data().map_err(io_error("sync"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
