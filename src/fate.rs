//! Fate sharing between the proxy and VRRP (`track_proxy`): a node whose proxy cannot serve gives
//! its VIPs away at once, instead of holding them while the process merely lives.
//!
//! The proxy reports what it observes into one process-wide [`ProxyFaults`] (a watch channel, so
//! an instance task wakes on the change itself rather than on its next tracking tick):
//! - a listener that stopped listening ([`listener_failed`], cleared when it listens again);
//! - an accept that failed for lack of file descriptors ([`out_of_fds`], cleared by the next
//!   accept that works);
//! - a proxy runtime thread stuck in one poll for [`STALL_THRESHOLD`] ([`spawn_watchdog`]): the
//!   tasks that serve (connections, accept loops, the control socket, the API) run [`watched`], so
//!   the watchdog knows which thread is inside one of their polls and since when.
//!
//! Two failures leave no runtime to act through: a stalled runtime and a panic. For those, each
//! instance keeps a [`LastGasp`] up to date (its priority-0 adverts, already encoded, and the VIPs
//! it holds), and [`resign`] removes the VIPs and sends them from a plain thread. The panic hook
//! ([`install_panic_hook`]) does that, then ends the process when any instance tracks the proxy:
//! after a panic the proxy's state is unknown, and a node that keeps running would hold VIPs its
//! instances believe are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Default for `[global] proxy_stall_threshold`: a proxy runtime thread in one task poll for this
/// long (wall time), having burned at least a quarter of it in CPU time ([`PollWatch`]), is
/// stalled. Why no healthy poll comes near it: a proxy poll is a parse, a rule pass, a TLS
/// handshake step (an RSA-2048 signature is 0.24 ms of CPU on this machine class, RSA-4096 4 ms),
/// a compressed chunk (a 16 KiB buffer: under 1 ms) or a batch of at most 128 I/O operations
/// (tokio's cooperative budget); config loading and other long work run off the runtime threads,
/// and a config swap on them is a pointer store. So a healthy poll burns at most ~4 ms: the CPU
/// condition (10 ms at 40 ms) leaves a margin of 2.5 over the worst, however long the machine
/// keeps the thread from running (a thread waiting for a CPU burns none), and 40 ms of wall time is
/// ten times the longest healthy poll on an idle machine. Detection then takes 40-60 ms on an idle
/// node (the threshold plus up to two 10 ms watchdog rounds), or, on a loaded one, until the
/// spinning thread has had 10 ms of CPU (a late watchdog round counts all the wall time it was
/// late: session 13). Until session 10 the watchdog saw only what tokio
/// publishes when a thread parks and every 61 polls, and needed 100 ms of CPU (61 RSA-2048 steps
/// had to fit under it): 280-600 ms of wall time on a loaded node.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(40);
/// The least `proxy_stall_threshold` accepted: below it, the threshold would be a few watchdog
/// rounds, and its CPU condition (7.5 ms at 30 ms) would come near a healthy RSA-4096 handshake
/// step.
pub const MIN_STALL_THRESHOLD: Duration = Duration::from_millis(30);
/// The part of the threshold a poll must have burned in CPU time to be stalled: a poll longer in
/// wall time than the threshold but not burning is a thread the machine does not run.
const STALL_CPU_PART: u32 = 4;
/// For the polls of tasks not spawned through [`watched`] (health checks, DNS, ...), the watchdog
/// still reads what tokio publishes (every 61 polls, [`StallDetector`]): there the threshold is at
/// least this much CPU, or 61 healthy polls could pass for one stuck.
const BATCH_THRESHOLD: Duration = Duration::from_millis(100);
/// How often the watchdog samples the runtime threads.
const WATCH_EVERY: Duration = Duration::from_millis(10);
/// The most one watchdog round adds to the wall time of the rules without a CPU condition (a
/// thread blocked for [`BLOCKED_THRESHOLD`]), however late the round: a watchdog kept from running
/// does not count its own wait there.
const MAX_ROUND: Duration = Duration::from_millis(20);
/// A runtime thread awake in one poll this long without burning CPU (blocked in a system call or
/// on a lock) is stalled too; HAProxy's watchdog does not see those at all.
const BLOCKED_THRESHOLD: Duration = Duration::from_secs(1);
/// A stall stays reported this long after the thread moves again, so every instance task sees it
/// (a watch channel only keeps the last value) and none keeps acting as a master whose VIPs the
/// watchdog removed.
const STALL_HOLD: Duration = Duration::from_secs(1);
/// Free descriptors it takes to call an exhaustion over: a client connection needs two (its own
/// and its server's), and a few more keep it from flapping at the edge.
const FD_HEADROOM: usize = 16;
/// Upper bound on a last-gasp resignation (adverts and VIP removal).
const RESIGN_LIMIT: Duration = Duration::from_secs(1);

/// `[global] proxy_stall_threshold`, in ms (set at start and at each reload).
static STALL_MS: AtomicU64 = AtomicU64::new(STALL_THRESHOLD.as_millis() as u64);
/// Set once the process resigned for good (a panic): no advert with a priority above 0 leaves it
/// any more, so none undoes the priority-0 adverts before the process ends.
static FINAL: AtomicBool = AtomicBool::new(false);

/// Set once the proxy's main runtime has returned (the process is exiting): its thread no longer
/// moves the counts the watchdog reads, and the workers' stop or the runtimes' drop (connections
/// past `hard_stop_after`) can take over [`BLOCKED_THRESHOLD`], which is no stall.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Tells the watchdog the main runtime has finished: it stops watching, so the exit is never
/// taken for a stall (which would resign the VIPs and withdraw the announcements as a failure).
pub fn proxy_exiting() {
    EXITING.store(true, Ordering::Release);
}

/// Sets the stall threshold the watchdog applies.
pub fn set_stall_threshold(d: Duration) {
    STALL_MS.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

fn stall_threshold() -> Duration {
    Duration::from_millis(STALL_MS.load(Ordering::Relaxed))
}

/// Whether the process resigned for good; instances then send no advert above priority 0, no
/// gratuitous ARP / NA, and add no VIP: nothing that claims the VIPs back from the peer.
pub fn resigned() -> bool {
    FINAL.load(Ordering::Acquire)
}

/// What the proxy cannot do right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyFaults {
    /// Listeners that stopped listening, with why.
    pub listeners: BTreeMap<SocketAddr, String>,
    /// Listeners whose last accept failed for lack of file descriptors.
    pub out_of_fds: BTreeSet<SocketAddr>,
    /// Why the proxy runtime is stalled, while it is (and [`STALL_HOLD`] after).
    pub stalled: Option<String>,
}

impl ProxyFaults {
    /// The fault that takes the VIPs `vips` away: a failed listener on one of them (or on the
    /// wildcard address of their family), descriptors exhausted, or a stall. `None`: the proxy
    /// serves them.
    pub fn concerning(&self, vips: &[IpAddr]) -> Option<String> {
        if let Some(why) = &self.stalled {
            return Some(format!("proxy stalled: {why}"));
        }
        if let Some(addr) = self.out_of_fds.iter().next() {
            return Some(format!("proxy out of file descriptors (accept on {addr} failed)"));
        }
        let serves = |a: &SocketAddr| {
            vips.iter().any(|v| *v == a.ip() || (a.ip().is_unspecified() && v.is_ipv4() == a.is_ipv4()))
        };
        self.listeners.iter().find(|(a, _)| serves(a)).map(|(a, why)| format!("proxy listener {a} failed: {why}"))
    }
}

