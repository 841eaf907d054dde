//! HAProxy's `slowstart`: a server that has just come up (from DOWN, or out of maintenance) gets
//! a weight growing linearly from almost nothing to its full weight over the window, so a cold
//! application is not flooded with its full share at once.

use std::time::Duration;

/// The weight to use `elapsed` after the ramp started: `ceil(weight * elapsed / window)`, at
/// least 1 so the server is still chosen, and the full weight once the window has passed.
pub fn ramp_weight(weight: u32, elapsed: Duration, window: Duration) -> u32 {
    if weight == 0 || window.is_zero() || elapsed >= window {
        return weight;
    }
    let w = (u128::from(weight) * elapsed.as_nanos()).div_ceil(window.as_nanos());
    u32::try_from(w).unwrap_or(weight).clamp(1, weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(10);

    #[test]
    fn ramps_linearly_from_one_to_full() {
        assert_eq!(ramp_weight(100, Duration::ZERO, W), 1);
        assert_eq!(ramp_weight(100, Duration::from_millis(1), W), 1);
        assert_eq!(ramp_weight(100, Duration::from_secs(1), W), 10);
        assert_eq!(ramp_weight(100, Duration::from_secs(5), W), 50);
        assert_eq!(ramp_weight(100, Duration::from_millis(9_999), W), 100);
        assert_eq!(ramp_weight(100, W, W), 100);
        assert_eq!(ramp_weight(100, 3 * W, W), 100);
    }

    #[test]
    fn monotonic_and_bounded() {
        let mut prev = 0;
        for ms in (0..=10_000).step_by(250) {
            let w = ramp_weight(256, Duration::from_millis(ms), W);
            assert!(w >= prev && (1..=256).contains(&w), "{ms} ms: {w}");
            prev = w;
        }
    }

    #[test]
    fn zero_weight_or_window_is_unchanged() {
        assert_eq!(ramp_weight(0, Duration::from_secs(1), W), 0);
        assert_eq!(ramp_weight(7, Duration::ZERO, Duration::ZERO), 7);
        assert_eq!(ramp_weight(1, Duration::ZERO, W), 1);
    }
}
