//! Signed policy bundles: a policy directory packed as one `tar.gz` file with a manifest that
//! names every file with its SHA-256, the policy version the engine computes for it, a
//! revision and the time it was built; an Ed25519 signature over the manifest covers them all.
//!
//! A bundle is untrusted input until verified. [`read`] takes it apart in memory under size
//! caps (per member, in total, in members), refusing every member that is not a plain file at a
//! plain relative path; [`Archive::verify`] checks the signature against the configured keys
//! and every file against the manifest; only then does [`Archive::unpack`] write anything, into
//! a directory it creates.
//!
//! Layout: `manifest.json`, then `manifest.sig` when signed, then the files under `files/`.
//! Output is deterministic (sorted names, zero times and owners), so one directory always packs
//! to the same bytes.

pub mod fetch;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::chain::{hex, unhex};

/// The manifest's member name.
pub(crate) const MANIFEST: &str = "manifest.json";
/// The signature's member name.
pub(crate) const SIGNATURE: &str = "manifest.sig";
/// The folder of the policy files inside the archive.
const FILES: &str = "files/";
/// The manifest format this build writes and reads.
pub(crate) const FORMAT: u32 = 1;
/// Separates bundle signatures from anything else a key signs (audit checkpoints).
const SIGNED_TAG: &[u8] = b"warden-bundle-manifest-v1\n";
/// The signature algorithm named in `manifest.sig`.
const ED25519: &str = "ed25519";

/// Why a bundle was refused, or could not be made or written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BundleError {
    #[error("the bundle is not a gzip-compressed tar archive, or it is truncated: {0}")]
    #[diagnostic(
        code(warden::bundle::malformed),
        help("a partial download ends this way; fetch the file again")
    )]
    Malformed(#[source] std::io::Error),
    #[error(
        "the bundle is not a gzip-compressed tar archive, or it is truncated: the member `{name}` ends early"
    )]
    #[diagnostic(
        code(warden::bundle::malformed),
        help("a partial download ends this way; fetch the file again")
    )]
    MemberShort { name: String },
    #[error("the bundle unpacks to more than {limit} bytes")]
    #[diagnostic(code(warden::bundle::too_large))]
    TooLarge { limit: u64 },
    #[error("the bundle member `{name}` is {size} bytes, over the limit of {limit}")]
    #[diagnostic(code(warden::bundle::member_too_large))]
    MemberTooLarge { name: String, size: u64, limit: u64 },
    #[error("the bundle holds more than {limit} members")]
    #[diagnostic(code(warden::bundle::too_many))]
    TooManyMembers { limit: usize },
    #[error("the bundle member `{name}` is a {kind}; only plain files are accepted")]
    #[diagnostic(code(warden::bundle::member_kind))]
    NotAFile { name: String, kind: String },
    #[error("the bundle member name `{name}` is not a plain relative path")]
    #[diagnostic(
        code(warden::bundle::member_name),
        help(
            "names like `..`, `/etc/passwd` or `a//b` could write outside the bundle's directory"
        )
    )]
    BadName { name: String },
    #[error("the bundle member `{name}` is there twice")]
    #[diagnostic(code(warden::bundle::duplicate))]
    Duplicate { name: String },
    #[error("the bundle member `{name}` is not part of a bundle")]
    #[diagnostic(code(warden::bundle::stray))]
    Stray { name: String },
    #[error("the bundle has no `manifest.json`")]
    #[diagnostic(code(warden::bundle::no_manifest))]
    NoManifest,
    #[error("the bundle's manifest is not valid: {0}")]
    #[diagnostic(code(warden::bundle::manifest))]
    BadManifest(#[source] serde_json::Error),
    #[error("the bundle's manifest has format {0}; this Warden reads format {FORMAT}")]
    #[diagnostic(
        code(warden::bundle::format),
        help("upgrade Warden, or build the bundle with this version")
    )]
    Format(u32),
    #[error("the bundle is not signed")]
    #[diagnostic(
        code(warden::bundle::unsigned),
        help("sign it with `warden bundle sign --key ed25519.pem BUNDLE`")
    )]
    Unsigned,
    #[error("the bundle's signature is not readable: {0}")]
    #[diagnostic(code(warden::bundle::signature_format))]
    BadSignatureFormat(#[source] serde_json::Error),
    #[error(
        "the bundle's signature is not readable: the algorithm `{algorithm}` is not `{ED25519}`"
    )]
    #[diagnostic(code(warden::bundle::signature_format))]
    Algorithm { algorithm: String },
    #[error(
        "the bundle is signed with key `{key_id}`, which is not one of the configured public keys"
    )]
    #[diagnostic(
        code(warden::bundle::unknown_key),
        help(
            "add its public key to `bundle_public_keys`, or sign the bundle with a configured key"
        )
    )]
    UnknownKey { key_id: String },
    #[error("the bundle's signature does not verify with key `{key_id}`")]
    #[diagnostic(code(warden::bundle::bad_signature))]
    BadSignature { key_id: String },
    #[error("the bundle's file `{name}` does not match the manifest ({reason})")]
    #[diagnostic(code(warden::bundle::file_mismatch))]
    FileMismatch { name: String, reason: &'static str },
    #[error("the bundle's manifest names `{name}`, which the bundle does not hold")]
    #[diagnostic(code(warden::bundle::missing))]
    Missing { name: String },
    #[error("the revision `{0}` is not a revision: write 1 to 128 of `A-Z a-z 0-9 _ . : + -`")]
    #[diagnostic(code(warden::bundle::revision))]
    BadRevision(String),
    #[error("`{path}` is not an Ed25519 key: {reason}")]
    #[diagnostic(
        code(warden::bundle::key),
        help(
            "make one with `openssl genpkey -algorithm ed25519 -out bundle.pem` and its public key with `openssl pkey -in bundle.pem -pubout -out bundle.pub.pem`"
        )
    )]
    Key { path: PathBuf, reason: KeyProblem },
    #[error("cannot {action} `{path}`: {source}")]
    #[diagnostic(code(warden::bundle::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BundleError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
        let path = path.to_path_buf();
        move |source| BundleError::Io {
            action,
            path,
            source,
        }
    }
}

