//! Multi-step scenarios: GARP scheduling, preemption and priority changes over time, and two
//! instances electing, failing over and preempting on a simulated zero-latency LAN.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::tests::{S, advert, instance, ip, master, started, us, v2};
use super::*;

// ---- GARP scheduling ---------------------------------------------------------------------------

/// Same knobs as the reference captures (`vrrp_garp_master_repeat 2`, `vrrp_garp_master_delay 2`),
/// plus a 10 s refresh: bursts at 0 and 2 s, refreshes at 12 s and 22 s, adverts every second.
#[test]
fn garp_bursts_delay_and_refresh() {
    let mut cfg = v2(PRIORITY_OWNER);
    cfg.garp = GarpConfig {
        master_repeat: 2,
        master_delay: 2 * S,
        master_refresh: Some(10 * S),
        master_refresh_repeat: 1,
        ..GarpConfig::default()
    };
    let t0 = Instant::now();
    let mut i = instance(cfg);
    let mut garps = Vec::new();
    let mut adverts = 0;
    let mut record = |at: Instant, out: Vec<Action>| {
        for a in out {
            match a {
                Action::SendGarp { count } => garps.push((at - t0, count)),
                Action::SendAdvert { .. } => adverts += 1,
                _ => {}
            }
        }
    };
    record(t0, i.step(t0, Event::Startup));
    while let Some(at) = i.next_deadline().filter(|at| *at <= t0 + 25 * S) {
        record(at, i.step(at, Event::Timer));
    }
    assert_eq!(garps, vec![(Duration::ZERO, 2), (2 * S, 2), (12 * S, 1), (22 * S, 1)]);
    assert_eq!(adverts, 26);
}

#[test]
fn garp_repeat_zero_sends_nothing() {
    let mut cfg = v2(PRIORITY_OWNER);
    cfg.garp.master_repeat = 0;
    let (i, t0) = started(cfg);
    assert_eq!(i.next_deadline(), Some(t0 + S));
    let mut j = instance(i.config().clone());
    let out = j.step(t0, Event::Startup);
    assert!(!out.iter().any(|a| matches!(a, Action::SendGarp { .. })));
}

#[test]
fn leaving_master_cancels_pending_garps() {
    let (mut i, tm) = master(v2(100));
    i.step(tm, advert(ip(9), 200, S));
    // Only the master-down timer is left; no GARP fires later as a backup.
    assert_eq!(i.next_deadline(), Some(tm + us(3_609_375)));
}

// ---- Preemption and priority changes ----------------------------------------------------------

/// Backup priority 150 with `preempt_delay 5`, a priority-100 master advertising every second from
/// t0: adverts are followed until the delay runs out at t0 + 5 s, then discarded, so the last accepted
/// advert (t0 + 4 s) plus Master_Down_Interval is the takeover time.
#[test]
fn preempt_delay_postpones_takeover_from_a_lower_master() {
    let mut cfg = v2(150);
    cfg.preempt_delay = 5 * S;
    let (mut i, t0) = started(cfg);
    let down = us(3_414_062); // 3 s + 106/256 s
    let mut n = 0u32;
    loop {
        let t = t0 + n * S;
        if i.next_deadline().is_some_and(|d| d <= t) {
            break;
        }
        i.step(t, advert(ip(9), 100, S));
        n += 1;
    }
    let at = i.next_deadline().expect("armed");
    assert_eq!(at, t0 + 4 * S + down);
    i.step(at, Event::Timer);
    assert_eq!(i.state(), State::Master);

    // A higher-priority advert cancels a running delay; the next lower one starts a fresh one.
    let mut cfg = v2(150);
    cfg.preempt_delay = 5 * S;
    let (mut i, t0) = started(cfg);
    i.step(t0, advert(ip(9), 100, S));
    i.step(t0 + 3 * S, advert(ip(9), 200, S));
    i.step(t0 + 6 * S, advert(ip(9), 100, S));
    let out = i.step(t0 + 9 * S, advert(ip(9), 100, S));
    assert_eq!(out, vec![Action::ArmTimer(t0 + 9 * S + down)], "still held");
    assert!(i.step(t0 + 11 * S, advert(ip(9), 100, S)).is_empty());
}

#[test]
fn nopreempt_clears_preempt_delay() {
    let mut cfg = v2(100);
    cfg.preempt = false;
    cfg.preempt_delay = 3 * S;
    assert_eq!(instance(cfg).config().preempt_delay, Duration::ZERO);
}

#[test]
fn priority_change_moves_the_backup_deadline_by_the_skew_change() {
    let (mut i, t0) = started(v2(100));
    // Skew 156/256 s -> 56/256 s: 390625 us earlier.
    let out = i.step(t0 + S, Event::PriorityChanged(200));
    assert_eq!(out, vec![Action::ArmTimer(t0 + us(3_218_750))]);
    assert_eq!(i.effective_priority(), 200);
    assert!(i.step(t0 + S, Event::PriorityChanged(200)).is_empty());
    let out = i.step(t0 + S, Event::PriorityChanged(100));
    assert_eq!(out, vec![Action::ArmTimer(t0 + us(3_609_375))]);
    // Tracking never yields 0 or 255.
    i.step(t0, Event::PriorityChanged(0));
    assert_eq!(i.effective_priority(), 1);
    i.step(t0, Event::PriorityChanged(255));
    assert_eq!(i.effective_priority(), 254);
}

#[test]
fn owner_priority_is_never_changed() {
    let (mut i, t0) = started(v2(PRIORITY_OWNER));
    assert!(i.step(t0, Event::PriorityChanged(50)).is_empty());
    assert_eq!(i.effective_priority(), 255);
}

