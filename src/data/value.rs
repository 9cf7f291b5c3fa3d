//! Runtime values: what attributes hold, what requests carry, and what expressions compute.
//!
//! Cloning a value never allocates: strings, sets and records are shared behind `Arc`s.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

/// Index of an entity known to a program: stored in the data, or named by a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(pub u32);

impl EntityId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An entity's type and id, as on the wire.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityUid {
    pub ty: Arc<str>,
    pub id: Arc<str>,
}

impl fmt::Display for EntityUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}::\"{}\"",
            self.ty,
            crate::syntax::token::escape(&self.id)
        )
    }
}

/// An entity as a value: one the program knows (by index), or one only the request names.
///
/// Every entity the program knows has an index, and a request's entity is looked up when the
/// request is decoded, so an `Unknown` entity never equals a `Known` one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityRef {
    Known(EntityId),
    Unknown(Arc<EntityUid>),
}

/// A record's fields, sorted by name.
pub(crate) type Fields = Arc<[(Arc<str>, Value)]>;

#[derive(Clone, Debug)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(Arc<str>),
    Time(Timestamp),
    Duration(SignedDuration),
    /// An address, or a range in CIDR notation (an address is a range of one).
    Ip(ipnet::IpNet),
    /// A fixed-point decimal, in ten-thousandths (`decimal("1.5")` is 15000).
    Decimal(i64),
    Entity(EntityRef),
    /// Members sorted by [`Value::total_cmp`] and without duplicates.
    Set(Arc<[Value]>),
    Record(Fields),
}

/// The kind of a value, for messages and type tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Bool,
    Int,
    String,
    Time,
    Duration,
    Ip,
    Decimal,
    Entity,
    Set,
    Record,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "Bool",
            Kind::Int => "Int",
            Kind::String => "String",
            Kind::Time => "Time",
            Kind::Duration => "Duration",
            Kind::Ip => "Ip",
            Kind::Decimal => "Decimal",
            Kind::Entity => "an entity",
            Kind::Set => "a set",
            Kind::Record => "a record",
        }
    }
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Str(_) => Kind::String,
            Value::Time(_) => Kind::Time,
            Value::Duration(_) => Kind::Duration,
            Value::Ip(_) => Kind::Ip,
            Value::Decimal(_) => Kind::Decimal,
            Value::Entity(_) => Kind::Entity,
            Value::Set(_) => Kind::Set,
            Value::Record(_) => Kind::Record,
        }
    }

    /// Builds a set: sorts and removes duplicates.
    pub fn set(mut members: Vec<Value>) -> Value {
        if members.is_empty() {
            // Shared: a million entities with an empty `roles` hold one allocation, not a
            // million.
            static EMPTY: std::sync::LazyLock<Arc<[Value]>> =
                std::sync::LazyLock::new(|| Arc::from(Vec::new()));
            return Value::Set(EMPTY.clone());
        }
        members.sort_by(Value::total_cmp);
        members.dedup_by(|a, b| a.total_cmp(b) == Ordering::Equal);
        Value::Set(members.into())
    }

    /// Builds a record: sorts by field name; a later duplicate name wins.
    pub fn record(mut fields: Vec<(Arc<str>, Value)>) -> Value {
        if fields.is_empty() {
            return Value::empty_record();
        }
        fields.reverse();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|a, b| a.0 == b.0);
        Value::Record(fields.into())
    }

    /// The record with no fields (shared: making one allocates nothing).
    pub(crate) fn empty_record() -> Value {
        static EMPTY: std::sync::LazyLock<Fields> =
            std::sync::LazyLock::new(|| Arc::from(Vec::new()));
        Value::Record(EMPTY.clone())
    }

    /// The field `name` of a record value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Record(fields) => field_of(fields, name),
            _ => None,
        }
    }

    /// A total order over all values (kinds first, then contents), used to keep sets sorted
    /// and to hash-cons constants. Equal under this order means equal under `==`.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        let rank = |v: &Value| v.kind() as u8;
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            (Value::Duration(a), Value::Duration(b)) => a.cmp(b),
            (Value::Ip(a), Value::Ip(b)) => a.cmp(b),
            (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
            (Value::Entity(a), Value::Entity(b)) => a.cmp(b),
            (Value::Set(a), Value::Set(b)) => cmp_slices(a, b, Value::total_cmp),
            (Value::Record(a), Value::Record(b)) => cmp_slices(a, b, |(ka, va), (kb, vb)| {
                ka.cmp(kb).then_with(|| va.total_cmp(vb))
            }),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

fn cmp_slices<T>(a: &[T], b: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let order = cmp(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// A field of sorted record fields. A small record is scanned: a name the store interned is
/// shared by every record of the store and by the policy that reads it (the same text at the
/// same address), so it is found without comparing text, and other names are compared only
/// with names of their length. A large record is searched by halves.
pub(crate) fn field_of<'v>(fields: &'v [(Arc<str>, Value)], name: &str) -> Option<&'v Value> {
    if fields.len() <= 16 {
        return fields
            .iter()
            .find(|(key, _)| {
                key.len() == name.len()
                    && (std::ptr::eq(key.as_ptr(), name.as_ptr())
                        || key.as_bytes() == name.as_bytes())
            })
            .map(|(_, value)| value);
    }
    fields
        .binary_search_by(|(key, _)| key.as_ref().cmp(name))
        .ok()
        .and_then(|index| fields.get(index))
        .map(|(_, value)| value)
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.total_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.kind() as u8).hash(state);
        match self {
            Value::Bool(v) => v.hash(state),
            Value::Int(v) => v.hash(state),
            Value::Str(v) => v.hash(state),
            Value::Time(v) => v.hash(state),
            Value::Duration(v) => v.hash(state),
            Value::Ip(v) => v.hash(state),
            Value::Decimal(v) => v.hash(state),
            Value::Entity(v) => v.hash(state),
            Value::Set(members) => {
                for member in members.iter() {
                    member.hash(state);
                }
            }
            Value::Record(fields) => {
                for (key, value) in fields.iter() {
                    key.hash(state);
                    value.hash(state);
                }
            }
        }
    }
}

/// Formats a duration the way policies write it: `1h30m`, `500ms`, `-2d` (the formatter's
/// spelling, so a value prints as its literal would).
pub(crate) fn format_duration(duration: SignedDuration) -> String {
    let millis = duration.as_millis();
    let millis = i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX });
    crate::syntax::fmt::duration_text(millis)
}

/// Formats an address without its prefix when it is a single host.
pub(crate) fn format_ip(ip: &ipnet::IpNet) -> String {
    if ip.prefix_len() == ip.max_prefix_len() {
        ip.addr().to_string()
    } else {
        ip.to_string()
    }
}
