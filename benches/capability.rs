#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot set up has nothing to measure"
)]
//! Capability tokens: verification of a token with 1, 5 and 20 caveats (parse, key lookup, the
//! HMAC chain, the constant-time comparison), one attenuation, a mint, and the revocation
//! lookup of the hot path.
//!
//! Run: `cargo bench --bench capability`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use warden::capability::token::new_token_id;
use warden::capability::{
    Caveat, EntityText, Key, Keyring, Revocations, attenuate, mint, parse, verify,
};

fn keyring() -> Keyring {
    Keyring::new(
        vec![Key::new("k1", vec![0x5a; 32], None).expect("a key")],
        SignedDuration::from_hours(24),
    )
    .expect("a keyring")
}

/// `n` caveats as a mint and a few narrowings would write them.
fn caveats(n: usize) -> Vec<Caveat> {
    let expires: Timestamp = "2030-01-01T00:00:00Z".parse().expect("a time");
    let kinds = [
        Caveat::Capability("greenhouse".into()),
        Caveat::Within(EntityText::new("House", "12 Garden Lane")),
        Caveat::Actions(vec!["water".into(), "open".into()]),
        Caveat::Expires(expires),
        Caveat::MintedBy(EntityText::new("User", "alice")),
    ];
    kinds.iter().cycle().take(n).cloned().collect()
}

fn bench(c: &mut Criterion) {
    let keyring = keyring();
    let now: Timestamp = "2029-06-01T00:00:00Z".parse().expect("a time");
    let mut group = c.benchmark_group("capability");
    for n in [1, 5, 20] {
        let (token, _) = mint(&keyring, &caveats(n)).expect("mint");
        group.bench_function(format!("parse/{n}_caveats"), |b| {
            b.iter(|| parse(black_box(&token)).expect("parses"))
        });
        group.bench_function(format!("verify/{n}_caveats"), |b| {
            b.iter(|| verify(&keyring, black_box(&token), now).expect("verifies"))
        });
    }
    let (token, id) = mint(&keyring, &caveats(5)).expect("mint");
    let narrower = [Caveat::Actions(vec!["water".into()])];
    group.bench_function("attenuate/5_caveats_plus_1", |b| {
        b.iter(|| attenuate(black_box(&token), &narrower).expect("attenuates"))
    });
    group.bench_function("mint/5_caveats", |b| {
        b.iter(|| mint(&keyring, black_box(&caveats(5))).expect("mints"))
    });
    let revocations = Revocations::in_memory();
    for _ in 0..10_000 {
        let other = new_token_id().expect("random bytes");
        revocations.revoke(&other, now).expect("revokes");
    }
    group.bench_function("is_revoked/10k_ids", |b| {
        b.iter(|| revocations.is_revoked(black_box(&id)))
    });
    group.finish();
}

/// A decision that uses a capability, on the greenhouse example: the token already read
/// (what the evaluator adds), and from the token's text as the server does it (the verifier's
/// cache of verified tokens, the revocation lookup of its lineage, deciding). The first use of
/// a token also verifies it: `verify/N_caveats` above.
fn decide_with_capability(c: &mut Criterion) {
    use std::sync::Arc;
    use warden::capability::present::Verifier;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/greenhouse");
    let engine = warden::engine::Engine::load(&dir).expect("the greenhouse loads");
    let program = &engine.program;
    let now: Timestamp = "2029-06-01T00:00:00Z".parse().expect("a time");
    let verifier = Verifier::new(keyring(), Arc::new(Revocations::in_memory()), None);
    let (token, _) = mint(
        &verifier.keyring,
        &[
            Caveat::Capability("greenhouse_key".into()),
            Caveat::Resource(EntityText::new("Greenhouse", "glasshouse")),
            Caveat::Actions(vec!["enter".into(), "water".into()]),
            Caveat::Expires("2030-01-01T00:00:00Z".parse().expect("a time")),
            Caveat::Holder(EntityText::new("User", "nadia")),
            Caveat::MintedBy(EntityText::new("User", "olive")),
            Caveat::MintedAt("2029-05-30T00:00:00Z".parse().expect("a time")),
        ],
    )
    .expect("mint");
    let body = serde_json::json!({
        "subject": { "type": "User", "id": "nadia" },
        "action": { "name": "water" },
        "resource": { "type": "Greenhouse", "id": "glasshouse" },
    });
    let bare =
        warden::eval::request::read(program, body.to_string().as_bytes(), now).expect("decodes");
    let mut with = bare.clone();
    with.capability = Some(verifier.present(program, &token, now).expect("verifies"));
    assert!(warden::eval::decide(program, &with).allowed);
    assert!(!warden::eval::decide(program, &bare).allowed);
    let mut group = c.benchmark_group("capability");
    group.bench_function("decide/without_token", |b| {
        b.iter(|| warden::eval::decide(program, black_box(&bare)))
    });
    group.bench_function("decide/token_already_read", |b| {
        b.iter(|| warden::eval::decide(program, black_box(&with)))
    });
    group.bench_function("decide/from_token_text", |b| {
        b.iter(|| {
            let mut request = bare.clone();
            let presented = verifier
                .present(program, black_box(&token), now)
                .expect("ok");
            request.capability = Some(presented);
            warden::eval::decide(program, &request)
        })
    });
    group.finish();
}

criterion_group!(benches, bench, decide_with_capability);
criterion_main!(benches);
