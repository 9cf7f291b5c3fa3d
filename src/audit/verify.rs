//! `warden audit verify`: walks the chain through every file and checks each checkpoint's
//! signature; the first record that breaks is named, with why.
//!
//! The files may be given in any order: they are read in the order of their first record's
//! `seq` (so `audit.jsonl*` works, the active file sorting after the rotated ones). A log must
//! start at seq 0 unless the caller names where it starts ([`Start`]: older files removed by
//! retention), and end with the closing checkpoint the server writes at shutdown, unless
//! `live` says it is still being written. Every checkpoint must be of format 2, verify under a
//! given key, name the log the records before it belong to, and say where its file starts.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::chain::{self, Key};

/// Why a log does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BreakKind {
    /// A record's content does not match its hash, or it does not link to the one before.
    Edited,
    /// Records are missing (deleted lines or a missing file).
    Missing,
    /// Records are out of order.
    Reordered,
    /// The log ends early: a cut line, or no closing checkpoint.
    Truncated,
    /// A checkpoint's signature does not verify under the given key.
    #[serde(rename = "bad signature")]
    BadSignature,
    /// Records of another log, files joined, or files that do not continue the given start.
    Spliced,
    /// A checkpoint of a format this version does not verify.
    #[serde(rename = "unsupported format")]
    Format,
}

impl BreakKind {
    pub fn name(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::Truncated => "truncated",
            BreakKind::BadSignature => "bad signature",
            BreakKind::Spliced => "spliced",
            BreakKind::Format => "unsupported format",
        }
    }
}

/// The first record that breaks.
#[derive(Clone, Debug, Serialize)]
pub struct Break {
    pub kind: BreakKind,
    pub file: String,
    pub line: u64,
    /// The seq of the record at that line, when it could be read.
    pub seq: Option<u64>,
    pub message: String,
}

/// What verify found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub intact: bool,
    pub files: Vec<String>,
    pub records: u64,
    pub decisions: u64,
    pub checkpoints: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The log's id, as its checkpoints name it.
    pub log: Option<String>,
    /// The seq of the last checkpoint whose signature verified.
    pub last_signed_seq: Option<u64>,
    /// The time that checkpoint gives.
    pub last_signed_time: Option<String>,
    /// Records after the last verified checkpoint (a live log's unsigned tail).
    pub unsigned_tail: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<Break>,
    pub notes: Vec<String>,
}

/// Options of a verification.
pub struct Options<'k> {
    /// The keys checkpoints may be signed with (more than one when the server's key was
    /// changed during the log): each checkpoint is checked with the key its `key_id` names.
    pub keys: &'k [Key],
    /// The log is still being written: an unsigned tail is reported, not a break.
    pub live: bool,
    /// Where the log must start.
    pub start: Start,
}

/// Where the given files must start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// At seq 0, linked to the genesis: the whole log.
    #[default]
    Genesis,
    /// At `seq`, its first record linked to `prev`: a log whose older files were removed.
    /// `log`, when known (from a signed checkpoint), is the log the records must belong to.
    At {
        seq: u64,
        prev: String,
        log: Option<String>,
    },
}

/// Why `--from-checkpoint` cannot give a start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StartError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the last line of `{path}` is not a signed checkpoint: {why}")]
    #[diagnostic(help(
        "give the file that precedes the first of the files to verify, or a copy of its last line (`tail -n 1`): it ends with its signed rotation checkpoint"
    ))]
    NotCheckpoint { path: String, why: String },
}

/// How much of the end of a `--from-checkpoint` file is read.
const TAIL: u64 = 64 * 1024;

