//! A framing check in front of hyper. hyper quietly normalises some ambiguous requests (it drops
//! a Content-Length that comes with Transfer-Encoding, folds duplicate equal Content-Lengths),
//! so the proxy could not tell they were ever ambiguous. This scanner reads the raw bytes of every
//! request head as they arrive, gives each one a verdict, and follows body framing so it finds
//! the next head on a kept-alive connection. The HTTP service takes one verdict per request and
//! answers 400, 414 or 431 before anything reaches a server.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
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

/// hyper's own field limit. hyper sees only heads the scanner passed, so no more than
/// `MAX_HEADERS`; above 100 hyper would move its two field arrays to the heap for every request.
pub const HYPER_MAX_HEADERS: usize = MAX_HEADERS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Bad(&'static str),
    /// The request line alone does not fit the buffer: 414.
    UriTooLong,
    /// The header section does not fit the buffer, or has too many fields: 431.
    TooLarge,
    /// The head passed but its chunked body's framing is broken: 400 (hyper had the head).
    BadBody,
    /// The head did not complete within `timeout http-request`: 408.
    TimedOut,
    /// Nothing came on a new connection within `timeout http-request`: 408 (a probe).
    Silent,
    /// A new connection ended before its first byte: 400, `CR--` (a probe).
    Closed,
    /// The connection ended within a head: 400, `CR--`.
    Cut,
}

impl Verdict {
    /// The service got the guard's stand-in for a head it refused, not the client's request.
    pub fn stands_in(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::BadBody)
    }

    /// A connection that sent nothing: HAProxy answers and logs it unless
    /// `option http-ignore-probes`, and `option dontlognull` hides its line.
    pub fn is_probe(self) -> bool {
        matches!(self, Verdict::Silent | Verdict::Closed)
    }
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
    /// A body whose framing is lost after its head was handed on: the request's verdict turned
    /// bad (if the service had not taken it yet) and bytes pass unjudged; hyper fails the body.
    Done,
    /// A head was refused and its stand-in handed on: nothing more reaches hyper.
    Refused,
}

/// Where the bytes hyper reads come from after one read of the socket. The scanner holds a
/// request head back until it is complete and judged, so hyper never parses a head the scanner
/// refused (it would answer with its own bare 400 or 431, unlogged), nor a head larger than the
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A range of the bytes just read.
    Fed(std::ops::Range<usize>),
    /// A head that began in an earlier read, whole.
    Held(Vec<u8>),
    /// A refused head: hyper gets [`STAND_IN`], which the service answers with the verdict.
    StandIn,
}

/// What hyper reads in place of a refused head: a minimal request, so that the service (not
/// hyper) answers it, with the verdict's page, log line and counters.
pub const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

/// The segments of one read, built only when they differ from "all of it" (the usual case: whole
/// heads and bodies).
struct Out {
    segs: Option<Vec<Seg>>,
    /// While `segs` is none, everything before this passed.
    passed: usize,
    /// Judging only: the bytes pass whatever the scanner makes of them (after an upgrade).
    discard: bool,
}

impl Out {
    fn pass(&mut self, r: std::ops::Range<usize>) {
        if r.is_empty() || self.discard {
            return;
        }
        match &mut self.segs {
            None if r.start == self.passed => self.passed = r.end,
            None => self.push(Seg::Fed(r)),
            Some(v) => match v.last_mut() {
                Some(Seg::Fed(last)) if last.end == r.start => last.end = r.end,
                _ => v.push(Seg::Fed(r)),
            },
        }
    }

    fn push(&mut self, s: Seg) {
        if self.discard {
            return;
        }
        let passed = self.passed;
        self.segs.get_or_insert_with(|| prefix(passed)).push(s);
    }

    /// None: all `len` bytes pass as they are.
    fn finish(self, len: usize) -> Option<Vec<Seg>> {
        match self.segs {
            None if self.passed == len => None,
            None => Some(prefix(self.passed)),
            Some(v) => Some(v),
        }
    }
}

/// The segments of a read whose first `passed` bytes pass.
fn prefix(passed: usize) -> Vec<Seg> {
    if passed > 0 { vec![Seg::Fed(0..passed)] } else { Vec::new() }
}

