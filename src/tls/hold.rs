//! Holds what a TLS server writes during its handshake until the connection next writes, reads
//! or closes (a flush does not send it). A full TLS 1.3 handshake ends with rustls queueing the session tickets as it reads
//! the client's Finished, and tokio-rustls flushes them at once: a `writev` of their own right
//! before the response's. Held here, they leave in the response's `writev` (one syscall and one
//! loopback/peer wake-up fewer per new connection). Nothing waits on the peer with bytes held:
//! a read first writes them out, as does a shutdown, and a drop tries once (an alert after a
//! failed handshake still goes out).
//!
//! The flight of the handshake itself is held only until the read that follows it, so it
//! leaves exactly when it did before.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct Held<T: AsyncWrite + Unpin> {
    inner: T,
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    sent: usize,
    /// Writes and flushes are gathered (the handshake); after [`Held::release`] they go through.
    holding: bool,
}

impl<T: AsyncWrite + Unpin> Held<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, buf: Vec::new(), sent: 0, holding: true }
    }

    /// The handshake is over: from now on writes go out, what is held first and in the same
    /// vectored write.
    pub fn release(&mut self) {
        self.holding = false;
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// Writes out what is held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// `bufs` after what is held, in one vectored write; counts only `bufs`' bytes as written.
    fn poll_write_after(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        while !self.pending().is_empty() {
            let (inner, held) = (&mut self.inner, &self.buf[self.sent..]);
            let mut all = Vec::with_capacity(bufs.len() + 1);
            all.push(io::IoSlice::new(held));
            all.extend(bufs.iter().map(|b| io::IoSlice::new(b)));
            let n = ready!(Pin::new(inner).poll_write_vectored(cx, &all))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let held = self.pending().len();
            if n >= held {
                self.buf = Vec::new();
                self.sent = 0;
                return Poll::Ready(Ok(n - held));
            }
            self.sent += n;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Held<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // Never wait for the peer with bytes it may be waiting for.
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Held<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holding {
            let len = bufs.iter().map(|b| b.len()).sum();
            this.buf.reserve(len);
            for b in bufs {
                this.buf.extend_from_slice(b);
            }
            return Poll::Ready(Ok(len));
        }
        this.poll_write_after(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Leaves what is held: those bytes are not the flushing caller's (hyper flushes before it
    /// has written anything, which would send the tickets alone again). The caller's own bytes
    /// are never held after [`Held::release`].
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.holding {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncWrite + Unpin> Drop for Held<T> {
    /// One write attempt, without waiting: an alert or the tickets of a connection closed
    /// before it wrote or read again.
    fn drop(&mut self) {
        if !self.pending().is_empty() {
            let mut cx = Context::from_waker(Waker::noop());
            let (inner, rest) = (&mut self.inner, &self.buf[self.sent..]);
            let _ = Pin::new(inner).poll_write(&mut cx, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Records each write call it gets (one entry per syscall it stands for).
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        /// Bytes it takes per call at most (a short write).
        cap: Option<usize>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            all.truncate(self.cap.unwrap_or(usize::MAX));
            let n = all.len();
            self.writes.lock().unwrap().push(all);
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.writes.lock().unwrap().push(b"<shutdown>".to_vec());
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            self.writes.lock().unwrap().push(b"<read>".to_vec());
            buf.put_slice(b"x");
            Poll::Ready(Ok(()))
        }
    }

    fn log(r: &Recorder) -> Vec<String> {
        r.writes.lock().unwrap().iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect()
    }

    #[tokio::test]
    async fn the_flight_leaves_before_a_read_and_the_tickets_with_the_response() {
        let r = Recorder::default();
        let mut h = Held::new(r.clone());
        h.write_all(b"flight").await.unwrap();
        h.flush().await.unwrap();
        assert!(log(&r).is_empty(), "held through the handshake's flush");
        let mut b = [0u8; 1];
        h.read_exact(&mut b).await.unwrap();
        assert_eq!(log(&r), ["flight", "<read>"], "written out before waiting for the peer");
        h.write_all(b"tickets").await.unwrap();
        h.flush().await.unwrap();
        h.release();
        h.write_all(b"response").await.unwrap();
        h.flush().await.unwrap();
        h.write_all(b"more").await.unwrap();
        h.shutdown().await.unwrap();
        assert_eq!(log(&r), ["flight", "<read>", "ticketsresponse", "more", "<shutdown>"]);
    }

    #[tokio::test]
    async fn after_release_a_read_or_a_shutdown_writes_what_is_held_and_a_flush_does_not() {
        for how in ["read", "shutdown"] {
            let r = Recorder::default();
            let mut h = Held::new(r.clone());
            h.write_all(b"tickets").await.unwrap();
            h.release();
            h.flush().await.unwrap();
            assert!(log(&r).is_empty(), "a flush of nothing of the caller's sends nothing");
            match how {
                "read" => {
                    h.read_exact(&mut [0u8; 1]).await.unwrap();
                }
                _ => h.shutdown().await.unwrap(),
            }
            assert_eq!(log(&r)[0], "tickets", "{how}");
        }
    }

    #[tokio::test]
    async fn short_writes_keep_the_order_and_count_only_the_callers_bytes() {
        let r = Recorder { cap: Some(4), ..Default::default() };
        let mut h = Held::new(r.clone());
        h.write_all(b"0123456789").await.unwrap();
        h.release();
        let n = h.write(b"abcdef").await.unwrap();
        assert_eq!(n, 2, "the held bytes are not counted as the caller's");
        h.write_all(b"cdef").await.unwrap();
        assert_eq!(log(&r).concat(), "0123456789abcdef");
    }

    #[tokio::test]
    async fn a_drop_tries_to_send_what_is_held() {
        let r = Recorder::default();
        let mut h = Held::new(r.clone());
        h.write_all(b"alert").await.unwrap();
        drop(h);
        assert_eq!(log(&r), ["alert"]);
    }
}
