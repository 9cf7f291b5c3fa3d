//! Hot reload: watch the policy directory, debounce, build the whole new program off the
//! request path, and publish it with one atomic swap.
//!
//! The directory is watched recursively, and its parent too, so that replacing the directory
//! itself (a symlink swapped to a new target, a directory deleted and recreated) is seen. The
//! configured path is resolved again after every change: when it names another directory than
//! the one watched, that one is watched instead. Kubernetes ConfigMap volumes swap a `..data`
//! symlink inside the directory; those events trigger a reload like any other (the loader skips
//! dot entries, the watcher does not).
//!
//! A change that does not load never replaces the serving program: the diagnostics go to the
//! log, to `/v1/status` and to the `warden_reload_failing` metric until a good change arrives.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{Notify, watch};

use crate::engine::{self, Engine};
use crate::program::Program;
use crate::server::metrics::ReloadOutcome;
use crate::server::{AppState, Problem, ReloadError};
use crate::source::Diagnostic;

/// A loaded program and what `/v1/status` says about it.
pub struct Built {
    pub program: Arc<Program>,
    /// Policy and data files, relative to the directory, sorted.
    pub files: Vec<String>,
    /// Rendered here, off the async runtime: rendering reads each file up to the problem.
    pub warnings: Vec<Problem>,
}

/// Loads, checks and compiles a policy directory (blocking: call it off the async runtime).
/// With `require_tests`, the directory's own policy tests must pass too: a failing test is
/// refused like a broken file, located at the failing expectation. `mapped_claims` (the
/// `jwt_claims` pairs) are linted against the `deny` rules.
pub fn build(
    dir: &Path,
    require_tests: bool,
    mapped_claims: &[(String, String)],
) -> Result<Built, Vec<Diagnostic>> {
    let loaded = engine::load_directory(dir).map_err(|d| vec![d])?;
    let prefix = engine::display_name(dir, "");
    let mut files: Vec<String> = loaded
        .files
        .iter()
        .map(|f| f.source.name())
        .chain(loaded.data_files.iter().map(|f| f.name()))
        .map(|name| name.strip_prefix(&prefix).unwrap_or(name).to_string())
        .collect();
    files.sort();
    let engine = Engine::from_loaded(loaded).map_err(|failure| failure.diagnostics)?;
    if require_tests {
        crate::policytest::gate(dir, &engine)?;
    }
    let mut warnings = engine.warnings;
    warnings.extend(crate::check::claims::mapped_claims_in_denies(
        &engine.files,
        mapped_claims,
    ));
    Ok(Built {
        program: engine.program,
        files,
        warnings: warnings.iter().map(Problem::from_diagnostic).collect(),
    })
}

/// The problems a failed load shows: its errors (its warnings when it has no error).
fn failures(diagnostics: &[Diagnostic]) -> Vec<Problem> {
    let errors: Vec<Problem> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(Problem::from_diagnostic)
        .collect();
    if errors.is_empty() {
        diagnostics.iter().map(Problem::from_diagnostic).collect()
    } else {
        errors
    }
}

/// Asks the reloader to look at the directory again. Requests made while it is busy or
/// settling coalesce into one reload.
#[derive(Clone, Debug, Default)]
pub struct Trigger(Arc<Notify>);

impl Trigger {
    pub fn fire(&self) {
        self.0.notify_one();
    }

    async fn fired(&self) {
        self.0.notified().await;
    }
}

/// Which directory is being watched: a swapped symlink or a recreated directory changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    path: PathBuf,
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

