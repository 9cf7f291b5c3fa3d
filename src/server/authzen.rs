//! The AuthZEN 1.0 Authorization API: evaluation, evaluations (batch) and discovery; search
//! is in [`crate::server::search`].
//!
//! Responses carry exactly the spec's fields. Explanations are added (in `context`) only when
//! the server runs with `explain = true` *and* the caller sends `Warden-Explain: true`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Map, Value as JsonValue, json};
use sha2::{Digest, Sha256};

use crate::audit::AuditLog;
use crate::audit::record::{self, Record, RequestText, Shape};
use crate::data::json::Json;
use crate::eval::explain;
use crate::eval::request::{self, Malformed, Parts, Wire};
use crate::eval::wire;
use crate::eval::{self, Frame, RequestError};
use crate::program::Program;
use crate::server::error::ApiError;
use crate::server::extract::AuthzenBody;
use crate::server::metrics::Endpoint;
use crate::server::{AppState, search};

/// The response header naming the policy version a call was decided on.
pub const POLICY_VERSION: HeaderName = HeaderName::from_static("warden-policy-version");
/// The request header by which a caller asks for an explanation.
pub const EXPLAIN: HeaderName = HeaderName::from_static("warden-explain");

pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
pub const DISCOVERY_PATH: &str = "/.well-known/authzen-configuration";

/// The decision API's routes; protected by the API key when one is configured. Discovery
/// stays open: it tells clients where to call, not what they may do.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route(EVALUATION_PATH, post(evaluation))
        .route(EVALUATIONS_PATH, post(evaluations))
        .route(SEARCH_SUBJECT_PATH, post(search::subject))
        .route(SEARCH_RESOURCE_PATH, post(search::resource))
        .route(SEARCH_ACTION_PATH, post(search::action));
    protect(api, &state)
        .route(DISCOVERY_PATH, get(discovery))
        .route(
            &format!("{DISCOVERY_PATH}/{{tenant}}"),
            get(tenant_discovery),
        )
}

/// Requires an API key on every route of `api` when keys are configured.
pub fn protect(api: Router<Arc<AppState>>, state: &Arc<AppState>) -> Router<Arc<AppState>> {
    if state.settings.api_keys.is_empty() {
        api
    } else {
        api.route_layer(middleware::from_fn_with_state(state.clone(), require_key))
    }
}

async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(key) if key_matches(&state.settings.api_keys, key) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// Compares the key's digest with every configured one, in time independent of where they
/// differ, so response timing tells an attacker nothing.
fn key_matches(digests: &[[u8; 32]], key: &str) -> bool {
    let digest = Sha256::digest(key.as_bytes());
    digests.iter().fold(false, |found, expected| {
        let difference = expected
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found | (difference == 0)
    })
}

/// True when this call should be explained: enabled by the operator and asked for.
pub fn wants_explanation(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.explain
        && headers.get(EXPLAIN).is_some_and(|value| {
            let value = value.as_bytes();
            value.eq_ignore_ascii_case(b"true") || value == b"1"
        })
}

/// One decision API call: one program snapshot, one clock reading, one frame.
pub struct Call<'s> {
    pub program: Arc<Program>,
    pub now: Timestamp,
    /// Present when the call is explained (decisions then use it, to explain from its memo).
    frame: Option<Frame>,
    /// Present when the audit log is on: collects the call's records.
    audit: Option<Recording<'s>>,
    /// The verified identity of `Warden-Subject-Token` (with the subject type it applies to).
    pub identity: Option<crate::gateway::SubjectIdentity>,
    /// Capability keys and revocations, to honour `context.capability`.
    pub capabilities: Option<Arc<crate::capability::present::Verifier>>,
    /// Where allowed requests are counted against the program's limits.
    pub limits: Option<Arc<crate::limit::Limiter>>,
}

/// The audit record of one call, built as it decides and queued when it is answered.
pub struct Recording<'s> {
    log: &'s AuditLog,
    started: Instant,
    /// The index of the batch item being decided.
    item: Option<usize>,
    builder: record::Builder,
}

impl Recording<'_> {
    /// Records an outcome; `limited`: the limit that refused what the policy allowed.
    fn record(
        &mut self,
        program: &Program,
        outcome: record::Outcome<'_>,
        limited: Option<&crate::limit::Refusal>,
    ) {
        let allowed = matches!(outcome, Ok((decision, _)) if decision.allowed) && limited.is_none();
        if !self.log.wants(allowed) {
            return;
        }
        let masking = &self.log.config().masking;
        self.builder
            .counted_outcome(self.item, program, outcome, limited, masking);
    }
}

thread_local! {
    /// The frame audited decisions are made in (its reads go into the record).
    static AUDIT_FRAME: std::cell::RefCell<Frame> = std::cell::RefCell::new(Frame::new());
}

