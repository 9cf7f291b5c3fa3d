//! `warden test` and the reload gate: the built binary on temporary policy directories (every
//! exit code, the summary line, coverage, JSON and JUnit output), and the library functions.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use warden::engine::Engine;
use warden::policytest::{self, Options, Status};

/// A small typed policy: owners read, admins write, a deny that errors on a string `x`.
const POLICY: &str = r#"
entity User { admin: Bool }
entity Doc { owner: User }
action read, write on Doc
action share on Doc

@id("owner-read")
allow read on Doc if resource.owner == subject

@id("admin-write")
allow write on Doc if subject.admin

@id("big-x")
deny write on Doc if context.x > 3
"#;

const DATA: &str = r#"{"entities": [
  {"type": "User", "id": "alice", "attributes": {"admin": false}},
  {"type": "User", "id": "root", "attributes": {"admin": true}},
  {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}}
]}"#;

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warden-policy-tests-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A policy directory with these files (paths relative to it).
fn directory(files: &[(&str, &str)]) -> PathBuf {
    let dir = tempdir();
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The policy, its test data, and one test file.
fn with_tests(tests: &str) -> PathBuf {
    directory(&[
        ("policy.warden", POLICY),
        ("tests/data.json", DATA),
        ("tests/t.warden", tests),
    ])
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

pub(crate) fn warden_test(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("test")
        .arg("--policies")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn the_examples_pass_with_full_coverage() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let run = warden_test(&dir, &["--coverage", "--coverage-min", "100"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("coverage: 11 of 11 rules and role grants decided a test (100%)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.last_line(), "14 passed, 0 failed");
}

#[test]
fn passing_tests_exit_0_and_the_last_line_counts_test_blocks() {
    let dir = with_tests(
        r#"
test "owners read" {
  data "data.json"
  allow User::"alice" read Doc::"d1" by "owner-read"
  deny User::"root" read Doc::"d1"
}
test "admins write" {
  data "data.json"
  allow User::"root" write Doc::"d1" with context { x: 1 } by "admin-write"
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("test \"owners read\" ... ok"));
    assert_eq!(run.last_line(), "2 passed, 0 failed");
}

#[test]
fn a_failure_names_the_test_its_location_both_verdicts_and_the_false_condition() {
    let dir = with_tests(
        r#"
test "right" {
  data "data.json"
  allow User::"alice" read Doc::"d1"
}
test "wrong" {
  data "data.json"
  allow User::"alice" read Doc::"d1"
  allow User::"root" read Doc::"d1" by "owner-read"
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("test \"wrong\" ... FAILED"));
    let t = dir.join("tests/t.warden").display().to_string();
    assert!(
        run.stdout.contains(&format!("\"wrong\" ({t}:6:1)")),
        "{}",
        run.stdout
    );
    let failure = format!(
        "  {t}:9:3: allow User::\"root\" read Doc::\"d1\" by \"owner-read\"\n    expected: allow by \"owner-read\"\n    actual:   deny (no rule held: default deny)\n    candidates:\n      allow owner-read ({}:7:1): false at `resource.owner == subject`\n",
        dir.join("policy.warden").display()
    );
    assert!(run.stdout.contains(&failure), "{}", run.stdout);
    // The passing expectation of the failing test is not reported.
    assert!(!run.stdout.contains(&format!("{t}:8:3")), "{}", run.stdout);
    assert_eq!(run.last_line(), "1 passed, 1 failed");
}

#[test]
fn an_erroring_deny_fails_closed_and_the_explanation_shows_the_error() {
    let dir = with_tests(
        r#"
test "a string x breaks the deny, which then denies" {
  data "data.json"
  deny User::"root" write Doc::"d1" with context { x: "many" } by "big-x"
}
test "expecting the allow" {
  data "data.json"
  allow User::"root" write Doc::"d1" with context { x: "many" }
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "deny big-x (POLICY:13:1): error at `context.x > 3`: `>` cannot combine a String with an Int"
                .replace("POLICY", &dir.join("policy.warden").display().to_string())
                .as_str()
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("actual:   deny by big-x"));
    assert_eq!(run.last_line(), "1 passed, 1 failed");
}

#[test]
fn a_by_that_names_a_rule_that_did_not_decide_fails() {
    let dir = with_tests(
        r#"
test "the right verdict for the wrong reason" {
  data "data.json"
  deny User::"root" write Doc::"d1" with context { x: 5 } by "admin-write"
}
"#,
    );
    let run = warden_test(&dir, &["--format", "json"]);
    assert_eq!(run.code, 1);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let expectation = &json["tests"][0]["expectations"][0];
    assert_eq!(
        expectation["failure"],
        "deny as expected, but not by \"admin-write\": deny by big-x"
    );
    assert_eq!(expectation["reasons"], serde_json::json!(["big-x"]));
    assert!(expectation.get("note").is_none());
    // The allow held but the deny decided: the explanation says both.
    let candidates = expectation["explanation"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    assert!(
        candidates.iter().all(|c| c["outcome"] == "held"),
        "{candidates:?}"
    );
}

#[test]
fn a_by_rule_that_was_not_even_a_candidate_is_pointed_out() {
    let dir = with_tests(
        r#"
test "write rule named for a read" {
  data "data.json"
  allow User::"alice" read Doc::"d1" by "admin-write"
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!(
            "    note:     allow admin-write ({}:10:1) was not a candidate: its actions, resource types or role, or the constant its first test compares with, rule this request out\n",
            dir.join("policy.warden").display()
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn an_invalid_request_is_a_deny_with_its_reason() {
    let dir = with_tests(
        r#"
test "read does not apply to users" {
  data "data.json"
  deny User::"alice" read User::"root"
}
test "so expecting an allow fails" {
  data "data.json"
  allow User::"alice" read User::"root"
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(
            "actual:   deny (the request is invalid: action `read` does not apply to `User` (it applies to `Doc`))"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(run.last_line(), "1 passed, 1 failed");
}

#[test]
fn a_test_without_expectations_is_skipped_and_not_counted_as_passed() {
    let dir = with_tests(
        r#"
test "something" {
  data "data.json"
  allow User::"alice" read Doc::"d1"
}
test "to do" {
  data "data.json"
}
"#,
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("test \"to do\" ... skipped (no expectations)")
    );
    assert_eq!(run.last_line(), "1 passed, 0 failed, 1 skipped");

    // Only skipped tests: nothing ran, which is a failure.
    let dir = with_tests("test \"to do\" {\n}\n");
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.last_line(), "0 passed, 0 failed, 1 skipped");
}

#[test]
fn no_tests_at_all_is_a_failure() {
    let empty = tempdir();
    let run = warden_test(&empty, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no test ran"), "{}", run.stdout);
    assert_eq!(run.last_line(), "0 passed, 0 failed");

    let untested = directory(&[("policy.warden", POLICY)]);
    let run = warden_test(&untested, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("has no `test` blocks"),
        "{}",
        run.stdout
    );
}

#[test]
fn filter_runs_only_matching_tests_and_matching_none_is_a_failure() {
    let dir = with_tests(
        r#"
test "owners read" {
  data "data.json"
  allow User::"alice" read Doc::"d1"
}
test "owners do not write" {
  data "data.json"
  deny User::"alice" write Doc::"d1" with context { x: 0 }
}
test "admins write" {
  data "data.json"
  deny User::"root" write Doc::"d1" with context { x: 0 }
}
"#,
    );
    let run = warden_test(&dir, &["--filter", "owners"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("admins write"));
    assert_eq!(run.last_line(), "2 passed, 0 failed");

    // The failing test is filtered out, so the run passes.
    let run = warden_test(&dir, &["--filter", "read"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.last_line(), "1 passed, 0 failed");
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1);

    let run = warden_test(&dir, &["--filter", "nothing like this"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("no test ran: no test has a name containing \"nothing like this\""),
        "{}",
        run.stdout
    );
    assert_eq!(run.last_line(), "0 passed, 0 failed");
}

/// Coverage: `unused` is never a candidate; `owner-read` is evaluated (false) and
/// `admin-write` holds under a deny that overrides it — candidates, never deciding.
#[test]
fn coverage_counts_only_rules_that_decided() {
    let dir = with_tests(
        r#"
test "only denies decide" {
  data "data.json"
  deny User::"root" read Doc::"d1"
  deny User::"root" write Doc::"d1" with context { x: 7 } by "big-x"
}
"#,
    );
    std::fs::write(
        dir.join("more.warden"),
        "@id(\"unused\")\nallow share on Doc\n",
    )
    .unwrap();
    let run = warden_test(&dir, &["--coverage"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let policy = dir.join("policy.warden").display().to_string();
    let more = dir.join("more.warden").display().to_string();
    let expected = format!(
        "coverage: 1 of 4 rules and role grants decided a test (25%)\nnot covered:\n  allow unused ({more}:1:1)\n  allow owner-read ({policy}:7:1)\n  allow admin-write ({policy}:10:1)\n"
    );
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
    assert_eq!(run.last_line(), "1 passed, 0 failed");

    // Below the minimum: exit 1, said above the summary line.
    let run = warden_test(&dir, &["--coverage-min", "50"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("coverage 25% is below --coverage-min 50%")
    );
    assert_eq!(run.last_line(), "1 passed, 0 failed");
    let run = warden_test(&dir, &["--coverage-min", "25"]);
    assert_eq!(run.code, 0);

    let run = warden_test(&dir, &["--coverage", "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["coverage"]["covered"], 1);
    assert_eq!(json["coverage"]["total"], 4);
    let uncovered: Vec<&str> = json["coverage"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["covered"] == false)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(uncovered, ["unused", "owner-read", "admin-write"]);
}

#[test]
fn role_grants_are_covered_like_rules() {
    let dir = directory(&[
        (
            "policy.warden",
            "entity User { roles: Set<String> }\nentity Doc\naction read, write on Doc\n\
             role reader {\n  @id(\"reader-read\")\n  allow read\n}\n\
             role writer : reader {\n  @id(\"writer-write\")\n  allow write\n}\n",
        ),
        (
            "tests/t.warden",
            "test \"readers read\" {\n  given User::\"u\" { roles: [\"reader\"] }\n  allow User::\"u\" read Doc::\"d\" by \"reader-read\"\n  deny User::\"u\" write Doc::\"d\"\n}\n",
        ),
    ]);
    let run = warden_test(&dir, &["--coverage"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "not covered:\n  allow writer-write in role writer ({}:9:3)\n",
            dir.join("policy.warden").display()
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn junit_output_is_well_formed_and_escaped() {
    let dir = with_tests(
        r#"
test "a <b> & 'c' \"d\"" {
  data "data.json"
  allow User::"alice" read Doc::"d1"
}
test "fails" {
  data "data.json"
  allow User::"root" read Doc::"d1"
}
test "empty" {
}
"#,
    );
    std::fs::write(
        dir.join("other.warden"),
        "test \"elsewhere\" {\n  allow User::\"x\" read Doc::\"y\"\n}\n",
    )
    .unwrap();
    let run = warden_test(&dir, &["--format", "junit"]);
    assert_eq!(run.code, 1);
    let xml = roxmltree::Document::parse(&run.stdout).unwrap();
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("2"));
    assert_eq!(root.attribute("skipped"), Some("1"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    assert_eq!(
        suites[0].attribute("name"),
        Some(dir.join("other.warden").display().to_string().as_str())
    );
    let cases: Vec<_> = suites[1]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0].attribute("name"), Some("a <b> & 'c' \"d\""));
    assert_eq!(cases[0].attribute("line"), Some("2"));
    assert!(cases[0].children().all(|c| !c.is_element()));
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("expected allow, got deny (no rule held: default deny)")
    );
    assert!(
        failure
            .text()
            .unwrap()
            .contains("false at `resource.owner == subject`")
    );
    assert!(cases[2].children().any(|n| n.has_tag_name("skipped")));
}

#[test]
fn json_output_has_every_test_and_expectation() {
    let dir = with_tests(
        r#"
test "mixed" {
  data "data.json"
  allow User::"alice" read Doc::"d1" by "owner-read"
  allow User::"root" read Doc::"d1" at time("2026-03-02T10:00:00Z")
}
"#,
    );
    let run = warden_test(&dir, &["--format", "json"]);
    assert_eq!(run.code, 1);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"passed": 0, "failed": 1, "skipped": 0, "filtered_out": 0})
    );
    assert_eq!(json["ok"], false);
    let test = &json["tests"][0];
    assert_eq!(test["name"], "mixed");
    assert_eq!(test["status"], "failed");
    assert_eq!(test["line"], 2);
    let expectations = test["expectations"].as_array().unwrap();
    assert_eq!(expectations.len(), 2);
    assert_eq!(expectations[0]["passed"], true);
    assert_eq!(
        expectations[0]["reasons"],
        serde_json::json!(["owner-read"])
    );
    assert!(expectations[0].get("explanation").is_none());
    assert_eq!(expectations[1]["passed"], false);
    assert_eq!(expectations[1]["line"], 5);
    assert_eq!(expectations[1]["now"], "2026-03-02T10:00:00Z");
    assert_eq!(expectations[1]["clock_fixed"], true);
    assert_eq!(
        expectations[1]["explanation"]["candidates"][0]["condition"],
        "resource.owner == subject"
    );
}

#[test]
fn a_missing_data_file_is_exit_3_located_at_the_data_line() {
    let dir = with_tests(
        "test \"needs data\" {\n  data \"missing.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n}\n",
    );
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot read test data `{}`",
            dir.join("tests/missing.json").display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}:2:8", dir.join("tests/t.warden").display())),
        "{}",
        run.stderr
    );

    let run = warden_test(&dir, &["--format", "json"]);
    assert_eq!(run.code, 3);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["diagnostics"][0]["code"], "warden::test::data");
    assert_eq!(json["diagnostics"][0]["line"], 2);
    assert_eq!(json["diagnostics"][0]["column"], 8);
}

#[test]
fn broken_test_data_and_broken_policies_are_exit_3() {
    let dir = directory(&[
        ("policy.warden", POLICY),
        (
            "tests/bad.json",
            r#"{"entities": [{"type": "User", "id": "x", "attributes": {"admin": "yes"}}]}"#,
        ),
        (
            "tests/t.warden",
            "test \"t\" {\n  data \"bad.json\"\n  allow User::\"x\" read Doc::\"d\"\n}\n",
        ),
    ]);
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("expected a boolean"), "{}", run.stderr);
    assert!(run.stderr.contains("tests/bad.json:1:"), "{}", run.stderr);

    let dir = directory(&[("policy.warden", "allow read if subject.")]);
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 3);

    let dir = with_tests("test \"outside\" {\n  data \"../../elsewhere.json\"\n}\n");
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("lies outside the policy directory"));
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = with_tests("test \"t\" {\n}\n");
    assert_eq!(warden_test(&dir, &["--coverage-min", "150"]).code, 2);
    assert_eq!(warden_test(&dir, &["--format", "xml"]).code, 2);
}

#[test]
fn givens_replace_data_entities_add_roles_and_stay_out_of_production() {
    let dir = directory(&[
        (
            "policy.warden",
            "entity Group\nentity User in [Group] { admin: Bool, roles: Set<String> }\nentity Doc { owner: User }\n\
             action read, write on Doc\n\
             role editor {\n  @id(\"editor-write\")\n  allow write\n}\n\
             @id(\"admin-write\")\nallow write on Doc if subject.admin\n",
        ),
        (
            "data/prod.json",
            r#"{"entities": [{"type": "User", "id": "alice", "attributes": {"admin": false, "roles": []}},
                              {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}}]}"#,
        ),
        (
            "tests/t.warden",
            r#"
test "production data" {
  deny User::"alice" write Doc::"d1"
}
test "alice made an admin for this test only" {
  given User::"alice" { admin: true, roles: [] }
  allow User::"alice" write Doc::"d1" by "admin-write"
}
test "a role given on one document, through a group" {
  given Group::"eds"
  given User::"bob" in [Group::"eds"] { admin: false, roles: [] }
  given role editor for Group::"eds" on Doc::"d1"
  allow User::"bob" write Doc::"d1" by "editor-write"
  deny User::"bob" write Doc::"d2"
}
"#,
        ),
    ]);
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.last_line(), "3 passed, 0 failed");

    let engine = Engine::load(&dir).unwrap();
    let report = policytest::run(&dir, &engine, &Options::default()).unwrap();
    // Two test stores; the test on production data runs on the production program.
    assert_eq!(report.compiled, 2);
    assert!(engine.program.store.lookup("User", "bob").is_none());
    let alice = engine.program.store.lookup("User", "alice").unwrap();
    let admin = engine
        .program
        .store
        .entity(alice)
        .and_then(|e| e.attributes.as_ref())
        .and_then(|a| {
            a.iter()
                .find(|(k, _)| &**k == "admin")
                .map(|(_, v)| v.clone())
        });
    assert!(matches!(
        admin,
        Some(warden::data::value::Value::Bool(false))
    ));
}

#[test]
fn programs_are_compiled_once_per_distinct_store() {
    let mut tests = String::new();
    for i in 0..40 {
        tests.push_str(&format!(
            "test \"t{i}\" {{\n  data \"data.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n}}\n"
        ));
    }
    let dir = with_tests(&tests);
    let engine = Engine::load(&dir).unwrap();
    let report = policytest::run(&dir, &engine, &Options::default()).unwrap();
    assert_eq!(report.passed(), 40);
    assert_eq!(report.compiled, 1);
}

#[test]
fn time_is_fixed_by_at_and_real_otherwise() {
    let dir = directory(&[
        (
            "policy.warden",
            "entity User\nentity Doc\naction read on Doc\n\
             @id(\"before-2000\")\nallow read on Doc if now() < time(\"2000-01-01T00:00:00Z\")\n",
        ),
        (
            "tests/t.warden",
            "test \"then\" {\n  allow User::\"u\" read Doc::\"d\" at time(\"1999-12-31T23:59:59Z\")\n}\n\
             test \"now\" {\n  allow User::\"u\" read Doc::\"d\"\n}\n",
        ),
    ]);
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("test \"then\" ... ok"));
    // The real clock is past 2000; the failure says the clock was not fixed.
    assert!(
        run.stdout
            .contains("(the real clock; fix it with `at time(\"…\")`)"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_gate_passes_good_tests_and_locates_failures() {
    let good = with_tests(
        "test \"ok\" {\n  data \"data.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n}\n",
    );
    let engine = Engine::load(&good).unwrap();
    assert!(policytest::gate(&good, &engine).is_ok());

    // No tests: nothing to refuse.
    let untested = directory(&[("policy.warden", POLICY)]);
    let engine = Engine::load(&untested).unwrap();
    assert!(policytest::gate(&untested, &engine).is_ok());

    let bad = with_tests(
        "test \"ok\" {\n  data \"data.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n}\n\
         test \"not ok\" {\n  data \"data.json\"\n  allow User::\"root\" read Doc::\"d1\"\n  deny User::\"alice\" read Doc::\"d1\"\n}\n",
    );
    let engine = Engine::load(&bad).unwrap();
    let diagnostics = policytest::gate(&bad, &engine).unwrap_err();
    assert_eq!(diagnostics.len(), 2);
    let t = bad.join("tests/t.warden").display().to_string();
    assert_eq!(diagnostics[0].location(), Some(format!("{t}:7:3")));
    assert_eq!(diagnostics[1].location(), Some(format!("{t}:8:3")));
    assert!(diagnostics.iter().all(|d| d.is_error()));
    assert_eq!(
        diagnostics[0].code().as_deref(),
        Some("warden::test::failed")
    );
    assert_eq!(
        diagnostics[0].message(),
        "test \"not ok\" failed: expected allow, got deny (no rule held: default deny)"
    );
    assert_eq!(
        diagnostics[0].help_text().as_deref(),
        Some("candidates: allow owner-read: false at `resource.owner == subject`")
    );

    // Test data that does not load is refused too.
    let missing = with_tests(
        "test \"t\" {\n  data \"gone.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n}\n",
    );
    let engine = Engine::load(&missing).unwrap();
    let diagnostics = policytest::gate(&missing, &engine).unwrap_err();
    assert_eq!(diagnostics[0].code().as_deref(), Some("warden::test::data"));
}

#[test]
fn the_report_api_counts_per_test_block() {
    let dir = with_tests(
        "test \"a\" {\n  data \"data.json\"\n  allow User::\"alice\" read Doc::\"d1\"\n  deny User::\"root\" read Doc::\"d1\"\n}\n\
         test \"b\" {\n  data \"data.json\"\n  deny User::\"alice\" read Doc::\"d1\"\n}\n",
    );
    let engine = Engine::load(&dir).unwrap();
    let report = policytest::run(
        &dir,
        &engine,
        &Options {
            filter: Some("b".to_string()),
        },
    )
    .unwrap();
    assert_eq!(report.filtered_out, 1);
    assert_eq!(report.tests.len(), 1);
    assert_eq!(report.tests[0].status, Status::Failed);
    assert_eq!(report.summary(), "0 passed, 1 failed");
}

#[test]
fn junit_reports_policies_that_do_not_load_as_one_failing_case() {
    let dir = directory(&[("policy.warden", "allow read if subject.\n")]);
    let run = warden_test(&dir, &["--format", "junit"]);
    assert_eq!(run.code, 3);
    let xml =
        roxmltree::Document::parse(&run.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", run.stdout));
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("1"));
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 1);
    let error = cases[0]
        .children()
        .find(|n| n.has_tag_name("error"))
        .unwrap();
    assert!(
        error.text().unwrap().contains("policy.warden:1:"),
        "{:?}",
        error.text()
    );
    // The diagnostics still reach the terminal.
    assert!(run.stderr.contains("policy.warden"), "{}", run.stderr);
}

#[test]
fn lcov_maps_every_rule_to_its_file_and_line() {
    let dir = with_tests(
        r#"
test "only denies decide" {
  data "data.json"
  deny User::"root" write Doc::"d1" with context { x: 7 } by "big-x"
}
"#,
    );
    let lcov = dir.join("coverage.lcov");
    let run = warden_test(&dir, &["--lcov", lcov.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let text = std::fs::read_to_string(&lcov).unwrap();
    let policy = dir.join("policy.warden").display().to_string();
    assert_eq!(
        text,
        format!(
            "TN:\nSF:{policy}\nFN:7,owner-read\nFN:10,admin-write\nFN:13,big-x\n\
             FNDA:0,owner-read\nFNDA:0,admin-write\nFNDA:1,big-x\nFNF:3\nFNH:1\n\
             DA:7,0\nDA:10,0\nDA:13,1\nLF:3\nLH:1\nend_of_record\n"
        )
    );
}

#[test]
fn a_star_escape_is_kept_as_written_so_like_patterns_take_it_single_or_double() {
    // docs/language.md: `"\*"` is the two characters `\*` in every string, so in a `like`
    // pattern `"\*"` and `"\\*"` are the same literal star.
    let dir = directory(&[
        (
            "policy.warden",
            "entity User\nentity Doc { name: String }\naction read, list on Doc\n\
             allow read on Doc if resource.name like \"IMG_\\*\"\n\
             allow list on Doc if resource.name like \"IMG_\\\\*\"\n",
        ),
        (
            "tests/t.warden",
            "test \"stars\" {\n  given Doc::\"star\" { name: \"IMG_*\" }\n  given Doc::\"x\" { name: \"IMG_x\" }\n\
             allow User::\"u\" read Doc::\"star\"\n  deny User::\"u\" read Doc::\"x\"\n\
             allow User::\"u\" list Doc::\"star\"\n  deny User::\"u\" list Doc::\"x\"\n}\n",
        ),
    ]);
    let run = warden_test(&dir, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.last_line(), "1 passed, 0 failed");
}
