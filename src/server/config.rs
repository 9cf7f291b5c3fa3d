//! The configuration of `warden serve`: one TOML file, then `WARDEN_*` environment variables,
//! then flags, each layer overriding the one before. Every key has a default, so `warden serve`
//! with no arguments serves `./policies` on `127.0.0.1:8181`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::server::listen::Listen;
use crate::server::tls::{ClientIdentity, TlsFiles};

/// How logs are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One layer of settings (the file, or the flags with their environment variables): every key
/// optional, so a layer says only what it sets.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub policies: Option<PathBuf>,
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub grpc_listen: Option<String>,
    pub watch: Option<bool>,
    pub debounce_ms: Option<u64>,
    pub body_limit: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub shutdown_timeout_ms: Option<u64>,
    pub header_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub reload_max_wait_ms: Option<u64>,
    pub explain: Option<bool>,
    pub require_tests: Option<bool>,
    pub trust_forwarded: Option<bool>,
    pub public_url: Option<String>,
    pub api_key_sha256: Option<Vec<String>>,
    pub search_page_limit: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub gateway_subject_type: Option<String>,
    pub jwt_keys: Option<Vec<String>>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_leeway_s: Option<u64>,
    pub jwt_max_lifetime_s: Option<u64>,
    pub jwt_subject_claim: Option<String>,
    pub jwt_roles_claim: Option<String>,
    pub jwt_claims: Option<Vec<String>>,
    pub jwt_cache: Option<usize>,
    pub identity_header: Option<String>,
    pub upstream_headers: Option<Vec<String>>,
    pub envoy_path_prefix: Option<String>,
    pub routes_ignore_case: Option<bool>,
    pub audit_path: Option<PathBuf>,
    pub audit_key_file: Option<PathBuf>,
    pub audit_mode: Option<crate::audit::Mode>,
    pub audit_sample_allows: Option<f64>,
    pub audit_mask: Option<Vec<String>>,
    pub audit_queue: Option<usize>,
    pub audit_when_full: Option<crate::audit::WhenFull>,
    pub audit_fsync: Option<crate::audit::Fsync>,
    pub audit_fsync_interval_ms: Option<u64>,
    pub audit_checkpoint_records: Option<u64>,
    pub audit_checkpoint_interval_ms: Option<u64>,
    pub audit_rotate_bytes: Option<u64>,
    pub audit_rotate_interval_ms: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub tls_client_allow: Option<Vec<String>>,
    pub unix_socket_mode: Option<String>,
    pub authzen_subject_token: Option<bool>,
    pub grpc_strip_authorization: Option<bool>,
    pub capability_keys: Option<Vec<String>>,
    pub capability_grace_s: Option<u64>,
    pub capability_revocations: Option<PathBuf>,
    pub capability_audience: Option<String>,
    pub capability_header: Option<String>,
    pub bundle: Option<String>,
    pub bundle_public_keys: Option<Vec<PathBuf>>,
    pub bundle_poll_interval_s: Option<u64>,
    pub bundle_cache_dir: Option<PathBuf>,
    pub bundle_ca_file: Option<PathBuf>,
    pub rate_limit_redis: Option<String>,
    pub rate_limit_redis_timeout_ms: Option<u64>,
    pub rate_limit_redis_failure: Option<crate::limit::OnFailure>,
    pub revocations_redis: Option<String>,
}

