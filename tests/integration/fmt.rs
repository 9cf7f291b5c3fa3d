//! The formatter: snapshots of the corpus in `tests/data/fmt/`, and on every file (corpus and
//! bundled policies) the two promises: the output parses to the same tree, and formatting the
//! output again changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed unwrap is how a test reports"
)]

use std::path::Path;

use warden::source::SourceFile;
use warden::syntax::lexer::lex;
use warden::syntax::{format_file, parse};

/// The comments of a text, as written.
fn comment_texts(text: &str) -> Vec<String> {
    lex(text).comments.into_iter().map(|c| c.text).collect()
}

/// Formats `text` and checks the promises: the output parses to the same tree, keeps every
/// comment once and in order, has no trailing whitespace, and a second pass changes nothing.
/// Returns the formatted text, or what went wrong.
pub fn check_format(name: &str, text: &str) -> Result<String, String> {
    let parse_quietly = |label: &str, text: &str| {
        let (parsed, diagnostics) = parse(&SourceFile::new(label, text));
        if diagnostics.is_empty() {
            Ok(parsed)
        } else {
            Err(format!(
                "{label} does not parse: {diagnostics:?}\n--- text ---\n{text}"
            ))
        }
    };
    let parsed = parse_quietly(name, text)?;
    let once = format_file(&parsed);
    let reparsed = parse_quietly(&format!("{name} (formatted)"), &once)?;
    if reparsed.ast != parsed.ast {
        return Err(format!(
            "{name}: the formatted text means something else:\n{once}"
        ));
    }
    if comment_texts(&once) != comment_texts(text) {
        return Err(format!(
            "{name}: comments were lost, duplicated or reordered:\n{text}\n--- formatted ---\n{once}"
        ));
    }
    let twice = format_file(&reparsed);
    if twice != once {
        return Err(format!(
            "{name}: formatting is not idempotent\n--- input ---\n{text}\n--- once ---\n{once}\n--- twice ---\n{twice}"
        ));
    }
    if let Some((number, _)) = once
        .lines()
        .enumerate()
        .find(|(_, line)| line.trim_end() != *line)
    {
        return Err(format!(
            "{name}: trailing whitespace on line {}",
            number + 1
        ));
    }
    Ok(once)
}

/// [`check_format`], failing the test on any broken promise.
pub fn format_checked(name: &str, text: &str) -> String {
    match check_format(name, text) {
        Ok(formatted) => formatted,
        Err(problem) => panic!("{problem}"),
    }
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

pub fn warden_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
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

mod properties {
    use proptest::prelude::*;
    use warden::source::SourceFile;
    use warden::syntax::{ParsedFile, format_file, parse};

    use crate::ast_gen;

    /// Prints a tree that has no source text (and so no comments).
    fn print(file: &warden::ast::File) -> String {
        format_file(&ParsedFile {
            source: SourceFile::new("generated.warden", ""),
            ast: file.clone(),
            comments: Vec::new(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_trees_parse_back_to_themselves(file in ast_gen::file()) {
            let text = print(&file);
            let (parsed, diagnostics) = parse(&SourceFile::new("generated.warden", text.clone()));
            prop_assert!(
                diagnostics.is_empty(),
                "the printed tree does not parse: {:?}\n{}",
                diagnostics,
                text
            );
            prop_assert_eq!(&parsed.ast, &file, "printed as:\n{}", text);
            let again = format_file(&parsed);
            prop_assert_eq!(again, text);
        }

        #[test]
        fn comments_anywhere_are_kept_once_and_settle(
            file in ast_gen::file(),
            picks in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..8),
        ) {
            let text = print(&file);
            let with_comments = insert_comments(&text, &picks);
            let checked = crate::fmt::check_format("commented.warden", &with_comments);
            prop_assert!(checked.is_ok(), "{}", checked.err().unwrap_or_default());
        }
    }

    /// Puts comments between tokens of `text`: line and block comments, on their own lines or
    /// after code.
    fn insert_comments(text: &str, picks: &[(prop::sample::Index, u8)]) -> String {
        let lexed = warden::syntax::lexer::lex(text);
        // Not inside an entity reference: `User /* c */ ::"alice"` is one literal to the
        // printer, which moves such a comment after it (docs/formatting.md), and the move can
        // change how the enclosing condition breaks once.
        let is_colons = |token: Option<&warden::syntax::lexer::Spanned<'_>>| {
            matches!(
                token,
                Some((_, warden::syntax::token::Token::ColonColon, _))
            )
        };
        let mut boundaries: Vec<usize> = (0..lexed.tokens.len())
            .filter(|&i| !is_colons(lexed.tokens.get(i)) && !is_colons(lexed.tokens.get(i + 1)))
            .filter_map(|i| lexed.tokens.get(i).map(|(_, _, end)| *end as usize))
            .collect();
        boundaries.push(0);
        let mut inserts: Vec<(usize, String)> = picks
            .iter()
            .enumerate()
            .map(|(n, (index, style))| {
                let at = *index.get(&boundaries);
                let comment = match style {
                    0 => format!(" // c{n}\n"),
                    1 => format!(" /* c{n} */ "),
                    2 => format!("\n// c{n}\n"),
                    _ => format!("\n\n/* c{n}\n */\n"),
                };
                (at, comment)
            })
            .collect();
        inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let mut out = text.to_string();
        for (at, comment) in inserts {
            out.insert_str(at, &comment);
        }
        out
    }
}
