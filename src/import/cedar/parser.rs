//! A recursive-descent reader of Cedar's policy syntax (the shape of cedar-policy-core's
//! grammar: policies with annotations, scopes, `when`/`unless`, and expressions by precedence).

use super::ast::{ActionScope, Effect, Expr, ExprKind, Policy, Scope, ScopeRef, Uid, Var};
use super::error::ImportError;
use super::lexer::{Tok, lex, string_value, unescape};
use crate::ast::BinaryOp as BinOp;
use crate::check::MAX_DEPTH;
use crate::source::Span;

/// Reads tokens left to right; shared by the policy and the schema readers.
pub(crate) struct Cursor<'s> {
    tokens: Vec<(Tok<'s>, Span)>,
    at: usize,
    end: Span,
    /// How many nested expressions or types are open: bounded, so that deep input is refused
    /// before the recursive reader can overflow its stack.
    depth: usize,
}

impl<'s> Cursor<'s> {
    pub fn new(text: &'s str) -> Result<Cursor<'s>, ImportError> {
        let end = Span::new(text.len(), text.len());
        Ok(Cursor {
            tokens: lex(text)?,
            at: 0,
            end,
            depth: 0,
        })
    }

    /// Reads one nested level with `read`, refusing input nested deeper than Warden's own
    /// limit (which the written policy must meet anyway).
    pub fn nested<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, ImportError>,
    ) -> Result<T, ImportError> {
        if self.depth >= MAX_DEPTH {
            return Err(ImportError::Invalid {
                message: format!("nested more than {MAX_DEPTH} levels deep"),
                span: self.span(),
                help: Some("split the expression with intermediate conditions".to_string()),
            });
        }
        self.depth += 1;
        // Frames of the recursive reader are large in unoptimised builds: a level may move to
        // a fresh stack segment, as the compiler's and evaluator's walks do.
        let read = crate::program::stack::grow(|| read(self));
        self.depth -= 1;
        read
    }

    pub fn peek(&self) -> Option<Tok<'s>> {
        self.tokens.get(self.at).map(|(t, _)| *t)
    }

    pub(crate) fn peek2(&self) -> Option<Tok<'s>> {
        self.tokens.get(self.at + 1).map(|(t, _)| *t)
    }

    pub fn span(&self) -> Span {
        self.tokens.get(self.at).map_or(self.end, |(_, s)| *s)
    }

    /// The span of the token just consumed.
    pub(crate) fn prev_span(&self) -> Span {
        self.at
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(self.end, |(_, s)| *s)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.at >= self.tokens.len()
    }

    pub(crate) fn bump(&mut self) -> Option<Tok<'s>> {
        let t = self.peek();
        self.at += 1;
        t
    }

    pub(crate) fn eat(&mut self, tok: Tok<'_>) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        if self.peek() == Some(Tok::Ident(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    pub fn error(&self, expected: &str) -> ImportError {
        ImportError::Syntax {
            found: self
                .peek()
                .map_or_else(|| "end of file".to_string(), |t| t.describe()),
            span: self.span(),
            expected: expected.to_string(),
        }
    }

    pub fn expect(&mut self, tok: Tok<'_>, expected: &str) -> Result<(), ImportError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    pub(crate) fn expect_word(&mut self, word: &str) -> Result<(), ImportError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(&format!("`{word}`")))
        }
    }

    pub fn ident(&mut self, expected: &str) -> Result<&'s str, ImportError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                self.at += 1;
                Ok(s)
            }
            _ => Err(self.error(expected)),
        }
    }

    pub fn string(&mut self, expected: &str) -> Result<String, ImportError> {
        match self.peek() {
            Some(Tok::Str(raw)) => {
                let at = self.span().start as usize + 1;
                self.at += 1;
                string_value(raw, at)
            }
            _ => Err(self.error(expected)),
        }
    }

    /// `A::B::C` (stopping before a `::` followed by a string).
    pub fn path(&mut self, expected: &str) -> Result<String, ImportError> {
        let mut path = self.ident(expected)?.to_string();
        while self.peek() == Some(Tok::ColonColon) && matches!(self.peek2(), Some(Tok::Ident(_))) {
            self.at += 1;
            path.push_str("::");
            path.push_str(self.ident("a name")?);
        }
        Ok(path)
    }

    /// `@name` or `@name("value")`, any number of them.
    pub fn annotations(&mut self) -> Result<Vec<(String, Option<String>)>, ImportError> {
        let mut out = Vec::new();
        while self.eat(Tok::At) {
            let name = self.ident("an annotation name")?.to_string();
            let value = if self.eat(Tok::LParen) {
                let v = self.string("the annotation's string")?;
                self.expect(Tok::RParen, "`)`")?;
                Some(v)
            } else {
                None
            };
            out.push((name, value));
        }
        Ok(out)
    }
}