/// Runs `f` with this thread's frame for audited decisions (whose reads go into the record).
pub fn with_audit_frame<T>(f: impl FnOnce(&mut Frame) -> T) -> T {
    AUDIT_FRAME.with(|cell| {
        let mut own = None;
        let mut borrowed = cell.try_borrow_mut();
        let frame = match &mut borrowed {
            Ok(frame) => &mut **frame,
            // Only if deciding re-entered itself; a fresh frame keeps it correct.
            Err(_) => own.insert(Frame::new()),
        };
        f(frame)
    })
}

/// The caller's `X-Request-ID`, else one made up: `w<process start, hex>-<number>`.
pub fn request_id(headers: &HeaderMap) -> record::RequestId<'_> {
    use std::cell::Cell;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");
    if let Some(id) = headers
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return record::RequestId::Given(id);
    }
    /// Numbers a thread takes from the shared counter at once: the counter is touched once
    /// per block rather than by every call on every core (numbers stay unique, not ordered).
    const BLOCK: u64 = 1024;
    static START: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        /// The next number of this thread's block, and the end of the block.
        static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    let number = NEXT.with(|next| {
        let (mut at, mut end) = next.get();
        if at == end {
            at = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
            end = at + BLOCK;
        }
        next.set((at + 1, end));
        at
    });
    let prefix = START.get_or_init(|| format!("w{:x}-", Timestamp::now().as_millisecond()));
    record::RequestId::Made { prefix, number }
}

/// A request as one of the readers left it, for [`Call::evaluate`].
#[allow(
    clippy::large_enum_variant,
    reason = "passed once by value, never stored; boxing would allocate on the hot path"
)]
pub enum Read<'r> {
    /// Parts of a JSON tree: the ordinary reader's, a batch item's.
    Parts(&'r Parts<'r>),
    /// The skeleton reader's: names borrowed, objects parsed.
    Wire(&'r Wire<'r>),
    /// Decoded in one pass ([`request::one_pass`]), with the subject as the body named it. It
    /// holds no capability token: that reader leaves those bodies to the others.
    Decoded(eval::Request, request::NamedSubject<'r>),
}

/// What became of one evaluation.
pub enum Outcome {
    Decided {
        allowed: bool,
        /// The explanation, when asked for.
        context: Option<JsonValue>,
    },
    /// Not well-formed: 400 for a single evaluation, an error item in a batch.
    Failed(Malformed),
}

