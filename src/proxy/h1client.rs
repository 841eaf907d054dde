//! A lean HTTP/1.1 client for plain-HTTP servers. The client connection's task writes the request
//! head straight onto the pooled server socket and reads the response head back with `httparse`;
//! the response body is an [`http_body::Body`] that reads the server socket itself. hyper's client
//! needs a task per server connection and an mpsc/oneshot hand-off per request; this does not.
//!
//! Used for bodiless HTTP/1.1 requests to plain servers; anything else (a request body, `Expect`,
//! upgrades, CONNECT, TLS, HTTP/2) goes through hyper on the same connection ([`Lean::into_hyper`]).
//! Parsing ([`parse_head`], [`Chunked`]) is pure and driven by byte slices in the tests.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// hyper's own bounds for a response head (its default read buffer and header count), so a
/// server that passed through hyper passes here too.
const MAX_HEAD: usize = 8192 + 4096 * 100;
const MAX_HEADERS: usize = 100;
/// A chunk-size line (extensions included) and a trailer section at most.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;
/// Room made before each read.
const READ_SIZE: usize = 8192;

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    /// The reason phrase when it is not the canonical one (hyper's server writes it back).
    pub reason: Option<Bytes>,
    pub framing: Framing,
    /// The server keeps the connection open after this response.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid response head: {0}")]
    Head(httparse::Error),
    #[error("response head too large")]
    TooLarge,
    #[error("invalid status code")]
    Status,
    #[error("{0}")]
    Framing(&'static str),
    #[error("invalid chunk: {0}")]
    Chunk(&'static str),
    #[error("invalid trailers: {0}")]
    Trailers(&'static str),
}

/// Parses one response head at the start of `buf`, skipping interim (1xx but 101) responses.
/// `Ok(None)`: more bytes are needed; on success the head's bytes are taken from `buf`.
pub fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, ParseError> {
    loop {
        // Uninitialised slots: zeroing room for 100 fields on every response costs more than
        // parsing the few a response has.
        let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ParseError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ParseError::Head(e)),
        };
        if len > MAX_HEAD {
            return Err(ParseError::TooLarge);
        }
        let code = res.code.unwrap_or(0);
        let status = StatusCode::from_u16(code).map_err(|_| ParseError::Status)?;
        if status.is_informational() && code != 101 {
            let _ = buf.split_to(len);
            continue;
        }
        let version = if res.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
        let reason = res.reason.filter(|r| Some(*r) != status.canonical_reason()).map(|r| r.as_bytes().to_vec());
        // Offsets into the head, so names and values can share its bytes once it is frozen.
        let base = buf.as_ptr() as usize;
        let n = res.headers.len();
        let mut spans = [const { std::mem::MaybeUninit::<[usize; 4]>::uninit() }; MAX_HEADERS];
        for (h, s) in res.headers.iter().zip(spans.iter_mut()) {
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            s.write([name, name + h.name.len(), value, value + h.value.len()]);
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(n);
        for s in &spans[..n] {
            // SAFETY: the loop above wrote the first `n` spans (one per parsed field).
            let [n0, n1, v0, v1] = unsafe { s.assume_init() };
            let name =
                HeaderName::from_bytes(&head[n0..n1]).map_err(|_| ParseError::Head(httparse::Error::HeaderName))?;
            let value = HeaderValue::from_maybe_shared(head.slice(v0..v1))
                .map_err(|_| ParseError::Head(httparse::Error::HeaderValue))?;
            headers.append(name, value);
        }
        let framing = framing(status, version, head_request, &headers)?;
        let keep_alive = framing != Framing::Close && code != 101 && keeps_alive(version, &headers);
        return Ok(Some(Head { status, version, headers, reason: reason.map(Bytes::from), framing, keep_alive }));
    }
}

/// The body framing of a response (RFC 9112 §6.3, as hyper's client decides it), stricter in
/// one place: a response with both Content-Length and Transfer-Encoding is refused rather than
/// forwarded with a Content-Length its decoded body may not match.
fn framing(status: StatusCode, version: Version, head_request: bool, h: &HeaderMap) -> Result<Framing, ParseError> {
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || head_request
    {
        return Ok(Framing::None);
    }
    let cl = h.get_all(header::CONTENT_LENGTH);
    if h.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(ParseError::Framing("Transfer-Encoding in an HTTP/1.0 response"));
        }
        if cl.iter().next().is_some() {
            return Err(ParseError::Framing("both Content-Length and Transfer-Encoding in a response"));
        }
        let last = h.get_all(header::TRANSFER_ENCODING).iter().next_back().map(|v| v.as_bytes());
        let chunked = last
            .and_then(|v| v.rsplit(|&b| b == b',').next())
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked { Framing::Chunked } else { Framing::Close });
    }
    let mut len = None;
    for v in cl.iter() {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::Framing("invalid Content-Length in a response"));
            }
            let n: u64 = std::str::from_utf8(part).ok().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
            if len.is_some_and(|l| l != n) {
                return Err(ParseError::Framing("conflicting Content-Length in a response"));
            }
            len = Some(n);
        }
    }
    Ok(match len {
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

/// Whether a `Connection` field lists `token`.
fn connection_has(h: &HeaderMap, token: &str) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
}

fn keeps_alive(version: Version, h: &HeaderMap) -> bool {
    if connection_has(h, "close") {
        return false;
    }
    version == Version::HTTP_11 || connection_has(h, "keep-alive")
}

/// One step of a chunked body.
#[derive(Debug, PartialEq)]
pub enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body is complete.
    Done,
    /// More bytes are needed.
    More,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// A strict chunked decoder (RFC 9112 §7.1): sizes in hex without sign or overflow, CRLF line
/// ends, extensions skipped, a bounded trailer section.
#[derive(Debug)]
pub struct Chunked(ChunkState);

impl Default for Chunked {
    fn default() -> Self {
        Self(ChunkState::Size)
    }
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.0 == ChunkState::Done
    }

    /// Decodes what `buf` holds, taking the bytes it used.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ParseError> {
        loop {
            match self.0 {
                ChunkState::Done => return Ok(Step::Done),
                ChunkState::Size => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        return if buf.len() > MAX_CHUNK_LINE {
                            Err(ParseError::Chunk("size line too long"))
                        } else {
                            Ok(Step::More)
                        };
                    };
                    if nl > MAX_CHUNK_LINE {
                        return Err(ParseError::Chunk("size line too long"));
                    }
                    let size = chunk_size(&buf[..=nl])?;
                    let _ = buf.split_to(nl + 1);
                    self.0 = if size == 0 { ChunkState::Trailers } else { ChunkState::Data(size) };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    self.0 = if n as u64 == left { ChunkState::DataEnd } else { ChunkState::Data(left - n as u64) };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(ParseError::Chunk("data not followed by CRLF"));
                        }
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ParseError::Chunk("data not followed by CRLF"));
                    }
                    let _ = buf.split_to(2);
                    self.0 = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        self.0 = ChunkState::Done;
                        return Ok(Step::Done);
                    }
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r' && !b.is_ascii_graphic()) {
                            return Err(ParseError::Trailers("malformed"));
                        }
                        return Ok(Step::More);
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return if buf.len() > MAX_TRAILERS {
                            Err(ParseError::Trailers("too large"))
                        } else {
                            Ok(Step::More)
                        };
                    };
                    if end + 4 > MAX_TRAILERS {
                        return Err(ParseError::Trailers("too large"));
                    }
                    let section = buf.split_to(end + 4);
                    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let fields = match httparse::parse_headers(&section, &mut slots) {
                        Ok(httparse::Status::Complete((_, f))) => f,
                        _ => return Err(ParseError::Trailers("malformed")),
                    };
                    let mut map = HeaderMap::with_capacity(fields.len());
                    for f in fields.iter() {
                        let name =
                            HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| ParseError::Trailers("bad name"))?;
                        let value = HeaderValue::from_bytes(f.value).map_err(|_| ParseError::Trailers("bad value"))?;
                        map.append(name, value);
                    }
                    self.0 = ChunkState::Done;
                    return Ok(Step::Trailers(map));
                }
            }
        }
    }
}

