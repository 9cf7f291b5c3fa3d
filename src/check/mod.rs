//! Names, declarations, types and lints: everything that can be known about a policy directory
//! before any request arrives.
//!
//! [`check`] reads every parsed file of a directory together (names resolve across files) and
//! returns the [`Schema`] with every error and warning found. [`crate::engine::load_directory`]
//! runs it when the directory parsed without errors (checking a half-parsed directory would
//! mostly report the consequences of the syntax errors).
//!
//! # The guarantee: what a later stage may rely on
//!
//! The checked program is the syntax tree (already well-formed) plus the [`Schema`]. When
//! [`check`] reports no error (warnings are allowed):
//!
//! - every entity type, action, action group, role, `let`, function and rule id that is named
//!   anywhere resolves (in dynamic mode, see below, entity type and action names are accepted
//!   as they are); declarations are unique; groups, roles and `let`s have no cycles;
//! - every expression nests at most [`MAX_DEPTH`] levels deep with the `let`s it names
//!   expanded (`warden::check::too_deep`): compiling and evaluating recurse that deep at most;
//! - every expression is well-typed: operators receive operands they are defined on, `==`
//!   compares values of one type, conditions are `Bool`, literal arguments (`time`,
//!   `duration`, `ip`, time zones, `like` patterns) are valid. What remains for run time is
//!   what is *dynamic*: undeclared `context` and `properties`, every value of a directory
//!   without declarations, and the type of `subject` among the declared types;
//! - every read of an optional attribute is guarded by a `has` test on the same path that
//!   is true wherever the read is evaluated.
//!
//! # Declarations
//!
//! - Entity types, actions, action groups and roles are declared once per directory; a second
//!   declaration of a name is an error (`warden::check::duplicate`) and only the first is used.
//!   An action and an action group may not share a name. An entity type may not take a built-in
//!   type's name (`warden::check::reserved`).
//! - Types: `Bool`, `Int`, `String`, `Time`, `Duration`, `Ip`, `Decimal`, `Set<T>`, records
//!   `{ a: T, b?: U }` and declared entity type names. Before any pass reads them, entity type
//!   names are made full (`acme::User`) by the `namespace` module, from each file's
//!   `namespace` and the directory's declarations. `properties` is reserved: it is never an
//!   attribute or field name, because `e.properties` always means what the caller sent.
//! - Action groups are flattened into [`Schema::action_groups`]; a group may contain groups;
//!   a cycle is an error naming it (`warden::check::group_cycle`).
//! - Roles: [`schema::Role::inherits`] lists the direct parents and
//!   [`Schema::role_closure`] walks the transitive closure; inheriting an undeclared role is an
//!   error; a cycle is an error naming it (`warden::check::role_cycle`).
//! - Dynamic mode: a directory without any `entity` declaration accepts every entity type name
//!   (`User::"x"`, `on Foo`, `is Foo`) and every attribute; one without any `action`
//!   declaration accepts every action name. Once one entity type (or action) is declared,
//!   every use of an undeclared one is an error with the nearest declared name suggested.
//!
//! # Names
//!
//! - `let`s are unique across the directory and may use earlier or later `let`s (in any file);
//!   a cycle is an error naming it. A `let` is evaluated once per request, whatever the rule,
//!   so inside a `let` `resource` may be any declared type and `context` and
//!   `action.properties` are dynamic.
//! - `@id("...")` may stand on rules and on grants inside roles, nowhere else; ids are unique
//!   across the directory, non-empty, and given once per rule. `@doc("...")` needs a value.
//!   Any other annotation is a warning.
//! - Tests: `by "id"` must name a rule's `@id`; entity types, actions and roles named in
//!   expectations and `given` must be declared; an expectation names one action, never a
//!   group; `given` parents must be of a declared parent type; `given` attributes, `with
//!   context` and `with ... properties` are checked against the declarations (unknown names,
//!   types, and missing required fields); `at` is a `Time`. Test values are literals: request
//!   variables and `let`s are errors there.
//!
//! # Variables
//!
//! - `subject`: an entity of any declared type. Reading `subject.a` is allowed when at least
//!   one declared type has `a` (a subject of another type makes the read an error at run
//!   time: an `allow` then does not apply, a `deny` denies); it is an error when none has it,
//!   and when the declaring types disagree on its type. `subject is User and ...` narrows it.
//! - `resource`: an entity of the rule's `on` types; without `on`, of the types the rule's
//!   actions apply to (when every action declares some); otherwise of any declared type.
//! - `action`: only `action.properties`; the actions are named in the rule head.
//! - `context`: a record typed when every action the rule can match declares a `context`
//!   (`*`, an action without a context declaration, or a `let` leaves it dynamic). With several
//!   actions, a field declared by only some of them is optional (it needs `context has f`), and
//!   a field they declare with different types is an error when read.
//! - `.properties` on `subject`/`resource` is typed when every possible type declares
//!   `properties: {...}` (dynamic otherwise); on `action`, like `context`. It exists only on
//!   those three variables: stored entities have attributes, not properties.
//! - A field of a typed record or entity that is not declared is an error ("unknown
//!   attribute", with a suggestion); a dynamic value allows any access.
//!
//! # Optional attributes
//!
//! Reading `e.a` where `a` is declared optional (`a?: T`) needs `e has a` to be known true:
//! the read must be on the right of an `and` whose left operand contains `e has a` for the same
//! path (`e` is a chain of attribute reads from a variable or a `let`), directly or through
//! further `and`s. Nothing else guards: not `or`, not `not`, not a `has` inside a `let` used
//! elsewhere. Paths through optional fields need a guard at each level
//! (`subject has ticket and subject.ticket has note and subject.ticket.note == "x"`). An
//! unguarded read is an error everywhere (rules, grants, `let`s); in a `deny` it has its own
//! code (`unguarded_optional_in_deny`), because a `deny` whose condition errors denies every
//! request lacking the attribute.
//!
//! # Operators
//!
//! `==`/`!=`: one type on both sides (two entity types that cannot be the same are an error:
//! "always false"); `<` `<=` `>` `>=`: two `Int`s, `Time`s, `Duration`s or `Decimal`s; `*`:
//! `Int * Int`; `+`/`-`: `Int ± Int`,
//! `Duration ± Duration`, `Time ± Duration → Time`, `Duration + Time → Time`,
//! `Time - Time → Duration`; unary `-`: `Int`, `Duration`; `and`/`or`/`not`: `Bool`; `in`:
//! entity in entity, entity in `Set<entity>`, `Ip in Ip` (range); `contains`: `Set<T>`
//! contains `T`; `has`: on entities and records, and the attribute must be declared on some
//! possible type; `like`: `String like "glob"` (`*` any text, `\*` a star, `\\` a
//! backslash); `is`: an entity is a declared type (a type the value can never have is an
//! error); set literals are homogeneous (entities of several types make a set of their
//! union); conditions are `Bool`. A dynamic operand defers the check to run time. The
//! functions are listed in the `functions` module.
//!
//! # Lints (warnings)
//!
//! - `never_fires`: a rule or grant `on T...` names an action (or group) declared with
//!   resource types of which none is among its `on` types: for that action it can never fire.
//! - `shadowed`: an `allow` or grant whose every request is covered by a `deny` without a
//!   condition (or with a constant-true one): the deny's actions include the allow's after
//!   group expansion (`*` includes all; an allow with `*` is only covered by `deny *`), and
//!   the deny's resource types include the allow's (a rule without `on` covers the types its
//!   actions apply to when all declare some, else all types).
//! - `unused_let`: a `let` used by no rule, grant, test or other `let` (names starting with
//!   `_` are exempt).
//! - `unused_role`: a role with no grants and no inherited roles: holding it gives nothing.
//!   (Whether a role is bound in data is the data checker's question.)
//! - `constant_condition`: a whole condition, or a part of a condition or `let`, that folds to
//!   a constant: literals, `not`, `and`/`or` in short-circuit order (`false and x` is false;
//!   `x and false` is not folded, `x` may error), comparisons of two literals. A plain
//!   `true`/`false` inside a larger expression, or as a `let`'s whole value, is left alone.
//! - `unknown_annotation`: an annotation other than `@id` and `@doc`.
//! - `claim_overrides_deny` (only where the server's configuration is known: `warden serve`,
//!   `warden check --config`): a `jwt_claims` mapping names an attribute that a `deny` reads of
//!   `subject` (directly or through a `let`), so a token's claim can turn the `deny` off.

