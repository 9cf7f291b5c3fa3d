//! Who is asking: a bearer JWT that Warden verifies itself, or (only where configured) a
//! header set by a trusted gateway.
//!
//! Keys are named in the configuration, each with the one algorithm it verifies
//! (`ES256:/etc/warden/ec.pem`, `HS256:/run/secrets/jwt`, `jwks:/etc/warden/jwks.json`, where
//! every JWK's `alg` is its own, or follows from its key type). A token is tried only against
//! keys of the algorithm its header names (and of its `kid`, when it names one), and verified
//! with that algorithm alone: `alg: none` cannot be expressed, and an HS256 token never meets
//! an RSA key. `exp` is required; `exp`/`nbf` allow a small leeway; `iss` and `aud`, when
//! configured, are required and compared (a token without them is refused, like one with the
//! wrong ones); a token may live at most the configured maximum lifetime.
//!
//! Verified tokens are cached (bounded, keyed by the token's SHA-256, until their `exp`), so a
//! client that sends the same ES256 token on every request pays for the signature once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value as JsonValue};
use sha2::{Digest, Sha256};

/// How claims become the subject (the `jwt_*` configuration keys).
#[derive(Clone, Debug)]
pub struct ClaimMapping {
    /// The claim that holds the subject's id.
    pub subject: String,
    /// The claim (a dotted path, e.g. `realm_access.roles`) that holds the roles: an array of
    /// strings, or one space-separated string.
    pub roles: String,
    /// `(claim, attribute)` pairs: other claims that become verified attributes.
    pub attributes: Vec<(String, String)>,
}

impl Default for ClaimMapping {
    fn default() -> ClaimMapping {
        ClaimMapping {
            subject: "sub".to_string(),
            roles: "roles".to_string(),
            attributes: Vec::new(),
        }
    }
}

/// A verified identity: the subject's id and its verified attributes (by attribute name).
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub attributes: Map<String, JsonValue>,
    /// The claims' `exp`, in seconds since the epoch (`None` for a header identity).
    pub expires: Option<u64>,
}

/// Why no identity was accepted: the forward-auth endpoint answers 401 and logs the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no bearer token")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("malformed token: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("no key verifies {alg:?} tokens{}", kid.as_ref().map(|k| format!(" with kid `{k}`")).unwrap_or_default())]
    NoKey { alg: Algorithm, kid: Option<String> },
    #[error("invalid token: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("invalid token: `exp` is not a whole number of seconds")]
    ExpNotSeconds,
    /// A bearer token came, and no key is configured to verify it.
    #[error("invalid token: no JWT keys are configured")]
    NoKeys,
    #[error("the token has no string claim `{0}` for the subject id")]
    NoSubject(String),
    #[error(
        "the token lives too long: {lifetime} s from {from} to `exp`, and at most {max} s are accepted (`jwt_max_lifetime_s`)"
    )]
    TooLong {
        lifetime: u64,
        from: &'static str,
        max: u64,
    },
}

impl IdentityError {
    /// The OAuth 2.0 bearer `error` code for `WWW-Authenticate` (RFC 6750), if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            IdentityError::Missing => None,
            IdentityError::NotBearer => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }
}

/// One verification key, pinned to one algorithm.
struct Key {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A key source as configured: `ALG:PATH` (a PEM file, or a secret file for HS256) or
/// `jwks:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Pem(Algorithm, PathBuf),
    Secret(Algorithm, PathBuf),
    Jwks(PathBuf),
}

impl KeySource {
    /// The source as configuration writes it: `ES256:ec.pem`, `jwks:keys.json`.
    pub(crate) fn to_config(&self) -> String {
        match self {
            KeySource::Pem(algorithm, path) | KeySource::Secret(algorithm, path) => {
                format!("{algorithm:?}:{}", path.display())
            }
            KeySource::Jwks(path) => format!("jwks:{}", path.display()),
        }
    }

    pub fn parse(text: &str) -> Result<KeySource, JwtKeyError> {
        let Some((kind, path)) = text.split_once(':') else {
            return Err(JwtKeyError::Spec(text.to_string()));
        };
        let path = PathBuf::from(path);
        if kind.eq_ignore_ascii_case("jwks") {
            return Ok(KeySource::Jwks(path));
        }
        let alg: Algorithm = kind
            .parse()
            .map_err(|_| JwtKeyError::Algorithm(kind.to_string()))?;
        Ok(match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeySource::Secret(alg, path),
            _ => KeySource::Pem(alg, path),
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            KeySource::Pem(_, p) | KeySource::Secret(_, p) | KeySource::Jwks(p) => p,
        }
    }
}

