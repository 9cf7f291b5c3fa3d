//! A fleet on loopback, on a real Redis: limits counted across three `warden serve` processes,
//! Redis killed and restarted under replicas that fail closed or open, revocations shared
//! through Redis; and the three-replica fleet of #25 behind a real nginx `upstream`, fed
//! signed bundles by a real nginx serving static files.
//!
//! `.ci/run` starts a Redis for the tests and exports `WARDEN_TEST_REDIS`; tests that kill
//! and restart Redis start their own `redis-server`. Without them, these tests fail under
//! `CI=true` and print SKIPPED otherwise.

mod bundles;
mod limits;
mod revocations;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared test Redis (`WARDEN_TEST_REDIS`); `None`, after printing SKIPPED, when it is
/// not set outside CI.
pub fn shared_redis_or_skip(test: &str) -> Option<String> {
    match std::env::var("WARDEN_TEST_REDIS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "WARDEN_TEST_REDIS is not set, and CI must run {test} (.ci/run starts a Redis)"
            );
            eprintln!("SKIPPED {test}: set WARDEN_TEST_REDIS=redis://127.0.0.1:PORT");
            None
        }
    }
}

/// `redis-server`'s path; `None`, after printing SKIPPED, when it is not installed outside CI.
pub fn redis_server_or_skip(test: &str) -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", "command -v redis-server"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|path| path.trim().to_string())
        .filter(|path| !path.is_empty());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed, and CI must run {test} (.ci/run installs it)"
        );
        eprintln!("SKIPPED {test}: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

/// A `redis-server` a test started: no persistence, loopback only; killed when dropped.
pub struct RedisProcess {
    child: Child,
    pub port: u16,
    binary: String,
    dir: PathBuf,
}

impl RedisProcess {
    /// Starts Redis on a free port (tried again on another if the port was taken meanwhile).
    pub fn start(binary: &str, dir: &Path) -> RedisProcess {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(redis) = RedisProcess::start_on(binary, dir, port) {
                return redis;
            }
        }
        panic!("redis-server did not start");
    }

    /// Starts Redis on `port`; `None` if it did not answer.
    pub fn start_on(binary: &str, dir: &Path, port: u16) -> Option<RedisProcess> {
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut redis = RedisProcess {
            child,
            port,
            binary: binary.to_string(),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis.ping() {
                return Some(redis);
            }
            if redis.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = redis.child.kill();
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
            .is_ok()
    }

    /// Kills Redis (SIGKILL: no goodbye to its clients) and waits until its port is closed.
    pub fn kill(mut self) -> (String, PathBuf, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        (self.binary.clone(), self.dir.clone(), self.port)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no earlier run used: limits and ids in a shared Redis outlive a test.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// The `p`-th percentile (0–100) of `durations`, nearest rank.
pub fn percentile(durations: &[Duration], p: usize) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}
