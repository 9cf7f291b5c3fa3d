//! Findings of the adversarial review of capabilities (issue #10), one test each.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use warden::capability::mint::{MintRequest, authorize};
use warden::capability::present::Verifier;
use warden::capability::{Caveat, EntityText, Keyring, Revocations};
use warden::engine::Engine;

use super::*;

/// Handing on (`"from"`) re-mints under the signing key. A token under a retired key verifies
/// only until its grace ends; what is handed on from it must not outlive that, or a retired
/// (say, leaked) key's tokens live on under the new key until whatever expiry they name.
#[tokio::test]
async fn handing_on_never_outlives_the_grace_of_a_retired_key() {
    let keys_dir = KeyDir::new(&["k1", "k2"]);
    let retired = Timestamp::now();
    let grace_end = retired.checked_add(SignedDuration::from_hours(1)).unwrap();
    let mut config = config(&keys_dir);
    config.capabilities.keys = vec![
        keys_dir.spec("k2"),
        format!("{}:retired={retired}", keys_dir.spec("k1")),
    ];
    config.capabilities.grace = std::time::Duration::from_secs(3600);
    let server = TestServer::start(config).await;
    let http = &server.http;

    // A token under k1 (minted before its retirement), for a week.
    let old = Keyring::load_specs(&[keys_dir.spec("k1")], SignedDuration::ZERO).unwrap();
    let week = Timestamp::now()
        .checked_add(SignedDuration::from_hours(24 * 7))
        .unwrap();
    let (old_token, _) = warden::capability::mint(
        &old,
        &[
            Caveat::Capability("greenhouse_key".into()),
            Caveat::Resource(EntityText::new("Greenhouse", "glasshouse")),
            Caveat::Actions(vec!["enter".into(), "water".into()]),
            Caveat::Expires(week),
            Caveat::Holder(EntityText::new("User", "nadia")),
        ],
    )
    .unwrap();
    assert!(decide(http, "nadia", "water", GLASSHOUSE, Some(&old_token)).await);

    let handed = mint_as(
        http,
        "nadia",
        &json!({ "from": old_token, "holder": { "type": "User", "id": "kai" } }),
    )
    .await;
    assert_eq!(handed.status, 201, "{}", handed.body);
    let token = handed.json()["token"].as_str().unwrap().to_string();
    let parsed = warden::capability::parse(&token).unwrap();
    assert_eq!(parsed.key_id(), "k2");
    let expires = parsed.expires().unwrap();
    assert!(
        expires <= grace_end,
        "handed on from a k1 token whose grace ends at {grace_end}, it lives until {expires}"
    );
    server.running.shutdown().await;
}

/// Handing on takes `holder`, `actions` and `lifetime`. A narrowing it does not apply (here an
/// `audience`, which minting takes) must be refused, not dropped: dropped, the holder gets a
/// token wider than the one asked for, and is not told.
#[tokio::test]
async fn handing_on_refuses_a_narrowing_it_would_drop() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    for (field, value) in [
        ("audience", json!("greenhouse-gateway")),
        (
            "resource",
            json!({ "type": "Greenhouse", "id": "glasshouse" }),
        ),
        ("within", json!(true)),
        ("capability", json!("greenhouse_key")),
        ("context", json!({})),
    ] {
        let mut body = json!({ "from": key, "holder": { "type": "User", "id": "kai" } });
        body[field] = value;
        let reply = mint_as(http, "nadia", &body).await;
        assert_eq!(reply.status, 400, "{field}: {}", reply.body);
        assert!(reply.body.contains(field), "{field}: {}", reply.body);
    }
    server.running.shutdown().await;
}

/// A holder or audience that no caveat can spell is the caller's mistake: a 400 that says
/// why, never a 500 (nor an error in the server's log).
#[tokio::test]
async fn an_unwritable_holder_or_audience_is_a_bad_request() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;
    let mut bad_holder = greenhouse_key_for("nadia");
    bad_holder["holder"] = json!({ "type": "Us er", "id": "nadia" });
    let mut empty_audience = greenhouse_key_for("nadia");
    empty_audience["audience"] = json!("");
    let mut spaced_audience = greenhouse_key_for("nadia");
    spaced_audience["audience"] = json!(" gateway");
    for body in [bad_holder, empty_audience, spaced_audience] {
        let reply = mint_as(http, "olive", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.contains("caveat"), "{body}: {}", reply.body);
    }
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    let reply = mint_as(
        http,
        "nadia",
        &json!({ "from": key, "holder": { "type": "Us er", "id": "kai" } }),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    server.running.shutdown().await;
}

/// `warden capability mint` exits 3 for a request that cannot be right (docs/capabilities.md),
/// a holder no caveat can spell among them; 4 is for internal errors.
#[test]
fn the_cli_refuses_an_unwritable_holder_as_invalid_input() {
    let keys_dir = KeyDir::new(&["k1"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "capability",
            "mint",
            "-p",
            greenhouse().to_str().unwrap(),
            "--keys",
            &keys_dir.spec("k1"),
            "--as",
            "User::\"olive\"",
            "--capability",
            "greenhouse_key",
            "--resource",
            "Greenhouse::\"glasshouse\"",
            "--holder",
            "Us er::\"nadia\"",
        ])
        .env_remove("WARDEN_CAPABILITY_KEYS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not an entity type"), "{stderr}");
}

