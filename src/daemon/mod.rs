//! Assembly: load the config, open listeners, start health checks, then serve until a signal.
//! SIGHUP reloads (a bad config keeps the running one); SIGTERM/SIGINT stop accepting, let
//! exchanges in flight finish within `hard_stop_after`, then exit. `upgrade` hands everything to
//! a new executable (see [`upgrade`]) and drains the same way.

pub mod agent;
pub mod checks;
pub mod cluster;
pub mod control;
mod debug_dev;
pub mod dynamic;
mod maps;
pub mod privs;
mod sess;
mod sslcert;
mod sslocsp;
mod start;
pub mod state_file;
mod tables;
pub mod upgrade;
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
    pub source: Source,
    /// Control socket path, overriding `control_socket.path` of the config.
    pub socket: Option<PathBuf>,
    /// Binary upgrade: take the listening sockets, control socket, API, VRRP roles and server
    /// state over from the daemon answering on this control socket.
    pub upgrade_from: Option<PathBuf>,
}

/// Where the configuration comes from, as the command line said: every reload and the process
/// an upgrade starts read it the same way.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// `path` is an haproxy.cfg, converted in memory on every load (`--haproxy-config`).
    pub haproxy: bool,
    /// `--allow-weaker`: run an haproxy.cfg whose access rules did not all convert.
    pub allow_weaker: bool,
}

impl Source {
    /// The `run` arguments that read this source again (for the process an upgrade starts).
    pub fn run_args(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["run".into()];
        v.push(if self.haproxy { "--haproxy-config" } else { "-c" }.into());
        v.push(self.path.clone().into());
        if self.allow_weaker {
            v.push("--allow-weaker".into());
        }
        v
    }
}

/// Loads and validates the configuration, from lbha.toml or from an haproxy.cfg.
#[allow(dead_code)]
fn load(src: &Source) -> Result<Snapshot, String> {
    let path = src.path.as_path();
    let snap = if src.haproxy {
        let (snap, reports) = crate::convert::io::load_haproxy(path, src.allow_weaker)?;
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
    // First, so that any failure below (a bad config, say) reaches the running daemon, which
    // reports it to the operator and keeps serving.
    let mut incoming = match &opts.upgrade_from {
        None => None,
        Some(p) => match upgrade::new::Incoming::connect(p) {
            Ok(i) => {
                tracing::info!("taking over from lbha {} (pid {})", i.old_version, i.old_pid);
                Some(i)
            }
            Err(e) => {
                crate::log::say(&format!("lbha: cannot take over from {}: {e}", p.display()));
                return ExitCode::from(1);
            }
        },
    };
    let give_up = |incoming: &mut Option<upgrade::new::Incoming>, why: &str| {
        crate::log::say(why);
        if let Some(i) = incoming.as_mut() {
            i.abort(why);
        }
        ExitCode::from(1)
    };
    let (snap, runtime) = match dynamic::load_initial(&opts.source) {
        Ok((s, st)) => {
            for w in &s.warnings {
                tracing::warn!("{w}");
            }
            (s, st)
        }
        Err(e) => return give_up(&mut incoming, &e),
    };
    raise_fd_limit();
    check_fd_limit(&snap);
    let mut ctl_settings = snap.global.control_socket.clone();
    if let Some(p) = &opts.socket {
        ctl_settings.path = p.clone();
    }
    // Before giving up root: the socket's directory is usually root's (/run/lbha). First, so a
    // second daemon on the same node stops before touching anything. A new process taking over
    // gets the running one's socket instead.
    let ctl_sock = match incoming {
        Some(_) => None,
        None => match control::ControlSocket::open(&ctl_settings) {
            Ok(c) => Some(c),
            Err(e) => return give_up(&mut incoming, &format!("lbha: {e}")),
        },
    };
    // Also before giving up root: the temporary files may be in root's directories.
    remove_crash_leftovers(&opts.source.path, &snap.global);
    let ctl_path = socket_to_hand_over(
        ctl_sock.is_some(),
        &ctl_settings.path,
        opts.upgrade_from.as_deref(),
        nix::unistd::geteuid().is_root(),
    );
    if let Err(e) = run_as(&snap, ctl_path) {
        return give_up(&mut incoming, &format!("lbha: {e}"));
    }
    let threads = crate::proxy::workers::configured(&snap.global);
    // One current-thread runtime per proxy thread (see `proxy::workers`): it runs the tasks woken
    // by a batch of events in order, so the requests of a batch reach the servers together
    // instead of one wakeup each. This thread's is thread 0; `nbthread > 1` starts the others.
    let rt = match proxy_runtime() {
        Ok(rt) => rt,
        Err(e) => return give_up(&mut incoming, &format!("cannot start the runtime: {e}")),
    };
    let (workers, mut handles) = match crate::proxy::workers::Threads::start(threads, proxy_runtime) {
        Ok(w) => w,
        Err(e) => return give_up(&mut incoming, &format!("cannot start the proxy threads: {e}")),
    };
    handles.insert(0, rt.handle().clone());
    // Fate sharing (`track_proxy`): a stalled proxy thread or a panic gives the VIPs away.
    crate::fate::set_stall_threshold(snap.global.proxy_stall_threshold);
    crate::fate::spawn_watchdog(handles.clone());
    crate::fate::install_panic_hook();
    let spread = (threads > 1).then(|| crate::proxy::workers::Spread::new(handles));
    let served =
        rt.block_on(serve(opts.source, (snap, runtime), (ctl_sock, ctl_settings), (threads, spread), incoming));
    // From here thread 0's runtime no longer runs: not a stall for the watchdog, however long the
    // workers take to stop or the runtime to drop what still runs on it.
    crate::fate::proxy_exiting();
    // Connections drained (or past `hard_stop_after`): what still runs on a worker ends with it.
    workers.stop(crate::proxy::workers::STOP_LIMIT);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        // Once: the log and the plain message both went to stderr.
        Err(e) => {
            crate::log::say(&format!("lbha: {e}"));
            ExitCode::from(1)
        }
    }
}

