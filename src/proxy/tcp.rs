//! TCP mode: pick a server, connect (with retries), then copy bytes both ways. Each direction
//! half-closes its peer on EOF, and the session ends when both directions are done or when neither
//! side has moved a byte for the idle timeout.

use super::{Active, ConnCtx, queue};
use crate::balance;
use crate::config::snapshot::LogMode;
use crate::log::format::{Level, TcpRecord, tcplog};
use crate::state::{Counters, SessionGuard};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BUF: usize = 64 * 1024;

/// How a TCP session went, for `option tcplog`.
#[derive(Debug, Default)]
struct Outcome {
    backend: Option<usize>,
    server: Option<usize>,
    tw: i64,
    tc: i64,
    retries: u32,
    termination: [char; 2],
    session: Arc<Counters>,
    /// The server connection's local address (`%bi:%bp`).
    src: Option<std::net::SocketAddr>,
    /// Where it waited for its slot (`%sq`, `%bq`).
    queued: queue::Queued,
}

/// An error on the server's side of a session (reading it or writing to it): HAProxy's `SD`
/// rather than `CD`.
#[derive(Debug)]
struct ServerSide(io::Error);

impl std::fmt::Display for ServerSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server side: {}", self.0)
    }
}

impl std::error::Error for ServerSide {}

/// `e`, marked as the server's side's when `server`.
fn on_side(e: io::Error, server: bool) -> io::Error {
    if server { io::Error::new(e.kind(), ServerSide(e)) } else { e }
}

/// Whether a session's error came from the server's side.
fn server_side(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<ServerSide>())
}

/// `client` is the accepted socket, or the TLS stream over it for an `ssl` bind.
pub async fn serve<C>(client: C, active: Arc<Active>, fi: usize, cx: Arc<ConnCtx>)
where
    C: AsyncRead + AsyncWrite + Send,
{
    let out = session(client, &active, fi, &cx).await;
    let (bytes_in, bytes_out) = (out.session.bytes_in.load(Relaxed), out.session.bytes_out.load(Relaxed));
    super::track::bytes(&active, &cx.rules.stk, None, bytes_in, bytes_out);
    let fe = &active.snap.frontends[fi];
    if fe.log != LogMode::Tcp || !active.fe_logger(fi).enabled() {
        return;
    }
    let bytes_in = out.session.bytes_in.load(Relaxed);
    if fe.dontlognull && bytes_in == 0 {
        return;
    }
    let snap = &active.snap;
    let (backend, server) = match (out.backend, out.server) {
        (Some(b), Some(s)) => (snap.backends[b].name.as_str(), snap.backends[b].servers[s].name.as_str()),
        (Some(b), None) => (snap.backends[b].name.as_str(), "<NOSRV>"),
        _ => (fe.name.as_str(), "<NOSRV>"),
    };
    if let Some(f) = &fe.logging.format {
        // What the record cannot answer (variables, TLS, counters, maps) is read from the
        // session as its `tcp-request` rules saw it, without the buffer (gone by now).
        let ctx = super::sample_ctx::StreamCtx {
            backend: out.backend,
            server: out.server,
            ..super::sample_ctx::StreamCtx::conn(&cx, &active, fi)
        };
        let maps = &**cx.proxy.maps.store.load();
        let mut rec = super::logrec::tcp_record(&cx, &fe.logging, &fe.name, &ctx, maps);
        rec.backend = backend.to_string();
        rec.server = server.to_string();
        if let (Some(b), Some(s)) = (out.backend, out.server) {
            // A session refused by the server's full queue (`SQ`) made no connection: `-`.
            rec.server_addr = (out.termination != ['S', 'Q']).then_some(snap.backends[b].servers[s].addr);
            rec.backend_src = out.src;
            let brt = &active.rt.backends[b];
            rec.beconn = brt.counters.cur_sessions.load(Relaxed) as u64;
            rec.srvconn = brt.servers[s].counters.cur_sessions.load(Relaxed) as u64;
        }
        rec.feconn = active.rt.frontends[fi].cur_sessions.load(Relaxed) as u64;
        rec.actconn = active.rt.frontends.iter().map(|f| f.cur_sessions.load(Relaxed) as u64).sum();
        (rec.tw, rec.tc, rec.tt) = (out.tw, out.tc, cx.accepted.1.elapsed().as_millis() as i64);
        rec.bytes_out = out.session.bytes_out.load(Relaxed);
        rec.bytes_in = bytes_in;
        rec.termination = out.termination;
        rec.retries = out.retries;
        (rec.srv_queue, rec.be_queue) = (u64::from(out.queued.server), u64::from(out.queued.backend));
        let Some(level) = fe.logging.level(&rec) else { return };
        let render = |f: &crate::log::compiled::LineFormat| {
            let mut out = Vec::new();
            f.render_with(&mut out, &rec, &ctx, maps);
            out
        };
        let line = render(f);
        let sd = fe.logging.format_sd.as_ref().map(render);
        let sd = sd.map(|b| String::from_utf8_lossy(&b).into_owned());
        active.fe_logger(fi).log_sd(level, sd.as_deref(), &line);
        return;
    }
    let rec = TcpRecord {
        client: cx.src(),
        accepted: cx.accepted.0,
        frontend: &fe.name,
        backend,
        server,
        timers: [out.tw, out.tc, cx.accepted.1.elapsed().as_millis() as i64],
        bytes: out.session.bytes_out.load(Relaxed),
        termination: out.termination,
        retries: out.retries,
    };
    active.fe_logger(fi).log(Level::Info, &tcplog(&rec));
}

