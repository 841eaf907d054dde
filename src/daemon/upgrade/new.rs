//! The new process's side of the handover: a blocking client, like the CLI, on the old daemon's
//! control socket. It runs before (and beside) the new process's own runtime.

use super::wire::{Outgoing, Reader};
use super::{Message, PROTOCOL, Role, UpgradeError, decode, encode};
use crate::vrrp::{HandedOver, Successor};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The old daemon answers `_upgrade` at once.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// Stopping VRRP instances is bounded by 3 s each, in parallel; the rest is quick.
const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// A handover in progress, from the new process's side.
pub struct Incoming {
    stream: UnixStream,
    reader: Reader,
    pub old_pid: u32,
    pub old_version: String,
    /// The old daemon's listening sockets by bind address; taken by [`Incoming::take_listeners`].
    listeners: HashMap<SocketAddr, OwnedFd>,
    /// Server state when the handover began (admin states, weights, up/down).
    pub servers_state: String,
}

/// What the old daemon handed over once it stopped its own control socket, API and VRRP.
pub struct Takeover {
    pub control_path: PathBuf,
    pub control: OwnedFd,
    pub api: Option<(SocketAddr, OwnedFd)>,
    pub vrrp: Vec<HandedOver>,
    /// Server state at the last moment (admin changes made while the new process started).
    pub servers_state: String,
    /// The stick tables, dumped by [`crate::stktable::handover::dump`].
    pub tables: Option<OwnedFd>,
}

impl Incoming {
    /// Connects, asks for the sockets and reads them with the server state.
    pub fn connect(path: &Path) -> Result<Incoming, UpgradeError> {
        let connect_err = |source| UpgradeError::Connect { path: path.to_path_buf(), source };
        let mut stream = UnixStream::connect(path).map_err(connect_err)?;
        stream.write_all(b"_upgrade\n").map_err(connect_err)?;
        let mut reader = Reader::default();
        let (msg, fds) = recv(&stream, &mut reader, HELLO_WAIT)?;
        let Message::Hello { protocol, pid, version, listeners, servers_state } = msg else {
            return Err(UpgradeError::Protocol(format!("expected hello, got {msg:?}")));
        };
        let mut inc =
            Incoming { stream, reader, old_pid: pid, old_version: version, listeners: HashMap::new(), servers_state };
        if protocol != PROTOCOL {
            let reason = format!(
                "the running lbha {} (pid {pid}) speaks handover protocol {protocol}, this one {PROTOCOL}",
                inc.old_version
            );
            inc.abort(&reason);
            return Err(UpgradeError::Aborted(reason));
        }
        if fds.len() != listeners.len() {
            let reason = format!("{} listening sockets announced, {} received", listeners.len(), fds.len());
            inc.abort(&reason);
            return Err(UpgradeError::Aborted(reason));
        }
        inc.listeners = listeners.into_iter().zip(fds).collect();
        Ok(inc)
    }

    /// The inherited listening sockets, by bind address.
    pub fn take_listeners(&mut self) -> HashMap<SocketAddr, OwnedFd> {
        std::mem::take(&mut self.listeners)
    }

    /// Tells the old daemon this process gives up (best effort: it notices the closed connection
    /// anyway).
    pub fn abort(&mut self, reason: &str) {
        if let Err(e) = send(&self.stream, &Message::Abort { reason: reason.to_string() }, vec![]) {
            tracing::debug!("cannot tell the old process why: {e}");
        }
    }

    /// Reports that this process accepts on the sockets and which VRRP instances it runs; waits
    /// for the old daemon to stop its control socket, API and VRRP instances and hand them over.
    pub fn ready(&mut self, vrrp: Vec<Successor>) -> Result<Takeover, UpgradeError> {
        send(&self.stream, &Message::Ready { vrrp }, vec![])?;
        let (msg, mut fds) = recv(&self.stream, &mut self.reader, TAKEOVER_WAIT)?;
        let (control_path, api, roles, servers_state, tables) = match msg {
            Message::Takeover { control, api, vrrp, servers_state, tables } => {
                (control, api, vrrp, servers_state, tables)
            }
            Message::Abort { reason } => return Err(UpgradeError::Aborted(reason)),
            other => return Err(UpgradeError::Protocol(format!("expected takeover, got {other:?}"))),
        };
        let want = 1 + usize::from(api.is_some()) + usize::from(tables);
        if fds.len() != want {
            return Err(UpgradeError::Protocol(format!("takeover with {} descriptors, expected {want}", fds.len())));
        }
        let tables = if tables { fds.pop() } else { None };
        let api = api.and_then(|a| fds.pop().map(|fd| (a, fd)));
        let control = fds.pop().ok_or_else(|| UpgradeError::Protocol("no control socket".into()))?;
        let vrrp = roles.iter().filter_map(Role::to_handed).collect();
        Ok(Takeover { control_path, control, api, vrrp, servers_state, tables })
    }

    /// Everything runs here now; the old daemon stops accepting and drains.
    pub fn done(&mut self) -> Result<(), UpgradeError> {
        send(&self.stream, &Message::Done { pid: std::process::id() }, vec![])
    }
}

fn send(stream: &UnixStream, msg: &Message, fds: Vec<std::os::fd::RawFd>) -> Result<(), UpgradeError> {
    stream.set_write_timeout(Some(HELLO_WAIT)).map_err(super::wire::WireError::Io)?;
    let mut out = Outgoing::new(encode(msg), fds)?;
    while !out.done() {
        out.step(stream.as_raw_fd()).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                UpgradeError::Timeout(HELLO_WAIT.as_secs())
            }
            _ => UpgradeError::Wire(e.into()),
        })?;
    }
    Ok(())
}

fn recv(stream: &UnixStream, reader: &mut Reader, limit: Duration) -> Result<(Message, Vec<OwnedFd>), UpgradeError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(frame) = reader.frame()? {
            let msg = decode(&frame)?;
            return Ok((msg, frame.fds));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpgradeError::Timeout(limit.as_secs()));
        }
        stream.set_read_timeout(Some(left)).map_err(super::wire::WireError::Io)?;
        match reader.step(stream.as_raw_fd()) {
            Ok(()) => {}
            Err(super::wire::WireError::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
