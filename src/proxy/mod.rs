//! The proxy engine: listeners, per-connection dispatch to `tcp` or `http`, server pools.

mod abandon;
mod abort;
pub mod addrs;
mod backup_cut;
mod batch;
pub mod body;
mod coalesce;
pub mod compress;
pub mod early_hints;
pub mod errors;
pub mod errpages;
pub mod framing;
mod gate;
pub mod h1client;
pub mod h1server;
mod handshake;
pub mod http;
pub mod httplog;
pub mod htx_bytes;
pub mod idle;
pub mod io;
pub mod listener;
mod live_edit;
pub mod logrec;
mod lot;
pub mod normalize;
pub mod park;
pub mod pool;
pub mod proxy_proto;
pub mod queue;
pub mod rate;
pub mod resize;
pub mod retry_on;
pub mod rules;
pub mod sample_ctx;
pub mod sessions;
pub mod shutdown;
#[cfg(test)]
mod sizes;
pub mod sni;
pub mod source;
mod stats_source;
pub mod stick_rules;
pub mod tcp;
pub mod tcp_rules;
pub mod track;
pub mod trailers;
pub mod upstream;
pub mod vars;
pub mod workers;

use crate::config::Snapshot;
use crate::config::snapshot::{LogMode, Mode};
use crate::log::format::Level;
use crate::state::{Attached, Registry};
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pool::Pool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

/// Largest request header section accepted; beyond it the client gets a 431.
const MAX_HEADER_BYTES: usize = framing::MAX_HEAD;

/// Server pools by (backend, server, address): kept across reloads while all three match.
/// TLS servers get a new pool per snapshot (their settings may have changed), hence the pointer.
type PoolMap = HashMap<(String, String, SocketAddr, usize, bool), Arc<Pool>>;
/// Frontend connection limits by (frontend, maxconn).
type LimitMap = HashMap<(String, u32), Arc<Semaphore>>;

/// One config snapshot with the runtime state matched to it. Swapped whole on reload.
pub struct Active {
    pub generation: u64,
    pub snap: Arc<Snapshot>,
    pub rt: Attached,
    /// Server connection pools, `[backend][server]`.
    pub pools: Vec<Vec<Arc<Pool>>>,
    /// Bind address → frontend index. Looked up once per request (the bind a connection came in
    /// on may belong to another frontend after a reload): foldhash, not SipHash (~230
    /// instructions per request for a `SocketAddr`).
    pub binds: HashMap<SocketAddr, usize, foldhash::fast::RandomState>,
    /// Per-frontend `maxconn`.
    pub fe_limits: Vec<Option<Arc<Semaphore>>>,
    /// Syslog output of this snapshot's `[global] log` targets.
    pub logger: Arc<crate::log::Logger>,
    /// Per frontend, when it has `log_targets` of its own: those plus (with `log = "global"`) the
    /// global ones; else `logger`.
    pub fe_loggers: Vec<Option<Arc<crate::log::Logger>>>,
    /// Per backend, when its `log` lines differ from `[global]`'s (see `Backend::log_targets`).
    pub be_loggers: Vec<Option<Arc<crate::log::Logger>>>,
}

impl Active {
    /// Where frontend `fi`'s lines go.
    pub fn fe_logger(&self, fi: usize) -> &Arc<crate::log::Logger> {
        self.fe_loggers.get(fi).and_then(Option::as_ref).unwrap_or(&self.logger)
    }

    /// Where the events of the backend named `backend` go (its servers' state changes and checks).
    pub fn be_logger(&self, backend: &str) -> &Arc<crate::log::Logger> {
        let own = self.snap.backend(backend).and_then(|(i, _)| self.be_loggers.get(i)?.as_ref());
        own.unwrap_or(&self.logger)
    }
}

impl crate::routing::Live for Active {
    fn nbsrv(&self, backend: &str) -> usize {
        self.snap.backend(backend).map_or(0, |(i, _)| self.rt.backends[i].nbsrv())
    }
}

/// What every connection task shares.
pub struct Proxy {
    pub active: ArcSwap<Active>,
    pub registry: Registry,
    pools: Mutex<PoolMap>,
    limits: Mutex<LimitMap>,
    pub global_limit: Arc<Semaphore>,
    /// The size of `global_limit`, which a reload changing `[global] maxconn` resizes.
    pub global_size: resize::Resizable,
    /// Flips to true when connections should finish their current exchange and close.
    pub drain: watch::Sender<bool>,
    /// The last reload: connections born before it check whether they are now stale.
    pub reloads: watch::Sender<Reload>,
    pub tracker: TaskTracker,
    pub started: Instant,
    /// Map and pattern files with their runtime changes, read lock-free per lookup.
    pub maps: crate::maps::Shared,
    /// `proc.*` variables: one set for the process, kept across reloads.
    pub proc_vars: vars::VarStore,
    /// Runtime server changes go to the serve loop through this (set once it runs).
    pub runtime: std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::dynamic::Request>>,
    /// Frontends stopped by `disable frontend`; their listeners accept nothing meanwhile.
    pub paused: watch::Sender<std::collections::HashSet<String>>,
    /// `[cluster]`: runtime changes made through the Data Plane API go to the peer through this.
    pub cluster_runtime: std::sync::OnceLock<crate::cluster::RuntimeHook>,
    /// Wakes every idle connection at a stop or a reload (see `Proxy::idle_wait` in `park.rs`): one shared
    /// wake instead of two watch futures per connection.
    pub idle_wake: tokio::sync::Notify,
    /// Idle plain-HTTP connections, held as small structs by one task per proxy thread (`lot.rs`),
    /// by thread index ([`workers::here`]): a connection leaving the lot is served on its thread.
    lots: Box<[lot::Lot]>,
    /// `nbthread > 1`: the proxy threads the accept loops hand connections to (set once at
    /// start); unset, connections are served on the accept loop's runtime.
    pub workers: std::sync::OnceLock<workers::Spread>,
    /// Every client connection, for `show sess` and `shutdown session(s)`.
    pub sessions: Arc<sessions::Sessions>,
    /// Accept rate counters (`maxconnrate`, `maxsessrate`, `maxsslrate`, `rate-limit sessions`).
    pub rates: Mutex<rate::Rates>,
    /// `do-resolve` resolutions in flight, which requests for the same name join.
    pub resolved: crate::dns::action::InFlight,
}

/// What an HTTP connection needs to know about its frontend.
struct HttpConn<'a> {
    t: &'a crate::config::snapshot::Timeouts,
    h2: bool,
    /// The generation it was accepted under.
    born: u64,
    fcnt: Arc<crate::state::Counters>,
    /// `[global] tune_bufsize`.
    bufsize: usize,
    /// `option http-ignore-probes`.
    ignore_probes: bool,
}

