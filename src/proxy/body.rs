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

/// A client request's body: hyper's, or none for a request the lean HTTP/1 server path
/// (`h1server`) read itself (it takes only requests without a body).
#[derive(Debug)]
pub enum ReqBody {
    Hyper(hyper::body::Incoming),
    Empty,
    /// What `wait-for-body` read before the body's end, then the rest of hyper's body, then the
    /// trailers the wait read (they end hyper's body: the server still gets them). Boxed: every
    /// request's future holds a `ReqBody`, few hold this one.
    Prefixed(Box<(Option<Bytes>, hyper::body::Incoming, Option<http::HeaderMap>)>),
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    /// Trailers come without the fields that may not reach a server (`trailers::forwardable`).
    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = match self.get_mut() {
            ReqBody::Hyper(b) => ready!(Pin::new(b).poll_frame(cx)),
            ReqBody::Empty => None,
            ReqBody::Prefixed(p) => match p.0.take() {
                Some(h) => Some(Ok(Frame::data(h))),
                None => match ready!(Pin::new(&mut p.1).poll_frame(cx)) {
                    None => p.2.take().map(|t| Ok(Frame::trailers(t))),
                    other => other,
                },
            },
        };
        Poll::Ready(frame.map(|r| {
            r.map(|f| match f.into_trailers() {
                Ok(mut t) => {
                    super::trailers::keep_forwardable(&mut t);
                    Frame::trailers(t)
                }
                Err(f) => f,
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Hyper(b) => b.is_end_stream(),
            ReqBody::Empty => true,
            ReqBody::Prefixed(p) => p.0.is_none() && p.2.is_none() && p.1.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Hyper(b) => b.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Prefixed(p) => {
                let n = p.0.as_ref().map_or(0, |h| h.len() as u64);
                let r = p.1.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + n);
                // Trailers to come: no exact length, so the server gets the body chunked (a
                // `Content-Length` would leave no room for them).
                if let Some(u) = r.upper().filter(|_| p.2.is_none()) {
                    h.set_upper(u + n);
                }
                h
            }
        }
    }
}

impl ReqBody {
    /// Puts what a body wait read back in front of the rest of the body, with the trailers
    /// that ended the read (if any) behind it, so the server gets the body as it came.
    pub fn put_back(&mut self, bytes: Bytes, trailers: Option<http::HeaderMap>) {
        *self = match std::mem::replace(self, ReqBody::Empty) {
            ReqBody::Hyper(rest) => ReqBody::Prefixed(Box::new((Some(bytes), rest, trailers))),
            // A second wait read the first one's bytes (and trailers) again: they go back.
            ReqBody::Prefixed(mut p) => {
                p.0 = Some(bytes);
                if trailers.is_some() {
                    p.2 = trailers;
                }
                ReqBody::Prefixed(p)
            }
            ReqBody::Empty => ReqBody::Empty,
        };
    }

    /// The trailers a body wait read, when they are still to be sent.
    pub fn read_trailers(&self) -> Option<&http::HeaderMap> {
        match self {
            ReqBody::Prefixed(p) => p.2.as_ref(),
            _ => None,
        }
    }
}

/// A response body part of which `http-response wait-for-body` read: those bytes first, then
/// the frame that ended the read (trailers, or the server's error), then the rest.
pub struct HeldFront {
    head: Option<Bytes>,
    pending: Option<Result<Frame<Bytes>, BoxError>>,
    rest: ProxyBody,
}

impl HeldFront {
    pub fn new(head: Bytes, pending: Option<Result<Frame<Bytes>, BoxError>>, rest: ProxyBody) -> HeldFront {
        HeldFront { head: (!head.is_empty()).then_some(head), pending, rest }
    }
}

impl Body for HeldFront {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let me = self.get_mut();
        if let Some(h) = me.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(h))));
        }
        if let Some(p) = me.pending.take() {
            return Poll::Ready(Some(p));
        }
        Pin::new(&mut me.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.pending.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let n = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let r = self.rest.size_hint();
        let mut h = SizeHint::new();
        h.set_lower(r.lower() + n);
        if let Some(u) = r.upper() {
            h.set_upper(u + n);
        }
        h
    }
}

