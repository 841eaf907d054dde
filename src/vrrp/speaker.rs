//! The VRRP speaker's own thread and runtime, apart from the proxy's.
//!
//! The proxy's event loop can stall (a poll that never returns, `debug dev loop`); with
//! `nbthread = 1` the proxy runs on one current-thread runtime, and even with several threads a
//! task queued behind the stuck one may not run. A VRRP instance sharing that runtime would then
//! stop advertising: no priority-0 advert, only the backup's master-down timer (3 adverts + skew)
//! moves the VIP, and a stall shorter than the watchdog's threshold would cost the VIP as well.
//! So the instances (with their sockets, timers, netlink handles, tracked scripts and sync-group
//! watchers) run on a current-thread runtime of their own, on the thread `lbha-vrrp`, in every
//! `nbthread` setting; the watchdog that calls a stall (`crate::fate`) has its own thread too.
//! The manager itself stays on the proxy's runtime: it only talks to the instances through
//! channels, which work across runtimes.

use std::sync::OnceLock;

use tokio::runtime::{EnterGuard, Handle};

static SPEAKER: OnceLock<Option<Handle>> = OnceLock::new();

/// Makes the speaker's runtime current until the guard drops: tasks spawned and sockets opened
/// meanwhile belong to it. `None` (logged once) if its thread could not start: the caller's
/// runtime serves VRRP then, as before this existed. The guard must not be held across an
/// `.await`.
pub fn enter() -> Option<EnterGuard<'static>> {
    SPEAKER.get_or_init(start).as_ref().map(Handle::enter)
}

fn start() -> Option<Handle> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the VRRP runtime, VRRP shares the proxy's: {e}");
            return None;
        }
    };
    let handle = rt.handle().clone();
    // A current-thread runtime runs its tasks and drives its sockets and timers only inside
    // `block_on`: this thread does nothing else until the process ends.
    let spawned = std::thread::Builder::new().name("lbha-vrrp".into()).spawn(move || {
        rt.block_on(std::future::pending::<()>());
    });
    match spawned {
        Ok(_) => Some(handle),
        Err(e) => {
            tracing::error!("cannot start the VRRP thread, VRRP shares the proxy's runtime: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is spawned under the guard runs on the speaker's thread, and keeps running while the
    /// caller's (current-thread) runtime is stuck in one poll.
    #[test]
    fn tasks_run_on_the_speaker_thread_while_the_caller_is_stuck() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel();
            {
                let _g = enter().expect("speaker runtime");
                tokio::spawn(async move {
                    // Timers of the speaker's runtime fire although the caller's never polls.
                    for _ in 0..3 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        let _ = tx.send(std::thread::current().name().map(str::to_string));
                    }
                });
            }
            // Stuck: a blocking wait inside a poll of the caller's only thread (bounded).
            for _ in 0..3 {
                let name = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the speaker ran");
                assert_eq!(name.as_deref(), Some("lbha-vrrp"));
            }
        });
    }
}
