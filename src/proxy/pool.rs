//! Keep-alive connections to servers, one idle list per server. An HTTP/1 connection goes back to
//! the list only after its response body has been read to the end, so a reused connection is
//! always clean. An HTTP/2 connection (`proto h2`, or `h2` chosen by ALPN) is shared: requests
//! of several clients run on it as streams at once.

use super::body::ProxyBody;
use super::h1client::{self, Lean, LeanBody, LeanError};
use super::upstream::{ServerOpts, Want};
use crate::config::snapshot::ServerTls;
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The shortest sweep period, whatever `pool_purge_delay` says.
const MIN_SWEEP: Duration = Duration::from_millis(100);
/// Bound on idle connections kept per server.
const IDLE_MAX: usize = 1024;
/// How long a returned connection may take to become ready for its next request before it is
/// dropped (its dispatcher normally gets there right after the response's last byte).
const PARK_LIMIT: Duration = Duration::from_secs(1);
/// Streams put on one shared HTTP/2 connection before the next request opens another, as
/// HAProxy spreads streams over several connections. RFC 9113 asks servers to allow at least
/// 100 at once (nginx allows 128): past the server's own limit, h2 would only queue them.
const H2_STREAMS_MAX: u32 = 100;

/// One server connection, HTTP/1.1 or HTTP/2, and how many requests it has carried.
#[derive(Debug)]
pub struct Sender {
    tx: Tx,
    served: u32,
    /// The proxy thread that opened it ([`super::workers::here`]): its socket is in that thread's
    /// reactor.
    thread: u16,
    /// Identifies a shared HTTP/2 connection in its pool.
    id: u64,
    /// The connection's own address (`%bi:%bp` in logs).
    local: Option<SocketAddr>,
    /// The stream this sender holds on a shared HTTP/2 connection, counted until it is dropped
    /// (after the response's last byte, or on failure).
    _stream: Option<Stream>,
    /// Whose abandon resets the connection (HTTP/1 through hyper: see `abandon`).
    abandon: super::abandon::Abandon,
}

/// One open stream on a shared HTTP/2 connection.
#[derive(Debug)]
struct Stream(Arc<std::sync::atomic::AtomicU32>);

impl Stream {
    fn open(count: &Arc<std::sync::atomic::AtomicU32>) -> Self {
        count.fetch_add(1, Relaxed);
        Stream(count.clone())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug)]
enum Tx {
    H1(http1::SendRequest<ProxyBody>),
    H2(http2::SendRequest<ProxyBody>),
    /// A plain HTTP/1.1 connection driven from the requesting task (`h1client`); it becomes
    /// `H1` for a request that path does not carry.
    Lean(Lean),
}

/// A response body from either client.
#[derive(Debug)]
pub enum UpBody {
    Hyper(Incoming),
    Lean(LeanBody),
}

impl http_body::Body for UpBody {
    type Data = bytes::Bytes;
    type Error = super::body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpBody::Hyper(b) => std::pin::Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpBody::Lean(b) => std::pin::Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Hyper(b) => b.is_end_stream(),
            UpBody::Lean(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            UpBody::Hyper(b) => b.size_hint(),
            UpBody::Lean(b) => b.size_hint(),
        }
    }
}

/// A request that failed on a server connection, from either client.
#[derive(Debug)]
pub enum SendError {
    Hyper(TrySendError<http::Request<ProxyBody>>),
    Lean(h1client::Failed<http::Request<ProxyBody>>),
}

impl SendError {
    /// The request, when it never left.
    pub fn message(&self) -> Option<&http::Request<ProxyBody>> {
        match self {
            SendError::Hyper(e) => e.message(),
            SendError::Lean(e) => e.unsent.as_ref(),
        }
    }

    pub fn take_message(&mut self) -> Option<http::Request<ProxyBody>> {
        match self {
            SendError::Hyper(e) => e.take_message(),
            SendError::Lean(e) => e.unsent.take(),
        }
    }

    /// The request as it was sent, when the lean path gave it back after a failure (see
    /// [`Sender::keeps_sent`]).
    pub fn take_sent(&mut self) -> Option<http::Request<ProxyBody>> {
        match self {
            SendError::Hyper(_) => None,
            SendError::Lean(e) => e.sent.take().map(|r| *r),
        }
    }

