#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a profiling driver that cannot set up has nothing to measure"
)]
//! A small driver for `valgrind --tool=callgrind`: the decision API's calls, in process (the
//! router called directly, no sockets), with the audit log on or off, on the policy and the
//! bodies of `benches/load.sh`. Instruction counts are repeatable where wall-clock time on a
//! shared machine is not.
//!
//! ```sh
//! cargo build --release --example profile_calls
//! valgrind --tool=callgrind --callgrind-out-file=cg.batch.on \
//!     target/release/examples/profile_calls batch on 200
//! callgrind_annotate --inclusive=yes cg.batch.on | head -60
//! ```
//!
//! Arguments: `single|batch|forward` (the call), `on|off` (the audit log), the number of calls.
//! The instructions of one call are the total's difference between two counts, divided by
//! the difference in calls (start-up and shutdown cancel out).

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;
use warden::audit::{AuditConfig, Key};
use warden::server::Config;

// The server's allocator, as in src/main.rs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str = r#"entity Group in [Group]
entity User in [Group] { department: String, suspended?: Bool }
entity Folder
entity Doc in [Folder] { owner: User }

action read, write on Doc

@id("owner")
allow * on Doc if resource.owner == subject

@id("readers")
allow read on Doc if subject in Group::"readers"

@id("suspended")
deny * if subject has suspended and subject.suspended

route GET "/docs/{doc}" => read on Doc::{doc}
"#;

const STORE: &str = r#"{
  "entities": [
    {"type": "Group", "id": "readers"},
    {"type": "Group", "id": "staff", "parents": [{"type": "Group", "id": "readers"}]},
    {"type": "User", "id": "alice", "attributes": {"department": "eng"}},
    {"type": "User", "id": "bob", "attributes": {"department": "ops"}, "parents": [{"type": "Group", "id": "staff"}]},
    {"type": "Folder", "id": "f1"},
    {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}, "parents": [{"type": "Folder", "id": "f1"}]},
    {"type": "Doc", "id": "d2", "attributes": {"owner": "alice"}}
  ]
}"#;

const SINGLE: &str = r#"{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d2"},"context":{"ip":"10.0.0.1"}}"#;

/// The batch of `benches/load.sh`.
fn batch() -> String {
    let mut items = Vec::new();
    for i in 1..=100 {
        items.push(match i % 4 {
            0 => r#"{"resource":{"type":"Doc","id":"d1"}}"#,
            1 => r#"{"resource":{"type":"Doc","id":"d2"},"action":{"name":"write"}}"#,
            2 => r#"{"resource":{"type":"Doc","id":"d2"},"subject":{"type":"User","id":"alice"}}"#,
            _ => r#"{"resource":{"type":"Doc","id":"d1"},"action":{"name":"read"}}"#,
        });
    }
    format!(
        r#"{{"subject":{{"type":"User","id":"bob"}},"action":{{"name":"read"}},"evaluations":[{}]}}"#,
        items.join(",")
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let call = args.get(1).map_or("batch", String::as_str).to_string();
    let audit_on = args.get(2).map_or("on", String::as_str) == "on";
    let calls: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(100);

    let dir = std::env::temp_dir().join(format!("warden-profile-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("policies/data")).unwrap();
    std::fs::write(dir.join("policies/docs.warden"), POLICY).unwrap();
    std::fs::write(dir.join("policies/data/store.json"), STORE).unwrap();
    let mut config = Config {
        policies: dir.join("policies"),
        listen: "127.0.0.1:0".parse().unwrap(),
        watch: false,
        shutdown_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    config.gateway.identity_header = Some("x-user".to_string());
    if audit_on {
        let key = Key::new(b"a profiling key of 32 bytes.....").unwrap();
        config.audit = Some(AuditConfig::new(dir.join("audit/audit.jsonl"), key));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let running = warden::server::start(&config).await.unwrap();
        let app = warden::server::router(running.state.clone());
        let batch = batch();
        for _ in 0..calls {
            let request = match call.as_str() {
                "single" => Request::post("/access/v1/evaluation")
                    .header("content-type", "application/json")
                    .body(Body::from(SINGLE))
                    .unwrap(),
                "forward" => Request::get("/forward-auth/nginx")
                    .header("x-original-method", "GET")
                    .header("x-original-uri", "/docs/d1")
                    .header("x-user", "alice")
                    .body(Body::empty())
                    .unwrap(),
                _ => Request::post("/access/v1/evaluations")
                    .header("content-type", "application/json")
                    .body(Body::from(batch.clone()))
                    .unwrap(),
            };
            let response = app.clone().oneshot(request).await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
        running.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