impl ConfigLayer {
    /// Reads a TOML configuration file. Unknown keys are errors: a misspelt key silently
    /// ignored would leave a server running with a setting its operator did not mean.
    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Toml {
            path: path.to_path_buf(),
            at: source.span().map(|span| locate(&text, span.start)),
            source: Box::new(source),
        })
    }

    /// `self` with every key that `over` sets replaced by `over`'s value.
    pub(crate) fn overridden_by(self, over: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            policies: over.policies.or(self.policies),
            listen: over.listen.or(self.listen),
            admin_listen: over.admin_listen.or(self.admin_listen),
            grpc_listen: over.grpc_listen.or(self.grpc_listen),
            watch: over.watch.or(self.watch),
            debounce_ms: over.debounce_ms.or(self.debounce_ms),
            body_limit: over.body_limit.or(self.body_limit),
            request_timeout_ms: over.request_timeout_ms.or(self.request_timeout_ms),
            shutdown_timeout_ms: over.shutdown_timeout_ms.or(self.shutdown_timeout_ms),
            header_timeout_ms: over.header_timeout_ms.or(self.header_timeout_ms),
            idle_timeout_ms: over.idle_timeout_ms.or(self.idle_timeout_ms),
            max_connections: over.max_connections.or(self.max_connections),
            reload_max_wait_ms: over.reload_max_wait_ms.or(self.reload_max_wait_ms),
            explain: over.explain.or(self.explain),
            require_tests: over.require_tests.or(self.require_tests),
            trust_forwarded: over.trust_forwarded.or(self.trust_forwarded),
            public_url: over.public_url.or(self.public_url),
            api_key_sha256: over.api_key_sha256.or(self.api_key_sha256),
            search_page_limit: over.search_page_limit.or(self.search_page_limit),
            log_format: over.log_format.or(self.log_format),
            log_level: over.log_level.or(self.log_level),
            gateway_subject_type: over.gateway_subject_type.or(self.gateway_subject_type),
            jwt_keys: over.jwt_keys.or(self.jwt_keys),
            jwt_issuer: over.jwt_issuer.or(self.jwt_issuer),
            jwt_audience: over.jwt_audience.or(self.jwt_audience),
            jwt_leeway_s: over.jwt_leeway_s.or(self.jwt_leeway_s),
            jwt_max_lifetime_s: over.jwt_max_lifetime_s.or(self.jwt_max_lifetime_s),
            jwt_subject_claim: over.jwt_subject_claim.or(self.jwt_subject_claim),
            jwt_roles_claim: over.jwt_roles_claim.or(self.jwt_roles_claim),
            jwt_claims: over.jwt_claims.or(self.jwt_claims),
            jwt_cache: over.jwt_cache.or(self.jwt_cache),
            identity_header: over.identity_header.or(self.identity_header),
            upstream_headers: over.upstream_headers.or(self.upstream_headers),
            envoy_path_prefix: over.envoy_path_prefix.or(self.envoy_path_prefix),
            routes_ignore_case: over.routes_ignore_case.or(self.routes_ignore_case),
            audit_path: over.audit_path.or(self.audit_path),
            audit_key_file: over.audit_key_file.or(self.audit_key_file),
            audit_mode: over.audit_mode.or(self.audit_mode),
            audit_sample_allows: over.audit_sample_allows.or(self.audit_sample_allows),
            audit_mask: over.audit_mask.or(self.audit_mask),
            audit_queue: over.audit_queue.or(self.audit_queue),
            audit_when_full: over.audit_when_full.or(self.audit_when_full),
            audit_fsync: over.audit_fsync.or(self.audit_fsync),
            audit_fsync_interval_ms: over
                .audit_fsync_interval_ms
                .or(self.audit_fsync_interval_ms),
            audit_checkpoint_records: over
                .audit_checkpoint_records
                .or(self.audit_checkpoint_records),
            audit_checkpoint_interval_ms: over
                .audit_checkpoint_interval_ms
                .or(self.audit_checkpoint_interval_ms),
            audit_rotate_bytes: over.audit_rotate_bytes.or(self.audit_rotate_bytes),
            audit_rotate_interval_ms: over
                .audit_rotate_interval_ms
                .or(self.audit_rotate_interval_ms),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_client_ca: over.tls_client_ca.or(self.tls_client_ca),
            tls_client_allow: over.tls_client_allow.or(self.tls_client_allow),
            unix_socket_mode: over.unix_socket_mode.or(self.unix_socket_mode),
            authzen_subject_token: over.authzen_subject_token.or(self.authzen_subject_token),
            grpc_strip_authorization: over
                .grpc_strip_authorization
                .or(self.grpc_strip_authorization),
            capability_keys: over.capability_keys.or(self.capability_keys),
            capability_grace_s: over.capability_grace_s.or(self.capability_grace_s),
            capability_revocations: over.capability_revocations.or(self.capability_revocations),
            capability_audience: over.capability_audience.or(self.capability_audience),
            capability_header: over.capability_header.or(self.capability_header),
            bundle: over.bundle.or(self.bundle),
            bundle_public_keys: over.bundle_public_keys.or(self.bundle_public_keys),
            bundle_poll_interval_s: over.bundle_poll_interval_s.or(self.bundle_poll_interval_s),
            bundle_cache_dir: over.bundle_cache_dir.or(self.bundle_cache_dir),
            bundle_ca_file: over.bundle_ca_file.or(self.bundle_ca_file),
            rate_limit_redis: over.rate_limit_redis.or(self.rate_limit_redis),
            rate_limit_redis_timeout_ms: over
                .rate_limit_redis_timeout_ms
                .or(self.rate_limit_redis_timeout_ms),
            rate_limit_redis_failure: over
                .rate_limit_redis_failure
                .or(self.rate_limit_redis_failure),
            revocations_redis: over.revocations_redis.or(self.revocations_redis),
        }
    }
}

/// `, line L` and, when the line assigns a key, `, key `K``: where a TOML error is.
fn locate(text: &str, offset: usize) -> TomlPlace {
    let before = text.get(..offset).unwrap_or(text);
    let number = before.matches('\n').count() + 1;
    let line = text.lines().nth(number - 1).unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() && !key.trim_start().starts_with('#') => {
            TomlPlace {
                line: number,
                key: Some(key.trim().to_string()),
            }
        }
        _ => TomlPlace {
            line: number,
            key: None,
        },
    }
}

/// Where in a configuration file TOML found an error: a line, and the key it sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlPlace {
    /// 1-based.
    pub line: usize,
    pub key: Option<String>,
}

impl std::fmt::Display for TomlPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ", line {}", self.line)?;
        match &self.key {
            Some(key) => write!(f, ", key `{key}`"),
            None => Ok(()),
        }
    }
}

