//! An instance whose interface is missing waits in Fault instead of failing the daemon, starts
//! working when the interface appears, and reopens its sockets when the interface is recreated
//! (new ifindex). A reload that adds an instance on a missing interface keeps the daemon running.

use std::time::{Duration, Instant};

use crate::bed::{self, Bed, VIP, ms, only_on, wait_for};

const LB1_ADDR: &str = "192.0.2.11/24";
const LB1_MAC: &str = "02:00:00:00:00:0b";

fn config(priority: u8, extra: &str) -> String {
    format!("{}{extra}", bed::v3_instance("VI_1", "eth0", 51, priority, &format!("\"{VIP}/32\"")))
}

/// Lines of `log` reporting open sockets.
fn opens(log: &str) -> Vec<String> {
    log.lines().filter(|l| l.contains("VRRP sockets open")).map(str::to_string).collect()
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn missing_interface_waits_in_fault_and_recovers() {
    if !bed::root_or_skip("missing_interface_waits_in_fault_and_recovers") {
        return;
    }
    let mut bed = Bed::new("noiface", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    bed.unwire("lb1", "eth0");

    // lb1 starts without eth0: the daemon runs, the instance is in FAULT and says why.
    let p1 = bed.lbha(&lb1, "lb1", &config(100, ""));
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("-> FAULT")).expect("lb1's instance enters FAULT");
    let log = bed.log(p1);
    assert!(log.contains("no interface named eth0 in this network namespace: FAULT until that changes"), "{log}");
    let started = format!("lbha {} started", env!("CARGO_PKG_VERSION"));
    assert!(log.contains(&started), "the daemon runs:\n{log}");
    let p2 = bed.lbha(&lb2, "lb2", &config(150, ""));
    wait_for(Duration::from_secs(5), || lb2.has_addr(VIP)).expect("lb2 master");

    // eth0 appears: lb1 opens its sockets, hears lb2 (150) and stays backup.
    let t0 = Instant::now();
    bed.wire("lb1", "eth0", "br0", LB1_ADDR, LB1_MAC);
    wait_for(Duration::from_secs(5), || opens(&bed.log(p1)).len() == 1).expect("sockets opened");
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("FAULT -> BACKUP")).expect("lb1 leaves FAULT");
    println!("missing interface: eth0 created, lb1 BACKUP after {}", ms(t0.elapsed()));
    std::thread::sleep(Duration::from_millis(800));
    assert!(only_on(&lb2, &lb1), "lb1 receives lb2's adverts on the new socket and stays backup");

    // Recreated eth0 (new ifindex): the sockets are reopened and receive again.
    let t0 = Instant::now();
    bed.unwire("lb1", "eth0");
    wait_for(Duration::from_secs(5), || bed.log(p1).matches("-> FAULT").count() >= 2).expect("FAULT again");
    bed.wire("lb1", "eth0", "br0", LB1_ADDR, LB1_MAC);
    wait_for(Duration::from_secs(5), || opens(&bed.log(p1)).len() == 2).expect("sockets reopened");
    let line = opens(&bed.log(p1)).pop().unwrap_or_default();
    assert!(line.contains("is back (ifindex") || line.contains("was recreated (ifindex"), "{line}");
    println!("recreated interface: lb1 sockets reopened after {} ({line})", ms(t0.elapsed()));
    std::thread::sleep(Duration::from_millis(800));
    assert!(only_on(&lb2, &lb1), "lb1 hears lb2 on the reopened socket");

    // lb2 stops: lb1 takes over. lb2 returns with a lower priority and stays backup, so lb1's
    // adverts leave through the reopened socket.
    bed.term(p2);
    let took = wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2)).expect("lb1 takes over");
    println!("recreated interface: lb2 stopped, lb1 master after {}", ms(took));
    bed.lbha(&lb2, "lb2-low", &config(50, ""));
    std::thread::sleep(Duration::from_secs(2));
    assert!(only_on(&lb1, &lb2), "lb2 (50) hears lb1 (100) and stays backup");

    // A reload adding an instance on a missing interface: logged, Fault, the daemon keeps going.
    let extra = "\n[[vrrp_instance]]\nname = \"VI_9\"\ninterface = \"eth9\"\nvirtual_router_id = 59\n\
                 priority = 100\nvirtual_ipaddress = [\"203.0.113.9/32\"]\n";
    std::fs::write(bed.dir.join("lb1.toml"), config(100, extra)).expect("rewrite config");
    bed.sighup(p1);
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("no interface named eth9")).expect("VI_9 waits");
    std::thread::sleep(Duration::from_millis(500));
    let log = bed.log(p1);
    assert!(!log.contains("vrrp reload:"), "the reload did not fail:\n{log}");
    assert!(only_on(&lb1, &lb2), "VI_1 kept running through the reload");
}
