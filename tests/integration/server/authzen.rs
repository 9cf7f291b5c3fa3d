//! The AuthZEN evaluation and evaluations APIs, discovery, and the request rules around them.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{Value as JsonValue, json};
use tower::ServiceExt;
use warden::server::{self, AppState, Settings};

use super::*;

async fn standard() -> (PolicyDir, TestServer) {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        ..config(&dir.path())
    })
    .await;
    (dir, server)
}

#[tokio::test]
async fn evaluation_decides_with_exactly_the_spec_fields() {
    let (dir, server) = standard().await;
    let version = version_at(&dir.path());
    // The owner may write; a reader through nested groups may read; nobody else.
    for (subject, action, resource, expected) in [
        ("alice", "write", "d1", true),
        ("bob", "read", "d2", true),
        ("bob", "write", "d2", false),
        ("carol", "read", "d1", false),
        ("nobody", "read", "d1", false),
    ] {
        let reply = server
            .http
            .post_json(EVALUATION, &request(subject, action, resource))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("warden-policy-version"), Some(&*version));
        assert_eq!(
            reply.json(),
            json!({ "decision": expected }),
            "{subject} {action} {resource}"
        );
    }
}

#[tokio::test]
async fn a_well_formed_request_the_policy_cannot_allow_is_a_plain_deny() {
    let (_dir, server) = standard().await;
    let mut undeclared_action = request("alice", "delete", "d1");
    undeclared_action["context"] = json!({});
    let undeclared_type = json!({
        "subject": entity("Robot", "r2"),
        "action": { "name": "read" },
        "resource": entity("Doc", "d1"),
    });
    let mistyped_context = json!({
        "subject": entity("User", "carol"),
        "action": { "name": "write" },
        "resource": entity("Doc", "d1"),
        "context": { "ok": "yes" },
    });
    for body in [undeclared_action, undeclared_type, mistyped_context] {
        let reply = server.http.post_json(EVALUATION, &body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
        assert_eq!(reply.json(), json!({ "decision": false }), "{body}");
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let (_dir, server) = standard().await;
    let body = json!({
        "subject": { "type": "User", "id": "alice", "extra": 1, "properties": { "x": 1 } },
        "action": { "name": "write", "more": [1, 2] },
        "resource": { "type": "Doc", "id": "d1" },
        "context": { "anything": true },
        "future_field": { "nested": true },
    });
    let reply = server.http.post_json(EVALUATION, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({ "decision": true }));
}

#[tokio::test]
async fn every_malformed_request_is_a_400_with_a_plain_message() {
    let (_dir, server) = standard().await;
    let good = request("alice", "read", "d1");
    let with = |path: &[&str], value: JsonValue| {
        let mut body = good.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        let last = path[path.len() - 1];
        if value.is_null() {
            target.as_object_mut().unwrap().remove(last);
        } else {
            target[last] = value;
        }
        body.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"subject": {"type": "User""#.to_string(),
            "not valid JSON",
        ),
        ("".to_string(), "empty"),
        ("   \n".to_string(), "empty"),
        ("[1, 2]".to_string(), "JSON object"),
        ("\"alice\"".to_string(), "JSON object"),
        (with(&["subject"], JsonValue::Null), "missing `subject`"),
        (with(&["action"], JsonValue::Null), "missing `action`"),
        (with(&["resource"], JsonValue::Null), "missing `resource`"),
        (
            with(&["subject"], json!("alice")),
            "`subject` must be an object",
        ),
        (
            with(&["resource"], json!(["Doc", "d1"])),
            "`resource` must be an object",
        ),
        (
            with(&["action"], json!("read")),
            "`action` must be an object",
        ),
        (
            with(&["subject", "type"], JsonValue::Null),
            "missing `subject.type`",
        ),
        (
            with(&["subject", "id"], JsonValue::Null),
            "missing `subject.id`",
        ),
        (
            with(&["resource", "type"], JsonValue::Null),
            "missing `resource.type`",
        ),
        (
            with(&["resource", "id"], JsonValue::Null),
            "missing `resource.id`",
        ),
        (
            with(&["action", "name"], JsonValue::Null),
            "missing `action.name`",
        ),
        (
            with(&["action", "name"], json!(123)),
            "`action.name` must be a string",
        ),
        (
            with(&["subject", "id"], json!(7)),
            "`subject.id` must be a string",
        ),
        (
            with(&["resource", "type"], json!(true)),
            "`resource.type` must be a string",
        ),
        (with(&["context"], json!(5)), "`context` must be an object"),
        (
            with(&["subject", "properties"], json!([])),
            "`subject.properties` must be an object",
        ),
    ];
    for (body, expected) in cases {
        let reply = server.http.post(EVALUATION, &body).await;
        assert_eq!(reply.status, 400, "{body:?} gave {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(
            reply.body.contains(expected),
            "{body:?}: expected {expected:?} in {:?}",
            reply.body
        );
        assert!(reply.header("warden-policy-version").is_none());
    }
    // The content type must be JSON, and must be sent.
    let body = good.to_string();
    for headers in [
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/x-www-form-urlencoded")],
        vec![],
    ] {
        let reply = server
            .http
            .send("POST", EVALUATION, &headers, body.clone())
            .await;
        assert_eq!(reply.status, 400, "{headers:?}");
        assert!(reply.body.contains("application/json"), "{}", reply.body);
    }
    let reply = server
        .http
        .send(
            "POST",
            EVALUATION,
            &[("content-type", "application/json; charset=utf-8")],
            body,
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        body_limit: 512,
        ..config(&dir.path())
    })
    .await;
    let mut big = request("alice", "read", "d1");
    big["context"] = json!({ "padding": "x".repeat(600) });
    let reply = server.http.post_json(EVALUATION, &big).await;
    assert_eq!(reply.status, 413);
    assert!(reply.body.contains("512 bytes"), "{}", reply.body);
    // Just under the limit is fine.
    big["context"] = json!({ "padding": "x".repeat(300) });
    let reply = server.http.post_json(EVALUATION, &big).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A chunked body declares no length: it is cut off at the limit as it streams in.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.running.address)
        .await
        .unwrap();
    let chunk = "x".repeat(400);
    let raw = format!(
        "POST {EVALUATION} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn the_request_id_is_echoed_on_every_answer() {
    let (_dir, server) = standard().await;
    let body = request("alice", "read", "d1").to_string();
    for (path, body, status) in [
        (EVALUATION, body.as_str(), 200),
        (EVALUATION, "{", 400),
        ("/no/such/path", "{}", 404),
    ] {
        let reply = server
            .http
            .send(
                "POST",
                path,
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", "req-42"),
                ],
                body.to_string(),
            )
            .await;
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(reply.header("x-request-id"), Some("req-42"), "{path}");
    }
    // Without one, none is made up.
    let reply = server.http.post(EVALUATION, &body).await;
    assert!(reply.header("x-request-id").is_none());
}

