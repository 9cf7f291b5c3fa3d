//! Type checking: every rule head, condition, `let` and test value against the declarations.
//!
//! The checker's own type [`Ty`] is richer than the schema's [`Type`]: an entity may be one of
//! several declared types (`subject`, or `resource` of a rule `on Photo, Album`), and the
//! `properties` of such a union are looked up type by type.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::ast::{self, BinaryOp, Effect, Expr, ExprKind, Item, Name, UnaryOp, Var};
use crate::check::Ctx;
use crate::check::declare::{self, Declared};
use crate::check::error::CheckError;
use crate::check::resolve::Names;
use crate::check::schema::{RecordType, Schema, Type};
use crate::check::suggest;
use crate::source::Span;

/// A static type as the checker sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Str,
    Time,
    Duration,
    Ip,
    Decimal,
    /// An entity of one of these declared types (never empty).
    Entity(Rc<BTreeSet<String>>),
    /// An entity whose type is not known before run time (no `entity` declarations).
    AnyEntity,
    /// The `action` variable: nothing but `action.properties`.
    Action,
    Set(Rc<Ty>),
    Record(Rc<RecordTy>),
    /// The typed `properties` of an entity of one of these types.
    Props(Rc<BTreeSet<String>>),
    Dynamic,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecordTy {
    pub fields: BTreeMap<String, FieldTy>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldTy {
    pub ty: Ty,
    pub optional: bool,
    /// Set when the actions of one rule declare this `context` field with different types.
    pub conflict: Option<String>,
}

impl Ty {
    fn entity(name: &str) -> Ty {
        Ty::Entity(Rc::new(BTreeSet::from([name.to_string()])))
    }

    /// How the type is written in a policy, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Ty::Bool => "Bool".to_string(),
            Ty::Int => "Int".to_string(),
            Ty::Str => "String".to_string(),
            Ty::Time => "Time".to_string(),
            Ty::Duration => "Duration".to_string(),
            Ty::Ip => "Ip".to_string(),
            Ty::Decimal => "Decimal".to_string(),
            Ty::Entity(types) => types.iter().cloned().collect::<Vec<_>>().join(" | "),
            Ty::AnyEntity => "entity".to_string(),
            Ty::Action => "action".to_string(),
            Ty::Set(element) => format!("Set<{}>", element.describe()),
            Ty::Record(record) => {
                let fields: Vec<String> = record
                    .fields
                    .iter()
                    .map(|(name, field)| {
                        let optional = if field.optional { "?" } else { "" };
                        format!("{name}{optional}: {}", field.ty.describe())
                    })
                    .collect();
                if fields.is_empty() {
                    "{}".to_string()
                } else {
                    format!("{{ {} }}", fields.join(", "))
                }
            }
            Ty::Props(_) => "properties".to_string(),
            Ty::Dynamic => "unknown".to_string(),
        }
    }

    fn is_entity(&self) -> bool {
        matches!(self, Ty::Entity(_) | Ty::AnyEntity)
    }
}

/// Where an expression is written, which decides what its variables mean.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scope {
    /// A rule's or grant's condition; `deny` decides how unguarded reads are explained.
    Rule { deny: bool },
    /// A `let` value: evaluated once per request, whatever the action.
    Let,
    /// A value in a test block: literals only.
    Test,
}

/// A path from a request variable or a `let` through attributes: what a `has` guard names.
#[derive(Clone, Debug, PartialEq)]
enum Root {
    Var(Var),
    Let(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Attr(String),
    Props,
}

#[derive(Clone, Debug, PartialEq)]
struct Path {
    root: Root,
    segs: Vec<Seg>,
}

fn path_of(expr: &Expr) -> Option<Path> {
    match &expr.kind {
        ExprKind::Var(var) => Some(Path {
            root: Root::Var(*var),
            segs: Vec::new(),
        }),
        ExprKind::Let(ident) => Some(Path {
            root: Root::Let(ident.name.clone()),
            segs: Vec::new(),
        }),
        ExprKind::Attr { base, name } => {
            let mut path = path_of(base)?;
            path.segs.push(Seg::Attr(name.text.clone()));
            Some(path)
        }
        ExprKind::Properties(base) => {
            let mut path = path_of(base)?;
            path.segs.push(Seg::Props);
            Some(path)
        }
        _ => None,
    }
}

/// The ids of Cedar's `Action::"read"` or `[Action::"read", Action::"write"]`.
fn cedar_actions(expr: &Expr) -> Option<Vec<&str>> {
    fn id(e: &Expr) -> Option<&str> {
        match &e.kind {
            ExprKind::Entity { ty, id } if ty.name == "Action" => Some(id.as_str()),
            _ => None,
        }
    }
    match &expr.kind {
        ExprKind::Set(elements) if !elements.is_empty() => elements.iter().map(id).collect(),
        _ => id(expr).map(|id| vec![id]),
    }
}

/// What is known to hold on the right of an `and`.
#[derive(Clone, Debug)]
enum Fact {
    Has(Path, String),
    Is(Path, String),
}

/// The facts that hold when `expr` is true: its `has` and `is` tests, through `and`s.
fn facts_of(expr: &Expr, facts: &mut Vec<Fact>) {
    match &expr.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            facts_of(lhs, facts);
            facts_of(rhs, facts);
        }
        ExprKind::Has { base, name } => {
            if let Some(path) = path_of(base) {
                facts.push(Fact::Has(path, name.text.clone()));
            }
        }
        ExprKind::Is { base, ty } => {
            if let Some(path) = path_of(base) {
                facts.push(Fact::Is(path, ty.name.clone()));
            }
        }
        _ => {}
    }
}

struct EntityTy {
    attributes: Rc<RecordTy>,
    properties: Option<Rc<RecordTy>>,
}

pub(crate) struct Typer<'c, 'f> {
    pub(super) ctx: &'c mut Ctx<'f>,
    schema: &'c Schema,
    declared: &'c Declared,
    names: &'c Names<'f>,
    /// Fx, not SipHash: the keys are the policy author's type names, never request data.
    entities: FxHashMap<String, EntityTy>,
    /// Any declared entity type: what `subject` is, unless the actions say otherwise.
    all: Ty,
    /// The type of `subject` where it is read: the types a rule's actions accept (`by`), else
    /// [`Typer::all`].
    subject: Ty,
    /// True when `subject` is typed by the rule's actions' `by` clauses: an attribute read on it
    /// must then be declared on every one of them.
    subject_by: bool,
    let_types: HashMap<String, Ty>,
    pub(super) file: usize,
    scope: Scope,
    resource: Ty,
    context: Ty,
    action_props: Ty,
    facts: Vec<Fact>,
    /// The types a rule head gives `resource`, `subject`, `context` and `action.properties`,
    /// worked out once per distinct head: thousands of rules share a handful of heads. A head
    /// with a mistake is not kept, so that each rule that repeats it is reported.
    /// Fx, not SipHash: the keys are the policy author's names, never request data.
    heads: FxHashMap<HeadKey<'f>, HeadTypes>,
}

/// A rule head as written: its actions (`*` or a list) and its `on` types, compared and hashed
/// by their names alone (two rules with the same head at different places share one entry).
#[derive(Clone, Copy)]
struct HeadKey<'f> {
    actions: &'f ast::Actions,
    on: &'f [ast::Ident],
}

impl HeadKey<'_> {
    fn action_names(&self) -> Option<impl Iterator<Item = &str>> {
        match self.actions {
            ast::Actions::Any(_) => None,
            ast::Actions::List(names) => Some(names.iter().map(|n| n.text.as_str())),
        }
    }

    fn on_names(&self) -> impl Iterator<Item = &str> {
        self.on.iter().map(|t| t.name.as_str())
    }
}

impl PartialEq for HeadKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        let actions = match (self.action_names(), other.action_names()) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq(b),
            _ => false,
        };
        actions && self.on_names().eq(other.on_names())
    }
}

impl Eq for HeadKey<'_> {}

impl std::hash::Hash for HeadKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self.action_names() {
            None => state.write_u8(0),
            Some(names) => {
                state.write_u8(1);
                for name in names {
                    name.hash(state);
                }
            }
        }
        for name in self.on_names() {
            name.hash(state);
        }
        state.write_usize(self.on.len());
    }
}

/// What a rule head makes of the request variables.
#[derive(Clone)]
struct HeadTypes {
    resource: Ty,
    subject: Ty,
    subject_by: bool,
    context: Ty,
    action_props: Ty,
}

