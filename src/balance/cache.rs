//! A lookup table (the map-based array, the consistent-hash tree) built for one set of
//! candidate weights and kept until the weights change: picks read it under a shared lock and
//! allocate nothing; a health flip or a `set weight` rebuilds it at the next pick, as HAProxy
//! recomputes its map or requeues a server's tree nodes.

use super::Candidates;
use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub(super) struct Cache<T> {
    slot: RwLock<Option<Arc<Built<T>>>>,
}

#[derive(Debug)]
pub(super) struct Built<T> {
    /// `(index, runtime weight)` of every candidate the table was built from, in index order.
    weights: Box<[(usize, u32)]>,
    pub table: T,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache { slot: RwLock::new(None) }
    }
}

impl<T> Cache<T> {
    /// The table for `c`'s candidates (`c` must not avoid anyone), built by `build` when none
    /// matches them.
    pub(super) fn get(&self, c: &Candidates<'_>, build: impl FnOnce(&[(usize, u32)]) -> T) -> Arc<Built<T>> {
        if let Some(b) = self.slot.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && same(&b.weights, c)
        {
            return b.clone();
        }
        let weights: Box<[(usize, u32)]> = c.iter().collect();
        let built = Arc::new(Built { table: build(&weights), weights });
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(built.clone());
        built
    }
}

fn same(weights: &[(usize, u32)], c: &Candidates<'_>) -> bool {
    let mut now = c.iter();
    weights.iter().all(|&w| now.next() == Some(w)) && now.next().is_none()
}
