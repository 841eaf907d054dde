//! `first`: fill servers in index order. The first candidate below its `maxconn` takes the
//! connection, so the others can be idle (or powered down) until load spills over. Without a
//! `maxconn` the first candidate takes everything. When every candidate is full, the one least
//! loaded relative to its `maxconn` is used; the caller's own `maxconn` enforcement decides
//! whether the connection then waits.

use super::{Candidates, ServerSpec};

/// `Some(0)` is HAProxy's "no limit".
fn limit(specs: &[ServerSpec], i: usize) -> Option<u32> {
    specs.get(i).and_then(|s| s.maxconn).filter(|&m| m > 0)
}

pub(super) fn pick(c: &Candidates<'_>, specs: &[ServerSpec]) -> Option<usize> {
    let mut least_full: Option<(usize, u64, u64)> = None;
    for (i, _) in c.iter() {
        let Some(max) = limit(specs, i) else {
            return Some(i);
        };
        let conns = c.state.conns(i);
        if conns < max {
            return Some(i);
        }
        // conns/max < best_conns/best_max, without division.
        let (conns, max) = (u64::from(conns), u64::from(max));
        if least_full.is_none_or(|(_, bc, bm)| conns * bm < bc * max) {
            least_full = Some((i, conns, max));
        }
    }
    least_full.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, normal};
    use super::super::{Algorithm, HashType, Request, Selector, ServerSpec};

    fn specs(maxconn: &[Option<u32>]) -> Vec<ServerSpec> {
        maxconn.iter().map(|&maxconn| ServerSpec { weight: 1, backup: false, maxconn }).collect()
    }

    #[test]
    fn fills_in_index_order() {
        let specs = specs(&[Some(2), Some(3), Some(1)]);
        let s = Selector::new(&Algorithm::First, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        let mut order = Vec::new();
        for _ in 0..6 {
            let i = s.pick(&Request::default(), &f).unwrap();
            f.conns[i] += 1;
            order.push(i);
        }
        assert_eq!(order, [0, 0, 1, 1, 1, 2]);
        // A connection closing on the first server sends the next one back there.
        f.conns[0] -= 1;
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
    }

    #[test]
    fn without_maxconn_the_first_usable_takes_all() {
        let specs = normal(&[1, 1, 1]);
        let s = Selector::new(&Algorithm::First, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        f.conns = vec![1000, 0, 0];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
        f.up[0] = false;
        assert_eq!(s.pick(&Request::default(), &f), Some(1));
        f.weight[1] = 0;
        assert_eq!(s.pick(&Request::default(), &f), Some(2));
    }

    #[test]
    fn zero_maxconn_means_unlimited() {
        let specs = specs(&[Some(0), Some(5)]);
        let s = Selector::new(&Algorithm::First, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        f.conns = vec![100, 0];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
    }

    #[test]
    fn all_full_uses_least_loaded() {
        let specs = specs(&[Some(2), Some(10)]);
        let s = Selector::new(&Algorithm::First, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        f.conns = vec![4, 12];
        assert_eq!(s.pick(&Request::default(), &f), Some(1));
        f.conns = vec![2, 30];
        assert_eq!(s.pick(&Request::default(), &f), Some(0));
    }

    #[test]
    fn avoiding_moves_to_the_next() {
        let specs = specs(&[Some(2), Some(2)]);
        let s = Selector::new(&Algorithm::First, HashType::map_based(), &specs, false);
        let f = Fake::from_specs(&specs);
        assert_eq!(s.pick_avoiding(&Request::default(), &f, 0), Some(1));
    }
}
