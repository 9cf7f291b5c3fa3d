//! Program + request → decision.
//!
//! The evaluator reads only the compiled [`Program`]; it never sees the syntax tree. A request
//! touches the bucket of its (resource type, action), gathers the candidate rules that the
//! bucket's discriminators let through, and evaluates their conditions over the shared
//! expression graph, memoising every node in a per-thread [`Frame`] that is reset by bumping a
//! generation stamp, not by clearing. After the request is decoded, deciding allocates nothing
//! (buffers in the frame are reused; reasons and errors live inline in the decision).

mod bytes;
pub mod capability;
pub mod explain;
pub mod request;
pub mod strict;
pub mod wire;

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::data::value::{EntityRef, Value};
use crate::program::ops::{self, ErrorKind};
use crate::program::{Bucket, Effect, Node, NodeId, Party, Program, RoleId, RuleId, stack};

pub use request::{Request, RequestError, Verified};

/// Why an expression failed, and at which node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError {
    pub node: NodeId,
    pub kind: ErrorKind,
}

/// A rule whose condition failed to evaluate: an `allow` that does not apply, or a `deny`
/// that denies (fail closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub rule: RuleId,
    pub error: EvalError,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Every `deny` that held (or errored), else every `allow` that held; sorted.
    pub reasons: SmallVec<[RuleId; 4]>,
    /// Every rule whose condition errored; sorted by rule.
    pub errors: SmallVec<[RuleError; 2]>,
}

#[derive(Clone, Debug, Default)]
enum Memo {
    #[default]
    Empty,
    Value(Value),
    Error(EvalError),
}

/// A node's memo, current when its stamp is the frame's generation.
#[derive(Clone, Debug, Default)]
struct Slot {
    stamp: u32,
    memo: Memo,
}

/// Per-thread scratch space for evaluation, reused from request to request.
#[derive(Debug, Default)]
pub struct Frame {
    serial: u64,
    generation: u32,
    slots: Vec<Slot>,
    candidates: Vec<RuleId>,
    held_roles: Vec<RoleId>,
    reads: Vec<NodeId>,
}

impl Frame {
    pub fn new() -> Frame {
        Frame::default()
    }

    /// Starts a request: memo entries of earlier requests become stale by the stamp.
    fn begin(&mut self, program: &Program) {
        if self.serial != program.serial || self.slots.len() != program.nodes.len() {
            self.serial = program.serial;
            self.slots.clear();
            self.slots.resize(program.nodes.len(), Slot::default());
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 requests the stamps could collide with old ones: clear them once.
            self.slots.iter_mut().for_each(|s| s.stamp = 0);
            self.generation = 1;
        }
        self.candidates.clear();
        self.held_roles.clear();
        self.reads.clear();
    }

    /// The rules the last decision evaluated.
    pub fn candidates(&self) -> &[RuleId] {
        &self.candidates
    }

    /// The attribute, property and context nodes the last decision read, in reading order.
    pub fn reads(&self) -> &[NodeId] {
        &self.reads
    }

    /// The memoised result of a node in the last decision, if it was evaluated.
    pub fn result(&self, node: NodeId) -> Option<Result<&Value, &EvalError>> {
        let slot = self.slots.get(node.index())?;
        if slot.stamp != self.generation {
            return None;
        }
        match &slot.memo {
            Memo::Value(v) => Some(Ok(v)),
            Memo::Error(e) => Some(Err(e)),
            Memo::Empty => None,
        }
    }
}

thread_local! {
    static FRAME: std::cell::RefCell<Frame> = std::cell::RefCell::new(Frame::new());
}

/// Decides with this thread's frame.
pub fn decide(program: &Program, request: &Request) -> Decision {
    FRAME.with(|frame| match frame.try_borrow_mut() {
        Ok(mut frame) => decide_in(program, request, &mut frame),
        // Only reachable if deciding re-entered itself; a fresh frame keeps it correct.
        Err(_) => decide_in(program, request, &mut Frame::new()),
    })
}

/// Evaluates one compiled condition for a request: a capability's `mint if`, with `subject`
/// the minter. An error (or a value that is not a `Bool`) is returned as such: the caller
/// refuses.
pub(crate) fn condition_holds(
    program: &Program,
    request: &Request,
    condition: NodeId,
) -> Result<bool, EvalError> {
    let mut frame = Frame::new();
    frame.begin(program);
    let mut evaluator = Evaluator {
        program,
        request,
        frame: &mut frame,
        depth: 0,
    };
    let value = evaluator.eval(condition)?;
    ops::truth(&value, "if").map_err(|kind| EvalError {
        node: condition,
        kind,
    })
}

