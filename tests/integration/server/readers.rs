//! Every reader of an evaluation body accepts and decides exactly what the ordinary reader
//! (`serde_json`'s tree, refusing a name given twice) does. The bodies are generated as text,
//! so they can hold what a JSON tree cannot: names given twice, escapes, lone surrogates, deep
//! nesting, `-0`, whitespace anywhere. Each is answered in-process by the server with all its
//! readers and with the ordinary one alone, and decoded by each reader of the library.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use warden::engine::Engine;
use warden::eval::request::{Reader, read_with};
use warden::eval::{self, RequestError};
use warden::server::authzen::{Readers, answer_body};
use warden::server::{AppState, Settings};

use super::*;

/// The policy and store (shared with the `decode` fuzz target).
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/readers");

struct Fixture {
    engine: Engine,
    state: Arc<AppState>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = std::path::Path::new(DIR);
    let engine = Engine::load(dir).unwrap();
    let state = Arc::new(AppState::new(Settings::from(&config(dir))));
    state.publish(warden::server::reload::build(dir, false, &[]).unwrap());
    Fixture { engine, state }
});

/// A JSON value as text, with what a tree cannot hold.
#[derive(Clone, Debug)]
enum Text {
    /// Written as is: a literal, a number, a string with its quotes and escapes.
    Raw(String),
    Array(Vec<Text>),
    /// Members, names written as is (with their quotes).
    Object(Vec<(String, Text)>),
    /// Arrays this deep, one inside another.
    Deep(usize),
}

impl Text {
    fn render(&self, space: &mut impl Iterator<Item = &'static str>, out: &mut String) {
        match self {
            Text::Raw(text) => out.push_str(text),
            Text::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(space.next().unwrap_or(""));
                    item.render(space, out);
                }
                out.push(']');
            }
            Text::Object(members) => {
                out.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(space.next().unwrap_or(""));
                    out.push_str(name);
                    out.push(':');
                    out.push_str(space.next().unwrap_or(""));
                    value.render(space, out);
                }
                out.push_str(space.next().unwrap_or(""));
                out.push('}');
            }
            Text::Deep(levels) => {
                out.push_str(&"[".repeat(*levels));
                out.push_str(&"]".repeat(*levels));
            }
        }
    }
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// Strings, some with escapes (valid, invalid, surrogates paired and not).
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["alice", "bob", "carol", "d1", "d2", "readers", "x", "é", ""])
            .prop_map(quoted),
        1 => prop::sample::select(vec![
            r#""b\u006fb""#, r#""\ud83d\ude00""#, r#""\ud800""#, r#""\udc00""#,
            r#""\ud800\u0041""#, r#""a\nb""#, r#""\/""#, r#""\q""#, r#""\u00e9""#, r#""\u12""#,
        ])
        .prop_map(str::to_string),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-0",
        "1",
        "-2",
        "07",
        "1.5",
        "1e2",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-",
        "1.",
    ])
    .prop_map(str::to_string)
}

/// Any value: what fills `properties`, `context` and unknown members.
fn value() -> impl Strategy<Value = Text> {
    let leaf = prop_oneof![
        3 => prop::sample::select(vec!["true", "false", "null"]).prop_map(|t| Text::Raw(t.into())),
        3 => number().prop_map(Text::Raw),
        3 => string().prop_map(Text::Raw),
        1 => prop::sample::select(vec![1usize, 40, 121, 122, 123, 124, 125, 126, 127, 5_000])
            .prop_map(Text::Deep),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Text::Array),
            members(inner).prop_map(Text::Object),
        ]
    })
}

