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

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{Address, HeaderValue as EnvoyHeader};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer};
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value as ProtoValue};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use serde_json::{Map, Value as JsonValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;
use tonic::{Code, Request, Response, Status};
use tonic_health::ServingStatus;

use crate::gateway::GatewayConfig;
use crate::server::AppState;
use crate::server::connections::Accept;
use crate::server::forward::{self, Answer, Arrival, Flavour, Original};
use crate::server::listen::{Bound, SocketFile};
use crate::server::tls::TlsState;

/// The service name health checks ask about, beside the server as a whole (`""`).
pub const AUTHORIZATION_SERVICE: &str = "envoy.service.auth.v3.Authorization";

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
    let mut headers = HeaderMap::new();
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

impl<S> Connected for Connection<S> {
    type ConnectInfo = ();

    fn connect_info(&self) {}
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
) -> mpsc::Receiver<std::io::Result<Connection<A::Io>>> {
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
                    if sender.send(Ok(Connection::Plain(stream))).await.is_err() {
                        return;
                    }
                }
                Some((state, timeout)) => {
                    let acceptor = h2_acceptor(state);
                    let (sender, timeout) = (sender.clone(), *timeout);
                    tokio::spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let _ = sender.send(Ok(Connection::Tls(Box::new(stream)))).await;
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

fn serve_on<A: Accept>(
    listener: A,
    state: Arc<AppState>,
    tls: Option<(Arc<TlsState>, Duration)>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(follow_readiness(state.clone(), reporter, shutdown.clone()));
    let limit = state.settings.body_limit;
    let timeout = state.settings.request_timeout;
    let authorizer =
        AuthorizationServer::new(Authorizer::new(state)).max_decoding_message_size(limit);
    let incoming = tokio_stream::wrappers::ReceiverStream::new(accept(listener, tls));
    let mut stop = shutdown;
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .timeout(timeout)
            .add_service(health)
            .add_service(authorizer)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(std::io::Error::other)
    })
}