/// Reads a file of policies and templates.
pub(crate) fn parse_policies(text: &str) -> Result<Vec<Policy>, ImportError> {
    let mut c = Cursor::new(text)?;
    let mut out = Vec::new();
    while !c.at_end() {
        out.push(policy(&mut c)?);
    }
    Ok(out)
}

fn policy(c: &mut Cursor<'_>) -> Result<Policy, ImportError> {
    let start = c.span();
    let annotations = c.annotations()?;
    let effect = match c.peek() {
        Some(Tok::Ident("permit")) => Effect::Permit,
        Some(Tok::Ident("forbid")) => Effect::Forbid,
        _ => return Err(c.error("`permit` or `forbid`")),
    };
    c.bump();
    c.expect(Tok::LParen, "`(`")?;
    let p0 = c.span();
    let principal = head_scope(c, "principal", "?principal")?;
    let principal_span = p0.to(c.prev_span());
    c.expect(Tok::Comma, "`,`")?;
    let a0 = c.span();
    let action = action_scope(c)?;
    let action_span = a0.to(c.prev_span());
    c.expect(Tok::Comma, "`,`")?;
    let r0 = c.span();
    let resource = head_scope(c, "resource", "?resource")?;
    let resource_span = r0.to(c.prev_span());
    c.eat(Tok::Comma);
    c.expect(Tok::RParen, "`)`")?;
    let mut conditions = Vec::new();
    loop {
        let when = if c.eat_word("when") {
            true
        } else if c.eat_word("unless") {
            false
        } else {
            break;
        };
        c.expect(Tok::LBrace, "`{`")?;
        let e = expr(c)?;
        c.expect(Tok::RBrace, "`}`")?;
        conditions.push((when, e));
    }
    c.expect(Tok::Semi, "`;` or `when`/`unless`")?;
    Ok(Policy {
        annotations,
        effect,
        principal,
        principal_span,
        action,
        action_span,
        resource,
        resource_span,
        conditions,
        span: start.to(c.prev_span()),
    })
}

fn scope_ref(c: &mut Cursor<'_>, slot: &str) -> Result<ScopeRef, ImportError> {
    if let Some(Tok::Slot(s)) = c.peek() {
        if s != slot {
            return Err(c.error(&format!("an entity or `{slot}`")));
        }
        c.bump();
        return Ok(ScopeRef::Slot);
    }
    Ok(ScopeRef::Uid(uid(c)?))
}

fn uid(c: &mut Cursor<'_>) -> Result<Uid, ImportError> {
    let ty = c.path("an entity type")?;
    c.expect(Tok::ColonColon, "`::`")?;
    if c.peek() == Some(Tok::LBrace) {
        return Err(ImportError::Unsupported {
            construct: "an entity written as a record (`Type::{ … }`)".to_string(),
            span: c.span(),
            help: "write the entity as `Type::\"id\"`".to_string(),
        });
    }
    let id = c.string("the entity's id")?;
    Ok(Uid { ty, id })
}

fn head_scope(c: &mut Cursor<'_>, var: &str, slot: &str) -> Result<Scope, ImportError> {
    c.expect_word(var)?;
    if c.eat(Tok::EqEq) {
        return Ok(Scope::Eq(scope_ref(c, slot)?));
    }
    if c.eat_word("is") {
        let ty = c.path("an entity type")?;
        let within = if c.eat_word("in") {
            Some(scope_ref(c, slot)?)
        } else {
            None
        };
        return Ok(Scope::Is(ty, within));
    }
    if c.eat_word("in") {
        return Ok(Scope::In(scope_ref(c, slot)?));
    }
    Ok(Scope::Any)
}

fn action_scope(c: &mut Cursor<'_>) -> Result<ActionScope, ImportError> {
    c.expect_word("action")?;
    if c.eat(Tok::EqEq) {
        return Ok(ActionScope::Eq(uid(c)?));
    }
    if c.eat_word("in") {
        if c.eat(Tok::LBracket) {
            let mut list = Vec::new();
            while !c.eat(Tok::RBracket) {
                list.push(uid(c)?);
                if !c.eat(Tok::Comma) {
                    c.expect(Tok::RBracket, "`,` or `]`")?;
                    break;
                }
            }
            return Ok(ActionScope::In(list));
        }
        return Ok(ActionScope::In(vec![uid(c)?]));
    }
    Ok(ActionScope::Any)
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// `if … then … else …` or an `||` chain.
pub fn expr(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    c.nested(expr_unbounded)
}

fn expr_unbounded(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let start = c.span();
    if c.eat_word("if") {
        let cond = expr(c)?;
        c.expect_word("then")?;
        let then = expr(c)?;
        c.expect_word("else")?;
        let other = expr(c)?;
        let span = start.to(other.span);
        return Ok(Expr {
            kind: ExprKind::If(boxed(cond), boxed(then), boxed(other)),
            span,
        });
    }
    let mut lhs = and(c)?;
    while c.eat(Tok::OrOr) {
        let rhs = and(c)?;
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary(BinOp::Or, boxed(lhs), boxed(rhs)),
            span,
        };
    }
    Ok(lhs)
}

