//! AuthZEN search: which subjects may do this action on this resource, which resources may
//! this subject act on, which actions may this subject do on this resource.
//!
//! Search enumerates the entity store (a subject or resource is *known* when a data file
//! stores it) and the declared actions, deciding each candidate on one program snapshot with
//! one clock reading. Transitivity comes from the decisions themselves: a user allowed through
//! a group is found because the decision follows the hierarchy.
//!
//! Pagination: a page token names the policy version, the search (a digest of the request
//! without its `page`) and the offset. A token from another policy version is rejected with a
//! 400 that says to start again, so a client never gets pages of two versions mixed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value as JsonValue, json};
use sha2::{Digest, Sha256};

use crate::data::value::{EntityId, EntityRef, Value};
use crate::decide::Decider;
use crate::eval::RequestError;
use crate::eval::request::{self, Parts, Request};
use crate::program::Program;
use crate::server::AppState;
use crate::server::authzen::{decided_response, finish};
use crate::server::error::ApiError;
use crate::server::extract::AuthzenJson;
use crate::server::metrics::Endpoint;

/// One result, its members in the order the spec's examples write them (`type` before `id`):
/// interop harnesses compare results as text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Found {
    Entity {
        #[serde(rename = "type")]
        ty: String,
        id: String,
    },
    Action {
        name: String,
    },
}

/// A search's answer: `results`, then `page` when there is one.
#[derive(Serialize)]
struct Answer<'r> {
    results: &'r [Found],
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<Page>,
}

#[derive(Serialize)]
struct Page {
    next_token: String,
    count: usize,
    total: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Searched {
    Subject,
    Resource,
    Action,
}

pub async fn subject(
    State(state): State<Arc<AppState>>,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    run(state, Searched::Subject, Endpoint::SearchSubject, body).await
}

pub async fn resource(
    State(state): State<Arc<AppState>>,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    run(state, Searched::Resource, Endpoint::SearchResource, body).await
}

pub async fn action(
    State(state): State<Arc<AppState>>,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    run(state, Searched::Action, Endpoint::SearchAction, body).await
}

async fn run(
    state: Arc<AppState>,
    searched: Searched,
    endpoint: Endpoint,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    let (started, result) = match body {
        Err(error) => (Instant::now(), Err(error)),
        Ok(json) => {
            let started = json.started;
            let worker = state.clone();
            // A search decides once per stored entity: off the async workers, so a large
            // store cannot stall the single evaluations queued behind it.
            let result = tokio::task::spawn_blocking(move || search(&worker, searched, &json))
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "search failed");
                    Err(ApiError::Internal)
                });
            (started, result)
        }
    };
    finish(&state, endpoint, started, result)
}

/// `page` of a search request.
struct PageRequest {
    token: Option<String>,
    limit: usize,
    /// The caller sent `page`: the response then says where the results stand.
    asked: bool,
}

impl PageRequest {
    fn parse(page: Option<&JsonValue>, max: usize) -> Result<PageRequest, ApiError> {
        let page = match page {
            None | Some(JsonValue::Null) => {
                return Ok(PageRequest {
                    token: None,
                    limit: max,
                    asked: false,
                });
            }
            Some(JsonValue::Object(page)) => page,
            Some(_) => return Err(ApiError::bad_request("`page` must be an object")),
        };
        let token = match page.get("token") {
            None | Some(JsonValue::Null) => None,
            Some(JsonValue::String(token)) if token.is_empty() => None,
            Some(JsonValue::String(token)) => Some(token.clone()),
            Some(_) => return Err(ApiError::bad_request("`page.token` must be a string")),
        };
        let limit = match page.get("limit") {
            None | Some(JsonValue::Null) => max,
            Some(JsonValue::Number(n)) => match n.as_u64() {
                Some(n) if n > 0 => usize::try_from(n).unwrap_or(max).min(max),
                _ => {
                    return Err(ApiError::bad_request(
                        "`page.limit` must be a positive integer",
                    ));
                }
            },
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`page.limit` must be a positive integer",
                ));
            }
        };
        Ok(PageRequest {
            token,
            limit,
            asked: true,
        })
    }
}

