//! Typed decoding: JSON values read through the declarations, for data files and requests.
//!
//! An entity-typed value accepts `"id"` (the type comes from the declaration) or
//! `{"type", "id"}`; times (RFC 3339 with an offset), durations (`"1h30m"`) and IP addresses
//! (`"10.0.0.1"`, `"10.0.0.0/8"`) come from strings; integers are i64; `null` means absent.

use std::sync::Arc;

use crate::check::schema::{RecordType, Type};
use crate::data::json::{Json, JsonKind};
use crate::data::value::{EntityRef, Value};
use crate::source::Span;
use crate::syntax::decimal::parse_decimal;

/// Turns entity names and strings into values; data files and requests resolve differently.
pub trait Resolver {
    /// The entity `ty::id`, as a value.
    fn entity(&mut self, ty: &str, id: &str) -> EntityRef;
    /// A shared string.
    fn string(&mut self, text: &str) -> Arc<str>;
}

/// A value that does not match its declared type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the document, as a JSON path (`$.entities[2].attributes.email`).
    pub path: String,
    pub message: String,
    pub help: Option<String>,
    pub span: Span,
}

/// What to do with members a record type does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Data files: an undeclared attribute is a mistake (probably a typo).
    Reject,
    /// Requests: callers may send more than the policy reads.
    Ignore,
}

pub struct Decoder<'r, R: Resolver> {
    pub resolver: &'r mut R,
    pub unknown: Unknown,
}

/// Where a value lies, written out only when an error names it (most values decode without
/// one, and building every member's path was most of the cost of decoding a request).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(path) => (*path).to_string(),
            Path::Member(parent, name) => join_path(&parent.render(), name),
            Path::Index(parent, index) => format!("{}[{index}]", parent.render()),
        }
    }
}

/// Where a decoding error goes: requests stop at the first (`None`); data files gather every
/// one (`Some`), so an author fixes a whole entity in one round, and decoding goes on past it.
struct Gather<'e>(Option<&'e mut Vec<DecodeError>>);

impl Gather<'_> {
    /// `Ok(None)` when the error was gathered and decoding goes on without the value.
    fn keep(&mut self, result: Result<Value, DecodeError>) -> Result<Option<Value>, DecodeError> {
        match (result, &mut self.0) {
            (Ok(value), _) => Ok(Some(value)),
            (Err(error), Some(errors)) => {
                errors.push(error);
                Ok(None)
            }
            (Err(error), None) => Err(error),
        }
    }
}

