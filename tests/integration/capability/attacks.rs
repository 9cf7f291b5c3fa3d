//! Every attack the issue lists denies: tampering, removed or reordered caveats, widening
//! caveats, expiry, unknown and rotated-out keys, another subject, revocation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use warden::capability::{Caveat, EntityText, Keyring, attenuate};

use super::*;

/// Rewrites a token's lines (header first) and keeps its tag: what an attacker without the
/// key can do.
fn rewrite(token: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let rest = token.strip_prefix("wcap1.").unwrap();
    let (body, tag) = rest.split_once('.').unwrap();
    let body = String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    let mut lines: Vec<String> = body.split('\n').map(str::to_string).collect();
    edit(&mut lines);
    format!(
        "wcap1.{}.{tag}",
        URL_SAFE_NO_PAD.encode(lines.join("\n").as_bytes())
    )
}

fn nadia() -> EntityText {
    EntityText::new("User", "nadia")
}

/// The caveats olive's key carries, for minting it under other keys.
fn greenhouse_caveats(expires: Timestamp) -> Vec<Caveat> {
    vec![
        Caveat::Capability("greenhouse_key".into()),
        Caveat::Resource(EntityText::new("Greenhouse", "glasshouse")),
        Caveat::Actions(vec!["enter".into(), "water".into()]),
        Caveat::Expires(expires),
        Caveat::Holder(nadia()),
    ]
}

fn in_a_week() -> Timestamp {
    Timestamp::now()
        .checked_add(SignedDuration::from_hours(24 * 7))
        .unwrap()
}

#[tokio::test]
async fn every_attack_denies() {
    let keys_dir = KeyDir::new(&["k1", "k9"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    assert!(decide(http, "nadia", "water", GLASSHOUSE, Some(&key)).await);
    let water = |token: String| async move {
        decide(http, "nadia", "water", GLASSHOUSE, Some(&token)).await
    };

    // A flipped byte, anywhere: in the header, a caveat, the tag.
    for position in [8, 40, 120, key.len() / 2, key.len() - 3] {
        let mut bytes = key.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(!water(tampered).await, "flipped byte {position}");
    }
    // A caveat removed (the holder: anyone could use it), or two swapped.
    let unbound = rewrite(&key, |lines| lines.retain(|l| !l.starts_with("holder")));
    assert!(!decide(http, "kai", "water", GLASSHOUSE, Some(&unbound)).await);
    assert!(!water(unbound).await);
    assert!(!water(rewrite(&key, |lines| lines.swap(2, 3))).await);
    // A caveat appended without extending the chain.
    assert!(!water(rewrite(&key, |lines| lines.push("actions = water".into()))).await);

    // Caveats that try to widen, appended properly: they narrow or change nothing.
    let more_actions = attenuate(
        &key,
        &[Caveat::Actions(vec!["water".into(), "sell".into()])],
    )
    .unwrap();
    assert!(water(more_actions.clone()).await);
    assert!(!decide(http, "nadia", "sell", HOME, Some(&more_actions)).await);
    let parent = attenuate(&key, &[Caveat::Within(EntityText::new("House", "home"))]).unwrap();
    assert!(water(parent.clone()).await);
    assert!(!decide(http, "nadia", "enter", HOME, Some(&parent)).await);
    let later = attenuate(
        &key,
        &[Caveat::Expires(
            Timestamp::from_second(4_102_444_800).unwrap(),
        )],
    )
    .unwrap();
    assert!(water(later).await);
    let other_holder = attenuate(&key, &[Caveat::Holder(EntityText::new("User", "kai"))]).unwrap();
    assert!(!decide(http, "kai", "water", GLASSHOUSE, Some(&other_holder)).await);
    assert!(!water(other_holder).await);

    // Expired.
    let expired = attenuate(
        &key,
        &[Caveat::Expires(
            Timestamp::from_second(1_000_000_000).unwrap(),
        )],
    )
    .unwrap();
    assert!(!water(expired).await);

    // Bound to another subject.
    assert!(!decide(http, "kai", "water", GLASSHOUSE, Some(&key)).await);

    // An unknown key id: minted under `k9`, which this Warden does not have.
    let foreign = Keyring::load_specs(&[keys_dir.spec("k9")], SignedDuration::ZERO).unwrap();
    let (forged, _) = warden::capability::mint(&foreign, &greenhouse_caveats(in_a_week())).unwrap();
    assert!(!water(forged).await);
    // Same key id `k1`, another secret.
    std::fs::write(keys_dir.dir.path().join("k1-other"), "f".repeat(64)).unwrap();
    let impostor = Keyring::load_specs(
        &[format!(
            "k1:{}",
            keys_dir.dir.path().join("k1-other").display()
        )],
        SignedDuration::ZERO,
    )
    .unwrap();
    let (forged, _) =
        warden::capability::mint(&impostor, &greenhouse_caveats(in_a_week())).unwrap();
    assert!(!water(forged).await);

    // A token for another audience.
    let elsewhere = attenuate(&key, &[Caveat::Audience("another-warden".into())]).unwrap();
    assert!(!water(elsewhere).await);

    // Revoked.
    let id = warden::capability::parse(&key).unwrap().id().to_string();
    let reply = http
        .post_json("/v1/capabilities/revoke", &serde_json::json!({ "id": id }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!water(key).await);
    server.running.shutdown().await;
}

/// Key rotation: `k2` signs; `k1` is retired. Within the grace period a `k1` token still
/// works; after it, it does not.
#[tokio::test]
async fn a_rotated_out_key_works_only_through_its_grace_period() {
    let keys_dir = KeyDir::new(&["k1", "k2"]);
    let old = Keyring::load_specs(&[keys_dir.spec("k1")], SignedDuration::ZERO).unwrap();
    let (old_token, _) = warden::capability::mint(&old, &greenhouse_caveats(in_a_week())).unwrap();

    for (retired, grace_s, works) in [
        (Timestamp::now(), 3600, true),
        (Timestamp::from_second(1_600_000_000).unwrap(), 3600, false),
    ] {
        let mut config = config(&keys_dir);
        config.capabilities.keys = vec![
            keys_dir.spec("k2"),
            format!("{}:retired={retired}", keys_dir.spec("k1")),
        ];
        config.capabilities.grace = std::time::Duration::from_secs(grace_s);
        let server = TestServer::start(config).await;
        let http = &server.http;
        assert_eq!(
            decide(http, "nadia", "water", GLASSHOUSE, Some(&old_token)).await,
            works,
            "k1 retired at {retired}"
        );
        // New tokens are minted under k2, and work.
        let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
        assert_eq!(warden::capability::parse(&key).unwrap().key_id(), "k2");
        assert!(decide(http, "nadia", "water", GLASSHOUSE, Some(&key)).await);
        server.running.shutdown().await;
    }
}
