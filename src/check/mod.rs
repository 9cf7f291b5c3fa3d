//! Names, declarations, types and lints: everything that can be known about a policy directory
//! before any request arrives.
//!
//! [`check`] reads every parsed file of a directory together (names resolve across files) and
//! returns the [`Schema`] with every error and warning found.
//!
//! # Declarations
//!
//! - Entity types, actions, action groups and roles are declared once per directory; a second
//!   declaration of a name is an error (`warden::check::duplicate`) and only the first is used.
//!   An action and an action group may not share a name. An entity type may not take a built-in
//!   type's name (`warden::check::reserved`).
//! - Types: `Bool`, `Int`, `String`, `Time`, `Duration`, `Ip`, `Set<T>`, records
//!   `{ a: T, b?: U }` and declared entity type names. `properties` is reserved: it is never an
//!   attribute or field name, because `e.properties` always means what the caller sent.
//! - Action groups are flattened into [`Schema::action_groups`]; a group may contain groups;
//!   a cycle is an error naming it (`warden::check::group_cycle`).
//! - Roles: [`schema::Role::ancestors`] is the transitive closure of inheritance; inheriting
//!   an undeclared role is an error; a cycle is an error naming it (`warden::check::role_cycle`).
//! - Dynamic mode: a directory without any `entity` declaration accepts every entity type name
//!   (`User::"x"`, `on Foo`, `is Foo`); one without any `action` declaration accepts every
//!   action name. Once one entity type (or action) is declared, every use of an undeclared one
//!   is an error with the nearest declared name suggested.

pub mod declare;
pub mod error;
mod functions;
mod graph;
mod lint;
pub mod resolve;
pub mod schema;
mod suggest;
pub mod types;

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
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks every file of a policy directory together.
pub fn check(files: &[ParsedFile]) -> Checked {
    let mut ctx = Ctx::new(files);
    let (schema, declared) = declare::declare(&mut ctx);
    let names = resolve::resolve(&mut ctx);
    types::check_types(&mut ctx, &schema, &declared, &names);
    lint::lint(&mut ctx, &schema, &names);
    Checked {
        schema,
        diagnostics: ctx.diagnostics,
    }
}

/// A place in the directory: a span in one of the checked files (by index).
#[derive(Clone, Copy, Debug)]
pub struct Loc {
    pub file: usize,
    pub span: Span,
}

/// What every pass shares: the files, and the diagnostics found so far.
pub struct Ctx<'a> {
    pub files: &'a [ParsedFile],
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(files: &'a [ParsedFile]) -> Ctx<'a> {
        Ctx {
            files,
            diagnostics: Vec::new(),
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
    pub fn same_file(&self, here: usize, other: Loc) -> Option<Span> {
        (other.file == here).then_some(other.span)
    }
}

#[cfg(test)]
mod tests;
