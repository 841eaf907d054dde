//! Pure VRRP state machine for one virtual router: RFC 3768 / RFC 5798 §6 as keepalived implements
//! them (`vrrp.c`, `vrrp_scheduler.c`), plus keepalived's FAULT state and GARP scheduling.
//!
//! The caller owns the sockets and one timer per instance. It feeds [`Event`]s with the current time
//! into [`Instance::step`] and carries out the returned [`Action`]s in order. Time is only ever the
//! `now` argument, so tests drive every transition with a fake clock.
//!
//! ```text
//! Initialize      --Startup, priority 255 (MASTER hint)------------> Master
//! Initialize      --Startup------------------------------------------> Backup
//! Backup          --Master_Down timer (skew time after priority 0)--> Master
//! Master          --higher priority, or equal from higher address---> Backup
//! Backup | Master --Fault (a master: VIPs removed, priority 0)------> Fault
//! Fault           --FaultCleared (owner: straight to Master)---------> Backup
//! any             --Shutdown (a master: VIPs removed, priority 0)---> Initialize
//! Initialize      --TakeOver(Master|Backup) (binary upgrade)---------> Master | Backup, quietly
//! ```
//!
//! A member of a `vrrp_sync_group` ([`FsmConfig::sync_group`]) never takes Master on its own: where
//! it would, it stays Backup and [`Instance::wants_master`] says so, until the group lets it
//! ([`Event::SyncMaster`]); [`Event::SyncBackup`] makes a master follow a member that lost the
//! election (keepalived `vrrp_sync_can_goto_master`, `vrrp_sync_backup`; the group rules are in
//! `vrrp::sync`).
//!
//! Multiple deadlines (Adver_Timer, Master_Down_Timer, delayed and periodic GARP bursts) are kept
//! internally; the caller only ever sees the earliest as [`Action::ArmTimer`], and reports its expiry
//! as [`Event::Timer`]. Arming again replaces the previous deadline.

mod timers;

#[cfg(test)]
mod handover;
#[cfg(test)]
mod peer_resigned;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;

pub use timers::{master_down_interval, skew_time};

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use self::timers::{Deadlines, take_due};
use super::packet::{V3_MAX_INTERVAL_CS, Version, wire_interval};

/// Owner priority: the router that owns the virtual addresses; never changed by tracking.
pub const PRIORITY_OWNER: u8 = 255;
/// keepalived's default priority.
pub const PRIORITY_DEFAULT: u8 = 100;
/// keepalived's upper bound for `preempt_delay`.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Protocol state. keepalived's notify scripts call `Initialize` after a shutdown "STOP".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    /// Reads [`State::keepalived_name`] back.
    pub fn from_keepalived_name(s: &str) -> Option<State> {
        [State::Initialize, State::Backup, State::Master, State::Fault].into_iter().find(|x| x.keepalived_name() == s)
    }

    /// The word keepalived uses in notify arguments and logs.
    pub fn keepalived_name(self) -> &'static str {
        match self {
            State::Initialize => "STOP",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// keepalived's `state MASTER|BACKUP`: a start hint, not a guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartState {
    /// Wait the full Master_Down_Interval for a master before taking over.
    Backup,
    /// Priority 255: become master at once. Below 255 keepalived still starts as a backup and waits
    /// the full Master_Down_Interval (`vrrp_init_state`); the hint then only disables `nopreempt` and
    /// `preempt_delay`.
    Master,
}

/// Why the instance cannot work; the tracking layer aggregates causes and reports the first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FaultReason {
    InterfaceDown,
    /// A tracked interface, script, file or backend with weight 0 failed.
    Tracker(String),
    /// No usable source address (interface primary, link-local, `unicast_src_ip`).
    NoSourceAddress,
    /// Unicast mode without a reachable peer.
    NoUnicastPeer,
}

