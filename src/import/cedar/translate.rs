//! Cedar policies and schema → Warden text.

use std::fmt::Write as _;

use super::ast::{
    ActionScope, Effect, Expr as CExpr, ExprKind as K, Policy, Scope, ScopeRef, Uid, Var,
};
use super::error::ImportError;
use super::lexer::PatternElem;
use super::schema::{Attr, Schema, Type, action_name as action_name_of, is_action_type};
use crate::ast::{
    ActionOp, ActionTest, BinaryOp, Expr, ExprKind, Ident, Name, StrLit, UnaryOp, Var as WVar,
};
use crate::check::BUILTIN_TYPES;
use crate::source::Span;
use crate::syntax::fmt::{action_name_text, format_expr, key_text, quoted};

fn unsupported(construct: &str, span: Span, help: &str) -> ImportError {
    ImportError::Unsupported {
        construct: construct.to_string(),
        span,
        help: help.to_string(),
    }
}

/// An action name as Warden writes it: bare when it is a plain identifier and no keyword.
pub(crate) fn action_name(text: &str) -> String {
    action_name_text(text)
}

// ---- Schema -------------------------------------------------------------------------------

/// What each Cedar namespace declares (entity types, actions, action groups), as a Warden file
/// that starts with `namespace App` (named `schema.App.warden`); the names its declarations
/// use are written in full.
pub(crate) fn namespace_files(
    schema: &Schema,
    errors: &mut Vec<ImportError>,
) -> Vec<(String, String)> {
    let mut namespaces: Vec<&str> = Vec::new();
    let named = schema
        .entities
        .iter()
        .filter_map(|e| e.name.rsplit_once("::").map(|(n, _)| n))
        .chain(schema.actions.iter().filter_map(|a| a.namespace.as_deref()));
    for namespace in named {
        if !namespaces.contains(&namespace) {
            namespaces.push(namespace);
        }
    }
    namespaces
        .into_iter()
        .map(|namespace| {
            let file = format!("schema.{}.warden", namespace.replace("::", "."));
            let mut text = format!("namespace {namespace}\n\n");
            text.push_str(&declarations(schema, Some(namespace), errors));
            (file, text)
        })
        .collect()
}

/// `entity Short in [Parents] { attributes }`.
fn entity_text(
    schema: &Schema,
    entity: &super::schema::EntityType,
    short: &str,
    out: &mut String,
    errors: &mut Vec<ImportError>,
) {
    if let Err(e) = entity_name(&entity.name, entity.span) {
        errors.push(e);
        return;
    }
    let _ = write!(out, "entity {short}");
    if let Some(ids) = &entity.ids {
        let ids: Vec<String> = ids.iter().map(|id| quoted(id)).collect();
        let _ = writeln!(out, " enum [{}]", ids.join(", "));
        return;
    }
    match entity.parents.as_slice() {
        [] => {}
        [one] => {
            let _ = write!(out, " in {one}");
        }
        many => {
            let _ = write!(out, " in [{}]", many.join(", "));
        }
    }
    if !entity.attrs.is_empty() {
        match record_type(schema, &entity.attrs, 0) {
            Ok(text) => out.push_str(&format!(" {text}")),
            Err(e) => errors.push(e),
        }
    }
    out.push('\n');
}

/// The Warden declarations for what a Cedar schema declares outside every namespace (see
/// [`namespace_files`] for the others).
pub fn schema_text(schema: &Schema, errors: &mut Vec<ImportError>) -> String {
    declarations(schema, None, errors)
}

