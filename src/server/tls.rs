//! TLS for the decision API (rustls, with the *ring* provider), with the certificate and key
//! reloaded when their files change, and optional client-certificate verification (mTLS).
//!
//! - `tls_cert`: the server's certificate chain (PEM, leaf first); `tls_key`: its private key
//!   (PEM: PKCS#8, PKCS#1 or SEC1). Both or neither.
//! - `tls_client_ca`: with it, every client must present a certificate issued by one of these
//!   CAs (PEM, one or more), valid now; a client without one, or with an expired one, or with
//!   one from another CA, fails the handshake and never reaches the API.
//! - `tls_client_allow`: with it, the CA's word is not enough: the certificate must also name
//!   one of these identities ([`ClientIdentity`]: a SAN DNS name, a SAN URI, or the subject's
//!   common name), or the handshake fails with `access_denied`. A CA usually issues to many
//!   services; this keeps the API to the few that should call it.
//!
//! The files are read at start-up (a file that does not load stops the server: exit 3, naming
//! the key), then watched: the parent directory of each is watched, so an editor's
//! write-then-rename, cert-manager's or a Kubernetes Secret volume's `..data` symlink swap, and
//! a plain overwrite are all seen. After a quiet time the whole set is read again; a set that
//! does not load is logged and the previous one keeps serving. New connections use the new
//! set; open connections keep theirs. SIGHUP reloads them too.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::serve::Listener;
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::ConfigError;

/// The TLS files, and whom mTLS admits, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Verify clients against these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: the identities admitted, one of which a client's certificate must
    /// name. Empty: any certificate from the CAs.
    pub client_allow: Vec<ClientIdentity>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path())]
            .into_iter()
            .chain(std::iter::once(self.client_ca.as_deref()))
            .flatten()
    }

    /// An allow-list needs a client CA: identities are read only from certificates that
    /// chain to one, or anybody could name themselves.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.client_ca.is_none() && !self.client_allow.is_empty() {
            return Err(ConfigError::ClientAllowNeedsCa);
        }
        Ok(())
    }
}

/// A client identity that `tls_client_allow` admits: `dns:NAME`, `uri:URI` or `cn:NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientIdentity {
    /// A subject alternative name of type DNS, compared ignoring ASCII case (kept lower-case).
    /// Compared as written: a certificate for `*.example.com` matches only `dns:*.example.com`.
    Dns(String),
    /// A subject alternative name of type URI (a SPIFFE ID, say), compared exactly.
    Uri(String),
    /// A common name in the certificate's subject, compared exactly.
    CommonName(String),
}

/// Why a `tls_client_allow` entry is not an identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("`{0}` does not say which name it is: write `dns:NAME`, `uri:URI` or `cn:NAME`")]
    NoKind(String),
    #[error("`{0}` has nothing after `{1}:`")]
    Empty(String, &'static str),
}

impl std::str::FromStr for ClientIdentity {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<ClientIdentity, IdentityError> {
        let no_kind = || IdentityError::NoKind(text.to_string());
        let (kind, name) = text.split_once(':').ok_or_else(no_kind)?;
        // Space around a DNS name or a URI (`dns:a, dns:b`) cannot be part of it; a common
        // name is taken as written.
        let (kind, identity) = match kind.trim().to_ascii_lowercase().as_str() {
            "dns" => ("dns", ClientIdentity::Dns(name.trim().to_ascii_lowercase())),
            "uri" => ("uri", ClientIdentity::Uri(name.trim().to_string())),
            "cn" => ("cn", ClientIdentity::CommonName(name.to_string())),
            _ => return Err(no_kind()),
        };
        match &identity {
            ClientIdentity::Dns(name)
            | ClientIdentity::Uri(name)
            | ClientIdentity::CommonName(name)
                if name.is_empty() =>
            {
                Err(IdentityError::Empty(text.to_string(), kind))
            }
            _ => Ok(identity),
        }
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Dns(name) => write!(f, "dns:{name}"),
            ClientIdentity::Uri(uri) => write!(f, "uri:{uri}"),
            ClientIdentity::CommonName(name) => write!(f, "cn:{name}"),
        }
    }
}

/// A certificate whose names cannot be read (after it verified, which reads most of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the certificate's names cannot be read")]
pub struct UnreadableNames;

