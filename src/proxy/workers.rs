//! `nbthread > 1`: one current-thread runtime per proxy thread, as HAProxy runs one event loop per
//! thread, each client connection staying on the thread that took it. Thread 0 is the main
//! runtime (it also runs the accept loops, the control socket, the API, VRRP's manager and
//! reloads); the others are worker threads started here. A multi-thread runtime instead moved
//! tasks between threads (work stealing) and woke a connection's task on one thread for I/O its
//! peer did on another, and the per-thread batch writer (`batch.rs`) could not run there: at two
//! threads lbha scaled to 0.84x its own one-thread rate where HAProxy scaled to 0.96x (bench/README.md).
//!
//! The accept loop hands each accepted socket to the thread [`pick`] chooses (fewest live
//! connections, ties round-robin), which registers it with its own reactor (`TcpStream::from_std`
//! on that thread). What a connection spawns later (its tasks out of the parking lot, its server
//! connections' tasks) is spawned on the thread it runs on, so it stays there. `nbthread = 1`
//! runs none of this: one runtime, no hand-off.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::runtime::Handle;

thread_local! {
    /// This thread's index among the proxy threads (0: the main runtime, and any thread that is
    /// not a proxy thread).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The index of the proxy thread running this code: idle server connections are tagged with it
/// (reused on the thread whose reactor has them), and it names the thread's parking lot.
pub fn here() -> usize {
    INDEX.get()
}

/// The proxy threads `[global] nbthread` asks for: as HAProxy, one per CPU when unset.
pub fn configured(g: &crate::config::snapshot::GlobalSettings) -> usize {
    g.nbthread.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

/// The thread for the next connection: the one with the fewest live connections, ties broken
/// round-robin from `cursor` (the thread after the last one picked), so that an idle proxy still
/// spreads a burst of short connections over every thread. Pure. `live` is never empty.
pub fn pick(live: &[usize], cursor: usize) -> usize {
    let n = live.len();
    let mut best = cursor % n;
    for step in 1..n {
        let i = (cursor + step) % n;
        if live[i] < live[best] {
            best = i;
        }
    }
    best
}

/// The proxy threads as the accept loops see them: a runtime handle and a live-connection count
/// each.
#[derive(Debug)]
pub struct Spread {
    handles: Vec<Handle>,
    live: Arc<[AtomicUsize]>,
    /// The thread after the last one picked. Only the accept loops (all on the main runtime)
    /// move it; an atomic because the struct is shared with the connections.
    cursor: AtomicUsize,
}

/// One connection counted on its thread until it ends (dropped with its `maxconn` slots, so a
/// connection waiting in the parking lot still counts).
#[derive(Debug)]
pub struct Live {
    live: Arc<[AtomicUsize]>,
    index: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live[self.index].fetch_sub(1, Relaxed);
    }
}

impl Spread {
    /// `handles[0]` is the main runtime's.
    pub fn new(handles: Vec<Handle>) -> Self {
        let live: Arc<[AtomicUsize]> = handles.iter().map(|_| AtomicUsize::new(0)).collect();
        Spread { handles, live, cursor: AtomicUsize::new(0) }
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The thread for a new connection, with the connection counted on it.
    pub fn assign(&self) -> (&Handle, Live) {
        let counts: Vec<usize> = self.live.iter().map(|n| n.load(Relaxed)).collect();
        let index = pick(&counts, self.cursor.load(Relaxed));
        self.cursor.store(index + 1, Relaxed);
        self.live[index].fetch_add(1, Relaxed);
        (&self.handles[index], Live { live: self.live.clone(), index })
    }

    /// Live connections per thread.
    pub fn live(&self) -> Vec<usize> {
        self.live.iter().map(|n| n.load(Relaxed)).collect()
    }
}

/// The worker threads (1..n), each running its own current-thread runtime until [`Threads::stop`].
pub struct Threads {
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    joins: Vec<std::thread::JoinHandle<()>>,
    done: std::sync::mpsc::Receiver<usize>,
}

/// The name of worker thread `i` (the panic hook tells runtime threads by it, see `crate::fate`).
pub const THREAD_PREFIX: &str = "lbha-proxy-";

impl Threads {
    /// Starts `n - 1` worker threads (thread 0 is the caller's runtime), each with the runtime
    /// `build` makes (the daemon's, with its heartbeat hooks), and returns their handles, in
    /// thread order. A thread that cannot start stops those already started.
    pub fn start(
        n: usize,
        build: impl Fn() -> io::Result<tokio::runtime::Runtime> + Send + Sync + 'static,
    ) -> io::Result<(Threads, Vec<Handle>)> {
        let build = Arc::new(build);
        let (done_tx, done) = std::sync::mpsc::channel();
        let mut threads = Threads { stops: Vec::new(), joins: Vec::new(), done };
        let mut handles = Vec::new();
        for index in 1..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let (build, done_tx) = (build.clone(), done_tx.clone());
            let spawned = std::thread::Builder::new().name(format!("{THREAD_PREFIX}{index}")).spawn(move || {
                INDEX.set(index);
                let rt = match build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        let _ = done_tx.send(index);
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                // What still runs (connections past `hard_stop_after`) is dropped with the runtime.
                drop(rt);
                let _ = done_tx.send(index);
            });
            let started = spawned.and_then(|j| {
                threads.joins.push(j);
                handle_rx.recv().map_err(|_| io::Error::other("the thread ended before its runtime started"))?
            });
            match started {
                Ok(h) => {
                    threads.stops.push(stop_tx);
                    handles.push(h);
                }
                Err(e) => {
                    threads.stop(STOP_LIMIT);
                    return Err(io::Error::other(format!("cannot start proxy thread {index}: {e}")));
                }
            }
        }
        Ok((threads, handles))
    }

    /// Ends every worker runtime (dropping what still runs on it) and waits up to `limit` for the
    /// threads to finish; a thread stuck in a poll is left to the process's exit.
    pub fn stop(mut self, limit: Duration) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        let deadline = std::time::Instant::now() + limit;
        let mut left = self.joins.len();
        while left > 0 {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            match self.done.recv_timeout(wait) {
                Ok(_) => left -= 1,
                Err(_) => {
                    tracing::warn!("{left} proxy threads did not stop within {limit:?}");
                    return;
                }
            }
        }
        for j in self.joins.drain(..) {
            let _ = j.join();
        }
    }
}

