//! `warden audit replay`: re-decides every recorded request, at its recorded time, under
//! another program, and lists the decisions that would flip, grouped by the rule that makes
//! the difference.
//!
//! A record with masked values (`masked`) is not replayed: its request is not what the caller
//! sent, and guessing would be worse than saying so.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value as JsonValue;

use crate::eval::{self, RequestError, request};
use crate::program::Program;

/// One decision that would change.
#[derive(Clone, Debug, Serialize)]
pub struct Flip {
    pub seq: u64,
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
}

/// Flips that share a direction and a cause.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// `allow → deny` or `deny → allow`.
    pub direction: String,
    /// `denied by suspended`, `allowed by readers`, `no rule allows (was allowed by owner)`.
    pub cause: String,
    pub count: usize,
    pub flips: Vec<Flip>,
}

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
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    pub groups: Vec<Group>,
}

/// Replays the decision records of `files` (in chain order) under `program`.
pub fn replay(files: &[PathBuf], program: &Program) -> std::io::Result<Report> {
    let mut report = Report {
        policy_version: program.version.to_string(),
        ..Report::default()
    };
    let mut groups: BTreeMap<(String, String), Vec<Flip>> = BTreeMap::new();
    let mut frame = eval::Frame::new();
    for path in files {
        let reader = BufReader::new(File::open(path)?);
        for line in reader.split(b'\n') {
            let line = line?;
            let Ok(record) = serde_json::from_slice::<JsonValue>(&line) else {
                report.unreadable += 1;
                continue;
            };
            if record.get("kind").and_then(JsonValue::as_str) != Some("decision") {
                continue;
            }
            report.decisions += 1;
            if let Some(version) = record.get("policy_version").and_then(JsonValue::as_str) {
                *report
                    .recorded_versions
                    .entry(version.to_string())
                    .or_default() += 1;
            }
            if record
                .get("masked")
                .and_then(JsonValue::as_array)
                .is_some_and(|m| !m.is_empty())
            {
                report.not_replayable += 1;
                continue;
            }
            let (Some(body), Some(time), Some(verdict)) = (
                record.get("request"),
                record
                    .get("time")
                    .and_then(JsonValue::as_str)
                    .and_then(|t| t.parse::<Timestamp>().ok()),
                record.get("decision").and_then(JsonValue::as_str),
            ) else {
                report.unreadable += 1;
                continue;
            };
            let was_allowed = verdict == "allow";
            let (allowed, now_rules, invalid) = match request::decode_body(program, body, time) {
                Ok(request) => {
                    let decision = eval::decide_in(program, &request, &mut frame);
                    let rules = decision
                        .reasons
                        .iter()
                        .filter_map(|id| program.rule(*id))
                        .map(|rule| rule.id.to_string())
                        .collect::<Vec<_>>();
                    (decision.allowed, rules, None)
                }
                Err(RequestError::Invalid(message)) | Err(RequestError::Malformed(message)) => {
                    (false, Vec::new(), Some(message))
                }
            };
            report.replayed += 1;
            if allowed == was_allowed {
                report.unchanged += 1;
                continue;
            }
            let was_rules: Vec<String> = record
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
            let flip = Flip {
                seq: record.get("seq").and_then(JsonValue::as_u64).unwrap_or(0),
                time: time.to_string(),
                request_id: record
                    .get("request_id")
                    .and_then(JsonValue::as_str)
                    .unwrap_or("")
                    .to_string(),
                request: describe(body),
                from: if was_allowed { "allow" } else { "deny" },
                to: if allowed { "allow" } else { "deny" },
                was: was_rules,
                now: now_rules,
            };
            groups
                .entry((direction.to_string(), cause))
                .or_default()
                .push(flip);
        }
    }
    let mut groups: Vec<Group> = groups
        .into_iter()
        .map(|((direction, cause), flips)| Group {
            direction,
            cause,
            count: flips.len(),
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

/// `User::"alice" read Doc::"d1"`.
fn describe(body: &JsonValue) -> String {
    let entity = |value: Option<&JsonValue>| {
        let ty = value
            .and_then(|v| v.get("type"))
            .and_then(JsonValue::as_str)
            .unwrap_or("?");
        let id = value
            .and_then(|v| v.get("id"))
            .and_then(JsonValue::as_str)
            .unwrap_or("?");
        format!("{ty}::{id:?}")
    };
    let action = body
        .get("action")
        .and_then(|a| a.get("name"))
        .and_then(JsonValue::as_str)
        .unwrap_or("?");
    format!(
        "{} {action} {}",
        entity(body.get("subject")),
        entity(body.get("resource"))
    )
}

/// How many flips of a group the human report lists.
const SHOWN: usize = 10;

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
    let mut direction = "";
    for group in &report.groups {
        if group.direction != direction {
            direction = &group.direction;
            out.push_str(&format!("\n{direction}\n"));
        }
        out.push_str(&format!("  {} × {}\n", group.count, group.cause));
        for flip in group.flips.iter().take(SHOWN) {
            let was = if flip.was.is_empty() {
                "no rule".to_string()
            } else {
                flip.was.join(", ")
            };
            out.push_str(&format!(
                "      seq {} at {}: {} (was {} by {})\n",
                flip.seq, flip.time, flip.request, flip.from, was
            ));
        }
        if group.flips.len() > SHOWN {
            out.push_str(&format!("      … and {} more\n", group.flips.len() - SHOWN));
        }
    }
    out
}