async fn session<C>(client: C, active: &Arc<Active>, fi: usize, cx: &Arc<ConnCtx>) -> Outcome
where
    C: AsyncRead + AsyncWrite + Send,
{
    // The waits are -1 until they happen, as HAProxy logs them.
    let mut out = Outcome { termination: ['-', '-'], tw: -1, tc: -1, ..Outcome::default() };
    let t0 = Instant::now();
    let fe = &active.snap.frontends[fi];
    let fcnt = active.rt.frontends[fi].clone();
    let mut client = std::pin::pin!(client);
    // `tcp-request content`: the first bytes, held until the rules decide.
    let fe_at = super::tcp_rules::At { fi, bi: None };
    let r = super::tcp_rules::inspect(&mut client, fe.tcp.inspection(), active, cx, fe_at, Vec::new()).await;
    let early = match inspected(r, cx, &fe.name, &[&fcnt.denied_req]) {
        Ok(b) => b,
        Err(t) => {
            out.termination = t;
            return out;
        }
    };
    let bi = if fe.mode == crate::config::snapshot::Mode::Tcp {
        super::tcp_rules::choose_backend(active, fi, cx, &early)
    } else {
        let vars = super::vars::TxnVars::new(&cx.proxy.proc_vars, &cx.sess_vars);
        let t = super::rules::Txn::new(cx, active, fi, None, &vars, None);
        super::rules::choose(fe, &super::sample_ctx::StreamCtx::conn(cx, active, fi), &t)
    };
    let Some(bi) = bi else {
        tracing::info!(client = %cx.peer, frontend = %fe.name, "no backend for this connection");
        out.termination = ['P', 'C'];
        return out;
    };
    out.backend = Some(bi);
    cx.sess.routed(active, bi, None);
    let be = &active.snap.backends[bi];
    let brt = &active.rt.backends[bi];
    let _bsess = brt.counters.open_session();
    // The backend's own `tcp-request content` rules, over what the frontend held and more.
    let be_at = super::tcp_rules::At { fi, bi: Some(bi) };
    let r = super::tcp_rules::inspect(&mut client, be.tcp.inspection(), active, cx, be_at, early).await;
    let early = match inspected(r, cx, &be.name, &[&brt.counters.denied_req, &fcnt.denied_req]) {
        Ok(b) => b,
        Err(t) => {
            out.termination = t;
            return out;
        }
    };
    // `balance hash EXPR` / `balance rdp-cookie`: the key read from the held bytes.
    let hash_key = super::tcp_rules::balance_key(active, cx, super::tcp_rules::At { fi, bi: Some(bi) }, &early);
    let key = balance::Request { src: Some(cx.src().ip()), key: hash_key.as_deref(), ..balance::Request::default() };
    // `force-persist`/`ignore-persist`/`use-server` over the held bytes, then persistence:
    // `stick on src` (the only fetch TCP mode has).
    let pre = super::tcp_rules::server_pre(active, cx, super::tcp_rules::At { fi, bi: Some(bi) }, &early);
    let stuck = crate::persist::tcp_request_hook(&be.persist, brt, cx.src().ip(), pre, be.option_persist);
    let mut slot: Option<(usize, SessionGuard)> = None;
    let mut attempt = 0;
    let (server, si, _ssess) = loop {
        // A session waiting in the queue can be killed there too (`shutdown session`).
        let next = queue::next_slot(be, brt, &key, slot.take(), (attempt, &mut out.queued), stuck.prefer());
        let (si, session) = match super::sessions::or_killed(next, &cx.sess).await {
            None => {
                tracing::info!(client = %cx.peer, backend = %be.name, "tcp session killed in the queue (shutdown session)");
                out.termination = ['K', 'Q'];
                return out;
            }
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                tracing::info!(client = %cx.peer, backend = %be.name, "no server available ({e:?})");
                out.termination = match e {
                    queue::NoSlot::QueueTimeout => ['s', 'Q'],
                    queue::NoSlot::QueueFull(si) => {
                        out.server = Some(si);
                        ['S', 'Q']
                    }
                    queue::NoSlot::NoServer => ['S', 'C'],
                };
                return out;
            }
        };
        let mut addr = be.servers[si].addr;
        // A server at 0.0.0.0 or `::` goes where the client went (after `set-dst`), on its port
        // when it gives none, as in HAProxy.
        if addr.ip().is_unspecified() && !be.servers[si].unresolved {
            let dst = cx.dst();
            addr = std::net::SocketAddr::new(dst.ip(), if addr.port() == 0 { dst.port() } else { addr.port() });
        }
        out.server = Some(si);
        cx.sess.routed(active, bi, Some(si));
        let t_slot = Instant::now();
        // The first slot ends `%Tw`, as HAProxy's (a retry's pause is no queue wait).
        if out.tw < 0 {
            out.tw = (t_slot - t0).as_millis() as i64;
        }
        // A connect to a server that drops SYNs waits out `timeout connect`: a kill ends it.
        let mut local = None;
        let connecting = super::source::connect_noting(addr, be.servers[si].source.as_deref(), &mut local);
        let Some(connected) =
            super::sessions::or_killed(tokio::time::timeout(be.timeouts.connect, connecting), &cx.sess).await
        else {
            tracing::info!(client = %cx.peer, backend = %be.name, "tcp session killed while connecting (shutdown session)");
            out.termination = ['K', 'C'];
            return out;
        };
        match connected {
            Ok(Ok(s)) => {
                brt.servers[si].passive.record(crate::health::passive::Event::L4Ok);
                out.tc = t_slot.elapsed().as_millis() as i64;
                out.src = s.local_addr().ok();
                break (s, si, session);
            }
            res => {
                let why = match res {
                    Err(_) => "connect timeout".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                out.src = local;
                brt.servers[si].counters.errors_conn.fetch_add(1, Relaxed);
                brt.servers[si].passive.record(crate::health::passive::Event::L4Err);
                tracing::warn!(backend = %be.name, server = %be.servers[si].name, "connect failed: {why}");
                if !be.retry_on.retry(super::retry_on::Failure::Conn, true, attempt, be.retries) {
                    out.termination = ['S', 'C'];
                    return out;
                }
                attempt += 1;
                out.retries = attempt;
                brt.counters.retries.fetch_add(1, Relaxed);
                let redispatching = be.redispatch && attempt == be.retries;
                if let Some(pause) = super::http::retry_delay(be.timeouts.connect, !redispatching)
                    && super::sessions::or_killed(tokio::time::sleep(pause), &cx.sess).await.is_none()
                {
                    out.termination = ['K', 'C'];
                    return out;
                }
                slot = Some((si, session));
            }
        }
    };
    let mut server = server;
    let _ = server.set_nodelay(true);
    if be.srvtcpka {
        let _ = socket2::SockRef::from(&server).set_keepalive(true);
    }
    // Without an inspect-delay the response rules decide now, before the client's bytes go
    // out; with one they judge the server's first bytes as they come (see `Gate`).
    let inspection = be.tcp.response_inspection();
    let delayed = inspection.delay.is_some();
    if !delayed {
        match super::tcp_rules::response_at_once(inspection, active, cx, be_at, si) {
            crate::tcprules::Verdict::Reject => {
                tracing::debug!(client = %cx.peer, backend = %be.name, "rejected by tcp-response content");
                out.termination = ['P', 'D'];
                return out;
            }
            crate::tcprules::Verdict::Close => {
                tracing::debug!(client = %cx.peer, backend = %be.name, "closed by tcp-response content");
                return out;
            }
            _ => {}
        }
    }
    if let Some(how) = be.servers[si].send_proxy {
        let line = cx.client.header_for(how, cx.src(), cx.dst(), None);
        if let Err(e) = server.write_all(&line).await {
            tracing::warn!(backend = %be.name, server = %be.servers[si].name, "sending the PROXY header failed: {e}");
            out.termination = ['S', 'C'];
            return out;
        }
    }
    crate::persist::tcp_connected_hook(&be.persist, brt, &stuck, si, cx.src().ip());
    if !early.is_empty() {
        if let Err(e) = tokio::time::timeout(be.timeouts.server, server.write_all(&early))
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")))
        {
            tracing::debug!(client = %cx.peer, backend = %be.name, "sending the inspected bytes failed: {e}");
            out.termination = ['S', 'D'];
            return out;
        }
        for c in [&fcnt, &brt.counters, &brt.servers[si].counters, &out.session] {
            c.bytes_in.fetch_add(early.len() as u64, Relaxed);
        }
    }
    let srt = &brt.servers[si];
    let up: Vec<Arc<Counters>> = vec![fcnt.clone(), brt.counters.clone(), srt.counters.clone(), out.session.clone()];
    let (local, server_key) = (cx.local, (be.name.as_str(), be.servers[si].name.as_str(), be.servers[si].addr));
    // After a reload the session runs on while its bind and server still exist; otherwise it gets
    // `hard_stop_after` to finish.
    let stale = |a: &Active| {
        !a.binds.contains_key(&local)
            || !a
                .snap
                .backend(server_key.0)
                .is_some_and(|(_, b)| b.servers.iter().any(|s| s.name == server_key.1 && s.addr == server_key.2))
    };
    let marked_down = srt.session_end();
    let gate = Gate { rules: inspection, active, cx, at: be_at, si };
    tokio::select! {
        () = marked_down, if be.servers[si].shutdown_on_down => {
            tracing::info!(client = %cx.peer, backend = %be.name, "tcp session closed: server marked down (on-marked-down shutdown-sessions)");
            out.termination = ['S', 'D'];
        }
        result = pipe(
            client,
            server,
            SideIdle::new(fe.timeouts.client, fe.timeouts.client_fin),
            SideIdle::new(be.timeouts.server, be.timeouts.server_fin),
            &up,
            delayed.then_some(&gate),
        ) => {
            match result.as_ref().map_err(GateEnd::of) {
                Ok(()) | Err(Some(GateEnd::Closed)) => {}
                Err(Some(GateEnd::Rejected)) => {
                    tracing::debug!(client = %cx.peer, backend = %be.name, "rejected by tcp-response content");
                    for c in [&fcnt, &brt.counters, &srt.counters] {
                        c.denied_resp.fetch_add(1, Relaxed);
                    }
                    out.termination = ['P', 'D'];
                }
                Err(None) => {
                    let e = result.err().unwrap_or_else(|| io::Error::other("ended"));
                    tracing::debug!(client = %cx.peer, backend = %be.name, "tcp session ended: {e}");
                    out.termination = if e.kind() == io::ErrorKind::TimedOut {
                        ['c', 'D']
                    } else if server_side(&e) {
                        ['S', 'D']
                    } else {
                        ['C', 'D']
                    };
                }
            }
        }
        cut = cx.proxy.expiry(active.generation, stale, true) => {
            tracing::info!(client = %cx.peer, backend = %be.name, "tcp session closed by reload ({cut:?})");
            out.termination = ['K', 'D'];
        }
        () = cx.sess.killed() => {
            tracing::info!(client = %cx.peer, backend = %be.name, "tcp session killed (shutdown session)");
            out.termination = ['K', 'D'];
        }
    }
    out
}

