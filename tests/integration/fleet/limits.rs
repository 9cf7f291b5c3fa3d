//! Limits counted in Redis: three processes under concurrent load never let more than the
//! count through; a Redis killed mid-run fails closed or open as configured, and a restarted
//! one is used again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as JsonValue, json};
use warden::limit::OnFailure;

use super::{RedisProcess, redis_server_or_skip, shared_redis_or_skip, unique};
use crate::capability::processes::warden;
use crate::server::{
    EVALUATION, EVALUATIONS, Http, POLICY, PolicyDir, STORE, ServerProcess, TestServer, config,
    spawn_server,
};

/// The test policy with `limit NAME: COUNT read on Doc per day per subject` (rolling: one
/// comes back every 86400 / COUNT seconds, so none within a test's run).
fn limited(name: &str, count: u32) -> PolicyDir {
    let policy = format!("{POLICY}\nlimit {name}: {count} read on Doc per day per subject\n");
    PolicyDir::new(&[("docs.warden", &policy), ("data/store.json", STORE)])
}

/// bob reads d1 (the policy allows it): the decision and the answer's context.
async fn bob_reads(http: &Http) -> (bool, JsonValue) {
    let reply = http
        .post_json(
            EVALUATION,
            &json!({
                "subject": { "type": "User", "id": "bob" },
                "action": { "name": "read" },
                "resource": { "type": "Doc", "id": "d1" },
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    (json["decision"].as_bool().unwrap(), json["context"].clone())
}

fn reason(context: &JsonValue) -> String {
    context["reason_admin"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_sharing_redis_never_allow_more_than_the_limit() {
    let test = "three_processes_sharing_redis_never_allow_more_than_the_limit";
    let Some(url) = shared_redis_or_skip(test) else {
        return;
    };
    // A fresh limit name: the shared Redis keeps counts from earlier runs.
    let name = unique("reads");
    const COUNT: usize = 50;
    let dir = limited(&name, COUNT as u32);
    let replicas: Vec<ServerProcess> = (0..3)
        .map(|_| {
            let mut command = warden();
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--watch=false"])
                .args(["--log-format", "json", "--rate-limit-redis", &url])
                // Closed, and patient on a busy machine: every call reaches Redis, and one
                // that could not would be refused, never counted locally instead.
                .args(["--rate-limit-redis-failure", "closed"])
                .args(["--rate-limit-redis-timeout-ms", "10000"])
                .arg("--policies")
                .arg(dir.path());
            spawn_server(command)
        })
        .collect();
    // 240 calls, 24 at a time, spread round robin over the replicas.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..24 {
        let http = replicas[worker % 3].http.clone();
        let name = name.clone();
        tasks.spawn(async move {
            let mut allowed = 0;
            for _ in 0..10 {
                let (decision, context) = bob_reads(&http).await;
                if decision {
                    allowed += 1;
                } else {
                    let reason = reason(&context);
                    assert!(
                        reason.contains(&format!("rate limit `{name}` reached")),
                        "{context}"
                    );
                }
            }
            allowed
        });
    }
    let mut allowed = 0;
    while let Some(counted) = tasks.join_next().await {
        allowed += counted.unwrap();
    }
    // The script checks and stores in one atomic step, so the bound on overshoot is zero.
    assert_eq!(allowed, COUNT, "allowed across the fleet");
    for replica in &replicas {
        let status = replica.http.get("/v1/status").await.json();
        let limits = &status["rate_limits"];
        assert_eq!(limits["store"], "redis", "{status:#}");
        assert_eq!(limits["errors"], 0, "{limits:#}");
        assert_eq!(limits["timeouts"], 0, "{limits:#}");
        assert!(limits["calls"].as_u64() >= Some(50), "{limits:#}");
    }
}

fn redis_config(dir: &PolicyDir, url: &str, on_failure: OnFailure) -> warden::server::Config {
    let mut config = config(&dir.path());
    config.watch = false;
    config.rate_limit_redis = Some(warden::limit::RedisConfig {
        url: url.to_string(),
        // Long enough for a busy machine; a Redis that is down refuses at once anyway.
        timeout: Duration::from_millis(1000),
        on_failure,
    });
    config
}

/// A Redis of the test's own (`redis-server`'s path, its directory, the process); `None`,
/// after printing SKIPPED, when it is not installed outside CI.
fn own_redis(test: &str) -> Option<(String, tempfile::TempDir, RedisProcess)> {
    let binary = redis_server_or_skip(test)?;
    let scratch = tempfile::tempdir().unwrap();
    let redis = RedisProcess::start(&binary, scratch.path());
    Some((binary, scratch, redis))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fails_closed_or_open_as_configured_and_a_restart_is_picked_up() {
    let test = "redis_killed_fails_closed_or_open_as_configured_and_a_restart_is_picked_up";
    let Some((_, _scratch, redis)) = own_redis(test) else {
        return;
    };
    let dir = limited("reads", 3);
    let closed = TestServer::start(redis_config(&dir, &redis.url(), OnFailure::Closed)).await;
    let open = TestServer::start(redis_config(&dir, &redis.url(), OnFailure::Open)).await;

    // Shared: three in all, whichever replica counts them.
    assert!(bob_reads(&closed.http).await.0);
    assert!(bob_reads(&open.http).await.0);
    assert!(bob_reads(&closed.http).await.0);
    for server in [&closed, &open] {
        let (decision, context) = bob_reads(&server.http).await;
        assert!(!decision);
        assert!(
            reason(&context).contains("rate limit `reads` reached"),
            "{context}"
        );
    }

    let (binary, data, port) = redis.kill();
    // Closed: refused, saying why; never a hung request.
    let started = Instant::now();
    let (decision, context) = bob_reads(&closed.http).await;
    assert!(!decision);
    assert!(
        reason(&context).contains("shared limit store is unavailable"),
        "{context}"
    );
    eprintln!("closed, Redis down: refused after {:?}", started.elapsed());
    let status = closed.status().await;
    let limits = &status["rate_limits"];
    assert_eq!(limits["up"], false, "{limits:#}");
    assert!(limits["denied"].as_u64() >= Some(1), "{limits:#}");
    assert!(limits["last_error"]["message"].is_string(), "{limits:#}");
    // Open: counted in the process instead, which enforces the limit on its own.
    for _ in 0..3 {
        let (decision, context) = bob_reads(&open.http).await;
        assert!(decision, "{context}");
    }
    let (decision, context) = bob_reads(&open.http).await;
    assert!(!decision);
    assert!(
        reason(&context).contains("rate limit `reads` reached"),
        "{context}"
    );
    let metrics = open.http.get("/metrics").await.body;
    assert!(
        metrics.contains("warden_rate_limit_redis_up 0"),
        "{metrics}"
    );
    let fallbacks = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("warden_rate_limit_redis_failed_decisions_total{outcome=\"local\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok());
    assert!(fallbacks >= Some(4), "{metrics}");

    // Restarted (empty): both replicas use it again, and count there.
    let _redis = RedisProcess::start_on(&binary, &data, port).expect("redis-server restarts");
    let restarted = Instant::now();
    loop {
        if bob_reads(&closed.http).await.0 {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(20),
            "Redis not used again 20 s after its restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "Redis restarted: used again after {:?}",
        restarted.elapsed()
    );
    let status = closed.status().await;
    assert_eq!(status["rate_limits"]["up"], true, "{status:#}");
    // The open replica counts in Redis again too: the two share the three calls.
    let mut allowed = 1;
    for server in [&open, &closed, &open, &closed] {
        allowed += usize::from(bob_reads(&server.http).await.0);
    }
    assert_eq!(allowed, 3);
    closed.running.shutdown().await;
    open.running.shutdown().await;
}

/// A batch counted in Redis counts its items in order, each before the next is decided, and
/// an item the batch never reaches (it stopped at a deny) is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_counted_in_redis_counts_in_order_and_not_past_its_stop() {
    let test = "a_batch_counted_in_redis_counts_in_order_and_not_past_its_stop";
    let Some((_, _scratch, redis)) = own_redis(test) else {
        return;
    };
    let dir = limited("reads", 3);
    let server = TestServer::start(redis_config(&dir, &redis.url(), OnFailure::Closed)).await;
    let item = |action: &str, doc: &str| json!({"action": {"name": action}, "resource": {"type": "Doc", "id": doc}});
    let batch = |items: Vec<JsonValue>, semantic: &str| {
        json!({
            "subject": {"type": "User", "id": "bob"},
            "action": {"name": "read"},
            "evaluations": items,
            "options": {"evaluations_semantic": semantic},
        })
    };
    let decisions = |reply: crate::server::Reply| -> Vec<bool> {
        reply.json()["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    // The policy denies the second item: the batch stops there, and the third is not counted.
    let stopped = batch(
        vec![item("read", "d1"), item("write", "d2"), item("read", "d1")],
        "deny_on_first_deny",
    );
    let reply = server.http.post_json(EVALUATIONS, &stopped).await;
    assert_eq!(decisions(reply), [true, false]);
    // Two of three left: the limit refuses the fourth of these, in order; the malformed second
    // (read after the first waited for Redis) is an error item and counts nothing.
    let malformed = json!({"resource": {"type": "Doc", "id": "d1"}, "context": {"capability": 7}});
    let items = vec![
        item("read", "d1"),
        malformed,
        item("read", "d1"),
        item("read", "d1"),
    ];
    let reply = server
        .http
        .post_json(EVALUATIONS, &batch(items, "execute_all"))
        .await;
    let answer = reply.json();
    assert_eq!(answer["evaluations"][1]["context"]["error"]["status"], 400);
    assert_eq!(decisions(reply), [true, false, true, false]);
    let status = server.status().await;
    assert_eq!(status["rate_limits"]["errors"], 0, "{status:#}");
    assert_eq!(status["rate_limits"]["calls"], 4, "{status:#}");
    server.running.shutdown().await;
}

/// A Redis that answers a connection's set-up (`+OK` to anything) but never a script: every
/// limit call hangs. Counts the scripts it was sent.
async fn silent_redis() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let scripts = Arc::new(AtomicUsize::new(0));
    let counted = scripts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(silent_connection(stream, counted.clone()));
        }
    });
    (port, scripts)
}

async fn silent_connection(mut stream: tokio::net::TcpStream, scripts: Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    // Once a script came, nothing more is answered: a later answer would be taken for it.
    let mut silent = false;
    loop {
        let Ok(read) = stream.read(&mut chunk).await else {
            return;
        };
        if read == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        while let Some((name, used)) = command(&buffer) {
            buffer.drain(..used);
            if name.eq_ignore_ascii_case(b"evalsha") || name.eq_ignore_ascii_case(b"eval") {
                silent = true;
                scripts.fetch_add(1, Ordering::SeqCst);
            } else if !silent && stream.write_all(b"+OK\r\n").await.is_err() {
                return;
            }
        }
    }
}

/// The name of the first whole command in `buffer` (a RESP array of bulk strings), and the
/// bytes it takes.
fn command(buffer: &[u8]) -> Option<(Vec<u8>, usize)> {
    fn line(buffer: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = at + buffer.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let number = std::str::from_utf8(buffer.get(at + 1..end)?)
            .ok()?
            .parse()
            .ok()?;
        Some((number, end + 2))
    }
    let (count, mut at) = line(buffer, 0)?;
    let mut name = None;
    for _ in 0..count {
        let (length, start) = line(buffer, at)?;
        let arg = buffer.get(start..start + length)?;
        name.get_or_insert_with(|| arg.to_vec());
        at = start + length + 2;
        if buffer.len() < at {
            return None;
        }
    }
    Some((name?, at))
}

/// Threads of process `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// Calls waiting for Redis wait in their own tasks: many at once hold no thread each, and
/// each is cut by the timeout, answered as configured (here: closed), and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_on_redis_hold_no_thread_and_end_at_the_timeout() {
    let test = "calls_waiting_on_redis_hold_no_thread_and_end_at_the_timeout";
    if !std::path::Path::new("/proc/self/task").is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} counts threads in /proc"
        );
        eprintln!("SKIPPED {test}: no /proc");
        return;
    }
    const CALLS: usize = 32;
    let (port, scripts) = silent_redis().await;
    let dir = limited("reads", 1000);
    let mut command = warden();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--watch=false"])
        .args(["--log-format", "json"])
        .args(["--rate-limit-redis", &format!("redis://127.0.0.1:{port}")])
        .args(["--rate-limit-redis-failure", "closed"])
        // Long enough that every call is still waiting when the threads are counted.
        .args(["--rate-limit-redis-timeout-ms", "5000"])
        .arg("--policies")
        .arg(dir.path());
    let server = spawn_server(command);
    let pid = server.child.id();
    let before = threads(pid);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let http = server.http.clone();
            tokio::spawn(async move { bob_reads(&http).await })
        })
        .collect();
    crate::support::poll(
        "every call's script to reach Redis",
        Duration::from_secs(60),
        Duration::from_millis(20),
        async || match scripts.load(Ordering::SeqCst) {
            CALLS.. => Ok(()),
            seen => Err(seen),
        },
    )
    .await;
    let during = threads(pid);
    // A call that blocked a thread while it waited would take one each.
    assert!(
        during <= before + 4,
        "{during} threads with {CALLS} calls waiting, {before} before"
    );
    for call in calls {
        let (decision, context) = call.await.unwrap();
        assert!(!decision);
        assert!(
            reason(&context).contains("shared limit store is unavailable")
                && reason(&context).contains("no answer from Redis within 5000 ms"),
            "{context}"
        );
    }
    let limits = server.http.get("/v1/status").await.json()["rate_limits"].clone();
    assert_eq!(limits["timeouts"], CALLS, "{limits:#}");
    assert_eq!(limits["denied"], CALLS, "{limits:#}");
    assert_eq!(limits["up"], false, "{limits:#}");
}

