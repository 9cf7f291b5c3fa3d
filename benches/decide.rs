#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot set up has nothing to measure"
)]
//! Decision speed: the examples, generated per-album rule sets of 10 to 10,000 rules, rules
//! that test sets against sets, and the whole path from JSON bytes to decision. Programs are built outside the timed loop; each
//! iteration decides the next of thousands of distinct requests, never one request repeated.
//!
//! Run: `cargo bench --bench decide`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, Request, request};

const USERS: usize = 2_000;
const GROUPS: usize = 50;
const ALBUMS: usize = 2_000;
const PHOTOS: usize = 5_950;

/// A policy directory with `rules` per-album grants, all on (Photo, view), and a store of
/// 10,000 entities.
fn generated_dir(rules: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-bench-{}-{rules}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut policy = String::from(
        "entity Group\nentity User in [Group] { department: String }\nentity Album { owner: User }\n\
         entity Photo in [Album] { owner: User }\naction view, edit on Photo\n\
         @id(\"owner\") allow * on Photo if resource.owner == subject\n",
    );
    for i in 0..rules {
        // One album per rule: albums past the store are named only by their rule, as when
        // grants outlive their albums, so each request matches at most one per-album rule.
        let album = i;
        if i % 2 == 0 {
            let _ = writeln!(
                policy,
                "@id(\"g{i}\") allow view on Photo if resource in Album::\"a{album}\" and subject in Group::\"g{}\"",
                i % GROUPS
            );
        } else {
            let _ = writeln!(
                policy,
                "@id(\"g{i}\") allow view on Photo if resource in Album::\"a{album}\" and subject.department == \"d{}\"",
                i % 7
            );
        }
    }
    std::fs::write(dir.join("rules.warden"), policy).expect("write policy");

    let mut entities = Vec::new();
    for g in 0..GROUPS {
        entities.push(json!({"type": "Group", "id": format!("g{g}")}));
    }
    for u in 0..USERS {
        entities.push(json!({"type": "User", "id": format!("u{u}"),
            "attributes": {"department": format!("d{}", u % 7)},
            "parents": [{"type": "Group", "id": format!("g{}", u % GROUPS)}]}));
    }
    for a in 0..ALBUMS {
        entities.push(json!({"type": "Album", "id": format!("a{a}"), "attributes": {"owner": format!("u{}", a % USERS)}}));
    }
    for p in 0..PHOTOS {
        entities.push(json!({"type": "Photo", "id": format!("p{p}"),
            "attributes": {"owner": format!("u{}", (p * 7) % USERS)},
            "parents": [format!("a{}", p % ALBUMS)]}));
    }
    let data = json!({ "entities": entities });
    std::fs::write(dir.join("data.json"), data.to_string()).expect("write data");
    dir
}

/// Distinct requests: a deterministic walk over users and photos.
fn generated_requests(count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            json!({
                "subject": {"type": "User", "id": format!("u{}", (i * 31) % USERS)},
                "action": {"name": if i % 5 == 0 { "edit" } else { "view" }},
                "resource": {"type": "Photo", "id": format!("p{}", (i * 17) % PHOTOS)},
            })
        })
        .collect()
}

fn example_requests(engine: &Engine) -> Vec<serde_json::Value> {
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
    let mut requests = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for (j, (ty, id)) in resources.iter().enumerate() {
            let action = if ty == "Photo" {
                ["view", "comment", "delete"][(i + j) % 3]
            } else {
                ["list", "upload", "delete"][(i + j) % 3]
            };
            requests.push(json!({
                "subject": {"type": "User", "id": user, "properties": {"mfa": (i + j) % 2 == 0}},
                "action": {"name": action},
                "resource": {"type": ty, "id": id},
            }));
        }
    }
    requests
}

