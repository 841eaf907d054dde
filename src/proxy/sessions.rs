//! The session registry behind `show sess`, `shutdown session` and `shutdown sessions server`:
//! every client connection (TCP or HTTP, plain or TLS, serving or parked in the lot) has an entry
//! from its accept to its end, with the backend and server its last request went to. The cost per
//! connection is one insert and one remove in one of [`SHARDS`] maps (consecutive ids fall in
//! different shards); per request, a load and a compare, unless the server changed.

use super::{Active, ConnCtx};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// How many maps the entries are spread over: no connection's accept or end contends with most
/// others'.
pub const SHARDS: usize = 16;

/// Entries by id, sharded by id. Generic so the bookkeeping is tested without connections.
pub struct Table<T> {
    shards: [Mutex<HashMap<u64, T>>; SHARDS],
    next: AtomicU64,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { shards: std::array::from_fn(|_| Mutex::new(HashMap::new())), next: AtomicU64::new(1) }
    }
}

impl<T: Clone> Table<T> {
    /// A fresh id (never 0: HAProxy reads 0 as "no session").
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, T>> {
        &self.shards[(id % SHARDS as u64) as usize]
    }

    pub fn insert(&self, id: u64, v: T) {
        self.shard(id).lock().insert(id, v);
    }

    pub fn remove(&self, id: u64) {
        self.shard(id).lock().remove(&id);
    }

    pub fn get(&self, id: u64) -> Option<T> {
        self.shard(id).lock().get(&id).cloned()
    }

    /// Every entry, oldest first (each shard is locked in turn, never two at once).
    pub fn all(&self) -> Vec<(u64, T)> {
        let mut out: Vec<(u64, T)> = Vec::new();
        for s in &self.shards {
            out.extend(s.lock().iter().map(|(k, v)| (*k, v.clone())));
        }
        out.sort_unstable_by_key(|(k, _)| *k);
        out
    }
}

/// The proxy's registry: weak references, so that an entry never keeps a connection alive.
#[derive(Default)]
pub struct Sessions {
    table: Table<Weak<ConnCtx>>,
    /// Bumped by every kill: the lot looks through its connections when it changed.
    kills: AtomicU64,
}

impl Sessions {
    pub fn next_id(&self) -> u64 {
        self.table.next_id()
    }

    /// Files a connection under its id until `guard` (kept in its slots) is dropped.
    pub fn register(self: &Arc<Self>, cx: &Arc<ConnCtx>) {
        self.table.insert(cx.sess.id, Arc::downgrade(cx));
    }

    /// The guard that removes entry `id` when the connection and its tunnels have ended.
    pub fn guard(self: &Arc<Self>, id: u64) -> Guard {
        Guard { sessions: self.clone(), id }
    }

    pub fn get(&self, id: u64) -> Option<Arc<ConnCtx>> {
        self.table.get(id)?.upgrade()
    }

    /// Every live connection, oldest first.
    pub fn all(&self) -> Vec<Arc<ConnCtx>> {
        self.table.all().into_iter().filter_map(|(_, w)| w.upgrade()).collect()
    }

    /// The number of kills so far.
    pub fn kills(&self) -> u64 {
        self.kills.load(Ordering::Acquire)
    }

    /// Ends one connection: false when no live connection has this id.
    pub fn kill(&self, id: u64) -> bool {
        let Some(cx) = self.get(id) else { return false };
        self.kill_one(&cx);
        true
    }

    /// Ends every connection whose last request went to `backend/server`; how many.
    pub fn kill_server(&self, backend: &str, server: &str) -> usize {
        let mut n = 0;
        for cx in self.all() {
            if cx.sess.route_names().is_some_and(|(b, s)| b == backend && s.as_deref() == Some(server)) {
                self.kill_one(&cx);
                n += 1;
            }
        }
        n
    }

    fn kill_one(&self, cx: &ConnCtx) {
        cx.sess.killed.store(true, Ordering::Release);
        cx.sess.notify.notify_waiters();
        self.kills.fetch_add(1, Ordering::AcqRel);
        // A connection waiting for its next byte (in its task or in the lot) looks at its flag.
        cx.proxy.idle_wake.notify_waiters();
    }
}

/// Removes the entry when dropped; held with the connection's `maxconn` slots, so it lasts as
/// long as the connection and every tunnel it opened.
pub struct Guard {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.sessions.table.remove(self.id);
    }
}

