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

use crate::audit::AuditLog;
use crate::audit::record::{self, Record, Shape};
use crate::check::route_table::{Case, Matched};
use crate::decide::{Decided, Decider, Presenting, Proved, Recorder, Step};
use crate::eval::request::{self, Invalid, Parts, RequestError};
use crate::gateway::identity::{Identity, IdentityError};
use crate::gateway::route;
use crate::program::Program;
use crate::server::ApiError;
use crate::server::AppState;
use crate::server::authzen::POLICY_VERSION;
use crate::server::metrics::Endpoint;

pub(crate) const NGINX_PATH: &str = "/forward-auth/nginx";
pub(crate) const TRAEFIK_PATH: &str = "/forward-auth/traefik";

/// Which contract a call speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Nginx,
    Traefik,
    Envoy,
    /// Envoy's `ext_authz` over gRPC ([`crate::server::grpc`]).
    EnvoyGrpc,
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
    answered(&state, Flavour::Nginx, request).await
}

async fn traefik(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answered(&state, Flavour::Traefik, request).await
}

async fn envoy(State(state): State<Arc<AppState>>, request: Request) -> Response {
    answered(&state, Flavour::Envoy, request).await
}

/// Answers, and queues the call's audit record (when the audit log is on).
async fn answered(state: &AppState, flavour: Flavour, request: Request) -> Response {
    // A forward-auth call's body is not read (and cannot be shared while the call waits).
    let request = request.map(drop);
    let (response, record) = answer_recorded(state, flavour, &request).await;
    drop(request);
    crate::server::authzen::audit_submit(state, record).await;
    response
}

impl Flavour {
    /// The gateway's name, as audit records give it.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Nginx => "nginx",
            Flavour::Traefik => "traefik",
            Flavour::Envoy => "envoy",
            Flavour::EnvoyGrpc => "envoy-grpc",
        }
    }
}

/// The original request, as the gateway described it.
#[derive(Debug)]
pub struct Original<'r> {
    pub method: &'r str,
    /// The request target: path and query, not yet normalised.
    pub target: &'r str,
    pub host: Option<&'r str>,
    /// The client's address: the nearest hop of `X-Forwarded-For`, or the peer address Envoy
    /// reports over gRPC.
    pub ip: Option<IpAddr>,
    /// More `context` members the gateway reports beside `method`, `path`, `host` and `ip`
    /// (gRPC: Envoy's `context_extensions` and peers).
    pub context: Option<&'r Map<String, JsonValue>>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the original request out of a forward-auth call.
pub fn original<'r, B>(
    flavour: Flavour,
    request: &'r axum::http::Request<B>,
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
        Flavour::EnvoyGrpc => return Err("a gRPC check is not an HTTP call".to_string()),
    };
    Ok(Original {
        method,
        target,
        host,
        ip: nearest_hop(headers),
        context: None,
    })
}

/// The last address of the last `X-Forwarded-For` line: the one the nearest proxy added.
/// Earlier entries were written by whoever sent the request, and are never trusted.
pub(crate) fn nearest_hop(headers: &HeaderMap) -> Option<IpAddr> {
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
            Some(_) => IdentityError::NoKeys,
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

/// The body of a 403.
pub(crate) const FORBIDDEN_BODY: &str = "forbidden\n";
/// The body of a 401.
pub(crate) const UNAUTHORIZED_BODY: &str = "unauthorized\n";

/// The `RateLimit-Policy`, `RateLimit` and `Retry-After` fields of a call a limit refused.
pub(crate) fn limit_fields(refusal: &crate::limit::Refusal) -> Vec<(HeaderName, HeaderValue)> {
    let crate::limit::Refusal::Reached {
        name,
        count,
        window_secs,
        retry_after_secs,
        ..
    } = refusal
    else {
        return Vec::new();
    };
    [
        (header::RETRY_AFTER, retry_after_secs.to_string()),
        (
            RATELIMIT_POLICY,
            format!("\"{name}\";q={count};w={window_secs}"),
        ),
        (RATELIMIT, format!("\"{name}\";r=0;t={retry_after_secs}")),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, HeaderValue::from_str(&value).ok()?)))
    .collect()
}