/// The idle timeouts of one side: `idle` while both directions are open, `fin` (HAProxy's
/// `timeout client-fin`/`server-fin`) once the other side has closed its half, from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideIdle {
    pub idle: Duration,
    pub fin: Option<Duration>,
}

impl SideIdle {
    pub fn new(idle: Duration, fin: Option<Duration>) -> Self {
        Self { idle, fin }
    }

    /// The read timeout of this side, given whether the other side has closed its half.
    pub fn limit(self, other_closed: bool) -> Duration {
        match (other_closed, self.fin) {
            (true, Some(f)) => f,
            _ => self.idle,
        }
    }
}

/// Copies both ways until both directions have seen EOF, or an idle timeout or error ends it.
/// With a `gate`, the server's first bytes reach the client only once `tcp-response content`
/// lets them.
pub async fn pipe<C: AsyncRead + AsyncWrite>(
    client: C,
    server: TcpStream,
    client_idle: SideIdle,
    server_idle: SideIdle,
    counters: &[Arc<Counters>],
    gate: Option<&Gate<'_>>,
) -> io::Result<()> {
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = server.into_split();
    halves(cr, cw, sr, sw, client_idle, server_idle, counters, gate).await
}

/// A backend's `tcp-response content` rules over one session's server.
pub struct Gate<'a> {
    pub rules: crate::tcprules::Inspection<'a>,
    pub active: &'a super::Active,
    pub cx: &'a ConnCtx,
    pub at: super::tcp_rules::At,
    /// The server connected to (`srv_name`, `srv_id`).
    pub si: usize,
}

