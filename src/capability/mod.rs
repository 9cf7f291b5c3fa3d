//! Capability tokens: narrow, expiring grants that can be handed on and only ever narrowed.
//!
//! A token is a macaroon-style chain of lines: a header naming the key and the token id, then
//! caveats (`resource = Photo::"p1"`, `actions = view`, `expires = …`), each extending an
//! HMAC-SHA-256 chain rooted in a server key. Anyone may append a caveat ([`attenuate`], no key
//! needed); nobody can remove or change one without the key, and every caveat must hold for a
//! request, so appending only narrows. The exact format is in `docs/capabilities.md`.
//!
//! - [`token`]: the format — [`mint`], [`attenuate`], [`parse`], [`verify`], [`Caveat`],
//!   [`Token::check`] (do the caveats hold for a request);
//! - [`keys`]: the [`Keyring`] (key ids, secrets from files, rotation with a grace period);
//! - [`revocation`]: [`Revocations`], revoked ids in a concurrent set, persisted to a shared file
//!   that every process watches;
//! - [`shared`]: revocations shared by a fleet through Redis (stored, published, resynced).
//!
//! This module knows nothing of policies: which capability declarations exist, who may mint,
//! and what a verified token grants in a decision belong to the language and the engine.

pub mod keys;
pub mod mint;
pub mod present;
pub mod revocation;
pub mod shared;
pub mod token;

pub use keys::{Key, KeyError, KeySpec, KeyUnusable, Keyring};
pub use revocation::{DEFAULT_WATCH_INTERVAL, RevocationError, RevocationWatcher, Revocations};
pub use token::{
    Caveat, CaveatError, CaveatProblem, EntityText, Request, Token, TokenError, TokenShape, Unmet,
    attenuate, mint, parse, verify,
};
