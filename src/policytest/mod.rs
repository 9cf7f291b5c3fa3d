//! Running a policy directory's `test` blocks: the library behind `warden test` and the
//! server's reload gate.
//!
//! # What a test sees
//!
//! - **Its store.** A test that names `data "file"` lines sees exactly those files (paths are
//!   relative to the policy file that holds the test and must stay inside the policy
//!   directory), plus its `given`s. A test without `data` sees the directory's production data
//!   plus its `given`s. A `given` entity is decoded through the declarations exactly like a
//!   data-file entity; one that the data already defines is **replaced** (its attributes and
//!   parents are the `given`'s), and giving one entity twice in a test is an error. `given role
//!   R for S [on X]` adds a binding. Test data never enters the production store: each distinct
//!   store gets its own program, compiled from the directory's checked files, and programs are
//!   cached per distinct store (`data` files and `given`s), so a hundred tests over the same
//!   file compile once. A test without `data` or `given`s runs on the very program the server
//!   would serve.
//! - **Its requests.** Each expectation is decided like a request to the server: the subject,
//!   action and resource, the `with context {…}` and `with subject|action|resource properties
//!   {…}` records (turned into the JSON a caller would send and decoded by the same request
//!   decoder, so typing is identical; see [`values`]). A request the decoder calls invalid (an
//!   undeclared type or action, a mistyped property) is a deny with that reason, so `deny` of it
//!   passes and `allow` of it fails.
//! - **Its clock.** `at time("…")` fixes `now()` for one expectation. Without `at`, `now()` is
//!   the real clock, read once per expectation (as `opa test` does): give every expectation
//!   whose outcome depends on time an `at`.
//!
//! # When a test passes
//!
//! An expectation passes when the verdict is the expected one and, with `by "id"`, the rule
//! whose `@id` is `id` is among the decision's reasons (the denies that held or errored, else the
//! allows that held). A **test** (a `test` block) passes when all its expectations pass; the
//! counts are per test block. A test without expectations is **skipped**: it ran nothing, so it
//! counts neither as passed nor as failed. Tests left out by a filter are not counted at all.
//!
//! # Coverage
//!
//! A rule or role grant is **covered** when it was in the reason set of at least one
//! expectation's decision (passing or not): it decided something. Being a candidate, or holding
//! while a deny overrode it, is not enough.

pub mod values;

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Map, Value as JsonValue};

use crate::ast::{self, TestBlock, TestStatement};
use crate::compile;
use crate::data::json::{Json, JsonKind};
use crate::data::store::Store;
use crate::data::{self, Document};
use crate::decide::{Decider, Presenting};
use crate::engine::{self, Engine};
use crate::eval::Frame;
use crate::eval::explain::{self, Explanation, RuleSummary};
use crate::eval::request::{self, Parts};
use crate::program::{Node, Program};
use crate::source::{Diagnostic, SourceFile, Span};

/// Why the tests of a directory could not be run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum TestError {
    #[error("cannot read test data `{path}`: {reason}")]
    #[diagnostic(
        code(warden::test::data),
        help("`data` paths are relative to the file that holds the test")
    )]
    DataFile {
        path: String,
        reason: String,
        #[label("named here")]
        span: Span,
    },
    #[error("test data `{path}` lies outside the policy directory")]
    #[diagnostic(
        code(warden::test::data_outside),
        help(
            "keep test data inside the policy directory (conventionally under `tests/`); `data` paths are relative to the file that holds the test"
        )
    )]
    DataOutside {
        path: String,
        #[label("named here")]
        span: Span,
    },
    #[error("a test value must be a literal")]
    #[diagnostic(
        code(warden::test::value),
        help(
            "write booleans, integers, strings, durations, entities, sets, records, `time(\"…\")`, `duration(\"…\")` or `ip(\"…\")`: nothing is computed in a test"
        )
    )]
    NotLiteral {
        #[label("computed, not written out")]
        span: Span,
    },
    #[error("not a time: {message}")]
    #[diagnostic(
        code(warden::test::time),
        help("write `at time(\"2026-03-02T10:00:00Z\")`")
    )]
    BadTime {
        message: String,
        #[label("here")]
        span: Span,
    },
    #[error("test \"{test}\" failed: {problem}")]
    #[diagnostic(code(warden::test::failed))]
    Failed {
        test: String,
        problem: String,
        #[label("this expectation")]
        span: Span,
        #[help]
        help: Option<String>,
    },
}

