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
//! be rebuilt by whoever edits the file; checkpoints close that door: a checkpoint record
//! carries an HMAC-SHA256, under a key only the server holds, over its own sequence number and
//! the hash of the record before it (the chain head), which commits to the whole history.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// `prev` of the first record of a new chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The signature algorithm of checkpoints.
pub const ALGORITHM: &str = "hmac-sha256";

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
/// hash over both. Returns the hash.
pub fn seal(out: &mut String, seq: u64, prev: &str, body: &str) -> String {
    let mut head = prev.to_string();
    seal_chained(out, seq, &mut head, body);
    head
}

/// [`seal`] for a writer that keeps the chain head: `head` is the previous record's hash on
/// the way in, this record's on the way out.
pub fn seal_chained(out: &mut String, seq: u64, head: &mut String, body: &str) {
    let start = out.len();
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
    out.push_str(body);
    let digest = Sha256::digest(&out.as_bytes()[start..]);
    head.clear();
    push_hex(head, &digest);
    out.push_str(HASH_FIELD);
    out.push_str(head);
    out.push_str("\"}");
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

/// A checkpoint signing key (from the configured key file).
#[derive(Clone)]
pub struct Key {
    secret: Vec<u8>,
    /// The first 16 hex digits of the SHA-256 of the key: names the key in checkpoints without
    /// revealing it, so verify can say that a log was signed with another key.
    pub id: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

impl Key {
    pub fn new(secret: &[u8]) -> Result<Key, String> {
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "the audit key must be at least {MIN_KEY_LEN} bytes (e.g. `head -c 32 /dev/urandom | base64 > audit.key`)"
            ));
        }
        let id = hex(&Sha256::digest(secret))[..16].to_string();
        Ok(Key {
            secret: secret.to_vec(),
            id,
        })
    }

    /// Reads a key file: its bytes, without surrounding whitespace.
    pub fn from_file(path: &std::path::Path) -> Result<Key, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the audit key `{}`: {e}", path.display()))?;
        Key::new(bytes.trim_ascii())
    }

    /// HMAC accepts keys of every length, so this is `None` only in theory.
    fn mac(&self, seq: u64, prev: &str) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret).ok()?;
        mac.update(b"warden-audit-checkpoint\n");
        mac.update(seq.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(prev.as_bytes());
        Some(mac)
    }

    /// The signature of the checkpoint at `seq` whose chain head is `prev`.
    pub fn sign(&self, seq: u64, prev: &str) -> String {
        self.mac(seq, prev)
            .map(|mac| hex(&mac.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, seq: u64, prev: &str, signature: &str) -> bool {
        let (Some(bytes), Some(mac)) = (unhex(signature), self.mac(seq, prev)) else {
            return false;
        };
        mac.verify_slice(&bytes).is_ok()
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
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
        let sig = key.sign(9, GENESIS);
        assert!(key.verify(9, GENESIS, &sig));
        assert!(!key.verify(10, GENESIS, &sig));
        assert!(!other.verify(9, GENESIS, &sig));
        assert!(Key::new(b"short").is_err());
    }
}
