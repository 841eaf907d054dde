//! `lbha vip`: directly through rtnetlink inside a namespace (the seed's loop of 100 addresses,
//! promote_secondaries), and through running daemons on the VRRP test bed (master applies at
//! once, backup records, failover, restart, reload, `show vrrp`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bed::{self, Bed, Node, VIP, wait_for};

const LBHA: &str = env!("CARGO_BIN_EXE_lbha");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn exec(argv: &[&str]) -> Out {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `lbha ARGS` inside `node`'s namespace.
fn lbha_in(node: &Node, args: &[&str]) -> Out {
    let mut v = vec!["ip", "netns", "exec", node.ns.as_str(), LBHA];
    v.extend_from_slice(args);
    exec(&v)
}

/// `lbha -S SOCK ARGS` from the test process (the socket file is shared by every namespace).
fn lbha_sock(sock: &Path, args: &[&str]) -> Out {
    let s = sock.display().to_string();
    let mut v = vec![LBHA, "-S", s.as_str()];
    v.extend_from_slice(args);
    exec(&v)
}

fn ok(o: Out, what: &str) -> Out {
    assert_eq!(o.code, 0, "{what}: exit {}\nstdout: {}\nstderr: {}", o.code, o.stdout, o.stderr);
    o
}

/// Addresses of `prefix*` on `dev`.
fn count(node: &Node, dev: &str, prefix: &str) -> usize {
    let s = node.ip(&["-o", "-4", "addr", "show", "dev", dev]).unwrap_or_default();
    s.lines().filter(|l| l.contains(&format!(" inet {prefix}"))).count()
}

fn sysctl(node: &Node, path: &str) -> String {
    exec(&["ip", "netns", "exec", &node.ns, "cat", path]).stdout.trim().to_string()
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn direct_range_of_100_and_promote_secondaries() {
    if !bed::root_or_skip("direct_range_of_100_and_promote_secondaries") {
        return;
    }
    let bed = Bed::new("vipdirect", &[("n", 11)]);
    let n = bed.node("n");

    // (dummy0 is one end of a veth pair: the dummy module may be missing.)
    // What the test relies on: without promote_secondaries, deleting a subnet's primary address
    // deletes its secondaries too (the seed's lost-addresses problem).
    n.ip(&["link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"]).expect("a second interface");
    n.ip(&["link", "set", "dummy0", "up"]).expect("up");
    assert_eq!(sysctl(&n, "/proc/sys/net/ipv4/conf/dummy0/promote_secondaries"), "0");
    n.ip(&["addr", "add", "203.0.113.1/24", "dev", "dummy0"]).expect("primary");
    n.ip(&["addr", "add", "203.0.113.2/24", "dev", "dummy0"]).expect("secondary");
    n.ip(&["addr", "del", "203.0.113.1/24", "dev", "dummy0"]).expect("del");
    assert_eq!(count(&n, "dummy0", "203.0.113."), 0, "the kernel default drops the secondaries");
    assert_eq!(sysctl(&n, "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"), "0");

    let o = ok(lbha_in(&n, &["vip", "add", "--direct", "198.51.100.1-100/24", "dev", "eth0"]), "add 100");
    assert!(o.stdout.contains("eth0: added 100 address(es): 198.51.100.1-198.51.100.100/24 (100)"), "{}", o.stdout);
    assert_eq!(count(&n, "eth0", "198.51.100."), 100);
    assert_eq!(sysctl(&n, "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"), "1");
    assert_eq!(sysctl(&n, "/proc/sys/net/ipv4/ip_nonlocal_bind"), "1");
    let o = ok(lbha_in(&n, &["vip", "add", "--direct", "198.51.100.1-100/24", "dev", "eth0"]), "again");
    assert!(o.stdout.contains("nothing added") && o.stdout.contains("already present"), "{}", o.stdout);

    // The primary of 198.51.100.0/24 goes; the other 99 stay.
    ok(lbha_in(&n, &["vip", "del", "--direct", "198.51.100.1/24", "dev", "eth0"]), "del primary");
    assert_eq!(count(&n, "eth0", "198.51.100."), 99, "promote_secondaries keeps the others");
    assert!(!n.has_addr("198.51.100.1"));

    // Clear errors, and nothing changes on any of them.
    n.ip(&["addr", "add", "203.0.113.50/32", "dev", "dummy0"]).expect("elsewhere");
    for (args, code, want) in [
        (vec!["vip", "add", "--direct", "198.51.100.7/24", "dev", "nosuch0"], 1, "no interface named \"nosuch0\""),
        (
            vec!["vip", "add", "--direct", "203.0.113.50/32", "dev", "eth0"],
            1,
            "203.0.113.50 is already on interface dummy0",
        ),
        (vec!["vip", "add", "--direct", "198.51.100.7/32", "dev", "eth0"], 1, "already on eth0 as /24, not /32"),
        (vec!["vip", "del", "--direct", "198.51.100.1-2/24", "dev", "eth0"], 1, "198.51.100.1/24 is not on eth0"),
        (vec!["vip", "add", "--direct", "198.51.100.1-300/24", "dev", "eth0"], 2, "malformed range"),
        (vec!["vip", "add", "--direct", "198.51.0.1-198.51.99.1/24", "dev", "eth0"], 2, "at most 4096"),
        (vec!["vip", "add", "--direct", "198.51.100.1/24"], 2, "missing `dev IFACE`"),
    ] {
        let o = lbha_in(&n, &args);
        assert_eq!(o.code, code, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {want:?} not in {}", o.stderr);
    }
    assert_eq!(count(&n, "eth0", "198.51.100."), 99);
    // Without root: permission denied, exit 1.
    let o = exec(&[
        "ip",
        "netns",
        "exec",
        &n.ns,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        LBHA,
        "vip",
        "add",
        "--direct",
        "198.51.100.1/24",
        "dev",
        "eth0",
    ]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("permission denied"), "{}", o.stderr);

    // No daemon on the socket: the same command manages the address directly, and says so.
    let none = bed.dir.join("none.sock").display().to_string();
    let o =
        ok(lbha_in(&n, &["-S", &none, "vip", "add", "198.51.100.1/24", "dev", "eth0", "label", "eth0:1"]), "fallback");
    assert!(o.stderr.contains("no daemon on") && o.stderr.contains("not persisted"), "{}", o.stderr);
    let shown = n.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap_or_default();
    assert!(shown.lines().any(|l| l.contains(" 198.51.100.1/24 ") && l.contains(" eth0:1")), "{shown}");
    let o = ok(lbha_in(&n, &["vip", "list", "--direct", "dev", "eth0", "--json"]), "list");
    let rows: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    let ours = rows.as_array().map_or(0, |a| {
        a.iter()
            .filter(|r| r["dev"] == "eth0" && r["addr"].as_str().is_some_and(|s| s.starts_with("198.51.100.")))
            .count()
    });
    assert_eq!(ours, 100, "{rows}");
    assert!(rows.as_array().is_some_and(|a| a.iter().any(|r| r["label"] == "eth0:1" && r["addr"] == "198.51.100.1")));

    ok(lbha_in(&n, &["vip", "del", "--direct", "198.51.100.1-100/24", "dev", "eth0"]), "del all");
    assert_eq!(count(&n, "eth0", "198.51.100."), 0);
    assert!(n.has_addr("192.0.2.11"), "the node's own address is untouched");
}

/// lbha config for a VRRP-only node with its own state directory.
fn vrrp_config(priority: u8, state_dir: &Path, extra_vips: &str) -> String {
    format!(
        "{}{}",
        bed::global_state_dir(state_dir),
        bed::v3_instance("VI_1", "eth0", 51, priority, &format!("\"{VIP}/32\"{extra_vips}")),
    )
}

fn reaches(node: &Node, ip: &str) -> bool {
    let addr = SocketAddr::new(ip.parse().expect("ip"), 80);
    bed::reaches(node, addr)
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn runtime_vips_follow_the_master_and_survive_restart_and_reload() {
    if !bed::root_or_skip("runtime_vips_follow_the_master_and_survive_restart_and_reload") {
        return;
    }
    let mut bed = Bed::new("viprt", &[("lb1", 11), ("lb2", 12), ("client", 50)]);
    let (lb1, lb2, client) = (bed.node("lb1"), bed.node("lb2"), bed.node("client"));
    let (st1, st2) = (bed.dir.join("state-lb1"), bed.dir.join("state-lb2"));
    let p1 = bed.lbha(&lb1, "lb1", &vrrp_config(150, &st1, ""));
    bed.lbha(&lb2, "lb2", &vrrp_config(100, &st2, ""));
    let (s1, s2) = (bed.dir.join("lb1.sock"), bed.dir.join("lb2.sock"));
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && !lb2.has_addr(VIP)).expect("lb1 master");
    wait_for(Duration::from_secs(5), || s2.exists()).expect("lb2's control socket");

    // Master: on the interface when the command returns, announced, reachable.
    let o = ok(lbha_sock(&s1, &["vip", "add", "192.0.2.150/32", "dev", "eth0"]), "add on master");
    assert!(
        o.stdout.contains("VI_1 (MASTER): added 1 runtime VIP(s) 192.0.2.150/32 dev eth0; on the interface now"),
        "{}",
        o.stdout
    );
    assert!(lb1.has_addr("192.0.2.150"), "applied at once");
    assert!(reaches(&client, "192.0.2.150"), "the client reaches the runtime VIP");
    assert_eq!(client.neigh_mac("192.0.2.150").as_deref(), Some(lb1.mac.as_str()));
    // The seed's 100 addresses as one range, and gone again.
    let o = ok(lbha_sock(&s1, &["vip", "add", "198.51.100.1-100/24", "dev", "eth0"]), "range on master");
    assert!(o.stdout.contains("added 100 runtime VIP(s)"), "{}", o.stdout);
    assert_eq!(count(&lb1, "eth0", "198.51.100."), 100);
    ok(lbha_sock(&s1, &["vip", "del", "198.51.100.1-100/24"]), "range del");
    assert_eq!(count(&lb1, "eth0", "198.51.100."), 0);

    // Backup: recorded, not on the interface.
    let o = ok(lbha_sock(&s2, &["vip", "add", "192.0.2.150/32", "dev", "eth0"]), "add on backup");
    assert!(o.stdout.contains("VI_1 (BACKUP): recorded 1 runtime VIP(s)"), "{}", o.stdout);
    assert!(!lb2.has_addr("192.0.2.150"));
    let o = ok(lbha_sock(&s2, &["vip", "list", "--json"]), "list on backup");
    let rows: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    let row = rows.as_array().and_then(|a| a.iter().find(|r| r["addr"] == "192.0.2.150")).expect("listed");
    assert_eq!((row["source"].as_str(), row["held"].as_bool()), (Some("runtime"), Some(false)), "{rows}");
    // Refusals name the reason and change nothing.
    for (args, want) in [
        (vec!["vip", "add", "192.0.2.100/32", "dev", "eth0"], "configured in vrrp_instance VI_1"),
        (vec!["vip", "add", "192.0.2.160/32", "dev", "nosuch0"], "no interface named \"nosuch0\""),
        (vec!["vip", "add", "192.0.2.160/32", "dev", "eth0", "--instance", "VI_9"], "no vrrp_instance named \"VI_9\""),
        (vec!["vip", "del", "192.0.2.161"], "192.0.2.161 is not a runtime VIP"),
    ] {
        let o = lbha_sock(&s1, &args);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stdout);
        assert!(o.stderr.contains(want), "{args:?}: {want:?} not in {}", o.stderr);
    }

    let o = ok(lbha_sock(&s1, &["show", "vrrp"]), "show vrrp");
    for want in [
        "VI_1  eth0  vrid 51  v3  advert 100ms",
        "state MASTER  priority 150  master 192.0.2.11",
        "last transition BACKUP -> MASTER",
        "VIPs configured: 192.0.2.100/32 dev eth0",
        "VIPs runtime:    192.0.2.150/32 dev eth0",
        "VIPs held:       192.0.2.100/32 dev eth0, 192.0.2.150/32 dev eth0",
        &format!("runtime VIPs file: {}", st1.join("runtime-vips.json").display()),
    ] {
        assert!(o.stdout.contains(want), "{want:?} not in:\n{}", o.stdout);
    }
    let o = ok(lbha_sock(&s1, &["show", "vrrp", "--json"]), "show vrrp json");
    let j: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(j["instances"][0]["vips_runtime"][0], "192.0.2.150/32 dev eth0", "{j}");

    // Failover: lb1 stops cleanly, lb2 takes the configured and the runtime VIP.
    bed.term(p1);
    wait_for(Duration::from_secs(5), || lb2.has_addr("192.0.2.150") && lb2.has_addr(VIP)).expect("lb2 holds both");
    assert!(!lb1.has_addr("192.0.2.150"), "a clean stop removes runtime VIPs too");
    wait_for(Duration::from_secs(5), || client.neigh_mac("192.0.2.150").as_deref() == Some(lb2.mac.as_str()))
        .expect("the client's neighbour entry follows to lb2 (gratuitous ARP)");

    // Restart: lb1 reads its runtime VIPs back, preempts and holds them again.
    let saved = std::fs::read_to_string(st1.join("runtime-vips.json")).expect("persisted");
    assert!(saved.contains("{\"instance\":\"VI_1\",\"vip\":\"192.0.2.150/32 dev eth0\"}"), "{saved}");
    let p1 = bed.lbha(&lb1, "lb1b", &vrrp_config(150, &st1, ""));
    let s1 = bed.dir.join("lb1b.sock");
    wait_for(Duration::from_secs(10), || lb1.has_addr("192.0.2.150") && !lb2.has_addr("192.0.2.150"))
        .expect("lb1 holds the persisted runtime VIP after its restart");

    // Reload: a config change restarts VI_1; runtime VIPs stay, and an address the config now
    // lists is held once, by the config.
    ok(lbha_sock(&s1, &["vip", "add", "192.0.2.151/32", "dev", "eth0"]), "second runtime VIP");
    std::fs::write(bed.dir.join("lb1b.toml"), vrrp_config(150, &st1, ", \"192.0.2.150/32\"")).expect("config");
    bed.sighup(p1);
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("is now in the config file")).expect("reloaded");
    wait_for(Duration::from_secs(10), || {
        lb1.has_addr("192.0.2.150") && lb1.has_addr("192.0.2.151") && !lb2.has_addr("192.0.2.151")
    })
    .expect("lb1 master again with both");
    let o = ok(lbha_sock(&s1, &["vip", "list", "--json"]), "list after reload");
    let rows: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    let of = |ip: &str| -> Vec<String> {
        rows.as_array()
            .map(|a| {
                a.iter().filter(|r| r["addr"] == ip).map(|r| r["source"].as_str().unwrap_or("").to_string()).collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(of("192.0.2.150"), vec!["config"], "{rows}");
    assert_eq!(of("192.0.2.151"), vec!["runtime"], "{rows}");
    let saved = std::fs::read_to_string(st1.join("runtime-vips.json")).expect("persisted");
    assert!(!saved.contains("192.0.2.150") && saved.contains("192.0.2.151"), "{saved}");
    let o = ok(lbha_sock(&s1, &["vip", "del", "192.0.2.151"]), "del");
    assert!(o.stdout.contains("removed from the interface"), "{}", o.stdout);
    assert!(!lb1.has_addr("192.0.2.151"));
}