/// Why the keys that verify JWTs cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error(
        "`{0}`: write `ALG:PATH` (ALG one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA) or `jwks:PATH`"
    )]
    Spec(String),
    #[error("`{0}` is not a JWT algorithm Warden verifies")]
    Algorithm(String),
    #[error("cannot read key file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file `{}`: {problem}", path.display())]
    Invalid { path: PathBuf, problem: KeyProblem },
}

/// What is wrong with a key file's contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("an HMAC secret must be at least 32 bytes")]
    ShortSecret,
    #[error("{0}")]
    Key(#[from] jsonwebtoken::errors::Error),
    #[error("{0}")]
    Jwks(#[from] serde_json::Error),
    #[error("a JWK with `alg` {0:?} cannot verify signatures")]
    JwkAlgorithm(jsonwebtoken::jwk::KeyAlgorithm),
    #[error("an EC JWK on an unsupported curve")]
    JwkCurve,
}

/// The keys and rules a token is verified against, with the cache of tokens verified.
#[derive(Debug)]
pub struct JwtVerifier {
    keys: Vec<Key>,
    rules: Rules,
    mapping: ClaimMapping,
    cache: TokenCache,
}

/// What a token must satisfy besides its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The required `iss`.
    pub issuer: Option<String>,
    /// The required `aud` (one of the token's audiences).
    pub audience: Option<String>,
    /// Leeway for `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// The longest a token may live, in seconds: `exp - iat`, and `exp - now`.
    pub max_lifetime: u64,
}

/// What reloading does with a key file that no longer exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// An error (at start-up: a key the configuration names must be there).
    Fail,
    /// The key was removed on purpose: verify without it.
    Drop,
}

