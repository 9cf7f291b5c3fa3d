//! The syntax tree: plain data with a span on every node, and no behaviour.
//!
//! Every later stage reads it; only the parser writes it. Spans compare equal (see
//! [`Span`]), so two trees are `==` when they say the same thing.

use crate::source::Span;

/// One parsed policy file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct File {
    pub items: Vec<Item>,
}

/// A top-level declaration, rule or test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entity(EntityDecl),
    Action(ActionDecl),
    ActionGroup(ActionGroupDecl),
    Role(RoleDecl),
    Rule(Rule),
    Let(LetDecl),
    Test(TestBlock),
    Route(RouteDecl),
    Capability(CapabilityDecl),
    Limit(LimitDecl),
    Namespace(NamespaceDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Entity(i) => i.span,
            Item::Action(i) => i.span,
            Item::ActionGroup(i) => i.span,
            Item::Role(i) => i.span,
            Item::Rule(i) => i.span,
            Item::Let(i) => i.span,
            Item::Test(i) => i.span,
            Item::Route(i) => i.span,
            Item::Capability(i) => i.span,
            Item::Limit(i) => i.span,
            Item::Namespace(i) => i.span,
        }
    }
}

/// `namespace acme`: the entity types the file declares are `acme::…`, and its short type names
/// are looked up in `acme` first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceDecl {
    pub annotations: Vec<Annotation>,
    /// The namespace, `acme` or `acme::billing`.
    pub name: Ident,
    pub span: Span,
}

/// A plain identifier: a type, role, `let` or function name. A type name may be qualified by
/// its namespace (`acme::User`): the whole path is the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// An attribute, record key or action name: an identifier, a keyword, or a quoted string
/// (`"read-todo"`). Only the text counts; the printer quotes it when it must.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A string literal where only a literal may stand (test names, paths, rule ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// `@id("photos-public")`, `@doc("...")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub name: Ident,
    pub value: Option<StrLit>,
    pub span: Span,
}

/// `entity Photo in [Album] { owner: User, album: Album, properties: { source?: String } }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    /// Entity types a member of this type may have as parents in the hierarchy.
    pub parents: Vec<Ident>,
    /// Stored attributes, from the entity store or verified claims.
    pub attributes: Vec<AttrDecl>,
    /// The caller-sent `properties`, typed when declared; `None` leaves them dynamic.
    pub properties: Option<Vec<AttrDecl>>,
    /// `entity Color enum ["red", "green"]`: the only ids an entity of this type may have.
    pub ids: Option<Vec<StrLit>>,
    pub span: Span,
}

/// `name: Type` or `name?: Type` (optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrDecl {
    pub name: Name,
    pub optional: bool,
    pub ty: TypeExpr,
    pub span: Span,
}

/// A type as written: `String`, `Album`, `Set<String>`, `{ album: Album, expires: Time }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeExpr {
    Named(Ident),
    Set(Box<TypeExpr>, Span),
    Record(Vec<AttrDecl>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::Set(_, span) | TypeExpr::Record(_, span) => *span,
        }
    }
}

/// `action delete on Photo, Album context { mfa?: Bool }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionDecl {
    pub annotations: Vec<Annotation>,
    pub names: Vec<Name>,
    /// `in triage` / `in [triage, audit]`: the actions or groups these actions sit beneath.
    pub parents: Vec<Name>,
    /// Resource types the actions apply to; empty means any type.
    pub resource_types: Vec<Ident>,
    /// `by User, Team`: the subject types that may ask; empty means any type.
    pub subject_types: Vec<Ident>,
    /// The caller-sent `action.properties`, typed when declared.
    pub properties: Option<Vec<AttrDecl>>,
    /// The `context` the actions expect; `None` leaves context dynamic.
    pub context: Option<Vec<AttrDecl>>,
    pub span: Span,
}

/// `action group edit = [comment, upload]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionGroupDecl {
    pub annotations: Vec<Annotation>,
    pub name: Name,
    pub members: Vec<Name>,
    pub span: Span,
}

/// `role contributor : viewer { allow comment, upload }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    pub inherits: Vec<Ident>,
    pub grants: Vec<Grant>,
    pub span: Span,
}

/// A grant inside a role: `allow delete on Photo if context has mfa and context.mfa`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub annotations: Vec<Annotation>,
    pub actions: Actions,
    pub resource_types: Vec<Ident>,
    pub condition: Option<Condition>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// `@id("owner-all") allow * on Photo if resource.owner == subject`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub annotations: Vec<Annotation>,
    pub effect: Effect,
    pub actions: Actions,
    pub resource_types: Vec<Ident>,
    pub condition: Option<Condition>,
    pub span: Span,
}

