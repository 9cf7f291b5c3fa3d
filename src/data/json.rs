//! A small JSON reader that remembers where every value stands, so that a mistake in a data
//! file is reported at its line and column, not only by its JSON path.

use crate::source::Span;

/// A JSON value with its span in the file.
#[derive(Clone, Debug)]
pub struct Json {
    pub kind: JsonKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum JsonKind {
    Null,
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// Any other number (a float, or an integer beyond i64), kept as written.
    OtherNumber(String),
    String(String),
    Array(Vec<Json>),
    /// Members in the order written; the key's span is kept for messages about the key.
    Object(Vec<(String, Span, Json)>),
}

impl JsonKind {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool(_) => "a boolean",
            JsonKind::Int(_) | JsonKind::OtherNumber(_) => "a number",
            JsonKind::String(_) => "a string",
            JsonKind::Array(_) => "an array",
            JsonKind::Object(_) => "an object",
        }
    }
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match &self.kind {
            JsonKind::Object(members) => {
                members.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v)
            }
            _ => None,
        }
    }
}

/// A JSON syntax error at a byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonSyntaxError {
    pub message: String,
    pub span: Span,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

pub fn parse(text: &str) -> Result<Json, JsonSyntaxError> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at < reader.bytes.len() {
        return Err(reader.error_here("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// What [`read_members`] hands over, in document order.
pub(crate) enum Event<'e> {
    /// The document is not an object: its whole value.
    NotObject(&'e Json),
    /// A member of the top-level object; `value` is `None` when it is an array, whose
    /// elements follow as [`Event::Element`]s.
    Member {
        key: &'e str,
        key_span: Span,
        value: Option<&'e Json>,
    },
    /// The element at `index` of the array of the last [`Event::Member`].
    Element { index: usize, value: &'e Json },
}

/// Reads a document as [`parse`] does (the same errors at the same places), but hands the
/// elements of the top-level object's arrays over one at a time: a data file of a million
/// entities is never held whole as a tree, which takes several times the file's size.
pub(crate) fn read_members(
    text: &str,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<(), JsonSyntaxError> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.skip_whitespace();
    if reader.peek() == Some(b'{') {
        reader.members(on)?;
    } else {
        let value = reader.value(0)?;
        reader.skip_whitespace();
        if reader.at >= reader.bytes.len() {
            on(Event::NotObject(&value));
        }
    }
    reader.skip_whitespace();
    if reader.at < reader.bytes.len() {
        return Err(reader.error_here("unexpected text after the JSON value"));
    }
    Ok(())
}

/// Parses the value at byte `offset` of `text`, an element of an array member of the
/// top-level object that [`read_members`] handed over once (spans stay those of the file).
pub(crate) fn parse_element(text: &str, offset: usize) -> Result<Json, JsonSyntaxError> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: offset,
    };
    reader.value(2)
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
}

impl Reader<'_> {
    fn error_here(&self, message: &str) -> JsonSyntaxError {
        let end = (self.at + 1).min(self.bytes.len()).max(self.at);
        JsonSyntaxError {
            message: message.to_string(),
            span: Span::new(self.at, end),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect_literal(&mut self, literal: &str, kind: JsonKind) -> Result<Json, JsonSyntaxError> {
        let start = self.at;
        if self
            .text
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(literal))
        {
            self.at += literal.len();
            Ok(Json {
                kind,
                span: Span::new(start, self.at),
            })
        } else {
            Err(self.error_here("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonSyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error_here("JSON nested too deeply"));
        }
        match self.peek() {
            Some(b'n') => self.expect_literal("null", JsonKind::Null),
            Some(b't') => self.expect_literal("true", JsonKind::Bool(true)),
            Some(b'f') => self.expect_literal("false", JsonKind::Bool(false)),
            Some(b'"') => {
                let start = self.at;
                let string = self.string()?;
                Ok(Json {
                    kind: JsonKind::String(string),
                    span: Span::new(start, self.at),
                })
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(_) => Err(self.error_here("expected a JSON value")),
            None => Err(self.error_here("unexpected end of the file: expected a JSON value")),
        }
    }

    fn number(&mut self) -> Result<Json, JsonSyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        // JSON's grammar: no leading zero, digits after `.` and after the exponent.
        let leading_zero = self.peek() == Some(b'0');
        let digits = self.digits();
        if digits == 0 {
            return Err(self.error_here("expected a digit"));
        }
        if leading_zero && digits > 1 {
            return Err(self.error_here("a number may not start with `0`"));
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            integral = false;
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error_here("expected a digit after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integral = false;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error_here("expected a digit in the exponent"));
            }
        }
        let text = self.text.get(start..self.at).unwrap_or("");
        let span = Span::new(start, self.at);
        let kind = match (integral, text.parse::<i64>()) {
            // `-0` is not an integer to `serde_json` (it reads a float), nor here: every reader
            // of a request agrees.
            (true, Ok(0)) if text.starts_with('-') => JsonKind::OtherNumber(text.to_string()),
            (true, Ok(value)) => JsonKind::Int(value),
            _ => JsonKind::OtherNumber(text.to_string()),
        };
        Ok(Json { kind, span })
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn string(&mut self) -> Result<String, JsonSyntaxError> {
        // Opening quote.
        self.at += 1;
        let mut out = String::new();
        loop {
            // A run of characters that need no unescaping, copied at once. It ends on a char
            // boundary: the bytes of a multi-byte character are never a quote, a backslash or
            // a control character.
            let run = self.at;
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            out.push_str(self.text.get(run..self.at).unwrap_or(""));
            let Some(rest) = self.text.get(self.at..) else {
                return Err(self.error_here("unterminated string"));
            };
            let Some(c) = rest.chars().next() else {
                return Err(self.error_here("unterminated string"));
            };
            match c {
                '"' => {
                    self.at += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.at += 1;
                    let escaped = self.peek();
                    self.at += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let code = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&code) {
                                // A surrogate pair: the low half must follow.
                                if self
                                    .text
                                    .get(self.at..)
                                    .is_some_and(|r| r.starts_with("\\u"))
                                {
                                    self.at += 2;
                                    let low = self.hex4()?;
                                    (0xDC00..0xE000)
                                        .contains(&low)
                                        .then_some(())
                                        .and_then(|()| {
                                            char::from_u32(
                                                0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00),
                                            )
                                        })
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(code)
                            };
                            match c {
                                Some(c) => out.push(c),
                                None => {
                                    return Err(self.error_here(
                                        "invalid unicode escape: a surrogate must be one of a pair",
                                    ));
                                }
                            }
                        }
                        _ => {
                            self.at = self.at.saturating_sub(1);
                            return Err(self.error_here("invalid escape in string"));
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error_here("control character in string (write it escaped)"));
                }
                c => {
                    out.push(c);
                    self.at += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonSyntaxError> {
        let hex = self.text.get(self.at..self.at + 4).unwrap_or("");
        match u32::from_str_radix(hex, 16) {
            // `from_str_radix` also takes a sign.
            Ok(code) if hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.at += 4;
                Ok(code)
            }
            _ => Err(self.error_here("expected four hex digits after `\\u`")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonSyntaxError> {
        let start = self.at;
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json {
                kind: JsonKind::Array(items),
                span: Span::new(start, self.at),
            });
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json {
                        kind: JsonKind::Array(items),
                        span: Span::new(start, self.at),
                    });
                }
                _ => return Err(self.error_here("expected `,` or `]`")),
            }
        }
    }

    /// The top-level object of [`read_members`], from its `{` to its `}`.
    fn members(&mut self, on: &mut dyn FnMut(Event<'_>)) -> Result<(), JsonSyntaxError> {
        self.at += 1;
        let mut keys: Vec<String> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let (key, key_span) = self.member_name(|k| keys.iter().any(|seen| seen == k))?;
            if self.peek() == Some(b'[') {
                on(Event::Member {
                    key: &key,
                    key_span,
                    value: None,
                });
                self.elements(on)?;
            } else {
                let value = self.value(1)?;
                on(Event::Member {
                    key: &key,
                    key_span,
                    value: Some(&value),
                });
            }
            keys.push(key);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error_here("expected `,` or `}`")),
            }
        }
    }

    /// The elements of an array member of the top-level object, from its `[` to its `]`.
    fn elements(&mut self, on: &mut dyn FnMut(Event<'_>)) -> Result<(), JsonSyntaxError> {
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.skip_whitespace();
            let value = self.value(2)?;
            on(Event::Element {
                index,
                value: &value,
            });
            index += 1;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error_here("expected `,` or `]`")),
            }
        }
    }

    /// A member's name and the `:` after it, refused when `seen` says it came before.
    fn member_name(
        &mut self,
        seen: impl Fn(&str) -> bool,
    ) -> Result<(String, Span), JsonSyntaxError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error_here("expected a member name in double quotes"));
        }
        let key_start = self.at;
        let key = self.string()?;
        let key_span = Span::new(key_start, self.at);
        if seen(&key) {
            return Err(duplicate(&key, key_span));
        }
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error_here("expected `:` after the member name"));
        }
        self.at += 1;
        self.skip_whitespace();
        Ok((key, key_span))
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonSyntaxError> {
        let start = self.at;
        self.at += 1;
        let mut members: Vec<(String, Span, Json)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json {
                kind: JsonKind::Object(members),
                span: Span::new(start, self.at),
            });
        }
        loop {
            // Few members are compared as they come; a large object is checked once, sorted
            // (comparing every pair grows with the square of its size).
            let (key, key_span) = self.member_name(|k| {
                members.len() < LARGE_OBJECT && members.iter().any(|(m, _, _)| m == k)
            })?;
            let value = self.value(depth + 1)?;
            members.push((key, key_span, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    if let Some((key, span)) = later_duplicate(&members) {
                        return Err(duplicate(key, span));
                    }
                    return Ok(Json {
                        kind: JsonKind::Object(members),
                        span: Span::new(start, self.at),
                    });
                }
                _ => return Err(self.error_here("expected `,` or `}`")),
            }
        }
    }
}

