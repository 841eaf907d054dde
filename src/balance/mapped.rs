//! `hash-type map-based`: HAProxy's server map (`lb_map.c`). Weights are divided by the GCD of
//! the configured weights, then an array as long as their sum is filled by a smooth weighted
//! interleave that favours the first declared server; a key's hash modulo the array's length
//! names the server.

/// The GCD of the non-zero configured weights (1 when there are none), HAProxy's `wmult`.
pub(super) fn weight_gcd(weights: impl IntoIterator<Item = u32>) -> u32 {
    let mut gcd = 0u32;
    for w in weights.into_iter().filter(|&w| w > 0) {
        let (mut a, mut b) = (gcd, w);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        gcd = a;
    }
    gcd.max(1)
}

/// The map for these `(index, runtime weight)` candidates, each weight scaled down by `gcd`
/// rounding up (HAProxy's effective weight).
pub(super) fn build(cands: &[(usize, u32)], gcd: u32) -> Box<[usize]> {
    let eweights: Vec<i64> = cands.iter().map(|&(_, w)| i64::from(w.div_ceil(gcd))).collect();
    let tot: i64 = eweights.iter().sum();
    if tot == 1 {
        return cands.iter().zip(&eweights).filter(|(_, w)| **w > 0).map(|((i, _), _)| *i).take(1).collect();
    }
    let mut score = vec![0i64; cands.len()];
    let mut map = Vec::with_capacity(usize::try_from(tot).unwrap_or(0));
    for _ in 0..tot {
        let mut best: Option<(usize, i64)> = None;
        for (k, &w) in eweights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            score[k] += w;
            // Between 0 and 3; strictly greater keeps the first declared on ties.
            let v = (score[k] + tot) / tot;
            if best.is_none_or(|(_, max)| v > max) {
                best = Some((k, v));
            }
        }
        let Some((k, _)) = best else { break };
        score[k] -= tot;
        map.push(cands[k].0);
    }
    map.into()
}

/// The server at `hash % len`; `avoid` (a redispatch) takes the next different entry instead,
/// where HAProxy would give the same server again.
pub(super) fn lookup(map: &[usize], hash: u32, avoid: Option<usize>) -> Option<usize> {
    if map.is_empty() {
        return None;
    }
    let at = hash as usize % map.len();
    (0..map.len()).map(|k| map[(at + k) % map.len()]).find(|&i| Some(i) != avoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcd_of_configured_weights() {
        assert_eq!(weight_gcd([4, 8, 0, 12]), 4);
        assert_eq!(weight_gcd([3, 5]), 1);
        assert_eq!(weight_gcd([0, 0]), 1);
        assert_eq!(weight_gcd([]), 1);
    }

    #[test]
    fn map_interleaves_by_weight_first_declared_first() {
        // Stepped through HAProxy's recalc_server_map (C's truncating division).
        assert_eq!(&*build(&[(0, 1), (1, 1), (2, 1)], 1), &[0, 1, 2]);
        assert_eq!(&*build(&[(0, 2), (1, 1)], 1), &[0, 0, 1]);
        assert_eq!(&*build(&[(0, 1), (1, 2)], 1), &[0, 1, 1]);
        assert_eq!(&*build(&[(0, 3), (5, 1)], 1), &[0, 0, 0, 5]);
        // Weights 20 and 10 divide by their GCD to 2 and 1.
        assert_eq!(&*build(&[(0, 20), (1, 10)], 10), &[0, 0, 1]);
        // A runtime weight that the GCD does not divide rounds up.
        assert_eq!(&*build(&[(0, 20), (1, 5)], 10), &[0, 0, 1]);
        assert_eq!(&*build(&[(3, 1)], 1), &[3]);
        assert!(build(&[], 1).is_empty());
    }

    #[test]
    fn lookup_is_modulo_and_avoid_moves_on() {
        let map = [0, 1, 0];
        assert_eq!(lookup(&map, 4, None), Some(1));
        assert_eq!(lookup(&map, 5, None), Some(0));
        assert_eq!(lookup(&map, 5, Some(0)), Some(1));
        assert_eq!(lookup(&map, 4, Some(1)), Some(0));
        assert_eq!(lookup(&[2, 2], 1, Some(2)), None);
        assert_eq!(lookup(&[], 1, None), None);
    }
}
