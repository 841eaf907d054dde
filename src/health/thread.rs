//! The thread health checks run on: a single-threaded runtime of their own. A thousand probes a
//! second then neither wake the proxy's worker threads (each cross-thread wake-up is a futex call
//! and, on a VM, an inter-processor interrupt) nor queue behind proxied traffic.

use std::io;
use std::thread;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Owns the checks' runtime; dropping it stops the runtime and with it every checker on it.
#[derive(Debug)]
pub struct CheckThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl CheckThread {
    pub fn start() -> io::Result<Self> {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        thread::Builder::new().name("lbha-checks".into()).spawn(move || {
            // Ends on `stop` or when the sender is dropped; dropping `rt` then cancels the tasks.
            rt.block_on(async {
                stopped.await.ok();
            });
        })?;
        Ok(Self { handle, stop: Some(stop) })
    }

    /// Where checkers are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for CheckThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_tasks_with_timers_and_stops_on_drop() {
        let t = CheckThread::start().expect("thread starts");
        let (tx, rx) = std::sync::mpsc::channel();
        t.handle().spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(thread::current().name().map(str::to_owned)).ok();
        });
        let name = rx.recv_timeout(Duration::from_secs(5)).expect("task ran");
        assert_eq!(name.as_deref(), Some("lbha-checks"));

        let (tx, rx) = std::sync::mpsc::channel::<()>();
        t.handle().spawn(async move {
            let _held = tx;
            std::future::pending::<()>().await;
        });
        drop(t);
        // The runtime's shutdown drops the pending task and with it the sender.
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    }
}
