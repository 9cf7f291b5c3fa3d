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
//! `request::read`, then decided), or `todo` (the same as `bytes` on the TinyTodo model of
//! `benches/peers`: its policy, a world of the same shape generated here, requests without
//! properties, as the peer harness sends them), and how many times the whole set is run. The instructions
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
    if what == "todo" {
        todo(rounds);
        return;
    }
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
                    let request = request::read(&engine.program, body, now).unwrap();
                    allowed += usize::from(eval::decide(&engine.program, &request).allowed);
                }
            }
        }
        _ => {
            let requests: Vec<_> = bodies
                .iter()
                .map(|body| {
                    request::read(&engine.program, body.to_string().as_bytes(), now).unwrap()
                })
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

/// The TinyTodo model of `benches/peers` (200 users in 40 nested teams and `interns`, 500
/// lists), its requests decoded from bytes and decided.
fn todo(rounds: usize) {
    let dir = std::env::temp_dir().join(format!("warden-profile-todo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        "benches/peers/models/tinytodo/warden/todo.warden",
        dir.join("todo.warden"),
    )
    .unwrap();
    let mut seed = 0x70D0_u64;
    let mut below = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as usize
    };
    let team = |t: usize| {
        if t == 40 {
            "interns".to_string()
        } else {
            format!("t{t}")
        }
    };
    let mut entities = vec![json!({"type": "Application", "id": "TinyTodo"})];
    for t in 0..=40 {
        let parents: Vec<String> = if t == 0 || t == 40 {
            vec![]
        } else {
            vec![team((t - 1) / 3)]
        };
        entities.push(json!({"type": "Team", "id": team(t), "parents": parents}));
    }
    for u in 0..200 {
        let mut parents = vec![team(below(40))];
        if below(100) < 40 {
            parents.push(team(below(40)));
        }
        if below(100) < 10 {
            parents.push(team(40));
        }
        parents.sort();
        parents.dedup();
        entities.push(json!({"type": "User", "id": format!("u{u}"), "parents": parents}));
    }
    let mut owners = Vec::new();
    for l in 0..500 {
        let owner = below(200);
        owners.push(owner);
        entities.push(
            json!({"type": "List", "id": format!("l{l}"), "attributes": {
            "owner": format!("u{owner}"), "readers": team(below(40)), "editors": team(below(40))}}),
        );
    }
    std::fs::write(
        dir.join("data.json"),
        json!({ "entities": entities }).to_string(),
    )
    .unwrap();
    let engine = Engine::load(&dir).expect("the TinyTodo model loads");
    let _ = std::fs::remove_dir_all(&dir);
    let actions = [
        "get_list",
        "update_list",
        "create_task",
        "update_task",
        "delete_task",
        "edit_share",
        "delete_list",
    ];
    let mut bodies = Vec::new();
    for _ in 0..400 {
        let body = if below(100) < 10 {
            let action = if below(2) == 0 {
                "create_list"
            } else {
                "get_lists"
            };
            json!({
                "subject": {"type": "User", "id": format!("u{}", below(200))},
                "action": {"name": action},
                "resource": {"type": "Application", "id": "TinyTodo"},
            })
        } else {
            let list = below(500);
            let user = if below(100) < 20 {
                owners[list]
            } else {
                below(200)
            };
            json!({
                "subject": {"type": "User", "id": format!("u{user}")},
                "action": {"name": actions[below(actions.len())]},
                "resource": {"type": "List", "id": format!("l{list}")},
            })
        };
        bodies.push(serde_json::to_vec(&body).unwrap());
    }
    let now: jiff::Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    let mut allowed = 0usize;
    for _ in 0..rounds {
        for body in &bodies {
            let request = request::read(&engine.program, body, now).unwrap();
            allowed += usize::from(eval::decide(&engine.program, &request).allowed);
        }
    }
    println!("{} requests × {rounds}: {allowed} allowed", bodies.len());
}
