//! `warden serve`: the AuthZEN decision API over HTTP, hot-reloaded from the policy directory.
//!
//! Settings come from a TOML file (`--config`), then `WARDEN_*` environment variables, then
//! flags; each key's flag, variable and file key share one name (`--admin-listen`,
//! `WARDEN_ADMIN_LISTEN`, `admin_listen`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format};
use crate::server::{self, Config, ConfigLayer, LogFormat, ServeError};

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML configuration file; its keys are the flags' names with `_` (`admin_listen`).
    #[arg(long, value_name = "FILE", env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// The policy directory [default: ./policies].
    #[arg(short = 'p', long, value_name = "DIR", env = "WARDEN_POLICIES")]
    pub policies: Option<PathBuf>,
    /// The address of the decision API: IP:PORT or unix:PATH [default: 127.0.0.1:8181].
    #[arg(long, value_name = "ADDRESS", env = "WARDEN_LISTEN")]
    pub listen: Option<String>,
    /// Serve /healthz, /readyz, /v1/status and /metrics on this address instead (IP:PORT or
    /// unix:PATH; plain HTTP, no API key: keep it private).
    #[arg(long, value_name = "ADDRESS", env = "WARDEN_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Serve Envoy's ext_authz over gRPC (and grpc.health.v1) on this address: IP:PORT or
    /// unix:PATH; HTTP/2, over TLS when --tls-cert is set [default: off].
    #[arg(long, value_name = "ADDRESS", env = "WARDEN_GRPC_LISTEN")]
    pub grpc_listen: Option<String>,
    /// Watch the policy directory and reload on change [default: true].
    #[arg(long, value_name = "BOOL", env = "WARDEN_WATCH", num_args = 0..=1, default_missing_value = "true")]
    pub watch: Option<bool>,
    /// Quiet time after a change before reloading, in milliseconds [default: 200].
    #[arg(long, value_name = "MS", env = "WARDEN_DEBOUNCE_MS")]
    pub debounce_ms: Option<u64>,
    /// The largest request body accepted, in bytes [default: 1048576].
    #[arg(long, value_name = "BYTES", env = "WARDEN_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// The longest a request may take, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS", env = "WARDEN_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// How long shutdown waits for requests in flight, in milliseconds [default: 30000].
    #[arg(long, value_name = "MS", env = "WARDEN_SHUTDOWN_TIMEOUT_MS")]
    pub shutdown_timeout_ms: Option<u64>,
    /// The longest a client may take to send a request head, from connecting or from the
    /// first byte after an idle pause, in milliseconds; then the connection is closed
    /// [default: 10000].
    #[arg(long, value_name = "MS", env = "WARDEN_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// How long a keep-alive connection may stay idle between requests, in milliseconds
    /// [default: 120000].
    #[arg(long, value_name = "MS", env = "WARDEN_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// The most connections open at once per listener; at the limit a new connection closes
    /// the idle or half-sent one nearest its timeout [default: 10000, lowered to fit the
    /// open-file limit].
    #[arg(long, value_name = "N", env = "WARDEN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The longest a reload waits for a policy directory that keeps changing to be quiet
    /// for the debounce time, in milliseconds [default: 30000].
    #[arg(long, value_name = "MS", env = "WARDEN_RELOAD_MAX_WAIT_MS")]
    pub reload_max_wait_ms: Option<u64>,
    /// Explain decisions to callers that send `Warden-Explain: true` [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_EXPLAIN", num_args = 0..=1, default_missing_value = "true")]
    pub explain: Option<bool>,
    /// Refuse a policy change whose own `test` blocks fail, like a broken file [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_REQUIRE_TESTS", num_args = 0..=1, default_missing_value = "true")]
    pub require_tests: Option<bool>,
    /// Trust `X-Forwarded-Host`/`-Proto` for discovery's URLs (without it, or them, and
    /// without `--public-url`, discovery writes relative paths; never the `Host` header)
    /// [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_TRUST_FORWARDED", num_args = 0..=1, default_missing_value = "true")]
    pub trust_forwarded: Option<bool>,
    /// The base URL discovery advertises, whatever the request says (needed by clients that
    /// want absolute URLs).
    #[arg(long, value_name = "URL", env = "WARDEN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Require a bearer API key whose SHA-256 (64 hex digits) is one of these (comma-separated),
    /// for the decision API, and for /v1/status and /metrics unless --admin-listen is set.
    #[arg(
        long,
        value_name = "HEX",
        env = "WARDEN_API_KEY_SHA256",
        value_delimiter = ','
    )]
    pub api_key_sha256: Option<Vec<String>>,
    /// The most results one search page holds [default: 1000].
    #[arg(long, value_name = "N", env = "WARDEN_SEARCH_PAGE_LIMIT")]
    pub search_page_limit: Option<usize>,
    /// Log format [default: text].
    #[arg(long, value_enum, value_name = "FORMAT", env = "WARDEN_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `warden=debug` [default: info].
    #[arg(long, value_name = "FILTER", env = "WARDEN_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// The entity type of forward-auth subjects [default: User].
    #[arg(long, value_name = "TYPE", env = "WARDEN_GATEWAY_SUBJECT_TYPE")]
    pub gateway_subject_type: Option<String>,
    /// JWT verification keys, comma-separated: `ES256:ec.pem`, `HS256:secret`, `jwks:keys.json`.
    #[arg(
        long,
        value_name = "ALG:PATH",
        env = "WARDEN_JWT_KEYS",
        value_delimiter = ','
    )]
    pub jwt_keys: Option<Vec<String>>,
    /// The required `iss` of bearer tokens.
    #[arg(long, value_name = "ISS", env = "WARDEN_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The required `aud` of bearer tokens.
    #[arg(long, value_name = "AUD", env = "WARDEN_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Leeway for `exp` and `nbf`, in seconds [default: 30].
    #[arg(long, value_name = "SECONDS", env = "WARDEN_JWT_LEEWAY_S")]
    pub jwt_leeway_s: Option<u64>,
    /// The longest a bearer token may live, `exp - iat` and `exp - now`, in seconds
    /// [default: 86400].
    #[arg(long, value_name = "SECONDS", env = "WARDEN_JWT_MAX_LIFETIME_S")]
    pub jwt_max_lifetime_s: Option<u64>,
    /// The claim holding the subject id [default: sub].
    #[arg(long, value_name = "CLAIM", env = "WARDEN_JWT_SUBJECT_CLAIM")]
    pub jwt_subject_claim: Option<String>,
    /// The claim (dotted path) holding the roles [default: roles].
    #[arg(long, value_name = "CLAIM", env = "WARDEN_JWT_ROLES_CLAIM")]
    pub jwt_roles_claim: Option<String>,
    /// Claims that become verified attributes, comma-separated (`email`, `dept=department`).
    #[arg(
        long,
        value_name = "CLAIM[=ATTR]",
        env = "WARDEN_JWT_CLAIMS",
        value_delimiter = ','
    )]
    pub jwt_claims: Option<Vec<String>>,
    /// How many verified tokens are cached until their `exp` [default: 10000; 0: none].
    #[arg(long, value_name = "N", env = "WARDEN_JWT_CACHE")]
    pub jwt_cache: Option<usize>,
    /// Take the subject id from this header, set by a trusted gateway (instead of a token).
    #[arg(long, value_name = "HEADER", env = "WARDEN_IDENTITY_HEADER")]
    pub identity_header: Option<String>,
    /// Headers for the upstream on allow, comma-separated (`X-User=subject`).
    #[arg(
        long,
        value_name = "HEADER=VALUE",
        env = "WARDEN_UPSTREAM_HEADERS",
        value_delimiter = ','
    )]
    pub upstream_headers: Option<Vec<String>>,
    /// Envoy ext_authz's `path_prefix` [default: /ext-authz].
    #[arg(long, value_name = "PATH", env = "WARDEN_ENVOY_PATH_PREFIX")]
    pub envoy_path_prefix: Option<String>,
    /// Match routes ignoring the case of the path, for upstreams that do (`/Admin` is
    /// `/admin`); parameters are lower-cased too [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_ROUTES_IGNORE_CASE", num_args = 0..=1, default_missing_value = "true")]
    pub routes_ignore_case: Option<bool>,
    /// Write an audit record of every decision to this file (rotated files: FILE.<seq>).
    #[arg(long, value_name = "FILE", env = "WARDEN_AUDIT_PATH")]
    pub audit_path: Option<PathBuf>,
    /// The key that signs the audit log's checkpoints: a secret of at least 16 bytes
    /// (HMAC-SHA256) or an Ed25519 private key in PEM; required with --audit-path.
    #[arg(long, value_name = "FILE", env = "WARDEN_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Which decisions are recorded [default: all].
    #[arg(long, value_enum, value_name = "MODE", env = "WARDEN_AUDIT_MODE")]
    pub audit_mode: Option<crate::audit::Mode>,
    /// In `sampled` mode, the fraction of allows recorded, 0 to 1 (denies always are) [default: 1].
    #[arg(long, value_name = "FRACTION", env = "WARDEN_AUDIT_SAMPLE_ALLOWS")]
    pub audit_sample_allows: Option<f64>,
    /// Property and context names whose values are masked in audit records (comma-separated).
    #[arg(
        long,
        value_name = "NAMES",
        env = "WARDEN_AUDIT_MASK",
        value_delimiter = ','
    )]
    pub audit_mask: Option<Vec<String>>,
    /// The audit queue's capacity, in decisions: a batch call's record takes one place per
    /// decision it holds [default: 65536].
    #[arg(long, value_name = "N", env = "WARDEN_AUDIT_QUEUE")]
    pub audit_queue: Option<usize>,
    /// When the audit queue is full: wait for room, or drop and count [default: block].
    #[arg(
        long,
        value_enum,
        value_name = "POLICY",
        env = "WARDEN_AUDIT_WHEN_FULL"
    )]
    pub audit_when_full: Option<crate::audit::WhenFull>,
    /// When the audit file is synced: after every batch, or at an interval [default: interval].
    #[arg(long, value_enum, value_name = "POLICY", env = "WARDEN_AUDIT_FSYNC")]
    pub audit_fsync: Option<crate::audit::Fsync>,
    /// With the `interval` policy (the default), the longest between syncs, in milliseconds
    /// [default: 1000].
    #[arg(long, value_name = "MS", env = "WARDEN_AUDIT_FSYNC_INTERVAL_MS")]
    pub audit_fsync_interval_ms: Option<u64>,
    /// A signed checkpoint after this many records [default: 10000].
    #[arg(long, value_name = "N", env = "WARDEN_AUDIT_CHECKPOINT_RECORDS")]
    pub audit_checkpoint_records: Option<u64>,
    /// A signed checkpoint at least this often while records arrive, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS", env = "WARDEN_AUDIT_CHECKPOINT_INTERVAL_MS")]
    pub audit_checkpoint_interval_ms: Option<u64>,
    /// Rotate the audit file at this size, in bytes [default: 268435456].
    #[arg(long, value_name = "BYTES", env = "WARDEN_AUDIT_ROTATE_BYTES")]
    pub audit_rotate_bytes: Option<u64>,
    /// Rotate the audit file at this age, in milliseconds [default: never].
    #[arg(long, value_name = "MS", env = "WARDEN_AUDIT_ROTATE_INTERVAL_MS")]
    pub audit_rotate_interval_ms: Option<u64>,
    /// Serve the decision API over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "WARDEN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", env = "WARDEN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by these CAs (PEM): mutual TLS.
    #[arg(long, value_name = "FILE", env = "WARDEN_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca, admit only client certificates naming one of these identities
    /// (comma-separated): `dns:NAME` or `uri:URI` (a subject alternative name), `cn:NAME` (the
    /// subject's common name) [default: any certificate from the CA].
    #[arg(
        long,
        value_name = "KIND:NAME",
        env = "WARDEN_TLS_CLIENT_ALLOW",
        value_delimiter = ','
    )]
    pub tls_client_allow: Option<Vec<String>>,
    /// The permissions of a Unix socket file, in octal [default: 0660].
    #[arg(long, value_name = "MODE", env = "WARDEN_UNIX_SOCKET_MODE")]
    pub unix_socket_mode: Option<String>,
    /// Print the effective configuration as TOML that `--config` accepts (API keys as their
    /// SHA-256 digests, key files by path) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Verify the subject's JWT sent with AuthZEN calls in `Warden-Subject-Token` [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_AUTHZEN_SUBJECT_TOKEN", num_args = 0..=1, default_missing_value = "true")]
    pub authzen_subject_token: Option<bool>,
    /// On an allow over gRPC, remove `Authorization` from the request Envoy passes upstream, so
    /// the token stays between the client, Envoy and Warden [default: false].
    #[arg(long, value_name = "BOOL", env = "WARDEN_GRPC_STRIP_AUTHORIZATION", num_args = 0..=1, default_missing_value = "true")]
    pub grpc_strip_authorization: Option<bool>,
    /// Capability signing keys, comma-separated: `ID:PATH` or `ID:PATH:retired=TIME`; tokens
    /// are minted with the first key not retired.
    #[arg(
        long,
        value_name = "ID:PATH",
        env = "WARDEN_CAPABILITY_KEYS",
        value_delimiter = ','
    )]
    pub capability_keys: Option<Vec<String>>,
    /// How long tokens under a retired key still verify, in seconds [default: 604800].
    #[arg(long, value_name = "SECONDS", env = "WARDEN_CAPABILITY_GRACE_S")]
    pub capability_grace_s: Option<u64>,
    /// The revocation file, shared by every Warden that honours the same tokens.
    #[arg(long, value_name = "FILE", env = "WARDEN_CAPABILITY_REVOCATIONS")]
    pub capability_revocations: Option<PathBuf>,
    /// This Warden's audience: tokens with an `audience` caveat must name it.
    #[arg(long, value_name = "NAME", env = "WARDEN_CAPABILITY_AUDIENCE")]
    pub capability_audience: Option<String>,
    /// The header a gateway request carries a capability token in [default: Warden-Capability].
    #[arg(long, value_name = "HEADER", env = "WARDEN_CAPABILITY_HEADER")]
    pub capability_header: Option<String>,
    /// Serve the policies of a signed bundle (`warden bundle build`), fetched from this
    /// `http(s)://` URL or read from this file and polled for new revisions; excludes
    /// --policies. Each bundle is verified and its tests run before it serves.
    #[arg(long, value_name = "URL|PATH", env = "WARDEN_BUNDLE")]
    pub bundle: Option<String>,
    /// The Ed25519 public keys (PEM) a bundle must be signed with, comma-separated.
    #[arg(
        long,
        value_name = "FILE",
        env = "WARDEN_BUNDLE_PUBLIC_KEYS",
        value_delimiter = ','
    )]
    pub bundle_public_keys: Option<Vec<PathBuf>>,
    /// How often the bundle is polled, in seconds, give or take a tenth [default: 30].
    #[arg(long, value_name = "SECONDS", env = "WARDEN_BUNDLE_POLL_INTERVAL_S")]
    pub bundle_poll_interval_s: Option<u64>,
    /// Where the last good bundle is kept, so a restart while the bundle server is down still
    /// serves it [default: ./warden-bundle-cache].
    #[arg(long, value_name = "DIR", env = "WARDEN_BUNDLE_CACHE_DIR")]
    pub bundle_cache_dir: Option<PathBuf>,
    /// CA certificates (PEM) for `https` bundle URLs [default: /etc/ssl/certs/ca-certificates.crt].
    #[arg(long, value_name = "FILE", env = "WARDEN_BUNDLE_CA_FILE")]
    pub bundle_ca_file: Option<PathBuf>,
    /// Count rate limits in this Redis (`redis://HOST:PORT`), shared by every replica that
    /// names it, instead of in this process.
    #[arg(long, value_name = "URL", env = "WARDEN_RATE_LIMIT_REDIS")]
    pub rate_limit_redis: Option<String>,
    /// The longest a decision waits for Redis, in milliseconds [default: 100].
    #[arg(long, value_name = "MS", env = "WARDEN_RATE_LIMIT_REDIS_TIMEOUT_MS")]
    pub rate_limit_redis_timeout_ms: Option<u64>,
    /// When Redis fails or times out: `open` counts in this process instead, `closed` denies
    /// [default: open].
    #[arg(long, value_name = "MODE", env = "WARDEN_RATE_LIMIT_REDIS_FAILURE")]
    pub rate_limit_redis_failure: Option<crate::limit::OnFailure>,
    /// Share capability revocations through this Redis (`redis://HOST:PORT`): a revocation on
    /// any replica is stored there and published to all of them.
    #[arg(long, value_name = "URL", env = "WARDEN_REVOCATIONS_REDIS")]
    pub revocations_redis: Option<String>,
}