/// The size of a chunk-size line (`hex [ws] [; ext] CRLF`).
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let Some(line) = line.strip_suffix(b"\r\n") else {
        return Err(ParseError::Chunk("size line not ended by CRLF"));
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ParseError::Chunk("bad chunk size"));
    }
    if digits > 15 {
        return Err(ParseError::Chunk("chunk size too large"));
    }
    let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).unwrap_or("x"), 16)
        .map_err(|_| ParseError::Chunk("bad chunk size"))?;
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && (rest[0] != b';' || rest.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)) {
        return Err(ParseError::Chunk("bad chunk size"));
    }
    Ok(size)
}

/// The request head as HTTP/1.1 puts it on the wire (lowercase names, as hyper's client writes
/// them from a header map).
pub fn encode_head(req: &Request<impl Sized>, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    match req.uri().path_and_query() {
        Some(pq) => out.extend_from_slice(pq.as_str().as_bytes()),
        None => out.push(b'/'),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (k, v) in req.headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether this path can carry `req`: a bodiless HTTP/1.1 request that asks for no upgrade, no
/// tunnel and no interim answer.
pub fn fits<B: Body>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.body().is_end_stream()
        && req.method() != http::Method::CONNECT
        && !req.headers().contains_key(header::UPGRADE)
        && !req.headers().contains_key(header::EXPECT)
        && !connection_has(req.headers(), "upgrade")
}

/// An open server connection and what was read past the last response.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
    out: Vec<u8>,
    /// The batch the request heads are queued on, and the last one's slot.
    writer: super::batch::Writer,
}

