//! The hash chain and the checkpoint signatures.
//!
//! Every line of an audit log is one JSON object that begins with its sequence number and the
//! hash of the record before it, and ends with its own hash:
//!
//! ```text
//! {"seq":7,"prev":"<64 hex>", …fields… ,"hash":"<64 hex>"}
//! ```
//!
//! `hash` is the SHA-256 of every byte of the line before `,"hash":"`, so editing any byte of a
//! record changes its hash, and the next record's `prev` no longer matches. The chain alone can
//! be rebuilt by whoever edits the file; checkpoints close that door. A checkpoint (format 2)
//! signs every byte of its own line before `,"sig":"`: its seq and the chain head (`prev`, which
//! commits to the whole history), the log's id, where its file starts, its time and its reason.
//! Nothing verify relies on is left unsigned, so a checkpoint cannot be relabelled, moved to
//! another file or another log. The signature is an HMAC-SHA256 under a secret only the server
//! and the verifiers hold, or an Ed25519 signature, which anyone with the public key can check
//! and only the holder of the private key can make.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// `prev` of the first record of a new chain.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The signature algorithm of checkpoints under a shared secret.
pub(crate) const HMAC_SHA256: &str = "hmac-sha256";

/// The signature algorithm of checkpoints under an Ed25519 key pair.
pub(crate) const ED25519: &str = "ed25519";

const HASH_FIELD: &str = ",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const SUFFIX_LEN: usize = HASH_FIELD.len() + 64 + 2;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Through a buffer: a digest's 64 digits go in with one copy, not 64 pushes.
    let mut buffer = [0u8; 128];
    for chunk in bytes.chunks(64) {
        let mut len = 0;
        for (byte, pair) in chunk.iter().zip(buffer.chunks_exact_mut(2)) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 15)];
            len += 2;
        }
        // Hex digits are ASCII.
        out.push_str(std::str::from_utf8(&buffer[..len]).unwrap_or_default());
    }
}

/// Writes one sealed line (without the newline) into `out`: the head (`seq`, `prev`), the
/// record's fields (`body`, a comma-separated list of JSON members without braces), and the
/// hash over both. `head` is the previous record's hash on the way in, this record's on the
/// way out.
pub(crate) fn seal_chained(out: &mut String, seq: u64, head: &mut String, body: &str) {
    let start = out.len();
    open_record(out, seq, head);
    out.push_str(body);
    close_record(out, start, head);
}

/// Writes `{"seq":<seq>,"prev":"<head>",`.
fn open_record(out: &mut String, seq: u64, head: &str) {
    out.push_str("{\"seq\":");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = seq;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Decimal digits are ASCII.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
    out.push_str(",\"prev\":\"");
    out.push_str(head);
    out.push_str("\",");
}

/// Hashes the record that begins at `start` in `out`, appends its hash and closes it; `head`
/// becomes its hash.
fn close_record(out: &mut String, start: usize, head: &mut String) {
    let digest = Sha256::digest(&out.as_bytes()[start..]);
    head.clear();
    push_hex(head, &digest);
    out.push_str(HASH_FIELD);
    out.push_str(head);
    out.push_str("\"}");
}

/// The checkpoint format this version writes and verifies.
pub(crate) const FORMAT: u64 = 2;

/// What a checkpoint says besides its seq and the chain head, all of it signed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checkpoint<'a> {
    /// The log's id (32 hex digits), drawn when its first record was written.
    pub log: &'a str,
    /// The seq of the first record of the file the checkpoint is in.
    pub file_seq: u64,
    /// The `prev` of that record: the hash of the previous file's last record (its rotation
    /// checkpoint), or the genesis.
    pub file_prev: &'a str,
    /// RFC 3339, UTC.
    pub time: &'a str,
    /// `count`, `interval`, `rotate` or `close`.
    pub reason: &'a str,
}

const SIG_FIELD: &str = ",\"sig\":\"";

/// Writes one sealed, signed checkpoint line (without the newline) at `seq` into `out`; `head`
/// is the chain head on the way in, the checkpoint's hash on the way out.
pub(crate) fn seal_checkpoint(
    out: &mut String,
    seq: u64,
    head: &mut String,
    checkpoint: &Checkpoint<'_>,
    key: &Key,
) {
    use std::fmt::Write;
    let start = out.len();
    open_record(out, seq, head);
    let _ = write!(
        out,
        "\"kind\":\"checkpoint\",\"format\":{FORMAT},\"log\":\"{}\",\"file_seq\":{},\"file_prev\":\"{}\",\"time\":\"{}\",\"reason\":\"{}\",\"alg\":\"{}\",\"key_id\":\"{}\"",
        checkpoint.log,
        checkpoint.file_seq,
        checkpoint.file_prev,
        checkpoint.time,
        checkpoint.reason,
        key.algorithm(),
        key.id,
    );
    let signature = key.sign(&out.as_bytes()[start..]);
    out.push_str(SIG_FIELD);
    out.push_str(&signature);
    out.push('"');
    close_record(out, start, head);
}

