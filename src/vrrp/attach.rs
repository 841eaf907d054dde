//! An instance's hold on its interface: the raw sockets and the interface index and source address
//! they were opened for. An interface that is missing (at start, at a reload, or deleted later) or
//! has no source address leaves the instance without sockets and in Fault; when it appears, or is
//! recreated with a new index, or its primary address changes, the sockets are (re)opened. The
//! instance calls [`Attachment::reconcile`] on every tracking tick (keepalived follows the same
//! changes through netlink; a 100 ms poll of the interface list is enough here).

use std::net::IpAddr;

use super::fsm::FaultReason;
use super::socket::{Received, SocketError, VrrpSocket, Wire};
use crate::config::vrrp::{VipDef, VrrpInstance};
use crate::net::link::LinkInfo;
use crate::net::sysctl;

/// What the sockets are opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub ifindex: u32,
    pub src: IpAddr,
}

/// Why there are no sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detached {
    Missing,
    NoSource,
    /// Opening failed; the text is the error.
    Failed(String),
}

impl Detached {
    pub fn fault(&self, ifname: &str) -> FaultReason {
        match self {
            Detached::Missing => FaultReason::Tracker(format!("no interface {ifname}")),
            Detached::NoSource => FaultReason::NoSourceAddress,
            Detached::Failed(e) => FaultReason::Tracker(e.clone()),
        }
    }
}

/// `unicast_src_ip`, else the interface's primary IPv4 address or IPv6 link-local address (never
/// one of the instance's own VIPs, configured or `runtime`, which may sit on the interface).
pub fn source_address(cfg: &VrrpInstance, info: &LinkInfo, runtime: &[VipDef]) -> Option<IpAddr> {
    if let Some(ip) = cfg.unicast_src_ip {
        return Some(ip);
    }
    let vips: Vec<IpAddr> = cfg.vips.iter().chain(runtime).map(|v| v.addr).collect();
    if cfg.is_ipv6() { info.link_local_v6().map(IpAddr::V6) } else { info.primary_v4(&vips).map(IpAddr::V4) }
}

/// Where the sockets should be now, given the instance's interface as the kernel shows it.
pub fn wanted(cfg: &VrrpInstance, link: Option<&LinkInfo>, runtime: &[VipDef]) -> Result<Bound, Detached> {
    let link = link.ok_or(Detached::Missing)?;
    let src = source_address(cfg, link, runtime).ok_or(Detached::NoSource)?;
    Ok(Bound { ifindex: link.index, src })
}

/// The sockets, or why there are none.
pub struct Attachment {
    ifname: String,
    sock: Option<(VrrpSocket, Bound)>,
    detached: Option<Detached>,
    /// Interface index of the last sockets, for the log when they are reopened.
    last_ifindex: Option<u32>,
    /// `use_vmac` without `vmac_xmit_base`: the sockets on the VMAC.
    tx: Option<(VrrpSocket, Bound)>,
}

impl Attachment {
    /// Opens the sockets if the interface is there. A missing interface or source address is a
    /// Fault to wait out (logged); a socket that cannot be opened (no CAP_NET_RAW) is an error.
    pub fn start(cfg: &VrrpInstance, link: Option<&LinkInfo>, runtime: &[VipDef]) -> Result<Attachment, SocketError> {
        let mut a =
            Attachment { ifname: cfg.interface.clone(), sock: None, detached: None, last_ifindex: None, tx: None };
        match wanted(cfg, link, runtime) {
            Ok(b) => {
                a.sock = Some((open(&cfg.interface, b, Wire::of(cfg))?, b));
                a.last_ifindex = Some(b.ifindex);
            }
            Err(d) => {
                tracing::warn!(instance = %cfg.name, "{}: FAULT until that changes", describe(&cfg.interface, &d));
                a.detached = Some(d);
            }
        }
        Ok(a)
    }

