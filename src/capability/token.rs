//! The token format: a header line, caveat lines, and an HMAC-SHA-256 chain over them.
//!
//! ```text
//! L0 = warden-capability v1 key=<KEYID> id=<TOKENID>
//! L1..Ln = <kind> = <value>
//! tag_0 = HMAC-SHA-256(key = secret of KEYID, msg = L0)
//! tag_i = HMAC-SHA-256(key = tag_{i-1},       msg = L_i)
//! text  = "wcap1." + base64url-no-pad(L0 "\n" L1 … "\n" Ln) + "." + base64url-no-pad(tag_n)
//! ```
//!
//! Anyone holding a token can append a line and extend the chain (the old tag is the key of the
//! next step); nobody without the root secret can take a line away or change one, because that
//! needs an earlier tag, which HMAC does not reveal. Every caveat must hold for a request, so
//! an appended line can only narrow what a token grants. See `docs/capabilities.md`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use jiff::Timestamp;
use sha2::Sha256;

use super::keys::{KeyUnusable, Keyring, is_key_id};
use crate::data::value::EntityUid;
use crate::syntax::token::{escape, unescape};

type HmacSha256 = hmac::Hmac<Sha256>;

/// What every token's text begins with.
pub(crate) const PREFIX: &str = "wcap1.";

/// What every header line begins with; `key=<KEYID> id=<TOKENID>` follows.
pub(crate) const HEADER: &str = "warden-capability v1 ";

/// The length of a token id: 16 random bytes in lower-case base32 (RFC 4648 alphabet, no padding).
pub(crate) const TOKEN_ID_LEN: usize = 26;

const TAG_LEN: usize = 32;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why a token could not be minted, attenuated, parsed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `wcap1.BODY.TAG`, bad base64, not UTF-8, or a tag of the wrong length.
    #[error("malformed capability token: {0}")]
    Malformed(TokenShape),
    /// A line of the body that is not a well-formed header (line 1) or caveat (the others).
    #[error("bad line {line} `{text}`: {reason}")]
    BadLine {
        /// 1-based; line 1 is the header.
        line: usize,
        text: String,
        reason: LineProblem,
    },
    /// A caveat given to `mint` or `attenuate` that has no valid line.
    #[error("cannot add the caveat `{line}`: {reason}")]
    InvalidCaveat { line: String, reason: CaveatProblem },
    /// No key of the keyring mints, or verifies this token.
    #[error(transparent)]
    Key(#[from] KeyUnusable),
    #[error(
        "signature mismatch: the token was altered: a byte changed, or a caveat was removed, reordered or added without the chain"
    )]
    SignatureMismatch,
    #[error("no random bytes for a token id: {0}")]
    Random(#[source] getrandom::Error),
}

/// How a token's text is not `wcap1.BODY.TAG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenShape {
    #[error("it does not begin with `wcap1.`")]
    NoPrefix,
    #[error("expected `wcap1.<body>.<tag>`")]
    NotBodyAndTag,
    #[error("the body is not base64url without padding")]
    BodyNotBase64,
    #[error("the tag is not base64url without padding")]
    TagNotBase64,
    #[error("the tag is not 32 bytes")]
    TagLength,
    #[error("the body is not UTF-8")]
    BodyNotUtf8,
}

/// Why a caveat given to `mint` or `attenuate` cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaveatProblem {
    /// Its line parses, but as another caveat.
    #[error("it does not read back as the same caveat")]
    NotSame,
    /// Its line does not parse.
    #[error(transparent)]
    Line(#[from] CaveatError),
}

/// What is wrong with one line of a token's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("the first line is the header `{HEADER}key=<key id> id=<token id>`")]
    Header,
    #[error("`{0}` is not a key id (1 to 64 of `A-Z a-z 0-9 _ . -`)")]
    KeyId(String),
    #[error("`{0}` is not a token id ({TOKEN_ID_LEN} characters of `a`-`z` and `2`-`7`)")]
    TokenId(String),
    #[error("the header is only the first line")]
    HeaderAgain,
    #[error("{0}")]
    Caveat(#[from] CaveatError),
}

