//! `warden capability` as a user runs it: exit codes and what it prints.

use std::process::{Command, Output};

use super::*;

fn warden(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WARDEN_") {
            command.env_remove(key);
        }
    }
    command.args(args).env("NO_COLOR", "1").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn mint_attenuate_inspect_revoke() {
    let keys_dir = KeyDir::new(&["k1"]);
    let policies = greenhouse();
    let policies = policies.to_str().unwrap();
    let keys = keys_dir.spec("k1");
    let mint = |minter: &str, extra: &[&str]| {
        let mut args = vec![
            "capability",
            "mint",
            "-p",
            policies,
            "--keys",
            &keys,
            "--as",
            minter,
            "--capability",
            "greenhouse_key",
            "--resource",
            "Greenhouse::\"glasshouse\"",
        ];
        args.extend_from_slice(extra);
        warden(&args)
    };

    let minted = mint(
        "User::\"olive\"",
        &["--holder", "User::\"nadia\"", "--lifetime", "7d"],
    );
    assert_eq!(minted.status.code(), Some(0), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_string();
    assert!(token.starts_with("wcap1."), "{token}");

    // `warden eval` presents it: allowed by the capability for Nadia, not for Kai.
    let eval = |subject: &str| {
        warden(&[
            "eval",
            "-p",
            policies,
            "--subject",
            subject,
            "--action",
            "water",
            "--resource",
            "Greenhouse::\"glasshouse\"",
            "--capability",
            &token,
            "--keys",
            &keys,
        ])
    };
    let allowed = eval("User::\"nadia\"");
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stderr));
    assert!(
        text(&allowed.stdout).contains("allow (by greenhouse-key)"),
        "{}",
        text(&allowed.stdout)
    );
    let denied = eval("User::\"kai\"");
    assert_eq!(denied.status.code(), Some(1));
    let said = text(&denied.stdout) + &text(&denied.stderr);
    assert!(said.contains("bound to another subject"), "{said}");

    // Refused by the policy: exit 1, saying why. A malformed ask: exit 3.
    let refused = mint("User::\"nadia\"", &["--holder", "User::\"kai\""]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("may not `enter`"),
        "{}",
        text(&refused.stderr)
    );
    let too_long = mint(
        "User::\"olive\"",
        &["--holder", "User::\"nadia\"", "--lifetime", "30d"],
    );
    assert_eq!(too_long.status.code(), Some(3));
    assert!(
        text(&too_long.stderr).contains("at most 14d"),
        "{}",
        text(&too_long.stderr)
    );
    let no_keys = warden(&[
        "capability",
        "mint",
        "-p",
        policies,
        "--as",
        "User::\"olive\"",
        "--capability",
        "greenhouse_key",
        "--resource",
        "Greenhouse::\"glasshouse\"",
    ]);
    assert_eq!(no_keys.status.code(), Some(3));
    assert!(
        text(&no_keys.stderr).contains("--keys"),
        "{}",
        text(&no_keys.stderr)
    );

    // Attenuate offline, then inspect: fewer actions, and the chain shows both.
    let narrowed = warden(&[
        "capability",
        "attenuate",
        &token,
        "--actions",
        "water",
        "--expires-in",
        "3d",
    ]);
    assert_eq!(
        narrowed.status.code(),
        Some(0),
        "{}",
        text(&narrowed.stderr)
    );
    let narrowed = text(&narrowed.stdout).trim().to_string();
    let inspected = warden(&["capability", "inspect", &narrowed, "--keys", &keys]);
    assert_eq!(
        inspected.status.code(),
        Some(0),
        "{}",
        text(&inspected.stderr)
    );
    let shown = text(&inspected.stdout);
    for needle in [
        "capability  greenhouse_key",
        "actions     water\n",
        "resource    Greenhouse::\"glasshouse\"",
        "holder      User::\"nadia\"",
        "minted      by User::\"olive\"",
        "signature   valid",
        "  2  capability = greenhouse_key",
        "  9  actions = water",
    ] {
        assert!(shown.contains(needle), "no {needle:?} in\n{shown}");
    }
    let json = warden(&["capability", "inspect", &narrowed, "--format", "json"]);
    let report: JsonValue = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["actions"], json!(["water"]));
    assert_eq!(report["expired"], false);
    assert!(
        report["signature"]
            .as_str()
            .unwrap()
            .starts_with("not checked")
    );

    // A tampered token: inspect with the keys says so, exit 1.
    let (rest, last) = narrowed.split_at(narrowed.len() - 2);
    let tampered = format!("{rest}{}", if last == "AA" { "BA" } else { "AA" });
    let bad = warden(&["capability", "inspect", &tampered, "--keys", &keys]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stdout));
    assert!(
        text(&bad.stdout).contains("signature   invalid"),
        "{}",
        text(&bad.stdout)
    );
    let garbage = warden(&["capability", "inspect", "hello"]);
    assert_eq!(garbage.status.code(), Some(3));

    // Revoke by token (or id): inspect with the file then says revoked, exit 1.
    let file = keys_dir.revocations();
    let file = file.to_str().unwrap();
    let revoked = warden(&["capability", "revoke", &token, "--revocations", file]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    let again = warden(&["capability", "revoke", &token, "--revocations", file]);
    assert!(text(&again.stderr).contains("already revoked"));
    // `warden eval` honours the revocation file too.
    let revoked_eval = warden(&[
        "eval",
        "-p",
        policies,
        "--subject",
        "User::\"nadia\"",
        "--action",
        "water",
        "--resource",
        "Greenhouse::\"glasshouse\"",
        "--capability",
        &token,
        "--keys",
        &keys,
        "--revocations",
        file,
    ]);
    assert_eq!(revoked_eval.status.code(), Some(1));
    let said = text(&revoked_eval.stdout) + &text(&revoked_eval.stderr);
    assert!(said.contains("is revoked"), "{said}");
    let after = warden(&["capability", "inspect", &narrowed, "--revocations", file]);
    assert_eq!(after.status.code(), Some(1));
    assert!(
        text(&after.stdout).contains("revoked     yes"),
        "{}",
        text(&after.stdout)
    );
}

