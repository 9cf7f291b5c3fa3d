//! What a bearer JWT must carry besides a good signature: the configured `iss` and `aud`
//! (missing is refused like wrong), an `exp` within the maximum lifetime; and keys that stop
//! verifying once their file, or their JWKS entry, is removed.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value as JsonValue, json};

use super::*;
use crate::server::{Reply, TestServer};

const URI: &str = "/albums/a1/photos/p1";

/// What nginx's `/_warden` location sends for `GET URI` with `token`.
pub(super) async fn forward(server: &TestServer, token: &str) -> Reply {
    server
        .http
        .send(
            "GET",
            "/forward-auth/nginx",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", URI),
                ("authorization", &bearer(token)),
            ],
            "",
        )
        .await
}

/// An AuthZEN evaluation for alice carrying `token` in `Warden-Subject-Token`.
async fn subject_token(server: &TestServer, token: &str) -> Reply {
    let body = json!({
        "subject": {"type": "User", "id": "alice"},
        "action": {"name": "view"},
        "resource": {"type": "Photo", "id": "p1"},
    })
    .to_string();
    server
        .http
        .send(
            "POST",
            "/access/v1/evaluation",
            &[
                ("content-type", "application/json"),
                ("warden-subject-token", token),
            ],
            body,
        )
        .await
}

/// alice's claims with `changes` applied (`null` removes a claim).
fn alice(changes: JsonValue) -> String {
    let mut claims = claims("alice");
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    sign(Algorithm::ES256, &claims)
}

