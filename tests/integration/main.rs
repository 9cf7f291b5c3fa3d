mod ast_gen;
mod fmt;