/// Input to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Startup,
    Shutdown,
    /// A valid advert for this VRID (already through `packet::decode` and the auth / interval
    /// checks). `max_advert_int` is the advertised interval, learned by v3 backups.
    AdvertReceived {
        src: IpAddr,
        priority: u8,
        max_advert_int: Duration,
    },
    /// The deadline from the last [`Action::ArmTimer`] passed.
    Timer,
    Fault(FaultReason),
    FaultCleared,
    /// New effective priority after tracking weights (keepalived clamps to 1..=254; owners ignore it).
    PriorityChanged(u8),
    /// The sync group lets a backup that wants to be master take over.
    SyncMaster,
    /// Another member of the sync group lost the election: a master steps down (no priority 0).
    SyncBackup(String),
    /// Start in the state the previous process on this node left (a binary upgrade): a master keeps
    /// its VIPs and advertises at once, a backup keeps waiting. Neither sends a priority-0 advert or
    /// runs notify scripts, since the node's role does not change. Only acts in Initialize.
    TakeOver(State),
    /// The master at this address told this node, over the authenticated `[cluster]` channel,
    /// that it resigned (`track_proxy`, shutdown): a backup following it becomes master now
    /// instead of after the skew time. Only from a master it follows: a third router, or a
    /// message about a master it no longer follows, changes nothing (the RFC timers decide).
    PeerResigned(IpAddr),
}

/// Output of the state machine, to be carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (0 = resigning) and the configured interval and VIPs.
    SendAdvert { priority: u8 },
    /// Install the VIPs (and excluded VIPs, routes).
    AddVips,
    /// Remove the VIPs.
    DelVips,
    /// Send `count` gratuitous ARPs / unsolicited NAs for every VIP.
    SendGarp { count: u32 },
    /// Arm the instance's single timer, replacing any earlier deadline.
    ArmTimer(Instant),
    /// Nothing is pending any more.
    CancelTimer,
    /// Run notify scripts / emit the state event for this new state.
    Notify(State),
}

/// Why the last state change happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Initialize -> Backup at startup.
    Startup,
    /// Priority 255 with a MASTER start hint: master at startup or when a fault clears.
    AddressOwner,
    /// Backup heard no master for Master_Down_Interval (or skew time after a priority-0 advert).
    MasterDown,
    /// Master heard a higher priority, or an equal one from a higher primary address.
    PreferredMaster {
        src: IpAddr,
        priority: u8,
    },
    Fault(FaultReason),
    FaultCleared,
    Shutdown,
    /// Followed the other members of the sync group (the text names the group and the member).
    SyncGroup(String),
    /// Role taken over from the previous process on this node (binary upgrade).
    Handover,
    /// The pair's other node resigned this instance and said so over the cluster channel.
    PeerResigned(IpAddr),
}

/// A recorded state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub at: Instant,
}

