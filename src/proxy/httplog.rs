//! `option httplog`: one line per request, written when the response body has been sent (or
//! abandoned), with HAProxy's timers, byte count and termination state.

use super::body::ProxyBody;
use super::errors::ProxyError;
use super::{Active, ConnCtx};
use crate::log::format::{HttpRecord, Level, httplog, httplog_clf};
use http::Response;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

/// Where a forwarded request went and how long each phase took, attached to the response.
#[derive(Debug, Clone, Copy)]
pub struct Picked {
    pub backend: usize,
    pub server: usize,
    /// Tw, Tc, Tr in milliseconds (Tc is 0 on a reused connection).
    pub tw: i64,
    pub tc: i64,
    pub tr: i64,
    pub retries: u32,
    /// The last retry went to another server (`option redispatch`).
    pub redispatched: bool,
    /// The server connection's local address (`%bi:%bp`).
    pub src: Option<std::net::SocketAddr>,
    /// Where it waited for its slot (`%sq`, `%bq`).
    pub queued: super::queue::Queued,
}

/// How far a request that got no response from a server went, for its line: the server it was
/// given (`%s`, `%si`), its waits (`%Tw`, then `%Tc`; -1 for a phase that did not end, as
/// HAProxy), its retries and the server connection's address.
#[derive(Debug, Clone, Copy)]
pub struct Reached {
    pub server: Option<usize>,
    pub tw: i64,
    pub tc: i64,
    pub retries: u32,
    pub redispatched: bool,
    pub src: Option<std::net::SocketAddr>,
    pub queued: super::queue::Queued,
}

impl Default for Reached {
    fn default() -> Reached {
        Reached { server: None, tw: -1, tc: -1, retries: 0, redispatched: false, src: None, queued: Default::default() }
    }
}

/// An answer of an `http-request return` or `redirect` rule: HAProxy's `LR` termination state.
#[derive(Debug, Clone, Copy)]
pub struct Local;

/// A `tarpit` answer, held this many milliseconds first: HAProxy's `PT` state, the hold counted
/// in `%Tw`.
#[derive(Debug, Clone, Copy)]
pub struct Tarpitted(pub i64);

