//! Transition tests for every row of RFC 5798 §6.4 (and the keepalived FAULT / GARP additions), with
//! a fake clock: one `Instant::now()` base plus exact offsets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;

pub(super) const S: Duration = Duration::from_secs(1);

pub(super) fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

pub(super) fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

/// Local primary address 192.0.2.5, so tie-breaks can go either way.
pub(super) fn v2(priority: u8) -> FsmConfig {
    FsmConfig::new(Version::V2, priority, S, ip(5))
}

pub(super) fn v3(priority: u8, interval: Duration) -> FsmConfig {
    FsmConfig::new(Version::V3, priority, interval, ip(5))
}

pub(super) fn instance(cfg: FsmConfig) -> Instance {
    match Instance::new(cfg) {
        Ok(i) => i,
        Err(e) => panic!("config rejected: {e}"),
    }
}

pub(super) fn advert(src: IpAddr, priority: u8, interval: Duration) -> Event {
    Event::AdvertReceived { src, priority, max_advert_int: interval }
}

/// Starts an instance at a fresh base time; returns it and the base.
pub(super) fn started(cfg: FsmConfig) -> (Instance, Instant) {
    let t0 = Instant::now();
    let mut i = instance(cfg);
    i.step(t0, Event::Startup);
    (i, t0)
}

/// Starts as backup and lets the master-down timer fire; returns the time it became master.
pub(super) fn master(cfg: FsmConfig) -> (Instance, Instant) {
    let (mut i, _) = started(cfg);
    let at = i.next_deadline().expect("backup arms its timer");
    i.step(at, Event::Timer);
    assert_eq!(i.state(), State::Master);
    (i, at)
}

pub(super) fn transition(i: &Instance) -> (State, State, Reason) {
    let t = i.last_transition().expect("a transition happened");
    (t.from, t.to, t.reason.clone())
}

// ---- Initialize -------------------------------------------------------------------------------

#[test]
fn startup_below_255_enters_backup_with_master_down_timer() {
    let t0 = Instant::now();
    let mut i = instance(v2(100));
    assert_eq!(i.state(), State::Initialize);
    let out = i.step(t0, Event::Startup);
    // v2, priority 100: 3 * 1 s + (256 - 100) / 256 s.
    assert_eq!(out, vec![Action::Notify(State::Backup), Action::ArmTimer(t0 + us(3_609_375))]);
    assert_eq!(transition(&i), (State::Initialize, State::Backup, Reason::Startup));
    assert_eq!(i.last_transition().map(|t| t.at), Some(t0));
    // A second Startup changes nothing.
    assert!(i.step(t0 + S, Event::Startup).is_empty());
}

#[test]
fn startup_v3_uses_centisecond_interval() {
    let (i, t0) = started(v3(90, Duration::from_millis(100)));
    assert_eq!(i.next_deadline(), Some(t0 + us(364_843)));
    assert_eq!(i.skew_time(), us(64_843));
}

#[test]
fn owner_becomes_master_at_startup() {
    let t0 = Instant::now();
    let mut i = instance(v2(PRIORITY_OWNER));
    let out = i.step(t0, Event::Startup);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
            Action::SendGarp { count: 5 },
            Action::Notify(State::Master),
            Action::ArmTimer(t0 + S),
        ]
    );
    assert_eq!(transition(&i), (State::Initialize, State::Master, Reason::AddressOwner));
}

#[test]
fn owner_with_backup_hint_waits_like_a_backup() {
    let mut cfg = v2(PRIORITY_OWNER);
    cfg.start_state = Some(StartState::Backup);
    let (i, t0) = started(cfg);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.next_deadline(), Some(t0 + 3 * S + us(3_906)));
}

/// keepalived 2.2.7 / HEAD `vrrp_init_state`: the shortened wait (one interval + minimum skew) only
/// applies to sync-group members held in BACKUP; a standalone MASTER hint waits like a backup.
#[test]
fn master_hint_below_255_waits_the_full_interval() {
    let mut cfg = v2(150);
    cfg.start_state = Some(StartState::Master);
    cfg.preempt = false;
    cfg.preempt_delay = 10 * S;
    let (mut i, t0) = started(cfg);
    assert_eq!(i.state(), State::Backup);
    let at = t0 + 3 * S + us(414_062);
    assert_eq!(i.next_deadline(), Some(at));
    // keepalived clears nopreempt and preempt_delay with a MASTER hint.
    assert!(i.config().preempt);
    assert_eq!(i.config().preempt_delay, Duration::ZERO);
    i.step(at, Event::Timer);
    assert_eq!(i.state(), State::Master);
}