fn batch_body(items: JsonValue) -> JsonValue {
    json!({
        "subject": entity("User", "carol"),
        "action": { "name": "read" },
        "evaluations": items,
    })
}

#[tokio::test]
async fn evaluations_answer_in_order_with_defaults_replaced_whole() {
    let (dir, server) = standard().await;
    let body = json!({
        "subject": entity("User", "carol"),
        "action": { "name": "write" },
        "context": { "ok": true },
        "evaluations": [
            // All defaults: carol may write anything while the context says ok.
            { "resource": entity("Doc", "d1") },
            // The item's context replaces the default whole: no `ok` any more.
            { "resource": entity("Doc", "d1"), "context": { "other": 1 } },
            // The item's subject replaces the default whole: no id is merged in.
            { "resource": entity("Doc", "d1"), "subject": { "type": "User" } },
            // Another subject and action.
            { "resource": entity("Doc", "d2"), "subject": entity("User", "bob"), "action": { "name": "read" } },
            // `null` counts as absent: the default applies.
            { "resource": entity("Doc", "d3"), "context": null },
        ],
    });
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("warden-policy-version"),
        Some(&*version_at(&dir.path()))
    );
    assert_eq!(
        reply.json(),
        json!({ "evaluations": [
            { "decision": true },
            { "decision": false },
            { "decision": false, "context": { "error": { "status": 400, "message": "missing `subject.id`" } } },
            { "decision": true },
            { "decision": true },
        ] })
    );
}

