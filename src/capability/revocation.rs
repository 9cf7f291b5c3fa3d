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
        reason: String,
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
    pub fn with_shared(mut self, shared: super::shared::SharedRevocations) -> Revocations {
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

    /// When `id` was revoked, if it was.
    pub fn revoked_at(&self, id: &str) -> Option<Timestamp> {
        self.revoked.get(id).map(|entry| *entry.value())
    }

    /// The first id of the token's lineage (its own id, then its `parent`s) that is revoked: a
    /// token is revoked when any of them is.
    pub fn revoked_lineage<'t>(&self, token: &'t Token) -> Option<&'t str> {
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
    pub fn refresh(&self) -> Result<usize, RevocationError> {
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
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> io::Result<RevocationWatcher> {
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

/// A line's id and time; `None` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<(String, Timestamp)>, String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let entry: Entry<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if entry.id.is_empty() {
        return Err("the id is empty".to_string());
    }
    let at = entry
        .revoked_at
        .parse::<Timestamp>()
        .map_err(|_| format!("`{}` is not an RFC 3339 time", entry.revoked_at))?;
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
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::capability::keys::{Key, Keyring};
    use crate::capability::token::{Caveat, attenuate, mint, parse};

    const A: &str = "mfrggzdfmztwq2lknnwg23tpoa";
    const B: &str = "nbswy3dpeb3w64tmmqaaaaaaaa";
    const C: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn line(id: &str, when: &str) -> String {
        format!("{{\"id\":\"{id}\",\"revoked_at\":\"{when}\"}}\n")
    }

    fn append_raw(path: &Path, text: &str) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn open_creates_the_file_in_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let revocations = Revocations::open(&path).unwrap();
        assert!(path.is_file());
        assert!(revocations.is_empty());
        assert_eq!(revocations.path(), Some(path.as_path()));
        let nowhere = dir.path().join("missing").join("revoked.jsonl");
        let error = Revocations::open(&nowhere).unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn a_revocation_in_one_process_is_seen_by_another_after_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let first = Revocations::open(&path).unwrap();
        let second = Revocations::open(&path).unwrap();
        assert!(first.revoke(A, at("2026-05-01T09:30:00Z")).unwrap());
        assert!(!first.revoke(A, at("2026-05-01T09:31:00Z")).unwrap());
        assert!(first.is_revoked(A));
        assert!(!second.is_revoked(A));
        assert_eq!(second.refresh().unwrap(), 1);
        assert!(second.is_revoked(A));
        assert_eq!(second.revoked_at(A), Some(at("2026-05-01T09:30:00Z")));
        assert_eq!(second.refresh().unwrap(), 0);
        // Both ways, and the file holds exactly one line per revocation.
        assert!(second.revoke(B, at("2026-05-01T10:00:00Z")).unwrap());
        assert_eq!(first.refresh().unwrap(), 1);
        assert!(first.is_revoked(B));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            line(A, "2026-05-01T09:30:00Z") + &line(B, "2026-05-01T10:00:00Z")
        );
        // A restart forgets nothing.
        let third = Revocations::open(&path).unwrap();
        assert_eq!(third.len(), 2);
        assert!(third.is_revoked(A) && third.is_revoked(B));
        assert!(!third.is_revoked(C));
    }

    #[test]
    fn ids_are_checked_and_memory_works_without_a_file() {
        let revocations = Revocations::in_memory();
        assert!(matches!(
            revocations.revoke("not-an-id", Timestamp::UNIX_EPOCH),
            Err(RevocationError::BadId(_))
        ));
        assert!(revocations.revoke(A, Timestamp::UNIX_EPOCH).unwrap());
        assert!(revocations.is_revoked(A));
        assert_eq!(revocations.refresh().unwrap(), 0);
        assert_eq!(revocations.path(), None);
    }

    #[test]
    fn a_token_is_revoked_by_its_id_or_a_parent() {
        let keyring = Keyring::new(
            vec![Key::new("k1", vec![3; 32], None).unwrap()],
            jiff::SignedDuration::ZERO,
        )
        .unwrap();
        let (text, id) = mint(&keyring, &[Caveat::Parent(A.into())]).unwrap();
        let token = parse(&text).unwrap();
        let revocations = Revocations::in_memory();
        assert_eq!(revocations.revoked_lineage(&token), None);
        revocations.revoke(A, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(revocations.revoked_lineage(&token), Some(A));
        let (plain, plain_id) = mint(&keyring, &[]).unwrap();
        let plain = parse(&plain).unwrap();
        assert_eq!(revocations.revoked_lineage(&plain), None);
        revocations
            .revoke(&plain_id, Timestamp::UNIX_EPOCH)
            .unwrap();
        assert_eq!(revocations.revoked_lineage(&plain), Some(plain_id.as_str()));
        // An attenuated token keeps its id, so revoking the id revokes every narrowing of it.
        revocations.revoke(&id, Timestamp::UNIX_EPOCH).unwrap();
        let narrowed = parse(&attenuate(&text, &[Caveat::Actions(vec!["v".into()])]).unwrap());
        assert_eq!(
            revocations.revoked_lineage(&narrowed.unwrap()),
            Some(id.as_str())
        );
    }

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let revocations = Revocations::open(&path).unwrap();
        let full = line(A, "2026-05-01T09:30:00Z");
        let (head, tail) = full.split_at(20);
        append_raw(&path, head);
        assert_eq!(revocations.refresh().unwrap(), 0);
        assert!(!revocations.is_revoked(A));
        // Opening a file whose last line is partial leaves it too.
        assert!(Revocations::open(&path).unwrap().is_empty());
        append_raw(&path, tail);
        assert_eq!(revocations.refresh().unwrap(), 1);
        assert!(revocations.is_revoked(A));
    }

    #[test]
    fn a_revocation_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        std::fs::write(&path, line(A, "2026-05-01T09:30:00Z") + "{\"id\":\"ab").unwrap();
        let reader = Revocations::open(&path).unwrap();
        let writer = Revocations::open(&path).unwrap();
        assert!(writer.revoke(B, at("2026-05-02T00:00:00Z")).unwrap());
        // The torn line is reported once, and the revocation after it is taken.
        let error = reader.refresh().unwrap_err().to_string();
        assert!(error.contains(&format!("{}:2`", path.display())), "{error}");
        assert!(reader.is_revoked(B));
        assert_eq!(reader.refresh().unwrap(), 0);
        // At start, a malformed line is an error naming the file and line.
        let error = Revocations::open(&path).unwrap_err().to_string();
        assert!(
            error.contains(&format!("`{}:2` is not a revocation", path.display())),
            "{error}"
        );
    }

    #[test]
    fn malformed_lines_are_skipped_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let revocations = Revocations::open(&path).unwrap();
        append_raw(&path, &line(A, "2026-05-01T09:30:00Z"));
        append_raw(&path, "\n  \n{\"id\":\"x\",\"revoked_at\":\"yesterday\"}\n");
        append_raw(&path, &line(B, "2026-05-01T09:30:00Z"));
        let error = revocations.refresh().unwrap_err().to_string();
        assert!(error.contains(&format!("{}:4`", path.display())), "{error}");
        assert!(
            error.contains("`yesterday` is not an RFC 3339 time"),
            "{error}"
        );
        assert!(revocations.is_revoked(A) && revocations.is_revoked(B));
        for bad in [
            "[]",
            "{\"id\":\"\",\"revoked_at\":\"2026-05-01T09:30:00Z\"}",
            "{\"id\":1}",
        ] {
            std::fs::write(&path, format!("{bad}\n")).unwrap();
            assert!(
                matches!(
                    Revocations::open(&path),
                    Err(RevocationError::Malformed { line: 1, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_replaced_or_shrunk_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let revocations = Revocations::open(&path).unwrap();
        append_raw(&path, &line(A, "2026-05-01T09:30:00Z"));
        append_raw(&path, &line(B, "2026-05-01T09:30:00Z"));
        assert_eq!(revocations.refresh().unwrap(), 2);
        // Replaced (a new inode, here shorter than what was read): read from the start.
        let replacement = dir.path().join("next.jsonl");
        std::fs::write(&replacement, line(C, "2026-05-03T00:00:00Z")).unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(revocations.refresh().unwrap(), 1);
        assert!(revocations.is_revoked(C));
        // Ids read before stay revoked.
        assert!(revocations.is_revoked(A) && revocations.is_revoked(B));
        // Replaced by a longer file: read from the start all the same (reading on from the old
        // offset would start mid-line).
        let d = "baaaaaaaaaaaaaaaaaaaaaaaaa";
        let longer = line(d, "2026-05-04T00:00:00Z") + &line(C, "2026-05-03T00:00:00Z").repeat(3);
        std::fs::write(&replacement, &longer).unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(revocations.refresh().unwrap(), 1);
        assert!(revocations.is_revoked(d));
        // Shrunk in place (same inode): read from the start.
        let shrinking = Revocations::open(&path).unwrap();
        std::fs::write(&path, line(B, "2026-05-05T00:00:00Z")).unwrap();
        assert_eq!(shrinking.refresh().unwrap(), 1);
        assert!(shrinking.is_revoked(B));
    }

    #[test]
    fn the_watcher_sees_another_process_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.jsonl");
        let watched = Arc::new(Revocations::open(&path).unwrap());
        let watcher = watched.spawn_watcher(DEFAULT_WATCH_INTERVAL).unwrap();
        let other = Revocations::open(&path).unwrap();
        let started = Instant::now();
        other.revoke(A, at("2026-05-01T09:30:00Z")).unwrap();
        let deadline = started + Duration::from_secs(5);
        while !watched.is_revoked(A) {
            assert!(Instant::now() < deadline, "not seen within 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("seen after {:?}", started.elapsed());
        // Stopping returns promptly, without waiting out the interval.
        let stopping = Instant::now();
        watcher.stop();
        assert!(stopping.elapsed() < Duration::from_secs(5));
        other.revoke(B, at("2026-05-01T09:30:00Z")).unwrap();
        // A watcher whose revocations are gone ends by itself; one without a file has no thread.
        let gone = Arc::new(Revocations::open(&path).unwrap());
        let orphan = gone.spawn_watcher(Duration::from_millis(5)).unwrap();
        drop(gone);
        drop(orphan);
        let memory = Arc::new(Revocations::in_memory());
        assert!(
            memory
                .spawn_watcher(DEFAULT_WATCH_INTERVAL)
                .unwrap()
                .threads
                .is_empty()
        );
        assert!(!watched.is_revoked(B));
    }
}