/// One file of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// What a bundle holds, and what it was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Chosen by whoever builds the bundle (a release tag, a commit); the version hash by
    /// default.
    pub revision: String,
    /// The policy version the engine computes for these files (`Warden-Policy-Version`).
    pub version: String,
    /// RFC 3339.
    pub created: String,
    /// Relative path (with `/`) to hash and size, sorted.
    pub files: BTreeMap<String, FileEntry>,
}

/// The detached signature kept in `manifest.sig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    /// The first 16 hex digits of the SHA-256 of the public key (as audit keys are named).
    pub key_id: String,
    /// Hex.
    pub signature: String,
}

/// How much a bundle may unpack to: caps that hold before anything is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest member, in bytes.
    pub member: u64,
    /// All members together, in bytes (the decompressed stream, headers included).
    pub total: u64,
    pub members: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            member: 32 * 1024 * 1024,
            total: 128 * 1024 * 1024,
            members: 20_000,
        }
    }
}

/// A bundle taken apart in memory: nothing is written or trusted yet.
#[derive(Clone, Debug)]
pub struct Archive {
    /// The manifest's bytes exactly as stored: what the signature covers.
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub signature: Option<Signature>,
    /// The files under `files/`, by relative path.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A public key bundles are verified with, and its id.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub id: String,
    key: ed25519_dalek::VerifyingKey,
}

/// A private key bundles are signed with.
pub struct SigningKey {
    pub id: String,
    key: ed25519_dalek::SigningKey,
}

