//! One check of one server: TCP connect, HTTP request, or external command. No retries and no
//! hysteresis here; the scheduler feeds the result to the rise/fall counter.

use super::conn::{Lease, Outcome};
use super::external;
use super::http::{self, Progress};
use super::spec::{CheckKind, CheckSpec, HttpCheck};
use super::status::CheckStatus;
use crate::proxy::source::Source;
use socket2::Socket;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
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
    /// A `tcp-check`'s message ("(tcp-check)", `on-success`, "Redis server is ok").
    pub info: Option<String>,
    /// A `tcp-check`'s `status-code`.
    pub code: Option<i64>,
    /// Passed conditionally (`ok-status L7OKC`): the server leaves load balancing (NOLB).
    pub nolb: bool,
}

impl fmt::Display for ProbeOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail)?;
        if let Some(code) = self.status {
            write!(f, ", code {code}")?;
        }
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        if let Some(info) = &self.info {
            write!(f, ", info: {info}")?;
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
    #[error("Layer6 timeout")]
    L6Timeout,
    /// The TLS handshake of `check-ssl` failed.
    #[error("Layer6 invalid response, info: {detail}")]
    L6Response { detail: String },
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
    /// A `tcp-check` verdict: the status its rule chose (`error-status`, `tout-status`) and its
    /// message (`on-error`, or HAProxy's text).
    #[error("{}", status_text(*status, info, *code))]
    Status { status: CheckStatus, info: String, code: Option<i64> },
}

fn status_text(status: CheckStatus, info: &str, code: Option<i64>) -> String {
    let mut s = status.desc().to_string();
    if let Some(c) = code {
        s.push_str(&format!(", code {c}"));
    }
    if !info.is_empty() {
        s.push_str(", info: ");
        s.push_str(info);
    }
    s
}

/// One check with no load figures (external checks then see 0 connections).
pub async fn probe(spec: &CheckSpec) -> Result<ProbeOk, ProbeError> {
    probe_with(spec, ServerLoad::default()).await
}

/// One check. TCP and HTTP checks are bounded by `spec.timeout` as a whole; an external check by
/// its own timeout.
pub async fn probe_with(spec: &CheckSpec, load: ServerLoad) -> Result<ProbeOk, ProbeError> {
    Prober::new(spec).probe(spec, load).await
}

/// What every check of one server reuses: its socket (see [`conn`]), the HTTP request, built
/// once, and the response buffer.
#[derive(Debug, Default)]
pub struct Prober {
    sock: Option<Socket>,
    request: Vec<u8>,
    /// Where the HTTP request starts in `request` (after the PROXY header).
    request_at: usize,
    head_only: bool,
    buf: Vec<u8>,
    /// `http-check send-state` of a rule sequence: the header value for its requests.
    state: Option<String>,
}

impl Prober {
    pub fn new(spec: &CheckSpec) -> Self {
        match &spec.kind {
            CheckKind::Http(check) => Self {
                sock: None,
                request_at: spec.proxy_header.as_ref().map_or(0, Vec::len),
                request: [
                    spec.proxy_header.as_deref().unwrap_or_default(),
                    &http::build_request(check, spec.host_header.as_deref(), spec.addr),
                ]
                .concat(),
                head_only: check.method.eq_ignore_ascii_case("HEAD"),
                buf: Vec::new(),
                state: None,
            },
            _ => Self::default(),
        }
    }

    /// `http-check send-state`: the next requests carry `value` in HAProxy's header.
    pub fn set_server_state(&mut self, spec: &CheckSpec, value: String) {
        let CheckKind::Http(check) = &spec.kind else {
            self.state = Some(value);
            return;
        };
        let mut c = check.clone();
        c.headers.push((super::send_state::HEADER.to_string(), value));
        self.request = [
            spec.proxy_header.as_deref().unwrap_or_default(),
            &http::build_request(&c, spec.host_header.as_deref(), spec.addr),
        ]
        .concat();
    }

    /// One check of `spec`, the spec this prober was made for.
    pub async fn probe(&mut self, spec: &CheckSpec, load: ServerLoad) -> Result<ProbeOk, ProbeError> {
        let started = Instant::now();
        let deadline = started + spec.timeout;
        // Set once connected, so the one deadline can tell a Layer4 timeout from a Layer7 one.
        let connected = AtomicBool::new(false);
        let mut pass =
            ProbeOk { detail: "", status: None, duration: Duration::ZERO, info: None, code: None, nolb: false };
        (pass.detail, pass.status) = match &spec.kind {
            CheckKind::Seq(seq) => {
                let p = super::seq_io::run(spec, seq, &mut self.sock, deadline, self.state.as_deref()).await?;
                pass.info = p.info;
                pass.code = p.code;
                pass.nolb = p.status == CheckStatus::L7Okc;
                (p.status.desc(), None)
            }
            CheckKind::Tcp | CheckKind::Http(_) if let Some(tls) = &spec.tls => {
                let http = match &spec.kind {
                    CheckKind::Http(c) => Some((c, &self.request[self.request_at..], self.head_only)),
                    _ => None,
                };
                super::tls::probe(spec, tls, http, &mut self.buf, deadline).await?
            }
            CheckKind::Tcp => {
                let from = Source::towards(spec.source.as_ref(), spec.addr);
                bounded(deadline, &connected, tcp_check(&mut self.sock, spec.addr, from, spec.proxy_header.as_deref()))
                    .await?;
                ("Layer4 check passed", None)
            }
            CheckKind::Http(check) => {
                let exchange = HttpExchange { check, request: &self.request, head_only: self.head_only };
                let from = Source::towards(spec.source.as_ref(), spec.addr);
                let status = bounded(
                    deadline,
                    &connected,
                    exchange.run(&mut self.sock, (spec.addr, from), &mut self.buf, &connected),
                )
                .await?;
                ("Layer7 check passed", Some(status))
            }
            CheckKind::External(ext) => {
                external::run(spec, ext, load).await?;
                ("External check passed", None)
            }
        };
        pass.duration = started.elapsed();
        Ok(pass)
    }
}

