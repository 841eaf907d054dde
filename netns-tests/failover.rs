//! Two lbha nodes (lb1, lb2) in front of two backends, a client probing the VIP every 10 ms.

use std::time::{Duration, Instant};

use crate::bed::{self, Bed, Node, Prober, VIP, ms, only_on, outage, wait_for};

pub const NODES: &[(&str, u8)] = &[("lb1", 11), ("lb2", 12), ("be1", 21), ("be2", 22), ("client", 50)];

/// lbha config for a load balancer node: the VIP proxied to both backends, plus one VRRP instance.
pub fn lb_config(priority: u8, version: u8, advert: &str, extra: &str) -> String {
    format!(
        r#"[[listen]]
name = "vip"
mode = "http"
bind = ["{VIP}:80"]
check = {{ inter = "200ms", rise = 1, fall = 2 }}
timeout = {{ connect = "200ms" }}
servers = [
  {{ name = "be1", addr = "192.0.2.21:80", check = true }},
  {{ name = "be2", addr = "192.0.2.22:80", check = true }},
]

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
version = {version}
advert_int = "{advert}"
virtual_ipaddress = ["{VIP}/32"]
{extra}
"#
    )
}

pub struct Pair {
    pub bed: Bed,
    pub lb1: Node,
    pub lb2: Node,
    pub client: Node,
}

impl Pair {
    /// Starts lbha on lb1 (priority 150) and lb2 (100) with the same settings; returns lb1's
    /// process and a client prober once lb1 alone holds the VIP and answers through it.
    fn lb1_serving(&mut self, version: u8, advert: &str, extra: &str) -> (usize, Prober) {
        let p1 = self.bed.lbha(&self.lb1, "lb1", &lb_config(150, version, advert, extra));
        self.bed.lbha(&self.lb2, "lb2", &lb_config(100, version, advert, extra));
        wait_for(Duration::from_secs(10), || only_on(&self.lb1, &self.lb2)).expect("lb1 master");
        let probe = Prober::start(&self.client, VIP);
        serves(&probe, Duration::from_secs(5)).expect("HTTP via lb1");
        (p1, probe)
    }
}

/// Builds the bed and starts both backends.
pub fn pair(tag: &str) -> Pair {
    let mut bed = Bed::new(tag, NODES);
    let (be1, be2) = (bed.node("be1"), bed.node("be2"));
    bed.backend(&be1, "be1");
    bed.backend(&be2, "be2");
    Pair { lb1: bed.node("lb1"), lb2: bed.node("lb2"), client: bed.node("client"), bed }
}

