//! The DNS I/O: one task per `[[resolvers]]` section resolves the names its servers use (A/AAAA,
//! or SRV with their targets), over
//! UDP to the configured nameservers, and sends the servers whose address must change to the
//! serve loop as one runtime change (the path `set server addr` takes: a validated snapshot
//! swapped in, kept across reloads). A section removed by a reload ends its task.

use super::state::{self, Answer, Failure, Found, Name, Srv};
use super::wire;
use crate::config::resolvers::Resolvers;
use crate::control::ServerRef;
use crate::control::servers_rt::RtCommand;
use crate::proxy::Proxy;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const TICK: Duration = Duration::from_millis(200);

/// Starts a task for each section, now and after each reload; runs for the daemon's life.
pub async fn run(proxy: Arc<Proxy>) {
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let snap = proxy.active.load().snap.clone();
        running.retain(|_, h| !h.is_finished());
        for r in &snap.resolvers {
            if !running.contains_key(&r.name) {
                running.insert(r.name.clone(), tokio::spawn(section(proxy.clone(), r.name.clone())));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One server of a group.
struct Member {
    name: String,
    /// What it has now (None: no address).
    current: Option<Found>,
    /// Its weight now: kept when `ignore_weight`.
    weight: u32,
    dns: crate::config::resolvers::ServerDns,
}

/// The servers of one section, grouped by backend and name (and whether it names SRV records).
type Groups = Vec<((String, String, bool), Vec<Member>)>;

fn groups(snap: &crate::config::Snapshot, section: &str) -> Groups {
    let mut out: Groups = Vec::new();
    for b in &snap.backends {
        for s in &b.servers {
            let Some(d) = s.dns.as_ref().filter(|d| d.resolvers == section) else { continue };
            let srv = d.srv.then_some((s.addr.port(), s.weight));
            let current = (!s.unresolved).then(|| Found { ip: s.addr.ip(), srv });
            let key = (b.name.clone(), d.host.clone(), d.srv);
            let member = Member { name: s.name.clone(), current, weight: s.weight, dns: d.clone() };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, m)) => m.push(member),
                None => out.push((key, vec![member])),
            }
        }
    }
    out
}

fn found(s: &Srv, m: &Member) -> Found {
    Found { ip: s.ip, srv: Some((s.port, if m.dns.ignore_weight { m.weight } else { s.server_weight() })) }
}

/// Ids vary per start so a late answer from an earlier run is not taken for ours; each lookup
/// takes two (A and AAAA).
struct Ids(AtomicU16);

impl Ids {
    fn next(&self) -> u16 {
        self.0.fetch_add(2, Ordering::Relaxed)
    }
}

async fn section(proxy: Arc<Proxy>, name: String) {
    let mut names: HashMap<String, Name> = HashMap::new();
    let mut srv_names: HashMap<String, Name<Srv>> = HashMap::new();
    // The record each SRV slot took (HAProxy keeps a slot on its target and port).
    let mut slots: HashMap<(String, String), Srv> = HashMap::new();
    let seed =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) as u16) | 1;
    let ids = Ids(AtomicU16::new(seed));
    loop {
        let snap = proxy.active.load().snap.clone();
        let Some(r) = snap.resolvers.iter().find(|r| r.name == name).cloned() else { return };
        let groups = groups(&snap, &name);
        let hosts: HashSet<String> =
            groups.iter().filter(|((_, _, s), _)| !s).map(|((_, h, _), _)| h.clone()).collect();
        // An SRV name's targets are resolved with the first group's family and network choice.
        let mut srv_hosts: HashMap<String, (bool, Vec<ipnetwork::IpNetwork>)> = HashMap::new();
        for ((_, h, srv), m) in &groups {
            if *srv {
                srv_hosts.entry(h.clone()).or_insert_with(|| (m[0].dns.prefer_v6, m[0].dns.nets.clone()));
            }
        }
        names.retain(|h, _| hosts.contains(h));
        srv_names.retain(|h, _| srv_hosts.contains_key(h));
        let now = Instant::now();
        let due: Vec<String> = hosts.iter().filter(|h| names.get(*h).is_none_or(|n| n.due(now, &r))).cloned().collect();
        let srv_due: Vec<(&String, &(bool, Vec<ipnetwork::IpNetwork>))> =
            srv_hosts.iter().filter(|(h, _)| srv_names.get(*h).is_none_or(|n| n.due(now, &r))).collect();
        let (answers, srv_answers) = tokio::join!(
            futures::future::join_all(due.iter().map(|h| resolve(&r, h, ids.next()))),
            futures::future::join_all(srv_due.iter().map(|(h, (v6, nets))| resolve_srv(&r, h, *v6, nets, &ids)))
        );
        let now = Instant::now();
        for (h, a) in due.into_iter().zip(answers) {
            if let Err(f) = &a {
                tracing::debug!("resolvers {name}: {h}: {f:?}");
            }
            names.entry(h).or_insert_with(|| Name::new(now)).answer(a, now, &r.holds);
        }
        for ((h, _), a) in srv_due.into_iter().zip(srv_answers) {
            if let Err(f) = &a {
                tracing::debug!("resolvers {name}: SRV {h}: {f:?}");
            }
            srv_names.entry(h.clone()).or_insert_with(|| Name::new(now)).answer(a, now, &r.holds);
        }
        let mut changes = Vec::new();
        for ((backend, host, srv), members) in &groups {
            let next: Vec<Option<Found>> = if *srv {
                let Some(recs) = srv_names.get(host).and_then(Name::addrs) else { continue };
                let recs = state::ordered_srv(&recs);
                // A slot holds its record while it serves that record's address and port; after
                // a restart the record serving its address and port.
                let current: Vec<Option<Srv>> = members
                    .iter()
                    .map(|m| {
                        let now = m.current?;
                        let at = |s: &Srv| s.ip == now.ip && Some(s.port) == now.srv.map(|p| p.0);
                        let kept = slots.get(&(backend.clone(), m.name.clone())).filter(|s| at(s));
                        kept.or_else(|| recs.iter().find(|s| at(s))).cloned()
                    })
                    .collect();
                let next = state::assign(&current, &recs);
                for (m, n) in members.iter().zip(&next) {
                    match n {
                        Some(s) => slots.insert((backend.clone(), m.name.clone()), s.clone()),
                        None => slots.remove(&(backend.clone(), m.name.clone())),
                    };
                }
                next.iter().zip(members).map(|(n, m)| n.as_ref().map(|s| found(s, m))).collect()
            } else {
                let Some(ips) = names.get(host).and_then(Name::addrs) else { continue };
                let (prefer_v6, nets) = (members[0].dns.prefer_v6, &members[0].dns.nets);
                let current: Vec<Option<IpAddr>> = members.iter().map(|m| m.current.map(|f| f.ip)).collect();
                let next = state::assign(&current, &state::ordered(&ips, prefer_v6, nets));
                next.into_iter().map(|n| n.map(|ip| Found { ip, srv: None })).collect()
            };
            for (m, n) in members.iter().zip(next) {
                if m.current != n {
                    changes.push((ServerRef { backend: backend.clone(), server: m.name.clone() }, n));
                }
            }
        }
        if !changes.is_empty()
            && let Err((_, e)) = crate::dynamic::submit(&proxy, RtCommand::Dns(changes)).await
        {
            tracing::warn!("resolvers {name}: address change refused: {e}");
            // The same change would be refused again at once: wait a resolution round.
            tokio::time::sleep(r.timeout_resolve.max(Duration::from_secs(1))).await;
        }
        tokio::time::sleep(TICK).await;
    }
}

