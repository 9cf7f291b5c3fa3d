//! Fetching a bundle: over HTTP(S) with `If-None-Match`, or from a local file.
//!
//! One request per poll on a fresh connection (HTTP/1.1, hyper's client connection over a
//! Tokio socket, rustls for `https`): polls are seconds apart, so a pool would buy nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use sha2::{Digest, Sha256};

/// Where bundles come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Http(hyper::Uri),
    File(PathBuf),
}

/// Why a fetch failed (the serving version is kept).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FetchError {
    #[error(
        "`{0}` is not a bundle URL: write `http://HOST[:PORT]/PATH`, `https://...` or a file path"
    )]
    #[diagnostic(code(warden::bundle::url))]
    BadUrl(String),
    #[error("cannot connect to `{authority}`: {reason}")]
    #[diagnostic(code(warden::bundle::connect))]
    Connect {
        authority: String,
        reason: ConnectProblem,
    },
    #[error("the bundle request failed: {0}")]
    #[diagnostic(code(warden::bundle::request))]
    Request(#[source] RequestProblem),
    #[error("the bundle server answered {0}")]
    #[diagnostic(code(warden::bundle::status))]
    Status(u16),
    #[error("the bundle download is truncated or larger than {limit} bytes: {reason}")]
    #[diagnostic(code(warden::bundle::download))]
    Body { limit: u64, reason: BodyProblem },
    #[error("the bundle fetch took longer than {0:?}")]
    #[diagnostic(code(warden::bundle::timeout))]
    Timeout(Duration),
    #[error("cannot read the bundle file `{path}`: {reason}")]
    #[diagnostic(code(warden::bundle::file))]
    File { path: PathBuf, reason: FileProblem },
}