/// Evaluates compiled expressions outside any rule (limits' conditions and keys) for a
/// request, in this thread's frame so that what they share is evaluated once.
pub(crate) fn evaluate_all(
    program: &Program,
    request: &Request,
    nodes: &[NodeId],
    out: &mut impl Extend<Result<Value, EvalError>>,
) {
    let mut run = |frame: &mut Frame| {
        frame.begin(program);
        let mut evaluator = Evaluator {
            program,
            request,
            frame,
            depth: 0,
        };
        out.extend(nodes.iter().map(|node| evaluator.eval(*node)));
    };
    FRAME.with(|frame| match frame.try_borrow_mut() {
        Ok(mut frame) => run(&mut frame),
        Err(_) => run(&mut Frame::new()),
    })
}

/// What `node` evaluates to when it is the request's subject or resource: the request's own
/// value, borrowed, with no frame. `None` for any other node.
#[inline]
pub(crate) fn party<'r>(
    program: &Program,
    request: &'r Request,
    node: NodeId,
) -> Option<&'r Value> {
    match program.nodes.get(node.index()) {
        Some(Node::Subject) => Some(&request.subject),
        Some(Node::Resource) => Some(&request.resource),
        _ => None,
    }
}

/// Decides with a caller-owned frame (which then holds the candidates and memo for
/// explanation).
pub fn decide_in(program: &Program, request: &Request, frame: &mut Frame) -> Decision {
    // A subtree token grants only where its minter may act: decided first, in the same frame
    // (the request's own decision then starts afresh in it).
    let minter_holds = match &request.capability {
        Some(presented) if !presented.within.is_empty() => {
            capability::minter_holds(program, request, presented, frame)
        }
        _ => true,
    };
    frame.begin(program);
    let mut evaluator = Evaluator {
        program,
        request,
        frame,
        depth: 0,
    };
    evaluator.gather_candidates(minter_holds);
    evaluator.run()
}

/// Up to this many role bindings of one holder are tested one by one; more are looked up by
/// the resource and its ancestors.
const SCANNED_BINDINGS: usize = 8;

struct Evaluator<'a> {
    program: &'a Program,
    request: &'a Request,
    frame: &'a mut Frame,
    /// How many nodes deep the walk is: every [`stack::LEVELS_PER_CHECK`] levels it makes sure
    /// of room on the stack (see [`stack`]).
    depth: u32,
}

impl<'a> Evaluator<'a> {
    fn gather_candidates(&mut self, minter_holds: bool) {
        let program = self.program;
        if let Some(presented) = &self.request.capability
            && minter_holds
            && let Ok(rule) = capability::grants(program, self.request, presented)
        {
            self.frame.candidates.push(rule);
        }
        let Some(bucket) = program
            .index
            .bucket(self.request.type_slot, self.request.action_slot)
        else {
            return;
        };
        self.gather_keyed(bucket);
        if !bucket.by_role.is_empty() {
            self.collect_held_roles();
            for index in 0..self.frame.held_roles.len() {
                let Some(role) = self.frame.held_roles.get(index) else {
                    break;
                };
                if let Some(grants) = bucket.by_role.get(role) {
                    self.gather_keyed(grants);
                }
            }
        }
        self.frame.candidates.sort_unstable();
        self.frame.candidates.dedup();
    }

    /// The rules of `bucket` (not its roles' grants) that the request's resource, subject and
    /// discriminating values select.
    fn gather_keyed(&mut self, bucket: &'a Bucket) {
        let store = &self.program.store;
        self.frame.candidates.extend_from_slice(&bucket.plain);

        let entity_keys = |entity: &Value,
                           within: &rustc_hash::FxHashMap<_, Box<[RuleId]>>,
                           exact: &rustc_hash::FxHashMap<_, Box<[RuleId]>>,
                           out: &mut Vec<RuleId>| {
            if let Value::Entity(EntityRef::Known(id)) = entity {
                if !exact.is_empty()
                    && let Some(rules) = exact.get(id)
                {
                    out.extend_from_slice(rules);
                }
                if within.is_empty() {
                    return;
                }
                if let Some(rules) = within.get(id) {
                    out.extend_from_slice(rules);
                }
                store.for_each_ancestor(*id, |ancestor| {
                    if let Some(rules) = within.get(&ancestor) {
                        out.extend_from_slice(rules);
                    }
                });
            }
        };
        entity_keys(
            &self.request.resource,
            &bucket.resource_in,
            &bucket.resource_is,
            &mut self.frame.candidates,
        );
        entity_keys(
            &self.request.subject,
            &bucket.subject_in,
            &bucket.subject_is,
            &mut self.frame.candidates,
        );

        for group in bucket.by_value.iter() {
            match self.eval(group.path) {
                Ok(value) => {
                    if let Some(rules) = group.rules.get(&value) {
                        self.frame.candidates.extend_from_slice(rules);
                    }
                    for (kind, rules) in group.by_kind.iter() {
                        if *kind != value.kind() {
                            self.frame.candidates.extend_from_slice(rules);
                        }
                    }
                }
                Err(_) => self.frame.candidates.extend_from_slice(&group.all),
            }
        }
    }