#[test]
fn master_advertises_the_new_priority_on_its_next_advert() {
    let (mut i, tm) = master(v2(100));
    assert!(i.step(tm, Event::PriorityChanged(80)).is_empty());
    assert_eq!(i.step(tm + S, Event::Timer)[0], Action::SendAdvert { priority: 80 });
    // A backup at 90 now discards our adverts and takes over; its advert makes us yield.
    i.step(tm + S, advert(ip(1), 90, S));
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn lowered_backup_follows_the_master_again() {
    let (mut i, t0) = started(v2(150));
    i.step(t0, Event::PriorityChanged(50));
    let out = i.step(t0 + S, advert(ip(9), 100, S));
    assert_eq!(out, vec![Action::ArmTimer(t0 + S + 3 * S + us(804_687))]);
}

// ---- Two routers on one simulated LAN ---------------------------------------------------------

struct Node {
    fsm: Instance,
    addr: IpAddr,
    timer: Option<Instant>,
    became_master: Vec<Instant>,
}

/// Delivers `event` to node `idx` at `now`, and every advert it sends to the other nodes at the same
/// instant (zero-latency LAN), recursively.
fn deliver(nodes: &mut [Node], idx: usize, now: Instant, event: Event) {
    let mut queue = vec![(idx, event)];
    while let Some((n, ev)) = queue.pop() {
        let interval = nodes[n].fsm.config().advert_interval;
        for action in nodes[n].fsm.step(now, ev) {
            match action {
                Action::ArmTimer(at) => nodes[n].timer = Some(at),
                Action::CancelTimer => nodes[n].timer = None,
                Action::Notify(State::Master) => nodes[n].became_master.push(now),
                Action::SendAdvert { priority } => {
                    let src = nodes[n].addr;
                    for other in (0..nodes.len()).filter(|o| *o != n) {
                        queue.push((other, advert(src, priority, interval)));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Runs timers until `until`.
fn run(nodes: &mut [Node], until: Instant) {
    loop {
        let next = nodes.iter().enumerate().filter_map(|(i, n)| n.timer.map(|t| (t, i))).min();
        match next {
            Some((at, i)) if at <= until => {
                nodes[i].timer = None;
                deliver(nodes, i, at, Event::Timer);
            }
            _ => return,
        }
    }
}

#[test]
fn two_routers_elect_fail_over_gracefully_and_preempt() {
    let t0 = Instant::now();
    let node = |prio: u8, last: u8| Node {
        fsm: instance(FsmConfig::new(Version::V2, prio, S, ip(last))),
        addr: ip(last),
        timer: None,
        became_master: Vec::new(),
    };
    let mut nodes = vec![node(150, 1), node(100, 2)];
    deliver(&mut nodes, 0, t0, Event::Startup);
    deliver(&mut nodes, 1, t0, Event::Startup);

    // Election: priority 150 times out first (3 s + 106/256 s) and the other follows it.
    run(&mut nodes, t0 + 10 * S);
    assert_eq!(nodes[0].fsm.state(), State::Master);
    assert_eq!(nodes[1].fsm.state(), State::Backup);
    assert_eq!(nodes[0].became_master, vec![t0 + us(3_414_062)]);
    assert!(nodes[1].became_master.is_empty());

    // Graceful stop: priority 0, the backup takes over after its skew time (156/256 s).
    let stop = t0 + Duration::from_millis(10_500);
    deliver(&mut nodes, 0, stop, Event::Shutdown);
    run(&mut nodes, t0 + 20 * S);
    assert_eq!(nodes[1].became_master, vec![stop + us(609_375)]);
    assert_eq!(nodes[0].fsm.state(), State::Initialize);

    // The higher priority comes back: it discards the lower adverts and preempts after its own
    // master-down interval; the old master yields on the first advert.
    let back = t0 + 20 * S;
    deliver(&mut nodes, 0, back, Event::Startup);
    run(&mut nodes, t0 + 30 * S);
    assert_eq!(nodes[0].became_master[1], back + us(3_414_062));
    assert_eq!(nodes[0].fsm.state(), State::Master);
    assert_eq!(nodes[1].fsm.state(), State::Backup);
    assert_eq!(
        nodes[1].fsm.last_transition().map(|t| t.reason.clone()),
        Some(Reason::PreferredMaster { src: ip(1), priority: 150 })
    );
}

#[test]
fn nopreempt_keeps_the_current_master() {
    let t0 = Instant::now();
    let mut cfg = FsmConfig::new(Version::V2, 150, S, ip(1));
    cfg.preempt = false;
    let mut nodes = vec![
        Node { fsm: instance(cfg), addr: ip(1), timer: None, became_master: Vec::new() },
        Node {
            fsm: instance(FsmConfig::new(Version::V2, 100, S, ip(2))),
            addr: ip(2),
            timer: None,
            became_master: Vec::new(),
        },
    ];
    // The lower priority is alone first and becomes master.
    deliver(&mut nodes, 1, t0, Event::Startup);
    run(&mut nodes, t0 + 5 * S);
    assert_eq!(nodes[1].fsm.state(), State::Master);
    deliver(&mut nodes, 0, t0 + 5 * S, Event::Startup);
    run(&mut nodes, t0 + 60 * S);
    assert_eq!(nodes[0].fsm.state(), State::Backup);
    assert_eq!(nodes[1].fsm.state(), State::Master);
    assert!(nodes[0].became_master.is_empty());
}
