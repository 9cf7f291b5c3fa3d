//! `warden serve`: the AuthZEN 1.0 Authorization API over HTTP, hot-reloaded from disk.
//!
//! [`router`] builds the HTTP application over an [`AppState`] (tests call it in-process);
//! [`start`] loads the policies, binds the listeners and starts the reloader; [`serve`] runs a
//! server until SIGTERM or SIGINT.
//!
//! Every decision API call reads the program once (`arc_swap`) and the clock once, so a batch
//! or a search is decided wholly on one policy version, named in the `Warden-Policy-Version`
//! response header; a reload publishes a new program without disturbing calls in flight.

pub mod authzen;
pub mod bundle;
pub mod capabilities;
pub mod config;
pub mod connections;
pub mod deadline;
pub mod effective;
pub mod error;
pub(crate) mod extract;
pub mod forward;
pub mod grpc;
pub mod identity;
pub mod listen;
pub mod metrics;
pub mod ops;
pub mod reload;
pub mod search;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::Router;
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::request_id::PropagateRequestIdLayer;

use crate::program::Program;
use crate::source::Diagnostic;

pub use config::{Config, ConfigError, ConfigLayer, LogFormat};
pub use error::ApiError;
pub use listen::Listen;

/// What handlers need from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policies: PathBuf,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub explain: bool,
    pub require_tests: bool,
    pub trust_forwarded: bool,
    pub public_url: Option<String>,
    pub api_keys: Vec<[u8; 32]>,
    pub search_page_limit: usize,
    pub gateway: crate::gateway::GatewayConfig,
    /// The header a gateway request carries a capability token in.
    pub capability_header: String,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Settings {
        Settings {
            policies: config.policies.clone(),
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            explain: config.explain,
            require_tests: config.require_tests,
            trust_forwarded: config.trust_forwarded,
            public_url: config.public_url.clone(),
            api_keys: config.api_keys.clone(),
            search_page_limit: config.search_page_limit,
            gateway: config.gateway.clone(),
            capability_header: config.capabilities.header.clone(),
        }
    }
}

/// A problem found while loading, as `/v1/status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// `file:line:column`, when the problem is in a file.
    pub location: Option<String>,
    pub message: String,
    /// The rustc-style rendering, with the source line and a caret.
    pub rendered: String,
}

impl Problem {
    pub(crate) fn from_diagnostic(diagnostic: &Diagnostic) -> Problem {
        Problem {
            location: diagnostic.location(),
            message: diagnostic.message(),
            rendered: diagnostic.render(false),
        }
    }
}

/// The latest reload that failed: the previous version kept serving.
#[derive(Clone, Debug)]
pub struct ReloadError {
    pub at: Timestamp,
    pub errors: Vec<Problem>,
}

/// What `/v1/status` reports.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub version: Option<Arc<str>>,
    /// The policy and data files of the serving version, relative to the directory.
    pub files: Vec<String>,
    pub loaded_at: Option<Timestamp>,
    pub warnings: Vec<Problem>,
    /// Cleared by the next change that loads.
    pub last_error: Option<ReloadError>,
}

/// The state shared by every handler and the reloader.
pub struct AppState {
    /// The serving program; `None` only before the first load.
    pub program: ArcSwapOption<Program>,
    pub status: Mutex<Status>,
    pub metrics: metrics::Metrics,
    pub settings: Settings,
    /// When shutdown began: calls that arrive later get 503, calls already in flight are
    /// decided as usual.
    shutdown_at: OnceLock<Instant>,
    /// True while the policy directory is watched for changes.
    pub watching: AtomicBool,
    /// The forward-auth endpoints' JWT keys.
    pub gateway: crate::gateway::GatewayState,
    /// The audit log, when configured: every decision is handed to it.
    pub audit: Option<crate::audit::AuditLog>,
    /// Capability keys and revocations, when `capability_keys` is set.
    pub capabilities: Option<Arc<crate::capability::present::Verifier>>,
    /// The bundle's revision, fetches and refusals, when policies come from a bundle.
    pub bundle: Option<Arc<bundle::BundleState>>,
    /// The counts of the program's limits; kept across reloads.
    pub limits: Arc<crate::limit::Limiter>,
}

