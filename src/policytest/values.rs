//! The values written in tests — `given` attributes, `with` records, `at` times — turned into
//! the JSON a data file or a caller would send, so that they are decoded by exactly the code
//! that decodes data files and requests.
//!
//! A test value is a literal: a boolean, an integer (`-3` included), a string, a duration
//! literal (`24h`), an entity (`User::"alice"`), a set, a record, or `time("…")`,
//! `duration("…")`, `ip("…")` and `decimal("…")` of a string. They become JSON booleans,
//! integers, strings, `{"type", "id"}` objects, arrays, objects and (for the four functions and
//! durations) strings: a `Time` attribute reads `"2026-03-02T10:00:00Z"` like a data file's, and where a
//! caller's value is dynamically typed (undeclared `context`), `ip("10.0.0.1")` arrives as the
//! string `"10.0.0.1"`, as it would from a real caller.

use serde_json::Value as JsonValue;

use crate::ast::{Expr, ExprKind, UnaryOp};
use crate::data::json::{Json, JsonKind};
use crate::data::value::format_duration;
use crate::source::Span;

/// Converts a test value to span-carrying JSON; `Err` is the span of the first part that is not
/// a literal.
pub fn to_json(expr: &Expr) -> Result<Json, Span> {
    let span = expr.span;
    let kind = match &expr.kind {
        ExprKind::Bool(b) => JsonKind::Bool(*b),
        ExprKind::Int(i) => JsonKind::Int(*i),
        ExprKind::Str(s) => JsonKind::String(s.clone()),
        ExprKind::Duration(ms) => JsonKind::String(duration_text(*ms)),
        ExprKind::Entity { ty, id } => entity(&ty.name, id, ty.span, span).kind,
        ExprKind::Set(items) => {
            JsonKind::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        ExprKind::Record(entries) => JsonKind::Object(
            entries
                .iter()
                .map(|(name, value)| Ok((name.text.clone(), name.span, to_json(value)?)))
                .collect::<Result<_, Span>>()?,
        ),
        ExprKind::Call { function, args }
            if matches!(
                function.name.as_str(),
                "time" | "duration" | "ip" | "decimal"
            ) =>
        {
            match args.as_slice() {
                [
                    Expr {
                        kind: ExprKind::Str(text),
                        ..
                    },
                ] => JsonKind::String(text.clone()),
                _ => return Err(span),
            }
        }
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => match &operand.kind {
            ExprKind::Int(i) => JsonKind::Int(i.checked_neg().ok_or(span)?),
            ExprKind::Duration(ms) => {
                JsonKind::String(duration_text(ms.checked_neg().ok_or(span)?))
            }
            _ => return Err(span),
        },
        _ => return Err(span),
    };
    Ok(Json { kind, span })
}

/// `{"type": ty, "id": id}`, located at `span`.
pub fn entity(ty: &str, id: &str, type_span: Span, span: Span) -> Json {
    Json {
        kind: JsonKind::Object(vec![
            (
                "type".to_string(),
                type_span,
                Json {
                    kind: JsonKind::String(ty.to_string()),
                    span: type_span,
                },
            ),
            (
                "id".to_string(),
                span,
                Json {
                    kind: JsonKind::String(id.to_string()),
                    span,
                },
            ),
        ]),
        span,
    }
}

fn duration_text(ms: i64) -> String {
    format_duration(jiff::SignedDuration::from_millis(ms))
}

/// The same JSON as serde's, for the request decoder (which reads what callers send).
pub(crate) fn to_serde(json: &Json) -> JsonValue {
    match &json.kind {
        JsonKind::Null => JsonValue::Null,
        JsonKind::Bool(b) => JsonValue::Bool(*b),
        JsonKind::Int(i) => JsonValue::from(*i),
        // Never produced from a test value; kept as text rather than guessed at.
        JsonKind::OtherNumber(n) => JsonValue::String(n.clone()),
        JsonKind::String(s) => JsonValue::String(s.clone()),
        JsonKind::Array(items) => JsonValue::Array(items.iter().map(to_serde).collect()),
        JsonKind::Object(members) => JsonValue::Object(
            members
                .iter()
                .map(|(key, _, value)| (key.clone(), to_serde(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use serde_json::json;

    fn value(text: &str) -> Result<JsonValue, String> {
        let source =
            format!("test \"t\" {{ allow User::\"a\" view Doc::\"d\" with context {text} }}");
        let (parsed, problems) = crate::syntax::parse(&SourceFile::new("t.warden", source));
        assert!(problems.is_empty(), "{problems:?}");
        let Some(crate::ast::Item::Test(test)) = parsed.ast.items.first() else {
            return Err("no test".to_string());
        };
        let Some(crate::ast::TestStatement::Expect(expect)) = test.statements.first() else {
            return Err("no expectation".to_string());
        };
        let Some(crate::ast::WithClause::Context(record)) = expect.with.first() else {
            return Err("no context".to_string());
        };
        to_json(record)
            .map(|json| to_serde(&json))
            .map_err(|span| parsed.source.slice(span).to_string())
    }

    #[test]
    fn literals_become_the_json_a_caller_would_send() {
        assert_eq!(
            value(
                r#"{ a: true, b: -3, c: "x", d: 1h30m, e: User::"alice", f: [1, 2], g: { h: time("2026-03-02T10:00:00Z") }, i: ip("10.0.0.0/8"), j: duration("2h"), k: -5m }"#
            ),
            Ok(json!({
                "a": true, "b": -3, "c": "x", "d": "1h30m",
                "e": {"type": "User", "id": "alice"}, "f": [1, 2],
                "g": {"h": "2026-03-02T10:00:00Z"}, "i": "10.0.0.0/8", "j": "2h", "k": "-5m"
            }))
        );
    }

    #[test]
    fn anything_computed_is_refused_at_its_span() {
        assert_eq!(value("{ a: 1 + 2 }"), Err("1 + 2".to_string()));
        assert_eq!(value("{ a: now() }"), Err("now()".to_string()));
        assert_eq!(value("{ a: [1, not true] }"), Err("not true".to_string()));
    }
}