impl ServeArgs {
    /// The flags (with their environment variables, which clap reads below the flags).
    fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            policies: self.policies.clone(),
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            grpc_listen: self.grpc_listen.clone(),
            watch: self.watch,
            debounce_ms: self.debounce_ms,
            body_limit: self.body_limit,
            request_timeout_ms: self.request_timeout_ms,
            shutdown_timeout_ms: self.shutdown_timeout_ms,
            header_timeout_ms: self.header_timeout_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            max_connections: self.max_connections,
            reload_max_wait_ms: self.reload_max_wait_ms,
            explain: self.explain,
            require_tests: self.require_tests,
            trust_forwarded: self.trust_forwarded,
            public_url: self.public_url.clone(),
            api_key_sha256: self.api_key_sha256.clone(),
            search_page_limit: self.search_page_limit,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            gateway_subject_type: self.gateway_subject_type.clone(),
            jwt_keys: self.jwt_keys.clone(),
            jwt_issuer: self.jwt_issuer.clone(),
            jwt_audience: self.jwt_audience.clone(),
            jwt_leeway_s: self.jwt_leeway_s,
            jwt_max_lifetime_s: self.jwt_max_lifetime_s,
            jwt_subject_claim: self.jwt_subject_claim.clone(),
            jwt_roles_claim: self.jwt_roles_claim.clone(),
            jwt_claims: self.jwt_claims.clone(),
            jwt_cache: self.jwt_cache,
            identity_header: self.identity_header.clone(),
            upstream_headers: self.upstream_headers.clone(),
            envoy_path_prefix: self.envoy_path_prefix.clone(),
            routes_ignore_case: self.routes_ignore_case,
            audit_path: self.audit_path.clone(),
            audit_key_file: self.audit_key_file.clone(),
            audit_mode: self.audit_mode,
            audit_sample_allows: self.audit_sample_allows,
            audit_mask: self.audit_mask.clone(),
            audit_queue: self.audit_queue,
            audit_when_full: self.audit_when_full,
            audit_fsync: self.audit_fsync,
            audit_fsync_interval_ms: self.audit_fsync_interval_ms,
            audit_checkpoint_records: self.audit_checkpoint_records,
            audit_checkpoint_interval_ms: self.audit_checkpoint_interval_ms,
            audit_rotate_bytes: self.audit_rotate_bytes,
            audit_rotate_interval_ms: self.audit_rotate_interval_ms,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            tls_client_allow: self.tls_client_allow.clone(),
            unix_socket_mode: self.unix_socket_mode.clone(),
            authzen_subject_token: self.authzen_subject_token,
            grpc_strip_authorization: self.grpc_strip_authorization,
            capability_keys: self.capability_keys.clone(),
            capability_grace_s: self.capability_grace_s,
            capability_revocations: self.capability_revocations.clone(),
            capability_audience: self.capability_audience.clone(),
            capability_header: self.capability_header.clone(),
            bundle: self.bundle.clone(),
            bundle_public_keys: self.bundle_public_keys.clone(),
            bundle_poll_interval_s: self.bundle_poll_interval_s,
            bundle_cache_dir: self.bundle_cache_dir.clone(),
            bundle_ca_file: self.bundle_ca_file.clone(),
            rate_limit_redis: self.rate_limit_redis.clone(),
            rate_limit_redis_timeout_ms: self.rate_limit_redis_timeout_ms,
            rate_limit_redis_failure: self.rate_limit_redis_failure,
            revocations_redis: self.revocations_redis.clone(),
        }
    }
}

