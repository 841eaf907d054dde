//! Runs one health checker per checked server and feeds results into the runtime state.

use crate::health::{self, CheckSpec, HealthSink, Transition};
use crate::log::format::Level;
use crate::proxy::Proxy;
use crate::state::ServerRt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;

struct Sink {
    rt: Arc<ServerRt>,
    proxy: Arc<Proxy>,
    name: String,
}

impl HealthSink for Sink {
    fn on_check(&self, ok: bool, detail: &str, duration: Duration) {
        if !ok {
            self.rt.check_failures.fetch_add(1, Relaxed);
        }
        if let Ok(mut c) = self.rt.last_check.lock() {
            c.clear();
            c.push_str(detail);
        }
        self.rt.checked.store(true, Relaxed);
        self.rt.check_duration_ms.store(duration.as_millis() as u64, Relaxed);
    }
    fn on_transition(&self, t: &Transition) {
        let up = matches!(t, Transition::Up { .. });
        let open = self.rt.counters.cur_sessions.load(Relaxed);
        self.rt.set_up(up);
        let state = if up { "UP" } else { "DOWN" };
        let msg = format!("Server {} is {state}, reason: {}", self.name, t.reason());
        self.proxy.active.load().logger.log(Level::Notice, &msg);
        if !up && self.rt.shuts_down_sessions() && open > 0 {
            tracing::warn!(server = %self.name, "on-marked-down shutdown-sessions: closing {open} open sessions");
        }
    }
}

struct Running {
    spec: String,
    stop: watch::Sender<bool>,
}

#[derive(Default)]
pub struct Checks {
    running: HashMap<(String, String), Running>,
    /// Started with the first checker; `None` after a failed start, checkers then share the
    /// proxy's runtime.
    thread: Option<Option<health::CheckThread>>,
    /// Servers whose checks `disable health` stopped (kept across reloads).
    disabled: std::collections::HashSet<(String, String)>,
}

impl Checks {
    /// Keeps checkers whose server and settings are unchanged (their rise/fall progress with them),
    /// restarts changed ones and stops those of removed servers.
    pub fn reconcile(&mut self, proxy: &Arc<Proxy>) {
        let active = proxy.active.load_full();
        let mut next = HashMap::new();
        for (bi, b) in active.snap.backends.iter().enumerate() {
            for (si, s) in b.servers.iter().enumerate() {
                let Some(spec) = &s.check else { continue };
                let key = (b.name.clone(), s.name.clone());
                if self.disabled.contains(&key) {
                    continue;
                }
                let text = format!("{spec:?}");
                if let Some(r) = self.running.remove(&key) {
                    if r.spec == text {
                        next.insert(key, r);
                        continue;
                    }
                    let _ = r.stop.send(true);
                }
                let sink = Sink {
                    rt: active.rt.backends[bi].servers[si].clone(),
                    proxy: proxy.clone(),
                    name: format!("{}/{}", b.name, s.name),
                };
                next.insert(key, spawn(self.runtime(), spec.clone(), text, sink));
            }
        }
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(true);
        }
        self.running = next;
    }

    fn runtime(&mut self) -> Option<&tokio::runtime::Handle> {
        let thread = self.thread.get_or_insert_with(|| {
            health::CheckThread::start()
                .inspect_err(|e| tracing::warn!("cannot start the health check thread, checks share the proxy's: {e}"))
                .ok()
        });
        thread.as_ref().map(health::CheckThread::handle)
    }

    /// `enable|disable health`: a server without running checks counts as UP, as in HAProxy.
    pub fn set_enabled(&mut self, proxy: &Arc<Proxy>, backend: &str, server: &str, on: bool) {
        let key = (backend.to_string(), server.to_string());
        if on {
            self.disabled.remove(&key);
        } else {
            self.disabled.insert(key.clone());
            if let Some(r) = self.running.remove(&key) {
                let _ = r.stop.send(true);
            }
        }
        self.reconcile(proxy);
    }

    /// Restarts a server's checker from its current state (after `set server ... health`), so
    /// its rise/fall counting starts over from the forced state.
    pub fn restart(&mut self, proxy: &Arc<Proxy>, backend: &str, server: &str) {
        if let Some(r) = self.running.remove(&(backend.to_string(), server.to_string())) {
            let _ = r.stop.send(true);
        }
        self.reconcile(proxy);
    }

    pub fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(true);
        }
    }
}

fn spawn(rt: Option<&tokio::runtime::Handle>, spec: CheckSpec, text: String, sink: Sink) -> Running {
    let (stop, rx) = watch::channel(false);
    let init = health::InitState::from_start_up(sink.rt.is_up());
    match rt {
        Some(rt) => health::spawn_checker_on(rt, spec, init, Arc::new(sink), rx),
        None => health::spawn_checker_init(spec, init, Arc::new(sink), rx),
    };
    Running { spec: text, stop }
}
