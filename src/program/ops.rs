//! The operations on values, shared by the compiler (constant folding) and the evaluator, so a
//! folded constant always equals what evaluation would have computed.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::data::store::Store;
use crate::data::value::{EntityRef, Kind, Value, field_of};
use crate::program::{CalendarField, Compare, IpTest, Pattern};

/// Why an expression has no value. Small and allocation-free: messages are made on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Two operands of kinds the operator does not combine (`"a" == 1`, `1 < "b"`).
    Mismatch {
        op: &'static str,
        left: Kind,
        right: Kind,
    },
    /// An operand of a kind the operator does not take (`not 3`, `- "x"`).
    Operand {
        op: &'static str,
        expected: &'static str,
        found: Kind,
    },
    Overflow {
        op: &'static str,
    },
    /// `e.name` where `e` has no such attribute (absent values are errors: guard with `has`).
    MissingAttribute {
        name: Arc<str>,
    },
    /// `e.name` where `e` is an entity the store does not hold.
    NotStored {
        entity: EntityRef,
        name: Arc<str>,
    },
    /// Bare `action` used as a value.
    ActionValue,
    /// A value decoded from the request did not fit (reported as the request's error).
    Request,
}

pub(crate) type OpResult<T> = Result<T, ErrorKind>;

pub fn compare(op: Compare, left: &Value, right: &Value) -> OpResult<bool> {
    let mismatch = || ErrorKind::Mismatch {
        op: op.symbol(),
        left: left.kind(),
        right: right.kind(),
    };
    match op {
        Compare::Eq | Compare::Ne => {
            // The common case, two entities the program knows: equal when their ids are.
            if let (Value::Entity(EntityRef::Known(a)), Value::Entity(EntityRef::Known(b))) =
                (left, right)
            {
                return Ok((a == b) == (op == Compare::Eq));
            }
            if left.kind() != right.kind() {
                return Err(mismatch());
            }
            let equal = left == right;
            Ok(if op == Compare::Eq { equal } else { !equal })
        }
        Compare::Lt | Compare::Le | Compare::Gt | Compare::Ge => {
            let order = match (left, right) {
                (Value::Int(a), Value::Int(b)) => a.cmp(b),
                (Value::Time(a), Value::Time(b)) => a.cmp(b),
                (Value::Duration(a), Value::Duration(b)) => a.cmp(b),
                (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
                _ => return Err(mismatch()),
            };
            Ok(match op {
                Compare::Lt => order.is_lt(),
                Compare::Le => order.is_le(),
                Compare::Gt => order.is_gt(),
                _ => order.is_ge(),
            })
        }
    }
}

pub fn add(left: &Value, right: &Value) -> OpResult<Value> {
    let overflow = ErrorKind::Overflow { op: "+" };
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => a.checked_add(*b).map(Value::Int).ok_or(overflow),
        (Value::Time(t), Value::Duration(d)) | (Value::Duration(d), Value::Time(t)) => {
            t.checked_add(*d).map(Value::Time).map_err(|_| overflow)
        }
        (Value::Duration(a), Value::Duration(b)) => {
            a.checked_add(*b).map(Value::Duration).ok_or(overflow)
        }
        _ => Err(ErrorKind::Mismatch {
            op: "+",
            left: left.kind(),
            right: right.kind(),
        }),
    }
}

pub fn sub(left: &Value, right: &Value) -> OpResult<Value> {
    let overflow = ErrorKind::Overflow { op: "-" };
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => a.checked_sub(*b).map(Value::Int).ok_or(overflow),
        (Value::Time(t), Value::Duration(d)) => {
            t.checked_sub(*d).map(Value::Time).map_err(|_| overflow)
        }
        (Value::Time(a), Value::Time(b)) => Ok(Value::Duration(a.duration_since(*b))),
        (Value::Duration(a), Value::Duration(b)) => {
            a.checked_sub(*b).map(Value::Duration).ok_or(overflow)
        }
        _ => Err(ErrorKind::Mismatch {
            op: "-",
            left: left.kind(),
            right: right.kind(),
        }),
    }
}

