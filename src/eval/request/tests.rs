//! The one-pass reader of `read` held to the ordinary one: whatever it decodes, the
//! ordinary path decodes alike; whatever it leaves, the ordinary path decodes or refuses.

use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;
use crate::engine::Engine;

const POLICY: &str = r#"
entity Team in [Team]
entity User in [Team] {
  dept: String,
  properties: {
    mfa?: Bool, level?: Int, tags?: Set<String>, team?: Team, since?: Time, ip?: Ip,
    ttl?: Duration, badge?: { n: Int, label?: String }, boss?: User, nums?: Set<Int>,
    price?: Decimal, shade?: Shade, shades?: Set<Shade>,
  },
}
entity Shade enum ["red", "green"]
entity Doc { owner: User, properties: { rank: Int } }
entity Thing
action read on Doc context { ip: Ip, note?: String }
action edit on Doc, Thing properties { soft?: Bool }
action poke on Thing

@id("owner")
allow * on Doc if resource.owner == subject
@id("poke")
allow poke on Thing if context has x and context.x == 1
"#;

const DATA: &str = r#"{"entities": [
  {"type": "Team", "id": "t1"},
  {"type": "User", "id": "alice", "attributes": {"dept": "x"}, "parents": ["t1"]},
  {"type": "User", "id": "bob", "attributes": {"dept": "y"}},
  {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}},
  {"type": "Thing", "id": "k"}
]}"#;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.warden"), POLICY).unwrap();
    std::fs::write(dir.path().join("data.json"), DATA).unwrap();
    match Engine::load(dir.path()) {
        Ok(engine) => engine,
        Err(failure) => panic!("{:#?}", failure.diagnostics),
    }
});

fn now() -> Timestamp {
    "2026-03-03T09:00:00Z".parse().unwrap()
}

fn same(a: &Request, b: &Request) -> bool {
    a.subject == b.subject
        && a.subject_properties == b.subject_properties
        && a.action == b.action
        && a.action_properties == b.action_properties
        && a.resource == b.resource
        && a.resource_properties == b.resource_properties
        && a.context == b.context
        && a.now == b.now
        && a.type_slot == b.type_slot
        && a.action_slot == b.action_slot
        && a.verified.is_none()
        && b.verified.is_none()
        && a.capability.is_none()
        && b.capability.is_none()
}

/// Decodes `body` both ways; `true` when the fast path decoded it.
fn check(body: &str) -> bool {
    let program = &ENGINE.program;
    let ordinary =
        skeleton(program, body, now()).unwrap_or_else(|| tree(program, body.as_bytes(), now()));
    let fast = one_pass(program, body, now()).map(|(request, _)| request);
    if let Some(fast) = &fast {
        match &ordinary {
            Ok(ordinary) => assert!(same(fast, ordinary), "{body}:\n{fast:?}\n{ordinary:?}"),
            Err(error) => panic!("{body}: decoded fast, but the ordinary path says {error:?}"),
        }
    }
    // And `read` as a whole is the ordinary path's answer.
    match (read(program, body.as_bytes(), now()), ordinary) {
        (Ok(a), Ok(b)) => assert!(same(&a, &b), "{body}"),
        (Err(a), Err(b)) => assert_eq!(a, b, "{body}"),
        (a, b) => panic!("{body}: {a:?} but {b:?}"),
    }
    fast.is_some()
}

fn body(subject_properties: &str, action: &str, resource: &str, context: &str) -> String {
    format!(
        r#"{{"subject": {{"type": "User", "id": "alice", "properties": {subject_properties}}}, "action": {{"name": "{action}"}}, "resource": {resource}, "context": {context}}}"#
    )
}

const DOC: &str = r#"{"type": "Doc", "id": "d1", "properties": {"rank": 3}}"#;
const THING: &str = r#"{"type": "Thing", "id": "k"}"#;

