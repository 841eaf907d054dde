//! Failover benchmark (ignored by default; `bench/failover.sh` runs it): client-observed outage for
//! an lbha pair and for a keepalived + HAProxy pair on the same test bed, median of `RUNS` runs.

use std::time::{Duration, Instant};

use crate::bed::{self, Bed, Node, Prober, VIP, ms, outage, wait_for};
use crate::failover::{NODES, lb_config};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stack {
    Lbha,
    KeepalivedHaproxy,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Event {
    /// kill -9 of every process on the master node (daemon and proxy).
    Kill,
    /// SIGTERM of the VRRP daemon (priority-0 advert).
    Graceful,
}

fn haproxy_cfg() -> String {
    format!(
        "global\n    maxconn 1000\ndefaults\n    mode http\n    timeout connect 200ms\n    \
         timeout client 5s\n    timeout server 5s\nlisten vip\n    bind {VIP}:80\n    \
         server be1 192.0.2.21:80 check inter 200ms fall 2 rise 1\n    \
         server be2 192.0.2.22:80 check inter 200ms fall 2 rise 1\n"
    )
}

fn keepalived_cfg(priority: u8, version: u8, advert: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {priority}\n    advert_int {advert}\n    version {version}\n    \
         virtual_ipaddress {{\n        {VIP}/32\n    }}\n}}\n"
    )
}

/// Starts one node of `stack`; returns the process index of its VRRP daemon.
fn start(bed: &mut Bed, node: &Node, name: &str, stack: Stack, prio: u8, v: u8) -> usize {
    let (lbha_int, ka_int) = if v == 3 { ("100ms", "0.1") } else { ("1s", "1") };
    match stack {
        Stack::Lbha => bed.lbha(node, name, &lb_config(prio, v, lbha_int, "")),
        Stack::KeepalivedHaproxy => {
            // HAProxy binds the VIP on the backup too (what lbha does with IP_FREEBIND).
            bed::run(&["ip", "netns", "exec", &node.ns, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"])
                .expect("sysctl in the test namespace");
            let d = bed.dir.display().to_string();
            let hc = format!("{d}/{name}-haproxy.cfg");
            std::fs::write(&hc, haproxy_cfg()).expect("haproxy cfg");
            bed.spawn(node, &format!("{name}-haproxy.log"), &["haproxy", "-db", "-f", &hc]);
            let kc = format!("{d}/{name}.conf");
            std::fs::write(&kc, keepalived_cfg(prio, v, ka_int)).expect("keepalived cfg");
            let (p, r, c) = (format!("{d}/{name}.pid"), format!("{d}/{name}_v.pid"), format!("{d}/{name}_c.pid"));
            bed.spawn(
                node,
                &format!("{name}.log"),
                &["/usr/sbin/keepalived", "-n", "-l", "-P", "-R", "-f", &kc, "-p", &p, "-r", &r, "-c", &c],
            )
        }
    }
}

/// One run: build, elect lb1, trigger `event` on lb1, return the client-observed outage.
fn one(stack: Stack, v: u8, event: Event) -> Option<Duration> {
    let mut bed = Bed::new("bench", NODES);
    let (be1, be2) = (bed.node("be1"), bed.node("be2"));
    bed.backend(&be1, "be1");
    bed.backend(&be2, "be2");
    let (lb1, lb2, client) = (bed.node("lb1"), bed.node("lb2"), bed.node("client"));
    let d1 = start(&mut bed, &lb1, "lb1", stack, 150, v);
    start(&mut bed, &lb2, "lb2", stack, 100, v);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP) && !lb2.has_addr(VIP))?;
    let probe = Prober::start(&client, VIP);
    let t = Instant::now();
    wait_for(Duration::from_secs(5), || probe.ok_after(t).is_some())?;
    std::thread::sleep(Duration::from_millis(500));
    let t_event = Instant::now();
    match event {
        Event::Kill => {
            // The node's services vanish at once.
            bed::kill_node(&lb1);
        }
        Event::Graceful => bed.sigterm(d1),
    }
    wait_for(Duration::from_secs(10), || lb2.has_addr(VIP))?;
    let t = Instant::now();
    wait_for(Duration::from_secs(5), || probe.ok_after(t).is_some())?;
    std::thread::sleep(Duration::from_millis(300));
    Some(outage(&probe.finish(), t_event))
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

#[test]
#[ignore = "benchmark: run bench/failover.sh"]
fn bench_failover() {
    if !bed::root_or_skip("bench_failover") {
        return;
    }
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    println!("| event on the master | stack | VRRP | median outage | runs (ms) |");
    println!("|---|---|---|---:|---|");
    // `ONLY=v3-graceful` (say) runs the rows whose VRRP version and event match.
    let only = std::env::var("ONLY").unwrap_or_default();
    for (v, label) in [(2u8, "v2, advert 1 s"), (3, "v3, advert 100 ms")] {
        for event in [Event::Kill, Event::Graceful] {
            let row = format!("v{v}-{}", if event == Event::Kill { "kill" } else { "graceful" });
            if !only.is_empty() && !only.split(',').any(|o| o == row) {
                continue;
            }
            for stack in [Stack::Lbha, Stack::KeepalivedHaproxy] {
                let all: Vec<Duration> = (0..runs).filter_map(|_| one(stack, v, event)).collect();
                let list: Vec<String> = all.iter().map(|d| d.as_millis().to_string()).collect();
                let med = median(all.clone()).map_or("failed".to_string(), ms);
                let ev = match event {
                    Event::Kill => "daemon and proxy killed (kill -9)",
                    Event::Graceful => "graceful stop (SIGTERM, priority 0)",
                };
                let st = match stack {
                    Stack::Lbha => "lbha",
                    Stack::KeepalivedHaproxy => "keepalived 2.2.7 + HAProxy 2.6",
                };
                println!("| {ev} | {st} | {label} | {med} | {} |", list.join(", "));
                assert_eq!(all.len(), runs, "{st} {label} {ev}: some runs failed");
            }
        }
    }
}