    /// The roles the subject holds on the resource: named in its stored `roles`, or bound by
    /// the data to it or to a group it is in, globally or on the resource or an ancestor.
    fn collect_held_roles(&mut self) {
        let program = self.program;
        let store = &program.store;
        let Value::Entity(EntityRef::Known(subject)) = &self.request.subject else {
            // Not in the store: only verified roles can be held.
            if let Some(verified) = &self.request.verified {
                self.frame.held_roles.extend_from_slice(&verified.roles);
                program.expand_roles(&mut self.frame.held_roles);
            }
            return;
        };
        let resource = match &self.request.resource {
            Value::Entity(EntityRef::Known(id)) => Some(*id),
            _ => None,
        };
        let held = &mut self.frame.held_roles;
        if let Some(verified) = &self.request.verified {
            held.extend_from_slice(&verified.roles);
        }
        if let Some(stored) = program.stored_roles.get(subject) {
            held.extend_from_slice(stored);
        }
        let consider = |holder: crate::data::value::EntityId, held: &mut Vec<RoleId>| {
            let Some(bindings) = program.bindings.get(&holder) else {
                return;
            };
            if bindings.len() <= SCANNED_BINDINGS {
                for (role, on) in bindings.iter() {
                    let applies = match (on, resource) {
                        (None, _) => true,
                        (Some(on), Some(resource)) => store.is_in(resource, *on),
                        (Some(_), None) => false,
                    };
                    if applies {
                        held.push(*role);
                    }
                }
                return;
            }
            // Many bindings (sorted by `on`, global ones first): look up the resource and
            // each of its ancestors instead of testing every binding.
            let mut bound_on = |on: Option<crate::data::value::EntityId>| {
                let from = bindings.partition_point(|(_, o)| *o < on);
                let matching = bindings.get(from..).unwrap_or(&[]);
                held.extend(
                    matching
                        .iter()
                        .take_while(|(_, o)| *o == on)
                        .map(|(r, _)| *r),
                );
            };
            bound_on(None);
            if let Some(resource) = resource {
                bound_on(Some(resource));
                store.for_each_ancestor(resource, |above| bound_on(Some(above)));
            }
        };
        consider(*subject, held);
        store.for_each_ancestor(*subject, |group| consider(group, held));
        program.expand_roles(held);
    }

    fn run(&mut self) -> Decision {
        let mut denies: SmallVec<[RuleId; 4]> = SmallVec::new();
        let mut allows: SmallVec<[RuleId; 4]> = SmallVec::new();
        let mut errors: SmallVec<[RuleError; 2]> = SmallVec::new();
        for index in 0..self.frame.candidates.len() {
            let Some(rule_id) = self.frame.candidates.get(index).copied() else {
                break;
            };
            let Some(rule) = self.program.rule(rule_id) else {
                continue;
            };
            let outcome = self.rule_holds(rule);
            match (rule.effect, outcome) {
                (Effect::Deny, Ok(true)) => denies.push(rule_id),
                (Effect::Allow, Ok(true)) => allows.push(rule_id),
                (_, Ok(false)) => {}
                (effect, Err(error)) => {
                    // Fail closed: a deny that cannot be evaluated denies.
                    if effect == Effect::Deny {
                        denies.push(rule_id);
                    }
                    errors.push(RuleError {
                        rule: rule_id,
                        error,
                    });
                }
            }
        }
        if denies.is_empty() {
            Decision {
                allowed: !allows.is_empty(),
                reasons: allows,
                errors,
            }
        } else {
            Decision {
                allowed: false,
                reasons: denies,
                errors,
            }
        }
    }

