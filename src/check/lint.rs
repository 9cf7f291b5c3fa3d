//! Lints: warnings about policies that load but cannot mean what their author meant. Each
//! is a decidable rule over the syntax tree and the schema (see the module doc of
//! [`crate::check`] for the list).

use std::collections::BTreeSet;

use crate::ast::{self, BinaryOp, ConditionKind, Effect, Expr, ExprKind, Item, UnaryOp};
use crate::check::error::Lint;
use crate::check::resolve::Names;
use crate::check::schema::Schema;
use crate::check::suggest;
use crate::check::{Ctx, Loc};

pub(crate) fn lint(ctx: &mut Ctx<'_>, schema: &Schema, names: &Names<'_>) {
    let files = ctx.files;
    let mut denies: Vec<Cover> = Vec::new();
    // What each allow covers is worked out only when some unconditional deny could shadow it:
    // expanding the actions of 100,000 grants for nothing was a twentieth of loading them.
    let mut allows: Vec<(usize, crate::source::Span, &ast::Actions, &[ast::Ident])> = Vec::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            match item {
                Item::Rule(rule) => {
                    never_fires(ctx, schema, file, &rule.actions, &rule.resource_types);
                    if let Some(condition) = &rule.condition {
                        constant_condition(ctx, file, condition);
                    }
                    match rule.effect {
                        Effect::Deny if unconditional(rule.condition.as_ref()) => denies.push(
                            Cover::of(schema, file, rule.span, &rule.actions, &rule.resource_types),
                        ),
                        Effect::Deny => {}
                        Effect::Allow => {
                            allows.push((file, rule.span, &rule.actions, &rule.resource_types))
                        }
                    }
                }
                Item::Role(role) => {
                    if role.grants.is_empty() && role.inherits.is_empty() {
                        ctx.report(
                            file,
                            Lint::UnusedRole {
                                name: role.name.name.clone(),
                                span: role.name.span,
                                help: "give it grants (`allow view on Photo`) or inherit a role (`role name : viewer`), or remove it".to_string(),
                            },
                        );
                    }
                    for grant in &role.grants {
                        never_fires(ctx, schema, file, &grant.actions, &grant.resource_types);
                        if let Some(condition) = &grant.condition {
                            constant_condition(ctx, file, condition);
                        }
                        allows.push((file, grant.span, &grant.actions, &grant.resource_types));
                    }
                }
                // A `let` that is a plain `true` or `false` is a switch, written on purpose.
                Item::Let(decl) => constant_parts(ctx, file, &decl.value),
                _ => {}
            }
        }
    }
    if !denies.is_empty() {
        let allows: Vec<Cover> = allows
            .into_iter()
            .map(|(file, span, actions, on)| Cover::of(schema, file, span, actions, on))
            .collect();
        shadowed(ctx, &allows, &denies);
    }
    unused_lets(ctx, names);
}

/// A `deny` without a condition, or whose condition is constantly satisfied.
fn unconditional(condition: Option<&ast::Condition>) -> bool {
    match condition {
        None => true,
        Some(c) => fold(&c.expr) == Some(c.kind == ConditionKind::If),
    }
}

/// Lint: a rule names an action that applies to none of its `on` types (so, for that action,
/// the rule can never fire). Only actions declared with resource types are judged; an action
/// group counts when none of its actions applies.
fn never_fires(
    ctx: &mut Ctx<'_>,
    schema: &Schema,
    file: usize,
    actions: &ast::Actions,
    on: &[ast::Ident],
) {
    let ast::Actions::List(names) = actions else {
        return;
    };
    if on.is_empty() || !schema.declares_entities() {
        return;
    }
    let on_types: Vec<&str> = on
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| schema.entity_types.contains_key(*t))
        .collect();
    if on_types.is_empty() {
        return;
    }
    for name in names {
        let expanded = schema.expand_action(&name.text);
        let mut applies_to: BTreeSet<&str> = BTreeSet::new();
        let mut judged = !expanded.is_empty();
        for action in &expanded {
            match schema.actions.get(action) {
                Some(declared) if !declared.resource_types.is_empty() => {
                    applies_to.extend(declared.resource_types.iter().map(String::as_str));
                }
                _ => judged = false,
            }
        }
        if !judged || on_types.iter().any(|t| applies_to.contains(t)) {
            continue;
        }
        let first = on_types.first().copied().unwrap_or_default();
        ctx.report(
            file,
            Lint::NeverFires {
                action: name.text.clone(),
                types: suggest::list_with(&on_types, "or"),
                span: name.span,
                help: format!(
                    "`{}` applies to {}; remove it from this rule, or add `{first}` to its declaration",
                    name.text,
                    suggest::list_with(&applies_to, "or")
                ),
            },
        );
    }
}

