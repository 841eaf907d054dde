//! keepalived's wire knobs seen on the wire: `mcast_src_ip` and `vrrp_mcast_group4` in the adverts
//! a raw socket on a third node reads (and a backup that hears its master on that group), and
//! `check_unicast_src` ignoring a stranger's higher-priority unicast adverts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::bed::{self, Bed, Node, VIP, only_on, wait_for};
use lbha::vrrp::packet::{Advert, Auth, Version, decode_with, encode};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 19);

fn instance(priority: u8, extra: &str) -> String {
    format!(
        "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = {priority}\n\
         version = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"{VIP}/32\"]\n{extra}\n"
    )
}

/// A raw VRRP socket in `node`'s namespace (a thread moved there), joined to `group` on eth0.
fn raw_socket(node: &Node, group: Option<Ipv4Addr>) -> Result<Socket, String> {
    let ns = node.ns.clone();
    std::thread::spawn(move || -> Result<Socket, String> {
        bed::enter_ns(&ns)?;
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).map_err(|e| e.to_string())?;
        s.bind_device(Some(b"eth0")).map_err(|e| e.to_string())?;
        if let Some(g) = group {
            let idx = nix::net::if_::if_nametoindex("eth0").map_err(|e| e.to_string())?;
            s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(idx)).map_err(|e| e.to_string())?;
        }
        s.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
        Ok(s)
    })
    .join()
    .map_err(|_| "socket thread panicked".to_string())?
}