/// The start that follows the signed checkpoint on the last line of `path` (the file before
/// the first of those to verify, or a copy of its last line): the next record must have the
/// next seq, link to the checkpoint and belong to its log.
pub(crate) fn start_after(path: &Path, keys: &[Key]) -> Result<Start, StartError> {
    use std::io::{Read, Seek, SeekFrom};
    let name = path.display().to_string();
    let read = |source| StartError::Read {
        path: name.clone(),
        source,
    };
    // The end of the file only: a checkpoint line is far shorter than this, and the file may
    // be a whole rotated file of hundreds of megabytes.
    let mut file = File::open(path).map_err(read)?;
    let len = file.metadata().map_err(read)?.len();
    let from = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(from)).map_err(read)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(read)?;
    let not = |why: String| StartError::NotCheckpoint {
        path: name.clone(),
        why,
    };
    let mut lines = text.split(|b| *b == b'\n');
    if from > 0 {
        // The window's first line may be a piece of one.
        lines.next();
    }
    let last = lines
        .rev()
        .find(|line| !line.trim_ascii().is_empty())
        .ok_or_else(|| {
            not(if from > 0 {
                format!("no line ends in its last {} KiB", TAIL / 1024)
            } else {
                "the file is empty".to_string()
            })
        })?;
    let text =
        std::str::from_utf8(last.trim_ascii()).map_err(|_| not("it is not UTF-8".to_string()))?;
    let sealed = chain::split(text).ok_or_else(|| not("it is not a sealed record".to_string()))?;
    if chain::hash_of(sealed.covered) != sealed.claimed {
        return Err(not("its content does not match its hash".to_string()));
    }
    let record: Fields = serde_json::from_str(text)
        .map_err(|error| not(format!("it is not a JSON record ({error})")))?;
    let Some(seq) = record.seq else {
        return Err(not("it has no `seq`".to_string()));
    };
    if record.kind.as_deref() != Some("checkpoint") {
        return Err(not(format!(
            "record seq {seq} is a `{}` record",
            record.kind.as_deref().unwrap_or("?")
        )));
    }
    let here = format!("record seq {seq} ({name})");
    let log = check_checkpoint(&record, sealed.covered, keys, &here, None)
        .map_err(|(_, why)| not(why))?;
    Ok(Start::At {
        seq: seq + 1,
        prev: sealed.claimed.to_string(),
        log: Some(log.to_string()),
    })
}

/// Checks a checkpoint's format, key and signature, for the message: `here` names it,
/// `since` is the previous signed checkpoint's seq. Returns the log it names.
fn check_checkpoint<'r>(
    record: &'r Fields,
    covered: &str,
    keys: &[Key],
    here: &str,
    since: Option<u64>,
) -> Result<&'r str, (BreakKind, String)> {
    match record.format {
        None => {
            return Err((
                BreakKind::Format,
                format!(
                    "checkpoint {here} is of audit log format 1, whose signature covers neither its reason nor its place in the log; this version verifies format {} only: verify the log with the version that wrote it",
                    chain::FORMAT
                ),
            ));
        }
        Some(format) if format != chain::FORMAT => {
            return Err((
                BreakKind::Format,
                format!(
                    "checkpoint {here} is of audit log format {format}; this version verifies format {} only",
                    chain::FORMAT
                ),
            ));
        }
        Some(_) => {}
    }
    let key_id = record.key_id.as_deref().unwrap_or("");
    let alg = record.alg.as_deref().unwrap_or("");
    if alg != chain::HMAC_SHA256 && alg != chain::ED25519 {
        return Err((
            BreakKind::BadSignature,
            format!("checkpoint {here} has an unknown signature algorithm `{alg}`"),
        ));
    }
    if keys.iter().all(|key| key.algorithm() != alg) {
        return Err((
            BreakKind::BadSignature,
            format!(
                "checkpoint {here} is signed with `{alg}`, but the given {}: give the key the log was signed with",
                described(keys, |key| format!("a `{}` key", key.algorithm()))
            ),
        ));
    }
    if !keys.iter().any(|key| key.id == key_id) {
        return Err((
            BreakKind::BadSignature,
            format!(
                "checkpoint {here} names signing key {key_id}, but the given {}: signed with another key, or rewritten",
                described(keys, |key| key.id.clone())
            ),
        ));
    }
    let verified = chain::signed(covered).is_some_and(|(signed, signature)| {
        keys.iter().any(|key| {
            key.id == key_id && key.algorithm() == alg && key.verify(signed.as_bytes(), signature)
        })
    });
    if !verified {
        return Err((
            BreakKind::BadSignature,
            format!(
                "checkpoint {here} does not verify under the given key: it (its reason, time or place) or the records since the previous checkpoint{} were rewritten",
                since.map(|s| format!(" (seq {s})")).unwrap_or_default()
            ),
        ));
    }
    match (
        &record.log,
        &record.file_seq,
        &record.file_prev,
        &record.reason,
    ) {
        (Some(log), Some(_), Some(_), Some(_)) => Ok(log),
        _ => Err((
            BreakKind::Format,
            format!(
                "checkpoint {here} lacks a member of format {} (`log`, `file_seq`, `file_prev`, `reason`)",
                chain::FORMAT
            ),
        )),
    }
}

