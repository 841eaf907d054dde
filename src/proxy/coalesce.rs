//! Write coalescing for HTTP/2 connections. h2's frame writer keeps at most one large DATA
//! frame queued and writes it out (one `writev`) before it encodes the next frame, so a batch of
//! responses of more than 256 bytes each costs one syscall per frame. HAProxy's mux fills its
//! output buffer with every stream's frames and sends them together; this wrapper does the same
//! for h2: writes land in a buffer (returned as written at once) and reach the socket in one
//! write. h2 flushes after every large frame, not only after a batch, so a flush is put off until
//! the connection has read again (h2 reads until the socket has nothing, then writes what its
//! streams queued meanwhile: a read marks the next batch); the task is woken so that it comes
//! back to that point. A full buffer, or `MAX_DEFERRED` flushes without a read, go out at once.
//! The buffer is released whenever it is empty again, so an idle connection keeps none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before they are written out even without a flush: four 16 KiB frames.
pub const DEFAULT_LIMIT: usize = 64 * 1024;
/// Flushes put off in a row without a read before one is honoured (so a connection that no
/// longer reads cannot keep its bytes, nor spin on wake-ups).
const MAX_DEFERRED: u32 = 16;

pub struct Coalesce<T> {
    inner: T,
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken (a partial write leaves the rest).
    sent: usize,
    limit: usize,
    /// Flushes put off since the last read.
    deferred: u32,
    read_since: bool,
}

impl<T> Coalesce<T> {
    pub fn new(inner: T, limit: usize) -> Self {
        Self { inner, buf: Vec::new(), sent: 0, limit: limit.max(1), deferred: 0, read_since: false }
    }

    /// Whether `len` more bytes fit the buffer (an empty buffer takes anything below the limit).
    fn fits(&self, len: usize) -> bool {
        self.buf.len() + len <= self.limit
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out what is gathered; the buffer's memory goes with it.
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

    fn poll_gather(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let len = bufs.iter().fold(0usize, |a, b| a.saturating_add(b.len()));
        if !self.fits(len) {
            ready!(self.poll_drain(cx))?;
        }
        if len >= self.limit {
            // Nothing gathered (drained above) and too large to gather: straight through.
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.limit);
        }
        for b in bufs {
            self.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.read_since = true;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_gather(cx, &[io::IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_gather(cx, bufs)
    }
    /// Vectored: h2 then hands over a frame head and its payload in one call.
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.sent < me.buf.len() {
            if me.read_since && me.deferred > 0 || me.deferred >= MAX_DEFERRED {
                me.deferred = 0;
            } else {
                // Same batch: the bytes wait for the rest of it; the wake brings h2 back to read
                // and then flush again.
                if me.deferred == 0 {
                    me.read_since = false;
                    cx.waker().wake_by_ref();
                }
                me.deferred += 1;
                return Poll::Ready(Ok(()));
            }
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that records each write call and takes at most `per_call` bytes of it.
    #[derive(Clone, Default)]
    struct Recorder {
        calls: Arc<Mutex<Vec<Vec<u8>>>>,
        per_call: usize,
        flushes: Arc<Mutex<usize>>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(if self.per_call == 0 { usize::MAX } else { self.per_call });
            self.calls.lock().unwrap().push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            *self.flushes.lock().unwrap() += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    fn write(c: &mut Coalesce<Recorder>, bufs: &[&[u8]]) -> usize {
        let slices: Vec<_> = bufs.iter().map(|b| io::IoSlice::new(b)).collect();
        match Pin::new(c).poll_write_vectored(&mut cx(), &slices) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("write: {other:?}"),
        }
    }

    fn flush(c: &mut Coalesce<Recorder>) {
        assert!(matches!(Pin::new(c).poll_flush(&mut cx()), Poll::Ready(Ok(()))));
    }

    fn read(c: &mut Coalesce<Recorder>) {
        let mut b = [0u8; 8];
        let _ = Pin::new(c).poll_read(&mut cx(), &mut ReadBuf::new(&mut b));
    }

    /// A batch's end as h2 has it: a flush, a read (nothing there), the flush after it.
    fn end_batch(c: &mut Coalesce<Recorder>) {
        flush(c);
        read(c);
        flush(c);
    }

    #[test]
    fn writes_until_a_flush_go_out_in_one_write() {
        let rec = Recorder::default();
        let mut c = Coalesce::new(rec.clone(), 100);
        assert_eq!(write(&mut c, &[b"head", b"payload"]), 11);
        assert_eq!(write(&mut c, &[b"more"]), 4);
        assert!(rec.calls.lock().unwrap().is_empty());
        // The flushes h2 makes within one batch wait for its end.
        flush(&mut c);
        flush(&mut c);
        assert!(rec.calls.lock().unwrap().is_empty());
        read(&mut c);
        flush(&mut c);
        assert_eq!(*rec.calls.lock().unwrap(), vec![b"headpayloadmore".to_vec()]);
        assert_eq!(*rec.flushes.lock().unwrap(), 1);
        // Empty again: the memory is given back.
        assert_eq!(c.buf.capacity(), 0);
    }

    #[test]
    fn a_full_buffer_is_written_before_more_is_gathered() {
        let rec = Recorder::default();
        let mut c = Coalesce::new(rec.clone(), 10);
        write(&mut c, &[b"aaaaaa"]);
        write(&mut c, &[b"bbbbbb"]);
        assert_eq!(*rec.calls.lock().unwrap(), vec![b"aaaaaa".to_vec()]);
        end_batch(&mut c);
        assert_eq!(rec.calls.lock().unwrap()[1], b"bbbbbb".to_vec());
    }

    #[test]
    fn what_is_larger_than_the_buffer_goes_straight_through_in_order() {
        let rec = Recorder::default();
        let mut c = Coalesce::new(rec.clone(), 8);
        write(&mut c, &[b"ab"]);
        // Gathered bytes first, then the large write itself (the recorder's default vectored
        // write takes the first slice).
        let n = write(&mut c, &[b"0123456789"]);
        assert_eq!(n, 10);
        assert_eq!(*rec.calls.lock().unwrap(), vec![b"ab".to_vec(), b"0123456789".to_vec()]);
    }

    #[test]
    fn partial_socket_writes_are_resumed_where_they_stopped() {
        let rec = Recorder { per_call: 3, ..Default::default() };
        let mut c = Coalesce::new(rec.clone(), 100);
        write(&mut c, &[b"abcdefgh"]);
        end_batch(&mut c);
        let calls = rec.calls.lock().unwrap().concat();
        assert_eq!(calls, b"abcdefgh".to_vec());
        assert_eq!(rec.calls.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_connection_that_stops_reading_still_gets_its_bytes_out() {
        let rec = Recorder::default();
        let mut c = Coalesce::new(rec.clone(), 100);
        write(&mut c, &[b"x"]);
        for _ in 0..MAX_DEFERRED {
            flush(&mut c);
        }
        assert!(rec.calls.lock().unwrap().is_empty());
        flush(&mut c);
        assert_eq!(*rec.calls.lock().unwrap(), vec![b"x".to_vec()]);
    }

    #[test]
    fn shutdown_writes_what_is_gathered_first() {
        let rec = Recorder::default();
        let mut c = Coalesce::new(rec.clone(), 100);
        write(&mut c, &[b"goaway"]);
        assert!(matches!(Pin::new(&mut c).poll_shutdown(&mut cx()), Poll::Ready(Ok(()))));
        assert_eq!(*rec.calls.lock().unwrap(), vec![b"goaway".to_vec()]);
    }
}