// ---- Backup -----------------------------------------------------------------------------------

#[test]
fn backup_master_down_timer_fires_into_master() {
    let (mut i, t0) = started(v2(100));
    let at = t0 + us(3_609_375);
    let out = i.step(at, Event::Timer);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::AddVips,
            Action::SendGarp { count: 5 },
            Action::Notify(State::Master),
            Action::ArmTimer(at + S),
        ]
    );
    assert_eq!(transition(&i), (State::Backup, State::Master, Reason::MasterDown));
    assert_eq!(i.master(), None);
}

#[test]
fn early_timer_is_rearmed() {
    let (mut i, t0) = started(v2(100));
    let out = i.step(t0 + S, Event::Timer);
    assert_eq!(out, vec![Action::ArmTimer(t0 + us(3_609_375))]);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_accepts_higher_or_equal_priority_and_restarts_timer() {
    let (mut i, t0) = started(v2(100));
    let t1 = t0 + S;
    let out = i.step(t1, advert(ip(9), 150, S));
    assert_eq!(out, vec![Action::ArmTimer(t1 + us(3_609_375))]);
    assert_eq!(i.master(), Some((ip(9), 150)));
    let t2 = t1 + S;
    let out = i.step(t2, advert(ip(9), 100, S));
    assert_eq!(out, vec![Action::ArmTimer(t2 + us(3_609_375))]);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_discards_lower_priority_when_preempting() {
    let (mut i, t0) = started(v2(100));
    let out = i.step(t0 + S, advert(ip(9), 50, S));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(i.next_deadline(), Some(t0 + us(3_609_375)));
    assert_eq!(i.master(), Some((ip(9), 50)));
    i.step(t0 + us(3_609_375), Event::Timer);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn nopreempt_backup_follows_a_lower_priority_master() {
    let mut cfg = v2(200);
    cfg.preempt = false;
    let (mut i, t0) = started(cfg);
    for n in 1..=10u32 {
        let t = t0 + n * S;
        let out = i.step(t, advert(ip(9), 50, S));
        // Priority 200: skew 56/256 s.
        assert_eq!(out, vec![Action::ArmTimer(t + 3 * S + us(218_750))]);
    }
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_priority_zero_advert_shortens_timer_to_skew() {
    let (mut i, t0) = started(v2(90));
    let t1 = t0 + S;
    let out = i.step(t1, advert(ip(9), 0, S));
    assert_eq!(out, vec![Action::ArmTimer(t1 + us(648_437))]);
    let out = i.step(t1 + us(648_437), Event::Timer);
    assert_eq!(out[0], Action::SendAdvert { priority: 90 });
    assert_eq!(i.state(), State::Master);
}

#[test]
fn v3_backup_learns_master_interval() {
    let (mut i, t0) = started(v3(100, S));
    let t1 = t0 + Duration::from_millis(500);
    let out = i.step(t1, advert(ip(9), 200, Duration::from_millis(200)));
    // 3 * 200 ms + 156 * 200 ms / 256.
    assert_eq!(out, vec![Action::ArmTimer(t1 + us(600_000 + 121_875))]);
    assert_eq!(i.master_adver_int(), Duration::from_millis(200));
    // The learned interval also drives the skew after a priority-0 advert.
    let t2 = t1 + Duration::from_millis(200);
    let out = i.step(t2, advert(ip(9), 0, Duration::from_millis(200)));
    assert_eq!(out, vec![Action::ArmTimer(t2 + us(121_875))]);
    // Becoming master goes back to the own interval.
    i.step(t2 + us(121_875), Event::Timer);
    assert_eq!(i.master_adver_int(), S);
    assert_eq!(i.next_deadline(), Some(t2 + us(121_875) + S));
}

/// A resigning v3 master's short-interval advert, then its priority-0 advert at the usual
/// interval (`vrrp::resign`): the backup takes over after a skew over 10 ms, not 100 ms.
#[test]
fn v3_backup_takes_over_sooner_after_a_short_interval_advert() {
    let ms = Duration::from_millis;
    let (mut i, t0) = started(v3(100, ms(100)));
    i.step(t0, advert(ip(9), 150, ms(100)));
    let t1 = t0 + ms(50);
    let out = i.step(t1, advert(ip(9), 150, ms(10)));
    // 3 * 10 ms + 156 * 10 ms / 256: even without the priority-0 advert, 36 ms.
    assert_eq!(out, vec![Action::ArmTimer(t1 + us(30_000 + 6_093))]);
    let out = i.step(t1, advert(ip(9), 0, ms(100)));
    assert_eq!(out, vec![Action::ArmTimer(t1 + us(6_093))], "the skew over the learned 10 ms");
    i.step(t1 + us(6_093), Event::Timer);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.master_adver_int(), ms(100), "as master, its own interval again");
}

#[test]
fn v2_backup_keeps_its_own_interval() {
    let (mut i, t0) = started(v2(100));
    i.step(t0, advert(ip(9), 200, 2 * S));
    assert_eq!(i.master_adver_int(), S);
}

#[test]
fn backup_shutdown_returns_to_initialize() {
    let (mut i, t0) = started(v2(100));
    let out = i.step(t0 + S, Event::Shutdown);
    assert_eq!(out, vec![Action::Notify(State::Initialize), Action::CancelTimer]);
    assert_eq!(transition(&i), (State::Backup, State::Initialize, Reason::Shutdown));
    assert!(i.step(t0 + 2 * S, Event::Shutdown).is_empty());
    assert!(i.step(t0 + 2 * S, advert(ip(9), 200, S)).is_empty());
    // It can start again.
    let out = i.step(t0 + 3 * S, Event::Startup);
    assert_eq!(out[0], Action::Notify(State::Backup));
}

// ---- Master -----------------------------------------------------------------------------------

#[test]
fn master_adver_timer_sends_and_restarts() {
    let (mut i, tm) = master(v2(100));
    for n in 1..=3u32 {
        let out = i.step(tm + n * S, Event::Timer);
        assert_eq!(out, vec![Action::SendAdvert { priority: 100 }, Action::ArmTimer(tm + (n + 1) * S)]);
    }
    // At +5 s the second GARP burst is due together with the advert.
    i.step(tm + 4 * S, Event::Timer);
    let out = i.step(tm + 5 * S, Event::Timer);
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 100 }, Action::SendGarp { count: 5 }, Action::ArmTimer(tm + 6 * S)]
    );
}