#[tokio::test]
async fn a_failing_item_is_false_with_its_error_and_the_call_stays_200() {
    let (_dir, server) = standard().await;
    let body = json!({
        "evaluations": [
            { "subject": entity("User", "alice"), "action": { "name": "read" } },
            { "subject": entity("User", "alice"), "resource": entity("Doc", "d1") },
            "not an item",
            { "subject": entity("User", "alice"), "action": { "name": "read" }, "resource": entity("Doc", "d1") },
        ],
    });
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.json()["evaluations"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4);
    assert_eq!(
        items[0],
        json!({ "decision": false, "context": { "error": { "status": 400, "message": "missing `resource`" } } })
    );
    assert_eq!(items[1]["context"]["error"]["message"], "missing `action`");
    assert_eq!(items[2]["context"]["error"]["status"], 400);
    assert_eq!(items[3], json!({ "decision": true }));
}

#[tokio::test]
async fn each_evaluations_semantic_stops_where_the_spec_says() {
    let (_dir, server) = standard().await;
    // carol reads: d1 deny, d2 allow (owner), d3 allow (owner); then a failing item.
    let items = json!([
        { "resource": entity("Doc", "d2") },
        { "resource": entity("Doc", "d1") },
        { "resource": entity("Doc", "d3") },
        { "resource": entity("Doc", "d1") },
    ]);
    let run = |semantic: Option<&str>, items: JsonValue| {
        let mut body = batch_body(items);
        if let Some(semantic) = semantic {
            body["options"] = json!({ "evaluations_semantic": semantic });
        }
        let http = server.http.clone();
        async move {
            let reply = http.post_json(EVALUATIONS, &body).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.json()["evaluations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["decision"].as_bool().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(run(None, items.clone()).await, [true, false, true, false]);
    assert_eq!(
        run(Some("execute_all"), items.clone()).await,
        [true, false, true, false]
    );
    assert_eq!(
        run(Some("deny_on_first_deny"), items.clone()).await,
        [true, false]
    );
    let denies_first = json!([
        { "resource": entity("Doc", "d1") },
        { "resource": entity("Doc", "d1") },
        { "resource": entity("Doc", "d2") },
        { "resource": entity("Doc", "d1") },
    ]);
    assert_eq!(
        run(Some("permit_on_first_permit"), denies_first).await,
        [false, false, true]
    );
    // A failing item is a deny for deny_on_first_deny.
    let failing_first = json!([{ "subject": { "type": "User" }, "resource": entity("Doc", "d2") }, { "resource": entity("Doc", "d2") }]);
    assert_eq!(
        run(Some("deny_on_first_deny"), failing_first).await,
        [false]
    );
    // No permit at all: every item is evaluated.
    let all_deny =
        json!([{ "resource": entity("Doc", "d1") }, { "resource": entity("Doc", "d1") }]);
    assert_eq!(
        run(Some("permit_on_first_permit"), all_deny).await,
        [false, false]
    );

    for (options, expected) in [
        (
            json!({ "evaluations_semantic": "first_wins" }),
            "first_wins",
        ),
        (json!({ "evaluations_semantic": 1 }), "must be a string"),
        (json!("all"), "`options` must be an object"),
    ] {
        let mut body = batch_body(items.clone());
        body["options"] = options;
        let reply = server.http.post_json(EVALUATIONS, &body).await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains(expected), "{}", reply.body);
    }
    let mut body = batch_body(json!({}));
    body["evaluations"] = json!({ "resource": entity("Doc", "d1") });
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("`evaluations` must be an array"));
}

#[tokio::test]
async fn absent_or_empty_evaluations_is_a_single_evaluation() {
    let (_dir, server) = standard().await;
    let mut body = request("alice", "write", "d1");
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({ "decision": true }));
    body["evaluations"] = json!([]);
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.json(), json!({ "decision": true }));
    // As a single evaluation, a missing resource is the call's 400.
    let reply = server
        .http
        .post_json(EVALUATIONS, &json!({ "subject": entity("User", "alice"), "action": { "name": "read" }, "evaluations": [] }))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("missing `resource`"));
}