/// The requests a rule covers, by action and resource type; `None` is "all".
struct Cover {
    loc: Loc,
    actions: Option<BTreeSet<String>>,
    types: Option<BTreeSet<String>>,
}

impl Cover {
    fn of(
        schema: &Schema,
        file: usize,
        span: crate::source::Span,
        actions: &ast::Actions,
        on: &[ast::Ident],
    ) -> Cover {
        let actions = match actions {
            ast::Actions::Any(_) => None,
            ast::Actions::List(names) => Some(
                names
                    .iter()
                    .flat_map(|n| schema.expand_action(&n.text))
                    .collect::<BTreeSet<_>>(),
            ),
        };
        let types = if !on.is_empty() {
            Some(on.iter().map(|t| t.name.clone()).collect())
        } else {
            // Without `on`, the rule covers the types its actions apply to, when all declare some.
            actions.as_ref().and_then(|names| {
                let mut types = BTreeSet::new();
                for name in names {
                    let declared = schema.actions.get(name)?;
                    if declared.resource_types.is_empty() {
                        return None;
                    }
                    types.extend(declared.resource_types.iter().cloned());
                }
                Some(types)
            })
        };
        Cover {
            loc: Loc { file, span },
            actions,
            types,
        }
    }

    fn covers(&self, other: &Cover) -> bool {
        fn within(inner: &Option<BTreeSet<String>>, outer: &Option<BTreeSet<String>>) -> bool {
            match (inner, outer) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(inner), Some(outer)) => !inner.is_empty() && inner.is_subset(outer),
            }
        }
        within(&other.actions, &self.actions) && within(&other.types, &self.types)
    }
}

/// Lint: an `allow` (or grant) every request of which is covered by an unconditional `deny`:
/// the deny's actions include the allow's (after group expansion; `*` includes all) and its
/// resource types include the allow's (no `on` includes all).
fn shadowed(ctx: &mut Ctx<'_>, allows: &[Cover], denies: &[Cover]) {
    for allow in allows {
        let Some(deny) = denies.iter().find(|deny| deny.covers(allow)) else {
            continue;
        };
        let deny_span = ctx.same_file(allow.loc.file, deny.loc);
        let help = match deny_span {
            Some(_) => "any matching `deny` wins; give the `deny` a condition, narrow it, or remove the `allow`".to_string(),
            None => format!(
                "the `deny` at {} has no condition and covers it, and any matching `deny` wins; give the `deny` a condition, narrow it, or remove the `allow`",
                ctx.location(deny.loc)
            ),
        };
        ctx.report(
            allow.loc.file,
            Lint::Shadowed {
                span: allow.loc.span,
                deny: deny_span,
                help,
            },
        );
    }
}

/// Lint: a `let` that nothing uses. Names starting with `_` are exempt.
fn unused_lets(ctx: &mut Ctx<'_>, names: &Names<'_>) {
    let mut unused: Vec<_> = names
        .lets
        .iter()
        .filter(|(name, def)| def.uses == 0 && !name.starts_with('_'))
        .collect();
    unused.sort_by_key(|(_, def)| (def.file, def.decl.span.start));
    for (name, def) in unused {
        ctx.report(
            def.file,
            Lint::UnusedLet {
                name: name.clone(),
                span: def.decl.name.span,
                help: format!(
                    "use it in a rule, or remove it (or name it `_{name}` to keep it unused)"
                ),
            },
        );
    }
}

