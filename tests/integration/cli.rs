//! The built `warden` binary, run as a user runs it: exit codes, human and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn warden(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A policy directory holding only the three-mistakes file of the syntax corpus.
fn three_mistakes_dir() -> PathBuf {
    let dir = empty_dir("three_mistakes");
    std::fs::copy(
        manifest_dir().join("tests/data/syntax/invalid/three_mistakes.warden"),
        dir.join("three_mistakes.warden"),
    )
    .unwrap();
    dir
}

#[test]
fn check_accepts_the_bundled_policies_by_default() {
    // Without flags `check` reads `./policies`.
    let output = warden(&["check"], manifest_dir());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("ok: "), "{}", stderr(&output));
}

#[test]
fn check_takes_the_directory_as_policies_or_p() {
    let root = manifest_dir().parent().unwrap();
    let relative = format!(
        "{}/policies",
        manifest_dir().file_name().unwrap().to_string_lossy()
    );
    for flag in ["--policies", "-p"] {
        let output = warden(&["check", flag, &relative], root);
        assert_eq!(output.status.code(), Some(0), "{flag}: {}", stderr(&output));
    }
    let output = warden(&["check", &format!("--policies={relative}")], root);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn three_mistakes_give_three_diagnostics_and_exit_3() {
    let dir = three_mistakes_dir();
    let output = warden(&["check", "-p", "."], &dir);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    for location in [
        "three_mistakes.warden:7:39",
        "three_mistakes.warden:10:7",
        "three_mistakes.warden:13:37",
    ] {
        assert!(text.contains(location), "{location} in:\n{text}");
    }
    assert_eq!(text.matches("  × ").count(), 3, "{text}");
    assert!(text.contains("did you mean `==`?"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("failed: 1 file checked, 3 errors, 0 warnings"),
        "{text}"
    );
}

#[test]
fn json_output_is_one_array_of_located_diagnostics() {
    let dir = three_mistakes_dir();
    let output = warden(&["check", "-p", ".", "--format", "json"], &dir);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        output.stderr.is_empty(),
        "JSON mode writes only JSON: {}",
        stderr(&output)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let diagnostics = json.as_array().unwrap();
    assert_eq!(diagnostics.len(), 3, "{json:#}");
    let lines: Vec<u64> = diagnostics
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [7, 10, 13]);
    for d in diagnostics {
        assert_eq!(d["severity"], "error");
        assert_eq!(d["code"], "warden::syntax::unexpected");
        assert!(d["message"].as_str().unwrap().starts_with("unexpected "));
        assert_eq!(d["file"], "three_mistakes.warden");
        assert!(d["column"].as_u64().unwrap() >= 1);
        assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{d}");
    }
    assert_eq!(diagnostics[0]["message"], "unexpected `=`");
    assert_eq!(diagnostics[0]["column"], 39);
    assert_eq!(
        diagnostics[0]["help"],
        "`=` is not an operator; did you mean `==`?"
    );
}

#[test]
fn json_output_of_clean_policies_is_an_empty_array() {
    let output = warden(&["check", "--format", "json"], manifest_dir());
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json, serde_json::json!([]));
}

#[test]
fn a_missing_directory_exits_3_with_a_clear_message() {
    let output = warden(&["check", "-p", "no/such/dir"], manifest_dir());
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("cannot read policy directory `no/such/dir`"),
        "{text}"
    );
    assert!(text.contains("--policies DIR"), "{text}");

    let output = warden(
        &["check", "-p", "no/such/dir", "--format", "json"],
        manifest_dir(),
    );
    assert_eq!(output.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json[0]["code"], "warden::load::directory");
    assert_eq!(json[0]["file"], serde_json::Value::Null);
}

#[test]
fn a_file_given_as_the_directory_exits_3() {
    let output = warden(&["check", "-p", "Cargo.toml"], manifest_dir());
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("`Cargo.toml` is not a directory"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["check", "--no-such-flag"][..],
        &["no-such-command"],
        &[],
        &["check", "--format", "xml"],
        &["check", "-p"],
    ] {
        let output = warden(args, manifest_dir());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let text = stderr(&output);
        assert!(
            text.contains("Usage:") || text.contains("--help"),
            "{args:?}: clap points to the usage: {text}"
        );
    }
}

#[test]
fn version_and_help_exit_0() {
    let output = warden(&["--version"], manifest_dir());
    assert_eq!(output.status.code(), Some(0));
    // The version, then the commit it was built from (`unknown` outside a git checkout).
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(manifest_dir())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("warden {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
    let output = warden(&["check", "--help"], manifest_dir());
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("--policies <DIR>"));
}

