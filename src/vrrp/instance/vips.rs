//! An instance's VIPs: configured and runtime ones (`lbha vip add/del`), added and removed on the
//! interface as the state machine says, announced by gratuitous ARP / unsolicited NA, and kept
//! across a binary upgrade.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{Runner, RuntimeCmd, held_key};
use crate::config::vrrp::{VipDef, VrrpInstance};
use crate::net::vip::{self, Vip, VipError};
use crate::vrrp::fsm::State;
use crate::vrrp::garp;

/// The VIPs of an instance, configured and `runtime`, as its status lists them
/// (`ADDR/PREFIX dev IFNAME`): what a handover compares between the old and the new process.
pub fn vip_keys(cfg: &VrrpInstance, runtime: &[VipDef]) -> BTreeSet<String> {
    vip_list(cfg, runtime).into_iter().map(|(dev, vip)| held_key(&dev, &vip)).collect()
}

/// Configured VIPs (advertised, then excluded), then runtime ones the config does not list.
fn vip_list(cfg: &VrrpInstance, runtime: &[VipDef]) -> Vec<(String, Vip)> {
    let configured = || cfg.vips.iter().chain(&cfg.vips_excluded);
    let runtime = runtime.iter().filter(|r| !configured().any(|c| c.addr == r.addr));
    configured().chain(runtime).map(|v| dev_vip(cfg, v)).collect()
}

/// A VIP with its interface (the instance's unless it names one).
fn dev_vip(cfg: &VrrpInstance, v: &VipDef) -> (String, Vip) {
    let dev = v.dev.clone().unwrap_or_else(|| cfg.vip_dev().to_string());
    (dev, Vip { addr: v.addr, prefix: v.prefix, label: v.label.clone() })
}

impl Runner {
    pub(super) fn vip_list(&self) -> Vec<(String, Vip)> {
        vip_list(&self.cfg, &self.deps.runtime)
    }

    fn dev_vip(&self, v: &VipDef) -> (String, Vip) {
        dev_vip(&self.cfg, v)
    }

    pub(super) async fn on_runtime(&mut self, cmd: RuntimeCmd) {
        let (reply, result) = match cmd {
            RuntimeCmd::PeerResigned(src) => return self.event(crate::vrrp::fsm::Event::PeerResigned(src)).await,
            RuntimeCmd::Add { vips, reply } => (reply, self.add_runtime(vips).await),
            RuntimeCmd::Del { vips, reply } => (reply, self.del_runtime(vips).await),
        };
        self.refresh_status();
        let _ = reply.send(result);
    }

    /// Records runtime VIPs; a master adds them at once (all or none) and announces them.
    async fn add_runtime(&mut self, vips: Vec<VipDef>) -> Result<bool, VipError> {
        let pairs: Vec<(String, Vip)> = vips.iter().map(|v| self.dev_vip(v)).collect();
        for (dev, v) in &pairs {
            vip::check(dev, v)?;
        }
        let master = self.fsm.state() == State::Master;
        if master {
            let groups = by_dev(pairs.clone());
            let mut added: Vec<(String, Vec<Vip>)> = Vec::new();
            for (dev, vips) in &groups {
                let (done, err) = match self.vip.add_many(dev, vips).await {
                    Ok(done) => (done, None),
                    Err((done, e)) => (done, Some(e)),
                };
                // Those already there (put by hand) are not ours to undo.
                let ours = vips.iter().zip(&done).filter(|(_, new)| **new).map(|(v, _)| v.clone()).collect();
                added.push((dev.clone(), ours));
                if let Some(e) = err {
                    for (dev, vips) in &added {
                        if let Err(u) = self.vip.del_many(dev, vips).await {
                            tracing::warn!(instance = %self.cfg.name, "undoing runtime VIPs on {dev}: {u}");
                        }
                    }
                    return Err(e);
                }
            }
            for (dev, v) in &pairs {
                self.held.insert(held_key(dev, v));
            }
            let count = self.cfg.garp_master_repeat.max(1);
            self.announce(pairs.iter().map(|(d, v)| (d.clone(), v.addr)), count);
        }
        tracing::info!(
            instance = %self.cfg.name,
            "{} runtime VIP(s) {}",
            vips.len(),
            if master { "added and announced" } else { "recorded; added when this node becomes MASTER" }
        );
        self.deps.runtime.extend(vips);
        Ok(master)
    }

