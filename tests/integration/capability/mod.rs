//! Capabilities end to end: the greenhouse of `examples/greenhouse/` served over real HTTP,
//! tokens minted through the API (as a verified subject) and the CLI, used through
//! `context.capability` and the gateway header, attacked every way the issue lists, revoked
//! across two processes; and the property that attenuation only ever narrows.

mod attacks;
mod cli;
mod narrowing;
pub(crate) mod processes;
mod review;

use std::path::{Path, PathBuf};

use jsonwebtoken::Algorithm;
use serde_json::{Value as JsonValue, json};
use tempfile::TempDir;
use warden::gateway::identity::KeySource;
use warden::server::Config;

use crate::gateway::{claims, keys, sign};
use crate::server::{EVALUATION, Http, Reply, TestServer};

pub fn greenhouse() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/greenhouse")
}

/// A directory of capability key files: `k1`, `k2`, ... each 64 hex characters.
pub struct KeyDir {
    pub dir: TempDir,
}

impl KeyDir {
    pub fn new(names: &[&str]) -> KeyDir {
        let dir = tempfile::tempdir().unwrap();
        for (index, name) in names.iter().enumerate() {
            let secret: String = (0..64)
                .map(|i| char::from(b"0123456789abcdef"[(i * 7 + index * 13 + 3) % 16]))
                .collect();
            std::fs::write(dir.path().join(name), secret).unwrap();
        }
        KeyDir { dir }
    }

    pub fn spec(&self, name: &str) -> String {
        format!("{name}:{}", self.dir.path().join(name).display())
    }

    pub fn revocations(&self) -> PathBuf {
        self.dir.path().join("revoked.jsonl")
    }
}

/// The greenhouse served with capability key `k1`, a revocation file, and HS256 subject
/// tokens from the gateway test keys.
pub fn config(keys_dir: &KeyDir) -> Config {
    let mut config = crate::server::config(&greenhouse());
    config.watch = false;
    config.gateway.jwt_keys =
        vec![KeySource::parse(&format!("HS256:{}", keys().join("hs.secret").display())).unwrap()];
    config.gateway.jwt_issuer = Some(crate::gateway::ISSUER.to_string());
    config.gateway.jwt_audience = Some(crate::gateway::AUDIENCE.to_string());
    config.capabilities.keys = vec![keys_dir.spec("k1")];
    config.capabilities.revocations = Some(keys_dir.revocations());
    config
}

/// A verified subject token for `user`.
pub fn subject_token(user: &str) -> String {
    sign(Algorithm::HS256, &claims(user))
}

/// `POST /v1/capabilities` as `user`.
pub async fn mint_as(http: &Http, user: &str, body: &JsonValue) -> Reply {
    let token = subject_token(user);
    http.send(
        "POST",
        "/v1/capabilities",
        &[
            ("content-type", "application/json"),
            ("warden-subject-token", &token),
        ],
        body.to_string(),
    )
    .await
}

/// The key olive mints for nadia: enter and water the glasshouse, for two weeks.
pub fn greenhouse_key_for(holder: &str) -> JsonValue {
    json!({
        "capability": "greenhouse_key",
        "resource": { "type": "Greenhouse", "id": "glasshouse" },
        "holder": { "type": "User", "id": holder },
        "lifetime": "14d",
    })
}