/// Members with names from a small set (so some come twice), some spelled with an escape.
fn members(value: impl Strategy<Value = Text>) -> impl Strategy<Value = Vec<(String, Text)>> {
    let name = prop_oneof![
        5 => prop::sample::select(vec!["ok", "n", "mfa", "level", "x", "type", "id"]).prop_map(quoted),
        1 => prop::sample::select(vec![r#""\u006fk""#, r#""o\u006b""#, r#""x\ud800""#])
            .prop_map(str::to_string),
    ];
    prop::collection::vec((name, value), 0..4)
}

/// `{"type", "id"}` (sometimes more, or less, or twice).
fn entity(types: Vec<&'static str>) -> impl Strategy<Value = Text> {
    (
        prop::sample::select(types).prop_map(quoted),
        string(),
        prop::option::of(members(value()).prop_map(Text::Object)),
        prop::collection::vec(("\"extra\"|\"id\"|\"type\"|\"properties\"", value()), 0..2),
        any::<bool>(),
    )
        .prop_map(|(ty, id, properties, extra, swap)| {
            let mut members = vec![("\"type\"".to_string(), Text::Raw(ty))];
            members.push(("\"id\"".to_string(), Text::Raw(id)));
            if swap {
                members.reverse();
            }
            if let Some(properties) = properties {
                members.push(("\"properties\"".to_string(), properties));
            }
            members.extend(extra);
            Text::Object(members)
        })
}

fn action() -> impl Strategy<Value = Text> {
    (
        prop::sample::select(vec!["read", "write", "poke", "nope"]).prop_map(quoted),
        prop::collection::vec(("\"name\"|\"extra\"|\"properties\"", value()), 0..2),
    )
        .prop_map(|(name, extra)| {
            let mut members = vec![("\"name\"".to_string(), Text::Raw(name))];
            members.extend(extra);
            Text::Object(members)
        })
}

/// The parts of an evaluation (each present with probability `p`, mostly valid), members the
/// API does not have (some named like a part: given twice, or under another spelling), in any
/// order.
fn parts(p: f64) -> impl Strategy<Value = Vec<(String, Text)>> {
    let context = prop_oneof![
        4 => members(value()).prop_map(Text::Object),
        1 => Just(Text::Raw("null".into())),
    ];
    let other = prop::sample::select(vec![
        "\"x\"",
        "\"x\"",
        "\"x\"",
        "\"y\"",
        "\"subject\"",
        "\"context\"",
        "\"subj\\u0065ct\"",
        "\"x\\ud800\"",
    ]);
    (
        prop::option::weighted(p, entity(vec!["User", "User", "User", "Ghost"])),
        prop::option::weighted(p, action()),
        prop::option::weighted(p, entity(vec!["Doc", "Doc", "Doc", "Group"])),
        prop::option::weighted(p / 2.0, context),
        prop::collection::vec((other, value()), 0..4),
    )
        .prop_flat_map(|(subject, action, resource, context, others)| {
            let mut members: Vec<(String, Text)> = others
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect();
            for (name, part) in [
                ("\"subject\"", subject),
                ("\"action\"", action),
                ("\"resource\"", resource),
                ("\"context\"", context),
            ] {
                if let Some(part) = part {
                    members.push((name.to_string(), part));
                }
            }
            Just(members).prop_shuffle()
        })
}

fn body() -> impl Strategy<Value = String> {
    (
        parts(0.9),
        prop::option::weighted(
            0.3,
            prop::collection::vec(parts(0.3).prop_map(Text::Object), 0..3),
        ),
        prop::option::weighted(
            0.1,
            prop::sample::select(vec![
                r#"{"evaluations_semantic":"deny_on_first_deny"}"#,
                r#"{"evaluations_semantic":"permit_on_first_permit"}"#,
                r#"{"evaluations_semantic":"sometimes"}"#,
                "5",
            ]),
        ),
        prop::collection::vec(prop::sample::select(vec!["", "", "", " ", "\n  "]), 64),
    )
        .prop_map(|(mut top, items, options, spaces)| {
            if let Some(items) = items {
                top.push(("\"evaluations\"".to_string(), Text::Array(items)));
            }
            if let Some(options) = options {
                top.push(("\"options\"".to_string(), Text::Raw(options.to_string())));
            }
            let mut out = String::new();
            Text::Object(top).render(&mut spaces.into_iter().cycle(), &mut out);
            out
        })
}

/// Values the one-pass reader reads: no escape, shallow, names from a small set.
fn plain_value() -> impl Strategy<Value = Text> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "true", "false", "null", "0", "-0", "7", "1.5", "\"s\""
        ])
        .prop_map(|t| Text::Raw(t.into())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Text::Array),
            prop::collection::vec((plain_name(), inner), 0..3).prop_map(Text::Object),
        ]
    })
}

