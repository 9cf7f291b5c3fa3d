//! Why a decision came out as it did: the deciding rules, and for every candidate rule whether
//! it held, which condition was false, or what failed. Built after the fact from the frame's
//! memo, so explaining costs nothing when nobody asks.

use serde::Serialize;

use crate::data::value::{EntityRef, Kind, Value, format_duration, format_ip};
use crate::eval::{Decision, EvalError, Frame};
use crate::program::ops::ErrorKind;
use crate::program::{Effect, Program, Rule, RuleId};
use crate::syntax::decimal::decimal_text;

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub decision: &'static str,
    /// The rules that decided: every deny that held, else every allow that held.
    pub reasons: Vec<RuleSummary>,
    /// Every rule the request could have matched, and what became of it.
    pub candidates: Vec<CandidateOutcome>,
    /// Every rule whose condition failed to evaluate.
    pub errors: Vec<RuleFailure>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuleSummary {
    pub id: String,
    pub effect: &'static str,
    pub location: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CandidateOutcome {
    #[serde(flatten)]
    pub rule: RuleSummary,
    /// `held`, `false` or `error`.
    pub outcome: &'static str,
    /// For `false` and `error`: the condition (as written) that was false or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `false`: the condition is an `unless`, and it was true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unless: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuleFailure {
    #[serde(flatten)]
    pub rule: RuleSummary,
    pub message: String,
}

pub fn summary(program: &Program, rule: &Rule) -> RuleSummary {
    RuleSummary {
        id: rule.id.to_string(),
        effect: match rule.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        },
        location: program.rule_location(rule),
    }
}

/// Explains `decision`, which must be the last one decided in `frame`.
pub fn explain(program: &Program, frame: &Frame, decision: &Decision) -> Explanation {
    let reasons = decision
        .reasons
        .iter()
        .filter_map(|id| program.rule(*id))
        .map(|rule| summary(program, rule))
        .collect();
    let mut candidates = Vec::new();
    for id in frame.candidates() {
        let Some(rule) = program.rule(*id) else {
            continue;
        };
        candidates.push(outcome(program, frame, *id, rule, decision));
    }
    let errors = decision
        .errors
        .iter()
        .filter_map(|failure| {
            let rule = program.rule(failure.rule)?;
            Some(RuleFailure {
                rule: summary(program, rule),
                message: error_message(program, &failure.error),
            })
        })
        .collect();
    Explanation {
        decision: if decision.allowed { "allow" } else { "deny" },
        reasons,
        candidates,
        errors,
    }
}

fn outcome(
    program: &Program,
    frame: &Frame,
    id: RuleId,
    rule: &Rule,
    decision: &Decision,
) -> CandidateOutcome {
    if let Some(failure) = decision.errors.iter().find(|e| e.rule == id) {
        let condition = rule
            .conjuncts
            .iter()
            .find(|(node, _)| matches!(frame.result(*node), Some(Err(_))))
            .map(|(_, span)| program.source_text(rule.file, *span).to_string());
        return CandidateOutcome {
            rule: summary(program, rule),
            outcome: "error",
            condition,
            message: Some(error_message(program, &failure.error)),
            unless: false,
        };
    }
    // A condition of several conjuncts is decided from them (the `and`s joining them are not
    // evaluated): it held when every conjunct was true.
    let true_in_frame = |node| matches!(frame.result(node), Some(Ok(Value::Bool(true))));
    let held = true_in_frame(rule.condition)
        || (rule.conjuncts.len() > 1
            && rule.conjuncts.iter().all(|(node, _)| true_in_frame(*node)));
    if held {
        return CandidateOutcome {
            rule: summary(program, rule),
            outcome: "held",
            condition: None,
            message: None,
            unless: false,
        };
    }
    // The first conjunct that was not true is the one that made the rule false.
    let condition = rule
        .conjuncts
        .iter()
        .find(|(node, _)| !matches!(frame.result(*node), Some(Ok(Value::Bool(true)))))
        .map(|(_, span)| program.source_text(rule.file, *span).to_string());
    CandidateOutcome {
        rule: summary(program, rule),
        outcome: "false",
        condition,
        message: None,
        unless: rule.unless,
    }
}

/// A sentence for a runtime error.
/// One line for people: which rules decided (`allowed by owner`, `denied: no rule allows ...`).
pub(crate) fn verdict_line(program: &Program, decision: &Decision) -> String {
    let ids: Vec<&str> = decision
        .reasons
        .iter()
        .filter_map(|id| program.rule(*id))
        .map(|rule| &*rule.id)
        .collect();
    if decision.allowed {
        format!("allowed by {}", ids.join(", "))
    } else if ids.is_empty() {
        "denied: no rule allows this request (default deny)".to_string()
    } else {
        format!("denied by {}", ids.join(", "))
    }
}

