//! Writes made at the end of a batch (one proxy thread: the current-thread runtime). A task that
//! writes as soon as it has processed its input paces those writes with its own processing, and a
//! peer faster per message than the proxy falls asleep between two of them: one wake-up (an IPI,
//! a scheduler round) per message. HAProxy receives a batch first and sends after, and wakes its
//! peers about a quarter as often (bench/PROFILE.md, sessions 7, 13 and 14). Here the bytes are
//! queued on the thread; one flusher task, woken by the first write of a batch and so run after
//! the tasks already woken, writes them all with one non-blocking `send` each. The writer is not
//! woken for a write that went through whole: it goes on waiting for its next input (a server's
//! response, a client's next request), and only a short or failed write wakes it.
//!
//! Two users: [`write`], a future for a request to a server (`h1client`), and [`Queued`], a handle
//! a client connection keeps while its response waits (`h1server`).
//!
//! Safety of writing by descriptor: the flusher writes while holding the write's slot lock, and a
//! queued write's drop (on whichever thread) withdraws it under that lock before its socket can
//! close (each user's contract says how).

use crate::state::Counters;
use parking_lot::Mutex;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use tokio::net::TcpStream;

/// What became of a queued write.
#[derive(Debug)]
enum State {
    Queued,
    /// Bytes the socket took (fewer than all, or none on `EAGAIN`: the owner writes the rest).
    Sent(usize),
    Failed(io::Error),
    Withdrawn,
}

#[derive(Debug)]
struct Slot {
    state: State,
    bytes: Vec<u8>,
    waker: Option<Waker>,
    /// Wake the owner even after a whole write: its socket's read readiness could not be
    /// registered (tokio still counted it readable), so no response would wake it.
    wake_always: bool,
    /// Where the bytes the flusher wrote are counted, as the connection's socket wrapper
    /// (`io::StallGuard`) counts its own writes: at once, not when the owner next runs.
    counters: Option<Arc<Counters>>,
}

type Shared = Arc<Mutex<Slot>>;

/// parking_lot's lock: taken about six times per request at one thread, always uncontended
/// (one thread), where std's also checks the panic count when taken and released. A panic
/// while a slot is held leaves it usable, as taking std's lock through its poison did.
fn lock(s: &Shared) -> parking_lot::MutexGuard<'_, Slot> {
    s.lock()
}

#[derive(Default)]
struct Queue {
    items: Vec<(RawFd, Shared)>,
    flusher: Option<Waker>,
    /// The flusher task is gone (its runtime shut down): a new one is needed.
    dead: bool,
}

type QueueRef = Arc<Mutex<Queue>>;

thread_local! {
    /// This thread's queue and the runtime whose flusher drains it.
    static QUEUE: std::cell::RefCell<Option<(tokio::runtime::Id, QueueRef)>> = const { std::cell::RefCell::new(None) };
}

/// This thread's batch, held by a connection that queues a write per request (looked up once,
/// not per write). See [`Queued::new`].
#[derive(Clone)]
pub struct Batch(QueueRef);

impl Batch {
    /// The batch of the runtime running this code; none off a current-thread runtime.
    pub fn here() -> Option<Self> {
        queue().map(Batch)
    }

    /// Still the batch this thread's writes go to (the last one it looked up), its flusher alive:
    /// one thread-local read, not the runtime's handle.
    fn is_here(&self) -> bool {
        QUEUE.with(|q| q.borrow().as_ref().is_some_and(|(_, queue)| Arc::ptr_eq(queue, &self.0))) && !self.0.lock().dead
    }
}

/// A write handed to this thread's flusher, owned by the connection whose socket it goes to.
/// Dropping it withdraws the write if the flusher has not made it yet.
#[derive(Debug)]
pub struct Queued {
    /// Always some; taken only by [`Queued::settle`].
    slot: Option<Shared>,
}

/// A queued write, over: its buffer back, and what the socket took.
#[derive(Debug)]
pub struct Settled {
    pub bytes: Vec<u8>,
    /// Ok(n): the socket took the first `n` bytes (none when the write was withdrawn before the
    /// flusher ran, or the socket was full); Err: the write failed and took nothing.
    pub taken: io::Result<usize>,
    /// The write's slot, for the connection's next write (one allocation less per write).
    pub spare: Option<Spare>,
}