/// A proxy thread's runtime: current-thread, with the heartbeats of the `track_proxy` watchdog
/// (`crate::fate`) as it parks and unparks, and the allocator's collection when idle.
fn proxy_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let parked = || {
        crate::fate::beat();
        collect_when_idle();
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(parked)
        .on_thread_unpark(crate::fate::beat)
        .build()
}

/// The control socket file `run_as` hands to the user: the one this process opened, or on an
/// upgrade the running daemon's, which this process adopts (an upgrade from a config without
/// `user` into one with it would otherwise leave it root's, and the next `lbha upgrade`, started
/// as the user, could not connect). Only root can chown the adopted one: a daemon that already
/// runs as the user starts its successor as the user, and the socket is already the user's.
fn socket_to_hand_over<'a>(opened: bool, own: &'a Path, adopted: Option<&'a Path>, root: bool) -> Option<&'a Path> {
    match adopted {
        _ if opened => Some(own),
        Some(p) if root => Some(p),
        _ => None,
    }
}

/// `[global] user` / `group`: prepares the state directories, hands the control socket file to
/// the user (so the process `lbha upgrade` starts as that user can connect to it; root still can),
/// then gives up root while the process still has one thread (see [`privs`]).
fn run_as(snap: &Snapshot, ctl_path: Option<&Path>) -> Result<(), String> {
    let g = &snap.global;
    let Some(target) = privs::resolve(g.user.as_deref(), g.group.as_deref())? else {
        return Ok(());
    };
    if let Some(p) = ctl_path {
        nix::unistd::chown(p, Some(target.uid), Some(target.gid))
            .map_err(|e| format!("cannot hand the control socket {} to the user: {e}", p.display()))?;
    }
    if !snap.vrrp.instances.is_empty() {
        privs::prepare_dir(&g.state_dir, &target)?;
    }
    if let Some(api) = &snap.api {
        privs::prepare_dir(&api.state_dir, &target)?;
    }
    privs::switch(&target)?;
    tracing::info!(
        "running as uid {} gid {}, keeping CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_NET_RAW",
        target.uid,
        target.gid
    );
    Ok(())
}