/// A digest of the search (the request without `page`), so a token is used with its own
/// search only.
fn search_digest(body: &Map<String, JsonValue>) -> String {
    let mut without_page = body.clone();
    without_page.remove("page");
    let digest = Sha256::digest(JsonValue::Object(without_page).to_string().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn token(version: &str, digest: &str, offset: usize) -> String {
    format!("{version}.{digest}.{offset}")
}

/// The offset a token names, after checking it belongs to this version and this search.
fn offset(token: &str, version: &str, digest: &str, total: usize) -> Result<usize, ApiError> {
    let foreign = || ApiError::bad_request("`page.token` is not a token this server issued");
    let mut pieces = token.split('.');
    let (Some(token_version), Some(token_digest), Some(offset), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(foreign());
    };
    let offset: usize = offset.parse().map_err(|_| foreign())?;
    if token_version != version {
        return Err(ApiError::bad_request(format!(
            "`page.token` was issued under policy version {token_version}, but version \
             {version} is serving now and the results may differ: start the search again \
             without a token"
        )));
    }
    if token_digest != digest {
        return Err(ApiError::bad_request(
            "`page.token` belongs to another search: send the same search with it",
        ));
    }
    if offset > total {
        return Err(foreign());
    }
    Ok(offset)
}

fn search(state: &AppState, searched: Searched, json: &AuthzenJson) -> Result<Response, ApiError> {
    let body = &json.body;
    let page = PageRequest::parse(body.get("page"), state.settings.search_page_limit)?;
    let program = state.snapshot(json.started)?;
    let now = jiff::Timestamp::now();
    let results = match searched {
        Searched::Subject | Searched::Resource => entities(&program, searched, body, now)?,
        Searched::Action => actions(&program, body, now)?,
    };
    let Some(results) = results else {
        // An unknown subject, resource, type or action: nothing is allowed, nothing to page.
        return Ok(decided_response(&program, r#"{"results":[]}"#));
    };
    let total = results.len();
    let digest = search_digest(body);
    let start = match &page.token {
        Some(token) => offset(token, &program.version, &digest, total)?,
        None => 0,
    };
    let end = start.saturating_add(page.limit).min(total);
    let shown = results.get(start..end).unwrap_or_default();
    let page = (page.asked || end < total).then(|| Page {
        next_token: if end < total {
            token(&program.version, &digest, end)
        } else {
            String::new()
        },
        count: shown.len(),
        total,
    });
    let answer = serde_json::to_string(&Answer {
        results: shown,
        page,
    })
    .map_err(|_| ApiError::Internal)?;
    Ok(decided_response(&program, answer))
}

fn required<'j>(body: &'j Map<String, JsonValue>, key: &str) -> Result<&'j JsonValue, ApiError> {
    body.get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::bad_request(format!("missing `{key}`")))
}

/// Reads a request's decoding problem: a malformed one is the caller's 400; an invalid one
/// (an undeclared type or action, a mistyped value) makes the search come back empty.
fn decoded(result: Result<Request, RequestError>) -> Result<Option<Request>, ApiError> {
    match result {
        Ok(request) => Ok(Some(request)),
        Err(RequestError::Malformed(message)) => Err(ApiError::BadRequest(message.to_string())),
        Err(RequestError::Invalid(_)) => Ok(None),
    }
}

/// Whether the decision service allows a search's candidate request: a search carries no
/// identity, capability or limits, and is not audited.
fn allowed(program: &Program, request: &mut Request) -> bool {
    let decider = Decider {
        program,
        identity: None,
        capabilities: None,
        limits: None,
    };
    decider
        .decide(Ok(request), (None, None), None, None, None)
        .allowed
}

/// A stored entity (a data file gave its attributes), not one merely named by a policy.
fn stored(program: &Program, entity: &Value) -> Option<EntityId> {
    match entity {
        Value::Entity(EntityRef::Known(id))
            if program
                .store
                .entity(*id)
                .is_some_and(|e| e.attributes.is_some()) =>
        {
            Some(*id)
        }
        _ => None,
    }
}

/// Subject or resource search: the allowed stored entities of the searched type, sorted by id.
fn entities(
    program: &Program,
    searched: Searched,
    body: &Map<String, JsonValue>,
    now: jiff::Timestamp,
) -> Result<Option<Vec<Found>>, ApiError> {
    let key = if searched == Searched::Subject {
        "subject"
    } else {
        "resource"
    };
    // The searched entity carries only its type (an `id`, if sent, is ignored): decode it
    // with a placeholder id, then put each candidate in its place.
    let mut probe = match required(body, key)? {
        JsonValue::Object(members) => members.clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "`{key}` must be an object with `type`"
            )));
        }
    };
    let searched_type = match probe.get("type") {
        Some(JsonValue::String(ty)) => ty.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "`{key}.type` must be a string"
            )));
        }
        None => return Err(ApiError::bad_request(format!("missing `{key}.type`"))),
    };
    probe.insert("id".to_string(), JsonValue::String(String::new()));
    let probe = JsonValue::Object(probe);
    let parts = if searched == Searched::Subject {
        Parts {
            subject: &probe,
            action: required(body, "action")?,
            resource: required(body, "resource")?,
            context: body.get("context"),
        }
    } else {
        Parts {
            subject: required(body, "subject")?,
            action: required(body, "action")?,
            resource: &probe,
            context: body.get("context"),
        }
    };
    let Some(mut request) = decoded(request::from_parts(program, &parts, now))? else {
        return Ok(None);
    };
    let fixed = if searched == Searched::Subject {
        &request.resource
    } else {
        &request.subject
    };
    if stored(program, fixed).is_none() {
        return Ok(None);
    }
    let mut candidates: Vec<(EntityId, &str)> = program
        .store
        .entities()
        .filter(|(_, e)| e.attributes.is_some() && *e.uid.ty == *searched_type)
        .map(|(id, e)| (id, &*e.uid.id))
        .collect();
    candidates.sort_by(|a, b| a.1.cmp(b.1));
    let mut results = Vec::new();
    for (id, name) in candidates {
        let entity = Value::Entity(EntityRef::Known(id));
        if searched == Searched::Subject {
            request.subject = entity;
        } else {
            request.resource = entity;
        }
        if allowed(program, &mut request) {
            results.push(Found::Entity {
                ty: searched_type.clone(),
                id: name.to_string(),
            });
        }
    }
    Ok(Some(results))
}