/// The slot of a settled write that nothing else holds any more.
#[derive(Debug)]
pub struct Spare(Shared);

impl Queued {
    /// Queues `bytes` for `fd` on `batch`, to be written after the current batch of tasks;
    /// `waker` is woken if the write does not go through whole. `spare`: a slot to reuse. Err
    /// gives the bytes back when the batch's flusher is gone (its runtime is shutting down): the
    /// caller writes them itself.
    ///
    /// # Safety
    /// `fd` must stay open for as long as the returned value lives: drop it (or [`settle`] it)
    /// before the socket closes, and never leak it (`mem::forget`, a reference cycle), or the
    /// flusher could write to a descriptor since closed and reused.
    ///
    /// [`settle`]: Queued::settle
    pub unsafe fn new(
        batch: &Batch,
        fd: RawFd,
        bytes: Vec<u8>,
        counters: Option<&Arc<Counters>>,
        waker: &Waker,
        spare: Option<Spare>,
    ) -> Result<Self, Vec<u8>> {
        let mut q = batch.0.lock();
        if q.dead {
            return Err(bytes);
        }
        let slot = match spare {
            Some(Spare(slot)) => {
                {
                    let mut s = lock(&slot);
                    s.state = State::Queued;
                    s.bytes = bytes;
                    if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        s.waker = Some(waker.clone());
                    }
                    s.wake_always = false;
                    if s.counters.as_ref().map(Arc::as_ptr) != counters.map(Arc::as_ptr) {
                        s.counters = counters.cloned();
                    }
                }
                slot
            }
            None => Arc::new(Mutex::new(Slot {
                state: State::Queued,
                bytes,
                waker: Some(waker.clone()),
                wake_always: false,
                counters: counters.cloned(),
            })),
        };
        q.items.push((fd, slot.clone()));
        let flusher = q.flusher.take();
        drop(q);
        if let Some(w) = flusher {
            w.wake();
        }
        Ok(Self { slot: Some(slot) })
    }

    fn slot(&self) -> &Shared {
        self.slot.as_ref().expect("settled only once")
    }

    /// Still waiting for the flusher: `more` joins the same write (true). False once the flusher
    /// has made it: the caller settles it first, then writes `more` after what it did not take.
    pub fn append(&self, more: &[u8]) -> bool {
        let mut s = lock(self.slot());
        let queued = matches!(s.state, State::Queued);
        if queued {
            s.bytes.extend_from_slice(more);
        }
        queued
    }

    /// Whether the flusher has made the write (then [`Queued::settle`] says how it went); while
    /// it has not, `waker` is the one it wakes if the write does not go through whole.
    pub fn is_done(&self, waker: &Waker) -> bool {
        let mut s = lock(self.slot());
        if !matches!(s.state, State::Queued) {
            return true;
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.waker = Some(waker.clone());
        }
        false
    }

    /// The write's outcome, withdrawn first if the flusher has not made it yet (then nothing was
    /// taken, and the bytes come back whole).
    pub fn settle(self) -> Settled {
        self.settle_with(true)
    }

    /// [`Queued::settle`]; `keep_waker` false lets go of the owner's waker in the slot (a slot
    /// that goes to whichever task next uses a pooled connection must not keep this one's task
    /// allocated).
    fn settle_with(mut self, keep_waker: bool) -> Settled {
        let slot = self.slot.take().expect("settled only once");
        let (bytes, taken) = {
            let mut s = lock(&slot);
            if !keep_waker {
                s.waker = None;
            }
            let taken = match std::mem::replace(&mut s.state, State::Withdrawn) {
                State::Sent(n) => Ok(n),
                State::Failed(e) => Err(e),
                State::Queued | State::Withdrawn => Ok(0),
            };
            (std::mem::take(&mut s.bytes), taken)
        };
        // Withdrawn, and no longer in the queue (the flusher dropped its clone): reusable.
        let spare = (Arc::strong_count(&slot) == 1).then_some(Spare(slot));
        Settled { bytes, taken, spare }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            let mut s = lock(slot);
            if matches!(s.state, State::Queued) {
                s.state = State::Withdrawn;
            }
        }
    }
}