/// A batch whose items each wait on a Redis that never answers is not held past the request
/// time limit: it is answered 408 (no decision, so nothing is allowed), with the Redis time
/// limit set far beyond it so that only the request's own limit can end the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_on_a_silent_redis_ends_at_the_request_time_limit() {
    let (port, scripts) = silent_redis().await;
    let dir = limited("reads", 1000);
    let mut config = redis_config(&dir, &format!("redis://127.0.0.1:{port}"), OnFailure::Open);
    if let Some(redis) = &mut config.rate_limit_redis {
        redis.timeout = Duration::from_secs(60);
    }
    config.request_timeout = Duration::from_millis(1000);
    let server = TestServer::start(config).await;
    let item = json!({"resource": {"type": "Doc", "id": "d1"}});
    let batch = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [item.clone(), item.clone(), item],
    });
    let started = Instant::now();
    let reply = server.http.post_json(EVALUATIONS, &batch).await;
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert!(!reply.body.contains("decision"), "{}", reply.body);
    // Cut at the request's limit, not the Redis one's minute.
    assert!(started.elapsed() < Duration::from_secs(30));
    // Items are counted one after another: the later ones never reached Redis.
    let sent = scripts.load(Ordering::SeqCst);
    assert!(
        sent <= 1,
        "{sent} scripts sent for a batch waiting on its first item"
    );
    server.running.shutdown().await;
}

