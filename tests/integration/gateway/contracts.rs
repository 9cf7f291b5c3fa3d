//! Each gateway's contract, sent exactly as that gateway sends it: nginx `auth_request`
//! (headers set by `deploy/nginx/warden.conf`), Envoy `ext_authz` HTTP (the original method,
//! `path_prefix` + path), Traefik `forwardAuth` (`X-Forwarded-*`, any method).

use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

use super::*;
use crate::server::{Reply, TestServer};

async fn server() -> TestServer {
    TestServer::start(gateway_config(&example_policies())).await
}

/// What nginx's `/_warden` location sends for a client request.
async fn nginx(server: &TestServer, method: &str, uri: &str, token: Option<&str>) -> Reply {
    let auth = token.map(bearer);
    let mut headers = vec![
        ("x-original-method", method),
        ("x-original-uri", uri),
        ("x-forwarded-for", "192.0.2.7"),
        ("host", "photos.example"),
    ];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    server
        .http
        .send("GET", "/forward-auth/nginx", &headers, "")
        .await
}

#[tokio::test]
async fn nginx_allows_denies_and_challenges() {
    let server = server().await;
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let bob = sign(Algorithm::ES256, &claims("bob"));

    let allowed = nginx(&server, "GET", "/albums/a1/photos/p1", Some(&alice)).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.header("x-warden-subject"), Some("alice"));
    assert!(allowed.header("warden-policy-version").is_some());

    let denied = nginx(&server, "GET", "/albums/a1/photos/p1", Some(&bob)).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("x-warden-subject"), None);

    let missing = nginx(&server, "GET", "/albums/a1/photos/p1", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"warden\"")
    );

    // The owner may delete; the query string is not part of the route.
    let delete = nginx(
        &server,
        "DELETE",
        "/albums/a1/photos/p1?force=1",
        Some(&alice),
    )
    .await;
    assert_eq!(delete.status, 200);
    // Counted in the metrics, by status.
    let metrics = server.http.get("/metrics").await.body;
    assert!(metrics.contains("endpoint=\"forward_auth\""), "{metrics}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn every_algorithm_verifies_and_no_invalid_token_passes() {
    let server = server().await;
    let check = |status: u16, what: &'static str| {
        move |reply: Reply| {
            assert_eq!(reply.status, status, "{what}: {}", reply.body);
            if status == 401 {
                let challenge = reply.header("www-authenticate").unwrap_or_default();
                assert!(
                    challenge.starts_with("Bearer realm=\"warden\""),
                    "{what}: {challenge}"
                );
            }
        }
    };
    let uri = "/albums/a1/photos/p1";
    for alg in [
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::HS256,
    ] {
        let token = sign(alg, &claims("alice"));
        check(200, "a valid token")(nginx(&server, "GET", uri, Some(&token)).await);
    }

    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let token = sign(Algorithm::ES256, &expired);
    check(401, "expired")(nginx(&server, "GET", uri, Some(&token)).await);

    let mut early = claims("alice");
    early["nbf"] = json!(now() + 3600);
    let token = sign(Algorithm::ES256, &early);
    check(401, "not yet valid")(nginx(&server, "GET", uri, Some(&token)).await);

    let mut no_exp = claims("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = sign(Algorithm::ES256, &no_exp);
    check(401, "no exp")(nginx(&server, "GET", uri, Some(&token)).await);

    let mut issuer = claims("alice");
    issuer["iss"] = json!("https://evil.example");
    let token = sign(Algorithm::ES256, &issuer);
    check(401, "wrong issuer")(nginx(&server, "GET", uri, Some(&token)).await);

    let mut audience = claims("alice");
    audience["aud"] = json!("another-api");
    let token = sign(Algorithm::ES256, &audience);
    check(401, "wrong audience")(nginx(&server, "GET", uri, Some(&token)).await);

    // A signature of other claims: the payload says bob, the signature is alice's.
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let bob = sign(Algorithm::ES256, &claims("bob"));
    let parts: Vec<&str> = alice.split('.').collect();
    let bob_parts: Vec<&str> = bob.split('.').collect();
    let swapped = format!("{}.{}.{}", parts[0], bob_parts[1], parts[2]);
    check(401, "tampered payload")(nginx(&server, "GET", uri, Some(&swapped)).await);
    let mut flipped = alice.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    check(401, "tampered signature")(nginx(&server, "GET", uri, Some(&flipped)).await);

    // HS/ES confusion: an HS256 token whose secret is the public EC key.
    let public = std::fs::read(keys().join("ec.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    check(401, "HS256 with the public key")(nginx(&server, "GET", uri, Some(&confused)).await);

    // `alg: none`, unsigned.
    let b64 = |v: &serde_json::Value| base64url(v.to_string().as_bytes());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("alice"))
    );
    check(401, "alg none")(nginx(&server, "GET", uri, Some(&none)).await);

    // An algorithm no key is pinned to.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("unknown".to_string());
    let token = sign_with(header, &claims("alice"));
    check(401, "unknown kid")(nginx(&server, "GET", uri, Some(&token)).await);

    let reply = server
        .http
        .send(
            "GET",
            "/forward-auth/nginx",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", uri),
                ("authorization", "Basic YWxpY2U6cHc="),
            ],
            "",
        )
        .await;
    check(401, "not a bearer token")(reply);
    server.running.shutdown().await;
}