/// The entity types, actions and action groups `namespace` declares (`None`: outside every
/// namespace), under their short names.
fn declarations(schema: &Schema, namespace: Option<&str>, errors: &mut Vec<ImportError>) -> String {
    let mut out = String::new();
    for entity in &schema.entities {
        match (entity.name.rsplit_once("::"), namespace) {
            (None, None) => entity_text(schema, entity, &entity.name, &mut out, errors),
            (Some((own, short)), Some(namespace)) if own == namespace => {
                entity_text(schema, entity, short, &mut out, errors);
            }
            _ => {}
        }
    }
    out.push('\n');
    // Actions that apply alike are declared together, as Cedar's schema usually lists them.
    let mut declared: Vec<(String, Vec<String>)> = Vec::new();
    let mut named: Vec<&super::schema::Action> = Vec::new();
    for action in schema
        .actions
        .iter()
        .filter(|a| a.namespace.as_deref() == namespace)
    {
        if named.iter().any(|a| a.name == action.name) {
            errors.push(ImportError::Invalid {
                message: format!("action `{}` is declared twice", action.name),
                span: action.span,
                help: Some("declare each action once in its namespace".to_string()),
            });
            continue;
        }
        named.push(action);
    }
    for action in named {
        let Some(applies) = requestable(action) else {
            continue;
        };
        let mut tail = match action_parents(schema, action).as_slice() {
            [] => String::new(),
            [one] => format!(" in {}", action_name(one)),
            many => {
                let names: Vec<String> = many.iter().map(|n| action_name(n)).collect();
                format!(" in [{}]", names.join(", "))
            }
        };
        // Cedar's principal types: Warden refuses a request from a subject of another type, as
        // Cedar does, and types `subject` by them.
        let _ = write!(
            tail,
            " on {} by {}",
            applies.resources.join(", "),
            applies.principals.join(", ")
        );
        if let Some(context) = &applies.context {
            match resolve(schema, context, 0).and_then(|t| match t {
                Type::Record(attrs) => record_type(schema, &attrs, 0),
                _ => Err(ImportError::Invalid {
                    message: format!("the context of action `{}` is not a record", action.name),
                    span: action.span,
                    help: None,
                }),
            }) {
                Ok(text) => {
                    let _ = write!(tail, " context {text}");
                }
                Err(e) => errors.push(e),
            }
        }
        let short = action_name(short_name(action));
        match declared.iter_mut().find(|(t, _)| *t == tail) {
            Some((_, names)) => names.push(short),
            None => declared.push((tail, vec![short])),
        }
    }
    for (tail, names) in declared {
        let _ = writeln!(out, "action {}{tail}", names.join(", "));
    }
    out.push_str(&action_groups(schema, namespace));
    out
}

/// An action's name inside its namespace's file: `read` for `App::read`.
fn short_name(action: &super::schema::Action) -> &str {
    action
        .namespace
        .as_deref()
        .and_then(|namespace| action.name.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix("::"))
        .unwrap_or(&action.name)
}

/// The `appliesTo` of an action a request can name: one that lists principal and resource
/// types. The others are Cedar's pure action groups.
fn requestable(action: &super::schema::Action) -> Option<&super::schema::AppliesTo> {
    action
        .applies
        .as_ref()
        .filter(|a| !a.resources.is_empty() && !a.principals.is_empty())
}

/// The actions a requestable action sits beneath in Warden: its nearest requestable ancestors.
/// A pure group between them is a Warden group, which lists its members itself and cannot
/// itself sit beneath an action, so the walk goes through it.
fn action_parents(schema: &Schema, action: &super::schema::Action) -> Vec<String> {
    let mut parents = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut pending: Vec<&str> = action.parents.iter().map(String::as_str).collect();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        match schema.action(name) {
            Some(parent) if requestable(parent).is_some() => parents.push(name.to_string()),
            Some(group) => pending.extend(group.parents.iter().map(String::as_str)),
            None => {}
        }
    }
    parents.sort();
    parents.dedup();
    parents
}

/// Cedar's pure action groups (actions no request can name) of `namespace` as Warden groups,
/// each listing the actions and groups declared `in` it.
fn action_groups(schema: &Schema, namespace: Option<&str>) -> String {
    let mut out = String::new();
    for group in schema
        .actions
        .iter()
        .filter(|a| requestable(a).is_none() && a.namespace.as_deref() == namespace)
    {
        let mut members: Vec<String> = Vec::new();
        for member in &schema.actions {
            if member.parents.contains(&group.name) && !members.contains(&member.name) {
                members.push(member.name.clone());
            }
        }
        let members: Vec<String> = members.iter().map(|n| action_name(n)).collect();
        let _ = writeln!(
            out,
            "action group {} = [{}]",
            action_name(short_name(group)),
            members.join(", ")
        );
    }
    out
}

/// A type name Warden can declare: its last part (`User` of `App::User`) is no Warden type.
fn entity_name(name: &str, span: Span) -> Result<(), ImportError> {
    let short = name.rsplit("::").next().unwrap_or(name);
    if BUILTIN_TYPES.contains(&short) || short == "properties" {
        return Err(ImportError::Invalid {
            message: format!("entity type `{name}` has the name of a Warden type"),
            span,
            help: Some("rename the entity type".to_string()),
        });
    }
    Ok(())
}

