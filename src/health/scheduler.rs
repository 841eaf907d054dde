//! One task per checked server: wait, probe, feed rise/fall, report, repeat until shutdown.

use super::probe::{Prober, ServerLoad};
use super::risefall::{HealthState, InitState, RiseFall, Transition};
use super::spec::CheckSpec;
use super::timing::{self, Prng};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where check results go (the runtime state in the daemon, a recorder in tests).
pub trait HealthSink: Send + Sync + 'static {
    /// After every check; `detail` is the probe's HAProxy-style description.
    fn on_check(&self, ok: bool, detail: &str, duration: Duration);
    /// When the server changes between UP and DOWN.
    fn on_transition(&self, t: &Transition);
    /// After every check, the rise/fall position ("UP 1/3" on a stats page).
    fn on_state(&self, _state: HealthState) {}
    /// After every passed check, the HTTP status it got (`http-check disable-on-404`) and
    /// whether it passed only conditionally (`ok-status L7OKC`): both mean NOLB.
    fn on_pass_status(&self, _status: Option<u16>, _conditional: bool) {}
    /// Passive checks (`observe`) of the server's traffic, whose trips this checker applies.
    fn passive(&self) -> Option<&super::passive::Link> {
        None
    }
    /// After a passive-check trip, whether or not it changed the server's availability.
    fn on_trip(&self, _trip: &super::passive::Trip) {}
    /// The server's rise/fall counter, shared with admin changes, which set it (HAProxy's
    /// `check->health`; see `state::ServerRt`): the checker counts from it and stores into it.
    /// None: the checker keeps its own.
    fn shared_health(&self) -> Option<&AtomicU32> {
        None
    }
    /// The checks are paused (HAProxy's `CHK_ST_PAUSED`, a server in maintenance): no probe
    /// is sent and a result that comes meanwhile does not count.
    fn paused(&self) -> bool {
        false
    }
    /// A probe starts (true) or ends (false): HAProxy's `CHK_ST_INPROGRESS`.
    fn in_progress(&self, _on: bool) {}
    /// Connection figures passed to external checks.
    fn load(&self) -> ServerLoad {
        ServerLoad::default()
    }
    /// `http-check send-state`: the header value for the next check, given the checker's
    /// rise/fall counter; None sends no header.
    fn server_state(&self, _rf: &RiseFall) -> Option<String> {
        None
    }
}

/// Starts a checker; `start_up` false means the server must pass `rise` checks before serving.
/// The task ends when `shutdown` becomes true or its sender is dropped.
pub fn spawn_checker(
    spec: CheckSpec,
    start_up: bool,
    sink: Arc<dyn HealthSink>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_checker_init(spec, InitState::from_start_up(start_up), sink, shutdown)
}

/// [`spawn_checker`] with an explicit HAProxy `init-state`.
pub fn spawn_checker_init(
    spec: CheckSpec,
    init: InitState,
    sink: Arc<dyn HealthSink>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(spec, init, sink, shutdown))
}

/// [`spawn_checker_init`] on a given runtime (the daemon's [`CheckThread`](super::CheckThread)).
pub fn spawn_checker_on(
    rt: &Handle,
    spec: CheckSpec,
    init: InitState,
    sink: Arc<dyn HealthSink>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    rt.spawn(run(spec, init, sink, shutdown))
}

async fn run(spec: CheckSpec, init: InitState, sink: Arc<dyn HealthSink>, mut shutdown: watch::Receiver<bool>) {
    // One shutdown watch for the checker's life rather than one per probe and per pause.
    tokio::select! {
        () = checks(spec, init, sink) => {}
        () = stopped(&mut shutdown) => {}
    }
}

