//! `lbha upgrade` of the VRRP master: the new process continues as master. A capture on the
//! backup's side proves no priority-0 advert went out; the backup never becomes master and the VIP
//! never leaves the master, while a client keeps using it.

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bed::{self, Node, Prober, VIP, enter_ns, ms, wait_for};
use crate::failover::{lb_config, pair};

/// Adverts seen on a node: when, from whom, with which priority.
type Adverts = Arc<Mutex<Vec<(Instant, Ipv4Addr, u8)>>>;

/// Captures VRRP adverts (IP protocol 112) arriving at `node`, until `stop` or two minutes.
fn capture(node: &Node, stop: Arc<AtomicBool>) -> (Adverts, std::thread::JoinHandle<Result<(), String>>) {
    let seen: Adverts = Arc::default();
    let (out, ns, local) = (seen.clone(), node.ns.clone(), node.ip.clone());
    let h = std::thread::spawn(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        enter_ns(&ns)?;
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).map_err(|e| e.to_string())?;
        let local: Ipv4Addr = local.parse().map_err(|e| format!("{local}: {e}"))?;
        s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 18), &local).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
        // A raw socket reads whole IP packets with read(2).
        let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(s));
        let t0 = Instant::now();
        let mut pkt = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
            let Ok(n) = f.read(&mut pkt) else { continue };
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            if ihl < 20 || n < ihl + 3 {
                continue;
            }
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            out.lock().unwrap_or_else(|e| e.into_inner()).push((Instant::now(), src, pkt[ihl + 2]));
        }
        Ok(())
    });
    (seen, h)
}

/// Moments the VIP was missing from `holder` or present on `other`, polled every 20 ms.
fn watch_vip(holder: Node, other: Node, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut polls, mut bad) = (0, Vec::new());
        let t0 = Instant::now();
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
            polls += 1;
            if !holder.has_addr(VIP) {
                bad.push(format!("{} ms: VIP missing on the master", t0.elapsed().as_millis()));
            }
            if other.has_addr(VIP) {
                bad.push(format!("{} ms: VIP on the backup", t0.elapsed().as_millis()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (polls, bad)
    })
}

fn became_master(log: &str) -> usize {
    log.lines().filter(|l| l.contains("-> MASTER")).count()
}

