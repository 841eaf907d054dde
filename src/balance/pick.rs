//! The non-hashing algorithms.

use super::{Selector, View};
use std::sync::atomic::Ordering::Relaxed;

impl Selector {
    /// nginx-style smooth weighted round robin: interleaves (a,a,b,a for 3:1) and follows runtime
    /// weight changes at the next pick.
    pub(super) fn smooth_rr(&self, group: &[usize], v: &View<'_>) -> Option<usize> {
        let mut cw = self.smooth.lock().unwrap_or_else(|p| p.into_inner());
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for &i in group {
            if !v.eligible(i) {
                continue;
            }
            let w = v.state.weight(i) as i64;
            cw[i] += w;
            total += w;
            if best.is_none_or(|b| cw[i] > cw[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        cw[b] -= total;
        Some(b)
    }

    /// Weighted rotation on configured weights (HAProxy's static-rr ignores runtime changes).
    pub(super) fn static_rr(&self, group: &[usize], v: &View<'_>) -> Option<usize> {
        let total: u64 = group
            .iter()
            .filter(|&&i| v.eligible(i))
            .map(|&i| self.specs[i].weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let mut at = self.counter.fetch_add(1, Relaxed) % total;
        for &i in group.iter().filter(|&&i| v.eligible(i)) {
            let w = self.specs[i].weight as u64;
            if at < w {
                return Some(i);
            }
            at -= w;
        }
        None
    }

    /// Fewest connections per unit of weight; ties rotate so equal servers share the load.
    pub(super) fn least_conn(&self, group: &[usize], v: &View<'_>) -> Option<usize> {
        let n = group.len();
        let offset = self.counter.fetch_add(1, Relaxed) as usize;
        let mut best: Option<(usize, u64, u64)> = None;
        for k in 0..n {
            let i = group[(offset + k) % n];
            if !v.eligible(i) {
                continue;
            }
            let (c, w) = (v.state.conns(i) as u64, v.state.weight(i) as u64);
            // c/w < bc/bw  <=>  c*bw < bc*w
            if best.is_none_or(|(_, bc, bw)| c * bw < bc * w) {
                best = Some((i, c, w));
            }
        }
        best.map(|b| b.0)
    }

    /// The first server (in config order) with a free connection slot; when all are full, the
    /// least loaded one.
    pub(super) fn first(&self, group: &[usize], v: &View<'_>) -> Option<usize> {
        group
            .iter()
            .copied()
            .filter(|&i| v.eligible(i))
            .find(|&i| self.specs[i].maxconn.is_none_or(|m| v.state.conns(i) < m))
            .or_else(|| self.least_conn(group, v))
    }

    /// Power of `draws` choices: weighted random candidates, keep the least loaded.
    pub(super) fn random(&self, group: &[usize], v: &View<'_>, draws: u32) -> Option<usize> {
        let total: u64 = group
            .iter()
            .filter(|&&i| v.eligible(i))
            .map(|&i| v.state.weight(i) as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<(usize, u64, u64)> = None;
        for _ in 0..draws.max(1) {
            let mut at = self.next_random() % total;
            let Some(i) = group.iter().copied().filter(|&i| v.eligible(i)).find(|&i| {
                let w = v.state.weight(i) as u64;
                if at < w {
                    true
                } else {
                    at -= w;
                    false
                }
            }) else {
                continue;
            };
            let (c, w) = (v.state.conns(i) as u64, v.state.weight(i) as u64);
            if best.is_none_or(|(_, bc, bw)| c * bw < bc * w) {
                best = Some((i, c, w));
            }
        }
        best.map(|b| b.0)
    }

    /// xorshift64*: cheap, lock-free, good enough to spread load.
    fn next_random(&self) -> u64 {
        let mut x = self.rng.load(Relaxed);
        loop {
            let mut n = x;
            n ^= n >> 12;
            n ^= n << 25;
            n ^= n >> 27;
            match self.rng.compare_exchange_weak(x, n, Relaxed, Relaxed) {
                Ok(_) => return n.wrapping_mul(0x2545_f491_4f6c_dd1d),
                Err(cur) => x = cur,
            }
        }
    }
}
