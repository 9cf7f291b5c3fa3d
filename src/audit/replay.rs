//! `warden audit replay`: re-decides every recorded request, at its recorded time, under
//! another program, and lists the decisions that would flip, grouped by the rule that makes
//! the difference.
//!
//! A decision a limit refused (`limited`) was allowed by the policy: replay compares that, and
//! counts those the policy still allows apart, as limit-denied, neither flips nor unchanged.
//!
//! A record with masked values (`masked`) is not replayed: its request is not what the caller
//! sent, and guessing would be worse than saying so. In a batch record, only the items a
//! masked value touches are left out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value as JsonValue;

use crate::decide::{Decider, Proved};
use crate::eval::{self, request};
use crate::program::Program;

/// One decision that would change.
#[derive(Clone, Debug, Serialize)]
pub struct Flip {
    pub seq: u64,
    /// The item of a batch record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    pub time: String,
    pub request_id: String,
    /// `User::"alice" read Doc::"d1"`.
    pub request: String,
    pub from: &'static str,
    pub to: &'static str,
    /// The rules that decided when recorded.
    pub was: Vec<String>,
    /// The rules that decide now.
    pub now: Vec<String>,
    /// The limit that refused the call when it was recorded (the policy allowed it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}

/// Flips that share a direction and a cause.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// `allow → deny` or `deny → allow`.
    pub direction: String,
    /// `denied by suspended`, `allowed by readers`, `no rule allows (was allowed by owner)`.
    pub cause: String,
    /// Every flip of the group.
    pub count: u64,
    /// The group's first flips in log order, as many as [`replay`] was asked to keep.
    pub flips: Vec<Flip>,
}

/// The flips a group keeps by default: enough to see what changes, few enough that a day's
/// log in which a change flips millions of decisions replays in bounded memory.
pub(crate) const EXAMPLES: usize = 10;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub policy_version: String,
    /// The versions the records were decided under, with how many each.
    pub recorded_versions: BTreeMap<String, u64>,
    pub decisions: u64,
    pub replayed: u64,
    /// Records with masked values, not replayed.
    pub not_replayable: u64,
    /// Records that could not be read back (bad JSON, no request or time).
    pub unreadable: u64,
    pub unchanged: u64,
    /// Decisions a limit refused when recorded that the policy still allows: neither flips
    /// nor unchanged (replay decides by policy; what a limit had counted is not in the log).
    pub limited: u64,
    /// [`Report::limited`] by the limit that refused them.
    pub limited_by: BTreeMap<String, u64>,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    pub groups: Vec<Group>,
}

/// Replays the decision records of `files` (in chain order) under `program`: each decision
/// record, and each recorded item of each batch record. Each group of flips counts them all
/// and keeps the first `examples` (`usize::MAX`: every one).
pub fn replay(files: &[PathBuf], program: &Program, examples: usize) -> std::io::Result<Report> {
    let mut replayer = Replayer {
        program,
        frame: eval::Frame::new(),
        report: Report {
            policy_version: program.version.to_string(),
            ..Report::default()
        },
        groups: BTreeMap::new(),
        examples,
    };
    for path in files {
        let reader = BufReader::new(File::open(path)?);
        for line in reader.split(b'\n') {
            let line = line?;
            let Ok(record) = serde_json::from_slice::<JsonValue>(&line) else {
                replayer.report.unreadable += 1;
                continue;
            };
            match record.get("kind").and_then(JsonValue::as_str) {
                Some("decision") => replayer.decision(&record),
                Some("batch") => replayer.batch(&record),
                _ => {}
            }
        }
    }
    let mut report = replayer.report;
    let mut groups: Vec<Group> = replayer
        .groups
        .into_iter()
        .map(|((direction, cause), (count, flips))| Group {
            direction,
            cause,
            count,
            flips,
        })
        .collect();
    // allow → deny first (the changes that break callers), then the largest groups.
    groups.sort_by(|a, b| {
        (
            a.direction != "allow → deny",
            std::cmp::Reverse(a.count),
            &a.cause,
        )
            .cmp(&(
                b.direction != "allow → deny",
                std::cmp::Reverse(b.count),
                &b.cause,
            ))
    });
    report.groups = groups;
    Ok(report)
}