static FAULTS: LazyLock<watch::Sender<ProxyFaults>> = LazyLock::new(|| watch::channel(ProxyFaults::default()).0);

/// Wakes on every change of the proxy's faults.
pub fn subscribe() -> watch::Receiver<ProxyFaults> {
    FAULTS.subscribe()
}

/// The proxy's faults now.
pub fn current() -> ProxyFaults {
    FAULTS.borrow().clone()
}

fn change(f: impl FnOnce(&mut ProxyFaults) -> bool) {
    FAULTS.send_if_modified(f);
}

/// The listener at `addr` no longer listens.
pub fn listener_failed(addr: SocketAddr, why: &str) {
    change(|f| f.listeners.insert(addr, why.to_string()).as_deref() != Some(why));
}

/// The listener at `addr` listens again, or was closed on purpose.
pub fn listener_ok(addr: SocketAddr) {
    change(|f| f.listeners.remove(&addr).is_some() | f.out_of_fds.remove(&addr));
}

/// An accept on `addr` failed with EMFILE / ENFILE.
pub fn out_of_fds(addr: SocketAddr) {
    change(|f| f.out_of_fds.insert(addr));
}

/// Whether `n` more descriptors can be opened now (they are closed again).
fn fds_free(n: usize) -> bool {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(_) => return false,
        }
    }
    true
}

/// Ends a descriptor exhaustion once [`FD_HEADROOM`] descriptors are free again: with the VIPs
/// gone, no accept may come to tell.
fn recheck_fds() {
    if !FAULTS.borrow().out_of_fds.is_empty() && fds_free(FD_HEADROOM) {
        tracing::info!("file descriptors available again");
        change(|f| {
            let had = !f.out_of_fds.is_empty();
            f.out_of_fds.clear();
            had
        });
    }
}

fn set_stalled(why: Option<String>) {
    change(|f| {
        let changed = f.stalled != why;
        f.stalled = why;
        changed
    });
}

// ---------------------------------------------------------------------------------------------
// Last gasp: what an instance needs to resign without its task.

/// What one VRRP instance would do to resign now: remove `vips` (interface, address), then send
/// `hurry` (a v3 advert with the least interval, once per resignation: `crate::vrrp::resign`) and
/// `adverts` (priority 0), each encoded for each destination, from `src` on `ifname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastGasp {
    pub track_proxy: bool,
    pub master: bool,
    pub ifname: String,
    pub ifindex: u32,
    pub src: IpAddr,
    pub hurry: Vec<(IpAddr, Vec<u8>)>,
    pub adverts: Vec<(IpAddr, Vec<u8>)>,
    pub vips: Vec<(String, crate::net::vip::Vip)>,
}

static GASPS: LazyLock<Mutex<BTreeMap<String, LastGasp>>> = LazyLock::new(Default::default);

/// Records (or with `None` forgets) what instance `name` would do to resign.
pub fn publish(name: &str, gasp: Option<LastGasp>) {
    let mut g = GASPS.lock().unwrap_or_else(|e| e.into_inner());
    match gasp {
        Some(x) => {
            g.insert(name.to_string(), x);
        }
        None => {
            g.remove(name);
        }
    }
}

/// Whether any instance of this process tracks the proxy, or the process announces VIPs
/// (`[[announce]]`, which always follows the proxy's health).
pub fn tracked() -> bool {
    ANNOUNCE_GASP.get().is_some() || lock_briefly().is_some_and(|g| g.values().any(|x| x.track_proxy))
}

/// The announcer's last gasp: `false` withdraws every announcement at once, `true` lets them be
/// announced again. Plain system calls, so it works from the watchdog and the panic hook while
/// the runtime the announcer lives on cannot run.
static ANNOUNCE_GASP: std::sync::OnceLock<fn(bool) -> std::io::Result<()>> = std::sync::OnceLock::new();

/// Registers the announcer's last gasp (once per process).
pub fn set_announce_gasp(f: fn(bool) -> std::io::Result<()>) {
    let _ = ANNOUNCE_GASP.set(f);
}

fn announce_gasp(up: bool) {
    if let Some(f) = ANNOUNCE_GASP.get() {
        match f(up) {
            Ok(()) if up => eprintln!("lbha: announcements may resume"),
            Ok(()) => eprintln!("lbha: every announcement withdrawn (announcement device down)"),
            Err(e) => eprintln!("lbha: announcement device: {e}"),
        }
    }
}

/// Tells the pair's other node (over `[cluster]`'s authenticated channel) which masters resigned,
/// as (instance, the address their adverts came from), so it takes over at once instead of after
/// the RFC's skew time ([`crate::vrrp::fsm::Event::PeerResigned`]). Called by the resigning thread
/// right after its VIP removal and priority-0 adverts (the VRRP instance's own thread, among
/// others), so it must not block beyond a write (`crate::cluster::link`: on a connection held
/// open, or from a thread of its own); returns a wait for the outcome, bounded by
/// [`HAND_OFF_LIMIT`], for a caller that must not end before (a panic).
pub type HandOff = std::sync::Arc<dyn Fn(Vec<(String, IpAddr)>) -> HandOffWait + Send + Sync>;
/// Waits for a hand-off's outcome (bounded).
pub type HandOffWait = Box<dyn FnOnce() + Send>;

/// Set while a `[cluster]` peer is configured.
static HAND_OFF: Mutex<Option<HandOff>> = Mutex::new(None);
/// The instances handed off lately, with when: a stall resigns from the watchdog and again from
/// each instance task (as a fault), and one message is enough.
static HANDED: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());
/// No second message for the same instance within this.
const HAND_OFF_ONCE: Duration = Duration::from_secs(1);
/// The longest a hand-off may take: within [`RESIGN_LIMIT`], which a panic waits for.
pub const HAND_OFF_LIMIT: Duration = Duration::from_millis(500);

/// Sets (or with `None` clears) how to tell the peer node.
pub fn set_hand_off(f: Option<HandOff>) {
    *HAND_OFF.lock().unwrap_or_else(|e| e.into_inner()) = f;
}

/// Which of `list` to hand off at `now`: those not handed off within [`HAND_OFF_ONCE`]; records
/// them. Pure.
pub fn fresh_hand_offs(
    handed: &mut BTreeMap<String, Instant>,
    list: Vec<(String, IpAddr)>,
    now: Instant,
) -> Vec<(String, IpAddr)> {
    handed.retain(|_, at| now.saturating_duration_since(*at) < HAND_OFF_ONCE);
    // The first message's time stands: a repeat does not extend the window.
    list.into_iter()
        .filter(|(n, _)| {
            let fresh = !handed.contains_key(n);
            if fresh {
                handed.insert(n.clone(), now);
            }
            fresh
        })
        .collect()
}

/// Tells the peer node that these masters resigned (nothing without a `[cluster]` peer, or when
/// it was told within [`HAND_OFF_ONCE`]); the returned wait ends within [`HAND_OFF_LIMIT`].
pub fn hand_off(list: Vec<(String, IpAddr)>) -> Option<HandOffWait> {
    let (f, list) = hand_off_due(list)?;
    Some(f(list))
}

/// How to tell the peer, and which of `list` to tell it now.
fn hand_off_due(list: Vec<(String, IpAddr)>) -> Option<(HandOff, Vec<(String, IpAddr)>)> {
    let f = HAND_OFF.lock().ok()?.clone()?;
    let list = fresh_hand_offs(&mut *HANDED.lock().ok()?, list, Instant::now());
    (!list.is_empty()).then_some((f, list))
}

