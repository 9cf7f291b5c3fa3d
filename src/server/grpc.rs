//! Envoy's `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`) and the gRPC
//! health service (`grpc.health.v1.Health`), on their own listener (`grpc_listen`, a TCP port or
//! a Unix socket): HTTP/2, cleartext (h2c) or TLS with ALPN `h2` under the `tls_*` settings of the decision API.
//!
//! A check is the forward-auth check ([`forward::check`]): the method, path, host and headers
//! Envoy reports in `attributes.request.http` are routed, normalised, identified and decided as
//! the HTTP endpoints do. Envoy's own knowledge is added to `context`: `ip` is the source peer's
//! address (the downstream connection Envoy accepted, not a header), and `destination_ip`,
//! `source_principal`, `destination_principal` and `extensions` (the route's
//! `context_extensions`) say what Envoy says.
//!
//! Answers follow the ext_authz contract: an allow is `OK` with an `OkHttpResponse` carrying the
//! upstream headers (overwriting what the client sent, and removing the configured upstream
//! headers that got no value, and `Authorization` with `grpc_strip_authorization`); a deny is `PERMISSION_DENIED` with a `403`, a missing or invalid
//! identity `UNAUTHENTICATED` with a `401` and `WWW-Authenticate`, and no program to decide on
//! `UNAVAILABLE` with a `503`. Every status but `OK` makes Envoy deny, whatever
//! `failure_mode_allow` says (that applies only when the call itself fails).

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{Address, HeaderValue as EnvoyHeader};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value as ProtoValue};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prost::Message;
use serde_json::{Map, Value as JsonValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::{Code, Request, Response, Status};
use tonic_health::ServingStatus;

use crate::gateway::GatewayConfig;
use crate::server::AppState;
use crate::server::connections::Accept;
use crate::server::forward::{self, Answer, Arrival, Flavour, Original};
use crate::server::listen::{Bound, SocketFile};
use crate::server::tls::TlsState;

/// The service name health checks ask about, beside the server as a whole (`""`).
pub(crate) const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";

/// How often the health service looks at policy readiness.
const READINESS_POLL: Duration = Duration::from_millis(500);

/// The `Authorization` service: every check through [`forward::check`].
#[derive(Clone)]
pub struct Authorizer {
    state: Arc<AppState>,
}

impl Authorizer {
    pub fn new(state: Arc<AppState>) -> Authorizer {
        Authorizer { state }
    }

    /// Decides one check, and queues its audit record.
    pub async fn decide(&self, request: &CheckRequest) -> CheckResponse {
        let (response, record) = answer(&self.state, request).await;
        crate::server::authzen::audit_submit(&self.state, record).await;
        response
    }
}

#[tonic::async_trait]
impl Authorization for Authorizer {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(self.decide(request.get_ref()).await))
    }
}

/// What a check reports, read out of the request: the HTTP request's parts, its headers as an
/// HTTP header map, and the context Envoy adds.
struct Described<'r> {
    http: Option<&'r HttpRequest>,
    headers: HeaderMap,
    context: Map<String, JsonValue>,
    ip: Option<IpAddr>,
}

fn describe(request: &CheckRequest) -> Described<'_> {
    let attributes = request.attributes.as_ref();
    let http = attributes
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let mut headers = HeaderMap::with_capacity(http.map_or(0, |http| {
        http.headers.len() + http.header_map.as_ref().map_or(0, |m| m.headers.len())
    }));
    if let Some(http) = http {
        // Envoy sends `headers`, or with `encode_raw_headers` the `header_map` (values as
        // bytes). Pseudo-headers (`:path`, ...) are no header names here; their meaning comes
        // in `method`, `path` and `host`.
        let raw = http.header_map.iter().flat_map(|m| m.headers.iter());
        let pairs = http
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .chain(raw.map(|h: &EnvoyHeader| {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    h.raw_value.as_slice()
                };
                (h.key.as_str(), value)
            }));
        for (name, value) in pairs {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
    }
    let mut context = Map::new();
    let source = attributes.and_then(|a| a.source.as_ref());
    let destination = attributes.and_then(|a| a.destination.as_ref());
    let ip = source.and_then(peer_ip);
    if let Some(ip) = destination.and_then(peer_ip) {
        context.insert("destination_ip".into(), JsonValue::String(ip.to_string()));
    }
    for (key, peer) in [
        ("source_principal", source),
        ("destination_principal", destination),
    ] {
        if let Some(peer) = peer.filter(|p| !p.principal.is_empty()) {
            context.insert(key.into(), JsonValue::String(peer.principal.clone()));
        }
    }
    if let Some(attributes) = attributes
        && !attributes.context_extensions.is_empty()
    {
        let extensions = attributes
            .context_extensions
            .iter()
            .map(|(k, v)| (k.clone(), JsonValue::String(v.clone())))
            .collect();
        context.insert("extensions".into(), JsonValue::Object(extensions));
    }
    Described {
        http,
        headers,
        context,
        ip,
    }
}

