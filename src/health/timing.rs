//! When the next check runs: HAProxy's interval choice, `spread_checks` jitter and the first
//! check's offset. Pure; the randomness comes in as numbers.

use super::risefall::HealthState;
use std::time::Duration;

/// HAProxy refuses `spread-checks` above 50 percent.
const MAX_SPREAD_PCT: u8 = 50;

/// HAProxy's `srv_getinter`: `inter` while fully UP, `downinter` while fully DOWN, `fastinter`
/// while going either way.
pub fn base_interval(state: HealthState, inter: Duration, fastinter: Duration, downinter: Duration) -> Duration {
    match state {
        HealthState::Up => inter,
        HealthState::Down => downinter,
        HealthState::GoingDown { .. } | HealthState::GoingUp { .. } => fastinter,
    }
}

/// `base` moved by up to `spread_pct` percent either way; `random` picks where in that window.
/// Never returns zero, so a loop built on it cannot spin.
pub fn jitter(base: Duration, spread_pct: u8, random: u64) -> Duration {
    let pct = u128::from(spread_pct.min(MAX_SPREAD_PCT));
    let base_us = base.as_micros();
    let span = base_us * pct / 100;
    let out = if span == 0 {
        base_us
    } else {
        // Uniform in [base - span, base + span].
        base_us - span + u128::from(random) % (2 * span + 1)
    };
    Duration::from_micros(u64::try_from(out).unwrap_or(u64::MAX).max(1))
}

/// Longest shift `coalesce` applies to a wake-up.
const MAX_GRID: Duration = Duration::from_millis(16);

/// Moves a wake-up due `wait` after `elapsed` (both measured from one process-wide epoch) up to
/// the next point of a grid of `wait / 64`, at most 16 ms: a thousand checkers on a 1 s interval
/// then wake the runtime about 64 times a second instead of a thousand, at the cost of at most
/// 16 ms of lateness. Short waits (tests, fastinter) are barely moved. Returns the new wait.
pub fn coalesce(elapsed: Duration, wait: Duration) -> Duration {
    let grid = (wait / 64).min(MAX_GRID).as_micros();
    if grid < 1_000 {
        return wait;
    }
    let due = elapsed.as_micros() + wait.as_micros();
    let aligned = due.div_ceil(grid) * grid;
    Duration::from_micros(u64::try_from(aligned - elapsed.as_micros()).unwrap_or(u64::MAX))
}

/// A random delay in `[0, inter)` before a checker's first probe, so a thousand servers started
/// together do not all connect in the same millisecond.
pub fn initial_offset(inter: Duration, random: u64) -> Duration {
    let us = inter.as_micros();
    if us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(u64::try_from(u128::from(random) % us).unwrap_or(0))
}

/// xorshift64*: a cheap generator, plenty for spreading timers (not for anything secret).
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// A zero seed would stick at zero, so it is replaced.
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// Seeded from std's per-process random hasher keys plus a name and the clock, so checkers of
    /// different servers and different runs diverge without a `rand` dependency.
    pub fn from_entropy(name: &str) -> Self {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        name.hash(&mut h);
        std::time::SystemTime::now().hash(&mut h);
        Self::new(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTER: Duration = Duration::from_millis(2000);
    const FAST: Duration = Duration::from_millis(500);
    const DOWN: Duration = Duration::from_millis(5000);

    #[test]
    fn interval_follows_state() {
        assert_eq!(base_interval(HealthState::Up, INTER, FAST, DOWN), INTER);
        assert_eq!(base_interval(HealthState::Down, INTER, FAST, DOWN), DOWN);
        assert_eq!(base_interval(HealthState::GoingDown { fails: 1 }, INTER, FAST, DOWN), FAST);
        assert_eq!(base_interval(HealthState::GoingUp { oks: 2 }, INTER, FAST, DOWN), FAST);
    }

    #[test]
    fn no_spread_means_exact_interval() {
        for r in [0, 1, 12345, u64::MAX] {
            assert_eq!(jitter(INTER, 0, r), INTER);
        }
    }

    #[test]
    fn spread_stays_within_percent_and_reaches_both_ends() {
        // 2000 ms at 3 %: 60 ms either way = 60_000 µs, window of 120_001 values.
        assert_eq!(jitter(INTER, 3, 0), Duration::from_millis(1940));
        assert_eq!(jitter(INTER, 3, 120_000), Duration::from_millis(2060));
        assert_eq!(jitter(INTER, 3, 60_000), INTER);
        let mut rng = Prng::new(7);
        for _ in 0..10_000 {
            let d = jitter(INTER, 3, rng.next_u64());
            assert!(d >= Duration::from_millis(1940) && d <= Duration::from_millis(2060), "{d:?}");
        }
    }

    #[test]
    fn spread_is_capped_at_fifty_percent() {
        assert_eq!(jitter(INTER, 90, 0), Duration::from_millis(1000));
        assert_eq!(jitter(INTER, 255, 2_000_000), Duration::from_millis(3000));
    }

    #[test]
    fn coalesce_aligns_long_waits_on_a_grid() {
        let ms = Duration::from_millis;
        // 1 s wait: grid of 15.625 ms → 16 ms cap is not reached; due 1003 ms → 1015.625 ms.
        assert_eq!(coalesce(ms(3), ms(1000)), Duration::from_micros(1_012_625));
        // Two checkers due within one grid step wake together.
        let a = ms(10) + coalesce(ms(10), ms(1000));
        let b = ms(14) + coalesce(ms(14), ms(1000));
        assert_eq!(a, b);
        // Never earlier, never more than one grid step later.
        for e in (0..5000).step_by(7) {
            let w = coalesce(ms(e), ms(2000));
            assert!(w >= ms(2000) && w <= ms(2016), "{e}: {w:?}");
        }
        // Short waits are left alone.
        assert_eq!(coalesce(ms(3), ms(50)), ms(50));
    }

    #[test]
    fn jitter_never_returns_zero() {
        assert_eq!(jitter(Duration::ZERO, 0, 5), Duration::from_micros(1));
        assert!(jitter(Duration::from_micros(2), 50, 0) > Duration::ZERO);
    }

    #[test]
    fn initial_offset_is_within_inter() {
        assert_eq!(initial_offset(INTER, 0), Duration::ZERO);
        assert_eq!(initial_offset(INTER, 2_000_000), Duration::ZERO);
        assert_eq!(initial_offset(INTER, 1_999_999), Duration::from_micros(1_999_999));
        assert_eq!(initial_offset(Duration::ZERO, 42), Duration::ZERO);
    }

    #[test]
    fn offsets_spread_over_the_interval() {
        // 1000 checkers' first probes land in all ten tenths of the interval.
        let mut rng = Prng::from_entropy("b/s");
        let mut buckets = [0u32; 10];
        for _ in 0..1000 {
            let d = initial_offset(INTER, rng.next_u64());
            assert!(d < INTER);
            buckets[(d.as_millis() / 200) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 40), "{buckets:?}");
    }

    #[test]
    fn prng_never_sticks_and_differs_by_seed() {
        let mut a = Prng::new(0);
        let first = a.next_u64();
        assert_ne!(first, 0);
        assert_ne!(a.next_u64(), first);
        assert_ne!(Prng::new(1).next_u64(), Prng::new(2).next_u64());
    }
}
