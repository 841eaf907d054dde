//! `roundrobin`: nginx's smooth weighted round robin over the runtime weights.
//!
//! Each pick adds every candidate's weight to its running score, takes the highest score and
//! subtracts the round's total from it. Weights 5:1:1 give `a a b a c a a`: the heavy server's
//! turns are spread out instead of bunched, and a weight changed at runtime applies at the next
//! pick. The scores live in one `Mutex` held for a single pass over the tier.

use super::Candidates;
use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub(super) struct SmoothRoundRobin {
    /// Running score per server index.
    scores: Mutex<Box<[i64]>>,
}

impl SmoothRoundRobin {
    pub(super) fn new(servers: usize) -> SmoothRoundRobin {
        SmoothRoundRobin { scores: Mutex::new(vec![0; servers].into_boxed_slice()) }
    }

    /// Weighted by the runtime weights.
    pub(super) fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        self.pick_weighted(c, |_, runtime| runtime)
    }

    /// Weighted by `weight(index, runtime_weight)`; a result of 0 leaves the server out.
    pub(super) fn pick_weighted(&self, c: &Candidates<'_>, weight: impl Fn(usize, u32) -> u32) -> Option<usize> {
        // A panic elsewhere while holding the lock cannot leave the scores inconsistent in a
        // way that matters: any values converge back to the right proportions.
        let mut scores = self.scores.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, runtime) in c.iter() {
            let w = i64::from(weight(i, runtime));
            let Some(score) = scores.get_mut(i).filter(|_| w > 0) else {
                continue;
            };
            *score += w;
            total += w;
            if best.is_none_or(|(_, b)| *score > b) {
                best = Some((i, *score));
            }
        }
        let (i, _) = best?;
        if let Some(score) = scores.get_mut(i) {
            *score -= total;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, backup, counts, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector};

    fn sel(weights: &[u32]) -> (Selector, Fake) {
        let specs = normal(weights);
        (Selector::new(&Algorithm::RoundRobin, HashType::map_based(), &specs, false), Fake::from_specs(&specs))
    }

    fn sequence(s: &Selector, f: &Fake, n: usize) -> Vec<usize> {
        (0..n).filter_map(|_| s.pick(&Request::default(), f)).collect()
    }

    #[test]
    fn interleaves_like_nginx() {
        let (s, f) = sel(&[5, 1, 1]);
        assert_eq!(sequence(&s, &f, 7), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(sequence(&s, &f, 7), [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn equal_weights_alternate() {
        let (s, f) = sel(&[1, 1, 1]);
        assert_eq!(sequence(&s, &f, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_three_to_one_are_exact() {
        let (s, f) = sel(&[3, 1]);
        assert_eq!(counts(&s, &f, 400), [300, 100]);
        let (s, f) = sel(&[256, 100, 1]);
        assert_eq!(counts(&s, &f, 357 * 4), [256 * 4, 100 * 4, 4]);
    }

    #[test]
    fn follows_runtime_weight_changes() {
        let (s, mut f) = sel(&[1, 1]);
        assert_eq!(counts(&s, &f, 100), [50, 50]);
        f.weight[1] = 3;
        let c = counts(&s, &f, 400);
        near(c[0], 100.0, 0.02);
        near(c[1], 300.0, 0.01);
        f.weight[0] = 0;
        assert_eq!(counts(&s, &f, 50), [0, 50]);
    }

    #[test]
    fn skips_down_and_zero_weight_servers() {
        let (s, mut f) = sel(&[1, 1, 1, 1]);
        f.up[1] = false;
        f.weight[2] = 0;
        let c = counts(&s, &f, 100);
        assert_eq!(c, [50, 0, 0, 50]);
    }

    #[test]
    fn balances_all_backups_with_allbackups() {
        let mut specs = normal(&[1]);
        specs.extend([backup(1), backup(2)]);
        let s = Selector::new(&Algorithm::RoundRobin, HashType::map_based(), &specs, true);
        let mut f = Fake::from_specs(&specs);
        f.up[0] = false;
        assert_eq!(counts(&s, &f, 300), [0, 100, 200]);
    }
}