/// `allow` or `deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// `file:line:column` of something in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    fn of(source: &SourceFile, span: Span) -> Location {
        let (line, column) = source.line_col(span.start as usize);
        Location {
            file: source.name().to_string(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The outcome of one `test` block.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub name: String,
    pub location: Location,
    pub status: Status,
    pub expectations: Vec<ExpectationResult>,
    pub elapsed: Duration,
}

/// The outcome of one expectation.
#[derive(Clone, Debug)]
pub struct ExpectationResult {
    pub location: Location,
    /// The expectation as written, on one line.
    pub text: String,
    pub expected: Verdict,
    /// The `@id` its `by` names.
    pub expected_by: Option<String>,
    pub actual: Verdict,
    /// The rules that decided.
    pub reasons: Vec<RuleSummary>,
    /// The time `now()` returned, and whether `at` fixed it.
    pub now: Timestamp,
    pub clock_fixed: bool,
    /// Whether the program's rules read `now()` at all (only looked up when `at` did not fix
    /// the clock).
    pub reads_clock: bool,
    /// Why the request decoder refused the request (it was then decided deny).
    pub invalid: Option<String>,
    /// Rules whose condition failed to evaluate, as `id: message`.
    pub errors: Vec<String>,
    /// Why a limit refused a request the policy allowed.
    pub limited: Option<String>,
    /// Why the expectation failed; `None` when it passed.
    pub failure: Option<String>,
    /// For a failure: every candidate rule and what became of it.
    pub explanation: Option<Explanation>,
    /// For a failure whose `by` rule was not even a candidate: saying so.
    pub note: Option<String>,
    /// The policy file (index into [`Engine::files`]) and span of the expectation.
    pub file: usize,
    pub span: Span,
}

impl ExpectationResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// What decided, in a few words: `deny by suspended`, `deny (no rule held)`.
    pub fn decided(&self) -> String {
        if let Some(invalid) = &self.invalid {
            return format!("{} (the request is invalid: {invalid})", self.actual);
        }
        if let Some(limited) = &self.limited {
            return format!("{} ({limited})", self.actual);
        }
        if self.reasons.is_empty() {
            return format!("{} (no rule held: default deny)", self.actual);
        }
        let ids: Vec<&str> = self.reasons.iter().map(|r| r.id.as_str()).collect();
        format!("{} by {}", self.actual, ids.join(", "))
    }

    /// What was expected: `allow by "owner"`.
    pub fn wanted(&self) -> String {
        match &self.expected_by {
            Some(by) => format!("{} by \"{by}\"", self.expected),
            None => self.expected.to_string(),
        }
    }
}

/// One rule or role grant, and whether any decision had it among its reasons.
#[derive(Clone, Debug)]
pub struct RuleCoverage {
    pub rule: RuleSummary,
    /// For a role grant, the role that declares it.
    pub role: Option<String>,
    pub covered: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Coverage {
    pub rules: Vec<RuleCoverage>,
}

impl Coverage {
    pub fn covered(&self) -> usize {
        self.rules.iter().filter(|r| r.covered).count()
    }

    pub fn total(&self) -> usize {
        self.rules.len()
    }

    /// Covered rules as a percentage; a directory without rules is fully covered.
    pub fn percent(&self) -> f64 {
        if self.rules.is_empty() {
            100.0
        } else {
            self.covered() as f64 * 100.0 / self.total() as f64
        }
    }

    pub fn uncovered(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.iter().filter(|r| !r.covered)
    }
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Report {
    pub tests: Vec<TestResult>,
    /// Tests that the filter left out (not run, not counted).
    pub filtered_out: usize,
    pub coverage: Coverage,
    /// Programs compiled for test stores (one per distinct set of `data` files and `given`s;
    /// tests on the production data without `given`s reuse the production program).
    pub compiled: usize,
}

impl Report {
    fn count(&self, status: Status) -> usize {
        self.tests.iter().filter(|t| t.status == status).count()
    }

    pub fn passed(&self) -> usize {
        self.count(Status::Passed)
    }

    pub fn failed(&self) -> usize {
        self.count(Status::Failed)
    }

    pub fn skipped(&self) -> usize {
        self.count(Status::Skipped)
    }