/// A peer's IP address, when Envoy reports a socket address.
fn peer_ip(peer: &Peer) -> Option<IpAddr> {
    match peer.address.as_ref()? {
        Address {
            address: Some(AddressKind::SocketAddress(socket)),
        } => socket.address.parse().ok(),
        _ => None,
    }
}

/// Decides one check and counts it in the metrics; with the audit log on, also its record.
pub async fn answer(
    state: &AppState,
    request: &CheckRequest,
) -> (CheckResponse, Option<crate::audit::record::Record>) {
    let started = Instant::now();
    let described = describe(request);
    let original = match described.http {
        Some(http) if !http.method.is_empty() && !http.path.is_empty() => Ok(Original {
            method: &http.method,
            target: &http.path,
            host: Some(http.host.as_str()).filter(|h| !h.is_empty()),
            ip: described.ip,
            context: Some(&described.context),
        }),
        Some(_) => Err("the check names no method or path".to_string()),
        None => Err("the check carries no HTTP request".to_string()),
    };
    let call = Arrival {
        flavour: Flavour::EnvoyGrpc,
        headers: &described.headers,
        started,
    };
    let (outcome, record) = forward::check(state, &call, original).await;
    (response(outcome, &state.settings.gateway), record)
}

fn header(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeader {
            key: name.to_string(),
            value: value.to_string(),
            ..EnvoyHeader::default()
        }),
        // What the client sent under these names never reaches the upstream.
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn rpc_status(code: Code, message: &str) -> Option<RpcStatus> {
    Some(RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: Vec::new(),
    })
}

/// The policy version as `dynamic_metadata` (`warden.policy_version`): Envoy can log it, and
/// it is never sent to the client or the upstream.
fn metadata(version: Option<&str>) -> Option<Struct> {
    let version = version?;
    let value = ProtoValue {
        kind: Some(Kind::StringValue(version.to_string())),
    };
    Some(Struct {
        fields: [("policy_version".to_string(), value)]
            .into_iter()
            .collect(),
    })
}

fn denied(
    status: u16,
    code: Code,
    body: &str,
    mut headers: Vec<HeaderValueOption>,
    version: Option<&str>,
) -> CheckResponse {
    headers.push(header("content-type", "text/plain; charset=utf-8"));
    CheckResponse {
        status: rpc_status(code, body.trim_end()),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: body.to_string(),
        })),
        dynamic_metadata: metadata(version),
    }
}

/// The ext_authz answer of an outcome. Of the upstream headers Warden sets, those an allow gives
/// no value are removed from the upstream request, so a client cannot supply them; and with
/// `grpc_strip_authorization`, so is `Authorization`.
pub fn response(outcome: Answer, gateway: &GatewayConfig) -> CheckResponse {
    match outcome {
        Answer::Allowed { headers, version } => {
            let set: Vec<HeaderValueOption> = headers
                .iter()
                .filter_map(|(name, value)| Some(header(name.as_str(), value.to_str().ok()?)))
                .collect();
            let mut headers_to_remove: Vec<String> = gateway
                .upstream_headers
                .iter()
                .filter(|(name, _)| {
                    !headers
                        .iter()
                        .any(|(set, _)| set.as_str().eq_ignore_ascii_case(name))
                })
                .map(|(name, _)| name.to_ascii_lowercase())
                .collect();
            if gateway.grpc_strip_authorization {
                headers_to_remove.push("authorization".to_string());
            }
            CheckResponse {
                status: rpc_status(Code::Ok, ""),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: set,
                    headers_to_remove,
                    ..OkHttpResponse::default()
                })),
                dynamic_metadata: metadata(Some(&version)),
            }
        }
        Answer::Denied { version, .. } => denied(
            403,
            Code::PermissionDenied,
            forward::FORBIDDEN_BODY,
            Vec::new(),
            version.as_deref(),
        ),
        Answer::Limited { refusal, version } => denied(
            429,
            Code::ResourceExhausted,
            forward::TOO_MANY_BODY,
            forward::limit_fields(&refusal)
                .iter()
                .filter_map(|(name, value)| Some(header(name.as_str(), value.to_str().ok()?)))
                .collect(),
            Some(&version),
        ),
        Answer::Unauthenticated(error) => denied(
            401,
            Code::Unauthenticated,
            forward::UNAUTHORIZED_BODY,
            vec![header("www-authenticate", &forward::challenge(&error))],
            None,
        ),
        Answer::Unavailable(error) => denied(
            error.status().as_u16(),
            Code::Unavailable,
            "unavailable\n",
            Vec::new(),
            None,
        ),
    }
}

