//! Traffic history for the console's charts: per frontend and backend, a fixed ring of one-second
//! slots (15 minutes) of request rate, 4xx and 5xx rates, response-time percentiles and active
//! connections, sampled from the proxy's counters. Memory is fixed: [`SLOTS`] slots per series and
//! at most [`MAX_SERIES`] series, however long a page stays open.

use crate::proxy::Active;
use crate::state::{Counters, TIME_BUCKETS};
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

/// One slot per second for 15 minutes.
pub const SLOTS: usize = 900;
/// Series kept at most (frontends first, then backends, in config order); the rest are not charted.
pub const MAX_SERIES: usize = 128;
/// A percentile with no response in its second.
pub const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub req: u32,
    pub e4: u32,
    pub e5: u32,
    pub conns: u32,
    /// Upper bounds in milliseconds of the buckets holding the 50th, 95th and 99th percentiles.
    pub p50: u32,
    pub p95: u32,
    pub p99: u32,
}

/// A fixed ring of slots; pushing past [`SLOTS`] overwrites the oldest.
#[derive(Debug, Clone)]
pub struct Ring {
    slots: Box<[Slot]>,
    /// Where the next slot goes.
    head: usize,
    len: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Ring { slots: vec![Slot::default(); SLOTS].into_boxed_slice(), head: 0, len: 0 }
    }
}

impl Ring {
    pub fn push(&mut self, s: Slot) {
        self.slots[self.head] = s;
        self.head = (self.head + 1) % SLOTS;
        self.len = (self.len + 1).min(SLOTS);
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        let start = (self.head + SLOTS - self.len) % SLOTS;
        (0..self.len).map(move |i| &self.slots[(start + i) % SLOTS])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The upper bound (ms) of the bucket holding the `q` quantile of `hist`; [`NONE`] when empty.
/// Bucket `i` holds times below `2^i` ms ([`crate::state::time_bucket`]).
pub fn percentile(hist: &[u64; TIME_BUCKETS], q: f64) -> u32 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return NONE;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return 1u32 << i;
        }
    }
    1u32 << (TIME_BUCKETS - 1)
}

/// Cumulative counter values at the last sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub responses: u64,
    pub sessions: u64,
    pub e4: u64,
    pub e5: u64,
    pub conns: u32,
    pub times: [u64; TIME_BUCKETS],
}

impl Reading {
    pub fn of(c: &Counters) -> Reading {
        Reading {
            responses: c.http_responses.iter().map(|a| a.load(Relaxed)).sum(),
            sessions: c.total_sessions.load(Relaxed),
            e4: c.http_responses[3].load(Relaxed),
            e5: c.http_responses[4].load(Relaxed),
            conns: c.cur_sessions.load(Relaxed),
            times: std::array::from_fn(|i| c.resp_times[i].load(Relaxed)),
        }
    }

