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
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A proxy runtime thread busy in one poll for this long is stalled. Long enough that no healthy
/// poll comes near it (TLS handshakes and large responses take milliseconds; config loading runs
/// off the runtime threads), short enough to beat VRRP's own detection at the default 1 s adverts
/// (3.6 s): HAProxy's watchdog uses 1 s for a stuck thread; a failover costs less than a proxy
/// that does not answer for half a second.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(500);
/// How often the watchdog samples the runtime threads.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// A stall stays reported this long after the thread moves again, so every instance task sees it
/// (a watch channel only keeps the last value) and none keeps acting as a master whose VIPs the
/// watchdog removed.
const STALL_HOLD: Duration = Duration::from_secs(1);
/// Free descriptors it takes to call an exhaustion over: a client connection needs two (its own
/// and its server's), and a few more keep it from flapping at the edge.
const FD_HEADROOM: usize = 16;
/// Upper bound on a last-gasp resignation (adverts and VIP removal).
const RESIGN_LIMIT: Duration = Duration::from_secs(1);

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

/// Sends the priority-0 adverts and removes the VIPs of the masters [`to_resign`] picks, from a
/// plain thread (this may run on a stalled or panicking runtime thread), within [`RESIGN_LIMIT`].
/// Returns the instances resigned.
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
            if let Err(e) = send_adverts(g) {
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

fn send_adverts(g: &LastGasp) -> std::io::Result<()> {
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
    for (dst, bytes) in &g.adverts {
        s.send_to(bytes, &SockAddr::from(SocketAddr::new(*dst, 0)))?;
    }
    Ok(())
}

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

/// Finds a runtime thread stuck in one poll: awake (even park/unpark count) and with neither
/// count nor busy time moving for [`STALL_THRESHOLD`]. A thread that polls many tasks publishes
/// its busy time every 61 polls; an idle one is parked. Pure: the caller passes the clock.
#[derive(Debug, Default)]
pub struct StallDetector {
    /// Per thread: the last sample and when it was first seen unchanged.
    last: Vec<(WorkerSample, Instant)>,
}

impl StallDetector {
    /// Feeds one sample per thread; returns the first stuck thread and for how long.
    pub fn observe(
        &mut self,
        now: Instant,
        samples: &[WorkerSample],
        threshold: Duration,
    ) -> Option<(usize, Duration)> {
        if self.last.len() != samples.len() {
            self.last = samples.iter().map(|s| (*s, now)).collect();
            return None;
        }
        let mut stuck = None;
        for (i, (s, (prev, since))) in samples.iter().zip(self.last.iter_mut()).enumerate() {
            if s != prev || s.park_unpark % 2 == 1 {
                *prev = *s;
                *since = now;
                continue;
            }
            let for_ = now.saturating_duration_since(*since);
            if for_ >= threshold && stuck.is_none() {
                stuck = Some((i, for_));
            }
        }
        stuck
    }
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
        let mut latch = StallLatch::default();
        loop {
            std::thread::sleep(WATCH_EVERY);
            let samples: Vec<WorkerSample> = (0..metrics.num_workers())
                .map(|w| WorkerSample {
                    park_unpark: metrics.worker_park_unpark_count(w),
                    busy: metrics.worker_total_busy_duration(w),
                })
                .collect();
            recheck_fds();
            let now = Instant::now();
            let stuck = detector.observe(now, &samples, STALL_THRESHOLD);
            match latch.feed(now, stuck.is_some()) {
                Some(true) => {
                    let (w, d) = stuck.unwrap_or_default();
                    let why = format!("runtime thread {w} busy in one poll for {} ms", d.as_millis());
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

/// On a panic: the default report, then, when an instance tracks the proxy or VIPs are
/// announced, the masters resign, the announcements are withdrawn, and the process ends
/// (systemd restarts it; the peer or the other nodes serve meanwhile).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !tracked() {
            return default(info);
        }
        // First: the default report may capture a backtrace, which takes a while.
        resign(true, "panic");
        announce_gasp(false);
        default(info);
        eprintln!("lbha: panic with track_proxy on: the process ends");
        std::process::abort();
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
    fn a_thread_awake_and_unchanged_past_the_threshold_is_stuck() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let th = Duration::from_millis(500);
        let busy = |p, b| WorkerSample { park_unpark: p, busy: Duration::from_millis(b) };
        let mut d = StallDetector::default();
        assert_eq!(d.observe(ms(0), &[busy(2, 10), busy(4, 10)], th), None);
        // Thread 0 keeps publishing busy time: working, not stuck. Thread 1 is parked (odd).
        for i in 1..=20 {
            assert_eq!(d.observe(ms(i * 50), &[busy(2, 10 + i), busy(5, 10)], th), None);
        }
        // Thread 1 wakes and stays in one poll.
        assert_eq!(d.observe(ms(1100), &[busy(2, 40), busy(6, 10)], th), None);
        assert_eq!(d.observe(ms(1550), &[busy(2, 41), busy(6, 10)], th), None);
        assert_eq!(d.observe(ms(1600), &[busy(2, 42), busy(6, 10)], th), Some((1, th)));
        // It moves again.
        assert_eq!(d.observe(ms(1650), &[busy(2, 43), busy(6, 300)], th), None);
        // A changed thread count starts over.
        assert_eq!(d.observe(ms(5000), &[busy(2, 43)], th), None);
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