/// Where a connection waits between requests: the body puts it back after a clean, complete
/// response; empty means closed or still busy.
type Home = Arc<Mutex<Option<Box<Conn>>>>;

fn lock(h: &Home) -> std::sync::MutexGuard<'_, Option<Box<Conn>>> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

/// A plain HTTP/1.1 server connection driven from the requesting task.
#[derive(Debug)]
pub struct Lean {
    home: Home,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum LeanError {
    #[error("connection closed before the response")]
    Closed,
    #[error("connection closed in the middle of the response head")]
    Incomplete,
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Parse(ParseError),
}

/// A failed send; `unsent` carries the request back when nothing of it reached the server,
/// `sent` when it failed after the request left (for a replay on a new connection: the
/// caller then needs no copy of it made beforehand).
#[derive(Debug)]
pub struct Failed<R> {
    pub error: LeanError,
    pub unsent: Option<R>,
    /// Boxed: a failure is rare, and the error travels in every send's result.
    pub sent: Option<Box<R>>,
}

impl Lean {
    pub fn new(io: TcpStream) -> Self {
        let conn = Conn { io, buf: BytesMut::new(), out: Vec::new(), writer: Default::default() };
        Self { home: Arc::new(Mutex::new(Some(Box::new(conn)))) }
    }

    /// A connection that is gone (what a taken-over one leaves behind).
    pub fn closed() -> Self {
        Self { home: Arc::new(Mutex::new(None)) }
    }

    /// Closed by the server, busy or given up: it cannot take a request. Read readiness on an
    /// idle connection means the server closed it (or sent what nobody asked for).
    pub fn is_closed(&self) -> bool {
        let home = lock(&self.home);
        let Some(conn) = home.as_ref() else { return true };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        !conn.buf.is_empty() || conn.io.poll_read_ready(&mut cx).is_ready()
    }

