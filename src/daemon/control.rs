//! The control socket server: a unix socket speaking [`crate::control`]'s language. Each
//! connection is its own task; commands run against the live state, and `reload` is handed to the
//! serve loop so reloads (from here or SIGHUP) never run at the same time.

use super::state_file;
use super::upgrade::{Attach, UpgradeMsg, UpgradeRequest};
use crate::config::snapshot::ControlSocketSettings;
use crate::control::facts::{self, ProcessFacts};
use crate::control::parse::{Command, HELP, Level, MAX_LINE, ParseError, parse_line};
use crate::control::reply::{Reply, Session, frame};
use crate::control::servers_state::{self, admin_word};
use crate::control::stat_json;
use crate::control::status::{LastReload, ReloadSummary, render};
use crate::proxy::Proxy;
use crate::state::Admin;
use serde_json::json;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 64;
/// How long a `reload` command waits for the serve loop.
const RELOAD_WAIT: Duration = Duration::from_secs(120);
/// How long an `upgrade` command waits: longer than the serve loop's own bound on an upgrade.
const UPGRADE_WAIT: Duration = Duration::from_secs(150);
/// At stop, how long open control connections get to finish their answer.
const CONN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "another lbha is answering on the control socket {0}; stop it first, or give this one another control_socket.path (or -S)"
    )]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it (control_socket.path)")]
    NotSocket(PathBuf),
    #[error("cannot create the directory {path} for the control socket: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot create the control socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// A bound control socket, not yet served. Dropped unserved (the daemon failed to start), it
/// removes its file.
pub struct ControlSocket {
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    /// Device and inode of the socket file we created, so we only ever remove our own.
    id: (u64, u64),
    /// False for a socket handed over by the previous process: if this one fails to start, the
    /// previous one serves the file again.
    created: bool,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if self.listener.is_some() && self.created {
            remove_if_ours(&self.path, self.id);
        }
    }
}

fn remove_if_ours(path: &std::path::Path, id: (u64, u64)) {
    if let Ok(m) = std::fs::symlink_metadata(path)
        && (m.dev(), m.ino()) == id
        && let Err(e) = std::fs::remove_file(path)
    {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
}

impl ControlSocket {
    /// Creates the directory, refuses if another daemon answers on the path, replaces a stale
    /// socket file, and binds with the configured mode. The socket is bound under a temporary
    /// name, given its mode, then renamed into place, so it is never reachable with looser bits.
    pub fn open(s: &ControlSocketSettings) -> Result<Self, ControlError> {
        let path = s.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|source| ControlError::Dir { path: dir.to_path_buf(), source })?;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_socket() => return Err(ControlError::NotSocket(path)),
            Ok(_) => match std::os::unix::net::UnixStream::connect(&path) {
                Ok(_) => return Err(ControlError::InUse(path)),
                Err(e) => tracing::info!("replacing stale control socket {} ({e})", path.display()),
            },
            Err(_) => {}
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let bind_err = |source| ControlError::Bind { path: path.clone(), source };
        let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(bind_err)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(s.mode))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| std::fs::symlink_metadata(&path));
        let meta = match placed {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(bind_err(e));
            }
        };
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(Self { listener: Some(listener), path, id: (meta.dev(), meta.ino()), created: true })
    }

    /// Serves the listening socket the previous process handed over (binary upgrade); the file at
    /// `path` stays where it is, so clients never find it missing.
    pub fn adopt(fd: OwnedFd, path: &Path) -> Result<Self, ControlError> {
        let bind_err = |source| ControlError::Bind { path: path.to_path_buf(), source };
        let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
        if !meta.file_type().is_socket() {
            return Err(ControlError::NotSocket(path.to_path_buf()));
        }
        let listener = std::os::unix::net::UnixListener::from(fd);
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(Self { listener: Some(listener), path: path.to_path_buf(), id: (meta.dev(), meta.ino()), created: false })
    }
}

/// Asks the serve loop to reload; it answers with the new generation or every error.
pub struct ReloadRequest {
    pub terminate: bool,
    pub reply: oneshot::Sender<Result<Reloaded, String>>,
}

/// A reload that went through, and what in the new file it could not apply.
pub struct Reloaded {
    pub generation: u64,
    /// Settings that need a restart (`nbthread`, `control_socket`, ...), one line each.
    pub warnings: Vec<String>,
}

