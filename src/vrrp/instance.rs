//! One tokio task per VRRP instance: owns the pure [`fsm::Instance`] and its single timer, the raw
//! sockets, tracking, and carries out the state machine's actions (adverts, VIPs, GARP, notify).
//!
//! ```text
//!  socket rx ──decode + validate (counted drops)──┐
//!  timer (one deadline, from ArmTimer) ───────────┤
//!  tracking tick (interfaces, scripts, backends) ─┼─► fsm.step(now, event) ─► actions ─► socket tx,
//!  sync group (faults, backup, master together) ──┤                                     net::vip, garp,
//!  shutdown command ──────────────────────────────┘                                     notify scripts
//! ```
//!
//! The tracking tick also keeps the sockets matched to the interface ([`Attachment`]): an instance
//! whose interface is missing waits in Fault and starts working when it appears. After every step
//! the instance reports its state to its sync group, if it has one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

mod routes;
mod vips;
mod vmac;

pub use vips::vip_keys;

use super::attach::Attachment;
use super::fsm::{self, Action, Event, FaultReason, FsmConfig, GarpConfig, StartState, State};
use super::packet::{self, Advert, Auth, ChecksumForm, DecodeOptions, Version};
use super::screen;
use super::sync::{self, Directive, Member};
use super::track::{self, Observed};
use super::{LiveFn, VrrpError};
use crate::config::vrrp::{StateHint, VipDef, VrrpInstance};
use crate::net::link::{self, LinkInfo};
use crate::net::vip::{Vip, VipError, VipHandle};

/// How often tracked interfaces and backends are looked at.
const TRACK_EVERY: Duration = Duration::from_millis(100);
/// Longest a notify script may run before it is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// What one read of the sockets gives.
type Received = Result<Result<super::socket::Received, super::socket::HeaderError>, super::socket::SocketError>;

/// Queued datagrams read before acting on an expired timer; bounded so a flood cannot stall it.
const DRAIN_MAX: usize = 256;

/// Counters of one instance; `drops` is keyed by [`packet::DecodeError::reason`] and a few more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub became_master: u64,
    pub address_list_mismatch: u64,
    pub send_errors: u64,
    pub vip_errors: u64,
    pub drops: BTreeMap<&'static str, u64>,
}

/// A state change as shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionInfo {
    pub from: State,
    pub to: State,
    pub reason: String,
    pub at: SystemTime,
}

/// What `lbha status` shows for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: State,
    pub configured_priority: u8,
    pub effective_priority: u8,
    pub vips_held: Vec<String>,
    pub master: Option<IpAddr>,
    pub last_transition: Option<TransitionInfo>,
    pub counters: Counters,
}

impl std::fmt::Display for InstanceStatus {
    /// One line for logs and status dumps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} vrid {} {} priority {} (configured {}) vips [{}]",
            self.name,
            self.interface,
            self.vrid,
            self.state.keepalived_name(),
            self.effective_priority,
            self.configured_priority,
            self.vips_held.join(", ")
        )?;
        if let Some(m) = self.master {
            write!(f, " master {m}")?;
        }
        if let Some(t) = &self.last_transition {
            let ago = t.at.elapsed().unwrap_or_default();
            write!(
                f,
                "; last {} -> {} {:.1}s ago ({})",
                t.from.keepalived_name(),
                t.to.keepalived_name(),
                ago.as_secs_f64(),
                t.reason
            )?;
        }
        let c = &self.counters;
        write!(
            f,
            "; adverts rx {} tx {}, became master {}, address list mismatches {}, send errors {}, vip errors {}",
            c.adverts_rx, c.adverts_tx, c.became_master, c.address_list_mismatch, c.send_errors, c.vip_errors
        )?;
        for (reason, n) in &c.drops {
            write!(f, ", dropped {reason} {n}")?;
        }
        Ok(())
    }
}

/// One sync group, shared by its members' tasks.
pub type SyncGroup = watch::Sender<sync::Group>;

/// What an instance task needs from the manager.
pub struct Deps {
    pub live: LiveFn,
    pub scripts: HashMap<String, watch::Receiver<bool>>,
    pub group: Option<(String, Arc<SyncGroup>)>,
    /// Runtime VIPs (`lbha vip add`) of this instance, each with its `dev`.
    pub runtime: Vec<VipDef>,
    /// Where notify scripts run, so the manager can wait for them at stop.
    pub notify_scripts: tokio_util::task::TaskTracker,
    /// `startup_delay` when the process starts, zero at a reload (keepalived delays its start only).
    pub startup_delay: Duration,
}