    /// Tests that ran: passed or failed.
    pub fn ran(&self) -> usize {
        self.passed() + self.failed()
    }

    /// `N passed, M failed`, plus `, K skipped` when some were.
    pub fn summary(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.skipped() > 0 {
            line.push_str(&format!(", {} skipped", self.skipped()));
        }
        line
    }
}

/// Which tests to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Run only the tests whose name contains this text.
    pub filter: Option<String>,
}

/// Runs the tests of a loaded directory. `dir` is the directory `engine` was loaded from (test
/// data paths resolve inside it). `Err` holds the diagnostics of tests that cannot run: test
/// data that does not load, a value that is not a literal.
pub fn run(dir: &Path, engine: &Engine, options: &Options) -> Result<Report, Vec<Diagnostic>> {
    let mut runner = Runner {
        dir,
        engine,
        diagnostics: Vec::new(),
        data_files: HashMap::new(),
        stores: HashMap::new(),
        programs: HashMap::new(),
        compiled: 0,
    };
    let mut filtered_out = 0;
    let mut prepared = Vec::new();
    for (file_index, file) in engine.files.iter().enumerate() {
        for item in &file.ast.items {
            let ast::Item::Test(test) = item else {
                continue;
            };
            if let Some(filter) = &options.filter
                && !test.name.value.contains(filter.as_str())
            {
                filtered_out += 1;
                continue;
            }
            if let Some(ready) = runner.prepare(file_index, test) {
                prepared.push(ready);
            }
        }
    }
    if runner.diagnostics.iter().any(Diagnostic::is_error) {
        let mut diagnostics = runner.diagnostics;
        crate::source::sort_diagnostics(&mut diagnostics);
        return Err(diagnostics);
    }

    let mut covered = vec![false; engine.program.rules.len()];
    let mut frame = Frame::new();
    let mut tests = Vec::new();
    for ready in &prepared {
        tests.push(run_test(engine, ready, &mut frame, &mut covered));
    }
    let program = &engine.program;
    let coverage = Coverage {
        rules: program
            .rules
            .iter()
            .zip(covered)
            .map(|(rule, covered)| RuleCoverage {
                rule: explain::summary(program, rule),
                role: rule
                    .role
                    .and_then(|role| program.roles.get(role.0 as usize))
                    .map(|role| role.name.to_string()),
                covered,
            })
            .collect(),
    };
    Ok(Report {
        tests,
        filtered_out,
        coverage,
        compiled: runner.compiled,
    })
}

/// The reload gate: runs every test of a directory that loaded. `Ok` when none failed (a
/// directory without tests passes); otherwise the failures as diagnostics located at the
/// failing expectations, or the diagnostics of tests that could not run, so that a server can
/// refuse to publish the program exactly as it refuses a broken file.
pub fn gate(dir: &Path, engine: &Engine) -> Result<(), Vec<Diagnostic>> {
    let report = run(dir, engine, &Options::default())?;
    let failures = failure_diagnostics(engine, &report);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// One error diagnostic per failed expectation, at the expectation.
pub(crate) fn failure_diagnostics(engine: &Engine, report: &Report) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for test in &report.tests {
        for expectation in &test.expectations {
            let Some(problem) = &expectation.failure else {
                continue;
            };
            let Some(file) = engine.files.get(expectation.file) else {
                continue;
            };
            let help = expectation.explanation.as_ref().and_then(|explanation| {
                let candidates: Vec<String> = explanation
                    .candidates
                    .iter()
                    .map(|c| {
                        let mut line = format!("{} {}: {}", c.rule.effect, c.rule.id, c.outcome);
                        if let Some(condition) = &c.condition {
                            line.push_str(&format!(" at `{condition}`"));
                        }
                        if let Some(message) = &c.message {
                            line.push_str(&format!(" ({message})"));
                        }
                        line
                    })
                    .collect();
                (!candidates.is_empty()).then(|| format!("candidates: {}", candidates.join("; ")))
            });
            diagnostics.push(Diagnostic::in_file(
                TestError::Failed {
                    test: test.name.clone(),
                    problem: problem.clone(),
                    span: expectation.span,
                    help,
                },
                &file.source,
            ));
        }
    }
    diagnostics
}

/// Human-readable lines about a failed expectation: what was expected and what happened, the
/// deciding rules and every candidate rule with the condition that was false or failed.
pub(crate) fn render_failure(expectation: &ExpectationResult) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "  {}: {}\n",
        expectation.location, expectation.text
    ));
    out.push_str(&format!("    expected: {}\n", expectation.wanted()));
    out.push_str(&format!("    actual:   {}\n", expectation.decided()));
    if !expectation.clock_fixed && expectation.reads_clock {
        out.push_str(&format!(
            "    now():    {} (the real clock; fix it with `at time(\"…\")`)\n",
            expectation.now
        ));
    }
    if let Some(note) = &expectation.note {
        out.push_str(&format!("    note:     {note}\n"));
    }
    if let Some(explanation) = &expectation.explanation {
        if !explanation.reasons.is_empty() {
            out.push_str("    decided by:\n");
            for reason in &explanation.reasons {
                out.push_str(&format!(
                    "      {} {} ({})\n",
                    reason.effect, reason.id, reason.location
                ));
            }
        }
        if explanation.candidates.is_empty() {
            out.push_str(
                "    candidates: none (no rule applies to this action and resource type)\n",
            );
        } else {
            out.push_str("    candidates:\n");
            for candidate in &explanation.candidates {
                out.push_str(&format!("      {}\n", explain::candidate_line(candidate)));
            }
        }
    }
    out
}