/// One reload: when, what asked for it, and the generation or every error.
struct Outcome {
    at: Instant,
    trigger: &'static str,
    result: Result<u64, Vec<String>>,
}

/// Reload outcomes since start.
#[derive(Default)]
struct ReloadLog {
    succeeded: u64,
    failed: u64,
    last: Option<Outcome>,
}

/// What every control connection shares with the daemon.
pub struct Shared {
    pub proxy: Arc<Proxy>,
    config: PathBuf,
    /// `control_socket` as the config said at start, to notice a reload changing it.
    configured_socket: ControlSocketSettings,
    /// The path actually served (the config's, or `-S`).
    serving: PathBuf,
    threads: usize,
    reload_tx: mpsc::Sender<ReloadRequest>,
    upgrade_tx: mpsc::Sender<UpgradeMsg>,
    reloads: Mutex<ReloadLog>,
    /// The VRRP instances, owned here so `show status` can read them and reloads update them.
    pub vrrp: tokio::sync::Mutex<Option<crate::vrrp::Manager>>,
    /// `[[announce]]` state for `show announce`, set once the announcer runs.
    pub announce: std::sync::OnceLock<crate::announce::show::Handle>,
    /// Config sync with the other node (`[cluster]`), set once it runs.
    pub cluster: std::sync::OnceLock<Arc<super::cluster::Node>>,
}

impl Shared {
    pub fn new(
        proxy: Arc<Proxy>,
        config: PathBuf,
        serving: PathBuf,
        threads: usize,
        reload_tx: mpsc::Sender<ReloadRequest>,
        upgrade_tx: mpsc::Sender<UpgradeMsg>,
    ) -> Arc<Self> {
        let configured_socket = proxy.active.load().snap.global.control_socket.clone();
        Arc::new(Self {
            proxy,
            config,
            configured_socket,
            serving,
            threads,
            reload_tx,
            upgrade_tx,
            reloads: Mutex::new(ReloadLog::default()),
            vrrp: tokio::sync::Mutex::new(None),
            announce: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// Records a reload's outcome (for `show info` and `lbha status`) and saves server state.
    pub async fn record_reload(&self, trigger: &'static str, r: &Result<u64, String>) {
        {
            let mut log = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
            match r {
                Ok(_) => log.succeeded += 1,
                Err(_) => log.failed += 1,
            }
            log.last = Some(Outcome { at: Instant::now(), trigger, result: r.clone().map_err(|e| error_lines(&e)) });
        }
        let text = match r {
            Ok(g) => format!("reloaded by {trigger}: generation {g}"),
            Err(e) => format!("reload by {trigger} failed: {}", error_lines(e).join("; ")),
        };
        crate::console::events::record(
            crate::console::events::Kind::Reload,
            self.config.display().to_string(),
            text,
            r.is_ok(),
        );
        if r.is_ok() {
            let active = self.proxy.active.load();
            if active.snap.global.control_socket != self.configured_socket {
                tracing::warn!(
                    "control_socket settings changed; they take effect at the next restart (still serving {})",
                    self.serving.display()
                );
            }
            self.save_state().await;
        }
    }

    /// Proxy threads this process runs (fixed until a restart).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The configuration file this daemon runs.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The control socket path served.
    pub fn socket_path(&self) -> &Path {
        &self.serving
    }

    fn reload_summary(&self) -> ReloadSummary {
        let log = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        ReloadSummary {
            succeeded: log.succeeded,
            failed: log.failed,
            last: log.last.as_ref().map(|o| LastReload {
                ok: o.result.is_ok(),
                trigger: o.trigger.into(),
                ago_sec: o.at.elapsed().as_secs(),
                generation: o.result.as_ref().ok().copied(),
                errors: o.result.as_ref().err().cloned().unwrap_or_default(),
            }),
        }
    }

    fn process(&self) -> ProcessFacts {
        ProcessFacts {
            pid: std::process::id(),
            uptime: self.proxy.started.elapsed(),
            threads: self.threads,
            // The live limit: a reload resizes it.
            maxconn: u32::try_from(self.proxy.global_size.size()).unwrap_or(u32::MAX),
            config: self.config.display().to_string(),
            stopping: *self.proxy.drain.borrow(),
            node: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        }
    }

    /// Writes `server_state_file`, if configured, off the async threads.
    pub async fn save_state(&self) {
        let proxy = self.proxy.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || state_file::save(&proxy)).await {
            tracing::warn!("saving server state failed: {e}");
        }
    }
}

fn error_lines(e: &str) -> Vec<String> {
    e.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// What the accept loop should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    /// Binary upgrade in progress: accept nothing (clients wait in the backlog), keep the socket and
    /// the open connections.
    Pause,
    Stop,
}

/// A serving control socket.
pub struct Running {
    mode: watch::Sender<Mode>,
    /// The mode the accept loop last acted on.
    seen: watch::Receiver<Mode>,
    task: JoinHandle<()>,
    listener: Arc<tokio::net::UnixListener>,
    path: PathBuf,
    id: (u64, u64),
}

pub fn spawn(mut sock: ControlSocket, shared: Arc<Shared>) -> io::Result<Running> {
    let std_l = sock.listener.take().ok_or_else(|| io::Error::other("control socket already served"))?;
    let listener = match tokio::net::UnixListener::from_std(std_l) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            if sock.created {
                remove_if_ours(&sock.path, sock.id);
            }
            return Err(e);
        }
    };
    let (mode, rx) = watch::channel(Mode::Serve);
    let (ack, seen) = watch::channel(Mode::Serve);
    tracing::info!("control socket listening on {}", sock.path.display());
    let task = crate::fate::spawn(accept_loop(listener.clone(), shared, rx, ack));
    Ok(Running { mode, seen, task, listener, path: sock.path.clone(), id: sock.id })
}

