//! Namespaces: `namespace acme` at the top of a file puts the entity types, actions, action
//! groups, roles and `let`s it declares in `acme`, so that several teams' files can each
//! declare a `User`, a `read` and a `viewer`.
//!
//! Before anything else reads the files, every such name in them is rewritten to the full name
//! every later stage, the data files and the wire use (`acme::User`, `acme::read`):
//!
//! - a declaration in a namespaced file: `entity User` in `namespace acme` is `acme::User`;
//! - a qualified name (`acme::User`) stays as written; a namespace no file declares is an error;
//! - a short name (`User`) means the one of the file's own namespace when it declares one,
//!   else the one declared outside every namespace; a short name that only other namespaces
//!   declare is an error that says how to qualify it (and, when several do, that it is
//!   ambiguous). A type declared nowhere is left for the type checker to report, qualified
//!   with the file's namespace (in a directory without declarations, where any type may be
//!   named, that is the type it means); an action, role or `let` declared nowhere is left as
//!   written, for the checker to report (or, without action declarations, to accept).
//!
//! In a directory where no file declares a namespace, actions, roles and `let`s are left as
//! written: a quoted action name may hold `::` there, as it always could. Rule ids are shared
//! by the whole directory, namespaced or not.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{
    Actions, AttrDecl, CapabilityClauseKind, EntityRef, Expr, ExprKind, Ident, Item, Name,
    TestStatement, TypeExpr, WithClause,
};
use crate::check::declare::BUILTIN_TYPES;
use crate::check::error::CheckError;
use crate::check::{Ctx, suggest};
use crate::source::Diagnostic;
use crate::source::Span;
use crate::syntax::ParsedFile;

/// Rewrites every entity type, action, role and `let` name of `files` to its full name; the
/// diagnostics are the namespace mistakes found (the names they concern are left as written).
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

/// What a namespaced name names. Actions and action groups share one kind: a group may not
/// share an action's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Type,
    Action,
    Role,
    Let,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Type => "type",
            Kind::Action => "action",
            Kind::Role => "role",
            Kind::Let => "let",
        }
    }
}

