//! Gateways: verified identity from bearer JWTs ([`identity`]), its configuration and live
//! keys, and the AuthZEN request a gateway's call makes under the program's routes
//! ([`route`]). The forward-auth endpoints that serve them are in
//! [`crate::server::forward`]; the route table itself is the checked program's
//! ([`crate::check::route_table`]).

pub mod identity;

use std::path::PathBuf;
use std::sync::Arc;

use std::net::IpAddr;

use arc_swap::ArcSwapOption;
use serde_json::{Map, Value as JsonValue, json};

use crate::check::route_table::{Case, Matched, RouteError};
use crate::program::Program;

use identity::{ClaimMapping, JwtKeyError, JwtVerifier, KeySource, Missing, Rules};

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
    pub fn verifier(&self) -> Result<Option<JwtVerifier>, JwtKeyError> {
        self.load_verifier(Missing::Fail)
    }

    /// Builds the verifier again after a key file changed: a file that was deleted is a key
    /// removed on purpose, and tokens it signed stop verifying.
    pub(crate) fn reloaded_verifier(&self) -> Result<Option<JwtVerifier>, JwtKeyError> {
        self.load_verifier(Missing::Drop)
    }

    fn load_verifier(&self, missing: Missing) -> Result<Option<JwtVerifier>, JwtKeyError> {
        if self.jwt_keys.is_empty() {
            return Ok(None);
        }
        let rules = Rules {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway: self.jwt_leeway_s,
            max_lifetime: self.jwt_max_lifetime_s,
        };
        JwtVerifier::load(
            &self.jwt_keys,
            rules,
            self.claims.clone(),
            self.jwt_cache,
            missing,
        )
        .map(Some)
    }

    pub fn key_files(&self) -> Vec<PathBuf> {
        self.jwt_keys
            .iter()
            .map(|k| k.path().to_path_buf())
            .collect()
    }
}

/// A verified identity, with the subject type it applies to.
pub(crate) type SubjectIdentity = (Arc<identity::Identity>, Arc<str>);

/// The header of an AuthZEN call that carries the subject's token (`Authorization` is the
/// API key's).
pub(crate) const SUBJECT_TOKEN: &str = "warden-subject-token";

/// The gateway's live state: the verifier of the current key files.
#[derive(Debug, Default)]
pub struct GatewayState {
    pub verifier: ArcSwapOption<JwtVerifier>,
}

/// The AuthZEN request a gateway's call makes under a program's routes.
pub struct Routed<'p> {
    pub matched: Matched<'p>,
    /// The normalised path.
    pub path: String,
    pub resource_id: String,
    /// `subject`, `action`, `resource` (with the route's properties) and `context` (`method`,
    /// `path`, `host`, `ip`).
    pub request: JsonValue,
}

/// Routes `method` and `target` (path and query) through `program`'s routes to the AuthZEN
/// request `subject` makes; `Err` says why none (a refused path, no route).
pub fn route<'p>(
    program: &'p Program,
    case: Case,
    subject: JsonValue,
    method: &str,
    target: &str,
    host: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Routed<'p>, RouteError> {
    let refused = |reason| RouteError::Refused {
        target: target.to_string(),
        reason,
    };
    let path = crate::check::route_table::normalize_in(case, target).map_err(refused)?;
    let Some(matched) = program
        .routes
        .lookup_in(case, method, &path)
        .map_err(refused)?
    else {
        return Err(RouteError::NoRoute {
            method: method.to_string(),
            path,
        });
    };
    let route = matched.route;
    let resource_id = matched
        .fill(&route.resource_id)
        .ok_or(RouteError::Uncaptured)?
        .to_string();
    let mut properties = Map::new();
    for (key, part) in &route.properties {
        if let Some(value) = matched.fill(part) {
            properties.insert(key.to_string(), JsonValue::String(value.to_string()));
        }
    }
    let mut context = Map::new();
    context.insert("method".into(), json!(method));
    context.insert("path".into(), json!(path));
    if let Some(host) = host {
        context.insert("host".into(), json!(host));
    }
    if let Some(ip) = ip {
        context.insert("ip".into(), json!(ip.to_string()));
    }
    let request = json!({
        "subject": subject,
        "action": {"name": route.action.as_ref()},
        "resource": {
            "type": route.resource_type.as_ref(),
            "id": resource_id,
            "properties": properties,
        },
        "context": context,
    });
    Ok(Routed {
        matched,
        path,
        resource_id,
        request,
    })
}
