//! The skeleton reader: an AuthZEN evaluation or evaluations body read straight from its
//! text, for what the one-pass reader ([`super::bytes`], single evaluations only) leaves — a
//! batch, a capability token in `context`, an undeclared name, every error: the names
//! (`type`, `id`, `name`) borrowed, `properties`, `context` and `options` kept as JSON text,
//! nothing else built. What it cannot read simply — a name with an escape, a part that is not
//! an object, anything that is not JSON — it does not read (`None`): the caller then reads the
//! body the ordinary way ([`super::strict::parse`]), which accepts or refuses it and names what
//! is wrong.
//!
//! Only the skeleton is read here; every value it does not read itself (`properties`,
//! `context`, `options`, unknown members) is validated by [`super::strict::check`] at its
//! place, and every object's names are checked for one given twice, so what is read here is
//! exactly what the ordinary reader accepts.

use super::strict::{self, Names};

/// An entity part: `{"type", "id", "properties"}`, `properties` as its text (`None` when
/// absent or `null`).
#[derive(Clone, Copy, Debug)]
pub struct EntityPart<'a> {
    pub ty: &'a str,
    pub id: &'a str,
    pub properties: Option<&'a str>,
}

/// `{"name", "properties"}`.
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    pub name: &'a str,
    pub properties: Option<&'a str>,
}

/// The parts an evaluation (or an item of a batch) gives; absent and `null` are `None`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextParts<'a> {
    pub subject: Option<EntityPart<'a>>,
    pub action: Option<Action<'a>>,
    pub resource: Option<EntityPart<'a>>,
    pub context: Option<&'a str>,
}

/// A whole body.
#[derive(Debug, Default)]
pub struct Skeleton<'a> {
    /// The parts at the top: the request, or a batch's defaults.
    pub parts: TextParts<'a>,
    /// `evaluations`, when present and not `null`.
    pub evaluations: Option<Vec<TextParts<'a>>>,
    /// `options` (its text), when present and not `null`.
    pub options: Option<&'a str>,
    /// Whether any object of the skeleton held a key the API does not have (skipped).
    pub other_keys: bool,
}

/// Reads a body; `None` when it must be read the ordinary way.
pub fn read(text: &str) -> Option<Skeleton<'_>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        other_keys: false,
    };
    let mut body = Skeleton::default();
    // `object` refuses a name given twice: each part is read once.
    reader.object(|reader, key| {
        match key {
            "subject" => body.parts.subject = reader.nullable(Reader::entity)?,
            "action" => body.parts.action = reader.nullable(Reader::action)?,
            "resource" => body.parts.resource = reader.nullable(Reader::entity)?,
            "context" => body.parts.context = reader.raw_nullable()?,
            "evaluations" => body.evaluations = reader.nullable(Reader::items)?,
            "options" => body.options = reader.raw_nullable()?,
            _ => reader.skip()?,
        }
        Some(())
    })?;
    reader.whitespace();
    if reader.at != reader.bytes.len() {
        return None;
    }
    body.other_keys = reader.other_keys;
    Some(body)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The arrays and objects open at `at`, the body's own braces included.
    depth: usize,
    other_keys: bool,
}

