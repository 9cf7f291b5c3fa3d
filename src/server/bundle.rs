//! `serve --bundle`: policies from a signed bundle, polled for new revisions.
//!
//! Every bundle fetched goes the same way: taken apart in memory under size caps, its signature
//! checked against the configured keys and every file against its manifest, and only then
//! unpacked into a fresh directory of the cache; that directory is loaded with its tests as a
//! gate and published through the reloader's path ([`reload::reload_from`]). A bundle refused at
//! any step leaves the serving version alone and says why in `/v1/status` and the metrics.
//!
//! The cache directory holds `last-good.bundle` (with `last-good.etag`), the directories of
//! unpacked bundles under `unpacked/`, and `current`, a symbolic link to the serving one, swapped
//! atomically. At start-up the bundle is fetched; if that fails, the last good bundle is
//! verified again (the keys may have changed) and served, so a replica restarted while the
//! bundle server is down comes back with the version it had.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use tokio::sync::watch;

use crate::bundle::fetch::{self, FetchError, Fetched, Source};
use crate::bundle::{self as archive, BundleError, Limits, Manifest, PublicKey};
use crate::server::config::BundleConfig;
use crate::server::metrics::ReloadOutcome;
use crate::server::{AppState, reload};
use crate::source::Diagnostic;

const LAST_GOOD: &str = "last-good.bundle";
const LAST_ETAG: &str = "last-good.etag";
const CURRENT: &str = "current";
const UNPACKED: &str = "unpacked";
/// The longest one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why `serve --bundle` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the bundle cache `{path}`: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`bundle_public_keys`: {0}")]
    Key(BundleError),
    #[error("`bundle_ca_file`: {0}")]
    Tls(FetchError),
    #[error(
        "no bundle to serve: {fetched}; and the cache `{cache}` holds no good bundle ({cached})"
    )]
    Nothing {
        fetched: String,
        cache: PathBuf,
        cached: String,
    },
}

/// Why a fetched bundle is not serving.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Bundle(#[from] BundleError),
    #[error("the bundle's policies do not load or their tests fail: {0}")]
    Policies(String),
    #[error("the bundle reader failed unexpectedly")]
    Internal,
}

impl Refusal {
    fn policies(diagnostics: &[Diagnostic]) -> Refusal {
        let first = diagnostics
            .iter()
            .find(|d| d.is_error())
            .or(diagnostics.first());
        Refusal::Policies(first.map_or_else(String::new, |d| {
            format!(
                "{}{}",
                d.location().map(|l| format!("{l}: ")).unwrap_or_default(),
                d.message()
            )
        }))
    }
}

#[derive(Debug, Default)]
struct Current {
    revision: Option<String>,
    version: Option<String>,
    signed_by: Option<String>,
    created: Option<String>,
    activated_at: Option<Timestamp>,
    /// Where the serving bundle came from: the source, or the cache at start-up.
    from_cache: bool,
    last_fetch: Option<Timestamp>,
    last_error: Option<(Timestamp, String)>,
    /// The entity tag of the last bundle fetched, served or refused: a refused bundle is
    /// not fetched again until it changes.
    etag: Option<String>,
    /// The SHA-256 of the serving bundle's bytes: the same bytes again are not new, whatever
    /// the server's entity tags say.
    digest: Option<String>,
    /// The SHA-256 of the last refused bundle's bytes, not tried again (a source without
    /// entity tags).
    refused_digest: Option<String>,
}

/// What `/v1/status` and `/metrics` say about the bundle.
#[derive(Debug)]
pub struct BundleState {
    source: String,
    current: Mutex<Current>,
    /// `[new, not_modified, failed]`.
    fetches: [AtomicU64; 3],
    refused: AtomicU64,
}

impl BundleState {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse(&self, refusal: &Refusal) {
        tracing::error!(source = %self.source, "bundle refused, the serving version stays: {refusal}");
        let counter = if matches!(refusal, Refusal::Fetch(_)) {
            &self.fetches[2]
        } else {
            &self.refused
        };
        // Under the lock, so that a status never shows the count without its error.
        let mut current = self.current();
        current.last_error = Some((Timestamp::now(), refusal.to_string()));
        counter.fetch_add(1, Relaxed);
    }

