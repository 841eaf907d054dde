//! Listening sockets, kept by bind address so a reload never closes and reopens a kept one.

use super::Proxy;
use crate::config::Snapshot;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const BACKLOG: i32 = 4096;

/// Opens a listening socket. `IP_FREEBIND` lets a backup node bind a VIP it does not hold yet.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if addr.is_ipv4() {
        sock.set_freebind_v4(true)?;
    } else {
        sock.set_freebind_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The set of accept loops.
#[derive(Default)]
pub struct Listeners {
    running: HashMap<SocketAddr, Running>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr} (frontend {frontend}): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub frontend: String,
    pub source: io::Error,
}

impl Listeners {
    /// Binds every address of `snap` that is not open yet, without serving it. Binding all of them
    /// before anything changes means a failure leaves the running set as it was.
    pub fn bind_new(&self, snap: &Snapshot) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, BindError> {
        let mut fresh = Vec::new();
        for f in &snap.frontends {
            for addr in f.binds.iter().map(|b| b.addr) {
                if !self.running.contains_key(&addr) {
                    let l = bind(addr).map_err(|source| BindError { addr, frontend: f.name.clone(), source })?;
                    fresh.push((addr, l));
                }
            }
        }
        Ok(fresh)
    }

    /// Starts accepting on freshly bound sockets and closes those the active snapshot no longer has.
    pub fn activate(&mut self, fresh: Vec<(SocketAddr, std::net::TcpListener)>, proxy: &Arc<Proxy>) {
        let active = proxy.active.load_full();
        for (addr, std_l) in fresh {
            match TcpListener::from_std(std_l) {
                Ok(l) => {
                    let (stop, rx) = watch::channel(false);
                    let task = tokio::spawn(accept_loop(l, addr, proxy.clone(), rx));
                    tracing::info!("listening on {addr}");
                    self.running.insert(addr, Running { stop, task });
                }
                Err(e) => tracing::error!("cannot serve {addr}: {e}"),
            }
        }
        let gone: Vec<SocketAddr> = self.running.keys().filter(|a| !active.binds.contains_key(a)).copied().collect();
        for addr in gone {
            if let Some(r) = self.running.remove(&addr) {
                let _ = r.stop.send(true);
                tracing::info!("stopped listening on {addr}");
            }
        }
    }

    /// Stops accepting everywhere and waits for the accept loops to close their sockets.
    pub async fn close_all(&mut self) {
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        for (_, r) in self.running.drain() {
            let _ = r.task.await;
        }
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.running.keys().copied().collect()
    }
}

async fn accept_loop(l: TcpListener, addr: SocketAddr, proxy: Arc<Proxy>, mut stop: watch::Receiver<bool>) {
    loop {
        let permit = tokio::select! {
            p = proxy.global_limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            r = l.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((sock, peer)) => {
                let p = proxy.clone();
                proxy.tracker.spawn(async move {
                    p.serve_conn(sock, peer, addr).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept on {addr} failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
