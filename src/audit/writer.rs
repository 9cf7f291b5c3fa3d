//! The writer: calls hand finished record bodies to a bounded queue; one thread seals them
//! into the chain, writes them in batches, signs checkpoints, syncs and rotates.
//!
//! - **The queue** is bounded in decisions, not records (a batch call's record holds all its
//!   items): `audit_queue` decisions may wait, whatever the mix of calls.
//! - **Queue full.** `block` (the default): the call waits for room (back-pressure; nothing is
//!   lost). `drop`: the record is dropped and its decisions counted in
//!   `warden_audit_dropped_total` (never silently).
//! - **Batches.** The writer takes everything queued (up to 16384 records), writes it with one
//!   system call, and then waits until [`BATCH_INTERVAL`] has passed since the batch began
//!   before taking the next: a group commit, so that under load a sync covers many records
//!   instead of each record paying for one.
//! - **fsync.** `interval` (the default): written to the OS after every batch, synced at most
//!   every `audit_fsync_interval_ms` (an OS crash may lose that much; a process crash loses
//!   only what was still queued). `batch`: after every batch the file is also `fdatasync`ed,
//!   so a record is on disk within a batch interval and a sync of its decision. Checkpoints
//!   that close a file are always synced.
//! - **Checkpoints.** Every `audit_checkpoint_records` records or `audit_checkpoint_interval_ms`,
//!   whichever comes first (when records were written since the last one), at rotation
//!   (`reason: "rotate"`) and at shutdown (`reason: "close"`).
//! - **Rotation.** When the file reaches `audit_rotate_bytes`, or is `audit_rotate_interval_ms`
//!   old, it is closed with a checkpoint and renamed to `PATH.<first seq, 12 digits>`; the new
//!   file's first record links to the renamed file's last.
//! - **Restart.** An existing log is continued: the chain goes on from its last record (or from
//!   the newest rotated file's, when the active file is gone), under the log id its last
//!   checkpoint names. An active file whose checkpoints are of format 1 is rotated away first:
//!   a file holds checkpoints of one format.
//! - **Mode.** The files are created `0600`: they hold request bodies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, TryAcquireError, mpsc, oneshot};

use crate::audit::chain::{self, Key};
use crate::audit::record::Record;
use crate::audit::{AuditConfig, Fsync, Mode, WhenFull};

/// The shortest time between the starts of two batches (group commit).
pub(crate) const BATCH_INTERVAL: Duration = Duration::from_millis(10);

/// The most records one batch takes from the queue.
const BATCH_MAX: usize = 16_384;

/// How much file space is reserved ahead of the log's end at a time.
const RESERVE: u64 = 64 * 1024 * 1024;

/// The page size the page-cache advice is aligned to (4 KiB on every platform Warden
/// runs on; a larger page only makes the advice drop less).
#[cfg(unix)]
const PAGE: u64 = 4096;

enum Message {
    /// A record, and the room it holds in the queue (its decisions, at most the capacity).
    Record(Record, u32),
    Close(oneshot::Sender<()>),
}

/// Counters shared by the handlers, the writer and `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records written (decision and batch records; checkpoints are counted apart).
    pub written: AtomicU64,
    /// Decisions in the records written.
    pub decisions: AtomicU64,
    /// Decisions dropped (queue full in `drop` mode, or the log closed).
    pub dropped: AtomicU64,
    /// Decisions whose calls found the queue full and waited.
    pub waited: AtomicU64,
    pub checkpoints: AtomicU64,
    /// The seq of the last checkpoint written, plus one (0: none yet).
    pub last_checkpoint_seq: AtomicU64,
    /// When the last checkpoint was written (Unix milliseconds).
    pub last_checkpoint_ms: std::sync::atomic::AtomicI64,
    pub rotations: AtomicU64,
    /// `fdatasync`s of the log that succeeded.
    pub syncs: AtomicU64,
    pub write_errors: AtomicU64,
    /// Allows seen in `sampled` mode (the sampler's clock).
    allows_seen: AtomicU64,
    /// Tasks still waiting to queue the records of callers that found the queue full; closing
    /// waits for them, so that the close message cannot overtake their records.
    waiting_tasks: AtomicU64,
}

/// Stops the writer before its next batch while held (for tests of back-pressure).
#[derive(Debug, Default)]
struct Gate {
    stalled: Mutex<bool>,
    opened: Condvar,
}

