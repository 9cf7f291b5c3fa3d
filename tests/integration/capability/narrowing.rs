//! The property: whatever caveats are appended, in whatever order, a token never allows a
//! request its original did not. Decided by the engine, over every request of a small world.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;
use warden::capability::present::Verifier;
use warden::capability::{Caveat, EntityText, Keyring, Revocations, attenuate};
use warden::engine::Engine;

use super::*;

const SUBJECTS: [&str; 3] = ["olive", "nadia", "kai"];
const ACTIONS: [&str; 3] = ["enter", "water", "sell"];
const RESOURCES: [(&str, &str); 3] = [
    ("Greenhouse", "glasshouse"),
    ("House", "home"),
    ("Greenhouse", "shed"),
];

fn base() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn entity() -> impl Strategy<Value = EntityText> {
    prop_oneof![
        proptest::sample::select(&RESOURCES[..]).prop_map(|(t, i)| EntityText::new(t, i)),
        proptest::sample::select(&SUBJECTS[..]).prop_map(|s| EntityText::new("User", s)),
    ]
}

fn caveat() -> impl Strategy<Value = Caveat> {
    prop_oneof![
        proptest::sample::subsequence(ACTIONS.to_vec(), 1..=3)
            .prop_map(|a| Caveat::Actions(a.into_iter().map(str::to_string).collect())),
        entity().prop_map(Caveat::Resource),
        entity().prop_map(Caveat::Within),
        proptest::sample::select(&SUBJECTS[..])
            .prop_map(|s| Caveat::Holder(EntityText::new("User", s))),
        (0i64..30).prop_map(|days| Caveat::Expires(
            base()
                .checked_add(SignedDuration::from_hours(24 * days))
                .unwrap()
        )),
        proptest::sample::select(vec!["here", "there"])
            .prop_map(|a| Caveat::Audience(a.to_string())),
        Just(Caveat::Capability("greenhouse_key".into())),
        Just(Caveat::Capability("another".into())),
        Just(Caveat::MintedBy(EntityText::new("User", "kai"))),
    ]
}

/// Every request of the world, at three times, decided with `token` presented.
fn decisions(engine: &Engine, verifier: &Verifier, token: &str) -> Vec<bool> {
    let program = &engine.program;
    let mut out = Vec::new();
    for subject in SUBJECTS {
        for action in ACTIONS {
            for (ty, id) in RESOURCES {
                for days in [0, 10, 20] {
                    let now = base()
                        .checked_add(SignedDuration::from_hours(24 * days))
                        .unwrap();
                    let body = json!({
                        "subject": { "type": "User", "id": subject },
                        "action": { "name": action },
                        "resource": { "type": ty, "id": id },
                    });
                    let allowed = match warden::eval::request::read(
                        program,
                        body.to_string().as_bytes(),
                        now,
                    ) {
                        Ok(mut request) => {
                            if let Ok(presented) = verifier.present(program, token, now) {
                                request.capability = Some(presented);
                            }
                            warden::eval::decide(program, &request).allowed
                        }
                        Err(_) => false,
                    };
                    out.push(allowed);
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn attenuation_never_widens(
        steps in proptest::collection::vec(proptest::collection::vec(caveat(), 1..3), 1..5),
        unbound in any::<bool>(),
    ) {
        let keys_dir = KeyDir::new(&["k1"]);
        let engine = Engine::load(&greenhouse()).unwrap();
        let verifier = Verifier::new(
            Keyring::load_specs(&[keys_dir.spec("k1")], SignedDuration::ZERO).unwrap(),
            std::sync::Arc::new(Revocations::in_memory()),
            Some("here".to_string()),
        );
        let mut caveats = vec![
            Caveat::Capability("greenhouse_key".into()),
            Caveat::Within(EntityText::new("House", "home")),
            Caveat::MintedBy(EntityText::new("User", "olive")),
            Caveat::Actions(vec!["enter".into(), "water".into()]),
            Caveat::Expires(base().checked_add(SignedDuration::from_hours(24 * 14)).unwrap()),
        ];
        if !unbound {
            caveats.push(Caveat::Holder(EntityText::new("User", "nadia")));
        }
        let (original, _) = warden::capability::mint(&verifier.keyring, &caveats).unwrap();
        let before = decisions(&engine, &verifier, &original);
        let mut token = original;
        for step in steps {
            token = attenuate(&token, &step).unwrap();
            let after = decisions(&engine, &verifier, &token);
            for (index, (was, is)) in before.iter().zip(&after).enumerate() {
                prop_assert!(!is || *was, "request {index} allowed only after {step:?}");
            }
        }
    }
}

/// The world is rich enough for the property to mean something: the original token allows
/// requests the policy alone does not, and some attenuation takes them away.
#[test]
fn the_property_has_teeth() {
    let keys_dir = KeyDir::new(&["k1"]);
    let engine = Engine::load(&greenhouse()).unwrap();
    let verifier = Verifier::new(
        Keyring::load_specs(&[keys_dir.spec("k1")], SignedDuration::ZERO).unwrap(),
        std::sync::Arc::new(Revocations::in_memory()),
        None,
    );
    let caveats = vec![
        Caveat::Capability("greenhouse_key".into()),
        Caveat::Within(EntityText::new("House", "home")),
        Caveat::MintedBy(EntityText::new("User", "olive")),
        Caveat::Actions(vec!["enter".into(), "water".into()]),
        Caveat::Expires(
            base()
                .checked_add(SignedDuration::from_hours(24 * 14))
                .unwrap(),
        ),
    ];
    let (token, _) = warden::capability::mint(&verifier.keyring, &caveats).unwrap();
    let none = decisions(&engine, &verifier, "not a token");
    let with = decisions(&engine, &verifier, &token);
    let granted = with.iter().zip(&none).filter(|(w, n)| **w && !**n).count();
    assert!(granted >= 4, "the token grants only {granted} requests");
    let narrowed = attenuate(&token, &[Caveat::Actions(vec!["water".into()])]).unwrap();
    let fewer = decisions(&engine, &verifier, &narrowed);
    assert!(fewer.iter().filter(|a| **a).count() < with.iter().filter(|a| **a).count());
}