/// (source, destination, TTL, VRID, priority) of the VRRP datagrams `s` reads within `limit`
/// (at most 200).
fn read_adverts(s: &Socket, limit: Duration) -> Vec<(IpAddr, IpAddr, u8, u8, u8)> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    while t0.elapsed() < limit && out.len() < 200 {
        let Ok(n) = s.recv(&mut buf) else { continue };
        // SAFETY: recv initialised the first n bytes.
        let b: Vec<u8> = buf[..n].iter().map(|x| unsafe { x.assume_init() }).collect();
        if b.len() < 20 {
            continue;
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
        let opts = lbha::vrrp::packet::DecodeOptions::ANY_TTL;
        if let Ok(d) = decode_with(&b[ihl..], src, dst, b[8], &opts) {
            out.push((src, dst, b[8], d.advert.vrid, d.advert.priority));
        }
    }
    out
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn mcast_src_ip_and_mcast_group_on_the_wire() {
    if !bed::root_or_skip("mcast_src_ip_and_mcast_group_on_the_wire") {
        return;
    }
    let mut bed = Bed::new("mcastgrp", &[("lb1", 11), ("lb2", 12), ("obs", 50)]);
    let (lb1, lb2, obs) = (bed.node("lb1"), bed.node("lb2"), bed.node("obs"));
    lb1.ip(&["addr", "add", "192.0.2.61/24", "dev", "eth0"]).expect("secondary address");
    let sniff = raw_socket(&obs, Some(GROUP)).expect("raw socket on obs");
    let group = format!("mcast_group4 = \"{GROUP}\"");
    bed.lbha(&lb1, "lb1", &instance(150, &format!("{group}\nmcast_src_ip = \"192.0.2.61\"")));
    bed.lbha(&lb2, "lb2", &instance(100, &group));
    wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2)).expect("lb1 master");
    let seen = read_adverts(&sniff, Duration::from_secs(1));
    let lb1_adverts: Vec<_> = seen.iter().filter(|a| a.3 == 51 && a.4 == 150).collect();
    assert!(!lb1_adverts.is_empty(), "lb1's adverts reach the group 224.0.0.19: {seen:?}");
    for (src, dst, ttl, ..) in &lb1_adverts {
        assert_eq!(src.to_string(), "192.0.2.61", "sent from mcast_src_ip, not the primary address");
        assert_eq!(*dst, IpAddr::V4(GROUP), "sent to vrrp_mcast_group4");
        assert_eq!(*ttl, 255);
    }
    // lb2 joined the same group: it hears lb1 and stays backup.
    std::thread::sleep(Duration::from_millis(500));
    assert!(only_on(&lb1, &lb2), "lb2 hears lb1 on 224.0.0.19 and stays backup");
    println!("mcast_src_ip / vrrp_mcast_group4: {} adverts from 192.0.2.61 to {GROUP}", lb1_adverts.len());
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn check_unicast_src_ignores_a_stranger() {
    if !bed::root_or_skip("check_unicast_src_ignores_a_stranger") {
        return;
    }
    let mut bed = Bed::new("unisrc", &[("lb1", 11), ("rogue", 13)]);
    let (lb1, rogue) = (bed.node("lb1"), bed.node("rogue"));
    let uni = "unicast_src_ip = \"192.0.2.11\"\nunicast_peer = [\"192.0.2.12\"]";
    let checked = instance(100, &format!("{uni}\ncheck_unicast_src = true"));
    let p = bed.lbha(&lb1, "lb1", &checked);
    // The stranger sends priority 200 for VRID 51 to lb1 every 50 ms, from the start on.
    let sender = raw_socket(&rogue, None).expect("raw socket on rogue");
    let advert = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        max_advert_int: 10,
        auth: Auth::None,
        addresses: vec![VIP.parse().expect("vip")],
    };
    let (src, dst): (IpAddr, IpAddr) = ("192.0.2.13".parse().expect("ip"), "192.0.2.11".parse().expect("ip"));
    let bytes = encode(&advert, src, dst).expect("encode");
    let to = SockAddr::from(SocketAddr::new(dst, 0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let rogue_thread = std::thread::spawn(move || {
        // Bounded: at most 30 s of adverts.
        for _ in 0..600 {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let _ = sender.send_to(&bytes, &to);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(5), || lb1.has_addr(VIP)).expect("lb1 master despite the stranger");
        std::thread::sleep(Duration::from_millis(500));
        assert!(lb1.has_addr(VIP), "the stranger's priority 200 is ignored");
        let log = bed.log(p);
        assert!(log.contains("dropped advert from 192.0.2.13: unicast_src_not_peer"), "drop logged:\n{log}");
        // Control: without check_unicast_src the same adverts make lb1 a backup.
        std::fs::write(bed.dir.join("lb1.toml"), instance(100, uni)).expect("rewrite");
        bed.sighup(p);
        wait_for(Duration::from_secs(5), || !lb1.has_addr(VIP)).expect("lb1 yields to the stranger without the check");
        std::thread::sleep(Duration::from_millis(500));
        assert!(!lb1.has_addr(VIP), "stays backup behind the stranger");
    }));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = rogue_thread.join();
    if let Err(e) = result {
        bed.dump_logs();
        std::panic::resume_unwind(e);
    }
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn unicast_ttl_on_the_wire() {
    if !bed::root_or_skip("unicast_ttl_on_the_wire") {
        return;
    }
    let mut bed = Bed::new("unittl", &[("lb1", 11), ("peer", 12)]);
    let (lb1, peer) = (bed.node("lb1"), bed.node("peer"));
    let sniff = raw_socket(&peer, None).expect("raw socket on the peer");
    let extra = "unicast_src_ip = \"192.0.2.11\"\nunicast_peer = [\"192.0.2.12\"]\nunicast_ttl = 7";
    bed.lbha(&lb1, "lb1", &instance(150, extra));
    wait_for(Duration::from_secs(5), || lb1.has_addr(VIP)).expect("lb1 master");
    let seen = read_adverts(&sniff, Duration::from_secs(1));
    let ours: Vec<_> = seen.iter().filter(|a| a.3 == 51 && a.4 == 150).collect();
    assert!(!ours.is_empty(), "lb1's unicast adverts reach the peer: {seen:?}");
    for (src, dst, ttl, ..) in &ours {
        assert_eq!((src.to_string().as_str(), dst.to_string().as_str(), *ttl), ("192.0.2.11", "192.0.2.12", 7));
    }
    println!("unicast_ttl: {} adverts with TTL 7", ours.len());
}

/// keepalived 2.2.7 with `vrrp_mcast_group4 224.0.0.19` and lbha with `mcast_group4` follow each
/// other; lbha advertises from its `mcast_src_ip`.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn mcast_group_interop_with_keepalived() {
    use crate::interop::{KEEPALIVED, keepalived};
    if !bed::root_or_skip("mcast_group_interop_with_keepalived") {
        return;
    }
    if !std::path::Path::new(KEEPALIVED).exists() {
        panic!("needs keepalived at {KEEPALIVED} (Debian: apt-get install keepalived)");
    }
    let mut bed = Bed::new("kagroup", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    lb1.ip(&["addr", "add", "192.0.2.61/24", "dev", "eth0"]).expect("secondary address");
    let ka_conf = format!(
        "global_defs {{\n    router_id ka\n    vrrp_mcast_group4 {GROUP}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority 100\n    advert_int 0.1\n    version 3\n    virtual_ipaddress {{\n        {VIP}/32\n    }}\n}}\n"
    );
    let ka = keepalived(&mut bed, &lb2, "ka", &ka_conf);
    let ours = |p: u8| instance(p, &format!("mcast_group4 = \"{GROUP}\"\nmcast_src_ip = \"192.0.2.61\""));
    let p1 = bed.lbha(&lb1, "lb1", &ours(150));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2)).expect("lbha master, keepalived backup");
        std::thread::sleep(Duration::from_millis(600));
        assert!(only_on(&lb1, &lb2), "keepalived hears lbha on {GROUP} and stays backup");
        assert!(bed.log(ka).contains("Entering BACKUP STATE"), "{}", bed.log(ka));
        // keepalived takes over; a low-priority lbha hears it on the group and stays backup.
        bed.kill9(p1);
        wait_for(Duration::from_secs(5), || lb2.has_addr(VIP)).expect("keepalived takes over");
        let p2 = bed.lbha(&lb1, "lb1-low", &ours(50));
        std::thread::sleep(Duration::from_millis(800));
        assert!(only_on(&lb2, &lb1), "lbha (50) hears keepalived on {GROUP} and stays backup");
        assert!(!bed.log(p2).contains("dropped advert"), "{}", bed.log(p2));
        let ka_log = bed.log(ka).to_lowercase();
        for bad in ["invalid", "bogus", "mismatch", "wrong"] {
            assert!(!ka_log.contains(bad), "keepalived complained ({bad}):\n{ka_log}");
        }
    }));
    if let Err(e) = result {
        bed.dump_logs();
        std::panic::resume_unwind(e);
    }
}
