//! Decisions: every kind of grant in the bundled examples, and every semantic rule of the
//! design on small policies written for the purpose.

use std::path::Path;

use serde_json::{Value, json};
use warden::engine::Engine;
use warden::eval::{self, RequestError, request};

/// What a test checks about one decision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    pub(crate) reasons: Vec<String>,
    pub(crate) errors: Vec<String>,
}

pub(crate) fn at(time: &str) -> jiff::Timestamp {
    time.parse().unwrap()
}

pub(crate) fn decide_at(engine: &Engine, body: Value, now: jiff::Timestamp) -> Outcome {
    let program = &engine.program;
    let request = request::read(program, body.to_string().as_bytes(), now).unwrap();
    let decision = eval::decide(program, &request);
    let id = |rule: warden::program::RuleId| program.rule(rule).unwrap().id.to_string();
    Outcome {
        allowed: decision.allowed,
        reasons: decision.reasons.iter().map(|r| id(*r)).collect(),
        errors: decision.errors.iter().map(|e| id(e.rule)).collect(),
    }
}

/// A Tuesday at 10:00 in Paris, before every ticket in the examples expires.
pub(crate) const WORKDAY: &str = "2026-03-03T09:00:00Z";

fn examples() -> Engine {
    Engine::load(Path::new("policies")).unwrap()
}

fn ask(engine: &Engine, subject: &str, action: &str, resource: (&str, &str)) -> Outcome {
    decide_at(
        engine,
        json!({
            "subject": {"type": "User", "id": subject},
            "action": {"name": action},
            "resource": {"type": resource.0, "id": resource.1},
        }),
        at(WORKDAY),
    )
}

pub(crate) fn held(reasons: &[&str]) -> Outcome {
    Outcome {
        allowed: true,
        reasons: reasons.iter().map(|s| s.to_string()).collect(),
        errors: vec![],
    }
}

pub(crate) fn denied(reasons: &[&str]) -> Outcome {
    Outcome {
        allowed: false,
        reasons: reasons.iter().map(|s| s.to_string()).collect(),
        errors: vec![],
    }
}

#[test]
fn a_role_bound_on_an_album_reaches_its_photos() {
    let engine = examples();
    // bob is curator on `trips`; p1 sits in `trips`; curator inherits viewer.
    assert_eq!(
        ask(&engine, "bob", "view", ("Photo", "p1")),
        held(&["view-and-list"])
    );
    // `alps` is inside `trips`, so the binding reaches p3 too.
    assert_eq!(
        ask(&engine, "bob", "view", ("Photo", "p3")),
        held(&["view-and-list"])
    );
    // …but not `press`, which is elsewhere.
    assert_eq!(
        ask(&engine, "bob", "view", ("Photo", "p6")),
        held(&["public-photos"])
    );
    assert_eq!(ask(&engine, "bob", "view", ("Photo", "p7")), denied(&[]));
}

#[test]
fn roles_inherit_grants() {
    let engine = examples();
    // curator → contributor → `write` = comment, upload.
    assert_eq!(
        ask(&engine, "bob", "comment", ("Photo", "p1")),
        held(&["contributor-write"])
    );
    // dave holds contributor globally through his stored `roles`.
    assert_eq!(
        ask(&engine, "dave", "comment", ("Photo", "p3")),
        held(&["contributor-write"])
    );
    // contributor does not inherit curator's delete.
    assert!(!ask(&engine, "dave", "delete", ("Photo", "p3")).allowed);
}

#[test]
fn a_role_bound_to_a_group_reaches_its_members_transitively() {
    let engine = examples();
    // photographers are contributors on `press`; carol is in photographers.
    assert_eq!(
        ask(&engine, "carol", "comment", ("Photo", "p6")),
        held(&["contributor-write"])
    );
    // alice is not a photographer.
    assert_eq!(
        ask(&engine, "alice", "comment", ("Photo", "p6")),
        denied(&[])
    );
}

