//! Decision records: built on the request's thread (so the writer only seals and writes), with
//! secrets masked on the way. One record per call: a single evaluation (or a forward-auth
//! call) is a `decision` record; an `/access/v1/evaluations` call is one `batch` record
//! holding all its items, so the chain hashes, and the queue carries, one line per call.
//!
//! A decision record's fields, after the chain's `seq` and `prev`:
//!
//! | field | meaning |
//! |---|---|
//! | `kind` | `"decision"` |
//! | `time` | the `now()` the decision used (RFC 3339) |
//! | `request_id` | the caller's `X-Request-ID`, else one made up by the server |
//! | `gateway` | forward-auth calls: `nginx`, `envoy` or `traefik` |
//! | `request` | the request as the caller sent it (forward-auth: as the route made it) |
//! | `http` | forward-auth calls: the original `method`, `path` (no query), `host`, `ip` |
//! | `verified` | forward-auth calls: the verified attributes of the subject (never the token) |
//! | `read` | the values the decision read: stored attributes and request values, by path, as a policy would write them |
//! | `decision` | `"allow"` or `"deny"` |
//! | `rules` | the ids of the deciding rules |
//! | `errors` | one `rule-id: message` per rule that failed, or why the request was not decidable |
//! | `limited` | when the policy allowed (by `rules`) and a limit refused, so the decision is `deny`: `{"policy": "allow", "name", "refusal", "retry_after"}` |
//! | `policy_version` | the version of the program that decided |
//! | `latency_us` | microseconds from the call's arrival to the decision |
//! | `masked` | the paths of masked values, when there are any: such records are not replayable |
//!
//! A batch record has `kind`, `time`, `request_id`, `request` (the whole body, defaults and
//! `evaluations`), then `items`: per item of `evaluations`, in order, the index of its outcome
//! in `outcomes`, or `null` for an item that was not recorded (not well-formed, or left out by
//! `audit_mode`); items after a batch stopped (`deny_on_first_deny`, `permit_on_first_permit`)
//! are absent. `outcomes` holds each distinct outcome once, `{"decision", "rules", "read",
//! "errors", "limited"}` (`errors` and `limited` only when there are some; such an outcome is
//! never shared), its `read`
//! a list of indexes into `reads`: the distinct `["path", "value"]` pairs the items read, each
//! written once. Then `policy_version`, `latency_us` (to the last item decided) and `masked`
//! (request paths such as `evaluations[3].context.token`, read paths as
//! `items[3].read.subject.password`).

use std::fmt::Write;

use serde_json::Value as JsonValue;
use smallvec::SmallVec;

use crate::data::value::Value;
use crate::decide::Decided;
use crate::eval::{Decision, Frame, explain};
use crate::limit::Refusal;
use crate::program::{Node, NodeId, Party, Program};

/// What a masked value is replaced by.
pub(crate) const MASKED: &str = "[masked]";

/// Property names whose values are tokens: never written in full, whatever the configuration.
pub(crate) const TOKEN_NAMES: [&str; 8] = [
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
        self.masks_bytes(name.as_bytes())
    }

    fn masks_bytes(&self, name: &[u8]) -> bool {
        self.names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    fn is_token_name(name: &str) -> bool {
        Masking::is_token_name_bytes(name.as_bytes())
    }

    fn is_token_name_bytes(name: &[u8]) -> bool {
        let first = name.first().map(u8::to_ascii_lowercase);
        TOKEN_NAMES.iter().any(|n| {
            n.len() == name.len()
                && n.as_bytes().first() == first.as_ref()
                && n.as_bytes().eq_ignore_ascii_case(name)
        })
    }
}

/// True for a string that looks like a bearer token: `Bearer …`, or a JWT (`eyJ…` in three
/// dot-separated parts).
pub(crate) fn looks_like_token(text: &str) -> bool {
    looks_like_token_bytes(text.as_bytes())
}

fn looks_like_token_bytes(bytes: &[u8]) -> bool {
    match bytes.first() {
        Some(b'b' | b'B') => bytes
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"bearer ")),
        Some(b'e') => {
            bytes.len() > 20
                && bytes.starts_with(b"eyJ")
                && bytes.iter().filter(|b| **b == b'.').count() == 2
        }
        _ => false,
    }
}

