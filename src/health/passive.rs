//! Passive health checking (HAProxy's `observe`, `error-limit`, `on-error`): the proxy reports
//! what it sees of real traffic to a server, and after `error-limit` consecutive errors the
//! server's checker applies the `on-error` action to its rise/fall counter.
//!
//! ```text
//! proxy (connect, response) ─► Link::record ─► Observer (pure) ─► Trip ─► checker ─► RiseFall::on_error
//! ```
//!
//! [`Observer`] is the pure part (events in, trips out); [`Link`] is what the proxy and the
//! checker share at run time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// `observe layer4|layer7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    /// Only connections to the server count.
    Layer4,
    /// Connections, and the HTTP responses (HTTP backends only).
    Layer7,
}

/// `on-error`: what `error-limit` consecutive errors do. All of them also bring the next
/// check forward to `fastinter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    FastInter,
    /// One failed check (HAProxy's default).
    FailCheck,
    /// A pre-fatal failed check: the next failure takes the server down.
    SuddenDeath,
    /// Down at once.
    MarkDown,
}

impl OnError {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fastinter" => Self::FastInter,
            "fail-check" => Self::FailCheck,
            "sudden-death" => Self::SuddenDeath,
            "mark-down" => Self::MarkDown,
            _ => return None,
        })
    }
}

impl Observe {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "layer4" => Some(Self::Layer4),
            "layer7" => Some(Self::Layer7),
            _ => None,
        }
    }
}

/// HAProxy's default `error-limit`.
pub const DEFAULT_ERROR_LIMIT: u32 = 10;

/// A server's validated passive-check settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub observe: Observe,
    pub error_limit: u32,
    pub on_error: OnError,
}

/// What the proxy saw of one exchange with the server (HAProxy's `HANA_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Connected.
    L4Ok,
    /// The connection failed (refused, reset, timed out).
    L4Err,
    /// A response with a status HAProxy deems healthy.
    HttpOk,
    /// A 5xx other than 501 and 505 (or a status outside 100-599).
    HttpStatus,
    /// A response head that does not parse.
    HttpHeaders,
    /// Reading the response failed.
    ReadError,
    /// `timeout server` expired waiting for the response.
    ReadTimeout,
    /// The server closed before answering.
    BrokenPipe,
}

/// Whether an event counts, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ignore,
    Good,
    Error,
}

impl Event {
    /// The response status as HAProxy judges it: 100-499, 501 and 505 are fine.
    pub fn http_status(status: u16) -> Self {
        if (100..500).contains(&status) || status == 501 || status == 505 { Self::HttpOk } else { Self::HttpStatus }
    }

    /// HAProxy's description, quoted in the log line.
    pub fn desc(self) -> &'static str {
        match self {
            Self::L4Ok => "L4 successful connection",
            Self::L4Err => "L4 unsuccessful connection",
            Self::HttpOk => "Correct http response",
            Self::HttpStatus => "Wrong http response",
            Self::HttpHeaders => "Invalid http response (headers)",
            Self::ReadError => "Read error (http)",
            Self::ReadTimeout => "Read timeout (http)",
            Self::BrokenPipe => "Close from server (http)",
        }
    }

    /// HAProxy's `analyze_statuses` table: under layer7 a connection is no proof of health
    /// (a response is), but a failed one is still an error.
    fn verdict(self, mode: Observe) -> Verdict {
        match (self, mode) {
            (Self::L4Ok, Observe::Layer4) => Verdict::Good,
            (Self::L4Ok, Observe::Layer7) => Verdict::Ignore,
            (Self::L4Err, _) => Verdict::Error,
            (_, Observe::Layer4) => Verdict::Ignore,
            (Self::HttpOk, Observe::Layer7) => Verdict::Good,
            (_, Observe::Layer7) => Verdict::Error,
        }
    }
}

/// `error-limit` consecutive errors were seen: the checker applies `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub action: OnError,
    /// `Detected 10 consecutive errors, last one was: Wrong http response`.
    pub info: String,
}

impl Trip {
    /// The reason of the transition it may cause, as HAProxy logs it.
    pub fn reason(&self) -> String {
        format!("Health analyze, info: \"{}\"", self.info)
    }
}

/// The consecutive-error counter of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observer {
    spec: Spec,
    consecutive: u32,
}

impl Observer {
    pub fn new(spec: Spec) -> Self {
        Self { spec, consecutive: 0 }
    }

