//! `bytes_in_*`/`bytes_out_*` of HTTP exchanges, as HAProxy 2.6 counts them: not the bytes on
//! the wire but the size of each message in its internal HTX form, as received (the request
//! from the client, the response from the server or as HAProxy makes it), before any rule
//! edits it. Checked against HAProxy 2.6 (tests/stick_bytes.rs):
//!
//! - the start line: a 20-byte block (`struct htx_sl`) plus the lengths of its three parts
//!   (method, URI, version; or version, status, reason);
//! - each header: its name's length plus its value's; `Connection` only with what is left of
//!   its value once `close` and `keep-alive` are taken out (usually nothing: not counted);
//! - one byte ending the headers, the body's bytes (chunk sizes and CRLFs not counted), and
//!   for a chunked message one byte ending the trailers, whose fields count as headers.
//!
//! Counts go to what the exchange tracks when it ends (the response body sent or dropped).

use super::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

/// `sizeof(struct htx_sl)`: the start line's block before its three strings.
const START_LINE: u64 = 20;
/// The end-of-headers and end-of-trailers blocks.
const END_BLOCK: u64 = 1;
/// Every HTX version string is 8 bytes (`HTTP/1.1`, `HTTP/1.0`, `HTTP/2.0`).
const VERSION: u64 = 8;

/// The header fields' share.
pub fn headers(h: &HeaderMap) -> u64 {
    h.iter()
        .map(|(name, value)| {
            if name == http::header::CONNECTION {
                // HAProxy's H1 parser takes `close` and `keep-alive` out and drops the field if
                // nothing is left.
                let rest: Vec<&[u8]> = value
                    .as_bytes()
                    .split(|&b| b == b',')
                    .map(|t| t.trim_ascii())
                    .filter(|t| {
                        !t.is_empty() && !t.eq_ignore_ascii_case(b"close") && !t.eq_ignore_ascii_case(b"keep-alive")
                    })
                    .collect();
                if rest.is_empty() {
                    return 0;
                }
                let joined: usize = rest.iter().map(|t| t.len()).sum::<usize>() + 2 * (rest.len() - 1);
                (name.as_str().len() + joined) as u64
            } else {
                (name.as_str().len() + value.len()) as u64
            }
        })
        .sum()
}

/// Whether the body comes in chunks (then a trailers block ends it).
pub fn chunked(h: &HeaderMap) -> bool {
    h.get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked")))
}

/// A request's head: start line, headers, end of headers.
pub fn request_head(method: &str, uri_len: usize, h: &HeaderMap) -> u64 {
    START_LINE + (method.len() + uri_len) as u64 + VERSION + headers(h) + END_BLOCK
}

/// A response's head; `reason`: the reason phrase's length.
pub fn response_head(reason: usize, h: &HeaderMap) -> u64 {
    START_LINE + VERSION + 3 + reason as u64 + headers(h) + END_BLOCK
}

/// The URI's length as the client wrote it.
pub(super) fn uri_len(u: &http::Uri) -> usize {
    let pq = u.path_and_query().map_or(0, |p| p.as_str().len());
    match (u.scheme_str(), u.authority()) {
        (Some(s), Some(a)) => s.len() + 3 + a.as_str().len() + pq,
        (None, Some(a)) => a.as_str().len() + pq,
        _ => pq,
    }
}

/// The request body's bytes so far (and its trailers' share), fed by [`Counted`]; also how far
/// the body was read (see [`Tally::read`]).
#[derive(Clone, Default)]
pub struct Tally(Arc<(AtomicU64, std::sync::atomic::AtomicU8)>);

/// [`Tally`]'s states: never read, being read, read to its end.
const UNREAD: u8 = 0;
const READING: u8 = 1;
const ENDED: u8 = 2;