/// A token shortened so it can be recognised but not used: its first 6 characters; for a
/// capability token, also its id (what revocation and `warden capability inspect` name).
fn shortened(text: &str) -> String {
    let prefix: String = text.chars().take(6).collect();
    match crate::capability::parse(text) {
        Ok(token) => format!("{prefix}…{MASKED} id={}", token.id()),
        Err(_) => format!("{prefix}…{MASKED}"),
    }
}

/// A request's JSON text, as a record takes it.
#[derive(Clone, Copy, Debug)]
pub enum RequestText<'t> {
    /// Read key by key by the caller, which found nothing that needs masking
    /// ([`Masking::needs_json`], [`Masking::needs_text`]): copied as it is.
    Checked(&'t str),
    /// Not looked into: scanned for what needs masking.
    Unchecked(&'t str),
}

/// The keys of an AuthZEN evaluation call: a caller that read a body with no other keys
/// needs to look only at the values (unless one of these is configured to be masked).
pub(crate) const REQUEST_KEYS: [&str; 11] = [
    "subject",
    "action",
    "resource",
    "context",
    "type",
    "id",
    "name",
    "properties",
    "evaluations",
    "options",
    "evaluations_semantic",
];

impl Masking {
    /// Whether a body whose keys are all [`REQUEST_KEYS`] can be checked by its values alone:
    /// no configured name is one of those keys.
    pub(crate) fn spares_request_keys(&self) -> bool {
        !REQUEST_KEYS.iter().any(|key| self.masks(key))
    }

    /// Whether a string value (a `type`, an `id`, a `name`) needs masking: a token.
    pub(crate) fn needs_text(&self, text: &str) -> bool {
        looks_like_token(text)
    }

    /// Whether anything in a request's `properties` or `context` needs masking: a key that
    /// is a configured or token name, a string that looks like a token.
    pub(crate) fn needs_json(&self, json: &crate::data::json::Json) -> bool {
        use crate::data::json::JsonKind;
        match &json.kind {
            JsonKind::String(text) => looks_like_token(text),
            JsonKind::Array(items) => items.iter().any(|item| self.needs_json(item)),
            JsonKind::Object(members) => members.iter().any(|(key, _, value)| {
                self.masks(key) || Masking::is_token_name(key) || self.needs_json(value)
            }),
            _ => false,
        }
    }

    /// Whether a request's JSON text, read whole, holds nothing to mask: no key that is a
    /// configured or token name, no string that looks like a token, no escape (which could
    /// spell either), and no line break. A caller that decoded the body without building a
    /// tree checks it this way, so that a clean request is recorded exactly as sent
    /// ([`RequestText::Checked`]).
    pub(crate) fn spares_text(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        if memchr::memchr3(b'\\', b'\n', b'\r', bytes).is_some() {
            return false;
        }
        // No escapes: quotes pair up, each pair one string. Strings and the gaps between them
        // are short, so a plain loop finds the quotes faster than a vector search would.
        let mut quotes = bytes
            .iter()
            .enumerate()
            .filter_map(|(at, &byte)| (byte == b'"').then_some(at));
        while let (Some(open), Some(close)) = (quotes.next(), quotes.next()) {
            let content = bytes.get(open + 1..close).unwrap_or_default();
            let key = bytes
                .get(close + 1..)
                .and_then(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()))
                == Some(&b':');
            let needs = if key {
                Masking::is_token_name_bytes(content) || self.masks_bytes(content)
            } else {
                looks_like_token_bytes(content)
            };
            if needs {
                return false;
            }
        }
        true
    }
}

/// A record's request id: the caller's, or one the server made up (written straight into the
/// record, without a string of its own).
#[derive(Clone, Copy, Debug)]
pub enum RequestId<'a> {
    Given(&'a str),
    Made { prefix: &'a str, number: u64 },
}

/// Whether a record holds one decision or the items of a batch call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `"kind":"decision"`: one evaluation, its outcome in the record's own fields.
    Single,
    /// `"kind":"batch"`: an `/access/v1/evaluations` call, its outcomes in `items`.
    Batch,
}

/// A finished record body (the fields without braces), with the decisions it holds.
#[derive(Debug)]
pub struct Record {
    pub body: String,
    pub decisions: u32,
}

