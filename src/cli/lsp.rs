//! `warden lsp`: the language server, for editors (docs/editors.md).

use std::path::PathBuf;

use crate::cli::Exit;
use crate::cli::Format;
use crate::cli::output::print_diagnostics;
use crate::lsp;
use crate::source::Diagnostic;

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Serve editors over the Language Server Protocol on standard input and output: \
                  diagnostics as you type (those of `warden check`, for the whole policy \
                  directory), hover, go to definition, references, completion, quick fixes and \
                  formatting (that of `warden fmt`). An editor starts it; see docs/editors.md."
)]
pub struct LspArgs {
    /// Talk over standard input and output (the only transport; accepted because editors'
    /// clients pass it).
    #[arg(long)]
    pub stdio: bool,
    /// The policy directory. Default: for each opened file, the highest directory of the run
    /// of directories holding `.warden` files that starts at the file.
    #[arg(short = 'p', long = "policies", value_name = "DIR")]
    pub policies: Option<PathBuf>,
}

pub fn run(args: &LspArgs) -> Exit {
    let options = lsp::Options {
        policies: args.policies.clone(),
    };
    match lsp::serve_stdio(options) {
        Ok(()) => Exit::Success,
        Err(error) => {
            print_diagnostics(&[Diagnostic::new(error)], Format::Human);
            Exit::Internal
        }
    }
}
