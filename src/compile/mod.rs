//! Checked policies → decision graph.
//!
//! Reads the syntax tree of a directory that passed the checker, with its [`Schema`] and the
//! entity store, and writes a [`Program`]: expressions hash-consed into a DAG with constants
//! folded, `let`s inlined as shared nodes, role inheritance flattened, and every rule indexed by
//! (resource type, action) and by the constant its first test compares against.

use std::collections::BTreeSet;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};

use crate::ast::{self, BinaryOp, ConditionKind, ExprKind, UnaryOp};
use crate::check::schema::Schema;
use crate::data::store::Store;
use crate::data::value::{EntityRef, Kind, Value};
use crate::program::{
    Bucket, CalendarField, Compare, Effect, Index, IpTest, MAX_FLAT_ROLES, Node, NodeId, Party,
    Program, RoleId, RoleInfo, Rule, RuleId, ValueGroup,
};
use crate::program::{ops, stack};
use crate::source::{Diagnostic, Span};
use crate::syntax::ParsedFile;
use crate::syntax::decimal::parse_decimal;

/// Something the checker lets through but the compiler cannot build. A directory that checks
/// clean never produces one; they exist so that the compiler never has to panic.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CompileError {
    #[error("{message}")]
    #[diagnostic(code(warden::compile))]
    Invalid {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: String,
    },
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

/// Compiles a checked directory. `store` is the decoded data; the compiler adds to it the
/// entities that policies name.
pub fn compile(
    files: &[ParsedFile],
    schema: &Schema,
    store: Store,
    version: Arc<str>,
) -> Result<Program, Vec<Diagnostic>> {
    let mut compiler = Compiler {
        schema,
        store,
        nodes: Vec::new(),
        interned: hashbrown::HashTable::new(),
        lets: HashMap::default(),
        let_nodes: HashMap::default(),
        lowering_lets: BTreeSet::new(),
        zones: Vec::new(),
        errors: Vec::new(),
        files,
        action_sets: Vec::new(),
        action_set_ids: HashMap::default(),
    };
    for (file_index, file) in files.iter().enumerate() {
        for item in &file.ast.items {
            if let ast::Item::Let(decl) = item {
                compiler
                    .lets
                    .insert(decl.name.name.clone(), (file_index, decl));
            }
        }
    }

    let (roles, role_ids) = role_table(schema);
    let mut rules = Vec::new();
    let mut placements = Vec::new();
    let mut action_heads = HeadSets::default();
    let mut type_heads = HeadSets::default();
    let mut capabilities = Vec::new();
    let mut limits = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        for item in &file.ast.items {
            match item {
                ast::Item::Rule(rule) => {
                    let effect = match rule.effect {
                        ast::Effect::Allow => Effect::Allow,
                        ast::Effect::Deny => Effect::Deny,
                    };
                    let compiled = compiler.rule(
                        file_index,
                        &rule.annotations,
                        effect,
                        rule.condition.as_ref(),
                        rule.span,
                        None,
                    );
                    placements.push(Placement {
                        actions: action_heads.actions(&compiler, &rule.actions),
                        types: type_heads.types(&rule.resource_types),
                    });
                    rules.push(compiled);
                }
                ast::Item::Role(role) => {
                    let role_id = role_ids.get(role.name.name.as_str()).copied();
                    for grant in &role.grants {
                        let compiled = compiler.rule(
                            file_index,
                            &grant.annotations,
                            Effect::Allow,
                            grant.condition.as_ref(),
                            grant.span,
                            role_id,
                        );
                        placements.push(Placement {
                            actions: action_heads.actions(&compiler, &grant.actions),
                            types: type_heads.types(&grant.resource_types),
                        });
                        rules.push(compiled);
                    }
                }
                ast::Item::Capability(decl) => {
                    let mut compiled = compiler.rule(
                        file_index,
                        &decl.annotations,
                        Effect::Allow,
                        None,
                        decl.span,
                        None,
                    );
                    if !compiled.named {
                        compiled.id = Arc::from(format!("capability:{}", decl.name.name));
                    }
                    // Placed in no bucket: only a presented token makes it a candidate.
                    placements.push(Placement {
                        actions: Some(action_heads.id(&[], BTreeSet::new)),
                        types: Some(type_heads.id(&[], BTreeSet::new)),
                    });
                    let rule = RuleId(u32::try_from(rules.len()).unwrap_or(u32::MAX));
                    rules.push(compiled);
                    let mint = decl.mint().map(|expr| compiler.lower(expr, file_index));
                    let mut actions: Vec<Arc<str>> = decl
                        .actions()
                        .iter()
                        .flat_map(|name| schema.expand_action(&name.text))
                        .map(|name| Arc::from(name.as_str()))
                        .collect();
                    actions.sort();
                    actions.dedup();
                    let mut resource_types: Vec<Arc<str>> = decl
                        .resource_types
                        .iter()
                        .map(|t| Arc::from(t.name.as_str()))
                        .collect();
                    resource_types.sort();
                    resource_types.dedup();
                    capabilities.push(crate::program::Capability {
                        name: Arc::from(decl.name.name.as_str()),
                        rule,
                        actions: actions.into_boxed_slice(),
                        resource_types: resource_types.into_boxed_slice(),
                        lifetime_ms: decl.lifetime().map_or(0, |(millis, _)| millis),
                        mint,
                        delegable: decl.delegable(),
                    });
                }
                ast::Item::Limit(decl) => {
                    if let Some(limit) = compiler.limit(decl, file_index) {
                        limits.push(limit);
                    }
                }
                _ => {}
            }
        }
    }

    if !compiler.errors.is_empty() {
        return Err(compiler.errors);
    }
    let index = build_index(
        schema,
        &rules,
        &placements,
        (&action_heads.sets, &type_heads.sets),
        &compiler.nodes,
        &compiler.action_sets,
    );
    let action_sets = action_set_bits(&index, &compiler.action_sets);
    let (bindings, stored_roles) = role_holders(&compiler.store, &role_ids);
    let request_names =
        crate::program::requests::RequestNames::new(schema, &index, &compiler.store);
    Ok(Program {
        version,
        schema: schema.clone(),
        store: compiler.store,
        nodes: compiler.nodes.into_boxed_slice(),
        rules: rules.into_boxed_slice(),
        index,
        roles,
        role_ids,
        bindings,
        stored_roles,
        zones: compiler.zones.into_boxed_slice(),
        sources: files.iter().map(|f| f.source.clone()).collect(),
        // The checker reported every route error already; only valid routes are in the table.
        routes: crate::check::routes::table(files, schema, &mut |_, _| {}),
        capabilities: capabilities.into_boxed_slice(),
        serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        request_names,
        limits: limits.into_boxed_slice(),
        action_sets,
    })
}