/// "key is X" or "keys are X, Y".
fn described(keys: &[Key], each: impl Fn(&Key) -> String) -> String {
    let all: Vec<String> = keys.iter().map(each).collect();
    match all.as_slice() {
        [one] => format!("key is {one}"),
        _ => format!("keys are {}", all.join(", ")),
    }
}

/// Orders files by the seq of their first record (unreadable ones first, as given).
pub fn order_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut keyed: Vec<(Option<u64>, usize, PathBuf)> = files
        .iter()
        .enumerate()
        .map(|(i, path)| (first_seq(path), i, path.clone()))
        .collect();
    keyed.sort_by_key(|(seq, i, _)| (*seq, *i));
    keyed.into_iter().map(|(_, _, path)| path).collect()
}

fn first_seq(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).ok()?;
    seq_prefix(line.as_bytes())
}

/// The seq of a line that starts `{"seq":N,`, even when the rest is damaged.
fn seq_prefix(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits: Vec<u8> = rest
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

struct Line {
    number: u64,
    bytes: Vec<u8>,
    /// False for a last line without its newline.
    complete: bool,
}

struct Lines {
    reader: BufReader<File>,
    number: u64,
}

impl Lines {
    fn next(&mut self) -> std::io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        if self.reader.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        Ok(Some(Line {
            number: self.number,
            bytes,
            complete,
        }))
    }
}

