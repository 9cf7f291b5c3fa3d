//! The one depth rule: an expression nests at most `check::MAX_DEPTH` levels with its `let`s
//! expanded, and every command holds to it — `check` refuses exactly what `serve` refuses, and
//! what `check` accepts compiles, evaluates, formats and tests on any thread without running
//! out of stack.
//!
//! The shape is the one that once took the server down: `let a0 = resource.public`, then
//! `let a{i} = a{i-1} and true`, and a rule on the last. `a{i}` is `i + 2` levels deep, so a
//! chain of `MAX_DEPTH - 1` `let`s is exactly at the limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use warden::check::MAX_DEPTH;
use warden::engine::Engine;
use warden::eval::{self, request};
use warden::source::{Diagnostic, SourceFile};

use crate::server::{EVALUATION, PolicyDir, ServerProcess, spawn_server};

/// Just below, at and just above the limit, in `let`s.
const BELOW: usize = MAX_DEPTH - 2;
const AT: usize = MAX_DEPTH - 1;
const ABOVE: usize = MAX_DEPTH;

/// `lets` chained `let`s and a rule on the last, with a test that it allows.
fn chain(lets: usize) -> String {
    let mut text = String::from("let a0 = resource.public\n");
    for i in 1..lets {
        text.push_str(&format!("let a{i} = a{} and true\n", i - 1));
    }
    text.push_str(&format!("\nallow view if a{}\n", lets - 1));
    text.push_str(
        "\ntest \"deep\" {\n  given Photo::\"p\" { public: true }\n  \
         allow User::\"u\" view Photo::\"p\"\n}\n",
    );
    text
}

fn chain_dir(name: &str, lets: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("depth")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("chain.warden"), chain(lets)).unwrap();
    dir
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn errors(lets: usize) -> Vec<Diagnostic> {
    let (parsed, mut diagnostics) =
        warden::syntax::parse(&SourceFile::new("chain.warden", chain(lets)));
    diagnostics.extend(warden::check::check(&[parsed]).diagnostics);
    diagnostics.retain(Diagnostic::is_error);
    diagnostics
}

#[test]
fn check_accepts_up_to_the_limit_and_refuses_beyond_once() {
    assert!(errors(BELOW).is_empty());
    assert!(errors(AT).is_empty());
    for lets in [ABOVE, 4_000] {
        let found = errors(lets);
        assert_eq!(found.len(), 1, "{lets}: {found:?}");
        assert_eq!(
            found[0].code().as_deref(),
            Some("warden::check::too_deep"),
            "{lets}"
        );
    }
    insta::assert_snapshot!("too_deep", errors(ABOVE)[0].render(false));
}

/// Counted through any expression, not only `and`: a `let` used twice on one level, inside a
/// call, a set and a negation.
#[test]
fn every_kind_of_nesting_counts_and_a_let_counts_as_its_value() {
    let text = |lets: usize| {
        let mut text = String::from("let b0 = resource.n\n");
        for i in 1..lets {
            let p = i - 1;
            text.push_str(&match i % 3 {
                0 => format!("let b{i} = [b{p}, b{p}] contains 1\n"),
                1 => format!("let b{i} = -(b{p})\n"),
                _ => format!("let b{i} = not b{p}\n"),
            });
        }
        text.push_str(&format!("allow view if b{} == b0\n", lets - 1));
        text
    };
    // `b0` is 2 deep; a `contains` over a set literal adds two levels, `-` and `not` one;
    // the rule's `==` one more.
    let depth = |lets: usize| {
        3 + (1..lets)
            .map(|i| if i % 3 == 0 { 2 } else { 1 })
            .sum::<usize>()
    };
    let check = |lets: usize| {
        let (parsed, mut diagnostics) =
            warden::syntax::parse(&SourceFile::new("b.warden", text(lets)));
        diagnostics.extend(warden::check::check(&[parsed]).diagnostics);
        diagnostics
            .iter()
            .filter_map(Diagnostic::code)
            .filter(|code| code == "warden::check::too_deep")
            .count()
    };
    let at = (1..MAX_DEPTH)
        .rev()
        .find(|&n| depth(n) <= MAX_DEPTH)
        .unwrap();
    assert_eq!(check(at), 0, "{at} lets, {} deep", depth(at));
    assert_eq!(check(at + 1), 1, "{} lets, {} deep", at + 1, depth(at + 1));
}

/// The evaluator at the limit on a thread with a small stack: it grows its stack rather than
/// overflow, whoever made the thread.
#[test]
fn a_policy_at_the_limit_decides_on_a_small_thread() {
    let dir = chain_dir("small-thread", AT);
    let decided = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let engine = Engine::load(&dir).unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
            let body = json!({
                "subject": {"type": "User", "id": "u"},
                "action": {"name": "view"},
                "resource": {"type": "Photo", "id": "p"},
            });
            let now = jiff::Timestamp::UNIX_EPOCH;
            let request = request::read(&engine.program, body.to_string().as_bytes(), now).unwrap();
            // `Photo::"p"` is not stored: the rule's first read errors, after a walk down
            // the whole chain.
            let decision = eval::decide(&engine.program, &request);
            !decision.errors.is_empty()
        })
        .unwrap()
        .join()
        .expect("deciding at the limit overflowed or panicked");
    assert!(decided);
}

