//! Requests to servers written at the end of a batch (one proxy thread: the current-thread
//! runtime). A task that reads a request and writes it to its server at once paces those writes
//! with its own processing, and a server faster per request than the proxy falls asleep between
//! two of them: one wake-up (an IPI, a scheduler round) per request. HAProxy receives a batch
//! first and sends after, and wakes its servers about a quarter as often (bench/PROFILE.md,
//! session 7). Here the request's bytes are queued on the thread; one flusher task, woken by the
//! first request of a batch and so run after the tasks already woken, writes them all, and the
//! requesting task goes on to wait for its response without an extra poll: it is woken by the
//! response, or by the flusher when the write did not go through whole.
//!
//! Safety of writing by descriptor: the runtime has one thread, so the flusher never runs while a
//! requesting task is dropped; the pending write's drop withdraws it before its socket can close.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
}

type Shared = Arc<Mutex<Slot>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Slot> {
    s.lock().unwrap_or_else(|p| p.into_inner())
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

/// Writes `bytes` to `io` at the end of the current batch, or at once when the runtime is not a
/// current-thread one. Resolves to what `write` would: the bytes the socket took (none when it
/// was full: the caller writes the rest), or the error of a write that took none. `bytes` is lent
/// to the queue and given back (same allocation) when the future resolves or is dropped.
///
/// # Safety
/// The returned future must be dropped (awaited, or dropped before `io` closes), never leaked
/// (`mem::forget`): its drop is what withdraws the queued write of `io`'s descriptor.
pub unsafe fn write<'a>(io: &'a TcpStream, bytes: &'a mut Vec<u8>) -> Write<'a> {
    Write { io, bytes, slot: None }
}

pub struct Write<'a> {
    io: &'a TcpStream,
    bytes: &'a mut Vec<u8>,
    slot: Option<Shared>,
}

impl Future for Write<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(slot) = &this.slot else {
            let Some(queue) = queue() else {
                return Poll::Ready(match write_now(this.io.as_raw_fd(), this.bytes) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    r => r,
                });
            };
            let slot = Arc::new(Mutex::new(Slot {
                state: State::Queued,
                bytes: std::mem::take(this.bytes),
                waker: None,
                wake_always: false,
            }));
            let flusher = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                q.items.push((this.io.as_raw_fd(), slot.clone()));
                q.flusher.take()
            };
            if let Some(w) = flusher {
                w.wake();
            }
            this.slot = Some(slot);
            return this.wait(cx);
        };
        let mut s = lock(slot);
        if matches!(s.state, State::Queued) {
            drop(s);
            return this.wait(cx);
        }
        *this.bytes = std::mem::take(&mut s.bytes);
        let out = match std::mem::replace(&mut s.state, State::Withdrawn) {
            State::Sent(n) => Ok(n),
            State::Failed(e) => Err(e),
            State::Queued | State::Withdrawn => unreachable!("answered above"),
        };
        drop(s);
        this.slot = None;
        Poll::Ready(out)
    }
}

impl Write<'_> {
    /// Still queued: wait for the response (read readiness) or the flusher's word.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let slot = self.slot.as_ref().expect("queued");
        let readable = self.io.poll_read_ready(cx).is_ready();
        let mut s = lock(slot);
        s.waker = Some(cx.waker().clone());
        s.wake_always |= readable;
        Poll::Pending
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            let mut s = lock(slot);
            if matches!(s.state, State::Queued) {
                s.state = State::Withdrawn;
            }
            // The owner may still use its buffer (e.g. to retry elsewhere): give it back.
            *self.bytes = std::mem::take(&mut s.bytes);
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
            && !queue.lock().unwrap_or_else(|p| p.into_inner()).dead
        {
            return Some(queue.clone());
        }
        let queue = QueueRef::default();
        handle.spawn(Flusher { queue: queue.clone() });
        *q = Some((handle.id(), queue.clone()));
        Some(queue)
    })
}

/// The thread's flusher: writes every queued request each time it runs.
struct Flusher {
    queue: QueueRef,
}

impl Future for Flusher {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let items = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
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
                let n = unsafe { write(&io, &mut bytes) }.await.unwrap();
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
            let mut last = Ok(1);
            // The first send after a reset may still be taken; the next one fails.
            for _ in 0..3 {
                // SAFETY: awaited in place.
                last = unsafe { write(&a, &mut bytes) }.await;
                if last.is_err() {
                    break;
                }
            }
            assert!(last.is_err(), "{last:?}");

            let (b, mut b_peer) = pair().await;
            let mut bytes = b"never".to_vec();
            // SAFETY: dropped below, before `b`.
            let mut w = Box::pin(unsafe { write(&b, &mut bytes) });
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
            assert_eq!(unsafe { write(&a, &mut bytes) }.await.unwrap(), 3);
            let mut x = [0u8; 3];
            a_peer.read_exact(&mut x).await.unwrap();
            assert_eq!(&x, b"now");
        });
    }
}