/// Why a key file cannot sign or verify bundles.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("{0}")]
    File(#[from] crate::audit::KeyFileError),
    #[error("it is a shared secret, and bundles are signed with Ed25519")]
    SharedSecret,
    #[error("it is not an Ed25519 private key")]
    NotPrivate,
}

/// Reads an Ed25519 key file (PKCS#8 or SPKI PEM) with the audit log's key reader.
fn key_file(path: &Path) -> Result<crate::audit::Key, BundleError> {
    crate::audit::Key::from_file(path).map_err(|reason| BundleError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    })
}

impl PublicKey {
    /// A public key file, or the public half of a private key file.
    pub fn from_file(path: &Path) -> Result<PublicKey, BundleError> {
        let file = key_file(path)?;
        let key = file.ed25519_verifying().ok_or_else(|| BundleError::Key {
            path: path.to_path_buf(),
            reason: KeyProblem::SharedSecret,
        })?;
        Ok(PublicKey { id: file.id, key })
    }
}

impl SigningKey {
    pub fn from_file(path: &Path) -> Result<SigningKey, BundleError> {
        let file = key_file(path)?;
        let key = file
            .ed25519_signing()
            .cloned()
            .ok_or_else(|| BundleError::Key {
                path: path.to_path_buf(),
                reason: KeyProblem::NotPrivate,
            })?;
        Ok(SigningKey { id: file.id, key })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNED_TAG.len() + manifest.len());
    message.extend_from_slice(SIGNED_TAG);
    message.extend_from_slice(manifest);
    message
}

/// Whether `revision` is a revision: short, printable, safe in a metric label and a file name.
pub(crate) fn valid_revision(revision: &str) -> bool {
    !revision.is_empty()
        && revision.len() <= 128
        && revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:+-".contains(&b))
}

/// Whether `name` is a plain relative path: `/`-separated components, none empty, `.` or
/// `..`, no backslash or NUL (which some systems read as separators or ends).
pub(crate) fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 4096
        && !name.contains(['\\', '\0'])
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Manifest {
    /// The manifest of `files` (relative path and contents).
    pub fn new(
        files: &BTreeMap<String, Vec<u8>>,
        version: &str,
        revision: &str,
        created: jiff::Timestamp,
    ) -> Result<Manifest, BundleError> {
        if !valid_revision(revision) {
            return Err(BundleError::BadRevision(revision.to_string()));
        }
        Ok(Manifest {
            format: FORMAT,
            revision: revision.to_string(),
            version: version.to_string(),
            created: created.to_string(),
            files: files
                .iter()
                .map(|(name, bytes)| {
                    (
                        name.clone(),
                        FileEntry {
                            sha256: sha256_hex(bytes),
                            size: bytes.len() as u64,
                        },
                    )
                })
                .collect(),
        })
    }

    fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(BundleError::BadManifest)?;
        if manifest.format != FORMAT {
            return Err(BundleError::Format(manifest.format));
        }
        if !valid_revision(&manifest.revision) {
            return Err(BundleError::BadRevision(manifest.revision));
        }
        if let Some(name) = manifest.files.keys().find(|name| !safe_name(name)) {
            return Err(BundleError::BadName { name: name.clone() });
        }
        Ok(manifest)
    }
}

