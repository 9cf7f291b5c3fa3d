#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot set up has nothing to measure"
)]
//! Forward-auth decisions, JWT verification included: an nginx `auth_request` call on the
//! example policy (`deploy/gateway-policies/routes`), for ES256 and HS256 tokens, with and
//! without the verified-token cache, beside the same call with a trusted identity header (no
//! token at all). Route matching alone over 1,000 routes is measured too.
//!
//! Run: `cargo bench --bench gateway`

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use warden::check::route_table::{Part, Route, RouteTable, normalize};
use warden::gateway::identity::KeySource;
use warden::server::forward::{self, Flavour};
use warden::server::{AppState, Config, Settings, reload};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn state(cache: usize, identity_header: bool) -> AppState {
    let keys = repo().join("tests/data/gateway");
    let mut config = Config::default();
    config.gateway.jwt_keys = vec![
        KeySource::parse(&format!("ES256:{}", keys.join("ec.pem").display())).expect("key"),
        KeySource::parse(&format!("HS256:{}", keys.join("hs.secret").display())).expect("key"),
    ];
    config.gateway.jwt_cache = cache;
    config.gateway.upstream_headers = vec![("X-Warden-Subject".into(), "subject".into())];
    if identity_header {
        config.gateway.identity_header = Some("x-user".to_string());
    }
    let state = AppState::new(Settings::from(&config));
    let built = reload::build(&repo().join("deploy/gateway-policies/routes"), false, &[])
        .expect("the example policy loads");
    state.publish(built);
    let verifier = config.gateway.verifier().expect("keys load").map(Arc::new);
    state.gateway.verifier.store(verifier);
    state
}

fn token(alg: Algorithm) -> String {
    let keys = repo().join("tests/data/gateway");
    let key = match alg {
        Algorithm::ES256 => {
            EncodingKey::from_ec_pem(&std::fs::read(keys.join("ec-private.pem")).expect("key"))
                .expect("key")
        }
        _ => EncodingKey::from_secret(
            std::fs::read_to_string(keys.join("hs.secret"))
                .expect("key")
                .trim()
                .as_bytes(),
        ),
    };
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"sub": "alice", "exp": now + 3600, "roles": ["viewer"]});
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).expect("sign")
}

fn call(authorization: Option<&str>, user: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .uri("/forward-auth/nginx")
        .header("x-original-method", "GET")
        .header("x-original-uri", "/albums/a1/photos/p1")
        .header("x-forwarded-for", "192.0.2.1");
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    request.body(Body::empty()).expect("request")
}

fn forward_auth(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_auth");
    let header_state = state(0, true);
    let request = call(None, Some("alice"));
    assert_eq!(
        forward::answer(&header_state, Flavour::Nginx, &request).status(),
        200
    );
    group.bench_function("identity header (no token)", |b| {
        b.iter(|| forward::answer(&header_state, Flavour::Nginx, &request))
    });
    for (alg, name) in [(Algorithm::HS256, "HS256"), (Algorithm::ES256, "ES256")] {
        let auth = format!("Bearer {}", token(alg));
        let request = call(Some(&auth), None);
        for (cache, label) in [(0, "uncached"), (10_000, "cached")] {
            let state = state(cache, false);
            assert_eq!(
                forward::answer(&state, Flavour::Nginx, &request).status(),
                200
            );
            group.bench_function(format!("{name} {label}"), |b| {
                b.iter(|| forward::answer(&state, Flavour::Nginx, &request))
            });
        }
    }
    group.finish();
}

fn route_matching(c: &mut Criterion) {
    let mut table = RouteTable::default();
    for i in 0..500 {
        for (method, template) in [
            ("GET", format!("/svc{i}/items/{{item}}")),
            ("POST", format!("/svc{i}/items")),
        ] {
            table
                .insert(Route {
                    method: Some(method.into()),
                    template: template.into(),
                    action: "a".into(),
                    resource_type: "T".into(),
                    resource_id: Part::Literal("x".into()),
                    properties: Vec::new(),
                    location: "bench".into(),
                })
                .expect("no conflict");
        }
    }
    c.bench_function("route_matching/normalise + match of 1,000 routes", |b| {
        b.iter(|| {
            let path = normalize("/svc377/items/item-42?x=1").expect("valid");
            table.lookup("GET", &path).expect("valid").is_some()
        })
    });
}

criterion_group!(benches, forward_auth, route_matching);
criterion_main!(benches);