/// Why a caveat line (or an entity or name inside one) does not parse. Text fields hold the
/// offending input already escaped as the policy language escapes strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaveatError {
    #[error("`{text}` is not an entity: write `Type::\"id\"`")]
    NotEntity { text: String },
    #[error("`{ty}` is not an entity type: a type is a name of letters, digits and `_`")]
    NotEntityType { ty: String },
    #[error("a caveat is one line: it holds no line break")]
    LineBreak,
    #[error("a caveat is `<kind> = <value>`, and this line has no ` = `")]
    NoEquals,
    #[error("`{text}` is not a time: write RFC 3339 in UTC, like `2026-12-12T10:00:00Z`")]
    NotTime { text: String },
    #[error("an audience is non-empty text without control characters or surrounding spaces")]
    BadAudience,
    #[error("`{text}` is not a token id ({TOKEN_ID_LEN} characters of `a`-`z` and `2`-`7`)")]
    NotTokenId { text: String },
    #[error("unknown caveat kind `{kind}` (the kinds are {})", Caveat::KINDS.join(", "))]
    UnknownKind { kind: String },
    #[error("not in canonical form: write `{canonical}`")]
    NotCanonical { canonical: String },
    #[error("`{text}` is not a quoted name")]
    NotQuotedName { text: String },
    #[error("expected a name at `{text}`: a name is `[A-Za-z_][A-Za-z0-9_-]*`, or any text quoted")]
    NotName { text: String },
    #[error("`{text}` is not one name")]
    NotOneName { text: String },
    #[error("a name is not empty")]
    EmptyName,
    #[error("expected `, ` between actions at `{text}`")]
    NoActionSeparator { text: String },
}

/// An entity as a caveat writes it: `Type::"id"`, the id escaped as Warden's policy language
/// escapes strings (`src/syntax/token.rs`), exactly as [`EntityUid`] displays.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityText {
    pub ty: String,
    pub id: String,
}

impl EntityText {
    pub fn new(ty: impl Into<String>, id: impl Into<String>) -> EntityText {
        EntityText {
            ty: ty.into(),
            id: id.into(),
        }
    }

    /// True when this names `uid`.
    pub fn is(&self, uid: &EntityUid) -> bool {
        *self.ty == *uid.ty && *self.id == *uid.id
    }
}

impl From<&EntityUid> for EntityText {
    fn from(uid: &EntityUid) -> EntityText {
        EntityText::new(&*uid.ty, &*uid.id)
    }
}

impl fmt::Display for EntityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ty)?;
        f.write_str("::\"")?;
        write_escaped(f, &self.id)?;
        f.write_str("\"")
    }
}

impl FromStr for EntityText {
    type Err = CaveatError;

    /// Accepts exactly what `Display` prints: an identifier type, `::`, and the id quoted in
    /// its canonical escaping.
    fn from_str(text: &str) -> Result<EntityText, CaveatError> {
        let entity = entity(text)?;
        canonical(text, &entity)?;
        Ok(entity)
    }
}

/// An entity, in its canonical spelling or not.
fn entity(text: &str) -> Result<EntityText, CaveatError> {
    let not_entity = || CaveatError::NotEntity { text: escape(text) };
    // A type holds no `:`, so the first `:` must begin `::`.
    let (ty, rest) = text
        .split_once(':')
        .and_then(|(ty, rest)| Some((ty, rest.strip_prefix(':')?)))
        .ok_or_else(not_entity)?;
    if !is_type_name(ty) {
        return Err(CaveatError::NotEntityType { ty: escape(ty) });
    }
    let (id, rest) = quoted(rest).ok_or_else(not_entity)?;
    if !rest.is_empty() {
        return Err(not_entity());
    }
    Ok(EntityText::new(ty, id))
}

/// One line of a token after the header. Every caveat must hold for a request (see
/// [`Token::check`]); the informational ones always do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caveat {
    /// `capability = NAME`: the capability declaration the token was minted under.
    Capability(String),
    /// `resource = Type::"id"`: the request's resource is this entity.
    Resource(EntityText),
    /// `within = Type::"id"`: the request's resource is this entity or in it.
    Within(EntityText),
    /// `actions = a, b, "c d"`: the request's action is one of these.
    Actions(Vec<String>),
    /// `expires = 2026-12-12T10:00:00Z`: the request time is before this.
    Expires(Timestamp),
    /// `holder = Type::"id"`: the request's subject is this entity.
    Holder(EntityText),
    /// `audience = TEXT`: the deciding Warden's configured audience is this text.
    Audience(String),
    /// `minted-by = Type::"id"`: informational.
    MintedBy(EntityText),
    /// `minted-at = TIMESTAMP`: informational.
    MintedAt(Timestamp),
    /// `parent = TOKENID`: the token was re-minted from that one; revoking it revokes this.
    Parent(String),
}

