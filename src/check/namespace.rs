//! Namespaces: `namespace acme` at the top of a file puts the entity types it declares in
//! `acme`, so that several teams' files can each declare a `User`.
//!
//! Before anything else reads the files, every entity type name in them is rewritten to the
//! full name every later stage, the data files and the wire use (`acme::User`):
//!
//! - a declaration in a namespaced file: `entity User` in `namespace acme` is `acme::User`;
//! - a qualified name (`acme::User`) stays as written; a namespace no file declares is an error;
//! - a short name (`User`) means the type of the file's own namespace when it declares one,
//!   else the type declared outside every namespace; a short name that only other namespaces
//!   declare is an error that says how to qualify it (and, when several do, that it is
//!   ambiguous). A name declared nowhere is left for the type checker to report, qualified
//!   with the file's namespace (in a directory without declarations, where any type may be
//!   named, that is the type it means).
//!
//! Actions, roles, `let`s and rule ids are shared by the whole directory, namespaced or not.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{
    AttrDecl, EntityRef, Expr, ExprKind, Ident, Item, TestStatement, TypeExpr, WithClause,
};
use crate::check::declare::BUILTIN_TYPES;
use crate::check::error::CheckError;
use crate::check::{Ctx, suggest};
use crate::source::Diagnostic;
use crate::syntax::ParsedFile;

/// Rewrites every entity type name of `files` to its full name; the diagnostics are the
/// namespace mistakes found (the names they concern are left as written).
pub fn qualify_names(files: &mut [ParsedFile]) -> Vec<Diagnostic> {
    let mut ctx = Ctx::new(files);
    let namespaces: Vec<Option<String>> = (0..files.len())
        .map(|file| file_namespace(&mut ctx, file))
        .collect();
    let declared = Declared::collect(files, &namespaces);
    let mut diagnostics = ctx.diagnostics;
    for (file, namespace) in files.iter_mut().zip(&namespaces) {
        let mut errors = Vec::new();
        let scope = Scope {
            declared: &declared,
            namespace: namespace.as_deref(),
        };
        for item in &mut file.ast.items {
            scope.item(item, &mut |error| errors.push(error));
        }
        diagnostics.extend(
            errors
                .into_iter()
                .map(|error| Diagnostic::in_file(error, &file.source)),
        );
    }
    diagnostics
}

/// The file's namespace: its `namespace` item, which must come first and only once.
fn file_namespace(ctx: &mut Ctx<'_>, file: usize) -> Option<String> {
    let items = &ctx.files.get(file)?.ast.items;
    let mut found: Option<String> = None;
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Item::Namespace(decl) = item else {
            continue;
        };
        if let Some(first) = &found {
            errors.push(CheckError::Namespace {
                message: format!("a second namespace `{}` in one file", decl.name.name),
                span: decl.span,
                help: format!(
                    "a file has one namespace (here `{first}`); put the declarations of \
                     `{}` in a file of their own",
                    decl.name.name
                ),
            });
            continue;
        }
        if index > 0 {
            errors.push(CheckError::Namespace {
                message: format!("namespace `{}` after other items", decl.name.name),
                span: decl.span,
                help: "write `namespace NAME` first in the file: it names the namespace of \
                       everything the file declares"
                    .to_string(),
            });
        }
        found = Some(decl.name.name.clone());
    }
    for error in errors {
        ctx.report(file, error);
    }
    found
}

/// The entity types each namespace declares (`None`: outside every namespace), by short name.
struct Declared {
    /// Short name → the namespaces that declare it.
    by_short_name: BTreeMap<String, BTreeSet<Option<String>>>,
    namespaces: BTreeSet<String>,
    any: bool,
}

impl Declared {
    fn collect(files: &[ParsedFile], namespaces: &[Option<String>]) -> Declared {
        let mut declared = Declared {
            by_short_name: BTreeMap::new(),
            namespaces: namespaces.iter().flatten().cloned().collect(),
            any: false,
        };
        for (file, namespace) in files.iter().zip(namespaces) {
            for item in &file.ast.items {
                if let Item::Entity(decl) = item {
                    declared.any = true;
                    let (prefix, short) = split(&decl.name.name);
                    // `entity acme::User` is refused in `scope.item`; outside a namespace it
                    // declares nothing here either.
                    if prefix.is_none() {
                        declared
                            .by_short_name
                            .entry(short.to_string())
                            .or_default()
                            .insert(namespace.clone());
                    }
                }
            }
        }
        declared
    }

