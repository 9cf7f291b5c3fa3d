//! Operations: health, readiness, status, metrics, a separate admin listener, shutdown.

use serde_json::json;

use super::*;

#[tokio::test]
async fn health_readiness_status_and_metrics() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(config(&dir.path())).await;
    assert_eq!(server.http.get("/healthz").await.status, 200);
    assert_eq!(server.http.get("/readyz").await.status, 200);
    let status = server.status().await;
    assert_eq!(status["version"], version_at(&dir.path()));
    assert_eq!(status["files"], json!(["data/store.json", "docs.warden"]));
    assert_eq!(status["ready"], true);
    assert_eq!(status["watching"], true);
    assert!(status["last_reload_error"].is_null());
    assert!(status["loaded_at"].as_str().unwrap().ends_with('Z'));

    let body = request("alice", "write", "d1");
    server.http.post_json(EVALUATION, &body).await;
    server
        .http
        .post_json(EVALUATION, &request("carol", "write", "d1"))
        .await;
    server.http.post(EVALUATION, "{").await;
    let metrics = server.http.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    for expected in [
        "warden_decisions_total{decision=\"allow\"} 1",
        "warden_decisions_total{decision=\"deny\"} 1",
        "warden_requests_total{endpoint=\"evaluation\",code=\"200\"} 2",
        "warden_requests_total{endpoint=\"evaluation\",code=\"400\"} 1",
        "warden_request_duration_seconds_count{endpoint=\"evaluation\"} 2",
        "warden_reload_failures_total 0",
        "warden_reload_failing 0",
        "warden_ready 1",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
    assert!(text.contains(&format!(
        "warden_policy_info{{version=\"{}\"}} 1",
        version_at(&dir.path())
    )));
    server.running.shutdown().await;
}

#[tokio::test]
async fn operations_can_have_their_own_listener() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config(&dir.path())
    })
    .await;
    let admin = Http::new(&format!("http://{}", server.running.admin_address.unwrap()));
    assert_eq!(admin.get("/metrics").await.status, 200);
    assert_eq!(admin.get("/v1/status").await.status, 200);
    assert_eq!(server.http.get("/metrics").await.status, 404);
    assert_eq!(server.http.get("/v1/status").await.status, 404);
    let body = request("alice", "read", "d1");
    assert_eq!(server.http.post_json(EVALUATION, &body).await.status, 200);
    assert_eq!(admin.post_json(EVALUATION, &body).await.status, 404);
}

/// A request whose body is still arriving when shutdown starts is answered.
#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = PolicyDir::standard();
    let server = TestServer::start(config(&dir.path())).await;
    let state = server.running.state.clone();
    let body = request("alice", "write", "d1").to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(server.running.address)
        .await
        .unwrap();
    let raw = format!(
        "POST {EVALUATION} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    // Wait until the server is reading the request, then shut down.
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.metrics.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = tokio::spawn(server.running.shutdown());
    while !state.shutting_down() {
        assert!(Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"decision":true}"#), "{answer}");
    tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .unwrap()
        .unwrap();
}

/// A configuration whose decision API needs `Authorization: Bearer k3y-for-tests`.
fn with_api_key(dir: &PolicyDir) -> Config {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(b"k3y-for-tests")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Config::resolve(warden::server::ConfigLayer {
        policies: Some(dir.path()),
        listen: Some("127.0.0.1:0".to_string()),
        watch: Some(false),
        api_key_sha256: Some(vec![digest]),
        ..Default::default()
    })
    .unwrap()
}

/// `GET path` with the key [`with_api_key`] configures.
async fn with_key(http: &Http, path: &str) -> Reply {
    http.send(
        "GET",
        path,
        &[("authorization", "Bearer k3y-for-tests")],
        "",
    )
    .await
}

/// Beside the decision API, status and metrics (the policy path, file names, reload errors)
/// need the API key like the decision API; the probes stay open.
#[tokio::test]
async fn status_and_metrics_need_the_api_key_beside_the_decision_api() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(with_api_key(&dir)).await;
    for path in ["/v1/status", "/metrics"] {
        for authorization in [None, Some("Bearer wrong"), Some("Basic k3y-for-tests")] {
            let headers: Vec<(&str, &str)> = authorization
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let reply = server.http.send("GET", path, &headers, "").await;
            assert_eq!(reply.status, 401, "{path} with {authorization:?}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer realm=\"warden\"")
            );
            assert!(!reply.body.contains("policies"), "{}", reply.body);
        }
        let reply = with_key(&server.http, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let status = with_key(&server.http, "/v1/status").await.json();
    assert_eq!(status["files"], json!(["data/store.json", "docs.warden"]));
    assert_eq!(server.http.get("/healthz").await.status, 200);
    assert_eq!(server.http.get("/readyz").await.status, 200);
    server.running.shutdown().await;
}

/// With `admin_listen`, the operations endpoints live there alone, open (that listener is kept
/// off public addresses), and the decision API's listener has none of status and metrics.
#[tokio::test]
async fn with_an_admin_listener_status_and_metrics_are_open_there_and_absent_beside_the_api() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..with_api_key(&dir)
    })
    .await;
    let admin = Http::new(&format!("http://{}", server.running.admin_address.unwrap()));
    for path in ["/v1/status", "/metrics", "/healthz", "/readyz"] {
        assert_eq!(admin.get(path).await.status, 200, "{path}");
    }
    for path in ["/v1/status", "/metrics"] {
        let reply = with_key(&server.http, path).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    server.running.shutdown().await;
}
