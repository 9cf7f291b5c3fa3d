//! `warden audit verify`: walks the chain through every file and checks each checkpoint's
//! signature; the first record that breaks is named, with why.
//!
//! The files may be given in any order: they are read in the order of their first record's
//! `seq` (so `audit.jsonl*` works, the active file sorting after the rotated ones). A log may
//! start after seq 0 (older files removed by retention); it must end with the closing
//! checkpoint the server writes at shutdown, unless `live` says it is still being written.

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
}

impl BreakKind {
    pub fn name(self) -> &'static str {
        match self {
            BreakKind::Edited => "edited",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::Truncated => "truncated",
            BreakKind::BadSignature => "bad signature",
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
    /// The seq of the last checkpoint whose signature verified.
    pub last_signed_seq: Option<u64>,
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
    // The previous record: (seq, hash).
    let mut previous: Option<(u64, String)> = None;
    let mut last: Option<(String, u64, u64, Option<String>)> = None; // file, line, seq, checkpoint reason
    for path in files {
        let name = path.display().to_string();
        let mut lines = Lines {
            reader: BufReader::new(File::open(path)?),
            number: 0,
        };
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
            match &previous {
                Some((before, hash)) => {
                    let expected = before + 1;
                    if seq == expected && prev != hash {
                        report.broken = Some(broken(
                            BreakKind::Edited,
                            Some(seq),
                            format!(
                                "{here} does not link to record seq {before}: one of them was edited and resealed"
                            ),
                        ));
                        return Ok(finish(report));
                    }
                    if seq > expected {
                        let later = find_later(&mut lines, expected)?;
                        let (kind, message) = match later {
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
                        report.broken = Some(broken(kind, Some(seq), message));
                        return Ok(finish(report));
                    }
                    if seq < expected {
                        report.broken = Some(broken(
                            BreakKind::Reordered,
                            Some(seq),
                            format!(
                                "{here} comes after record seq {before}: records were reordered or repeated"
                            ),
                        ));
                        return Ok(finish(report));
                    }
                }
                None => {
                    if seq == 0 && prev != chain::GENESIS {
                        report.broken = Some(broken(
                            BreakKind::Edited,
                            Some(seq),
                            format!("{here} starts the chain but does not link to the genesis"),
                        ));
                        return Ok(finish(report));
                    }
                    if seq > 0 {
                        report.notes.push(format!(
                            "the log starts at record seq {seq}: earlier records (older files) were not given"
                        ));
                    }
                    report.first_seq = Some(seq);
                }
            }
            report.records += 1;
            report.last_seq = Some(seq);
            let mut reason = None;
            if record.kind.as_deref() == Some("checkpoint") {
                report.checkpoints += 1;
                let key_id = record.key_id.as_deref().unwrap_or("");
                let alg = record.alg.as_deref().unwrap_or("");
                let sig = record.sig.as_deref().unwrap_or("");
                let message = if alg != chain::HMAC_SHA256 && alg != chain::ED25519 {
                    Some(format!(
                        "checkpoint {here} has an unknown signature algorithm `{alg}`"
                    ))
                } else if options.keys.iter().all(|key| key.algorithm() != alg) {
                    Some(format!(
                        "checkpoint {here} is signed with `{alg}`, but the given {}: give the key the log was signed with",
                        described(options.keys, |key| format!("a `{}` key", key.algorithm()))
                    ))
                } else if !options.keys.iter().any(|key| key.id == key_id) {
                    Some(format!(
                        "checkpoint {here} names signing key {key_id}, but the given {}: signed with another key, or rewritten",
                        described(options.keys, |key| key.id.clone())
                    ))
                } else if !options.keys.iter().any(|key| {
                    key.id == key_id && key.algorithm() == alg && key.verify(seq, prev, sig)
                }) {
                    Some(format!(
                        "checkpoint {here} does not verify under the given key: the records since the previous checkpoint{} were rewritten",
                        report
                            .last_signed_seq
                            .map(|s| format!(" (seq {s})"))
                            .unwrap_or_default()
                    ))
                } else {
                    None
                };
                if let Some(message) = message {
                    report.broken = Some(broken(BreakKind::BadSignature, Some(seq), message));
                    return Ok(finish(report));
                }
                report.last_signed_seq = Some(seq);
                report.unsigned_tail = 0;
                reason = record.reason;
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
    match last {
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
        Some((file, line, seq, reason)) if reason.as_deref() != Some("close") => {
            let what = if report.unsigned_tail > 0 {
                format!(
                    "the last {} record(s) follow the last signed checkpoint{}",
                    report.unsigned_tail,
                    report
                        .last_signed_seq
                        .map(|s| format!(" (seq {s})"))
                        .unwrap_or_default()
                )
            } else if reason.as_deref() == Some("rotate") {
                "it ends at a rotation checkpoint: the file that continues it was not given, or was deleted"
                    .to_string()
            } else {
                "it ends at a periodic checkpoint".to_string()
            };
            if options.live {
                report.notes.push(format!(
                    "live log: {what}; they are not yet covered by a signature"
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

/// The members of a record that verify reads. Every other member (the request, the reads)
/// is only checked to be JSON, not built: a request the server accepted may hold a number no
/// float holds (`1e400` in a member no policy reads), and that line is still a record.
#[derive(serde::Deserialize)]
struct Fields {
    seq: Option<u64>,
    prev: Option<String>,
    kind: Option<String>,
    key_id: Option<String>,
    alg: Option<String>,
    sig: Option<String>,
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
        }
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