#[tokio::test]
async fn explanations_need_the_operator_and_the_caller() {
    let dir = PolicyDir::standard();
    let plain = TestServer::start(Config {
        watch: false,
        ..config(&dir.path())
    })
    .await;
    let explaining = TestServer::start(Config {
        watch: false,
        explain: true,
        ..config(&dir.path())
    })
    .await;
    let body = request("bob", "read", "d2").to_string();
    let ask = [
        ("content-type", "application/json"),
        ("warden-explain", "true"),
    ];
    // Asked, but not enabled: exactly the spec's fields.
    let reply = plain
        .http
        .send("POST", EVALUATION, &ask, body.clone())
        .await;
    assert_eq!(reply.json(), json!({ "decision": true }));
    // Enabled, but not asked.
    let reply = explaining.http.post(EVALUATION, &body).await;
    assert_eq!(reply.json(), json!({ "decision": true }));
    // Both.
    let reply = explaining
        .http
        .send("POST", EVALUATION, &ask, body.clone())
        .await;
    let answer = reply.json();
    assert_eq!(answer["decision"], true);
    assert_eq!(
        answer["context"]["reason_admin"]["en"],
        "allowed by readers"
    );
    assert_eq!(
        answer["context"]["explanation"]["reasons"][0]["id"],
        "readers"
    );
    // An invalid request says why it was denied.
    let reply = explaining
        .http
        .send(
            "POST",
            EVALUATION,
            &ask,
            request("bob", "reed", "d2").to_string(),
        )
        .await;
    let reason = reply.json()["context"]["reason_admin"]["en"].clone();
    assert!(
        reason.as_str().unwrap().contains("did you mean `read`"),
        "{reason}"
    );
    // Batches explain per item; items not asked about stay exact.
    let batch = batch_body(json!([{ "resource": entity("Doc", "d1") }]));
    let reply = explaining
        .http
        .send("POST", EVALUATIONS, &ask, batch.to_string())
        .await;
    assert_eq!(
        reply.json()["evaluations"][0]["context"]["reason_admin"]["en"],
        "denied: no rule allows this request (default deny)"
    );
    let reply = explaining.http.post_json(EVALUATIONS, &batch).await;
    assert_eq!(
        reply.json(),
        json!({ "evaluations": [{ "decision": false }] })
    );
}

