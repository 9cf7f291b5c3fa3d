//! Decision records: built on the request's thread (so the writer only seals and writes), with
//! secrets masked on the way.
//!
//! A decision record's fields, after the chain's `seq` and `prev`:
//!
//! | field | meaning |
//! |---|---|
//! | `kind` | `"decision"` |
//! | `time` | the `now()` the decision used (RFC 3339) |
//! | `request_id` | the caller's `X-Request-ID`, else one made up by the server |
//! | `item` | in a batch, the index of the item |
//! | `request` | the whole request as decided (a batch item with its defaults applied) |
//! | `read` | the values the decision read: stored attributes and request values, by path, as a policy would write them |
//! | `decision` | `"allow"` or `"deny"` |
//! | `rules` | the ids of the deciding rules |
//! | `errors` | one `rule-id: message` per rule that failed, or why the request was not decidable |
//! | `policy_version` | the version of the program that decided |
//! | `latency_us` | microseconds from the call's arrival to this decision |
//! | `masked` | the paths of masked values, when there are any: such records are not replayable |

use std::fmt::Write;

use serde_json::Value as JsonValue;

use crate::data::value::Value;
use crate::eval::request::Parts;
use crate::eval::{Decision, Frame, explain};
use crate::program::{Node, NodeId, Party, Program};

/// What a masked value is replaced by.
pub const MASKED: &str = "[masked]";

/// Property names whose values are tokens: never written in full, whatever the configuration.
pub const TOKEN_NAMES: [&str; 8] = [
    "authorization",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "bearer",
    "capability",
    "capabilities",
];

/// Which names to mask.
#[derive(Clone, Debug, Default)]
pub struct Masking {
    /// Configured property names (compared case-insensitively), masked whole.
    pub names: Vec<String>,
}

impl Masking {
    fn masks(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    fn is_token_name(name: &str) -> bool {
        TOKEN_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// True for a string that looks like a bearer token: `Bearer …`, or a JWT (`eyJ…` in three
/// dot-separated parts).
pub fn looks_like_token(text: &str) -> bool {
    let lower_prefix = text
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
    lower_prefix || (text.len() > 20 && text.starts_with("eyJ") && text.matches('.').count() == 2)
}

/// A token shortened so it can be recognised but not used: its first 6 characters.
fn shortened(text: &str) -> String {
    let prefix: String = text.chars().take(6).collect();
    format!("{prefix}…{MASKED}")
}

/// Everything a record needs from one decided evaluation.
pub struct Decided<'a> {
    pub program: &'a Program,
    pub parts: &'a Parts<'a>,
    pub time: jiff::Timestamp,
    pub request_id: &'a str,
    pub item: Option<usize>,
    /// The decision with the frame it was decided in, or why the request was not decidable.
    pub outcome: Result<(&'a Decision, &'a Frame), &'a str>,
    pub latency_us: u64,
}

/// The record's fields (without braces), and whether anything was masked.
pub fn body(decided: &Decided<'_>, masking: &Masking) -> String {
    let mut out = String::with_capacity(1024);
    let mut masked: Vec<String> = Vec::new();
    let program = decided.program;
    out.push_str("\"kind\":\"decision\",\"time\":\"");
    let _ = write!(out, "{}", decided.time);
    out.push_str("\",\"request_id\":");
    json_string(&mut out, decided.request_id);
    if let Some(item) = decided.item {
        let _ = write!(out, ",\"item\":{item}");
    }
    out.push_str(",\"request\":{\"subject\":");
    let mut path = String::from("subject");
    json_masked(
        &mut out,
        decided.parts.subject,
        &mut path,
        masking,
        &mut masked,
    );
    out.push_str(",\"action\":");
    path.clear();
    path.push_str("action");
    json_masked(
        &mut out,
        decided.parts.action,
        &mut path,
        masking,
        &mut masked,
    );
    out.push_str(",\"resource\":");
    path.clear();
    path.push_str("resource");
    json_masked(
        &mut out,
        decided.parts.resource,
        &mut path,
        masking,
        &mut masked,
    );
    if let Some(context) = decided.parts.context.filter(|c| !c.is_null()) {
        out.push_str(",\"context\":");
        path.clear();
        path.push_str("context");
        json_masked(&mut out, context, &mut path, masking, &mut masked);
    }
    out.push_str("},\"read\":{");
    match decided.outcome {
        Ok((decision, frame)) => {
            let mut first = true;
            for node in frame.reads() {
                let Some(name) = read_path(program, *node) else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(&mut out, &name);
                out.push(':');
                let hidden = name
                    .split(['.', ' '])
                    .any(|segment| masking.masks(segment) || Masking::is_token_name(segment));
                let rendered = match frame.result(*node) {
                    _ if hidden => {
                        masked.push(name.clone());
                        MASKED.to_string()
                    }
                    Some(Ok(Value::Str(s))) if looks_like_token(s) => {
                        masked.push(name.clone());
                        shortened(s)
                    }
                    Some(Ok(value)) => explain::render_value(program, value),
                    Some(Err(error)) => {
                        format!("error: {}", explain::error_message(program, error))
                    }
                    None => "not evaluated".to_string(),
                };
                json_string(&mut out, &rendered);
            }
            out.push_str("},\"decision\":");
            out.push_str(if decision.allowed {
                "\"allow\""
            } else {
                "\"deny\""
            });
            out.push_str(",\"rules\":[");
            for (i, id) in decision.reasons.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let id = program.rule(*id).map_or("?", |rule| &rule.id);
                json_string(&mut out, id);
            }
            out.push_str("],\"errors\":[");
            for (i, line) in explain::error_lines(program, decision).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(&mut out, line);
            }
            out.push(']');
        }
        Err(message) => {
            out.push_str("},\"decision\":\"deny\",\"rules\":[],\"errors\":[");
            json_string(&mut out, message);
            out.push(']');
        }
    }
    out.push_str(",\"policy_version\":");
    json_string(&mut out, &program.version);
    let _ = write!(out, ",\"latency_us\":{}", decided.latency_us);
    if !masked.is_empty() {
        masked.sort();
        masked.dedup();
        out.push_str(",\"masked\":[");
        for (i, path) in masked.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, path);
        }
        out.push(']');
    }
    out
}

