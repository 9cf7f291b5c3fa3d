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
use serde_json::{Value as JsonValue, json};
use sha2::{Digest, Sha256};

use crate::audit::AuditLog;
use crate::audit::record::{self, Record, RequestText, Shape};
use crate::decide::{
    CapabilityUse, Decided, Decider, Pending, Presenting, Proved, Recorder, Step, Verdict,
};
use crate::eval::explain;
use crate::eval::request::{self, Malformed};
use crate::eval::wire;
use crate::eval::{self, Frame, RequestError};
use crate::program::Program;
use crate::server::error::ApiError;
use crate::server::extract::AuthzenBody;
use crate::server::metrics::Endpoint;
use crate::server::{AppState, search};

/// The response header naming the policy version a call was decided on.
pub(crate) const POLICY_VERSION: HeaderName = HeaderName::from_static("warden-policy-version");
/// The request header by which a caller asks for an explanation.
pub(crate) const EXPLAIN: HeaderName = HeaderName::from_static("warden-explain");

pub(crate) const EVALUATION_PATH: &str = "/access/v1/evaluation";
pub(crate) const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
pub(crate) const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
pub(crate) const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
pub(crate) const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
pub(crate) const DISCOVERY_PATH: &str = "/.well-known/authzen-configuration";

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
pub(crate) fn protect(api: Router<Arc<AppState>>, state: &Arc<AppState>) -> Router<Arc<AppState>> {
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
pub(crate) fn wants_explanation(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.explain
        && headers.get(EXPLAIN).is_some_and(|value| {
            let value = value.as_bytes();
            value.eq_ignore_ascii_case(b"true") || value == b"1"
        })
}

/// One decision API call: one program snapshot, one clock reading, one frame.
pub(crate) struct Call<'s> {
    pub program: &'s Program,
    pub now: Timestamp,
    /// Present when the call is explained (decisions then use it, to explain from its memo).
    frame: Option<Frame>,
    /// Present when the audit log is on: collects the call's records.
    audit: Option<Recording<'s>>,
    /// The verified identity of `Warden-Subject-Token` (with the subject type it applies to).
    pub identity: Option<crate::gateway::SubjectIdentity>,
    /// Capability keys and revocations, to honour `context.capability`.
    pub capabilities: Option<&'s crate::capability::present::Verifier>,
    /// Where allowed requests are counted against the program's limits.
    pub limits: Option<&'s crate::limit::Limiter>,
}

/// The audit record of one call, built as it decides and queued when it is answered.
pub(crate) struct Recording<'s> {
    log: &'s AuditLog,
    started: Instant,
    /// The index of the batch item being decided.
    item: Option<usize>,
    builder: record::Builder,
}

impl Recorder for Recording<'_> {
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
        self.builder
            .counted_outcome(self.item, program, outcome, limited, masking);
    }
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

/// What became of one evaluation.
pub(crate) enum Evaluated {
    Decided {
        allowed: bool,
        /// The explanation, when asked for.
        context: Option<JsonValue>,
    },
    /// Not well-formed: 400 for a single evaluation, an error item in a batch.
    Failed(Malformed),
}