impl JwtVerifier {
    /// Reads every key file. Any unreadable or invalid key is an error naming the file, except
    /// a file that does not exist under [`Missing::Drop`], whose keys are left out.
    pub fn load(
        sources: &[KeySource],
        rules: Rules,
        mapping: ClaimMapping,
        cache_capacity: usize,
        missing: Missing,
    ) -> Result<JwtVerifier, JwtKeyError> {
        let mut keys = Vec::new();
        for source in sources {
            let path = source.path();
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if missing == Missing::Drop && e.kind() == std::io::ErrorKind::NotFound => {
                    continue;
                }
                Err(source) => {
                    return Err(JwtKeyError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            let kid = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string);
            let bad = |problem: KeyProblem| JwtKeyError::Invalid {
                path: path.to_path_buf(),
                problem,
            };
            match source {
                KeySource::Secret(alg, _) => {
                    let secret = trim_secret(&bytes);
                    if secret.len() < 32 {
                        return Err(bad(KeyProblem::ShortSecret));
                    }
                    keys.push(Key {
                        alg: *alg,
                        kid,
                        key: DecodingKey::from_secret(secret),
                    });
                }
                KeySource::Pem(alg, _) => {
                    let key = match alg {
                        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&bytes),
                        Algorithm::EdDSA => DecodingKey::from_ed_pem(&bytes),
                        _ => DecodingKey::from_rsa_pem(&bytes),
                    }
                    .map_err(|e| bad(e.into()))?;
                    keys.push(Key {
                        alg: *alg,
                        kid,
                        key,
                    });
                }
                KeySource::Jwks(_) => {
                    let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| bad(e.into()))?;
                    for jwk in &set.keys {
                        let alg = jwk_algorithm(jwk).map_err(bad)?;
                        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.into()))?;
                        keys.push(Key {
                            alg,
                            kid: jwk.common.key_id.clone(),
                            key,
                        });
                    }
                }
            }
        }
        Ok(JwtVerifier {
            keys,
            rules,
            mapping,
            cache: TokenCache::new(cache_capacity),
        })
    }

    /// Verifies the token of an `Authorization` header value.
    pub(crate) fn verify_header(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Arc<Identity>, IdentityError> {
        let Some(value) = authorization else {
            return Err(IdentityError::Missing);
        };
        let text = std::str::from_utf8(value).map_err(|_| IdentityError::NotBearer)?;
        let (scheme, token) = text
            .trim()
            .split_once(' ')
            .ok_or(IdentityError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(IdentityError::NotBearer);
        }
        self.verify(token.trim())
    }

    /// Verifies a compact JWS token.
    pub fn verify(&self, token: &str) -> Result<Arc<Identity>, IdentityError> {
        let now = now_seconds();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cache.get(&digest, now, self.rules.leeway) {
            return Ok(identity);
        }
        let header = jsonwebtoken::decode_header(token).map_err(IdentityError::Malformed)?;
        let candidates = self.keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        });
        let mut last = None;
        for key in candidates {
            let validation = self.validation(key.alg);
            match jsonwebtoken::decode::<Map<String, JsonValue>>(token, &key.key, &validation) {
                Ok(data) => {
                    self.lifetime(&data.claims, now)?;
                    let identity = Arc::new(self.identity(data.claims)?);
                    if let Some(expires) = identity.expires {
                        self.cache.insert(digest, identity.clone(), expires);
                    }
                    return Ok(identity);
                }
                Err(error) => last = Some(error),
            }
        }
        match last {
            Some(error) => Err(IdentityError::Invalid(error)),
            None => Err(IdentityError::NoKey {
                alg: header.alg,
                kid: header.kid,
            }),
        }
    }

    /// The checks of one algorithm. Setting the required claims replaces the library's
    /// defaults, so `iss` and `aud` are named there when configured: otherwise they would be
    /// compared only when present, and a token without them would pass.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.rules.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.rules.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Refuses a token whose `exp` lies further than the maximum lifetime after its `iat`, or
    /// after now: an `exp` in the far future would make a stolen token good for ever.
    fn lifetime(&self, claims: &Map<String, JsonValue>, now: u64) -> Result<(), IdentityError> {
        let max = self.rules.max_lifetime;
        let Some(exp) = claims.get("exp").and_then(JsonValue::as_u64) else {
            return Err(IdentityError::ExpNotSeconds);
        };
        let issued = claims.get("iat").and_then(JsonValue::as_u64);
        if let Some(iat) = issued
            && exp.saturating_sub(iat) > max
        {
            return Err(IdentityError::TooLong {
                lifetime: exp.saturating_sub(iat),
                from: "`iat`",
                max,
            });
        }
        let remaining = exp.saturating_sub(now);
        if remaining > max.saturating_add(self.rules.leeway) {
            return Err(IdentityError::TooLong {
                lifetime: remaining,
                from: "now",
                max,
            });
        }
        Ok(())
    }

    fn identity(&self, claims: Map<String, JsonValue>) -> Result<Identity, IdentityError> {
        let subject = match claims.get(&self.mapping.subject) {
            Some(JsonValue::String(id)) if !id.is_empty() => id.clone(),
            _ => return Err(IdentityError::NoSubject(self.mapping.subject.clone())),
        };
        let mut attributes = Map::new();
        for (claim, attribute) in &self.mapping.attributes {
            if let Some(value) = claim_at(&claims, claim) {
                attributes.insert(attribute.clone(), value.clone());
            }
        }
        match claim_at(&claims, &self.mapping.roles) {
            Some(JsonValue::Array(roles)) => {
                attributes.insert("roles".to_string(), JsonValue::Array(roles.clone()));
            }
            Some(JsonValue::String(roles)) => {
                let roles = roles
                    .split_whitespace()
                    .map(|r| JsonValue::String(r.to_string()))
                    .collect();
                attributes.insert("roles".to_string(), JsonValue::Array(roles));
            }
            _ => {}
        }
        Ok(Identity {
            subject,
            attributes,
            expires: claims.get("exp").and_then(JsonValue::as_u64),
        })
    }
}

/// A claim by dotted path (`realm_access.roles`); a claim whose name has a dot is found too.
fn claim_at<'c>(claims: &'c Map<String, JsonValue>, path: &str) -> Option<&'c JsonValue> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// The algorithm a JWK verifies: its `alg`, else the one its key type implies.
fn jwk_algorithm(jwk: &Jwk) -> Result<Algorithm, KeyProblem> {
    if let Some(alg) = jwk.common.key_algorithm {
        return alg
            .to_string()
            .parse()
            .map_err(|_| KeyProblem::JwkAlgorithm(alg));
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Ok(Algorithm::ES256),
            EllipticCurve::P384 => Ok(Algorithm::ES384),
            _ => Err(KeyProblem::JwkCurve),
        },
        AlgorithmParameters::OctetKeyPair(_) => Ok(Algorithm::EdDSA),
        AlgorithmParameters::OctetKey(_) => Ok(Algorithm::HS256),
    }
}

