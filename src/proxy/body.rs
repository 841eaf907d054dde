//! Body wrappers that stream (never buffer whole), count bytes and enforce idle timeouts.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body that is already complete (error pages, `http_request return`, stats).
pub fn full(b: impl Into<Bytes>) -> ProxyBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> ProxyBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("no data for {0:?} while streaming a body")]
    Idle(Duration),
}

/// Byte counters a body feeds as it streams.
pub type ByteCounters = Vec<Arc<crate::state::Counters>>;

/// Streams an inner body with an idle timeout between frames, adds the bytes to counters, and runs
/// `on_end` once the last frame has passed (used to hand a server connection back to the pool).
pub struct Metered<B> {
    inner: B,
    idle: Duration,
    /// When the idle time runs out; moved forward by every frame.
    deadline: Option<Instant>,
    /// Armed only when the inner body first has nothing to give: a body that is ready whenever
    /// it is polled (the common small response) never touches the timer wheel.
    sleep: Option<Pin<Box<Sleep>>>,
    counters: ByteCounters,
    inbound: bool,
    on_end: Option<Box<dyn FnOnce() + Send>>,
    /// Set when the inner body fails, so the caller can tell a client fault from a server fault.
    failed: Option<Arc<AtomicBool>>,
    _guards: Vec<crate::state::SessionGuard>,
}

impl<B> Metered<B> {
    pub fn new(inner: B, idle: Duration, counters: ByteCounters, inbound: bool) -> Self {
        Self {
            inner,
            idle,
            deadline: None,
            sleep: None,
            counters,
            inbound,
            on_end: None,
            failed: None,
            _guards: Vec::new(),
        }
    }
    pub fn on_end(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_end = Some(Box::new(f));
        self
    }
    pub fn flag_failure(mut self, flag: Arc<AtomicBool>) -> Self {
        self.failed = Some(flag);
        self
    }
    /// Keeps session gauges open until the body is done or dropped.
    pub fn hold(mut self, guards: Vec<crate::state::SessionGuard>) -> Self {
        self._guards = guards;
        self
    }
    fn add(&self, n: u64) {
        for c in &self.counters {
            let field: &AtomicU64 = if self.inbound { &c.bytes_in } else { &c.bytes_out };
            field.fetch_add(n, Relaxed);
        }
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        // The idle clock starts at the first poll, not when the body is built.
        let deadline = *this.deadline.get_or_insert_with(|| Instant::now() + this.idle);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.add(d.len() as u64);
                }
                this.deadline = Some(Instant::now() + this.idle);
                if this.inner.is_end_stream()
                    && let Some(f) = this.on_end.take()
                {
                    f();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(f) = &this.failed {
                    f.store(true, Relaxed);
                }
                this.on_end = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                if let Some(f) = this.on_end.take() {
                    f();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let sleep = match &mut this.sleep {
                    Some(s) => {
                        if s.deadline() != deadline {
                            s.as_mut().reset(deadline);
                        }
                        s
                    }
                    None => this.sleep.insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                ready!(sleep.as_mut().poll(cx));
                if let Some(f) = &this.failed {
                    f.store(true, Relaxed);
                }
                this.on_end = None;
                Poll::Ready(Some(Err(Box::new(BodyError::Idle(this.idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
