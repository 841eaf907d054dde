//! Idle client connections: one that has no request (HTTP/2: no stream) in progress is closed on
//! HAProxy's timers, `timeout http-request` until its first request and `timeout http-keep-alive`
//! between requests. Without this an HTTP/2 client that sends only its preface, or an HTTP/1 client
//! that never sends its next request, holds a `maxconn` slot for as long as it likes.

use crate::config::snapshot::Timeouts;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a client connection is doing, as far as its idle timer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Requests (HTTP/2: streams) in progress.
    pub active: u32,
    /// Exchanges finished on this connection.
    pub done: u64,
    /// The accept, or the end of the last exchange.
    pub since: Instant,
    /// When the first byte of the next HTTP/1 request head came, once it has.
    pub head_from: Option<Instant>,
    /// The last response has not all left: the socket refused more (a slow reader is `timeout
    /// client`'s business, not a reason to cut what it is still reading).
    pub writing: bool,
}

/// When the connection is to be closed if nothing changes; none while a request is in progress
/// (its own timeouts apply then). HAProxy's rules: the first request head must be complete
/// `http_request` after the accept; later, the next request must start within `http_keep_alive`
/// of the last exchange and its head be complete `http_request` after its first byte.
pub fn deadline(s: &State, t: &Timeouts) -> Option<Instant> {
    idle_deadline(s, head_wait(t), t.http_keep_alive)
}

/// How long a request head may take: `timeout http-request`, but never past `timeout client`
/// (HAProxy 2.6 answers its 408 at the shorter of the two, measured).
pub fn head_wait(t: &Timeouts) -> Duration {
    t.http_request.min(t.client)
}

fn idle_deadline(s: &State, http_request: Duration, http_keep_alive: Duration) -> Option<Instant> {
    if s.active > 0 || s.writing {
        return None;
    }
    if s.done == 0 {
        return Some(s.since + http_request);
    }
    Some(match s.head_from {
        Some(first_byte) => first_byte + http_request,
        None => s.since + http_keep_alive,
    })
}

/// The state and what the connection's timers sleep until, under one lock: a change wakes the
/// timers only when it moves a deadline earlier than the one they sleep until (a timer that wakes
/// early looks again and sleeps on), so a busy kept-alive connection does not wake its timers at
/// every request.
#[derive(Debug)]
struct Guarded {
    s: State,
    /// `http_request` and `http_keep_alive`, once [`Activity::expired`] has run.
    limits: Option<(Duration, Duration)>,
    /// When [`Activity::expired`] wakes up by itself; none while it does not sleep.
    idle_alarm: Option<Instant>,
    /// [`Activity::parkable`] waits for a change, with no alarm of its own.
    park_waits: bool,
    /// HTTP/2: response bodies are watched for stalls once a request is in progress, which the
    /// idle timer does by looking (see [`Activity::expired`]), so it must know at once.
    stalls: bool,
}

impl Guarded {
    /// Whether the timers must look at the state now (`writing` from outside the lock).
    fn wakes_timers(&self, writing: bool) -> bool {
        let s = State { writing, ..self.s };
        let expiry = match self.limits {
            Some((req, ka)) => match (idle_deadline(&s, req, ka), self.idle_alarm) {
                (Some(d), Some(alarm)) => d < alarm,
                (Some(_), None) => true,
                (None, _) => self.stalls,
            },
            None => true,
        };
        expiry || (self.park_waits && park_at(&s, Duration::ZERO).is_some())
    }
}

/// The connection's [`State`], shared by the service (requests begin and end), the socket (first
/// byte of the next head) and the timer that closes the connection.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<Guarded>,
    /// Set while idle after an exchange, so the socket reports only the first byte that follows.
    awaiting_head: AtomicBool,
    /// A write to the client is blocked (see [`State::writing`]).
    writing: AtomicBool,
    /// Wakes every timer of the connection (the idle timer and, for HTTP/1, the park timer):
    /// each creates its `notified()` before it reads the state, so none misses a change.
    changed: Notify,
    /// The clocks of the response bodies in progress (see [`Tracked`]), counted from `base`.
    bodies: Mutex<Vec<Weak<AtomicU64>>>,
    base: Instant,
}

