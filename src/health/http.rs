//! The HTTP check's wire format, without I/O: the request bytes and an incremental reading of the
//! response that stops as soon as the expect rule can be decided.

use super::probe::ProbeError;
use super::spec::{HttpCheck, HttpVersion};
use std::net::SocketAddr;

/// Longest status line plus headers accepted from a checked server.
pub const MAX_HEAD: usize = 16 * 1024;
/// How much body an `expect string` looks at (HAProxy checks a bounded buffer too).
pub const MAX_BODY: usize = 16 * 1024;

const USER_AGENT: &str = concat!("lbha-health-check/", env!("CARGO_PKG_VERSION"));

/// The request: the check's line and headers, then `Host`, `User-Agent` and `Connection: close`
/// unless the check text set them. Host comes from the check text, else `host_header`, else
/// (HTTP/1.1 requires one) the target address.
pub fn build_request(check: &HttpCheck, host_header: Option<&str>, addr: SocketAddr) -> Vec<u8> {
    let mut req = format!("{} {} {}\r\n", check.method, check.uri, check.version);
    for (name, value) in &check.headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if check.header("host").is_none() {
        match host_header {
            Some(h) => req.push_str(&format!("Host: {h}\r\n")),
            None if check.version == HttpVersion::Http11 => req.push_str(&format!("Host: {addr}\r\n")),
            None => {}
        }
    }
    if check.header("user-agent").is_none() {
        req.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if check.header("connection").is_none() {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// What has been read so far says.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Read more (or, at end of stream, call [`finish`]).
    NeedMore,
    /// The check is decided.
    Done(Result<u16, ProbeError>),
}

/// Looks at the bytes read so far. `head_only` is set for HEAD requests, whose responses have
/// no body.
pub fn examine(check: &HttpCheck, buf: &[u8], head_only: bool) -> Progress {
    let status = match status_line(buf) {
        Ok(Some(s)) => s,
        Ok(None) if buf.len() > MAX_HEAD => {
            return Progress::Done(Err(invalid("status line too long")));
        }
        Ok(None) => return Progress::NeedMore,
        Err(e) => return Progress::Done(Err(e)),
    };
    if check.disable_on_404 && status == 404 {
        return Progress::Done(Ok(404));
    }
    if let Some(ok) = check.expect.status_ok(status) {
        return Progress::Done(verdict_status(ok, status));
    }
    let Some(head_end) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Progress::Done(Err(invalid("headers too long")));
        }
        return Progress::NeedMore;
    };
    let framing = framing(&buf[..head_end], status, head_only);
    let raw = &buf[head_end..];
    match body(framing, raw) {
        Some(body) => Progress::Done(verdict_body(check, status, &body)),
        None => Progress::NeedMore,
    }
}

/// Decides at end of stream, with whatever arrived.
pub fn finish(check: &HttpCheck, buf: &[u8], head_only: bool) -> Result<u16, ProbeError> {
    if let Progress::Done(r) = examine(check, buf, head_only) {
        return r;
    }
    if buf.is_empty() {
        return Err(ProbeError::L7ResponseError { detail: "connection closed without a response".into() });
    }
    let status = match status_line(buf) {
        Ok(Some(s)) => s,
        _ => return Err(invalid("truncated status line")),
    };
    let Some(head_end) = head_end(buf) else {
        return Err(ProbeError::L7ResponseError { detail: "connection closed inside the headers".into() });
    };
    let raw = &buf[head_end..];
    let body = match framing(&buf[..head_end], status, head_only) {
        Framing::Chunked => dechunk(raw).0,
        _ => raw[..raw.len().min(MAX_BODY)].to_vec(),
    };
    verdict_body(check, status, &body)
}

fn invalid(detail: &str) -> ProbeError {
    ProbeError::L7InvalidResponse { detail: detail.to_string() }
}

fn verdict_status(ok: bool, status: u16) -> Result<u16, ProbeError> {
    if ok { Ok(status) } else { Err(ProbeError::L7WrongStatus { status }) }
}

fn verdict_body(check: &HttpCheck, status: u16, body: &[u8]) -> Result<u16, ProbeError> {
    match check.expect.body_ok(body) {
        Some(true) => Ok(status),
        Some(false) => Err(ProbeError::L7ContentMismatch { status, expect: check.expect.to_string() }),
        // Not a body rule: the status decided earlier; kept total for safety.
        None => verdict_status(check.expect.status_ok(status).unwrap_or(false), status),
    }
}

