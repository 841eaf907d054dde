//! HTTP response compression, as HAProxy 2.6's `compression` filter decides it. The decision is
//! pure (request facts + response head → yes/no with a reason) so a table drives its tests and a
//! differential run against haproxy; the body is compressed as it streams, one sync flush per frame.
//!
//! Backend: flate2 over zlib-rs, a pure-Rust port of zlib (no C to build or audit) that keeps
//! zlib's speed at level 1; output is standard gzip / zlib / raw deflate.

use super::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// HAProxy's default `tune.comp.maxlevel`: level 1, the cheapest that still halves text.
pub const LEVEL: u32 = 1;
/// Bodies of known length below this are sent as they are: gzip's ~20 bytes of framing would
/// eat the gain. HAProxy 2.6 has no such floor; `minsize_res = 0` gives its behaviour.
pub const DEFAULT_MINSIZE: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Identity,
    Gzip,
    /// zlib-wrapped deflate, what HTTP's `deflate` coding means.
    Deflate,
    /// Raw deflate announced as `deflate`, for clients that read it that way.
    RawDeflate,
}

impl Algo {
    pub fn parse(s: &str) -> Option<Algo> {
        Some(match s {
            "identity" => Algo::Identity,
            "gzip" => Algo::Gzip,
            "deflate" => Algo::Deflate,
            "raw-deflate" => Algo::RawDeflate,
            _ => return None,
        })
    }
    /// The coding name clients send in `Accept-Encoding` and receive in `Content-Encoding`.
    pub fn coding(self) -> &'static str {
        match self {
            Algo::Identity => "identity",
            Algo::Gzip => "gzip",
            Algo::Deflate | Algo::RawDeflate => "deflate",
        }
    }
}

/// One section's `compression` settings, after `defaults` were merged in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Empty: this section names no algorithm (the other side's list is used).
    pub algos: Vec<Algo>,
    /// Content-Type prefixes, lower case; empty: every type but `multipart/*`.
    pub types: Vec<String>,
    pub offload: bool,
    pub minsize: u64,
}

/// HAProxy's precedence: the backend's algorithms and types when it has them, else the
/// frontend's; `offload` from either.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    pub fe: Option<&'a Settings>,
    pub be: Option<&'a Settings>,
}

impl<'a> Pair<'a> {
    fn algos(&self) -> &'a [Algo] {
        [self.be, self.fe].into_iter().flatten().map(|s| &s.algos[..]).find(|a| !a.is_empty()).unwrap_or(&[])
    }
    fn types(&self) -> &'a [String] {
        [self.be, self.fe].into_iter().flatten().map(|s| &s.types[..]).find(|t| !t.is_empty()).unwrap_or(&[])
    }
    fn offload(&self) -> bool {
        [self.be, self.fe].into_iter().flatten().any(|s| s.offload)
    }
    fn minsize(&self) -> u64 {
        self.be.or(self.fe).map_or(DEFAULT_MINSIZE, |s| s.minsize)
    }
}