/// The actions a rule or grant covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actions {
    /// `*`: every action, declared or not.
    Any(Span),
    /// Action and action-group names.
    List(Vec<Name>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionKind {
    If,
    Unless,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub kind: ConditionKind,
    pub expr: Expr,
}

/// `let staff = subject in Group::"staff"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `route GET "/albums/{album}/photos/{photo}" => view on Photo::{photo} with { album: {album} }`:
/// how a gateway's HTTP request becomes an action on a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDecl {
    pub annotations: Vec<Annotation>,
    /// An HTTP method (`GET`), or `None` for `*`: any method.
    pub method: Option<Ident>,
    /// The path template: literal segments, `{name}` parameters, a final `{*name}`.
    pub path: StrLit,
    pub action: Name,
    pub resource_type: Ident,
    pub resource_id: RoutePart,
    /// `with { key: {param}, ... }`: the resource's properties.
    pub properties: Vec<(Name, RoutePart)>,
    pub span: Span,
}

/// A value a route fills in: a path parameter or a fixed string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutePart {
    /// `{album}`
    Param(Ident),
    /// `"fixed"`
    Literal(StrLit),
}

/// `capability greenhouse_key on Greenhouse { allow enter, water  lifetime 14d  mint if ... }`:
/// what a capability token minted under this name may carry, and who may mint one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    /// The resource types a token may name (its resource, or the root of its subtree).
    pub resource_types: Vec<Ident>,
    /// The clauses in source order (the parser guarantees one `allow`, one `lifetime`, at
    /// most one `mint` and at most one `delegable`).
    pub clauses: Vec<CapabilityClause>,
    pub span: Span,
}