/// What the request looked like before it was handled.
pub struct Start {
    pub at: Instant,
    /// `at` on the wall clock (see [`wall_clock`]).
    pub wall: std::time::SystemTime,
    pub tq: i64,
    /// `%Th`, `%Ti`, `%TR` (see [`head_timers`]).
    pub head: [i64; 3],
    /// The request line, when there is no record.
    pub line: String,
    /// The request's record (see `logrec`), rendered instead of the fixed line.
    pub log: Option<super::logrec::LogHandle>,
    /// A refused or timed-out head (`<BADREQ>`): as HAProxy, `%TR` and `%Tq` are -1 (the wait
    /// counts in `%Ta`), `%B` and `%U` 0.
    pub refused: bool,
    /// The request body's bytes as they came, when the line shows `%U` (see `htx_bytes::Tally`).
    body: Option<super::htx_bytes::Tally>,
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// `at` on the wall clock: the connection's accept date plus the time since, so a request reads
/// the clock once (HAProxy too derives its dates from one clock reading per loop).
pub fn wall_clock(cx: &ConnCtx, at: Instant) -> std::time::SystemTime {
    cx.accepted.0 + at.saturating_duration_since(cx.accepted.1)
}

impl Start {
    /// `at`: when the request reached the proxy's handler (the clock reading `logrec::prepare`
    /// dated the record with).
    pub fn new<B>(
        req: &http::Request<B>,
        cx: &ConnCtx,
        first: bool,
        log: Option<super::logrec::LogHandle>,
        at: Instant,
    ) -> Start {
        let tq = if first { ms(at - cx.accepted.1) } else { 0 };
        let handshake = cx.tls_info.get().and_then(|t| t.done);
        let head = head_timers(cx.accepted.1, handshake, req.extensions().get(), first, at);
        // With a record, the line is rendered from it instead.
        let line =
            if log.is_none() { format!("{} {} {:?}", req.method(), req.uri(), req.version()) } else { String::new() };
        // Looked up only for a line that shows `%U` (a type-map lookup per request otherwise).
        let body = log.as_ref().filter(|l| l.spec.needs_bytes_in).and_then(|_| req.extensions().get().cloned());
        Start { at, wall: wall_clock(cx, at), tq, head, line, log, refused: false, body }
    }
}

/// HAProxy's `%Th` (accept to the end of the TLS handshake, first request only), `%Ti` (idle
/// before the request's first byte: from the handshake, or from the end of the last exchange) and
/// `%TR` (first byte to a complete head). Without a first-byte time (HTTP/2 streams) the whole
/// wait counts as `%TR`, and later requests start at 0.
pub fn head_timers(
    accepted: Instant,
    handshake: Option<Instant>,
    head: Option<&super::idle::HeadStart>,
    first: bool,
    at: Instant,
) -> [i64; 3] {
    let ready = if first { handshake.unwrap_or(accepted).max(accepted) } else { at };
    let th = if first { ms(ready - accepted) } else { 0 };
    let from = match head {
        Some(h) if first => h.idle_from.max(ready),
        Some(h) => h.idle_from,
        None => ready,
    };
    match head.and_then(|h| h.first_byte) {
        Some(fb) if fb >= from && fb <= at => [th, ms(fb - from), ms(at - fb)],
        _ => [th, 0, ms(at.saturating_duration_since(from))],
    }
}

/// What writes the line when the response body is done: the connection's body wrapper
/// (`idle::Tracked`) carries it, so a logged response costs no body wrapper of its own.
pub fn wrap(
    resp: Response<ProxyBody>,
    start: Start,
    active: Arc<Active>,
    fi: usize,
    cx: &ConnCtx,
) -> (Response<ProxyBody>, Tail) {
    let picked = resp.extensions().get::<Picked>().copied();
    // A built-in page no ProxyError explains came from a rule (`deny`): HAProxy's PR state.
    let err = resp
        .extensions()
        .get::<ProxyError>()
        .copied()
        .or_else(|| resp.extensions().get::<super::errpages::Builtin>().is_some().then_some(ProxyError::Denied));
    let at_backend = resp.extensions().get::<super::errpages::AtBackend>().map(|a| a.0);
    let reached = resp.extensions().get::<Reached>().copied();
    let local = resp.extensions().get::<Local>().is_some();
    let redirected = resp.extensions().get::<super::http::ServerRedirect>().is_some();
    let tarpit = resp.extensions().get::<Tarpitted>().map(|t| t.0);
    let status = resp.status().as_u16();
    // What a server sent (not lbha's own answer, which HAProxy neither captures nor shows
    // in `%[capture.res.*]`).
    let from_server = picked.is_some() && err.is_none() && !redirected;
    if let Some(h) = &start.log {
        if from_server {
            super::logrec::capture_response_headers(h, resp.headers());
            let mut rec = h.lock();
            rec.res_version = Some(resp.version());
            if h.spec.needs_headers {
                rec.res_headers = resp.headers().clone();
            }
        } else if local {
            // HAProxy captures the request cookie only past the rules that did not answer (and
            // for a deny or tarpit).
            h.lock().cookie_req = None;
        }
    }
    // Nothing goes out for a client gone while it waited, nor for a silent answer (reject,
    // silent-drop): no head to count.
    let unsent = matches!(err, Some(ProxyError::ClientAborted { .. } | ProxyError::ClientReset))
        || resp.extensions().get::<super::tcp_rules::Silent>().is_some();
    let head = if unsent { 0 } else { response_head(&resp, !from_server) };
    let head = if redirected { head + super::htx_bytes::REDIRECT_CONNECTION } else { head };
    let pending = Pending {
        start,
        active,
        fi,
        picked,
        err,
        status,
        client: cx.src(),
        accepted: cx.accepted.0,
        at_backend,
        reached,
        local,
        redirected,
        tarpit,
        head,
        stream: None,
    };
    (resp, Tail { pending: Box::new(pending), bytes: 0, ended: false })
}

struct Pending {
    start: Start,
    active: Arc<Active>,
    fi: usize,
    picked: Option<Picked>,
    err: Option<ProxyError>,
    status: u16,
    client: std::net::SocketAddr,
    accepted: std::time::SystemTime,
    at_backend: Option<usize>,
    reached: Option<Reached>,
    local: bool,
    /// A server's `redir` answered (`LC`, as HAProxy).
    redirected: bool,
    tarpit: Option<i64>,
    /// The response head's size as HAProxy counts it in `%B` (see `htx_bytes`).
    head: u64,
    /// Kept only when the format reads the stream (see [`Tail::keep_stream`]); boxed, so the
    /// lines that do not carry it one word more.
    stream: Option<Box<Stream>>,
}

/// What a line whose `%[...]` reads the stream keeps of it until the line is written, as
/// HAProxy evaluates a log line at the end of the stream: the connection (TLS facts, `sess.*`
/// variables, server state), the chosen backend, the transaction's `txn.*` and `res.*`
/// variables (`req.*` are gone by then, in HAProxy too) and its tracked counters.
struct Stream {
    cx: Arc<ConnCtx>,
    backend: Option<usize>,
    txn: super::vars::VarStore,
    res: super::vars::VarStore,
    stk: crate::stktable::track::Trackers,
}

impl Pending {
    fn write(mut self, bytes: u64, ended: bool) {
        // Nothing reaches a client that reset its connection.
        let gone = matches!(self.err, Some(ProxyError::ClientReset));
        let bytes = if self.start.refused || gone { 0 } else { self.head + bytes };
        // The exchange's one clock reading at its end: the timers and the line's date.
        let elapsed = Instant::now().saturating_duration_since(self.start.at);
        let sent = self.start.wall + elapsed;
        let snap = &self.active.snap;
        let fe = &snap.frontends[self.fi];
        let (backend, server) = match self.picked {
            Some(p) => {
                (snap.backends[p.backend].name.as_str(), snap.backends[p.backend].servers[p.server].name.as_str())
            }
            // A failure after the backend was chosen names the backend (and the server it was
            // given), as HAProxy does.
            None => match (self.at_backend, self.reached.and_then(|r| r.server)) {
                (Some(b), Some(s)) => (snap.backends[b].name.as_str(), snap.backends[b].servers[s].name.as_str()),
                (Some(b), None) => (snap.backends[b].name.as_str(), "<NOSRV>"),
                (None, _) => (fe.name.as_str(), "<NOSRV>"),
            },
        };
        let termination = match (self.err, ended) {
            (Some(ProxyError::BadRequest(_) | ProxyError::UriTooLong | ProxyError::HeadersTooLarge), _) => ['P', 'R'],
            (Some(ProxyError::Denied), _) if self.tarpit.is_some() => ['P', 'T'],
            (Some(ProxyError::Denied), _) => ['P', 'R'],
            (Some(ProxyError::RequestTimeout), _) => ['c', 'R'],
            (Some(ProxyError::ClosedEarly), _) => ['C', 'R'],
            (Some(ProxyError::NoServer), _) => ['S', 'C'],
            (Some(ProxyError::ConnectFailed), _) => ['S', 'C'],
            (Some(ProxyError::QueueTimeout), _) => ['s', 'Q'],
            // HAProxy's queue error (`SI_ET_QUEUE_ERR`).
            (Some(ProxyError::QueueFull), _) => ['S', 'Q'],
            (Some(ProxyError::ServerTimeout), _) => ['s', 'H'],
            (Some(ProxyError::ServerFailed), _) => ['S', 'H'],
            (Some(ProxyError::ServerMarkedDown), _) => ['S', 'H'],
            (Some(ProxyError::ClientAborted { connecting }), _) => ['C', if connecting { 'C' } else { 'Q' }],
            (Some(ProxyError::ClientReset), _) => ['C', 'D'],
            (None, true) if self.redirected => ['L', 'C'],
            (None, true) if self.local => ['L', 'R'],
            (None, true) => ['-', '-'],
            // The body did not reach its end: the client went away (or the server cut it).
            (None, false) => ['C', 'D'],
        };
        if let Some(h) = self.start.log.take() {
            let super::logrec::LogHandle { rec: shared, spec } = h;
            let stream = self.stream.take();
            // The exchange is over: the record is ours alone (it goes back to the spares once
            // written), unless a clone still lives.
            if Arc::strong_count(&shared) == 1 {
                let mut rec = shared.lock().unwrap_or_else(|p| p.into_inner());
                self.write_record(&mut rec, &spec, (backend, server), termination, bytes, (elapsed, sent), stream);
                drop(rec);
                super::logrec::recycle(shared);
            } else {
                let mut rec = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                self.write_record(&mut rec, &spec, (backend, server), termination, bytes, (elapsed, sent), stream);
            }
            return;
        }
        let p = self.picked;
        let rec = HttpRecord {
            client: self.client,
            accepted: self.accepted,
            frontend: &fe.name,
            backend,
            server,
            timers: [
                if self.start.refused { -1 } else { self.start.tq },
                p.map_or(-1, |p| p.tw),
                p.map_or(-1, |p| p.tc),
                p.map_or(-1, |p| p.tr),
                ms(elapsed) + self.start.tq,
            ],
            status: self.status,
            bytes,
            termination,
            retries: p.map_or(0, |p| p.retries),
            request_line: &self.start.line,
        };
        let level = if self.status >= 500 { Level::Err } else { Level::Info };
        let line = if fe.log_clf { httplog_clf(&rec) } else { httplog(&rec) };
        self.active.fe_logger(self.fi).log_render(level, sent, None, |out| out.extend_from_slice(line.as_bytes()));
    }