/// Lifts the soft descriptor limit to the hard one, as HAProxy sizes its own: every proxied
/// connection takes one or two descriptors and every checked server keeps one for its checks,
/// and systemd's default soft limit of 1024 would cap the proxy long before `maxconn`.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!("descriptor limit raised from {soft} to {hard}"),
            Err(e) => tracing::warn!("cannot raise the descriptor limit from {soft} to {hard}: {e}"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the descriptor limit: {e}"),
    }
}

/// Removes the temporary files an interrupted atomic write left next to the files the daemon
/// writes (the config and its backup, runtime VIPs, the server-state file); the API cleans its
/// own directory when it opens it.
fn remove_crash_leftovers(config: &Path, g: &crate::config::snapshot::GlobalSettings) {
    let files = [
        Some(config.to_path_buf()),
        Some(crate::api::store::backup_path(config)),
        Some(g.state_dir.join(crate::vrrp::runtime::FILE_NAME)),
        Some(crate::config::cluster::state_file(&g.state_dir)),
        g.server_state_file.clone(),
    ];
    for f in files.iter().flatten() {
        if let (Some(dir), Some(name)) = (f.parent(), f.file_name().and_then(|n| n.to_str())) {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            crate::fsutil::remove_stale_temps(dir, &[name]);
        }
    }
}

/// mimalloc's option numbers (`mi_option_e` of the bundled mimalloc 3); a unit test checks that
/// they still name these options.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Not 0: purging at once gave each page a busy connection's request left empty back to the system
/// and faulted it in again on the next request (a `madvise` every 7 requests and the page faults
/// after it, about 5% of the proxy's CPU time in the small-request benchmark).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Memory freed after a burst of connections goes back to the system within [`PURGE_DELAY_MS`]
/// (by default mimalloc purges a second later, and only on allocator activity, which an idle daemon
/// may not have: see [`collect_when_idle`]), and arenas are committed as they are touched, not
/// ahead (5 MB less at start). The binary runs this from `.init_array`, before the first
/// allocation creates an arena.
pub extern "C" fn tune_allocator() {
    // SAFETY: plain setters of the allocator's option table, valid at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

/// Runs when a proxy thread goes idle: at most once a second, mimalloc takes back the blocks other
/// threads freed into this thread's heap and returns the pages left empty, so a burst's memory goes
/// back to the system even where its connections ended on another thread.
fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! { static LAST: Cell<Option<Instant>> = const { Cell::new(None) }; }
    let now = Instant::now();
    if LAST.get().is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return;
    }
    LAST.set(Some(now));
    // SAFETY: collects the calling thread's own heap; valid at any time.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

/// Warns at start when the descriptor limit cannot hold `maxconn` connections, as HAProxy does:
/// past it, accepts fail with EMFILE long before `maxconn` is reached.
fn check_fd_limit(snap: &Snapshot) {
    use nix::sys::resource::{Resource, getrlimit};
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE)
        && let Some(w) = fd_limit_warning(soft, snap.global.maxconn, descriptors_needed(snap))
    {
        tracing::warn!("{w}");
    }
}

/// Descriptors kept for what is not a proxied connection: stdio, the runtime's epoll and
/// wakeups, control socket, API, log and VRRP sockets, config and state files.
const FD_RESERVE: u64 = 64;

/// Descriptors the config may hold at once: two per client connection (its own and its server
/// connection), one per listener and per checked server, plus [`FD_RESERVE`].
fn descriptors_needed(snap: &Snapshot) -> u64 {
    let listeners: usize = snap.frontends.iter().map(|f| f.binds.len()).sum();
    let checked: usize = snap.backends.iter().flat_map(|b| &b.servers).filter(|s| s.check.is_some()).count();
    2 * u64::from(snap.global.maxconn) + listeners as u64 + checked as u64 + FD_RESERVE
}

