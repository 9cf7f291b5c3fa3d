#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a measuring tool that cannot set up has nothing to measure"
)]
//! Decision time on the directories `benches/gen_shapes.py` writes (`rules`, `role-rules`,
//! `bindings`): loads each directory given, decides the same 4,096 distinct requests (100
//! users × the five actions × the albums' photos) many times, and prints the median and 99th
//! percentile of batches of them, per decision.
//!
//!     cargo run --release --example shapes_decide -- /tmp/warden-shapes/rules-1000 ...
//!
//! `SHAPES_ROUNDS` (default 200) sets how many times the requests are decided, the first tenth
//! as warm-up: fewer keep a run under callgrind short, where the instructions per decision are
//! the inclusive count of `warden::eval::decide` divided by 4,096 × the rounds.

use std::time::Instant;

use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, request};

fn main() {
    let rounds: usize = std::env::var("SHAPES_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
        .max(2);
    for dir in std::env::args().skip(1) {
        let engine = Engine::load(std::path::Path::new(&dir)).expect("the directory loads");
        let program = &engine.program;
        let photos = program
            .store
            .entities()
            .filter(|(_, e)| &*e.uid.ty == "Photo")
            .count()
            .max(1);
        let actions = ["view", "edit", "share", "delete", "admin"];
        let now = jiff::Timestamp::now();
        let requests: Vec<_> = (0..4096usize)
            .map(|i| {
                let body = json!({
                    "subject": { "type": "User", "id": format!("u{}", (i * 7) % 100) },
                    "action": { "name": actions[i % 5] },
                    "resource": { "type": "Photo", "id": format!("p{}", (i * 13) % photos) },
                });
                request::read(program, body.to_string().as_bytes(), now)
                    .expect("the request decodes")
            })
            .collect();
        let mut allowed = 0usize;
        let mut batches = Vec::new();
        for round in 0..rounds {
            let start = Instant::now();
            for req in &requests {
                allowed += usize::from(eval::decide(program, req).allowed);
            }
            if round >= rounds / 10 {
                batches.push(start.elapsed().as_secs_f64() * 1e6 / requests.len() as f64);
            }
        }
        batches.sort_by(f64::total_cmp);
        let p50 = batches[batches.len() / 2];
        let p99 = batches[batches.len() * 99 / 100];
        println!(
            "{dir}: p50 {p50:.3} µs, p99 {p99:.3} µs per decision ({} allowed of {})",
            allowed / rounds,
            requests.len()
        );
    }
}