/// Follows common type names (a chain longer than the schema is a cycle).
fn resolve(schema: &Schema, ty: &Type, depth: usize) -> Result<Type, ImportError> {
    match ty {
        Type::Named(name, span) => {
            if depth > schema.common.len() {
                return Err(ImportError::Invalid {
                    message: format!("common type `{name}` refers to itself"),
                    span: *span,
                    help: None,
                });
            }
            match schema.common(name) {
                Some(inner) => resolve(schema, inner, depth + 1),
                None => Ok(ty.clone()),
            }
        }
        other => Ok(other.clone()),
    }
}

fn record_type(schema: &Schema, attrs: &[Attr], depth: usize) -> Result<String, ImportError> {
    let mut parts = Vec::new();
    for attr in attrs {
        if attr.name == "properties" {
            return Err(ImportError::Invalid {
                message: "an attribute named `properties`".to_string(),
                span: attr.span,
                help: Some(
                    "`properties` is reserved in Warden for what the caller sends; rename the \
                     attribute"
                        .to_string(),
                ),
            });
        }
        let optional = if attr.required { "" } else { "?" };
        parts.push(format!(
            "{}{optional}: {}",
            key_text(&attr.name),
            type_text(schema, &attr.ty, depth)?
        ));
    }
    Ok(format!("{{ {} }}", parts.join(", ")))
}

fn type_text(schema: &Schema, ty: &Type, depth: usize) -> Result<String, ImportError> {
    match resolve(schema, ty, depth)? {
        Type::Set(inner) => Ok(format!("Set<{}>", type_text(schema, &inner, depth)?)),
        Type::Record(attrs) => record_type(schema, &attrs, depth),
        Type::Named(name, span) => {
            let bare = name.strip_prefix("__cedar::").unwrap_or(&name);
            if schema.entity(&name).is_some() {
                return Ok(name);
            }
            Ok(match bare {
                "Long" => "Int".to_string(),
                "String" => "String".to_string(),
                "Bool" | "Boolean" => "Bool".to_string(),
                "ipaddr" => "Ip".to_string(),
                "datetime" => "Time".to_string(),
                "duration" => "Duration".to_string(),
                "decimal" => "Decimal".to_string(),
                _ => {
                    return Err(ImportError::Invalid {
                        message: format!("unknown type `{name}`"),
                        span,
                        help: Some(
                            "declare it as an entity type or a common type (`type Name = …;`)"
                                .to_string(),
                        ),
                    });
                }
            })
        }
    }
}

// ---- Policies -----------------------------------------------------------------------------

/// A policy ready to print: its id and its slots filled.
pub(crate) struct Instance<'p> {
    pub policy: &'p Policy,
    pub id: String,
    pub principal: Option<Uid>,
    pub resource: Option<Uid>,
}

/// One Warden rule's text, and the warning that goes with it.
pub(crate) struct Translated {
    pub text: Option<String>,
    pub warnings: Vec<ImportError>,
}

fn w(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn name(text: &str) -> Name {
    Name {
        text: text.to_string(),
        span: Span::default(),
    }
}

fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    w(ExprKind::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    })
}

fn not(e: Expr) -> Expr {
    w(ExprKind::Unary {
        op: UnaryOp::Not,
        operand: Box::new(e),
    })
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|a, b| bin(BinaryOp::And, a, b))
}

fn entity(uid: &Uid, span: Span) -> Result<Expr, ImportError> {
    if is_action_type(&uid.ty) {
        return Err(unsupported(
            "an action entity in a condition",
            span,
            "Warden selects actions in the rule's head; move the test on `action` into the \
             policy's scope",
        ));
    }
    entity_name(&uid.ty, span)?;
    Ok(w(ExprKind::Entity {
        ty: ident(&uid.ty),
        id: uid.id.clone(),
    }))
}

fn scope_uid<'u>(
    r: &'u ScopeRef,
    slot: Option<&'u Uid>,
    span: Span,
) -> Result<&'u Uid, ImportError> {
    match r {
        ScopeRef::Uid(uid) => Ok(uid),
        ScopeRef::Slot => slot.ok_or_else(|| ImportError::Invalid {
            message: "a template slot without a link".to_string(),
            span,
            help: None,
        }),
    }
}