async fn checks(spec: CheckSpec, init: InitState, sink: Arc<dyn HealthSink>) {
    let mut rf = RiseFall::with_init(spec.rise, spec.fall, init);
    if let Some(h) = sink.shared_health() {
        h.store(rf.health(), Relaxed);
    }
    let mut prober = Prober::new(&spec);
    let mut rng = Prng::from_entropy(&format!("{}/{}", spec.backend, spec.server));
    // Written in place each check: no allocation once it is long enough.
    let mut detail = String::new();
    // Observation starts with the checker and ends with it.
    let _watch = sink.passive().map(|p| p.watch());
    pause(&spec, &mut rf, &*sink, timing::initial_offset(spec.inter, rng.next_u64())).await;
    loop {
        if let Some(h) = sink.shared_health() {
            rf.set_health(h.load(Relaxed));
        }
        if sink.paused() {
            // HAProxy reschedules a paused check at its interval.
            let base = timing::base_interval(rf.state(), spec.inter, spec.fastinter, spec.downinter);
            pause(&spec, &mut rf, &*sink, timing::jitter(base, spec.spread_pct, rng.next_u64())).await;
            continue;
        }
        let sends_state = match &spec.kind {
            super::spec::CheckKind::Http(h) => h.send_state,
            super::spec::CheckKind::Seq(s) => s.send_state,
            _ => false,
        };
        if sends_state && let Some(v) = sink.server_state(&rf) {
            prober.set_server_state(&spec, v);
        }
        let started = Instant::now();
        // Trips that come during a probe apply at once too, as HAProxy's do in the stream that
        // saw the error (a probe may take up to its timeout).
        let result = {
            let _flag = InProgress::new(&*sink);
            let mut probe = std::pin::pin!(prober.probe(&spec, sink.load()));
            match sink.passive() {
                None => probe.await,
                Some(link) => loop {
                    tokio::select! {
                        r = &mut probe => break r,
                        () = link.tripped() => {
                            for trip in link.take() {
                                apply_trip(&spec, &mut rf, &*sink, &trip);
                            }
                        }
                    }
                },
            }
        };
        let duration = started.elapsed();
        detail.clear();
        let ok = result.is_ok();
        // Writing into a String cannot fail.
        let _ = match &result {
            Ok(pass) => write!(detail, "{pass}"),
            Err(fail) => write!(detail, "{fail}"),
        };
        if sink.paused() {
            continue;
        }
        sink.on_check(ok, &detail, duration);
        if let Ok(pass) = &result {
            sink.on_pass_status(pass.status, pass.nolb);
        }
        let before = rf.state();
        match counted(&mut rf, sink.shared_health(), |rf| rf.observe_with(ok, &detail)) {
            Some(t) => {
                log_transition(&spec, &t, Some(duration));
                sink.on_transition(&t);
            }
            None if before != rf.state() => {
                tracing::debug!(
                    backend = %spec.backend, server = %spec.server,
                    "Health check for server {}/{} {}, reason: {}, check duration: {}ms, status: {}.",
                    spec.backend, spec.server, if ok { "succeeded" } else { "failed" },
                    detail, duration.as_millis(), rf
                );
            }
            None => {}
        }
        sink.on_state(rf.state());
        let base = timing::base_interval(rf.state(), spec.inter, spec.fastinter, spec.downinter);
        pause(&spec, &mut rf, &*sink, timing::jitter(base, spec.spread_pct, rng.next_u64())).await;
    }
}

/// Says a probe is in flight for as long as it lives, so a checker stopped mid-probe does not
/// leave the flag set.
struct InProgress<'a>(&'a dyn HealthSink);

impl<'a> InProgress<'a> {
    fn new(sink: &'a dyn HealthSink) -> Self {
        sink.in_progress(true);
        InProgress(sink)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.in_progress(false);
    }
}

/// Waits for the next check, applying passive-check trips as they come: each one may change
/// the server's state and brings the next check forward to `fastinter` (HAProxy's
/// `__health_adjust`).
async fn pause(spec: &CheckSpec, rf: &mut RiseFall, sink: &dyn HealthSink, d: Duration) {
    let Some(link) = sink.passive() else {
        return sleep(d).await;
    };
    let mut wait = std::pin::pin!(sleep(d));
    loop {
        tokio::select! {
            () = &mut wait => return,
            () = link.tripped() => {
                for trip in link.take() {
                    apply_trip(spec, rf, sink, &trip);
                }
                let sooner = Instant::now() + spec.fastinter;
                if sooner < wait.deadline() {
                    wait.as_mut().reset(sooner);
                }
            }
        }
    }
}

/// Applies `step` to the counter, from the shared one when there is one, and stores the result
/// there unless an admin change set it meanwhile: that change wins and `step` counts for nothing.
fn counted(
    rf: &mut RiseFall,
    shared: Option<&AtomicU32>,
    step: impl FnOnce(&mut RiseFall) -> Option<Transition>,
) -> Option<Transition> {
    let Some(h) = shared else { return step(rf) };
    let before = h.load(Relaxed);
    rf.set_health(before);
    let t = step(rf);
    if h.compare_exchange(before, rf.health(), Relaxed, Relaxed).is_err() {
        rf.set_health(h.load(Relaxed));
        return None;
    }
    t
}

fn apply_trip(spec: &CheckSpec, rf: &mut RiseFall, sink: &dyn HealthSink, trip: &super::passive::Trip) {
    if sink.paused() {
        return;
    }
    let reason = trip.reason();
    let t = counted(rf, sink.shared_health(), |rf| rf.on_error(trip.action, &reason));
    sink.on_trip(trip);
    if let Some(t) = &t {
        log_transition(spec, t, None);
        sink.on_transition(t);
    }
    sink.on_state(rf.state());
}