/// How [`read_until`] stopped.
#[derive(Debug)]
pub enum ReadEnd<E> {
    /// The body's end.
    End,
    /// `enough` bytes came before the end.
    Enough,
    /// Trailers: they end the body.
    Trailers(http::HeaderMap),
    /// The body failed.
    Error(E),
    /// None of these came by the deadline.
    Timeout,
}

/// Reads `body` into a buffer until its end, `enough` bytes, trailers, an error or `deadline`,
/// whichever comes first: the one read loop of `wait-for-body` on requests and responses, whose
/// callers each decide what the way it ended means (a response's error follows its bytes, a
/// request's is a 400; the deadline is a 504 or a 408).
pub async fn read_until<B>(body: &mut B, enough: usize, deadline: Instant) -> (bytes::BytesMut, ReadEnd<B::Error>)
where
    B: Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut out = bytes::BytesMut::new();
    let end = loop {
        if body.is_end_stream() {
            break ReadEnd::End;
        }
        if out.len() >= enough {
            break ReadEnd::Enough;
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break ReadEnd::Timeout,
            Ok(None) => break ReadEnd::End,
            Ok(Some(Err(e))) => break ReadEnd::Error(e),
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => out.extend_from_slice(&data),
                // http-body 1 has no third kind of frame; one would be skipped, as hyper does.
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        break ReadEnd::Trailers(t);
                    }
                }
            },
        }
    };
    (out, end)
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("no data for {0:?} while streaming a body")]
    Idle(Duration),
    #[error("request body slower than {0} bytes/s")]
    TooSlow(u32),
}

/// When a request body last moved, so `timeout server` counts the server's inactivity from there
/// instead of running over the whole upload.
#[derive(Debug)]
pub struct Progress {
    base: Instant,
    /// Milliseconds after `base` of the last frame.
    last_ms: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Self { base: Instant::now(), last_ms: AtomicU64::new(0) }
    }
    fn touch(&self) {
        self.last_ms.store(self.base.elapsed().as_millis() as u64, Relaxed);
    }
    pub fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Relaxed))
    }
}

/// The guard against request bodies trickled to hold a connection (one byte a second keeps any
/// idle timeout happy): over each `window` of time spent waiting for the client, at least
/// `rate × window` bytes must arrive. Time the server side does not ask for data is not counted.
#[derive(Debug, Clone, Copy)]
pub struct RateFloor {
    rate: u32,
    window: Duration,
    waited: Duration,
    bytes: u64,
}

impl RateFloor {
    pub fn new(rate: u32, window: Duration) -> Self {
        Self { rate, window, waited: Duration::ZERO, bytes: 0 }
    }

