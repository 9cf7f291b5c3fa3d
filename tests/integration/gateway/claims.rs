//! A claim mapping that names an attribute a `deny` reads lets a token switch the deny off (a
//! verified claim wins over the store): the shipped example maps no such claim, and `warden
//! check --config` and `warden serve` warn about one.

use std::path::Path;
use std::process::{Command, Output};

use jsonwebtoken::Algorithm;
use serde_json::json;
use warden::server::{Config, ConfigLayer};

use super::jwt::forward;
use super::*;
use crate::server::TestServer;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `warden check -p POLICIES --config CONFIG --deny-warnings`.
fn check(policies: &Path, config: &Path) -> Output {
    warden(&[
        "check",
        "--deny-warnings",
        "-p",
        policies.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
}

/// A configuration file holding `text`, in a fresh directory.
fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("claims/{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warden.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_shipped_example_maps_no_claim_a_deny_reads() {
    let output = check(
        &example_policies(),
        &repo().join("deploy/nginx/warden.toml"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn check_warns_when_a_mapped_claim_meets_a_deny() {
    let config = config_file(
        "mapped",
        "jwt_claims = [\"email\", \"account_suspended=suspended\"]\n",
    );
    let output = check(&example_policies(), &config);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    let repo = repo().display().to_string();
    insta::assert_snapshot!(text.replace(&repo, "<repo>"));

    // Through a `let`, in another file, and for a `let` that is `subject`.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("claims/let-policies");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.warden"),
        "entity User { suspended?: Bool, locked?: Bool, email?: String }\naction view\n\
         deny view if blocked\ndeny view if me has locked and me.locked\n\
         allow view if subject has email\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.warden"),
        "let blocked = subject has suspended and subject.suspended\nlet me = subject\n",
    )
    .unwrap();
    let config = config_file(
        "through-let",
        "jwt_claims = [\"suspended\", \"locked\", \"email\"]\n",
    );
    let output = check(&dir, &config);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("claim_overrides_deny").count(), 2, "{text}");
    assert!(text.contains("claim `suspended`"), "{text}");
    assert!(text.contains("claim `locked`"), "{text}");
    assert!(!text.contains("claim `email`"), "{text}");
    // Without the configuration, the policies are clean.
    let output = warden(&["check", "--deny-warnings", "-p", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // A configuration that does not resolve is an error.
    let bad = config_file("bad", "jwt_claims = [\"=x\"]\n");
    assert_eq!(check(&dir, &bad).status.code(), Some(3));
}

#[tokio::test]
async fn serve_warns_about_the_mapping_in_its_status() {
    let mut config = gateway_config(&example_policies());
    config
        .gateway
        .claims
        .attributes
        .push(("suspended".to_string(), "suspended".to_string()));
    let server = TestServer::start(config).await;
    let status = server.status().await;
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("claim `suspended` sets `subject.suspended`"),
        "{status:#}"
    );
    server.running.shutdown().await;

    let server = TestServer::start(gateway_config(&example_policies())).await;
    let status = server.status().await;
    assert!(
        !status["warnings"].to_string().contains("claim"),
        "{status:#}"
    );
    server.running.shutdown().await;
}

/// The shipped `deploy/nginx/warden.toml` (with the test keys): a user suspended in the store
/// stays denied whatever her token says.
#[tokio::test]
async fn a_token_cannot_unsuspend_a_user_under_the_shipped_configuration() {
    let layer = ConfigLayer::from_file(&repo().join("deploy/nginx/warden.toml")).unwrap();
    let mut config = Config::resolve(layer).unwrap();
    let tests = gateway_config(&example_policies());
    config.policies = tests.policies;
    config.listen = tests.listen;
    config.watch = false;
    config.gateway.jwt_keys = tests.gateway.jwt_keys;
    let server = TestServer::start(config).await;
    let mut erin = claims("erin");
    erin["suspended"] = json!(false);
    assert_eq!(
        forward(&server, &sign(Algorithm::ES256, &erin))
            .await
            .status,
        403
    );
    // Staff by her verified email, were she not suspended: the claim mapping works.
    let mut bob = claims("bob");
    bob["email"] = json!("bob@staff.example");
    assert_eq!(
        forward(&server, &sign(Algorithm::ES256, &bob)).await.status,
        200
    );
    server.running.shutdown().await;
}
