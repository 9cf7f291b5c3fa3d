//! Syntax diagnostics: what went wrong, where, and what to do about it.

use crate::source::Span;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum SyntaxError {
    #[error("unexpected {found}")]
    #[diagnostic(code(warden::syntax::unexpected))]
    Unexpected {
        found: String,
        #[label("{expected}")]
        span: Span,
        expected: String,
        #[help]
        help: Option<String>,
    },
    #[error("`{keyword}` is a keyword")]
    #[diagnostic(code(warden::syntax::keyword))]
    Keyword {
        keyword: String,
        #[label("{expected}")]
        span: Span,
        expected: String,
        #[help]
        help: String,
    },
    #[error("unexpected end of item")]
    #[diagnostic(code(warden::syntax::unexpected_end))]
    UnexpectedEnd {
        #[label("{expected}")]
        span: Span,
        expected: String,
        #[help]
        help: String,
    },
    #[error("unexpected {found}")]
    #[diagnostic(code(warden::syntax::character))]
    UnexpectedCharacter {
        found: String,
        #[label("not part of the language")]
        span: Span,
        #[help]
        help: String,
    },
    #[error("unterminated string")]
    #[diagnostic(
        code(warden::syntax::unterminated_string),
        help(
            "close the string with `\"` on the same line; write `\\n` for a line break inside it"
        )
    )]
    UnterminatedString {
        #[label("this string has no closing quote")]
        span: Span,
    },
    #[error("single-quoted string")]
    #[diagnostic(code(warden::syntax::single_quoted))]
    SingleQuoted {
        #[label("single quotes do not make a string")]
        span: Span,
        #[help]
        help: String,
    },
    #[error("unterminated block comment")]
    #[diagnostic(
        code(warden::syntax::unterminated_comment),
        help("close the comment with `*/` (block comments nest: each `/*` needs its own `*/`)")
    )]
    UnterminatedComment {
        #[label("this comment is never closed")]
        span: Span,
    },
    #[error("unknown escape `{escape}` in a string")]
    #[diagnostic(
        code(warden::syntax::escape),
        help(
            "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\0`, `\\u{{hex}}`, and `\\*` in `like`"
        )
    )]
    UnknownEscape {
        escape: String,
        #[label("unknown escape")]
        span: Span,
    },
    #[error("integer literal is too large")]
    #[diagnostic(
        code(warden::syntax::integer),
        help("integers are 64-bit: the largest is 9223372036854775807")
    )]
    IntegerTooLarge {
        #[label("does not fit in 64 bits")]
        span: Span,
    },
    #[error("duration literal is too large")]
    #[diagnostic(
        code(warden::syntax::duration),
        help("durations are counted in milliseconds in 64 bits: about 292 million years at most")
    )]
    DurationTooLarge {
        #[label("too long")]
        span: Span,
    },
    #[error("expression is too large")]
    #[diagnostic(
        code(warden::syntax::too_large),
        help(
            "one expression may hold at most {limit} operators and brackets; name parts of it with `let`"
        )
    )]
    TooLarge {
        #[label("the limit is reached here")]
        span: Span,
        limit: usize,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::syntax::invalid))]
    Invalid {
        message: String,
        #[label]
        span: Span,
        #[help]
        help: String,
    },
}
