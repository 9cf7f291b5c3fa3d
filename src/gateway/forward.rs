//! The forward-auth endpoints: one per gateway contract, each reading the original request
//! only from where that gateway writes it (a header a client could set never counts).
//!
//! | gateway | endpoint | original method, target, host |
//! |---|---|---|
//! | nginx `auth_request` | `/forward-auth/nginx` | `X-Original-Method`, `X-Original-URI`, `Host` |
//! | Traefik `forwardAuth` | `/forward-auth/traefik` (any method) | `X-Forwarded-Method`, `-Uri`, `-Host` |
//! | Envoy `ext_authz` (HTTP) | `<envoy_path_prefix>/<original path>` | the request's own method, the path after the prefix, `Host` |
//!
//! Answers: `200` allow (with the configured upstream headers); `401` with `WWW-Authenticate`
//! when no valid identity came (the reason is logged); `403` for everything else: a deny, a
//! path that is ambiguous or matches no route, a request the policy cannot decide.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jiff::Timestamp;
use serde_json::{Map, Value as JsonValue, json};

use crate::eval::request::{self, Parts, Verified};
use crate::eval::{self, RequestError};
use crate::gateway::identity::{Identity, IdentityError};
use crate::gateway::routes::{self, Matched};
use crate::program::Program;
use crate::server::AppState;
use crate::server::authzen::POLICY_VERSION;
use crate::server::metrics::Endpoint;

pub const NGINX_PATH: &str = "/forward-auth/nginx";
pub const TRAEFIK_PATH: &str = "/forward-auth/traefik";

/// Which contract a call speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Nginx,
    Traefik,
    Envoy,
}

pub fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let prefix = state
        .settings
        .gateway
        .envoy_path_prefix
        .trim_end_matches('/')
        .to_string();
    Router::new()
        .route(NGINX_PATH, any(nginx))
        .route(TRAEFIK_PATH, any(traefik))
        .route(&format!("{prefix}/"), any(envoy))
        .route(&format!("{prefix}/{{*path}}"), any(envoy))
}

async fn nginx(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answer(&state, Flavour::Nginx, &request)
}

async fn traefik(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answer(&state, Flavour::Traefik, &request)
}

async fn envoy(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answer(&state, Flavour::Envoy, &request)
}

/// The original request, as the gateway described it.
#[derive(Debug)]
pub struct Original<'r> {
    pub method: &'r str,
    /// The request target: path and query, not yet normalised.
    pub target: &'r str,
    pub host: Option<&'r str>,
    /// The nearest hop of `X-Forwarded-For`.
    pub ip: Option<IpAddr>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the original request out of a forward-auth call.
pub fn original<'r>(
    flavour: Flavour,
    request: &'r Request,
    envoy_prefix: &str,
) -> Result<Original<'r>, String> {
    let headers = request.headers();
    let (method, target, host) = match flavour {
        Flavour::Nginx => (
            header(headers, "x-original-method")
                .ok_or("no X-Original-Method header (see deploy/nginx/)")?,
            header(headers, "x-original-uri")
                .ok_or("no X-Original-URI header (see deploy/nginx/)")?,
            header(headers, "host"),
        ),
        Flavour::Traefik => (
            header(headers, "x-forwarded-method").ok_or("no X-Forwarded-Method header")?,
            header(headers, "x-forwarded-uri").ok_or("no X-Forwarded-Uri header")?,
            header(headers, "x-forwarded-host").or_else(|| header(headers, "host")),
        ),
        Flavour::Envoy => {
            let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let prefix = envoy_prefix.trim_end_matches('/');
            let target = target
                .strip_prefix(prefix)
                .ok_or("not under the Envoy prefix")?;
            (request.method().as_str(), target, header(headers, "host"))
        }
    };
    Ok(Original {
        method,
        target,
        host,
        ip: nearest_hop(headers),
    })
}

