//! The README's tour, run: every fenced block is read out of README.md and checked against the
//! bundled policies (`policies/`), so the tour cannot drift from what Warden does.
//!
//! - `warden` blocks are excerpts: each paragraph is a run of consecutive lines of one bundled
//!   `.warden` file (comments and blank lines aside), and the blocks together (the tests
//!   apart) check clean as a policy set of their own.
//! - The `json` block is a data-file excerpt: it loads against the bundled declarations, and
//!   each entity and role binding in it is one of the bundled data files'.
//! - `sh` blocks are run: `cargo run --release -- ARGS` runs the warden binary with ARGS in the
//!   repository (`serve` is the server below; `eval` may answer deny), and `curl` calls go to a
//!   server on the bundled policies, their answers compared with the `# {...}` line after them.
//! - The `warden check` transcript is replayed: the slips it shows are added to a copy of
//!   `policies/rules.warden` at the lines shown, and `warden check` must print the transcript.

use std::process::Command;

use serde_json::Value as JsonValue;

use crate::gateway::repo;
use crate::server::TestServer;

/// A fenced block: its language (`""` when none) and its text.
struct Block {
    lang: String,
    text: String,
}

fn blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in readme.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_string(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed fence in README.md");
    blocks
}

fn of(lang: &str) -> Vec<String> {
    blocks()
        .into_iter()
        .filter(|b| b.lang == lang)
        .map(|b| b.text)
        .collect()
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with("//")
}

#[test]
fn readme_policy_excerpts_are_the_bundled_policies() {
    let mut paths = Vec::new();
    crate::fmt::warden_files(&repo().join("policies"), &mut paths);
    let files: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| is_content(l))
                .map(|l| l.trim_end().to_string())
                .collect()
        })
        .collect();
    let excerpts = of("warden");
    assert!(excerpts.len() >= 4, "the tour's policy blocks are gone");
    for excerpt in &excerpts {
        for paragraph in excerpt.split("\n\n") {
            let lines: Vec<String> = paragraph
                .lines()
                .filter(|l| is_content(l))
                .map(|l| l.trim_end().to_string())
                .collect();
            if lines.is_empty() {
                continue;
            }
            let found = files
                .iter()
                .any(|file| file.windows(lines.len()).any(|run| run == lines.as_slice()));
            assert!(
                found,
                "README.md shows lines that no file in policies/ has, in this order:\n{}",
                lines.join("\n")
            );
        }
    }
    // Together (the tests apart, which need their data), the excerpts are a policy set.
    let dir = tempfile::tempdir().unwrap();
    let declarations: Vec<&String> = excerpts
        .iter()
        .filter(|e| !e.trim_start().starts_with("test "))
        .collect();
    let text: String = declarations.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.path().join("tour.warden"), text).unwrap();
    let loaded = warden::engine::load_directory(dir.path()).unwrap();
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
}

#[test]
fn readme_data_excerpt_loads_and_is_the_bundled_data() {
    let excerpts = of("json");
    assert_eq!(excerpts.len(), 1, "the tour's data block");
    let excerpt = &excerpts[0];
    // It loads against the bundled declarations.
    let loaded = warden::engine::load_directory(&repo().join("policies")).unwrap();
    let schema = loaded.schema.as_ref().unwrap();
    let source = warden::source::SourceFile::new("README.md", excerpt.clone());
    let (_, problems) = warden::data::load_store(&[source], schema);
    assert!(problems.is_empty(), "{problems:#?}");
    // Each entity and binding is the bundled data's.
    let mut bundled: Vec<JsonValue> = Vec::new();
    for entry in std::fs::read_dir(repo().join("policies/data")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let file: JsonValue = serde_json::from_str(&text).unwrap();
        for key in ["entities", "roles"] {
            bundled.extend(file[key].as_array().into_iter().flatten().cloned());
        }
    }
    let shown: JsonValue = serde_json::from_str(excerpt).unwrap();
    for key in ["entities", "roles"] {
        for item in shown[key].as_array().unwrap() {
            assert!(
                bundled.contains(item),
                "README.md shows {item} that policies/data/ does not hold"
            );
        }
    }
}