/// A test ready to run: its program and its requests.
struct Prepared<'e> {
    file: usize,
    test: &'e TestBlock,
    program: Arc<Program>,
    cases: Vec<Case<'e>>,
}

/// One expectation's request, as a caller would send it.
struct Case<'e> {
    expect: &'e ast::Expectation,
    now: Option<Timestamp>,
    subject: JsonValue,
    action: JsonValue,
    resource: JsonValue,
    context: Option<JsonValue>,
    /// `with capability NAME { ... }`: the capability and its caveats as JSON.
    capability: Option<(String, Option<JsonValue>)>,
}

/// Which data a program was built from: the test data files (`None`: production), and the
/// text of the `given`s.
type ProgramKey = (Option<Vec<String>>, Vec<String>);

struct Runner<'e> {
    dir: &'e Path,
    engine: &'e Engine,
    diagnostics: Vec<Diagnostic>,
    /// Test data files by path relative to the directory; `None` when unreadable (reported).
    data_files: HashMap<String, Option<SourceFile>>,
    /// Decoded stores by their data files.
    stores: HashMap<Vec<String>, Option<Store>>,
    programs: HashMap<ProgramKey, Option<Arc<Program>>>,
    compiled: usize,
}

impl<'e> Runner<'e> {
    fn report(&mut self, error: TestError, source: &SourceFile) {
        self.diagnostics.push(Diagnostic::in_file(error, source));
    }

