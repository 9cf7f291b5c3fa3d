//! `warden check`: load a policy directory and report every problem in it.

use std::io::Write;

use crate::cli::output::{print_diagnostics, summary};
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    pub deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: &CheckArgs) -> Exit {
    let loaded = match engine::load_directory(&args.dir.policies) {
        Ok(loaded) => loaded,
        Err(diagnostic) => {
            print_diagnostics(std::slice::from_ref(&diagnostic), args.format);
            return Exit::InvalidInput;
        }
    };
    let (errors, warnings) = loaded.counts();
    print_diagnostics(&loaded.diagnostics, args.format);
    if args.format == Format::Human {
        let mut stderr = std::io::stderr().lock();
        let files = loaded.files.len();
        let status = if errors == 0 { "ok" } else { "failed" };
        let _ = writeln!(
            stderr,
            "{status}: {} file{} checked, {}",
            files,
            if files == 1 { "" } else { "s" },
            summary(errors, warnings)
        );
    }
    if errors > 0 {
        Exit::InvalidInput
    } else if warnings > 0 && args.deny_warnings {
        Exit::Failure
    } else {
        Exit::Success
    }
}