impl<R: Resolver> Decoder<'_, R> {
    pub fn decode(&mut self, json: &Json, ty: &Type, path: &str) -> Result<Value, DecodeError> {
        self.decode_at(json, ty, &Path::Root(path), &mut Gather(None))
    }

    /// Like [`Decoder::decode`], but every mistake in `json` is reported, not only the first.
    pub fn decode_all(
        &mut self,
        json: &Json,
        ty: &Type,
        path: &str,
    ) -> Result<Value, Vec<DecodeError>> {
        let mut errors = Vec::new();
        let result = self.decode_at(json, ty, &Path::Root(path), &mut Gather(Some(&mut errors)));
        all_or_first(result, errors)
    }

    /// Like [`Decoder::record`], but every mistake in `json` is reported, not only the first.
    pub fn record_all(
        &mut self,
        json: &Json,
        record: &RecordType,
        path: &str,
    ) -> Result<Value, Vec<DecodeError>> {
        let mut errors = Vec::new();
        let result = self.record_at(
            json,
            record,
            &Path::Root(path),
            &mut Gather(Some(&mut errors)),
        );
        all_or_first(result, errors)
    }

    fn decode_at(
        &mut self,
        json: &Json,
        ty: &Type,
        path: &Path<'_>,
        gather: &mut Gather<'_>,
    ) -> Result<Value, DecodeError> {
        let fail = |message: String, help: Option<String>| DecodeError {
            path: path.render(),
            message,
            help,
            span: json.span,
        };
        let mismatch = |expected: &str| {
            fail(
                format!("expected {expected}, found {}", describe(json)),
                None,
            )
        };
        match (ty, &json.kind) {
            (_, JsonKind::Null) => Err(fail(
                "`null` where a value is required".to_string(),
                Some("`null` means absent: declare the attribute optional (`name?: Type`) or leave it out".to_string()),
            )),
            (Type::Bool, JsonKind::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::Bool, _) => Err(mismatch("a boolean")),
            (Type::Int, JsonKind::Int(i)) => Ok(Value::Int(*i)),
            (Type::Int, JsonKind::OtherNumber(n)) => Err(fail(
                format!("`{n}` is not a 64-bit integer"),
                Some("integers are whole numbers from -9223372036854775808 to 9223372036854775807; there are no floats".to_string()),
            )),
            (Type::Int, _) => Err(mismatch("an integer")),
            (Type::String, JsonKind::String(s)) => Ok(Value::Str(self.resolver.string(s))),
            (Type::String, _) => Err(mismatch("a string")),
            (Type::Time, JsonKind::String(s)) => parse_time(s).map(Value::Time).map_err(|bad| {
                fail(
                    bad.to_string(),
                    Some("write times in RFC 3339 with an offset, e.g. `2026-03-01T09:30:00Z` or `2026-03-01T10:30:00+01:00`".to_string()),
                )
            }),
            (Type::Time, _) => Err(mismatch("a time (an RFC 3339 string)")),
            (Type::Duration, JsonKind::String(s)) => parse_duration(s).map(Value::Duration).ok_or_else(|| {
                fail(
                    format!("`{s}` is not a duration"),
                    Some("write durations like `24h`, `90m`, `1h30m`, `500ms` or `7d`".to_string()),
                )
            }),
            (Type::Duration, _) => Err(mismatch("a duration (a string such as `\"24h\"`)")),
            (Type::Ip, JsonKind::String(s)) => parse_ip(s).map(Value::Ip).ok_or_else(|| {
                fail(
                    format!("`{s}` is not an IP address or range"),
                    Some("write `10.0.0.1`, `10.0.0.0/8`, `::1` or `2001:db8::/32`".to_string()),
                )
            }),
            (Type::Ip, _) => Err(mismatch("an IP address (a string)")),
            (Type::Decimal, JsonKind::String(_) | JsonKind::Object(_)) => {
                let text = match &json.kind {
                    JsonKind::String(s) => Some(s.as_str()),
                    _ => decimal_extension(json),
                };
                let Some(text) = text else {
                    return Err(mismatch(DECIMAL_FORMS));
                };
                parse_decimal(text).map(Value::Decimal).map_err(|error| {
                    fail(
                        format!("`{text}` is not a decimal: {error}"),
                        Some("write digits, a point and one to four digits: `\"1.5\"`, `\"-0.25\"`".to_string()),
                    )
                })
            }
            (Type::Decimal, _) => Err(mismatch(DECIMAL_FORMS)),
            (Type::Entity(expected), JsonKind::String(id)) => {
                Ok(Value::Entity(self.resolver.entity(expected, id)))
            }
            (Type::Entity(expected), JsonKind::Object(_)) => {
                let (ty, id) = entity_object_at(json, path)?;
                if ty != expected.as_str() {
                    return Err(fail(
                        format!("expected an entity of type `{expected}`, found `{ty}`"),
                        None,
                    ));
                }
                Ok(Value::Entity(self.resolver.entity(ty, id)))
            }
            (Type::Entity(expected), _) => Err(mismatch(&format!(
                "an entity of type `{expected}` (`\"id\"` or `{{\"type\": \"{expected}\", \"id\": …}}`)"
            ))),
            (Type::AnyEntity, JsonKind::Object(_)) => {
                let (ty, id) = entity_object_at(json, path)?;
                Ok(Value::Entity(self.resolver.entity(ty, id)))
            }
            (Type::AnyEntity, _) => Err(mismatch("an entity (`{\"type\": …, \"id\": …}`)")),
            (Type::Set(element), JsonKind::Array(items)) => {
                let mut members = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let member = self.decode_at(item, element, &Path::Index(path, index), gather);
                    members.extend(gather.keep(member)?);
                }
                Ok(Value::set(members))
            }
            (Type::Set(_), _) => Err(mismatch("an array")),
            (Type::Record(record), JsonKind::Object(_)) => {
                self.record_at(json, record, path, gather)
            }
            (Type::Record(_), _) => Err(mismatch("an object")),
            (Type::Dynamic, _) => self.dynamic(json, path, gather),
        }
    }

    /// Decodes an object through a record type.
    pub fn record(
        &mut self,
        json: &Json,
        record: &RecordType,
        path: &str,
    ) -> Result<Value, DecodeError> {
        self.record_at(json, record, &Path::Root(path), &mut Gather(None))
    }

    fn record_at(
        &mut self,
        json: &Json,
        record: &RecordType,
        path: &Path<'_>,
        gather: &mut Gather<'_>,
    ) -> Result<Value, DecodeError> {
        let JsonKind::Object(members) = &json.kind else {
            return Err(DecodeError {
                path: path.render(),
                message: format!("expected an object, found {}", describe(json)),
                help: None,
                span: json.span,
            });
        };
        let mut fields = Vec::with_capacity(record.fields.len());
        for (name, key_span, value) in members {
            let member_path = Path::Member(path, name);
            match record.fields.get(name) {
                Some(_) if matches!(value.kind, JsonKind::Null) => {}
                Some(field) => {
                    let decoded = self.decode_at(value, &field.ty, &member_path, gather);
                    if let Some(decoded) = gather.keep(decoded)? {
                        fields.push((self.resolver.string(name), decoded));
                    }
                }
                None if self.unknown == Unknown::Ignore => {}
                None => {
                    let suggestion =
                        crate::source::suggest(name, record.fields.keys().map(String::as_str));
                    gather.keep(Err(DecodeError {
                        path: member_path.render(),
                        message: format!("unknown attribute `{name}`"),
                        help: Some(match suggestion {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "declare it in the entity type, or remove it".to_string(),
                        }),
                        span: *key_span,
                    }))?;
                }
            }
        }
        for (name, field) in &record.fields {
            let present = members
                .iter()
                .any(|(k, _, v)| k == name && !matches!(v.kind, JsonKind::Null));
            if !field.optional && !present {
                gather.keep(Err(DecodeError {
                    path: path.render(),
                    message: format!("missing attribute `{name}`"),
                    help: Some(format!(
                        "add `\"{name}\"` ({}), or declare it optional with `{name}?:`",
                        field.ty.describe()
                    )),
                    span: json.span,
                }))?;
            }
        }
        Ok(Value::record(fields))
    }

    /// Without a declaration: strings stay strings, `{"type","id"}` is an entity, objects are
    /// records, arrays are sets.
    fn dynamic(
        &mut self,
        json: &Json,
        path: &Path<'_>,
        gather: &mut Gather<'_>,
    ) -> Result<Value, DecodeError> {
        match &json.kind {
            JsonKind::Null => Err(DecodeError {
                path: path.render(),
                message: "`null` where a value is required".to_string(),
                help: Some("`null` means absent: leave the member out".to_string()),
                span: json.span,
            }),
            JsonKind::Bool(b) => Ok(Value::Bool(*b)),
            JsonKind::Int(i) => Ok(Value::Int(*i)),
            JsonKind::OtherNumber(n) => Err(DecodeError {
                path: path.render(),
                message: format!("`{n}` is not a 64-bit integer"),
                help: Some(
                    "integers are whole numbers that fit in 64 bits; there are no floats"
                        .to_string(),
                ),
                span: json.span,
            }),
            JsonKind::String(s) => Ok(Value::Str(self.resolver.string(s))),
            JsonKind::Array(items) => {
                let mut members = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let member = self.dynamic(item, &Path::Index(path, index), gather);
                    members.extend(gather.keep(member)?);
                }
                Ok(Value::set(members))
            }
            JsonKind::Object(members) => {
                if is_entity_object(members) {
                    let (ty, id) = entity_object_at(json, path)?;
                    return Ok(Value::Entity(self.resolver.entity(ty, id)));
                }
                let mut fields = Vec::with_capacity(members.len());
                for (name, _, value) in members {
                    if matches!(value.kind, JsonKind::Null) {
                        continue;
                    }
                    let decoded = self.dynamic(value, &Path::Member(path, name), gather);
                    if let Some(decoded) = gather.keep(decoded)? {
                        fields.push((self.resolver.string(name), decoded));
                    }
                }
                Ok(Value::record(fields))
            }
        }
    }
}

