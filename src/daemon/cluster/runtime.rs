//! Runtime changes in the running daemon: a change made here is offered to the peer (with the
//! whole ledger, so whatever it missed comes along) before it runs here; a conflicting or older
//! ledger is refused with the reason and nothing runs; an unreachable peer takes it later from
//! the catch-up loop. The decisions are `crate::cluster::runtime`'s.

use super::{Node, short};
use crate::cluster::CONFLICT;
use crate::cluster::decide::{self, Offer, SyncState};
use crate::cluster::runtime::{self as ledger, Entries, Ledger, Take};
use crate::cluster::wire::{self, Request, Response};
use crate::config::cluster::{ClusterSettings, SyncMode};
use crate::control::Command;
use crate::control::reply::Reply;
use crate::control::servers_rt::RtCommand;
use crate::daemon::control::{Shared, execute};
use std::sync::Arc;

/// Lets the Data Plane API's runtime endpoints take the same path as the control socket.
pub(super) fn install_hook(shared: &Arc<Shared>, node: &Arc<Node>) {
    let (weak, node) = (Arc::downgrade(shared), Arc::downgrade(node));
    let hook: crate::cluster::RuntimeHook = Arc::new(move |line: String| {
        let (weak, node) = (weak.clone(), node.clone());
        Box::pin(async move {
            let (Some(shared), Some(node)) = (weak.upgrade(), node.upgrade()) else {
                return Err((false, "the daemon is stopping".to_string()));
            };
            let mut words = crate::control::parse::split_line(&line);
            let (Some(w), true) = (words.pop(), words.is_empty()) else {
                return Err((false, format!("not one command: {line}")));
            };
            let cmd = crate::control::parse::parse_line(&line).remove(0).command.map_err(|e| (false, e.to_string()))?;
            match node.run_runtime(&shared, cmd, &w).await {
                Reply::Ok { .. } => Ok(()),
                Reply::Err { text, .. } => Err((text.starts_with(CONFLICT), text)),
            }
        })
    });
    let _ = shared.proxy.cluster_runtime.set(hook);
}

fn with_note(reply: Reply, note: &str) -> Reply {
    match reply {
        Reply::Ok { mut text, mut json } => {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(note);
            text.push('\n');
            if let Some(o) = json.as_object_mut() {
                o.insert("cluster".into(), note.into());
            }
            Reply::Ok { text, json }
        }
        err => err,
    }
}

fn has_server(shared: &Shared, r: &crate::control::ServerRef) -> bool {
    let a = shared.proxy.active.load();
    a.snap.backend(&r.backend).is_some_and(|(_, b)| b.servers.iter().any(|s| s.name == r.server))
}

