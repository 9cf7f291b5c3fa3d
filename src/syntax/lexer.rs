//! The adapter between the logos lexer and the lalrpop parser.
//!
//! It cuts the whole file into tokens once, keeps comments aside for the formatter, and splits
//! the token stream into items so that each item is parsed on its own: a mistake in one item
//! is reported and the next item is still parsed (recovery at item boundaries).

use logos::Logos;

use crate::source::Span;
use crate::syntax::token::{LexError, Token};

/// A token with its byte offsets. The offsets are `u32`, as in [`Span`]: a file's tokens are
/// all held at once, and a token is a fifth smaller than with `usize` offsets.
pub type Spanned<'s> = (u32, Token<'s>, u32);

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
    // Room for a token every four bytes, more than policies have: growing the vector of a
    // large file by doubling copied it and touched twice its pages.
    let mut tokens = Vec::with_capacity(text.len() / 4 + 1);
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
            Ok(token) => tokens.push((span.start, token, span.end)),
            // A run of characters the language does not know (a stretch of a binary file, a
            // pasted emoji) is one mistake, not one per character.
            Err(LexError::UnexpectedCharacter)
                if errors
                    .last()
                    .is_some_and(|(last, last_span): &(LexError, Span)| {
                        *last == LexError::UnexpectedCharacter && last_span.end == span.start
                    }) =>
            {
                if let Some((_, last_span)) = errors.last_mut() {
                    last_span.end = span.end;
                }
            }
            Err(error) => errors.push((error, span)),
        }
    }
    mark_set_words(&mut tokens);
    Lexed {
        tokens,
        comments,
        errors,
    }
}