    fn prepare(&mut self, file_index: usize, test: &'e TestBlock) -> Option<Prepared<'e>> {
        let engine = self.engine;
        let source = &engine.files.get(file_index)?.source;
        let mut ok = true;
        let mut data: Vec<(String, Span)> = Vec::new();
        let mut givens: Vec<&TestStatement> = Vec::new();
        let mut cases = Vec::new();
        for statement in &test.statements {
            match statement {
                TestStatement::Data(path) => match self.data_path(source, path) {
                    Some(relative) => data.push((relative, path.span)),
                    None => ok = false,
                },
                TestStatement::Given(_) | TestStatement::GivenRole(_) => givens.push(statement),
                TestStatement::Expect(expect) => match self.case(source, expect) {
                    Some(case) => cases.push(case),
                    None => ok = false,
                },
            }
        }
        let program = self.program(source, data, &givens);
        match (ok, program) {
            (true, Some(program)) => Some(Prepared {
                file: file_index,
                test,
                program,
                cases,
            }),
            _ => None,
        }
    }

    /// The path of a `data` file relative to the policy directory.
    fn data_path(&mut self, source: &SourceFile, path: &ast::StrLit) -> Option<String> {
        let prefix = engine::display_name(self.dir, "");
        let policy = source.name().strip_prefix(&prefix).unwrap_or(source.name());
        let joined = Path::new(policy)
            .parent()
            .unwrap_or(Path::new(""))
            .join(&path.value);
        let mut parts: Vec<String> = Vec::new();
        let mut inside = true;
        for component in joined.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => inside &= parts.pop().is_some(),
                Component::RootDir | Component::Prefix(_) => inside = false,
            }
        }
        if !inside || parts.is_empty() {
            self.report(
                TestError::DataOutside {
                    path: path.value.clone(),
                    span: path.span,
                },
                source,
            );
            return None;
        }
        Some(parts.join("/"))
    }

    fn time(&mut self, source: &SourceFile, expr: &ast::Expr) -> Option<Timestamp> {
        let text = match values::to_json(expr) {
            Ok(Json {
                kind: JsonKind::String(text),
                ..
            }) => text,
            Ok(_) => {
                self.report(
                    TestError::BadTime {
                        message: "expected `time(\"…\")`".to_string(),
                        span: expr.span,
                    },
                    source,
                );
                return None;
            }
            Err(span) => {
                self.report(TestError::NotLiteral { span }, source);
                return None;
            }
        };
        match data::decode::parse_time(&text) {
            Ok(time) => Some(time),
            Err(bad) => {
                self.report(
                    TestError::BadTime {
                        message: bad.to_string(),
                        span: expr.span,
                    },
                    source,
                );
                None
            }
        }
    }

    fn case(&mut self, source: &SourceFile, expect: &'e ast::Expectation) -> Option<Case<'e>> {
        let now = match &expect.at {
            Some(at) => Some(self.time(source, at)?),
            None => None,
        };
        let entity = |e: &ast::EntityRef| {
            let mut map = Map::new();
            map.insert("type".to_string(), JsonValue::String(e.ty.name.clone()));
            map.insert("id".to_string(), JsonValue::String(e.id.clone()));
            map
        };
        let mut subject = entity(&expect.subject);
        let mut resource = entity(&expect.resource);
        let mut action = Map::new();
        action.insert(
            "name".to_string(),
            JsonValue::String(expect.action.text.clone()),
        );
        let mut context: Option<Map<String, JsonValue>> = None;
        let mut capability = None;
        for with in &expect.with {
            let (target, value) = match with {
                ast::WithClause::Capability(name, record) => {
                    let record = match record.as_ref().map(values::to_json).transpose() {
                        Ok(record) => record.map(|json| values::to_serde(&json)),
                        Err(span) => {
                            self.report(TestError::NotLiteral { span }, source);
                            return None;
                        }
                    };
                    capability = Some((name.name.clone(), record));
                    continue;
                }
                ast::WithClause::Context(value) => (context.get_or_insert_with(Map::new), value),
                ast::WithClause::Properties(var, value) => {
                    let owner = match var {
                        ast::Var::Subject => &mut subject,
                        ast::Var::Action => &mut action,
                        _ => &mut resource,
                    };
                    let properties = owner
                        .entry("properties")
                        .or_insert_with(|| JsonValue::Object(Map::new()));
                    let JsonValue::Object(properties) = properties else {
                        continue;
                    };
                    (properties, value)
                }
            };
            match values::to_json(value) {
                Ok(json) => {
                    if let JsonValue::Object(members) = values::to_serde(&json) {
                        target.extend(members);
                    }
                }
                Err(span) => {
                    self.report(TestError::NotLiteral { span }, source);
                    return None;
                }
            }
        }
        Some(Case {
            expect,
            now,
            subject: JsonValue::Object(subject),
            action: JsonValue::Object(action),
            resource: JsonValue::Object(resource),
            context: context.map(JsonValue::Object),
            capability,
        })
    }

    /// The program a test runs on, built once per distinct store.
    fn program(
        &mut self,
        source: &SourceFile,
        data: Vec<(String, Span)>,
        givens: &[&TestStatement],
    ) -> Option<Arc<Program>> {
        let data_key = if data.is_empty() {
            None
        } else {
            let mut names: Vec<String> = data.iter().map(|(name, _)| name.clone()).collect();
            names.sort();
            names.dedup();
            Some(names)
        };
        let given_key: Vec<String> = givens
            .iter()
            .map(|statement| {
                let span = match statement {
                    TestStatement::Given(given) => given.span,
                    TestStatement::GivenRole(given) => given.span,
                    _ => Span::default(),
                };
                source.slice(span).to_string()
            })
            .collect();
        let key = (data_key, given_key);
        if let Some(program) = self.programs.get(&key) {
            return program.clone();
        }
        let program = self.build(source, &data, key.0.as_deref(), givens);
        self.programs.insert(key, program.clone());
        program
    }

    fn build(
        &mut self,
        source: &SourceFile,
        data: &[(String, Span)],
        data_key: Option<&[String]>,
        givens: &[&TestStatement],
    ) -> Option<Arc<Program>> {
        let engine = self.engine;
        let schema = &engine.program.schema;
        let mut store = match data_key {
            None if givens.is_empty() => return Some(engine.program.clone()),
            None => engine.program.store.clone(),
            Some(key) => self.store(source, data, key)?,
        };
        if !givens.is_empty() {
            let document = match given_document(givens) {
                Ok(document) => document,
                Err(span) => {
                    self.report(TestError::NotLiteral { span }, source);
                    return None;
                }
            };
            let problems = data::extend_store(
                &mut store,
                &[Document {
                    json: &document,
                    file: source,
                }],
                schema,
            );
            let failed = problems.iter().any(Diagnostic::is_error);
            self.diagnostics.extend(problems);
            if failed {
                return None;
            }
        }
        match compile::compile(&engine.files, schema, store, engine.program.version.clone()) {
            Ok(program) => {
                self.compiled += 1;
                Some(Arc::new(program))
            }
            Err(problems) => {
                self.diagnostics.extend(problems);
                None
            }
        }
    }

    /// The store decoded from a set of test data files (a clone of the cached one).
    fn store(
        &mut self,
        source: &SourceFile,
        data: &[(String, Span)],
        key: &[String],
    ) -> Option<Store> {
        if let Some(store) = self.stores.get(key) {
            return store.clone();
        }
        let mut files = Vec::new();
        let mut readable = true;
        for name in key {
            let span = data
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Span::default(), |(_, span)| *span);
            match self.data_file(source, name, span) {
                Some(file) => files.push(file),
                None => readable = false,
            }
        }
        let store = if readable {
            let (store, problems) = data::load_store(&files, &self.engine.program.schema);
            let failed = problems.iter().any(Diagnostic::is_error);
            self.diagnostics.extend(problems);
            (!failed).then_some(store)
        } else {
            None
        };
        self.stores.insert(key.to_vec(), store.clone());
        store
    }

    fn data_file(&mut self, source: &SourceFile, name: &str, span: Span) -> Option<SourceFile> {
        if let Some(file) = self.data_files.get(name) {
            return file.clone();
        }
        let shown = engine::display_name(self.dir, name);
        let file = match std::fs::read_to_string(self.dir.join(name)) {
            Ok(text) => Some(SourceFile::new(shown, text)),
            Err(error) => {
                self.report(
                    TestError::DataFile {
                        path: shown,
                        reason: error.to_string(),
                        span,
                    },
                    source,
                );
                None
            }
        };
        self.data_files.insert(name.to_string(), file.clone());
        file
    }
}