/// How the response rules ended a session, carried as the error that stops both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateEnd {
    /// `reject`: nothing of the response reached the client.
    Rejected,
    /// `close`: the response held went out, then the session ended.
    Closed,
}

impl GateEnd {
    fn error(self) -> io::Error {
        io::Error::other(self)
    }

    /// The gate's end an error of [`pipe`] stands for, if any.
    pub fn of(e: &io::Error) -> Option<GateEnd> {
        e.get_ref().and_then(|i| i.downcast_ref::<GateEnd>()).copied()
    }
}

impl std::fmt::Display for GateEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GateEnd::Rejected => "rejected by tcp-response content",
            GateEnd::Closed => "closed by tcp-response content",
        })
    }
}

impl std::error::Error for GateEnd {}

impl Gate<'_> {
    /// Runs the response rules over the server's first bytes and passes on what they let
    /// through; true when the server's side already ended (its end passed on too).
    async fn pass<R, W>(&self, sr: &mut R, cw: &mut W, idle: Duration, counters: &[Arc<Counters>]) -> io::Result<bool>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // A read error here is the server's (logged SD, as in the relay below).
        let r = super::tcp_rules::inspect_response(sr, self.rules, self.active, self.cx, self.at, self.si)
            .await
            .map_err(|e| on_side(e, true))?;
        if r.verdict == crate::tcprules::Verdict::Reject {
            return Err(GateEnd::Rejected.error());
        }
        if !r.held.is_empty() {
            match tokio::time::timeout(idle, cw.write_all(&r.held)).await {
                Ok(res) => res?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")),
            }
            for c in counters {
                c.bytes_out.fetch_add(r.held.len() as u64, Relaxed);
            }
        }
        if r.verdict == crate::tcprules::Verdict::Close {
            cw.shutdown().await.ok();
            return Err(GateEnd::Closed.error());
        }
        if r.eof {
            cw.shutdown().await.ok();
        }
        Ok(r.eof)
    }
}

