//! `warden import cedar`: write a Warden policy directory from a Cedar application, then check
//! it as `warden check` would.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::output::{print_diagnostics, summary};
use crate::cli::{Exit, Format};
use crate::engine;
use crate::import::cedar::{Input, import};
use crate::source::{SourceFile, read_source};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImportFrom {
    /// A Cedar application: schema (human or JSON form), policies and templates, template
    /// links, entities. What Warden cannot say yet is refused, located in the Cedar file.
    Cedar(CedarArgs),
}

#[derive(Debug, clap::Args)]
pub struct CedarArgs {
    /// The Cedar policies (and templates).
    #[arg(long, value_name = "FILE")]
    pub policies: PathBuf,
    /// The Cedar schema: `.cedarschema` (human form) or `.json`.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// The Cedar entities JSON (`[{"uid", "attrs", "parents"}]`), written as a data file.
    #[arg(long, value_name = "FILE")]
    pub entities: Option<PathBuf>,
    /// Template links (`[{"template_id", "link_id", "args": {"?principal", "?resource"}}]`),
    /// each written as a rule.
    #[arg(long, value_name = "FILE")]
    pub links: Option<PathBuf>,
    /// The Warden policy directory to write (created; existing files of the same names are
    /// replaced).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: &ImportArgs) -> Exit {
    match &args.from {
        ImportFrom::Cedar(cedar) => run_cedar(cedar),
    }
}

fn read(path: &Path) -> Result<SourceFile, crate::source::Diagnostic> {
    read_source(path, &path.display().to_string())
}

fn run_cedar(args: &CedarArgs) -> Exit {
    let optional = |p: &Option<PathBuf>| p.as_deref().map(read).transpose();
    let input = match (|| {
        Ok::<_, crate::source::Diagnostic>(Input {
            policies: read(&args.policies)?,
            schema: optional(&args.schema)?,
            entities: optional(&args.entities)?,
            links: optional(&args.links)?,
        })
    })() {
        Ok(input) => input,
        Err(d) => {
            print_diagnostics(std::slice::from_ref(&d), args.format);
            return Exit::InvalidInput;
        }
    };
    let imported = match import(&input) {
        Ok(imported) => imported,
        Err(problems) => {
            print_diagnostics(&problems, args.format);
            if args.format == Format::Human {
                let _ = writeln!(
                    std::io::stderr(),
                    "failed: nothing written, {}",
                    summary(problems.len(), 0)
                );
            }
            return Exit::InvalidInput;
        }
    };
    print_diagnostics(&imported.warnings, args.format);
    let written = std::fs::create_dir_all(&args.out).and_then(|()| {
        for (name, text) in &imported.files {
            std::fs::write(args.out.join(name), text)?;
        }
        Ok(())
    });
    if let Err(error) = written {
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot write `{}`: {error}",
            args.out.display()
        );
        return Exit::Internal;
    }
    // The directory must load as `warden check` loads it; say so, or say what blocks it.
    let loaded = match engine::load_directory(&args.out) {
        Ok(loaded) => loaded,
        Err(d) => {
            print_diagnostics(std::slice::from_ref(&d), args.format);
            return Exit::InvalidInput;
        }
    };
    print_diagnostics(&loaded.diagnostics, args.format);
    let (errors, warnings) = loaded.counts();
    if args.format == Format::Human {
        let _ = writeln!(
            std::io::stderr(),
            "{}: {} written ({} files), {}",
            if errors == 0 { "ok" } else { "failed" },
            args.out.display(),
            imported.files.len(),
            summary(errors, warnings + imported.warnings.len())
        );
    }
    if errors > 0 {
        Exit::InvalidInput
    } else {
        Exit::Success
    }
}