/// A client connection's context and the snapshot it was accepted under. Its drop ends the
/// session, wherever the connection ends: the accept's task, or the wait of a parked one.
struct Held {
    cx: Arc<ConnCtx>,
    active: Arc<Active>,
    fi: usize,
}

impl Held {
    fn fe(&self) -> &crate::config::snapshot::Frontend {
        &self.active.snap.frontends[self.fi]
    }

    fn http(&self, h2: bool) -> HttpConn<'_> {
        let (active, fi) = (&self.active, self.fi);
        let (t, fcnt) = (&active.snap.frontends[fi].timeouts, active.rt.frontends[fi].clone());
        let ignore_probes = active.snap.frontends[fi].ignore_probes;
        HttpConn { t, h2, born: active.generation, fcnt, bufsize: active.snap.global.bufsize, ignore_probes }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let cx = &self.cx;
        // The connection's share; tunnels keep theirs (`cx` itself may outlive this in a task).
        cx.slots.lock().unwrap_or_else(|p| p.into_inner()).take();
        // A connection closed before its first request counts no request here: the probes HAProxy
        // counts (its 408 and `CR--` 400) went through `http::handle`; an ignored probe, a failed
        // TLS handshake and an HTTP/2 connection without a stream count none there either
        // (measured, `tests/probes.rs`).
        // The session ends: what it tracked is released (conn_cur).
        cx.rules.stk.release();
    }
}

/// Why a connection from before a reload has to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Now,
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload {
    pub generation: u64,
    pub terminate: bool,
}

/// Per client connection facts.
pub struct ConnCtx {
    pub proxy: Arc<Proxy>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The client came over TLS (for X-Forwarded-Proto).
    pub tls: bool,
    /// When the connection was accepted, as a date for logs and as an instant for timers.
    pub accepted: (std::time::SystemTime, tokio::time::Instant),
    /// Requests seen on this connection (the first one's Tq counts from the accept).
    pub requests: std::sync::atomic::AtomicU64,
    /// The connection's slots while it is served; a tunnel it opens takes a share (see [`Slots`]).
    slots: Mutex<Option<Arc<Slots>>>,
    /// What the `tcp-request` stages share (variables, TLS facts).
    pub rules: tcp_rules::ConnState,
    /// `sess.*` variables of this client connection.
    pub sess_vars: vars::VarStore,
    /// What the TLS handshake settled (`ssl_fc_sni`, `ssl_fc_alpn`, `ssl_fc_protocol`).
    /// Boxed: only TLS connections have one.
    pub tls_info: std::sync::OnceLock<Box<sample_ctx::TlsInfo>>,
    /// The PROXY header it came with, and its TLS facts, for `send-proxy` towards servers.
    pub client: proxy_proto::ClientInfo,
    /// Server connections kept for this client connection only (`http_reuse = "never"`).
    pub private: pool::Private,
    /// Its entry in the session registry (`show sess`).
    pub sess: sessions::Facts,
    /// The client's TCP socket, watched by `option abortonclose` (see [`abort`]) and acted on
    /// by socket rules.
    pub fd: addrs::ClientFd,
    /// The addresses `set-src`/`set-dst` rules gave the connection (see [`addrs`]).
    pub moved: addrs::Moved,
    /// Whether `moved` holds addresses: a PROXY header's destination, or a rule's change.
    /// (Here rather than in `Moved`, where it would grow every connection by a word.)
    moved_any: std::sync::atomic::AtomicBool,
}

impl ConnCtx {
    /// The client's address as the rules see it: `peer`, or what `set-src` made it.
    pub fn src(&self) -> SocketAddr {
        self.addrs().0
    }

    /// Both, read at once: (`src`, `dst`).
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        // Most connections never move: a flag's load instead of an `ArcSwap` load (~90
        // instructions: every `src`, `%ci`, track key).
        if !self.moved_any.load(std::sync::atomic::Ordering::Acquire) {
            return (self.peer, self.local);
        }
        self.moved.get(self.peer, self.local)
    }

    /// The address the client reached, or what `set-dst` made it.
    pub fn dst(&self) -> SocketAddr {
        self.addrs().1
    }

    /// Runs `set-src` and friends; false when the sample was no address (nothing changed).
    pub fn set_addr(&self, part: addrs::AddrPart, v: crate::sample::Value) -> bool {
        let applied = self.moved.set(self.peer, self.local, part, v);
        // After the change (release), read before it (acquire, `addrs`).
        self.moved_any.store(true, std::sync::atomic::Ordering::Release);
        applied
    }

    /// A share of the connection's slots, for a tunnel that outlives the HTTP connection (an
    /// HTTP/1 upgrade ends hyper's connection while the bytes still flow).
    pub fn hold(&self) -> Option<Arc<Slots>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The `maxconn` slots (frontend and global) and the frontend session count of one client
/// connection, released when the connection and every tunnel it opened have ended: a tunnel
/// counts against the limits and in the stats like the connection it came from.
pub struct Slots {
    _fe: Option<tokio::sync::OwnedSemaphorePermit>,
    _global: tokio::sync::OwnedSemaphorePermit,
    _session: Option<crate::state::SessionGuard>,
    /// The bind's session with `option socket-stats` (its listener row's `scur`, `stot`).
    _listener: Option<crate::state::SessionGuard>,
    /// Its entry in the session registry, removed with the slots.
    _entry: Option<sessions::Guard>,
    /// `nbthread > 1`: counted on its proxy thread while it lives.
    _live: Option<workers::Live>,
}

impl Slots {
    pub fn new(fe: Option<tokio::sync::OwnedSemaphorePermit>, global: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self { _fe: fe, _global: global, _session: None, _listener: None, _entry: None, _live: None }
    }

    /// The connection counted on the proxy thread it was handed to.
    pub fn on_thread(self, live: workers::Live) -> Self {
        Self { _live: Some(live), ..self }
    }
}