/// A configuration that cannot be used; each message names the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file `{}`: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "configuration file `{}`{}: {}",
        path.display(),
        at.as_ref().map(ToString::to_string).unwrap_or_default(),
        source.message()
    )]
    Toml {
        path: PathBuf,
        at: Option<TomlPlace>,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A listening address; the reason says what was expected.
    #[error("`{key}`: {reason}")]
    Listen { key: &'static str, reason: String },
    #[error("`{key}` must be greater than 0")]
    NotPositive { key: &'static str },
    #[error("`log_level`: `{filter}` is not a log filter; write e.g. `info` or `warden=debug`")]
    LogLevel { filter: String },
    #[error("`tls_client_allow`: {0}")]
    ClientAllow(#[source] crate::server::tls::IdentityError),
    #[error("`bundle` and `policies` exclude each other: the policies come from the bundle")]
    BundleAndPolicies,
    #[error("`bundle`: {0}")]
    Bundle(#[source] crate::bundle::fetch::FetchError),
    #[error(
        "`bundle` needs `bundle_public_keys`: the Ed25519 public keys (PEM) bundles are signed with"
    )]
    BundleNeedsKeys,
    #[error("`jwt_keys`: {0}")]
    JwtKey(#[source] crate::gateway::identity::JwtKeyError),
    /// The JWT keys as configured do not load.
    #[error(transparent)]
    JwtVerifier(crate::gateway::identity::JwtKeyError),
    #[error("`{key}`: `{item}` must be `NAME=VALUE`")]
    NotPair { key: &'static str, item: String },
    #[error("`upstream_headers`: `{name}` is not a header name")]
    UpstreamHeaderName { name: String },
    #[error(
        "`upstream_headers`: `{value}` is not one of subject, action, resource_type, resource_id, route, roles, attr:NAME"
    )]
    UpstreamHeaderValue { value: String },
    #[error("`envoy_path_prefix`: `{prefix}` must be a path like `/ext-authz`")]
    EnvoyPathPrefix { prefix: String },
    /// The URL as [`crate::redis_client::masked`] shows it, without its password.
    #[error("`rate_limit_redis`: `{masked}` is not a Redis URL; write `redis://HOST:PORT`")]
    RedisUrl { masked: String },
    #[error("`rate_limit_redis`: {0}")]
    RateLimitRedis(#[source] crate::limit::shared::RedisSetupError),
    #[error("`capability_keys`: {0}")]
    CapabilityKey(#[source] crate::capability::KeyError),
    #[error(
        "`capability_keys`: `{}` is inside the policy directory; keep keys where policy authors cannot read them",
        path.display()
    )]
    CapabilityKeyInPolicies { path: PathBuf },
    #[error("`capability_grace_s` is too large")]
    CapabilityGrace,
    #[error("`capability_revocations`: {0}")]
    Revocations(#[source] crate::capability::RevocationError),
    #[error("`revocations_redis`: {0}")]
    RevocationsRedis(#[source] crate::capability::RevocationError),
    #[error(
        "`capability_header`: `{header}` is not a header name other than `Authorization` (which carries identity)"
    )]
    CapabilityHeader { header: String },
    #[error(
        "`audit_key_file` is required with `audit_path`: checkpoints are signed with it \
         (make one with `head -c 32 /dev/urandom | base64 > audit.key`)"
    )]
    AuditNeedsKey,
    #[error("`audit_key_file`: {0}")]
    AuditKey(#[source] crate::audit::KeyFileError),
    #[error(
        "`audit_key_file`: `{}` is an Ed25519 public key, which cannot sign checkpoints: give \
         the server the private key, and verifiers the public one",
        path.display()
    )]
    AuditKeyPublic { path: PathBuf },
    #[error("`audit_sample_allows` must be between 0 and 1 (the fraction of allows recorded)")]
    AuditSampleRate,
    #[error(
        "`tls_client_allow` needs `tls_cert`, `tls_key` and `tls_client_ca`: client \
         identities are read from certificates verified over mutual TLS"
    )]
    ClientAllowNeedsTls,
    #[error(
        "`tls_client_ca` needs `tls_cert` and `tls_key`: client certificates are verified \
         only over TLS"
    )]
    ClientCaNeedsTls,
    #[error(
        "`tls_client_allow` needs `tls_client_ca`: client identities are read only from \
         certificates verified against it"
    )]
    ClientAllowNeedsCa,
    #[error("`tls_key` is missing: `tls_cert` needs the certificate's private key")]
    TlsKeyMissing,
    #[error("`tls_cert` is missing: `tls_key` needs the certificate it belongs to")]
    TlsCertMissing,
    /// A file of the `tls_*` keys that does not serve.
    #[error("`{key}`: `{}`: {problem}", path.display())]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        #[source]
        problem: crate::server::tls::TlsFileProblem,
    },
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error(
        "`unix_socket_mode`: `{text}` is not a file mode; write octal permissions, e.g. `0660`"
    )]
    FileMode { text: String },
    #[error(
        "`public_url`: `{text}` must be an http:// or https:// URL without a query or fragment"
    )]
    PublicUrl { text: String },
    #[error(
        "`api_key_sha256`: each entry must be the SHA-256 of a key as 64 hexadecimal digits \
         (e.g. from `printf %s KEY | sha256sum`)"
    )]
    ApiKeyDigest,
}

