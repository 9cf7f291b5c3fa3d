//! `warden completions <shell>`: a completion script that knows every subcommand and flag.

use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("the warden binary runs")
}

#[test]
fn completions_are_printed_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = warden(&["completions", shell]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{shell}: {stderr}");
        let script = String::from_utf8_lossy(&output.stdout);
        for word in ["check", "fmt", "lsp", "completions", "deny-warnings"] {
            assert!(script.contains(word), "{shell}: no `{word}` in\n{script}");
        }
    }
    // An unknown shell is a usage error.
    let output = warden(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
}
