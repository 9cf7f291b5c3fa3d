//! Warden: a policy-decision service.
//!
//! A policy directory is loaded once ([`engine::Engine::load`]: parse, check, compile, read
//! the data files) into a [`program::Program`]; each request is read from its AuthZEN body
//! ([`eval::request::read`]) and decided against it ([`eval::decide`]):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("policy.warden"),
//!     r#"
//! entity User
//! entity Doc { owner: User }
//! action read on Doc
//!
//! @id("owners-read")
//! allow read on Doc if resource.owner == subject
//! "#,
//! )?;
//! std::fs::write(
//!     dir.path().join("data.json"),
//!     r#"{"entities": [
//!         {"type": "User", "id": "alice"},
//!         {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}}
//!     ]}"#,
//! )?;
//! let engine = warden::engine::Engine::load(dir.path())
//!     .map_err(|failure| format!("{:?}", failure.diagnostics))?;
//!
//! let body = br#"{"subject": {"type": "User", "id": "alice"},
//!                 "action": {"name": "read"},
//!                 "resource": {"type": "Doc", "id": "d1"}}"#;
//! let request = warden::eval::request::read(&engine.program, body, jiff::Timestamp::now())?;
//! let decision = warden::eval::decide(&engine.program, &request);
//! assert!(decision.allowed);
//! # Ok(())
//! # }
//! ```
//!
//! The layers of the crate, and the rule that imports only point down them, are in
//! `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod ast;
pub mod audit;
pub mod bundle;
pub mod capability;
pub mod check;
pub mod cli;
pub mod compile;
pub mod data;
pub mod decide;
pub mod engine;
pub mod eval;
pub mod gateway;
pub mod import;
pub mod limit;
pub mod lsp;
pub mod policytest;
pub mod program;
pub mod redis_client;
pub mod server;
pub mod source;
pub mod syntax;
