//! A scripted [`ServerState`] for the unit tests.

use super::{Request, Selector, ServerSpec, ServerState};

#[derive(Debug, Clone)]
pub(super) struct Fake {
    pub up: Vec<bool>,
    pub conns: Vec<u32>,
    pub weight: Vec<u32>,
    pub full: Vec<bool>,
}

impl Fake {
    /// Every server up, idle, at its configured weight.
    pub fn from_specs(specs: &[ServerSpec]) -> Fake {
        Fake {
            up: vec![true; specs.len()],
            conns: vec![0; specs.len()],
            weight: specs.iter().map(|s| s.weight).collect(),
            full: vec![false; specs.len()],
        }
    }
}

impl ServerState for Fake {
    fn usable(&self, idx: usize) -> bool {
        self.up.get(idx).copied().unwrap_or(false)
    }
    fn conns(&self, idx: usize) -> u32 {
        self.conns.get(idx).copied().unwrap_or(0)
    }
    fn weight(&self, idx: usize) -> u32 {
        self.weight.get(idx).copied().unwrap_or(0)
    }
    fn full(&self, idx: usize) -> bool {
        self.full.get(idx).copied().unwrap_or(false)
    }
}

pub(super) fn normal(weights: &[u32]) -> Vec<ServerSpec> {
    weights.iter().map(|&weight| ServerSpec { weight, backup: false, maxconn: None }).collect()
}

pub(super) fn backup(weight: u32) -> ServerSpec {
    ServerSpec { weight, backup: true, maxconn: None }
}

/// How many times each server was picked in `n` picks of an empty request.
pub(super) fn counts(sel: &Selector, state: &Fake, n: usize) -> Vec<usize> {
    let mut c = vec![0; state.up.len()];
    for _ in 0..n {
        if let Some(i) = sel.pick(&Request::default(), state) {
            c[i] += 1;
        }
    }
    c
}

/// Asserts `got` is within `tol` (a fraction) of `want`.
pub(super) fn near(got: usize, want: f64, tol: f64) {
    let (g, lo, hi) = (got as f64, want * (1.0 - tol), want * (1.0 + tol));
    assert!(g >= lo && g <= hi, "{got} not within {tol} of {want}");
}