/// The gathered errors, or the one that stopped decoding (a value of the wrong kind at the top).
fn all_or_first(
    result: Result<Value, DecodeError>,
    mut errors: Vec<DecodeError>,
) -> Result<Value, Vec<DecodeError>> {
    match result {
        Ok(value) if errors.is_empty() => Ok(value),
        Ok(_) => Err(errors),
        Err(error) => {
            errors.push(error);
            Err(errors)
        }
    }
}

/// What a decimal is written as, for messages.
const DECIMAL_FORMS: &str = "a decimal (a string such as `\"1.25\"`, or Cedar's `{\"__extn\": {\"fn\": \"decimal\", \"arg\": \"1.25\"}}`)";

/// The text of Cedar's `{"__extn": {"fn": "decimal", "arg": "1.25"}}`, nothing else beside it.
fn decimal_extension(json: &Json) -> Option<&str> {
    let JsonKind::Object(members) = &json.kind else {
        return None;
    };
    let [(key, _, extension)] = members.as_slice() else {
        return None;
    };
    let JsonKind::Object(parts) = &extension.kind else {
        return None;
    };
    let string = |name: &str| match extension.get(name).map(|v| &v.kind) {
        Some(JsonKind::String(s)) => Some(s.as_str()),
        _ => None,
    };
    (key == "__extn" && parts.len() == 2 && string("fn") == Some("decimal"))
        .then(|| string("arg"))
        .flatten()
}

