//! Envoy `ext_authz` over gRPC: `CheckRequest`s shaped as Envoy sends them, through a tonic
//! client, to a running server's `grpc_listen`; the health service; and (`python`) the same
//! checks from Python's `grpcio` with Envoy's own protos compiled.

mod http2;
mod python;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use jsonwebtoken::Algorithm;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::gateway::{bearer, claims, example_policies, gateway_config, now, repo, sign};
use crate::server::TestServer;

/// A server for `policies` (the gateway examples' keys and upstream headers) with gRPC on.
async fn server(policies: &std::path::Path) -> (TestServer, SocketAddr) {
    let mut config = gateway_config(policies);
    config.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start(config).await;
    let address = server.running.grpc_address.expect("the gRPC listener");
    (server, address)
}

/// A server for the example routes policy, and a client of its gRPC listener.
async fn example() -> (TestServer, AuthorizationClient<Channel>) {
    let (server, address) = server(&example_policies()).await;
    (server, AuthorizationClient::new(channel(address).await))
}

async fn channel(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn peer(ip: &str, port: u32, principal: &str) -> Peer {
    Peer {
        address: Some(Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                address: ip.to_string(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..SocketAddress::default()
            })),
        }),
        principal: principal.to_string(),
        ..Peer::default()
    }
}

/// A check as Envoy's HTTP filter sends it: lower-case headers (pseudo-headers included),
/// the path with its query, the host, the downstream and local peers.
fn check(method: &str, path: &str, token: Option<&str>) -> CheckRequest {
    let mut headers = HashMap::from([
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "photos.example".to_string()),
        ("x-request-id".to_string(), "5f0c-test".to_string()),
        ("user-agent".to_string(), "curl/8".to_string()),
    ]);
    if let Some(token) = token {
        headers.insert("authorization".to_string(), bearer(token));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer("192.0.2.7", 50123, "")),
            destination: Some(peer("10.0.0.9", 8080, "")),
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    id: "1".to_string(),
                    method: method.to_string(),
                    headers,
                    path: path.to_string(),
                    host: "photos.example".to_string(),
                    scheme: "http".to_string(),
                    protocol: "HTTP/1.1".to_string(),
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

/// The HTTP request of a check built by [`check`].
fn http_of(request: &mut CheckRequest) -> &mut HttpRequest {
    request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap()
}

async fn send(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> CheckResponse {
    client.check(request).await.unwrap().into_inner()
}

/// The gRPC code in the response's status, and the HTTP status Envoy answers with.
fn verdict(response: &CheckResponse) -> (Code, u16) {
    let code = Code::from_i32(response.status.as_ref().map_or(-1, |s| s.code));
    let http = match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(denied)) => {
            denied.status.as_ref().map_or(0, |s| s.code as u16)
        }
        _ => 0,
    };
    (code, http)
}

fn upstream(response: &CheckResponse) -> HashMap<String, String> {
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        return HashMap::new();
    };
    ok.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.to_ascii_lowercase(), h.value.clone()))
        .collect()
}

fn denied_header(response: &CheckResponse, name: &str) -> Option<String> {
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        return None;
    };
    denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .map(|h| h.value.clone())
}

