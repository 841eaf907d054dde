//! `Event::PeerResigned`: the pair's other node said over the cluster channel that it resigned,
//! so its backup becomes master now rather than after the skew time.

use std::time::Duration;

use super::tests::{advert, ip, started, synced, transition, v3};
use super::*;

const I: Duration = Duration::from_millis(100);

/// A backup at priority 100 following the master 192.0.2.9 (150), which then resigned: its
/// priority-0 advert arrived, the skew time runs.
fn following() -> (Instance, Instant) {
    let (mut i, t0) = started(v3(100, I));
    i.step(t0 + I, advert(ip(9), 150, I));
    let out = i.step(t0 + 2 * I, advert(ip(9), 0, I));
    // RFC 5798: master-down in skew time, (256 - 100) / 256 x 100 ms.
    assert_eq!(out, vec![Action::ArmTimer(t0 + 2 * I + Duration::from_micros(60_937))]);
    (i, t0 + 2 * I)
}

#[test]
fn a_backup_takes_over_at_once_when_its_master_says_it_resigned() {
    let (mut i, t) = following();
    let now = t + Duration::from_millis(3);
    let out = i.step(now, Event::PeerResigned(ip(9)));
    assert_eq!(i.state(), State::Master);
    assert_eq!(&out[..2], &[Action::SendAdvert { priority: 100 }, Action::AddVips], "{out:?}");
    assert!(out.contains(&Action::Notify(State::Master)), "{out:?}");
    assert_eq!(out.last(), Some(&Action::ArmTimer(now + I)), "the next advert, no down timer left");
    assert_eq!(transition(&i), (State::Backup, State::Master, Reason::PeerResigned(ip(9))));
}

#[test]
fn the_message_alone_is_enough_when_it_comes_before_the_priority_0_advert() {
    let (mut i, t0) = started(v3(100, I));
    i.step(t0 + I, advert(ip(9), 150, I));
    i.step(t0 + I + Duration::from_millis(5), Event::PeerResigned(ip(9)));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn a_resignation_of_another_router_or_before_any_master_changes_nothing() {
    let (mut i, t) = following();
    let armed = i.next_deadline();
    assert!(i.step(t, Event::PeerResigned(ip(8))).is_empty(), "not the master it follows");
    assert_eq!((i.state(), i.next_deadline()), (State::Backup, armed), "the skew time still runs");
    let (mut fresh, t0) = started(v3(100, I));
    assert!(fresh.step(t0, Event::PeerResigned(ip(9))).is_empty(), "no master heard yet");
    assert_eq!(fresh.state(), State::Backup);
}

#[test]
fn a_master_a_faulty_or_a_stopped_instance_ignores_it() {
    // Master: it won the election meanwhile (or never followed the sender).
    let (mut i, t) = following();
    let at = i.next_deadline().expect("skew time armed");
    i.step(at, Event::Timer);
    assert_eq!(i.state(), State::Master);
    assert!(i.step(t + I, Event::PeerResigned(ip(9))).is_empty());
    // Fault.
    let (mut f, t) = following();
    f.step(t, Event::Fault(FaultReason::InterfaceDown));
    assert!(f.step(t, Event::PeerResigned(ip(9))).is_empty());
    assert_eq!(f.state(), State::Fault);
    // Not started.
    let mut n = super::tests::instance(v3(100, I));
    assert!(n.step(t, Event::PeerResigned(ip(9))).is_empty());
    assert_eq!(n.state(), State::Initialize);
}

#[test]
fn in_a_sync_group_it_waits_for_the_group_as_on_master_down() {
    let (mut i, t0) = started(synced(v3(100, I)));
    i.step(t0 + I, advert(ip(9), 150, I));
    let out = i.step(t0 + 2 * I, Event::PeerResigned(ip(9)));
    assert_eq!(i.state(), State::Backup);
    assert!(i.wants_master(), "the group decides");
    assert!(!out.iter().any(|a| matches!(a, Action::AddVips)), "{out:?}");
    let out = i.step(t0 + 2 * I, Event::SyncMaster);
    assert!(out.contains(&Action::AddVips), "{out:?}");
    assert_eq!(transition(&i), (State::Backup, State::Master, Reason::PeerResigned(ip(9))));
}
