//! `leastconn`: the candidate with the lowest `(conns + 1) / weight`. The scan starts one place
//! further each pick so servers with equal load take turns instead of the first one taking all
//! ties (which matters when connections are short and loads are often all zero).

use super::{Candidates, Load};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(super) struct LeastConn {
    start: AtomicUsize,
}

impl LeastConn {
    pub(super) fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let n = c.members.len();
        if n == 0 {
            return None;
        }
        let start = self.start.fetch_add(1, Relaxed) % n;
        let (tail, head) = c.members.split_at(start);
        let mut best: Option<(usize, Load)> = None;
        for &i in head.iter().chain(tail) {
            let Some(w) = c.weight(i) else { continue };
            let load = Load::of(c.state, i, w);
            if best.is_none_or(|(_, b)| load.lighter_than(b)) {
                best = Some((i, load));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, counts, normal};
    use super::super::{Algorithm, HashType, Request, Selector};

    fn sel(weights: &[u32]) -> (Selector, Fake) {
        let specs = normal(weights);
        (Selector::new(&Algorithm::LeastConn, HashType::map_based(), &specs, false), Fake::from_specs(&specs))
    }

    #[test]
    fn picks_fewest_connections() {
        let (s, mut f) = sel(&[1, 1, 1]);
        f.conns = vec![5, 2, 9];
        for _ in 0..10 {
            assert_eq!(s.pick(&Request::default(), &f), Some(1));
        }
    }

    #[test]
    fn weighs_connections() {
        // 6/3 = 2 beats 3/1 = 3 even with more connections.
        let (s, mut f) = sel(&[3, 1]);
        f.conns = vec![5, 2];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
        // Idle servers: the heavier one is preferred.
        f.conns = vec![0, 0];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
    }

    #[test]
    fn ties_rotate() {
        let (s, f) = sel(&[1, 1, 1, 1]);
        assert_eq!(counts(&s, &f, 400), [100, 100, 100, 100]);
    }

    #[test]
    fn filling_up_tracks_weights() {
        // Open a connection on each pick and never close: connections end up 3:1.
        let (s, mut f) = sel(&[3, 1]);
        for _ in 0..400 {
            let i = s.pick(&Request::default(), &f).unwrap();
            f.conns[i] += 1;
        }
        assert!(f.conns[0].abs_diff(300) <= 1, "{:?}", f.conns);
    }

    #[test]
    fn skips_unusable_and_avoided() {
        let (s, mut f) = sel(&[1, 1, 1]);
        f.conns = vec![0, 1, 2];
        f.up[0] = false;
        assert_eq!(s.pick(&Request::default(), &f), Some(1));
        assert_eq!(s.pick_avoiding(&Request::default(), &f, 1), Some(2));
    }

    #[test]
    fn survives_extreme_counts() {
        let (s, mut f) = sel(&[256, 1]);
        f.conns = vec![u32::MAX, u32::MAX - 1];
        f.weight = vec![u32::MAX, 1];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
    }
}