impl Caveat {
    /// The kind, as the line spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Caveat::Capability(_) => "capability",
            Caveat::Resource(_) => "resource",
            Caveat::Within(_) => "within",
            Caveat::Actions(_) => "actions",
            Caveat::Expires(_) => "expires",
            Caveat::Holder(_) => "holder",
            Caveat::Audience(_) => "audience",
            Caveat::MintedBy(_) => "minted-by",
            Caveat::MintedAt(_) => "minted-at",
            Caveat::Parent(_) => "parent",
        }
    }

    /// The kinds a line may have, in the order of the documentation.
    pub const KINDS: &'static [&'static str] = &[
        "capability",
        "resource",
        "within",
        "actions",
        "expires",
        "holder",
        "audience",
        "minted-by",
        "minted-at",
        "parent",
    ];
}

impl fmt::Display for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = ", self.kind())?;
        match self {
            Caveat::Capability(name) => write_name(f, name),
            Caveat::Resource(entity)
            | Caveat::Within(entity)
            | Caveat::Holder(entity)
            | Caveat::MintedBy(entity) => write!(f, "{entity}"),
            Caveat::Actions(actions) => {
                for (i, action) in actions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_name(f, action)?;
                }
                Ok(())
            }
            Caveat::Expires(at) | Caveat::MintedAt(at) => write!(f, "{at}"),
            Caveat::Audience(text) | Caveat::Parent(text) => f.write_str(text),
        }
    }
}

impl FromStr for Caveat {
    type Err = CaveatError;

    /// Accepts exactly what `Display` prints; any other spelling of the same caveat (extra
    /// spaces, a needlessly quoted name, a time with an offset) is refused, so that a line has
    /// one meaning and one text.
    fn from_str(line: &str) -> Result<Caveat, CaveatError> {
        if line.contains(['\n', '\r']) {
            return Err(CaveatError::LineBreak);
        }
        // A kind holds no space, so the first space must begin ` = `.
        let (kind, value) = line
            .split_once(' ')
            .and_then(|(kind, rest)| Some((kind, rest.strip_prefix("= ")?)))
            .ok_or(CaveatError::NoEquals)?;
        let time = |value: &str| {
            value
                .parse::<Timestamp>()
                .map_err(|_| CaveatError::NotTime {
                    text: escape(value),
                })
        };
        let caveat = match kind {
            "capability" => Caveat::Capability(whole_name(value)?),
            "resource" => Caveat::Resource(entity(value)?),
            "within" => Caveat::Within(entity(value)?),
            "actions" => Caveat::Actions(names(value)?),
            "expires" => Caveat::Expires(time(value)?),
            "holder" => Caveat::Holder(entity(value)?),
            "audience" => {
                if value.is_empty() || value.chars().any(char::is_control) || value.trim() != value
                {
                    return Err(CaveatError::BadAudience);
                }
                Caveat::Audience(value.to_string())
            }
            "minted-by" => Caveat::MintedBy(entity(value)?),
            "minted-at" => Caveat::MintedAt(time(value)?),
            "parent" => {
                if !is_token_id(value) {
                    return Err(CaveatError::NotTokenId {
                        text: escape(value),
                    });
                }
                Caveat::Parent(value.to_string())
            }
            other => {
                return Err(CaveatError::UnknownKind {
                    kind: escape(other),
                });
            }
        };
        canonical(line, &caveat)?;
        Ok(caveat)
    }
}

/// Refuses a text that parsed but is not what its value prints as.
fn canonical(text: &str, value: &impl fmt::Display) -> Result<(), CaveatError> {
    // Compared as it prints, without building the printed text (this is on the hot path).
    let mut same = Same { rest: text };
    if fmt::write(&mut same, format_args!("{value}")).is_ok() && same.rest.is_empty() {
        Ok(())
    } else {
        Err(CaveatError::NotCanonical {
            canonical: escape(&value.to_string()),
        })
    }
}

