//! Error answers as HAProxy 2.6 sends them: its built-in pages byte for byte (status line,
//! `content-length`, `cache-control: no-cache`, `content-type`, body), and the operator's own from
//! `errorfile`, `errorloc*` and `http-error`, chosen backend first, then frontend, then built-in.
//!
//! Pure: files are read by config validation, which hands their bytes to [`Reply::parse_raw`].

use super::body::{BoxError, ProxyBody, full};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, Version, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The codes HAProxy 2.6 has built-in pages for, and the only ones `errorfile` and `http-error`
/// may replace.
pub const CODES: [u16; 13] = [400, 403, 404, 405, 408, 410, 425, 429, 500, 501, 502, 503, 504];

/// HAProxy's reason phrase and body for a built-in page; lbha's own for 414 and 431, which
/// HAProxy answers with 400.
fn builtin_text(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => (
            "Bad request",
            "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
        ),
        401 => (
            "Unauthorized",
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
        ),
        413 => (
            "Payload Too Large",
            "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n",
        ),
        403 => (
            "Forbidden",
            "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n",
        ),
        404 => ("Not Found", "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n"),
        405 => (
            "Method Not Allowed",
            "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource\n</body></html>\n",
        ),
        408 => (
            "Request Time-out",
            "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n",
        ),
        410 => (
            "Gone",
            "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n",
        ),
        414 => {
            ("URI Too Long", "<html><body><h1>414 URI Too Long</h1>\nThe request line is too long.\n</body></html>\n")
        }
        425 => ("Too Early", "<html><body><h1>425 Too Early</h1>\nYour browser sent early data.\n</body></html>\n"),
        429 => (
            "Too Many Requests",
            "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n",
        ),
        431 => (
            "Request Header Fields Too Large",
            "<html><body><h1>431 Request Header Fields Too Large</h1>\nThe request header section is too large.\n</body></html>\n",
        ),
        500 => (
            "Internal Server Error",
            "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n",
        ),
        501 => (
            "Not Implemented",
            "<html><body><h1>501 Not Implemented</h1>\n.The server does not support the functionality required to fulfill the request.\n</body></html>\n",
        ),
        502 => (
            "Bad Gateway",
            "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
        ),
        503 => (
            "Service Unavailable",
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        ),
        504 => (
            "Gateway Time-out",
            "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
        ),
        _ => ("", "<html><body><h1>Error</h1>\nThe request could not be served.\n</body></html>\n"),
    }
}

/// One ready answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    /// The reason phrase when it is not hyper's canonical one ("Bad request", "Gateway Time-out").
    pub reason: Option<Bytes>,
    /// HTTP/1.0 when an errorfile says so: HAProxy keeps the file's version.
    pub version: Version,
    /// In the order they are sent; `content-length` among them when the length is known.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// The client connection closes after it (the page says `Connection: close`, or has no length).
    pub close: bool,
    /// No length: the body ends when the connection does, as HAProxy sends such an errorfile.
    pub no_length: bool,
    /// `http-error ... lf-string|lf-file`: the body, rendered per request in place of `body`.
    pub lf_body: Option<LfBody>,
    /// `http-error ... hdr NAME FMT` with a log-format value: rendered per request and put
    /// before `headers[at]` (HAProxy leaves a header out when its value renders empty).
    pub lf_headers: Vec<LfHeader>,
}

/// One header whose value is a log-format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfHeader {
    pub at: usize,
    pub name: HeaderName,
    pub value: LfBody,
}

/// A log-format body; two are the same when they are the same parsed format.
#[derive(Debug, Clone)]
pub struct LfBody(pub Arc<crate::log::compiled::LineFormat>);

impl PartialEq for LfBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LfBody {}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Reply {
    /// HAProxy's built-in page. 400 and 408 close the connection, as their HAProxy text says.
    pub fn builtin(code: u16) -> Reply {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (reason, body) = builtin_text(code);
        let reason = (!reason.is_empty() && status.canonical_reason() != Some(reason)).then(|| Bytes::from(reason));
        Reply {
            status,
            reason,
            version: Version::HTTP_11,
            headers: vec![
                (header::CONTENT_LENGTH, HeaderValue::from(body.len())),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html")),
            ],
            body: Bytes::from_static(body.as_bytes()),
            close: matches!(code, 400 | 408),
            no_length: false,
            lf_body: None,
            lf_headers: Vec::new(),
        }
    }

