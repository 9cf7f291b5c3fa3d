//! Sidecar transports and configuration: Unix sockets, TLS and mTLS over real connections,
//! certificate reload, `--print-config`, every invalid-configuration message, start-up
//! readiness.

mod config;
mod tls;
mod unix;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};

pub use crate::server::{EVALUATION, PolicyDir, Reply, config as server_config, request};

/// One HTTP/1.1 request over an already open connection (a Unix socket, a TLS stream).
pub async fn send_over<IO>(
    io: IO,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Reply, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    })
}

/// The evaluation request the tests send: alice owns d1.
pub fn alice_reads_d1() -> String {
    request("alice", "read", "d1").to_string()
}

/// A test PKI: a CA, a server certificate for `localhost`/127.0.0.1, and clients (good,
/// expired, and one from another CA), written as PEM files into a directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
    pub ca_pem: String,
    other_ca: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

fn new_ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (Issuer::new(params, key), cert.pem())
}

impl Pki {
    pub fn new() -> Pki {
        let (ca, ca_pem) = new_ca("Warden test CA");
        let (other_ca, _) = new_ca("Another CA");
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
            ca_pem,
            other_ca,
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).unwrap();
        let server = pki.server("server one");
        pki.write("server", &server);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `server.crt`/`server.key` style files: `{stem}.crt` and `{stem}.key`.
    pub fn write(&self, stem: &str, issued: &Issued) {
        std::fs::write(self.path(&format!("{stem}.crt")), &issued.cert).unwrap();
        std::fs::write(self.path(&format!("{stem}.key")), &issued.key).unwrap();
    }

    fn issue(
        issuer: &Issuer<'static, KeyPair>,
        name: &str,
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for localhost, with `name` as its common name.
    pub fn server(&self, name: &str) -> Issued {
        Pki::issue(&self.ca, name, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    pub fn client(&self) -> Issued {
        Pki::issue(
            &self.ca,
            "client",
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
    }

    pub fn expired_client(&self) -> Issued {
        Pki::issue(
            &self.ca,
            "expired",
            ExtendedKeyUsagePurpose::ClientAuth,
            true,
        )
    }

    /// A client certificate from the test CA with common name `cn` and exactly the subject
    /// alternative names `sans` (`dns:NAME` or `uri:URI`), as a service mesh or a private CA
    /// issues them.
    pub fn client_named(&self, cn: &str, sans: &[&str]) -> Issued {
        Pki::named(&self.ca, cn, sans)
    }

    /// As [`Pki::client_named`], from the other CA.
    pub fn foreign_client_named(&self, cn: &str, sans: &[&str]) -> Issued {
        Pki::named(&self.other_ca, cn, sans)
    }

    fn named(issuer: &Issuer<'static, KeyPair>, cn: &str, sans: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san.split_once(':') {
                Some(("dns", name)) => SanType::DnsName(name.try_into().unwrap()),
                Some(("uri", uri)) => SanType::URI(uri.try_into().unwrap()),
                _ => panic!("not dns:NAME or uri:URI: {san}"),
            })
            .collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    pub fn foreign_client(&self) -> Issued {
        Pki::issue(
            &self.other_ca,
            "foreign",
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
    }

    pub fn files(&self, mtls: bool) -> warden::server::tls::TlsFiles {
        warden::server::tls::TlsFiles {
            cert: self.path("server.crt"),
            key: self.path("server.key"),
            client_ca: mtls.then(|| self.path("ca.pem")),
            client_allow: Vec::new(),
        }
    }

    /// A TLS client trusting the test CA, presenting `identity` if given.
    pub fn connector(&self, identity: Option<&Issued>) -> tokio_rustls::TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(issued) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(issued.cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Connects over TLS and makes one request; any failure (handshake, or the server closing
/// the connection after refusing the client's certificate) is an error.
pub async fn tls_request(
    connector: &tokio_rustls::TlsConnector,
    address: std::net::SocketAddr,
    path: &str,
    body: Option<&str>,
) -> Result<(Reply, Vec<u8>), String> {
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.to_vec())
        .unwrap_or_default();
    let method = if body.is_some() { "POST" } else { "GET" };
    let reply = send_over(stream, method, path, body)
        .await
        .map_err(|e| format!("request: {e}"))?;
    Ok((reply, peer))
}

/// The DER of the first certificate in a PEM text.
pub fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

pub fn warden() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WARDEN_") {
            command.env_remove(key);
        }
    }
    command
}

pub fn bundled_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}
