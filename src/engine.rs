//! Loading a policy directory: the one entry point that the CLI, the server and the tests use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::check::{self, Schema};
use crate::compile;
use crate::data::{self, store::Store};
use crate::program::Program;
use crate::source::{Diagnostic, SourceFile, read_source};
use crate::syntax::{self, ParsedFile};

/// Everything read from a policy directory, and every problem found in it.
#[derive(Debug)]
pub struct Loaded {
    /// The policy files, sorted by relative path.
    pub files: Vec<ParsedFile>,
    /// The production data files (`*.json` outside `tests/` directories), sorted.
    pub data_files: Vec<SourceFile>,
    /// The entity store decoded from the data files (when the policies checked clean).
    pub store: Option<Store>,
    /// A hash of the sorted relative paths and contents of every input, tests included.
    pub version: Arc<str>,
    /// The checked declarations; `None` when the policies did not parse (checking a
    /// directory with syntax errors would only report their consequences).
    pub schema: Option<Schema>,
    /// Errors and warnings of every stage, sorted by file and position: at most
    /// [`MAX_DIAGNOSTICS`], errors kept before warnings, then, when there were more, one that
    /// counts the rest (an error when the rest holds an error).
    pub diagnostics: Vec<Diagnostic>,
    /// The problems left out of `diagnostics`.
    pub omitted: Omitted,
    /// The type of every checked expression, when [`LoadOptions::record_types`] asked for it.
    pub types: Vec<check::ExprType>,
}

/// What a caller that looks closer than the CLI (the language server) asks of a load.
#[derive(Debug, Default)]
pub(crate) struct LoadOptions {
    /// Texts that stand in for the files at these paths below the directory (an editor's
    /// unsaved buffers); a path that is not on disk is added to the listing.
    pub overlay: BTreeMap<PathBuf, Arc<str>>,
    /// Keep the type of every checked expression in [`Loaded::types`].
    pub record_types: bool,
}

/// The most diagnostics a load keeps. A data file with a mistake on each of 100,000 entities
/// would otherwise give 100,000 rendered reports (to a terminal, a log, `/v1/status`), and
/// rendering each one reads its file up to the problem.
pub const MAX_DIAGNOSTICS: usize = 100;

/// How many problems a load found beyond [`MAX_DIAGNOSTICS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    pub errors: usize,
    pub warnings: usize,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The number of errors and of warnings found, the omitted ones included.
    pub fn counts(&self) -> (usize, usize) {
        let shown_errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let shown_warnings = self.diagnostics.len() - shown_errors;
        // The summary of the omitted problems is one of the shown ones, not a problem.
        let (summary_errors, summary_warnings) = match self.omitted {
            Omitted {
                errors: 0,
                warnings: 0,
            } => (0, 0),
            Omitted { errors: 0, .. } => (0, 1),
            _ => (1, 0),
        };
        (
            shown_errors - summary_errors + self.omitted.errors,
            shown_warnings - summary_warnings + self.omitted.warnings,
        )
    }
}

/// Keeps [`MAX_DIAGNOSTICS`] of sorted `diagnostics`, errors first, and appends one counting the
/// rest.
fn cap_diagnostics(diagnostics: &mut Vec<Diagnostic>) -> Omitted {
    if diagnostics.len() <= MAX_DIAGNOSTICS {
        return Omitted::default();
    }
    // Errors before warnings: a hundred unused `let`s must not hide the one error that stops
    // the load. What is shown stays in file and position order.
    let mut errors_left = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .count()
        .min(MAX_DIAGNOSTICS);
    let mut warnings_left = MAX_DIAGNOSTICS - errors_left;
    let mut omitted = Omitted::default();
    diagnostics.retain(|d| {
        let (left, count) = if d.is_error() {
            (&mut errors_left, &mut omitted.errors)
        } else {
            (&mut warnings_left, &mut omitted.warnings)
        };
        if *left > 0 {
            *left -= 1;
            true
        } else {
            *count += 1;
            false
        }
    });
    diagnostics.push(Diagnostic::new(if omitted.errors > 0 {
        LoadError::OmittedErrors {
            errors: omitted.errors,
            warnings: omitted.warnings,
        }
    } else {
        LoadError::OmittedWarnings {
            warnings: omitted.warnings,
        }
    }));
    omitted
}

/// A file found below the policy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundFile {
    /// Path relative to the policy directory, with `/` separators.
    pub relative: String,
    pub path: PathBuf,
}