    pub fn has_sent(&self) -> bool {
        matches!(self, SendError::Lean(e) if e.sent.is_some())
    }

    /// The server answered something that is not HTTP.
    pub fn is_parse(&self) -> bool {
        match self {
            SendError::Hyper(e) => e.error().is_parse(),
            SendError::Lean(e) => matches!(e.error, LeanError::Parse(_)),
        }
    }

    /// The connection ended before any response: closed, reset or shut by the server.
    pub fn broke_before_response(&self) -> bool {
        let io = match self {
            SendError::Hyper(e) => {
                let e = e.error();
                if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
                    return true;
                }
                std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>())
            }
            SendError::Lean(e) => match &e.error {
                LeanError::Closed | LeanError::Incomplete => return true,
                LeanError::Io(io) => Some(io),
                LeanError::Parse(_) => None,
            },
        };
        io.is_some_and(|io| {
            use std::io::ErrorKind::*;
            matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
        })
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Hyper(e) => e.error().fmt(f),
            SendError::Lean(e) => e.error.fmt(f),
        }
    }
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match &self.tx {
            Tx::H1(s) => s.is_closed(),
            Tx::H2(s) => s.is_closed(),
            Tx::Lean(l) => l.is_closed(),
        }
    }

    fn is_ready(&self) -> bool {
        match &self.tx {
            Tx::H1(s) => s.is_ready(),
            Tx::H2(s) => !s.is_closed(),
            Tx::Lean(l) => !l.is_closed(),
        }
    }

    /// The connection's local address, the source the server sees.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The server speaks HTTP/2 on this connection.
    pub fn is_h2(&self) -> bool {
        matches!(self.tx, Tx::H2(_))
    }

    /// The next request's flag (`None`: a request without a streamed body): raised, the
    /// connection ends with a reset. Not on a shared HTTP/2 connection, whose other streams
    /// are not abandoned.
    pub fn carry(&self, flag: Option<Arc<AtomicBool>>) {
        if !self.is_h2() {
            self.abandon.carry(flag);
        }
    }

    /// Whether a failed send of `req` gives the request back even after it left
    /// ([`SendError::take_sent`]): the lean path carries it. The caller then needs no copy of
    /// it for a replay.
    pub fn keeps_sent(&self, req: &http::Request<ProxyBody>) -> bool {
        matches!(self.tx, Tx::Lean(_)) && h1client::fits(req)
    }

    /// Sends one request; an error that carries the request back means it never left.
    ///
    /// A plain function over the one send it starts: an `async fn` would hold the request beside
    /// the send that holds it too, in every request's future (bench/PROFILE.md, session 11).
    #[allow(clippy::result_large_err)] // SendError as before; a closure now builds it
    pub fn try_send_request(
        &mut self,
        req: http::Request<ProxyBody>,
    ) -> impl Future<Output = Result<http::Response<UpBody>, SendError>> + '_ {
        use futures_util::future::{Either, FutureExt, TryFutureExt};
        self.served = self.served.saturating_add(1);
        if matches!(self.tx, Tx::Lean(_)) && !h1client::fits(&req) {
            // hyper takes the connection over (a request body, an upgrade, ...), for good.
            return Either::Left(Box::pin(self.take_over(req)));
        }
        Either::Right(match &mut self.tx {
            Tx::H1(s) => Either::Left(Either::Left(
                s.try_send_request(req).map_ok(|r| r.map(UpBody::Hyper)).map_err(SendError::Hyper),
            )),
            Tx::H2(s) => Either::Left(Either::Right(
                s.try_send_request(req).map_ok(|r| r.map(UpBody::Hyper)).map_err(SendError::Hyper),
            )),
            Tx::Lean(l) => Either::Right(l.send(req).map(|r| r.map(|r| r.map(UpBody::Lean)).map_err(SendError::Lean))),
        })
    }

    /// The lean connection handed to hyper, then `req` sent through it: the rare path, boxed.
    async fn take_over(&mut self, req: http::Request<ProxyBody>) -> Result<http::Response<UpBody>, SendError> {
        let Tx::Lean(lean) = std::mem::replace(&mut self.tx, Tx::Lean(Lean::closed())) else { unreachable!() };
        let Some(io) = lean.into_io() else {
            return Err(SendError::Lean(h1client::Failed { error: LeanError::Closed, unsent: Some(req), sent: None }));
        };
        match Box::pin(handshake(super::abandon::AbortIo::new(io, self.abandon.clone()), false)).await {
            Ok(tx) => self.tx = tx,
            Err(e) => {
                let error = LeanError::Io(std::io::Error::other(e.to_string()));
                return Err(SendError::Lean(h1client::Failed { error, unsent: Some(req), sent: None }));
            }
        }
        match &mut self.tx {
            Tx::H1(s) => s.try_send_request(req).await.map(|r| r.map(UpBody::Hyper)).map_err(SendError::Hyper),
            Tx::H2(s) => s.try_send_request(req).await.map(|r| r.map(UpBody::Hyper)).map_err(SendError::Hyper),
            Tx::Lean(l) => l.send(req).await.map(|r| r.map(UpBody::Lean)).map_err(SendError::Lean),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection refused")]
    Refused,
    #[error("connect timeout")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// A connect that failed, with the local address it had (`%bi:%bp` of its log line, as
/// HAProxy's) when the kernel had picked one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ConnectFailure {
    pub error: ConnectError,
    pub local: Option<SocketAddr>,
}

/// An idle connection and since when.
type Idle = (Sender, Instant);

/// This proxy thread's index (at most 64 of them).
fn here_u16() -> u16 {
    u16::try_from(super::workers::here()).unwrap_or(u16::MAX)
}

/// A shared HTTP/2 connection: requests take clones of its sender.
#[derive(Debug)]
struct Shared {
    tx: http2::SendRequest<ProxyBody>,
    id: u64,
    local: Option<SocketAddr>,
    served: u32,
    /// Last taken or released: it is purged `pool_purge_delay` after.
    since: Instant,
    /// Streams open on it now.
    streams: Arc<std::sync::atomic::AtomicU32>,
}

#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    tls: Option<ServerTls>,
    /// `proto h2`: HTTP/2 whatever ALPN says.
    h2: bool,
    /// Idle connections, oldest first.
    idle: Mutex<Vec<Idle>>,
    shared: Mutex<Vec<Shared>>,
    next_id: AtomicU64,
    /// What a reload may change, shared with the pools kept per SNI value and per destination.
    settings: Arc<Settings>,
    /// A sweeper task is running (only while connections are idle).
    sweeping: AtomicBool,
    /// Pools of a server whose `sni` is an expression, one per SNI value: connections are
    /// reused only for requests with the same SNI, as in HAProxy.
    by_sni: Mutex<HashMap<String, Arc<Pool>>>,
    /// Pools of a server at 0.0.0.0 or `::` (HAProxy's "the client's destination"), one per
    /// destination: a connection is reused only for the same one.
    by_dst: Mutex<HashMap<SocketAddr, Arc<Pool>>>,
}

