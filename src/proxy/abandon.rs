//! A server connection whose request the client abandoned halfway through its body ends with a
//! reset, as HAProxy 2.6 aborts it, rather than with a FIN after a truncated body. The request's
//! body wrapper (`body::Metered`) raises the request's flag before its error reaches hyper, so
//! the flag is up when hyper's connection task drops the socket.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The flag of the request a connection carries now (one per connection, shared by its
/// [`AbortIo`] and its sender).
#[derive(Clone, Debug, Default)]
pub struct Abandon(Arc<Mutex<Option<Arc<AtomicBool>>>>);

impl Abandon {
    /// The request about to be sent: `flag` rises if its client abandons it.
    pub fn carry(&self, flag: Option<Arc<AtomicBool>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = flag;
    }

    fn raised(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|f| f.load(Relaxed))
    }
}

/// A server socket that resets instead of closing when its request was abandoned.
pub struct AbortIo {
    io: TcpStream,
    abandon: Abandon,
}

impl AbortIo {
    pub fn new(io: TcpStream, abandon: Abandon) -> Self {
        AbortIo { io, abandon }
    }
}

impl Drop for AbortIo {
    fn drop(&mut self) {
        if self.abandon.raised() {
            let _ = socket2::SockRef::from(&self.io).set_linger(Some(std::time::Duration::ZERO));
        }
    }
}

impl AsyncRead for AbortIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // An abandoned request's socket is not shut down cleanly first: the reset is the end.
        if self.abandon.raised() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_of_the_request_carried_now_decides() {
        let a = Abandon::default();
        assert!(!a.raised(), "no request");
        let f = Arc::new(AtomicBool::new(false));
        a.carry(Some(f.clone()));
        assert!(!a.raised());
        f.store(true, Relaxed);
        assert!(a.raised());
        a.carry(None);
        assert!(!a.raised(), "the next request, without a body");
    }
}