/// Splits a command line as a POSIX shell would for the tour's commands: words, single and
/// double quotes, backslash-newline continuations, and a `#` comment. `None` while the command
/// goes on (an open quote, a line ending in a backslash).
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
                chars.peek()?;
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// The commands of a `sh` block, each with the `# ` line that follows it (its output).
fn commands(block: &str) -> Vec<(Vec<String>, Option<String>)> {
    let mut commands: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        if pending.is_empty()
            && let Some(output) = line.strip_prefix("# ")
        {
            if let Some(last) = commands.last_mut() {
                last.1 = Some(output.to_string());
            }
            continue;
        }
        pending.push_str(line);
        pending.push('\n');
        if let Some(words) = shell_words(&pending) {
            if !words.is_empty() {
                commands.push((words, None));
            }
            pending.clear();
        }
    }
    assert!(pending.is_empty(), "an unfinished command: {pending}");
    commands
}

#[tokio::test]
async fn readme_commands_run_and_answer_as_shown() {
    let policies = repo().join("policies");
    let mut config = crate::server::config(&policies);
    config.watch = false;
    let server = TestServer::start(config).await;
    let (mut curls, mut runs) = (0, 0);
    for block in of("sh") {
        for (words, output) in commands(&block) {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            match words.as_slice() {
                ["cargo", "test", ..] => {}
                ["cargo", "run", "--release", "--", "serve"] => {}
                ["cargo", "run", "--release", "--", args @ ..] => {
                    let result = Command::new(env!("CARGO_BIN_EXE_warden"))
                        .args(args)
                        .current_dir(repo())
                        .env("NO_COLOR", "1")
                        .output()
                        .unwrap();
                    let code = result.status.code();
                    // `eval` exits 1 on a deny, which is an answer too.
                    let fine =
                        code == Some(0) || (args.first() == Some(&"eval") && code == Some(1));
                    assert!(
                        fine,
                        "`warden {}` exited {code:?}:\n{}{}",
                        args.join(" "),
                        String::from_utf8_lossy(&result.stdout),
                        String::from_utf8_lossy(&result.stderr)
                    );
                    runs += 1;
                }
                ["curl", args @ ..] => {
                    let url = args.iter().find(|a| a.starts_with("http://")).unwrap();
                    let path = url.trim_start_matches("http://127.0.0.1:8181");
                    let body = args
                        .iter()
                        .position(|a| *a == "-d")
                        .and_then(|i| args.get(i + 1));
                    let reply = match body {
                        Some(body) => server.http.post(path, body).await,
                        None => server.http.get(path).await,
                    };
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    let shown: JsonValue = serde_json::from_str(
                        output.as_deref().expect("the answer after a curl call"),
                    )
                    .unwrap();
                    assert_eq!(reply.json(), shown, "`curl {}`", args.join(" "));
                    curls += 1;
                }
                other => panic!("README.md runs a command the test does not know: {other:?}"),
            }
        }
    }
    assert!(
        curls >= 1 && runs >= 4,
        "the tour's commands are gone ({curls} curl, {runs} runs)"
    );
    server.running.shutdown().await;
}

#[test]
fn readme_check_transcript_is_what_check_prints() {
    let transcript = blocks()
        .into_iter()
        .find(|b| b.lang.is_empty() && b.text.starts_with("$ warden check\n"))
        .expect("the `warden check` transcript")
        .text;
    let shown = transcript.trim_start_matches("$ warden check\n");
    // The lines of rules.warden the diagnostics show: `NN │ text`.
    let root = tempfile::tempdir().unwrap();
    crate::lsp::copy_dir(&repo().join("policies"), &root.path().join("policies"));
    let rules_path = root.path().join("policies/rules.warden");
    let mut rules: Vec<String> = std::fs::read_to_string(&rules_path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let original = rules.len();
    for line in shown.lines() {
        let Some((number, text)) = line.split_once(" │") else {
            continue;
        };
        let Ok(number) = number.trim().parse::<usize>() else {
            continue;
        };
        let text = text.strip_prefix(' ').unwrap_or(text);
        if number <= original {
            assert_eq!(rules[number - 1], text, "rules.warden line {number}");
        } else {
            while rules.len() < number {
                rules.push(String::new());
            }
            rules[number - 1] = text.to_string();
        }
    }
    assert!(rules.len() > original, "the transcript adds no slips");
    std::fs::write(&rules_path, rules.join("\n") + "\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("check")
        .current_dir(root.path())
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_POLICIES")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let normalise = |text: &str| -> String {
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(normalise(&printed), normalise(shown), "{printed}");
}