impl AppState {
    pub fn new(settings: Settings) -> AppState {
        AppState {
            program: ArcSwapOption::empty(),
            status: Mutex::new(Status::default()),
            metrics: metrics::Metrics::default(),
            settings,
            shutdown_at: OnceLock::new(),
            watching: AtomicBool::new(false),
            gateway: crate::gateway::GatewayState::default(),
            audit: None,
            capabilities: None,
            bundle: None,
            limits: Arc::new(crate::limit::Limiter::local()),
        }
    }

    /// The program every part of a call that started at `started` is decided on.
    pub fn snapshot(&self, started: Instant) -> Result<Arc<Program>, ApiError> {
        if self.shutdown_at.get().is_some_and(|at| started >= *at) {
            return Err(ApiError::ShuttingDown);
        }
        self.program.load_full().ok_or(ApiError::NoProgram)
    }

    /// Marks the server as stopping: `/readyz` fails and new calls get 503.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_at.set(Instant::now());
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown_at.get().is_some()
    }

    pub fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        // A panic while holding the lock cannot leave the status half-written in a way that
        // matters more than losing it, so a poisoned lock is used as is.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves `built` from now on. The program is swapped in before the status names its
    /// version, so whoever sees the new version in `/v1/status` is decided on it.
    pub fn publish(&self, built: reload::Built) {
        let version = built.program.version.clone();
        self.program.store(Some(built.program));
        let mut status = self.status();
        status.version = Some(version);
        status.files = built.files;
        status.loaded_at = Some(Timestamp::now());
        status.warnings = built.warnings;
        status.last_error = None;
    }

    pub fn ready(&self) -> bool {
        !self.shutting_down() && self.program.load().is_some()
    }
}

/// The decision API (AuthZEN evaluation, evaluations, search, discovery).
pub(crate) fn api_router(state: Arc<AppState>) -> Router {
    authzen::routes(state.clone())
        .merge(capabilities::routes(&state))
        .merge(forward::routes(&state))
        .with_state(state)
}

/// `/healthz`, `/readyz`, `/v1/status`, `/metrics`, open: the separate operations listener.
pub(crate) fn ops_router(state: Arc<AppState>) -> Router {
    ops::routes().with_state(state)
}

/// The layers every listener shares: the request id echoed, and the request time limit.
fn layered(router: Router, settings: &Settings) -> Router {
    router
        .layer(deadline::DeadlineLayer::new(settings.request_timeout))
        .layer(PropagateRequestIdLayer::x_request_id())
}

