//! The tokens of the Warden language, recognised by a `logos` lexer.

use logos::{Lexer, Logos};

/// What can go wrong while cutting text into tokens.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LexError {
    #[default]
    UnexpectedCharacter,
    UnterminatedString,
    UnterminatedComment,
    /// A backslash escape that the language does not know; `offset` is relative to the token.
    UnknownEscape {
        offset: usize,
        escape: String,
    },
    IntegerTooLarge,
    DurationTooLarge,
    /// `'text'`: lexed whole, so that one diagnostic can say how to write it.
    SingleQuoted,
}

/// One token. Comments are tokens too: the parser never sees them, the formatter keeps them.
#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Token<'s> {
    // Items.
    #[token("entity")]
    Entity,
    #[token("action")]
    Action,
    #[token("group")]
    Group,
    #[token("role")]
    Role,
    #[token("allow")]
    Allow,
    #[token("deny")]
    Deny,
    #[token("let")]
    Let,
    #[token("test")]
    Test,
    #[token("route")]
    Route,
    #[token("capability")]
    Capability,
    // Rule heads and conditions.
    #[token("on")]
    On,
    #[token("if")]
    If,
    #[token("unless")]
    Unless,
    /// `if C then A else B`, an expression.
    #[token("then")]
    Then,
    #[token("else")]
    Else,
    // Expressions.
    #[token("in")]
    In,
    #[token("has")]
    Has,
    #[token("contains")]
    Contains,
    #[token("like")]
    Like,
    #[token("is")]
    Is,
    #[token("not")]
    Not,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("subject")]
    Subject,
    #[token("resource")]
    Resource,
    #[token("context")]
    Context,
    #[token("properties")]
    Properties,
    // Tests.
    #[token("with")]
    With,
    #[token("at")]
    At,
    #[token("by")]
    By,
    #[token("data")]
    Data,
    #[token("given")]
    Given,
    #[token("for")]
    For,
    // Words that are names everywhere but right after `contains` (`s contains all t`,
    // `s contains any t`) and `is` (`s is empty`); the lexer adapter gives them these tokens
    // there (see `lexer::mark_set_words`), logos never does.
    All,
    Any,
    Empty,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'s str),
    #[regex(r"[0-9]+", integer)]
    Int(i64),
    /// A duration literal such as `24h`, `90m` or `1h30m`, in milliseconds.
    #[regex(r"[0-9]+(d|h|m|s|ms)([0-9]+(d|h|m|s|ms))*", duration)]
    Duration(i64),
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, string)]
    #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#, unterminated_string)]
    #[regex(r"'[^'\n]*'", single_quoted)]
    Str(String),

    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment,
    #[token("/*", block_comment)]
    BlockComment,

    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("::")]
    ColonColon,
    #[token(".")]
    Dot,
    #[token("@")]
    At_,
    #[token("*")]
    Star,
    #[token("?")]
    Question,
    #[token("=")]
    Assign,
    #[token("=>")]
    FatArrow,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    // Never accepted by the grammar; lexed so that the error can say what was meant.
    #[token("&&")]
    AmpAmp,
    #[token("||")]
    PipePipe,
    #[token("!")]
    Bang,
    #[token(";")]
    Semicolon,
}