pub mod claims;
mod declare;
mod depth;
pub mod error;
mod functions;
mod graph;
pub mod limits;
mod lint;
mod namespace;
mod resolve;
pub mod route_table;
pub(crate) mod routes;
pub mod schema;
mod suggest;
mod types;

pub use declare::BUILTIN_TYPES;
pub use depth::MAX_DEPTH;
pub use namespace::qualify_names;
pub use schema::Schema;

use crate::source::{Diagnostic, Span};
use crate::syntax::ParsedFile;

/// The result of checking a directory.
#[derive(Debug)]
pub struct Checked {
    /// The resolved declarations (possibly partial when there are errors).
    pub schema: Schema,
    /// Errors and warnings, in the order found (callers sort them).
    pub diagnostics: Vec<Diagnostic>,
    /// The type given to each checked expression, when asked for ([`check_recording_types`]).
    pub types: Vec<ExprType>,
}

/// The type the checker gave one expression: what an editor shows on hover and offers after
/// a `.`.
#[derive(Clone, Debug)]
pub struct ExprType {
    /// The file, by index in the checked files.
    pub file: usize,
    pub span: Span,
    /// As messages write it: `Photo | Album`, `Set<String>`.
    pub ty: String,
    /// The entity types the value may have (empty when it is not an entity of declared type),
    /// or, with `properties`, whose caller-sent `properties` it is.
    pub entity_types: Vec<String>,
    pub properties: bool,
    /// The fields of a record value, with their types (an entity's are in the schema).
    pub fields: Vec<(String, String)>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks every file of a policy directory together.
pub fn check(files: &[ParsedFile]) -> Checked {
    check_with(files, false)
}

/// [`check`], also keeping the type of every expression (for an editor's hover and completion).
pub(crate) fn check_recording_types(files: &[ParsedFile]) -> Checked {
    check_with(files, true)
}

fn check_with(files: &[ParsedFile], record_types: bool) -> Checked {
    let mut ctx = Ctx::new(files);
    ctx.types = record_types.then(Vec::new);
    let (schema, declared) = declare::declare(&mut ctx);
    let names = resolve::resolve(&mut ctx);
    depth::check_depth(&mut ctx, &names);
    types::check_types(&mut ctx, &schema, &declared, &names);
    lint::lint(&mut ctx, &schema, &names);
    limits::check_limits(&mut ctx);
    let mut route_errors = Vec::new();
    routes::table(files, &schema, &mut |file, error| {
        route_errors.push((file, error))
    });
    for (file, error) in route_errors {
        ctx.report(file, error);
    }
    Checked {
        schema,
        diagnostics: ctx.diagnostics,
        types: ctx.types.unwrap_or_default(),
    }
}

/// A place in the directory: a span in one of the checked files (by index).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc {
    pub file: usize,
    pub span: Span,
}