    /// The connection's socket, for hyper to take over (requests this path does not carry).
    pub fn into_io(self) -> Option<TcpStream> {
        let conn = lock(&self.home).take()?;
        conn.buf.is_empty().then_some(conn.io)
    }

    /// Sends one bodiless request and reads the response head.
    ///
    /// An `async move` block rather than an `async fn`, so that the request is held once, not
    /// also as the function's argument (bench/PROFILE.md, session 11).
    #[allow(clippy::manual_async_fn)] // see the `async move` comment below
    pub fn send<B>(
        &mut self,
        req: Request<B>,
    ) -> impl Future<Output = Result<Response<LeanBody>, Failed<Request<B>>>> + '_
    where
        B: 'static,
    {
        async move {
            let taken = lock(&self.home).take();
            let Some(mut conn) = taken else {
                return Err(Failed { error: LeanError::Closed, unsent: Some(req), sent: None });
            };
            conn.out.clear();
            encode_head(&req, &mut conn.out);
            // The first write tells whether the connection was still open: a failure there means
            // nothing reached the server, and the request may go elsewhere as is.
            let Conn { io, out, buf, writer } = &mut *conn;
            // Written with the other requests of this batch (`batch`), whole in all but rare cases.
            // SAFETY: awaited in place, while `conn` keeps the socket open.
            let written = match unsafe { super::batch::write(io, out, writer) }.await {
                Ok(n) => n,
                Err(e) => return Err(Failed { error: LeanError::Io(e), unsent: Some(req), sent: None }),
            };
            if let Err(e) = io.write_all(&out[written..]).await {
                return Err(Failed { error: LeanError::Io(e), unsent: None, sent: Some(Box::new(req)) });
            }
            let head_request = req.method() == http::Method::HEAD;
            // Kept until the response head came: a failure gives it back for a replay.
            let fail = |error, req| Failed { error, unsent: None, sent: Some(Box::new(req)) };
            let head = loop {
                match parse_head(buf, head_request) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(e) => return Err(fail(LeanError::Parse(e), req)),
                }
                buf.reserve(READ_SIZE);
                match tokio::io::AsyncReadExt::read_buf(io, buf).await {
                    Ok(0) if buf.is_empty() => return Err(fail(LeanError::Closed, req)),
                    Ok(0) => return Err(fail(LeanError::Incomplete, req)),
                    Ok(_) => {}
                    Err(e) => return Err(fail(LeanError::Io(e), req)),
                }
            };
            drop(req);
            let kind = match head.framing {
                Framing::None => Kind::Done,
                Framing::Length(n) => Kind::Length(n),
                Framing::Chunked => Kind::Chunked(Chunked::default()),
                Framing::Close => Kind::Close,
            };
            let mut body = LeanBody { conn: Some(conn), kind, home: self.home.clone(), keep: head.keep_alive };
            if matches!(body.kind, Kind::Done) {
                body.finish();
            }
            let mut resp = Response::new(body);
            *resp.status_mut() = head.status;
            *resp.version_mut() = head.version;
            *resp.headers_mut() = head.headers;
            if let Some(r) = head.reason.and_then(|r| hyper::ext::ReasonPhrase::try_from(r).ok()) {
                resp.extensions_mut().insert(r);
            }
            Ok(resp)
        }
    }
}

