//! An instance's `virtual_routes` and `virtual_rules`: added after the VIPs when it becomes MASTER
//! (a route may use a VIP as `src`), removed before them when it leaves MASTER or stops. As for
//! VIPs, a failure is logged and counted and the others still go on.

use super::Runner;

impl Runner {
    pub(super) async fn add_routes(&mut self) {
        if self.cfg.routes.is_empty() && self.cfg.rules.is_empty() {
            return;
        }
        let nl = self.vip.routes();
        let mut failed = 0;
        for r in &self.cfg.routes {
            if let Err(e) = nl.add_route(r).await {
                tracing::error!(instance = %self.cfg.name, "virtual_routes: {e}");
                failed += 1;
            }
        }
        for r in &self.cfg.rules {
            if let Err(e) = nl.add_rule(r).await {
                tracing::error!(instance = %self.cfg.name, "virtual_rules: {e}");
                failed += 1;
            }
        }
        if failed > 0 {
            self.with_status(|s| s.counters.vip_errors += failed);
        }
    }

    pub(super) async fn del_routes(&mut self) {
        if self.cfg.routes.is_empty() && self.cfg.rules.is_empty() {
            return;
        }
        let nl = self.vip.routes();
        for r in &self.cfg.rules {
            if let Err(e) = nl.del_rule(r).await {
                tracing::error!(instance = %self.cfg.name, "virtual_rules: {e}");
            }
        }
        for r in &self.cfg.routes {
            if let Err(e) = nl.del_route(r).await {
                tracing::error!(instance = %self.cfg.name, "virtual_routes: {e}");
            }
        }
    }
}