/// The resolved configuration of a server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The policy directory.
    pub policies: PathBuf,
    /// The address of the decision API (and of the operations endpoints, unless
    /// `admin_listen` is set): `IP:PORT` or `unix:PATH`.
    pub listen: Listen,
    /// A separate address for `/healthz`, `/readyz`, `/v1/status` and `/metrics` (plain
    /// HTTP, never TLS, no API key).
    pub admin_listen: Option<Listen>,
    /// Envoy's `ext_authz` over gRPC and the gRPC health service (HTTP/2, TLS as `listen`):
    /// `IP:PORT` or `unix:PATH`. Unset: no gRPC listener.
    pub grpc_listen: Option<Listen>,
    /// Watch the policy directory and reload on change.
    pub watch: bool,
    /// How long the directory must be quiet before a change is loaded.
    pub debounce: Duration,
    /// The largest request body accepted, in bytes (larger ones get 413).
    pub body_limit: usize,
    /// The longest a request may take, body upload included (then 408).
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// The longest a client may take to send a request head (from connecting, or from the
    /// first byte after an idle pause); then the connection is closed.
    pub header_timeout: Duration,
    /// The longest a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// The most connections open at once on each listener; at the limit, a new connection
    /// closes the idle or half-sent one nearest its timeout.
    pub max_connections: usize,
    /// The longest a reload waits for a directory that keeps changing to settle.
    pub reload_max_wait: Duration,
    /// Give explanations to callers that ask (header `Warden-Explain: true`).
    pub explain: bool,
    /// Refuse to publish a program whose own policy tests fail (at start-up and on reload).
    pub require_tests: bool,
    /// Take discovery's base URL from `X-Forwarded-Host` and `X-Forwarded-Proto`.
    pub trust_forwarded: bool,
    /// Discovery's `policy_decision_point`, whatever the request says.
    pub public_url: Option<String>,
    /// SHA-256 digests of the accepted bearer API keys; empty: the API is open. They guard
    /// `/v1/status` and `/metrics` too, unless those are on `admin_listen`.
    pub api_keys: Vec<[u8; 32]>,
    /// The most results one search page holds (and the page size when none is asked).
    pub search_page_limit: usize,
    pub log_format: LogFormat,
    /// A `tracing` filter: `info`, `warden=debug`, ...
    pub log_level: String,
    /// Forward-auth: subject type, JWT verification, upstream headers, Envoy prefix.
    pub gateway: crate::gateway::GatewayConfig,
    /// The audit log, when `audit_path` is set.
    pub audit: Option<crate::audit::AuditConfig>,
    /// TLS on `listen` (and mTLS with a client CA, narrowed by an allow-list of identities).
    pub tls: Option<TlsFiles>,
    /// The permissions of a Unix socket file (`listen` or `admin_listen`).
    pub unix_socket_mode: u32,
    /// Capability tokens: signing keys, revocations, audience, header.
    pub capabilities: CapabilityConfig,
    /// Policies from a signed bundle (`policies` is then the cache's `current` directory).
    pub bundle: Option<BundleConfig>,
    /// Limits counted in Redis, shared by every replica that names the same server.
    pub rate_limit_redis: Option<crate::limit::RedisConfig>,
}

/// The `bundle*` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleConfig {
    /// An `http(s)://` URL or a local file.
    pub source: crate::bundle::fetch::Source,
    /// Ed25519 public keys (PEM); a bundle must be signed by one of them.
    pub public_keys: Vec<PathBuf>,
    /// Between polls, give or take a tenth at random so a fleet does not poll in step.
    pub poll_interval: Duration,
    /// The last good bundle and its unpacked directories.
    pub cache_dir: PathBuf,
    /// The CA certificates (PEM) that `https` bundle servers are checked against.
    pub ca_file: PathBuf,
}

impl BundleConfig {
    pub(crate) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
    pub(crate) const DEFAULT_CACHE_DIR: &str = "./warden-bundle-cache";
    pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
}

/// The `capability_*` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityConfig {
    /// Key specs, `ID:PATH` or `ID:PATH:retired=TIME`: tokens are minted with the first key
    /// that is not retired. Empty: capabilities are off (tokens are neither minted nor honoured).
    pub keys: Vec<String>,
    /// How long tokens under a retired key still verify.
    pub grace: Duration,
    /// The revocation file shared by every Warden that honours the same tokens.
    pub revocations: Option<PathBuf>,
    /// Redis holding and publishing revocations to every replica (`revocations_redis`).
    pub revocations_redis: Option<String>,
    /// This Warden's audience name (an `audience` caveat must equal it).
    pub audience: Option<String>,
    /// The header a gateway's request carries a token in.
    pub header: String,
}