#[test]
fn the_configuration_keys_resolve_and_mask_the_password() {
    use warden::server::{Config, ConfigLayer};
    let layer = ConfigLayer {
        rate_limit_redis: Some("redis://warden:s3cret@redis.internal:6379/0".to_string()),
        rate_limit_redis_timeout_ms: Some(40),
        rate_limit_redis_failure: Some(OnFailure::Closed),
        revocations_redis: Some("redis://redis.internal:6379".to_string()),
        ..ConfigLayer::default()
    };
    let config = Config::resolve(layer.clone()).unwrap();
    let redis = config.rate_limit_redis.as_ref().unwrap();
    assert_eq!(redis.timeout, Duration::from_millis(40));
    assert_eq!(redis.on_failure, OnFailure::Closed);
    assert_eq!(
        config.capabilities.revocations_redis.as_deref(),
        Some("redis://redis.internal:6379")
    );
    let text = config.effective_toml();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(
        text.contains("rate_limit_redis = \"redis://warden:<masked>@redis.internal:6379/0\""),
        "{text}"
    );
    assert!(
        text.contains("rate_limit_redis_failure = \"closed\""),
        "{text}"
    );
    // Unset: open, 100 ms.
    let defaults = Config::resolve(ConfigLayer {
        rate_limit_redis: Some("redis://127.0.0.1:6379".to_string()),
        ..ConfigLayer::default()
    })
    .unwrap();
    let redis = defaults.rate_limit_redis.unwrap();
    assert_eq!(redis.on_failure, OnFailure::Open);
    assert_eq!(redis.timeout, Duration::from_millis(100));
    for (bad, key) in [
        (
            ConfigLayer {
                rate_limit_redis: Some("http://127.0.0.1:6379".to_string()),
                ..ConfigLayer::default()
            },
            "not a Redis URL",
        ),
        (
            ConfigLayer {
                rate_limit_redis: Some("redis://127.0.0.1:6379".to_string()),
                rate_limit_redis_timeout_ms: Some(0),
                ..ConfigLayer::default()
            },
            "rate_limit_redis_timeout_ms",
        ),
    ] {
        let error = Config::resolve(bad).unwrap_err().to_string();
        assert!(error.contains(key), "{error}");
    }
}

