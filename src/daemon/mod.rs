//! Assembly: load the config, open listeners, start health checks, then serve until a signal.
//! SIGHUP reloads (a bad config keeps the running one); SIGTERM/SIGINT stop accepting, let
//! exchanges in flight finish within `hard_stop_after`, then exit.

pub mod checks;
pub mod control;
pub mod state_file;
mod vip;

use crate::config::{self, Snapshot};
use crate::proxy::Proxy;
use crate::proxy::listener::Listeners;
use sd_notify::NotifyState;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

pub struct RunOptions {
    pub config: PathBuf,
    /// Control socket path, overriding `control_socket.path` of the config.
    pub socket: Option<PathBuf>,
    /// `config` is an haproxy.cfg, converted in memory on every load (`--haproxy-config`).
    pub haproxy: bool,
}

/// Loads and validates the configuration, from lbha.toml or from an haproxy.cfg.
fn load(path: &Path, haproxy: bool) -> Result<Snapshot, String> {
    let snap = if haproxy {
        let (snap, reports) = crate::convert::io::load_haproxy(path)?;
        for r in &reports {
            tracing::warn!("{r}");
        }
        snap
    } else {
        config::load(path).map_err(|e| e.to_string())?
    };
    for w in &snap.warnings {
        tracing::warn!("{w}");
    }
    Ok(snap)
}

/// Runs the daemon in the foreground. Returns the process exit code.
pub fn run(opts: RunOptions) -> ExitCode {
    let snap = match load(&opts.config, opts.haproxy) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let threads =
        snap.global.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(opts.config, opts.haproxy, snap, opts.socket, threads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("lbha: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(
    path: PathBuf,
    haproxy: bool,
    snap: Snapshot,
    socket: Option<PathBuf>,
    threads: usize,
) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let mut ctl_settings = snap.global.control_socket.clone();
    if let Some(p) = socket {
        ctl_settings.path = p;
    }
    // First, so a second daemon on the same node stops before touching anything.
    let ctl_sock = control::ControlSocket::open(&ctl_settings).map_err(|e| e.to_string())?;
    let state_path = snap.global.server_state_file.clone();
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;
    let api_settings = snap.api.clone();
    let proxy = Proxy::new(snap);
    if let Some(p) = &state_path {
        state_file::load(p, &proxy);
    }
    let mut listeners = Listeners::default();
    let fresh = listeners.bind_new(&proxy.active.load().snap).map_err(|e| e.to_string())?;
    listeners.activate(fresh, &proxy);
    let mut checks = checks::Checks::default();
    checks.reconcile(&proxy);
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
    let shared = control::Shared::new(proxy.clone(), path.clone(), ctl_settings.path, threads, reload_tx);
    let ctl = control::spawn(ctl_sock, shared.clone()).map_err(|e| format!("cannot serve the control socket: {e}"))?;
    *shared.vrrp.lock().await = Some(start_vrrp(&proxy)?);
    let (api_reload, mut api_reloads) = crate::api::reload_channel();
    let api = match &api_settings {
        Some(a) => Some(crate::api::ApiServer::start(a, &path, proxy.clone(), api_reload)?),
        None => None,
    };
    tracing::info!(config = %path.display(), "lbha {} started", env!("CARGO_PKG_VERSION"));
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(&proxy, None))]);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            // keepalived dumps its state on SIGUSR1; lbha logs one line per VRRP instance.
            _ = usr1.recv() => {
                if let Some(vrrp) = shared.vrrp.lock().await.as_ref() {
                    for s in vrrp.status() {
                        tracing::info!("vrrp status: {s}");
                    }
                }
            }
            _ = hup.recv() => {
                reload_for("SIGHUP", Requester::Signal, &path, haproxy, &proxy, &mut listeners, &mut checks, &shared).await;
            }
            Some(reply) = api_reloads.recv() => {
                reload_for("Data Plane API", Requester::Api(reply), &path, haproxy, &proxy, &mut listeners, &mut checks, &shared).await;
            }
            Some(req) = reload_rx.recv() => {
                reload_for("control socket", Requester::Control(req), &path, haproxy, &proxy, &mut listeners, &mut checks, &shared).await;
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    // VRRP first: a master's priority-0 advert lets the backup take the VIPs while we drain.
    if let Some(mut vrrp) = shared.vrrp.lock().await.take() {
        vrrp.shutdown().await;
    }
    ctl.stop().await;
    shared.save_state().await;
    let hard_stop = proxy.active.load().snap.global.hard_stop_after;
    tracing::info!("stopping: no new connections, finishing those in flight (at most {hard_stop:?})");
    if let Some(api) = api {
        api.stop().await;
    }
    listeners.close_all().await;
    checks.stop_all();
    proxy.drain.send_replace(true);
    proxy.tracker.close();
    if tokio::time::timeout(hard_stop, proxy.tracker.wait()).await.is_err() {
        tracing::warn!("hard_stop_after reached: closing {} remaining connections", proxy.tracker.len());
    }
    tracing::info!("stopped");
    Ok(())
}

