//! Timer arithmetic (RFC 3768 §6.1, RFC 5798 §6.1, keepalived `VRRP_TIMER_SKEW`) and the set of
//! deadlines one instance multiplexes onto its single armed timer.

use std::time::{Duration, Instant};

use super::super::packet::Version;

/// Skew_Time in whole microseconds, truncated as keepalived does.
///
/// v2: `(256 - priority) / 256` seconds, independent of the advert interval.
/// v3: `(256 - priority) * Master_Adver_Interval / 256`.
pub fn skew_time(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    skew_units(version, 256 - u64::from(priority), master_adver_int)
}

/// Master_Down_Interval = `down_timer_adverts` (RFC: 3) * Master_Adver_Interval + Skew_Time.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: Duration,
    down_timer_adverts: u32,
) -> Duration {
    master_adver_int * down_timer_adverts + skew_time(version, priority, master_adver_int)
}

fn skew_units(version: Version, units: u64, master_adver_int: Duration) -> Duration {
    let micros = match version {
        Version::V2 => units * 1_000_000 / 256,
        Version::V3 => {
            let mai = u64::try_from(master_adver_int.as_micros()).unwrap_or(u64::MAX);
            units.saturating_mul(mai) / 256
        }
    };
    Duration::from_micros(micros)
}

/// Every deadline an instance may be waiting for. Only the earliest is armed with the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Deadlines {
    /// Backup: Master_Down_Timer.
    pub master_down: Option<Instant>,
    /// Master: Adver_Timer.
    pub advert: Option<Instant>,
    /// Master: second GARP burst after `garp_master_delay`.
    pub garp_delayed: Option<Instant>,
    /// Master: periodic `garp_master_refresh`.
    pub garp_refresh: Option<Instant>,
    /// Master: delayed burst after a lower-priority advert (`garp_lower_prio_delay`).
    pub garp_lower_prio: Option<Instant>,
}

impl Deadlines {
    pub fn earliest(&self) -> Option<Instant> {
        [self.master_down, self.advert, self.garp_delayed, self.garp_refresh, self.garp_lower_prio]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn clear(&mut self) {
        *self = Deadlines::default();
    }
}

/// Takes `slot` if it is due at `now`.
pub(super) fn take_due(slot: &mut Option<Instant>, now: Instant) -> bool {
    match *slot {
        Some(at) if at <= now => {
            *slot = None;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn v2_skew_ignores_the_interval() {
        // (256 - 100) / 256 s = 0.609375 s exactly.
        assert_eq!(skew_time(Version::V2, 100, S), Duration::from_micros(609_375));
        assert_eq!(skew_time(Version::V2, 100, 5 * S), Duration::from_micros(609_375));
        // 166 / 256 s = 648437.5 us, truncated.
        assert_eq!(skew_time(Version::V2, 90, S), Duration::from_micros(648_437));
        assert_eq!(skew_time(Version::V2, 255, S), Duration::from_micros(3_906));
        assert_eq!(master_down_interval(Version::V2, 100, S, 3), Duration::from_micros(3_609_375));
    }

    #[test]
    fn v3_skew_scales_with_the_master_interval() {
        let cs10 = Duration::from_millis(100);
        // vrrp.md §6: 100 ms adverts, priority 90: 64.8 ms skew, 364.8 ms down interval.
        assert_eq!(skew_time(Version::V3, 90, cs10), Duration::from_micros(64_843));
        assert_eq!(master_down_interval(Version::V3, 90, cs10, 3), Duration::from_micros(364_843));
        assert_eq!(master_down_interval(Version::V3, 100, cs10, 3), Duration::from_micros(360_937));
        assert_eq!(master_down_interval(Version::V3, 90, S, 3), Duration::from_micros(3_648_437));
        assert_eq!(master_down_interval(Version::V3, 100, S, 5), Duration::from_micros(5_609_375));
        assert_eq!(skew_time(Version::V3, 255, S), Duration::from_micros(3_906));
    }

    #[test]
    fn earliest_and_take_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        assert_eq!(d.earliest(), None);
        d.advert = Some(t0 + S);
        d.garp_delayed = Some(t0 + 5 * S);
        assert_eq!(d.earliest(), Some(t0 + S));
        assert!(!take_due(&mut d.garp_delayed, t0 + S));
        assert!(take_due(&mut d.advert, t0 + S));
        assert_eq!(d.advert, None);
        assert_eq!(d.earliest(), Some(t0 + 5 * S));
        d.clear();
        assert_eq!(d, Deadlines::default());
    }
}