impl Default for CapabilityConfig {
    fn default() -> CapabilityConfig {
        CapabilityConfig {
            keys: Vec::new(),
            grace: Duration::from_secs(7 * 24 * 3600),
            revocations: None,
            revocations_redis: None,
            audience: None,
            header: "Warden-Capability".to_string(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            policies: PathBuf::from("./policies"),
            listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8181))),
            admin_listen: None,
            grpc_listen: None,
            watch: true,
            debounce: Duration::from_millis(200),
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            // Longer than the connection pools of common clients keep an idle connection
            // (nginx 60 s, Go and hyper 90 s), so that the client, not the server, closes it:
            // a server closing first races the client's next request.
            idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
            reload_max_wait: Duration::from_secs(30),
            explain: false,
            require_tests: false,
            trust_forwarded: false,
            public_url: None,
            api_keys: Vec::new(),
            search_page_limit: 1000,
            log_format: LogFormat::Text,
            log_level: "info".to_string(),
            gateway: crate::gateway::GatewayConfig::default(),
            audit: None,
            tls: None,
            unix_socket_mode: 0o660,
            capabilities: CapabilityConfig::default(),
            bundle: None,
            rate_limit_redis: None,
        }
    }
}

impl Config {
    /// Resolves the merged layers over the defaults, checking every value.
    pub fn resolve(layer: ConfigLayer) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let gateway = gateway_config(&layer, defaults.gateway.clone())?;
        let capabilities = resolve_capabilities(&layer, defaults.capabilities.clone())?;
        let audit = resolve_audit(&layer)?;
        let bundle = resolve_bundle(&layer)?;
        let rate_limit_redis = resolve_rate_limit_redis(&layer)?;
        let address = |key: &'static str, text: &str| {
            text.parse::<Listen>()
                .map_err(|reason| ConfigError::Listen { key, reason })
        };
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::NotPositive { key })
            } else {
                Ok(value)
            }
        };
        let listen = match &layer.listen {
            Some(text) => address("listen", text)?,
            None => defaults.listen,
        };
        let admin_listen = layer
            .admin_listen
            .as_deref()
            .map(|text| address("admin_listen", text))
            .transpose()?;
        let grpc_listen = layer
            .grpc_listen
            .as_deref()
            .map(|text| address("grpc_listen", text))
            .transpose()?;
        let body_limit = match layer.body_limit {
            Some(limit) => usize::try_from(positive("body_limit", limit as u64)?)
                .unwrap_or(defaults.body_limit),
            None => defaults.body_limit,
        };
        let millis = |key: &'static str, value: Option<u64>, default: Duration| match value {
            Some(ms) => positive(key, ms).map(Duration::from_millis),
            None => Ok(default),
        };
        let search_page_limit = match layer.search_page_limit {
            Some(0) => {
                return Err(ConfigError::NotPositive {
                    key: "search_page_limit",
                });
            }
            Some(limit) => limit,
            None => defaults.search_page_limit,
        };
        let public_url = layer
            .public_url
            .as_deref()
            .map(check_public_url)
            .transpose()?;
        let api_keys = layer
            .api_key_sha256
            .unwrap_or_default()
            .iter()
            .map(|hex| parse_digest(hex))
            .collect::<Result<Vec<_>, _>>()?;
        let log_level = layer.log_level.unwrap_or(defaults.log_level);
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(ConfigError::LogLevel { filter: log_level });
        }
        let client_allow = layer
            .tls_client_allow
            .iter()
            .flatten()
            .map(|entry| {
                entry
                    .parse::<ClientIdentity>()
                    .map_err(ConfigError::ClientAllow)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls_files(
            layer.tls_cert,
            layer.tls_key,
            layer.tls_client_ca,
            client_allow,
        )?;
        let unix_socket_mode = match &layer.unix_socket_mode {
            Some(text) => parse_mode(text)?,
            None => defaults.unix_socket_mode,
        };
        let policies = match &bundle {
            Some(bundle) => bundle.cache_dir.join("current"),
            None => layer.policies.clone().unwrap_or(defaults.policies),
        };
        Ok(Config {
            policies,
            listen,
            admin_listen,
            grpc_listen,
            watch: layer.watch.unwrap_or(defaults.watch),
            // A zero debounce is allowed: every event reloads (useful in tests).
            debounce: layer
                .debounce_ms
                .map_or(defaults.debounce, Duration::from_millis),
            body_limit,
            request_timeout: millis(
                "request_timeout_ms",
                layer.request_timeout_ms,
                defaults.request_timeout,
            )?,
            shutdown_timeout: millis(
                "shutdown_timeout_ms",
                layer.shutdown_timeout_ms,
                defaults.shutdown_timeout,
            )?,
            header_timeout: millis(
                "header_timeout_ms",
                layer.header_timeout_ms,
                defaults.header_timeout,
            )?,
            idle_timeout: millis(
                "idle_timeout_ms",
                layer.idle_timeout_ms,
                defaults.idle_timeout,
            )?,
            max_connections: match layer.max_connections {
                Some(limit) => usize::try_from(positive("max_connections", limit as u64)?)
                    .unwrap_or(defaults.max_connections),
                None => defaults.max_connections,
            },
            reload_max_wait: millis(
                "reload_max_wait_ms",
                layer.reload_max_wait_ms,
                defaults.reload_max_wait,
            )?,
            explain: layer.explain.unwrap_or(defaults.explain),
            // A bundle's own tests gate it, always.
            require_tests: bundle.is_some()
                || layer.require_tests.unwrap_or(defaults.require_tests),
            trust_forwarded: layer.trust_forwarded.unwrap_or(defaults.trust_forwarded),
            public_url,
            api_keys,
            search_page_limit,
            log_format: layer.log_format.unwrap_or(defaults.log_format),
            log_level,
            capabilities,
            gateway,
            audit,
            tls,
            unix_socket_mode,
            bundle,
            rate_limit_redis,
        })
    }
}

