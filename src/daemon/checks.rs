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
    backend: String,
    /// The last check passed (servers start UP, as in HAProxy), for `log_health_checks`.
    passing: std::sync::atomic::AtomicBool,
    /// `http-check disable-on-404`.
    disable_on_404: bool,
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
        if self.passing.swap(ok, Relaxed) != ok {
            let active = self.proxy.active.load();
            if active.snap.backend(&self.backend).is_some_and(|(_, b)| b.log_health_checks) {
                let msg = health_check_line(&self.name, ok, detail, duration);
                active.be_logger(&self.backend).log(Level::Notice, &msg);
            }
        }
    }
    fn on_pass_status(&self, status: Option<u16>, conditional: bool) {
        // A passing check also ends a NOLB forced by `set server ... health stopping`, as in HAProxy.
        let on_404 = self.disable_on_404 && status == Some(404);
        if self.rt.set_nolb(on_404 || conditional) {
            let msg = match (on_404, conditional) {
                (true, _) => {
                    format!("Server {} is NOLB: its check answered 404 (http-check disable-on-404)", self.name)
                }
                (_, true) => format!("Server {} is NOLB: its check passed conditionally (L7OKC)", self.name),
                _ => format!("Server {} leaves NOLB: its check passed", self.name),
            };
            tracing::info!("{msg}");
            self.proxy.active.load().be_logger(&self.backend).log(Level::Notice, &msg);
        }
        let active = self.proxy.active.load();
        for (bi, si) in trackers(&active.snap, &self.backend, self.server()) {
            active.rt.backends[bi].servers[si].set_nolb(on_404 || conditional);
        }
    }
    fn passive(&self) -> Option<&health::passive::Link> {
        Some(&self.rt.passive)
    }
    fn shared_health(&self) -> Option<&std::sync::atomic::AtomicU32> {
        Some(&self.rt.check_health)
    }
    fn paused(&self) -> bool {
        self.rt.admin() == crate::state::Admin::Maint
    }
    fn in_progress(&self, on: bool) {
        self.rt.probing.store(on, Relaxed);
    }
    fn server_state(&self, rf: &health::RiseFall) -> Option<String> {
        let active = self.proxy.active.load();
        let (bi, si) = position(&active.snap, &self.backend, self.server())?;
        let (b, brt) = (&active.snap.backends[bi], &active.rt.backends[bi]);
        let usable = |backup: bool| -> u32 {
            b.servers
                .iter()
                .zip(&brt.servers)
                .filter(|(s, rt)| {
                    s.backup == backup && rt.is_up() && !rt.nolb() && rt.admin() == crate::state::Admin::Ready
                })
                .map(|(_, rt)| rt.effective_weight())
                .sum()
        };
        // HAProxy's total is the active servers', or the backups' when no active one is usable.
        let total = match usable(false) {
            0 => usable(true),
            w => w,
        };
        let queued = u64::from(brt.counters.queue.cur.load(Relaxed));
        let f = health::send_state::Figures {
            up: self.rt.is_up(),
            nolb: self.rt.nolb(),
            health: rf.health(),
            rise: rf.rise(),
            fall: rf.fall(),
            addr: b.servers[si].addr,
            name: self.name.clone(),
            node: node_name(),
            weight: self.rt.effective_weight(),
            total_weight: total,
            scur: u64::from(self.rt.counters.cur_sessions.load(Relaxed)),
            be_conns: u64::from(brt.counters.cur_sessions.load(Relaxed)).saturating_sub(queued),
            qcur: u64::from(self.rt.queued.load(Relaxed)),
            throttle: self.rt.ramp_percent(),
        };
        Some(health::send_state::value(&f))
    }
    fn on_trip(&self, trip: &health::passive::Trip) {
        tracing::info!(server = %self.name, "health analyze: {} (on-error {:?})", trip.info, trip.action);
    }
    fn on_transition(&self, t: &Transition) {
        let up = matches!(t, Transition::Up { .. });
        let open = self.rt.counters.cur_sessions.load(Relaxed);
        self.rt.set_up(up);
        let active = self.proxy.active.load();
        if up && let Some(at) = position(&active.snap, &self.backend, self.server()) {
            self.proxy.shutdown_backups(&active, at);
        }
        let state = if up { "UP" } else { "DOWN" };
        let msg = format!("Server {} is {state}, reason: {}", self.name, t.reason());
        active.be_logger(&self.backend).log(Level::Notice, &msg);
        if !up && self.rt.shuts_down_sessions() && open > 0 {
            tracing::warn!(server = %self.name, "on-marked-down shutdown-sessions: closing {open} open sessions");
        }
        // Servers that `track` this one (directly or down a chain) change with it.
        for (bi, si) in trackers(&active.snap, &self.backend, self.server()) {
            let (b, s) = (&active.snap.backends[bi], &active.snap.backends[bi].servers[si]);
            let rt = &active.rt.backends[bi].servers[si];
            if rt.is_up() != up {
                rt.set_up(up);
                if up {
                    self.proxy.shutdown_backups(&active, (bi, si));
                }
                let msg = format!("Server {}/{} is {state} via {}", b.name, s.name, self.name);
                if up {
                    tracing::info!("{msg}");
                } else {
                    tracing::warn!("{msg}");
                }
                active.be_logger(&b.name).log(Level::Notice, &msg);
            }
        }
    }
}