fn lbha(sock: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbha")).arg("-S").arg(sock).args(args).output();
    match out {
        Ok(o) => (
            o.status.success(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        ),
        Err(e) => (false, e.to_string()),
    }
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn upgrading_the_master_keeps_its_role_v3() {
    if !bed::root_or_skip("upgrading_the_master_keeps_its_role_v3") {
        return;
    }
    let p = pair("upgrade");
    let (mut bed, lb1, lb2, client) = (p.bed, p.lb1, p.lb2, p.client);
    let p1 = bed.lbha(&lb1, "lb1", &lb_config(150, 3, "100ms", ""));
    let p2 = bed.lbha(&lb2, "lb2", &lb_config(100, 3, "100ms", ""));
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && !lb2.has_addr(VIP)).expect("lb1 master");
    // Settled: lb2 hears lb1 and stays backup.
    std::thread::sleep(Duration::from_millis(500));
    let lb2_before = became_master(&bed.log(p2));
    let probe = Prober::start(&client, VIP);
    let t_serving = Instant::now();
    wait_for(Duration::from_secs(5), || probe.ok_after(t_serving).is_some()).expect("HTTP through the VIP");

    let stop = Arc::new(AtomicBool::new(false));
    let (adverts, cap) = capture(&lb2, stop.clone());
    let vip_watch = watch_vip(lb1.clone(), lb2.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let sock = bed.dir.join("lb1.sock");
    let t_up = Instant::now();
    let (ok, out) = lbha(&sock, &["upgrade"]);
    let took = t_up.elapsed();
    assert!(ok, "upgrade failed: {out}");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let samples = probe.finish();
    let (polls, vip_bad) = vip_watch.join().expect("watcher");
    match cap.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("capture: {e}"),
        Err(_) => panic!("capture thread panicked"),
    }
    let adverts = adverts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let from_lb1: Vec<(Instant, u8)> =
        adverts.iter().filter(|(_, src, _)| src.to_string() == lb1.ip).map(|(t, _, p)| (*t, *p)).collect();

    assert!(from_lb1.len() > 20, "the capture saw lb1's adverts ({} of {})", from_lb1.len(), adverts.len());
    assert!(
        from_lb1.iter().all(|(_, p)| *p == 150),
        "every advert from lb1 has priority 150 (a priority-0 advert would hand the VIP away): {:?}",
        from_lb1.iter().map(|(_, p)| p).collect::<Vec<_>>()
    );
    assert!(from_lb1.iter().any(|(t, _)| *t > t_up + took), "adverts continue after the upgrade");
    assert!(vip_bad.is_empty(), "VIP moved during the upgrade: {vip_bad:?}");
    assert_eq!(became_master(&bed.log(p2)), lb2_before, "lb2 never became master:\n{}", bed.log(p2));
    let (_, status) = lbha(&sock, &["status"]);
    assert!(status.contains("MASTER"), "the new process runs VI_1 as master:\n{status}");
    let log1 = bed.log(p1);
    assert!(log1.contains("vrrp instance handed over as MASTER (no priority-0 advert)"), "{log1}");
    assert!(log1.contains("vrrp instance continues as MASTER"), "{log1}");

    let gap = from_lb1.windows(2).map(|w| w[1].0.duration_since(w[0].0)).max().unwrap_or_default();
    let failed = samples.iter().filter(|(at, r)| *at >= t_up && r.is_none()).count();
    let total = samples.iter().filter(|(at, _)| *at >= t_up).count();
    println!(
        "upgrade of the master (v3, 100 ms adverts): lbha upgrade took {}; longest gap between lb1's adverts {} (backup's master-down interval 361 ms); {} adverts from lb1, none with priority 0; VIP checked {polls} times, never moved; client probes after the upgrade: {failed} of {total} failed",
        ms(took),
        ms(gap),
        from_lb1.len()
    );

    // The backup's turn: it continues as backup (no election, no transition logged).
    let stop = Arc::new(AtomicBool::new(false));
    let vip_watch = watch_vip(lb1.clone(), lb2.clone(), stop.clone());
    let (ok, out) = lbha(&bed.dir.join("lb2.sock"), &["upgrade"]);
    assert!(ok, "upgrade of the backup failed: {out}");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (_, vip_bad) = vip_watch.join().expect("watcher");
    assert!(vip_bad.is_empty(), "VIP moved during the backup's upgrade: {vip_bad:?}");
    let log2 = bed.log(p2);
    assert_eq!(became_master(&log2), lb2_before, "{log2}");
    assert!(log2.contains("vrrp instance continues as BACKUP"), "{log2}");
    println!("upgrade of the backup: stayed backup, VIP stayed on lb1");
}

/// A VRRP-only node with its own state directory, `VI_1` on eth0 and `VI_9` on eth9, which does
/// not exist.
fn two_instances(priority: u8, state_dir: &std::path::Path) -> String {
    format!(
        "{}{}\n{}",
        bed::global_state_dir(state_dir),
        bed::v3_instance("VI_1", "eth0", 51, priority, &format!("\"{VIP}/32\"")),
        bed::v3_instance("VI_9", "eth9", 59, priority, "\"203.0.113.9/32\""),
    )
}

/// `lbha upgrade` of a master holding a runtime VIP, next to an instance whose interface is
/// missing: an `ip monitor` in the node proves neither VIP is removed even for a moment, and the
/// instance without an interface goes on waiting in FAULT instead of failing the new process.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn upgrade_keeps_runtime_vips_and_instances_on_missing_interfaces() {
    if !bed::root_or_skip("upgrade_keeps_runtime_vips_and_instances_on_missing_interfaces") {
        return;
    }
    let mut bed = crate::bed::Bed::new("upgrt", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    let (st1, st2) = (bed.dir.join("state-lb1"), bed.dir.join("state-lb2"));
    let p1 = bed.lbha(&lb1, "lb1", &two_instances(150, &st1));
    bed.lbha(&lb2, "lb2", &two_instances(100, &st2));
    let sock = bed.dir.join("lb1.sock");
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && !lb2.has_addr(VIP)).expect("lb1 master");
    assert!(bed.log(p1).contains("no interface named eth9 in this network namespace: FAULT until that changes"));

    let (ok, out) = lbha(&sock, &["vip", "add", "192.0.2.150/32", "dev", "eth0"]);
    assert!(ok && lb1.has_addr("192.0.2.150"), "runtime VIP on the master: {out}");
    let (ok, out) = lbha(&sock, &["vip", "add", "203.0.113.10/32", "dev", "eth9", "--instance", "VI_9"]);
    assert!(!ok && out.contains("no interface named \"eth9\""), "refused on the missing interface: {out}");

    // Address events of lb1, from before the upgrade: a marker on lo shows the monitor is listening.
    let mon = bed.spawn(&lb1, "lb1-monitor.log", &["ip", "monitor", "address"]);
    wait_for(Duration::from_secs(5), || {
        let _ = lb1.ip(&["addr", "add", "198.51.100.254/32", "dev", "lo"]);
        let _ = lb1.ip(&["addr", "del", "198.51.100.254/32", "dev", "lo"]);
        bed.log(mon).contains("198.51.100.254")
    })
    .expect("ip monitor listening");
    let t_up = Instant::now();
    let (ok, out) = lbha(&sock, &["upgrade"]);
    let took = t_up.elapsed();
    assert!(ok, "upgrade failed: {out}");
    wait_for(Duration::from_secs(5), || bed.log(p1).contains("vrrp instance continues as FAULT")).expect("VI_9");
    std::thread::sleep(Duration::from_secs(1));

    let log1 = bed.log(p1);
    assert!(log1.contains("vrrp instance continues as MASTER"), "{log1}");
    let events = bed.log(mon);
    let removed: Vec<&str> =
        events.lines().filter(|l| l.starts_with("Deleted") && !l.contains("198.51.100.254")).collect();
    assert!(removed.is_empty(), "addresses removed during the upgrade: {removed:?}");
    assert!(lb1.has_addr(VIP) && lb1.has_addr("192.0.2.150") && !lb2.has_addr(VIP), "both VIPs stayed on lb1");
    let (_, list) = lbha(&sock, &["vip", "list"]);
    assert!(list.contains("192.0.2.150"), "the new process lists the runtime VIP:\n{list}");
    let (_, status) = lbha(&sock, &["status"]);
    assert!(status.contains("FAULT"), "VI_9 in FAULT in the new process:\n{status}");
    println!(
        "upgrade with a runtime VIP and an instance on a missing interface: lbha upgrade took {}; no address removed (ip monitor); VI_9 continues in FAULT",
        ms(took)
    );
}
