//! Runs every configured VRRP instance and script checker for the daemon; reconciles them on
//! reload (unchanged instances keep running, and keep their state and VIPs), and hands them over to
//! the next process on a binary upgrade without a priority-0 advert.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::fsm::State;
use super::instance::{self, Deps, GroupFaults, InstanceStatus, Running};
use super::track::{self, ScriptHandle};
use super::{LiveFn, VrrpError};
use crate::config::Snapshot;
use crate::config::vrrp::{VrrpInstance, VrrpSettings};
use crate::net::sysctl;

/// Upper bound on one instance's clean stop (priority-0 advert, VIP removal).
const STOP_LIMIT: Duration = Duration::from_secs(3);

/// Names one virtual router across processes: the same name on the same interface and VRID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct InstanceKey {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
}

impl InstanceKey {
    fn of(cfg: &VrrpInstance) -> InstanceKey {
        InstanceKey { name: cfg.name.clone(), interface: cfg.interface.clone(), vrid: cfg.vrid }
    }
}

/// An instance the next process will run, with the VIPs it will hold (`ADDR/PREFIX dev IFNAME`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Successor {
    pub key: InstanceKey,
    pub vips: BTreeSet<String>,
}

/// The instances of `snap`, as the next process tells the running one.
pub fn successors(snap: &Snapshot) -> Vec<Successor> {
    snap.vrrp.instances.iter().map(|c| Successor { key: InstanceKey::of(c), vips: instance::vip_keys(c) }).collect()
}

/// An instance's role at the moment it was handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub key: InstanceKey,
    pub state: State,
}

pub struct Manager {
    live: LiveFn,
    instances: Vec<Running>,
    scripts: HashMap<String, ScriptHandle>,
    groups: HashMap<String, Arc<GroupFaults>>,
}

impl Manager {
    /// Sets the sysctls and starts every instance of `snap` (none configured: nothing happens).
    /// Must run inside the tokio runtime.
    pub fn start(snap: &Snapshot, live: LiveFn) -> Result<Manager, VrrpError> {
        let mut m = Manager { live, instances: Vec::new(), scripts: HashMap::new(), groups: HashMap::new() };
        m.apply(&snap.vrrp, &HashMap::new())?;
        Ok(m)
    }

    /// Starts like [`Manager::start`], but an instance named in `states` continues in the role the
    /// previous process handed over (a master keeps its VIPs and advertises at once). If one fails
    /// to start, the others stop again the same quiet way, so the previous process can take back
    /// exactly what it handed over.
    pub async fn start_as(snap: &Snapshot, live: LiveFn, states: &[HandedOver]) -> Result<Manager, VrrpError> {
        let mut m = Manager { live, instances: Vec::new(), scripts: HashMap::new(), groups: HashMap::new() };
        let by_key: HashMap<InstanceKey, State> = states.iter().map(|h| (h.key.clone(), h.state)).collect();
        if let Err(e) = m.apply(&snap.vrrp, &by_key) {
            let keep: Vec<Successor> = m
                .instances
                .iter()
                .filter(|r| by_key.contains_key(&InstanceKey::of(&r.cfg)))
                .map(|r| Successor { key: InstanceKey::of(&r.cfg), vips: instance::vip_keys(&r.cfg) })
                .collect();
            m.handover(&keep).await;
            return Err(e);
        }
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
        self.apply(new, &HashMap::new())
    }

    /// Starts what `settings` has and is not running yet; those in `states` in a handed-over role.
    fn apply(&mut self, settings: &VrrpSettings, states: &HashMap<InstanceKey, State>) -> Result<(), VrrpError> {
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
            sysctl::set_promote_secondaries(&cfg.interface).map_err(VrrpError::Sysctl)?;
            let taken_over = states.get(&InstanceKey::of(cfg)).copied();
            let running = instance::spawn(cfg.clone(), self.deps(cfg), taken_over)?;
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
            let faults =
                self.groups.entry(g.clone()).or_insert_with(|| Arc::new(watch::channel(BTreeSet::new()).0)).clone();
            (g.clone(), faults)
        });
        Deps { live: self.live.clone(), scripts, group }
    }

    /// Binary upgrade: instances the next process runs too (`next`) stop without a priority-0 advert
    /// and keep the VIPs it will hold; the others stop cleanly (priority 0, VIPs removed). Returns
    /// the role of each handed-over instance, for [`Manager::start_as`] in the next process.
    pub async fn handover(&mut self, next: &[Successor]) -> Vec<HandedOver> {
        let all = std::mem::take(&mut self.instances);
        let stops = all.into_iter().map(|r| async move {
            let key = InstanceKey::of(&r.cfg);
            match next.iter().find(|s| s.key == key) {
                Some(s) => r.hand_over(s.vips.clone(), STOP_LIMIT).await.map(|state| HandedOver { key, state }),
                None => {
                    tracing::info!(instance = %key.name, "vrrp instance not in the new process: stopping it");
                    r.shutdown(STOP_LIMIT).await;
                    None
                }
            }
        });
        let handed = futures::future::join_all(stops).await.into_iter().flatten().collect();
        for (_, h) in self.scripts.drain() {
            h.stop();
        }
        handed
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
