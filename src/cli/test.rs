//! `warden test`: run a policy directory's tests, optionally with coverage; report for people,
//! for tools (JSON) or for CI (JUnit XML).
//!
//! Exit codes: 0 every test that ran passed (and coverage is at least `--coverage-min`); 1 a
//! test failed, no test ran (no tests at all, or none matched `--filter`), or coverage is below
//! `--coverage-min`; 3 the policies, the tests or their data do not load.

use std::io::Write;

use clap::ValueEnum;
use serde_json::{Value as JsonValue, json};

use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine::Engine;
use crate::source::Diagnostic;
use crate::testing::{self, Coverage, ExpectationResult, Options, Report, Status, TestResult};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    /// Run only the tests whose name contains PATTERN (the others are not counted).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// List the rules and role grants that decided no test's outcome, and the percentage that did.
    #[arg(long)]
    pub coverage: bool,
    /// Fail (exit 1) when less than P percent of the rules and grants decided a test; implies
    /// `--coverage`.
    #[arg(long, value_name = "P", value_parser = percent)]
    pub coverage_min: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// For people: failures explained, then `N passed, M failed` on the last line.
    #[default]
    Human,
    /// One JSON object on stdout.
    Json,
    /// JUnit XML on stdout, for CI.
    Junit,
}

fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{text}` is not a percentage from 0 to 100"))
    }
}

pub fn run(args: &TestArgs) -> Exit {
    let engine = match Engine::load(&args.dir.policies) {
        Ok(engine) => engine,
        Err(failure) => {
            not_loaded(&failure.diagnostics, args.format);
            return Exit::InvalidInput;
        }
    };
    let options = Options {
        filter: args.filter.clone(),
    };
    let report = match testing::run(&args.dir.policies, &engine, &options) {
        Ok(report) => report,
        Err(diagnostics) => {
            not_loaded(&diagnostics, args.format);
            return Exit::InvalidInput;
        }
    };
    let verdict = Verdict::of(args, &report);
    let text = match args.format {
        TestFormat::Human => human(args, &report, &verdict),
        TestFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json_report(args, &report, &verdict))
                .unwrap_or_default();
            text.push('\n');
            text
        }
        TestFormat::Junit => {
            if args.coverage || args.coverage_min.is_some() {
                let _ = write!(
                    std::io::stderr(),
                    "{}",
                    coverage_text(&report.coverage, args.coverage_min)
                );
            }
            junit(&report)
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if verdict.ok() {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// What decides the exit code, beside the failed tests.
struct Verdict {
    /// Why no test ran, when none did.
    nothing_ran: Option<String>,
    coverage_below: bool,
    failed: bool,
}

impl Verdict {
    fn of(args: &TestArgs, report: &Report) -> Verdict {
        let nothing_ran = (report.ran() == 0).then(|| match &args.filter {
            Some(filter) if !report.tests.is_empty() => {
                format!("no test ran: no test with expectations has a name containing \"{filter}\"")
            }
            Some(filter) => format!("no test ran: no test has a name containing \"{filter}\""),
            None if report.tests.is_empty() => format!(
                "no test ran: `{}` has no `test` blocks",
                args.dir.policies.display()
            ),
            None => "no test ran: no test has expectations".to_string(),
        });
        Verdict {
            nothing_ran,
            coverage_below: args
                .coverage_min
                .is_some_and(|min| report.coverage.percent() < min),
            failed: report.failed() > 0,
        }
    }

    fn ok(&self) -> bool {
        self.nothing_ran.is_none() && !self.coverage_below && !self.failed
    }
}

fn not_loaded(diagnostics: &[Diagnostic], format: TestFormat) {
    match format {
        TestFormat::Json => {
            let list: Vec<_> = diagnostics.iter().map(Diagnostic::to_json).collect();
            let text =
                serde_json::to_string_pretty(&json!({ "diagnostics": list })).unwrap_or_default();
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
        TestFormat::Human | TestFormat::Junit => print_diagnostics(diagnostics, Format::Human),
    }
}

fn human(args: &TestArgs, report: &Report, verdict: &Verdict) -> String {
    let mut out = String::new();
    for test in &report.tests {
        let status = match test.status {
            Status::Passed => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped (no expectations)",
        };
        out.push_str(&format!("test \"{}\" ... {status}\n", test.name));
    }
    let failed: Vec<&TestResult> = report
        .tests
        .iter()
        .filter(|t| t.status == Status::Failed)
        .collect();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for test in failed {
            out.push_str(&format!("\n\"{}\" ({})\n", test.name, test.location));
            for expectation in test.expectations.iter().filter(|e| !e.passed()) {
                out.push_str(&testing::render_failure(expectation));
            }
        }
    }
    if args.coverage || args.coverage_min.is_some() {
        out.push('\n');
        out.push_str(&coverage_text(&report.coverage, args.coverage_min));
    }
    if let Some(reason) = &verdict.nothing_ran {
        out.push_str(&format!("\n{reason}\n"));
    }
    out.push_str(&report.summary());
    out.push('\n');
    out
}

fn coverage_text(coverage: &Coverage, min: Option<f64>) -> String {
    let mut out = format!(
        "coverage: {} of {} rules and role grants decided a test ({})\n",
        coverage.covered(),
        coverage.total(),
        show_percent(coverage.percent())
    );
    let uncovered: Vec<_> = coverage.uncovered().collect();
    if !uncovered.is_empty() {
        out.push_str("not covered:\n");
        for rule in uncovered {
            let role = rule
                .role
                .as_ref()
                .map(|r| format!(" in role {r}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} {}{role} ({})\n",
                rule.rule.effect, rule.rule.id, rule.rule.location
            ));
        }
    }
    if let Some(min) = min
        && coverage.percent() < min
    {
        out.push_str(&format!(
            "coverage {} is below --coverage-min {}\n",
            show_percent(coverage.percent()),
            show_percent(min)
        ));
    }
    out
}

/// `100%`, `92.9%`.
fn show_percent(value: f64) -> String {
    let tenths = (value * 10.0).floor() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}%")
    } else {
        format!("{tenths:.1}%")
    }
}

fn json_report(args: &TestArgs, report: &Report, verdict: &Verdict) -> JsonValue {
    let tests: Vec<JsonValue> = report
        .tests
        .iter()
        .map(|test| {
            json!({
                "name": test.name,
                "file": test.location.file,
                "line": test.location.line,
                "column": test.location.column,
                "status": test.status.as_str(),
                "expectations": test.expectations.iter().map(json_expectation).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "tests": tests,
        "summary": {
            "passed": report.passed(),
            "failed": report.failed(),
            "skipped": report.skipped(),
            "filtered_out": report.filtered_out,
        },
        "ok": verdict.ok(),
    });
    if let (Some(reason), JsonValue::Object(map)) = (&verdict.nothing_ran, &mut out) {
        map.insert("nothing_ran".to_string(), json!(reason));
    }
    if (args.coverage || args.coverage_min.is_some())
        && let JsonValue::Object(map) = &mut out
    {
        let coverage = &report.coverage;
        map.insert(
            "coverage".to_string(),
            json!({
                "covered": coverage.covered(),
                "total": coverage.total(),
                "percent": coverage.percent(),
                "min": args.coverage_min,
                "below_min": verdict.coverage_below,
                "rules": coverage.rules.iter().map(|r| json!({
                    "id": r.rule.id,
                    "effect": r.rule.effect,
                    "location": r.rule.location,
                    "role": r.role,
                    "covered": r.covered,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    out
}

fn json_expectation(expectation: &ExpectationResult) -> JsonValue {
    let mut out = json!({
        "file": expectation.location.file,
        "line": expectation.location.line,
        "column": expectation.location.column,
        "expectation": expectation.text,
        "expected": expectation.expected.as_str(),
        "by": expectation.expected_by,
        "actual": expectation.actual.as_str(),
        "reasons": expectation.reasons.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "passed": expectation.passed(),
        "now": expectation.now.to_string(),
        "clock_fixed": expectation.clock_fixed,
    });
    if let JsonValue::Object(map) = &mut out {
        if let Some(failure) = &expectation.failure {
            map.insert("failure".to_string(), json!(failure));
        }
        if let Some(note) = &expectation.note {
            map.insert("note".to_string(), json!(note));
        }
        if let Some(invalid) = &expectation.invalid {
            map.insert("invalid".to_string(), json!(invalid));
        }
        if !expectation.errors.is_empty() {
            map.insert("errors".to_string(), json!(expectation.errors));
        }
        if let Some(explanation) = &expectation.explanation {
            map.insert(
                "explanation".to_string(),
                serde_json::to_value(explanation).unwrap_or(JsonValue::Null),
            );
        }
    }
    out
}

/// JUnit XML: one `testsuite` per policy file, one `testcase` per test block.
fn junit(report: &Report) -> String {
    let seconds =
        |tests: &[&TestResult]| tests.iter().map(|t| t.elapsed.as_secs_f64()).sum::<f64>();
    let all: Vec<&TestResult> = report.tests.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"warden test\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">\n",
        report.tests.len(),
        report.failed(),
        report.skipped(),
        seconds(&all)
    ));
    let mut files: Vec<&str> = Vec::new();
    for test in &report.tests {
        if !files.contains(&test.location.file.as_str()) {
            files.push(&test.location.file);
        }
    }
    for file in files {
        let tests: Vec<&TestResult> = report
            .tests
            .iter()
            .filter(|t| t.location.file == file)
            .collect();
        let count = |status: Status| tests.iter().filter(|t| t.status == status).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">\n",
            xml_escape(file),
            tests.len(),
            count(Status::Failed),
            count(Status::Skipped),
            seconds(&tests)
        ));
        for test in tests {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                xml_escape(&test.name),
                xml_escape(file),
                xml_escape(file),
                test.location.line,
                test.elapsed.as_secs_f64()
            ));
            match test.status {
                Status::Passed => out.push_str("/>\n"),
                Status::Skipped => {
                    out.push_str(
                        ">\n      <skipped message=\"no expectations\"/>\n    </testcase>\n",
                    );
                }
                Status::Failed => {
                    let failed: Vec<&ExpectationResult> =
                        test.expectations.iter().filter(|e| !e.passed()).collect();
                    let message = failed
                        .first()
                        .and_then(|e| e.failure.as_deref())
                        .unwrap_or("failed");
                    let body: String = failed.iter().map(|e| testing::render_failure(e)).collect();
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
                        xml_escape(message),
                        xml_escape(&body)
                    ));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for an XML attribute or element, dropping the characters XML 1.0 cannot hold.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}\n"
        );
    }

    #[test]
    fn percentages_are_shown_rounded_down() {
        assert_eq!(show_percent(100.0), "100%");
        assert_eq!(show_percent(92.857), "92.8%");
        assert_eq!(show_percent(0.0), "0%");
        assert!(percent("101").is_err());
        assert_eq!(percent("80%"), Ok(80.0));
    }
}