fn and(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let mut lhs = relation(c)?;
    while c.eat(Tok::AndAnd) {
        let rhs = relation(c)?;
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary(BinOp::And, boxed(lhs), boxed(rhs)),
            span,
        };
    }
    Ok(lhs)
}

fn relation(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let lhs = add(c)?;
    let op = match c.peek() {
        Some(Tok::EqEq) => BinOp::Eq,
        Some(Tok::Ne) => BinOp::Ne,
        Some(Tok::Lt) => BinOp::Lt,
        Some(Tok::Le) => BinOp::Le,
        Some(Tok::Gt) => BinOp::Gt,
        Some(Tok::Ge) => BinOp::Ge,
        Some(Tok::Ident("in")) => BinOp::In,
        Some(Tok::Ident("has")) => {
            c.bump();
            let mut path = vec![attr_name(c)?];
            while c.eat(Tok::Dot) {
                path.push(attr_name(c)?);
            }
            let span = lhs.span.to(c.prev_span());
            return Ok(Expr {
                kind: ExprKind::Has(boxed(lhs), path),
                span,
            });
        }
        Some(Tok::Ident("like")) => {
            c.bump();
            let Some(Tok::Str(raw)) = c.peek() else {
                return Err(c.error("a pattern string"));
            };
            let at = c.span().start as usize + 1;
            c.bump();
            let pattern = unescape(raw, at, true)?;
            let span = lhs.span.to(c.prev_span());
            return Ok(Expr {
                kind: ExprKind::Like(boxed(lhs), pattern),
                span,
            });
        }
        Some(Tok::Ident("is")) => {
            c.bump();
            let ty = c.path("an entity type")?;
            let within = if c.eat_word("in") {
                Some(boxed(add(c)?))
            } else {
                None
            };
            let span = lhs.span.to(c.prev_span());
            return Ok(Expr {
                kind: ExprKind::Is(boxed(lhs), ty, within),
                span,
            });
        }
        _ => return Ok(lhs),
    };
    c.bump();
    let rhs = add(c)?;
    let span = lhs.span.to(rhs.span);
    Ok(Expr {
        kind: ExprKind::Binary(op, boxed(lhs), boxed(rhs)),
        span,
    })
}

fn attr_name(c: &mut Cursor<'_>) -> Result<String, ImportError> {
    match c.peek() {
        Some(Tok::Ident(s)) => {
            c.bump();
            Ok(s.to_string())
        }
        Some(Tok::Str(_)) => c.string("an attribute name"),
        _ => Err(c.error("an attribute name")),
    }
}

fn add(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let mut lhs = mul(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Plus) => BinOp::Add,
            Some(Tok::Minus) => BinOp::Sub,
            _ => return Ok(lhs),
        };
        c.bump();
        let rhs = mul(c)?;
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary(op, boxed(lhs), boxed(rhs)),
            span,
        };
    }
}

fn mul(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let mut lhs = unary(c)?;
    while c.eat(Tok::Star) {
        let rhs = unary(c)?;
        let span = lhs.span.to(rhs.span);
        lhs = Expr {
            kind: ExprKind::Binary(BinOp::Mul, boxed(lhs), boxed(rhs)),
            span,
        };
    }
    Ok(lhs)
}

fn unary(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    c.nested(unary_unbounded)
}

fn unary_unbounded(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let start = c.span();
    if c.eat(Tok::Bang) {
        let e = unary(c)?;
        let span = start.to(e.span);
        return Ok(Expr {
            kind: ExprKind::Not(boxed(e)),
            span,
        });
    }
    if c.eat(Tok::Minus) {
        let e = unary(c)?;
        let span = start.to(e.span);
        // `-9223372036854775808` is a literal, not the negation of one too large.
        if let ExprKind::Long(n) = e.kind {
            return Ok(Expr {
                kind: ExprKind::Long(-n),
                span,
            });
        }
        return Ok(Expr {
            kind: ExprKind::Neg(boxed(e)),
            span,
        });
    }
    member(c)
}

