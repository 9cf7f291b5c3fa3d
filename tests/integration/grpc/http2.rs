//! The AuthZEN API over HTTP/2: cleartext with prior knowledge (h2c), and TLS with ALPN `h2`;
//! several calls multiplexed on one connection. The client is tonic's channel, which speaks
//! HTTP/2 only.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tower::ServiceExt;

use crate::sidecar::{EVALUATION, Pki, PolicyDir, alice_reads_d1, server_config};

/// Four evaluations sent at once over `channel` (one HTTP/2 connection): each answers allow.
async fn evaluate_concurrently(channel: Channel, authority: &str) {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let channel = channel.clone();
        let request = axum::http::Request::post(format!("{authority}{EVALUATION}"))
            .header("content-type", "application/json")
            .body(tonic::body::Body::new(Full::new(Bytes::from(
                alice_reads_d1(),
            ))))
            .unwrap();
        calls.spawn(async move {
            let response = channel.oneshot(request).await.unwrap();
            assert_eq!(response.version(), axum::http::Version::HTTP_2);
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        });
    }
    for (status, body) in calls.join_all().await {
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"decision\":true"), "{body}");
    }
}

#[tokio::test]
async fn authzen_answers_over_h2c_prior_knowledge() {
    let dir = PolicyDir::standard();
    let running = warden::server::start(&server_config(&dir.path()))
        .await
        .unwrap();
    let authority = format!("http://{}", running.address);
    let channel = Channel::from_shared(authority.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    evaluate_concurrently(channel, &authority).await;
    running.shutdown().await;
}

#[tokio::test]
async fn authzen_answers_over_tls_with_alpn_h2() {
    let pki = Pki::new();
    let dir = PolicyDir::standard();
    let config = warden::server::Config {
        tls: Some(pki.files(false)),
        ..server_config(&dir.path())
    };
    let running = warden::server::start(&config).await.unwrap();
    let authority = format!("https://{}", running.address);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(authority.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    evaluate_concurrently(channel, &authority).await;
    running.shutdown().await;
}