fn scope_condition(
    var: WVar,
    scope: &Scope,
    slot: Option<&Uid>,
    span: Span,
) -> Result<(Vec<Expr>, Option<String>), ImportError> {
    let v = || w(ExprKind::Var(var));
    Ok(match scope {
        Scope::Any => (Vec::new(), None),
        Scope::Eq(r) => (
            vec![bin(
                BinaryOp::Eq,
                v(),
                entity(scope_uid(r, slot, span)?, span)?,
            )],
            None,
        ),
        Scope::In(r) => (
            vec![bin(
                BinaryOp::In,
                v(),
                entity(scope_uid(r, slot, span)?, span)?,
            )],
            None,
        ),
        Scope::Is(ty, within) => {
            entity_name(ty, span)?;
            let mut parts = Vec::new();
            if var == WVar::Subject {
                parts.push(w(ExprKind::Is {
                    base: Box::new(v()),
                    ty: ident(ty),
                }));
            }
            if let Some(r) = within {
                parts.push(bin(
                    BinaryOp::In,
                    v(),
                    entity(scope_uid(r, slot, span)?, span)?,
                ));
            }
            let on = (var == WVar::Resource).then(|| ty.clone());
            (parts, on)
        }
    })
}

/// The names a rule's head lists, and the test its condition adds (`action == x`).
type HeadActions = (Vec<String>, Option<Expr>);