struct HttpExchange<'a> {
    check: &'a HttpCheck,
    request: &'a [u8],
    head_only: bool,
}

impl HttpExchange<'_> {
    async fn run(
        &self,
        sock: &mut Option<Socket>,
        (addr, from): (SocketAddr, Option<&Source>),
        buf: &mut Vec<u8>,
        connected: &AtomicBool,
    ) -> Result<u16, ProbeError> {
        let mut conn = Lease::connect(sock, addr, from)?;
        // Speculative send: on a connect that already completed it saves waiting for writability.
        let sent = conn.try_send(self.request)?;
        if sent == 0 {
            conn.connected().await?;
        }
        connected.store(true, Relaxed);
        conn.send_all(&self.request[sent..]).await?;
        read_response(&mut conn, self.check, buf, self.head_only).await
    }
}

/// A check connection, plain ([`Lease`]) or TLS.
pub(super) trait CheckIo {
    async fn send_all(&mut self, data: &[u8]) -> Result<(), ProbeError>;
    /// What has arrived, waiting for it; 0 at end of stream.
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl CheckIo for Lease<'_> {
    async fn send_all(&mut self, data: &[u8]) -> Result<(), ProbeError> {
        Lease::send_all(self, data).await
    }
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Lease::recv(self, buf).await
    }
}

/// Reads an HTTP check's response until it decides.
pub(super) async fn read_response(
    conn: &mut impl CheckIo,
    check: &HttpCheck,
    buf: &mut Vec<u8>,
    head_only: bool,
) -> Result<u16, ProbeError> {
    // `buf` keeps its length (initialized bytes) from probe to probe, so reads need no
    // zeroing; `filled` is this response's part.
    let mut filled = 0;
    loop {
        if buf.len() < filled + READ_CHUNK {
            buf.resize(filled + READ_CHUNK, 0);
        }
        let n = conn
            .recv(&mut buf[filled..filled + READ_CHUNK])
            .await
            .map_err(|e| ProbeError::L7ResponseError { detail: e.to_string() })?;
        filled += n;
        let buf = &buf[..filled];
        if n == 0 {
            return http::finish(check, buf, head_only);
        }
        if let Progress::Done(result) = http::examine(check, buf, head_only) {
            return result;
        }
        // `examine` decides before this can grow far past head and body limits.
        if filled > http::MAX_HEAD + http::MAX_BODY + READ_CHUNK {
            return Err(ProbeError::L7InvalidResponse { detail: "response too large".into() });
        }
    }
}

/// Room made in the response buffer before each read.
const READ_CHUNK: usize = 4096;

/// Runs a TCP or HTTP check under one deadline (one timer, armed only if the check has to wait);
/// a timeout is Layer4 until `connected` is set and Layer7 after.
async fn bounded<T>(
    deadline: Instant,
    connected: &AtomicBool,
    check: impl Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    match timeout_at(deadline, check).await {
        Ok(r) => r,
        Err(_) if connected.load(Relaxed) => Err(ProbeError::L7Timeout),
        Err(_) => Err(ProbeError::L4Timeout),
    }
}