/// Reads the policy files of `dir` (policies, data, test data: every file the version covers).
pub fn collect(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, crate::source::Diagnostic> {
    let listing = crate::engine::list_directory(dir)?;
    let mut files = BTreeMap::new();
    for found in listing
        .policies
        .iter()
        .chain(&listing.data)
        .chain(&listing.test_data)
    {
        let bytes = std::fs::read(&found.path).map_err(|source| {
            crate::source::Diagnostic::new(BundleError::Io {
                action: "read",
                path: found.path.clone(),
                source,
            })
        })?;
        files.insert(found.relative.clone(), bytes);
    }
    Ok(files)
}

/// Writes an archive: the manifest, the signature when there is one, the files; sorted, with
/// zero times and owners, so equal inputs give equal bytes.
pub fn write(
    manifest_bytes: &[u8],
    signature: Option<&Signature>,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>, BundleError> {
    let encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.mode(tar::HeaderMode::Deterministic);
    let memory = Path::new("(memory)");
    let mut append = |name: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder
            .append_data(&mut header, name, bytes)
            .map_err(BundleError::io("write the bundle", memory))
    };
    append(MANIFEST, manifest_bytes)?;
    if let Some(signature) = signature {
        let bytes =
            serde_json::to_vec_pretty(signature).map_err(BundleError::BadSignatureFormat)?;
        append(SIGNATURE, &bytes)?;
    }
    for (name, bytes) in files {
        append(&format!("{FILES}{name}"), bytes)?;
    }
    let encoder = builder
        .into_inner()
        .map_err(BundleError::io("write the bundle", memory))?;
    encoder
        .finish()
        .map_err(BundleError::io("write the bundle", memory))
}

/// Packs `files` with a new manifest, unsigned.
pub fn pack(
    files: &BTreeMap<String, Vec<u8>>,
    version: &str,
    revision: &str,
    created: jiff::Timestamp,
) -> Result<Vec<u8>, BundleError> {
    let manifest = Manifest::new(files, version, revision, created)?;
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(BundleError::BadManifest)?;
    bytes.push(b'\n');
    write(&bytes, None, files)
}

/// A reader that fails once more than `left` bytes came through: a gzip bomb stops here.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(read as u64)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::FileTooLarge))?;
        Ok(read)
    }
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symbolic link".to_string(),
        tar::EntryType::Link => "hard link".to_string(),
        tar::EntryType::Char => "character device".to_string(),
        tar::EntryType::Block => "block device".to_string(),
        tar::EntryType::Directory => "directory".to_string(),
        tar::EntryType::Fifo => "named pipe".to_string(),
        other => format!("tar entry of type {}", other.as_byte()),
    }
}

/// Takes a bundle apart in memory, under `limits`, refusing every member that is not a plain
/// file at a plain relative path. Nothing is verified yet: see [`Archive::verify`].
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Archive, BundleError> {
    let capped = Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        // The tar headers and padding count too, at most three blocks a member.
        left: limits.total.saturating_add(3 * 512 * limits.members as u64),
    };
    let mut archive = tar::Archive::new(capped);
    let too_large = |error: std::io::Error| {
        if error.kind() == std::io::ErrorKind::FileTooLarge {
            BundleError::TooLarge {
                limit: limits.total,
            }
        } else {
            BundleError::Malformed(error)
        }
    };
    let mut manifest_bytes = None;
    let mut signature_bytes = None;
    let mut files = BTreeMap::new();
    let mut total: u64 = 0;
    let mut count = 0usize;
    for entry in archive.entries().map_err(too_large)? {
        let entry = entry.map_err(too_large)?;
        count += 1;
        if count > limits.members {
            return Err(BundleError::TooManyMembers {
                limit: limits.members,
            });
        }
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            return Err(BundleError::NotAFile {
                name,
                kind: kind_name(kind),
            });
        }
        if std::str::from_utf8(&raw).is_err() || !safe_name(&name) {
            return Err(BundleError::BadName { name });
        }
        let size = entry.header().size().map_err(too_large)?;
        if size > limits.member {
            return Err(BundleError::MemberTooLarge {
                name,
                size,
                limit: limits.member,
            });
        }
        total = total.saturating_add(size);
        if total > limits.total {
            return Err(BundleError::TooLarge {
                limit: limits.total,
            });
        }
        let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .take(limits.member)
            .read_to_end(&mut contents)
            .map_err(too_large)?;
        if contents.len() as u64 != size {
            return Err(BundleError::MemberShort { name });
        }
        let slot = match name.as_str() {
            MANIFEST => &mut manifest_bytes,
            SIGNATURE => &mut signature_bytes,
            _ => {
                let Some(relative) = name.strip_prefix(FILES) else {
                    return Err(BundleError::Stray { name });
                };
                if files.insert(relative.to_string(), contents).is_some() {
                    return Err(BundleError::Duplicate { name });
                }
                continue;
            }
        };
        if slot.replace(contents).is_some() {
            return Err(BundleError::Duplicate { name });
        }
    }
    let manifest_bytes = manifest_bytes.ok_or(BundleError::NoManifest)?;
    let manifest = Manifest::parse(&manifest_bytes)?;
    let signature = signature_bytes
        .map(|bytes| {
            serde_json::from_slice::<Signature>(&bytes).map_err(BundleError::BadSignatureFormat)
        })
        .transpose()?;
    Ok(Archive {
        manifest_bytes,
        manifest,
        signature,
        files,
    })
}