pub(crate) fn mul(left: &Value, right: &Value) -> OpResult<Value> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => a
            .checked_mul(*b)
            .map(Value::Int)
            .ok_or(ErrorKind::Overflow { op: "*" }),
        _ => Err(ErrorKind::Mismatch {
            op: "*",
            left: left.kind(),
            right: right.kind(),
        }),
    }
}

pub fn neg(value: &Value) -> OpResult<Value> {
    match value {
        Value::Int(i) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or(ErrorKind::Overflow { op: "-" }),
        Value::Duration(d) => d
            .checked_neg()
            .map(Value::Duration)
            .ok_or(ErrorKind::Overflow { op: "-" }),
        other => Err(ErrorKind::Operand {
            op: "-",
            expected: "Int or Duration",
            found: other.kind(),
        }),
    }
}

pub fn not(value: &Value) -> OpResult<bool> {
    match value {
        Value::Bool(b) => Ok(!b),
        other => Err(ErrorKind::Operand {
            op: "not",
            expected: "Bool",
            found: other.kind(),
        }),
    }
}

pub fn truth(value: &Value, op: &'static str) -> OpResult<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(ErrorKind::Operand {
            op,
            expected: "Bool",
            found: other.kind(),
        }),
    }
}

/// `e in g`: reflexive and transitive over the store's parents; `e in S` for any member;
/// an address in a range.
pub fn is_in(store: &Store, left: &Value, right: &Value) -> OpResult<bool> {
    match (left, right) {
        (Value::Entity(e), Value::Entity(g)) => Ok(entity_in(store, e, g)),
        (Value::Entity(e), Value::Set(members)) => {
            // Every member must be an entity, whatever the others: the answer may not depend
            // on the order in which a set's members happen to be kept.
            if let Some(other) = members.iter().find(|m| !matches!(m, Value::Entity(_))) {
                return Err(ErrorKind::Mismatch {
                    op: "in",
                    left: Kind::Entity,
                    right: other.kind(),
                });
            }
            Ok(members
                .iter()
                .any(|m| matches!(m, Value::Entity(g) if entity_in(store, e, g))))
        }
        (Value::Ip(address), Value::Ip(range)) => Ok(range.contains(address)),
        _ => Err(ErrorKind::Mismatch {
            op: "in",
            left: left.kind(),
            right: right.kind(),
        }),
    }
}

fn entity_in(store: &Store, entity: &EntityRef, group: &EntityRef) -> bool {
    match (entity, group) {
        (EntityRef::Known(e), EntityRef::Known(g)) => store.is_in(*e, *g),
        (EntityRef::Unknown(a), EntityRef::Unknown(b)) => a == b,
        _ => false,
    }
}

pub fn contains(set: &Value, member: &Value) -> OpResult<bool> {
    match set {
        Value::Set(members) => Ok(members
            .binary_search_by(|probe| probe.total_cmp(member))
            .is_ok()),
        other => Err(ErrorKind::Operand {
            op: "contains",
            expected: "a set",
            found: other.kind(),
        }),
    }
}

/// The members of a set, or an error naming the operator.
fn members<'v>(value: &'v Value, op: &'static str) -> OpResult<&'v [Value]> {
    match value {
        Value::Set(members) => Ok(members),
        other => Err(ErrorKind::Operand {
            op,
            expected: "a set",
            found: other.kind(),
        }),
    }
}

