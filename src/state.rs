//! Runtime state that outlives a config snapshot: health, admin state, runtime weight, live
//! connections and counters, keyed by stable names so a reload carries them over.

use crate::balance::ServerState;
use crate::config::Snapshot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// HAProxy's `rise` and `fall` when a server has no check.
const DEFAULT_RISE: u32 = 2;
const DEFAULT_FALL: u32 = 3;

/// `ramp_from` value when no slowstart ramp is running.
const NO_RAMP: u64 = u64::MAX;

/// Operator-set state (HAProxy's READY / DRAIN / MAINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready = 0,
    Drain = 1,
    Maint = 2,
}

/// The admin state a tracking server takes from the server it tracks (HAProxy's inherited
/// `SRV_ADMF_IMAINT` and `SRV_ADMF_IDRAIN`), kept apart from its own so it returns to that when
/// the tracked server leaves maintenance or drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inherited {
    pub maint: bool,
    pub drain: bool,
}

impl Inherited {
    const MAINT: u8 = 1;
    const DRAIN: u8 = 2;
    fn bits(self) -> u8 {
        (if self.maint { Self::MAINT } else { 0 }) | (if self.drain { Self::DRAIN } else { 0 })
    }
    fn from_bits(b: u8) -> Self {
        Self { maint: b & Self::MAINT != 0, drain: b & Self::DRAIN != 0 }
    }
}

/// Traffic counters shared by frontends, backends and servers (HAProxy's stats columns).
#[derive(Debug, Default)]
pub struct Counters {
    pub cur_sessions: AtomicU32,
    pub max_sessions: AtomicU32,
    pub total_sessions: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub requests: AtomicU64,
    pub denied_req: AtomicU64,
    /// Responses denied by `http-response deny` or `tcp-response content reject` (HAProxy's
    /// `dresp`: counted on the frontend, the backend and the server).
    pub denied_resp: AtomicU64,
    pub errors_req: AtomicU64,
    pub errors_conn: AtomicU64,
    pub errors_resp: AtomicU64,
    /// Header rewrites that failed (HAProxy's `wrew`: counted on the frontend, the backend once
    /// assigned and the server once it answered, strict-mode on or off).
    pub failed_rewrites: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub http_responses: [AtomicU64; 6],
    /// Used by backends only.
    pub queue: Queue,
    /// Server response times (request sent to response head, HAProxy's Tr) by [`time_bucket`]:
    /// the console's percentiles come from the differences second by second.
    pub resp_times: [AtomicU64; TIME_BUCKETS],
    /// The last request refused for its head (`show errors`), frontends only.
    pub last_error: Mutex<Option<Box<ErrorCapture>>>,
    /// Sessions (and, on frontends, HTTP requests) per second, HAProxy's `sess_per_sec` /
    /// `req_per_sec` (`fe_sess_rate`, `be_sess_rate`, `srv_sess_rate`, `fe_req_rate`).
    pub sess_rate: Mutex<crate::peers::freq::FreqCtr>,
    pub req_rate: Mutex<crate::peers::freq::FreqCtr>,
}

/// The rate counters' clock: milliseconds since the first reading, wrapping as HAProxy's
/// `now_ms`. Read three times per request (the frontend's request rate, the backend's and the
/// server's session rates), so straight from `CLOCK_MONOTONIC` (the clock of std's `Instant`)
/// in integers: `Instant::elapsed` adds checked timespec arithmetic and a u128 division
/// (~50 instructions a reading). Same value as `elapsed().as_millis() as u32` from the first
/// reading.
pub fn rate_clock() -> u32 {
    static EPOCH: std::sync::OnceLock<(i64, i64)> = std::sync::OnceLock::new();
    // Read after the epoch: another thread may set it with a reading taken after ours.
    let epoch = *EPOCH.get_or_init(monotonic);
    ms_between(epoch, monotonic())
}

/// Whole milliseconds from `epoch` to `now` (both (seconds, nanoseconds)), cut to 32 bits; 0
/// when `now` is the earlier (as `Instant::elapsed` saturates).
fn ms_between(epoch: (i64, i64), now: (i64, i64)) -> u32 {
    let nanos = (now.0 - epoch.0) * 1_000_000_000 + (now.1 - epoch.1);
    (nanos.max(0) / 1_000_000) as u32
}

/// `CLOCK_MONOTONIC` as (seconds, nanoseconds).
fn monotonic() -> (i64, i64) {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
    #[allow(clippy::unnecessary_cast)] // `time_t` and `c_long` are i64 here, not everywhere
    (ts.tv_sec as i64, ts.tv_nsec as i64)
}

/// The period of the proxies' rates: one second.
const RATE_PERIOD: u32 = 1000;

/// A request head refused by the proxy, as `show errors` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCapture {
    pub at: SystemTime,
    /// Process-wide event number (HAProxy's `event #N`).
    pub event: u64,
    pub client: std::net::SocketAddr,
    pub reason: &'static str,
    /// The head as it came, up to the buffer's size.
    pub bytes: Vec<u8>,
}

/// Refused heads captured since start (`show errors`' "Total events captured").
pub static ERROR_EVENTS: AtomicU64 = AtomicU64::new(0);

impl Counters {
    /// Keeps `bytes` as the frontend's last refused request.
    pub fn capture_error(&self, client: std::net::SocketAddr, reason: &'static str, bytes: Vec<u8>) {
        let event = ERROR_EVENTS.fetch_add(1, Relaxed);
        let c = ErrorCapture { at: SystemTime::now(), event, client, reason, bytes };
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(c));
    }
}