/// The start-up warning when `limit` (the soft `RLIMIT_NOFILE`) is below `needed`.
fn fd_limit_warning(limit: u64, maxconn: u32, needed: u64) -> Option<String> {
    (limit < needed).then(|| {
        format!(
            "descriptor limit ({limit}) too low for maxconn = {maxconn} (about {needed} descriptors needed: two per \
             connection, plus listeners, checks and {FD_RESERVE} spare); raise `ulimit -n` (LimitNOFILE= under \
             systemd) to {needed} or more, or lower maxconn to {} or less",
            limit.saturating_sub(needed - 2 * u64::from(maxconn)) / 2
        )
    })
}

async fn serve(
    source: Source,
    (snap, mut runtime): (Snapshot, dynamic::State),
    (ctl_sock, ctl_settings): (Option<control::ControlSocket>, config::snapshot::ControlSocketSettings),
    (threads, spread): (usize, Option<crate::proxy::workers::Spread>),
    mut incoming: Option<upgrade::new::Incoming>,
) -> Result<(), String> {
    let path = source.path.clone();
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| format!("cannot handle SIGUSR1: {e}"))?;
    let state_path = snap.global.server_state_file.clone();
    let api_settings = snap.api.clone();
    let proxy = Proxy::new(snap);
    if let Some(s) = spread {
        let _ = proxy.workers.set(s);
    }
    match (&incoming, &state_path) {
        (Some(i), _) => state_file::apply(&i.servers_state, &format!("pid {}", i.old_pid), &proxy, true),
        (None, Some(p)) => state_file::load(p, &proxy),
        (None, None) => {}
    }
    // Before the listeners: they bind the VIPs it holds.
    let mut announcer = match crate::announce::Announcer::start(&proxy.active.load().snap, &proxy).await {
        Ok(a) => a,
        Err(e) => {
            if let Some(i) = incoming.as_mut() {
                i.abort(&e);
            }
            return Err(e);
        }
    };
    let mut listeners = Listeners::default();
    let inherited = incoming.as_mut().map(upgrade::new::Incoming::take_listeners).unwrap_or_default();
    let fresh = match listeners.adopt(&proxy.active.load().snap, inherited) {
        Ok(f) => f,
        Err(e) => {
            if let Some(i) = incoming.as_mut() {
                i.abort(&e.to_string());
            }
            return Err(e.to_string());
        }
    };
    listeners.activate(fresh, &proxy);
    let mut checks = checks::Checks::default();
    checks.reconcile(&proxy);
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
    let (runtime_tx, mut runtime_rx) = tokio::sync::mpsc::channel(16);
    let _ = proxy.runtime.set(runtime_tx);
    tokio::spawn(crate::dns::task::run(proxy.clone()));
    let (upgrade_tx, mut upgrade_rx) = tokio::sync::mpsc::channel(4);
    let (api_reload, mut api_reloads) = crate::api::reload_channel();
    let mut parts = start::Parts {
        path: &path,
        proxy: &proxy,
        listeners: &mut listeners,
        checks: &mut checks,
        api_settings: api_settings.as_ref(),
        api_reload: &api_reload,
        threads,
        reload_tx,
        upgrade_tx,
    };
    let took_over = incoming.is_some();
    let started = match incoming {
        None => start::fresh(&mut parts, ctl_sock, ctl_settings.path).await,
        Some(i) => start::taken_over(&mut parts, i).await,
    };
    let start::Started { shared, ctl, mut api } = started?;
    // The web console; on an upgrade it binds once the previous process lets the address go.
    let mut console = match &proxy.active.load().snap.console {
        Some(c) => Some(crate::console::Console::start(c, shared.clone(), took_over)?),
        None => None,
    };
    // Config sync with the other node; a reload it asks for applies what the peer sent.
    let (cluster_reload, mut cluster_reloads) = crate::api::reload_channel();
    if let Some(node) = cluster::Node::start(&shared, cluster_reload).await? {
        let _ = shared.cluster.set(node);
    }
    // Peers replicate the stick tables; the edge stops with this process (dropped at the end).
    let _peers = crate::peers::net::start(&proxy).await?;
    if let Some(a) = &announcer {
        let _ = shared.announce.set(a.status_handle());
    }
    let mut ctl = Some(ctl);
    let mut upgrades = upgrade::Upgrades::default();
    let mut upgraded = false;
    let mut notify_scripts = None;
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
                reload_for("SIGHUP", Requester::Signal, &source, &proxy, &mut listeners, &mut checks, &shared, &mut runtime).await;
            }
            Some(reply) = api_reloads.recv() => {
                reload_for("Data Plane API", Requester::Api(reply), &source, &proxy, &mut listeners, &mut checks, &shared, &mut runtime).await;
            }
            Some(reply) = cluster_reloads.recv() => {
                reload_for(cluster::TRIGGER, Requester::Api(reply), &source, &proxy, &mut listeners, &mut checks, &shared, &mut runtime).await;
            }
            Some(req) = reload_rx.recv() => {
                reload_for("control socket", Requester::Control(req), &source, &proxy, &mut listeners, &mut checks, &shared, &mut runtime).await;
            }
            Some(req) = runtime_rx.recv() => {
                dynamic::handle(req, &proxy, &mut listeners, &mut checks, &mut runtime).await;
            }
            _ = save_due(runtime.save_due()) => runtime.flush(&proxy).await,
            Some(msg) = upgrade_rx.recv() => match msg {
                upgrade::UpgradeMsg::Start(req) => {
                    // The successor reads the runtime changes from disk: all of them.
                    runtime.flush(&proxy).await;
                    upgrades.start(req, &source, shared.socket_path())
                }
                upgrade::UpgradeMsg::Attach(att) => {
                    let Some(c) = ctl.as_mut() else { continue };
                    let pid = att.pid;
                    let parts = upgrade::old::Parts {
                        proxy: &proxy,
                        shared: &shared,
                        listeners: &mut listeners,
                        ctl: c,
                        api: &mut api,
                        api_settings: api_settings.as_ref(),
                        api_reload: &api_reload,
                    };
                    let r = upgrade::old::hand_over(att, parts).await;
                    upgrades.finish(pid, &r).await;
                    if r.is_ok() {
                        upgraded = true;
                        break;
                    }
                }
            },
            ev = upgrades.event() => upgrades.on_event(ev).await,
        }
    }
    runtime.flush(&proxy).await;
    // Withdraw before drain: the router sends no new flows here while the proxy finishes. After
    // an upgrade the successor announces on the same device: nothing to withdraw.
    if let Some(c) = console.take() {
        c.stop().await;
    }
    if let Some(a) = announcer.as_ref().filter(|_| !upgraded) {
        a.withdraw_all().await;
    }
    if upgraded {
        // The new process serves the control socket, API, VRRP and state file now.
        if let Some(c) = shared.cluster.get() {
            c.stop();
        }
        if let Some(c) = ctl.take() {
            c.stop_handed_over().await;
        }
    } else {
        notify(&[NotifyState::Stopping]);
        // VRRP first: a master's priority-0 advert lets the backup take the VIPs while we drain.
        if let Some(mut vrrp) = shared.vrrp.lock().await.take() {
            notify_scripts = Some(vrrp.shutdown().await);
        }
        if let Some(c) = ctl.take() {
            c.stop().await;
        }
        shared.save_state().await;
        if let Some(api) = api.take() {
            api.stop().await;
        }
    }
    // After an upgrade the successor holds and announces the same VIPs: the announcer stops
    // before the drain, which it would read as a reason to withdraw.
    if upgraded && let Some(a) = announcer.take() {
        a.detach().await;
    }
    drain(&proxy, &mut listeners, &mut checks).await;
    if let Some(a) = announcer {
        a.release_all().await;
    }
    // The runtime kills what still runs when it ends: `notify_stop` gets its chance first.
    if let Some(n) = notify_scripts {
        n.wait(NOTIFY_AT_STOP).await;
    }
    Ok(())
}