    /// The `bundle` object of `/v1/status`.
    pub fn status(&self) -> serde_json::Value {
        let current = self.current();
        json!({
            "source": self.source,
            "revision": current.revision,
            "version": current.version,
            "signed_by": current.signed_by,
            "created": current.created,
            "activated_at": current.activated_at.map(|t| t.to_string()),
            "from_cache": current.from_cache,
            "last_fetch": current.last_fetch.map(|t| t.to_string()),
            "last_error": current.last_error.as_ref().map(|(at, message)| json!({
                "at": at.to_string(),
                "message": message,
            })),
            "fetches": {
                "new": self.fetches[0].load(Relaxed),
                "not_modified": self.fetches[1].load(Relaxed),
                "failed": self.fetches[2].load(Relaxed),
            },
            "refused": self.refused.load(Relaxed),
        })
    }

    /// The bundle's series, in the text exposition format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let current = self.current();
        let seconds = |t: Option<Timestamp>| t.map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
        let _ = writeln!(
            out,
            "# HELP warden_bundle_info The serving bundle: its revision and policy version.\n\
             # TYPE warden_bundle_info gauge"
        );
        if let (Some(revision), Some(version)) = (&current.revision, &current.version) {
            // Both are checked to hold no character a label must escape.
            let _ = writeln!(
                out,
                "warden_bundle_info{{revision=\"{revision}\",version=\"{version}\"}} 1"
            );
        }
        let gauges = [
            (
                "warden_bundle_last_fetch_timestamp_seconds",
                "When the bundle source last answered.",
                seconds(current.last_fetch),
            ),
            (
                "warden_bundle_activated_timestamp_seconds",
                "When the serving bundle was activated.",
                seconds(current.activated_at),
            ),
            (
                "warden_bundle_failing",
                "1 while the latest fetched bundle was refused or the fetch failed.",
                f64::from(u8::from(current.last_error.is_some())),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_bundle_fetches_total Bundle fetches, by outcome.\n\
             # TYPE warden_bundle_fetches_total counter"
        );
        for (index, outcome) in ["new", "not_modified", "failed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "warden_bundle_fetches_total{{outcome=\"{outcome}\"}} {}",
                self.fetches[index].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_bundle_refused_total Fetched bundles refused (signature, manifest, size, names, policies or tests).\n\
             # TYPE warden_bundle_refused_total counter\n\
             warden_bundle_refused_total {}",
            self.refused.load(Relaxed)
        );
    }
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::audit::chain::hex(&sha2::Sha256::digest(bytes))
}

/// A bundle verified and unpacked, not yet serving.
struct Prepared {
    dir: PathBuf,
    manifest: Manifest,
    signed_by: String,
    bytes: Vec<u8>,
    digest: String,
    etag: Option<String>,
}

/// Fetches, verifies, unpacks and activates bundles.
pub(crate) struct Bundler {
    source: Source,
    cache: PathBuf,
    keys: Arc<Vec<PublicKey>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    poll_interval: Duration,
    limits: Limits,
    pub state: Arc<BundleState>,
}

impl Bundler {
    /// Reads the keys (and the CA file for `https`) and makes the cache directory.
    pub fn open(config: &BundleConfig) -> Result<Bundler, StartError> {
        let keys = config
            .public_keys
            .iter()
            .map(|path| PublicKey::from_file(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Key)?;
        let tls = match &config.source {
            Source::Http(uri) if uri.scheme_str() == Some("https") => {
                Some(fetch::tls_config(&config.ca_file).map_err(StartError::Tls)?)
            }
            _ => None,
        };
        let unpacked = config.cache_dir.join(UNPACKED);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&unpacked)
            .map_err(|source| StartError::Cache {
                path: unpacked.clone(),
                source,
            })?;
        Ok(Bundler {
            source: config.source.clone(),
            cache: config.cache_dir.clone(),
            keys: Arc::new(keys),
            tls,
            poll_interval: config.poll_interval,
            limits: Limits::default(),
            state: Arc::new(BundleState {
                source: config.source.to_string(),
                current: Mutex::new(Current::default()),
                fetches: Default::default(),
                refused: AtomicU64::new(0),
            }),
        })
    }

    /// The first bundle: fetched, or else the last good one from the cache. Returns the
    /// program built (tests passed) from the directory `current` now names.
    pub(crate) async fn initial(
        &self,
        claims: &[(String, String)],
    ) -> Result<reload::Built, StartError> {
        let fetched = match self.fetch(None).await {
            Ok(Some((bytes, etag))) => match self.start_with(bytes, etag, claims, false).await {
                Ok(built) => return Ok(built),
                Err(refusal) => refusal,
            },
            Ok(None) => Refusal::Internal,
            Err(refusal) => refusal,
        };
        self.state.refuse(&fetched);
        tracing::warn!(cache = %self.cache.display(), "serving the last good bundle from the cache");
        let cached = async {
            let path = self.cache.join(LAST_GOOD);
            let limits = self.limits;
            let bytes = tokio::task::spawn_blocking(move || archive::read_file(&path, &limits))
                .await
                .map_err(|_| Refusal::Internal)??;
            let etag = std::fs::read_to_string(self.cache.join(LAST_ETAG))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty());
            self.start_with(bytes, etag, claims, true).await
        };
        cached.await.map_err(|cached| StartError::Nothing {
            fetched: fetched.to_string(),
            cache: self.cache.clone(),
            cached: cached.to_string(),
        })
    }

    async fn start_with(
        &self,
        bytes: Vec<u8>,
        etag: Option<String>,
        claims: &[(String, String)],
        from_cache: bool,
    ) -> Result<reload::Built, Refusal> {
        let prepared = self.prepare(bytes, etag).await?;
        let dir = prepared.dir.clone();
        let claims = claims.to_vec();
        let built = tokio::task::spawn_blocking(move || reload::build(&dir, true, &claims))
            .await
            .map_err(|_| Refusal::Internal)?;
        match built {
            Ok(built) => {
                self.activate(prepared, from_cache);
                Ok(built)
            }
            Err(diagnostics) => {
                for diagnostic in &diagnostics {
                    tracing::error!("{}", diagnostic.render(false));
                }
                let _ = std::fs::remove_dir_all(&prepared.dir);
                Err(Refusal::policies(&diagnostics))
            }
        }
    }

    /// One fetch: `None` when not modified. Counts and times it.
    async fn fetch(
        &self,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, Refusal> {
        let limit = self.limits.total;
        let result =
            fetch::fetch(&self.source, etag, self.tls.as_ref(), limit, FETCH_TIMEOUT).await;
        match result {
            Ok(Fetched::NotModified) => {
                self.state.fetches[1].fetch_add(1, Relaxed);
                let mut current = self.state.current();
                current.last_fetch = Some(Timestamp::now());
                if current.refused_digest.is_none() {
                    // The source is back and still has the serving bundle (the one the cache
                    // held at start-up, say): nothing is failing any more.
                    current.last_error = None;
                    current.from_cache = false;
                }
                Ok(None)
            }
            Ok(Fetched::New { bytes, etag }) => {
                self.state.fetches[0].fetch_add(1, Relaxed);
                self.state.current().last_fetch = Some(Timestamp::now());
                Ok(Some((bytes, etag)))
            }
            Err(error) => Err(Refusal::Fetch(error)),
        }
    }

    /// Takes the bundle apart, verifies it, and unpacks it into a fresh directory.
    async fn prepare(&self, bytes: Vec<u8>, etag: Option<String>) -> Result<Prepared, Refusal> {
        let keys = self.keys.clone();
        let limits = self.limits;
        let unpacked = self.cache.join(UNPACKED);
        tokio::task::spawn_blocking(move || {
            let digest = digest(&bytes);
            let archive = archive::read(&bytes, &limits)?;
            let signed_by = archive.verify(&keys)?;
            let name = format!(
                "{}-{}",
                archive.manifest.revision,
                Timestamp::now().as_nanosecond()
            );
            let dir = unpacked.join(name);
            archive.unpack(&dir).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })?;
            Ok(Prepared {
                dir,
                manifest: archive.manifest,
                signed_by,
                bytes,
                digest,
                etag,
            })
        })
        .await
        .map_err(|_| Refusal::Internal)?
    }

