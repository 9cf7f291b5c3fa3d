//! Connections: how many may be open, how long a client may take to send a request head or
//! leave a keep-alive connection idle, and how each one ends at shutdown.
//!
//! Every accepted connection is registered with its listener's [`Registry`] and carries a
//! [`Conn`]: where it is in its request cycle (sending a request head, being answered, idle
//! between requests) and since when. From that:
//!
//! - a connection still sending its request head `header_timeout` after it was accepted, or
//!   after the first byte that followed an idle pause, is closed: a slow client (slowloris)
//!   holds a connection no longer than that;
//! - a keep-alive connection idle for `idle_timeout` is closed;
//! - at `max_connections`, a new connection makes room by closing the open one nearest its
//!   own header or idle timeout (a slow client before a pooled keep-alive connection); when
//!   every open connection is being answered, the new one is closed at once (refused). So
//!   whatever clients hold open, a new client is served;
//! - at shutdown, connections that are idle or still sending a head close at once; one being
//!   answered gets its answer with `Connection: close`, then closes.
//!
//! A connection has one timer, moved only when it fires, not one per request. A failed
//! `accept` backs off (50 ms, doubling to 1 s) instead of spinning; when the process is out of
//! file descriptors, a connection is closed the same way to free one. Every closing for one of these reasons is counted in `/metrics` and logged (at most
//! once per ten seconds per reason).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::AppState;
use crate::server::metrics::Closed;

/// The connection limits of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest a client may take to send a request head.
    pub header_timeout: Duration,
    /// The longest a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// The most connections open at once on the listener.
    pub max_connections: usize,
}

/// File descriptors kept for everything but connections: policy and data files, the audit
/// log, the watchers, the listeners (half the limit, when that is less).
const RESERVED_FILES: u64 = 128;

impl Limits {
    /// These limits, with `max_connections` lowered if `listeners` listeners at the limit
    /// would run the process out of file descriptors.
    pub(crate) fn fitted(self, listeners: usize) -> Limits {
        let Some(files) = open_file_limit() else {
            return self;
        };
        let listeners = u64::try_from(listeners.max(1)).unwrap_or(1);
        let room = files.saturating_sub(RESERVED_FILES.min(files / 2)) / listeners;
        let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
        if room >= self.max_connections {
            return self;
        }
        tracing::warn!(
            max_connections = self.max_connections,
            open_files = files,
            lowered_to = room,
            "the open-file limit cannot hold `max_connections` connections per listener; raise the limit (ulimit -n, LimitNOFILE=) or lower `max_connections`"
        );
        Limits {
            max_connections: room,
            ..self
        }
    }
}