/// Buckets of [`Counters::resp_times`]: under 1 ms, then one per power of two of milliseconds
/// up to 2^14 ms, then everything longer.
pub const TIME_BUCKETS: usize = 16;

/// The bucket of a response time in milliseconds; bucket `i` holds times below `2^i` ms.
pub fn time_bucket(ms: u64) -> usize {
    if ms == 0 { 0 } else { ((64 - ms.leading_zeros()) as usize).min(TIME_BUCKETS - 1) }
}

impl Counters {
    /// Counts a session in; the guard counts it out when dropped.
    pub fn open_session(self: &Arc<Self>) -> SessionGuard {
        self.count_in();
        SessionGuard { counters: self.clone(), wake: None }
    }

    /// Opens a session only while fewer than `limit` are open (0 = no limit). The guard wakes
    /// one request queued on `queue_of` (the backend) when it closes.
    pub fn try_open_session(self: &Arc<Self>, limit: u32, queue_of: &Arc<Counters>) -> Option<SessionGuard> {
        if limit > 0 {
            self.cur_sessions.fetch_update(Relaxed, Relaxed, |c| (c < limit).then_some(c + 1)).ok()?;
            self.cur_sessions.fetch_sub(1, Relaxed);
        }
        self.count_in();
        Some(SessionGuard { counters: self.clone(), wake: Some(queue_of.clone()) })
    }

    fn count_in(&self) {
        let cur = self.cur_sessions.fetch_add(1, Relaxed) + 1;
        self.max_sessions.fetch_max(cur, Relaxed);
        self.total_sessions.fetch_add(1, Relaxed);
        self.rate_event(&self.sess_rate, rate_clock());
    }

    /// Counts an HTTP request a frontend received.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.rate_event(&self.req_rate, rate_clock());
    }

    fn rate_event(&self, rate: &Mutex<crate::peers::freq::FreqCtr>, now: u32) {
        rate.lock().unwrap_or_else(|p| p.into_inner()).update(now, RATE_PERIOD, 1);
    }

    /// Sessions per second at `now` (a [`rate_clock`] reading) over the sliding second.
    pub fn sess_per_sec(&self, now: u32) -> u32 {
        self.sess_rate.lock().unwrap_or_else(|p| p.into_inner()).read(now, RATE_PERIOD)
    }

    /// HTTP requests per second at `now`.
    pub fn req_per_sec(&self, now: u32) -> u32 {
        self.req_rate.lock().unwrap_or_else(|p| p.into_inner()).read(now, RATE_PERIOD)
    }
    pub fn count_status(&self, status: u16) {
        self.http_responses[Self::status_class(status)].fetch_add(1, Relaxed);
    }

    /// The response counted as `was` went out as `now` instead.
    pub fn recount_status(&self, was: u16, now: u16) {
        let _ = self.http_responses[Self::status_class(was)].fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        self.count_status(now);
    }

    /// The index in `http_responses` of a status's class.
    fn status_class(status: u16) -> usize {
        match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        }
    }
    pub fn count_time(&self, d: Duration) {
        self.resp_times[time_bucket(d.as_millis() as u64)].fetch_add(1, Relaxed);
    }
}

/// Decrements the current-sessions gauge on drop, so every exit path is counted.
#[derive(Debug)]
pub struct SessionGuard {
    counters: Arc<Counters>,
    wake: Option<Arc<Counters>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.counters.cur_sessions.fetch_sub(1, Relaxed);
        if let Some(b) = &self.wake {
            // A request pinned to this server (persistence, or its hash) waits on the server's
            // own queue, any other on the backend's: each hears of the slot it can take.
            self.counters.queue.notify.notify_one();
            b.queue.notify.notify_one();
        }
    }
}

/// Requests waiting for a server slot (servers at `maxconn`), HAProxy's backend queue.
#[derive(Debug, Default)]
pub struct Queue {
    pub notify: tokio::sync::Notify,
    pub cur: AtomicU32,
    pub max: AtomicU32,
}