#[test]
fn owners_may_do_anything_with_their_photos() {
    let engine = examples();
    assert_eq!(
        ask(&engine, "alice", "comment", ("Photo", "p1")),
        held(&["owner"])
    );
    assert_eq!(
        ask(&engine, "alice", "comment", ("Photo", "p4")),
        denied(&[])
    );
}

#[test]
fn a_deny_overrides_every_allow() {
    let engine = examples();
    // alice owns p1, but deleting needs MFA: the deny wins over the owner's allow.
    assert_eq!(
        ask(&engine, "alice", "delete", ("Photo", "p1")),
        denied(&["delete-needs-mfa"])
    );
    let with_mfa = decide_at(
        &engine,
        json!({
            "subject": {"type": "User", "id": "alice", "properties": {"mfa": true}},
            "action": {"name": "delete"},
            "resource": {"type": "Photo", "id": "p1"},
        }),
        at(WORKDAY),
    );
    assert_eq!(with_mfa, held(&["owner"]));
}

#[test]
fn suspended_users_are_denied_everything() {
    let engine = examples();
    // erin owns p5 and is a curator, but she is suspended.
    assert_eq!(
        ask(&engine, "erin", "comment", ("Photo", "p5")),
        denied(&["suspended"])
    );
    assert_eq!(
        ask(&engine, "erin", "view", ("Photo", "p6")),
        denied(&["suspended"])
    );
}

#[test]
fn a_ticket_is_valid_until_it_expires() {
    let engine = examples();
    let body = json!({
        "subject": {"type": "User", "id": "frank"},
        "action": {"name": "view"},
        "resource": {"type": "Photo", "id": "p3"},
    });
    assert_eq!(
        decide_at(&engine, body.clone(), at(WORKDAY)),
        held(&["ticket"])
    );
    assert_eq!(
        decide_at(&engine, body, at("2026-07-01T00:00:00Z")),
        denied(&[])
    );
    // The ticket is for `alps`; p1 is in `trips`, above it.
    assert_eq!(ask(&engine, "frank", "view", ("Photo", "p1")), denied(&[]));
}

#[test]
fn group_membership_goes_through_nested_groups() {
    let engine = examples();
    // carol is in photographers, which is in staff.
    assert_eq!(
        ask(&engine, "carol", "list", ("Album", "trips")),
        held(&["staff-list"])
    );
    assert_eq!(
        ask(&engine, "bob", "list", ("Album", "archive")),
        denied(&[])
    );
}

#[test]
fn business_hours_are_read_in_the_named_zone() {
    let engine = examples();
    let archive = |time: &str| {
        decide_at(
            &engine,
            json!({
                "subject": {"type": "User", "id": "bob"},
                "action": {"name": "archive"},
                "resource": {"type": "Album", "id": "trips"},
                "context": {"reason": "old"},
            }),
            at(time),
        )
    };
    // 09:00 UTC is 10:00 in Paris in March (UTC+1): open.
    assert!(archive("2026-03-03T09:00:00Z").allowed);
    // 07:30 UTC is 08:30 in Paris: not yet.
    assert!(!archive("2026-03-03T07:30:00Z").allowed);
    // 16:30 UTC in July is 18:30 in Paris (UTC+2): closed, though it would be open in UTC+1.
    assert!(!archive("2026-07-07T16:30:00Z").allowed);
    // Saturday.
    assert!(!archive("2026-03-07T10:00:00Z").allowed);
}

#[test]
fn a_caller_property_is_used_only_where_the_policy_says() {
    let engine = examples();
    // The caller claims a stored attribute as a property: it does not override the store.
    let body = json!({
        "subject": {"type": "User", "id": "bob", "properties": {"suspended": false, "roles": ["curator"]}},
        "action": {"name": "comment"},
        "resource": {"type": "Photo", "id": "p7"},
    });
    assert_eq!(decide_at(&engine, body, at(WORKDAY)), denied(&[]));
}

