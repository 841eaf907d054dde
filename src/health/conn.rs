//! A check's connection. Every probe is a new TCP connection (new source port, full handshake,
//! closed with a reset), opened the HAProxy way, and made cheap for a thousand probes a second:
//!
//! - one socket per server, kept between probes and disconnected with `connect(AF_UNSPEC)`
//!   (which resets the connection and releases the port, as `close` would) instead of being
//!   closed and created again: the socket and file allocation and teardown were a fifth of a
//!   probe's cost;
//! - speculative I/O as HAProxy's poller does it: on loopback and fast LANs the handshake has
//!   finished when `connect` returns, so its outcome is read (TCP) or the request sent (HTTP)
//!   at once, and the runtime's poller only sees a socket that has to wait;
//! - no quick ACK (HAProxy's `CONNECT_DELACK_ALWAYS`): the handshake's last ACK leaves with the
//!   HTTP request, and a TCP check answers the SYN-ACK with its reset.

use super::probe::ProbeError;
use nix::libc;
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use std::io::{self, ErrorKind, Read};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// A probe's hold on its prober's socket. However the probe ends (result, timeout, shutdown),
/// dropping the lease resets the connection and gives the socket back for the next probe, or
/// closes it if it cannot be disconnected.
pub struct Lease<'a> {
    home: &'a mut Option<Socket>,
    io: Io,
}

enum Io {
    Plain(Socket),
    /// Registered with the runtime's poller for this probe only: a disconnected socket reports
    /// hang-up, which the runtime would keep as a final state.
    Polled(AsyncFd<Socket>),
    Gone,
}

/// What a started connect has come to without waiting.
#[derive(Debug)]
pub enum Outcome {
    Connected,
    Failed(ProbeError),
    Pending,
}

impl<'a> Lease<'a> {
    /// Starts connecting `home`'s socket (made on first use) to `addr`.
    /// `source`: the address the socket is bound to when made (see `Source::towards`).
    pub fn connect(
        home: &'a mut Option<Socket>,
        addr: SocketAddr,
        source: Option<&crate::proxy::source::Source>,
    ) -> Result<Self, ProbeError> {
        let sock = match home.take() {
            Some(s) => s,
            None => new_socket(addr, source)?,
        };
        // Not sticky: a disconnect brings quick ACKs back.
        if let Err(e) = sock.set_tcp_quickack(false) {
            tracing::debug!(%addr, error = %e, "cannot clear TCP_QUICKACK on check socket");
        }
        let lease = Lease { home, io: Io::Plain(sock) };
        match lease.socket().connect(&SockAddr::from(addr)) {
            Ok(()) => Ok(lease),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(lease),
            Err(e) => Err(connect_error(e)),
        }
    }

    fn socket(&self) -> &Socket {
        match &self.io {
            Io::Plain(s) => s,
            Io::Polled(fd) => fd.get_ref(),
            Io::Gone => unreachable!("the socket leaves the lease only when it is dropped"),
        }
    }

    /// Looks at the handshake without waiting: a peer address means it completed, a pending
    /// socket error means it failed.
    pub fn outcome(&self) -> Outcome {
        outcome(self.socket())
    }