impl Token<'_> {
    /// True for tokens the parser never sees.
    pub(crate) fn is_comment(&self) -> bool {
        matches!(self, Token::LineComment | Token::BlockComment)
    }

    /// True for the keywords of [`Token::KEYWORDS`].
    pub(crate) fn is_keyword(&self) -> bool {
        matches!(
            self,
            Token::Entity
                | Token::Action
                | Token::Group
                | Token::Role
                | Token::Allow
                | Token::Deny
                | Token::Let
                | Token::Test
                | Token::Route
                | Token::Capability
                | Token::On
                | Token::If
                | Token::Unless
                | Token::Then
                | Token::Else
                | Token::In
                | Token::Has
                | Token::Contains
                | Token::Like
                | Token::Is
                | Token::Not
                | Token::And
                | Token::Or
                | Token::True
                | Token::False
                | Token::Subject
                | Token::Resource
                | Token::Context
                | Token::Properties
                | Token::With
                | Token::At
                | Token::By
                | Token::Data
                | Token::Given
                | Token::For
        )
    }

    /// The keywords, as written. Also used to decide whether a name must be quoted.
    pub const KEYWORDS: &'static [&'static str] = &[
        "entity",
        "action",
        "group",
        "role",
        "allow",
        "deny",
        "let",
        "test",
        "route",
        "capability",
        "on",
        "if",
        "unless",
        "then",
        "else",
        "in",
        "has",
        "contains",
        "like",
        "is",
        "not",
        "and",
        "or",
        "true",
        "false",
        "subject",
        "resource",
        "context",
        "properties",
        "with",
        "at",
        "by",
        "data",
        "given",
        "for",
    ];

    /// How a token is named in messages: `` `allow` ``, `a name`, `a string`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("name `{name}`"),
            Token::Int(value) => format!("integer `{value}`"),
            Token::Duration(_) => "a duration".to_string(),
            Token::Str(_) => "a string".to_string(),
            Token::LineComment | Token::BlockComment => "a comment".to_string(),
            other => format!("`{}`", other.text()),
        }
    }

    /// The fixed text of a punctuation or keyword token.
    pub fn text(&self) -> &'static str {
        match self {
            Token::Entity => "entity",
            Token::Action => "action",
            Token::Group => "group",
            Token::Role => "role",
            Token::Allow => "allow",
            Token::Deny => "deny",
            Token::Let => "let",
            Token::Test => "test",
            Token::Route => "route",
            Token::Capability => "capability",
            Token::On => "on",
            Token::If => "if",
            Token::Unless => "unless",
            Token::Then => "then",
            Token::Else => "else",
            Token::In => "in",
            Token::Has => "has",
            Token::Contains => "contains",
            Token::Like => "like",
            Token::Is => "is",
            Token::Not => "not",
            Token::And => "and",
            Token::Or => "or",
            Token::True => "true",
            Token::False => "false",
            Token::Subject => "subject",
            Token::Resource => "resource",
            Token::Context => "context",
            Token::Properties => "properties",
            Token::With => "with",
            Token::At => "at",
            Token::By => "by",
            Token::Data => "data",
            Token::Given => "given",
            Token::For => "for",
            Token::All => "all",
            Token::Any => "any",
            Token::Empty => "empty",
            Token::Ident(_) => "name",
            Token::Int(_) => "integer",
            Token::Duration(_) => "duration",
            Token::Str(_) => "string",
            Token::LineComment | Token::BlockComment => "comment",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::ColonColon => "::",
            Token::Dot => ".",
            Token::At_ => "@",
            Token::Star => "*",
            Token::Question => "?",
            Token::Assign => "=",
            Token::FatArrow => "=>",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::AmpAmp => "&&",
            Token::PipePipe => "||",
            Token::Bang => "!",
            Token::Semicolon => ";",
        }
    }
}

fn integer<'s>(lex: &mut Lexer<'s, Token<'s>>) -> Result<i64, LexError> {
    lex.slice()
        .parse::<i64>()
        .map_err(|_| LexError::IntegerTooLarge)
}

/// Milliseconds in one unit of a duration literal.
pub(crate) fn duration_unit_millis(unit: &str) -> Option<i64> {
    match unit {
        "d" => Some(86_400_000),
        "h" => Some(3_600_000),
        "m" => Some(60_000),
        "s" => Some(1_000),
        "ms" => Some(1),
        _ => None,
    }
}

/// Parses `1h30m`-style text into milliseconds (checked: overflow is an error).
pub(crate) fn parse_duration_literal(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = if tail.starts_with("ms") {
            2
        } else {
            tail.find(|c: char| c.is_ascii_digit())
                .unwrap_or(tail.len())
        };
        let (unit, tail) = tail.split_at(unit_len);
        let value: i64 = number.parse().ok()?;
        total = total.checked_add(value.checked_mul(duration_unit_millis(unit)?)?)?;
        rest = tail;
    }
    Some(total)
}