impl Running {
    /// Stops accepting, lets open connections finish their answer (briefly), and removes the
    /// socket file if it is still ours.
    pub async fn stop(self) {
        let (path, id) = (self.path.clone(), self.id);
        self.stop_handed_over().await;
        remove_if_ours(&path, id);
    }

    /// Like [`Running::stop`], but leaves the socket file to the process it was handed over to.
    pub async fn stop_handed_over(self) {
        let _ = self.mode.send(Mode::Stop);
        let _ = self.task.await;
    }

    /// Stops accepting until [`Running::resume`]; returns once the accept loop has seen it.
    pub async fn pause(&mut self) {
        self.set(Mode::Pause).await;
    }

    pub async fn resume(&mut self) {
        self.set(Mode::Serve).await;
    }

    async fn set(&mut self, m: Mode) {
        let _ = self.mode.send(m);
        let _ = self.seen.wait_for(|s| *s == m).await;
    }

    /// The listening socket, to pass to the next process.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn accept_loop(
    l: Arc<tokio::net::UnixListener>,
    shared: Arc<Shared>,
    mut mode: watch::Receiver<Mode>,
    ack: watch::Sender<Mode>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let m = *mode.borrow_and_update();
        ack.send_replace(m);
        match m {
            Mode::Stop => break,
            Mode::Pause => {
                if mode.changed().await.is_err() {
                    break;
                }
                continue;
            }
            Mode::Serve => {}
        }
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            r = mode.changed() => if r.is_err() { break } else { continue },
        };
        let accepted = tokio::select! {
            r = l.accept() => r,
            r = mode.changed() => if r.is_err() { break } else { continue },
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _)) => {
                let shared = shared.clone();
                conns.spawn(crate::fate::watched(async move {
                    if let Err(e) = serve_conn(stream, &shared).await {
                        tracing::debug!("control connection ended: {e}");
                    }
                    drop(permit);
                }));
            }
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // An answer being written (the outcome of an upgrade, say) gets a moment to go out.
    let _ = tokio::time::timeout(CONN_GRACE, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line into `out` (without its end), discarding past [`MAX_LINE`] bytes.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> io::Result<LineRead> {
    out.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let (chunk, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            out.extend_from_slice(chunk);
            if out.len() > MAX_LINE {
                too_long = true;
                out.clear();
            }
        }
        r.consume(used);
        if done {
            break;
        }
    }
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok(if too_long { LineRead::TooLong } else { LineRead::Line })
}

/// Largest payload after a `<<` command (a certificate chain and its key fit many times).
const MAX_PAYLOAD: usize = 1024 * 1024;