/// The backend and server a connection's last request went to, in the snapshot that served it.
struct Route {
    active: Arc<Active>,
    bi: u32,
    /// `NO_SERVER` before one is chosen.
    si: u32,
}

const NO_SERVER: u32 = u32::MAX;

impl Route {
    fn server(&self) -> Option<usize> {
        (self.si != NO_SERVER).then_some(self.si as usize)
    }
}

/// What the registry knows of one connection (held in its `ConnCtx`).
pub struct Facts {
    pub id: u64,
    /// The snapshot it was accepted under and its frontend there.
    pub accepted_in: Arc<Active>,
    fi: u32,
    /// The proxy thread serving it (`workers::here()` where it was accepted: it stays there).
    pub thread: u32,
    route: Mutex<Option<Route>>,
    /// `route_key` of the route above, compared per request without the lock.
    key: AtomicU64,
    killed: AtomicBool,
    notify: tokio::sync::Notify,
}

/// No route yet.
const NO_KEY: u64 = u64::MAX;

/// The route packed for a lock-free compare: generation, backend and server in 24, 20 and 20
/// bits. A route whose parts do not fit gets `NO_KEY`, which never matches (the lock is taken).
pub fn route_key(generation: u64, bi: usize, si: Option<usize>) -> u64 {
    let si = si.map_or(0, |s| s as u64 + 1);
    if generation >= 1 << 24 || bi as u64 >= 1 << 20 || si >= 1 << 20 {
        return NO_KEY;
    }
    (generation << 40) | ((bi as u64) << 20) | si
}

impl Facts {
    pub fn new(id: u64, accepted_in: Arc<Active>, fi: usize) -> Self {
        Self {
            id,
            accepted_in,
            fi: fi as u32,
            thread: u32::try_from(super::workers::here()).unwrap_or(u32::MAX),
            route: Mutex::new(None),
            key: AtomicU64::new(NO_KEY),
            killed: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// Notes the backend (and server, once chosen) of the request being served. Only a change
    /// takes the entry's own lock.
    pub fn routed(&self, active: &Arc<Active>, bi: usize, si: Option<usize>) {
        let key = route_key(active.generation, bi, si);
        if key != NO_KEY && self.key.load(Ordering::Relaxed) == key {
            return;
        }
        let si = si.map_or(NO_SERVER, |s| s as u32);
        *self.route.lock() = Some(Route { active: active.clone(), bi: bi as u32, si });
        self.key.store(key, Ordering::Relaxed);
    }

    /// Backend and server names of the last route.
    pub fn route_names(&self) -> Option<(String, Option<String>)> {
        let g = self.route.lock();
        let r = g.as_ref()?;
        let b = &r.active.snap.backends[r.bi as usize];
        Some((b.name.clone(), r.server().map(|s| b.servers[s].name.clone())))
    }

    /// The last route's backend and server, as indexes in their snapshot with its names,
    /// for `show sess ID` (see `crate::control::sess`).
    pub fn route_detail(&self) -> Option<(Arc<Active>, usize, Option<usize>)> {
        let g = self.route.lock();
        g.as_ref().map(|r| (r.active.clone(), r.bi as usize, r.server()))
    }

    /// Its frontend's index in `accepted_in`.
    pub fn fi(&self) -> usize {
        self.fi as usize
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves once `shutdown session` or `shutdown sessions server` ended this connection.
    pub async fn killed(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            // Registered before the flag is read: a kill in between still wakes it.
            n.as_mut().enable();
            if self.is_killed() {
                return;
            }
            n.await;
        }
    }
}

/// `fut`'s output, or None once the connection was killed first.
pub async fn or_killed<F: std::future::Future>(fut: F, facts: &Facts) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = facts.killed() => None,
        out = fut => Some(out),
    }
}

