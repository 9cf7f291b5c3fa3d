//! Text → syntax tree, and back: the logos lexer, the lalrpop parser, and the formatter.

pub mod decimal;
pub mod error;
pub mod fmt;
pub mod lexer;
pub mod parser;
pub mod token;

pub use fmt::format_file;
pub use lexer::Comment;
pub use parser::{ParsedFile, parse};

use crate::source::{Diagnostic, SourceFile};

/// A file printed in the canonical layout, or the diagnostics that stop it: a file that does
/// not parse is not printed, since a partial tree would drop the items that did not parse.
pub(crate) fn format_source(source: &SourceFile) -> Result<String, Vec<Diagnostic>> {
    let (parsed, diagnostics) = parse(source);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok(format_file(&parsed))
}