#[test]
fn the_fast_path_decodes_what_it_should() {
    for (properties, context) in [
        ("{}", "{}"),
        ("null", "null"),
        (r#"{"mfa": true}"#, r#"{"x": 1}"#),
        (
            r#"{"mfa": false, "level": -7, "tags": ["b", "a", "b"], "team": "t1", "boss": {"type": "User", "id": "bob", "extra": [1, {"z": null}]}}"#,
            r#"{"x": 1, "y": "s", "z": [true, 2], "w": {"type": "User", "id": "alice"}, "v": {"a": null, "b": {"c": -1}}}"#,
        ),
        (
            r#"{"since": "2026-01-01T10:00:00+01:00", "ip": "10.0.0.0/8", "ttl": "1h30m", "badge": {"n": 2, "label": null}, "nums": [], "unknown": {"deep": [1.5, 1e9, "é"]}}"#,
            r#" { "e" : { "type" : "Ghost" , "id" : "g" } , "n" : null } "#,
        ),
        (
            r#"{"mfa": null, "boss": "nobody"}"#,
            r#"{"big": 9223372036854775807}"#,
        ),
    ] {
        assert!(
            check(&body(properties, "poke", THING, context)),
            "{properties} {context}"
        );
    }
    assert!(check(&body(
        "{}",
        "read",
        DOC,
        r#"{"ip": "10.1.2.3", "note": "n"}"#
    )));
    assert!(check(&body("{}", "edit", DOC, r#"{"any": [1]}"#)));
    assert!(check(&format!(
        r#"{{"resource": {THING}, "action": {{"properties": {{"soft": true}}, "name": "edit"}}, "subject": {{"id": "ghost", "type": "User"}}, "extra": "A"}}"#
    )));
    // An escape, even in a member the API does not have, is the ordinary path's to validate
    // (a lone surrogate is not JSON there).
    for extra in [r#""\u0041""#, r#""\ud800""#] {
        assert!(!check(&format!(
            r#"{{"resource": {THING}, "action": {{"name": "edit"}}, "subject": {{"id": "ghost", "type": "User"}}, "extra": {extra}}}"#
        )));
    }
}

#[test]
fn the_fast_path_leaves_the_rest_to_the_ordinary_one() {
    for (properties, action, resource, context) in [
        // Errors: mistyped, missing, `null` where a value is required, floats, big numbers.
        (r#"{"mfa": "yes"}"#, "poke", THING, "{}"),
        (r#"{"level": 1.0}"#, "poke", THING, "{}"),
        (r#"{"level": 9223372036854775808}"#, "poke", THING, "{}"),
        (r#"{"tags": [null]}"#, "poke", THING, "{}"),
        (r#"{"badge": {}}"#, "poke", THING, "{}"),
        (
            r#"{"boss": {"type": "Team", "id": "t1"}}"#,
            "poke",
            THING,
            "{}",
        ),
        (r#"{"since": "2026-01-01T10:00:00"}"#, "poke", THING, "{}"),
        ("{}", "read", DOC, "{}"),
        ("{}", "read", DOC, r#"{"ip": "nope"}"#),
        ("{}", "poke", THING, r#"{"f": 0.5}"#),
        ("{}", "poke", THING, r#"{"n": null, "m": [null]}"#),
        ("{}", "poke", r#"{"type": "Doc", "id": "d1"}"#, "{}"),
        (
            "{}",
            "read",
            r#"{"type": "Doc", "id": "d1", "properties": {}}"#,
            "{}",
        ),
        // Not objects, keys given twice, escapes, capability tokens, undeclared names.
        ("[]", "poke", THING, "{}"),
        ("{}", "poke", THING, "7"),
        (r#"{"mfa": true, "mfa": false}"#, "poke", THING, "{}"),
        (r#"{"u": {"a": 1, "a": 2}}"#, "poke", THING, "{}"),
        (r#"{"dept": "a\"b"}"#, "poke", THING, "{}"),
        ("{}", "poke", THING, r#"{"s": "\ud800"}"#),
        ("{}", "poke", THING, r#"{"capability": "abc"}"#),
        ("{}", "frobnicate", THING, "{}"),
        ("{}", "poke", r#"{"type": "Nope", "id": "k"}"#, "{}"),
        ("{}", "poke", THING, r#"{"a": 01}"#),
        ("{}", "poke", THING, r#"{"a": [1,]}"#),
    ] {
        assert!(
            !check(&body(properties, action, resource, context)),
            "{properties} {action} {resource} {context}"
        );
    }
    for text in [
        r#"{"subject": {"type": "User", "id": "alice"}, "action": {"name": "poke"}}"#,
        r#"{"subject": {"type": "User", "id": "al\u0069ce"}, "action": {"name": "poke"}, "resource": {"type": "Thing", "id": "k"}}"#,
        r#"{"subject": {"type": "User", "id": "alice"}, "subject": {"type": "User", "id": "bob"}, "action": {"name": "poke"}, "resource": {"type": "Thing", "id": "k"}}"#,
        r#"{"subject": {"type": "User", "id": "alice"}, "action": {"name": "poke"}, "resource": {"type": "Thing", "id": "k"}} x"#,
        r#"{"subject": {"type": "User", "id": "alice"}, "action": {"name": "poke"}, "resource": {"type": "Thing", "id": "k"}, "evaluations": []}"#,
        r#"{"subject": {"type": "User", "id": "alice"}, "action": {"name": "poke"}, "resource": {"type": "Thing", "id": "k"}, "x": [1, 2}"#,
        "[1]",
        "",
    ] {
        assert!(!check(text), "{text}");
    }
}

/// JSON text for `properties` or `context`, with the names the policy declares, and the
/// values that do and do not fit them.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        Just("0".to_string()),
        Just("-12".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1.5".to_string()),
        Just("2E3".to_string()),
        Just("-0".to_string()),
        Just(r#""a""#.to_string()),
        Just(r#""t1""#.to_string()),
        Just(r#""alice""#.to_string()),
        Just(r#""10.0.0.1""#.to_string()),
        Just(r#""2026-01-01T00:00:00Z""#.to_string()),
        Just(r#""90m""#.to_string()),
        Just(r#""x\"y""#.to_string()),
        Just(r#""\u00e9""#.to_string()),
        Just(r#"{"type": "User", "id": "bob"}"#.to_string()),
        Just(r#"{"type": "Team", "id": "t1"}"#.to_string()),
    ];
    let key = prop_oneof![
        Just("mfa"),
        Just("level"),
        Just("tags"),
        Just("team"),
        Just("since"),
        Just("ip"),
        Just("ttl"),
        Just("badge"),
        Just("boss"),
        Just("nums"),
        Just("n"),
        Just("label"),
        Just("type"),
        Just("id"),
        Just("x"),
        Just("capability"),
    ];
    let space = prop_oneof![Just(""), Just(""), Just(" "), Just("\n\t ")];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec((inner.clone(), space.clone()), 0..4).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(v, s)| format!("{s}{v}{s}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            proptest::collection::vec((key.clone(), inner, space.clone()), 0..4).prop_map(
                |members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, s)| format!("{s}\"{k}\"{s}:{s}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }
            ),
        ]
    })
}

/// `subject.properties` that mostly fit the declaration (a member now and then does not).
fn subject_properties() -> impl Strategy<Value = String> {
    let strings = || {
        prop_oneof![
            Just(r#""a""#.to_string()),
            Just(r#""b""#.to_string()),
            Just(r#""é z""#.to_string())
        ]
    };
    let member = prop_oneof![
        prop_oneof![Just("true"), Just("false"), Just("null")]
            .prop_map(|v| format!(r#""mfa": {v}"#)),
        any::<i64>().prop_map(|v| format!(r#""level": {v}"#)),
        proptest::collection::vec(strings(), 0..4)
            .prop_map(|v| format!(r#""tags": [{}]"#, v.join(", "))),
        prop_oneof![
            Just(r#""t1""#),
            Just(r#""t9""#),
            Just(r#"{"id": "t1", "type": "Team"}"#)
        ]
        .prop_map(|v| format!(r#""team": {v}"#)),
        prop_oneof![
            Just("2026-01-01T00:00:00Z"),
            Just("2026-06-01T12:30:00-07:00")
        ]
        .prop_map(|v| format!(r#""since": "{v}""#)),
        prop_oneof![Just("10.0.0.1"), Just("::1"), Just("192.168.0.0/16")]
            .prop_map(|v| format!(r#""ip": "{v}""#)),
        prop_oneof![Just("1h"), Just("90m"), Just("-2d"), Just("500ms")]
            .prop_map(|v| format!(r#""ttl": "{v}""#)),
        (
            any::<i32>(),
            prop_oneof![Just("null"), Just(r#""l""#)],
            json_text()
        )
            .prop_map(|(n, l, x)| format!(r#""badge": {{"n": {n}, "label": {l}, "x": {x}}}"#)),
        prop_oneof![
            Just(r#""bob""#),
            Just(r#""nobody""#),
            Just(r#"{"type": "User", "id": "bob", "x": [1]}"#)
        ]
        .prop_map(|v| format!(r#""boss": {v}"#)),
        proptest::collection::vec(-3i64..3, 0..4).prop_map(|v| format!(
            r#""nums": [{}]"#,
            v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        )),
        // Decimals and enumerated entities, valid and not: the ordinary path refuses what
        // the fast one must leave.
        prop_oneof![
            Just(r#""1.5""#),
            Just(r#""-0.0001""#),
            Just(r#""1.23456""#),
            Just(r#""x""#),
            Just("1.5"),
            Just(r#"{"__extn": {"fn": "decimal", "arg": "2.5"}}"#),
        ]
        .prop_map(|v| format!(r#""price": {v}"#)),
        prop_oneof![
            Just(r#""red""#),
            Just(r#""green""#),
            Just(r#""blue""#),
            Just(r#""Red""#),
            Just(r#"{"type": "Shade", "id": "green"}"#),
            Just(r#"{"type": "Shade", "id": "purple"}"#),
            Just(r#"{"type": "User", "id": "red"}"#),
        ]
        .prop_map(|v| format!(r#""shade": {v}"#)),
        prop_oneof![
            Just(r#"["red", "green"]"#),
            Just(r#"["red", "gren"]"#),
            Just("[]"),
        ]
        .prop_map(|v| format!(r#""shades": {v}"#)),
        json_text().prop_map(|v| format!(r#""other": {v}"#)),
        (
            prop_oneof![
                Just("mfa"),
                Just("level"),
                Just("badge"),
                Just("boss"),
                Just("price"),
                Just("shade")
            ],
            json_text()
        )
            .prop_map(|(k, v)| format!(r#""{k}": {v}"#)),
    ];
    proptest::collection::vec(member, 0..5).prop_map(|m| format!("{{{}}}", m.join(", ")))
}

/// A dynamically typed `context`: mostly values that decode, now and then one that does not.
fn context() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => Just("true".to_string()),
        4 => any::<i64>().prop_map(|v| v.to_string()),
        4 => Just(r#""s""#.to_string()),
        2 => Just(r#"{"type": "User", "id": "alice"}"#.to_string()),
        1 => Just(r#"{"type": "User", "id": "alice", "x": 1}"#.to_string()),
        1 => Just("null".to_string()),
        1 => Just("0.5".to_string()),
    ];
    let value = leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec(
                (
                    prop_oneof![Just("a"), Just("b"), Just("type"), Just("id")],
                    inner
                ),
                0..3
            )
            .prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!(r#""{k}":{v}"#))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    proptest::collection::vec(
        (
            prop_oneof![Just("x"), Just("y"), Just("ip"), Just("note"), Just("any")],
            value,
        ),
        0..4,
    )
    .prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!(r#""{k}": {v}"#))
            .collect();
        format!("{{{}}}", members.join(", "))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_fast_path_agrees_with_the_ordinary_one(
        properties in prop_oneof![3 => subject_properties(), 1 => json_text()],
        context in prop_oneof![3 => context(), 1 => json_text()],
        action in prop_oneof![3 => Just("poke"), 1 => Just("read"), 2 => Just("edit")],
        resource in prop_oneof![2 => Just(THING), 1 => Just(DOC)],
    ) {
        check(&body(&properties, action, resource, &context));
    }
}