pub(crate) fn error_message(program: &Program, error: &EvalError) -> String {
    match &error.kind {
        ErrorKind::Mismatch { op, left, right } => {
            format!(
                "`{op}` cannot combine {} with {}",
                kind_name(*left),
                kind_name(*right)
            )
        }
        ErrorKind::Operand {
            op,
            expected,
            found,
        } => {
            format!("`{op}` expects {expected}, found {}", kind_name(*found))
        }
        ErrorKind::Overflow { op } => format!("integer overflow in `{op}`"),
        ErrorKind::MissingAttribute { name } => {
            format!("attribute `{name}` is absent (guard the read with `has {name}`)")
        }
        ErrorKind::NotStored { entity, name } => {
            format!(
                "{} is not in the entity store, so it has no attribute `{name}`",
                entity_name(program, entity)
            )
        }
        ErrorKind::ActionValue => {
            "`action` has no value of its own; read `action.properties`".to_string()
        }
        ErrorKind::Request => "the request could not be decoded".to_string(),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "a Bool",
        Kind::Int => "an Int",
        Kind::String => "a String",
        Kind::Time => "a Time",
        Kind::Duration => "a Duration",
        Kind::Ip => "an Ip",
        Kind::Decimal => "a Decimal",
        other => other.name(),
    }
}

/// `User::"alice"`.
pub(crate) fn entity_name(program: &Program, entity: &EntityRef) -> String {
    match entity {
        EntityRef::Known(id) => program
            .store
            .entity(*id)
            .map_or_else(|| "an entity".to_string(), |e| format!("`{}`", e.uid)),
        EntityRef::Unknown(uid) => format!("`{uid}`"),
    }
}

/// A value as a policy would write it.
pub(crate) fn render_value(program: &Program, value: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, program, value);
    out
}

/// Appends a value as a policy would write it ([`render_value`]); entities and strings
/// without anything to escape are written without an allocation of their own (a rate limit
/// renders its key on every counted request).
pub(crate) fn push_value(out: &mut String, program: &Program, value: &Value) {
    /// Text that the policy's escaping leaves as it is.
    fn plain(text: &str) -> bool {
        text.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    }
    let push_quoted = |out: &mut String, text: &str| {
        out.push('"');
        if plain(text) {
            out.push_str(text);
        } else {
            out.push_str(&crate::syntax::token::escape(text));
        }
        out.push('"');
    };
    match value {
        Value::Str(s) => push_quoted(out, s),
        Value::Entity(entity) => {
            let uid = program.store.uid(entity);
            match uid {
                Some(uid) => {
                    out.push_str(&uid.ty);
                    out.push_str("::");
                    push_quoted(out, &uid.id);
                }
                None => out.push_str("an entity"),
            }
        }
        other => out.push_str(&render_other(program, other)),
    }
}

fn render_other(program: &Program, value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Time(t) => format!("time(\"{t}\")"),
        Value::Duration(d) => format_duration(*d),
        Value::Ip(ip) => format!("ip(\"{}\")", format_ip(ip)),
        Value::Decimal(d) => format!("decimal(\"{}\")", decimal_text(*d)),
        Value::Str(_) | Value::Entity(_) => render_value(program, value),
        Value::Set(members) => {
            let inner: Vec<String> = members.iter().map(|m| render_value(program, m)).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Record(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", field_name(k), render_value(program, v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

/// A record's field name as a policy writes it: bare when it is an identifier, else quoted,
/// so that no name can pass for the punctuation between fields (a limit's key is hashed from
/// this text).
fn field_name(name: &str) -> std::borrow::Cow<'_, str> {
    if crate::syntax::fmt::is_identifier(name) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("\"{}\"", crate::syntax::token::escape(name)))
    }
}

/// Human-readable lines for `warden eval --explain`.
pub(crate) fn render_human(explanation: &Explanation) -> String {
    let mut out = String::new();
    out.push_str(&format!("decision: {}\n", explanation.decision));
    if explanation.reasons.is_empty() {
        out.push_str("decided by: no rule held (default deny)\n");
    } else {
        out.push_str("decided by:\n");
        for reason in &explanation.reasons {
            out.push_str(&format!(
                "  {} {} ({})\n",
                reason.effect, reason.id, reason.location
            ));
        }
    }
    if !explanation.candidates.is_empty() {
        out.push_str("candidates:\n");
        for candidate in &explanation.candidates {
            out.push_str(&format!("  {}\n", candidate_line(candidate)));
        }
    }
    out
}

/// `allow owner (policies/rules.warden:9:1): false at `resource.owner == subject``.
pub(crate) fn candidate_line(candidate: &CandidateOutcome) -> String {
    let rule = &candidate.rule;
    let mut line = format!(
        "{} {} ({}): {}",
        rule.effect, rule.id, rule.location, candidate.outcome
    );
    match &candidate.condition {
        // `unless c` is false because `c` was true: "false at `c`" would say the opposite.
        Some(condition) if candidate.unless => {
            line.push_str(&format!(", as `{condition}` is true (`unless`)"));
        }
        Some(condition) => line.push_str(&format!(" at `{condition}`")),
        None => {}
    }
    if let Some(message) = &candidate.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

/// One `rule-id: message` line per rule whose condition failed.
pub(crate) fn error_lines(program: &Program, decision: &Decision) -> Vec<String> {
    decision
        .errors
        .iter()
        .filter_map(|failure| {
            let rule = program.rule(failure.rule)?;
            Some(format!(
                "{}: {}",
                rule.id,
                error_message(program, &failure.error)
            ))
        })
        .collect()
}
