//! The command line: one file per subcommand, each a library function returning an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub mod audit;
pub mod bundle;
pub mod capability;
pub mod check;
pub mod completions;
pub mod eval;
pub mod fmt;
pub mod import;
pub mod lsp;
pub mod output;
pub mod serve;
pub mod test;

/// The exit codes of the design's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success; `eval`: allow.
    Success = 0,
    /// `eval`: deny; `test`: a test failed, no test ran, or coverage below `--coverage-min`;
    /// `fmt --check`, `fmt --diff`: a file would change; `check --deny-warnings`: warnings;
    /// `audit verify`: the log is broken.
    Failure = 1,
    /// Bad flags (clap's own code).
    Usage = 2,
    /// A policy, data or configuration file does not load; a request is not well-formed.
    InvalidInput = 3,
    /// Internal error or I/O failure.
    Internal = 4,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(exit as u8)
    }
}

/// `0.1.0 (1a2b3c4)`: the package version and the commit it was built from.
pub(crate) const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("WARDEN_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version = VERSION,
    about = "A policy-decision service",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to color diagnostics and logs: `auto` colors a terminal unless `NO_COLOR` is set.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = output::ColorWhen::Auto)]
    pub color: output::ColorWhen,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a policy directory: syntax, names, types and lints.
    Check(check::CheckArgs),
    /// Decide one request, optionally explaining why.
    Eval(Box<eval::EvalArgs>),
    /// Rewrite policy files in the canonical layout (`--check`, `--diff`: only report; `-`: stdin).
    Fmt(fmt::FmtArgs),
    /// Run the policy tests, optionally with coverage.
    Test(test::TestArgs),
    /// Serve the AuthZEN decision API over HTTP, reloading on every policy change.
    Serve(Box<serve::ServeArgs>),
    /// Verify an audit log's chain and signatures, or replay it against other policies.
    Audit(audit::AuditArgs),
    /// Mint, attenuate, inspect and revoke capability tokens.
    Capability(capability::CapabilityArgs),
    /// Serve editors over the Language Server Protocol on standard input and output.
    Lsp(lsp::LspArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Build, sign, verify and inspect signed policy bundles.
    Bundle(bundle::BundleArgs),
    /// Write a Warden policy directory from another engine's policies (`import cedar`).
    Import(import::ImportArgs),
}

/// How a command reports: for people, or for tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Json,
}

/// How every command that loads a policy directory takes it.
#[derive(Debug, clap::Args)]
pub struct PolicyDir {
    /// The policy directory.
    #[arg(
        short = 'p',
        long = "policies",
        value_name = "DIR",
        env = "WARDEN_POLICIES",
        default_value = "./policies"
    )]
    pub policies: PathBuf,
}

/// `User::"alice"` or `User::alice` → `("User", "alice")`, for flags that name an entity; the
/// type may be qualified by its namespace (`acme::User::"alice"`).
pub(crate) fn entity_flag<'t>(flag: &str, text: &'t str) -> Result<(&'t str, &'t str), String> {
    let not_entity = || format!("{flag} `{text}` is not an entity: write `Type::\"id\"`");
    // A quoted id starts at the first `::"` (it may hold `::` itself); a bare one follows the
    // last `::`.
    let (ty, id) = match text.find("::\"") {
        Some(at) => {
            let (ty, rest) = text.split_at(at);
            (ty, rest.strip_prefix("::").unwrap_or(rest))
        }
        None => text.rsplit_once("::").ok_or_else(not_entity)?,
    };
    let id = id
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(id);
    if ty.is_empty() || id.is_empty() {
        return Err(not_entity());
    }
    Ok((ty, id))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Exit {
    output::set_color(cli.color);
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Capability(args) => capability::run(&args),
        Command::Lsp(args) => lsp::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Bundle(args) => bundle::run(&args),
        Command::Import(args) => import::run(&args),
    }
}