/// A recorded decision to decide again.
struct Recorded<'r> {
    record: &'r JsonValue,
    /// The batch item, for an item of a batch record.
    item: Option<usize>,
    /// The record's fields for this decision (the record itself, or the item).
    outcome: &'r JsonValue,
    /// The request to decide, or why there is none (a forward-auth call no route takes).
    parts: Result<request::Parts<'r>, request::Invalid>,
    /// `User::"alice" read Doc::"d1"`.
    description: String,
    time: Timestamp,
}

struct Replayer<'p> {
    program: &'p Program,
    frame: eval::Frame,
    report: Report,
    /// Per direction and cause: how many flips, and the first `examples` of them.
    groups: BTreeMap<(String, String), (u64, Vec<Flip>)>,
    examples: usize,
}

impl Replayer<'_> {
    fn count_version(&mut self, record: &JsonValue, decisions: u64) {
        if let Some(version) = record.get("policy_version").and_then(JsonValue::as_str) {
            *self
                .report
                .recorded_versions
                .entry(version.to_string())
                .or_default() += decisions;
        }
    }

    fn decision(&mut self, record: &JsonValue) {
        self.report.decisions += 1;
        self.count_version(record, 1);
        if masked(record).next().is_some() {
            self.report.not_replayable += 1;
            return;
        }
        let (Some(body), Some(time)) = (record.get("request"), time(record)) else {
            self.report.unreadable += 1;
            return;
        };
        // A forward-auth call is routed again: the new policy's routes may take it elsewhere.
        if let Some(http) = record.get("http") {
            let text = |key: &str| http.get(key).and_then(JsonValue::as_str);
            let (Some(method), Some(path)) = (text("method"), text("path")) else {
                self.report.unreadable += 1;
                return;
            };
            let subject = body.get("subject").cloned().unwrap_or(JsonValue::Null);
            let who = describe_entity(&subject);
            let ip = text("ip").and_then(|ip| ip.parse().ok());
            // The recorded path is the normal form the server matched (lower-cased already
            // under `routes_ignore_case`), so it is matched as it stands.
            let routed = crate::gateway::route(
                self.program,
                crate::check::route_table::Case::Sensitive,
                subject,
                method,
                path,
                text("host"),
                ip,
            )
            .map(|routed| routed.request);
            let (parts, description) = match &routed {
                Ok(request) => match request::Parts::from_body(request) {
                    Ok(parts) => {
                        let description = describe(&parts);
                        (Ok(parts), description)
                    }
                    Err(error) => (
                        Err(request::Invalid::Unreadable(error)),
                        format!("{who} {method} {path}"),
                    ),
                },
                Err(reason) => (
                    Err(request::Invalid::Unrouted(reason.clone())),
                    format!("{who} {method} {path}"),
                ),
            };
            self.decide(&Recorded {
                record,
                item: None,
                outcome: record,
                parts,
                description,
                time,
            });
            return;
        }
        let Ok(parts) = request::Parts::from_body(body) else {
            self.report.unreadable += 1;
            return;
        };
        let description = describe(&parts);
        self.decide(&Recorded {
            record,
            item: None,
            outcome: record,
            parts: Ok(parts),
            description,
            time,
        });
    }

    fn batch(&mut self, record: &JsonValue) {
        let items = record
            .get("items")
            .and_then(JsonValue::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let decisions = items.iter().filter(|item| !item.is_null()).count() as u64;
        self.report.decisions += decisions;
        self.count_version(record, decisions);
        let body = record.get("request").and_then(JsonValue::as_object);
        let entries = body
            .and_then(|body| body.get("evaluations"))
            .and_then(JsonValue::as_array);
        let (Some(body), Some(entries), Some(time)) = (body, entries, time(record)) else {
            self.report.unreadable += decisions;
            return;
        };
        let masked: Vec<&str> = masked(record).collect();
        let outcomes = record
            .get("outcomes")
            .and_then(JsonValue::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (index, item) in items.iter().enumerate() {
            if item.is_null() {
                continue;
            }
            // An item names its outcome in `outcomes`.
            let Some(outcome) = item
                .as_u64()
                .and_then(|n| outcomes.get(usize::try_from(n).ok()?))
            else {
                self.report.unreadable += 1;
                continue;
            };
            let entry = entries.get(index).unwrap_or(&JsonValue::Null);
            if masked.iter().any(|path| affects(path, index, entry)) {
                self.report.not_replayable += 1;
                continue;
            }
            let Ok(parts) = request::Parts::batch_item(body, entry) else {
                self.report.unreadable += 1;
                continue;
            };
            let description = describe(&parts);
            self.decide(&Recorded {
                record,
                item: Some(index),
                outcome,
                parts: Ok(parts),
                description,
                time,
            });
        }
    }

    fn decide(&mut self, recorded: &Recorded<'_>) {
        let program = self.program;
        let Some(verdict) = recorded.outcome.get("decision").and_then(JsonValue::as_str) else {
            self.report.unreadable += 1;
            return;
        };
        // A call a limit refused was allowed by the policy: that is what replay compares.
        let limited = recorded
            .outcome
            .get("limited")
            .and_then(|limited| limited.get("name"))
            .and_then(JsonValue::as_str);
        let was_allowed = verdict == "allow" || limited.is_some();
        let subject = |key: &str| {
            let parts = recorded.parts.as_ref().ok()?;
            parts.subject.get(key).and_then(JsonValue::as_str)
        };
        let named = (subject("type"), subject("id"));
        let decider = Decider {
            program,
            identity: proved(recorded.record, named),
            capabilities: None,
            limits: None,
        };
        let decoded = match &recorded.parts {
            Ok(parts) => request::from_parts(program, parts, recorded.time),
            Err(invalid) => Err(invalid.clone().into()),
        };
        let verdict = match decoded {
            Ok(mut request) => {
                decider.decide(Ok(&mut request), named, None, Some(&mut self.frame), None)
            }
            Err(error) => decider.decide(Err(error), named, None, None, None),
        };
        let allowed = verdict.allowed;
        let (now_rules, invalid) = match &verdict.decision {
            Ok(decision) => {
                let rules = decision
                    .reasons
                    .iter()
                    .filter_map(|id| program.rule(*id))
                    .map(|rule| rule.id.to_string())
                    .collect::<Vec<_>>();
                (rules, None)
            }
            Err(error) => (Vec::new(), Some(error.to_string())),
        };
        let report = &mut self.report;
        report.replayed += 1;
        if allowed == was_allowed {
            match limited {
                Some(name) => {
                    report.limited += 1;
                    *report.limited_by.entry(name.to_string()).or_default() += 1;
                }
                None => report.unchanged += 1,
            }
            return;
        }
        let was_rules: Vec<String> = recorded
            .outcome
            .get("rules")
            .and_then(JsonValue::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(JsonValue::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let (direction, cause) = if allowed {
            report.deny_to_allow += 1;
            (
                "deny → allow",
                format!("allowed by {}", now_rules.join(", ")),
            )
        } else {
            report.allow_to_deny += 1;
            let cause = match invalid {
                Some(message) => format!("not decidable: {message}"),
                None if now_rules.is_empty() => {
                    format!("no rule allows (was allowed by {})", was_rules.join(", "))
                }
                None => format!("denied by {}", now_rules.join(", ")),
            };
            ("allow → deny", cause)
        };
        let (count, kept) = self
            .groups
            .entry((direction.to_string(), cause))
            .or_default();
        *count += 1;
        if kept.len() >= self.examples {
            return;
        }
        let record = recorded.record;
        kept.push(Flip {
            seq: record.get("seq").and_then(JsonValue::as_u64).unwrap_or(0),
            item: recorded.item,
            time: recorded.time.to_string(),
            request_id: record
                .get("request_id")
                .and_then(JsonValue::as_str)
                .unwrap_or("")
                .to_string(),
            request: recorded.description.clone(),
            from: if was_allowed { "allow" } else { "deny" },
            to: if allowed { "allow" } else { "deny" },
            was: was_rules,
            now: now_rules,
            limited: limited.map(str::to_string),
        });
    }
}

/// The subject a record's call proved, with its verified attributes: a forward-auth record's
/// `verified` (of the subject it names, `named`), or what an AuthZEN call's
/// `Warden-Subject-Token` proved (`verified_subject`), lent when a decision names that subject.
fn proved<'r>(
    record: &'r JsonValue,
    named: (Option<&'r str>, Option<&'r str>),
) -> Option<Proved<'r>> {
    if let Some(JsonValue::Object(attributes)) = record.get("verified") {
        return Some(Proved {
            subject_type: named.0.unwrap_or_default(),
            subject_id: named.1.unwrap_or_default(),
            attributes,
        });
    }
    let token = record.get("verified_subject")?;
    let text = |key: &str| token.get(key).and_then(JsonValue::as_str);
    match (text("type"), text("id"), token.get("attributes")) {
        (Some(subject_type), Some(subject_id), Some(JsonValue::Object(attributes))) => {
            Some(Proved {
                subject_type,
                subject_id,
                attributes,
            })
        }
        _ => None,
    }
}

/// The record's `time`.
fn time(record: &JsonValue) -> Option<Timestamp> {
    record
        .get("time")
        .and_then(JsonValue::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
}

/// The paths a record lists as masked.
fn masked(record: &JsonValue) -> impl Iterator<Item = &str> {
    record
        .get("masked")
        .and_then(JsonValue::as_array)
        .into_iter()
        .flatten()
        .filter_map(JsonValue::as_str)
}

/// Whether a masked path of a batch record touches item `index` (whose own entry is
/// `entry`): a value in the item itself or in what it read, a default it takes from the
/// call, or anything else in the call (not knowing, assume so).
fn affects(path: &str, index: usize, entry: &JsonValue) -> bool {
    let head = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(number, _)| number.parse::<usize>().ok())
    };
    if let Some(i) = head("evaluations").or_else(|| head("items")) {
        return i == index;
    }
    let key = path.split(['.', '[']).next().unwrap_or(path);
    match key {
        "subject" | "action" | "resource" | "context" => {
            entry.get(key).is_none_or(JsonValue::is_null)
        }
        _ => true,
    }
}