/// The example's own tests present capabilities (`with capability`), and cover every rule.
#[test]
fn the_greenhouse_tests_pass_with_full_coverage() {
    let policies = greenhouse();
    let out = warden(&[
        "test",
        "-p",
        policies.to_str().unwrap(),
        "--coverage",
        "--coverage-min",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).ends_with("4 passed, 0 failed\n"),
        "{}",
        text(&out.stdout)
    );
    let check = warden(&["check", "--deny-warnings", "-p", policies.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let fmt = warden(&["fmt", "--check", policies.to_str().unwrap()]);
    assert_eq!(fmt.status.code(), Some(0), "{}", text(&fmt.stderr));
}

/// A test whose capability would not grant fails, showing the grant it expected.
#[test]
fn a_failing_capability_expectation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(
        greenhouse().join("policy.warden"),
        dir.path().join("policy.warden"),
    )
    .unwrap();
    std::fs::copy(
        greenhouse().join("data/entities.json"),
        dir.path().join("data/entities.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("t.warden"),
        "test \"wrong\" {\n  allow User::\"nadia\" enter House::\"home\" with capability greenhouse_key\n}\n",
    )
    .unwrap();
    let out = warden(&["test", "-p", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains("t.warden:2:3"), "{said}");
    assert!(said.ends_with("0 passed, 1 failed\n"), "{said}");
}

/// The revocation file is created `0600`, by the CLI and by the server (whoever can write it
/// can revoke any token); a file that exists keeps the mode its operator gave it.
#[cfg(unix)]
#[tokio::test]
async fn the_revocation_file_is_created_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let keys_dir = KeyDir::new(&["k1"]);
    let id = "mfrggzdfmztwq2lknnwg23tpoa";

    let by_cli = keys_dir.dir.path().join("by-cli.jsonl");
    let revoked = warden(&[
        "capability",
        "revoke",
        id,
        "--revocations",
        by_cli.to_str().unwrap(),
    ]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    assert_eq!(mode(&by_cli), 0o600);

    let server = TestServer::start(config(&keys_dir)).await;
    assert_eq!(mode(&keys_dir.revocations()), 0o600);
    server.running.shutdown().await;

    // Shared on purpose with a group: appending keeps the mode.
    std::fs::set_permissions(&by_cli, std::fs::Permissions::from_mode(0o640)).unwrap();
    let again = warden(&[
        "capability",
        "revoke",
        "nbswy3dpeb3w64tmmqqgc3tdme",
        "--revocations",
        by_cli.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(mode(&by_cli), 0o640);
}