/// What a connection that writes one request after another through [`write`] keeps between
/// them: its thread's batch, looked up at its first write (the lookup reads the runtime's handle,
/// ~150 instructions), and the slot of its last write (no allocation per write).
#[derive(Default)]
pub struct Writer {
    /// None until the first write; then the batch, or none off a current-thread runtime.
    batch: Option<Option<Batch>>,
    spare: Option<Spare>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("looked_up", &self.batch.is_some()).finish()
    }
}

/// Writes `bytes` to `io` at the end of the current batch, or at once when the runtime is not a
/// current-thread one. Resolves to what `write` would: the bytes the socket took (none when it
/// was full: the caller writes the rest), or the error of a write that took none. `bytes` is lent
/// to the queue and given back (same allocation) when the future resolves or is dropped. The
/// future is woken by `io`'s read readiness (the response), or by the flusher when the write did
/// not go through whole. `writer` is the connection's, kept with `io`; a pooled connection moves
/// between threads, and its writer then looks up the new thread's batch.
///
/// # Safety
/// The returned future must be dropped (awaited, or dropped before `io` closes), never leaked
/// (`mem::forget`): its drop is what withdraws the queued write of `io`'s descriptor.
pub unsafe fn write<'a>(io: &'a TcpStream, bytes: &'a mut Vec<u8>, writer: &'a mut Writer) -> Write<'a> {
    Write { io, bytes, writer, queued: None }
}

pub struct Write<'a> {
    io: &'a TcpStream,
    bytes: &'a mut Vec<u8>,
    writer: &'a mut Writer,
    /// Declared before nothing that owns `io`: `io` is borrowed, and this future's own contract
    /// (see [`write`]) keeps it open while the write is queued.
    queued: Option<Queued>,
}

impl Future for Write<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &this.queued {
            None => {
                let bytes = std::mem::take(this.bytes);
                let w = &mut *this.writer;
                // Pooled connections go to any proxy thread: the batch kept is used only while
                // it is still this thread's and its flusher lives, else looked up again.
                if w.batch.as_ref().is_some_and(|b| b.as_ref().is_none_or(|b| !b.is_here())) {
                    w.batch = None;
                }
                let queued = match w.batch.get_or_insert_with(Batch::here) {
                    // SAFETY: `write`'s contract: this future, which holds the handle, is
                    // dropped before `io` closes and is not leaked.
                    Some(b) => unsafe { Queued::new(b, this.io.as_raw_fd(), bytes, None, cx.waker(), w.spare.take()) },
                    None => Err(bytes),
                };
                match queued {
                    Ok(q) => this.queued = Some(q),
                    Err(bytes) => {
                        *this.bytes = bytes;
                        return Poll::Ready(match write_now(this.io.as_raw_fd(), this.bytes) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                            r => r,
                        });
                    }
                }
            }
            Some(q) if q.is_done(cx.waker()) => {
                let s = this.queued.take().expect("queued").settle_with(false);
                *this.bytes = s.bytes;
                this.writer.spare = s.spare;
                return Poll::Ready(s.taken);
            }
            Some(_) => {}
        }
        // Still queued: wait for the response (read readiness) or the flusher's word.
        let readable = this.io.poll_read_ready(cx).is_ready();
        if readable && let Some(q) = &this.queued {
            lock(q.slot()).wake_always = true;
        }
        Poll::Pending
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        // The owner may still use its buffer (e.g. to retry elsewhere): give it back.
        if let Some(q) = self.queued.take() {
            let s = q.settle_with(false);
            *self.bytes = s.bytes;
            self.writer.spare = s.spare;
        }
    }
}

/// This thread's queue, started with its flusher on first use; `None` off a current-thread
/// runtime.
fn queue() -> Option<QueueRef> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
        return None;
    }
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        // Drained by this runtime's flusher (a thread may run another runtime after, or inside).
        if let Some((id, queue)) = q.as_ref()
            && *id == handle.id()
            && !queue.lock().dead
        {
            return Some(queue.clone());
        }
        let queue = QueueRef::default();
        handle.spawn(Flusher { queue: queue.clone() });
        *q = Some((handle.id(), queue.clone()));
        Some(queue)
    })
}

/// The thread's flusher: writes every queued write each time it runs.
struct Flusher {
    queue: QueueRef,
}