/// A change of the runtime VIP set, answered with whether the addresses were added to (or
/// removed from) the interface now, as a master does, or only recorded; or news from the pair's
/// other node.
pub enum RuntimeCmd {
    Add {
        vips: Vec<VipDef>,
        reply: oneshot::Sender<Result<bool, VipError>>,
    },
    Del {
        vips: Vec<VipDef>,
        reply: oneshot::Sender<Result<bool, VipError>>,
    },
    /// The other node's master, advertising from this address, resigned ([`Event::PeerResigned`]).
    PeerResigned(IpAddr),
}

/// The key of a held VIP in [`InstanceStatus::vips_held`].
pub fn held_key(dev: &str, vip: &Vip) -> String {
    format!("{vip} dev {dev}")
}

/// The manager's side of a running instance.
pub struct Running {
    pub cfg: VrrpInstance,
    pub status: Arc<Mutex<InstanceStatus>>,
    stop: mpsc::Sender<Stop>,
    cmd: mpsc::Sender<RuntimeCmd>,
    join: tokio::task::JoinHandle<()>,
}

/// How an instance task ends.
enum Stop {
    /// Clean stop: a master sends priority 0 and removes its VIPs.
    Shutdown,
    /// Binary upgrade: stop silently, keep the VIPs listed in `keep` (what the next process will
    /// hold), and report the state the next process starts in.
    Handover { keep: BTreeSet<String>, reply: oneshot::Sender<State> },
}

impl Running {
    /// Hands a runtime VIP change to the instance task; `Err(cmd)` when the task has ended.
    pub async fn runtime(&self, cmd: RuntimeCmd) -> Result<(), RuntimeCmd> {
        self.cmd.send(cmd).await.map_err(|e| e.0)
    }

    /// Tells the instance the pair's other node resigned it (never waits: a full queue drops it,
    /// and the RFC timers take over). Whether it was queued.
    pub fn peer_resigned(&self, src: IpAddr) -> bool {
        self.cmd.try_send(RuntimeCmd::PeerResigned(src)).is_ok()
    }

    /// Asks the instance to stop (priority-0 advert and VIP removal as master) and waits, bounded.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.stop.send(Stop::Shutdown).await;
        self.wait(limit).await;
    }

    /// Stops without a priority-0 advert, removing only held VIPs not in `keep`; returns the state
    /// it was in (None if the task had already ended or did not answer within `limit`).
    pub async fn hand_over(self, keep: BTreeSet<String>, limit: Duration) -> Option<State> {
        let (reply, state) = oneshot::channel();
        let sent = self.stop.send(Stop::Handover { keep, reply }).await.is_ok();
        let state = if sent { tokio::time::timeout(limit, state).await.ok().and_then(Result::ok) } else { None };
        self.wait(limit).await;
        state
    }

    async fn wait(self, limit: Duration) {
        let abort = self.join.abort_handle();
        if tokio::time::timeout(limit, self.join).await.is_err() {
            tracing::warn!(instance = %self.cfg.name, "vrrp instance did not stop in {limit:?}");
            abort.abort();
        }
    }
}

/// Opens the sockets and starts the task, fresh or (`taken_over`) in the role a previous process
/// handed over. A missing interface or source address is not an error: the instance waits for it
/// in Fault (one taken over as master resigns). A socket that cannot be opened (no CAP_NET_RAW) is.
pub fn spawn(cfg: VrrpInstance, deps: Deps, taken_over: Option<State>) -> Result<Running, VrrpError> {
    let name = cfg.name.clone();
    let attach = Attachment::start(&cfg, link::lookup(&cfg.interface).as_ref(), &deps.runtime)
        .map_err(|source| VrrpError::Socket { instance: name.clone(), source })?;
    // Until the interface is there, the tie-break address is unknown; nothing is sent meanwhile.
    let unspecified = if cfg.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let src = attach.bound().map(|b| b.src).or(cfg.unicast_src_ip).unwrap_or(unspecified);
    let fsm = fsm::Instance::new(fsm_config(&cfg, src))
        .map_err(|source| VrrpError::Fsm { instance: name.clone(), source })?;
    let vip = VipHandle::new().map_err(VrrpError::Vip)?;
    let status = Arc::new(Mutex::new(InstanceStatus {
        name: cfg.name.clone(),
        interface: cfg.interface.clone(),
        vrid: cfg.vrid,
        state: State::Initialize,
        configured_priority: cfg.priority,
        effective_priority: cfg.priority,
        vips_held: Vec::new(),
        master: None,
        last_transition: None,
        counters: Counters::default(),
    }));
    let (stop, stop_rx) = mpsc::channel(1);
    let (cmd, cmd_rx) = mpsc::channel(4);
    let dests = if cfg.unicast_peers.is_empty() { vec![cfg.mcast_group()] } else { cfg.unicast_peers.clone() };
    let runner = Runner {
        auth: match &cfg.auth_pass {
            Some(p) => Auth::simple_password(p.as_bytes()),
            None => Auth::None,
        },
        version: if cfg.version == 3 { Version::V3 } else { Version::V2 },
        cfg: cfg.clone(),
        fsm,
        attach,
        src,
        dests,
        vip,
        deps,
        status: status.clone(),
        deadline: None,
        held: BTreeSet::new(),
        own_fault: None,
        delta: 0,
        last_links: Vec::new(),
        last_observed: Default::default(),
        process_state: HashMap::new(),
    };
    let join = tokio::spawn(runner.run(stop_rx, cmd_rx, taken_over));
    Ok(Running { cfg, status, stop, cmd, join })
}

