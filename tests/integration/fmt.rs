//! The formatter: snapshots of the corpus in `tests/data/fmt/`, and on every file (corpus and
//! bundled policies) the two promises: the output parses to the same tree, and formatting the
//! output again changes nothing.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is how a test reports"
)]

use std::path::Path;

use warden::source::SourceFile;
use warden::syntax::lexer::lex;
use warden::syntax::{ParsedFile, format_file, parse};

/// Parses `text`, failing the test on any diagnostic.
pub fn parse_ok(name: &str, text: &str) -> ParsedFile {
    let (parsed, diagnostics) = parse(&SourceFile::new(name, text));
    assert!(
        diagnostics.is_empty(),
        "{name} does not parse:\n{}\n--- text ---\n{text}",
        diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<String>()
    );
    parsed
}

/// The comments of a text, as written.
fn comment_texts(text: &str) -> Vec<String> {
    lex(text).comments.into_iter().map(|c| c.text).collect()
}

/// Formats `text` and checks the promises; returns the formatted text.
pub fn format_checked(name: &str, text: &str) -> String {
    let parsed = parse_ok(name, text);
    let once = format_file(&parsed);
    let reparsed = parse_ok(&format!("{name} (formatted)"), &once);
    assert_eq!(
        reparsed.ast, parsed.ast,
        "{name}: the formatted text means something else:\n{once}"
    );
    assert_eq!(
        comment_texts(&once),
        comment_texts(text),
        "{name}: comments were lost, duplicated or reordered:\n{once}"
    );
    let twice = format_file(&reparsed);
    assert_eq!(twice, once, "{name}: formatting is not idempotent");
    for (number, line) in once.lines().enumerate() {
        assert_eq!(
            line.trim_end(),
            line,
            "{name}: trailing whitespace on line {}",
            number + 1
        );
    }
    once
}

#[test]
fn corpus_snapshots() {
    insta::glob!("../data/fmt", "*.warden", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let formatted = format_checked(&name, &text);
        insta::assert_snapshot!(formatted);
    });
}

fn warden_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            warden_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "warden") {
            found.push(path);
        }
    }
}

#[test]
fn bundled_policies_are_formatted() {
    let mut files = Vec::new();
    warden_files(Path::new("policies"), &mut files);
    assert!(!files.is_empty());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = format_checked(&path.display().to_string(), &text);
        assert_eq!(
            formatted,
            text,
            "{} is not in the canonical layout; run `warden fmt`",
            path.display()
        );
    }
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(format_checked("empty", ""), "");
    assert_eq!(format_checked("blank", "\n\n  \n"), "");
    assert_eq!(
        format_checked("only comments", "  // a\n\n\n/* b */   // c\n"),
        "// a\n\n/* b */ // c\n"
    );
}
