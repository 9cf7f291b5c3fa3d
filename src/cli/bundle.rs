//! `warden bundle`: build, sign, verify and inspect signed policy bundles.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::bundle::{self, BundleError, Limits, PublicKey, SigningKey};
use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format, PolicyDir};
use crate::source::Diagnostic;

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pack a policy directory into a bundle; refused unless it checks clean and its tests pass.
    Build(BuildArgs),
    /// Sign a bundle's manifest with an Ed25519 private key (PEM).
    Sign(SignArgs),
    /// Check a bundle's signature and every file's hash.
    Verify(VerifyArgs),
    /// Print a bundle's manifest (unverified).
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    /// The bundle file to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// The revision recorded in the manifest (a release tag, a commit) [default: the policy
    /// version hash].
    #[arg(long, value_name = "REVISION")]
    pub revision: Option<String>,
    /// Sign the bundle too, with this Ed25519 private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The Ed25519 private key (PKCS#8 PEM, `openssl genpkey -algorithm ed25519`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The bundle to sign.
    pub bundle: PathBuf,
    /// Where to write the signed bundle [default: over the bundle].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Ed25519 public keys (PEM), comma-separated: one of them must have signed the bundle.
    #[arg(long, value_name = "FILE", required = true, value_delimiter = ',')]
    pub public_key: Vec<PathBuf>,
    /// The bundle to verify.
    pub bundle: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The bundle to show.
    pub bundle: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: &BundleArgs) -> Exit {
    let result = match &args.command {
        BundleCommand::Build(args) => build(args),
        BundleCommand::Sign(args) => sign(args),
        BundleCommand::Verify(args) => verify(args),
        BundleCommand::Inspect(args) => inspect(args),
    };
    match result {
        Ok(exit) => exit,
        Err((exit, error)) => {
            print_diagnostics(&[Diagnostic::new(error)], Format::Human);
            exit
        }
    }
}

type Outcome = Result<Exit, (Exit, BundleError)>;

fn invalid(error: BundleError) -> (Exit, BundleError) {
    let exit = match error {
        BundleError::Io { .. } => Exit::Internal,
        _ => Exit::InvalidInput,
    };
    (exit, error)
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees half a bundle.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |action| {
        move |source| BundleError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    std::fs::write(&temporary, bytes).map_err(io("write"))?;
    std::fs::rename(&temporary, path).map_err(io("write"))
}

fn build(args: &BuildArgs) -> Outcome {
    let dir = &args.dir.policies;
    // The server's own loader, tests as a gate: what builds here loads there.
    let built = match crate::server::reload::build(dir, true, &[]) {
        Ok(built) => built,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, Format::Human);
            let _ = writeln!(
                std::io::stderr(),
                "error: `{}` does not check clean or its tests fail; no bundle written",
                dir.display()
            );
            return Ok(Exit::InvalidInput);
        }
    };
    let files = match bundle::collect(dir) {
        Ok(files) => files,
        Err(diagnostic) => {
            print_diagnostics(&[diagnostic], Format::Human);
            return Ok(Exit::InvalidInput);
        }
    };
    let version = built.program.version.to_string();
    let revision = args.revision.clone().unwrap_or_else(|| version.clone());
    let mut bytes = bundle::pack(&files, &version, &revision, created()).map_err(invalid)?;
    if let Some(key) = &args.key {
        let key = SigningKey::from_file(key).map_err(invalid)?;
        bytes = bundle::read(&bytes, &Limits::default())
            .and_then(|archive| archive.sign(&key))
            .map_err(invalid)?;
    }
    write_atomically(&args.output, &bytes).map_err(invalid)?;
    let _ = writeln!(
        std::io::stderr(),
        "built `{}`: revision {revision}, version {version}, {} files{}",
        args.output.display(),
        files.len(),
        if args.key.is_some() { ", signed" } else { "" }
    );
    Ok(Exit::Success)
}

/// The build time, or `SOURCE_DATE_EPOCH` when set: reproducible builds pin it, and then the
/// same directory packs to the same bytes.
fn created() -> jiff::Timestamp {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|seconds| seconds.trim().parse::<i64>().ok())
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or_else(jiff::Timestamp::now)
}

fn read(path: &Path) -> Result<bundle::Archive, (Exit, BundleError)> {
    let limits = Limits::default();
    let bytes = bundle::read_file(path, &limits).map_err(invalid)?;
    bundle::read(&bytes, &limits).map_err(invalid)
}

fn sign(args: &SignArgs) -> Outcome {
    let key = SigningKey::from_file(&args.key).map_err(invalid)?;
    let archive = read(&args.bundle)?;
    // Signing vouches for the files: they must be the ones the manifest names.
    archive.check_files().map_err(invalid)?;
    let bytes = archive.sign(&key).map_err(invalid)?;
    let output = args.output.as_ref().unwrap_or(&args.bundle);
    write_atomically(output, &bytes).map_err(invalid)?;
    let _ = writeln!(
        std::io::stderr(),
        "signed `{}` (revision {}) with key {}",
        output.display(),
        archive.manifest.revision,
        key.id
    );
    Ok(Exit::Success)
}

fn verify(args: &VerifyArgs) -> Outcome {
    let keys = args
        .public_key
        .iter()
        .map(|path| PublicKey::from_file(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let archive = read(&args.bundle)?;
    let signed_by = archive
        .verify(&keys)
        .map_err(|error| (Exit::Failure, error))?;
    let _ = writeln!(
        std::io::stdout(),
        "ok: `{}` revision {}, version {}, {} files, signed by key {signed_by}",
        args.bundle.display(),
        archive.manifest.revision,
        archive.manifest.version,
        archive.manifest.files.len()
    );
    Ok(Exit::Success)
}

fn inspect(args: &InspectArgs) -> Outcome {
    let archive = read(&args.bundle)?;
    let manifest = &archive.manifest;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let json = serde_json::json!({
                "manifest": manifest,
                "signature": archive.signature.as_ref().map(|s| serde_json::json!({
                    "algorithm": s.algorithm,
                    "key_id": s.key_id,
                })),
            });
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Human => {
            let _ = writeln!(out, "revision  {}", manifest.revision);
            let _ = writeln!(out, "version   {}", manifest.version);
            let _ = writeln!(out, "created   {}", manifest.created);
            let _ = writeln!(
                out,
                "signed    {}",
                archive.signature.as_ref().map_or_else(
                    || "no".to_string(),
                    |s| format!("{} key {} (not verified)", s.algorithm, s.key_id)
                )
            );
            let _ = writeln!(out, "files     {}", manifest.files.len());
            for (name, entry) in &manifest.files {
                let _ = writeln!(out, "  {} {:>9}  {name}", entry.sha256, entry.size);
            }
        }
    }
    Ok(Exit::Success)
}
