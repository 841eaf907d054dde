//! Parking idle HTTP/1 client connections. hyper keeps a read buffer and a header write buffer
//! (8 KiB each) for as long as its connection object lives, so a kept-alive client that waits
//! between requests would cost ~16 KiB where HAProxy's costs ~1 KiB. After [`PARK_AFTER`] with
//! nothing in progress the connection hands its socket back ([`Rewind`] keeps any byte already
//! read) and a new hyper connection is made when the next request starts.
//!
//! Parking needs hyper's `without_shutdown` API, which does not run upgrades: an HTTP/1 upgrade
//! (WebSocket, CONNECT) reaches the tunnel through [`ManualUpgrade`] instead.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// How long an HTTP/1 connection stays idle with its hyper state before it is parked. Long
/// enough that a busy keep-alive connection never pays for a new hyper connection per request.
pub const PARK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A socket with bytes to replay before reading from it again.
pub struct Rewind<T> {
    pre: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub fn new(inner: T) -> Self {
        Self { pre: Bytes::new(), inner }
    }

    /// Bytes to be read before the socket's own: `front` first, then what was already waiting.
    pub fn unread(&mut self, front: Bytes) {
        if front.is_empty() {
            return;
        }
        self.pre = if self.pre.is_empty() { front } else { [&front[..], &self.pre[..]].concat().into() };
    }

    pub fn has_unread(&self) -> bool {
        !self.pre.is_empty()
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped socket; bytes still to be replayed are dropped (check [`Rewind::has_unread`]).
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, b)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The client side of a tunnel, whichever way it was obtained.
pub trait ClientIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ClientIo for T {}

pub type ClientTunnel = Box<dyn ClientIo>;

/// An HTTP/1 connection's upgrade slot, put in each request's extensions. The proxy arms it
/// once the server agreed to the upgrade; when hyper has written that answer and let go of
/// the socket, the connection's task sends the socket down the armed channel.
#[derive(Clone, Default)]
pub struct ManualUpgrade(Arc<Mutex<Option<oneshot::Sender<ClientTunnel>>>>);

impl ManualUpgrade {
    /// No tunnel is waiting for the socket.
    pub fn unarmed(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Claims the socket once hyper is done with it.
    pub fn arm(&self) -> oneshot::Receiver<ClientTunnel> {
        let (tx, rx) = oneshot::channel();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Hands the socket to the tunnel if one was armed; gives it back otherwise.
    pub fn hand_over(&self, io: ClientTunnel) -> Option<ClientTunnel> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // A tunnel that already gave up drops the socket, which closes it.
            Some(tx) => {
                let _ = tx.send(io);
                None
            }
            None => Some(io),
        }
    }
}

/// Where the client side of a tunnel will come from: the HTTP/1 connection's own socket, or
/// hyper's upgrade of an HTTP/2 stream.
pub enum ClientSide {
    Manual(ManualUpgrade),
    Hyper(hyper::upgrade::OnUpgrade),
}

impl ClientSide {
    /// For a request that may open a tunnel.
    pub fn of<B>(req: &mut http::Request<B>) -> Self {
        match req.extensions_mut().remove::<ManualUpgrade>() {
            Some(m) => Self::Manual(m),
            None => Self::Hyper(hyper::upgrade::on(req)),
        }
    }

    /// Called once the server agreed, before its answer goes back to hyper (which must find the
    /// slot armed when it lets go of the socket); resolves to the client's socket.
    pub fn claim(self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ClientTunnel, String>> + Send>> {
        match self {
            Self::Manual(m) => {
                let rx = m.arm();
                Box::pin(
                    async move { rx.await.map_err(|_| "the client connection ended before the upgrade".to_string()) },
                )
            }
            Self::Hyper(up) => Box::pin(async move {
                up.await.map(|c| Box::new(hyper_util::rt::TokioIo::new(c)) as ClientTunnel).map_err(|e| e.to_string())
            }),
        }
    }
}

impl super::Proxy {
    /// Waits for `ready` (the client's next byte) on an idle connection, which keeps only its
    /// socket, one timer and the proxy's shared wake meanwhile: false at `deadline`, at a reload
    /// that ends the connection (terminating, or its bind removed), or, once a stop began, when
    /// nothing came within `drain_grace` (a request already on its way is still answered).
    /// None at `lot_at`, when the connection is to move to the lot (never once a stop began).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn idle_wait<F: std::future::Future<Output = bool>>(
        &self,
        ready: F,
        deadline: tokio::time::Instant,
        local: std::net::SocketAddr,
        born: u64,
        drain_grace: std::time::Duration,
        lot_at: Option<tokio::time::Instant>,
        sess: &super::sessions::Facts,
    ) -> Option<bool> {
        tokio::pin!(ready);
        let mut end = deadline;
        let mut lot_at = lot_at.filter(|l| *l < deadline);
        let sleep = tokio::time::sleep_until(lot_at.unwrap_or(end));
        tokio::pin!(sleep);
        let mut draining = false;
        loop {
            let wake = self.idle_wake.notified();
            tokio::pin!(wake);
            // Registered before the state is read, so a stop or reload in between still wakes it.
            wake.as_mut().enable();
            if !draining && *self.drain.borrow() {
                draining = true;
                lot_at = None;
                end = deadline.min(tokio::time::Instant::now() + drain_grace);
                sleep.as_mut().reset(end);
            }
            if self.reload_ends(born, local) || sess.is_killed() {
                return Some(false);
            }
            tokio::select! {
                r = &mut ready => return Some(r),
                () = &mut sleep => return if lot_at.is_some() { None } else { Some(false) },
                () = wake => {}
            }
        }
    }

    /// A reload since generation `born` ends a connection on `local`: a terminating one, or one
    /// whose config no longer binds `local` (as [`super::Proxy::expiry`] without grace).
    pub(super) fn reload_ends(&self, born: u64, local: std::net::SocketAddr) -> bool {
        let ev = *self.reloads.borrow();
        ev.generation > born && (ev.terminate || !self.active.load().binds.contains_key(&local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn replayed_bytes_come_first_then_the_socket() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"C").await.unwrap();
        let mut r = Rewind::new(b);
        r.unread(Bytes::from_static(b"B"));
        r.unread(Bytes::from_static(b"A"));
        assert!(r.has_unread());
        let mut got = [0u8; 3];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ABC");
        assert!(!r.has_unread());
    }

    #[tokio::test]
    async fn an_armed_upgrade_takes_the_socket_and_an_unarmed_one_gives_it_back() {
        let slot = ManualUpgrade::default();
        let (_a, b) = tokio::io::duplex(8);
        let io = slot.hand_over(Box::new(b)).expect("nothing armed: the socket comes back");
        let rx = slot.arm();
        assert!(slot.hand_over(io).is_none());
        assert!(rx.await.is_ok());
    }
}
