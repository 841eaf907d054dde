//! Runtime server changes applied to the live snapshot in place of a reload: only the changed
//! backend is rebuilt, every other part of [`Active`] is shared with the one it replaces, so the
//! cost of `add server` does not grow with the size of the configuration.

use super::{Active, Proxy, pool_for};
use crate::config::snapshot::Backend;
use std::sync::Arc;

impl Proxy {
    /// Serves backend `bi` as `next`, which is the live backend with server `si` changed (or
    /// appended, when `si` is one past the live ones). Connections are not told of a reload:
    /// nothing they hold has changed. The caller (the serve loop) is the only writer of `active`,
    /// so nothing is lost between load and store.
    pub fn swap_server(&self, bi: usize, si: usize, next: Backend) -> Arc<Active> {
        let old = self.active.load_full();
        let mut snap = (*old.snap).clone();
        let next = Arc::new(next);
        snap.backends[bi] = next.clone();
        let mut rt = old.rt.clone();
        let mut pools = old.pools.clone();
        if let Some(s) = next.servers.get(si) {
            // The registry keeps a server's entry by name: the same one, given the new settings.
            let srt = self.registry.attach_server(&next, s);
            let mut pmap = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            let mut fresh = std::collections::HashMap::new();
            let pool = pool_for(&pmap, &mut fresh, &next, s);
            pmap.extend(fresh);
            let (brt, bpools) = (&mut rt.backends[bi], &mut pools[bi]);
            if si < brt.servers.len() {
                brt.servers[si] = srt;
                brt.no_addr[si] = s.unresolved;
                bpools[si] = pool;
            } else {
                brt.servers.push(srt);
                brt.no_addr.push(s.unresolved);
                bpools.push(pool);
            }
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
            be_loggers: old.be_loggers.clone(),
        });
        self.active.store(a.clone());
        a
    }
}