/// One call's record, built on the request's thread as the call decides: the request is
/// written once, then each outcome is appended, so a batch of a hundred items is one line,
/// one hash and one queue slot.
#[derive(Debug)]
pub struct Builder {
    shape: Shape,
    out: String,
    masked: Vec<String>,
    /// Batch: entries written to `items` so far (an item not recorded is `null`); `items` is
    /// opened with the first, so that members can come before it.
    entries: usize,
    decisions: u32,
    /// Batch: the distinct outcomes, which items refer to by index.
    outcomes: Outcomes,
    /// Batch: the distinct values read, which outcomes refer to by index.
    reads: ReadTable,
    /// Scratch: the key of the outcome being recorded.
    key: SmallVec<[u32; 8]>,
    /// The thread's cache, while outcomes are written.
    cache: Option<Box<Cache>>,
}

/// The distinct outcomes of a batch record's items: a batch's items mostly end alike (the
/// same verdict by the same rules from the same values), so each is written once.
#[derive(Debug, Default)]
struct Outcomes {
    /// The members of `outcomes`, comma-separated.
    text: String,
    len: u32,
    by_key: rustc_hash::FxHashMap<SmallVec<[u32; 8]>, u32>,
    /// The last few shared outcomes, compared with an item's decision directly.
    recent: Recent,
}

/// The last few shared outcomes of a batch, as the decision and the values it read: an item
/// that ends like one of them (same verdict, rules, nodes read and values) has its outcome, so
/// its key (read paths, masking checks, read-table entries, hashing) need not be built. Only
/// outcomes without errors and whose every read is a value shown as it is are kept here: the
/// key is then a function of exactly what is compared.
#[derive(Debug, Default)]
struct Recent {
    entries: Vec<RecentOutcome>,
    /// Where the next entry goes once all slots are taken.
    next: usize,
}

#[derive(Debug)]
struct RecentOutcome {
    allowed: bool,
    reasons: SmallVec<[crate::program::RuleId; 4]>,
    reads: SmallVec<[(NodeId, Value); 4]>,
    id: u32,
}

impl Recent {
    const SLOTS: usize = 4;

    fn find(&self, decision: &Decision, frame: &Frame) -> Option<u32> {
        let reads = frame.reads();
        self.entries
            .iter()
            .find(|entry| {
                entry.allowed == decision.allowed
                    && entry.reasons == decision.reasons
                    && entry.reads.len() == reads.len()
                    && entry.reads.iter().zip(reads).all(|((node, value), read)| {
                        node == read && matches!(frame.result(*read), Some(Ok(now)) if now == value)
                    })
            })
            .map(|entry| entry.id)
    }

    /// Keeps a shared outcome that had no hidden read (the caller knows) when every read is
    /// a value. An outcome found here is not offered again, so entries do not repeat.
    fn remember(&mut self, decision: &Decision, frame: &Frame, id: u32) {
        let mut reads = SmallVec::new();
        for &node in frame.reads() {
            match frame.result(node) {
                Some(Ok(value)) => reads.push((node, value.clone())),
                _ => return,
            }
        }
        let entry = RecentOutcome {
            allowed: decision.allowed,
            reasons: decision.reasons.clone(),
            reads,
            id,
        };
        if self.entries.len() < Recent::SLOTS {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % Recent::SLOTS;
        }
    }
}

impl Builder {
    /// Starts a record: kind, time, request id, the gateway (forward-auth calls) and the
    /// request as the caller sent it (`request`: the body's JSON text), masked.
    pub fn new(
        shape: Shape,
        time: jiff::Timestamp,
        request_id: RequestId<'_>,
        gateway: Option<&str>,
        request: RequestText<'_>,
        masking: &Masking,
    ) -> Builder {
        let (RequestText::Checked(text) | RequestText::Unchecked(text)) = request;
        let capacity = match shape {
            Shape::Single => 384 + text.len(),
            Shape::Batch => 256 + text.len() * 2,
        };
        let mut out = String::with_capacity(capacity);
        let mut masked = Vec::new();
        out.push_str(match shape {
            Shape::Single => "\"kind\":\"decision\",\"time\":\"",
            Shape::Batch => "\"kind\":\"batch\",\"time\":\"",
        });
        push_time(&mut out, time);
        out.push_str("\",\"request_id\":");
        match request_id {
            RequestId::Given(id) => json_string(&mut out, id),
            RequestId::Made { prefix, number } => {
                json_string(&mut out, prefix);
                // Back into the string: the number's digits need no escaping.
                out.pop();
                push_u64(&mut out, number);
                out.push('"');
            }
        }
        if let Some(gateway) = gateway {
            out.push_str(",\"gateway\":");
            json_string(&mut out, gateway);
        }
        out.push_str(",\"request\":");
        write_request(&mut out, request, masking, &mut masked);
        Builder {
            shape,
            out,
            masked,
            entries: 0,
            decisions: 0,
            outcomes: Outcomes::default(),
            reads: ReadTable::default(),
            key: SmallVec::new(),
            cache: None,
        }
    }

