//! A lean HTTP/1 server path for the common request: a head without a body, read from the
//! connection's own buffer with `httparse` and answered by writing the response straight onto
//! the socket, without hyper's server connection (its dispatcher, the header map it parses into
//! and the boxing of the service future per request). Anything else (a body, `Expect`, an
//! upgrade, CONNECT, a head the framing guard refused or stood in for, a head `httparse` or the
//! `http` types do not take as a whole) goes to hyper with the bytes already read, for the rest
//! of the stretch (see `H1Conn` in `mod.rs`), so every odd case keeps hyper's behaviour.
//!
//! The response is encoded as hyper 1's HTTP/1 server encodes it (`proto::h1::role::Server::
//! encode` and the connection's keep-alive rules), so a client sees the same bytes either way.

use super::batch;
use super::body::{ProxyBody, ReqBody};
use super::idle::Tracked;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body::Body;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the service makes of one request: the response, or silence (the connection is dropped).
pub type Answer = Result<Response<Tracked<ProxyBody>>, super::tcp_rules::Silent>;
/// One request's service future, boxed (hyper boxed it too: a parked connection holds a pointer).
pub type Call = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// How every request of an HTTP/1 connection is served, whether hyper or [`Lean`] read it.
#[derive(Clone)]
pub struct Service {
    pub cx: Arc<super::ConnCtx>,
    pub activity: Arc<super::idle::Activity>,
    pub verdicts: Arc<super::framing::Verdicts>,
    pub upgrades: super::park::ManualUpgrade,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for Service {
    type Response = Response<Tracked<ProxyBody>>;
    type Error = super::tcp_rules::Silent;
    type Future = Call;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Call {
        self.serve(req.map(ReqBody::Hyper))
    }
}

impl Service {
    /// Serves one request (the HTTP/1 service of hyper's connection and of [`Lean`] alike).
    pub fn serve(&self, mut req: Request<ReqBody>) -> Call {
        let cx = self.cx.clone();
        let verdict = self.verdicts.next();
        let head = self.activity.head_start();
        let exchange = super::idle::Handover::new(self.activity.begin());
        if verdict.stands_in()
            && let Some(r) = self.verdicts.take_refused()
        {
            req.extensions_mut().insert(r);
        }
        req.extensions_mut().insert(head);
        req.extensions_mut().insert(exchange.clone());
        req.extensions_mut().insert(self.upgrades.clone());
        Box::pin(async move {
            let (mut resp, log) = super::http::handle(req, verdict, cx.clone()).await;
            // Stopping: the client learns the connection ends after this answer, instead of
            // sending its next request into a connection being closed.
            if *cx.proxy.drain.borrow() {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            super::tcp_rules::answer(resp.map(|b| Tracked::untimed(b, exchange.take(), log)))
        })
    }
}

/// hyper's longest request target (its `MAX_URI_LEN`); a longer one is hyper's 414.
const MAX_URI: usize = 65534;
/// Most fields in a head the framing guard passes (`framing::HYPER_MAX_HEADERS`).
const MAX_HEADERS: usize = super::framing::HYPER_MAX_HEADERS;
/// What one read asks of the socket at least (hyper's first read buffer is 8 KiB).
const READ_SIZE: usize = 8192;
/// Response bytes gathered before they are written (hyper's write buffer limit here).
const FLUSH_AT: usize = 64 * 1024;

/// What the response's framing depends on, from a request this path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub version: Version,
    pub head: bool,
    /// The client asked to keep the connection (HTTP/1.1 without `close`, HTTP/1.0 with
    /// `keep-alive`), as hyper reads its `Connection` fields.
    pub keep_alive: bool,
}

/// Whether a parsed head is one this path serves (see the module's doc), and its facts.
pub fn simple(req: &httparse::Request<'_, '_>) -> Option<Facts> {
    let method = req.method?;
    let path = req.path?;
    if method == "CONNECT" || !path.starts_with('/') || path.len() > MAX_URI {
        return None;
    }
    let (version, mut keep_alive) = match req.version? {
        1 => (Version::HTTP_11, true),
        0 => (Version::HTTP_10, false),
        _ => return None,
    };
    let mut saw_close = false;
    for h in req.headers.iter() {
        let n = h.name;
        if n.eq_ignore_ascii_case("content-length") {
            if h.value != b"0" {
                return None;
            }
        } else if n.eq_ignore_ascii_case("transfer-encoding")
            || n.eq_ignore_ascii_case("upgrade")
            || n.eq_ignore_ascii_case("expect")
        {
            return None;
        } else if n.eq_ignore_ascii_case("connection") {
            // hyper's reading: once a line asks to close, a later `keep-alive` does not undo it.
            if saw_close || has_token(h.value, "close") {
                saw_close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = has_token(h.value, "keep-alive");
            }
        }
    }
    Some(Facts { version, head: method == "HEAD", keep_alive })
}

/// A comma-separated field value holds `token` (hyper's `connection_has`: values that are not
/// visible ASCII hold nothing).
fn has_token(v: &[u8], token: &str) -> bool {
    if !v.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t') {
        return false;
    }
    let s = std::str::from_utf8(v).unwrap_or("");
    s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Parses the head at the start of `data` into a request, when this path serves it: the
/// request, its facts and the head's length.
pub fn take(data: &Bytes) -> Option<(Request<ReqBody>, Facts, usize)> {
    let mut hs = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut []);
    let end = match r.parse_with_uninit_headers(data, &mut hs) {
        Ok(httparse::Status::Complete(end)) => end,
        _ => return None,
    };
    let facts = simple(&r)?;
    let method = Method::from_bytes(r.method?.as_bytes()).ok()?;
    let uri = http::Uri::from_maybe_shared(data.slice_ref(r.path?.as_bytes())).ok()?;
    let mut headers = HeaderMap::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(data.slice_ref(h.value)).ok()?;
        headers.append(name, value);
    }
    let mut req = Request::new(ReqBody::Empty);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = facts.version;
    *req.headers_mut() = headers;
    Some((req, facts, end))
}

