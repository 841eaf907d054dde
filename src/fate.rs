//! Fate sharing between the proxy and VRRP (`track_proxy`): a node whose proxy cannot serve gives
//! its VIPs away at once, instead of holding them while the process merely lives.
//!
//! The proxy reports what it observes into one process-wide [`ProxyFaults`] (a watch channel, so
//! an instance task wakes on the change itself rather than on its next tracking tick):
//! - a listener that stopped listening ([`listener_failed`], cleared when it listens again);
//! - an accept that failed for lack of file descriptors ([`out_of_fds`], cleared by the next
//!   accept that works);
//! - a proxy runtime thread stuck in one poll for [`STALL_THRESHOLD`] ([`spawn_watchdog`]).
//!
//! Two failures leave no runtime to act through: a stalled runtime and a panic. For those, each
//! instance keeps a [`LastGasp`] up to date (its priority-0 adverts, already encoded, and the VIPs
//! it holds), and [`resign`] sends them and removes the VIPs from a plain thread. The panic hook
//! ([`install_panic_hook`]) does that, then ends the process when any instance tracks the proxy:
//! after a panic the proxy's state is unknown, and a node that keeps running would hold VIPs its
//! instances believe are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Default for `[global] proxy_stall_threshold`: a proxy runtime thread awake in one poll while
/// this much CPU burned is stalled ([`StallDetector`]). Why no healthy thread comes near it: a
/// runtime thread publishes its counts whenever it parks and after every 61 polls (tokio's event
/// interval), and a proxy poll is a parse, a rule pass, a TLS handshake step or a compressed chunk:
/// well under 1 ms of CPU, so 61 of them stay far below 100 ms (config loading and other long work
/// run off the runtime threads). CPU, not wall time: machine load does not count against a thread.
/// HAProxy's watchdog uses 1 s of CPU; this was 500 ms of wall time before, which kept a stalled
/// proxy's VIP for half a second.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(100);
/// The least `proxy_stall_threshold` accepted: below it, a few late rounds would decide.
pub const MIN_STALL_THRESHOLD: Duration = Duration::from_millis(30);
/// How often the watchdog samples the runtime threads.
const WATCH_EVERY: Duration = Duration::from_millis(10);
/// The most one watchdog round adds to a thread's unchanged wall time, however late the round.
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