/// `set contains all other`: every member of `other` is in `set` (both sorted, so one walk).
pub(crate) fn contains_all(set: &Value, other: &Value) -> OpResult<bool> {
    let (set, other) = (
        members(set, "contains all")?,
        members(other, "contains all")?,
    );
    let mut rest = set;
    for wanted in other {
        match rest.binary_search_by(|probe| probe.total_cmp(wanted)) {
            Ok(at) => rest = rest.get(at + 1..).unwrap_or_default(),
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// `set contains any other`: some member of `other` is in `set`.
pub(crate) fn contains_any(set: &Value, other: &Value) -> OpResult<bool> {
    let (set, other) = (
        members(set, "contains any")?,
        members(other, "contains any")?,
    );
    Ok(other.iter().any(|wanted| {
        set.binary_search_by(|probe| probe.total_cmp(wanted))
            .is_ok()
    }))
}

/// `set is empty`.
pub fn is_empty(set: &Value) -> OpResult<bool> {
    members(set, "is empty").map(<[Value]>::is_empty)
}

/// `is_ipv4(a)`, `is_loopback(a)`, …: a range is loopback or multicast when every address in
/// it is (as Cedar's `isLoopback` and `isMulticast` decide).
pub(crate) fn ip_test(test: IpTest, value: &Value) -> OpResult<bool> {
    let Value::Ip(net) = value else {
        return Err(ErrorKind::Operand {
            op: test.function(),
            expected: "Ip",
            found: value.kind(),
        });
    };
    Ok(match (test, net) {
        (IpTest::V4, net) => matches!(net, ipnet::IpNet::V4(_)),
        (IpTest::V6, net) => matches!(net, ipnet::IpNet::V6(_)),
        (IpTest::Loopback, ipnet::IpNet::V4(n)) => n.addr().is_loopback() && n.prefix_len() >= 8,
        (IpTest::Loopback, ipnet::IpNet::V6(n)) => n.addr().is_loopback() && n.prefix_len() == 128,
        (IpTest::Multicast, ipnet::IpNet::V4(n)) => n.addr().is_multicast() && n.prefix_len() >= 4,
        (IpTest::Multicast, ipnet::IpNet::V6(n)) => n.addr().is_multicast() && n.prefix_len() >= 8,
    })
}

pub fn like(value: &Value, pattern: &Pattern) -> OpResult<bool> {
    match value {
        Value::Str(text) => Ok(glob_match(text, pattern)),
        other => Err(ErrorKind::Operand {
            op: "like",
            expected: "String",
            found: other.kind(),
        }),
    }
}

fn glob_match(text: &str, pattern: &Pattern) -> bool {
    let pieces = &pattern.pieces;
    let Some((first, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    let Some(mut remaining) = text.strip_prefix(first.as_ref()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        // No wildcard: the whole text must be the literal.
        return remaining.is_empty();
    };
    for piece in middle {
        match remaining.find(piece.as_ref()) {
            Some(at) => remaining = remaining.get(at + piece.len()..).unwrap_or(""),
            None => return false,
        }
    }
    remaining.ends_with(last.as_ref())
}

/// Cuts a `like` pattern at unescaped `*`; `\*` is a literal star, `\\` a backslash.
pub(crate) fn compile_pattern(pattern: &str) -> Pattern {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => current.push(escaped),
                None => current.push('\\'),
            },
            '*' => pieces.push(std::mem::take(&mut current).into_boxed_str()),
            c => current.push(c),
        }
    }
    pieces.push(current.into_boxed_str());
    Pattern {
        pieces: pieces.into_boxed_slice(),
    }
}

/// `e.name`.
pub fn attribute(store: &Store, base: &Value, name: &Arc<str>) -> OpResult<Value> {
    let fields = match base {
        Value::Record(fields) => fields,
        Value::Entity(entity) => {
            let stored = match entity {
                EntityRef::Known(id) => store.entity(*id).and_then(|e| e.attributes.as_ref()),
                EntityRef::Unknown(_) => None,
            };
            match stored {
                Some(fields) => fields,
                None => {
                    return Err(ErrorKind::NotStored {
                        entity: entity.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        other => {
            return Err(ErrorKind::Operand {
                op: ".",
                expected: "an entity or a record",
                found: other.kind(),
            });
        }
    };
    field_of(fields, name)
        .cloned()
        .ok_or_else(|| ErrorKind::MissingAttribute { name: name.clone() })
}

/// `e has name`: false for entities the store does not hold.
pub fn has(store: &Store, base: &Value, name: &str) -> OpResult<bool> {
    match base {
        Value::Record(fields) => Ok(field_of(fields, name).is_some()),
        Value::Entity(EntityRef::Known(id)) => Ok(store
            .entity(*id)
            .and_then(|e| e.attributes.as_ref())
            .is_some_and(|fields| field_of(fields, name).is_some())),
        Value::Entity(EntityRef::Unknown(_)) => Ok(false),
        other => Err(ErrorKind::Operand {
            op: "has",
            expected: "an entity or a record",
            found: other.kind(),
        }),
    }
}

/// `e is Type`.
pub(crate) fn is_type(store: &Store, value: &Value, ty: &str) -> OpResult<bool> {
    match value {
        Value::Entity(EntityRef::Known(id)) => {
            Ok(store.entity(*id).is_some_and(|e| e.uid.ty.as_ref() == ty))
        }
        Value::Entity(EntityRef::Unknown(uid)) => Ok(uid.ty.as_ref() == ty),
        other => Err(ErrorKind::Operand {
            op: "is",
            expected: "an entity",
            found: other.kind(),
        }),
    }
}

pub fn calendar(field: CalendarField, time: &Value, zone: &jiff::tz::TimeZone) -> OpResult<Value> {
    let Value::Time(timestamp) = time else {
        return Err(ErrorKind::Operand {
            op: field.name(),
            expected: "Time",
            found: time.kind(),
        });
    };
    let zoned = zone.to_datetime(*timestamp);
    let value = match field {
        CalendarField::Year => i64::from(zoned.year()),
        CalendarField::Month => i64::from(zoned.month()),
        CalendarField::Day => i64::from(zoned.day()),
        CalendarField::Hour => i64::from(zoned.hour()),
        CalendarField::Minute => i64::from(zoned.minute()),
        CalendarField::Weekday => i64::from(zoned.weekday().to_monday_one_offset()),
    };
    Ok(Value::Int(value))
}

pub fn in_range(value: &Value, low: &Value, high: &Value) -> OpResult<bool> {
    match (value, low, high) {
        (Value::Int(v), Value::Int(l), Value::Int(h)) => Ok(l <= v && v <= h),
        _ => Err(ErrorKind::Operand {
            op: "in_range",
            expected: "three Ints",
            found: [value, low, high]
                .into_iter()
                .find(|v| v.kind() != Kind::Int)
                .map_or(Kind::Int, Value::kind),
        }),
    }
}

/// Constructors whose argument is a literal, evaluated when the policy is compiled.
pub(crate) fn time_literal(text: &str) -> Option<Timestamp> {
    crate::data::decode::parse_time(text).ok()
}

pub(crate) fn duration_literal(text: &str) -> Option<SignedDuration> {
    crate::data::decode::parse_duration(text)
}

pub(crate) fn ip_literal(text: &str) -> Option<ipnet::IpNet> {
    crate::data::decode::parse_ip(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let p = compile_pattern("*.jpg");
        assert!(glob_match("a.jpg", &p));
        assert!(!glob_match("a.png", &p));
        let p = compile_pattern("a*b*c");
        assert!(glob_match("abc", &p));
        assert!(glob_match("axxbyyc", &p));
        assert!(!glob_match("acb", &p));
        let p = compile_pattern("lit\\*");
        assert!(glob_match("lit*", &p));
        assert!(!glob_match("lit", &p));
        assert!(glob_match("", &compile_pattern("")));
        assert!(glob_match("anything", &compile_pattern("*")));
        // The wildcard pieces must not overlap.
        assert!(!glob_match("ab", &compile_pattern("ab*b")));
    }

    #[test]
    fn in_a_set_with_a_non_entity_errors_whatever_the_order() {
        let mut store = Store::default();
        let alice = Value::Entity(EntityRef::Known(store.intern_entity("User", "alice")));
        // Records sort after entities, integers before: both must fail alike.
        for other in [Value::Int(1), Value::empty_record()] {
            let set = Value::set(vec![alice.clone(), other]);
            assert!(is_in(&store, &alice, &set).is_err());
        }
        let set = Value::set(vec![alice.clone()]);
        assert_eq!(is_in(&store, &alice, &set), Ok(true));
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            add(&Value::Int(i64::MAX), &Value::Int(1)),
            Err(ErrorKind::Overflow { op: "+" })
        );
        assert!(compare(Compare::Eq, &Value::Int(1), &Value::Bool(true)).is_err());
        assert_eq!(
            compare(Compare::Lt, &Value::Int(1), &Value::Int(2)),
            Ok(true)
        );
    }
}