/// Verifies `files` (in chain order, see [`order_files`]). I/O errors are returned as such.
pub fn verify(files: &[PathBuf], options: &Options<'_>) -> std::io::Result<Report> {
    let mut report = Report {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        ..Report::default()
    };
    // The log the records belong to: named by the start, else by the first checkpoint.
    let mut log = match &options.start {
        Start::At { log, .. } => log.clone(),
        Start::Genesis => None,
    };
    // The previous record: (seq, hash).
    let mut previous: Option<(u64, String)> = None;
    // The last record: file, line, seq, and a checkpoint's reason.
    let mut last: Option<(String, u64, u64, Option<String>)> = None;
    let mut cut_tail = false;
    for (index, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let last_file = index + 1 == files.len();
        let mut lines = Lines {
            reader: BufReader::new(File::open(path)?),
            number: 0,
        };
        // The seq and `prev` of the file's first record.
        let mut file_start: Option<(u64, String)> = None;
        let mut empty = true;
        while let Some(line) = lines.next()? {
            empty = false;
            let broken = |kind: BreakKind, seq: Option<u64>, message: String| Break {
                kind,
                file: name.clone(),
                line: line.number,
                seq,
                message,
            };
            let at = |seq: Option<u64>| match seq {
                Some(seq) => format!("record seq {seq} ({name}:{})", line.number),
                None => format!("{name}:{}", line.number),
            };
            let seq_guess = seq_prefix(&line.bytes);
            if !line.complete && last_file && options.live {
                // The writer may be writing this line now: it is part of the unsigned tail.
                cut_tail = true;
                report.unsigned_tail += 1;
                break;
            }
            let sealed = std::str::from_utf8(&line.bytes)
                .ok()
                .and_then(|text| chain::split(text).map(|s| (text, s)));
            let Some((text, sealed)) = sealed else {
                let kind = if line.complete {
                    BreakKind::Edited
                } else {
                    BreakKind::Truncated
                };
                let why = if line.complete {
                    "is not a sealed record: it was altered, or cut short by a crash and written after"
                } else {
                    "is cut short: the log was truncated"
                };
                report.broken = Some(broken(kind, seq_guess, format!("{} {why}", at(seq_guess))));
                return Ok(finish(report));
            };
            if chain::hash_of(sealed.covered) != sealed.claimed {
                report.broken = Some(broken(
                    BreakKind::Edited,
                    seq_guess,
                    format!(
                        "{} was edited: its content does not match its hash",
                        at(seq_guess)
                    ),
                ));
                return Ok(finish(report));
            }
            let record: Fields = match serde_json::from_str(text) {
                Ok(record) => record,
                Err(error) => {
                    report.broken = Some(broken(
                        BreakKind::Edited,
                        seq_guess,
                        format!("{} is not a JSON record ({error})", at(seq_guess)),
                    ));
                    return Ok(finish(report));
                }
            };
            let (Some(seq), Some(prev)) = (record.seq, record.prev.as_deref()) else {
                report.broken = Some(broken(
                    BreakKind::Edited,
                    seq_guess,
                    format!("{} has no `seq` or `prev`", at(seq_guess)),
                ));
                return Ok(finish(report));
            };
            let here = at(Some(seq));
            let linked = match &previous {
                Some((before, hash)) => link(*before, hash, seq, prev, &here, &mut lines)?,
                None => {
                    report.first_seq = Some(seq);
                    start(&options.start, seq, prev, &here, &name)
                }
            };
            if let Err((kind, message)) = linked {
                // A record that does not link may begin another log's records: say so when a
                // signed checkpoint ahead names another log.
                let (kind, message) = match (kind, &log) {
                    (BreakKind::Edited, Some(ours)) => {
                        match foreign(&record, sealed.covered, &mut lines, options.keys, ours)? {
                            Some((at_seq, theirs)) if at_seq == seq => (
                                BreakKind::Spliced,
                                format!(
                                    "checkpoint {here} does not link to the record before it: it is a signed checkpoint of log {theirs}, not of this log {ours}: copied from another log"
                                ),
                            ),
                            Some((at_seq, theirs)) => (
                                BreakKind::Spliced,
                                format!(
                                    "{here} does not link to the record before it, and the records from it on belong to log {theirs} (by its checkpoint seq {at_seq}), not to this log {ours}: two logs were spliced"
                                ),
                            ),
                            None => (kind, message),
                        }
                    }
                    _ => (kind, message),
                };
                report.broken = Some(broken(kind, Some(seq), message));
                return Ok(finish(report));
            }
            let (file_seq, file_prev) = file_start.get_or_insert_with(|| (seq, prev.to_string()));
            report.records += 1;
            report.last_seq = Some(seq);
            let mut reason = None;
            if record.kind.as_deref() == Some("checkpoint") {
                report.checkpoints += 1;
                let named = match check_checkpoint(
                    &record,
                    sealed.covered,
                    options.keys,
                    &here,
                    report.last_signed_seq,
                ) {
                    Ok(named) => named,
                    Err((kind, message)) => {
                        let message = match &log {
                            Some(ours) if record.log.as_ref().is_some_and(|l| l != ours) => {
                                format!(
                                    "{message}; it names log {}, not this log {ours}: it was copied from another log, or two logs were spliced",
                                    record.log.as_deref().unwrap_or_default()
                                )
                            }
                            _ => message,
                        };
                        report.broken = Some(broken(kind, Some(seq), message));
                        return Ok(finish(report));
                    }
                };
                if let Err((kind, message)) = placed(
                    &record,
                    named,
                    log.as_deref(),
                    (*file_seq, file_prev),
                    &here,
                    &name,
                ) {
                    report.broken = Some(broken(kind, Some(seq), message));
                    return Ok(finish(report));
                }
                log = Some(named.to_string());
                report.last_signed_seq = Some(seq);
                report.last_signed_time = record.time.clone();
                report.unsigned_tail = 0;
                reason = record.reason.clone();
            } else {
                report.decisions += record.decisions();
                report.unsigned_tail += 1;
            }
            previous = Some((seq, sealed.claimed.to_string()));
            last = Some((name.clone(), line.number, seq, reason));
        }
        if empty {
            report.notes.push(format!("{name} is empty"));
        }
    }
    report.log = log;
    match last {
        None if options.live => {
            report.notes.push(
                if cut_tail {
                    "live log: no record yet, the first still being written"
                } else {
                    "live log: no record yet"
                }
                .to_string(),
            );
        }
        None => {
            report.broken = Some(Break {
                kind: BreakKind::Truncated,
                file: report.files.last().cloned().unwrap_or_default(),
                line: 0,
                seq: None,
                message: "the log holds no records: it was truncated (a closed log ends with a checkpoint)"
                    .to_string(),
            });
        }
        Some((file, line, seq, reason)) if cut_tail || reason.as_deref() != Some("close") => {
            let signed = report
                .last_signed_seq
                .map(|s| format!("the last signed checkpoint (seq {s})"))
                .unwrap_or_else(|| "the start (no checkpoint yet)".to_string());
            let what = if report.unsigned_tail > 0 {
                format!(
                    "the last {} record(s) follow {signed}",
                    report.unsigned_tail
                )
            } else if reason.as_deref() == Some("rotate") {
                "it ends at a rotation checkpoint: the file that continues it was not given, or was deleted"
                    .to_string()
            } else {
                "it ends at a periodic checkpoint".to_string()
            };
            if options.live {
                report.notes.push(format!(
                    "live log: {what}{}; they are not yet covered by a signature",
                    if cut_tail {
                        ", the last of them still being written"
                    } else {
                        ""
                    }
                ));
            } else {
                report.broken = Some(Break {
                    kind: BreakKind::Truncated,
                    file: file.clone(),
                    line,
                    seq: Some(seq),
                    message: format!(
                        "the log ends at record seq {seq} ({file}:{line}) without the closing checkpoint: it was truncated, or the server did not shut down cleanly; {what} (pass --live for a log still being written)"
                    ),
                });
            }
        }
        Some(_) => {}
    }
    Ok(finish(report))
}

