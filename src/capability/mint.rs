//! Minting is a decision: who may mint what, under which declaration.
//!
//! A minter is allowed every action it hands out on the resource (or the subtree's root) by
//! the policy as it stands, and the declaration's `mint if` condition holds with the minter as
//! `subject`. A capability the minter holds only through a token does not count: a token is
//! handed on by [`delegate`], which copies every restriction of the parent, never by minting.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value as JsonValue, json};

use crate::capability::{Caveat, EntityText, Token};
use crate::eval::request::{self, Parts};
use crate::eval::{self, Verified};
use crate::program::{Capability, Program};
use crate::source::suggest;

/// What a minter asks for.
#[derive(Clone, Debug)]
pub struct MintRequest {
    /// The capability declaration's name.
    pub capability: String,
    /// The minter: the subject of every mint decision.
    pub minter: EntityText,
    /// The minter's verified attributes, when a verified bearer token named it.
    pub verified: Option<Arc<Verified>>,
    /// The resource, or the root of the subtree when `within`.
    pub resource: EntityText,
    pub within: bool,
    /// `None`: every action the declaration carries.
    pub actions: Option<Vec<String>>,
    /// `None`: the declaration's longest lifetime.
    pub lifetime: Option<SignedDuration>,
    /// The subject the token is bound to; `None` makes a bearer token (delegable only).
    pub holder: Option<EntityText>,
    pub audience: Option<String>,
    /// The `context` of the mint decisions (actions that declare one need it).
    pub context: Option<JsonValue>,
}

/// What a holder asks for when handing a token on.
#[derive(Clone, Debug)]
pub(crate) struct DelegateRequest {
    /// Who hands it on: must be the parent's holder (when it has one).
    pub requester: EntityText,
    /// The new holder; `None` makes a bearer token.
    pub holder: Option<EntityText>,
    /// Fewer actions (`None`: the parent's).
    pub actions: Option<Vec<String>>,
    /// A shorter life (`None`: the parent's).
    pub lifetime: Option<SignedDuration>,
}

/// Why a token is not minted. [`MintError::forbidden`] tells a refusal by the policy (403)
/// from a request that cannot be right (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("unknown capability `{name}`{hint}")]
    Undeclared { name: String, hint: String },
    #[error("capability `{capability}` is not for `{ty}` (it is for {types})")]
    ResourceType {
        capability: String,
        ty: String,
        types: String,
    },
    #[error("capability `{capability}` does not carry `{action}` (it carries {carried})")]
    Action {
        capability: String,
        action: String,
        carried: String,
    },
    #[error("a token must carry at least one action")]
    NoActions,
    #[error("`{capability}` tokens live at most {most}; {asked} was asked")]
    Lifetime {
        capability: String,
        asked: String,
        most: String,
    },
    #[error("a lifetime must be longer than zero")]
    NotPositive,
    #[error(
        "capability `{0}` is not delegable: a token must name its holder, and cannot be handed on"
    )]
    NeedsHolder(String),
    #[error("`{minter}` may not `{action}` `{resource}`, so it cannot hand that on: {why}")]
    Denied {
        minter: String,
        action: String,
        resource: String,
        why: String,
    },
    #[error(
        "the `mint if` condition of `{capability}` does not hold for `{minter}`{}",
        unevaluable.as_ref().map(|why| format!(" (it could not be evaluated: {why})")).unwrap_or_default()
    )]
    Condition {
        capability: String,
        minter: String,
        /// Why the condition could not be evaluated, as the policy's explanation words it.
        unevaluable: Option<String>,
    },
    #[error("only the holder `{holder}` may hand this token on")]
    NotHolder { holder: String },
    #[error("the token to hand on has expired")]
    Expired,
    #[error("the token carries no `{0}` it could hand on")]
    NotCarried(String),
    #[error("the expiry is out of range")]
    ExpiryOutOfRange,
    #[error("the token names no capability")]
    NoCapability,
    /// The request the minter's right is checked with is not one.
    #[error(transparent)]
    Body(crate::eval::request::Malformed),
    #[error(transparent)]
    Request(crate::eval::request::RequestError),
}