#[derive(Debug)]
enum Kind {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

/// A response body read from the server socket by whoever polls it.
#[derive(Debug)]
pub struct LeanBody {
    conn: Option<Box<Conn>>,
    kind: Kind,
    home: Home,
    keep: bool,
}

impl LeanBody {
    /// The response is complete: the connection goes home if it may carry another one.
    fn finish(&mut self) {
        self.kind = Kind::Done;
        if let Some(conn) = self.conn.take()
            && self.keep
            && conn.buf.is_empty()
        {
            *lock(&self.home) = Some(conn);
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads what the socket has into `buf`; 0 at the end of the stream.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    conn.buf.reserve(READ_SIZE);
    let spare = conn.buf.spare_capacity_mut();
    let mut rb = ReadBuf::uninit(spare);
    ready!(Pin::new(&mut conn.io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
    unsafe { conn.buf.set_len(conn.buf.len() + n) };
    Poll::Ready(Ok(n))
}

impl Body for LeanBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match &mut this.kind {
                Kind::Done => return Poll::Ready(None),
                Kind::Length(left) => {
                    if !conn.buf.is_empty() {
                        let n = (conn.buf.len() as u64).min(*left) as usize;
                        let data = conn.buf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Kind::Close => {
                    if !conn.buf.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(conn.buf.split().freeze()))));
                    }
                }
                Kind::Chunked(c) => match c.step(&mut conn.buf) {
                    Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Step::Trailers(t)) => {
                        this.finish();
                        return Poll::Ready(Some(Ok(Frame::trailers(t))));
                    }
                    Ok(Step::Done) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => {}
                    Err(e) => {
                        this.conn = None;
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                },
            }
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match ready!(poll_fill(conn, cx)) {
                Ok(0) if matches!(this.kind, Kind::Close) => {
                    this.conn = None;
                    this.kind = Kind::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(LeanError::Incomplete))));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(Box::new(LeanError::Io(e)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.kind {
            Kind::Length(n) => SizeHint::with_exact(n),
            Kind::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8], head_request: bool) -> Result<Option<Head>, ParseError> {
        parse_head(&mut BytesMut::from(bytes), head_request)
    }

    fn framing_of(bytes: &str) -> Result<Framing, ParseError> {
        head(bytes.as_bytes(), false).map(|h| h.expect("complete").framing)
    }

    #[test]
    fn a_head_split_anywhere_parses_once_complete() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nServer: t\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nok\n";
        for cut in 0..raw.len() {
            let mut buf = BytesMut::from(&raw[..cut]);
            // The 100 may be consumed before the final head is complete; the 200 needs it all.
            let h = match parse_head(&mut buf, false).unwrap() {
                Some(h) => {
                    assert!(cut >= raw.len() - 3, "complete at {cut}");
                    buf.extend_from_slice(&raw[cut..]);
                    h
                }
                None => {
                    buf.extend_from_slice(&raw[cut..]);
                    parse_head(&mut buf, false).unwrap().expect("complete")
                }
            };
            assert_eq!(h.status, StatusCode::OK);
            assert_eq!(h.framing, Framing::Length(3));
            assert!(h.keep_alive);
            assert_eq!(h.reason.as_deref(), Some(&b"Fine"[..]));
            assert_eq!(h.headers.get_all("x-a").iter().count(), 2);
            assert_eq!(&buf[..], b"ok\n", "the body stays in the buffer (cut at {cut})");
        }
    }

