//! TLS for the decision API (rustls, with the *ring* provider), with the certificate and key
//! reloaded when their files change, and optional client-certificate verification (mTLS).
//!
//! - `tls_cert`: the server's certificate chain (PEM, leaf first); `tls_key`: its private key
//!   (PEM: PKCS#8, PKCS#1 or SEC1). Both or neither.
//! - `tls_client_ca`: with it, every client must present a certificate issued by one of these
//!   CAs (PEM, one or more), valid now; a client without one, or with an expired one, or with
//!   one from another CA, fails the handshake and never reaches the API.
//!
//! The files are read at start-up (a file that does not load stops the server: exit 3, naming
//! the key), then watched: the parent directory of each is watched, so an editor's
//! write-then-rename, cert-manager's or a Kubernetes Secret volume's `..data` symlink swap, and
//! a plain overwrite are all seen. After a quiet time the whole set is read again; a set that
//! does not load is logged and the previous one keeps serving. New connections use the new
//! set; open connections keep theirs. SIGHUP reloads them too.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::serve::Listener;
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::ConfigError;

/// The TLS files, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Verify clients against these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path())]
            .into_iter()
            .chain(std::iter::once(self.client_ca.as_deref()))
            .flatten()
    }
}

/// Reads the files into a rustls server configuration. The error names the key whose file is
/// at fault.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fail = |key: &str, path: &Path, what: String| {
        ConfigError(format!("`{key}`: `{}`: {what}", path.display()))
    };
    let certs = read_certs(&files.cert).map_err(|e| fail("tls_cert", &files.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        fail(
            "tls_key",
            &files.key,
            format!("no private key in PEM form ({e})"),
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path).map_err(|e| fail("tls_client_ca", path, e))? {
                roots.add(cert).map_err(|e| {
                    fail(
                        "tls_client_ca",
                        path,
                        format!("not a usable CA certificate: {e}"),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| fail("tls_client_ca", path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        fail(
            "tls_key",
            &files.key,
            format!("cannot be used with the certificate in `tls_cert`: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in PEM form".to_string());
    }
    Ok(certs)
}

/// The serving TLS configuration, swapped whole when the files change.
pub struct TlsState {
    pub files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// Reloads that replaced the configuration, and reloads refused.
    reloaded: AtomicU64,
    failed: AtomicU64,
    trigger: Notify,
}

impl TlsState {
    /// Loads the files (start-up: an error stops the server).
    pub fn new(files: TlsFiles) -> Result<TlsState, ConfigError> {
        let config = load(&files)?;
        Ok(TlsState {
            files,
            current: ArcSwap::new(config),
            reloaded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            trigger: Notify::new(),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Reads the files again; on failure the serving configuration is kept.
    pub fn reload(&self) -> Result<(), ConfigError> {
        match load(&self.files) {
            Ok(config) => {
                self.current.store(config);
                self.reloaded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    %error,
                    "the TLS files do not load; the previous certificate keeps serving"
                );
                Err(error)
            }
        }
    }

    /// How many reloads replaced the configuration, and how many were refused.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloaded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Asks for a reload (after the quiet time), as a file change or SIGHUP does.
    pub fn fire(&self) {
        self.trigger.notify_one();
    }
}

/// Reloads on request (SIGHUP) and, with `watch_files`, when the files change, until
/// `shutdown`.
pub fn watch(
    state: Arc<TlsState>,
    debounce: Duration,
    watch_files: bool,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let watcher = if watch_files {
        file_watcher(&state)
    } else {
        None
    };
    tokio::spawn(async move {
        // Kept alive as long as the task runs.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = state.trigger.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            // Let a burst of events (write, rename, symlink swap) settle into one reload.
            tokio::time::sleep(debounce).await;
            let reloader = state.clone();
            let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
        }
    })
}

fn file_watcher(state: &Arc<TlsState>) -> Option<notify::RecommendedWatcher> {
    let absolute: Vec<PathBuf> = state
        .files
        .paths()
        .filter_map(|path| std::path::absolute(path).ok())
        .collect();
    let names: BTreeSet<OsString> = absolute
        .iter()
        .filter_map(|path| path.file_name().map(OsString::from))
        .collect();
    let dirs: BTreeSet<PathBuf> = absolute
        .iter()
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect();
    let weak = Arc::downgrade(state);
    let handler = move |event: notify::Result<Event>| {
        let relevant = match &event {
            Err(_) => true,
            Ok(event) => {
                !matches!(event.kind, EventKind::Access(_))
                    && event.paths.iter().any(|path| {
                        path.file_name().is_some_and(|name| {
                            // `..data` and its timestamped targets: a Secret volume's swap.
                            names.contains(name) || name.to_string_lossy().starts_with("..")
                        })
                    })
            }
        };
        if relevant && let Some(state) = weak.upgrade() {
            state.fire();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::error!(%error, "cannot watch the TLS files; they reload on SIGHUP only");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(%error, dir = %dir.display(), "cannot watch a TLS file's directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// A finished handshake, or `None` for one that failed.
type Handshake<L> = Option<(TlsStream<<L as Listener>::Io>, <L as Listener>::Addr)>;

/// A listener whose connections are TLS streams. Handshakes run in their own tasks, so a slow
/// or silent client never holds up the others; one that does not finish within `timeout` is
/// dropped, as is one that fails (a client certificate refused under mTLS, say).
pub struct TlsListener<L: Listener> {
    inner: L,
    state: Arc<TlsState>,
    timeout: Duration,
    handshakes: JoinSet<Handshake<L>>,
}

impl<L: Listener> TlsListener<L> {
    pub fn new(inner: L, state: Arc<TlsState>, timeout: Duration) -> TlsListener<L> {
        TlsListener {
            inner,
            state,
            timeout,
            handshakes: JoinSet::new(),
        }
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener,
    L::Addr: std::fmt::Debug + 'static,
{
    type Io = TlsStream<L::Io>;
    type Addr = L::Addr;

    // Cancel-safe, as axum's accept loop needs: both branches are.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                (io, address) = self.inner.accept() => {
                    let acceptor = TlsAcceptor::from(self.state.current());
                    let timeout = self.timeout;
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(io)).await {
                            Ok(Ok(stream)) => Some((stream, address)),
                            Ok(Err(error)) => {
                                tracing::debug!(%error, ?address, "TLS handshake refused");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(?address, "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