    /// The line of a request with a record (`log-format`, captures): the record completed with
    /// how the exchange went, then rendered. `clock`: the time since the request came, and the
    /// wall-clock time now.
    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &self,
        rec: &mut crate::log::record::Record,
        spec: &super::logrec::FrontLog,
        (backend, server): (&str, &str),
        termination: [char; 2],
        bytes: u64,
        (elapsed, sent): (std::time::Duration, std::time::SystemTime),
        stream: Option<Box<Stream>>,
    ) {
        let p = self.picked;
        let snap = &self.active.snap;
        let fe = &snap.frontends[self.fi];
        let reached = self.reached.unwrap_or_default();
        // In the strings the record was made with (usually large enough): no allocation.
        rec.backend.clear();
        rec.backend.push_str(backend);
        rec.server.clear();
        rec.server.push_str(server);
        // The backend and server the request went to, and whether it still counts in their
        // sessions: HAProxy logs once the stream has left them, so `%bc %sc` are the others.
        let went = match p {
            Some(p) => Some((p.backend, Some(p.server), 1)),
            None => self.at_backend.map(|b| (b, reached.server, 0)),
        };
        if let Some((b, server, own)) = went {
            let brt = &self.active.rt.backends[b];
            rec.beconn = (brt.counters.cur_sessions.load(Relaxed) as u64).saturating_sub(own);
            if let Some(s) = server {
                // `%si:%sp` are the server connection's: a `redir` made none, nor a request
                // refused by the server's full queue (`-`, as HAProxy).
                let none = self.redirected || self.err == Some(ProxyError::QueueFull);
                rec.server_addr = (!none).then_some(snap.backends[b].servers[s].addr);
                rec.backend_src = p.map_or(reached.src, |p| p.src);
                rec.srvconn = (brt.servers[s].counters.cur_sessions.load(Relaxed) as u64).saturating_sub(own);
            }
        }
        // The positions it took in the queues, as HAProxy logs them (not their length now).
        let queued = p.map_or(reached.queued, |p| p.queued);
        (rec.srv_queue, rec.be_queue) = (u64::from(queued.server), u64::from(queued.backend));
        rec.feconn = self.active.rt.frontends[self.fi].cur_sessions.load(Relaxed) as u64;
        rec.actconn = self.active.rt.frontends.iter().map(|f| f.cur_sessions.load(Relaxed) as u64).sum();
        [rec.th, rec.ti, rec.t_recv] = self.start.head;
        rec.tw = p.map_or(reached.tw, |p| p.tw);
        rec.tc = p.map_or(reached.tc, |p| p.tc);
        rec.tr = p.map_or(-1, |p| p.tr);
        rec.tt = ms(elapsed) + self.start.head.iter().sum::<i64>();
        if self.start.refused {
            rec.t_recv = -1;
        }
        if let Some(held) = self.tarpit {
            // HAProxy counts a tarpit's hold as the queue wait, and the request as never
            // complete (`%TR` and `%Tq` -1).
            (rec.tw, rec.t_recv) = (held, -1);
        }
        // A client that reset during its request body got no answer: no status (`-1`), as HAProxy.
        rec.status = (!matches!(self.err, Some(ProxyError::ClientReset))).then_some(self.status);
        rec.bytes_out = bytes;
        if spec.needs_headers {
            rec.bytes_in = request_bytes(rec, self.start.body.as_ref());
        }
        if self.start.refused {
            rec.bytes_in = 0;
        }
        rec.termination = termination;
        rec.retries = p.map_or(reached.retries, |p| p.retries);
        rec.redispatched = p.map_or(reached.redispatched, |p| p.redispatched);
        let Some(level) = spec.level(rec) else { return };
        rec.log_counter = spec.log_count.fetch_add(1, Relaxed);
        let format = match &spec.format {
            Some(f) => f,
            None if fe.log_clf => clf_format(),
            None => default_format(),
        };
        let rec = &*rec;
        let logger = self.active.fe_logger(self.fi);
        let Some(Stream { cx, backend, txn, res, stk }) = stream.map(|s| *s) else {
            let sd = spec.format_sd.as_ref().map(|f| String::from_utf8_lossy(&f.render(rec)).into_owned());
            // Rendered straight into the syslog line.
            logger.log_render(level, sent, sd.as_deref(), |out| format.render_into(out, rec));
            return;
        };
        let vars =
            super::vars::TxnVars { txn, res, stk, ..super::vars::TxnVars::new(&cx.proxy.proc_vars, &cx.sess_vars) };
        let ctx = super::sample_ctx::StreamCtx::logged(&cx, &self.active, self.fi, backend, Some(&vars), rec);
        let maps = &**cx.proxy.maps.store.load();
        let sd = spec.format_sd.as_ref().map(|f| {
            let mut out = Vec::new();
            f.render_with(&mut out, rec, &ctx, maps);
            String::from_utf8_lossy(&out).into_owned()
        });
        logger.log_render(level, sent, sd.as_deref(), |out| format.render_with(out, rec, &ctx, maps));
    }
}