#[test]
fn export_needs_the_office_network() {
    let engine = examples();
    let export = |ip: &str| {
        decide_at(
            &engine,
            json!({
                // carol is staff (through photographers) and owns nothing in `press`.
                "subject": {"type": "User", "id": "carol"},
                "action": {"name": "export"},
                "resource": {"type": "Album", "id": "press"},
                "context": {"ip": ip},
            }),
            at(WORKDAY),
        )
    };
    assert_eq!(export("10.1.2.3"), held(&["staff-export"]));
    assert_eq!(export("192.0.2.1"), denied(&[]));
}

#[test]
fn undeclared_types_actions_and_mistyped_values_are_denied_with_a_reason() {
    let engine = examples();
    let now = at(WORKDAY);
    let decode = |body: Value| request::read(&engine.program, body.to_string().as_bytes(), now);
    let invalid = |result: Result<eval::Request, RequestError>| match result {
        Err(RequestError::Invalid(message)) => message.to_string(),
        other => panic!("expected an invalid request, got {other:?}"),
    };
    let message = invalid(decode(json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "view"},
        "resource": {"type": "Photo", "id": "p1"},
    })));
    assert!(
        message.contains("undeclared entity type `user`") && message.contains("`User`"),
        "{message}"
    );
    let message = invalid(decode(json!({
        "subject": {"type": "User", "id": "alice"},
        "action": {"name": "veiw"},
        "resource": {"type": "Photo", "id": "p1"},
    })));
    assert!(
        message.contains("`veiw`") && message.contains("`view`"),
        "{message}"
    );
    let message = invalid(decode(json!({
        "subject": {"type": "User", "id": "alice", "properties": {"mfa": "yes"}},
        "action": {"name": "delete"},
        "resource": {"type": "Photo", "id": "p1"},
    })));
    assert!(message.contains("subject.properties.mfa"), "{message}");
    let message = invalid(decode(json!({
        "subject": {"type": "User", "id": "dave"},
        "action": {"name": "export"},
        "resource": {"type": "Album", "id": "press"},
        "context": {"ip": "not-an-address"},
    })));
    assert!(message.contains("context.ip"), "{message}");
    // Not a request at all: malformed, which the server answers with 400.
    assert!(matches!(
        decode(json!({"subject": "alice"})),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        decode(
            json!({"subject": {"type": "User"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}})
        ),
        Err(RequestError::Malformed(_))
    ));
}