/// The `bundle*` keys: a source, at least one public key, an interval over zero.
fn resolve_bundle(layer: &ConfigLayer) -> Result<Option<BundleConfig>, ConfigError> {
    let Some(text) = &layer.bundle else {
        return Ok(None);
    };
    if layer.policies.is_some() {
        return Err(ConfigError::BundleAndPolicies);
    }
    let source = crate::bundle::fetch::Source::parse(text).map_err(ConfigError::Bundle)?;
    let public_keys = layer.bundle_public_keys.clone().unwrap_or_default();
    if public_keys.is_empty() {
        return Err(ConfigError::BundleNeedsKeys);
    }
    let poll_interval = match layer.bundle_poll_interval_s {
        Some(0) => {
            return Err(ConfigError::NotPositive {
                key: "bundle_poll_interval_s",
            });
        }
        Some(seconds) => Duration::from_secs(seconds),
        None => BundleConfig::DEFAULT_POLL_INTERVAL,
    };
    Ok(Some(BundleConfig {
        source,
        public_keys,
        poll_interval,
        cache_dir: layer
            .bundle_cache_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(BundleConfig::DEFAULT_CACHE_DIR)),
        ca_file: layer
            .bundle_ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(BundleConfig::DEFAULT_CA_FILE)),
    }))
}

/// The gateway keys: key sources, claim mapping and upstream headers parsed and checked.
fn gateway_config(
    layer: &ConfigLayer,
    defaults: crate::gateway::GatewayConfig,
) -> Result<crate::gateway::GatewayConfig, ConfigError> {
    use crate::gateway::identity::{ClaimMapping, KeySource};
    let jwt_keys = layer
        .jwt_keys
        .iter()
        .flatten()
        .map(|k| KeySource::parse(k).map_err(ConfigError::JwtKey))
        .collect::<Result<Vec<_>, _>>()?;
    let pairs = |key: &'static str,
                 items: &Option<Vec<String>>|
     -> Result<Vec<(String, String)>, ConfigError> {
        items
            .iter()
            .flatten()
            .map(|item| match item.split_once('=') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                    Ok((a.trim().to_string(), b.trim().to_string()))
                }
                None if !item.trim().is_empty() && key == "jwt_claims" => {
                    Ok((item.trim().to_string(), item.trim().to_string()))
                }
                _ => Err(ConfigError::NotPair {
                    key,
                    item: item.clone(),
                }),
            })
            .collect()
    };
    let upstream_headers = pairs("upstream_headers", &layer.upstream_headers)?;
    for (name, source) in &upstream_headers {
        if axum::http::HeaderName::try_from(name.as_str()).is_err() {
            return Err(ConfigError::UpstreamHeaderName { name: name.clone() });
        }
        let known = matches!(
            source.as_str(),
            "subject" | "action" | "resource_type" | "resource_id" | "route" | "roles"
        ) || source.starts_with("attr:");
        if !known {
            return Err(ConfigError::UpstreamHeaderValue {
                value: source.clone(),
            });
        }
    }
    let envoy_path_prefix = layer
        .envoy_path_prefix
        .clone()
        .unwrap_or(defaults.envoy_path_prefix);
    if !envoy_path_prefix.starts_with('/') || envoy_path_prefix.trim_end_matches('/').is_empty() {
        return Err(ConfigError::EnvoyPathPrefix {
            prefix: envoy_path_prefix,
        });
    }
    Ok(crate::gateway::GatewayConfig {
        subject_type: layer
            .gateway_subject_type
            .clone()
            .unwrap_or(defaults.subject_type),
        jwt_keys,
        jwt_issuer: layer.jwt_issuer.clone(),
        jwt_audience: layer.jwt_audience.clone(),
        jwt_leeway_s: layer.jwt_leeway_s.unwrap_or(defaults.jwt_leeway_s),
        jwt_max_lifetime_s: match layer.jwt_max_lifetime_s {
            Some(0) => {
                return Err(ConfigError::NotPositive {
                    key: "jwt_max_lifetime_s",
                });
            }
            Some(seconds) => seconds,
            None => defaults.jwt_max_lifetime_s,
        },
        claims: ClaimMapping {
            subject: layer
                .jwt_subject_claim
                .clone()
                .unwrap_or(defaults.claims.subject),
            roles: layer
                .jwt_roles_claim
                .clone()
                .unwrap_or(defaults.claims.roles),
            attributes: pairs("jwt_claims", &layer.jwt_claims)?,
        },
        jwt_cache: layer.jwt_cache.unwrap_or(defaults.jwt_cache),
        identity_header: layer.identity_header.clone().filter(|h| !h.is_empty()),
        upstream_headers,
        envoy_path_prefix,
        routes_ignore_case: layer
            .routes_ignore_case
            .unwrap_or(defaults.routes_ignore_case),
        authzen_subject_token: layer
            .authzen_subject_token
            .unwrap_or(defaults.authzen_subject_token),
        grpc_strip_authorization: layer
            .grpc_strip_authorization
            .unwrap_or(defaults.grpc_strip_authorization),
    })
}