impl Proxy {
    pub fn new(snap: Snapshot) -> Arc<Self> {
        let global_size = resize::Resizable::new(snap.global.maxconn as usize);
        let registry = Registry::default();
        let pools = Mutex::new(HashMap::new());
        let limits = Mutex::new(HashMap::new());
        let active = build_active(Arc::new(snap), 1, &registry, &pools, &limits);
        let threads = workers::configured(&active.snap.global);
        let maps = crate::maps::Shared::default();
        maps.install(&active.snap.maps);
        Arc::new(Self {
            active: ArcSwap::from_pointee(active),
            registry,
            pools,
            limits,
            global_limit: global_size.sem.clone(),
            global_size,
            drain: watch::channel(false).0,
            reloads: watch::channel(Reload { generation: 1, terminate: false }).0,
            tracker: TaskTracker::new(),
            started: Instant::now(),
            maps,
            proc_vars: Default::default(),
            runtime: std::sync::OnceLock::new(),
            paused: watch::channel(std::collections::HashSet::new()).0,
            cluster_runtime: std::sync::OnceLock::new(),
            idle_wake: tokio::sync::Notify::new(),
            lots: (0..threads).map(|_| lot::Lot::default()).collect(),
            workers: std::sync::OnceLock::new(),
            sessions: Default::default(),
            rates: Default::default(),
            resolved: Default::default(),
        })
    }

    /// Swaps in a new snapshot; runtime state and pools carry over by name. With `terminate`
    /// (HAProxy's `-st`) every connection accepted before closes at once; otherwise (`-sf`) they
    /// finish, and those whose frontend bind or server the new config removed are cut after
    /// `hard_stop_after`.
    pub fn install(&self, snap: Snapshot, terminate: bool) -> Arc<Active> {
        let generation = self.active.load().generation + 1;
        let a = Arc::new(build_active(Arc::new(snap), generation, &self.registry, &self.pools, &self.limits));
        for note in self.maps.install(&a.snap.maps) {
            tracing::warn!("{note}");
        }
        self.active.store(a.clone());
        self.reloads.send_replace(Reload { generation, terminate });
        self.idle_wake.notify_waiters();
        a
    }

    /// Connections finish their current exchange and close; idle ones are woken to look.
    pub fn start_drain(&self) {
        self.drain.send_replace(true);
        self.idle_wake.notify_waiters();
    }