/// The names each namespace declares (`None`: outside every namespace), by kind and short name.
struct Declared {
    /// (kind, short name) → the namespaces that declare it.
    by_short_name: BTreeMap<(Kind, String), BTreeSet<Option<String>>>,
    namespaces: BTreeSet<String>,
    /// Whether any entity type is declared.
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
            let mut add = |kind: Kind, name: &str| {
                let (prefix, short) = split(name);
                // A qualified declaration is refused in `scope.item`; it declares nothing here.
                if prefix.is_none() {
                    declared
                        .by_short_name
                        .entry((kind, short.to_string()))
                        .or_default()
                        .insert(namespace.clone());
                }
            };
            for item in &file.ast.items {
                match item {
                    Item::Entity(decl) => add(Kind::Type, &decl.name.name),
                    Item::Action(decl) => {
                        decl.names.iter().for_each(|n| add(Kind::Action, &n.text));
                    }
                    Item::ActionGroup(decl) => add(Kind::Action, &decl.name.text),
                    Item::Role(decl) => add(Kind::Role, &decl.name.name),
                    Item::Let(decl) => add(Kind::Let, &decl.name.name),
                    _ => {}
                }
            }
            declared.any |= file
                .ast
                .items
                .iter()
                .any(|item| matches!(item, Item::Entity(_)));
        }
        declared
    }

    fn declares(&self, kind: Kind, namespace: Option<&str>, short: &str) -> bool {
        self.by_short_name
            .get(&(kind, short.to_string()))
            .is_some_and(|found| found.contains(&namespace.map(str::to_string)))
    }

    /// Whether names of this kind are namespaced here: types always, the others only in a
    /// directory where a file declares a namespace.
    fn namespaced(&self, kind: Kind) -> bool {
        kind == Kind::Type || !self.namespaces.is_empty()
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
        let mut name = |kind: Kind, text: &mut String, span: Span| {
            self.reference(kind, text, span, report);
        };
        // Each declared name, with the words that declare it (for the help).
        let mut declared: Vec<(Kind, &'static str, &mut String, Span)> = Vec::new();
        match item {
            Item::Entity(decl) => {
                declared.push((Kind::Type, "entity", &mut decl.name.name, decl.name.span));
                types(&mut decl.parents, &mut name);
                attrs(&mut decl.attributes, &mut name);
                if let Some(properties) = &mut decl.properties {
                    attrs(properties, &mut name);
                }
            }
            Item::Action(decl) => {
                for n in &mut decl.names {
                    declared.push((Kind::Action, "action", &mut n.text, n.span));
                }
                actions(&mut decl.parents, &mut name);
                types(&mut decl.resource_types, &mut name);
                types(&mut decl.subject_types, &mut name);
                for fields in [&mut decl.properties, &mut decl.context]
                    .into_iter()
                    .flatten()
                {
                    attrs(fields, &mut name);
                }
            }
            Item::ActionGroup(decl) => {
                let group = &mut decl.name;
                declared.push((Kind::Action, "action group", &mut group.text, group.span));
                actions(&mut decl.members, &mut name);
            }
            Item::Role(role) => {
                declared.push((Kind::Role, "role", &mut role.name.name, role.name.span));
                for parent in &mut role.inherits {
                    name(Kind::Role, &mut parent.name, parent.span);
                }
                for grant in &mut role.grants {
                    head(&mut grant.actions, &mut name);
                    types(&mut grant.resource_types, &mut name);
                    if let Some(condition) = &mut grant.condition {
                        expr(&mut condition.expr, &mut name);
                    }
                }
            }
            Item::Rule(rule) => {
                head(&mut rule.actions, &mut name);
                types(&mut rule.resource_types, &mut name);
                if let Some(condition) = &mut rule.condition {
                    expr(&mut condition.expr, &mut name);
                }
            }
            Item::Let(decl) => {
                declared.push((Kind::Let, "let", &mut decl.name.name, decl.name.span));
                expr(&mut decl.value, &mut name);
            }
            Item::Test(test) => {
                for statement in &mut test.statements {
                    test_statement(statement, &mut name);
                }
            }
            Item::Route(route) => {
                name(Kind::Action, &mut route.action.text, route.action.span);
                name(
                    Kind::Type,
                    &mut route.resource_type.name,
                    route.resource_type.span,
                );
            }
            Item::Capability(capability) => {
                types(&mut capability.resource_types, &mut name);
                for clause in &mut capability.clauses {
                    match &mut clause.kind {
                        CapabilityClauseKind::Mint(mint) => expr(mint, &mut name),
                        CapabilityClauseKind::Allow(names) => actions(names, &mut name),
                        CapabilityClauseKind::Lifetime(_) | CapabilityClauseKind::Delegable => {}
                    }
                }
            }
            Item::Limit(limit) => {
                head(&mut limit.actions, &mut name);
                types(&mut limit.resource_types, &mut name);
                expr(&mut limit.key, &mut name);
                if let Some(condition) = &mut limit.condition {
                    expr(&mut condition.expr, &mut name);
                }
            }
            Item::Namespace(_) => {}
        }
        for (kind, keyword, text, span) in declared {
            self.declaration(kind, keyword, text, span, report);
        }
    }

    /// The name a declaration gives: its short name in the file's namespace.
    fn declaration(
        &self,
        kind: Kind,
        keyword: &str,
        text: &mut String,
        span: Span,
        report: &mut impl FnMut(CheckError),
    ) {
        if !self.declared.namespaced(kind) {
            return;
        }
        let (prefix, short) = split(text);
        if let Some(prefix) = prefix {
            let help = match self.namespace {
                Some(own) if own == prefix => {
                    format!("this file's namespace is `{own}` already: write `{keyword} {short}`")
                }
                _ => format!(
                    "declare it as `{keyword} {short}` in a file that starts with `namespace {prefix}`"
                ),
            };
            let what = kind.what();
            report(CheckError::Namespace {
                message: format!("a declaration names the qualified {what} `{text}`"),
                span,
                help,
            });
            return;
        }
        *text = full(self.namespace, short);
    }

    /// A name where it is used.
    fn reference(
        &self,
        kind: Kind,
        text: &mut String,
        span: Span,
        report: &mut impl FnMut(CheckError),
    ) {
        let declared = self.declared;
        if !declared.namespaced(kind) {
            return;
        }
        let (prefix, short) = split(text);
        if let Some(prefix) = prefix {
            if !declared.namespaces.contains(prefix) && (declared.any || kind != Kind::Type) {
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
                    span,
                    help,
                });
            }
            return;
        }
        if kind == Kind::Type && BUILTIN_TYPES.contains(&short) {
            return;
        }
        if self.namespace.is_some() && declared.declares(kind, self.namespace, short) {
            *text = full(self.namespace, short);
            return;
        }
        if declared.declares(kind, None, short) {
            return;
        }
        let elsewhere: Vec<String> = declared
            .by_short_name
            .get(&(kind, short.to_string()))
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
        let name = short.to_string();
        let what = kind.what();
        match (elsewhere.as_slice(), kind) {
            ([], Kind::Type) => *text = full(self.namespace, short),
            ([], _) => {}
            ([only], Kind::Type) => report(CheckError::TypeNotInScope {
                name,
                span,
                help: format!("`{short}` is not declared in {here}; write `{only}`"),
            }),
            ([only], _) => report(CheckError::NotInScope {
                what,
                name,
                span,
                help: format!("`{short}` is not declared in {here}; write `{only}`"),
            }),
            (several, kind) => {
                let help = format!(
                    "`{short}` is not declared in {here}, and several namespaces declare it: \
                     write {}",
                    suggest::list_with(several, "or")
                );
                report(match kind {
                    Kind::Type => CheckError::AmbiguousType { name, span, help },
                    _ => CheckError::AmbiguousName {
                        what,
                        name,
                        span,
                        help,
                    },
                });
            }
        }
    }
}

