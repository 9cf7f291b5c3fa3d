//! The adapter between the logos lexer and the lalrpop parser.
//!
//! It cuts the whole file into tokens once, keeps comments aside for the formatter, and splits
//! the token stream into items so that each item is parsed on its own: a mistake in one item
//! is reported and the next item is still parsed (recovery at item boundaries).

use logos::Logos;

use crate::source::Span;
use crate::syntax::token::{LexError, Token};

/// A token with its byte offsets, as lalrpop expects them.
pub type Spanned<'s> = (usize, Token<'s>, usize);

/// A comment as written, kept for the formatter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
    /// The full text, `//` or `/* */` included.
    pub text: String,
}

/// The tokens of a file, split by kind.
pub struct Lexed<'s> {
    pub tokens: Vec<Spanned<'s>>,
    pub comments: Vec<Comment>,
    pub errors: Vec<(LexError, Span)>,
}

/// Cuts `text` into tokens. Never fails: bad input becomes entries in `errors`.
pub fn lex(text: &str) -> Lexed<'_> {
    let mut tokens = Vec::new();
    let mut comments = Vec::new();
    let mut errors = Vec::new();
    let mut lexer = Token::lexer(text);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        match result {
            Ok(token) if token.is_comment() => comments.push(Comment {
                span,
                text: lexer.slice().trim_end().to_string(),
            }),
            Ok(token) => tokens.push((range.start, token, range.end)),
            Err(error) => errors.push((error, span)),
        }
    }
    Lexed {
        tokens,
        comments,
        errors,
    }
}

/// The most operators and brackets one expression may hold. Later stages walk expressions
/// recursively; the limit keeps them far from the end of any thread's stack.
pub const MAX_EXPRESSION_SIZE: usize = 512;

/// Splits a token stream into items, returned as index ranges into `tokens`.
///
/// An item starts at `entity`, `role`, `let`, `test`, or `action` followed by a name or
/// `group` — wherever they stand, since they never occur inside another item — and at `allow`,
/// `deny` or `@` outside any bracket. Annotations stay with the item they precede.
pub fn split_items(tokens: &[Spanned<'_>]) -> Vec<std::ops::Range<usize>> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    // True while the current item holds nothing but annotations (`@id("x")`), which belong to
    // the item keyword that follows them.
    let mut only_annotations = false;
    // Whether the token before the current one was a keyword standing for a name.
    let mut previous_was_name = false;

    for (index, (_, token, _)) in tokens.iter().enumerate() {
        let next = tokens.get(index + 1).map(|(_, t, _)| t);
        let previous = index
            .checked_sub(1)
            .and_then(|i| tokens.get(i))
            .map(|(_, t, _)| t);
        // A keyword used as a name (`resource.test`, `x has entity`, `{ let: 1 }`) is not the
        // start of an item, nor is the `role` of a test's `given role r for ...`. (In
        // `x has has`, the second `has` is a name and names nothing after it.)
        let previous_is_keyword = !previous_was_name;
        let used_as_name = matches!(previous, Some(Token::Dot))
            || (matches!(previous, Some(Token::Has)) && previous_is_keyword)
            || matches!(next, Some(Token::Colon) | Some(Token::Question))
            || (matches!(token, Token::Role)
                && matches!(previous, Some(Token::Given))
                && previous_is_keyword);
        previous_was_name = used_as_name;
        let starts_anywhere = !used_as_name
            && match token {
                Token::Entity | Token::Role | Token::Let | Token::Test => true,
                Token::Action => matches!(
                    next,
                    Some(Token::Ident(_)) | Some(Token::Str(_)) | Some(Token::Group)
                ),
                _ => false,
            };
        let starts_at_top =
            !used_as_name && depth == 0 && matches!(token, Token::Allow | Token::Deny | Token::At_);

        if (starts_anywhere || starts_at_top) && index > start && !only_annotations {
            items.push(start..index);
            start = index;
            depth = 0;
        }
        only_annotations = if index == start {
            matches!(token, Token::At_)
        } else {
            only_annotations
                && matches!(
                    token,
                    Token::At_ | Token::Ident(_) | Token::LParen | Token::Str(_) | Token::RParen
                )
        };

        match token {
            Token::LBrace | Token::LParen | Token::LBracket => depth += 1,
            Token::RBrace | Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if start < tokens.len() {
        items.push(start..tokens.len());
    }
    items
}

/// Finds an expression larger than [`MAX_EXPRESSION_SIZE`] in one item, returning the span of
/// the token that crossed the limit.
pub fn oversized_expression(tokens: &[Spanned<'_>]) -> Option<Span> {
    let mut size = 0usize;
    for (l, token, r) in tokens {
        match token {
            // Tokens that can only stand between expressions start a new count.
            Token::Allow
            | Token::Deny
            | Token::Data
            | Token::Given
            | Token::With
            | Token::At
            | Token::By
            | Token::If
            | Token::Unless
            | Token::At_
            | Token::Entity
            | Token::Role
            | Token::Let
            | Token::Test => size = 0,
            Token::LBrace
            | Token::LParen
            | Token::LBracket
            | Token::Dot
            | Token::Not
            | Token::And
            | Token::Or
            | Token::EqEq
            | Token::NotEq
            | Token::Lt
            | Token::Le
            | Token::Gt
            | Token::Ge
            | Token::In
            | Token::Contains
            | Token::Has
            | Token::Like
            | Token::Is
            | Token::Plus
            | Token::Minus => {
                size += 1;
                if size > MAX_EXPRESSION_SIZE {
                    return Some(Span::new(*l, *r));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<String> {
        let lexed = lex(text);
        assert!(lexed.errors.is_empty());
        split_items(&lexed.tokens)
            .into_iter()
            .map(|range| {
                let (start, _, _) = lexed.tokens[range.start];
                let (_, _, end) = lexed.tokens[range.end - 1];
                text[start..end].to_string()
            })
            .collect()
    }

    #[test]
    fn splits_at_item_keywords() {
        assert_eq!(
            items("entity A allow view if action.x == 1 deny * @id(\"x\") @doc allow view"),
            vec![
                "entity A",
                "allow view if action.x == 1",
                "deny *",
                "@id(\"x\") @doc allow view"
            ]
        );
    }

    #[test]
    fn keeps_nested_grants_and_expectations() {
        assert_eq!(
            items(
                "role r { allow view @id(\"g\") allow edit } test \"t\" { allow U::\"a\" view P::\"p\" }"
            ),
            vec![
                "role r { allow view @id(\"g\") allow edit }",
                "test \"t\" { allow U::\"a\" view P::\"p\" }"
            ]
        );
    }

    #[test]
    fn keywords_used_as_names_do_not_split() {
        assert_eq!(
            items(
                "test \"t\" { given role r for U::\"a\" } allow v if x.test and x has entity and { let: 1, role?: 2 } == y.allow and y has deny let z = a.given entity E let w = b has has entity F"
            ),
            vec![
                "test \"t\" { given role r for U::\"a\" }",
                "allow v if x.test and x has entity and { let: 1, role?: 2 } == y.allow and y has deny",
                "let z = a.given",
                "entity E",
                "let w = b has has",
                "entity F"
            ]
        );
    }

    #[test]
    fn an_unclosed_block_ends_at_the_next_declaration() {
        assert_eq!(
            items("role r { allow view let x = 1"),
            vec!["role r { allow view", "let x = 1"]
        );
    }
}
