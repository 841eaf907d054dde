//! The parking lot: idle plain-HTTP client connections, waiting for their first byte or parked
//! between HTTP/1 requests, held as small structs by one task of the proxy instead of one
//! suspended task each (with its futures, its timer and its wake). The lot polls each socket's
//! readiness with a waker of its own, keeps one timer for the earliest deadline, and gives a
//! connection that turns readable a new task to serve it. HAProxy keeps an idle connection in
//! about 1 KiB; a task per connection alone cost more than that.

use super::{H1Idle, Held, Proxy};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a plain connection that has sent nothing waits in its own task before it moves to
/// the lot: most clients send their request at once, and are served without a move.
pub const FRESH_GRACE: Duration = Duration::from_millis(200);

/// What an idle connection waits with.
pub(super) enum Waiting {
    /// Accepted, nothing received yet (`h2`: a prior-knowledge HTTP/2 bind).
    Fresh { sock: TcpStream, h2: bool },
    /// Between HTTP/1 requests, its hyper connection let go, with something of its last
    /// request still held (a stalled write's timer, bytes to replay, lenient framing after an
    /// upgrade request): rare, so boxed.
    Parked(Box<H1Idle<TcpStream>>),
    /// Between HTTP/1 requests with nothing held but the socket: how most park.
    Bare(Bare),
}

/// A parked HTTP/1 connection reduced to its socket and what its next request needs of the
/// ones before (see `H1Idle::shed` and `H1Idle::resume`).
pub(super) struct Bare {
    pub sock: TcpStream,
    /// Exchanges done.
    pub done: u64,
    /// When the last one ended (the next one's idle time, `%Ti`, counts from it).
    pub since: Instant,
}

impl Waiting {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Fresh { sock, .. } | Self::Bare(Bare { sock, .. }) => sock,
            Self::Parked(idle) => idle.sock.get_ref().get_ref().get_ref().get_ref(),
        }
    }
}

/// One idle connection in the lot.
pub(super) struct Entry {
    pub waiting: Waiting,
    pub held: Held,
    /// When it is closed if nothing comes (`timeout http-request` / `http-keep-alive`).
    pub deadline: Instant,
    /// How long it may still wait once a stop began (a request already on its way is served).
    pub drain_grace: Duration,
}

/// What the connections' tasks hand to the lot task, and the keys their wakers report.
#[derive(Default)]
struct Inbox {
    new: Vec<Entry>,
    ready: Vec<usize>,
    /// The lot task runs (it is started by the first entry).
    running: bool,
    /// The lot task ended for good (a stop): connections wait in their own tasks again.
    closed: bool,
    /// The lot task's waker, to be woken by a new entry or a ready key.
    waker: Option<Waker>,
}

#[derive(Default)]
pub struct Lot {
    inbox: Arc<Mutex<Inbox>>,
}

impl Lot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        lock(&self.inbox)
    }
}

fn lock(m: &Mutex<Inbox>) -> std::sync::MutexGuard<'_, Inbox> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The waker of one entry: it files the entry's key and wakes the lot task. A key reused by
/// another entry may get a wake meant for the last one, which only costs a poll.
struct KeyWake {
    key: usize,
    inbox: Arc<Mutex<Inbox>>,
}

impl Wake for KeyWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut g = lock(&self.inbox);
            g.ready.push(self.key);
            g.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The entries and their deadlines: pure bookkeeping, no I/O, no clock.
struct Table<E> {
    entries: Vec<Option<(E, Instant)>>,
    /// Free keys below `entries.len()`, lowest taken first, so that the entries stay packed at
    /// the front and the table can give back its room once a burst has left (see `remove`).
    free: BTreeSet<usize>,
    by_deadline: BTreeSet<(Instant, usize)>,
}

/// Below this many slots the table keeps its room.
const KEEP_SLOTS: usize = 64;

impl<E> Default for Table<E> {
    fn default() -> Self {
        Self { entries: Vec::new(), free: BTreeSet::new(), by_deadline: BTreeSet::new() }
    }
}

impl<E> Table<E> {
    fn insert(&mut self, e: E, deadline: Instant) -> usize {
        let key = match self.free.pop_first() {
            Some(k) => {
                self.entries[k] = Some((e, deadline));
                k
            }
            None => {
                self.entries.push(Some((e, deadline)));
                self.entries.len() - 1
            }
        };
        self.by_deadline.insert((deadline, key));
        key
    }

