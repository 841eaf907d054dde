//! HAProxy's frequency counters (`freq_ctr`, 2.6 `freq_ctr.h` / `freq_ctr.c`), behind every
//! `*_rate(P)` stick-table type, and its sliding-window averages (`swrate_*`). Everything takes
//! `now` in milliseconds on a wrapping 32-bit clock, like HAProxy's `now_ms`, so identical event
//! times give identical readings.
//!
//! A counter keeps the events of the current period and of the previous one. Reading it weighs the
//! previous period by the part of it still inside the sliding window:
//! `rate = (prev × remaining + curr × period) / period`, where `remaining` is what is left of the
//! current period. At very low rates (no event in the current period, at most one in the previous)
//! the previous count is reported whole, HAProxy's "flapping correction".

use super::entry::Rate;

/// One counter. Period starts are kept even: HAProxy uses bit 0 as a lock and clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FreqCtr {
    /// Start of the current period (ms clock).
    pub curr_tick: u32,
    pub curr_ctr: u32,
    pub prev_ctr: u32,
}

impl FreqCtr {
    /// Adds `inc` events at `now` and returns the count of the current period. When the period
    /// has passed it rotates: the next period starts one period later, or at `now` (and the
    /// previous count is forgotten) when two or more periods went by.
    pub fn update(&mut self, now: u32, period: u32, inc: u32) -> u32 {
        if now.wrapping_sub(self.curr_tick) < period {
            self.curr_ctr = self.curr_ctr.wrapping_add(inc);
            return self.curr_ctr;
        }
        self.prev_ctr = self.curr_ctr;
        self.curr_ctr = inc;
        let mut tick = self.curr_tick.wrapping_add(period);
        if now.wrapping_sub(tick) >= period {
            self.prev_ctr = 0;
            tick = now;
        }
        self.curr_tick = tick & !1;
        inc
    }

    /// Events over the sliding window scaled by `period` (HAProxy's `freq_ctr_total`). `pend`
    /// adds events about to happen; `None` (HAProxy's -1) enables the flapping correction.
    pub fn total(&self, now: u32, period: u32, pend: Option<u32>) -> u64 {
        let mut curr = u64::from(self.curr_ctr);
        let mut past = u64::from(self.prev_ctr);
        let mut remain = self.curr_tick.wrapping_add(period).wrapping_sub(now) as i32;
        if remain < 0 {
            // Past the current period: part of it may still count as the previous one.
            remain = (remain as u32).wrapping_add(period) as i32;
            past = if remain >= 0 { curr } else { 0 };
            curr = 0;
        }
        let pend = match pend {
            Some(p) => u64::from(p),
            None if curr == 0 && past <= 1 => return past.wrapping_mul(u64::from(period)),
            None => 0,
        };
        past.wrapping_mul(i64::from(remain) as u64).wrapping_add((curr + pend).wrapping_mul(u64::from(period)))
    }

    /// Events per `period` over the sliding window (`read_freq_ctr_period`): what `conn_rate(P)`,
    /// `sc_http_req_rate` and `show table` report. A zero period reads 0.
    pub fn read(&self, now: u32, period: u32) -> u32 {
        if period == 0 {
            return 0;
        }
        (self.total(now, period, None) / u64::from(period)) as u32
    }

    /// Events still allowed this window under a limit of `freq` per period (`freq_ctr_remain_period`).
    pub fn remain(&self, now: u32, period: u32, freq: u32, pend: u32) -> u32 {
        if period == 0 {
            return freq;
        }
        let avg = (self.total(now, period, Some(pend)) / u64::from(period)) as u32;
        freq - avg.min(freq)
    }

    /// Milliseconds to wait before one more event fits under `freq` per period
    /// (`next_event_delay_period`); 0 when it fits now.
    pub fn next_event_delay(&self, now: u32, period: u32, freq: u32, pend: u32) -> u32 {
        let total = self.total(now, period, Some(pend));
        let limit = u64::from(freq) * u64::from(period);
        if total < limit {
            return 0;
        }
        let wait = ((total - limit) / u64::from(freq.max(1))) as u32;
        wait.max(1)
    }

    /// The snapshot a peer update carries: ms since the period start, both counts.
    pub fn to_wire(&self, now: u32) -> Rate {
        Rate {
            elapsed: u64::from(now.wrapping_sub(self.curr_tick)),
            curr: u64::from(self.curr_ctr),
            prev: u64::from(self.prev_ctr),
        }
    }

    /// A counter rebuilt from a peer's snapshot as a 2.6 receiver does: the period start is
    /// `now − elapsed` (never 0, HAProxy's "eternity" tick; bit 0 cleared); counts truncated to
    /// 32 bits.
    pub fn from_wire(now: u32, r: &Rate) -> FreqCtr {
        let mut tick = now.wrapping_sub(r.elapsed as u32);
        if tick == 0 {
            tick = 1;
        }
        FreqCtr { curr_tick: tick & !1, curr_ctr: r.curr as u32, prev_ctr: r.prev as u32 }
    }
}

/// Adds `v` to a sliding sum over `n` samples, dropping one average sample (`swrate_add`).
pub fn swrate_add(sum: u32, n: u32, v: u32) -> u32 {
    sum.wrapping_sub(sum.wrapping_add(n).wrapping_sub(1) / n).wrapping_add(v)
}

/// As [`swrate_add`] for a window still filling up; `n` may be 0 (`swrate_add_dynamic`).
pub fn swrate_add_dynamic(sum: u32, n: u32, v: u32) -> u32 {
    let drop = sum.wrapping_add(n).wrapping_sub(1).checked_div(n).unwrap_or(0);
    sum.wrapping_sub(drop).wrapping_add(v)
}

/// Adds `v` as if it were `s` samples (`swrate_add_scaled`).
pub fn swrate_add_scaled(sum: u32, n: u32, v: u32, s: u32) -> u32 {
    let drop = (u64::from(sum.wrapping_add(n)) * u64::from(s) / u64::from(n)) as u32;
    sum.wrapping_add(v.wrapping_mul(s)).wrapping_sub(drop)
}

/// The average a sliding sum over `n` samples stands for, rounded up (`swrate_avg`).
pub fn swrate_avg(sum: u32, n: u32) -> u32 {
    sum.wrapping_add(n).wrapping_sub(1) / n
}

#[cfg(test)]
#[path = "freq_tests.rs"]
mod tests;
