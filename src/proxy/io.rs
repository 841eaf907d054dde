//! Client socket wrapper: a client that stops reading would otherwise pin a connection forever,
//! so a write that makes no progress for `timeout client` fails the connection. It also counts
//! every byte the frontend receives and sends (headers included), as HAProxy's bin/bout do.

use crate::state::Counters;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct StallGuard<T> {
    inner: T,
    counters: Arc<Counters>,
    limit: Duration,
    /// Made at the first stalled write: most connections never need it.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration, counters: Arc<Counters>) -> Self {
        Self { inner, counters, limit, sleep: None, armed: false }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Where the bytes written through this guard are counted.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A write is stalled: its timer runs.
    pub fn stalled_write(&self) -> bool {
        self.armed
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    fn wrote(&mut self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(n)) => {
                self.armed = false;
                self.counters.bytes_out.fetch_add(n as u64, Relaxed);
                Poll::Ready(Ok(n))
            }
            other => {
                self.armed = false;
                other
            }
        }
    }

    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = Instant::now() + self.limit;
        let rearm = !self.armed;
        self.armed = true;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if rearm {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.counters.bytes_in.fetch_add((buf.filled().len() - before) as u64, Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx).map(Err),
            other => self.wrote(other),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx).map(Err),
            other => self.wrote(other),
        }
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx).map(Err),
            other => {
                self.armed = false;
                other
            }
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
