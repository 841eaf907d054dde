//! The running daemon's side of the handover, driven by its serve loop: start the new executable
//! when the CLI asks, answer the new process's `_upgrade`, take everything back if it fails.

use super::wire::{Outgoing, Reader, WireError};
use super::{Message, PROTOCOL, Role, UpgradeError, decode, encode};
use crate::api::{ApiServer, ReloadFn};
use crate::config::snapshot::ApiSettings;
use crate::control::{facts, servers_state};
use crate::daemon::control::{self, Shared};
use crate::proxy::Proxy;
use crate::proxy::listener::Listeners;
use crate::vrrp::HandedOver;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

/// From start to `Ready`: the new process loads and checks its config and binds new addresses.
const READY_WAIT: Duration = Duration::from_secs(60);
/// From `Takeover` to `Done`: it starts its control socket, API and VRRP instances.
const DONE_WAIT: Duration = Duration::from_secs(30);
/// The whole upgrade, from the CLI's request: longer than the two above.
const UPGRADE_LIMIT: Duration = Duration::from_secs(120);
const SEND_WAIT: Duration = Duration::from_secs(10);

/// `upgrade [BINARY]` from a control connection; answered with the new pid or why not.
pub struct UpgradeRequest {
    pub binary: PathBuf,
    pub reply: oneshot::Sender<Result<u32, String>>,
}

/// A new process's `_upgrade` connection, handed to the serve loop.
pub struct Attach {
    pub stream: UnixStream,
    pub pid: Option<i32>,
}

pub enum UpgradeMsg {
    Start(UpgradeRequest),
    Attach(Attach),
}

/// The process started for an `upgrade` request, and who waits for the outcome.
struct Pending {
    child: tokio::process::Child,
    pid: u32,
    reply: oneshot::Sender<Result<u32, String>>,
    deadline: tokio::time::Instant,
}

/// What can happen to a started process while nothing else does.
pub enum ChildEvent {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
}

/// At most one upgrade at a time.
#[derive(Default)]
pub struct Upgrades {
    pending: Option<Pending>,
}

impl Upgrades {
    /// Starts `BINARY run -c CONFIG --upgrade-from SOCKET` (or `--haproxy-config`, as this one was) with this process's stdout and stderr
    /// (the same journal), or answers at once why not.
    pub fn start(&mut self, req: UpgradeRequest, source: &crate::daemon::Source, socket: &Path) {
        if let Some(p) = &self.pending {
            let _ = req.reply.send(Err(format!("an upgrade is already under way (new pid {})", p.pid)));
            return;
        }
        let mut cmd = tokio::process::Command::new(&req.binary);
        cmd.args(source.run_args()).arg("--upgrade-from").arg(socket).stdin(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = req.reply.send(Err(format!("cannot start {}: {e}", req.binary.display())));
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        tracing::info!("upgrade: started {} as pid {pid}", req.binary.display());
        let deadline = tokio::time::Instant::now() + UPGRADE_LIMIT;
        self.pending = Some(Pending { child, pid, reply: req.reply, deadline });
    }

    /// Resolves when the started process exits or runs out of time; never without one.
    pub async fn event(&mut self) -> ChildEvent {
        match self.pending.as_mut() {
            Some(p) => tokio::select! {
                st = p.child.wait() => ChildEvent::Exited(st),
                _ = tokio::time::sleep_until(p.deadline) => ChildEvent::TimedOut,
            },
            None => std::future::pending().await,
        }
    }

    pub async fn on_event(&mut self, ev: ChildEvent) {
        let Some(mut p) = self.pending.take() else { return };
        let why = match ev {
            ChildEvent::Exited(Ok(st)) => format!("the new process (pid {}) exited ({st}) before taking over", p.pid),
            ChildEvent::Exited(Err(e)) => format!("cannot watch the new process (pid {}): {e}", p.pid),
            ChildEvent::TimedOut => {
                let _ = p.child.kill().await;
                format!("the new process (pid {}) did not take over within {}s; killed", p.pid, UPGRADE_LIMIT.as_secs())
            }
        };
        tracing::error!("upgrade failed, still serving: {why}");
        crate::console::events::record(
            crate::console::events::Kind::Upgrade,
            "upgrade",
            format!("failed, still serving: {why}"),
            false,
        );
        let _ = p.reply.send(Err(why));
    }

    /// Answers whoever asked, after a handover with the process `pid` ended. A failed process we
    /// started is killed (it may hang) and reaped.
    pub async fn finish(&mut self, pid: Option<i32>, r: &Result<u32, String>) {
        let ours = self.pending.as_ref().is_some_and(|p| pid.is_some_and(|x| x as u32 == p.pid));
        if !ours {
            if let Err(e) = r {
                tracing::error!("upgrade by pid {pid:?} failed, still serving: {e}");
            }
            return;
        }
        let Some(mut p) = self.pending.take() else { return };
        if r.is_err() {
            let reaped = tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await;
            if reaped.is_err() {
                let _ = p.child.kill().await;
            }
        }
        if let Err(e) = r {
            tracing::error!("upgrade failed, still serving: {e}");
            crate::console::events::record(
                crate::console::events::Kind::Upgrade,
                "upgrade",
                format!("failed, still serving: {e}"),
                false,
            );
        }
        let _ = p.reply.send(r.clone());
    }
}

/// What the serve loop lends the handover.
pub struct Parts<'a> {
    pub proxy: &'a Arc<Proxy>,
    pub shared: &'a Shared,
    pub listeners: &'a mut Listeners,
    pub ctl: &'a mut control::Running,
    pub api: &'a mut Option<ApiServer>,
    pub api_settings: Option<&'a ApiSettings>,
    pub api_reload: &'a ReloadFn,
}

