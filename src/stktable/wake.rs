//! Wakes the peers sessions when a replicated table changes, so a change leaves at once instead
//! of at the next push tick. Cheap per change: a session arms the flag before it sleeps, the
//! first change after that disarms it and wakes every sleeping session; the changes that follow
//! until a session re-arms (a burst) cost one atomic load each and are pushed together.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Wake {
    armed: AtomicBool,
    notify: Notify,
}

impl Wake {
    /// A table changed.
    pub fn signal(&self) {
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.notify.notify_waiters();
        }
    }

    /// The next wake-up; the caller pins and `enable`s it, then calls [`Wake::arm`], then
    /// checks for changes it has not pushed (made before it armed) before awaiting it.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// The next change wakes the sessions waiting on [`Wake::notified`].
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_change_after_arming_wakes_the_rest_coalesce() {
        let w = Wake::default();
        w.signal();
        let n = w.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        w.arm();
        w.signal();
        w.signal();
        tokio::time::timeout(std::time::Duration::from_secs(5), &mut n).await.expect("woken");
        assert!(!w.armed.load(Ordering::Relaxed), "disarmed until the session arms again");
        // Unarmed: a change wakes nobody (the session finds it when it checks before sleeping).
        let n = w.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        w.signal();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), &mut n).await.is_err());
    }
}