/// HAProxy's `node`: the host name (lbha has no `node` setting).
fn node_name() -> String {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()).clone()
}

impl Sink {
    fn server(&self) -> &str {
        self.name.rsplit_once('/').map_or(self.name.as_str(), |(_, s)| s)
    }
}

/// Where `backend/server` is in the snapshot.
fn position(snap: &crate::config::Snapshot, backend: &str, server: &str) -> Option<(usize, usize)> {
    let (bi, b) = snap.backend(backend)?;
    Some((bi, b.servers.iter().position(|s| s.name == server)?))
}

/// The servers whose `track` leads to `backend/server`, directly or down a chain (loops are
/// refused at load).
fn trackers(snap: &crate::config::Snapshot, backend: &str, server: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut todo = vec![(backend.to_string(), server.to_string())];
    while let Some(t) = todo.pop() {
        for (bi, b) in snap.backends.iter().enumerate() {
            for (si, s) in b.servers.iter().enumerate() {
                if s.track.as_ref() == Some(&t) && !out.contains(&(bi, si)) {
                    out.push((bi, si));
                    todo.push((b.name.clone(), s.name.clone()));
                }
            }
        }
    }
    out
}

/// After a load, a tracking server takes its tracked server's state (it has no checks).
fn sync_trackers(active: &crate::proxy::Active) {
    for (bi, b) in active.snap.backends.iter().enumerate() {
        for (si, s) in b.servers.iter().enumerate() {
            let Some((tb, ts)) = &s.track else { continue };
            // The end of the chain holds the state.
            let mut cur = (tb.clone(), ts.clone());
            let total: usize = active.snap.backends.iter().map(|b| b.servers.len()).sum();
            for _ in 0..=total {
                let next = active.snap.backend(&cur.0).and_then(|(_, bk)| bk.servers.iter().find(|x| x.name == cur.1));
                match next.and_then(|x| x.track.clone()) {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            let Some((tbi, _)) = active.snap.backends.iter().enumerate().find(|(_, x)| x.name == cur.0) else {
                continue;
            };
            let Some(tsi) = active.snap.backends[tbi].servers.iter().position(|x| x.name == cur.1) else { continue };
            let src = &active.rt.backends[tbi].servers[tsi];
            let rt = &active.rt.backends[bi].servers[si];
            rt.set_up(src.is_up());
            rt.set_nolb(src.nolb());
        }
    }
}

/// Where a (re)started checker counts from: 0 in maintenance (HAProxy's paused check), the
/// server's counter when it agrees with the checks' own state (kept across a restart of its
/// checker), else the default start for that state (up one failure from down, or down), so
/// that the counter and the state agree again. The agent's verdict is no part of it: a counter
/// started down under a server whose checks left it up would never count the failures that
/// must take it down, and the server would serve again once its agent said up.
fn start_at(rt: &ServerRt) -> health::InitState {
    let h = rt.check_health.load(Relaxed);
    let (rise, _) = rt.check_rise_fall();
    let up = rt.health_up();
    if rt.admin() == crate::state::Admin::Maint {
        health::InitState::At(0)
    } else if (h >= rise) == up {
        health::InitState::At(h)
    } else {
        health::InitState::from_start_up(up)
    }
}

/// HAProxy's `option log-health-checks` line for a changed check result.
fn health_check_line(server: &str, ok: bool, detail: &str, duration: Duration) -> String {
    let verdict = if ok { "succeeded" } else { "failed" };
    format!("Health check for server {server} {verdict}, reason: {detail}, check duration: {}ms.", duration.as_millis())
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
    /// `agent-check`s, by (backend, server).
    agents: HashMap<(String, String), super::agent::Running>,
    /// Servers whose checks `disable health` stopped (kept across reloads).
    disabled: std::collections::HashSet<(String, String)>,
    /// Servers whose agents `disable agent` stopped (kept across reloads).
    agents_disabled: std::collections::HashSet<(String, String)>,
}

impl Checks {
    /// Keeps checkers whose server and settings are unchanged (their rise/fall progress with them),
    /// restarts changed ones and stops those of removed servers.
    pub fn reconcile(&mut self, proxy: &Arc<Proxy>) {
        let active = proxy.active.load_full();
        let mut next = HashMap::new();
        for (bi, b) in active.snap.backends.iter().enumerate() {
            for (si, s) in b.servers.iter().enumerate() {
                let agent_on = s.agent.is_some() && !self.agents_disabled.contains(&(b.name.clone(), s.name.clone()));
                active.rt.backends[bi].servers[si].set_agent_on(agent_on);
                let Some(spec) = &s.check else {
                    active.rt.backends[bi].servers[si].set_checks_on(false);
                    continue;
                };
                let key = (b.name.clone(), s.name.clone());
                let on = !self.disabled.contains(&key);
                active.rt.backends[bi].servers[si].set_checks_on(on);
                if !on {
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
                next.insert(key, self.start(proxy, &active, (bi, si), spec, text));
            }
        }
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(true);
        }
        self.running = next;
        sync_trackers(&active);
        proxy.trackers_follow(&active);
        let mut agents = std::mem::take(&mut self.agents);
        if active.snap.backends.iter().any(|b| b.servers.iter().any(|s| s.agent.is_some())) || !agents.is_empty() {
            super::agent::reconcile(&mut agents, &self.agents_disabled.clone(), proxy, self.runtime());
        }
        self.agents = agents;
    }

    fn start(
        &mut self,
        proxy: &Arc<Proxy>,
        active: &crate::proxy::Active,
        (bi, si): (usize, usize),
        spec: &health::CheckSpec,
        text: String,
    ) -> Running {
        let (b, s) = (&active.snap.backends[bi], &active.snap.backends[bi].servers[si]);
        let sink = Sink {
            rt: active.rt.backends[bi].servers[si].clone(),
            proxy: proxy.clone(),
            name: format!("{}/{}", b.name, s.name),
            backend: b.name.clone(),
            passing: std::sync::atomic::AtomicBool::new(true),
            disable_on_404: matches!(&spec.kind, health::CheckKind::Http(h) if h.disable_on_404),
        };
        spawn(self.runtime(), spec.clone(), text, sink)
    }

    /// (Re)starts the checker of server `si` of backend `bi`, just added or changed at runtime,
    /// leaving the others alone (what `reconcile` would do for it, without visiting every server).
    pub fn restart_server(&mut self, proxy: &Arc<Proxy>, bi: usize, si: usize) {
        let active = proxy.active.load_full();
        let (b, s) = (&active.snap.backends[bi], &active.snap.backends[bi].servers[si]);
        let key = (b.name.clone(), s.name.clone());
        let text = s.check.as_ref().map(|spec| format!("{spec:?}"));
        if let Some(r) = self.running.remove(&key) {
            if Some(&r.spec) == text.as_ref() {
                self.running.insert(key, r);
                return;
            }
            let _ = r.stop.send(true);
        }
        // The server's agent follows it too (one added at runtime starts its own).
        if s.agent.is_some() || !self.agents.is_empty() {
            let mut agents = std::mem::take(&mut self.agents);
            super::agent::reconcile(&mut agents, &self.agents_disabled.clone(), proxy, self.runtime());
            self.agents = agents;
        }
        // A server that tracks another takes its state now, and its changes from then on; the
        // trackers of one whose address came or went (DNS) take or leave its maintenance.
        let tracked = active
            .snap
            .backends
            .iter()
            .flat_map(|x| &x.servers)
            .any(|o| o.track.as_ref().is_some_and(|(tb, ts)| *tb == b.name && *ts == s.name));
        if s.track.is_some() || tracked {
            sync_trackers(&active);
            proxy.trackers_follow(&active);
        }
        let on = s.check.is_some() && !self.disabled.contains(&key);
        active.rt.backends[bi].servers[si].set_checks_on(on);
        active.rt.backends[bi].servers[si].set_agent_on(s.agent.is_some() && !self.agents_disabled.contains(&key));
        let (Some(spec), Some(text)) = (&s.check, text) else { return };
        if !on {
            return;
        }
        let r = self.start(proxy, &active, (bi, si), spec, text);
        self.running.insert(key, r);
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

    /// `enable|disable agent`: stops or restarts a server's agent.
    pub fn set_agent_enabled(&mut self, proxy: &Arc<Proxy>, backend: &str, server: &str, on: bool) {
        let key = (backend.to_string(), server.to_string());
        if on {
            self.agents_disabled.remove(&key);
        } else {
            self.agents_disabled.insert(key.clone());
            self.agents.remove(&key);
        }
        self.reconcile(proxy);
    }

    pub fn agent_enabled(&self, backend: &str, server: &str) -> bool {
        !self.agents_disabled.contains(&(backend.to_string(), server.to_string()))
    }

    /// Servers that track others take their state again (after `set server ... health`).
    pub fn sync_trackers(&self, proxy: &Arc<Proxy>) {
        let active = proxy.active.load_full();
        sync_trackers(&active);
        proxy.trackers_follow(&active);
    }

    pub fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(true);
        }
        self.agents.clear();
    }
}

fn spawn(rt: Option<&tokio::runtime::Handle>, spec: CheckSpec, text: String, sink: Sink) -> Running {
    let (stop, rx) = watch::channel(false);
    let init = start_at(&sink.rt);
    match rt {
        Some(rt) => health::spawn_checker_on(rt, spec, init, Arc::new(sink), rx),
        None => health::spawn_checker_init(spec, init, Arc::new(sink), rx),
    };
    Running { spec: text, stop }
}

#[cfg(test)]
mod tests {
    use crate::health::RiseFall;
    use crate::state::ServerRt;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    /// A server with a check (rise 2, fall 3) and an agent, as a load gives it.
    fn server() -> Arc<ServerRt> {
        let src = "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"web\"\nservers = [\
                   { name = \"a\", addr = \"127.0.0.1:9\", check = true, agent_check = true, agent_port = 9 }]\n";
        let snap = crate::config::parse(src, std::path::Path::new("t.toml")).unwrap();
        crate::state::Registry::default().attach(&snap).backends[0].servers[0].clone()
    }

    /// A checker (re)started as `spawn` starts one: its counter goes into the server's.
    fn restart(rt: &ServerRt) -> RiseFall {
        let (rise, fall) = rt.check_rise_fall();
        let rf = RiseFall::with_init(rise, fall, super::start_at(rt));
        rt.check_health.store(rf.health(), Relaxed);
        rf
    }

    /// One check as the checker counts it (from the server's counter, into it) and a
    /// transition as `Sink::on_transition` applies it.
    fn check(rt: &ServerRt, rf: &mut RiseFall, ok: bool) {
        rf.set_health(rt.check_health.load(Relaxed));
        let t = rf.observe(ok);
        rt.check_health.store(rf.health(), Relaxed);
        if let Some(t) = t {
            rt.set_up(t.is_up());
        }
    }

    #[test]
    fn a_checker_restarted_while_the_agent_holds_its_server_down_still_takes_it_down() {
        let rt = server();
        let mut rf = restart(&rt);
        check(&rt, &mut rf, true);
        assert_eq!(rt.check_health.load(Relaxed), 4);
        // The agent says down; then the checker restarts (a reload changing the check,
        // `disable health` then `enable health`): it keeps the counter the checks left.
        rt.set_agent_up(false);
        let mut rf = restart(&rt);
        assert_eq!(rt.check_health.load(Relaxed), 4);
        // Every check fails from then on: `fall` of them take the server down...
        for _ in 0..3 {
            check(&rt, &mut rf, false);
        }
        assert_eq!(rt.check_health.load(Relaxed), 0);
        assert!(!rt.health_up());
        // ...and the agent saying up again gives it no traffic.
        rt.set_agent_up(true);
        assert!(!rt.is_up() && !rt.usable());
        // Passing checks bring it back, `rise` of them.
        check(&rt, &mut rf, true);
        assert!(!rt.is_up());
        check(&rt, &mut rf, true);
        assert!(rt.is_up());
    }

    #[test]
    fn a_restarted_checker_whose_counter_disagrees_with_the_checks_state_starts_from_that_state() {
        // Checks up, counter down (a tracker turned checked server, a counter left at 0 out of
        // maintenance with checks off): up one failure from down.
        let rt = server();
        rt.check_health.store(0, Relaxed);
        let mut rf = restart(&rt);
        assert_eq!(rt.check_health.load(Relaxed), 2);
        check(&rt, &mut rf, false);
        assert!(!rt.health_up());
        // Checks down, counter up: fully down, `rise` passes to come up.
        let rt = server();
        rt.set_up(false);
        rt.check_health.store(4, Relaxed);
        let mut rf = restart(&rt);
        assert_eq!(rt.check_health.load(Relaxed), 0);
        check(&rt, &mut rf, true);
        assert!(!rt.health_up());
        check(&rt, &mut rf, true);
        assert!(rt.health_up());
        // The agent's down is no disagreement: a counter the checks left up is kept.
        let rt = server();
        rt.set_agent_up(false);
        rt.check_health.store(3, Relaxed);
        restart(&rt);
        assert_eq!(rt.check_health.load(Relaxed), 3);
    }

    #[test]
    fn health_check_lines_read_like_haproxys() {
        let d = std::time::Duration::from_millis(3);
        assert_eq!(
            super::health_check_line("be/s1", false, "Layer4 connection refused", d),
            "Health check for server be/s1 failed, reason: Layer4 connection refused, check duration: 3ms."
        );
        assert!(super::health_check_line("be/s1", true, "Layer4 check passed", d).contains(" succeeded, "));
    }
}
