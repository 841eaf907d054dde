//! When a 2.6 node (re)connects to a peer (peers.md §10), as pure arithmetic on `now` (ms).
//!
//! - An attempt is up to 4 connects 1 s apart (the peers proxy's 3 retries); a new attempt
//!   starts 5 s after the previous one started.
//! - After a session was lost or dropped as dead, the next attempt waits a random 50-2050 ms, so
//!   two nodes that drop each other at once do not reconnect in lockstep.

/// Gap between the connects of one attempt.
pub const RETRY_MS: u64 = 1000;
/// Connects per attempt.
pub const CONNECTS_PER_ATTEMPT: u64 = 4;
/// From the start of one attempt to the start of the next.
pub const ATTEMPT_MS: u64 = 5000;

/// Connect times of the attempt starting at `start`.
pub fn attempt(start: u64) -> impl Iterator<Item = u64> {
    (0..CONNECTS_PER_ATTEMPT).map(move |i| start + i * RETRY_MS)
}

/// Start of the next attempt when every connect of the one started at `start` was refused.
pub fn next_attempt(start: u64) -> u64 {
    start + ATTEMPT_MS
}

/// Start of the next attempt after a session ended at `now`; `random` is any random number.
pub fn after_lost_session(now: u64, random: u32) -> u64 {
    now + 50 + u64::from(random % 2000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::pcap;

    /// Capture 01: hapA alone, its connects to hapB (port 18902) refused at 0, 1, 2, 3, then 5, 6 s.
    #[test]
    fn refused_connects_follow_the_captured_rhythm() {
        let conns = pcap::connections("01_resync_full.pcap");
        let refused: Vec<f64> =
            conns.iter().filter(|c| c.server.port() == 18902 && c.refused).map(|c| c.start).collect();
        assert_eq!(refused.len(), 6, "{refused:?}");
        let t0 = refused[0];
        let mut want: Vec<u64> = attempt(0).collect();
        want.extend(attempt(next_attempt(0)).take(2));
        for (got, want) in refused.iter().zip(&want) {
            let got_ms = ((got - t0) * 1000.0).round() as i64;
            assert!((got_ms - *want as i64).abs() <= 20, "connect at {got_ms} ms, expected {want}");
        }
    }

    #[test]
    fn lost_session_delay_is_50_to_2050_ms() {
        assert_eq!(after_lost_session(10_000, 0), 10_050);
        assert_eq!(after_lost_session(10_000, 1999), 12_049);
        assert_eq!(after_lost_session(10_000, u32::MAX), 10_050 + u64::from(u32::MAX % 2000));
        assert_eq!(attempt(7).collect::<Vec<_>>(), [7, 1007, 2007, 3007]);
    }
}