/// The actions a scope names, as Warden writes them (`None`: every action), with the test that
/// keeps `action == Action::"x"` to `x` alone when actions sit beneath `x` (Warden's `allow x`
/// covers them too).
fn actions(
    schema: Option<&Schema>,
    scope: &ActionScope,
    on: Option<&str>,
    span: Span,
) -> Result<Option<HeadActions>, ImportError> {
    let uids: Vec<&Uid> = match scope {
        ActionScope::Any => return Ok(None),
        ActionScope::Eq(uid) => vec![uid],
        ActionScope::In(list) => list.iter().collect(),
    };
    // Warden names `App::Action::"read"` `App::read`, and `Action::"read"` `read`.
    let mut wanted: Vec<String> = Vec::new();
    for uid in uids {
        match action_name_of(&uid.ty, &uid.id) {
            Some(name) => wanted.push(name),
            None => {
                return Err(ImportError::Invalid {
                    message: format!("`{}` is no action type", uid.ty),
                    span,
                    help: Some("name actions `Action::\"…\"` or `App::Action::\"…\"`".to_string()),
                });
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    let Some(schema) = schema.filter(|s| !s.actions.is_empty()) else {
        for wanted in wanted {
            if !names.contains(&wanted) {
                names.push(wanted);
            }
        }
        return Ok(Some((names, None)));
    };
    // Only actions a request can name (on the scope's type) count.
    let applies = |a: &super::schema::Action| {
        requestable(a).is_some_and(|to| on.is_none_or(|t| to.resources.iter().any(|r| r == t)))
    };
    let mut exact = None;
    for wanted in wanted {
        let beneath = |applying: bool| {
            schema.actions.iter().any(|a| {
                a.name != wanted
                    && (!applying || applies(a))
                    && requestable(a).is_some()
                    && schema.action_in(&a.name, &wanted)
            })
        };
        let named = match scope {
            ActionScope::Eq(_) => {
                let named = schema.action(&wanted).is_some_and(applies);
                if named && beneath(false) {
                    exact = Some(w(ExprKind::ActionTest(ActionTest {
                        op: ActionOp::Eq,
                        names: vec![name(&wanted)],
                        list: false,
                    })));
                }
                named
            }
            _ => schema.action(&wanted).is_some_and(applies) || beneath(true),
        };
        if named && !names.contains(&wanted) {
            names.push(wanted);
        }
    }
    Ok(Some((names, exact)))
}

/// Translates one policy (or one link of a template) into a Warden rule.
pub fn rule(schema: Option<&Schema>, inst: &Instance<'_>) -> Result<Translated, Vec<ImportError>> {
    let p = inst.policy;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut conditions = Vec::new();
    let mut on = None;
    match scope_condition(
        WVar::Subject,
        &p.principal,
        inst.principal.as_ref(),
        p.principal_span,
    ) {
        Ok((parts, _)) => conditions.extend(parts),
        Err(e) => errors.push(e),
    }
    match scope_condition(
        WVar::Resource,
        &p.resource,
        inst.resource.as_ref(),
        p.resource_span,
    ) {
        Ok((parts, ty)) => {
            conditions.extend(parts);
            on = ty;
        }
        Err(e) => errors.push(e),
    }
    let acts = match actions(schema, &p.action, on.as_deref(), p.action_span) {
        Ok(Some((names, exact))) => {
            conditions.extend(exact);
            Some(names)
        }
        Ok(None) => None,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    for (when, c) in &p.conditions {
        match expr(c) {
            Ok(e) => conditions.push(if *when { e } else { not(e) }),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(schema) = schema {
        for condition in &mut conditions {
            pure_group_tests(schema, condition, &mut |op, group, value| {
                warnings.push(ImportError::PureGroupCompared {
                    op,
                    group: group.to_string(),
                    policy: inst.id.clone(),
                    value,
                    span: p.span,
                });
            });
        }
    }
    if acts.as_ref().is_some_and(Vec::is_empty) {
        warnings.push(ImportError::Dropped {
            message: format!(
                "policy `{}` applies to no action a request can name",
                inst.id
            ),
            span: p.action_span,
            help: "its actions have no `appliesTo` (on this resource type) in the schema, so \
                   Cedar never applies it either; it is left out"
                .to_string(),
        });
        return Ok(Translated {
            text: None,
            warnings,
        });
    }
    let mut condition = and_all(conditions);
    if p.effect == Effect::Forbid
        && let Some(c) = &condition
        && guards(c, &[]).is_some()
    {
        warnings.push(ImportError::ForbidMayError {
            message: format!(
                "forbid `{}` errors when an entity it reads is missing from the store",
                inst.id
            ),
            span: p.span,
            help: "Cedar skips a `forbid` whose condition errors, Warden's `deny` denies; \
                   the imported rule tests with `has` first, so it keeps Cedar's answer"
                .to_string(),
        });
        condition = Some(holds(c, &[]));
    }
    if p.effect == Effect::Forbid && condition.as_ref().is_some_and(has_arithmetic) {
        warnings.push(ImportError::ForbidMayError {
            message: format!("forbid `{}` errors when its arithmetic overflows", inst.id),
            span: p.span,
            help: "Cedar skips a `forbid` whose condition errors, Warden's `deny` denies: on an \
                   overflow the imported rule denies where Cedar's policy does not"
                .to_string(),
        });
    }
    let mut text = String::new();
    let _ = writeln!(text, "@id({})", quoted(&inst.id));
    text.push_str(match p.effect {
        Effect::Permit => "allow ",
        Effect::Forbid => "deny ",
    });
    match &acts {
        None => text.push('*'),
        Some(list) => {
            let names: Vec<String> = list.iter().map(|a| action_name(a)).collect();
            text.push_str(&names.join(", "));
        }
    }
    if let Some(ty) = &on {
        let _ = write!(text, " on {ty}");
    }
    if let Some(c) = &condition {
        let _ = write!(text, " if {}", format_expr(c));
    }
    text.push('\n');
    Ok(Translated {
        text: Some(text),
        warnings,
    })
}

/// Rewrites `action == g` to `false` (and `!=` to `true`) where `g` is a pure group of the
/// schema: no request names a group as its action, so Cedar's comparison never holds, while
/// Warden refuses comparing `action` with a group outright.
fn pure_group_tests(
    schema: &Schema,
    e: &mut Expr,
    found: &mut impl FnMut(&'static str, &str, bool),
) {
    if let ExprKind::ActionTest(test) = &e.kind
        && let (op @ (ActionOp::Eq | ActionOp::Ne), [group]) = (test.op, test.names.as_slice())
        && schema
            .action(&group.text)
            .is_some_and(|action| requestable(action).is_none())
    {
        let value = op == ActionOp::Ne;
        found(op.as_str(), &group.text, value);
        e.kind = ExprKind::Bool(value);
        return;
    }
    e.for_each_child_mut(|child| pure_group_tests(schema, child, found));
}

/// Whether `e` adds, subtracts, multiplies or negates (each can overflow).
fn has_arithmetic(e: &Expr) -> bool {
    let here = matches!(
        e.kind,
        ExprKind::Binary {
            op: BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul,
            ..
        } | ExprKind::Unary {
            op: UnaryOp::Neg,
            ..
        }
    );
    let mut below = false;
    e.for_each_child(|child| below |= has_arithmetic(child));
    here || below
}

/// The `has` tests among the conjuncts of `e`: true whenever `e` is.
fn has_facts(e: &Expr, out: &mut Vec<Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            has_facts(lhs, out);
            has_facts(rhs, out);
        }
        ExprKind::Has { .. } => out.push(e.clone()),
        _ => {}
    }
}

fn and_opt(a: Option<Expr>, b: Option<Expr>) -> Option<Expr> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => Some(bin(BinaryOp::And, a, b)),
    }
}

/// The `has` tests that make every attribute read in `e` safe, base first (`None`: `e` reads
/// nothing the store may lack), knowing the tests in `known` hold.
fn guards(e: &Expr, known: &[Expr]) -> Option<Expr> {
    match &e.kind {
        ExprKind::Attr { base, name: n } => {
            let has = w(ExprKind::Has {
                base: base.clone(),
                name: n.clone(),
            });
            // A field of `context` is there: the request was checked against its declaration.
            if matches!(base.kind, ExprKind::Var(WVar::Context)) || known.contains(&has) {
                return guards(base, known);
            }
            and_opt(guards(base, known), Some(has))
        }
        _ => {
            let mut out = None;
            e.for_each_child(|child| out = and_opt(out.take(), guards(child, known)));
            out
        }
    }
}

/// True exactly when `e` evaluates, without error, to true, in Cedar's (and Warden's)
/// left-to-right, short-circuit order: a `forbid` whose condition would error is then false, as
/// Cedar's skipped policy is. The `has` tests stand on the left of an `and`, where Warden's
/// checker sees them as guards.
fn holds(e: &Expr, known: &[Expr]) -> Expr {
    if guards(e, known).is_none() {
        return e.clone();
    }
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            let mut facts = known.to_vec();
            has_facts(lhs, &mut facts);
            bin(BinaryOp::And, holds(lhs, known), holds(rhs, &facts))
        }
        ExprKind::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => {
            if guards(lhs, known).is_none() {
                return bin(BinaryOp::Or, (**lhs).clone(), holds(rhs, known));
            }
            bin(
                BinaryOp::Or,
                holds(lhs, known),
                bin(BinaryOp::And, fails(lhs, known), holds(rhs, known)),
            )
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => fails(operand, known),
        // Only the branch taken is read: `c` holds and `a` does, or `c` fails and `b` holds.
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            let mut facts = known.to_vec();
            has_facts(cond, &mut facts);
            bin(
                BinaryOp::Or,
                bin(BinaryOp::And, holds(cond, known), holds(then, &facts)),
                bin(BinaryOp::And, fails(cond, known), holds(otherwise, known)),
            )
        }
        _ => match guards(e, known) {
            Some(g) => bin(BinaryOp::And, g, e.clone()),
            None => e.clone(),
        },
    }
}

/// True exactly when `e` evaluates, without error, to false.
fn fails(e: &Expr, known: &[Expr]) -> Expr {
    if guards(e, known).is_none() {
        return not(e.clone());
    }
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            let mut facts = known.to_vec();
            has_facts(lhs, &mut facts);
            // `not a or (a and …)`: the right side repeats `a`, so that the `has` tests in it
            // guard what follows for Warden's checker.
            bin(
                BinaryOp::Or,
                fails(lhs, known),
                bin(BinaryOp::And, holds(lhs, known), fails(rhs, &facts)),
            )
        }
        ExprKind::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => bin(BinaryOp::And, fails(lhs, known), fails(rhs, known)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => holds(operand, known),
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            let mut facts = known.to_vec();
            has_facts(cond, &mut facts);
            bin(
                BinaryOp::Or,
                bin(BinaryOp::And, holds(cond, known), fails(then, &facts)),
                bin(BinaryOp::And, fails(cond, known), fails(otherwise, known)),
            )
        }
        _ => match guards(e, known) {
            Some(g) => bin(BinaryOp::And, g, not(e.clone())),
            None => not(e.clone()),
        },
    }
}

