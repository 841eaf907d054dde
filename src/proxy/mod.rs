//! The proxy engine: listeners, per-connection dispatch to `tcp` or `http`, server pools.

pub mod body;
pub mod errors;
pub mod framing;
pub mod http;
pub mod io;
pub mod listener;
pub mod pool;
pub mod shutdown;
pub mod tcp;

use crate::config::Snapshot;
use crate::config::snapshot::Mode;
use crate::state::{Attached, Registry};
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioIo, TokioTimer};
use pool::Pool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

/// Largest request header section accepted; beyond it the client gets a 431.
const MAX_HEADER_BYTES: usize = framing::MAX_HEAD;

/// Server pools by (backend, server, address): kept across reloads while all three match.
type PoolMap = HashMap<(String, String, SocketAddr), Arc<Pool>>;
/// Frontend connection limits by (frontend, maxconn).
type LimitMap = HashMap<(String, u32), Arc<Semaphore>>;

/// One config snapshot with the runtime state matched to it. Swapped whole on reload.
pub struct Active {
    pub generation: u64,
    pub snap: Arc<Snapshot>,
    pub rt: Attached,
    /// Server connection pools, `[backend][server]`.
    pub pools: Vec<Vec<Arc<Pool>>>,
    /// Bind address → frontend index.
    pub binds: HashMap<SocketAddr, usize>,
    /// Per-frontend `maxconn`.
    pub fe_limits: Vec<Option<Arc<Semaphore>>>,
}

impl crate::routing::Live for Active {
    fn nbsrv(&self, backend: &str) -> usize {
        self.snap
            .backend(backend)
            .map_or(0, |(i, _)| self.rt.backends[i].nbsrv())
    }
}

/// What every connection task shares.
pub struct Proxy {
    pub active: ArcSwap<Active>,
    pub registry: Registry,
    pools: Mutex<PoolMap>,
    limits: Mutex<LimitMap>,
    pub global_limit: Arc<Semaphore>,
    /// Flips to true when connections should finish their current exchange and close.
    pub drain: watch::Sender<bool>,
    pub tracker: TaskTracker,
    pub started: Instant,
}

/// Per client connection facts.
pub struct ConnCtx {
    pub proxy: Arc<Proxy>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl Proxy {
    pub fn new(snap: Snapshot) -> Arc<Self> {
        let maxconn = snap.global.maxconn as usize;
        let registry = Registry::default();
        let pools = Mutex::new(HashMap::new());
        let limits = Mutex::new(HashMap::new());
        let active = build_active(Arc::new(snap), 1, &registry, &pools, &limits);
        Arc::new(Self {
            active: ArcSwap::from_pointee(active),
            registry,
            pools,
            limits,
            global_limit: Arc::new(Semaphore::new(maxconn)),
            drain: watch::channel(false).0,
            tracker: TaskTracker::new(),
            started: Instant::now(),
        })
    }

    /// Swaps in a new snapshot; runtime state and pools carry over by name.
    pub fn install(&self, snap: Snapshot) -> Arc<Active> {
        let generation = self.active.load().generation + 1;
        let a = Arc::new(build_active(
            Arc::new(snap),
            generation,
            &self.registry,
            &self.pools,
            &self.limits,
        ));
        self.active.store(a.clone());
        a
    }

    /// Serves one accepted client connection until it ends.
    pub async fn serve_conn(self: Arc<Self>, sock: TcpStream, peer: SocketAddr, local: SocketAddr) {
        let active = self.active.load_full();
        let Some(&fi) = active.binds.get(&local) else {
            return;
        };
        let _fe_permit = match active.fe_limits[fi].clone() {
            Some(sem) => match sem.acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return,
            },
            None => None,
        };
        let fe = &active.snap.frontends[fi];
        let _session = active.rt.frontends[fi].open_session();
        let _ = sock.set_nodelay(true);
        let cx = Arc::new(ConnCtx {
            proxy: self.clone(),
            peer,
            local,
        });
        match fe.mode {
            // TCP sessions have no request boundary: a stop lets them run until the hard stop.
            Mode::Tcp => tcp::serve(sock, active.clone(), fi, cx).await,
            Mode::Http => self.serve_http(sock, cx, fe.timeouts).await,
        }
    }

    async fn serve_http(
        &self,
        sock: TcpStream,
        cx: Arc<ConnCtx>,
        t: crate::config::snapshot::Timeouts,
    ) {
        let verdicts = Arc::new(framing::Verdicts::default());
        let io = TokioIo::new(framing::Guard::new(
            io::StallGuard::new(sock, t.client),
            verdicts.clone(),
        ));
        let svc_cx = cx.clone();
        let svc = hyper::service::service_fn(move |req| {
            let cx = svc_cx.clone();
            let verdict = verdicts.next();
            async move { Ok::<_, std::convert::Infallible>(http::handle(req, verdict, cx).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(t.http_request)
            .max_buf_size(MAX_HEADER_BYTES)
            .keep_alive(true);
        let conn = builder.serve_connection(io, svc).with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let mut drain = self.drain.subscribe();
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(client = %cx.peer, "client connection ended: {e}");
                }
            }
            _ = drained(&mut drain) => {
                // Finish the exchange in flight, then close.
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.as_mut().await {
                    tracing::debug!(client = %cx.peer, "client connection ended while draining: {e}");
                }
            }
        }
    }
}

/// Resolves once a drain is requested (the watch guard never crosses an await).
async fn drained(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|d| *d).await.map(|_| ());
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
    let pools: Vec<Vec<Arc<Pool>>> = snap
        .backends
        .iter()
        .map(|b| {
            b.servers
                .iter()
                .map(|s| {
                    let key = (b.name.clone(), s.name.clone(), s.addr);
                    let p = pmap
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Pool::new(s.addr)));
                    next.insert(key, p.clone());
                    p
                })
                .collect()
        })
        .collect();
    *pmap = next;
    let mut lmap = limits.lock().unwrap_or_else(|p| p.into_inner());
    let mut next_l = HashMap::new();
    let fe_limits = snap
        .frontends
        .iter()
        .map(|f| {
            f.maxconn.map(|m| {
                let key = (f.name.clone(), m);
                let s = lmap
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Semaphore::new(m as usize)));
                next_l.insert(key, s.clone());
                s
            })
        })
        .collect();
    *lmap = next_l;
    let mut binds = HashMap::new();
    for (i, f) in snap.frontends.iter().enumerate() {
        for b in &f.binds {
            binds.insert(*b, i);
        }
    }
    Active {
        generation,
        snap,
        rt,
        pools,
        binds,
        fe_limits,
    }
}
