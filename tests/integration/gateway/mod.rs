//! Gateways: forward-auth for nginx, Envoy and Traefik over the example policy in
//! `deploy/gateway-policies/routes`, with bearer JWTs minted here from the test keys in
//! `tests/data/gateway/`.

mod claims;
mod contracts;
mod jwt;
pub mod nginx;
mod routes;

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as JsonValue, json};
use warden::gateway::identity::KeySource;
use warden::server::Config;

pub const ISSUER: &str = "https://id.example";
pub const AUDIENCE: &str = "photos-api";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn keys() -> PathBuf {
    repo().join("tests/data/gateway")
}

pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Claims for `sub`, valid for an hour, from the expected issuer for the expected audience.
pub fn claims(sub: &str) -> JsonValue {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600})
}

/// A token signed with the test key of `alg`.
pub fn sign(alg: Algorithm, claims: &JsonValue) -> String {
    sign_with(Header::new(alg), claims)
}

pub fn sign_with(header: Header, claims: &JsonValue) -> String {
    let read = |name: &str| std::fs::read(keys().join(name)).unwrap();
    let key = match header.alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&read("ec-private.pem")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&read("ed-private.pem")).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&read("rsa-private.pem")).unwrap(),
        Algorithm::HS256 => EncodingKey::from_secret(
            String::from_utf8(read("hs.secret"))
                .unwrap()
                .trim()
                .as_bytes(),
        ),
        other => panic!("no test key for {other:?}"),
    };
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The server configuration of the examples: the route-based policy, the test keys of four
/// algorithms, issuer and audience checks, the `email` claim, upstream headers.
pub fn gateway_config(policies: &Path) -> Config {
    let mut config = crate::server::config(policies);
    config.watch = false;
    let key = |spec: &str| KeySource::parse(spec).unwrap();
    config.gateway.jwt_keys = vec![
        key(&format!("ES256:{}", keys().join("ec.pem").display())),
        key(&format!("EdDSA:{}", keys().join("ed.pem").display())),
        key(&format!("RS256:{}", keys().join("rsa.pem").display())),
        key(&format!("HS256:{}", keys().join("hs.secret").display())),
    ];
    config.gateway.jwt_issuer = Some(ISSUER.to_string());
    config.gateway.jwt_audience = Some(AUDIENCE.to_string());
    config.gateway.claims.attributes = vec![("email".to_string(), "email".to_string())];
    config.gateway.upstream_headers = vec![
        ("X-Warden-Subject".to_string(), "subject".to_string()),
        ("X-Warden-Roles".to_string(), "roles".to_string()),
    ];
    config
}

pub fn example_policies() -> PathBuf {
    repo().join("deploy/gateway-policies/routes")
}