/// Lint: a rule's whole condition, or a part of any condition, that has the same value for
/// every request. A plain `true`/`false` inside a larger condition is left alone (it was
/// written on purpose); the whole condition being one is not.
fn constant_condition(ctx: &mut Ctx<'_>, file: usize, condition: &ast::Condition) {
    if let Some(value) = fold(&condition.expr) {
        let applies = value == (condition.kind == ConditionKind::If);
        let help = if applies {
            "the rule applies to every request it covers; remove the condition if that is meant"
                .to_string()
        } else {
            "the rule can never apply; fix the condition, or remove the rule".to_string()
        };
        ctx.report(
            file,
            Lint::ConstantCondition {
                value,
                span: condition.expr.span,
                help,
            },
        );
        return;
    }
    constant_parts(ctx, file, &condition.expr);
}

fn constant_parts(ctx: &mut Ctx<'_>, file: usize, expr: &Expr) {
    if !matches!(expr.kind, ExprKind::Bool(_))
        && let Some(value) = fold(expr)
    {
        ctx.report(
            file,
            Lint::ConstantCondition {
                value,
                span: expr.span,
                help: format!("this part has the same value for every request; replace it with `{value}`, or fix it"),
            },
        );
        return;
    }
    match &expr.kind {
        ExprKind::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            lhs,
            rhs,
        } => {
            constant_parts(ctx, file, lhs);
            constant_parts(ctx, file, rhs);
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => constant_parts(ctx, file, operand),
        _ => {}
    }
}

/// A literal's value, for folding comparisons of two literals.
#[derive(PartialEq, PartialOrd)]
enum Literal<'e> {
    Bool(bool),
    Int(i64),
    Str(&'e str),
    Duration(i64),
    Entity(&'e str, &'e str),
}

fn literal(expr: &Expr) -> Option<Literal<'_>> {
    match &expr.kind {
        ExprKind::Bool(b) => Some(Literal::Bool(*b)),
        ExprKind::Int(i) => Some(Literal::Int(*i)),
        ExprKind::Str(s) => Some(Literal::Str(s)),
        ExprKind::Duration(d) => Some(Literal::Duration(*d)),
        ExprKind::Entity { ty, id } => Some(Literal::Entity(&ty.name, id)),
        _ => None,
    }
}

/// The value of a condition that is the same for every request, without error: literals,
/// `not`, `and`/`or` in their short-circuit order (`false and x` is false, `x and false` is
/// not folded since `x` may error), and comparisons of two literals of one kind.
pub fn fold(expr: &Expr) -> Option<bool> {
    match &expr.kind {
        ExprKind::Bool(b) => Some(*b),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => fold(operand).map(|b| !b),
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinaryOp::And => match fold(lhs)? {
                false => Some(false),
                true => fold(rhs),
            },
            BinaryOp::Or => match fold(lhs)? {
                true => Some(true),
                false => fold(rhs),
            },
            _ => {
                let (l, r) = (literal(lhs)?, literal(rhs)?);
                if std::mem::discriminant(&l) != std::mem::discriminant(&r) {
                    return None;
                }
                match op {
                    BinaryOp::Eq => Some(l == r),
                    BinaryOp::Ne => Some(l != r),
                    BinaryOp::Lt if ordered(&l) => Some(l < r),
                    BinaryOp::Le if ordered(&l) => Some(l <= r),
                    BinaryOp::Gt if ordered(&l) => Some(l > r),
                    BinaryOp::Ge if ordered(&l) => Some(l >= r),
                    _ => None,
                }
            }
        },
        _ => None,
    }
}

fn ordered(literal: &Literal<'_>) -> bool {
    matches!(literal, Literal::Int(_) | Literal::Duration(_))
}