/// How long a stop waits for VRRP notify scripts (`notify_stop`) after draining.
const NOTIFY_AT_STOP: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops accepting and lets connections in flight finish, at most `hard_stop_after`.
async fn drain(proxy: &Arc<Proxy>, listeners: &mut Listeners, checks: &mut checks::Checks) {
    let hard_stop = proxy.active.load().snap.global.hard_stop_after;
    tracing::info!("stopping: no new connections, finishing those in flight (at most {hard_stop:?})");
    listeners.close_all().await;
    checks.stop_all();
    proxy.start_drain();
    proxy.tracker.close();
    if tokio::time::timeout(hard_stop, proxy.tracker.wait()).await.is_err() {
        tracing::warn!("hard_stop_after reached: closing {} remaining connections", proxy.tracker.len());
    }
    tracing::info!("stopped");
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

/// Resolves when batched runtime changes are due to be written; never without any.
async fn save_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One reload, whatever asked for it: run it, log a failure, record the outcome for `show info`
/// and `lbha status`, and answer the control client that asked, if one did.
#[allow(clippy::too_many_arguments)]
async fn reload_for(
    trigger: &'static str,
    requester: Requester,
    source: &Source,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut checks::Checks,
    shared: &control::Shared,
    runtime: &mut dynamic::State,
) {
    let mut states = vec![NotifyState::Reloading];
    states.extend(NotifyState::monotonic_usec_now().ok());
    notify(&states);
    let terminate = matches!(&requester, Requester::Control(r) if r.terminate);
    // Parsing and validating a large file takes a while; off the runtime thread, so the proxy
    // keeps serving meanwhile (with nbthread = 1 it is the same thread).
    let owned = source.clone();
    let overlay = runtime.overlay.clone();
    let loaded = tokio::task::spawn_blocking(move || dynamic::load(&owned, &overlay))
        .await
        .unwrap_or_else(|e| Err(format!("configuration loader failed: {e}")));
    let old = proxy.active.load().snap.clone();
    // `[cluster]`: the peer validates a changed shared part first; both apply or neither.
    let gate = match (&loaded, shared.cluster.get()) {
        (Ok((snap, _, _)), Some(node)) => node.gate(trigger, snap.cluster.as_ref()).await,
        _ => cluster::Gate::Pass,
    };
    let loaded = match &gate {
        cluster::Gate::Refused(e) => Err(e.clone()),
        _ => loaded,
    };
    let r = loaded.and_then(|(snap, base, dropped)| {
        for w in &snap.warnings {
            tracing::warn!("{w}");
        }
        let g = reload(snap, proxy, listeners, checks, terminate)?;
        runtime.reloaded(base, &dropped);
        Ok(g)
    });
    let mut warnings = match &r {
        Ok(_) => restart_only(&old, &proxy.active.load().snap, shared.threads()),
        Err(_) => Vec::new(),
    };
    if let Some(node) = shared.cluster.get() {
        warnings.extend(node.finish(gate, &r).await);
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
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
        Requester::Control(req) => {
            req.reply.send(r.map(|generation| control::Reloaded { generation, warnings })).map_err(|_| ())
        }
        Requester::Api(reply) => reply.send(r).map_err(|_| ()),
    };
    if answered.is_err() {
        tracing::debug!("the {trigger} client that asked for the reload has gone");
    }
}

/// `[global]` settings a reload cannot change in a running process: what the new file asks for
/// that only a restart (or `lbha upgrade`) applies, so the reload answer says so.
fn restart_only(old: &Snapshot, new: &Snapshot, threads: usize) -> Vec<String> {
    let (o, n) = (&old.global, &new.global);
    let mut out = Vec::new();
    let wanted = n.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n.nbthread != o.nbthread && wanted != threads {
        out.push(format!(
            "global.nbthread: {wanted} threads take effect at the next restart or upgrade (running {threads})"
        ));
    }
    if n.control_socket != o.control_socket {
        out.push("global.control_socket: takes effect at the next restart or upgrade".to_string());
    }
    if n.state_dir != o.state_dir {
        out.push("global.state_dir: takes effect at the next restart or upgrade".to_string());
    }
    if n.server_state_file != o.server_state_file {
        out.push("global.server_state_file: takes effect at the next restart or upgrade".to_string());
    }
    // Privileges were dropped at start: the running process cannot take another identity.
    if (&n.user, &n.group) != (&o.user, &o.group) {
        out.push("global.user and global.group: take effect at the next restart or upgrade".to_string());
    }
    // The announcer starts with the process, before the listeners bind its VIPs.
    if old.announce.groups.is_empty() && !new.announce.groups.is_empty() {
        out.push("announce: a first [[announce]] takes effect at the next restart or upgrade".to_string());
    }
    let api = |s: &Snapshot| s.api.as_ref().map(|a| (a.bind, a.state_dir.clone(), a.tls.is_some()));
    if api(new) != api(old) {
        out.push("api: bind, state_dir and ssl_crt take effect at the next restart or upgrade".to_string());
    }
    let sync_bind = |s: &Snapshot| s.cluster.as_ref().map(|c| c.bind);
    if sync_bind(new) != sync_bind(old) {
        out.push(
            "cluster: adding, removing or moving the sync listener (`bind`) takes effect at the next restart".into(),
        );
    }
    if new.peers != old.peers {
        out.push(
            "peers: the local peer, its address and the peer lists take effect at the next restart or upgrade".into(),
        );
    }
    out
}

/// Who asked for a reload, and where its answer goes.
enum Requester {
    Signal,
    Control(control::ReloadRequest),
    Api(crate::api::ReloadRequest),
}

/// `track_backend`'s view of the proxy: usable servers of a backend.
pub(crate) fn live_fn(proxy: &Arc<Proxy>) -> crate::vrrp::LiveFn {
    let p = proxy.clone();
    Arc::new(move |backend: &str| {
        use crate::routing::Live;
        p.active.load().nbsrv(backend)
    })
}

/// Binds any new addresses of a validated snapshot, then swaps it in. Any failure before the
/// swap leaves the running configuration untouched.
pub fn reload(
    snap: Snapshot,
    proxy: &Arc<Proxy>,
    listeners: &mut Listeners,
    checks: &mut checks::Checks,
    terminate: bool,
) -> Result<u64, String> {
    let fresh = listeners.bind_new(&snap).map_err(|e| e.to_string())?;
    let maxconn = snap.global.maxconn as usize;
    crate::fate::set_stall_threshold(snap.global.proxy_stall_threshold);
    let active = proxy.install(snap, terminate);
    proxy.global_size.resize(maxconn);
    listeners.activate(fresh, proxy);
    checks.reconcile(proxy);
    tracing::info!(generation = active.generation, "configuration reloaded");
    Ok(active.generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adopted_control_socket_is_handed_to_the_user_too() {
        let (own, old) = (Path::new("/run/lbha/new.sock"), Path::new("/run/lbha/lbha.sock"));
        assert_eq!(socket_to_hand_over(true, own, None, true), Some(own));
        assert_eq!(socket_to_hand_over(true, own, None, false), Some(own));
        // Upgrade: the socket served is the running daemon's; root hands it over.
        assert_eq!(socket_to_hand_over(false, own, Some(old), true), Some(old));
        // Not root: a successor of a daemon already running as the user; nothing to chown.
        assert_eq!(socket_to_hand_over(false, own, Some(old), false), None);
    }

    #[test]
    fn a_descriptor_limit_below_what_maxconn_needs_is_reported_with_the_numbers() {
        assert_eq!(fd_limit_warning(20_000, 5_000, 10_070), None);
        assert_eq!(fd_limit_warning(10_070, 5_000, 10_070), None);
        let w = fd_limit_warning(1024, 5_000, 10_070).unwrap();
        assert!(w.starts_with("descriptor limit (1024) too low for maxconn = 5000"), "{w}");
        assert!(w.contains("to 10070 or more"), "{w}");
        // 1024 minus the 70 that are not per connection, two per connection.
        assert!(w.ends_with("lower maxconn to 477 or less"), "{w}");
        // A limit that does not even cover listeners and the reserve.
        assert!(fd_limit_warning(16, 1, 100).unwrap().ends_with("lower maxconn to 0 or less"));
    }

    #[test]
    fn the_allocator_option_numbers_name_the_options_tuned() {
        // Their defaults in mimalloc 3: purge_delay 1000 ms, arena_eager_commit 2 (on overcommit systems).
        // SAFETY: plain getters of the allocator's option table.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT), 2);
        }
    }

    #[test]
    fn descriptors_needed_counts_connections_listeners_and_checked_servers() {
        let snap = crate::config::parse(
            "[global]\nmaxconn = 100\n[defaults]\nmode = \"http\"\n[[listen]]\nname = \"w\"\n\
             bind = [\"127.0.0.1:8001\", \"127.0.0.1:8002\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:9001\", check = true }, \
             { name = \"b\", addr = \"127.0.0.1:9002\", check = false }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(descriptors_needed(&snap), 200 + 2 + 1 + FD_RESERVE);
    }

    /// `lbha upgrade` starts the new process reading the config the way this one does.
    #[test]
    fn upgrade_arguments_keep_the_source() {
        let s = |haproxy, allow_weaker| Source { path: "/etc/x.cfg".into(), haproxy, allow_weaker };
        let args = |s: Source| s.run_args().iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>();
        assert_eq!(args(s(false, false)), ["run", "-c", "/etc/x.cfg"]);
        assert_eq!(args(s(true, false)), ["run", "--haproxy-config", "/etc/x.cfg"]);
        assert_eq!(args(s(true, true)), ["run", "--haproxy-config", "/etc/x.cfg", "--allow-weaker"]);
    }

    #[test]
    fn restart_only_settings_are_named() {
        let parse = |t: &str| config::parse(t, std::path::Path::new("t.toml")).unwrap();
        let old = parse("[global]\nnbthread = 1\n");
        let new = parse("[global]\nnbthread = 2\nstate_dir = \"/tmp/x\"\nmaxconn = 5\nuser = \"nobody\"\n");
        let w = restart_only(&old, &new, 1);
        assert!(w.iter().any(|l| l.starts_with("global.user and global.group")), "{w:?}");
        assert!(w.iter().any(|l| l.starts_with("global.nbthread: 2 threads")), "{w:?}");
        assert!(w.iter().any(|l| l.starts_with("global.state_dir")), "{w:?}");
        // maxconn is applied by the reload itself.
        assert!(!w.iter().any(|l| l.contains("maxconn")), "{w:?}");
        assert!(restart_only(&old, &old, 1).is_empty());
        let announcing = parse(
            "[[backend]]\nname = \"web\"\n[[announce]]\nname = \"v\"\naddress = [\"192.0.2.10\"]\ntrack_backend = [\"web\"]\n",
        );
        let w = restart_only(&old, &announcing, 1);
        assert!(w.iter().any(|l| l.starts_with("announce: a first [[announce]]")), "{w:?}");
        // Changing or removing announcements is a reload's business.
        assert!(!restart_only(&announcing, &old, 1).iter().any(|l| l.starts_with("announce")));
    }
}
