//! The I/O of a `tcp-check` sequence: each `connect` rule opens its connection (plain on the
//! prober's kept socket, or a TLS one, or a plain one closed cleanly with `linger`), sends its
//! PROXY header, and the [`Run`] engine drives the exchange on it. One deadline bounds the
//! whole sequence; a timeout is reported at the layer it struck (Layer4 while connecting,
//! Layer6 during a handshake, Layer7 after) or with the `tout-status` of the expect it
//! interrupted.

use super::check_ctx::CheckCtx;
use super::conn::{Lease, Outcome};
use super::probe::{CheckIo, ProbeError};
use super::spec::{CheckSpec, CheckTls};
use super::tcpcheck::{Action, ConnectOpts, Passed, Run, Seq};
use crate::proxy::source::Source;
use socket2::Socket;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::client::TlsStream;

/// Where the sequence stood when the deadline struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshake,
    Exchange,
}

/// Runs `seq` against the server of `spec`, on `home` (the prober's kept socket) when a
/// connection is plain.
pub(super) async fn run(
    spec: &CheckSpec,
    seq: &Seq,
    home: &mut Option<Socket>,
    deadline: Instant,
    state: Option<&str>,
) -> Result<Passed, ProbeError> {
    // Variables live for one run, as HAProxy's `check.` scope.
    let vars = super::check_ctx::CheckVars::default();
    let cx = CheckCtx { backend: &spec.backend, server: &spec.server, target: spec.addr, vars: &vars };
    let env = super::tcpcheck::HttpEnv { host: None, state: state.map(str::to_string) };
    let mut run = Run::new(seq, cx).with_http_env(env);
    let mut phase = Phase::Connecting;
    let result = timeout_at(deadline, drive(spec, &mut run, home, &mut phase)).await;
    match result {
        Ok(r) => r,
        Err(_) => Err(match (phase, run.timeout_status()) {
            (Phase::Exchange, Some(status)) => ProbeError::Status { status, info: String::new(), code: None },
            (Phase::Connecting, _) => ProbeError::L4Timeout,
            (Phase::Handshake, _) => ProbeError::L6Timeout,
            (Phase::Exchange, None) => ProbeError::L7Timeout,
        }),
    }
}

async fn drive(
    spec: &CheckSpec,
    run: &mut Run<'_>,
    home: &mut Option<Socket>,
    phase: &mut Phase,
) -> Result<Passed, ProbeError> {
    let mut buf = [0u8; 4096];
    let mut action = run.step();
    loop {
        let opts = match action {
            Action::Connect(opts) => opts,
            Action::Pass(p) => return Ok(p),
            Action::Fail(e) => return Err(e),
            Action::Send(_) | Action::Recv => {
                return Err(ProbeError::L4Error { detail: "tcp-check sequence without a connection".into() });
            }
        };
        let target = opts.target(spec.addr);
        let tls = tls_of(spec, opts)?;
        *phase = Phase::Connecting;
        let from = Source::towards(spec.source.as_ref(), target);
        let mut conn = open(home, (spec.addr, target, from), tls, opts.linger, phase).await?;
        if let Some(h) = proxy_header(spec, opts) {
            conn.send_all(&h).await?;
        }
        if let Some(tls) = tls {
            *phase = Phase::Handshake;
            conn = conn.handshake(tls).await?;
        }
        *phase = Phase::Exchange;
        run.connected(target, tls.is_some());
        action = exchange(&mut conn, run, &mut buf).await;
    }
}

/// Runs the rules on one connection until the next `connect` or a verdict.
async fn exchange<'a>(conn: &mut Conn<'_>, run: &mut Run<'a>, buf: &mut [u8]) -> Action<'a> {
    loop {
        match run.step() {
            Action::Send(data) => {
                if let Err(e) = conn.send_all(&data).await {
                    return Action::Fail(e);
                }
            }
            Action::Recv => match conn.recv(buf).await {
                Ok(0) | Err(_) => run.closed(),
                Ok(n) => run.feed(&buf[..n]),
            },
            other => return other,
        }
    }
}