impl<'s> Call<'s> {
    /// A call of the decision API, decided at `now`: explained when asked, audited when the
    /// log is on (`request` is the call's body, recorded once as the caller sent it), with
    /// the caller's verified identity and the capability keys.
    pub(crate) fn for_request(
        state: &'s AppState,
        headers: &HeaderMap,
        program: &'s Program,
        (started, now): (Instant, Timestamp),
        shape: Shape,
        request: RequestText<'_>,
    ) -> Result<Call<'s>, ApiError> {
        let mut audit = state.audit.as_ref().map(|log| Recording {
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
        let identity = crate::server::identity::authzen_identity(state, headers)?;
        // The token itself is never recorded; what it proved is, so that replay decides
        // with the same attributes.
        if let (Some(audit), Some((identity, subject_type))) = (&mut audit, &identity) {
            let verified = serde_json::json!({
                "type": &**subject_type,
                "id": identity.subject,
                "attributes": identity.attributes,
            });
            let masking = &audit.log.config().masking;
            audit.builder.member("verified_subject", &verified, masking);
        }
        Ok(Call {
            program,
            now,
            frame: wants_explanation(state, headers).then(Frame::new),
            audit,
            identity,
            capabilities: state.capabilities.as_deref(),
            limits: Some(&state.limits),
        })
    }

    /// The next decisions are of batch item `index`.
    pub(crate) fn at_item(&mut self, index: usize) {
        if let Some(audit) = &mut self.audit {
            audit.item = Some(index);
        }
    }

    /// The call's audit record, when the audit log is on and a decision was recorded.
    pub(crate) fn take_record(&mut self) -> Option<Record> {
        let audit = self.audit.take()?;
        let latency_us = u64::try_from(audit.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        audit.builder.finish(&self.program.version, latency_us)
    }

    /// Decides a request where a reader left it: decoded through the program's declarations
    /// and handed to the decision service with the call's identity, capability token, limits
    /// and audit record. A request still to be counted in Redis comes back waiting, for
    /// [`Call::finish`].
    pub(crate) fn start(&mut self, read: Result<request::Read<'_>, Malformed>) -> Started {
        let (token, read) = match read.and_then(|read| Ok((read.capability()?, read))) {
            Ok(read) => read,
            Err(malformed) => return Started::Evaluated(Evaluated::Failed(malformed)),
        };
        let named = self.named(&read);
        let decoded = read.decode(self.program, self.now);
        self.begin(token, named, decoded)
    }

    /// Takes a request as a reader left it, owned, to decide after an earlier item of its
    /// batch has waited for Redis.
    pub(crate) fn keep(&self, read: Result<request::Read<'_>, Malformed>) -> Kept {
        let read = read?;
        let token = read.capability()?.map(Box::from);
        let (ty, id) = self.named(&read);
        Ok(Item {
            token,
            named: (ty.map(Box::from), id.map(Box::from)),
            decoded: read.decode(self.program, self.now),
        })
    }

    /// The subject's type and id as the request wrote them: they matter only to lend a proved
    /// subject's attributes, so they are read only when the call proved one.
    fn named<'r>(&self, read: &request::Read<'r>) -> (Option<&'r str>, Option<&'r str>) {
        match &self.identity {
            Some(_) => read.named(),
            None => (None, None),
        }
    }

    /// Decides a request [`Call::keep`] kept, as [`Call::start`] does.
    pub(crate) fn start_kept(&mut self, kept: Kept) -> Started {
        match kept {
            Ok(Item {
                token,
                named,
                decoded,
            }) => self.begin(
                token.as_deref(),
                (named.0.as_deref(), named.1.as_deref()),
                decoded,
            ),
            Err(malformed) => Started::Evaluated(Evaluated::Failed(malformed)),
        }
    }

    fn begin(
        &mut self,
        token: Option<&str>,
        named: (Option<&str>, Option<&str>),
        decoded: Result<eval::Request, RequestError>,
    ) -> Started {
        let program = self.program;
        let decider = decider(program, &self.identity, self.capabilities, self.limits);
        let token = token.map(Presenting::Token);
        let recorder = self.audit.as_mut().map(|audit| audit as &mut dyn Recorder);
        let mut decoded = decoded;
        // Decided in place: a request is large, and moved only when it must wait.
        let step = match decoded {
            Ok(ref mut request) => {
                decider.begin(Ok(request), named, token, self.frame.as_mut(), recorder)
            }
            Err(error) => {
                match decider.begin(Err(error), named, token, self.frame.as_mut(), recorder) {
                    Step::Done(verdict) => return Started::Evaluated(self.answer(&verdict, None)),
                    Step::Pending(pending) => return waiting(pending, None),
                }
            }
        };
        match step {
            Step::Done(verdict) => Started::Evaluated(self.answer(&verdict, decoded.as_ref().ok())),
            Step::Pending(pending) => waiting(pending, decoded.ok()),
        }
    }

    /// The answer to a request's verdict (`request`: it, when it could be read).
    fn answer(&self, verdict: &Verdict, request: Option<&eval::Request>) -> Evaluated {
        let explained = self.frame.as_ref().map(|frame| (frame, request));
        answer(self.program, verdict, explained)
    }

    /// Counts a waiting request in Redis, records it, and answers it.
    pub(crate) async fn finish(&mut self, waiting: Box<Waiting>) -> Evaluated {
        let Waiting { pending, request } = *waiting;
        let program = self.program;
        let decider = decider(program, &self.identity, self.capabilities, self.limits);
        let recorder = self
            .audit
            .as_mut()
            .map(|audit| audit as &mut (dyn Recorder + Send));
        let verdict = decider.settle(pending, self.frame.as_mut(), recorder).await;
        self.answer(&verdict, request.as_ref())
    }
}

/// The decision service as one call uses it.
fn decider<'a>(
    program: &'a Program,
    identity: &'a Option<crate::gateway::SubjectIdentity>,
    capabilities: Option<&'a crate::capability::present::Verifier>,
    limits: Option<&'a crate::limit::Limiter>,
) -> Decider<'a> {
    Decider {
        program,
        identity: identity.as_ref().map(|(identity, subject_type)| Proved {
            subject_type,
            subject_id: &identity.subject,
            attributes: &identity.attributes,
        }),
        capabilities,
        limits,
    }
}