/// HAProxy 2.6's `option httplog` format, compiled once.
fn default_format() -> &'static crate::log::compiled::LineFormat {
    static F: std::sync::OnceLock<crate::log::compiled::LineFormat> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let f = crate::sample::LogFormat::parse(super::logrec::HTTPLOG).expect("the httplog format parses");
        crate::log::compiled::LineFormat::compile(&f).expect("the httplog format compiles")
    })
}

/// HAProxy 2.6's `option httplog clf` format, compiled once.
fn clf_format() -> &'static crate::log::compiled::LineFormat {
    const CLF: &str = "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl";
    static F: std::sync::OnceLock<crate::log::compiled::LineFormat> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let f = crate::sample::LogFormat::parse(CLF).expect("the clf format parses");
        crate::log::compiled::LineFormat::compile(&f).expect("the clf format compiles")
    })
}

/// `%U`: the request as HAProxy 2.6 counts it, in its internal (HTX) form (see `htx_bytes`):
/// a body that was read counts the bytes that came (a client that left halfway sent fewer
/// than it declared), one never asked for its declared length.
fn request_bytes(rec: &crate::log::record::Record, body: Option<&super::htx_bytes::Tally>) -> u64 {
    let (Some(m), Some(u)) = (&rec.method, &rec.uri) else { return 0 };
    let head = super::htx_bytes::request_head(m.as_str(), super::htx_bytes::uri_len(u), &rec.req_headers);
    super::htx_bytes::request_bytes(head, &rec.req_headers, body)
}