fn member(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let mut e = primary(c)?;
    loop {
        if c.eat(Tok::Dot) {
            let name = c.ident("an attribute or method name")?.to_string();
            if c.eat(Tok::LParen) {
                let args = list(c, Tok::RParen)?;
                let span = e.span.to(c.prev_span());
                e = Expr {
                    kind: ExprKind::Method(boxed(e), name, args),
                    span,
                };
            } else {
                let span = e.span.to(c.prev_span());
                e = Expr {
                    kind: ExprKind::Attr(boxed(e), name),
                    span,
                };
            }
        } else if c.eat(Tok::LBracket) {
            let key = c.string("a string key")?;
            c.expect(Tok::RBracket, "`]`")?;
            let span = e.span.to(c.prev_span());
            e = Expr {
                kind: ExprKind::Attr(boxed(e), key),
                span,
            };
        } else {
            return Ok(e);
        }
    }
}

/// Expressions separated by commas up to `close` (consumed); a trailing comma is allowed.
fn list(c: &mut Cursor<'_>, close: Tok<'_>) -> Result<Vec<Expr>, ImportError> {
    let mut out = Vec::new();
    while !c.eat(close) {
        out.push(expr(c)?);
        if !c.eat(Tok::Comma) {
            c.expect(close, "`,` or a closing bracket")?;
            break;
        }
    }
    Ok(out)
}

fn primary(c: &mut Cursor<'_>) -> Result<Expr, ImportError> {
    let start = c.span();
    let done = |kind: ExprKind, c: &Cursor<'_>| Expr {
        kind,
        span: start.to(c.prev_span()),
    };
    match c.peek() {
        Some(Tok::Int(digits)) => {
            c.bump();
            let n: i128 = digits.parse().map_err(|_| ImportError::Lexical {
                message: format!("integer `{digits}` is too large"),
                span: start,
            })?;
            Ok(done(ExprKind::Long(n), c))
        }
        Some(Tok::Str(_)) => {
            let s = c.string("a string")?;
            Ok(done(ExprKind::Str(s), c))
        }
        Some(Tok::Slot(s)) => {
            c.bump();
            Ok(done(ExprKind::Slot(s.to_string()), c))
        }
        Some(Tok::LParen) => {
            c.bump();
            let e = expr(c)?;
            c.expect(Tok::RParen, "`)`")?;
            Ok(e)
        }
        Some(Tok::LBracket) => {
            c.bump();
            let items = list(c, Tok::RBracket)?;
            Ok(done(ExprKind::Set(items), c))
        }
        Some(Tok::LBrace) => {
            c.bump();
            let mut fields = Vec::new();
            while !c.eat(Tok::RBrace) {
                let key = attr_name(c)?;
                c.expect(Tok::Colon, "`:`")?;
                fields.push((key, expr(c)?));
                if !c.eat(Tok::Comma) {
                    c.expect(Tok::RBrace, "`,` or `}`")?;
                    break;
                }
            }
            Ok(done(ExprKind::Record(fields), c))
        }
        Some(Tok::Ident(word)) => {
            let path = c.path("an expression")?;
            if c.peek() == Some(Tok::ColonColon) {
                c.bump();
                if c.peek() == Some(Tok::LBrace) {
                    return Err(ImportError::Unsupported {
                        construct: "an entity written as a record (`Type::{ … }`)".to_string(),
                        span: c.span(),
                        help: "write the entity as `Type::\"id\"`".to_string(),
                    });
                }
                let id = c.string("the entity's id")?;
                return Ok(done(ExprKind::Entity(Uid { ty: path, id }), c));
            }
            if c.eat(Tok::LParen) {
                let args = list(c, Tok::RParen)?;
                return Ok(done(ExprKind::Call(path, args), c));
            }
            let kind = match (path.as_str(), word) {
                ("true", _) => ExprKind::Bool(true),
                ("false", _) => ExprKind::Bool(false),
                ("principal", _) => ExprKind::Var(Var::Principal),
                ("action", _) => ExprKind::Var(Var::Action),
                ("resource", _) => ExprKind::Var(Var::Resource),
                ("context", _) => ExprKind::Var(Var::Context),
                _ => {
                    return Err(ImportError::Invalid {
                        message: format!("unknown name `{path}`"),
                        span: start.to(c.prev_span()),
                        help: Some(
                            "Cedar's variables are `principal`, `action`, `resource` and `context`"
                                .to_string(),
                        ),
                    });
                }
            };
            Ok(done(kind, c))
        }
        _ => Err(c.error("an expression")),
    }
}
