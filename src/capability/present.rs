//! A verified token, read against one program: what the evaluator checks per request
//! ([`crate::eval::capability::Presented`]).

use std::sync::Arc;

use dashmap::DashMap;
use jiff::Timestamp;

use crate::capability::{Caveat, Keyring, Revocations, Token, TokenError, verify};
use crate::data::value::{EntityRef, EntityUid};
use crate::eval::capability::Presented;
use crate::program::Program;

/// Why a presented token is not even considered: it does not verify, or it is revoked.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the token `{0}` is revoked")]
    Revoked(String),
    #[error("the token is {0} bytes long; tokens longer than {MAX_TOKEN_LEN} bytes are refused")]
    TooLong(usize),
    #[error("capabilities are not configured on this Warden")]
    NotConfigured,
}

/// The longest token honoured: far more than any real token (a minted one is about 400 bytes,
/// each caveat adds about 40), and it bounds what the cache of verified tokens can hold.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Everything needed to honour tokens: the keys, the revocations, this Warden's audience; and
/// the tokens verified lately, read against the serving program.
#[derive(Debug)]
pub struct Verifier {
    pub keyring: Keyring,
    pub revocations: Arc<Revocations>,
    pub audience: Option<String>,
    /// Verified tokens by text: verifying costs time per caveat (benches/capability.rs), and
    /// a client presents the same token many times. Revocation is looked up on every use.
    cache: DashMap<Box<str>, Cached>,
}

/// A verified token, read against one program.
#[derive(Debug)]
struct Cached {
    /// [`Program::serial`] of the program it was read against.
    serial: u64,
    presented: Arc<Presented>,
    /// The token's own id, then its parents': revoking any of them revokes it.
    lineage: Box<[Box<str>]>,
    /// When its key's grace ends, for a token under a retired key.
    usable_until: Option<Timestamp>,
}

/// How many verified tokens a [`Verifier`] keeps (then it starts afresh).
const CACHE_CAPACITY: usize = 10_000;

impl Verifier {
    pub fn new(keyring: Keyring, revocations: Arc<Revocations>, audience: Option<String>) -> Self {
        Verifier {
            keyring,
            revocations,
            audience,
            cache: DashMap::new(),
        }
    }

    /// Verifies `text` (signature chain, key, revocation of it or an ancestor) and reads it
    /// against `program`.
    pub fn present(
        &self,
        program: &Program,
        text: &str,
        now: Timestamp,
    ) -> Result<Arc<Presented>, Rejected> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(Rejected::TooLong(text.len()));
        }
        if let Some(hit) = self.cache.get(text)
            && hit.serial == program.serial
            && hit.usable_until.is_none_or(|until| now < until)
        {
            if let Some(revoked) = hit
                .lineage
                .iter()
                .find(|id| self.revocations.is_revoked(id))
            {
                return Err(Rejected::Revoked(revoked.to_string()));
            }
            return Ok(hit.presented.clone());
        }
        let token = verify(&self.keyring, text, now)?;
        if let Some(revoked) = self.revocations.revoked_lineage(&token) {
            return Err(Rejected::Revoked(revoked.to_string()));
        }
        let presented = Arc::new(resolve(program, &token, self.audience.as_deref()));
        let usable_until = self
            .keyring
            .keys()
            .iter()
            .find(|key| key.id() == token.key_id())
            .and_then(|key| key.retired())
            .and_then(|retired| retired.checked_add(self.keyring.grace()).ok());
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(
            Box::from(text),
            Cached {
                serial: program.serial,
                presented: presented.clone(),
                lineage: token.lineage().map(Box::from).collect(),
                usable_until,
            },
        );
        Ok(presented)
    }
}

/// [`Verifier::present`] on a Warden that may have no capability keys configured.
pub(crate) fn present_to(
    verifier: Option<&Verifier>,
    program: &Program,
    text: &str,
    now: Timestamp,
) -> Result<Arc<Presented>, Rejected> {
    verifier
        .ok_or(Rejected::NotConfigured)?
        .present(program, text, now)
}

/// Resolves a verified token's caveats against `program`'s entities. Caveats that can never
/// hold here (an audience this Warden is not, two different capability names) make the token
/// unusable, with the reason.
pub fn resolve(program: &Program, token: &Token, audience: Option<&str>) -> Presented {
    resolve_caveats(program, token.id(), token.caveats(), audience)
}

/// [`resolve`] for caveats that come from elsewhere than a verified token (the test runner's
/// `with capability`).
pub(crate) fn resolve_caveats(
    program: &Program,
    token_id: &str,
    caveats: &[Caveat],
    audience: Option<&str>,
) -> Presented {
    let entity =
        |text: &crate::capability::EntityText| match program.store.lookup(&text.ty, &text.id) {
            Some(id) => EntityRef::Known(id),
            None => EntityRef::Unknown(Arc::new(EntityUid {
                ty: Arc::from(text.ty.as_str()),
                id: Arc::from(text.id.as_str()),
            })),
        };
    let mut presented = Presented {
        token_id: token_id.into(),
        capability: Box::from(""),
        actions: Default::default(),
        resources: Default::default(),
        within: Default::default(),
        holders: Default::default(),
        expires: None,
        minter: None,
        unusable: None,
    };
    let mut names: Vec<&str> = Vec::new();
    for caveat in caveats {
        match caveat {
            Caveat::Capability(name) => names.push(name),
            Caveat::Resource(e) => presented.resources.push(entity(e)),
            Caveat::Within(e) => presented.within.push(entity(e)),
            Caveat::Holder(e) => presented.holders.push(entity(e)),
            Caveat::Actions(actions) => presented
                .actions
                .push(actions.iter().map(|a| Box::from(a.as_str())).collect()),
            Caveat::Expires(at) => {
                presented.expires = Some(presented.expires.map_or(*at, |e| e.min(*at)));
            }
            Caveat::Audience(wanted) => {
                if audience != Some(wanted.as_str()) {
                    presented.unusable = Some(match audience {
                        Some(ours) => format!(
                            "the token is for audience `{wanted}`, and this Warden is `{ours}`"
                        ),
                        None => format!(
                            "the token is for audience `{wanted}`, and this Warden has none configured"
                        ),
                    });
                }
            }
            Caveat::MintedBy(e) => {
                if presented.minter.is_none() {
                    presented.minter = Some(entity(e));
                }
            }
            Caveat::MintedAt(_) | Caveat::Parent(_) => {}
        }
    }
    match names.as_slice() {
        [] => presented.unusable = Some("the token names no capability".to_string()),
        [first, rest @ ..] => {
            presented.capability = Box::from(*first);
            if rest.iter().any(|name| name != first) {
                presented.unusable = Some("the token names two different capabilities".into());
            }
        }
    }
    presented
}
