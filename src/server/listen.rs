//! Where the server listens: a TCP address or a Unix domain socket, either of them optionally
//! behind TLS ([`super::tls`]).
//!
//! A listener is written `IP:PORT` (`127.0.0.1:8181`, `[::1]:8181`) or `unix:PATH`
//! (`unix:/run/warden/warden.sock`). A Unix socket is the cheapest sidecar transport: no TCP
//! stack, no port to allocate, and file permissions decide who may connect.
//!
//! Binding a Unix socket whose file is left over from a process that died without cleaning up
//! (SIGKILL, a crash) removes the stale file first — but only when it is a socket and nothing
//! answers on it: a live server's socket is "in use", and a file that is not a socket is never
//! removed. The socket file gets the configured mode (`unix_socket_mode`, default `0660`) right
//! after it is created, and is removed at shutdown if it is still the one this server created.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::connections::{self, Accept, Admitting, Registry};
use crate::server::tls::{TlsListener, TlsState};

/// A listener address, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Listen {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Listen::Tcp(address) => Some(*address),
            Listen::Unix(_) => None,
        }
    }

    /// The socket file, if this is a Unix socket.
    pub fn unix(&self) -> Option<&Path> {
        match self {
            Listen::Tcp(_) => None,
            Listen::Unix(path) => Some(path),
        }
    }
}

impl FromStr for Listen {
    type Err = String;

    /// `IP:PORT` or `unix:PATH`. The error says what was expected, without naming the key.
    fn from_str(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!(
                    "`{text}` names no socket file; write e.g. `unix:/run/warden/warden.sock`"
                ));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>().map(Listen::Tcp).map_err(|_| {
            format!(
                "`{text}` is not an address; write IP:PORT, e.g. `127.0.0.1:8181`, \
                 or unix:PATH, e.g. `unix:/run/warden/warden.sock`"
            )
        })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for Listen {
    fn from(address: SocketAddr) -> Listen {
        Listen::Tcp(address)
    }
}

/// The socket file this server created; removed when dropped, if it is still that file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    #[cfg(unix)]
    identity: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Another server may have replaced the file since (after removing ours as stale):
            // that one is not ours to remove.
            if let Ok(metadata) = std::fs::symlink_metadata(&self.path)
                && (metadata.dev(), metadata.ino()) == self.identity
            {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A bound listener, not yet serving.
pub enum Bound {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, SocketFile),
}

/// Binds `listen`. A Unix socket gets `mode` (`0o660`, ...).
pub async fn bind(listen: &Listen, mode: u32) -> std::io::Result<Bound> {
    match listen {
        Listen::Tcp(address) => Ok(Bound::Tcp(tokio::net::TcpListener::bind(address).await?)),
        #[cfg(unix)]
        Listen::Unix(path) => bind_unix(path, mode),
        #[cfg(not(unix))]
        Listen::Unix(_) => {
            let _ = mode;
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "Unix domain sockets are not supported on this platform",
            ))
        }
    }
}

#[cfg(unix)]
fn bind_unix(path: &Path, mode: u32) -> std::io::Result<Bound> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    match std::fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.file_type().is_socket() => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "the path exists and is not a socket; it is left alone",
            ));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::AddrInUse,
                    "another process is listening on this socket",
                ));
            }
            // Nobody listens: the file is left over from a server that did not clean up.
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing a stale socket file");
                std::fs::remove_file(path)?;
            }
            Err(error) => return Err(error),
        },
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    let metadata = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        identity: (metadata.dev(), metadata.ino()),
    };
    Ok(Bound::Unix(listener, file))
}

impl Bound {
    /// The address actually bound (the port chosen for `:0`).
    pub fn local(&self, configured: &Listen) -> std::io::Result<Listen> {
        match self {
            Bound::Tcp(listener) => listener.local_addr().map(Listen::Tcp),
            #[cfg(unix)]
            Bound::Unix(..) => Ok(configured.clone()),
        }
    }

    /// Serves `app` on this listener (through TLS when `tls` is set), its connections
    /// registered with `connections`, until `shutdown` turns true; then finishes the requests
    /// in flight (see [`connections::serve`]). The socket file, if any, is returned to be kept
    /// (and removed) by the caller.
    pub fn serve(
        self,
        app: Router,
        tls: Option<(Arc<TlsState>, Duration)>,
        connections: Arc<Registry>,
        shutdown: watch::Receiver<bool>,
    ) -> (JoinHandle<std::io::Result<()>>, Option<SocketFile>) {
        match self {
            Bound::Tcp(listener) => (spawn(listener, app, tls, connections, shutdown), None),
            #[cfg(unix)]
            Bound::Unix(listener, file) => {
                (spawn(listener, app, tls, connections, shutdown), Some(file))
            }
        }
    }
}

fn spawn<A: Accept>(
    listener: A,
    app: Router,
    tls: Option<(Arc<TlsState>, Duration)>,
    connections: Arc<Registry>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let listener = Admitting::new(listener, connections.clone());
    match tls {
        None => connections::serve(listener, app, connections, shutdown),
        Some((state, timeout)) => connections::serve(
            TlsListener::new(listener, state, timeout),
            app,
            connections,
            shutdown,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in [
            "127.0.0.1:8181",
            "[::1]:0",
            "unix:/run/warden.sock",
            "unix:rel.sock",
        ] {
            let listen: Listen = text.parse().unwrap();
            assert_eq!(listen.to_string(), text);
        }
        assert!(
            "unix:"
                .parse::<Listen>()
                .unwrap_err()
                .contains("no socket file")
        );
        assert!(
            "localhost:80"
                .parse::<Listen>()
                .unwrap_err()
                .contains("IP:PORT")
        );
    }
}