fn duration<'s>(lex: &mut Lexer<'s, Token<'s>>) -> Result<i64, LexError> {
    parse_duration_literal(lex.slice()).ok_or(LexError::DurationTooLarge)
}

fn string<'s>(lex: &mut Lexer<'s, Token<'s>>) -> Result<String, LexError> {
    let slice = lex.slice();
    let inner = slice.get(1..slice.len() - 1).unwrap_or("");
    unescape(inner).map_err(|(offset, escape)| LexError::UnknownEscape {
        offset: offset + 1,
        escape,
    })
}

fn unterminated_string<'s>(_: &mut Lexer<'s, Token<'s>>) -> Result<String, LexError> {
    Err(LexError::UnterminatedString)
}

fn single_quoted<'s>(_: &mut Lexer<'s, Token<'s>>) -> Result<String, LexError> {
    Err(LexError::SingleQuoted)
}

/// Resolves `\"`, `\\`, `\n`, `\t`, `\r`, `\0` and `\u{...}`; anything else is an error carrying
/// its byte offset inside `text` and the escape as written.
pub(crate) fn unescape(text: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            return Err((at, "\\".to_string()));
        };
        match escaped {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            // Kept as written so that a `like` pattern can say "a literal star" (`"\*"`).
            '*' => out.push_str("\\*"),
            'u' => {
                let rest = text.get(at + 2..).unwrap_or("");
                let decoded = rest
                    .strip_prefix('{')
                    .and_then(|r| r.find('}').map(|end| (r, end)))
                    .and_then(|(r, end)| {
                        let hex = r.get(..end)?;
                        let code = u32::from_str_radix(hex, 16).ok()?;
                        Some((char::from_u32(code)?, end + 2))
                    });
                match decoded {
                    Some((ch, consumed)) => {
                        out.push(ch);
                        for _ in 0..consumed {
                            chars.next();
                        }
                    }
                    None => {
                        let shown: String = text.get(at..).unwrap_or("").chars().take(8).collect();
                        return Err((at, shown));
                    }
                }
            }
            other => return Err((at, format!("\\{other}"))),
        }
    }
    Ok(out)
}

/// Escapes a string for printing between double quotes; the inverse of [`unescape`].
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn block_comment<'s>(lex: &mut Lexer<'s, Token<'s>>) -> Result<(), LexError> {
    // Block comments nest, so commenting out a region that holds a comment works.
    let rest = lex.remainder();
    let mut depth = 1usize;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'*'), Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    lex.bump(i);
                    return Ok(());
                }
            }
            (Some(b'/'), Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    lex.bump(rest.len());
    Err(LexError::UnterminatedComment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up() {
        assert_eq!(parse_duration_literal("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_literal("500ms"), Some(500));
        assert_eq!(parse_duration_literal("7d"), Some(604_800_000));
        assert_eq!(parse_duration_literal("99999999999999999d"), None);
    }

    #[test]
    fn escapes_round_trip() {
        let text = "a\"b\\c\nd\te\u{1}";
        assert_eq!(unescape(&escape(text)).unwrap(), text);
        assert_eq!(unescape("\\u{1F600}").unwrap(), "😀");
        assert!(unescape("\\q").is_err());
    }

    #[test]
    fn is_keyword_agrees_with_the_keyword_list() {
        for keyword in Token::KEYWORDS {
            let tokens: Vec<_> = Token::lexer(keyword).collect();
            assert_eq!(tokens.len(), 1, "{keyword}");
            let token = tokens[0].clone().unwrap();
            assert!(token.is_keyword(), "{keyword}");
            assert_eq!(token.text(), *keyword);
        }
        assert!(!Token::Ident("x").is_keyword());
        assert!(!Token::LParen.is_keyword());
    }

    #[test]
    fn keywords_and_names() {
        let tokens: Vec<_> = Token::lexer("allow view on Photo // c\n /* x /* y */ */ 24h")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tokens,
            vec![
                Token::Allow,
                Token::Ident("view"),
                Token::On,
                Token::Ident("Photo"),
                Token::LineComment,
                Token::BlockComment,
                Token::Duration(86_400_000),
            ]
        );
    }
}