#[test]
fn late_adver_timers_do_not_drift() {
    let cs = Duration::from_millis(10);
    let (mut i, tm) = master(v3(100, cs));
    let late = us(1_200);
    // Each firing 1.2 ms late; the next advert is still due on the interval grid.
    for n in 1..=5u32 {
        let out = i.step(tm + n * cs + late, Event::Timer);
        assert_eq!(out, vec![Action::SendAdvert { priority: 100 }, Action::ArmTimer(tm + (n + 1) * cs)]);
    }
    // Woken three intervals late (a paused process): one advert now, the next one interval on.
    let woke = tm + 9 * cs;
    let out = i.step(woke, Event::Timer);
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }, Action::ArmTimer(woke + cs)]);
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let (mut i, tm) = master(v2(100));
    let t = tm + Duration::from_millis(300);
    let out = i.step(t, advert(ip(9), 0, S));
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }, Action::ArmTimer(t + S)]);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_yields_to_higher_priority() {
    let (mut i, tm) = master(v2(100));
    let t = tm + Duration::from_millis(500);
    let out = i.step(t, advert(ip(1), 150, S));
    assert_eq!(out, vec![Action::DelVips, Action::Notify(State::Backup), Action::ArmTimer(t + us(3_609_375)),]);
    assert_eq!(transition(&i), (State::Master, State::Backup, Reason::PreferredMaster { src: ip(1), priority: 150 }));
    assert_eq!(i.master(), Some((ip(1), 150)));
}

#[test]
fn v3_master_yielding_learns_the_interval() {
    let (mut i, tm) = master(v3(100, S));
    let out = i.step(tm, advert(ip(9), 200, Duration::from_millis(500)));
    assert_eq!(out.last(), Some(&Action::ArmTimer(tm + us(1_500_000 + 304_687))));
}

