//! One check of one server: TCP connect, HTTP request, or external command. No retries and no
//! hysteresis here; the scheduler feeds the result to the rise/fall counter.

use super::external;
use super::http::{self, Progress};
use super::spec::{CheckKind, CheckSpec, HttpCheck};
use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Connection counts of the checked server, handed to external checks (HAProxy's
/// `HAPROXY_SERVER_MAXCONN`/`CURCONN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerLoad {
    /// 0 means unlimited, as HAProxy prints it.
    pub maxconn: u32,
    pub curconn: u64,
}

/// A passed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOk {
    /// HAProxy's wording: "Layer4 check passed", "Layer7 check passed", "External check passed".
    pub detail: &'static str,
    /// The HTTP status of a Layer7 check.
    pub status: Option<u16>,
    pub duration: Duration,
}

impl fmt::Display for ProbeOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail)?;
        if let Some(code) = self.status {
            write!(f, ", code {code}")?;
        }
        Ok(())
    }
}

/// A failed check; `Display` is the reason logged and shown on the stats page, worded like
/// HAProxy's check status descriptions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("Layer4 connection refused")]
    L4Refused,
    #[error("Layer4 timeout")]
    L4Timeout,
    #[error("Layer4 connection problem, info: {detail}")]
    L4Error { detail: String },
    #[error("Layer7 timeout")]
    L7Timeout,
    #[error("Layer7 response error, info: {detail}")]
    L7ResponseError { detail: String },
    #[error("Layer7 invalid response, info: {detail}")]
    L7InvalidResponse { detail: String },
    #[error("Layer7 wrong status {status}")]
    L7WrongStatus { status: u16 },
    #[error("Layer7 wrong content, code {status}, expect {expect} failed")]
    L7ContentMismatch { status: u16, expect: String },
    #[error("External check error, code {code}")]
    ExternalCode { code: i32 },
    #[error("External check error, killed by signal {signal}")]
    ExternalSignal { signal: i32 },
    #[error("External check timeout")]
    ExternalTimeout,
    #[error("External check error, info: {detail}")]
    ExternalError { detail: String },
}

/// One check with no load figures (external checks then see 0 connections).
pub async fn probe(spec: &CheckSpec) -> Result<ProbeOk, ProbeError> {
    probe_with(spec, ServerLoad::default()).await
}

/// One check. TCP and HTTP checks are bounded by `spec.timeout` as a whole; an external check by
/// its own timeout.
pub async fn probe_with(spec: &CheckSpec, load: ServerLoad) -> Result<ProbeOk, ProbeError> {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let (detail, status) = match &spec.kind {
        CheckKind::Tcp => {
            connect(spec.addr, deadline).await?;
            ("Layer4 check passed", None)
        }
        CheckKind::Http(check) => {
            let status = http_check(spec, check, deadline).await?;
            ("Layer7 check passed", Some(status))
        }
        CheckKind::External(ext) => {
            external::run(spec, ext, load).await?;
            ("External check passed", None)
        }
    };
    Ok(ProbeOk { detail, status, duration: started.elapsed() })
}

async fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, ProbeError> {
    let stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err(ProbeError::L4Timeout),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            return Err(ProbeError::L4Refused);
        }
        Ok(Err(e)) => {
            return Err(ProbeError::L4Error { detail: e.to_string() });
        }
        Ok(Ok(s)) => s,
    };
    // Close with a reset, as HAProxy does: a thousand servers checked every second would otherwise
    // leave tens of thousands of TIME_WAIT sockets on our side.
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(%addr, error = %e, "cannot set SO_LINGER on check socket");
    }
    // No TCP_NODELAY: a check writes its request once, so Nagle never delays it, and at a
    // thousand checks a second the extra system call shows.
    Ok(stream)
}