fn plain_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["x", "y", "ok", "n"]).prop_map(quoted)
}

/// Context members of the declared `Decimal` (`d`) and enumerated `Shade` (`c`) types, valid
/// and not: both readers must decode the valid ones alike and leave the others invalid.
fn typed_member() -> impl Strategy<Value = (String, Text)> {
    let decimal = prop::sample::select(vec![
        "\"1.5\"",
        "\"-0.25\"",
        "\"0.0001\"",
        "\"922337203685477.5807\"",
        "\"1.23456\"",
        "\"1.\"",
        "\"x\"",
        "1.5",
        "2",
        r#"{"__extn": {"fn": "decimal", "arg": "2.5"}}"#,
        r#"{"__extn": {"fn": "decimal", "arg": "2.55555"}}"#,
    ]);
    let shade = prop::sample::select(vec![
        "\"red\"",
        "\"green\"",
        "\"purple\"",
        "\"Red\"",
        "\"\"",
        r#"{"type": "Shade", "id": "green"}"#,
        r#"{"type": "Shade", "id": "blue"}"#,
        r#"{"type": "User", "id": "red"}"#,
        "3",
    ]);
    prop_oneof![
        decimal.prop_map(|t| (quoted("d"), Text::Raw(t.into()))),
        shade.prop_map(|t| (quoted("c"), Text::Raw(t.into()))),
    ]
}

/// A generated body, or one a client would send, with members the API does not have (named
/// from a small set, so some come twice).
fn any_body() -> impl Strategy<Value = String> {
    let plain = (
        prop::sample::select(vec!["alice", "bob", "carol"]),
        prop::sample::select(vec!["read", "write", "poke"]),
        prop::sample::select(vec!["d1", "d2"]),
        prop::option::of(prop::collection::vec((plain_name(), plain_value()), 0..4)),
        prop::collection::vec((plain_name(), plain_value()), 0..4),
        prop::collection::vec((plain_name(), plain_value()), 0..3),
        prop::collection::vec(typed_member(), 0..3),
    )
        .prop_map(
            |(subject, action, resource, context, extra, subject_extra, typed)| {
                // Typed members join the context (made when there is none), so a body holds
                // up to two of each kind, or the same name twice.
                let context = match (context, typed.is_empty()) {
                    (context, true) => context,
                    (context, false) => {
                        let mut members = context.unwrap_or_default();
                        members.extend(typed);
                        Some(members)
                    }
                };
                let mut subject_members = vec![
                    ("\"type\"".to_string(), Text::Raw("\"User\"".into())),
                    ("\"id\"".to_string(), Text::Raw(quoted(subject))),
                ];
                subject_members.extend(subject_extra);
                let mut members = vec![
                    ("\"subject\"".to_string(), Text::Object(subject_members)),
                    (
                        "\"action\"".to_string(),
                        Text::Object(vec![("\"name\"".to_string(), Text::Raw(quoted(action)))]),
                    ),
                    (
                        "\"resource\"".to_string(),
                        Text::Object(vec![
                            ("\"type\"".to_string(), Text::Raw("\"Doc\"".into())),
                            ("\"id\"".to_string(), Text::Raw(quoted(resource))),
                        ]),
                    ),
                ];
                if let Some(context) = context {
                    members.push(("\"context\"".to_string(), Text::Object(context)));
                }
                members.extend(extra);
                let mut out = String::new();
                Text::Object(members).render(&mut std::iter::empty(), &mut out);
                out
            },
        );
    prop_oneof![body(), plain]
}

