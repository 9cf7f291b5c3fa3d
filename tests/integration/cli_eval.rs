//! `warden eval` as a user runs it: the built binary, its output and its exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

pub(crate) fn warden(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin
        && let Err(error) = child.stdin.take().unwrap().write_all(input.as_bytes())
    {
        // The command may exit (refusing its flags) before it reads its input.
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const WORKDAY: &str = "2026-03-03T09:00:00Z";

#[test]
fn allow_exits_0_and_names_the_rule() {
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::\"bob\"",
            "--action",
            "view",
            "--resource",
            "Photo::p1",
            "--time",
            WORKDAY,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "allow (by view-and-list)");
}

#[test]
fn deny_exits_1() {
    let out = warden(
        &[
            "eval",
            "-p",
            "policies",
            "--subject",
            "User::alice",
            "--action",
            "delete",
            "--resource",
            "Photo::p1",
            "--time",
            WORKDAY,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), "deny (by delete-needs-mfa)");
}

#[test]
fn properties_and_context_flags_reach_the_policy() {
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::alice",
            "--subject-properties",
            "{\"mfa\": true}",
            "--action",
            "delete",
            "--resource",
            "Photo::p1",
            "--time",
            WORKDAY,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::carol",
            "--action",
            "export",
            "--resource",
            "Album::press",
            "--context",
            "{\"ip\": \"10.0.0.7\"}",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_request_file_or_stdin_in_authzen_form() {
    let body = r#"{"subject": {"type": "User", "id": "carol"}, "action": {"name": "list"}, "resource": {"type": "Album", "id": "trips"}}"#;
    let out = warden(&["eval", "--request", "-", "--format", "json"], Some(body));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"], true);
    assert_eq!(json["reasons"], serde_json::json!(["staff-list"]));
    assert_eq!(json["errors"], serde_json::json!([]));
}

#[test]
fn explain_shows_the_condition_that_failed() {
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::bob",
            "--action",
            "view",
            "--resource",
            "Photo::p7",
            "--time",
            WORKDAY,
            "--explain",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("decision: deny"), "{stdout}");
    assert!(stdout.contains("no rule held (default deny)"), "{stdout}");
    assert!(stdout.contains("allow public-photos"), "{stdout}");
    assert!(
        stdout.contains("false at `resource.album.public`"),
        "{stdout}"
    );

    let out = warden(
        &[
            "eval",
            "--subject",
            "User::bob",
            "--action",
            "view",
            "--resource",
            "Photo::p7",
            "--time",
            WORKDAY,
            "--explain",
            "--format",
            "json",
        ],
        None,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let candidates = json["explanation"]["candidates"].as_array().unwrap();
    let public = candidates
        .iter()
        .find(|c| c["id"] == "public-photos")
        .unwrap();
    assert_eq!(public["outcome"], "false");
    assert_eq!(public["condition"], "resource.album.public");
}

#[test]
fn an_undeclared_action_is_a_deny_with_its_reason() {
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::bob",
            "--action",
            "veiw",
            "--resource",
            "Photo::p1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("undeclared action `veiw`") && stdout.contains("`view`"),
        "{stdout}"
    );
}

#[test]
fn malformed_requests_and_bad_flags_exit_3_or_2() {
    let out = warden(
        &["eval", "--request", "-"],
        Some("{\"subject\": \"alice\"}"),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("not well-formed"),
        "{}",
        text(&out.stderr)
    );
    let out = warden(&["eval", "--request", "-"], Some("not json"));
    assert_eq!(out.status.code(), Some(3));
    let out = warden(
        &[
            "eval",
            "--subject",
            "alice",
            "--action",
            "view",
            "--resource",
            "Photo::p1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("Type::\\\"id\\\"")
            || text(&out.stderr).contains("Type::\"id\"")
    );
    let out = warden(&["eval", "--subject", "User::a"], None);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out = warden(
        &[
            "eval",
            "--time",
            "yesterday",
            "--subject",
            "User::a",
            "--action",
            "view",
            "--resource",
            "Photo::p1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn policies_that_do_not_load_exit_3() {
    let dir = std::env::temp_dir().join(format!("warden-cli-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.warden"), "allow view if subject.x = 1\n").unwrap();
    let out = warden(
        &[
            "eval",
            "-p",
            dir.to_str().unwrap(),
            "--subject",
            "User::a",
            "--action",
            "view",
            "--resource",
            "Photo::p1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("bad.warden:1:"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_on_a_false_unless_says_its_condition_was_true() {
    // `deny delete unless subject.properties has mfa and subject.properties.mfa`, with mfa
    // given: the deny is false because its `unless` condition is true.
    let out = warden(
        &[
            "eval",
            "--subject",
            "User::alice",
            "--subject-properties",
            r#"{"mfa": true}"#,
            "--action",
            "delete",
            "--resource",
            "Photo::p1",
            "--time",
            WORKDAY,
            "--explain",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("deny delete-needs-mfa"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!line.contains("false at"), "{line}");
    assert!(
        line.ends_with(
            "false, as `subject.properties has mfa and subject.properties.mfa` is true (`unless`)"
        ),
        "{line}"
    );
}

#[test]
fn json_format_reports_errors_as_json() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_eval/broken");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.warden"), "allow read if subject.\n").unwrap();
    let dir = dir.display().to_string();
    let request = r#"{"subject": {"type": "User", "id": "bob"}, "action": {"name": "view"}, "resource": {"type": "Photo", "id": "p1"}}"#;
    let cases: &[(&[&str], Option<&str>, i32, &str)] = &[
        // Policies that do not load.
        (
            &["eval", "-p", &dir, "--request", "-", "--format", "json"],
            Some(request),
            3,
            "p.warden",
        ),
        // A request that is not JSON.
        (
            &["eval", "--request", "-", "--format", "json"],
            Some("{"),
            3,
            "the request is not valid JSON",
        ),
        // A bad flag value.
        (
            &[
                "eval",
                "--subject",
                "bob",
                "--action",
                "view",
                "--resource",
                "Photo::p1",
                "--format",
                "json",
            ],
            None,
            3,
            "--subject `bob` is not an entity",
        ),
    ];
    for (args, stdin, code, needle) in cases {
        let out = warden(args, *stdin);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out.stdout)));
        let diagnostics = json["diagnostics"].as_array().unwrap();
        assert!(!diagnostics.is_empty(), "{json}");
        assert_eq!(diagnostics[0]["severity"], "error");
        assert!(json.to_string().contains(needle), "{args:?}: {json}");
    }
}