/// The body of a 429.
pub(crate) const TOO_MANY_BODY: &str = "too many requests\n";

/// The `WWW-Authenticate` challenge of a 401 for `error`.
pub fn challenge(error: &IdentityError) -> String {
    match error.code() {
        Some(code) => format!("Bearer realm=\"warden\", error=\"{code}\""),
        None => "Bearer realm=\"warden\"".to_string(),
    }
}

/// What one forward-auth check answers, whichever door (HTTP or gRPC) it came through.
#[derive(Debug)]
pub enum Answer {
    /// No program to decide on (before the first load, or shutting down): 503.
    Unavailable(ApiError),
    /// No valid identity: 401, with a challenge.
    Unauthenticated(IdentityError),
    /// 403: not a well-formed call, a refused or unmatched path, a deny. The version is the
    /// program's, when a decision was reached.
    Denied {
        reason: String,
        version: Option<Arc<str>>,
    },
    /// 200, with the upstream headers.
    Allowed {
        headers: Vec<(HeaderName, HeaderValue)>,
        version: Arc<str>,
    },
    /// 429: the policy allowed the call, a limit refused it.
    Limited {
        refusal: crate::limit::Refusal,
        version: Arc<str>,
    },
}

impl Answer {
    /// The HTTP status this outcome answers `flavour` with (and is counted under).
    pub fn status(&self, flavour: Flavour) -> StatusCode {
        match self {
            Answer::Limited { .. } if flavour == Flavour::Nginx => StatusCode::FORBIDDEN,
            Answer::Unavailable(error) => error.status(),
            Answer::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Answer::Denied { .. } => StatusCode::FORBIDDEN,
            Answer::Allowed { .. } => StatusCode::OK,
            Answer::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The forward-auth endpoints' HTTP answer. A limit's refusal is a 429, except to nginx:
    /// its `auth_request` takes any answer but 2xx, 401 and 403 for an error (500), so nginx
    /// gets 403 with the same fields, which its configuration can turn into 429.
    pub fn into_response(self, flavour: Flavour) -> Response {
        let with_version = |mut response: Response, version: Option<&str>| {
            if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
                response.headers_mut().insert(POLICY_VERSION, version);
            }
            response
        };
        match self {
            Answer::Unavailable(error) => error.into_response(),
            Answer::Unauthenticated(error) => {
                let mut response = plain(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY);
                if let Ok(value) = HeaderValue::from_str(&challenge(&error)) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Answer::Denied { version, .. } => with_version(
                plain(StatusCode::FORBIDDEN, FORBIDDEN_BODY),
                version.as_deref(),
            ),
            Answer::Allowed { headers, version } => {
                let mut response = plain(StatusCode::OK, "ok\n");
                for (name, value) in headers {
                    response.headers_mut().insert(name, value);
                }
                with_version(response, Some(&version))
            }
            Answer::Limited { refusal, version } => {
                let status = match flavour {
                    Flavour::Nginx => StatusCode::FORBIDDEN,
                    Flavour::Traefik | Flavour::Envoy | Flavour::EnvoyGrpc => {
                        StatusCode::TOO_MANY_REQUESTS
                    }
                };
                let mut response = plain(status, TOO_MANY_BODY);
                for (name, value) in limit_fields(&refusal) {
                    response.headers_mut().insert(name, value);
                }
                with_version(response, Some(&version))
            }
        }
    }
}

/// Decides one forward-auth call and counts it in the metrics, for a server without an audit
/// log (the endpoints use [`answer_recorded`], and queue the record).
/// Without limits kept in Redis nothing waits, and the answer is ready at once; a call that
/// would wait for Redis is answered 503 here.
pub fn answer<B>(state: &AppState, flavour: Flavour, request: &axum::http::Request<B>) -> Response {
    match ready(answer_recorded(state, flavour, request)) {
        Some((response, _)) => response,
        None => Answer::Unavailable(ApiError::Internal).into_response(flavour),
    }
}

/// The output of `future` when it is ready at its first poll.
pub(crate) fn ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Decides one forward-auth call, and counts it in the metrics; with the audit log on, also
/// the call's record (every call that reached a decision: it named a subject).
pub(crate) async fn answer_recorded<B>(
    state: &AppState,
    flavour: Flavour,
    request: &axum::http::Request<B>,
) -> (Response, Option<Record>) {
    let call = Arrival {
        flavour,
        headers: request.headers(),
        started: Instant::now(),
    };
    let original = original(flavour, request, &state.settings.gateway.envoy_path_prefix);
    let (outcome, record) = check(state, &call, original).await;
    (outcome.into_response(flavour), record)
}

/// The one forward-auth check behind every door: the original request as the gateway
/// described it (or why it could not be read), the call's headers (token, capability, request
/// id) -> the outcome, counted in the metrics; with the audit log on, also the call's record.
pub async fn check(
    state: &AppState,
    call: &Arrival<'_>,
    original: Result<Original<'_>, String>,
) -> (Answer, Option<Record>) {
    let mut record = None;
    let outcome = checked(state, call, original, &mut record).await;
    let status = outcome.status(call.flavour);
    // A decision is a call that named a subject (what the audit log records): not a call
    // without the gateway's headers, nor one without a valid identity (401).
    match &outcome {
        Answer::Allowed { .. } => state.metrics.decision(true),
        Answer::Denied {
            version: Some(_), ..
        }
        | Answer::Limited { .. } => state.metrics.decision(false),
        _ => {}
    }
    state.metrics.request(
        Endpoint::ForwardAuth,
        status.as_u16(),
        call.started.elapsed(),
    );
    (outcome, record)
}

async fn checked(
    state: &AppState,
    call: &Arrival<'_>,
    original: Result<Original<'_>, String>,
    record: &mut Option<Record>,
) -> Answer {
    let flavour = call.flavour;
    let program = match state.snapshot(call.started) {
        Ok(program) => program,
        Err(error) => return Answer::Unavailable(error),
    };
    let original = match original {
        Ok(original) => original,
        Err(reason) => {
            tracing::warn!(gateway = ?flavour, reason, "forward-auth: not a forward-auth call");
            return Answer::Denied {
                reason,
                version: None,
            };
        }
    };
    let identity = match identify(state, call.headers) {
        Ok(identity) => identity,
        Err(error) => {
            tracing::info!(gateway = ?flavour, reason = %error, "forward-auth: no valid identity");
            return Answer::Unauthenticated(error);
        }
    };
    let (result, recorded) = decide(state, &program, &original, &identity, call).await;
    *record = recorded;
    let version = Arc::clone(&program.version);
    match result {
        Ok(headers) => Answer::Allowed { headers, version },
        Err(Refused {
            reason,
            limit: Some(refusal),
        }) => {
            tracing::info!(gateway = ?flavour, reason, "forward-auth: rate limited");
            Answer::Limited { refusal, version }
        }
        Err(Refused {
            reason,
            limit: None,
        }) => {
            tracing::info!(gateway = ?flavour, reason, "forward-auth: denied");
            Answer::Denied {
                reason,
                version: Some(version),
            }
        }
    }
}

/// What the audit record of a call needs beyond the decision.
pub struct Arrival<'h> {
    pub flavour: Flavour,
    pub headers: &'h HeaderMap,
    pub started: Instant,
}

/// What a forward-auth decision answers: the upstream headers of an allow, or why it is denied.
pub(crate) type Admission = Result<Vec<(HeaderName, HeaderValue)>, Refused>;

/// Why a forward-auth call is refused: by policy (403), or by a limit (429).
#[derive(Debug)]
pub struct Refused {
    pub reason: String,
    pub limit: Option<crate::limit::Refusal>,
}

impl From<String> for Refused {
    fn from(reason: String) -> Refused {
        Refused {
            reason,
            limit: None,
        }
    }
}

/// The IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers)
/// of the limits a call counted against.
fn rate_limit_headers(
    program: &Program,
    usages: &[crate::limit::Usage],
) -> Vec<(HeaderName, HeaderValue)> {
    if usages.is_empty() {
        return Vec::new();
    }
    let limits: Vec<_> = usages
        .iter()
        .filter_map(|u| {
            let limit = program.limits.get(u.limit)?;
            Some((limit, u.figures(limit)))
        })
        .collect();
    let policy: Vec<String> = limits
        .iter()
        .map(|(l, f)| format!("\"{}\";q={};w={}", l.name, l.count, f.window_secs))
        .collect();
    let state: Vec<String> = limits
        .iter()
        .map(|(l, f)| format!("\"{}\";r={};t={}", l.name, f.remaining, f.reset_secs))
        .collect();
    [(RATELIMIT_POLICY, policy), (RATELIMIT, state)]
        .into_iter()
        .filter_map(|(name, items)| Some((name, HeaderValue::from_str(&items.join(", ")).ok()?)))
        .collect()
}

pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Routes the call, and hands the request it makes to the decision service (awaiting limits
/// kept in Redis). With the audit log on, also the call's record.
pub async fn decide(
    state: &AppState,
    program: &Program,
    original: &Original<'_>,
    identity: &Identity,
    call: &Arrival<'_>,
) -> (Admission, Option<Record>) {
    let config = &state.settings.gateway;
    let now = Timestamp::now();
    let subject = json!({"type": config.subject_type, "id": identity.subject});
    let case = if config.routes_ignore_case {
        Case::Ignore
    } else {
        Case::Sensitive
    };
    let routed = route(
        program,
        case,
        subject,
        original.method,
        original.target,
        original.host,
        original.ip,
    )
    .map(|mut routed| {
        if let (Some(extra), Some(JsonValue::Object(context))) =
            (original.context, routed.request.get_mut("context"))
        {
            for (key, value) in extra {
                context.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        routed
    });
    // A call no route takes is recorded with the subject it named.
    let unrouted;
    let recorded = match &routed {
        Ok(routed) => &routed.request,
        Err(_) => {
            unrouted = json!({ "subject": {"type": config.subject_type, "id": identity.subject} });
            &unrouted
        }
    };
    let mut audit = state.audit.as_ref().map(|log| Audit {
        log,
        call,
        original,
        identity,
        now,
        path: routed.as_ref().map(|r| r.path.as_str()).ok(),
        request: recorded,
        record: None,
    });
    let decider = Decider {
        program,
        identity: Some(Proved {
            subject_type: &config.subject_type,
            subject_id: &identity.subject,
            attributes: &identity.attributes,
        }),
        capabilities: state.capabilities.as_deref(),
        limits: Some(&state.limits),
    };
    let named = (
        Some(config.subject_type.as_str()),
        Some(identity.subject.as_str()),
    );
    // A capability token comes in its own header, never in `Authorization` (identity).
    let token = call
        .headers
        .get(state.settings.capability_header.as_str())
        .and_then(|value| value.to_str().ok())
        .map(Presenting::Token);
    let recorder = audit.as_mut().map(|audit| audit as &mut dyn Recorder);
    let decoded = match &routed {
        Ok(routed) => Parts::from_body(&routed.request)
            .map_err(RequestError::from)
            .and_then(|parts| request::from_parts(program, &parts, now)),
        Err(reason) => Err(Invalid::Unrouted(reason.clone()).into()),
    };
    let step = match decoded {
        Ok(mut request) => decider.begin(Ok(&mut request), named, token, None, recorder),
        Err(error) => decider.begin(Err(error), named, token, None, recorder),
    };
    let verdict = match step {
        Step::Done(verdict) => verdict,
        Step::Pending(pending) => {
            let recorder = audit
                .as_mut()
                .map(|audit| audit as &mut (dyn Recorder + Send));
            // Boxed, as in the AuthZEN door: the wait for Redis is rare and its future large.
            Box::pin(decider.settle(pending, None, recorder)).await
        }
    };
    let record = audit.and_then(|audit| audit.record);
    let routed = match (&verdict.decision, routed) {
        (Ok(_), Ok(routed)) => routed,
        (Err(error), _) => return (Err(error.to_string().into()), record),
        // Decided only what was routed.
        (Ok(_), Err(reason)) => return (Err(reason.to_string().into()), record),
    };
    if let Some(Err(why)) = &verdict.capability {
        tracing::info!(reason = %why, "forward-auth: capability token not honoured");
    }
    let route = routed.matched.route;
    match verdict.limits {
        _ if !verdict.decision.as_ref().is_ok_and(|d| d.allowed) => (
            Err(format!(
                "{} {} ({}) → {} on {}::{:?}: denied by policy",
                original.method,
                routed.path,
                route.location,
                route.action,
                route.resource_type,
                routed.resource_id
            )
            .into()),
            record,
        ),
        Err(refusal) => (
            Err(Refused {
                reason: format!("{} {}: {refusal}", original.method, routed.path),
                limit: Some(refusal),
            }),
            record,
        ),
        Ok(usages) => {
            let mut headers = upstream_headers(
                &config.upstream_headers,
                &routed.matched,
                identity,
                &routed.resource_id,
            );
            headers.extend(rate_limit_headers(program, &usages));
            (Ok(headers), record)
        }
    }
}

/// The audit record of one forward-auth call: the AuthZEN request routing made (never the
/// token: only the subject it verified, and the verified attributes), the original request
/// (`http`), the outcome.
struct Audit<'a> {
    log: &'a AuditLog,
    call: &'a Arrival<'a>,
    original: &'a Original<'a>,
    identity: &'a Identity,
    now: Timestamp,
    /// The normalised path, when it could be normalised.
    path: Option<&'a str>,
    /// The request as routing made it.
    request: &'a JsonValue,
    record: Option<Record>,
}

impl Recorder for Audit<'_> {
    fn record(
        &mut self,
        program: &Program,
        outcome: Decided<'_>,
        limited: Option<&crate::limit::Refusal>,
    ) {
        if !self.log.wants_outcome(outcome, limited) {
            return;
        }
        let masking = &self.log.config().masking;
        let original = self.original;
        let mut http = Map::new();
        http.insert("method".into(), json!(original.method));
        let path = match self.path {
            Some(path) => path,
            // Refused: as sent, without its query (which may hold credentials).
            None => original.target.split(['?', '#']).next().unwrap_or_default(),
        };
        http.insert("path".into(), json!(path));
        if let Some(host) = original.host {
            http.insert("host".into(), json!(host));
        }
        if let Some(ip) = original.ip {
            http.insert("ip".into(), json!(ip.to_string()));
        }
        let mut builder = record::Builder::new(
            Shape::Single,
            self.now,
            crate::server::authzen::request_id(self.call.headers),
            Some(self.call.flavour.name()),
            record::RequestText::Unchecked(&self.request.to_string()),
            masking,
        );
        builder.member("http", &JsonValue::Object(http), masking);
        if !self.identity.attributes.is_empty() {
            builder.member(
                "verified",
                &JsonValue::Object(self.identity.attributes.clone()),
                masking,
            );
        }
        builder.counted_outcome(None, program, outcome, limited, masking);
        let latency_us = u64::try_from(self.call.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.record = builder.finish(&program.version, latency_us);
    }
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