    fn remove(&mut self, key: usize) -> Option<E> {
        let (e, deadline) = self.entries.get_mut(key)?.take()?;
        self.by_deadline.remove(&(deadline, key));
        self.free.insert(key);
        // Empty slots at the end go, and most of the room once the table is a quarter full:
        // 10,000 idle connections leave ~3 MiB of slots behind otherwise.
        while let Some(None) = self.entries.last() {
            self.entries.pop();
            self.free.remove(&self.entries.len());
        }
        if self.entries.capacity() > KEEP_SLOTS && self.entries.len() * 4 <= self.entries.capacity() {
            self.entries.shrink_to((self.entries.len() * 2).max(KEEP_SLOTS));
        }
        Some(e)
    }

    /// Slots the table holds room for.
    #[cfg(test)]
    fn room(&self) -> usize {
        self.entries.capacity()
    }

    /// Removes the entry when `pred` holds for it.
    fn remove_if(&mut self, key: usize, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        if self.get(key).is_some_and(pred) { self.remove(key) } else { None }
    }

    fn get(&self, key: usize) -> Option<&E> {
        self.entries.get(key)?.as_ref().map(|(e, _)| e)
    }

    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Brings a deadline earlier (never later).
    fn advance(&mut self, key: usize, to: Instant) {
        if let Some(Some((_, d))) = self.entries.get_mut(key)
            && to < *d
        {
            self.by_deadline.remove(&(*d, key));
            *d = to;
            self.by_deadline.insert((to, key));
        }
    }

    /// The keys whose deadline is at or before `now`, earliest first.
    fn due(&self, now: Instant) -> Vec<usize> {
        self.by_deadline.iter().take_while(|(d, _)| *d <= now).map(|&(_, k)| k).collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(d, _)| d)
    }

    fn keys(&self) -> Vec<usize> {
        self.entries.iter().enumerate().filter(|(_, e)| e.is_some()).map(|(k, _)| k).collect()
    }
}

/// What a poll of an idle socket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Bytes wait: serve it.
    Data,
    /// The client closed or the socket failed: close it.
    Gone,
    Pending,
}

/// `peek`, not read readiness: a fresh socket reports itself readable before anything arrived.
fn readiness(sock: &TcpStream, cx: &mut Context<'_>) -> Readiness {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    match sock.poll_peek(cx, &mut buf) {
        Poll::Ready(Ok(n)) if n > 0 => Readiness::Data,
        Poll::Ready(_) => Readiness::Gone,
        Poll::Pending => Readiness::Pending,
    }
}

/// A lot entry with its waker.
struct Slot {
    entry: Entry,
    waker: Waker,
}