/// A gRPC connection over a TCP or Unix socket `S`: cleartext (h2c) or TLS.
pub enum Connection<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Connection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Connection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS configuration of the gRPC listener: the decision API's, offering `h2` alone.
fn h2_acceptor(tls: &TlsState) -> TlsAcceptor {
    let mut config = (*tls.current()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts connections (and finishes their TLS handshakes, each in its own task, within
/// `timeout`) into a channel, until the listener's receiver is gone.
fn accept<A: Accept>(
    mut listener: A,
    tls: Option<(Arc<TlsState>, Duration)>,
) -> mpsc::Receiver<Connection<A::Io>> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            // TCP connections come with Nagle off (as on the HTTP listeners).
            let (stream, address) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: wait, and accept again.
                        tracing::warn!(%error, "gRPC: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            match &tls {
                None => {
                    if sender.send(Connection::Plain(stream)).await.is_err() {
                        return;
                    }
                }
                Some((state, timeout)) => {
                    let acceptor = h2_acceptor(state);
                    let (sender, timeout) = (sender.clone(), *timeout);
                    tokio::spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let _ = sender.send(Connection::Tls(Box::new(stream))).await;
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%error, ?address, "gRPC: TLS handshake refused");
                            }
                            Err(_) => {
                                tracing::debug!(?address, "gRPC: TLS handshake timed out");
                            }
                        }
                    });
                }
            }
        }
    });
    receiver
}

/// Keeps the health service's answer equal to policy readiness (a program is loaded and the
/// server is not shutting down) until `shutdown`.
async fn follow_readiness(
    state: Arc<AppState>,
    reporter: tonic_health::server::HealthReporter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        let ready = state.ready() && !*shutdown.borrow();
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for service in ["", AUTHORIZATION_SERVICE] {
                reporter.set_service_status(service, status).await;
            }
            last = Some(ready);
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(READINESS_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Serves `Authorization` and `Health` on `listener`, a TCP port or a Unix socket (through TLS
/// when `tls` is set), until `shutdown` turns true, then lets the calls in flight finish. The
/// socket file, if any, is returned to be kept (and removed) by the caller.
pub fn serve(
    listener: Bound,
    state: Arc<AppState>,
    tls: Option<(Arc<TlsState>, Duration)>,
    shutdown: watch::Receiver<bool>,
) -> (JoinHandle<std::io::Result<()>>, Option<SocketFile>) {
    match listener {
        Bound::Tcp(listener) => (serve_on(listener, state, tls, shutdown), None),
        #[cfg(unix)]
        Bound::Unix(listener, file) => (serve_on(listener, state, tls, shutdown), Some(file)),
    }
}

/// The HTTP/2 settings of every gRPC connection. hyper's defaults hold where nothing is set:
/// 16 KiB of request headers at most (`SETTINGS_MAX_HEADER_LIST_SIZE`), 200 streams at once
/// per connection, 1 MiB flow-control windows, and the guards against rapid and abusive stream
/// resets.
fn http2_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // Neither Envoy nor gRPC reads a `Date`; not writing one saves formatting and HPACK
        // work on every answer.
        .auto_date_header(false);
    builder
}

fn serve_on<A: Accept>(
    listener: A,
    state: Arc<AppState>,
    tls: Option<(Arc<TlsState>, Duration)>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(follow_readiness(state.clone(), reporter, shutdown.clone()));
    let service = Service(Arc::new(Services {
        limit: state.settings.body_limit,
        timeout: state.settings.request_timeout,
        authorizer: Authorizer::new(state),
        others: tonic::service::Routes::new(health),
    }));
    let mut incoming = accept(listener, tls);
    let builder = http2_builder();
    let mut stop = shutdown;
    tokio::spawn(async move {
        // Every connection task holds a receiver; `closed` resolves when the last one ends.
        let (done, open) = watch::channel(());
        loop {
            let connection = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                connection = incoming.recv() => match connection {
                    Some(connection) => connection,
                    None => break,
                },
            };
            tokio::spawn(serve_connection(
                connection,
                builder.clone(),
                service.clone(),
                stop.clone(),
                open.clone(),
            ));
        }
        // Stops accepting (the accept task ends with its receiver), then waits for the
        // connections to finish their calls.
        drop(incoming);
        drop(open);
        done.closed().await;
        Ok(())
    })
}

/// Serves one HTTP/2 connection until the client closes it, or, once `shutdown` turns true,
/// until the calls in flight are answered (a GOAWAY tells the client to open no more streams).
async fn serve_connection<S>(
    connection: Connection<S>,
    builder: hyper::server::conn::http2::Builder<TokioExecutor>,
    service: Service,
    mut shutdown: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = std::pin::pin!(builder.serve_connection(TokioIo::new(connection), service));
    let ended = tokio::select! {
        result = http.as_mut() => Some(result),
        _ = shutdown.wait_for(|stop| *stop) => None,
    };
    let result = match ended {
        Some(result) => result,
        None => {
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "gRPC: connection ended with an error");
    }
}

/// The gRPC path of `Authorization/Check`.
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// Streams one connection may have open at once; Envoy queues its further checks until one
/// ends.
const MAX_CONCURRENT_STREAMS: u32 = 200;

/// The services of the gRPC listener. `Check` is answered here, without tonic's generic
/// streaming machinery: a unary call is one length-prefixed message each way, read and written
/// whole. Every other path (the health service, and `UNIMPLEMENTED` for unknown ones) goes to
/// tonic's router.
#[derive(Clone)]
struct Service(Arc<Services>);

struct Services {
    authorizer: Authorizer,
    others: tonic::service::Routes,
    limit: usize,
    timeout: Duration,
}

type Answering =
    Pin<Box<dyn Future<Output = Result<axum::http::Response<Reply>, Infallible>> + Send>>;

impl hyper::service::Service<axum::http::Request<Incoming>> for Service {
    type Response = axum::http::Response<Reply>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, request: axum::http::Request<Incoming>) -> Answering {
        if request.uri().path() == CHECK_PATH {
            let services = self.0.clone();
            return Box::pin(async move { Ok(services.check(request).await) });
        }
        // tonic's router is always ready (its `poll_ready` returns at once).
        let answer = tower_service::Service::call(&mut self.0.others.clone(), request);
        Box::pin(async move {
            let Ok(response) = answer.await;
            Ok(response.map(Reply::Other))
        })
    }
}