/// Which files of a policy directory are policies and which are data.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub policies: Vec<FoundFile>,
    pub data: Vec<FoundFile>,
    /// `*.json` under `tests/` directories: loaded only by tests, but part of the version.
    pub test_data: Vec<FoundFile>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum LoadError {
    #[error("cannot read policy directory `{dir}`: {reason}")]
    #[diagnostic(
        code(warden::load::directory),
        help("pass the directory that holds your `.warden` files with `--policies DIR`")
    )]
    Directory { dir: String, reason: String },
    #[error("`{dir}` is not a directory")]
    #[diagnostic(
        code(warden::load::not_a_directory),
        help("pass the directory that holds your `.warden` files with `--policies DIR`")
    )]
    NotADirectory { dir: String },
    #[error("{errors} more errors and {warnings} more warnings not shown")]
    #[diagnostic(
        code(warden::load::omitted),
        help("only the first {MAX_DIAGNOSTICS} problems are shown; fix them and check again")
    )]
    OmittedErrors { errors: usize, warnings: usize },
    #[error("{warnings} more warnings not shown")]
    #[diagnostic(
        code(warden::load::omitted),
        severity(Warning),
        help("only the first {MAX_DIAGNOSTICS} problems are shown; fix them and check again")
    )]
    OmittedWarnings { warnings: usize },
}

/// The deepest directory nesting followed; deeper trees are almost surely symlink loops.
const MAX_DEPTH: usize = 32;

/// Lists the `*.warden` and data files below `dir`, skipping every entry whose name starts
/// with `.` (Kubernetes keeps `..data` and timestamped copies there). Symlinks are followed.
pub(crate) fn list_directory(dir: &Path) -> Result<Listing, Diagnostic> {
    let shown = display_dir(dir);
    let metadata = std::fs::metadata(dir).map_err(|error| {
        Diagnostic::new(LoadError::Directory {
            dir: shown.clone(),
            reason: error.to_string(),
        })
    })?;
    if !metadata.is_dir() {
        return Err(Diagnostic::new(LoadError::NotADirectory { dir: shown }));
    }
    let mut listing = Listing::default();
    walk(dir, "", 0, false, &mut listing).map_err(|error| {
        Diagnostic::new(LoadError::Directory {
            dir: shown,
            reason: error.to_string(),
        })
    })?;
    listing.policies.sort_by(|a, b| a.relative.cmp(&b.relative));
    listing.data.sort_by(|a, b| a.relative.cmp(&b.relative));
    listing
        .test_data
        .sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(listing)
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    in_tests: bool,
    listing: &mut Listing,
) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let relative = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        // Follow symlinks; a dangling one is skipped, as an editor's lock file would be.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            walk(
                &path,
                &relative,
                depth + 1,
                in_tests || name == "tests",
                listing,
            )?;
        } else if name.ends_with(".warden") {
            listing.policies.push(FoundFile { relative, path });
        } else if name.ends_with(".json") {
            if in_tests {
                listing.test_data.push(FoundFile { relative, path });
            } else {
                listing.data.push(FoundFile { relative, path });
            }
        }
    }
    Ok(())
}

fn display_dir(dir: &Path) -> String {
    let text = dir.display().to_string();
    text.strip_prefix("./").map(str::to_string).unwrap_or(text)
}

/// The name a file is shown under in diagnostics: the directory as given, then the path.
pub(crate) fn display_name(dir: &Path, relative: &str) -> String {
    let dir = display_dir(dir);
    if dir.is_empty() || dir == "." {
        relative.to_string()
    } else {
        format!("{}/{relative}", dir.trim_end_matches('/'))
    }
}

/// Reads, parses and checks every policy file of a directory, and reads and checks its data
/// files. Problems inside files are collected in [`Loaded::diagnostics`]; only an unreadable
/// directory is an `Err`.
pub fn load_directory(dir: &Path) -> Result<Loaded, Diagnostic> {
    load_directory_with(dir, &LoadOptions::default())
}