#[test]
fn master_tie_break_on_primary_address() {
    // Equal priority from a higher address: step down.
    let (mut i, tm) = master(v2(100));
    i.step(tm, advert(ip(6), 100, S));
    assert_eq!(i.state(), State::Backup);

    // Equal priority from a lower address: reassert like a lower priority.
    let (mut i, tm) = master(v2(100));
    let out = i.step(tm, advert(ip(4), 100, S));
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }, Action::SendGarp { count: 5 }]);
    assert_eq!(i.state(), State::Master);

    // Our own address, or another family: nothing to decide.
    assert!(i.step(tm, advert(ip(5), 100, S)).is_empty());
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert!(i.step(tm, advert(v6, 100, S)).is_empty());
}

#[test]
fn master_reasserts_against_lower_priority() {
    let (mut i, tm) = master(v2(100));
    let t = tm + Duration::from_millis(250);
    let out = i.step(t, advert(ip(9), 50, S));
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 100 }, Action::SendGarp { count: 5 }, Action::ArmTimer(t + S),]
    );
    // The delayed lower-priority burst comes garp_lower_prio_delay later, after the master burst.
    let mut garps = Vec::new();
    while let Some(at) = i.next_deadline().filter(|at| *at <= tm + 6 * S) {
        for a in i.step(at, Event::Timer) {
            if let Action::SendGarp { count } = a {
                garps.push((at - tm, count));
            }
        }
    }
    assert_eq!(garps, vec![(5 * S, 5), (Duration::from_millis(5_250), 5)]);
}

#[test]
fn lower_prio_no_advert_and_no_garp() {
    let mut cfg = v2(100);
    cfg.lower_prio_no_advert = true;
    cfg.garp.lower_prio_repeat = 0;
    let (mut i, tm) = master(cfg);
    let out = i.step(tm + Duration::from_millis(250), advert(ip(9), 50, S));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(i.next_deadline(), Some(tm + S));
}

#[test]
fn higher_prio_send_advert_advertises_before_yielding() {
    let mut cfg = v2(100);
    cfg.higher_prio_send_advert = true;
    let (mut i, tm) = master(cfg);
    let out = i.step(tm, advert(ip(9), 101, S));
    assert_eq!(out[..3], [Action::SendAdvert { priority: 100 }, Action::DelVips, Action::Notify(State::Backup)]);
}

#[test]
fn master_shutdown_removes_vips_then_sends_priority_zero() {
    let (mut i, tm) = master(v2(100));
    let out = i.step(tm + S / 2, Event::Shutdown);
    // The VIPs first: a v3 backup may take over ~6 ms after the adverts (`vrrp::resign`).
    assert_eq!(
        out,
        vec![
            Action::DelVips,
            Action::SendAdvert { priority: 0 },
            Action::Notify(State::Initialize),
            Action::CancelTimer,
        ]
    );
    assert_eq!(i.next_deadline(), None);
}

// ---- Fault (keepalived) ------------------------------------------------------------------------

#[test]
fn master_fault_resigns_and_recovers_as_backup() {
    let (mut i, tm) = master(v2(100));
    let t = tm + S / 2;
    let out = i.step(t, Event::Fault(FaultReason::InterfaceDown));
    assert_eq!(
        out,
        vec![Action::DelVips, Action::SendAdvert { priority: 0 }, Action::Notify(State::Fault), Action::CancelTimer,]
    );
    assert_eq!(transition(&i), (State::Master, State::Fault, Reason::Fault(FaultReason::InterfaceDown)));
    // Nothing reaches a faulty instance; a second fault is not a new transition.
    assert!(i.step(t, advert(ip(9), 200, S)).is_empty());
    assert!(i.step(t, Event::Timer).is_empty());
    assert!(i.step(t, Event::Fault(FaultReason::Tracker("chk".into()))).is_empty());
    assert_eq!(i.fault(), Some(&FaultReason::InterfaceDown));

    let t2 = t + 10 * S;
    let out = i.step(t2, Event::FaultCleared);
    assert_eq!(out, vec![Action::Notify(State::Backup), Action::ArmTimer(t2 + us(3_609_375))]);
    assert_eq!(transition(&i), (State::Fault, State::Backup, Reason::FaultCleared));
    assert_eq!(i.fault(), None);
}

