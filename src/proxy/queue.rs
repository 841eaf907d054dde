//! Getting a server slot: pick a server with room (below its `maxconn`), or wait in the backend
//! queue until a session ends, for at most `timeout queue`. A server's limit is its `maxconn`, or
//! with `minconn` the dynamic limit of `proxy::upstream`; `maxqueue` bounds the waiting.

use super::upstream;
use crate::balance;
use crate::config::snapshot::Backend;
use crate::persist::Prefer;
use crate::state::{BackendRt, SessionGuard};
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// No server is up (or all are in maintenance).
    NoServer,
    /// Servers are up but stayed full for `timeout queue`.
    QueueTimeout,
    /// The server the request's hash chose is full and `maxqueue` requests already wait for it
    /// (HAProxy's `SRV_STATUS_FULL`: a hash would choose the same server again). The server.
    QueueFull(usize),
}

/// Where a request joined a queue, for its log line (`%sq`, `%bq`): its position in the
/// persistent server's queue or in the backend's when it first waited, 0 when it never did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    pub server: u32,
    pub backend: u32,
}

/// The slot for the next attempt. A retry keeps the server it holds, unless this is the last
/// retry and `redispatch` is set, or the server went down meanwhile: then a new slot avoiding it.
/// A server `force-persist` designates is kept whatever its state, and never redispatched; one
/// `option persist` designates is kept whatever its state unless `redispatch` is set (HAProxy
/// then redispatches from a DOWN server at the first retry).
pub async fn next_slot(
    be: &Backend,
    brt: &BackendRt,
    key: &balance::Request<'_>,
    held: Option<(usize, SessionGuard)>,
    (attempt, queued): (u32, &mut Queued),
    prefer: Prefer,
) -> Result<(usize, SessionGuard), NoSlot> {
    match held {
        Some((prev, g)) if prefer.forced && prefer.server == Some(prev) && brt.server_forceable(prev) => Ok((prev, g)),
        Some((prev, g))
            if be.option_persist && !be.redispatch && prefer.server == Some(prev) && brt.server_forceable(prev) =>
        {
            Ok((prev, g))
        }
        Some((prev, g)) if !(be.redispatch && attempt == be.retries) && brt.server_usable(prev) => Ok((prev, g)),
        Some((prev, g)) => {
            drop(g);
            brt.counters.redispatches.fetch_add(1, Relaxed);
            acquire(be, brt, key, Some(prev), prefer, queued).await
        }
        None => acquire(be, brt, key, None, prefer, queued).await,
    }
}

/// A server index and its open session. `avoid` is the server a redispatch moves away from;
/// `prefer` the one persistence designates (taken while it is up, or in any state when forced;
/// waited for while it is full). A server the request's hash chose is waited for while it is
/// full too, as HAProxy queues the request on it. `queued`: where it first waited.
pub async fn acquire(
    be: &Backend,
    brt: &BackendRt,
    key: &balance::Request<'_>,
    avoid: Option<usize>,
    prefer: Prefer,
    queued: &mut Queued,
) -> Result<(usize, SessionGuard), NoSlot> {
    let (mut prefer, forced) = (prefer.server, prefer.forced || be.option_persist);
    // Fixed when the first wait starts (most requests never wait, and never read the clock).
    let mut deadline = None;
    loop {
        let beconn = brt.counters.cur_sessions.load(Relaxed);
        let preferred = prefer.filter(|&p| avoid.is_none() && brt.server_takes(p, forced));
        let pick = match (avoid, preferred) {
            (None, Some(p)) => Some(balance::Pick { server: p, hashed: false }),
            _ => be.selector.choose(key, brt, avoid),
        };
        // The server this request waits for when it is full: the persistent one, or the one
        // its hash chose.
        let mut pinned = preferred;
        if let Some(balance::Pick { server: si, hashed }) = pick {
            let srv = &brt.servers[si];
            if let Some(g) = srv.counters.try_open_session(srv.limit(beconn), &brt.counters) {
                return Ok((si, g));
            }
            // Another request took the last slot between the pick and here, or a slot freed
            // since: pick again. A full persistent or hashed server is waited for instead.
            if hashed && preferred.is_none() {
                if !srv.full_at(brt.counters.cur_sessions.load(Relaxed)) {
                    continue;
                }
                pinned = Some(si);
            } else if preferred.is_none() {
                continue;
            }
        }
        let waitable = |i: usize| brt.server_usable(i) || preferred == Some(i);
        if !(0..brt.servers.len()).any(|i| waitable(i) && brt.servers[i].full_at(beconn)) {
            return Err(NoSlot::NoServer);
        }
        let q = &brt.counters.queue;
        let mine = pinned.map(|p| &brt.servers[p]);
        // As HAProxy: once `maxqueue` requests wait for the persistent server, the next ones
        // go to another server (persistence is broken rather than the request refused); for a
        // hashed server the request is refused, as its hash would choose the same server. The
        // backend's own queue has no bound but `timeout queue`, as HAProxy's.
        if let Some(s) = mine
            && !upstream::queue_has_room(s.queued.load(Relaxed), bound(s.maxqueue.load(Relaxed)))
        {
            if let (None, Some(si)) = (preferred, pinned) {
                // HAProxy counts it as a failed connection of the server and the backend.
                s.counters.errors_conn.fetch_add(1, Relaxed);
                brt.counters.errors_conn.fetch_add(1, Relaxed);
                return Err(NoSlot::QueueFull(si));
            }
            prefer = None;
            continue;
        }
        let waiting = q.cur.fetch_add(1, Relaxed) + 1;
        q.max.fetch_max(waiting, Relaxed);
        let first = *queued == Queued::default();
        if let Some(s) = mine {
            let at = s.queued.fetch_add(1, Relaxed) + 1;
            if first {
                queued.server = at;
            }
        } else if first {
            queued.backend = waiting;
        }
        let until = *deadline.get_or_insert_with(|| Instant::now() + be.timeouts.queue);
        // A request pinned to a full server waits for that server's slot (woken by it alone, so
        // a slot of another server never goes to it and is lost to the requests that could take
        // it), and looks again every `PINNED_RECHECK` for a server that went down or left the
        // hash (persistence then moves, the hash picks again).
        let woke = match mine {
            Some(s) => {
                let at = until.min(Instant::now() + PINNED_RECHECK);
                match tokio::time::timeout_at(at, s.counters.queue.notify.notified()).await {
                    Err(_) if at < until => Ok(()),
                    w => w,
                }
            }
            None => tokio::time::timeout_at(until, q.notify.notified()).await,
        };
        q.cur.fetch_sub(1, Relaxed);
        if let Some(s) = mine {
            s.queued.fetch_sub(1, Relaxed);
        }
        if woke.is_err() {
            return Err(NoSlot::QueueTimeout);
        }
    }
}

/// How often a request waiting for one server looks whether that server is still the one to
/// wait for.
const PINNED_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// A `maxqueue` as a bound: 0 is none.
fn bound(maxqueue: u32) -> Option<u32> {
    (maxqueue > 0).then_some(maxqueue)
}
