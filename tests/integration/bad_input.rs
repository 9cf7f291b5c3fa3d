//! Bad input never panics or overflows the stack: it gets a located diagnostic.
//!
//! The parser is driven in a thread with a small stack (256 KiB, an eighth of what Rust gives a
//! spawned thread), so a recursion that grows with the input shows up as a crash here long
//! before it could crash a server thread.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use warden::ast::{Expr, Item, TestStatement, TypeExpr, WithClause};
use warden::source::{SourceFile, read_source};
use warden::syntax::{self, lexer::MAX_EXPRESSION_SIZE};

const SMALL_STACK: usize = 256 * 1024;

/// What a parse produced, computed (and the tree dropped) inside the small-stack thread.
#[derive(Debug)]
struct Outcome {
    items: usize,
    /// `line:column code` of each diagnostic.
    diagnostics: Vec<String>,
    /// The deepest expression or type nesting in the tree.
    depth: usize,
}

fn parse_small_stack(text: String) -> Outcome {
    std::thread::Builder::new()
        .name("small-stack parser".into())
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let source = SourceFile::new("deep.warden", text);
            let (parsed, diagnostics) = syntax::parse(&source);
            let diagnostics = diagnostics
                .iter()
                .map(|d| {
                    let (line, column) = source.line_col(d.primary_span().unwrap().start as usize);
                    format!("{line}:{column} {}", d.code().unwrap())
                })
                .collect();
            let depth = parsed.ast.items.iter().map(item_depth).max().unwrap_or(0);
            Outcome {
                items: parsed.ast.items.len(),
                diagnostics,
                depth,
            }
            // `parsed` is dropped here, in the small stack: dropping a tree recurses too.
        })
        .unwrap()
        .join()
        .expect("the parser thread panicked")
}

