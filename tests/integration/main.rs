//! The one integration test binary: a module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed assertion is how a test reports; helpers outside #[test] fns are tests too"
)]

mod actions;
mod alloc;
mod ast_gen;
mod audit;
mod bad_input;
mod bundle;
mod capability;
mod check;
mod cli;
mod cli_completions;
mod cli_eval;
mod data_files;
mod decide;
mod depth;
mod expressions;
mod fleet;
mod fmt;
mod fmt_cli;
mod fuzz_corpus;
mod gateway;
mod grpc;
mod import_cedar;
mod layers;
mod limits;
mod lsp;
mod namespaces;
mod numbers;
mod policy_tests;
mod readme;
mod reference;
mod reference_props;
mod scale;
mod server;
mod sidecar;
mod support;
mod syntax;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