/// Translates an expression of a condition.
pub fn expr(e: &CExpr) -> Result<Expr, ImportError> {
    // One level per nested Cedar expression, up to the reader's depth limit.
    crate::program::stack::grow(|| expr_at(e))
}

fn expr_at(e: &CExpr) -> Result<Expr, ImportError> {
    let sp = e.span;
    let boxed = |e: &CExpr| expr(e).map(Box::new);
    Ok(match &e.kind {
        K::Bool(b) => w(ExprKind::Bool(*b)),
        K::Long(n) => match i64::try_from(*n) {
            Ok(n) => w(ExprKind::Int(n)),
            Err(_) => {
                return Err(ImportError::Invalid {
                    message: format!("integer `{n}` does not fit in 64 bits"),
                    span: sp,
                    help: None,
                });
            }
        },
        K::Str(s) => w(ExprKind::Str(s.clone())),
        K::Entity(uid) => entity(uid, sp)?,
        K::Var(Var::Principal) => w(ExprKind::Var(WVar::Subject)),
        K::Var(Var::Resource) => w(ExprKind::Var(WVar::Resource)),
        K::Var(Var::Context) => w(ExprKind::Var(WVar::Context)),
        K::Var(Var::Action) => {
            return Err(unsupported(
                "`action` in a condition",
                sp,
                "Warden selects actions in the rule's head; move the test on `action` into the \
                 policy's scope (`action in [...]`)",
            ));
        }
        K::Slot(s) => {
            return Err(unsupported(
                &format!("slot `{s}` in a condition"),
                sp,
                "slots may stand only in the scope",
            ));
        }
        K::Not(a) => not(expr(a)?),
        K::Neg(a) => w(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: boxed(a)?,
        }),
        K::Binary(op, a, b) if matches!(a.kind, K::Var(Var::Action)) => action_test(*op, b, sp)?,
        K::Binary(op, a, b) => bin(*op, expr(a)?, expr(b)?),
        K::If(cond, then, otherwise) => w(ExprKind::If {
            cond: boxed(cond)?,
            then: boxed(then)?,
            otherwise: boxed(otherwise)?,
        }),
        K::Has(base, path) => {
            let mut current = expr(base)?;
            let mut parts = Vec::new();
            for attr in path {
                parts.push(w(ExprKind::Has {
                    base: Box::new(current.clone()),
                    name: name(attr),
                }));
                current = w(ExprKind::Attr {
                    base: Box::new(current),
                    name: name(attr),
                });
            }
            match and_all(parts) {
                Some(e) => e,
                None => w(ExprKind::Bool(true)),
            }
        }
        K::Like(base, pattern) => {
            let mut text = String::new();
            for elem in pattern {
                match elem {
                    PatternElem::Wildcard => text.push('*'),
                    PatternElem::Char('*') => text.push_str("\\*"),
                    PatternElem::Char('\\') => text.push_str("\\\\"),
                    PatternElem::Char(c) => text.push(*c),
                }
            }
            w(ExprKind::Like {
                base: boxed(base)?,
                pattern: StrLit {
                    value: text,
                    span: Span::default(),
                },
            })
        }
        K::Is(base, ty, within) => {
            entity_name(ty, sp)?;
            let b = expr(base)?;
            let is = w(ExprKind::Is {
                base: Box::new(b.clone()),
                ty: ident(ty),
            });
            match within {
                None => is,
                Some(g) => bin(BinaryOp::And, is, bin(BinaryOp::In, b, expr(g)?)),
            }
        }
        K::Attr(base, attr) => {
            if attr == "properties" {
                return Err(ImportError::Invalid {
                    message: "an attribute named `properties`".to_string(),
                    span: sp,
                    help: Some(
                        "`properties` is reserved in Warden; rename the attribute".to_string(),
                    ),
                });
            }
            w(ExprKind::Attr {
                base: boxed(base)?,
                name: name(attr),
            })
        }
        K::Method(base, method, args) => method_call(base, method, args, sp)?,
        K::Call(function, args) => call(function, args, sp)?,
        K::Set(items) => w(ExprKind::Set(
            items.iter().map(expr).collect::<Result<_, _>>()?,
        )),
        K::Record(fields) => w(ExprKind::Record(
            fields
                .iter()
                .map(|(k, v)| Ok((name(k), expr(v)?)))
                .collect::<Result<_, ImportError>>()?,
        )),
    })
}