impl<'s> Call<'s> {
    pub fn new(program: Arc<Program>, explain: bool) -> Call<'s> {
        Call {
            program,
            now: Timestamp::now(),
            frame: explain.then(Frame::new),
            audit: None,
            identity: None,
            capabilities: None,
            limits: None,
        }
    }

    /// A call of the decision API: explained when asked, audited when the log is on, with the
    /// caller's verified identity and the capability keys.
    pub fn for_request(
        state: &'s AppState,
        headers: &HeaderMap,
        program: Arc<Program>,
        started: Instant,
        shape: Shape,
        request: RequestText<'_>,
    ) -> Result<Call<'s>, ApiError> {
        let mut call = Call::new(program, wants_explanation(state, headers)).audited(
            state.audit.as_ref(),
            headers,
            started,
            shape,
            request,
        );
        call.identity = crate::server::identity::authzen_identity(state, headers)?;
        // The token itself is never recorded; what it proved is, so that replay decides
        // with the same attributes.
        if let (Some(audit), Some((identity, subject_type))) = (&mut call.audit, &call.identity) {
            let verified = serde_json::json!({
                "type": &**subject_type,
                "id": identity.subject,
                "attributes": identity.attributes,
            });
            let masking = &audit.log.config().masking;
            audit.builder.member("verified_subject", &verified, masking);
        }
        call.capabilities = state.capabilities.clone();
        call.limits = Some(state.limits.clone());
        Ok(call)
    }

    /// Records this call's decisions in `log` (when there is one): `request` is the call's
    /// body, recorded once as the caller sent it.
    pub fn audited(
        mut self,
        log: Option<&'s AuditLog>,
        headers: &HeaderMap,
        started: Instant,
        shape: Shape,
        request: RequestText<'_>,
    ) -> Call<'s> {
        let now = self.now;
        self.audit = log.map(|log| Recording {
            log,
            started,
            item: None,
            builder: record::Builder::new(
                shape,
                now,
                request_id(headers),
                None,
                request,
                &log.config().masking,
            ),
        });
        self
    }

    /// The next decisions are of batch item `index`.
    pub fn at_item(&mut self, index: usize) {
        if let Some(audit) = &mut self.audit {
            audit.item = Some(index);
        }
    }

    /// The call's audit record, when the audit log is on and a decision was recorded.
    pub fn take_record(&mut self) -> Option<Record> {
        let audit = self.audit.take()?;
        let latency_us = u64::try_from(audit.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        audit.builder.finish(&self.program.version, latency_us)
    }

    /// Decides a request as a reader left it: decoded through the program's declarations,
    /// lent the subject token's attributes, presented with its capability token, decided,
    /// counted against the limits and recorded.
    pub fn evaluate(&mut self, read: Read<'_>) -> Outcome {
        let program = &*self.program;
        let (decoded, named, token) = match read {
            Read::Parts(parts) => {
                let token = match capability_text(parts) {
                    Ok(token) => token,
                    Err(malformed) => return Outcome::Failed(malformed),
                };
                let subject = |key: &str| parts.subject.get(key).and_then(JsonValue::as_str);
                let named = (subject("type"), subject("id"));
                (request::from_parts(program, parts, self.now), named, token)
            }
            Read::Wire(wire) => {
                let token = match wire_capability_text(wire) {
                    Ok(token) => token,
                    Err(malformed) => return Outcome::Failed(malformed),
                };
                let named = (Some(wire.subject_type), Some(wire.subject_id));
                (request::from_wire(program, wire, self.now), named, token)
            }
            Read::Decoded(request, (ty, id)) => (Ok(request), (Some(ty), Some(id)), None),
        };
        let mut refused = None;
        let decoded = decoded.and_then(|mut request| {
            self.lend(program, named, &mut request)?;
            refused = self.attach_capability(program, token, &mut request);
            Ok(request)
        });
        self.decide(decoded, refused)
    }

    /// The subject token's verified attributes, for the subject it proved (`named` is the
    /// request's subject).
    fn lend(
        &self,
        program: &Program,
        named: (Option<&str>, Option<&str>),
        request: &mut eval::Request,
    ) -> Result<(), RequestError> {
        match &self.identity {
            Some((identity, subject_type)) => request::lend_attributes(
                program,
                named,
                (subject_type, &identity.subject),
                &identity.attributes,
                request,
            ),
            None => Ok(()),
        }
    }

    /// Attaches a capability token to the request: why it grants nothing when it does not
    /// verify (the request is then decided without it).
    fn attach_capability(
        &self,
        program: &Program,
        token: Option<&str>,
        request: &mut eval::Request,
    ) -> Option<String> {
        let token = token?;
        let verifier = self.capabilities.as_deref();
        match crate::capability::present::present_to(verifier, program, token, self.now) {
            Ok(presented) => {
                request.capability = Some(presented);
                None
            }
            Err(why) => Some(why.to_string()),
        }
    }

    /// Decides by policy, then counts an allowed request against the limits that apply to it;
    /// the audit record, written once both are known, says which limit refused.
    fn decide(
        &mut self,
        decoded: Result<eval::Request, RequestError>,
        refused: Option<String>,
    ) -> Outcome {
        let program = &*self.program;
        let request = match &decoded {
            Ok(request) => request,
            Err(RequestError::Malformed(message)) => return Outcome::Failed(message.clone()),
            Err(RequestError::Invalid(reason)) => {
                let message = reason.to_string();
                if let Some(audit) = &mut self.audit {
                    audit.record(program, Err(&message), None);
                }
                // Well-formed but not decidable: a deny, never an error.
                return Outcome::Decided {
                    allowed: false,
                    context: self
                        .frame
                        .is_some()
                        .then(|| json!({ "reason_admin": { "en": message } })),
                };
            }
        };
        let limits = self.limits.as_deref();
        let count = |allowed: bool| match limits {
            Some(limits) if allowed && !program.limits.is_empty() => {
                crate::limit::consume(program, request, limits).err()
            }
            _ => None,
        };
        let limited = |refusal: crate::limit::Refusal| Outcome::Decided {
            allowed: false,
            context: Some(limited_context(&refusal)),
        };
        match (&mut self.frame, &mut self.audit) {
            (None, None) => {
                let allowed = eval::decide(program, request).allowed;
                match count(allowed) {
                    Some(refusal) => limited(refusal),
                    None => Outcome::Decided {
                        allowed,
                        context: None,
                    },
                }
            }
            (None, Some(audit)) => with_audit_frame(|frame| {
                let decision = eval::decide_in(program, request, frame);
                let refusal = count(decision.allowed);
                audit.record(program, Ok((&decision, frame)), refusal.as_ref());
                match refusal {
                    Some(refusal) => limited(refusal),
                    None => Outcome::Decided {
                        allowed: decision.allowed,
                        context: None,
                    },
                }
            }),
            (Some(frame), audit) => {
                let decision = eval::decide_in(program, request, frame);
                let refusal = count(decision.allowed);
                if let Some(audit) = audit {
                    audit.record(program, Ok((&decision, frame)), refusal.as_ref());
                }
                if let Some(refusal) = refusal {
                    return limited(refusal);
                }
                let explanation = explain::explain(program, frame, &decision);
                let explanation = serde_json::to_value(&explanation).unwrap_or(JsonValue::Null);
                let mut context = json!({
                    "reason_admin": { "en": explain::verdict_line(program, &decision) },
                    "explanation": explanation,
                });
                if let Some(capability) = capability_outcome(program, request, refused) {
                    context["capability"] = capability;
                }
                Outcome::Decided {
                    allowed: decision.allowed,
                    context: Some(context),
                }
            }
        }
    }
}