/// A server's settings that a reload may change (pools outlive reloads). A pool kept per SNI
/// value or per destination shares its server pool's, so a reload reaches it too: each
/// connect, reuse and purge reads them then.
#[derive(Debug, Default)]
struct Settings {
    /// `pool_purge_delay` in ms: idle connections older than this are closed.
    max_age_ms: AtomicU64,
    /// `pool_max_conn`, `max_reuse`.
    opts: Mutex<ServerOpts>,
    /// The backend's `option srvtcpka`: `SO_KEEPALIVE` on new connections.
    keepalive: AtomicBool,
    /// `source`: the local address new connections are bound to.
    source: Mutex<Option<Arc<super::source::Source>>>,
}

/// Pools kept per server for SNI values, and for destinations. Past it, pools nobody uses and
/// with no connection kept make room; if none does, a request with a new value or destination
/// gets a pool (a connection) of its own.
const CHILD_POOLS_MAX: usize = 1024;

/// Connections a client connection keeps for itself (`http_reuse = "never"`), by pool.
#[derive(Debug, Default)]
pub struct Private(Mutex<Vec<(std::sync::Weak<Pool>, Sender)>>);

impl Private {
    /// The open connection this client connection keeps to `pool`'s server, if any, once its
    /// dispatcher is ready (it may not have seen the end of the last response yet).
    pub async fn take(&self, pool: &Arc<Pool>) -> Option<Sender> {
        let mut s = {
            let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
            v.retain(|(p, s)| p.strong_count() > 0 && !s.is_closed());
            let i = v.iter().position(|(p, _)| std::ptr::eq(p.as_ptr(), Arc::as_ptr(pool)))?;
            v.swap_remove(i).1
        };
        let ready = match &mut s.tx {
            Tx::H1(tx) => tokio::time::timeout(PARK_LIMIT, tx.ready()).await.is_ok_and(|r| r.is_ok()),
            Tx::H2(tx) => !tx.is_closed(),
            Tx::Lean(l) => !l.is_closed(),
        };
        ready.then_some(s)
    }

