//! Loading grows linearly with what is loaded: long role chains, deep hierarchies, data files
//! with a mistake on every entity. Measured in bytes held and problems reported, never in
//! time (the figures are in BENCHMARKS.md, from benches/load_shapes.sh).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;
use warden::engine::{self, Engine, MAX_DIAGNOSTICS};
use warden::eval::{self, request};

use crate::alloc::{allocations_in, peak_bytes_in};

const SCHEMA: &str = "entity Group in Group\nentity User in Group { roles: Set<String> }\n\
                      entity Doc\naction read, write on Doc\n";

fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn decide(engine: &Engine, subject: &str, action: &str) -> bool {
    let body = json!({
        "subject": { "type": "User", "id": subject },
        "action": { "name": action },
        "resource": { "type": "Doc", "id": "d" },
    });
    let req = request::read(
        &engine.program,
        body.to_string().as_bytes(),
        jiff::Timestamp::now(),
    )
    .unwrap();
    eval::decide(&engine.program, &req).allowed
}

const MIB: u64 = 1024 * 1024;

/// `role r{i} : r{i-1}`, each granting `read` when a clearance is met; alice holds the last.
fn role_chain(length: usize) -> tempfile::TempDir {
    let mut policy = SCHEMA.to_string();
    policy.push_str("role r0 {\n  allow read\n}\n");
    for i in 1..length {
        writeln!(
            policy,
            "role r{i} : r{} {{\n  allow write if {i} < 0\n}}",
            i - 1
        )
        .unwrap();
    }
    let last = length - 1;
    let data = json!({ "entities": [
        { "type": "User", "id": "alice", "attributes": { "roles": [format!("r{last}")] } },
        { "type": "User", "id": "bob", "attributes": { "roles": ["r1"] } },
        { "type": "Doc", "id": "d" },
    ]});
    write_dir(&[
        ("roles.warden", &policy),
        ("data/users.json", &data.to_string()),
    ])
}

#[test]
fn a_long_role_chain_loads_in_memory_linear_in_its_length() {
    // Flattening every role's inheritance held a set per role as long as the chain before it:
    // 3,000 roles took 170 MiB that way.
    let dir = role_chain(3_000);
    let (engine, peak) = peak_bytes_in(|| Engine::load(dir.path()).unwrap());
    assert!(peak < 48 * MIB, "loading held {} MiB", peak / MIB);
    // The top of the chain inherits the bottom's grant, across more roles than are flattened.
    assert!(decide(&engine, "alice", "read"));
    assert!(decide(&engine, "bob", "read"));
    assert!(!decide(&engine, "alice", "write"));
}

#[test]
fn a_deep_group_hierarchy_loads_in_memory_linear_in_its_depth() {
    // Every group's ancestor set held every group above it: 6,000 deep was 70 MiB of them.
    let depth = 6_000;
    let mut entities = Vec::new();
    for i in 0..depth {
        let mut group = json!({ "type": "Group", "id": format!("g{i}") });
        if i > 0 {
            group["parents"] = json!([format!("g{}", i - 1)]);
        }
        entities.push(group);
    }
    entities.push(
        json!({ "type": "User", "id": "alice", "attributes": { "roles": [] },
                          "parents": [format!("g{}", depth - 1)] }),
    );
    entities.push(
        json!({ "type": "User", "id": "bob", "attributes": { "roles": [] },
                          "parents": ["g3"] }),
    );
    entities.push(json!({ "type": "Doc", "id": "d" }));
    let policy = format!(
        "{SCHEMA}allow read if subject in Group::\"g0\"\n\
         allow write if subject in Group::\"g{}\"\n",
        depth / 2
    );
    let dir = write_dir(&[
        ("policy.warden", &policy),
        (
            "data/groups.json",
            &json!({ "entities": entities }).to_string(),
        ),
    ]);
    let (engine, peak) = peak_bytes_in(|| Engine::load(dir.path()).unwrap());
    assert!(peak < 48 * MIB, "loading held {} MiB", peak / MIB);
    assert!(decide(&engine, "alice", "read"));
    assert!(decide(&engine, "alice", "write"));
    assert!(decide(&engine, "bob", "read"));
    assert!(!decide(&engine, "bob", "write"));
}

