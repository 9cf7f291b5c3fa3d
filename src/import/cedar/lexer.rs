//! Cedar's tokens (policies and the human schema form share them), cut by a `logos` lexer.

use logos::Logos;

use super::error::ImportError;
use crate::source::Span;

#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub(crate) enum Tok<'s> {
    #[regex(r"[_a-zA-Z][_a-zA-Z0-9]*")]
    Ident(&'s str),
    #[regex(r"\?[_a-zA-Z][_a-zA-Z0-9]*")]
    Slot(&'s str),
    #[regex(r"[0-9]+")]
    Int(&'s str),
    /// The raw text between the quotes, escapes not yet read.
    #[regex(r#""([^"\\]|\\[\s\S])*""#, |lex| { let s = lex.slice(); &s[1..s.len() - 1] })]
    Str(&'s str),
    #[token("@")]
    At,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token("::")]
    ColonColon,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("=")]
    Eq,
    #[token("?")]
    Question,
}

impl Tok<'_> {
    /// How a diagnostic names the token.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Slot(s) => format!("slot `{s}`"),
            Tok::Int(s) => format!("integer `{s}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            other => format!("`{}`", other.text()),
        }
    }

    fn text(&self) -> &'static str {
        match self {
            Tok::At => "@",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::ColonColon => "::",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Eq => "=",
            Tok::Question => "?",
            Tok::Ident(_) | Tok::Slot(_) | Tok::Int(_) | Tok::Str(_) => "",
        }
    }
}

/// Cuts `text` into tokens with their spans.
pub fn lex(text: &str) -> Result<Vec<(Tok<'_>, Span)>, ImportError> {
    let mut out = Vec::new();
    let mut lexer = Tok::lexer(text);
    while let Some(token) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        match token {
            Ok(token) => out.push((token, span)),
            Err(()) => {
                let found: String = text
                    .get(range.start..)
                    .unwrap_or("")
                    .chars()
                    .take(1)
                    .collect();
                let message = if found == "\"" {
                    "unterminated string".to_string()
                } else {
                    format!("unexpected character `{found}`")
                };
                return Err(ImportError::Lexical { message, span });
            }
        }
    }
    Ok(out)
}

/// One element of a `like` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PatternElem {
    Wildcard,
    Char(char),
}

/// Reads Cedar's escapes (`\n`, `\r`, `\t`, `\\`, `\0`, `\'`, `\"`, `\xHH`, `\u{H…}`, and `\*`
/// in a pattern). `at` is the offset of the raw text, for the diagnostic.
pub(crate) fn unescape(
    raw: &str,
    at: usize,
    pattern: bool,
) -> Result<Vec<PatternElem>, ImportError> {
    let mut out = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '*' && pattern {
            out.push(PatternElem::Wildcard);
            continue;
        }
        if c != '\\' {
            out.push(PatternElem::Char(c));
            continue;
        }
        let bad = |len: usize| ImportError::Lexical {
            message: "unknown escape in a Cedar string".to_string(),
            span: Span::new(at + i, at + i + len),
        };
        let Some((_, e)) = chars.next() else {
            return Err(bad(1));
        };
        let c = match e {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '\\' => '\\',
            '0' => '\0',
            '\'' => '\'',
            '"' => '"',
            '*' if pattern => '*',
            'x' => {
                let hex: String = (0..2)
                    .filter_map(|_| chars.next().map(|(_, h)| h))
                    .collect();
                u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|b| *b < 0x80)
                    .map(char::from)
                    .ok_or_else(|| bad(4))?
            }
            'u' => {
                if chars.next().map(|(_, b)| b) != Some('{') {
                    return Err(bad(2));
                }
                let mut hex = String::new();
                for (_, h) in chars.by_ref() {
                    if h == '}' {
                        break;
                    }
                    hex.push(h);
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(hex.len() + 4))?
            }
            _ => return Err(bad(2)),
        };
        out.push(PatternElem::Char(c));
    }
    Ok(out)
}

/// A string literal's value.
pub(crate) fn string_value(raw: &str, at: usize) -> Result<String, ImportError> {
    Ok(unescape(raw, at, false)?
        .into_iter()
        .map(|e| match e {
            PatternElem::Char(c) => c,
            PatternElem::Wildcard => '*',
        })
        .collect())
}
