//! How a master resigns on the wire. RFC 5798's priority-0 advert is answered by the best
//! backup after its Skew_Time, ((256 - priority) / 256) x Master_Adver_Interval: 61 ms for a
//! backup of priority 100 at 100 ms adverts, the largest part of a proxy failure's outage
//! without a `[cluster]` peer (bench/README.md, "Failover when the proxy fails").
//!
//! A v3 backup adopts the interval each advert of its master carries (RFC 5798 §6.4.2;
//! keepalived 2.2.7 too, which logs "advertisement interval updated" only when run with `-D`),
//! and a master may change its interval at any time. So a resigning v3 master first sends one
//! advert at its own priority with the least interval the wire carries (1 centisecond), then its
//! priority-0 advert: the backup's skew is then computed over 10 ms (6 ms at priority 100). The
//! priority-0 advert keeps the configured interval, so a backup that ignored the short one still
//! takes over after its usual skew time. v2 intervals must match (a v2 backup drops an advert
//! whose interval differs), so a v2 master sends the priority-0 advert alone.
//!
//! The trade-off: backups of different priorities are told apart by their skew, and over 10 ms
//! one priority point is 0.04 ms instead of 0.4 ms at 100 ms adverts; with several backups, a
//! lower one may now win the race, and a higher one with `preempt` then takes the VIP from it.
//! A pair (one backup) is not concerned.
//!
//! Both adverts leave only once the master removed its VIPs (`Action::DelVips` comes first in
//! `super::fsm`, and `crate::fate::resign` removes them first too): the backup now answers within
//! ~6 ms (0.2 ms at priority 250), and a removal still under way then (netlink under load) would
//! leave both nodes answering ARP for the VIP, a client keeping this node's MAC for seconds.
//!
//! Sent once per resignation ([`hurry_due`]): a stall resigns from the watchdog and again from
//! the instance's task, and a short-interval advert at the old priority that came after the
//! backup took over would make it step down again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::packet::Version;

/// The least advert interval a v3 advert carries, in its unit (centiseconds): 10 ms.
pub const HURRY_INTERVAL: u16 = 1;

/// The adverts a resigning master sends, in order, as (priority, interval in the version's
/// units): in v3 one at `priority` (at least 1) with [`HURRY_INTERVAL`] first, when `hurry` and
/// the interval is longer than that; then priority 0 at `interval`.
pub fn adverts(version: Version, priority: u8, interval: u16, hurry: bool) -> Vec<(u8, u16)> {
    let mut out = Vec::with_capacity(2);
    if hurry && version == Version::V3 && interval > HURRY_INTERVAL {
        out.push((priority.max(1), HURRY_INTERVAL));
    }
    out.push((0, interval));
    out
}

/// Instances that sent their short-interval advert lately, with when.
static HURRIED: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());
/// One resignation's window: no second short-interval advert for the same instance within it.
const HURRY_ONCE: Duration = Duration::from_secs(1);

/// Whether instance `name` sends its short-interval advert now (records it). Pure over `seen`.
pub fn hurry_due_in(seen: &mut BTreeMap<String, Instant>, name: &str, now: Instant) -> bool {
    seen.retain(|_, at| now.saturating_duration_since(*at) < HURRY_ONCE);
    if seen.contains_key(name) {
        return false;
    }
    seen.insert(name.to_string(), now);
    true
}

/// [`hurry_due_in`] over the process's record; `false` if it cannot be read at once (a panic
/// held its lock): the priority-0 advert alone is the safe side.
pub fn hurry_due(name: &str) -> bool {
    match HURRIED.try_lock() {
        Ok(mut g) => hurry_due_in(&mut g, name, Instant::now()),
        Err(std::sync::TryLockError::Poisoned(p)) => hurry_due_in(&mut p.into_inner(), name, Instant::now()),
        Err(std::sync::TryLockError::WouldBlock) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::fsm::skew_time;

    #[test]
    fn a_v3_master_shortens_the_interval_before_priority_0() {
        assert_eq!(adverts(Version::V3, 150, 10, true), [(150, 1), (0, 10)]);
        // Never a priority-0 "hurry": it would be the resignation itself, with the short interval.
        assert_eq!(adverts(Version::V3, 0, 10, true), [(1, 1), (0, 10)]);
        // Already at the least interval, or told not to: priority 0 alone.
        assert_eq!(adverts(Version::V3, 150, 1, true), [(0, 1)]);
        assert_eq!(adverts(Version::V3, 150, 10, false), [(0, 10)]);
    }

    #[test]
    fn a_v2_master_sends_priority_0_alone() {
        assert_eq!(adverts(Version::V2, 150, 1, true), [(0, 1)]);
    }

    #[test]
    fn the_backup_s_skew_shrinks_tenfold() {
        let ms = |d: Duration| d.as_micros();
        assert_eq!(ms(skew_time(Version::V3, 100, Duration::from_millis(100))), 60_937);
        assert_eq!(ms(skew_time(Version::V3, 100, Duration::from_millis(10))), 6_093);
    }

    #[test]
    fn one_short_interval_advert_per_resignation() {
        let mut seen = BTreeMap::new();
        let t0 = Instant::now();
        assert!(hurry_due_in(&mut seen, "VI_1", t0));
        assert!(!hurry_due_in(&mut seen, "VI_1", t0 + Duration::from_millis(5)), "the second path");
        assert!(hurry_due_in(&mut seen, "VI_2", t0), "per instance");
        assert!(hurry_due_in(&mut seen, "VI_1", t0 + HURRY_ONCE), "a later resignation");
    }
}