/// A data file of `count` users that each name an undeclared role.
fn bad_roles(count: usize) -> tempfile::TempDir {
    let entities: Vec<_> = (0..count)
        .map(|i| json!({ "type": "User", "id": format!("u{i}"), "attributes": { "roles": ["editr"] } }))
        .collect();
    let policy = format!("{SCHEMA}role editor {{\n  allow write\n}}\n");
    write_dir(&[
        ("policy.warden", &policy),
        (
            "data/users.json",
            &json!({ "entities": entities }).to_string(),
        ),
    ])
}

#[test]
fn ten_thousand_bad_entities_give_the_first_problems_and_a_count() {
    let dir = bad_roles(10_000);
    let loaded = engine::load_directory(dir.path()).unwrap();
    assert!(loaded.has_errors());
    assert_eq!(loaded.diagnostics.len(), MAX_DIAGNOSTICS + 1);
    assert_eq!(loaded.counts(), (10_000, 0));
    let first = &loaded.diagnostics[0];
    assert_eq!(first.message(), "undeclared role `editr`");
    let last = loaded.diagnostics.last().unwrap();
    assert!(last.is_error());
    assert_eq!(
        last.message(),
        format!(
            "{} more errors and 0 more warnings not shown",
            10_000 - MAX_DIAGNOSTICS
        )
    );
    assert!(Engine::from_loaded(loaded).is_err());
}

#[test]
fn warden_check_counts_every_problem_but_shows_the_first() {
    let dir = bad_roles(1_000);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "-p"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.matches("undeclared role `editr`").count(),
        MAX_DIAGNOSTICS,
        "{stderr}"
    );
    assert!(stderr.contains("900 more errors and 0 more warnings not shown"));
    assert!(
        stderr.contains("failed: 1 file and 1 data file checked, 1000 errors"),
        "{stderr}"
    );
}

#[test]
fn the_bundled_policies_load_as_before() {
    // The flattening bounds change how roles and ancestors are stored, not what they mean.
    let engine = Engine::load(Path::new("policies")).unwrap();
    assert!(engine.warnings.is_empty());
}

#[test]
fn grants_inside_a_role_are_indexed_like_rules_and_many_bindings_are_looked_up() {
    // A hundred grants of one role, each on one document: a request for a document is
    // offered that document's grant, not all hundred of the role.
    let mut policy = format!("{SCHEMA}role editor {{\n");
    for k in 0..100 {
        writeln!(
            policy,
            "  allow read if resource == Doc::\"d{k}\" and {k} >= 0"
        )
        .unwrap();
    }
    policy.push_str("}\nrole reviewer {\n  allow write if resource == Doc::\"d3\"\n}\n");
    let mut entities = vec![
        json!({ "type": "User", "id": "alice", "attributes": { "roles": ["editor"] } }),
        json!({ "type": "User", "id": "bob", "attributes": { "roles": [] } }),
    ];
    for k in 0..100 {
        entities.push(json!({ "type": "Doc", "id": format!("d{k}") }));
    }
    // More bindings than are tested one by one: bob reviews d0 to d19 (d3 among them).
    let roles: Vec<_> = (0..20)
        .map(|k| {
            json!({ "role": "reviewer", "subject": { "type": "User", "id": "bob" },
                          "on": { "type": "Doc", "id": format!("d{k}") } })
        })
        .collect();
    let dir = write_dir(&[
        ("policy.warden", &policy),
        (
            "data/store.json",
            &json!({ "entities": entities, "roles": roles }).to_string(),
        ),
    ]);
    let engine = Engine::load(dir.path()).unwrap();
    let program = &engine.program;
    let index = &program.index;
    let bucket = index
        .bucket(index.type_slot("Doc"), index.action_slot("read"))
        .unwrap();
    let grants = &bucket.by_role[&program.role_ids["editor"]];
    assert!(grants.plain.is_empty());
    assert_eq!(grants.resource_is.len(), 100);

    let decide_on = |subject: &str, action: &str, doc: &str| {
        let body = json!({
            "subject": { "type": "User", "id": subject },
            "action": { "name": action },
            "resource": { "type": "Doc", "id": doc },
        });
        let req =
            request::read(program, body.to_string().as_bytes(), jiff::Timestamp::now()).unwrap();
        eval::decide(program, &req).allowed
    };
    assert!(decide_on("alice", "read", "d42"));
    assert!(!decide_on("bob", "read", "d42"));
    assert!(decide_on("bob", "write", "d3"));
    assert!(!decide_on("alice", "write", "d3"));
}

