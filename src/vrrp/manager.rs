//! Runs every configured VRRP instance and script checker for the daemon; reconciles them on
//! reload (unchanged instances keep running, and keep their state and VIPs), and hands them over to
//! the next process on a binary upgrade without a priority-0 advert. Owns the runtime VIP set
//! (`lbha vip add/del`): persisted under the state directory, kept across reloads, handed to each
//! instance it belongs to.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio_util::task::TaskTracker;

use super::fsm::State;
use super::instance::{self, Deps, InstanceStatus, Running, RuntimeCmd, SyncGroup, held_key};
use super::runtime::{self, RuntimeVip, RuntimeVipError, VipMatch};
use super::track::{self, ScriptHandle};
use super::{LiveFn, VrrpError};
use crate::config::Snapshot;
use crate::config::vrrp::{VipDef, VrrpInstance, VrrpSettings};
use crate::net::vip::Vip;
use crate::net::{link, sysctl};

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

/// The instances of `snap` with the VIPs they will hold, runtime ones from its `state_dir`
/// included, as the next process tells the running one (which keeps exactly those on the
/// interface).
pub fn successors(snap: &Snapshot) -> Vec<Successor> {
    // A store that cannot be read is not applied by the next process either (see Manager::new).
    let runtime = runtime::load(&snap.global.state_dir.join(runtime::FILE_NAME)).map(|l| l.vips).unwrap_or_default();
    snap.vrrp.instances.iter().map(|c| successor(c, &runtime)).collect()
}

fn successor(cfg: &VrrpInstance, runtime: &[RuntimeVip]) -> Successor {
    let mine: Vec<VipDef> = runtime.iter().filter(|r| r.instance == cfg.name).map(|r| r.vip.clone()).collect();
    Successor { key: InstanceKey::of(cfg), vips: instance::vip_keys(cfg, &mine) }
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
    groups: HashMap<String, Arc<SyncGroup>>,
    /// The configured instances, as of the last start or reload.
    configured: Vec<VrrpInstance>,
    /// Runtime VIPs, in the order they were added; the file at `store` mirrors it.
    runtime: Vec<RuntimeVip>,
    store: PathBuf,
    /// Why the file could not be read at start: changes are refused rather than overwrite it.
    store_broken: Option<String>,
    /// Notify scripts still running, so a stop waits for them (`notify_stop` above all).
    notify_scripts: TaskTracker,
    /// Sync groups whose notifies are watched, with the scripts they run.
    group_watchers: HashMap<String, (GroupNotify, tokio::task::JoinHandle<()>)>,
    /// `static_*` entries in place (`statics`).
    statics: crate::config::vrrp::Statics,
    /// Inside [`Manager::start`]: instances get their `startup_delay`.
    starting: bool,
}

use crate::config::vrrp::NotifyScripts as GroupNotify;

/// What a runtime VIP change did in one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipChange {
    pub instance: String,
    pub state: State,
    /// Added (or removed) by this change.
    pub changed: Vec<VipDef>,
    /// Already recorded just so (additions only).
    pub unchanged: Vec<VipDef>,
    /// The addresses were put on (or taken off) the interface now, as on a master; otherwise
    /// only the record changed.
    pub applied: bool,
}

/// Where a VIP comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipSource {
    Config,
    Runtime,
}

/// One VIP of `vip list`; `dev` is always filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipEntry {
    pub instance: String,
    pub vip: VipDef,
    pub source: VipSource,
    /// This node has it on the interface now.
    pub held: bool,
    /// The instance exists in the config (a runtime VIP may outlive its instance).
    pub instance_configured: bool,
}

/// One instance for `show vrrp`.
#[derive(Debug, Clone)]
pub struct InstanceReport {
    pub status: InstanceStatus,
    pub advert_int: Duration,
    pub version: u8,
    pub configured: Vec<VipDef>,
    pub runtime: Vec<VipDef>,
}

impl Manager {
    /// Sets the sysctls and starts every instance of `snap` (none configured: nothing happens).
    /// Must run inside the tokio runtime.
    pub fn start(snap: &Snapshot, live: LiveFn) -> Result<Manager, VrrpError> {
        let mut m = Manager::new(snap, live);
        m.starting = true;
        let started = m.apply(&snap.vrrp, &HashMap::new());
        m.starting = false;
        started?;
        m.start_statics(&snap.vrrp);
        Ok(m)
    }