/// A running audit log: the queue's sending side and the writer thread.
pub struct AuditLog {
    config: AuditConfig,
    sender: mpsc::UnboundedSender<Message>,
    /// Room in the queue, in decisions: taken by calls, given back as the writer takes.
    room: Arc<Semaphore>,
    capacity: u32,
    pub counters: Arc<Counters>,
    gate: Arc<Gate>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.config.path)
            .finish()
    }
}

/// While alive, the writer takes nothing from the queue.
pub struct Stall {
    gate: Arc<Gate>,
}

impl Drop for Stall {
    fn drop(&mut self) {
        *self
            .gate
            .stalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = false;
        self.gate.opened.notify_all();
    }
}

impl AuditLog {
    /// Opens (or continues) the log and starts the writer thread.
    pub fn start(config: AuditConfig) -> std::io::Result<AuditLog> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let capacity =
            u32::try_from(config.queue.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let room = Arc::new(Semaphore::new(capacity as usize));
        let counters = Arc::new(Counters::default());
        let gate = Arc::new(Gate::default());
        let mut writer = Writer::open(&config, counters.clone(), room.clone())?;
        let thread_gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name("warden-audit".to_string())
            .spawn(move || writer.run(receiver, &thread_gate))?;
        Ok(AuditLog {
            config,
            sender,
            room,
            capacity,
            counters,
            gate,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Whether this outcome is recorded: allowed by policy and not refused by a limit
    /// (`limited`) counts as an allow.
    pub(crate) fn wants_outcome(
        &self,
        outcome: crate::decide::Decided<'_>,
        limited: Option<&crate::limit::Refusal>,
    ) -> bool {
        let allowed = matches!(outcome, Ok((decision, _)) if decision.allowed);
        self.wants(allowed && limited.is_none())
    }

    /// Whether a decision with this verdict is recorded (`sampled` mode counts allows).
    pub(crate) fn wants(&self, allowed: bool) -> bool {
        match self.config.mode {
            Mode::All => true,
            Mode::Denies => !allowed,
            Mode::Sampled => {
                if !allowed {
                    return true;
                }
                let n = self.counters.allows_seen.fetch_add(1, Relaxed);
                let rate = self.config.sample_allows;
                // Exactly `rate` of allows, evenly spread: record the n-th when the running
                // count of wanted records goes up.
                ((n + 1) as f64 * rate).floor() > (n as f64 * rate).floor()
            }
        }
    }

    /// Queues a call's record: waits for room (`block`) or drops and counts (`drop`).
    ///
    /// When it must wait, it waits in a task of its own and awaits that: a call dropped while
    /// waiting (the client hung up, the request timed out) still gets its record written.
    pub(crate) async fn submit(&self, record: Record) {
        let decisions = u64::from(record.decisions);
        // A record larger than the whole queue waits for all of it.
        let permits = record.decisions.clamp(1, self.capacity);
        match self.room.try_acquire_many(permits) {
            Ok(permit) => {
                permit.forget();
                if self.sender.send(Message::Record(record, permits)).is_err() {
                    self.lost(decisions);
                }
            }
            Err(TryAcquireError::NoPermits) => match self.config.when_full {
                WhenFull::Drop => {
                    self.counters.dropped.fetch_add(decisions, Relaxed);
                }
                WhenFull::Block => {
                    self.counters.waited.fetch_add(decisions, Relaxed);
                    let sender = self.sender.clone();
                    let room = self.room.clone();
                    let counters = self.counters.clone();
                    counters.waiting_tasks.fetch_add(1, Relaxed);
                    let task = tokio::spawn(async move {
                        let queued = match room.acquire_many(permits).await {
                            Ok(permit) => {
                                permit.forget();
                                sender.send(Message::Record(record, permits)).is_ok()
                            }
                            Err(_) => false,
                        };
                        if !queued {
                            counters.dropped.fetch_add(decisions, Relaxed);
                            tracing::error!(
                                lost = decisions,
                                "audit records arrived after the audit log was closed; dropped"
                            );
                        }
                        counters.waiting_tasks.fetch_sub(1, Relaxed);
                    });
                    let _ = task.await;
                }
            },
            Err(TryAcquireError::Closed) => self.lost(decisions),
        }
    }

    fn lost(&self, n: u64) {
        self.counters.dropped.fetch_add(n, Relaxed);
        tracing::error!(
            lost = n,
            "an audit record arrived after the audit log was closed; dropped"
        );
    }

    /// Decisions waiting in the queue.
    pub fn queued(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.room.available_permits())
    }

    /// Holds the writer until the returned guard is dropped.
    pub fn stall(&self) -> Stall {
        *self
            .gate
            .stalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        Stall {
            gate: self.gate.clone(),
        }
    }

    /// Writes everything queued, a closing checkpoint, syncs, and stops the writer; waits up
    /// to `timeout`. Records submitted later are dropped and counted.
    pub async fn close(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        let deadline = tokio::time::Instant::now() + timeout;
        // Records of callers that waited for room are queued by tasks of their own: let them
        // queue before the close message, or they would arrive after it and be lost.
        while self.counters.waiting_tasks.load(Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let closed = match self.sender.send(Message::Close(done)) {
            Ok(()) => tokio::time::timeout_at(deadline, finished).await.is_ok(),
            Err(_) => false,
        };
        if closed {
            let thread = self
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            tracing::info!(
                records = self.counters.written.load(Relaxed),
                decisions = self.counters.decisions.load(Relaxed),
                "audit log drained and closed"
            );
        } else {
            tracing::error!(
                queued = self.queued(),
                "the audit log did not drain before the shutdown timeout"
            );
        }
    }

    /// The log's state for `/v1/status`: where it is written, what was written and dropped,
    /// what waits, and the last checkpoint.
    pub fn status(&self) -> serde_json::Value {
        let c = &self.counters;
        let last_checkpoint = match c.last_checkpoint_seq.load(Relaxed) {
            0 => serde_json::Value::Null,
            seq => serde_json::json!({
                "seq": seq - 1,
                "at": jiff::Timestamp::from_millisecond(c.last_checkpoint_ms.load(Relaxed))
                    .map(|t| t.to_string())
                    .ok(),
            }),
        };
        serde_json::json!({
            "path": self.config.path.display().to_string(),
            "mode": self.config.mode,
            "records": c.written.load(Relaxed),
            "decisions": c.decisions.load(Relaxed),
            "dropped": c.dropped.load(Relaxed),
            "queue_depth": self.queued(),
            "queue_capacity": self.capacity,
            "checkpoints": c.checkpoints.load(Relaxed),
            "last_checkpoint": last_checkpoint,
            "fsync": self.config.fsync,
            "syncs": c.syncs.load(Relaxed),
            "write_errors": c.write_errors.load(Relaxed),
        })
    }

    /// The audit series for `/metrics`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let c = &self.counters;
        let series: [(&str, &str, &str, u64); 9] = [
            (
                "warden_audit_records_total",
                "counter",
                "Audit records written (a batch call's record holds all its decisions; checkpoints not counted).",
                c.written.load(Relaxed),
            ),
            (
                "warden_audit_decisions_total",
                "counter",
                "Decisions in the audit records written.",
                c.decisions.load(Relaxed),
            ),
            (
                "warden_audit_dropped_total",
                "counter",
                "Decisions whose audit records were dropped because the queue was full (audit_when_full = \"drop\") or the log was closed.",
                c.dropped.load(Relaxed),
            ),
            (
                "warden_audit_queue_full_total",
                "counter",
                "Decisions whose calls waited for room in a full audit queue.",
                c.waited.load(Relaxed),
            ),
            (
                "warden_audit_checkpoints_total",
                "counter",
                "Signed checkpoints written.",
                c.checkpoints.load(Relaxed),
            ),
            (
                "warden_audit_rotations_total",
                "counter",
                "Audit files rotated.",
                c.rotations.load(Relaxed),
            ),
            (
                "warden_audit_syncs_total",
                "counter",
                "Times the audit file was synced to disk (fdatasync).",
                c.syncs.load(Relaxed),
            ),
            (
                "warden_audit_write_errors_total",
                "counter",
                "Failed writes to the audit file (retried).",
                c.write_errors.load(Relaxed),
            ),
            (
                "warden_audit_queue_depth",
                "gauge",
                "Decisions waiting in the audit queue.",
                self.queued() as u64,
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    key: Key,
    fsync: Fsync,
    fsync_interval: Duration,
    checkpoint_records: u64,
    checkpoint_interval: Duration,
    rotate_bytes: u64,
    rotate_interval: Option<Duration>,
    counters: Arc<Counters>,
    room: Arc<Semaphore>,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// Bytes of the current file already dropped from the page cache.
    dropped: u64,
    /// Where the space reserved ahead of the current file's end ends (0: none reserved).
    reserved: u64,
    /// Whether the file system takes reservations (cleared at the first refusal).
    reserving: bool,
    opened: Instant,
    /// The seq and `prev` of the current file's first record (for the rotated name and the
    /// checkpoints, which sign where their file starts).
    file_start: Option<(u64, String)>,
    /// The log's id, named by every checkpoint.
    log: String,
    next_seq: u64,
    head: String,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    last_sync: Instant,
    unsynced: bool,
    buffer: String,
    /// Held for the writer's life: a second server on the same log fails to start.
    _lock: File,
}

impl Writer {
    fn open(
        config: &AuditConfig,
        counters: Arc<Counters>,
        room: Arc<Semaphore>,
    ) -> std::io::Result<Writer> {
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let lock = lock(&config.path)?;
        let mut found = Found::recover(&config.path)?;
        if found.active_format_1 {
            // Rotated away unsigned by this version: its checkpoints are of the old format,
            // which verify no longer takes, and a file holds one format.
            let first = found
                .file_start
                .take()
                .map_or(found.next_seq, |(seq, _)| seq);
            let rotated = rotated_name(&config.path, first);
            if rotated.exists() {
                return Err(std::io::Error::other(format!(
                    "the audit log `{}` is of format 1 and cannot be set aside: `{}` exists",
                    config.path.display(),
                    rotated.display()
                )));
            }
            std::fs::rename(&config.path, &rotated)?;
            tracing::warn!(
                rotated = %rotated.display(),
                "the audit log's checkpoints are of format 1; its file is rotated and the log goes on in format 2"
            );
        }
        let log = match found.log {
            Some(log) => log,
            None => new_log_id()?,
        };
        let mut file = open_log(&config.path)?;
        let size = file.seek(SeekFrom::End(0))?;
        if size > 0 && !ends_with_newline(&config.path)? {
            // A line cut short by a crash: end it, so the next record starts a line of its own
            // (verify reports the cut line).
            file.write_all(b"\n")?;
        }
        let now = Instant::now();
        Ok(Writer {
            path: config.path.clone(),
            key: config.key.clone(),
            fsync: config.fsync,
            fsync_interval: config.fsync_interval,
            checkpoint_records: config.checkpoint_records,
            checkpoint_interval: config.checkpoint_interval,
            rotate_bytes: config.rotate_bytes,
            rotate_interval: config.rotate_interval,
            counters,
            room,
            size: file.metadata()?.len(),
            dropped: 0,
            reserved: 0,
            reserving: cfg!(target_os = "linux"),
            file,
            opened: now,
            file_start: found.file_start,
            log,
            next_seq: found.next_seq,
            head: found.head,
            since_checkpoint: 0,
            last_checkpoint: now,
            last_sync: now,
            unsynced: false,
            buffer: String::with_capacity(1 << 16),
            _lock: lock,
        })
    }

    fn run(&mut self, mut receiver: mpsc::UnboundedReceiver<Message>, gate: &Gate) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "the audit writer cannot start");
                return;
            }
        };
        let mut batch = Vec::with_capacity(1024);
        let closed = runtime.block_on(async {
            loop {
                let tick = self.next_deadline();
                match tokio::time::timeout(tick, receiver.recv()).await {
                    Ok(Some(message)) => batch.push(message),
                    Ok(None) => return None,
                    Err(_) => {
                        self.housekeeping();
                        continue;
                    }
                }
                let began = Instant::now();
                // Wait here while stalled (tests): the queue fills behind.
                {
                    let mut stalled = gate.stalled.lock().unwrap_or_else(PoisonError::into_inner);
                    while *stalled {
                        stalled = gate
                            .opened
                            .wait(stalled)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                }
                while batch.len() < BATCH_MAX {
                    match receiver.try_recv() {
                        Ok(message) => batch.push(message),
                        Err(_) => break,
                    }
                }
                self.took(&batch);
                let mut close = None;
                for message in batch.drain(..) {
                    match message {
                        Message::Record(record, _) => self.append(&record),
                        Message::Close(done) => close = Some(done),
                    }
                    if self.since_checkpoint >= self.checkpoint_records {
                        self.checkpoint("count");
                    }
                    if self.size + self.buffer.len() as u64 >= self.rotate_bytes {
                        self.rotate();
                    }
                }
                self.flush();
                if let Some(done) = close {
                    return Some(done);
                }
                self.housekeeping();
                let spent = began.elapsed();
                if spent < BATCH_INTERVAL {
                    tokio::time::sleep(BATCH_INTERVAL - spent).await;
                }
            }
        });
        self.checkpoint("close");
        self.flush();
        self.sync();
        self.trim();
        if let Some(done) = closed {
            let _ = done.send(());
        }
    }

    /// How long the writer may wait for a record before housekeeping is due.
    fn next_deadline(&self) -> Duration {
        let mut wait = Duration::from_secs(1);
        if self.since_checkpoint > 0 {
            wait = wait.min(
                self.checkpoint_interval
                    .saturating_sub(self.last_checkpoint.elapsed()),
            );
        }
        if self.unsynced {
            wait = wait.min(self.fsync_interval.saturating_sub(self.last_sync.elapsed()));
        }
        wait.max(Duration::from_millis(1))
    }

    /// Time-driven work: checkpoints, syncs, rotation.
    fn housekeeping(&mut self) {
        if self.since_checkpoint > 0 && self.last_checkpoint.elapsed() >= self.checkpoint_interval {
            self.checkpoint("interval");
            self.flush();
        }
        match self.fsync {
            Fsync::Batch => self.sync(),
            Fsync::Interval => {
                if self.last_sync.elapsed() >= self.fsync_interval {
                    self.sync();
                }
            }
        }
        let too_big = self.size >= self.rotate_bytes;
        let too_old = self
            .rotate_interval
            .is_some_and(|interval| self.opened.elapsed() >= interval && self.size > 0);
        if too_big || too_old {
            self.rotate();
        }
    }

    /// Messages left the queue: their room is free again, given back in one return for the
    /// whole batch (each return takes the semaphore's lock, which the calls contend for).
    fn took(&self, batch: &[Message]) {
        let permits: usize = batch
            .iter()
            .map(|message| match message {
                Message::Record(_, permits) => *permits as usize,
                Message::Close(_) => 0,
            })
            .sum();
        if permits > 0 {
            self.room.add_permits(permits);
        }
    }

    fn append(&mut self, record: &Record) {
        let seq = self.next_seq;
        let prev = self.file_start.is_none().then(|| self.head.clone());
        chain::seal_chained(&mut self.buffer, seq, &mut self.head, &record.body);
        self.buffer.push('\n');
        self.next_seq += 1;
        if let Some(prev) = prev {
            self.file_start = Some((seq, prev));
        }
        self.since_checkpoint += u64::from(record.decisions.max(1));
        self.counters.written.fetch_add(1, Relaxed);
        self.counters
            .decisions
            .fetch_add(u64::from(record.decisions), Relaxed);
    }

    fn checkpoint(&mut self, reason: &str) {
        let seq = self.next_seq;
        let (file_seq, file_prev) = self
            .file_start
            .get_or_insert_with(|| (seq, self.head.clone()))
            .clone();
        let time = jiff::Timestamp::now().to_string();
        let checkpoint = chain::Checkpoint {
            log: &self.log,
            file_seq,
            file_prev: &file_prev,
            time: &time,
            reason,
        };
        chain::seal_checkpoint(
            &mut self.buffer,
            seq,
            &mut self.head,
            &checkpoint,
            &self.key,
        );
        self.buffer.push('\n');
        self.next_seq += 1;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        self.counters.checkpoints.fetch_add(1, Relaxed);
        self.counters.last_checkpoint_seq.store(seq + 1, Relaxed);
        self.counters
            .last_checkpoint_ms
            .store(jiff::Timestamp::now().as_millisecond(), Relaxed);
    }

    /// Writes the buffer out, retrying (and counting) failures: a record is never skipped.
    fn flush(&mut self) {
        self.reserve(self.buffer.len() as u64);
        let bytes = self.buffer.as_bytes();
        let mut written = 0;
        let mut failures = 0u32;
        while written < bytes.len() {
            match self.file.write(&bytes[written..]) {
                Ok(0) => {
                    failures += 1;
                    self.write_failed(
                        &std::io::Error::from(std::io::ErrorKind::WriteZero),
                        failures,
                    );
                }
                Ok(n) => written += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failures += 1;
                    self.write_failed(&error, failures);
                }
            }
        }
        self.size += bytes.len() as u64;
        if !bytes.is_empty() {
            self.unsynced = true;
        }
        self.buffer.clear();
        if self.fsync == Fsync::Batch {
            self.sync();
        }
    }

    fn write_failed(&self, error: &std::io::Error, failures: u32) {
        self.counters.write_errors.fetch_add(1, Relaxed);
        if failures == 1 || failures.is_power_of_two() {
            tracing::error!(%error, path = %self.path.display(), "cannot write the audit log; retrying");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Reserves the file's space ahead of its end, [`RESERVE`] at a time (never past the
    /// rotation size), without changing its size: appending into reserved space spares the
    /// file system an allocation per page (a quarter of the writer's system time in a
    /// measurement on ext4). Readers see the file as it is; the space beyond the end is given
    /// back when the file is closed or rotated ([`Writer::trim`]).
    fn reserve(&mut self, len: u64) {
        let end = self.size + len;
        if !self.reserving || end <= self.reserved {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let from = self.reserved.max(self.size);
            let to = end.max(from + RESERVE.min(self.rotate_bytes));
            let reserved = rustix::fs::fallocate(
                &self.file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                from,
                to - from,
            );
            match reserved {
                Ok(()) => self.reserved = to,
                // Not every file system reserves (or has room to): write without.
                Err(error) => {
                    tracing::debug!(%error, "the audit log's space cannot be reserved ahead");
                    self.reserving = false;
                }
            }
        }
    }

    /// Gives back the space reserved beyond the end of the file.
    fn trim(&mut self) {
        if self.reserved > self.size {
            if let Err(error) = self.file.set_len(self.size) {
                tracing::warn!(%error, "cannot give back the audit log's reserved space");
            }
            self.reserved = 0;
        }
    }

    fn sync(&mut self) {
        if !self.unsynced {
            return;
        }
        if let Err(error) = self.file.sync_data() {
            // Still unsynced: the next sync (the next batch, or the next interval) retries.
            tracing::error!(%error, "cannot sync the audit log");
            self.counters.write_errors.fetch_add(1, Relaxed);
        } else {
            self.unsynced = false;
            self.counters.syncs.fetch_add(1, Relaxed);
            // The log is written once and not read back: its synced pages would only crowd
            // the page cache (and, under load, make every new page cost a reclaim).
            // Only whole pages written since the last time: the rest is gone already, and
            // the last, partly written page stays, or the next write would read it back
            // from the disk first.
            #[cfg(unix)]
            {
                let whole = self.size & !(PAGE - 1);
                if whole > self.dropped {
                    let len = std::num::NonZeroU64::new(whole - self.dropped);
                    let advised = rustix::fs::fadvise(
                        &self.file,
                        self.dropped,
                        len,
                        rustix::fs::Advice::DontNeed,
                    );
                    if advised.is_ok() {
                        self.dropped = whole;
                    }
                }
            }
        }
        self.last_sync = Instant::now();
    }

    fn rotate(&mut self) {
        self.checkpoint("rotate");
        self.flush();
        self.sync();
        self.trim();
        let first = self
            .file_start
            .as_ref()
            .map_or(self.next_seq, |(seq, _)| *seq);
        let rotated = rotated_name(&self.path, first);
        if let Err(error) = std::fs::rename(&self.path, &rotated) {
            tracing::error!(%error, "cannot rotate the audit log; continuing in the same file");
            return;
        }
        match open_log(&self.path) {
            Ok(file) => {
                self.file = file;
                self.size = 0;
                self.dropped = 0;
                self.reserved = 0;
                self.opened = Instant::now();
                self.file_start = None;
                self.counters.rotations.fetch_add(1, Relaxed);
                tracing::info!(rotated = %rotated.display(), "audit log rotated");
            }
            Err(error) => {
                tracing::error!(%error, "cannot open a new audit file; writing to the rotated one");
                if let Ok(file) = OpenOptions::new().append(true).open(&rotated) {
                    self.file = file;
                }
            }
        }
    }
}

/// Takes `.NAME.lock` beside the log (hidden, so `NAME*` does not match it): two writers on
/// one chain would fork it.
fn lock(path: &Path) -> std::io::Result<File> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path)?;
    #[cfg(unix)]
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| {
            std::io::Error::other(format!(
                "another process is writing this audit log (it holds `{}`)",
                lock_path.display()
            ))
        },
    )?;
    Ok(file)
}