/// Resolves when the connection is killed (for a task that owns its context, a tunnel).
pub async fn killed_owned(cx: Arc<ConnCtx>) {
    cx.sess.killed().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_shards_and_list_in_order() {
        let t: Table<&str> = Table::default();
        let ids: Vec<u64> = (0..40).map(|_| t.next_id()).collect();
        assert_eq!(ids[0], 1, "0 is never an id");
        for (i, id) in ids.iter().enumerate() {
            t.insert(*id, if i % 2 == 0 { "even" } else { "odd" });
        }
        let used: std::collections::HashSet<usize> =
            t.shards.iter().enumerate().filter(|(_, s)| !s.lock().is_empty()).map(|(i, _)| i).collect();
        assert_eq!(used.len(), SHARDS);
        t.remove(ids[3]);
        assert_eq!(t.get(ids[3]), None);
        assert_eq!(t.get(ids[4]), Some("even"));
        let all = t.all();
        assert_eq!(all.len(), 39);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    }

    fn proxy() -> Arc<super::super::Proxy> {
        let src = "[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"be\"\nbind = [\"127.0.0.1:1\"]\n\
                   servers = [{ name = \"s1\", addr = \"127.0.0.1:2\" }, { name = \"s2\", addr = \"127.0.0.1:3\" }]\n";
        super::super::Proxy::new(crate::config::parse(src, std::path::Path::new("t.toml")).unwrap())
    }

    /// A registered connection and its registry guard, as `open_conn` makes them.
    fn conn(p: &Arc<super::super::Proxy>) -> (Arc<ConnCtx>, Guard) {
        let id = p.sessions.next_id();
        let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let cx = Arc::new(ConnCtx {
            proxy: p.clone(),
            peer: addr,
            local: addr,
            tls: false,
            accepted: (std::time::SystemTime::now(), tokio::time::Instant::now()),
            requests: Default::default(),
            slots: std::sync::Mutex::new(None),
            rules: Default::default(),
            sess_vars: Default::default(),
            tls_info: Default::default(),
            client: Default::default(),
            private: Default::default(),
            sess: Facts::new(id, p.active.load_full(), 0),
            fd: crate::proxy::addrs::ClientFd::new(-1),
            moved: Default::default(),
            moved_any: Default::default(),
        });
        p.sessions.register(&cx);
        (cx, p.sessions.guard(id))
    }

    #[tokio::test]
    async fn kills_reach_the_one_named_or_those_on_the_server() {
        let p = proxy();
        let active = p.active.load_full();
        let (a, _ga) = conn(&p);
        let (b, _gb) = conn(&p);
        let (c, gc) = conn(&p);
        assert_eq!(a.sess.route_names(), None);
        a.sess.routed(&active, 0, None);
        assert_eq!(a.sess.route_names(), Some(("be".into(), None)));
        a.sess.routed(&active, 0, Some(0));
        b.sess.routed(&active, 0, Some(1));
        c.sess.routed(&active, 0, Some(1));
        // The next request of `b` goes to s1: the route follows.
        b.sess.routed(&active, 0, Some(0));
        assert_eq!(b.sess.route_names(), Some(("be".into(), Some("s1".into()))));
        assert_eq!(p.sessions.all().len(), 3);

        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.sess.killed().await }
        });
        assert_eq!(p.sessions.kill_server("be", "s2"), 1);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await.unwrap().unwrap();
        assert!(c.sess.is_killed() && !a.sess.is_killed() && !b.sess.is_killed());
        assert_eq!(p.sessions.kill_server("be", "nope"), 0);
        assert_eq!(p.sessions.kills(), 1);

        assert!(p.sessions.kill(a.sess.id));
        assert!(a.sess.is_killed() && !b.sess.is_killed());
        // Its end already came: `or_killed` gives up at once.
        assert_eq!(or_killed(std::future::pending::<()>(), &a.sess).await, None);
        assert_eq!(or_killed(std::future::ready(7), &b.sess).await, Some(7));

        // The guard's drop (the connection's end) removes the entry, even while `c` lives on.
        drop(gc);
        assert!(p.sessions.get(c.sess.id).is_none());
        assert!(!p.sessions.kill(c.sess.id));
        // A dropped connection is gone even before its guard.
        let id = b.sess.id;
        drop(b);
        assert!(p.sessions.get(id).is_none());
        assert_eq!(p.sessions.all().len(), 1);
    }

    #[test]
    fn route_keys_differ_by_generation_backend_and_server() {
        let k = route_key(3, 1, Some(0));
        assert_ne!(k, route_key(4, 1, Some(0)));
        assert_ne!(k, route_key(3, 2, Some(0)));
        assert_ne!(k, route_key(3, 1, Some(1)));
        assert_ne!(k, route_key(3, 1, None));
        assert_ne!(route_key(1, 0, None), NO_KEY);
        // Too large to pack: never matches, so the route is always written.
        assert_eq!(route_key(1 << 24, 0, None), NO_KEY);
        assert_eq!(route_key(1, 1 << 20, None), NO_KEY);
        assert_eq!(route_key(1, 0, Some((1 << 20) - 1)), NO_KEY);
    }
}
