//! The `warden serve` binary: exit codes, configuration layers, the bundled policies, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;

fn warden() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    // The test's own environment must not configure the server under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("WARDEN_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn a_broken_directory_at_start_exits_3_with_the_diagnostics() {
    let dir = PolicyDir::new(&[("docs.warden", "entity User\nallow read on User if (\n")]);
    let output = warden()
        .args(["serve", "--listen", "127.0.0.1:0", "-p"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("docs.warden:"), "{stderr}");
    assert!(stderr.contains("does not load"), "{stderr}");
}

#[test]
fn an_address_in_use_exits_4() {
    let dir = PolicyDir::standard();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = warden()
        .args(["serve", "--listen"])
        .arg(taken.local_addr().unwrap().to_string())
        .arg("-p")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[test]
fn a_bad_configuration_exits_3_naming_the_key() {
    let dir = PolicyDir::standard();
    let file = dir.root.path().join("warden.toml");
    std::fs::write(&file, "listne = \"127.0.0.1:0\"\n").unwrap();
    let output = warden()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listne"));
    let output = warden()
        .args(["serve", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`listen`"));
}

/// File, then environment, then flags: the file asks for JSON logs and a broken listen
/// address, the environment fixes the address but names a missing directory, and the flag
/// names the bundled policies. The server starts, decides, and stops cleanly on SIGTERM.
#[tokio::test]
async fn serves_the_bundled_policies_with_layered_configuration() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("warden.toml");
    std::fs::write(
        &file,
        "listen = \"not an address\"\nlog_format = \"json\"\npolicies = \"/nonexistent\"\n",
    )
    .unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut child = warden()
        .args(["serve", "--config"])
        .arg(&file)
        .env("WARDEN_LISTEN", "127.0.0.1:0")
        .env("WARDEN_POLICIES", "/also/nonexistent")
        .arg("--policies")
        .arg(&policies)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // The first log line says where it serves (JSON, as the file asked).
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the server said nothing");
    let log: JsonValue = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
    assert_eq!(log["fields"]["message"], "serving", "{line}");
    let address = log["fields"]["address"].as_str().unwrap().to_string();

    let http = Http::new(&format!("http://{address}"));
    let reply = http
        .post_json(
            EVALUATION,
            &json!({
                "subject": { "type": "User", "id": "alice" },
                "action": { "name": "view" },
                "resource": { "type": "Photo", "id": "p1" },
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["decision"].is_boolean());
    assert_eq!(http.get("/readyz").await.status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