/// [`load_directory`], reading the overlay's texts in place of the files on disk.
pub(crate) fn load_directory_with(dir: &Path, options: &LoadOptions) -> Result<Loaded, Diagnostic> {
    let mut listing = list_directory(dir)?;
    add_overlay(dir, &options.overlay, &mut listing);
    let read = |found: &FoundFile| match options.overlay.get(&found.path) {
        Some(text) => Ok(SourceFile::new(
            display_name(dir, &found.relative),
            text.clone(),
        )),
        None => read_source(&found.path, &display_name(dir, &found.relative)),
    };
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    let mut hasher = Sha256::new();
    for found in &listing.policies {
        match read(found) {
            Ok(source) => {
                hash_file(&mut hasher, &found.relative, source.text());
                let (parsed, mut problems) = syntax::parse(&source);
                diagnostics.append(&mut problems);
                files.push(parsed);
            }
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    // Entity type names become full names (`acme::User`) before anything reads them.
    if !diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.extend(check::qualify_names(&mut files));
    }
    let mut types = Vec::new();
    let schema = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else if options.record_types {
        let checked = check::check_recording_types(&files);
        diagnostics.extend(checked.diagnostics);
        types = checked.types;
        Some(checked.schema)
    } else {
        let checked = check::check(&files);
        diagnostics.extend(checked.diagnostics);
        Some(checked.schema)
    };
    let mut data_files = Vec::new();
    for found in &listing.data {
        match read(found) {
            Ok(source) => {
                hash_file(&mut hasher, &found.relative, source.text());
                data_files.push(source);
            }
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    // Test data is not loaded here, but it is part of what the version names.
    for found in &listing.test_data {
        if let Ok(bytes) = std::fs::read(&found.path) {
            hash_file(
                &mut hasher,
                &found.relative,
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
    let store = match &schema {
        Some(schema) if !diagnostics.iter().any(Diagnostic::is_error) => {
            let (store, mut problems) = data::load_store(&data_files, schema);
            diagnostics.append(&mut problems);
            Some(store)
        }
        _ => None,
    };
    crate::source::sort_diagnostics(&mut diagnostics);
    let omitted = cap_diagnostics(&mut diagnostics);
    let digest = hasher.finalize();
    let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(Loaded {
        files,
        data_files,
        schema,
        store,
        diagnostics,
        omitted,
        version: Arc::from(version),
        types,
    })
}

/// Adds the overlay's policy and data files below `dir` that the listing lacks (new files an
/// editor has not saved yet), sorted in as [`list_directory`] sorts.
fn add_overlay(dir: &Path, overlay: &BTreeMap<PathBuf, Arc<str>>, listing: &mut Listing) {
    for path in overlay.keys() {
        let Ok(relative) = path.strip_prefix(dir) else {
            continue;
        };
        let parts: Vec<&str> = relative
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        if parts.iter().any(|part| part.starts_with('.')) {
            continue;
        }
        let found = FoundFile {
            relative: parts.join("/"),
            path: path.clone(),
        };
        let in_tests = parts
            .split_last()
            .is_some_and(|(_, dirs)| dirs.contains(&"tests"));
        let list = if found.relative.ends_with(".warden") {
            &mut listing.policies
        } else if !found.relative.ends_with(".json") {
            continue;
        } else if in_tests {
            &mut listing.test_data
        } else {
            &mut listing.data
        };
        if !list.iter().any(|f| f.path == found.path) {
            list.push(found);
            list.sort_by(|a, b| a.relative.cmp(&b.relative));
        }
    }
}

fn hash_file(hasher: &mut Sha256, relative: &str, contents: &str) {
    // Length-prefixed, so no two different directories hash alike by shifting bytes between
    // a path and a file.
    hasher.update((relative.len() as u64).to_le_bytes());
    hasher.update(relative.as_bytes());
    hasher.update((contents.len() as u64).to_le_bytes());
    hasher.update(contents.as_bytes());
}

/// A policy directory that loaded: its compiled program and what was read to build it.
#[derive(Debug)]
pub struct Engine {
    pub program: Arc<Program>,
    /// The parsed policy files (tests read their `test` blocks).
    pub files: Vec<ParsedFile>,
    /// Warnings found while loading (errors prevent loading).
    pub warnings: Vec<Diagnostic>,
}

/// Why a directory did not load: every error found (and the warnings beside them).
#[derive(Debug)]
pub struct LoadFailure {
    pub diagnostics: Vec<Diagnostic>,
}

impl Engine {
    /// Loads, checks and compiles a policy directory: the one entry point for the CLI, the
    /// server and the tests.
    pub fn load(dir: &Path) -> Result<Engine, LoadFailure> {
        let loaded = load_directory(dir).map_err(|d| LoadFailure {
            diagnostics: vec![d],
        })?;
        Engine::from_loaded(loaded)
    }

    pub fn from_loaded(mut loaded: Loaded) -> Result<Engine, LoadFailure> {
        // The data files' text is in the store now; a large one need not stay in memory
        // while the program is compiled.
        loaded.data_files = Vec::new();
        let (Some(schema), Some(store)) = (&loaded.schema, loaded.store) else {
            return Err(LoadFailure {
                diagnostics: loaded.diagnostics,
            });
        };
        if loaded.diagnostics.iter().any(Diagnostic::is_error) {
            return Err(LoadFailure {
                diagnostics: loaded.diagnostics,
            });
        }
        let program = compile::compile(&loaded.files, schema, store, loaded.version)
            .map_err(|diagnostics| LoadFailure { diagnostics })?;
        Ok(Engine {
            program: Arc::new(program),
            files: loaded.files,
            warnings: loaded.diagnostics,
        })
    }
}