/// HAProxy's payload: the lines after a command ending in `<<`, up to an empty line (or the end of
/// a one-shot connection). `None` if it is too long or not UTF-8 (the command then sees none).
async fn read_payload<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<String>> {
    let mut payload = String::new();
    let mut ok = true;
    let mut buf = Vec::new();
    loop {
        let read = match tokio::time::timeout(IDLE_TIMEOUT, read_line(r, &mut buf)).await {
            Ok(res) => res?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "payload not ended")),
        };
        match read {
            LineRead::Eof => break,
            LineRead::Line if buf.is_empty() => break,
            LineRead::TooLong => ok = false,
            LineRead::Line => match std::str::from_utf8(&buf) {
                Ok(l) if payload.len() + l.len() < MAX_PAYLOAD => {
                    payload.push_str(l);
                    payload.push('\n');
                }
                _ => ok = false,
            },
        }
    }
    Ok((ok && !payload.is_empty()).then_some(payload))
}

/// Sends bytes, giving up on a client that stops reading.
async fn send<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(IDLE_TIMEOUT, w.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")),
    }
}

async fn serve_conn(stream: UnixStream, shared: &Shared) -> io::Result<()> {
    let peer = stream.peer_cred().ok();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut session = Session { level: shared.configured_socket.level, ..Session::default() };
    let mut buf = Vec::new();
    // Answers wait here while more complete commands are already read: a pipelined batch
    // (100,000 `set table`) is answered in a few writes, not one per command.
    let mut out = Vec::new();
    loop {
        if !out.is_empty() && (!r.buffer().contains(&b'\n') || out.len() >= 64 * 1024) {
            send(&mut w, &out).await?;
            out.clear();
        }
        let read = match tokio::time::timeout(shared.configured_socket.timeout, read_line(&mut r, &mut buf)).await {
            Ok(res) => res?,
            Err(_) => return Ok(()),
        };
        let line = match read {
            LineRead::Eof => {
                // The client may have stopped reading: its answers then go nowhere, as before.
                let _ = send(&mut w, &out).await;
                return Ok(());
            }
            LineRead::TooLong => {
                let reply = Reply::error(ParseError::TooLong.to_string());
                out.extend_from_slice(frame(&reply, false, session).as_bytes());
                continue;
            }
            LineRead::Line => match std::str::from_utf8(&buf) {
                Ok(l) => l.to_string(),
                Err(_) => {
                    let reply = Reply::error(ParseError::NotUtf8.to_string());
                    out.extend_from_slice(frame(&reply, false, session).as_bytes());
                    continue;
                }
            },
        };
        let mut parsed = parse_line(&line);
        if crate::control::sslcert::wants_payload(&line)
            && let Some(payload) = read_payload(&mut r).await?
        {
            crate::control::sslcert::attach(&mut parsed, payload);
        }
        if parsed.is_empty() && session.prompt {
            out.extend_from_slice(crate::control::reply::PROMPT.as_bytes());
        }
        let words = crate::control::parse::split_line(&line);
        for (i, p) in parsed.into_iter().enumerate() {
            let peer_uid = peer.map(|c| c.uid());
            let command = p
                .command
                .map_err(|e| e.to_string())
                .and_then(|c| permitted(&c, session.level, peer_uid, || nix::unistd::geteuid().as_raw()).map(|()| c));
            let reply = match command {
                Err(e) => Reply::error(e),
                Ok(Command::Lower(l)) => {
                    session.level = session.level.min(l);
                    Reply::ok("", json!({ "level": session.level.as_str() }))
                }
                Ok(Command::Quit) => {
                    send(&mut w, &out).await?;
                    w.shutdown().await?;
                    return Ok(());
                }
                Ok(Command::Prompt) => {
                    session.prompt = !session.prompt;
                    Reply::ok("", json!({ "prompt": session.prompt }))
                }
                Ok(Command::SetSeverityOutput(s)) => {
                    session.severity = s;
                    Reply::ok("", json!({}))
                }
                Ok(Command::ExpertMode(on)) => {
                    session.expert = on;
                    Reply::ok("", json!({ "expert": on }))
                }
                Ok(Command::DebugDev(d)) => super::debug_dev::run(d, session.expert),
                // `permitted` checked the peer's uid for both.
                Ok(Command::Upgrade { binary }) => upgrade(shared, binary).await,
                Ok(Command::TakeOver) => {
                    // The rest of the connection is the handover; nothing may wait in our buffer.
                    if r.buffer().is_empty() {
                        send(&mut w, &out).await?;
                        let stream = r.into_inner().reunite(w).map_err(|e| io::Error::other(e.to_string()))?;
                        let attach = Attach { stream, pid: peer.and_then(|p| p.pid()) };
                        if shared.upgrade_tx.send(UpgradeMsg::Attach(attach)).await.is_err() {
                            tracing::warn!("a new process asked for the sockets, but the daemon is stopping");
                        }
                        return Ok(());
                    }
                    Reply::error("_upgrade must be the last thing sent before the handover.")
                }
                Ok(cmd) => match shared.cluster.get() {
                    // `[cluster]`: the peer takes it too (or refuses it for a conflict).
                    Some(c) if super::cluster::passed_on(&cmd) => c.run_runtime(shared, cmd, &words[i]).await,
                    _ => execute(shared, cmd).await,
                },
            };
            out.extend_from_slice(frame(&reply, p.json, session).as_bytes());
        }
    }
}

