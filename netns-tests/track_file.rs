//! `vrrp_track_file` / `track_file`: the number in a file puts the master in FAULT (weight 0) or
//! lowers its priority below the backup's (weight × value), and the VIP moves; back to 0, it returns.

use std::time::Duration;

use crate::bed::{self, only_on, wait_for};
use crate::failover::{lb_config, pair};

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn track_files_move_the_vip() {
    if !bed::root_or_skip("track_files_move_the_vip") {
        return;
    }
    let mut two = pair("trackfile");
    let (fault, weighted) = (two.bed.dir.join("fault"), two.bed.dir.join("weighted"));
    let extra = || {
        format!(
            "track_file = [{{ name = \"fault\", weight = 0 }}, {{ name = \"weighted\" }}]\n\n\
             [[vrrp_track_file]]\nname = \"fault\"\nfile = \"{}\"\ninit_file = {{ value = 0, overwrite = true }}\n\
             [[vrrp_track_file]]\nname = \"weighted\"\nfile = \"{}\"\nweight = -60\n",
            fault.display(),
            weighted.display()
        )
    };
    // A stale 1 left in the file: init_file overwrites it with 0 at start.
    std::fs::write(&fault, "1\n").expect("write");
    let p1 = two.bed.lbha(&two.lb1, "lb1", &lb_config(150, 3, "100ms", &extra()));
    // The namespaces share one filesystem: only lb1 tracks the files.
    two.bed.lbha(&two.lb2, "lb2", &lb_config(100, 3, "100ms", ""));
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 master");
    assert_eq!(std::fs::read_to_string(&fault).expect("read"), "0\n", "init_file overwrote the file");

    std::fs::write(&fault, "1\n").expect("write");
    wait_for(Duration::from_secs(10), || only_on(&two.lb2, &two.lb1)).expect("lb1 FAULT: lb2 takes the VIP");
    assert!(two.bed.log(p1).contains("track_file fault holds 1"), "{}", two.bed.log(p1));
    std::fs::write(&fault, "0\n").expect("write");
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 back and preempts");

    // 150 - 60 x 1 = 90 < 100: lb2 wins the election; at 0 again lb1 preempts.
    std::fs::write(&weighted, "1\n").expect("write");
    wait_for(Duration::from_secs(10), || only_on(&two.lb2, &two.lb1)).expect("lb2 preferred");
    std::fs::write(&weighted, "0\n").expect("write");
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 preferred again");
}

/// `vrrp_track_process`: the master's tracked process stops and the VIP moves; it runs again and
/// the master takes the VIP back. (Processes are not per namespace: the name is unique to the test.)
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_tracked_process_moves_the_vip() {
    if !bed::root_or_skip("a_tracked_process_moves_the_vip") {
        return;
    }
    let mut two = pair("trackproc");
    let name = format!("lbtp{}", std::process::id());
    let exe = two.bed.dir.join(&name);
    std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
    let start =
        || bed::Reaped(Some(std::process::Command::new(&exe).arg("300").spawn().expect("start the tracked process")));
    let mut proc_ = start();
    let extra = format!(
        "track_process = [{{ name = \"p\" }}]\n\n[[vrrp_track_process]]\nname = \"p\"\nprocess = \"{name}\"\ndelay = \"200ms\"\n"
    );
    let p1 = two.bed.lbha(&two.lb1, "lb1", &lb_config(150, 3, "100ms", &extra));
    two.bed.lbha(&two.lb2, "lb2", &lb_config(100, 3, "100ms", ""));
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 master");
    proc_.stop();
    wait_for(Duration::from_secs(10), || only_on(&two.lb2, &two.lb1)).expect("lb1 FAULT: lb2 takes the VIP");
    assert!(two.bed.log(p1).contains("process p failed"), "{}", two.bed.log(p1));
    let _again = start();
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 back and preempts");
}

/// `track_interface` with a weight: a real link of the master's namespace set down lowers its
/// priority below the backup's (150 - 60 < 100) and the VIP moves; up again, the master
/// preempts. With weight 0 the same link puts the master in FAULT.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_tracked_interface_going_down_moves_the_vip() {
    if !bed::root_or_skip("a_tracked_interface_going_down_moves_the_vip") {
        return;
    }
    let mut two = pair("trackif");
    // Veth pairs inside lb1's namespace: links of its own that the test sets down and up.
    for (link, peer) in [("trk0", "trk0p"), ("trk1", "trk1p")] {
        two.lb1.ip(&["link", "add", link, "type", "veth", "peer", "name", peer]).expect("add a veth pair");
        for l in [link, peer] {
            two.lb1.ip(&["link", "set", l, "up"]).expect("set it up");
        }
    }
    let extra = "track_interface = [{ name = \"trk0\", weight = -60 }, { name = \"trk1\", weight = 0 }]\n";
    let p1 = two.bed.lbha(&two.lb1, "lb1", &lb_config(150, 3, "100ms", extra));
    two.bed.lbha(&two.lb2, "lb2", &lb_config(100, 3, "100ms", ""));
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 master");

    two.lb1.ip(&["link", "set", "trk0", "down"]).unwrap();
    wait_for(Duration::from_secs(10), || only_on(&two.lb2, &two.lb1))
        .unwrap_or_else(|| panic!("lb1 at 90: lb2 takes the VIP\n{}", two.bed.log(p1)));
    assert!(!two.bed.log(p1).contains("FAULT"), "a weighted link lowers the priority only: {}", two.bed.log(p1));
    two.lb1.ip(&["link", "set", "trk0", "up"]).unwrap();
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 back at 150 and preempts");

    two.lb1.ip(&["link", "set", "trk1", "down"]).unwrap();
    wait_for(Duration::from_secs(10), || only_on(&two.lb2, &two.lb1)).expect("lb1 FAULT: lb2 takes the VIP");
    wait_for(Duration::from_secs(10), || two.bed.log(p1).contains("FAULT"))
        .unwrap_or_else(|| panic!("lb1 logs its FAULT\n{}", two.bed.log(p1)));
    two.lb1.ip(&["link", "set", "trk1", "up"]).unwrap();
    wait_for(Duration::from_secs(10), || only_on(&two.lb1, &two.lb2)).expect("lb1 out of FAULT and preempts");
}