#[test]
fn eval_and_test_run_at_the_limit_and_refuse_beyond() {
    let at = chain_dir("cli-at", AT);
    let at = at.to_str().unwrap();
    let request = [
        "--subject",
        "User::\"u\"",
        "--action",
        "view",
        "--resource",
        "Photo::\"p\"",
    ];
    let out = warden(&[&["eval", "-p", at][..], &request].concat());
    // The store has no `Photo::"p"`: the rule errors, so the request is denied (exit 1 or 2),
    // but it was compiled and evaluated.
    assert!(matches!(out.status.code(), Some(1 | 2)), "{out:?}");
    let out = warden(&["test", "-p", at]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let huge = chain_dir("cli-huge", 100_000);
    let huge = huge.to_str().unwrap();
    let eval: Vec<&str> = [&["eval", "-p", huge][..], &request].concat();
    for args in [eval, vec!["test", "-p", huge]] {
        let out = warden(&args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("nested more than 1024 levels deep"),
            "{stderr}"
        );
    }
}

/// The formatter keeps a chain as it is (one item at a time, however long the chain) and
/// formats it the same way twice.
#[test]
fn fmt_formats_a_long_chain_and_is_idempotent() {
    let dir = chain_dir("fmt", 4_000);
    let out = warden(&["fmt", "-p", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let once = std::fs::read_to_string(dir.join("chain.warden")).unwrap();
    let out = warden(&["fmt", "--check", "-p", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(once.contains("let a3999 = a3998 and true"));
}

/// Starts the real binary on `dir`, watching it.
fn serve(dir: &Path) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--debounce-ms",
            "50",
            "-p",
        ])
        .arg(dir);
    spawn_server(command)
}

#[test]
fn serve_refuses_a_chain_beyond_the_limit_at_start() {
    let dir = chain_dir("serve-start", 4_000);
    let out = warden(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "-p",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nested more than 1024 levels deep"),
        "{stderr}"
    );
}

/// A running server serves a chain at the limit (evaluated on its worker threads), and given
/// one beyond it keeps serving the last good version and says why.
#[tokio::test]
async fn a_running_server_keeps_serving_when_a_chain_grows_beyond_the_limit() {
    let dir = PolicyDir::new(&[("chain.warden", &chain(AT))]);
    let mut server = serve(&dir.path());
    let http = server.http.clone();
    let ask = || async {
        let reply = http
            .post_json(
                EVALUATION,
                &json!({
                    "subject": {"type": "User", "id": "u"},
                    "action": {"name": "view"},
                    "resource": {"type": "Photo", "id": "p", "properties": {}},
                }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    };
    let good = ask()
        .await
        .header("warden-policy-version")
        .unwrap()
        .to_string();

    dir.write("chain.warden", &chain(4_000));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = http.get("/v1/status").await.json();
        if !status["last_reload_error"].is_null() {
            break status;
        }
        assert!(Instant::now() < deadline, "no reload error: {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["version"], good.as_str());
    let message = status["last_reload_error"]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("nested more than 1024 levels deep"),
        "{status:#}"
    );
    let reply = ask().await;
    assert_eq!(reply.header("warden-policy-version"), Some(good.as_str()));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}

/// One link of a random chain: `a{i}` built on an earlier `let` in one of several shapes.
fn link(i: usize, shape: u8, back: usize) -> String {
    let base = format!("a{}", i.saturating_sub(back));
    let value = match shape {
        0 => format!("{base} and true"),
        1 => format!("not {base}"),
        2 => format!("[{base}] contains true"),
        3 => format!("(({base})) == true"),
        _ => format!("{base} or a0"),
    };
    format!("let a{i} = {value}\n")
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Chains of random shapes around the limit: a directory `check` accepts loads, decides
    /// on a small thread and formats to itself; one it refuses, every loader refuses.
    #[test]
    fn check_accepts_exactly_what_loads_and_decides(
        links in proptest::collection::vec(
            (0u8..5, proptest::sample::select(vec![1usize, 1, 1, 2])),
            700..1200,
        )
    ) {
        let mut text = String::from("let a0 = resource.public\n");
        for (i, (shape, back)) in links.iter().enumerate() {
            text.push_str(&link(i + 1, *shape, *back));
        }
        text.push_str(&format!("allow view if a{}\n", links.len()));
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("chain.warden"), &text).unwrap();
        let dir = root.path().to_path_buf();

        let loaded = warden::engine::load_directory(&dir).unwrap();
        let refused = loaded.has_errors();
        let too_deep = loaded
            .diagnostics
            .iter()
            .filter_map(Diagnostic::code)
            .filter(|code| code == "warden::check::too_deep")
            .count();
        // Each `let` that crosses the limit on its own is reported (with links that skip
        // one, two can); nothing else is wrong with these chains.
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let messages: Vec<String> = loaded.diagnostics.iter().map(Diagnostic::message).collect();
        proptest::prop_assert_eq!(refused, too_deep > 0, "{:?}", messages);
        proptest::prop_assert_eq!(errors, too_deep);
        let loads = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let engine = Engine::load(&dir).ok()?;
                let body = json!({
                    "subject": {"type": "User", "id": "u"},
                    "action": {"name": "view"},
                    "resource": {"type": "Photo", "id": "p"},
                });
                let request =
                    request::read(&engine.program, body.to_string().as_bytes(), jiff::Timestamp::UNIX_EPOCH)
                        .ok()?;
                Some(eval::decide(&engine.program, &request).allowed)
            })
            .unwrap()
            .join()
            .expect("loading or deciding overflowed or panicked");
        proptest::prop_assert_eq!(loads.is_some(), !refused);

        let (parsed, _) = warden::syntax::parse(&SourceFile::new("chain.warden", text));
        let formatted = warden::syntax::format_file(&parsed);
        let (again, problems) =
            warden::syntax::parse(&SourceFile::new("chain.warden", formatted.clone()));
        proptest::prop_assert!(problems.is_empty());
        proptest::prop_assert_eq!(warden::syntax::format_file(&again), formatted);
    }
}