/// Live facts about one server.
#[derive(Debug)]
pub struct ServerRt {
    pub counters: Arc<Counters>,
    /// Health as seen by checks; always true for a server without checks.
    up: AtomicBool,
    /// The state an operator (or the config, or an agent) set: HAProxy's forced flags.
    admin: AtomicU8,
    /// What tracking passes on ([`Inherited`] bits); 0 for a server that tracks none.
    inherited: AtomicU8,
    weight: AtomicU32,
    /// Weight from the config, to restore after `set weight` or drain.
    config_weight: AtomicU32,
    pub last_change: Mutex<(Instant, SystemTime)>,
    pub last_check: Mutex<String>,
    pub checked: AtomicBool,
    pub check_duration_ms: AtomicU64,
    pub down_transitions: AtomicU64,
    pub up_transitions: AtomicU64,
    /// `slowstart` window in milliseconds (0: none), from the config.
    slowstart_ms: AtomicU64,
    /// Nanoseconds after `born` when the current slowstart ramp began, or `NO_RAMP`.
    ramp_from: AtomicU64,
    born: Instant,
    /// `on-marked-down shutdown-sessions`, from the config.
    shutdown_on_down: AtomicBool,
    /// Bumped when the server's open sessions must end; sessions hold a receiver.
    kill: watch::Sender<u64>,
    /// Failed health checks since start.
    pub check_failures: AtomicU64,
    /// Concurrent sessions allowed (0 = no limit), from the config.
    pub maxconn: AtomicU32,
    /// `minconn` and the backend's `fullconn`: the dynamic limit (see `proxy::upstream`).
    pub minconn: AtomicU32,
    pub fullconn: AtomicU32,
    /// `maxqueue` (0 = no limit), and the requests waiting for this server in particular.
    pub maxqueue: AtomicU32,
    pub queued: AtomicU32,
    downtime_ms: AtomicU64,
    /// An `agent-check` said `down` (`failed`, `stopped`) and has not said `up` since.
    agent_down: AtomicBool,
    /// `http-check disable-on-404`: the last check got a 404; no new non-persistent traffic.
    nolb: AtomicBool,
    /// Passive checks (`observe`): the proxy reports here, the checker applies the trips.
    pub passive: crate::health::passive::Link,
    /// HAProxy's `check->health`: the rise/fall counter (`0..rise+fall-1`, up from `rise`) that
    /// the checker advances and that admin changes set too (see [`ServerRt::admin_moved`]), so
    /// `show servers state` prints it as HAProxy does at every step.
    pub check_health: AtomicU32,
    /// The check's `rise` and `fall` (HAProxy's 2 and 3 without a check).
    check_rise: AtomicU32,
    check_fall: AtomicU32,
    /// Health checks run: configured and not stopped by `disable health` (HAProxy's
    /// `CHK_ST_ENABLED`).
    checks_on: AtomicBool,
    /// An `agent-check` runs: configured and not stopped by `disable agent`.
    agent_on: AtomicBool,
    /// A health check probe is in flight (HAProxy's `CHK_ST_INPROGRESS`).
    pub probing: AtomicBool,
    /// The last attached snapshot left it without an address (see [`Self::address_moved`]).
    addressless: AtomicBool,
}