/// `duration` is the check's; a passive-check trip has none (HAProxy then logs none).
fn log_transition(spec: &CheckSpec, t: &Transition, duration: Option<Duration>) {
    let (b, s) = (&spec.backend, &spec.server);
    let took = duration.map(|d| format!(", check duration: {}ms", d.as_millis())).unwrap_or_default();
    let (text, up) = match t {
        Transition::Down { reason } => (format!("DOWN, reason: {reason}{took}"), false),
        Transition::Up { reason } => (format!("UP, reason: {reason}{took}"), true),
    };
    crate::console::events::record(crate::console::events::Kind::Server, format!("{b}/{s}"), text, up);
    match t {
        Transition::Down { reason } => tracing::warn!(
            backend = %b, server = %s,
            "Server {b}/{s} is DOWN, reason: {reason}{took}"
        ),
        Transition::Up { reason } => tracing::info!(
            backend = %b, server = %s,
            "Server {b}/{s} is UP, reason: {reason}{took}"
        ),
    }
}

/// Sleeps `d`, coalesced with other checkers' wake-ups.
fn sleep(d: Duration) -> tokio::time::Sleep {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    tokio::time::sleep(timing::coalesce(epoch.elapsed(), d))
}

/// Resolves once shutdown is requested or nobody can request it any more.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An `Err` means the sender is gone: the owner no longer wants this checker.
    shutdown.wait_for(|stop| *stop).await.ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::spec::CheckKind;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    #[derive(Debug, PartialEq)]
    enum Event {
        Check(bool, String),
        Up(String),
        Down(String),
    }

    struct Recorder(mpsc::UnboundedSender<Event>);

    #[test]
    fn a_counter_set_by_an_admin_change_during_a_check_wins() {
        let shared = AtomicU32::new(3);
        let mut rf = RiseFall::with_init(3, 4, InitState::FullyUp);
        // A failure counts from the shared counter, not from the checker's own.
        assert_eq!(
            counted(&mut rf, Some(&shared), |rf| rf.observe(false)),
            Some(Transition::Down { reason: "check failed".into() })
        );
        assert_eq!(shared.load(Relaxed), 0);
        // Maintenance sets it meanwhile: the result does not count.
        let t = counted(&mut rf, Some(&shared), |rf| {
            shared.store(3, Relaxed);
            rf.observe(true)
        });
        assert_eq!((t, shared.load(Relaxed), rf.health()), (None, 3, 3));
        assert_eq!(counted(&mut rf, Some(&shared), |rf| rf.observe(true)), None);
        assert_eq!(shared.load(Relaxed), 6);
        // Without a shared counter the checker's own counts.
        assert!(counted(&mut rf, None, |rf| rf.observe(false)).is_none());
        assert_eq!(rf.health(), 5);
    }

    impl HealthSink for Recorder {
        fn on_check(&self, ok: bool, detail: &str, _duration: Duration) {
            self.0.send(Event::Check(ok, detail.to_string())).ok();
        }
        fn on_transition(&self, t: &Transition) {
            let e = match t {
                Transition::Up { reason } => Event::Up(reason.clone()),
                Transition::Down { reason } => Event::Down(reason.clone()),
            };
            self.0.send(e).ok();
        }
    }

    fn spec(addr: SocketAddr, rise: u32, fall: u32) -> CheckSpec {
        CheckSpec {
            kind: CheckKind::Tcp,
            addr,
            inter: Duration::from_millis(50),
            fastinter: Duration::from_millis(20),
            downinter: Duration::from_millis(50),
            timeout: Duration::from_millis(500),
            rise,
            fall,
            spread_pct: 10,
            backend: "be".into(),
            server: "s1".into(),
            host_header: None,
            proxy_header: None,
            tls: None,
            source: None,
        }
    }

    /// A TCP server the test can stop and restart on the same port.
    async fn start_server(addr: &str) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
        (addr, task)
    }

    async fn stop_server(task: JoinHandle<()>) {
        task.abort();
        // Wait until the task (and with it the listening socket) is gone.
        assert!(task.await.is_err_and(|e| e.is_cancelled()));
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(e)) => e,
            other => panic!("no event from the checker: {other:?}"),
        }
    }

    /// Skips results of checks that were in flight when the test changed the server, then
    /// returns the events up to the next transition.
    async fn until_transition(rx: &mut mpsc::UnboundedReceiver<Event>, stale_ok: bool) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let e = next(rx).await;
            if events.is_empty() && matches!(&e, Event::Check(ok, _) if *ok == stale_ok) {
                continue;
            }
            let done = matches!(e, Event::Up(_) | Event::Down(_));
            events.push(e);
            if done {
                return events;
            }
        }
    }

    #[tokio::test]
    async fn stopped_server_goes_down_after_fall_and_returns_after_rise() {
        let (addr, server) = start_server("127.0.0.1:0").await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let checker = spawn_checker(spec(addr, 2, 3), true, Arc::new(Recorder(tx)), stop_rx);

        // Default start is UP; the first passing check makes it fully UP without a transition.
        assert_eq!(next(&mut rx).await, Event::Check(true, "Layer4 check passed".into()));

        stop_server(server).await;
        let refused = "Layer4 connection refused".to_string();
        let events = until_transition(&mut rx, true).await;
        assert_eq!(
            events,
            vec![
                Event::Check(false, refused.clone()),
                Event::Check(false, refused.clone()),
                Event::Check(false, refused.clone()),
                Event::Down(refused.clone()),
            ]
        );

        let (_, server) = start_server(&addr.to_string()).await;
        let passed = "Layer4 check passed".to_string();
        let events = until_transition(&mut rx, false).await;
        assert_eq!(
            events,
            vec![Event::Check(true, passed.clone()), Event::Check(true, passed.clone()), Event::Up(passed)]
        );

        stop_tx.send(true).expect("checker listens");
        tokio::time::timeout(Duration::from_secs(2), checker).await.expect("checker stops").expect("no panic");
        stop_server(server).await;
    }

    #[tokio::test]
    async fn start_down_needs_rise_successes() {
        let (addr, server) = start_server("127.0.0.1:0").await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_stop_tx, stop_rx) = watch::channel(false);
        let checker = spawn_checker(spec(addr, 3, 2), false, Arc::new(Recorder(tx)), stop_rx);
        let passed = "Layer4 check passed".to_string();
        for _ in 0..3 {
            assert_eq!(next(&mut rx).await, Event::Check(true, passed.clone()));
        }
        assert_eq!(next(&mut rx).await, Event::Up(passed));
        checker.abort();
        stop_server(server).await;
    }

    /// A recorder whose server is observed (`observe`).
    struct Observed(Recorder, crate::health::passive::Link);

    impl HealthSink for Observed {
        fn on_check(&self, ok: bool, detail: &str, d: Duration) {
            self.0.on_check(ok, detail, d);
        }
        fn on_transition(&self, t: &Transition) {
            self.0.on_transition(t);
        }
        fn passive(&self) -> Option<&crate::health::passive::Link> {
            Some(&self.1)
        }
    }

    #[tokio::test]
    async fn passive_trips_reach_the_checker_between_checks() {
        use crate::health::passive::{Event as Traffic, Observe, OnError, Spec};
        let (addr, server) = start_server("127.0.0.1:0").await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_stop_tx, stop_rx) = watch::channel(false);
        // Every check passes: the trip, not a check, takes the server down.
        let s = spec(addr, 2, 3);
        let sink = Arc::new(Observed(Recorder(tx), crate::health::passive::Link::default()));
        sink.1.configure(Some(Spec { observe: Observe::Layer4, error_limit: 2, on_error: OnError::MarkDown }));
        let checker = spawn_checker(s, true, sink.clone(), stop_rx);
        assert_eq!(next(&mut rx).await, Event::Check(true, "Layer4 check passed".into()));
        // The checker observes from its start: two errors in a row trip.
        sink.1.record(Traffic::L4Err);
        sink.1.record(Traffic::L4Err);
        let down = loop {
            match next(&mut rx).await {
                Event::Check(..) => continue,
                e => break e,
            }
        };
        assert_eq!(
            down,
            Event::Down(
                "Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\""
                    .into()
            )
        );
        checker.abort();
        stop_server(server).await;
    }

    #[tokio::test]
    async fn shutdown_before_the_first_check_reports_nothing() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut s = spec(SocketAddr::from(([127, 0, 0, 1], 9)), 2, 3);
        s.inter = Duration::from_secs(60);
        let checker = spawn_checker(s, true, Arc::new(Recorder(tx)), stop_rx);
        stop_tx.send(true).expect("checker listens");
        tokio::time::timeout(Duration::from_secs(2), checker).await.expect("checker stops").expect("no panic");
        assert!(rx.recv().await.is_none(), "the sink was dropped without events");
    }

    #[tokio::test]
    async fn dropping_the_shutdown_sender_stops_the_checker() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut s = spec(SocketAddr::from(([127, 0, 0, 1], 9)), 2, 3);
        s.inter = Duration::from_secs(60);
        let checker = spawn_checker(s, true, Arc::new(Recorder(tx)), stop_rx);
        drop(stop_tx);
        tokio::time::timeout(Duration::from_secs(2), checker).await.expect("checker stops").expect("no panic");
    }
}
