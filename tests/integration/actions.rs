//! Decisions on what an action declaration says beyond its resource types: the action
//! hierarchy (`action read in triage`) with `action in …` tests in conditions, and the subject
//! types an action accepts (`by User, Team`).

use serde_json::{Value, json};

use super::decide::{Outcome, WORKDAY, at, decide_at, denied, held, inline};

/// Cedar's GitHub levels: read ∈ triage ∈ write ∈ maintain ∈ admin, each one an action a
/// request may name, and a group above two of them.
const GITHUB: &str = r#"
entity User
entity Repo

action read in triage on Repo
action triage in write on Repo
action write in maintain on Repo
action maintain in admin on Repo
action admin on Repo
action "close-issue" in [triage, moderation] on Repo
action group moderation = [maintain]

@id("writers") allow write on Repo if subject == User::"writer"
@id("moderators") allow moderation on Repo if subject == User::"moderator"
@id("triage-test") allow * on Repo if subject == User::"triager" and action in triage
@id("exact") allow * on Repo if subject == User::"exact" and action == write
@id("not-read") allow * on Repo if subject == User::"unread" and action != read
@id("listed") allow * on Repo if subject == User::"listed" and action in [read, moderation]
"#;

fn ask(engine: &warden::engine::Engine, subject: &str, action: &str) -> Outcome {
    decide_at(engine, request(subject, action), at(WORKDAY))
}

fn request(subject: &str, action: &str) -> Value {
    json!({
        "subject": {"type": "User", "id": subject},
        "action": {"name": action},
        "resource": {"type": "Repo", "id": "warden"},
    })
}

#[test]
fn a_rule_naming_an_action_covers_every_action_beneath_it() {
    let engine = inline(GITHUB, None);
    for action in ["read", "triage", "write", "close-issue"] {
        assert_eq!(
            ask(&engine, "writer", action),
            held(&["writers"]),
            "{action}"
        );
    }
    for action in ["maintain", "admin"] {
        assert_eq!(ask(&engine, "writer", action), denied(&[]), "{action}");
    }
    // A group covers what its members cover: `maintain` and everything beneath it.
    for action in ["read", "triage", "write", "maintain", "close-issue"] {
        assert_eq!(
            ask(&engine, "moderator", action),
            held(&["moderators"]),
            "{action}"
        );
    }
    assert_eq!(ask(&engine, "moderator", "admin"), denied(&[]));
}

#[test]
fn conditions_test_the_requested_action_against_the_hierarchy() {
    let engine = inline(GITHUB, None);
    let allowed = |subject: &str, action: &str| ask(&engine, subject, action).allowed;
    // `action in triage`: triage and what is beneath it, through either parent.
    assert!(allowed("triager", "read"));
    assert!(allowed("triager", "triage"));
    assert!(allowed("triager", "close-issue"));
    assert!(!allowed("triager", "write"));
    // `action == write`: that action alone, not those beneath it.
    assert!(allowed("exact", "write"));
    assert!(!allowed("exact", "read"));
    assert!(!allowed("exact", "admin"));
    assert!(allowed("unread", "triage"));
    assert!(!allowed("unread", "read"));
    // A list: beneath any of its names.
    for action in ["read", "triage", "write", "maintain", "close-issue"] {
        assert!(allowed("listed", action), "{action}");
    }
    assert!(!allowed("listed", "admin"));
}

#[test]
fn an_action_test_in_a_policy_without_declarations_compares_names() {
    let engine = inline(
        "action group write = [edit, \"bulk-edit\"]\n\
         @id(\"w\") allow * if action in write\n\
         @id(\"v\") allow * if action == view\n",
        None,
    );
    let ask = |action: &str| {
        decide_at(
            &engine,
            json!({
                "subject": {"type": "User", "id": "u"},
                "action": {"name": action},
                "resource": {"type": "Doc", "id": "d"},
            }),
            at(WORKDAY),
        )
    };
    assert_eq!(ask("edit"), held(&["w"]));
    assert_eq!(ask("bulk-edit"), held(&["w"]));
    assert_eq!(ask("view"), held(&["v"]));
    assert_eq!(ask("write"), denied(&[]));
    assert_eq!(ask("other"), denied(&[]));
}

#[test]
fn a_false_action_test_is_explained() {
    use warden::eval;
    let engine = inline(GITHUB, None);
    let program = &engine.program;
    let body = request("triager", "write").to_string();
    let request = eval::request::read(program, body.as_bytes(), at(WORKDAY)).unwrap();
    let mut frame = eval::Frame::new();
    let decision = eval::decide_in(program, &request, &mut frame);
    assert!(!decision.allowed);
    let explained = eval::explain::explain(program, &frame, &decision);
    let candidate = explained
        .candidates
        .iter()
        .find(|c| c.rule.id == "triage-test")
        .unwrap();
    assert_eq!(candidate.outcome, "false");
    assert_eq!(candidate.condition.as_deref(), Some("action in triage"));
}

/// Which subject types may ask for an action (`by`): others are refused before any rule, with
/// the reason, as an undeclared action is.
const SUBJECTS: &str = r#"
entity Team
entity User in Team { joblevel: Int }
entity Repo

action read on Repo by User, Team
action delete on Repo by User
action audit on Repo

@id("read") allow read on Repo
@id("seniors") allow delete on Repo if subject.joblevel >= 7
@id("teams") allow * on Repo if subject is Team
"#;

#[test]
fn a_subject_of_a_type_the_action_does_not_accept_is_refused_with_the_reason() {
    use warden::eval::{RequestError, request::Invalid};
    let engine = inline(
        SUBJECTS,
        Some(json!({"entities": [
            {"type": "User", "id": "ana", "attributes": {"joblevel": 8}},
            {"type": "Team", "id": "core"},
        ]})),
    );
    let ask = |ty: &str, id: &str, action: &str| {
        json!({
            "subject": {"type": ty, "id": id},
            "action": {"name": action},
            "resource": {"type": "Repo", "id": "warden"},
        })
    };
    assert_eq!(
        decide_at(&engine, ask("User", "ana", "read"), at(WORKDAY)),
        held(&["read"])
    );
    assert_eq!(
        decide_at(&engine, ask("Team", "core", "read"), at(WORKDAY)),
        held(&["read", "teams"])
    );
    assert_eq!(
        decide_at(&engine, ask("User", "ana", "delete"), at(WORKDAY)),
        held(&["seniors"])
    );
    // Without `by`, every subject type may ask.
    assert_eq!(
        decide_at(&engine, ask("Team", "core", "audit"), at(WORKDAY)),
        held(&["teams"])
    );
    // A team asking to delete is refused: `teams` (a `*` rule) would otherwise allow it.
    let body = ask("Team", "core", "delete").to_string();
    match warden::eval::request::read(&engine.program, body.as_bytes(), at(WORKDAY)) {
        Err(RequestError::Invalid(invalid @ Invalid::SubjectNotAccepted { .. })) => {
            assert_eq!(
                invalid.to_string(),
                "action `delete` is not asked for by a `Team` (it accepts `User`)"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