/// keepalived's `garp_*` knobs (§3 of vrrp.md). Defaults: 5 GARPs at once, 5 more after 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_repeat`: GARPs per VIP on becoming master (0 = none).
    pub master_repeat: u32,
    /// `garp_master_delay`: second burst after this delay (zero = no second burst).
    pub master_delay: Duration,
    /// `garp_master_refresh`: periodic burst while master, first one after delay + refresh.
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_repeat`: GARPs when a master hears a lower-priority advert (split-brain heal).
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: second burst after a lower-priority advert.
    pub lower_prio_delay: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// Per-instance protocol parameters, already resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub version: Version,
    /// Configured (base) priority, 1..=255.
    pub priority: u8,
    /// Own Advertisement_Interval: whole seconds for v2, whole centiseconds for v3.
    pub advert_interval: Duration,
    /// `None` derives it like keepalived: MASTER for priority 255, else BACKUP.
    pub start_state: Option<StartState>,
    /// `preempt` (default) / `nopreempt`.
    pub preempt: bool,
    /// Hold off taking over from a lower-priority master for this long after first hearing it.
    pub preempt_delay: Duration,
    /// Our primary (or configured source) address, compared with the sender's on equal priority.
    pub primary_addr: IpAddr,
    /// keepalived `down_timer_adverts`: the 3 in Master_Down_Interval, 1..=100.
    pub down_timer_adverts: u32,
    /// keepalived `lower_prio_no_advert`: pre-RFC 9568, don't answer a lower-priority advert.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: advertise once more before yielding.
    pub higher_prio_send_advert: bool,
    pub garp: GarpConfig,
    /// Member of a `vrrp_sync_group`: becoming master waits for [`Event::SyncMaster`].
    pub sync_group: bool,
}

impl FsmConfig {
    /// keepalived's defaults around the four values every instance has.
    pub fn new(version: Version, priority: u8, advert_interval: Duration, primary_addr: IpAddr) -> FsmConfig {
        FsmConfig {
            version,
            priority,
            advert_interval,
            start_state: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_addr,
            down_timer_adverts: 3,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            garp: GarpConfig::default(),
            sync_group: false,
        }
    }

    /// The start state after keepalived's derivation.
    pub fn effective_start_state(&self) -> StartState {
        match self.start_state {
            Some(s) => s,
            None if self.priority == PRIORITY_OWNER => StartState::Master,
            None => StartState::Backup,
        }
    }
}

/// Configuration the state machine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsmError {
    #[error("priority 0 is reserved for a master that resigns")]
    Priority,
    #[error("advert interval {interval:?} is not a whole number of {unit} between 1 and {max} for VRRPv{version}")]
    AdvertInterval { interval: Duration, version: u8, unit: &'static str, max: u16 },
    #[error("down_timer_adverts {0} outside 1..=100")]
    DownTimerAdverts(u32),
    #[error("preempt_delay {0:?} exceeds 1000 s")]
    PreemptDelay(Duration),
}

/// One virtual router's protocol state.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: FsmConfig,
    state: State,
    effective_priority: u8,
    master_adver_int: Duration,
    /// Set while a fault condition is reported, also before Startup.
    fault: Option<FaultReason>,
    /// Source and priority of the advert a backup last accepted.
    master: Option<(IpAddr, u8)>,
    /// keepalived `preempt_time`: until then lower-priority adverts are still accepted.
    preempt_until: Option<Instant>,
    deadlines: Deadlines,
    armed: Option<Instant>,
    last_transition: Option<Transition>,
    /// Sync group member only: why it would be master now, waiting for the group.
    wants_master: Option<Reason>,
}

impl Instance {
    /// Validates `cfg` and starts in Initialize. As keepalived does, a MASTER start hint clears
    /// `nopreempt` and `preempt_delay`, and `nopreempt` clears `preempt_delay` (config validation
    /// should warn about both).
    pub fn new(mut cfg: FsmConfig) -> Result<Instance, FsmError> {
        if cfg.priority == 0 {
            return Err(FsmError::Priority);
        }
        if wire_interval(cfg.version, cfg.advert_interval).is_none() {
            let (unit, max) = match cfg.version {
                Version::V2 => ("seconds", 255),
                Version::V3 => ("centiseconds", V3_MAX_INTERVAL_CS),
            };
            return Err(FsmError::AdvertInterval {
                interval: cfg.advert_interval,
                version: cfg.version.number(),
                unit,
                max,
            });
        }
        if !(1..=100).contains(&cfg.down_timer_adverts) {
            return Err(FsmError::DownTimerAdverts(cfg.down_timer_adverts));
        }
        if cfg.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(FsmError::PreemptDelay(cfg.preempt_delay));
        }
        if cfg.effective_start_state() == StartState::Master {
            cfg.preempt = true;
            cfg.preempt_delay = Duration::ZERO;
        }
        if !cfg.preempt {
            cfg.preempt_delay = Duration::ZERO;
        }
        Ok(Instance {
            effective_priority: cfg.priority,
            master_adver_int: cfg.advert_interval,
            cfg,
            state: State::Initialize,
            fault: None,
            master: None,
            preempt_until: None,
            deadlines: Deadlines::default(),
            armed: None,
            last_transition: None,
            wants_master: None,
        })
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Priority currently advertised (configured priority adjusted by tracking).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Master_Adver_Interval: own interval, or the one a v3 backup learned from the master.
    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// Source address and priority of the master a backup last accepted.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The pending fault, if any.
    pub fn fault(&self) -> Option<&FaultReason> {
        self.fault.as_ref()
    }

    /// Current Skew_Time.
    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.effective_priority, self.master_adver_int)
    }

    /// Current Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    /// The deadline the caller should have armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    pub fn last_transition(&self) -> Option<&Transition> {
        self.last_transition.as_ref()
    }

    /// A sync group member in Backup that would be master now (its down timer expired, or it is the
    /// address owner) and waits for the rest of its group.
    pub fn wants_master(&self) -> bool {
        self.state == State::Backup && self.wants_master.is_some()
    }

    /// The interface's primary address changed (DHCP, reconfiguration); used for tie-breaks.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.cfg.primary_addr = addr;
    }

    /// Feeds one event at time `now` and returns what to do, in order.
    pub fn step(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Startup => self.on_startup(now, &mut out),
            Event::Shutdown => self.on_shutdown(now, &mut out),
            Event::AdvertReceived { src, priority, max_advert_int } => match self.state {
                State::Backup => self.backup_rx(now, src, priority, max_advert_int),
                State::Master => self.master_rx(now, src, priority, max_advert_int, &mut out),
                // keepalived ignores adverts until initialised and while faulty.
                State::Initialize | State::Fault => {}
            },
            Event::Timer => {
                // Whatever was armed has fired; re-arm below even if nothing moved.
                self.armed = None;
                self.on_timer(now, &mut out);
            }
            Event::Fault(reason) => self.on_fault(now, reason, &mut out),
            Event::FaultCleared => self.on_fault_cleared(now, &mut out),
            Event::PriorityChanged(p) => self.on_priority(p),
            Event::SyncMaster => {
                if self.state == State::Backup
                    && let Some(reason) = self.wants_master.take()
                {
                    self.become_master(now, reason, &mut out);
                }
            }
            Event::SyncBackup(why) => {
                if self.state == State::Master {
                    out.push(Action::DelVips);
                    let deadline = now + self.master_down_interval();
                    self.enter_backup(now, deadline, Reason::SyncGroup(why), &mut out);
                }
            }
            Event::TakeOver(state) => self.on_take_over(now, state, &mut out),
            Event::PeerResigned(src) => {
                if self.state == State::Backup
                    && self.wants_master.is_none()
                    && self.master.is_some_and(|(m, _)| m == src)
                {
                    self.master_or_wait(now, Reason::PeerResigned(src), Reason::PeerResigned(src), &mut out);
                }
            }
        }
        let want = self.deadlines.earliest();
        if want != self.armed {
            out.push(match want {
                Some(at) => Action::ArmTimer(at),
                None => Action::CancelTimer,
            });
            self.armed = want;
        }
        out
    }

    fn on_startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.cfg.advert_interval;
        if let Some(reason) = self.fault.clone() {
            self.transition(now, State::Fault, Reason::Fault(reason), out);
            return;
        }
        if self.cfg.effective_start_state() == StartState::Master && self.effective_priority == PRIORITY_OWNER {
            self.master_or_wait(now, Reason::AddressOwner, Reason::Startup, out);
        } else {
            // keepalived `vrrp_init_state`: a MASTER hint below 255 still waits the full interval.
            let wait = self.master_down_interval();
            self.enter_backup(now, now + wait, Reason::Startup, out);
        }
    }

    /// The previous process stopped without resigning; carry on in its role. A fault seen before
    /// the start wins: a master then resigns (priority 0, VIPs removed) as any faulty master does.
    fn on_take_over(&mut self, now: Instant, state: State, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.cfg.advert_interval;
        self.deadlines.clear();
        self.master = None;
        self.preempt_until = None;
        match (state, self.fault.clone()) {
            (State::Master, Some(reason)) => {
                out.push(Action::DelVips);
                out.push(Action::SendAdvert { priority: 0 });
                self.transition(now, State::Fault, Reason::Fault(reason), out);
            }
            (State::Master, None) => {
                // Backups are counting down from the previous process's last advert: send at once.
                self.send_advert(now, out);
                // The VIPs are in place already; adding them again is a no-op that records them.
                out.push(Action::AddVips);
                if let Some(every) = self.cfg.garp.master_refresh.filter(|r| !r.is_zero()) {
                    self.deadlines.garp_refresh = Some(now + every);
                }
                self.quiet_transition(now, State::Master);
            }
            (State::Backup, Some(reason)) => self.transition(now, State::Fault, Reason::Fault(reason), out),
            (State::Backup, None) => {
                self.deadlines.master_down = Some(now + self.master_down_interval());
                self.quiet_transition(now, State::Backup);
            }
            (State::Initialize | State::Fault, _) => self.on_startup(now, out),
        }
    }

    fn on_shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        if self.state == State::Master {
            // Priority 0 lets the best backup take over after its skew time; the VIPs go first,
            // since a v3 backup may answer within ~6 ms (`super::resign`).
            out.push(Action::DelVips);
            out.push(Action::SendAdvert { priority: 0 });
        }
        self.deadlines.clear();
        self.master = None;
        self.wants_master = None;
        self.transition(now, State::Initialize, Reason::Shutdown, out);
    }

    /// RFC 5798 §6.4.2 / keepalived `vrrp_state_backup`.
    fn backup_rx(&mut self, now: Instant, src: IpAddr, priority: u8, max_advert_int: Duration) {
        if priority == 0 {
            self.deadlines.master_down = Some(now + self.skew_time());
            return;
        }
        let holding = !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|until| until > now);
        if !self.cfg.preempt || priority >= self.effective_priority || holding {
            // A master is there after all: a sync member waiting to take over stops wanting to.
            self.wants_master = None;
            self.learn_interval(max_advert_int);
            self.deadlines.master_down = Some(now + self.master_down_interval());
            self.master = Some((src, priority));
            if !self.cfg.preempt_delay.is_zero() {
                if priority >= self.effective_priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                }
            }
        } else {
            // Lower priority and free to preempt: discard, the down timer keeps running.
            self.master = Some((src, priority));
        }
    }

    /// RFC 5798 §6.4.3 / keepalived `vrrp_state_master_rx`.
    fn master_rx(&mut self, now: Instant, src: IpAddr, priority: u8, max_advert_int: Duration, out: &mut Vec<Action>) {
        let own = self.effective_priority;
        if priority == 0 {
            self.send_advert(now, out);
            return;
        }
        let addr_cmp = compare_addr(src, self.cfg.primary_addr);
        let preferred = priority > own || (priority == own && addr_cmp == Some(Ordering::Greater));
        let worse = priority < own || (priority == own && addr_cmp == Some(Ordering::Less));
        if worse {
            // RFC 9568: reassert at once so the other side steps down; refresh ARP caches that the
            // rogue master may have taken over.
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(now, out);
            }
            let garp = self.cfg.garp;
            if garp.lower_prio_repeat > 0 {
                out.push(Action::SendGarp { count: garp.lower_prio_repeat });
                if !garp.lower_prio_delay.is_zero() {
                    self.deadlines.garp_lower_prio = Some(now + garp.lower_prio_delay);
                }
            }
        } else if preferred {
            if self.cfg.higher_prio_send_advert {
                out.push(Action::SendAdvert { priority: own });
            }
            self.learn_interval(max_advert_int);
            out.push(Action::DelVips);
            let deadline = now + self.master_down_interval();
            self.master = Some((src, priority));
            self.enter_backup(now, deadline, Reason::PreferredMaster { src, priority }, out);
        }
        // Equal priority from our own address (or another family): nothing to decide.
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                if take_due(&mut self.deadlines.master_down, now) {
                    self.master_or_wait(now, Reason::MasterDown, Reason::MasterDown, out);
                }
            }
            State::Master => {
                let garp = self.cfg.garp;
                if let Some(due) = self.deadlines.advert.filter(|at| *at <= now) {
                    // From the due time, not from the (always a little late) firing, so the
                    // lateness does not add up interval after interval.
                    self.send_advert(now, out);
                    self.deadlines.advert = Some(next_after(due, self.cfg.advert_interval, now));
                }
                if take_due(&mut self.deadlines.garp_delayed, now) {
                    out.push(Action::SendGarp { count: garp.master_repeat });
                }
                if take_due(&mut self.deadlines.garp_lower_prio, now) {
                    out.push(Action::SendGarp { count: garp.lower_prio_repeat });
                }
                if let Some(due) = self.deadlines.garp_refresh.filter(|at| *at <= now) {
                    out.push(Action::SendGarp { count: garp.master_refresh_repeat });
                    self.deadlines.garp_refresh = garp.master_refresh.map(|every| next_after(due, every, now));
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn on_fault(&mut self, now: Instant, reason: FaultReason, out: &mut Vec<Action>) {
        if self.fault.is_some() {
            return;
        }
        self.fault = Some(reason.clone());
        self.wants_master = None;
        match self.state {
            // Remembered: Startup will go straight to Fault.
            State::Initialize | State::Fault => {}
            State::Backup | State::Master => {
                if self.state == State::Master {
                    out.push(Action::DelVips);
                    out.push(Action::SendAdvert { priority: 0 });
                }
                self.deadlines.clear();
                self.master = None;
                self.transition(now, State::Fault, Reason::Fault(reason), out);
            }
        }
    }

    /// keepalived `try_up_instance`: back to Backup, or straight to Master for an owner.
    fn on_fault_cleared(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.fault = None;
        if self.state != State::Fault {
            return;
        }
        self.master_adver_int = self.cfg.advert_interval;
        if self.cfg.effective_start_state() == StartState::Master && self.cfg.priority == PRIORITY_OWNER {
            self.master_or_wait(now, Reason::AddressOwner, Reason::FaultCleared, out);
        } else {
            let deadline = now + self.master_down_interval();
            self.enter_backup(now, deadline, Reason::FaultCleared, out);
        }
    }

    /// keepalived `vrrp_set_effective_priority`: owners keep 255; a backup's down timer moves by
    /// the change in skew; a master just advertises the new value next time.
    fn on_priority(&mut self, priority: u8) {
        if self.cfg.priority == PRIORITY_OWNER {
            return;
        }
        let priority = priority.clamp(1, PRIORITY_OWNER - 1);
        if priority == self.effective_priority {
            return;
        }
        let old_skew = self.skew_time();
        self.effective_priority = priority;
        let new_skew = self.skew_time();
        if self.state == State::Backup
            && let Some(at) = self.deadlines.master_down
        {
            self.deadlines.master_down = if new_skew >= old_skew {
                Some(at + (new_skew - old_skew))
            } else {
                Some(at.checked_sub(old_skew - new_skew).unwrap_or(at))
            };
        }
    }

    /// keepalived `vrrp_state_master_tx` + `vrrp_state_become_master`: advert first so the old
    /// master drops the VIPs before our GARPs, then VIPs, GARP burst, GARP timers, notify.
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.wants_master = None;
        self.deadlines.clear();
        self.master = None;
        self.preempt_until = None;
        self.master_adver_int = self.cfg.advert_interval;
        self.send_advert(now, out);
        out.push(Action::AddVips);
        let garp = self.cfg.garp;
        if garp.master_repeat > 0 {
            out.push(Action::SendGarp { count: garp.master_repeat });
            if !garp.master_delay.is_zero() {
                self.deadlines.garp_delayed = Some(now + garp.master_delay);
            }
        }
        if let Some(every) = garp.master_refresh.filter(|r| !r.is_zero()) {
            self.deadlines.garp_refresh = Some(now + garp.master_delay + every);
        }
        self.transition(now, State::Master, reason, out);
    }

    /// Master at once, or, in a sync group, Backup (entered with `backup_reason` if not there yet)
    /// waiting for the group, without a down timer: only an advert or the group moves it on.
    fn master_or_wait(&mut self, now: Instant, reason: Reason, backup_reason: Reason, out: &mut Vec<Action>) {
        if !self.cfg.sync_group {
            self.become_master(now, reason, out);
            return;
        }
        if self.state != State::Backup {
            self.enter_backup(now, now, backup_reason, out);
        }
        self.deadlines.master_down = None;
        self.wants_master = Some(reason);
    }

    fn enter_backup(&mut self, now: Instant, master_down_at: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.wants_master = None;
        self.deadlines.clear();
        self.deadlines.master_down = Some(master_down_at);
        self.preempt_until = None;
        self.transition(now, State::Backup, reason, out);
    }

    fn send_advert(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert { priority: self.effective_priority });
        self.deadlines.advert = Some(now + self.cfg.advert_interval);
    }

    /// RFC 5798: a v3 backup adopts the master's interval. v2 intervals must match (checked on
    /// receive), so there is nothing to learn.
    fn learn_interval(&mut self, max_advert_int: Duration) {
        if self.cfg.version == Version::V3 && !max_advert_int.is_zero() {
            self.master_adver_int = max_advert_int;
        }
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.last_transition = Some(Transition { from, to, reason, at: now });
        out.push(Action::Notify(to));
    }

    /// A handed-over role: recorded, but no notify (the node's role did not change).
    fn quiet_transition(&mut self, now: Instant, to: State) {
        let from = self.state;
        self.state = to;
        self.last_transition = Some(Transition { from, to, reason: Reason::Handover, at: now });
    }
}

/// The next periodic deadline after one due at `due` fired at `now`: one period after `due`, or,
/// when the firing was a whole period late (a paused process), one period after `now` rather than
/// a burst of catch-up sends.
fn next_after(due: Instant, every: Duration, now: Instant) -> Instant {
    let next = due + every;
    if next > now { next } else { now + every }
}

/// Primary addresses compare as unsigned integers; different families are incomparable.
fn compare_addr(a: IpAddr, b: IpAddr) -> Option<Ordering> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some(a.cmp(&b)),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some(a.cmp(&b)),
        _ => None,
    }
}
