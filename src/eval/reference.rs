//! The reference interpreter (tests only): a plain recursive interpreter over the parsed and
//! checked policy tree, against which the property test in `reference_props` holds the compiled
//! decision graph.
//!
//! It shares nothing with the compiler, the evaluator or the entity store on purpose: its own
//! values ([`RValue`], entities by type and id), its own entity data (what the data files say,
//! not the decoded [`Store`](crate::data::store::Store)), its own operations (equality, order,
//! checked arithmetic, `in` by walking parents, `like` by backtracking), no index, no
//! discrimination, no memo, no constant folding; `let`s are looked up by name and evaluated
//! every time they are read. It reads the [`Schema`] only for action groups, role inheritance
//! and which request types and actions are declared. Library crates (jiff, ipnet) give time
//! parsing, time-zone conversion and address ranges; `program::ops` is not used at all, so a
//! bug there shows up as a disagreement.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use crate::ast::{self, BinaryOp, ConditionKind, Expr, ExprKind, UnaryOp, Var};
use crate::check::schema::Schema;
use crate::syntax::ParsedFile;

/// An entity by type and id, as the data files and policies name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid {
    pub ty: String,
    pub id: String,
}

impl Uid {
    pub fn new(ty: impl AsRef<str>, id: impl AsRef<str>) -> Uid {
        Uid {
            ty: ty.as_ref().to_string(),
            id: id.as_ref().to_string(),
        }
    }
}

/// A value. Sets are kept sorted and without duplicates (see [`RValue::set`]), so the derived
/// equality is set equality.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RValue {
    Bool(bool),
    Int(i64),
    Str(String),
    Time(Timestamp),
    Duration(SignedDuration),
    Ip(ipnet::IpNet),
    /// Ten-thousandths.
    Decimal(i64),
    Entity(Uid),
    Set(Vec<RValue>),
    Record(BTreeMap<String, RValue>),
}

impl RValue {
    pub fn set(mut members: Vec<RValue>) -> RValue {
        members.sort();
        members.dedup();
        RValue::Set(members)
    }

    pub fn str(text: impl AsRef<str>) -> RValue {
        RValue::Str(text.as_ref().to_string())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RValue::Bool(_) => "Bool",
            RValue::Int(_) => "Int",
            RValue::Str(_) => "String",
            RValue::Time(_) => "Time",
            RValue::Duration(_) => "Duration",
            RValue::Ip(_) => "Ip",
            RValue::Decimal(_) => "Decimal",
            RValue::Entity(_) => "Entity",
            RValue::Set(_) => "Set",
            RValue::Record(_) => "Record",
        }
    }
}

/// An entity as a data file defines it.
#[derive(Clone, Debug, Default)]
pub struct REntity {
    pub attributes: BTreeMap<String, RValue>,
    pub parents: Vec<Uid>,
}

/// A role binding as a data file writes it.
#[derive(Clone, Debug)]
pub struct RBinding {
    pub role: String,
    pub subject: Uid,
    pub on: Option<Uid>,
}

/// The data files' contents.
#[derive(Clone, Debug, Default)]
pub struct RData {
    pub entities: BTreeMap<Uid, REntity>,
    pub bindings: Vec<RBinding>,
}

#[derive(Clone, Debug)]
pub struct RRequest {
    pub subject: Uid,
    pub action: String,
    pub resource: Uid,
    pub subject_properties: BTreeMap<String, RValue>,
    pub action_properties: BTreeMap<String, RValue>,
    pub resource_properties: BTreeMap<String, RValue>,
    pub context: BTreeMap<String, RValue>,
    pub now: Timestamp,
    /// The subject's verified attributes: read before the store's, and their `roles` are held.
    pub verified: Option<BTreeMap<String, RValue>>,
}

/// What the reference decides, with what it saw on the way (for the test's statistics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ROutcome {
    /// The request names an undeclared type or action (or an action on a type it does not
    /// apply to, or asked for by a subject type it does not accept): denied before any rule is
    /// looked at.
    pub invalid: bool,
    pub allowed: bool,
    pub reasons: BTreeSet<String>,
    pub errors: BTreeSet<String>,
    /// Applicable allows whose condition held.
    pub allows_held: BTreeSet<String>,
    /// Applicable denies whose condition held or errored.
    pub denies_held: BTreeSet<String>,
}

