//! The compiled artifact: the decision graph that `compile` writes and `eval` reads.
//!
//! It imports neither stage. A [`Program`] is immutable once built: a table of expression
//! nodes (hash-consed, so a sub-expression shared by many rules is one node, evaluated once per
//! request), the rules, an index from (resource type, action) to candidate rules discriminated
//! by the constants they test, role tables, and the entity store.

pub mod ops;
pub mod requests;
pub mod stack;

// FxHash: the keys are small ids and interned strings, not attacker-chosen (request values
// are only looked up, never inserted), and SipHash's cost showed in every lookup.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::check::schema::Schema;
use crate::data::store::Store;
use crate::data::value::{EntityId, Kind, Value};
use crate::source::{SourceFile, Span};

/// Index of a node in [`Program::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a rule (or role grant) in [`Program::rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl RuleId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a role in [`Program::roles`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(pub u32);

/// The three request entities that carry caller-sent `properties`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Subject,
    Action,
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Compare::Eq => "==",
            Compare::Ne => "!=",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }
}

/// The tests on an IP address or range (`is_loopback(context.ip)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpTest {
    V4,
    V6,
    Loopback,
    Multicast,
}

impl IpTest {
    /// The function that makes this test, as the policy names it.
    pub fn function(self) -> &'static str {
        match self {
            IpTest::V4 => "is_ipv4",
            IpTest::V6 => "is_ipv6",
            IpTest::Loopback => "is_loopback",
            IpTest::Multicast => "is_multicast",
        }
    }
}

/// Calendar fields read in a time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalendarField {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    /// ISO: 1 = Monday … 7 = Sunday.
    Weekday,
}

impl CalendarField {
    pub fn name(self) -> &'static str {
        match self {
            CalendarField::Year => "year",
            CalendarField::Month => "month",
            CalendarField::Day => "day",
            CalendarField::Hour => "hour",
            CalendarField::Minute => "minute",
            CalendarField::Weekday => "weekday",
        }
    }
}

/// A `like` pattern, cut at its `*` wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// Literal pieces between wildcards; `pieces.len() == wildcards + 1`.
    pub pieces: Box<[Box<str>]>,
}

/// One node of the decision graph. Children always have smaller ids than their parents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Const(Value),
    Subject,
    Resource,
    /// Bare `action`: has no value of its own (only `.properties`); evaluating it is an error.
    Action,
    Context,
    Properties(Party),
    Now,
    Attr(NodeId, Arc<str>),
    Has(NodeId, Arc<str>),
    Not(NodeId),
    Neg(NodeId),
    And(NodeId, NodeId),
    Or(NodeId, NodeId),
    Compare(Compare, NodeId, NodeId),
    Add(NodeId, NodeId),
    Sub(NodeId, NodeId),
    Mul(NodeId, NodeId),
    In(NodeId, NodeId),
    Contains(NodeId, NodeId),
    ContainsAll(NodeId, NodeId),
    ContainsAny(NodeId, NodeId),
    IsEmpty(NodeId),
    /// `if c then a else b`: only the branch taken is evaluated.
    If(NodeId, NodeId, NodeId),
    Like(NodeId, Arc<Pattern>),
    Is(NodeId, Arc<str>),
    /// `action in write`, `action == read`: whether the requested action is in the set of
    /// this number (a bit of [`Program::action_sets`]).
    ActionIn(u32),
    /// A calendar field of a time in a zone (index into [`Program::zones`]).
    Calendar(CalendarField, NodeId, u32),
    InRange(NodeId, NodeId, NodeId),
    Ip(IpTest, NodeId),
    SetOf(Box<[NodeId]>),
    RecordOf(Box<[(Arc<str>, NodeId)]>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// A rule or a role grant, as compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The `@id`, else `file:line`.
    pub id: Arc<str>,
    /// True when the id came from `@id(...)` (stable across edits).
    pub named: bool,
    pub effect: Effect,
    /// The whole condition (`unless c` compiled as `not c`; no condition is `true`).
    pub condition: NodeId,
    /// The top-level conjuncts of the condition with their source spans, for explanations.
    pub conjuncts: Box<[(NodeId, Span)]>,
    /// True for `unless c`: its one conjunct is `not c`, spanning `c`, so a false rule means
    /// `c` was true.
    pub unless: bool,
    /// For a role grant, the role that declares it.
    pub role: Option<RoleId>,
    /// Index into [`Program::sources`] and the span of the rule head in that file.
    pub file: usize,
    pub span: Span,
}