#[tokio::test]
async fn grpc_allows_with_upstream_headers_and_denies_with_403() {
    let (server, mut client) = example().await;
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let bob = sign(Algorithm::ES256, &claims("bob"));

    let allowed = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&allowed), (Code::Ok, 200), "{allowed:?}");
    assert_eq!(
        upstream(&allowed)
            .get("x-warden-subject")
            .map(String::as_str),
        Some("alice")
    );
    let Some(HttpResponse::OkResponse(ok)) = &allowed.http_response else {
        panic!("{allowed:?}")
    };
    // Warden's headers replace what the client sent; one with no value is removed.
    assert!(ok.headers.iter().all(|h| h.append_action == 2), "{ok:?}");
    assert_eq!(ok.headers_to_remove, vec!["x-warden-roles".to_string()]);
    let metadata = allowed.dynamic_metadata.as_ref().unwrap();
    assert!(metadata.fields.contains_key("policy_version"));

    let denied = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&bob)),
    )
    .await;
    assert_eq!(
        verdict(&denied),
        (Code::PermissionDenied, 403),
        "{denied:?}"
    );
    assert!(upstream(&denied).is_empty());

    // The query is not part of the route; the owner may delete.
    let delete = send(
        &mut client,
        check("DELETE", "/albums/a1/photos/p1?force=1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&delete), (Code::Ok, 200));

    // Counted beside the HTTP forward-auth calls.
    let metrics = server.http.get("/metrics").await.body;
    assert!(metrics.contains("endpoint=\"forward_auth\""), "{metrics}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_missing_expired_and_forged_tokens_get_401() {
    let (server, mut client) = example().await;
    let path = "/albums/a1/photos/p1";

    let missing = send(&mut client, check("GET", path, None)).await;
    assert_eq!(
        verdict(&missing),
        (Code::Unauthenticated, 401),
        "{missing:?}"
    );
    assert_eq!(
        denied_header(&missing, "www-authenticate").as_deref(),
        Some("Bearer realm=\"warden\"")
    );

    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let expired = sign(Algorithm::ES256, &expired);
    let reply = send(&mut client, check("GET", path, Some(&expired))).await;
    assert_eq!(verdict(&reply), (Code::Unauthenticated, 401));
    assert!(
        denied_header(&reply, "www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""),
        "{reply:?}"
    );

    // The payload says bob, the signature is alice's.
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let bob = sign(Algorithm::ES256, &claims("bob"));
    let a: Vec<&str> = alice.split('.').collect();
    let b: Vec<&str> = bob.split('.').collect();
    let forged = format!("{}.{}.{}", a[0], b[1], a[2]);
    let reply = send(&mut client, check("GET", path, Some(&forged))).await;
    assert_eq!(verdict(&reply), (Code::Unauthenticated, 401));
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_unmatched_ambiguous_and_malformed_checks_are_denied() {
    let (server, mut client) = example().await;
    let alice = sign(Algorithm::ES256, &claims("alice"));

    for path in [
        // No route.
        "/nowhere",
        // Ambiguous spellings HTTP forward-auth refuses too.
        "/albums/a1/photos/p1%2F..%2Fp2",
        "/albums/a1/photos/p1;jsessionid=1",
        "/albums/a1/photos/%2e%2e/p2",
    ] {
        let reply = send(&mut client, check("GET", path, Some(&alice))).await;
        assert_eq!(
            verdict(&reply),
            (Code::PermissionDenied, 403),
            "{path}: {reply:?}"
        );
    }
    // The normal form is the HTTP endpoints': dot segments resolved, a trailing slash dropped.
    let reply = send(
        &mut client,
        check("GET", "/albums/a1/x/../photos//p1/", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&reply), (Code::Ok, 200));

    // No HTTP request at all, or one without a path: denied, never allowed.
    let empty = send(&mut client, CheckRequest::default()).await;
    assert_eq!(verdict(&empty), (Code::PermissionDenied, 403), "{empty:?}");
    let mut no_path = check("GET", "/albums/a1/photos/p1", Some(&alice));
    http_of(&mut no_path).path.clear();
    let reply = send(&mut client, no_path).await;
    assert_eq!(verdict(&reply), (Code::PermissionDenied, 403));
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_huge_headers_are_decided_or_refused_never_allowed_by_error() {
    let (server, mut client) = example().await;
    let alice = sign(Algorithm::ES256, &claims("alice"));

    // Large but under the body limit: decided as usual.
    let mut big = check("GET", "/albums/a1/photos/p1", Some(&alice));
    for i in 0..64 {
        http_of(&mut big)
            .headers
            .insert(format!("x-padding-{i}"), "a".repeat(4096));
    }
    let reply = send(&mut client, big).await;
    assert_eq!(verdict(&reply), (Code::Ok, 200));

    // Over `body_limit` (1 MiB): the call fails (`OUT_OF_RANGE`), which Envoy treats as a
    // deny unless told `failure_mode_allow`.
    let mut huge = check("GET", "/albums/a1/photos/p1", Some(&alice));
    http_of(&mut huge)
        .headers
        .insert("x-huge".to_string(), "a".repeat(2 << 20));
    let error = client.check(huge).await.unwrap_err();
    assert_eq!(error.code(), Code::OutOfRange, "{error:?}");
    // The connection still serves.
    let reply = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&reply), (Code::Ok, 200));
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_context_extensions_and_peers_reach_policies() {
    let policies = repo().join("tests/data/grpc/policies");
    let (server, address) = server(&policies).await;
    let mut client = AuthorizationClient::new(channel(address).await);
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let with_extensions = |tenant: Option<&str>| {
        let mut request = check("GET", "/docs/d1", Some(&alice));
        if let (Some(tenant), Some(attributes)) = (tenant, request.attributes.as_mut()) {
            attributes
                .context_extensions
                .insert("tenant".to_string(), tenant.to_string());
        }
        request
    };
    let acme = send(&mut client, with_extensions(Some("acme"))).await;
    assert_eq!(verdict(&acme), (Code::Ok, 200), "{acme:?}");
    let other = send(&mut client, with_extensions(Some("globex"))).await;
    assert_eq!(verdict(&other), (Code::PermissionDenied, 403));
    let none = send(&mut client, with_extensions(None)).await;
    assert_eq!(verdict(&none), (Code::PermissionDenied, 403));

    // `context.ip` is the source peer Envoy reports, not an X-Forwarded-For a client wrote.
    let mut office = check("PUT", "/docs/d1", Some(&alice));
    let attributes = office.attributes.as_mut().unwrap();
    attributes.source = Some(peer("10.0.0.5", 40000, ""));
    let reply = send(&mut client, office.clone()).await;
    assert_eq!(verdict(&reply), (Code::Ok, 200));
    let mut spoofed = check("PUT", "/docs/d1", Some(&alice));
    http_of(&mut spoofed)
        .headers
        .insert("x-forwarded-for".to_string(), "10.0.0.5".to_string());
    let reply = send(&mut client, spoofed).await;
    assert_eq!(verdict(&reply), (Code::PermissionDenied, 403));

    // The source principal (Istio: the client workload's SPIFFE id) and the destination.
    let mut audit = check("GET", "/audit/d1", Some(&alice));
    audit.attributes.as_mut().unwrap().source = Some(peer(
        "10.1.0.3",
        1,
        "spiffe://cluster.local/ns/ops/sa/auditor",
    ));
    assert_eq!(verdict(&send(&mut client, audit).await), (Code::Ok, 200));
    server.running.shutdown().await;
}

#[tokio::test]
async fn grpc_health_follows_policy_readiness() {
    let (server, address) = server(&example_policies()).await;
    let channel = channel(address).await;
    let mut health = HealthClient::new(channel.clone());
    let ask = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    for service in ["", "envoy.service.auth.v3.Authorization"] {
        let status = health
            .check(ask(service))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health.check(ask("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Once shutdown begins the server is not ready: health says so, and checks are answered
    // 503 (UNAVAILABLE), never allowed.
    server.running.state.begin_shutdown();
    let mut status = 0;
    for _ in 0..100 {
        status = health.check(ask("")).await.unwrap().into_inner().status;
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, ServingStatus::NotServing as i32);
    let mut client = AuthorizationClient::new(channel);
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let reply = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&reply), (Code::Unavailable, 503), "{reply:?}");
    server.running.shutdown().await;
}

/// Over TLS the gRPC listener uses the decision API's certificate and client CA, offering ALPN
/// `h2`: a client certificate from the CA is served, a client without one is refused, and
/// cleartext h2c gets nothing.
#[tokio::test]
async fn grpc_over_mutual_tls_uses_the_listen_settings() {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let pki = crate::sidecar::Pki::new();
    let mut config = gateway_config(&example_policies());
    config.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
    config.tls = Some(pki.files(true));
    let running = warden::server::start(&config).await.unwrap();
    let address = running.grpc_address.unwrap();
    let client_cert = pki.client();
    let tls = |identity: bool| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca_pem))
            .domain_name("localhost");
        if identity {
            tls = tls.identity(Identity::from_pem(&client_cert.cert, &client_cert.key));
        }
        tls
    };
    let connect = |tls: ClientTlsConfig| async move {
        Channel::from_shared(format!("https://{address}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
    };
    let mut client = AuthorizationClient::new(connect(tls(true)).await.unwrap());
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let reply = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&reply), (Code::Ok, 200));

    // No client certificate: the handshake (or the first call) fails.
    let refused = match connect(tls(false)).await {
        Err(_) => true,
        Ok(channel) => AuthorizationClient::new(channel)
            .check(check("GET", "/albums/a1/photos/p1", Some(&alice)))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");

    // Cleartext HTTP/2 on the TLS port: no answer.
    let plain = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await;
    let answered = match plain {
        Err(_) => false,
        Ok(channel) => AuthorizationClient::new(channel)
            .check(check("GET", "/albums/a1/photos/p1", Some(&alice)))
            .await
            .is_ok(),
    };
    assert!(!answered, "h2c was served on the TLS port");
    running.shutdown().await;
}

/// `grpc_listen = "unix:PATH"` serves the same services on a Unix socket (removed at shutdown),
/// and `grpc_strip_authorization` has Envoy drop the token from the upstream request on allow.
#[tokio::test]
async fn grpc_on_a_unix_socket_removes_authorization_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("grpc.sock");
    let mut config = gateway_config(&example_policies());
    config.grpc_listen = Some(warden::server::listen::Listen::Unix(socket.clone()));
    config.gateway.grpc_strip_authorization = true;
    let running = warden::server::start(&config).await.unwrap();
    assert_eq!(running.grpc_address, None);
    let path = socket.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let mut client = AuthorizationClient::new(channel.clone());
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let allowed = send(
        &mut client,
        check("GET", "/albums/a1/photos/p1", Some(&alice)),
    )
    .await;
    assert_eq!(verdict(&allowed), (Code::Ok, 200), "{allowed:?}");
    let Some(HttpResponse::OkResponse(ok)) = &allowed.http_response else {
        panic!("{allowed:?}")
    };
    assert_eq!(
        ok.headers_to_remove,
        vec!["x-warden-roles".to_string(), "authorization".to_string()]
    );
    // Identity still comes from the token: without one, 401.
    let anonymous = send(&mut client, check("GET", "/albums/a1/photos/p1", None)).await;
    assert_eq!(verdict(&anonymous), (Code::Unauthenticated, 401));

    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    running.shutdown().await;
    assert!(!socket.exists(), "the socket file outlived the server");
}