/// The whole application on one listener: the decision API and the operations endpoints, with
/// status and metrics behind the API key like the decision API.
pub fn router(state: Arc<AppState>) -> Router {
    let settings = state.settings.clone();
    let ops = ops::guarded_routes(&state).with_state(state.clone());
    layered(api_router(state).merge(ops), &settings)
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The policy directory does not load.
    #[error("the policy directory does not load")]
    Policies(Vec<Diagnostic>),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: Listen,
        source: std::io::Error,
    },
    #[error("{0}")]
    Bundle(#[from] bundle::StartError),
    #[error("internal error: cannot watch the revocations: {0}")]
    RevocationWatcher(#[source] std::io::Error),
    #[error("internal error: the policy loader failed")]
    Loader(#[source] tokio::task::JoinError),
    #[error("internal error: cannot open the audit log `{}`: {source}", path.display())]
    AuditLog {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("internal error: no local address: {0}")]
    LocalAddress(#[source] std::io::Error),
}

/// A started server: its addresses, its state, and the handle that stops it.
pub struct Running {
    /// The decision API's TCP address (`0.0.0.0:0` when it listens on a Unix socket: see
    /// `endpoint`).
    pub address: SocketAddr,
    /// The operations listener's TCP address, when it is a separate TCP listener.
    pub admin_address: Option<SocketAddr>,
    /// The gRPC listener's TCP address (`grpc_listen`), when it is on and not a Unix socket.
    pub grpc_address: Option<SocketAddr>,
    pub state: Arc<AppState>,
    pub reload: reload::Trigger,
    shutdown: watch::Sender<bool>,
    listeners: Vec<JoinHandle<std::io::Result<()>>>,
    reloader: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
    key_watcher: JoinHandle<()>,
    /// Reads revocations other processes append; stops when dropped.
    capability_watcher: Option<crate::capability::RevocationWatcher>,
    /// Where the decision API listens (the port chosen for `:0` filled in).
    pub endpoint: Listen,
    pub admin_endpoint: Option<Listen>,
    /// The TLS configuration, when the decision API is served over TLS.
    pub tls: Option<Arc<tls::TlsState>>,
    tls_reloader: Option<JoinHandle<()>>,
    /// Removed at shutdown.
    socket_files: Vec<listen::SocketFile>,
}

/// The keys and revocations of `capability_keys`, with the watcher that reads revocations
/// other processes append (stopped when dropped).
fn capability_verifier(
    config: &config::CapabilityConfig,
    policies: &std::path::Path,
) -> Result<
    Option<(
        Arc<crate::capability::present::Verifier>,
        crate::capability::RevocationWatcher,
    )>,
    ServeError,
> {
    if config.keys.is_empty() {
        return Ok(None);
    }
    let grace =
        jiff::SignedDuration::try_from(config.grace).map_err(|_| ConfigError::CapabilityGrace)?;
    for spec in &config.keys {
        let spec: crate::capability::KeySpec = spec.parse().map_err(ConfigError::CapabilityKey)?;
        if inside(&spec.path, policies) {
            return Err(ConfigError::CapabilityKeyInPolicies { path: spec.path }.into());
        }
    }
    let keyring = crate::capability::Keyring::load_specs(&config.keys, grace)
        .map_err(ConfigError::CapabilityKey)?;
    let revocations = match &config.revocations {
        Some(path) => {
            crate::capability::Revocations::open(path).map_err(ConfigError::Revocations)?
        }
        None => {
            tracing::warn!(
                "capability revocations are kept in memory only: set `capability_revocations` so a restart forgets none"
            );
            crate::capability::Revocations::in_memory()
        }
    };
    let revocations = match &config.revocations_redis {
        Some(url) => revocations.with_shared(
            crate::capability::shared::SharedRevocations::new(url)
                .map_err(ConfigError::RevocationsRedis)?,
        ),
        None => revocations,
    };
    let revocations = Arc::new(revocations);
    let watcher = revocations
        .spawn_watcher(crate::capability::DEFAULT_WATCH_INTERVAL)
        .map_err(ServeError::RevocationWatcher)?;
    Ok(Some((
        Arc::new(crate::capability::present::Verifier::new(
            keyring,
            revocations,
            config.audience.clone(),
        )),
        watcher,
    )))
}

/// Whether `path` lies in `dir` (both resolved, symbolic links included).
fn inside(path: &std::path::Path, dir: &std::path::Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(path), Ok(dir)) => path.starts_with(dir),
        _ => false,
    }
}

/// Loads the policies, binds the listeners, starts serving and (when configured) watching.
/// Returns once the server accepts connections.
pub async fn start(config: &Config) -> Result<Running, ServeError> {
    let trigger = reload::Trigger::default();
    // A bundle's directory is written by its poller only: there is nothing to watch.
    let bundler = match &config.bundle {
        Some(bundle) => Some(bundle::Bundler::open(bundle)?),
        None => None,
    };
    // Watch before the first load, so a change made while it loads is not missed.
    let watcher = if config.watch && bundler.is_none() {
        match reload::PolicyWatcher::new(&config.policies, trigger.clone()) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::error!(
                    %error,
                    "cannot watch the policy directory; serving without hot reload"
                );
                None
            }
        }
    } else {
        None
    };
    let dir = config.policies.clone();
    let require_tests = config.require_tests;
    let claims = config.gateway.claims.attributes.clone();
    let built = match &bundler {
        Some(bundler) => bundler.initial(&claims).await?,
        None => tokio::task::spawn_blocking(move || reload::build(&dir, require_tests, &claims))
            .await
            .map_err(ServeError::Loader)?
            .map_err(ServeError::Policies)?,
    };
    for warning in &built.warnings {
        tracing::warn!("{}", warning.rendered);
    }

    let mut state = AppState::new(Settings::from(config));
    if let Some(audit) = &config.audit {
        let log = crate::audit::AuditLog::start(audit.clone()).map_err(|source| {
            ServeError::AuditLog {
                path: audit.path.clone(),
                source,
            }
        })?;
        state.audit = Some(log);
    }
    let capability_watcher = match capability_verifier(&config.capabilities, &config.policies)? {
        Some((verifier, watcher)) => {
            state.capabilities = Some(verifier);
            Some(watcher)
        }
        None => None,
    };
    state.bundle = bundler.as_ref().map(|bundler| bundler.state.clone());
    if let Some(redis) = &config.rate_limit_redis {
        let store =
            crate::limit::RedisStore::connect(redis).map_err(ConfigError::RateLimitRedis)?;
        state.limits = Arc::new(crate::limit::Limiter::shared(store));
    }
    let state = Arc::new(state);
    state.publish(built);
    let verifier = config
        .gateway
        .verifier()
        .map_err(ConfigError::JwtVerifier)?;
    state.gateway.verifier.store(verifier.map(Arc::new));
    state.watching.store(watcher.is_some(), Ordering::Relaxed);

    let tls = match &config.tls {
        Some(files) => Some(Arc::new(tls::TlsState::new(files.clone())?)),
        None => None,
    };
    let bind = |address: Listen| async move {
        match listen::bind(&address, config.unix_socket_mode).await {
            Ok(bound) => match bound.local(&address) {
                Ok(local) => Ok((bound, local)),
                Err(e) => Err(ServeError::LocalAddress(e)),
            },
            Err(source) => Err(ServeError::Bind { address, source }),
        }
    };
    let (listener, endpoint) = bind(config.listen.clone()).await?;
    let admin = match &config.admin_listen {
        Some(address) => Some(bind(address.clone()).await?),
        None => None,
    };
    let address = endpoint
        .tcp()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let grpc = match &config.grpc_listen {
        Some(address) => Some(bind(address.clone()).await?),
        None => None,
    };
    let grpc_endpoint = grpc.as_ref().map(|(_, local)| local.clone());
    let grpc_address = grpc_endpoint.as_ref().and_then(Listen::tcp);
    let admin_endpoint = admin.as_ref().map(|(_, local)| local.clone());
    let admin_address = admin_endpoint.as_ref().and_then(Listen::tcp);

    let limits = connections::Limits {
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    }
    .fitted(1 + usize::from(admin.is_some()));
    let (shutdown, receiver) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut socket_files = Vec::new();
    let main_app = if admin.is_some() {
        layered(api_router(state.clone()), &state.settings)
    } else {
        router(state.clone())
    };
    let handshake = tls.clone().map(|tls| (tls, config.request_timeout));
    let registry = connections::Registry::new(limits, state.clone());
    let (handle, file) = listener.serve(main_app, handshake, registry, receiver.clone());
    listeners.push(handle);
    socket_files.extend(file);
    if let Some((admin, _)) = admin {
        let app = layered(ops_router(state.clone()), &state.settings);
        let registry = connections::Registry::new(limits, state.clone());
        let (handle, file) = admin.serve(app, None, registry, receiver.clone());
        listeners.push(handle);
        socket_files.extend(file);
    }
    if let Some((listener, _)) = grpc {
        let handshake = tls.clone().map(|tls| (tls, config.request_timeout));
        let (handle, file) = grpc::serve(listener, state.clone(), handshake, receiver.clone());
        listeners.push(handle);
        socket_files.extend(file);
    }
    let tls_reloader = tls
        .clone()
        .map(|tls| tls::watch(tls, config.debounce, config.watch, receiver.clone()));
    // Runs without a watcher too: SIGHUP (and `Running::reload`) reloads in every mode but a
    // bundle's, whose poller alone decides what is served.
    let reloader = bundler.is_none().then(|| {
        tokio::spawn(reload::run(
            state.clone(),
            watcher,
            trigger.clone(),
            reload::Settle {
                debounce: config.debounce,
                max_wait: config.reload_max_wait,
            },
            receiver,
        ))
    });
    if let Some(bundler) = bundler {
        // It stops at shutdown, like the reloader.
        tokio::spawn(bundler.poll(state.clone(), shutdown.subscribe()));
    }
    let key_watcher = tokio::spawn(identity::watch_keys(state.clone(), Duration::from_secs(1)));
    tracing::info!(
        address = %endpoint,
        grpc = %grpc_endpoint.as_ref().map_or("none".to_string(), ToString::to_string),
        admin = %admin_endpoint.as_ref().map_or("none".to_string(), ToString::to_string),
        tls = tls.is_some(),
        policies = %config.policies.display(),
        version = %state.status().version.as_deref().unwrap_or(""),
        "serving"
    );
    Ok(Running {
        address,
        admin_address,
        grpc_address,
        state,
        reload: trigger,
        shutdown,
        listeners,
        reloader,
        shutdown_timeout: config.shutdown_timeout,
        key_watcher,
        capability_watcher,
        endpoint,
        admin_endpoint,
        tls,
        tls_reloader,
        socket_files,
    })
}