/// Candidate rules for one (resource type, action) pair, discriminated by the constants their
/// first condition tests, so a request touches only the rules that can hold.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// Rules without a usable discriminator: always evaluated.
    pub plain: Box<[RuleId]>,
    /// Role grants, by the role that declares them, indexed as the bucket's own rules are
    /// (their `by_role` is empty). A request gathers the buckets of every role it holds,
    /// inherited ones included ([`Program::expand_roles`]).
    pub by_role: HashMap<RoleId, Bucket>,
    /// `resource in K`: rules by K, found through the resource and its ancestors.
    pub resource_in: HashMap<EntityId, Box<[RuleId]>>,
    /// `resource == K`.
    pub resource_is: HashMap<EntityId, Box<[RuleId]>>,
    /// `subject in K`.
    pub subject_in: HashMap<EntityId, Box<[RuleId]>>,
    /// `subject == K`.
    pub subject_is: HashMap<EntityId, Box<[RuleId]>>,
    /// `path == constant`: rules by the value of `path`.
    pub by_value: Box<[ValueGroup]>,
}

/// Rules whose first test compares one expression with a constant.
#[derive(Clone, Debug)]
pub struct ValueGroup {
    pub path: NodeId,
    pub rules: HashMap<Value, Box<[RuleId]>>,
    /// All rules of the group by the kind of their constant: when the path's value has another
    /// kind, comparing errors, so those rules must be evaluated to report it.
    pub by_kind: Box<[(Kind, Box<[RuleId]>)]>,
    /// Every rule of the group (when evaluating the path fails).
    pub all: Box<[RuleId]>,
}

/// Where to find the bucket for a request.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Declared (or policy-named) resource types, each with a slot.
    pub types: HashMap<Arc<str>, u32>,
    /// Declared (or policy-named) actions, each with a slot.
    pub actions: HashMap<Arc<str>, u32>,
    /// `(types.len() + 1) * (actions.len() + 1)` buckets; the last slot of each dimension
    /// stands for "any other type/action".
    pub buckets: Box<[Bucket]>,
}

impl Index {
    pub fn type_slot(&self, ty: &str) -> u32 {
        self.types.get(ty).copied().unwrap_or(self.other_type())
    }

    pub fn action_slot(&self, action: &str) -> u32 {
        self.actions
            .get(action)
            .copied()
            .unwrap_or(self.other_action())
    }

    pub(crate) fn other_type(&self) -> u32 {
        u32::try_from(self.types.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn other_action(&self) -> u32 {
        u32::try_from(self.actions.len()).unwrap_or(u32::MAX)
    }

    pub fn bucket(&self, type_slot: u32, action_slot: u32) -> Option<&Bucket> {
        let width = self.actions.len() + 1;
        self.buckets
            .get(type_slot as usize * width + action_slot as usize)
    }
}

/// The most roles a role's flattened inheritance ([`RoleInfo::grants_of`]) lists. Beyond it
/// the closure is walked per request: storing it for every role of a long chain would take
/// memory growing with the square of the chain's length.
pub(crate) const MAX_FLAT_ROLES: usize = 64;

/// A role, with the entity-independent facts eval needs.
#[derive(Clone, Debug)]
pub struct RoleInfo {
    pub name: Arc<str>,
    /// The roles it inherits from directly.
    pub parents: Box<[RoleId]>,
    /// This role and every role whose grants it inherits, when they are at most
    /// [`MAX_FLAT_ROLES`]; `None` when there are more, and `parents` are walked instead.
    pub grants_of: Option<Box<[RoleId]>>,
}

/// Roles the data binds to one entity: `(role, on)`, where `on == None` is global; sorted by
/// `on`, global ones first.
pub type Bindings = Box<[(RoleId, Option<EntityId>)]>;

/// The compiled, immutable, versioned program.
#[derive(Clone, Debug)]
pub struct Program {
    /// A hash of the inputs (sorted relative paths and contents, tests included).
    pub version: Arc<str>,
    pub schema: Schema,
    pub store: Store,
    pub nodes: Box<[Node]>,
    pub rules: Box<[Rule]>,
    pub index: Index,
    pub roles: Box<[RoleInfo]>,
    pub role_ids: HashMap<Arc<str>, RoleId>,
    /// Roles bound to entities by the data: `(role, on)`; `on == None` is global. Only the
    /// entities that hold one are in the map: a table with a slot per entity would cost a
    /// million slots for a million users, most of them empty.
    pub bindings: HashMap<EntityId, Bindings>,
    /// The declared roles named in an entity's stored `roles` attribute, for the entities
    /// whose attribute names one.
    pub stored_roles: HashMap<EntityId, Box<[RoleId]>>,
    pub zones: Box<[(Arc<str>, jiff::tz::TimeZone)]>,
    pub sources: Box<[SourceFile]>,
    /// The `route` declarations, for gateways' forward-auth requests.
    pub routes: crate::check::route_table::RouteTable,
    /// The `capability` declarations, by name.
    pub capabilities: Box<[Capability]>,
    /// A number unique to this program in this process, so per-thread evaluation frames can
    /// tell programs apart.
    pub serial: u64,
    /// The declared names a request may carry, each with what decoding it needs.
    pub request_names: requests::RequestNames,
    /// The `limit` declarations, in source order.
    pub limits: Box<[Limit]>,
    /// For each action slot ([`Index::action_slot`]), the sets of [`Node::ActionIn`] that hold
    /// the action, as bits: `action in write` costs one lookup whatever the hierarchy's depth.
    /// The slot of every other action holds none.
    pub action_sets: Box<[Box<[u64]>]>,
}

/// A `limit` declaration, as compiled.
#[derive(Clone, Debug)]
pub struct Limit {
    pub name: Arc<str>,
    /// How many allowed requests one key may make in a period.
    pub count: u64,
    pub period: LimitPeriod,
    /// The actions it counts, groups expanded and sorted; `None` for `*`.
    pub actions: Option<Box<[Arc<str>]>>,
    /// The resource types it counts, sorted; `None` for any.
    pub resource_types: Option<Box<[Arc<str>]>>,
    /// The key requests are counted by.
    pub key: NodeId,
    /// When it applies (`unless` already negated); `None` for always.
    pub condition: Option<NodeId>,
}

/// The period of a compiled limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPeriod {
    /// A window sliding with each request, `millis` long; once a key has spent its count, a
    /// request is let through every `interval` nanoseconds (the period divided by the count,
    /// rounded down to whole microseconds).
    Rolling { millis: i64, interval: i128 },
    /// A calendar day, week or month in a zone of [`Program::zones`].
    Calendar(crate::check::limits::CalendarUnit, u32),
}

impl Limit {
    /// Whether the limit counts this action on a resource of this type (its condition aside).
    pub fn counts(&self, action: &str, resource_type: &str) -> bool {
        self.actions
            .as_ref()
            .is_none_or(|a| a.iter().any(|n| &**n == action))
            && self
                .resource_types
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| &**n == resource_type))
    }
}

