//! Warden: a policy-decision service.
#![forbid(unsafe_code)]

pub mod ast;
pub mod check;
pub mod cli;
pub mod engine;
pub mod source;
pub mod syntax;