/// What a decoding came to: refused as malformed (400), invalid (a deny; its reason may spell a
/// number as written or as `serde_json` prints it), or a request and its decision.
fn outcome(decoded: Result<eval::Request, RequestError>) -> Result<(String, bool), String> {
    match decoded {
        Ok(request) => {
            let allowed = eval::decide(&FIXTURE.engine.program, &request).allowed;
            Ok((format!("{request:?}"), allowed))
        }
        Err(RequestError::Invalid(_)) => Ok(("invalid".to_string(), false)),
        Err(RequestError::Malformed(_)) => Err("malformed".to_string()),
    }
}

fn check(body: &str) -> Result<(), TestCaseError> {
    let state = &FIXTURE.state;
    for batch in [false, true] {
        let all = answer_body(state, body.as_bytes(), batch, Readers::All);
        let ordinary = answer_body(state, body.as_bytes(), batch, Readers::Ordinary);
        prop_assert_eq!(
            all.0,
            ordinary.0,
            "batch {}: {}",
            batch,
            String::from_utf8_lossy(&all.1)
        );
        if all.0 == 200 {
            prop_assert_eq!(all.1, ordinary.1, "batch {}", batch);
        }
    }
    let program = &FIXTURE.engine.program;
    let now = jiff::Timestamp::UNIX_EPOCH;
    let reference = read_with(program, body.as_bytes(), now, Reader::Ordinary)
        .map(outcome)
        .unwrap();
    for reader in [Reader::OnePass, Reader::Skeleton] {
        if let Some(decoded) = read_with(program, body.as_bytes(), now, reader) {
            prop_assert_eq!(&outcome(decoded), &reference, "{:?}", reader);
        }
    }
    let bytes = eval::request::read(program, body.as_bytes(), now)
        .map_or_else(|error| outcome(Err(error)), |request| outcome(Ok(request)));
    prop_assert_eq!(bytes, reference, "read");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_reader_accepts_and_decides_what_the_ordinary_reader_does(body in any_body()) {
        check(&body)?;
    }
}

/// Bodies that were read differently by the fast readers before: each alike now.
#[test]
fn bodies_the_fast_readers_once_read_otherwise() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let alice_d1 = r#""subject":{"type":"User","id":"alice"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}"#;
    for body in [
        format!(r#"{{{alice_d1},"x":"\ud800"}}"#),
        format!(r#"{{{alice_d1},"x":{deep}}}"#),
        r#"{"subject":{"type":"User","id":"bob"},"subject":{"type":"User","id":"alice"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"}}"#.to_string(),
        format!(r#"{{{alice_d1},"x":1,"x":2}}"#),
        r#"{"subject":{"type":"User","id":"alice","x":1,"x":2},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}}"#.to_string(),
        r#"{"subject":{"type":"User","id":"frank"},"resource":{"type":"Doc","id":"d1"},"eva$luations":[{"action":{"na\ud800me":"list"}}],"evaluations":[{"action":{"name":"read"}}]}"#.to_string(),
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"poke"},"resource":{"type":"Doc","id":"d1"},"context":{"n":-0}}"#.to_string(),
        r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"write"},"resource":{"type":"Doc","id":"d1"},"context":{"n":-0,"ok":true}}"#.to_string(),
    ] {
        check(&body).unwrap();
    }
}

/// The `decode` fuzz target's corpus (`fuzz/corpus/decode/`, reproducers included), held to the
/// same property on the stable toolchain.
#[test]
fn the_decode_fuzz_corpus_is_read_alike_by_every_reader() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        check(&String::from_utf8_lossy(&bytes)).unwrap();
        replayed += 1;
    }
    assert!(replayed >= 5, "only {replayed} inputs in {}", dir.display());
}