/// The configuration: the file, then the environment and flags over it.
pub fn resolve(args: &ServeArgs) -> Result<Config, server::ConfigError> {
    let file = match &args.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    Config::resolve(file.overridden_by(args.layer()))
}

pub fn run(args: &ServeArgs) -> Exit {
    let config = match resolve(args) {
        Ok(config) => config,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            return Exit::InvalidInput;
        }
    };
    if args.print_config {
        let _ = write!(std::io::stdout(), "{}", config.effective_toml());
        return Exit::Success;
    }
    init_logging(&config);
    // Each connection holds a file descriptor: take all the process may have.
    server::connections::raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the runtime: {error}"
            );
            return Exit::Internal;
        }
    };
    let result = runtime.block_on(server::serve(&config));
    // A reload still building must not hold the process after shutdown.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => Exit::Success,
        Err(ServeError::Policies(diagnostics)) => {
            print_diagnostics(&diagnostics, Format::Human);
            let _ = writeln!(
                std::io::stderr(),
                "error: the policy directory `{}` does not load; nothing is served",
                config.policies.display()
            );
            Exit::InvalidInput
        }
        Err(error @ ServeError::Config(_)) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            Exit::InvalidInput
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            Exit::Internal
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(crate::cli::output::color(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Already set (a test running several servers in one process): keep the first.
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