    /// Resolves when a connection born in generation `born` has to go: `Cut::Now` after a
    /// terminating reload; `Cut::Stale` after a reload that made it stale (with `wait_grace`, only
    /// once `hard_stop_after` has passed too).
    pub async fn expiry(&self, born: u64, stale: impl Fn(&Active) -> bool, wait_grace: bool) -> Cut {
        let mut rx = self.reloads.subscribe();
        loop {
            let ev = *rx.borrow_and_update();
            if ev.generation > born {
                if ev.terminate {
                    return Cut::Now;
                }
                let active = self.active.load_full();
                if stale(&active) {
                    if !wait_grace {
                        return Cut::Stale;
                    }
                    let grace = tokio::time::sleep(active.snap.global.hard_stop_after);
                    tokio::pin!(grace);
                    loop {
                        tokio::select! {
                            _ = &mut grace => return Cut::Stale,
                            changed = rx.changed() => match changed {
                                Ok(()) if rx.borrow().terminate => return Cut::Now,
                                Ok(()) => {}
                                Err(_) => std::future::pending::<()>().await,
                            },
                        }
                    }
                }
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Serves one accepted client connection until it ends.
    /// `slots` are the `maxconn` slots the accept loop took before accepting.
    pub async fn serve_conn(self: Arc<Self>, sock: TcpStream, peer: SocketAddr, local: SocketAddr, slots: Slots) {
        // Boxed: the accept's state (PROXY header, TLS, TCP sessions) is gone before a plain
        // HTTP connection waits, so a waiting or parked one holds only the wait's state.
        let Some((sock, held, h2)) = Box::pin(self.open_conn(sock, peer, local, slots)).await else {
            return;
        };
        let (local, born) = (held.cx.local, held.active.generation);
        let deadline = tokio::time::Instant::now() + idle::head_wait(&held.fe().timeouts);
        // Most clients send at once; one that does not moves to the lot after a moment.
        let lot_at = tokio::time::Instant::now() + lot::FRESH_GRACE;
        match self.first_byte(&sock, local, deadline, born, Some(lot_at), &held.cx.sess).await {
            Some(true) => {}
            Some(false) => return self.silent(sock, held, h2, deadline).await,
            None => {
                let entry = lot::Entry {
                    waiting: lot::Waiting::Fresh { sock, h2 },
                    held,
                    deadline,
                    drain_grace: DRAIN_IDLE_GRACE,
                };
                let Err(lot::Entry { waiting: lot::Waiting::Fresh { sock, h2 }, held, .. }) = self.park(entry) else {
                    return;
                };
                // The lot has closed (a stop): this task waits.
                match self.first_byte(&sock, local, deadline, born, None, &held.cx.sess).await {
                    Some(true) => self.serve_fresh(sock, held, h2).await,
                    _ => self.silent(sock, held, h2, deadline).await,
                }
                return;
            }
        }
        self.serve_fresh(sock, held, h2).await
    }

    /// A plain connection that sent nothing until `deadline`, or whose wait a stop or reload
    /// ended: as HAProxy, the timed-out one gets a 408 (and its log line), unless `option
    /// http-ignore-probes` (or HTTP/2 by prior knowledge); the others are closed unanswered.
    async fn silent(self: Arc<Self>, sock: TcpStream, held: Held, h2: bool, deadline: tokio::time::Instant) {
        let timed_out = tokio::time::Instant::now() >= deadline
            && !*self.drain.borrow()
            && !self.reload_ends(held.active.generation, held.cx.local);
        if !timed_out || h2 || held.fe().ignore_probes {
            return;
        }
        let idle = H1Idle::new(sock, &held.cx, &held.http(false));
        if idle.verdicts.time_out() {
            self.serve_h1_plain(idle, held).await
        }
    }

    /// Serves a plain connection whose first bytes came.
    async fn serve_fresh(self: Arc<Self>, sock: TcpStream, held: Held, h2: bool) {
        if h2 {
            let cx = held.cx.clone();
            return self.serve_http(sock, cx, held.http(true)).await;
        }
        let idle = H1Idle::new(sock, &held.cx, &held.http(false));
        self.serve_h1_plain(idle, held).await
    }

    /// Serves a plain HTTP/1 connection in stretches (see `serve_h1`); between them it waits in
    /// the lot, which holds it as a small struct and gives it a new task when its next request
    /// comes. Once the lot has closed (a stop), this task waits itself.
    async fn serve_h1_plain(self: Arc<Self>, mut idle: H1Idle<TcpStream>, mut held: Held) {
        loop {
            let stretch = {
                let conn = held.http(false);
                Box::pin(self.serve_h1_stretch(idle, &held.cx, &conn)).await
            };
            idle = match stretch {
                Some(idle) => idle,
                None => return,
            };
            tracing::debug!(client = %held.cx.peer, "idle HTTP/1 connection parked");
            if idle.has_input() {
                continue;
            }
            let (deadline, drain_grace) = {
                let t = &held.fe().timeouts;
                // Parked means idle: nothing moves the deadline until the next byte.
                let d = idle::deadline(&idle.activity.state(), t)
                    .unwrap_or_else(|| tokio::time::Instant::now() + t.http_keep_alive);
                (d, DRAIN_IDLE_GRACE.min(t.http_keep_alive))
            };
            let waiting = match idle.shed() {
                Ok(bare) => lot::Waiting::Bare(bare),
                Err(whole) => lot::Waiting::Parked(whole),
            };
            let Err(lot::Entry { waiting, held: back_held, .. }) =
                self.park(lot::Entry { waiting, held, deadline, drain_grace })
            else {
                return;
            };
            held = back_held;
            idle = match waiting {
                lot::Waiting::Parked(whole) => *whole,
                lot::Waiting::Bare(bare) => H1Idle::resume(bare, &held.cx, &held.http(false)),
                lot::Waiting::Fresh { .. } => return,
            };
            let conn = held.http(false);
            if !self.unpark(&mut idle.sock, &held.cx, conn.born, conn.t, &idle.activity).await {
                let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, idle.sock.shutdown()).await;
                return;
            }
        }
    }

    /// Everything of a connection up to its HTTP exchanges: the PROXY header, the `tcp-request`
    /// rules, TCP sessions and TLS connections to their end. A plain HTTP connection comes back
    /// (with whether it speaks HTTP/2) to wait for its first byte.
    async fn open_conn(
        self: &Arc<Self>,
        sock: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        mut slots: Slots,
    ) -> Option<(TcpStream, Held, bool)> {
        let active = self.active.load_full();
        let &fi = active.binds.get(&local)?;
        let fe = &active.snap.frontends[fi];
        slots._session = Some(active.rt.frontends[fi].open_session());
        let _ = sock.set_nodelay(true);
        let bind_ix = fe.binds.iter().position(|b| b.addr == local)?;
        if let Some(l) = active.rt.listeners.get(fi).and_then(|l| l.get(bind_ix)) {
            slots._listener = Some(l.open_session());
        }
        let bind = fe.binds[bind_ix].clone();
        // `accept-proxy` / `expect-proxy layer4`: the client's address comes from the header.
        // Boxed, so a connection without one carries none of the wait's state.
        let (peer, received) = if proxy_proto::expected(peer, local, fe, &bind, &**self.maps.store.load()) {
            Box::pin(proxy_proto::accept(&sock, peer, local, fe, &active, &self.drain)).await?
        } else {
            (peer, None)
        };
        if fe.log == LogMode::Connect {
            let mode = if fe.mode == Mode::Http { "HTTP" } else { "TCP" };
            active.fe_logger(fi).log(Level::Info, &format!("Connect from {peer} to {local} ({}/{mode})", fe.name));
        }
        let id = self.sessions.next_id();
        slots._entry = Some(self.sessions.guard(id));
        let moved = addrs::Moved::accepted(peer, received.as_ref());
        let cx = Arc::new(ConnCtx {
            proxy: self.clone(),
            peer,
            local,
            tls: bind.tls.is_some(),
            accepted: (std::time::SystemTime::now(), tokio::time::Instant::now()),
            requests: std::sync::atomic::AtomicU64::new(0),
            slots: Mutex::new(Some(Arc::new(slots))),
            rules: tcp_rules::ConnState::default(),
            sess_vars: Default::default(),
            tls_info: Default::default(),
            client: proxy_proto::ClientInfo { received: received.map(Box::new), ..Default::default() },
            private: Default::default(),
            sess: sessions::Facts::new(id, active.clone(), fi),
            fd: addrs::ClientFd::new(std::os::fd::AsRawFd::as_raw_fd(&sock)),
            moved_any: std::sync::atomic::AtomicBool::new(moved.is_set()),
            moved,
        });
        self.sessions.register(&cx);
        if !tcp_rules::allowed(&fe.tcp.connection, &fe.tcp.acls, &active, &cx, tcp_rules::At { fi, bi: None }) {
            tracing::debug!(client = %peer, frontend = %fe.name, "rejected by tcp-request connection");
            return None;
        }
        // From here the session's end is `Held`'s drop, wherever the connection ends.
        let held = Held { cx: cx.clone(), active: active.clone(), fi };
        let t = &fe.timeouts;
        let fcnt = active.rt.frontends[fi].clone();
        let bufsize = active.snap.global.bufsize;
        match fe.mode {
            // TCP sessions have no request boundary: a stop lets them run until the hard stop.
            // The serving futures are boxed so that the task of a connection still waiting for
            // its first byte stays small.
            Mode::Tcp => match bind.tls {
                // An `ssl` bind in TCP mode terminates TLS and relays the clear bytes.
                // Boxed: the TLS stream (rustls state, kilobytes) would otherwise take room in the
                // task of every connection of the frontend, plain ones and idle ones included.
                Some(tls) => {
                    Box::pin(async {
                        let accept = Box::pin(crate::tls::lines::accept(tls, bind.tls_lines, sock));
                        match tokio::time::timeout(t.client, accept).await {
                            Ok(Ok(stream)) => {
                                let _ = cx.tls_info.set(Box::new(sample_ctx::TlsInfo::of(stream.get_ref().1)));
                                proxy_proto::note_tls(&cx.client, stream.get_ref().1);
                                if tcp_rules::session_allowed(fi, &active, &cx) {
                                    Box::pin(tcp::serve(stream, active.clone(), fi, cx.clone())).await
                                }
                            }
                            Ok(Err(e)) => handshake_failed(&active, fi, &cx, bind_ix, Some(e)),
                            Err(_) => handshake_failed(&active, fi, &cx, bind_ix, None),
                        }
                    })
                    .await
                }
                None => {
                    if tcp_rules::session_allowed(fi, &active, &cx) {
                        Box::pin(tcp::serve(sock, active.clone(), fi, cx.clone())).await
                    }
                }
            },
            Mode::Http => match bind.tls {
                // Boxed: the TLS stream (rustls state, kilobytes) would otherwise take room in the
                // task of every connection of the frontend, plain ones and idle ones included.
                Some(tls) => {
                    Box::pin(async {
                        let accept = crate::tls::lines::accept(tls, bind.tls_lines, sock);
                        // `timeout client`, as HAProxy's embryonic session (not `http-request`).
                        match tokio::time::timeout(t.client, Box::pin(accept)).await {
                            Ok(Ok(stream))
                                if {
                                    let _ = cx.tls_info.set(Box::new(sample_ctx::TlsInfo::of(stream.get_ref().1)));
                                    proxy_proto::note_tls(&cx.client, stream.get_ref().1);
                                    !tcp_rules::session_allowed(fi, &active, &cx)
                                } =>
                            {
                                tracing::debug!(client = %peer, "rejected by tcp-request session");
                                drop(stream);
                            }
                            Ok(Ok(stream)) => {
                                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                                let ignore_probes = fe.ignore_probes;
                                let conn = HttpConn { t, h2, born: active.generation, fcnt, bufsize, ignore_probes };
                                self.serve_http(stream, cx.clone(), conn).await
                            }
                            Ok(Err(e)) => handshake_failed(&active, fi, &cx, bind_ix, Some(e)),
                            Err(_) => handshake_failed(&active, fi, &cx, bind_ix, None),
                        }
                    })
                    .await
                }
                None => {
                    if tcp_rules::session_allowed(fi, &active, &cx) {
                        return Some((sock, held, bind.h2));
                    }
                }
            },
        }
        drop(held);
        None
    }

    /// Waits for the client's first byte before hyper's connection (its buffers and timers) is
    /// made, so a connection that has sent nothing costs only its socket and this task. False
    /// when it sent nothing within `timeout http-request`, or a stop or reload ends the wait.
    /// None when `lot_at` came first (the connection is to move to the lot).
    async fn first_byte(
        &self,
        sock: &TcpStream,
        local: SocketAddr,
        deadline: tokio::time::Instant,
        born: u64,
        lot_at: Option<tokio::time::Instant>,
        sess: &sessions::Facts,
    ) -> Option<bool> {
        // `peek`, not `readable`: a fresh socket reports itself readable before anything arrived.
        let mut byte = [0u8; 1];
        // An error (a reset) ends the wait too: the framing guard makes it a probe's 400.
        let readable = async {
            let _ = sock.peek(&mut byte).await;
            true
        };
        self.idle_wait(readable, deadline, local, born, DRAIN_IDLE_GRACE, lot_at, sess).await
    }

    /// HTTP/2 and HTTP/1 are separate boxed futures: one async fn for both would be as large
    /// as HTTP/2's (hyper's h2 connection is held in it) for every parked HTTP/1 connection.
    fn serve_http<'a, I>(
        &'a self,
        io: I,
        cx: Arc<ConnCtx>,
        conn: HttpConn<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        if conn.h2 { Box::pin(self.serve_h2(io, cx, conn)) } else { Box::pin(self.serve_h1(io, cx, conn)) }
    }

    async fn serve_h2<I>(&self, io: I, cx: Arc<ConnCtx>, conn: HttpConn<'_>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let HttpConn { t, born, fcnt, bufsize, .. } = conn;
        let t = *t;
        let activity = idle::Activity::watching_stalls(cx.accepted.1);
        // HTTP/2 frames carry their own lengths: no HTTP/1 framing ambiguity to check, but
        // the head must fit `tune_bufsize` as an HTTP/1 head must.
        let limit = framing::head_limit(bufsize);
        let svc_cx = cx.clone();
        let svc_activity = activity.clone();
        let svc = hyper::service::service_fn(move |req| {
            let cx = svc_cx.clone();
            // Counted from the HEADERS frame, before the stream's task first runs.
            let stream = idle::Handover::new(svc_activity.begin());
            let mut req = req;
            req.extensions_mut().insert(stream.clone());
            let activity = svc_activity.clone();
            // Boxed: hyper spawns a task per stream, and the task (its spawn, its output) would
            // otherwise copy the whole request future, kilobytes, several times per request.
            Box::pin(async move {
                let verdict = framing::judge_h2(&req, limit);
                let (resp, log) = http::handle(req.map(body::ReqBody::Hyper), verdict, cx).await;
                tcp_rules::answer(resp.map(|b| activity.track(b, stream.take(), log)))
            })
        });
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        // Room above the HTTP/1-equivalent limit for HPACK's 32 bytes per field, so that
        // `judge_h2` (414/431) rather than h2's own refusal decides, for any `tune_bufsize`.
        let list_max = MAX_HEADER_BYTES.max(limit + 8192);
        builder.timer(TokioTimer::new()).max_header_list_size(u32::try_from(list_max).unwrap_or(u32::MAX));
        let io = idle::Watch::new(io::StallGuard::new(io, t.client, fcnt.clone()), activity.clone(), false);
        let io = coalesce::Coalesce::new(io, coalesce::DEFAULT_LIMIT);
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        let mut conn = std::pin::pin!(conn);
        // Streams' tasks may run on after the socket (in `conn`) closes: declared after it, so
        // that it retires the descriptor first.
        let _retire = addrs::RetireOnDrop(&cx.fd);
        self.run_conn(conn.as_mut(), &cx, born, &t, &activity, None).await;
    }

    /// Serves an HTTP/1 connection: each stretch of requests in a boxed future (hyper's
    /// connection and the futures around it), between which a parked connection holds only its
    /// [`H1Idle`] and the wait for its next byte.
    async fn serve_h1<I>(&self, io: I, cx: Arc<ConnCtx>, conn: HttpConn<'_>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut idle = H1Idle::new(io, &cx, &conn);
        loop {
            idle = match Box::pin(self.serve_h1_stretch(idle, &cx, &conn)).await {
                Some(idle) => idle,
                None => return,
            };
            tracing::debug!(client = %cx.peer, "idle HTTP/1 connection parked");
            if !idle.has_input() && !self.unpark(&mut idle.sock, &cx, conn.born, conn.t, &idle.activity).await {
                let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, idle.sock.shutdown()).await;
                return;
            }
        }
    }

