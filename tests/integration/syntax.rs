//! The annotated syntax corpus in `tests/data/syntax/`.
//!
//! - `valid/*.warden` must parse with no diagnostic. Each non-empty file says on its first line
//!   how many items it holds (`// items: N`), so an item silently lost is caught too.
//! - `invalid/*.warden` announce, in `// expect: LINE:COLUMN CODE` lines at the top, exactly the
//!   diagnostics they must produce, in order. Their rendered diagnostics are `insta` snapshots in
//!   `snapshots/`, so a change in wording is reviewed like code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use warden::ast::{
    Actions, ConditionKind, Expr, ExprKind, Item, TestStatement, TypeExpr, UnaryOp, WithClause,
};
use warden::source::{Diagnostic, SourceFile};
use warden::syntax::{self, ParsedFile};

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/syntax")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "warden"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

/// Reads a corpus file under a short, machine-independent name (`invalid/cedar.warden`).
fn load(path: &Path) -> SourceFile {
    let kind = path.parent().and_then(Path::file_name).unwrap();
    let name = format!(
        "{}/{}",
        kind.to_string_lossy(),
        path.file_name().unwrap().to_string_lossy()
    );
    warden::source::read_source(path, &name).unwrap()
}

fn parse(path: &Path) -> (ParsedFile, Vec<Diagnostic>) {
    syntax::parse(&load(path))
}

/// The values of the `// KEY: value` header lines of a corpus file.
fn header(source: &SourceFile, key: &str) -> Vec<String> {
    let prefix = format!("// {key}:");
    source
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().to_string())
        .collect()
}

#[test]
fn valid_files_parse_cleanly() {
    for path in corpus("valid") {
        let (parsed, diagnostics) = parse(&path);
        let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
        assert!(
            diagnostics.is_empty(),
            "{} must parse cleanly, but:\n{}",
            path.display(),
            rendered.join("\n")
        );
        let expected = match header(&parsed.source, "items").as_slice() {
            [count] => count.parse::<usize>().unwrap(),
            [] if parsed.source.text().is_empty() => 0,
            other => panic!(
                "{}: want one `// items: N` line, got {other:?}",
                path.display()
            ),
        };
        assert_eq!(
            parsed.ast.items.len(),
            expected,
            "{}: number of items",
            path.display()
        );
    }
}

#[test]
fn the_empty_file_and_a_file_of_comments_have_no_items() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/syntax/valid");
    let (empty, problems) = parse(&dir.join("empty.warden"));
    assert!(empty.source.text().is_empty() && empty.ast.items.is_empty() && problems.is_empty());
    let (comments, problems) = parse(&dir.join("only_comments.warden"));
    assert!(comments.ast.items.is_empty() && problems.is_empty());
    assert_eq!(comments.comments.len(), 4, "every comment is kept");
}

#[test]
fn invalid_files_give_the_diagnostics_they_announce() {
    // Every file is checked before failing, so one run shows every mismatch.
    let mut mismatches = Vec::new();
    for path in corpus("invalid") {
        let (parsed, diagnostics) = parse(&path);
        let expected = header(&parsed.source, "expect");
        assert!(
            !expected.is_empty(),
            "{}: an invalid file must announce its diagnostics with `// expect:` lines",
            path.display()
        );
        let actual: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let location = d.location().unwrap();
                let (_, line_col) = location.split_once(':').unwrap();
                format!("{line_col} {}", d.code().unwrap())
            })
            .collect();
        if actual != expected {
            mismatches.push(format!(
                "{}:\n  expected {expected:?}\n  actual   {actual:?}",
                path.display()
            ));
        }
        for diagnostic in &diagnostics {
            assert!(diagnostic.is_error(), "{diagnostic:?} is an error");
            assert!(
                !diagnostic.message().ends_with('.'),
                "{diagnostic:?}: no final period"
            );
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn invalid_files_render_like_rustc() {
    insta::glob!("../data/syntax/invalid", "*.warden", |path| {
        let (_, diagnostics) = parse(path);
        let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
        insta::assert_snapshot!(rendered.join("\n"));
    });
}

#[test]
fn three_mistakes_give_three_located_diagnostics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/syntax/invalid/three_mistakes.warden");
    let (parsed, diagnostics) = parse(&path);
    let lines: BTreeSet<usize> = diagnostics
        .iter()
        .map(|d| {
            let span = d.primary_span().unwrap();
            parsed.source.line_col(span.start as usize).0
        })
        .collect();
    assert_eq!(diagnostics.len(), 3, "{diagnostics:?}");
    assert_eq!(lines.len(), 3, "three different lines: {diagnostics:?}");
    // The items between the mistakes still parse: the `let` and the last rule.
    assert_eq!(parsed.ast.items.len(), 2);
}

