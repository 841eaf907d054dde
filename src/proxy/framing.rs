//! A framing check in front of hyper. hyper quietly normalises some ambiguous requests (it drops
//! a Content-Length that comes with Transfer-Encoding, folds duplicate equal Content-Lengths),
//! so the proxy could not tell they were ever ambiguous. This scanner reads the raw bytes of every
//! request head as they arrive, gives each one a verdict, and follows body framing so it finds
//! the next head on a kept-alive connection. The HTTP service takes one verdict per request and
//! answers 400, 414 or 431 before anything reaches a server.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's own limit for a request head: above it hyper answers 431 before the scanner's verdict
/// is taken. The configured limit (`head_limit`) is normally far below.
pub const MAX_HEAD: usize = 64 * 1024;

/// HAProxy's `tune.bufsize` default.
pub const DEFAULT_BUFSIZE: usize = 16 * 1024;

/// The largest request head (request line plus headers) that fits HAProxy's buffer: `tune.bufsize`
/// less the room HAProxy keeps for header rewrites (`tune.maxrewrite`, 1024, at most half).
pub fn head_limit(bufsize: usize) -> usize {
    bufsize - (bufsize / 2).min(1024)
}
/// Most header fields in a request: HAProxy 2.6 with its `tune.http.maxhdr` default (101) takes
/// 100 and answers 400 to 101 (measured); lbha takes 100 too and answers 431 (RFC 6585) to 101.
const MAX_HEADERS: usize = 100;

/// hyper's own field limit, above `MAX_HEADERS` so the scanner's verdict (431) is what counts.
pub const HYPER_MAX_HEADERS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Bad(&'static str),
    /// The request line alone does not fit the buffer: 414.
    UriTooLong,
    /// The header section does not fit the buffer, or has too many fields: 431.
    TooLarge,
}

/// Which limit a head past `limit` bytes broke: the request line's (414) when no line end
/// appears within the limit, else the header section's (431).
fn oversized(head: &[u8], limit: usize) -> Verdict {
    match memchr::memchr(b'\n', &head[..head.len().min(limit)]) {
        None => Verdict::UriTooLong,
        Some(_) => Verdict::TooLarge,
    }
}

/// The size verdict for an HTTP/2 request: its head measured as the HTTP/1.1 head it stands for
/// (request line, fields, `Host` from `:authority`), so `tune_bufsize` refuses the same request
/// with the same status (414 or 431) whichever protocol carries it.
pub fn judge_h2<B>(req: &http::Request<B>, limit: usize) -> Verdict {
    let uri = req.uri();
    let target = match uri.path_and_query() {
        Some(p) => p.as_str().len(),
        None => uri.authority().map_or(1, |a| a.as_str().len()),
    };
    // "METHOD SP target SP HTTP/1.1 CRLF"
    let line = req.method().as_str().len() + target + 12;
    if line > limit {
        return Verdict::UriTooLong;
    }
    let field = |n: usize, v: usize| n + v + 4;
    let mut head = line + 2;
    if let Some(a) = uri.authority()
        && !req.headers().contains_key(http::header::HOST)
    {
        head += field(4, a.as_str().len());
    }
    for (n, v) in req.headers() {
        head += field(n.as_str().len(), v.len());
        if head > limit {
            return Verdict::TooLarge;
        }
    }
    if head > limit { Verdict::TooLarge } else { Verdict::Ok }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the size line; the value so far and whether an extension started.
    Size {
        value: u64,
        digits: u32,
        ext: bool,
    },
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Trailer section: bytes seen on the current line.
    Trailer(usize),
    TrailerLf(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    Chunked(Chunk),
    /// After a verdict against the request, or a body whose framing is lost: the connection will
    /// be closed, nothing more is judged.
    Done,
}

/// Pure scanner: feed it bytes in any split, collect verdicts in request order.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    head: Vec<u8>,
    /// Largest head accepted (`head_limit`).
    limit: usize,
    pub verdicts: VecDeque<Verdict>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new(head_limit(DEFAULT_BUFSIZE))
    }
}