    /// Records `n` bytes that came after waiting `waited` for them; false once a full window
    /// closed under the floor.
    pub fn record(&mut self, n: u64, waited: Duration) -> bool {
        self.waited += waited;
        self.bytes += n;
        if self.waited < self.window {
            return true;
        }
        let need = u128::from(self.rate) * self.waited.as_millis() / 1000;
        let ok = u128::from(self.bytes) >= need;
        (self.waited, self.bytes) = (Duration::ZERO, 0);
        ok
    }
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
    /// Set when it fails because the peer went away, by a reset or by closing before the body's
    /// end (a client abort, not a bad body).
    reset: Option<Arc<AtomicBool>>,
    progress: Option<Arc<Progress>>,
    floor: Option<RateFloor>,
    /// Since when the inner body has had nothing to give (kept only with a floor).
    pending_since: Option<Instant>,
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
            reset: None,
            progress: None,
            floor: None,
            pending_since: None,
            _guards: Vec::new(),
        }
    }
    /// Marks `progress` at every frame.
    pub fn progress(mut self, p: Arc<Progress>) -> Self {
        self.progress = Some(p);
        self
    }
    /// Fails the body when it comes slower than `rate` bytes/s (0: never).
    pub fn min_rate(mut self, rate: u32, window: Duration) -> Self {
        self.floor = (rate > 0).then(|| RateFloor::new(rate, window));
        self
    }
    pub fn on_end(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_end = Some(Box::new(f));
        self
    }
    pub fn flag_failure(mut self, flag: Arc<AtomicBool>) -> Self {
        self.failed = Some(flag);
        self
    }
    /// `flag` is set when the body fails because the peer reset or closed the connection.
    pub fn flag_reset(mut self, flag: Arc<AtomicBool>) -> Self {
        self.reset = Some(flag);
        self
    }
    /// Keeps session gauges open until the body is done or dropped.
    pub fn hold(mut self, guards: Vec<crate::state::SessionGuard>) -> Self {
        self._guards = guards;
        self
    }
    fn fail(&mut self, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(f) = &self.failed {
            f.store(true, Relaxed);
        }
        self.on_end = None;
        Poll::Ready(Some(Err(e)))
    }
    fn add(&self, n: u64) {
        for c in &self.counters {
            let field: &AtomicU64 = if self.inbound { &c.bytes_in } else { &c.bytes_out };
            field.fetch_add(n, Relaxed);
        }
    }
}