/// For each `(what, claim changes, status)`, alice's token gets `status` on forward-auth (a
/// 401 with an `invalid_token` challenge) and as `Warden-Subject-Token`.
async fn both_answer(server: &TestServer, cases: &[(&str, JsonValue, u16)]) {
    for (what, changes, status) in cases {
        let token = alice(changes.clone());
        let reply = forward(server, &token).await;
        assert_eq!(
            reply.status, *status,
            "forward-auth, {what}: {}",
            reply.body
        );
        if *status == 401 {
            let challenge = reply.header("www-authenticate").unwrap_or_default();
            assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        }
        let reply = subject_token(server, &token).await;
        assert_eq!(
            reply.status, *status,
            "Warden-Subject-Token, {what}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_missing_issuer_or_audience_is_refused_like_a_wrong_one() {
    let mut config = gateway_config(&example_policies());
    config.gateway.authzen_subject_token = true;
    let server = TestServer::start(config).await;
    let cases = [
        ("right", json!({}), 200),
        ("no iss", json!({"iss": null}), 401),
        ("no aud", json!({"aud": null}), 401),
        ("neither", json!({"iss": null, "aud": null}), 401),
        ("wrong iss", json!({"iss": "https://evil.example"}), 401),
        ("wrong aud", json!({"aud": "another-api"}), 401),
        ("aud among others", json!({"aud": ["x", AUDIENCE]}), 200),
    ];
    both_answer(&server, &cases).await;
    server.running.shutdown().await;

    // Without `jwt_issuer` and `jwt_audience`, neither claim is needed.
    let mut config = gateway_config(&example_policies());
    config.gateway.jwt_issuer = None;
    config.gateway.jwt_audience = None;
    let server = TestServer::start(config).await;
    let token = alice(json!({"iss": null, "aud": null}));
    assert_eq!(forward(&server, &token).await.status, 200);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_token_lives_at_most_the_maximum_lifetime() {
    let mut config = gateway_config(&example_policies());
    config.gateway.authzen_subject_token = true;
    let server = TestServer::start(config).await;
    let hour = 3600;
    let cases = [
        ("an hour", json!({}), 200),
        ("exp = 2^63", json!({"exp": 1u64 << 63}), 401),
        ("exp = u64::MAX", json!({"exp": u64::MAX}), 401),
        (
            "25 h from iat",
            json!({"iat": now() - hour, "exp": now() + 24 * hour}),
            401,
        ),
        (
            "25 h from now, no iat",
            json!({"iat": null, "exp": now() + 25 * hour}),
            401,
        ),
        (
            "25 h from now, iat in the future",
            json!({"iat": now() + 2 * hour, "exp": now() + 25 * hour}),
            401,
        ),
        (
            "23 h, no iat",
            json!({"iat": null, "exp": now() + 23 * hour}),
            200,
        ),
        (
            "24 h less a minute from iat",
            json!({"iat": now(), "exp": now() + 24 * hour - 60}),
            200,
        ),
    ];
    both_answer(&server, &cases).await;
    server.running.shutdown().await;

    // A configured maximum.
    let mut config = gateway_config(&example_policies());
    config.gateway.jwt_max_lifetime_s = 600;
    let server = TestServer::start(config).await;
    let token = alice(json!({"iat": now(), "exp": now() + 540}));
    assert_eq!(forward(&server, &token).await.status, 200);
    let token = alice(json!({}));
    assert_eq!(forward(&server, &token).await.status, 401);
    server.running.shutdown().await;
}

/// Asks until `token` gets `status`, or fails after a few reload delays.
async fn until(server: &TestServer, token: &str, status: u16, what: &str) {
    let probe = async || {
        let got = forward(server, token).await.status;
        if got == status { Ok(()) } else { Err(got) }
    };
    let what = format!("{what}: {status}");
    crate::support::poll(
        &what,
        Duration::from_secs(20),
        Duration::from_millis(100),
        probe,
    )
    .await;
}

#[tokio::test]
async fn a_deleted_key_file_stops_verifying_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ec = dir.path().join("ec.pem");
    std::fs::copy(keys().join("ec.pem"), &ec).unwrap();
    let secret = dir.path().join("hs.secret");
    std::fs::copy(keys().join("hs.secret"), &secret).unwrap();
    let mut config = gateway_config(&example_policies());
    config.gateway.jwt_keys = vec![
        KeySource::parse(&format!("ES256:{}", ec.display())).unwrap(),
        KeySource::parse(&format!("HS256:{}", secret.display())).unwrap(),
    ];
    let server = TestServer::start(config).await;
    let es = sign(Algorithm::ES256, &claims("alice"));
    let hs = sign(Algorithm::HS256, &claims("alice"));
    assert_eq!(forward(&server, &es).await.status, 200);
    assert_eq!(forward(&server, &hs).await.status, 200);

    // A corrupt change keeps the old key.
    std::fs::write(&ec, "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(forward(&server, &es).await.status, 200, "a corrupt file");
    // A deletion is deliberate: the key goes (the token was cached, and is not any more).
    std::fs::remove_file(&ec).unwrap();
    until(&server, &es, 401, "the deleted key's token").await;
    assert_eq!(forward(&server, &hs).await.status, 200, "the other key");
    // Put back, it verifies again.
    std::fs::copy(keys().join("ec.pem"), &ec).unwrap();
    until(&server, &es, 200, "the restored key's token").await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_removed_jwks_entry_stops_verifying_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = |private: &str, alg: Algorithm, kid: &str| {
        let bytes = std::fs::read(keys().join(private)).unwrap();
        let key = match alg {
            Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&bytes).unwrap(),
            _ => jsonwebtoken::EncodingKey::from_secret(
                String::from_utf8(bytes).unwrap().trim().as_bytes(),
            ),
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        jwk
    };
    let ec = jwk("ec-private.pem", Algorithm::ES256, "k1");
    let hs = jwk("hs.secret", Algorithm::HS256, "k2");
    let jwks = dir.path().join("jwks.json");
    let write = |keys: Vec<Jwk>| {
        std::fs::write(&jwks, serde_json::to_string(&JwkSet { keys }).unwrap()).unwrap();
    };
    write(vec![ec.clone(), hs.clone()]);
    let mut config = gateway_config(&example_policies());
    config.gateway.jwt_keys = vec![KeySource::parse(&format!("jwks:{}", jwks.display())).unwrap()];
    let server = TestServer::start(config).await;
    let token = |alg: Algorithm, kid: &str| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        sign_with(header, &claims("alice"))
    };
    let k1 = token(Algorithm::ES256, "k1");
    let k2 = token(Algorithm::HS256, "k2");
    assert_eq!(forward(&server, &k1).await.status, 200);
    assert_eq!(forward(&server, &k2).await.status, 200);
    write(vec![hs]);
    until(&server, &k1, 401, "the removed entry's token").await;
    assert_eq!(forward(&server, &k2).await.status, 200, "the entry kept");
    // Every entry removed: no token verifies.
    write(Vec::new());
    until(&server, &k2, 401, "a token of an empty set").await;
    server.running.shutdown().await;
}

#[test]
fn the_maximum_lifetime_and_case_are_configured() {
    use warden::server::{Config, ConfigLayer};
    let resolve = |text: &str| Config::resolve(toml::from_str::<ConfigLayer>(text).unwrap());
    let config = resolve("jwt_max_lifetime_s = 600\nroutes_ignore_case = true\n").unwrap();
    assert_eq!(config.gateway.jwt_max_lifetime_s, 600);
    assert!(config.gateway.routes_ignore_case);
    let defaults = resolve("").unwrap();
    assert_eq!(defaults.gateway.jwt_max_lifetime_s, 24 * 3600);
    assert!(!defaults.gateway.routes_ignore_case);
    let zero = resolve("jwt_max_lifetime_s = 0\n").unwrap_err();
    assert!(zero.to_string().contains("`jwt_max_lifetime_s`"), "{zero}");
    // The effective configuration names both.
    let effective = config.effective_toml();
    assert!(
        effective.contains("jwt_max_lifetime_s = 600"),
        "{effective}"
    );
    assert!(
        effective.contains("routes_ignore_case = true"),
        "{effective}"
    );
}