/// A writer that accepts exactly the text it holds, in pieces.
struct Same<'a> {
    rest: &'a str,
}

impl fmt::Write for Same<'_> {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        self.rest = self.rest.strip_prefix(piece).ok_or(fmt::Error)?;
        Ok(())
    }
}

/// Writes text as [`escape`] escapes it, without allocating when nothing needs escaping.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    // `escape` changes exactly `"`, `\\` and the control characters.
    if text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        f.write_str(&escape(text))
    } else {
        f.write_str(text)
    }
}

/// A type name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_type_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name written bare: `[A-Za-z_][A-Za-z0-9_-]*`.
fn is_bare_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_bare_name(name) {
        f.write_str(name)
    } else {
        f.write_str("\"")?;
        write_escaped(f, name)?;
        f.write_str("\"")
    }
}

/// A quoted string at the start of `text`: its unescaped value and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix('"')?;
    let mut escaped = false;
    for (at, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let value = unescape(inner.get(..at)?).ok()?;
                return Some((value, inner.get(at + 1..)?));
            }
            _ => {}
        }
    }
    None
}

/// A name at the start of `text`, bare or quoted, and what follows it.
fn name(text: &str) -> Result<(String, &str), CaveatError> {
    if text.starts_with('"') {
        return quoted(text).ok_or_else(|| CaveatError::NotQuotedName { text: escape(text) });
    }
    let end = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(text.len(), |(at, _)| at);
    let (bare, rest) = text.split_at(end);
    if bare.is_empty() || !is_bare_name(bare) {
        return Err(CaveatError::NotName { text: escape(text) });
    }
    Ok((bare.to_string(), rest))
}

fn whole_name(text: &str) -> Result<String, CaveatError> {
    let (value, rest) = name(text)?;
    if !rest.is_empty() {
        return Err(CaveatError::NotOneName { text: escape(text) });
    }
    non_empty(value)
}

fn non_empty(name: String) -> Result<String, CaveatError> {
    if name.is_empty() {
        Err(CaveatError::EmptyName)
    } else {
        Ok(name)
    }
}

/// `a, b, "c d"`: one name or more, separated by `, `.
fn names(text: &str) -> Result<Vec<String>, CaveatError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let (value, after) = name(rest)?;
        out.push(non_empty(value)?);
        if after.is_empty() {
            return Ok(out);
        }
        rest = after
            .strip_prefix(", ")
            .ok_or_else(|| CaveatError::NoActionSeparator {
                text: escape(after),
            })?;
    }
}

/// True for a token id as Warden makes them: 26 characters of lower-case base32 that decode to
/// exactly 16 bytes (the last character carries 3 bits, the other 2 zero).
pub(crate) fn is_token_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == TOKEN_ID_LEN
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        && bytes
            .last()
            .and_then(|last| BASE32.iter().position(|b| b == last))
            .is_some_and(|value| value % 4 == 0)
}

/// A fresh token id: 16 random bytes in lower-case base32.
pub fn new_token_id() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
    Ok(base32(&bytes))
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A token's content: verified by [`verify`], or only parsed by [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    key_id: String,
    id: String,
    caveats: Vec<Caveat>,
    tag: [u8; TAG_LEN],
}

impl Token {
    /// The id of the key whose secret roots the chain.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The token id: what revocation names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The caveats in chain order: the minted ones first, then each attenuation's.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// The header line (`L0`).
    pub fn header(&self) -> String {
        format!("{HEADER}key={} id={}", self.key_id, self.id)
    }

