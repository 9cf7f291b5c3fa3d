//! Rate limits and quotas: `warden test` with a fixed clock (window edges, a calendar month in
//! a non-UTC zone), and the server over real HTTP (AuthZEN reasons, batches, all-or-none
//! across limits, concurrent callers, forward-auth 429 with `Retry-After` and `RateLimit`).

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::server::{EVALUATION, EVALUATIONS, PolicyDir, STORE, TestServer, config, request};

/// `warden test` on a directory holding `text`: (exit code, stdout).
fn warden_test(text: &str) -> (Option<i32>, String) {
    let dir = PolicyDir::new(&[("limits.warden", text)]);
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["test", "-p"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), format!("{stdout}{stderr}"))
}

const SCHEMA: &str = r#"
entity User { plan: String }
entity Album { owner: User }
action upload, view on Album
action export on Album

allow * on Album if resource.owner == subject
"#;

#[test]
fn the_third_upload_within_the_hour_is_denied_and_allowed_again_after_the_window() {
    let text = format!(
        r#"{SCHEMA}
limit uploads: 2 upload on Album per hour per subject

test "uploads" {{
  given User::"ana" {{ plan: "free" }}
  given User::"ben" {{ plan: "free" }}
  given Album::"a" {{ owner: User::"ana" }}
  given Album::"b" {{ owner: User::"ben" }}
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  // Another subject has its own count; another action is not counted.
  allow User::"ben" upload Album::"b" at time("2026-03-01T10:00:00Z")
  allow User::"ana" view Album::"a" at time("2026-03-01T10:00:00Z")
  // Two per hour: one comes back each half hour (and not a nanosecond earlier).
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:29:59Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:30:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:30:00Z")
  // After a whole window, the whole allowance.
  allow User::"ana" upload Album::"a" at time("2026-03-01T11:30:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T11:30:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T11:30:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("1 passed"), "{output}");
}

#[test]
fn a_monthly_quota_starts_afresh_at_midnight_in_its_zone() {
    // Paris is UTC+1 in winter: February starts there at 23:00 UTC on 31 January.
    let text = format!(
        r#"{SCHEMA}
limit exports: 2 export per month in "Europe/Paris" per subject

test "quota" {{
  given User::"ana" {{ plan: "free" }}
  given Album::"a" {{ owner: User::"ana" }}
  allow User::"ana" export Album::"a" at time("2026-01-01T00:00:00Z")
  allow User::"ana" export Album::"a" at time("2026-01-31T22:00:00Z")
  deny User::"ana" export Album::"a" at time("2026-01-31T22:59:59Z")
  allow User::"ana" export Album::"a" at time("2026-01-31T23:00:00Z")
  allow User::"ana" export Album::"a" at time("2026-02-27T12:00:00Z")
  deny User::"ana" export Album::"a" at time("2026-02-28T22:59:59Z")
  allow User::"ana" export Album::"a" at time("2026-02-28T23:00:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(0), "{output}");
}

#[test]
fn a_refused_request_names_the_limit_and_the_time_to_retry() {
    let text = format!(
        r#"{SCHEMA}
limit uploads: 1 upload per hour per subject if subject.plan == "free"

test "uploads" {{
  given User::"ana" {{ plan: "free" }}
  given User::"pro" {{ plan: "pro" }}
  given Album::"a" {{ owner: User::"ana" }}
  given Album::"p" {{ owner: User::"pro" }}
  allow User::"pro" upload Album::"p" at time("2026-03-01T10:00:00Z")
  allow User::"pro" upload Album::"p" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:20:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output
            .contains("rate limit `uploads` reached: 1 per 1h for `User::\"ana\"`; retry in 2400s"),
        "{output}"
    );
}

#[test]
fn a_request_the_policy_denies_consumes_nothing() {
    let text = format!(
        r#"{SCHEMA}
limit per_album: 1 upload per day per resource

test "denied first" {{
  given User::"ana" {{ plan: "free" }}
  given User::"eve" {{ plan: "free" }}
  given Album::"a" {{ owner: User::"ana" }}
  deny User::"eve" upload Album::"a" at time("2026-03-01T10:00:00Z")
  deny User::"eve" upload Album::"a" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(0), "{output}");
}

#[test]
fn a_refusing_limit_leaves_the_others_unconsumed() {
    // The third upload to `a` is refused by `per_album`; had `per_subject` counted it, the
    // third upload to `b` would be ana's sixth.
    let text = format!(
        r#"{SCHEMA}
limit per_subject: 5 upload per day per subject
limit per_album: 2 upload per day per resource

test "all or none" {{
  given User::"ana" {{ plan: "free" }}
  given Album::"a" {{ owner: User::"ana" }}
  given Album::"b" {{ owner: User::"ana" }}
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  deny User::"ana" upload Album::"a" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"b" at time("2026-03-01T10:00:00Z")
  allow User::"ana" upload Album::"b" at time("2026-03-01T10:00:00Z")
  deny User::"ana" upload Album::"b" at time("2026-03-01T10:00:00Z")
  // The sixth, to a third album: per_subject refuses.
  deny User::"ana" upload Album::"c" at time("2026-03-01T10:00:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(0), "{output}");
}

#[test]
fn capability_holders_are_limited_like_anyone() {
    let text = format!(
        r#"{SCHEMA}
capability view_key on Album {{
  allow view
  lifetime 1d
}}

limit views: 1 view per hour per subject

test "a key grants access, not a larger allowance" {{
  given User::"kim" {{ plan: "free" }}
  given User::"ana" {{ plan: "free" }}
  given Album::"a" {{ owner: User::"ana" }}
  allow User::"kim" view Album::"a" with capability view_key at time("2026-03-01T10:00:00Z")
  deny User::"kim" view Album::"a" with capability view_key at time("2026-03-01T10:01:00Z")
}}
"#
    );
    let (code, output) = warden_test(&text);
    assert_eq!(code, Some(0), "{output}");
}

/// The server's test policy (documents) with limits.
fn limited_server_policy(limits: &str) -> PolicyDir {
    let policy = format!("{}\n{limits}\n", crate::server::POLICY);
    PolicyDir::new(&[("docs.warden", &policy), ("data/store.json", STORE)])
}

async fn start(dir: &Path) -> TestServer {
    let mut config = config(dir);
    config.watch = false;
    TestServer::start(config).await
}

#[tokio::test]
async fn authzen_answers_carry_the_limit_and_the_retry_time() {
    let dir = limited_server_policy("limit reads: 2 read on Doc per hour per subject");
    let server = start(&dir.path()).await;
    for _ in 0..2 {
        let reply = server
            .http
            .post_json(EVALUATION, &request("alice", "read", "d1"))
            .await;
        assert_eq!(reply.json(), json!({"decision": true}));
    }
    let reply = server
        .http
        .post_json(EVALUATION, &request("alice", "read", "d1"))
        .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["decision"], false, "{body}");
    assert_eq!(body["context"]["limit"]["name"], "reads", "{body}");
    let retry = body["context"]["limit"]["retry_after"].as_u64().unwrap();
    assert!((1..=1800).contains(&retry), "{body}");
    let reason = body["context"]["reason_admin"]["en"].as_str().unwrap();
    assert!(reason.contains("rate limit `reads` reached"), "{reason}");
    // A request the policy denies is not counted: bob may not read d2, and stays at zero.
    for _ in 0..3 {
        let reply = server
            .http
            .post_json(EVALUATION, &request("bob", "write", "d2"))
            .await;
        assert_eq!(reply.json(), json!({"decision": false}));
    }
    let reply = server
        .http
        .post_json(EVALUATION, &request("bob", "read", "d2"))
        .await;
    assert_eq!(reply.json(), json!({"decision": true}));
}

#[tokio::test]
async fn a_batch_consumes_per_item_in_order() {
    let dir = limited_server_policy("limit reads: 3 read on Doc per hour per subject");
    let server = start(&dir.path()).await;
    let item = |doc: &str| json!({"resource": {"type": "Doc", "id": doc}});
    let body = json!({
        "subject": {"type": "User", "id": "alice"},
        "action": {"name": "read"},
        "evaluations": [item("d1"), item("d2"), item("d1"), item("d1"), item("d2")],
    });
    let reply = server.http.post_json(EVALUATIONS, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let decisions: Vec<bool> = reply.json()["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    // alice owns d1 and reads d2 as... nothing: only d1 items are allowed by policy.
    assert_eq!(decisions, [true, false, true, true, false]);
    let reply = server
        .http
        .post_json(EVALUATION, &request("alice", "read", "d1"))
        .await;
    assert_eq!(reply.json()["decision"], false);
}

#[tokio::test]
async fn concurrent_callers_get_exactly_the_limit() {
    let dir = limited_server_policy("limit reads: 20 read on Doc per hour per subject");
    let server = start(&dir.path()).await;
    let mut calls = Vec::new();
    for _ in 0..60 {
        let http = server.http.clone();
        calls.push(tokio::spawn(async move {
            let reply = http
                .post_json(EVALUATION, &request("alice", "read", "d1"))
                .await;
            reply.json()["decision"].as_bool().unwrap()
        }));
    }
    let mut allowed = 0;
    for call in calls {
        if call.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 20);
}

#[tokio::test]
async fn forward_auth_answers_429_with_retry_after_and_ratelimit_fields() {
    let policy = r#"
entity User
entity Item
action get on Item
allow get on Item
route GET "/items/{item}" => get on Item::{item}
limit gets: 2 get per hour per subject
"#;
    let dir = PolicyDir::new(&[("routes.warden", policy)]);
    let mut config = config(&dir.path());
    config.watch = false;
    config.gateway.identity_header = Some("x-user".to_string());
    let server = TestServer::start(config).await;
    // Traefik's headers; nginx's name the same request.
    let ask = |endpoint: &'static str, user: &'static str| {
        let http = server.http.clone();
        async move {
            http.send(
                "GET",
                endpoint,
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/items/i1"),
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/items/i1"),
                    ("x-user", user),
                ],
                "",
            )
            .await
        }
    };
    const TRAEFIK: &str = "/forward-auth/traefik";
    const NGINX: &str = "/forward-auth/nginx";
    let first = ask(TRAEFIK, "ana").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"gets\";q=2;w=3600")
    );
    assert_eq!(first.header("ratelimit"), Some("\"gets\";r=1;t=1800"));
    assert_eq!(ask(TRAEFIK, "ana").await.status, 200);
    let refused = ask(TRAEFIK, "ana").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1800).contains(&retry), "{retry}");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"gets\";q=2;w=3600")
    );
    assert_eq!(
        refused.header("ratelimit"),
        Some(format!("\"gets\";r=0;t={retry}").as_str())
    );
    // nginx's `auth_request` knows only 2xx, 401 and 403: a 403 with the same fields.
    let refused = ask(NGINX, "ana").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert!(refused.header("ratelimit").is_some());
    // Someone else is counted apart.
    assert_eq!(ask(NGINX, "bob").await.status, 200);
    // The metrics count the 429 by its code.
    let metrics = server.http.get("/metrics").await.body;
    assert!(
        metrics.contains("warden_requests_total{endpoint=\"forward_auth\",code=\"429\"} 1"),
        "{metrics}"
    );
}

/// The in-process store keys a count by a hash of the limit's name and the key's value, not by
/// its text: two requests share a count exactly when their keys are the same value, whatever
/// the ids hold (quotes, backslashes, separators, other scripts, look-alikes).
mod keys {
    use std::collections::HashSet;
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use serde_json::json;
    use warden::engine::Engine;
    use warden::eval::request;
    use warden::limit::{self, LocalStore};

    fn engine() -> &'static Engine {
        static ENGINE: OnceLock<(tempfile::TempDir, Engine)> = OnceLock::new();
        &ENGINE
            .get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(
                    dir.path().join("rules.warden"),
                    "entity User\nentity Photo\naction view on Photo\nallow view on Photo\n\
                     limit once: 1 view per hour per subject\n",
                )
                .unwrap();
                let engine = Engine::load(dir.path()).unwrap();
                (dir, engine)
            })
            .1
    }

    fn id() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                "a", "b", "\"", "\\", ":", "::", "\0", "é", "e\u{301}", " ",
            ]),
            0..4,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_key_is_counted_once_and_distinct_keys_apart(ids in proptest::collection::vec(id(), 1..24)) {
            let program = &engine().program;
            let store = LocalStore::new();
            let mut seen = HashSet::new();
            let now = jiff::Timestamp::now();
            for id in ids {
                let body = json!({
                    "subject": {"type": "User", "id": id},
                    "action": {"name": "view"},
                    "resource": {"type": "Photo", "id": "p1"},
                });
                let request = request::read(program, body.to_string().as_bytes(), now).unwrap();
                let counted = limit::consume(program, &request, &store);
                prop_assert_eq!(counted.is_ok(), seen.insert(id.clone()), "{:?}: {:?}", id, counted);
            }
        }
    }
}
