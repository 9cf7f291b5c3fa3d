#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a profiling driver that cannot set up has nothing to measure"
)]
//! A small driver for `valgrind --tool=callgrind`: `eval::decide` on the example policies
//! (the photo archive in `policies/`), over the request set of `cargo bench --bench decide --
//! decide/examples` (every user × every photo and album, actions and MFA varied).
//!
//! ```sh
//! cargo build --release --example profile_decide
//! valgrind --tool=callgrind --callgrind-out-file=cg.decide.2 target/release/examples/profile_decide decide 2
//! valgrind --tool=callgrind --callgrind-out-file=cg.decide.6 target/release/examples/profile_decide decide 6
//! ```
//!
//! Arguments: `decide` (decoded requests decided) or `bytes` (JSON bytes decoded with
//! `decode_bytes`, then decided), and how many times the whole set is run. The instructions
//! of one decision are the difference of two totals divided by the difference in decisions
//! (loading the policies cancels out); the driver prints the set's size.

use std::path::Path;

use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, request};

// The server's allocator, as in src/main.rs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("decide", String::as_str).to_string();
    let rounds: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
    let engine = Engine::load(Path::new("policies")).expect("the examples load");
    let store = &engine.program.store;
    let users: Vec<String> = store
        .entities()
        .filter(|(_, e)| e.uid.ty.as_ref() == "User")
        .map(|(_, e)| e.uid.id.to_string())
        .collect();
    let resources: Vec<(String, String)> = store
        .entities()
        .filter(|(_, e)| e.attributes.is_some() && matches!(e.uid.ty.as_ref(), "Photo" | "Album"))
        .map(|(_, e)| (e.uid.ty.to_string(), e.uid.id.to_string()))
        .collect();
    let mut bodies = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for (j, (ty, id)) in resources.iter().enumerate() {
            let action = if ty == "Photo" {
                ["view", "comment", "delete"][(i + j) % 3]
            } else {
                ["list", "upload", "delete"][(i + j) % 3]
            };
            bodies.push(json!({
                "subject": {"type": "User", "id": user, "properties": {"mfa": (i + j) % 2 == 0}},
                "action": {"name": action},
                "resource": {"type": ty, "id": id},
            }));
        }
    }
    let now = jiff::Timestamp::now();
    let mut allowed = 0usize;
    match what.as_str() {
        "bytes" => {
            let bytes: Vec<Vec<u8>> = bodies.iter().map(|b| b.to_string().into_bytes()).collect();
            for _ in 0..rounds {
                for body in &bytes {
                    let request = request::decode_bytes(&engine.program, body, now).unwrap();
                    allowed += usize::from(eval::decide(&engine.program, &request).allowed);
                }
            }
        }
        _ => {
            let requests: Vec<_> = bodies
                .iter()
                .map(|body| request::decode_body(&engine.program, body, now).unwrap())
                .collect();
            for _ in 0..rounds {
                for request in &requests {
                    allowed += usize::from(eval::decide(&engine.program, request).allowed);
                }
            }
        }
    }
    println!("{} requests × {rounds}: {allowed} allowed", bodies.len());
}
