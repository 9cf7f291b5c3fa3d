//! JSON as the decision API reads it: what `serde_json` reads into a tree, except that a member
//! name given twice in one object is refused (I-JSON, RFC 7493: a gateway or PEP that keeps the
//! first of two `subject`s must never see another request than Warden decides).
//!
//! [`parse`] is the ordinary reader every other reader is held to. [`check`] validates one value
//! where a faster reader skips it or keeps it as text, by the same rules: `serde_json`'s grammar
//! (escapes, surrogate pairs, numbers), its nesting limit counted from the body's root, and no
//! name given twice.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as JsonValue};
use smallvec::SmallVec;

/// The most arrays and objects `serde_json` reads one inside another (a body's own braces
/// included): one more is refused.
pub(crate) const MAX_NESTING: usize = 127;

/// The member names of one object, to find one given twice: compared one by one while there
/// are few (most objects), hashed beyond. `K` is how a reader holds a name: borrowed from the
/// text by the fast readers, a `Cow` by the ordinary one (a name with an escape is unescaped).
pub struct Names<K> {
    few: SmallVec<[K; 8]>,
    /// Made when the ninth name comes (hashing costs more than a few comparisons).
    many: Option<HashSet<K>>,
}

impl<K> Default for Names<K> {
    fn default() -> Names<K> {
        Names {
            few: SmallVec::new(),
            many: None,
        }
    }
}

impl<K: Eq + std::hash::Hash> Names<K> {
    /// Notes `name`; false when the object already had it.
    pub fn insert(&mut self, name: K) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(name);
        }
        if self.few.contains(&name) {
            return false;
        }
        if self.few.len() < self.few.inline_size() {
            self.few.push(name);
            return true;
        }
        let mut many: HashSet<K> = self.few.drain(..).collect();
        many.insert(name);
        self.many = Some(many);
        true
    }
}

/// The error of a name given twice.
fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format_args!(
        "duplicate member `{name}` (a name may appear once in an object)"
    ))
}

/// Parses a request body: `serde_json`'s tree, refusing a member name given twice anywhere.
pub fn parse(bytes: &[u8]) -> Result<JsonValue, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Tree.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Validates the JSON value at the start of `text` (after whitespace), found inside `depth`
/// arrays and objects: its length (up to the end of the value), or `None` when the ordinary
/// reader would refuse the body there.
pub fn check(text: &str, depth: usize) -> Option<usize> {
    // Only the stream form reports where a value ends, and it takes a type, not a seed: the
    // depth goes to [`Checked`] beside it.
    BASE_DEPTH.set(depth);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Checked>();
    stream.next()?.ok()?;
    Some(stream.byte_offset())
}

thread_local! {
    /// The depth [`check`] validates at, for [`Checked`].
    static BASE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// A value [`check`]ed at the thread's [`BASE_DEPTH`].
struct Checked;

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        let depth = BASE_DEPTH.get();
        Check { depth }.deserialize(deserializer).map(|()| Checked)
    }
}

/// Builds the tree (as `serde_json::Value` does), refusing duplicate names.
#[derive(Clone, Copy)]
struct Tree;

impl<'de> DeserializeSeed<'de> for Tree {
    type Value = JsonValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree {
    type Value = JsonValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<JsonValue, E> {
        Ok(Number::from_f64(value).map_or(JsonValue::Null, JsonValue::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<JsonValue, E> {
        Ok(JsonValue::String(value))
    }

    fn visit_unit<E>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tree)? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(duplicate(&name));
            }
            let value = map.next_value_seed(Tree)?;
            members.insert(name, value);
        }
        Ok(JsonValue::Object(members))
    }
}

/// Validates without building anything: nesting counted from the body's root (`depth`
/// containers already open), duplicate names refused.
#[derive(Clone, Copy)]
struct Check {
    depth: usize,
}

impl Check {
    fn deeper<E: de::Error>(self) -> Result<Check, E> {
        let depth = self.depth + 1;
        if depth > MAX_NESTING {
            return Err(E::custom("recursion limit exceeded"));
        }
        Ok(Check { depth })
    }
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut names = Names::default();
        while let Some(name) = map.next_key_seed(Name)? {
            if !names.insert(name.clone()) {
                return Err(duplicate(&name));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// A member name, borrowed from the text when it has no escape.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_string()))
    }
}