/// `action in Action::"g"`, `action in [Action::"a", …]`, `action == Action::"a"` (and `!=`).
fn action_test(op: BinaryOp, rhs: &CExpr, sp: Span) -> Result<Expr, ImportError> {
    let refused = || {
        unsupported(
            "a test of `action` other than `in`, `==` or `!=` with action entities",
            sp,
            "compare `action` with `Action::\"…\"` entities, or a set of them after `in`",
        )
    };
    let uid = |e: &CExpr| match &e.kind {
        K::Entity(uid) => action_name_of(&uid.ty, &uid.id)
            .map(|text| name(&text))
            .ok_or_else(refused),
        _ => Err(refused()),
    };
    let (op, names, list) = match (op, &rhs.kind) {
        (BinaryOp::In, K::Set(elements)) => (
            ActionOp::In,
            elements.iter().map(uid).collect::<Result<Vec<_>, _>>()?,
            true,
        ),
        (BinaryOp::In, _) => (ActionOp::In, vec![uid(rhs)?], false),
        (BinaryOp::Eq, _) => (ActionOp::Eq, vec![uid(rhs)?], false),
        (BinaryOp::Ne, _) => (ActionOp::Ne, vec![uid(rhs)?], false),
        _ => return Err(refused()),
    };
    Ok(w(ExprKind::ActionTest(ActionTest { op, names, list })))
}

