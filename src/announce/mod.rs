//! Active/active scale-out: VIPs announced to the router through FRR while this node can serve
//! them (`[[announce]]`).
//!
//! `decide` is the pure part (when a VIP is announced, and the order of route changes); `kernel`
//! the rtnetlink edge. [`Announcer`] ties them to the proxy: it re-decides every
//! [`TICK`] from the active snapshot and the servers' state, so reloads and health changes need
//! no wiring of their own, and on stop it withdraws every route before the proxy drains.

pub mod decide;
pub mod frr;
pub mod kernel;
pub mod show;

use crate::config::snapshot::Snapshot;
use crate::proxy::Proxy;
use decide::{Observed, Route, Step, Withdrawn};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How often announcements are re-decided: the bound on health loss to withdrawal, apart from
/// FRR's own delays.
pub const TICK: Duration = Duration::from_millis(100);

/// One VIP's announcement, for `show announce` and the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VipStatus {
    pub group: String,
    pub address: IpAddr,
    pub protocol: u8,
    pub announced: bool,
    /// Why it is withdrawn; empty when announced.
    pub reason: String,
}

/// A hold kept past the VIP's removal so connections in flight finish (`hard_stop_after`).
struct Releasing {
    interface: String,
    protocol: u8,
    at: Instant,
}

/// The announcer task's side: kernel state and what it installed.
struct Task {
    kernel: kernel::Kernel,
    proxy: Arc<Proxy>,
    installed: BTreeMap<IpAddr, Route>,
    held: BTreeMap<IpAddr, (String, u8)>,
    releasing: BTreeMap<IpAddr, Releasing>,
    failed: BTreeMap<IpAddr, String>,
    status: Arc<Mutex<Vec<VipStatus>>>,
}

enum Cmd {
    /// Withdraw everything and stop re-deciding; answered once the routes are gone.
    Withdraw(oneshot::Sender<()>),
    /// Release every hold and end.
    Release(oneshot::Sender<()>),
    /// End without touching the kernel: a binary upgrade's successor owns the routes now.
    Detach(oneshot::Sender<()>),
}

/// The daemon's handle on the announcer task.
pub struct Announcer {
    cmds: mpsc::Sender<Cmd>,
    status: Arc<Mutex<Vec<VipStatus>>>,
    handle: show::Handle,
    proxy: Arc<Proxy>,
    frr_poll: tokio::task::JoinHandle<()>,
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.frr_poll.abort();
    }
}

struct Live<'a>(&'a Proxy);
impl Observed for Live<'_> {
    fn nbsrv(&self, backend: &str) -> usize {
        use crate::routing::Live as _;
        self.0.active.load().nbsrv(backend)
    }
    fn proxy_ok(&self) -> bool {
        !*self.0.drain.borrow()
    }
    fn fault(&self, addr: IpAddr) -> Option<String> {
        crate::fate::current().concerning(&[addr])
    }
}