impl Scanner {
    pub fn new(limit: usize) -> Self {
        Self { state: State::Head, head: Vec::new(), limit, verdicts: VecDeque::new() }
    }

    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            match self.state.clone() {
                State::Done => return,
                State::Head => {
                    // Leading empty lines before a request line are allowed (RFC 9112 §2.2).
                    if self.head.is_empty() {
                        let skip = b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
                        b = &b[skip..];
                        if b.is_empty() {
                            return;
                        }
                        // The usual case: the whole head arrived in this read; judge it in place,
                        // parsed once (no separate search for its end).
                        if let Some(end) = self.judge_whole(b) {
                            b = &b[end..];
                            continue;
                        }
                        if let Some(end) = find_end(b) {
                            self.judge(&b[..end]);
                            b = &b[end..];
                            continue;
                        }
                    }
                    let start = self.head.len().saturating_sub(3);
                    let take = b.len().min(self.limit + 4 - self.head.len().min(self.limit + 4));
                    self.head.extend_from_slice(&b[..take]);
                    match find_end(&self.head[start..]).map(|e| e + start) {
                        Some(end) => {
                            let used = end - (self.head.len() - take);
                            b = &b[used..];
                            self.head.truncate(end);
                            // Taken, not cleared: a kept-alive connection that goes idle
                            // should not keep a head's worth (up to `limit`) of capacity.
                            let head = std::mem::take(&mut self.head);
                            self.judge(&head);
                        }
                        None if self.head.len() > self.limit => {
                            // hyper may refuse it first with its own 431 (past `MAX_HEAD`); if
                            // it does not, the service answers 414 or 431 from this verdict.
                            self.verdicts.push_back(oversized(&self.head, self.limit));
                            self.head = Vec::new();
                            self.state = State::Done;
                            return;
                        }
                        None => return,
                    }
                }
                State::Body(n) => {
                    let k = (b.len() as u64).min(n);
                    b = &b[k as usize..];
                    self.state = if n == k { State::Head } else { State::Body(n - k) };
                }
                State::Chunked(c) => {
                    let used = self.chunk(c, b);
                    b = &b[used..];
                }
            }
        }
    }

    /// Advances the chunked-body state by at most one step; returns bytes consumed.
    fn chunk(&mut self, c: Chunk, b: &[u8]) -> usize {
        // The verdict of this body's request is still queued when the head came in the same
        // read (hyper has not called the service yet): it becomes a 400 and nothing is forwarded.
        let lost = |s: &mut Self| {
            s.state = State::Done;
            if let Some(v) = s.verdicts.back_mut() {
                *v = Verdict::Bad("invalid chunked body");
            }
            b.len()
        };
        match c {
            Chunk::Size { value, digits, ext } => {
                for (i, &x) in b.iter().enumerate() {
                    let next = match (x, ext) {
                        (b'\r', _) if digits > 0 => Chunk::SizeLf(value),
                        (_, true) if x != b'\n' => continue,
                        // Leading zeros are fine (hyper and HAProxy take them); a size past u64 is not.
                        (b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F', false) if value >> 60 == 0 => {
                            let d = (x as char).to_digit(16).unwrap_or(0) as u64;
                            self.state = State::Chunked(Chunk::Size { value: value * 16 + d, digits: digits + 1, ext });
                            return i + 1;
                        }
                        (b';' | b' ' | b'\t', false) if digits > 0 => Chunk::Size { value, digits, ext: true },
                        _ => return lost(self),
                    };
                    self.state = State::Chunked(next);
                    return i + 1;
                }
                b.len()
            }
            Chunk::SizeLf(value) => {
                if b[0] != b'\n' {
                    return lost(self);
                }
                self.state = State::Chunked(after_size_line(value));
                1
            }
            Chunk::Data(0) => {
                self.state = State::Chunked(Chunk::DataCr);
                0
            }
            Chunk::Data(n) => {
                let k = (b.len() as u64).min(n);
                self.state = State::Chunked(Chunk::Data(n - k));
                k as usize
            }
            Chunk::DataCr => {
                if b[0] != b'\r' {
                    return lost(self);
                }
                self.state = State::Chunked(Chunk::DataLf);
                1
            }
            Chunk::DataLf => {
                if b[0] != b'\n' {
                    return lost(self);
                }
                self.state = State::Chunked(Chunk::Size { value: 0, digits: 0, ext: false });
                1
            }
            Chunk::Trailer(n) => {
                if b[0] == b'\r' {
                    self.state = State::Chunked(Chunk::TrailerLf(n));
                } else {
                    self.state = State::Chunked(Chunk::Trailer(n + 1));
                }
                1
            }
            Chunk::TrailerLf(n) => {
                if b[0] != b'\n' {
                    return lost(self);
                }
                self.state = if n == 0 { State::Head } else { State::Chunked(Chunk::Trailer(0)) };
                1
            }
        }
    }

    /// Judges a head that starts `b` and ends within it, when it ends with CRLF CRLF within the
    /// limit (what `find_end` would find): returns its length. Anything else (partial, bare LF
    /// endings, unparseable, too large) is left to the general path, so both give one verdict.
    fn judge_whole(&mut self, b: &[u8]) -> Option<usize> {
        let mut hs = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let Ok(httparse::Status::Complete(end)) = req.parse_with_uninit_headers(b, &mut hs) else {
            return None;
        };
        if end > self.limit || !b[..end].ends_with(b"\r\n\r\n") {
            return None;
        }
        let (verdict, next) = verdict_of(&req);
        self.record(verdict, next);
        Some(end)
    }

    fn judge(&mut self, head: &[u8]) {
        let (verdict, next) =
            if head.len() > self.limit { (Some(oversized(head, self.limit)), State::Done) } else { judge_head(head) };
        self.record(verdict, next);
    }

    fn record(&mut self, verdict: Option<Verdict>, next: State) {
        match verdict {
            Some(v) => {
                if v != Verdict::Ok {
                    self.state = State::Done;
                } else {
                    self.state = next;
                }
                self.verdicts.push_back(v);
            }
            // Not parseable: hyper rejects it and closes.
            None => self.state = State::Done,
        }
    }
}