    /// Adds the `static_*` entries (in the background: `start` is not async).
    fn start_statics(&mut self, s: &VrrpSettings) {
        self.statics = s.statics.clone();
        let new = s.statics.clone();
        tokio::spawn(async move { super::statics::update(&Default::default(), &new).await });
    }

    /// A manager with no instance running yet, its runtime VIPs loaded from the state directory.
    fn new(snap: &Snapshot, live: LiveFn) -> Manager {
        let store = snap.global.state_dir.join(runtime::FILE_NAME);
        let mut m = Manager {
            live,
            instances: Vec::new(),
            scripts: HashMap::new(),
            groups: HashMap::new(),
            configured: snap.vrrp.instances.clone(),
            runtime: Vec::new(),
            store,
            store_broken: None,
            notify_scripts: TaskTracker::new(),
            group_watchers: HashMap::new(),
            statics: Default::default(),
            starting: false,
        };
        match runtime::load(&m.store) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                }
                if !loaded.vips.is_empty() {
                    tracing::info!("{} runtime VIP(s) loaded from {}", loaded.vips.len(), m.store.display());
                }
                m.runtime = loaded.vips;
                m.hand_over_to_config();
            }
            Err(e) => {
                tracing::error!("{e}; runtime VIPs are not applied and cannot change until it is fixed");
                m.store_broken = Some(e.to_string());
            }
        }
        m.warn_orphans();
        m
    }

    /// Starts like [`Manager::start`], but an instance named in `states` continues in the role the
    /// previous process handed over (a master keeps its VIPs and advertises at once). If one fails
    /// to start, the others stop again the same quiet way, so the previous process can take back
    /// exactly what it handed over.
    pub async fn start_as(snap: &Snapshot, live: LiveFn, states: &[HandedOver]) -> Result<Manager, VrrpError> {
        let mut m = Manager::new(snap, live);
        let by_key: HashMap<InstanceKey, State> = states.iter().map(|h| (h.key.clone(), h.state)).collect();
        if let Err(e) = m.apply(&snap.vrrp, &by_key) {
            let keep: Vec<Successor> = m
                .instances
                .iter()
                .filter(|r| by_key.contains_key(&InstanceKey::of(&r.cfg)))
                .map(|r| successor(&r.cfg, &m.runtime))
                .collect();
            m.handover(&keep).await;
            return Err(e);
        }
        m.start_statics(&snap.vrrp);
        Ok(m)
    }

    /// Drops runtime VIPs that the config now lists (the config holds them once) and saves.
    /// Returns what was dropped.
    fn hand_over_to_config(&mut self) -> Vec<RuntimeVip> {
        let (kept, gone) = runtime::taken_over(&self.configured, std::mem::take(&mut self.runtime));
        self.runtime = kept;
        for g in &gone {
            tracing::info!(
                instance = %g.instance,
                "runtime VIP {} is now in the config file; the config holds it",
                runtime::vip_text(&g.vip)
            );
        }
        if !gone.is_empty()
            && self.store_broken.is_none()
            && let Err(e) = runtime::save(&self.store, &self.runtime)
        {
            tracing::error!("{e}");
        }
        gone
    }

    fn warn_orphans(&self) {
        for r in &self.runtime {
            if !self.configured.iter().any(|i| i.name == r.instance) {
                tracing::warn!(
                    "runtime VIP {} belongs to vrrp_instance {}, which is not configured: kept, not held",
                    runtime::vip_text(&r.vip),
                    r.instance
                );
            }
        }
    }

    /// Status of every instance, in config order.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.instances.iter().filter_map(|r| r.status.lock().ok().map(|s| s.clone())).collect()
    }

    /// Reconciles with a new snapshot: instances whose config (and tracked scripts) are unchanged
    /// keep running; changed and removed ones stop cleanly; new ones start.
    pub async fn reload(&mut self, snap: &Snapshot) -> Result<(), VrrpError> {
        let new = &snap.vrrp;
        // Refused before anything stops: a reload with an unsafe script changes nothing.
        super::script::configure(new).map_err(VrrpError::Script)?;
        super::alert::configure(new).map_err(VrrpError::Script)?;
        self.configured = new.instances.clone();
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
        // Kept instances never gain a configured VIP (their config is unchanged), but another
        // instance's config may now list one of their runtime VIPs.
        for g in self.hand_over_to_config() {
            if let Some(r) = self.instances.iter().find(|r| r.cfg.name == g.instance) {
                let (tx, rx) = oneshot::channel();
                if r.runtime(RuntimeCmd::Del { vips: vec![g.vip], reply: tx }).await.is_ok()
                    && let Ok(Err(e)) = rx.await
                {
                    tracing::error!(instance = %g.instance, "{e}");
                }
            }
        }
        let store = snap.global.state_dir.join(runtime::FILE_NAME);
        if store != self.store {
            tracing::info!("state_dir changed: runtime VIPs now kept in {}", store.display());
            self.store = store;
            if self.store_broken.is_none()
                && let Err(e) = runtime::save(&self.store, &self.runtime)
            {
                tracing::error!("{e}");
            }
        }
        self.warn_orphans();
        super::statics::update(&self.statics, &new.statics).await;
        self.statics = new.statics.clone();
        self.apply(new, &HashMap::new())
    }

    /// Starts what `settings` has and is not running yet; those in `states` in a handed-over role.
    fn apply(&mut self, settings: &VrrpSettings, states: &HashMap<InstanceKey, State>) -> Result<(), VrrpError> {
        if settings.instances.is_empty() {
            return Ok(());
        }
        // Instances, tracked scripts and group watchers live on the speaker's runtime, so a
        // stalled proxy never stops them (`speaker`). Dropped before this function returns.
        let _speaker = super::speaker::enter();
        super::script::configure(settings).map_err(VrrpError::Script)?;
        super::alert::configure(settings).map_err(VrrpError::Script)?;
        sysctl::set_nonlocal_bind().map_err(VrrpError::Sysctl)?;
        for f in &settings.track_files {
            init_track_file(f);
        }
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
        self.watch_groups(settings);
        Ok(())
    }

    /// Runs each sync group's notifies when the group as a whole changes state (keepalived's
    /// `notify_master|backup|fault` and `notify GROUP NAME STATE 0` in `vrrp_sync_group`).
    fn watch_groups(&mut self, settings: &VrrpSettings) {
        self.group_watchers.retain(|name, (n, h)| {
            let keep = settings.sync_groups.iter().any(|g| g.name == *name && g.notify == *n);
            if !keep {
                h.abort();
            }
            keep
        });
        for g in &settings.sync_groups {
            if g.notify == GroupNotify::default() || self.group_watchers.contains_key(&g.name) {
                continue;
            }
            let Some(group) = self.groups.get(&g.name).cloned() else { continue };
            let (name, n, tracker) = (g.name.clone(), g.notify.clone(), self.notify_scripts.clone());
            let mut rx = group.subscribe();
            let task = tokio::spawn(async move {
                let mut last = None;
                loop {
                    let now = rx.borrow_and_update().state();
                    if last != Some(now) {
                        last = Some(now);
                        let (state, specific) = match now {
                            super::sync::GroupState::Master => ("MASTER", n.master.clone()),
                            super::sync::GroupState::Backup => ("BACKUP", n.backup.clone()),
                            super::sync::GroupState::Fault => ("FAULT", n.fault.clone()),
                        };
                        tracing::info!("vrrp sync group {name} is now {state}");
                        if n.smtp_alert {
                            super::alert::send(super::alert::Kind::Group, &name, state);
                        }
                        let args = ["GROUP".to_string(), name.clone(), state.to_string(), "0".to_string()];
                        let any = n.any.clone();
                        tracker.spawn(async move {
                            if let Some(cmd) = specific {
                                super::instance::run_notify(&cmd, &[]).await;
                            }
                            if let Some(cmd) = any {
                                super::instance::run_notify(&cmd, &args).await;
                            }
                        });
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            });
            self.group_watchers.insert(g.name.clone(), (g.notify.clone(), task));
        }
    }

    /// Stops the group watchers; with `stop`, runs each group's `notify_stop`.
    fn stop_groups(&mut self, stop: bool) {
        for (name, (n, h)) in self.group_watchers.drain() {
            h.abort();
            if stop && let Some(cmd) = n.stop {
                tracing::info!("vrrp sync group {name} stops");
                self.notify_scripts.spawn(async move { super::instance::run_notify(&cmd, &[]).await });
            }
        }
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
        let runtime = self.runtime.iter().filter(|r| r.instance == cfg.name).map(|r| r.vip.clone()).collect();
        Deps {
            live: self.live.clone(),
            scripts,
            group,
            runtime,
            notify_scripts: self.notify_scripts.clone(),
            startup_delay: if self.starting { cfg.opts.startup_delay } else { Duration::ZERO },
        }
    }

    /// Adds runtime VIPs to `instance` (or the one [`runtime::choose_instance`] picks for their
    /// `dev`). All or nothing: checked against the config, the runtime set and the interfaces of
    /// this namespace, recorded, persisted, then applied at once if the instance is master.
    pub async fn add_vips(&mut self, instance: Option<&str>, vips: Vec<VipDef>) -> Result<VipChange, RuntimeVipError> {
        self.usable_store()?;
        let dev = vips.first().and_then(|v| v.dev.clone()).unwrap_or_default();
        let name = runtime::choose_instance(&self.configured, instance, &dev)?;
        let iface = self.configured.iter().find(|i| i.name == name).map(|i| i.interface.clone()).unwrap_or_default();
        let vips: Vec<VipDef> =
            vips.into_iter().map(|v| VipDef { dev: Some(v.dev.unwrap_or_else(|| iface.clone())), ..v }).collect();
        check_interfaces(&vips).await?;
        let plan = runtime::plan_add(&self.configured, &self.runtime, &name, &vips)?;
        let mut change = VipChange {
            state: self.state_of(&name),
            instance: name.clone(),
            changed: plan.new.clone(),
            unchanged: plan.present,
            applied: false,
        };
        if plan.new.is_empty() {
            return Ok(change);
        }
        let before = self.runtime.len();
        self.runtime.extend(plan.new.iter().map(|v| RuntimeVip { instance: name.clone(), vip: v.clone() }));
        if let Err(e) = self.persist().await {
            self.runtime.truncate(before);
            return Err(e);
        }
        match self.send(&name, |reply| RuntimeCmd::Add { vips: plan.new.clone(), reply }).await {
            Ok(applied) => change.applied = applied,
            Err(e) => {
                self.runtime.truncate(before);
                if let Err(undo) = self.persist().await {
                    tracing::error!("{undo}");
                }
                return Err(e);
            }
        }
        change.state = self.state_of(&name);
        Ok(change)
    }

    /// Deletes runtime VIPs: forgotten, persisted, and removed from the interface where held.
    /// All or nothing: each must be a runtime VIP (of `instance`, when named) matching `wanted`.
    pub async fn del_vips(
        &mut self,
        instance: Option<&str>,
        wanted: &[VipMatch],
    ) -> Result<Vec<VipChange>, RuntimeVipError> {
        self.usable_store()?;
        let groups = runtime::plan_del(&self.configured, &self.runtime, instance, wanted)?;
        let saved = self.runtime.clone();
        let gone: BTreeSet<IpAddr> = wanted.iter().map(|w| w.addr).collect();
        self.runtime.retain(|r| !gone.contains(&r.vip.addr));
        if let Err(e) = self.persist().await {
            self.runtime = saved;
            return Err(e);
        }
        let mut out = Vec::new();
        let mut first_err = None;
        for (name, vips) in groups {
            let running = self.instances.iter().any(|r| r.cfg.name == name);
            let applied = if running {
                match self.send(&name, |reply| RuntimeCmd::Del { vips: vips.clone(), reply }).await {
                    Ok(a) => a,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        false
                    }
                }
            } else {
                false
            };
            out.push(VipChange {
                state: self.state_of(&name),
                instance: name,
                changed: vips,
                unchanged: vec![],
                applied,
            });
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Every VIP, configured and runtime, per instance in config order, then runtime VIPs of
    /// instances no longer configured.
    /// The pair's other node resigned these instances (name, its advert source): each named one
    /// that follows it as a backup takes over at once. Returns the instances told.
    pub fn peer_resigned(&self, list: &[(String, IpAddr)]) -> Vec<String> {
        let mut told = Vec::new();
        for r in &self.instances {
            if let Some((_, src)) = list.iter().find(|(n, _)| *n == r.cfg.name)
                && r.peer_resigned(*src)
            {
                told.push(r.cfg.name.clone());
            }
        }
        told
    }

    pub fn list(&self) -> Vec<VipEntry> {
        let mut out = Vec::new();
        for rep in self.report() {
            let held: BTreeSet<&String> = rep.status.vips_held.iter().collect();
            let is_held = |v: &VipDef| {
                let dev = v.dev.as_deref().unwrap_or(&rep.status.interface);
                held.contains(&held_key(dev, &Vip { addr: v.addr, prefix: v.prefix, label: v.label.clone() }))
            };
            for (vips, source) in [(&rep.configured, VipSource::Config), (&rep.runtime, VipSource::Runtime)] {
                for v in vips {
                    out.push(VipEntry {
                        instance: rep.status.name.clone(),
                        vip: v.clone(),
                        source,
                        held: is_held(v),
                        instance_configured: true,
                    });
                }
            }
        }
        for r in self.orphans() {
            out.push(VipEntry {
                instance: r.instance.clone(),
                vip: r.vip.clone(),
                source: VipSource::Runtime,
                held: false,
                instance_configured: false,
            });
        }
        out
    }

    /// Each running instance's status with its configured and runtime VIPs (`dev` filled in).
    pub fn report(&self) -> Vec<InstanceReport> {
        self.instances
            .iter()
            .filter_map(|r| {
                let status = r.status.lock().ok()?.clone();
                let with_dev = |v: &VipDef| VipDef {
                    dev: Some(v.dev.clone().unwrap_or_else(|| r.cfg.interface.clone())),
                    ..v.clone()
                };
                Some(InstanceReport {
                    status,
                    advert_int: r.cfg.advert_int,
                    version: r.cfg.version,
                    configured: r.cfg.vips.iter().map(with_dev).collect(),
                    runtime: self.runtime.iter().filter(|x| x.instance == r.cfg.name).map(|x| x.vip.clone()).collect(),
                })
            })
            .collect()
    }

    /// Runtime VIPs whose instance is not running (removed from the config).
    pub fn orphans(&self) -> Vec<&RuntimeVip> {
        self.runtime.iter().filter(|r| !self.instances.iter().any(|i| i.cfg.name == r.instance)).collect()
    }

    /// The file runtime VIPs are kept in.
    pub fn store_path(&self) -> &std::path::Path {
        &self.store
    }

    fn usable_store(&self) -> Result<(), RuntimeVipError> {
        match &self.store_broken {
            Some(why) => Err(RuntimeVipError::StoreUnavailable(why.clone())),
            None => Ok(()),
        }
    }

    async fn persist(&self) -> Result<(), RuntimeVipError> {
        let (path, vips) = (self.store.clone(), self.runtime.clone());
        match tokio::task::spawn_blocking(move || runtime::save(&path, &vips)).await {
            Ok(r) => r.map_err(RuntimeVipError::from),
            Err(e) => Err(RuntimeVipError::StoreUnavailable(format!("saving runtime VIPs failed: {e}"))),
        }
    }

    fn state_of(&self, name: &str) -> State {
        self.instances
            .iter()
            .find(|r| r.cfg.name == name)
            .and_then(|r| r.status.lock().ok().map(|s| s.state))
            .unwrap_or(State::Initialize)
    }

    /// Sends a change to the named instance task and waits for its answer.
    async fn send(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<Result<bool, crate::net::vip::VipError>>) -> RuntimeCmd,
    ) -> Result<bool, RuntimeVipError> {
        let stopped = || RuntimeVipError::Stopped(name.to_string());
        let r = self.instances.iter().find(|r| r.cfg.name == name).ok_or_else(stopped)?;
        let (tx, rx) = oneshot::channel();
        r.runtime(make(tx)).await.map_err(|_| stopped())?;
        match rx.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(source)) => Err(RuntimeVipError::Apply { instance: name.to_string(), source }),
            Err(_) => Err(stopped()),
        }
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
        self.stop_groups(false);
        handed
    }

    /// Stops every instance: a master sends priority 0 so a backup takes over after its skew time,
    /// then removes its VIPs. Returns the notify scripts still running (`notify_stop` and the
    /// generic `notify ... STOP` among them), which the process waits for before it exits.
    pub async fn shutdown(&mut self) -> NotifyScripts {
        let all = std::mem::take(&mut self.instances);
        futures::future::join_all(all.into_iter().map(|r| r.shutdown(STOP_LIMIT))).await;
        super::statics::remove(&std::mem::take(&mut self.statics)).await;
        for (_, h) in self.scripts.drain() {
            h.stop();
        }
        self.stop_groups(true);
        NotifyScripts(self.notify_scripts.clone())
    }
}