/// An empty directory to run in, so that `./policies` is not there to fall back on.
fn empty_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn warden_env(args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn every_command_that_takes_policies_reads_warden_policies() {
    let cwd = empty_dir("warden_policies");
    let policies = manifest_dir().join("policies");
    let env = [("WARDEN_POLICIES", policies.as_path())];
    let cases: &[(&[&str], i32)] = &[
        (&["check"], 0),
        (&["test"], 0),
        (&["fmt", "--check"], 0),
        (
            &[
                "eval",
                "--subject",
                "User::bob",
                "--action",
                "view",
                "--resource",
                "Photo::p1",
                "--time",
                "2026-03-03T09:00:00Z",
            ],
            0,
        ),
    ];
    for (args, code) in cases {
        let output = warden_env(args, &cwd, &env);
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{args:?} with WARDEN_POLICIES: {}",
            stderr(&output)
        );
    }
    // The flag still wins over the variable.
    let output = warden_env(&["check", "-p", "nowhere"], &cwd, &env);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let help = warden(&["test", "--help"], manifest_dir());
    assert!(String::from_utf8_lossy(&help.stdout).contains("WARDEN_POLICIES"));
}

#[test]
fn check_reports_policy_and_data_errors_in_one_run_and_counts_data_files() {
    let dir = empty_dir("policy_and_data_errors");
    std::fs::write(
        dir.join("p.warden"),
        "entity User { admin: Bool }\nentity Doc\naction read on Doc\nallow read if subject.admin == 1\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/users.json"),
        r#"{"entities": [{"type": "User", "id": "a", "attributes": {"admin": "yes"}}]}"#,
    )
    .unwrap();
    let output = warden(&["check", "-p", dir.to_str().unwrap()], manifest_dir());
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("p.warden:4:"), "the policy error: {text}");
    assert!(text.contains("users.json:1:"), "the data error: {text}");
    assert!(
        text.trim_end()
            .ends_with("failed: 1 file and 1 data file checked, 2 errors, 0 warnings"),
        "{text}"
    );
    let output = warden(&["check"], manifest_dir());
    assert!(
        stderr(&output).contains("ok: 5 files and 3 data files checked"),
        "{}",
        stderr(&output)
    );
}

const ESC: &str = "\u{1b}[";

#[test]
fn color_flag_and_no_color_govern_diagnostics() {
    let dir = three_mistakes_dir();
    let dir = dir.to_str().unwrap();
    let run = |args: &[&str], no_color: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command.args(args).args(["check", "-p", dir]);
        command.env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(3));
        stderr(&output)
    };
    assert!(run(&["--color", "always"], None).contains(ESC));
    // The flag is global: it may follow the subcommand too; it wins over `NO_COLOR`.
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    let output = command
        .args(["check", "-p", dir, "--color", "always"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(stderr(&output).contains(ESC));
    assert!(!run(&["--color", "never"], None).contains(ESC));
    // `auto` (the default) into a pipe: no color.
    assert!(!run(&[], None).contains(ESC));
    assert!(!run(&["--color", "auto"], Some("1")).contains(ESC));
}

#[test]
fn color_flag_governs_server_logs() {
    use std::io::BufRead;
    for (when, colored) in [("always", true), ("never", false)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([
                "serve",
                "--color",
                when,
                "--listen",
                "127.0.0.1:0",
                "--watch",
                "false",
            ])
            .current_dir(manifest_dir())
            .env_remove("NO_COLOR")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let read = std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line);
        let _ = child.kill();
        let _ = child.wait();
        read.unwrap();
        assert!(line.contains("serving"), "{line}");
        assert_eq!(line.contains(ESC), colored, "--color {when}: {line:?}");
    }
}

#[test]
fn print_config_output_is_accepted_back_by_config() {
    let dir = empty_dir("print_config");
    let first = dir.join("first.toml");
    std::fs::write(
        &first,
        "listen = \"127.0.0.1:9999\"\ndebounce_ms = 50\njwt_claims = [\"department\"]\nlog_format = \"json\"\n",
    )
    .unwrap();
    let print = |config: &Path| {
        let output = warden(
            &[
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--print-config",
            ],
            manifest_dir(),
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = print(&first);
    let second = dir.join("second.toml");
    std::fs::write(&second, &printed).unwrap();
    // The same configuration again, and `check` takes it too.
    assert_eq!(print(&second), printed);
    let output = warden(
        &["check", "--config", second.to_str().unwrap()],
        manifest_dir(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
