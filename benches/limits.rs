#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot set up has nothing to measure"
)]
//! The overhead of a local limit on a decision: the same allowed requests decided alone, and
//! decided then counted against one rolling limit per subject (never reached, so every
//! iteration takes the whole path: evaluate the key, check and commit the GCRA state).
//!
//! Run: `cargo bench --bench limits`

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, Request, request};
use warden::limit::{self, LocalStore};

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
    let (limited_dir, limited) = program("limit views: 1000000000 view per 1s per subject");
    for (name, engine) in [("without", &plain), ("with_local_limit", &limited)] {
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
    group.finish();
    let _ = std::fs::remove_dir_all(plain_dir);
    let _ = std::fs::remove_dir_all(limited_dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