    /// Adds a member to the record, after the request and before any outcome (e.g.
    /// `verified`); ignored once an outcome is recorded.
    pub fn member(&mut self, name: &str, value: &JsonValue, masking: &Masking) {
        if self.decisions > 0 || self.entries > 0 {
            return;
        }
        self.out.push(',');
        json_string(&mut self.out, name);
        self.out.push(':');
        let mut path = name.to_string();
        json_masked(&mut self.out, value, &mut path, masking, &mut self.masked);
    }

    /// Records the outcome of a single evaluation, or of batch item `item`.
    pub fn outcome(
        &mut self,
        item: Option<usize>,
        program: &Program,
        outcome: Decided<'_>,
        masking: &Masking,
    ) {
        self.counted_outcome(item, program, outcome, None, masking);
    }

    /// Records an outcome as [`Builder::outcome`] does, and, for a request the policy allowed
    /// that a limit then refused, that refusal (`limited`): the decision is then `deny`.
    pub(crate) fn counted_outcome(
        &mut self,
        item: Option<usize>,
        program: &Program,
        outcome: Decided<'_>,
        limited: Option<&Refusal>,
        masking: &Masking,
    ) {
        let index = match (self.shape, item) {
            (Shape::Batch, Some(index)) if index >= self.entries => Some(index),
            (Shape::Single, _) if self.decisions == 0 => None,
            // A second outcome for a single record, an item out of order, or a batch outcome
            // without its index: not something a caller does; nothing sensible to write.
            _ => return,
        };
        // The thread's cache, held from the first outcome to the end of the record.
        let mut cache = self.cache.take().unwrap_or_else(take_cache);
        cache.prepare(program, masking);
        // Only a request the policy allowed is counted against limits.
        let limited = limited.filter(|_| matches!(outcome, Ok((decision, _)) if decision.allowed));
        match index {
            Some(index) => self.item(index, &mut cache, program, outcome, limited),
            None => self.single(&mut cache, program, outcome, limited),
        }
        self.cache = Some(cache);
        self.decisions += 1;
    }

    fn item(
        &mut self,
        index: usize,
        cache: &mut Cache,
        program: &Program,
        outcome: Decided<'_>,
        limited: Option<&Refusal>,
    ) {
        let out = &mut self.out;
        if self.entries == 0 {
            out.push_str(",\"items\":[");
        }
        // Items not recorded (not wanted, or not well-formed) are `null`.
        while self.entries < index {
            if self.entries > 0 {
                out.push(',');
            }
            out.push_str("null");
            self.entries += 1;
        }
        if self.entries > 0 {
            out.push(',');
        }
        self.entries += 1;
        // An outcome with errors or a limit's refusal is never shared: its messages are its own.
        let shared =
            limited.is_none() && matches!(outcome, Ok((decision, _)) if decision.errors.is_empty());
        if shared
            && let Ok((decision, frame)) = outcome
            && let Some(found) = self.outcomes.recent.find(decision, frame)
        {
            push_u64(out, u64::from(found));
            return;
        }
        // The outcome's key: verdict, rules and the reads' table entries. Items with the same
        // key share one entry of `outcomes`.
        let key = &mut self.key;
        key.clear();
        let mut any_hidden = false;
        if let Ok((decision, frame)) = outcome {
            key.push(u32::from(decision.allowed));
            key.push(u32::try_from(decision.reasons.len()).unwrap_or(u32::MAX));
            key.extend(
                decision
                    .reasons
                    .iter()
                    .map(|id| u32::try_from(id.index()).unwrap_or(u32::MAX)),
            );
            for node in frame.reads() {
                let Some(path) = cache.path(program, *node) else {
                    continue;
                };
                let value = frame.result(*node);
                let hidden = is_hidden(path, value);
                if hidden {
                    any_hidden = true;
                    self.masked
                        .push(format!("items[{index}].read.{}", path.name));
                }
                key.push(self.reads.index(program, path, value, hidden));
            }
        }
        let outcomes = &mut self.outcomes;
        let known = if shared {
            outcomes.by_key.get(&**key).copied()
        } else {
            None
        };
        let id = match known {
            Some(id) => id,
            None => {
                let id = outcomes.len;
                outcomes.len += 1;
                if id > 0 {
                    outcomes.text.push(',');
                }
                write_verdict(&mut outcomes.text, cache, program, outcome, limited, true);
                outcomes.text.push_str(",\"read\":[");
                let reads = match outcome {
                    Ok((decision, _)) => key.get(2 + decision.reasons.len()..).unwrap_or_default(),
                    Err(_) => &[],
                };
                for (i, read) in reads.iter().enumerate() {
                    if i > 0 {
                        outcomes.text.push(',');
                    }
                    push_u64(&mut outcomes.text, u64::from(*read));
                }
                outcomes.text.push_str("]}");
                if shared {
                    outcomes.by_key.insert(key.clone(), id);
                }
                id
            }
        };
        if shared
            && !any_hidden
            && let Ok((decision, frame)) = outcome
        {
            outcomes.recent.remember(decision, frame, id);
        }
        push_u64(out, u64::from(id));
    }