async fn http_check(spec: &CheckSpec, check: &HttpCheck, deadline: Instant) -> Result<u16, ProbeError> {
    let mut stream = connect(spec.addr, deadline).await?;
    let request = http::build_request(check, spec.host_header.as_deref(), spec.addr);
    match timeout_at(deadline, stream.write_all(&request)).await {
        Err(_) => return Err(ProbeError::L7Timeout),
        Ok(Err(e)) => {
            return Err(ProbeError::L4Error { detail: format!("sending the request: {e}") });
        }
        Ok(Ok(())) => {}
    }
    let head_only = check.method.eq_ignore_ascii_case("HEAD");
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(ProbeError::L7Timeout),
            Ok(Err(e)) => {
                return Err(ProbeError::L7ResponseError { detail: e.to_string() });
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return http::finish(check, &buf, head_only);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Progress::Done(result) = http::examine(check, &buf, head_only) {
            return result;
        }
        // `examine` decides before this can grow far past head and body limits.
        if buf.len() > http::MAX_HEAD + http::MAX_BODY + chunk.len() {
            return Err(ProbeError::L7InvalidResponse { detail: "response too large".into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::spec::Expect;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    fn spec(addr: SocketAddr, kind: CheckKind) -> CheckSpec {
        CheckSpec {
            kind,
            addr,
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(1),
            downinter: Duration::from_secs(3),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 3,
            spread_pct: 0,
            backend: "be".into(),
            server: "s1".into(),
            host_header: None,
        }
    }

    fn http(text: &str, expect: Option<&str>) -> CheckKind {
        let mut c = HttpCheck::from_haproxy(text).expect("check parses");
        if let Some(e) = expect {
            c.expect = Expect::parse(e).expect("expect parses");
        }
        CheckKind::Http(c)
    }

    /// Serves one connection: reads the request head, answers `response`, and then either closes
    /// or (with `linger`) keeps the connection open. Returns the request it saw.
    async fn serve_once(response: &'static [u8], linger: bool) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (seen_tx, seen_rx) = oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let written = sock.write_all(response).await.is_ok();
            seen_tx.send(String::from_utf8_lossy(&req).into_owned()).ok();
            if written && linger {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        (addr, seen_rx)
    }

    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    }

    #[tokio::test]
    async fn tcp_connect_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ok = probe(&spec(addr, CheckKind::Tcp)).await.expect("passes");
        assert_eq!(ok.to_string(), "Layer4 check passed");
        assert_eq!(ok.status, None);
        drop(listener);
    }

    #[tokio::test]
    async fn tcp_refused() {
        let addr = closed_port().await;
        let err = probe(&spec(addr, CheckKind::Tcp)).await.expect_err("refused");
        assert_eq!(err, ProbeError::L4Refused);
        assert_eq!(err.to_string(), "Layer4 connection refused");
    }

    #[tokio::test]
    async fn http_200_passes() {
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
        let ok = probe(&spec(addr, http("GET /health", None))).await.expect("passes");
        assert_eq!((ok.status, ok.to_string().as_str()), (Some(200), "Layer7 check passed, code 200"));
        let req = server.await.expect("server");
        assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
        assert!(req.contains("\r\nConnection: close\r\n") && req.contains("\r\nUser-Agent: lbha-health-check/"));
    }

    #[tokio::test]
    async fn http_500_is_wrong_status() {
        let (addr, _server) = serve_once(b"HTTP/1.1 500 Internal Server Error\r\n\r\n", false).await;
        let err = probe(&spec(addr, http("", None))).await.expect_err("fails");
        assert_eq!(err.to_string(), "Layer7 wrong status 500");
    }

    #[tokio::test]
    async fn http_expect_status() {
        let (addr, _server) = serve_once(b"HTTP/1.1 302 Found\r\n\r\n", false).await;
        let err = probe(&spec(addr, http("/", Some("status 200")))).await.expect_err("fails");
        assert_eq!(err, ProbeError::L7WrongStatus { status: 302 });
    }

    #[tokio::test]
    async fn http_expect_string_with_server_keeping_the_connection() {
        // The server ignores `Connection: close`: the body framing must end the read, not the
        // timeout.
        let (addr, _server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nstatus: healthy", true).await;
        let mut s = spec(addr, http("GET /s HTTP/1.1", Some("string healthy")));
        s.timeout = Duration::from_secs(3);
        let ok = probe(&s).await.expect("passes");
        assert!(ok.duration < Duration::from_secs(2), "{:?}", ok.duration);

        let (addr, _server) = serve_once(b"HTTP/1.1 200 OK\r\n\r\nstatus: degraded", false).await;
        let err = probe(&spec(addr, http("GET /s", Some("string healthy")))).await.expect_err("fails");
        assert_eq!(err.to_string(), "Layer7 wrong content, code 200, expect string \"healthy\" failed");
    }

    #[tokio::test]
    async fn http_timeout_when_server_never_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let mut s = spec(addr, http("", None));
        s.timeout = Duration::from_millis(200);
        let err = probe(&s).await.expect_err("times out");
        assert_eq!(err.to_string(), "Layer7 timeout");
        hold.abort();
    }

    #[tokio::test]
    async fn tcp_timeout_when_accept_queue_is_full() {
        // Linux drops SYNs to a listener whose accept queue is full, so the connect hangs.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let mut held = Vec::new();
        for _ in 0..4 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(c)) => held.push(c),
                _ => break,
            }
        }
        let mut s = spec(addr, CheckKind::Tcp);
        s.timeout = Duration::from_millis(200);
        assert_eq!(probe(&s).await, Err(ProbeError::L4Timeout));
        drop((held, listener));
    }

    #[tokio::test]
    async fn head_check_sends_the_seed_host_header() {
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true).await;
        let check = http(r"HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com", None);
        let ok = probe(&spec(addr, check)).await.expect("passes");
        assert_eq!(ok.status, Some(200));
        let req = server.await.expect("server");
        assert!(req.starts_with("HEAD /index.jsp HTTP/1.1\r\nHost: www.xxx.com\r\n"), "{req}");
    }

    #[tokio::test]
    async fn host_header_setting_is_used() {
        let (addr, server) = serve_once(b"HTTP/1.0 204 No Content\r\n\r\n", false).await;
        let mut s = spec(addr, http("GET /ping HTTP/1.1", None));
        s.host_header = Some("app.internal".into());
        probe(&s).await.expect("passes");
        let req = server.await.expect("server");
        assert!(req.contains("\r\nHost: app.internal\r\n"), "{req}");
    }

    #[tokio::test]
    async fn closed_without_answer_is_a_response_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _read = sock.read(&mut buf).await;
            }
        });
        let err = probe(&spec(addr, http("", None))).await.expect_err("fails");
        assert!(err.to_string().starts_with("Layer7 response error"), "{err}");
    }

    #[tokio::test]
    async fn non_http_answer_is_invalid() {
        let (addr, _server) = serve_once(b"SSH-2.0-OpenSSH_9.6\r\n", true).await;
        let err = probe(&spec(addr, http("", None))).await.expect_err("fails");
        assert!(err.to_string().starts_with("Layer7 invalid response"), "{err}");
    }
}