impl Services {
    /// One `Check`: the request message, decided, within the server's `request_timeout` (or the
    /// client's shorter `grpc-timeout`), as tonic's server answers a unary call.
    async fn check(&self, request: axum::http::Request<Incoming>) -> axum::http::Response<Reply> {
        let started = Instant::now();
        if let Err(status) = identity_encoding(request.headers()) {
            return status.into_http();
        }
        let timeout = match client_timeout(request.headers()) {
            Some(client) => client.min(self.timeout),
            None => self.timeout,
        };
        let call = async {
            let message = read_message(request.into_body(), self.limit).await?;
            Ok::<_, Status>(self.authorizer.decide(&message).await)
        };
        match (Deadline {
            inner: call,
            at: started + timeout,
            sleep: None,
        })
        .await
        {
            Some(Ok(response)) => Reply::answer(&response),
            Some(Err(status)) => status.into_http(),
            None => Status::cancelled("Timeout expired").into_http(),
        }
    }
}

/// Refuses a compressed request as tonic does: Warden accepts no `grpc-encoding` but
/// `identity`.
fn identity_encoding(headers: &HeaderMap) -> Result<(), Status> {
    match headers.get("grpc-encoding") {
        None => Ok(()),
        Some(value) if value.as_bytes() == b"identity" => Ok(()),
        Some(value) => {
            let mut status = Status::unimplemented(format!(
                "Content is compressed with `{}` which isn't supported",
                String::from_utf8_lossy(value.as_bytes())
            ));
            status.metadata_mut().insert(
                "grpc-accept-encoding",
                tonic::metadata::MetadataValue::from_static("identity"),
            );
            Err(status)
        }
    }
}

/// The client's `grpc-timeout` (at most 8 digits and a unit), when it sends a valid one.
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let unit = value.len().checked_sub(1)?;
    let (amount, unit) = (value.get(..unit)?, value.get(unit..)?);
    if amount.len() > 8 {
        return None;
    }
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

