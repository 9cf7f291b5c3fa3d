//! Declarations → [`Schema`]: `entity`, `action`, `action group` and `role` items of every
//! file, with duplicates, unknown names and cycles reported.
//!
//! Declarations are collected in two passes: first every name (so a declaration may refer to
//! one written later, or in another file), then their contents.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ast::{self, Item, TypeExpr};
use crate::check::error::CheckError;
use crate::check::graph::Graph;
use crate::check::schema::{Action, EntityType, Field, RecordType, Role, Schema, Type};
use crate::check::suggest;
use crate::check::{Ctx, Loc};
use crate::source::Span;

/// The built-in type names; no entity type may take one.
pub const BUILTIN_TYPES: [&str; 8] = [
    "Bool", "Int", "String", "Time", "Duration", "Ip", "Decimal", "Set",
];

/// Where each declared name is written, for "first declared here" and for later stages.
#[derive(Debug, Default)]
pub struct Declared {
    pub entities: HashMap<String, Loc>,
    pub actions: HashMap<String, Loc>,
    pub groups: HashMap<String, Loc>,
    pub roles: HashMap<String, Loc>,
    pub capabilities: HashMap<String, Loc>,
    pub limits: HashMap<String, Loc>,
}

pub fn declare(ctx: &mut Ctx<'_>) -> (Schema, Declared) {
    let mut declared = Declared::default();
    let mut schema = Schema::default();
    collect_names(ctx, &mut declared);

    let files = ctx.files;
    // Pass 2: contents. Only the first declaration of a duplicated name is used.
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            match item {
                Item::Entity(decl)
                    if is_first(&declared.entities, &decl.name.name, file, decl.name.span) =>
                {
                    let entity = entity_type(ctx, &declared, file, decl);
                    schema.entity_types.insert(entity.name.clone(), entity);
                }
                Item::Action(decl) => {
                    // Several names share one declaration: resolve it once.
                    let shared = action(ctx, &declared, file, decl);
                    for name in &decl.names {
                        if is_first(&declared.actions, &name.text, file, name.span) {
                            let action = Action {
                                name: name.text.clone(),
                                ..shared.clone()
                            };
                            schema.actions.insert(action.name.clone(), action);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let hierarchy = action_hierarchy(ctx, &declared);
    schema.action_groups = hierarchy.groups;
    schema.action_descendants = hierarchy.actions;
    schema.roles = roles(ctx, &declared);
    (schema, declared)
}

/// Whether the declaration at `(file, span)` is the one recorded for `name`.
fn is_first(names: &HashMap<String, Loc>, name: &str, file: usize, span: Span) -> bool {
    names
        .get(name)
        .is_some_and(|loc| loc.file == file && loc.span.range() == span.range())
}

/// Pass 1: every declared name, with duplicates reported.
fn collect_names(ctx: &mut Ctx<'_>, declared: &mut Declared) {
    let files = ctx.files;
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            match item {
                Item::Entity(decl) => {
                    let name = &decl.name;
                    if BUILTIN_TYPES.contains(&name.name.as_str()) {
                        ctx.report(
                            file,
                            CheckError::Reserved {
                                name: name.name.clone(),
                                span: name.span,
                                help: "this is a built-in type; give the entity type another name"
                                    .to_string(),
                            },
                        );
                        continue;
                    }
                    add(
                        ctx,
                        &mut declared.entities,
                        "entity type",
                        &name.name,
                        Loc {
                            file,
                            span: name.span,
                        },
                    );
                }
                Item::Action(decl) => {
                    for name in &decl.names {
                        let loc = Loc {
                            file,
                            span: name.span,
                        };
                        if let Some(first) = declared.groups.get(&name.text).copied() {
                            duplicate(
                                ctx,
                                "action",
                                &name.text,
                                loc,
                                first,
                                "an action group has this name",
                            );
                            continue;
                        }
                        add(ctx, &mut declared.actions, "action", &name.text, loc);
                    }
                }
                Item::ActionGroup(decl) => {
                    let name = &decl.name;
                    let loc = Loc {
                        file,
                        span: name.span,
                    };
                    if let Some(first) = declared.actions.get(&name.text).copied() {
                        duplicate(
                            ctx,
                            "action group",
                            &name.text,
                            loc,
                            first,
                            "an action has this name",
                        );
                        continue;
                    }
                    add(ctx, &mut declared.groups, "action group", &name.text, loc);
                }
                Item::Role(decl) => {
                    add(
                        ctx,
                        &mut declared.roles,
                        "role",
                        &decl.name.name,
                        Loc {
                            file,
                            span: decl.name.span,
                        },
                    );
                }
                Item::Capability(decl) => {
                    add(
                        ctx,
                        &mut declared.capabilities,
                        "capability",
                        &decl.name.name,
                        Loc {
                            file,
                            span: decl.name.span,
                        },
                    );
                }
                Item::Limit(decl) => {
                    add(
                        ctx,
                        &mut declared.limits,
                        "limit",
                        &decl.name.name,
                        Loc {
                            file,
                            span: decl.name.span,
                        },
                    );
                }
                Item::Rule(_)
                | Item::Let(_)
                | Item::Test(_)
                | Item::Route(_)
                | Item::Namespace(_) => {}
            }
        }
    }
}

/// Records a declaration, or reports it as a duplicate of the first one.
pub fn add(
    ctx: &mut Ctx<'_>,
    names: &mut HashMap<String, Loc>,
    what: &'static str,
    name: &str,
    loc: Loc,
) {
    match names.get(name) {
        Some(first) => {
            let first = *first;
            duplicate(
                ctx,
                what,
                name,
                loc,
                first,
                "names must be unique across the policy directory",
            );
        }
        None => {
            names.insert(name.to_string(), loc);
        }
    }
}

pub fn duplicate(
    ctx: &mut Ctx<'_>,
    what: &'static str,
    name: &str,
    loc: Loc,
    first: Loc,
    why: &str,
) {
    let help = match ctx.same_file(loc.file, first) {
        Some(_) => format!("rename or remove one of them; {why}"),
        None => format!(
            "first declared at {}; rename or remove one of them; {why}",
            ctx.location(first)
        ),
    };
    ctx.report(
        loc.file,
        CheckError::Duplicate {
            what,
            name: name.to_string(),
            span: loc.span,
            first: ctx.same_file(loc.file, first),
            help,
        },
    );
}

/// Resolves an entity type name. In a directory without `entity` declarations every name is
/// accepted (dynamic mode); otherwise an undeclared one is reported and `false` returned.
pub(crate) fn entity_name(
    ctx: &mut Ctx<'_>,
    declared: &Declared,
    file: usize,
    ident: &ast::Ident,
) -> bool {
    if declared.entities.is_empty() || declared.entities.contains_key(&ident.name) {
        return true;
    }
    let help = if BUILTIN_TYPES.contains(&ident.name.as_str()) {
        format!("`{}` is a built-in type, not an entity type", ident.name)
    } else {
        suggest::did_you_mean(
            &ident.name,
            declared.entities.keys().map(String::as_str),
            || {
                format!(
                    "declare it with `entity {}`; the entity types are {}",
                    ident.name,
                    suggest::list(sorted(declared.entities.keys()))
                )
            },
        )
    };
    ctx.report(
        file,
        CheckError::UnknownType {
            name: ident.name.clone(),
            span: ident.span,
            help,
        },
    );
    false
}

fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut names: Vec<&String> = names.collect();
    names.sort();
    names
}

/// A written type → its meaning; unknown names are reported and become `Dynamic`.
pub(crate) fn resolve_type(
    ctx: &mut Ctx<'_>,
    declared: &Declared,
    file: usize,
    ty: &TypeExpr,
) -> Type {
    match ty {
        TypeExpr::Named(ident) => match ident.name.as_str() {
            "Bool" => Type::Bool,
            "Int" => Type::Int,
            "String" => Type::String,
            "Time" => Type::Time,
            "Duration" => Type::Duration,
            "Ip" => Type::Ip,
            "Decimal" => Type::Decimal,
            "Set" => {
                ctx.report(
                    file,
                    CheckError::UnknownType {
                        name: "Set".to_string(),
                        span: ident.span,
                        help: "`Set` needs its element type: `Set<String>`".to_string(),
                    },
                );
                Type::Dynamic
            }
            name => {
                if declared.entities.is_empty() || declared.entities.contains_key(name) {
                    return Type::Entity(name.to_string());
                }
                let candidates = BUILTIN_TYPES
                    .iter()
                    .copied()
                    .chain(declared.entities.keys().map(String::as_str));
                let help = suggest::did_you_mean(name, candidates, || {
                    "the types are `Bool`, `Int`, `String`, `Time`, `Duration`, `Ip`, `Decimal`, `Set<T>`, records `{ a: T }` and the declared entity types".to_string()
                });
                ctx.report(
                    file,
                    CheckError::UnknownType {
                        name: name.to_string(),
                        span: ident.span,
                        help,
                    },
                );
                Type::Dynamic
            }
        },
        TypeExpr::Set(element, _) => {
            Type::Set(Box::new(resolve_type(ctx, declared, file, element)))
        }
        TypeExpr::Record(fields, _) => Type::Record(record(ctx, declared, file, fields, "field")),
    }
}

/// The fields of a record type, entity attributes, `properties` or `context`.
pub fn record(
    ctx: &mut Ctx<'_>,
    declared: &Declared,
    file: usize,
    fields: &[ast::AttrDecl],
    what: &'static str,
) -> RecordType {
    let mut record = RecordType::default();
    let mut seen: HashMap<String, Loc> = HashMap::new();
    for field in fields {
        let loc = Loc {
            file,
            span: field.name.span,
        };
        if field.name.text == "properties" {
            ctx.report(
                file,
                CheckError::Reserved {
                    name: "properties".to_string(),
                    span: field.name.span,
                    help: "`properties` names what the caller sends; declare it as `properties: { ... }` in an entity, or choose another name".to_string(),
                },
            );
            continue;
        }
        if let Some(first) = seen.get(&field.name.text).copied() {
            duplicate(
                ctx,
                what,
                &field.name.text,
                loc,
                first,
                "each name appears once in a record",
            );
            continue;
        }
        seen.insert(field.name.text.clone(), loc);
        let ty = resolve_type(ctx, declared, file, &field.ty);
        record.fields.insert(
            field.name.text.clone(),
            Field {
                ty,
                optional: field.optional,
            },
        );
    }
    record
}

fn entity_type(
    ctx: &mut Ctx<'_>,
    declared: &Declared,
    file: usize,
    decl: &ast::EntityDecl,
) -> EntityType {
    let mut parents = Vec::new();
    for parent in &decl.parents {
        if entity_name(ctx, declared, file, parent) && !parents.contains(&parent.name) {
            parents.push(parent.name.clone());
        }
    }
    EntityType {
        name: decl.name.name.clone(),
        parents,
        attributes: record(ctx, declared, file, &decl.attributes, "attribute"),
        properties: decl
            .properties
            .as_ref()
            .map(|fields| record(ctx, declared, file, fields, "property")),
        ids: decl
            .ids
            .as_ref()
            .map(|ids| ids.iter().map(|id| id.value.clone()).collect()),
    }
}

/// What an action declaration says, under its first name.
fn action(ctx: &mut Ctx<'_>, declared: &Declared, file: usize, decl: &ast::ActionDecl) -> Action {
    let mut resource_types = Vec::new();
    for ty in &decl.resource_types {
        if entity_name(ctx, declared, file, ty) && !resource_types.contains(&ty.name) {
            resource_types.push(ty.name.clone());
        }
    }
    for field in decl.context.iter().flatten() {
        if field.name.text == crate::check::schema::CAPABILITY_KEY {
            ctx.report(
                file,
                CheckError::Capability {
                    message: "`capability` cannot be a context field".to_string(),
                    span: field.name.span,
                    help: "`context.capability` carries a presented capability token, which is \
                           taken out before the context is decoded; name the field something else"
                        .to_string(),
                },
            );
        }
    }
    let mut subject_types = Vec::new();
    for ty in &decl.subject_types {
        if entity_name(ctx, declared, file, ty) && !subject_types.contains(&ty.name) {
            subject_types.push(ty.name.clone());
        }
    }
    Action {
        name: decl
            .names
            .first()
            .map(|n| n.text.clone())
            .unwrap_or_default(),
        resource_types,
        subject_types,
        properties: decl
            .properties
            .as_ref()
            .map(|fields| record(ctx, declared, file, fields, "property")),
        context: decl
            .context
            .as_ref()
            .map(|fields| record(ctx, declared, file, fields, "context field")),
    }
}

/// The action hierarchy, flattened: what each group, and each action that others are declared
/// `in`, stands for. A group names actions and other groups; `action read in triage` puts
/// `read` beneath an action or group. Cycles through either kind of link are errors.
fn action_hierarchy(ctx: &mut Ctx<'_>, declared: &Declared) -> ActionHierarchy {
    let files = ctx.files;
    let mut groups: Vec<(usize, &ast::ActionGroupDecl)> = Vec::new();
    // Every action declared in a first declaration, with the parents that declaration names.
    let mut actions: Vec<(usize, &ast::Name, &[ast::Name])> = Vec::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            match item {
                Item::ActionGroup(decl)
                    if is_first(&declared.groups, &decl.name.text, file, decl.name.span) =>
                {
                    groups.push((file, decl));
                }
                Item::Action(decl) => {
                    for name in &decl.names {
                        if is_first(&declared.actions, &name.text, file, name.span) {
                            actions.push((file, name, &decl.parents));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // Nodes: the groups, then the actions.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (_, decl)) in groups.iter().enumerate() {
        index.insert(decl.name.text.as_str(), i);
    }
    for (i, (_, name, _)) in actions.iter().enumerate() {
        index.insert(name.text.as_str(), groups.len() + i);
    }
    let node_name = |i: usize| -> &str {
        match groups.get(i) {
            Some((_, decl)) => decl.name.text.as_str(),
            None => actions
                .get(i - groups.len())
                .map_or("", |(_, name, _)| name.text.as_str()),
        }
    };
    let mut graph = Graph::new(groups.len() + actions.len());
    // Members of groups that no declaration names (a directory without `action` declarations).
    let mut undeclared: Vec<BTreeSet<String>> = vec![BTreeSet::new(); groups.len()];
    for (i, (file, decl)) in groups.iter().enumerate() {
        for member in &decl.members {
            let at = Loc {
                file: *file,
                span: member.span,
            };
            if let Some(&node) = index.get(member.text.as_str()) {
                graph.add_edge(i, node, at);
            } else if declared.actions.is_empty() {
                if let Some(set) = undeclared.get_mut(i) {
                    set.insert(member.text.clone());
                }
            } else {
                unknown_action(ctx, declared, *file, member);
            }
        }
    }
    for (i, (file, _, parents)) in actions.iter().enumerate() {
        for parent in *parents {
            match index.get(parent.text.as_str()) {
                Some(&node) => graph.add_edge(
                    node,
                    groups.len() + i,
                    Loc {
                        file: *file,
                        span: parent.span,
                    },
                ),
                None => unknown_action(ctx, declared, *file, parent),
            }
        }
    }
    for (cycle, at) in &graph.walk().cycles {
        let names: Vec<&str> = cycle.iter().map(|&i| node_name(i)).collect();
        // Nodes below `groups.len()` are groups, the rest actions. A group never sits beneath
        // an action, so a cycle is made of groups alone or of actions alone.
        let kind = match cycle.iter().all(|&i| i >= groups.len()) {
            true => "action",
            false => "action group",
        };
        ctx.report(
            at.file,
            CheckError::GroupCycle {
                kind,
                cycle: names.join(" → "),
                span: at.span,
            },
        );
    }
    let covered = |i: usize| -> BTreeSet<String> {
        let mut below = BTreeSet::new();
        for node in std::iter::once(i).chain(graph.reachable(i)) {
            if node >= groups.len() {
                below.insert(node_name(node).to_string());
            } else if let Some(set) = undeclared.get(node) {
                below.extend(set.iter().cloned());
            }
        }
        below
    };
    let mut hierarchy = ActionHierarchy::default();
    for (i, (_, decl)) in groups.iter().enumerate() {
        hierarchy.groups.insert(decl.name.text.clone(), covered(i));
    }
    for i in groups.len()..groups.len() + actions.len() {
        if graph.edges.get(i).is_some_and(|edges| !edges.is_empty()) {
            hierarchy
                .actions
                .insert(node_name(i).to_string(), covered(i));
        }
    }
    hierarchy
}

#[derive(Default)]
struct ActionHierarchy {
    groups: BTreeMap<String, BTreeSet<String>>,
    actions: BTreeMap<String, BTreeSet<String>>,
}

/// Reports an undeclared action (or action group) name.
pub(crate) fn unknown_action(
    ctx: &mut Ctx<'_>,
    declared: &Declared,
    file: usize,
    name: &ast::Name,
) {
    let candidates = declared
        .actions
        .keys()
        .chain(declared.groups.keys())
        .map(String::as_str);
    let help = suggest::did_you_mean(&name.text, candidates, || {
        format!(
            "declare it with `action {}`, or use {}",
            name.text,
            suggest::list_with(sorted(declared.actions.keys()), "or")
        )
    });
    ctx.report(
        file,
        CheckError::UnknownAction {
            name: name.text.clone(),
            span: name.span,
            help,
        },
    );
}

/// Reports an undeclared role name.
pub(crate) fn unknown_role(ctx: &mut Ctx<'_>, declared: &Declared, file: usize, name: &ast::Ident) {
    let help = suggest::did_you_mean(
        &name.name,
        declared.roles.keys().map(String::as_str),
        || {
            format!(
                "declare it with `role {} {{ ... }}`; the roles are {}",
                name.name,
                suggest::list(sorted(declared.roles.keys()))
            )
        },
    );
    ctx.report(
        file,
        CheckError::UnknownRole {
            name: name.name.clone(),
            span: name.span,
            help,
        },
    );
}

/// Roles with their inheritance closed transitively; cycles are errors naming the cycle.
fn roles(ctx: &mut Ctx<'_>, declared: &Declared) -> BTreeMap<String, Role> {
    let files = ctx.files;
    let mut decls: Vec<(usize, &ast::RoleDecl)> = Vec::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            if let Item::Role(decl) = item
                && is_first(&declared.roles, &decl.name.name, file, decl.name.span)
            {
                decls.push((file, decl));
            }
        }
    }
    let index: HashMap<&str, usize> = decls
        .iter()
        .enumerate()
        .map(|(i, (_, decl))| (decl.name.name.as_str(), i))
        .collect();
    let mut graph = Graph::new(decls.len());
    let mut inherits: Vec<Vec<String>> = vec![Vec::new(); decls.len()];
    for (i, (file, decl)) in decls.iter().enumerate() {
        for parent in &decl.inherits {
            match index.get(parent.name.as_str()) {
                Some(&j) => {
                    graph.add_edge(
                        i,
                        j,
                        Loc {
                            file: *file,
                            span: parent.span,
                        },
                    );
                    if let Some(list) = inherits.get_mut(i)
                        && !list.contains(&parent.name)
                    {
                        list.push(parent.name.clone());
                    }
                }
                None => unknown_role(ctx, declared, *file, parent),
            }
        }
    }
    for (cycle, at) in &graph.walk().cycles {
        let names: Vec<&str> = cycle
            .iter()
            .filter_map(|&i| decls.get(i).map(|(_, d)| d.name.name.as_str()))
            .collect();
        ctx.report(
            at.file,
            CheckError::RoleCycle {
                cycle: names.join(" → "),
                span: at.span,
            },
        );
    }
    let mut roles = BTreeMap::new();
    for (i, (_, decl)) in decls.iter().enumerate() {
        roles.insert(
            decl.name.name.clone(),
            Role {
                name: decl.name.name.clone(),
                inherits: inherits.get(i).cloned().unwrap_or_default(),
            },
        );
    }
    roles
}
