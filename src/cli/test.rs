//! `warden test`: run a policy directory's tests, optionally with coverage; report for people,
//! for tools (JSON) or for CI (JUnit XML).
//!
//! Exit codes: 0 every test that ran passed (and coverage is at least `--coverage-min`); 1 a
//! test failed, no test ran (no tests at all, or none matched `--filter`), or coverage is below
//! `--coverage-min`; 3 the policies, the tests or their data do not load.

use std::io::Write;

use clap::ValueEnum;
use serde_json::{Value as JsonValue, json};

use crate::cli::output::print_failure;
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine::Engine;
use crate::policytest::{self, Coverage, ExpectationResult, Options, Report, Status, TestResult};
use crate::source::Diagnostic;

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
    /// Also write the coverage as LCOV to FILE (a rule or role grant is a function and its
    /// first line a line, hit when it decided a test), for CI coverage tools.
    #[arg(long, value_name = "FILE")]
    pub lcov: Option<std::path::PathBuf>,
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
    let report = match policytest::run(&args.dir.policies, &engine, &options) {
        Ok(report) => report,
        Err(diagnostics) => {
            not_loaded(&diagnostics, args.format);
            return Exit::InvalidInput;
        }
    };
    let verdict = Verdict::of(args, &report);
    if let Some(path) = &args.lcov
        && let Err(error) = std::fs::write(path, lcov(&report.coverage))
    {
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot write `{}`: {error}",
            path.display()
        );
        return Exit::Internal;
    }
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
        TestFormat::Json => print_failure(diagnostics, Format::Json),
        TestFormat::Human => print_failure(diagnostics, Format::Human),
        TestFormat::Junit => {
            // CI still gets a report to show: one failing case holding the diagnostics.
            print_failure(diagnostics, Format::Human);
            let _ = std::io::stdout()
                .lock()
                .write_all(junit_not_loaded(diagnostics).as_bytes());
        }
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
                out.push_str(&policytest::render_failure(expectation));
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
                    let body: String = failed
                        .iter()
                        .map(|e| policytest::render_failure(e))
                        .collect();
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

/// LCOV tracefile: per policy file, each rule or role grant as a function (`FN`/`FNDA`) and
/// its first line as a line (`DA`), hit once when it decided a test.
fn lcov(coverage: &Coverage) -> String {
    struct Entry {
        name: String,
        line: usize,
        covered: bool,
    }
    let mut files: Vec<(&str, Vec<Entry>)> = Vec::new();
    for rule in &coverage.rules {
        // `file:line:column`; the file may itself hold colons, so split from the right.
        let mut parts = rule.rule.location.rsplitn(3, ':');
        let (_, line, file) = (parts.next(), parts.next(), parts.next());
        let (Some(line), Some(file)) = (line.and_then(|l| l.parse().ok()), file) else {
            continue;
        };
        let name = match &rule.role {
            Some(role) => format!("role {role}: {}", rule.rule.id),
            None => rule.rule.id.clone(),
        };
        let entry = Entry {
            name,
            line,
            covered: rule.covered,
        };
        match files.iter_mut().find(|(f, _)| *f == file) {
            Some((_, entries)) => entries.push(entry),
            None => files.push((file, vec![entry])),
        }
    }
    let mut out = String::new();
    for (file, entries) in files {
        out.push_str(&format!("TN:\nSF:{file}\n"));
        for entry in &entries {
            out.push_str(&format!("FN:{},{}\n", entry.line, entry.name));
        }
        for entry in &entries {
            out.push_str(&format!(
                "FNDA:{},{}\n",
                u8::from(entry.covered),
                entry.name
            ));
        }
        let hit = entries.iter().filter(|e| e.covered).count();
        out.push_str(&format!("FNF:{}\nFNH:{hit}\n", entries.len()));
        // Lines in order, one `DA` each: a line is hit when any rule starting on it is.
        let mut lines: Vec<(usize, bool)> = Vec::new();
        for entry in &entries {
            match lines.iter_mut().find(|(line, _)| *line == entry.line) {
                Some((_, covered)) => *covered |= entry.covered,
                None => lines.push((entry.line, entry.covered)),
            }
        }
        lines.sort_unstable();
        for (line, covered) in &lines {
            out.push_str(&format!("DA:{line},{}\n", u8::from(*covered)));
        }
        let lines_hit = lines.iter().filter(|(_, covered)| *covered).count();
        out.push_str(&format!(
            "LF:{}\nLH:{lines_hit}\nend_of_record\n",
            lines.len()
        ));
    }
    out
}

/// JUnit XML for policies or tests that do not load: one failing case, the diagnostics inside.
fn junit_not_loaded(diagnostics: &[Diagnostic]) -> String {
    let body: String = diagnostics
        .iter()
        .map(|d| format!("{}\n", d.render(false)))
        .collect();
    let message = diagnostics.iter().find(|d| d.is_error()).map_or_else(
        || "the policies do not load".to_string(),
        Diagnostic::message,
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"warden test\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n  \
         <testsuite name=\"load\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n    \
         <testcase name=\"the policies and tests load\" classname=\"load\" time=\"0.000\">\n      \
         <error message=\"{}\" type=\"load\">{}</error>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
        xml_escape(&message),
        xml_escape(&body)
    )
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