/// Every construct the grammar knows appears somewhere in the valid corpus, so a grammar change
/// that breaks one is caught by `valid_files_parse_cleanly`.
#[test]
fn the_valid_corpus_covers_every_construct() {
    let mut seen = BTreeSet::new();
    for path in corpus("valid") {
        let (parsed, _) = parse(&path);
        for item in &parsed.ast.items {
            visit_item(item, &mut seen);
        }
    }
    let all = [
        "item:entity",
        "item:action",
        "item:action-group",
        "item:role",
        "item:rule",
        "item:let",
        "item:test",
        "item:capability",
        "item:limit",
        "limit:calendar",
        "annotation",
        "annotation-value",
        "entity:parents",
        "entity:properties",
        "attr:optional",
        "action:context",
        "action:properties",
        "action:on",
        "action:in",
        "action:by",
        "role:inherits",
        "grant:condition",
        "actions:any",
        "actions:list",
        "condition:if",
        "condition:unless",
        "type:named",
        "type:set",
        "type:record",
        "test:data",
        "test:given",
        "test:given-parents",
        "test:given-role",
        "test:given-role-on",
        "expect:with-context",
        "expect:with-properties",
        "expect:with-capability",
        "expect:at",
        "expect:by",
        "expr:bool",
        "expr:int",
        "expr:str",
        "expr:duration",
        "expr:entity",
        "expr:set",
        "expr:record",
        "expr:var",
        "expr:let",
        "expr:attr",
        "expr:properties",
        "expr:call",
        "expr:not",
        "expr:neg",
        "expr:has",
        "expr:like",
        "expr:is",
        "expr:is_empty",
        "expr:if",
        "expr:action-test",
        "op:or",
        "op:and",
        "op:==",
        "op:!=",
        "op:<",
        "op:<=",
        "op:>",
        "op:>=",
        "op:in",
        "op:contains",
        "op:contains all",
        "op:contains any",
        "op:+",
        "op:-",
    ];
    let missing: Vec<&str> = all.iter().copied().filter(|c| !seen.contains(*c)).collect();
    assert!(missing.is_empty(), "the valid corpus lacks: {missing:?}");
}

fn visit_item(item: &Item, seen: &mut BTreeSet<String>) {
    let annotations = match item {
        Item::Entity(e) => {
            mark(seen, "item:entity");
            if !e.parents.is_empty() {
                mark(seen, "entity:parents");
            }
            if e.properties.is_some() {
                mark(seen, "entity:properties");
            }
            for attr in e.attributes.iter().chain(e.properties.iter().flatten()) {
                visit_type(&attr.ty, seen);
                if attr.optional {
                    mark(seen, "attr:optional");
                }
            }
            &e.annotations
        }
        Item::Action(a) => {
            mark(seen, "item:action");
            if a.context.is_some() {
                mark(seen, "action:context");
            }
            if a.properties.is_some() {
                mark(seen, "action:properties");
            }
            if !a.resource_types.is_empty() {
                mark(seen, "action:on");
            }
            if !a.parents.is_empty() {
                mark(seen, "action:in");
            }
            if !a.subject_types.is_empty() {
                mark(seen, "action:by");
            }
            &a.annotations
        }
        Item::ActionGroup(g) => {
            mark(seen, "item:action-group");
            &g.annotations
        }
        Item::Role(r) => {
            mark(seen, "item:role");
            if !r.inherits.is_empty() {
                mark(seen, "role:inherits");
            }
            for grant in &r.grants {
                visit_actions(&grant.actions, seen);
                if let Some(condition) = &grant.condition {
                    seen.insert("grant:condition".into());
                    visit_condition(condition.kind, &condition.expr, seen);
                }
                visit_annotations(&grant.annotations, seen);
            }
            &r.annotations
        }
        Item::Rule(r) => {
            mark(seen, "item:rule");
            visit_actions(&r.actions, seen);
            if let Some(condition) = &r.condition {
                visit_condition(condition.kind, &condition.expr, seen);
            }
            &r.annotations
        }
        Item::Let(l) => {
            mark(seen, "item:let");
            visit_expr(&l.value, seen);
            &l.annotations
        }
        Item::Test(t) => {
            mark(seen, "item:test");
            for statement in &t.statements {
                visit_statement(statement, seen);
            }
            &t.annotations
        }
        Item::Route(r) => {
            mark(seen, "item:route");
            &r.annotations
        }
        Item::Capability(c) => {
            mark(seen, "item:capability");
            if let Some(mint) = c.mint() {
                visit_expr(mint, seen);
            }
            &c.annotations
        }
        Item::Limit(l) => {
            mark(seen, "item:limit");
            if l.period.zone.is_some() {
                mark(seen, "limit:calendar");
            }
            visit_expr(&l.key, seen);
            if let Some(condition) = &l.condition {
                visit_expr(&condition.expr, seen);
            }
            &l.annotations
        }
    };
    visit_annotations(annotations, seen);
}