    /// Whether a rule's condition holds. A condition of several conjuncts is decided from
    /// its conjuncts, left to right as `and` reads them: they are mostly shared among rules
    /// (and already memoised), while the `and` nodes joining them are the rule's own, so
    /// among thousands of rules walking those nodes cost a cache miss each. The result is
    /// the one evaluating the whole condition gives; a conjunct that is not a `Bool` falls
    /// back to evaluating the whole, which reports it exactly as before.
    fn rule_holds(&mut self, rule: &crate::program::Rule) -> Result<bool, EvalError> {
        if rule.conjuncts.len() > 1 {
            let mut all_true = true;
            for (conjunct, _) in rule.conjuncts.iter() {
                match self.eval(*conjunct)? {
                    Value::Bool(true) => {}
                    Value::Bool(false) => return Ok(false),
                    _ => {
                        all_true = false;
                        break;
                    }
                }
            }
            if all_true {
                return Ok(true);
            }
        }
        let value = self.eval(rule.condition)?;
        ops::truth(&value, "if").map_err(|kind| EvalError {
            node: rule.condition,
            kind,
        })
    }

    fn eval(&mut self, id: NodeId) -> Result<Value, EvalError> {
        let program = self.program;
        let Some(node) = program.nodes.get(id.index()) else {
            return Err(EvalError {
                node: id,
                kind: ErrorKind::Request,
            });
        };
        // The request's own entities: cheaper to copy than to memoise (never read back by
        // explanations or the audit log, which look at conditions and attribute reads).
        match node {
            Node::Subject => return Ok(self.request.subject.clone()),
            Node::Resource => return Ok(self.request.resource.clone()),
            _ => {}
        }
        let generation = self.frame.generation;
        if let Some(slot) = self.frame.slots.get(id.index())
            && slot.stamp == generation
        {
            match &slot.memo {
                // Most memoised values are conditions: copied without a call.
                Memo::Value(Value::Bool(b)) => return Ok(Value::Bool(*b)),
                Memo::Value(v) => return Ok(v.clone()),
                Memo::Error(e) => return Err(e.clone()),
                Memo::Empty => {}
            }
        }
        self.depth += 1;
        let result = if self.depth.is_multiple_of(stack::LEVELS_PER_CHECK) {
            stack::grow(|| self.compute(id, node))
        } else {
            self.compute(id, node)
        };
        self.depth -= 1;
        if let Some(slot) = self.frame.slots.get_mut(id.index()) {
            slot.stamp = generation;
            slot.memo = match &result {
                Ok(Value::Bool(b)) => Memo::Value(Value::Bool(*b)),
                Ok(v) => Memo::Value(v.clone()),
                Err(e) => Memo::Error(e.clone()),
            };
        }
        result
    }