/// The `context` of a decision a limit refused: the reason, and when to retry.
pub fn limited_context(refusal: &crate::limit::Refusal) -> JsonValue {
    let mut limit = json!({ "name": refusal.name() });
    if let Some(retry) = refusal.retry_after_secs() {
        limit["retry_after"] = json!(retry);
    }
    json!({
        "reason_admin": { "en": refusal.to_string() },
        "reason_user": { "en": "too many requests; try again later" },
        "limit": limit,
    })
}

/// [`capability_text`] for a request read from the body's bytes.
fn wire_capability_text<'w>(wire: &Wire<'w>) -> Result<Option<&'w str>, Malformed> {
    use crate::data::json::JsonKind;
    let Some(JsonKind::Object(members)) = wire.context.map(|context| &context.kind) else {
        return Ok(None);
    };
    match members
        .iter()
        .find(|(key, _, _)| key == crate::check::schema::CAPABILITY_KEY)
        .map(|(_, _, value)| &value.kind)
    {
        None | Some(JsonKind::Null) => Ok(None),
        Some(JsonKind::String(token)) => Ok(Some(token)),
        Some(_) => Err(Malformed::CapabilityNotText),
    }
}

/// The token in `context.capability`, when there is one (it must be a string).
fn capability_text<'p>(parts: &Parts<'p>) -> Result<Option<&'p str>, Malformed> {
    match parts
        .context
        .and_then(|context| context.get(crate::check::schema::CAPABILITY_KEY))
    {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(token)) => Ok(Some(token)),
        Some(_) => Err(Malformed::CapabilityNotText),
    }
}

/// What the explanation says about a presented token: granted, or why not.
fn capability_outcome(
    program: &Program,
    request: &request::Request,
    refused: Option<String>,
) -> Option<JsonValue> {
    if let Some(why) = refused {
        return Some(json!({ "granted": false, "reason": why }));
    }
    let presented = request.capability.as_deref()?;
    Some(
        match crate::eval::capability::grants(program, request, presented) {
            Ok(_) => json!({ "id": &*presented.token_id, "granted": true }),
            Err(refusal) => json!({
                "id": &*presented.token_id,
                "granted": false,
                "reason": refusal.to_string(),
            }),
        },
    )
}

/// Reads `subject`, `action`, `resource` and `context` of a single evaluation.
fn parts(body: &Map<String, JsonValue>) -> Result<Parts<'_>, ApiError> {
    let required = |key: &str| {
        body.get(key)
            .ok_or_else(|| ApiError::bad_request(format!("missing `{key}`")))
    };
    Ok(Parts {
        subject: required("subject")?,
        action: required("action")?,
        resource: required("resource")?,
        context: body.get("context"),
    })
}

/// A decision API response: JSON, with the policy version it was decided on.
pub fn decided_response(program: &Program, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(version) = HeaderValue::from_str(&program.version) {
        headers.insert(POLICY_VERSION, version);
    }
    response
}

/// Answers, and counts the call in the metrics.
pub fn finish(
    state: &AppState,
    endpoint: Endpoint,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics
        .request(endpoint, response.status().as_u16(), started.elapsed());
    response
}

fn started(body: &Result<AuthzenBody, ApiError>) -> Instant {
    match body {
        Ok(json) => json.started,
        Err(_) => Instant::now(),
    }
}

async fn evaluation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<AuthzenBody, ApiError>,
) -> Response {
    endpoint(&state, &headers, body, Endpoint::Evaluation).await
}

async fn evaluations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<AuthzenBody, ApiError>,
) -> Response {
    endpoint(&state, &headers, body, Endpoint::Evaluations).await
}

/// Answers a call of either evaluation endpoint, queues its audit record and counts it.
async fn endpoint(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<AuthzenBody, ApiError>,
    endpoint: Endpoint,
) -> Response {
    let started = started(&body);
    let batch = matches!(endpoint, Endpoint::Evaluations);
    let mut record = None;
    let result = body.and_then(|body| {
        respond(
            incoming(state, headers, &body),
            batch,
            Readers::All,
            &mut record,
        )
    });
    audit_submit(state, record).await;
    finish(state, endpoint, started, result)
}

/// Which readers a call may be read with: all of them (what the server does), or only the
/// ordinary one ([`crate::eval::strict::parse`]'s tree), which the faster ones must agree
/// with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    All,
    Ordinary,
}

/// One call to an evaluation endpoint, as every reader of it sees it.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    body: &'a AuthzenBody,
}

/// Answers an evaluation call (or, with `batch`, an evaluations call).
fn respond(
    incoming: Incoming<'_>,
    batch: bool,
    readers: Readers,
    record: &mut Option<Record>,
) -> Result<Response, ApiError> {
    if readers == Readers::All
        && let Some(result) = fast(incoming, batch, record)
    {
        return result;
    }
    if batch {
        return self::batch(incoming, record);
    }
    let object = incoming.body.object()?;
    single(incoming, &object, record)
}

