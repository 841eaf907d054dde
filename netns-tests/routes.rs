//! keepalived's `virtual_ipaddress_excluded`, `virtual_routes`, `virtual_rules` (in place while
//! MASTER) and `static_ipaddress`, `static_routes`, `static_rules` (while the daemon runs): added
//! and removed through rtnetlink as the instance changes state, and all gone after a clean stop.

use std::time::Duration;

use crate::bed::{self, Bed, Node, VIP, wait_for};

/// What the namespace has: eth0's addresses, every route of every table, and the rules.
fn seen(n: &Node) -> String {
    let addrs = n.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap_or_default();
    let routes = n.ip(&["route", "show", "table", "all"]).unwrap_or_default();
    let rules = n.ip(&["rule", "show"]).unwrap_or_default();
    format!("{addrs}\n{routes}\n{rules}")
}

const VIRTUAL: &[&str] = &[
    " 2001:db8::100/128 ",
    "198.51.100.128/25 via 192.0.2.1 dev eth0 proto static src 192.0.2.100",
    "blackhole 203.0.113.128/25 table 100",
    "from 192.0.2.100 lookup 100",
];
const STATIC: &[&str] =
    &[" 198.51.100.1/32 ", "203.0.113.0/25 via 192.0.2.1 dev eth0 table 200", "to 203.0.113.0/25 lookup 200"];

fn has_all(n: &Node, want: &[&str]) -> bool {
    let s = seen(n);
    want.iter().all(|w| s.contains(w))
}

fn has_none(n: &Node, want: &[&str]) -> bool {
    let s = seen(n);
    want.iter().all(|w| !s.contains(w))
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn virtual_and_static_routes_rules_and_addresses() {
    if !bed::root_or_skip("virtual_and_static_routes_rules_and_addresses") {
        return;
    }
    let mut bed = Bed::new("routes", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    let cfg = format!(
        "static_ipaddress = [\"198.51.100.1/32 dev eth0\"]\n\
         static_routes = [\"203.0.113.0/25 via 192.0.2.1 dev eth0 table 200\"]\n\
         static_rules = [\"to 203.0.113.0/25 table 200 priority 200\"]\n\n{}{}\
         virtual_ipaddress_excluded = [\"2001:db8::100/128\"]\n\
         virtual_routes = [\"src 192.0.2.100 to 198.51.100.128/25 via 192.0.2.1 dev eth0\", \"blackhole 203.0.113.128/25 table 100\"]\n\
         virtual_rules = [\"from 192.0.2.100 table 100 priority 100\"]\n",
        bed::global_state_dir(&bed.dir.join("state1")),
        bed::v3_instance("VI_1", "eth0", 51, 150, &format!("\"{VIP}/32\"")),
    );
    let p1 = bed.lbha(&lb1, "lb1", &cfg);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && has_all(&lb1, VIRTUAL) && has_all(&lb1, STATIC))
        .unwrap_or_else(|| panic!("MASTER: VIP, virtual and static entries:\n{}", seen(&lb1)));

    // A better master appears: lb1 goes BACKUP and takes its virtual entries away, not the static ones.
    let cfg2 = format!(
        "{}{}",
        bed::global_state_dir(&bed.dir.join("state2")),
        bed::v3_instance("VI_1", "eth0", 51, 200, &format!("\"{VIP}/32\""))
    );
    let p2 = bed.lbha(&lb2, "lb2", &cfg2);
    wait_for(Duration::from_secs(10), || lb2.has_addr(VIP) && !lb1.has_addr(VIP) && has_none(&lb1, VIRTUAL))
        .unwrap_or_else(|| panic!("BACKUP: virtual entries gone:\n{}", seen(&lb1)));
    assert!(has_all(&lb1, STATIC), "static entries stay while BACKUP:\n{}", seen(&lb1));
    // The excluded address is not advertised: lb2 sees lb1's adverts list only the VIP it has too.
    assert!(!bed.log(p2).contains("2001:db8::100"), "{}", bed.log(p2));

    // lb2 stops: lb1 is MASTER again, with its virtual entries.
    bed.term(p2);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && has_all(&lb1, VIRTUAL))
        .unwrap_or_else(|| panic!("MASTER again:\n{}", seen(&lb1)));

    // A clean stop removes everything, static entries included (as keepalived).
    bed.term(p1);
    assert!(!lb1.has_addr(VIP));
    assert!(has_none(&lb1, VIRTUAL) && has_none(&lb1, STATIC), "left behind:\n{}", seen(&lb1));
}