/// The same requests at the same times, counted in Redis and in the process, are decided
/// alike: both stores share the key, window and usage logic, and the script is the local
/// store's GCRA and calendar counter (periods here divide evenly into microseconds, Redis's
/// unit; nanoseconds, the local store's, would otherwise round apart by under a microsecond
/// per request).
mod same_semantics {
    use std::sync::OnceLock;
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;
    use warden::engine::Engine;
    use warden::eval::request;
    use warden::limit::{self, Limiter, LocalStore, OnFailure, RedisConfig, RedisStore};

    use super::super::{shared_redis_or_skip, unique};

    struct Fixture {
        _dir: tempfile::TempDir,
        engine: Engine,
        redis: Limiter,
    }

    /// Limits counted in the Redis at `url`, refusing when it fails.
    fn shared(url: String) -> Limiter {
        Limiter::shared(
            RedisStore::connect(&RedisConfig {
                url,
                timeout: Duration::from_secs(2),
                on_failure: OnFailure::Closed,
            })
            .unwrap(),
        )
    }

    fn fixture() -> Option<&'static Fixture> {
        static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
        FIXTURE
            .get_or_init(|| {
                let url = shared_redis_or_skip("same_semantics")?;
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(
                    dir.path().join("rules.warden"),
                    "entity User\nentity Photo\naction view on Photo\nallow view on Photo\n\
                     limit burst: 4 view per 10s per subject\n\
                     limit daily: 6 view per day in \"Europe/Paris\" per subject\n",
                )
                .unwrap();
                let engine = Engine::load(dir.path()).unwrap();
                let redis = shared(url);
                Some(Fixture {
                    _dir: dir,
                    engine,
                    redis,
                })
            })
            .as_ref()
    }

    /// When the count does not divide the period, the interval is rounded down to whole
    /// microseconds (1,500 a second: 666 µs); still exactly the count passes at once, in Redis
    /// as in the process, and both show the same figures and refusals.
    #[test]
    fn a_count_that_does_not_divide_its_period_passes_exactly_the_count_at_once_in_redis() {
        let Some(url) = shared_redis_or_skip("uneven_count") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.warden"),
            "entity User\nentity Photo\naction view on Photo\nallow view on Photo\n\
             limit uneven: 1500 view per 1s per subject\n",
        )
        .unwrap();
        let engine = Engine::load(dir.path()).unwrap();
        let program = &engine.program;
        let redis = shared(url);
        let body = json!({
            "subject": {"type": "User", "id": unique("uneven")},
            "action": {"name": "view"},
            "resource": {"type": "Photo", "id": "p1"},
        })
        .to_string();
        // Redis keeps microseconds: a time on one, so that both stores see the same instant.
        let now =
            jiff::Timestamp::from_microsecond(jiff::Timestamp::now().as_microsecond()).unwrap();
        let request = request::read(program, body.as_bytes(), now).unwrap();
        let local = LocalStore::new();
        // Each call's answer and `RateLimit` figures, or its refusal.
        let shown = |count: &dyn Fn() -> Result<limit::Usages, limit::Refusal>| {
            (0..1_505)
                .map(|_| match count() {
                    Ok(usages) => Ok(usages[0].figures(&program.limits[0])),
                    Err(refusal) => Err(refusal.to_string()),
                })
                .collect::<Vec<_>>()
        };
        let here = shown(&|| limit::consume(program, &request, &local));
        let there = shown(&|| limit::consume(program, &request, &redis));
        assert_eq!(here.iter().filter(|answer| answer.is_ok()).count(), 1_500);
        assert_eq!(here[1_499].as_ref().map(|figures| figures.remaining), Ok(0));
        assert_eq!(here, there);
    }

    /// A limit edited between kinds of period and between calendar units, and back (as
    /// reloads edit it, the counts kept), counts alike in Redis and in the process: each kind
    /// of period, and each calendar period, has its own count, and a calendar count ends with
    /// its period.
    #[test]
    fn edited_limits_count_alike_in_redis_and_in_the_process() {
        let Some(url) = shared_redis_or_skip("edited_limits") else {
            return;
        };
        let redis = shared(url);
        let load = |period: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("rules.warden"),
                format!(
                    "entity User\nentity Photo\naction view on Photo\nallow view on Photo\n\
                     limit edited: 2 view per {period} per subject\n"
                ),
            )
            .unwrap();
            let engine = Engine::load(dir.path()).unwrap();
            (dir, engine)
        };
        let (hourly, monthly, weekly, daily) = (
            load("hour"),
            load(r#"month in "UTC""#),
            load(r#"week in "UTC""#),
            load(r#"day in "UTC""#),
        );
        // Near now, so that Redis keeps its keys through the test: the Sunday and Monday of
        // this week (in UTC), at 10:00.
        let utc = jiff::tz::TimeZone::UTC;
        let today = utc.to_datetime(jiff::Timestamp::now()).date();
        let monday = today
            .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
            .unwrap();
        let at = |date: jiff::civil::Date| {
            utc.to_ambiguous_timestamp(date.at(10, 0, 0, 0))
                .compatible()
                .unwrap()
        };
        let (sunday, monday) = (
            at(monday.checked_add(jiff::Span::new().days(6)).unwrap()),
            at(monday),
        );
        let steps: [(&(tempfile::TempDir, Engine), jiff::Timestamp); 8] = [
            (&monthly, monday),
            (&hourly, monday),
            (&monthly, monday),
            (&weekly, monday),
            (&daily, monday),
            (&weekly, monday),
            (&daily, sunday),
            (&weekly, sunday),
        ];
        let local = LocalStore::new();
        let subject = unique("edited");
        for (step, ((_dir, engine), now)) in steps.iter().enumerate() {
            let program = &engine.program;
            let body = json!({
                "subject": {"type": "User", "id": subject},
                "action": {"name": "view"},
                "resource": {"type": "Photo", "id": "p1"},
            })
            .to_string();
            let request = request::read(program, body.as_bytes(), *now).unwrap();
            let answers =
                |counted: &dyn Fn() -> bool| (0..3).map(|_| counted()).collect::<Vec<_>>();
            assert_eq!(
                answers(&|| limit::consume(program, &request, &local).is_ok()),
                answers(&|| limit::consume(program, &request, &redis).is_ok()),
                "step {step}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn redis_decides_as_the_local_store(
            calls in proptest::collection::vec((0usize..3, 0u64..4_000), 1..24),
        ) {
            let Some(fixture) = fixture() else {
                return Ok(());
            };
            let program = &fixture.engine.program;
            let local = LocalStore::new();
            let case = unique("case");
            // Ten seconds before midnight in Paris: the daily window turns within a case.
            let mut now: jiff::Timestamp = "2026-03-01T22:59:50Z".parse().unwrap();
            for (subject, step) in calls {
                now += jiff::SignedDuration::from_millis(step as i64);
                let body = json!({
                    "subject": {"type": "User", "id": format!("{case}_u{subject}")},
                    "action": {"name": "view"},
                    "resource": {"type": "Photo", "id": "p1"},
                });
                let request = request::read(program, body.to_string().as_bytes(), now).unwrap();
                // What a door shows: the answer, the refusal, and the `RateLimit` figures (Redis
                // keeps microseconds, the process nanoseconds: the figures are in seconds).
                let shown = |counted: Result<limit::Usages, limit::Refusal>| {
                    counted.map(|usages| {
                        usages
                            .iter()
                            .map(|usage| (usage.limit, usage.figures(&program.limits[usage.limit])))
                            .collect::<Vec<_>>()
                    })
                };
                let here = shown(limit::consume(program, &request, &local));
                let shared = shown(limit::consume(program, &request, &fixture.redis));
                prop_assert_eq!(here, shared, "at {}", now);
            }
        }
    }
}