/// A test's `given`s as a data-file document whose spans point into the test's file.
fn given_document(givens: &[&TestStatement]) -> Result<Json, Span> {
    let string = |text: &str, span: Span| Json {
        kind: JsonKind::String(text.to_string()),
        span,
    };
    let reference = |e: &ast::EntityRef| values::entity(&e.ty.name, &e.id, e.ty.span, e.span);
    let mut entities = Vec::new();
    let mut roles = Vec::new();
    for statement in givens {
        match statement {
            TestStatement::Given(given) => {
                let entity = &given.entity;
                let mut members = vec![
                    (
                        "type".to_string(),
                        entity.ty.span,
                        string(&entity.ty.name, entity.ty.span),
                    ),
                    (
                        "id".to_string(),
                        entity.span,
                        string(&entity.id, entity.span),
                    ),
                ];
                let mut attributes = Vec::new();
                for (name, value) in &given.attributes {
                    attributes.push((name.text.clone(), name.span, values::to_json(value)?));
                }
                members.push((
                    "attributes".to_string(),
                    entity.span,
                    Json {
                        kind: JsonKind::Object(attributes),
                        span: entity.span,
                    },
                ));
                if !given.parents.is_empty() {
                    members.push((
                        "parents".to_string(),
                        entity.span,
                        Json {
                            kind: JsonKind::Array(given.parents.iter().map(reference).collect()),
                            span: entity.span,
                        },
                    ));
                }
                entities.push(Json {
                    kind: JsonKind::Object(members),
                    span: given.span,
                });
            }
            TestStatement::GivenRole(given) => {
                let mut members = vec![
                    (
                        "role".to_string(),
                        given.role.span,
                        string(&given.role.name, given.role.span),
                    ),
                    (
                        "subject".to_string(),
                        given.subject.span,
                        reference(&given.subject),
                    ),
                ];
                if let Some(on) = &given.on {
                    members.push(("on".to_string(), on.span, reference(on)));
                }
                roles.push(Json {
                    kind: JsonKind::Object(members),
                    span: given.span,
                });
            }
            _ => {}
        }
    }
    let span = Span::default();
    Ok(Json {
        kind: JsonKind::Object(vec![
            (
                "entities".to_string(),
                span,
                Json {
                    kind: JsonKind::Array(entities),
                    span,
                },
            ),
            (
                "roles".to_string(),
                span,
                Json {
                    kind: JsonKind::Array(roles),
                    span,
                },
            ),
        ]),
        span,
    })
}