/// Answers an evaluation call (or, with `batch`, an evaluations call) whose body is `bytes`,
/// as the server does but without HTTP: the status and the body of the answer. The reader
/// tests and the `decode` fuzz target call it with each of [`Readers`] and compare.
pub fn answer_body(
    state: &Arc<AppState>,
    bytes: &[u8],
    batch: bool,
    readers: Readers,
) -> (u16, Vec<u8>) {
    let body = AuthzenBody::new(axum::body::Bytes::copy_from_slice(bytes), state);
    let mut record = None;
    let headers = HeaderMap::new();
    let response = respond(
        incoming(state, &headers, &body),
        batch,
        readers,
        &mut record,
    )
    .unwrap_or_else(IntoResponse::into_response);
    let status = response.status().as_u16();
    // Every answer is a whole body in memory: one poll collects it.
    let mut collect = std::pin::pin!(axum::body::to_bytes(response.into_body(), usize::MAX));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let bytes = match collect.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Ok(bytes)) => bytes.to_vec(),
        _ => Vec::new(),
    };
    (status, bytes)
}

/// Queues a call's audit record (waiting for room when the queue is full and so configured).
pub async fn audit_submit(state: &AppState, record: Option<Record>) {
    if let (Some(log), Some(record)) = (&state.audit, record) {
        log.submit(record).await;
    }
}

fn incoming<'a>(
    state: &'a AppState,
    headers: &'a HeaderMap,
    body: &'a AuthzenBody,
) -> Incoming<'a> {
    Incoming {
        state,
        headers,
        body,
    }
}

fn single(
    incoming: Incoming<'_>,
    object: &Map<String, JsonValue>,
    record: &mut Option<Record>,
) -> Result<Response, ApiError> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    let parts = parts(object)?;
    let program = state.snapshot(body.started)?;
    let mut call = Call::for_request(
        state,
        headers,
        program,
        body.started,
        Shape::Single,
        RequestText::Unchecked(body.text()?),
    )?;
    let outcome = call.evaluate(Read::Parts(&parts));
    *record = call.take_record();
    answer_single(state, &call.program, outcome)
}