fn visit_annotations(annotations: &[warden::ast::Annotation], seen: &mut BTreeSet<String>) {
    for annotation in annotations {
        seen.insert("annotation".into());
        if annotation.value.is_some() {
            seen.insert("annotation-value".into());
        }
    }
}

fn visit_actions(actions: &Actions, seen: &mut BTreeSet<String>) {
    seen.insert(
        match actions {
            Actions::Any(_) => "actions:any",
            Actions::List(_) => "actions:list",
        }
        .into(),
    );
}

fn visit_condition(kind: ConditionKind, expr: &Expr, seen: &mut BTreeSet<String>) {
    seen.insert(
        match kind {
            ConditionKind::If => "condition:if",
            ConditionKind::Unless => "condition:unless",
        }
        .into(),
    );
    visit_expr(expr, seen);
}

fn visit_type(ty: &TypeExpr, seen: &mut BTreeSet<String>) {
    match ty {
        TypeExpr::Named(_) => {
            seen.insert("type:named".into());
        }
        TypeExpr::Set(element, _) => {
            seen.insert("type:set".into());
            visit_type(element, seen);
        }
        TypeExpr::Record(fields, _) => {
            seen.insert("type:record".into());
            for field in fields {
                visit_type(&field.ty, seen);
            }
        }
    }
}

fn visit_statement(statement: &TestStatement, seen: &mut BTreeSet<String>) {
    match statement {
        TestStatement::Data(_) => mark(seen, "test:data"),
        TestStatement::Given(given) => {
            mark(seen, "test:given");
            if !given.parents.is_empty() {
                mark(seen, "test:given-parents");
            }
            for (_, value) in &given.attributes {
                visit_expr(value, seen);
            }
        }
        TestStatement::GivenRole(given) => {
            mark(seen, "test:given-role");
            if given.on.is_some() {
                mark(seen, "test:given-role-on");
            }
        }
        TestStatement::Expect(expectation) => {
            for with in &expectation.with {
                match with {
                    WithClause::Context(record) => {
                        mark(seen, "expect:with-context");
                        visit_expr(record, seen);
                    }
                    WithClause::Properties(_, record) => {
                        mark(seen, "expect:with-properties");
                        visit_expr(record, seen);
                    }
                    WithClause::Capability(_, record) => {
                        mark(seen, "expect:with-capability");
                        if let Some(record) = record {
                            visit_expr(record, seen);
                        }
                    }
                }
            }
            if let Some(at) = &expectation.at {
                mark(seen, "expect:at");
                visit_expr(at, seen);
            }
            if expectation.by.is_some() {
                mark(seen, "expect:by");
            }
        }
    }
}

fn visit_expr(expr: &Expr, seen: &mut BTreeSet<String>) {
    let name = match &expr.kind {
        ExprKind::Bool(_) => "expr:bool".to_string(),
        ExprKind::Int(_) => "expr:int".to_string(),
        ExprKind::Str(_) => "expr:str".to_string(),
        ExprKind::Duration(_) => "expr:duration".to_string(),
        ExprKind::Entity { .. } => "expr:entity".to_string(),
        ExprKind::Set(elements) => {
            elements.iter().for_each(|e| visit_expr(e, seen));
            "expr:set".to_string()
        }
        ExprKind::Record(entries) => {
            entries.iter().for_each(|(_, e)| visit_expr(e, seen));
            "expr:record".to_string()
        }
        ExprKind::Var(_) => "expr:var".to_string(),
        ExprKind::Let(_) => "expr:let".to_string(),
        ExprKind::ActionTest(_) => "expr:action-test".to_string(),
        ExprKind::Attr { base, .. } => {
            visit_expr(base, seen);
            "expr:attr".to_string()
        }
        ExprKind::Properties(base) => {
            visit_expr(base, seen);
            "expr:properties".to_string()
        }
        ExprKind::Call { args, .. } => {
            args.iter().for_each(|e| visit_expr(e, seen));
            "expr:call".to_string()
        }
        ExprKind::Unary { op, operand } => {
            visit_expr(operand, seen);
            match op {
                UnaryOp::Not => "expr:not".to_string(),
                UnaryOp::Neg => "expr:neg".to_string(),
                UnaryOp::IsEmpty => "expr:is_empty".to_string(),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => {
            visit_expr(lhs, seen);
            visit_expr(rhs, seen);
            format!("op:{}", op.as_str())
        }
        ExprKind::Has { base, .. } => {
            visit_expr(base, seen);
            "expr:has".to_string()
        }
        ExprKind::Like { base, .. } => {
            visit_expr(base, seen);
            "expr:like".to_string()
        }
        ExprKind::Is { base, .. } => {
            visit_expr(base, seen);
            "expr:is".to_string()
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            visit_expr(cond, seen);
            visit_expr(then, seen);
            visit_expr(otherwise, seen);
            "expr:if".to_string()
        }
    };
    seen.insert(name);
}

fn mark(seen: &mut BTreeSet<String>, construct: &str) {
    seen.insert(construct.to_string());
}