/// HAProxy's `http_parse_qvalue`: "0.5" → 500, anything unparsable → 1000.
fn qvalue(s: &str) -> u32 {
    let b = s.as_bytes();
    let Some(&d) = b.first().filter(|d| d.is_ascii_digit()) else { return 1000 };
    let mut q = u32::from(d - b'0') * 1000;
    if b.get(1) == Some(&b'.') {
        for (i, &c) in b.iter().skip(2).take(3).enumerate() {
            if !c.is_ascii_digit() {
                break;
            }
            q += u32::from(c - b'0') * [100, 10, 1][i];
        }
    }
    q.min(1000)
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `Mozilla/4` agents other than MSIE 6 SP2 and later mishandle compressed bodies (HAProxy's rule).
fn old_agent(ua: &[u8]) -> bool {
    ua.len() >= 9
        && ua.starts_with(b"Mozilla/4")
        && (ua.len() < 31
            || &ua[25..30] != b"MSIE "
            || ua[30] < b'6'
            || (ua[30] == b'6' && (ua.len() < 54 || &ua[51..54] != b"SV1")))
}

/// The algorithm for a request: the acceptable coding with the best q-value (the first of equals,
/// `*` meaning the last configured, as HAProxy 2.6 found by a differential run); `identity` when configured and nothing else matched.
pub fn choose<'v>(
    algos: &[Algo],
    accept_encoding: impl Iterator<Item = &'v [u8]>,
    user_agent: Option<&[u8]>,
) -> Option<Algo> {
    if algos.is_empty() || user_agent.is_some_and(old_agent) {
        return None;
    }
    let mut best: Option<(Algo, u32)> = None;
    for field in accept_encoding {
        let Ok(field) = std::str::from_utf8(field) else { continue };
        for item in field.split(',') {
            let item = item.trim_start_matches([' ', '\t']);
            if item.is_empty() {
                continue;
            }
            let toklen = item.bytes().take_while(|&c| is_token(c)).count();
            let (token, params) = item.split_at(toklen);
            let q = params
                .split(';')
                .skip(1)
                .map(|p| p.trim_matches([' ', '\t']))
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(1000, qvalue);
            if q <= best.map_or(0, |b| b.1) {
                continue;
            }
            // HAProxy 2.6 keeps its list last-configured first: `*` takes the last one.
            let hit = algos.iter().rev().find(|a| item.starts_with('*') || token.eq_ignore_ascii_case(a.coding()));
            if let Some(&a) = hit {
                best = Some((a, q));
            }
        }
    }
    best.map(|b| b.0).or_else(|| algos.iter().find(|&&a| a == Algo::Identity).copied())
}

/// What the response side needs to know about the request.
#[derive(Debug, Clone)]
pub struct Offer {
    pub algo: Algo,
    pub head: bool,
    pub http10: bool,
    types: Vec<String>,
    minsize: u64,
}

/// Reads a request before it leaves: the algorithm the client and the config agree on, and with
/// `offload` the `Accept-Encoding` fields removed so the server sends plain bodies.
pub fn request<B>(req: &mut Request<B>, pair: Pair) -> Option<Offer> {
    let algos = pair.algos();
    if algos.is_empty() {
        return None;
    }
    let h = req.headers();
    let ua = h.get(header::USER_AGENT).map(HeaderValue::as_bytes);
    let algo = choose(algos, h.get_all(header::ACCEPT_ENCODING).iter().map(HeaderValue::as_bytes), ua)?;
    if pair.offload() {
        req.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    Some(Offer {
        algo,
        head: req.method() == Method::HEAD,
        http10: req.version() < Version::HTTP_11,
        types: pair.types().to_vec(),
        minsize: pair.minsize(),
    })
}

/// Why a response is sent as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Identity,
    Http10,
    Head,
    Status,
    NoBody,
    Small,
    Encoded,
    NoTransform,
    BadEtag,
    Multipart,
    Type,
}

/// HAProxy 2.6's `select_compression_response_header`, plus lbha's small-body floor.
pub fn decide(offer: &Offer, status: StatusCode, version: Version, h: &HeaderMap) -> Result<(), Skip> {
    if offer.algo == Algo::Identity {
        return Err(Skip::Identity);
    }
    if offer.http10 || version < Version::HTTP_11 {
        return Err(Skip::Http10);
    }
    if offer.head {
        return Err(Skip::Head);
    }
    if !(200..=203).contains(&status.as_u16()) {
        return Err(Skip::Status);
    }
    let len = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if len == Some(0) {
        return Err(Skip::NoBody);
    }
    if len.is_some_and(|n| n < offer.minsize) {
        return Err(Skip::Small);
    }
    if h.contains_key(header::CONTENT_ENCODING) {
        return Err(Skip::Encoded);
    }
    let no_transform = h
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"));
    if no_transform {
        return Err(Skip::NoTransform);
    }
    let mut etags = h.get_all(header::ETAG).iter();
    if let Some(e) = etags.next() {
        let e = e.as_bytes();
        let shaped = (e.len() >= 4 && e.starts_with(b"W/\"")) || (e.len() >= 2 && e[0] == b'"');
        if !shaped || e.last() != Some(&b'"') || etags.next().is_some() {
            return Err(Skip::BadEtag);
        }
    }
    match h.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes) {
        Some(ct) => {
            if ct.len() >= 9 && ct[..9].eq_ignore_ascii_case(b"multipart") {
                return Err(Skip::Multipart);
            }
            let listed =
                offer.types.iter().any(|t| ct.len() >= t.len() && ct[..t.len()].eq_ignore_ascii_case(t.as_bytes()));
            if !offer.types.is_empty() && !listed {
                return Err(Skip::Type);
            }
        }
        None if !offer.types.is_empty() => return Err(Skip::Type),
        None => {}
    }
    Ok(())
}