pub async fn minted(http: &Http, user: &str, body: &JsonValue) -> String {
    let reply = mint_as(http, user, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["token"].as_str().unwrap().to_string()
}

/// May `subject` do `action` on `resource`, presenting `token`?
pub async fn decide(
    http: &Http,
    subject: &str,
    action: &str,
    resource: (&str, &str),
    token: Option<&str>,
) -> bool {
    decide_with(http, subject, action, resource, token, json!({})).await
}

pub async fn decide_with(
    http: &Http,
    subject: &str,
    action: &str,
    resource: (&str, &str),
    token: Option<&str>,
    mut context: JsonValue,
) -> bool {
    if let Some(token) = token {
        context["capability"] = json!(token);
    }
    let reply = http
        .post_json(
            EVALUATION,
            &json!({
                "subject": { "type": "User", "id": subject },
                "action": { "name": action },
                "resource": { "type": resource.0, "id": resource.1 },
                "context": context,
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["decision"].as_bool().unwrap()
}

pub const GLASSHOUSE: (&str, &str) = ("Greenhouse", "glasshouse");
pub const HOME: (&str, &str) = ("House", "home");

/// The greenhouse of docs/capabilities.md, step by step.
#[tokio::test]
async fn the_greenhouse() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;

    // Olive owns the house and the greenhouse; Nadia, the neighbour, holds nothing.
    assert!(decide(http, "olive", "water", GLASSHOUSE, None).await);
    assert!(!decide(http, "nadia", "water", GLASSHOUSE, None).await);

    // Olive mints Nadia a key for two weeks.
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;

    // Nadia can water and enter the greenhouse...
    assert!(decide(http, "nadia", "water", GLASSHOUSE, Some(&key)).await);
    assert!(decide(http, "nadia", "enter", GLASSHOUSE, Some(&key)).await);
    // ...but not enter the house, nor sell it.
    assert!(!decide(http, "nadia", "enter", HOME, Some(&key)).await);
    assert!(!decide(http, "nadia", "sell", HOME, Some(&key)).await);
    // A deny still applies: nobody enters on inspection day, key or not.
    assert!(
        !decide_with(
            http,
            "nadia",
            "enter",
            GLASSHOUSE,
            Some(&key),
            json!({ "inspection": true })
        )
        .await
    );

    // Nadia hands on watering only, to Kai, for three days: through Warden (the key is
    // bound to her), never more than she holds.
    let handed = mint_as(
        http,
        "nadia",
        &json!({
            "from": key,
            "holder": { "type": "User", "id": "kai" },
            "actions": ["water"],
            "lifetime": "3d",
        }),
    )
    .await;
    assert_eq!(handed.status, 201, "{}", handed.body);
    let kais = handed.json()["token"].as_str().unwrap().to_string();
    assert!(decide(http, "kai", "water", GLASSHOUSE, Some(&kais)).await);
    assert!(!decide(http, "kai", "enter", GLASSHOUSE, Some(&kais)).await);
    // Handing on more than watering-and-entering is refused (403), as is minting anew.
    let more = mint_as(
        http,
        "nadia",
        &json!({ "from": key, "holder": { "type": "User", "id": "kai" }, "actions": ["sell"] }),
    )
    .await;
    assert_eq!(more.status, 403, "{}", more.body);
    let fresh = mint_as(http, "nadia", &greenhouse_key_for("kai")).await;
    assert_eq!(fresh.status, 403, "{}", fresh.body);
    assert!(fresh.body.contains("may not"), "{}", fresh.body);
    // Kai cannot hand on Nadia's key: it is bound to her.
    let stolen = mint_as(
        http,
        "kai",
        &json!({ "from": key, "holder": { "type": "User", "id": "kai" } }),
    )
    .await;
    assert_eq!(stolen.status, 403, "{}", stolen.body);

    // Olive revokes Nadia's key: it stops working, and so does Kai's, handed on from it.
    let id = warden::capability::parse(&key).unwrap().id().to_string();
    let reply = http
        .post_json("/v1/capabilities/revoke", &json!({ "id": id }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!decide(http, "nadia", "water", GLASSHOUSE, Some(&key)).await);
    assert!(!decide(http, "kai", "water", GLASSHOUSE, Some(&kais)).await);
    // The revocation is in the file, for every other Warden and the next start.
    let file = std::fs::read_to_string(keys_dir.revocations()).unwrap();
    assert!(file.contains(&id), "{file}");

    server.running.shutdown().await;
}

/// Explanations say what became of a presented token.
#[tokio::test]
async fn explanations_say_why_a_token_did_not_grant() {
    let keys_dir = KeyDir::new(&["k1"]);
    let mut config = config(&keys_dir);
    config.explain = true;
    let server = TestServer::start(config).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    let ask = |subject: &str, action: &str, resource: (&str, &str)| {
        json!({
            "subject": { "type": "User", "id": subject },
            "action": { "name": action },
            "resource": { "type": resource.0, "id": resource.1 },
            "context": { "capability": key },
        })
        .to_string()
    };
    let explain = |body: String| async move {
        let reply = http
            .send(
                "POST",
                EVALUATION,
                &[
                    ("content-type", "application/json"),
                    ("warden-explain", "true"),
                ],
                body,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    let granted = explain(ask("nadia", "water", GLASSHOUSE)).await;
    assert_eq!(granted["decision"], true);
    assert_eq!(granted["context"]["capability"]["granted"], true);
    assert!(
        granted["context"]["reason_admin"]["en"]
            .as_str()
            .unwrap()
            .contains("greenhouse-key"),
        "{granted}"
    );
    let house = explain(ask("nadia", "enter", HOME)).await;
    assert_eq!(house["context"]["capability"]["granted"], false);
    assert!(
        house["context"]["capability"]["reason"]
            .as_str()
            .unwrap()
            .contains("outside the token's scope"),
        "{house}"
    );
    let other = explain(ask("kai", "water", GLASSHOUSE)).await;
    assert!(
        other["context"]["capability"]["reason"]
            .as_str()
            .unwrap()
            .contains("bound to another subject"),
        "{other}"
    );
    server.running.shutdown().await;
}

/// Minting needs a verified subject; a malformed mint is a 400, a refused one a 403.
#[tokio::test]
async fn minting_needs_a_verified_subject_and_a_well_formed_request() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;
    let anonymous = http
        .post_json("/v1/capabilities", &greenhouse_key_for("nadia"))
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let forged = http
        .send(
            "POST",
            "/v1/capabilities",
            &[
                ("content-type", "application/json"),
                ("warden-subject-token", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"),
            ],
            greenhouse_key_for("nadia").to_string(),
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    for (body, needle) in [
        (
            json!({ "resource": { "type": "Greenhouse", "id": "glasshouse" } }),
            "capability",
        ),
        (
            json!({ "capability": "greenhouse_kee", "resource": { "type": "Greenhouse", "id": "glasshouse" }, "holder": { "type": "User", "id": "nadia" } }),
            "did you mean `greenhouse_key`",
        ),
        (
            json!({ "capability": "greenhouse_key", "resource": { "type": "House", "id": "home" }, "holder": { "type": "User", "id": "nadia" } }),
            "not for `House`",
        ),
        (
            json!({ "capability": "greenhouse_key", "resource": { "type": "Greenhouse", "id": "glasshouse" }, "actions": ["sell"], "holder": { "type": "User", "id": "nadia" } }),
            "does not carry `sell`",
        ),
        (
            json!({ "capability": "greenhouse_key", "resource": { "type": "Greenhouse", "id": "glasshouse" }, "lifetime": "15d", "holder": { "type": "User", "id": "nadia" } }),
            "at most 14d",
        ),
        (
            json!({ "capability": "greenhouse_key", "resource": { "type": "Greenhouse", "id": "glasshouse" }, "lifetime": "soon" }),
            "`lifetime`",
        ),
    ] {
        let reply = mint_as(http, "olive", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.contains(needle), "{body}: {}", reply.body);
    }
    let bad_revoke = http
        .post_json("/v1/capabilities/revoke", &json!({ "id": "../../etc" }))
        .await;
    assert_eq!(bad_revoke.status, 400, "{}", bad_revoke.body);
    // A token in context that is not a string is a malformed request.
    let reply = http
        .post_json(
            EVALUATION,
            &json!({
                "subject": { "type": "User", "id": "nadia" },
                "action": { "name": "water" },
                "resource": { "type": "Greenhouse", "id": "glasshouse" },
                "context": { "capability": 7 },
            }),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    server.running.shutdown().await;
}

/// The gateway path: the token in `Warden-Capability`, identity in `Authorization`.
#[tokio::test]
async fn a_gateway_request_presents_the_token_in_its_own_header() {
    let keys_dir = KeyDir::new(&["k1"]);
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("data")).unwrap();
    std::fs::copy(
        greenhouse().join("policy.warden"),
        policies.join("policy.warden"),
    )
    .unwrap();
    std::fs::copy(
        greenhouse().join("data/entities.json"),
        policies.join("data/entities.json"),
    )
    .unwrap();
    std::fs::write(
        policies.join("routes.warden"),
        "route POST \"/greenhouses/{g}/water\" => water on Greenhouse::{g}\n\
         route POST \"/houses/{h}/enter\" => enter on House::{h}\n",
    )
    .unwrap();
    let mut config = config(&keys_dir);
    config.policies = policies;
    let server = TestServer::start(config).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    let nadia = format!("Bearer {}", subject_token("nadia"));
    let forward = |uri: &'static str, token: Option<String>| {
        let nadia = nadia.clone();
        async move {
            let mut headers = vec![
                ("authorization", nadia),
                ("x-original-method", "POST".to_string()),
                ("x-original-uri", uri.to_string()),
            ];
            if let Some(token) = token {
                headers.push(("warden-capability", token));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            http.send("GET", "/forward-auth/nginx", &headers, "")
                .await
                .status
        }
    };
    assert_eq!(forward("/greenhouses/glasshouse/water", None).await, 403);
    assert_eq!(
        forward("/greenhouses/glasshouse/water", Some(key.clone())).await,
        200
    );
    assert_eq!(forward("/houses/home/enter", Some(key.clone())).await, 403);
    server.running.shutdown().await;
}

/// Keys come from configuration, never from the policy directory: a key file inside it is
/// refused at start-up, naming the key.
#[tokio::test]
async fn a_key_inside_the_policy_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let policies = root.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::copy(
        greenhouse().join("policy.warden"),
        policies.join("policy.warden"),
    )
    .unwrap();
    std::fs::write(policies.join("k1"), "a".repeat(64)).unwrap();
    let keys_dir = KeyDir::new(&["k1"]);
    let mut config = config(&keys_dir);
    config.policies = policies.clone();
    config.capabilities.keys = vec![format!("k1:{}", policies.join("k1").display())];
    let error = match warden::server::start(&config).await {
        Ok(_) => panic!("started with a key inside the policy directory"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("inside the policy directory"), "{error}");
}

/// The audit log records a presented token by its id, never in full, and says the request was
/// decided by the capability.
#[tokio::test]
async fn the_audit_log_names_a_token_by_its_id() {
    let keys_dir = KeyDir::new(&["k1"]);
    let log = keys_dir.dir.path().join("audit.jsonl");
    let mut config = config(&keys_dir);
    config.audit = Some(warden::audit::AuditConfig::new(
        log.clone(),
        warden::audit::Key::new(b"the-audit-key-of-this-test").unwrap(),
    ));
    let server = TestServer::start(config).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    assert!(decide(http, "nadia", "water", GLASSHOUSE, Some(&key)).await);
    server.running.shutdown().await;
    let text = std::fs::read_to_string(&log).unwrap();
    let id = warden::capability::parse(&key).unwrap().id().to_string();
    assert!(!text.contains(&key), "the token is in the log:\n{text}");
    assert!(
        text.contains(&format!("id={id}")),
        "no token id in the log:\n{text}"
    );
    assert!(
        text.contains("greenhouse-key"),
        "no deciding capability:\n{text}"
    );
}

/// Batches honour a token per item, and in the defaults (the item's context replaces them).
#[tokio::test]
async fn batch_items_present_their_own_tokens() {
    let keys_dir = KeyDir::new(&["k1"]);
    let server = TestServer::start(config(&keys_dir)).await;
    let http = &server.http;
    let key = minted(http, "olive", &greenhouse_key_for("nadia")).await;
    let item = |subject: &str, action: &str, resource: (&str, &str), token: Option<&str>| {
        let mut item = json!({
            "subject": { "type": "User", "id": subject },
            "action": { "name": action },
            "resource": { "type": resource.0, "id": resource.1 },
        });
        if let Some(token) = token {
            item["context"] = json!({ "capability": token });
        }
        item
    };
    let reply = http
        .post_json(
            crate::server::EVALUATIONS,
            &json!({
                "context": { "capability": key },
                "evaluations": [
                    item("nadia", "water", GLASSHOUSE, Some(&key)),
                    item("nadia", "enter", HOME, Some(&key)),
                    item("kai", "water", GLASSHOUSE, Some(&key)),
                    item("nadia", "water", GLASSHOUSE, None),
                    item("nadia", "water", GLASSHOUSE, Some("wcap1.bad.token")),
                ],
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let decisions: Vec<bool> = reply.json()["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    // The fourth item has no context of its own: the default's token applies.
    assert_eq!(decisions, [true, false, false, true, false]);
    server.running.shutdown().await;
}