/// Why the connection to a bundle server failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectProblem {
    #[error("{0}")]
    Tcp(#[source] std::io::Error),
    #[error("no CA certificates for https")]
    NoCa,
    #[error("{0}")]
    ServerName(#[source] rustls_pki_types::InvalidDnsNameError),
    #[error("{0}")]
    Tls(#[source] std::io::Error),
}

/// Why a bundle request could not be made or answered.
#[derive(Debug, thiserror::Error)]
pub enum RequestProblem {
    /// The blocking task that reads a bundle file did not finish.
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
    #[error("{0}")]
    Build(#[source] hyper::http::Error),
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

/// Why a bundle download is not whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyProblem {
    #[error("its Content-Length is over the limit")]
    OverLimit,
    /// The body ended early, failed, or went over the limit.
    #[error("{0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{arrived} of {expected} bytes arrived")]
    Short { arrived: usize, expected: u64 },
}

/// Why a bundle file or a CA file does not serve.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0}")]
    Bundle(#[source] Box<super::BundleError>),
    #[error("{0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    #[error("no usable CA certificate in PEM form")]
    NoCa,
    #[error("{0}")]
    Tls(#[source] rustls::Error),
}

/// What a fetch brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The server (or the file) says the bundle did not change since `etag`.
    NotModified,
    New {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

impl Source {
    /// `http://`, `https://` or a path.
    pub fn parse(text: &str) -> Result<Source, FetchError> {
        if text.starts_with("http://") || text.starts_with("https://") {
            let uri: hyper::Uri = text
                .parse()
                .map_err(|_| FetchError::BadUrl(text.to_string()))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(FetchError::BadUrl(text.to_string()));
            }
            return Ok(Source::Http(uri));
        }
        if text.is_empty() || text.contains("://") {
            return Err(FetchError::BadUrl(text.to_string()));
        }
        Ok(Source::File(PathBuf::from(text)))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Http(uri) => write!(f, "{uri}"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The TLS client configuration for `https` sources: the roots of `ca_file` (PEM).
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, FetchError> {
    let bad = |reason: FileProblem| FetchError::File {
        path: ca_file.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(FileProblem::Pem(e)))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(FileProblem::Pem(e)))?;
        // One unusable certificate in a system bundle must not lose all the others.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(bad(FileProblem::NoCa));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(FileProblem::Tls(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The entity tag of a local file: its SHA-256.
fn file_tag(bytes: &[u8]) -> String {
    format!("\"{}\"", crate::audit::chain::hex(&Sha256::digest(bytes)))
}

/// Fetches the bundle unless it still has `etag`; at most `limit` bytes, within `timeout`.
pub async fn fetch(
    source: &Source,
    etag: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    limit: u64,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    match source {
        Source::File(path) => {
            let path = path.clone();
            let limits = super::Limits {
                total: limit,
                ..super::Limits::default()
            };
            let bytes = tokio::task::spawn_blocking(move || super::read_file(&path, &limits))
                .await
                .map_err(|e| FetchError::Request(RequestProblem::Task(e)))?
                .map_err(|e| FetchError::File {
                    path: source_path(source),
                    reason: FileProblem::Bundle(Box::new(e)),
                })?;
            let tag = file_tag(&bytes);
            if etag == Some(tag.as_str()) {
                return Ok(Fetched::NotModified);
            }
            Ok(Fetched::New {
                bytes,
                etag: Some(tag),
            })
        }
        Source::Http(uri) => tokio::time::timeout(timeout, get(uri, etag, tls, limit))
            .await
            .map_err(|_| FetchError::Timeout(timeout))?,
    }
}

fn source_path(source: &Source) -> PathBuf {
    match source {
        Source::File(path) => path.clone(),
        Source::Http(uri) => PathBuf::from(uri.to_string()),
    }
}

async fn get(
    uri: &hyper::Uri,
    etag: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    limit: u64,
) -> Result<Fetched, FetchError> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or_else(|| host.to_string(), ToString::to_string);
    let connect = |reason: ConnectProblem| FetchError::Connect {
        authority: authority.clone(),
        reason,
    };
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| connect(ConnectProblem::Tcp(e)))?;
    let _ = tcp.set_nodelay(true);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::get(path)
        .header(header::HOST, authority.as_str())
        .header(
            header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Request(RequestProblem::Build(e)))?;
    let response = if https {
        let config = tls.cloned().ok_or_else(|| connect(ConnectProblem::NoCa))?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| connect(ConnectProblem::ServerName(e)))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| connect(ConnectProblem::Tls(e)))?;
        send(TokioIo::new(stream), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    let status = response.status();
    if status == hyper::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if status != hyper::StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }
    let tag = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let expected = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body_error = |reason: BodyProblem| FetchError::Body { limit, reason };
    if expected.is_some_and(|length| length > limit) {
        return Err(body_error(BodyProblem::OverLimit));
    }
    let body = Limited::new(
        response.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
    .collect()
    .await
    .map_err(|e| body_error(BodyProblem::Read(e)))?
    .to_bytes();
    if expected.is_some_and(|length| length != body.len() as u64) {
        return Err(body_error(BodyProblem::Short {
            arrived: body.len(),
            expected: expected.unwrap_or_default(),
        }));
    }
    Ok(Fetched::New {
        bytes: body.to_vec(),
        etag: tag,
    })
}

async fn send<T>(
    io: T,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, FetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| FetchError::Request(RequestProblem::Http(e)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Request(RequestProblem::Http(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert!(matches!(
            Source::parse("http://127.0.0.1:8080/b.tar.gz"),
            Ok(Source::Http(_))
        ));
        assert!(matches!(
            Source::parse("bundles/b.tar.gz"),
            Ok(Source::File(_))
        ));
        assert!(Source::parse("ftp://x/y").is_err());
        assert!(Source::parse("http:///nohost").is_err());
    }

    #[tokio::test]
    async fn a_file_source_is_not_modified_while_its_bytes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        std::fs::write(&path, b"one").unwrap();
        let source = Source::File(path.clone());
        let wait = Duration::from_secs(5);
        let Fetched::New { etag, .. } = fetch(&source, None, None, 1024, wait).await.unwrap()
        else {
            unreachable!()
        };
        let again = fetch(&source, etag.as_deref(), None, 1024, wait)
            .await
            .unwrap();
        assert_eq!(again, Fetched::NotModified);
        std::fs::write(&path, b"two").unwrap();
        let changed = fetch(&source, etag.as_deref(), None, 1024, wait)
            .await
            .unwrap();
        assert!(matches!(changed, Fetched::New { .. }));
    }
}