/// A query id for a request's `do-resolve` (see [`super::action`]): random, so a late
/// answer to another query is not taken for its own; it takes two.
pub fn query_id() -> u16 {
    rand::random::<u16>() & !1
}

/// A (`v6` false) or AAAA for `host`, tried `retries` times over the nameservers in turn.
pub async fn resolve_family(r: &Resolvers, host: &str, v6: bool, id: u16) -> Answer {
    let Ok(msg) = wire::query(id, host, v6, r.payload_size) else { return Err(Failure::Other) };
    query(r, &msg, id, wire::answer).await
}

/// A and AAAA for `host`, each query tried `retries` times over the nameservers in turn.
async fn resolve(r: &Resolvers, host: &str, id: u16) -> Answer {
    let (a, aaaa) = tokio::join!(resolve_family(r, host, false, id), resolve_family(r, host, true, id.wrapping_add(1)));
    wire::combine(a, aaaa)
}

/// The SRV records of `host`, each with its target's address: from the additional section, or
/// else resolved with A/AAAA (as HAProxy does); a target without an address is left out.
async fn resolve_srv(
    r: &Resolvers,
    host: &str,
    prefer_v6: bool,
    nets: &[ipnetwork::IpNetwork],
    ids: &Ids,
) -> Answer<Srv> {
    let id = ids.next();
    let Ok(msg) = wire::srv_query(id, host, r.payload_size) else { return Err(Failure::Other) };
    let recs = query(r, &msg, id, wire::srv_answer).await?;
    let lookups = recs.iter().map(|rec| async move {
        if rec.ips.is_empty() { resolve(r, &rec.target, ids.next()).await.unwrap_or_default() } else { rec.ips.clone() }
    });
    let ips = futures::future::join_all(lookups).await;
    Ok(recs
        .into_iter()
        .zip(ips)
        .filter_map(|(rec, ips)| {
            let ip = *state::ordered(&ips, prefer_v6, nets).first()?;
            Some(Srv { target: rec.target, port: rec.port, weight: rec.weight, ip })
        })
        .collect())
}

/// One query tried `retries` times over the nameservers in turn; `read` takes its answer.
async fn query<T>(r: &Resolvers, msg: &[u8], id: u16, read: fn(&[u8], u16) -> Option<Answer<T>>) -> Answer<T> {
    let mut last = Failure::Timeout;
    for attempt in 0..r.retries as usize {
        let Some(ns) = r.nameservers.get(attempt % r.nameservers.len().max(1)) else { break };
        match exchange(*ns, msg, id, r.timeout_retry, r.payload_size.unwrap_or(512), read).await {
            Some(Ok(a)) => return Ok(a),
            // A nameserver's refusal or failure: the next one may know better.
            Some(Err(f)) if f == Failure::Nx => return Err(f),
            Some(Err(f)) => last = f,
            None => {}
        }
    }
    Err(last)
}

/// One query and its answer; None on timeout or a socket error.
async fn exchange<T>(
    ns: SocketAddr,
    msg: &[u8],
    id: u16,
    wait: Duration,
    size: u16,
    read: fn(&[u8], u16) -> Option<Answer<T>>,
) -> Option<Answer<T>> {
    let local: SocketAddr =
        if ns.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(ns).await.ok()?;
    sock.send(msg).await.ok()?;
    let mut buf = vec![0u8; usize::from(size).max(512)];
    tokio::time::timeout(wait, async {
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            if let Some(a) = read(&buf[..n], id) {
                return Some(a);
            }
        }
    })
    .await
    .ok()
    .flatten()
}