impl Archive {
    /// Checks the signature against `keys` (one must have made it) and every file against the
    /// manifest: the same names, sizes and hashes. Returns the id of the key that signed.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<String, BundleError> {
        let signature = self.signature.as_ref().ok_or(BundleError::Unsigned)?;
        if signature.algorithm != ED25519 {
            return Err(BundleError::Algorithm {
                algorithm: signature.algorithm.clone(),
            });
        }
        let key = keys
            .iter()
            .find(|key| key.id == signature.key_id)
            .ok_or_else(|| BundleError::UnknownKey {
                key_id: signature.key_id.clone(),
            })?;
        let bad = || BundleError::BadSignature {
            key_id: signature.key_id.clone(),
        };
        let bytes = unhex(&signature.signature).ok_or_else(bad)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| bad())?;
        key.key
            .verify_strict(
                &signed_message(&self.manifest_bytes),
                &ed25519_dalek::Signature::from_bytes(&bytes),
            )
            .map_err(|_| bad())?;
        self.check_files()?;
        Ok(key.id.clone())
    }

    /// Every file the manifest names is there with its size and hash, and no other.
    pub fn check_files(&self) -> Result<(), BundleError> {
        for (name, entry) in &self.manifest.files {
            let bytes = self
                .files
                .get(name)
                .ok_or_else(|| BundleError::Missing { name: name.clone() })?;
            if bytes.len() as u64 != entry.size {
                return Err(BundleError::FileMismatch {
                    name: name.clone(),
                    reason: "its size differs",
                });
            }
            if sha256_hex(bytes) != entry.sha256 {
                return Err(BundleError::FileMismatch {
                    name: name.clone(),
                    reason: "its SHA-256 differs",
                });
            }
        }
        if let Some(name) = self
            .files
            .keys()
            .find(|name| !self.manifest.files.contains_key(*name))
        {
            return Err(BundleError::FileMismatch {
                name: name.clone(),
                reason: "the manifest does not name it",
            });
        }
        Ok(())
    }

    /// The archive signed with `key` (any earlier signature replaced).
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, BundleError> {
        use ed25519_dalek::Signer;
        let signature = Signature {
            algorithm: ED25519.to_string(),
            key_id: key.id.clone(),
            signature: hex(&key
                .key
                .sign(&signed_message(&self.manifest_bytes))
                .to_bytes()),
        };
        write(&self.manifest_bytes, Some(&signature), &self.files)
    }

    /// Writes the files into `dir`, which must not exist yet (it is created, private to the
    /// owner). Call only after [`Archive::verify`].
    pub fn unpack(&self, dir: &Path) -> Result<(), BundleError> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(BundleError::io("create the directory", dir))?;
        builder.recursive(true);
        for (name, bytes) in &self.files {
            // `safe_name` held for every name: each joins below `dir`.
            if !safe_name(name) {
                return Err(BundleError::BadName { name: name.clone() });
            }
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                builder
                    .create(parent)
                    .map_err(BundleError::io("create the directory", parent))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(BundleError::io("create", &path))?;
            file.write_all(bytes)
                .map_err(BundleError::io("write", &path))?;
        }
        Ok(())
    }
}

