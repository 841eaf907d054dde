//! `use_vmac`: the master holds the VIP on a macvlan with the VRRP virtual MAC, so the client's
//! ARP answer carries 00:00:5e:00:01:33 (VRID 51) and does not change when the VIP moves; the
//! sysctls are keepalived's; a clean stop removes the VMAC and puts the parent's back. Adverts
//! through the VMAC (keepalived's default) and from the base interface (`vmac_xmit_base`).

use std::time::Duration;

use crate::bed::{self, Node, VIP, http_get, wait_for};
use crate::failover::{lb_config, pair};

const VMAC: &str = "vrrp.51";
const VIRTUAL_MAC: &str = "00:00:5e:00:01:33";

fn on_vmac(n: &Node) -> bool {
    n.ip(&["-o", "addr", "show", "dev", VMAC]).is_ok_and(|s| s.contains(&format!(" {VIP}/")))
}

fn has_vmac(n: &Node) -> bool {
    n.ip(&["-o", "link", "show", "dev", VMAC]).is_ok_and(|s| s.contains(VIRTUAL_MAC))
}

fn conf(n: &Node, ifname: &str, key: &str) -> String {
    bed::run(&["ip", "netns", "exec", &n.ns, "cat", &format!("/proc/sys/net/ipv4/conf/{ifname}/{key}")])
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn serves(client: &Node) -> bool {
    crate::bed::enter_ns(&client.ns).is_ok()
        && http_get(format!("{VIP}:80").parse().unwrap(), Duration::from_millis(500)).is_some()
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn the_vip_answers_arp_with_the_virtual_mac_and_moves_with_it() {
    if !bed::root_or_skip("the_vip_answers_arp_with_the_virtual_mac_and_moves_with_it") {
        return;
    }
    moves("use_vmac = true");
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn vmac_xmit_base_sends_adverts_from_the_base_interface() {
    if !bed::root_or_skip("vmac_xmit_base_sends_adverts_from_the_base_interface") {
        return;
    }
    moves("use_vmac = true\nvmac_xmit_base = true");
}

fn moves(extra: &str) {
    let mut two = pair("vmac");
    let (lb1, lb2, client) = (two.lb1.clone(), two.lb2.clone(), two.client.clone());
    let before = conf(&lb1, "eth0", "arp_ignore");
    let p1 = two.bed.lbha(&lb1, "lb1", &lb_config(150, 3, "100ms", extra));
    wait_for(Duration::from_secs(10), || on_vmac(&lb1)).expect("lb1 master on its VMAC");
    two.bed.lbha(&lb2, "lb2", &lb_config(100, 3, "100ms", extra));
    wait_for(Duration::from_secs(10), || has_vmac(&lb2)).expect("lb2's VMAC");
    std::thread::sleep(Duration::from_millis(500));
    assert!(on_vmac(&lb1) && !on_vmac(&lb2), "lb1 stays master with lb2 as backup");
    assert!(!lb1.has_addr(VIP), "the VIP is on the VMAC, not on eth0");
    assert!(has_vmac(&lb1));
    // keepalived's sysctls.
    assert_eq!(conf(&lb1, VMAC, "arp_ignore"), "1");
    assert_eq!(conf(&lb1, VMAC, "accept_local"), "1");
    assert_eq!((conf(&lb1, "eth0", "arp_ignore").as_str(), conf(&lb1, "eth0", "arp_filter").as_str()), ("1", "1"));

    // The client resolves the VIP to the virtual MAC and is served.
    let c = client.clone();
    let served = std::thread::spawn(move || wait_for(Duration::from_secs(5), || serves(&c)).is_some());
    assert!(served.join().unwrap_or(false), "HTTP through lb1");
    assert_eq!(client.neigh_mac(VIP).as_deref(), Some(VIRTUAL_MAC));

    // lb1 stops: its VMAC goes and eth0's sysctls come back; lb2 takes the VIP and the same MAC
    // now reaches lb2 (the client's neighbour entry did not change).
    two.bed.term(p1);
    wait_for(Duration::from_secs(10), || on_vmac(&lb2)).expect("lb2 master");
    assert!(!has_vmac(&lb1), "the VMAC is removed on stop");
    assert_eq!(conf(&lb1, "eth0", "arp_ignore"), before);
    let c = client.clone();
    let served = std::thread::spawn(move || wait_for(Duration::from_secs(5), || serves(&c)).is_some());
    assert!(served.join().unwrap_or(false), "HTTP through lb2");
    assert_eq!(client.neigh_mac(VIP).as_deref(), Some(VIRTUAL_MAC));
}

const VIP6: &str = "2001:db8::100";
const VMAC6: &str = "vrrp.52";
const VIRTUAL_MAC6: &str = "00:00:5e:00:02:34";

fn v6_config(priority: u8) -> String {
    format!(
        "[[vrrp_instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvirtual_router_id = 52\n\
         priority = {priority}\nadvert_int = \"100ms\"\nuse_vmac = true\nvirtual_ipaddress = [\"{VIP6}/128\"]\n"
    )
}

/// Every IPv6 address on `dev` (`ip -6 -o addr`), as text.
fn v6_addrs(n: &Node, dev: &str) -> String {
    n.ip(&["-6", "-o", "addr", "show", "dev", dev]).unwrap_or_default()
}

fn link_local(n: &Node, dev: &str) -> Option<String> {
    let s = v6_addrs(n, dev);
    s.split_whitespace().find(|w| w.starts_with("fe80:")).map(str::to_string)
}

/// `use_vmac` with a VRRPv3 IPv6 instance (keepalived 2.2.7's behaviour): the VMAC carries
/// 00:00:5e:00:02:VRID, no link-local address derived from it (it would be the same on both nodes)
/// but its parent's, which the adverts through it come from (RFC 5798 §5.1.2.1); the VIP lives on
/// it, answers Neighbor Solicitations with the virtual MAC, and moves with it.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn ipv6_vmac_carries_the_parents_link_local_and_moves() {
    if !bed::root_or_skip("ipv6_vmac_carries_the_parents_link_local_and_moves") {
        return;
    }
    let mut bed = bed::Bed::new("vmac6", &[("lb1", 11), ("lb2", 12), ("client", 50)]);
    let (lb1, lb2, client) = (bed.node("lb1"), bed.node("lb2"), bed.node("client"));
    for (n, host) in [(&lb1, "11"), (&lb2, "12"), (&client, "50")] {
        n.add_v6(host);
    }
    let on_vmac6 = |n: &Node| v6_addrs(n, VMAC6).contains(&format!(" {VIP6}/"));
    let p1 = bed.lbha(&lb1, "lb1", &v6_config(150));
    wait_for(Duration::from_secs(10), || on_vmac6(&lb1)).expect("lb1 master on its VMAC (IPv6)");
    let p2 = bed.lbha(&lb2, "lb2", &v6_config(100));
    wait_for(Duration::from_secs(10), || bed.log(p2).contains("-> BACKUP")).expect("lb2 backup");
    std::thread::sleep(Duration::from_millis(500));
    assert!(on_vmac6(&lb1) && !on_vmac6(&lb2), "lb2 hears lb1's adverts through the VMAC and stays backup");
    for n in [&lb1, &lb2] {
        assert!(n.ip(&["-o", "link", "show", "dev", VMAC6]).is_ok_and(|s| s.contains(VIRTUAL_MAC6)), "{}", n.ns);
        let ll = link_local(n, VMAC6);
        assert_eq!(ll, link_local(n, "eth0"), "the VMAC has its parent's link-local:\n{}", v6_addrs(n, VMAC6));
        assert_eq!(v6_addrs(n, VMAC6).matches("fe80:").count(), 1, "and no other:\n{}", v6_addrs(n, VMAC6));
    }
    let vip6: std::net::SocketAddr = format!("[{VIP6}]:80").parse().expect("addr");
    wait_for(Duration::from_secs(5), || bed::reaches(&client, vip6)).expect("client reaches the VIP on lb1");
    assert_eq!(client.neigh_mac(VIP6).as_deref(), Some(VIRTUAL_MAC6));

    // lb1 stops: lb2 takes the VIP on its VMAC; the client's neighbour entry keeps the same MAC.
    bed.term(p1);
    wait_for(Duration::from_secs(10), || on_vmac6(&lb2)).expect("lb2 master (IPv6 VMAC)");
    assert!(lb1.ip(&["-o", "link", "show", "dev", VMAC6]).is_err(), "lb1's VMAC removed on stop");
    wait_for(Duration::from_secs(5), || bed::reaches(&client, vip6)).expect("client reaches the VIP on lb2");
    assert_eq!(client.neigh_mac(VIP6).as_deref(), Some(VIRTUAL_MAC6));
}
