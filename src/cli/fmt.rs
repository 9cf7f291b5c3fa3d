//! `warden fmt`: rewrite policy files in the canonical layout, or (`--check`) name those that
//! are not in it, or (`--diff`) show how they would change; `warden fmt -` formats standard
//! input to standard output, as editors' format-on-save expects.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine;
use crate::source::{Diagnostic, FileError, SourceFile, read_source};
use crate::syntax::format_source;

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    /// Write nothing: name each file that would change, and exit 1 if any would.
    #[arg(long)]
    pub check: bool,
    /// Write nothing: print a unified diff of each change on standard output, and exit 1 if
    /// any file would change.
    #[arg(long)]
    pub diff: bool,
    /// Files and directories to format (every `*.warden` below a directory); default: the
    /// policy directory. `-` reads a policy from standard input and writes it, formatted, to
    /// standard output.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

/// What to do with a file that is not in the canonical layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    Check,
    Diff,
}

/// One file to format: where it is, and the name it is shown under.
struct Target {
    path: PathBuf,
    shown: String,
}

/// What happened across all files; the worst outcome decides the exit code.
#[derive(Default)]
struct Outcome {
    changed: usize,
    unchanged: usize,
    invalid: bool,
    io_failed: bool,
}

pub fn run(args: &FmtArgs) -> Exit {
    let mode = if args.diff {
        Mode::Diff
    } else if args.check {
        Mode::Check
    } else {
        Mode::Write
    };
    if args.paths.iter().any(|path| path.as_os_str() == "-") {
        if args.paths.len() > 1 {
            let _ = writeln!(
                std::io::stderr(),
                "error: `-` (standard input) cannot be formatted together with other paths"
            );
            return Exit::Usage;
        }
        return format_stdin(mode);
    }
    let mut outcome = Outcome::default();
    let roots = if args.paths.is_empty() {
        vec![args.dir.policies.clone()]
    } else {
        args.paths.clone()
    };
    let mut targets = Vec::new();
    for root in &roots {
        match collect(root) {
            Ok(mut found) => targets.append(&mut found),
            Err(diagnostic) => {
                print_diagnostics(std::slice::from_ref(&diagnostic), Format::Human);
                outcome.invalid = true;
            }
        }
    }
    for target in &targets {
        format_one(target, mode, &mut outcome);
    }
    report(&outcome, mode != Mode::Write);
    if outcome.io_failed {
        Exit::Internal
    } else if outcome.invalid {
        Exit::InvalidInput
    } else if mode != Mode::Write && outcome.changed > 0 {
        Exit::Failure
    } else {
        Exit::Success
    }
}

/// The policy files a path names: itself, or every `*.warden` below a directory.
fn collect(root: &Path) -> Result<Vec<Target>, Diagnostic> {
    let shown_root = root.display().to_string();
    let metadata = std::fs::metadata(root).map_err(|error| {
        Diagnostic::new(FileError::Unreadable {
            file: shown_root.clone(),
            reason: error.to_string(),
        })
    })?;
    if !metadata.is_dir() {
        return Ok(vec![Target {
            path: root.to_path_buf(),
            shown: shown_root,
        }]);
    }
    let listing = engine::list_directory(root)?;
    Ok(listing
        .policies
        .into_iter()
        .map(|found| Target {
            shown: engine::display_name(root, &found.relative),
            path: found.path,
        })
        .collect())
}

/// Standard input to standard output; with `--check` or `--diff`, only the verdict or the diff.
fn format_stdin(mode: Mode) -> Exit {
    let mut text = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut text) {
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot read standard input: {error}"
        );
        return if error.kind() == std::io::ErrorKind::InvalidData {
            Exit::InvalidInput
        } else {
            Exit::Internal
        };
    }
    let source = SourceFile::new("<stdin>", text);
    let formatted = match format_source(&source) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, Format::Human);
            return Exit::InvalidInput;
        }
    };
    let changed = formatted != source.text();
    let mut stdout = std::io::stdout().lock();
    let written = match mode {
        Mode::Write => stdout.write_all(formatted.as_bytes()),
        Mode::Diff if changed => stdout.write_all(diff(&source, &formatted).as_bytes()),
        Mode::Check if changed => {
            let _ = writeln!(std::io::stderr(), "would reformat <stdin>");
            Ok(())
        }
        Mode::Diff | Mode::Check => Ok(()),
    };
    if let Err(error) = written.and_then(|()| stdout.flush()) {
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot write standard output: {error}"
        );
        return Exit::Internal;
    }
    if changed && mode != Mode::Write {
        Exit::Failure
    } else {
        Exit::Success
    }
}

/// A unified diff from a file to its formatted text, named as shown (`patch -p0` applies it).
fn diff(source: &SourceFile, formatted: &str) -> String {
    similar::TextDiff::from_lines(source.text(), formatted)
        .unified_diff()
        .context_radius(3)
        .header(source.name(), source.name())
        .to_string()
}

fn format_one(target: &Target, mode: Mode, outcome: &mut Outcome) {
    let source = match read_source(&target.path, &target.shown) {
        Ok(source) => source,
        Err(diagnostic) => {
            print_diagnostics(std::slice::from_ref(&diagnostic), Format::Human);
            outcome.invalid = true;
            return;
        }
    };
    let formatted = match format_source(&source) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, Format::Human);
            outcome.invalid = true;
            return;
        }
    };
    if formatted == source.text() {
        outcome.unchanged += 1;
        return;
    }
    outcome.changed += 1;
    let mut stderr = std::io::stderr().lock();
    match mode {
        Mode::Check => {
            let _ = writeln!(stderr, "would reformat {}", target.shown);
            return;
        }
        Mode::Diff => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(diff(&source, &formatted).as_bytes())
                .is_err()
            {
                outcome.io_failed = true;
            }
            return;
        }
        Mode::Write => {}
    }
    match replace_file(&target.path, &formatted) {
        Ok(()) => {
            let _ = writeln!(stderr, "reformatted {}", target.shown);
        }
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot write `{}`: {error}", target.shown);
            outcome.io_failed = true;
        }
    }
}

/// Replaces a file's contents through a temporary file in the same directory and a rename, so
/// that a crash leaves either the old file or the new one, never half of one. A symlink is
/// followed: its target is rewritten and the link stays.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let real = std::fs::canonicalize(path)?;
    let dir = real.parent().unwrap_or_else(|| Path::new("."));
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading `.` keeps the temporary file out of every directory listing Warden makes.
    let temporary = dir.join(format!(".{name}.{}.fmt-tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        let permissions = std::fs::metadata(&real)?.permissions();
        std::fs::set_permissions(&temporary, permissions)?;
        std::fs::rename(&temporary, &real)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn report(outcome: &Outcome, check: bool) {
    let files = |n: usize| if n == 1 { "file" } else { "files" };
    let mut stderr = std::io::stderr().lock();
    let total = outcome.changed + outcome.unchanged;
    let _ = if check {
        writeln!(
            stderr,
            "{} of {total} {} would be reformatted",
            outcome.changed,
            files(total)
        )
    } else {
        writeln!(
            stderr,
            "{} of {total} {} reformatted",
            outcome.changed,
            files(total)
        )
    };
}
