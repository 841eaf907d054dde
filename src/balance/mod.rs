//! Server selection for a backend (HAProxy's `balance`, `hash-type`, `backup`, `allbackups`).
//!
//! A [`Selector`] is built once per backend from the config and shared by every worker thread.
//! It never stores health: each pick reads the caller's live facts through [`ServerState`], so
//! a health flip, a drain or a runtime `set weight` takes effect at the next pick with no rebuild.
//! Picks do not allocate; the only lock is round robin's small `Mutex` of current weights.
//!
//! Server eligibility follows HAProxy: a server is a candidate when it is usable and its runtime
//! weight is non-zero. Backup servers are used only when no normal server is a candidate; then the
//! first usable backup takes everything, or, with `allbackups`, all usable backups share the load
//! by the backend's algorithm.
//!
//! A server at its `maxconn` stays a candidate, as in HAProxy. The hashing algorithms build their
//! tables from the candidates and, for a request with a key, return its server even when full:
//! the caller queues the request on that server ([`Pick::hashed`]), as HAProxy's
//! `assign_server_and_queue`. Every other pick (round robin, leastconn, first, random, static-rr
//! and the round robin a hashing algorithm falls back to without a key) skips full servers and
//! gives None when all are full, so the caller waits in the backend queue.

mod algorithm;
mod cache;
mod consistent;
mod first;
mod hash;
mod leastconn;
mod mapped;
mod random;
mod roundrobin;
mod static_rr;

pub use algorithm::{
    Algorithm, BalanceError, DEFAULT_RANDOM_DRAWS, DEFAULT_RDP_COOKIE, HashFunction, HashMethod, HashType,
};

use hash::KeySource;
use leastconn::LeastConn;
use random::Rng;
use roundrobin::SmoothRoundRobin;
use static_rr::StaticRr;
use std::net::IpAddr;

/// What the config says about one server; its index in the slice is its identity in a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// Configured weight, 0..=256.
    pub weight: u32,
    pub backup: bool,
    /// Used by `first` to decide when a server is full; `Some(0)` means no limit, as in HAProxy.
    pub maxconn: Option<u32>,
}

/// Runtime facts the caller owns (health, admin state, live connections, runtime weight).
/// Indexes are those of the `servers` slice given to [`Selector::new`].
pub trait ServerState {
    /// Up and not in maintenance, whatever its load.
    fn usable(&self, idx: usize) -> bool;
    fn conns(&self, idx: usize) -> u32;
    fn weight(&self, idx: usize) -> u32;
    /// At its connection limit: a new request has to wait for it.
    fn full(&self, idx: usize) -> bool;
}

/// A chosen server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub server: usize,
    /// Chosen by the request's hash, so it may be full: the request then waits for this server
    /// rather than going to another, as HAProxy queues it on the server.
    pub hashed: bool,
}

/// The parts of a request the hashing algorithms read; absent parts make them fall back to
/// round robin, as HAProxy does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub src: Option<IpAddr>,
    pub path_and_query: Option<&'a str>,
    /// The request line's target when it is not in origin form (absolute form, as every
    /// HTTP/2 request with an authority is for HAProxy): what `balance uri` hashes without
    /// `path-only`, default port dropped as HAProxy normalizes it.
    pub target: Option<&'a str>,
    /// What was read of a POST's body (up to the buffer size): `url_param` looks there when the
    /// query lacks the parameter, as HAProxy.
    pub post_body: Option<&'a [u8]>,
    pub headers: Option<&'a http::HeaderMap>,
    /// The key the caller computed for `balance hash` (the expression's value) and
    /// `balance rdp-cookie` (the cookie's value); None when the request has none.
    pub key: Option<&'a [u8]>,
}