/// The caveats of a test's `with capability NAME { ... }`: those written, and for those left out
/// a valid token for the expectation — its resource, every action the capability carries, no
/// holder (its subject, for a capability that is not `delegable`), an expiry one lifetime after
/// the test's time.
fn test_caveats(
    program: &Program,
    name: &str,
    record: Option<&JsonValue>,
    subject: &JsonValue,
    resource: &JsonValue,
    now: Timestamp,
) -> Vec<crate::capability::Caveat> {
    use crate::capability::{Caveat, EntityText};
    let field = |key: &str| record.and_then(|r| r.get(key));
    let entity = |value: &JsonValue| {
        EntityText::new(
            value["type"].as_str().unwrap_or_default(),
            value["id"].as_str().unwrap_or_default(),
        )
    };
    let declared = program.capability(name).map(|(_, c)| c);
    let mut caveats = vec![Caveat::Capability(name.to_string())];
    match (field("resource"), field("within")) {
        (None, None) => caveats.push(Caveat::Resource(entity(resource))),
        (resource, within) => {
            caveats.extend(resource.map(|r| Caveat::Resource(entity(r))));
            caveats.extend(within.map(|w| Caveat::Within(entity(w))));
        }
    }
    let actions: Vec<String> = match field("actions").and_then(JsonValue::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        None => declared
            .map(|c| c.actions.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
    };
    caveats.push(Caveat::Actions(actions));
    let expires = field("expires")
        .and_then(JsonValue::as_str)
        .and_then(|text| data::decode::parse_time(text).ok())
        .unwrap_or_else(|| {
            let lifetime = declared.map_or(0, |c| c.lifetime_ms);
            now.checked_add(jiff::SignedDuration::from_millis(lifetime))
                .unwrap_or(now)
        });
    caveats.push(Caveat::Expires(expires));
    if let Some(holder) = field("holder") {
        caveats.push(Caveat::Holder(entity(holder)));
    } else if declared.is_some_and(|c| !c.delegable) {
        // Every token of a capability that is not delegable names its holder.
        caveats.push(Caveat::Holder(entity(subject)));
    }
    if let Some(minter) = field("minted_by") {
        caveats.push(Caveat::MintedBy(entity(minter)));
    }
    caveats
}

fn run_test(
    engine: &Engine,
    ready: &Prepared<'_>,
    frame: &mut Frame,
    covered: &mut [bool],
) -> TestResult {
    let started = Instant::now();
    let source = engine.files.get(ready.file).map(|f| &f.source);
    let location = source.map_or_else(
        || Location {
            file: String::new(),
            line: 0,
            column: 0,
        },
        |s| Location::of(s, ready.test.span),
    );
    let mut expectations = Vec::new();
    // Each test counts its limits afresh, in the order of its expectations.
    let limits = crate::limit::Limiter::local();
    for case in &ready.cases {
        if let Some(source) = source {
            expectations.push(decide(
                &ready.program,
                ready.file,
                source,
                (case, &limits),
                frame,
                covered,
            ));
        }
    }
    let status = if expectations.is_empty() {
        Status::Skipped
    } else if expectations.iter().all(ExpectationResult::passed) {
        Status::Passed
    } else {
        Status::Failed
    };
    TestResult {
        name: ready.test.name.value.clone(),
        location,
        status,
        expectations,
        elapsed: started.elapsed(),
    }
}

fn decide(
    program: &Program,
    file: usize,
    source: &SourceFile,
    (case, limits): (&Case<'_>, &crate::limit::Limiter),
    frame: &mut Frame,
    covered: &mut [bool],
) -> ExpectationResult {
    let expect = case.expect;
    let (now, clock_fixed) = match case.now {
        Some(now) => (now, true),
        None => (Timestamp::now(), false),
    };
    let expected = match expect.verdict {
        ast::Effect::Allow => Verdict::Allow,
        ast::Effect::Deny => Verdict::Deny,
    };
    let mut result = ExpectationResult {
        location: Location::of(source, expect.span),
        text: source
            .slice(expect.span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        expected,
        expected_by: expect.by.as_ref().map(|by| by.value.clone()),
        actual: Verdict::Deny,
        reasons: Vec::new(),
        now,
        clock_fixed,
        reads_clock: !clock_fixed && program.nodes.iter().any(|node| matches!(node, Node::Now)),
        invalid: None,
        errors: Vec::new(),
        limited: None,
        failure: None,
        explanation: None,
        note: None,
        file,
        span: expect.span,
    };
    let parts = Parts {
        subject: &case.subject,
        action: &case.action,
        resource: &case.resource,
        context: case.context.as_ref(),
    };
    let mut by_held = false;
    let capability = case.capability.as_ref().map(|(name, record)| {
        let caveats = test_caveats(
            program,
            name,
            record.as_ref(),
            &case.subject,
            &case.resource,
            now,
        );
        Presenting::Resolved(Arc::new(crate::capability::present::resolve_caveats(
            program, "test", &caveats, None,
        )))
    });
    let decider = Decider {
        program,
        identity: None,
        capabilities: None,
        limits: Some(limits),
    };
    let verdict = match request::from_parts(program, &parts, now) {
        Ok(mut request) => decider.decide(
            Ok(&mut request),
            (None, None),
            capability,
            Some(frame),
            None,
        ),
        Err(error) => decider.decide(Err(error), (None, None), None, None, None),
    };
    let decision = match &verdict.decision {
        Ok(decision) => decision,
        Err(error) => {
            result.invalid = Some(error.to_string());
            result.failure = failure(&result, by_held);
            return result;
        }
    };
    result.actual = if verdict.allowed {
        Verdict::Allow
    } else {
        Verdict::Deny
    };
    result.limited = verdict.limited().map(ToString::to_string);
    for id in &decision.reasons {
        if let Some(flag) = covered.get_mut(id.index()) {
            *flag = true;
        }
        if let Some(rule) = program.rule(*id) {
            by_held |= rule.named && expect.by.as_ref().is_some_and(|by| *rule.id == *by.value);
            result.reasons.push(explain::summary(program, rule));
        }
    }
    result.errors = explain::error_lines(program, decision);
    result.failure = failure(&result, by_held);
    if result.failure.is_some() {
        result.explanation = Some(explain::explain(program, frame, decision));
        result.note = expect.by.as_ref().and_then(|by| {
            let (id, rule) = program
                .rules
                .iter()
                .enumerate()
                .find(|(_, rule)| rule.named && *rule.id == *by.value)?;
            let candidate = frame.candidates().iter().any(|c| c.index() == id);
            (!candidate).then(|| {
                format!(
                    "{} was not a candidate: its actions, resource types or role, or the constant its first test compares with, rule this request out",
                    rule_name(program, rule)
                )
            })
        });
    }
    result
}

/// `allow curator-delete (role curator, policies/roles.warden:20:3)`.
fn rule_name(program: &Program, rule: &crate::program::Rule) -> String {
    let effect = match rule.effect {
        crate::program::Effect::Allow => "allow",
        crate::program::Effect::Deny => "deny",
    };
    let role = rule
        .role
        .and_then(|role| program.roles.get(role.0 as usize))
        .map(|role| format!("role {}, ", role.name))
        .unwrap_or_default();
    format!(
        "{effect} {} ({role}{})",
        rule.id,
        program.rule_location(rule)
    )
}

fn failure(result: &ExpectationResult, by_held: bool) -> Option<String> {
    if result.expected != result.actual {
        return Some(format!(
            "expected {}, got {}",
            result.expected,
            result.decided()
        ));
    }
    match &result.expected_by {
        Some(by) if !by_held => Some(format!(
            "{} as expected, but not by \"{by}\": {}",
            result.actual,
            result.decided()
        )),
        _ => None,
    }
}