    pub fn spec(&self) -> Spec {
        self.spec
    }

    pub fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// Counts one event; a good one clears the count, the `error-limit`th error in a row trips
    /// (and the count starts over, as in HAProxy).
    pub fn record(&mut self, ev: Event) -> Option<Trip> {
        match ev.verdict(self.spec.observe) {
            Verdict::Ignore => None,
            Verdict::Good => {
                self.consecutive = 0;
                None
            }
            Verdict::Error => {
                self.consecutive += 1;
                if self.consecutive < self.spec.error_limit.max(1) {
                    return None;
                }
                let info = format!("Detected {} consecutive errors, last one was: {}", self.consecutive, ev.desc());
                self.consecutive = 0;
                Some(Trip { action: self.spec.on_error, info })
            }
        }
    }
}

/// Trips waiting for the checker; more than this between two of its turns are one too many
/// to matter (each one already forces at least a failed check).
const MAX_PENDING: usize = 16;

/// What the proxy and a server's checker share: the observer, and the trips it produced.
#[derive(Debug, Default)]
pub struct Link {
    observer: Mutex<Option<Observer>>,
    pending: Mutex<Vec<Trip>>,
    wake: tokio::sync::Notify,
    /// Checkers running (HAProxy ignores traffic of a server whose checks are off). A count: on
    /// a reload the new checker may start before the old one's guard drops.
    watched: AtomicU32,
    /// `observe` is set.
    enabled: AtomicBool,
    /// Trips so far (HAProxy's `hanafail` stats column).
    pub trips: std::sync::atomic::AtomicU64,
}

impl Link {
    /// Sets (or clears) the settings from the config; a change starts the count over.
    pub fn configure(&self, spec: Option<Spec>) {
        let mut o = lock(&self.observer);
        if o.as_ref().map(Observer::spec) != spec {
            *o = spec.map(Observer::new);
        }
        self.enabled.store(spec.is_some(), Relaxed);
    }

    /// Whether traffic is observed at all (a cheap test before building an event).
    pub fn observing(&self) -> bool {
        self.enabled.load(Relaxed) && self.watched.load(Relaxed) > 0
    }

    /// From the proxy: one event on the server's traffic.
    pub fn record(&self, ev: Event) {
        if !self.observing() {
            return;
        }
        let trip = match lock(&self.observer).as_mut() {
            Some(o) => o.record(ev),
            None => return,
        };
        if let Some(t) = trip {
            self.trips.fetch_add(1, Relaxed);
            let mut p = lock(&self.pending);
            if p.len() < MAX_PENDING {
                p.push(t);
            }
            drop(p);
            self.wake.notify_one();
        }
    }

    /// The checker runs from now until the guard drops.
    pub fn watch(&self) -> WatchGuard<'_> {
        self.watched.fetch_add(1, Relaxed);
        WatchGuard(self)
    }

    /// From the checker: resolves when trips are waiting.
    pub async fn tripped(&self) {
        self.wake.notified().await;
    }

    /// From the checker: the trips to apply, oldest first.
    pub fn take(&self) -> Vec<Trip> {
        std::mem::take(&mut *lock(&self.pending))
    }
}