    /// An operand: the request's own entities borrowed (no call, no copy), any other node
    /// evaluated.
    #[inline]
    fn operand(&mut self, id: NodeId) -> Result<Cow<'a, Value>, EvalError> {
        match party(self.program, self.request, id) {
            Some(value) => Ok(Cow::Borrowed(value)),
            None => self.eval(id).map(Cow::Owned),
        }
    }

    /// The verified attributes when `base` is the `subject` variable (directly or through a
    /// `let`, which the graph inlines), not another way to the same entity.
    fn verified_of(&self, base: NodeId) -> Option<&'a request::Verified> {
        let verified = self.request.verified.as_deref()?;
        matches!(self.program.node(base), Some(Node::Subject)).then_some(verified)
    }

    fn compute(&mut self, id: NodeId, node: &'a Node) -> Result<Value, EvalError> {
        let program = self.program;
        let fail = |kind: ErrorKind| EvalError { node: id, kind };
        let store = &program.store;
        match node {
            Node::Const(value) => Ok(value.clone()),
            Node::Subject => Ok(self.request.subject.clone()),
            Node::Resource => Ok(self.request.resource.clone()),
            Node::Action => Err(fail(ErrorKind::ActionValue)),
            Node::ActionIn(set) => Ok(Value::Bool(
                program.action_in(self.request.action_slot, *set),
            )),
            Node::Context => {
                self.frame.reads.push(id);
                Ok(self.request.context.clone())
            }
            Node::Properties(party) => {
                self.frame.reads.push(id);
                Ok(match party {
                    Party::Subject => self.request.subject_properties.clone(),
                    Party::Action => self.request.action_properties.clone(),
                    Party::Resource => self.request.resource_properties.clone(),
                })
            }
            Node::Now => Ok(Value::Time(self.request.now)),
            Node::Attr(base, name) => {
                let base_id = *base;
                let base = self.operand(base_id)?;
                self.frame.reads.push(id);
                if let Some(verified) = self.verified_of(base_id)
                    && let Ok(value) = ops::attribute(store, &verified.attributes, name)
                {
                    return Ok(value);
                }
                ops::attribute(store, &base, name).map_err(fail)
            }
            Node::Has(base, name) => {
                let base_id = *base;
                let base = self.operand(base_id)?;
                self.frame.reads.push(id);
                if let Some(verified) = self.verified_of(base_id)
                    && ops::has(store, &verified.attributes, name) == Ok(true)
                {
                    return Ok(Value::Bool(true));
                }
                ops::has(store, &base, name).map(Value::Bool).map_err(fail)
            }
            Node::Not(a) => {
                let a = self.eval(*a)?;
                ops::not(&a).map(Value::Bool).map_err(fail)
            }
            Node::Neg(a) => {
                let a = self.eval(*a)?;
                ops::neg(&a).map_err(fail)
            }
            Node::And(a, b) => {
                let left = self.eval(*a)?;
                if !ops::truth(&left, "and").map_err(fail)? {
                    return Ok(Value::Bool(false));
                }
                let right = self.eval(*b)?;
                ops::truth(&right, "and").map(Value::Bool).map_err(fail)
            }
            Node::Or(a, b) => {
                let left = self.eval(*a)?;
                if ops::truth(&left, "or").map_err(fail)? {
                    return Ok(Value::Bool(true));
                }
                let right = self.eval(*b)?;
                ops::truth(&right, "or").map(Value::Bool).map_err(fail)
            }
            Node::Compare(op, a, b) => {
                let (a, b) = (self.operand(*a)?, self.operand(*b)?);
                ops::compare(*op, &a, &b).map(Value::Bool).map_err(fail)
            }
            Node::Add(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::add(&a, &b).map_err(fail)
            }
            Node::Sub(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::sub(&a, &b).map_err(fail)
            }
            Node::Mul(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::mul(&a, &b).map_err(fail)
            }
            Node::In(a, b) => {
                let (a, b) = (self.operand(*a)?, self.operand(*b)?);
                ops::is_in(store, &a, &b).map(Value::Bool).map_err(fail)
            }
            Node::Contains(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::contains(&a, &b).map(Value::Bool).map_err(fail)
            }
            Node::ContainsAll(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::contains_all(&a, &b).map(Value::Bool).map_err(fail)
            }
            Node::ContainsAny(a, b) => {
                let (a, b) = (self.eval(*a)?, self.eval(*b)?);
                ops::contains_any(&a, &b).map(Value::Bool).map_err(fail)
            }
            Node::If(cond, then, otherwise) => {
                let cond = self.eval(*cond)?;
                if ops::truth(&cond, "if").map_err(fail)? {
                    self.eval(*then)
                } else {
                    self.eval(*otherwise)
                }
            }
            Node::IsEmpty(a) => {
                let a = self.eval(*a)?;
                ops::is_empty(&a).map(Value::Bool).map_err(fail)
            }
            Node::Like(a, pattern) => {
                let a = self.eval(*a)?;
                ops::like(&a, pattern).map(Value::Bool).map_err(fail)
            }
            Node::Is(a, ty) => {
                let a = self.operand(*a)?;
                ops::is_type(store, &a, ty).map(Value::Bool).map_err(fail)
            }
            Node::Calendar(field, a, zone) => {
                let a = self.eval(*a)?;
                match program.zones.get(*zone as usize) {
                    Some((_, tz)) => ops::calendar(*field, &a, tz).map_err(fail),
                    None => Err(fail(ErrorKind::Request)),
                }
            }
            Node::Ip(test, a) => {
                let a = self.eval(*a)?;
                ops::ip_test(*test, &a).map(Value::Bool).map_err(fail)
            }
            Node::InRange(a, b, c) => {
                let (a, b, c) = (self.eval(*a)?, self.eval(*b)?, self.eval(*c)?);
                ops::in_range(&a, &b, &c).map(Value::Bool).map_err(fail)
            }
            Node::SetOf(members) => {
                let mut values = Vec::with_capacity(members.len());
                for member in members.iter() {
                    values.push(self.eval(*member)?);
                }
                Ok(Value::set(values))
            }
            Node::RecordOf(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for (name, member) in fields.iter() {
                    values.push((name.clone(), self.eval(*member)?));
                }
                Ok(Value::record(values))
            }
        }
    }
}
