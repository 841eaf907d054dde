//! Per-second limits on accepting connections, as HAProxy's `maxconnrate`, `maxsessrate`,
//! `maxsslrate` (global) and `rate-limit sessions` (frontend): past the limit a listener stops
//! accepting for as long as the rate needs to fall back under it, so the connections beyond it
//! wait in the kernel's backlog (none is refused). Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_secs(1);

/// Events per second over a sliding one-second window, as HAProxy's `freq_ctr`: the events of
/// the current second plus those of the previous one, weighted by the part of it the window
/// still covers.
#[derive(Debug, Default, Clone)]
pub struct RateCounter {
    /// Start of the current period (set by the first event).
    start: Option<Instant>,
    curr: u32,
    prev: u32,
}

impl RateCounter {
    /// Moves the periods on to the one holding `now`.
    fn rotate(&mut self, now: Instant) -> (Instant, Duration) {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed < PERIOD {
            return (start, elapsed);
        }
        let periods = elapsed.as_nanos() / PERIOD.as_nanos();
        self.prev = if periods == 1 { self.curr } else { 0 };
        self.curr = 0;
        let start = start + PERIOD * u32::try_from(periods).unwrap_or(u32::MAX);
        self.start = Some(start);
        (start, now.saturating_duration_since(start))
    }

    /// How long from `now` until one more event fits under `limit` per second (zero: at once).
    pub fn wait(&mut self, now: Instant, limit: u32) -> Duration {
        let (_, elapsed) = self.rotate(now);
        let left = PERIOD - elapsed;
        let (curr, prev, limit) = (u128::from(self.curr), u128::from(self.prev), u128::from(limit));
        let period = PERIOD.as_nanos();
        // The window's estimate: curr + prev * left / PERIOD, compared without rounding.
        if curr * period + prev * left.as_nanos() < limit * period {
            return Duration::ZERO;
        }
        let nanos = if curr < limit {
            // Within this period, once the previous one's share has shrunk enough:
            // prev * (left - w) < (limit - curr) * PERIOD.
            left.as_nanos() - ((limit - curr) * period).div_ceil(prev.max(1)).min(left.as_nanos()) + 1
        } else {
            // Only in the next period, where this one's events count as the previous ones:
            // curr * (PERIOD - t) < limit * PERIOD.
            let t = period - (limit * period) / curr;
            left.as_nanos() + t + 1
        };
        // Whole milliseconds, as a timer wakes at that grain.
        Duration::from_millis(u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX))
    }

    /// Counts one event at `now`.
    pub fn record(&mut self, now: Instant) {
        self.rotate(now);
        self.curr = self.curr.saturating_add(1);
    }
}

/// The limits that apply to one accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits<'a> {
    /// `maxconnrate`.
    pub conn: Option<u32>,
    /// `maxsessrate`.
    pub sess: Option<u32>,
    /// `maxsslrate`, on a bind that terminates TLS only.
    pub ssl: Option<u32>,
    /// The frontend's name and its `rate-limit sessions`.
    pub frontend: Option<(&'a str, u32)>,
}

impl Limits<'_> {
    pub fn any(&self) -> bool {
        self.conn.is_some() || self.sess.is_some() || self.ssl.is_some() || self.frontend.is_some()
    }
}

/// The process's counters: one per global limit, one per frontend (by name, so a reload keeps
/// them).
#[derive(Debug, Default)]
pub struct Rates {
    conn: RateCounter,
    sess: RateCounter,
    ssl: RateCounter,
    frontends: HashMap<String, RateCounter>,
}

impl Rates {
    /// Counts an accept at `now` if every limit in `l` lets it through; otherwise how long to
    /// wait before asking again (nothing counted).
    pub fn admit(&mut self, now: Instant, l: &Limits<'_>) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for (c, limit) in [(&mut self.conn, l.conn), (&mut self.sess, l.sess), (&mut self.ssl, l.ssl)] {
            if let Some(limit) = limit {
                wait = wait.max(c.wait(now, limit));
            }
        }
        if let Some((name, limit)) = l.frontend {
            wait = wait.max(self.frontends.entry(name.to_string()).or_default().wait(now, limit));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (c, limit) in [(&mut self.conn, l.conn), (&mut self.sess, l.sess), (&mut self.ssl, l.ssl)] {
            if limit.is_some() {
                c.record(now);
            }
        }
        if let Some((name, _)) = l.frontend
            && let Some(c) = self.frontends.get_mut(name)
        {
            c.record(now);
        }
        Ok(())
    }