pin_project_lite::pin_project! {
    /// `inner`, or `None` once `at` has passed. The timer is armed only when `inner` has to
    /// wait: a check whose message came whole with its headers (the usual case) is decided
    /// without touching the timer wheel.
    struct Deadline<F> {
        #[pin]
        inner: F,
        at: Instant,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let at = *this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.into())));
        sleep.as_mut().poll(cx).map(|()| None)
    }
}

/// The gRPC message header: a compression flag and the message's length (big-endian).
const FRAME_HEADER: usize = 5;

/// Reads a unary call's request body, and decodes its first message; the messages after it are
/// decoded and dropped, as tonic does. A length over `limit` is refused (`OUT_OF_RANGE`) as
/// soon as its header arrives; a compressed, truncated, missing or undecodable message is
/// `INTERNAL`.
async fn read_message(mut body: Incoming, limit: usize) -> Result<CheckRequest, Status> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut first = None;
    loop {
        let chunk = match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: the body is over.
                Err(_) => continue,
            },
            Some(Err(error)) => {
                let status = Status::from_error(Box::new(error));
                // A client that cancels has ended its request (tonic's reading).
                if status.code() == Code::Cancelled {
                    break;
                }
                return Err(status);
            }
            None => break,
        };
        // The usual case: the whole message in one DATA frame, decoded where it lies.
        let rest = if buffer.is_empty() {
            messages(&chunk, limit, &mut first)?
        } else {
            buffer.extend_from_slice(&chunk);
            let used = buffer.len() - messages(&buffer, limit, &mut first)?.len();
            buffer.drain(..used);
            &[]
        };
        buffer.extend_from_slice(rest);
    }
    if !buffer.is_empty() {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    first.ok_or_else(|| Status::internal("Missing request message."))
}

/// Decodes the complete messages at the start of `bytes` (the first into `first`), and returns
/// what remains: the start of an incomplete one.
fn messages<'b>(
    mut bytes: &'b [u8],
    limit: usize,
    first: &mut Option<CheckRequest>,
) -> Result<&'b [u8], Status> {
    while let Some(&[flag, a, b, c, d]) = bytes.get(..FRAME_HEADER) {
        match flag {
            0 => {}
            1 => {
                return Err(Status::internal(
                    "protocol error: received message with compressed-flag but no grpc-encoding was specified",
                ));
            }
            flag => {
                return Err(Status::internal(format!(
                    "protocol error: received message with invalid compression flag: {flag} (valid flags are 0 and 1), while sending request"
                )));
            }
        }
        let length = u32::from_be_bytes([a, b, c, d]) as usize;
        if length > limit {
            return Err(Status::out_of_range(format!(
                "Error, decoded message length too large: found {length} bytes, the limit is: {limit} bytes"
            )));
        }
        let (Some(message), Some(rest)) = (
            bytes.get(FRAME_HEADER..FRAME_HEADER + length),
            bytes.get(FRAME_HEADER + length..),
        ) else {
            break;
        };
        let decoded =
            CheckRequest::decode(message).map_err(|error| Status::internal(error.to_string()))?;
        first.get_or_insert(decoded);
        bytes = rest;
    }
    Ok(bytes)
}

/// The answer body of the gRPC listener: a unary answer (its one message, then `grpc-status`
/// in the trailers; or nothing, when the status went in the headers), or tonic's.
enum Reply {
    Unary {
        message: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    Other(tonic::body::Body),
}

impl Default for Reply {
    fn default() -> Reply {
        Reply::Unary {
            message: None,
            trailers: None,
        }
    }
}

impl Reply {
    /// `200` with `message` framed, then `grpc-status: 0`.
    fn answer(message: &CheckResponse) -> axum::http::Response<Reply> {
        let length = message.encoded_len();
        let mut framed = Vec::with_capacity(FRAME_HEADER + length);
        framed.push(0);
        // A CheckResponse is far below 4 GiB: its headers and body come from the configuration.
        framed.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
        message.encode_raw(&mut framed);
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let mut response = axum::http::Response::new(Reply::Unary {
            message: Some(Bytes::from(framed)),
            trailers: Some(trailers),
        });
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        response
    }
}

impl hyper::body::Body for Reply {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.get_mut() {
            Reply::Unary { message, trailers } => Poll::Ready(
                message
                    .take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            Reply::Other(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Unary { message, trailers } => message.is_none() && trailers.is_none(),
            Reply::Other(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Unary { message, .. } => {
                SizeHint::with_exact(message.as_ref().map_or(0, |m| m.len() as u64))
            }
            Reply::Other(body) => body.size_hint(),
        }
    }
}