fn convert(ty: &Type) -> Ty {
    match ty {
        Type::Bool => Ty::Bool,
        Type::Int => Ty::Int,
        Type::String => Ty::Str,
        Type::Time => Ty::Time,
        Type::Duration => Ty::Duration,
        Type::Ip => Ty::Ip,
        Type::Decimal => Ty::Decimal,
        Type::Entity(name) => Ty::entity(name),
        Type::AnyEntity => Ty::AnyEntity,
        Type::Set(element) => Ty::Set(Rc::new(convert(element))),
        Type::Record(record) => Ty::Record(Rc::new(convert_record(record))),
        Type::Dynamic => Ty::Dynamic,
    }
}

fn convert_record(record: &RecordType) -> RecordTy {
    RecordTy {
        fields: record
            .fields
            .iter()
            .map(|(name, field)| {
                (
                    name.clone(),
                    FieldTy {
                        ty: convert(&field.ty),
                        optional: field.optional,
                        conflict: None,
                    },
                )
            })
            .collect(),
    }
}

/// The record seen by a rule that several actions match: a field declared by only some of
/// them is optional (the others never send it); one declared with different types conflicts.
fn merge_records(records: &[(&str, &RecordType)]) -> RecordTy {
    let mut merged = RecordTy::default();
    let names: BTreeSet<&String> = records.iter().flat_map(|(_, r)| r.fields.keys()).collect();
    for name in names {
        let present: Vec<(&str, &crate::check::schema::Field)> = records
            .iter()
            .filter_map(|(action, r)| r.fields.get(name).map(|f| (*action, f)))
            .collect();
        let Some((_, first)) = present.first() else {
            continue;
        };
        let conflict = present.iter().any(|(_, f)| f.ty != first.ty).then(|| {
            present
                .iter()
                .map(|(action, f)| format!("`{action}` declares `{}`", f.ty.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        merged.fields.insert(
            name.clone(),
            FieldTy {
                ty: convert(&first.ty),
                optional: present.len() < records.len() || present.iter().any(|(_, f)| f.optional),
                conflict,
            },
        );
    }
    merged
}

/// Type-checks every rule, grant, `let` and test of the directory.
pub(crate) fn check_types<'f>(
    ctx: &mut Ctx<'f>,
    schema: &Schema,
    declared: &Declared,
    names: &Names<'f>,
) {
    let entities: FxHashMap<String, EntityTy> = schema
        .entity_types
        .iter()
        .map(|(name, e)| {
            (
                name.clone(),
                EntityTy {
                    attributes: Rc::new(convert_record(&e.attributes)),
                    properties: e.properties.as_ref().map(|p| Rc::new(convert_record(p))),
                },
            )
        })
        .collect();
    let all = if schema.declares_entities() {
        Ty::Entity(Rc::new(schema.entity_types.keys().cloned().collect()))
    } else {
        Ty::AnyEntity
    };
    let mut typer = Typer {
        ctx,
        schema,
        declared,
        names,
        entities,
        all: all.clone(),
        subject: all.clone(),
        subject_by: false,
        let_types: HashMap::new(),
        file: 0,
        scope: Scope::Let,
        resource: all,
        context: Ty::Dynamic,
        action_props: Ty::Dynamic,
        facts: Vec::new(),
        heads: FxHashMap::default(),
    };
    for name in &names.let_order {
        if let Some(def) = names.lets.get(name) {
            typer.file = def.file;
            typer.set_let_scope();
            let ty = typer.expr(&def.decl.value);
            typer.let_types.insert(name.clone(), ty);
        }
    }
    let files = typer.ctx.files;
    for (file, parsed) in files.iter().enumerate() {
        typer.file = file;
        for item in &parsed.ast.items {
            match item {
                Item::Rule(rule) => typer.rule(
                    rule.effect,
                    &rule.actions,
                    &rule.resource_types,
                    rule.condition.as_ref(),
                ),
                Item::Role(role) => {
                    for grant in &role.grants {
                        typer.rule(
                            Effect::Allow,
                            &grant.actions,
                            &grant.resource_types,
                            grant.condition.as_ref(),
                        );
                    }
                }
                Item::Test(test) => typer.test(test),
                Item::Capability(capability) => typer.capability(capability),
                Item::Limit(limit) => typer.limit(limit),
                Item::Entity(_)
                | Item::Action(_)
                | Item::ActionGroup(_)
                | Item::Let(_)
                | Item::Route(_)
                | Item::Namespace(_) => {}
            }
        }
    }
}

impl<'c, 'f> Typer<'c, 'f> {
    fn report(&mut self, error: CheckError) {
        self.ctx.report(self.file, error);
    }

    fn text(&self, span: Span) -> String {
        self.ctx
            .files
            .get(self.file)
            .map(|f| f.source.slice(span).to_string())
            .unwrap_or_default()
    }

    fn set_let_scope(&mut self) {
        self.scope = Scope::Let;
        self.resource = self.all.clone();
        self.subject = self.all.clone();
        self.subject_by = false;
        self.context = Ty::Dynamic;
        self.action_props = Ty::Dynamic;
        self.facts.clear();
    }

    // -----------------------------------------------------------------------------------------
    // Rule heads

    /// The actions a rule head names, expanded through groups; `None` for `*`. Unknown names
    /// are reported (when actions are declared) and left out.
    fn head_actions(&mut self, actions: &ast::Actions) -> Option<BTreeSet<String>> {
        let ast::Actions::List(names) = actions else {
            return None;
        };
        let mut expanded = BTreeSet::new();
        for name in names {
            if self.schema.action_groups.contains_key(&name.text)
                || !self.schema.declares_actions()
                || self.schema.actions.contains_key(&name.text)
            {
                expanded.extend(self.schema.expand_action(&name.text));
            } else {
                declare::unknown_action(self.ctx, self.declared, self.file, name);
            }
        }
        Some(expanded)
    }

    fn rule(
        &mut self,
        effect: Effect,
        actions: &'f ast::Actions,
        on: &'f [ast::Ident],
        condition: Option<&ast::Condition>,
    ) {
        let key = HeadKey { actions, on };
        let head = match self.heads.get(&key) {
            Some(head) => head.clone(),
            None => {
                let reported = self.ctx.diagnostics.len();
                let head = self.head(actions, on);
                if self.ctx.diagnostics.len() == reported {
                    self.heads.insert(key, head.clone());
                }
                head
            }
        };
        self.rule_under(effect, head, condition);
    }

    /// The head's actions and `on` types, each reported where it is not declared, and the
    /// types they give the request variables.
    fn head(&mut self, actions: &ast::Actions, on: &[ast::Ident]) -> HeadTypes {
        let expanded = self.head_actions(actions);
        let mut on_types = BTreeSet::new();
        for ty in on {
            if declare::entity_name(self.ctx, self.declared, self.file, ty) {
                on_types.insert(ty.name.clone());
            }
        }
        self.head_types(expanded.as_ref(), &on_types, !on.is_empty())
    }

    /// A rule's condition, typed with the request variables its head gives.
    fn rule_under(&mut self, effect: Effect, head: HeadTypes, condition: Option<&ast::Condition>) {
        HeadTypes {
            resource: self.resource,
            subject: self.subject,
            subject_by: self.subject_by,
            context: self.context,
            action_props: self.action_props,
        } = head;
        self.scope = Scope::Rule {
            deny: effect == Effect::Deny,
        };
        self.facts.clear();
        if let Some(condition) = condition {
            let ty = self.expr(&condition.expr);
            self.expect_condition(&ty, condition.expr.span);
        }
    }

    /// The types of the request variables under a rule head (see [`HeadTypes`]).
    fn head_types(
        &self,
        expanded: Option<&BTreeSet<String>>,
        on_types: &BTreeSet<String>,
        has_on: bool,
    ) -> HeadTypes {
        let resource = if !self.schema.declares_entities() {
            Ty::AnyEntity
        } else if has_on {
            if on_types.is_empty() {
                Ty::Dynamic
            } else {
                Ty::Entity(Rc::new(on_types.clone()))
            }
        } else {
            self.resource_of_actions(expanded)
        };
        // A request for an action on a type it does not apply to is refused before any rule
        // sees it: with `on`, only the actions that apply to one of its types count.
        let declared_actions: Option<Vec<&crate::check::schema::Action>> =
            expanded.and_then(|names| {
                let actions: Option<Vec<&crate::check::schema::Action>> =
                    names.iter().map(|n| self.schema.actions.get(n)).collect();
                let mut actions = actions?;
                if !on_types.is_empty() {
                    actions.retain(|a| {
                        a.resource_types.is_empty()
                            || a.resource_types.iter().any(|t| on_types.contains(t))
                    });
                }
                (!actions.is_empty()).then_some(actions)
            });
        let (subject, subject_by) = self.subject_of_actions(declared_actions.as_deref());
        let context = match &declared_actions {
            Some(actions) => {
                let records: Option<Vec<(&str, &RecordType)>> = actions
                    .iter()
                    .map(|a| a.context.as_ref().map(|c| (a.name.as_str(), c)))
                    .collect();
                records.map_or(Ty::Dynamic, |r| Ty::Record(Rc::new(merge_records(&r))))
            }
            None => Ty::Dynamic,
        };
        let action_props = match &declared_actions {
            Some(actions) => {
                let records: Option<Vec<(&str, &RecordType)>> = actions
                    .iter()
                    .map(|a| a.properties.as_ref().map(|c| (a.name.as_str(), c)))
                    .collect();
                records.map_or(Ty::Dynamic, |r| Ty::Record(Rc::new(merge_records(&r))))
            }
            None => Ty::Dynamic,
        };
        HeadTypes {
            resource,
            subject,
            subject_by,
            context,
            action_props,
        }
    }

    /// `context.capability` carries a presented token, which is taken out of `context` before
    /// policies see it: reading it would always find nothing.
    fn reserved_context_key(&mut self, base: &Expr, name: &Name) {
        if matches!(base.kind, ExprKind::Var(Var::Context))
            && name.text == crate::check::schema::CAPABILITY_KEY
        {
            self.report(CheckError::Capability {
                message: "`context.capability` is never visible to policies".to_string(),
                span: name.span,
                help: "a presented token grants through its `capability` declaration (and \
                       `deny` rules still apply); name the context field something else"
                    .to_string(),
            });
        }
    }

    /// A limit: its condition is typed like a rule's, and its key where the condition holds
    /// (so an `if subject has team` guards `per subject.team`).
    fn limit(&mut self, limit: &'f ast::LimitDecl) {
        self.rule(
            Effect::Allow,
            &limit.actions,
            &limit.resource_types,
            limit.condition.as_ref(),
        );
        if let Some(condition) = &limit.condition
            && condition.kind == ast::ConditionKind::If
        {
            facts_of(&condition.expr, &mut self.facts);
        }
        let ty = self.expr(&limit.key);
        self.facts.clear();
        if matches!(ty, Ty::Bool | Ty::Record(_) | Ty::Set(_)) {
            self.report(CheckError::Limit {
                message: format!(
                    "limit `{}` is keyed by a value of type `{}`",
                    limit.name.name,
                    ty.describe()
                ),
                span: limit.key.span,
                help: "a limit counts per entity, string, number or address: e.g. `per subject`, \
                       `per context.ip`, `per resource.owner`"
                    .to_string(),
            });
        }
    }

    /// A capability declaration: its actions apply to its resource types, and its `mint`
    /// condition is typed like a rule's, with `subject` the minter.
    fn capability(&mut self, capability: &'f ast::CapabilityDecl) {
        let actions = ast::Actions::List(capability.actions().to_vec());
        let condition = capability.mint().map(|expr| ast::Condition {
            kind: ast::ConditionKind::If,
            expr: expr.clone(),
        });
        // (Not kept with the rule heads: the action list is built here, not written.)
        let head = self.head(&actions, &capability.resource_types);
        self.rule_under(Effect::Allow, head, condition.as_ref());
        let types: BTreeSet<&str> = capability
            .resource_types
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        for name in capability.actions() {
            let expanded = self.schema.expand_action(&name.text);
            for action in expanded {
                let Some(declared) = self.schema.actions.get(&action) else {
                    continue;
                };
                let applies = declared.resource_types.is_empty()
                    || declared
                        .resource_types
                        .iter()
                        .any(|t| types.contains(t.as_str()));
                if !applies {
                    let on: Vec<String> = declared
                        .resource_types
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect();
                    self.report(CheckError::Capability {
                        message: format!(
                            "capability `{}` carries `{action}`, which applies to none of its types",
                            capability.name.name
                        ),
                        span: name.span,
                        help: format!(
                            "`{action}` is declared on {}; add one of them after `on`, or drop `{action}`",
                            on.join(", ")
                        ),
                    });
                }
            }
        }
    }

    /// `subject` of a rule: the types its actions accept, when every one of them says (`by`);
    /// otherwise any declared type.
    fn subject_of_actions(&self, actions: Option<&[&crate::check::schema::Action]>) -> (Ty, bool) {
        let Some(actions) = actions.filter(|a| !a.is_empty()) else {
            return (self.all.clone(), false);
        };
        if actions.iter().any(|a| a.subject_types.is_empty()) || !self.schema.declares_entities() {
            return (self.all.clone(), false);
        }
        let types: BTreeSet<String> = actions
            .iter()
            .flat_map(|a| a.subject_types.iter().cloned())
            .collect();
        (Ty::Entity(Rc::new(types)), true)
    }

    /// `resource` of a rule without `on`: the types its actions apply to, when every action is
    /// declared with resource types; otherwise any declared type.
    fn resource_of_actions(&self, actions: Option<&BTreeSet<String>>) -> Ty {
        let Some(actions) = actions else {
            return self.all.clone();
        };
        let mut types = BTreeSet::new();
        for name in actions {
            match self.schema.actions.get(name) {
                Some(action) if !action.resource_types.is_empty() => {
                    types.extend(action.resource_types.iter().cloned());
                }
                _ => return self.all.clone(),
            }
        }
        if types.is_empty() {
            self.all.clone()
        } else {
            Ty::Entity(Rc::new(types))
        }
    }

    fn expect_condition(&mut self, ty: &Ty, span: Span) {
        if !matches!(ty, Ty::Bool | Ty::Dynamic) {
            self.report(CheckError::Condition {
                found: ty.describe(),
                span,
                help: "a condition is a test: compare the value (`==`, `<`, `in`, `like`) or test it with `has` or `is`".to_string(),
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    pub(super) fn expr(&mut self, expr: &Expr) -> Ty {
        let ty = self.expr_kind(expr);
        if self.ctx.types.is_some() {
            self.note_type(expr.span, &ty);
        }
        ty
    }

    /// Keeps an expression's type for an editor: the type, and what may be read from it.
    fn note_type(&mut self, span: Span, ty: &Ty) {
        let (entity_types, properties, fields) = match ty {
            Ty::Entity(types) => (types.iter().cloned().collect(), false, Vec::new()),
            Ty::Props(types) => (types.iter().cloned().collect(), true, Vec::new()),
            Ty::Record(record) => (
                Vec::new(),
                false,
                record
                    .fields
                    .iter()
                    .map(|(name, field)| (name.clone(), field.ty.describe()))
                    .collect(),
            ),
            _ => (Vec::new(), false, Vec::new()),
        };
        let note = crate::check::ExprType {
            file: self.file,
            span,
            ty: ty.describe(),
            entity_types,
            properties,
            fields,
        };
        if let Some(types) = self.ctx.types.as_mut() {
            types.push(note);
        }
    }

    fn expr_kind(&mut self, expr: &Expr) -> Ty {
        match &expr.kind {
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Str(_) => Ty::Str,
            ExprKind::Duration(_) => Ty::Duration,
            ExprKind::Entity { ty, id } => {
                let entity = self.entity_type(ty);
                if matches!(entity, Ty::Entity(_)) {
                    self.enum_id(&ty.name, id, expr.span);
                }
                entity
            }
            ExprKind::Set(elements) => self.set(elements),
            ExprKind::Record(entries) => self.record_literal(entries),
            ExprKind::Var(var) => {
                let ty = self.var(*var, expr.span);
                self.narrow(expr, ty)
            }
            ExprKind::Let(ident) => {
                let ty = self.let_ref(ident);
                self.narrow(expr, ty)
            }
            ExprKind::Attr { base, name } => {
                let ty = self.attr(base, name, expr.span);
                self.narrow(expr, ty)
            }
            ExprKind::Properties(base) => self.properties(base, expr.span),
            ExprKind::Call { function, args } => self.call(function, args, expr.span),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, expr.span),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, expr.span),
            ExprKind::Has { base, name } => self.has(base, name),
            ExprKind::Like { base, pattern } => self.like(base, pattern),
            ExprKind::Is { base, ty } => self.is(base, ty, expr.span),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => self.if_then_else(cond, then, otherwise),
            ExprKind::ActionTest(test) => self.action_test(test, expr.span),
        }
    }

    /// `action in write`, `action == read`: each name is a declared action or group (`==`
    /// takes an action only, since a request never names a group).
    fn action_test(&mut self, test: &ast::ActionTest, span: Span) -> Ty {
        if self.scope == Scope::Test {
            self.report(CheckError::TestVariable {
                name: "action".to_string(),
                span,
            });
            return Ty::Dynamic;
        }
        for name in &test.names {
            let group = self.schema.action_groups.contains_key(&name.text);
            if group && test.op != ast::ActionOp::In {
                self.report(CheckError::NotAnAction {
                    name: name.text.clone(),
                    span: name.span,
                    help: format!(
                        "a request names one action: `action in {}` tests membership of the group",
                        crate::syntax::fmt::action_name_text(&name.text)
                    ),
                });
            } else if !group
                && self.schema.declares_actions()
                && !self.schema.actions.contains_key(&name.text)
            {
                declare::unknown_action(self.ctx, self.declared, self.file, name);
            }
        }
        Ty::Bool
    }

    /// `if c then a else b`: `c` is a `Bool`, and what it establishes (`has`, `is`) holds in
    /// `a`, as on the right of an `and`; `a` and `b` have one type, the type of the whole.
    fn if_then_else(&mut self, cond: &Expr, then: &Expr, otherwise: &Expr) -> Ty {
        let cond_ty = self.expr(cond);
        if !matches!(cond_ty, Ty::Bool | Ty::Dynamic) {
            self.operand_error(
                "if",
                &cond_ty,
                cond.span,
                "the condition of `if … then … else` is a `Bool`".to_string(),
            );
        }
        let depth = self.facts.len();
        facts_of(cond, &mut self.facts);
        let then_ty = self.expr(then);
        self.facts.truncate(depth);
        let otherwise_ty = self.expr(otherwise);
        if then_ty == Ty::Action || otherwise_ty == Ty::Action {
            let span = if then_ty == Ty::Action {
                then.span
            } else {
                otherwise.span
            };
            self.report(CheckError::ActionValue { span });
            return Ty::Dynamic;
        }
        match join(&then_ty, &otherwise_ty) {
            Some(ty) => ty,
            None => {
                self.report(CheckError::IfBranches {
                    then: then_ty.describe(),
                    otherwise: otherwise_ty.describe(),
                    then_span: then.span,
                    otherwise_span: otherwise.span,
                    help: "both branches give the value of the whole `if`: make them one type"
                        .to_string(),
                });
                Ty::Dynamic
            }
        }
    }

    /// The type of an entity type name (`User` in `User::"alice"`).
    fn entity_type(&mut self, ty: &ast::Ident) -> Ty {
        if !self.schema.declares_entities() {
            Ty::AnyEntity
        } else if declare::entity_name(self.ctx, self.declared, self.file, ty) {
            Ty::entity(&ty.name)
        } else {
            Ty::Dynamic
        }
    }

    /// An `is` test on the left of an `and` narrows the entity's type on the right.
    fn narrow(&self, expr: &Expr, ty: Ty) -> Ty {
        if !self.facts.iter().any(|f| matches!(f, Fact::Is(..))) {
            return ty;
        }
        let Ty::Entity(types) = &ty else { return ty };
        let Some(path) = path_of(expr) else { return ty };
        for fact in &self.facts {
            if let Fact::Is(p, name) = fact
                && *p == path
                && types.contains(name)
            {
                return Ty::entity(name);
            }
        }
        ty
    }

    fn var(&mut self, var: Var, span: Span) -> Ty {
        if self.scope == Scope::Test {
            self.report(CheckError::TestVariable {
                name: var.as_str().to_string(),
                span,
            });
            return Ty::Dynamic;
        }
        match var {
            Var::Subject => self.subject.clone(),
            Var::Resource => self.resource.clone(),
            Var::Context => self.context.clone(),
            Var::Action => Ty::Action,
        }
    }

    fn let_ref(&mut self, ident: &ast::Ident) -> Ty {
        if self.scope == Scope::Test {
            self.report(CheckError::TestVariable {
                name: ident.name.clone(),
                span: ident.span,
            });
            return Ty::Dynamic;
        }
        if let Some(ty) = self.let_types.get(&ident.name) {
            return ty.clone();
        }
        if self.names.lets.contains_key(&ident.name) {
            // Part of a `let` cycle (reported) or not typed yet because of one.
            return Ty::Dynamic;
        }
        let name = ident.name.as_str();
        let help = if super::functions::is_function(name) {
            format!("`{name}` is a function: write `{name}(...)`")
        } else if matches!(name, "null" | "nil" | "None" | "undefined") {
            "there is no null: an absent attribute is declared optional (`name?: Type`) and tested with `has` (`subject has a`)".to_string()
        } else {
            let candidates = self
                .names
                .lets
                .keys()
                .map(String::as_str)
                .chain(["subject", "resource", "action", "context"]);
            suggest::did_you_mean(name, candidates, || {
                format!(
                    "name a condition with `let {name} = ...`, or use `subject`, `resource`, `action` or `context`"
                )
            })
        };
        self.report(CheckError::UnknownLet {
            name: name.to_string(),
            span: ident.span,
            help,
        });
        Ty::Dynamic
    }

    fn set(&mut self, elements: &[Expr]) -> Ty {
        let mut joined = Ty::Dynamic;
        let mut first: Option<Ty> = None;
        for element in elements {
            let ty = self.expr(element);
            if ty == Ty::Dynamic {
                continue;
            }
            match &first {
                None => {
                    first = Some(ty.clone());
                    joined = ty;
                }
                Some(first_ty) => match join(&joined, &ty) {
                    Some(j) => joined = j,
                    None => {
                        let first_ty = first_ty.describe();
                        self.report(CheckError::SetElements {
                            first: first_ty,
                            other: ty.describe(),
                            span: element.span,
                            help: "a set holds values of one type; split it, or convert the values"
                                .to_string(),
                        });
                    }
                },
            }
        }
        Ty::Set(Rc::new(joined))
    }

    fn record_literal(&mut self, entries: &[(Name, Expr)]) -> Ty {
        let mut record = RecordTy::default();
        let mut seen: HashMap<&str, crate::check::Loc> = HashMap::new();
        for (name, value) in entries {
            let ty = self.expr(value);
            let loc = crate::check::Loc {
                file: self.file,
                span: name.span,
            };
            if let Some(first) = seen.get(name.text.as_str()).copied() {
                declare::duplicate(
                    self.ctx,
                    "field",
                    &name.text,
                    loc,
                    first,
                    "each name appears once in a record",
                );
                continue;
            }
            seen.insert(&name.text, loc);
            record.fields.insert(
                name.text.clone(),
                FieldTy {
                    ty,
                    optional: false,
                    conflict: None,
                },
            );
        }
        Ty::Record(Rc::new(record))
    }

    /// How the thing whose attribute is read is named in a message.
    fn on_description(&self, base: &Expr, ty: &Ty) -> String {
        match ty {
            Ty::Entity(types) if types.len() == 1 => suggest::list(types.iter()),
            Ty::Entity(types) => format!(
                "`{}`, whose type may be {}",
                self.text(base.span),
                suggest::list_with(types.iter(), "or")
            ),
            _ => format!("`{}`", self.text(base.span)),
        }
    }

    /// The field `name` of an entity union's attributes (or properties): declared by at least
    /// one of the types, with one type.
    fn union_field(
        &mut self,
        types: &BTreeSet<String>,
        props: bool,
        base: &Expr,
        name: &Name,
        base_ty: &Ty,
    ) -> Option<FieldTy> {
        match self.union_field_of(types, props, base, name, base_ty) {
            Ok(field) => Some(field),
            Err(error) => {
                self.report(error);
                None
            }
        }
    }

    /// [`Typer::union_field`], the mistake returned rather than reported.
    fn union_field_of(
        &self,
        types: &BTreeSet<String>,
        props: bool,
        base: &Expr,
        name: &Name,
        base_ty: &Ty,
    ) -> Result<FieldTy, CheckError> {
        // Most unions are a few types: the matches stay on the stack.
        let mut found: SmallVec<[(&str, &FieldTy); 8]> = SmallVec::new();
        for ty in types.iter() {
            let record = self.entities.get(ty).and_then(|e| {
                if props {
                    e.properties.as_deref()
                } else {
                    Some(&*e.attributes)
                }
            });
            if let Some(field) = record.and_then(|r| r.fields.get(&name.text)) {
                found.push((ty.as_str(), field));
            }
        }
        let Some((_, first)) = found.first() else {
            let candidates: BTreeSet<&str> = types
                .iter()
                .filter_map(|t| self.entities.get(t))
                .filter_map(|e| {
                    if props {
                        e.properties.as_deref()
                    } else {
                        Some(&*e.attributes)
                    }
                })
                .flat_map(|r| r.fields.keys().map(String::as_str))
                .collect();
            let on = self.on_description(base, base_ty);
            let declare_hint = match types.iter().next() {
                Some(t) if types.len() == 1 && !props => {
                    format!("; to add it, declare it in `entity {t} {{ ... }}`")
                }
                _ => String::new(),
            };
            let help = suggest::did_you_mean(&name.text, candidates.iter().copied(), || {
                if candidates.is_empty() {
                    format!("nothing is declared there{declare_hint}")
                } else {
                    format!(
                        "the declared names are {}{declare_hint}",
                        suggest::list(&candidates)
                    )
                }
            });
            return Err(CheckError::UnknownAttribute {
                on,
                name: name.text.clone(),
                span: name.span,
                help,
            });
        };
        if self.subject_by
            && !props
            && base.kind == ExprKind::Var(Var::Subject)
            && found.len() < types.len()
        {
            let lacking: Vec<&String> = types
                .iter()
                .filter(|t| !found.iter().any(|(f, _)| f == t))
                .collect();
            let having: Vec<&str> = found.iter().map(|(t, _)| *t).collect();
            let read = self.text(name.span);
            let test = match having.as_slice() {
                [one] => format!("`subject is {one} and subject.{read} …`"),
                _ => format!(
                    "`subject is T and subject.{read} …` with T one of {}",
                    suggest::list(&having)
                ),
            };
            return Err(CheckError::SubjectAttribute {
                name: name.text.clone(),
                lacking: suggest::list_with(&lacking, "or"),
                span: name.span,
                help: format!(
                    "these actions accept {} as the subject; test the type first: {test}",
                    suggest::list_with(types.iter(), "and")
                ),
            });
        }
        if found.iter().any(|(_, f)| f.ty != first.ty) {
            let types = found
                .iter()
                .map(|(t, f)| format!("`{t}` declares `{}`", f.ty.describe()))
                .collect::<Vec<_>>()
                .join(", ");
            let text = self.text(base.span);
            return Err(CheckError::AttributeConflict {
                name: format!("{text}.{}", name.text),
                span: name.span,
                types,
                help: format!(
                    "narrow the type first (`{text} is T and ...`), or declare the attribute with one type"
                ),
            });
        }
        Ok(FieldTy {
            ty: first.ty.clone(),
            optional: found.iter().any(|(_, f)| f.optional),
            conflict: None,
        })
    }

    fn record_field(
        &mut self,
        record: &RecordTy,
        base: &Expr,
        name: &Name,
        base_ty: &Ty,
    ) -> Option<FieldTy> {
        match record.fields.get(&name.text) {
            Some(field) => {
                if let Some(conflict) = &field.conflict {
                    let text = self.text(base.span);
                    self.report(CheckError::AttributeConflict {
                        name: format!("{text}.{}", name.text),
                        span: name.span,
                        types: conflict.clone(),
                        help: "split the rule by action, or declare the field with one type"
                            .to_string(),
                    });
                    return None;
                }
                Some(field.clone())
            }
            None => {
                let on = self.on_description(base, base_ty);
                let help = suggest::did_you_mean(
                    &name.text,
                    record.fields.keys().map(String::as_str),
                    || {
                        if record.fields.is_empty() {
                            "nothing is declared there".to_string()
                        } else {
                            format!(
                                "the declared names are {}",
                                suggest::list(record.fields.keys())
                            )
                        }
                    },
                );
                self.report(CheckError::UnknownAttribute {
                    on,
                    name: name.text.clone(),
                    span: name.span,
                    help,
                });
                None
            }
        }
    }

    fn attr(&mut self, base: &Expr, name: &Name, span: Span) -> Ty {
        self.reserved_context_key(base, name);
        let base_ty = self.expr(base);
        let field = match &base_ty {
            Ty::Entity(types) => self.union_field(&types.clone(), false, base, name, &base_ty),
            Ty::Props(types) => self.union_field(&types.clone(), true, base, name, &base_ty),
            Ty::Record(record) => self.record_field(&record.clone(), base, name, &base_ty),
            Ty::AnyEntity | Ty::Dynamic => return Ty::Dynamic,
            Ty::Action => {
                self.report(CheckError::ActionValue { span: base.span });
                return Ty::Dynamic;
            }
            other => {
                self.report(CheckError::UnknownAttribute {
                    on: format!("`{}`", other.describe()),
                    name: name.text.clone(),
                    span: name.span,
                    help: "only entities and records have attributes".to_string(),
                });
                return Ty::Dynamic;
            }
        };
        let Some(field) = field else {
            return Ty::Dynamic;
        };
        if field.optional {
            self.guard(base, name, span);
        }
        field.ty
    }

    /// An optional attribute is read: a `has` test of the same path must be known true here.
    fn guard(&mut self, base: &Expr, name: &Name, span: Span) {
        if let Some(path) = path_of(base) {
            let guarded = self
                .facts
                .iter()
                .any(|f| matches!(f, Fact::Has(p, n) if *p == path && *n == name.text));
            if guarded {
                return;
            }
        }
        let base_text = self.text(base.span);
        let read = self.text(span);
        let key = if is_plain_name(&name.text) {
            name.text.clone()
        } else {
            format!("{:?}", name.text)
        };
        let guard = format!("{base_text} has {key} and {read}");
        if self.scope == (Scope::Rule { deny: true }) {
            self.report(CheckError::UnguardedDeny {
                attr: name.text.clone(),
                span,
                help: format!(
                    "test it first: `{guard}`; unguarded, this rule would deny every request whose {base_text} lacks `{}`",
                    name.text
                ),
            });
        } else {
            self.report(CheckError::Unguarded {
                attr: name.text.clone(),
                span,
                help: format!(
                    "test it first, on the left of an `and`: `{guard}` (a `has` inside a `let` does not guard other expressions)"
                ),
            });
        }
    }

    fn properties(&mut self, base: &Expr, span: Span) -> Ty {
        match &base.kind {
            ExprKind::Var(Var::Subject | Var::Resource) => match self.expr(base) {
                Ty::Entity(types) => {
                    let typed = types
                        .iter()
                        .all(|t| self.entities.get(t).is_some_and(|e| e.properties.is_some()));
                    if typed { Ty::Props(types) } else { Ty::Dynamic }
                }
                _ => Ty::Dynamic,
            },
            ExprKind::Var(Var::Action) => {
                if self.scope == Scope::Test {
                    self.report(CheckError::TestVariable {
                        name: "action".to_string(),
                        span: base.span,
                    });
                    return Ty::Dynamic;
                }
                self.action_props.clone()
            }
            _ => {
                let ty = self.expr(base);
                let found = match &base.kind {
                    ExprKind::Var(Var::Context) => "`context` is a record".to_string(),
                    _ => format!("this is `{}`", ty.describe()),
                };
                self.report(CheckError::Properties {
                    span,
                    found,
                    help: "`properties` is what the caller sent about the request's subject, action or resource; stored entities have attributes instead".to_string(),
                });
                Ty::Dynamic
            }
        }
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr, span: Span) -> Ty {
        let ty = self.expr(operand);
        match (op, &ty) {
            (_, Ty::Dynamic) => match op {
                UnaryOp::Not | UnaryOp::IsEmpty => Ty::Bool,
                UnaryOp::Neg => Ty::Dynamic,
            },
            (UnaryOp::Not, Ty::Bool) => Ty::Bool,
            (UnaryOp::IsEmpty, Ty::Set(_)) => Ty::Bool,
            (UnaryOp::IsEmpty, _) => {
                self.operand_error(
                    "is empty",
                    &ty,
                    span,
                    "`is empty` tests whether a set has no element: `subject.roles is empty`"
                        .to_string(),
                );
                Ty::Bool
            }
            (UnaryOp::Neg, Ty::Int | Ty::Duration) => ty,
            (UnaryOp::Not, _) => {
                self.operand_error("not", &ty, span, "`not` negates a `Bool`".to_string());
                Ty::Bool
            }
            (UnaryOp::Neg, _) => {
                self.operand_error(
                    "-",
                    &ty,
                    span,
                    "`-` negates an `Int` or a `Duration`".to_string(),
                );
                Ty::Dynamic
            }
        }
    }

    fn operand_error(&mut self, op: &'static str, ty: &Ty, span: Span, help: String) {
        if *ty == Ty::Action {
            self.report(CheckError::ActionValue { span });
            return;
        }
        let described = format!("`{}`", ty.describe());
        self.report(CheckError::Operand {
            op,
            operands: described.clone(),
            span,
            found: described,
            help,
        });
    }

    fn operands_error(&mut self, op: BinaryOp, lhs: &Ty, rhs: &Ty, span: Span, help: String) {
        if *lhs == Ty::Action || *rhs == Ty::Action {
            self.report(CheckError::ActionValue { span });
            return;
        }
        self.report(CheckError::Operand {
            op: op.as_str(),
            operands: format!("`{}` and `{}`", lhs.describe(), rhs.describe()),
            span,
            found: format!("`{}` {} `{}`", lhs.describe(), op.as_str(), rhs.describe()),
            help,
        });
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Ty {
        if op == BinaryOp::And || op == BinaryOp::Or {
            let left = self.expr(lhs);
            self.expect_bool(op, &left, lhs.span);
            let depth = self.facts.len();
            if op == BinaryOp::And {
                facts_of(lhs, &mut self.facts);
            }
            let right = self.expr(rhs);
            self.facts.truncate(depth);
            self.expect_bool(op, &right, rhs.span);
            return Ty::Bool;
        }
        if lhs.kind == ExprKind::Var(Var::Action)
            && !self.schema.entity_types.contains_key("Action")
            && let Some(ids) = cedar_actions(rhs)
        {
            let names: Vec<String> = ids
                .iter()
                .map(|id| crate::syntax::fmt::action_name_text(id))
                .collect();
            let written = match (op, &rhs.kind) {
                (BinaryOp::Eq | BinaryOp::Ne, _) => {
                    format!("action {} {}", op.as_str(), names.join(", "))
                }
                (_, ExprKind::Set(_)) => format!("action in [{}]", names.join(", ")),
                _ => format!("action in {}", names.join(", ")),
            };
            self.report(CheckError::CedarAction {
                id: ids
                    .first()
                    .map(|id| crate::syntax::fmt::quoted(id))
                    .unwrap_or_default(),
                span: rhs.span,
                help: format!("name the action or group itself: `{written}`"),
            });
            return Ty::Bool;
        }
        let left = self.expr(lhs);
        let right = self.expr(rhs);
        match op {
            BinaryOp::Eq | BinaryOp::Ne => {
                self.compare(op, &left, &right, lhs.span, rhs.span);
                Ty::Bool
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordered = |t: &Ty| {
                    matches!(
                        t,
                        Ty::Int | Ty::Time | Ty::Duration | Ty::Decimal | Ty::Dynamic
                    )
                };
                let ok = ordered(&left)
                    && ordered(&right)
                    && (left == right || left == Ty::Dynamic || right == Ty::Dynamic);
                if !ok {
                    self.operands_error(op, &left, &right, span, "`<`, `<=`, `>` and `>=` compare two `Int`s, `Time`s, `Duration`s or `Decimal`s".to_string());
                }
                Ty::Bool
            }
            BinaryOp::Add | BinaryOp::Sub => self.arithmetic(op, &left, &right, span),
            BinaryOp::Mul => self.multiply(&left, &right, span),
            BinaryOp::In => {
                self.in_op(&left, &right, span);
                Ty::Bool
            }
            BinaryOp::Contains => {
                match &left {
                    Ty::Set(element) => {
                        if comparable(element, &right) == Comparable::No {
                            self.operands_error(
                                op,
                                &left,
                                &right,
                                span,
                                format!(
                                    "this set holds `{}` values; test for one of those",
                                    element.describe()
                                ),
                            );
                        }
                    }
                    Ty::Dynamic => {}
                    _ => self.operands_error(
                        op,
                        &left,
                        &right,
                        span,
                        "`contains` tests membership of a set: `subject.roles contains \"admin\"`"
                            .to_string(),
                    ),
                }
                Ty::Bool
            }
            BinaryOp::ContainsAll | BinaryOp::ContainsAny => {
                self.set_test(op, &left, &right, span);
                Ty::Bool
            }
            BinaryOp::And | BinaryOp::Or => Ty::Bool,
        }
    }

    /// `s contains all t`, `s contains any t`: two sets whose elements can be equal.
    fn set_test(&mut self, op: BinaryOp, left: &Ty, right: &Ty, span: Span) {
        let help = match (left, right) {
            (Ty::Set(a), Ty::Set(b)) => {
                if comparable(a, b) != Comparable::No {
                    return;
                }
                format!(
                    "the sets hold `{}` and `{}` values, which are never equal; compare sets of one type",
                    a.describe(),
                    b.describe()
                )
            }
            (Ty::Set(_) | Ty::Dynamic, Ty::Set(_) | Ty::Dynamic) => return,
            (Ty::Set(_) | Ty::Dynamic, _) => format!(
                "`{}` compares two sets: `subject.roles {} [\"admin\", \"owner\"]`; to test one value, write `contains`",
                op.as_str(),
                op.as_str()
            ),
            _ => format!(
                "`{}` needs a set on the left: `subject.roles {} [\"admin\", \"owner\"]`",
                op.as_str(),
                op.as_str()
            ),
        };
        self.operands_error(op, left, right, span, help);
    }

    fn expect_bool(&mut self, op: BinaryOp, ty: &Ty, span: Span) {
        if !matches!(ty, Ty::Bool | Ty::Dynamic) {
            self.operand_error(
                op.as_str(),
                ty,
                span,
                "`and` and `or` combine conditions (`Bool` values)".to_string(),
            );
        }
    }

    fn compare(&mut self, op: BinaryOp, left: &Ty, right: &Ty, left_span: Span, right_span: Span) {
        if *left == Ty::Action || *right == Ty::Action {
            let span = if *left == Ty::Action {
                left_span
            } else {
                right_span
            };
            self.report(CheckError::ActionValue { span });
            return;
        }
        match comparable(left, right) {
            Comparable::Yes => {}
            Comparable::DisjointEntities => self.report(CheckError::CompareEntities {
                left: left.describe(),
                right: right.describe(),
                left_span,
                right_span,
                help: "entities of different types are never equal; compare with an attribute of the same type".to_string(),
            }),
            Comparable::No => {
                let help = if left.is_entity() && *right == Ty::Str || right.is_entity() && *left == Ty::Str {
                    "an entity is never equal to a string; write the entity: `User::\"alice\"`".to_string()
                } else {
                    "values of different types are never equal; compare values of one type".to_string()
                };
                self.report(CheckError::Compare {
                    op: op.as_str(),
                    left: left.describe(),
                    right: right.describe(),
                    left_span,
                    right_span,
                    help,
                });
            }
        }
    }

    fn arithmetic(&mut self, op: BinaryOp, left: &Ty, right: &Ty, span: Span) -> Ty {
        let result = match (op, left, right) {
            (_, Ty::Int, Ty::Int) => Some(Ty::Int),
            (_, Ty::Duration, Ty::Duration) => Some(Ty::Duration),
            (_, Ty::Time, Ty::Duration) => Some(Ty::Time),
            (BinaryOp::Add, Ty::Duration, Ty::Time) => Some(Ty::Time),
            (BinaryOp::Sub, Ty::Time, Ty::Time) => Some(Ty::Duration),
            (_, Ty::Dynamic, Ty::Int | Ty::Duration | Ty::Time | Ty::Dynamic)
            | (_, Ty::Int | Ty::Duration | Ty::Time, Ty::Dynamic) => Some(Ty::Dynamic),
            _ => None,
        };
        result.unwrap_or_else(|| {
            let help = if op == BinaryOp::Add {
                "`+` adds two `Int`s or two `Duration`s, or a `Duration` to a `Time`; there is no string concatenation"
            } else {
                "`-` subtracts `Int`s or `Duration`s, a `Duration` from a `Time`, or two `Time`s (giving a `Duration`)"
            };
            self.operands_error(op, left, right, span, help.to_string());
            Ty::Dynamic
        })
    }

    /// `a * b`: two `Int`s (what Cedar multiplies); the product is an `Int` even when an operand
    /// is only known at run time, since nothing else multiplies.
    fn multiply(&mut self, left: &Ty, right: &Ty, span: Span) -> Ty {
        let factor = |t: &Ty| matches!(t, Ty::Int | Ty::Dynamic);
        if factor(left) && factor(right) {
            return Ty::Int;
        }
        self.operands_error(
            BinaryOp::Mul,
            left,
            right,
            span,
            "`*` multiplies two `Int`s".to_string(),
        );
        Ty::Dynamic
    }

    fn in_op(&mut self, left: &Ty, right: &Ty, span: Span) {
        let entity_like = |t: &Ty| matches!(t, Ty::Entity(_) | Ty::AnyEntity | Ty::Dynamic);
        let ok = match left {
            Ty::Entity(_) | Ty::AnyEntity => match right {
                Ty::Set(element) => entity_like(element),
                other => entity_like(other),
            },
            Ty::Ip => matches!(right, Ty::Ip | Ty::Dynamic),
            Ty::Dynamic => match right {
                Ty::Set(element) => entity_like(element),
                other => entity_like(other) || *other == Ty::Ip,
            },
            _ => false,
        };
        if ok {
            return;
        }
        let help = match left {
            Ty::Set(_) => "`in` tests an entity's place in the hierarchy; to test whether a set holds a value, write `set contains value`".to_string(),
            Ty::Entity(_) | Ty::AnyEntity | Ty::Ip | Ty::Dynamic => {
                "`e in g` needs an entity or a set of entities on the right (`ip in range` two `Ip`s)".to_string()
            }
            _ => "`in` needs an entity (hierarchy) or an `Ip` (range) on the left; to test whether a set holds a value, write `set contains value`".to_string(),
        };
        self.operands_error(BinaryOp::In, left, right, span, help);
    }

    fn has(&mut self, base: &Expr, name: &Name) -> Ty {
        self.reserved_context_key(base, name);
        let base_ty = self.expr(base);
        match &base_ty {
            Ty::Entity(types) => {
                self.union_field(&types.clone(), false, base, name, &base_ty);
            }
            Ty::Props(types) => {
                self.union_field(&types.clone(), true, base, name, &base_ty);
            }
            Ty::Record(record) => {
                if !record.fields.contains_key(&name.text) {
                    self.record_field(&record.clone(), base, name, &base_ty);
                }
            }
            Ty::AnyEntity | Ty::Dynamic => {}
            other => {
                let other = other.clone();
                self.operand_error(
                    "has",
                    &other,
                    base.span,
                    "`has` tests whether an entity or a record has an attribute".to_string(),
                );
            }
        }
        Ty::Bool
    }

    fn like(&mut self, base: &Expr, pattern: &ast::StrLit) -> Ty {
        let ty = self.expr(base);
        if !matches!(ty, Ty::Str | Ty::Dynamic) {
            self.operand_error(
                "like",
                &ty,
                base.span,
                "`like` matches a `String` against a pattern".to_string(),
            );
        }
        let mut chars = pattern.value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' && !matches!(chars.next(), Some('*') | Some('\\')) {
                self.report(CheckError::Pattern {
                    span: pattern.span,
                    reason: "`\\` must be followed by `*` or `\\`".to_string(),
                });
                break;
            }
        }
        Ty::Bool
    }

    fn is(&mut self, base: &Expr, ty: &ast::Ident, span: Span) -> Ty {
        let base_ty = self.expr(base);
        let known = !self.schema.declares_entities()
            || declare::entity_name(self.ctx, self.declared, self.file, ty);
        match &base_ty {
            Ty::Entity(types) => {
                if known && !types.contains(&ty.name) {
                    let what = self.text(base.span);
                    self.report(CheckError::ImpossibleIs {
                        help: format!(
                            "here `{what}` is {}; remove the test, or widen the rule",
                            suggest::list_with(types.iter(), "or")
                        ),
                        what,
                        ty: ty.name.clone(),
                        span,
                    });
                }
            }
            Ty::AnyEntity | Ty::Dynamic => {}
            other => {
                let other = other.clone();
                self.operand_error(
                    "is",
                    &other,
                    base.span,
                    "`is` tests an entity's type".to_string(),
                );
            }
        }
        Ty::Bool
    }

    // -----------------------------------------------------------------------------------------
    // Tests

    fn test(&mut self, test: &ast::TestBlock) {
        self.scope = Scope::Test;
        self.facts.clear();
        for statement in &test.statements {
            match statement {
                ast::TestStatement::Data(_) => {}
                ast::TestStatement::Given(given) => self.given(given),
                ast::TestStatement::GivenRole(given) => {
                    if !self.schema.roles.contains_key(&given.role.name) {
                        declare::unknown_role(self.ctx, self.declared, self.file, &given.role);
                    }
                    self.entity_ref(&given.subject);
                    if let Some(on) = &given.on {
                        self.entity_ref(on);
                    }
                }
                ast::TestStatement::Expect(expect) => self.expectation(expect),
            }
        }
    }

    fn entity_ref(&mut self, entity: &ast::EntityRef) -> bool {
        let declared = self.schema.declares_entities()
            && declare::entity_name(self.ctx, self.declared, self.file, &entity.ty);
        if declared {
            self.enum_id(&entity.ty.name, &entity.id, entity.span);
        }
        declared
    }

    /// An entity of an enumerated type (`entity Color enum [...]`) has one of its ids.
    fn enum_id(&mut self, ty: &str, id: &str, span: Span) {
        if let Some(error) = self.schema.unknown_enum_id(ty, id, span) {
            self.report(error.into());
        }
    }

    fn expect_time(&mut self, expr: &Expr) {
        let ty = self.expr(expr);
        if !matches!(ty, Ty::Time | Ty::Dynamic) {
            self.report(CheckError::TypeMismatch {
                expected: "Time".to_string(),
                found: ty.describe(),
                span: expr.span,
                help: "write the time of the test as `time(\"2026-03-02T10:00:00Z\")`".to_string(),
            });
        }
    }

    fn given(&mut self, given: &ast::GivenEntity) {
        let declared = self.entity_ref(&given.entity);
        for parent in &given.parents {
            if self.entity_ref(parent)
                && declared
                && let Some(child) = self.schema.entity_types.get(&given.entity.ty.name)
                && !child.parents.contains(&parent.ty.name)
            {
                let help = if child.parents.is_empty() {
                    format!(
                        "`{}` declares no parent types; add `in [{}]` to its declaration",
                        child.name, parent.ty.name
                    )
                } else {
                    format!(
                        "its parents may be {}",
                        suggest::list_with(&child.parents, "or")
                    )
                };
                self.report(CheckError::ParentType {
                    child: child.name.clone(),
                    parent: parent.ty.name.clone(),
                    span: parent.span,
                    help,
                });
            }
        }
        let expected = if declared {
            self.entities
                .get(&given.entity.ty.name)
                .map(|e| e.attributes.clone())
        } else {
            None
        };
        let on = format!("`{}`", given.entity.ty.name);
        self.record_value(
            &given.attributes,
            expected.as_deref(),
            "attribute",
            &on,
            given.entity.span,
        );
    }

    /// Checks a test's record value against the declared record, when there is one.
    fn record_value(
        &mut self,
        entries: &[(Name, Expr)],
        expected: Option<&RecordTy>,
        what: &'static str,
        on: &str,
        span: Span,
    ) {
        let mut given = BTreeSet::new();
        for (name, value) in entries {
            let ty = self.expr(value);
            given.insert(name.text.as_str());
            let Some(expected) = expected else { continue };
            match expected.fields.get(&name.text) {
                None => {
                    let help = suggest::did_you_mean(
                        &name.text,
                        expected.fields.keys().map(String::as_str),
                        || {
                            format!(
                                "the declared names are {}",
                                suggest::list(expected.fields.keys())
                            )
                        },
                    );
                    self.report(CheckError::UnknownAttribute {
                        on: on.to_string(),
                        name: name.text.clone(),
                        span: name.span,
                        help,
                    });
                }
                Some(field) if !conforms(&ty, &field.ty) => self.report(CheckError::TypeMismatch {
                    expected: field.ty.describe(),
                    found: ty.describe(),
                    span: value.span,
                    help: format!("`{}` is declared as `{}`", name.text, field.ty.describe()),
                }),
                Some(_) => {}
            }
        }
        if let Some(expected) = expected {
            for (name, field) in &expected.fields {
                if !field.optional && !given.contains(name.as_str()) {
                    self.report(CheckError::MissingField {
                        what,
                        name: name.clone(),
                        span,
                        help: format!("give `{name}` a value of type `{}`, or declare it optional (`{name}?: ...`)", field.ty.describe()),
                    });
                }
            }
        }
    }

    fn expectation(&mut self, expect: &ast::Expectation) {
        let subject_declared = self.entity_ref(&expect.subject);
        let resource_declared = self.entity_ref(&expect.resource);
        let action_name = &expect.action.text;
        let action = self.schema.actions.get(action_name);
        if self.schema.action_groups.contains_key(action_name) {
            self.report(CheckError::NotAnAction {
                name: action_name.clone(),
                span: expect.action.span,
                help: format!(
                    "a test names one action of the group: {}",
                    suggest::list_with(self.schema.expand_action(action_name), "or")
                ),
            });
        } else if self.schema.declares_actions() && action.is_none() {
            declare::unknown_action(self.ctx, self.declared, self.file, &expect.action);
        }
        for with in &expect.with {
            match with {
                ast::WithClause::Context(value) => {
                    let expected = action.and_then(|a| a.context.as_ref()).map(convert_record);
                    self.with_record(value, expected.as_ref(), "context field", "`context`");
                }
                ast::WithClause::Properties(var, value) => {
                    let expected = match var {
                        Var::Action => action
                            .and_then(|a| a.properties.as_ref())
                            .map(convert_record),
                        Var::Subject if subject_declared => {
                            self.properties_of(&expect.subject.ty.name)
                        }
                        Var::Resource if resource_declared => {
                            self.properties_of(&expect.resource.ty.name)
                        }
                        _ => None,
                    };
                    let on = format!("`{}.properties`", var.as_str());
                    self.with_record(value, expected.as_ref(), "property", &on);
                }
                ast::WithClause::Capability(name, record) => {
                    self.test_capability(name, record.as_ref());
                }
            }
        }
        if let Some(at) = &expect.at {
            self.expect_time(at);
        }
        if let Some(by) = &expect.by
            && !self.names.rule_ids.contains_key(&by.value)
        {
            let help = suggest::did_you_mean(
                &by.value,
                self.names.rule_ids.keys().map(String::as_str),
                || {
                    "`by` names a rule by its `@id(\"...\")`; give the deciding rule an id"
                        .to_string()
                },
            );
            self.report(CheckError::UnknownRuleId {
                id: by.value.clone(),
                span: by.span,
                help,
            });
        }
    }

    fn properties_of(&self, entity: &str) -> Option<RecordTy> {
        self.entities
            .get(entity)
            .and_then(|e| e.properties.as_deref())
            .cloned()
    }

    /// `with capability NAME { ... }`: a declared capability, and caveats of the right types.
    fn test_capability(&mut self, name: &ast::Ident, record: Option<&Expr>) {
        if !self.declared.capabilities.contains_key(&name.name) {
            let known = self.declared.capabilities.keys().map(String::as_str);
            self.report(CheckError::Capability {
                message: format!("unknown capability `{}`", name.name),
                span: name.span,
                help: match crate::source::suggest(&name.name, known) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "declare it with `capability NAME on Type { ... }`".to_string(),
                },
            });
        }
        let Some(record) = record else {
            return;
        };
        let entity = if self.schema.declares_entities() {
            self.all.clone()
        } else {
            Ty::AnyEntity
        };
        let field = |ty: Ty| FieldTy {
            ty,
            optional: true,
            conflict: None,
        };
        let expected = RecordTy {
            fields: BTreeMap::from([
                ("resource".to_string(), field(entity.clone())),
                ("within".to_string(), field(entity.clone())),
                ("holder".to_string(), field(entity.clone())),
                ("minted_by".to_string(), field(entity)),
                ("actions".to_string(), field(Ty::Set(Rc::new(Ty::Str)))),
                ("expires".to_string(), field(Ty::Time)),
            ]),
        };
        self.with_record(record, Some(&expected), "caveat", "a capability");
    }

    fn with_record(
        &mut self,
        value: &Expr,
        expected: Option<&RecordTy>,
        what: &'static str,
        on: &str,
    ) {
        match &value.kind {
            ExprKind::Record(entries) => self.record_value(entries, expected, what, on, value.span),
            _ => {
                self.expr(value);
            }
        }
    }
}

/// Whether a name can follow `has` without quotes.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, PartialEq)]
enum Comparable {
    Yes,
    No,
    DisjointEntities,
}

/// Whether `==` between values of these types can be true.
fn comparable(a: &Ty, b: &Ty) -> Comparable {
    match (a, b) {
        (Ty::Dynamic, _) | (_, Ty::Dynamic) => Comparable::Yes,
        (Ty::Entity(x), Ty::Entity(y)) => {
            if x.is_disjoint(y) {
                Comparable::DisjointEntities
            } else {
                Comparable::Yes
            }
        }
        (Ty::AnyEntity, Ty::Entity(_) | Ty::AnyEntity) | (Ty::Entity(_), Ty::AnyEntity) => {
            Comparable::Yes
        }
        (Ty::Set(x), Ty::Set(y)) => comparable(x, y),
        (Ty::Record(x), Ty::Record(y)) => {
            let covers = |p: &RecordTy, q: &RecordTy| {
                p.fields
                    .iter()
                    .all(|(name, f)| f.optional || q.fields.contains_key(name))
            };
            let fields_agree = x.fields.iter().all(|(name, f)| {
                y.fields
                    .get(name)
                    .is_none_or(|g| comparable(&f.ty, &g.ty) == Comparable::Yes)
            });
            if covers(x, y) && covers(y, x) && fields_agree {
                Comparable::Yes
            } else {
                Comparable::No
            }
        }
        (Ty::Props(_), Ty::Props(_) | Ty::Record(_)) | (Ty::Record(_), Ty::Props(_)) => {
            Comparable::Yes
        }
        (Ty::Bool, Ty::Bool)
        | (Ty::Int, Ty::Int)
        | (Ty::Str, Ty::Str)
        | (Ty::Time, Ty::Time)
        | (Ty::Duration, Ty::Duration)
        | (Ty::Ip, Ty::Ip)
        | (Ty::Decimal, Ty::Decimal) => Comparable::Yes,
        _ => Comparable::No,
    }
}

/// The type of a set holding values of both types, if they can share one.
fn join(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        (Ty::Dynamic, other) | (other, Ty::Dynamic) => Some(other.clone()),
        (Ty::Entity(x), Ty::Entity(y)) => Some(Ty::Entity(Rc::new(x.union(y).cloned().collect()))),
        (Ty::AnyEntity, t) | (t, Ty::AnyEntity) if t.is_entity() => Some(Ty::AnyEntity),
        (Ty::Set(x), Ty::Set(y)) => join(x, y).map(|j| Ty::Set(Rc::new(j))),
        _ if comparable(a, b) == Comparable::Yes => Some(a.clone()),
        _ => None,
    }
}

/// Whether a test value of type `value` may stand where `expected` is declared.
fn conforms(value: &Ty, expected: &Ty) -> bool {
    match (value, expected) {
        (Ty::Dynamic, _) | (_, Ty::Dynamic) => true,
        (Ty::Entity(x), Ty::Entity(y)) => x.is_subset(y),
        (Ty::AnyEntity, t) | (t, Ty::AnyEntity) => t.is_entity(),
        (Ty::Set(x), Ty::Set(y)) => conforms(x, y),
        (Ty::Record(x), Ty::Record(y)) => {
            x.fields
                .iter()
                .all(|(name, f)| y.fields.get(name).is_some_and(|g| conforms(&f.ty, &g.ty)))
                && y.fields
                    .iter()
                    .all(|(name, g)| g.optional || x.fields.contains_key(name))
        }
        _ => comparable(value, expected) == Comparable::Yes,
    }
}