    /// Forgets frontends a reload removed.
    pub fn retain_frontends(&mut self, keep: impl Fn(&str) -> bool) {
        self.frontends.retain(|n, _| keep(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    /// Accepts `until` ms of a steady stream of attempts every `step` ms: returns how many got
    /// through, each attempt retried after the wait it was given.
    fn run(r: &mut Rates, l: &Limits<'_>, t0: Instant, step: u64, until: u64) -> u64 {
        let (mut t, mut n) = (0u64, 0u64);
        while t < until {
            match r.admit(ms(t0, t), l) {
                Ok(()) => {
                    n += 1;
                    t += step;
                }
                Err(w) => {
                    assert!(!w.is_zero() && w <= Duration::from_secs(2), "{w:?}");
                    t += u64::try_from(w.as_millis()).unwrap();
                }
            }
        }
        n
    }

    #[test]
    fn a_burst_gets_the_limit_then_waits_for_the_window_to_slide() {
        let t0 = Instant::now();
        let mut c = RateCounter::default();
        for _ in 0..10 {
            assert_eq!(c.wait(t0, 10), Duration::ZERO);
            c.record(t0);
        }
        // The eleventh must wait: the ten stay in the window until they have aged out.
        let w = c.wait(t0, 10);
        assert!(w > Duration::ZERO);
        // At that wait, it fits; a millisecond before, it did not.
        let at = t0 + w;
        assert_eq!(c.clone().wait(at, 10), Duration::ZERO, "after {w:?}");
        assert!(c.clone().wait(at - Duration::from_millis(1), 10) > Duration::ZERO);
        // Two idle seconds forget everything.
        assert_eq!(c.wait(ms(t0, 2500), 10), Duration::ZERO);
    }

    #[test]
    fn the_previous_second_counts_in_proportion_to_the_window_it_still_covers() {
        let t0 = Instant::now();
        let mut c = RateCounter::default();
        c.record(t0);
        for _ in 0..99 {
            c.record(ms(t0, 900));
        }
        // At 1.5 s: 100 last second, weighted by half: 50 counted; limit 60 leaves room for 10.
        let at = ms(t0, 1500);
        for i in 0..10 {
            assert_eq!(c.wait(at, 60), Duration::ZERO, "event {i}");
            c.record(at);
        }
        let w = c.wait(at, 60);
        assert!(w > Duration::ZERO && w < Duration::from_millis(500), "{w:?}");
    }

    #[test]
    fn a_steady_stream_is_held_to_the_rate() {
        let t0 = Instant::now();
        let mut r = Rates::default();
        let l = Limits { conn: Some(100), ..Default::default() };
        // Attempts every millisecond (1000/s) for ten seconds: about 100 a second get through.
        let n = run(&mut r, &l, t0, 1, 10_000);
        assert!((990..=1_100).contains(&n), "{n} in 10 s at 100/s");
    }

    #[test]
    fn every_limit_that_applies_holds_and_a_refused_attempt_counts_nowhere() {
        let t0 = Instant::now();
        let mut r = Rates::default();
        let fe = Limits { conn: Some(1000), frontend: Some(("web", 5)), ..Default::default() };
        let other = Limits { conn: Some(1000), frontend: Some(("api", 50)), ..Default::default() };
        for _ in 0..5 {
            assert_eq!(r.admit(t0, &fe), Ok(()));
        }
        // `web` is at its limit; refused attempts do not count against `maxconnrate`.
        for _ in 0..100 {
            assert!(r.admit(t0, &fe).is_err());
        }
        for _ in 0..50 {
            assert_eq!(r.admit(t0, &other), Ok(()), "another frontend is not held by web's limit");
        }
        assert!(r.admit(t0, &other).is_err());
        // 55 counted against the global 1000: plenty left for a frontend without its own limit.
        let plain = Limits { conn: Some(1000), ..Default::default() };
        assert_eq!(r.admit(t0, &plain), Ok(()));
        // The TLS limit holds only binds that have it.
        let tls = Limits { ssl: Some(2), ..Default::default() };
        assert_eq!(r.admit(t0, &tls), Ok(()));
        assert_eq!(r.admit(t0, &tls), Ok(()));
        assert!(r.admit(t0, &tls).is_err());
        assert_eq!(r.admit(t0, &Limits::default()), Ok(()));
        // The global limit binds every frontend.
        let tight = Limits { sess: Some(1), ..Default::default() };
        assert_eq!(r.admit(t0, &tight), Ok(()));
        assert!(r.admit(t0, &Limits { sess: Some(1), frontend: Some(("api2", 100)), ..Default::default() }).is_err());
    }

    #[test]
    fn a_reload_keeps_the_counters_of_the_frontends_it_keeps() {
        let t0 = Instant::now();
        let mut r = Rates::default();
        let l = |n| Limits { frontend: Some((n, 1)), ..Default::default() };
        assert_eq!(r.admit(t0, &l("a")), Ok(()));
        assert_eq!(r.admit(t0, &l("b")), Ok(()));
        r.retain_frontends(|n| n == "a");
        assert!(r.admit(t0, &l("a")).is_err(), "kept");
        assert_eq!(r.admit(t0, &l("b")), Ok(()), "forgotten");
    }
}
