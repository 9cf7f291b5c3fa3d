//! Capabilities at decision time: a token the caller presented, already verified (its HMAC
//! chain, key and revocation, by [`crate::capability`]) and read against the program, adds its
//! declaration's `allow` to the candidates when every caveat holds for the request. `deny`
//! rules are evaluated as always, so a token never overrides one.
//!
//! Every caveat is a condition that must hold: a token grants the intersection of what its
//! caveats allow, which is why appending a caveat can only narrow it.

use std::fmt;

use jiff::Timestamp;
use smallvec::SmallVec;

use crate::data::value::{EntityRef, Value};
use crate::program::{Program, RuleId};

use super::Request;

/// A verified capability token, its caveats resolved against one program.
#[derive(Clone, Debug, PartialEq)]
pub struct Presented {
    /// The token's id (what revocation and the audit log name).
    pub token_id: Box<str>,
    /// The capability it was minted under (`capability = NAME`).
    pub capability: Box<str>,
    /// Each `actions` caveat: the request's action must be in every one.
    pub actions: SmallVec<[Box<[Box<str>]>; 1]>,
    /// Each `resource` caveat: the request's resource must be each one.
    pub resources: SmallVec<[EntityRef; 1]>,
    /// Each `within` caveat: the request's resource must be each one or in it.
    pub within: SmallVec<[EntityRef; 1]>,
    /// Each `holder` caveat: the request's subject must be each one.
    pub holders: SmallVec<[EntityRef; 1]>,
    /// The earliest `expires` caveat.
    pub expires: Option<Timestamp>,
    /// The first `minted-by` caveat: whoever minted the token first (handing on keeps it).
    pub minter: Option<EntityRef>,
    /// A caveat that can never hold for this Warden (an `audience` it is not, or more than one
    /// `capability` name), found when the token was read.
    pub unusable: Option<String>,
}

/// Why a presented token grants nothing for a request (borrowed: deciding allocates nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// The token names a capability this policy does not declare (any more).
    Undeclared(&'a str),
    /// A caveat that holds for no request here.
    Unusable(&'a str),
    /// The token has no `expires`, no `resource`/`within`, or no `actions` caveat.
    Incomplete(&'static str),
    Expired(Timestamp),
    /// The action is outside the token's or the declaration's actions.
    Action(&'a str),
    /// The resource is of a type the declaration does not name, or outside the token's scope.
    Resource,
    /// The subject is not the holder the token is bound to.
    Holder,
    /// A capability that is not `delegable` is only valid bound to a holder.
    Unbound,
    /// A subtree token names an entity its minter may not act on (or names no minter).
    Minter,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Undeclared(name) => {
                write!(f, "the token's capability `{name}` is not declared")
            }
            Refusal::Unusable(why) => write!(f, "{why}"),
            Refusal::Incomplete(what) => write!(f, "the token has no `{what}` caveat"),
            Refusal::Expired(at) => write!(f, "the token expired at {at}"),
            Refusal::Action(action) => write!(f, "the token does not carry `{action}`"),
            Refusal::Resource => write!(f, "the resource is outside the token's scope"),
            Refusal::Holder => write!(f, "the token is bound to another subject"),
            Refusal::Unbound => write!(
                f,
                "the capability is not delegable, and the token is bound to no holder"
            ),
            Refusal::Minter => write!(
                f,
                "the token covers a subtree, and its minter may not do this on this resource"
            ),
        }
    }
}

/// The capability's `allow` when `presented` grants this request.
pub fn grants<'a>(
    program: &Program,
    request: &'a Request,
    presented: &'a Presented,
) -> Result<RuleId, Refusal<'a>> {
    if let Some(why) = &presented.unusable {
        return Err(Refusal::Unusable(why));
    }
    let Some((_, declared)) = program.capability(&presented.capability) else {
        return Err(Refusal::Undeclared(&presented.capability));
    };
    let expires = presented.expires.ok_or(Refusal::Incomplete("expires"))?;
    if presented.actions.is_empty() {
        return Err(Refusal::Incomplete("actions"));
    }
    if presented.resources.is_empty() && presented.within.is_empty() {
        return Err(Refusal::Incomplete("resource"));
    }
    if !declared.delegable && presented.holders.is_empty() {
        return Err(Refusal::Unbound);
    }
    if request.now >= expires {
        return Err(Refusal::Expired(expires));
    }
    let action = &*request.action;
    let carried = declared.carries(action)
        && presented
            .actions
            .iter()
            .all(|list| list.iter().any(|a| &**a == action));
    if !carried {
        return Err(Refusal::Action(action));
    }
    let Value::Entity(resource) = &request.resource else {
        return Err(Refusal::Resource);
    };
    let type_named = entity_type(program, resource).is_some_and(|ty| declared.applies_to(ty));
    let in_scope = type_named
        && presented.resources.iter().all(|r| r == resource)
        && presented
            .within
            .iter()
            .all(|root| is_in(program, resource, root));
    if !in_scope {
        return Err(Refusal::Resource);
    }
    let Value::Entity(subject) = &request.subject else {
        return Err(Refusal::Holder);
    };
    if !presented.holders.iter().all(|h| h == subject) {
        return Err(Refusal::Holder);
    }
    if !presented.within.is_empty() && presented.minter.is_none() {
        return Err(Refusal::Minter);
    }
    Ok(declared.rule)
}

/// Whether a subtree token's minter may do the request's action on its resource by the policy
/// alone (a request with the minter as subject, no properties, no verified attributes, no
/// token). Minting decides a subtree token on its root only; this keeps it from granting on
/// what lies below that the minter does not hold — including entities added later.
pub(super) fn minter_holds(
    program: &Program,
    request: &Request,
    presented: &Presented,
    frame: &mut super::Frame,
) -> bool {
    let Some(minter) = &presented.minter else {
        return false;
    };
    let probe = Request {
        subject: Value::Entity(minter.clone()),
        subject_properties: Value::empty_record(),
        verified: None,
        capability: None,
        ..request.clone()
    };
    super::decide_in(program, &probe, frame).allowed
}

fn entity_type<'p>(program: &'p Program, entity: &'p EntityRef) -> Option<&'p str> {
    match entity {
        EntityRef::Known(id) => program.store.entity(*id).map(|e| &*e.uid.ty),
        EntityRef::Unknown(uid) => Some(&uid.ty),
    }
}

/// `entity` is `root` or below it in the stored hierarchy.
fn is_in(program: &Program, entity: &EntityRef, root: &EntityRef) -> bool {
    match (entity, root) {
        (EntityRef::Known(entity), EntityRef::Known(root)) => program.store.is_in(*entity, *root),
        (entity, root) => entity == root,
    }
}
