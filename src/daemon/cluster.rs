//! `[cluster]` in the running daemon: the sync listener, the two-phase offer made before a
//! reload applies a changed shared part, catch-up of a peer that missed changes, runtime changes
//! passed on, and `lbha cluster status|diff|push`. The decisions are `crate::cluster::decide`'s.

use super::control::Shared;
use crate::api::ReloadFn;
use crate::cluster::decide::{self, LastSync, SyncState};
use crate::cluster::link::{self, Link};
use crate::cluster::wire::{self, NodeStatus, Request, Response};
use crate::cluster::{CONFLICT, shared};
use crate::config::cluster::{ClusterSettings, SyncMode};
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::OwnedMutexGuard;

mod runtime;

/// The trigger name of a reload that applies what the peer sent (never offered back).
pub const TRIGGER: &str = "cluster sync";
/// How often a node looks at its peer: catch-up after a partition starts within this.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// A prepared change whose commit never came is dropped after this.
const PREPARED_FOR: Duration = Duration::from_secs(60);

pub struct Node {
    shared: Weak<Shared>,
    config: PathBuf,
    state_path: PathBuf,
    /// Held for a whole exchange, so two changes of this node never interleave.
    state: Arc<tokio::sync::Mutex<SyncState>>,
    /// The last saved state, for readers that must not wait for an exchange.
    current: std::sync::Mutex<SyncState>,
    held: std::sync::Mutex<Option<Held>>,
    reload: ReloadFn,
    peer: std::sync::Mutex<PeerView>,
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// The runtime ledger (in memory: a restarted node takes its peer's), held for an exchange.
    rt: Arc<tokio::sync::Mutex<crate::cluster::runtime::Ledger>>,
    /// Its last state, for `status` answers that must not wait.
    rt_current: std::sync::Mutex<SyncState>,
    /// The connection held open to the peer for hand-offs (`crate::fate::hand_off`).
    link: Arc<Link>,
    /// Set by [`Node::stop`]: the connections the peer holds open here close (they are tasks of
    /// their own, not in `tasks`), so its hand-offs go to the process that took over.
    stopped: tokio::sync::watch::Sender<bool>,
}

struct Held {
    prepared: decide::Prepared,
    at: Instant,
}

#[derive(Debug, Clone, Default)]
struct PeerView {
    reachable: Option<bool>,
    error: Option<String>,
    status: Option<NodeStatus>,
}

/// What the reload in progress does about the peer.
pub enum Gate {
    Pass,
    /// The peer refused: the reload must not apply.
    Refused(String),
    /// Applied on this node only (manual mode, or the peer is unreachable).
    Local {
        guard: OwnedMutexGuard<SyncState>,
        next: SyncState,
        note: Option<String>,
    },
    /// The peer holds the change: commit after this node applied it, abort if it could not.
    Prepared {
        guard: OwnedMutexGuard<SyncState>,
        next: SyncState,
        peer_version: u64,
        settings: Box<ClusterSettings>,
    },
}

fn now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