impl ServerRt {
    fn new(weight: u32, disabled: bool) -> Self {
        Self {
            counters: Arc::default(),
            up: AtomicBool::new(true),
            admin: AtomicU8::new(if disabled { Admin::Maint } else { Admin::Ready } as u8),
            inherited: AtomicU8::new(0),
            weight: AtomicU32::new(weight),
            config_weight: AtomicU32::new(weight),
            last_change: Mutex::new((Instant::now(), SystemTime::now())),
            last_check: Mutex::new(String::new()),
            checked: AtomicBool::new(false),
            check_duration_ms: AtomicU64::new(0),
            down_transitions: AtomicU64::new(0),
            up_transitions: AtomicU64::new(0),
            slowstart_ms: AtomicU64::new(0),
            ramp_from: AtomicU64::new(NO_RAMP),
            born: Instant::now(),
            shutdown_on_down: AtomicBool::new(false),
            kill: watch::channel(0).0,
            check_failures: AtomicU64::new(0),
            maxconn: AtomicU32::new(0),
            minconn: AtomicU32::new(0),
            fullconn: AtomicU32::new(0),
            maxqueue: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            downtime_ms: AtomicU64::new(0),
            agent_down: AtomicBool::new(false),
            nolb: AtomicBool::new(false),
            passive: Default::default(),
            // HAProxy's start: `rise` (up, one failure from down), 0 for a `disabled` server.
            check_health: AtomicU32::new(if disabled { 0 } else { DEFAULT_RISE }),
            check_rise: AtomicU32::new(DEFAULT_RISE),
            check_fall: AtomicU32::new(DEFAULT_FALL),
            checks_on: AtomicBool::new(false),
            agent_on: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            addressless: AtomicBool::new(false),
        }
    }
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed) && !self.agent_down.load(Relaxed)
    }
    /// The checks' own up/down, without the agent's (HAProxy keeps a counter for each): what
    /// the check counter [`Self::check_health`] must agree with.
    pub fn health_up(&self) -> bool {
        self.up.load(Relaxed)
    }
    /// `http-check disable-on-404`: true when it changed.
    pub fn set_nolb(&self, on: bool) -> bool {
        self.nolb.swap(on, Relaxed) != on
    }
    pub fn nolb(&self) -> bool {
        self.nolb.load(Relaxed)
    }
    /// The agent's own up/down, which keeps a server down whatever its checks say; true when
    /// it changed.
    pub fn set_agent_up(&self, up: bool) -> bool {
        self.agent_down.swap(!up, Relaxed) == up
    }
    /// Records a health transition: coming up starts the slowstart ramp; going down ends the
    /// server's sessions when `on_marked_down = "shutdown-sessions"`.
    pub fn set_up(&self, up: bool) {
        if self.up.swap(up, Relaxed) != up {
            if up {
                self.up_transitions.fetch_add(1, Relaxed);
                self.start_ramp();
            } else {
                self.down_transitions.fetch_add(1, Relaxed);
                if self.shutdown_on_down.load(Relaxed) {
                    self.shutdown_sessions();
                }
            }
            if let Ok(mut lc) = self.last_change.lock() {
                if up {
                    self.downtime_ms.fetch_add(lc.0.elapsed().as_millis() as u64, Relaxed);
                }
                *lc = (Instant::now(), SystemTime::now());
            }
        }
    }
    /// Seconds since the last UP/DOWN change.
    pub fn since_change(&self) -> std::time::Duration {
        self.last_change.lock().map(|l| l.0.elapsed()).unwrap_or_default()
    }
    /// Total time spent DOWN, including the current outage.
    pub fn downtime(&self) -> std::time::Duration {
        let past = std::time::Duration::from_millis(self.downtime_ms.load(Relaxed));
        if self.is_up() { past } else { past + self.since_change() }
    }
    /// The admin state in force: the server's own, or maintenance or drain inherited from the
    /// server it tracks, whichever is stronger (maintenance over drain over ready).
    pub fn admin(&self) -> Admin {
        let inh = self.inherited();
        match self.forced_admin() {
            Admin::Maint => Admin::Maint,
            _ if inh.maint => Admin::Maint,
            Admin::Drain => Admin::Drain,
            _ if inh.drain => Admin::Drain,
            Admin::Ready => Admin::Ready,
        }
    }
    /// The server's own admin state, without what it inherits through `track`.
    pub fn forced_admin(&self) -> Admin {
        match self.admin.load(Relaxed) {
            0 => Admin::Ready,
            1 => Admin::Drain,
            _ => Admin::Maint,
        }
    }
    pub fn inherited(&self) -> Inherited {
        Inherited::from_bits(self.inherited.load(Relaxed))
    }
    /// Sets the server's own admin state; leaving maintenance (in force) starts slowstart.
    pub fn set_admin(&self, a: Admin) {
        let was = self.admin();
        self.admin.store(a as u8, Relaxed);
        self.admin_moved(was);
    }
    /// Sets what the server inherits from the one it tracks; true when that changed.
    pub fn set_inherited(&self, i: Inherited) -> bool {
        let was = self.admin();
        let changed = self.inherited.swap(i.bits(), Relaxed) != i.bits();
        self.admin_moved(was);
        changed
    }
    /// Entering and leaving maintenance, as HAProxy's `_srv_update_status_adm`: entering pauses
    /// the checks and zeroes the counter (of a server checked or still running); leaving starts
    /// a checked server at `rise`, up but one failure from down, and starts slowstart.
    /// The time since the last change restarts as HAProxy's `last_change` does: on entering or
    /// leaving maintenance when the server is (or comes) up, and on entering or leaving drain.
    fn admin_moved(&self, was: Admin) {
        let now = self.admin();
        let checks_on = self.checks_on.load(Relaxed);
        if was != Admin::Maint && now == Admin::Maint {
            if checks_on || self.is_up() {
                self.check_health.store(0, Relaxed);
            }
            if self.is_up() {
                self.touch();
            }
        } else if was == Admin::Maint && now != Admin::Maint {
            if checks_on {
                self.check_health.store(self.check_rise.load(Relaxed), Relaxed);
                self.set_up(true);
            }
            if self.is_up() {
                self.touch();
            }
            self.start_ramp();
        } else if was != now {
            self.touch();
        }
    }
    /// The server lost its address or got one (DNS, `set server addr`): HAProxy enters or
    /// leaves its resolution maintenance (`RMAINT`) as any other, which moves the counter and
    /// restarts the time since the last change. Nothing moves for a server already in
    /// maintenance otherwise. `checked`: the server has checks (its checker may not have started
    /// yet: one starts with the address).
    fn address_moved(&self, none: bool, checked: bool) {
        if self.admin() == Admin::Maint {
            return;
        }
        let checks_on = checked || self.checks_on.load(Relaxed);
        if none {
            if checks_on || self.is_up() {
                self.check_health.store(0, Relaxed);
            }
        } else if checks_on {
            self.check_health.store(self.check_rise.load(Relaxed), Relaxed);
            self.set_up(true);
        }
        if self.is_up() {
            self.touch();
        }
        if !none {
            self.start_ramp();
        }
    }
    /// A check counter handed over (binary upgrade): taken, bounded by this config's `rise`
    /// and `fall`, when the server has no checks or it agrees with the checks' up or down.
    pub fn restore_health(&self, h: u32, checked: bool) {
        let (rise, fall) = self.check_rise_fall();
        let h = h.min(rise + fall - 1);
        if !checked || (h >= rise) == self.health_up() {
            self.check_health.store(h, Relaxed);
        }
    }
    /// The time since the last change handed over (binary upgrade): the change happened that
    /// long ago.
    pub fn restore_since_change(&self, since: Duration) {
        let at = Instant::now().checked_sub(since);
        let wall = SystemTime::now().checked_sub(since);
        if let (Some(at), Some(wall), Ok(mut lc)) = (at, wall, self.last_change.lock()) {
            *lc = (at, wall);
        }
    }
    /// Restarts the time since the last change (`srv_time_since_last_change`, `lastchg`),
    /// keeping the downtime counted so far.
    fn touch(&self) {
        if let Ok(mut lc) = self.last_change.lock() {
            if !self.is_up() {
                self.downtime_ms.fetch_add(lc.0.elapsed().as_millis() as u64, Relaxed);
            }
            *lc = (Instant::now(), SystemTime::now());
        }
    }
    /// The server's `rise` and `fall` (HAProxy's 2 and 3 when not set, with or without checks).
    pub fn configure_check(&self, (rise, fall): (u32, u32)) {
        self.check_rise.store(rise.max(1), Relaxed);
        self.check_fall.store(fall.max(1), Relaxed);
    }
    pub fn check_rise_fall(&self) -> (u32, u32) {
        (self.check_rise.load(Relaxed), self.check_fall.load(Relaxed))
    }
    /// Whether health checks run (a checker started or stopped: config, `enable|disable health`).
    pub fn set_checks_on(&self, on: bool) {
        self.checks_on.store(on, Relaxed);
    }
    pub fn checks_on(&self) -> bool {
        self.checks_on.load(Relaxed)
    }
    /// Whether its agent runs (configured, not stopped by `disable agent`).
    pub fn set_agent_on(&self, on: bool) {
        self.agent_on.store(on, Relaxed);
    }
    pub fn agent_on(&self) -> bool {
        self.agent_on.load(Relaxed)
    }
    /// The agent said down and has not said up since (HAProxy's agent health 0).
    pub fn agent_down(&self) -> bool {
        self.agent_down.load(Relaxed)
    }
    /// `set server ... health up|stopping|down` (and the API's operational state): the counter
    /// goes to the top or to 0, as HAProxy's, and the server up or down.
    pub fn force_health(&self, up: bool) {
        let (rise, fall) = self.check_rise_fall();
        self.check_health.store(if up { rise + fall - 1 } else { 0 }, Relaxed);
        self.set_up(up);
    }
    fn start_ramp(&self) {
        let t = self.born.elapsed().as_nanos();
        self.ramp_from.store(u64::try_from(t).unwrap_or(NO_RAMP - 1), Relaxed);
    }
    /// Takes the per-server settings of a (re)loaded config.
    pub fn configure(&self, slowstart: Duration, shutdown_on_down: bool) {
        self.slowstart_ms.store(slowstart.as_millis() as u64, Relaxed);
        self.shutdown_on_down.store(shutdown_on_down, Relaxed);
    }
    /// The weight the balancer uses: the runtime weight, reduced while slowstart ramps it up.
    pub fn effective_weight(&self) -> u32 {
        let w = self.weight();
        let window = self.slowstart_ms.load(Relaxed);
        let from = self.ramp_from.load(Relaxed);
        if window == 0 || from == NO_RAMP {
            return w;
        }
        let elapsed = Duration::from_nanos((self.born.elapsed().as_nanos() as u64).saturating_sub(from));
        crate::health::ramp_weight(w, elapsed, Duration::from_millis(window))
    }
    /// How far a running slowstart ramp has brought the weight, in percent (HAProxy's
    /// `throttle`); None when no ramp runs.
    pub fn ramp_percent(&self) -> Option<u32> {
        let window = self.slowstart_ms.load(Relaxed);
        let from = self.ramp_from.load(Relaxed);
        if window == 0 || from == NO_RAMP {
            return None;
        }
        let elapsed_ms = (self.born.elapsed().as_nanos() as u64).saturating_sub(from) / 1_000_000;
        (elapsed_ms < window).then(|| (100 * elapsed_ms / window).max(1) as u32)
    }
    pub fn shuts_down_sessions(&self) -> bool {
        self.shutdown_on_down.load(Relaxed)
    }
    /// Ends every session currently open on this server (each watches [`Self::session_end`]).
    pub fn shutdown_sessions(&self) {
        self.kill.send_modify(|g| *g = g.wrapping_add(1));
    }
    /// Resolves when this server's sessions opened before now must end.
    pub fn session_end(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.kill.subscribe();
        async move {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }
    pub fn set_weight(&self, w: u32) {
        self.weight.store(w, Relaxed);
    }
    /// Up, not in maintenance: may take traffic (drain only takes persistent traffic) if it has
    /// an address, which is its generation's to say ([`BackendRt::server_usable`]).
    pub fn usable(&self) -> bool {
        self.is_up() && self.admin() != Admin::Maint
    }
    /// The session limit with the backend holding `beconn`: `maxconn`, or with `minconn`
    /// HAProxy's dynamic limit (0 = no limit).
    pub fn limit(&self, beconn: u32) -> u32 {
        let (max, min, full) = (self.maxconn.load(Relaxed), self.minconn.load(Relaxed), self.fullconn.load(Relaxed));
        crate::proxy::upstream::dynamic_maxconn(max, min, full, beconn)
    }
    /// At its limit with the backend holding `beconn`: new requests wait in the backend queue.
    pub fn full_at(&self, beconn: u32) -> bool {
        let m = self.limit(beconn);
        m > 0 && self.counters.cur_sessions.load(Relaxed) >= m
    }
    /// At `maxconn`: new requests wait in the backend queue.
    pub fn full(&self) -> bool {
        let m = self.maxconn.load(Relaxed);
        m > 0 && self.counters.cur_sessions.load(Relaxed) >= m
    }
    /// HAProxy's status column for a server with an address ([`BackendRt::server_status`]).
    pub fn status(&self) -> &'static str {
        match (self.admin(), self.is_up()) {
            (Admin::Maint, _) => "MAINT",
            (Admin::Drain, true) => "DRAIN",
            (_, true) if self.nolb() => "NOLB",
            (_, true) => "UP",
            (_, false) => "DOWN",
        }
    }
}

