//! `warden check`: load a policy directory and report every problem in it.

use std::io::Write;
use std::path::PathBuf;

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
    /// A `warden serve` configuration file: it is checked too, and its claim mappings
    /// (`jwt_claims`) are linted against the policies (a mapped claim that a `deny` reads).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: &CheckArgs) -> Exit {
    let mapped_claims = match &args.config {
        Some(path) => match crate::server::ConfigLayer::from_file(path)
            .and_then(crate::server::Config::resolve)
        {
            Ok(config) => config.gateway.claims.attributes,
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "error: {error}");
                return Exit::InvalidInput;
            }
        },
        None => Vec::new(),
    };
    let mut loaded = match engine::load_directory(&args.dir.policies) {
        Ok(loaded) => loaded,
        Err(diagnostic) => {
            print_diagnostics(std::slice::from_ref(&diagnostic), args.format);
            return Exit::InvalidInput;
        }
    };
    // With errors in the policies the engine stops before the data; a checker reports both in
    // one run, so decode the data against what did check.
    if let (None, Some(schema)) = (&loaded.store, &loaded.schema) {
        let (_, problems) = crate::data::load_store(&loaded.data_files, schema);
        loaded.diagnostics.extend(problems);
    }
    if loaded.schema.is_some() {
        loaded
            .diagnostics
            .extend(crate::check::claims::mapped_claims_in_denies(
                &loaded.files,
                &mapped_claims,
            ));
        crate::source::sort_diagnostics(&mut loaded.diagnostics);
    }
    let (errors, warnings) = loaded.counts();
    print_diagnostics(&loaded.diagnostics, args.format);
    if args.format == Format::Human {
        let mut stderr = std::io::stderr().lock();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let files = loaded.files.len();
        let data = match loaded.data_files.len() {
            0 => String::new(),
            n => format!(" and {n} data file{}", plural(n)),
        };
        let status = if errors == 0 { "ok" } else { "failed" };
        let _ = writeln!(
            stderr,
            "{status}: {files} file{}{data} checked, {}",
            plural(files),
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
