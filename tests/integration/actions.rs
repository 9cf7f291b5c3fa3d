//! Decisions on what an action declaration says beyond its resource types: the action
//! hierarchy (`action read in triage`) with `action in …` tests in conditions, and the subject
//! types an action accepts (`by User, Team`); and enumerated entity types
//! (`entity Color enum [...]`).

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

/// An enumerated entity type: only the ids it lists exist, in requests and in data.
const COLORS: &str = r#"
entity User
entity Color enum ["red", "green"]
action paint on Color
@id("paint") allow paint on Color if resource != Color::"green"
"#;

#[test]
fn a_request_naming_an_id_an_enumeration_does_not_list_is_refused() {
    use warden::eval::{RequestError, request::Invalid};
    let engine = inline(COLORS, None);
    let paint = |id: &str| {
        json!({
            "subject": {"type": "User", "id": "ana"},
            "action": {"name": "paint"},
            "resource": {"type": "Color", "id": id},
        })
    };
    assert_eq!(
        decide_at(&engine, paint("red"), at(WORKDAY)),
        held(&["paint"])
    );
    assert_eq!(decide_at(&engine, paint("green"), at(WORKDAY)), denied(&[]));
    let body = paint("blue").to_string();
    match warden::eval::request::read(&engine.program, body.as_bytes(), at(WORKDAY)) {
        Err(RequestError::Invalid(invalid @ Invalid::UnknownEnumId { .. })) => {
            assert_eq!(
                invalid.to_string(),
                "`Color` has no entity `blue`: it is an enumeration"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let body = paint("gren").to_string();
    let refused = warden::eval::request::read(&engine.program, body.as_bytes(), at(WORKDAY));
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("did you mean `green`?")),
        "{refused:?}"
    );
}

#[test]
fn data_files_may_not_define_or_name_an_id_an_enumeration_does_not_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.warden"),
        "entity Color enum [\"red\", \"green\"]\nentity User in Color\naction paint on Color\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("data.json"),
        json!({"entities": [
            {"type": "Color", "id": "red"},
            {"type": "Color", "id": "blue"},
            {"type": "User", "id": "ana", "parents": [{"type": "Color", "id": "gren"}]},
        ]})
        .to_string(),
    )
    .unwrap();
    let failure = match warden::engine::Engine::load(dir.path()) {
        Ok(_) => panic!("the data loaded"),
        Err(failure) => failure,
    };
    let codes: Vec<String> = failure
        .diagnostics
        .iter()
        .filter_map(|d| d.code())
        .collect();
    assert_eq!(
        codes,
        ["warden::unknown_enum_id", "warden::unknown_enum_id"],
        "{:#?}",
        failure.diagnostics
    );
    let text: Vec<String> = failure
        .diagnostics
        .iter()
        .map(|d| d.render(false))
        .collect();
    assert!(
        text.join("\n").contains("did you mean `green`?"),
        "{text:?}"
    );
}

/// An attribute or a context member typed as an enumeration: the id must be one it lists.
const SHADES: &str = r#"
entity Color enum ["red", "green"]
entity User { favourite: Color, others?: Set<Color> }
entity Wall
action paint on Wall context { color: Color }
@id("favourite") allow paint on Wall if context.color == subject.favourite
"#;

#[test]
fn a_data_file_attribute_typed_as_an_enumeration_takes_only_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.warden"), SHADES).unwrap();
    std::fs::write(
        dir.path().join("data.json"),
        json!({"entities": [
            {"type": "User", "id": "ana", "attributes": {"favourite": "red"}},
            {"type": "User", "id": "bo", "attributes": {"favourite": "gren"}},
            {"type": "User", "id": "cy", "attributes": {
                "favourite": {"type": "Color", "id": "green"},
                "others": ["red", {"type": "Color", "id": "blue"}],
            }},
        ]})
        .to_string(),
    )
    .unwrap();
    let failure = match warden::engine::Engine::load(dir.path()) {
        Ok(_) => panic!("the data loaded"),
        Err(failure) => failure,
    };
    let text: Vec<String> = failure
        .diagnostics
        .iter()
        .map(|d| d.render(false))
        .collect();
    let text = text.join("\n");
    assert_eq!(failure.diagnostics.len(), 2, "{text}");
    assert!(
        text.contains("`Color` has no entity \"gren\"") && text.contains("did you mean `green`?"),
        "{text}"
    );
    assert!(
        text.contains("`Color` has no entity \"blue\"")
            && text.contains("$.entities[2].attributes.others[1]"),
        "{text}"
    );
}

/// The one-pass reader and the ordinary one refuse a context member whose enumerated id is not
/// listed alike, and decode a listed one alike.
#[test]
fn a_context_member_typed_as_an_enumeration_takes_only_its_ids_on_every_reader() {
    use warden::eval::request::{Reader, read_with};
    let engine = inline(
        SHADES,
        Some(
            json!({"entities": [{"type": "User", "id": "ana", "attributes": {"favourite": "red"}}]}),
        ),
    );
    let body = |color: Value| {
        json!({
            "subject": {"type": "User", "id": "ana"},
            "action": {"name": "paint"},
            "resource": {"type": "Wall", "id": "w"},
            "context": {"color": color},
        })
        .to_string()
    };
    let now = at(WORKDAY);
    for (color, allowed) in [
        (json!("red"), Some(true)),
        (json!({"type": "Color", "id": "red"}), Some(true)),
        (json!("green"), Some(false)),
        (json!("purple"), None),
        (json!({"type": "Color", "id": "blue"}), None),
        (json!("Red"), None),
    ] {
        let text = body(color.clone());
        let ordinary = read_with(&engine.program, text.as_bytes(), now, Reader::Ordinary).unwrap();
        match (&ordinary, allowed) {
            (Ok(request), Some(allowed)) => assert_eq!(
                warden::eval::decide(&engine.program, request).allowed,
                allowed,
                "{color}"
            ),
            (Err(error), None) => assert!(
                error.to_string().contains("`Color` has no entity"),
                "{color}: {error}"
            ),
            other => panic!("{color}: {other:?}"),
        }
        // The one-pass reader decodes what it is sure of, and leaves the rest.
        match read_with(&engine.program, text.as_bytes(), now, Reader::OnePass) {
            Some(fast) => {
                assert!(allowed.is_some(), "{color}: read fast, but {ordinary:?}");
                assert_eq!(format!("{fast:?}"), format!("{ordinary:?}"), "{color}");
            }
            None => assert!(allowed.is_none() || color.is_object(), "{color}: left"),
        }
        let read = warden::eval::request::read(&engine.program, text.as_bytes(), now);
        assert_eq!(format!("{read:?}"), format!("{ordinary:?}"), "{color}");
    }
}

#[test]
fn a_rule_with_on_is_typed_by_the_actions_that_apply_to_its_types() {
    // `list` never sends `mfa`, but it never applies to a `Doc` either: on `Doc`, `g` is `read`
    // alone, whose `context.mfa` is always there.
    let engine = inline(
        "entity Doc\nentity Folder\n\
         action read on Doc context { mfa: Bool }\n\
         action list on Folder context {}\n\
         action group g = [read, list]\n\
         @id(\"mfa\") allow g on Doc if context.mfa\n",
        None,
    );
    let body = json!({
        "subject": {"type": "Doc", "id": "someone"},
        "action": {"name": "read"},
        "resource": {"type": "Doc", "id": "d"},
        "context": {"mfa": true},
    });
    assert_eq!(decide_at(&engine, body, at(WORKDAY)), held(&["mfa"]));
}
