//! What the Cedar importer refuses or warns about, located in the Cedar input.

use crate::source::Span;

/// A problem with the Cedar input, or with turning it into Warden.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error("unexpected {found}")]
    #[diagnostic(code(warden::import::cedar::syntax))]
    Syntax {
        found: String,
        #[label("expected {expected}")]
        span: Span,
        expected: String,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::lexical))]
    Lexical {
        message: String,
        #[label("here")]
        span: Span,
    },
    #[error("Warden cannot say {construct} yet")]
    #[diagnostic(code(warden::import::cedar::unsupported))]
    Unsupported {
        construct: String,
        #[label("{construct}")]
        span: Span,
        #[help]
        help: String,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::invalid))]
    Invalid {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: Option<String>,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::json))]
    Json {
        message: String,
        #[help]
        help: Option<String>,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::unsupported_json))]
    UnsupportedJson {
        message: String,
        #[help]
        help: String,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::forbid_may_error), severity(Warning))]
    ForbidMayError {
        message: String,
        #[label("this `forbid` can error")]
        span: Span,
        #[help]
        help: String,
    },
    #[error("`action {op} Action::\"{group}\"` in policy `{policy}` is always {value}")]
    #[diagnostic(
        code(warden::import::cedar::pure_group),
        severity(Warning),
        help(
            "`{group}` is an action group no request names as its action, so Cedar's \
             comparison is always {value}; the imported rule says `{value}` there (`action in` \
             tests membership in a group)"
        )
    )]
    PureGroupCompared {
        op: &'static str,
        group: String,
        policy: String,
        value: bool,
        #[label("this policy compares `action` with a group")]
        span: Span,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::import::cedar::dropped), severity(Warning))]
    Dropped {
        message: String,
        #[label("here")]
        span: Span,
        #[help]
        help: String,
    },
}

impl ImportError {
    /// A problem in a JSON input (schema, entities, links), located by its JSON path.
    pub fn json(message: String) -> ImportError {
        ImportError::Json {
            message,
            help: None,
        }
    }
}