    /// `errorloc302`/`errorloc303 CODE URL` (`errorloc` is 302): a redirect sent for `CODE`.
    pub fn location(redirect: u16, url: &str) -> Result<Reply, String> {
        let loc = HeaderValue::from_str(url).map_err(|_| format!("invalid location {url:?}"))?;
        Ok(Reply {
            status: StatusCode::from_u16(redirect).map_err(|_| format!("bad redirect status {redirect}"))?,
            reason: None,
            version: Version::HTTP_11,
            headers: vec![
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (header::CONTENT_LENGTH, HeaderValue::from_static("0")),
                (header::LOCATION, loc),
            ],
            body: Bytes::new(),
            close: false,
            no_length: false,
            lf_body: None,
            lf_headers: Vec::new(),
        })
    }

    /// `http-error status CODE [content-type T] [string S|file F] [hdr N V]...`: the extra
    /// headers first, then `content-length` and `content-type`, as HAProxy sends them.
    pub fn custom(code: u16, content_type: Option<&str>, body: Bytes, extra: Vec<(HeaderName, HeaderValue)>) -> Reply {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = extra;
        if !body.is_empty() || content_type.is_some() {
            headers.push((header::CONTENT_LENGTH, HeaderValue::from(body.len())));
        } else {
            headers.push((header::CONTENT_LENGTH, HeaderValue::from_static("0")));
        }
        if let Some(ct) = content_type {
            headers.push((header::CONTENT_TYPE, hv(ct)));
        }
        // HAProxy's own reason phrase for the code (`http_get_reason`) where it is not the usual one.
        let reason = (code == 502).then(|| Bytes::from_static(b"Bad Gateway or Proxy Error"));
        Reply {
            status,
            reason,
            version: Version::HTTP_11,
            headers,
            body,
            close: false,
            no_length: false,
            lf_body: None,
            lf_headers: Vec::new(),
        }
    }

    /// An `errorfile`: a complete HTTP/1 response, checked as HAProxy checks it at load (a
    /// response status line, parseable headers, a body that matches `Content-Length`, no
    /// chunking, the whole within `bufsize`).
    pub fn parse_raw(raw: &[u8], bufsize: usize) -> Result<Reply, String> {
        if raw.len() > bufsize {
            return Err(format!("{} bytes, larger than the buffer (tune_bufsize {bufsize})", raw.len()));
        }
        let mut fields = [httparse::EMPTY_HEADER; 101];
        let mut r = httparse::Response::new(&mut fields);
        let head_len = match r.parse(raw) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err("incomplete header section (no empty line after it)".into()),
            Err(e) => return Err(format!("unable to parse the response head: {e}")),
        };
        let code = r.code.unwrap_or(0);
        let status = StatusCode::from_u16(code).map_err(|_| format!("invalid status {code}"))?;
        let version = if r.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        let reason = r.reason.unwrap_or("");
        let reason = (status.canonical_reason() != Some(reason)).then(|| Bytes::copy_from_slice(reason.as_bytes()));
        let body = Bytes::copy_from_slice(&raw[head_len..]);
        let mut headers = Vec::new();
        let (mut close, mut length) = (false, None);
        for h in r.headers.iter() {
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| format!("invalid header name {:?}", h.name))?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| format!("invalid value of {}", h.name))?;
            if name == header::CONNECTION {
                close |= value.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
                continue;
            }
            if name == header::TRANSFER_ENCODING {
                return Err("chunked errorfiles are not supported (HAProxy refuses them too)".into());
            }
            if name == header::CONTENT_LENGTH {
                let n: usize = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("invalid content-length {:?}", String::from_utf8_lossy(h.value)))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting content-length fields".into());
                }
                if length.is_some() {
                    continue;
                }
                length = Some(n);
            }
            headers.push((name, value));
        }
        if let Some(n) = length
            && n != body.len()
        {
            return Err(format!("payload size does not match the announced content-length ({} != {n})", body.len()));
        }
        let no_length = length.is_none();
        Ok(Reply {
            status,
            reason,
            version,
            headers,
            body,
            close: close || no_length,
            no_length,
            lf_body: None,
            lf_headers: Vec::new(),
        })
    }

    pub fn response(&self) -> Response<ProxyBody> {
        let body = if self.no_length {
            Once { data: Some(self.body.clone()), exact: false }.boxed_unsync()
        } else if self.body.is_empty() {
            // hyper moves the `content-length: 0` of an ended body to the end of the head.
            Once { data: None, exact: true }.boxed_unsync()
        } else {
            full(self.body.clone())
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        *r.version_mut() = self.version;
        if let Some(reason) = &self.reason
            && let Ok(p) = hyper::ext::ReasonPhrase::try_from(reason.clone())
        {
            r.extensions_mut().insert(p);
        }
        let h = r.headers_mut();
        for (n, v) in &self.headers {
            h.append(n.clone(), v.clone());
        }
        // An HTTP/1.0 answer closes without saying so, as HAProxy sends it.
        if self.close && self.version == Version::HTTP_11 {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// At most one chunk, so hyper writes the head as given: of unknown length (`exact` false: an
/// errorfile without `Content-Length`, ended by closing) or empty but not yet ended (`exact`:
/// hyper keeps `content-length: 0` where it is).
struct Once {
    data: Option<Bytes>,
    exact: bool,
}

impl http_body::Body for Once {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.data.take().map(|b| Ok(Frame::data(b))))
    }
    fn is_end_stream(&self) -> bool {
        false
    }
    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
        } else {
            SizeHint::default()
        }
    }
}

