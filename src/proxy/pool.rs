//! Keep-alive connections to servers, one idle list per server. A connection goes back to the list
//! only after its response body has been read to the end, so a reused connection is always clean.

use super::body::ProxyBody;
use crate::config::snapshot::ServerTls;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections older than this are closed rather than reused (HAProxy's pool-purge-delay).
const IDLE_MAX_AGE: Duration = Duration::from_secs(5);
/// Bound on idle connections kept per server.
const IDLE_MAX: usize = 1024;
/// How long a returned connection may take to become ready for its next request before it is
/// dropped (its dispatcher normally gets there right after the response's last byte).
const PARK_LIMIT: Duration = Duration::from_secs(1);

pub type Sender = SendRequest<ProxyBody>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection refused")]
    Refused,
    #[error("connect timeout")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(hyper::Error),
}

#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    tls: Option<ServerTls>,
    idle: Mutex<Vec<(Sender, Instant)>>,
}

/// HTTP/1.1 handshake on a connected stream; the connection task runs until the server or the
/// last sender closes it.
async fn handshake<I>(io: I) -> Result<Sender, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new().handshake(TokioIo::new(io)).await.map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("server connection ended: {e}");
        }
    });
    Ok(sender)
}

impl Pool {
    pub fn new(addr: SocketAddr, tls: Option<ServerTls>) -> Self {
        Self { addr, tls, idle: Mutex::new(Vec::new()) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A ready connection: an idle one if any is still open, else a new one.
    /// The flag says whether it was reused (a reused one may have been closed by the server meanwhile).
    pub async fn get(&self, connect_timeout: Duration) -> Result<(Sender, bool), ConnectError> {
        if let Some(s) = self.take_ready() {
            return Ok((s, true));
        }
        self.connect(connect_timeout).await.map(|s| (s, false))
    }

    /// The newest idle connection that is ready; closed, stale and stuck ones are dropped on the
    /// way, and ones not ready yet stay for a later taker.
    fn take_ready(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut not_yet = Vec::new();
        let mut found = None;
        let now = Instant::now();
        while let Some((s, since)) = idle.pop() {
            let age = now.saturating_duration_since(since);
            if s.is_closed() || age > IDLE_MAX_AGE {
                continue;
            }
            if s.is_ready() {
                found = Some(s);
                break;
            }
            if age <= PARK_LIMIT {
                not_yet.push((s, since));
            }
        }
        idle.extend(not_yet.into_iter().rev());
        found
    }

    pub async fn connect(&self, connect_timeout: Duration) -> Result<Sender, ConnectError> {
        let fut = async {
            let stream = match TcpStream::connect(self.addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(ConnectError::Refused),
                Err(e) => return Err(ConnectError::Io(e)),
                Ok(s) => s,
            };
            let _ = stream.set_nodelay(true);
            match &self.tls {
                None => Ok(handshake(stream).await?),
                Some(tls) => {
                    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                    let s = connector.connect(tls.sni.clone(), stream).await.map_err(ConnectError::Tls)?;
                    Ok(handshake(s).await?)
                }
            }
        };
        tokio::time::timeout(connect_timeout, fut).await.unwrap_or(Err(ConnectError::Timeout))
    }

    /// Returns a connection whose exchange finished cleanly. Its dispatcher may not have seen the
    /// end of the response yet; takers skip it until it has, so none ever waits on one (and no
    /// task or timer is spent per request to watch it).
    pub fn put(&self, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push((s, Instant::now()));
        }
    }
}