/// Runs one command for the web console as a control connection would: the same answer, and a
/// runtime change offered to the cluster peer (`crate::console` checked the role first).
pub async fn run_for_console(shared: &Shared, line: &str, cmd: Command) -> Reply {
    match shared.cluster.get() {
        Some(c) if super::cluster::passed_on(&cmd) => {
            // The console sends one command per request (`parse_change` refused anything else).
            let words = crate::control::parse::split_line(line).into_iter().next().unwrap_or_default();
            c.run_runtime(shared, cmd, &words).await
        }
        _ => execute(shared, cmd).await,
    }
}

/// Runs one command against the live state.
pub async fn execute(shared: &Shared, cmd: Command) -> Reply {
    let active = shared.proxy.active.load_full();
    match cmd {
        Command::Help => Reply::ok(HELP, json!({ "help": HELP.lines().collect::<Vec<_>>() })),
        Command::ShowErrors { proxy, response } => {
            let fes = &active.snap.frontends;
            let picked: Vec<usize> = (0..fes.len())
                .filter(|&i| match &proxy {
                    None => true,
                    Some(p) => *p == fes[i].name || p.strip_prefix('#').unwrap_or(p).parse::<usize>() == Ok(i + 1),
                })
                .collect();
            if let Some(p) = &proxy
                && picked.is_empty()
                && active.snap.backend(p).is_none()
            {
                return Reply::error("No such proxy.");
            }
            // Only request heads are captured (lbha refuses no response for its head).
            let shown: Vec<_> = picked
                .into_iter()
                .filter(|_| !response)
                .filter_map(|i| {
                    let capture =
                        active.rt.frontends[i].last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                    Some(crate::control::errors::Shown { proxy: &fes[i].name, id: i + 1, capture: *capture })
                })
                .collect();
            let total = crate::state::ERROR_EVENTS.load(std::sync::atomic::Ordering::Relaxed);
            let text =
                crate::control::errors::render(std::time::SystemTime::now(), total, &shown, active.snap.global.bufsize);
            Reply::ok(text.clone(), json!({ "errors": text }))
        }
        Command::ShowCache => {
            let (text, json) = crate::cache::show_all(&active.snap.caches, std::time::SystemTime::now());
            Reply::ok(text, json)
        }
        Command::ShowInfo => {
            let f = facts::info_fields(&active, &shared.process(), &shared.reload_summary());
            Reply::ok(stat_json::info_text(&f), stat_json::info_json(&f))
        }
        Command::ShowStat(filter) => {
            if let Some(px) = &filter.proxy
                && active.snap.frontend(px).is_none()
                && active.snap.backend(px).is_none()
            {
                return Reply::error("No such proxy.");
            }
            let rows = stat_json::filter_rows(crate::stats::csv_rows(&active, true), &filter);
            Reply::ok(crate::stats::csv_from_rows(&rows), stat_json::stat_json(&rows))
        }
        Command::ShowServersState { backend } => {
            let only = match &backend {
                None => None,
                Some(b) => match active.snap.backend(b) {
                    Some((i, _)) => Some(i),
                    None => return Reply::error("Can't find backend."),
                },
            };
            let lines = facts::server_lines(&active, only);
            Reply::ok(
                servers_state::format(&lines),
                serde_json::Value::Array(lines.iter().map(|l| l.to_json()).collect()),
            )
        }
        Command::ShowBackend => {
            let (text, json) = facts::backends(&active);
            Reply::ok(text, json)
        }
        Command::ShowStatus => {
            let vrrp = vrrp_status(shared).await;
            let mut st = facts::status(&active, &shared.process(), shared.reload_summary(), vrrp);
            st.announce = shared.announce.get().map(|h| h.report());
            let json = serde_json::to_value(&st).unwrap_or_else(|e| json!({ "errorStr": e.to_string() }));
            Reply::ok(render(&st), json)
        }
        // As in HAProxy, `enable server` ends maintenance only; a drain stays.
        Command::EnableServer(r) => {
            let keep_drain = facts::find_server(&active, &r)
                .is_ok_and(|(bi, si)| active.rt.backends[bi].servers[si].forced_admin() == Admin::Drain);
            let a = if keep_drain { Admin::Drain } else { Admin::Ready };
            set_admin(shared, &active, &r, a).await
        }
        Command::DisableServer(r) => set_admin(shared, &active, &r, Admin::Maint).await,
        Command::SetServerState(r, a) => set_admin(shared, &active, &r, a).await,
        Command::SetServerWeight(r, spec) => {
            let (bi, si) = match facts::find_server(&active, &r) {
                Ok(x) => x,
                Err(e) => return Reply::error(e),
            };
            let initial = active.snap.backends[bi].servers[si].weight;
            let w = spec.resolve(initial);
            let rt = &active.rt.backends[bi].servers[si];
            let old = rt.weight();
            rt.set_weight(w);
            tracing::info!("server {r} weight {old} -> {w} (control socket)");
            let text = format!("weight {old} -> {w}");
            crate::console::events::record(crate::console::events::Kind::Server, r.to_string(), text, true);
            shared.save_state().await;
            server_reply(&r, rt.admin(), w, initial)
        }
        Command::GetWeight(r) => match facts::find_server(&active, &r) {
            Ok((bi, si)) => {
                let w = active.rt.backends[bi].servers[si].weight();
                let initial = active.snap.backends[bi].servers[si].weight;
                Reply::ok(format!("{w} (initial {initial})"), json!({ "weight": w, "initial_weight": initial }))
            }
            Err(e) => Reply::error(e),
        },
        Command::Reload { terminate } => reload(shared, terminate).await,
        Command::ShowVrrp => super::vip::show_vrrp(shared).await,
        Command::ShowAnnounce => crate::announce::show::reply(shared.announce.get()),
        Command::VipList { instance } => super::vip::list(shared, instance.as_deref()).await,
        Command::VipAdd(req) => super::vip::add(shared, req).await,
        Command::VipDel(req) => super::vip::del(shared, req).await,
        Command::Map(m) => super::maps::execute(shared, m),
        // Connection-level commands are handled by the connection loop.
        Command::Quit
        | Command::Prompt
        | Command::SetSeverityOutput(_)
        | Command::Lower(_)
        | Command::ExpertMode(_)
        | Command::DebugDev(_) => Reply::ok("", json!({})),
        Command::Upgrade { .. } | Command::TakeOver => Reply::error("Only on a control socket connection."),
        Command::Table(t) => super::tables::execute(&active, &t),
        Command::Runtime(rt) => super::dynamic::control_reply(&shared.proxy, rt).await,
        Command::Cluster(c) => super::cluster::execute(shared, c).await,
        Command::ShowEvents { since } => {
            let (text, j) = crate::console::events::reply(since);
            Reply::ok(text, j)
        }
        Command::ShowTraffic { name } => match crate::console::traffic::reply(name.as_deref()) {
            Ok((text, j)) => Reply::ok(text, j),
            Err(e) => Reply::error(e),
        },
        Command::SslCert(c) => super::sslcert::execute(c),
        Command::Sess(c) => super::sess::execute(&shared.proxy, c),
    }
}