    fn single(
        &mut self,
        cache: &mut Cache,
        program: &Program,
        outcome: Decided<'_>,
        limited: Option<&Refusal>,
    ) {
        let out = &mut self.out;
        out.push_str(",\"read\":{");
        if let Ok((_, frame)) = outcome {
            let mut first = true;
            for node in frame.reads() {
                let Some(path) = cache.path(program, *node) else {
                    continue;
                };
                let value = frame.result(*node);
                let hidden = is_hidden(path, value);
                if hidden {
                    self.masked.push(path.name.to_string());
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&path.key);
                out.push(':');
                write_read(out, program, path, value, hidden);
            }
        }
        out.push('}');
        write_verdict(out, cache, program, outcome, limited, false);
    }

    /// Decisions recorded so far.
    pub fn decisions(&self) -> u32 {
        self.decisions
    }

    /// Ends the record with the policy version and the latency (from the call's arrival to
    /// its last decision); `None` when it holds no decision.
    pub fn finish(mut self, policy_version: &str, latency_us: u64) -> Option<Record> {
        if let Some(cache) = self.cache.take() {
            give_cache(cache);
        }
        if self.decisions == 0 {
            return None;
        }
        let out = &mut self.out;
        if self.shape == Shape::Batch {
            if self.entries == 0 {
                out.push_str(",\"items\":[");
            }
            out.push_str("],\"outcomes\":[");
            out.push_str(&self.outcomes.text);
            out.push_str("],\"reads\":[");
            out.push_str(&self.reads.text);
            out.push(']');
        }
        out.push_str(",\"policy_version\":");
        json_string(out, policy_version);
        out.push_str(",\"latency_us\":");
        push_u64(out, latency_us);
        if !self.masked.is_empty() {
            self.masked.sort();
            self.masked.dedup();
            out.push_str(",\"masked\":[");
            for (i, path) in self.masked.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, path);
            }
            out.push(']');
        }
        Some(Record {
            body: self.out,
            decisions: self.decisions,
        })
    }
}

/// Writes `decision`, `rules`, `errors` (in a batch item, opening it, and `errors` only
/// when there are some) and `limited` when a limit refused what the policy allowed.
fn write_verdict(
    out: &mut String,
    cache: &Cache,
    program: &Program,
    outcome: Decided<'_>,
    limited: Option<&Refusal>,
    item: bool,
) {
    out.push_str(if item { "{" } else { "," });
    match outcome {
        Ok((decision, _)) => {
            out.push_str(if decision.allowed && limited.is_none() {
                "\"decision\":\"allow\",\"rules\":["
            } else {
                "\"decision\":\"deny\",\"rules\":["
            });
            for (i, id) in decision.reasons.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match cache.rules.get(id.index()) {
                    Some(quoted) => out.push_str(quoted),
                    None => json_string(out, "?"),
                }
            }
            out.push(']');
            if !item || !decision.errors.is_empty() {
                out.push_str(",\"errors\":[");
                for (i, line) in explain::error_lines(program, decision).iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, line);
                }
                out.push(']');
            }
            if let Some(refusal) = limited {
                write_limited(out, refusal);
            }
        }
        Err(message) => {
            out.push_str("\"decision\":\"deny\",\"rules\":[],\"errors\":[");
            json_string(out, message);
            out.push(']');
        }
    }
}

