//! Python's `grpcio`, with Envoy's protos compiled by `grpcio-tools`, against a running Warden
//! (`tests/grpc/check.py`). The interpreter is `WARDEN_TEST_PYTHON` (a venv with `grpcio` and
//! `grpcio-tools`: `.ci/run` makes one); without it the test is skipped, except under
//! `CI=true`, where it fails.

use std::io::Write;
use std::process::{Command, Stdio};

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::server;
use crate::gateway::{bearer, claims, example_policies, now, sign};

/// The interpreter to run, or `None` to skip (never under CI).
fn python() -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var("WARDEN_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if ci => {
            panic!("CI=true: WARDEN_TEST_PYTHON must name a Python with grpcio and grpcio-tools")
        }
        _ => {
            eprintln!("SKIPPED: set WARDEN_TEST_PYTHON to a Python with grpcio and grpcio-tools");
            None
        }
    }
}

#[tokio::test]
async fn grpcio_client_gets_envoys_answers() {
    let Some(python) = python() else {
        return;
    };
    let (server, address) = server(&example_policies()).await;
    let alice = bearer(&sign(Algorithm::ES256, &claims("alice")));
    let bob = bearer(&sign(Algorithm::ES256, &claims("bob")));
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let expired = bearer(&sign(Algorithm::ES256, &expired));
    let photo = "/albums/a1/photos/p1";
    let cases = json!([
        {"name": "allow", "method": "GET", "path": photo, "headers": {"authorization": alice},
         "expect": {"code": 0, "http": 200, "upstream": {"x-warden-subject": "alice"},
                    "removed": ["x-warden-roles"]}},
        {"name": "allow-with-query", "method": "DELETE", "path": format!("{photo}?force=1"),
         "headers": {"authorization": alice}, "extensions": {"tenant": "acme"},
         "expect": {"code": 0, "http": 200}},
        {"name": "deny", "method": "GET", "path": photo, "headers": {"authorization": bob},
         "expect": {"code": 7, "http": 403}},
        {"name": "missing-token", "method": "GET", "path": photo,
         "expect": {"code": 16, "http": 401,
                    "denied_headers": {"www-authenticate": "Bearer realm=\"warden\""}}},
        {"name": "expired-token", "method": "GET", "path": photo,
         "headers": {"authorization": expired}, "expect": {"code": 16, "http": 401}},
        {"name": "forged-token", "method": "GET", "path": photo,
         "headers": {"authorization": format!("{alice}x")}, "expect": {"code": 16, "http": 401}},
        {"name": "unmatched-route", "method": "GET", "path": "/nowhere",
         "headers": {"authorization": alice}, "expect": {"code": 7, "http": 403}},
        {"name": "ambiguous-path", "method": "GET", "path": "/albums/a1/photos/p1%2f..%2fp2",
         "headers": {"authorization": alice}, "expect": {"code": 7, "http": 403}},
        {"name": "huge-headers", "method": "GET", "path": photo,
         "headers": {"authorization": alice, "x-padding": "a".repeat(256 * 1024)},
         "expect": {"code": 0, "http": 200}},
        {"name": "over-the-limit", "method": "GET", "path": photo,
         "headers": {"authorization": alice, "x-padding": "a".repeat(2 << 20)},
         "expect": {"error": "OUT_OF_RANGE"}},
        // A deadline that runs out fails the call, which Envoy answers as a deny; one the
        // server meets gets the decision. Either way the connection serves on.
        {"name": "client-deadline", "method": "GET", "path": photo,
         "headers": {"authorization": alice}, "deadline_s": 0.000_001,
         "expect_one_of": [{"error": "DEADLINE_EXCEEDED"}, {"code": 0, "http": 200}]},
        {"name": "after-the-deadline", "method": "GET", "path": photo,
         "headers": {"authorization": alice}, "expect": {"code": 0, "http": 200}},
    ]);
    let stdout = run(&python, &address.to_string(), &cases).await;
    assert_eq!(stdout.lines().count(), 12, "{stdout}");
    server.running.shutdown().await;
}

/// `grpc_listen` on a Unix socket (grpcio's `unix:PATH` target), with
/// `grpc_strip_authorization`: an allow removes `Authorization` upstream, a deny is a deny.
#[tokio::test]
async fn grpcio_client_over_a_unix_socket_sees_authorization_removed() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("grpc.sock");
    let mut config = crate::gateway::gateway_config(&example_policies());
    config.grpc_listen = Some(warden::server::listen::Listen::Unix(socket.clone()));
    config.gateway.grpc_strip_authorization = true;
    let running = warden::server::start(&config).await.unwrap();
    let alice = bearer(&sign(Algorithm::ES256, &claims("alice")));
    let bob = bearer(&sign(Algorithm::ES256, &claims("bob")));
    let photo = "/albums/a1/photos/p1";
    let cases = json!([
        {"name": "allow", "method": "GET", "path": photo, "headers": {"authorization": alice},
         "expect": {"code": 0, "http": 200, "upstream": {"x-warden-subject": "alice"},
                    "removed": ["authorization", "x-warden-roles"]}},
        {"name": "deny", "method": "GET", "path": photo, "headers": {"authorization": bob},
         "expect": {"code": 7, "http": 403}},
        {"name": "missing-token", "method": "GET", "path": photo,
         "expect": {"code": 16, "http": 401}},
    ]);
    let stdout = run(&python, &format!("unix:{}", socket.display()), &cases).await;
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    running.shutdown().await;
}

/// Runs `tests/grpc/check.py` against `target` (`HOST:PORT` or `unix:PATH`) with `cases`;
/// returns its standard output (a line per case) once every case got what it expects.
async fn run(python: &str, target: &str, cases: &serde_json::Value) -> String {
    let script = crate::gateway::repo().join("tests/grpc/check.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{python}`: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = cases.to_string();
    // The script reads all its input before it calls the server, which this runtime serves.
    let output = tokio::task::spawn_blocking(move || {
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