/// The TLS of a connection: the rule's own (`ssl`, `sni`, `alpn`, resolved per server), or the
/// check's (`check-ssl`) for a `default` one.
fn tls_of<'s>(spec: &'s CheckSpec, opts: &'s ConnectOpts) -> Result<Option<&'s CheckTls>, ProbeError> {
    let own = if opts.default { spec.tls.as_ref() } else { None };
    if !opts.ssl {
        return Ok(own.map(|t| opts.tls.as_ref().unwrap_or(t)));
    }
    match opts.tls.as_ref().or(own) {
        Some(t) => Ok(Some(t)),
        None => Err(ProbeError::L6Response { detail: "no TLS settings for `tcp-check connect ssl`".into() }),
    }
}

/// `send-proxy` on the rule, or the server's `check-send-proxy` on a `default` one.
fn proxy_header(spec: &CheckSpec, opts: &ConnectOpts) -> Option<Vec<u8>> {
    if opts.send_proxy {
        return Some(opts.proxy_header.clone().unwrap_or_else(|| {
            crate::proxy::proxy_proto::build(
                crate::proxy::proxy_proto::SendProxy { v2: false, ssl: false, authority: false, unique_id: false },
                &Default::default(),
            )
        }));
    }
    if opts.default { spec.proxy_header.clone() } else { None }
}

/// A sequence's connection: on the prober's kept socket, or its own TCP or TLS stream.
enum Conn<'h> {
    Lease(Lease<'h>),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens a connection to `target`. Plain connections with a reset close reuse the prober's
/// socket (when of the check's address family); TLS and `linger` ones get their own stream.
async fn open<'h>(
    home: &'h mut Option<Socket>,
    (check, target, from): (SocketAddr, SocketAddr, Option<&Source>),
    tls: Option<&CheckTls>,
    linger: bool,
    phase: &mut Phase,
) -> Result<Conn<'h>, ProbeError> {
    *phase = Phase::Connecting;
    if tls.is_none() && !linger && target.is_ipv4() == check.is_ipv4() {
        let mut conn = Lease::connect(home, target, from)?;
        match conn.outcome() {
            Outcome::Connected => {}
            Outcome::Failed(e) => return Err(e),
            Outcome::Pending => conn.connected().await?,
        }
        return Ok(Conn::Lease(conn));
    }
    let tcp = match crate::proxy::source::connect(target, from).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(ProbeError::L4Refused),
        Err(e) => return Err(ProbeError::L4Error { detail: e.to_string() }),
    };
    if !linger {
        // Closed with a reset, as HAProxy's checks are unless `linger`: no TIME_WAIT per check.
        let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    }
    Ok(Conn::Tcp(tcp))
}

impl Conn<'_> {
    async fn handshake(self, tls: &CheckTls) -> Result<Self, ProbeError> {
        let Conn::Tcp(tcp) = self else {
            return Err(ProbeError::L6Response { detail: "TLS over a kept check socket".into() });
        };
        match tokio_rustls::TlsConnector::from(tls.config.clone()).connect(tls.name.clone(), tcp).await {
            Ok(s) => Ok(Conn::Tls(Box::new(s))),
            Err(e) => Err(ProbeError::L6Response { detail: e.to_string() }),
        }
    }
}

impl CheckIo for Conn<'_> {
    async fn send_all(&mut self, data: &[u8]) -> Result<(), ProbeError> {
        let sending = |e: std::io::Error| ProbeError::L7ResponseError { detail: format!("sending: {e}") };
        match self {
            Conn::Lease(l) => l.send_all(data).await,
            Conn::Tcp(s) => s.write_all(data).await.map_err(sending),
            Conn::Tls(s) => {
                s.write_all(data).await.map_err(sending)?;
                s.flush().await.map_err(sending)
            }
        }
    }
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Lease(l) => l.recv(buf).await,
            Conn::Tcp(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }
}