    /// Keeps a connection whose exchange ended cleanly (one per server is enough: HTTP/1
    /// requests of one client connection come one after the other).
    pub fn put(&self, pool: &Arc<Pool>, s: Sender) {
        if s.is_closed() || !pool.reusable(s.served) {
            return;
        }
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|(p, _)| !std::ptr::eq(p.as_ptr(), Arc::as_ptr(pool)));
        v.push((Arc::downgrade(pool), s));
    }
}

/// HTTP/1.1 handshake on a connected stream; the connection task runs until the server or the
/// last sender closes it.
async fn handshake<I>(io: I, h2: bool) -> Result<Tx, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("server h2 connection ended: {e}");
            }
        });
        return Ok(Tx::H2(sender));
    }
    let (sender, conn) = http1::Builder::new().handshake(TokioIo::new(io)).await.map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("server connection ended: {e}");
        }
    });
    Ok(Tx::H1(sender))
}

/// The TLS settings to use: `proto h2` offers only `h2` in ALPN, as HAProxy does.
fn tls_for(tls: Option<ServerTls>, h2: bool) -> Option<ServerTls> {
    let mut tls = tls?;
    if h2 {
        let mut config = (*tls.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        tls.config = Arc::new(config);
    }
    Some(tls)
}

impl Pool {
    pub fn new(addr: SocketAddr, tls: Option<ServerTls>, h2: bool, max_age: Duration) -> Self {
        let pool = Self::with_settings(addr, tls_for(tls, h2), h2, Arc::default());
        pool.set_max_age(max_age);
        pool
    }

    /// A pool whose TLS settings are final (`tls_for` applied).
    fn with_settings(addr: SocketAddr, tls: Option<ServerTls>, h2: bool, settings: Arc<Settings>) -> Self {
        Self {
            addr,
            tls,
            h2,
            idle: Mutex::new(Vec::new()),
            shared: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            settings,
            sweeping: AtomicBool::new(false),
            by_sni: Mutex::new(HashMap::new()),
            by_dst: Mutex::new(HashMap::new()),
        }
    }

    /// The pool for connections whose TLS handshake sends `name` as SNI (a server's `sni`
    /// expression evaluated for a request).
    pub fn for_sni(&self, name: &str) -> Option<Arc<Pool>> {
        let tls = self.tls.as_ref()?;
        self.child(&self.by_sni, name, || {
            let sni = rustls_pki_types::ServerName::try_from(name.to_string()).ok()?;
            Some((self.addr, Some(ServerTls { sni, ..tls.clone() })))
        })
    }

    /// For a server at 0.0.0.0 or `::`: the pool for connections to `dst` (the request's
    /// destination address; the server's port unless it is 0, HAProxy's "the client's port").
    /// `None` for any other server.
    pub fn for_dst(&self, dst: SocketAddr) -> Option<Arc<Pool>> {
        if !self.addr.ip().is_unspecified() {
            return None;
        }
        let to = SocketAddr::new(dst.ip(), if self.addr.port() == 0 { dst.port() } else { self.addr.port() });
        self.child(&self.by_dst, &to, || Some((to, self.tls.clone())))
    }

    /// The pool kept in `pools` under `key`, else a new one at the address and with the TLS
    /// settings `make` gives (`None`: no pool), sharing this pool's settings. A full map first
    /// drops the pools nobody uses and with no connection kept (the key may come from the
    /// client: a destination set from its Host header); still full, the new pool is not kept.
    fn child<Q>(
        &self,
        pools: &Mutex<HashMap<Q::Owned, Arc<Pool>>>,
        key: &Q,
        make: impl FnOnce() -> Option<(SocketAddr, Option<ServerTls>)>,
    ) -> Option<Arc<Pool>>
    where
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Hash + Eq,
    {
        let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pools.get(key) {
            return Some(p.clone());
        }
        let (addr, tls) = make()?;
        let p = Arc::new(Pool::with_settings(addr, tls, self.h2, self.settings.clone()));
        if pools.len() >= CHILD_POOLS_MAX {
            pools.retain(|_, p| p.in_use());
        }
        if pools.len() < CHILD_POOLS_MAX {
            pools.insert(key.to_owned(), p.clone());
        }
        Some(p)
    }

    /// Held by a request or a task, or keeping connections (its own or its children's): a
    /// kept pool that is not can be dropped without losing anything.
    fn in_use(self: &Arc<Self>) -> bool {
        fn any<K>(m: &Mutex<HashMap<K, Arc<Pool>>>) -> bool {
            !m.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
        }
        Arc::strong_count(self) > 1 || self.idle_count() > 0 || any(&self.by_sni) || any(&self.by_dst)
    }

    /// The backend's `pool_purge_delay` (pools outlive reloads that may change it).
    pub fn set_max_age(&self, d: Duration) {
        self.settings.max_age_ms.store(d.as_millis() as u64, Relaxed);
    }

    /// `source` (pools outlive reloads that may change it).
    pub fn set_source(&self, source: Option<Arc<super::source::Source>>) {
        *self.settings.source.lock().unwrap_or_else(|p| p.into_inner()) = source;
    }

    fn source(&self) -> Option<Arc<super::source::Source>> {
        self.settings.source.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The backend's `option srvtcpka` (pools outlive reloads that may change it).
    pub fn set_keepalive(&self, on: bool) {
        self.settings.keepalive.store(on, Relaxed);
    }

    /// The server's `pool_max_conn` and `max_reuse` (and `pool_purge_delay` when it has one).
    pub fn set_opts(&self, opts: &ServerOpts) {
        if let Some(d) = opts.pool_purge_delay {
            self.set_max_age(d);
        }
        *self.settings.opts.lock().unwrap_or_else(|p| p.into_inner()) = opts.clone();
    }

    fn reusable(&self, served: u32) -> bool {
        self.settings.opts.lock().unwrap_or_else(|p| p.into_inner()).reusable(served)
    }

    fn idle_limit(&self) -> usize {
        self.settings.opts.lock().unwrap_or_else(|p| p.into_inner()).pool_max_conn.unwrap_or(IDLE_MAX).min(IDLE_MAX)
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.settings.max_age_ms.load(Relaxed))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `pool_purge_delay` in milliseconds.
    pub fn purge_delay_ms(&self) -> u64 {
        self.settings.max_age_ms.load(Relaxed)
    }

    /// A ready connection: an idle one `want` allows if any is still open, else a new one.
    /// The flag says whether it was reused (a reused one may have been closed by the server meanwhile).
    pub async fn get(&self, connect_timeout: Duration, want: Want) -> Result<(Sender, bool), ConnectFailure> {
        if want != Want::New
            && let Some(s) = self.take_shared(want).or_else(|| self.take_ready(want))
        {
            return Ok((s, true));
        }
        let mut s = self.connect(connect_timeout).await?;
        // A new HTTP/2 connection is shared at once when the request may share (concurrent
        // requests then become streams on it instead of opening connections of their own).
        if want != Want::New
            && let Tx::H2(tx) = &s.tx
        {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            if shared.len() < self.idle_limit() && self.reusable(1) {
                let streams = Arc::default();
                s._stream = Some(Stream::open(&streams));
                let (tx, id, local) = (tx.clone(), s.id, s.local);
                shared.push(Shared { tx, id, local, served: 1, since: Instant::now(), streams });
            }
        }
        Ok((s, false))
    }

    /// A stream on a shared HTTP/2 connection that `want` allows.
    fn take_shared(&self, want: Want) -> Option<Sender> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        // An HTTP/1 backend has none: no clock read per request for it.
        if shared.is_empty() {
            return None;
        }
        let now = Instant::now();
        let max_age = self.max_age();
        shared.retain(|c| !c.tx.is_closed() && now.saturating_duration_since(c.since) <= max_age);
        // The first one below the stream limit (streams packed on few connections, as HAProxy
        // fills one before the next: spreading them costs more, smaller writes); none: the
        // request opens a new connection.
        let c = shared
            .iter_mut()
            .find(|c| want.fits(c.served) && self.reusable(c.served) && c.streams.load(Relaxed) < H2_STREAMS_MAX)?;
        c.served += 1;
        c.since = now;
        // `served` is counted on the shared entry; the clone starts past it.
        let stream = Some(Stream::open(&c.streams));
        let abandon = Default::default();
        let (tx, served, id, local, thread) = (Tx::H2(c.tx.clone()), c.served, c.id, c.local, here_u16());
        Some(Sender { tx, served, thread, id, local, _stream: stream, abandon })
    }

    /// The newest idle connection that is ready, preferably one this proxy thread opened
    /// (`nbthread > 1`: its socket is in this thread's reactor; another thread's still works, but
    /// each of its wake-ups crosses threads); closed, stale and stuck ones are dropped on the way,
    /// and ones not ready yet stay for a later taker.
    fn take_ready(&self, want: Want) -> Option<Sender> {
        let here = here_u16();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut not_yet = Vec::new();
        let mut found = None;
        // The newest ready one of another thread, kept in `not_yet` in case none is this one's.
        let mut other = None;
        let now = Instant::now();
        let max_age = self.max_age();
        while let Some((s, since)) = idle.pop() {
            let age = now.saturating_duration_since(since);
            if s.is_closed() || age > max_age {
                continue;
            }
            if s.is_ready() && want.fits(s.served) {
                if s.thread == here {
                    found = Some(s);
                    break;
                }
                other = other.or(Some(not_yet.len()));
                not_yet.push((s, since));
                continue;
            }
            if s.is_ready() || age <= PARK_LIMIT {
                not_yet.push((s, since));
            }
        }
        if found.is_none()
            && let Some(i) = other
        {
            found = Some(not_yet.remove(i).0);
        }
        idle.extend(not_yet.into_iter().rev());
        found
    }

    pub async fn connect(&self, connect_timeout: Duration) -> Result<Sender, ConnectFailure> {
        self.connect_with(connect_timeout, None).await
    }

    /// A new connection that starts with `preface` (a PROXY protocol header) before anything
    /// else, TLS included.
    pub async fn connect_with(
        &self,
        connect_timeout: Duration,
        preface: Option<&[u8]>,
    ) -> Result<Sender, ConnectFailure> {
        let source = self.source();
        let mut seen = None;
        let abandon = super::abandon::Abandon::default();
        let fut = async {
            let mut stream = match super::source::connect_noting(self.addr, source.as_deref(), &mut seen).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(ConnectError::Refused),
                Err(e) => return Err(ConnectError::Io(e)),
                Ok(s) => s,
            };
            let _ = stream.set_nodelay(true);
            if self.settings.keepalive.load(Relaxed) {
                let _ = socket2::SockRef::from(&stream).set_keepalive(true);
            }
            let local = stream.local_addr().ok();
            if let Some(p) = preface {
                tokio::io::AsyncWriteExt::write_all(&mut stream, p).await.map_err(ConnectError::Io)?;
            }
            let tx = match &self.tls {
                // Plain HTTP/1.1: no connection task, see `h1client`.
                None if !self.h2 => Ok(Tx::Lean(Lean::new(stream))),
                None => handshake(stream, self.h2).await,
                Some(tls) => {
                    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                    let stream = super::abandon::AbortIo::new(stream, abandon.clone());
                    let s = connector.connect(tls.sni.clone(), stream).await.map_err(ConnectError::Tls)?;
                    // HTTP/2 when asked, or when the server chose it among the ALPN offers.
                    let h2 = self.h2 || s.get_ref().1.alpn_protocol() == Some(b"h2");
                    handshake(s, h2).await
                }
            };
            tx.map(|tx| (tx, local))
        };
        // Boxed: the connect, TLS and handshake futures take kilobytes, and every future that
        // may connect (`get`, and so each request's) would otherwise carry room for them, to be
        // moved along with it on every request.
        let done = tokio::time::timeout(connect_timeout, Box::pin(fut)).await.unwrap_or(Err(ConnectError::Timeout));
        let (tx, local) = done.map_err(|error| ConnectFailure { error, local: seen })?;
        let (id, thread) = (self.next_id.fetch_add(1, Relaxed), here_u16());
        Ok(Sender { tx, served: 0, thread, id, local, _stream: None, abandon })
    }

    /// Returns a connection whose exchange finished cleanly. Its dispatcher may not have seen the
    /// end of the response yet; takers skip it until it has, so none ever waits on one (and no
    /// task or timer is spent per request to watch it). An HTTP/2 connection joins the shared
    /// ones (or, already there, is marked as used now).
    pub fn put(self: &Arc<Self>, s: Sender) {
        if s.is_closed() {
            return;
        }
        let limit = self.idle_limit();
        match s.tx {
            Tx::H2(tx) => {
                let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(c) = shared.iter_mut().find(|c| c.id == s.id) {
                    c.since = Instant::now();
                } else if shared.len() < limit && self.reusable(s.served) {
                    let streams = s._stream.as_ref().map(|st| st.0.clone()).unwrap_or_default();
                    let (id, local, served, since) = (s.id, s.local, s.served, Instant::now());
                    shared.push(Shared { tx, id, local, served, since, streams });
                }
            }
            Tx::H1(_) | Tx::Lean(_) => {
                if !self.reusable(s.served) {
                    return;
                }
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < limit {
                    idle.push((s, Instant::now()));
                }
            }
        }
        if !self.sweeping.swap(true, Relaxed) {
            self.sweep();
        }
    }

    /// Closes idle connections once they are older than `pool_purge_delay`, so a server is not
    /// left holding connections nobody will use; one task per pool, only while any are idle.
    fn sweep(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(period) = pool.upgrade().map(|p| p.max_age().max(MIN_SWEEP)) else { return };
                tokio::time::sleep(period).await;
                let Some(p) = pool.upgrade() else { return };
                if p.purge(Instant::now()) > 0 {
                    continue;
                }
                p.sweeping.store(false, Relaxed);
                // A connection put back between the purge and the flag would have no sweeper.
                if p.idle_count() == 0 || p.sweeping.swap(true, Relaxed) {
                    return;
                }
            }
        });
    }

    /// Drops idle connections that are closed or older than the pool's age; returns how many stay.
    fn purge(&self, now: Instant) -> usize {
        let max_age = self.max_age();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(s, since)| !s.is_closed() && now.saturating_duration_since(*since) <= max_age);
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|c| !c.tx.is_closed() && now.saturating_duration_since(c.since) <= max_age);
        idle.len() + shared.len()
    }

    /// Idle connections kept (also for `show servers conn`); shared HTTP/2 ones included.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).len();
        idle + self.shared.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An h2c server on loopback that answers every request with an empty 200.
    async fn h2c_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Empty::<bytes::Bytes>::new(),
                        ))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        addr
    }

    /// The server pool of `server clear 0.0.0.0:0`.
    fn any_dst() -> Pool {
        Pool::new("0.0.0.0:0".parse().unwrap(), None, false, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_reload_reaches_the_pools_kept_per_destination() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = any_dst();
        let child = server.for_dst(listener.local_addr().unwrap()).unwrap();
        assert_eq!(child.addr(), listener.local_addr().unwrap(), "port 0: the client's port");
        // The reload: a new source, pool options and purge delay on the same server.
        server.set_source(Some(Arc::new(super::super::source::Source::new("127.0.0.2".parse().unwrap(), None))));
        server.set_keepalive(true);
        let opts = ServerOpts {
            pool_max_conn: Some(0),
            pool_purge_delay: Some(Duration::from_millis(7)),
            ..Default::default()
        };
        server.set_opts(&opts);
        let again = server.for_dst(listener.local_addr().unwrap()).unwrap();
        assert!(Arc::ptr_eq(&child, &again), "the destination's pool is kept");
        assert_eq!(child.purge_delay_ms(), 7);
        assert!(!child.reusable(0), "pool-max-conn 0: nothing kept");
        assert!(child.settings.keepalive.load(Relaxed));
        let s = child.connect(Duration::from_secs(10)).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.2", "the new source");
        assert_eq!(s.local_addr().map(|a| a.ip()), Some(peer.ip()));
    }

    #[tokio::test]
    async fn a_full_map_drops_the_pools_nobody_uses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = any_dst();
        let dst = |ip: &str, port: u16| SocketAddr::new(ip.parse().unwrap(), port);
        let len = || server.by_dst.lock().unwrap().len();
        // One held by a request, one keeping an idle connection, the rest neither.
        let held = server.for_dst(dst("127.0.0.1", 1)).unwrap();
        let idle = server.for_dst(listener.local_addr().unwrap()).unwrap();
        let s = idle.connect(Duration::from_secs(10)).await.unwrap();
        idle.put(s);
        assert_eq!(idle.idle_count(), 1);
        drop(idle);
        for port in 1..=(CHILD_POOLS_MAX - 2) as u16 {
            server.for_dst(dst("127.0.0.3", port)).unwrap();
        }
        assert_eq!(len(), CHILD_POOLS_MAX);
        // A new destination makes room and is kept.
        let new = server.for_dst(dst("127.0.0.4", 1)).unwrap();
        assert!(Arc::ptr_eq(&new, &server.for_dst(dst("127.0.0.4", 1)).unwrap()));
        assert_eq!(len(), 3);
        assert!(Arc::ptr_eq(&held, &server.for_dst(dst("127.0.0.1", 1)).unwrap()));
        assert_eq!(server.for_dst(listener.local_addr().unwrap()).unwrap().idle_count(), 1);
        // Every kept pool in use: a new destination gets a pool of its own, not kept.
        let mut all: Vec<_> =
            (1..=(CHILD_POOLS_MAX - 3) as u16).map(|port| server.for_dst(dst("127.0.0.3", port)).unwrap()).collect();
        all.push(new);
        assert_eq!(len(), CHILD_POOLS_MAX);
        let one = server.for_dst(dst("127.0.0.5", 1)).unwrap();
        let two = server.for_dst(dst("127.0.0.5", 1)).unwrap();
        assert!(!Arc::ptr_eq(&one, &two));
        assert_eq!(len(), CHILD_POOLS_MAX);
    }

    /// `nbthread > 1`: a proxy thread takes an idle connection it opened (its socket is in its own
    /// reactor) before a newer one of another thread, and another thread's when it has none.
    #[test]
    fn an_idle_connection_is_taken_on_the_thread_that_opened_it_first() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = Arc::new(Pool::new(server.local_addr().unwrap(), None, false, Duration::from_secs(60)));
        let build = || tokio::runtime::Builder::new_current_thread().enable_all().build();
        let (threads, handles) = super::super::workers::Threads::start(3, build).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let open = |t: usize| {
            let p = pool.clone();
            let opened = handles[t - 1].spawn(async move {
                let s = p.connect(Duration::from_secs(10)).await.unwrap();
                let id = s.id;
                p.put(s);
                id
            });
            rt.block_on(opened).unwrap()
        };
        let take = |p: Arc<Pool>| async move {
            let (s, reused) = p.get(Duration::from_secs(10), Want::Any).await.unwrap();
            assert!(reused);
            s
        };
        let (a, b, c) = (open(1), open(2), open(1));
        let on_2 = rt.block_on(handles[1].spawn(take(pool.clone()))).unwrap();
        assert_eq!(on_2.id, b, "thread 2 takes its own, not the newer one of thread 1");
        let on_0 = rt.block_on(take(pool.clone()));
        assert_eq!(on_0.id, c, "none of its own: the newest");
        let on_1 = rt.block_on(handles[0].spawn(take(pool.clone()))).unwrap();
        assert_eq!(on_1.id, a);
        assert_eq!(pool.idle_count(), 0);
        drop((on_0, on_1, on_2));
        threads.stop(super::super::workers::STOP_LIMIT);
    }

    #[tokio::test]
    async fn streams_past_the_limit_open_another_connection() {
        let addr = h2c_server().await;
        let pool = Arc::new(Pool::new(addr, None, true, Duration::from_secs(60)));
        let get = || pool.get(Duration::from_secs(10), Want::Any);
        let mut held = Vec::new();
        for _ in 0..H2_STREAMS_MAX {
            held.push(get().await.unwrap().0);
        }
        let first = held[0].id;
        assert!(held.iter().all(|s| s.id == first), "the first connection takes {H2_STREAMS_MAX} streams");
        let (second, reused) = get().await.unwrap();
        assert!(!reused, "a full connection is not taken");
        assert_ne!(second.id, first);
        assert_eq!(pool.idle_count(), 2, "the new connection is shared too");
        // The first connection's streams end: it takes streams again.
        held.clear();
        let (again, reused) = get().await.unwrap();
        assert!(reused);
        assert_eq!(again.id, first);
        // A stream still works on it.
        let mut again = again;
        let mut req = http::Request::new(super::super::body::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let resp = again.try_send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
}
