//! `warden audit verify|replay`: check an audit log's chain and signatures; re-decide its
//! requests under another policy directory.

use std::io::Write;
use std::path::PathBuf;

use crate::audit::{Key, replay, verify};
use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine::Engine;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and the checkpoint signatures; name the first record that breaks.
    /// A log must start at seq 0 (or where --from-checkpoint or --start-seq say) and end with
    /// its signed closing checkpoint (or be checked --live). Exit 0: intact; 1: broken.
    Verify(VerifyArgs),
    /// Re-decide every recorded request, at its recorded time, under other policies; list the
    /// decisions that would flip, grouped by rule. Decisions a rate limit refused are compared
    /// by what the policy decided and counted apart as limit-denied.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The audit files: the active one and its rotated predecessors, in any order.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// The key checkpoints are checked with: the server's shared secret (its
    /// `audit_key_file`), or, for a log signed with an Ed25519 private key, its public key.
    /// Repeat it when the server's key was changed during the log: each checkpoint is checked
    /// with the key it names.
    #[arg(
        long,
        value_name = "FILE",
        env = "WARDEN_AUDIT_KEY_FILE",
        required = true
    )]
    pub key_file: Vec<PathBuf>,
    /// The log is still being written: verify it up to its last signed checkpoint and report
    /// how many records follow, not yet covered by a signature (exit 0 when everything up to
    /// there verifies). Without it, a log must end with the closing checkpoint.
    #[arg(long)]
    pub live: bool,
    /// The files start after the signed checkpoint on the last line of FILE: the file before
    /// the first one given (older files removed), or a copy of its last line kept when it was
    /// deleted (`tail -n 1`). Without it or --start-seq, the log must start at seq 0.
    #[arg(long, value_name = "FILE", conflicts_with = "start_seq")]
    pub from_checkpoint: Option<PathBuf>,
    /// The files start at this seq (with --start-hash): for a log whose older files were
    /// removed, from a record you hold on trust.
    #[arg(long, value_name = "SEQ", requires = "start_hash")]
    pub start_seq: Option<u64>,
    /// The hash the record at --start-seq must link to (the `hash` of record SEQ - 1).
    #[arg(long, value_name = "HASH", requires = "start_seq", value_parser = parse_hash)]
    pub start_hash: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The audit files, in any order.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub dir: PolicyDir,
    /// How many flips of each group to list (`all`: every one; memory then grows with the
    /// flips). Every flip is counted either way.
    #[arg(long, value_name = "N|all", default_value_t = replay::EXAMPLES, value_parser = parse_examples)]
    pub examples: usize,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `--start-hash`: 64 hexadecimal digits, as the log writes them.
fn parse_hash(text: &str) -> Result<String, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("`{text}` is not a SHA-256 in hex (64 digits)"))
    }
}

/// `--examples`: a count, or `all`.
fn parse_examples(text: &str) -> Result<usize, String> {
    if text == "all" {
        return Ok(usize::MAX);
    }
    text.parse()
        .map_err(|_| format!("`{text}` is neither a count nor `all`"))
}

pub fn run(args: &AuditArgs) -> Exit {
    match &args.command {
        AuditCommand::Verify(args) => run_verify(args),
        AuditCommand::Replay(args) => run_replay(args),
    }
}

fn error(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "error: {message}");
}

fn missing(files: &[PathBuf]) -> Option<&PathBuf> {
    files.iter().find(|path| !path.is_file())
}

fn run_verify(args: &VerifyArgs) -> Exit {
    let mut keys = Vec::new();
    for file in &args.key_file {
        match Key::from_file(file) {
            Ok(key) => keys.push(key),
            Err(message) => {
                error(message);
                return Exit::InvalidInput;
            }
        }
    }
    if let Some(path) = missing(&args.files) {
        error(format!("no such file `{}`", path.display()));
        return Exit::InvalidInput;
    }
    let start = match (&args.from_checkpoint, args.start_seq, &args.start_hash) {
        (Some(file), _, _) => match verify::start_after(file, &keys) {
            Ok(start) => start,
            Err(failure) => {
                error(&failure);
                if let Some(help) = miette::Diagnostic::help(&failure) {
                    let _ = writeln!(std::io::stderr(), "  help: {help}");
                }
                // A start that does not verify is a log that cannot be verified from it.
                return match failure {
                    verify::StartError::Read { .. } => Exit::InvalidInput,
                    verify::StartError::NotCheckpoint { .. } => Exit::Failure,
                };
            }
        },
        (None, Some(seq), Some(hash)) => verify::Start::At {
            seq,
            prev: hash.clone(),
            log: None,
        },
        _ => verify::Start::Genesis,
    };
    let files = verify::order_files(&args.files);
    let report = match verify::verify(
        &files,
        &verify::Options {
            keys: &keys,
            live: args.live,
            start,
        },
    ) {
        Ok(report) => report,
        Err(e) => {
            error(format!("cannot read the audit log: {e}"));
            return Exit::Internal;
        }
    };
    let text = match args.format {
        Format::Human => verify::render(&report),
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    if report.intact {
        Exit::Success
    } else {
        Exit::Failure
    }
}

fn run_replay(args: &ReplayArgs) -> Exit {
    let engine = match Engine::load(&args.dir.policies) {
        Ok(engine) => engine,
        Err(failure) => {
            print_diagnostics(&failure.diagnostics, Format::Human);
            return Exit::InvalidInput;
        }
    };
    if let Some(path) = missing(&args.files) {
        error(format!("no such file `{}`", path.display()));
        return Exit::InvalidInput;
    }
    let files = verify::order_files(&args.files);
    let report = match replay::replay(&files, &engine.program, args.examples) {
        Ok(report) => report,
        Err(e) => {
            error(format!("cannot read the audit log: {e}"));
            return Exit::Internal;
        }
    };
    let text = match args.format {
        Format::Human => replay::render(&report),
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Exit::Success
}