#[tokio::test]
async fn roles_and_verified_attributes_come_from_claims() {
    let server = server().await;
    let with = |sub: &str, extra: serde_json::Value| {
        let mut c = claims(sub);
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(Algorithm::ES256, &c)
    };
    // carol is in no store: a viewer by her token's roles.
    let viewer = with("carol", json!({"roles": ["viewer"]}));
    let reply = nginx(&server, "GET", "/albums/a1/photos/p2", Some(&viewer)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-warden-roles"), Some("viewer"));
    assert_eq!(
        nginx(&server, "DELETE", "/albums/a1/photos/p2", Some(&viewer))
            .await
            .status,
        403
    );
    // Roles as one space-separated string (OAuth `scope` style), and an inherited grant.
    let admin = with("carol", json!({"roles": "admin other"}));
    assert_eq!(
        nginx(&server, "DELETE", "/albums/a1/photos/p2", Some(&admin))
            .await
            .status,
        200
    );
    // Undeclared role names grant nothing.
    let unknown = with("carol", json!({"roles": ["root"]}));
    assert_eq!(
        nginx(&server, "GET", "/albums/a1/photos/p2", Some(&unknown))
            .await
            .status,
        403
    );

    // A verified email grants staff access; bob's store entry has none.
    let staff = with("bob", json!({"email": "bob@staff.example"}));
    assert_eq!(
        nginx(&server, "GET", "/albums/a1/photos/p1", Some(&staff))
            .await
            .status,
        200
    );
    // The verified claim wins over the store (alice's stored email is not staff).
    let alice_staff = with("alice", json!({"email": "alice@staff.example"}));
    assert_eq!(
        nginx(&server, "GET", "/albums/a1/photos/p1", Some(&alice_staff))
            .await
            .status,
        200
    );
    // A claim that is not mapped means nothing: erin is suspended in the store, whatever her
    // token says.
    let unsuspended = with("erin", json!({"suspended": false}));
    assert_eq!(
        nginx(&server, "GET", "/albums/a1/photos/p1", Some(&unsuspended))
            .await
            .status,
        403
    );
    // A mistyped claim is a deny, never an allow.
    let mistyped = with("alice", json!({"email": 5}));
    assert_eq!(
        nginx(&server, "GET", "/albums/a1/photos/p1", Some(&mistyped))
            .await
            .status,
        403
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn unmatched_and_ambiguous_paths_are_denied() {
    let server = server().await;
    let alice = sign(Algorithm::ES256, &claims("alice"));
    let status = |reply: Reply| reply.status;
    for uri in [
        "/nothing",
        "/albums",
        "/albums/a1/photos",
        "/albums/a1/photos/%2e%2e/p1",
        "/albums/a1/photos/p1%2Fx",
        "/albums/a1/photos/p1%00",
        "/../albums/a1/photos/p1",
        "/albums/a1/photos/%zz",
    ] {
        assert_eq!(
            status(nginx(&server, "GET", uri, Some(&alice)).await),
            403,
            "{uri}"
        );
    }
    // What a gateway would route the same way is normalised, not refused.
    for uri in [
        "/albums//a1/photos/./p1",
        "/albums/a1/x/../photos/p1",
        "/%61lbums/a1/photos/p1",
    ] {
        assert_eq!(
            status(nginx(&server, "GET", uri, Some(&alice)).await),
            200,
            "{uri}"
        );
    }
    // A method no route declares for the path.
    assert_eq!(
        status(nginx(&server, "PUT", "/albums/a1/photos/p1", Some(&alice)).await),
        403
    );
    // Not a forward-auth call at all.
    let reply = server
        .http
        .send(
            "GET",
            "/forward-auth/nginx",
            &[("authorization", &bearer(&alice))],
            "",
        )
        .await;
    assert_eq!(reply.status, 403);
    server.running.shutdown().await;
}

#[tokio::test]
async fn envoy_ext_authz_http_service() {
    let server = server().await;
    let alice = bearer(&sign(Algorithm::ES256, &claims("alice")));
    let bob = bearer(&sign(Algorithm::ES256, &claims("bob")));
    // Envoy keeps the method, appends the path to `path_prefix`, sends Host, Content-Length,
    // Authorization and the `allowed_headers`, and no body.
    let envoy = |method: &'static str, path: &'static str, auth: Option<String>| {
        let http = server.http.clone();
        async move {
            let mut headers = vec![
                ("host", "photos.example".to_string()),
                ("content-length", "0".to_string()),
                ("x-forwarded-for", "198.51.100.4".to_string()),
            ];
            if let Some(auth) = auth {
                headers.push(("authorization", auth));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.send(method, &format!("/ext-authz{path}"), &headers, "")
                .await
        }
    };
    let reply = envoy("GET", "/albums/a1/photos/p1", Some(alice.clone())).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-warden-subject"), Some("alice"));
    assert_eq!(
        envoy("DELETE", "/albums/a1/photos/p1", Some(alice.clone()))
            .await
            .status,
        200
    );
    assert_eq!(
        envoy("DELETE", "/albums/a1/photos/p1", Some(bob.clone()))
            .await
            .status,
        403
    );
    assert_eq!(
        envoy("POST", "/albums/a1/photos", Some(alice.clone()))
            .await
            .status,
        200
    );
    assert_eq!(
        envoy(
            "GET",
            "/albums/a1/photos/p1?size=large",
            Some(alice.clone())
        )
        .await
        .status,
        200
    );
    assert_eq!(envoy("GET", "/", Some(alice.clone())).await.status, 403);
    let missing = envoy("GET", "/albums/a1/photos/p1", None).await;
    assert_eq!(missing.status, 401);
    assert!(missing.header("www-authenticate").is_some());
    server.running.shutdown().await;
}

#[tokio::test]
async fn traefik_forward_auth() {
    let server = server().await;
    let alice = bearer(&sign(Algorithm::ES256, &claims("alice")));
    let bob = bearer(&sign(Algorithm::ES256, &claims("bob")));
    // Traefik's own request method is not the original one: any is accepted.
    let traefik =
        |auth_method: &'static str, method: &'static str, uri: &'static str, auth: String| {
            let http = server.http.clone();
            async move {
                let headers = [
                    ("x-forwarded-method", method),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "photos.example"),
                    ("x-forwarded-uri", uri),
                    ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
                    ("authorization", auth.as_str()),
                ];
                http.send(auth_method, "/forward-auth/traefik", &headers, "")
                    .await
            }
        };
    let reply = traefik("GET", "GET", "/albums/a1/photos/p1", alice.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-warden-subject"), Some("alice"));
    assert_eq!(
        traefik("POST", "DELETE", "/albums/a1/photos/p1", alice.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        traefik("HEAD", "DELETE", "/albums/a1/photos/p1", bob.clone())
            .await
            .status,
        403
    );
    // nginx's headers mean nothing on Traefik's endpoint (a client could send them there).
    let spoofed = server
        .http
        .send(
            "GET",
            "/forward-auth/traefik",
            &[
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/albums/a1/photos/p1"),
                ("x-original-method", "GET"),
                ("x-original-uri", "/albums/public"),
                ("authorization", bob.as_str()),
            ],
            "",
        )
        .await;
    assert_eq!(spoofed.status, 403);
    server.running.shutdown().await;
}

#[tokio::test]
async fn jwks_keys_and_key_reload() {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let dir = tempfile::tempdir().unwrap();
    let private = std::fs::read(keys().join("ec-private.pem")).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(&private).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".to_string());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let secret = dir.path().join("hs.secret");
    std::fs::write(&secret, "first-secret-first-secret-first-secret").unwrap();

    let mut config = gateway_config(&example_policies());
    config.gateway.jwt_keys = vec![
        KeySource::parse(&format!("jwks:{}", jwks.display())).unwrap(),
        KeySource::parse(&format!("HS256:{}", secret.display())).unwrap(),
    ];
    let server = TestServer::start(config).await;
    let uri = "/albums/a1/photos/p1";

    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".to_string());
    let token = sign_with(header.clone(), &claims("alice"));
    assert_eq!(nginx(&server, "GET", uri, Some(&token)).await.status, 200);
    header.kid = Some("k2".to_string());
    let token = sign_with(header, &claims("alice"));
    assert_eq!(nginx(&server, "GET", uri, Some(&token)).await.status, 401);

    let hs = |secret: &str| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("alice"),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let first = hs("first-secret-first-secret-first-secret");
    let second = hs("second-secret-second-secret-second-secret");
    assert_eq!(nginx(&server, "GET", uri, Some(&first)).await.status, 200);
    assert_eq!(nginx(&server, "GET", uri, Some(&second)).await.status, 401);

    // A broken key file keeps the old keys; a good one replaces them.
    std::fs::write(&secret, "short").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(nginx(&server, "GET", uri, Some(&first)).await.status, 200);
    std::fs::write(&secret, "second-secret-second-secret-second-secret").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = nginx(&server, "GET", uri, Some(&second)).await.status;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A new cache comes with new keys: the first token is not remembered.
    assert_eq!(nginx(&server, "GET", uri, Some(&first)).await.status, 401);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_trusted_identity_header_only_where_configured() {
    let server = server().await;
    let reply = server
        .http
        .send(
            "GET",
            "/forward-auth/nginx",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/albums/a1/photos/p1"),
                ("x-user", "alice"),
            ],
            "",
        )
        .await;
    assert_eq!(
        reply.status, 401,
        "not configured: the header means nothing"
    );
    server.running.shutdown().await;

    let mut config = gateway_config(&example_policies());
    config.gateway.identity_header = Some("x-user".to_string());
    let server = TestServer::start(config).await;
    let send = |user: &'static str| {
        let http = server.http.clone();
        async move {
            http.send(
                "GET",
                "/forward-auth/nginx",
                &[
                    ("x-original-method", "GET"),
                    ("x-original-uri", "/albums/a1/photos/p1"),
                    ("x-user", user),
                ],
                "",
            )
            .await
        }
    };
    assert_eq!(send("alice").await.status, 200);
    assert_eq!(send("bob").await.status, 403);
    server.running.shutdown().await;
}

/// Unpadded base64url, for hand-made tokens.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn authzen_calls_may_carry_the_subjects_token() {
    let mut config = gateway_config(&example_policies());
    config.gateway.authzen_subject_token = true;
    let server = TestServer::start(config).await;
    let body = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "view"},
        "resource": {"type": "Photo", "id": "p1"},
    })
    .to_string();
    let ask = |token: Option<String>| {
        let http = server.http.clone();
        let body = body.clone();
        async move {
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(token) = token {
                headers.push(("warden-subject-token", token));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.send("POST", "/access/v1/evaluation", &headers, body)
                .await
        }
    };
    let mut staff = claims("bob");
    staff["email"] = json!("bob@staff.example");
    // Without a token bob's stored attributes decide: no access.
    assert_eq!(ask(None).await.body, r#"{"decision":false}"#);
    // With his verified email he is staff.
    let token = sign(Algorithm::ES256, &staff);
    assert_eq!(ask(Some(token)).await.body, r#"{"decision":true}"#);
    // Another subject's token lends bob nothing.
    let mut other = claims("carol");
    other["email"] = json!("carol@staff.example");
    let token = sign(Algorithm::ES256, &other);
    assert_eq!(ask(Some(token)).await.body, r#"{"decision":false}"#);
    // An invalid token is a 401, never a decision.
    staff["exp"] = json!(now() - 3600);
    let reply = ask(Some(sign(Algorithm::ES256, &staff))).await;
    assert_eq!(reply.status, 401);
    assert!(reply.header("www-authenticate").is_some());
    server.running.shutdown().await;
}

/// The value of `key:` in the YAML block that follows the line holding `anchor`, at the
/// indentation of that block's first key (enough for the shipped example, without a parser).
fn yaml_key_in_block<'y>(yaml: &'y str, anchor: &str, key: &str) -> Option<&'y str> {
    let mut lines = yaml.lines().skip_while(|l| !l.contains(anchor)).skip(1);
    let first = lines.next()?;
    let indent = first.len() - first.trim_start().len();
    std::iter::once(first)
        .chain(lines)
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .filter(|l| l.len() - l.trim_start().len() == indent)
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// Warden trusts the last `X-Forwarded-For` entry: the edge Envoy of the example must write it
/// (the client's address), never pass on what the client wrote.
#[test]
fn the_envoy_example_writes_the_forwarded_for_warden_trusts() {
    let yaml = std::fs::read_to_string(repo().join("deploy/envoy/envoy.yaml")).unwrap();
    let anchor = "HttpConnectionManager";
    assert_eq!(
        yaml_key_in_block(&yaml, anchor, "stat_prefix"),
        Some("api"),
        "the connection manager's block is found"
    );
    assert_eq!(
        yaml_key_in_block(&yaml, anchor, "use_remote_address"),
        Some("true")
    );
    assert_eq!(
        yaml_key_in_block(&yaml, anchor, "xff_num_trusted_hops"),
        Some("0")
    );
    assert!(yaml.contains("- exact: x-forwarded-for"));
}