impl Proxy {
    /// Hands an idle connection to the lot; gives it back once the lot has ended (a stop), and
    /// then it waits in its own task.
    // The entry is moved, not boxed: a box would be one more allocation per park.
    #[allow(clippy::result_large_err)]
    pub(super) fn park(self: &Arc<Self>, e: Entry) -> Result<(), Entry> {
        let index = self.lot_index();
        let (start, waker) = {
            let mut g = self.lots[index].lock();
            if g.closed {
                return Err(e);
            }
            g.new.push(e);
            let start = !g.running;
            g.running = true;
            (start, g.waker.take())
        };
        if start {
            self.tracker.spawn(crate::fate::watched(self.clone().run_lot(index)));
        } else if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// The lot of the proxy thread running this code (see `workers`); the first one off a proxy
    /// thread.
    fn lot_index(&self) -> usize {
        super::workers::here().min(self.lots.len() - 1)
    }

    /// The task of lot `index`, on that lot's thread: ends once a stop has closed every
    /// connection in it.
    async fn run_lot(self: Arc<Self>, index: usize) {
        let lot = &self.lots[index];
        let mut slots: Table<Slot> = Table::default();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut draining = false;
        let mut generation = self.reloads.borrow().generation;
        let mut kills = self.sessions.kills();
        loop {
            let wake = self.idle_wake.notified();
            tokio::pin!(wake);
            // Registered before the state is read, so a stop or reload in between still wakes it.
            wake.as_mut().enable();
            let now = Instant::now();
            if !draining && *self.drain.borrow() {
                draining = true;
                for key in slots.keys() {
                    let grace = slots.get(key).map_or(Duration::ZERO, |s| s.entry.drain_grace);
                    slots.advance(key, now + grace);
                }
            }
            let g = self.reloads.borrow().generation;
            if g != generation {
                generation = g;
                for key in slots.keys() {
                    let held = &slots.get(key).expect("listed").entry.held;
                    if self.reload_ends(held.active.generation, held.cx.local) {
                        close(slots.remove(key));
                    }
                }
            }
            // `shutdown session(s)` (rare): the killed ones go.
            let k = self.sessions.kills();
            if k != kills {
                kills = k;
                for key in slots.keys() {
                    if slots.get(key).expect("listed").entry.held.cx.sess.is_killed() {
                        close(slots.remove(key));
                    }
                }
            }
            let (new, ready) = {
                let mut g = lot.lock();
                (std::mem::take(&mut g.new), std::mem::take(&mut g.ready))
            };
            for mut entry in new {
                if draining {
                    entry.deadline = entry.deadline.min(now + entry.drain_grace);
                }
                if self.reload_ends(entry.held.active.generation, entry.held.cx.local) || entry.held.cx.sess.is_killed()
                {
                    close(Some(Slot { entry, waker: Waker::noop().clone() }));
                    continue;
                }
                let deadline = entry.deadline;
                let key = slots.insert(Slot { entry, waker: Waker::noop().clone() }, deadline);
                let waker = Waker::from(Arc::new(KeyWake { key, inbox: lot.inbox.clone() }));
                if let Some(Some((slot, _))) = slots.entries.get_mut(key) {
                    slot.waker = waker;
                }
                self.poll_slot(&mut slots, key);
            }
            for key in ready {
                self.poll_slot(&mut slots, key);
            }
            for key in slots.due(now) {
                // A fresh connection's deadline is its head's: HAProxy's 408 (unless ignored).
                if let Some(Slot {
                    entry: Entry { waiting: Waiting::Fresh { sock, h2 }, held, deadline, .. }, ..
                }) = slots.remove_if(key, |s| !draining && matches!(s.entry.waiting, Waiting::Fresh { .. }))
                {
                    let p = self.clone();
                    self.tracker.spawn(crate::fate::watched(async move { p.silent(sock, held, h2, deadline).await }));
                    continue;
                }
                tracing::debug!("idle client connection closed (timeout http-request / http-keep-alive)");
                close(slots.remove(key));
            }
            if draining && slots.len() == 0 {
                let mut g = lot.lock();
                if g.new.is_empty() {
                    g.closed = true;
                    g.running = false;
                    return;
                }
                continue;
            }
            if let Some(d) = slots.next_deadline() {
                sleep.as_mut().reset(d);
            } else {
                sleep.as_mut().reset(now + Duration::from_secs(3600));
            }
            std::future::poll_fn(|cx| {
                {
                    let mut g = lot.lock();
                    if !g.new.is_empty() || !g.ready.is_empty() {
                        return Poll::Ready(());
                    }
                    g.waker = Some(cx.waker().clone());
                }
                if wake.as_mut().poll(cx).is_ready() || sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
        }
    }

    /// Polls one entry's socket: data gives it a task of its own, a closed socket ends it.
    fn poll_slot(self: &Arc<Self>, slots: &mut Table<Slot>, key: usize) {
        let Some(slot) = slots.get(key) else { return };
        let mut cx = Context::from_waker(&slot.waker);
        match readiness(slot.entry.waiting.tcp(), &mut cx) {
            Readiness::Pending => {}
            // A fresh connection that closed is served too: the framing guard makes it a probe's
            // 400 (or closes it unanswered with `option http-ignore-probes`).
            Readiness::Gone if !matches!(slot.entry.waiting, Waiting::Fresh { .. }) => close(slots.remove(key)),
            Readiness::Gone | Readiness::Data => {
                let Some(Slot { entry, .. }) = slots.remove(key) else { return };
                let p = self.clone();
                self.tracker.spawn(crate::fate::watched(async move { p.resume(entry.waiting, entry.held).await }));
            }
        }
    }

    /// Serves a connection that left the lot.
    async fn resume(self: Arc<Self>, waiting: Waiting, held: Held) {
        match waiting {
            Waiting::Fresh { sock, h2 } => self.serve_fresh(sock, held, h2).await,
            Waiting::Parked(idle) => self.serve_h1_plain(*idle, held).await,
            Waiting::Bare(bare) => {
                let idle = H1Idle::resume(bare, &held.cx, &held.http(false));
                self.serve_h1_plain(idle, held).await
            }
        }
    }
}

/// Closes an idle connection: a parked one says goodbye first (its socket is plain TCP, whose
/// shutdown does not wait); its session ends with `Held`.
fn close(slot: Option<Slot>) {
    let Some(Slot { entry, .. }) = slot else { return };
    use futures::FutureExt;
    use tokio::io::AsyncWriteExt;
    match entry.waiting {
        Waiting::Parked(mut idle) => {
            let _ = idle.sock.shutdown().now_or_never();
        }
        Waiting::Bare(Bare { mut sock, .. }) => {
            let _ = sock.shutdown().now_or_never();
        }
        Waiting::Fresh { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn entries_come_due_earliest_first_and_only_once_their_deadline_passed() {
        let t0 = Instant::now();
        let mut s = Table::default();
        let a = s.insert("a", at(t0, 30));
        let b = s.insert("b", at(t0, 10));
        let c = s.insert("c", at(t0, 20));
        assert_eq!(s.next_deadline(), Some(at(t0, 10)));
        assert!(s.due(at(t0, 9)).is_empty());
        assert_eq!(s.due(at(t0, 20)), vec![b, c]);
        assert_eq!(s.due(at(t0, 60)), vec![b, c, a]);
    }

    #[test]
    fn a_removed_entry_never_comes_due_and_its_key_is_reused() {
        let t0 = Instant::now();
        let mut s = Table::default();
        let a = s.insert("a", at(t0, 10));
        let b = s.insert("b", at(t0, 20));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None, "removed once");
        assert_eq!(s.due(at(t0, 15)), Vec::<usize>::new());
        assert_eq!(s.next_deadline(), Some(at(t0, 20)));
        let c = s.insert("c", at(t0, 5));
        assert_eq!(c, a, "the free key is taken again");
        assert_eq!(s.len(), 2);
        assert_eq!(s.due(at(t0, 30)), vec![c, b]);
        assert_eq!(s.get(c), Some(&"c"));
    }

    #[test]
    fn a_stop_brings_deadlines_earlier_but_never_later() {
        let t0 = Instant::now();
        let mut s = Table::default();
        let far = s.insert("far", at(t0, 3600));
        let near = s.insert("near", at(t0, 1));
        for k in s.keys() {
            s.advance(k, at(t0, 2));
        }
        assert_eq!(s.due(at(t0, 1)), vec![near], "the nearer deadline stays");
        assert_eq!(s.due(at(t0, 2)), vec![near, far]);
        assert_eq!(s.next_deadline(), Some(at(t0, 1)));
    }

    #[test]
    fn the_lowest_free_key_is_taken_first_and_a_burst_gives_its_room_back() {
        let t0 = Instant::now();
        let mut s = Table::default();
        let keys: Vec<usize> = (0..10_000).map(|i| s.insert(i, at(t0, 10))).collect();
        assert!(s.room() >= 10_000);
        s.remove(keys[3]);
        s.remove(keys[7]);
        assert_eq!(s.insert(100_000, at(t0, 10)), keys[3], "lowest free key first");
        assert_eq!(s.insert(100_001, at(t0, 10)), keys[7]);
        // The burst leaves, all but a few early entries.
        for &k in &keys[10..] {
            assert!(s.remove(k).is_some());
        }
        assert_eq!(s.len(), 10);
        assert!(s.room() <= 2 * KEEP_SLOTS, "room for {} slots kept after the burst", s.room());
        // What stayed is all there, and its keys still work.
        assert_eq!(s.get(keys[0]), Some(&0));
        assert_eq!(s.get(keys[3]), Some(&100_000));
        assert_eq!(s.get(keys[9]), Some(&9));
        assert_eq!(s.due(at(t0, 10)).len(), 10);
        // A key removed with the tail is free again once the table grows past it.
        assert_eq!(s.get(keys[500]), None);
        let again: Vec<usize> = (0..20).map(|i| s.insert(i, at(t0, 20))).collect();
        assert_eq!(again, (10..30).collect::<Vec<_>>(), "keys are handed out packed");
        for k in s.keys() {
            s.remove(k);
        }
        assert_eq!(s.len(), 0);
        assert!(s.room() <= KEEP_SLOTS, "room for {} slots kept once empty", s.room());
        assert!(s.next_deadline().is_none());
    }

    #[tokio::test]
    async fn a_socket_is_ready_on_data_gone_on_close_and_pending_otherwise() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (sock, _) = l.accept().await.unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(readiness(&sock, &mut cx), Readiness::Pending, "connected, nothing sent");
        client.write_all(b"G").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while readiness(&sock, &mut cx) == Readiness::Pending {
            assert!(Instant::now() < deadline, "the byte never showed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(readiness(&sock, &mut cx), Readiness::Data, "peeked, not taken");
        let (sock2, _) = {
            let c2 = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let got = l.accept().await.unwrap();
            drop(c2);
            got
        };
        while readiness(&sock2, &mut cx) == Readiness::Pending {
            assert!(Instant::now() < deadline, "the close never showed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(readiness(&sock2, &mut cx), Readiness::Gone);
    }
}