/// `subject.department`, `resource.owner.email`, `context has mfa`: the path of an attribute,
/// property or context read. `None` for whole-record reads (the request holds those).
pub fn read_path(program: &Program, node: NodeId) -> Option<String> {
    match program.node(node)? {
        Node::Attr(base, name) => Some(format!("{}.{name}", base_path(program, *base))),
        Node::Has(base, name) => Some(format!("{} has {name}", base_path(program, *base))),
        _ => None,
    }
}

fn base_path(program: &Program, node: NodeId) -> String {
    match program.node(node) {
        Some(Node::Subject) => "subject".to_string(),
        Some(Node::Resource) => "resource".to_string(),
        Some(Node::Action) => "action".to_string(),
        Some(Node::Context) => "context".to_string(),
        Some(Node::Properties(Party::Subject)) => "subject.properties".to_string(),
        Some(Node::Properties(Party::Action)) => "action.properties".to_string(),
        Some(Node::Properties(Party::Resource)) => "resource.properties".to_string(),
        Some(Node::Attr(base, name)) => format!("{}.{name}", base_path(program, *base)),
        _ => format!("(expression #{})", node.0),
    }
}

/// Writes `text` as a JSON string.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        if byte >= 0x20 && byte != b'"' && byte != b'\\' {
            continue;
        }
        out.push_str(&text[plain..i]);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            other => {
                let _ = write!(out, "\\u{other:04x}");
            }
        }
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

/// Writes `value` as JSON, masking configured names and tokens; `path` is where it lies.
fn json_masked(
    out: &mut String,
    value: &JsonValue,
    path: &mut String,
    masking: &Masking,
    masked: &mut Vec<String>,
) {
    match value {
        JsonValue::Object(members) => {
            out.push('{');
            for (i, (key, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, key);
                out.push(':');
                let len = path.len();
                path.push('.');
                path.push_str(key);
                if masking.masks(key) {
                    masked.push(path.clone());
                    json_string(out, MASKED);
                } else if Masking::is_token_name(key) {
                    masked.push(path.clone());
                    match member {
                        JsonValue::String(s) => json_string(out, &shortened(s)),
                        _ => json_string(out, MASKED),
                    }
                } else {
                    json_masked(out, member, path, masking, masked);
                }
                path.truncate(len);
            }
            out.push('}');
        }
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                let _ = write!(path, "[{i}]");
                json_masked(out, item, path, masking, masked);
                path.truncate(len);
            }
            out.push(']');
        }
        JsonValue::String(s) if looks_like_token(s) => {
            masked.push(path.clone());
            json_string(out, &shortened(s));
        }
        JsonValue::String(s) => json_string(out, s),
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised() {
        assert!(looks_like_token("Bearer abc"));
        assert!(looks_like_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"));
        assert!(!looks_like_token("alice"));
        assert_eq!(shortened("eyJhbGciOi"), "eyJhbG…[masked]");
    }

    #[test]
    fn strings_are_escaped_as_serde_does() {
        for text in ["plain", "a\"b\\c\nd\te\r\u{1}é✓", ""] {
            let mut out = String::new();
            json_string(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn masking_walks_the_request() {
        let masking = Masking {
            names: vec!["password".to_string()],
        };
        let value = serde_json::json!({"id": "a", "properties": {"password": "x", "token": "abcdefghij", "n": [1, "Bearer zz"]}});
        let mut out = String::new();
        let mut masked = Vec::new();
        json_masked(
            &mut out,
            &value,
            &mut "subject".to_string(),
            &masking,
            &mut masked,
        );
        assert!(!out.contains("\"x\""), "{out}");
        assert!(out.contains("abcdef…[masked]"), "{out}");
        assert!(!out.contains("zz"), "{out}");
        assert_eq!(
            masked,
            [
                "subject.properties.n[1]",
                "subject.properties.password",
                "subject.properties.token"
            ]
        );
        let reparsed: JsonValue = serde_json::from_str(&out).unwrap();
        assert_eq!(reparsed["id"], "a");
    }
}