impl Running {
    /// Stops accepting connections, lets requests in flight finish (up to the configured
    /// shutdown timeout), and stops the reloader.
    pub async fn shutdown(self) {
        self.state.begin_shutdown();
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        for listener in self.listeners {
            match tokio::time::timeout_at(deadline, listener).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::error!(%error, "listener failed"),
                Ok(Err(error)) => tracing::error!(%error, "listener task failed"),
                Err(_) => tracing::warn!("requests still in flight at the shutdown timeout"),
            }
        }
        if let Some(reloader) = &self.reloader {
            reloader.abort();
        }
        self.key_watcher.abort();
        drop(self.capability_watcher);
        // Every call has finished, so every record is queued: write them all, then close.
        if let Some(audit) = &self.state.audit {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            audit.close(left.max(Duration::from_secs(5))).await;
        }
        if let Some(reloader) = self.tls_reloader {
            reloader.abort();
        }
        drop(self.socket_files);
        tracing::info!("stopped");
    }
}

/// Runs a server until SIGTERM or SIGINT, then shuts it down gracefully.
pub async fn serve(config: &Config) -> Result<(), ServeError> {
    // Listen for signals before serving, so one that comes as soon as the server answers is
    // a graceful shutdown, not the default instant death.
    let stop = StopSignals::install();
    let running = start(config).await?;
    #[cfg(unix)]
    if let Some(mut hangup) = stop.hangup {
        // SIGHUP asks for a reload, as daemons conventionally do.
        let trigger = running.reload.clone();
        let tls = running.tls.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                trigger.fire();
                if let Some(tls) = &tls {
                    tls.fire();
                }
            }
        });
    }
    stop.terminate.await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await;
    Ok(())
}

struct StopSignals {
    terminate: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    #[cfg(unix)]
    fn install() -> StopSignals {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        let hangup = signal(SignalKind::hangup()).ok();
        let terminate = Box::pin(async move {
            let recv = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = recv(terminate) => {}
                _ = recv(interrupt) => {}
            }
        });
        StopSignals { terminate, hangup }
    }

    #[cfg(not(unix))]
    fn install() -> StopSignals {
        StopSignals {
            terminate: Box::pin(async {
                let _ = tokio::signal::ctrl_c().await;
            }),
        }
    }
}