impl Node {
    /// Starts sync when the config has `[cluster]`: reads the state (a change made to the file
    /// while the daemon was stopped counts as a new version), binds the listener.
    pub async fn start(shared: &Arc<Shared>, reload: ReloadFn) -> Result<Option<Arc<Node>>, String> {
        let snap = shared.proxy.active.load().snap.clone();
        let Some(s) = snap.cluster.clone() else { return Ok(None) };
        let config = shared.config_path().to_path_buf();
        let state_path = crate::config::cluster::state_file(&snap.global.state_dir);
        let text = tokio::fs::read_to_string(&config)
            .await
            .map_err(|e| format!("cluster: cannot read {}: {e}", config.display()))?;
        let hash = shared::shared_hash(&text, &s.local_keys)?;
        let saved: Option<SyncState> =
            std::fs::read_to_string(&state_path).ok().and_then(|t| serde_json::from_str(&t).ok());
        let st = match saved {
            None => SyncState { version: 0, hash, ..SyncState::default() },
            Some(st) if st.hash == hash => st,
            Some(st) => {
                tracing::info!("cluster: the config changed while lbha was stopped: version {}", st.version + 1);
                decide::changed(&st, &hash)
            }
        };
        // In use: the process `lbha upgrade` replaces still holds it until the handover.
        let listener = match tokio::net::TcpListener::bind(s.bind).await {
            Ok(l) => Some(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!("cluster: {} is in use; listening as soon as it is free", s.bind);
                None
            }
            Err(e) => return Err(format!("cluster: cannot listen on {}: {e}", s.bind)),
        };
        let weak = Arc::downgrade(shared);
        let link =
            Link::start(Arc::new(move || weak.upgrade().and_then(|s| s.proxy.active.load().snap.cluster.clone())));
        let node = Arc::new(Node {
            shared: Arc::downgrade(shared),
            config,
            state_path,
            state: Arc::new(tokio::sync::Mutex::new(st.clone())),
            current: std::sync::Mutex::new(st.clone()),
            held: std::sync::Mutex::new(None),
            reload,
            peer: std::sync::Mutex::new(PeerView::default()),
            tasks: std::sync::Mutex::new(Vec::new()),
            rt: Arc::default(),
            rt_current: std::sync::Mutex::new(crate::cluster::runtime::Ledger::default().state),
            link,
            stopped: tokio::sync::watch::Sender::new(false),
        });
        runtime::install_hook(shared, &node);
        install_hand_off(&node);
        node.save(&st);
        tracing::info!(
            "cluster: node {} listening on {} for {} at {}; config version {} ({})",
            s.node,
            s.bind,
            s.peer_name,
            s.peer_addr,
            st.version,
            short(&st.hash)
        );
        let serve = crate::fate::spawn(node.clone().serve(listener, s.bind));
        let catch_up = tokio::spawn(node.clone().catch_up());
        node.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend([serve.abort_handle(), catch_up.abort_handle()]);
        Ok(Some(node))
    }

    fn settings(&self) -> Option<ClusterSettings> {
        self.shared.upgrade().and_then(|s| s.proxy.active.load().snap.cluster.clone())
    }