impl Node {
    pub(super) fn rt_current(&self) -> SyncState {
        self.rt_current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn rt_save(&self, guard: &mut Ledger, next: Ledger) {
        *self.rt_current.lock().unwrap_or_else(|p| p.into_inner()) = next.state.clone();
        *guard = next;
    }

    /// A runtime change (`words`: the command as typed) made on this node: the peer runs it
    /// first, with anything it missed; a conflict or an older ledger there refuses it here too.
    pub async fn run_runtime(&self, shared: &Shared, cmd: Command, words: &[String]) -> Reply {
        let (Some(s), Some(slot)) = (self.settings(), ledger::slot(&cmd)) else { return execute(shared, cmd).await };
        let Ok(mut guard) = tokio::time::timeout(s.timeout, self.rt.clone().lock_owned()).await else {
            return Reply::error("cluster: a runtime sync is in progress; retry");
        };
        let line = ledger::line(words);
        let next = ledger::record(&guard, &slot, &line);
        if s.sync == SyncMode::Manual {
            let reply = execute(shared, cmd).await;
            if matches!(reply, Reply::Ok { .. }) {
                self.rt_save(&mut guard, next);
            }
            return reply;
        }
        let offer = decide::offer(&s.node, &next.state, false, &[]);
        let req = Request::Runtime { offer, entries: next.entries.clone() };
        let note = match wire::call(&s, &req).await {
            Ok(Response::Done) => {
                self.peer_seen(Ok(None));
                None
            }
            Ok(Response::Refused { reason, conflict }) => {
                self.peer_seen(Ok(None));
                let prefix = if conflict { CONFLICT } else { "cluster: " };
                tracing::warn!("cluster: {} refused `{line}`: {reason}", s.peer_name);
                return Reply::error(format!(
                    "{prefix}{} refused the runtime change, nothing applied: {reason}",
                    s.peer_name
                ));
            }
            Ok(Response::Failed { reason }) => {
                self.peer_seen(Ok(None));
                Some(format!("cluster: applied here, but {} could not run it: {reason}", s.peer_name))
            }
            Ok(other) => Some(format!("cluster: applied here; unexpected answer from the peer: {other:?}")),
            Err(e) => {
                self.peer_seen(Err(e.clone()));
                Some(format!("cluster: {e}: applied on this node only; the peer catches up when it returns"))
            }
        };
        let reply = execute(shared, cmd).await;
        if matches!(reply, Reply::Ok { .. }) {
            self.rt_save(&mut guard, next);
            tracing::info!("cluster: runtime version {} ({}): `{line}`", guard.state.version, short(&guard.state.hash));
        } else if note.is_none() {
            tracing::warn!(
                "cluster: {} ran `{line}` but this node could not: it takes it back from the peer",
                s.peer_name
            );
        }
        match note {
            Some(n) => {
                tracing::warn!("{n}");
                with_note(reply, &n)
            }
            None => reply,
        }
    }

    /// The peer's ledger: run what this node lacks, then take it; refuse an older or a
    /// conflicting one.
    pub(super) async fn take_runtime(&self, offer: Offer, entries: Entries, s: &ClusterSettings) -> Response {
        // Our own offer may be waiting on the peer right now: the two race, neither wins.
        let Ok(mut guard) = tokio::time::timeout(s.timeout / 3, self.rt.clone().lock_owned()).await else {
            return Response::Refused {
                reason: format!("conflict: {} is making a runtime change of its own at this moment; retry", s.node),
                conflict: true,
            };
        };
        let lines = match ledger::take(&guard, &offer, &entries) {
            Take::AlreadyHave => return Response::Done,
            Take::Refuse(reason) => {
                tracing::warn!("cluster: refused the peer's runtime settings: {reason}");
                return Response::Refused { reason, conflict: true };
            }
            Take::Run(lines) => lines,
        };
        let Some(shared) = self.shared.upgrade() else { return Response::Failed { reason: "stopping".into() } };
        let mut errors = Vec::new();
        for l in &lines {
            for p in crate::control::parse::parse_line(l) {
                let r = match p.command {
                    // A server removed on the peer that this node never had (it restarted since).
                    Ok(Command::Runtime(RtCommand::DelServer(r))) if !has_server(&shared, &r) => continue,
                    Ok(cmd) if ledger::slot(&cmd).is_some() => execute(&shared, cmd).await,
                    Ok(_) => Reply::error("not a runtime change the peer may make"),
                    Err(e) => Reply::error(e.to_string()),
                };
                if let Reply::Err { text, .. } = r {
                    errors.push(format!("`{l}`: {}", text.trim_end()));
                }
            }
        }
        if !errors.is_empty() {
            return Response::Failed { reason: errors.join("; ") };
        }
        let kept = if offer.force { ledger::kept(&guard.entries, &entries) } else { Vec::new() };
        if !kept.is_empty() {
            tracing::warn!("cluster: a forced push left these runtime settings of this node as they were: {kept:?}");
        }
        let next = ledger::taken(&guard, &offer, entries);
        tracing::info!(
            "cluster: took runtime version {} from {}: {}",
            next.state.version,
            offer.from,
            lines.join("; ")
        );
        self.rt_save(&mut guard, next);
        Response::Done
    }

    /// Offers this node's ledger (forced: whatever the peer has); the outcome in words.
    pub(super) async fn push_runtime(
        &self,
        s: &ClusterSettings,
        force: bool,
        peer: &SyncState,
    ) -> Result<String, String> {
        let mut guard = tokio::time::timeout(s.timeout, self.rt.clone().lock_owned())
            .await
            .map_err(|_| "a runtime sync is in progress; retry".to_string())?;
        if !force && guard.state.hash == peer.hash {
            return Ok(format!("{} has the same runtime settings", s.peer_name));
        }
        let state = if force { decide::pushed(&guard.state, peer.version) } else { guard.state.clone() };
        let offer = decide::offer(&s.node, &state, force, &[]);
        match wire::call(s, &Request::Runtime { offer, entries: guard.entries.clone() }).await? {
            Response::Done => {
                let next = Ledger { state, entries: guard.entries.clone() };
                let v = next.state.version;
                self.rt_save(&mut guard, next);
                Ok(format!("runtime settings version {v} on {}", s.peer_name))
            }
            Response::Refused { reason, conflict } => {
                let prefix = if conflict { CONFLICT } else { "" };
                Err(format!("{prefix}{} refused the runtime settings: {reason}", s.peer_name))
            }
            Response::Failed { reason } => Err(format!("{} could not run the runtime settings: {reason}", s.peer_name)),
            other => Err(format!("unexpected answer: {other:?}")),
        }
    }

    /// From the catch-up loop: brings a peer that missed runtime changes up to date (auto
    /// mode); a note when it cannot or the two diverged.
    pub(super) async fn catch_up_runtime(&self, s: &ClusterSettings, peer: &SyncState) -> Option<String> {
        let ours = self.rt_current();
        match decide::relation(&ours, peer) {
            decide::Relation::PeerBehind if s.sync == SyncMode::Auto => match self.push_runtime(s, false, peer).await {
                Ok(m) => {
                    tracing::info!("cluster: caught up {}: {m}", s.peer_name);
                    None
                }
                Err(e) => Some(format!("cannot bring {}'s runtime settings up to date: {e}", s.peer_name)),
            },
            decide::Relation::Diverged => Some(format!(
                "the runtime settings of {} and {} diverged (versions {} and {}): `lbha cluster push --force` from the node that should win",
                s.node, s.peer_name, ours.version, peer.version
            )),
            _ => None,
        }
    }
}
