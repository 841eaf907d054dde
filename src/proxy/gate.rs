//! Polling a future only after its own waker fired. `tokio::select!` polls every branch each time
//! the task wakes; a connection's task wakes for every read and write of every request, and its
//! timer, drain and reload branches (`Proxy::run_conn`) are each a few hundred instructions to
//! poll although none of them is ever ready then. Gated, a branch nobody woke costs a flag check
//! (as `FuturesUnordered` does for its members).

use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// The waker handed to the inner future: it marks the gate open and wakes the task.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pin_project_lite::pin_project! {
    /// `inner`, polled on the first poll and then only after it asked to be (its waker fired).
    pub struct Gated<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        waker: Option<Waker>,
    }
}

impl<F: Future> Gated<F> {
    pub fn new(inner: F) -> Self {
        Self { inner, signal: Arc::default(), waker: None }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the flag is read: a wake after the read still wakes the task.
        this.signal.task.register(cx.waker());
        let waker = match this.waker {
            Some(w) => {
                if !this.signal.woken.swap(false, Ordering::AcqRel) {
                    return Poll::Pending;
                }
                w
            }
            None => this.waker.insert(Waker::from(this.signal.clone())),
        };
        this.inner.poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set, and wakes through the waker it last saw.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_inner_future_is_polled_first_and_then_only_when_woken() {
        let (polls, ready, waker) = Default::default();
        let probe = Probe { polls: Arc::clone(&polls), ready: Arc::clone(&ready), waker: Arc::clone(&waker) };
        let mut gated = std::pin::pin!(Gated::new(probe));
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        assert!(gated.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled on the first poll");
        for _ in 0..5 {
            assert!(gated.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "not polled again while nobody woke it");
        ready.store(true, Ordering::SeqCst);
        assert!(gated.as_mut().poll(&mut cx).is_pending(), "ready, but not woken: not looked at");
        waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the inner wake woke the task");
        assert!(gated.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Timers and notifications behave as without the gate, in a real runtime (the losing branch
    /// is a minute away: it never wins, whatever the load).
    #[tokio::test]
    async fn gated_timers_and_notifications_still_fire() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let n2 = notify.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            n2.notify_one();
        });
        let minute = std::time::Duration::from_secs(60);
        let fired = tokio::select! {
            () = Gated::new(notify.notified()) => "notify",
            () = Gated::new(tokio::time::sleep(minute)) => "sleep",
        };
        assert_eq!(fired, "notify");
        let never = tokio::sync::Notify::new();
        let fired = tokio::select! {
            () = Gated::new(never.notified()) => "notify",
            () = Gated::new(tokio::time::sleep(std::time::Duration::from_millis(20))) => "sleep",
            () = tokio::time::sleep(minute) => "minute",
        };
        assert_eq!(fired, "sleep");
    }
}