/// Splits a checkpoint's covered bytes (see [`split`]) into what its signature covers and the
/// signature; `None` when they do not end with `,"sig":"<hex>"`.
pub fn signed(covered: &str) -> Option<(&str, &str)> {
    let at = covered.rfind(SIG_FIELD)?;
    let signature = covered[at + SIG_FIELD.len()..].strip_suffix('"')?;
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((&covered[..at], signature))
}

/// A line split into what its hash covers and the hash it claims.
pub struct Sealed<'l> {
    /// Everything before `,"hash":"`.
    pub covered: &'l str,
    pub claimed: &'l str,
}

/// Splits a line at its hash; `None` when it does not end like a sealed record.
pub fn split(line: &str) -> Option<Sealed<'_>> {
    if line.len() < SUFFIX_LEN
        || !line.ends_with("\"}")
        || !line.is_char_boundary(line.len() - SUFFIX_LEN)
    {
        return None;
    }
    let cut = line.len() - SUFFIX_LEN;
    let (covered, rest) = line.split_at(cut);
    let claimed = rest.strip_prefix(HASH_FIELD)?.strip_suffix("\"}")?;
    if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Sealed { covered, claimed })
}

/// The hash a record's covered bytes should have.
pub fn hash_of(covered: &str) -> String {
    hex(&Sha256::digest(covered.as_bytes()))
}

/// A checkpoint key (from the configured key file): a shared secret (HMAC-SHA256), an Ed25519
/// private key (signs and verifies) or an Ed25519 public key (verifies only).
#[derive(Clone)]
pub struct Key {
    kind: KeyKind,
    /// The first 16 hex digits of the SHA-256 of the secret or of the public key: names the key
    /// in checkpoints without revealing it, so verify can say that a log was signed with
    /// another key. A private key and its public key have the same id.
    pub id: String,
}

#[derive(Clone)]
enum KeyKind {
    Hmac(Vec<u8>),
    Ed25519Private(Box<ed25519_dalek::SigningKey>),
    Ed25519Public(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} {})", self.algorithm(), self.id)
    }
}

/// The shortest secret accepted, in bytes.
pub(crate) const MIN_KEY_LEN: usize = 16;

const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----";
const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----";

/// Why a key file (the audit log's, a bundle's) cannot be read as a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "the key must be at least {MIN_KEY_LEN} bytes (e.g. `head -c 32 /dev/urandom | base64 > audit.key`)"
    )]
    Short,
    #[error("cannot read the key `{}`: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{}` is not an Ed25519 key in PEM ({reason}); make one with `openssl genpkey -algorithm ed25519`",
        path.display()
    )]
    NotEd25519 {
        path: std::path::PathBuf,
        reason: PemProblem,
    },
}

