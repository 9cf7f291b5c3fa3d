//! The audit log: every decision (or every deny, or sampled allows) written as a JSON line,
//! chained by SHA-256 and sealed by signed checkpoints, so that nobody can edit, delete,
//! reorder or truncate it without `warden audit verify` naming the first record that breaks.
//! `warden audit replay` re-decides the recorded requests under another policy directory.
//!
//! - [`chain`]: the line format, hashes and checkpoint signatures;
//! - [`record`]: decision records, built on the request's thread, with secrets masked;
//! - [`writer`]: the bounded queue and the writer thread (batches, fsync, checkpoints,
//!   rotation, drain on shutdown);
//! - [`verify`] and [`replay`]: the two commands' logic.

pub mod chain;
pub mod record;
pub mod replay;
pub mod verify;
pub mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use chain::{Key, KeyFileError};
pub use record::Masking;
pub use writer::AuditLog;

/// Which decisions are recorded.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every decision.
    #[default]
    All,
    /// Denies only.
    Denies,
    /// Every deny, and the fraction `audit_sample_allows` of allows.
    Sampled,
}

/// What a decision does when the queue is full.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Wait for room: back-pressure, nothing lost.
    #[default]
    Block,
    /// Drop the record and count it in `warden_audit_dropped_total`.
    Drop,
}

/// When the file is synced to disk.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch the writer takes from the queue (every 10 ms under load).
    Batch,
    /// At most every `audit_fsync_interval_ms` (1000 by default, as Redis's `appendfsync
    /// everysec`); the default policy. Every batch still reaches the OS at once: only an OS
    /// crash or a power cut can lose what was not yet synced.
    #[default]
    Interval,
}

/// The resolved audit configuration.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// The active file; rotated files are `PATH.<first seq>`.
    pub path: PathBuf,
    /// Signs checkpoints.
    pub key: Key,
    /// The file `key` was read from, which `--print-config` names (a key made in code has none).
    pub key_file: Option<PathBuf>,
    pub mode: Mode,
    /// In `sampled` mode, the fraction of allows recorded (0 to 1).
    pub sample_allows: f64,
    pub masking: Masking,
    /// The queue's capacity, in decisions (a batch call's record takes one place per decision
    /// it holds).
    pub queue: usize,
    pub when_full: WhenFull,
    pub fsync: Fsync,
    pub fsync_interval: Duration,
    pub checkpoint_records: u64,
    pub checkpoint_interval: Duration,
    pub rotate_bytes: u64,
    pub rotate_interval: Option<Duration>,
}

impl AuditConfig {
    /// A configuration with the defaults, for `path` signed by `key`.
    pub fn new(path: PathBuf, key: Key) -> AuditConfig {
        AuditConfig {
            path,
            key,
            key_file: None,
            mode: Mode::All,
            sample_allows: 1.0,
            masking: Masking::default(),
            queue: 65_536,
            when_full: WhenFull::Block,
            fsync: Fsync::Interval,
            fsync_interval: Duration::from_secs(1),
            checkpoint_records: 10_000,
            checkpoint_interval: Duration::from_secs(10),
            rotate_bytes: 256 * 1024 * 1024,
            rotate_interval: None,
        }
    }
}