/// How the response body is framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// This many bytes are still owed.
    Length(u64),
    /// Chunked, with the trailer fields the `Trailer` field announced (none: trailers dropped).
    Chunked(Option<Vec<HeaderName>>),
    /// Until the connection closes.
    Close,
}

/// A response's framing, and whether the connection ends after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoder {
    pub kind: Kind,
    pub last: bool,
}

impl Encoder {
    /// Nothing more to write after the head.
    fn is_eof(&self) -> bool {
        self.kind == Kind::Length(0)
    }
}

fn can_chunked(head: bool, status: StatusCode) -> bool {
    !(head || status.is_informational() || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED))
}

fn can_have_content_length(status: StatusCode) -> bool {
    !(status.is_informational() || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED))
}

fn content_length_parse(v: &HeaderValue) -> Option<u64> {
    let s = v.to_str().ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// hyper's keep-alive rules for the answer (`Conn::enforce_version`): an HTTP/1.0 client keeps
/// the connection only with `Connection: keep-alive` in the answer (added when the answer is
/// HTTP/1.1 and the client asked for it) and gets an HTTP/1.0 status line; an HTTP/1.1 client
/// that is not kept gets `Connection: close`. Returns whether the connection is kept.
fn enforce_version(parts: &mut http::response::Parts, req: Facts, mut keep_alive: bool) -> bool {
    if req.version == Version::HTTP_10 {
        let answers_keep_alive =
            parts.headers.get_all(header::CONNECTION).iter().any(|v| has_token(v.as_bytes(), "keep-alive"));
        if !answers_keep_alive {
            match parts.version {
                Version::HTTP_10 => keep_alive = false,
                Version::HTTP_11 if keep_alive => {
                    parts.headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
                }
                _ => {}
            }
        }
        parts.version = Version::HTTP_10;
    } else if !keep_alive {
        let closes = parts.headers.get_all(header::CONNECTION).iter().any(|v| has_token(v.as_bytes(), "close"));
        if !closes {
            parts.headers.append(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    keep_alive
}

/// Writes the response head into `dst` as hyper's HTTP/1 server does, and says how the body
/// goes out. `body`: none when the body is already at its end, else its exact length if known.
/// `keep_alive`: the client's wish, unless the connection is being shut. Err: the head cannot be
/// sent (hyper's user errors: a 1xx answer, conflicting lengths); `dst` then holds what should
/// be written instead, if anything.
pub fn encode_head(
    parts: &mut http::response::Parts,
    req: Facts,
    keep_alive: bool,
    body: Option<Option<u64>>,
    dst: &mut Vec<u8>,
) -> Result<Encoder, &'static str> {
    let keep_alive = enforce_version(parts, req, keep_alive);
    let mut body = body;
    let (ret, mut is_last) = if parts.status == StatusCode::SWITCHING_PROTOCOLS {
        (Ok(()), true)
    } else if parts.status.is_informational() {
        parts.headers.clear();
        parts.extensions.clear();
        parts.version = Version::HTTP_11;
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        body = None;
        (Err("1xx answers are not sent"), true)
    } else {
        (Ok(()), !keep_alive)
    };
    let orig_len = dst.len();
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    if parts.version == Version::HTTP_11 && parts.status == StatusCode::OK && reason.is_none() {
        dst.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        dst.extend_from_slice(if parts.version == Version::HTTP_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        dst.extend_from_slice(parts.status.as_str().as_bytes());
        dst.push(b' ');
        match reason {
            Some(r) => dst.extend_from_slice(r.as_bytes()),
            None => dst.extend_from_slice(parts.status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        dst.extend_from_slice(b"\r\n");
    }
    let (status, head) = (parts.status, req.head);
    let http10 = parts.version == Version::HTTP_10;
    let mut kind = Kind::Length(0);
    let mut trailers: Option<Vec<HeaderName>> = None;
    let mut wrote_len = false;
    let mut is_name_written = false;
    let mut must_write_chunked = false;
    let mut prev_con_len: Option<u64> = None;
    let mut cur: Option<&HeaderName> = None;
    let rewind = |dst: &mut Vec<u8>| dst.truncate(orig_len);
    let end_line = |dst: &mut Vec<u8>, written: bool, chunked: bool| {
        if written {
            dst.extend_from_slice(if chunked { b", chunked\r\n" } else { b"\r\n" });
        }
    };
    for (name, value) in parts.headers.iter() {
        if cur != Some(name) {
            cur = Some(name);
            end_line(dst, is_name_written, must_write_chunked);
            is_name_written = false;
        }
        match *name {
            header::CONTENT_LENGTH => {
                if wrote_len && !is_name_written {
                    rewind(dst);
                    return Err("unexpected content-length");
                }
                match body {
                    Some(Some(known)) => {
                        if !is_name_written {
                            kind = Kind::Length(known);
                            dst.extend_from_slice(b"content-length: ");
                            dst.extend_from_slice(value.as_bytes());
                            wrote_len = true;
                            is_name_written = true;
                        }
                        continue;
                    }
                    Some(None) => {
                        let Some(len) = content_length_parse(value) else {
                            rewind(dst);
                            return Err("illegal content-length");
                        };
                        if let Some(prev) = prev_con_len {
                            if prev != len {
                                rewind(dst);
                                return Err("multiple content-length values");
                            }
                            continue;
                        }
                        kind = Kind::Length(len);
                        dst.extend_from_slice(b"content-length: ");
                        dst.extend_from_slice(value.as_bytes());
                        wrote_len = true;
                        is_name_written = true;
                        prev_con_len = Some(len);
                        continue;
                    }
                    None => {
                        if !head {
                            continue;
                        }
                    }
                }
                wrote_len = true;
            }
            header::TRANSFER_ENCODING => {
                if wrote_len && !is_name_written {
                    rewind(dst);
                    return Err("unexpected transfer-encoding");
                }
                if http10 || !can_chunked(head, status) {
                    continue;
                }
                wrote_len = true;
                must_write_chunked = !is_chunked(value);
                if !is_name_written {
                    kind = Kind::Chunked(None);
                    is_name_written = true;
                    dst.extend_from_slice(b"transfer-encoding: ");
                } else {
                    dst.extend_from_slice(b", ");
                }
                dst.extend_from_slice(value.as_bytes());
                continue;
            }
            header::CONNECTION => {
                if !is_last && has_token(value.as_bytes(), "close") {
                    is_last = true;
                }
                if !is_name_written {
                    is_name_written = true;
                    dst.extend_from_slice(b"connection: ");
                } else {
                    dst.extend_from_slice(b", ");
                }
                dst.extend_from_slice(value.as_bytes());
                continue;
            }
            header::TRAILER => {
                if http10 || !can_chunked(head, status) {
                    continue;
                }
                if !is_name_written {
                    is_name_written = true;
                    dst.extend_from_slice(b"trailer: ");
                } else {
                    dst.extend_from_slice(b", ");
                }
                dst.extend_from_slice(value.as_bytes());
                if let Ok(s) = value.to_str() {
                    let names = s.split(',').filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok());
                    trailers.get_or_insert_with(Vec::new).extend(names);
                }
                continue;
            }
            _ => {}
        }
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    end_line(dst, is_name_written, must_write_chunked);
    if !wrote_len {
        kind = match body {
            Some(None) if http10 || !can_chunked(head, status) => Kind::Close,
            Some(None) => {
                dst.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Kind::Chunked(None)
            }
            None | Some(Some(0)) => {
                if can_have_content_length(status) && !head {
                    dst.extend_from_slice(b"content-length: 0\r\n");
                }
                Kind::Length(0)
            }
            Some(Some(_)) if !can_have_content_length(status) => Kind::Length(0),
            Some(Some(len)) => {
                dst.extend_from_slice(b"content-length: ");
                dst.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
                dst.extend_from_slice(b"\r\n");
                Kind::Length(len)
            }
        };
    }
    if !can_chunked(head, status) {
        kind = Kind::Length(0);
    }
    dst.extend_from_slice(b"\r\n");
    if let (Kind::Chunked(t), Some(names)) = (&mut kind, trailers) {
        *t = Some(names);
    }
    ret.map(|()| Encoder { kind, last: is_last })
}

/// `chunked` is the last coding of a `Transfer-Encoding` value (hyper's `is_chunked_`).
fn is_chunked(v: &HeaderValue) -> bool {
    v.to_str().ok().and_then(|s| s.rsplit(',').next()).is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// Trailer fields hyper's HTTP/1 encoder never sends (its `is_valid_trailer_field`).
pub(super) fn valid_trailer(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}

/// A response up to this size is gathered in one buffer (the head's, the body's small frames
/// copied after it) and goes out in one `send`, or one queued write, instead of a `writev` of its
/// pieces; larger frames are not copied.
const ONE_SEND: usize = 4096;

/// Response bytes waiting to be written, in order: `front` (the head, and the small frames that
/// followed it while they fit in [`ONE_SEND`]), then the frames as they came.
#[derive(Default)]
struct Out {
    front: Vec<u8>,
    /// Bytes of `front` already written.
    at: usize,
    bufs: VecDeque<Bytes>,
    len: usize,
}

impl Out {
    fn push(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.len += b.len();
        if self.bufs.is_empty() && self.front.len() + b.len() <= ONE_SEND {
            self.front.extend_from_slice(&b);
        } else {
            self.bufs.push_back(b);
        }
    }

    /// `bytes[at..]`, which were to be written before everything here (a queued write the
    /// socket did not take whole), go first; `bytes` becomes the front buffer.
    fn push_front(&mut self, bytes: Vec<u8>, at: usize) {
        if at >= bytes.len() {
            return;
        }
        self.len += bytes.len() - at;
        let old = std::mem::replace(&mut self.front, bytes);
        let old_at = std::mem::replace(&mut self.at, at);
        if old.len() > old_at {
            let mut b = Bytes::from(old);
            b.advance(old_at);
            self.bufs.push_front(b);
        }
    }

    /// Everything waiting is in the front buffer, none of it written yet.
    fn whole_front(&self) -> bool {
        self.bufs.is_empty() && self.at == 0 && self.len == self.front.len()
    }

    /// Fills `slices` with what waits, in order; how many were filled.
    fn slices<'a>(&'a self, slices: &mut [io::IoSlice<'a>]) -> usize {
        let mut k = 0;
        if self.front.len() > self.at && !slices.is_empty() {
            slices[0] = io::IoSlice::new(&self.front[self.at..]);
            k = 1;
        }
        for (s, b) in slices[k..].iter_mut().zip(self.bufs.iter()) {
            *s = io::IoSlice::new(b);
            k += 1;
        }
        k
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        let in_front = (self.front.len() - self.at).min(n);
        self.at += in_front;
        n -= in_front;
        if self.at == self.front.len() {
            // Kept, with its capacity, for the next response's head.
            self.front.clear();
            self.at = 0;
        }
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else { return };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.bufs.pop_front();
        }
    }
}

/// What the body's frames become on the wire (hyper's `Encoder::encode`, `encode_and_end`,
/// `end` and `encode_trailers`). Ok(true) when the connection must end after the response.
fn encode_data(kind: &mut Kind, mut data: Bytes, end: bool, out: &mut Out) -> bool {
    match kind {
        Kind::Chunked(_) => {
            out.push(Bytes::from(format!("{:X}\r\n", data.len())));
            out.push(data);
            out.push(Bytes::from_static(if end { b"\r\n0\r\n\r\n" } else { b"\r\n" }));
            false
        }
        Kind::Length(remaining) => {
            let len = data.len() as u64;
            // Holding more than is owed: only what is owed goes out.
            if len > *remaining {
                data.truncate(*remaining as usize);
                *remaining = 0;
                out.push(data);
                false
            } else {
                *remaining -= len;
                out.push(data);
                // Ended short of its length: the connection cannot be kept.
                end && *remaining > 0
            }
        }
        Kind::Close => {
            out.push(data);
            end
        }
    }
}

/// The end of the body: Err when it ended short of its `Content-Length`.
fn encode_end(kind: &Kind, out: &mut Out) -> Result<(), u64> {
    match kind {
        Kind::Length(0) | Kind::Close => Ok(()),
        Kind::Chunked(_) => {
            out.push(Bytes::from_static(b"0\r\n\r\n"));
            Ok(())
        }
        Kind::Length(n) => Err(*n),
    }
}

/// Trailers: sent only when announced in `Trailer` (true: written, the body is over); else
/// dropped and the body ends as usual.
fn encode_trailers(kind: &Kind, trailers: &HeaderMap, out: &mut Out) -> bool {
    let Kind::Chunked(Some(allowed)) = kind else { return false };
    let mut buf = Vec::new();
    for (name, value) in trailers {
        if allowed.contains(name) && valid_trailer(name) {
            buf.extend_from_slice(name.as_str().as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(value.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
    if buf.is_empty() {
        return false;
    }
    out.push(Bytes::from_static(b"0\r\n"));
    out.push(Bytes::from(buf));
    out.push(Bytes::from_static(b"\r\n"));
    true
}

enum State {
    /// Between requests: reading, or serving what was read.
    Read,
    /// The service has the request.
    Serve(Call, Facts),
    /// The response goes out; `close` once the connection must end after it.
    Send { body: Option<Tracked<ProxyBody>>, kind: Kind, close: bool },
}

/// How a [`Lean`] connection stopped.
pub enum Step {
    /// Over (Ok: closed cleanly, or let go between requests after a graceful shutdown).
    Done(io::Result<()>),
    /// A request this path does not serve: hyper takes the socket, with [`Lean::into_parts`]'s
    /// bytes read first.
    Hyper,
}

/// Where a plain TCP connection's small responses are queued for the batch's flusher (see
/// `batch`): the socket under the connection's wrappers, and the frontend's counters that its
/// `io::StallGuard` counts written bytes to.
pub struct Direct {
    batch: batch::Batch,
    fd: RawFd,
    counters: Arc<crate::state::Counters>,
    /// The last write's slot, reused.
    spare: Option<batch::Spare>,
}

/// An HTTP/1 client connection served without hyper, request by request, for as long as its
/// requests are simple ones.
pub struct Lean<T> {
    /// A response handed to the batch's flusher. Declared first, so dropped before `sock`: the
    /// write is withdrawn before the socket can close (see [`Lean::batched`]).
    queued: Option<batch::Queued>,
    sock: T,
    buf: BytesMut,
    /// Bytes read and not served, for hyper or the next stretch.
    spill: Bytes,
    state: State,
    out: Out,
    /// Shut gracefully: no new request is taken, the one in progress ends the connection.
    closing: bool,
    /// The answer could not be sent as it was: the connection ends with this once the
    /// replacement is written.
    failed: Option<&'static str>,
    /// Written since the last flush.
    unflushed: bool,
    /// How the stretch ends, once what is queued has left.
    ending: Option<Step>,
    direct: Option<Direct>,
    svc: Service,
    /// `early-hint`'s 103 responses for the request being served, written before its answer.
    hints: super::early_hints::EarlyHints,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Lean<T> {
    pub fn new(sock: T, svc: Service) -> Self {
        Self {
            queued: None,
            sock,
            buf: BytesMut::new(),
            spill: Bytes::new(),
            state: State::Read,
            out: Out::default(),
            closing: false,
            failed: None,
            unflushed: false,
            ending: None,
            direct: None,
            svc,
            hints: Default::default(),
        }
    }

    /// A connection whose small responses on a kept connection go out with the batch's other
    /// writes (one proxy thread; elsewhere this is [`Lean::new`]). The bytes the flusher writes
    /// go to `counters`' `bytes_out` at once, as the socket's `io::StallGuard` would count them;
    /// a write the socket did not take whole, or that failed, comes back to the connection,
    /// which writes the rest through its wrappers (stall guard, idle watch) or ends with the
    /// error.
    ///
    /// # Safety
    /// `fd` is the descriptor of the socket `sock` wraps, and stays open until `sock` is dropped
    /// (nothing in `sock` closes it earlier). The connection keeps its queued write withdrawn or
    /// settled before `sock` can be dropped: it is declared before `sock` (dropped first),
    /// settled before a step is returned and withdrawn by [`Lean::into_parts`]; and leaking the
    /// connection leaks `sock` with it, so the descriptor stays open.
    pub unsafe fn batched(sock: T, svc: Service, fd: RawFd, counters: Arc<crate::state::Counters>) -> Self {
        let mut lean = Self::new(sock, svc);
        lean.direct = batch::Batch::here().map(|batch| Direct { batch, fd, counters, spare: None });
        lean
    }

    /// The socket and the bytes read from it that no request took (to be read again first).
    pub fn into_parts(self) -> (T, Bytes, Service) {
        let Self { queued, sock, buf, spill, svc, .. } = self;
        // Withdrawn before the socket leaves (a step settles it first: only a connection cut
        // in the middle of a batch gets here with a write still queued).
        drop(queued);
        let rest = if spill.is_empty() { buf.freeze() } else { spill };
        (sock, rest, svc)
    }

    /// No new request is taken; one in progress is answered, and the connection ends after it.
    pub fn shut_gracefully(&mut self) {
        self.closing = true;
    }

    pub fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        let step = match self.ending.take() {
            Some(step) => step,
            None => ready!(self.poll_serve(cx)),
        };
        if matches!(step, Step::Done(Err(_))) || (self.queued.is_none() && self.out.len == 0) {
            return Poll::Ready(step);
        }
        // What is queued leaves before the connection ends or changes hands: taken back from the
        // flusher if it has not written it yet, and written here.
        if let Err(e) = self.reclaim() {
            return Poll::Ready(Step::Done(Err(e)));
        }
        match self.poll_drain(cx) {
            Poll::Pending => {
                self.ending = Some(step);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Step::Done(Err(e))),
            Poll::Ready(Ok(())) => Poll::Ready(step),
        }
    }

    /// The outcome of the queued write, taken back: nothing more to do when it went out whole
    /// (its buffer is kept for the next head), the rest put first in `out`, or its error.
    fn reclaim(&mut self) -> io::Result<()> {
        let Some(q) = self.queued.take() else { return Ok(()) };
        let batch::Settled { bytes, taken, spare } = q.settle();
        if let Some(d) = &mut self.direct {
            d.spare = spare;
        }
        let n = taken?;
        if n < bytes.len() {
            self.out.push_front(bytes, n);
        } else if self.out.len == 0 && self.out.front.capacity() == 0 {
            self.out.front = bytes;
            self.out.front.clear();
        }
        Ok(())
    }

    /// Writes what waits in `out` and flushes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.out.len > 0 {
            ready!(self.poll_write_out(cx))?;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(Pin::new(&mut self.sock).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_serve(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        // The flusher runs between two polls: a write it could not make whole (or that failed)
        // comes back here, and its rest is written before anything else of this connection.
        if let Some(q) = &self.queued
            && q.is_done(cx.waker())
            && let Err(e) = self.reclaim()
        {
            return Poll::Ready(Step::Done(Err(e)));
        }
        if self.out.len > 0
            && !matches!(self.state, State::Send { .. })
            && let Err(e) = ready!(self.poll_drain(cx))
        {
            return Poll::Ready(Step::Done(Err(e)));
        }
        loop {
            match &mut self.state {
                State::Read => {
                    if !self.buf.is_empty() {
                        if self.closing {
                            // hyper shut while bytes wait answers nothing more and lets go.
                            return Poll::Ready(Step::Done(Ok(())));
                        }
                        let data = self.buf.split().freeze();
                        let ok = self.svc.verdicts.peek() == Some(super::framing::Verdict::Ok);
                        match ok.then(|| take(&data)).flatten() {
                            Some((mut req, facts, end)) => {
                                if end < data.len() {
                                    self.buf.extend_from_slice(&data[end..]);
                                }
                                req.extensions_mut().insert(self.hints.clone());
                                self.state = State::Serve(self.svc.serve(req), facts);
                                continue;
                            }
                            None => {
                                self.spill = data;
                                return Poll::Ready(Step::Hyper);
                            }
                        }
                    }
                    if self.closing {
                        return Poll::Ready(Step::Done(Ok(())));
                    }
                    match ready!(self.poll_read(cx)) {
                        Ok(0) => return Poll::Ready(Step::Done(Ok(()))),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Step::Done(Err(e))),
                    }
                }
                State::Serve(call, facts) => {
                    let facts = *facts;
                    let polled = call.as_mut().poll(cx);
                    // `early-hint`: a 103 the rules made goes out now, after what was queued
                    // before it and ahead of the response.
                    if let Some(b) = self.hints.take() {
                        self.out.push(b);
                        if let Err(e) = self.reclaim() {
                            return Poll::Ready(Step::Done(Err(e)));
                        }
                    }
                    let Poll::Ready(answer) = polled else {
                        if self.out.len > 0
                            && let Poll::Ready(Err(e)) = self.poll_drain(cx)
                        {
                            return Poll::Ready(Step::Done(Err(e)));
                        }
                        return Poll::Pending;
                    };
                    self.hints.clear();
                    let Ok(resp) = answer else {
                        return Poll::Ready(Step::Done(Err(io::Error::other(super::tcp_rules::Silent))));
                    };
                    let (mut parts, body) = resp.into_parts();
                    let len = (!body.is_end_stream()).then(|| body.size_hint().exact());
                    let keep_alive = facts.keep_alive && !self.closing;
                    // Room for the head, and for a small body copied after it (one `send`).
                    let small = len.flatten().filter(|&n| n <= ONE_SEND as u64).unwrap_or(0) as usize;
                    let room = 128 + parts.headers.len() * 32 + small;
                    let enc = if self.out.len == 0 {
                        // Encoded into the front buffer, kept from the last response.
                        self.out.front.clear();
                        self.out.at = 0;
                        self.out.front.reserve(room);
                        let enc = encode_head(&mut parts, facts, keep_alive, len, &mut self.out.front);
                        self.out.len = self.out.front.len();
                        enc
                    } else {
                        let mut head = Vec::with_capacity(room);
                        let enc = encode_head(&mut parts, facts, keep_alive, len, &mut head);
                        self.out.push(Bytes::from(head));
                        enc
                    };
                    let enc = match enc {
                        Ok(enc) => enc,
                        Err(why) => {
                            // What hyper writes instead (a 500 for a 1xx) goes out, then the
                            // connection ends with the error.
                            self.failed = Some(why);
                            self.state = State::Send { body: None, kind: Kind::Length(0), close: true };
                            continue;
                        }
                    };
                    // A body at its end, or one that cannot be sent (HEAD, 204, 304), is dropped
                    // unread, as hyper drops it.
                    let body = (len.is_some() && !enc.is_eof()).then_some(body);
                    let close = enc.last || (enc.kind == Kind::Close && body.is_none());
                    self.state = State::Send { body, kind: enc.kind, close };
                }
                State::Send { .. } => match ready!(self.poll_send(cx)) {
                    Some(step) => return Poll::Ready(step),
                    None => self.state = State::Read,
                },
            }
        }
    }

    /// Reads once into the buffer: the number of bytes read (0 at the end of the stream).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_SIZE);
        let spare = self.buf.spare_capacity_mut();
        let mut rb = ReadBuf::uninit(spare);
        ready!(Pin::new(&mut self.sock).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        // SAFETY: `n` bytes of the spare capacity were written by the read.
        unsafe { self.buf.set_len(self.buf.len() + n) };
        Poll::Ready(Ok(n))
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out.len > 0 {
            let n = if self.out.bufs.is_empty() {
                // One buffer: `send`, not a `writev` of one piece.
                ready!(Pin::new(&mut self.sock).poll_write(cx, &self.out.front[self.out.at..]))?
            } else {
                let mut slices = [io::IoSlice::new(&[]); 16];
                let k = self.out.slices(&mut slices);
                ready!(Pin::new(&mut self.sock).poll_write_vectored(cx, &slices[..k]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Hands what waits in `out` (a whole small response, all in the front buffer) to the
    /// batch's flusher, joining the write still queued if there is one. False when this
    /// connection does not batch, the response is not in one buffer, or the flusher has already
    /// made the queued write: the caller writes it.
    fn batch_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(direct) = &mut self.direct else { return false };
        if !self.out.whole_front() {
            return false;
        }
        if let Some(q) = &self.queued {
            if !q.append(&self.out.front) {
                return false;
            }
            self.out.front.clear();
            self.out.len = 0;
            return true;
        }
        let bytes = std::mem::take(&mut self.out.front);
        let (batch, fd, counters, spare) = (&direct.batch, direct.fd, Some(&direct.counters), direct.spare.take());
        // SAFETY: `direct` was given by `Lean::batched`, whose contract keeps `fd` open while
        // `sock` lives; the handle goes to `self.queued`, which is dropped or settled first.
        match unsafe { batch::Queued::new(batch, fd, bytes, counters, cx.waker(), spare) } {
            Ok(q) => {
                self.queued = Some(q);
                self.out.len = 0;
                true
            }
            Err(bytes) => {
                self.out.front = bytes;
                false
            }
        }
    }

    /// Streams the response: frames gathered while the body has them, written together. None:
    /// the response is out and the connection goes on.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Option<Step>> {
        loop {
            let State::Send { body, kind, close } = &mut self.state else { unreachable!() };
            while let Some(b) = body.as_mut()
                && self.out.len < FLUSH_AT
            {
                match Pin::new(&mut *b).poll_frame(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Err(e))) => {
                        *body = None;
                        return Poll::Ready(Some(Step::Done(Err(io::Error::other(e)))));
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        let frame = match frame.into_data() {
                            Ok(data) => {
                                let eos = b.is_end_stream();
                                if eos {
                                    *body = None;
                                    if data.is_empty() {
                                        if let Err(n) = encode_end(kind, &mut self.out) {
                                            return Poll::Ready(Some(Step::Done(Err(short(n)))));
                                        }
                                    } else {
                                        *close |= encode_data(kind, data, true, &mut self.out);
                                    }
                                } else if !data.is_empty() {
                                    encode_data(kind, data, false, &mut self.out);
                                    // All that was owed is out: hyper ends the response here and
                                    // drops the body unread.
                                    if *kind == Kind::Length(0) {
                                        *body = None;
                                    }
                                }
                                continue;
                            }
                            Err(frame) => frame,
                        };
                        if let Ok(trailers) = frame.into_trailers() {
                            *body = None;
                            if !encode_trailers(kind, &trailers, &mut self.out)
                                && let Err(n) = encode_end(kind, &mut self.out)
                            {
                                return Poll::Ready(Some(Step::Done(Err(short(n)))));
                            }
                        }
                    }
                    Poll::Ready(None) => {
                        *body = None;
                        if let Err(n) = encode_end(kind, &mut self.out) {
                            return Poll::Ready(Some(Step::Done(Err(short(n)))));
                        }
                    }
                }
            }
            let (done, close) = (body.is_none(), *close || *kind == Kind::Close);
            // A whole small response on a kept connection joins the batch's writes.
            if done && !close && !self.closing && self.failed.is_none() && self.out.len > 0 && self.batch_out(cx) {
                return Poll::Ready(None);
            }
            if self.out.len > 0 {
                // A write still queued goes first: taken back from the flusher and written here.
                if let Err(e) = self.reclaim() {
                    return Poll::Ready(Some(Step::Done(Err(e))));
                }
                if let Err(e) = ready!(self.poll_write_out(cx)) {
                    return Poll::Ready(Some(Step::Done(Err(e))));
                }
                self.unflushed = true;
                continue;
            }
            if !done {
                // The body waits: what was written leaves now (a TLS stream holds records back
                // until flushed), as hyper flushes when its body has nothing more.
                if std::mem::take(&mut self.unflushed)
                    && let Poll::Ready(Err(e)) = Pin::new(&mut self.sock).poll_flush(cx)
                {
                    return Poll::Ready(Some(Step::Done(Err(e))));
                }
                return Poll::Pending;
            }
            if let Err(e) = ready!(Pin::new(&mut self.sock).poll_flush(cx)) {
                return Poll::Ready(Some(Step::Done(Err(e))));
            }
            self.unflushed = false;
            if let Some(why) = self.failed {
                return Poll::Ready(Some(Step::Done(Err(io::Error::other(why)))));
            }
            if close || self.closing {
                return Poll::Ready(Some(Step::Done(Ok(()))));
            }
            return Poll::Ready(None);
        }
    }
}

fn short(n: u64) -> io::Error {
    io::Error::other(format!("response body ended {n} bytes short of its content-length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Option<(Request<ReqBody>, Facts, usize)> {
        take(&Bytes::copy_from_slice(head.as_bytes()))
    }

    fn facts(head: &str) -> Option<Facts> {
        parse(head).map(|(_, f, _)| f)
    }

    #[test]
    fn a_plain_get_is_taken_with_its_fields_in_order() {
        let (req, f, end) =
            parse("GET /a?b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET / HTTP/1.1\r\n").unwrap();
        assert_eq!(end, "GET /a?b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n".len());
        assert_eq!(f, Facts { version: Version::HTTP_11, head: false, keep_alive: true });
        assert_eq!(
            (req.method(), req.uri().to_string(), req.version()),
            (&Method::GET, "/a?b".into(), Version::HTTP_11)
        );
        let fields: Vec<_> = req.headers().iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(fields, [("host", "x"), ("x-a", "1"), ("x-a", "2")]);
        assert!(req.body().is_end_stream());
    }

    #[test]
    fn requests_with_a_body_or_an_upgrade_go_to_hyper() {
        for head in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n",
            "GET /\x7f HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse(head).is_none(), "{head:?}");
        }
        let f = facts("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(f.keep_alive, "an empty body is no body");
    }

    #[test]
    fn keep_alive_is_read_from_the_connection_fields_as_hyper_reads_it() {
        let ka = |h: &str| facts(h).unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
        assert!(facts("HEAD / HTTP/1.1\r\n\r\n").unwrap().head);
    }

    fn encode(resp: Response<()>, req: Facts, body: Option<Option<u64>>) -> (String, Result<Encoder, &'static str>) {
        let (mut parts, ()) = resp.into_parts();
        let mut dst = Vec::new();
        let enc = encode_head(&mut parts, req, req.keep_alive, body, &mut dst);
        (String::from_utf8(dst).unwrap(), enc)
    }

    const GET11: Facts = Facts { version: Version::HTTP_11, head: false, keep_alive: true };

    fn resp(status: u16, fields: &[(&'static str, &'static str)]) -> Response<()> {
        let mut r = Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (n, v) in fields {
            r.headers_mut().append(*n, HeaderValue::from_static(v));
        }
        r
    }

    #[test]
    fn a_sized_answer_keeps_its_fields_in_order_with_its_length() {
        let (head, enc) =
            encode(resp(200, &[("content-type", "text/plain"), ("content-length", "3")]), GET11, Some(Some(3)));
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\n");
        assert_eq!(enc, Ok(Encoder { kind: Kind::Length(3), last: false }));
        let (head, enc) = encode(resp(404, &[("x", "1")]), GET11, Some(Some(5)));
        assert_eq!(head, "HTTP/1.1 404 Not Found\r\nx: 1\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Length(5));
    }

    #[test]
    fn an_unsized_answer_is_chunked_for_http11_and_close_delimited_for_http10() {
        let (head, enc) = encode(resp(200, &[]), GET11, Some(None));
        assert_eq!(head, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Chunked(None));
        let f10 = Facts { version: Version::HTTP_10, head: false, keep_alive: false };
        let (head, enc) = encode(resp(200, &[]), f10, Some(None));
        assert_eq!(head, "HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(enc, Ok(Encoder { kind: Kind::Close, last: true }));
    }

    #[test]
    fn an_empty_answer_says_length_zero_except_to_head_and_for_204_and_304() {
        let (head, enc) = encode(resp(200, &[("content-length", "0")]), GET11, None);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Length(0));
        let headf = Facts { head: true, ..GET11 };
        let (head, _) = encode(resp(200, &[("content-length", "42")]), headf, None);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n", "HEAD keeps the length it was given");
        let (head, enc) = encode(resp(200, &[("content-length", "42")]), headf, Some(Some(42)));
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Length(0), "no body after HEAD");
        let (head, enc) = encode(resp(204, &[]), GET11, None);
        assert_eq!(head, "HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Length(0));
        let (head, _) = encode(resp(304, &[("etag", "\"a\"")]), GET11, Some(Some(10)));
        assert_eq!(head, "HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\n\r\n");
    }

    #[test]
    fn connection_rules_follow_hyper_for_http10_and_http11() {
        // HTTP/1.1 client not kept: `Connection: close` added, the connection ends.
        let closing = Facts { keep_alive: false, ..GET11 };
        let (head, enc) = encode(resp(200, &[]), closing, None);
        assert_eq!(head, "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        assert!(enc.unwrap().last);
        // The answer says close (the drain's): the connection ends after it.
        let (head, enc) = encode(resp(200, &[("connection", "close")]), GET11, None);
        assert_eq!(head, "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        assert!(enc.unwrap().last);
        // HTTP/1.0 keep-alive client: the HTTP/1.1 answer gets `keep-alive`, an HTTP/1.0 line.
        let ka10 = Facts { version: Version::HTTP_10, head: false, keep_alive: true };
        let (head, enc) = encode(resp(200, &[("x", "y")]), ka10, Some(Some(2)));
        assert_eq!(head, "HTTP/1.0 200 OK\r\nx: y\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n");
        assert!(!enc.unwrap().last);
        // HTTP/1.0 client without keep-alive: no field added, the connection ends.
        let c10 = Facts { keep_alive: false, ..ka10 };
        let (head, enc) = encode(resp(200, &[]), c10, Some(Some(2)));
        assert_eq!(head, "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n");
        assert!(enc.unwrap().last);
        // Several `Connection` values are written on one line.
        let (head, _) = encode(resp(200, &[("connection", "a"), ("connection", "b")]), GET11, None);
        assert_eq!(head, "HTTP/1.1 200 OK\r\nconnection: a, b\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn a_reason_phrase_of_the_server_is_kept() {
        let mut r = resp(200, &[]);
        r.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"Fine"));
        let (head, _) = encode(r, GET11, None);
        assert_eq!(head, "HTTP/1.1 200 Fine\r\ncontent-length: 0\r\n\r\n");
        let mut r = resp(299, &[]);
        *r.version_mut() = Version::HTTP_11;
        let (head, _) = encode(r, GET11, None);
        assert_eq!(head, "HTTP/1.1 299 <none>\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn transfer_encoding_and_trailer_fields_are_kept_when_chunked_can_go() {
        let r = resp(200, &[("trailer", "x-sum"), ("transfer-encoding", "gzip")]);
        let (head, enc) = encode(r, GET11, Some(None));
        assert_eq!(head, "HTTP/1.1 200 OK\r\ntrailer: x-sum\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Chunked(Some(vec![HeaderName::from_static("x-sum")])));
        let f10 = Facts { version: Version::HTTP_10, head: false, keep_alive: false };
        let (head, enc) = encode(resp(200, &[("transfer-encoding", "chunked")]), f10, Some(None));
        assert_eq!(head, "HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(enc.unwrap().kind, Kind::Close);
    }

    #[test]
    fn conflicting_lengths_and_1xx_answers_are_refused() {
        let (_, enc) =
            encode(resp(200, &[("content-length", "3"), ("transfer-encoding", "chunked")]), GET11, Some(None));
        assert!(enc.is_err());
        let (head, enc) = encode(resp(200, &[("content-length", "x")]), GET11, Some(None));
        assert!(enc.is_err());
        assert_eq!(head, "");
        let (head, enc) = encode(resp(103, &[("link", "x")]), GET11, None);
        assert!(enc.is_err());
        assert_eq!(head, "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn body_frames_are_framed_as_hyper_frames_them() {
        let mut out = Out::default();
        let mut k = Kind::Chunked(None);
        assert!(!encode_data(&mut k, Bytes::from_static(b"abc"), false, &mut out));
        assert!(!encode_data(&mut k, Bytes::from_static(b"0123456789abcdef"), true, &mut out));
        assert_eq!(out.bytes(), b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
        let mut out = Out::default();
        let mut k = Kind::Length(4);
        assert!(!encode_data(&mut k, Bytes::from_static(b"abcdef"), false, &mut out), "extra bytes are cut");
        assert_eq!(out.len, 4);
        let mut k = Kind::Length(4);
        assert!(encode_data(&mut k, Bytes::from_static(b"ab"), true, &mut Out::default()), "ended short: closes");
        assert_eq!(encode_end(&Kind::Length(2), &mut Out::default()), Err(2));
        let mut out = Out::default();
        let mut t = HeaderMap::new();
        t.insert("x-sum", HeaderValue::from_static("1"));
        t.insert("x-other", HeaderValue::from_static("2"));
        assert!(encode_trailers(&Kind::Chunked(Some(vec![HeaderName::from_static("x-sum")])), &t, &mut out));
        assert_eq!(out.bytes(), b"0\r\nx-sum: 1\r\n\r\n");
        assert!(!encode_trailers(&Kind::Chunked(None), &t, &mut Out::default()), "unannounced: dropped");
    }

    impl Out {
        /// What waits, in order.
        fn bytes(&self) -> Vec<u8> {
            let mut slices = [io::IoSlice::new(&[]); 16];
            let k = self.slices(&mut slices);
            slices[..k].iter().flat_map(|s| s.to_vec()).collect()
        }
    }

    #[test]
    fn written_bytes_leave_the_queue_across_buffers() {
        let mut out = Out::default();
        out.push(Bytes::from_static(b"head"));
        out.push(Bytes::from(vec![b'x'; ONE_SEND]));
        out.push(Bytes::from_static(b"ok\n"));
        assert_eq!((out.front.len(), out.bufs.len()), (4, 2), "a large frame is not copied, nor what follows it");
        out.advance(5);
        assert_eq!((out.len, out.bufs.len(), out.front.len()), (ONE_SEND + 2, 2, 0));
        out.advance(ONE_SEND + 1);
        assert_eq!((out.len, out.bufs.len(), &out.bufs[0][..]), (1, 1, &b"\n"[..]));
        out.advance(1);
        assert_eq!((out.len, out.bufs.len()), (0, 0));
    }

    #[test]
    fn a_small_response_gathers_in_one_buffer_that_is_kept_for_the_next() {
        let mut out = Out::default();
        out.front.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
        out.len = out.front.len();
        out.push(Bytes::from_static(b"ok\n"));
        assert!(out.whole_front());
        assert_eq!(out.bytes(), b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        out.advance(10);
        assert!(!out.whole_front(), "partly written");
        let cap = out.front.capacity();
        out.advance(out.len);
        assert_eq!((out.len, out.front.len(), out.front.capacity()), (0, 0, cap), "kept for the next head");
    }

    #[test]
    fn the_rest_of_a_queued_write_goes_before_what_waits() {
        let mut out = Out::default();
        out.push(Bytes::from_static(b"next head"));
        out.push(Bytes::from(vec![b'b'; ONE_SEND]));
        out.advance(5);
        out.push_front(b"earlier".to_vec(), 3);
        assert_eq!(out.len, 4 + 4 + ONE_SEND);
        let mut want = b"lierhead".to_vec();
        want.extend_from_slice(&[b'b'; ONE_SEND]);
        assert_eq!(out.bytes(), want);
        out.push_front(b"all taken".to_vec(), 9);
        assert_eq!(out.len, 4 + 4 + ONE_SEND, "nothing left of it");
        out.advance(out.len);
        assert_eq!((out.len, out.bufs.len(), out.at), (0, 0, 0));
    }
}