/// One backend's load balancer. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Selector {
    algorithm: Algorithm,
    specs: Box<[ServerSpec]>,
    /// Indexes of normal servers, ascending.
    normal: Box<[usize]>,
    /// Indexes of backup servers, ascending.
    backup: Box<[usize]>,
    allbackups: bool,
    strategy: Strategy,
    /// Round robin state: the algorithm itself, or the fallback when a hash key is missing.
    rr: SmoothRoundRobin,
    /// Per-server ids (HAProxy's `puid`, 1-based position unless set): where each server's
    /// consistent-hash points lie.
    puids: Box<[u32]>,
    /// GCD of the configured weights: map-based hashing divides weights by it, as HAProxy.
    gcd: u32,
}

#[derive(Debug)]
enum Strategy {
    RoundRobin,
    StaticRr(StaticRr),
    LeastConn(LeastConn),
    First,
    Hash { key: KeySource, hash_type: HashType, tables: HashTables },
    Random { draws: u32, rng: Rng },
}

/// The lookup tables of a hashing backend, each rebuilt when the candidates' weights change.
#[derive(Debug, Default)]
struct HashTables {
    map: cache::Cache<Box<[usize]>>,
    ring: cache::Cache<Box<[(u32, usize)]>>,
}

/// Which servers a pick is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Normal,
    Backup,
}

/// The servers of one tier that may be chosen by this pick, read through the caller's state.
#[derive(Clone, Copy)]
struct Candidates<'a> {
    members: &'a [usize],
    state: &'a dyn ServerState,
    avoid: Option<usize>,
    /// Leave out servers at their limit (every pick but a hashed one).
    skip_full: bool,
}

impl Candidates<'_> {
    /// Runtime weight of server `i` if it may be chosen now.
    fn weight(&self, i: usize) -> Option<u32> {
        if Some(i) == self.avoid || !self.state.usable(i) || (self.skip_full && self.state.full(i)) {
            return None;
        }
        let w = self.state.weight(i);
        (w > 0).then_some(w)
    }

    /// `(index, runtime weight)` of every choosable member, in index order.
    fn iter(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.members.iter().filter_map(|&i| self.weight(i).map(|w| (i, w)))
    }

    /// Sum of runtime weights and number of choosable members.
    fn totals(&self) -> (u64, usize) {
        self.iter().fold((0, 0), |(sum, n), (_, w)| (sum + u64::from(w), n + 1))
    }

    /// The member owning position `target` in `[0, total)` of the cumulative weights. Live
    /// weights may shrink between summing and walking; then the last candidate seen is used.
    fn by_cumulative_weight(&self, mut target: u64) -> Option<usize> {
        let mut last = None;
        for (i, w) in self.iter() {
            let w = u64::from(w);
            if target < w {
                return Some(i);
            }
            target -= w;
            last = Some(i);
        }
        last
    }
}

/// Load as a fraction `(conns + 1) / weight`, compared without division. The `+ 1` lets weight
/// matter between idle servers, as in HAProxy's leastconn.
#[derive(Debug, Clone, Copy)]
struct Load {
    conns: u64,
    weight: u64,
}

impl Load {
    fn of(state: &dyn ServerState, i: usize, weight: u32) -> Load {
        Load { conns: u64::from(state.conns(i)) + 1, weight: u64::from(weight) }
    }

    fn lighter_than(self, other: Load) -> bool {
        // Both products fit in u128 with room to spare.
        u128::from(self.conns) * u128::from(other.weight) < u128::from(other.conns) * u128::from(self.weight)
    }
}

impl Selector {
    pub fn new(algo: &Algorithm, hash_type: HashType, servers: &[ServerSpec], allbackups: bool) -> Selector {
        Selector::with_seed(algo, hash_type, servers, allbackups, random::seed_from_clock())
    }

