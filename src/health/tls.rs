//! Checks over TLS (HAProxy's `check-ssl`, and checks of an `ssl` server on its own address):
//! a new connection, the PROXY header if any, a TLS handshake with the check's SNI and ALPN, then
//! the TCP or HTTP exchange over it (`tcp-check` sequences open theirs in `seq_io.rs`). A handshake that fails (a certificate the
//! server's `verify`/`ca-file` refuse, a wrong SNI or ALPN) fails the check at Layer6.

use super::probe::{CheckIo, ProbeError, read_response};
use super::spec::{CheckSpec, CheckTls, HttpCheck};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::client::TlsStream;

/// The negotiated ALPN must be one of `check-alpn`'s when the server picked one; rustls already
/// refuses a server that picks one not offered.
struct Tls(TlsStream<TcpStream>);

impl CheckIo for Tls {
    async fn send_all(&mut self, data: &[u8]) -> Result<(), ProbeError> {
        self.0.write_all(data).await.map_err(|e| ProbeError::L7ResponseError { detail: format!("sending: {e}") })?;
        self.0.flush().await.map_err(|e| ProbeError::L7ResponseError { detail: format!("sending: {e}") })
    }
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).await
    }
}

async fn connect(
    spec: &CheckSpec,
    tls: &CheckTls,
    header: Option<&[u8]>,
    deadline: Instant,
) -> Result<Tls, ProbeError> {
    let from = crate::proxy::source::Source::towards(spec.source.as_ref(), spec.addr);
    let tcp = match timeout_at(deadline, crate::proxy::source::connect(spec.addr, from)).await {
        Err(_) => return Err(ProbeError::L4Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(ProbeError::L4Refused),
        Ok(Err(e)) => return Err(ProbeError::L4Error { detail: e.to_string() }),
        Ok(Ok(s)) => s,
    };
    // Closed with a reset, as plain checks are: no TIME_WAIT per check.
    let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    let mut tcp = tcp;
    if let Some(h) = header {
        tcp.write_all(h).await.map_err(|e| ProbeError::L4Error { detail: format!("sending the PROXY header: {e}") })?;
    }
    let hs = tokio_rustls::TlsConnector::from(tls.config.clone()).connect(tls.name.clone(), tcp);
    match timeout_at(deadline, hs).await {
        Err(_) => Err(ProbeError::L6Timeout),
        Ok(Err(e)) => Err(ProbeError::L6Response { detail: e.to_string() }),
        Ok(Ok(s)) => Ok(Tls(s)),
    }
}

/// A timeout after the handshake is Layer7's.
fn l7<T>(r: Result<Result<T, ProbeError>, tokio::time::error::Elapsed>) -> Result<T, ProbeError> {
    r.unwrap_or(Err(ProbeError::L7Timeout))
}

/// One check over TLS: the detail and status of a pass.
pub(super) async fn probe(
    spec: &CheckSpec,
    tls: &CheckTls,
    http: Option<(&HttpCheck, &[u8], bool)>,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(&'static str, Option<u16>), ProbeError> {
    let header = spec.proxy_header.as_deref();
    match (&spec.kind, http) {
        (super::CheckKind::Http(_), Some((check, request, head_only))) => {
            let mut conn = connect(spec, tls, header, deadline).await?;
            let status = l7(timeout_at(deadline, async {
                conn.send_all(request).await?;
                read_response(&mut conn, check, buf, head_only).await
            })
            .await)?;
            Ok(("Layer7 check passed", Some(status)))
        }
        _ => {
            connect(spec, tls, header, deadline).await?;
            Ok(("Layer6 check passed", None))
        }
    }
}