    /// The slot for the second between `prev` and `self`. Requests are HTTP responses, or
    /// sessions for a proxy that never answered HTTP (TCP mode). Counters that went back (a
    /// reload that renamed and reused a name) count as zero.
    pub fn slot_since(&self, prev: &Reading) -> Slot {
        let d = |a: u64, b: u64| a.saturating_sub(b).min(u32::MAX as u64) as u32;
        let req = if self.responses > 0 { d(self.responses, prev.responses) } else { d(self.sessions, prev.sessions) };
        let hist: [u64; TIME_BUCKETS] = std::array::from_fn(|i| self.times[i].saturating_sub(prev.times[i]));
        Slot {
            req,
            e4: d(self.e4, prev.e4),
            e5: d(self.e5, prev.e5),
            conns: self.conns,
            p50: percentile(&hist, 0.50),
            p95: percentile(&hist, 0.95),
            p99: percentile(&hist, 0.99),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Frontend,
    Backend,
}

#[derive(Debug)]
pub struct Series {
    pub side: Side,
    pub name: String,
    pub ring: Ring,
    last: Reading,
}

/// Every charted series.
#[derive(Debug, Default)]
pub struct Traffic {
    pub series: Vec<Series>,
}

impl Traffic {
    /// One sample of every frontend and backend. Series follow the config: a new proxy starts an
    /// empty ring, a removed one is dropped, a kept one (same side and name) keeps its history.
    pub fn sample(&mut self, now: &[(Side, &str, Reading)]) {
        let mut old = std::mem::take(&mut self.series);
        for &(side, name, reading) in now.iter().take(MAX_SERIES) {
            let s = match old.iter().position(|s| s.side == side && s.name == name) {
                Some(i) => {
                    let mut s = old.swap_remove(i);
                    s.ring.push(reading.slot_since(&s.last));
                    s.last = reading;
                    s
                }
                // The first reading is the baseline: no slot for the time before it.
                None => Series { side, name: name.to_string(), ring: Ring::default(), last: reading },
            };
            self.series.push(s);
        }
    }

    /// The JSON of `show traffic`: per series, columns oldest first (one value a second).
    pub fn json(&self, only: Option<&str>) -> serde_json::Value {
        let series: Vec<serde_json::Value> = self
            .series
            .iter()
            .filter(|s| only.is_none_or(|n| n == s.name))
            .map(|s| {
                let col = |f: fn(&Slot) -> u32| -> Vec<serde_json::Value> {
                    s.ring
                        .iter()
                        .map(|x| match f(x) {
                            NONE => serde_json::Value::Null,
                            v => v.into(),
                        })
                        .collect()
                };
                serde_json::json!({
                    "side": s.side,
                    "name": s.name,
                    "req": col(|x| x.req),
                    "e4": col(|x| x.e4),
                    "e5": col(|x| x.e5),
                    "conns": col(|x| x.conns),
                    "p50_ms": col(|x| x.p50),
                    "p95_ms": col(|x| x.p95),
                    "p99_ms": col(|x| x.p99),
                })
            })
            .collect();
        serde_json::json!({ "interval_s": 1, "slots": SLOTS, "series": series })
    }

    /// `show traffic` as text: the last second and the 15-minute peak of each series.
    pub fn text(&self, only: Option<&str>) -> String {
        let mut out = String::from("# side name req/s 4xx/s 5xx/s conns p50_ms p95_ms p99_ms peak_req/s\n");
        for s in self.series.iter().filter(|s| only.is_none_or(|n| n == s.name)) {
            let last = s.ring.iter().last().copied().unwrap_or_default();
            let peak = s.ring.iter().map(|x| x.req).max().unwrap_or(0);
            let p = |v: u32| if v == NONE || s.ring.is_empty() { "-".to_string() } else { v.to_string() };
            let side = match s.side {
                Side::Frontend => "frontend",
                Side::Backend => "backend",
            };
            out.push_str(&format!(
                "{side} {} {} {} {} {} {} {} {} {peak}\n",
                s.name,
                last.req,
                last.e4,
                last.e5,
                last.conns,
                p(last.p50),
                p(last.p95),
                p(last.p99)
            ));
        }
        out
    }
}

/// The process's history; `None` until the console starts sampling (only with `[console]`).
static TRAFFIC: Mutex<Option<Traffic>> = Mutex::new(None);

fn readings(active: &Active) -> Vec<(Side, &str, Reading)> {
    let fr = active
        .snap
        .frontends
        .iter()
        .zip(&active.rt.frontends)
        .map(|(f, c)| (Side::Frontend, f.name.as_str(), Reading::of(c)));
    let br = active
        .snap
        .backends
        .iter()
        .zip(&active.rt.backends)
        .map(|(b, rt)| (Side::Backend, b.name.as_str(), Reading::of(&rt.counters)));
    fr.chain(br).collect()
}

/// Samples every second until the task is aborted.
pub async fn run(proxy: std::sync::Arc<crate::proxy::Proxy>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let active = proxy.active.load();
        let now = readings(&active);
        let mut t = TRAFFIC.lock().unwrap_or_else(|p| p.into_inner());
        t.get_or_insert_with(Traffic::default).sample(&now);
    }
}

/// `show traffic [NAME]`: Err when no console samples traffic in this daemon.
pub fn reply(only: Option<&str>) -> Result<(String, serde_json::Value), String> {
    let t = TRAFFIC.lock().unwrap_or_else(|p| p.into_inner());
    match t.as_ref() {
        Some(t) => Ok((t.text(only), t.json(only))),
        None => Err("No traffic history: it is kept only when a [console] is configured.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_wraps_and_keeps_the_last_slots_in_order() {
        let mut r = Ring::default();
        assert!(r.is_empty());
        for i in 0..(SLOTS as u32 + 10) {
            r.push(Slot { req: i, ..Slot::default() });
        }
        assert_eq!(r.len(), SLOTS);
        let v: Vec<u32> = r.iter().map(|s| s.req).collect();
        assert_eq!(v[0], 10);
        assert_eq!(*v.last().unwrap(), SLOTS as u32 + 9);
        assert!(v.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn percentiles_from_buckets() {
        let mut h = [0u64; TIME_BUCKETS];
        assert_eq!(percentile(&h, 0.5), NONE);
        // 90 responses under 1 ms, 9 in [8, 16) ms, 1 at 16 s or more.
        h[0] = 90;
        h[4] = 9;
        h[TIME_BUCKETS - 1] = 1;
        assert_eq!(percentile(&h, 0.50), 1);
        assert_eq!(percentile(&h, 0.95), 16);
        assert_eq!(percentile(&h, 0.99), 16);
        assert_eq!(percentile(&h, 1.0), 1 << (TIME_BUCKETS - 1));
        assert_eq!(crate::state::time_bucket(0), 0);
        assert_eq!(crate::state::time_bucket(1), 1);
        assert_eq!(crate::state::time_bucket(7), 3);
        assert_eq!(crate::state::time_bucket(8), 4);
        assert_eq!(crate::state::time_bucket(u64::MAX), TIME_BUCKETS - 1);
    }

    #[test]
    fn samples_follow_the_config_and_count_differences() {
        let r = |responses, e5, conns| Reading { responses, e5, conns, ..Reading::default() };
        let mut t = Traffic::default();
        t.sample(&[(Side::Frontend, "fe", r(100, 1, 3)), (Side::Backend, "be", r(0, 0, 0))]);
        assert!(t.series.iter().all(|s| s.ring.is_empty()), "the first reading is only a baseline");
        t.sample(&[(Side::Frontend, "fe", r(130, 4, 2)), (Side::Backend, "be", r(0, 0, 0))]);
        let fe = &t.series[0];
        assert_eq!(
            fe.ring.iter().last().copied().unwrap(),
            Slot { req: 30, e5: 3, conns: 2, p50: NONE, p95: NONE, p99: NONE, e4: 0 }
        );
        // `be` removed, `new` added, `fe` kept with its history; a counter going back counts 0.
        t.sample(&[(Side::Backend, "new", r(5, 0, 0)), (Side::Frontend, "fe", r(10, 0, 0))]);
        assert_eq!(t.series.len(), 2);
        assert_eq!(t.series[1].name, "fe");
        assert_eq!(t.series[1].ring.len(), 2);
        assert_eq!(t.series[1].ring.iter().last().unwrap().req, 0);
        let j = t.json(Some("fe"));
        assert_eq!(j["series"].as_array().unwrap().len(), 1);
        assert_eq!(j["series"][0]["side"], "frontend");
        assert_eq!(j["series"][0]["req"], serde_json::json!([30, 0]));
        assert_eq!(j["series"][0]["p50_ms"], serde_json::json!([null, null]));
        assert_eq!(j["slots"], SLOTS);
    }

    #[test]
    fn series_are_capped() {
        let names: Vec<String> = (0..MAX_SERIES + 5).map(|i| format!("b{i}")).collect();
        let now: Vec<_> = names.iter().map(|n| (Side::Backend, n.as_str(), Reading::default())).collect();
        let mut t = Traffic::default();
        t.sample(&now);
        assert_eq!(t.series.len(), MAX_SERIES);
    }
}