    /// One hyper connection over `idle`'s socket, until it parks (the socket comes back) or
    /// the connection ends.
    async fn serve_h1_stretch<I>(&self, idle: H1Idle<I>, cx: &Arc<ConnCtx>, conn: &HttpConn<'_>) -> Option<H1Idle<I>>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let H1Idle { sock, activity, verdicts, upgrades } = idle;
        let svc = h1server::Service {
            cx: cx.clone(),
            activity: activity.clone(),
            verdicts: verdicts.clone(),
            upgrades: upgrades.clone(),
        };
        // Served lean while the requests are simple ones, by hyper from the first that is not.
        // A plain TCP socket under the wrappers: small responses go out with the batch's writes.
        let guard = sock.get_ref().get_ref().get_ref();
        let plain = (guard.get_ref() as &dyn std::any::Any).downcast_ref::<TcpStream>();
        let lean = match plain.map(|s| (std::os::fd::AsRawFd::as_raw_fd(s), guard.counters().clone())) {
            // SAFETY: the descriptor is the socket's inside `sock`, which the wrappers close
            // only when dropped.
            Some((fd, counters)) => unsafe { h1server::Lean::batched(sock, svc, fd, counters) },
            None => h1server::Lean::new(sock, svc),
        };
        let mut hc = Box::new(H1Stretch { conn: H1Conn::Lean(lean), bufsize: conn.bufsize });
        let ended =
            self.run_conn(std::pin::Pin::new(&mut *hc), cx, conn.born, conn.t, &activity, Some(&verdicts)).await;
        let sock = match hc.conn {
            H1Conn::Lean(lean) => {
                let (mut sock, rest, _) = lean.into_parts();
                sock.unread(rest);
                sock
            }
            H1Conn::Hyper(keep) => {
                let KeepIo(hc) = *keep;
                let parts = hc.into_parts();
                let mut sock = parts.io.into_inner();
                sock.unread(parts.read_buf);
                sock
            }
            H1Conn::Gone => return None,
        };
        match ended {
            Ended::Parked => Some(H1Idle { sock, activity, verdicts, upgrades }),
            Ended::Done { finished: true } => {
                // hyper let go after an upgrade, or after a last exchange (client's close,
                // `Connection: close`): the socket goes to the tunnel or is closed politely.
                if let Some(mut sock) = upgrades.hand_over(Box::new(sock)) {
                    let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, sock.shutdown()).await;
                }
                None
            }
            Ended::Done { finished: false } => None,
        }
    }

    /// A parked connection waits for the first byte of its next request on the bare socket.
    /// False when it is to be closed instead: the client left, the idle timer ran out, a stop
    /// or a reload that removed its bind.
    async fn unpark<T>(
        &self,
        sock: &mut park::Rewind<framing::Guard<T>>,
        cx: &ConnCtx,
        born: u64,
        t: &crate::config::snapshot::Timeouts,
        activity: &idle::Activity,
    ) -> bool
    where
        T: tokio::io::AsyncRead + Unpin,
    {
        // The bytes stay with the framing guard, which hands hyper whole heads only.
        let guard = sock.get_mut();
        let read = std::future::poll_fn(|cx| guard.poll_arrival(cx));
        // Parked means idle: nothing moves the deadline until the next byte.
        let deadline =
            idle::deadline(&activity.state(), t).unwrap_or_else(|| tokio::time::Instant::now() + t.http_keep_alive);
        let grace = DRAIN_IDLE_GRACE.min(t.http_keep_alive);
        self.idle_wait(read, deadline, cx.local, born, grace, None, &cx.sess).await == Some(true)
    }

    /// Runs a client connection to its end; a stop or a reload that removed its bind lets the
    /// exchange in flight finish first, a terminating reload closes it at once.
    async fn run_conn<C: Graceful<E>, E: std::fmt::Display>(
        &self,
        mut conn: std::pin::Pin<&mut C>,
        cx: &ConnCtx,
        born: u64,
        t: &crate::config::snapshot::Timeouts,
        activity: &idle::Activity,
        // HTTP/1: the connection parks when idle, and a head cut by `timeout http-request` gets a 408.
        h1: Option<&framing::Verdicts>,
    ) -> Ended {
        let parks = h1.is_some();
        let keep_alive = t.http_keep_alive;
        let mut drain = self.drain.subscribe();
        let local = cx.local;
        // The branches but the connection's own are gated: a request wakes the task several
        // times, and none of them has anything to do then (`gate`).
        use gate::Gated;
        tokio::select! {
            res = conn.as_mut() => finish(cx, Some(res)),
            () = Gated::new(activity.parkable(park::PARK_AFTER)), if parks => {
                let done = activity.state().done;
                conn.as_mut().shut_gracefully();
                // Idle, hyper closes at once; a request it had just taken would be answered
                // with `Connection: close`, so the connection is not parked then.
                match tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut()).await {
                    Ok(Ok(())) if activity.state().done == done => Ended::Parked,
                    res => finish(cx, res.ok()),
                }
            }
            why = Gated::new(activity.expired(t)) => {
                if why == idle::Expiry::Idle && h1.is_some_and(|v| v.time_out()) {
                    // A head had begun, or nothing came on a new connection (unless `option
                    // http-ignore-probes`): the service answers its stand-in with HAProxy's 408.
                    return finish(cx, tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut()).await.ok());
                }
                // Idle past its timer with nothing in progress, or a stalled stream: HTTP/2 gets
                // a GOAWAY first (a stalled stream does not finish within the grace).
                conn.as_mut().shut_gracefully();
                let ended = finish(cx, tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut()).await.ok());
                match why {
                    idle::Expiry::Idle => tracing::debug!(client = %cx.peer, "idle client connection closed (timeout http-request / http-keep-alive)"),
                    idle::Expiry::Stalled => tracing::info!(client = %cx.peer, "client connection closed: a response left unread for timeout client"),
                }
                ended
            }
            _ = Gated::new(drained(&mut drain)) => {
                // A request may already be on its way on an idle connection: for a moment it is
                // still answered (with `Connection: close`); then finish what is in flight and close.
                let grace = DRAIN_IDLE_GRACE.min(keep_alive);
                match tokio::time::timeout(grace, conn.as_mut()).await {
                    Ok(res) => finish(cx, Some(res)),
                    Err(_) => {
                        conn.as_mut().shut_gracefully();
                        finish(cx, Some(conn.as_mut().await))
                    }
                }
            }
            cut = Gated::new(sessions::or_killed(self.expiry(born, |a| !a.binds.contains_key(&local), false), &cx.sess)) => {
                let Some(cut) = cut else {
                    // `shutdown session(s)`: the connection and what it has in flight end at once.
                    tracing::info!(client = %cx.peer, "connection killed (shutdown session)");
                    return Ended::Done { finished: false };
                };
                let mut ended = Ended::Done { finished: false };
                if cut == Cut::Stale {
                    conn.as_mut().shut_gracefully();
                    let grace = self.active.load().snap.global.hard_stop_after;
                    ended = finish(cx, tokio::time::timeout(grace, conn.as_mut()).await.ok());
                }
                tracing::debug!(client = %cx.peer, "connection closed by reload ({cut:?})");
                ended
            }
        }
    }
}