fn is_entity_object(members: &[(String, Span, Json)]) -> bool {
    members.len() == 2
        && members
            .iter()
            .all(|(k, _, v)| (k == "type" || k == "id") && matches!(v.kind, JsonKind::String(_)))
}

/// Reads `{"type": "...", "id": "..."}`.
pub fn entity_object<'j>(json: &'j Json, path: &str) -> Result<(&'j str, &'j str), DecodeError> {
    entity_object_at(json, &Path::Root(path))
}

fn entity_object_at<'j>(
    json: &'j Json,
    path: &Path<'_>,
) -> Result<(&'j str, &'j str), DecodeError> {
    let string_member = |key: &str| match json.get(key).map(|v| &v.kind) {
        Some(JsonKind::String(s)) => Some(s.as_str()),
        _ => None,
    };
    match (string_member("type"), string_member("id")) {
        (Some(ty), Some(id)) => Ok((ty, id)),
        _ => Err(DecodeError {
            path: path.render(),
            message: "an entity needs string members `type` and `id`".to_string(),
            help: Some("write `{\"type\": \"User\", \"id\": \"alice\"}`".to_string()),
            span: json.span,
        }),
    }
}

pub fn describe(json: &Json) -> String {
    match &json.kind {
        JsonKind::String(s) => format!("the string `\"{}\"`", truncate(s)),
        JsonKind::Int(i) => format!("the number `{i}`"),
        JsonKind::OtherNumber(n) => format!("the number `{n}`"),
        JsonKind::Bool(b) => format!("`{b}`"),
        other => other.describe().to_string(),
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() > 40 {
        let head: String = text.chars().take(40).collect();
        format!("{head}…")
    } else {
        text.to_string()
    }
}

pub fn join_path(path: &str, name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty() {
        format!("{path}.{name}")
    } else {
        format!("{path}[{name:?}]")
    }
}

/// A text that is not an RFC 3339 time with an offset.
#[derive(Clone, Debug, thiserror::Error)]
#[error("`{text}` is not a time with an offset: {reason}")]
pub struct BadTime {
    text: String,
    reason: jiff::Error,
}

/// RFC 3339 with an offset (`Z` or `+01:00`); a time without one is ambiguous and refused.
pub fn parse_time(text: &str) -> Result<jiff::Timestamp, BadTime> {
    text.parse::<jiff::Timestamp>().map_err(|reason| BadTime {
        text: text.to_string(),
        reason,
    })
}

/// `24h`, `1h30m`, `500ms`, `-2d` (the policy literal syntax, optionally negative).
pub fn parse_duration(text: &str) -> Option<jiff::SignedDuration> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let millis = crate::syntax::token::parse_duration_literal(digits)?;
    let millis = if negative {
        millis.checked_neg()?
    } else {
        millis
    };
    Some(jiff::SignedDuration::from_millis(millis))
}

/// An address (a range of one) or a CIDR range.
pub fn parse_ip(text: &str) -> Option<ipnet::IpNet> {
    if text.contains('/') {
        text.parse::<ipnet::IpNet>().ok()
    } else {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    }
}