/// A `capability` declaration, as compiled: what a token minted under it may carry.
#[derive(Clone, Debug)]
pub struct Capability {
    pub name: Arc<str>,
    /// The `allow` a granting token adds to a decision (never in the index: only a token
    /// makes it a candidate). Its id is the declaration's `@id`, else `capability:NAME`.
    pub rule: RuleId,
    /// The actions a token may carry, groups expanded; sorted.
    pub actions: Box<[Arc<str>]>,
    /// The resource types a token may name; sorted.
    pub resource_types: Box<[Arc<str>]>,
    /// The longest lifetime of a token, in milliseconds.
    pub lifetime_ms: i64,
    /// The `mint if` condition, with `subject` the minter.
    pub mint: Option<NodeId>,
    /// Whether a token may be held by whoever has it, and handed on.
    pub delegable: bool,
}

impl Capability {
    pub fn carries(&self, action: &str) -> bool {
        self.actions.iter().any(|a| &**a == action)
    }

    pub(crate) fn applies_to(&self, resource_type: &str) -> bool {
        self.resource_types.iter().any(|t| &**t == resource_type)
    }
}

impl Program {
    /// Whether the action of `slot` is in the `action in` set `set`.
    pub(crate) fn action_in(&self, slot: u32, set: u32) -> bool {
        self.action_sets
            .get(slot as usize)
            .and_then(|bits| bits.get(set as usize / 64))
            .is_some_and(|word| word & (1u64 << (set % 64)) != 0)
    }

    /// The capability declared as `name`.
    pub fn capability(&self, name: &str) -> Option<(usize, &Capability)> {
        self.capabilities
            .iter()
            .enumerate()
            .find(|(_, c)| &*c.name == name)
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.index())
    }

    /// Adds to the roles in `held` every role they inherit, then sorts and dedups `held`.
    pub(crate) fn expand_roles(&self, held: &mut Vec<RoleId>) {
        let direct = held.len();
        let mut deep = false;
        for index in 0..direct {
            let flat = held
                .get(index)
                .and_then(|role| self.roles.get(role.0 as usize))
                .map(|info| &info.grants_of);
            match flat {
                Some(Some(all)) => held.extend_from_slice(all),
                Some(None) => deep = true,
                None => {}
            }
        }
        if deep {
            // Rare (more than MAX_FLAT_ROLES inherited roles): walk, each role once.
            let mut seen = vec![false; self.roles.len()];
            let mut pending: Vec<RoleId> = held.get(..direct).unwrap_or(&[]).to_vec();
            while let Some(role) = pending.pop() {
                let Some(mark) = seen.get_mut(role.0 as usize) else {
                    continue;
                };
                if *mark {
                    continue;
                }
                *mark = true;
                held.push(role);
                if let Some(info) = self.roles.get(role.0 as usize) {
                    pending.extend_from_slice(&info.parents);
                }
            }
        }
        held.sort_unstable();
        held.dedup();
    }

    /// `file:line:column` of a rule, for people.
    pub(crate) fn rule_location(&self, rule: &Rule) -> String {
        match self.sources.get(rule.file) {
            Some(file) => {
                let (line, column) = file.line_col(rule.span.start as usize);
                format!("{}:{line}:{column}", file.name())
            }
            None => rule.id.to_string(),
        }
    }

    /// The source text of a span in a rule's file.
    pub(crate) fn source_text(&self, file: usize, span: Span) -> &str {
        self.sources.get(file).map_or("", |f| f.slice(span))
    }
}