/// An HTTP/1 client connection between two hyper connections: its socket (with the bytes
/// hyper had read) and what outlives each hyper connection.
struct H1Idle<I> {
    sock: park::Rewind<framing::Guard<idle::Watch<io::StallGuard<I>>>>,
    activity: Arc<idle::Activity>,
    verdicts: Arc<framing::Verdicts>,
    upgrades: park::ManualUpgrade,
}

impl<I> H1Idle<I> {
    fn new(io: I, cx: &ConnCtx, conn: &HttpConn<'_>) -> Self {
        let activity = idle::Activity::new(cx.accepted.1);
        let verdicts = Arc::new(framing::Verdicts::new(framing::head_limit(conn.bufsize), conn.ignore_probes));
        Self::with(io, conn, activity, verdicts)
    }

    fn with(io: I, conn: &HttpConn<'_>, activity: Arc<idle::Activity>, verdicts: Arc<framing::Verdicts>) -> Self {
        let watched =
            idle::Watch::new(io::StallGuard::new(io, conn.t.client, conn.fcnt.clone()), activity.clone(), true);
        // Outermost, so that bytes replayed after a park are not scanned twice.
        let sock = park::Rewind::new(framing::Guard::new(watched, verdicts.clone()));
        Self { sock, activity, verdicts, upgrades: park::ManualUpgrade::default() }
    }