/// Sets the stall threshold the watchdog applies.
pub fn set_stall_threshold(d: Duration) {
    STALL_MS.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

fn stall_threshold() -> Duration {
    Duration::from_millis(STALL_MS.load(Ordering::Relaxed))
}

/// Whether the process resigned for good; instances then send no advert above priority 0.
pub fn resigned() -> bool {
    FINAL.load(Ordering::Relaxed)
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

/// What one VRRP instance would do to resign now: send `adverts` (priority 0, encoded for each
/// destination) from `src` on `ifname`, and remove `vips` (interface, address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastGasp {
    pub track_proxy: bool,
    pub master: bool,
    pub ifname: String,
    pub ifindex: u32,
    pub src: IpAddr,
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

/// Sends the priority-0 adverts of the masters [`to_resign`] picks and removes their VIPs, from a
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
    eprintln!("lbha: {why}: resigning VRRP master(s) {} (priority 0, VIPs removed)", names.join(", "));
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("lbha-resign".into()).spawn(move || {
        for (name, g) in &list {
            let sent = advert_socket(g).and_then(|s| g.adverts.iter().try_for_each(|(dst, b)| send_to(&s, b, *dst)));
            if let Err(e) = sent {
                eprintln!("lbha: vrrp_instance {name}: priority-0 advert: {e}");
            }
        }
        remove_vips(&list);
        let _ = tx.send(());
    });
    if spawned.is_ok() && rx.recv_timeout(RESIGN_LIMIT).is_err() {
        eprintln!("lbha: resigning took longer than {RESIGN_LIMIT:?}");
    }
    names
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

/// Removes the VIPs of every instance resigned.
fn remove_vips(list: &[(String, LastGasp)]) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return eprintln!("lbha: cannot remove VIPs: {e}"),
    };
    rt.block_on(async {
        let h = match crate::net::vip::VipHandle::new() {
            Ok(h) => h,
            Err(e) => return eprintln!("lbha: cannot remove VIPs: {e}"),
        };
        for (name, g) in list {
            for (dev, vip) in &g.vips {
                if let Err(e) = h.del(dev, vip).await {
                    eprintln!("lbha: vrrp_instance {name}: {e}");
                }
            }
        }
    });
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

/// Heartbeats of the runtime threads, bumped by the threads themselves as they park and unpark
/// (the runtime's `on_thread_park` / `on_thread_unpark`), with each thread's id for its CPU time.
static BEATS: LazyLock<Mutex<Vec<Beat>>> = LazyLock::new(Default::default);

/// One runtime thread's id and heartbeat count.
type Beat = (i32, std::sync::Arc<AtomicU64>);

/// Called by each runtime thread when it parks or unparks.
pub fn beat() {
    thread_local! {
        static MINE: std::cell::OnceCell<std::sync::Arc<AtomicU64>> = const { std::cell::OnceCell::new() };
    }
    MINE.with(|m| {
        m.get_or_init(|| {
            let a = std::sync::Arc::new(AtomicU64::new(0));
            BEATS.lock().unwrap_or_else(|e| e.into_inner()).push((nix::unistd::gettid().as_raw(), a.clone()));
            a
        })
        .fetch_add(1, Ordering::Relaxed);
    });
}

/// A thread's CPU time so far (`/proc/self/task/TID/schedstat`, in ns); zero if unreadable.
fn thread_cpu(tid: i32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Each registered runtime thread's heartbeat count and CPU time now.
pub fn beats() -> Vec<(u64, Duration)> {
    let list: Vec<Beat> = BEATS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    list.iter().map(|(tid, a)| (a.load(Ordering::Relaxed), thread_cpu(*tid))).collect()
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

/// Watches the runtime's threads from a thread of its own: a stall is reported to the instances
/// (they enter Fault when they run again), and the masters tracking the proxy resign at once.
/// Also ends a descriptor exhaustion when descriptors are free again.
pub fn spawn_watchdog(handle: tokio::runtime::Handle) {
    let spawned = std::thread::Builder::new().name("lbha-watchdog".into()).spawn(move || {
        let metrics = handle.metrics();
        let mut detector = StallDetector::default();
        let mut meter = CpuMeter::default();
        let mut latch = StallLatch::default();
        let mut rounds = 0u32;
        loop {
            std::thread::sleep(WATCH_EVERY);
            let samples = sample(&metrics);
            let cpu = meter.round(&beats());
            let now = Instant::now();
            let stuck = detector.observe(now, &samples, cpu, stall_threshold());
            if stuck.is_none() && rounds.is_multiple_of(5) {
                recheck_fds();
            }
            rounds = rounds.wrapping_add(1);
            match latch.feed(now, stuck.is_some()) {
                Some(true) => {
                    let (w, d) = stuck.unwrap_or_default();
                    let why = format!("runtime thread {w} stuck in one poll ({} ms)", d.as_millis());
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
        let runtime_thread = std::thread::current().name() == Some("tokio-runtime-worker");
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
    /// hooks) kept busy by many tasks doing 0.2 ms of work per poll (hundreds of times a proxy
    /// poll's), sampled as the watchdog does, is never taken for stalled at the default threshold,
    /// even on a machine loaded by other work; a thread then spinning in one poll is.
    #[test]
    fn a_busy_runtime_is_not_stalled_and_a_spinning_thread_is() {
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
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    spin(Duration::from_micros(200));
                    tokio::task::yield_now().await;
                }
            });
        }
        let (mut d, mut m) = (StallDetector::default(), CpuMeter::default());
        let mut round = || d.observe(Instant::now(), &sample(&metrics), m.round(&beats()), STALL_THRESHOLD);
        // Bounded: 2 s of rounds.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(WATCH_EVERY);
            assert_eq!(round(), None, "a busy but healthy runtime taken for stalled");
        }
        stop.store(true, Ordering::Relaxed);
        // One task spins in one poll for 4 s.
        rt.spawn(async move { spin(Duration::from_secs(4)) });
        let t1 = Instant::now();
        let mut found = None;
        while found.is_none() && t1.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(WATCH_EVERY);
            found = round();
        }
        assert!(found.is_some(), "a thread spinning in one poll was not found");
        rt.shutdown_background();
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
}