/// Writes a one-file policy directory (plus data) and loads it.
pub(crate) fn inline(policy: &str, data: Option<Value>) -> Engine {
    let dir = tempdir();
    std::fs::write(dir.join("policy.warden"), policy).unwrap();
    if let Some(data) = data {
        std::fs::write(dir.join("data.json"), data.to_string()).unwrap();
    }
    match Engine::load(&dir) {
        Ok(engine) => engine,
        Err(failure) => panic!("{:#?}", failure.diagnostics),
    }
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warden-decide-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn dynamic_request(action: &str, subject_props: Value, context: Value) -> Value {
    json!({
        "subject": {"type": "User", "id": "u", "properties": subject_props},
        "action": {"name": action},
        "resource": {"type": "Doc", "id": "d"},
        "context": context,
    })
}

#[test]
fn a_deny_whose_condition_errors_denies_and_an_allow_that_errors_does_not_apply() {
    // No declarations: dynamically typed, errors happen at run time.
    let engine = inline(
        "@id(\"open\") allow read\n\
         @id(\"level\") deny read if context.level > 3\n\
         @id(\"vip\") allow write if subject.properties.vip\n",
        None,
    );
    let now = at(WORKDAY);
    // `context.level` is absent: the deny errors, and fails closed.
    let outcome = decide_at(&engine, dynamic_request("read", json!({}), json!({})), now);
    assert_eq!(
        outcome,
        Outcome {
            allowed: false,
            reasons: vec!["level".into()],
            errors: vec!["level".into()]
        }
    );
    // A string where an integer is compared: an error too, not a silent false.
    let outcome = decide_at(
        &engine,
        dynamic_request("read", json!({}), json!({"level": "high"})),
        now,
    );
    assert_eq!(outcome.errors, vec!["level".to_string()]);
    assert!(!outcome.allowed);
    assert_eq!(
        decide_at(
            &engine,
            dynamic_request("read", json!({}), json!({"level": 1})),
            now
        ),
        held(&["open"])
    );
    // The allow errors (no `vip`): it does not apply, and the error is reported.
    let outcome = decide_at(&engine, dynamic_request("write", json!({}), json!({})), now);
    assert_eq!(
        outcome,
        Outcome {
            allowed: false,
            reasons: vec![],
            errors: vec!["vip".into()]
        }
    );
}

#[test]
fn and_and_or_short_circuit_left_to_right() {
    let engine = inline(
        "@id(\"false-and-error\") deny read if false and context.missing\n\
         @id(\"true-or-error\") allow read if true or context.missing\n\
         @id(\"error-and-false\") deny write if context.missing and false\n\
         @id(\"guarded\") allow write if context has flag and context.flag\n",
        None,
    );
    let now = at(WORKDAY);
    assert_eq!(
        decide_at(&engine, dynamic_request("read", json!({}), json!({})), now),
        held(&["true-or-error"])
    );
    let outcome = decide_at(&engine, dynamic_request("write", json!({}), json!({})), now);
    assert_eq!(outcome.reasons, vec!["error-and-false".to_string()]);
    assert_eq!(outcome.errors, vec!["error-and-false".to_string()]);
}

#[test]
fn a_wildcard_deny_cannot_be_bypassed_by_an_undeclared_action() {
    let engine = inline(
        "@id(\"anything\") allow * on Doc\n@id(\"blocked\") deny * if subject.properties has blocked\n",
        None,
    );
    let now = at(WORKDAY);
    assert_eq!(
        decide_at(
            &engine,
            dynamic_request("frobnicate", json!({}), json!({})),
            now
        ),
        held(&["anything"])
    );
    assert_eq!(
        decide_at(
            &engine,
            dynamic_request("frobnicate", json!({"blocked": true}), json!({})),
            now
        ),
        denied(&["blocked"])
    );
}

#[test]
fn optional_attributes_are_absent_until_tested() {
    let engine = inline(
        "entity User { nickname?: String }\nentity Doc\naction read on Doc\n\
         @id(\"nick\") allow read if subject has nickname and subject.nickname == \"ace\"\n",
        Some(json!({"entities": [
            {"type": "User", "id": "u", "attributes": {"nickname": "ace"}},
            {"type": "User", "id": "v"},
            {"type": "Doc", "id": "d"}
        ]})),
    );
    let now = at(WORKDAY);
    let ask = |who: &str| {
        decide_at(
            &engine,
            json!({"subject": {"type": "User", "id": who}, "action": {"name": "read"}, "resource": {"type": "Doc", "id": "d"}}),
            now,
        )
    };
    assert_eq!(ask("u"), held(&["nick"]));
    assert_eq!(ask("v"), denied(&[]));
    // Not in the store at all: no attributes, `has` is false, no error.
    assert_eq!(ask("nobody"), denied(&[]));
}

#[test]
fn per_entity_grants_are_discriminated_without_changing_meaning() {
    let mut policy = String::from(
        "entity Album\nentity Photo in [Album] { tag: String }\nentity User { team: String }\naction view on Photo\n",
    );
    for i in 0..200 {
        policy.push_str(&format!(
            "@id(\"album{i}\") allow view on Photo if resource in Album::\"a{i}\"\n"
        ));
        policy.push_str(&format!(
            "@id(\"team{i}\") allow view on Photo if subject.team == \"t{i}\"\n"
        ));
    }
    policy.push_str("@id(\"tagged\") deny view on Photo if resource.tag == \"secret\"\n");
    let engine = inline(
        &policy,
        Some(json!({"entities": [
            {"type": "Album", "id": "a7"},
            {"type": "Photo", "id": "p", "attributes": {"tag": "x"}, "parents": ["a7"]},
            {"type": "Photo", "id": "s", "attributes": {"tag": "secret"}, "parents": ["a7"]},
            {"type": "User", "id": "u", "attributes": {"team": "t9"}},
            {"type": "User", "id": "w", "attributes": {"team": "none"}}
        ]})),
    );
    let now = at(WORKDAY);
    let ask = |who: &str, photo: &str| {
        decide_at(
            &engine,
            json!({"subject": {"type": "User", "id": who}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": photo}}),
            now,
        )
    };
    assert_eq!(ask("u", "p"), held(&["album7", "team9"]));
    assert_eq!(ask("w", "p"), held(&["album7"]));
    assert_eq!(ask("u", "s"), denied(&["tagged"]));
    // A subject the store does not hold: `subject.team` errors in every `team` rule.
    let outcome = ask("ghost", "p");
    assert!(outcome.allowed);
    assert_eq!(outcome.reasons, vec!["album7".to_string()]);
    assert_eq!(outcome.errors.len(), 200);
}

#[test]
fn integer_overflow_is_an_error_not_a_wrap() {
    let engine = inline("@id(\"big\") allow read if context.n + 1 > 0\n", None);
    let outcome = decide_at(
        &engine,
        dynamic_request("read", json!({}), json!({"n": i64::MAX})),
        at(WORKDAY),
    );
    assert_eq!(
        outcome,
        Outcome {
            allowed: false,
            reasons: vec![],
            errors: vec!["big".into()]
        }
    );
}

#[test]
fn decoding_from_bytes_agrees_with_decoding_from_json_values() {
    let engine = examples();
    let program = &engine.program;
    let now = at(WORKDAY);
    let bodies = [
        r#"{"subject": {"type": "User", "id": "bob"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"subject": {"type": "User", "id": "alice", "properties": {"mfa": true}}, "action": {"name": "delete"}, "resource": {"type": "Photo", "id": "p1"}, "extra": [1, 2]}"#,
        r#"{"subject": {"type": "User", "id": "carol"}, "action": {"name": "export"}, "resource": {"type": "Album", "id": "press"}, "context": {"ip": "10.1.2.3"}}"#,
        r#"{"subject": {"type": "User", "id": "b\u006fb"}, "action": {"name": "comment", "properties": null}, "resource": {"type": "Photo", "id": "p1"}, "context": null}"#,
        r#"{"subject": {"type": "User", "id": "ghost"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p6"}}"#,
        // Invalid: decided deny with a reason, the same reason either way.
        r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"subject": {"type": "User", "id": "alice", "properties": {"mfa": "yes"}}, "action": {"name": "delete"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"subject": {"type": "User", "id": "dave"}, "action": {"name": "export"}, "resource": {"type": "Album", "id": "press"}, "context": {"ip": 7}}"#,
        // Malformed: the same 400 message either way.
        r#"{"subject": "alice", "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"subject": {"type": "User", "id": 7}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
        r#"{"subject": {"type": "User", "id": "bob"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}, "context": [1]}"#,
        r#"[1, 2]"#,
        // Arrays are not objects, even with the fields in order.
        r#"[{"type": "User", "id": "bob"}, {"name": "view"}, {"type": "Photo", "id": "p1"}]"#,
        r#"{"subject": ["User", "bob"], "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#,
    ];
    for body in bodies {
        let slow =
            request::read_with(program, body.as_bytes(), now, request::Reader::Ordinary).unwrap();
        let fast = request::read(program, body.as_bytes(), now);
        match (slow, fast) {
            (Ok(slow), Ok(fast)) => {
                let (a, b) = (eval::decide(program, &slow), eval::decide(program, &fast));
                assert_eq!(a, b, "{body}");
                assert_eq!(slow.context, fast.context, "{body}");
                assert_eq!(slow.subject_properties, fast.subject_properties, "{body}");
                assert_eq!(slow.action, fast.action, "{body}");
            }
            (Err(slow), Err(fast)) => assert_eq!(slow, fast, "{body}"),
            (slow, fast) => panic!("{body}: {slow:?} but {fast:?}"),
        }
    }
    assert!(matches!(
        request::read(program, b"{not json", now),
        Err(RequestError::Malformed(_))
    ));
}