/// `%B`'s share of the response head, counted as HAProxy 2.6 does (its HTX form, see
/// `htx_bytes`): the server's reason phrase, else the standard one. HAProxy's own answers
/// (`own`) carry a `content-length`, which lbha's may add only on the wire.
fn response_head(resp: &Response<ProxyBody>, own: bool) -> u64 {
    use http_body::Body;
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().len())
        .unwrap_or_else(|| resp.status().canonical_reason().map_or(0, str::len));
    let h = resp.headers();
    let mut head = super::htx_bytes::response_head(reason, h);
    if own
        && !h.contains_key(http::header::CONTENT_LENGTH)
        && !h.contains_key(http::header::TRANSFER_ENCODING)
        && let Some(n) = resp.body().size_hint().exact()
    {
        head += ("content-length".len() + n.to_string().len()) as u64;
    }
    head
}

/// A logged request's line, waiting for the response body to be done: carried by the body's
/// wrapper (`idle::Tracked`), which reports the frames that went out and writes the line when
/// it is dropped (the body ended, or the client went away).
pub struct Tail {
    /// Boxed: the tail moves with the response, several times, and a pointer moves cheaper.
    pending: Box<Pending>,
    bytes: u64,
    ended: bool,
}

impl Tail {
    /// The body has nothing more to send (also before its first frame: an empty body).
    pub fn ended(&mut self) {
        self.ended = true;
    }