fn fsm_config(cfg: &VrrpInstance, src: IpAddr) -> FsmConfig {
    let version = if cfg.version == 3 { Version::V3 } else { Version::V2 };
    let mut f = FsmConfig::new(version, cfg.priority, cfg.advert_int, src);
    f.start_state = cfg.state.map(|s| match s {
        StateHint::Master => StartState::Master,
        StateHint::Backup => StartState::Backup,
    });
    f.preempt = cfg.preempt;
    f.preempt_delay = cfg.preempt_delay;
    f.sync_group = cfg.sync_group.is_some();
    f.down_timer_adverts = cfg.opts.down_timer_adverts;
    f.lower_prio_no_advert = cfg.opts.lower_prio_no_advert;
    f.higher_prio_send_advert = cfg.opts.higher_prio_send_advert;
    f.garp = GarpConfig {
        master_repeat: cfg.garp_master_repeat,
        master_delay: cfg.garp_master_delay,
        master_refresh: cfg.garp_master_refresh,
        master_refresh_repeat: cfg.opts.garp_master_refresh_repeat,
        lower_prio_repeat: cfg.garp_lower_prio_repeat,
        lower_prio_delay: cfg.garp_lower_prio_delay,
    };
    f
}

struct Runner {
    cfg: VrrpInstance,
    fsm: fsm::Instance,
    attach: Attachment,
    src: IpAddr,
    dests: Vec<IpAddr>,
    auth: Auth,
    version: Version,
    vip: VipHandle,
    deps: Deps,
    status: Arc<Mutex<InstanceStatus>>,
    deadline: Option<Instant>,
    /// VIPs this instance installed and has not removed.
    held: BTreeSet<String>,
    own_fault: Option<FaultReason>,
    delta: i32,
    /// The last interface listing that worked.
    last_links: Vec<LinkInfo>,
    /// The tracked files' values and processes' states the last tracking round saw.
    last_observed: (HashMap<std::path::PathBuf, i64>, HashMap<String, bool>),
    /// `track_process` states, by name.
    process_state: HashMap<String, super::process::Debounce>,
}

/// This round's observations for [`track::evaluate`].
struct Seen<'a> {
    links: Vec<LinkInfo>,
    primary: &'a str,
    scripts: &'a HashMap<String, watch::Receiver<bool>>,
    live: &'a LiveFn,
    proxy: Option<String>,
    files: HashMap<std::path::PathBuf, i64>,
    processes: HashMap<String, bool>,
}

impl Observed for Seen<'_> {
    fn primary_usable(&self) -> bool {
        self.interface_usable(self.primary)
    }
    fn interface_usable(&self, name: &str) -> bool {
        self.links.iter().any(|l| l.name == name && l.usable())
    }
    fn script_ok(&self, name: &str) -> bool {
        self.scripts.get(name).is_some_and(|rx| *rx.borrow())
    }
    fn nbsrv(&self, backend: &str) -> usize {
        (self.live)(backend)
    }
    fn proxy_fault(&self) -> Option<String> {
        self.proxy.clone()
    }
    fn file_value(&self, path: &std::path::Path) -> i64 {
        self.files.get(path).copied().unwrap_or(0)
    }
    fn process_ok(&self, name: &str) -> bool {
        self.processes.get(name).copied().unwrap_or(false)
    }
}