/// Action search: the allowed actions among those that apply to the resource's type (every
/// action the policies name, when none are declared), sorted by name.
fn actions(
    program: &Program,
    body: &Map<String, JsonValue>,
    now: jiff::Timestamp,
) -> Result<Option<Vec<Found>>, ApiError> {
    let subject = required(body, "subject")?;
    let resource = required(body, "resource")?;
    let context = body.get("context");
    // A probe with no action name finds malformed subjects and resources (they are read
    // first), and whether the two are stored.
    let no_action = json!({ "name": "" });
    let probe = request::from_parts(
        program,
        &Parts {
            subject,
            action: &no_action,
            resource,
            context,
        },
        now,
    );
    if let Err(RequestError::Malformed(message)) = probe {
        return Err(ApiError::BadRequest(message.to_string()));
    }
    let known = |entity: &JsonValue| {
        let text = |key: &str| entity.get(key).and_then(JsonValue::as_str);
        match (text("type"), text("id")) {
            (Some(ty), Some(id)) => program
                .store
                .lookup(ty, id)
                .and_then(|id| program.store.entity(id))
                .is_some_and(|e| e.attributes.is_some()),
            _ => false,
        }
    };
    if !known(subject) || !known(resource) {
        return Ok(None);
    }
    let resource_type = resource
        .get("type")
        .and_then(JsonValue::as_str)
        .unwrap_or("");
    let schema = &program.schema;
    let mut names: Vec<&str> = if schema.declares_actions() {
        schema
            .actions
            .values()
            .filter(|a| {
                a.resource_types.is_empty() || a.resource_types.iter().any(|t| t == resource_type)
            })
            .map(|a| a.name.as_str())
            .collect()
    } else {
        program.index.actions.keys().map(|a| &**a).collect()
    };
    names.sort_unstable();
    let mut results = Vec::new();
    for name in names {
        let action = json!({ "name": name });
        let parts = Parts {
            subject,
            action: &action,
            resource,
            context,
        };
        // Invalid for this action (e.g. context not what it declares): not allowed.
        if let Some(mut request) = decoded(request::from_parts(program, &parts, now))?
            && allowed(program, &mut request)
        {
            results.push(Found::Action {
                name: name.to_string(),
            });
        }
    }
    Ok(Some(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_version_search_and_offset() {
        let t = token("v1", "abc", 10);
        assert_eq!(offset(&t, "v1", "abc", 20).unwrap(), 10);
        let stale = offset(&t, "v2", "abc", 20).unwrap_err().to_string();
        assert!(stale.contains("start the search again"), "{stale}");
        assert!(offset(&t, "v1", "def", 20).is_err());
        assert!(offset(&t, "v1", "abc", 5).is_err());
        assert!(offset("garbage", "v1", "abc", 20).is_err());
    }

    #[test]
    fn page_limits_are_positive_and_capped() {
        let parse = |v: JsonValue| PageRequest::parse(Some(&v), 100);
        assert_eq!(parse(json!({"limit": 5})).unwrap().limit, 5);
        assert_eq!(parse(json!({"limit": 500})).unwrap().limit, 100);
        assert!(parse(json!({"limit": 0})).is_err());
        assert!(parse(json!({"limit": "5"})).is_err());
        assert!(parse(json!({"token": 5})).is_err());
        assert!(parse(json!({"token": ""})).unwrap().token.is_none());
        assert!(!PageRequest::parse(None, 100).unwrap().asked);
    }
}
