//! Runtime state that outlives a config snapshot: health, admin state, runtime weight, live
//! connections and counters, keyed by stable names so a reload carries them over.

use crate::balance::ServerState;
use crate::config::Snapshot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// Operator-set state (HAProxy's READY / DRAIN / MAINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready = 0,
    Drain = 1,
    Maint = 2,
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
    pub errors_req: AtomicU64,
    pub errors_conn: AtomicU64,
    pub errors_resp: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub http_responses: [AtomicU64; 6],
    /// Used by backends only.
    pub queue: Queue,
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
    }
    pub fn count_status(&self, status: u16) {
        let i = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.http_responses[i].fetch_add(1, Relaxed);
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
    admin: AtomicU8,
    weight: AtomicU32,
    /// Weight from the config, to restore after `set weight` or drain.
    config_weight: AtomicU32,
    pub last_change: Mutex<(Instant, SystemTime)>,
    pub last_check: Mutex<String>,
    pub checked: AtomicBool,
    pub check_duration_ms: AtomicU64,
    pub down_transitions: AtomicU64,
    /// Failed health checks since start.
    pub check_failures: AtomicU64,
    /// Concurrent sessions allowed (0 = no limit), from the config.
    pub maxconn: AtomicU32,
    downtime_ms: AtomicU64,
}

impl ServerRt {
    fn new(weight: u32, disabled: bool) -> Self {
        Self {
            counters: Arc::default(),
            up: AtomicBool::new(true),
            admin: AtomicU8::new(if disabled { Admin::Maint } else { Admin::Ready } as u8),
            weight: AtomicU32::new(weight),
            config_weight: AtomicU32::new(weight),
            last_change: Mutex::new((Instant::now(), SystemTime::now())),
            last_check: Mutex::new(String::new()),
            checked: AtomicBool::new(false),
            check_duration_ms: AtomicU64::new(0),
            down_transitions: AtomicU64::new(0),
            check_failures: AtomicU64::new(0),
            maxconn: AtomicU32::new(0),
            downtime_ms: AtomicU64::new(0),
        }
    }
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }
    pub fn set_up(&self, up: bool) {
        if self.up.swap(up, Relaxed) != up {
            if !up {
                self.down_transitions.fetch_add(1, Relaxed);
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
    pub fn admin(&self) -> Admin {
        match self.admin.load(Relaxed) {
            0 => Admin::Ready,
            1 => Admin::Drain,
            _ => Admin::Maint,
        }
    }
    pub fn set_admin(&self, a: Admin) {
        self.admin.store(a as u8, Relaxed);
    }
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }
    pub fn set_weight(&self, w: u32) {
        self.weight.store(w, Relaxed);
    }
    /// Up, not in maintenance: may take traffic (drain only takes persistent traffic).
    pub fn usable(&self) -> bool {
        self.is_up() && self.admin() != Admin::Maint
    }
    /// At `maxconn`: new requests wait in the backend queue.
    pub fn full(&self) -> bool {
        let m = self.maxconn.load(Relaxed);
        m > 0 && self.counters.cur_sessions.load(Relaxed) >= m
    }
    /// HAProxy's status column.
    pub fn status(&self) -> &'static str {
        match (self.admin(), self.is_up()) {
            (Admin::Maint, _) => "MAINT",
            (Admin::Drain, true) => "DRAIN",
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
}

impl BackendRt {
    /// Servers that can take new traffic right now (HAProxy's `nbsrv`).
    pub fn nbsrv(&self) -> usize {
        self.servers.iter().filter(|s| s.usable() && s.weight() > 0).count()
    }
}

impl ServerState for BackendRt {
    fn usable(&self, idx: usize) -> bool {
        self.servers.get(idx).is_some_and(|s| s.usable() && !s.full())
    }
    fn conns(&self, idx: usize) -> u32 {
        self.servers.get(idx).map_or(0, |s| s.counters.cur_sessions.load(Relaxed))
    }
    fn weight(&self, idx: usize) -> u32 {
        self.servers.get(idx).map_or(0, |s| if s.admin() == Admin::Drain { 0 } else { s.weight() })
    }
}

/// Keeps runtime entries by name across reloads.
#[derive(Debug, Default)]
pub struct Registry {
    frontends: Mutex<HashMap<String, Arc<Counters>>>,
    backends: Mutex<HashMap<String, Arc<Counters>>>,
    servers: Mutex<HashMap<(String, String), Arc<ServerRt>>>,
}

/// Runtime state matched to one snapshot, index for index.
#[derive(Debug)]
pub struct Attached {
    pub frontends: Vec<Arc<Counters>>,
    pub backends: Vec<BackendRt>,
}

impl Registry {
    /// Finds or creates the runtime entries for every object of `snap`, and forgets objects that
    /// are gone. A server whose configured weight changed takes the new weight.
    pub fn attach(&self, snap: &Snapshot) -> Attached {
        let mut fr = lock(&self.frontends);
        let mut be = lock(&self.backends);
        let mut sv = lock(&self.servers);
        let frontends: Vec<_> = snap.frontends.iter().map(|f| fr.entry(f.name.clone()).or_default().clone()).collect();
        let mut keep = std::collections::HashSet::new();
        let backends = snap
            .backends
            .iter()
            .map(|b| BackendRt {
                counters: be.entry(b.name.clone()).or_default().clone(),
                servers: b
                    .servers
                    .iter()
                    .map(|s| {
                        let key = (b.name.clone(), s.name.clone());
                        keep.insert(key.clone());
                        let rt = sv.entry(key).or_insert_with(|| Arc::new(ServerRt::new(s.weight, s.disabled)));
                        if rt.config_weight.swap(s.weight, Relaxed) != s.weight {
                            rt.set_weight(s.weight);
                        }
                        rt.maxconn.store(s.maxconn.unwrap_or(0), Relaxed);
                        rt.clone()
                    })
                    .collect(),
            })
            .collect();
        fr.retain(|k, _| snap.frontends.iter().any(|f| &f.name == k));
        be.retain(|k, _| snap.backends.iter().any(|b| &b.name == k));
        sv.retain(|k, _| keep.contains(k));
        Attached { frontends, backends }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