/// Runtime state of one backend's servers, in the snapshot's server order.
#[derive(Debug, Clone)]
pub struct BackendRt {
    pub counters: Arc<Counters>,
    pub servers: Vec<Arc<ServerRt>>,
    /// Which servers have no address in this generation's snapshot (`init_addr` ... `none`, a
    /// DNS slot not filled): they never take traffic, whatever their admin state. Kept here, not
    /// in a server's runtime entry, which is shared across generations: a request still holding
    /// an older snapshot must not pick a server whose address there is only a placeholder.
    pub no_addr: Vec<bool>,
    /// Stick table, when the backend has persistence rules.
    pub persist: Option<Arc<crate::persist::Runtime>>,
}

impl BackendRt {
    /// Servers that can take new traffic right now (HAProxy's `nbsrv`).
    pub fn nbsrv(&self) -> usize {
        (0..self.servers.len()).filter(|&i| self.server_usable(i) && self.servers[i].weight() > 0).count()
    }

    /// Server `i` may take traffic with this generation's address (see [`BackendRt::no_addr`]).
    pub fn server_usable(&self, i: usize) -> bool {
        !self.no_addr.get(i).copied().unwrap_or(false) && self.servers.get(i).is_some_and(|s| s.usable())
    }

    /// Server `i` may take a request `force-persist` sends to it: any state, but an address.
    pub fn server_forceable(&self, i: usize) -> bool {
        !self.no_addr.get(i).copied().unwrap_or(false) && i < self.servers.len()
    }