/// Ends the observation when the last checker stops; the count starts over with the next one.
pub struct WatchGuard<'a>(&'a Link);

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        if self.0.watched.fetch_sub(1, Relaxed) > 1 {
            return;
        }
        lock(&self.0.pending).clear();
        if let Some(o) = lock(&self.0.observer).as_mut() {
            o.consecutive = 0;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(observe: Observe, limit: u32, on_error: OnError) -> Observer {
        Observer::new(Spec { observe, error_limit: limit, on_error })
    }

    #[test]
    fn statuses_follow_haproxy() {
        for ok in [100, 101, 200, 302, 404, 499, 501, 505] {
            assert_eq!(Event::http_status(ok), Event::HttpOk, "{ok}");
        }
        for bad in [500, 502, 503, 504, 506, 599, 600, 99] {
            assert_eq!(Event::http_status(bad), Event::HttpStatus, "{bad}");
        }
    }

    #[test]
    fn the_limit_th_consecutive_error_trips_and_starts_over() {
        let mut o = obs(Observe::Layer4, 3, OnError::MarkDown);
        assert_eq!(o.record(Event::L4Err), None);
        assert_eq!(o.record(Event::L4Err), None);
        let t = o.record(Event::L4Err).expect("third error trips");
        assert_eq!(t.action, OnError::MarkDown);
        assert_eq!(t.info, "Detected 3 consecutive errors, last one was: L4 unsuccessful connection");
        assert_eq!(
            t.reason(),
            "Health analyze, info: \"Detected 3 consecutive errors, last one was: L4 unsuccessful connection\""
        );
        assert_eq!(o.consecutive(), 0);
        assert_eq!(o.record(Event::L4Err), None);
    }

    #[test]
    fn a_good_event_clears_the_count() {
        let mut o = obs(Observe::Layer4, 2, OnError::FailCheck);
        assert_eq!(o.record(Event::L4Err), None);
        assert_eq!(o.record(Event::L4Ok), None);
        assert_eq!(o.record(Event::L4Err), None);
        assert!(o.record(Event::L4Err).is_some());
    }

    #[test]
    fn layer4_ignores_responses() {
        let mut o = obs(Observe::Layer4, 1, OnError::FailCheck);
        for ev in [Event::HttpStatus, Event::HttpHeaders, Event::ReadTimeout, Event::BrokenPipe, Event::ReadError] {
            assert_eq!(o.record(ev), None, "{ev:?}");
        }
        assert!(o.record(Event::L4Err).is_some());
    }

    #[test]
    fn layer7_counts_responses_and_failed_connects_but_a_connect_proves_nothing() {
        let mut o = obs(Observe::Layer7, 2, OnError::SuddenDeath);
        assert_eq!(o.record(Event::HttpStatus), None);
        // A good connection does not clear the count under layer7.
        assert_eq!(o.record(Event::L4Ok), None);
        let t = o.record(Event::ReadTimeout).expect("trips");
        assert_eq!(t.info, "Detected 2 consecutive errors, last one was: Read timeout (http)");
        assert_eq!(o.record(Event::L4Err), None);
        assert_eq!(o.record(Event::HttpOk), None);
        assert_eq!(o.record(Event::BrokenPipe), None);
        assert_eq!(o.record(Event::HttpHeaders).map(|t| t.action), Some(OnError::SuddenDeath));
    }

    #[test]
    fn the_link_counts_only_while_a_checker_watches() {
        let link = Link::default();
        link.configure(Some(Spec { observe: Observe::Layer4, error_limit: 1, on_error: OnError::MarkDown }));
        link.record(Event::L4Err);
        assert!(link.take().is_empty(), "no checker: ignored");
        {
            let _g = link.watch();
            link.record(Event::L4Err);
            link.record(Event::L4Err);
            let got = link.take();
            assert_eq!(got.len(), 2);
            assert_eq!(link.trips.load(Relaxed), 2);
            link.record(Event::L4Err);
        }
        assert!(link.take().is_empty(), "a stopped checker's trips are dropped");
        link.configure(None);
        let _g = link.watch();
        link.record(Event::L4Err);
        assert!(link.take().is_empty(), "not observing");
    }

    #[test]
    fn an_old_checker_leaving_after_the_new_one_came_keeps_the_watch() {
        let link = Link::default();
        link.configure(Some(Spec { observe: Observe::Layer4, error_limit: 1, on_error: OnError::MarkDown }));
        let old = link.watch();
        let _new = link.watch();
        drop(old);
        link.record(Event::L4Err);
        assert_eq!(link.take().len(), 1, "the reload's new checker still observes");
    }

    #[test]
    fn pending_trips_are_bounded() {
        let link = Link::default();
        link.configure(Some(Spec { observe: Observe::Layer4, error_limit: 1, on_error: OnError::FailCheck }));
        let _g = link.watch();
        for _ in 0..100 {
            link.record(Event::L4Err);
        }
        assert_eq!(link.take().len(), MAX_PENDING);
    }

    #[test]
    fn keywords_parse_as_haproxys() {
        assert_eq!(OnError::parse("sudden-death"), Some(OnError::SuddenDeath));
        assert_eq!(OnError::parse("fastinter"), Some(OnError::FastInter));
        assert_eq!(OnError::parse("mark-down"), Some(OnError::MarkDown));
        assert_eq!(OnError::parse("fail-check"), Some(OnError::FailCheck));
        assert_eq!(OnError::parse("down"), None);
        assert_eq!(Observe::parse("layer7"), Some(Observe::Layer7));
        assert_eq!(Observe::parse("layer5"), None);
    }
}