/// `audit.jsonl` → `audit.jsonl.000000001234`.
pub fn rotated_name(path: &Path, first_seq: u64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{first_seq:012}"));
    PathBuf::from(name)
}

fn newest_rotated(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut rotated = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let file_name = entry?.file_name().to_string_lossy().to_string();
        if let Some(rest) = file_name.strip_prefix(&prefix)
            && rest.len() == 12
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            rotated.push(file_name);
        }
    }
    Ok(rotated.into_iter().max().map(|name| dir.join(name)))
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Opens (or creates, `0600`: the log holds request bodies) a log file for appending.
fn open_log(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A new log's id: 128 random bits, in hex.
fn new_log_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("cannot draw the audit log's id: {e}")))?;
    Ok(chain::hex(&bytes))
}

/// Where a writer continues an existing log.
struct Found {
    next_seq: u64,
    head: String,
    /// The seq and `prev` of the active file's first record, when it has one.
    file_start: Option<(u64, String)>,
    /// The log id of the last checkpoint (of the active file, else of the newest rotated
    /// one), when it is of format 2.
    log: Option<String>,
    /// The active file's last checkpoint is of format 1.
    active_format_1: bool,
}

impl Found {
    fn recover(path: &Path) -> std::io::Result<Found> {
        let active = scan(path)?.unwrap_or_default();
        let rotated = if active.last.is_none() || active.checkpoint.is_none() {
            match newest_rotated(path)? {
                Some(rotated) => scan(&rotated)?.unwrap_or_default(),
                None => Scan::default(),
            }
        } else {
            Scan::default()
        };
        let (next_seq, head) = match active.last.as_ref().or(rotated.last.as_ref()) {
            Some((seq, hash)) => (seq + 1, hash.clone()),
            None => (0, chain::GENESIS.to_string()),
        };
        let file_start = active.last.is_some().then_some(active.first).flatten();
        let active_format_1 = matches!(active.checkpoint, Some(None));
        let log = active.checkpoint.or(rotated.checkpoint).flatten();
        Ok(Found {
            next_seq,
            head,
            file_start,
            log,
            active_format_1,
        })
    }
}