    /// Server `i` may take a request persistence designates: usable, or with `forced`
    /// (`force-persist`) in any state.
    pub fn server_takes(&self, i: usize, forced: bool) -> bool {
        if forced { self.server_forceable(i) } else { self.server_usable(i) }
    }

    /// HAProxy's status column for server `i`.
    pub fn server_status(&self, i: usize) -> &'static str {
        if self.no_addr.get(i).copied().unwrap_or(false) {
            return "MAINT (resolution)";
        }
        self.servers[i].status()
    }
}

impl ServerState for BackendRt {
    // Drain sets the weight to 0 for new traffic; persistence still reaches the server through
    // `usable`. A full server stays usable (and in a hashing backend's table): see `full`.
    fn usable(&self, idx: usize) -> bool {
        self.server_usable(idx)
    }
    fn conns(&self, idx: usize) -> u32 {
        self.servers.get(idx).map_or(0, |s| s.counters.cur_sessions.load(Relaxed))
    }
    fn weight(&self, idx: usize) -> u32 {
        self.servers
            .get(idx)
            .map_or(0, |s| if s.admin() == Admin::Drain || s.nolb() { 0 } else { s.effective_weight() })
    }
    fn full(&self, idx: usize) -> bool {
        let beconn = self.counters.cur_sessions.load(Relaxed);
        self.servers.get(idx).is_some_and(|s| s.full_at(beconn))
    }
}

/// Keeps runtime entries by name across reloads.
#[derive(Debug, Default)]
pub struct Registry {
    frontends: Mutex<HashMap<String, Arc<Counters>>>,
    /// `option socket-stats` binds by frontend name and bind address.
    listeners: Mutex<HashMap<(String, std::net::SocketAddr), Arc<Counters>>>,
    backends: Mutex<HashMap<String, Arc<Counters>>>,
    servers: Mutex<HashMap<(String, String), Arc<ServerRt>>>,
    /// Stick tables by backend name, kept while the table definition is unchanged.
    tables: Mutex<HashMap<String, Arc<crate::persist::Runtime>>>,
    /// Every configured stick table, by name.
    pub sticks: crate::stktable::Registry,
}

/// Runtime state matched to one snapshot, index for index.
#[derive(Debug, Clone)]
pub struct Attached {
    pub frontends: Vec<Arc<Counters>>,
    /// Per frontend, one entry per `bind` with `option socket-stats` (HAProxy's listener
    /// counters); empty without it.
    pub listeners: Vec<Vec<Arc<Counters>>>,
    pub backends: Vec<BackendRt>,
    /// The snapshot's stick tables.
    pub tables: crate::stktable::registry::Tables,
}

impl Registry {
    /// Creates the runtime entry of a server about to be added at runtime, in maintenance (as
    /// HAProxy's `add server`), so it takes no request before `enable server`.
    pub fn prepare_maint(&self, backend: &str, server: &str, weight: u32) {
        let rt = Arc::new(ServerRt::new(weight, true));
        lock(&self.servers).insert((backend.to_string(), server.to_string()), rt);
    }