    fn save(&self, st: &SyncState) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = st.clone();
        match serde_json::to_vec_pretty(st) {
            Ok(b) => {
                if let Err(e) = crate::fsutil::write_atomic(&self.state_path, &b) {
                    tracing::error!("cluster: cannot write {}: {e}", self.state_path.display());
                }
            }
            Err(e) => tracing::error!("cluster: {e}"),
        }
    }

    fn current(&self) -> SyncState {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, st: &mut SyncState, outcome: String) {
        st.last_sync = Some(LastSync { at: now(), outcome });
    }

    async fn text(&self) -> Result<String, String> {
        tokio::fs::read_to_string(&self.config).await.map_err(|e| format!("cannot read {}: {e}", self.config.display()))
    }

    /// Phase one for a reload about to apply: offer a changed shared part to the peer.
    pub async fn gate(&self, trigger: &str, new: Option<&ClusterSettings>) -> Gate {
        let Some(s) = new else { return Gate::Pass };
        if trigger == TRIGGER {
            return Gate::Pass;
        }
        let guard = self.state.clone().lock_owned().await;
        let text = match self.text().await {
            Ok(t) => t,
            Err(e) => return Gate::Refused(format!("cluster: {e}")),
        };
        let hash = match shared::shared_hash(&text, &s.local_keys) {
            Ok(h) => h,
            Err(e) => return Gate::Refused(format!("cluster: {e}")),
        };
        if hash == guard.hash {
            return Gate::Pass;
        }
        let next = decide::changed(&guard, &hash);
        if s.sync == SyncMode::Manual {
            let note = format!(
                "cluster: sync = \"manual\": version {} is on this node only (`lbha cluster push`)",
                next.version
            );
            return Gate::Local { guard, next, note: Some(note) };
        }
        let offer = decide::offer(&s.node, &next, false, &s.local_keys);
        match wire::call(s, &Request::Prepare { offer, text }).await {
            Err(e) => {
                tracing::warn!(
                    "cluster: {e}; version {} applies on this node only until the peer returns",
                    next.version
                );
                let note = format!("cluster: {e}: applied on this node only; the peer catches up when it returns");
                self.peer_seen(Err(e));
                Gate::Local { guard, next, note: Some(note) }
            }
            Ok(Response::Prepared { already, state }) => {
                self.peer_seen(Ok(None));
                if already {
                    let mut next = next;
                    next.version = next.version.max(state.version);
                    let note = Some(format!("cluster: {} already has this config", s.peer_name));
                    Gate::Local { guard, next, note }
                } else {
                    Gate::Prepared { guard, next, peer_version: state.version, settings: Box::new(s.clone()) }
                }
            }
            Ok(Response::Refused { reason, conflict }) => {
                self.peer_seen(Ok(None));
                tracing::warn!("cluster: {} refused version {}: {reason}", s.peer_name, next.version);
                let prefix = if conflict { CONFLICT.to_string() } else { "cluster: ".to_string() };
                Gate::Refused(format!("{prefix}{} refused the change, nothing applied: {reason}", s.peer_name))
            }
            Ok(other) => Gate::Refused(format!("cluster: unexpected answer from the peer: {other:?}")),
        }
    }

    /// Phase two, once this node's reload is done: the peer commits or drops what it holds.
    /// Returns a line for the caller on what happened beyond this node.
    pub async fn finish(&self, gate: Gate, applied: &Result<u64, String>) -> Option<String> {
        match gate {
            Gate::Pass | Gate::Refused(_) => None,
            Gate::Local { mut guard, mut next, note } => {
                if applied.is_ok() {
                    self.record(&mut next, note.clone().unwrap_or_else(|| "applied here".into()));
                    self.save(&next);
                    *guard = next;
                }
                note
            }
            Gate::Prepared { mut guard, mut next, peer_version, settings } => {
                let hash = next.hash.clone();
                if applied.is_err() {
                    let _ = wire::call(&settings, &Request::Abort { hash }).await;
                    return None;
                }
                let (line, outcome) = match wire::call(&settings, &Request::Commit { hash }).await {
                    Ok(Response::Done) => {
                        next.version = next.version.max(peer_version);
                        (None, format!("version {} applied on both nodes", next.version))
                    }
                    Ok(Response::Failed { reason }) => {
                        let l =
                            format!("cluster: applied here, but {} failed to apply it: {reason}", settings.peer_name);
                        (Some(l.clone()), l)
                    }
                    Ok(other) => {
                        let l = format!("cluster: applied here; unexpected answer from the peer: {other:?}");
                        (Some(l.clone()), l)
                    }
                    Err(e) => {
                        let l =
                            format!("cluster: applied here; the commit did not reach the peer ({e}): it catches up");
                        (Some(l.clone()), l)
                    }
                };
                if let Some(l) = &line {
                    tracing::warn!("{l}");
                } else {
                    tracing::info!("cluster: {outcome}");
                }
                self.record(&mut next, outcome);
                self.save(&next);
                *guard = next;
                line
            }
        }
    }

    fn peer_seen(&self, r: Result<Option<NodeStatus>, String>) {
        let mut p = self.peer.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(st) => {
                if p.reachable == Some(false) {
                    tracing::info!("cluster: the peer is reachable again");
                }
                p.reachable = Some(true);
                p.error = None;
                if st.is_some() {
                    p.status = st;
                }
            }
            Err(e) => {
                if p.error.as_deref() != Some(e.as_str()) {
                    tracing::warn!("cluster: {e}");
                }
                p.reachable = Some(false);
                p.error = Some(e);
            }
        }
    }

    /// Stops listening and looking at the peer (handover to the process `lbha upgrade` started).
    pub fn stop(&self) {
        self.stopped.send_replace(true);
        self.link.stop();
        for t in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
    }

    async fn serve(self: Arc<Self>, listener: Option<tokio::net::TcpListener>, bind: std::net::SocketAddr) {
        let listener = match listener {
            Some(l) => l,
            None => loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(l) = tokio::net::TcpListener::bind(bind).await {
                    tracing::info!("cluster: listening on {bind}");
                    break l;
                }
            },
        };
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("cluster: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let node = self.clone();
            crate::fate::spawn(async move {
                let Some(s) = node.settings() else { return };
                let r = tokio::time::timeout(s.timeout * 4, node.connection(tcp, &s)).await;
                match r {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(ch))) => node.hold(ch, &s, addr).await,
                    Ok(Err(e)) => tracing::warn!(peer = %addr, "cluster: rejected a sync connection from {addr}: {e}"),
                    Err(_) => tracing::warn!(peer = %addr, "cluster: sync connection from {addr} timed out"),
                }
            });
        }
    }

    /// One sync connection: TLS, the greeting, a request and its answer. A `Hold` request
    /// returns the channel, for [`Node::hold`].
    async fn connection(
        &self,
        tcp: tokio::net::TcpStream,
        s: &ClusterSettings,
    ) -> Result<Option<wire::Channel<wire::ServerStream>>, String> {
        let acceptor = tokio_rustls::TlsAcceptor::from(wire::server_config(s)?);
        let tls = tokio::time::timeout(s.timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS: {e}"))?;
        let mut ch = wire::Channel::server(tls, s.key.clone())?;
        ch.hello().await?;
        let req = tokio::time::timeout(s.timeout, ch.request())
            .await
            .map_err(|_| "no request in time".to_string())?
            .map_err(|e| match e.starts_with("connection closed") {
                // The client checks our greeting first: one with another key hangs up here.
                true => format!("{e} after the greeting (the peer's shared key differs?)"),
                false => e,
            })?;
        if *self.stopped.borrow() {
            // Handed over (`lbha upgrade`): unanswered, the peer asks the process that took over.
            return Err("this process stopped".into());
        }
        if matches!(req, Request::Hold) {
            ch.answer(&Response::Done).await?;
            return Ok(Some(ch));
        }
        let answer = self.answer(req, s).await;
        ch.answer(&answer).await.map(|()| None)
    }

    /// A connection the peer holds open for hand-offs (`crate::cluster::link`): answers its
    /// heartbeats and resignations, one by one as they come, until it closes or stays silent for
    /// [`link::HOLD_IDLE`]. Nothing else is taken on it. Closed, with the request unanswered (the
    /// peer's keeper sends a resignation again on a new connection), once this node stopped (the
    /// handover of `lbha upgrade`: the new process must hear it) or a reload changed what the
    /// connection was authenticated with (`accepted`: the key, either certificate).
    async fn hold(
        &self,
        mut ch: wire::Channel<wire::ServerStream>,
        accepted: &ClusterSettings,
        addr: std::net::SocketAddr,
    ) {
        let mut stopped = self.stopped.subscribe();
        loop {
            let req = tokio::select! {
                r = tokio::time::timeout(link::HOLD_IDLE, ch.request()) => match r {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) if e.starts_with("connection closed") => return,
                    Ok(Err(e)) => return tracing::warn!(peer = %addr, "cluster: connection held by {addr}: {e}"),
                    Err(_) => {
                        return tracing::info!(peer = %addr, "cluster: connection held by {addr} silent for {:?}: closed", link::HOLD_IDLE);
                    }
                },
                _ = stopped.wait_for(|s| *s) => {
                    return tracing::info!(peer = %addr, "cluster: connection held by {addr} closed: this process stopped");
                }
            };
            if *self.stopped.borrow() {
                return tracing::info!(peer = %addr, "cluster: connection held by {addr} closed: this process stopped");
            }
            let now = self.settings();
            if let Some(why) = link::held_invalid(accepted, now.as_ref()) {
                return tracing::info!(peer = %addr, "cluster: connection held by {addr} closed: {why}");
            }
            let s = now.as_ref().unwrap_or(accepted);
            let answer = match req {
                Request::Hold => Response::Done,
                r @ Request::Resigned { .. } => self.answer(r, s).await,
                _ => Response::Failed { reason: "only hand-offs are taken on a held connection".into() },
            };
            if let Err(e) = ch.answer(&answer).await {
                return tracing::warn!(peer = %addr, "cluster: connection held by {addr}: {e}");
            }
        }
    }

    async fn answer(&self, req: Request, s: &ClusterSettings) -> Response {
        match req {
            Request::Status => Response::Status(self.own_status(s).await),
            Request::Fetch => match self.text().await {
                Ok(text) => Response::Config { state: self.current(), text },
                Err(reason) => Response::Failed { reason },
            },
            Request::Prepare { offer, text } => self.prepare(offer, text, s).await,
            Request::Commit { hash } => self.commit(&hash).await,
            Request::Abort { hash } => {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                if held.as_ref().is_some_and(|h| h.prepared.state.hash == hash) {
                    *held = None;
                }
                Response::Done
            }
            Request::Runtime { offer, entries } => self.take_runtime(offer, entries, s).await,
            // Taken only on a connection held open (`Node::hold`), never here.
            Request::Hold => Response::Failed { reason: "hold is the first request of a connection".into() },
            Request::Resigned { instances } => {
                let told = match self.shared.upgrade() {
                    Some(shared) => shared.vrrp.lock().await.as_ref().map(|m| m.peer_resigned(&instances)),
                    None => None,
                };
                let names: Vec<&str> = instances.iter().map(|(n, _)| n.as_str()).collect();
                tracing::info!(
                    "cluster: peer {} resigned VRRP master(s) {}: taking over {}",
                    s.peer_name,
                    names.join(", "),
                    told.map_or("none (no VRRP)".into(), |t| if t.is_empty() { "none".into() } else { t.join(", ") })
                );
                Response::Done
            }
        }
    }

    async fn prepare(&self, offer: decide::Offer, text: String, s: &ClusterSettings) -> Response {
        // A change of this node is being offered right now: the two changes race, neither wins.
        // Other holders (a catch-up push, a commit) are short; our own offer waiting on the peer
        // is not, and waiting for it would deadlock both offers until the timeout.
        let wait = s.timeout / 3;
        let Ok(guard) = tokio::time::timeout(wait, self.state.clone().lock_owned()).await else {
            return Response::Refused {
                reason: format!("conflict: {} is applying a change of its own at this moment; retry", s.node),
                conflict: true,
            };
        };
        let ours = match self.text().await {
            Ok(t) => t,
            Err(reason) => return Response::Failed { reason },
        };
        let (cur, keys, path) = (guard.clone(), s.local_keys.clone(), self.config.clone());
        let r = tokio::task::spawn_blocking(move || {
            decide::prepare(&cur, &ours, &offer, &text, &keys, |t| {
                crate::config::parse(t, &path).map(|_| ()).map_err(|e| e.to_string())
            })
        })
        .await
        .unwrap_or_else(|e| Err(decide::Refusal { reason: e.to_string(), conflict: false }));
        match r {
            Ok(None) => Response::Prepared { already: true, state: guard.clone() },
            Ok(Some(p)) => {
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held { prepared: p, at: Instant::now() });
                Response::Prepared { already: false, state: guard.clone() }
            }
            Err(r) => {
                tracing::warn!("cluster: refused the peer's config: {}", r.reason);
                let mut st = guard.clone();
                self.record(&mut st, format!("refused the peer's config: {}", r.reason));
                self.save(&st);
                Response::Refused { reason: r.reason, conflict: r.conflict }
            }
        }
    }

    /// Writes the prepared config (atomically: the old file or the new one, both validated),
    /// then reloads; a reload that fails puts the old file and state back.
    async fn commit(&self, hash: &str) -> Response {
        let held = {
            let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
            match h.take() {
                Some(x) if x.prepared.state.hash == hash && x.at.elapsed() < PREPARED_FOR => x,
                other => {
                    *h = other;
                    return Response::Failed { reason: format!("nothing prepared for {}", short(hash)) };
                }
            }
        };
        let mut guard = match tokio::time::timeout(Duration::from_secs(5), self.state.clone().lock_owned()).await {
            Ok(g) => g,
            Err(_) => return Response::Failed { reason: "busy".into() },
        };
        let old_text = match self.text().await {
            Ok(t) => t,
            Err(reason) => return Response::Failed { reason },
        };
        let old_state = guard.clone();
        if let Err(e) = crate::fsutil::write_atomic(&self.config, held.prepared.text.as_bytes()) {
            return Response::Failed { reason: format!("cannot write {}: {e}", self.config.display()) };
        }
        let mut next = held.prepared.state.clone();
        let outcome = format!("took version {} from the peer", next.version);
        self.record(&mut next, outcome);
        self.save(&next);
        *guard = next.clone();
        drop(guard);
        match (self.reload)().await {
            Ok(_) => {
                tracing::info!("cluster: applied version {} ({}) from the peer", next.version, short(&next.hash));
                Response::Done
            }
            Err(e) => {
                let mut guard = self.state.clone().lock_owned().await;
                let _ = crate::fsutil::write_atomic(&self.config, old_text.as_bytes());
                let mut back = old_state;
                self.record(&mut back, format!("failed to apply the peer's version {}: {e}", next.version));
                self.save(&back);
                *guard = back;
                tracing::error!("cluster: the peer's version {} did not apply: {e}", next.version);
                Response::Failed { reason: e }
            }
        }
    }

    async fn roles(&self) -> Vec<(String, String)> {
        let Some(shared) = self.shared.upgrade() else { return Vec::new() };
        let g = shared.vrrp.lock().await;
        g.as_ref()
            .map(|m| m.status().into_iter().map(|i| (i.name, i.state.keepalived_name().to_string())).collect())
            .unwrap_or_default()
    }

    async fn own_status(&self, s: &ClusterSettings) -> NodeStatus {
        let sync = match s.sync {
            SyncMode::Auto => "auto",
            SyncMode::Manual => "manual",
        };
        NodeStatus {
            node: s.node.clone(),
            sync: sync.into(),
            state: self.current(),
            vrrp: self.roles().await,
            instances: self.instances().await,
            runtime: self.rt_current(),
        }
    }

    /// This node's VRRP instances as `show vrrp` shows them.
    async fn instances(&self) -> Vec<crate::control::vrrp::InstanceView> {
        let Some(shared) = self.shared.upgrade() else { return Vec::new() };
        let g = shared.vrrp.lock().await;
        let Some(m) = g.as_ref() else { return Vec::new() };
        let path = m.store_path().display().to_string();
        crate::control::vrrp::vrrp_view(&m.report(), &m.list(), &path, SystemTime::now()).instances
    }

    /// Looks at the peer every second; pushes what it missed (auto mode).
    async fn catch_up(self: Arc<Self>) {
        let mut tick = tokio::time::interval(CATCH_UP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_note = String::new();
        loop {
            tick.tick().await;
            if self.shared.strong_count() == 0 {
                return;
            }
            let Some(s) = self.settings() else { continue };
            // Not locked while asking: a prepare from the peer must not find the state busy.
            let peer = match wire::call(&s, &Request::Status).await {
                Ok(Response::Status(p)) => p,
                Ok(other) => {
                    self.peer_seen(Err(format!("unexpected answer: {other:?}")));
                    continue;
                }
                Err(e) => {
                    self.peer_seen(Err(e));
                    continue;
                }
            };
            self.peer_seen(Ok(Some(peer.clone())));
            let Ok(mut guard) = self.state.clone().try_lock_owned() else { continue };
            let rel = decide::relation(&guard, &peer.state);
            let note = match rel {
                decide::Relation::PeerBehind if s.sync == SyncMode::Auto => {
                    match self.push_locked(&mut guard, &s, false, peer.state.version).await {
                        Ok(m) => {
                            tracing::info!("cluster: caught up {}: {m}", s.peer_name);
                            String::new()
                        }
                        Err(e) => format!("cannot bring {} up to date: {e}", s.peer_name),
                    }
                }
                decide::Relation::Diverged => format!(
                    "the configs of {} and {} diverged (versions {} and {}): `lbha cluster diff`, then `lbha cluster push` from the node that should win",
                    s.node, s.peer_name, guard.version, peer.state.version
                ),
                _ => String::new(),
            };
            drop(guard);
            let note = match self.catch_up_runtime(&s, &peer.runtime).await {
                Some(n) if note.is_empty() => n,
                Some(n) => format!("{note}; {n}"),
                None => note,
            };
            if note != last_note && !note.is_empty() {
                tracing::warn!("cluster: {note}");
            }
            last_note = note;
        }
    }

    /// Offers this node's config to the peer and commits it there (two phases; this node's
    /// config does not change).
    async fn push_locked(
        &self,
        st: &mut SyncState,
        s: &ClusterSettings,
        force: bool,
        peer_version: u64,
    ) -> Result<String, String> {
        let text = self.text().await?;
        let hash = shared::shared_hash(&text, &s.local_keys)?;
        if hash != st.hash {
            return Err("the config file changed and was not reloaded: `lbha reload` first".into());
        }
        let mut next = if force { decide::pushed(st, peer_version) } else { st.clone() };
        let offer = decide::offer(&s.node, &next, force, &s.local_keys);
        let outcome = match wire::call(s, &Request::Prepare { offer, text }).await? {
            Response::Prepared { already: true, .. } => {
                Ok(format!("{} already has version {}", s.peer_name, next.version))
            }
            Response::Prepared { already: false, .. } => {
                match wire::call(s, &Request::Commit { hash: next.hash.clone() }).await? {
                    Response::Done => Ok(format!("pushed version {} to {}", next.version, s.peer_name)),
                    Response::Failed { reason } => Err(format!("{} failed to apply it: {reason}", s.peer_name)),
                    other => Err(format!("unexpected answer: {other:?}")),
                }
            }
            Response::Refused { reason, conflict } => {
                let prefix = if conflict { CONFLICT } else { "" };
                Err(format!("{prefix}{} refused: {reason}", s.peer_name))
            }
            other => Err(format!("unexpected answer: {other:?}")),
        };
        self.record(&mut next, outcome.clone().unwrap_or_else(|e| e));
        if outcome.is_ok() || !force {
            self.save(&next);
            *st = next;
        }
        outcome
    }

    /// `lbha cluster push [force]`.
    pub async fn push(&self, force: bool) -> Result<String, String> {
        let s = self.settings().ok_or("no [cluster] in the running config")?;
        let mut guard = tokio::time::timeout(s.timeout, self.state.clone().lock_owned())
            .await
            .map_err(|_| "a sync is in progress; retry".to_string())?;
        let peer = match wire::call(&s, &Request::Status).await? {
            Response::Status(p) => p,
            other => return Err(format!("unexpected answer: {other:?}")),
        };
        let config = self.push_locked(&mut guard, &s, force, peer.state.version).await;
        drop(guard);
        let runtime = self.push_runtime(&s, force, &peer.runtime).await;
        match (config, runtime) {
            (Ok(c), Ok(r)) => Ok(format!("{c}; {r}")),
            (Err(e), _) => Err(e),
            (Ok(c), Err(r)) => Err(format!("{c}; but {r}")),
        }
    }

    /// `lbha cluster diff`: what a push would change on the peer.
    pub async fn diff(&self) -> Result<String, String> {
        let s = self.settings().ok_or("no [cluster] in the running config")?;
        let (state, theirs) = match wire::call(&s, &Request::Fetch).await? {
            Response::Config { state, text } => (state, text),
            Response::Failed { reason } => return Err(reason),
            other => return Err(format!("unexpected answer: {other:?}")),
        };
        let ours = self.text().await?;
        let lines = shared::diff(&theirs, &ours, &s.local_keys)?;
        let me = self.current();
        let mut out = format!(
            "--- {} version {} ({})\n+++ {} version {} ({})\n",
            s.peer_name,
            state.version,
            short(&state.hash),
            s.node,
            me.version,
            short(&me.hash)
        );
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        if lines.is_empty() {
            out.push_str("(no difference in shared settings)\n");
        }
        Ok(out)
    }

    /// `lbha cluster status`: both nodes, asked now.
    pub async fn status(&self) -> (String, serde_json::Value) {
        let Some(s) = self.settings() else {
            return ("no [cluster] in the running config\n".into(), json!({ "error": "no [cluster]" }));
        };
        let me = self.own_status(&s).await;
        let peer = match wire::call(&s, &Request::Status).await {
            Ok(Response::Status(p)) => Ok(p),
            Ok(other) => Err(format!("unexpected answer: {other:?}")),
            Err(e) => Err(e),
        };
        self.peer_seen(peer.clone().map(Some));
        let relation = peer.as_ref().ok().map(|p| decide::relation(&me.state, &p.state).as_str());
        let line = |n: &NodeStatus, who: &str| {
            let roles: Vec<String> = n.vrrp.iter().map(|(i, r)| format!("{i} {r}")).collect();
            let last = n.state.last_sync.as_ref().map_or("never".to_string(), |l| {
                format!(
                    "{} {}",
                    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(l.at)),
                    l.outcome
                )
            });
            format!(
                "{} ({who}): version {}, hash {}, sync {}, vrrp: {}\n  last sync: {last}\n",
                n.node,
                n.state.version,
                short(&n.state.hash),
                n.sync,
                if roles.is_empty() { "-".into() } else { roles.join(", ") }
            )
        };
        let mut text = line(&me, "this node");
        match &peer {
            Ok(p) => text.push_str(&line(p, &format!("peer at {}, reachable", s.peer_addr))),
            Err(e) => text.push_str(&format!("{} (peer at {}): unreachable: {e}\n", s.peer_name, s.peer_addr)),
        }
        text.push_str(&format!("relation: {}\n", relation.unwrap_or("unknown (peer unreachable)")));
        let rt_relation = peer.as_ref().ok().map(|p| decide::relation(&me.runtime, &p.runtime).as_str());
        text.push_str(&format!(
            "runtime settings: this node version {} ({}), relation: {}\n",
            me.runtime.version,
            short(&me.runtime.hash),
            rt_relation.unwrap_or("unknown (peer unreachable)")
        ));
        let node_json = |n: &NodeStatus, this: bool, reachable: bool, error: Option<&str>| {
            json!({
                "node": n.node,
                "self": this,
                "reachable": reachable,
                "error": error,
                "sync": n.sync,
                "version": n.state.version,
                "hash": n.state.hash,
                "vrrp": n.vrrp.iter().map(|(i, r)| json!({ "instance": i, "role": r })).collect::<Vec<_>>(),
                "instances": n.instances,
                "last_sync": n.state.last_sync.as_ref().map(|l| json!({ "at": l.at, "outcome": l.outcome })),
                "runtime": { "version": n.runtime.version, "hash": n.runtime.hash },
            })
        };
        let peer_json = match &peer {
            Ok(p) => node_json(p, false, true, None),
            Err(e) => json!({ "node": s.peer_name, "self": false, "reachable": false, "error": e }),
        };
        (
            text,
            json!({
                "nodes": [node_json(&me, true, true, None), peer_json],
                "relation": relation,
                "runtime_relation": rt_relation,
            }),
        )
    }
}