/// [`hand_off`] for async code (a VRRP instance's task), not waited for: the hand-off runs on the
/// runtime's blocking pool (outside a runtime, a thread of its own), since it may wait for the
/// held connection's lock and for room in its socket (`crate::cluster::link`: up to ~120 ms), and
/// on the runtime's own thread that would hold up every task of it (other instances' adverts and
/// timers). The watchdog and the panic hook, on plain threads, call [`hand_off`].
pub fn hand_off_detached(list: Vec<(String, IpAddr)>) {
    let Some((f, list)) = hand_off_due(list) else { return };
    let run = move || drop(f(list));
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(run)),
        Err(_) => {
            if let Err(e) = std::thread::Builder::new().name("lbha-hand-off".into()).spawn(run) {
                tracing::warn!("cluster: cannot start a thread to tell the peer of a resignation: {e}");
            }
        }
    }
}

/// The registry, unless it stays locked (a panic while it was held): the caller goes on without.
fn lock_briefly() -> Option<std::sync::MutexGuard<'static, BTreeMap<String, LastGasp>>> {
    for _ in 0..20 {
        match GASPS.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

/// The masters to resign: those tracking the proxy, or all (`all`).
pub fn to_resign(gasps: &BTreeMap<String, LastGasp>, all: bool) -> Vec<(String, LastGasp)> {
    gasps.iter().filter(|(_, g)| g.master && (all || g.track_proxy)).map(|(n, g)| (n.clone(), g.clone())).collect()
}

/// Removes the VIPs of the masters [`to_resign`] picks and sends their priority-0 adverts, from a
/// plain thread (this may run on a stalled or panicking runtime thread), within [`RESIGN_LIMIT`].
/// Returns the instances resigned. (Keeping the VIPs until the new master's first advert was
/// tried: when that advert was missed, both nodes answered ARP for the hold and a client's
/// neighbour entry could go back to this node, then point at nothing for seconds.)
pub fn resign(all: bool, why: &str) -> Vec<String> {
    let Some(list) = lock_briefly().map(|g| to_resign(&g, all)) else {
        return Vec::new();
    };
    if list.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    eprintln!("lbha: {why}: resigning VRRP master(s) {} (VIPs removed, priority 0)", names.join(", "));
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("lbha-resign".into()).spawn(move || {
        carry_out(&list, &mut System);
        let _ = tx.send(());
    });
    if spawned.is_ok() && rx.recv_timeout(RESIGN_LIMIT).is_err() {
        eprintln!("lbha: resigning took longer than {RESIGN_LIMIT:?}");
    }
    names
}

/// What a resignation does to the world, apart from its order ([`carry_out`]).
trait Resigning {
    /// Removes the VIPs of every instance of `list`; returns those whose VIPs may remain.
    fn remove_vips(&mut self, list: &[(String, LastGasp)]) -> BTreeSet<String>;
    /// Whether instance `name` sends its short-interval advert now (`crate::vrrp::resign`).
    fn hurry_due(&mut self, name: &str) -> bool;
    /// Sends `adverts` (encoded, with their destinations) for instance `name`.
    fn send(&mut self, name: &str, g: &LastGasp, adverts: &[&(IpAddr, Vec<u8>)]);
    /// Tells the `[cluster]` peer that these masters resigned, and waits for the outcome (bounded).
    fn hand_off(&mut self, list: Vec<(String, IpAddr)>);
}

/// A resignation, in order. The VIPs go first: a v3 backup takes over ~6 ms after the
/// short-interval advert (0.2 ms at priority 250), and found them still here while netlink was
/// slow, both nodes answering ARP for them. An instance whose VIPs may remain (the removal failed
/// or ran out of time) sends its priority-0 advert alone, so the backup waits its usual skew
/// time. The peer node of a `[cluster]` pair is told last (one write on the connection held open
/// to it): told before the VIPs were gone, it took over while this node still answered ARP for
/// them, and a client's neighbour entry could point here for 5 s.
fn carry_out(list: &[(String, LastGasp)], world: &mut impl Resigning) {
    let remain = world.remove_vips(list);
    for (name, g) in list {
        let hurry = !remain.contains(name) && world.hurry_due(name);
        let hurry = if hurry { &g.hurry[..] } else { &[] };
        let adverts: Vec<&(IpAddr, Vec<u8>)> = hurry.iter().chain(&g.adverts).collect();
        world.send(name, g, &adverts);
    }
    world.hand_off(list.iter().map(|(n, g)| (n.clone(), g.src)).collect());
}

/// The longest the VIP removal of a resignation may take before its adverts go anyway (without
/// the short-interval one): within [`RESIGN_LIMIT`], with the adverts and [`HAND_OFF_LIMIT`].
const VIP_REMOVAL_LIMIT: Duration = Duration::from_millis(300);

/// Raw sockets, netlink and the `[cluster]` link.
struct System;

impl Resigning for System {
    fn remove_vips(&mut self, list: &[(String, LastGasp)]) -> BTreeSet<String> {
        remove_vips(list)
    }

    fn hurry_due(&mut self, name: &str) -> bool {
        crate::vrrp::resign::hurry_due(name)
    }

    fn send(&mut self, name: &str, g: &LastGasp, adverts: &[&(IpAddr, Vec<u8>)]) {
        let sent = advert_socket(g).and_then(|s| adverts.iter().try_for_each(|(dst, b)| send_to(&s, b, *dst)));
        if let Err(e) = sent {
            eprintln!("lbha: vrrp_instance {name}: priority-0 advert: {e}");
        }
    }

    fn hand_off(&mut self, list: Vec<(String, IpAddr)>) {
        if let Some(wait) = hand_off(list) {
            wait();
        }
    }
}

/// A raw VRRP socket on the instance's interface, sending from its source address.
fn advert_socket(g: &LastGasp) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let domain = if g.src.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(crate::vrrp::packet::IPPROTO_VRRP))))?;
    s.bind_device(Some(g.ifname.as_bytes()))?;
    let ttl = u32::from(crate::vrrp::packet::VRRP_TTL);
    match g.src {
        IpAddr::V4(v4) => {
            s.set_multicast_if_v4(&v4)?;
            s.set_multicast_ttl_v4(ttl)?;
            s.set_ttl_v4(ttl)?;
            s.set_tos_v4(u32::from(crate::vrrp::packet::VRRP_TOS))?;
            s.set_freebind_v4(true)?;
            s.bind(&SockAddr::from(SocketAddr::new(g.src, 0)))?;
        }
        IpAddr::V6(v6) => {
            s.set_multicast_if_v6(g.ifindex)?;
            s.set_multicast_hops_v6(ttl)?;
            s.set_unicast_hops_v6(ttl)?;
            s.set_freebind_v6(true)?;
            let scope = if (v6.segments()[0] & 0xffc0) == 0xfe80 { g.ifindex } else { 0 };
            s.bind(&SockAddr::from(std::net::SocketAddrV6::new(v6, 0, 0, scope)))?;
        }
    }
    s.set_write_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

fn send_to(s: &socket2::Socket, bytes: &[u8], dst: IpAddr) -> std::io::Result<()> {
    s.send_to(bytes, &socket2::SockAddr::from(SocketAddr::new(dst, 0))).map(|_| ())
}