/// An album shared by its owner, holding a photo its owner may not see: its photographer's.
fn shared_album(dir: &Path) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("policy.warden"),
        r#"entity User
entity Album { owner: User }
entity Photo in Album { owner: User }
action view on Album, Photo

@id("owner")
allow view if resource.owner == subject

@id("album-link")
capability album_link on Album, Photo {
  allow view
  lifetime 1d
  delegable
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("data/entities.json"),
        r#"{ "entities": [
  { "type": "User", "id": "alice" },
  { "type": "User", "id": "bob" },
  { "type": "User", "id": "carol" },
  { "type": "Album", "id": "party", "attributes": { "owner": "alice" } },
  { "type": "Photo", "id": "bobs", "attributes": { "owner": "bob" }, "parents": ["party"] }
] }"#,
    )
    .unwrap();
}

/// "Nobody mints more than they hold" (docs/capabilities.md): minting decides a subtree token
/// (`within`) on its root; at use, its first minter must also be allowed the action on the
/// resource, so it never grants on what lies below that the minter may not do.
#[test]
fn a_subtree_token_grants_no_more_than_its_minter_holds() {
    let dir = tempfile::tempdir().unwrap();
    shared_album(dir.path());
    let engine = Engine::load(dir.path()).unwrap();
    let program = &engine.program;
    let keys_dir = KeyDir::new(&["k1"]);
    let verifier = Verifier::new(
        Keyring::load_specs(&[keys_dir.spec("k1")], SignedDuration::ZERO).unwrap(),
        Arc::new(Revocations::in_memory()),
        None,
    );
    let now = Timestamp::now();
    let may = |subject: &str, ty: &str, id: &str, token: Option<&str>| {
        let body = json!({
            "subject": { "type": "User", "id": subject },
            "action": { "name": "view" },
            "resource": { "type": ty, "id": id },
        });
        let mut request =
            warden::eval::request::read(program, body.to_string().as_bytes(), now).unwrap();
        if let Some(token) = token {
            request.capability = Some(verifier.present(program, token, now).unwrap());
        }
        warden::eval::decide(program, &request).allowed
    };
    // Alice may view her album, not Bob's photo in it.
    assert!(may("alice", "Album", "party", None));
    assert!(!may("alice", "Photo", "bobs", None));

    let caveats = authorize(
        program,
        &MintRequest {
            capability: "album_link".into(),
            minter: EntityText::new("User", "alice"),
            verified: None,
            resource: EntityText::new("Album", "party"),
            within: true,
            actions: None,
            lifetime: None,
            holder: Some(EntityText::new("User", "carol")),
            audience: None,
            context: None,
        },
        now,
    )
    .unwrap();
    let (token, _) = warden::capability::mint(&verifier.keyring, &caveats).unwrap();
    assert!(may("carol", "Album", "party", Some(&token)));
    assert!(
        !may("carol", "Photo", "bobs", Some(&token)),
        "Alice's token lets Carol view Bob's photo, which Alice may not view"
    );
}

/// `with capability NAME` in a policy test presents "a token for exactly this request"
/// (docs/language.md §15). For a capability that is not `delegable` every token names its
/// holder, so the token made for the request must be bound to its subject; unbound, it grants
/// nothing and the expectation fails for a reason no real token has.
#[test]
fn a_test_token_of_a_capability_that_is_not_delegable_is_bound_to_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("policy.warden"),
        r#"entity User
entity Doc { owner: User }
action read on Doc

@id("owner")
allow read if resource.owner == subject

@id("doc-key")
capability doc_key on Doc {
  allow read
  lifetime 1d
}

test "a key lets its holder read" {
  allow User::"bob" read Doc::"d1"
    with capability doc_key
    by "doc-key"
}

test "a key bound to another subject does not" {
  deny User::"bob" read Doc::"d1"
    with capability doc_key { holder: User::"carol" }
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("data/entities.json"),
        r#"{ "entities": [
  { "type": "User", "id": "alice" },
  { "type": "User", "id": "bob" },
  { "type": "User", "id": "carol" },
  { "type": "Doc", "id": "d1", "attributes": { "owner": "alice" } }
] }"#,
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["test", "-p", dir.path().to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A misspelt mint field is refused, never ignored: `holdr` would otherwise mint a bearer token.
#[tokio::test]
async fn a_misspelt_mint_field_is_refused() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let mut body = greenhouse_key_for("nadia");
    let holder = body.as_object_mut().unwrap().remove("holder").unwrap();
    body["holdr"] = holder;
    let reply = mint_as(&server.http, "olive", &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("did you mean `holder`"),
        "{}",
        reply.body
    );
    // A token far longer than any real one is refused before anything else.
    let long = format!("wcap1.{}.AAAA", "A".repeat(20_000));
    assert!(!decide(&server.http, "nadia", "water", GLASSHOUSE, Some(&long)).await);
    server.running.shutdown().await;
}