/// The `rate_limit_redis*` keys: `None` unless `rate_limit_redis` is set.
fn resolve_rate_limit_redis(
    layer: &ConfigLayer,
) -> Result<Option<crate::limit::RedisConfig>, ConfigError> {
    let Some(url) = layer.rate_limit_redis.clone().filter(|url| !url.is_empty()) else {
        return Ok(None);
    };
    if !["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Err(ConfigError::RedisUrl {
            masked: crate::redis_client::masked(&url),
        });
    }
    let timeout = match layer.rate_limit_redis_timeout_ms {
        Some(0) => {
            return Err(ConfigError::NotPositive {
                key: "rate_limit_redis_timeout_ms",
            });
        }
        Some(ms) => Duration::from_millis(ms),
        None => crate::limit::RedisConfig::DEFAULT_TIMEOUT,
    };
    Ok(Some(crate::limit::RedisConfig {
        url,
        timeout,
        on_failure: layer.rate_limit_redis_failure.unwrap_or_default(),
    }))
}

/// The `capability_*` keys.
fn resolve_capabilities(
    layer: &ConfigLayer,
    defaults: CapabilityConfig,
) -> Result<CapabilityConfig, ConfigError> {
    let keys = layer.capability_keys.clone().unwrap_or_default();
    for spec in &keys {
        spec.parse::<crate::capability::KeySpec>()
            .map_err(ConfigError::CapabilityKey)?;
    }
    let header = layer.capability_header.clone().unwrap_or(defaults.header);
    if axum::http::HeaderName::try_from(header.as_str()).is_err()
        || header.eq_ignore_ascii_case("authorization")
    {
        return Err(ConfigError::CapabilityHeader { header });
    }
    Ok(CapabilityConfig {
        keys,
        grace: layer
            .capability_grace_s
            .map_or(defaults.grace, Duration::from_secs),
        revocations: layer.capability_revocations.clone(),
        revocations_redis: layer
            .revocations_redis
            .clone()
            .filter(|url| !url.is_empty()),
        audience: layer.capability_audience.clone().filter(|a| !a.is_empty()),
        header,
    })
}

/// The `audit_*` keys: `None` unless `audit_path` is set; then `audit_key_file` is required.
fn resolve_audit(layer: &ConfigLayer) -> Result<Option<crate::audit::AuditConfig>, ConfigError> {
    use crate::audit::{AuditConfig, Key, Masking};
    let Some(path) = &layer.audit_path else {
        return Ok(None);
    };
    let Some(key_file) = &layer.audit_key_file else {
        return Err(ConfigError::AuditNeedsKey);
    };
    let key = Key::from_file(key_file).map_err(ConfigError::AuditKey)?;
    if !key.can_sign() {
        return Err(ConfigError::AuditKeyPublic {
            path: key_file.clone(),
        });
    }
    let mut audit = AuditConfig::new(path.clone(), key);
    audit.key_file = Some(key_file.clone());
    let positive = |key: &'static str, value: u64| {
        if value == 0 {
            Err(ConfigError::NotPositive { key })
        } else {
            Ok(value)
        }
    };
    if let Some(mode) = layer.audit_mode {
        audit.mode = mode;
    }
    if let Some(rate) = layer.audit_sample_allows {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ConfigError::AuditSampleRate);
        }
        audit.sample_allows = rate;
    }
    if let Some(names) = &layer.audit_mask {
        audit.masking = Masking {
            names: names
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
        };
    }
    if let Some(queue) = layer.audit_queue {
        audit.queue =
            usize::try_from(positive("audit_queue", queue as u64)?).unwrap_or(audit.queue);
    }
    if let Some(when_full) = layer.audit_when_full {
        audit.when_full = when_full;
    }
    if let Some(fsync) = layer.audit_fsync {
        audit.fsync = fsync;
    }
    if let Some(ms) = layer.audit_fsync_interval_ms {
        audit.fsync_interval = Duration::from_millis(positive("audit_fsync_interval_ms", ms)?);
    }
    if let Some(n) = layer.audit_checkpoint_records {
        audit.checkpoint_records = positive("audit_checkpoint_records", n)?;
    }
    if let Some(ms) = layer.audit_checkpoint_interval_ms {
        audit.checkpoint_interval =
            Duration::from_millis(positive("audit_checkpoint_interval_ms", ms)?);
    }
    if let Some(bytes) = layer.audit_rotate_bytes {
        audit.rotate_bytes = positive("audit_rotate_bytes", bytes)?;
    }
    if let Some(ms) = layer.audit_rotate_interval_ms {
        audit.rotate_interval = Some(Duration::from_millis(positive(
            "audit_rotate_interval_ms",
            ms,
        )?));
    }
    Ok(Some(audit))
}