fn waiting(pending: Box<Pending>, request: Option<eval::Request>) -> Started {
    Started::Waiting(Box::new(Waiting { pending, request }))
}

/// What became of a request as [`Call::start`] left it.
pub(crate) enum Started {
    Evaluated(Evaluated),
    /// Allowed by policy, and still to be counted in Redis: boxed, as it is rare and large.
    Waiting(Box<Waiting>),
}

/// A request the policy allowed, waiting for its count in Redis.
pub(crate) struct Waiting {
    pending: Box<Pending>,
    /// The request, for its explanation.
    request: Option<eval::Request>,
}

/// A request read to decide later, or what is wrong with it.
pub(crate) type Kept = Result<Item, Malformed>;

/// A request a call read, owned.
pub(crate) struct Item {
    token: Option<Box<str>>,
    /// The subject's type and id as the request wrote them (read only when the call proved a
    /// subject).
    named: (Option<Box<str>>, Option<Box<str>>),
    decoded: Result<eval::Request, RequestError>,
}

/// The answer to one evaluation: its verdict, explained in `context` when the call is
/// (`explained`: the frame it was decided in, and the request).
fn answer(
    program: &Program,
    verdict: &Verdict,
    explained: Option<(&Frame, Option<&eval::Request>)>,
) -> Evaluated {
    let decision = match &verdict.decision {
        Ok(decision) => decision,
        Err(RequestError::Malformed(message)) => return Evaluated::Failed(message.clone()),
        // Well-formed but not decidable: a deny, never an error.
        Err(RequestError::Invalid(reason)) => {
            return Evaluated::Decided {
                allowed: false,
                context: explained.map(|_| json!({ "reason_admin": { "en": reason.to_string() } })),
            };
        }
    };
    if let Some(refusal) = verdict.limited() {
        return Evaluated::Decided {
            allowed: false,
            context: Some(limited_context(refusal)),
        };
    }
    let context = explained.map(|(frame, request)| {
        let explanation = explain::explain(program, frame, decision);
        let explanation = serde_json::to_value(&explanation).unwrap_or(JsonValue::Null);
        let mut context = json!({
            "reason_admin": { "en": explain::verdict_line(program, decision) },
            "explanation": explanation,
        });
        if let Some(capability) =
            request.and_then(|request| crate::decide::capability_use(program, request, verdict))
        {
            context["capability"] = capability_context(&capability);
        }
        context
    });
    Evaluated::Decided {
        allowed: verdict.allowed,
        context,
    }
}