/// The last address of the last `X-Forwarded-For` line: the one the nearest proxy added.
/// Earlier entries were written by whoever sent the request, and are never trusted.
pub fn nearest_hop(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

/// The subject of a call: from the trusted header where configured, else a verified token.
fn identify(state: &AppState, headers: &HeaderMap) -> Result<Arc<Identity>, IdentityError> {
    let config = &state.settings.gateway;
    if let Some(name) = &config.identity_header
        && let Some(id) = header(headers, name)
        && !id.is_empty()
    {
        return Ok(Arc::new(Identity {
            subject: id.to_string(),
            attributes: Map::new(),
            expires: None,
        }));
    }
    let verifier = state.gateway.verifier.load();
    let Some(verifier) = verifier.as_ref() else {
        return Err(match headers.get(header::AUTHORIZATION) {
            None => IdentityError::Missing,
            Some(_) => IdentityError::Invalid("no JWT keys are configured".to_string()),
        });
    };
    verifier.verify_header(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn forbidden(flavour: Flavour, reason: &str) -> Response {
    tracing::info!(gateway = ?flavour, reason, "forward-auth: denied");
    plain(StatusCode::FORBIDDEN, "forbidden\n")
}

fn unauthorized(flavour: Flavour, error: &IdentityError) -> Response {
    tracing::info!(gateway = ?flavour, reason = %error, "forward-auth: no valid identity");
    let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
    let challenge = match error.code() {
        Some(code) => format!("Bearer realm=\"warden\", error=\"{code}\""),
        None => "Bearer realm=\"warden\"".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Decides one forward-auth call, and counts it in the metrics.
pub fn answer(state: &AppState, flavour: Flavour, request: &Request) -> Response {
    let started = Instant::now();
    let response = respond(state, flavour, request);
    let status = response.status();
    if status == StatusCode::OK || status == StatusCode::FORBIDDEN {
        state.metrics.decision(status == StatusCode::OK);
    }
    state
        .metrics
        .request(Endpoint::ForwardAuth, status.as_u16(), started.elapsed());
    response
}

fn respond(state: &AppState, flavour: Flavour, request: &Request) -> Response {
    let program = match state.snapshot(Instant::now()) {
        Ok(program) => program,
        Err(error) => return error.into_response(),
    };
    let original = match original(flavour, request, &state.settings.gateway.envoy_path_prefix) {
        Ok(original) => original,
        Err(reason) => {
            tracing::warn!(gateway = ?flavour, reason, "forward-auth: not a forward-auth call");
            return forbidden(flavour, &reason);
        }
    };
    let identity = match identify(state, request.headers()) {
        Ok(identity) => identity,
        Err(error) => return unauthorized(flavour, &error),
    };
    let capability = request
        .headers()
        .get(state.settings.capability_header.as_str())
        .and_then(|value| value.to_str().ok());
    match decide(state, &program, &original, &identity, capability) {
        Ok(matched_headers) => {
            let mut response = plain(StatusCode::OK, "ok\n");
            let headers = response.headers_mut();
            for (name, value) in matched_headers {
                headers.insert(name, value);
            }
            if let Ok(version) = HeaderValue::from_str(&program.version) {
                headers.insert(POLICY_VERSION, version);
            }
            response
        }
        Err(reason) => {
            let mut response = forbidden(flavour, &reason);
            if let Ok(version) = HeaderValue::from_str(&program.version) {
                response.headers_mut().insert(POLICY_VERSION, version);
            }
            response
        }
    }
}

/// Routes and decides; `Ok` holds the upstream headers of an allow, `Err` why it is denied.
pub fn decide(
    state: &AppState,
    program: &Program,
    original: &Original<'_>,
    identity: &Identity,
    capability: Option<&str>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let config = &state.settings.gateway;
    let path = routes::normalize(original.target)
        .map_err(|e| format!("path `{}` refused: {e}", original.target))?;
    let matched = program
        .routes
        .lookup(original.method, &path)
        .map_err(|e| format!("path `{}` refused: {e}", original.target))?
        .ok_or_else(|| format!("no route for {} {path}", original.method))?;
    let route = matched.route;
    let resource_id = matched
        .fill(&route.resource_id)
        .ok_or("the route's resource id is not captured")?;
    let mut properties = Map::new();
    for (key, part) in &route.properties {
        if let Some(value) = matched.fill(part) {
            properties.insert(key.to_string(), JsonValue::String(value.to_string()));
        }
    }
    let mut context = Map::new();
    context.insert("method".into(), json!(original.method));
    context.insert("path".into(), json!(path));
    if let Some(host) = original.host {
        context.insert("host".into(), json!(host));
    }
    if let Some(ip) = original.ip {
        context.insert("ip".into(), json!(ip.to_string()));
    }
    let subject = json!({"type": config.subject_type, "id": identity.subject});
    let action = json!({"name": route.action.as_ref()});
    let resource = json!({
        "type": route.resource_type.as_ref(),
        "id": resource_id,
        "properties": properties,
    });
    let context = JsonValue::Object(context);
    let parts = Parts {
        subject: &subject,
        action: &action,
        resource: &resource,
        context: Some(&context),
    };
    let now = Timestamp::now();
    let mut decoded = request::decode(program, &parts, now).map_err(|e| match e {
        RequestError::Malformed(m) | RequestError::Invalid(m) => m,
    })?;
    if !identity.attributes.is_empty() {
        let verified = Verified::decode(program, &config.subject_type, &identity.attributes)
            .map_err(|e| e.to_string())?;
        decoded.verified = Some(Arc::new(verified));
    }
    let mut refused = None;
    if let Some(token) = capability {
        match crate::server::authzen::present(state.capabilities.as_deref(), program, token, now) {
            Ok(presented) => decoded.capability = Some(presented),
            Err(why) => refused = Some(why),
        }
    }
    let decision = eval::decide(program, &decoded);
    if !decision.allowed {
        if let Some(why) = refused {
            tracing::info!(reason = %why, "forward-auth: capability token not honoured");
        }
        return Err(format!(
            "{} {path} ({}) → {} on {}::{:?}: denied by policy",
            original.method, route.location, route.action, route.resource_type, resource_id
        ));
    }
    Ok(upstream_headers(
        &config.upstream_headers,
        &matched,
        identity,
        resource_id,
    ))
}

fn upstream_headers(
    wanted: &[(String, String)],
    matched: &Matched<'_>,
    identity: &Identity,
    resource_id: &str,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(wanted.len());
    for (name, source) in wanted {
        let text = match source.as_str() {
            "subject" => Some(identity.subject.clone()),
            "action" => Some(matched.route.action.to_string()),
            "resource_type" => Some(matched.route.resource_type.to_string()),
            "resource_id" => Some(resource_id.to_string()),
            "route" => Some(matched.route.template.to_string()),
            "roles" => identity.attributes.get("roles").map(text_of),
            other => other
                .strip_prefix("attr:")
                .and_then(|attr| identity.attributes.get(attr))
                .map(text_of),
        };
        let (Some(text), Ok(name)) = (text, HeaderName::try_from(name.as_str())) else {
            continue;
        };
        match HeaderValue::from_str(&text) {
            Ok(value) => out.push((name, value)),
            Err(_) => {
                tracing::warn!(header = %name, "forward-auth: value not valid in a header; not sent")
            }
        }
    }
    out
}

/// A claim as header text: strings as they are, arrays joined with `,`, others as JSON.
fn text_of(value: &JsonValue) -> String {
    match value {
        JsonValue::String(s) => s.clone(),
        JsonValue::Array(items) => items
            .iter()
            .map(|item| match item {
                JsonValue::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        map
    }

    #[test]
    fn only_the_nearest_hop_counts() {
        assert_eq!(nearest_hop(&headers(&[])), None);
        assert_eq!(
            nearest_hop(&headers(&["203.0.113.9, 10.0.0.2"])),
            "10.0.0.2".parse().ok()
        );
        assert_eq!(
            nearest_hop(&headers(&["1.1.1.1", "6.6.6.6, 2001:db8::1"])),
            "2001:db8::1".parse().ok()
        );
        // A nearest hop that is not an address is no address, not the one before it.
        assert_eq!(nearest_hop(&headers(&["10.0.0.1, unknown"])), None);
    }
}