    fn declares(&self, namespace: Option<&str>, short: &str) -> bool {
        self.by_short_name
            .get(short)
            .is_some_and(|found| found.contains(&namespace.map(str::to_string)))
    }
}

/// `acme::billing::Invoice` → (`acme::billing`, `Invoice`).
fn split(name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once("::") {
        Some((prefix, short)) => (Some(prefix), short),
        None => (None, name),
    }
}

fn full(namespace: Option<&str>, short: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}::{short}"),
        None => short.to_string(),
    }
}

/// One file's view: its namespace, and every declaration of the directory.
struct Scope<'d> {
    declared: &'d Declared,
    namespace: Option<&'d str>,
}

impl Scope<'_> {
    fn item(&self, item: &mut Item, report: &mut impl FnMut(CheckError)) {
        let mut name = |ident: &mut Ident| self.reference(ident, report);
        match item {
            Item::Entity(decl) => {
                self.declaration(&mut decl.name, report);
                let mut name = |ident: &mut Ident| self.reference(ident, report);
                decl.parents.iter_mut().for_each(&mut name);
                attrs(&mut decl.attributes, &mut name);
                if let Some(properties) = &mut decl.properties {
                    attrs(properties, &mut name);
                }
            }
            Item::Action(decl) => {
                decl.resource_types.iter_mut().for_each(&mut name);
                decl.subject_types.iter_mut().for_each(&mut name);
                for fields in [&mut decl.properties, &mut decl.context]
                    .into_iter()
                    .flatten()
                {
                    attrs(fields, &mut name);
                }
            }
            Item::Role(role) => {
                for grant in &mut role.grants {
                    grant.resource_types.iter_mut().for_each(&mut name);
                    if let Some(condition) = &mut grant.condition {
                        expr(&mut condition.expr, &mut name);
                    }
                }
            }
            Item::Rule(rule) => {
                rule.resource_types.iter_mut().for_each(&mut name);
                if let Some(condition) = &mut rule.condition {
                    expr(&mut condition.expr, &mut name);
                }
            }
            Item::Let(decl) => expr(&mut decl.value, &mut name),
            Item::Test(test) => {
                for statement in &mut test.statements {
                    test_statement(statement, &mut name);
                }
            }
            Item::Route(route) => name(&mut route.resource_type),
            Item::Capability(capability) => {
                capability.resource_types.iter_mut().for_each(&mut name);
                for clause in &mut capability.clauses {
                    if let crate::ast::CapabilityClauseKind::Mint(mint) = &mut clause.kind {
                        expr(mint, &mut name);
                    }
                }
            }
            Item::Limit(limit) => {
                limit.resource_types.iter_mut().for_each(&mut name);
                expr(&mut limit.key, &mut name);
                if let Some(condition) = &mut limit.condition {
                    expr(&mut condition.expr, &mut name);
                }
            }
            Item::ActionGroup(_) | Item::Namespace(_) => {}
        }
    }

    /// The name an `entity` declaration gives: its short name in the file's namespace.
    fn declaration(&self, ident: &mut Ident, report: &mut impl FnMut(CheckError)) {
        let (prefix, short) = split(&ident.name);
        if let Some(prefix) = prefix {
            let help = match self.namespace {
                Some(own) if own == prefix => {
                    format!("this file's namespace is `{own}` already: write `entity {short}`")
                }
                _ => format!(
                    "declare it as `entity {short}` in a file that starts with `namespace {prefix}`"
                ),
            };
            report(CheckError::Namespace {
                message: format!("a declaration names the qualified type `{}`", ident.name),
                span: ident.span,
                help,
            });
            return;
        }
        ident.name = full(self.namespace, short);
    }

    /// A type named where one is used.
    fn reference(&self, ident: &mut Ident, report: &mut impl FnMut(CheckError)) {
        let declared = self.declared;
        let (prefix, short) = split(&ident.name);
        if let Some(prefix) = prefix {
            if !declared.namespaces.contains(prefix) && declared.any {
                let help = suggest::did_you_mean(
                    prefix,
                    declared.namespaces.iter().map(String::as_str),
                    || match declared.namespaces.is_empty() {
                        true => "no file declares a namespace; a file starting with \
                                 `namespace NAME` declares one"
                            .to_string(),
                        false => {
                            format!("the namespaces are {}", suggest::list(&declared.namespaces))
                        }
                    },
                );
                report(CheckError::UnknownNamespace {
                    name: prefix.to_string(),
                    span: ident.span,
                    help,
                });
            }
            return;
        }
        if BUILTIN_TYPES.contains(&short) {
            return;
        }
        if self.namespace.is_some() && declared.declares(self.namespace, short) {
            ident.name = full(self.namespace, short);
            return;
        }
        if declared.declares(None, short) {
            return;
        }
        let elsewhere: Vec<String> = declared
            .by_short_name
            .get(short)
            .map(|found| {
                found
                    .iter()
                    .flatten()
                    .map(|namespace| full(Some(namespace), short))
                    .collect()
            })
            .unwrap_or_default();
        let here = match self.namespace {
            Some(own) => format!("namespace `{own}`"),
            None => "this file's scope (outside every namespace)".to_string(),
        };
        match elsewhere.as_slice() {
            [] => ident.name = full(self.namespace, short),
            [only] => report(CheckError::TypeNotInScope {
                name: short.to_string(),
                span: ident.span,
                help: format!("`{short}` is not declared in {here}; write `{only}`"),
            }),
            several => report(CheckError::AmbiguousType {
                name: short.to_string(),
                span: ident.span,
                help: format!(
                    "`{short}` is not declared in {here}, and several namespaces declare it: \
                     write {}",
                    suggest::list_with(several, "or")
                ),
            }),
        }
    }
}