/// Objects with at least this many members are checked for a name given twice once, sorted.
const LARGE_OBJECT: usize = 16;

fn duplicate(key: &str, span: Span) -> JsonSyntaxError {
    JsonSyntaxError {
        message: format!("duplicate member `{key}`"),
        span,
    }
}

/// In a large object, the first member (in the text) whose name an earlier one has.
fn later_duplicate(members: &[(String, Span, Json)]) -> Option<(&str, Span)> {
    if members.len() <= LARGE_OBJECT {
        return None;
    }
    let mut sorted: Vec<(&str, usize, Span)> = members
        .iter()
        .enumerate()
        .map(|(index, (key, span, _))| (key.as_str(), index, *span))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
    sorted
        .windows(2)
        .filter_map(|pair| match pair {
            [first, second] if first.0 == second.0 => Some(*second),
            _ => None,
        })
        .min_by_key(|(_, index, _)| *index)
        .map(|(key, _, span)| (key, span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_with_spans() {
        let json = parse(r#" {"a": [1, -2, 3.5, "x\u00e9", true, null], "b": {}} "#).unwrap();
        let a = json.get("a").unwrap();
        let JsonKind::Array(items) = &a.kind else {
            panic!()
        };
        assert!(matches!(items[1].kind, JsonKind::Int(-2)));
        assert!(matches!(&items[2].kind, JsonKind::OtherNumber(n) if n == "3.5"));
        assert!(matches!(&items[3].kind, JsonKind::String(s) if s == "xé"));
        assert_eq!(items[0].span.range(), 8..9);
    }

    #[test]
    fn reports_errors_where_they_are() {
        let error = parse("{\"a\": 1,\n \"a\": 2}").unwrap_err();
        assert!(error.message.contains("duplicate"));
        assert!(parse("[1, 2").is_err());
        assert!(parse("{\"a\" 1}").is_err());
        assert!(parse(&"[".repeat(1000)).is_err());
        assert!(matches!(
            parse("99999999999999999999").unwrap().kind,
            JsonKind::OtherNumber(_)
        ));
    }
}