impl Tally {
    pub fn add(&self, n: u64) {
        self.0.1.fetch_max(READING, Relaxed);
        self.0.0.fetch_add(n, Relaxed);
    }
    /// The body reached its end (the last frame came).
    pub fn end(&self) {
        self.0.1.store(ENDED, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.0.load(Relaxed)
    }
    /// The body's bytes that came and whether it reached its end, once it was read; `None`
    /// when it never was (a request answered before its body was asked for), so a log line
    /// can tell "none of it came" from "it was never asked for".
    pub fn read(&self) -> Option<(u64, bool)> {
        match self.0.1.load(Relaxed) {
            UNREAD => None,
            state => Some((self.get(), state == ENDED)),
        }
    }
}

/// A request's share as HAProxy's `%U` counts it: the head, then the body's bytes that came
/// (and a chunked body's end block, once it came) when it was read, else the length it
/// declares (HAProxy has those bytes in its buffer by then; lbha did not ask for them).
pub fn request_bytes(head: u64, h: &HeaderMap, body: Option<&Tally>) -> u64 {
    match body.and_then(Tally::read) {
        Some((n, ended)) => head + n + u64::from(ended && chunked(h)) * END_BLOCK,
        None => {
            let declared = h
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            head + declared
        }
    }
}

/// A request's share, taken when it arrives.
pub struct Start {
    head: u64,
    chunked: bool,
    body: Tally,
}

/// Measures a request as it arrives, when some table could count it; the body's bytes are
/// added as it is forwarded (see [`Counted`]). A request already given a tally (its log line
/// counts `%U`) shares it.
pub fn start<B>(active: &super::Active, req: &mut http::Request<B>) -> Option<Start> {
    if !active.rt.tables.counts_bytes() {
        return None;
    }
    let head = request_head(req.method().as_str(), uri_len(req.uri()), req.headers());
    let body = req.extensions_mut().get_or_insert_default::<Tally>().clone();
    Some(Start { head, chunked: chunked(req.headers()), body })
}

/// A server response's share, measured as it arrives (before rules edit it).
#[derive(Clone, Copy)]
pub struct ServerHead {
    head: u64,
    chunked: bool,
}

/// Marks a server's response with its measure, when some table could count the exchange.
pub fn mark_server(active: &super::Active, parts: &mut http::response::Parts) {
    if !active.rt.tables.counts_bytes() {
        return;
    }
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().len())
        .unwrap_or_else(|| parts.status.canonical_reason().map_or(0, str::len));
    let head = response_head(reason, &parts.headers);
    let chunked = chunked(&parts.headers);
    parts.extensions.insert(ServerHead { head, chunked });
}

/// The `Connection: close` HAProxy's 302 of a server's `redir` carries in its HTX head (made
/// there, not parsed from the wire, so it counts).
pub const REDIRECT_CONNECTION: u64 = ("connection".len() + "close".len()) as u64;

/// The measure of a response lbha made itself: as HAProxy's own answers, which carry their
/// `content-length`.
fn own_head(resp: &http::Response<ProxyBody>) -> ServerHead {
    let reason = resp.status().canonical_reason().map_or(0, str::len);
    let mut head = response_head(reason, resp.headers());
    if resp.extensions().get::<super::http::ServerRedirect>().is_some() {
        head += REDIRECT_CONNECTION;
    }
    let h = resp.headers();
    if !h.contains_key(http::header::CONTENT_LENGTH)
        && !h.contains_key(http::header::TRANSFER_ENCODING)
        && let Some(n) = resp.body().size_hint().exact()
    {
        head += ("content-length".len() + n.to_string().len()) as u64;
    }
    ServerHead { head, chunked: false }
}

/// Counts the exchange on what it tracks (the stream's entries, else the session's) once the
/// response body ends; a response nothing tracks passes untouched.
pub fn finish(
    resp: http::Response<ProxyBody>,
    start: Option<Start>,
    active: &super::Active,
    session: &crate::stktable::track::Trackers,
    stream: &crate::stktable::track::Trackers,
) -> http::Response<ProxyBody> {
    let Some(start) = start else { return resp };
    let targets = crate::stktable::track::targets(Some(stream), session);
    if targets.is_empty() {
        return resp;
    }
    let out = resp.extensions().get::<ServerHead>().copied().unwrap_or_else(|| own_head(&resp));
    // Read when the exchange ends.
    let now = active.rt.tables.now();
    resp.map(|inner| {
        Counting { inner, targets, now, start, out: out.head + u64::from(out.chunked) * END_BLOCK }.boxed_unsync()
    })
}