    /// Forgets runtime VIPs and removes those this node holds. They are forgotten even when the
    /// kernel refuses a removal; the first such error is returned.
    async fn del_runtime(&mut self, vips: Vec<VipDef>) -> Result<bool, VipError> {
        let pairs: Vec<(String, Vip)> = vips.iter().map(|v| self.dev_vip(v)).collect();
        let held: Vec<(String, Vip)> =
            pairs.into_iter().filter(|(dev, vip)| self.held.remove(&held_key(dev, vip))).collect();
        let removed = !held.is_empty();
        let mut first_err = None;
        for (dev, list) in by_dev(held) {
            if let Err(e) = self.vip.del_many(&dev, &list).await {
                self.with_status(|s| s.counters.vip_errors += 1);
                first_err.get_or_insert(e);
            }
        }
        let gone: BTreeSet<IpAddr> = vips.iter().map(|v| v.addr).collect();
        self.deps.runtime.retain(|r| !gone.contains(&r.addr));
        tracing::info!(instance = %self.cfg.name, "{} runtime VIP(s) deleted", vips.len());
        match first_err {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    /// Adds every VIP; one that fails is logged and counted, and the others still go on. None
    /// once the process resigned for good (a panic): it ends within a second, and a VIP added
    /// now would stay on the interface after it.
    pub(super) async fn add_vips(&mut self) {
        if crate::fate::resigned() {
            tracing::warn!(instance = %self.cfg.name, "VIPs not added: the process resigned (a panic) and ends");
            return;
        }
        for (dev, vips) in by_dev(self.vip_list()) {
            let mut rest: &[Vip] = &vips;
            while !rest.is_empty() {
                let (done, err) = match self.vip.add_many(&dev, rest).await {
                    Ok(done) => (done.len(), None),
                    Err((done, e)) => (done.len(), Some(e)),
                };
                for v in &rest[..done] {
                    self.held.insert(held_key(&dev, v));
                }
                let Some(e) = err else { break };
                tracing::error!(instance = %self.cfg.name, "{e}");
                self.with_status(|s| s.counters.vip_errors += 1);
                rest = rest.get(done + 1..).unwrap_or_default();
            }
        }
        self.add_routes().await;
    }

    /// Removes the VIPs; `stale` marks the start-up sweep (quiet when nothing was there).
    pub(super) async fn del_vips(&mut self, stale: bool) {
        self.del_routes().await;
        for (dev, vips) in by_dev(self.vip_list()) {
            match self.vip.del_many(&dev, &vips).await {
                Ok(done) if stale && done.contains(&true) => {
                    let n = done.iter().filter(|d| **d).count();
                    tracing::info!(instance = %self.cfg.name, "removed {n} stale VIP(s) from {dev}")
                }
                // The interface went away, and its addresses with it.
                Ok(_) | Err(VipError::UnknownInterface(_)) => {}
                Err(e) => {
                    tracing::error!(instance = %self.cfg.name, "{e}");
                    self.with_status(|s| s.counters.vip_errors += 1);
                }
            }
            for v in &vips {
                self.held.remove(&held_key(&dev, v));
            }
        }
    }

    /// Handover: the next process will not hold these (its config or runtime set dropped them),
    /// so remove them.
    pub(super) async fn del_vips_except(&mut self, keep: &BTreeSet<String>) {
        for (dev, vip) in self.vip_list() {
            let key = held_key(&dev, &vip);
            if keep.contains(&key) || !self.held.contains(&key) {
                continue;
            }
            if let Err(e) = self.vip.del(&dev, &vip).await {
                tracing::error!(instance = %self.cfg.name, "{e}");
            }
            self.held.remove(&key);
        }
    }

    pub(super) fn garp(&self, count: u32) {
        self.announce(self.vip_list().into_iter().map(|(dev, vip)| (dev, vip.addr)), count);
    }

    /// Gratuitous ARP / unsolicited NA for `addrs`, on a blocking thread; none once the process
    /// resigned for good (a panic, [`crate::fate::resigned`]), not even the rest of a burst under
    /// way. Its instance tasks run on until the process ends, still MASTER to themselves: one that
    /// heard the new master's first advert (a lower priority) answered with
    /// `garp_lower_prio_repeat` GARPs for the VIPs the panic hook had removed. Sent after the new
    /// master's own GARPs (a race of a fraction of a millisecond), they pointed the clients back
    /// here until its second burst `garp_master_delay` (5 s) later (issue #19).
    fn announce(&self, addrs: impl Iterator<Item = (String, IpAddr)>, count: u32) {
        if crate::fate::resigned() {
            return;
        }
        let mut by_dev: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (dev, addr) in addrs {
            by_dev.entry(dev).or_default().push(addr);
        }
        let name = self.cfg.name.clone();
        let spacing = garp::Spacing { garp: self.cfg.opts.garp_interval, gna: self.cfg.opts.gna_interval };
        tokio::task::spawn_blocking(move || {
            for (dev, addrs) in by_dev {
                if let Err(e) = garp::send_burst(&dev, &addrs, count, spacing, crate::fate::resigned) {
                    tracing::warn!(instance = %name, "gratuitous ARP/NA: {e}");
                }
            }
        });
    }
}

/// VIPs grouped by interface, in first-seen order within each.
fn by_dev(list: Vec<(String, Vip)>) -> BTreeMap<String, Vec<Vip>> {
    let mut out: BTreeMap<String, Vec<Vip>> = BTreeMap::new();
    for (dev, vip) in list {
        out.entry(dev).or_default().push(vip);
    }
    out
}
