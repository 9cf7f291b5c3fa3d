//! `POST /v1/capabilities` (mint, or hand on with `from`) and `POST /v1/capabilities/revoke`.
//!
//! The minter is the subject a verified `Warden-Subject-Token` names: an API key protects the
//! endpoint like the rest of the decision API, but identifies nobody, so minting without a
//! verified subject is refused (401).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as JsonValue, json};

use crate::capability::mint::{self, DelegateRequest, MintRequest};
use crate::capability::{EntityText, Token, mint as mint_token};
use crate::server::extract::AuthzenJson;
use crate::server::{ApiError, AppState};

pub(crate) const MINT_PATH: &str = "/v1/capabilities";
pub(crate) const REVOKE_PATH: &str = "/v1/capabilities/revoke";

pub fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route(MINT_PATH, post(mint_handler))
        .route(REVOKE_PATH, post(revoke_handler));
    crate::server::authzen::protect(api, state)
}

fn json_response(status: StatusCode, body: &JsonValue) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn verifier(state: &AppState) -> Result<&crate::capability::present::Verifier, ApiError> {
    state.capabilities.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "capabilities are not configured on this Warden: set `capability_keys`",
        )
    })
}

async fn mint_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    match body.and_then(|json| mint_call(&state, &headers, &json.body, json.started)) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn entity(body: &Map<String, JsonValue>, key: &str) -> Result<Option<EntityText>, ApiError> {
    let Some(value) = body.get(key) else {
        return Ok(None);
    };
    let text = |field: &str| {
        value
            .get(field)
            .and_then(JsonValue::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("`{key}.{field}` must be a string")))
    };
    Ok(Some(EntityText::new(text("type")?, text("id")?)))
}

fn actions(body: &Map<String, JsonValue>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(value) = body.get("actions") else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request("`actions` must be an array of action names");
    let list = value.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|a| a.as_str().map(str::to_string).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn lifetime(body: &Map<String, JsonValue>) -> Result<Option<SignedDuration>, ApiError> {
    let Some(value) = body.get("lifetime") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request("`lifetime` must be a duration such as \"14d\", \"12h\" or \"90m\"")
    };
    let text = value.as_str().ok_or_else(bad)?;
    let millis = crate::syntax::token::parse_duration_literal(text).ok_or_else(bad)?;
    Ok(Some(SignedDuration::from_millis(millis)))
}

fn optional_str<'b>(
    body: &'b Map<String, JsonValue>,
    key: &str,
) -> Result<Option<&'b str>, ApiError> {
    match body.get(key) {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::bad_request(format!("`{key}` must be a string"))),
    }
}