/// The callback every walk below reports a name to.
trait Visit: FnMut(Kind, &mut String, Span) {}
impl<F: FnMut(Kind, &mut String, Span)> Visit for F {}

fn types(idents: &mut [Ident], name: &mut impl Visit) {
    for ident in idents {
        name(Kind::Type, &mut ident.name, ident.span);
    }
}

fn actions(names: &mut [Name], name: &mut impl Visit) {
    for action in names {
        name(Kind::Action, &mut action.text, action.span);
    }
}

fn head(head: &mut Actions, name: &mut impl Visit) {
    match head {
        Actions::Any(_) => {}
        Actions::List(names) => actions(names, name),
    }
}

fn attrs(fields: &mut [AttrDecl], name: &mut impl Visit) {
    for field in fields {
        type_expr(&mut field.ty, name);
    }
}

fn type_expr(ty: &mut TypeExpr, name: &mut impl Visit) {
    match ty {
        TypeExpr::Named(ident) => name(Kind::Type, &mut ident.name, ident.span),
        TypeExpr::Set(element, _) => type_expr(element, name),
        TypeExpr::Record(fields, _) => attrs(fields, name),
    }
}

fn entity_ref(entity: &mut EntityRef, name: &mut impl Visit) {
    name(Kind::Type, &mut entity.ty.name, entity.ty.span);
}

fn test_statement(statement: &mut TestStatement, name: &mut impl Visit) {
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
            name(Kind::Role, &mut given.role.name, given.role.span);
            entity_ref(&mut given.subject, name);
            if let Some(on) = &mut given.on {
                entity_ref(on, name);
            }
        }
        TestStatement::Expect(expect) => {
            entity_ref(&mut expect.subject, name);
            name(Kind::Action, &mut expect.action.text, expect.action.span);
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

/// Every name an expression uses: entity literals' and `is` tests' types, `let`s, and the
/// actions of action tests. The parser bounds an expression's size, so the recursion is
/// bounded too.
fn expr(e: &mut Expr, name: &mut impl Visit) {
    match &mut e.kind {
        ExprKind::Entity { ty, .. } => name(Kind::Type, &mut ty.name, ty.span),
        ExprKind::Is { ty, .. } => name(Kind::Type, &mut ty.name, ty.span),
        ExprKind::Let(ident) => name(Kind::Let, &mut ident.name, ident.span),
        ExprKind::ActionTest(test) => actions(&mut test.names, name),
        _ => {}
    }
    e.for_each_child_mut(|child| expr(child, name));
}