fn method_call(base: &CExpr, method: &str, args: &[CExpr], sp: Span) -> Result<Expr, ImportError> {
    let one = || match args {
        [a] => expr(a),
        _ => Err(ImportError::Invalid {
            message: format!("`{method}` takes one argument"),
            span: sp,
            help: None,
        }),
    };
    Ok(match method {
        "contains" => bin(BinaryOp::Contains, expr(base)?, one()?),
        "isInRange" => bin(BinaryOp::In, expr(base)?, one()?),
        "offset" => bin(BinaryOp::Add, expr(base)?, one()?),
        "durationSince" => bin(BinaryOp::Sub, expr(base)?, one()?),
        "containsAll" => bin(BinaryOp::ContainsAll, expr(base)?, one()?),
        "containsAny" => bin(BinaryOp::ContainsAny, expr(base)?, one()?),
        "isEmpty" if args.is_empty() => w(ExprKind::Unary {
            op: UnaryOp::IsEmpty,
            operand: Box::new(expr(base)?),
        }),
        "lessThan" => bin(BinaryOp::Lt, expr(base)?, one()?),
        "lessThanOrEqual" => bin(BinaryOp::Le, expr(base)?, one()?),
        "greaterThan" => bin(BinaryOp::Gt, expr(base)?, one()?),
        "greaterThanOrEqual" => bin(BinaryOp::Ge, expr(base)?, one()?),
        "isIpv4" | "isIpv6" | "isLoopback" | "isMulticast" if args.is_empty() => {
            let function = match method {
                "isIpv4" => "is_ipv4",
                "isIpv6" => "is_ipv6",
                "isLoopback" => "is_loopback",
                _ => "is_multicast",
            };
            w(ExprKind::Call {
                function: ident(function),
                args: vec![expr(base)?],
            })
        }
        "getTag" | "hasTag" => {
            return Err(unsupported(
                &format!("the tag method `{method}`"),
                sp,
                "Warden has no entity tags; store them as a record attribute",
            ));
        }
        other => {
            return Err(unsupported(
                &format!("the method `{other}`"),
                sp,
                "Warden has no function for it yet",
            ));
        }
    })
}

fn literal_arg<'a>(function: &str, args: &'a [CExpr], sp: Span) -> Result<&'a str, ImportError> {
    match args {
        [
            CExpr {
                kind: K::Str(s), ..
            },
        ] => Ok(s),
        _ => Err(unsupported(
            &format!("`{function}` of a computed value"),
            sp,
            "Warden's `ip`, `time`, `duration` and `decimal` take a string literal",
        )),
    }
}

fn call(function: &str, args: &[CExpr], sp: Span) -> Result<Expr, ImportError> {
    let warden_call = |f: &str, s: String| {
        w(ExprKind::Call {
            function: ident(f),
            args: vec![w(ExprKind::Str(s))],
        })
    };
    Ok(match function {
        "ip" => warden_call("ip", literal_arg(function, args, sp)?.to_string()),
        "datetime" => {
            let text = literal_arg(function, args, sp)?;
            match super::entities::datetime(text) {
                Some(t) => warden_call("time", t),
                None => {
                    return Err(ImportError::Invalid {
                        message: format!("`{text}` is not a Cedar datetime"),
                        span: sp,
                        help: None,
                    });
                }
            }
        }
        "duration" => warden_call("duration", literal_arg(function, args, sp)?.to_string()),
        "decimal" => warden_call("decimal", literal_arg(function, args, sp)?.to_string()),
        other => {
            return Err(unsupported(
                &format!("the function `{other}`"),
                sp,
                "Warden has no function for it yet",
            ));
        }
    })
}
