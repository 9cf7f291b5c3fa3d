//! Gateways: `route` declarations compiled to a router ([`routes`]), verified identity from
//! bearer JWTs ([`identity`]), and the forward-auth endpoints that nginx `auth_request`, Envoy
//! `ext_authz` (HTTP) and Traefik `forwardAuth` call ([`forward`]).

pub mod forward;
pub mod identity;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use identity::{ClaimMapping, KeySource, Missing, Rules, Verifier};

/// The gateway part of the configuration (`gateway_*`, `jwt_*`, `identity_header`,
/// `upstream_headers`).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The entity type of forward-auth subjects.
    pub subject_type: String,
    /// Verification keys: `ALG:PATH` (PEM, or a secret file for HS*) or `jwks:PATH`.
    pub jwt_keys: Vec<KeySource>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Leeway for `exp` and `nbf`, in seconds.
    pub jwt_leeway_s: u64,
    /// The longest a token may live (`exp - iat`, and `exp - now`), in seconds.
    pub jwt_max_lifetime_s: u64,
    pub claims: ClaimMapping,
    /// How many verified tokens are cached (0: none).
    pub jwt_cache: usize,
    /// A header that a trusted gateway sets to the subject's id, used instead of a token.
    pub identity_header: Option<String>,
    /// `(header, value)`: headers for the upstream on allow. Values: `subject`, `action`,
    /// `resource_type`, `resource_id`, `route`, `roles`, `attr:NAME`.
    pub upstream_headers: Vec<(String, String)>,
    /// Envoy's `path_prefix`: the ext_authz endpoint is under it.
    pub envoy_path_prefix: String,
    /// Routes match the path with ASCII letters lower-cased, for upstreams that ignore case.
    pub routes_ignore_case: bool,
    /// AuthZEN calls may carry the subject's JWT in `Warden-Subject-Token`: verified like a
    /// forward-auth token, its claims become the verified attributes of the subject it names.
    pub authzen_subject_token: bool,
    /// On an allow over gRPC, Envoy removes `Authorization` from the upstream request.
    pub grpc_strip_authorization: bool,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            subject_type: "User".to_string(),
            jwt_keys: Vec::new(),
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_s: 30,
            jwt_max_lifetime_s: 24 * 3600,
            claims: ClaimMapping::default(),
            jwt_cache: 10_000,
            identity_header: None,
            upstream_headers: Vec::new(),
            envoy_path_prefix: "/ext-authz".to_string(),
            routes_ignore_case: false,
            authzen_subject_token: false,
            grpc_strip_authorization: false,
        }
    }
}

impl GatewayConfig {
    /// Builds the verifier from the key files (none configured: `None`); every file must be
    /// there.
    pub fn verifier(&self) -> Result<Option<Verifier>, String> {
        self.load_verifier(Missing::Fail)
    }

    /// Builds the verifier again after a key file changed: a file that was deleted is a key
    /// removed on purpose, and tokens it signed stop verifying.
    pub fn reloaded_verifier(&self) -> Result<Option<Verifier>, String> {
        self.load_verifier(Missing::Drop)
    }

    fn load_verifier(&self, missing: Missing) -> Result<Option<Verifier>, String> {
        if self.jwt_keys.is_empty() {
            return Ok(None);
        }
        let rules = Rules {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway: self.jwt_leeway_s,
            max_lifetime: self.jwt_max_lifetime_s,
        };
        Verifier::load(
            &self.jwt_keys,
            rules,
            self.claims.clone(),
            self.jwt_cache,
            missing,
        )
        .map(Some)
    }

    fn key_files(&self) -> Vec<PathBuf> {
        self.jwt_keys
            .iter()
            .map(|k| k.path().to_path_buf())
            .collect()
    }
}

/// A verified identity, with the subject type it applies to.
pub type SubjectIdentity = (Arc<identity::Identity>, Arc<str>);

/// The header of an AuthZEN call that carries the subject's token (`Authorization` is the
/// API key's).
pub const SUBJECT_TOKEN: &str = "warden-subject-token";

/// The verified identity an AuthZEN call carries, when `authzen_subject_token` is on and the
/// call sends `Warden-Subject-Token`; an invalid token is an error (401).
pub fn authzen_identity(
    state: &crate::server::AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<SubjectIdentity>, crate::server::ApiError> {
    if !state.settings.gateway.authzen_subject_token {
        return Ok(None);
    }
    subject_token_identity(state, headers)
}

/// The verified identity of `Warden-Subject-Token`, whenever the call sends one (minting a
/// capability needs it whatever `authzen_subject_token` says); an invalid token is an error.
pub fn subject_token_identity(
    state: &crate::server::AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<SubjectIdentity>, crate::server::ApiError> {
    let config = &state.settings.gateway;
    let Some(token) = headers.get(SUBJECT_TOKEN) else {
        return Ok(None);
    };
    let invalid = |reason: String| {
        tracing::info!(reason, "AuthZEN: invalid Warden-Subject-Token");
        crate::server::ApiError::InvalidSubjectToken(reason)
    };
    let verifier = state.gateway.verifier.load();
    let Some(verifier) = verifier.as_ref() else {
        return Err(invalid("no JWT keys are configured".to_string()));
    };
    let token = token
        .to_str()
        .map_err(|_| invalid("not text".to_string()))?;
    let identity = verifier
        .verify(token.trim())
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Some((identity, Arc::from(config.subject_type.as_str()))))
}

/// Lends a subject token's verified attributes to a decoded request: only when the request's
/// subject (`named`: its type and id) is the one the token proved (`proved`), and only when the
/// token proved attributes. The server and replay both decide this way.
pub fn lend_attributes(
    program: &crate::program::Program,
    named: (Option<&str>, Option<&str>),
    proved: (&str, &str),
    attributes: &serde_json::Map<String, serde_json::Value>,
    request: &mut crate::eval::Request,
) -> Result<(), crate::eval::RequestError> {
    let (subject_type, subject_id) = proved;
    if named == (Some(subject_type), Some(subject_id)) && !attributes.is_empty() {
        let verified = crate::eval::Verified::decode(program, subject_type, attributes)?;
        request.verified = Some(Arc::new(verified));
    }
    Ok(())
}

/// The gateway's live state: the verifier of the current key files.
#[derive(Debug, Default)]
pub struct GatewayState {
    pub verifier: ArcSwapOption<Verifier>,
}

/// Polls the key files and rebuilds the verifier when one changes. A key file that was
/// deleted takes its keys with it (as does a JWKS entry removed from a file that loads); a
/// change that does not load (unreadable, corrupt, a secret too short) leaves the previous
/// keys in force (logged), as a broken policy change does.
pub async fn watch_keys(state: Arc<crate::server::AppState>, interval: Duration) {
    let config = state.settings.gateway.clone();
    let files = config.key_files();
    if files.is_empty() {
        return;
    }
    let stamp = |files: &[PathBuf]| -> Vec<Option<(SystemTime, u64)>> {
        files
            .iter()
            .map(|f| {
                std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    };
    let mut last = stamp(&files);
    loop {
        tokio::time::sleep(interval).await;
        let now = stamp(&files);
        if now == last {
            continue;
        }
        last = now;
        match config.reloaded_verifier() {
            Ok(verifier) => {
                state.gateway.verifier.store(verifier.map(Arc::new));
                tracing::info!("JWT keys reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "JWT keys do not load; the previous keys stay in force");
            }
        }
    }
}
