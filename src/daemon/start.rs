//! Starting the control socket, VRRP and the API once the listeners run: fresh, or taken over from
//! the previous process on a binary upgrade (its sockets, VRRP roles and server state).

use super::control::{self, ControlSocket, ReloadRequest, Shared};
use super::upgrade::UpgradeMsg;
use super::upgrade::new::{Incoming, Takeover};
use super::{checks::Checks, live_fn, state_file};
use crate::api::{ApiServer, ReloadFn};
use crate::config::snapshot::ApiSettings;
use crate::proxy::Proxy;
use crate::proxy::listener::Listeners;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the serve loop lends the start.
pub struct Parts<'a> {
    pub path: &'a Path,
    pub proxy: &'a Arc<Proxy>,
    pub listeners: &'a mut Listeners,
    pub checks: &'a mut Checks,
    pub api_settings: Option<&'a ApiSettings>,
    pub api_reload: &'a ReloadFn,
    pub threads: usize,
    pub reload_tx: mpsc::Sender<ReloadRequest>,
    pub upgrade_tx: mpsc::Sender<UpgradeMsg>,
}

pub struct Started {
    pub shared: Arc<Shared>,
    pub ctl: control::Running,
    pub api: Option<ApiServer>,
}

impl Parts<'_> {
    fn shared(&self, serving: PathBuf) -> Arc<Shared> {
        Shared::new(
            self.proxy.clone(),
            self.path.to_path_buf(),
            serving,
            self.threads,
            self.reload_tx.clone(),
            self.upgrade_tx.clone(),
        )
    }
}

/// A normal start on the control socket just opened.
pub async fn fresh(p: &mut Parts<'_>, sock: Option<ControlSocket>, serving: PathBuf) -> Result<Started, String> {
    let sock = sock.ok_or("no control socket was opened")?;
    let shared = p.shared(serving);
    let ctl = control::spawn(sock, shared.clone()).map_err(|e| format!("cannot serve the control socket: {e}"))?;
    let snap = p.proxy.active.load().snap.clone();
    let vrrp = crate::vrrp::Manager::start(&snap, live_fn(p.proxy)).map_err(|e| e.to_string())?;
    *shared.vrrp.lock().await = Some(vrrp);
    let api = match p.api_settings {
        Some(a) => Some(ApiServer::start(a, p.path, p.proxy.clone(), p.api_reload.clone())?),
        None => None,
    };
    Ok(Started { shared, ctl, api })
}

/// The new process of a binary upgrade, already accepting on the inherited sockets: tells the old
/// daemon, takes its control socket, API and VRRP roles, and confirms. On any failure it hands
/// back what it took, drains the few connections it accepted and fails; the old one serves on.
pub async fn taken_over(p: &mut Parts<'_>, inc: Incoming) -> Result<Started, String> {
    let old = inc.old_pid;
    let next = crate::vrrp::successors(&p.proxy.active.load().snap);
    let (mut inc, t) = blocking(inc, move |i| i.ready(next)).await?;
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            retreat(p).await;
            return Err(format!("not taking over, pid {old} serves on: {e}"));
        }
    };
    state_file::apply(&t.servers_state, &format!("pid {old}"), p.proxy, false);
    if let Some(fd) = &t.tables {
        take_tables(fd, old, p.proxy);
    }
    match services(p, t).await {
        Ok(started) => {
            let (_, done) = blocking(inc, |i| i.done()).await?;
            match done {
                Ok(()) => {
                    tracing::info!("took over from pid {old}: it drains and exits");
                    let text = format!("lbha {} took over from pid {old}", env!("CARGO_PKG_VERSION"));
                    crate::console::events::record(crate::console::events::Kind::Upgrade, "upgrade", text, true);
                }
                Err(e) => tracing::error!("cannot tell pid {old} the takeover is complete: {e}"),
            }
            Ok(started)
        }
        Err(e) => {
            inc.abort(&e);
            retreat(p).await;
            Err(format!("not taking over, pid {old} serves on: {e}"))
        }
    }
}

async fn services(p: &mut Parts<'_>, t: Takeover) -> Result<Started, String> {
    let shared = p.shared(t.control_path.clone());
    let sock = ControlSocket::adopt(t.control, &t.control_path).map_err(|e| e.to_string())?;
    let ctl = control::spawn(sock, shared.clone()).map_err(|e| format!("cannot serve the control socket: {e}"))?;
    let api = match (p.api_settings, t.api) {
        (Some(s), Some((addr, fd))) if addr == s.bind => {
            ApiServer::start_on(s, p.path, p.proxy.clone(), p.api_reload.clone(), fd.into()).map(Some)
        }
        // A new API address: bind it; the old process closes its own socket when it exits.
        (Some(s), _) => ApiServer::start(s, p.path, p.proxy.clone(), p.api_reload.clone()).map(Some),
        (None, _) => Ok(None),
    };
    let api = match api {
        Ok(a) => a,
        Err(e) => {
            ctl.stop_handed_over().await;
            return Err(e);
        }
    };
    let snap = p.proxy.active.load().snap.clone();
    // Last, as nothing after it can fail: a master keeps its VIPs and advertises at once.
    match crate::vrrp::Manager::start_as(&snap, live_fn(p.proxy), &t.vrrp).await {
        Ok(m) => *shared.vrrp.lock().await = Some(m),
        Err(e) => {
            if let Some(a) = api {
                drop(a.stop_keep_socket().await);
            }
            ctl.stop_handed_over().await;
            return Err(e.to_string());
        }
    }
    Ok(Started { shared, ctl, api })
}

/// Stops accepting and finishes the connections accepted meanwhile (the old daemon takes the rest).
async fn retreat(p: &mut Parts<'_>) {
    super::drain(p.proxy, p.listeners, p.checks).await;
}

/// Runs a blocking step of the handover off the async threads.
async fn blocking<T: Send + 'static>(
    mut inc: Incoming,
    f: impl FnOnce(&mut Incoming) -> T + Send + 'static,
) -> Result<(Incoming, T), String> {
    tokio::task::spawn_blocking(move || {
        let r = f(&mut inc);
        (inc, r)
    })
    .await
    .map_err(|e| format!("handover step failed: {e}"))
}

/// Fills the stick tables from the old process's dump; entries this process made meanwhile take
/// the old process's data (it saw the traffic that made them).
fn take_tables(fd: &std::os::fd::OwnedFd, old: u32, proxy: &crate::proxy::Proxy) {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = fd.try_clone().map(std::fs::File::from).and_then(|mut f| f.read_to_end(&mut bytes));
    let a = proxy.active.load();
    let taken = read.map_err(|e| e.to_string()).and_then(|_| {
        crate::stktable::handover::restore(&bytes, &a.rt.tables, &a.snap.stick_tables, a.rt.tables.now_ms())
            .map_err(|e| e.to_string())
    });
    match taken {
        Ok(n) => tracing::info!("took {n} stick table entries from pid {old}"),
        Err(e) => tracing::warn!("stick tables from pid {old} not (fully) taken: {e}"),
    }
}
