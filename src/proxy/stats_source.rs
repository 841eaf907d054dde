//! What the stats listener reads of the running proxy (`stats::Source`), so `stats` does not
//! import the proxy.

use super::Active;
use std::sync::atomic::Ordering::Relaxed;

impl crate::stats::Source for Active {
    fn generation(&self) -> u64 {
        self.generation
    }
    fn snap(&self) -> &crate::config::snapshot::Snapshot {
        &self.snap
    }
    fn rt(&self) -> &crate::state::Attached {
        &self.rt
    }
    fn log_dropped(&self) -> u64 {
        self.logger.dropped.load(Relaxed)
    }
}