/// Pure scanner: feed it bytes in any split, collect verdicts in request order.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// The head being read, when it did not come whole in one read.
    head: Vec<u8>,
    /// Largest head accepted (`head_limit`).
    limit: usize,
    pub verdicts: VecDeque<Verdict>,
    /// A request asked for an upgrade (WebSocket, CONNECT): what follows may be a tunnel's bytes,
    /// so from then on they all pass as they come, judged still (if the upgrade fails, the
    /// service gets the verdicts of the requests that follow), but not held back or refused.
    lenient: bool,
    /// The last refused head as it came (`show errors`), until the service takes it.
    refused: Option<Vec<u8>>,
    /// Some byte came on this connection.
    seen: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new(head_limit(DEFAULT_BUFSIZE))
    }
}

impl Scanner {
    pub fn new(limit: usize) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            limit,
            verdicts: VecDeque::new(),
            lenient: false,
            refused: None,
            seen: false,
        }
    }

    /// Between requests with nothing held: a new scanner that has seen bytes is the same.
    fn at_rest(&self) -> bool {
        self.state == State::Head
            && self.head.is_empty()
            && self.verdicts.is_empty()
            && !self.lenient
            && self.refused.is_none()
    }

    /// Judges `b` and says what of it may go on to hyper (None: all of it).
    pub fn feed(&mut self, b: &[u8]) -> Option<Vec<Seg>> {
        self.seen |= !b.is_empty();
        let mut out = Out { segs: None, passed: 0, discard: false };
        let mut i = 0;
        while i < b.len() {
            if self.lenient && !out.discard {
                out.pass(i..b.len());
                out.discard = true;
            }
            match self.state.clone() {
                State::Done => {
                    out.pass(i..b.len());
                    break;
                }
                State::Refused => break,
                State::Head => i = self.head_bytes(b, i, &mut out),
                State::Body(n) => {
                    let k = ((b.len() - i) as u64).min(n) as usize;
                    out.pass(i..i + k);
                    i += k;
                    self.state = if n == k as u64 { State::Head } else { State::Body(n - k as u64) };
                }
                State::Chunked(c) => {
                    let used = self.chunk(c, &b[i..]);
                    out.pass(i..i + used);
                    i += used;
                }
            }
        }
        out.finish(b.len())
    }

    /// Reads head bytes from `b[i..]`; returns where the head (or what was taken of it) ends.
    fn head_bytes(&mut self, b: &[u8], mut i: usize, out: &mut Out) -> usize {
        if self.head.is_empty() {
            // Leading empty lines before a request line are allowed (RFC 9112 §2.2).
            let skip = b[i..].iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
            out.pass(i..i + skip);
            i += skip;
            if i == b.len() {
                return i;
            }
            // The usual case: the whole head arrived in this read; judged in place, parsed once.
            if let Parsed::Whole(end, j) = parse_head(&b[i..])
                && end <= self.limit
            {
                if self.passes(j) {
                    out.pass(i..i + end);
                } else {
                    self.refuse(b[i..i + end].to_vec(), out);
                }
                return i + end;
            }
        }
        let had = self.head.len();
        let take = (b.len() - i).min(self.limit + 1 - had.min(self.limit + 1));
        self.head.extend_from_slice(&b[i..i + take]);
        // A head can only end, or turn out unparseable, with a new line (re-parsing at every
        // byte of a slow head would cost its length squared).
        let parse = had == 0 || memchr::memchr(b'\n', &b[i..i + take]).is_some();
        let parsed = if parse { parse_head(&self.head) } else { Parsed::Partial };
        match parsed {
            Parsed::Whole(end, j) if end <= self.limit => {
                self.head.truncate(end);
                // Taken, not cleared: a kept-alive connection that goes idle should not keep a
                // head's worth (up to `limit`) of capacity.
                let head = std::mem::take(&mut self.head);
                if self.passes(j) {
                    out.push(Seg::Held(head));
                } else {
                    self.refuse(head, out);
                }
                i + end - had
            }
            Parsed::Partial if self.head.len() <= self.limit => i + take,
            refused => {
                let v = match refused {
                    Parsed::Refused(v) => v,
                    _ => oversized(&self.head, self.limit),
                };
                self.verdicts.push_back(v);
                let head = std::mem::take(&mut self.head);
                self.refuse(head, out);
                b.len()
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
                *v = Verdict::BadBody;
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

    /// `timeout http-request` ran out while waiting for a head: true when the client is to get
    /// a 408 (HAProxy's rule: a head had begun, or nothing came at all on a new connection
    /// unless `option http-ignore-probes`), which the service answers through the stand-in.
    pub fn time_out(&mut self, ignore_probes: bool) -> bool {
        self.cut_short(ignore_probes, Verdict::TimedOut, Verdict::Silent)
    }

    /// The client closed (or reset) within a head, or before its first byte: true when it is
    /// to get HAProxy's 400 and `CR--` line, which a connection that sent nothing gets unless
    /// `option http-ignore-probes`.
    pub fn closed(&mut self, ignore_probes: bool) -> bool {
        self.cut_short(ignore_probes, Verdict::Cut, Verdict::Closed)
    }

    /// A head that will not be completed: `begun` is queued when one had begun, `probe` when
    /// nothing came on a new connection (unless `ignore_probes`); true when one was queued.
    fn cut_short(&mut self, ignore_probes: bool, begun: Verdict, probe: Verdict) -> bool {
        let has_begun = !self.head.is_empty();
        let is_probe = !self.seen && !ignore_probes;
        if self.state != State::Head || self.lenient || !(has_begun || is_probe) {
            return false;
        }
        self.head = Vec::new();
        self.verdicts.push_back(if has_begun { begun } else { probe });
        self.state = State::Refused;
        true
    }

    /// Queues a complete head's verdict; true when it passed (what follows it is then read as
    /// its body, and after an upgrade request, leniently).
    fn passes(&mut self, j: Judged) -> bool {
        let ok = j.verdict == Verdict::Ok;
        self.verdicts.push_back(j.verdict);
        if ok {
            self.state = j.next;
            self.lenient |= j.upgrade;
        }
        ok
    }

    /// A head whose verdict (queued) refused it: its bytes are kept for `show errors`, hyper
    /// gets the stand-in, and nothing more is judged.
    fn refuse(&mut self, head: Vec<u8>, out: &mut Out) {
        self.state = State::Refused;
        self.refused = Some(head);
        out.push(Seg::StandIn);
    }
}

/// After a chunk-size line of size 0 the trailer section follows; `chunk` handles that by looking
/// at the size when the line ends.
fn after_size_line(value: u64) -> Chunk {
    if value == 0 { Chunk::Trailer(0) } else { Chunk::Data(value) }
}

/// A complete head's verdict, the body framing that follows it, and whether it asks for an
/// upgrade (WebSocket, `CONNECT`).
struct Judged {
    verdict: Verdict,
    next: State,
    upgrade: bool,
}

/// A head read so far, parsed.
enum Parsed {
    /// Complete: its length and how it was judged.
    Whole(usize, Judged),
    Partial,
    /// Not a request head, or one with too many fields.
    Refused(Verdict),
}

fn parse_head(head: &[u8]) -> Parsed {
    // Uninitialised: zeroing room for 100 fields cost more than parsing a small head.
    let mut hs = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut hs) {
        Ok(httparse::Status::Complete(end)) => Parsed::Whole(end, judge(&req)),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Refused(Verdict::TooLarge),
        Err(_) => Parsed::Refused(Verdict::Bad("malformed request head")),
    }
}

/// Judges a completely parsed head, in one pass over its fields.
fn judge(req: &httparse::Request<'_, '_>) -> Judged {
    let mut cl: Vec<&[u8]> = Vec::new();
    let mut te: Vec<&[u8]> = Vec::new();
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            cl.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te.push(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let (verdict, next) = framing_of(req, &cl, &te);
    Judged { verdict, next, upgrade }
}

/// The verdict from a head's framing fields.
fn framing_of(req: &httparse::Request<'_, '_>, cl: &[&[u8]], te: &[&[u8]]) -> (Verdict, State) {
    let bad = |why| (Verdict::Bad(why), State::Refused);
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
        return (Verdict::Ok, if n == 0 { State::Head } else { State::Body(n) });
    }
    if !te.is_empty() {
        if req.version != Some(1) {
            return bad("Transfer-Encoding in HTTP/1.0");
        }
        if te.len() > 1 || !te[0].eq_ignore_ascii_case(b"chunked") {
            return bad("unsupported Transfer-Encoding");
        }
        return (Verdict::Ok, State::Chunked(Chunk::Size { value: 0, digits: 0, ext: false }));
    }
    (Verdict::Ok, State::Head)
}

/// A refused head's bytes, carried to the service with the stand-in request.
#[derive(Debug, Clone)]
pub struct Refused(pub Vec<u8>);

/// Verdicts shared between the socket wrapper and the HTTP service of one connection.
#[derive(Debug, Default)]
pub struct Verdicts {
    scanner: Mutex<Scanner>,
    /// A 408 is due: the guard hands hyper its stand-in at the next read.
    timed_out: AtomicBool,
    /// `option http-ignore-probes`: a new connection that sends nothing is closed unanswered.
    ignore_probes: bool,
}

impl Verdicts {
    /// Verdicts for heads of at most `limit` bytes.
    pub fn new(limit: usize, ignore_probes: bool) -> Self {
        Self { scanner: Mutex::new(Scanner::new(limit)), timed_out: AtomicBool::new(false), ignore_probes }
    }

    /// Verdicts for a kept-alive connection whose earlier requests left nothing behind (a parked
    /// connection's are made again at its next request; see [`Verdicts::at_rest`]).
    pub fn after_requests(limit: usize, ignore_probes: bool) -> Self {
        let mut s = Scanner::new(limit);
        s.seen = true;
        Self { scanner: Mutex::new(s), timed_out: AtomicBool::new(false), ignore_probes }
    }

    /// Nothing pending: no head begun or held, no verdict queued, no 408 due, not lenient
    /// after an upgrade request. Such verdicts can be dropped and made again with
    /// [`Verdicts::after_requests`].
    pub fn at_rest(&self) -> bool {
        !self.timed_out.load(Relaxed) && self.scanner().at_rest()
    }

    fn scanner(&self) -> std::sync::MutexGuard<'_, Scanner> {
        self.scanner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `timeout http-request` ran out while hyper waits for a head: true when the guard is to
    /// hand hyper the stand-in of a 408 at its next read (see [`Scanner::time_out`]), so the
    /// caller keeps polling the connection for the answer (also when one was already due).
    pub fn time_out(&self) -> bool {
        if self.timed_out.load(Relaxed) {
            return true;
        }
        let answer = self.scanner().time_out(self.ignore_probes);
        if answer {
            self.timed_out.store(true, Relaxed);
        }
        answer
    }

    /// The verdict for the next request hyper hands to the service.
    pub fn next(&self) -> Verdict {
        self.scanner().verdicts.pop_front().unwrap_or(Verdict::Ok)
    }

    /// The verdict the next request will take, if one is queued (the lean HTTP/1 path serves only
    /// a head that passed, and leaves the verdict of any other to hyper's service).
    pub fn peek(&self) -> Option<Verdict> {
        self.scanner().verdicts.front().copied()
    }

    /// The refused head's bytes, once (they go to the frontend's `show errors` capture).
    pub fn take_refused(&self) -> Option<Refused> {
        self.scanner().refused.take().map(Refused)
    }
}

/// Wraps the client socket: judges what arrives and hands hyper only judged heads (see [`Seg`]).
pub struct Guard<T> {
    inner: T,
    verdicts: Arc<Verdicts>,
    /// Judged bytes hyper has not taken yet.
    release: Bytes,
    /// A head was refused: the socket is read only to notice the client's close.
    refused: bool,
}

/// A read smaller than this (not hyper's) goes through a buffer of the guard's own, so a head
/// held back is not read a byte per system call.
const SMALL_READ: usize = 1024;

impl<T> Guard<T> {
    pub fn new(inner: T, verdicts: Arc<Verdicts>) -> Self {
        Self { inner, verdicts, release: Bytes::new(), refused: false }
    }

    /// Judged bytes are waiting for hyper (a parked connection serves them at once).
    pub fn has_pending(&self) -> bool {
        !self.release.is_empty()
    }

    /// The stream ended within a head or before any byte: true when hyper is to read the
    /// stand-in of a 400.
    fn closed_early(&mut self) -> bool {
        let v = &self.verdicts;
        let answer = v.scanner().closed(v.ignore_probes);
        if answer {
            self.release = STAND_IN.into();
            self.refused = true;
        }
        answer
    }

    /// Rebuilds what hyper gets from one read's bytes and the scanner's segments (none: all of them).
    fn queue(&mut self, fresh: &[u8], segs: Option<Vec<Seg>>) {
        let Some(segs) = segs else {
            self.release = [&self.release[..], fresh].concat().into();
            return;
        };
        let mut out = Vec::new();
        for s in segs {
            match s {
                Seg::Fed(r) => out.extend_from_slice(&fresh[r]),
                Seg::Held(h) if out.is_empty() => out = h,
                Seg::Held(h) => out.extend_from_slice(&h),
                Seg::StandIn => {
                    out.extend_from_slice(STAND_IN);
                    self.refused = true;
                }
            }
        }
        self.release = if self.release.is_empty() { out.into() } else { [&self.release[..], &out].concat().into() };
    }
}

impl<T: AsyncRead + Unpin> Guard<T> {
    /// Reads the socket into the scanner once: Ready(true) when bytes came (judged, queued or
    /// held), Ready(false) at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<bool>> {
        if self.refused {
            // Nothing more reaches hyper; what the client still sends is dropped.
            let mut scratch = [0u8; 2048];
            let mut rb = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
            return Poll::Ready(Ok(!rb.filled().is_empty()));
        }
        if buf.remaining() < SMALL_READ {
            let mut scratch = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
            let fresh = rb.filled();
            if fresh.is_empty() {
                return Poll::Ready(Ok(false));
            }
            let segs = self.verdicts.scanner().feed(fresh);
            self.queue(fresh, segs);
            return Poll::Ready(Ok(true));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let fresh = &buf.filled()[before..];
        if fresh.is_empty() {
            return Poll::Ready(Ok(false));
        }
        let segs = self.verdicts.scanner().feed(fresh);
        if segs.is_some() {
            let fresh = fresh.to_vec();
            buf.set_filled(before);
            self.queue(&fresh, segs);
        }
        Poll::Ready(Ok(true))
    }

    /// Waits for the client's next bytes without handing them on (a parked connection): true when
    /// some came, false at the end of the stream or an error.
    pub fn poll_arrival(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.has_pending() {
            return Poll::Ready(true);
        }
        let mut none = ReadBuf::new(&mut []);
        match ready!(self.poll_fill(cx, &mut none)) {
            Ok(got) => Poll::Ready(got),
            Err(_) => Poll::Ready(false),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The guard holds nothing: no judged bytes waiting, no refused head, and its verdicts at
    /// rest (see [`Verdicts::at_rest`]); it can be dropped and made again.
    pub fn holds_nothing(&self) -> bool {
        self.release.is_empty() && !self.refused && self.verdicts.at_rest()
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.verdicts.timed_out.load(Relaxed) && !self.refused {
            // A 408 is due (`Verdicts::time_out`): hyper reads its stand-in next.
            self.verdicts.timed_out.store(false, Relaxed);
            self.release = [&self.release[..], STAND_IN].concat().into();
            self.refused = true;
        }
        // Bounded: each round consumes socket bytes, and a head held back is at most `limit`.
        loop {
            if !self.release.is_empty() {
                let n = self.release.len().min(buf.remaining());
                buf.put_slice(&self.release[..n]);
                self.release.advance(n);
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let g = &mut *self;
            match ready!(g.poll_fill(cx, buf)) {
                // The end of the stream; after a refusal hyper is answering the stand-in and
                // closes by itself, so the end is not passed on (it would drop that answer).
                Ok(false) if g.refused => return Poll::Pending,
                // Within a head, or before anything came: the service answers the stand-in (a 400).
                Ok(false) | Err(_) if g.closed_early() => {}
                Ok(false) => return Poll::Ready(Ok(())),
                Ok(true) if buf.filled().len() > before => return Poll::Ready(Ok(())),
                Ok(true) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
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
        assert_eq!(Vec::from(s.verdicts), [Verdict::Bad("malformed request head")], "nothing more is judged");
    }

    /// What hyper reads when `input` arrives in the given pieces.
    fn handed_on(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain([input.len()].iter()) {
            let piece = &input[from..to];
            match s.feed(piece) {
                None => out.extend_from_slice(piece),
                Some(segs) => {
                    for seg in segs {
                        match seg {
                            Seg::Fed(r) => out.extend_from_slice(&piece[r]),
                            Seg::Held(h) => out.extend_from_slice(&h),
                            Seg::StandIn => out.extend_from_slice(STAND_IN),
                        }
                    }
                }
            }
            from = to;
        }
        out
    }

    #[test]
    fn hyper_reads_the_same_bytes_whatever_the_split_and_whole_heads_only() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\nHost: a\n\n";
        for cut in 0..input.len() {
            assert_eq!(handed_on(input, &[cut]), input, "split at {cut}");
        }
        // A head in pieces reaches hyper only once complete, bare-LF endings included.
        let mut s = Scanner::default();
        assert_eq!(s.feed(b"GET /b HTTP/1.1\nHo"), Some(vec![]));
        assert_eq!(s.feed(b"st: a\n"), Some(vec![]));
        assert_eq!(s.feed(b"\nGET"), Some(vec![Seg::Held(b"GET /b HTTP/1.1\nHost: a\n\n".to_vec())]));
        assert_eq!(s.feed(b" / HTTP/1.1\r\n\r\n"), Some(vec![Seg::Held(b"GET / HTTP/1.1\r\n\r\n".to_vec())]));
        // The usual read, whole heads and bodies: nothing is copied.
        assert_eq!(s.feed(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(Vec::from(s.verdicts), [Verdict::Ok; 4]);
    }

    #[test]
    fn after_an_upgrade_request_bytes_pass_as_they_come_and_are_still_judged() {
        for head in [
            &b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"[..],
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            let mut s = Scanner::default();
            assert_eq!(s.feed(&[head, b"hel"].concat()), None, "tunnel bytes are not held");
            assert_eq!(s.feed(b"lo"), None);
            // The upgrade failed and the client goes on: later heads are judged, not refused here.
            let mut s = Scanner::default();
            s.feed(head);
            assert_eq!(s.feed(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), None);
            assert_eq!(Vec::from(s.verdicts), [Verdict::Ok, Verdict::Bad("duplicate Content-Length")]);
        }
    }

    #[test]
    fn verdicts_are_at_rest_only_between_requests_with_nothing_held() {
        let v = Verdicts::new(head_limit(DEFAULT_BUFSIZE), false);
        assert!(v.at_rest());
        v.scanner().feed(b"GET / HTTP/1.1\r\n\r\n");
        assert!(!v.at_rest(), "a verdict waits for the service");
        assert_eq!(v.next(), Verdict::Ok);
        assert!(v.at_rest());
        v.scanner().feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
        v.next();
        assert!(!v.at_rest(), "inside a body");
        v.scanner().feed(b"cdGET / HT");
        assert!(!v.at_rest(), "a head has begun");
        v.scanner().feed(b"TP/1.1\r\n\r\n");
        v.next();
        assert!(v.at_rest());
        v.scanner().feed(b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
        v.next();
        assert!(!v.at_rest(), "lenient after an upgrade request");
        // Made again after requests: a timeout between requests is no probe, so no 408.
        let v = Verdicts::after_requests(head_limit(DEFAULT_BUFSIZE), false);
        assert!(v.at_rest());
        assert!(!v.time_out());
        assert!(Verdicts::new(head_limit(DEFAULT_BUFSIZE), false).time_out(), "a new connection's probe");
        assert!(!Verdicts::new(head_limit(DEFAULT_BUFSIZE), true).time_out(), "option http-ignore-probes");
    }

    #[test]
    fn timeout_http_request_gives_a_408_as_haproxy_does() {
        // Nothing came on a new connection: a 408, unless `option http-ignore-probes`.
        assert!(!Scanner::default().time_out(true));
        let mut s = Scanner::default();
        assert!(s.time_out(false));
        assert_eq!(Vec::from(s.verdicts), [Verdict::Silent]);
        assert!(Verdict::Silent.is_probe() && Verdict::Silent.stands_in() && !Verdict::TimedOut.is_probe());
        // A head had begun: a 408 either way, and nothing more is judged.
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\nHo");
        assert!(s.time_out(true));
        assert_eq!(s.feed(b"st: a\r\n\r\n"), Some(vec![]));
        assert_eq!(Vec::from(s.verdicts), [Verdict::TimedOut]);
        // Idle between requests, or inside a body: closed without an answer.
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert!(!s.time_out(false));
        s.feed(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
        assert!(!s.time_out(false));
    }

    #[test]
    fn a_connection_closed_before_its_first_byte_is_a_probe_as_in_haproxy() {
        // Nothing came: a 400 (`CR--`), unless `option http-ignore-probes`.
        let mut s = Scanner::default();
        assert!(!s.closed(true));
        assert!(s.closed(false));
        assert_eq!(Vec::from(s.verdicts), [Verdict::Closed]);
        assert!(Verdict::Closed.is_probe() && Verdict::Closed.stands_in());
        // Once answered, or once any byte came (a head begun, or a kept-alive connection between
        // requests), a close is not a probe.
        let mut s = Scanner::default();
        assert!(s.closed(false));
        assert!(!s.closed(false));
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert!(!s.closed(false));
        // Within a head: a 400 either way, not a probe.
        let mut s = Scanner::default();
        s.feed(b"GET / HTTP/1.1\r\n\r\nGET / HT");
        assert!(s.closed(true));
        assert_eq!(Vec::from(s.verdicts), [Verdict::Ok, Verdict::Cut]);
        assert!(Verdict::Cut.stands_in() && !Verdict::Cut.is_probe());
    }

    #[tokio::test]
    async fn the_guard_hands_hyper_a_stand_in_when_a_new_connection_closes_unless_probes_are_ignored() {
        use tokio::io::AsyncReadExt;
        for ignore in [false, true] {
            let v = Arc::new(Verdicts::new(head_limit(DEFAULT_BUFSIZE), ignore));
            let mut g = Guard::new(&b""[..], v.clone());
            let mut got = Vec::new();
            // The stand-in is followed by a wait (hyper answers it and closes): bounded here.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), g.read_to_end(&mut got)).await;
            if ignore {
                assert!(got.is_empty());
                assert_eq!(v.next(), Verdict::Ok, "nothing queued");
            } else {
                assert_eq!(got, STAND_IN);
                assert_eq!(v.next(), Verdict::Closed);
            }
        }
        // A silent connection's timer: Silent (a 408), and asking again while it is due says so.
        let v = Verdicts::new(head_limit(DEFAULT_BUFSIZE), false);
        assert!(v.time_out() && v.time_out());
        assert_eq!(v.next(), Verdict::Silent);
        assert!(!Verdicts::new(head_limit(DEFAULT_BUFSIZE), true).time_out());
    }

    #[test]
    fn a_refused_head_never_reaches_hyper_and_nothing_after_it_does() {
        let ok = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let smuggle = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n";
        let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{fields}\r\n").into_bytes();
        for (bad, verdict) in [
            (&smuggle[..], Verdict::Bad("both Content-Length and Transfer-Encoding")),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", Verdict::Bad("malformed request head")),
            (b"G\x01T / HTTP/1.1\r\n\r\n", Verdict::Bad("malformed request head")),
            (&many[..], Verdict::TooLarge),
        ] {
            let input = [&ok[..], bad].concat();
            let want = [&ok[..], STAND_IN].concat();
            for cut in 0..input.len() {
                assert_eq!(handed_on(&input, &[cut]), want, "{:?} split at {cut}", String::from_utf8_lossy(bad));
            }
            let mut s = Scanner::default();
            s.feed(&input);
            assert_eq!(Vec::from(s.verdicts), [Verdict::Ok, verdict]);
        }
        // A head that never ends is refused at the limit, with what came so far held back.
        let mut s = Scanner::new(100);
        assert_eq!(s.feed(b"GET / HTTP/1.1\r\nX: "), Some(vec![]));
        assert_eq!(s.feed(&[b'y'; 100]), Some(vec![Seg::StandIn]));
        assert_eq!(s.feed(b"\r\n\r\n"), Some(vec![]));
        assert_eq!(Vec::from(s.verdicts), [Verdict::TooLarge]);
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
        assert_eq!(verdicts(&req("10000000000000004")), [Verdict::BadBody]);
    }

    #[test]
    fn heads_judged_in_place_get_the_verdict_of_the_general_path() {
        // A whole head in one read is judged in place (`head_bytes`); `verdicts` compares that with
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
        let bad = [Verdict::BadBody];
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