/// Compresses a response when [`decide`] says so: `Content-Encoding`, no `Content-Length` (the
/// length is unknown until the end), a strong `ETag` made weak, `Accept-Encoding` in `Vary`.
pub fn response(resp: Response<ProxyBody>, offer: Option<&Offer>) -> Response<ProxyBody> {
    let Some(offer) = offer else { return resp };
    if decide(offer, resp.status(), resp.version(), resp.headers()).is_err() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let h = &mut parts.headers;
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(offer.algo.coding()));
    h.remove(header::CONTENT_LENGTH);
    if let Some(e) = h.get(header::ETAG)
        && e.as_bytes().first() == Some(&b'"')
        && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", e.as_bytes()].concat())
    {
        h.insert(header::ETAG, weak);
    }
    let varies = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding"));
    if !varies {
        h.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let body = Compressed { inner: body, enc: Some(Encoder::new(offer.algo)), trailers: None };
    use http_body_util::BodyExt;
    Response::from_parts(parts, body.boxed_unsync())
}

/// A streaming encoder over a reusable deflate state (see [`State`]): gzip adds its 10-byte
/// header and CRC-32/length trailer around raw deflate; zlib's wrapper comes from the state.
struct Encoder {
    state: Option<State>,
    gzip: bool,
    /// Output not handed out yet (the gzip header before the first piece).
    pending: Vec<u8>,
    crc: flate2::Crc,
}

/// One deflate state (about 300 KiB with its window and hash tables). Kept per thread after a
/// response and reset for the next one, as HAProxy keeps its zlib contexts in a pool: allocating
/// and touching fresh pages for each response cost more than the level-1 compression itself.
struct State {
    c: flate2::Compress,
    zlib: bool,
}

/// Idle states kept per thread.
const IDLE_STATES: usize = 16;

thread_local! {
    static STATES: std::cell::RefCell<Vec<State>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl State {
    fn take(zlib: bool) -> State {
        let reused = STATES.with_borrow_mut(|v| v.iter().rposition(|s| s.zlib == zlib).map(|i| v.swap_remove(i)));
        reused.unwrap_or_else(|| State { c: flate2::Compress::new(flate2::Compression::new(LEVEL), zlib), zlib })
    }

    /// Back to this thread's pool, reset (a state abandoned mid-stream is reset too).
    fn give_back(mut self) {
        self.c.reset();
        // During thread exit the pool is gone: the state is simply freed.
        let _ = STATES.try_with(|v| {
            let mut v = v.borrow_mut();
            if v.len() < IDLE_STATES {
                v.push(self);
            }
        });
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            s.give_back();
        }
    }
}

/// gzip's header as flate2 writes it at level 1: no name or time, "fastest" (4), OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

impl Encoder {
    fn new(algo: Algo) -> Encoder {
        let gzip = matches!(algo, Algo::Gzip | Algo::Identity);
        let state = State::take(algo == Algo::Deflate);
        let pending = if gzip { GZIP_HEADER.to_vec() } else { Vec::new() };
        Encoder { state: Some(state), gzip, pending, crc: flate2::Crc::new() }
    }

    /// Runs `data` through the state with `flush` until it is consumed and, for a flush, until
    /// the state has no more output.
    fn run(&mut self, mut data: &[u8], flush: flate2::FlushCompress) -> std::io::Result<()> {
        let Some(st) = self.state.as_mut() else { return Ok(()) };
        let out = &mut self.pending;
        loop {
            out.reserve(data.len() / 2 + 1024);
            let before_in = st.c.total_in();
            let status = st.c.compress_vec(data, out, flush).map_err(std::io::Error::other)?;
            data = &data[(st.c.total_in() - before_in) as usize..];
            let room_left = out.len() < out.capacity();
            match status {
                flate2::Status::StreamEnd => return Ok(()),
                _ if data.is_empty() && room_left => return Ok(()),
                _ => {}
            }
        }
    }

    /// Compresses `data` without flushing: output comes when the state has enough.
    fn feed(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.gzip {
            self.crc.update(data);
        }
        self.run(data, flate2::FlushCompress::None)
    }

    /// What was compressed so far, sync-flushed so the client can read all of it.
    fn flush(&mut self) -> std::io::Result<Bytes> {
        self.run(&[], flate2::FlushCompress::Sync)?;
        Ok(Bytes::from(std::mem::take(&mut self.pending)))
    }