/// The same for an upgraded HTTP connection (WebSocket), idle-bounded by `timeout tunnel`, and
/// by `timeout client-fin`/`server-fin` once half closed.
pub async fn tunnel<A, B>(
    client: A,
    server: B,
    idle: Duration,
    fins: (Option<Duration>, Option<Duration>),
    counters: &[Arc<Counters>],
) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    halves(cr, cw, sr, sw, SideIdle::new(idle, fins.0), SideIdle::new(idle, fins.1), counters, None).await
}

/// One direction's end: set (and the other direction woken) once its EOF was passed on.
#[derive(Default)]
struct HalfClosed {
    done: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl HalfClosed {
    fn close(&self) {
        self.done.store(true, Relaxed);
        self.wake.notify_one();
    }
    fn is_closed(&self) -> bool {
        self.done.load(Relaxed)
    }
}

#[allow(clippy::too_many_arguments)]
async fn halves<CR, CW, SR, SW>(
    cr: CR,
    mut cw: CW,
    mut sr: SR,
    sw: SW,
    client_idle: SideIdle,
    server_idle: SideIdle,
    counters: &[Arc<Counters>],
    gate: Option<&Gate<'_>>,
) -> io::Result<()>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let start = Instant::now();
    let activity = AtomicU64::new(0);
    let (client_closed, server_closed) = (HalfClosed::default(), HalfClosed::default());
    // The client is read with `client-fin` once the server's EOF reached it, and the server with
    // `server-fin` once the client's reached it, as HAProxy does on a shut write side.
    let up = Half { idle: client_idle, other: &server_closed, mine: &client_closed, inbound: true };
    let down = Half { idle: server_idle, other: &client_closed, mine: &server_closed, inbound: false };
    let up = copy_half(cr, sw, up, &activity, start, counters);
    let down = async {
        if let Some(g) = gate
            && g.pass(&mut sr, &mut cw, server_idle.idle, counters).await?
        {
            server_closed.close();
            return Ok(());
        }
        copy_half(sr, cw, down, &activity, start, counters).await
    };
    tokio::try_join!(up, down).map(|_| ())
}