impl MintError {
    /// True when the policy refused (the caller asked for something it may not have).
    pub(crate) fn forbidden(&self) -> bool {
        matches!(
            self,
            MintError::Denied { .. }
                | MintError::Condition { .. }
                | MintError::NotHolder { .. }
                | MintError::Expired
                | MintError::NotCarried(_)
        )
    }
}

fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn declared<'p>(program: &'p Program, name: &str) -> Result<&'p Capability, MintError> {
    match program.capability(name) {
        Some((_, capability)) => Ok(capability),
        None => Err(MintError::Undeclared {
            name: name.to_string(),
            hint: suggest(name, program.capabilities.iter().map(|c| &*c.name))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default(),
        }),
    }
}

fn lifetime_text(duration: SignedDuration) -> String {
    crate::syntax::fmt::duration_text(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// Decides a mint: the caveats of the new token, or why not.
pub fn authorize(
    program: &Program,
    ask: &MintRequest,
    now: Timestamp,
) -> Result<Vec<Caveat>, MintError> {
    let capability = declared(program, &ask.capability)?;
    if !capability.applies_to(&ask.resource.ty) {
        return Err(MintError::ResourceType {
            capability: ask.capability.clone(),
            ty: ask.resource.ty.clone(),
            types: quoted_list(capability.resource_types.iter().map(|t| &**t)),
        });
    }
    let actions: Vec<String> = match &ask.actions {
        None => capability.actions.iter().map(|a| a.to_string()).collect(),
        Some(actions) => {
            for action in actions {
                if !capability.carries(action) {
                    return Err(MintError::Action {
                        capability: ask.capability.clone(),
                        action: action.clone(),
                        carried: quoted_list(capability.actions.iter().map(|a| &**a)),
                    });
                }
            }
            let mut actions = actions.clone();
            actions.sort();
            actions.dedup();
            actions
        }
    };
    if actions.is_empty() {
        return Err(MintError::NoActions);
    }
    let most = SignedDuration::from_millis(capability.lifetime_ms);
    let lifetime = ask.lifetime.unwrap_or(most);
    if lifetime <= SignedDuration::ZERO {
        return Err(MintError::NotPositive);
    }
    if lifetime > most {
        return Err(MintError::Lifetime {
            capability: ask.capability.clone(),
            asked: lifetime_text(lifetime),
            most: lifetime_text(most),
        });
    }
    if !capability.delegable && ask.holder.is_none() {
        return Err(MintError::NeedsHolder(ask.capability.clone()));
    }

    for action in &actions {
        let request = decision_request(program, ask, action, now)?;
        let decision = eval::decide(program, &request);
        if !decision.allowed {
            return Err(MintError::Denied {
                minter: ask.minter.to_string(),
                action: action.clone(),
                resource: ask.resource.to_string(),
                why: eval::explain::verdict_line(program, &decision),
            });
        }
        if let Some(condition) = capability.mint {
            match eval::condition_holds(program, &request, condition) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(MintError::Condition {
                        capability: ask.capability.clone(),
                        minter: ask.minter.to_string(),
                        unevaluable: None,
                    });
                }
                Err(error) => {
                    return Err(MintError::Condition {
                        capability: ask.capability.clone(),
                        minter: ask.minter.to_string(),
                        unevaluable: Some(eval::explain::error_message(program, &error)),
                    });
                }
            }
        }
    }

    // Whole seconds: the token is shorter and reads better, and never outlives its lifetime.
    let now = whole_seconds(now);
    let expires = now
        .checked_add(lifetime)
        .map_err(|_| MintError::ExpiryOutOfRange)?;
    let mut caveats = vec![
        Caveat::Capability(ask.capability.clone()),
        if ask.within {
            Caveat::Within(ask.resource.clone())
        } else {
            Caveat::Resource(ask.resource.clone())
        },
        Caveat::Actions(actions),
        Caveat::Expires(expires),
    ];
    if let Some(holder) = &ask.holder {
        caveats.push(Caveat::Holder(holder.clone()));
    }
    if let Some(audience) = &ask.audience {
        caveats.push(Caveat::Audience(audience.clone()));
    }
    caveats.push(Caveat::MintedBy(ask.minter.clone()));
    caveats.push(Caveat::MintedAt(now));
    Ok(caveats)
}

