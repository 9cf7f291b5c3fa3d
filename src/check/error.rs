//! Check diagnostics: one variant, and one `code`, per kind of mistake.
//!
//! Errors stop a directory from loading; lints are warnings (`warden check --deny-warnings`
//! turns them into failures). Messages are lowercase without a final period, put the user's
//! words in backticks, and every one carries a `help` that says what to do.

use crate::source::Span;

/// An entity of an enumerated type (`entity Color enum [...]`) named with an id the type does
/// not list: in a policy, a test, a data file or a value a data file or request decodes. One
/// mistake wherever it is made, so one error; [`Schema::unknown_enum_id`] finds it.
///
/// [`Schema::unknown_enum_id`]: crate::check::schema::Schema::unknown_enum_id
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{ty}` has no entity {id}")]
#[diagnostic(code(warden::unknown_enum_id))]
pub struct UnknownEnumId {
    pub ty: String,
    /// The id as a string literal (`"gren"`).
    pub id: String,
    #[label("not one of the ids `{ty}` lists")]
    pub span: Span,
    #[help]
    pub help: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CheckError {
    #[error("{message}")]
    #[diagnostic(code(warden::check::route))]
    Route {
        message: String,
        #[label("{label}")]
        span: Span,
        label: String,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::route_conflict))]
    RouteConflict {
        message: crate::check::route_table::InsertError,
        #[label("this route")]
        span: Span,
        #[label("conflicts with this one")]
        first: Option<Span>,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::capability))]
    Capability {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::limit))]
    Limit {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{what} `{name}` is declared twice")]
    #[diagnostic(code(warden::check::duplicate))]
    Duplicate {
        what: &'static str,
        name: String,
        #[label("declared again here")]
        span: Span,
        #[label("first declared here")]
        first: Option<Span>,
        #[help]
        help: String,
    },

    #[error("rule id `{id}` is used twice")]
    #[diagnostic(code(warden::check::duplicate_id))]
    DuplicateId {
        id: String,
        #[label("used again here")]
        span: Span,
        #[label("first used here")]
        first: Option<Span>,
        #[help]
        help: String,
    },

    #[error("unknown type `{name}`")]
    #[diagnostic(code(warden::check::unknown_type))]
    UnknownType {
        name: String,
        #[label("not declared")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::namespace))]
    Namespace {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown namespace `{name}`")]
    #[diagnostic(code(warden::check::unknown_namespace))]
    UnknownNamespace {
        name: String,
        #[label("no file declares this namespace")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("type `{name}` is not in scope")]
    #[diagnostic(code(warden::check::type_not_in_scope))]
    TypeNotInScope {
        name: String,
        #[label("declared in another namespace")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("type `{name}` is ambiguous")]
    #[diagnostic(code(warden::check::ambiguous_type))]
    AmbiguousType {
        name: String,
        #[label("declared in several namespaces")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{what} `{name}` is not in scope")]
    #[diagnostic(code(warden::check::not_in_scope))]
    NotInScope {
        what: &'static str,
        name: String,
        #[label("declared in another namespace")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{what} `{name}` is ambiguous")]
    #[diagnostic(code(warden::check::ambiguous_name))]
    AmbiguousName {
        what: &'static str,
        name: String,
        #[label("declared in several namespaces")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown action `{name}`")]
    #[diagnostic(code(warden::check::unknown_action))]
    UnknownAction {
        name: String,
        #[label("not declared")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("`{name}` is an action group, not an action")]
    #[diagnostic(code(warden::check::not_an_action))]
    NotAnAction {
        name: String,
        #[label("a request names one action")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown role `{name}`")]
    #[diagnostic(code(warden::check::unknown_role))]
    UnknownRole {
        name: String,
        #[label("not declared")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown name `{name}`")]
    #[diagnostic(code(warden::check::unknown_let))]
    UnknownLet {
        name: String,
        #[label("no `let` has this name")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown function `{name}`")]
    #[diagnostic(code(warden::check::unknown_function))]
    UnknownFunction {
        name: String,
        #[label("not a function")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("`{name}` is not an attribute of {on}")]
    #[diagnostic(code(warden::check::unknown_attribute))]
    UnknownAttribute {
        on: String,
        name: String,
        #[label("unknown attribute")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("the declarations of `{name}` disagree on its type")]
    #[diagnostic(code(warden::check::attribute_conflict))]
    AttributeConflict {
        name: String,
        #[label("{types}")]
        span: Span,
        types: String,
        #[help]
        help: String,
    },

    #[error("no rule has the id `{id}`")]
    #[diagnostic(code(warden::check::unknown_rule_id))]
    UnknownRuleId {
        id: String,
        #[label("unknown rule id")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("role inheritance cycle: {cycle}")]
    #[diagnostic(
        code(warden::check::role_cycle),
        help(
            "a role cannot inherit from itself, directly or through others; remove one of these inheritances"
        )
    )]
    RoleCycle {
        cycle: String,
        #[label("this inheritance closes the cycle")]
        span: Span,
    },

    #[error("{kind} cycle: {cycle}")]
    #[diagnostic(
        code(warden::check::group_cycle),
        help(
            "a group or action cannot be beneath itself, directly or through other groups and actions; remove one of these members or parents"
        )
    )]
    GroupCycle {
        /// What the loop is made of: `action group` (groups' members) or `action` (`in`).
        kind: &'static str,
        cycle: String,
        #[label("this link closes the cycle")]
        span: Span,
    },

    #[error("`subject` may be a {lacking}, which has no attribute `{name}`")]
    #[diagnostic(code(warden::check::subject_attribute))]
    SubjectAttribute {
        name: String,
        lacking: String,
        #[label("not on every subject type these actions accept")]
        span: Span,
        #[help]
        help: String,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownEnumId(#[from] UnknownEnumId),

    #[error("`Action::{id}` is Cedar's spelling of an action")]
    #[diagnostic(code(warden::check::cedar_action))]
    CedarAction {
        id: String,
        #[label("the requested action is tested by name")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("`let` cycle: {cycle}")]
    #[diagnostic(
        code(warden::check::let_cycle),
        help("a `let` cannot use itself, directly or through other `let`s; break the cycle")
    )]
    LetCycle {
        cycle: String,
        #[label("this use closes the cycle")]
        span: Span,
    },

    #[error("expression is nested more than {limit} levels deep")]
    #[diagnostic(code(warden::check::too_deep))]
    TooDeep {
        limit: usize,
        #[label("{depth} levels deep with its `let`s expanded")]
        span: Span,
        depth: usize,
        #[help]
        help: String,
    },

    #[error("`{name}` is reserved")]
    #[diagnostic(code(warden::check::reserved))]
    Reserved {
        name: String,
        #[label("reserved name")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("`{op}` compares `{left}` with `{right}`")]
    #[diagnostic(code(warden::check::compare))]
    Compare {
        op: &'static str,
        left: String,
        right: String,
        #[label("`{left}` here")]
        left_span: Span,
        #[label("`{right}` here")]
        right_span: Span,
        #[help]
        help: String,
    },

    #[error("comparing `{left}` with `{right}` is always false")]
    #[diagnostic(code(warden::check::compare_entities))]
    CompareEntities {
        left: String,
        right: String,
        #[label("`{left}` here")]
        left_span: Span,
        #[label("`{right}` here")]
        right_span: Span,
        #[help]
        help: String,
    },

    #[error("`{op}` cannot be applied to {operands}")]
    #[diagnostic(code(warden::check::operand))]
    Operand {
        op: &'static str,
        operands: String,
        #[label("{found}")]
        span: Span,
        found: String,
        #[help]
        help: String,
    },

    #[error("a condition must be `Bool`, but this is `{found}`")]
    #[diagnostic(code(warden::check::condition))]
    Condition {
        found: String,
        #[label("`{found}`")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::arguments))]
    Arguments {
        message: String,
        #[label("{label}")]
        span: Span,
        label: String,
        #[help]
        help: String,
    },

    #[error("expected `{expected}`, found `{found}`")]
    #[diagnostic(code(warden::check::type_mismatch))]
    TypeMismatch {
        expected: String,
        found: String,
        #[label("`{found}`")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("invalid {what} `{text}`")]
    #[diagnostic(code(warden::check::literal))]
    InvalidLiteral {
        what: &'static str,
        text: String,
        #[label("{reason}")]
        span: Span,
        reason: String,
        #[help]
        help: String,
    },

    #[error("unknown time zone `{zone}`")]
    #[diagnostic(code(warden::check::time_zone))]
    UnknownZone {
        zone: String,
        #[label("not in the time zone database")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("invalid `like` pattern")]
    #[diagnostic(
        code(warden::check::pattern),
        help(
            "in a pattern `*` matches any text and `\\*` a literal star; no other `\\` escape exists"
        )
    )]
    Pattern {
        #[label("{reason}")]
        span: Span,
        reason: String,
    },

    #[error("optional attribute `{attr}` is read without a `has` guard")]
    #[diagnostic(code(warden::check::unguarded_optional))]
    Unguarded {
        attr: String,
        #[label("may be absent")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("this `deny` reads optional attribute `{attr}` without a `has` guard")]
    #[diagnostic(code(warden::check::unguarded_optional_in_deny))]
    UnguardedDeny {
        attr: String,
        #[label("may be absent: the condition then errors, and a `deny` that errors denies")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("the elements of a set must have one type, but this set mixes `{first}` and `{other}`")]
    #[diagnostic(code(warden::check::set_elements))]
    SetElements {
        first: String,
        other: String,
        #[label("`{other}`")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("the branches of this `if` have different types, `{then}` and `{otherwise}`")]
    #[diagnostic(code(warden::check::if_branches))]
    IfBranches {
        then: String,
        otherwise: String,
        #[label("`{then}`")]
        then_span: Span,
        #[label("`{otherwise}`")]
        otherwise_span: Span,
        #[help]
        help: String,
    },

    #[error("`.properties` is only on `subject`, `action` and `resource`")]
    #[diagnostic(code(warden::check::properties))]
    Properties {
        #[label("{found}")]
        span: Span,
        found: String,
        #[help]
        help: String,
    },

    #[error("`action` has no value of its own besides `action.properties`")]
    #[diagnostic(
        code(warden::check::action_value),
        help(
            "name the actions a rule covers in its head (`allow view, list on Album`), test the requested one with `action in write` or `action == view`; read what the caller sent with `action.properties`"
        )
    )]
    ActionValue {
        #[label("used as a value here")]
        span: Span,
    },

    #[error("`{what}` is never of type `{ty}` here")]
    #[diagnostic(code(warden::check::impossible_is))]
    ImpossibleIs {
        what: String,
        ty: String,
        #[label("always false")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("{message}")]
    #[diagnostic(code(warden::check::annotation))]
    Annotation {
        message: String,
        #[label("{label}")]
        span: Span,
        label: String,
        #[help]
        help: String,
    },

    #[error("`{name}` is not available in a test")]
    #[diagnostic(
        code(warden::check::test_variable),
        help(
            "test values are literals: entities (`User::\"alice\"`), strings, numbers, sets, records and `time(...)`, `duration(...)`, `ip(...)`"
        )
    )]
    TestVariable {
        name: String,
        #[label("only literal values here")]
        span: Span,
    },

    #[error("`{child}` cannot have a parent of type `{parent}`")]
    #[diagnostic(code(warden::check::parent_type))]
    ParentType {
        child: String,
        parent: String,
        #[label("not a declared parent type of `{child}`")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("missing required {what} `{name}`")]
    #[diagnostic(code(warden::check::missing_field))]
    MissingField {
        what: &'static str,
        name: String,
        #[label("`{name}` is not given")]
        span: Span,
        #[help]
        help: String,
    },
}

