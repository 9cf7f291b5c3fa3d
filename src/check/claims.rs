//! A lint that needs the server's configuration: a JWT claim mapped to a verified attribute
//! (`jwt_claims`) that a `deny` rule reads of `subject`. A verified claim wins over the stored
//! attribute, so a token that carries the claim with another value (`"suspended": false`)
//! switches the `deny` off for its bearer, whatever the store says.

use std::collections::{BTreeSet, HashMap};

use crate::ast::{Effect, Expr, ExprKind, Item, Var};
use crate::check::Ctx;
use crate::check::error::Lint;
use crate::check::resolve::visit;
use crate::source::Diagnostic;
use crate::syntax::ParsedFile;

/// Warnings for every read of `subject.ATTR` (or `subject has ATTR`) in a `deny` rule's
/// condition, or in a `let` it uses, where `ATTR` is the attribute of one of the `mapped`
/// `(claim, attribute)` pairs.
pub(crate) fn mapped_claims_in_denies(
    files: &[ParsedFile],
    mapped: &[(String, String)],
) -> Vec<Diagnostic> {
    if mapped.is_empty() {
        return Vec::new();
    }
    let mut lets: HashMap<&str, (usize, &Expr)> = HashMap::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            if let Item::Let(decl) = item {
                lets.entry(decl.name.name.as_str())
                    .or_insert((file, &decl.value));
            }
        }
    }
    let is_subject = |expr: &Expr| match &expr.kind {
        ExprKind::Var(Var::Subject) => true,
        ExprKind::Let(name) => lets
            .get(name.name.as_str())
            .is_some_and(|(_, value)| matches!(value.kind, ExprKind::Var(Var::Subject))),
        _ => false,
    };
    // (file, span start, span end, attribute): one read per attribute and rule, each reported
    // once (two rules may share a `let`), in source order.
    let mut reads: BTreeSet<(usize, u32, u32, &str)> = BTreeSet::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            let Item::Rule(rule) = item else { continue };
            let (Effect::Deny, Some(condition)) = (rule.effect, &rule.condition) else {
                continue;
            };
            // The first read of each attribute, per rule.
            let mut first: HashMap<&str, (usize, u32, u32)> = HashMap::new();
            let mut pending = vec![(file, &condition.expr)];
            let mut seen_lets: BTreeSet<&str> = BTreeSet::new();
            while let Some((file, expr)) = pending.pop() {
                visit(expr, &mut |e| match &e.kind {
                    ExprKind::Attr { base, name } | ExprKind::Has { base, name }
                        if is_subject(base) =>
                    {
                        let here = (file, e.span.start, e.span.end);
                        let entry = first.entry(name.text.as_str()).or_insert(here);
                        *entry = (*entry).min(here);
                    }
                    ExprKind::Let(name) => {
                        if seen_lets.insert(name.name.as_str())
                            && let Some(&(at, value)) = lets.get(name.name.as_str())
                        {
                            pending.push((at, value));
                        }
                    }
                    _ => {}
                });
            }
            reads.extend(
                first
                    .into_iter()
                    .map(|(attribute, (file, start, end))| (file, start, end, attribute)),
            );
        }
    }
    let mut ctx = Ctx::new(files);
    for (file, start, end, attribute) in reads {
        for (claim, _) in mapped.iter().filter(|(_, a)| a == attribute) {
            ctx.report(
                file,
                Lint::ClaimOverridesDeny {
                    claim: claim.clone(),
                    attribute: attribute.to_string(),
                    span: crate::source::Span::new(start as usize, end as usize),
                    help: format!(
                        "a verified claim wins over the stored attribute, so a token whose `{claim}` says otherwise turns this `deny` off for its bearer; remove `{claim}` from `jwt_claims` and keep `{attribute}` in the store, unless the token's issuer is where `{attribute}` is decided"
                    ),
                },
            );
        }
    }
    ctx.diagnostics
}
