//! The one limit on how deep an expression nests, counted with every `let` it names expanded
//! into that `let`'s value: the shape the compiler builds and the evaluator walks.
//!
//! Nothing here recurses: the `let`s are measured in dependency order, each from the depths of
//! those it names, and each expression with an explicit stack. A chain of `let`s, each built
//! on the one before, is as deep as the whole chain, however short each `let` is.

use std::collections::HashMap;

use crate::ast::{Expr, ExprKind, Item};
use crate::check::Ctx;
use crate::check::error::CheckError;
use crate::check::resolve::{Names, item_exprs};

/// The deepest an expression may nest, `let`s expanded. The parser bounds one expression well
/// below it (`syntax::lexer::MAX_EXPRESSION_SIZE`), so only `let`s that build on each other
/// reach it.
pub const MAX_DEPTH: usize = 1024;

/// How deep an expression is, and the `let` it names through which it is deepest.
#[derive(Clone, Copy)]
struct Measured<'f> {
    depth: usize,
    via: Option<&'f str>,
}

/// Reports every expression deeper than [`MAX_DEPTH`] where it first crosses the limit: a
/// `let` or condition that builds on `let`s within the limit. What builds on an expression
/// already reported is not reported again (a chain of thousands of `let`s is one error).
pub(crate) fn check_depth(ctx: &mut Ctx<'_>, names: &Names<'_>) {
    let mut lets: HashMap<&str, Measured<'_>> = HashMap::with_capacity(names.lets.len());
    for name in &names.let_order {
        if let Some(def) = names.lets.get(name) {
            let measured = measure(&def.decl.value, &lets);
            lets.insert(name.as_str(), measured);
        }
    }
    // Every level of an expression is at least a byte shorter than the level above it, so
    // an expression is no deeper than its text is long, plus the deepest `let` it may name:
    // one short enough is not walked (most are, and walking each again is a pass over every
    // node of the tree).
    let deepest_let = lets.values().map(|m| m.depth).max().unwrap_or(0);
    let files = ctx.files;
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            item_exprs(item, &mut |expr| {
                let length = expr.span.end.saturating_sub(expr.span.start) as usize;
                if length.saturating_add(deepest_let) <= MAX_DEPTH {
                    return;
                }
                let measured = match item {
                    Item::Let(decl) => match lets.get(decl.name.name.as_str()) {
                        Some(measured) => *measured,
                        None => measure(expr, &lets),
                    },
                    _ => measure(expr, &lets),
                };
                if measured.depth <= MAX_DEPTH {
                    return;
                }
                let base = measured.via.and_then(|via| lets.get(via).map(|m| (via, m)));
                if base.is_some_and(|(_, m)| m.depth > MAX_DEPTH) {
                    return;
                }
                let help = match base {
                    Some((via, m)) => format!(
                        "this builds on `{via}`, which is {} levels deep through {}; `let`s \
                         count as the nesting they stand for: combine conditions side by side \
                         (`a and b and c`) rather than each `let` on the one before",
                        m.depth,
                        chain(via, &lets)
                    ),
                    None => "name parts of the expression with `let`s side by side".to_string(),
                };
                ctx.report(
                    file,
                    CheckError::TooDeep {
                        limit: MAX_DEPTH,
                        span: expr.span,
                        depth: measured.depth,
                        help,
                    },
                );
            });
        }
    }
}

/// The depth of `expr`, each `let` counted as deep as its value; a `let` not measured (unknown,
/// or in a cycle) counts as one level.
fn measure<'f>(expr: &'f Expr, lets: &HashMap<&str, Measured<'f>>) -> Measured<'f> {
    let mut deepest = Measured {
        depth: 0,
        via: None,
    };
    let mut stack = vec![(expr, 1usize)];
    while let Some((expr, level)) = stack.pop() {
        if let ExprKind::Let(ident) = &expr.kind {
            let inner = lets.get(ident.name.as_str()).map_or(1, |m| m.depth);
            let depth = level - 1 + inner;
            if depth > deepest.depth || deepest.via.is_none() && depth == deepest.depth {
                deepest = Measured {
                    depth,
                    via: Some(ident.name.as_str()),
                };
            }
        } else {
            if level > deepest.depth {
                deepest = Measured {
                    depth: level,
                    via: None,
                };
            }
            expr.for_each_child(|child| stack.push((child, level + 1)));
        }
    }
    deepest
}

/// The chain of `let`s below `start`, for a help line: "a chain of 1023 `let`s (`a1022` →
/// `a1021` → … → `a0`)".
fn chain(start: &str, lets: &HashMap<&str, Measured<'_>>) -> String {
    const SHOWN: usize = 3;
    let mut names = vec![start];
    let mut current = start;
    while let Some(next) = lets.get(current).and_then(|m| m.via) {
        // A cycle (reported on its own) would make the links go round.
        if names.len() > lets.len() {
            break;
        }
        names.push(next);
        current = next;
    }
    let count = names.len();
    let shown: Vec<String> = if count <= SHOWN + 1 {
        names.iter().map(|n| format!("`{n}`")).collect()
    } else {
        let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
        shown.push("…".to_string());
        shown.extend(names.last().map(|n| format!("`{n}`")));
        shown
    };
    if count == 1 {
        format!("its own value ({})", shown.join(""))
    } else {
        format!("a chain of {count} `let`s ({})", shown.join(" → "))
    }
}