    /// `new` with a fixed random seed, so `random` is reproducible in tests.
    fn with_seed(
        algo: &Algorithm,
        hash_type: HashType,
        servers: &[ServerSpec],
        allbackups: bool,
        seed: u64,
    ) -> Selector {
        let normal = (0..servers.len()).filter(|&i| !servers[i].backup).collect();
        let backup = (0..servers.len()).filter(|&i| servers[i].backup).collect();
        let strategy = match algo {
            Algorithm::RoundRobin => Strategy::RoundRobin,
            Algorithm::StaticRr => Strategy::StaticRr(StaticRr::new(servers.len())),
            Algorithm::LeastConn => Strategy::LeastConn(LeastConn::default()),
            Algorithm::First => Strategy::First,
            Algorithm::Random { draws } => Strategy::Random { draws: *draws, rng: Rng::new(seed) },
            Algorithm::Source
            | Algorithm::Uri { .. }
            | Algorithm::UrlParam { .. }
            | Algorithm::Hdr { .. }
            | Algorithm::Hash(_)
            | Algorithm::RdpCookie(_) => {
                Strategy::Hash { key: KeySource::new(algo), hash_type, tables: HashTables::default() }
            }
        };
        Selector {
            algorithm: algo.clone(),
            specs: servers.into(),
            normal,
            backup,
            allbackups,
            strategy,
            rr: SmoothRoundRobin::new(servers.len()),
            puids: (1..=servers.len() as u32).collect(),
            gcd: mapped::weight_gcd(servers.iter().map(|s| s.weight)),
        }
    }