/// A policy whose rules test sets against sets (`contains all`, `contains any`, `is empty`),
/// 500 users holding one to five of 20 roles, 500 documents needing none to three.
fn set_tests_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-bench-{}-sets", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = "entity User { roles: Set<String> }\nentity Doc { needs: Set<String> }\n\
        action view, edit on Doc context { tags: Set<String> }\n\
        @id(\"all\") allow view on Doc if subject.roles contains all resource.needs\n\
        @id(\"any\") allow edit on Doc if not (context.tags is empty) \
        and subject.roles contains any resource.needs\n";
    std::fs::write(dir.join("sets.warden"), policy).expect("write policy");
    let role = |n: usize| format!("r{}", n % 20);
    let mut entities = Vec::new();
    for u in 0..500 {
        let roles: Vec<String> = (0..1 + u % 5).map(|k| role(u * 7 + k * 3)).collect();
        entities
            .push(json!({"type": "User", "id": format!("u{u}"), "attributes": {"roles": roles}}));
    }
    for d in 0..500 {
        let needs: Vec<String> = (0..d % 4).map(|k| role(d * 11 + k)).collect();
        entities
            .push(json!({"type": "Doc", "id": format!("d{d}"), "attributes": {"needs": needs}}));
    }
    let data = json!({ "entities": entities });
    std::fs::write(dir.join("data.json"), data.to_string()).expect("write data");
    dir
}

fn set_tests_requests(count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            let tags: Vec<String> = (0..i % 3).map(|k| format!("t{k}")).collect();
            json!({
                "subject": {"type": "User", "id": format!("u{}", (i * 31) % 500)},
                "action": {"name": if i % 2 == 0 { "edit" } else { "view" }},
                "resource": {"type": "Doc", "id": format!("d{}", (i * 17) % 500)},
                "context": {"tags": tags},
            })
        })
        .collect()
}

fn decode_all(engine: &Engine, bodies: &[serde_json::Value]) -> Vec<Request> {
    let now = jiff::Timestamp::now();
    bodies
        .iter()
        .filter_map(|body| request::read(&engine.program, body.to_string().as_bytes(), now).ok())
        .collect()
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");

    let examples = Engine::load(Path::new("policies")).expect("the examples load");
    let requests = decode_all(&examples, &example_requests(&examples));
    assert!(!requests.is_empty());
    let mut next = 0usize;
    group.bench_function("examples", |b| {
        b.iter(|| {
            next = (next + 1) % requests.len();
            eval::decide(&examples.program, &requests[next])
        })
    });

    for rules in [10usize, 100, 1_000, 10_000] {
        let dir = generated_dir(rules);
        let engine = Engine::load(&dir).expect("generated policies load");
        let requests = decode_all(&engine, &generated_requests(4_096));
        let mut next = 0usize;
        group.bench_with_input(
            BenchmarkId::new("per-album-rules", rules),
            &rules,
            |b, _| {
                b.iter(|| {
                    next = (next + 1) % requests.len();
                    eval::decide(&engine.program, &requests[next])
                })
            },
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    let dir = set_tests_dir();
    let sets = Engine::load(&dir).expect("the set-test policy loads");
    let requests = decode_all(&sets, &set_tests_requests(4_096));
    assert!(!requests.is_empty());
    let mut next = 0usize;
    group.bench_function("set-tests", |b| {
        b.iter(|| {
            next = (next + 1) % requests.len();
            eval::decide(&sets.program, &requests[next])
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    group.finish();

    // The server's path: JSON bytes → parsed → decoded → decided.
    let mut group = c.benchmark_group("json-to-decision");
    let bodies: Vec<Vec<u8>> = example_requests(&examples)
        .iter()
        .map(|b| b.to_string().into_bytes())
        .collect();
    let mut next = 0usize;
    group.bench_function("examples", |b| {
        b.iter(|| {
            next = (next + 1) % bodies.len();
            let body: serde_json::Value = serde_json::from_slice(&bodies[next]).expect("json");
            let request = request::read(
                &examples.program,
                body.to_string().as_bytes(),
                jiff::Timestamp::now(),
            )
            .expect("request");
            eval::decide(&examples.program, &request)
        })
    });
    let mut next = 0usize;
    group.bench_function("examples-from-bytes", |b| {
        b.iter(|| {
            next = (next + 1) % bodies.len();
            let request = request::read(&examples.program, &bodies[next], jiff::Timestamp::now())
                .expect("request");
            eval::decide(&examples.program, &request)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("load-and-compile");
    group.sample_size(10);
    let dir = generated_dir(10_000);
    group.bench_function("10000-rules", |b| {
        b.iter(|| Engine::load(&dir).expect("loads"))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