/// What every pass shares: the files, and the diagnostics found so far.
pub(crate) struct Ctx<'a> {
    pub files: &'a [ParsedFile],
    pub diagnostics: Vec<Diagnostic>,
    /// Where expression types are kept, when they are asked for.
    pub types: Option<Vec<ExprType>>,
}

impl<'a> Ctx<'a> {
    pub fn new(files: &'a [ParsedFile]) -> Ctx<'a> {
        Ctx {
            files,
            diagnostics: Vec::new(),
            types: None,
        }
    }

    /// Records an error or warning whose spans point into file number `file`.
    pub fn report(&mut self, file: usize, error: impl miette::Diagnostic + Send + Sync + 'static) {
        let diagnostic = match self.files.get(file) {
            Some(parsed) => Diagnostic::in_file(error, &parsed.source),
            None => Diagnostic::new(error),
        };
        self.diagnostics.push(diagnostic);
    }

    /// `file:line:column`, for pointing at another file in a help line.
    pub fn location(&self, loc: Loc) -> String {
        match self.files.get(loc.file) {
            Some(parsed) => {
                let (line, column) = parsed.source.line_col(loc.span.start as usize);
                format!("`{}:{line}:{column}`", parsed.source.name())
            }
            None => "another file".to_string(),
        }
    }

    /// `other`'s span, when it is in file `here` and so can be a second label.
    pub(crate) fn same_file(&self, here: usize, other: Loc) -> Option<Span> {
        (other.file == here).then_some(other.span)
    }
}

#[cfg(test)]
mod tests;
