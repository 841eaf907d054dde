//! What a name's addresses are, given the answers so far, the holds and the time (injected, so
//! tests drive it), and which server of a group takes which address.

use crate::config::resolvers::{Holds, Resolvers};
use ipnetwork::IpNetwork;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Why a resolution gave no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// NXDOMAIN, or no record of the asked types.
    Nx,
    Refused,
    /// No answer from any nameserver within the retries.
    Timeout,
    /// Any other error code, or an answer that does not parse.
    Other,
}

pub type Answer<T = IpAddr> = Result<Vec<T>, Failure>;

/// What an answer lists: an address (A/AAAA) or a service endpoint (SRV).
pub trait Record: Clone + PartialEq + std::fmt::Debug {
    /// Whether `o` is the same record, perhaps with other data (an SRV target's new address or
    /// weight): it replaces this one rather than adding to it.
    fn same(&self, o: &Self) -> bool;
}

impl Record for IpAddr {
    fn same(&self, o: &Self) -> bool {
        self == o
    }
}

/// One SRV record with its target's address: HAProxy keys a server by target and port, and
/// takes port and weight from the record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Srv {
    pub target: String,
    pub port: u16,
    /// The record's weight (0-65535), as the record has it.
    pub weight: u16,
    pub ip: IpAddr,
}

impl Srv {
    /// The server weight HAProxy 2.6 gives an SRV weight: `(weight + 255) / 256`, 0 to 256 (a
    /// record of weight 0 makes a server that takes no traffic; checked against HAProxy 2.6 on
    /// dnsmasq: 0, 1, 256, 257, 512, 65535 give 0, 1, 1, 2, 2, 256).
    pub fn server_weight(&self) -> u32 {
        u32::from(self.weight).div_ceil(256)
    }
}

impl Record for Srv {
    fn same(&self, o: &Self) -> bool {
        self.target == o.target && self.port == o.port
    }
}

/// What the resolvers give one server: an address, and for an SRV slot the port and weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub ip: IpAddr,
    /// The SRV record's port and server weight (see [`Srv::server_weight`]).
    pub srv: Option<(u16, u32)>,
}

/// One name of a resolvers section.
#[derive(Debug, Clone)]
pub struct Name<T: Record = IpAddr> {
    /// Records with when an answer last listed them.
    records: Vec<(T, Instant)>,
    last_valid: Option<Instant>,
    last_attempt: Option<Instant>,
    /// When the name started being resolved: holds count from here until a first valid answer.
    since: Instant,
    /// A failure's hold ran out: the name has no address (rather than "not known yet").
    expired: bool,
}

impl<T: Record> Name<T> {
    pub fn new(now: Instant) -> Self {
        Name { records: Vec::new(), last_valid: None, last_attempt: None, since: now, expired: false }
    }

    /// Whether a resolution is due: HAProxy reuses a valid answer for `hold valid`, and resolves
    /// again every `timeout resolve` otherwise.
    pub fn due(&self, now: Instant, r: &Resolvers) -> bool {
        let Some(last) = self.last_attempt else { return true };
        let wait = match self.last_valid {
            Some(v) if v == last => r.holds.valid.max(r.timeout_resolve),
            _ => r.timeout_resolve,
        };
        now.saturating_duration_since(last) >= wait
    }

    pub fn answer(&mut self, a: Answer<T>, now: Instant, holds: &Holds) {
        self.last_attempt = Some(now);
        let failure = match a {
            Ok(ips) if !ips.is_empty() => {
                for ip in ips {
                    match self.records.iter_mut().find(|(r, _)| r.same(&ip)) {
                        Some(r) => *r = (ip, now),
                        None => self.records.push((ip, now)),
                    }
                }
                // A record the answer no longer lists stays for `hold obsolete`.
                self.records.retain(|(_, seen)| now.saturating_duration_since(*seen) <= holds.obsolete);
                self.last_valid = Some(now);
                self.expired = false;
                return;
            }
            Ok(_) => Failure::Nx,
            Err(f) => f,
        };
        let hold = match failure {
            Failure::Nx => holds.nx,
            Failure::Refused => holds.refused,
            Failure::Timeout => holds.timeout,
            Failure::Other => holds.other,
        };
        // The last good answer outlives the failure for its hold (a DNS outage keeps addresses).
        if now.saturating_duration_since(self.last_valid.unwrap_or(self.since)) > hold {
            self.records.clear();
            self.expired = true;
        }
    }