    /// Opens, reopens or closes the sockets to match `link`. Returns the new source address when
    /// the sockets were (re)opened.
    pub fn reconcile(&mut self, cfg: &VrrpInstance, link: Option<&LinkInfo>, runtime: &[VipDef]) -> Option<IpAddr> {
        let want = wanted(cfg, link, runtime);
        let have = self.sock.as_ref().map(|(_, b)| *b);
        match (want, have) {
            (Ok(w), Some(h)) if w == h => None,
            (Ok(w), have) => {
                self.sock = None;
                match open(&self.ifname, w, Wire::of(cfg)) {
                    Ok(s) => {
                        self.sock = Some((s, w));
                        self.detached = None;
                        let what = match (have, self.last_ifindex) {
                            (Some(h), _) if h.ifindex != w.ifindex => {
                                format!("was recreated (ifindex {} -> {})", h.ifindex, w.ifindex)
                            }
                            (Some(h), _) => format!("changed its source address ({} -> {})", h.src, w.src),
                            (None, Some(last)) => format!("is back (ifindex {last} -> {})", w.ifindex),
                            (None, None) => format!("is usable (ifindex {})", w.ifindex),
                        };
                        self.last_ifindex = Some(w.ifindex);
                        tracing::info!(instance = %cfg.name, "interface {} {what}: VRRP sockets open, adverts from {}", self.ifname, w.src);
                        Some(w.src)
                    }
                    Err(e) => {
                        self.detach(cfg, Detached::Failed(e.to_string()));
                        None
                    }
                }
            }
            (Err(d), _) => {
                self.sock = None;
                self.detach(cfg, d);
                None
            }
        }
    }

    /// Drops the sockets after a receive error; the next [`Attachment::reconcile`] reopens them
    /// (or finds the interface gone).
    pub fn broken(&mut self, cfg: &VrrpInstance, e: &SocketError) {
        if self.sock.take().is_some() {
            tracing::warn!(instance = %cfg.name, "{e}: reopening the VRRP sockets");
        }
    }

    fn detach(&mut self, cfg: &VrrpInstance, d: Detached) {
        if self.detached.as_ref() != Some(&d) {
            tracing::warn!(instance = %cfg.name, "{}: FAULT until that changes", describe(&self.ifname, &d));
        }
        self.detached = Some(d);
    }

    /// The fault while there are no sockets.
    pub fn fault(&self) -> Option<FaultReason> {
        self.detached.as_ref().map(|d| d.fault(&self.ifname))
    }

    pub fn bound(&self) -> Option<Bound> {
        self.sock.as_ref().map(|(_, b)| *b)
    }

    /// The next datagram; never ready without sockets.
    /// (Through a VMAC, multicast adverts from a peer's VMAC arrive there: the kernel hands a
    /// frame whose source is one of its own macvlans' MAC to that macvlan, not to the parent.)
    pub async fn recv(&self) -> Result<Result<Received, super::socket::HeaderError>, SocketError> {
        match (&self.sock, &self.tx) {
            (Some((s, _)), Some((v, _))) => tokio::select! {
                r = s.recv() => r,
                r = v.recv() => r,
            },
            (Some((s, _)), None) => s.recv().await,
            _ => std::future::pending().await,
        }
    }

    /// A datagram already queued, without waiting; `None` when none is (or there is no socket).
    pub fn try_recv(&self) -> Option<Result<Result<Received, super::socket::HeaderError>, SocketError>> {
        let vmac = || self.tx.as_ref().and_then(|(s, _)| s.try_recv());
        self.sock.as_ref().and_then(|(s, _)| s.try_recv()).or_else(vmac)
    }

    /// `use_vmac` without `vmac_xmit_base`: adverts leave through the VMAC (so their source MAC
    /// is the virtual MAC), from the base interface's address, and are received on both (unicast
    /// ones arrive on the base). Until the VMAC is usable they go out of the base.
    pub fn reconcile_tx(&mut self, cfg: &VrrpInstance, vmac: Option<&LinkInfo>) {
        let want = match (&cfg.vmac, vmac, self.bound()) {
            (Some(v), Some(l), Some(b)) if !v.xmit_base && l.up => Some(Bound { ifindex: l.index, src: b.src }),
            _ => None,
        };
        if want == self.tx.as_ref().map(|(_, b)| *b) {
            return;
        }
        self.tx = None;
        if let (Some(w), Some(v)) = (want, &cfg.vmac) {
            match VrrpSocket::open_on_vmac(&v.name, w.ifindex, w.src, Wire::of(cfg)) {
                Ok(s) => {
                    tracing::info!(instance = %cfg.name, "adverts leave through the VMAC {} (from {})", v.name, w.src);
                    self.tx = Some((s, w));
                }
                Err(e) => tracing::warn!(instance = %cfg.name, "adverts leave through {} meanwhile: {e}", self.ifname),
            }
        }
    }