/// Why [`Activity::expired`] gave up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Idle past `timeout http-request` / `http-keep-alive`.
    Idle,
    /// A response had data ready that the client did not take for `timeout client` (an HTTP/2
    /// client can hold a stream for ever by leaving its flow-control window at 0).
    Stalled,
}

impl Activity {
    pub fn new(accepted: Instant) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Guarded {
                s: State { active: 0, done: 0, since: accepted, head_from: None, writing: false },
                limits: None,
                idle_alarm: None,
                park_waits: false,
                stalls: false,
            }),
            // The first request's first byte is noted too (`%Ti` of the log).
            awaiting_head: AtomicBool::new(true),
            writing: AtomicBool::new(false),
            changed: Notify::new(),
            bodies: Mutex::new(Vec::new()),
            base: accepted,
        })
    }

    /// An HTTP/1 connection's activity made again after it was parked bare (see
    /// [`Activity::at_rest`]): `done` exchanges, the last one ended at `since`.
    pub fn resumed(accepted: Instant, done: u64, since: Instant) -> Arc<Self> {
        let a = Self::new(accepted);
        a.lock().s = State { active: 0, done, since, head_from: None, writing: false };
        a
    }

    /// Between exchanges with nothing to remember but how many there were and when the last
    /// ended: nothing in progress or being written, no next head begun, no response body left.
    /// Such an activity can be dropped and made again with [`Activity::resumed`].
    pub fn at_rest(&self) -> Option<(u64, Instant)> {
        let s = self.state();
        let bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        let rests = s.active == 0
            && !s.writing
            && s.done > 0
            && s.head_from.is_none()
            && self.awaiting_head.load(Relaxed)
            && bodies.iter().all(|w| w.strong_count() == 0);
        rests.then_some((s.done, s.since))
    }

    /// For an HTTP/2 connection, whose response bodies (see [`Activity::track`]) are watched
    /// for stalls while requests are in progress.
    pub fn watching_stalls(accepted: Instant) -> Arc<Self> {
        let a = Self::new(accepted);
        a.lock().stalls = true;
        a
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guarded> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request reached the service; it counts as in progress until the guard is dropped (with
    /// the response body, once its last byte left or the stream was reset).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        let wake = {
            let mut g = self.lock();
            g.s.active += 1;
            g.s.active == 1 && g.wakes_timers(self.writing.load(Relaxed))
        };
        self.awaiting_head.store(false, Relaxed);
        // An idle timer that fires while the request is in progress looks again and watches for
        // stalled responses from then on; nothing moved earlier, so nothing to wake.
        if wake {
            self.changed.notify_waiters();
        }
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut g = self.lock();
        g.s.active = g.s.active.saturating_sub(1);
        g.s.done += 1;
        if g.s.active == 0 {
            g.s.since = Instant::now();
            g.s.head_from = None;
            self.awaiting_head.store(true, Relaxed);
            let wake = g.wakes_timers(self.writing.load(Relaxed));
            drop(g);
            if wake {
                self.changed.notify_waiters();
            }
        }
    }

    /// Bytes came from the client; the first ones after an exchange start the next head's clock.
    fn bytes_arrived(&self) {
        if !self.awaiting_head.swap(false, Relaxed) {
            return;
        }
        let mut g = self.lock();
        if g.s.active == 0 && g.s.head_from.is_none() {
            g.s.head_from = Some(Instant::now());
            let wake = g.wakes_timers(self.writing.load(Relaxed));
            drop(g);
            if wake {
                self.changed.notify_waiters();
            }
        }
    }

    /// A write to the client would block (`true`) or went through (`false`).
    fn write_blocked(&self, blocked: bool) {
        if self.writing.swap(blocked, Relaxed) && !blocked {
            self.changed.notify_waiters();
        }
    }

    /// Where the next HTTP/1 request's idle time starts (the accept or the end of the last
    /// exchange) and when its first byte came, for the log's `%Ti` and `%TR`.
    pub fn head_start(&self) -> HeadStart {
        let g = self.lock();
        HeadStart { idle_from: g.s.since, first_byte: g.s.head_from }
    }

    pub fn state(&self) -> State {
        State { writing: self.writing.load(Relaxed), ..self.lock().s }
    }

    /// Wraps a response body so that hyper leaving it unread counts as a stall (see [`Tracked`]).
    /// `log`: the request's log line (see [`Tracked::untimed`]).
    pub fn track<B: Body>(&self, inner: B, req: Option<InFlight>, log: Option<super::httplog::Tail>) -> Tracked<B> {
        let clock = Arc::new(AtomicU64::new(0));
        let weak = Arc::downgrade(&clock);
        let log = Tracked::<B>::log_of(&inner, log);
        let t = Tracked { inner, _req: req, clock: Some((clock, self.base)), log };
        // Waiting for its first read from the start.
        t.waiting();
        let mut bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        bodies.retain(|w| w.strong_count() > 0);
        bodies.push(weak);
        t
    }

    /// Since when the longest-waiting response body has had data ready that nobody read.
    fn stalled_since(&self) -> Option<Instant> {
        let mut bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        bodies.retain(|w| w.strong_count() > 0);
        let oldest = bodies.iter().filter_map(Weak::upgrade).map(|c| c.load(Relaxed)).filter(|&n| n > 0).min()?;
        Some(self.base + std::time::Duration::from_nanos(oldest - 1))
    }

    /// Resolves once the connection has been idle past its deadline, or a response of it has
    /// been left unread for `timeout client`.
    pub async fn expired(&self, t: &Timeouts) -> Expiry {
        let sleep = tokio::time::sleep_until(Instant::now() + head_wait(t));
        tokio::pin!(sleep);
        loop {
            let changed = self.changed.notified();
            // The state is read and the alarm noted under one lock, so a change made after
            // either sees the alarm this pass sets (and wakes it if the change comes earlier).
            let alarm = {
                let mut g = self.lock();
                g.limits = Some((head_wait(t), t.http_keep_alive));
                let s = State { writing: self.writing.load(Relaxed), ..g.s };
                let now = Instant::now();
                let alarm = match deadline(&s, t) {
                    // In progress: a stall is not announced (it would cost a wake-up per frame),
                    // so look again every quarter of `timeout client`.
                    None => match self.stalled_since() {
                        Some(since) if since + t.client <= now => Err(Expiry::Stalled),
                        Some(since) => Ok((since + t.client).min(now + t.client / 4)),
                        None => Ok(now + t.client / 4),
                    },
                    Some(d) if d <= now => Err(Expiry::Idle),
                    Some(d) => Ok(d),
                };
                g.idle_alarm = alarm.ok();
                alarm
            };
            let alarm = match alarm {
                Ok(at) => at,
                Err(why) => return why,
            };
            if sleep.deadline() != alarm {
                sleep.as_mut().reset(alarm);
            }
            tokio::select! {
                () = &mut sleep => {}
                () = changed => {}
            }
        }
    }
}