impl Announcer {
    /// When `snap` announces anything: creates the device, sweeps stale routes of the configured
    /// protocols and holds every VIP, so the listeners that follow can bind them. Nothing is
    /// announced before the first tick, after the listeners are up.
    pub async fn start(snap: &Snapshot, proxy: &Arc<Proxy>) -> Result<Option<Announcer>, String> {
        if snap.announce.groups.is_empty() {
            return Ok(None);
        }
        let kernel = kernel::Kernel::open().await.map_err(|e| format!("announce: {e}"))?;
        let keep: Vec<IpAddr> = snap.announce.groups.iter().flat_map(|g| g.addresses.clone()).collect();
        for protocol in snap.announce.protocols() {
            match kernel.sweep(protocol, &keep).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!("announce: removed {n} stale VIP holds of protocol {protocol}"),
                Err(e) => return Err(format!("announce: {e}")),
            }
        }
        // An IPv6 VIP held as a local route is delivered here, but binding it needs
        // `ip_nonlocal_bind` (IPv6 binds only addresses on an interface); IPv4 binds local routes.
        if keep.iter().any(IpAddr::is_ipv6) {
            crate::net::sysctl::set_nonlocal_bind().map_err(|e| format!("announce: {e}"))?;
        }
        let mut held = BTreeMap::new();
        for g in &snap.announce.groups {
            for &a in &g.addresses {
                kernel.hold(&g.interface, a, g.protocol).await.map_err(|e| format!("announce {}: {e}", g.name))?;
                held.insert(a, (g.interface.clone(), g.protocol));
            }
        }
        tracing::info!("announce: VIPs held; announced on device {}", kernel.device());
        crate::fate::set_announce_gasp(kernel::set_device_up);
        let status = Arc::new(Mutex::new(Vec::new()));
        let task = Task {
            kernel,
            proxy: proxy.clone(),
            installed: BTreeMap::new(),
            held,
            releasing: BTreeMap::new(),
            failed: BTreeMap::new(),
            status: status.clone(),
        };
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(task.run(rx));
        let handle = show::Handle { vips: status.clone(), frr: Arc::default() };
        let frr_poll = frr::spawn(snap.announce.frr_vty_socket.clone(), handle.frr.clone());
        Ok(Some(Announcer { cmds: tx, status, handle, proxy: proxy.clone(), frr_poll }))
    }

    /// The state `show announce` and `lbha status` read: VIPs every tick, FRR every [`frr::POLL`].
    pub fn status_handle(&self) -> show::Handle {
        self.handle.clone()
    }

    /// Every VIP's state as of the last tick.
    pub fn status(&self) -> Vec<VipStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Withdraws every route (the first step of a stop, before the drain), then keeps accepting
    /// for `withdraw_grace`: flows the router sends until its FIB changes are still served.
    pub async fn withdraw_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Withdraw(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let grace = self.proxy.active.load().snap.announce.withdraw_grace();
        if !grace.is_zero() {
            tracing::info!("announce: withdrawn; accepting for {grace:?} more while the router converges");
            tokio::time::sleep(grace).await;
        }
    }

    /// After a binary upgrade, before the drain: stops re-deciding without withdrawing. Else
    /// the drain would read as "proxy stopping" and withdraw the VIPs from the device the
    /// successor shares.
    pub async fn detach(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Detach(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Releases the held VIPs (after the drain) and ends the task; the device goes with it.
    pub async fn release_all(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Release(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl Task {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        // The first round after one tick: the listeners bind the held VIPs meanwhile.
        let mut tick = tokio::time::interval_at(Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = tick.tick(), if !stopping => self.round().await,
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Withdraw(done)) => {
                        stopping = true;
                        self.apply(&[]).await;
                        self.publish_stopped();
                        let _ = done.send(());
                    }
                    Some(Cmd::Detach(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    Some(Cmd::Release(done)) => {
                        self.apply(&[]).await;
                        self.release_all().await;
                        let _ = done.send(());
                        return;
                    }
                    // Dropped (a binary upgrade handed over): the successor holds the same VIPs.
                    None => return,
                },
            }
        }
    }

    /// One decision round against the active snapshot.
    async fn round(&mut self) {
        let snap = self.proxy.active.load().snap.clone();
        let seen = Live(&self.proxy);
        let mut wanted: Vec<decide::Wanted> =
            snap.announce.groups.iter().flat_map(|g| decide::decide(g, &snap, &seen)).collect();
        // Holds first: a VIP added by a reload is accepted before it is announced.
        for w in &wanted {
            self.releasing.remove(&w.addr);
            if !self.held.contains_key(&w.addr) {
                match self.kernel.hold(&w.interface, w.addr, w.protocol).await {
                    Ok(()) => {
                        self.held.insert(w.addr, (w.interface.clone(), w.protocol));
                    }
                    Err(e) => {
                        self.failed.insert(w.addr, e.to_string());
                    }
                }
            }
        }
        for w in &mut wanted {
            if w.state.is_ok()
                && let Some(e) = self.failed.get(&w.addr).filter(|_| !self.held.contains_key(&w.addr))
            {
                w.state = Err(Withdrawn::Failed(e.clone()));
            }
        }
        self.apply(&wanted).await;
        // VIPs no longer configured: keep accepting for `hard_stop_after`, then let go.
        let now = Instant::now();
        let gone: Vec<IpAddr> = self.held.keys().filter(|a| !wanted.iter().any(|w| w.addr == **a)).copied().collect();
        for a in gone {
            if let Some((interface, protocol)) = self.held.remove(&a) {
                let at = now + snap.global.hard_stop_after;
                self.releasing.insert(a, Releasing { interface, protocol, at });
            }
        }
        let due: Vec<IpAddr> = self.releasing.iter().filter(|(_, r)| r.at <= now).map(|(a, _)| *a).collect();
        for a in due {
            if let Some(r) = self.releasing.remove(&a)
                && let Err(e) = self.kernel.release(&r.interface, a, r.protocol).await
            {
                tracing::warn!("announce: {e}");
            }
        }
        self.publish(&wanted);
    }

    /// Carries out the plan from what is installed to `wanted`: withdrawals first.
    async fn apply(&mut self, wanted: &[decide::Wanted]) {
        for step in decide::plan(&self.installed, wanted) {
            match step {
                Step::Withdraw(r) => {
                    match self.kernel.withdraw(&r).await {
                        Ok(()) => tracing::info!("announce: withdrew {}", r.addr),
                        Err(e) => tracing::error!("announce: {e}"),
                    }
                    // Gone or not, it is no longer ours to count on: the next round retries an add.
                    self.installed.remove(&r.addr);
                }
                Step::Announce(r) => match self.kernel.announce(&r).await {
                    Ok(()) => {
                        tracing::info!("announce: announced {}", r.addr);
                        self.failed.remove(&r.addr);
                        self.installed.insert(r.addr, r);
                    }
                    Err(e) => {
                        if self.failed.insert(r.addr, e.to_string()).is_none() {
                            tracing::error!("announce: {e}");
                        }
                    }
                },
            }
        }
    }

    async fn release_all(&mut self) {
        let holds: Vec<(IpAddr, String, u8)> = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(a, (i, p))| (a, i, p))
            .chain(std::mem::take(&mut self.releasing).into_iter().map(|(a, r)| (a, r.interface, r.protocol)))
            .collect();
        for (a, interface, protocol) in holds {
            if let Err(e) = self.kernel.release(&interface, a, protocol).await {
                tracing::warn!("announce: {e}");
            }
        }
    }

    /// On stop: every VIP of the last round, withdrawn for that reason.
    fn publish_stopped(&self) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        for s in st.iter_mut() {
            s.announced = false;
            s.reason = Withdrawn::Stopping.to_string();
        }
    }

    fn publish(&self, wanted: &[decide::Wanted]) {
        let out: Vec<VipStatus> = wanted
            .iter()
            .map(|w| {
                let installed = self.installed.contains_key(&w.addr);
                let reason = match (&w.state, installed, self.failed.get(&w.addr)) {
                    (Err(r), _, _) => r.to_string(),
                    (Ok(()), false, Some(e)) => Withdrawn::Failed(e.clone()).to_string(),
                    _ => String::new(),
                };
                VipStatus {
                    group: w.group.clone(),
                    address: w.addr,
                    protocol: w.protocol,
                    announced: installed,
                    reason,
                }
            })
            .collect();
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        for (old, new) in st.iter().zip(&out) {
            if old.address == new.address && old.reason != new.reason && !new.reason.is_empty() {
                tracing::warn!("announce: {} withdrawn: {}", new.address, new.reason);
            }
        }
        *st = out;
    }
}
