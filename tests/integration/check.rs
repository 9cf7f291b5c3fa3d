//! The checker's annotated corpus, the bundled policies, and `warden check` as a user runs it.
//!
//! Each case under `tests/data/check/` is a policy file, or a directory of them, named after
//! the diagnostic it shows: `unknown_type.warden` must produce `warden::check::unknown_type`
//! (a directory `duplicate_id.across_files/` likewise, up to the first `.`). The rendered
//! diagnostics are `insta` snapshots; review any change to them by eye.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use warden::engine;
use warden::source::{Diagnostic, SourceFile, sort_diagnostics};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check")
}

/// Every diagnostic of one corpus case, rendered, with names relative to the corpus.
fn diagnose(case: &Path) -> Vec<Diagnostic> {
    let name = case.file_name().unwrap().to_str().unwrap().to_string();
    if case.is_dir() {
        // A relative path (tests run in the package root) names the files the same on every
        // machine, so the rendered text, line wrapping included, does not depend on the checkout.
        let loaded = engine::load_directory(&Path::new("tests/data/check").join(&name)).unwrap();
        return loaded.diagnostics;
    }
    let text = std::fs::read_to_string(case).unwrap();
    let (parsed, mut diagnostics) = warden::syntax::parse(&SourceFile::new(name, text));
    diagnostics.extend(warden::check::check(&[parsed]).diagnostics);
    sort_diagnostics(&mut diagnostics);
    diagnostics
}

#[test]
fn corpus() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus is missing");
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let kind = name.split('.').next().unwrap().to_string();
        let diagnostics = diagnose(&case);
        let codes: Vec<String> = diagnostics.iter().filter_map(Diagnostic::code).collect();
        // An unknown enumeration id is one error wherever it is made (policy, data, request).
        let shared = ["warden::unknown_enum_id"];
        for code in &codes {
            assert!(
                code.starts_with("warden::check::") || shared.contains(&code.as_str()),
                "{name}: unexpected {code}"
            );
        }
        let expected = [format!("warden::check::{kind}"), format!("warden::{kind}")];
        assert!(
            codes.iter().any(|code| expected.contains(code)),
            "{name}: no {expected:?} in {codes:?}"
        );
        let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
        let rendered = rendered.join("\n").replace("tests/data/check/", "");
        insta::assert_snapshot!(kind_snapshot_name(&name), rendered);
    }
}

fn kind_snapshot_name(name: &str) -> String {
    name.trim_end_matches(".warden").replace('.', "_")
}

fn warden(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A fresh policy directory holding one file.
fn policy_dir(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("policy.warden"), text).unwrap();
    dir
}

#[test]
fn bundled_policies_are_clean() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let out = warden(&["check", "--deny-warnings", "-p", policies.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_exit_codes() {
    let clean = policy_dir("clean", "action view\nallow view if context.ok == true\n");
    let warns = policy_dir("warns", "action view\nlet unused = true\nallow view\n");
    let fails = policy_dir("fails", "entity User\nallow view on Usr\n");
    let code = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["check", "-p", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        warden(&args).status.code()
    };
    assert_eq!(code(&clean, &["--deny-warnings"]), Some(0));
    assert_eq!(code(&warns, &[]), Some(0));
    assert_eq!(code(&warns, &["--deny-warnings"]), Some(1));
    assert_eq!(code(&fails, &[]), Some(3));
    assert_eq!(code(&fails, &["--deny-warnings"]), Some(3));
}

#[test]
fn check_reports_json() {
    let dir = policy_dir(
        "json",
        "entity User { suspended?: Bool }\naction view\ndeny * if subject.suspended\nlet unused = true\n",
    );
    let out = warden(&["check", "--format", "json", "-p", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 2, "{json:#}");
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(
        items[0]["code"],
        "warden::check::unguarded_optional_in_deny"
    );
    assert_eq!(items[0]["line"], 3);
    assert_eq!(items[0]["column"], 11);
    assert_eq!(items[1]["severity"], "warning");
    assert_eq!(items[1]["code"], "warden::check::unused_let");
    assert!(items[1]["help"].as_str().unwrap().contains("remove it"));
}

/// The AuthZEN interop's gateway scenario names its types `identity` and `route` (a keyword):
/// the bundled profile declares them, its tests pass, and the scenario's own requests decide.
#[test]
fn the_authzen_profile_takes_the_interop_type_names() {
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway-policies/authzen-profile");
    let profile = profile.to_str().unwrap();
    let out = warden(&["check", "--deny-warnings", "-p", profile]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = warden(&["test", "-p", profile]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = warden(&["fmt", "--check", "-p", profile]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Rick (admin) may delete a todo through the gateway; Beth (viewer) may not.
    let decide = |id: &str, method: &str, route: &str| {
        let request = format!(
            r#"{{"subject": {{"type": "identity", "id": "{id}"}}, "action": {{"name": "{method}"}},
                "resource": {{"type": "route", "id": "{route}"}}}}"#
        );
        let dir = policy_dir(&format!("interop-{method}"), "");
        let file = dir.join("request.json");
        std::fs::write(&file, request).unwrap();
        warden(&["eval", "-p", profile, "--request", file.to_str().unwrap()])
            .status
            .code()
    };
    let rick = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
    let beth = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
    assert_eq!(decide(rick, "DELETE", "/todos/{todoId}"), Some(0));
    assert_eq!(decide(beth, "DELETE", "/todos/{todoId}"), Some(1));
    assert_eq!(decide(beth, "GET", "/todos"), Some(0));
}