/// The `context` of a decision a limit refused: the reason, and when to retry.
pub(crate) fn limited_context(refusal: &crate::limit::Refusal) -> JsonValue {
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

/// What the explanation says about a presented token: granted, or why not.
fn capability_context(capability: &CapabilityUse<'_>) -> JsonValue {
    match capability {
        CapabilityUse::Rejected(why) => json!({ "granted": false, "reason": why.to_string() }),
        CapabilityUse::Presented {
            token_id,
            grant: Ok(()),
        } => json!({ "id": token_id, "granted": true }),
        CapabilityUse::Presented {
            token_id,
            grant: Err(refusal),
        } => json!({
            "id": token_id,
            "granted": false,
            "reason": refusal.to_string(),
        }),
    }
}

/// A decision API response: JSON, with the policy version it was decided on.
pub(crate) fn decided_response(program: &Program, body: impl Into<Body>) -> Response {
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
    let result = match body {
        Ok(body) => {
            respond(
                incoming(state, headers, &body),
                batch,
                Readers::All,
                &mut record,
            )
            .await
        }
        Err(error) => Err(error),
    };
    audit_submit(state, record).await;
    finish(state, endpoint, started, result)
}

pub use crate::eval::request::Readers;

/// One call to an evaluation endpoint, as every reader of it sees it.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    body: &'a AuthzenBody,
}

/// Answers an evaluation call (or, with `batch`, an evaluations call), read by
/// [`request::read_evaluation`] (or [`request::read_evaluations`]). Each request is decided
/// where it was read; one that must wait for Redis is awaited once the body's reader is done.
async fn respond(
    incoming: Incoming<'_>,
    batch: bool,
    readers: Readers,
    record: &mut Option<Record>,
) -> Result<Response, ApiError> {
    let Incoming { state, body, .. } = incoming;
    let now = Timestamp::now();
    // A server that cannot answer (no program yet, shutting down) says so once the body is
    // read: a malformed one is still the caller's error.
    let snapshot = state.snapshot(body.started);
    let read = if batch {
        request::read_evaluations(&body.bytes, readers, |read| {
            self::read_batch(incoming, &snapshot, now, read?)
        })
    } else {
        request::read_evaluation(
            snapshot.as_deref().ok(),
            &body.bytes,
            now,
            readers,
            |read| {
                let (read, seen) = read?;
                let program = snapshot.as_deref().map_err(Clone::clone)?;
                let text = request_text(state, &seen);
                read_single(incoming, program, now, Ok(read), text)
            },
        )
    };
    let (answered, recorded) = match read? {
        Read::Answered(answered, recorded) => (answered, recorded),
        // Boxed: the wait for Redis is rare, and its future is large; held inline it would
        // make every call's future as large, and copied as often.
        Read::Waiting(waiting) => Box::pin(waiting.finish(state)).await,
    };
    *record = recorded;
    answered
}

/// A call as its body's reader left it: answered, with its audit record, or waiting for a
/// request's count in Redis.
enum Read<'s> {
    Answered(Result<Response, ApiError>, Option<Record>),
    Waiting(Box<Wait<'s>>),
}

/// A call waiting for a request's count in Redis: what is left of it.
struct Wait<'s> {
    call: Call<'s>,
    waiting: Box<Waiting>,
    rest: Rest,
}

/// What follows the request a call waits on.
enum Rest {
    /// Nothing: it is the single evaluation.
    Single,
    /// Batch item `index`; the items after it, read, owned, and decided in order once it is
    /// counted.
    Batch {
        answer: BatchAnswer,
        index: usize,
        rest: Vec<Kept>,
    },
}