#[tokio::test]
async fn an_api_key_protects_the_decision_api_only() {
    use sha2::Digest;
    let dir = PolicyDir::standard();
    let digest: String = sha2::Sha256::digest(b"k3y-for-tests")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = Config::resolve(warden::server::ConfigLayer {
        policies: Some(dir.path()),
        listen: Some("127.0.0.1:0".to_string()),
        watch: Some(false),
        api_key_sha256: Some(vec![digest]),
        ..Default::default()
    })
    .unwrap();
    let server = TestServer::start(config).await;
    let body = request("alice", "read", "d1").to_string();
    for authorization in [None, Some("Bearer wrong"), Some("Basic k3y-for-tests")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        let reply = server
            .http
            .send("POST", EVALUATION, &headers, body.clone())
            .await;
        assert_eq!(reply.status, 401, "{authorization:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"warden\"")
        );
    }
    let reply = server
        .http
        .send(
            "POST",
            "/access/v1/search/action",
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(reply.status, 401);
    let reply = server
        .http
        .send(
            "POST",
            EVALUATION,
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer k3y-for-tests"),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({ "decision": true }));
    assert_eq!(server.http.get("/healthz").await.status, 200);
    assert_eq!(
        server
            .http
            .get("/.well-known/authzen-configuration")
            .await
            .status,
        200
    );
}

/// Discovery's URLs come from the configuration, never from the caller's `Host`: without
/// `public_url` (or a trusted proxy's `X-Forwarded-Host`) they are paths, relative to where the
/// document was fetched. The tenant form names the tenant in `policy_decision_point`.
#[tokio::test]
async fn discovery_advertises_the_configured_url_never_the_callers_host() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        ..config(&dir.path())
    })
    .await;
    let path = "/.well-known/authzen-configuration";
    let relative = json!({
        "policy_decision_point": "/",
        "access_evaluation_endpoint": "/access/v1/evaluation",
        "access_evaluations_endpoint": "/access/v1/evaluations",
        "search_subject_endpoint": "/access/v1/search/subject",
        "search_resource_endpoint": "/access/v1/search/resource",
        "search_action_endpoint": "/access/v1/search/action",
    });
    let reply = server.http.get(path).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), relative);
    let forwarded = [
        ("x-forwarded-host", "pdp.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    // Neither `Host` nor forwarded headers move the URLs unless the proxy is trusted.
    for headers in [
        &[("host", "evil.example")][..],
        &[("host", "evil.com/x?y")][..],
        &forwarded[..],
    ] {
        let reply = server.http.send("GET", path, headers, "").await;
        assert_eq!(
            (reply.status, reply.json()),
            (200, relative.clone()),
            "{headers:?}"
        );
    }
    let reply = server
        .http
        .send(
            "GET",
            &format!("{path}/acme"),
            &[("host", "evil.example")],
            "",
        )
        .await;
    assert_eq!(reply.json()["policy_decision_point"], "/acme");
    assert_eq!(
        reply.json()["access_evaluation_endpoint"],
        "/access/v1/evaluation"
    );

    // A trusted proxy's headers are used.
    let trusting = TestServer::start(Config {
        watch: false,
        trust_forwarded: true,
        ..config(&dir.path())
    })
    .await;
    let reply = trusting.http.send("GET", path, &forwarded, "").await;
    let document = reply.json();
    assert_eq!(document["policy_decision_point"], "https://pdp.example.com");
    assert_eq!(
        document["access_evaluation_endpoint"],
        "https://pdp.example.com/access/v1/evaluation"
    );
    let reply = trusting
        .http
        .send("GET", path, &[("host", "evil.example")], "")
        .await;
    assert_eq!(reply.json(), relative);
    // A configured public URL wins over everything.
    let fixed = TestServer::start(Config {
        watch: false,
        trust_forwarded: true,
        public_url: Some("https://authz.example.org/pdp".to_string()),
        ..config(&dir.path())
    })
    .await;
    let reply = fixed.http.send("GET", path, &forwarded, "").await;
    assert_eq!(
        reply.json()["policy_decision_point"],
        "https://authz.example.org/pdp"
    );
    assert_eq!(
        reply.json()["search_action_endpoint"],
        "https://authz.example.org/pdp/access/v1/search/action"
    );
    let reply = fixed.http.get(&format!("{path}/tenant-1")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["policy_decision_point"],
        "https://authz.example.org/pdp/tenant-1"
    );
    assert_eq!(
        reply.json()["access_evaluation_endpoint"],
        "https://authz.example.org/pdp/access/v1/evaluation"
    );
    // Only one path segment of safe characters names a tenant.
    for tenant in ["a%2Fb", "a/b", "%3Cx%3E"] {
        let reply = fixed.http.get(&format!("{path}/{tenant}")).await;
        assert_eq!(reply.status, 404, "{tenant}");
    }
}

/// The router in-process: no program yet, or shutting down, is a 503 (never a deny).
#[tokio::test]
async fn without_a_program_or_while_stopping_the_answer_is_503() {
    let dir = PolicyDir::standard();
    let state = Arc::new(AppState::new(Settings::from(&config(&dir.path()))));
    let call = |state: Arc<AppState>, path: &str, body: &str| {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        async move {
            let response = server::router(state).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let body = request("alice", "read", "d1").to_string();
    assert_eq!(
        call(state.clone(), EVALUATION, &body).await,
        (503, "no policy is loaded".to_string())
    );
    let readyz = server::router(state.clone())
        .oneshot(
            axum::http::Request::get("/readyz")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);

    state.publish(warden::server::reload::build(&dir.path(), false, &[]).unwrap());
    assert_eq!(
        call(state.clone(), EVALUATION, &body).await,
        (200, r#"{"decision":true}"#.to_string())
    );
    state.begin_shutdown();
    let (status, message) = call(state.clone(), EVALUATIONS, &body).await;
    assert_eq!((status, &*message), (503, "the server is shutting down"));
}

/// The evaluation endpoints read a body straight from its bytes (a single evaluation in one
/// pass, `properties` and `context` decoded from their text; otherwise the skeleton reader),
/// and the ordinary way (a JSON tree) when neither can: all must answer every body alike.
/// A key written with an escape (ignored by all) sends a body the ordinary way.
#[tokio::test]
async fn bodies_read_from_their_bytes_are_answered_as_the_ordinary_way_answers() {
    let server = TestServer::start(config(&PolicyDir::standard().path())).await;
    let batches = [
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}},{"resource":{"type":"Doc","id":"d2"},"action":{"name":"write"}},{"resource":{"type":"Doc","id":"d2"},"subject":{"type":"User","id":"carol"}}]}"#,
        r#"{"subject":{"type":"User","id":"b\u006fb"},"action":{"name":"write"},"context":{"ok":true},"evaluations":[{"resource":{"type":"Doc","id":"d1"}},{"resource":{"type":"Doc","id":"d1"},"context":null},{"resource":{"type":"Doc","id":"d1"},"context":{"ok":false}}]}"#,
        r#"{"action":{"name":"read"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}},{"subject":{"type":"User","id":"alice"},"resource":{"type":"Doc","id":"d1"}},{"subject":null,"resource":{"type":"Doc","id":"d1"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"evaluations":[{"resource":{"type":"Doc","id":"d1"},"action":{"name":"read"}},{"resource":{"type":"Doc","id":"d1"}},{"action":{"name":"read"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"context":5,"evaluations":[{"resource":{"type":"Doc","id":"d1"},"context":{}},{"resource":{"type":"Doc","id":"d1"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"options":{"evaluations_semantic":"deny_on_first_deny"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}},{"resource":{"type":"Doc","id":"d2"},"action":{"name":"write"}},{"resource":{"type":"Doc","id":"d3"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"options":{"evaluations_semantic":"permit_on_first_permit"},"evaluations":[{"resource":{"type":"Doc","id":"d2"},"action":{"name":"write"}},{"resource":{"type":"Doc","id":"d1"}},{"resource":{"type":"Doc","id":"d3"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"options":{"evaluations_semantic":"sometimes"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"options":5,"evaluations":[{"resource":{"type":"Doc","id":"d1"}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"evaluations":[]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"evaluations":null}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"evaluations":[]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"evaluations":[{"resource":["Doc","d1"]},5,{"resource":{"type":"Doc","id":"d1","extra":1}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}},{"resource":{"type":"Nope","id":"d1"}},{"resource":{"type":"Doc","id":"d1","properties":[1]}}]}"#,
        r#"{"subject":{"type":"User","id":"bob","properties":{"x":[1,{"y":null}]}},"action":{"name":"read","properties":null},"evaluations":[{"resource":{"type":"Doc","id":"d1","properties":{}}}]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"subject":{"type":"User","id":"alice"},"action":{"name":"write"},"evaluations":[{"resource":{"type":"Doc","id":"d1"}}]}"#,
        r#"[{"type":"User","id":"bob"},{"name":"read"},{"type":"Doc","id":"d1"}]"#,
        "{\n  \"subject\": {\"type\": \"User\", \"id\": \"alice\"},\n  \"action\": {\"name\": \"read\"},\n  \"evaluations\": [{\"resource\": {\"type\": \"Doc\", \"id\": \"d1\"}}]\n}",
    ];
    let singles = [
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d2"}}"#,
        r#"{"subject":{"type":"User","id":"alice"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"},"context":null}"#,
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"},"context":{"ok":true}}"#,
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"},"context":{"ok":"yes"}}"#,
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"nope"},"resource":{"type":"Doc","id":"d1"}}"#,
        r#"{"subject":null,"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":["Doc","d1"]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"context":[]}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"evaluations":[{"x":1}]}"#,
        r#"{"subject":{"type":"User","id":7},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}}"#,
        // Decoded in one pass from the text (properties, nested context, whitespace) ...
        r#"{"subject":{"type":"User","id":"carol","properties":{"x":[1,{"y":null}],"s":"t"}},"action":{"name":"write","properties":{}},"resource":{"type":"Doc","id":"d1","properties":null},"context":{"ok":true,"n":{"deep":[true,-2]}}}"#,
        "{\n  \"subject\": {\"type\": \"User\", \"id\": \"carol\"},\n  \"action\": {\"name\": \"write\"},\n  \"resource\": {\"type\": \"Doc\", \"id\": \"d2\"},\n  \"context\": {\"ok\": false}\n}",
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d2"},"extra":{"a":[1]}}"#,
        // ... and left by that reader to the skeleton reader: a capability in the context,
        // an undeclared type, an action that does not apply, `options`, a repeated part.
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"},"context":{"ok":true,"capability":"wcap1.e30.AAAA"}}"#,
        r#"{"subject":{"type":"Ghost","id":"g"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"admin"},"resource":{"type":"Doc","id":"d1"}}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"options":{}}"#,
        r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"resource":{"type":"Doc","id":"d2"}}"#,
    ];
    let ordinary = |body: &str| -> String {
        match body.strip_prefix('{') {
            Some(rest) => format!("{{\"\\u007a\":true,{rest}"),
            None => body.to_string(),
        }
    };
    for (path, bodies) in [
        ("/access/v1/evaluations", &batches[..]),
        ("/access/v1/evaluation", &singles[..]),
        ("/access/v1/evaluations", &singles[..]),
    ] {
        for body in bodies {
            let fast = server.http.post(path, body).await;
            let slow = server.http.post(path, &ordinary(body)).await;
            // A refusal names the column, which the added key moves.
            if fast.status == 200 {
                assert_eq!(fast.body, slow.body, "{path} {body}");
            }
            assert_eq!(fast.status, slow.status, "{path} {body}: {}", fast.body);
        }
    }
    server.running.shutdown().await;
}