async fn set_admin(shared: &Shared, active: &crate::proxy::Active, r: &crate::control::ServerRef, a: Admin) -> Reply {
    let (bi, si) = match facts::find_server(active, r) {
        Ok(x) => x,
        Err(e) => return Reply::error(e),
    };
    let rt = &active.rt.backends[bi].servers[si];
    let old = rt.admin();
    rt.set_admin(a);
    shared.proxy.admin_changed(active, (bi, si), old);
    if old != a {
        tracing::info!("server {r} admin state {} -> {} (control socket)", admin_word(old), admin_word(a));
        let text = format!("admin state {} -> {}", admin_word(old), admin_word(a));
        crate::console::events::record(crate::console::events::Kind::Server, r.to_string(), text, true);
    }
    shared.save_state().await;
    server_reply(r, a, rt.weight(), active.snap.backends[bi].servers[si].weight)
}

/// HAProxy answers a successful server change with nothing; the JSON form shows the result.
fn server_reply(r: &crate::control::ServerRef, a: Admin, weight: u32, initial: u32) -> Reply {
    Reply::ok(
        "",
        json!({
            "backend": r.backend,
            "server": r.server,
            "admin": admin_word(a),
            "weight": weight,
            "initial_weight": initial,
        }),
    )
}

async fn vrrp_status(shared: &Shared) -> Vec<crate::control::status::VrrpStatus> {
    let guard = shared.vrrp.lock().await;
    let Some(m) = guard.as_ref() else { return Vec::new() };
    m.status()
        .into_iter()
        .map(|i| crate::control::status::VrrpStatus {
            name: i.name,
            interface: i.interface,
            vrid: i.vrid,
            state: i.state.keepalived_name().to_string(),
            priority: i.effective_priority,
            configured_priority: i.configured_priority,
            vips: i.vips_held,
            master: i.master.map(|a| a.to_string()),
        })
        .collect()
}