/// Runs the old side of the handover. Ok(new pid): the new process runs everything and this one
/// has stopped accepting. Err: this one serves as before.
pub async fn hand_over(att: Attach, p: Parts<'_>) -> Result<u32, String> {
    let peer = att.pid.map_or("?".to_string(), |x| x.to_string());
    let mut conv = Conv { stream: att.stream, reader: Reader::default() };
    // Held until sent: an accept loop may replace its socket meanwhile.
    let socks = p.listeners.sockets();
    let (addrs, fds): (Vec<_>, Vec<RawFd>) = socks.iter().map(|(a, l)| (*a, l.as_raw_fd())).unzip();
    tracing::info!("upgrade: handing {} listening socket(s) to pid {peer}", addrs.len());
    let hello = Message::Hello {
        protocol: PROTOCOL,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        listeners: addrs,
        servers_state: servers_text(p.proxy),
    };
    conv.send(&hello, fds).await.map_err(|e| format!("cannot send the sockets: {e}"))?;
    let next = match conv.recv(READY_WAIT).await {
        Ok(Message::Ready { vrrp }) => vrrp,
        Ok(Message::Abort { reason }) => return Err(reason),
        Ok(other) => return Err(format!("unexpected message from the new process: {other:?}")),
        Err(e) => return Err(format!("the new process did not get ready: {e}")),
    };
    tracing::info!("upgrade: pid {peer} accepts on the sockets; handing over control socket, API and VRRP");
    p.ctl.pause().await;
    let api_sock = match p.api.take() {
        Some(a) => Some(a.stop_keep_socket().await),
        None => None,
    };
    let handed = match p.shared.vrrp.lock().await.as_mut() {
        Some(m) => m.handover(&next).await,
        None => Vec::new(),
    };
    let mut fds = vec![p.ctl.socket().as_raw_fd()];
    fds.extend(api_sock.as_ref().map(|s| s.as_raw_fd()));
    let tables = tables_memfd(p.proxy);
    fds.extend(tables.as_ref().map(|f| f.as_raw_fd()));
    let takeover = Message::Takeover {
        control: p.ctl.path().to_path_buf(),
        api: api_sock.as_ref().and(p.api_settings.map(|s| s.bind)),
        vrrp: handed.iter().map(Role::from_handed).collect(),
        servers_state: servers_text(p.proxy),
        tables: tables.is_some(),
    };
    let outcome = match conv.send(&takeover, fds).await {
        Ok(()) => conv.recv(DONE_WAIT).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Message::Done { pid }) => {
            // systemd (NotifyAccess=main) follows the new process from here on.
            if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::MainPid(pid)]) {
                tracing::warn!("sd_notify failed: {e}");
            }
            p.listeners.close_all().await;
            tracing::info!("upgrade: pid {pid} runs everything; no longer accepting");
            Ok(pid)
        }
        other => {
            let why = match other {
                Ok(Message::Abort { reason }) => reason,
                Ok(m) => format!("unexpected message from the new process: {m:?}"),
                Err(e) => format!("the new process did not finish taking over: {e}"),
            };
            take_back(p, &handed, api_sock).await;
            Err(why)
        }
    }
}