/// TLS needs a certificate and its key together; a client CA needs both, and an allow-list of
/// client identities needs a client CA.
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    client_allow: Vec<ClientIdentity>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert,
                key,
                client_ca,
                client_allow,
            };
            files.check()?;
            Ok(Some(files))
        }
        (None, None) if !client_allow.is_empty() => Err(ConfigError::ClientAllowNeedsTls),
        (None, None) if client_ca.is_some() => Err(ConfigError::ClientCaNeedsTls),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::TlsKeyMissing),
        (None, Some(_)) => Err(ConfigError::TlsCertMissing),
    }
}

/// A file mode in octal, `0660` or `660`, at most `0777`.
fn parse_mode(text: &str) -> Result<u32, ConfigError> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(ConfigError::FileMode {
            text: text.to_string(),
        }),
    }
}

/// Discovery's base URL: http(s), with a host, and no query or fragment (the spec's words).
fn check_public_url(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => {
            Ok(trimmed.to_string())
        }
        _ => Err(ConfigError::PublicUrl {
            text: text.to_string(),
        }),
    }
}

/// A SHA-256 digest written as 64 hexadecimal digits.
fn parse_digest(hex: &str) -> Result<[u8; 32], ConfigError> {
    let invalid = || ConfigError::ApiKeyDigest;
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(invalid());
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| invalid())?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| invalid())?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_defaults_fill_the_rest() {
        let file = ConfigLayer {
            listen: Some("127.0.0.1:9000".to_string()),
            explain: Some(true),
            debounce_ms: Some(50),
            ..ConfigLayer::default()
        };
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:9001".to_string()),
            ..ConfigLayer::default()
        };
        let config = Config::resolve(file.overridden_by(flags)).unwrap();
        assert_eq!(config.listen.tcp().unwrap().port(), 9001);
        assert!(config.explain);
        assert_eq!(config.debounce, Duration::from_millis(50));
        assert_eq!(config.policies, PathBuf::from("./policies"));
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |layer: ConfigLayer| Config::resolve(layer).unwrap_err().to_string();
        assert!(
            bad(ConfigLayer {
                listen: Some("localhost".into()),
                ..Default::default()
            })
            .contains("`listen`")
        );
        assert!(
            bad(ConfigLayer {
                api_key_sha256: Some(vec!["abc".into()]),
                ..Default::default()
            })
            .contains("api_key_sha256")
        );
        assert!(
            bad(ConfigLayer {
                public_url: Some("ftp://x".into()),
                ..Default::default()
            })
            .contains("public_url")
        );
        assert!(
            bad(ConfigLayer {
                body_limit: Some(0),
                ..Default::default()
            })
            .contains("body_limit")
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let error = toml::from_str::<ConfigLayer>("listne = \"x\"").unwrap_err();
        assert!(error.message().contains("listne"));
        let layer: ConfigLayer =
            toml::from_str("listen = \"0.0.0.0:1\"\nlog_format = \"json\"").unwrap();
        assert_eq!(layer.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn gateway_keys_parse_and_bad_ones_are_named() {
        let layer: ConfigLayer = toml::from_str(
            "jwt_keys = [\"ES256:/k/ec.pem\", \"jwks:/k/j.json\"]\njwt_claims = [\"email\", \"dept=department\"]\n\
             upstream_headers = [\"X-User=subject\"]\njwt_cache = 0\nidentity_header = \"x-user\"",
        )
        .unwrap();
        let config = Config::resolve(layer).unwrap();
        assert_eq!(config.gateway.jwt_keys.len(), 2);
        assert_eq!(
            config.gateway.claims.attributes,
            vec![
                ("email".to_string(), "email".to_string()),
                ("dept".to_string(), "department".to_string())
            ]
        );
        assert_eq!(config.gateway.jwt_cache, 0);
        assert_eq!(config.gateway.identity_header.as_deref(), Some("x-user"));
        assert_eq!(config.gateway.envoy_path_prefix, "/ext-authz");
        let bad = |layer: ConfigLayer| Config::resolve(layer).unwrap_err().to_string();
        assert!(
            bad(ConfigLayer {
                jwt_keys: Some(vec!["none:/k".into()]),
                ..Default::default()
            })
            .contains("jwt_keys")
        );
        assert!(
            bad(ConfigLayer {
                upstream_headers: Some(vec!["X-User=password".into()]),
                ..Default::default()
            })
            .contains("upstream_headers")
        );
        assert!(
            bad(ConfigLayer {
                envoy_path_prefix: Some("ext".into()),
                ..Default::default()
            })
            .contains("envoy_path_prefix")
        );
    }

    #[test]
    fn digests_parse() {
        let digest = parse_digest(&"ab".repeat(32)).unwrap();
        assert!(digest.iter().all(|b| *b == 0xab));
        assert!(parse_digest(&"zz".repeat(32)).is_err());
    }
}
