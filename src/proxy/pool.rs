//! Keep-alive connections to servers, one idle list per server. A connection goes back to the list
//! only after its response body has been read to the end, so a reused connection is always clean.

use super::body::ProxyBody;
use crate::config::snapshot::ServerTls;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The shortest sweep period, whatever `pool_purge_delay` says.
const MIN_SWEEP: Duration = Duration::from_millis(100);
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
    /// `pool_purge_delay` in ms: idle connections older than this are closed.
    max_age_ms: AtomicU64,
    /// A sweeper task is running (only while connections are idle).
    sweeping: AtomicBool,
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
    pub fn new(addr: SocketAddr, tls: Option<ServerTls>, max_age: Duration) -> Self {
        let pool = Self {
            addr,
            tls,
            idle: Mutex::new(Vec::new()),
            max_age_ms: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        };
        pool.set_max_age(max_age);
        pool
    }

    /// The backend's `pool_purge_delay` (pools outlive reloads that may change it).
    pub fn set_max_age(&self, d: Duration) {
        self.max_age_ms.store(d.as_millis() as u64, Relaxed);
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Relaxed))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `pool_purge_delay` in milliseconds.
    pub fn purge_delay_ms(&self) -> u64 {
        self.max_age_ms.load(Relaxed)
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
        let max_age = self.max_age();
        while let Some((s, since)) = idle.pop() {
            let age = now.saturating_duration_since(since);
            if s.is_closed() || age > max_age {
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
        self.connect_with(connect_timeout, None).await
    }

    /// A new connection that starts with `preface` (a PROXY protocol header) before anything
    /// else, TLS included.
    pub async fn connect_with(
        &self,
        connect_timeout: Duration,
        preface: Option<&[u8]>,
    ) -> Result<Sender, ConnectError> {
        let fut = async {
            let mut stream = match TcpStream::connect(self.addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(ConnectError::Refused),
                Err(e) => return Err(ConnectError::Io(e)),
                Ok(s) => s,
            };
            let _ = stream.set_nodelay(true);
            if let Some(p) = preface {
                tokio::io::AsyncWriteExt::write_all(&mut stream, p).await.map_err(ConnectError::Io)?;
            }
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
    pub fn put(self: &Arc<Self>, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push((s, Instant::now()));
        }
        drop(idle);
        if !self.sweeping.swap(true, Relaxed) {
            self.sweep();
        }
    }

    /// Closes idle connections once they are older than `pool_purge_delay`, so a server is not
    /// left holding connections nobody will use; one task per pool, only while any are idle.
    fn sweep(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(period) = pool.upgrade().map(|p| p.max_age().max(MIN_SWEEP)) else { return };
                tokio::time::sleep(period).await;
                let Some(p) = pool.upgrade() else { return };
                if p.purge(Instant::now()) > 0 {
                    continue;
                }
                p.sweeping.store(false, Relaxed);
                // A connection put back between the purge and the flag would have no sweeper.
                if p.idle_count() == 0 || p.sweeping.swap(true, Relaxed) {
                    return;
                }
            }
        });
    }

    /// Drops idle connections that are closed or older than the pool's age; returns how many stay.
    fn purge(&self, now: Instant) -> usize {
        let max_age = self.max_age();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(s, since)| !s.is_closed() && now.saturating_duration_since(*since) <= max_age);
        idle.len()
    }

    /// Idle connections kept (also for `show servers conn`).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