/// What one direction of [`halves`] reads by.
struct Half<'a> {
    /// The timeouts of the side read.
    idle: SideIdle,
    /// The other direction: once it ended, the side read here is half closed.
    other: &'a HalfClosed,
    mine: &'a HalfClosed,
    inbound: bool,
}

async fn copy_half<R, W>(
    mut r: R,
    mut w: W,
    h: Half<'_>,
    activity: &AtomicU64,
    start: Instant,
    counters: &[Arc<Counters>],
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let half_closed = h.other.is_closed();
        let limit = h.idle.limit(half_closed);
        // A read waiting with the full idle timeout starts again with the fin one when the other
        // direction ends (reads are cancel-safe).
        let wait_fin = !half_closed && h.idle.fin.is_some();
        let read = tokio::select! {
            r = tokio::time::timeout(limit, r.read(&mut buf)) => r,
            () = h.other.wake.notified(), if wait_fin => continue,
        };
        let n = match read {
            Ok(res) => res.map_err(|e| on_side(e, !h.inbound))?,
            Err(_) => {
                // The other direction may be busy (a long download): only a session idle both ways
                // times out.
                let last = Duration::from_millis(activity.load(Relaxed));
                if start.elapsed().saturating_sub(last) < limit {
                    continue;
                }
                return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
            }
        };
        if n == 0 {
            w.shutdown().await.ok();
            h.mine.close();
            return Ok(());
        }
        match tokio::time::timeout(h.idle.idle, w.write_all(&buf[..n])).await {
            Ok(res) => res.map_err(|e| on_side(e, h.inbound))?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout")),
        }
        activity.store(start.elapsed().as_millis() as u64, Relaxed);
        for c in counters {
            let f = if h.inbound { &c.bytes_in } else { &c.bytes_out };
            f.fetch_add(n as u64, Relaxed);
        }
    }
}

