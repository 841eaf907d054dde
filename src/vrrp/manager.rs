//! Runs every configured VRRP instance and script checker for the daemon; reconciles them on
//! reload (unchanged instances keep running, and keep their state and VIPs).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::instance::{self, Deps, InstanceStatus, Running, SyncGroup};
use super::track::{self, ScriptHandle};
use super::{LiveFn, VrrpError};
use crate::config::Snapshot;
use crate::config::vrrp::{VrrpInstance, VrrpSettings};
use crate::net::sysctl;

/// Upper bound on one instance's clean stop (priority-0 advert, VIP removal).
const STOP_LIMIT: Duration = Duration::from_secs(3);

pub struct Manager {
    live: LiveFn,
    instances: Vec<Running>,
    scripts: HashMap<String, ScriptHandle>,
    groups: HashMap<String, Arc<SyncGroup>>,
}

impl Manager {
    /// Sets the sysctls and starts every instance of `snap` (none configured: nothing happens).
    /// Must run inside the tokio runtime.
    pub fn start(snap: &Snapshot, live: LiveFn) -> Result<Manager, VrrpError> {
        let mut m = Manager { live, instances: Vec::new(), scripts: HashMap::new(), groups: HashMap::new() };
        m.apply(&snap.vrrp)?;
        Ok(m)
    }

    /// Status of every instance, in config order.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.instances.iter().filter_map(|r| r.status.lock().ok().map(|s| s.clone())).collect()
    }

    /// Reconciles with a new snapshot: instances whose config (and tracked scripts) are unchanged
    /// keep running; changed and removed ones stop cleanly; new ones start.
    pub async fn reload(&mut self, snap: &Snapshot) -> Result<(), VrrpError> {
        let new = &snap.vrrp;
        let changed_scripts: BTreeSet<String> =
            self.scripts.iter().filter(|(name, h)| new.script(name) != Some(&h.def)).map(|(n, _)| n.clone()).collect();
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.instances) {
            let same = new.instances.contains(&r.cfg)
                && !r.cfg.track_scripts.iter().any(|t| changed_scripts.contains(&t.name));
            if same {
                keep.push(r);
            } else {
                tracing::info!(instance = %r.cfg.name, "vrrp instance changed or removed: stopping it");
                r.shutdown(STOP_LIMIT).await;
            }
        }
        for name in &changed_scripts {
            if let Some(h) = self.scripts.remove(name) {
                h.stop();
            }
        }
        self.instances = keep;
        self.apply(new)
    }

    /// Starts what `settings` has and is not running yet.
    fn apply(&mut self, settings: &VrrpSettings) -> Result<(), VrrpError> {
        if settings.instances.is_empty() {
            return Ok(());
        }
        sysctl::set_nonlocal_bind().map_err(VrrpError::Sysctl)?;
        for s in &settings.scripts {
            let used = settings.instances.iter().any(|i| i.track_scripts.iter().any(|t| t.name == s.name));
            if used && !self.scripts.contains_key(&s.name) {
                self.scripts.insert(s.name.clone(), track::spawn_script(s.clone()));
            }
        }
        let mut order = Vec::new();
        for cfg in &settings.instances {
            if let Some(pos) = self.instances.iter().position(|r| r.cfg == *cfg) {
                order.push(self.instances.swap_remove(pos));
                continue;
            }
            let running = instance::spawn(cfg.clone(), self.deps(cfg))?;
            tracing::info!(
                instance = %cfg.name,
                "vrrp instance started: {} vrid {} priority {} v{}",
                cfg.interface,
                cfg.vrid,
                cfg.priority,
                cfg.version
            );
            order.push(running);
        }
        self.instances = order;
        Ok(())
    }

    fn deps(&mut self, cfg: &VrrpInstance) -> Deps {
        let scripts = cfg
            .track_scripts
            .iter()
            .filter_map(|t| self.scripts.get(&t.name).map(|h| (t.name.clone(), h.state.clone())))
            .collect();
        let group = cfg.sync_group.as_ref().map(|g| {
            let group = self.groups.entry(g.clone()).or_insert_with(|| Arc::new(watch::channel(Default::default()).0));
            (g.clone(), group.clone())
        });
        Deps { live: self.live.clone(), scripts, group }
    }

    /// Stops every instance: a master sends priority 0 so a backup takes over after its skew time,
    /// then removes its VIPs.
    pub async fn shutdown(&mut self) {
        let all = std::mem::take(&mut self.instances);
        futures::future::join_all(all.into_iter().map(|r| r.shutdown(STOP_LIMIT))).await;
        for (_, h) in self.scripts.drain() {
            h.stop();
        }
    }
}