    #[test]
    fn framing_follows_rfc_9112_and_refuses_ambiguity() {
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), Ok(Framing::Length(5)));
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), Ok(Framing::None));
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), Ok(Framing::Chunked));
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), Ok(Framing::Close));
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::Close));
        assert_eq!(framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"), Ok(Framing::None));
        assert_eq!(framing_of("HTTP/1.1 304 Not Modified\r\n\r\n"), Ok(Framing::None));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(framing_of(bad), Err(ParseError::Framing(_))), "{bad:?}");
        }
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::None, "a response to HEAD has no body");
        assert!(matches!(head(b"HTTP/1.1 2000 OK\r\n\r\n", false), Err(ParseError::Head(_))));
        assert!(matches!(head(b"garbage\r\n\r\n", false), Err(ParseError::Head(_))));
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let ka = |s: &str| head(s.as_bytes(), false).unwrap().unwrap().keep_alive;
        assert!(ka("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(!ka("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n"));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(ka("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"));
        assert!(!ka("HTTP/1.1 200 OK\r\n\r\n"), "close-delimited");
        assert!(!ka("HTTP/1.1 101 Switching Protocols\r\n\r\n"));
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEAD {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(head(&big, false).is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(head(&many, false).unwrap_err(), ParseError::Head(httparse::Error::TooManyHeaders));
    }

    /// Decodes `raw` fed in two parts split at `cut`: the data, the trailers, and what is left.
    type Decoded = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

    fn decode(raw: &[u8], cut: usize) -> Result<Decoded, ParseError> {
        let mut c = Chunked::default();
        let mut buf = BytesMut::from(&raw[..cut]);
        let (mut data, mut trailers, mut fed) = (Vec::new(), None, false);
        loop {
            match c.step(&mut buf)? {
                Step::Data(d) => data.extend_from_slice(&d),
                Step::Trailers(t) => trailers = Some(t),
                Step::Done => {
                    let mut rest = buf.to_vec();
                    if !fed {
                        rest.extend_from_slice(&raw[cut..]);
                    }
                    return Ok((data, trailers, rest));
                }
                Step::More if !fed => {
                    buf.extend_from_slice(&raw[cut..]);
                    fed = true;
                }
                Step::More => return Err(ParseError::Chunk("truncated")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_split() {
        let raw = b"5;ext=1\r\nhello\r\n7 \r\n, world\r\n0\r\nX-Sum: 42\r\nX-More: a\r\n\r\nNEXT";
        for cut in 0..=raw.len() {
            let (data, trailers, rest) = decode(raw, cut).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(data, b"hello, world", "cut {cut}");
            let t = trailers.expect("trailers");
            assert_eq!(t["x-sum"], "42");
            assert_eq!(t["x-more"], "a");
            assert_eq!(rest, b"NEXT", "what follows the body is left alone (cut {cut})");
        }
        let plain = b"3\r\nabc\r\n0\r\n\r\n";
        for cut in 0..=plain.len() {
            let (data, trailers, rest) = decode(plain, cut).unwrap();
            assert_eq!((data.as_slice(), trailers.is_none(), rest.len()), (&b"abc"[..], true, 0), "cut {cut}");
        }
    }

    #[test]
    fn bad_chunks_are_errors_at_every_split() {
        for bad in [
            &b"x\r\nabc\r\n0\r\n\r\n"[..],
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"+3\r\nabc\r\n0\r\n\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"3 x\r\nabc\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
        ] {
            for cut in 0..=bad.len() {
                assert!(decode(bad, cut).is_err(), "{:?} cut {cut}", String::from_utf8_lossy(bad));
            }
        }
    }

    #[test]
    fn request_heads_are_written_as_hyper_writes_them() {
        let req = Request::builder()
            .method("GET")
            .uri("/a?b=1")
            .header("Host", "t")
            .header("X-Multi", "1")
            .header("x-multi", "2")
            .body(())
            .unwrap();
        let mut out = Vec::new();
        encode_head(&req, &mut out);
        assert_eq!(out, b"GET /a?b=1 HTTP/1.1\r\nhost: t\r\nx-multi: 1\r\nx-multi: 2\r\n\r\n");
    }

    #[test]
    fn only_plain_bodiless_requests_take_this_path() {
        let get = |f: fn(http::request::Builder) -> http::request::Builder| {
            f(Request::builder().uri("/")).body(http_body_util::Empty::<Bytes>::new()).unwrap()
        };
        assert!(fits(&get(|b| b)));
        assert!(!fits(&get(|b| b.header("connection", "upgrade").header("upgrade", "websocket"))));
        assert!(!fits(&get(|b| b.header("expect", "100-continue"))));
        assert!(!fits(&get(|b| b.method("CONNECT"))));
        let post = Request::builder().method("POST").body(http_body_util::Full::new(Bytes::from("x"))).unwrap();
        assert!(!fits(&post));
    }
}