/// Removes the VIPs of every instance resigned, within [`VIP_REMOVAL_LIMIT`]; returns the
/// instances whose VIPs may remain.
fn remove_vips(list: &[(String, LastGasp)]) -> BTreeSet<String> {
    let all = || list.iter().map(|(n, _)| n.clone()).collect();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lbha: cannot remove VIPs: {e}");
            return all();
        }
    };
    let remain = rt.block_on(async {
        let h = match crate::net::vip::VipHandle::new() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("lbha: cannot remove VIPs: {e}");
                return Some(all());
            }
        };
        let removal = async {
            let mut remain = BTreeSet::new();
            for (name, g) in list {
                for (dev, vip) in &g.vips {
                    if let Err(e) = h.del(dev, vip).await {
                        eprintln!("lbha: vrrp_instance {name}: {e}");
                        remain.insert(name.clone());
                    }
                }
            }
            remain
        };
        tokio::time::timeout(VIP_REMOVAL_LIMIT, removal).await.ok()
    });
    remain.unwrap_or_else(|| {
        eprintln!("lbha: removing the VIPs took longer than {VIP_REMOVAL_LIMIT:?}; adverts sent anyway");
        all()
    })
}

// ---------------------------------------------------------------------------------------------
// The watchdog.

/// What the watchdog samples of one runtime thread: its park/unpark count (odd while parked) and
/// its busy time (published after every batch of polls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSample {
    pub park_unpark: u64,
    pub busy: Duration,
}

/// Finds a runtime thread stuck in one poll: awake (even park/unpark count) with neither count
/// nor busy time moving (each thread publishes them itself, when it parks and after every 61
/// polls, so only a thread that returns to its scheduler moves them) while runtime threads that
/// did not park burned `threshold` of CPU: a thread spinning in one poll. Counting CPU, not wall
/// time, keeps a loaded machine from passing for a stall: a thread waiting for a CPU burns none,
/// and a healthy one gets about the share the spinning one gets, which lets it publish long before.
/// A thread awake and unchanged for [`BLOCKED_THRESHOLD`] of wall time (rounds count at most
/// `max_round`, so a watchdog kept from running does not count its wait) is stalled as well.
/// Pure: the caller passes the clock and the CPU burned.
#[derive(Debug)]
pub struct StallDetector {
    /// Per thread: the last sample, and the CPU and wall time it has stayed unchanged while awake.
    last: Vec<(WorkerSample, Duration, Duration)>,
    prev: Option<Instant>,
    max_round: Duration,
}

impl Default for StallDetector {
    fn default() -> Self {
        StallDetector::new(MAX_ROUND)
    }
}

impl StallDetector {
    pub fn new(max_round: Duration) -> Self {
        StallDetector { last: Vec::new(), prev: None, max_round }
    }

    /// Feeds one sample per thread and the CPU runtime threads burned this round without parking
    /// ([`CpuMeter`]); returns the first stuck thread and the CPU (or wall) time it has been.
    pub fn observe(
        &mut self,
        now: Instant,
        samples: &[WorkerSample],
        cpu: Duration,
        threshold: Duration,
    ) -> Option<(usize, Duration)> {
        let round = self.prev.map_or(Duration::ZERO, |p| now.saturating_duration_since(p).min(self.max_round));
        self.prev = Some(now);
        if self.last.len() != samples.len() {
            self.last = samples.iter().map(|s| (*s, Duration::ZERO, Duration::ZERO)).collect();
            return None;
        }
        let mut stuck = None;
        for (i, (s, (prev, burned, waited))) in samples.iter().zip(self.last.iter_mut()).enumerate() {
            if s != prev || s.park_unpark % 2 == 1 {
                (*prev, *burned, *waited) = (*s, Duration::ZERO, Duration::ZERO);
                continue;
            }
            *burned += cpu;
            *waited += round;
            if stuck.is_none() {
                if *burned >= threshold {
                    stuck = Some((i, *burned));
                } else if *waited >= BLOCKED_THRESHOLD {
                    stuck = Some((i, *waited));
                }
            }
        }
        stuck
    }
}

/// The CPU the runtime threads burned between two rounds without parking or unparking: the most
/// of any one thread. Pure: fed (heartbeat count, CPU time) per thread, in registration order.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Vec<(u64, Duration)>,
}

impl CpuMeter {
    pub fn round(&mut self, now: &[(u64, Duration)]) -> Duration {
        let mut most = Duration::ZERO;
        for (i, (beats, cpu)) in now.iter().enumerate() {
            if let Some((b, c)) = self.last.get(i)
                && b == beats
            {
                most = most.max(cpu.saturating_sub(*c));
            }
        }
        self.last = now.to_vec();
        most
    }
}

/// What one proxy runtime thread tells the watchdog: its heartbeat count (bumped as it parks and
/// unparks: the runtime's `on_thread_park` / `on_thread_unpark`) and its poll mark (bumped as it
/// enters and leaves a poll of a [`watched`] task: odd while inside one). Each thread writes its
/// own; the watchdog only reads.
#[derive(Debug)]
struct ThreadMarks {
    tid: i32,
    beats: AtomicU64,
    polls: AtomicU64,
}

/// Every thread that registered, in registration order (entries of threads gone stay, never
/// moving again: a few bytes each, and the proxy runtime's threads live as long as the process).
static THREADS: Mutex<Vec<&'static ThreadMarks>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: std::cell::Cell<Option<&'static ThreadMarks>> = const { std::cell::Cell::new(None) };
}

/// This thread's marks, registered on first use.
fn mine() -> &'static ThreadMarks {
    MINE.with(|m| {
        m.get().unwrap_or_else(|| {
            let new: &'static ThreadMarks = Box::leak(Box::new(ThreadMarks {
                tid: nix::unistd::gettid().as_raw(),
                beats: AtomicU64::new(0),
                polls: AtomicU64::new(0),
            }));
            THREADS.lock().unwrap_or_else(|e| e.into_inner()).push(new);
            m.set(Some(new));
            new
        })
    })
}

/// Called by each runtime thread when it parks or unparks.
pub fn beat() {
    mine().beats.fetch_add(1, Ordering::Relaxed);
}

/// Bumps this thread's poll mark: odd from here until it drops. Inside a poll already (a watched
/// future polled by another), it does nothing, so the mark stays that of the outer poll.
struct PollMark(Option<&'static ThreadMarks>);

impl PollMark {
    fn enter() -> PollMark {
        let m = mine();
        // Only this thread writes its mark: a load and a store, no read-modify-write.
        let v = m.polls.load(Ordering::Relaxed);
        if v % 2 == 1 {
            return PollMark(None);
        }
        m.polls.store(v + 1, Ordering::Relaxed);
        PollMark(Some(m))
    }
}

impl Drop for PollMark {
    /// Also when the poll unwinds: a panicking task is not a thread stuck in a poll.
    fn drop(&mut self) {
        if let Some(m) = self.0 {
            m.polls.store(m.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// A task whose polls the watchdog sees ([`watched`]).
    pub struct Watched<F> {
        #[pin]
        inner: F,
    }
}

impl<F: std::future::Future> std::future::Future for Watched<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let _mark = PollMark::enter();
        self.project().inner.poll(cx)
    }
}

/// Wraps a task spawned on the proxy runtime so that the watchdog knows when its thread is inside
/// one of its polls: two relaxed stores of a thread-local counter per poll, no clock read.
pub fn watched<F: std::future::Future>(inner: F) -> Watched<F> {
    Watched { inner }
}

/// `tokio::spawn`, [`watched`].
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(watched(task))
}

/// The thread id of each registered thread, in registration order (as [`threads`]).
pub fn thread_ids() -> Vec<i32> {
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|t| t.tid).collect()
}

