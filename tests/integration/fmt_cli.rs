//! `warden fmt` run as a program on temporary policy directories.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is how a test reports"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory under the target directory, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fmt-cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn warden(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("the warden binary runs")
}

/// `warden ARGS` with `input` on its standard input.
fn warden_stdin(args: &[&str], input: &str) -> Output {
    crate::cli_eval::warden(args, Some(input))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const UGLY: &str = "allow   view on Photo if (resource.public)\n\n\n\nentity Photo{public:Bool}\n";
const PRETTY: &str =
    "allow view on Photo if resource.public\n\nentity Photo {\n  public: Bool,\n}\n";
const BROKEN: &str = "allow view if x = 1\n";

#[test]
fn rewrites_files_in_place() {
    let dir = scratch("rewrite");
    std::fs::create_dir_all(dir.join("p/sub")).unwrap();
    std::fs::create_dir_all(dir.join("p/.hidden")).unwrap();
    std::fs::write(dir.join("p/a.warden"), UGLY).unwrap();
    std::fs::write(dir.join("p/sub/b.warden"), UGLY).unwrap();
    std::fs::write(dir.join("p/.hidden/c.warden"), UGLY).unwrap();
    std::fs::write(dir.join("p/ok.warden"), PRETTY).unwrap();

    let output = warden(&dir, &["fmt", "p"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("p/a.warden")).unwrap(),
        PRETTY
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("p/sub/b.warden")).unwrap(),
        PRETTY
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("p/ok.warden")).unwrap(),
        PRETTY
    );
    // Entries starting with `.` are skipped, as when loading.
    assert_eq!(
        std::fs::read_to_string(dir.join("p/.hidden/c.warden")).unwrap(),
        UGLY
    );
    let report = stderr(&output);
    assert!(report.contains("p/a.warden"), "{report}");
    assert!(report.contains("p/sub/b.warden"), "{report}");
    assert!(!report.contains("ok.warden"), "{report}");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.join("p"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");

    // A single file can be named too; formatting again changes nothing.
    let output = warden(&dir, &["fmt", "p/a.warden"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("p/a.warden")).unwrap(),
        PRETTY
    );
}

#[test]
fn check_names_the_files_that_would_change_and_writes_nothing() {
    let dir = scratch("check");
    std::fs::create_dir_all(dir.join("p")).unwrap();
    std::fs::write(dir.join("p/ugly.warden"), UGLY).unwrap();
    std::fs::write(dir.join("p/pretty.warden"), PRETTY).unwrap();

    let output = warden(&dir, &["fmt", "--check", "p"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = stderr(&output);
    assert!(report.contains("p/ugly.warden"), "{report}");
    assert!(!report.contains("pretty.warden"), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("p/ugly.warden")).unwrap(),
        UGLY
    );

    let output = warden(&dir, &["fmt", "--check", "p/pretty.warden"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_file_that_does_not_parse_is_reported_and_left_alone() {
    let dir = scratch("broken");
    std::fs::create_dir_all(dir.join("p")).unwrap();
    std::fs::write(dir.join("p/broken.warden"), BROKEN).unwrap();
    std::fs::write(dir.join("p/ugly.warden"), UGLY).unwrap();

    let output = warden(&dir, &["fmt", "p"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let report = stderr(&output);
    assert!(report.contains("p/broken.warden:1:"), "{report}");
    assert!(report.contains("did you mean `==`?"), "{report}");
    assert_eq!(
        std::fs::read(dir.join("p/broken.warden")).unwrap(),
        BROKEN.as_bytes()
    );
    // The other files are still formatted.
    assert_eq!(
        std::fs::read_to_string(dir.join("p/ugly.warden")).unwrap(),
        PRETTY
    );

    let output = warden(&dir, &["fmt", "--check", "p/broken.warden"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

#[test]
fn a_missing_path_is_invalid_input() {
    let dir = scratch("missing");
    let output = warden(&dir, &["fmt", "nowhere.warden"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("nowhere.warden"));
}

#[test]
fn without_paths_it_formats_the_policy_directory() {
    let dir = scratch("default");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    std::fs::write(dir.join("policies/a.warden"), UGLY).unwrap();
    std::fs::write(dir.join("elsewhere/b.warden"), UGLY).unwrap();

    let output = warden(&dir, &["fmt", "--check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("policies/a.warden"));

    let output = warden(&dir, &["fmt"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("policies/a.warden")).unwrap(),
        PRETTY
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("elsewhere/b.warden")).unwrap(),
        UGLY
    );

    let output = warden(&dir, &["fmt", "-p", "elsewhere"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("elsewhere/b.warden")).unwrap(),
        PRETTY
    );
}

#[test]
fn the_bundled_policies_pass_the_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = warden(root, &["fmt", "--check", "policies"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_dash_formats_standard_input_to_standard_output() {
    let output = warden_stdin(&["fmt", "-"], UGLY);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), PRETTY);

    // Already formatted: the same text back.
    let output = warden_stdin(&["fmt", "-"], PRETTY);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), PRETTY);

    // `--check`: nothing on stdout, exit 1 when it would change.
    let output = warden_stdin(&["fmt", "--check", "-"], UGLY);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("would reformat <stdin>"));

    // A policy that does not parse: nothing on stdout (an editor keeps its buffer), the
    // diagnostic on stderr, exit 3.
    let output = warden_stdin(&["fmt", "-"], BROKEN);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("did you mean `==`?"),
        "{}",
        stderr(&output)
    );

    // `-` stands alone.
    let output = warden_stdin(&["fmt", "-", "p"], UGLY);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn diff_prints_the_changes_and_writes_nothing() {
    let dir = scratch("diff");
    std::fs::create_dir_all(dir.join("p")).unwrap();
    std::fs::write(dir.join("p/a.warden"), UGLY).unwrap();
    std::fs::write(dir.join("p/ok.warden"), PRETTY).unwrap();

    let output = warden(&dir, &["fmt", "--diff", "p"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let diff = stdout(&output);
    assert!(
        diff.starts_with("--- p/a.warden\n+++ p/a.warden\n@@ "),
        "{diff}"
    );
    assert!(
        diff.contains("\n-allow   view on Photo if (resource.public)\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+allow view on Photo if resource.public\n"),
        "{diff}"
    );
    assert!(!diff.contains("ok.warden"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(dir.join("p/a.warden")).unwrap(),
        UGLY
    );

    // Standard input too; nothing to show exits 0.
    let output = warden_stdin(&["fmt", "--diff", "-"], UGLY);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).starts_with("--- <stdin>\n+++ <stdin>\n"));
    let output = warden(&dir, &["fmt", "--diff", "p/ok.warden"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
}
