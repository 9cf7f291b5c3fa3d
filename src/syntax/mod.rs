//! Text → syntax tree, and back: the logos lexer, the lalrpop parser, and the formatter.

pub mod error;
pub mod fmt;
pub mod lexer;
pub mod parser;
pub mod token;

pub use fmt::format_file;
pub use lexer::Comment;
pub use parser::{ParsedFile, parse};
