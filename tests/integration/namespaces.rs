//! Namespaces: two teams' files each declare `User`, `Doc`, a `publish` action and an `editor`
//! role; data files and requests name them in full (`acme::User`, `acme::publish`,
//! `acme::editor`), policies by short name inside their namespace.

use std::path::Path;

use serde_json::{Value, json};
use warden::engine::Engine;
use warden::eval::request::{self, RequestError};

use super::decide::{Outcome, WORKDAY, at, decide_at, denied, held};

const DIR: &str = "tests/data/namespaces";

fn engine() -> Engine {
    match Engine::load(Path::new(DIR)) {
        Ok(engine) => engine,
        Err(failure) => panic!("{:#?}", failure.diagnostics),
    }
}

fn body(subject: (&str, &str), action: &str, resource: (&str, &str)) -> Value {
    json!({
        "subject": {"type": subject.0, "id": subject.1},
        "action": {"name": action},
        "resource": {"type": resource.0, "id": resource.1},
    })
}

#[test]
fn each_team_decides_on_its_own_types() {
    let engine = engine();
    let ask = |subject, action, resource| {
        decide_at(&engine, body(subject, action, resource), at(WORKDAY))
    };
    assert_eq!(
        ask(("acme::User", "alice"), "edit", ("acme::Doc", "plan")),
        held(&["acme-owner"])
    );
    assert_eq!(
        ask(("beta::User", "alice"), "view", ("beta::Doc", "plan")),
        held(&["beta-team"])
    );
    assert_eq!(
        ask(("beta::User", "alice"), "view", ("beta::Doc", "memo")),
        denied(&[])
    );
    // `approve` is declared `by User` in acme's file: `acme::approve`, for acme's users only.
    assert_eq!(
        ask(
            ("acme::User", "carol"),
            "acme::approve",
            ("acme::Doc", "plan")
        ),
        denied(&[])
    );
    assert_eq!(
        ask(
            ("acme::User", "bob"),
            "acme::approve",
            ("acme::Doc", "plan")
        ),
        held(&["approvers"])
    );
    // Same id, other namespace: another entity, owning nothing of acme's.
    assert_eq!(
        ask(("beta::User", "alice"), "view", ("acme::Doc", "plan")),
        denied(&[])
    );
    // The shared rule names both namespaces' types in full, and the shared `Group`.
    assert_eq!(
        ask(("acme::User", "carol"), "view", ("acme::Doc", "plan")),
        held(&["auditors"])
    );
    // Beta's rule reads `subject.team`, which acme's users do not have: an error, so the
    // rule does not apply.
    assert_eq!(
        ask(("acme::User", "carol"), "view", ("beta::Doc", "plan")),
        Outcome {
            allowed: false,
            reasons: vec![],
            errors: vec!["beta-team".to_string()],
        }
    );
}

/// Two namespaces' `publish` and `editor` are two actions and two roles, each decided by its
/// own namespace's rules, grants and `let`s.
#[test]
fn each_team_has_its_own_actions_roles_and_lets() {
    let engine = engine();
    let ask = |subject, action, resource| {
        decide_at(&engine, body(subject, action, resource), at(WORKDAY))
    };
    // acme's `publish` is beneath acme's `approve`.
    assert_eq!(
        ask(
            ("acme::User", "bob"),
            "acme::publish",
            ("acme::Doc", "plan")
        ),
        held(&["approvers"])
    );
    // The shared rule names acme's `publish` and acme's `auditor` in full.
    assert_eq!(
        ask(
            ("acme::User", "carol"),
            "acme::publish",
            ("acme::Doc", "plan")
        ),
        held(&["auditors-publish"])
    );
    // acme's `editor` is bound to dan, beta's to eve: each grants its own namespace's action.
    assert_eq!(
        ask(("acme::User", "dan"), "edit", ("acme::Doc", "plan")),
        held(&["acme-editors"])
    );
    assert_eq!(
        ask(
            ("beta::User", "eve"),
            "beta::publish",
            ("beta::Doc", "memo")
        ),
        held(&["beta-editors"])
    );
    assert_eq!(
        ask(
            ("beta::User", "alice"),
            "beta::publish",
            ("beta::Doc", "memo")
        ),
        denied(&[])
    );
    // Beta's `red` reads the context.
    let mut red = body(
        ("beta::User", "alice"),
        "beta::publish",
        ("beta::Doc", "plan"),
    );
    red["context"] = json!({"team": "red"});
    assert_eq!(
        decide_at(&engine, red, at(WORKDAY)),
        held(&["beta-publish"])
    );
}

/// On the wire a namespaced action is named in full; its short name is no action.
#[test]
fn a_short_action_name_on_the_wire_is_an_undeclared_action() {
    let engine = engine();
    let read =
        |value: Value| request::read(&engine.program, value.to_string().as_bytes(), at(WORKDAY));
    for short in ["publish", "approve"] {
        match read(body(("acme::User", "bob"), short, ("acme::Doc", "plan"))) {
            Err(RequestError::Invalid(message)) => {
                let message = message.to_string();
                assert!(
                    message.contains(&format!("undeclared action `{short}`")),
                    "{message}"
                );
            }
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }
}

#[test]
fn a_short_name_on_the_wire_is_an_undeclared_type() {
    let engine = engine();
    let read =
        |value: Value| request::read(&engine.program, value.to_string().as_bytes(), at(WORKDAY));
    match read(body(("User", "alice"), "view", ("acme::Doc", "plan"))) {
        Err(RequestError::Invalid(message)) => {
            let message = message.to_string();
            assert!(
                message.contains("undeclared entity type `User`"),
                "{message}"
            );
        }
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

#[test]
fn policy_tests_use_the_short_names_of_their_namespace() {
    let run = super::policy_tests::warden_test(Path::new(DIR), &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.last_line(), "2 passed, 0 failed");
}

#[test]
fn the_directory_checks_clean_and_is_formatted() {
    for args in [vec!["check", "-p", DIR], vec!["fmt", "--check", DIR]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `warden eval` names a namespaced action in full.
#[test]
fn eval_flags_take_qualified_actions() {
    let out = super::cli_eval::warden(
        &[
            "eval",
            "-p",
            DIR,
            "--subject",
            "beta::User::eve",
            "--action",
            "beta::publish",
            "--resource",
            "beta::Doc::memo",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "allow (by beta-editors)",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `warden eval` names entities of a namespace in full, quoted or not.
#[test]
fn eval_flags_take_qualified_types() {
    for (subject, resource) in [
        ("acme::User::\"alice\"", "acme::Doc::\"plan\""),
        ("acme::User::alice", "acme::Doc::plan"),
    ] {
        let out = super::cli_eval::warden(
            &[
                "eval",
                "-p",
                DIR,
                "--subject",
                subject,
                "--action",
                "edit",
                "--resource",
                resource,
            ],
            None,
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "allow (by acme-owner)",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