/// For each action slot, the `action in` sets holding its action, as bits.
fn action_set_bits(index: &Index, sets: &[BTreeSet<String>]) -> Box<[Box<[u64]>]> {
    let words = sets.len().div_ceil(64);
    let mut bits: Vec<Box<[u64]>> = (0..=index.actions.len())
        .map(|_| vec![0u64; words].into_boxed_slice())
        .collect();
    for (set, actions) in sets.iter().enumerate() {
        for action in actions {
            let Some(&slot) = index.actions.get(action.as_str()) else {
                continue;
            };
            if let Some(word) = bits
                .get_mut(slot as usize)
                .and_then(|b| b.get_mut(set / 64))
            {
                *word |= 1u64 << (set % 64);
            }
        }
    }
    bits.into_boxed_slice()
}

/// Which buckets a rule goes into: `None` means every action (`*`) or every type (no `on`);
/// otherwise the index of its set of names in [`HeadSets::sets`].
struct Placement {
    actions: Option<u32>,
    types: Option<u32>,
}

/// The distinct sets of names that rule heads give (the actions after `allow`, the types after
/// `on`), each held once: thousands of rules share a handful of lists, and a set per rule
/// cost an allocation per name and a tree, built, then read and dropped again by the index.
#[derive(Default)]
struct HeadSets<'a> {
    sets: Vec<BTreeSet<String>>,
    /// By the names as written: the same list always gives the same set.
    ids: HashMap<Vec<&'a str>, u32>,
    written: Vec<&'a str>,
}