/// Writes `limited`: the policy allowed, limit `name` refused (`reached`, `no key` or
/// `unavailable`), and when to retry (when waiting helps). The refusal's message is left out:
/// it renders the limit's key, which may be a value the record masks.
fn write_limited(out: &mut String, refusal: &Refusal) {
    out.push_str(",\"limited\":{\"policy\":\"allow\",\"name\":");
    json_string(out, refusal.name());
    out.push_str(",\"refusal\":\"");
    out.push_str(match refusal {
        Refusal::Reached { .. } => "reached",
        Refusal::NoKey { .. } => "no key",
        Refusal::Unavailable { .. } => "unavailable",
    });
    out.push('"');
    if let Some(retry) = refusal.retry_after_secs() {
        out.push_str(",\"retry_after\":");
        push_u64(out, retry);
    }
    out.push('}');
}

/// The result of a read, as the frame holds it.
type ReadResult<'a> = Option<Result<&'a Value, &'a crate::eval::EvalError>>;

/// A read value that is never written: under a masked or token name, or a token itself.
fn is_hidden(path: &ReadPath, value: ReadResult<'_>) -> bool {
    match value {
        _ if path.hidden => true,
        Some(Ok(Value::Str(s))) => looks_like_token(s),
        _ => false,
    }
}

/// Writes a read value as a JSON string: as a policy would write it, or masked.
fn write_read(
    out: &mut String,
    program: &Program,
    path: &ReadPath,
    value: ReadResult<'_>,
    hidden: bool,
) {
    match value {
        _ if path.hidden => json_string(out, MASKED),
        Some(Ok(Value::Str(s))) if hidden => json_string(out, &shortened(s)),
        Some(Ok(value)) => write_value(out, program, value),
        Some(Err(error)) => json_string(
            out,
            &format!("error: {}", explain::error_message(program, error)),
        ),
        None => json_string(out, "not evaluated"),
    }
}

/// The entries of one node's values, by value, and the last one looked up.
#[derive(Debug)]
struct NodeValues {
    node: NodeId,
    /// Values a caller sent (a randomly keyed hash: see `LocalStore`'s map).
    entries: std::collections::HashMap<Value, u32>,
    last: Option<(Value, u32)>,
}

/// The distinct reads of a batch record, `["path","value"]` each: items of one call mostly
/// read the same values (their subject's attributes, shared resources), so each is written
/// once and items name them by index.
#[derive(Debug, Default)]
struct ReadTable {
    /// The table's members, comma-separated.
    text: String,
    len: u32,
    /// Entries of values written as they are, by node, then value (few nodes: a list), with
    /// the node's last entry (consecutive items mostly read the same).
    by_value: Vec<NodeValues>,
    /// Entries of everything else (errors, masked values) by node and text.
    by_text: std::collections::HashMap<(NodeId, String), u32>,
}

impl ReadTable {
    fn index(
        &mut self,
        program: &Program,
        path: &ReadPath,
        value: ReadResult<'_>,
        hidden: bool,
    ) -> u32 {
        if let (Some(Ok(value)), false) = (value, hidden) {
            let position = self.by_value.iter().position(|n| n.node == path.node);
            if let Some(values) = position.and_then(|at| self.by_value.get_mut(at)) {
                if let Some((seen, index)) = &values.last
                    && seen == value
                {
                    return *index;
                }
                if let Some(&found) = values.entries.get(value) {
                    values.last = Some((value.clone(), found));
                    return found;
                }
            }
            let index = self.push(program, path, Some(Ok(value)), false);
            let at = match position {
                Some(at) => at,
                None => {
                    self.by_value.push(NodeValues {
                        node: path.node,
                        entries: Default::default(),
                        last: None,
                    });
                    self.by_value.len() - 1
                }
            };
            if let Some(values) = self.by_value.get_mut(at) {
                values.entries.insert(value.clone(), index);
                values.last = Some((value.clone(), index));
            }
            return index;
        }
        let mut text = String::new();
        write_read(&mut text, program, path, value, hidden);
        let key = (path.node, text);
        if let Some(found) = self.by_text.get(&key) {
            return *found;
        }
        let index = self.push(program, path, value, hidden);
        self.by_text.insert(key, index);
        index
    }

    /// Adds an entry; returns its index.
    fn push(
        &mut self,
        program: &Program,
        path: &ReadPath,
        value: ReadResult<'_>,
        hidden: bool,
    ) -> u32 {
        if self.len > 0 {
            self.text.push(',');
        }
        self.text.push('[');
        self.text.push_str(&path.key);
        self.text.push(',');
        write_read(&mut self.text, program, path, value, hidden);
        self.text.push(']');
        self.len += 1;
        self.len - 1
    }
}