/// What is wrong with a PEM key.
#[derive(Debug, thiserror::Error)]
pub enum PemProblem {
    #[error("{0}")]
    Private(#[from] ed25519_dalek::pkcs8::Error),
    #[error("{0}")]
    Public(#[from] ed25519_dalek::pkcs8::spki::Error),
    #[error("only Ed25519 keys are taken in PEM")]
    OtherAlgorithm,
}

impl Key {
    /// A shared secret, for HMAC-SHA256 signatures.
    pub fn new(secret: &[u8]) -> Result<Key, KeyFileError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyFileError::Short);
        }
        let id = hex(&Sha256::digest(secret))[..16].to_string();
        Ok(Key {
            kind: KeyKind::Hmac(secret.to_vec()),
            id,
        })
    }

    /// Reads a key file: an Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm
    /// ed25519` writes it), an Ed25519 public key (SPKI PEM, `openssl pkey -pubout`), or else a
    /// shared secret: the file's bytes, without surrounding whitespace.
    pub fn from_file(path: &std::path::Path) -> Result<Key, KeyFileError> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
        let bytes = std::fs::read(path).map_err(|source| KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = std::str::from_utf8(bytes.trim_ascii()).unwrap_or("");
        let not_ed25519 = |reason: PemProblem| KeyFileError::NotEd25519 {
            path: path.to_path_buf(),
            reason,
        };
        if text.starts_with(PRIVATE_PEM) {
            let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                .map_err(|e| not_ed25519(e.into()))?;
            return Ok(Key {
                id: public_id(&signing.verifying_key()),
                kind: KeyKind::Ed25519Private(Box::new(signing)),
            });
        }
        if text.starts_with(PUBLIC_PEM) {
            let verifying = ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                .map_err(|e| not_ed25519(e.into()))?;
            return Ok(Key {
                id: public_id(&verifying),
                kind: KeyKind::Ed25519Public(verifying),
            });
        }
        if text.starts_with("-----BEGIN") {
            return Err(not_ed25519(PemProblem::OtherAlgorithm));
        }
        Key::new(bytes.trim_ascii())
    }

    /// The algorithm of the signatures this key makes or checks.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            KeyKind::Hmac(_) => HMAC_SHA256,
            KeyKind::Ed25519Private(_) | KeyKind::Ed25519Public(_) => ED25519,
        }
    }

    /// The Ed25519 private key, for other signatures made with the same key files (policy
    /// bundles sign with their own domain tag).
    pub(crate) fn ed25519_signing(&self) -> Option<&ed25519_dalek::SigningKey> {
        match &self.kind {
            KeyKind::Ed25519Private(signing) => Some(signing),
            _ => None,
        }
    }

    /// The Ed25519 public key, of a private or a public key file.
    pub(crate) fn ed25519_verifying(&self) -> Option<ed25519_dalek::VerifyingKey> {
        match &self.kind {
            KeyKind::Ed25519Private(signing) => Some(signing.verifying_key()),
            KeyKind::Ed25519Public(verifying) => Some(*verifying),
            KeyKind::Hmac(_) => None,
        }
    }

    /// Whether this key can sign: every key but a public one.
    pub(crate) fn can_sign(&self) -> bool {
        !matches!(self.kind, KeyKind::Ed25519Public(_))
    }

    /// What a checkpoint's signature is over: a domain tag, then every byte of its line
    /// before `,"sig":"`.
    fn message(signed: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(SIGNED_TAG.len() + signed.len());
        message.extend_from_slice(SIGNED_TAG);
        message.extend_from_slice(signed);
        message
    }

    /// HMAC accepts keys of every length, so this is `None` only in theory.
    fn mac(secret: &[u8], signed: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).ok()?;
        mac.update(SIGNED_TAG);
        mac.update(signed);
        Some(mac)
    }

    /// The signature of a checkpoint whose signed bytes are `signed` (empty for a public key,
    /// which cannot sign: the configuration refuses one as the server's key).
    pub fn sign(&self, signed: &[u8]) -> String {
        use ed25519_dalek::Signer;
        match &self.kind {
            KeyKind::Hmac(secret) => Key::mac(secret, signed)
                .map(|mac| hex(&mac.finalize().into_bytes()))
                .unwrap_or_default(),
            KeyKind::Ed25519Private(signing) => {
                hex(&signing.sign(&Key::message(signed)).to_bytes())
            }
            KeyKind::Ed25519Public(_) => String::new(),
        }
    }

    /// Checks a signature (an HMAC in constant time).
    pub fn verify(&self, signed: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        let verifying = match &self.kind {
            KeyKind::Hmac(secret) => {
                return Key::mac(secret, signed)
                    .is_some_and(|mac| mac.verify_slice(&bytes).is_ok());
            }
            KeyKind::Ed25519Private(signing) => signing.verifying_key(),
            KeyKind::Ed25519Public(verifying) => *verifying,
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else {
            return false;
        };
        verifying
            .verify_strict(&Key::message(signed), &signature)
            .is_ok()
    }
}

/// Separates checkpoint signatures from anything else a key might sign.
const SIGNED_TAG: &[u8] = b"warden-audit-checkpoint-v2\n";

