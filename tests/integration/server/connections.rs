//! Connections the clients hold: slow request heads, the connection limit, and what each kind
//! of connection gets at SIGTERM. Clients here are raw TCP streams, so a test controls every
//! byte and sees exactly when the server closes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Reads until the server closes the connection (end of stream or an error, such as a reset),
/// for 30 s at most; returns what was read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
            .await
            .expect("the server did not close the connection within 30 s");
        match chunk {
            Ok(0) | Err(_) => return read,
            Ok(n) => read.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Reads one response whose head says `content-length`, without waiting for the close.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&read).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
            .await
            .expect("no response within 30 s")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {text:?}");
        read.extend_from_slice(&buffer[..n]);
    }
}

/// `GET /healthz` over `stream`, answered `200`; the connection stays open.
async fn healthy(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// A metric's value from `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let probe = async || crate::support::done(done());
    crate::support::poll(
        what,
        Duration::from_secs(30),
        Duration::from_millis(10),
        probe,
    )
    .await;
}

/// The server closes `stream` without (another) answer, and counts it under `reason`.
async fn closed_without_answer(stream: &mut TcpStream, server: &TestServer, reason: &str) {
    let answer = read_to_close(stream).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let metrics = server.http.get("/metrics").await.body;
    let name = format!("warden_connections_closed_total{{reason=\"{reason}\"}}");
    assert!(metric(&metrics, &name) >= 1.0, "{metrics}");
}

/// A server of the standard policy directory (returned with it, to keep it), configured.
async fn standard_server(configure: impl FnOnce(Config) -> Config) -> (PolicyDir, TestServer) {
    let dir = PolicyDir::standard();
    let server = TestServer::start(configure(config(&dir.path()))).await;
    (dir, server)
}

