//! When a VIP is announced, and in which order route changes happen. Pure: the runtime feeds it
//! what it observed and carries out the steps it returns.

use crate::config::announce::Announce;
use crate::config::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Why a configured VIP is not announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    /// No frontend listens on the address (nor on the wildcard of its family).
    NoBind,
    /// The proxy is stopping or draining: it takes no new connections.
    Stopping,
    /// A tracked backend has no usable server.
    BackendDown(String),
    /// The kernel refused the route (the message says why).
    Failed(String),
}

impl std::fmt::Display for Withdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withdrawn::NoBind => write!(f, "no bind listens on the address"),
            Withdrawn::Stopping => write!(f, "proxy stopping"),
            Withdrawn::BackendDown(b) => write!(f, "backend {b} has no server up"),
            Withdrawn::Failed(e) => write!(f, "route not installed: {e}"),
        }
    }
}

/// What the runtime sees right now.
pub trait Observed {
    /// Usable servers of a backend (`nbsrv`).
    fn nbsrv(&self, backend: &str) -> usize;
    /// The proxy accepts new connections (not stopping, draining or handing over).
    fn proxy_ok(&self) -> bool;
}

/// One VIP's wanted state: announced, or withdrawn and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub group: String,
    pub addr: IpAddr,
    pub protocol: u8,
    pub interface: String,
    pub state: Result<(), Withdrawn>,
}

/// Whether some frontend bind of `snap` accepts connections to `addr`.
pub fn has_bind(snap: &Snapshot, addr: IpAddr) -> bool {
    snap.frontends.iter().flat_map(|f| &f.binds).any(|b| {
        let ip = b.addr.ip();
        ip == addr || (ip.is_unspecified() && ip.is_ipv4() == addr.is_ipv4())
    })
}

/// Decides one group's VIPs. Order of reasons: a stopping proxy first (it covers every VIP),
/// then the bind, then tracked backends in configured order.
pub fn decide(g: &Announce, snap: &Snapshot, seen: &dyn Observed) -> Vec<Wanted> {
    let down = g.track_backends.iter().find(|b| seen.nbsrv(b) == 0);
    g.addresses
        .iter()
        .map(|&addr| {
            let state = if !seen.proxy_ok() {
                Err(Withdrawn::Stopping)
            } else if !has_bind(snap, addr) {
                Err(Withdrawn::NoBind)
            } else if let Some(b) = down {
                Err(Withdrawn::BackendDown(b.clone()))
            } else {
                Ok(())
            };
            Wanted { group: g.name.clone(), addr, protocol: g.protocol, interface: g.interface.clone(), state }
        })
        .collect()
}

/// An installed announcement (the VIP's host route on lbha's device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub addr: IpAddr,
}

/// One change to the kernel, in the order [`plan`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Delete the announcement route: the router stops sending new flows here.
    Withdraw(Route),
    /// Install the announcement route.
    Announce(Route),
}

/// The steps from the `installed` routes to `wanted`: every withdrawal before any announcement,
/// so a node never advertises a changed set before it has taken back what it can no longer serve.
pub fn plan(installed: &BTreeMap<IpAddr, Route>, wanted: &[Wanted]) -> Vec<Step> {
    let target: BTreeMap<IpAddr, Route> =
        wanted.iter().filter(|w| w.state.is_ok()).map(|w| (w.addr, Route { addr: w.addr })).collect();
    let mut steps: Vec<Step> =
        installed.iter().filter(|(a, r)| target.get(a) != Some(r)).map(|(_, r)| Step::Withdraw(*r)).collect();
    steps.extend(target.iter().filter(|(a, r)| installed.get(a) != Some(r)).map(|(_, r)| Step::Announce(*r)));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Seen {
        nbsrv: HashMap<&'static str, usize>,
        ok: bool,
    }
    impl Observed for Seen {
        fn nbsrv(&self, b: &str) -> usize {
            self.nbsrv.get(b).copied().unwrap_or(0)
        }
        fn proxy_ok(&self) -> bool {
            self.ok
        }
    }

    fn snap(binds: &str) -> Snapshot {
        let t = format!(
            "[[backend]]\nname = \"web\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:9001\" }}]\n\
             [[backend]]\nname = \"api\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:9002\" }}]\n\
             [[frontend]]\nname = \"f\"\nbind = [{binds}]\ndefault_backend = \"web\"\n\
             [[announce]]\nname = \"g\"\naddress = [\"192.0.2.10\", \"2001:db8::10\"]\ntrack_backend = [\"web\", \"api\"]\n"
        );
        crate::config::parse(&t, std::path::Path::new("t.toml")).expect("config")
    }

    fn states(s: &Snapshot, seen: &Seen) -> Vec<Result<(), Withdrawn>> {
        decide(&s.announce.groups[0], s, seen).into_iter().map(|w| w.state).collect()
    }

    #[test]
    fn announced_only_with_a_bind_a_healthy_proxy_and_tracked_servers_up() {
        let s = snap("\"192.0.2.10:80\", \"[::]:80\"");
        let mut seen = Seen { nbsrv: HashMap::from([("web", 2), ("api", 1)]), ok: true };
        assert_eq!(states(&s, &seen), [Ok(()), Ok(())]);
        seen.nbsrv.insert("api", 0);
        let down = Err(Withdrawn::BackendDown("api".into()));
        assert_eq!(states(&s, &seen), [down.clone(), down]);
        seen.nbsrv.insert("web", 0);
        assert_eq!(states(&s, &seen)[0], Err(Withdrawn::BackendDown("web".into())), "first in configured order");
        seen.ok = false;
        assert_eq!(states(&s, &seen), [Err(Withdrawn::Stopping), Err(Withdrawn::Stopping)]);
    }

    #[test]
    fn a_vip_without_a_bind_is_not_announced() {
        let seen = Seen { nbsrv: HashMap::from([("web", 1), ("api", 1)]), ok: true };
        // An IPv4 wildcard covers the IPv4 VIP only.
        assert_eq!(states(&snap("\"0.0.0.0:80\""), &seen), [Ok(()), Err(Withdrawn::NoBind)]);
        assert_eq!(states(&snap("\"192.0.2.99:80\""), &seen), [Err(Withdrawn::NoBind), Err(Withdrawn::NoBind)]);
    }

    fn w(addr: &str, up: bool) -> Wanted {
        Wanted {
            group: "g".into(),
            addr: addr.parse().unwrap(),
            protocol: 250,
            interface: "lo".into(),
            state: if up { Ok(()) } else { Err(Withdrawn::Stopping) },
        }
    }
    fn r(addr: &str) -> Route {
        Route { addr: addr.parse().unwrap() }
    }

    #[test]
    fn withdrawals_come_before_announcements() {
        let installed = BTreeMap::from([(r("192.0.2.1").addr, r("192.0.2.1"))]);
        let wanted = [w("192.0.2.2", true), w("192.0.2.1", false)];
        assert_eq!(plan(&installed, &wanted), [Step::Withdraw(r("192.0.2.1")), Step::Announce(r("192.0.2.2"))]);
        // Nothing to do when the kernel already has what is wanted.
        assert!(plan(&installed, &[w("192.0.2.1", true)]).is_empty());
        // A VIP removed from the config (absent from `wanted`) is withdrawn.
        assert_eq!(plan(&installed, &[]), [Step::Withdraw(r("192.0.2.1"))]);
    }
}