type Failed = Result<(), (BreakKind, String)>;

/// Whether the first record, at `seq` linked to `prev`, is where the log must start.
fn start(start: &Start, seq: u64, prev: &str, here: &str, file: &str) -> Failed {
    match start {
        Start::Genesis if seq > 0 => Err((
            BreakKind::Missing,
            format!(
                "the log starts at {here}: records seq 0 to {} are missing (older files removed, or the head cut off); to verify the files that remain, name where they start: --from-checkpoint with the previous file's last line, or --start-seq and --start-hash",
                seq - 1
            ),
        )),
        Start::Genesis if prev != chain::GENESIS => Err((
            BreakKind::Edited,
            format!("{here} starts the chain but does not link to the genesis"),
        )),
        Start::Genesis => Ok(()),
        Start::At { seq: want, .. } if seq > *want => Err((
            BreakKind::Missing,
            format!(
                "records seq {want} to {} are missing: the log must start at seq {want}, and {file} starts at {here}",
                seq - 1
            ),
        )),
        Start::At { seq: want, .. } if seq < *want => Err((
            BreakKind::Spliced,
            format!(
                "the log must start at seq {want}, but {file} starts at {here}: the files do not follow the given start"
            ),
        )),
        Start::At { prev: want, .. } if prev != want => Err((
            BreakKind::Spliced,
            format!(
                "{here} does not link to the given start (hash {want}): it continues another chain (another log's, or a rewritten one)"
            ),
        )),
        Start::At { .. } => Ok(()),
    }
}

/// Whether the record at `seq` linked to `prev` follows the record `before` whose hash is
/// `hash`; looks ahead in `lines` to tell a reordering from missing records.
fn link(
    before: u64,
    hash: &str,
    seq: u64,
    prev: &str,
    here: &str,
    lines: &mut Lines,
) -> std::io::Result<Failed> {
    let expected = before + 1;
    if seq == expected && prev != hash {
        return Ok(Err((
            BreakKind::Edited,
            format!(
                "{here} does not link to record seq {before}: one of them was edited and resealed"
            ),
        )));
    }
    if seq > expected {
        let failed = match find_later(lines, expected)? {
            Some(line) => (
                BreakKind::Reordered,
                format!(
                    "{here} comes before record seq {expected} (line {line}): records were reordered"
                ),
            ),
            None if seq == expected + 1 => (
                BreakKind::Missing,
                format!("record seq {expected} is missing before {here}"),
            ),
            None => (
                BreakKind::Missing,
                format!(
                    "records seq {expected} to {} are missing before {here}",
                    seq - 1
                ),
            ),
        };
        return Ok(Err(failed));
    }
    if seq < expected {
        return Ok(Err((
            BreakKind::Reordered,
            format!("{here} comes after record seq {before}: records were reordered or repeated"),
        )));
    }
    Ok(Ok(()))
}

