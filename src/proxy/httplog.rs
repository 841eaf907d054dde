//! `option httplog`: one line per request, written when the response body has been sent (or
//! abandoned), with HAProxy's timers, byte count and termination state.

use super::body::{BoxError, ProxyBody};
use super::errors::ProxyError;
use super::{Active, ConnCtx};
use crate::log::format::{HttpRecord, Level, httplog, httplog_clf};
use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
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
}

/// What the request looked like before it was handled.
pub struct Start {
    pub at: Instant,
    pub tq: i64,
    pub line: String,
    /// The request's record (see `logrec`), rendered instead of the fixed line.
    pub log: Option<super::logrec::LogHandle>,
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Start {
    pub fn new<B>(req: &http::Request<B>, cx: &ConnCtx, first: bool) -> Start {
        let at = Instant::now();
        let tq = if first { ms(at - cx.accepted.1) } else { 0 };
        let log = req.extensions().get::<super::logrec::LogHandle>().cloned();
        Start { at, tq, line: format!("{} {} {:?}", req.method(), req.uri(), req.version()), log }
    }
}

/// Wraps the response body so the line is written when the body is done.
pub fn wrap(
    resp: Response<ProxyBody>,
    start: Start,
    active: Arc<Active>,
    fi: usize,
    cx: &ConnCtx,
) -> Response<ProxyBody> {
    let picked = resp.extensions().get::<Picked>().copied();
    // A built-in page no ProxyError explains came from a rule (`deny`): HAProxy's PR state.
    let err = resp
        .extensions()
        .get::<ProxyError>()
        .copied()
        .or_else(|| resp.extensions().get::<super::errpages::Builtin>().is_some().then_some(ProxyError::Denied));
    let at_backend = resp.extensions().get::<super::errpages::AtBackend>().map(|a| a.0);
    let status = resp.status().as_u16();
    if let Some(h) = &start.log {
        super::logrec::capture_response_headers(h, resp.headers());
        h.lock().res_headers = resp.headers().clone();
    }
    let (parts, body) = resp.into_parts();
    let pending =
        Pending { start, active, fi, picked, err, status, client: cx.peer, accepted: cx.accepted.0, at_backend };
    let body = Logged { inner: body, bytes: 0, ended: false, pending: Some(pending) };
    Response::from_parts(parts, body.boxed_unsync())
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
}

impl Pending {
    fn write(self, bytes: u64, ended: bool) {
        let snap = &self.active.snap;
        let fe = &snap.frontends[self.fi];
        let (backend, server) = match self.picked {
            Some(p) => {
                (snap.backends[p.backend].name.as_str(), snap.backends[p.backend].servers[p.server].name.as_str())
            }
            // A failure after the backend was chosen names the backend, as HAProxy does.
            None => match self.at_backend {
                Some(b) => (snap.backends[b].name.as_str(), "<NOSRV>"),
                None => (fe.name.as_str(), "<NOSRV>"),
            },
        };
        let termination = match (self.err, ended) {
            (Some(ProxyError::BadRequest(_) | ProxyError::UriTooLong | ProxyError::HeadersTooLarge), _) => ['P', 'R'],
            (Some(ProxyError::Denied), _) => ['P', 'R'],
            (Some(ProxyError::NoServer), _) => ['S', 'C'],
            (Some(ProxyError::ConnectFailed), _) => ['S', 'C'],
            (Some(ProxyError::QueueTimeout), _) => ['s', 'Q'],
            (Some(ProxyError::ServerTimeout), _) => ['s', 'H'],
            (Some(ProxyError::ServerFailed), _) => ['S', 'H'],
            (Some(ProxyError::ServerMarkedDown), _) => ['S', 'H'],
            (None, true) => ['-', '-'],
            // The body did not reach its end: the client went away (or the server cut it).
            (None, false) => ['C', 'D'],
        };
        let p = self.picked;
        if let Some(h) = self.start.log.clone() {
            let mut rec = h.lock().clone();
            rec.backend = backend.to_string();
            rec.server = server.to_string();
            if let Some(p) = p {
                rec.server_addr = Some(snap.backends[p.backend].servers[p.server].addr);
                let brt = &self.active.rt.backends[p.backend];
                rec.beconn = brt.counters.cur_sessions.load(Relaxed) as u64;
                rec.be_queue = brt.counters.queue.cur.load(Relaxed) as u64;
                rec.srvconn = brt.servers[p.server].counters.cur_sessions.load(Relaxed) as u64;
                rec.srv_queue = brt.servers[p.server].counters.queue.cur.load(Relaxed) as u64;
            }
            rec.feconn = self.active.rt.frontends[self.fi].cur_sessions.load(Relaxed) as u64;
            rec.actconn = self.active.rt.frontends.iter().map(|f| f.cur_sessions.load(Relaxed) as u64).sum();
            // lbha sees the request once its head is in: the wait before it counts as TR.
            (rec.th, rec.ti, rec.t_recv) = (0, 0, self.start.tq);
            rec.tw = p.map_or(-1, |p| p.tw);
            rec.tc = p.map_or(-1, |p| p.tc);
            rec.tr = p.map_or(-1, |p| p.tr);
            rec.tt = ms(self.start.at.elapsed()) + self.start.tq;
            rec.status = Some(self.status);
            rec.bytes_out = bytes;
            rec.bytes_in = request_bytes(&rec);
            rec.termination = termination;
            rec.retries = p.map_or(0, |p| p.retries);
            let Some(level) = h.spec.level(&rec) else { return };
            if fe.log_clf && h.spec.format.is_none() {
                let line = httplog_clf(&HttpRecord {
                    client: self.client,
                    accepted: self.accepted,
                    frontend: &fe.name,
                    backend,
                    server,
                    timers: [rec.t_recv, rec.tw, rec.tc, rec.tr, rec.tt],
                    status: self.status,
                    bytes,
                    termination,
                    retries: rec.retries,
                    request_line: &self.start.line,
                });
                self.active.fe_logger(self.fi).log(level, &line);
                return;
            }
            let line = match &h.spec.format {
                Some(f) => crate::log::record::render(f, &rec),
                None => crate::log::record::render(default_format(), &rec),
            };
            let sd = h
                .spec
                .format_sd
                .as_ref()
                .map(|f| String::from_utf8_lossy(&crate::log::record::render(f, &rec)).into_owned());
            self.active.fe_logger(self.fi).log_sd(level, sd.as_deref(), &String::from_utf8_lossy(&line));
            return;
        }
        let rec = HttpRecord {
            client: self.client,
            accepted: self.accepted,
            frontend: &fe.name,
            backend,
            server,
            timers: [
                self.start.tq,
                p.map_or(-1, |p| p.tw),
                p.map_or(-1, |p| p.tc),
                p.map_or(-1, |p| p.tr),
                ms(self.start.at.elapsed()) + self.start.tq,
            ],
            status: self.status,
            bytes,
            termination,
            retries: p.map_or(0, |p| p.retries),
            request_line: &self.start.line,
        };
        let level = if self.status >= 500 { Level::Err } else { Level::Info };
        let line = if fe.log_clf { httplog_clf(&rec) } else { httplog(&rec) };
        self.active.fe_logger(self.fi).log(level, &line);
    }
}

/// HAProxy 2.6's `option httplog` format, parsed once.
fn default_format() -> &'static crate::sample::LogFormat {
    static F: std::sync::OnceLock<crate::sample::LogFormat> = std::sync::OnceLock::new();
    F.get_or_init(|| crate::sample::LogFormat::parse(super::logrec::HTTPLOG).expect("the httplog format parses"))
}

/// `%U`: the request head as it is written on the wire, plus a declared body length.
fn request_bytes(rec: &crate::log::record::Record) -> u64 {
    let line = rec.method.as_ref().map_or(0, |m| m.as_str().len())
        + rec.uri.as_ref().map_or(0, |u| u.to_string().len())
        + "HTTP/1.1".len()
        + 4;
    let fields: usize = rec.req_headers.iter().map(|(n, v)| n.as_str().len() + 2 + v.len() + 2).sum();
    let body = rec
        .req_headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (line + fields + 2 + body) as u64
}

struct Logged {
    inner: ProxyBody,
    bytes: u64,
    ended: bool,
    pending: Option<Pending>,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.bytes += d.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.ended = true;
                }
            }
            Poll::Ready(None) => self.ended = true,
            _ => {}
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let ended = self.ended || self.inner.is_end_stream();
        if let Some(p) = self.pending.take() {
            p.write(self.bytes, ended);
        }
    }
}