/// A thread's CPU time so far (`/proc/self/task/TID/schedstat`, in ns); zero if unreadable.
fn thread_cpu(tid: i32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// One registered thread now: heartbeat count, poll mark, CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSample {
    pub beats: u64,
    pub polls: u64,
    pub cpu: Duration,
}

/// Held by the tests that read every thread's marks ([`threads`]) and those that make a thread
/// spin in a watched poll, so one's spinning thread is not in the other's samples.
#[cfg(test)]
pub static THREAD_MARKS_TEST: Mutex<()> = Mutex::new(());

/// Each registered thread now, in registration order.
pub fn threads() -> Vec<ThreadSample> {
    let list: Vec<&'static ThreadMarks> = THREADS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    list.iter()
        .map(|t| ThreadSample {
            beats: t.beats.load(Ordering::Relaxed),
            polls: t.polls.load(Ordering::Relaxed),
            cpu: thread_cpu(t.tid),
        })
        .collect()
}

/// Finds a thread stuck in one poll of a [`watched`] task: its poll mark odd and unchanged for
/// `threshold` of wall time while it burned a quarter of that in CPU time ([`STALL_CPU_PART`]), or
/// for [`BLOCKED_THRESHOLD`] whatever it burned (blocked in a system call or on a lock). Wall time
/// counts from the first round that saw the mark (so a poll is at least that old: never less
/// than the threshold). For the CPU rule it is the whole wall time since, however late the rounds:
/// the CPU burned is what keeps a loaded machine from passing for a stall (a healthy poll burns a
/// few ms at most, however long the machine keeps its thread waiting, and a thread waiting for a
/// CPU burns none), so a watchdog kept from running for 100 ms decides on its next round instead
/// of counting 20 ms of those 100. The blocked rule has no CPU condition: there each round counts
/// at most `max_round`, so a watchdog kept from running does not count its own wait.
/// Pure: the caller passes the clock and the samples ([`threads`]).
#[derive(Debug)]
pub struct PollWatch {
    /// Per thread: what is known of the poll it is in.
    last: Vec<InPoll>,
    prev: Option<Instant>,
    max_round: Duration,
}

impl Default for PollWatch {
    fn default() -> Self {
        PollWatch::new(MAX_ROUND)
    }
}

/// A thread found stuck in one poll: its index among the samples, the wall and CPU time counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    pub thread: usize,
    pub wall: Duration,
    pub cpu: Duration,
}

/// One thread's poll as the watchdog has seen it.
#[derive(Debug, Clone, Copy, Default)]
struct InPoll {
    /// The poll mark last seen (even: outside a watched poll; a new thread starts there).
    mark: u64,
    /// When the round that first saw this mark ran, and the thread's CPU time then.
    since: Option<Instant>,
    cpu0: Duration,
    /// The wall time counted for the blocked rule (rounds capped at `max_round`).
    waited: Duration,
}

impl PollWatch {
    pub fn new(max_round: Duration) -> Self {
        PollWatch { last: Vec::new(), prev: None, max_round }
    }

    /// Feeds one round; returns the first thread stuck in one poll.
    pub fn observe(&mut self, now: Instant, threads: &[ThreadSample], threshold: Duration) -> Option<Stuck> {
        let round = self.prev.map_or(Duration::ZERO, |p| now.saturating_duration_since(p).min(self.max_round));
        self.prev = Some(now);
        // Threads only ever register: a new one starts unknown (an even mark never matches).
        self.last.resize(threads.len(), InPoll::default());
        let cpu_needed = threshold / STALL_CPU_PART;
        let mut stuck = None;
        for (i, (t, p)) in threads.iter().zip(self.last.iter_mut()).enumerate() {
            if t.polls % 2 == 0 || t.polls != p.mark {
                *p = InPoll { mark: t.polls, since: Some(now), cpu0: t.cpu, waited: Duration::ZERO };
                continue;
            }
            p.waited += round;
            let wall = p.since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
            let burned = t.cpu.saturating_sub(p.cpu0);
            let found = if wall >= threshold && burned >= cpu_needed {
                Some(Stuck { thread: i, wall, cpu: burned })
            } else if p.waited >= BLOCKED_THRESHOLD {
                Some(Stuck { thread: i, wall: p.waited, cpu: burned })
            } else {
                None
            };
            stuck = stuck.or(found);
        }
        stuck
    }
}

/// The runtime's threads' heartbeats now.
pub fn sample(metrics: &tokio::runtime::RuntimeMetrics) -> Vec<WorkerSample> {
    (0..metrics.num_workers())
        .map(|w| WorkerSample {
            park_unpark: metrics.worker_park_unpark_count(w),
            busy: metrics.worker_total_busy_duration(w),
        })
        .collect()
}

/// Whether a stall is reported now: from detection until [`STALL_HOLD`] after the last stuck
/// sample. Pure.
#[derive(Debug, Default)]
pub struct StallLatch {
    last_stuck: Option<Instant>,
}

impl StallLatch {
    /// Feeds one round; returns `Some(true)` when the stall starts, `Some(false)` when it ends.
    pub fn feed(&mut self, now: Instant, stuck: bool) -> Option<bool> {
        match (stuck, self.last_stuck) {
            (true, None) => {
                self.last_stuck = Some(now);
                Some(true)
            }
            (true, Some(_)) => {
                self.last_stuck = Some(now);
                None
            }
            (false, Some(t)) if now.saturating_duration_since(t) >= STALL_HOLD => {
                self.last_stuck = None;
                Some(false)
            }
            _ => None,
        }
    }
}

