//! A lookup table (the map-based array, the consistent-hash tree) built for one set of
//! candidate weights and kept until the weights change: picks read it under a shared lock and
//! allocate nothing; a health flip or a `set weight` rebuilds it at the next pick, as HAProxy
//! recomputes its map or requeues a server's tree nodes. A server reaching its `maxconn` is no
//! change: it stays in the table, as in HAProxy.
//!
//! One thread builds the table for a change; threads that see the same change meanwhile wait for
//! it and take it rather than each building its own.

use super::Candidates;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug)]
pub(super) struct Cache<T> {
    slot: RwLock<Option<Arc<Built<T>>>>,
    /// Held while a table is built, so one change is built once.
    building: Mutex<()>,
    /// Tables built so far.
    builds: AtomicU64,
}

#[derive(Debug)]
pub(super) struct Built<T> {
    /// `(index, runtime weight)` of every candidate the table was built from, in index order.
    weights: Box<[(usize, u32)]>,
    pub table: T,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache { slot: RwLock::new(None), building: Mutex::new(()), builds: AtomicU64::new(0) }
    }
}

impl<T> Cache<T> {
    /// The table for `c`'s candidates (`c` must not avoid anyone), built by `build` when none
    /// matches them.
    pub(super) fn get(&self, c: &Candidates<'_>, build: impl FnOnce(&[(usize, u32)]) -> T) -> Arc<Built<T>> {
        if let Some(b) = self.current(c) {
            return b;
        }
        let _one_builder = self.building.lock().unwrap_or_else(|e| e.into_inner());
        // Another thread may have built it while this one waited.
        if let Some(b) = self.current(c) {
            return b;
        }
        let weights: Box<[(usize, u32)]> = c.iter().collect();
        let built = Arc::new(Built { table: build(&weights), weights });
        self.builds.fetch_add(1, Relaxed);
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(built.clone());
        built
    }

    /// How many tables have been built.
    #[cfg(test)]
    pub(super) fn builds(&self) -> u64 {
        self.builds.load(Relaxed)
    }

    fn current(&self, c: &Candidates<'_>) -> Option<Arc<Built<T>>> {
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().filter(|b| same(&b.weights, c)).cloned()
    }
}

fn same(weights: &[(usize, u32)], c: &Candidates<'_>) -> bool {
    let mut now = c.iter();
    weights.iter().all(|&w| now.next() == Some(w)) && now.next().is_none()
}