/// Notify scripts started by the instances of a stopped [`Manager`].
pub struct NotifyScripts(TaskTracker);

impl NotifyScripts {
    /// Waits, at most `limit`, for every script to end; those still running are killed when the
    /// process exits.
    pub async fn wait(self, limit: Duration) {
        self.0.close();
        if tokio::time::timeout(limit, self.0.wait()).await.is_err() {
            tracing::warn!("{} vrrp notify script(s) still running after {limit:?} at stop: killed", self.0.len());
        }
    }
}

/// keepalived's `init_file`: writes the value when the file is missing, or always with `overwrite`.
fn init_track_file(f: &crate::config::vrrp::VrrpTrackFile) {
    let Some((value, overwrite)) = f.init else { return };
    if !overwrite && f.file.exists() {
        return;
    }
    if let Err(e) = std::fs::write(&f.file, format!("{value}\n")) {
        tracing::warn!("vrrp_track_file {}: cannot initialise {}: {e}", f.name, f.file.display());
    }
}

/// Refuses VIPs whose interface is missing, or whose address is already on another interface of
/// this namespace (two interfaces answering for one address confuse every neighbour).
pub async fn check_interfaces(vips: &[VipDef]) -> Result<(), RuntimeVipError> {
    let links = tokio::task::spawn_blocking(link::all).await.unwrap_or_default();
    let mut errs = Vec::new();
    for v in vips {
        let dev = v.dev.as_deref().unwrap_or_default();
        if !links.iter().any(|l| l.name == dev) {
            return Err(RuntimeVipError::UnknownInterface(dev.to_string()));
        }
        if let Some(other) = links.iter().find(|l| l.name != dev && l.addrs.contains(&v.addr)) {
            errs.push(RuntimeVipError::Elsewhere { addr: v.addr, ifname: other.name.clone() });
        }
    }
    runtime::first_of(errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The running process keeps on the interface what `successors` lists: runtime VIPs from the
    /// next config's state directory too, or a master's runtime VIPs would blink during an upgrade.
    #[test]
    fn successors_list_configured_and_runtime_vips() {
        let dir = std::env::temp_dir().join(format!("lbha-successors-{}", std::process::id()));
        let toml = format!(
            "[global]\nstate_dir = \"{}\"\n\n[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
             virtual_router_id = 51\nvirtual_ipaddress = [\"192.0.2.100/32\"]\n",
            dir.display()
        );
        let snap = crate::config::parse(&toml, Path::new("/etc/lbha/lbha.toml")).expect("config");
        let key = InstanceKey { name: "VI_1".into(), interface: "eth0".into(), vrid: 51 };
        let only_config: BTreeSet<String> = ["192.0.2.100/32 dev eth0".to_string()].into();
        assert_eq!(successors(&snap), vec![Successor { key: key.clone(), vips: only_config }]);

        let rt = |instance: &str, v: &str| RuntimeVip {
            instance: instance.into(),
            vip: crate::config::vrrp::parse_vip(v).expect("vip"),
        };
        let store = vec![rt("VI_1", "192.0.2.150/32 dev eth0"), rt("VI_2", "192.0.2.160/32 dev eth0")];
        runtime::save(&dir.join(runtime::FILE_NAME), &store).expect("save");
        let got = successors(&snap);
        let _ = std::fs::remove_dir_all(&dir);
        let both: BTreeSet<String> = ["192.0.2.100/32 dev eth0", "192.0.2.150/32 dev eth0"].map(String::from).into();
        assert_eq!(got, vec![Successor { key, vips: both }], "VI_2's runtime VIP belongs to no successor");
    }
}