impl<'a> HeadSets<'a> {
    fn id(&mut self, written: &[&'a str], set: impl FnOnce() -> BTreeSet<String>) -> u32 {
        if let Some(id) = self.ids.get(written) {
            return *id;
        }
        let id = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
        self.sets.push(set());
        self.ids.insert(written.to_vec(), id);
        id
    }

    fn of(
        &mut self,
        names: impl Iterator<Item = &'a str>,
        set: impl FnOnce(&[&'a str]) -> BTreeSet<String>,
    ) -> u32 {
        let mut written = std::mem::take(&mut self.written);
        written.clear();
        written.extend(names);
        let id = self.id(&written, || set(&written));
        self.written = written;
        id
    }

    /// A rule's actions, each group expanded to its actions.
    fn actions(&mut self, compiler: &Compiler<'_>, actions: &'a ast::Actions) -> Option<u32> {
        match actions {
            ast::Actions::Any(_) => None,
            ast::Actions::List(list) => Some(self.of(
                list.iter().map(|name| name.text.as_str()),
                |written| {
                    written
                        .iter()
                        .flat_map(|name| compiler.schema.expand_action(name))
                        .collect()
                },
            )),
        }
    }

    fn types(&mut self, idents: &'a [ast::Ident]) -> Option<u32> {
        if idents.is_empty() {
            return None;
        }
        Some(self.of(idents.iter().map(|i| i.name.as_str()), |written| {
            written.iter().map(|name| (*name).to_string()).collect()
        }))
    }
}

fn names(idents: &[ast::Ident]) -> Option<BTreeSet<String>> {
    if idents.is_empty() {
        None
    } else {
        Some(idents.iter().map(|i| i.name.clone()).collect())
    }
}

struct Compiler<'a> {
    schema: &'a Schema,
    store: Store,
    nodes: Vec<Node>,
    /// The ids of `nodes`, hashed by the node they name: each node is held once, in `nodes`.
    interned: hashbrown::HashTable<NodeId>,
    lets: HashMap<String, (usize, &'a ast::LetDecl)>,
    let_nodes: HashMap<String, NodeId>,
    lowering_lets: BTreeSet<String>,
    zones: Vec<(Arc<str>, jiff::tz::TimeZone)>,
    errors: Vec<Diagnostic>,
    files: &'a [ParsedFile],
    /// The action sets `action in …` tests name, each once ([`Node::ActionIn`]).
    action_sets: Vec<BTreeSet<String>>,
    action_set_ids: HashMap<BTreeSet<String>, u32>,
}

impl Compiler<'_> {
    fn error(&mut self, file: usize, span: Span, message: String, help: &str) -> NodeId {
        if let Some(parsed) = self.files.get(file) {
            self.errors.push(Diagnostic::in_file(
                CompileError::Invalid {
                    message,
                    span,
                    help: help.to_string(),
                },
                &parsed.source,
            ));
        }
        self.constant(Value::Bool(false))
    }

    /// `action in write` is the set of actions beneath `write`; `action == read` the set of
    /// `read` alone. Either is a lookup of the request's action slot at run time.
    fn action_test(&mut self, test: &ast::ActionTest) -> NodeId {
        let set: BTreeSet<String> = match test.op {
            ast::ActionOp::In => test
                .names
                .iter()
                .flat_map(|name| self.schema.expand_action(&name.text))
                .collect(),
            ast::ActionOp::Eq | ast::ActionOp::Ne => {
                test.names.iter().map(|name| name.text.clone()).collect()
            }
        };
        let next = u32::try_from(self.action_sets.len()).unwrap_or(u32::MAX);
        let id = *self.action_set_ids.entry(set.clone()).or_insert(next);
        if id == next {
            self.action_sets.push(set);
        }
        let test_node = self.intern(Node::ActionIn(id));
        match test.op {
            ast::ActionOp::Ne => self.fold(Node::Not(test_node)),
            ast::ActionOp::In | ast::ActionOp::Eq => test_node,
        }
    }

    fn actions(&self, actions: &ast::Actions) -> Option<BTreeSet<String>> {
        match actions {
            ast::Actions::Any(_) => None,
            ast::Actions::List(list) => Some(
                list.iter()
                    .flat_map(|name| self.schema.expand_action(&name.text))
                    .collect(),
            ),
        }
    }

    fn rule(
        &mut self,
        file: usize,
        annotations: &[ast::Annotation],
        effect: Effect,
        condition: Option<&ast::Condition>,
        span: Span,
        role: Option<RoleId>,
    ) -> Rule {
        let explicit = annotations
            .iter()
            .find(|a| a.name.name == "id")
            .and_then(|a| a.value.as_ref())
            .map(|v| v.value.clone());
        let (id, named) = match explicit {
            Some(id) => (id, true),
            None => {
                let location = self.files.get(file).map_or_else(String::new, |f| {
                    let (line, _) = f.source.line_col(span.start as usize);
                    format!("{}:{line}", f.source.name())
                });
                (location, false)
            }
        };
        let (condition_node, conjuncts) = match condition {
            None => (self.constant(Value::Bool(true)), Vec::new()),
            Some(condition) => match condition.kind {
                ConditionKind::If => {
                    let mut conjuncts = Vec::new();
                    let whole = self.lower_conjunction(&condition.expr, file, &mut conjuncts);
                    (whole, conjuncts)
                }
                ConditionKind::Unless => {
                    let whole = self.lower(&condition.expr, file);
                    let negated = self.not(whole);
                    (negated, vec![(negated, condition.expr.span)])
                }
            },
        };
        Rule {
            id: Arc::from(id),
            named,
            effect,
            condition: condition_node,
            conjuncts: conjuncts.into_boxed_slice(),
            unless: condition.is_some_and(|c| matches!(c.kind, ConditionKind::Unless)),
            role,
            file,
            span,
        }
    }

    /// Lowers an `if` condition as [`Compiler::lower`] does (the same nodes, made in the same
    /// order) and collects its conjuncts (the operands of its top-level `and`s), lowering each
    /// subexpression once: lowering the whole and then each conjunct again took a third of
    /// compiling a large policy.
    fn lower_conjunction(
        &mut self,
        expr: &ast::Expr,
        file: usize,
        conjuncts: &mut Vec<(NodeId, Span)>,
    ) -> NodeId {
        match &expr.kind {
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                let l = self.lower_conjunction(lhs, file, conjuncts);
                let r = self.lower(rhs, file);
                conjuncts.push((r, rhs.span));
                self.logical(BinaryOp::And, l, r)
            }
            _ => {
                let node = self.lower(expr, file);
                conjuncts.push((node, expr.span));
                node
            }
        }
    }

    fn constant(&mut self, value: Value) -> NodeId {
        self.intern(Node::Const(value))
    }

    fn value_of(&self, id: NodeId) -> Option<&Value> {
        match self.nodes.get(id.index()) {
            Some(Node::Const(value)) => Some(value),
            _ => None,
        }
    }

    /// Adds a node, or returns the existing identical one.
    fn intern(&mut self, node: Node) -> NodeId {
        // Node keys are the policy author's expressions, not request data: Fx needs no key.
        let hash = FxBuildHasher.hash_one(&node);
        let nodes = &self.nodes;
        if let Some(existing) = self
            .interned
            .find(hash, |id| nodes.get(id.index()) == Some(&node))
        {
            return *existing;
        }
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(node);
        let nodes = &self.nodes;
        self.interned.insert_unique(hash, id, |id| {
            nodes
                .get(id.index())
                .map_or(0, |node| FxBuildHasher.hash_one(node))
        });
        id
    }

    /// Interns `node`, folding it to a constant when its operands are constants and the
    /// operation succeeds (a failing operation stays, so it fails at run time, explained).
    fn fold(&mut self, node: Node) -> NodeId {
        let folded = match &node {
            Node::Not(a) => self
                .value_of(*a)
                .and_then(|v| ops::not(v).ok())
                .map(Value::Bool),
            Node::Neg(a) => self.value_of(*a).and_then(|v| ops::neg(v).ok()),
            Node::Compare(op, a, b) => self
                .both(*a, *b)
                .and_then(|(x, y)| ops::compare(*op, x, y).ok())
                .map(Value::Bool),
            Node::Add(a, b) => self.both(*a, *b).and_then(|(x, y)| ops::add(x, y).ok()),
            Node::Sub(a, b) => self.both(*a, *b).and_then(|(x, y)| ops::sub(x, y).ok()),
            Node::Mul(a, b) => self.both(*a, *b).and_then(|(x, y)| ops::mul(x, y).ok()),
            Node::In(a, b) => self
                .both(*a, *b)
                .and_then(|(x, y)| ops::is_in(&self.store, x, y).ok())
                .map(Value::Bool),
            Node::Contains(a, b) => self
                .both(*a, *b)
                .and_then(|(x, y)| ops::contains(x, y).ok())
                .map(Value::Bool),
            Node::ContainsAll(a, b) => self
                .both(*a, *b)
                .and_then(|(x, y)| ops::contains_all(x, y).ok())
                .map(Value::Bool),
            Node::ContainsAny(a, b) => self
                .both(*a, *b)
                .and_then(|(x, y)| ops::contains_any(x, y).ok())
                .map(Value::Bool),
            Node::IsEmpty(a) => self
                .value_of(*a)
                .and_then(|v| ops::is_empty(v).ok())
                .map(Value::Bool),
            Node::Like(a, pattern) => self
                .value_of(*a)
                .and_then(|v| ops::like(v, pattern).ok())
                .map(Value::Bool),
            Node::Is(a, ty) => self
                .value_of(*a)
                .and_then(|v| ops::is_type(&self.store, v, ty).ok())
                .map(Value::Bool),
            Node::Has(a, name) => self
                .value_of(*a)
                .and_then(|v| ops::has(&self.store, v, name).ok())
                .map(Value::Bool),
            Node::Attr(a, name) => self
                .value_of(*a)
                .and_then(|v| ops::attribute(&self.store, v, name).ok()),
            Node::Ip(test, a) => self
                .value_of(*a)
                .and_then(|v| ops::ip_test(*test, v).ok())
                .map(Value::Bool),
            Node::InRange(a, b, c) => {
                match (self.value_of(*a), self.value_of(*b), self.value_of(*c)) {
                    (Some(x), Some(y), Some(z)) => ops::in_range(x, y, z).ok().map(Value::Bool),
                    _ => None,
                }
            }
            Node::Calendar(field, a, zone) => {
                match (self.value_of(*a), self.zones.get(*zone as usize)) {
                    (Some(v), Some((_, tz))) => ops::calendar(*field, v, tz).ok(),
                    _ => None,
                }
            }
            Node::SetOf(members) => {
                let values: Option<Vec<Value>> =
                    members.iter().map(|m| self.value_of(*m).cloned()).collect();
                values.map(Value::set)
            }
            Node::RecordOf(fields) => {
                let values: Option<Vec<(Arc<str>, Value)>> = fields
                    .iter()
                    .map(|(k, m)| self.value_of(*m).cloned().map(|v| (k.clone(), v)))
                    .collect();
                values.map(Value::record)
            }
            _ => None,
        };
        match folded {
            Some(value) => self.constant(value),
            None => self.intern(node),
        }
    }

    fn both(&self, a: NodeId, b: NodeId) -> Option<(&Value, &Value)> {
        Some((self.value_of(a)?, self.value_of(b)?))
    }

    fn not(&mut self, operand: NodeId) -> NodeId {
        self.fold(Node::Not(operand))
    }

    /// `a and b`, `a or b`, keeping left-to-right short-circuit: only a constant *left* side
    /// decides without looking at the right.
    fn logical(&mut self, op: BinaryOp, lhs: NodeId, rhs: NodeId) -> NodeId {
        let is_and = op == BinaryOp::And;
        let node = if is_and {
            Node::And(lhs, rhs)
        } else {
            Node::Or(lhs, rhs)
        };
        match (self.value_of(lhs), self.value_of(rhs)) {
            // `false and x` is false and `true or x` is true without looking at `x`.
            (Some(Value::Bool(b)), _) if *b != is_and => self.constant(Value::Bool(*b)),
            // `true and x` is `x` only when `x` is known to be a Bool: anything else must
            // still fail as `and` would.
            (Some(Value::Bool(_)), Some(Value::Bool(_))) => rhs,
            _ => self.intern(node),
        }
    }

    /// Lowers one expression. The checker bounds how deep expressions nest, `let`s expanded
    /// (`check::MAX_DEPTH`), and the recursion moves to a fresh stack segment when the thread's
    /// runs low, so the depth of a valid policy never depends on the caller's stack.
    fn lower(&mut self, expr: &ast::Expr, file: usize) -> NodeId {
        stack::grow(|| self.lower_inner(expr, file))
    }

    fn lower_inner(&mut self, expr: &ast::Expr, file: usize) -> NodeId {
        match &expr.kind {
            ExprKind::Bool(b) => self.constant(Value::Bool(*b)),
            ExprKind::Int(i) => self.constant(Value::Int(*i)),
            ExprKind::Str(s) => {
                let shared = self.store.intern_str(s);
                self.constant(Value::Str(shared))
            }
            ExprKind::Duration(ms) => {
                self.constant(Value::Duration(jiff::SignedDuration::from_millis(*ms)))
            }
            ExprKind::Entity { ty, id } => {
                let entity = self.store.intern_entity(&ty.name, id);
                self.constant(Value::Entity(EntityRef::Known(entity)))
            }
            ExprKind::Set(members) => {
                let members: Vec<NodeId> = members.iter().map(|m| self.lower(m, file)).collect();
                self.fold(Node::SetOf(members.into_boxed_slice()))
            }
            ExprKind::Record(entries) => {
                let mut fields: Vec<(Arc<str>, NodeId)> = Vec::with_capacity(entries.len());
                for (name, value) in entries {
                    let key = self.store.intern_str(&name.text);
                    let node = self.lower(value, file);
                    fields.retain(|(k, _)| *k != key);
                    fields.push((key, node));
                }
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                self.fold(Node::RecordOf(fields.into_boxed_slice()))
            }
            ExprKind::Var(var) => self.intern(match var {
                ast::Var::Subject => Node::Subject,
                ast::Var::Action => Node::Action,
                ast::Var::Resource => Node::Resource,
                ast::Var::Context => Node::Context,
            }),
            ExprKind::Let(name) => self.lower_let(name, file),
            ExprKind::ActionTest(test) => self.action_test(test),
            ExprKind::Attr { base, name } => {
                let base = self.lower(base, file);
                let name = self.store.intern_str(&name.text);
                self.fold(Node::Attr(base, name))
            }
            ExprKind::Properties(base) => {
                let party = match &base.kind {
                    ExprKind::Var(ast::Var::Subject) => Party::Subject,
                    ExprKind::Var(ast::Var::Action) => Party::Action,
                    ExprKind::Var(ast::Var::Resource) => Party::Resource,
                    _ => {
                        return self.error(
                            file,
                            expr.span,
                            "`.properties` is only on `subject`, `action` and `resource`"
                                .to_string(),
                            "properties are what the caller sends about the three request entities",
                        );
                    }
                };
                self.intern(Node::Properties(party))
            }
            ExprKind::Call { function, args } => self.call(function, args, expr.span, file),
            ExprKind::Unary { op, operand } => {
                let operand = self.lower(operand, file);
                match op {
                    UnaryOp::Not => self.not(operand),
                    UnaryOp::Neg => self.fold(Node::Neg(operand)),
                    UnaryOp::IsEmpty => self.fold(Node::IsEmpty(operand)),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.lower(lhs, file);
                let r = self.lower(rhs, file);
                match op {
                    BinaryOp::And | BinaryOp::Or => self.logical(*op, l, r),
                    BinaryOp::Eq => self.fold(Node::Compare(Compare::Eq, l, r)),
                    BinaryOp::Ne => self.fold(Node::Compare(Compare::Ne, l, r)),
                    BinaryOp::Lt => self.fold(Node::Compare(Compare::Lt, l, r)),
                    BinaryOp::Le => self.fold(Node::Compare(Compare::Le, l, r)),
                    BinaryOp::Gt => self.fold(Node::Compare(Compare::Gt, l, r)),
                    BinaryOp::Ge => self.fold(Node::Compare(Compare::Ge, l, r)),
                    BinaryOp::In => self.fold(Node::In(l, r)),
                    BinaryOp::Contains => self.fold(Node::Contains(l, r)),
                    BinaryOp::ContainsAll => self.fold(Node::ContainsAll(l, r)),
                    BinaryOp::ContainsAny => self.fold(Node::ContainsAny(l, r)),
                    BinaryOp::Add => self.fold(Node::Add(l, r)),
                    BinaryOp::Sub => self.fold(Node::Sub(l, r)),
                    BinaryOp::Mul => self.fold(Node::Mul(l, r)),
                }
            }
            ExprKind::Has { base, name } => {
                let base = self.lower(base, file);
                let name = self.store.intern_str(&name.text);
                self.fold(Node::Has(base, name))
            }
            ExprKind::Like { base, pattern } => {
                let base = self.lower(base, file);
                let pattern = Arc::new(ops::compile_pattern(&pattern.value));
                self.fold(Node::Like(base, pattern))
            }
            ExprKind::Is { base, ty } => {
                let base = self.lower(base, file);
                let ty = self.store.intern_str(&ty.name);
                self.fold(Node::Is(base, ty))
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.lower(cond, file);
                let then = self.lower(then, file);
                let otherwise = self.lower(otherwise, file);
                // A constant condition picks its branch; the other is never evaluated.
                match self.value_of(cond) {
                    Some(Value::Bool(true)) => then,
                    Some(Value::Bool(false)) => otherwise,
                    _ => self.intern(Node::If(cond, then, otherwise)),
                }
            }
        }
    }

    fn lower_let(&mut self, name: &ast::Ident, file: usize) -> NodeId {
        if let Some(node) = self.let_nodes.get(&name.name) {
            return *node;
        }
        let Some((let_file, decl)) = self.lets.get(&name.name).copied() else {
            return self.error(
                file,
                name.span,
                format!("unknown name `{}`", name.name),
                "declare it with `let`",
            );
        };
        if !self.lowering_lets.insert(name.name.clone()) {
            return self.error(
                file,
                name.span,
                format!("`let {}` refers to itself", name.name),
                "break the cycle of `let`s",
            );
        }
        let node = self.lower(&decl.value, let_file);
        self.lowering_lets.remove(&name.name);
        self.let_nodes.insert(name.name.clone(), node);
        node
    }

    fn call(
        &mut self,
        function: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        file: usize,
    ) -> NodeId {
        let literal = |index: usize| match args.get(index).map(|a| &a.kind) {
            Some(ExprKind::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        let arity = |this: &mut Self, expected: usize| -> bool {
            if args.len() == expected {
                true
            } else {
                this.error(
                    file,
                    span,
                    format!(
                        "`{}` takes {expected} argument{}, not {}",
                        function.name,
                        if expected == 1 { "" } else { "s" },
                        args.len()
                    ),
                    "see the list of functions in the language reference",
                );
                false
            }
        };
        match function.name.as_str() {
            "now" => {
                if !arity(self, 0) {
                    return self.constant(Value::Bool(false));
                }
                self.intern(Node::Now)
            }
            "time" | "duration" | "ip" | "decimal" => {
                if !arity(self, 1) {
                    return self.constant(Value::Bool(false));
                }
                let Some(text) = literal(0) else {
                    return self.error(
                        file,
                        span,
                        format!("`{}` takes a string literal", function.name),
                        "write the value in quotes, e.g. `time(\"2026-01-01T00:00:00Z\")`",
                    );
                };
                let value = match function.name.as_str() {
                    "time" => ops::time_literal(text).map(Value::Time),
                    "duration" => ops::duration_literal(text).map(Value::Duration),
                    "decimal" => parse_decimal(text).ok().map(Value::Decimal),
                    _ => ops::ip_literal(text).map(Value::Ip),
                };
                match value {
                    Some(value) => self.constant(value),
                    None => self.error(
                        file,
                        span,
                        format!("`{text}` is not a valid argument for `{}`", function.name),
                        "see the language reference for the accepted forms",
                    ),
                }
            }
            "year" | "month" | "day" | "hour" | "minute" | "weekday" => {
                if !arity(self, 2) {
                    return self.constant(Value::Bool(false));
                }
                let field = match function.name.as_str() {
                    "year" => CalendarField::Year,
                    "month" => CalendarField::Month,
                    "day" => CalendarField::Day,
                    "hour" => CalendarField::Hour,
                    "minute" => CalendarField::Minute,
                    _ => CalendarField::Weekday,
                };
                let Some(zone_name) = literal(1) else {
                    return self.error(
                        file,
                        span,
                        "the time zone must be a string literal".to_string(),
                        "name an IANA zone, e.g. `\"Europe/Paris\"`",
                    );
                };
                let zone = match self.zone(zone_name) {
                    Some(zone) => zone,
                    None => {
                        return self.error(
                            file,
                            span,
                            format!("unknown time zone `{zone_name}`"),
                            "name an IANA zone, e.g. `\"Europe/Paris\"` or `\"UTC\"`",
                        );
                    }
                };
                let time = match args.first() {
                    Some(arg) => self.lower(arg, file),
                    None => return self.constant(Value::Bool(false)),
                };
                self.fold(Node::Calendar(field, time, zone))
            }
            "is_ipv4" | "is_ipv6" | "is_loopback" | "is_multicast" => {
                if !arity(self, 1) {
                    return self.constant(Value::Bool(false));
                }
                let test = match function.name.as_str() {
                    "is_ipv4" => IpTest::V4,
                    "is_ipv6" => IpTest::V6,
                    "is_loopback" => IpTest::Loopback,
                    _ => IpTest::Multicast,
                };
                match args.first() {
                    Some(arg) => {
                        let address = self.lower(arg, file);
                        self.fold(Node::Ip(test, address))
                    }
                    None => self.constant(Value::Bool(false)),
                }
            }
            "in_range" => {
                if !arity(self, 3) {
                    return self.constant(Value::Bool(false));
                }
                let lowered: Vec<NodeId> = args.iter().map(|a| self.lower(a, file)).collect();
                match lowered.as_slice() {
                    [a, b, c] => self.fold(Node::InRange(*a, *b, *c)),
                    _ => self.constant(Value::Bool(false)),
                }
            }
            other => self.error(
                file,
                function.span,
                format!("unknown function `{other}`"),
                "see the list of functions in the language reference",
            ),
        }
    }

    /// A limit's placement, period, key and condition (the checker reported a bad period).
    fn limit(&mut self, decl: &ast::LimitDecl, file: usize) -> Option<crate::program::Limit> {
        use crate::check::limits::Period;
        use crate::program::LimitPeriod;
        let count = u64::try_from(decl.count).unwrap_or(1);
        let period = match crate::check::limits::period(&decl.period).ok()? {
            Period::Rolling(millis) => LimitPeriod::Rolling {
                millis,
                // In whole microseconds, as the Redis store counts: both stores then let
                // requests through at the same instants.
                interval: i128::from(millis) * 1_000 / i128::from(count.max(1)) * 1_000,
            },
            Period::Calendar(unit, zone) => LimitPeriod::Calendar(unit, self.zone(&zone)?),
        };
        let sorted = |set: Option<BTreeSet<String>>| {
            set.map(|set| set.iter().map(|n| Arc::from(n.as_str())).collect())
        };
        let condition = decl.condition.as_ref().map(|condition| {
            let whole = self.lower(&condition.expr, file);
            match condition.kind {
                ConditionKind::If => whole,
                ConditionKind::Unless => self.not(whole),
            }
        });
        Some(crate::program::Limit {
            name: Arc::from(decl.name.name.as_str()),
            count,
            period,
            actions: sorted(self.actions(&decl.actions)),
            resource_types: sorted(names(&decl.resource_types)),
            key: self.lower(&decl.key, file),
            condition,
        })
    }

    fn zone(&mut self, name: &str) -> Option<u32> {
        if let Some(index) = self.zones.iter().position(|(n, _)| n.as_ref() == name) {
            return u32::try_from(index).ok();
        }
        let zone = jiff::tz::TimeZone::get(name).ok()?;
        self.zones.push((Arc::from(name), zone));
        u32::try_from(self.zones.len() - 1).ok()
    }
}

fn role_table(schema: &Schema) -> (Box<[RoleInfo]>, HashMap<Arc<str>, RoleId>) {
    let ids: HashMap<Arc<str>, RoleId> = schema
        .roles
        .keys()
        .enumerate()
        .map(|(i, name)| {
            (
                Arc::from(name.as_str()),
                RoleId(u32::try_from(i).unwrap_or(u32::MAX)),
            )
        })
        .collect();
    let parents: Vec<Box<[RoleId]>> = schema
        .roles
        .values()
        .map(|role| {
            role.inherits
                .iter()
                .filter_map(|name| ids.get(name.as_str()).copied())
                .collect()
        })
        .collect();
    let flat = flat_closures(&parents);
    let roles = schema
        .roles
        .keys()
        .zip(parents)
        .zip(flat)
        .map(|((name, parents), grants_of)| RoleInfo {
            name: Arc::from(name.as_str()),
            parents,
            grants_of,
        })
        .collect();
    (roles, ids)
}

/// Each role's inheritance flattened (itself included), parents before children so each
/// closure is built from its parents' ones; `None` past [`MAX_FLAT_ROLES`] roles, and for
/// every role that inherits from such a role (or lies on a cycle, an error the checker
/// reports). Bounded so, the work and memory grow linearly with the number of roles.
fn flat_closures(parents: &[Box<[RoleId]>]) -> Vec<Option<Box<[RoleId]>>> {
    let count = parents.len();
    let mut waiting: Vec<usize> = parents.iter().map(|p| p.len()).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (child, list) in parents.iter().enumerate() {
        for parent in list.iter() {
            if let Some(list) = children.get_mut(parent.0 as usize) {
                list.push(child);
            }
        }
    }
    let mut ready: Vec<usize> = (0..count).filter(|&i| waiting.get(i) == Some(&0)).collect();
    let mut flat: Vec<Option<Box<[RoleId]>>> = vec![None; count];
    while let Some(index) = ready.pop() {
        let mut all = vec![RoleId(u32::try_from(index).unwrap_or(u32::MAX))];
        let mut bounded = true;
        for parent in parents.get(index).into_iter().flat_map(|p| p.iter()) {
            match flat.get(parent.0 as usize) {
                Some(Some(theirs)) if bounded => all.extend_from_slice(theirs),
                _ => bounded = false,
            }
        }
        all.sort_unstable();
        all.dedup();
        if bounded
            && all.len() <= MAX_FLAT_ROLES
            && let Some(slot) = flat.get_mut(index)
        {
            *slot = Some(all.into_boxed_slice());
        }
        for &child in children.get(index).map_or(&[][..], Vec::as_slice) {
            if let Some(waits) = waiting.get_mut(child) {
                *waits -= 1;
                if *waits == 0 {
                    ready.push(child);
                }
            }
        }
    }
    flat
}

/// Bindings by entity, and stored global roles by entity (only the entities that have some).
type RoleHolders = (
    HashMap<crate::data::value::EntityId, crate::program::Bindings>,
    HashMap<crate::data::value::EntityId, Box<[RoleId]>>,
);

/// Per entity: the roles the data binds to it, and the declared roles its stored `roles`
/// attribute names — resolved now so that deciding never looks a role up by name.
fn role_holders(store: &Store, role_ids: &HashMap<Arc<str>, RoleId>) -> RoleHolders {
    if role_ids.is_empty() {
        return (HashMap::default(), HashMap::default());
    }
    let mut bindings: HashMap<
        crate::data::value::EntityId,
        Vec<(RoleId, Option<crate::data::value::EntityId>)>,
    > = HashMap::default();
    for binding in store.bindings() {
        if let Some(role) = role_ids.get(binding.role.as_ref()) {
            bindings
                .entry(binding.subject)
                .or_default()
                .push((*role, binding.on));
        }
    }
    let stored = store
        .entities()
        .filter_map(|(id, entity)| {
            let names = entity
                .attributes
                .as_ref()
                .and_then(|fields| crate::data::value::field_of(fields, "roles"));
            let Some(Value::Set(names)) = names else {
                return None;
            };
            let held: Box<[RoleId]> = names
                .iter()
                .filter_map(|name| match name {
                    Value::Str(name) => role_ids.get(name.as_ref()).copied(),
                    _ => None,
                })
                .collect();
            (!held.is_empty()).then_some((id, held))
        })
        .collect();
    (
        bindings
            .into_iter()
            .map(|(subject, mut list)| {
                // Sorted by `on` (global ones first) for eval's lookup by resource.
                list.sort_unstable_by_key(|&(role, on)| (on, role));
                list.dedup();
                (subject, list.into_boxed_slice())
            })
            .collect(),
        stored,
    )
}

/// How a rule's first test narrows the requests it can hold for.
enum Key {
    ResourceIn(crate::data::value::EntityId),
    ResourceIs(crate::data::value::EntityId),
    SubjectIn(crate::data::value::EntityId),
    SubjectIs(crate::data::value::EntityId),
    Value(NodeId, Value),
}

/// The discriminating test of a rule: its leftmost conjunct, when that is `resource in K`,
/// `resource == K` (likewise for `subject`) or `path == constant`. Only the leftmost conjunct
/// is used: a conjunct further right may never be evaluated (short-circuit), so skipping the
/// rule because of it could hide an error that a conjunct before it raises.
fn key_of(nodes: &[Node], condition: NodeId) -> Option<Key> {
    let mut first = condition;
    while let Some(Node::And(left, _)) = nodes.get(first.index()) {
        first = *left;
    }
    let node = nodes.get(first.index())?;
    let entity_const = |id: NodeId| match nodes.get(id.index()) {
        Some(Node::Const(Value::Entity(EntityRef::Known(e)))) => Some(*e),
        _ => None,
    };
    let is = |id: NodeId, wanted: &Node| nodes.get(id.index()) == Some(wanted);
    match node {
        Node::In(a, b) => {
            let k = entity_const(*b)?;
            if is(*a, &Node::Resource) {
                Some(Key::ResourceIn(k))
            } else if is(*a, &Node::Subject) {
                Some(Key::SubjectIn(k))
            } else {
                None
            }
        }
        Node::Compare(Compare::Eq, a, b) => {
            let (var, constant) = match (nodes.get(a.index())?, nodes.get(b.index())?) {
                (Node::Const(_), Node::Const(_)) => return None,
                (Node::Const(c), _) => (*b, c),
                (_, Node::Const(c)) => (*a, c),
                _ => return None,
            };
            if let Value::Entity(EntityRef::Known(k)) = constant {
                if is(var, &Node::Resource) {
                    return Some(Key::ResourceIs(*k));
                }
                if is(var, &Node::Subject) {
                    return Some(Key::SubjectIs(*k));
                }
            }
            match constant {
                Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Entity(_) => {
                    Some(Key::Value(var, constant.clone()))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[derive(Default)]
struct BucketBuilder {
    plain: Vec<RuleId>,
    by_role: HashMap<RoleId, BucketBuilder>,
    resource_in: HashMap<crate::data::value::EntityId, Vec<RuleId>>,
    resource_is: HashMap<crate::data::value::EntityId, Vec<RuleId>>,
    subject_in: HashMap<crate::data::value::EntityId, Vec<RuleId>>,
    subject_is: HashMap<crate::data::value::EntityId, Vec<RuleId>>,
    by_value: Vec<(NodeId, HashMap<Value, Vec<RuleId>>)>,
}

impl BucketBuilder {
    /// Files a rule under its discriminating key (or with the plain rules).
    fn place(&mut self, rule_id: RuleId, key: Option<&Key>) {
        match key {
            None => self.plain.push(rule_id),
            Some(Key::ResourceIn(k)) => self.resource_in.entry(*k).or_default().push(rule_id),
            Some(Key::ResourceIs(k)) => self.resource_is.entry(*k).or_default().push(rule_id),
            Some(Key::SubjectIn(k)) => self.subject_in.entry(*k).or_default().push(rule_id),
            Some(Key::SubjectIs(k)) => self.subject_is.entry(*k).or_default().push(rule_id),
            Some(Key::Value(path, value)) => {
                let group = match self.by_value.iter().position(|(p, _)| p == path) {
                    Some(i) => i,
                    None => {
                        self.by_value.push((*path, HashMap::default()));
                        self.by_value.len() - 1
                    }
                };
                if let Some((_, map)) = self.by_value.get_mut(group) {
                    map.entry(value.clone()).or_default().push(rule_id);
                }
            }
        }
    }

    fn finish(self) -> Bucket {
        let boxed =
            |map: HashMap<crate::data::value::EntityId, Vec<RuleId>>| -> HashMap<_, Box<[RuleId]>> {
                map.into_iter()
                    .map(|(k, v)| (k, v.into_boxed_slice()))
                    .collect()
            };
        Bucket {
            plain: self.plain.into_boxed_slice(),
            by_role: self
                .by_role
                .into_iter()
                .map(|(role, builder)| (role, builder.finish()))
                .collect(),
            resource_in: boxed(self.resource_in),
            resource_is: boxed(self.resource_is),
            subject_in: boxed(self.subject_in),
            subject_is: boxed(self.subject_is),
            by_value: self
                .by_value
                .into_iter()
                .map(|(path, map)| {
                    let mut by_kind: HashMap<Kind, Vec<RuleId>> = HashMap::default();
                    let mut all = Vec::new();
                    for (value, rules) in &map {
                        by_kind
                            .entry(value.kind())
                            .or_default()
                            .extend(rules.iter().copied());
                        all.extend(rules.iter().copied());
                    }
                    all.sort_unstable();
                    ValueGroup {
                        path,
                        rules: map
                            .into_iter()
                            .map(|(k, v)| (k, v.into_boxed_slice()))
                            .collect(),
                        by_kind: by_kind
                            .into_iter()
                            .map(|(k, v)| (k, v.into_boxed_slice()))
                            .collect(),
                        all: all.into_boxed_slice(),
                    }
                })
                .collect(),
        }
    }
}

/// The slots of a rule's head: every slot, or those of its set.
fn head_slots<'s>(id: Option<u32>, every: &'s [usize], of: &'s [Vec<usize>]) -> &'s [usize] {
    match id {
        None => every,
        Some(id) => of.get(id as usize).map_or(&[], Vec::as_slice),
    }
}

fn build_index(
    schema: &Schema,
    rules: &[Rule],
    placements: &[Placement],
    (action_heads, type_heads): (&[BTreeSet<String>], &[BTreeSet<String>]),
    nodes: &[Node],
    action_sets: &[BTreeSet<String>],
) -> Index {
    // Slots: every declared type and action, and every one a rule or `action in` names.
    let mut type_names: BTreeSet<String> = schema.entity_types.keys().cloned().collect();
    let mut action_names: BTreeSet<String> = schema.actions.keys().cloned().collect();
    action_names.extend(action_sets.iter().flatten().cloned());
    type_names.extend(type_heads.iter().flatten().cloned());
    action_names.extend(action_heads.iter().flatten().cloned());
    let types: HashMap<Arc<str>, u32> = type_names
        .iter()
        .enumerate()
        .map(|(i, n)| (Arc::from(n.as_str()), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let actions: HashMap<Arc<str>, u32> = action_names
        .iter()
        .enumerate()
        .map(|(i, n)| (Arc::from(n.as_str()), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let type_count = types.len() + 1;
    let action_count = actions.len() + 1;
    let mut builders: Vec<BucketBuilder> = (0..type_count * action_count)
        .map(|_| BucketBuilder::default())
        .collect();

    // The slots of each head set, worked out once per set rather than once per rule.
    let slots = |heads: &[BTreeSet<String>], slot: &HashMap<Arc<str>, u32>| -> Vec<Vec<usize>> {
        heads
            .iter()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| slot.get(n.as_str()).map(|s| *s as usize))
                    .collect()
            })
            .collect()
    };
    let every_type: Vec<usize> = (0..type_count).collect();
    let every_action: Vec<usize> = (0..action_count).collect();
    let type_head_slots = slots(type_heads, &types);
    let action_head_slots = slots(action_heads, &actions);
    for (index, (rule, placement)) in rules.iter().zip(placements).enumerate() {
        let rule_id = RuleId(u32::try_from(index).unwrap_or(u32::MAX));
        let type_slots = head_slots(placement.types, &every_type, &type_head_slots);
        let action_slots = head_slots(placement.actions, &every_action, &action_head_slots);
        // A grant is a candidate only for a subject holding its role; within the role's
        // bucket its first test discriminates as a rule's does.
        let key = key_of(nodes, rule.condition);
        for t in type_slots {
            for a in action_slots {
                let Some(bucket) = builders.get_mut(t * action_count + a) else {
                    continue;
                };
                match rule.role {
                    Some(role) => bucket
                        .by_role
                        .entry(role)
                        .or_default()
                        .place(rule_id, key.as_ref()),
                    None => bucket.place(rule_id, key.as_ref()),
                }
            }
        }
    }

    Index {
        types,
        actions,
        buckets: builders.into_iter().map(BucketBuilder::finish).collect(),
    }
}