    /// The addresses, or None while nothing is known yet (servers keep what they have).
    pub fn addrs(&self) -> Option<Vec<T>> {
        if self.records.is_empty() && !self.expired {
            return None;
        }
        Some(self.records.iter().map(|(ip, _)| ip.clone()).collect())
    }

    /// For tests and logs: how long since the last valid answer.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.last_valid.map(|v| now.saturating_duration_since(v))
    }
}

/// The addresses in the order servers take them: `resolve_net` networks first, then the
/// preferred family, then by address (answers come in any order).
pub fn ordered(ips: &[IpAddr], prefer_v6: bool, nets: &[IpNetwork]) -> Vec<IpAddr> {
    let mut v = ips.to_vec();
    v.sort_by_key(|ip| (!nets.iter().any(|n| n.contains(*ip)), ip.is_ipv6() != prefer_v6, *ip));
    v.dedup();
    v
}

/// Addresses for the servers of one group (same backend, same name): a server keeps its address
/// while the answers list it, the others take the unused ones in order, each address at most
/// once (as HAProxy does for servers sharing a name); a server left without one leaves rotation.
/// SRV slots are kept by target and port and take the record's current address and weight.
pub fn assign<T: Record>(current: &[Option<T>], ips: &[T]) -> Vec<Option<T>> {
    let mut taken: Vec<&T> = Vec::new();
    let mut out: Vec<Option<T>> = current
        .iter()
        .map(|c| {
            let c = c.as_ref()?;
            let now = ips.iter().find(|ip| ip.same(c) && !taken.iter().any(|t| t.same(ip)))?;
            taken.push(now);
            Some(now.clone())
        })
        .collect();
    let mut free = ips.iter().filter(|ip| !taken.iter().any(|t| t.same(ip)));
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        *slot = free.next().cloned();
    }
    out
}

