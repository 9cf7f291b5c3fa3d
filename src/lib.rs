//! Warden: a policy-decision service.
#![forbid(unsafe_code)]

pub mod ast;
pub mod audit;
pub mod bundle;
pub mod capability;
pub mod check;
pub mod cli;
pub mod compile;
pub mod data;
pub mod engine;
pub mod eval;
pub mod gateway;
pub mod limit;
pub mod lsp;
pub mod program;
pub mod redis_url;
pub mod server;
pub mod source;
pub mod syntax;
pub mod testing;