    /// Gives servers their ids (HAProxy's `id`, `puid`), where their consistent-hash points lie:
    /// the same ids give the same mapping as HAProxy, and a reload that removes or reorders
    /// servers moves only the keys of the servers that changed. `puids[i]` is server `i`'s;
    /// servers without an entry keep their 1-based position.
    pub fn with_server_puids(mut self, puids: &[u32]) -> Selector {
        for (slot, &id) in self.puids.iter_mut().zip(puids) {
            *slot = id;
        }
        self
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The hash type of a hashing algorithm (None for the others).
    /// `option allbackups`, as given to [`Selector::new`].
    pub fn allbackups(&self) -> bool {
        self.allbackups
    }

    pub fn hash_type(&self) -> Option<HashType> {
        match &self.strategy {
            Strategy::Hash { hash_type, .. } => Some(*hash_type),
            _ => None,
        }
    }

    /// Index of the chosen server, or None when no server is usable or every one that may be
    /// chosen is full. A hashed pick may be full ([`Pick::hashed`]).
    pub fn pick(&self, req: &Request<'_>, state: &dyn ServerState) -> Option<usize> {
        self.choose(req, state, None).map(|p| p.server)
    }

    /// Like `pick`, but never returns `avoid` unless it is the only usable server of the tier in
    /// use (for redispatch on retry). As in HAProxy, avoiding the last normal server does not
    /// bring in the backups: they serve only when every normal server is down.
    pub fn pick_avoiding(&self, req: &Request<'_>, state: &dyn ServerState, avoid: usize) -> Option<usize> {
        self.choose(req, state, Some(avoid)).map(|p| p.server)
    }

    /// `pick` (or with `avoid`, `pick_avoiding`), telling whether the request's hash chose the
    /// server.
    pub fn choose(&self, req: &Request<'_>, state: &dyn ServerState, avoid: Option<usize>) -> Option<Pick> {
        let hash = match &self.strategy {
            Strategy::Hash { key, hash_type, .. } => key.hash(req, *hash_type),
            _ => None,
        };
        let server = self.select(state, avoid, hash)?;
        Some(Pick { server, hashed: hash.is_some() })
    }

    fn select(&self, state: &dyn ServerState, avoid: Option<usize>, hash: Option<u32>) -> Option<usize> {
        // The tier in use depends on which servers are usable, not on which are full.
        let all = Candidates { members: &self.normal, state, avoid: None, skip_full: false };
        let tier = if all.iter().next().is_some() {
            Tier::Normal
        } else if (Candidates { members: &self.backup, ..all }).iter().next().is_some() {
            Tier::Backup
        } else {
            return None;
        };
        let members = match tier {
            Tier::Normal => &self.normal,
            Tier::Backup => &self.backup,
        };
        let cands = Candidates { members, state, avoid, skip_full: hash.is_none() };
        let chosen = if tier == Tier::Backup && !self.allbackups {
            cands.iter().next().map(|(i, _)| i)
        } else {
            self.dispatch(&cands, hash)
        };
        chosen.or_else(|| {
            // Only `avoid` was left in the tier: retrying it beats failing.
            let a = avoid?;
            let in_tier = self.specs.get(a).is_some_and(|s| s.backup == (tier == Tier::Backup));
            (in_tier && Candidates { avoid: None, ..cands }.weight(a).is_some()).then_some(a)
        })
    }

    /// `hash`: the request's key hash (None for the non-hashing algorithms, or no key).
    fn dispatch(&self, c: &Candidates<'_>, hash: Option<u32>) -> Option<usize> {
        match &self.strategy {
            Strategy::RoundRobin => self.rr.pick(c),
            Strategy::StaticRr(s) => s.pick(c, &self.specs),
            Strategy::LeastConn(l) => l.pick(c),
            Strategy::First => first::pick(c, &self.specs),
            Strategy::Random { draws, rng } => random::pick(c, rng, *draws),
            Strategy::Hash { hash_type, tables, .. } => match hash {
                Some(h) => {
                    // The table holds every candidate, full or not; the avoided one is skipped
                    // in it.
                    let all = Candidates { avoid: None, skip_full: false, ..*c };
                    match hash_type.method {
                        HashMethod::MapBased => {
                            let b = tables.map.get(&all, |w| mapped::build(w, self.gcd));
                            mapped::lookup(&b.table, h, c.avoid)
                        }
                        HashMethod::Consistent => {
                            let b = tables.ring.get(&all, |w| consistent::build(w, &self.puids));
                            consistent::lookup(&b.table, h, c.avoid)
                        }
                    }
                }
                None => self.rr.pick(c),
            },
        }
    }

    /// Lookup tables a hashing backend has built so far.
    #[cfg(test)]
    fn table_builds(&self) -> u64 {
        match &self.strategy {
            Strategy::Hash { tables, .. } => tables.map.builds() + tables.ring.builds(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::testing::{Fake, backup, counts, normal};
    use super::*;
    use std::sync::Arc;

    const ALL: [&str; 11] = [
        "roundrobin",
        "static-rr",
        "leastconn",
        "first",
        "source",
        "uri",
        "url_param id",
        "hdr(x-id)",
        "random",
        "hash src",
        "rdp-cookie",
    ];

    fn with_backups(normal_weights: &[u32], backups: usize) -> Vec<ServerSpec> {
        let mut specs = normal(normal_weights);
        specs.extend((0..backups).map(|_| backup(1)));
        specs
    }

    fn each_selector(specs: &[ServerSpec], allbackups: bool) -> Vec<Selector> {
        let mut v = Vec::new();
        for text in ALL {
            let algo = Algorithm::parse(text).unwrap();
            for ht in [HashType::map_based(), HashType::consistent()] {
                v.push(Selector::new(&algo, ht, specs, allbackups));
            }
        }
        v
    }

    fn keyed(n: u32) -> Request<'static> {
        Request { src: Some(std::net::Ipv4Addr::from(n).into()), ..Request::default() }
    }

    #[test]
    fn selector_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Selector>();
    }

    #[test]
    fn no_servers_or_none_usable_gives_none() {
        for s in each_selector(&[], false) {
            assert_eq!(s.pick(&Request::default(), &Fake::from_specs(&[])), None);
            assert_eq!(s.pick_avoiding(&Request::default(), &Fake::from_specs(&[]), 0), None);
        }
        let specs = with_backups(&[1, 1], 1);
        let mut f = Fake::from_specs(&specs);
        f.up = vec![false, true, true];
        f.weight = vec![1, 0, 0];
        for s in each_selector(&specs, true) {
            assert_eq!(s.pick(&keyed(1), &f), None, "{}", s.algorithm());
        }
    }

    #[test]
    fn backups_only_when_every_normal_server_is_down() {
        let specs = with_backups(&[1, 1], 2);
        for s in each_selector(&specs, false) {
            let mut f = Fake::from_specs(&specs);
            for n in 0..50 {
                assert!(s.pick(&keyed(n), &f).is_some_and(|i| i < 2), "{}", s.algorithm());
            }
            f.up[0] = false;
            f.weight[1] = 0; // drained counts as down
            for n in 0..20 {
                assert_eq!(s.pick(&keyed(n), &f), Some(2), "{}: first backup takes all", s.algorithm());
            }
            f.up[2] = false;
            assert_eq!(s.pick(&keyed(0), &f), Some(3), "{}", s.algorithm());
            f.up[0] = true;
            assert_eq!(s.pick(&keyed(0), &f), Some(0), "{}: back to normal", s.algorithm());
        }
    }

    #[test]
    fn allbackups_balances_every_usable_backup() {
        let specs = with_backups(&[1], 3);
        for s in each_selector(&specs, true) {
            let mut f = Fake::from_specs(&specs);
            f.up[0] = false;
            let mut seen = [0usize; 4];
            for n in 0..600 {
                let i = s.pick(&keyed(n), &f).unwrap();
                if s.algorithm() == &Algorithm::LeastConn || matches!(s.algorithm(), Algorithm::Random { .. }) {
                    f.conns[i] += 1;
                }
                seen[i] += 1;
            }
            assert_eq!(seen[0], 0);
            if s.algorithm() == &Algorithm::First {
                assert_eq!(seen, [0, 600, 0, 0]);
            } else {
                assert!(seen[1..].iter().all(|&c| c > 100), "{}: {seen:?}", s.algorithm());
            }
        }
    }

    #[test]
    fn pick_avoiding_skips_the_failed_server() {
        let specs = normal(&[1, 1, 1]);
        for s in each_selector(&specs, false) {
            let f = Fake::from_specs(&specs);
            for n in 0..30 {
                let first = s.pick(&keyed(n), &f).unwrap();
                assert_ne!(s.pick_avoiding(&keyed(n), &f, first), Some(first), "{}", s.algorithm());
            }
        }
    }

    #[test]
    fn pick_avoiding_returns_the_only_one_left() {
        let specs = with_backups(&[1, 1], 1);
        for s in each_selector(&specs, false) {
            let mut f = Fake::from_specs(&specs);
            f.up[1] = false;
            // Backups stay idle while a normal server is up, even if it is the avoided one.
            assert_eq!(s.pick_avoiding(&keyed(1), &f, 0), Some(0), "{}", s.algorithm());
            f.up[0] = false;
            assert_eq!(s.pick_avoiding(&keyed(1), &f, 2), Some(2), "{}", s.algorithm());
            // Avoiding a server of the other tier or out of range changes nothing.
            assert_eq!(s.pick_avoiding(&keyed(1), &f, 0), Some(2), "{}", s.algorithm());
            assert_eq!(s.pick_avoiding(&keyed(1), &f, 99), Some(2), "{}", s.algorithm());
        }
    }

    #[test]
    fn unusable_or_zero_weight_is_never_picked() {
        let specs = normal(&[1, 1, 1, 1]);
        for s in each_selector(&specs, false) {
            let mut f = Fake::from_specs(&specs);
            f.up[1] = false;
            f.weight[3] = 0;
            for n in 0..200 {
                let i = s.pick(&keyed(n), &f).unwrap();
                assert!(i == 0 || i == 2, "{} picked {i}", s.algorithm());
            }
        }
    }

    #[test]
    fn state_shorter_than_config_is_safe() {
        // A state that knows fewer servers than the config reports the rest as unusable.
        let specs = normal(&[1, 1, 1]);
        for s in each_selector(&specs, false) {
            let f = Fake::from_specs(&specs[..1]);
            for n in 0..10 {
                assert_eq!(s.pick(&keyed(n), &f), Some(0));
            }
        }
    }

    #[test]
    fn concurrent_picks_keep_round_robin_exact() {
        let specs = normal(&[2, 1, 1]);
        let s = Arc::new(Selector::new(&Algorithm::RoundRobin, HashType::map_based(), &specs, false));
        let f = Fake::from_specs(&specs);
        let totals = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| counts(&s, &f, 1000))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold(vec![0; 3], |acc, c| acc.iter().zip(c).map(|(a, b)| a + b).collect())
        });
        assert_eq!(totals, [2000, 1000, 1000]);
    }

    /// HAProxy keeps a server at `maxconn` in its map and tree and queues a hashed request on
    /// it: a server going full and back neither rebuilds the table nor moves any key.
    #[test]
    fn a_full_server_keeps_its_keys_and_the_table() {
        let specs = with_backups(&[1, 2, 1], 1);
        for ht in [HashType::map_based(), HashType::consistent()] {
            let s = Selector::new(&Algorithm::Source, ht, &specs, false);
            let mut f = Fake::from_specs(&specs);
            let before: Vec<_> = (0..64).map(|n| s.choose(&keyed(n), &f, None)).collect();
            assert_eq!(s.table_builds(), 1, "{ht:?}");
            let busy = before[0].unwrap().server;
            f.full[busy] = true;
            let full: Vec<_> = (0..64).map(|n| s.choose(&keyed(n), &f, None)).collect();
            assert_eq!(full, before, "{ht:?}: every key keeps its server, full or not");
            assert!(full.iter().all(|p| p.is_some_and(|p| p.hashed)), "{ht:?}");
            f.full[busy] = false;
            let after: Vec<_> = (0..64).map(|n| s.choose(&keyed(n), &f, None)).collect();
            assert_eq!(after, before, "{ht:?}");
            assert_eq!(s.table_builds(), 1, "{ht:?}: no rebuild for a server going full and back");

            // Without a key the round robin fallback skips the full server; with every normal
            // server full nothing is chosen (the request waits in the backend queue): the
            // backup does not step in.
            f.full[busy] = true;
            for _ in 0..8 {
                let p = s.choose(&Request::default(), &f, None).unwrap();
                assert!(p.server != busy && p.server < 3 && !p.hashed, "{ht:?}: {p:?}");
            }
            f.full[..3].fill(true);
            assert_eq!(s.choose(&Request::default(), &f, None), None, "{ht:?}");
            assert_eq!(s.choose(&keyed(0), &f, None), before[0], "{ht:?}");

            // A health change is a change: one rebuild, shared by the picks that follow.
            f.up[busy] = false;
            for n in 0..8 {
                assert_ne!(s.pick(&keyed(n), &f), Some(busy), "{ht:?}");
            }
            assert_eq!(s.table_builds(), 2, "{ht:?}");
        }
    }

    #[test]
    fn non_hashing_algorithms_skip_full_servers() {
        let specs = with_backups(&[1, 1, 1], 1);
        for text in ["roundrobin", "static-rr", "leastconn", "first", "random"] {
            let s = Selector::new(&Algorithm::parse(text).unwrap(), HashType::map_based(), &specs, false);
            let mut f = Fake::from_specs(&specs);
            f.full[1] = true;
            for n in 0..30 {
                let p = s.choose(&keyed(n), &f, None).unwrap();
                assert!((p.server == 0 || p.server == 2) && !p.hashed, "{text}: {p:?}");
            }
            f.full[..3].fill(true);
            assert_eq!(s.pick(&keyed(1), &f), None, "{text}: no backup while normal servers are up");
        }
    }

    #[test]
    fn keeps_the_algorithm() {
        let a = Algorithm::parse("uri len 4").unwrap();
        assert_eq!(Selector::new(&a, HashType::map_based(), &normal(&[1]), false).algorithm(), &a);
    }
}