/// The new process failed after the takeover began: serve the control socket and API again and
/// restart the VRRP instances in the roles they had.
async fn take_back(p: Parts<'_>, handed: &[HandedOver], api_sock: Option<OwnedFd>) {
    p.ctl.resume().await;
    if let (Some(fd), Some(settings)) = (api_sock, p.api_settings) {
        let l = std::net::TcpListener::from(fd);
        match ApiServer::start_on(settings, p.shared.config_path(), p.proxy.clone(), p.api_reload.clone(), l) {
            Ok(a) => *p.api = Some(a),
            Err(e) => tracing::error!("upgrade rollback: {e}"),
        }
    }
    let snap = p.proxy.active.load().snap.clone();
    let mut vrrp = p.shared.vrrp.lock().await;
    match crate::vrrp::Manager::start_as(&snap, super::super::live_fn(p.proxy), handed).await {
        Ok(m) => *vrrp = Some(m),
        Err(e) => tracing::error!("upgrade rollback: vrrp: {e}"),
    }
    tracing::warn!("upgrade rolled back: serving the control socket, API and VRRP again");
}

/// The stick tables in a memfd for the new process (None without tables, or when the memfd
/// cannot be made: the new process then refills from its peers only).
fn tables_memfd(proxy: &Proxy) -> Option<std::fs::File> {
    use std::io::{Seek, Write};
    let a = proxy.active.load();
    if a.snap.stick_tables.is_empty() {
        return None;
    }
    let bytes = crate::stktable::handover::dump(&a.rt.tables, &a.snap.stick_tables, a.rt.tables.now_ms());
    let made = nix::sys::memfd::memfd_create(c"lbha-tables", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(std::io::Error::from)
        .and_then(|fd| {
            let mut f = std::fs::File::from(fd);
            f.write_all(&bytes)?;
            f.rewind()?;
            Ok(f)
        });
    match made {
        Ok(f) => {
            tracing::info!("upgrade: handing over the stick tables ({} bytes)", bytes.len());
            Some(f)
        }
        Err(e) => {
            tracing::warn!("upgrade: cannot hand over the stick tables: {e}");
            None
        }
    }
}

fn servers_text(proxy: &Proxy) -> String {
    servers_state::format_marked(&facts::server_lines(&proxy.active.load(), None))
}

/// The framed conversation on the tokio side.
struct Conv {
    stream: UnixStream,
    reader: Reader,
}

impl Conv {
    async fn send(&self, msg: &Message, fds: Vec<RawFd>) -> Result<(), UpgradeError> {
        let mut out = Outgoing::new(encode(msg), fds)?;
        let fd = self.stream.as_raw_fd();
        let sending = async {
            while !out.done() {
                self.stream.async_io(Interest::WRITABLE, || out.step(fd)).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(SEND_WAIT, sending).await {
            Ok(r) => r.map_err(|e| UpgradeError::Wire(WireError::Io(e))),
            Err(_) => Err(UpgradeError::Timeout(SEND_WAIT.as_secs())),
        }
    }

    async fn recv(&mut self, limit: Duration) -> Result<Message, UpgradeError> {
        let fd = self.stream.as_raw_fd();
        let (stream, reader) = (&self.stream, &mut self.reader);
        let receiving = async {
            loop {
                if let Some(frame) = reader.frame()? {
                    return decode(&frame);
                }
                // `WouldBlock` goes back to tokio to wait for readiness; other outcomes come out.
                let stepped = stream
                    .async_io(Interest::READABLE, || match reader.step(fd) {
                        Err(WireError::Io(e)) => Err(e),
                        other => Ok(other),
                    })
                    .await;
                match stepped {
                    Ok(r) => r?,
                    Err(e) => return Err(UpgradeError::Wire(WireError::Io(e))),
                }
            }
        };
        match tokio::time::timeout(limit, receiving).await {
            Ok(r) => r,
            Err(_) => Err(UpgradeError::Timeout(limit.as_secs())),
        }
    }
}