fn mint_call(
    state: &AppState,
    headers: &HeaderMap,
    body: &Map<String, JsonValue>,
    started: Instant,
) -> Result<Response, ApiError> {
    let verifier = verifier(state)?;
    let program = state.snapshot(started)?;
    let Some((identity, subject_type)) =
        crate::server::identity::subject_token_identity(state, headers)?
    else {
        return Err(ApiError::InvalidSubjectToken(format!(
            "minting needs the minter's verified token in `{}`",
            crate::gateway::SUBJECT_TOKEN
        )));
    };
    let minter = EntityText::new(&*subject_type, identity.subject.as_str());
    let now = Timestamp::now();
    let refused = |error: mint::MintError| {
        tracing::info!(minter = %minter, %error, "capability refused");
        if error.forbidden() {
            ApiError::Forbidden(error.to_string())
        } else {
            ApiError::BadRequest(error.to_string())
        }
    };

    let caveats = if let Some(parent) = optional_str(body, "from")? {
        // A token handed on keeps every restriction of `from`; a field it would not apply
        // (an `audience`, a `resource`) is refused, never dropped.
        if let Some(field) = body
            .keys()
            .find(|key| !["from", "holder", "actions", "lifetime"].contains(&key.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "`{field}` does not apply to handing a token on: it keeps every restriction of `from`, and takes only `holder`, `actions` and `lifetime`"
            )));
        }
        let parent: Token = crate::capability::verify(&verifier.keyring, parent.trim(), now)
            .map_err(|e| ApiError::Forbidden(format!("the token to hand on: {e}")))?;
        if let Some(revoked) = verifier.revocations.revoked_lineage(&parent) {
            return Err(ApiError::Forbidden(format!(
                "the token to hand on is revoked (`{revoked}`)"
            )));
        }
        let ask = DelegateRequest {
            requester: minter.clone(),
            holder: entity(body, "holder")?,
            actions: actions(body)?,
            lifetime: lifetime(body)?,
        };
        let mut caveats = mint::delegate(&program, &parent, &ask, now).map_err(refused)?;
        // Re-minted under the signing key, a token handed on from one under a retired key
        // must not outlive that key's grace, when the token it comes from stops verifying.
        let grace_end = verifier
            .keyring
            .keys()
            .iter()
            .find(|key| key.id() == parent.key_id())
            .and_then(|key| key.retired())
            .and_then(|retired| retired.checked_add(verifier.keyring.grace()).ok())
            .and_then(|end| Timestamp::from_second(end.as_second()).ok());
        let expires = caveats
            .iter()
            .filter_map(|c| match c {
                crate::capability::Caveat::Expires(at) => Some(*at),
                _ => None,
            })
            .min();
        if let Some(grace_end) = grace_end
            && expires.is_none_or(|expires| grace_end < expires)
        {
            let at = caveats
                .iter()
                .position(|c| matches!(c, crate::capability::Caveat::MintedBy(_)))
                .unwrap_or(caveats.len());
            caveats.insert(at, crate::capability::Caveat::Expires(grace_end));
        }
        caveats
    } else {
        // A misspelt field must not mint a wider token than meant (a `holdr` would make a
        // bearer token): every field is known or the mint is refused.
        const FIELDS: [&str; 8] = [
            "capability",
            "resource",
            "within",
            "actions",
            "lifetime",
            "holder",
            "audience",
            "context",
        ];
        if let Some(field) = body.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            let hint = crate::source::suggest(field, FIELDS)
                .map(|near| format!("; did you mean `{near}`?"))
                .unwrap_or_default();
            return Err(ApiError::bad_request(format!(
                "unknown field `{field}`{hint} (a mint takes {})",
                FIELDS.map(|f| format!("`{f}`")).join(", ")
            )));
        }
        let capability = optional_str(body, "capability")?
            .ok_or_else(|| ApiError::bad_request("missing `capability` (or `from`)"))?;
        let resource =
            entity(body, "resource")?.ok_or_else(|| ApiError::bad_request("missing `resource`"))?;
        let within = match body.get("within") {
            None | Some(JsonValue::Null) => false,
            Some(JsonValue::Bool(within)) => *within,
            Some(_) => return Err(ApiError::bad_request("`within` must be true or false")),
        };
        let verified = if identity.attributes.is_empty() {
            None
        } else {
            let verified =
                crate::eval::Verified::decode(&program, &subject_type, &identity.attributes)
                    .map_err(|e| ApiError::Forbidden(format!("the minter's claims: {e}")))?;
            Some(Arc::new(verified))
        };
        let ask = MintRequest {
            capability: capability.to_string(),
            minter: minter.clone(),
            verified,
            resource,
            within,
            actions: actions(body)?,
            lifetime: lifetime(body)?,
            holder: entity(body, "holder")?,
            audience: optional_str(body, "audience")?.map(str::to_string),
            context: body.get("context").cloned(),
        };
        mint::authorize(&program, &ask, now).map_err(refused)?
    };
    let (token, id) = mint_token(&verifier.keyring, &caveats).map_err(|error| match error {
        // A holder or audience as the caller wrote it, that no caveat can spell.
        crate::capability::TokenError::InvalidCaveat { .. } => {
            ApiError::BadRequest(error.to_string())
        }
        error => {
            tracing::error!(%error, "cannot mint a capability token");
            ApiError::Internal
        }
    })?;
    let expires = caveats
        .iter()
        .filter_map(|c| match c {
            crate::capability::Caveat::Expires(at) => Some(*at),
            _ => None,
        })
        .min();
    tracing::info!(minter = %minter, id, "capability minted");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "token": token,
            "id": id,
            "expires": expires.map(|t| t.to_string()),
            "caveats": caveats.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    ))
}

async fn revoke_handler(
    State(state): State<Arc<AppState>>,
    body: Result<AuthzenJson, ApiError>,
) -> Response {
    let result = body.and_then(|json| {
        let verifier = verifier(&state)?;
        let id = optional_str(&json.body, "id")?
            .ok_or_else(|| ApiError::bad_request("missing `id`: the token id to revoke"))?;
        if !crate::capability::token::is_token_id(id) {
            return Err(ApiError::bad_request(format!(
                "`{id}` is not a token id (`warden capability inspect` shows a token's id)"
            )));
        }
        let newly = verifier
            .revocations
            .revoke(id, Timestamp::now())
            .map_err(|error| {
                tracing::error!(%error, "cannot record a revocation");
                ApiError::Internal
            })?;
        tracing::info!(id, newly, "capability revoked");
        Ok(json_response(
            StatusCode::OK,
            &json!({ "id": id, "revoked": true, "already_revoked": !newly }),
        ))
    });
    result.unwrap_or_else(IntoResponse::into_response)
}
