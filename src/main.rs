//! The `warden` binary: parse flags, run the subcommand, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = warden::cli::Cli::parse();
    warden::cli::run(cli).into()
}