impl<'a> Reader<'a> {
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        self.whitespace();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match self.bytes.get(self.at)? {
                b'"' => break,
                b'\\' => return None,
                byte if *byte < 0x20 => return None,
                _ => self.at += 1,
            }
        }
        let text = self.text.get(start..self.at)?;
        self.at += 1;
        Some(text)
    }

    /// Reads `{ "key": value, … }`, calling `member` after each key and its colon; a key
    /// given twice is not read.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Reader<'a>, &'a str) -> Option<()>,
    ) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        self.enter()?;
        if self.eat(b'}') {
            self.depth -= 1;
            return Some(());
        }
        let mut names = Names::default();
        loop {
            let key = self.string()?;
            if !names.insert(key) || !self.eat(b':') {
                return None;
            }
            member(self, key)?;
            if self.eat(b',') {
                continue;
            }
            self.depth -= 1;
            return self.eat(b'}').then_some(());
        }
    }

    /// One more array or object open, within the ordinary reader's limit.
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= strict::MAX_NESTING).then_some(())
    }

    /// `null` (as `None`), or what `read` reads.
    fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
    ) -> Option<Option<T>> {
        self.whitespace();
        if self.bytes.get(self.at..self.at + 4) == Some(b"null") {
            self.at += 4;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// Any JSON value, as its text (validated as the ordinary reader reads it).
    fn raw(&mut self) -> Option<&'a str> {
        self.whitespace();
        let start = self.at;
        let length = strict::check(self.text.get(start..)?, self.depth)?;
        self.at += length;
        self.text.get(start..self.at)
    }

    /// Any JSON value, `None` for `null`.
    fn raw_nullable(&mut self) -> Option<Option<&'a str>> {
        let raw = self.raw()?;
        Some((raw != "null").then_some(raw))
    }

    /// Skips a member the API does not have (validated as the ordinary reader reads it).
    fn skip(&mut self) -> Option<()> {
        self.other_keys = true;
        self.raw().map(|_| ())
    }

    fn entity(&mut self) -> Option<EntityPart<'a>> {
        let (mut ty, mut id, mut properties) = (None, None, None);
        self.object(|reader, key| {
            match key {
                "type" => ty = Some(reader.string()?),
                "id" => id = Some(reader.string()?),
                "properties" => properties = reader.raw_nullable()?,
                _ => reader.skip()?,
            }
            Some(())
        })?;
        Some(EntityPart {
            ty: ty?,
            id: id?,
            properties,
        })
    }

    fn action(&mut self) -> Option<Action<'a>> {
        let (mut name, mut properties) = (None, None);
        self.object(|reader, key| {
            match key {
                "name" => name = Some(reader.string()?),
                "properties" => properties = reader.raw_nullable()?,
                _ => reader.skip()?,
            }
            Some(())
        })?;
        Some(Action {
            name: name?,
            properties,
        })
    }

    fn items(&mut self) -> Option<Vec<TextParts<'a>>> {
        if !self.eat(b'[') {
            return None;
        }
        self.enter()?;
        let mut items = Vec::new();
        if self.eat(b']') {
            self.depth -= 1;
            return Some(items);
        }
        loop {
            let mut item = TextParts::default();
            self.object(|reader, key| {
                match key {
                    "subject" => item.subject = reader.nullable(Reader::entity)?,
                    "action" => item.action = reader.nullable(Reader::action)?,
                    "resource" => item.resource = reader.nullable(Reader::entity)?,
                    "context" => item.context = reader.raw_nullable()?,
                    _ => reader.skip()?,
                }
                Some(())
            })?;
            items.push(item);
            if self.eat(b',') {
                continue;
            }
            self.depth -= 1;
            return self.eat(b']').then_some(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_or_left_to_the_ordinary_way() {
        let body = read(
            r#" { "subject" : {"type":"User","id":"a b","properties":{"x":[1,{"y":null}]},"extra":1},
                "action":{"name":"read"}, "resource":{"type":"Doc","id":"d1","properties":null},
                "context":{"ip":"10.0.0.1"}, "options": null, "evaluations": [{}, {"subject": null,
                "context": {"k": "\u0041"}}] } "#,
        )
        .unwrap();
        let subject = body.parts.subject.unwrap();
        assert_eq!((subject.ty, subject.id), ("User", "a b"));
        assert_eq!(subject.properties.unwrap(), r#"{"x":[1,{"y":null}]}"#);
        assert!(body.parts.resource.unwrap().properties.is_none());
        assert_eq!(body.parts.context.unwrap(), r#"{"ip":"10.0.0.1"}"#);
        assert!(body.options.is_none());
        let items = body.evaluations.unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[1].subject.is_none());
        assert!(body.other_keys);
        for text in [
            r#"{"subject":{"type":"User","id":"b\u006fb"}}"#,
            r#"{"subject":{"type":"User","id":"a"},"subject":{"type":"User","id":"b"}}"#,
            r#"{"subject":{"type":"User","id":"a","id":"b"}}"#,
            r#"{"subject":["User","a"]}"#,
            r#"{"subject":{"type":"User"}}"#,
            r#"{"subject":{"type":"User","id":7}}"#,
            r#"{"context":{"a":1,}}"#,
            r#"{"x": [1, 2,]}"#,
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"[1]"#,
            r#"{"evaluations":[1]}"#,
            r#"{"evaluations":{}}"#,
            "{\"subject\":{\"type\":\"Us\ter\",\"id\":\"a\"}}",
            r#"{"subject":{"type":"User","id":"a"}"#,
        ] {
            assert!(read(text).is_none(), "{text}");
        }
        assert!(read("{}").is_some());
        assert!(
            !read(r#"{"subject":{"type":"U","id":"a"}}"#)
                .unwrap()
                .other_keys
        );
    }
}
