//! TCP mode: pick a server, connect (with retries), then copy bytes both ways. Each direction
//! half-closes its peer on EOF, and the session ends when both directions are done or when neither
//! side has moved a byte for the idle timeout.

use super::{Active, ConnCtx};
use crate::balance;
use crate::state::Counters;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BUF: usize = 64 * 1024;

pub async fn serve(client: TcpStream, active: Arc<Active>, fi: usize, cx: Arc<ConnCtx>) {
    let fe = &active.snap.frontends[fi];
    let fcnt = active.rt.frontends[fi].clone();
    let bi = {
        let facts = crate::routing::Facts {
            method: None,
            uri: None,
            headers: None,
            src: cx.peer.ip(),
            dst_port: cx.local.port(),
        };
        fe.switching
            .iter()
            .find(|r| {
                r.cond
                    .as_ref()
                    .is_none_or(|c| c.eval(&fe.acls, &facts, &*active))
            })
            .map(|r| r.backend)
            .or(fe.default_backend)
    };
    let Some(bi) = bi else {
        tracing::info!(client = %cx.peer, frontend = %fe.name, "no backend for this connection");
        return;
    };
    let be = &active.snap.backends[bi];
    let brt = &active.rt.backends[bi];
    let _bsess = brt.counters.open_session();
    let key = balance::Request {
        src: Some(cx.peer.ip()),
        path_and_query: None,
        headers: None,
    };
    // Persistence: `stick on src` (the only fetch TCP mode has).
    let stuck = crate::persist::tcp_request_hook(&be.persist, brt, cx.peer.ip());
    let mut current: Option<usize> = None;
    let mut attempt = 0;
    let (server, si) = loop {
        let si = match current {
            None => stuck.server.or_else(|| be.selector.pick(&key, brt)),
            Some(prev) if be.redispatch && attempt == be.retries => {
                brt.counters.redispatches.fetch_add(1, Relaxed);
                be.selector.pick_avoiding(&key, brt, prev)
            }
            Some(prev) => Some(prev),
        };
        let Some(si) = si else {
            tracing::info!(client = %cx.peer, backend = %be.name, "no server available");
            return;
        };
        current = Some(si);
        let addr = be.servers[si].addr;
        match tokio::time::timeout(be.timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => break (s, si),
            res => {
                let why = match res {
                    Err(_) => "connect timeout".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                brt.servers[si].counters.errors_conn.fetch_add(1, Relaxed);
                tracing::warn!(backend = %be.name, server = %be.servers[si].name, "connect failed: {why}");
                if attempt >= be.retries {
                    return;
                }
                attempt += 1;
                brt.counters.retries.fetch_add(1, Relaxed);
            }
        }
    };
    let _ = server.set_nodelay(true);
    crate::persist::tcp_connected_hook(&be.persist, brt, &stuck, si);
    let srt = &brt.servers[si];
    let _ssess = srt.counters.open_session();
    let up: Vec<Arc<Counters>> = vec![fcnt.clone(), brt.counters.clone(), srt.counters.clone()];
    let marked_down = srt.session_end();
    let result = tokio::select! {
        r = pipe(client, server, fe.timeouts.client, be.timeouts.server, &up) => r,
        () = marked_down, if be.servers[si].shutdown_on_down => Err(io::Error::other(
            "server marked down (on-marked-down shutdown-sessions)",
        )),
    };
    if let Err(e) = result {
        tracing::debug!(client = %cx.peer, backend = %be.name, "tcp session ended: {e}");
    }
}

/// Copies both ways until both directions have seen EOF, or an idle timeout or error ends it.
pub async fn pipe(
    client: TcpStream,
    server: TcpStream,
    client_idle: Duration,
    server_idle: Duration,
    counters: &[Arc<Counters>],
) -> io::Result<()> {
    let start = Instant::now();
    let activity = AtomicU64::new(0);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = copy_half(cr, sw, client_idle, &activity, start, counters, true);
    let down = copy_half(sr, cw, server_idle, &activity, start, counters, false);
    tokio::try_join!(up, down).map(|_| ())
}

async fn copy_half<R, W>(
    mut r: R,
    mut w: W,
    idle: Duration,
    activity: &AtomicU64,
    start: Instant,
    counters: &[Arc<Counters>],
    inbound: bool,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match tokio::time::timeout(idle, r.read(&mut buf)).await {
            Ok(res) => res?,
            Err(_) => {
                // The other direction may be busy (a long download): only a session idle both ways
                // times out.
                let last = Duration::from_millis(activity.load(Relaxed));
                if start.elapsed().saturating_sub(last) < idle {
                    continue;
                }
                return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
            }
        };
        if n == 0 {
            w.shutdown().await.ok();
            return Ok(());
        }
        match tokio::time::timeout(idle, w.write_all(&buf[..n])).await {
            Ok(res) => res?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")),
        }
        activity.store(start.elapsed().as_millis() as u64, Relaxed);
        for c in counters {
            let f = if inbound { &c.bytes_in } else { &c.bytes_out };
            f.fetch_add(n as u64, Relaxed);
        }
    }
}