/// The SRV records in the order free slots take them: by target and port (answers come in any
/// order), one entry per target and port.
pub fn ordered_srv(recs: &[Srv]) -> Vec<Srv> {
    let mut v = recs.to_vec();
    v.sort();
    v.dedup_by(|a, b| a.same(b));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn res() -> Resolvers {
        Resolvers {
            name: "dns".into(),
            nameservers: vec![],
            retries: 3,
            timeout_resolve: Duration::from_secs(1),
            timeout_retry: Duration::from_secs(1),
            holds: Holds { obsolete: Duration::from_secs(5), ..Holds::default() },
            payload_size: None,
        }
    }
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn outages_keep_the_last_answer_for_their_hold() {
        let r = res();
        let t0 = Instant::now();
        let mut n: Name = Name::new(t0);
        assert!(n.due(t0, &r));
        assert_eq!(n.addrs(), None);
        n.answer(Ok(vec![ip("127.0.0.2")]), t0, &r.holds);
        assert_eq!(n.addrs(), Some(vec![ip("127.0.0.2")]));
        // A valid answer is reused for hold valid (10 s), longer than timeout resolve.
        assert!(!n.due(t0 + S(5), &r));
        assert!(n.due(t0 + S(10), &r));
        // Timeouts: kept for hold timeout (30 s) after the last valid answer, then gone.
        n.answer(Err(Failure::Timeout), t0 + S(10), &r.holds);
        assert!(n.due(t0 + S(11), &r));
        n.answer(Err(Failure::Timeout), t0 + S(30), &r.holds);
        assert_eq!(n.addrs(), Some(vec![ip("127.0.0.2")]));
        n.answer(Err(Failure::Timeout), t0 + S(31), &r.holds);
        assert_eq!(n.addrs(), Some(vec![]));
        // Back: the new answer counts at once.
        n.answer(Ok(vec![ip("127.0.0.3")]), t0 + S(32), &r.holds);
        assert_eq!(n.addrs(), Some(vec![ip("127.0.0.3")]));
    }

    #[test]
    fn each_failure_kind_has_its_hold() {
        let holds = Holds { nx: S(1), refused: S(2), other: S(3), timeout: S(4), ..Holds::default() };
        for (f, hold) in [(Failure::Nx, 1), (Failure::Refused, 2), (Failure::Other, 3), (Failure::Timeout, 4)] {
            let t0 = Instant::now();
            let mut n: Name = Name::new(t0);
            n.answer(Ok(vec![ip("192.0.2.1")]), t0, &holds);
            n.answer(Err(f), t0 + S(hold), &holds);
            assert_eq!(n.addrs().unwrap().len(), 1, "{f:?} within its hold");
            n.answer(Err(f), t0 + S(hold + 1), &holds);
            assert_eq!(n.addrs(), Some(vec![]), "{f:?} after its hold");
        }
        // An empty answer is NXDOMAIN's kind.
        let t0 = Instant::now();
        let mut n: Name = Name::new(t0);
        n.answer(Ok(vec![ip("192.0.2.1")]), t0, &holds);
        n.answer(Ok(vec![]), t0 + S(2), &holds);
        assert_eq!(n.addrs(), Some(vec![]));
        // Never answered: nothing known until the hold runs out from the first try.
        let mut n: Name = Name::new(t0);
        n.answer(Err(Failure::Timeout), t0 + S(1), &holds);
        assert_eq!(n.addrs(), None);
        n.answer(Err(Failure::Timeout), t0 + S(5), &holds);
        assert_eq!(n.addrs(), Some(vec![]));
    }

    #[test]
    fn vanished_records_stay_for_hold_obsolete() {
        let r = res();
        let t0 = Instant::now();
        let mut n: Name = Name::new(t0);
        n.answer(Ok(vec![ip("127.0.0.2"), ip("127.0.0.3")]), t0, &r.holds);
        n.answer(Ok(vec![ip("127.0.0.3")]), t0 + S(5), &r.holds);
        assert_eq!(n.addrs().unwrap().len(), 2);
        n.answer(Ok(vec![ip("127.0.0.3")]), t0 + S(6), &r.holds);
        assert_eq!(n.addrs(), Some(vec![ip("127.0.0.3")]));
    }

    #[test]
    fn servers_keep_their_address_and_share_out_the_rest() {
        let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        assert_eq!(assign(&[None, None, None], &[a, b]), [Some(a), Some(b), None]);
        // b stays where it was; a new address fills the free slot; a gone address leaves.
        assert_eq!(assign(&[Some(a), Some(b), None], &[b, c]), [Some(c), Some(b), None]);
        assert_eq!(assign(&[Some(a), Some(a)], &[a, b]), [Some(a), Some(b)]);
        assert_eq!(assign(&[Some(a)], &[]), [None]);
    }

    fn srv(target: &str, port: u16, weight: u16, ip_: &str) -> Srv {
        Srv { target: target.into(), port, weight, ip: ip(ip_) }
    }

    #[test]
    fn srv_slots_keep_target_and_port_and_follow_address_and_weight() {
        let a = srv("a.test.", 8080, 0, "127.0.0.2");
        let b = srv("b.test.", 8081, 512, "127.0.0.3");
        let slots = assign(&[None, None, None], &ordered_srv(&[b.clone(), a.clone()]));
        assert_eq!(slots, [Some(a.clone()), Some(b.clone()), None]);
        // b's weight and address change: same slot, new data; a leaves; c takes the free slot.
        let b2 = srv("b.test.", 8081, 65535, "127.0.0.4");
        let c = srv("c.test.", 80, 10, "127.0.0.5");
        let next = assign(&slots, &ordered_srv(&[c.clone(), b2.clone()]));
        assert_eq!(next, [Some(c), Some(b2.clone()), None]);
        // Another port of the same target is another record.
        let b3 = srv("b.test.", 9000, 0, "127.0.0.4");
        assert_eq!(assign(&[Some(b2.clone())], std::slice::from_ref(&b3)), [Some(b3)]);
        let w = |w: u16| srv("x", 1, w, "127.0.0.1").server_weight();
        assert_eq!([0, 1, 256, 257, 512, 65535].map(w), [0, 1, 1, 2, 2, 256]);
    }

    #[test]
    fn an_srv_record_with_new_data_replaces_the_old_one() {
        let r = res();
        let t0 = Instant::now();
        let mut n: Name<Srv> = Name::new(t0);
        n.answer(Ok(vec![srv("a.", 80, 1, "127.0.0.2")]), t0, &r.holds);
        n.answer(Ok(vec![srv("a.", 80, 300, "127.0.0.3")]), t0 + S(1), &r.holds);
        assert_eq!(n.addrs(), Some(vec![srv("a.", 80, 300, "127.0.0.3")]));
    }

    #[test]
    fn order_is_networks_then_family() {
        let v4 = ip("198.51.100.1");
        let v6 = ip("2001:db8::1");
        let net = ip("203.0.113.9");
        assert_eq!(ordered(&[v4, v6], true, &[]), [v6, v4]);
        assert_eq!(ordered(&[v6, v4], false, &[]), [v4, v6]);
        let nets = ["203.0.113.0/24".parse().unwrap()];
        assert_eq!(ordered(&[v4, v6, net], true, &nets), [net, v6, v4]);
    }
}
