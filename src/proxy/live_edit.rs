//! Runtime server changes applied to the live snapshot in place of a reload: only the changed
//! backend is rebuilt, every other part of [`Active`] is shared with the one it replaces, so the
//! cost of `add server` does not grow with the size of the configuration.

use super::{Active, Proxy, pool_for};
use crate::config::snapshot::Backend;
use std::sync::Arc;

impl Proxy {
    /// Serves backend `bi` as `grown`, which is the live backend with one server appended.
    /// Connections are not told of a reload: nothing they hold has changed. The caller (the serve
    /// loop) is the only writer of `active`, so nothing is lost between load and store.
    pub fn add_server(&self, bi: usize, grown: Backend) -> Arc<Active> {
        let old = self.active.load_full();
        let mut snap = (*old.snap).clone();
        let grown = Arc::new(grown);
        snap.backends[bi] = grown.clone();
        let mut rt = old.rt.clone();
        let mut pools = old.pools.clone();
        if let Some(s) = grown.servers.last() {
            rt.backends[bi].servers.push(self.registry.attach_server(&grown, s));
            let mut pmap = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            let mut fresh = std::collections::HashMap::new();
            let pool = pool_for(&pmap, &mut fresh, &grown, s);
            pmap.extend(fresh);
            pools[bi].push(pool);
        }
        let a = Arc::new(Active {
            generation: old.generation,
            snap: Arc::new(snap),
            rt,
            pools,
            binds: old.binds.clone(),
            fe_limits: old.fe_limits.clone(),
            logger: old.logger.clone(),
            fe_loggers: old.fe_loggers.clone(),
        });
        self.active.store(a.clone());
        a
    }
}
