//! Names that are not declarations: `let`s (unique, acyclic, in dependency order), rule ids
//! (`@id`, unique across the directory) and annotations.

use std::collections::HashMap;

use crate::ast::{self, Annotation, Expr, ExprKind, Item};
use crate::check::declare;
use crate::check::error::{CheckError, Lint};
use crate::check::graph::Graph;
use crate::check::suggest;
use crate::check::{Ctx, Loc};

/// The annotations the language knows.
const ANNOTATIONS: [&str; 2] = ["id", "doc"];

/// A `let` by name: where it is and how often other items use it.
#[derive(Debug)]
pub(crate) struct LetDef<'f> {
    pub file: usize,
    pub decl: &'f ast::LetDecl,
    pub uses: usize,
}

#[derive(Debug, Default)]
pub struct Names<'f> {
    /// Every `let` (the first, when a name is declared twice).
    pub lets: HashMap<String, LetDef<'f>>,
    /// The `let`s, each after every `let` it uses (cycles broken where they close).
    pub let_order: Vec<String>,
    /// Rule ids, with where each is written.
    pub rule_ids: HashMap<String, Loc>,
}

pub fn resolve<'f>(ctx: &mut Ctx<'f>) -> Names<'f> {
    let mut names = Names::default();
    let files = ctx.files;
    let mut let_locs: HashMap<String, Loc> = HashMap::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            annotations(
                ctx,
                &mut names,
                file,
                item_annotations(item),
                IdAllowed::from(item),
            );
            match item {
                Item::Let(decl) => {
                    let loc = Loc {
                        file,
                        span: decl.name.span,
                    };
                    if let Some(first) = let_locs.get(&decl.name.name).copied() {
                        declare::duplicate(
                            ctx,
                            "let",
                            &decl.name.name,
                            loc,
                            first,
                            "`let` names are unique across the policy directory",
                        );
                        continue;
                    }
                    let_locs.insert(decl.name.name.clone(), loc);
                    names.lets.insert(
                        decl.name.name.clone(),
                        LetDef {
                            file,
                            decl,
                            uses: 0,
                        },
                    );
                }
                Item::Role(role) => {
                    for grant in &role.grants {
                        annotations(ctx, &mut names, file, &grant.annotations, IdAllowed::Yes);
                    }
                }
                _ => {}
            }
        }
    }
    count_uses(ctx, &mut names);
    order_lets(ctx, &mut names);
    names
}

