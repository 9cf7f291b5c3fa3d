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
//! removed. The socket file has the configured mode (`unix_socket_mode`, default `0660`) from
//! the moment it appears at its path ([`create_socket`]), and is removed at shutdown if it is
//! still the one this server created.

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
    use std::os::unix::fs::FileTypeExt;

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
    let (listener, identity) = create_socket(path, mode)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        identity,
    };
    Ok(Bound::Unix(listener, file))
}

/// Creates a socket listening at `path` that has `mode` from the moment it appears there, and
/// returns it with the file's identity (device, inode).
///
/// bind(2) creates the file with the umask applied, and a chmod after it leaves a moment in
/// which the socket at `path` has the wrong mode; setting the umask around bind would change it
/// for every thread of the process. So the socket is bound in a new directory beside `path`
/// that only this user can enter (mkdir, `0700`), given its mode there, then hard-linked to
/// `path` (same directory, so same file system; link(2) fails rather than replace a file that
/// appeared there meanwhile), and the temporary name and directory are removed.
#[cfg(unix)]
fn create_socket(
    path: &Path,
    mode: u32,
) -> std::io::Result<(tokio::net::UnixListener, (u64, u64))> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).map_err(|e| Error::other(e.to_string()))?;
    // Short: the temporary path must fit the socket address limit too.
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = parent.join(format!(".w{name}"));
    // Fails if the name exists: a directory that is not ours is never used (nor removed).
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let staging = Staging { dir };
    // The umask may have taken the owner's own write or search bit.
    std::fs::set_permissions(&staging.dir, std::fs::Permissions::from_mode(0o700))?;
    let staged = staging.socket();
    let listener = tokio::net::UnixListener::bind(&staged)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
    let metadata = std::fs::symlink_metadata(&staged)?;
    std::fs::hard_link(&staged, path).map_err(|error| match error.kind() {
        ErrorKind::AlreadyExists => Error::new(
            ErrorKind::AddrInUse,
            "another process created a file at this path while the socket was being made",
        ),
        _ => error,
    })?;
    Ok((listener, (metadata.dev(), metadata.ino())))
}

/// The private directory a socket is bound in before it is linked to its path; removed, with
/// the temporary name, when dropped.
#[cfg(unix)]
struct Staging {
    dir: PathBuf,
}

#[cfg(unix)]
impl Staging {
    fn socket(&self) -> PathBuf {
        self.dir.join("s")
    }
}

#[cfg(unix)]
impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_dir(&self.dir);
    }
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