    /// The rest of the stream and the coding's tail; the state goes back to the pool.
    fn finish(mut self) -> std::io::Result<Bytes> {
        self.run(&[], flate2::FlushCompress::Finish)?;
        let mut out = std::mem::take(&mut self.pending);
        if self.gzip {
            out.extend_from_slice(&self.crc.sum().to_le_bytes());
            out.extend_from_slice(&self.crc.amount().to_le_bytes());
        }
        Ok(Bytes::from(out))
    }
}

/// The streaming body: what the server sent is compressed as it arrives; output is flushed
/// when the server has nothing more ready (so the client is never kept waiting for data lbha
/// has), and a body that arrives at once is compressed in one go and finished without a
/// separate flush.
struct Compressed {
    inner: ProxyBody,
    /// None once the stream's end was written.
    enc: Option<Encoder>,
    trailers: Option<HeaderMap>,
}

impl Body for Compressed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(enc) = this.enc.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    // Nothing more for now: send what was compressed so far.
                    let out = enc.flush()?;
                    if out.is_empty() {
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        enc.feed(&data)?;
                        if !this.inner.is_end_stream() {
                            continue;
                        }
                    }
                    Err(frame) => this.trailers = frame.into_trailers().ok(),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {}
            }
            // The end of the stream, or trailers (which come last): write the coding's tail.
            if let Some(enc) = this.enc.take() {
                return Poll::Ready(Some(Ok(Frame::data(enc.finish()?))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.enc.is_none() && self.trailers.is_none()
    }
}

/// The decision table shared by the unit tests and the differential run against haproxy
/// (tests/compression.rs): frontend `compression algo gzip deflate`, `type text/html text/plain`.
pub mod table {
    /// One row of the decision table: request facts, response head, whether to compress. The
    /// integration test runs the same rows through lbha and haproxy.
    pub struct Row {
        pub name: &'static str,
        pub accept: &'static str,
        pub method: &'static str,
        pub status: u16,
        pub headers: &'static [(&'static str, &'static str)],
        pub body_len: usize,
        /// The client's `User-Agent` (empty: none).
        pub ua: &'static str,
        pub want: Option<&'static str>,
    }

    pub const TABLE: &[Row] = &[
        Row {
            name: "plain",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: Some("gzip"),
        },
        Row {
            name: "deflate",
            accept: "deflate",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: Some("deflate"),
        },
        Row {
            name: "q prefers deflate",
            accept: "gzip;q=0.2, deflate;q=0.9",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/plain")],
            body_len: 4000,
            ua: "",
            want: Some("deflate"),
        },
        Row {
            name: "no accept",
            accept: "",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "unknown coding",
            accept: "br",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "already encoded",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html"), ("content-encoding", "br")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "no-transform",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html"), ("cache-control", "public, no-transform")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "partial",
            accept: "gzip",
            method: "GET",
            status: 206,
            headers: &[("content-type", "text/html"), ("content-range", "bytes 0-3999/8000")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "not found",
            accept: "gzip",
            method: "GET",
            status: 404,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "head",
            accept: "gzip",
            method: "HEAD",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "type not listed",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "image/png")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "type with charset",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/plain; charset=utf-8")],
            body_len: 4000,
            ua: "",
            want: Some("gzip"),
        },
        Row {
            name: "no type",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "multipart",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "multipart/mixed; boundary=x")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "weak etag",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html"), ("etag", "W/\"v1\"")],
            body_len: 4000,
            ua: "",
            want: Some("gzip"),
        },
        Row {
            name: "bad etag",
            accept: "gzip",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html"), ("etag", "v1")],
            body_len: 4000,
            ua: "",
            want: None,
        },
        Row {
            name: "created",
            accept: "gzip",
            method: "GET",
            status: 201,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: Some("gzip"),
        },
        Row {
            name: "star",
            accept: "*",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: Some("deflate"),
        },
        Row {
            name: "refused q=0",
            accept: "gzip;q=0",
            method: "GET",
            status: 200,
            headers: &[("content-type", "text/html")],
            body_len: 4000,
            ua: "",
            want: None,
        },
    ];
}

#[cfg(test)]
mod tests {
    use super::table::{Row, TABLE};
    use super::*;