fn item_annotations(item: &Item) -> &[Annotation] {
    match item {
        Item::Entity(i) => &i.annotations,
        Item::Action(i) => &i.annotations,
        Item::ActionGroup(i) => &i.annotations,
        Item::Role(i) => &i.annotations,
        Item::Rule(i) => &i.annotations,
        Item::Let(i) => &i.annotations,
        Item::Test(i) => &i.annotations,
        Item::Route(i) => &i.annotations,
        Item::Capability(i) => &i.annotations,
        Item::Limit(i) => &i.annotations,
        Item::Namespace(i) => &i.annotations,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum IdAllowed {
    Yes,
    No(&'static str),
}

impl IdAllowed {
    fn from(item: &Item) -> IdAllowed {
        match item {
            // A capability's id names the grant a token makes in explanations and tests.
            Item::Rule(_) | Item::Capability(_) => IdAllowed::Yes,
            Item::Entity(_) => IdAllowed::No("an entity declaration"),
            Item::Action(_) | Item::ActionGroup(_) => IdAllowed::No("an action declaration"),
            Item::Role(_) => IdAllowed::No("a role (put it on one of its grants)"),
            Item::Let(_) => IdAllowed::No("a `let` (its name is its id)"),
            Item::Test(_) => IdAllowed::No("a test (its name is its id)"),
            Item::Route(_) => IdAllowed::No("a route"),
            Item::Limit(_) => IdAllowed::No("a limit (its name is its id)"),
            Item::Namespace(_) => IdAllowed::No("a namespace"),
        }
    }
}

fn annotations(
    ctx: &mut Ctx<'_>,
    names: &mut Names<'_>,
    file: usize,
    annotations: &[Annotation],
    id_allowed: IdAllowed,
) {
    let mut seen: Vec<&str> = Vec::new();
    for annotation in annotations {
        let name = annotation.name.name.as_str();
        if !ANNOTATIONS.contains(&name) {
            let help = match suggest::nearest(name, ANNOTATIONS) {
                Some(known) => format!("did you mean `@{known}`?"),
                None => "the annotations are `@id(\"...\")` (a rule's stable id) and `@doc(\"...\")`; remove this one".to_string(),
            };
            ctx.report(
                file,
                Lint::UnknownAnnotation {
                    name: name.to_string(),
                    span: annotation.span,
                    help,
                },
            );
            continue;
        }
        if seen.contains(&name) {
            ctx.report(
                file,
                CheckError::Annotation {
                    message: format!("`@{name}` is given twice"),
                    span: annotation.span,
                    label: "a second time".to_string(),
                    help: "keep one of them".to_string(),
                },
            );
            continue;
        }
        seen.push(name);
        let Some(value) = &annotation.value else {
            ctx.report(
                file,
                CheckError::Annotation {
                    message: format!("`@{name}` needs a value"),
                    span: annotation.span,
                    label: "no value".to_string(),
                    help: format!("write `@{name}(\"...\")`"),
                },
            );
            continue;
        };
        if name != "id" {
            continue;
        }
        if let IdAllowed::No(what) = id_allowed {
            ctx.report(
                file,
                CheckError::Annotation {
                    message: format!("`@id` cannot be put on {what}"),
                    span: annotation.span,
                    label: "not a rule".to_string(),
                    help: "`@id` names `allow` and `deny` rules and the grants inside roles; remove it".to_string(),
                },
            );
            continue;
        }
        if value.value.trim().is_empty() {
            ctx.report(
                file,
                CheckError::Annotation {
                    message: "a rule id cannot be empty".to_string(),
                    span: value.span,
                    label: "empty".to_string(),
                    help: "give the rule a name that says what it does: `@id(\"owner-photos\")`"
                        .to_string(),
                },
            );
            continue;
        }
        let loc = Loc {
            file,
            span: value.span,
        };
        match names.rule_ids.get(&value.value).copied() {
            Some(first) => {
                let help = match ctx.same_file(file, first) {
                    Some(_) => {
                        "rule ids are unique across the policy directory; rename one of them"
                            .to_string()
                    }
                    None => format!(
                        "first used at {}; rule ids are unique across the policy directory; rename one of them",
                        ctx.location(first)
                    ),
                };
                ctx.report(
                    file,
                    CheckError::DuplicateId {
                        id: value.value.clone(),
                        span: value.span,
                        first: ctx.same_file(file, first),
                        help,
                    },
                );
            }
            None => {
                names.rule_ids.insert(value.value.clone(), loc);
            }
        }
    }
}

/// Calls `f` on `expr` and every expression inside it. The recursion is as deep as one
/// expression, which the parser bounds; `let`s are not followed.
pub(crate) fn visit<'e>(expr: &'e Expr, f: &mut impl FnMut(&'e Expr)) {
    f(expr);
    expr.for_each_child(|child| visit(child, f));
}

/// Every expression written in an item (conditions, `let` values, test values).
pub(crate) fn item_exprs<'f>(item: &'f Item, f: &mut impl FnMut(&'f Expr)) {
    match item {
        Item::Rule(rule) => {
            if let Some(condition) = &rule.condition {
                f(&condition.expr);
            }
        }
        Item::Role(role) => {
            for grant in &role.grants {
                if let Some(condition) = &grant.condition {
                    f(&condition.expr);
                }
            }
        }
        Item::Let(decl) => f(&decl.value),
        Item::Capability(capability) => {
            if let Some(mint) = capability.mint() {
                f(mint);
            }
        }
        Item::Limit(limit) => {
            f(&limit.key);
            if let Some(condition) = &limit.condition {
                f(&condition.expr);
            }
        }
        Item::Test(test) => {
            for statement in &test.statements {
                match statement {
                    ast::TestStatement::Given(given) => {
                        given.attributes.iter().for_each(|(_, e)| f(e))
                    }
                    ast::TestStatement::Expect(expect) => {
                        for with in &expect.with {
                            match with {
                                ast::WithClause::Context(e)
                                | ast::WithClause::Properties(_, e)
                                | ast::WithClause::Capability(_, Some(e)) => f(e),
                                ast::WithClause::Capability(_, None) => {}
                            }
                        }
                        if let Some(at) = &expect.at {
                            f(at);
                        }
                    }
                    ast::TestStatement::Data(_) | ast::TestStatement::GivenRole(_) => {}
                }
            }
        }
        Item::Entity(_)
        | Item::Action(_)
        | Item::ActionGroup(_)
        | Item::Route(_)
        | Item::Namespace(_) => {}
    }
}

/// Counts the uses of each `let` outside its own value (unknown names are the type checker's).
fn count_uses(ctx: &Ctx<'_>, names: &mut Names<'_>) {
    for parsed in ctx.files {
        for item in &parsed.ast.items {
            let own = match item {
                Item::Let(decl) => Some(decl.name.name.as_str()),
                _ => None,
            };
            item_exprs(item, &mut |expr| {
                visit(expr, &mut |e| {
                    if let ExprKind::Let(ident) = &e.kind
                        && Some(ident.name.as_str()) != own
                        && let Some(def) = names.lets.get_mut(&ident.name)
                    {
                        def.uses += 1;
                    }
                });
            });
        }
    }
}

/// Orders the `let`s so that each comes after those it uses, and reports cycles.
fn order_lets(ctx: &mut Ctx<'_>, names: &mut Names<'_>) {
    let mut list: Vec<&str> = names.lets.keys().map(String::as_str).collect();
    // Sorted by position, so that the order (and which edge "closes" a cycle) is stable.
    list.sort_by_key(|name| {
        names
            .lets
            .get(*name)
            .map(|def| (def.file, def.decl.span.start))
    });
    let index: HashMap<&str, usize> = list.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut graph = Graph::new(list.len());
    for (i, name) in list.iter().enumerate() {
        let Some(def) = names.lets.get(*name) else {
            continue;
        };
        visit(&def.decl.value, &mut |e| {
            if let ExprKind::Let(ident) = &e.kind
                && let Some(&j) = index.get(ident.name.as_str())
            {
                graph.add_edge(
                    i,
                    j,
                    Loc {
                        file: def.file,
                        span: ident.span,
                    },
                );
            }
        });
    }
    let walk = graph.walk();
    for (cycle, at) in &walk.cycles {
        let text: Vec<&str> = cycle.iter().filter_map(|&i| list.get(i).copied()).collect();
        ctx.report(
            at.file,
            CheckError::LetCycle {
                cycle: text.join(" → "),
                span: at.span,
            },
        );
    }
    names.let_order = walk
        .post_order
        .iter()
        .filter_map(|&i| list.get(i).map(|n| n.to_string()))
        .collect();
}