#[test]
fn backup_fault_stops_the_timer() {
    let (mut i, t0) = started(v3(100, S));
    i.step(t0, advert(ip(9), 200, Duration::from_millis(300)));
    let out = i.step(t0 + S, Event::Fault(FaultReason::NoSourceAddress));
    assert_eq!(out, vec![Action::Notify(State::Fault), Action::CancelTimer]);
    // Recovery starts from the own interval, not the one learned before the fault.
    let out = i.step(t0 + 2 * S, Event::FaultCleared);
    assert_eq!(out[1], Action::ArmTimer(t0 + 2 * S + us(3_609_375)));
}

#[test]
fn fault_before_startup_starts_in_fault() {
    let t0 = Instant::now();
    let mut i = instance(v2(100));
    assert!(i.step(t0, Event::Fault(FaultReason::NoUnicastPeer)).is_empty());
    assert_eq!(i.state(), State::Initialize);
    let out = i.step(t0, Event::Startup);
    assert_eq!(out, vec![Action::Notify(State::Fault)]);
    assert_eq!(transition(&i), (State::Initialize, State::Fault, Reason::Fault(FaultReason::NoUnicastPeer)));
    let out = i.step(t0 + S, Event::FaultCleared);
    assert_eq!(out[0], Action::Notify(State::Backup));

    // Cleared before startup: a normal start.
    let mut j = instance(v2(100));
    j.step(t0, Event::Fault(FaultReason::InterfaceDown));
    assert!(j.step(t0, Event::FaultCleared).is_empty());
    assert_eq!(j.step(t0, Event::Startup)[0], Action::Notify(State::Backup));
}

#[test]
fn owner_goes_straight_to_master_when_fault_clears() {
    let (mut i, t0) = started(v2(PRIORITY_OWNER));
    i.step(t0, Event::Fault(FaultReason::InterfaceDown));
    let out = i.step(t0 + S, Event::FaultCleared);
    assert_eq!(out[0], Action::SendAdvert { priority: 255 });
    assert_eq!(transition(&i), (State::Fault, State::Master, Reason::AddressOwner));
}

#[test]
fn fault_shutdown_then_startup_stays_faulty() {
    let (mut i, t0) = started(v2(100));
    i.step(t0, Event::Fault(FaultReason::InterfaceDown));
    let out = i.step(t0, Event::Shutdown);
    assert_eq!(out, vec![Action::Notify(State::Initialize)]);
    assert_eq!(i.step(t0, Event::Startup), vec![Action::Notify(State::Fault)]);
}

// ---- Configuration ----------------------------------------------------------------------------

#[test]
fn invalid_configurations_are_rejected() {
    let cases = [
        (v2(0), FsmError::Priority),
        (
            FsmConfig::new(Version::V2, 100, Duration::from_millis(1500), ip(5)),
            FsmError::AdvertInterval { interval: Duration::from_millis(1500), version: 2, unit: "seconds", max: 255 },
        ),
        (
            v3(100, Duration::from_millis(5)),
            FsmError::AdvertInterval {
                interval: Duration::from_millis(5),
                version: 3,
                unit: "centiseconds",
                max: 4095,
            },
        ),
        (
            v3(100, Duration::from_secs(41)),
            FsmError::AdvertInterval { interval: Duration::from_secs(41), version: 3, unit: "centiseconds", max: 4095 },
        ),
        (FsmConfig { down_timer_adverts: 0, ..v2(100) }, FsmError::DownTimerAdverts(0)),
        (FsmConfig { down_timer_adverts: 101, ..v2(100) }, FsmError::DownTimerAdverts(101)),
        (
            FsmConfig { preempt_delay: Duration::from_secs(1001), ..v2(100) },
            FsmError::PreemptDelay(Duration::from_secs(1001)),
        ),
    ];
    for (cfg, want) in cases {
        let got = Instance::new(cfg).map(|_| ());
        assert_eq!(got, Err(want.clone()));
        assert!(!want.to_string().is_empty());
    }
}

#[test]
fn down_timer_adverts_replaces_the_three() {
    let mut cfg = v2(100);
    cfg.down_timer_adverts = 5;
    let (i, t0) = started(cfg);
    assert_eq!(i.next_deadline(), Some(t0 + 5 * S + us(609_375)));
    assert_eq!(i.master_down_interval(), 5 * S + us(609_375));
}