impl Wait<'_> {
    /// Counts the request waited on, decides what follows it, and answers.
    async fn finish(
        self: Box<Self>,
        state: &AppState,
    ) -> (Result<Response, ApiError>, Option<Record>) {
        let Wait {
            mut call,
            waiting,
            rest,
        } = *self;
        let outcome = call.finish(waiting).await;
        let answered = match rest {
            Rest::Single => answer_single(state, call.program, outcome),
            Rest::Batch {
                mut answer,
                index,
                rest,
            } => {
                if !answer.push(state, index, outcome) {
                    for (index, kept) in (index + 1..).zip(rest) {
                        call.at_item(index);
                        let outcome = match call.start_kept(kept) {
                            Started::Evaluated(outcome) => outcome,
                            Started::Waiting(waiting) => call.finish(waiting).await,
                        };
                        if answer.push(state, index, outcome) {
                            break;
                        }
                    }
                }
                Ok(answer.finish(call.program))
            }
        };
        (answered, call.take_record())
    }
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
    // Without limits kept in Redis nothing waits: one poll answers.
    let answered = crate::server::forward::ready(respond(
        incoming(state, &headers, &body),
        batch,
        readers,
        &mut record,
    ));
    let Some(response) = answered else {
        return (503, Vec::new());
    };
    let response = response.unwrap_or_else(IntoResponse::into_response);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let status = response.status().as_u16();
    // Every answer is a whole body in memory: one poll collects it.
    let mut collect = std::pin::pin!(axum::body::to_bytes(response.into_body(), usize::MAX));
    let bytes = match collect.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Ok(bytes)) => bytes.to_vec(),
        _ => Vec::new(),
    };
    (status, bytes)
}

/// Queues a call's audit record (waiting for room when the queue is full and so configured).
pub(crate) async fn audit_submit(state: &AppState, record: Option<Record>) {
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

/// Reads and decides a single evaluation (`text`: the body, for the audit log).
fn read_single<'s>(
    incoming: Incoming<'s>,
    program: &'s Program,
    now: Timestamp,
    read: Result<request::Read<'_>, Malformed>,
    text: RequestText<'_>,
) -> Result<Read<'s>, ApiError> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    let when = (body.started, now);
    let mut call = Call::for_request(state, headers, program, when, Shape::Single, text)?;
    Ok(match call.start(read) {
        Started::Evaluated(outcome) => {
            let answered = answer_single(state, program, outcome);
            Read::Answered(answered, call.take_record())
        }
        Started::Waiting(waiting) => Read::Waiting(Box::new(Wait {
            call,
            waiting,
            rest: Rest::Single,
        })),
    })
}

