//! Unicast peers with a reload (SIGHUP keeps an unchanged instance, restarts a changed one), and
//! VRRPv3 over IPv6 with unsolicited Neighbor Advertisements.

use std::time::{Duration, Instant};

use crate::bed::{self, Bed, Node, VIP, ms, wait_for};
use crate::failover::lb_config;

fn only_on(holder: &Node, other: &Node, addr: &str) -> bool {
    holder.has_addr(addr) && !other.has_addr(addr)
}

/// Lines the instance logs on a state change.
fn transitions(log: &str) -> usize {
    log.lines().filter(|l| l.contains(" vrrp ") && l.contains(" -> ")).count()
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn unicast_peers_and_reload_v3() {
    if !bed::root_or_skip("unicast_peers_and_reload_v3") {
        return;
    }
    let mut bed = Bed::new("unicast", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    let uni = |me: &str, peer: &str| format!("unicast_src_ip = \"{me}\"\nunicast_peer = [\"{peer}\"]");
    let cfg1 = lb_config(150, 3, "100ms", &uni("192.0.2.11", "192.0.2.12"));
    let p1 = bed.lbha(&lb1, "lb1", &cfg1);
    let p2 = bed.lbha(&lb2, "lb2", &lb_config(100, 3, "100ms", &uni("192.0.2.12", "192.0.2.11")));
    wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2, VIP)).expect("lb1 master over unicast");
    std::thread::sleep(Duration::from_millis(500));
    assert!(only_on(&lb1, &lb2, VIP), "lb2 hears lb1's unicast adverts and stays backup");

    // SIGHUP with the same file: the instance keeps running, no transition, VIP kept.
    let before = transitions(&bed.log(p1));
    bed.sighup(p1);
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("configuration reloaded")).expect("reloaded");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(transitions(&bed.log(p1)), before, "unchanged instance kept:\n{}", bed.log(p1));
    assert!(only_on(&lb1, &lb2, VIP));

    // SIGHUP with priority 90: the instance restarts (priority 0 first), lb2 takes over, lb1 backs it.
    let t0 = Instant::now();
    std::fs::write(bed.dir.join("lb1.toml"), cfg1.replace("priority = 150", "priority = 90")).expect("rewrite");
    bed.sighup(p1);
    wait_for(Duration::from_secs(5), || only_on(&lb2, &lb1, VIP)).expect("lb2 master after lb1's reload");
    println!("reload (v3 unicast): lb1 lowered to 90 by SIGHUP, lb2 master after {}", ms(t0.elapsed()));
    std::thread::sleep(Duration::from_millis(800));
    assert!(only_on(&lb2, &lb1, VIP), "lb1 (90) stays backup");

    // Unicast failover: kill -9 lb2, lb1 takes over after the down interval.
    let t0 = Instant::now();
    bed.kill9(p2);
    wait_for(Duration::from_secs(5), || lb1.has_addr(VIP)).expect("lb1 takes over");
    println!("failover (v3 unicast, 100 ms): VIP on lb1 {} after kill -9 of lb2", ms(t0.elapsed()));
}

const VIP6: &str = "2001:db8::100";

fn v6_config(priority: u8) -> String {
    format!(
        "[[vrrp_instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvirtual_router_id = 52\n\
         priority = {priority}\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"{VIP6}/128\"]\n"
    )
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn ipv6_v3_failover_with_unsolicited_na() {
    if !bed::root_or_skip("ipv6_v3_failover_with_unsolicited_na") {
        return;
    }
    let mut bed = Bed::new("ipv6", &[("lb1", 11), ("lb2", 12), ("client", 50)]);
    let (lb1, lb2, client) = (bed.node("lb1"), bed.node("lb2"), bed.node("client"));
    for (n, host) in [(&lb1, "11"), (&lb2, "12"), (&client, "50")] {
        n.add_v6(host);
    }
    let p1 = bed.lbha(&lb1, "lb1", &v6_config(150));
    bed.lbha(&lb2, "lb2", &v6_config(100));
    let t = wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2, VIP6)).expect("lb1 master (IPv6)");
    println!("election (v3 IPv6, 100 ms): lb1 master after {}", ms(t));
    let vip6: std::net::SocketAddr = format!("[{VIP6}]:80").parse().expect("addr");
    assert!(bed::reaches(&client, vip6), "client reaches the IPv6 VIP on lb1");
    assert_eq!(client.neigh_mac(VIP6).as_deref(), Some(lb1.mac.as_str()));

    let t0 = Instant::now();
    bed.kill9(p1);
    // kill -9 leaves the VIP on lb1's interface; wait for lb2 to hold it too.
    wait_for(Duration::from_secs(5), || lb2.has_addr(VIP6)).expect("lb2 takes the IPv6 VIP");
    let moved = t0.elapsed();
    wait_for(Duration::from_secs(3), || client.neigh_mac(VIP6).as_deref() == Some(lb2.mac.as_str()))
        .expect("unsolicited NA moves the client's neighbour entry to lb2");
    println!(
        "failover (v3 IPv6, kill -9): VIP on lb2 after {}, client neighbour entry on lb2 after {}",
        ms(moved),
        ms(t0.elapsed())
    );
}