    /// Bytes are already there for hyper (read back after hyper let go, or judged and waiting in
    /// the framing guard): the connection is served again at once, without waiting.
    fn has_input(&self) -> bool {
        self.sock.has_unread() || self.sock.get_ref().has_pending()
    }
}

impl H1Idle<TcpStream> {
    /// A parked connection whose wrappers hold nothing but the socket and the count of its
    /// exchanges is kept in the lot as that alone (the activity, verdicts and wrappers are
    /// ~0.5 KiB a connection); anything else parks whole.
    fn shed(self) -> Result<lot::Bare, Box<Self>> {
        let guard = self.sock.get_ref();
        let quiet = !self.sock.has_unread()
            && guard.holds_nothing()
            && !guard.get_ref().get_ref().stalled_write()
            && self.upgrades.unarmed()
            // Only this struct and its wrappers hold them: nothing of a request is left.
            && Arc::strong_count(&self.activity) == 2
            && Arc::strong_count(&self.verdicts) == 2;
        match self.activity.at_rest() {
            Some((done, since)) if quiet => {
                let sock = self.sock.into_inner().into_inner().into_inner().into_inner();
                Ok(lot::Bare { sock, done, since })
            }
            _ => Err(Box::new(self)),
        }
    }

    /// Makes a bare parked connection whole again, as it was when it parked.
    fn resume(bare: lot::Bare, cx: &ConnCtx, conn: &HttpConn<'_>) -> Self {
        let activity = idle::Activity::resumed(cx.accepted.1, bare.done, bare.since);
        let verdicts =
            Arc::new(framing::Verdicts::after_requests(framing::head_limit(conn.bufsize), conn.ignore_probes));
        Self::with(bare.sock, conn, activity, verdicts)
    }
}

/// hyper's HTTP/1 server settings for a client connection.
fn h1_builder(bufsize: usize) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's header read timer would also run while the connection waits for its next
    // request; `idle` keeps `http_request` and `http_keep_alive` apart instead.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES.max(bufsize + 8192))
        .max_headers(framing::HYPER_MAX_HEADERS)
        // HAProxy adds no `Date` of its own; a server's passes through.
        .auto_date_header(false)
        // A client that shuts its output still gets its answer, as from HAProxy; `option
        // abortonclose` drops a waiting request instead (`abort`).
        .half_close(true)
        .keep_alive(true);
    builder
}

/// hyper's HTTP/1 and HTTP/2 server connections, and the lean HTTP/1 one: all finish in-flight
/// work before closing.
trait Graceful<E>: std::future::Future<Output = Result<(), E>> {
    fn shut_gracefully(self: std::pin::Pin<&mut Self>);
}

/// How [`Proxy::run_conn`] left a connection.
enum Ended {
    /// Idle between HTTP/1 requests: hyper let go of the socket, which waits on its own.
    Parked,
    /// Over; `finished` when hyper completed (its socket may then be handed to a tunnel or closed
    /// politely), not when it was cut or gave up with an error.
    Done { finished: bool },
}

/// Logs how a connection's future ended (`None`: it was given up on).
fn finish<E: std::fmt::Display>(cx: &ConnCtx, res: Option<Result<(), E>>) -> Ended {
    match res {
        Some(res) => {
            let finished = res.is_ok();
            log_end(cx, res.err());
            Ended::Done { finished }
        }
        None => Ended::Done { finished: false },
    }
}

/// hyper's HTTP/1 connection polled so that it lets go of the socket instead of closing it:
/// [`park`] and upgrades take it from there.
struct KeepIo<I, S: hyper::service::HttpService<hyper::body::Incoming>>(hyper::server::conn::http1::Connection<I, S>);

impl<I, S> std::future::Future for KeepIo<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming> + Unpin,
    S::Future: Unpin,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<(), hyper::Error>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.get_mut().0.poll_without_shutdown(cx)
    }
}

impl<I, S> Graceful<hyper::Error> for KeepIo<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming> + Unpin,
    S::Future: Unpin,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_gracefully(self: std::pin::Pin<&mut Self>) {
        std::pin::Pin::new(&mut self.get_mut().0).graceful_shutdown();
    }
}

impl<I, S, E> Graceful<hyper::Error> for hyper::server::conn::http2::Connection<I, S, E>
where
    Self: std::future::Future<Output = Result<(), hyper::Error>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn shut_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// One stretch of an HTTP/1 connection: [`h1server::Lean`] while its requests are simple ones,
/// hyper's connection from the first that is not (with the bytes the lean path had read).
struct H1Stretch<R> {
    conn: H1Conn<R>,
    bufsize: usize,
}

// The whole stretch is boxed already (`serve_h1_stretch`), and `Gone` lives only while switching.
#[allow(clippy::large_enum_variant)]
enum H1Conn<R> {
    Lean(h1server::Lean<park::Rewind<R>>),
    /// Boxed: made only when a stretch meets a request the lean path does not serve.
    Hyper(Box<KeepIo<TokioIo<park::Rewind<R>>, h1server::Service>>),
    /// Only while switching.
    Gone,
}

type ConnError = Box<dyn std::error::Error + Send + Sync>;