/// After a chunk-size line of size 0 the trailer section follows; `chunk` handles that by looking
/// at the size when the line ends.
fn after_size_line(value: u64) -> Chunk {
    if value == 0 { Chunk::Trailer(0) } else { Chunk::Data(value) }
}

fn find_end(b: &[u8]) -> Option<usize> {
    memchr::memmem::find(b, b"\r\n\r\n").map(|p| p + 4)
}

/// The verdict for one complete head and the body framing that follows it.
fn judge_head(head: &[u8]) -> (Option<Verdict>, State) {
    // Uninitialised: zeroing room for 100 fields cost more than parsing a small head.
    let mut hs = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut hs) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return (Some(Verdict::TooLarge), State::Done),
        _ => return (None, State::Done),
    }
    verdict_of(&req)
}

/// The verdict for a completely parsed head and the body framing that follows it.
fn verdict_of(req: &httparse::Request<'_, '_>) -> (Option<Verdict>, State) {
    let mut cl: Vec<&[u8]> = Vec::new();
    let mut te: Vec<&[u8]> = Vec::new();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            cl.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te.push(h.value);
        }
    }
    let bad = |why| (Some(Verdict::Bad(why)), State::Done);
    if cl.len() > 1 {
        return bad("duplicate Content-Length");
    }
    if !cl.is_empty() && !te.is_empty() {
        return bad("both Content-Length and Transfer-Encoding");
    }
    if let Some(v) = cl.first() {
        if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
            return bad("malformed Content-Length");
        }
        let n: u64 = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        return (Some(Verdict::Ok), if n == 0 { State::Head } else { State::Body(n) });
    }
    if !te.is_empty() {
        if req.version != Some(1) {
            return bad("Transfer-Encoding in HTTP/1.0");
        }
        if te.len() > 1 || !te[0].eq_ignore_ascii_case(b"chunked") {
            return bad("unsupported Transfer-Encoding");
        }
        return (Some(Verdict::Ok), State::Chunked(Chunk::Size { value: 0, digits: 0, ext: false }));
    }
    (Some(Verdict::Ok), State::Head)
}