/// Writes `time` as RFC 3339 in UTC, as `jiff` displays it (fraction without trailing
/// zeros), without going through the formatter for every record: the part up to the second
/// is kept per thread.
fn push_time(out: &mut String, time: jiff::Timestamp) {
    thread_local! {
        static SECOND: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let (second, nanos) = (time.as_second(), time.subsec_nanosecond());
    if second < 0 || nanos < 0 {
        let _ = write!(out, "{time}");
        return;
    }
    SECOND.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => {
            if cached.0 != second {
                let whole = jiff::Timestamp::from_second(second).unwrap_or(time);
                let text = whole.to_string();
                cached.1 = text.trim_end_matches('Z').to_string();
                cached.0 = second;
            }
            out.push_str(&cached.1);
            if nanos > 0 {
                let mut digits = [b'0'; 9];
                let mut n = nanos.unsigned_abs();
                for slot in digits.iter_mut().rev() {
                    *slot = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
                out.push('.');
                push_ascii(out, digits.get(..len).unwrap_or_default());
            }
            out.push('Z');
        }
        Err(_) => {
            let _ = write!(out, "{time}");
        }
    });
}

/// A read's path, rendered once per program: its node, its JSON key, its name, and whether
/// its value is never written (a masked name or a token name in it).
#[derive(Debug)]
struct ReadPath {
    node: NodeId,
    key: Box<str>,
    name: Box<str>,
    hidden: bool,
}

/// What records of one program under one masking share, built once: read paths by node
/// (building one takes a few allocations, and a program has few) and rule ids as JSON.
#[derive(Debug, Default)]
struct Cache {
    serial: u64,
    masking: Vec<String>,
    paths: Vec<Option<Option<ReadPath>>>,
    /// Each rule's id as a JSON string, by rule.
    rules: Vec<Box<str>>,
}

impl Cache {
    fn prepare(&mut self, program: &Program, masking: &Masking) {
        if self.serial != program.serial || self.masking != masking.names || self.rules.is_empty() {
            self.serial = program.serial;
            self.masking.clone_from(&masking.names);
            self.paths.clear();
            self.rules = program
                .rules
                .iter()
                .map(|rule| {
                    let mut quoted = String::with_capacity(rule.id.len() + 2);
                    json_string(&mut quoted, &rule.id);
                    quoted.into_boxed_str()
                })
                .collect();
        }
    }

    fn path(&mut self, program: &Program, node: NodeId) -> Option<&ReadPath> {
        let index = node.index();
        if self.paths.len() <= index {
            self.paths.resize_with(index + 1, || None);
        }
        let names = &self.masking;
        let slot = self.paths.get_mut(index)?;
        if slot.is_none() {
            *slot = Some(read_path(program, node).map(|name| {
                let masks = |segment: &str| names.iter().any(|n| n.eq_ignore_ascii_case(segment));
                let hidden = name
                    .split(['.', ' '])
                    .any(|segment| masks(segment) || Masking::is_token_name(segment));
                let mut key = String::with_capacity(name.len() + 2);
                json_string(&mut key, &name);
                ReadPath {
                    node,
                    key: key.into_boxed_str(),
                    name: name.into_boxed_str(),
                    hidden,
                }
            }));
        }
        slot.as_ref()?.as_ref()
    }
}

thread_local! {
    static CACHE: std::cell::Cell<Option<Box<Cache>>> = const { std::cell::Cell::new(None) };
}

/// This thread's cache (a new one when another record holds it).
fn take_cache() -> Box<Cache> {
    CACHE.with(std::cell::Cell::take).unwrap_or_default()
}

/// Gives a cache back to this thread.
fn give_cache(cache: Box<Cache>) {
    CACHE.with(|cell| cell.set(Some(cache)));
}

/// Writes a read value as a JSON string holding what a policy would write
/// ([`explain::render_value`]); the common kinds without building it first.
fn write_value(out: &mut String, program: &Program, value: &Value) {
    /// Text that both the policy's and JSON's escaping leave as it is.
    fn plain(text: &str) -> bool {
        text.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    }
    match value {
        Value::Bool(true) => out.push_str("\"true\""),
        Value::Bool(false) => out.push_str("\"false\""),
        Value::Int(n) => {
            out.push('"');
            push_i64(out, *n);
            out.push('"');
        }
        Value::Str(s) if plain(s) => {
            out.push_str("\"\\\"");
            out.push_str(s);
            out.push_str("\\\"\"");
        }
        Value::Entity(entity) => {
            let uid = program.store.uid(entity);
            match uid {
                Some(uid) if plain(&uid.ty) && plain(&uid.id) => {
                    out.push('"');
                    out.push_str(&uid.ty);
                    out.push_str("::\\\"");
                    out.push_str(&uid.id);
                    out.push_str("\\\"\"");
                }
                _ => json_string(out, &explain::render_value(program, value)),
            }
        }
        other => json_string(out, &explain::render_value(program, other)),
    }
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    push_ascii(out, digits.get(at..).unwrap_or_default());
}