/// The bytes a `tcp-request content` pass held, or the termination state that ends the
/// session: a reject (counted as denied in `denied`) or a client error.
fn inspected(
    r: std::io::Result<Option<Vec<u8>>>,
    cx: &ConnCtx,
    section: &str,
    denied: &[&std::sync::atomic::AtomicU64],
) -> Result<Vec<u8>, [char; 2]> {
    match r {
        Ok(Some(b)) => Ok(b),
        Ok(None) => {
            tracing::debug!(client = %cx.peer, section, "rejected by tcp-request content");
            for d in denied {
                d.fetch_add(1, Relaxed);
            }
            Err(['P', 'R'])
        }
        Err(e) => {
            tracing::debug!(client = %cx.peer, "client error during content inspection: {e}");
            Err(['C', 'R'])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_takes_its_fin_timeout_once_the_other_has_closed() {
        let (idle, fin) = (Duration::from_secs(30), Duration::from_secs(1));
        assert_eq!(SideIdle::new(idle, Some(fin)).limit(false), idle);
        assert_eq!(SideIdle::new(idle, Some(fin)).limit(true), fin);
        assert_eq!(SideIdle::new(idle, None).limit(true), idle);
    }

    /// The client sends its request and closes its side; the server never answers nor closes.
    /// With `server-fin` the session ends on it, long before the hour of `timeout server`.
    #[tokio::test]
    async fn a_half_closed_session_ends_on_the_fin_timeout() {
        for fin_on_server in [true, false] {
            let (mut client, proxy_client) = tokio::io::duplex(1024);
            let (proxy_server, mut server) = tokio::io::duplex(1024);
            let hour = Duration::from_secs(3600);
            let fin = Some(Duration::from_millis(100));
            let (cr, cw) = tokio::io::split(proxy_client);
            let (sr, sw) = tokio::io::split(proxy_server);
            let (client_idle, server_idle) = if fin_on_server {
                (SideIdle::new(hour, None), SideIdle::new(hour, fin))
            } else {
                (SideIdle::new(hour, fin), SideIdle::new(hour, None))
            };
            let session =
                tokio::spawn(async move { halves(cr, cw, sr, sw, client_idle, server_idle, &[], None).await });
            if fin_on_server {
                client.write_all(b"ping").await.unwrap();
                client.shutdown().await.unwrap();
                let mut got = Vec::new();
                server.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, b"ping", "the request and the client's close reach the server");
            } else {
                // The server answers and closes; the client stays silent with its side open.
                server.write_all(b"pong").await.unwrap();
                server.shutdown().await.unwrap();
                let mut got = [0u8; 4];
                client.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"pong");
            }
            let r = tokio::time::timeout(Duration::from_secs(60), session).await;
            let e = r.expect("ended by the fin timeout, not the hour-long idle one").unwrap().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            drop((client, server));
        }
    }
}