impl ClientIdentity {
    /// Every identity `cert` names: its SAN DNS names and URIs (as webpki reads them: a DNS
    /// name that is not one is skipped) and its subject's common names.
    pub fn presented(cert: &CertificateDer<'_>) -> Result<Vec<ClientIdentity>, UnreadableNames> {
        let parsed = webpki::EndEntityCert::try_from(cert).map_err(|_| UnreadableNames)?;
        let mut names: Vec<ClientIdentity> = parsed
            .valid_dns_names()
            .map(|name| ClientIdentity::Dns(name.to_ascii_lowercase()))
            .chain(
                parsed
                    .valid_uri_names()
                    .map(|uri| ClientIdentity::Uri(uri.to_string())),
            )
            .collect();
        names.extend(
            common_names(parsed.subject())
                .map_err(|_| UnreadableNames)?
                .into_iter()
                .map(ClientIdentity::CommonName),
        );
        Ok(names)
    }
}

/// The common names (OID 2.5.4.3) in a subject: `subject` is the content of its `Name`
/// sequence, a sequence of sets of (type, value) pairs. A name in a string type other than
/// UTF8String, PrintableString or IA5String (never issued today) is skipped.
fn common_names(subject: &[u8]) -> Result<Vec<String>, der::Error> {
    use der::asn1::AnyRef;
    use der::{Reader, SliceReader, Tag, Tagged};
    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    let mut names = Vec::new();
    let mut rdns = SliceReader::new(subject)?;
    while !rdns.is_finished() {
        let rdn: AnyRef<'_> = rdns.decode()?;
        let mut pairs = SliceReader::new(rdn.value())?;
        while !pairs.is_finished() {
            let pair: AnyRef<'_> = pairs.decode()?;
            let mut fields = SliceReader::new(pair.value())?;
            let kind: AnyRef<'_> = fields.decode()?;
            let value: AnyRef<'_> = fields.decode()?;
            let text = matches!(
                value.tag(),
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
            );
            if kind.tag() == Tag::ObjectIdentifier
                && kind.value() == COMMON_NAME
                && text
                && let Ok(name) = std::str::from_utf8(value.value())
            {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

/// The CA's verifier, then the allow-list: a certificate from the CA that names none of the
/// allowed identities fails the handshake (`access_denied`).
#[derive(Debug)]
struct AllowList {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<ClientIdentity>,
}

impl ClientCertVerifier for AllowList {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let presented = ClientIdentity::presented(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if presented.iter().any(|name| self.allowed.contains(name)) {
            return Ok(verified);
        }
        let presented: Vec<String> = presented.iter().map(ToString::to_string).collect();
        tracing::warn!(
            presented = %presented.join(", "),
            "a client certificate from the CA names no identity in `tls_client_allow`; refused"
        );
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What is wrong with one of the TLS files.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileProblem {
    #[error("cannot read: {0}")]
    Unreadable(#[source] rustls_pki_types::pem::Error),
    #[error("not PEM: {0}")]
    NotPem(#[source] rustls_pki_types::pem::Error),
    #[error("no certificate in PEM form")]
    NoCertificate,
    #[error("no private key in PEM form ({0})")]
    NoKey(#[source] rustls_pki_types::pem::Error),
    #[error("not a usable CA certificate: {0}")]
    BadCa(#[source] rustls::Error),
    /// The client CA's certificates make no verifier.
    #[error("{0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("cannot be used with the certificate in `tls_cert`: {0}")]
    KeyMismatch(#[source] rustls::Error),
}

/// Reads the files into a rustls server configuration. The error names the key whose file is
/// at fault.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, ConfigError> {
    files.check()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fail = |key: &'static str, path: &Path, problem: TlsFileProblem| ConfigError::TlsFile {
        key,
        path: path.to_path_buf(),
        problem,
    };
    let certs = read_certs(&files.cert).map_err(|e| fail("tls_cert", &files.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| fail("tls_key", &files.key, TlsFileProblem::NoKey(e)))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ConfigError::Tls)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path).map_err(|e| fail("tls_client_ca", path, e))? {
                roots
                    .add(cert)
                    .map_err(|e| fail("tls_client_ca", path, TlsFileProblem::BadCa(e)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| fail("tls_client_ca", path, TlsFileProblem::Verifier(e)))?;
            if files.client_allow.is_empty() {
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_client_cert_verifier(Arc::new(AllowList {
                    inner: verifier,
                    allowed: files.client_allow.clone(),
                }))
            }
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| fail("tls_key", &files.key, TlsFileProblem::KeyMismatch(e)))?;
    // HTTP/2 first: one client connection then multiplexes its calls.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileProblem> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(TlsFileProblem::Unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsFileProblem::NotPem)?;
    if certs.is_empty() {
        return Err(TlsFileProblem::NoCertificate);
    }
    Ok(certs)
}

/// The serving TLS configuration, swapped whole when the files change.
pub struct TlsState {
    pub files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// Reloads that replaced the configuration, and reloads refused.
    reloaded: AtomicU64,
    failed: AtomicU64,
    trigger: Notify,
}

impl TlsState {
    /// Loads the files (start-up: an error stops the server).
    pub fn new(files: TlsFiles) -> Result<TlsState, ConfigError> {
        let config = load(&files)?;
        Ok(TlsState {
            files,
            current: ArcSwap::new(config),
            reloaded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            trigger: Notify::new(),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Reads the files again; on failure the serving configuration is kept.
    pub fn reload(&self) -> Result<(), ConfigError> {
        match load(&self.files) {
            Ok(config) => {
                self.current.store(config);
                self.reloaded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    %error,
                    "the TLS files do not load; the previous certificate keeps serving"
                );
                Err(error)
            }
        }
    }

    /// How many reloads replaced the configuration, and how many were refused.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloaded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Asks for a reload (after the quiet time), as a file change or SIGHUP does.
    pub fn fire(&self) {
        self.trigger.notify_one();
    }
}

/// Reloads on request (SIGHUP) and, with `watch_files`, when the files change, until
/// `shutdown`.
pub fn watch(
    state: Arc<TlsState>,
    debounce: Duration,
    watch_files: bool,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let watcher = if watch_files {
        file_watcher(&state)
    } else {
        None
    };
    tokio::spawn(async move {
        // Kept alive as long as the task runs.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = state.trigger.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            // Let a burst of events (write, rename, symlink swap) settle into one reload.
            tokio::time::sleep(debounce).await;
            let reloader = state.clone();
            let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
        }
    })
}

fn file_watcher(state: &Arc<TlsState>) -> Option<notify::RecommendedWatcher> {
    let absolute: Vec<PathBuf> = state
        .files
        .paths()
        .filter_map(|path| std::path::absolute(path).ok())
        .collect();
    let names: BTreeSet<OsString> = absolute
        .iter()
        .filter_map(|path| path.file_name().map(OsString::from))
        .collect();
    let dirs: BTreeSet<PathBuf> = absolute
        .iter()
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect();
    let weak = Arc::downgrade(state);
    let handler = move |event: notify::Result<Event>| {
        let relevant = match &event {
            Err(_) => true,
            Ok(event) => {
                !matches!(event.kind, EventKind::Access(_))
                    && event.paths.iter().any(|path| {
                        path.file_name().is_some_and(|name| {
                            // `..data` and its timestamped targets: a Secret volume's swap.
                            names.contains(name) || name.to_string_lossy().starts_with("..")
                        })
                    })
            }
        };
        if relevant && let Some(state) = weak.upgrade() {
            state.fire();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::error!(%error, "cannot watch the TLS files; they reload on SIGHUP only");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(%error, dir = %dir.display(), "cannot watch a TLS file's directory; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// A finished handshake, or `None` for one that failed.
type Handshake<L> = Option<(TlsStream<<L as Listener>::Io>, <L as Listener>::Addr)>;

/// A listener whose connections are TLS streams. Handshakes run in their own tasks, so a slow
/// or silent client never holds up the others; one that does not finish within `timeout` is
/// dropped, as is one that fails (a client certificate refused under mTLS, say).
pub(crate) struct TlsListener<L: Listener> {
    inner: L,
    state: Arc<TlsState>,
    timeout: Duration,
    handshakes: JoinSet<Handshake<L>>,
}

impl<L: Listener> TlsListener<L> {
    pub fn new(inner: L, state: Arc<TlsState>, timeout: Duration) -> TlsListener<L> {
        TlsListener {
            inner,
            state,
            timeout,
            handshakes: JoinSet::new(),
        }
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener,
    L::Addr: std::fmt::Debug + 'static,
{
    type Io = TlsStream<L::Io>;
    type Addr = L::Addr;

    // Cancel-safe, as axum's accept loop needs: both branches are.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                (io, address) = self.inner.accept() => {
                    let acceptor = TlsAcceptor::from(self.state.current());
                    let timeout = self.timeout;
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(timeout, acceptor.accept(io)).await {
                            Ok(Ok(stream)) => Some((stream, address)),
                            Ok(Err(error)) => {
                                tracing::debug!(%error, ?address, "TLS handshake refused");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(?address, "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