/// The deepest expression or type in an item, walked without recursion so that the measuring
/// cannot overflow where the parser did not.
fn item_depth(item: &Item) -> usize {
    let mut exprs: Vec<&Expr> = Vec::new();
    let mut types: Vec<&TypeExpr> = Vec::new();
    match item {
        Item::Entity(e) => {
            types.extend(e.attributes.iter().map(|a| &a.ty));
            types.extend(e.properties.iter().flatten().map(|a| &a.ty));
        }
        Item::Action(a) => {
            types.extend(a.context.iter().flatten().map(|a| &a.ty));
            types.extend(a.properties.iter().flatten().map(|a| &a.ty));
        }
        Item::ActionGroup(_) => {}
        Item::Role(r) => exprs.extend(
            r.grants
                .iter()
                .filter_map(|g| g.condition.as_ref())
                .map(|c| &c.expr),
        ),
        Item::Rule(r) => exprs.extend(r.condition.as_ref().map(|c| &c.expr)),
        Item::Let(l) => exprs.push(&l.value),
        Item::Route(_) | Item::Namespace(_) => {}
        Item::Capability(c) => exprs.extend(c.mint()),
        Item::Limit(l) => {
            exprs.push(&l.key);
            exprs.extend(l.condition.as_ref().map(|c| &c.expr));
        }
        Item::Test(t) => {
            for statement in &t.statements {
                match statement {
                    TestStatement::Given(g) => exprs.extend(g.attributes.iter().map(|(_, e)| e)),
                    TestStatement::Expect(x) => {
                        exprs.extend(x.at.iter());
                        exprs.extend(x.with.iter().filter_map(|w| match w {
                            WithClause::Context(e) | WithClause::Properties(_, e) => Some(e),
                            WithClause::Capability(_, e) => e.as_ref(),
                        }));
                    }
                    TestStatement::Data(_) | TestStatement::GivenRole(_) => {}
                }
            }
        }
    }
    let mut deepest = 0;
    let mut stack: Vec<(&Expr, usize)> = exprs.into_iter().map(|e| (e, 1)).collect();
    while let Some((expr, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        expr.for_each_child(|child| stack.push((child, depth + 1)));
    }
    let mut type_stack: Vec<(&TypeExpr, usize)> = types.into_iter().map(|t| (t, 1)).collect();
    while let Some((ty, depth)) = type_stack.pop() {
        deepest = deepest.max(depth);
        match ty {
            TypeExpr::Named(_) => {}
            TypeExpr::Set(element, _) => type_stack.push((element, depth + 1)),
            TypeExpr::Record(fields, _) => {
                type_stack.extend(fields.iter().map(|f| (&f.ty, depth + 1)));
            }
        }
    }
    deepest
}

const HUGE: usize = 100_000;

/// Constructs that nest without bound if nothing stops them, each `HUGE` levels deep.
fn huge_inputs() -> Vec<(&'static str, String)> {
    let n = HUGE;
    let half = "(".repeat(MAX_EXPRESSION_SIZE / 2 + 1);
    vec![
        (
            "parens",
            format!("allow view if {}x{}", "(".repeat(n), ")".repeat(n)),
        ),
        (
            "unclosed parens",
            format!("allow view if {}", "(".repeat(n)),
        ),
        ("not", format!("allow view if {}x", "not ".repeat(n))),
        ("negation", format!("allow view if {}x", "- ".repeat(n))),
        (
            "attributes",
            format!("allow view if subject{}", ".b".repeat(n)),
        ),
        (
            "index",
            format!("allow view if subject{}", "[\"k\"]".repeat(n)),
        ),
        ("sum", format!("allow view if 1{}", " + 1".repeat(n))),
        ("or chain", format!("allow view if x{}", " or x".repeat(n))),
        (
            "sets",
            format!("allow view if x in {}1{}", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "records",
            format!("let r = {}1{}", "{a: ".repeat(n), "}".repeat(n)),
        ),
        (
            "keyword keys",
            format!("let r = {}1{}", "{if: ".repeat(n), "}".repeat(n)),
        ),
        (
            "calls",
            format!("let r = {}1{}", "f(".repeat(n), ")".repeat(n)),
        ),
        (
            "keyword attributes",
            format!("allow view if {half}x.if {half}x.allow {half}x"),
        ),
        (
            "record types",
            format!(
                "entity E {{ a: {}String{} }}",
                "{a: ".repeat(n),
                "}".repeat(n)
            ),
        ),
        (
            "set types",
            format!(
                "entity E {{ a: {}String{} }}",
                "Set<".repeat(n),
                ">".repeat(n)
            ),
        ),
        (
            "action context",
            format!(
                "action a context {{ a: {}String{} }}",
                "{a: ".repeat(n),
                "}".repeat(n)
            ),
        ),
        (
            "test context",
            format!(
                "test \"t\" {{ allow U::\"a\" v P::\"p\" with context {}1{} }}",
                "{a: ".repeat(n),
                "}".repeat(n)
            ),
        ),
        (
            "role grant",
            format!("role r {{ allow v if {}x }}", "not ".repeat(n)),
        ),
    ]
}

#[test]
fn huge_nesting_is_refused_with_a_located_diagnostic() {
    for (name, text) in huge_inputs() {
        let outcome = parse_small_stack(text);
        assert_eq!(
            outcome.diagnostics.len(),
            1,
            "{name}: one diagnostic, got {:?}",
            outcome.diagnostics
        );
        let diagnostic = &outcome.diagnostics[0];
        assert!(
            diagnostic.starts_with("1:") && diagnostic.ends_with(" warden::syntax::too_large"),
            "{name}: {diagnostic}"
        );
        assert_eq!(outcome.items, 0, "{name}: the oversized item is left out");
    }
}

#[test]
fn nesting_up_to_the_limit_parses_and_stays_that_shallow() {
    let n = MAX_EXPRESSION_SIZE - 1;
    // Parentheses make no node of their own, so sets stand in for bracket nesting.
    let inputs = [
        format!("allow view if {}x{}", "[".repeat(n), "]".repeat(n)),
        format!("allow view if {}x", "not ".repeat(n)),
        format!("allow view if subject{}", ".b".repeat(n)),
        format!("allow view if 1{}", " + 1".repeat(n)),
        format!("let r = {}1{}", "{if: ".repeat(n), "}".repeat(n)),
        format!(
            "entity E {{ a: {}String{} }}",
            "Set<".repeat(n),
            ">".repeat(n)
        ),
        format!("entity E {{ {} }}", "a: Set<String>, ".repeat(4 * n)),
    ];
    for text in inputs {
        let outcome = parse_small_stack(text.clone());
        assert!(outcome.diagnostics.is_empty(), "{text:.40}…: {outcome:?}");
        assert_eq!(outcome.items, 1);
        assert!(
            outcome.depth <= MAX_EXPRESSION_SIZE + 1,
            "{text:.40}…: depth {}",
            outcome.depth
        );
        assert!(
            outcome.depth >= n / 2 || text.starts_with("entity E { a: Set<String>,"),
            "{text:.40}…: the input really nests: {}",
            outcome.depth
        );
    }
}

/// Ways to wrap an expression in one more level: text before it, text after it.
const WRAPPERS: &[(&str, &str)] = &[
    ("(", ")"),
    ("not ", ""),
    ("- ", ""),
    ("[", "]"),
    ("{k: ", "}"),
    ("{if: ", "}"),
    ("{allow: ", "}"),
    ("", ".a"),
    ("", ".if"),
    ("", ".deny"),
    ("", ".properties"),
    ("", "[\"k\"]"),
    ("", " + 1"),
    ("1 - ", ""),
    ("", " and x"),
    ("x or ", ""),
    ("f(", ")"),
    ("f(1, ", ")"),
    ("(", " == 1)"),
    ("(", " has if)"),
    ("(", " like \"*\")"),
    ("(", " is T)"),
    ("(", " in x)"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever mix of nesting constructs, the parser never overflows a small stack, and a tree
    /// it accepts is no deeper than the size limit allows.
    #[test]
    fn any_nesting_is_bounded(
        wrappers in prop::collection::vec(0..WRAPPERS.len(), 0..3 * MAX_EXPRESSION_SIZE),
        head in prop::sample::select(vec!["allow view if ", "let x = ", "role r { allow v if ", "test \"t\" { allow U::\"a\" v P::\"p\" at "]),
    ) {
        let mut before = String::new();
        let mut after = String::new();
        for &index in wrappers.iter().rev() {
            let (open, _) = WRAPPERS[index];
            before.push_str(open);
        }
        for &index in &wrappers {
            let (_, close) = WRAPPERS[index];
            after.push_str(close);
        }
        let tail = if head.starts_with("role") || head.starts_with("test") { " }" } else { "" };
        let text = format!("{head}{before}x{after}{tail}");
        let outcome = parse_small_stack(text);
        if outcome.items == 1 {
            prop_assert!(outcome.depth <= MAX_EXPRESSION_SIZE + 1, "depth {}", outcome.depth);
        } else {
            prop_assert!(outcome.diagnostics.len() == 1, "{:?}", outcome.diagnostics);
        }
    }
}

/// A fresh directory for one test's files, under Cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bad_input")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_non_utf8_file_gets_a_located_diagnostic() {
    let dir = scratch("non_utf8");
    let path = dir.join("latin1.warden");
    // "café" in Latin-1 on the second line.
    std::fs::write(&path, b"allow view\nlet x = \"caf\xe9\"\n").unwrap();
    let diagnostic = read_source(&path, "latin1.warden").unwrap_err();
    assert_eq!(diagnostic.code().as_deref(), Some("warden::encoding"));
    assert_eq!(diagnostic.location().as_deref(), Some("latin1.warden:2:13"));
}

#[test]
fn a_binary_file_gets_a_located_diagnostic() {
    let dir = scratch("binary");
    let path = dir.join("image.warden");
    // The start of a PNG file: its first byte, 0x89, is not UTF-8.
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0").unwrap();
    let diagnostic = read_source(&path, "image.warden").unwrap_err();
    assert_eq!(diagnostic.location().as_deref(), Some("image.warden:1:1"));
    assert!(diagnostic.render(false).contains("UTF-8"));
}

#[test]
fn a_file_of_control_characters_gets_one_diagnostic_per_run() {
    // Valid UTF-8 but not text: zero bytes and other control characters.
    let mut text = String::from("allow view\n");
    text.push_str(&"\0".repeat(10_000));
    text.push_str("\nallow list\n");
    text.push_str(&"\u{1}\u{2}\u{7f}".repeat(1_000));
    let outcome = parse_small_stack(text);
    assert_eq!(
        outcome.diagnostics,
        vec![
            "2:1 warden::syntax::character",
            "4:1 warden::syntax::character"
        ]
    );
}

#[test]
fn the_binary_reports_huge_nesting_and_bad_files_with_exit_3() {
    let dir = scratch("binary_check");
    let inputs = huge_inputs();
    for (index, (_, text)) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("deep{index:02}.warden")), text).unwrap();
    }
    std::fs::write(
        dir.join("latin1.warden"),
        b"allow view\nlet x = \"caf\xe9\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("empty.warden"), b"").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "-p"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for index in 0..inputs.len() {
        let located = format!("deep{index:02}.warden:1:");
        assert!(stderr.contains(&located), "{located} in:\n{stderr:.2000}");
    }
    assert!(stderr.contains("expression is too large"));
    assert!(stderr.contains("latin1.warden:2:13"), "{stderr:.2000}");
    assert!(stderr.contains("not valid UTF-8"));
    let errors = inputs.len() + 1;
    assert!(
        stderr.contains(&format!(
            "{} files checked, {errors} errors",
            inputs.len() + 1
        )),
        "{stderr:.2000}"
    );
}

#[test]
fn an_empty_file_is_valid() {
    let dir = scratch("empty");
    std::fs::write(dir.join("empty.warden"), b"").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "-p"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}