/// Verdicts shared between the socket wrapper and the HTTP service of one connection.
#[derive(Debug, Default)]
pub struct Verdicts(Mutex<Scanner>);

impl Verdicts {
    /// Verdicts for heads of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self(Mutex::new(Scanner::new(limit)))
    }

    /// The verdict for the next request hyper hands to the service.
    pub fn next(&self) -> Verdict {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).verdicts.pop_front().unwrap_or(Verdict::Ok)
    }
}

/// Wraps the client socket and scans what hyper reads.
pub struct Guard<T> {
    inner: T,
    verdicts: Arc<Verdicts>,
}

impl<T> Guard<T> {
    pub fn new(inner: T, verdicts: Arc<Verdicts>) -> Self {
        Self { inner, verdicts }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                self.verdicts.0.lock().unwrap_or_else(|p| p.into_inner()).feed(fresh);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, b)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in every possible two-way split and in single bytes; all must agree.
    fn verdicts(input: &[u8]) -> Vec<Verdict> {
        let mut whole = Scanner::default();
        whole.feed(input);
        let want: Vec<Verdict> = whole.verdicts.iter().copied().collect();
        for cut in 0..input.len() {
            let mut s = Scanner::default();
            s.feed(&input[..cut]);
            s.feed(&input[cut..]);
            assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), want, "split at {cut}");
        }
        let mut s = Scanner::default();
        for b in input {
            s.feed(std::slice::from_ref(b));
        }
        assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), want, "byte by byte");
        want
    }

    #[test]
    fn keep_alive_sequence_with_bodies() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