    /// Finds or creates the runtime entries for every object of `snap`, and forgets objects that
    /// are gone. A server whose configured weight changed takes the new weight.
    pub fn attach(&self, snap: &Snapshot) -> Attached {
        let mut fr = lock(&self.frontends);
        let mut be = lock(&self.backends);
        let mut sv = lock(&self.servers);
        let mut tables = lock(&self.tables);
        let mut next_tables = HashMap::new();
        let sticks = self.sticks.attach(&snap.stick_tables);
        let frontends: Vec<_> = snap.frontends.iter().map(|f| fr.entry(f.name.clone()).or_default().clone()).collect();
        let mut li = lock(&self.listeners);
        let listeners: Vec<Vec<_>> = snap
            .frontends
            .iter()
            .map(|f| {
                let binds = if f.socket_stats { &f.binds[..] } else { &[] };
                binds.iter().map(|b| li.entry((f.name.clone(), b.addr)).or_default().clone()).collect()
            })
            .collect();
        li.retain(|(f, a), _| {
            snap.frontends.iter().any(|x| &x.name == f && x.socket_stats && x.binds.iter().any(|b| b.addr == *a))
        });
        let mut keep = std::collections::HashSet::new();
        let backends =
            snap.backends
                .iter()
                .map(|b| BackendRt {
                    counters: be.entry(b.name.clone()).or_default().clone(),
                    servers: b
                        .servers
                        .iter()
                        .map(|s| {
                            let key = (b.name.clone(), s.name.clone());
                            keep.insert(key.clone());
                            server_rt(&mut sv, key, b, s)
                        })
                        .collect(),
                    no_addr: b.servers.iter().map(|s| s.unresolved).collect(),
                    persist: b.persist.stick.as_ref().map(|st| {
                        if let Some(shared) = sticks.find(&b.name) {
                            let rt = crate::persist::Runtime::shared(st.table, shared.clone(), sticks.epoch());
                            return Arc::new(rt.with_named_tables(st, &sticks));
                        }
                        if st.rules.iter().any(|r| r.table.is_some()) {
                            let rt = crate::persist::Runtime::new(Some(st.table), sticks.epoch());
                            return Arc::new(rt.with_named_tables(st, &sticks));
                        }
                        let t =
                            tables.get(&b.name).filter(|t| t.table_spec() == Some(st.table)).cloned().unwrap_or_else(
                                || Arc::new(crate::persist::Runtime::new(Some(st.table), Instant::now())),
                            );
                        next_tables.insert(b.name.clone(), t.clone());
                        t
                    }),
                })
                .collect();
        fr.retain(|k, _| snap.frontends.iter().any(|f| &f.name == k));
        be.retain(|k, _| snap.backends.iter().any(|b| &b.name == k));
        sv.retain(|k, _| keep.contains(k));
        *tables = next_tables;
        Attached { frontends, listeners, backends, tables: sticks }
    }
}

impl Registry {
    /// The runtime entry of a server added to the live snapshot at runtime (see `attach`).
    pub fn attach_server(
        &self,
        b: &crate::config::snapshot::Backend,
        s: &crate::config::snapshot::Server,
    ) -> Arc<ServerRt> {
        server_rt(&mut lock(&self.servers), (b.name.clone(), s.name.clone()), b, s)
    }
}