/// Appends bytes known to be ASCII (digits) with one copy.
fn push_ascii(out: &mut String, ascii: &[u8]) {
    out.push_str(std::str::from_utf8(ascii).unwrap_or_default());
}

fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Writes the request's JSON text: as it is when it was checked and is on one line; without
/// its whitespace when nothing in it needs masking (one pass, no parsing); else parsed and
/// masked. Text that is not JSON (never the case for a decided request) is written as
/// `null`.
fn write_request(
    out: &mut String,
    request: RequestText<'_>,
    masking: &Masking,
    masked: &mut Vec<String>,
) {
    let request = match request {
        RequestText::Checked(text) => {
            let bytes = text.as_bytes();
            if memchr::memchr2(b'\n', b'\r', bytes).is_none() {
                out.push_str(text);
                return;
            }
            text
        }
        RequestText::Unchecked(text) => text,
    };
    if copy_plain(out, request, masking) {
        return;
    }
    match serde_json::from_str::<JsonValue>(request) {
        Ok(value) => json_masked(out, &value, &mut String::new(), masking, masked),
        Err(_) => out.push_str("null"),
    }
}

/// Bytes that end a run outside strings: a quote, a backslash, whitespace.
const OUTSIDE: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b' ' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table[b'\t' as usize] = true;
    table
};

/// The lengths of [`TOKEN_NAMES`], as bits.
const TOKEN_LENGTHS: u64 = {
    let mut bits = 0u64;
    let mut i = 0;
    while i < TOKEN_NAMES.len() {
        bits |= 1 << TOKEN_NAMES[i].len();
        i += 1;
    }
    bits
};

/// Copies JSON text without its whitespace, in one pass and without parsing it. Gives up
/// (writing nothing) at a string that could need masking whether it is a key or a value (a
/// token name, a configured name, something that looks like a token) or that holds an
/// escape (which could spell either): the masking writer then decides, exactly.
fn copy_plain(out: &mut String, text: &str, masking: &Masking) -> bool {
    let start = out.len();
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let names = !masking.names.is_empty();
    // `run` is where the text not yet copied begins; `at` where the scan is.
    let mut run = 0;
    let mut at = 0;
    loop {
        while let Some(&byte) = bytes.get(at) {
            if OUTSIDE[usize::from(byte)] {
                break;
            }
            at += 1;
        }
        let Some(&byte) = bytes.get(at) else {
            break;
        };
        if byte != b'"' {
            if byte == b'\\' {
                out.truncate(start);
                return false;
            }
            out.push_str(text.get(run..at).unwrap_or_default());
            at += 1;
            run = at;
            continue;
        }
        let open = at + 1;
        let mut close = open;
        while let Some(&byte) = bytes.get(close) {
            if byte == b'"' || byte == b'\\' {
                break;
            }
            close += 1;
        }
        let content = bytes.get(open..close).unwrap_or_default();
        let suspect = bytes.get(close) != Some(&b'"')
            || (content.len() < 64
                && TOKEN_LENGTHS & (1 << content.len()) != 0
                && Masking::is_token_name_bytes(content))
            || (names && masking.masks_bytes(content))
            || looks_like_token_bytes(content);
        if suspect {
            out.truncate(start);
            return false;
        }
        at = close + 1;
    }
    out.push_str(text.get(run..).unwrap_or_default());
    true
}

/// `subject.department`, `resource.owner.email`, `context has mfa`: the path of an attribute,
/// property or context read. `None` for whole-record reads (the request holds those).
pub(crate) fn read_path(program: &Program, node: NodeId) -> Option<String> {
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
    // Most strings need no escape: one branch-free pass over the bytes says so, and they go
    // in with one copy.
    let needs_escape = text.as_bytes().iter().fold(false, |any, &byte| {
        any | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if !needs_escape {
        out.push_str(text);
        out.push('"');
        return;
    }
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
                if len > 0 {
                    path.push('.');
                }
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
mod tests;