impl<R> std::future::Future for H1Stretch<R>
where
    R: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type Output = Result<(), ConnError>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.conn {
                H1Conn::Lean(lean) => match std::task::ready!(lean.poll_step(cx)) {
                    h1server::Step::Done(res) => return std::task::Poll::Ready(res.map_err(Into::into)),
                    h1server::Step::Hyper => {
                        let H1Conn::Lean(lean) = std::mem::replace(&mut this.conn, H1Conn::Gone) else {
                            unreachable!()
                        };
                        let (mut sock, rest, svc) = lean.into_parts();
                        sock.unread(rest);
                        let hc = h1_builder(this.bufsize).serve_connection(TokioIo::new(sock), svc);
                        this.conn = H1Conn::Hyper(Box::new(KeepIo(hc)));
                    }
                },
                H1Conn::Hyper(keep) => {
                    return std::pin::Pin::new(&mut **keep).poll(cx).map_err(Into::into);
                }
                H1Conn::Gone => return std::task::Poll::Ready(Ok(())),
            }
        }
    }
}

impl<R> Graceful<ConnError> for H1Stretch<R>
where
    R: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    fn shut_gracefully(self: std::pin::Pin<&mut Self>) {
        match &mut self.get_mut().conn {
            H1Conn::Lean(lean) => lean.shut_gracefully(),
            H1Conn::Hyper(keep) => std::pin::Pin::new(&mut **keep).shut_gracefully(),
            H1Conn::Gone => {}
        }
    }
}

fn log_end<E: std::fmt::Display>(cx: &ConnCtx, err: Option<E>) {
    if let Some(e) = err {
        tracing::debug!(client = %cx.peer, "client connection ended: {e}");
    }
}

/// How long a connection closed for idleness may take to say goodbye (an HTTP/2 GOAWAY).
const IDLE_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long an idle HTTP/1 connection stays open once draining starts (see `serve_http`).
const DRAIN_IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves once a drain is requested (the watch guard never crosses an await).
async fn drained(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await.map(|_| ());
}

/// A server's connection pool: the one it had when its address, TLS and protocol are the same
/// (kept in `next`), else a new one.
fn pool_for(
    pmap: &PoolMap,
    next: &mut PoolMap,
    b: &crate::config::snapshot::Backend,
    s: &crate::config::snapshot::Server,
) -> Arc<Pool> {
    let tls_id = s.tls.as_ref().map_or(0, |t| Arc::as_ptr(&t.config) as usize);
    let key = (b.name.clone(), s.name.clone(), s.addr, tls_id, s.upstream.h2);
    let p = pmap
        .get(&key)
        .cloned()
        .unwrap_or_else(|| Arc::new(Pool::new(s.addr, s.tls.clone(), s.upstream.h2, b.pool_purge_delay)));
    p.set_max_age(b.pool_purge_delay);
    p.set_opts(&s.upstream);
    p.set_keepalive(b.srvtcpka);
    p.set_source(s.source.clone());
    next.insert(key, p.clone());
    p
}

fn build_active(
    snap: Arc<Snapshot>,
    generation: u64,
    registry: &Registry,
    pools: &Mutex<PoolMap>,
    limits: &Mutex<LimitMap>,
) -> Active {
    let rt = registry.attach(&snap);
    let mut pmap = pools.lock().unwrap_or_else(|p| p.into_inner());
    let mut next = HashMap::new();
    let pools: Vec<Vec<Arc<Pool>>> =
        snap.backends.iter().map(|b| b.servers.iter().map(|s| pool_for(&pmap, &mut next, b, s)).collect()).collect();
    *pmap = next;
    let mut lmap = limits.lock().unwrap_or_else(|p| p.into_inner());
    let mut next_l = HashMap::new();
    let fe_limits = snap
        .frontends
        .iter()
        .map(|f| {
            f.maxconn.map(|m| {
                let key = (f.name.clone(), m);
                let s = lmap.get(&key).cloned().unwrap_or_else(|| Arc::new(Semaphore::new(m as usize)));
                next_l.insert(key, s.clone());
                s
            })
        })
        .collect();
    *lmap = next_l;
    let mut binds = HashMap::default();
    for (i, f) in snap.frontends.iter().enumerate() {
        for b in &f.binds {
            binds.insert(b.addr, i);
        }
    }
    let logger =
        crate::log::Logger::start_with(snap.global.log.clone(), snap.global.log_framing, snap.global.log_ident.clone());
    // A proxy's `log_tag` replaces the global one in its lines.
    let ident = |tag: &Option<String>| crate::log::Ident {
        tag: tag.clone().or_else(|| snap.global.log_ident.tag.clone()),
        ..snap.global.log_ident.clone()
    };
    let fe_loggers = snap
        .frontends
        .iter()
        .map(|f| {
            let tagged = f.logging.tag.is_some() && f.logging.global;
            (!f.logging.targets.is_empty() || tagged).then(|| {
                let mut targets = f.logging.targets.clone();
                if f.logging.global {
                    targets.extend(snap.global.log.iter().cloned());
                }
                crate::log::Logger::start_with(targets, snap.global.log_framing, ident(&f.logging.tag))
            })
        })
        .collect();
    let be_loggers = snap
        .backends
        .iter()
        .map(|b| {
            let t = match (&b.log_targets, &b.log_tag) {
                (Some(t), _) => t.clone(),
                (None, Some(_)) => snap.global.log.clone(),
                (None, None) => return None,
            };
            Some(crate::log::Logger::start_with(t, snap.global.log_framing, ident(&b.log_tag)))
        })
        .collect();
    Active { generation, snap, rt, pools, binds, fe_limits, logger, fe_loggers, be_loggers }
}

/// A client's TLS handshake that did not complete (`error`; `None`: `timeout client` came
/// first): HAProxy's connection error line when the frontend logs sessions (`handshake`).
fn handshake_failed(
    active: &Active,
    fi: usize,
    cx: &ConnCtx,
    bind: usize,
    error: Option<crate::tls::lines::HandshakeError>,
) {
    let failure = match &error {
        Some(e) => handshake::Failure::of(&e.error, e.before_hello),
        None => handshake::Failure::Timeout,
    };
    tracing::debug!(client = %cx.peer, error = ?error.map(|e| e.error), "TLS handshake: {}", failure.reason());
    let fe = &active.snap.frontends[fi];
    let logger = active.fe_logger(fi);
    if !matches!(fe.log, LogMode::Http | LogMode::Tcp) || !logger.enabled() || !failure.logged(fe.dontlognull) {
        return;
    }
    let label = handshake::bind_label(fe.binds[bind].name.as_deref(), bind);
    let level = if fe.logging.separate_errors { Level::Err } else { Level::Info };
    logger.log(level, &handshake::line(cx.peer, cx.accepted.0, &fe.name, &label, failure));
}