/// A body sent too slowly is cut off at `request_timeout_ms` with a 408 (never a decision),
/// and the server goes on answering other callers meanwhile.
#[tokio::test]
async fn a_body_sent_too_slowly_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        request_timeout: Duration::from_millis(300),
        ..config(&dir.path())
    })
    .await;
    let body = request("alice", "read", "d1").to_string();
    let mut stream = tokio::net::TcpStream::connect(server.running.address)
        .await
        .unwrap();
    // The headers and half the body; the rest never comes.
    let raw = format!(
        "POST {EVALUATION} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let answered = server
        .http
        .post_json(EVALUATION, &request("alice", "read", "d1"))
        .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request was not complete within the limit of 300 ms"),
        "{answer}"
    );
    assert!(!answer.contains("decision"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

/// A single evaluation is decided at the time of the call, whichever reader decoded its body
/// (the one-pass reader's request takes the call's `now`).
#[tokio::test]
async fn single_evaluations_are_decided_at_the_time_of_the_call() {
    let dir = PolicyDir::new(&[(
        "time.warden",
        "entity User\nentity Doc\naction read on Doc\n\n@id(\"since-2020\")\nallow read on Doc if now() > time(\"2020-01-01T00:00:00Z\")\n",
    )]);
    let server = TestServer::start(config(&dir.path())).await;
    for body in [
        r#"{"subject":{"type":"User","id":"u"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d"}}"#,
        r#"{"subject":{"id":"u","type":"User"},"action":{"name":"read"},"resource":{"id":"d","type":"Doc"},"context":{"x":[1,{"y":null}]}}"#,
        // The skeleton reader's way (an escape in `context`), for comparison.
        r#"{"subject":{"type":"User","id":"u"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d"},"context":{"x":"\u0079"}}"#,
    ] {
        let reply = server.http.post(EVALUATION, body).await;
        assert_eq!(
            (reply.status, &*reply.body),
            (200, r#"{"decision":true}"#),
            "{body}"
        );
    }
    server.running.shutdown().await;
}

/// What the ordinary reader refuses is refused wherever it stands, under a member the API does
/// not have as much as inside `context`: a lone surrogate, nesting past the ordinary reader's
/// limit (127 arrays and objects, the body's own braces included), an invalid escape.
#[tokio::test]
async fn invalid_json_is_refused_under_unknown_members_as_anywhere_else() {
    let (_dir, server) = standard().await;
    let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let single = |extra: &str| {
        format!(
            r#"{{"subject":{{"type":"User","id":"alice"}},"action":{{"name":"read"}},"resource":{{"type":"Doc","id":"d1"}},{extra}}}"#
        )
    };
    let in_subject = |extra: &str| {
        format!(
            r#"{{"subject":{{"type":"User","id":"alice",{extra}}},"action":{{"name":"read"}},"resource":{{"type":"Doc","id":"d1"}}}}"#
        )
    };
    let in_item = |extra: &str| {
        format!(
            r#"{{"subject":{{"type":"User","id":"alice"}},"resource":{{"type":"Doc","id":"d1"}},"evaluations":[{{"action":{{"name":"read",{extra}}}}}]}}"#
        )
    };
    let refused = [
        r#""x":"\ud800""#.to_string(),
        r#""x":{"y":["\udc00"]}"#.to_string(),
        r#""x":"\ud800\u0041""#.to_string(),
        r#""x":"\q""#.to_string(),
        r#""x":01"#.to_string(),
        format!(r#""x":{}"#, deep(100_000)),
        // The body's braces and these: one level past the limit.
        format!(r#""x":{}"#, deep(127)),
        // The fuzzer's finding: an escape in a name, inside an item of a batch.
        r#""na\ud800me":"list""#.to_string(),
    ];
    for extra in &refused {
        for (path, body) in [
            (EVALUATION, single(extra)),
            (EVALUATIONS, single(extra)),
            (EVALUATION, in_subject(extra)),
            (EVALUATIONS, in_subject(extra)),
            (EVALUATIONS, in_item(extra)),
        ] {
            let reply = server.http.post(path, &body).await;
            assert_eq!(reply.status, 400, "{path} {extra:.60}: {}", reply.body);
            assert!(reply.body.contains("not valid JSON"), "{}", reply.body);
        }
    }
    // Up to the limit, and valid escapes, are read as anywhere else.
    for extra in [
        format!(r#""x":{}"#, deep(126)),
        r#""x":"\ud83d\ude00 \u00e9 \/ \n""#.to_string(),
        r#""x":-0"#.to_string(),
    ] {
        for (path, body) in [(EVALUATION, single(&extra)), (EVALUATIONS, single(&extra))] {
            let reply = server.http.post(path, &body).await;
            assert_eq!(
                (reply.status, &*reply.body),
                (200, r#"{"decision":true}"#),
                "{path} {extra:.60}"
            );
        }
    }
    let reply = server
        .http
        .post(EVALUATIONS, &in_item(&format!(r#""x":{}"#, deep(123))))
        .await;
    assert_eq!(
        (reply.status, &*reply.body),
        (200, r#"{"evaluations":[{"decision":true}]}"#)
    );
}

/// A member name given twice is refused (I-JSON, RFC 7493) at every level of every call, however
/// it is spelled: a gateway that keeps the first `subject` must never see another request
/// than Warden decides.
#[tokio::test]
async fn a_member_name_given_twice_is_refused_at_every_level() {
    let (_dir, server) = standard().await;
    let bob = r#"{"type":"User","id":"bob"}"#;
    let alice = r#"{"type":"User","id":"alice"}"#;
    let rest = r#""action":{"name":"write"},"resource":{"type":"Doc","id":"d1"}"#;
    // Bob may not write d1; alice, its owner, may.
    let twice = [
        format!(r#"{{"subject":{bob},"subject":{alice},{rest}}}"#),
        format!(r#"{{"subject":{bob},"subj\u0065ct":{alice},{rest}}}"#),
        format!(r#"{{"subject":{{"type":"User","id":"bob","id":"alice"}},{rest}}}"#),
        format!(r#"{{"subject":{alice},{rest},"context":{{"ok":true,"ok":false}}}}"#),
        format!(
            r#"{{"subject":{{"type":"User","id":"alice","properties":{{"a":{{"b":1,"b":2}}}}}},{rest}}}"#
        ),
        format!(r#"{{"subject":{alice},{rest},"x":1,"x":2}}"#),
        format!(r#"{{"subject":{alice},{rest},"x":[{{"y":1,"y":1}}]}}"#),
        format!(
            r#"{{"subject":{alice},"action":{{"name":"write","name":"read"}},"resource":{{"type":"Doc","id":"d1"}}}}"#
        ),
        format!(
            r#"{{"subject":{alice},"action":{{"name":"write","x":1,"x":1}},"resource":{{"type":"Doc","id":"d1"}}}}"#
        ),
    ];
    for body in &twice {
        for path in [EVALUATION, EVALUATIONS] {
            let reply = server.http.post(path, body).await;
            assert_eq!(reply.status, 400, "{path} {body}: {}", reply.body);
            assert!(reply.body.contains("duplicate member"), "{}", reply.body);
        }
    }
    let batches = [
        format!(
            r#"{{"subject":{bob},"evaluations":[{{"subject":{bob},"subject":{alice},{rest}}}]}}"#
        ),
        format!(r#"{{"subject":{alice},{rest},"evaluations":[{{}}],"evaluations":[]}}"#),
        format!(r#"{{"subject":{alice},{rest},"evaluations":[{{"context":{{"k":1,"k":2}}}}]}}"#),
        format!(
            r#"{{"subject":{alice},{rest},"options":{{"evaluations_semantic":"execute_all","evaluations_semantic":"deny_on_first_deny"}},"evaluations":[{{}}]}}"#
        ),
    ];
    for body in &batches {
        let reply = server.http.post(EVALUATIONS, body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.contains("duplicate member"), "{}", reply.body);
    }
    for path in ["/access/v1/search/subject", "/access/v1/search/resource"] {
        let body = format!(r#"{{"subject":{alice},"subject":{bob},{rest}}}"#);
        let reply = server.http.post(path, &body).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert!(reply.body.contains("duplicate member"), "{}", reply.body);
    }
    // The same names in different objects are no repetition.
    let body = format!(
        r#"{{"subject":{alice},{rest},"context":{{"ok":true,"x":{{"ok":1}}}},"x":{{"x":{{"x":1}}}}}}"#
    );
    let reply = server.http.post(EVALUATION, &body).await;
    assert_eq!((reply.status, &*reply.body), (200, r#"{"decision":true}"#));
}
