//! `random(draws)`: power of N choices. Draw `draws` servers at random, each with probability
//! proportional to its runtime weight, and keep the least loaded. Two draws already avoid most
//! hot spots without the shared state leastconn needs; draws beyond the number of candidates add
//! nothing, so they are capped there.

use super::{Candidates, Load};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 over an atomic counter: lock-free, one `fetch_add` per number.
#[derive(Debug)]
pub(super) struct Rng {
    state: AtomicU64,
}

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng { state: AtomicU64::new(seed) }
    }

    pub(super) fn next_u64(&self) -> u64 {
        let z = self.state.fetch_add(GOLDEN_GAMMA, Relaxed).wrapping_add(GOLDEN_GAMMA);
        mix64(z)
    }

    /// Uniform in `[0, bound)` by multiply-shift (no modulo bias worth the name); `bound > 0`.
    pub(super) fn below(&self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that differs between selectors and between runs.
pub(super) fn seed_from_clock() -> u64 {
    static SELECTORS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ mix64(SELECTORS.fetch_add(1, Relaxed))
}

pub(super) fn pick(c: &Candidates<'_>, rng: &Rng, draws: u32) -> Option<usize> {
    let (total, n) = c.totals();
    if total == 0 {
        return None;
    }
    let draws = (draws.max(1) as usize).min(n);
    let mut best: Option<(usize, Load)> = None;
    for _ in 0..draws {
        let Some(i) = c.by_cumulative_weight(rng.below(total)) else {
            continue;
        };
        let Some(w) = c.weight(i) else { continue };
        let load = Load::of(c.state, i, w);
        if best.is_none_or(|(_, b)| load.lighter_than(b)) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, counts, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector};
    use super::Rng;

    fn sel(draws: u32, weights: &[u32], seed: u64) -> (Selector, Fake) {
        let specs = normal(weights);
        let s = Selector::with_seed(&Algorithm::Random { draws }, HashType::map_based(), &specs, false, seed);
        (s, Fake::from_specs(&specs))
    }

    #[test]
    fn rng_is_uniform_enough() {
        let rng = Rng::new(7);
        let mut buckets = [0usize; 10];
        for _ in 0..100_000 {
            buckets[rng.below(10) as usize] += 1;
        }
        for b in buckets {
            near(b, 10_000.0, 0.05);
        }
    }

    #[test]
    fn single_draw_follows_weights() {
        let (s, f) = sel(1, &[3, 1], 42);
        let c = counts(&s, &f, 40_000);
        near(c[0], 30_000.0, 0.03);
        near(c[1], 10_000.0, 0.06);
    }

    #[test]
    fn equal_servers_share_evenly() {
        let (s, f) = sel(2, &[1, 1, 1, 1], 3);
        for c in counts(&s, &f, 40_000) {
            near(c, 10_000.0, 0.05);
        }
    }

    #[test]
    fn two_draws_prefer_the_less_loaded() {
        let (s, mut f) = sel(2, &[1, 1], 9);
        f.conns = vec![10, 0];
        let c = counts(&s, &f, 10_000);
        // Server 0 wins only when both draws land on it: about 1/4.
        near(c[0], 2_500.0, 0.1);
        // One draw ignores load.
        let (s, mut f) = sel(1, &[1, 1], 9);
        f.conns = vec![10, 0];
        near(counts(&s, &f, 10_000)[0], 5_000.0, 0.05);
    }

    #[test]
    fn never_picks_unusable() {
        let (s, mut f) = sel(2, &[1, 1, 1], 5);
        f.up[1] = false;
        f.weight[2] = 0;
        assert_eq!(counts(&s, &f, 1000), [1000, 0, 0]);
        f.up[0] = false;
        assert_eq!(s.pick(&Request::default(), &f), None);
    }

    #[test]
    fn huge_draw_counts_are_capped() {
        let (s, f) = sel(u32::MAX, &[1, 1], 1);
        assert!(s.pick(&Request::default(), &f).is_some());
    }

    #[test]
    fn clock_seeds_differ() {
        assert_ne!(super::seed_from_clock(), super::seed_from_clock());
    }
}