/// `Ok(None)` until a whole line is there; `HTTP/1.x NNN [reason]`.
pub(super) fn status_line(buf: &[u8]) -> Result<Option<u16>, ProbeError> {
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        // Reject early when the first bytes cannot start an HTTP response.
        let n = buf.len().min(5);
        if buf[..n] != b"HTTP/"[..n] {
            return Err(invalid("not an HTTP response"));
        }
        return Ok(None);
    };
    let line = buf[..eol].strip_suffix(b"\r").unwrap_or(&buf[..eol]);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let version_ok = version.len() == 8
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    if !version_ok {
        return Err(invalid("bad HTTP version in status line"));
    }
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(invalid("bad status code"));
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(invalid("bad status code"));
    }
    Ok(Some(status))
}

/// Offset just after the blank line ending the headers.
pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

pub(super) fn framing(head: &[u8], status: u16, head_only: bool) -> Framing {
    if head_only || status < 200 || status == 204 || status == 304 {
        return Framing::Length(0);
    }
    let text = String::from_utf8_lossy(head);
    let mut framing = Framing::UntilClose;
    for line in text.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                return Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("content-length")
            && let Ok(n) = value.parse()
        {
            framing = Framing::Length(n);
        }
    }
    framing
}

/// The body once it is complete or long enough to judge; `None` to read more.
fn body(framing: Framing, raw: &[u8]) -> Option<Vec<u8>> {
    match framing {
        Framing::Length(n) if raw.len() >= n.min(MAX_BODY) => Some(raw[..n.min(MAX_BODY)].to_vec()),
        Framing::Chunked => {
            let (body, complete) = dechunk(raw);
            (complete || body.len() >= MAX_BODY).then(|| body[..body.len().min(MAX_BODY)].to_vec())
        }
        Framing::UntilClose if raw.len() >= MAX_BODY => Some(raw[..MAX_BODY].to_vec()),
        _ => None,
    }
}