/// Gives `all` and `any` after `contains`, and `empty` after `is`, the tokens of the set
/// tests (`s contains all t`, `s contains any t`, `s is empty`). They stay names everywhere
/// else, so a role, a group or an action may still be called `all` or `empty`.
///
/// `all` or `any` after `contains` is a `let` only when no operand follows it
/// (`s contains all and x`); where an operand follows (`[`, `(`, a name, a variable, a
/// literal), it is the set test. `is empty` is always the emptiness test, so an entity type named `empty` is
/// not tested with `is`.
fn mark_set_words(tokens: &mut [Spanned<'_>]) {
    for index in 1..tokens.len() {
        let after_contains = matches!(tokens.get(index - 1), Some((_, Token::Contains, _)));
        let after_is = matches!(tokens.get(index - 1), Some((_, Token::Is, _)));
        if !after_contains && !after_is {
            continue;
        }
        // (A name that starts the next item or clause, `limit` or `lifetime`, is no operand.)
        let next_starts_an_operand = match tokens.get(index + 1).map(|(_, t, _)| t) {
            Some(Token::Ident(name)) => {
                !matches!(*name, "limit" | "lifetime" | "mint" | "delegable")
            }
            // An entity literal whose type is a keyword: `route::"r1"`.
            Some(keyword) if keyword.is_keyword() && !matches!(keyword, Token::Not) => {
                matches!(tokens.get(index + 2), Some((_, Token::ColonColon, _)))
                    || matches!(
                        keyword,
                        Token::Subject
                            | Token::Resource
                            | Token::Context
                            | Token::True
                            | Token::False
                    )
                    || *keyword == Token::Action
                // (`action view on Photo` declares the next item.)
                && !matches!(
                    tokens.get(index + 2),
                    Some((_, Token::Ident(_) | Token::Str(_) | Token::Group, _))
                )
            }
            next => matches!(
                next,
                Some(
                    Token::LBracket
                        | Token::LParen
                        | Token::LBrace
                        | Token::Str(_)
                        | Token::Int(_)
                        | Token::Duration(_)
                        | Token::Minus
                )
            ),
        };
        let Some((_, token, _)) = tokens.get_mut(index) else {
            continue;
        };
        let word = match &*token {
            Token::Ident("all") if after_contains && next_starts_an_operand => Token::All,
            Token::Ident("any") if after_contains && next_starts_an_operand => Token::Any,
            Token::Ident("empty") if after_is => Token::Empty,
            _ => continue,
        };
        *token = word;
    }
}

/// The most operators and brackets one expression may hold. Later stages walk expressions
/// recursively; the limit keeps them far from the end of any thread's stack.
pub const MAX_EXPRESSION_SIZE: usize = 512;

/// Splits a token stream into items, returned as index ranges into `tokens`.
///
/// An item starts at `entity`, `role`, `let`, `test`, `route`, `capability`, or `action` followed by a name or
/// `group` — wherever they stand, since they never occur inside another item — and at `allow`,
/// `deny` or `@` outside any `{ }` block (role grants and test expectations stand inside one).
/// A `(` or `[` left open does not hide the next rule: `allow` and `deny` never stand inside
/// them. A Cedar policy (`permit (` or `forbid (`) outside a block is an item of its own too, so
/// that each one pasted from Cedar is reported. Annotations stay with the item they precede.
///
/// `names` is [`keywords_used_as_names`] of `tokens`, computed once for the file: the parse
/// driver hands the same classification to [`oversized_expression`].
pub(crate) fn split_items(tokens: &[Spanned<'_>], names: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut items = Vec::new();
    let mut start = 0;
    // How many `{` blocks are open in the current item.
    let mut braces = 0usize;
    // True while the current item holds nothing but annotations (`@id("x")`), which belong to
    // the item keyword that follows them.
    let mut only_annotations = false;

    let is_name = |index: usize| names.get(index).copied().unwrap_or(false);
    for (index, (_, token, _)) in tokens.iter().enumerate() {
        let next = tokens.get(index + 1).map(|(_, t, _)| t);
        let as_name = is_name(index);
        let starts_anywhere = !as_name
            && match token {
                Token::Entity | Token::Role | Token::Let | Token::Test | Token::Route => true,
                // `with capability NAME` in a test expectation presents a token (unless that
                // `with` is itself a name: `x has with`).
                Token::Capability => !index.checked_sub(1).is_some_and(|previous| {
                    tokens
                        .get(previous)
                        .is_some_and(|(_, t, _)| *t == Token::With)
                        && !is_name(previous)
                }),
                // `action` is also the request variable: inside a capability's braces, a
                // `mint if ... action` followed by the next clause's word is not a declaration.
                // So is an expression ending in `action` before a `limit NAME:` item, which
                // no declaration can be (`action limit` is followed by `,`, `on`, ... there).
                Token::Action => {
                    matches!(
                        next,
                        Some(Token::Ident(_)) | Some(Token::Str(_)) | Some(Token::Group)
                    ) && !(matches!(next, Some(Token::Ident("limit")))
                        && matches!(tokens.get(index + 2), Some((_, Token::Ident(_), _)))
                        && matches!(tokens.get(index + 3), Some((_, Token::Colon, _))))
                        && !(braces > 0
                            && matches!(
                                next,
                                Some(Token::Ident("lifetime" | "mint" | "delegable"))
                            )
                            && tokens.get(start..index).is_some_and(|item| {
                                item.iter().any(|(_, t, _)| *t == Token::Capability)
                            }))
                }
                _ => false,
            };
        let cedar = matches!(token, Token::Ident("permit" | "forbid"))
            && matches!(next, Some(Token::LParen));
        // `limit NAME:` starts a limit; `limit` is otherwise a free name.
        let limit = matches!(token, Token::Ident("limit"))
            && matches!(next, Some(Token::Ident(_)))
            && matches!(tokens.get(index + 2), Some((_, Token::Colon, _)));
        // `namespace NAME` starts the item that names the file's namespace, unless it is an
        // attribute (`e.namespace`).
        let namespace = matches!(token, Token::Ident("namespace"))
            && matches!(next, Some(Token::Ident(_)))
            && !index
                .checked_sub(1)
                .is_some_and(|previous| matches!(tokens.get(previous), Some((_, Token::Dot, _))));
        let starts_at_top = !as_name
            && braces == 0
            && (cedar
                || limit
                || namespace
                || matches!(token, Token::Allow | Token::Deny | Token::At_));

        if (starts_anywhere || starts_at_top) && index > start && !only_annotations {
            items.push(start..index);
            start = index;
            braces = 0;
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
            Token::LBrace => braces += 1,
            Token::RBrace => braces = braces.saturating_sub(1),
            _ => {}
        }
    }
    if start < tokens.len() {
        items.push(start..tokens.len());
    }
    items
}

/// For each token, whether it is a keyword standing where the grammar takes a name (see
/// [`keyword_used_as_name`]). One pass, left to right: whether a keyword is a name depends on
/// whether the keyword before it is one, and on whether it continues a list of type names
/// (`on A, B, route`), which is carried along rather than looked for (a long list stays linear).
pub(crate) fn keywords_used_as_names(tokens: &[Spanned<'_>]) -> Vec<bool> {
    let mut names: Vec<bool> = Vec::with_capacity(tokens.len());
    let mut listed: Vec<bool> = Vec::with_capacity(tokens.len());
    for (index, (_, token, _)) in tokens.iter().enumerate() {
        // Only a keyword can be a name, and only a keyword or a name can be listed: the rest
        // (most tokens) need no look around.
        if !matches!(token, Token::Ident(_)) && !token.is_keyword() {
            names.push(false);
            listed.push(false);
            continue;
        }
        let at_work = |i: usize| !names.get(i).copied().unwrap_or(false);
        let kind = |i: usize| tokens.get(i).map(|(_, t, _)| t);
        // Where a list of type names goes on: after `on`, `in` or `in [` at work, or after a
        // `,` that follows a name of such a list.
        let in_list = match index.checked_sub(1) {
            Some(previous) => match kind(previous) {
                Some(Token::On | Token::In | Token::By) => at_work(previous),
                Some(Token::LBracket) => previous
                    .checked_sub(1)
                    .is_some_and(|i| matches!(kind(i), Some(Token::In)) && at_work(i)),
                // A `,` after a name of the list, or the `::` of a qualified one (`on acme::role`).
                Some(Token::Comma | Token::ColonColon) => previous
                    .checked_sub(1)
                    .is_some_and(|i| listed.get(i).copied().unwrap_or(false)),
                _ => false,
            },
            None => false,
        };
        let name = keyword_used_as_name(tokens, index, &names, in_list);
        listed.push(in_list && (name || matches!(token, Token::Ident(_))));
        names.push(name);
    }
    names
}

/// True when the token at `index` is a keyword standing where the grammar takes a name: an
/// attribute (`subject.role`), a `has` target (`context has test`), a record key or attribute
/// declaration (`role: String`, `test?: Bool`), the `role` of `given role`, or an entity type
/// name (see [`type_name_position`]). There it neither starts an item nor separates
/// expressions; treating it as a keyword would cut `subject.role == "admin"` in two, and would
/// let an expression grow past the size limit unnoticed.
///
/// The token before counts only when it is itself a keyword at work (`names` holds the answer
/// for every token before `index`): in `x has has`, the second `has` is a name and makes
/// nothing after it a name; in `a.given entity E`, `given` is an attribute and `entity` starts
/// an item.
fn keyword_used_as_name(
    tokens: &[Spanned<'_>],
    index: usize,
    names: &[bool],
    in_type_list: bool,
) -> bool {
    let token = tokens.get(index).map(|(_, t, _)| t);
    if !token.is_some_and(|t| t.is_keyword()) {
        return false;
    }
    let next = tokens.get(index + 1).map(|(_, t, _)| t);
    // A key (`role: String`) or an entity type before `::` (`route::"r1"`).
    if matches!(
        next,
        Some(Token::Colon | Token::Question | Token::ColonColon)
    ) {
        return true;
    }
    let Some(previous_index) = index.checked_sub(1) else {
        return false;
    };
    let at_work = |i: usize| !names.get(i).copied().unwrap_or(false);
    match tokens.get(previous_index).map(|(_, t, _)| t) {
        // An attribute, or the last part of a qualified type name (`acme::role`).
        Some(Token::Dot | Token::ColonColon) => true,
        Some(Token::Has) => at_work(previous_index),
        Some(Token::Given) => matches!(token, Some(Token::Role)) && at_work(previous_index),
        _ => type_name_position(tokens, index, &at_work, in_type_list),
    }
}

/// True where only a name can stand, so that a keyword there is one: an entity type
/// (`entity route`, `on route`, `in [group]`, `is role`, `Set<test>`, `owner: data`), or the
/// name a `let`, `role` or `capability` declares (which the parser then refuses with "`route`
/// is a keyword" rather than seeing two broken items).
///
/// A keyword followed by a name, a string or `*` starts an item even there (`entity` with its
/// name missing, then `allow view ...`): no type name is followed by one, but for the words
/// of a capability's clauses, an enumeration's `enum [` and the `limit NAME:` that starts a
/// limit.
fn type_name_position(
    tokens: &[Spanned<'_>],
    index: usize,
    at_work: &impl Fn(usize) -> bool,
    in_type_list: bool,
) -> bool {
    let kind = |i: usize| tokens.get(i).map(|(_, t, _)| t);
    let next = kind(index + 1);
    let Some(previous) = index.checked_sub(1) else {
        return false;
    };
    // The name a declaration gives, when what follows shows the declaration goes on.
    match kind(previous) {
        Some(Token::Let) => return matches!(next, Some(Token::Assign)) && at_work(previous),
        Some(Token::Role) => return matches!(next, Some(Token::LBrace)) && at_work(previous),
        Some(Token::Capability) => return matches!(next, Some(Token::On)) && at_work(previous),
        _ => {}
    }
    // (The words of a capability's clauses follow a `mint if` condition: `is route lifetime`;
    // `limit NAME:` and `namespace NAME` start the next item: `on role` then
    // `limit uploads: ...`.)
    // (`entity route enum [...]`: an enumerated type's name is followed by `enum [`.)
    let clause_word = matches!(next, Some(Token::Ident("lifetime" | "mint" | "delegable")))
        || (matches!(next, Some(Token::Ident("enum")))
            && matches!(kind(index + 2), Some(Token::LBracket)))
        || (matches!(next, Some(Token::Ident("limit")))
            && matches!(kind(index + 2), Some(Token::Ident(_)))
            && matches!(kind(index + 3), Some(Token::Colon)))
        || (matches!(next, Some(Token::Ident("namespace")))
            && matches!(kind(index + 2), Some(Token::Ident(_))));
    if matches!(next, Some(Token::Ident(_) | Token::Str(_) | Token::Star)) && !clause_word {
        return false;
    }
    in_type_list
        || match kind(previous) {
            Some(Token::Entity | Token::Is) => at_work(previous),
            Some(Token::Lt | Token::Colon) => true,
            _ => false,
        }
}

/// How far [`keyword_used_as_name`] looks ahead: the classification of a token depends on
/// the tokens up to three places after it.
const NAME_LOOKAHEAD: usize = 3;

/// Finds an expression larger than [`MAX_EXPRESSION_SIZE`] in one item, returning the span of
/// the token that crossed the limit.
///
/// `names` is the file's [`keywords_used_as_names`] for these tokens. The item is measured as
/// if it stood alone: the file's classification equals the item's own except on its last
/// [`NAME_LOOKAHEAD`] tokens, whose lookahead runs past the item's end (an item starts where
/// no keyword is a name, so what comes before it changes nothing). Those few tokens can decide
/// only when the count is within their reach of the limit; then the item's own classification
/// is computed.
pub(crate) fn oversized_expression(tokens: &[Spanned<'_>], names: &[bool]) -> Option<Span> {
    let keyword = tokens.iter().map(|(_, t, _)| t).find(|t| {
        matches!(
            t,
            Token::Entity
                | Token::Action
                | Token::Role
                | Token::Allow
                | Token::Deny
                | Token::Let
                | Token::Test
        )
    });
    if matches!(keyword, Some(Token::Entity | Token::Action)) {
        return oversized_type(tokens);
    }
    // Each token adds one at most.
    if tokens.len() <= MAX_EXPRESSION_SIZE {
        return None;
    }
    let settled = tokens.len().saturating_sub(NAME_LOOKAHEAD);
    match expression_size(tokens.get(..settled).unwrap_or(&[]), names) {
        Err(span) => Some(span),
        Ok(size) if size + NAME_LOOKAHEAD <= MAX_EXPRESSION_SIZE => None,
        Ok(_) => expression_size(tokens, &keywords_used_as_names(tokens)).err(),
    }
}

/// The size of the expression `tokens` end in, or the span of the token that made an
/// expression cross [`MAX_EXPRESSION_SIZE`]. `names[i]` tells whether token `i` is a keyword
/// used as a name.
fn expression_size(tokens: &[Spanned<'_>], names: &[bool]) -> Result<usize, Span> {
    let mut size = 0usize;
    for (index, (l, token, r)) in tokens.iter().enumerate() {
        // An `if` inside an expression (`x == (if c then a else b)`) is an operator.
        let expression_if = *token == Token::If
            && index.checked_sub(1).is_some_and(|previous| {
                tokens.get(previous).is_some_and(|(_, t, _)| {
                    counts_in_expression(t)
                        || matches!(
                            t,
                            Token::If
                                | Token::Unless
                                | Token::Comma
                                | Token::Colon
                                | Token::Assign
                                | Token::At
                                | Token::All
                                | Token::Any
                        )
                })
            });
        match token {
            // A keyword used as a name (`x.if`) is inside an expression: it resets nothing.
            _ if names.get(index).copied().unwrap_or(false) => {}
            token if expression_if || counts_in_expression(token) => {
                size += 1;
                if size > MAX_EXPRESSION_SIZE {
                    return Err(Span { start: *l, end: *r });
                }
            }
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
            | Token::Route
            | Token::Capability
            | Token::Test => size = 0,
            _ => {}
        }
    }
    Ok(size)
}

/// The operators and brackets an expression's size counts.
fn counts_in_expression(token: &Token<'_>) -> bool {
    matches!(
        token,
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
            | Token::Minus
            | Token::Then
            | Token::Else
    )
}

/// Declarations hold only types, and a type is exactly as deep as its open brackets (`{`, `<`):
/// an entity with hundreds of `Set<String>` attributes is long, not deep, so it is measured by
/// depth rather than by size.
fn oversized_type(tokens: &[Spanned<'_>]) -> Option<Span> {
    let mut depth = 0usize;
    for (l, token, r) in tokens {
        match token {
            Token::LBrace | Token::Lt | Token::LBracket | Token::LParen => {
                depth += 1;
                if depth > MAX_EXPRESSION_SIZE {
                    return Some(Span { start: *l, end: *r });
                }
            }
            Token::RBrace | Token::Gt | Token::RBracket | Token::RParen => {
                depth = depth.saturating_sub(1);
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
        split_items(&lexed.tokens, &keywords_used_as_names(&lexed.tokens))
            .into_iter()
            .map(|range| {
                let (start, _, _) = lexed.tokens[range.start];
                let (_, _, end) = lexed.tokens[range.end - 1];
                text[start as usize..end as usize].to_string()
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
    fn an_expression_ending_in_action_is_not_a_declaration_before_a_limit() {
        assert_eq!(
            items("let a = -action limit l: 1 * per 1s per true action limit on P"),
            vec![
                "let a = -action",
                "limit l: 1 * per 1s per true",
                "action limit on P"
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
    fn an_unclosed_block_ends_at_the_next_declaration() {
        assert_eq!(
            items("role r { allow view let x = 1"),
            vec!["role r { allow view", "let x = 1"]
        );
    }

    #[test]
    fn keywords_used_as_names_split_nothing() {
        assert_eq!(
            items(
                "entity U { role: String, test?: Bool } allow view if subject.role == \"a\" and context.deny and context has let test \"t\" { given role r for U::\"a\" }"
            ),
            vec![
                "entity U { role: String, test?: Bool }",
                "allow view if subject.role == \"a\" and context.deny and context has let",
                "test \"t\" { given role r for U::\"a\" }"
            ]
        );
    }

    #[test]
    fn an_unclosed_paren_ends_at_the_next_rule() {
        assert_eq!(
            items("allow view if (a and [b deny list"),
            vec!["allow view if (a and [b", "deny list"]
        );
    }

    #[test]
    fn each_cedar_policy_is_an_item() {
        assert_eq!(
            items(
                "permit (principal, action, resource) when { x }; forbid (principal) allow view if permit"
            ),
            vec![
                "permit (principal, action, resource) when { x };",
                "forbid (principal)",
                "allow view if permit"
            ]
        );
    }

    fn oversized(text: &str) -> bool {
        let lexed = lex(text);
        assert!(lexed.errors.is_empty());
        oversized_expression(&lexed.tokens, &keywords_used_as_names(&lexed.tokens)).is_some()
    }

    #[test]
    fn keywords_used_as_names_do_not_reset_the_size() {
        let half = "(".repeat(MAX_EXPRESSION_SIZE / 2 + 1);
        // `x.if` and `{ if: ... }` are still inside one expression.
        assert!(oversized(&format!("allow v if {half} x.if {half} y")));
        let record = "{ if: ".repeat(MAX_EXPRESSION_SIZE + 1);
        assert!(oversized(&format!("allow v if {record}")));
        // A real `if` or `allow` starts a new expression.
        let grants = format!("allow v if {half} ").repeat(3);
        assert!(!oversized(&format!("role r {{ {grants} }}")));
    }

    #[test]
    fn an_item_is_measured_as_if_it_stood_alone() {
        // The file's classification of keywords looks past an item's end; near the limit the
        // item is measured with its own, as the parser sees it.
        let endings = [
            "x",
            "x in",
            "x.if",
            "context has data",
            "resource is route",
            "x contains all",
            "subject in role",
        ];
        let nexts = [
            "allow v",
            "limit l: 1 * per 1s per true",
            "entity E",
            "permit (principal)",
            "namespace n",
            "@id(\"a\") deny v",
        ];
        for ending in endings {
            for next in nexts {
                for short in 0..6 {
                    let opens = "(".repeat(MAX_EXPRESSION_SIZE - short);
                    let text = format!("allow v if {opens}{ending} {next}");
                    let lexed = lex(&text);
                    let names = keywords_used_as_names(&lexed.tokens);
                    for range in split_items(&lexed.tokens, &names) {
                        let tokens = &lexed.tokens[range.clone()];
                        assert_eq!(
                            oversized_expression(tokens, &names[range]),
                            oversized_expression(tokens, &keywords_used_as_names(tokens)),
                            "{ending} | {next} | {short}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn declarations_are_measured_by_depth() {
        let many = "a: Set<String>, b: { c: Set<Int> }, ".repeat(MAX_EXPRESSION_SIZE);
        assert!(!oversized(&format!("@doc(\"x\") entity E {{ {many} }}")));
        assert!(!oversized(&format!("action a context {{ {many} }}")));
        let deep = format!(
            "{}String{}",
            "Set<".repeat(MAX_EXPRESSION_SIZE + 1),
            ">".repeat(MAX_EXPRESSION_SIZE + 1)
        );
        assert!(oversized(&format!("entity E {{ a: {deep} }}")));
        let half = "Set<".repeat(MAX_EXPRESSION_SIZE / 2 + 1);
        assert!(oversized(&format!("entity E {{ a: {half}{{ b: {half}")));
    }
}