fn public_id(verifying: &ed25519_dalek::VerifyingKey) -> String {
    hex(&Sha256::digest(verifying.as_bytes()))[..16].to_string()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line sealed after `prev`; its hash.
    fn seal(out: &mut String, seq: u64, prev: &str, body: &str) -> String {
        let mut head = prev.to_string();
        seal_chained(out, seq, &mut head, body);
        head
    }

    #[test]
    fn sealed_lines_split_back() {
        let mut line = String::new();
        let hash = seal(&mut line, 3, GENESIS, "\"kind\":\"x\"");
        let sealed = split(&line).unwrap();
        assert_eq!(sealed.claimed, hash);
        assert_eq!(hash_of(sealed.covered), hash);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["seq"], 3);
        assert!(split("{\"seq\":1}").is_none());
    }

    /// The line format and the hash are pinned: logs written by every version must keep
    /// verifying (the expected digests are Python's `hashlib.sha256` of the covered text).
    #[test]
    fn lines_and_hashes_are_as_specified() {
        for (seq, expected) in [
            (
                0,
                "89d9a6826b420ea9ddda671fb27bb31adcebd68686da5890753418eacb88d1ed",
            ),
            (
                10,
                "1c6d87f2e7525741afb13602b97c68794f52258c9d6ea91c3f747e1d3a9e52ed",
            ),
            (
                u64::MAX,
                "93dd4aeeb96cfc308d55bc14ca7211777b97ade99f51db5a570b5dcbf94433e3",
            ),
        ] {
            let mut line = String::new();
            let hash = seal(&mut line, seq, GENESIS, "\"kind\":\"x\"");
            assert_eq!(hash, expected);
            assert_eq!(
                line,
                format!(
                    "{{\"seq\":{seq},\"prev\":\"{GENESIS}\",\"kind\":\"x\",\"hash\":\"{expected}\"}}"
                )
            );
        }
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[0xab; 100]), "ab".repeat(100));
    }

    #[test]
    fn signatures_check() {
        let key = Key::new(b"0123456789abcdef").unwrap();
        let other = Key::new(b"0123456789abcdeX").unwrap();
        let sig = key.sign(b"signed bytes");
        assert!(key.verify(b"signed bytes", &sig));
        assert!(!key.verify(b"signed byteS", &sig));
        assert!(!other.verify(b"signed bytes", &sig));
        assert!(Key::new(b"short").is_err());
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    /// An Ed25519 private key (as OpenSSL writes it) signs; its public key, and only it,
    /// verifies; both have the same id, and the public key cannot sign.
    #[test]
    fn ed25519_keys_sign_and_their_public_keys_verify() {
        let private = Key::from_file(&fixture("audit/ed25519-private.pem")).unwrap();
        let public = Key::from_file(&fixture("audit/ed25519-public.pem")).unwrap();
        let other = Key::from_file(&fixture("audit/other-ed25519-public.pem")).unwrap();
        assert_eq!(private.algorithm(), ED25519);
        assert_eq!(public.id, private.id);
        assert_ne!(other.id, private.id);
        assert!(private.can_sign() && !public.can_sign());
        let sig = private.sign(b"signed bytes");
        assert_eq!(sig.len(), 128);
        assert!(public.verify(b"signed bytes", &sig));
        assert!(private.verify(b"signed bytes", &sig));
        assert!(!public.verify(b"signed byteS", &sig));
        assert!(!other.verify(b"signed bytes", &sig));
        assert!(!public.verify(b"signed bytes", "00"));
        let hmac = Key::new(b"0123456789abcdef").unwrap();
        assert!(!hmac.verify(b"signed bytes", &sig));
    }

    /// A PEM that is not an Ed25519 key is refused with the command that makes one; anything
    /// else is a shared secret.
    #[test]
    fn key_files_are_told_apart() {
        let error = Key::from_file(&fixture("gateway/rsa.pem")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("openssl genpkey -algorithm ed25519"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "  a secret of enough bytes\n").unwrap();
        let key = Key::from_file(&secret).unwrap();
        assert_eq!(key.algorithm(), HMAC_SHA256);
        assert_eq!(key.id, Key::new(b"a secret of enough bytes").unwrap().id);
    }

    /// A checkpoint line and its HMAC signature are pinned: checkpoints written by every
    /// version of format 2 keep verifying. Python:
    /// `hmac.new(key, b"warden-audit-checkpoint-v2\n" + signed, hashlib.sha256).hexdigest()`,
    /// `signed` being the line up to `,"sig":"`.
    #[test]
    fn checkpoints_are_as_specified() {
        let key = Key::new(b"0123456789abcdef").unwrap();
        let log = "ab".repeat(16);
        let mut line = String::new();
        let mut head = GENESIS.to_string();
        let checkpoint = Checkpoint {
            log: &log,
            file_seq: 0,
            file_prev: GENESIS,
            time: "2026-12-07T01:00:00Z",
            reason: "close",
        };
        seal_checkpoint(&mut line, 9, &mut head, &checkpoint, &key);
        let sig = "0744024ec098fefa7397bc11e05a5cb4e1e8ce722955e1c7a84e1b9254d5aa80";
        let hash = "f37422a33d9d24787f7751abaef0a5758ffeb5a73c876316623f2cd16bc3662d";
        assert_eq!(
            line,
            format!(
                "{{\"seq\":9,\"prev\":\"{GENESIS}\",\"kind\":\"checkpoint\",\"format\":2,\"log\":\"{log}\",\"file_seq\":0,\"file_prev\":\"{GENESIS}\",\"time\":\"2026-12-07T01:00:00Z\",\"reason\":\"close\",\"alg\":\"hmac-sha256\",\"key_id\":\"9f9f5111f7b27a78\",\"sig\":\"{sig}\",\"hash\":\"{hash}\"}}"
            )
        );
        assert_eq!(head, hash);
        let sealed = split(&line).unwrap();
        let (signed_bytes, signature) = signed(sealed.covered).unwrap();
        assert_eq!(signature, sig);
        assert!(key.verify(signed_bytes.as_bytes(), signature));
        assert!(signed("{\"seq\":1,\"sig\":\"zz\"").is_none());
    }
}