/// Decodes the chunks present; `true` once the last (zero) chunk was seen. Malformed input ends
/// decoding where it stands, and the rule is judged on what was decoded.
pub(super) fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.iter().position(|&b| b == b'\n') else {
            return (out, false);
        };
        let size_line = String::from_utf8_lossy(&raw[..eol]);
        let size_hex = size_line.trim().split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let data = &raw[eol + 1..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || out.len() >= MAX_BODY {
            return (out, false);
        }
        // Skip the CRLF after the chunk data.
        let rest = &data[size..];
        raw = rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")).unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::spec::Expect;

    fn check(text: &str, expect: Option<&str>) -> HttpCheck {
        let mut c = HttpCheck::from_haproxy(text).expect("check text parses");
        if let Some(e) = expect {
            c.expect = Expect::parse(e).expect("expect parses");
        }
        c
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }

    #[test]
    fn disable_on_404_passes_a_404_whatever_the_expect_rule() {
        let mut c = check("GET /health", Some("status 200"));
        let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(examine(&c, resp, false), Progress::Done(Err(ProbeError::L7WrongStatus { status: 404 })));
        c.disable_on_404 = true;
        assert_eq!(examine(&c, resp, false), Progress::Done(Ok(404)));
        // Other failures still fail.
        assert_eq!(
            examine(&c, b"HTTP/1.1 500 X\r\n\r\n", false),
            Progress::Done(Err(ProbeError::L7WrongStatus { status: 500 }))
        );
    }

    #[test]
    fn request_for_bare_httpchk() {
        let req = String::from_utf8(build_request(&check("", None), None, addr())).expect("utf8");
        assert_eq!(req, format!("OPTIONS / HTTP/1.0\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn request_host_precedence() {
        let seed = check(r"HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com", None);
        let req = String::from_utf8(build_request(&seed, Some("other"), addr())).expect("utf8");
        assert!(req.starts_with("HEAD /index.jsp HTTP/1.1\r\nHost: www.xxx.com\r\n"), "{req}");
        assert_eq!(req.matches("Host:").count(), 1);

        let plain11 = check("GET /x HTTP/1.1", None);
        let req = String::from_utf8(build_request(&plain11, Some("svc.local"), addr())).expect("utf8");
        assert!(req.contains("\r\nHost: svc.local\r\n"), "{req}");
        let req = String::from_utf8(build_request(&plain11, None, addr())).expect("utf8");
        assert!(req.contains("\r\nHost: 127.0.0.1:8080\r\n"), "{req}");

        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 80));
        let req = String::from_utf8(build_request(&plain11, None, v6)).expect("utf8");
        assert!(req.contains("\r\nHost: [::1]:80\r\n"), "{req}");
    }

    #[test]
    fn request_keeps_configured_connection_and_agent() {
        let c = check(r"GET / HTTP/1.1\r\nConnection:\ keep-alive\r\nUser-Agent:\ probe", None);
        let req = String::from_utf8(build_request(&c, None, addr())).expect("utf8");
        assert_eq!(req.matches("Connection:").count(), 1);
        assert!(req.contains("User-Agent: probe\r\n") && !req.contains(USER_AGENT));
    }

    #[test]
    fn status_decides_as_soon_as_the_line_is_complete() {
        let c = check("", None);
        assert_eq!(examine(&c, b"HTTP/1.1 20", false), Progress::NeedMore);
        assert_eq!(examine(&c, b"HTTP/1.1 200 OK\r\n", false), Progress::Done(Ok(200)));
        assert_eq!(examine(&c, b"HTTP/1.0 302\r\n", false), Progress::Done(Ok(302)));
        assert_eq!(
            examine(&c, b"HTTP/1.1 500 Internal Server Error\r\n", false),
            Progress::Done(Err(ProbeError::L7WrongStatus { status: 500 }))
        );
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        let c = check("", None);
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/x 200 OK\r\n",
            b"HTTP/1.1 099 x\r\n",
            b"<html>",
        ] {
            assert!(
                matches!(examine(&c, bad, false), Progress::Done(Err(ProbeError::L7InvalidResponse { .. }))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"HTTP/1.1 200 ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(examine(&c, &long, false), Progress::Done(Err(ProbeError::L7InvalidResponse { .. }))));
    }

    #[test]
    fn end_of_stream_cases() {
        let c = check("", None);
        assert!(matches!(finish(&c, b"", false), Err(ProbeError::L7ResponseError { .. })));
        assert!(matches!(finish(&c, b"HTTP/1.1 200", false), Err(ProbeError::L7InvalidResponse { .. })));
        let s = check("", Some("string OK"));
        assert!(matches!(finish(&s, b"HTTP/1.1 200 OK\r\nX: y", false), Err(ProbeError::L7ResponseError { .. })));
        assert_eq!(finish(&s, b"HTTP/1.1 200 OK\r\n\r\nall OK", false), Ok(200));
        assert!(matches!(finish(&s, b"HTTP/1.1 200 OK\r\n\r\nnope", false), Err(ProbeError::L7ContentMismatch { .. })));
    }

    #[test]
    fn string_rule_waits_for_the_framed_body() {
        let c = check("GET /", Some("string ready"));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(examine(&c, head, false), Progress::NeedMore);
        let full = [&head[..], b"I am ready"].concat();
        assert_eq!(examine(&c, &full, false), Progress::Done(Ok(200)));
        let wrong = [&head[..], b"not yet..."].concat();
        assert_eq!(
            examine(&c, &wrong, false),
            Progress::Done(Err(ProbeError::L7ContentMismatch { status: 200, expect: "string \"ready\"".into() }))
        );
    }

    #[test]
    fn string_rule_sees_through_chunks() {
        let c = check("GET /", Some("string ready"));
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nI am\r\n4;x=y\r\n rea\r\n2\r\ndy\r\n";
        assert_eq!(examine(&c, resp, false), Progress::NeedMore);
        let done = [&resp[..], b"0\r\n\r\n"].concat();
        assert_eq!(examine(&c, &done, false), Progress::Done(Ok(200)));
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), (b"abc".to_vec(), true));
        assert_eq!(dechunk(b"zz\r\nabc"), (Vec::new(), false));
    }

    #[test]
    fn head_and_bodyless_statuses_have_empty_bodies() {
        let c = check("HEAD /", Some("! string error"));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n";
        assert_eq!(examine(&c, head, true), Progress::Done(Ok(200)));
        assert_eq!(
            examine(&c, b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", false),
            Progress::Done(Ok(204))
        );
    }

    #[test]
    fn body_is_judged_on_the_first_16k() {
        let c = check("GET /", Some("string needle"));
        let mut resp = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        resp.extend(std::iter::repeat_n(b'x', MAX_BODY));
        assert!(matches!(examine(&c, &resp, false), Progress::Done(Err(ProbeError::L7ContentMismatch { .. }))));
    }
}