/// One proxy's replacements, by status code (from `errorfile`, `errorloc*`, `errorfiles`,
/// `http-error`, its own lines over those of `defaults`).
#[derive(Debug, Clone, Default)]
pub struct ErrorPages {
    pages: Vec<(u16, Arc<Reply>)>,
    /// Some page renders its body per request (the request's record must be kept for it).
    lf: bool,
}

impl ErrorPages {
    pub fn get(&self, code: u16) -> Option<&Reply> {
        self.pages.iter().find(|(c, _)| *c == code).map(|(_, r)| &**r)
    }
    /// Sets the page for `code`, replacing an earlier one (a later line wins, as in HAProxy).
    pub fn set(&mut self, code: u16, reply: Reply) {
        self.lf |= reply.lf_body.is_some() || !reply.lf_headers.is_empty();
        self.pages.retain(|(c, _)| *c != code);
        self.pages.push((code, Arc::new(reply)));
    }
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
    pub fn has_lf(&self) -> bool {
        self.lf
    }
    pub fn codes(&self) -> Vec<u16> {
        self.pages.iter().map(|(c, _)| *c).collect()
    }
}

/// Marks a built-in page the proxy made (`errors::page`), so [`customize`] can put the
/// operator's page for its code in its place; `close` says whether lbha closes after it anyway.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub code: u16,
    pub close: bool,
}

/// Marks an answer made after backend `0` was chosen: its pages come first.
#[derive(Debug, Clone, Copy)]
pub struct AtBackend(pub usize);

/// Replaces a built-in page by the proxy's own for its code, if it has one. The connection
/// closes if lbha meant to close it or the page says so. `t`: the exchange, whose record and
/// stream an `lf` page renders over.
pub fn customize(resp: Response<ProxyBody>, t: &super::rules::Txn<'_>) -> Response<ProxyBody> {
    let (snap, fi, rec) = (&t.active.snap, t.frontend, t.log);
    let Some(b) = resp.extensions().get::<Builtin>().copied() else { return resp };
    let be = resp.extensions().get::<AtBackend>().and_then(|a| snap.backends.get(a.0)).map(|b| &b.errors);
    let fe = snap.frontends.get(fi).map(|f| &f.errors);
    if be.is_none_or(|p| p.get(b.code).is_none()) && fe.is_none_or(|p| p.get(b.code).is_none()) {
        return resp;
    }
    let closing = b.close || resp.headers().get(header::CONNECTION).is_some_and(|v| v.as_bytes() == b"close");
    let mut reply = choose(be, fe, b.code);
    reply.close |= closing;
    // Rendered over the request as the log sees it (`%ci`, `%ID`, ...) and the stream as its
    // rules do (`%[var(txn.x)]`, `%[ssl_fc_sni]`, ...).
    let maps = &**t.cx.proxy.maps.store.load();
    let render = |lf: &crate::log::compiled::LineFormat| {
        let Some(h) = rec else { return Vec::new() };
        let rec = h.lock();
        let ctx = super::sample_ctx::StreamCtx::logged(t.cx, t.active, fi, t.backend, Some(t.vars), &rec);
        let mut out = Vec::new();
        lf.render_with(&mut out, &rec, &ctx, maps);
        out
    };
    if let Some(lf) = reply.lf_body.take() {
        let body = render(&lf.0);
        set_length(&mut reply.headers, body.len());
        reply.body = Bytes::from(body);
    }
    // Last first, so the earlier positions still hold.
    for h in std::mem::take(&mut reply.lf_headers).into_iter().rev() {
        let value = render(&h.value.0);
        if let Ok(v) = HeaderValue::from_bytes(&value)
            && !value.is_empty()
        {
            reply.headers.insert(h.at.min(reply.headers.len()), (h.name, v));
        }
    }
    let (parts, _) = resp.into_parts();
    let mut out = reply.response();
    out.extensions_mut().extend(parts.extensions);
    out
}

