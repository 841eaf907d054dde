//! The DNS I/O: one task per `[[resolvers]]` section resolves the names its servers use, over
//! UDP to the configured nameservers, and sends the servers whose address must change to the
//! serve loop as one runtime change (the path `set server addr` takes: a validated snapshot
//! swapped in, kept across reloads). A section removed by a reload ends its task.

use super::state::{self, Answer, Failure, Name};
use super::wire;
use crate::config::resolvers::Resolvers;
use crate::control::ServerRef;
use crate::control::servers_rt::RtCommand;
use crate::proxy::Proxy;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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

/// The servers of one section, grouped by backend and name, in order.
type Groups = Vec<((String, String), Vec<(String, Option<IpAddr>, bool, Vec<ipnetwork::IpNetwork>)>)>;

fn groups(snap: &crate::config::Snapshot, section: &str) -> Groups {
    let mut out: Groups = Vec::new();
    for b in &snap.backends {
        for s in &b.servers {
            let Some(d) = s.dns.as_ref().filter(|d| d.resolvers == section) else { continue };
            let current = (!s.unresolved).then(|| s.addr.ip());
            let key = (b.name.clone(), d.host.clone());
            let member = (s.name.clone(), current, d.prefer_v6, d.nets.clone());
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, m)) => m.push(member),
                None => out.push((key, vec![member])),
            }
        }
    }
    out
}

async fn section(proxy: Arc<Proxy>, name: String) {
    let mut names: HashMap<String, Name> = HashMap::new();
    // Ids vary per start so a late answer from an earlier run is not taken for ours.
    let mut id: u16 =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) as u16) | 1;
    loop {
        let snap = proxy.active.load().snap.clone();
        let Some(r) = snap.resolvers.iter().find(|r| r.name == name).cloned() else { return };
        let groups = groups(&snap, &name);
        let hosts: HashSet<String> = groups.iter().map(|((_, h), _)| h.clone()).collect();
        names.retain(|h, _| hosts.contains(h));
        let now = Instant::now();
        let due: Vec<String> = hosts.iter().filter(|h| names.get(*h).is_none_or(|n| n.due(now, &r))).cloned().collect();
        let lookups = due.iter().map(|h| {
            id = id.wrapping_add(2);
            resolve(&r, h, id)
        });
        let answers = futures::future::join_all(lookups).await;
        let now = Instant::now();
        for (h, a) in due.into_iter().zip(answers) {
            if let Err(f) = &a {
                tracing::debug!("resolvers {name}: {h}: {f:?}");
            }
            names.entry(h).or_insert_with(|| Name::new(now)).answer(a, now, &r.holds);
        }
        let mut changes = Vec::new();
        for ((backend, host), members) in &groups {
            let Some(ips) = names.get(host).and_then(Name::addrs) else { continue };
            let (prefer_v6, nets) = (members[0].2, &members[0].3);
            let current: Vec<Option<IpAddr>> = members.iter().map(|m| m.1).collect();
            let next = state::assign(&current, &state::ordered(&ips, prefer_v6, nets));
            for (m, n) in members.iter().zip(next) {
                if m.1 != n {
                    changes.push((ServerRef { backend: backend.clone(), server: m.0.clone() }, n));
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

/// A and AAAA for `host`, each query tried `retries` times over the nameservers in turn.
async fn resolve(r: &Resolvers, host: &str, id: u16) -> Answer {
    let (a, aaaa) = tokio::join!(query(r, host, false, id), query(r, host, true, id.wrapping_add(1)));
    wire::combine(a, aaaa)
}

async fn query(r: &Resolvers, host: &str, v6: bool, id: u16) -> Answer {
    let Ok(msg) = wire::query(id, host, v6, r.payload_size) else { return Err(Failure::Other) };
    let mut last = Failure::Timeout;
    for attempt in 0..r.retries as usize {
        let Some(ns) = r.nameservers.get(attempt % r.nameservers.len().max(1)) else { break };
        match exchange(*ns, &msg, id, r.timeout_retry, r.payload_size.unwrap_or(512)).await {
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
async fn exchange(ns: SocketAddr, msg: &[u8], id: u16, wait: Duration, size: u16) -> Option<Answer> {
    let local: SocketAddr =
        if ns.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(ns).await.ok()?;
    sock.send(msg).await.ok()?;
    let mut buf = vec![0u8; usize::from(size).max(512)];
    tokio::time::timeout(wait, async {
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            if let Some(a) = wire::answer(&buf[..n], id) {
                return Some(a);
            }
        }
    })
    .await
    .ok()
    .flatten()
}