fn attrs(fields: &mut [AttrDecl], name: &mut impl FnMut(&mut Ident)) {
    for field in fields {
        type_expr(&mut field.ty, name);
    }
}

fn type_expr(ty: &mut TypeExpr, name: &mut impl FnMut(&mut Ident)) {
    match ty {
        TypeExpr::Named(ident) => name(ident),
        TypeExpr::Set(element, _) => type_expr(element, name),
        TypeExpr::Record(fields, _) => attrs(fields, name),
    }
}

fn entity_ref(entity: &mut EntityRef, name: &mut impl FnMut(&mut Ident)) {
    name(&mut entity.ty);
}

fn test_statement(statement: &mut TestStatement, name: &mut impl FnMut(&mut Ident)) {
    match statement {
        TestStatement::Data(_) => {}
        TestStatement::Given(given) => {
            entity_ref(&mut given.entity, name);
            given
                .parents
                .iter_mut()
                .for_each(|parent| entity_ref(parent, name));
            for (_, value) in &mut given.attributes {
                expr(value, name);
            }
        }
        TestStatement::GivenRole(given) => {
            entity_ref(&mut given.subject, name);
            if let Some(on) = &mut given.on {
                entity_ref(on, name);
            }
        }
        TestStatement::Expect(expect) => {
            entity_ref(&mut expect.subject, name);
            entity_ref(&mut expect.resource, name);
            for with in &mut expect.with {
                match with {
                    WithClause::Context(value)
                    | WithClause::Properties(_, value)
                    | WithClause::Capability(_, Some(value)) => expr(value, name),
                    WithClause::Capability(_, None) => {}
                }
            }
            if let Some(at) = &mut expect.at {
                expr(at, name);
            }
        }
    }
}

/// Every type an expression names: entity literals and `is` tests. The parser bounds an
/// expression's size, so the recursion is bounded too.
fn expr(e: &mut Expr, name: &mut impl FnMut(&mut Ident)) {
    match &mut e.kind {
        ExprKind::Entity { ty, .. } => name(ty),
        ExprKind::Is { base, ty } => {
            expr(base, name);
            name(ty);
        }
        ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Duration(_)
        | ExprKind::Var(_)
        | ExprKind::Let(_)
        | ExprKind::ActionTest(_) => {}
        ExprKind::Set(elements) | ExprKind::Call { args: elements, .. } => {
            elements.iter_mut().for_each(|element| expr(element, name));
        }
        ExprKind::Record(entries) => entries.iter_mut().for_each(|(_, value)| expr(value, name)),
        ExprKind::Attr { base, .. }
        | ExprKind::Has { base, .. }
        | ExprKind::Like { base, .. }
        | ExprKind::Properties(base)
        | ExprKind::Unary { operand: base, .. } => expr(base, name),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr(lhs, name);
            expr(rhs, name);
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            expr(cond, name);
            expr(then, name);
            expr(otherwise, name);
        }
    }
}