/// What a writer needs of a file's records.
#[derive(Default)]
struct Scan {
    /// The first record's seq and `prev`.
    first: Option<(u64, String)>,
    /// The last sealed record's seq and hash.
    last: Option<(u64, String)>,
    /// The last checkpoint: `Some(log id)` for format 2, `None` for format 1.
    checkpoint: Option<Option<String>>,
}

/// The members of a record the writer reads back (the others are only parsed as JSON).
#[derive(serde::Deserialize)]
struct Head {
    seq: Option<u64>,
    prev: Option<String>,
    kind: Option<String>,
    format: Option<u64>,
    log: Option<String>,
}

/// Reads a file's first record, and its tail back to its last checkpoint, widening the
/// window from the end until it holds both (or the whole file).
fn scan(path: &Path) -> std::io::Result<Option<Scan>> {
    use std::io::BufRead;
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let head_of = |line: &str| serde_json::from_str::<Head>(line).ok();
    let len = file.metadata()?.len();
    let mut first_line = Vec::new();
    std::io::BufReader::new(&mut file).read_until(b'\n', &mut first_line)?;
    let first = head_of(String::from_utf8_lossy(&first_line).trim_end())
        .and_then(|head| Some((head.seq?, head.prev?)));
    let mut found = Scan {
        first,
        ..Scan::default()
    };
    let mut window: u64 = 1 << 20;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        // Unless the window starts the file, its first line may be a piece of one.
        let skip = usize::from(start > 0);
        let lines: Vec<&str> = text.lines().skip(skip).collect();
        for line in lines.iter().rev() {
            // Once the last record is known, only a checkpoint is worth parsing.
            if chain::split(line).is_none()
                || (found.last.is_some() && !line.contains("\"kind\":\"checkpoint\""))
            {
                continue;
            }
            let Some(head) = head_of(line) else { continue };
            if found.last.is_none()
                && let Some(seq) = head.seq
                && let Some(sealed) = chain::split(line)
            {
                found.last = Some((seq, sealed.claimed.to_string()));
            }
            if head.kind.as_deref() == Some("checkpoint") {
                found.checkpoint = Some(head.format.and(head.log));
                return Ok(Some(found));
            }
        }
        if start == 0 {
            return Ok(Some(found));
        }
        window = window.saturating_mul(4);
    }
}