    fn ae(values: &[&str]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    fn pick(algos: &[Algo], values: &[&str]) -> Option<Algo> {
        let v = ae(values);
        choose(algos, v.iter().map(|x| &x[..]), None)
    }

    #[test]
    fn accept_encoding_is_read_with_q_values_as_haproxy_does() {
        use Algo::*;
        let both = [Gzip, Deflate];
        assert_eq!(pick(&both, &["gzip, deflate"]), Some(Gzip));
        assert_eq!(pick(&both, &["deflate, gzip"]), Some(Deflate), "the first of equals");
        assert_eq!(pick(&both, &["gzip;q=0.5, deflate"]), Some(Deflate), "the best q wins");
        assert_eq!(pick(&both, &["gzip;q=0, br"]), None, "q=0 refuses");
        assert_eq!(pick(&both, &["br"]), None);
        assert_eq!(pick(&both, &["*"]), Some(Deflate), "* is the last configured, as in HAProxy");
        assert_eq!(pick(&both, &["GZIP"]), Some(Gzip));
        assert_eq!(pick(&both, &["br", "deflate ; q=0.8"]), Some(Deflate), "several fields");
        assert_eq!(pick(&[RawDeflate], &["deflate"]), Some(RawDeflate));
        assert_eq!(pick(&[Gzip, Identity], &["br"]), Some(Identity));
        assert_eq!(pick(&[], &["gzip"]), None);
        assert_eq!(pick(&both, &[]), None);
    }

    #[test]
    fn q_values_parse_like_haproxy() {
        assert_eq!(qvalue("1"), 1000);
        assert_eq!(qvalue("0.5"), 500);
        assert_eq!(qvalue("0.125"), 125);
        assert_eq!(qvalue("0"), 0);
        assert_eq!(qvalue("x"), 1000);
        assert_eq!(qvalue("2"), 1000);
    }

    #[test]
    fn old_mozilla_4_agents_get_no_compression() {
        let v = ae(&["gzip"]);
        let ua = |s: &str| choose(&[Algo::Gzip], v.iter().map(|x| &x[..]), Some(s.as_bytes()));
        assert_eq!(ua("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"), None);
        assert_eq!(ua("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"), Some(Algo::Gzip));
        assert_eq!(ua("Mozilla/5.0 (X11; Linux x86_64)"), Some(Algo::Gzip));
    }

    fn offer_for(row: &Row, types: &[&str]) -> Option<Offer> {
        let mut b = Request::builder().method(row.method).uri("/");
        if !row.ua.is_empty() {
            b = b.header("user-agent", row.ua);
        }
        if !row.accept.is_empty() {
            b = b.header("accept-encoding", row.accept);
        }
        let mut req = b.body(()).unwrap();
        let s = Settings {
            algos: vec![Algo::Gzip, Algo::Deflate],
            types: types.iter().map(|t| t.to_string()).collect(),
            offload: false,
            minsize: DEFAULT_MINSIZE,
        };
        request(&mut req, Pair { fe: Some(&s), be: None })
    }

    fn head(row: &Row) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in row.headers {
            h.append(http::HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(row.body_len));
        h
    }

    #[test]
    fn the_decision_table() {
        for row in TABLE {
            let got = offer_for(row, &["text/html", "text/plain"]).and_then(|o| {
                let st = StatusCode::from_u16(row.status).unwrap();
                decide(&o, st, Version::HTTP_11, &head(row)).ok().map(|()| o.algo.coding())
            });
            assert_eq!(got, row.want, "{}", row.name);
        }
    }

    #[test]
    fn small_bodies_and_http10_and_empty_ones_stay_plain() {
        let row = &TABLE[0];
        let o = offer_for(row, &[]).unwrap();
        let mut h = head(row);
        assert_eq!(decide(&o, StatusCode::OK, Version::HTTP_11, &h), Ok(()));
        assert_eq!(decide(&o, StatusCode::OK, Version::HTTP_10, &h), Err(Skip::Http10));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(100));
        assert_eq!(decide(&o, StatusCode::OK, Version::HTTP_11, &h), Err(Skip::Small));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        assert_eq!(decide(&o, StatusCode::OK, Version::HTTP_11, &h), Err(Skip::NoBody));
        for st in [204, 304] {
            assert_eq!(decide(&o, StatusCode::from_u16(st).unwrap(), Version::HTTP_11, &head(row)), Err(Skip::Status));
        }
    }

    #[test]
    fn the_backend_s_lists_win_and_offload_comes_from_either_side() {
        let fe = Settings { algos: vec![Algo::Deflate], types: vec!["text/".into()], offload: true, minsize: 0 };
        let be = Settings { algos: vec![Algo::Gzip], types: vec![], offload: false, minsize: 0 };
        let p = Pair { fe: Some(&fe), be: Some(&be) };
        assert_eq!(p.algos(), [Algo::Gzip]);
        assert_eq!(p.types(), ["text/"], "the backend names no types: the frontend's apply");
        assert!(p.offload());
        let mut req = Request::builder().header("accept-encoding", "gzip, deflate").body(()).unwrap();
        let o = request(&mut req, p).unwrap();
        assert_eq!(o.algo, Algo::Gzip);
        assert!(!req.headers().contains_key(header::ACCEPT_ENCODING), "offload removes it");
    }

