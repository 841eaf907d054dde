//! `vrrp_sync_group`: two instances on two links fail over together. lb1 and lb2 each have eth0
//! (192.0.2.0/24) and eth1 (198.51.100.0/24); VI_1 runs on eth0, VI_2 on eth1, in one group.

use std::time::Duration;

use crate::bed::{self, Bed, Node, VIP, ms, wait_for};

const VIP2: &str = "198.51.100.100";

fn config(priority: u8) -> String {
    format!(
        "{}\n{}\n[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\n",
        bed::v3_instance("VI_1", "eth0", 51, priority, &format!("\"{VIP}/32\"")),
        bed::v3_instance("VI_2", "eth1", 52, priority, &format!("\"{VIP2}/32\"")),
    )
}

fn has(n: &Node, addr: &str, dev: &str) -> bool {
    n.ip(&["-o", "addr", "show", "dev", dev]).is_ok_and(|s| s.contains(&format!(" {addr}/")))
}

/// Both VIPs on `holder`, none on `other`.
fn group_on(holder: &Node, other: &Node) -> bool {
    has(holder, VIP, "eth0") && has(holder, VIP2, "eth1") && !has(other, VIP, "eth0") && !has(other, VIP2, "eth1")
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn sync_group_members_fail_over_together() {
    if !bed::root_or_skip("sync_group_members_fail_over_together") {
        return;
    }
    let mut bed = Bed::new("sync", &[("lb1", 11), ("lb2", 12)]);
    bed.wire("lb1", "eth1", "br1", "198.51.100.11/24", "02:00:00:00:01:11");
    bed.wire("lb2", "eth1", "br1", "198.51.100.12/24", "02:00:00:00:01:12");
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    let p1 = bed.lbha(&lb1, "lb1", &config(150));
    let p2 = bed.lbha(&lb2, "lb2", &config(100));
    let t = wait_for(Duration::from_secs(10), || group_on(&lb1, &lb2)).expect("lb1 master of both instances");
    println!("sync group (v3, 100 ms): lb1 master of VI_1 and VI_2 after {}", ms(t));

    // Only eth1 fails: VI_2 enters Fault on its own, VI_1 (eth0 is fine) follows it, and lb2
    // takes both.
    let seen2 = bed.log(p2).lines().count();
    lb1.ip(&["link", "set", "eth1", "down"]).expect("eth1 down");
    let moved = wait_for(Duration::from_secs(10), || group_on(&lb2, &lb1)).expect("both VIPs move to lb2");
    let log = bed.log(p1);
    assert!(log.contains("sync group G: VI_2 is in FAULT"), "VI_1 names the member it follows:\n{log}");
    // On lb2, VI_1 heard lb1's priority 0 and would take over after its skew time, but VI_2 still
    // waits for its down interval (lb1's eth1 sent nothing more): VI_1 waits for it.
    let log2 = bed.log(p2);
    assert!(
        log2.lines()
            .skip(seen2)
            .any(|l| l.contains("waiting for the other members of sync group G") && l.contains("VI_1")),
        "VI_1 on lb2 waited for VI_2:\n{log2}"
    );
    assert!(lb1.ip(&["link", "show", "eth0"]).is_ok_and(|s| s.contains("state UP")), "eth0 stayed up");
    println!("sync group: lb1 eth1 down, VI_1 followed VI_2 into FAULT, lb2 master of both after {}", ms(moved));
    std::thread::sleep(Duration::from_millis(500));
    assert!(group_on(&lb2, &lb1), "the group stays on lb2 while lb1's eth1 is down");

    lb1.ip(&["link", "set", "eth1", "up"]).expect("eth1 up");
    let back = wait_for(Duration::from_secs(10), || group_on(&lb1, &lb2)).expect("lb1 takes both back");
    println!("sync group: eth1 up, lb1 master of both again after {} (preempt)", ms(back));
    std::thread::sleep(Duration::from_millis(500));
    assert!(group_on(&lb1, &lb2), "stable on lb1");
}

/// The group's own notifies (keepalived's `notify_master|backup|fault|stop` and `notify` in
/// `vrrp_sync_group`): run when the group as a whole changes state, `notify` with
/// `GROUP NAME STATE 0`, and `notify_stop` at a clean stop before the process exits.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn sync_group_notifies() {
    if !bed::root_or_skip("sync_group_notifies") {
        return;
    }
    let mut bed = Bed::new("syncnotify", &[("lb1", 11)]);
    bed.wire("lb1", "eth1", "br1", "198.51.100.11/24", "02:00:00:00:01:11");
    let lb1 = bed.node("lb1");
    let (master, any, stop) = (bed.dir.join("master"), bed.dir.join("any"), bed.dir.join("stop"));
    let cfg = format!(
        "{}{}notify_master = \"echo m >> {}\"\nnotify = \"echo >> {}\"\nnotify_stop = \"sleep 1; echo s > {}\"\n",
        bed::global_state_dir(&bed.dir.join("state")),
        config(150),
        master.display(),
        any.display(),
        stop.display()
    );
    let p = bed.lbha(&lb1, "lb1", &cfg);
    wait_for(Duration::from_secs(10), || std::fs::read_to_string(&master).is_ok_and(|s| s == "m\n"))
        .expect("the group's notify_master ran once");
    wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&any).is_ok_and(|s| s.lines().any(|l| l == "GROUP G MASTER 0"))
    })
    .expect("notify GROUP G MASTER 0");
    let got = std::fs::read_to_string(&any).unwrap_or_default();
    assert!(got.lines().next() == Some("GROUP G BACKUP 0"), "the group starts as BACKUP: {got:?}");
    bed.term(p);
    assert_eq!(std::fs::read_to_string(&stop).unwrap_or_default(), "s\n", "notify_stop finished before exit");
}