    /// Sends what the socket takes now; 0 while the connect is still in progress.
    pub fn try_send(&self, data: &[u8]) -> Result<usize, ProbeError> {
        match self.socket().send_with_flags(data, libc::MSG_NOSIGNAL) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            // The connect failed: the send reports (and clears) its error.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(ProbeError::L4Refused),
            Err(e) => Err(send_error(e)),
        }
    }

    /// Waits until the connect completes or fails.
    pub async fn connected(&mut self) -> Result<(), ProbeError> {
        let fd = self.polled()?;
        loop {
            let mut ready = fd.writable().await.map_err(l4_error)?;
            match outcome(fd.get_ref()) {
                Outcome::Connected => return Ok(()),
                Outcome::Failed(e) => return Err(e),
                Outcome::Pending => ready.clear_ready(),
            }
        }
    }

    /// Sends all of `data`, waiting for room as needed.
    pub async fn send_all(&mut self, mut data: &[u8]) -> Result<(), ProbeError> {
        if data.is_empty() {
            return Ok(());
        }
        let fd = self.polled()?;
        while !data.is_empty() {
            let mut ready = fd.writable().await.map_err(send_error)?;
            match ready.try_io(|fd| fd.get_ref().send_with_flags(data, libc::MSG_NOSIGNAL)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(send_error(e)),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Reads what has arrived, waiting for it; 0 at end of stream.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.polled().map_err(|e| io::Error::other(e.to_string()))?;
        loop {
            let mut ready = fd.readable().await?;
            if let Ok(r) = ready.try_io(|fd| {
                let mut sock: &Socket = fd.get_ref();
                sock.read(buf)
            }) {
                return r;
            }
        }
    }

    fn polled(&mut self) -> Result<&AsyncFd<Socket>, ProbeError> {
        if let Io::Plain(_) = self.io
            && let Io::Plain(sock) = std::mem::replace(&mut self.io, Io::Gone)
        {
            // SAFETY: the `AsyncFd` owns the socket, so its descriptor stays open while
            // registered; `into_inner` deregisters before anything closes it.
            match unsafe { AsyncFd::register(sock) } {
                Ok(fd) => self.io = Io::Polled(fd),
                Err(e) => {
                    let (sock, e) = e.into_parts();
                    self.io = Io::Plain(sock);
                    return Err(l4_error(e));
                }
            }
        }
        match &self.io {
            Io::Polled(fd) => Ok(fd),
            _ => Err(ProbeError::L4Error { detail: "check socket not registered".into() }),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let sock = match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(s) => s,
            Io::Polled(fd) => fd.into_inner(),
            Io::Gone => return,
        };
        match disconnect(&sock) {
            Ok(()) => *self.home = Some(sock),
            Err(e) => tracing::debug!(error = %e, "cannot disconnect check socket; closing it"),
        }
    }
}

fn outcome(sock: &Socket) -> Outcome {
    if sock.peer_addr().is_ok() {
        return Outcome::Connected;
    }
    match sock.take_error() {
        Ok(Some(e)) => Outcome::Failed(connect_error(e)),
        Ok(None) => Outcome::Pending,
        Err(e) => Outcome::Failed(l4_error(e)),
    }
}

fn new_socket(addr: SocketAddr, source: Option<&crate::proxy::source::Source>) -> Result<Socket, ProbeError> {
    let sock =
        Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP)).map_err(l4_error)?;
    if let Some(src) = source {
        src.bind_kept(&sock).map_err(l4_error)?;
    }
    // Should the socket be closed while connected (its checker stopped mid-probe), reset too.
    if let Err(e) = sock.set_linger(Some(Duration::ZERO)) {
        tracing::debug!(%addr, error = %e, "cannot set SO_LINGER on check socket");
    }
    // No TCP_NODELAY: a check writes its request once, so Nagle never delays it.
    Ok(sock)
}

/// `connect(AF_UNSPEC)`: resets an open connection (no TIME_WAIT left behind) and releases the
/// local port; the socket can then connect again. The error the reset leaves on the socket is
/// cleared by the next connect.
fn disconnect(sock: &Socket) -> io::Result<()> {
    let len = std::mem::size_of::<libc::sa_family_t>() as socket2::socklen_t;
    // SAFETY: an all-zero storage is a valid address of family AF_UNSPEC (0), and `len` is
    // within it.
    let unspec = unsafe { SockAddr::new(SockAddrStorage::zeroed(), len) };
    sock.connect(&unspec)
}

fn connect_error(e: io::Error) -> ProbeError {
    if e.kind() == ErrorKind::ConnectionRefused { ProbeError::L4Refused } else { l4_error(e) }
}

fn send_error(e: io::Error) -> ProbeError {
    ProbeError::L4Error { detail: format!("sending the request: {e}") }
}

fn l4_error(e: io::Error) -> ProbeError {
    ProbeError::L4Error { detail: e.to_string() }
}
