//! The one-pass reader of [`read`](super::request::read): an evaluation body read
//! in one pass over its text, and its `properties` and `context` decoded straight from their
//! text into declared-type values, with no JSON tree and no `serde_json` in between.
//!
//! It decodes only what it is sure of: a well-formed body whose every part decodes without an
//! error. Anything else — an escape in any string, a key given twice, a value that does not
//! fit its declared type, a float, `-0`, deep nesting, `context.capability`, a part missing —
//! it leaves (`None`) to the ordinary path, which decodes it, or names what is wrong. Members
//! the API does not have are held to the same rules (no escape, no name twice), so a body read
//! here is one the ordinary reader ([`super::strict::parse`]) accepts. So every error a caller
//! sees comes from the ordinary path, and every request decoded here is the one the ordinary
//! path would have decoded (tests and the `decode` fuzz target hold the two to each other).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::check::schema::{RecordType, Type};
use crate::data::decode::{Resolver, parse_duration, parse_ip, parse_time};
use crate::data::value::Value;
use crate::program::requests::Declared;
use crate::source::Span;
use crate::syntax::decimal::parse_decimal;

use super::strict::Names;
use super::wire::EntityPart;

/// The parts of one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evaluation<'a> {
    pub subject: EntityPart<'a>,
    pub action: &'a str,
    pub action_properties: Option<&'a str>,
    pub resource: EntityPart<'a>,
    pub context: Option<&'a str>,
}

const CAPABILITY_MEMBER: &str = "\"capability\"";

/// Nesting deeper than this is left to the ordinary path (which has its own limits).
const MAX_DEPTH: usize = 32;

/// Reads an evaluation body; `None` when it must be read the ordinary way.
pub fn read(text: &str) -> Option<Evaluation<'_>> {
    let mut cursor = Cursor::new(text);
    let (mut subject, mut action, mut resource, mut context) = (None, None, None, None);
    let mut seen_context = false;
    let mut others = Names::default();
    cursor.expect(b'{')?;
    if !cursor.eat(b'}') {
        loop {
            const KNOWN: [&[u8]; 6] = [
                b"\"subject\"",
                b"\"resource\"",
                b"\"action\"",
                b"\"context\"",
                b"\"evaluations\"",
                b"\"options\"",
            ];
            match cursor.member(&KNOWN)? {
                (0, _) if subject.is_none() => subject = Some(cursor.entity()?),
                (1, _) if resource.is_none() => resource = Some(cursor.entity()?),
                (2, _) if action.is_none() => action = Some(cursor.action()?),
                (3, _) if !seen_context => {
                    seen_context = true;
                    context = cursor.object_text()?;
                    // A capability token, which the ordinary path takes out of `context`
                    // (refused wherever the name appears: rare, and always right).
                    if context.is_some_and(|text| text.contains(CAPABILITY_MEMBER)) {
                        return None;
                    }
                }
                (6, name) if others.insert(name) => cursor.skip(1)?,
                // A name given twice, or a batch: the ordinary way.
                _ => return None,
            }
            if !cursor.eat(b',') {
                cursor.expect(b'}')?;
                break;
            }
        }
    }
    cursor.whitespace();
    if cursor.at != cursor.bytes.len() {
        return None;
    }
    let (action, action_properties) = action?;
    Some(Evaluation {
        subject: subject?,
        action,
        action_properties,
        resource: resource?,
        context,
    })
}

/// Decodes the text of a `properties` or `context` object, as [`read`] found it (valid, no
/// escapes, no key given twice), through its declared record type, or dynamically without
/// one; `None` for anything the ordinary path must decode (or refuse).
pub(crate) fn decode_object(
    text: &str,
    declared: Option<&Declared>,
    resolver: &mut impl Resolver,
) -> Option<Value> {
    let mut cursor = Cursor::new(text);
    let value = match declared {
        Some(declared) => cursor.declared(declared, resolver)?,
        None => cursor.dynamic(resolver, 0)?,
    };
    Some(value)
}

