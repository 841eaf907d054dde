//! Expected values worked out by hand from HAProxy 2.6's freq_ctr arithmetic (period 10 s as in
//! the captures' `conn_rate(10000)`).

use super::*;

const P: u32 = 10_000;

#[test]
fn a_fresh_counter_starts_its_period_at_the_first_event() {
    let mut c = FreqCtr::default();
    assert_eq!(c.update(1_000_001, P, 1), 1);
    // Two or more periods since tick 0: the period starts now, bit 0 cleared.
    assert_eq!(c, FreqCtr { curr_tick: 1_000_000, curr_ctr: 1, prev_ctr: 0 });
    assert_eq!(c.update(1_004_000, P, 1), 2);
    assert_eq!(c.read(1_004_000, P), 2);
    // Before the first 2 periods of the clock the start is tick 0 + period.
    let mut early = FreqCtr::default();
    early.update(15_000, P, 1);
    assert_eq!(early.curr_tick, 10_000);
}

#[test]
fn the_previous_period_fades_out_over_the_window() {
    let mut c = FreqCtr::default();
    for _ in 0..10 {
        c.update(100_000, P, 1);
    }
    // Next period: 4 events at +12 s. Rotation keeps the period grid (start 110000).
    c.update(112_000, P, 4);
    assert_eq!(c, FreqCtr { curr_tick: 110_000, curr_ctr: 4, prev_ctr: 10 });
    // 2 s into the period: 8 s of the previous one remain. (10*8000 + 4*10000) / 10000 = 12.
    assert_eq!(c.read(112_000, P), 12);
    assert_eq!(c.total(112_000, P, None), 120_000);
    // 7.5 s in: (10*2500 + 4*10000) / 10000 = 6.5 -> 6.
    assert_eq!(c.read(117_500, P), 6);
    // Past the period with no event: curr becomes the previous, weighed by what is left.
    // now=125000: remain = 120000-125000 = -5000, +10000 = 5000: (4*5000)/10000 = 2.
    assert_eq!(c.read(125_000, P), 2);
    // Two full periods later: nothing.
    assert_eq!(c.read(130_001, P), 0);
}

#[test]
fn low_rates_do_not_flap() {
    let mut c = FreqCtr::default();
    c.update(50_000, P, 1);
    // One event in the previous window, none in the current: reported whole, not weighed.
    assert_eq!(c.read(59_999, P), 1);
    assert_eq!(c.read(65_000, P), 1);
    assert_eq!(c.total(65_000, P, None), u64::from(P));
    // With pend given the correction is off: 1 * (60000-65000+10000=5000) + 0 = 5000.
    assert_eq!(c.total(65_000, P, Some(0)), 5_000);
    // Two events do get weighed: 2*5000/10000 = 1.
    c.update(50_100, P, 1);
    assert_eq!(c.read(65_000, P), 1);
    assert_eq!(c.read(67_000, P), 0);
}

#[test]
fn missing_two_periods_forgets_the_previous_count() {
    let mut c = FreqCtr::default();
    c.update(100_000, P, 7);
    c.update(125_001, P, 1);
    assert_eq!(c, FreqCtr { curr_tick: 125_000, curr_ctr: 1, prev_ctr: 0 });
}

#[test]
fn the_clock_may_wrap() {
    let start = u32::MAX - 3_000;
    let mut c = FreqCtr { curr_tick: start & !1, curr_ctr: 0, prev_ctr: 0 };
    c.update(start, P, 3);
    assert_eq!(c.update(start.wrapping_add(5_000), P, 1), 4, "still the same period across the wrap");
    assert_eq!(c.read(start.wrapping_add(5_000), P), 4);
    c.update(start.wrapping_add(12_000), P, 1);
    assert_eq!(c.curr_tick, (start & !1).wrapping_add(P));
    assert_eq!(c.prev_ctr, 4);
}

#[test]
fn limits_remaining_and_delay() {
    let mut c = FreqCtr::default();
    c.update(200_000, P, 8);
    assert_eq!(c.remain(200_000, P, 10, 0), 2);
    assert_eq!(c.remain(200_000, P, 5, 0), 0);
    assert_eq!(c.next_event_delay(200_000, P, 10, 0), 0);
    // 8 events + 3 pending against 10 per period: (110000 - 100000) / 10 = 1000 ms.
    assert_eq!(c.next_event_delay(200_000, P, 10, 3), 1000);
    assert_eq!(c.next_event_delay(200_000, P, 8, 0), 1, "at the limit: wait at least 1 ms");
}

/// The wire snapshot of capture 01 #14 (127.0.0.11: 6169 ms into the period, 2, 0) rebuilt by a
/// receiver reads 2, as hapB's `show table` printed `conn_rate(10000)=2`.
#[test]
fn wire_snapshots_round_trip() {
    let snap = Rate { elapsed: 6169, curr: 2, prev: 0 };
    let now = 7_000_000;
    let c = FreqCtr::from_wire(now, &snap);
    assert_eq!(c.curr_tick, 6_993_830);
    assert_eq!(c.read(now, P), 2);
    assert_eq!(c.to_wire(now), Rate { elapsed: 6170, curr: 2, prev: 0 }, "bit 0 cleared: one ms older");
    // A never-started counter carries the raw clock; rebuilt, it lies two periods back: reads 0.
    let idle = FreqCtr::from_wire(now, &Rate { elapsed: u64::from(now), curr: 0, prev: 0 });
    assert_eq!(idle.curr_tick, 0);
    assert_eq!(idle.read(now, P), 0);
    // Tick 0 is HAProxy's "eternity": a start that lands on it becomes 1, then even again (0).
    assert_eq!(FreqCtr::from_wire(5, &Rate { elapsed: 5, curr: 1, prev: 0 }).curr_tick, 0);
    // Counts are 32-bit on the receiver.
    assert_eq!(FreqCtr::from_wire(now, &Rate { elapsed: 0, curr: (1 << 32) + 3, prev: 0 }).curr_ctr, 3);
}

#[test]
fn sliding_window_averages() {
    // swrate over 8 samples: feed 100 eight times into an empty sum.
    let mut sum = 0;
    for _ in 0..8 {
        sum = swrate_add(sum, 8, 100);
    }
    // 100, 100+100-13=187, 187-24+100=263, 263-33+100=330, 330-42+100=388, 388-49+100=439,
    // 439-55+100=484, 484-61+100=523.
    assert_eq!(sum, 523);
    assert_eq!(swrate_avg(sum, 8), 66);
    assert_eq!(swrate_add_dynamic(50, 0, 7), 57);
    assert_eq!(swrate_add_dynamic(50, 5, 7), 47);
    // scaled: 100 + 10*4 - (100+8)*4/8 = 140 - 54 = 86.
    assert_eq!(swrate_add_scaled(100, 8, 10, 4), 86);
}