impl CapabilityDecl {
    /// The actions (and action groups) a token may carry.
    pub fn actions(&self) -> &[Name] {
        self.clauses
            .iter()
            .find_map(|clause| match &clause.kind {
                CapabilityClauseKind::Allow(names) => Some(names.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The longest lifetime of a token, in milliseconds.
    pub fn lifetime(&self) -> Option<(i64, Span)> {
        self.clauses.iter().find_map(|clause| match clause.kind {
            CapabilityClauseKind::Lifetime(millis) => Some((millis, clause.span)),
            _ => None,
        })
    }

    /// The condition a minter must meet, beyond holding every action it hands out.
    pub fn mint(&self) -> Option<&Expr> {
        self.clauses.iter().find_map(|clause| match &clause.kind {
            CapabilityClauseKind::Mint(expr) => Some(expr),
            _ => None,
        })
    }

    /// Whether a token may be held by anyone who has it, and handed on.
    pub fn delegable(&self) -> bool {
        self.clauses
            .iter()
            .any(|clause| matches!(clause.kind, CapabilityClauseKind::Delegable))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityClause {
    pub kind: CapabilityClauseKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapabilityClauseKind {
    /// `allow enter, water`
    Allow(Vec<Name>),
    /// `lifetime 14d`, in milliseconds.
    Lifetime(i64),
    /// `mint if resource.owner == subject`
    Mint(Expr),
    /// `delegable`
    Delegable,
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The expressions directly inside `$kind` (an `&ExprKind` or an `&mut ExprKind`), each passed
/// to `$f` in source order; `$iter` is `iter` or `iter_mut`. One list of children for both
/// walks, so a new kind of expression cannot be forgotten in one of them.
macro_rules! for_each_child {
    ($kind:expr, $f:ident, $iter:ident) => {
        match $kind {
            ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Duration(_)
            | ExprKind::Entity { .. }
            | ExprKind::Var(_)
            | ExprKind::Let(_)
            | ExprKind::ActionTest(_) => {}
            ExprKind::Set(elements) | ExprKind::Call { args: elements, .. } => {
                elements.$iter().for_each($f)
            }
            ExprKind::Record(entries) => entries.$iter().for_each(|(_, e)| $f(e)),
            ExprKind::Attr { base, .. }
            | ExprKind::Has { base, .. }
            | ExprKind::Like { base, .. }
            | ExprKind::Is { base, .. }
            | ExprKind::Properties(base)
            | ExprKind::Unary { operand: base, .. } => $f(base),
            ExprKind::Binary { lhs, rhs, .. } => {
                $f(lhs);
                $f(rhs);
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                $f(cond);
                $f(then);
                $f(otherwise);
            }
        }
    };
}

impl Expr {
    /// Calls `f` on each expression directly inside this one, in source order.
    pub fn for_each_child<'e>(&'e self, mut f: impl FnMut(&'e Expr)) {
        for_each_child!(&self.kind, f, iter)
    }

    /// [`Expr::for_each_child`], for rewriting the children in place.
    pub(crate) fn for_each_child_mut(&mut self, mut f: impl FnMut(&mut Expr)) {
        for_each_child!(&mut self.kind, f, iter_mut)
    }
}

/// The four request variables of the AuthZEN information model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    Subject,
    Action,
    Resource,
    Context,
}

impl Var {
    pub fn as_str(self) -> &'static str {
        match self {
            Var::Subject => "subject",
            Var::Action => "action",
            Var::Resource => "resource",
            Var::Context => "context",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Not,
    Neg,
    /// `s is empty`: written after its operand.
    IsEmpty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    /// `s contains all t`: every element of `t` is in `s`.
    ContainsAll,
    /// `s contains any t`: some element of `t` is in `s`.
    ContainsAny,
    Add,
    Sub,
    /// `a * b`: the product of two `Int`s (an overflow is an error, as for `+` and `-`).
    Mul,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Contains => "contains",
            BinaryOp::ContainsAll => "contains all",
            BinaryOp::ContainsAny => "contains any",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A duration literal (`24h`, `1h30m`), in milliseconds.
    Duration(i64),
    /// `User::"alice"`
    Entity {
        ty: Ident,
        id: String,
    },
    /// `[a, b, c]`
    Set(Vec<Expr>),
    /// `{ mfa: true, "x-y": 1 }`
    Record(Vec<(Name, Expr)>),
    Var(Var),
    /// A reference to a `let`.
    Let(Ident),
    /// `e.name` or `e["name"]`: an attribute of an entity or a field of a record.
    Attr {
        base: Box<Expr>,
        name: Name,
    },
    /// `e.properties`: what the caller sent about the subject, action or resource.
    Properties(Box<Expr>),
    /// `now()`, `hour(now(), "Europe/Paris")`, `ip("10.0.0.0/8")`
    Call {
        function: Ident,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `e has name`
    Has {
        base: Box<Expr>,
        name: Name,
    },
    /// `e like "*.jpg"`
    Like {
        base: Box<Expr>,
        pattern: StrLit,
    },
    /// `e is User`
    Is {
        base: Box<Expr>,
        ty: Ident,
    },
    /// `if c then a else b`: `a` when `c` is true, `b` when it is false; only the branch taken
    /// is evaluated.
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `action in write`, `action in [read, write]`, `action == read`: the requested action
    /// tested against declared action and group names (never `let`s).
    ActionTest(ActionTest),
}

/// A test of the requested action; see [`ExprKind::ActionTest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionTest {
    pub op: ActionOp,
    pub names: Vec<Name>,
    /// The names were written in brackets (`action in [read]`); only with `in`.
    pub list: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionOp {
    /// The action is the named one or beneath it (through groups and `action … in …`).
    In,
    /// The action is exactly the named one.
    Eq,
    /// The action is not exactly the named one.
    Ne,
}

impl ActionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOp::In => "in",
            ActionOp::Eq => "==",
            ActionOp::Ne => "!=",
        }
    }
}

/// `test "name" { ... }`: expectations about decisions, run by `warden test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestBlock {
    pub annotations: Vec<Annotation>,
    pub name: StrLit,
    pub statements: Vec<TestStatement>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestStatement {
    /// `data "tests/photos.json"`: a data file, relative to the policy file.
    Data(StrLit),
    /// `given User::"carol" in [Group::"staff"] { department: "legal" }`
    Given(GivenEntity),
    /// `given role curator for User::"carol" on Album::"a1"`
    GivenRole(GivenRole),
    Expect(Expectation),
}

/// An entity reference where only a literal may stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRef {
    pub ty: Ident,
    pub id: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenEntity {
    pub entity: EntityRef,
    pub parents: Vec<EntityRef>,
    pub attributes: Vec<(Name, Expr)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenRole {
    pub role: Ident,
    pub subject: EntityRef,
    /// `None` binds the role globally.
    pub on: Option<EntityRef>,
    pub span: Span,
}

/// `allow User::"alice" delete Photo::"p1" with context { mfa: true } by "owner-delete"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub verdict: Effect,
    pub subject: EntityRef,
    pub action: Name,
    pub resource: EntityRef,
    pub with: Vec<WithClause>,
    /// A fixed `now()` for this expectation alone.
    pub at: Option<Expr>,
    /// The `@id` of the rule that must decide.
    pub by: Option<StrLit>,
    pub span: Span,
}

/// What the simulated caller sends beside the three entities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WithClause {
    /// `with context { ... }`
    Context(Expr),
    /// `with subject properties { ... }` (likewise `action`, `resource`)
    Properties(Var, Expr),
    /// `with capability greenhouse_key { actions: ["water"], holder: User::"nadia" }`: the
    /// request presents a valid token of this capability, with these caveats.
    Capability(Ident, Option<Expr>),
}

/// `limit uploads: 100 upload on Album per hour per subject if subject.plan == "free"`: how
/// many allowed requests of the actions (on the types) one key may make in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    pub count: i64,
    pub count_span: Span,
    pub actions: Actions,
    /// Resource types the limit applies to; empty means any type.
    pub resource_types: Vec<Ident>,
    pub period: LimitPeriod,
    /// What the requests are counted by: `subject`, `context.ip`, ...
    pub key: Expr,
    pub condition: Option<Condition>,
    pub span: Span,
}

/// `per hour`, `per 10m`, or a calendar period in a time zone: `per month in "Europe/Paris"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitPeriod {
    pub unit: PeriodUnit,
    pub zone: Option<StrLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeriodUnit {
    /// A duration literal, in milliseconds.
    Duration(i64, Span),
    /// `second`, `minute`, `hour`, `day`, `week` or `month`.
    Word(Ident),
}