/// Reads a bundle file from disk, at most `limits.total` compressed bytes.
pub(crate) fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let file = std::fs::File::open(path).map_err(BundleError::io("open", path))?;
    let mut bytes = Vec::new();
    file.take(limits.total.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(BundleError::io("read", path))?;
    if bytes.len() as u64 > limits.total {
        return Err(BundleError::TooLarge {
            limit: limits.total,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("a.warden".to_string(), b"policy".to_vec()),
            ("tests/t.json".to_string(), b"{}".to_vec()),
        ])
    }

    fn key() -> SigningKey {
        SigningKey {
            id: "k1".to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        }
    }

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey {
            id: key.id.clone(),
            key: key.key.verifying_key(),
        }
    }

    #[test]
    fn pack_is_deterministic_and_round_trips() {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let one = pack(&files(), "v1", "r1", at).unwrap();
        let two = pack(&files(), "v1", "r1", at).unwrap();
        assert_eq!(one, two);
        let archive = read(&one, &Limits::default()).unwrap();
        assert_eq!(archive.files, files());
        assert_eq!(archive.manifest.revision, "r1");
        archive.check_files().unwrap();
        assert!(matches!(
            archive.verify(&[public(&key())]),
            Err(BundleError::Unsigned)
        ));
    }

    #[test]
    fn signature_covers_the_manifest_and_the_files() {
        let key = key();
        let bytes = pack(&files(), "v1", "r1", jiff::Timestamp::UNIX_EPOCH).unwrap();
        let signed = read(&bytes, &Limits::default())
            .unwrap()
            .sign(&key)
            .unwrap();
        let archive = read(&signed, &Limits::default()).unwrap();
        assert_eq!(archive.verify(&[public(&key)]).unwrap(), "k1");

        let other = SigningKey {
            id: "k2".to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
        };
        assert!(matches!(
            archive.verify(&[public(&other)]),
            Err(BundleError::UnknownKey { .. })
        ));
        // The right id with another key's public half: the signature does not verify.
        let impostor = PublicKey {
            id: "k1".to_string(),
            key: other.key.verifying_key(),
        };
        assert!(matches!(
            archive.verify(&[impostor]),
            Err(BundleError::BadSignature { .. })
        ));

        let mut tampered = archive.clone();
        tampered
            .files
            .insert("a.warden".to_string(), b"evil".to_vec());
        assert!(matches!(
            tampered.verify(&[public(&key)]),
            Err(BundleError::FileMismatch { .. })
        ));
        let mut extra = archive.clone();
        extra.files.insert("b.warden".to_string(), Vec::new());
        assert!(matches!(
            extra.verify(&[public(&key)]),
            Err(BundleError::FileMismatch { .. })
        ));
        let mut edited = archive;
        edited.manifest_bytes.push(b' ');
        assert!(matches!(
            edited.verify(&[public(&key)]),
            Err(BundleError::BadSignature { .. })
        ));
    }

    #[test]
    fn names_must_be_plain_relative_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a/",
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        for good in ["a.warden", "tests/x.json", "deep/er/file..json"] {
            assert!(safe_name(good), "{good:?}");
        }
    }

    #[test]
    fn caps_hold_before_anything_is_kept() {
        let bytes = pack(&files(), "v1", "r1", jiff::Timestamp::UNIX_EPOCH).unwrap();
        let small = Limits {
            member: 4,
            ..Limits::default()
        };
        assert!(matches!(
            read(&bytes, &small),
            Err(BundleError::MemberTooLarge { .. })
        ));
        let few = Limits {
            members: 2,
            ..Limits::default()
        };
        assert!(matches!(
            read(&bytes, &few),
            Err(BundleError::TooManyMembers { .. })
        ));
        assert!(matches!(
            read(&bytes[..bytes.len() / 2], &Limits::default()),
            Err(BundleError::Malformed(_))
        ));
    }
}
