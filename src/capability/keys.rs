//! The keys that root token chains: ids, secrets from files, rotation with a grace period.
//!
//! Keys come from configuration (`--capability-key ID:PATH[:retired=RFC3339]`), never from the
//! policy directory. The first key that is not retired mints; every key verifies the tokens
//! minted under it, a retired one until its retirement time plus the keyring's grace.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};

/// The shortest secret a key file may hold, in bytes.
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// Why a key or keyring could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`{0}` is not a key id: write 1 to 64 of `A-Z a-z 0-9 _ . -`")]
    BadId(String),
    #[error("`{0}` is not a key: write `ID:PATH` or `ID:PATH:retired=2026-01-01T00:00:00Z`")]
    BadSpec(String),
    #[error(
        "`{text}` in the key `{spec}` is not a time: write RFC 3339, like `2026-01-01T00:00:00Z`"
    )]
    BadRetired { spec: String, text: String },
    #[error("cannot read the key file `{path}` of key `{id}`: {source}")]
    Read {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the key file `{path}` of key `{id}` holds {len} bytes; a key is at least {MIN_SECRET_LEN} (make one with `openssl rand -hex 32 > {path}`)"
    )]
    TooShort {
        id: String,
        path: PathBuf,
        len: usize,
    },
    #[error("the secret of key `{id}` is {len} bytes; a key is at least {MIN_SECRET_LEN}")]
    SecretTooShort { id: String, len: usize },
    #[error("the key id `{0}` is given twice")]
    Duplicate(String),
    #[error("the grace period {0} is negative")]
    NegativeGrace(SignedDuration),
}

/// A key's secret bytes. Its `Debug` shows only the length, and nothing displays it.
#[derive(Clone, PartialEq, Eq)]
struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// Whether `text` is a key id: 1 to 64 ASCII letters, digits, `_`, `.` or `-` (a token's
/// header names its key by it).
pub(crate) fn is_key_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Why no key of a keyring mints or verifies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyUnusable {
    #[error("unknown key id `{0}`")]
    UnknownKey(String),
    #[error("key `{key}` retired at {retired} and its grace ended at {grace_end}")]
    KeyRetired {
        key: String,
        retired: Timestamp,
        grace_end: Timestamp,
    },
    #[error("no key to mint with: every key of the keyring is retired")]
    NoSigningKey,
}

/// One key: an id, a secret, and when it was retired, if it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    id: String,
    secret: Secret,
    retired: Option<Timestamp>,
}

impl Key {
    /// A key from its parts: the id must be a key id and the secret at least 32 bytes.
    pub fn new(
        id: impl Into<String>,
        secret: Vec<u8>,
        retired: Option<Timestamp>,
    ) -> Result<Key, KeyError> {
        let id = id.into();
        if !is_key_id(&id) {
            return Err(KeyError::BadId(id));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort {
                id,
                len: secret.len(),
            });
        }
        Ok(Key {
            id,
            secret: Secret(secret),
            retired,
        })
    }

    /// Reads a key's secret from a file: its contents without surrounding whitespace.
    pub(crate) fn from_spec(spec: &KeySpec) -> Result<Key, KeyError> {
        let bytes = std::fs::read(&spec.path).map_err(|e| KeyError::Read {
            id: spec.id.clone(),
            path: spec.path.clone(),
            source: e,
        })?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                id: spec.id.clone(),
                path: spec.path.clone(),
                len: secret.len(),
            });
        }
        Key::new(spec.id.clone(), secret.to_vec(), spec.retired)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the key was retired: it mints no more, and verifies until this plus the grace.
    pub fn retired(&self) -> Option<Timestamp> {
        self.retired
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret.0
    }
}

/// A key as configuration names it: `ID:PATH` or `ID:PATH:retired=RFC3339`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub id: String,
    pub path: PathBuf,
    pub retired: Option<Timestamp>,
}

impl FromStr for KeySpec {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<KeySpec, KeyError> {
        let (id, rest) = text
            .split_once(':')
            .ok_or_else(|| KeyError::BadSpec(text.to_string()))?;
        if !is_key_id(id) {
            return Err(KeyError::BadId(id.to_string()));
        }
        let (path, retired) = match rest.rsplit_once(":retired=") {
            Some((path, at)) => {
                let at = at.parse::<Timestamp>().map_err(|_| KeyError::BadRetired {
                    spec: text.to_string(),
                    text: at.to_string(),
                })?;
                (path, Some(at))
            }
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(KeyError::BadSpec(text.to_string()));
        }
        Ok(KeySpec {
            id: id.to_string(),
            path: PathBuf::from(path),
            retired,
        })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, self.path.display())?;
        if let Some(at) = self.retired {
            write!(f, ":retired={at}")?;
        }
        Ok(())
    }
}

/// The keys a Warden mints and verifies with, in configuration order, and the grace period of
/// retired keys.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
    grace: SignedDuration,
}

impl Keyring {
    /// A keyring of these keys (ids distinct; the first not retired mints).
    pub fn new(keys: Vec<Key>, grace: SignedDuration) -> Result<Keyring, KeyError> {
        if grace.is_negative() {
            return Err(KeyError::NegativeGrace(grace));
        }
        for (i, key) in keys.iter().enumerate() {
            if keys.iter().take(i).any(|earlier| earlier.id == key.id) {
                return Err(KeyError::Duplicate(key.id.clone()));
            }
        }
        Ok(Keyring { keys, grace })
    }

    /// Reads every key file of `specs` (see [`Key::from_spec`]).
    pub fn load(specs: &[KeySpec], grace: SignedDuration) -> Result<Keyring, KeyError> {
        for (i, spec) in specs.iter().enumerate() {
            if specs.iter().take(i).any(|earlier| earlier.id == spec.id) {
                return Err(KeyError::Duplicate(spec.id.clone()));
            }
        }
        let keys = specs.iter().map(Key::from_spec).collect::<Result<_, _>>()?;
        Keyring::new(keys, grace)
    }

    /// Loads the key files of specs given as text (`ID:PATH[:retired=…]`).
    pub fn load_specs<S: AsRef<str>>(
        specs: &[S],
        grace: SignedDuration,
    ) -> Result<Keyring, KeyError> {
        let specs = specs
            .iter()
            .map(|spec| spec.as_ref().parse())
            .collect::<Result<Vec<KeySpec>, _>>()?;
        Keyring::load(&specs, grace)
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn grace(&self) -> SignedDuration {
        self.grace
    }

    /// The key that mints: the first not retired.
    pub fn signing_key(&self) -> Result<&Key, KeyUnusable> {
        self.keys
            .iter()
            .find(|key| key.retired.is_none())
            .ok_or(KeyUnusable::NoSigningKey)
    }

    /// The key that verifies tokens under `id` at `now`: known, and not past its grace.
    pub(crate) fn verifying_key(&self, id: &str, now: Timestamp) -> Result<&Key, KeyUnusable> {
        let key = self
            .keys
            .iter()
            .find(|key| key.id == id)
            .ok_or_else(|| KeyUnusable::UnknownKey(id.to_string()))?;
        if let Some(retired) = key.retired {
            let grace_end = retired.checked_add(self.grace).unwrap_or(Timestamp::MAX);
            if now >= grace_end {
                return Err(KeyUnusable::KeyRetired {
                    key: key.id.clone(),
                    retired,
                    grace_end,
                });
            }
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests;
