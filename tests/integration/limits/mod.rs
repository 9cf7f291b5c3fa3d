//! Rate limits and quotas: `warden test` with a fixed clock (window edges, a calendar month in
//! a non-UTC zone), and the server over real HTTP (AuthZEN reasons, batches, all-or-none
//! across limits, concurrent callers, forward-auth 429 with `Retry-After` and `RateLimit`), and
//! the in-process store's keys and counts under threads at a window's edge.

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
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, OnceLock};

    use proptest::prelude::*;
    use serde_json::json;
    use warden::data::value::{EntityRef, EntityUid, Value};
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

    /// A key's value as the store sees it: an entity, a string, or another value.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    enum Key {
        Entity(String, String),
        Str(String),
        Int(i64),
    }

    impl Key {
        fn value(&self) -> Value {
            match self {
                Key::Entity(ty, id) => Value::Entity(EntityRef::Unknown(Arc::new(EntityUid {
                    ty: ty.as_str().into(),
                    id: id.as_str().into(),
                }))),
                Key::Str(text) => Value::Str(text.as_str().into()),
                Key::Int(number) => Value::Int(*number),
            }
        }
    }

    /// Short texts from few letters, so that parts often run into one another when joined.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec!["a", "b", "\0", "é", "12345678"]),
            0..5,
        )
        .prop_map(|parts| parts.concat())
    }

    fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            (text(), text()).prop_map(|(ty, id)| Key::Entity(ty, id)),
            text().prop_map(Key::Str),
            (-3i64..3).prop_map(Key::Int),
        ]
    }

    /// A limit's name, a key's value, and a calendar period's start (`None`: a rolling count).
    type Counted = (String, Key, Option<i64>);

    /// Asserts that the keys that encode alike are equal keys.
    fn assert_injective(keys: &[Counted]) {
        let program = &engine().program;
        let mut seen: HashMap<Vec<u8>, &Counted> = HashMap::new();
        for counted in keys {
            let (name, key, period) = counted;
            let bytes = limit::key_encoding(program, name, &key.value(), *period);
            if let Some(before) = seen.insert(bytes, counted) {
                assert_eq!(before, counted, "two keys encode alike");
            }
        }
    }

    /// No period (a rolling count), or the start of one of a few calendar periods.
    fn period() -> impl Strategy<Value = Option<i64>> {
        prop_oneof![Just(None), (-2i64..3).prop_map(|day| Some(day * 86_400))]
    }

    #[test]
    fn parts_past_sixteen_bits_encode_apart_from_short_ones() {
        let long = "a".repeat(70_000);
        assert_injective(&[
            ("n".into(), Key::Str(long.clone()), None),
            (long.clone(), Key::Str("n".into()), None),
            ("n".into(), Key::Entity(long.clone(), String::new()), None),
            ("n".into(), Key::Entity(String::new(), long.clone()), None),
            ("n".into(), Key::Str(long[1..].to_string()), None),
            ("n".into(), Key::Str(String::new()), None),
            (String::new(), Key::Str(String::new()), None),
            ("n".into(), Key::Str(long.clone()), Some(0)),
            ("n".into(), Key::Str(long[1..].to_string()), Some(0)),
        ]);
    }

    /// A record's field names cannot pass for the punctuation between its fields: a key of
    /// one field named `a: 1, b` is not the key of two fields `a` and `b`.
    #[test]
    fn records_whose_names_look_like_their_punctuation_encode_apart() {
        let program = &engine().program;
        let one = Value::record(vec![("a: 1, b".into(), Value::Int(2))]);
        let two = Value::record(vec![
            ("a".into(), Value::Int(1)),
            ("b".into(), Value::Int(2)),
        ]);
        assert_ne!(
            limit::key_encoding(program, "n", &one, None),
            limit::key_encoding(program, "n", &two, None)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The encoding the key hash is computed over is one-to-one: distinct limit names, key
        /// values and calendar periods never feed the hash the same bytes (lengths lead the
        /// parts, so ("ab", "c") and ("a", "bc") differ; a flag says a period's start follows,
        /// so a calendar count is never a rolling one).
        #[test]
        fn distinct_keys_never_encode_alike(keys in proptest::collection::vec((text(), key(), period()), 1..48)) {
            assert_injective(&keys);
        }
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

/// Threads counting at once in the in-process store get exactly what the limit allows, at a
/// window's edge too: a rolling limit of 10 an hour gives 10 at once, 9 a nanosecond before
/// the hour is over (one more request each sixth of an hour, less the nanosecond) and 1 more
/// at the hour; a daily quota of 5 gives 5 the nanosecond before midnight and 5 at midnight.
mod edges {
    use std::sync::Barrier;

    use serde_json::json;
    use warden::engine::Engine;
    use warden::eval::request;
    use warden::limit::{self, LocalStore};

    const THREADS: usize = 8;
    const TRIES: usize = 4;

    fn engine(limit: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.warden"),
            format!(
                "entity User\nentity Photo\naction view on Photo\nallow view on Photo\n{limit}\n"
            ),
        )
        .unwrap();
        let engine = Engine::load(dir.path()).unwrap();
        (dir, engine)
    }

    /// How many of `THREADS * TRIES` requests by one subject at each instant of `phases` are
    /// allowed, the threads deciding together and waiting for each other between instants.
    fn allowed(engine: &Engine, phases: &[&str]) -> Vec<usize> {
        let program = &engine.program;
        let store = LocalStore::new();
        let barrier = Barrier::new(THREADS);
        let body = json!({
            "subject": {"type": "User", "id": "ana"},
            "action": {"name": "view"},
            "resource": {"type": "Photo", "id": "p1"},
        })
        .to_string();
        let per_thread: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        phases
                            .iter()
                            .map(|at| {
                                let now: jiff::Timestamp = at.parse().unwrap();
                                let request = request::read(program, body.as_bytes(), now).unwrap();
                                barrier.wait();
                                let counted = (0..TRIES)
                                    .filter(|_| limit::consume(program, &request, &store).is_ok())
                                    .count();
                                barrier.wait();
                                counted
                            })
                            .collect()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect()
        });
        (0..phases.len())
            .map(|phase| per_thread.iter().map(|counts| counts[phase]).sum())
            .collect()
    }

    /// Whether each of `times` requests by one subject at `at` is counted by `engine`'s limits
    /// in `store`.
    fn tries(engine: &Engine, store: &LocalStore, at: &str, times: usize) -> Vec<bool> {
        let body = json!({
            "subject": {"type": "User", "id": "ana"},
            "action": {"name": "view"},
            "resource": {"type": "Photo", "id": "p1"},
        })
        .to_string();
        let program = &engine.program;
        let request = request::read(program, body.as_bytes(), at.parse().unwrap()).unwrap();
        (0..times)
            .map(|_| limit::consume(program, &request, store).is_ok())
            .collect()
    }

    /// A limit edited from a monthly quota to a rolling limit under the same name, the store
    /// kept (as a reload keeps it), starts afresh: the quota's count is not read as the
    /// rolling limit's (its period's end would stand for a time of arrival weeks ahead).
    /// Edited back, it takes up the month's count, which was kept apart.
    #[test]
    fn a_limit_edited_to_another_kind_of_period_starts_afresh_and_back_takes_up_its_count() {
        let (_monthly_dir, monthly) =
            engine(r#"limit views: 1 view per month in "UTC" per subject"#);
        let (_hourly_dir, hourly) = engine("limit views: 1 view per hour per subject");
        let store = LocalStore::new();
        let at = "2026-03-01T10:00:00Z";
        assert_eq!(tries(&monthly, &store, at, 2), [true, false]);
        assert_eq!(tries(&hourly, &store, at, 2), [true, false]);
        assert_eq!(tries(&monthly, &store, at, 1), [false]);
    }

    /// A weekly quota edited to a daily one keeps only what the new period holds: on a Sunday
    /// (the week's last day, which ends when the week does) the day starts afresh; on a Monday
    /// the day starts with the week, and the week's count so far is the day's.
    #[test]
    fn a_quota_edited_to_a_shorter_period_keeps_only_what_the_new_period_counted() {
        let (_weekly_dir, weekly) = engine(r#"limit views: 2 view per week in "UTC" per subject"#);
        let (_daily_dir, daily) = engine(r#"limit views: 2 view per day in "UTC" per subject"#);
        // Sunday 1 March 2026.
        let store = LocalStore::new();
        let sunday = "2026-03-01T10:00:00Z";
        assert_eq!(tries(&weekly, &store, sunday, 3), [true, true, false]);
        assert_eq!(tries(&daily, &store, sunday, 3), [true, true, false]);
        // Monday 2 March 2026.
        let store = LocalStore::new();
        let monday = "2026-03-02T10:00:00Z";
        assert_eq!(tries(&weekly, &store, monday, 2), [true, true]);
        assert_eq!(tries(&daily, &store, monday, 1), [false]);
        // A day's count ends with its day, as its Redis key does: made weekly on the Tuesday,
        // the week does not read Monday's count (though it starts when Monday did).
        let store = LocalStore::new();
        assert_eq!(tries(&daily, &store, monday, 3), [true, true, false]);
        let tuesday = "2026-03-03T10:00:00Z";
        assert_eq!(tries(&weekly, &store, tuesday, 3), [true, true, false]);
    }

    /// When the count does not divide the period, the interval between requests is rounded
    /// down to whole microseconds (60,000 a second: 16 µs); still exactly the count passes at
    /// once, not the period's worth of intervals (62,500).
    #[test]
    fn a_count_that_does_not_divide_its_period_passes_exactly_the_count_at_once() {
        let (_dir, engine) = engine("limit many: 60000 view per 1s per subject");
        let passed = tries(&engine, &LocalStore::new(), "2026-03-01T10:00:00Z", 60_010);
        assert_eq!(passed.iter().filter(|counted| **counted).count(), 60_000);
    }

    #[test]
    fn threads_get_exactly_a_rolling_limit_at_its_edge() {
        let (_dir, engine) = engine("limit hourly: 10 view per hour per subject");
        let counts = allowed(
            &engine,
            &[
                "2026-03-01T10:00:00Z",
                "2026-03-01T10:59:59.999999999Z",
                "2026-03-01T11:00:00Z",
            ],
        );
        assert_eq!(counts, [10, 9, 1]);
    }

    #[test]
    fn threads_get_exactly_a_daily_quota_at_midnight() {
        let (_dir, engine) = engine(r#"limit daily: 5 view per day in "UTC" per subject"#);
        let counts = allowed(
            &engine,
            &["2026-03-01T23:59:59.999999999Z", "2026-03-02T00:00:00Z"],
        );
        assert_eq!(counts, [5, 5]);
    }
}

/// A limit keyed by the request's subject or resource has its key read straight from the
/// request; any other key, and a condition, goes through the evaluator. Every way must count
/// alike: the same answers, refusals and standings, request after request, for subjects and
/// resources held in the store and only named.
mod direct_keys {
    use proptest::prelude::*;
    use serde_json::json;
    use warden::engine::Engine;
    use warden::eval::request;
    use warden::limit::{self, LocalStore};

    const DATA: &str = r#"{"entities": [
        {"type": "User", "id": "u0"}, {"type": "User", "id": "u1"},
        {"type": "Photo", "id": "p0"}
    ]}"#;

    /// Keyed by the request's own value, read from the request.
    fn read(party: &str) -> String {
        party.to_string()
    }

    /// The same value, computed: the branch is not known until the request is.
    fn computed(party: &str) -> String {
        format!("(if subject is User then {party} else {party})")
    }

    /// Limits per subject (rolling and a daily quota) and per resource, keyed as `people` and
    /// `photos` make the keys, each with `condition` after it.
    fn engine(
        people: fn(&str) -> String,
        photos: fn(&str) -> String,
        condition: &str,
    ) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let (subject, resource) = (people("subject"), photos("resource"));
        std::fs::write(
            dir.path().join("rules.warden"),
            format!(
                "entity User\nentity Photo\naction view, edit on Photo\nallow * on Photo\n\
                 limit people: 3 view per 10m per {subject}{condition}\n\
                 limit photos: 4 * on Photo per hour per {resource}{condition}\n\
                 limit edits: 2 edit per day in \"Europe/Paris\" per {subject}{condition}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/store.json"), DATA).unwrap();
        let engine = Engine::load(dir.path()).unwrap();
        (dir, engine)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Programs alike but for how their keys are found count alike: without a condition,
        /// and with one that is false for `u1` (so the limits skip it), keys read from the
        /// request, computed, and one of each in the same program.
        #[test]
        fn keys_read_from_the_request_count_as_computed_keys_do(
            calls in proptest::collection::vec((0..4usize, 0..3usize, any::<bool>(), 0u64..12_000), 1..40)
        ) {
            const UNLESS_U1: &str = r#" if subject != User::"u1""#;
            let groups = [
                vec![engine(read, read, ""), engine(computed, computed, "")],
                vec![
                    engine(read, read, UNLESS_U1),
                    engine(computed, computed, UNLESS_U1),
                    engine(read, computed, UNLESS_U1),
                    engine(computed, read, UNLESS_U1),
                ],
            ];
            for group in &groups {
                let stores: Vec<LocalStore> = group.iter().map(|_| LocalStore::new()).collect();
                let mut at: jiff::Timestamp = "2026-03-01T22:50:00Z".parse().unwrap();
                for (user, photo, edit, seconds) in &calls {
                    at = at.checked_add(jiff::SignedDuration::from_millis(*seconds as i64 * 10)).unwrap();
                    let body = json!({
                        "subject": {"type": "User", "id": format!("u{user}")},
                        "action": {"name": if *edit { "edit" } else { "view" }},
                        "resource": {"type": "Photo", "id": format!("p{photo}")},
                    })
                    .to_string();
                    let counted: Vec<_> = group
                        .iter()
                        .zip(&stores)
                        .map(|((_dir, engine), store)| {
                            let program = &engine.program;
                            let request = request::read(program, body.as_bytes(), at).unwrap();
                            limit::consume(program, &request, store).map(|usages| {
                                usages
                                    .iter()
                                    .map(|u| (u.limit, u.figures(&program.limits[u.limit])))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    for other in &counted[1..] {
                        prop_assert_eq!(&counted[0], other, "{} at {}", body, at);
                    }
                }
            }
        }
    }
}