/// A data file of `count` users in 100 groups, each with two attributes and an empty set,
/// written one entity a line as `benches/gen_shapes.py entities` writes them.
fn many_users(count: usize) -> tempfile::TempDir {
    let mut text = String::from("{\"entities\": [\n");
    for g in 0..100 {
        writeln!(text, "{{\"type\":\"Group\",\"id\":\"g{g}\"}},").unwrap();
    }
    for i in 0..count {
        writeln!(
            text,
            "{{\"type\":\"User\",\"id\":\"u{i}\",\"attributes\":{{\"department\":\"d{}\",\
             \"clearance\":3,\"roles\":[]}},\"parents\":[\"g{}\"]}},",
            i % 10,
            i % 100
        )
        .unwrap();
    }
    text.push_str("{\"type\":\"Doc\",\"id\":\"d\"}\n]}\n");
    let policy = "entity Group in Group\n\
                  entity User in Group { department: String, clearance: Int, roles: Set<String> }\n\
                  entity Doc\naction read on Doc\n\
                  allow read if subject in Group::\"g1\"\n";
    write_dir(&[("policy.warden", policy), ("data/users.json", &text)])
}

#[test]
fn many_entities_load_in_bounded_bytes_each() {
    // What a million users cost is what one costs, a million times: the bytes held at the
    // peak of loading, the file's own text included, per user.
    const LIMIT_PER_ENTITY: u64 = 470;
    let count = 50_000;
    let dir = many_users(count);
    let file_bytes = std::fs::metadata(dir.path().join("data/users.json"))
        .unwrap()
        .len();
    let (engine, peak) = peak_bytes_in(|| Engine::load(dir.path()).unwrap());
    let per_entity = peak / count as u64;
    let text_per_entity = file_bytes / count as u64;
    assert!(
        per_entity < LIMIT_PER_ENTITY,
        "loading held {per_entity} bytes per user at its peak ({text_per_entity} of them text)"
    );
    assert!(decide(&engine, "u1", "read"));
    assert!(decide(&engine, "u101", "read"));
    assert!(!decide(&engine, "u2", "read"));
}

#[test]
fn a_rule_of_several_conjuncts_is_decided_without_walking_its_own_and_nodes() {
    // Among thousands of per-album grants, the `and` nodes joining a rule's conjuncts are the
    // rule's own (its conjuncts are shared), and reading them cost a cache miss each: deciding
    // grew with the number of rules. The rule is decided from its conjuncts; the explanation
    // and the outcome stay what evaluating the whole condition gives.
    let policy = format!(
        "{SCHEMA}allow read if resource == Doc::\"d\" and subject in Group::\"g\" and subject.roles contains \"x\"\n\
         allow write if resource == Doc::\"d\" and subject in Group::\"g\" and subject.roles contains \"y\"\n"
    );
    let dir = write_dir(&[
        ("policy.warden", &policy),
        (
            "data/store.json",
            &json!({ "entities": [
                { "type": "Group", "id": "g" },
                { "type": "User", "id": "alice", "attributes": { "roles": ["x"] }, "parents": ["g"] },
                { "type": "Doc", "id": "d" },
            ] })
            .to_string(),
        ),
    ]);
    let engine = Engine::load(dir.path()).unwrap();
    let program = &engine.program;
    for (action, allowed, outcome) in [("read", true, "held"), ("write", false, "false")] {
        let body = json!({
            "subject": { "type": "User", "id": "alice" },
            "action": { "name": action },
            "resource": { "type": "Doc", "id": "d" },
        });
        let req =
            request::read(program, body.to_string().as_bytes(), jiff::Timestamp::now()).unwrap();
        let mut frame = eval::Frame::new();
        let decision = eval::decide_in(program, &req, &mut frame);
        assert_eq!(decision.allowed, allowed, "{action}");
        let &[candidate] = frame.candidates() else {
            panic!("one candidate for {action}: {:?}", frame.candidates());
        };
        let rule = program.rule(candidate).unwrap();
        assert_eq!(rule.conjuncts.len(), 3);
        assert!(
            frame.result(rule.condition).is_none(),
            "the `and` joining the conjuncts of the {action} rule was evaluated"
        );
        let explained = eval::explain::explain(program, &frame, &decision);
        assert_eq!(explained.candidates.len(), 1);
        assert_eq!(explained.candidates[0].outcome, outcome, "{action}");
    }
}