/// The index of the first byte from `at` that ends a string without escapes: a quote, a
/// backslash or a control character; eight bytes at a time.
#[inline(always)]
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    const SPACES: u64 = u64::from_le_bytes([0x20; 8]);
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
        // A byte is zero in `x` exactly where `word` holds the byte sought; the lowest flag set
        // is exact (a borrow only flags bytes above a byte that is really found).
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(SPACES) & !word);
        let found = found & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let length = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + length)
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// A number: an integer that fits in i64, or any other.
enum Number {
    Int(i64),
    Other,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    #[inline(always)]
    fn whitespace(&mut self) {
        // Most bodies are compact: one test, then the loop only when there is whitespace.
        if self.bytes.get(self.at).is_none_or(|&b| b > b' ') {
            return;
        }
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        match self.bytes.get(self.at) {
            Some(&b) if b > b' ' => Some(b),
            _ => {
                self.whitespace();
                self.bytes.get(self.at).copied()
            }
        }
    }

    /// Consumes `byte` (after whitespace) when it is next.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> bool {
        // Compact bodies first: the byte itself, then whitespace only when there is some.
        match self.bytes.get(self.at) {
            Some(&b) if b == byte => {
                self.at += 1;
                true
            }
            Some(&b) if b <= b' ' => {
                self.whitespace();
                if self.bytes.get(self.at) == Some(&byte) {
                    self.at += 1;
                    true
                } else {
                    false
                }
            }
            _ => false,
        }
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string without escapes (after whitespace): its text.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = string_end(self.bytes, start)?;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// The next member name and its colon: the index in `known` of the name when it is one
    /// of them (each written with its quotes, compared as written: a name with an escape is
    /// never read here), else `known.len()` and the name.
    #[inline(always)]
    fn member(&mut self, known: &[&[u8]]) -> Option<(usize, &'a str)> {
        self.whitespace();
        let rest = self.bytes.get(self.at..)?;
        for (index, name) in known.iter().enumerate() {
            if rest.starts_with(name) {
                self.at += name.len();
                self.expect(b':')?;
                return Some((index, ""));
            }
        }
        Some((known.len(), self.key()?))
    }