fn trim_secret(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A verified identity and its `exp`.
type CacheEntry = (Arc<Identity>, u64);

/// Verified tokens by SHA-256, until their `exp` (plus leeway). When full, expired entries are
/// dropped, and if none were, the whole cache is: simple, bounded, and never stale.
#[derive(Debug)]
struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], CacheEntry>>,
}

impl TokenCache {
    fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, digest: &[u8; 32], now: u64, leeway: u64) -> Option<Arc<Identity>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (identity, expires) = entries.get(digest)?;
        (now <= expires.saturating_add(leeway)).then(|| identity.clone())
    }

    fn insert(&self, digest: [u8; 32], identity: Arc<Identity>, expires: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            let now = now_seconds();
            entries.retain(|_, (_, exp)| *exp >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (identity, expires));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_name_their_algorithm() {
        assert_eq!(
            KeySource::parse("ES256:/k/ec.pem").ok(),
            Some(KeySource::Pem(Algorithm::ES256, "/k/ec.pem".into()))
        );
        assert_eq!(
            KeySource::parse("HS256:/k/s").ok(),
            Some(KeySource::Secret(Algorithm::HS256, "/k/s".into()))
        );
        assert_eq!(
            KeySource::parse("jwks:/k/j.json").ok(),
            Some(KeySource::Jwks("/k/j.json".into()))
        );
        assert!(KeySource::parse("none:/k").is_err());
        assert!(KeySource::parse("/k/ec.pem").is_err());
    }

    #[test]
    fn claims_map_to_subject_roles_and_attributes() {
        let verifier = JwtVerifier {
            keys: Vec::new(),
            rules: Rules {
                issuer: None,
                audience: None,
                leeway: 0,
                max_lifetime: 3600,
            },
            mapping: ClaimMapping {
                subject: "uid".into(),
                roles: "realm_access.roles".into(),
                attributes: vec![("mail".into(), "email".into())],
            },
            cache: TokenCache::new(0),
        };
        let claims = serde_json::json!({
            "uid": "alice", "exp": 10, "mail": "a@x", "other": 1,
            "realm_access": {"roles": ["viewer", "editor"]}
        });
        let JsonValue::Object(claims) = claims else {
            return;
        };
        let identity = verifier.identity(claims.clone());
        assert!(identity.is_ok(), "{identity:?}");
        let Ok(identity) = identity else { return };
        assert_eq!(identity.subject, "alice");
        assert_eq!(identity.expires, Some(10));
        assert_eq!(
            identity.attributes.get("email"),
            Some(&serde_json::json!("a@x"))
        );
        assert_eq!(
            identity.attributes.get("roles"),
            Some(&serde_json::json!(["viewer", "editor"]))
        );
        assert!(!identity.attributes.contains_key("other"));
        let mut no_subject = claims;
        no_subject.remove("uid");
        assert_eq!(
            verifier.identity(no_subject),
            Err(IdentityError::NoSubject("uid".into()))
        );
    }

    #[test]
    fn the_cache_is_bounded_and_honours_exp() {
        let cache = TokenCache::new(2);
        let identity = Arc::new(Identity {
            subject: "a".into(),
            attributes: Map::new(),
            expires: None,
        });
        let now = now_seconds();
        cache.insert([1; 32], identity.clone(), now + 100);
        assert!(cache.get(&[1; 32], now, 0).is_some());
        // Past `exp` (and the leeway) an entry is not served.
        assert!(cache.get(&[1; 32], now + 101, 0).is_none());
        assert!(cache.get(&[1; 32], now + 101, 5).is_some());
        cache.insert([2; 32], identity.clone(), now + 100);
        cache.insert([3; 32], identity.clone(), now + 100);
        let size = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(size <= 2, "{size}");
        assert!(TokenCache::new(0).get(&[1; 32], now, 0).is_none());
    }
}