/// How long a stop waits for the worker threads' runtimes to end.
pub const STOP_LIMIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_with_the_fewest_connections_is_picked() {
        assert_eq!(pick(&[3, 1, 2], 0), 1);
        assert_eq!(pick(&[0, 5], 1), 0);
        assert_eq!(pick(&[7], 0), 0);
        assert_eq!(pick(&[7], 3), 0, "a cursor past the end wraps");
    }

    #[test]
    fn ties_go_round_robin_from_the_cursor() {
        assert_eq!(pick(&[0, 0, 0], 0), 0);
        assert_eq!(pick(&[0, 0, 0], 1), 1);
        assert_eq!(pick(&[0, 0, 0], 2), 2);
        assert_eq!(pick(&[0, 0, 0], 3), 0);
        // Among the least loaded only: thread 1 is busier.
        assert_eq!(pick(&[2, 4, 2], 1), 2);
        assert_eq!(pick(&[2, 4, 2], 3), 0);
    }

    /// Short connections on an idle proxy (each ends before the next comes) still go to every
    /// thread in turn; long ones fill the threads evenly.
    #[test]
    fn assign_spreads_and_counts_until_the_connection_ends() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let spread = Spread::new(vec![rt.handle().clone(), rt.handle().clone(), rt.handle().clone()]);
        let mut order = Vec::new();
        for _ in 0..6 {
            let (_, live) = spread.assign();
            order.push(live.index);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        assert_eq!(spread.live(), [0, 0, 0], "every connection ended");
        let held: Vec<Live> = (0..7).map(|_| spread.assign().1).collect();
        assert_eq!(spread.live(), [3, 2, 2]);
        let (kept, ended): (Vec<Live>, Vec<Live>) = held.into_iter().partition(|l| l.index == 1);
        drop(ended);
        assert_eq!(spread.live(), [0, 2, 0]);
        assert_ne!(spread.assign().1.index, 1, "the busy thread is passed over");
        drop(kept);
        assert_eq!(spread.live(), [0, 0, 0]);
    }

    #[test]
    fn worker_threads_run_their_own_runtime_and_know_their_index() {
        let build = || tokio::runtime::Builder::new_current_thread().enable_all().build();
        let (threads, handles) = Threads::start(3, build).unwrap();
        assert_eq!(handles.len(), 2);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let seen: Vec<(usize, String, tokio::runtime::RuntimeFlavor)> = rt.block_on(async {
            let mut seen = Vec::new();
            for h in &handles {
                let got = h.spawn(async {
                    let name = std::thread::current().name().unwrap_or_default().to_string();
                    (here(), name, Handle::current().runtime_flavor())
                });
                seen.push(got.await.unwrap());
            }
            seen
        });
        use tokio::runtime::RuntimeFlavor::CurrentThread;
        assert_eq!(
            seen,
            [(1, format!("{THREAD_PREFIX}1"), CurrentThread), (2, format!("{THREAD_PREFIX}2"), CurrentThread)]
        );
        assert_eq!(here(), 0, "the test's own thread is not a worker");
        threads.stop(STOP_LIMIT);
        assert!(rt.block_on(handles[0].spawn(async {})).is_err(), "the worker's runtime ended");
    }

    /// A worker thread stuck in one poll of a watched task is seen by the watchdog's detector,
    /// fed from the thread's own marks (as the daemon's watchdog feeds it).
    #[test]
    fn a_stalled_worker_thread_is_found_by_the_watchdog() {
        use crate::fate;
        let _alone = fate::THREAD_MARKS_TEST.lock().unwrap_or_else(|e| e.into_inner());
        let build = || {
            tokio::runtime::Builder::new_current_thread()
                .on_thread_park(fate::beat)
                .on_thread_unpark(fate::beat)
                .enable_all()
                .build()
        };
        let (threads, handles) = Threads::start(2, build).unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spin = stop.clone();
        handles[0].spawn(fate::watched(async move {
            let _ = tid_tx.send(nix::unistd::gettid().as_raw());
            // Bounded: at most 10 s, or until the test has seen the stall.
            let t = std::time::Instant::now();
            while !spin.load(Relaxed) && t.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
        }));
        let tid = tid_rx.recv_timeout(Duration::from_secs(10)).expect("the worker ran the task");
        let mut watch = fate::PollWatch::default();
        let t0 = std::time::Instant::now();
        let mut found = None;
        while found.is_none() && t0.elapsed() < Duration::from_secs(8) {
            std::thread::sleep(Duration::from_millis(10));
            let (ids, samples) = (fate::thread_ids(), fate::threads());
            let Some(i) = ids.iter().position(|&t| t == tid) else { continue };
            found = watch.observe(std::time::Instant::now(), &samples[i..=i], fate::STALL_THRESHOLD);
        }
        stop.store(true, Relaxed);
        threads.stop(STOP_LIMIT);
        let stuck = found.expect("the watchdog saw the worker thread stuck in one poll");
        assert!(stuck.wall >= fate::STALL_THRESHOLD, "{stuck:?}");
    }
}