fn answer_single(
    state: &AppState,
    program: &Program,
    outcome: Outcome,
) -> Result<Response, ApiError> {
    match outcome {
        Outcome::Failed(message) => Err(ApiError::BadRequest(message.to_string())),
        Outcome::Decided { allowed, context } => {
            state.metrics.decision(allowed);
            let body: Body = match context {
                None if allowed => Body::from(&br#"{"decision":true}"#[..]),
                None => Body::from(&br#"{"decision":false}"#[..]),
                Some(context) => Body::from(item(allowed, Some(&context))),
            };
            Ok(decided_response(program, body))
        }
    }
}

/// `{"decision": …}`, with a context when there is one.
fn item(allowed: bool, context: Option<&JsonValue>) -> String {
    let mut out = String::with_capacity(24);
    write_item(&mut out, allowed, context);
    out
}

fn write_item(out: &mut String, allowed: bool, context: Option<&JsonValue>) {
    out.push_str(if allowed {
        r#"{"decision":true"#
    } else {
        r#"{"decision":false"#
    });
    if let Some(context) = context {
        out.push_str(r#","context":"#);
        out.push_str(&context.to_string());
    }
    out.push('}');
}

/// `options.evaluations_semantic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

impl Semantic {
    fn parse(options: Option<&JsonValue>) -> Result<Semantic, ApiError> {
        let options = match options {
            None | Some(JsonValue::Null) => return Ok(Semantic::ExecuteAll),
            Some(JsonValue::Object(options)) => options,
            Some(_) => return Err(ApiError::bad_request("`options` must be an object")),
        };
        match options.get("evaluations_semantic") {
            None | Some(JsonValue::Null) => Ok(Semantic::ExecuteAll),
            Some(JsonValue::String(name)) => match name.as_str() {
                "execute_all" => Ok(Semantic::ExecuteAll),
                "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
                "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
                other => Err(ApiError::bad_request(format!(
                    "unknown `options.evaluations_semantic` `{other}`: expected `execute_all`, \
                     `deny_on_first_deny` or `permit_on_first_permit`"
                ))),
            },
            Some(_) => Err(ApiError::bad_request(
                "`options.evaluations_semantic` must be a string",
            )),
        }
    }

    /// True when the batch ends after an item with this decision.
    fn stops_after(self, allowed: bool) -> bool {
        match self {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        }
    }
}

fn batch(incoming: Incoming<'_>, record: &mut Option<Record>) -> Result<Response, ApiError> {
    let Incoming {
        state,
        headers,
        body: raw,
    } = incoming;
    let object = raw.object()?;
    let body = &object;
    let items = match body.get("evaluations") {
        None | Some(JsonValue::Null) => None,
        Some(JsonValue::Array(items)) if items.is_empty() => None,
        Some(JsonValue::Array(items)) => Some(items),
        Some(_) => return Err(ApiError::bad_request("`evaluations` must be an array")),
    };
    let semantic = Semantic::parse(body.get("options"))?;
    // Absent or empty `evaluations`: the call is a single evaluation, answered as one.
    let Some(items) = items else {
        return single(incoming, body, record);
    };
    let program = state.snapshot(raw.started)?;
    let mut call = Call::for_request(
        state,
        headers,
        program,
        raw.started,
        Shape::Batch,
        RequestText::Unchecked(raw.text()?),
    )?;
    let mut out = String::with_capacity(16 + items.len() * 20);
    out.push_str(r#"{"evaluations":["#);
    for (index, entry) in items.iter().enumerate() {
        call.at_item(index);
        // An item's key replaces the default whole; `null` counts as absent.
        let outcome = match Parts::batch_item(body, entry) {
            Ok(parts) => call.evaluate(Read::Parts(&parts)),
            Err(message) => Outcome::Failed(message),
        };
        if semantic.stops_after(batch_item(state, &mut out, index, outcome)) {
            break;
        }
    }
    out.push_str("]}");
    *record = call.take_record();
    Ok(decided_response(&call.program, out))
}

/// Writes item `index` of a batch's answer; returns whether it was allowed.
fn batch_item(state: &AppState, out: &mut String, index: usize, outcome: Outcome) -> bool {
    if index > 0 {
        out.push(',');
    }
    match outcome {
        Outcome::Decided { allowed, context } => {
            state.metrics.decision(allowed);
            write_item(out, allowed, context.as_ref());
            allowed
        }
        Outcome::Failed(message) => {
            let context = json!({ "error": { "status": 400, "message": message.to_string() } });
            write_item(out, false, Some(&context));
            false
        }
    }
}

/// The `properties` and `context` given at one level of a call (its defaults, or an item),
/// parsed.
#[derive(Default)]
struct Objects {
    subject: Option<Json>,
    action: Option<Json>,
    resource: Option<Json>,
    context: Option<Json>,
}

impl Objects {
    fn read(parts: &wire::TextParts<'_>) -> Result<Objects, RequestError> {
        Ok(Objects {
            subject: request::raw_object(
                parts.subject.and_then(|s| s.properties),
                "subject.properties",
            )?,
            action: request::raw_object(
                parts.action.and_then(|a| a.properties),
                "action.properties",
            )?,
            resource: request::raw_object(
                parts.resource.and_then(|r| r.properties),
                "resource.properties",
            )?,
            context: request::raw_object(parts.context, "context")?,
        })
    }

    fn need_masking(&self, masking: &record::Masking) -> bool {
        [&self.subject, &self.action, &self.resource, &self.context]
            .into_iter()
            .flatten()
            .any(|json| masking.needs_json(json))
    }
}

/// Whether names read from the body need masking (a `type`, `id` or `name` that is a token).
fn names_need_masking(masking: &record::Masking, parts: &wire::TextParts<'_>) -> bool {
    let entity = |e: Option<wire::Entity<'_>>| {
        e.is_some_and(|e| masking.needs_text(e.ty) || masking.needs_text(e.id))
    };
    entity(parts.subject)
        || entity(parts.resource)
        || parts.action.is_some_and(|a| masking.needs_text(a.name))
}

/// The body for the audit log: checked when every key of it was the API's, and nothing in it
/// needs masking, so the record copies it as it is.
fn request_text<'t>(
    state: &AppState,
    text: &'t str,
    body: &wire::Body<'_>,
    levels: &[&Objects],
    options: Option<&JsonValue>,
) -> RequestText<'t> {
    let Some(log) = &state.audit else {
        return RequestText::Unchecked(text);
    };
    let masking = &log.config().masking;
    let clean = !body.other_keys
        && masking.spares_request_keys()
        && !names_need_masking(masking, &body.parts)
        && body
            .evaluations
            .iter()
            .flatten()
            .all(|item| !names_need_masking(masking, item))
        && !levels.iter().any(|objects| objects.need_masking(masking))
        && !options.is_some_and(|options| masking.needs_value(options));
    if clean {
        RequestText::Checked(text)
    } else {
        RequestText::Unchecked(text)
    }
}

/// The fast path of both evaluation endpoints: the body decoded without a JSON tree
/// ([`wire::read`]). `None` when the body needs the ordinary path — not readable this way, a
/// part missing or not well-formed — decided nothing yet, so that path answers exactly as it
/// always has (naming what is wrong).
fn fast(
    incoming: Incoming<'_>,
    batch: bool,
    record: &mut Option<Record>,
) -> Option<Result<Response, ApiError>> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    let text = std::str::from_utf8(&body.bytes).ok()?;
    if !batch && let Some(answered) = fast_single(incoming, text, record) {
        return Some(answered);
    }
    let read = wire::read(text)?;
    let mut options = None;
    if batch {
        if let Some(given) = read.options {
            options = Some(serde_json::from_str::<JsonValue>(given).ok()?);
        }
        let semantic = match Semantic::parse(options.as_ref()) {
            Ok(semantic) => semantic,
            Err(error) => return Some(Err(error)),
        };
        if let Some(items) = read.evaluations.as_ref().filter(|items| !items.is_empty()) {
            return fast_batch(
                incoming,
                text,
                &read,
                items,
                semantic,
                options.as_ref(),
                record,
            );
        }
    }
    // A single evaluation.
    let parts = &read.parts;
    let (Some(subject), Some(action), Some(resource)) =
        (parts.subject, parts.action, parts.resource)
    else {
        return None;
    };
    let objects = Objects::read(parts).ok()?;
    let wire = Wire {
        subject_type: subject.ty,
        subject_id: subject.id,
        subject_properties: objects.subject.as_ref(),
        action: action.name,
        action_properties: objects.action.as_ref(),
        resource_type: resource.ty,
        resource_id: resource.id,
        resource_properties: objects.resource.as_ref(),
        context: objects.context.as_ref(),
    };
    let mut answer = || {
        let program = state.snapshot(body.started)?;
        let request = request_text(state, text, &read, &[&objects], options.as_ref());
        let mut call = Call::for_request(
            state,
            headers,
            program,
            body.started,
            Shape::Single,
            request,
        )?;
        let outcome = call.evaluate(Read::Wire(&wire));
        *record = call.take_record();
        answer_single(state, &call.program, outcome)
    };
    Some(answer())
}