impl Future for Flusher {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let items = {
            let mut q = self.queue.lock();
            q.flusher = Some(cx.waker().clone());
            std::mem::take(&mut q.items)
        };
        for (fd, slot) in items {
            let mut s = lock(&slot);
            if !matches!(s.state, State::Queued) {
                continue;
            }
            let r = write_now(fd, &s.bytes);
            let whole = matches!(r, Ok(n) if n == s.bytes.len());
            if let (Ok(n), Some(c)) = (&r, &s.counters) {
                c.bytes_out.fetch_add(*n as u64, Relaxed);
            }
            s.state = match r {
                Ok(n) => State::Sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => State::Sent(0),
                Err(e) => State::Failed(e),
            };
            let wake = (!whole || s.wake_always).then(|| s.waker.take()).flatten();
            drop(s);
            if let Some(w) = wake {
                w.wake();
            }
        }
        Poll::Pending
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        let mut q = self.queue.lock();
        q.dead = true;
        // Whoever still waits is told its write did not happen.
        for (_, slot) in q.items.drain(..) {
            let mut s = lock(&slot);
            if matches!(s.state, State::Queued) {
                s.state = State::Sent(0);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }
}

/// One non-blocking `send` on a socket the caller keeps open.
fn write_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // The socket belongs to a task that is alive: either the caller's own, or a queued write's
    // owner, which withdraws the write before its socket closes (one thread).
    use nix::sys::socket::{MsgFlags, send};
    send(fd, bytes, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::AsyncReadExt;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[test]
    fn writes_of_a_batch_go_out_after_the_batch_and_wake_nobody_when_whole() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let (b, mut b_peer) = pair().await;
            let order = Arc::new(Mutex::new(Vec::new()));
            let task = |io: TcpStream, name: &'static str, order: Arc<Mutex<Vec<String>>>| async move {
                let mut bytes = name.as_bytes().to_vec();
                // SAFETY: awaited in place.
                let mut writer = Writer::default();
                let n = unsafe { write(&io, &mut bytes, &mut writer) }.await.unwrap();
                order.lock().unwrap().push(format!("{name} resolved {n}"));
                assert_eq!(bytes, name.as_bytes(), "the buffer comes back");
                // Keep the socket until the peer has read.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                drop(io);
            };
            let t1 = tokio::spawn(task(a, "one", order.clone()));
            let t2 = tokio::spawn(task(b, "two", order.clone()));
            let (mut x, mut y) = ([0u8; 3], [0u8; 3]);
            a_peer.read_exact(&mut x).await.unwrap();
            b_peer.read_exact(&mut y).await.unwrap();
            assert_eq!((&x, &y), (b"one", b"two"));
            // Nothing woke the writers (no response, whole writes): they are still waiting.
            assert!(order.lock().unwrap().is_empty(), "{:?}", order.lock().unwrap());
            // A response wakes each.
            use tokio::io::AsyncWriteExt;
            a_peer.write_all(b"r").await.unwrap();
            b_peer.write_all(b"r").await.unwrap();
            t1.await.unwrap();
            t2.await.unwrap();
            assert_eq!(order.lock().unwrap().len(), 2);
        });
    }

    #[test]
    fn a_failed_write_wakes_its_owner_with_the_error_and_a_withdrawn_one_is_not_written() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, a_peer) = pair().await;
            // The peer is gone and has reset: the send fails.
            socket2::SockRef::from(&a_peer).set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(a_peer);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let mut bytes = b"x".to_vec();
            let mut writer = Writer::default();
            let mut last = Ok(1);
            // The first send after a reset may still be taken; the next one fails.
            for _ in 0..3 {
                // SAFETY: awaited in place.
                last = unsafe { write(&a, &mut bytes, &mut writer) }.await;
                if last.is_err() {
                    break;
                }
            }
            assert!(last.is_err(), "{last:?}");

            let (b, mut b_peer) = pair().await;
            let mut bytes = b"never".to_vec();
            let mut writer = Writer::default();
            // SAFETY: dropped below, before `b`.
            let mut w = Box::pin(unsafe { write(&b, &mut bytes, &mut writer) });
            let waker = std::task::Waker::noop();
            assert!(w.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
            drop(w);
            assert_eq!(bytes, b"never", "the buffer comes back when withdrawn");
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            drop(b);
            let mut got = Vec::new();
            b_peer.read_to_end(&mut got).await.unwrap();
            assert!(got.is_empty(), "a withdrawn write reached the socket: {got:?}");
        });
    }

    #[test]
    fn off_a_current_thread_runtime_the_write_is_immediate() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let mut bytes = b"now".to_vec();
            // SAFETY: awaited in place.
            let mut writer = Writer::default();
            assert_eq!(unsafe { write(&a, &mut bytes, &mut writer) }.await.unwrap(), 3);
            let mut x = [0u8; 3];
            a_peer.read_exact(&mut x).await.unwrap();
            assert_eq!(&x, b"now");
        });
    }

    #[test]
    fn a_writer_keeps_its_batch_and_reuses_its_slot_from_one_write_to_the_next() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let mut writer = Writer::default();
            let mut bytes = b"one ".to_vec();
            let waker = Waker::noop();
            let mut cx = Context::from_waker(waker);
            // SAFETY: dropped below, before `a`.
            let mut w = Box::pin(unsafe { write(&a, &mut bytes, &mut writer) });
            assert!(w.as_mut().poll(&mut cx).is_pending(), "queued for the batch's end");
            tokio::task::yield_now().await;
            assert_eq!(w.as_mut().poll(&mut cx).map(|r| r.unwrap()), Poll::Ready(4));
            drop(w);
            assert!(matches!(writer.batch, Some(Some(_))), "looked up once, kept");
            let first = Arc::as_ptr(&writer.spare.as_ref().expect("the written slot is kept").0);
            let mut bytes = b"two".to_vec();
            // SAFETY: as above.
            let mut w = Box::pin(unsafe { write(&a, &mut bytes, &mut writer) });
            assert!(w.as_mut().poll(&mut cx).is_pending());
            tokio::task::yield_now().await;
            assert_eq!(w.as_mut().poll(&mut cx).map(|r| r.unwrap()), Poll::Ready(3));
            drop(w);
            assert_eq!(Arc::as_ptr(&writer.spare.as_ref().unwrap().0), first, "the same slot");
            let mut got = [0u8; 7];
            a_peer.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"one two");
        });
    }

    /// One write through the batch, polled until the flusher has made it (no response comes).
    async fn write_once(io: &TcpStream, bytes: &mut Vec<u8>, writer: &mut Writer) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        // SAFETY: dropped below, before `io`.
        let mut w = Box::pin(unsafe { write(io, bytes, writer) });
        assert!(w.as_mut().poll(&mut cx).is_pending(), "queued for the batch's end");
        tokio::task::yield_now().await;
        match w.as_mut().poll(&mut cx) {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => panic!("the flusher has not run"),
        }
    }

    #[test]
    fn a_writer_used_on_another_thread_takes_that_threads_batch() {
        let mut writer = Writer::default();
        let first = std::thread::scope(|t| {
            t.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let (a, mut a_peer) = pair().await;
                    let mut bytes = b"one".to_vec();
                    assert_eq!(write_once(&a, &mut bytes, &mut writer).await, 3);
                    let mut got = [0u8; 3];
                    a_peer.read_exact(&mut got).await.unwrap();
                    writer.batch.clone().flatten().expect("a batch")
                })
            })
            .join()
            .unwrap()
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let mut bytes = b"two".to_vec();
            assert_eq!(write_once(&a, &mut bytes, &mut writer).await, 3);
            let now = writer.batch.clone().flatten().expect("a batch");
            assert!(!Arc::ptr_eq(&now.0, &first.0), "the first thread's batch was kept");
            assert!(Arc::ptr_eq(&now.0, &here().0), "this thread's batch");
            let mut got = [0u8; 3];
            a_peer.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"two");
        });
    }

    fn here() -> Batch {
        Batch::here().expect("a current-thread runtime")
    }

    fn noop() -> &'static Waker {
        Waker::noop()
    }

    /// Wakes counted, for the owner of a queued write.
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn queued_writes_go_out_after_the_batch_counted_joined_and_settled_whole_without_a_wake() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let counters = Arc::new(Counters::default());
            let woken = Arc::new(Count(Default::default()));
            let waker = Waker::from(woken.clone());
            // SAFETY: `q` is settled below, before `a` is dropped.
            let q = unsafe {
                Queued::new(&here(), a.as_raw_fd(), b"HTTP/1.1 200 OK\r\n".to_vec(), Some(&counters), &waker, None)
            }
            .unwrap();
            assert!(!q.is_done(&waker), "written only after the batch");
            assert!(q.append(b"\r\n"), "joins the write still queued");
            tokio::task::yield_now().await;
            assert!(q.is_done(&waker));
            assert!(!q.append(b"late"), "the flusher has made the write");
            let s = q.settle();
            assert_eq!((s.taken.unwrap(), &s.bytes[..]), (19, &b"HTTP/1.1 200 OK\r\n\r\n"[..]));
            assert_eq!(counters.bytes_out.load(Relaxed), 19, "counted at the write");
            assert_eq!(woken.0.load(Relaxed), 0, "a whole write wakes nobody");
            let mut got = [0u8; 19];
            a_peer.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"HTTP/1.1 200 OK\r\n\r\n");
        });
    }

    #[test]
    fn a_dropped_or_settled_queued_write_is_withdrawn_and_its_bytes_come_back_untaken() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            // SAFETY: both handles are gone before `a` is dropped.
            let q = unsafe { Queued::new(&here(), a.as_raw_fd(), b"one".to_vec(), None, noop(), None) }.unwrap();
            let s = q.settle();
            assert_eq!((s.taken.unwrap(), &s.bytes[..]), (0, &b"one"[..]));
            // SAFETY: as above.
            drop(unsafe { Queued::new(&here(), a.as_raw_fd(), b"two".to_vec(), None, noop(), None) }.unwrap());
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            drop(a);
            let mut got = Vec::new();
            a_peer.read_to_end(&mut got).await.unwrap();
            assert!(got.is_empty(), "a withdrawn write reached the socket: {got:?}");
        });
    }

    #[test]
    fn a_queued_write_the_socket_takes_short_wakes_its_owner_with_what_was_taken() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (a, _a_peer) = pair().await;
            socket2::SockRef::from(&a).set_send_buffer_size(4096).unwrap();
            let counters = Arc::new(Counters::default());
            let woken = Arc::new(Count(Default::default()));
            let waker = Waker::from(woken.clone());
            // More than the socket and its unread peer can hold.
            let big = vec![b'x'; 16 << 20];
            // SAFETY: settled below, before `a` is dropped.
            let q = unsafe { Queued::new(&here(), a.as_raw_fd(), big, Some(&counters), &waker, None) }.unwrap();
            tokio::task::yield_now().await;
            assert!(q.is_done(&waker));
            assert_eq!(woken.0.load(Relaxed), 1, "the owner writes the rest");
            let s = q.settle();
            let n = s.taken.unwrap();
            assert!(n < s.bytes.len(), "{n}");
            assert_eq!(counters.bytes_out.load(Relaxed), n as u64);
        });
    }

    #[test]
    fn off_a_current_thread_runtime_there_is_no_batch() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            assert!(Batch::here().is_none());
        });
    }

    #[test]
    fn a_settled_slot_is_reused_for_the_next_write_and_a_dead_batch_queues_nothing() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (batch, a, a_peer) = rt.block_on(async {
            let (a, mut a_peer) = pair().await;
            let b = here();
            // SAFETY: each handle is settled below, before `a` is dropped.
            let q = unsafe { Queued::new(&b, a.as_raw_fd(), b"one ".to_vec(), None, noop(), None) }.unwrap();
            tokio::task::yield_now().await;
            let s = q.settle();
            assert_eq!(s.taken.unwrap(), 4);
            let spare = s.spare.expect("written and out of the queue: reusable");
            // SAFETY: as above.
            let q = unsafe { Queued::new(&b, a.as_raw_fd(), b"two".to_vec(), None, noop(), Some(spare)) }.unwrap();
            tokio::task::yield_now().await;
            let s = q.settle();
            assert_eq!((s.taken.unwrap(), &s.bytes[..]), (3, &b"two"[..]));
            let mut got = [0u8; 7];
            a_peer.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"one two");
            // Withdrawn before the flusher ran: the queue still holds the slot.
            // SAFETY: as above.
            let q = unsafe { Queued::new(&b, a.as_raw_fd(), b"x".to_vec(), None, noop(), s.spare) }.unwrap();
            assert!(q.settle().spare.is_none());
            (b, a, a_peer)
        });
        // The runtime, and its flusher, are gone.
        drop(rt);
        // SAFETY: nothing is queued (Err).
        let r = unsafe { Queued::new(&batch, a.as_raw_fd(), b"late".to_vec(), None, noop(), None) };
        assert_eq!(r.unwrap_err(), b"late");
        drop((a, a_peer));
    }
}