fn whole_seconds(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// The request of one mint decision: the minter doing `action` on the resource.
fn decision_request(
    program: &Program,
    ask: &MintRequest,
    action: &str,
    now: Timestamp,
) -> Result<eval::Request, MintError> {
    let body = json!({
        "subject": { "type": ask.minter.ty, "id": ask.minter.id },
        "action": { "name": action },
        "resource": { "type": ask.resource.ty, "id": ask.resource.id },
        "context": ask.context.clone().unwrap_or_else(|| json!({})),
    });
    let parts = Parts::from_body(&body).map_err(MintError::Body)?;
    let mut request = request::from_parts(program, &parts, now).map_err(MintError::Request)?;
    request.verified = ask.verified.clone();
    Ok(request)
}

/// Hands a token on: a new token under the same capability, carrying every restriction of
/// `parent` (scope, actions, expiry, audience, lineage) but its holder, bound to the new
/// holder. Only the parent's holder may do it, and only for a `delegable` capability.
pub(crate) fn delegate(
    program: &Program,
    parent: &Token,
    ask: &DelegateRequest,
    now: Timestamp,
) -> Result<Vec<Caveat>, MintError> {
    let names: Vec<&str> = parent
        .caveats()
        .iter()
        .filter_map(|c| match c {
            Caveat::Capability(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let Some(name) = names.first() else {
        return Err(MintError::NoCapability);
    };
    let capability = declared(program, name)?;
    if !capability.delegable {
        return Err(MintError::NeedsHolder(name.to_string()));
    }
    for caveat in parent.caveats() {
        if let Caveat::Holder(holder) = caveat
            && *holder != ask.requester
        {
            return Err(MintError::NotHolder {
                holder: holder.to_string(),
            });
        }
    }
    let now = whole_seconds(now);
    let parent_expires = parent.expires().unwrap_or(now);
    if parent_expires <= now {
        return Err(MintError::Expired);
    }
    let mut caveats = Vec::new();
    for caveat in parent.caveats() {
        match caveat {
            Caveat::Capability(_)
            | Caveat::Resource(_)
            | Caveat::Within(_)
            | Caveat::Actions(_)
            | Caveat::Expires(_)
            | Caveat::Audience(_)
            | Caveat::Parent(_)
            // The minters stay, first to last: a subtree token is held to its first minter's
            // rights wherever it is used.
            | Caveat::MintedBy(_) => caveats.push(caveat.clone()),
            Caveat::Holder(_) | Caveat::MintedAt(_) => {}
        }
    }
    caveats.push(Caveat::Parent(parent.id().to_string()));
    if let Some(actions) = &ask.actions {
        for action in actions {
            let carried = capability.carries(action)
                && parent.caveats().iter().all(|c| match c {
                    Caveat::Actions(list) => list.contains(action),
                    _ => true,
                });
            if !carried {
                return Err(MintError::NotCarried(action.clone()));
            }
        }
        if actions.is_empty() {
            return Err(MintError::NoActions);
        }
        caveats.push(Caveat::Actions(actions.clone()));
    }
    if let Some(lifetime) = ask.lifetime {
        if lifetime <= SignedDuration::ZERO {
            return Err(MintError::NotPositive);
        }
        let expires = now
            .checked_add(lifetime)
            .map_err(|_| MintError::ExpiryOutOfRange)?;
        if expires < parent_expires {
            caveats.push(Caveat::Expires(expires));
        }
    }
    if let Some(holder) = &ask.holder {
        caveats.push(Caveat::Holder(holder.clone()));
    }
    caveats.push(Caveat::MintedBy(ask.requester.clone()));
    caveats.push(Caveat::MintedAt(now));
    Ok(caveats)
}