/// Watches the proxy runtimes' threads from a thread of its own (`handles`: every proxy runtime,
/// one per thread with `nbthread > 1`): a stall is reported to the instances (they enter Fault
/// when they run again), and the masters tracking the proxy resign at once. Also ends a
/// descriptor exhaustion when descriptors are free again.
pub fn spawn_watchdog(handles: Vec<tokio::runtime::Handle>) {
    let spawned = std::thread::Builder::new().name("lbha-watchdog".into()).spawn(move || {
        let metrics: Vec<tokio::runtime::RuntimeMetrics> = handles.iter().map(|h| h.metrics()).collect();
        let mut polls = PollWatch::default();
        let mut detector = StallDetector::default();
        let mut meter = CpuMeter::default();
        let mut latch = StallLatch::default();
        let mut rounds = 0u32;
        loop {
            std::thread::sleep(WATCH_EVERY);
            let samples: Vec<WorkerSample> = metrics.iter().flat_map(sample).collect();
            let threads = threads();
            let beats: Vec<(u64, Duration)> = threads.iter().map(|t| (t.beats, t.cpu)).collect();
            let cpu = meter.round(&beats);
            let now = Instant::now();
            let threshold = stall_threshold();
            let in_poll = polls.observe(now, &threads, threshold).map(|s| {
                format!(
                    "runtime thread {} stuck in one poll ({} ms, {} ms of CPU)",
                    s.thread,
                    s.wall.as_millis(),
                    s.cpu.as_millis()
                )
            });
            let batch = detector.observe(now, &samples, cpu, threshold.max(BATCH_THRESHOLD)).map(|(w, d)| {
                format!("runtime thread {w} stuck in one poll ({} ms, not a watched task)", d.as_millis())
            });
            let stuck = in_poll.or(batch);
            if stuck.is_none() && rounds.is_multiple_of(5) {
                recheck_fds();
            }
            rounds = rounds.wrapping_add(1);
            // Read after sampling: a round that began before the main runtime returned does not
            // report its thread as stuck.
            if EXITING.load(Ordering::Acquire) {
                tracing::debug!("the proxy is exiting: the watchdog stops");
                return;
            }
            match latch.feed(now, stuck.is_some()) {
                Some(true) => {
                    let why = stuck.unwrap_or_default();
                    tracing::error!("proxy stalled: {why}; VRRP masters tracking the proxy resign");
                    set_stalled(Some(why.clone()));
                    resign(false, &format!("proxy stalled ({why})"));
                    announce_gasp(false);
                }
                Some(false) => {
                    tracing::warn!("proxy runtime threads move again: stall over");
                    // The announcer, running again, withdrew meanwhile (the stall is still
                    // reported through the hold); it announces again once the report ends.
                    announce_gasp(true);
                    set_stalled(None);
                }
                None => {}
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the proxy watchdog: {e}");
    }
}

/// On a panic, when an instance tracks the proxy or VIPs are announced: the masters resign (on a
/// thread of their own, which then ends the process: systemd restarts it; the peer or the other
/// nodes serve meanwhile) and the announcements are withdrawn. A runtime thread's panic then goes
/// on as usual (the runtime ends the task that panicked), so the thread is not held up by the
/// resignation; any other thread waits for the end.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !tracked() {
            return default(info);
        }
        // No advert above priority 0 may follow the priority-0 ones.
        let first = !FINAL.swap(true, Ordering::SeqCst);
        let spawned = first
            && std::thread::Builder::new()
                .name("lbha-last-gasp".into())
                .spawn(|| {
                    resign(true, "panic");
                    announce_gasp(false);
                    eprintln!("lbha: panic with track_proxy on: the process ends");
                    std::process::abort();
                })
                .is_ok();
        default(info);
        let name = std::thread::current().name().map(str::to_owned);
        let runtime_thread = name
            .as_deref()
            .is_some_and(|n| n == "tokio-runtime-worker" || n.starts_with(crate::proxy::workers::THREAD_PREFIX));
        if first && !spawned {
            resign(true, "panic");
            announce_gasp(false);
            std::process::abort();
        }
        if !runtime_thread {
            std::thread::sleep(RESIGN_LIMIT + Duration::from_secs(1));
            std::process::abort();
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_failed_listener_concerns_the_instances_it_serves() {
        let mut f = ProxyFaults::default();
        f.listeners.insert(sa("192.0.2.100:80"), "not listening".into());
        assert_eq!(
            f.concerning(&[ip("192.0.2.100")]).as_deref(),
            Some("proxy listener 192.0.2.100:80 failed: not listening")
        );
        assert_eq!(f.concerning(&[ip("192.0.2.101")]), None);
        f.listeners.clear();
        f.listeners.insert(sa("0.0.0.0:443"), "gone".into());
        assert!(f.concerning(&[ip("192.0.2.101")]).is_some(), "a wildcard listener serves every IPv4 VIP");
        assert_eq!(f.concerning(&[ip("2001:db8::1")]), None, "but no IPv6 one");
        f.listeners.clear();
        assert_eq!(f.concerning(&[ip("192.0.2.100")]), None);
    }

    #[test]
    fn descriptors_and_stalls_concern_every_instance() {
        let mut f = ProxyFaults::default();
        f.out_of_fds.insert(sa("192.0.2.7:80"));
        assert!(f.concerning(&[ip("2001:db8::1")]).unwrap().contains("out of file descriptors"));
        f.stalled = Some("thread 1".into());
        assert_eq!(f.concerning(&[]).as_deref(), Some("proxy stalled: thread 1"));
    }

    #[test]
    fn a_thread_awake_and_unchanged_while_cpu_burns_is_stuck() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (th, cpu) = (Duration::from_millis(100), Duration::from_millis(10));
        let busy = |p, b| WorkerSample { park_unpark: p, busy: Duration::from_millis(b) };
        let mut d = StallDetector::new(Duration::from_millis(20));
        assert_eq!(d.observe(ms(0), &[busy(2, 10), busy(4, 10)], cpu, th), None);
        // Thread 0 keeps publishing busy time: working, not stuck. Thread 1 is parked (odd).
        for i in 1..=20 {
            assert_eq!(d.observe(ms(i * 10), &[busy(2, 10 + i), busy(5, 10)], cpu, th), None);
        }
        // Thread 1 wakes (at 210) and stays in one poll while 10 ms of CPU burn per round.
        for i in 21..=30 {
            assert_eq!(d.observe(ms(i * 10), &[busy(2, 10 + i), busy(6, 10)], cpu, th), None, "round {i}");
        }
        assert_eq!(d.observe(ms(310), &[busy(2, 41), busy(6, 10)], cpu, th), Some((1, th)));
        // It moves again.
        assert_eq!(d.observe(ms(320), &[busy(2, 42), busy(6, 300)], cpu, th), None);
        // A changed thread count starts over.
        assert_eq!(d.observe(ms(5000), &[busy(2, 43)], cpu, th), None);
    }

    #[test]
    fn a_starved_thread_is_not_stuck_but_one_blocked_for_a_second_is() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(100);
        let awake = [WorkerSample { park_unpark: 2, busy: Duration::from_millis(7) }];
        let mut d = StallDetector::new(Duration::from_millis(20));
        assert_eq!(d.observe(ms(0), &awake, Duration::ZERO, th), None);
        // Unchanged for 900 ms of rounds, but no runtime thread burned CPU: waiting for a CPU
        // (or blocked), not spinning.
        for i in 1..=90 {
            assert_eq!(d.observe(ms(i * 10), &awake, Duration::from_micros(500), th), None, "round {i}");
        }
        // The watchdog itself waited 500 ms for a CPU: that round counts 20 ms, not 500.
        assert_eq!(d.observe(ms(1400), &awake, Duration::ZERO, th), None);
        for i in 1..=7 {
            assert_eq!(d.observe(ms(1400 + i * 10), &awake, Duration::ZERO, th), None, "round {i}");
        }
        // A second of counted wall time: blocked in one poll.
        assert_eq!(d.observe(ms(1480), &awake, Duration::ZERO, th), Some((0, BLOCKED_THRESHOLD)));
    }

    #[test]
    fn the_cpu_meter_counts_threads_that_did_not_park() {
        let ms = Duration::from_millis;
        let mut m = CpuMeter::default();
        assert_eq!(m.round(&[(1, ms(5)), (4, ms(9))]), Duration::ZERO);
        // Thread 0 parked meanwhile (its count moved); thread 1 burned 30 ms without parking.
        assert_eq!(m.round(&[(2, ms(50)), (4, ms(39))]), ms(30));
        // A new thread registers: nothing known of it yet.
        assert_eq!(m.round(&[(2, ms(52)), (5, ms(40)), (0, ms(1))]), ms(2));
    }

    /// The non-stall case under load: a real two-thread runtime (with the daemon's heartbeat
    /// hooks) kept busy by many watched tasks doing 0.2 ms of work per poll (hundreds of times a
    /// proxy poll's), sampled as the watchdog does, is never taken for stalled at the default
    /// threshold by either detector, even on a machine loaded by other work; a thread then
    /// spinning in one poll of a watched task is.
    #[test]
    fn a_busy_runtime_is_not_stalled_and_a_spinning_thread_is() {
        let _alone = THREAD_MARKS_TEST.lock().unwrap_or_else(|e| e.into_inner());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_park(beat)
            .on_thread_unpark(beat)
            .enable_all()
            .build()
            .expect("runtime");
        let metrics = rt.handle().metrics();
        let spin = |d: Duration| {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < d {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        };
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        for _ in 0..64 {
            let stop = stop.clone();
            rt.spawn(watched(async move {
                while !stop.load(Ordering::Relaxed) {
                    spin(Duration::from_micros(200));
                    tokio::task::yield_now().await;
                }
            }));
        }
        let (mut p, mut d, mut m) = (PollWatch::default(), StallDetector::default(), CpuMeter::default());
        let mut round = || {
            let (now, t) = (Instant::now(), threads());
            let beats: Vec<(u64, Duration)> = t.iter().map(|t| (t.beats, t.cpu)).collect();
            let batch = d.observe(now, &sample(&metrics), m.round(&beats), BATCH_THRESHOLD);
            (p.observe(now, &t, STALL_THRESHOLD), batch)
        };
        // Bounded: 2 s of rounds.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(WATCH_EVERY);
            assert_eq!(round(), (None, None), "a busy but healthy runtime taken for stalled");
        }
        stop.store(true, Ordering::Relaxed);
        // One task spins in one poll for 4 s.
        rt.spawn(watched(async move { spin(Duration::from_secs(4)) }));
        let t1 = Instant::now();
        let mut found = None;
        while found.is_none() && t1.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(WATCH_EVERY);
            found = round().0;
        }
        assert!(found.is_some(), "a thread spinning in one poll was not found");
        rt.shutdown_background();
    }

    fn marks(polls: u64, cpu_ms: u64) -> ThreadSample {
        ThreadSample { beats: 2, polls, cpu: Duration::from_millis(cpu_ms) }
    }

    #[test]
    fn a_thread_in_one_watched_poll_past_the_threshold_while_burning_is_stuck() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(40);
        let mut w = PollWatch::new(Duration::from_millis(20));
        // Thread 0 enters a poll (odd mark) and burns a quarter of a CPU from there; thread 1
        // polls many short ones (its mark moves every round) at full speed.
        assert_eq!(w.observe(ms(0), &[marks(7, 100), marks(9, 0)], th), None);
        for i in 1..4 {
            let s = [marks(7, 100 + 10 * i / 4), marks(9 + 2 * i, 10 * i)];
            assert_eq!(w.observe(ms(i * 10), &s, th), None, "round {i}");
        }
        let s = [marks(7, 110), marks(17, 40)];
        let stuck = Stuck { thread: 0, wall: th, cpu: Duration::from_millis(10) };
        assert_eq!(w.observe(ms(40), &s, th), Some(stuck));
        // It leaves the poll: over at once.
        assert_eq!(w.observe(ms(50), &[marks(8, 112), marks(19, 50)], th), None);
        // A new poll starts unknown: its first round counts nothing.
        assert_eq!(w.observe(ms(60), &[marks(9, 115), marks(21, 60)], th), None);
        assert_eq!(w.observe(ms(90), &[marks(9, 140), marks(23, 70)], th), None, "30 ms of 40");
        let stuck = Stuck { thread: 0, wall: th, cpu: Duration::from_millis(25) };
        assert_eq!(w.observe(ms(100), &[marks(9, 140), marks(25, 80)], th), Some(stuck));
    }

    #[test]
    fn a_late_round_counts_its_whole_wall_time_when_the_thread_burned() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(40);
        let mut w = PollWatch::new(Duration::from_millis(20));
        assert_eq!(w.observe(ms(0), &[marks(5, 100), marks(7, 0)], th), None);
        assert_eq!(w.observe(ms(10), &[marks(5, 102), marks(7, 0)], th), None);
        // The watchdog waited 100 ms for a CPU. Thread 0 spun through it (12 ms of CPU at its
        // share of a loaded machine): stuck now, not after more rounds. Thread 1, in one poll as
        // long, burned nothing: a thread the machine did not run, not a stall.
        let stuck = Stuck { thread: 0, wall: Duration::from_millis(110), cpu: Duration::from_millis(12) };
        assert_eq!(w.observe(ms(110), &[marks(5, 112), marks(7, 0)], th), Some(stuck));
        // The same late round with 9 ms burned (a poll descheduled, below a quarter of 40 ms).
        let mut w = PollWatch::new(Duration::from_millis(20));
        assert_eq!(w.observe(ms(0), &[marks(5, 100)], th), None);
        assert_eq!(w.observe(ms(10), &[marks(5, 102)], th), None);
        assert_eq!(w.observe(ms(300), &[marks(5, 109)], th), None);
        // Once it has burned its 10 ms, it is stuck, with the wall time it has been in the poll.
        let stuck = Stuck { thread: 0, wall: Duration::from_millis(310), cpu: Duration::from_millis(10) };
        assert_eq!(w.observe(ms(310), &[marks(5, 110)], th), Some(stuck));
    }

    #[test]
    fn a_poll_kept_from_running_is_not_stuck_until_it_is_blocked_for_a_second() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(40);
        let mut w = PollWatch::new(Duration::from_millis(20));
        assert_eq!(w.observe(ms(0), &[marks(3, 50)], th), None);
        // 900 ms in one poll with 9 ms of CPU (below the 10 ms a quarter of 40 ms asks): a
        // thread the machine does not run, or a short poll descheduled.
        for i in 1..=90 {
            assert_eq!(w.observe(ms(i * 10), &[marks(3, 50 + i / 10)], th), None, "round {i}");
        }
        // The watchdog itself waited 500 ms for a CPU: that round counts 20 ms, not 500.
        assert_eq!(w.observe(ms(1400), &[marks(3, 59)], th), None);
        for i in 1..=7 {
            assert_eq!(w.observe(ms(1400 + i * 10), &[marks(3, 59)], th), None, "round {i}");
        }
        // A second of counted wall time: blocked in one poll, whatever it burned.
        let stuck = Stuck { thread: 0, wall: BLOCKED_THRESHOLD, cpu: Duration::from_millis(9) };
        assert_eq!(w.observe(ms(1480), &[marks(3, 59)], th), Some(stuck));
    }

    #[test]
    fn threads_outside_a_watched_poll_or_newly_registered_are_not_stuck() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(40);
        let mut w = PollWatch::new(Duration::from_millis(20));
        // An even mark: parked, or in the poll of a task not watched (the batch detector's
        // business), however long and however much it burns.
        for i in 0..50 {
            assert_eq!(w.observe(ms(i * 10), &[marks(4, i * 10)], th), None, "round {i}");
        }
        // A second thread registers, already in a poll: it counts from its first round.
        assert_eq!(w.observe(ms(500), &[marks(4, 500), marks(1, 0)], th), None);
        for i in 1..4 {
            assert_eq!(w.observe(ms(500 + i * 10), &[marks(4, 500), marks(1, i * 10)], th), None);
        }
        let stuck = Stuck { thread: 1, wall: th, cpu: th };
        assert_eq!(w.observe(ms(540), &[marks(4, 500), marks(1, 40)], th), Some(stuck));
    }

    #[test]
    fn a_watched_poll_marks_its_thread_and_a_panic_in_it_unmarks_it() {
        let mark = || mine().polls.load(Ordering::Relaxed);
        let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
        let before = mark();
        assert_eq!(before % 2, 0);
        // Inside: odd, and a watched future polled within does not change it.
        let mut outer = std::pin::pin!(watched(async {
            let seen = mark();
            let inner = std::pin::pin!(watched(async { mark() }));
            let nested =
                std::future::Future::poll(inner, &mut std::task::Context::from_waker(std::task::Waker::noop()));
            (seen, nested, mark())
        }));
        let std::task::Poll::Ready((seen, nested, after_inner)) = std::future::Future::poll(outer.as_mut(), cx) else {
            panic!("ready at once")
        };
        assert_eq!((seen, nested, after_inner), (before + 1, std::task::Poll::Ready(before + 1), before + 1));
        assert_eq!(mark(), before + 2);
        // A poll that unwinds leaves the thread out of it.
        let caught = std::panic::catch_unwind(|| {
            // Unwinding without the panic hook: a hook printing a backtrace inside the poll would
            // hold the mark odd for 100 ms of CPU, which a test running alongside would see.
            let f = std::pin::pin!(watched(async { std::panic::resume_unwind(Box::new("in a poll")) }));
            let _ = std::future::Future::poll(f, &mut std::task::Context::from_waker(std::task::Waker::noop()));
        });
        assert!(caught.is_err());
        assert_eq!(mark(), before + 4);
    }

    /// The VRRP instance's hand-off (`crate::vrrp::instance`) on its current-thread runtime: a
    /// hand-off that blocks (the held connection busy, a write waiting for room) must not hold up
    /// the runtime's other tasks.
    #[test]
    fn a_hand_off_from_a_vrrp_task_does_not_block_its_runtime() {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
        let tx = Mutex::new(tx);
        set_hand_off(Some(std::sync::Arc::new(move |list: Vec<(String, IpAddr)>| {
            // Other tests' instances may resign meanwhile: only this test's counts, and blocks.
            if list.iter().any(|(n, _)| n == "VI_detached") {
                std::thread::sleep(Duration::from_millis(400));
                let _ = tx.lock().expect("sender").send(list.into_iter().map(|(n, _)| n).collect());
            }
            Box::new(|| ()) as HandOffWait
        })));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let ticks = rt.block_on(async {
            // Another instance's timer, on the same runtime, while this one resigns.
            let other = tokio::spawn(async {
                let mut n = 0u32;
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(200) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    n += 1;
                }
                n
            });
            tokio::task::yield_now().await;
            let t = Instant::now();
            hand_off_detached(vec![("VI_detached".into(), "192.0.2.1".parse().expect("ip"))]);
            assert!(t.elapsed() < Duration::from_millis(100), "blocked the runtime for {:?}", t.elapsed());
            other.await.expect("the other task")
        });
        assert!(ticks >= 5, "the other task ran {ticks} times in 200 ms");
        let told = rx.recv_timeout(Duration::from_secs(10)).expect("the peer told, off the runtime");
        assert_eq!(told, vec!["VI_detached".to_string()]);
        set_hand_off(None);
    }

    #[test]
    fn one_hand_off_per_instance_within_a_second() {
        let t0 = Instant::now();
        let mut handed = BTreeMap::new();
        let l = |names: &[&str]| names.iter().map(|n| (n.to_string(), ip("192.0.2.11"))).collect::<Vec<_>>();
        assert_eq!(fresh_hand_offs(&mut handed, l(&["A", "B"]), t0), l(&["A", "B"]));
        // The instance task's fault after the watchdog's resignation: already told.
        let later = t0 + Duration::from_millis(5);
        assert_eq!(fresh_hand_offs(&mut handed, l(&["A", "C"]), later), l(&["C"]));
        assert_eq!(fresh_hand_offs(&mut handed, l(&["A"]), t0 + HAND_OFF_ONCE), l(&["A"]), "a new resignation");
    }

    #[test]
    fn a_stall_is_held_a_while_after_it_ends() {
        let t0 = Instant::now();
        let mut l = StallLatch::default();
        assert_eq!(l.feed(t0, false), None);
        assert_eq!(l.feed(t0, true), Some(true));
        assert_eq!(l.feed(t0 + Duration::from_millis(50), true), None);
        assert_eq!(l.feed(t0 + Duration::from_millis(100), false), None);
        assert_eq!(l.feed(t0 + Duration::from_millis(50) + STALL_HOLD, false), Some(false));
        assert_eq!(l.feed(t0 + Duration::from_secs(9), false), None);
    }

    #[test]
    fn only_masters_resign_and_only_trackers_on_a_stall() {
        let g = |track_proxy, master| LastGasp {
            track_proxy,
            master,
            ifname: "eth0".into(),
            ifindex: 2,
            src: ip("192.0.2.11"),
            hurry: vec![],
            adverts: vec![],
            vips: vec![],
        };
        let all: BTreeMap<String, LastGasp> =
            [("A".to_string(), g(true, true)), ("B".to_string(), g(false, true)), ("C".to_string(), g(true, false))]
                .into();
        let names = |v: Vec<(String, LastGasp)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(to_resign(&all, false)), ["A"]);
        assert_eq!(names(to_resign(&all, true)), ["A", "B"]);
    }

    /// What [`carry_out`] did, in order: `del A B` (VIPs removed), `send A h0 a0` (its hurry and
    /// priority-0 adverts, by first byte), `tell A B` (the `[cluster]` peer).
    struct Recorder {
        steps: Vec<String>,
        remain: BTreeSet<String>,
        hurry: bool,
    }

    impl Resigning for Recorder {
        fn remove_vips(&mut self, list: &[(String, LastGasp)]) -> BTreeSet<String> {
            let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
            self.steps.push(format!("del {}", names.join(" ")));
            self.remain.clone()
        }

        fn hurry_due(&mut self, _: &str) -> bool {
            self.hurry
        }

        fn send(&mut self, name: &str, _: &LastGasp, adverts: &[&(IpAddr, Vec<u8>)]) {
            let sent: Vec<String> = adverts.iter().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect();
            self.steps.push(format!("send {name} {}", sent.join(" ")));
        }

        fn hand_off(&mut self, list: Vec<(String, IpAddr)>) {
            let names: Vec<String> = list.into_iter().map(|(n, _)| n).collect();
            self.steps.push(format!("tell {}", names.join(" ")));
        }
    }

    fn gasps() -> Vec<(String, LastGasp)> {
        let g = |n: &str| LastGasp {
            track_proxy: true,
            master: true,
            ifname: "eth0".into(),
            ifindex: 2,
            src: ip("192.0.2.11"),
            hurry: vec![(ip("224.0.0.18"), format!("h{n}").into_bytes())],
            adverts: vec![(ip("224.0.0.18"), format!("z{n}").into_bytes())],
            vips: vec![],
        };
        vec![("A".into(), g("A")), ("B".into(), g("B"))]
    }

    #[test]
    fn a_resignation_removes_the_vips_before_any_advert() {
        let mut r = Recorder { steps: vec![], remain: BTreeSet::new(), hurry: true };
        carry_out(&gasps(), &mut r);
        assert_eq!(r.steps, ["del A B", "send A hA zA", "send B hB zB", "tell A B"]);
        // Sent already in this resignation (the instance task's own path): priority 0 alone.
        let mut r = Recorder { steps: vec![], remain: BTreeSet::new(), hurry: false };
        carry_out(&gasps(), &mut r);
        assert_eq!(r.steps, ["del A B", "send A zA", "send B zB", "tell A B"]);
    }

    #[test]
    fn vips_that_may_remain_get_no_short_interval_advert() {
        let mut r = Recorder { steps: vec![], remain: ["A".to_string()].into(), hurry: true };
        carry_out(&gasps(), &mut r);
        assert_eq!(r.steps, ["del A B", "send A zA", "send B hB zB", "tell A B"], "the backup waits its usual skew");
    }
}