/// A single evaluation decoded in one pass from its text ([`request::one_pass`], what
/// `request::read` and the peer harness use): no skeleton, no JSON tree for `properties` and
/// `context`. `None` for every body that decoder leaves alone (anything unusual, every
/// error, a capability token): the skeleton reader then answers, as it always has.
fn fast_single(
    incoming: Incoming<'_>,
    text: &str,
    record: &mut Option<Record>,
) -> Option<Result<Response, ApiError>> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    // A server that cannot answer (no program yet, shutting down) says so on the other paths.
    let program = state.snapshot(body.started).ok()?;
    // The call's own `now` replaces this placeholder below: decoding does not depend on it.
    let (mut request, named) = request::one_pass(&program, text, Timestamp::UNIX_EPOCH)?;
    let answer = || {
        // Read whole for what needs masking, as the skeleton path's parsed trees are: a clean
        // request is recorded as sent.
        let text = match &state.audit {
            Some(log) if log.config().masking.spares_text(text) => RequestText::Checked(text),
            _ => RequestText::Unchecked(text),
        };
        let mut call =
            Call::for_request(state, headers, program, body.started, Shape::Single, text)?;
        request.now = call.now;
        let outcome = call.evaluate(Read::Decoded(request, named));
        *record = call.take_record();
        answer_single(state, &call.program, outcome)
    };
    Some(answer())
}