    /// The last tag of the chain, base64url without padding (as at the end of the text).
    pub fn tag(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.tag)
    }

    /// The earliest `expires`, if any.
    pub fn expires(&self) -> Option<Timestamp> {
        self.caveats
            .iter()
            .filter_map(|caveat| match caveat {
                Caveat::Expires(at) => Some(*at),
                _ => None,
            })
            .min()
    }

    /// The token's own id, then every `parent`: revoking any of them revokes the token.
    pub fn lineage(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.caveats.iter().filter_map(
            |caveat| match caveat {
                Caveat::Parent(id) => Some(id.as_str()),
                _ => None,
            },
        ))
    }

    /// The token's text: what `mint` or `attenuate` returned.
    pub fn text(&self) -> String {
        let mut body = self.header();
        for caveat in &self.caveats {
            body.push('\n');
            body.push_str(&caveat.to_string());
        }
        encode(&body, &self.tag)
    }

    /// Whether every caveat holds for `request`: the first that does not, if any.
    ///
    /// This does not verify the token (use [`verify`]), nor look at revocation. `is_in` answers
    /// `within`: is the request's resource this entity or in it. `capability` answers
    /// `capability = NAME`: does the declaration `NAME` allow this request's action on this
    /// resource. Informational caveats (`minted-by`, `minted-at`, `parent`) always hold.
    pub fn check<'t>(
        &'t self,
        request: &Request<'_>,
        mut is_in: impl FnMut(&EntityText) -> bool,
        mut capability: impl FnMut(&str) -> bool,
    ) -> Result<(), Unmet<'t>> {
        for (index, caveat) in self.caveats.iter().enumerate() {
            let holds = match caveat {
                Caveat::Capability(name) => capability(name),
                Caveat::Resource(entity) => entity.is(request.resource),
                Caveat::Within(entity) => entity.is(request.resource) || is_in(entity),
                Caveat::Actions(actions) => actions.iter().any(|a| a == request.action),
                Caveat::Expires(at) => request.now < *at,
                Caveat::Holder(entity) => request.subject.is_some_and(|s| entity.is(s)),
                Caveat::Audience(audience) => request.audience == Some(audience.as_str()),
                Caveat::MintedBy(_) | Caveat::MintedAt(_) | Caveat::Parent(_) => true,
            };
            if !holds {
                return Err(Unmet { index, caveat });
            }
        }
        Ok(())
    }
}

/// What a request offers the caveats of [`Token::check`].
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The subject, when the request has one (`holder` fails without).
    pub subject: Option<&'a EntityUid>,
    pub action: &'a str,
    pub resource: &'a EntityUid,
    /// The request's time (`expires`).
    pub now: Timestamp,
    /// The deciding Warden's configured audience (`audience` fails without).
    pub audience: Option<&'a str>,
}

/// The first caveat of a token that does not hold for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmet<'t> {
    /// Index in [`Token::caveats`] (the line number is `index + 2`).
    pub index: usize,
    pub caveat: &'t Caveat,
}

impl fmt::Display for Unmet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the caveat `{}` does not hold", self.caveat)
    }
}

/// The decoded text: the body (lines joined by `\n`) and the last tag.
struct Raw {
    body: String,
    tag: [u8; TAG_LEN],
}

impl Raw {
    fn decode(text: &str) -> Result<Raw, TokenError> {
        let malformed = TokenError::Malformed;
        let rest = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(malformed(TokenShape::NoPrefix))?;
        let (body, tag) = rest
            .split_once('.')
            .filter(|(_, tag)| !tag.contains('.'))
            .ok_or(malformed(TokenShape::NotBodyAndTag))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| malformed(TokenShape::BodyNotBase64))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| malformed(TokenShape::TagNotBase64))?;
        let tag: [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| malformed(TokenShape::TagLength))?;
        let body = String::from_utf8(body).map_err(|_| malformed(TokenShape::BodyNotUtf8))?;
        Ok(Raw { body, tag })
    }

    fn lines(&self) -> std::str::Split<'_, char> {
        self.body.split('\n')
    }

    fn token(&self) -> Result<Token, TokenError> {
        let bad = |line: usize, text: &str, reason: LineProblem| TokenError::BadLine {
            line,
            text: escape(text),
            reason,
        };
        let mut lines = self.lines();
        let header = lines.next().unwrap_or("");
        let (key_id, id) = parse_header(header).map_err(|reason| bad(1, header, reason))?;
        let mut caveats = Vec::with_capacity(self.body.bytes().filter(|&b| b == b'\n').count());
        for (i, line) in lines.enumerate() {
            if line.starts_with(HEADER) {
                return Err(bad(i + 2, line, LineProblem::HeaderAgain));
            }
            caveats.push(
                line.parse::<Caveat>()
                    .map_err(|e| bad(i + 2, line, e.into()))?,
            );
        }
        Ok(Token {
            key_id: key_id.to_string(),
            id: id.to_string(),
            caveats,
            tag: self.tag,
        })
    }
}