#[test]
fn state_names_follow_keepalived() {
    let names: Vec<_> = [State::Initialize, State::Backup, State::Master, State::Fault]
        .into_iter()
        .map(State::keepalived_name)
        .collect();
    assert_eq!(names, ["STOP", "BACKUP", "MASTER", "FAULT"]);
    assert_eq!(v2(255).effective_start_state(), StartState::Master);
    assert_eq!(v2(254).effective_start_state(), StartState::Backup);
}

// ---- Sync group gate ---------------------------------------------------------------------------

pub(super) fn synced(cfg: FsmConfig) -> FsmConfig {
    FsmConfig { sync_group: true, ..cfg }
}

#[test]
fn sync_member_waits_in_backup_when_its_down_timer_fires() {
    let (mut i, t0) = started(synced(v2(100)));
    let at = t0 + us(3_609_375);
    let out = i.step(at, Event::Timer);
    // No advert, no VIPs, no new timer: only the group (or an advert) moves it on.
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(i.state(), State::Backup);
    assert!(i.wants_master());
    assert_eq!(i.next_deadline(), None);
    let out = i.step(at + S, Event::SyncMaster);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::AddVips,
            Action::SendGarp { count: 5 },
            Action::Notify(State::Master),
            Action::ArmTimer(at + 2 * S),
        ]
    );
    assert_eq!(transition(&i), (State::Backup, State::Master, Reason::MasterDown));
    assert!(!i.wants_master());
}

#[test]
fn sync_master_is_ignored_unless_the_member_wants_it() {
    let (mut i, t0) = started(synced(v2(100)));
    assert!(i.step(t0 + S, Event::SyncMaster).is_empty());
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.next_deadline(), Some(t0 + us(3_609_375)), "down timer untouched");
}

#[test]
fn an_advert_from_a_master_ends_the_wait() {
    let (mut i, t0) = started(synced(v2(100)));
    let at = t0 + us(3_609_375);
    i.step(at, Event::Timer);
    assert!(i.wants_master());
    let out = i.step(at + S, advert(ip(9), 120, S));
    assert_eq!(out, vec![Action::ArmTimer(at + S + us(3_609_375))]);
    assert!(!i.wants_master());
    assert!(i.step(at + S, Event::SyncMaster).is_empty());
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn a_lower_priority_advert_keeps_a_preempting_member_wanting() {
    let (mut i, t0) = started(synced(v2(100)));
    let at = t0 + us(3_609_375);
    i.step(at, Event::Timer);
    assert!(i.step(at + S, advert(ip(9), 50, S)).is_empty());
    assert!(i.wants_master(), "preempt: a lower priority master is not waited for");
}

#[test]
fn sync_owner_waits_for_the_group_at_startup_and_after_a_fault() {
    let t0 = Instant::now();
    let mut i = instance(synced(v2(PRIORITY_OWNER)));
    let out = i.step(t0, Event::Startup);
    assert_eq!(out, vec![Action::Notify(State::Backup)]);
    assert_eq!(transition(&i), (State::Initialize, State::Backup, Reason::Startup));
    assert!(i.wants_master());
    i.step(t0, Event::SyncMaster);
    assert_eq!(transition(&i), (State::Backup, State::Master, Reason::AddressOwner));
    i.step(t0 + S, Event::Fault(FaultReason::InterfaceDown));
    assert!(!i.wants_master());
    let out = i.step(t0 + 2 * S, Event::FaultCleared);
    assert_eq!(out, vec![Action::Notify(State::Backup)]);
    assert_eq!(transition(&i), (State::Fault, State::Backup, Reason::FaultCleared));
    assert!(i.wants_master());
}

#[test]
fn sync_backup_makes_a_master_step_down_without_priority_zero() {
    let (mut i, at) = master(v2(100));
    let out = i.step(at + S / 2, Event::SyncBackup("sync group G: VI_2 lost".into()));
    assert_eq!(
        out,
        vec![Action::DelVips, Action::Notify(State::Backup), Action::ArmTimer(at + S / 2 + us(3_609_375)),]
    );
    assert_eq!(transition(&i), (State::Master, State::Backup, Reason::SyncGroup("sync group G: VI_2 lost".into())));
    // Only a master steps down.
    assert!(i.step(at + S, Event::SyncBackup("again".into())).is_empty());
}

#[test]
fn standalone_instances_ignore_the_gate() {
    let (mut i, at) = master(v2(100));
    assert!(!i.wants_master());
    assert!(i.step(at, Event::SyncMaster).is_empty());
}