/// Why an expression has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RError(pub String);

type R<T> = Result<T, RError>;

fn err<T>(message: impl Into<String>) -> R<T> {
    Err(RError(message.into()))
}

/// A rule or role grant, as read from the tree.
struct RuleRef<'a> {
    id: String,
    deny: bool,
    actions: &'a ast::Actions,
    types: &'a [ast::Ident],
    condition: Option<&'a ast::Condition>,
    role: Option<&'a str>,
}

pub struct Reference<'a> {
    pub files: &'a [ParsedFile],
    pub schema: &'a Schema,
    pub data: &'a RData,
}

/// How deep `let`s may refer to each other before the reference gives up (a cycle).
const MAX_LET_DEPTH: usize = 64;

impl<'a> Reference<'a> {
    fn rules(&self) -> Vec<RuleRef<'a>> {
        let mut rules = Vec::new();
        for file in self.files {
            let id_of = |annotations: &[ast::Annotation], span: crate::source::Span| {
                annotations
                    .iter()
                    .find(|a| a.name.name == "id")
                    .and_then(|a| a.value.as_ref())
                    .map(|v| v.value.clone())
                    .unwrap_or_else(|| {
                        let (line, _) = file.source.line_col(span.start as usize);
                        format!("{}:{line}", file.source.name())
                    })
            };
            for item in &file.ast.items {
                match item {
                    ast::Item::Rule(rule) => rules.push(RuleRef {
                        id: id_of(&rule.annotations, rule.span),
                        deny: rule.effect == ast::Effect::Deny,
                        actions: &rule.actions,
                        types: &rule.resource_types,
                        condition: rule.condition.as_ref(),
                        role: None,
                    }),
                    ast::Item::Role(role) => {
                        for grant in &role.grants {
                            rules.push(RuleRef {
                                id: id_of(&grant.annotations, grant.span),
                                deny: false,
                                actions: &grant.actions,
                                types: &grant.resource_types,
                                condition: grant.condition.as_ref(),
                                role: Some(role.name.name.as_str()),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        rules
    }

    fn request_is_valid(&self, request: &RRequest) -> bool {
        let schema = self.schema;
        if schema.declares_entities()
            && !(schema.entity_types.contains_key(&request.subject.ty)
                && schema.entity_types.contains_key(&request.resource.ty))
        {
            return false;
        }
        match schema.actions.get(&request.action) {
            None => !schema.declares_actions(),
            Some(action) => {
                (action.resource_types.is_empty()
                    || action.resource_types.contains(&request.resource.ty))
                    && (action.subject_types.is_empty()
                        || action.subject_types.contains(&request.subject.ty))
            }
        }
    }

    pub fn decide(&self, request: &RRequest) -> ROutcome {
        let mut outcome = ROutcome::default();
        if !self.request_is_valid(request) {
            outcome.invalid = true;
            return outcome;
        }
        for rule in self.rules() {
            if !self.applies(&rule, request) {
                continue;
            }
            let result = match rule.condition {
                None => Ok(true),
                Some(condition) => {
                    let value = self.eval(&condition.expr, request, 0);
                    let truth = value.and_then(|v| match v {
                        RValue::Bool(b) => Ok(b),
                        other => err(format!("condition is {}, not Bool", other.kind())),
                    });
                    match condition.kind {
                        ConditionKind::If => truth,
                        ConditionKind::Unless => truth.map(|b| !b),
                    }
                }
            };
            match result {
                Ok(true) if rule.deny => {
                    outcome.denies_held.insert(rule.id);
                }
                Ok(true) => {
                    outcome.allows_held.insert(rule.id);
                }
                Ok(false) => {}
                Err(_) => {
                    if rule.deny {
                        outcome.denies_held.insert(rule.id.clone());
                    }
                    outcome.errors.insert(rule.id);
                }
            }
        }
        if outcome.denies_held.is_empty() {
            outcome.allowed = !outcome.allows_held.is_empty();
            outcome.reasons = outcome.allows_held.clone();
        } else {
            outcome.allowed = false;
            outcome.reasons = outcome.denies_held.clone();
        }
        outcome
    }

    /// The ids of the rules and grants that apply to a request (whatever their conditions).
    pub fn applicable(&self, request: &RRequest) -> BTreeSet<String> {
        self.rules()
            .into_iter()
            .filter(|rule| self.applies(rule, request))
            .map(|rule| rule.id)
            .collect()
    }

    /// For each applicable rule with an `if`, the first test of its condition (the leftmost
    /// operand of its `and` chain) and that test's value: what the compiler discriminates on.
    pub fn first_tests(&self, request: &RRequest) -> Vec<(String, &'a Expr, R<RValue>)> {
        let mut tests = Vec::new();
        for rule in self.rules() {
            let Some(condition) = rule.condition else {
                continue;
            };
            if condition.kind != ConditionKind::If || !self.applies(&rule, request) {
                continue;
            }
            let mut first = &condition.expr;
            while let ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                ..
            } = &first.kind
            {
                first = lhs;
            }
            tests.push((rule.id, first, self.eval(first, request, 0)));
        }
        tests
    }

    /// Evaluates one expression against a request.
    pub fn eval_expr(&self, expr: &Expr, request: &RRequest) -> R<RValue> {
        self.eval(expr, request, 0)
    }

    fn applies(&self, rule: &RuleRef<'_>, request: &RRequest) -> bool {
        let action = match rule.actions {
            ast::Actions::Any(_) => true,
            ast::Actions::List(names) => names
                .iter()
                .any(|name| self.schema.covers(&name.text, &request.action)),
        };
        let ty = rule.types.is_empty() || rule.types.iter().any(|t| t.name == request.resource.ty);
        if !(action && ty) {
            return false;
        }
        match rule.role {
            None => true,
            Some(role) => self
                .held_roles(request)
                .iter()
                .any(|held| self.schema.role_closure(held).contains(role)),
        }
    }

    /// The roles the subject holds on the resource, as named in its `roles` attribute or by
    /// a binding to it or to something it is in (globally, or on the resource or above it).
    fn held_roles(&self, request: &RRequest) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        if let Some(RValue::Set(names)) = request.verified.as_ref().and_then(|v| v.get("roles")) {
            for name in names {
                if let RValue::Str(name) = name {
                    held.insert(name.clone());
                }
            }
        }
        if let Some(RValue::Set(names)) = self
            .data
            .entities
            .get(&request.subject)
            .and_then(|e| e.attributes.get("roles"))
        {
            for name in names {
                if let RValue::Str(name) = name {
                    held.insert(name.clone());
                }
            }
        }
        for binding in &self.data.bindings {
            let holder = self.reaches(&request.subject, &binding.subject);
            let place = match &binding.on {
                None => true,
                Some(on) => self.reaches(&request.resource, on),
            };
            if holder && place {
                held.insert(binding.role.clone());
            }
        }
        held
    }

    /// `e in g` over entities: reflexive, and transitive over the parents the data defines.
    fn reaches(&self, from: &Uid, to: &Uid) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(entity) = stack.pop() {
            if entity == to {
                return true;
            }
            if !seen.insert(entity) {
                continue;
            }
            if let Some(defined) = self.data.entities.get(entity) {
                stack.extend(defined.parents.iter());
            }
        }
        false
    }

    fn let_value(&self, name: &str) -> Option<&'a Expr> {
        self.files.iter().find_map(|file| {
            file.ast.items.iter().find_map(|item| match item {
                ast::Item::Let(decl) if decl.name.name == name => Some(&decl.value),
                _ => None,
            })
        })
    }

    fn eval(&self, expr: &Expr, request: &RRequest, depth: usize) -> R<RValue> {
        let eval = |e: &Expr| self.eval(e, request, depth);
        match &expr.kind {
            ExprKind::Bool(b) => Ok(RValue::Bool(*b)),
            ExprKind::Int(i) => Ok(RValue::Int(*i)),
            ExprKind::Str(s) => Ok(RValue::Str(s.clone())),
            ExprKind::Duration(ms) => Ok(RValue::Duration(SignedDuration::from_millis(*ms))),
            ExprKind::Entity { ty, id } => Ok(RValue::Entity(Uid::new(&ty.name, id))),
            ExprKind::Set(members) => {
                let mut values = Vec::new();
                for member in members {
                    values.push(eval(member)?);
                }
                Ok(RValue::set(values))
            }
            ExprKind::Record(entries) => {
                let mut fields = BTreeMap::new();
                for (name, value) in entries {
                    let value = eval(value)?;
                    fields.insert(name.text.clone(), value);
                }
                Ok(RValue::Record(fields))
            }
            ExprKind::Var(var) => match var {
                Var::Subject => Ok(RValue::Entity(request.subject.clone())),
                Var::Resource => Ok(RValue::Entity(request.resource.clone())),
                Var::Context => Ok(RValue::Record(request.context.clone())),
                Var::Action => err("bare `action` has no value"),
            },
            ExprKind::ActionTest(test) => Ok(RValue::Bool(match test.op {
                ast::ActionOp::In => test
                    .names
                    .iter()
                    .any(|name| self.schema.covers(&name.text, &request.action)),
                ast::ActionOp::Eq => test.names.iter().any(|n| n.text == request.action),
                ast::ActionOp::Ne => !test.names.iter().any(|n| n.text == request.action),
            })),
            ExprKind::Let(name) => {
                if depth > MAX_LET_DEPTH {
                    return err("`let`s refer to each other too deeply");
                }
                match self.let_value(&name.name) {
                    Some(value) => self.eval(value, request, depth + 1),
                    None => err(format!("unknown `let {}`", name.name)),
                }
            }
            ExprKind::Attr { base, name } => {
                let is_subject = self.is_subject(base);
                let base = eval(base)?;
                if let Some(verified) = &request.verified
                    && is_subject
                    && let Some(value) = verified.get(&name.text)
                {
                    return Ok(value.clone());
                }
                self.attribute(&base, &name.text)
            }
            ExprKind::Properties(base) => match &base.kind {
                ExprKind::Var(Var::Subject) => {
                    Ok(RValue::Record(request.subject_properties.clone()))
                }
                ExprKind::Var(Var::Action) => Ok(RValue::Record(request.action_properties.clone())),
                ExprKind::Var(Var::Resource) => {
                    Ok(RValue::Record(request.resource_properties.clone()))
                }
                _ => err("`.properties` of something other than subject, action, resource"),
            },
            ExprKind::Call { function, args } => self.call(&function.name, args, request, depth),
            ExprKind::Unary { op, operand } => {
                let value = eval(operand)?;
                match (op, value) {
                    (UnaryOp::Not, RValue::Bool(b)) => Ok(RValue::Bool(!b)),
                    (UnaryOp::Neg, RValue::Int(i)) => match i.checked_neg() {
                        Some(n) => Ok(RValue::Int(n)),
                        None => err("overflow in -"),
                    },
                    (UnaryOp::Neg, RValue::Duration(d)) => match d.checked_neg() {
                        Some(n) => Ok(RValue::Duration(n)),
                        None => err("overflow in -"),
                    },
                    (UnaryOp::IsEmpty, RValue::Set(members)) => {
                        Ok(RValue::Bool(members.is_empty()))
                    }
                    (op, other) => err(format!("{op:?} of {}", other.kind())),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => match op {
                BinaryOp::And | BinaryOp::Or => {
                    let is_and = *op == BinaryOp::And;
                    let left = match eval(lhs)? {
                        RValue::Bool(b) => b,
                        other => return err(format!("{op:?} of {}", other.kind())),
                    };
                    // `false and x` is false, `true or x` is true: `x` is never looked at.
                    if left != is_and {
                        return Ok(RValue::Bool(left));
                    }
                    match eval(rhs)? {
                        RValue::Bool(b) => Ok(RValue::Bool(b)),
                        other => err(format!("{op:?} of {}", other.kind())),
                    }
                }
                _ => {
                    let left = eval(lhs)?;
                    let right = eval(rhs)?;
                    self.binary(*op, left, right)
                }
            },
            ExprKind::Has { base, name }
                if self.is_subject(base)
                    && request
                        .verified
                        .as_ref()
                        .is_some_and(|v| v.contains_key(&name.text)) =>
            {
                eval(base)?;
                Ok(RValue::Bool(true))
            }
            ExprKind::Has { base, name } => match eval(base)? {
                RValue::Record(fields) => Ok(RValue::Bool(fields.contains_key(&name.text))),
                RValue::Entity(uid) => Ok(RValue::Bool(
                    self.data
                        .entities
                        .get(&uid)
                        .is_some_and(|e| e.attributes.contains_key(&name.text)),
                )),
                other => err(format!("`has` on {}", other.kind())),
            },
            ExprKind::Like { base, pattern } => match eval(base)? {
                RValue::Str(text) => Ok(RValue::Bool(glob(&text, &pattern.value))),
                other => err(format!("`like` on {}", other.kind())),
            },
            ExprKind::Is { base, ty } => match eval(base)? {
                RValue::Entity(uid) => Ok(RValue::Bool(uid.ty == ty.name)),
                other => err(format!("`is` on {}", other.kind())),
            },
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => match eval(cond)? {
                RValue::Bool(true) => eval(then),
                RValue::Bool(false) => eval(otherwise),
                other => err(format!("`if` on {}", other.kind())),
            },
        }
    }

    /// True when `expr` is the `subject` variable, directly or through `let`s: where the
    /// subject's verified attributes are read.
    fn is_subject(&self, expr: &Expr) -> bool {
        match &expr.kind {
            ExprKind::Var(Var::Subject) => true,
            ExprKind::Let(name) => self
                .let_value(&name.name)
                .is_some_and(|value| self.is_subject(value)),
            _ => false,
        }
    }

    fn attribute(&self, base: &RValue, name: &str) -> R<RValue> {
        let fields = match base {
            RValue::Record(fields) => fields,
            RValue::Entity(uid) => match self.data.entities.get(uid) {
                Some(entity) => &entity.attributes,
                None => return err(format!("{uid:?} is not stored")),
            },
            other => return err(format!("`.{name}` of {}", other.kind())),
        };
        match fields.get(name) {
            Some(value) => Ok(value.clone()),
            None => err(format!("no attribute `{name}`")),
        }
    }

    fn binary(&self, op: BinaryOp, left: RValue, right: RValue) -> R<RValue> {
        use RValue::{Bool, Decimal, Duration, Int, Time};
        let mismatch = |l: &RValue, r: &RValue| {
            err::<RValue>(format!("{} {} {}", l.kind(), op.as_str(), r.kind()))
        };
        match op {
            BinaryOp::Eq | BinaryOp::Ne => {
                if left.kind() != right.kind() {
                    return mismatch(&left, &right);
                }
                Ok(Bool((left == right) == (op == BinaryOp::Eq)))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let order = match (&left, &right) {
                    (Int(a), Int(b)) => a.cmp(b),
                    (Time(a), Time(b)) => a.cmp(b),
                    (Duration(a), Duration(b)) => a.cmp(b),
                    (Decimal(a), Decimal(b)) => a.cmp(b),
                    _ => return mismatch(&left, &right),
                };
                Ok(Bool(match op {
                    BinaryOp::Lt => order.is_lt(),
                    BinaryOp::Le => order.is_le(),
                    BinaryOp::Gt => order.is_gt(),
                    _ => order.is_ge(),
                }))
            }
            BinaryOp::Add => match (&left, &right) {
                (Int(a), Int(b)) => a.checked_add(*b).map(Int).ok_or(RError("overflow".into())),
                (Time(t), Duration(d)) | (Duration(d), Time(t)) => t
                    .checked_add(*d)
                    .map(Time)
                    .map_err(|_| RError("overflow".into())),
                (Duration(a), Duration(b)) => a
                    .checked_add(*b)
                    .map(Duration)
                    .ok_or(RError("overflow".into())),
                _ => mismatch(&left, &right),
            },
            BinaryOp::Sub => match (&left, &right) {
                (Int(a), Int(b)) => a.checked_sub(*b).map(Int).ok_or(RError("overflow".into())),
                (Time(t), Duration(d)) => t
                    .checked_sub(*d)
                    .map(Time)
                    .map_err(|_| RError("overflow".into())),
                (Time(a), Time(b)) => Ok(Duration(a.duration_since(*b))),
                (Duration(a), Duration(b)) => a
                    .checked_sub(*b)
                    .map(Duration)
                    .ok_or(RError("overflow".into())),
                _ => mismatch(&left, &right),
            },
            BinaryOp::Mul => match (&left, &right) {
                (Int(a), Int(b)) => a.checked_mul(*b).map(Int).ok_or(RError("overflow".into())),
                _ => mismatch(&left, &right),
            },
            BinaryOp::In => match (&left, &right) {
                (RValue::Entity(e), RValue::Entity(g)) => Ok(Bool(self.reaches(e, g))),
                (RValue::Entity(e), RValue::Set(members)) => {
                    // Every member must be an entity; then `e` is in the set when it is in
                    // some member.
                    let mut found = false;
                    for member in members {
                        match member {
                            RValue::Entity(g) => found = found || self.reaches(e, g),
                            other => return mismatch(&left, other),
                        }
                    }
                    Ok(Bool(found))
                }
                (RValue::Ip(address), RValue::Ip(range)) => Ok(Bool(range.contains(address))),
                _ => mismatch(&left, &right),
            },
            BinaryOp::Contains => match &left {
                RValue::Set(members) => Ok(Bool(members.contains(&right))),
                _ => mismatch(&left, &right),
            },
            BinaryOp::ContainsAll | BinaryOp::ContainsAny => match (&left, &right) {
                (RValue::Set(set), RValue::Set(other)) => {
                    let found = |wanted: &RValue| set.contains(wanted);
                    Ok(Bool(if op == BinaryOp::ContainsAll {
                        other.iter().all(found)
                    } else {
                        other.iter().any(found)
                    }))
                }
                _ => mismatch(&left, &right),
            },
            BinaryOp::And | BinaryOp::Or => err("and/or reached binary()"),
        }
    }

    fn call(&self, function: &str, args: &[Expr], request: &RRequest, depth: usize) -> R<RValue> {
        let literal = |index: usize| match args.get(index).map(|a| &a.kind) {
            Some(ExprKind::Str(s)) => Ok(s.as_str()),
            _ => err(format!("`{function}` needs a string literal")),
        };
        match function {
            "now" if args.is_empty() => Ok(RValue::Time(request.now)),
            "time" => literal(0)?
                .parse::<Timestamp>()
                .map(RValue::Time)
                .map_err(|e| RError(e.to_string())),
            "ip" => {
                let text = literal(0)?;
                let net = if text.contains('/') {
                    text.parse::<ipnet::IpNet>().ok()
                } else {
                    text.parse::<std::net::IpAddr>()
                        .ok()
                        .map(ipnet::IpNet::from)
                };
                net.map(RValue::Ip).ok_or(RError(format!("bad ip {text}")))
            }
            "decimal" => {
                let text = literal(0)?;
                decimal_reference(text).ok_or(RError(format!("bad decimal {text}")))
            }
            "year" | "month" | "day" | "hour" | "minute" | "weekday" if args.len() == 2 => {
                let zone = literal(1)?;
                let Some(time) = args.first() else {
                    return err("no time");
                };
                let RValue::Time(t) = self.eval(time, request, depth)? else {
                    return err(format!("`{function}` of a non-time"));
                };
                if zone == "UTC" {
                    // Plain arithmetic, to cross-check the time-zone library.
                    let seconds = t.as_second();
                    let of_day = seconds.rem_euclid(86_400);
                    let days = seconds.div_euclid(86_400);
                    match function {
                        "hour" => return Ok(RValue::Int(of_day / 3600)),
                        "minute" => return Ok(RValue::Int(of_day % 3600 / 60)),
                        // 1970-01-01 was a Thursday (4).
                        "weekday" => return Ok(RValue::Int((days + 3).rem_euclid(7) + 1)),
                        _ => {}
                    }
                }
                let tz = jiff::tz::TimeZone::get(zone).map_err(|e| RError(e.to_string()))?;
                let dt = tz.to_datetime(t);
                Ok(RValue::Int(match function {
                    "year" => i64::from(dt.year()),
                    "month" => i64::from(dt.month()),
                    "day" => i64::from(dt.day()),
                    "hour" => i64::from(dt.hour()),
                    "minute" => i64::from(dt.minute()),
                    _ => i64::from(dt.weekday().to_monday_one_offset()),
                }))
            }
            "is_ipv4" | "is_ipv6" | "is_loopback" | "is_multicast" if args.len() == 1 => {
                let Some(arg) = args.first() else {
                    return err("no address");
                };
                let RValue::Ip(net) = self.eval(arg, request, depth)? else {
                    return err(format!("`{function}` of a non-address"));
                };
                // Containment in the special ranges, where the evaluator reads the address and
                // the prefix length.
                let within = |range: &str| {
                    range
                        .parse::<ipnet::IpNet>()
                        .is_ok_and(|special| special.contains(&net))
                };
                Ok(RValue::Bool(match function {
                    "is_ipv4" => net.addr().is_ipv4(),
                    "is_ipv6" => net.addr().is_ipv6(),
                    "is_loopback" => within("127.0.0.0/8") || within("::1/128"),
                    _ => within("224.0.0.0/4") || within("ff00::/8"),
                }))
            }
            "in_range" if args.len() == 3 => {
                let mut values = Vec::new();
                for arg in args {
                    values.push(self.eval(arg, request, depth)?);
                }
                match values.as_slice() {
                    [RValue::Int(v), RValue::Int(lo), RValue::Int(hi)] => {
                        Ok(RValue::Bool(lo <= v && v <= hi))
                    }
                    _ => err("in_range needs three Ints"),
                }
            }
            other => err(format!("unknown function `{other}`")),
        }
    }
}

/// `text like pattern`: `*` matches any run of characters, `\*` a star, `\\` a backslash.
pub fn glob(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Star,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.push(P::Char(chars.next().unwrap_or('\\'))),
            '*' => parts.push(P::Star),
            c => parts.push(P::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    fn go(text: &[char], parts: &[P]) -> bool {
        match parts.split_first() {
            None => text.is_empty(),
            Some((P::Star, rest)) => (0..=text.len()).any(|skip| go(&text[skip..], rest)),
            Some((P::Char(c), rest)) => text.first() == Some(c) && go(&text[1..], rest),
        }
    }
    go(&text, &parts)
}

/// Cedar's decimal, read independently of the engine's reader (in 128 bits, so that the range
/// check is one comparison): `-?digits.digits`, at most four after the point.
pub fn decimal_reference(text: &str) -> Option<RValue> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1_i128, rest),
        None => (1, text),
    };
    let mut parts = rest.split('.');
    let (whole, fraction) = (parts.next()?, parts.next()?);
    let is_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if parts.next().is_some() || !is_digits(whole) || !is_digits(fraction) || fraction.len() > 4 {
        return None;
    }
    // More digits than any in-range value has: out of range without parsing.
    if whole.trim_start_matches('0').len() > 16 {
        return None;
    }
    let padded = format!("{fraction:0<4}");
    let value = sign * (whole.parse::<i128>().ok()? * 10_000 + padded.parse::<i128>().ok()?);
    i64::try_from(value).ok().map(RValue::Decimal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob("a.jpg", "*.jpg"));
        assert!(!glob("a.png", "*.jpg"));
        assert!(glob("abc", "a*b*c"));
        assert!(!glob("acb", "a*b*c"));
        assert!(glob("lit*", "lit\\*"));
        assert!(!glob("lit", "lit\\*"));
        assert!(glob("", ""));
        assert!(glob("", "*"));
        assert!(!glob("ab", "ab*b"));
        assert!(glob("abb", "ab*b"));
    }
}
