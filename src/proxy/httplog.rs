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
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Start {
    pub fn new<B>(req: &http::Request<B>, cx: &ConnCtx, first: bool) -> Start {
        let at = Instant::now();
        let tq = if first { ms(at - cx.accepted.1) } else { 0 };
        Start { at, tq, line: format!("{} {} {:?}", req.method(), req.uri(), req.version()) }
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
    let err = resp.extensions().get::<ProxyError>().copied();
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let pending = Pending { start, active, fi, picked, err, status, client: cx.peer, accepted: cx.accepted.0 };
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
}

impl Pending {
    fn write(self, bytes: u64, ended: bool) {
        let snap = &self.active.snap;
        let fe = &snap.frontends[self.fi];
        let (backend, server) = match self.picked {
            Some(p) => {
                (snap.backends[p.backend].name.as_str(), snap.backends[p.backend].servers[p.server].name.as_str())
            }
            None => (fe.name.as_str(), "<NOSRV>"),
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
        self.active.logger.log(level, &line);
    }
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
