//! Cedar policies as read: plain data with spans into the policy file.

use super::lexer::PatternElem;
use crate::ast::BinaryOp;
use crate::source::Span;

/// `Type::"id"`; `ty` holds the whole path (`A::B::User`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uid {
    pub ty: String,
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Permit,
    Forbid,
}

/// An entity in a scope: a literal or a template slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScopeRef {
    Uid(Uid),
    Slot,
}

/// The principal's or the resource's part of a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Any,
    Eq(ScopeRef),
    In(ScopeRef),
    Is(String, Option<ScopeRef>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ActionScope {
    Any,
    Eq(Uid),
    In(Vec<Uid>),
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub annotations: Vec<(String, Option<String>)>,
    pub effect: Effect,
    pub principal: Scope,
    pub principal_span: Span,
    pub action: ActionScope,
    pub action_span: Span,
    pub resource: Scope,
    pub resource_span: Span,
    /// `(true, e)` for `when { e }`, `(false, e)` for `unless { e }`.
    pub conditions: Vec<(bool, Expr)>,
    pub span: Span,
}

impl Policy {
    pub(crate) fn is_template(&self) -> bool {
        let slot = |s: &Scope| {
            matches!(
                s,
                Scope::Eq(ScopeRef::Slot)
                    | Scope::In(ScopeRef::Slot)
                    | Scope::Is(_, Some(ScopeRef::Slot))
            )
        };
        slot(&self.principal) || slot(&self.resource)
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Principal,
    Action,
    Resource,
    Context,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Bool(bool),
    /// The digits as written; a unary minus in front is folded in when the literal is read.
    Long(i128),
    Str(String),
    Entity(Uid),
    Var(Var),
    Slot(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// Every binary operator Warden has, with Cedar's meaning (`contains` is a method in Cedar).
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `if c then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `e has a.b.c`
    Has(Box<Expr>, Vec<String>),
    Like(Box<Expr>, Vec<PatternElem>),
    Is(Box<Expr>, String, Option<Box<Expr>>),
    /// `e.a` and `e["a"]`
    Attr(Box<Expr>, String),
    /// `e.name(args)`
    Method(Box<Expr>, String, Vec<Expr>),
    /// `name(args)`: an extension function.
    Call(String, Vec<Expr>),
    Set(Vec<Expr>),
    Record(Vec<(String, Expr)>),
}