fn parse_header(line: &str) -> Result<(&str, &str), LineProblem> {
    let fields = line
        .strip_prefix(HEADER)
        .and_then(|rest| rest.strip_prefix("key="))
        .and_then(|rest| rest.split_once(" id="));
    let Some((key_id, id)) = fields else {
        return Err(LineProblem::Header);
    };
    if !is_key_id(key_id) {
        return Err(LineProblem::KeyId(escape(key_id)));
    }
    if !is_token_id(id) {
        return Err(LineProblem::TokenId(escape(id)));
    }
    Ok((key_id, id))
}

fn encode(body: &str, tag: &[u8; TAG_LEN]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + (body.len() + TAG_LEN) * 4 / 3 + 4);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(body, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut out);
    out
}

/// One step of the chain, not yet finalized: HMAC-SHA-256 keyed by `key` over `line`.
fn step(key: &[u8], line: &str) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed): `new_from_slice` cannot fail
    // for it; the fallback keeps the library free of panics all the same.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
    mac.update(line.as_bytes());
    mac
}

fn next_tag(key: &[u8], line: &str) -> [u8; TAG_LEN] {
    step(key, line).finalize().into_bytes().into()
}

/// The line of a caveat given to `mint` or `attenuate`, if it reads back as the same caveat.
fn checked_line(caveat: &Caveat) -> Result<String, TokenError> {
    let line = caveat.to_string();
    match line.parse::<Caveat>() {
        Ok(back) if back == *caveat => Ok(line),
        Ok(_) => Err(TokenError::InvalidCaveat {
            line: escape(&line),
            reason: CaveatProblem::NotSame,
        }),
        Err(e) => Err(TokenError::InvalidCaveat {
            line: escape(&line),
            reason: e.into(),
        }),
    }
}

/// Mints a token under the keyring's signing key (its first key not retired) with a fresh
/// random id: its text and its id.
pub fn mint(keyring: &Keyring, caveats: &[Caveat]) -> Result<(String, String), TokenError> {
    let key = keyring.signing_key()?;
    let id = new_token_id()?;
    let mut body = format!("{HEADER}key={} id={id}", key.id());
    let mut tag = next_tag(key.secret(), &body);
    extend(&mut body, &mut tag, caveats)?;
    Ok((encode(&body, &tag), id))
}

/// Appends caveats to a token, offline: no key is needed, and the result can only grant less.
/// The token is parsed (a malformed one is refused) but not verified.
pub fn attenuate(token: &str, caveats: &[Caveat]) -> Result<String, TokenError> {
    let Raw { mut body, mut tag } = Raw::decode(token)?;
    Raw {
        body: body.clone(),
        tag,
    }
    .token()?;
    extend(&mut body, &mut tag, caveats)?;
    Ok(encode(&body, &tag))
}

fn extend(
    body: &mut String,
    tag: &mut [u8; TAG_LEN],
    caveats: &[Caveat],
) -> Result<(), TokenError> {
    // Every line is checked before any is added, so an error leaves nothing half done.
    let lines = caveats
        .iter()
        .map(checked_line)
        .collect::<Result<Vec<_>, _>>()?;
    for line in lines {
        *tag = next_tag(tag.as_slice(), &line);
        body.push('\n');
        body.push_str(&line);
    }
    Ok(())
}

/// Parses a token's structure without verifying its chain: for `inspect`, never to authorize.
pub fn parse(token: &str) -> Result<Token, TokenError> {
    Raw::decode(token)?.token()
}

/// Parses a token and verifies its chain under the keyring: the key exists and is not past its
/// grace at `now`, and the last tag is the chain's (compared in constant time).
///
/// The caveats are not evaluated here: see [`Token::check`].
pub fn verify(keyring: &Keyring, token: &str, now: Timestamp) -> Result<Token, TokenError> {
    let raw = Raw::decode(token)?;
    let parsed = raw.token()?;
    let key = keyring.verifying_key(&parsed.key_id, now)?;
    let mut lines = raw.lines();
    let mut mac = step(key.secret(), lines.next().unwrap_or(""));
    for line in lines {
        let tag: [u8; TAG_LEN] = mac.finalize().into_bytes().into();
        mac = step(&tag, line);
    }
    mac.verify_slice(&raw.tag)
        .map_err(|_| TokenError::SignatureMismatch)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests;