GET /z HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(verdicts(input), [Verdict::Ok, Verdict::Ok, Verdict::Ok, Verdict::Bad("duplicate Content-Length")]);
    }

    #[test]
    fn each_ambiguity_class() {
        let cases: &[(&[u8], Verdict)] = &[
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Verdict::Bad("both Content-Length and Transfer-Encoding"),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                Verdict::Bad("both Content-Length and Transfer-Encoding"),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
                Verdict::Bad("duplicate Content-Length"),
            ),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 \r\n\r\n", Verdict::Ok),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", Verdict::Bad("malformed Content-Length")),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,3\r\n\r\n", Verdict::Bad("malformed Content-Length")),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Verdict::Bad("unsupported Transfer-Encoding"),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Verdict::Bad("unsupported Transfer-Encoding"),
            ),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Verdict::Bad("Transfer-Encoding in HTTP/1.0")),
        ];
        for (input, want) in cases {
            assert_eq!(verdicts(input), [*want], "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn too_large_and_unparseable_heads() {
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'y', MAX_HEAD));
        big.extend_from_slice(b"\r\n\r\n");
        let mut s = Scanner::default();
        s.feed(&big);
        assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), [Verdict::TooLarge]);
        let mut s = Scanner::default();
        s.feed(b"GARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert!(s.verdicts.is_empty(), "hyper rejects it and closes; nothing more is judged");
    }

    #[test]
    fn heads_past_the_buffer_are_too_large_whole_or_in_pieces() {
        assert_eq!(head_limit(16384), 15360);
        assert_eq!(head_limit(1024), 512);
        let head = |uri: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(uri)).into_bytes();
        let mut s = Scanner::new(100);
        s.feed(&head(100 - 27));
        assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), [Verdict::Ok], "exactly at the limit");
        for (input, want) in [(head(100 - 26), Verdict::TooLarge), (head(17 * 1024), Verdict::UriTooLong)] {
            let mut whole = Scanner::new(100);
            whole.feed(&input);
            let mut bytes = Scanner::new(100);
            for b in &input {
                bytes.feed(std::slice::from_ref(b));
            }
            for s in [whole, bytes] {
                assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), [want], "{}", input.len());
            }
        }
    }

    #[test]
    fn a_head_split_across_reads_leaves_no_buffer_behind() {
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: ");
        s.feed(&[b'y'; 10 * 1024]);
        s.feed(b"\r\n\r\n");
        assert_eq!(s.verdicts.iter().copied().collect::<Vec<_>>(), [Verdict::Ok]);
        assert_eq!(s.head.capacity(), 0, "an idle keep-alive connection keeps no head buffer");
    }

    #[test]
    fn h2_heads_are_measured_as_their_http1_heads() {
        let req = |path: &str, field: usize| {
            http::Request::get(format!("https://a{path}")).header("x", "y".repeat(field)).body(()).unwrap()
        };
        // "GET /... HTTP/1.1\r\n" + "host: a\r\n" + "x: ...\r\n" + "\r\n", as the HTTP/1 scanner counts.
        let size = |path: &str, field: usize| 15 + path.len() + 9 + 5 + field + 2;
        assert_eq!(judge_h2(&req("/", 10), size("/", 10)), Verdict::Ok, "exactly at the limit");
        assert_eq!(judge_h2(&req("/", 11), size("/", 10)), Verdict::TooLarge);
        let long = format!("/{}", "a".repeat(17 * 1024));
        assert_eq!(judge_h2(&req(&long, 0), head_limit(DEFAULT_BUFSIZE)), Verdict::UriTooLong);
        assert_eq!(judge_h2(&req("/", 15 * 1024), head_limit(DEFAULT_BUFSIZE)), Verdict::TooLarge);
        assert_eq!(judge_h2(&req("/", 14 * 1024), head_limit(DEFAULT_BUFSIZE)), Verdict::Ok);
    }

    #[test]
    fn chunk_sizes_with_leading_zeros_are_fine_and_overflow_is_not() {
        let req = |size: &str| {
            format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .into_bytes()
        };
        assert_eq!(verdicts(&req("000000000000000000004")), [Verdict::Ok, Verdict::Ok]);
        assert_eq!(verdicts(&req("10000000000000004")), [Verdict::Bad("invalid chunked body")]);
    }

    #[test]
    fn heads_judged_in_place_get_the_verdict_of_the_general_path() {
        // A whole head in one read is parsed once (`judge_whole`); `verdicts` compares that with
        // the same bytes fed in pieces (the general path, which searches for CRLF CRLF first).
        // Heads the in-place path leaves alone: bare-LF endings, a CRLF CRLF only in a later
        // body, unparseable ones and pipelined mixtures.
        for input in [
            &b"GET / HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\nContent-Length: 4\n\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
            b"\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        ] {
            let whole = verdicts(input);
            assert!(!whole.is_empty(), "{:?}", String::from_utf8_lossy(input));
        }
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(Vec::from(s.verdicts), [Verdict::Ok, Verdict::Bad("duplicate Content-Length")]);
    }

    #[test]
    fn more_than_100_header_fields_are_too_many() {
        let head = |n: usize| {
            let fields: String = (1..n).map(|i| format!("X-{i}: v\r\n")).collect();
            format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").into_bytes()
        };
        assert_eq!(verdicts(&head(100)), [Verdict::Ok]);
        assert_eq!(verdicts(&head(101)), [Verdict::TooLarge]);
    }

    #[test]
    fn lost_chunk_framing_turns_the_queued_verdict_bad_and_stops_judging() {
        let bad = [Verdict::Bad("invalid chunked body")];
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(verdicts(input), bad);
        assert_eq!(verdicts(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXY"), bad);
        // Taken already (the body came in a later read): the request is on its way; hyper's own
        // chunk parser fails the body, and the next request is not judged.
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        s.verdicts.clear();
        s.feed(b"zz\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(s.verdicts.is_empty());
    }
}