/// A connect that completes passes; on loopback it usually has before `connect` returns, and
/// then the socket never meets the poller.
/// With `check-send-proxy` the PROXY header is sent once connected.
async fn tcp_check(
    sock: &mut Option<Socket>,
    addr: SocketAddr,
    from: Option<&Source>,
    proxy_header: Option<&[u8]>,
) -> Result<(), ProbeError> {
    let mut conn = Lease::connect(sock, addr, from)?;
    match conn.outcome() {
        Outcome::Connected => {}
        Outcome::Failed(e) => return Err(e),
        Outcome::Pending => conn.connected().await?,
    }
    if let Some(h) = proxy_header {
        conn.send_all(h).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::spec::Expect;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};

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
            proxy_header: None,
            tls: None,
            source: None,
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

    /// Accepts one connection per entry of `responses` and answers it with that entry, or holds
    /// it open (`None`) and reports how the checker ended it. Returns the peers seen.
    async fn serve_many(
        responses: Vec<Option<&'static [u8]>>,
    ) -> (SocketAddr, oneshot::Receiver<Vec<SocketAddr>>, mpsc::UnboundedReceiver<std::io::Result<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (peers_tx, peers_rx) = oneshot::channel();
        let (held_tx, held_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut peers = Vec::new();
            for response in responses {
                let Ok((mut sock, peer)) = listener.accept().await else { return };
                peers.push(peer);
                let mut buf = [0u8; 1024];
                let _request = sock.read(&mut buf).await;
                match response {
                    Some(r) => {
                        let _ = sock.write_all(r).await;
                    }
                    // Ends when the checker gives up on the connection.
                    None => {
                        held_tx.send(sock.read(&mut buf).await).ok();
                    }
                }
            }
            peers_tx.send(peers).ok();
        });
        (addr, peers_rx, held_rx)
    }

    #[tokio::test]
    async fn every_probe_is_a_new_connection_on_the_kept_socket() {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (addr, peers, _held) = serve_many(vec![Some(ok), Some(ok), Some(ok)]).await;
        let s = spec(addr, http("GET /health", None));
        let mut prober = Prober::new(&s);
        for _ in 0..3 {
            assert_eq!(prober.probe(&s, ServerLoad::default()).await.expect("passes").status, Some(200));
            assert!(prober.sock.is_some(), "the socket is kept for the next probe");
        }
        // Three accepted connections: the kept socket connects anew for every probe.
        assert_eq!(peers.await.expect("server saw every probe").len(), 3);
    }

    #[tokio::test]
    async fn timed_out_probe_resets_its_connection_and_the_next_one_passes() {
        let ok: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n";
        let (addr, _peers, mut held) = serve_many(vec![None, Some(ok)]).await;
        let mut s = spec(addr, http("GET /health", None));
        s.timeout = Duration::from_millis(200);
        let mut prober = Prober::new(&s);
        assert_eq!(prober.probe(&s, ServerLoad::default()).await, Err(ProbeError::L7Timeout));
        let ended = tokio::time::timeout(Duration::from_secs(5), held.recv()).await.expect("connection ended");
        match ended.expect("server reported") {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            Ok(n) => panic!("expected a reset, read {n} bytes"),
        }
        assert_eq!(prober.probe(&s, ServerLoad::default()).await.expect("passes").status, Some(200));
    }

    #[tokio::test]
    async fn refused_then_listening_server_passes_on_the_same_prober() {
        let addr = closed_port().await;
        let s = spec(addr, CheckKind::Tcp);
        let mut prober = Prober::new(&s);
        assert_eq!(prober.probe(&s, ServerLoad::default()).await, Err(ProbeError::L4Refused));
        let listener = TcpListener::bind(addr).await.expect("rebind the port");
        prober.probe(&s, ServerLoad::default()).await.expect("passes");
        prober.probe(&s, ServerLoad::default()).await.expect("passes again");
        drop(listener);
        assert_eq!(prober.probe(&s, ServerLoad::default()).await, Err(ProbeError::L4Refused));
    }

    fn seq_kind(lines: &[String]) -> CheckKind {
        let mut c = None;
        let steps = lines.iter().filter_map(|l| super::super::tcpcheck::parse_line(l, &mut c).unwrap()).collect();
        CheckKind::Seq(super::super::tcpcheck::Seq { steps, proto: None, ..Default::default() })
    }

    #[tokio::test]
    async fn seq_connect_rules_open_their_own_connections() {
        let own = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (own_addr, other_port) = (own.local_addr().unwrap(), other.local_addr().unwrap().port());
        tokio::spawn(async move {
            if let Ok((mut s, _)) = own.accept().await {
                let _ = s.write_all(b"A\n").await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        let (seen_tx, seen_rx) = oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut s, _)) = other.accept().await else { return };
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"hi\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(b"B\n").await;
            seen_tx.send(got).ok();
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let lines = [
            "connect".to_string(),
            "expect string A".to_string(),
            format!("connect port {other_port} send-proxy linger"),
            r"send hi\r\n".to_string(),
            "expect string B on-success done\\ %s".to_string(),
        ];
        let mut s = spec(own_addr, seq_kind(&lines));
        s.timeout = Duration::from_secs(2);
        let ok = probe(&s).await.expect("passes");
        assert_eq!(ok.to_string(), "Layer7 check passed, info: done s1");
        let got = seen_rx.await.expect("second connection seen");
        assert!(got.starts_with(b"PROXY ") && got.ends_with(b"\r\nhi\r\n"), "{:?}", String::from_utf8_lossy(&got));
    }

    #[tokio::test]
    async fn seq_timeout_reports_the_expect_tout_status() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let mut s = spec(addr, seq_kind(&["send x".into(), "expect string y tout-status L6TOUT".into()]));
        s.timeout = Duration::from_millis(200);
        assert_eq!(probe(&s).await.expect_err("times out").to_string(), "Layer6 timeout");
        let mut s = spec(addr, seq_kind(&["send x".into(), "expect string y".into()]));
        s.timeout = Duration::from_millis(200);
        assert_eq!(probe(&s).await, Err(ProbeError::L7Timeout));
        hold.abort();
    }
}