/// `User::"alice" read Doc::"d1"`.
fn describe(parts: &request::Parts<'_>) -> String {
    let action = parts
        .action
        .get("name")
        .and_then(JsonValue::as_str)
        .unwrap_or("?");
    format!(
        "{} {action} {}",
        describe_entity(parts.subject),
        describe_entity(parts.resource)
    )
}

/// `User::"alice"`.
fn describe_entity(value: &JsonValue) -> String {
    let ty = value.get("type").and_then(JsonValue::as_str).unwrap_or("?");
    let id = value.get("id").and_then(JsonValue::as_str).unwrap_or("?");
    format!("{ty}::{id:?}")
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "replayed {} of {} decision(s) under policy version {}\n",
        report.replayed, report.decisions, report.policy_version
    ));
    if report.not_replayable > 0 {
        out.push_str(&format!(
            "not replayable: {} (their requests hold masked values)\n",
            report.not_replayable
        ));
    }
    if report.unreadable > 0 {
        out.push_str(&format!(
            "unreadable: {} line(s) (run `warden audit verify`)\n",
            report.unreadable
        ));
    }
    out.push_str(&format!(
        "flips: {} (allow → deny: {}, deny → allow: {}); unchanged: {}\n",
        report.allow_to_deny + report.deny_to_allow,
        report.allow_to_deny,
        report.deny_to_allow,
        report.unchanged
    ));
    if report.limited > 0 {
        let by: Vec<String> = report
            .limited_by
            .iter()
            .map(|(name, count)| format!("`{name}` {count}"))
            .collect();
        out.push_str(&format!(
            "limit-denied: {} (the policy allows them, as when recorded; a limit refused them: {})\n",
            report.limited,
            by.join(", ")
        ));
    }
    let mut direction = "";
    for group in &report.groups {
        if group.direction != direction {
            direction = &group.direction;
            out.push_str(&format!("\n{direction}\n"));
        }
        out.push_str(&format!("  {} × {}\n", group.count, group.cause));
        for flip in &group.flips {
            let was = if flip.was.is_empty() {
                "no rule".to_string()
            } else {
                flip.was.join(", ")
            };
            let item = flip
                .item
                .map(|item| format!(" item {item}"))
                .unwrap_or_default();
            let limited = flip
                .limited
                .as_ref()
                .map(|name| format!(", refused by limit `{name}`"))
                .unwrap_or_default();
            out.push_str(&format!(
                "      seq {}{item} at {}: {} (was {} by {}{limited})\n",
                flip.seq, flip.time, flip.request, flip.from, was
            ));
        }
        let more = group.count.saturating_sub(group.flips.len() as u64);
        if more > 0 {
            out.push_str(&format!("      … and {more} more\n"));
        }
    }
    out
}