/// A request head far longer than it takes the header timeout to expire when sent a byte at
/// a time.
fn long_head() -> String {
    let mut head = format!("POST {EVALUATION} HTTP/1.1\r\nHost: localhost\r\n");
    for n in 0..20 {
        head.push_str(&format!("X-Padding-{n}: slow\r\n"));
    }
    head.push_str("Content-Length: 2\r\n\r\n{}");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_after_the_header_timeout_and_others_are_answered() {
    let (_dir, server) = standard_server(|config| Config {
        header_timeout: Duration::from_millis(500),
        ..config
    })
    .await;
    let mut slow = TcpStream::connect(server.running.address).await.unwrap();
    let head = long_head();
    let mut sent = 0;
    for byte in head.bytes() {
        // A write fails once the server has closed (the first after the close may still pass).
        if slow.write_all(&[byte]).await.is_err() {
            break;
        }
        sent += 1;
        if sent % 10 == 0 {
            // Everyone else is answered all along.
            let reply = server
                .http
                .post_json(EVALUATION, &request("alice", "read", "d1"))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        sent < head.len(),
        "the server let a client take {} ms over one request head",
        25 * head.len()
    );
    closed_without_answer(&mut slow, &server, "header_timeout").await;
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (_dir, server) = standard_server(|config| Config {
        idle_timeout: Duration::from_millis(300),
        ..config
    })
    .await;
    let mut client = TcpStream::connect(server.running.address).await.unwrap();
    healthy(&mut client).await;
    // Kept alive, then closed once idle too long.
    closed_without_answer(&mut client, &server, "idle_timeout").await;
    server.running.shutdown().await;
}

/// At the limit, the connection nearest its timeout makes room: clients that hold connections
/// open without sending a request do not lock others out, and a slow client goes before a
/// keep-alive connection that has just been used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_new_client_closes_the_one_nearest_its_timeout() {
    let (_dir, server) = standard_server(|config| Config {
        max_connections: 4,
        ..config
    })
    .await;
    let metrics = &server.running.state.metrics;
    let registered = |open: usize| {
        wait_until("the connection to be registered", move || {
            metrics.connections_open() == i64::try_from(open).unwrap()
        })
    };
    // First a keep-alive connection, used once and idle since.
    let mut pooled = TcpStream::connect(server.running.address).await.unwrap();
    healthy(&mut pooled).await;
    // Then three that send half a request head, one after the other: the first of them is
    // the nearest its (header) timeout.
    let mut holders = Vec::new();
    for open in 2..=4 {
        let mut stream = TcpStream::connect(server.running.address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        holders.push(stream);
        registered(open).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = server
        .http
        .post_json(EVALUATION, &request("alice", "read", "d1"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = read_to_close(&mut holders[0]).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let text = server.http.get("/metrics").await.body;
    assert_eq!(
        metric(&text, "warden_connections_closed_total{reason=\"evicted\"}"),
        1.0,
        "{text}"
    );
    assert!(metric(&text, "warden_connections_open") <= 4.0, "{text}");
    // The pooled connection was kept: it answers again.
    healthy(&mut pooled).await;
    server.running.shutdown().await;
}

/// A valid evaluation body, and a request head announcing it.
fn evaluation_request() -> (String, String) {
    let body = request("alice", "read", "d1").to_string();
    let head = format!(
        "POST {EVALUATION} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

/// When every open connection is being answered, a new one is refused at once (not queued
/// behind them); once an answer is made, new clients are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_is_being_answered_a_new_one_is_refused_until_one_is_free() {
    let (_dir, server) = standard_server(|config| Config {
        max_connections: 2,
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config
    })
    .await;
    let admin = Http::new(&format!("http://{}", server.running.admin_address.unwrap()));
    let (head, body) = evaluation_request();
    let (first, rest) = body.split_at(5);
    // Two calls whose bodies are still arriving: both connections are being answered.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.running.address).await.unwrap();
        stream
            .write_all(format!("{head}{first}").as_bytes())
            .await
            .unwrap();
        busy.push(stream);
    }
    let state = server.running.state.clone();
    wait_until("both calls to be in flight", || {
        state.metrics.in_flight() == 2
    })
    .await;

    let mut refused = TcpStream::connect(server.running.address).await.unwrap();
    let _ = refused.write_all(format!("{head}{body}").as_bytes()).await;
    let answer = read_to_close(&mut refused).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let text = admin.get("/metrics").await.body;
    assert_eq!(
        metric(&text, "warden_connections_refused_total"),
        1.0,
        "{text}"
    );

    // One call finishes: its connection is idle now, and makes room for a new client.
    busy[0].write_all(rest.as_bytes()).await.unwrap();
    let response = read_response(&mut busy[0]).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let reply = server
        .http
        .post_json(EVALUATION, &request("alice", "read", "d1"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.running.shutdown().await;
}

/// A `warden serve` process and its decision API address.
pub struct Process {
    pub child: Child,
    pub address: String,
}

impl Process {
    /// Starts `warden serve` on an ephemeral port with JSON logs, and waits until it serves.
    pub fn start(args: &[&str]) -> Process {
        let child = crate::sidecar::warden()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Owned by a `Process` at once, so that a failure below leaves no server behind.
        let mut process = Process {
            child,
            address: String::new(),
        };
        let stderr = process.child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(json) = serde_json::from_str::<JsonValue>(&line) {
                    let _ = sender.send(json);
                }
            }
        });
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the server did not say where it serves");
            if line["fields"]["message"] == "serving" {
                process.address = line["fields"]["address"].as_str().unwrap().to_string();
                // The reader thread keeps draining the log after `lines` is dropped.
                return process;
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit, for `limit` at most; its exit code.
    pub async fn exit_within(mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running {limit:?} after being asked to stop");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    /// A test that fails midway leaves no server behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// At SIGTERM, a connection that has sent half a request head and an idle keep-alive
/// connection close at once, a call being answered gets its answer with `Connection: close`,
/// and the process exits without waiting for the (long) shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_and_half_sent_connections_and_answers_calls_in_flight() {
    let policies = crate::sidecar::bundled_policies();
    let server = Process::start(&[
        "--shutdown-timeout-ms",
        "120000",
        "-p",
        policies.to_str().unwrap(),
    ]);
    let address = server.address.clone();

    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"POST /access/v1/evaluation HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(&address).await.unwrap();
    healthy(&mut idle).await;
    let body = json!({
        "subject": { "type": "User", "id": "alice" },
        "action": { "name": "view" },
        "resource": { "type": "Photo", "id": "p1" },
    })
    .to_string();
    let mut busy = TcpStream::connect(&address).await.unwrap();
    let (first, rest) = body.split_at(5);
    busy.write_all(
        format!(
            "POST {EVALUATION} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The call has begun once its body is being read.
    let http = Http::new(&format!("http://{address}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = http.get("/metrics").await.body;
        if metric(&text, "warden_requests_in_flight") >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the call never began: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(http);

    server.signal("TERM");
    let answer = read_to_close(&mut half).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let answer = read_to_close(&mut idle).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // The call in flight is answered, and told the connection closes.
    busy.write_all(rest.as_bytes()).await.unwrap();
    let answer = String::from_utf8(read_to_close(&mut busy).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"decision\""), "{answer}");
    // Far less than the shutdown timeout: nothing holds the process.
    assert_eq!(server.exit_within(Duration::from_secs(60)).await, Some(0));
}
