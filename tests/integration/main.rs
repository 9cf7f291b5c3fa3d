//! The one integration test binary: a module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed assertion is how a test reports; helpers outside #[test] fns are tests too"
)]

mod bad_input;
mod cli;
mod fuzz_corpus;
mod syntax;