/// The soft limit of open files, when the platform says.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit};
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft limit of open files to the hard limit: each connection holds a file
/// descriptor, and the common soft limit (1,024) is far below what a server needs. Returns the
/// limit in force afterwards.
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_some() && limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                // An unlimited hard limit may not be a valid soft one (macOS): keep the soft.
                tracing::debug!(%error, "cannot raise the open-file limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// Sending a request head (from accept, or from the first byte after an idle pause).
const HEAD: u8 = 0;
/// A request is being answered.
const BUSY: u8 = 1;
/// Between requests, on a keep-alive connection.
const IDLE: u8 = 2;

/// One connection's place in its request cycle, shared by its I/O, its service and its
/// listener's registry.
#[derive(Debug)]
pub struct Conn {
    phase: AtomicU8,
    /// When the phase began, in nanoseconds after `epoch`.
    since: AtomicU64,
    epoch: Instant,
    /// Requests being answered now: one at most over HTTP/1.1, several over HTTP/2.
    answering: AtomicU32,
    /// Set when the registry closes the connection to make room.
    closing: AtomicBool,
    /// The task reading the connection, woken when it is closed to make room.
    reader: Mutex<Option<Waker>>,
}

/// What a connection's timer finds.
enum Check {
    Expired(Closed),
    /// Look again then.
    At(Instant),
}

impl Conn {
    fn new(epoch: Instant) -> Conn {
        let conn = Conn {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            epoch,
            answering: AtomicU32::new(0),
            closing: AtomicBool::new(false),
            reader: Mutex::new(None),
        };
        conn.since.store(conn.now(), Ordering::Relaxed);
        conn
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    fn since(&self) -> u64 {
        self.since.load(Ordering::Relaxed)
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Bytes arrived: after an idle pause, a request head has begun.
    fn received(&self) {
        if self.phase() == IDLE {
            self.enter(HEAD);
        }
    }

    /// A request head has been read: the request is being answered. When it began does not
    /// matter (a busy connection has no deadline here and is never closed to make room), so
    /// the clock is not read.
    fn answering(&self) {
        self.answering.fetch_add(1, Ordering::Relaxed);
        self.phase.store(BUSY, Ordering::Relaxed);
    }

    /// An answer is made; the connection is idle once no other is being made (HTTP/2).
    fn answered(&self) {
        if self.answering.fetch_sub(1, Ordering::Relaxed) <= 1 {
            self.enter(IDLE);
        }
    }

    /// Whether the connection is being answered now.
    pub fn busy(&self) -> bool {
        self.phase() == BUSY
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Closes the connection at its next read (and wakes the task waiting to read).
    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader().take() {
            reader.wake();
        }
    }

    fn reader(&self) -> MutexGuard<'_, Option<Waker>> {
        // A waker is replaced whole or not at all: a poisoned lock holds a usable value.
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn park(&self, waker: &Waker) {
        let mut reader = self.reader();
        if !reader.as_ref().is_some_and(|r| r.will_wake(waker)) {
            *reader = Some(waker.clone());
        }
    }

    /// When the connection's header or idle timeout expires (nanoseconds after `epoch`); a
    /// busy connection has none.
    fn deadline(&self, limits: &Limits) -> u64 {
        let limit = match self.phase() {
            HEAD => limits.header_timeout,
            IDLE => limits.idle_timeout,
            _ => return u64::MAX,
        };
        self.since()
            .saturating_add(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX))
    }

    fn check(&self, limits: &Limits, now: Instant) -> Check {
        let since = self.epoch + Duration::from_nanos(self.since());
        let (limit, reason) = match self.phase() {
            HEAD => (limits.header_timeout, Closed::HeaderTimeout),
            IDLE => (limits.idle_timeout, Closed::IdleTimeout),
            // Being answered: the request time limit applies. Look again a timeout later.
            _ => return Check::At(now + limits.header_timeout.min(limits.idle_timeout)),
        };
        let deadline = since + limit;
        if now >= deadline {
            Check::Expired(reason)
        } else {
            Check::At(deadline)
        }
    }
}

/// The connections open on one listener.
pub struct Registry {
    limits: Limits,
    epoch: Instant,
    state: Arc<AppState>,
    next: AtomicU64,
    open: Mutex<Open>,
    /// Per [`Warning`], when it was last logged (seconds after `epoch`, plus one; 0: never).
    warned: [AtomicU64; 4],
}

#[derive(Default)]
struct Open {
    conns: HashMap<u64, Arc<Conn>>,
    /// How many of `conns` are closing to make room.
    closing: usize,
}

/// The reasons a connection is closed or refused that are worth a warning.
#[derive(Clone, Copy)]
enum Warning {
    HeaderTimeout = 0,
    Evicted = 1,
    Refused = 2,
    AcceptFailed = 3,
}

impl Registry {
    pub fn new(limits: Limits, state: Arc<AppState>) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            epoch: Instant::now(),
            state,
            next: AtomicU64::new(0),
            open: Mutex::new(Open::default()),
            warned: Default::default(),
        })
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Every update leaves the table whole: a poisoned lock holds a usable value.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a warning of this kind is due (not logged in the last ten seconds).
    fn warn_due(&self, warning: Warning) -> bool {
        let Some(last) = self.warned.get(warning as usize) else {
            return false;
        };
        let now = self.epoch.elapsed().as_secs() + 1;
        let before = last.load(Ordering::Relaxed);
        (before == 0 || now >= before + 10)
            && last
                .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Registers a new connection, making room if the listener is full. `None`: every open
    /// connection is being answered, and the new one is refused.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let metrics = &self.state.metrics;
        let conn = Arc::new(Conn::new(self.epoch));
        let mut open = self.open();
        if open.conns.len() - open.closing >= self.limits.max_connections {
            if !self.make_room(&mut open) {
                drop(open);
                metrics.connection_refused();
                if self.warn_due(Warning::Refused) {
                    tracing::warn!(
                        max_connections = self.limits.max_connections,
                        refused = metrics.connections_refused(),
                        "connection limit reached and every connection is being answered: refusing new connections"
                    );
                }
                return None;
            }
            if self.warn_due(Warning::Evicted) {
                tracing::warn!(
                    max_connections = self.limits.max_connections,
                    closed = metrics.connections_closed(Closed::Evicted),
                    "connection limit reached: closing the connections nearest their header or idle timeout to make room"
                );
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        open.conns.insert(id, conn.clone());
        drop(open);
        metrics.connection_opened();
        Some(Slot {
            conn,
            id,
            registry: self.clone(),
        })
    }

    /// Closes the connection not being answered that is nearest its own timeout (header or
    /// idle): the one that would be closed soonest anyway. A client dribbling a request head
    /// goes before a keep-alive connection a client's pool holds. False if every connection
    /// is being answered.
    ///
    /// Only a sample is looked at (the table's order is a hash's, so the sample changes as
    /// connections come and go): a flood of new connections at the limit must not cost a
    /// walk over every open one each.
    fn make_room(&self, open: &mut Open) -> bool {
        const LOOKED_AT: usize = 256;
        const CANDIDATES: usize = 64;
        let limits = &self.limits;
        let victim = open
            .conns
            .values()
            .take(LOOKED_AT)
            .filter(|c| !c.busy() && !c.closing())
            .take(CANDIDATES)
            .min_by_key(|c| c.deadline(limits));
        let Some(victim) = victim else {
            return false;
        };
        victim.close();
        open.closing += 1;
        self.state.metrics.connection_closed(Closed::Evicted);
        true
    }

    fn remove(&self, id: u64) {
        let mut open = self.open();
        if let Some(conn) = open.conns.remove(&id)
            && conn.closing()
        {
            open.closing = open.closing.saturating_sub(1);
        }
        drop(open);
        self.state.metrics.connection_ended();
    }

    /// A connection's timer expired.
    fn expired(&self, reason: Closed) {
        let metrics = &self.state.metrics;
        metrics.connection_closed(reason);
        match reason {
            Closed::HeaderTimeout if self.warn_due(Warning::HeaderTimeout) => tracing::warn!(
                header_timeout_ms = self.limits.header_timeout.as_millis(),
                closed = metrics.connections_closed(reason),
                "closing connections that did not send a request head in time (slow or stalled clients)"
            ),
            _ => tracing::debug!(?reason, "connection closed"),
        }
    }

    /// `accept` failed with something else than a connection that went away.
    fn accept_failed(&self, error: &io::Error, retry: Duration) {
        self.state.metrics.accept_failed();
        #[cfg(unix)]
        {
            use rustix::io::Errno;
            let errno = Errno::from_io_error(error);
            if errno == Some(Errno::MFILE) || errno == Some(Errno::NFILE) {
                // Out of file descriptors: free one.
                self.make_room(&mut self.open());
            }
        }
        if self.warn_due(Warning::AcceptFailed) {
            tracing::error!(
                %error,
                retry_ms = retry.as_millis(),
                open = self.open().conns.len(),
                "cannot accept connections"
            );
        }
    }
}

/// A connection's place in its registry; leaves it when dropped.
pub(crate) struct Slot {
    conn: Arc<Conn>,
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// A registered connection's I/O: its reads mark where a request head begins, and it reads
/// as an error once the registry closes it to make room.
pub struct Counted<T> {
    io: T,
    slot: Slot,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let conn = &this.slot.conn;
        let closed = || {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for a new connection",
            )))
        };
        if conn.closing() {
            return closed();
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    conn.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                conn.park(cx.waker());
                // Closed between the first look and parking: the wake may have gone to the
                // previous waker.
                if conn.closing() {
                    return closed();
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A connection that knows its [`Conn`]: a registered one, or TLS over a registered one.
pub trait Tracked {
    fn conn(&self) -> &Arc<Conn>;
}

impl<T> Tracked for Counted<T> {
    fn conn(&self) -> &Arc<Conn> {
        &self.slot.conn
    }
}

impl<T> Tracked for tokio_rustls::server::TlsStream<Counted<T>> {
    fn conn(&self) -> &Arc<Conn> {
        self.get_ref().0.conn()
    }
}

/// A socket listener whose `accept` errors are the caller's to handle.
pub(crate) trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Addr: Send + fmt::Debug + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        let (stream, address) = tokio::net::TcpListener::accept(self).await?;
        // Responses are small and written whole; without Nagle they leave at once.
        let _ = stream.set_nodelay(true);
        Ok((stream, address))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

#[cfg(unix)]
impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        tokio::net::UnixListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        tokio::net::UnixListener::local_addr(self)
    }
}

/// A listener whose connections are registered (and refused when there is no room).
pub(crate) struct Admitting<A> {
    inner: A,
    registry: Arc<Registry>,
    backoff: Duration,
}

impl<A> Admitting<A> {
    pub fn new(inner: A, registry: Arc<Registry>) -> Admitting<A> {
        Admitting {
            inner,
            registry,
            backoff: Duration::ZERO,
        }
    }
}

/// Errors of one connection that went away before it was accepted: the next may do.
fn gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

impl<A: Accept> Listener for Admitting<A> {
    type Io = Counted<A::Io>;
    type Addr = A::Addr;

    // Cancel-safe, as the TLS listener needs: nothing is lost when a wait is dropped.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((io, address)) => {
                    self.backoff = Duration::ZERO;
                    self.registry.state.metrics.connection_accepted();
                    if let Some(slot) = self.registry.admit() {
                        return (Counted { io, slot }, address);
                    }
                    // Refused: dropping `io` closes it.
                }
                Err(error) if gone(&error) => {}
                Err(error) => {
                    self.backoff =
                        (self.backoff * 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
                    self.registry.accept_failed(&error, self.backoff);
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves `app` on `listener` until `shutdown` turns true; then closes idle connections and
/// those still sending a request head at once, lets the requests being answered finish (each
/// answer says `Connection: close`), and returns when every connection has closed.
pub fn serve<L>(
    mut listener: L,
    app: Router,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>>
where
    L: Listener,
    L::Io: Tracked,
{
    tokio::spawn(async move {
        // Every connection task holds a receiver; `closed` resolves when the last one ends.
        let (done, open) = watch::channel(());
        loop {
            let (io, _address) = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                accepted = listener.accept() => accepted,
            };
            tokio::spawn(connection(
                io,
                app.clone(),
                registry.clone(),
                shutdown.clone(),
                open.clone(),
            ));
        }
        drop(listener);
        drop(open);
        done.closed().await;
        Ok(())
    })
}

/// Serves one connection: HTTP/1.1 with keep-alive, or HTTP/2 (prior knowledge, or ALPN `h2`
/// on TLS), under the header and idle timeouts.
async fn connection<I>(
    io: I,
    app: Router,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) where
    I: Tracked + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = io.conn().clone();
    let limits = registry.limits;
    let service = Answering {
        app,
        conn: conn.clone(),
    };
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut http = pin!(builder.serve_connection(TokioIo::new(io), service));
    let first = match conn.check(&limits, Instant::now()) {
        Check::At(at) => at,
        Check::Expired(_) => Instant::now(),
    };
    let mut timer = pin!(tokio::time::sleep_until(first.into()));
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            result = http.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = timer.as_mut() => match conn.check(&limits, Instant::now()) {
                Check::Expired(reason) => {
                    registry.expired(reason);
                    break;
                }
                Check::At(at) => timer.as_mut().reset(at.into()),
            },
            _ = shutdown.wait_for(|stop| *stop), if !draining => {
                if !conn.busy() {
                    break;
                }
                // The answer in progress says `Connection: close`, then the connection ends.
                draining = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The application, marking when each request is being answered.
#[derive(Clone)]
struct Answering {
    app: Router,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Answering {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: hyper::Request<Incoming>) -> Answer {
        self.conn.answering();
        // A router is always ready (its `poll_ready` returns at once), so it is called as is.
        let mut app = self.app.clone();
        Answer {
            inner: tower_service::Service::call(&mut app, request),
            conn: self.conn.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer being made; the connection is idle once it is made.
    struct Answer {
        #[pin]
        inner: RouteFuture<Infallible>,
        conn: Arc<Conn>,
    }
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        this.conn.answered();
        Poll::Ready(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 2,
        }
    }

    #[test]
    fn each_phase_has_its_deadline() {
        let epoch = Instant::now();
        let conn = Conn::new(epoch);
        let start = epoch + Duration::from_nanos(conn.since());
        let after = |s: u64| start + Duration::from_secs(s);
        assert!(matches!(conn.check(&limits(), after(9)), Check::At(at) if at == after(10)));
        assert!(matches!(
            conn.check(&limits(), after(10)),
            Check::Expired(Closed::HeaderTimeout)
        ));
        conn.answering();
        assert!(conn.busy());
        assert!(matches!(conn.check(&limits(), after(100)), Check::At(at) if at == after(110)));
        conn.enter(IDLE);
        let idle = epoch + Duration::from_nanos(conn.since());
        assert!(matches!(
            conn.check(&limits(), idle + Duration::from_secs(60)),
            Check::Expired(Closed::IdleTimeout)
        ));
        // A byte after the pause starts a head: the header timeout applies again.
        conn.received();
        assert_eq!(conn.phase(), HEAD);
    }
}