fn identity(dir: &Path) -> Option<Identity> {
    let path = std::fs::canonicalize(dir).ok()?;
    let metadata = std::fs::metadata(&path).ok()?;
    if !metadata.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(Identity {
            path,
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
    #[cfg(not(unix))]
    Some(Identity { path })
}

/// The file-system watcher of a policy directory and its parent.
pub struct PolicyWatcher {
    inner: notify::RecommendedWatcher,
    /// The directory as configured (made absolute, symlinks not resolved).
    dir: PathBuf,
    watched: Option<Identity>,
}

impl PolicyWatcher {
    pub fn new(dir: &Path, trigger: Trigger) -> notify::Result<PolicyWatcher> {
        let dir = std::path::absolute(dir).map_err(notify::Error::io)?;
        let parent = dir.parent().map(Path::to_path_buf);
        let name: Option<OsString> = dir.file_name().map(OsString::from);
        let handler_parent = parent.clone();
        let handler = move |event: notify::Result<Event>| {
            let relevant = match &event {
                // A lost event (queue overflow, a watch that failed) may hide a change.
                Err(_) => true,
                Ok(event) => relevant(event, handler_parent.as_deref(), name.as_deref()),
            };
            if relevant {
                trigger.fire();
            }
        };
        let mut inner = notify::recommended_watcher(handler)?;
        if let Some(parent) = &parent
            && let Err(error) = inner.watch(parent, RecursiveMode::NonRecursive)
        {
            tracing::warn!(
                %error,
                parent = %parent.display(),
                "cannot watch the policy directory's parent; a swap of the directory itself will not be seen"
            );
        }
        let mut watcher = PolicyWatcher {
            inner,
            dir,
            watched: None,
        };
        watcher.rewatch();
        Ok(watcher)
    }

    /// Watches the directory the configured path names now, if that changed.
    fn rewatch(&mut self) {
        let current = identity(&self.dir);
        if current.is_some() && current == self.watched {
            return;
        }
        if self.watched.take().is_some() {
            // The old target may be gone already (its watch with it): nothing to undo then.
            let _ = self.inner.unwatch(&self.dir);
        }
        if current.is_none() {
            return;
        }
        match self.inner.watch(&self.dir, RecursiveMode::Recursive) {
            Ok(()) => {
                tracing::debug!(dir = %self.dir.display(), "watching the policy directory");
                self.watched = current;
            }
            Err(error) => tracing::warn!(
                %error,
                dir = %self.dir.display(),
                "cannot watch the policy directory"
            ),
        }
    }
}

/// Does this event say something may have changed? Reads (opening a file, closing it
/// unwritten) do not, or the loader's own reading would trigger the next reload; events of
/// the parent directory count only when they name the policy directory.
fn relevant(event: &Event, parent: Option<&Path>, name: Option<&std::ffi::OsStr>) -> bool {
    if let EventKind::Access(kind) = event.kind
        && kind != AccessKind::Close(AccessMode::Write)
    {
        return false;
    }
    if event.paths.is_empty() {
        return true;
    }
    event.paths.iter().any(|path| {
        let sibling = parent.is_some() && path.parent() == parent && path.file_name() != name;
        !sibling
    })
}

/// How long a change waits before it is loaded.
#[derive(Clone, Copy, Debug)]
pub struct Settle {
    /// The directory must be quiet this long.
    pub debounce: Duration,
    /// A directory that never goes quiet is loaded after this long all the same.
    pub max_wait: Duration,
}

/// The reload loop: wait for a change (seen by `watcher`, when there is one, or asked for
/// through `trigger`: SIGHUP), let the directory settle, rebuild, publish.
pub async fn run(
    state: Arc<AppState>,
    mut watcher: Option<PolicyWatcher>,
    trigger: Trigger,
    settle_for: Settle,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = trigger.fired() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if !settle(&trigger, settle_for, &mut shutdown).await {
            return;
        }
        if let Some(watcher) = &mut watcher {
            watcher.rewatch();
        }
        reload_now(&state).await;
    }
}

/// Waits until no change has come for the debounce time. A file written slowly (a line at a
/// time, a copy over a slow disk) keeps the wait going, so it is not loaded half-written; a
/// directory that never goes quiet is loaded after `max_wait`. False on shutdown.
async fn settle(
    trigger: &Trigger,
    settle_for: Settle,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let cap = tokio::time::Instant::now() + settle_for.max_wait;
    loop {
        if tokio::time::Instant::now() >= cap {
            tracing::warn!(
                max_wait_ms = settle_for.max_wait.as_millis(),
                "the policy directory kept changing; loading it as it is now"
            );
            return true;
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return false,
            _ = trigger.fired() => {}
            _ = tokio::time::sleep(settle_for.debounce) => return true,
        }
    }
}

/// Builds the directory now and publishes it if it loads to a new version.
pub(crate) async fn reload_now(state: &Arc<AppState>) -> ReloadOutcome {
    let dir = state.settings.policies.clone();
    reload_from(state, dir, state.settings.require_tests).await
}

/// Builds `dir` (the policy directory, or a bundle freshly unpacked) and publishes it if it
/// loads to a new version.
pub(crate) async fn reload_from(
    state: &Arc<AppState>,
    dir: PathBuf,
    require_tests: bool,
) -> ReloadOutcome {
    let claims = state.settings.gateway.claims.attributes.clone();
    // Loading and rendering its problems are blocking work: both stay off the runtime.
    let result = tokio::task::spawn_blocking(move || {
        build(&dir, require_tests, &claims).map_err(|d| failures(&d))
    })
    .await;
    let serving = state.program.load().as_ref().map(|p| p.version.clone());
    let outcome = match result {
        Ok(Ok(built)) if Some(&built.program.version) == serving.as_ref() => {
            // Back to the serving version (e.g. a broken change undone): nothing is failing.
            state.status().last_error = None;
            tracing::debug!(version = %built.program.version, "policy directory unchanged");
            ReloadOutcome::Unchanged
        }
        Ok(Ok(built)) => {
            tracing::info!(
                version = %built.program.version,
                previous = %serving.as_deref().unwrap_or(""),
                files = built.files.len(),
                "policies reloaded"
            );
            for warning in &built.warnings {
                tracing::warn!("{}", warning.rendered);
            }
            state.publish(built);
            ReloadOutcome::Success
        }
        Ok(Err(errors)) => {
            for error in &errors {
                tracing::error!(
                    location = %error.location.as_deref().unwrap_or(""),
                    "policy change rejected, still serving version {}:\n{}",
                    serving.as_deref().unwrap_or("(none)"),
                    error.rendered
                );
            }
            state.status().last_error = Some(ReloadError {
                at: jiff::Timestamp::now(),
                errors,
            });
            ReloadOutcome::Failure
        }
        Err(error) => {
            tracing::error!(%error, "the policy loader failed unexpectedly");
            state.status().last_error = Some(ReloadError {
                at: jiff::Timestamp::now(),
                errors: vec![Problem {
                    location: None,
                    message: "the policy loader failed unexpectedly".to_string(),
                    rendered: "the policy loader failed unexpectedly".to_string(),
                }],
            });
            ReloadOutcome::Failure
        }
    };
    state.metrics.reload(outcome);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_and_unrelated_siblings_are_not_changes() {
        let parent = Some(Path::new("/srv"));
        let name = Some(std::ffi::OsStr::new("policies"));
        let open = event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/srv/policies/a.warden",
        );
        assert!(!relevant(&open, parent, name));
        let written = event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/srv/policies/a.warden",
        );
        assert!(relevant(&written, parent, name));
        let sibling = event(EventKind::Create(CreateKind::File), "/srv/other.log");
        assert!(!relevant(&sibling, parent, name));
        let swapped = event(EventKind::Create(CreateKind::Any), "/srv/policies");
        assert!(relevant(&swapped, parent, name));
        let inside = event(
            EventKind::Modify(ModifyKind::Any),
            "/srv/policies/..data/a.warden",
        );
        assert!(relevant(&inside, parent, name));
    }
}