/// Waits until the client gets answers through the VIP again.
fn serves(p: &Prober, limit: Duration) -> Option<String> {
    let t = Instant::now();
    let mut got = None;
    wait_for(limit, || {
        got = p.ok_after(t);
        got.is_some()
    });
    got
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn election_failover_and_preemption_v2() {
    if !bed::root_or_skip("election_failover_and_preemption_v2") {
        return;
    }
    let Pair { mut bed, lb1, lb2, client } = pair("failover");
    let p1 = bed.lbha(&lb1, "lb1", &lb_config(150, 2, "1s", ""));
    bed.lbha(&lb2, "lb2", &lb_config(100, 2, "1s", ""));
    let elect = wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("lb1 becomes master");
    assert!(!lb2.has_addr(VIP), "the VIP is on the master alone");
    bed.signal(p1, "-USR1");
    wait_for(Duration::from_secs(3), || bed.log(p1).contains("vrrp status: VI_1")).expect("SIGUSR1 logs the status");
    let status = bed.log(p1);
    for want in [
        "VI_1 eth0 vrid 51 MASTER priority 150 (configured 150) vips [192.0.2.100/32 dev eth0] master 192.0.2.11",
        "last BACKUP -> MASTER",
        "became master 1",
    ] {
        assert!(status.contains(want), "{want:?} not in status:\n{status}");
    }
    println!(
        "election (v2, 1 s): lb1 (priority 150) master {} after start (3 x 1 s + skew 0.41 s expected)",
        ms(elect)
    );

    let probe = Prober::start(&client, VIP);
    let body = serves(&probe, Duration::from_secs(5)).expect("HTTP through the VIP on lb1");
    assert!(body.starts_with("be"), "{body}");
    assert_eq!(client.neigh_mac(VIP).as_deref(), Some(lb1.mac.as_str()));

    let t_kill = Instant::now();
    bed.kill9(p1);
    let moved = wait_for(Duration::from_secs(10), || lb2.has_addr(VIP)).expect("lb2 takes the VIP");
    let mac = wait_for(Duration::from_secs(5), || client.neigh_mac(VIP).as_deref() == Some(lb2.mac.as_str()))
        .map(|_| t_kill.elapsed())
        .expect("client's neighbour entry moves to lb2's MAC");
    serves(&probe, Duration::from_secs(5)).expect("HTTP through the VIP on lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    println!(
        "failover (v2, kill -9 of lb1's lbha): VIP on lb2 after {}, client neighbour entry on lb2's MAC after {}, client outage {} (keepalived baseline 3550 ms)",
        ms(moved),
        ms(mac),
        ms(outage(&samples, t_kill))
    );

    // lb1 comes back with the higher priority and preempts.
    let probe = Prober::start(&client, VIP);
    serves(&probe, Duration::from_secs(5)).expect("serving before lb1 returns");
    let t_back = Instant::now();
    bed.lbha(&lb1, "lb1-again", &lb_config(150, 2, "1s", ""));
    let pre = wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 preempts");
    wait_for(Duration::from_secs(5), || client.neigh_mac(VIP).as_deref() == Some(lb1.mac.as_str()))
        .expect("client follows lb1");
    serves(&probe, Duration::from_secs(5)).expect("HTTP through lb1 again");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    println!(
        "preemption (v2): lb1 restarted, master again and VIP moved after {}, client outage {}",
        ms(pre),
        ms(outage(&samples, t_back))
    );
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn graceful_stop_and_nopreempt_v2() {
    if !bed::root_or_skip("graceful_stop_and_nopreempt_v2") {
        return;
    }
    let mut two = pair("graceful");
    let np = "state = \"BACKUP\"\nnopreempt = true";
    let (p1, probe) = two.lb1_serving(2, "1s", np);
    let Pair { mut bed, lb1, lb2, .. } = two;

    let t_stop = Instant::now();
    bed.sigterm(p1);
    let took = wait_for(Duration::from_secs(5), || only_on(&lb2, &lb1)).expect("lb2 takes over");
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    assert!(
        took < Duration::from_millis(1500),
        "priority 0 should hand over within skew time (0.61 s), took {}",
        ms(took)
    );
    println!(
        "graceful stop (v2, SIGTERM of lb1): lb2 master and VIP moved after {} (skew 0.61 s), client outage {} (keepalived baseline 615 ms)",
        ms(took),
        ms(outage(&samples, t_stop))
    );

    bed.term(p1);
    bed.lbha(&lb1, "lb1-again", &lb_config(150, 2, "1s", np));
    std::thread::sleep(Duration::from_secs(6));
    assert!(only_on(&lb2, &lb1), "nopreempt: lb2 keeps the VIP although lb1 has a higher priority");
    println!("nopreempt (v2): lb1 (150) back for 6 s, lb2 (100) still master");
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn interface_down_means_fault_v2() {
    if !bed::root_or_skip("interface_down_means_fault_v2") {
        return;
    }
    let mut two = pair("ifdown");
    let (p1, probe) = two.lb1_serving(2, "1s", "");
    let Pair { bed, lb1, lb2, .. } = two;

    let t_down = Instant::now();
    lb1.ip(&["link", "set", "eth0", "down"]).expect("link down");
    let took = wait_for(Duration::from_secs(10), || lb2.has_addr(VIP)).expect("lb2 takes over");
    wait_for(Duration::from_secs(2), || bed.log(p1).contains("-> FAULT")).expect("lb1 enters FAULT");
    assert!(!lb1.has_addr(VIP), "a faulty master drops the VIP");
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    println!(
        "interface down on the master (v2): lb1 FAULT, lb2 master after {}, client outage {} (keepalived baseline 3591 ms)",
        ms(took),
        ms(outage(&samples, t_down))
    );

    let t_up = Instant::now();
    lb1.ip(&["link", "set", "eth0", "up"]).expect("link up");
    let back = wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 recovers and preempts");
    println!("interface up again: lb1 BACKUP then master (preempt) after {}", ms(back));
    let _ = t_up;
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn track_backend_gives_the_vip_away_v2() {
    if !bed::root_or_skip("track_backend_gives_the_vip_away_v2") {
        return;
    }
    let mut two = pair("trackbe");
    let tb = "track_backend = [{ backend = \"vip\" }]";
    let (p1, probe) = two.lb1_serving(2, "1s", tb);
    let Pair { bed, lb1, lb2, .. } = two;

    // Only lb1 loses its backends: its own routes to them are prohibited.
    let t_fail = Instant::now();
    for be in ["192.0.2.21/32", "192.0.2.22/32"] {
        lb1.ip(&["route", "add", "prohibit", be]).expect("route");
    }
    let took = wait_for(Duration::from_secs(10), || only_on(&lb2, &lb1)).expect("lb2 takes the VIP");
    assert!(bed.log(p1).contains("backend vip failed"), "lb1's fault names the backend");
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    println!(
        "track_backend (v2): lb1's backends unreachable, lb2 master after {} (check fall 2 x 200 ms + skew), client outage {}",
        ms(took),
        ms(outage(&samples, t_fail))
    );
    for be in ["192.0.2.21/32", "192.0.2.22/32"] {
        lb1.ip(&["route", "del", "prohibit", be]).expect("route");
    }
    let back = wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 takes back");
    println!("track_backend: backends back, lb1 master again after {}", ms(back));
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn v3_with_100ms_adverts() {
    if !bed::root_or_skip("v3_with_100ms_adverts") {
        return;
    }
    let Pair { mut bed, lb1, lb2, client } = pair("v3");
    let t0 = Instant::now();
    let p1 = bed.lbha(&lb1, "lb1", &lb_config(150, 3, "100ms", ""));
    bed.lbha(&lb2, "lb2", &lb_config(100, 3, "100ms", ""));
    wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 master");
    println!("election (v3, 100 ms): lb1 master {} after start (0.34 s expected + process start)", ms(t0.elapsed()));
    let probe = Prober::start(&client, VIP);
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb1");

    let t_kill = Instant::now();
    bed.kill9(p1);
    let moved = wait_for(Duration::from_secs(5), || lb2.has_addr(VIP)).expect("lb2 takes over");
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    let out = outage(&samples, t_kill);
    println!(
        "failover (v3, 100 ms, kill -9): VIP on lb2 after {}, client outage {} (target < 400 ms; keepalived baseline 308 ms)",
        ms(moved),
        ms(out)
    );

    let p1 = bed.lbha(&lb1, "lb1-again", &lb_config(150, 3, "100ms", ""));
    let pre = wait_for(Duration::from_secs(5), || only_on(&lb1, &lb2)).expect("lb1 preempts");
    println!("preemption (v3): lb1 master again {} after restart", ms(pre));
    let probe = Prober::start(&client, VIP);
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb1");
    let t_stop = Instant::now();
    bed.sigterm(p1);
    let took = wait_for(Duration::from_secs(5), || only_on(&lb2, &lb1)).expect("lb2 takes over");
    serves(&probe, Duration::from_secs(5)).expect("HTTP via lb2");
    std::thread::sleep(Duration::from_millis(300));
    let samples = probe.finish();
    println!(
        "graceful stop (v3, 100 ms): lb2 master after {} (skew 61 ms), client outage {} (keepalived baseline 111 ms)",
        ms(took),
        ms(outage(&samples, t_stop))
    );
}

/// A backup paused (SIGSTOP, a VM stall) for longer than its master-down interval wakes with the
/// master's adverts queued in its socket: it must hear them and stay backup, as keepalived does.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_paused_backup_stays_backup() {
    if !bed::root_or_skip("a_paused_backup_stays_backup") {
        return;
    }
    let mut bed = Bed::new("pause", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    let vip = format!("\"{VIP}/32\"");
    // 300 ms adverts (master-down interval 1.08 s) and 1.5 s pauses: the same race as 100 ms and
    // 0.5 s, with room for a loaded test machine to delay the master's adverts without a takeover.
    let config = |bed: &Bed, name: &str, prio: u8| {
        let state = bed::global_state_dir(&bed.dir.join(format!("{name}-state")));
        let instance = bed::v3_instance("VI_1", "eth0", 51, prio, &vip).replace("\"100ms\"", "\"300ms\"");
        format!("{state}{instance}")
    };
    let c1 = config(&bed, "lb1", 150);
    bed.lbha(&lb1, "lb1", &c1);
    let c2 = config(&bed, "lb2", 100);
    let p2 = bed.lbha(&lb2, "lb2", &c2);
    wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 master");
    wait_for(Duration::from_secs(10), || bed.log(p2).contains("-> BACKUP")).expect("lb2 backup");
    for _ in 0..3 {
        bed.signal(p2, "-STOP");
        std::thread::sleep(Duration::from_millis(1500));
        bed.signal(p2, "-CONT");
        std::thread::sleep(Duration::from_millis(1500));
    }
    let log = bed.log(p2);
    assert_eq!(log.matches("-> MASTER").count(), 0, "the paused backup took over:\n{log}");
    assert!(only_on(&lb1, &lb2));
}

/// `notify_stop` and the generic `notify ... STOP` run to their end before the process exits, even
/// when they take a while. (`notify` gets the four arguments appended: `echo >> FILE "$@"`.)
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn notify_stop_runs_before_exit() {
    if !bed::root_or_skip("notify_stop_runs_before_exit") {
        return;
    }
    let mut bed = Bed::new("notify", &[("lb1", 11)]);
    let lb1 = bed.node("lb1");
    let (stop_file, any_file) = (bed.dir.join("stopped"), bed.dir.join("notify-args"));
    let cfg = format!(
        "{}{}notify_stop = \"sleep 1; echo done > {}\"\nnotify = \"sleep 1; echo >> {}\"\n",
        bed::global_state_dir(&bed.dir.join("state")),
        bed::v3_instance("VI_1", "eth0", 51, 150, &format!("\"{VIP}/32\"")),
        stop_file.display(),
        any_file.display()
    );
    let p = bed.lbha(&lb1, "lb1", &cfg);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("lb1 master");
    bed.term(p);
    assert_eq!(std::fs::read_to_string(&stop_file).unwrap_or_default(), "done\n", "notify_stop did not finish");
    let args = std::fs::read_to_string(&any_file).unwrap_or_default();
    assert!(args.lines().any(|l| l == "INSTANCE VI_1 STOP 150"), "notify STOP did not finish: {args:?}");
}

/// `[global] user`: VRRP still works as an unprivileged user with the three kept capabilities
/// (raw sockets, VIPs through netlink, net sysctls), and a clean stop still removes the VIP.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn vrrp_runs_as_an_unprivileged_user() {
    if !bed::root_or_skip("vrrp_runs_as_an_unprivileged_user") {
        return;
    }
    let mut bed = Bed::new("runas", &[("lb1", 11)]);
    let lb1 = bed.node("lb1");
    let state = bed.dir.join("state");
    // The notify script writes its capabilities where `nobody` may write.
    let caps_dir = bed.dir.join("caps");
    std::fs::create_dir_all(&caps_dir).expect("dir");
    std::fs::set_permissions(&caps_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let caps = caps_dir.join("notify-caps");
    let cfg = format!(
        "[global]\nuser = \"nobody\"\nstate_dir = \"{}\"\n\n{}notify_master = \"grep -E '^Cap(Amb|Eff|Prm)' /proc/self/status > {}\"\n",
        state.display(),
        bed::v3_instance("VI_1", "eth0", 51, 150, &format!("\"{VIP}/32\"")),
        caps.display()
    );
    let p = bed.lbha(&lb1, "lb1", &cfg);
    wait_for(Duration::from_secs(10), || lb1.has_addr(VIP)).expect("master as nobody");
    // Scripts run without the daemon's ambient capabilities (CAP_NET_ADMIN could change routes).
    wait_for(Duration::from_secs(5), || std::fs::read_to_string(&caps).is_ok_and(|s| s.lines().count() == 3))
        .expect("notify_master ran");
    let got = std::fs::read_to_string(&caps).unwrap_or_default();
    for l in got.lines() {
        assert!(l.ends_with("0000000000000000"), "a notify script has capabilities: {got}");
    }
    assert!(bed.log(p).contains("running as uid 65534"), "{}", bed.log(p));
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&state).expect("state_dir created"));
    assert_eq!(owner, 65534, "state_dir belongs to the user");
    bed.term(p);
    assert!(!lb1.has_addr(VIP), "the VIP is removed at stop");
}