impl Runner {
    async fn run(
        mut self,
        mut stop: mpsc::Receiver<Stop>,
        mut cmds: mpsc::Receiver<RuntimeCmd>,
        taken_over: Option<State>,
    ) {
        match taken_over {
            Some(state) => {
                tracing::info!(instance = %self.cfg.name, "vrrp instance continues as {}", state.keepalived_name());
                self.ensure_vmac().await;
                self.track(true).await;
                self.event(Event::TakeOver(state)).await;
            }
            None => {
                if !self.deps.startup_delay.is_zero() {
                    let delay = self.deps.startup_delay;
                    tracing::info!(instance = %self.cfg.name, "vrrp instance starts after startup_delay {delay:?}");
                    tokio::select! {
                        _ = stop.recv() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                self.ensure_vmac().await;
                // A previous run killed with SIGKILL may have left our VIPs behind (keepalived does the same).
                self.del_vips(true).await;
                self.track(true).await;
                self.event(Event::Startup).await;
            }
        }
        let mut tick = tokio::time::interval(TRACK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut group_rx = self.deps.group.as_ref().map(|(_, g)| g.subscribe());
        let mut fate_rx = crate::fate::subscribe();
        loop {
            let deadline = self.deadline;
            let sleep = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                cmd = stop.recv() => match cmd {
                    Some(Stop::Handover { keep, reply }) => {
                        let state = self.fsm.state();
                        self.del_vips_except(&keep).await;
                        crate::fate::publish(&self.cfg.name, None);
                        tracing::info!(
                            instance = %self.cfg.name,
                            "vrrp instance handed over as {} (no priority-0 advert)",
                            state.keepalived_name()
                        );
                        let _ = reply.send(state);
                        return;
                    }
                    Some(Stop::Shutdown) | None => break,
                },
                // Before the timer: a master whose proxy failed must not send one more advert.
                Ok(()) = fate_rx.changed(), if self.cfg.track_proxy => self.track_proxy_change().await,
                _ = sleep => {
                    self.deadline = None;
                    // A process paused past the master-down interval (SIGSTOP, a VM stall) finds
                    // the master's adverts waiting in its socket: hear them before deciding the
                    // master is gone. The fsm ignores a Timer whose deadline they moved.
                    self.drain_queued().await;
                    self.event(Event::Timer).await;
                }
                r = self.attach.recv() => self.on_received(r).await,
                _ = tick.tick() => self.track(false).await,
                Some(c) = cmds.recv() => self.on_runtime(c).await,
                Ok(()) = async { match group_rx.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                } } => self.follow_group().await,
            }
        }
        self.event(Event::Shutdown).await;
        // Whatever happened before, never leave a VIP behind on a clean stop.
        self.del_vips(false).await;
        self.remove_vmac().await;
        crate::fate::publish(&self.cfg.name, None);
        if let Some((_, g)) = &self.deps.group {
            g.send_if_modified(|grp| grp.remove(&self.cfg.name));
        }
    }

    async fn event(&mut self, ev: Event) {
        let before = self.fsm.state();
        let wanted = self.fsm.wants_master();
        let actions = self.fsm.step(Instant::now(), ev);
        // A master resigning (the VIPs removed, then its adverts: `fsm`): the pair's other node
        // (`[cluster]`) may take over now, once the VIPs are gone from here. Told before, it took
        // over while this node still answered ARP for them, and a client's neighbour entry could
        // point here for 5 s (session 13). The adverts follow the removal for the same reason: a
        // v3 backup answers the short-interval one within ~6 ms (`super::resign`).
        let resigning = actions.iter().any(|a| matches!(a, Action::SendAdvert { priority: 0 }));
        for a in actions {
            self.act(a, before).await;
        }
        if resigning {
            // Not waited for, and off this runtime's thread (it may wait for a lock and a write).
            crate::fate::hand_off_detached(vec![(self.cfg.name.clone(), self.src)]);
        }
        self.refresh_status();
        if !wanted
            && self.fsm.wants_master()
            && let Some((group, _)) = &self.deps.group
        {
            tracing::info!(instance = %self.cfg.name, "vrrp BACKUP would become MASTER: waiting for the other members of sync group {group}");
        }
        let lost_election = before == State::Master
            && self.fsm.state() == State::Backup
            && matches!(self.fsm.last_transition(), Some(t) if matches!(t.reason, fsm::Reason::PreferredMaster { .. }));
        self.report_to_group(lost_election);
    }

    /// Tells the sync group, if any, where this member stands.
    fn report_to_group(&self, lost_election: bool) {
        if let Some((_, g)) = &self.deps.group {
            let m = Member {
                state: self.fsm.state(),
                wants_master: self.fsm.wants_master(),
                own_fault: self.own_fault.is_some(),
            };
            g.send_if_modified(|grp| grp.report(&self.cfg.name, m, lost_election));
        }
    }

    async fn act(&mut self, a: Action, before: State) {
        match a {
            Action::SendAdvert { priority } => self.send_advert(priority).await,
            Action::AddVips => self.add_vips().await,
            Action::DelVips => self.del_vips(false).await,
            Action::SendGarp { count } => self.garp(count),
            Action::ArmTimer(at) => self.deadline = Some(at),
            Action::CancelTimer => self.deadline = None,
            Action::Notify(state) => self.notify(before, state),
        }
    }

    async fn send_advert(&mut self, priority: u8) {
        // The process resigned for good (a panic): its priority-0 adverts stand.
        if priority > 0 && crate::fate::resigned() {
            return;
        }
        let Some(interval) = packet::wire_interval(self.version, self.cfg.advert_int) else {
            return;
        };
        if priority > 0 {
            return self.send_one(priority, interval).await;
        }
        // Resigning: a v3 backup answers sooner after one short-interval advert (`resign`).
        let hurry = super::resign::hurry_due(&self.cfg.name);
        for (priority, interval) in super::resign::adverts(self.version, self.fsm.effective_priority(), interval, hurry)
        {
            self.send_one(priority, interval).await;
        }
    }

    /// This instance's advert with `priority` and `interval` (in the version's units).
    fn advert(&self, priority: u8, interval: u16) -> Advert {
        Advert {
            version: self.version,
            vrid: self.cfg.vrid,
            priority,
            max_advert_int: interval,
            auth: self.auth,
            addresses: self.cfg.vips.iter().map(|v| v.addr).collect(),
        }
    }

    /// One advert with `priority` and `interval` (in the version's units) to every destination.
    async fn send_one(&mut self, priority: u8, interval: u16) {
        let advert = self.advert(priority, interval);
        for dst in self.dests.clone() {
            let form = match (self.cfg.v3_checksum_as_v2, self.cfg.opts.old_unicast_checksum && !dst.is_multicast()) {
                (true, _) => ChecksumForm::MessageOnly,
                (false, true) => ChecksumForm::PseudoHeaderMulticastDst,
                (false, false) => ChecksumForm::PseudoHeader,
            };
            let bytes = match packet::encode_with(&advert, self.src, dst, form) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(instance = %self.cfg.name, "cannot encode advert: {e}");
                    return;
                }
            };
            match self.attach.send(&bytes, dst).await {
                Ok(()) => self.with_status(|s| s.counters.adverts_tx += 1),
                Err(e) => {
                    tracing::debug!(instance = %self.cfg.name, "{e}");
                    self.with_status(|s| s.counters.send_errors += 1);
                }
            }
        }
    }

    fn notify(&mut self, from: State, to: State) {
        let prio = self.fsm.effective_priority();
        let reason = self.fsm.last_transition().map(|t| reason_text(&t.reason)).unwrap_or_default();
        tracing::info!(
            instance = %self.cfg.name,
            "vrrp {} -> {} ({reason}), priority {prio}",
            from.keepalived_name(),
            to.keepalived_name()
        );
        crate::console::events::record(
            crate::console::events::Kind::Vrrp,
            self.cfg.name.clone(),
            format!("{} -> {} ({reason}), priority {prio}", from.keepalived_name(), to.keepalived_name()),
            to != State::Fault,
        );
        self.with_status(|s| {
            s.last_transition = Some(TransitionInfo { from, to, reason: reason.clone(), at: SystemTime::now() });
            if to == State::Master {
                s.counters.became_master += 1;
            }
        });
        let n = &self.cfg.notify;
        if n.smtp_alert && to != State::Initialize {
            super::alert::send(super::alert::Kind::Instance, &self.cfg.name, to.keepalived_name());
        }
        let specific = match to {
            State::Master => n.master.clone(),
            State::Backup => n.backup.clone(),
            State::Fault => n.fault.clone(),
            State::Initialize => n.stop.clone(),
        };
        let args = ["INSTANCE".to_string(), self.cfg.name.clone(), to.keepalived_name().to_string(), prio.to_string()];
        // keepalived runs the state's own script first, then `notify` with four arguments.
        let any = n.any.clone();
        self.deps.notify_scripts.spawn(async move {
            if let Some(cmd) = specific {
                run_notify(&cmd, &[]).await;
            }
            if let Some(cmd) = any {
                run_notify(&cmd, &args).await;
            }
        });
    }

    async fn on_received(&mut self, r: Received) {
        match r {
            Ok(Ok(rx)) => self.on_packet(rx).await,
            Ok(Err(_)) => self.count_drop("ip_header"),
            // Reopened (or the fault kept) by the next tracking tick.
            Err(e) => self.attach.broken(&self.cfg, &e),
        }
    }

    /// Processes the datagrams queued in the socket now, at most [`DRAIN_MAX`].
    async fn drain_queued(&mut self) {
        for _ in 0..DRAIN_MAX {
            match self.attach.try_recv() {
                Some(r) => self.on_received(r).await,
                None => return,
            }
        }
    }

    async fn on_packet(&mut self, rx: super::socket::Received) {
        if rx.src == self.src {
            return;
        }
        let opts = if rx.dst.is_multicast() { DecodeOptions::STRICT_TTL } else { DecodeOptions::ANY_TTL };
        let decoded = match packet::decode_with(&rx.payload, rx.src, rx.dst, rx.ttl, &opts) {
            Ok(d) => d.advert,
            Err(e) => {
                if e.vrid() == Some(self.cfg.vrid) {
                    tracing::debug!(instance = %self.cfg.name, "dropped advert from {}: {e}", rx.src);
                    self.count_drop(e.reason());
                }
                return;
            }
        };
        if decoded.vrid != self.cfg.vrid {
            return;
        }
        if decoded.version != self.version {
            self.count_drop("version_mismatch");
            return;
        }
        let wire = packet::wire_interval(self.version, self.cfg.advert_int).unwrap_or(0);
        if let Err(e) = decoded.check_auth(&self.auth).and_then(|()| decoded.check_interval(wire)) {
            tracing::debug!(instance = %self.cfg.name, "dropped advert from {}: {e}", rx.src);
            self.count_drop(e.reason());
            return;
        }
        let vips: Vec<IpAddr> = self.cfg.vips.iter().map(|v| v.addr).collect();
        let master = self.fsm.master().map(|(m, _)| m);
        let matches = decoded.address_list_matches(&vips);
        let mismatch = match screen::screen(&self.cfg.opts, &self.cfg.unicast_peers, rx.src, master, matches) {
            screen::Verdict::Accept { mismatch } => mismatch,
            screen::Verdict::Drop(reason) => {
                tracing::debug!(instance = %self.cfg.name, "dropped advert from {}: {reason}", rx.src);
                self.count_drop(reason);
                return;
            }
        };
        self.with_status(|s| {
            s.counters.adverts_rx += 1;
            if mismatch {
                s.counters.address_list_mismatch += 1;
            }
        });
        self.event(Event::AdvertReceived {
            src: rx.src,
            priority: decoded.priority,
            max_advert_int: decoded.advert_interval(),
        })
        .await;
    }

    /// Re-evaluates the interface and tracking and feeds changes to the fsm. `initial` runs before
    /// Startup.
    async fn track(&mut self, initial: bool) {
        let paths: Vec<std::path::PathBuf> = self.cfg.track_files.iter().map(|f| f.file.clone()).collect();
        let wanted: Vec<String> = self.cfg.track_processes.iter().map(|p| p.process.clone()).collect();
        let (mut links, files, counts) = tokio::task::spawn_blocking(move || {
            let files: HashMap<std::path::PathBuf, i64> =
                paths.into_iter().map(|p| (p.clone(), track::read_file_value(&p))).collect();
            (link::all(), files, super::process::count(&wanted))
        })
        .await
        .unwrap_or_default();
        let now = Instant::now();
        let mut processes = HashMap::new();
        for p in &self.cfg.track_processes {
            let running = counts.get(&p.process).copied().unwrap_or(0) >= p.quorum;
            let ok = self.process_state.entry(p.name.clone()).or_default().feed(now, running, p.delay);
            processes.insert(p.name.clone(), ok);
        }
        // Never empty (`lo` is always there) unless the listing failed, out of descriptors say:
        // go on with the last one rather than take every interface for gone.
        if links.is_empty() {
            links = self.last_links.clone();
        } else {
            self.last_links = links.clone();
        }
        self.last_observed = (files.clone(), processes.clone());
        self.judge(links, files, processes, initial).await;
    }

    /// The proxy's faults changed: judged again with what the last tracking round saw, so a master
    /// resigns now instead of after an interface listing on the blocking pool (which, on a loaded
    /// machine or out of descriptors, is where the time went).
    async fn track_proxy_change(&mut self) {
        let (files, processes) = self.last_observed.clone();
        self.judge(self.last_links.clone(), files, processes, false).await;
    }

    /// Feeds what tracking observed to the fsm.
    async fn judge(
        &mut self,
        links: Vec<LinkInfo>,
        files: HashMap<std::path::PathBuf, i64>,
        processes: HashMap<String, bool>,
        initial: bool,
    ) {
        let primary = links.iter().find(|l| l.name == self.cfg.interface);
        if let Some(src) = self.attach.reconcile(&self.cfg, primary, &self.deps.runtime)
            && src != self.src
        {
            self.src = src;
            self.fsm.set_primary_addr(src);
        }
        if let Some(v) = &self.cfg.vmac {
            let vmac = links.iter().find(|l| l.name == v.name);
            // Its parent came back (recreated, or late at start): the VMAC goes back on it.
            if vmac.is_none() && primary.is_some() {
                self.ensure_vmac().await;
            } else if let (Some(ll), Some(l)) = (primary.and_then(|p| p.link_local_v6()), vmac)
                && self.cfg.is_ipv6()
                && !l.addrs.contains(&IpAddr::V6(ll))
            {
                self.vmac_link_local().await;
            }
            self.attach.reconcile_tx(&self.cfg, vmac);
        }
        let proxy = if self.cfg.track_proxy {
            let vips: Vec<IpAddr> = self.vip_list().iter().map(|(_, v)| v.addr).collect();
            crate::fate::current().concerning(&vips)
        } else {
            None
        };
        let seen = Seen {
            links,
            primary: &self.cfg.interface,
            scripts: &self.deps.scripts,
            live: &self.deps.live,
            proxy,
            files,
            processes,
        };
        let out = track::evaluate(&self.cfg, &seen);
        // A missing interface says more than "interface down".
        let own = self.attach.fault().or(out.fault);
        if own != self.own_fault || initial {
            self.own_fault = own;
            self.report_to_group(false);
        }
        if out.delta != self.delta || initial {
            self.delta = out.delta;
            let p = track::effective_priority(self.cfg.priority, out.delta);
            if p != self.fsm.effective_priority() {
                self.event(Event::PriorityChanged(p)).await;
            }
        }
        self.follow_group().await;
    }

    /// Enters or leaves Fault for its own fault or its sync group's, and follows the group into
    /// Backup or Master.
    async fn follow_group(&mut self) {
        let (group_fault, directive) = match &self.deps.group {
            Some((name, g)) => {
                let grp = g.borrow();
                let fault = grp
                    .fault_elsewhere(&self.cfg.name)
                    .map(|m| FaultReason::Tracker(format!("sync group {name}: {m} is in FAULT")));
                let d = grp.directive(&self.cfg.name).map(|d| (name.clone(), d));
                (fault, d)
            }
            None => (None, None),
        };
        let fault = self.own_fault.clone().or(group_fault);
        match (fault, self.fsm.fault().is_some()) {
            (Some(r), false) => return self.event(Event::Fault(r)).await,
            // The group is asked again after this report.
            (None, true) => return self.event(Event::FaultCleared).await,
            (Some(_), true) => return,
            (None, false) => {}
        }
        match directive {
            Some((_, Directive::Master)) => self.event(Event::SyncMaster).await,
            Some((group, Directive::Backup { lost })) => {
                self.event(Event::SyncBackup(format!("sync group {group}: {lost} lost the election"))).await
            }
            None => {}
        }
    }

    fn count_drop(&self, reason: &'static str) {
        self.with_status(|s| *s.counters.drops.entry(reason).or_insert(0) += 1);
    }

    fn with_status(&self, f: impl FnOnce(&mut InstanceStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn refresh_status(&self) {
        let state = self.fsm.state();
        let prio = self.fsm.effective_priority();
        let master = match state {
            State::Master => Some(self.src),
            State::Backup => self.fsm.master().map(|m| m.0),
            _ => None,
        };
        let held: Vec<String> = self.held.iter().cloned().collect();
        self.with_status(|s| {
            s.state = state;
            s.effective_priority = prio;
            s.master = master;
            s.vips_held = held;
        });
        crate::fate::publish(&self.cfg.name, Some(self.last_gasp()));
    }

    /// What resigning now takes, for a panic or a stalled runtime (`crate::fate`).
    fn last_gasp(&self) -> crate::fate::LastGasp {
        let master = self.fsm.state() == State::Master;
        let (mut hurry, mut adverts) = (Vec::new(), Vec::new());
        if master && let Some(interval) = packet::wire_interval(self.version, self.cfg.advert_int) {
            let form = if self.cfg.v3_checksum_as_v2 { ChecksumForm::MessageOnly } else { ChecksumForm::PseudoHeader };
            // Both kinds encoded now; whether the short-interval one goes is decided when sent.
            for (priority, interval) in
                super::resign::adverts(self.version, self.fsm.effective_priority(), interval, true)
            {
                let advert = self.advert(priority, interval);
                let to = if priority > 0 { &mut hurry } else { &mut adverts };
                for dst in &self.dests {
                    if let Ok(b) = packet::encode_with(&advert, self.src, *dst, form) {
                        to.push((*dst, b));
                    }
                }
            }
        }
        let vips = if master {
            self.vip_list().into_iter().filter(|(dev, v)| self.held.contains(&held_key(dev, v))).collect()
        } else {
            Vec::new()
        };
        crate::fate::LastGasp {
            track_proxy: self.cfg.track_proxy,
            master,
            ifname: self.cfg.interface.clone(),
            ifindex: self.attach.bound().map_or(0, |b| b.ifindex),
            src: self.src,
            hurry,
            adverts,
            vips,
        }
    }
}

/// A short human reason for `status` and logs.
fn reason_text(r: &fsm::Reason) -> String {
    match r {
        fsm::Reason::Startup => "startup".into(),
        fsm::Reason::AddressOwner => "address owner".into(),
        fsm::Reason::MasterDown => "no advert from a master within the down interval".into(),
        fsm::Reason::PreferredMaster { src, priority } => {
            format!("{src} advertises priority {priority}")
        }
        fsm::Reason::Fault(f) => match f {
            FaultReason::InterfaceDown => "interface down".into(),
            FaultReason::Tracker(t) => t.clone(),
            FaultReason::NoSourceAddress => "no source address".into(),
            FaultReason::NoUnicastPeer => "no unicast peer".into(),
        },
        fsm::Reason::FaultCleared => "fault cleared".into(),
        fsm::Reason::Shutdown => "shutdown".into(),
        fsm::Reason::SyncGroup(why) => why.clone(),
        fsm::Reason::Handover => "taken over from the previous process (upgrade)".into(),
        fsm::Reason::PeerResigned(src) => format!("the peer node ({src}) resigned over the cluster channel"),
    }
}

/// Runs a notify command through the shell with `args` as "$@", bounded by [`NOTIFY_TIMEOUT`].
pub(super) async fn run_notify(cmd: &str, args: &[String]) {
    let script = if args.is_empty() { cmd.to_string() } else { format!("{cmd} \"$@\"") };
    let child =
        super::script::shell(&script, "lbha-notify", args, None).and_then(|mut c| c.spawn().map_err(|e| e.to_string()));
    match child {
        Ok(mut c) => {
            if tokio::time::timeout(NOTIFY_TIMEOUT, c.wait()).await.is_err() {
                tracing::warn!("notify {cmd:?} still running after {NOTIFY_TIMEOUT:?}: killed");
                let _ = c.kill().await;
            }
        }
        Err(e) => tracing::warn!("cannot run notify {cmd:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_gets_keepalived_arguments() {
        let dir = std::env::temp_dir().join(format!("lbha-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let out = dir.join("args");
        let cmd = format!("printf '%s|' > {}", out.display());
        let args = ["INSTANCE", "VI_1", "MASTER", "150"].map(String::from);
        run_notify(&cmd, &args).await;
        let got = std::fs::read_to_string(&out).expect("written");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, "INSTANCE|VI_1|MASTER|150|");
    }

    #[test]
    fn status_line_shows_state_priorities_vips_and_counters() {
        let mut c = Counters { adverts_rx: 3, adverts_tx: 7, became_master: 1, ..Counters::default() };
        c.drops.insert("checksum", 2);
        let s = InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: State::Master,
            configured_priority: 150,
            effective_priority: 130,
            vips_held: vec!["192.0.2.100/32 dev eth0".into()],
            master: Some("192.0.2.11".parse().expect("ip")),
            last_transition: Some(TransitionInfo {
                from: State::Backup,
                to: State::Master,
                reason: "no advert".into(),
                at: SystemTime::now(),
            }),
            counters: c,
        };
        let line = s.to_string();
        for want in [
            "VI_1 eth0 vrid 51 MASTER priority 130 (configured 150)",
            "vips [192.0.2.100/32 dev eth0] master 192.0.2.11",
            "last BACKUP -> MASTER 0.0s ago (no advert)",
            "adverts rx 3 tx 7, became master 1",
            "dropped checksum 2",
        ] {
            assert!(line.contains(want), "{want:?} not in {line:?}");
        }
    }

    #[test]
    fn reasons_read_well() {
        let r = fsm::Reason::PreferredMaster { src: "192.0.2.12".parse().expect("ip"), priority: 200 };
        assert_eq!(reason_text(&r), "192.0.2.12 advertises priority 200");
        assert_eq!(reason_text(&fsm::Reason::Fault(FaultReason::InterfaceDown)), "interface down");
    }
}