/// Whether a verified checkpoint, which names `named`, is in its place: in the log of the
/// records before it (`ours`, when known), in the file it says it is in (`file`: the seq and
/// `prev` of the first record of the file it is read from, `name`).
fn placed(
    record: &Fields,
    named: &str,
    ours: Option<&str>,
    file: (u64, &str),
    here: &str,
    name: &str,
) -> Failed {
    if let Some(ours) = ours
        && named != ours
    {
        return Err((
            BreakKind::Spliced,
            format!(
                "checkpoint {here} belongs to log {named}, but the records before it to log {ours}: two logs were spliced"
            ),
        ));
    }
    let (first, first_prev) = file;
    let says = record.file_seq.unwrap_or_default();
    if says != first {
        let why = if first > says {
            "its head was cut off, or the file was split"
        } else {
            "files were joined"
        };
        return Err((
            if first > says {
                BreakKind::Missing
            } else {
                BreakKind::Spliced
            },
            format!(
                "{name} starts at record seq {first}, but checkpoint {here} says its file starts at seq {says}: {why}"
            ),
        ));
    }
    if record.file_prev.as_deref() != Some(first_prev) {
        return Err((
            BreakKind::Spliced,
            format!(
                "checkpoint {here} says its file links to {}, but the file's first record links to {first_prev}",
                record.file_prev.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// The first signed checkpoint from `record` (which does not link to the record before it)
/// on, when it belongs to a log other than `ours`: its seq and its log.
fn foreign(
    record: &Fields,
    covered: &str,
    lines: &mut Lines,
    keys: &[Key],
    ours: &str,
) -> std::io::Result<Option<(u64, String)>> {
    let theirs = |record: &Fields, covered: &str| -> Option<(u64, String)> {
        if record.kind.as_deref() != Some("checkpoint") {
            return None;
        }
        let log = check_checkpoint(record, covered, keys, "", None).ok()?;
        (log != ours).then(|| (record.seq.unwrap_or_default(), log.to_string()))
    };
    if record.kind.as_deref() == Some("checkpoint") {
        return Ok(theirs(record, covered));
    }
    while let Some(line) = lines.next()? {
        let Ok(text) = std::str::from_utf8(&line.bytes) else {
            continue;
        };
        if !text.contains("\"kind\":\"checkpoint\"") {
            continue;
        }
        let (Some(sealed), Ok(record)) = (chain::split(text), serde_json::from_str::<Fields>(text))
        else {
            continue;
        };
        return Ok(theirs(&record, sealed.covered));
    }
    Ok(None)
}

/// The members of a record that verify reads. Every other member (the request, the reads)
/// is only checked to be JSON, not built: a request the server accepted may hold a number no
/// float holds (`1e400` in a member no policy reads), and that line is still a record.
#[derive(serde::Deserialize)]
struct Fields {
    seq: Option<u64>,
    prev: Option<String>,
    kind: Option<String>,
    format: Option<u64>,
    log: Option<String>,
    file_seq: Option<u64>,
    file_prev: Option<String>,
    time: Option<String>,
    key_id: Option<String>,
    alg: Option<String>,
    reason: Option<String>,
    items: Option<Vec<Option<serde::de::IgnoredAny>>>,
}

impl Fields {
    /// The decisions a record holds: one for a decision record, its recorded items for a
    /// batch record (items not recorded are `null`).
    fn decisions(&self) -> u64 {
        match self.kind.as_deref() {
            Some("batch") => self
                .items
                .as_ref()
                .map_or(0, |items| items.iter().flatten().count() as u64),
            _ => 1,
        }
    }
}

fn finish(mut report: Report) -> Report {
    report.intact = report.broken.is_none();
    report
}

/// The line number of a later record with seq `wanted` in the rest of the file, if any.
fn find_later(lines: &mut Lines, wanted: u64) -> std::io::Result<Option<u64>> {
    while let Some(line) = lines.next()? {
        if seq_prefix(&line.bytes) == Some(wanted) {
            return Ok(Some(line.number));
        }
    }
    Ok(None)
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    match &report.broken {
        Some(broken) => {
            out.push_str(&format!(
                "broken: {}: {}\n",
                broken.kind.name(),
                broken.message
            ));
            out.push_str(&format!(
                "verified before the break: {} record(s){}\n",
                report.records,
                report
                    .last_signed_seq
                    .map(|s| format!(", signed up to seq {s}"))
                    .unwrap_or_default()
            ));
        }
        None => {
            out.push_str(&format!(
                "intact: {} record(s) ({} decision(s), {} checkpoint(s)), seq {}..{}, in {} file(s)\n",
                report.records,
                report.decisions,
                report.checkpoints,
                report.first_seq.unwrap_or(0),
                report.last_seq.unwrap_or(0),
                report.files.len()
            ));
            if let (Some(seq), Some(log)) = (report.last_signed_seq, &report.log) {
                out.push_str(&format!(
                    "signed up to seq {seq}{}, log {log}\n",
                    report
                        .last_signed_time
                        .as_deref()
                        .map(|t| format!(" (at {t})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