/// Finds or creates a server's runtime entry and gives it the snapshot's settings.
fn server_rt(
    sv: &mut HashMap<(String, String), Arc<ServerRt>>,
    key: (String, String),
    b: &crate::config::snapshot::Backend,
    s: &crate::config::snapshot::Server,
) -> Arc<ServerRt> {
    let mut fresh = false;
    let rt = sv.entry(key).or_insert_with(|| {
        fresh = true;
        Arc::new(ServerRt::new(s.weight, s.disabled))
    });
    rt.configure_check(s.rise_fall);
    // Without an address a server starts in maintenance (HAProxy's `RMAINT`): counter at 0.
    if fresh && !s.disabled {
        rt.check_health.store(if s.unresolved { 0 } else { rt.check_rise.load(Relaxed) }, Relaxed);
    }
    if rt.addressless.swap(s.unresolved, Relaxed) != s.unresolved && !fresh {
        rt.address_moved(s.unresolved, s.check.is_some() || s.awaits_check);
    }
    if rt.config_weight.swap(s.weight, Relaxed) != s.weight {
        rt.set_weight(s.weight);
    }
    rt.configure(s.slowstart, s.shutdown_on_down);
    rt.passive.configure(s.observe);
    rt.maxconn.store(s.maxconn.unwrap_or(0), Relaxed);
    rt.minconn.store(s.upstream.minconn, Relaxed);
    rt.fullconn.store(b.reuse.fullconn, Relaxed);
    rt.maxqueue.store(s.upstream.maxqueue, Relaxed);
    rt.clone()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rate_clock_counts_whole_milliseconds_as_instant_elapsed_did() {
        let e = (100, 999_999_999);
        assert_eq!(super::ms_between(e, e), 0);
        assert_eq!(super::ms_between(e, (101, 0)), 0, "1 ns later");
        assert_eq!(super::ms_between(e, (101, 999_998)), 0, "999,999 ns later");
        assert_eq!(super::ms_between(e, (101, 999_999)), 1, "1 ms later, across the second");
        assert_eq!(super::ms_between((5, 500_000_000), (7, 250_000_000)), 1_750);
        let d = std::time::Duration::new(4_294_967, 296_000_000);
        assert_eq!(
            super::ms_between((0, 0), (d.as_secs() as i64, i64::from(d.subsec_nanos()))),
            d.as_millis() as u32,
            "wraps at 32 bits as `as_millis() as u32`"
        );
        let (a, b) = (super::rate_clock(), super::rate_clock());
        assert!(b >= a || a - b > u32::MAX / 2, "{a} then {b}");
    }

    #[test]
    fn a_reading_earlier_than_the_epoch_counts_as_none_elapsed() {
        let e = (100, 5);
        assert_eq!(super::ms_between(e, (100, 4)), 0, "1 ns earlier");
        assert_eq!(super::ms_between(e, (99, 999_999_999)), 0, "across the second");
        assert_eq!(super::ms_between(e, (0, 0)), 0);
    }

    use super::*;

    fn server() -> ServerRt {
        ServerRt::new(100, false)
    }

    #[test]
    fn slowstart_ramps_after_coming_up_only() {
        let s = server();
        s.configure(Duration::from_secs(3600), false);
        assert_eq!(s.effective_weight(), 100, "a server up from the start is not ramped");
        s.set_up(false);
        s.set_up(true);
        let w = s.effective_weight();
        assert!((1..=2).contains(&w), "just came up: {w}");
        assert_eq!(s.up_transitions.load(Relaxed), 1);
        s.configure(Duration::ZERO, false);
        assert_eq!(s.effective_weight(), 100, "no slowstart, full weight");
    }

    #[test]
    fn admin_changes_restart_the_time_since_the_last_change_as_haproxy() {
        let s = server();
        let at = |s: &ServerRt| s.last_change.lock().unwrap().0;
        let moved = |s: &ServerRt, a: Admin| {
            let before = at(s);
            s.set_admin(a);
            at(s) != before
        };
        std::thread::sleep(Duration::from_millis(2));
        assert!(moved(&s, Admin::Drain), "entering drain");
        std::thread::sleep(Duration::from_millis(2));
        assert!(moved(&s, Admin::Ready), "leaving drain");
        std::thread::sleep(Duration::from_millis(2));
        assert!(moved(&s, Admin::Maint), "an up server entering maintenance");
        std::thread::sleep(Duration::from_millis(2));
        assert!(moved(&s, Admin::Ready), "leaving it up");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!moved(&s, Admin::Ready), "no change");
        // A server already down enters and leaves maintenance without a change of state.
        s.set_up(false);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!moved(&s, Admin::Maint));
        std::thread::sleep(Duration::from_millis(2));
        assert!(!moved(&s, Admin::Ready));
    }

    #[test]
    fn leaving_maintenance_ramps_too() {
        let s = ServerRt::new(50, true);
        s.configure(Duration::from_secs(3600), false);
        s.set_admin(Admin::Ready);
        assert!(s.effective_weight() <= 1);
    }

    #[test]
    fn a_server_without_address_in_its_generation_is_not_usable_there() {
        // A newer snapshot gave the shared entry an address; this generation still has none.
        let shared = Arc::new(server());
        let old =
            BackendRt { counters: Arc::default(), servers: vec![shared.clone()], no_addr: vec![true], persist: None };
        let new = BackendRt { no_addr: vec![false], ..old.clone() };
        assert!(shared.usable());
        assert!(!ServerState::usable(&old, 0) && !old.server_usable(0));
        assert_eq!(old.nbsrv(), 0);
        assert!(ServerState::usable(&new, 0));
        assert_eq!(new.nbsrv(), 1);
    }

    /// The proxies' rates are HAProxy's one-second `freq_ctr`: the events of this second plus
    /// the previous second's weighted by what the window still covers.
    #[test]
    fn session_and_request_rates_slide_over_one_second() {
        let c = Counters::default();
        for _ in 0..4 {
            c.rate_event(&c.sess_rate, 10_000);
        }
        c.rate_event(&c.req_rate, 10_000);
        assert_eq!((c.sess_per_sec(10_500), c.req_per_sec(10_500)), (4, 1));
        // Half a second into the next one: half of the previous second's four.
        assert_eq!(c.sess_per_sec(11_500), 2);
        assert_eq!(c.req_per_sec(11_500), 1, "a lone event reads whole (HAProxy's flapping correction)");
        assert_eq!(c.sess_per_sec(13_000), 0, "two idle seconds forget everything");
    }

    #[test]
    fn drain_keeps_the_server_usable_for_persistence_only() {
        let rt = BackendRt {
            counters: Arc::default(),
            servers: vec![Arc::new(server())],
            no_addr: vec![false],
            persist: None,
        };
        rt.servers[0].set_admin(Admin::Drain);
        assert!(ServerState::usable(&rt, 0), "persistence may still use it");
        assert_eq!(ServerState::weight(&rt, 0), 0, "no new traffic");
        rt.servers[0].set_admin(Admin::Maint);
        assert!(!ServerState::usable(&rt, 0));
    }

    #[tokio::test]
    async fn marked_down_ends_sessions_only_with_shutdown_sessions() {
        let s = server();
        let end = s.session_end();
        s.set_up(false);
        let ended = tokio::time::timeout(Duration::from_millis(50), end).await;
        assert!(ended.is_err(), "without the option sessions stay");
        s.set_up(true);
        s.configure(Duration::ZERO, true);
        let end = s.session_end();
        s.set_up(false);
        tokio::time::timeout(Duration::from_secs(5), end).await.expect("session told to end");
        // A session opened after the server went down is not affected by that transition.
        let later = s.session_end();
        assert!(tokio::time::timeout(Duration::from_millis(50), later).await.is_err());
    }

    #[test]
    fn stick_tables_survive_a_reload_with_the_same_definition() {
        let src = |expire: &str| {
            format!(
                "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"be\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:1\" }}]\nstick_table = {{ type = \"ip\", size = 10, expire = \"{expire}\" }}\nstick = [{{ on = \"src\" }}]\n"
            )
        };
        let parse = |t: &str| crate::config::parse(t, std::path::Path::new("t.toml")).unwrap();
        let reg = Registry::default();
        let a = reg.attach(&parse(&src("1m")));
        let b = reg.attach(&parse(&src("1m")));
        let c = reg.attach(&parse(&src("2m")));
        assert!(a.backends[0].persist.is_some());
        let (a, b, c) = (
            a.tables.find("be").unwrap().clone(),
            b.tables.find("be").unwrap().clone(),
            c.tables.find("be").unwrap().clone(),
        );
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&b, &c), "a changed table starts empty");
    }
}