fn fast_batch(
    incoming: Incoming<'_>,
    text: &str,
    read: &wire::Body<'_>,
    items: &[wire::TextParts<'_>],
    semantic: Semantic,
    options: Option<&JsonValue>,
    record: &mut Option<Record>,
) -> Option<Result<Response, ApiError>> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    // Every `properties` and `context` read before anything is decided.
    let defaults = Objects::read(&read.parts).ok()?;
    let mut own = Vec::with_capacity(items.len());
    for item in items {
        own.push(Objects::read(item).ok()?);
    }
    let mut answer = || {
        let program = state.snapshot(body.started)?;
        let request = match state.audit {
            Some(_) => {
                let mut levels: Vec<&Objects> = Vec::with_capacity(own.len() + 1);
                levels.push(&defaults);
                levels.extend(own.iter());
                request_text(state, text, read, &levels, options)
            }
            None => RequestText::Unchecked(text),
        };
        let mut call =
            Call::for_request(state, headers, program, body.started, Shape::Batch, request)?;
        let top = &read.parts;
        let mut out = String::with_capacity(16 + items.len() * 20);
        out.push_str(r#"{"evaluations":["#);
        for (index, (item, own)) in items.iter().zip(&own).enumerate() {
            call.at_item(index);
            // An item's part replaces the default whole; `null` counts as absent.
            let subject = match item.subject {
                Some(subject) => Some((subject, own.subject.as_ref())),
                None => top.subject.map(|s| (s, defaults.subject.as_ref())),
            };
            let action = match item.action {
                Some(action) => Some((action, own.action.as_ref())),
                None => top.action.map(|a| (a, defaults.action.as_ref())),
            };
            let resource = match item.resource {
                Some(resource) => Some((resource, own.resource.as_ref())),
                None => top.resource.map(|r| (r, defaults.resource.as_ref())),
            };
            let context = match item.context {
                Some(_) => own.context.as_ref(),
                None => defaults.context.as_ref(),
            };
            let outcome = match (subject, action, resource) {
                (Some((subject, sp)), Some((action, ap)), Some((resource, rp))) => {
                    call.evaluate(Read::Wire(&Wire {
                        subject_type: subject.ty,
                        subject_id: subject.id,
                        subject_properties: sp,
                        action: action.name,
                        action_properties: ap,
                        resource_type: resource.ty,
                        resource_id: resource.id,
                        resource_properties: rp,
                        context,
                    }))
                }
                (None, _, _) => Outcome::Failed(Malformed::Missing("subject".to_string())),
                (_, None, _) => Outcome::Failed(Malformed::Missing("action".to_string())),
                (_, _, None) => Outcome::Failed(Malformed::Missing("resource".to_string())),
            };
            if semantic.stops_after(batch_item(state, &mut out, index, outcome)) {
                break;
            }
        }
        out.push_str("]}");
        *record = call.take_record();
        Ok(decided_response(&call.program, out))
    };
    Some(answer())
}

/// `GET /.well-known/authzen-configuration`: where the endpoints are.
async fn discovery(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    discovery_document(&state, &headers, None)
}

/// `GET /.well-known/authzen-configuration/{tenant}`: the document of the PDP identified by
/// the base URL and the tenant path (as RFC 8414 builds the well-known URL). Warden serves
/// one policy set, so every tenant's endpoints are the same.
async fn tenant_discovery(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if tenant.is_empty()
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    discovery_document(&state, &headers, Some(&tenant))
}

fn discovery_document(state: &AppState, headers: &HeaderMap, tenant: Option<&str>) -> Response {
    let base = match base_url(state, headers) {
        Ok(base) => base,
        Err(error) => return error.into_response(),
    };
    let pdp = match tenant {
        Some(tenant) => format!("{base}/{tenant}"),
        // Without a configured URL the base is empty: the root, as a relative reference.
        None if base.is_empty() => "/".to_string(),
        None => base.clone(),
    };
    let document = json!({
        "policy_decision_point": pdp,
        "access_evaluation_endpoint": format!("{base}{EVALUATION_PATH}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS_PATH}"),
        "search_subject_endpoint": format!("{base}{SEARCH_SUBJECT_PATH}"),
        "search_resource_endpoint": format!("{base}{SEARCH_RESOURCE_PATH}"),
        "search_action_endpoint": format!("{base}{SEARCH_ACTION_PATH}"),
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.to_string(),
    )
        .into_response()
}

/// The base of discovery's URLs: the configured public URL; else, behind a trusted proxy,
/// `X-Forwarded-Proto` and `X-Forwarded-Host`; else empty, so that the document holds paths
/// relative to where it was fetched. Never the `Host` header: any caller can write it, and
/// a cache or a client that trusts the document would send decisions (and their bodies)
/// wherever it points.
fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let settings = &state.settings;
    if let Some(url) = &settings.public_url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if settings.trust_forwarded
        && let Some(host) = first("x-forwarded-host")
    {
        let proto = first("x-forwarded-proto").unwrap_or("http");
        if !matches!(proto, "http" | "https") || !valid_host(host) {
            return Err(ApiError::bad_request(
                "`X-Forwarded-Host` or `X-Forwarded-Proto` is not a valid host or scheme",
            ));
        }
        return Ok(format!("{proto}://{host}"));
    }
    Ok(String::new())
}

/// A host name or address with an optional port: nothing that could smuggle a path, a query
/// or credentials into the advertised URLs.
fn valid_host(host: &str) -> bool {
    host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_digest() {
        let digest: [u8; 32] = Sha256::digest(b"s3cret").into();
        assert!(key_matches(&[[0; 32], digest], "s3cret"));
        assert!(!key_matches(&[digest], "s3cre"));
        assert!(!key_matches(&[], "s3cret"));
    }

    #[test]
    fn hosts_cannot_smuggle_urls() {
        assert!(valid_host("pdp.example.com:8443"));
        assert!(valid_host("[::1]:8181"));
        assert!(!valid_host("evil.com/x?"));
        assert!(!valid_host("user@host"));
    }

    #[test]
    fn semantics_parse_and_stop() {
        let parse = |v: JsonValue| Semantic::parse(Some(&v));
        assert_eq!(parse(json!({})).unwrap(), Semantic::ExecuteAll);
        assert_eq!(
            parse(json!({"evaluations_semantic": "deny_on_first_deny"})).unwrap(),
            Semantic::DenyOnFirstDeny
        );
        assert!(parse(json!({"evaluations_semantic": "first"})).is_err());
        assert!(parse(json!("x")).is_err());
        assert!(Semantic::DenyOnFirstDeny.stops_after(false));
        assert!(!Semantic::DenyOnFirstDeny.stops_after(true));
        assert!(Semantic::PermitOnFirstPermit.stops_after(true));
        assert!(!Semantic::ExecuteAll.stops_after(true));
    }
}