/// Warnings: each a decidable rule, documented in the module doc of [`crate::check`].
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum Lint {
    #[error("`{action}` never applies to {types}")]
    #[diagnostic(code(warden::check::never_fires), severity(Warning))]
    NeverFires {
        action: String,
        types: String,
        #[label("can never match here")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("this `allow` is always overridden by an unconditional `deny`")]
    #[diagnostic(code(warden::check::shadowed), severity(Warning))]
    Shadowed {
        #[label("can never allow anything")]
        span: Span,
        #[label("this `deny` covers every request the `allow` does")]
        deny: Option<Span>,
        #[help]
        help: String,
    },

    #[error("`let {name}` is never used")]
    #[diagnostic(code(warden::check::unused_let), severity(Warning))]
    UnusedLet {
        name: String,
        #[label("unused")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("role `{name}` grants nothing")]
    #[diagnostic(code(warden::check::unused_role), severity(Warning))]
    UnusedRole {
        name: String,
        #[label("no grants and no inherited roles")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("this condition is always {value}")]
    #[diagnostic(code(warden::check::constant_condition), severity(Warning))]
    ConstantCondition {
        value: bool,
        #[label("always `{value}`")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("claim `{claim}` sets `subject.{attribute}`, which a `deny` reads")]
    #[diagnostic(code(warden::check::claim_overrides_deny), severity(Warning))]
    ClaimOverridesDeny {
        claim: String,
        attribute: String,
        #[label("a token's `{claim}` decides this")]
        span: Span,
        #[help]
        help: String,
    },

    #[error("unknown annotation `@{name}`")]
    #[diagnostic(code(warden::check::unknown_annotation), severity(Warning))]
    UnknownAnnotation {
        name: String,
        #[label("ignored")]
        span: Span,
        #[help]
        help: String,
    },
}