fn set_length(headers: &mut [(HeaderName, HeaderValue)], len: usize) {
    for (n, v) in headers.iter_mut() {
        if *n == header::CONTENT_LENGTH {
            *v = HeaderValue::from(len);
        }
    }
}

/// The answer for `code`: the backend's page once a backend is chosen, else the frontend's,
/// else the built-in one (HAProxy's `http_error_message`).
pub fn choose(backend: Option<&ErrorPages>, frontend: Option<&ErrorPages>, code: u16) -> Reply {
    backend
        .and_then(|b| b.get(code))
        .or_else(|| frontend.and_then(|f| f.get(code)))
        .cloned()
        .unwrap_or_else(|| Reply::builtin(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head hyper would write, minus its date: what the tests compare with HAProxy.
    fn head(r: &Reply) -> String {
        let mut s = format!(
            "{:?} {} {}\r\n",
            r.version,
            r.status.as_u16(),
            r.reason.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_else(|| r
                .status
                .canonical_reason()
                .unwrap_or("")
                .into())
        );
        for (n, v) in &r.headers {
            s += &format!("{n}: {}\r\n", v.to_str().unwrap());
        }
        s
    }

    #[test]
    fn builtin_pages_are_haproxys() {
        assert_eq!(
            head(&Reply::builtin(503)),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n"
        );
        assert_eq!(head(&Reply::builtin(400)).lines().next().unwrap(), "HTTP/1.1 400 Bad request");
        assert_eq!(head(&Reply::builtin(504)).lines().next().unwrap(), "HTTP/1.1 504 Gateway Time-out");
        assert_eq!(head(&Reply::builtin(408)).lines().next().unwrap(), "HTTP/1.1 408 Request Time-out");
        let lengths = [90, 93, 83, 146, 110, 114, 80, 117, 97, 136, 107, 107, 92];
        for (code, len) in CODES.iter().zip(lengths) {
            let r = Reply::builtin(*code);
            assert_eq!(r.body.len(), len, "{code}");
            assert_eq!(r.close, matches!(code, 400 | 408), "{code}");
        }
    }

    #[test]
    fn errorfiles_are_checked_like_haproxy() {
        let r = Reply::parse_raw(
            b"HTTP/1.1 403 Nope\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope\n",
            16384,
        )
        .unwrap();
        assert_eq!(head(&r), "HTTP/1.1 403 Nope\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n");
        assert!(!r.close && !r.no_length);
        let r = Reply::parse_raw(b"HTTP/1.0 503 Down\r\nConnection: close\r\nX-A: 1\r\n\r\ndown\n", 16384).unwrap();
        assert_eq!(head(&r), "HTTP/1.0 503 Down\r\nx-a: 1\r\n");
        assert!(r.close && r.no_length);
        let e = Reply::parse_raw(b"HTTP/1.1 403 Nope\r\nContent-Length: 9\r\n\r\nnope\n", 16384).unwrap_err();
        assert!(e.contains("5 != 9"), "{e}");
        assert!(Reply::parse_raw(b"garbage\n", 16384).is_err());
        assert!(Reply::parse_raw(b"HTTP/1.1 200 OK\r\nX: y\r\n", 16384).unwrap_err().contains("incomplete"));
        assert!(Reply::parse_raw(&[b'x'; 100], 50).unwrap_err().contains("tune_bufsize"));
        assert!(Reply::parse_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 16384).is_err());
    }

    #[test]
    fn locations_and_http_error_keep_haproxys_header_order() {
        assert_eq!(
            head(&Reply::location(302, "http://x.example/nf").unwrap()),
            "HTTP/1.1 302 Found\r\ncache-control: no-cache\r\ncontent-length: 0\r\nlocation: http://x.example/nf\r\n"
        );
        let extra = vec![(HeaderName::from_static("x-y"), HeaderValue::from_static("z"))];
        assert_eq!(
            head(&Reply::custom(500, Some("text/plain"), Bytes::from("boom"), extra)),
            "HTTP/1.1 500 Internal Server Error\r\nx-y: z\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n"
        );
    }

    #[test]
    fn backend_pages_win_over_frontend_pages() {
        let mut fe = ErrorPages::default();
        let mut be = ErrorPages::default();
        fe.set(503, Reply::location(302, "/fe").unwrap());
        be.set(503, Reply::location(303, "/be").unwrap());
        assert_eq!(choose(Some(&be), Some(&fe), 503).status, 303);
        assert_eq!(choose(None, Some(&fe), 503).status, 302);
        assert_eq!(choose(Some(&be), Some(&fe), 403), Reply::builtin(403));
        fe.set(503, Reply::builtin(500));
        assert_eq!(fe.codes(), vec![503]);
    }
}