/// Lets a resigning master here tell the peer at once (`crate::fate::hand_off`): a write on the
/// connection held open to it (`crate::cluster::link`), or a new connection when none is.
fn install_hand_off(node: &Arc<Node>) {
    let node = Arc::downgrade(node);
    crate::fate::set_hand_off(Some(Arc::new(move |instances: Vec<(String, std::net::IpAddr)>| {
        let limit = crate::fate::HAND_OFF_LIMIT;
        let Some(n) = node.upgrade() else { return Box::new(|| ()) as crate::fate::HandOffWait };
        let ticket = n.link.hand_off(instances, limit);
        Box::new(move || {
            let _ = ticket.wait(limit);
        })
    })));
}

/// Runtime changes that go to the peer too: VIPs and server state (each has a ledger slot).
pub fn passed_on(cmd: &crate::control::Command) -> bool {
    crate::cluster::runtime::slot(cmd).is_some()
}

/// `cluster status|diff|push` on the control socket.
pub async fn execute(shared: &Shared, c: crate::control::cluster::ClusterCmd) -> crate::control::reply::Reply {
    use crate::control::cluster::ClusterCmd;
    use crate::control::reply::Reply;
    let Some(node) = shared.cluster.get() else {
        return Reply::error("No [cluster] section: config sync is not configured.");
    };
    match c {
        ClusterCmd::Status => {
            let (text, j) = node.status().await;
            Reply::ok(text, j)
        }
        ClusterCmd::Diff => match node.diff().await {
            Ok(text) => Reply::ok(text.clone(), json!({ "diff": text.lines().collect::<Vec<_>>() })),
            Err(e) => Reply::error(e),
        },
        ClusterCmd::Push { force } => match node.push(force).await {
            Ok(m) => Reply::ok(format!("{m}\n"), json!({ "outcome": m })),
            Err(e) => Reply::error(e),
        },
    }
}
