mod ast_gen;
mod fmt;
mod fmt_cli;
