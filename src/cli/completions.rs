//! `warden completions <shell>`: a completion script for the shell, on standard output.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, Exit};

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Print a completion script for SHELL on standard output. For example:\n\n  \
    warden completions bash > ~/.local/share/bash-completion/completions/warden\n  \
    warden completions zsh > \"${fpath[1]}/_warden\"\n  \
    warden completions fish > ~/.config/fish/completions/warden.fish"
)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &CompletionsArgs) -> Exit {
    // Generated into memory first: the generator cannot report a failed write, only panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "warden", &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Success,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot write standard output: {error}"
            );
            Exit::Internal
        }
    }
}