    /// Points `current` at the prepared directory, keeps the bundle as the last good one and
    /// removes the other unpacked directories.
    fn activate(&self, prepared: Prepared, from_cache: bool) {
        if let Err(error) = self.link_current(&prepared.dir) {
            tracing::warn!(%error, "cannot update the bundle cache's `current` link");
        }
        if !from_cache {
            let keep = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
                let temporary = self.cache.join(format!("{name}.tmp"));
                std::fs::write(&temporary, bytes)?;
                std::fs::rename(&temporary, self.cache.join(name))
            };
            let kept = keep(LAST_GOOD, &prepared.bytes)
                .and_then(|()| keep(LAST_ETAG, prepared.etag.as_deref().unwrap_or("").as_bytes()));
            if let Err(error) = kept {
                tracing::warn!(%error, cache = %self.cache.display(), "cannot keep the bundle in the cache");
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.cache.join(UNPACKED)) {
            for entry in entries.flatten() {
                if entry.path() != prepared.dir {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        tracing::info!(
            revision = %prepared.manifest.revision,
            version = %prepared.manifest.version,
            signed_by = %prepared.signed_by,
            from_cache,
            "bundle activated"
        );
        let mut current = self.state.current();
        current.revision = Some(prepared.manifest.revision);
        current.version = Some(prepared.manifest.version);
        current.created = Some(prepared.manifest.created);
        current.signed_by = Some(prepared.signed_by);
        current.activated_at = Some(Timestamp::now());
        current.from_cache = from_cache;
        current.etag = prepared.etag;
        current.digest = Some(prepared.digest);
        if !from_cache {
            current.last_error = None;
        }
    }

    #[cfg(unix)]
    fn link_current(&self, dir: &Path) -> std::io::Result<()> {
        let target = dir.strip_prefix(&self.cache).unwrap_or(dir);
        let temporary = self.cache.join(format!("{CURRENT}.tmp"));
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(target, &temporary)?;
        std::fs::rename(&temporary, self.cache.join(CURRENT))
    }

    #[cfg(not(unix))]
    fn link_current(&self, _dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Waits the poll interval, give or take a tenth.
    fn next_wait(&self) -> Duration {
        let mut random = [0u8; 2];
        let _ = getrandom::fill(&mut random);
        // From 0.9 to 1.1 times the interval.
        let factor = 0.9 + 0.2 * f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
        self.poll_interval.mul_f64(factor)
    }

    /// Polls until shutdown: each new bundle verified, unpacked, gated by its tests and
    /// published; each refusal logged, counted and shown.
    pub async fn poll(self, app: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.next_wait()) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let etag = self.state.current().etag.clone();
            let fetched = match self.fetch(etag.as_deref()).await {
                Ok(Some(fetched)) => fetched,
                Ok(None) => continue,
                Err(refusal) => {
                    self.state.refuse(&refusal);
                    continue;
                }
            };
            if let Err(refusal) = self.update(&app, fetched.0, fetched.1).await {
                self.state.refuse(&refusal);
            }
        }
    }

    async fn update(
        &self,
        app: &Arc<AppState>,
        bytes: Vec<u8>,
        etag: Option<String>,
    ) -> Result<(), Refusal> {
        let digest = digest(&bytes);
        {
            let mut current = self.state.current();
            if current.digest.as_deref() == Some(digest.as_str()) {
                // The serving bytes again (a refused bundle withdrawn): nothing to do.
                current.etag = etag;
                current.last_error = None;
                current.refused_digest = None;
                current.from_cache = false;
                return Ok(());
            }
            current.etag.clone_from(&etag);
            if current.refused_digest.as_deref() == Some(digest.as_str()) {
                return Ok(());
            }
            current.refused_digest = Some(digest);
        }
        let prepared = self.prepare(bytes, etag).await?;
        match reload::reload_from(app, prepared.dir.clone(), true).await {
            ReloadOutcome::Success | ReloadOutcome::Unchanged => {
                self.state.current().refused_digest = None;
                self.activate(prepared, false);
                Ok(())
            }
            ReloadOutcome::Failure => {
                let _ = std::fs::remove_dir_all(&prepared.dir);
                let first = app
                    .status()
                    .last_error
                    .as_ref()
                    .and_then(|e| e.errors.first())
                    .map(|p| match &p.location {
                        Some(location) => format!("{location}: {}", p.message),
                        None => p.message.clone(),
                    })
                    .unwrap_or_default();
                Err(Refusal::Policies(first))
            }
        }
    }
}
