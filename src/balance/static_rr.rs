//! `static-rr`: weighted rotation on the configured weights. HAProxy's static-rr ignores
//! runtime weight changes (a runtime weight of 0 still drains the server), so it gets its own
//! smooth round robin state fed the configured weights. A server configured with weight 0 that
//! an operator enabled at runtime counts as weight 1, so it is never usable yet unpickable.

use super::roundrobin::SmoothRoundRobin;
use super::{Candidates, ServerSpec};

#[derive(Debug)]
pub(super) struct StaticRr {
    rr: SmoothRoundRobin,
}

impl StaticRr {
    pub(super) fn new(servers: usize) -> StaticRr {
        StaticRr { rr: SmoothRoundRobin::new(servers) }
    }

    pub(super) fn pick(&self, c: &Candidates<'_>, specs: &[ServerSpec]) -> Option<usize> {
        self.rr.pick_weighted(c, |i, _| specs.get(i).map_or(1, |s| s.weight.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, counts, normal};
    use super::super::{Algorithm, HashType, Selector};

    #[test]
    fn rotates_by_configured_weight() {
        let specs = normal(&[3, 1]);
        let s = Selector::new(&Algorithm::StaticRr, HashType::map_based(), &specs, false);
        let f = Fake::from_specs(&specs);
        assert_eq!(counts(&s, &f, 400), [300, 100]);
    }

    #[test]
    fn ignores_runtime_weight_except_zero() {
        let specs = normal(&[1, 1, 1]);
        let s = Selector::new(&Algorithm::StaticRr, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        f.weight[0] = 200;
        assert_eq!(counts(&s, &f, 300), [100, 100, 100]);
        f.weight[2] = 0;
        f.up[1] = false;
        assert_eq!(counts(&s, &f, 30), [30, 0, 0]);
    }

    #[test]
    fn configured_zero_weight_counts_as_one_once_enabled() {
        let specs = normal(&[0, 2]);
        let s = Selector::new(&Algorithm::StaticRr, HashType::map_based(), &specs, false);
        let mut f = Fake::from_specs(&specs);
        assert_eq!(counts(&s, &f, 10), [0, 10]);
        f.weight[0] = 5;
        assert_eq!(counts(&s, &f, 30), [10, 20]);
    }
}