    async fn collect(resp: Response<ProxyBody>) -> (HeaderMap, Vec<Bytes>) {
        use http_body_util::BodyExt;
        let (parts, mut body) = resp.into_parts();
        let mut frames = Vec::new();
        while let Some(f) = body.frame().await {
            if let Ok(d) = f.unwrap().into_data() {
                frames.push(d);
            }
        }
        (parts.headers, frames)
    }

    #[tokio::test]
    async fn the_body_is_compressed_as_it_streams_and_decodes_back() {
        use futures_util::StreamExt;
        use http_body_util::BodyExt;
        let parts: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("chunk {i} ").repeat(200))).collect();
        let plain: Vec<u8> = parts.concat();
        // Twice each: the second response runs on a state the first gave back.
        for algo in [Algo::Gzip, Algo::Deflate, Algo::RawDeflate, Algo::Gzip, Algo::Deflate, Algo::RawDeflate] {
            let stream = futures_util::stream::iter(parts.clone()).map(|b| Ok::<_, BoxError>(Frame::data(b)));
            let body = http_body_util::StreamBody::new(stream).boxed_unsync();
            let mut resp = Response::new(body);
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            resp.headers_mut().insert(header::ETAG, HeaderValue::from_static("\"abc\""));
            let offer = Offer { algo, head: false, http10: false, types: vec![], minsize: 0 };
            let (h, frames) = collect(response(resp, Some(&offer))).await;
            assert_eq!(h[header::CONTENT_ENCODING], algo.coding());
            assert_eq!(h[header::ETAG], "W/\"abc\"");
            assert_eq!(h[header::VARY], "Accept-Encoding");
            assert_eq!(frames.len(), 1, "frames ready at once are compressed in one go");
            let packed: Vec<u8> = frames.concat();
            assert!(packed.len() < plain.len() / 4);
            let mut out = Vec::new();
            use std::io::Read;
            match algo {
                Algo::Gzip => flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut out),
                Algo::Deflate => flate2::read::ZlibDecoder::new(&packed[..]).read_to_end(&mut out),
                _ => flate2::read::DeflateDecoder::new(&packed[..]).read_to_end(&mut out),
            }
            .unwrap();
            assert_eq!(out, plain, "{algo:?}");
        }
    }

    /// A server that sends a piece and then waits: the client gets that piece (sync-flushed)
    /// at once, not when the body ends.
    #[tokio::test]
    async fn what_arrived_is_flushed_while_the_server_waits() {
        use http_body_util::BodyExt;
        use std::io::Read;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let mut resp = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let offer = Offer { algo: Algo::Gzip, head: false, http10: false, types: vec![], minsize: 0 };
        let mut body = response(resp, Some(&offer)).into_body();
        let mut got = Vec::new();
        let mut plain = Vec::new();
        for i in 0..3 {
            let piece = format!("piece {i} ").repeat(100);
            plain.extend_from_slice(piece.as_bytes());
            tx.send(Ok(Frame::data(Bytes::from(piece)))).await.unwrap();
            let f = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame()).await.unwrap();
            got.extend_from_slice(&f.unwrap().unwrap().into_data().unwrap());
            // A sync flush ends on a block boundary: everything so far decodes.
            let mut out = Vec::with_capacity(plain.len() * 2);
            let mut d = flate2::Decompress::new(false);
            d.decompress_vec(&got[10..], &mut out, flate2::FlushDecompress::Sync).unwrap();
            assert_eq!(out, plain, "after piece {i}");
        }
        drop(tx);
        while let Some(f) = body.frame().await {
            got.extend_from_slice(&f.unwrap().into_data().unwrap());
        }
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&got[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn vary_is_extended_once() {
        let mut resp = Response::new(super::super::body::full("x".repeat(1000)));
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin, accept-encoding"));
        let offer = Offer { algo: Algo::Gzip, head: false, http10: false, types: vec![], minsize: 0 };
        let r = response(resp, Some(&offer));
        assert_eq!(r.headers().get_all(header::VARY).iter().count(), 1);
    }
}