    /// A member name and its colon.
    #[inline]
    fn key(&mut self) -> Option<&'a str> {
        let key = self.plain_string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// Consumes `literal` (after whitespace).
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        self.whitespace();
        if self.bytes.get(self.at..self.at + literal.len())? == literal {
            self.at += literal.len();
            Some(())
        } else {
            None
        }
    }

    /// `null` next (after whitespace): consumed.
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number in JSON's grammar (what `serde_json` accepts, no more).
    fn number(&mut self) -> Option<Number> {
        self.whitespace();
        let start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.bytes.get(self.at) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let mut integral = true;
        if self.bytes.get(self.at) == Some(&b'.') {
            integral = false;
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            integral = false;
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        if !integral {
            return Some(Number::Other);
        }
        let text = self.text.get(start..self.at)?;
        Some(match text.parse::<i64>() {
            // `serde_json` reads `-0` as a float: so does the ordinary path.
            Ok(0) if text.starts_with('-') => Number::Other,
            Ok(value) => Number::Int(value),
            Err(_) => Number::Other,
        })
    }

    /// Skips a value (a member the API does not have, or one of `properties` or `context`
    /// outside their declarations), holding it to the ordinary reader's rules: strings
    /// without escapes (left to that reader), no key given twice.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.plain_string().map(|_| ()),
            b'{' => {
                self.at += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                let mut names = Names::default();
                loop {
                    if !names.insert(self.key()?) {
                        return None;
                    }
                    self.skip(depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b'}');
                    }
                }
            }
            b'[' => {
                self.at += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b']');
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    /// An object (checked strictly) as its text; `None` inside for `null`.
    fn object_text(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        if self.peek()? != b'{' {
            return None;
        }
        let start = self.at;
        self.skip(0)?;
        Some(Some(self.text.get(start..self.at)?))
    }

    fn entity(&mut self) -> Option<EntityPart<'a>> {
        match self.compact_entity() {
            Some(entity) => Some(entity),
            None => self.entity_members(),
        }
    }

    /// An entity part read member by member, in any order and spacing.
    fn entity_members(&mut self) -> Option<EntityPart<'a>> {
        let (mut ty, mut id, mut properties) = (None, None, None);
        let mut seen_properties = false;
        let mut others = Names::default();
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                const KNOWN: [&[u8]; 3] = [b"\"type\"", b"\"id\"", b"\"properties\""];
                match self.member(&KNOWN)? {
                    (0, _) if ty.is_none() => ty = Some(self.plain_string()?),
                    (1, _) if id.is_none() => id = Some(self.plain_string()?),
                    (2, _) if !seen_properties => {
                        seen_properties = true;
                        properties = self.object_text()?;
                    }
                    (3, name) if others.insert(name) => self.skip(2)?,
                    _ => return None,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        Some(EntityPart {
            ty: ty?,
            id: id?,
            properties,
        })
    }

    /// The two compact spellings most callers send, `{"type":"T","id":"I"}` and (serde's
    /// sorted keys) `{"id":"I","type":"T"}`, read with three comparisons and two string scans;
    /// `None`, with nothing consumed, for anything else (the general reader then reads it).
    #[inline(always)]
    fn compact_entity(&mut self) -> Option<EntityPart<'a>> {
        let rest = self.bytes.get(self.at..)?;
        let (ty, id) = if rest.starts_with(b"{\"type\":\"") {
            self.compact_pair(b"{\"type\":\"".len(), b"\",\"id\":\"")?
        } else if rest.starts_with(b"{\"id\":\"") {
            let (id, ty) = self.compact_pair(b"{\"id\":\"".len(), b"\",\"type\":\"")?;
            (ty, id)
        } else {
            return None;
        };
        Some(EntityPart {
            ty,
            id,
            properties: None,
        })
    }

    /// The two strings of a compact entity whose opening (up to the first string) is `open`
    /// bytes long and whose strings are separated by `between`; nothing consumed unless the
    /// whole object is read.
    #[inline(always)]
    fn compact_pair(&mut self, open: usize, between: &[u8]) -> Option<(&'a str, &'a str)> {
        let first = self.at + open;
        // The first quote, backslash or control character: only a quote followed by the
        // rest of the spelling goes on.
        let first_end = string_end(self.bytes, first)?;
        if !self.bytes.get(first_end..)?.starts_with(between) {
            return None;
        }
        let second = first_end + between.len();
        let second_end = string_end(self.bytes, second)?;
        if !self.bytes.get(second_end..)?.starts_with(b"\"}") {
            return None;
        }
        let pair = (
            self.text.get(first..first_end)?,
            self.text.get(second..second_end)?,
        );
        self.at = second_end + 2;
        Some(pair)
    }

    fn action(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let (mut name, mut properties) = (None, None);
        let mut seen_properties = false;
        let mut others = Names::default();
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                const KNOWN: [&[u8]; 2] = [b"\"name\"", b"\"properties\""];
                match self.member(&KNOWN)? {
                    (0, _) if name.is_none() => name = Some(self.plain_string()?),
                    (1, _) if !seen_properties => {
                        seen_properties = true;
                        properties = self.object_text()?;
                    }
                    (2, other) if others.insert(other) => self.skip(2)?,
                    _ => return None,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        Some((name?, properties))
    }

    /// A `properties` or `context` object through its declared members, their names shared
    /// ([`Declared`]); otherwise as [`Cursor::record`].
    fn declared(&mut self, declared: &Declared, resolver: &mut impl Resolver) -> Option<Value> {
        self.expect(b'{')?;
        let mut fields: SmallVec<[(Arc<str>, Value); 4]> = SmallVec::new();
        let mut required = 0usize;
        if !self.eat(b'}') {
            loop {
                let key = self.key()?;
                match declared.field(key) {
                    Some(_) if self.null() => {}
                    Some((name, field)) => {
                        let value = self.typed(&field.ty, resolver, 1)?;
                        required += usize::from(!field.optional);
                        fields.push((name.clone(), value));
                    }
                    None => self.skip(1)?,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        // Keys are unique (checked when the text was read), so counting is enough.
        if required != declared.required {
            return None;
        }
        // One member (the common case) in one allocation; more as `Value::record` sorts them.
        Some(match fields.len() {
            1 => match fields.pop() {
                Some(field) => Value::Record(Arc::from([field])),
                None => Value::empty_record(),
            },
            _ => Value::record(fields.into_vec()),
        })
    }

    /// An object through a record type: declared members decoded (`null` is absent), others
    /// skipped; every required member present.
    fn record(
        &mut self,
        record: &RecordType,
        resolver: &mut impl Resolver,
        depth: usize,
    ) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.expect(b'{')?;
        let mut fields: Vec<(Arc<str>, Value)> = Vec::new();
        let mut required = 0usize;
        if !self.eat(b'}') {
            loop {
                let key = self.key()?;
                match record.fields.get(key) {
                    Some(_) if self.null() => {}
                    Some(field) => {
                        let value = self.typed(&field.ty, resolver, depth + 1)?;
                        required += usize::from(!field.optional);
                        if fields.capacity() == 0 {
                            fields.reserve_exact(record.fields.len());
                        }
                        fields.push((resolver.string(key), value));
                    }
                    None => self.skip(depth + 1)?,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        // Keys are unique (checked when the text was read), so counting is enough.
        if required != record.fields.values().filter(|f| !f.optional).count() {
            return None;
        }
        Some(Value::record(fields))
    }

    /// A value through its declared type.
    fn typed(&mut self, ty: &Type, resolver: &mut impl Resolver, depth: usize) -> Option<Value> {
        match ty {
            Type::Bool => match self.peek()? {
                b't' => self.literal(b"true").map(|()| Value::Bool(true)),
                b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
                _ => None,
            },
            Type::Int => match self.number()? {
                Number::Int(i) => Some(Value::Int(i)),
                Number::Other => None,
            },
            Type::String => Some(Value::Str(resolver.string(self.plain_string()?))),
            Type::Time => parse_time(self.plain_string()?).ok().map(Value::Time),
            Type::Duration => parse_duration(self.plain_string()?).map(Value::Duration),
            Type::Ip => parse_ip(self.plain_string()?).map(Value::Ip),
            // Cedar's `{"__extn": …}` form is left to the ordinary path.
            Type::Decimal => parse_decimal(self.plain_string()?).ok().map(Value::Decimal),
            // An id an enumeration does not list is the ordinary path's to refuse.
            Type::Entity(expected) => match self.peek()? {
                b'"' => {
                    let id = self.plain_string()?;
                    let entity = resolver.typed_entity(expected, id, Span::default()).ok()?;
                    Some(Value::Entity(entity))
                }
                b'{' => {
                    let (ty, id) = self.entity_object(depth)?;
                    if ty != expected.as_str() {
                        return None;
                    }
                    let entity = resolver.typed_entity(ty, id, Span::default()).ok()?;
                    Some(Value::Entity(entity))
                }
                _ => None,
            },
            Type::AnyEntity => {
                let (ty, id) = self.entity_object(depth)?;
                Some(Value::Entity(resolver.entity(ty, id)))
            }
            Type::Set(element) => {
                if depth > MAX_DEPTH {
                    return None;
                }
                self.expect(b'[')?;
                let mut members = Vec::new();
                if !self.eat(b']') {
                    loop {
                        members.push(self.typed(element, resolver, depth + 1)?);
                        if !self.eat(b',') {
                            self.expect(b']')?;
                            break;
                        }
                    }
                }
                Some(Value::set(members))
            }
            Type::Record(record) => self.record(record, resolver, depth),
            Type::Dynamic => self.dynamic(resolver, depth),
        }
    }

    /// `{"type": "...", "id": "..."}`, other members skipped.
    fn entity_object(&mut self, depth: usize) -> Option<(&'a str, &'a str)> {
        self.expect(b'{')?;
        let (mut ty, mut id) = (None, None);
        if !self.eat(b'}') {
            loop {
                match self.key()? {
                    // Keys are unique: each is read once.
                    "type" => ty = Some(self.plain_string()?),
                    "id" => id = Some(self.plain_string()?),
                    _ => self.skip(depth + 1)?,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        Some((ty?, id?))
    }

    /// Without a declaration: strings stay strings, `{"type","id"}` (those two string members
    /// and no others) is an entity, objects are records (`null` members left out), arrays are
    /// sets.
    fn dynamic(&mut self, resolver: &mut impl Resolver, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'"' => Some(Value::Str(resolver.string(self.plain_string()?))),
            b'[' => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b']') {
                    loop {
                        members.push(self.dynamic(resolver, depth + 1)?);
                        if !self.eat(b',') {
                            self.expect(b']')?;
                            break;
                        }
                    }
                }
                Some(Value::set(members))
            }
            b'{' => {
                self.at += 1;
                let mut fields: Vec<(Arc<str>, Value)> = Vec::new();
                // Every member, `null` ones included, and the strings of `type` and `id`.
                let mut members = 0usize;
                let (mut ty, mut id) = (None, None);
                if !self.eat(b'}') {
                    loop {
                        let key = self.key()?;
                        members += 1;
                        if !self.null() {
                            if let (kind @ ("type" | "id"), Some(b'"')) = (key, self.peek()) {
                                let text = self.plain_string()?;
                                if kind == "type" {
                                    ty = Some(text);
                                } else {
                                    id = Some(text);
                                }
                                fields.push((
                                    resolver.string(key),
                                    Value::Str(resolver.string(text)),
                                ));
                            } else {
                                let value = self.dynamic(resolver, depth + 1)?;
                                fields.push((resolver.string(key), value));
                            }
                        }
                        if !self.eat(b',') {
                            self.expect(b'}')?;
                            break;
                        }
                    }
                }
                if let (2, Some(ty), Some(id)) = (members, ty, id) {
                    return Some(Value::Entity(resolver.entity(ty, id)));
                }
                Some(Value::record(fields))
            }
            b'n' => None,
            _ => match self.number()? {
                Number::Int(i) => Some(Value::Int(i)),
                Number::Other => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact spellings are read by the short path, and every near miss is left to the
    /// general reader, which reads what it can exactly as before.
    #[test]
    fn compact_entities_are_read_as_the_general_reader_reads_them() {
        for (text, compact) in [
            (r#"{"type":"User","id":"alice"}"#, true),
            (r#"{"id":"alice","type":"User"}"#, true),
            (r#"{"type":"","id":""}"#, true),
            (
                r#"{"id":"a long identifier, longer than eight","type":"Some::Type"}"#,
                true,
            ),
            (r#"{"type":"User","id":"al\"ice"}"#, false),
            (r#"{"type":"Us\u0065r","id":"alice"}"#, false),
            (
                r#"{"type":"User","id":"alice","properties":{"a":1}}"#,
                false,
            ),
            (r#"{"type":"User","id":"alice" }"#, false),
            (r#"{ "type":"User","id":"alice"}"#, false),
            (r#"{"type":"User","id":"alice","id":"bob"}"#, false),
            (r#"{"type":"User","name":"alice"}"#, false),
            (r#"{"type":"User","id":"alice"#, false),
            (r#"{"type":"User","id":"#, false),
            ("{\"type\":\"User\",\"id\":\"a\u{1}\"}", false),
        ] {
            let read = |short: bool| {
                let mut cursor = Cursor::new(text);
                let entity = if short {
                    cursor.compact_entity()
                } else {
                    cursor.entity_members()
                };
                (entity.map(|e| (e.ty, e.id, e.properties)), cursor.at)
            };
            let (short, at) = read(true);
            assert_eq!(short.is_some(), compact, "{text}");
            if short.is_some() {
                assert_eq!((short, at), read(false), "{text}");
                assert_eq!(at, text.len(), "{text}");
            } else {
                assert_eq!(at, 0, "{text}: nothing consumed");
            }
            let mut cursor = Cursor::new(text);
            let whole = cursor.entity().map(|e| (e.ty, e.id, e.properties));
            assert_eq!(whole, read(false).0, "{text}");
        }
    }

    #[test]
    fn string_ends_are_found_eight_bytes_at_a_time_as_one_at_a_time() {
        let naive = |bytes: &[u8], at: usize| {
            bytes
                .iter()
                .skip(at)
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map(|n| n + at)
        };
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xc3, 0xff,
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let length = (seed >> 59) as usize + 1;
            let mut bytes = Vec::with_capacity(length);
            for i in 0..length {
                let pick = (seed >> (i % 50)) as usize;
                // Mostly plain letters, so the sought byte lands anywhere in a word.
                bytes.push(if pick.is_multiple_of(5) {
                    alphabet[pick % alphabet.len()]
                } else {
                    b'a'
                });
            }
            for at in 0..bytes.len() {
                assert_eq!(
                    string_end(&bytes, at),
                    naive(&bytes, at),
                    "{bytes:?} from {at}"
                );
            }
        }
    }

    #[test]
    fn the_capability_member_is_the_one_the_ordinary_path_strips() {
        assert_eq!(
            CAPABILITY_MEMBER,
            format!("\"{}\"", crate::check::schema::CAPABILITY_KEY)
        );
    }
}