/// A response body that counts its bytes, and the exchange's on its end or drop.
struct Counting {
    inner: ProxyBody,
    targets: Vec<(crate::stktable::SharedTable, crate::stktable::TKey)>,
    now: crate::stktable::Now,
    start: Start,
    out: u64,
}

impl Drop for Counting {
    fn drop(&mut self) {
        let s = &self.start;
        let bytes_in = s.head + s.body.get() + u64::from(s.chunked) * END_BLOCK;
        crate::stktable::track::add_bytes(&self.targets, &self.now, bytes_in, self.out);
    }
}

/// A frame's share: its data, or its trailer fields.
fn frame_bytes(f: &Frame<Bytes>) -> u64 {
    match (f.data_ref(), f.trailers_ref()) {
        (Some(d), _) => d.len() as u64,
        (None, Some(t)) => headers(t),
        _ => 0,
    }
}

impl Body for Counting {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            self.out += frame_bytes(f);
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

/// A request body that adds its bytes to the request's [`Tally`], if it has one.
pub struct Counted<B> {
    inner: B,
    tally: Option<Tally>,
}

impl<B> Counted<B> {
    /// The body is being read from here on: its tally counts from 0.
    pub fn new(inner: B, tally: Option<Tally>) -> Self {
        if let Some(t) = &tally {
            t.add(0);
        }
        Self { inner, tally }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(r), Some(t)) = (&r, &self.tally) {
            match r {
                Some(Ok(f)) => t.add(frame_bytes(f)),
                None => t.end(),
                Some(Err(_)) => {}
            }
            if self.inner.is_end_stream() {
                t.end();
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    /// Values read from HAProxy 2.6's `show table` for the same messages.
    #[test]
    fn heads_measure_as_haproxy_2_6() {
        // GET / HTTP/1.1, Host: h, X-K: ha, Connection: close -> 43.
        let h = map(&[("host", "h"), ("x-k", "ha"), ("connection", "close")]);
        assert_eq!(request_head("GET", 1, &h), 43);
        // HTTP/1.1 200 OK, Content-Length: 2 (+ 2 body bytes) -> 51.
        assert_eq!(response_head(2, &map(&[("content-length", "2")])) + 2, 51);
        // HTTP/1.1 204 No Content, no fields -> 42.
        assert_eq!(response_head(10, &HeaderMap::new()), 42);
        // A chunked response of 8 body bytes -> 67 with the end of trailers.
        let h = map(&[("transfer-encoding", "chunked")]);
        assert!(chunked(&h));
        assert_eq!(response_head(2, &h) + 8 + END_BLOCK, 67);
        // HAProxy's 403 page: 192.
        let h = map(&[("content-length", "93"), ("cache-control", "no-cache"), ("content-type", "text/html")]);
        assert_eq!(response_head(9, &h) + 93, 192);
    }

    #[test]
    fn connection_counts_only_what_is_left_past_close_and_keep_alive() {
        assert_eq!(headers(&map(&[("connection", "keep-alive")])), 0);
        assert_eq!(headers(&map(&[("connection", "Keep-Alive, close")])), 0);
        assert_eq!(headers(&map(&[("connection", "upgrade")])), 10 + 7);
        assert_eq!(headers(&map(&[("connection", "close, upgrade, x")])), 10 + 10);
    }

    #[test]
    fn uri_length_as_written() {
        assert_eq!(uri_len(&"/a?b=1".parse().unwrap()), 6);
        assert_eq!(uri_len(&"http://h:8/x".parse().unwrap()), 12);
        assert_eq!(uri_len(&"h:443".parse().unwrap()), 5);
    }
}