    /// A data frame of `n` bytes went out.
    pub fn sent(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// Keeps what the format reads of the stream until the line is written (only when a format
    /// needs it: `FrontLog::needs_stream`, decided at load).
    pub fn keep_stream(&mut self, cx: &Arc<ConnCtx>, backend: Option<usize>, vars: super::vars::TxnVars<'_>) {
        let super::vars::TxnVars { txn, res, stk, .. } = vars;
        self.pending.stream = Some(Box::new(Stream { cx: cx.clone(), backend, txn, res, stk }));
    }

    /// Writes the line.
    pub fn write(self) {
        self.pending.write(self.bytes, self.ended);
    }
}

#[cfg(test)]
mod tests {
    use super::head_timers;
    use crate::proxy::idle::HeadStart;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn head_timers_split_handshake_idle_and_head() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // First request over TLS: 30 ms handshake, 200 ms idle, 5 ms of head.
        let h = HeadStart { idle_from: t0, first_byte: Some(at(230)) };
        assert_eq!(head_timers(t0, Some(at(30)), Some(&h), true, at(235)), [30, 200, 5]);
        // Plain: no handshake.
        assert_eq!(head_timers(t0, None, Some(&h), true, at(235)), [0, 230, 5]);
        // A keep-alive request: idle from the end of the last exchange.
        let h = HeadStart { idle_from: at(1000), first_byte: Some(at(1400)) };
        assert_eq!(head_timers(t0, Some(at(30)), Some(&h), false, at(1402)), [0, 400, 2]);
        // HTTP/2 (no first-byte time): the first request's wait is TR, later ones start at 0.
        assert_eq!(head_timers(t0, None, None, true, at(50)), [0, 0, 50]);
        assert_eq!(head_timers(t0, None, None, false, at(5000)), [0, 0, 0]);
    }
}