/// Whether an error is, or comes from, the peer leaving: a reset, or the connection's end
/// before the body's (hyper's `UnexpectedEof`: a client that closed halfway, which HAProxy
/// treats as the abort a reset is, `CD` with no answer).
fn is_gone(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ConnectionReset | ConnectionAborted | UnexpectedEof)
        {
            return true;
        }
        cur = x.source();
    }
    false
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
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                this.add(n);
                let now = Instant::now();
                this.deadline = Some(now + this.idle);
                if let Some(p) = &this.progress {
                    p.touch();
                }
                if let Some(floor) = &mut this.floor {
                    let waited = this.pending_since.take().map_or(Duration::ZERO, |t| now - t);
                    if !floor.record(n, waited) {
                        let rate = floor.rate;
                        return this.fail(Box::new(BodyError::TooSlow(rate)));
                    }
                }
                if this.inner.is_end_stream()
                    && let Some(f) = this.on_end.take()
                {
                    f();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = e.into();
                if let Some(f) = &this.reset
                    && is_gone(&*e)
                {
                    f.store(true, Relaxed);
                }
                this.fail(e)
            }
            Poll::Ready(None) => {
                if let Some(f) = this.on_end.take() {
                    f();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                // The idle clock starts at the first poll, not when the body is built (read
                // here, not before the inner poll: a body whose frame is ready at once, most of
                // them, reads the clock once).
                let deadline = match this.deadline {
                    Some(d) => d,
                    None => *this.deadline.insert(Instant::now() + this.idle),
                };
                if this.floor.is_some() && this.pending_since.is_none() {
                    this.pending_since = Some(Instant::now());
                }
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
                let idle = this.idle;
                this.fail(Box::new(BodyError::Idle(idle)))
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A reset or an early end found through the error's sources (hyper wraps the socket's
    /// error); other failures are not the peer leaving.
    #[test]
    fn a_peer_gone_is_found_in_the_error_chain() {
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "wrapped")
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let reset = Wrap(std::io::ErrorKind::ConnectionReset.into());
        assert!(is_gone(&reset));
        assert!(is_gone(&Wrap(std::io::ErrorKind::UnexpectedEof.into())), "closed before the body's end");
        assert!(!is_gone(&Wrap(std::io::ErrorKind::InvalidData.into())));
        assert!(!is_gone(&BodyError::TooSlow(1)));
        assert!(!is_gone(&BodyError::Idle(S)));
    }

    #[test]
    fn a_body_at_the_floor_or_above_passes_every_window() {
        let mut f = RateFloor::new(100, 3 * S);
        for _ in 0..30 {
            assert!(f.record(100, S), "100 bytes a second meets 100 bytes/s");
        }
    }

    #[test]
    fn a_trickled_body_fails_when_its_window_closes() {
        let mut f = RateFloor::new(100, 3 * S);
        assert!(f.record(1, S));
        assert!(f.record(1, S), "judged only once a whole window has been waited");
        assert!(!f.record(1, S), "3 bytes in 3 s is under 100 bytes/s");
    }

    #[test]
    fn a_fast_start_does_not_cover_a_later_trickle() {
        let mut f = RateFloor::new(100, 2 * S);
        assert!(f.record(1_000_000, 2 * S));
        assert!(f.record(1, S));
        assert!(!f.record(1, S), "each window stands on its own");
    }

    #[test]
    fn time_not_spent_waiting_for_the_client_does_not_count() {
        let mut f = RateFloor::new(100, 2 * S);
        // Frames that were ready when asked for (the server was the slow side) add no time.
        for _ in 0..1000 {
            assert!(f.record(1, Duration::ZERO));
        }
    }

    /// A body of these frames, then (with `fail`) an error, or (with `stall`) none ever again.
    fn frames(parts: &[&'static [u8]], trailers: bool, fail: bool, stall: bool) -> ProxyBody {
        use futures_util::StreamExt;
        use http_body_util::BodyExt;
        let mut f: Vec<Result<Frame<Bytes>, BoxError>> =
            parts.iter().map(|p| Ok(Frame::data(Bytes::from_static(p)))).collect();
        if trailers {
            let mut t = http::HeaderMap::new();
            t.insert("x-sum", http::HeaderValue::from_static("1"));
            f.push(Ok(Frame::trailers(t)));
        }
        if fail {
            f.push(Err("broken".into()));
        }
        let s = futures_util::stream::iter(f);
        if stall {
            http_body_util::StreamBody::new(s.chain(futures_util::stream::pending())).boxed_unsync()
        } else {
            http_body_util::StreamBody::new(s).boxed_unsync()
        }
    }

    #[tokio::test]
    async fn read_until_stops_at_the_end_enough_trailers_an_error_or_the_deadline() {
        let later = Instant::now() + Duration::from_secs(3600);
        let (b, end) = read_until(&mut frames(&[b"ab", b"cd"], false, false, false), 100, later).await;
        assert_eq!((&b[..], matches!(end, ReadEnd::End)), (&b"abcd"[..], true));
        // A body that says it is over is not polled again (`Full` after its one frame).
        let mut full = http_body_util::Full::new(Bytes::from_static(b"xyz"));
        let (b, end) = read_until(&mut full, 100, later).await;
        assert_eq!((&b[..], matches!(end, ReadEnd::End)), (&b"xyz"[..], true));
        // Enough: checked between frames, so a frame is read whole.
        let mut body = frames(&[b"abc", b"def", b"gh"], true, false, false);
        let (b, end) = read_until(&mut body, 2, later).await;
        assert_eq!((&b[..], matches!(end, ReadEnd::Enough)), (&b"abc"[..], true));
        // The rest of the same body: its trailers end the read.
        let (b, end) = read_until(&mut body, 100, later).await;
        let ReadEnd::Trailers(t) = end else { panic!("{end:?}") };
        assert_eq!((&b[..], t["x-sum"].as_bytes()), (&b"defgh"[..], &b"1"[..]));
        let (b, end) = read_until(&mut frames(&[b"ab"], false, true, false), 100, later).await;
        let ReadEnd::Error(e) = end else { panic!("{end:?}") };
        assert_eq!((&b[..], e.to_string()), (&b"ab"[..], "broken".to_string()));
        // A body that stalls: the deadline (already past: no clock needed) ends the read, after
        // what was ready.
        let (b, end) = read_until(&mut frames(&[b"ab"], false, false, true), 100, Instant::now()).await;
        assert_eq!((&b[..], matches!(end, ReadEnd::Timeout)), (&b"ab"[..], true));
        let (b, end) = read_until(&mut frames(&[], false, false, true), 0, Instant::now()).await;
        assert_eq!((&b[..], matches!(end, ReadEnd::Enough)), (&b""[..], true), "enough before any frame");
    }
}