/// `count` per-album grants as top-level rules, ten per album, written as
/// `benches/gen_shapes.py rules` writes them.
fn many_rules(count: usize) -> tempfile::TempDir {
    const LEVELS: [&str; 5] = ["viewer", "editor", "sharer", "deleter", "admin"];
    const ACTIONS: [&str; 5] = ["view", "edit", "share", "delete", "admin"];
    let mut policy = String::from(
        "entity User { department: String, clearance: Int, roles: Set<String> }\n\
         entity Album in Album\nentity Photo in Album\n\
         action view, edit, share, delete, admin on Photo\n\
         deny * if subject.clearance < 0\n",
    );
    for k in 0..count {
        let level = k % 5;
        writeln!(
            policy,
            "allow {} if resource in Album::\"a{}\" and subject.roles contains \"{}\" and subject.department == \"d{}\" and subject.clearance >= {}",
            ACTIONS[..=level].join(", "),
            k / 10,
            LEVELS[level],
            k % 10,
            k % 4
        )
        .unwrap();
    }
    let data = json!({ "entities": [
        { "type": "User", "id": "u1", "attributes": { "department": "d1", "clearance": 3, "roles": ["editor"] } },
        { "type": "Album", "id": "a0" },
        { "type": "Photo", "id": "p0", "parents": ["a0"] },
    ]});
    write_dir(&[
        ("policy.warden", &policy),
        ("data/entities.json", &data.to_string()),
    ])
}

#[test]
fn many_rules_compile_in_bounded_bytes_each() {
    // Compiling holds each node of the decision graph once: the table that finds an identical
    // node keeps node ids, not a second copy of every node beside its id.
    const LIMIT_PER_RULE: u64 = 1_020;
    let count = 10_000;
    let dir = many_rules(count);
    let loaded = engine::load_directory(dir.path()).unwrap();
    let (engine, peak) = peak_bytes_in(|| Engine::from_loaded(loaded).unwrap());
    let per_rule = peak / count as u64;
    assert!(
        per_rule < LIMIT_PER_RULE,
        "compiling held {per_rule} bytes per rule at its peak"
    );
    let body = json!({
        "subject": { "type": "User", "id": "u1" },
        "action": { "name": "edit" },
        "resource": { "type": "Photo", "id": "p0" },
    });
    let program = &engine.program;
    let req = request::read(program, body.to_string().as_bytes(), jiff::Timestamp::now()).unwrap();
    // Grant 1 (`editor`, department d1, clearance at least 1) on album a0.
    assert!(eval::decide(program, &req).allowed);
}

#[test]
fn many_rules_parse_check_and_compile_with_few_allocations_each() {
    // Allocations counted, not time: parsing classifies the file's keywords once (the split
    // into items and the expression-size limit share it), checking types each distinct rule
    // head once, and compiling holds each distinct rule head once rather than a set of owned
    // names and two slot lists per rule.
    const PARSE_LIMIT_PER_RULE: u64 = 36;
    const CHECK_LIMIT_PER_RULE: u64 = 3;
    const COMPILE_LIMIT_PER_RULE: u64 = 8;
    let count = 10_000;
    let dir = many_rules(count);
    let text = std::fs::read_to_string(dir.path().join("policy.warden")).unwrap();
    let source = warden::source::SourceFile::new("policy.warden", text);
    let ((parsed, diagnostics), parsing) = allocations_in(|| warden::syntax::parse(&source));
    assert!(diagnostics.is_empty());
    assert_eq!(parsed.ast.items.len(), count + 5);
    let mut files = vec![parsed];
    assert!(warden::check::qualify_names(&mut files).is_empty());
    let (checked, checking) = allocations_in(|| warden::check::check(&files));
    assert!(!checked.has_errors());
    let loaded = engine::load_directory(dir.path()).unwrap();
    let (engine, compiling) = allocations_in(|| Engine::from_loaded(loaded).unwrap());
    let per_rule = |total: u64| total / count as u64;
    let (parsing, checking, compiling) =
        (per_rule(parsing), per_rule(checking), per_rule(compiling));
    eprintln!(
        "allocations per rule: parsing {parsing}, checking {checking}, compiling {compiling}"
    );
    assert!(
        parsing <= PARSE_LIMIT_PER_RULE,
        "parsing made {parsing} allocations per rule"
    );
    assert!(
        checking <= CHECK_LIMIT_PER_RULE,
        "checking made {checking} allocations per rule"
    );
    assert!(
        compiling <= COMPILE_LIMIT_PER_RULE,
        "compiling made {compiling} allocations per rule"
    );
    assert!(!engine.program.rules.is_empty());
}
