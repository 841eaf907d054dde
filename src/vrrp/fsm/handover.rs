//! `Event::TakeOver`: a new process continues the role of the one it replaces (binary upgrade)
//! without a priority-0 advert, without touching the VIPs and without notify scripts.

use std::time::{Duration, Instant};

use super::tests::{S, advert, instance, ip, synced, us, v2, v3};
use super::*;

fn taken_over(cfg: FsmConfig, state: State) -> (Instance, Instant, Vec<Action>) {
    let t0 = Instant::now();
    let mut i = instance(cfg);
    let out = i.step(t0, Event::TakeOver(state));
    (i, t0, out)
}

#[test]
fn master_advertises_at_once_and_keeps_its_vips_quietly() {
    let (i, t0, out) = taken_over(v2(150), State::Master);
    assert_eq!(out, vec![Action::SendAdvert { priority: 150 }, Action::AddVips, Action::ArmTimer(t0 + S)]);
    assert_eq!(i.state(), State::Master);
    let t = i.last_transition().expect("recorded");
    assert_eq!((t.from, t.to, t.reason.clone()), (State::Initialize, State::Master, Reason::Handover));
}

#[test]
fn taken_over_master_goes_on_as_a_master() {
    let (mut i, t0, _) = taken_over(v2(150), State::Master);
    assert_eq!(i.step(t0 + S, Event::Timer), vec![Action::SendAdvert { priority: 150 }, Action::ArmTimer(t0 + 2 * S)]);
    // A better router still takes over as usual.
    let out = i.step(t0 + S + S / 2, advert(ip(9), 200, S));
    assert!(out.contains(&Action::DelVips), "{out:?}");
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn master_refresh_garps_are_rearmed_but_no_burst_is_sent() {
    let mut cfg = v3(150, Duration::from_millis(100));
    cfg.garp.master_refresh = Some(Duration::from_secs(60));
    let (mut i, t0, out) = taken_over(cfg, State::Master);
    assert!(!out.iter().any(|a| matches!(a, Action::SendGarp { .. })), "{out:?}");
    let mut garps = 0;
    let mut now = t0;
    while now < t0 + Duration::from_secs(61) {
        now = i.next_deadline().expect("armed");
        garps += i.step(now, Event::Timer).iter().filter(|a| matches!(a, Action::SendGarp { .. })).count();
    }
    assert_eq!(garps, 1, "one refresh burst after 60 s");
}

#[test]
fn backup_waits_the_full_down_interval_quietly() {
    let (mut i, t0, out) = taken_over(v2(100), State::Backup);
    // v2, priority 100: 3 * 1 s + (256 - 100) / 256 s.
    assert_eq!(out, vec![Action::ArmTimer(t0 + us(3_609_375))]);
    assert_eq!(i.state(), State::Backup);
    // Nobody advertises: it becomes master as any backup would, with notify.
    let out = i.step(t0 + us(3_609_375), Event::Timer);
    assert!(out.contains(&Action::Notify(State::Master)), "{out:?}");
}

#[test]
fn a_fault_seen_before_the_start_makes_a_master_resign() {
    let t0 = Instant::now();
    let mut i = instance(v2(150));
    assert!(i.step(t0, Event::Fault(FaultReason::InterfaceDown)).is_empty());
    let out = i.step(t0, Event::TakeOver(State::Master));
    assert_eq!(out, vec![Action::DelVips, Action::SendAdvert { priority: 0 }, Action::Notify(State::Fault)]);
    assert_eq!(i.state(), State::Fault);
    let mut b = instance(v2(100));
    b.step(t0, Event::Fault(FaultReason::InterfaceDown));
    assert_eq!(b.step(t0, Event::TakeOver(State::Backup)), vec![Action::Notify(State::Fault)]);
}

#[test]
fn other_states_start_as_usual_and_a_running_instance_ignores_it() {
    let (i, _, out) = taken_over(v2(100), State::Fault);
    assert_eq!(i.state(), State::Backup);
    assert!(out.contains(&Action::Notify(State::Backup)));
    let (mut i, t0, _) = taken_over(v2(100), State::Initialize);
    assert_eq!(i.last_transition().map(|t| t.reason.clone()), Some(Reason::Startup));
    assert!(i.step(t0, Event::TakeOver(State::Master)).is_empty());
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn state_names_read_back() {
    for s in [State::Initialize, State::Backup, State::Master, State::Fault] {
        assert_eq!(State::from_keepalived_name(s.keepalived_name()), Some(s));
    }
    assert_eq!(State::from_keepalived_name("master"), None);
}

/// A backup hears the old master up to its quiet stop, then the new process 300 ms later: it never
/// comes close to its down timer and stays backup.
#[test]
fn a_backup_does_not_notice_the_handover() {
    let t0 = Instant::now();
    let mut backup = instance(v2(100));
    backup.step(t0, Event::Startup);
    let old = ip(11);
    let mut now = t0;
    for _ in 0..3 {
        now += S;
        backup.step(now, advert(old, 150, S));
    }
    // Old process stops quietly after its last advert; the new one starts 300 ms later.
    let (mut new, _, out) = {
        let mut n = instance(FsmConfig::new(Version::V2, 150, S, old));
        let start = now + Duration::from_millis(300);
        let out = n.step(start, Event::TakeOver(State::Master));
        (n, start, out)
    };
    assert_eq!(out.first(), Some(&Action::SendAdvert { priority: 150 }));
    let mut at = now + Duration::from_millis(300);
    for _ in 0..10 {
        assert!(backup.next_deadline().is_some_and(|d| d > at), "backup would time out before {at:?}");
        backup.step(at, advert(old, 150, S));
        at = new.next_deadline().expect("new master armed");
        new.step(at, Event::Timer);
    }
    assert_eq!(backup.state(), State::Backup);
    assert_eq!(backup.last_transition().map(|t| t.to), Some(State::Backup));
}

/// Sync group members: a master taken over is master at once (the group was master before the
/// upgrade), a backup taken over still waits for the group when its down timer fires.
#[test]
fn sync_members_keep_their_role_and_the_group_gate() {
    let (m, _, out) = taken_over(synced(v2(150)), State::Master);
    assert_eq!(m.state(), State::Master);
    assert!(out.contains(&Action::SendAdvert { priority: 150 }), "{out:?}");
    assert!(!m.wants_master());
    let (mut b, t0, _) = taken_over(synced(v2(100)), State::Backup);
    let out = b.step(t0 + us(3_609_375), Event::Timer);
    assert!(!out.iter().any(|a| matches!(a, Action::AddVips | Action::Notify(_))), "{out:?}");
    assert_eq!((b.state(), b.wants_master()), (State::Backup, true));
    let out = b.step(t0 + us(3_700_000), Event::SyncMaster);
    assert!(out.contains(&Action::Notify(State::Master)), "{out:?}");
}