/// Whether a connection at `level`, whose peer is `peer_uid`, may run `cmd` (`me`: our euid).
/// Starting an executable, or receiving every listening socket, is for root or the daemon's own
/// user whatever the socket's level: a group given access to the socket (mode 660) must not gain
/// either, and the owner must keep both on an operator socket (what `lbha convert` writes for a
/// `stats socket` without `level`, HAProxy's default). Everything else goes by level, as HAProxy.
/// `me`: this process's uid, asked only for the commands that need it (a syscall otherwise
/// paid by every command of a batch).
fn permitted(cmd: &Command, level: Level, peer_uid: Option<u32>, me: impl FnOnce() -> u32) -> Result<(), String> {
    if matches!(cmd, Command::Upgrade { .. } | Command::TakeOver) {
        let me = me();
        return match peer_uid {
            Some(u) if u == 0 || u == me => Ok(()),
            Some(u) => Err(format!("Permission denied: upgrade is for root or uid {me}, not uid {u}.")),
            None => Err("Permission denied: cannot read the peer's credentials.".into()),
        };
    }
    if cmd.level() > level {
        // HAProxy's answer to a command above the connection's level.
        return Err("Permission denied".into());
    }
    Ok(())
}

async fn upgrade(shared: &Shared, binary: Option<String>) -> Reply {
    let binary = match binary {
        Some(b) => PathBuf::from(b),
        None => match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return Reply::error(format!("Cannot find this executable ({e}); name the binary.")),
        },
    };
    let (tx, rx) = oneshot::channel();
    let old = std::process::id();
    if shared.upgrade_tx.send(UpgradeMsg::Start(UpgradeRequest { binary, reply: tx })).await.is_err() {
        return Reply::error("The daemon is stopping; no upgrade.");
    }
    match tokio::time::timeout(UPGRADE_WAIT, rx).await {
        Ok(Ok(Ok(new))) => Reply::ok(
            format!("Success=1\n--\nupgraded: pid {old} handed over to pid {new}; pid {old} drains and exits"),
            json!({ "success": true, "old_pid": old, "new_pid": new }),
        ),
        Ok(Ok(Err(e))) => {
            let errors = error_lines(&e);
            let msg = format!("upgrade failed, pid {old} still serving");
            Reply::Err {
                text: format!("Success=0\n--\n{msg}:\n{}", errors.join("\n")),
                json: json!({ "success": false, "errorStr": msg, "errors": errors }),
            }
        }
        Ok(Err(_)) => Reply::error("The daemon stopped before the upgrade finished."),
        Err(_) => Reply::error(format!("The upgrade did not finish within {}s.", UPGRADE_WAIT.as_secs())),
    }
}

