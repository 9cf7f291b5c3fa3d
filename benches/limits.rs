#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot set up has nothing to measure"
)]
//! The overhead of a local limit on a decision: the same allowed requests decided alone, and
//! decided then counted against one rolling limit per subject (never reached, so every
//! iteration takes the whole path: read the key, check and commit the GCRA state); then the
//! same limit with a condition, whose key and condition the evaluator computes.
//!
//! With `WARDEN_BENCH_REDIS=redis://127.0.0.1:PORT` set, the same limit counted in Redis too,
//! awaited as the server's doors await it ([`Limiter::count`] on a two-worker runtime): one
//! decision at a time (a round trip each), then as many decisions/s as 1, 8 and 32 tasks at
//! once get through one replica's multiplexed connection (calls in flight share it as a
//! pipeline).
//!
//! The bench allocates with mimalloc, as the `warden` binary does, so that whatever a decision
//! allocates (a key that is not an entity or a string is rendered as text) costs what it costs
//! in the server.
//!
//! Run: `cargo bench --bench limits`

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, Request, request};
use warden::limit::{self, Limiter, LocalStore, OnFailure, RedisConfig, RedisStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: usize = 1_000;

fn program(limits: &str) -> (PathBuf, Engine) {
    let dir = std::env::temp_dir().join(format!(
        "warden-bench-limits-{}-{}",
        std::process::id(),
        limits.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy =
        format!("entity User\nentity Photo\naction view on Photo\nallow view on Photo\n{limits}\n");
    std::fs::write(dir.join("rules.warden"), policy).expect("write policy");
    let engine = Engine::load(&dir).expect("the policy loads");
    (dir, engine)
}

fn requests(engine: &Engine) -> Vec<Request> {
    let program = &engine.program;
    (0..USERS)
        .map(|u| {
            let body = json!({
                "subject": {"type": "User", "id": format!("u{u}")},
                "action": {"name": "view"},
                "resource": {"type": "Photo", "id": "p1"},
            });
            request::read(program, body.to_string().as_bytes(), jiff::Timestamp::now())
                .expect("decode")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("limit");
    let (plain_dir, plain) = program("");
    let (limited_dir, limited) = program("limit views: 1000000 view per 1s per subject");
    // The same limit with a condition: its key and condition go through the evaluator.
    let (conditional_dir, conditional) =
        program("limit views: 1000000 view per 1s per subject if subject is User");
    for (name, engine) in [
        ("without", &plain),
        ("with_local_limit", &limited),
        ("with_conditional_local_limit", &conditional),
    ] {
        let program = &engine.program;
        let requests = requests(engine);
        let store = LocalStore::new();
        let mut next = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % requests.len();
                let request = &requests[next];
                let allowed = eval::decide(program, request).allowed
                    && limit::consume(program, request, &store).is_ok();
                std::hint::black_box(allowed)
            })
        });
    }
    let redis = std::env::var("WARDEN_BENCH_REDIS").ok().map(|url| {
        Limiter::shared(
            RedisStore::connect(&RedisConfig {
                url,
                timeout: std::time::Duration::from_secs(1),
                on_failure: OnFailure::Closed,
            })
            .expect("a Redis URL"),
        )
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(store) = &redis {
        let program = &limited.program;
        let requests = requests(&limited);
        let mut next = 0usize;
        group.bench_function("with_redis_limit", |b| {
            b.iter(|| {
                next = (next + 1) % requests.len();
                let request = &requests[next];
                let allowed = runtime.block_on(decide_counted(program, request, store));
                std::hint::black_box(allowed)
            })
        });
    }
    group.finish();
    if let Some(store) = redis {
        throughput(&runtime, limited, store);
    }
    let _ = std::fs::remove_dir_all(plain_dir);
    let _ = std::fs::remove_dir_all(limited_dir);
    let _ = std::fs::remove_dir_all(conditional_dir);
}

/// Decides a request and, when allowed, awaits its count in the store: what a door does.
async fn decide_counted(
    program: &warden::program::Program,
    request: &Request,
    store: &Limiter,
) -> bool {
    if !eval::decide(program, request).allowed {
        return false;
    }
    match limit::checks(program, request) {
        Ok(checks) => store
            .count(program, &checks, request.now.as_nanosecond())
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// Limited decisions per second through Redis with `callers` tasks deciding at once.
fn throughput(runtime: &tokio::runtime::Runtime, engine: Engine, store: Limiter) {
    let shared = std::sync::Arc::new((engine, store));
    let requests = std::sync::Arc::new(requests(&shared.0));
    for callers in [1usize, 8, 32] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seconds = 3;
        let tasks: Vec<_> = (0..callers)
            .map(|caller| {
                let (shared, requests, stop) = (shared.clone(), requests.clone(), stop.clone());
                runtime.spawn(async move {
                    let (engine, store) = &*shared;
                    let mut done = 0usize;
                    let mut next = caller;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        next = (next + callers) % requests.len();
                        let allowed = decide_counted(&engine.program, &requests[next], store).await;
                        done += usize::from(allowed);
                    }
                    done
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_secs(seconds));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: usize = tasks
            .into_iter()
            .map(|task| runtime.block_on(task).expect("a caller"))
            .sum();
        println!(
            "limit/redis_throughput/{callers}_tasks: {} limited decisions/s",
            total / seconds as usize
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