fn answer_single(
    state: &AppState,
    program: &Program,
    outcome: Evaluated,
) -> Result<Response, ApiError> {
    match outcome {
        Evaluated::Failed(message) => Err(ApiError::BadRequest(message.to_string())),
        Evaluated::Decided { allowed, context } => {
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
pub(crate) enum Semantic {
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

/// Reads and decides an evaluations call: its items in order, each counted against the limits
/// before the next is decided.
fn read_batch<'s>(
    incoming: Incoming<'s>,
    snapshot: &'s Result<Arc<Program>, ApiError>,
    now: Timestamp,
    read: request::Evaluations<'_>,
) -> Result<Read<'s>, ApiError> {
    let Incoming {
        state,
        headers,
        body,
    } = incoming;
    let semantic = Semantic::parse(read.options)?;
    let text = request_text(state, &read.seen);
    let program = snapshot.as_deref().map_err(Clone::clone)?;
    let items = match read.shape {
        // Absent or empty `evaluations`: the call is a single evaluation, answered as one.
        request::Shape::Single(single) => {
            return read_single(incoming, program, now, Ok(single?), text);
        }
        request::Shape::Batch(items) => items,
    };
    let when = (body.started, now);
    let mut call = Call::for_request(state, headers, program, when, Shape::Batch, text)?;
    let mut answer = BatchAnswer::new(semantic, items.len());
    for index in 0..items.len() {
        call.at_item(index);
        match call.start(items.item(index)) {
            Started::Evaluated(outcome) => {
                if answer.push(state, index, outcome) {
                    break;
                }
            }
            Started::Waiting(waiting) => {
                let rest = (index + 1..items.len())
                    .map(|index| call.keep(items.item(index)))
                    .collect();
                return Ok(Read::Waiting(Box::new(Wait {
                    call,
                    waiting,
                    rest: Rest::Batch {
                        answer,
                        index,
                        rest,
                    },
                })));
            }
        }
    }
    let answered = Ok(answer.finish(program));
    Ok(Read::Answered(answered, call.take_record()))
}

/// The answer to an evaluations call, written item by item.
struct BatchAnswer {
    semantic: Semantic,
    out: String,
}

impl BatchAnswer {
    fn new(semantic: Semantic, items: usize) -> BatchAnswer {
        let mut out = String::with_capacity(16 + items * 20);
        out.push_str(r#"{"evaluations":["#);
        BatchAnswer { semantic, out }
    }

    /// Writes item `index`; returns whether the batch ends after it.
    fn push(&mut self, state: &AppState, index: usize, outcome: Evaluated) -> bool {
        let out = &mut self.out;
        if index > 0 {
            out.push(',');
        }
        let allowed = match outcome {
            Evaluated::Decided { allowed, context } => {
                state.metrics.decision(allowed);
                write_item(out, allowed, context.as_ref());
                allowed
            }
            Evaluated::Failed(message) => {
                let context = json!({ "error": { "status": 400, "message": message.to_string() } });
                write_item(out, false, Some(&context));
                false
            }
        };
        self.semantic.stops_after(allowed)
    }

    fn finish(mut self, program: &Program) -> Response {
        self.out.push_str("]}");
        decided_response(program, self.out)
    }
}

fn parsed_needs_masking(masking: &record::Masking, parsed: &request::Parsed) -> bool {
    [
        &parsed.subject,
        &parsed.action,
        &parsed.resource,
        &parsed.context,
    ]
    .into_iter()
    .flatten()
    .any(|json| masking.needs_json(json))
}

/// Whether names read from the body need masking (a `type`, `id` or `name` that is a token).
fn names_need_masking(masking: &record::Masking, parts: &wire::TextParts<'_>) -> bool {
    let entity = |e: Option<wire::EntityPart<'_>>| {
        e.is_some_and(|e| masking.needs_text(e.ty) || masking.needs_text(e.id))
    };
    entity(parts.subject)
        || entity(parts.resource)
        || parts.action.is_some_and(|a| masking.needs_text(a.name))
}

/// The body for the audit log, by how the reader saw it: checked when nothing in it needs
/// masking (read whole by the one-pass reader; or every key of it the API's, and no value
/// that needs masking, by the skeleton reader), so the record copies it as it is.
fn request_text<'t>(state: &AppState, seen: &request::Seen<'t>) -> RequestText<'t> {
    let (log, text, body, levels) = match (&state.audit, seen) {
        (_, request::Seen::Tree(text))
        | (None, request::Seen::Text(text) | request::Seen::Skeleton { text, .. }) => {
            return RequestText::Unchecked(text);
        }
        (Some(log), request::Seen::Text(text)) => {
            return if log.config().masking.spares_text(text) {
                RequestText::Checked(text)
            } else {
                RequestText::Unchecked(text)
            };
        }
        (
            Some(log),
            request::Seen::Skeleton {
                text,
                skeleton,
                levels,
            },
        ) => (log, *text, *skeleton, *levels),
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
        && !levels
            .iter()
            .any(|parsed| parsed_needs_masking(masking, parsed))
        && body
            .options
            .is_none_or(|options| masking.spares_text(options));
    if clean {
        RequestText::Checked(text)
    } else {
        RequestText::Unchecked(text)
    }
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