    pub async fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        match self.tx.as_ref().or(self.sock.as_ref()) {
            Some((s, _)) => s.send(payload, dst).await,
            None => Err(SocketError::Send {
                dst,
                ifname: self.ifname.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotConnected, "no socket: interface missing"),
            }),
        }
    }
}

fn describe(ifname: &str, d: &Detached) -> String {
    match d {
        Detached::Missing => format!("no interface named {ifname} in this network namespace"),
        Detached::NoSource => format!(
            "interface {ifname} has no address to send adverts from (IPv4 primary or IPv6 link-local; or set unicast_src_ip)"
        ),
        Detached::Failed(e) => e.clone(),
    }
}

/// Opens the sockets, and sets `promote_secondaries` on the interface (a recreated interface
/// starts without it).
fn open(ifname: &str, b: Bound, wire: Wire) -> Result<VrrpSocket, SocketError> {
    let sock = VrrpSocket::open(ifname, b.ifindex, b.src, wire)?;
    if let Err(e) = sysctl::set_promote_secondaries(ifname) {
        tracing::warn!("{e}");
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vrrp::NotifyScripts;
    use std::time::Duration;

    fn cfg(vip: &str) -> VrrpInstance {
        VrrpInstance {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 1,
            priority: 100,
            advert_int: Duration::from_secs(1),
            version: 3,
            state: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            auth_pass: None,
            unicast_src_ip: None,
            unicast_peers: vec![],
            vips: vec![VipDef { addr: vip.parse().expect("ip"), prefix: 32, dev: None, label: None }],
            vips_excluded: vec![],
            routes: vec![],
            rules: vec![],
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: None,
            garp_lower_prio_repeat: 5,
            garp_lower_prio_delay: Duration::from_secs(5),
            v3_checksum_as_v2: false,
            opts: Default::default(),
            track_interfaces: vec![],
            track_scripts: vec![],
            track_backends: vec![],
            track_proxy: false,
            track_files: vec![],
            track_processes: vec![],
            notify: NotifyScripts::default(),
            sync_group: None,
            vmac: None,
        }
    }

    fn link(index: u32, addrs: &[&str]) -> LinkInfo {
        LinkInfo {
            name: "eth0".into(),
            index,
            mac: None,
            up: true,
            running: true,
            addrs: addrs.iter().map(|a| a.parse().expect("ip")).collect(),
        }
    }

    #[test]
    fn sockets_follow_the_interface_index_and_source() {
        let c = cfg("192.0.2.100");
        assert_eq!(wanted(&c, None, &[]), Err(Detached::Missing));
        assert_eq!(wanted(&c, Some(&link(7, &["fe80::1"])), &[]), Err(Detached::NoSource));
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // The VIP itself is never the source, even when it comes first.
        assert_eq!(
            wanted(&c, Some(&link(7, &["192.0.2.100", "192.0.2.11"])), &[]),
            Ok(Bound { ifindex: 7, src: ip("192.0.2.11") })
        );
        // Nor is a runtime VIP (`lbha vip add`).
        let rt = [VipDef { addr: ip("192.0.2.7"), prefix: 32, dev: None, label: None }];
        assert_eq!(
            wanted(&c, Some(&link(7, &["192.0.2.7", "192.0.2.11"])), &rt),
            Ok(Bound { ifindex: 7, src: ip("192.0.2.11") })
        );
        let c6 = cfg("2001:db8::100");
        assert_eq!(
            wanted(&c6, Some(&link(9, &["2001:db8::11", "fe80::11"])), &[]),
            Ok(Bound { ifindex: 9, src: ip("fe80::11") })
        );
        let mut uni = cfg("192.0.2.100");
        uni.unicast_src_ip = Some(ip("192.0.2.50"));
        assert_eq!(wanted(&uni, Some(&link(3, &[])), &[]), Ok(Bound { ifindex: 3, src: ip("192.0.2.50") }));
    }

    #[test]
    fn faults_name_the_interface() {
        assert_eq!(Detached::Missing.fault("eth9"), FaultReason::Tracker("no interface eth9".into()));
        assert_eq!(Detached::NoSource.fault("eth9"), FaultReason::NoSourceAddress);
        assert!(describe("eth9", &Detached::Missing).contains("no interface named eth9"));
    }
}
