//! `warden serve` over real HTTP on ephemeral ports (and in-process, where simpler).

mod authzen;
mod cli;
mod connections;
mod ops;
mod readers;
mod reload;
mod search;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as JsonValue, json};
use tempfile::TempDir;
use warden::server::{self, Config, Running};

/// The test policy: documents owned by users and read by (nested) groups.
pub const POLICY: &str = r#"// Documents in folders, read by groups, owned by users.
entity Group in [Group]
entity User in [Group] { department: String }
entity Folder
entity Doc in [Folder] { owner: User }

action read, write on Doc
action admin on Folder

@id("owner")
allow * on Doc if resource.owner == subject

@id("readers")
allow read on Doc if subject in Group::"readers"

@id("context-write")
allow write on Doc if context has ok and context.ok == true
"#;

pub const STORE: &str = r#"{
  "entities": [
    {"type": "Group", "id": "readers"},
    {"type": "Group", "id": "staff", "parents": [{"type": "Group", "id": "readers"}]},
    {"type": "User", "id": "alice", "attributes": {"department": "eng"}},
    {"type": "User", "id": "bob", "attributes": {"department": "ops"}, "parents": [{"type": "Group", "id": "staff"}]},
    {"type": "User", "id": "carol", "attributes": {"department": "eng"}},
    {"type": "Folder", "id": "f1"},
    {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}, "parents": [{"type": "Folder", "id": "f1"}]},
    {"type": "Doc", "id": "d2", "attributes": {"owner": "carol"}},
    {"type": "Doc", "id": "d3", "attributes": {"owner": "carol"}}
  ]
}
"#;

/// A temporary directory holding `policies/` (so its parent is ours alone to watch).
pub struct PolicyDir {
    pub root: TempDir,
}

impl PolicyDir {
    pub fn new(files: &[(&str, &str)]) -> PolicyDir {
        let root = tempfile::tempdir().unwrap();
        let dir = PolicyDir { root };
        std::fs::create_dir_all(dir.path()).unwrap();
        for (name, text) in files {
            dir.write(name, text);
        }
        dir
    }

    pub fn standard() -> PolicyDir {
        PolicyDir::new(&[("docs.warden", POLICY), ("data/store.json", STORE)])
    }

    pub fn path(&self) -> PathBuf {
        self.root.path().join("policies")
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// The version a directory with these contents loads to (the hash ignores where it lies).
pub fn version_of(files: &[(&str, &str)]) -> String {
    let dir = PolicyDir::new(files);
    version_at(&dir.path())
}

pub fn version_at(path: &Path) -> String {
    let loaded = warden::engine::load_directory(path).unwrap();
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.version.to_string()
}

pub fn config(dir: &Path) -> Config {
    Config {
        policies: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(100),
        shutdown_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// A running server and a client for it.
pub struct TestServer {
    pub running: Running,
    pub http: Http,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let running = server::start(&config).await.unwrap();
        let http = Http::new(&format!("http://{}", running.address));
        TestServer { running, http }
    }

    pub async fn status(&self) -> JsonValue {
        let reply = self.http.get("/v1/status").await;
        assert_eq!(reply.status, 200);
        reply.json()
    }

    /// Polls `/v1/status` until `done` holds, for 30 s at most.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&JsonValue) -> bool) -> JsonValue {
        let probe = async || {
            let status = self.status().await;
            if done(&status) {
                Ok(status)
            } else {
                Err(status)
            }
        };
        let second = Duration::from_secs(1);
        crate::support::poll(what, 30 * second, second / 50, probe)
            .await
            .0
    }

    pub async fn wait_for_version(&self, version: &str) -> JsonValue {
        self.wait_for(&format!("version {version}"), |s| s["version"] == version)
            .await
    }
}

/// A `warden serve` process a test started: killed and reaped when dropped, however the test
/// ends, with a client for the address it logged.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub http: Http,
    /// `IP:PORT`, as the server logged it.
    pub address: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command`, a `warden serve` listening on `127.0.0.1:0` with JSON logs, and waits (60 s
/// at most) for the log line that says where it serves.
pub fn spawn_server(mut command: std::process::Command) -> ServerProcess {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Owned by a `ServerProcess` at once, so a failure below still kills and reaps it.
    let mut server = ServerProcess {
        child,
        http: Http::new("http://127.0.0.1:1"),
        address: String::new(),
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server never said where it serves");
        let Ok(log) = serde_json::from_str::<JsonValue>(&line) else {
            continue;
        };
        if log["fields"]["message"] == "serving" {
            let address = log["fields"]["address"].as_str().unwrap().to_string();
            server.http = Http::new(&format!("http://{address}"));
            server.address = address;
            return server;
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> JsonValue {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A small HTTP/1.1 client with keep-alive.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_string(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], Bytes::new()).await
    }

    /// POSTs JSON text as `application/json`.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &JsonValue) -> Reply {
        self.post(path, &body.to_string()).await
    }
}

pub fn entity(ty: &str, id: &str) -> JsonValue {
    json!({ "type": ty, "id": id })
}

/// An evaluation request body.
pub fn request(subject: &str, action: &str, resource: &str) -> JsonValue {
    json!({
        "subject": entity("User", subject),
        "action": { "name": action },
        "resource": entity("Doc", resource),
    })
}

pub const EVALUATION: &str = "/access/v1/evaluation";
pub const EVALUATIONS: &str = "/access/v1/evaluations";

/// Only one reload test at a time: on a busy two-core machine, parallel watchers and
/// rebuilds would make each other's deadlines meaningless.
pub static RELOAD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