/// Tells systemd (Type=notify) where the daemon stands; a no-op outside systemd.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// The one-line STATUS= shown by `systemctl status`.
fn status_line(proxy: &Proxy, failed_reload: Option<&str>) -> String {
    let a = proxy.active.load();
    let mut s = format!(
        "generation {}, {} frontends, {} backends",
        a.generation,
        a.snap.frontends.len(),
        a.snap.backends.len()
    );
    if let Some(e) = failed_reload {
        s.push_str(&format!("; last reload failed: {e}"));
    }
    s
}

/// One reload, whatever asked for it: run it, log a failure, record the outcome for `show info`
/// and `lbha status`, and answer the control client that asked, if one did.
#[allow(clippy::too_many_arguments)]
async fn reload_for(
    trigger: &'static str,
    requester: Requester,
    path: &Path,
    haproxy: bool,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut checks::Checks,
    shared: &control::Shared,
) {
    let mut states = vec![NotifyState::Reloading];
    states.extend(NotifyState::monotonic_usec_now().ok());
    notify(&states);
    let terminate = matches!(&requester, Requester::Control(r) if r.terminate);
    let r = reload(path, haproxy, proxy, listeners, checks, terminate);
    match &r {
        Ok(_) => {
            let snap = proxy.active.load().snap.clone();
            if let Some(vrrp) = shared.vrrp.lock().await.as_mut()
                && let Err(e) = vrrp.reload(&snap).await
            {
                tracing::error!("vrrp reload: {e}");
            }
        }
        Err(e) => tracing::error!("reload failed, still serving the previous configuration:\n{e}"),
    }
    let failed = r.as_ref().err().map(|e| e.lines().next().unwrap_or("").to_string());
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(proxy, failed.as_deref()))]);
    shared.record_reload(trigger, &r).await;
    let answered = match requester {
        Requester::Signal => Ok(()),
        Requester::Control(req) => req.reply.send(r).map_err(|_| ()),
        Requester::Api(reply) => reply.send(r).map_err(|_| ()),
    };
    if answered.is_err() {
        tracing::debug!("the {trigger} client that asked for the reload has gone");
    }
}

/// Who asked for a reload, and where its answer goes.
enum Requester {
    Signal,
    Control(control::ReloadRequest),
    Api(crate::api::ReloadRequest),
}

/// Starts VRRP with `track_backend` reading the proxy's live server health.
fn start_vrrp(proxy: &Arc<Proxy>) -> Result<crate::vrrp::Manager, String> {
    let p = proxy.clone();
    let live: crate::vrrp::LiveFn = Arc::new(move |backend: &str| {
        use crate::routing::Live;
        p.active.load().nbsrv(backend)
    });
    crate::vrrp::Manager::start(&proxy.active.load().snap, live).map_err(|e| e.to_string())
}

/// Validates the file, binds any new addresses, then swaps the snapshot. Any failure before the
/// swap leaves the running configuration untouched.
pub fn reload(
    path: &Path,
    haproxy: bool,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut checks::Checks,
    terminate: bool,
) -> Result<u64, String> {
    let snap = load(path, haproxy)?;
    let fresh = listeners.bind_new(&snap).map_err(|e| e.to_string())?;
    let active = proxy.install(snap, terminate);
    listeners.activate(fresh, proxy);
    checks.reconcile(proxy);
    tracing::info!(generation = active.generation, "configuration reloaded");
    Ok(active.generation)
}