impl Activity {
    /// Resolves once an HTTP/1 connection has been between requests for `after`: at least one
    /// exchange done, none in progress, nothing of the next head read, the last response gone.
    pub async fn parkable(&self, after: std::time::Duration) {
        loop {
            let changed = self.changed.notified();
            let at = {
                let mut g = self.lock();
                let at = park_at(&State { writing: self.writing.load(Relaxed), ..g.s }, after);
                g.park_waits = at.is_none();
                at
            };
            match at {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// When a connection in state `s` may be parked, if nothing changes (see [`Activity::parkable`]).
pub fn park_at(s: &State, after: std::time::Duration) -> Option<Instant> {
    (s.active == 0 && !s.writing && s.done > 0 && s.head_from.is_none()).then(|| s.since + after)
}

/// A request's [`Activity::head_start`], carried in its extensions to the log.
#[derive(Debug, Clone, Copy)]
pub struct HeadStart {
    pub idle_from: Instant,
    pub first_byte: Option<Instant>,
}

/// A request in progress; ends it when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A request's [`InFlight`], reachable from the request (as an extension) so that a tunnel it
/// opens can take it: hyper's HTTP/2 server drops the response body of a CONNECT answered 2xx at
/// once, and the exchange must stay in progress (no idle GOAWAY) while the tunnel stream runs.
#[derive(Debug, Clone)]
pub struct Handover(Arc<Mutex<Option<InFlight>>>);

impl Handover {
    pub fn new(req: InFlight) -> Self {
        Self(Arc::new(Mutex::new(Some(req))))
    }

    /// The guard, unless someone took it already.
    pub fn take(&self) -> Option<InFlight> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A response body that keeps its request in progress until it is done or dropped (unless a
/// tunnel took the guard, see [`Handover`]). Its clock tells since when hyper has not come back
/// for data after the last frame (or since the start): hyper reads the body only when the client
/// can take more, so a clock that runs for `timeout client` is a client that stopped reading.
/// While the body itself waits for the server, the clock is stopped (`timeout server` applies).
pub struct Tracked<B> {
    inner: B,
    _req: Option<InFlight>,
    /// Nanoseconds after `base`, plus one, since when it waits to be read; 0 while not waiting.
    /// HTTP/2 only: the clock is read, so a body that becomes ready while hyper waits for the
    /// client's window must start it (see [`ReadyWake`]).
    clock: Option<(Arc<AtomicU64>, Instant)>,
    /// The request's log line, written when the body is done (see [`Tracked::logged`]).
    log: Option<super::httplog::Tail>,
}

/// A body clock's reading for now: nanoseconds after `base`, plus one (0 means not waiting).
fn clock_now(base: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// Wakes hyper for a response body that was not ready, and starts the body's clock: the data is
/// now ready, and if the client has left the stream's window at 0, hyper will not read it (it asks
/// for window before it polls the body again), so nothing else would ever start the clock.
struct ReadyWake {
    clock: Arc<AtomicU64>,
    base: Instant,
    inner: std::task::Waker,
}

impl std::task::Wake for ReadyWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.clock.compare_exchange(0, clock_now(self.base), Relaxed, Relaxed);
        self.inner.wake_by_ref();
    }
}

impl<B> Tracked<B> {
    /// Without a clock anyone reads (HTTP/1: a client that stops reading blocks the socket
    /// writes, which `io::StallGuard` times out). `log`: the request's log line, written when
    /// the body is dropped, with the bytes that went out (one wrapper per response, not a boxed
    /// one more).
    pub fn untimed(inner: B, req: Option<InFlight>, log: Option<super::httplog::Tail>) -> Self
    where
        B: Body,
    {
        let log = Self::log_of(&inner, log);
        Self { inner, _req: req, clock: None, log }
    }

    fn waiting(&self) {
        if let Some((clock, base)) = &self.clock {
            clock.store(clock_now(*base), Relaxed);
        }
    }
}

impl<B: Body> Tracked<B> {
    /// A body with nothing to send is done before its first poll (hyper may never poll it).
    fn log_of(inner: &B, log: Option<super::httplog::Tail>) -> Option<super::httplog::Tail> {
        log.map(|mut t| {
            if inner.is_end_stream() {
                t.ended();
            }
            t
        })
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let Some(t) = self.log.take() {
            t.write();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = if let Some((clock, base)) = &self.clock {
            clock.store(0, Relaxed);
            let wake = ReadyWake { clock: clock.clone(), base: *base, inner: cx.waker().clone() };
            let waker = std::task::Waker::from(Arc::new(wake));
            Pin::new(&mut self.inner).poll_frame(&mut Context::from_waker(&waker))
        } else {
            Pin::new(&mut self.inner).poll_frame(cx)
        };
        // Also after the last frame: hyper holds it until the client's window lets it go, and
        // drops the body (so the clock) only once it has.
        if matches!(r, Poll::Ready(Some(Ok(_)))) {
            self.waiting();
        }
        let this = &mut *self;
        if let Some(t) = &mut this.log {
            match &r {
                Poll::Ready(Some(Ok(f))) => {
                    if let Some(d) = f.data_ref() {
                        t.sent(d.len());
                    }
                    if this.inner.is_end_stream() {
                        t.ended();
                    }
                }
                Poll::Ready(None) => t.ended(),
                _ => {}
            }
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Client socket wrapper that reports to the connection's [`Activity`] blocked writes and, for
/// HTTP/1 (`heads`), arriving bytes.
pub struct Watch<T> {
    inner: T,
    activity: Arc<Activity>,
    heads: bool,
}

impl<T> Watch<T> {
    pub fn new(inner: T, activity: Arc<Activity>, heads: bool) -> Self {
        Self { inner, activity, heads }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    fn wrote<R>(&self, r: Poll<R>) -> Poll<R> {
        self.activity.write_blocked(r.is_pending());
        r
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watch<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.heads && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watch<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(r)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeouts(http_request: u64, http_keep_alive: u64) -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            connect: s(5),
            client: s(30),
            server: s(30),
            http_request: s(http_request),
            http_keep_alive: s(http_keep_alive),
            tunnel: s(30),
            queue: s(5),
            check: None,
            tarpit: s(5),
            client_fin: None,
            server_fin: None,
        }
    }

    fn state(active: u32, done: u64, head_from: Option<u64>) -> (State, Instant) {
        let t0 = Instant::now();
        let head_from = head_from.map(|s| t0 + Duration::from_secs(s));
        (State { active, done, since: t0, head_from, writing: false }, t0)
    }

    #[test]
    fn a_head_waits_for_the_shorter_of_http_request_and_client() {
        let mut t = timeouts(10, 5);
        assert_eq!(head_wait(&t), Duration::from_secs(10));
        t.client = Duration::from_secs(3);
        assert_eq!(head_wait(&t), Duration::from_secs(3));
        let (s, t0) = state(0, 0, None);
        assert_eq!(deadline(&s, &t), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn before_the_first_request_http_request_counts_from_the_accept() {
        let (s, t0) = state(0, 0, None);
        assert_eq!(deadline(&s, &timeouts(10, 2)), Some(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn between_requests_http_keep_alive_applies_not_http_request() {
        let (s, t0) = state(0, 3, None);
        assert_eq!(deadline(&s, &timeouts(10, 2)), Some(t0 + Duration::from_secs(2)));
        assert_eq!(deadline(&s, &timeouts(1, 60)), Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn once_the_next_head_starts_http_request_counts_from_its_first_byte() {
        let (s, t0) = state(0, 1, Some(1));
        assert_eq!(deadline(&s, &timeouts(10, 2)), Some(t0 + Duration::from_secs(11)));
    }

    #[test]
    fn a_response_still_leaving_holds_off_the_idle_deadline() {
        let (mut s, _) = state(0, 1, None);
        s.writing = true;
        assert_eq!(deadline(&s, &timeouts(1, 1)), None);
    }

    #[test]
    fn only_a_connection_between_requests_is_parked() {
        let after = std::time::Duration::from_secs(1);
        let (fresh, _) = state(0, 0, None);
        assert_eq!(park_at(&fresh, after), None, "before the first request");
        let (busy, _) = state(1, 3, None);
        assert_eq!(park_at(&busy, after), None, "a request in progress");
        let (head, _) = state(0, 3, Some(5));
        assert_eq!(park_at(&head, after), None, "the next head has started");
        let (idle, t0) = state(0, 3, None);
        assert_eq!(park_at(&State { writing: true, ..idle }, after), None, "a response still leaving");
        assert_eq!(park_at(&idle, after), Some(t0 + after));
    }

    #[test]
    fn a_connection_with_a_request_in_progress_has_no_idle_deadline() {
        for done in [0, 5] {
            let (s, _) = state(2, done, None);
            assert_eq!(deadline(&s, &timeouts(1, 1)), None);
        }
    }

    #[test]
    fn ending_the_last_request_restarts_the_clock_on_keep_alive() {
        let a = Activity::new(Instant::now());
        let g1 = a.begin();
        let g2 = a.begin();
        drop(g1);
        assert_eq!(a.state().active, 1, "one stream still in progress");
        assert_eq!(a.state().head_from, None);
        drop(g2);
        let s = a.state();
        assert_eq!((s.active, s.done), (0, 2));
        assert_eq!(deadline(&s, &timeouts(1, 3)), Some(s.since + Duration::from_secs(3)));
        a.bytes_arrived();
        assert!(a.state().head_from.is_some(), "the first byte after the exchange starts the head clock");
    }

    #[test]
    fn only_an_activity_at_rest_between_exchanges_is_made_again_the_same() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        assert_eq!(a.at_rest(), None, "no exchange yet: the first request's rules apply");
        let g = a.begin();
        assert_eq!(a.at_rest(), None, "in progress");
        drop(g);
        let s = a.state();
        assert_eq!(a.at_rest(), Some((1, s.since)));
        let body = a.track(http_body_util::Empty::<Bytes>::new(), None, None);
        assert_eq!(a.at_rest(), None, "a response body is still out");
        drop(body);
        assert_eq!(a.at_rest(), Some((1, s.since)));
        a.write_blocked(true);
        assert_eq!(a.at_rest(), None, "the last response is still being written");
        a.write_blocked(false);
        a.bytes_arrived();
        assert_eq!(a.at_rest(), None, "the next head has begun");

        let b = Activity::resumed(t0, 1, s.since);
        assert_eq!(b.state(), State { head_from: None, ..s });
        let t = timeouts(10, 3);
        assert_eq!(deadline(&b.state(), &t), deadline(&s, &t), "keep-alive rules, from the last exchange");
        assert_eq!(b.head_start().idle_from, s.since, "%Ti counts from the last exchange");
        assert_eq!(b.at_rest(), Some((1, s.since)));
        b.bytes_arrived();
        assert!(b.state().head_from.is_some(), "the next head's first byte is noted");
    }

    #[tokio::test]
    async fn the_timer_fires_only_once_idle_past_the_deadline() {
        let a = Activity::new(Instant::now());
        let mut t = timeouts(1, 1);
        (t.http_request, t.http_keep_alive) = (Duration::from_millis(20), Duration::from_millis(20));
        let g = a.begin();
        let timer = a.expired(&t);
        tokio::pin!(timer);
        let waited = tokio::time::timeout(Duration::from_millis(300), &mut timer).await;
        assert!(waited.is_err(), "no expiry while a request is in progress");
        drop(g);
        tokio::time::timeout(Duration::from_secs(10), &mut timer).await.expect("expires once idle");
        assert_eq!(a.state().active, 0);
    }
}

#[cfg(test)]
mod wake_tests {
    use super::*;

    fn guarded(active: u32, alarm_in: Option<u64>, park_waits: bool, stalls: bool) -> (Guarded, Instant) {
        let t0 = Instant::now();
        let s = State { active, done: 1, since: t0, head_from: None, writing: false };
        let limits = Some((Duration::from_secs(10), Duration::from_secs(5)));
        let idle_alarm = alarm_in.map(|s| t0 + Duration::from_secs(s));
        (Guarded { s, limits, idle_alarm, park_waits, stalls }, t0)
    }

    #[test]
    fn only_a_deadline_earlier_than_the_alarm_wakes_the_idle_timer() {
        // Idle since t0: the keep-alive deadline is t0 + 5 s.
        let (g, _) = guarded(0, Some(4), false, false);
        assert!(!g.wakes_timers(false), "the alarm rings first and the timer looks again then");
        let (g, _) = guarded(0, Some(7), false, false);
        assert!(g.wakes_timers(false), "the timer would sleep past the deadline");
        let (g, _) = guarded(0, None, false, false);
        assert!(g.wakes_timers(false), "a timer without an alarm");
    }

    #[test]
    fn a_request_starting_wakes_only_a_stall_watching_timer() {
        let (g, _) = guarded(1, Some(1), false, false);
        assert!(!g.wakes_timers(false), "HTTP/1: the idle timer looks again when its alarm rings");
        let (g, _) = guarded(1, Some(100), false, true);
        assert!(g.wakes_timers(false), "HTTP/2: stalls are watched from the first stream on");
    }

    #[test]
    fn a_park_timer_waiting_for_a_change_is_woken_when_parking_becomes_possible() {
        let (g, _) = guarded(0, Some(100), true, false);
        assert!(g.wakes_timers(false));
        let (g, _) = guarded(1, Some(100), true, false);
        assert!(!g.wakes_timers(false), "a request in progress: nothing to park yet");
        let (g, _) = guarded(0, Some(100), true, false);
        assert!(!g.wakes_timers(true), "a response still leaving: nothing to park yet");
    }

    #[test]
    fn without_limits_known_every_change_wakes() {
        let (mut g, _) = guarded(0, Some(100), false, false);
        g.limits = None;
        assert!(g.wakes_timers(false));
    }

    /// The timer sleeps until `http_request` (30 s) from the accept; the keep-alive deadline
    /// after the first exchange (100 ms) comes before that: the end of the exchange wakes it.
    #[tokio::test]
    async fn a_keep_alive_shorter_than_the_alarm_still_closes_on_time() {
        let a = Activity::new(Instant::now());
        let t = Timeouts {
            connect: Duration::from_secs(5),
            client: Duration::from_secs(30),
            server: Duration::from_secs(30),
            http_request: Duration::from_secs(30),
            http_keep_alive: Duration::from_millis(100),
            tunnel: Duration::from_secs(30),
            queue: Duration::from_secs(5),
            check: None,
            tarpit: Duration::from_secs(5),
            client_fin: None,
            server_fin: None,
        };
        let timer = a.expired(&t);
        tokio::pin!(timer);
        assert!(futures::FutureExt::now_or_never(&mut timer).is_none());
        drop(a.begin());
        let why = tokio::time::timeout(Duration::from_secs(10), &mut timer).await.expect("closed on keep-alive");
        assert_eq!(why, Expiry::Idle);
    }
}

#[cfg(test)]
/// HTTP/2 activities (`watching_stalls`): response bodies are tracked for stalls.
mod stall_tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::time::Duration;

    fn timeouts(client_ms: u64) -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            connect: s(5),
            client: Duration::from_millis(client_ms),
            server: s(30),
            http_request: s(30),
            http_keep_alive: s(30),
            tunnel: s(30),
            queue: s(5),
            check: None,
            tarpit: s(5),
            client_fin: None,
            server_fin: None,
        }
    }

    #[tokio::test]
    async fn a_response_left_unread_for_timeout_client_expires_the_connection() {
        let a = Activity::watching_stalls(Instant::now());
        let t = timeouts(100);
        let (tx, mut body) = server_body(&a);
        // Waiting on the server (polled, pending): not a stall.
        assert!(futures::FutureExt::now_or_never(body.frame()).is_none());
        let timer = a.expired(&t);
        tokio::pin!(timer);
        assert!(
            tokio::time::timeout(Duration::from_millis(400), &mut timer).await.is_err(),
            "no stall while the server is awaited"
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.unwrap();
        assert!(body.frame().await.is_some());
        // A frame was taken and nobody comes back for the next one.
        let why = tokio::time::timeout(Duration::from_secs(10), &mut timer).await.expect("the stall expires");
        assert_eq!(why, Expiry::Stalled);
    }

    /// The idle timer and the park timer wait on the same connection: the end of a request must
    /// reach both (with one wake-up for one waiter, the park timer could wait for ever).
    #[tokio::test]
    async fn the_end_of_a_request_wakes_the_park_timer_beside_the_idle_timer() {
        let a = Activity::watching_stalls(Instant::now());
        let t = timeouts(100_000);
        let req = a.begin();
        let idle = a.expired(&t);
        let park = a.parkable(Duration::from_millis(50));
        tokio::pin!(idle, park);
        assert!(futures::FutureExt::now_or_never(&mut idle).is_none());
        assert!(futures::FutureExt::now_or_never(&mut park).is_none());
        drop(req);
        tokio::select! {
            () = &mut park => {}
            _ = &mut idle => panic!("not idle yet"),
            () = tokio::time::sleep(Duration::from_secs(10)) => panic!("the park timer missed the end of the request"),
        }
    }

    /// The timer first ran on an idle connection (asleep until `http_request`, 30 s here); the
    /// stream that then starts is never read: the timer must wake to watch it.
    #[tokio::test]
    async fn a_stream_that_starts_after_the_timer_slept_is_still_watched() {
        let a = Activity::watching_stalls(Instant::now());
        let t = timeouts(100);
        let timer = a.expired(&t);
        tokio::pin!(timer);
        assert!(futures::FutureExt::now_or_never(&mut timer).is_none());
        let (_tx, _body) = server_body(&a);
        let why = tokio::time::timeout(Duration::from_secs(10), &mut timer).await.expect("the stall expires");
        assert_eq!(why, Expiry::Stalled);
    }

    /// The body is not ready at hyper's first poll, then becomes ready while hyper waits for the
    /// client's window and so never polls it again: the data waiting counts as a stall.
    #[tokio::test]
    async fn data_that_becomes_ready_unpolled_starts_the_stall_clock() {
        let a = Activity::watching_stalls(Instant::now());
        let t = timeouts(100);
        let (tx, mut body) = server_body(&a);
        assert!(futures::FutureExt::now_or_never(body.frame()).is_none());
        tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.unwrap();
        // Not polled again.
        let why = tokio::time::timeout(Duration::from_secs(10), a.expired(&t)).await.expect("the stall expires");
        assert_eq!(why, Expiry::Stalled);
        drop(body);
    }

    /// A one-frame body handed to hyper whole, which then waits for the client's window to
    /// send it: still a stall, although the body itself has ended.
    #[tokio::test]
    async fn a_last_frame_hyper_cannot_send_is_a_stall_too() {
        let a = Activity::watching_stalls(Instant::now());
        let t = timeouts(100);
        let mut body = a.track(http_body_util::Full::new(Bytes::from_static(b"A")), Some(a.begin()), None);
        assert!(body.frame().await.is_some());
        assert!(body.is_end_stream());
        let why = tokio::time::timeout(Duration::from_secs(10), a.expired(&t)).await.expect("the stall expires");
        assert_eq!(why, Expiry::Stalled);
        drop(body);
    }

    type FrameTx = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>;

    /// A tracked response body whose frames the test sends as the server would.
    fn server_body(a: &Arc<Activity>) -> (FrameTx, Tracked<impl Body<Data = Bytes> + Unpin>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let inner = http_body_util::StreamBody::new(tokio_stream_shim(rx));
        (tx, a.track(inner, Some(a.begin()), None))
    }

    fn tokio_stream_shim<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