async fn reload(shared: &Shared, terminate: bool) -> Reply {
    let (tx, rx) = oneshot::channel();
    if shared.reload_tx.send(ReloadRequest { terminate, reply: tx }).await.is_err() {
        return Reply::error("The daemon is stopping; no reload.");
    }
    match tokio::time::timeout(RELOAD_WAIT, rx).await {
        Ok(Ok(Ok(Reloaded { generation, warnings }))) => {
            let mut text = format!("Success=1\n--\nconfiguration reloaded: generation {generation}");
            for w in &warnings {
                text.push_str(&format!("\nwarning: {w}"));
            }
            let mut j = json!({ "success": true, "generation": generation });
            if !warnings.is_empty() {
                j["warnings"] = json!(warnings);
            }
            Reply::ok(text, j)
        }
        Ok(Ok(Err(e))) => {
            let errors = error_lines(&e);
            let serving = shared.proxy.active.load().generation;
            let msg = format!("reload failed, still serving generation {serving}");
            Reply::Err {
                text: format!("Success=0\n--\n{msg}:\n{}", errors.join("\n")),
                json: json!({ "success": false, "errorStr": msg, "errors": errors }),
            }
        }
        Ok(Err(_)) => Reply::error("The daemon stopped before the reload finished."),
        Err(_) => Reply::error(format!("The reload did not finish within {}s.", RELOAD_WAIT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8]) -> Vec<Result<String, &'static str>> {
        let mut r = BufReader::new(input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut r, &mut buf).await.unwrap() {
                LineRead::Eof => return out,
                LineRead::TooLong => out.push(Err("too long")),
                LineRead::Line => out.push(Ok(String::from_utf8_lossy(&buf).into_owned())),
            }
        }
    }

    #[test]
    fn upgrade_goes_by_peer_uid_not_by_socket_level() {
        let cmd = |s: &str| crate::control::parse::parse(s).expect("parses").command;
        let me = 1000;
        for line in ["upgrade", "_upgrade"] {
            for level in [Level::User, Level::Operator, Level::Admin] {
                assert_eq!(permitted(&cmd(line), level, Some(me), || me), Ok(()), "{line} {level:?}");
                assert_eq!(permitted(&cmd(line), level, Some(0), || me), Ok(()), "{line} {level:?}");
                assert!(permitted(&cmd(line), level, Some(1001), || me).is_err(), "{line} {level:?}");
                assert!(permitted(&cmd(line), level, None, || me).is_err(), "{line} {level:?}");
            }
        }
        // Changes stay admin-only, even for root.
        for line in ["reload", "vip del 10.0.0.1", "disable server b/s", "set weight b/s 1"] {
            assert_eq!(permitted(&cmd(line), Level::Operator, Some(0), || me), Err("Permission denied".into()));
            assert_eq!(permitted(&cmd(line), Level::Admin, Some(1001), || me), Ok(()));
        }
        assert_eq!(permitted(&cmd("show info"), Level::User, None, || me), Ok(()));
    }

    #[tokio::test]
    async fn lines_are_bounded_and_the_stream_goes_on() {
        let mut input = b"show info\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nhelp\nlast");
        assert_eq!(
            lines(&input).await,
            vec![Ok("show info".into()), Err("too long"), Ok("help".into()), Ok("last".into())]
        );
    }

    #[test]
    fn refuses_to_replace_a_file_and_replaces_a_stale_socket() {
        let dir = std::env::temp_dir().join(format!("lbha-ctl-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = ControlSocketSettings {
            path: dir.join("run").join("lbha.sock"),
            mode: 0o600,
            level: crate::control::parse::Level::Admin,
            timeout: IDLE_TIMEOUT,
        };
        // Creates the directory and the socket with its mode.
        let s = ControlSocket::open(&settings).unwrap();
        let m = std::fs::metadata(&settings.path).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // A second one is refused while the first answers.
        assert!(matches!(ControlSocket::open(&settings), Err(ControlError::InUse(_))));
        // Dropped unserved, it removes its own file.
        drop(s);
        assert!(!settings.path.exists());
        // A file left by a dead process is stale and is replaced.
        drop(std::os::unix::net::UnixListener::bind(&settings.path).unwrap());
        assert!(settings.path.exists());
        let s2 = ControlSocket::open(&settings).unwrap();
        drop(s2);
        std::fs::write(&settings.path, "not a socket").unwrap();
        let e = ControlSocket::open(&settings).err().unwrap();
        assert!(matches!(e, ControlError::NotSocket(_)), "{e}");
        assert!(e.to_string().contains("lbha.sock"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
