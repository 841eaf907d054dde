//! Listening sockets, kept by bind address so a reload never closes and reopens a kept one, and
//! handed to the next process on a binary upgrade (the same sockets, so nothing is ever refused).

use super::Proxy;
use crate::config::Snapshot;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Semaphore, watch};
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
    /// The socket accepted on now: the accept loop puts a new one in when it listens again.
    sock: Arc<ArcSwap<Listener>>,
}

/// A listening socket watched for readiness, so the accept loop can take its `maxconn` slots only
/// once a connection is waiting (tokio's `TcpListener` offers no readiness without an accept).
type Listener = AsyncFd<std::net::TcpListener>;

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
        for f in snap.frontends.iter() {
            for addr in f.binds.iter().map(|b| b.addr) {
                if !self.running.contains_key(&addr) {
                    let l = bind(addr).map_err(|source| BindError { addr, frontend: f.name.clone(), source })?;
                    fresh.push((addr, l));
                }
            }
        }
        Ok(fresh)
    }

    /// Like [`Listeners::bind_new`], but an address the previous process already listens on takes
    /// its socket (`inherited`, from a binary upgrade) instead of a new bind. Inherited sockets the
    /// snapshot does not use are closed here (the previous process closes its own copy).
    pub fn adopt(
        &self,
        snap: &Snapshot,
        mut inherited: HashMap<SocketAddr, OwnedFd>,
    ) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, BindError> {
        let mut fresh = Vec::new();
        for f in snap.frontends.iter() {
            for addr in f.binds.iter().map(|b| b.addr) {
                if self.running.contains_key(&addr) || fresh.iter().any(|(a, _)| *a == addr) {
                    continue;
                }
                let l = match inherited.remove(&addr) {
                    Some(fd) => inherited_listener(fd, addr),
                    None => bind(addr),
                };
                fresh.push((addr, l.map_err(|source| BindError { addr, frontend: f.name.clone(), source })?));
            }
        }
        Ok(fresh)
    }

    /// Every listening socket with its bind address, for the next process. Each stays open while
    /// the caller holds it, even if its accept loop replaces it meanwhile.
    pub fn sockets(&self) -> Vec<(SocketAddr, Arc<Listener>)> {
        self.running.iter().map(|(a, r)| (*a, r.sock.load_full())).collect()
    }

    /// Starts accepting on freshly bound sockets and closes those the active snapshot no longer has.
    pub fn activate(&mut self, fresh: Vec<(SocketAddr, std::net::TcpListener)>, proxy: &Arc<Proxy>) {
        let active = proxy.active.load_full();
        for (addr, std_l) in fresh {
            match watch_readable(std_l) {
                Ok(l) => {
                    let sock = Arc::new(ArcSwap::from_pointee(l));
                    let (stop, rx) = watch::channel(false);
                    let task = crate::fate::spawn(accept_loop(sock.clone(), addr, proxy.clone(), rx));
                    crate::fate::listener_ok(addr);
                    tracing::info!("listening on {addr}");
                    self.running.insert(addr, Running { stop, task, sock });
                }
                Err(e) => {
                    tracing::error!("cannot serve {addr}: {e}");
                    crate::fate::listener_failed(addr, &format!("cannot serve: {e}"));
                }
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

/// Registers a listening socket with the reactor.
fn watch_readable(l: std::net::TcpListener) -> io::Result<Listener> {
    // SAFETY: the AsyncFd owns the listener, whose descriptor stays open and unchanged until the
    // AsyncFd is dropped.
    unsafe { AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) }.map_err(io::Error::from)
}

/// Checks that a handed-over descriptor is a listening TCP socket bound to `addr`.
fn inherited_listener(fd: OwnedFd, addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::from(fd);
    let local = sock.local_addr()?.as_socket();
    if local != Some(addr) || sock.r#type()? != socket2::Type::STREAM || !sock.is_listener()? {
        return Err(io::Error::other(format!(
            "the socket handed over for {addr} is not a TCP socket listening there (found {local:?})"
        )));
    }
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// The frontend limit of the listener at `addr` in the active snapshot, if it has one.
fn frontend_limit(proxy: &Proxy, addr: SocketAddr) -> Option<Arc<Semaphore>> {
    let active = proxy.active.load();
    active.binds.get(&addr).and_then(|&fi| active.fe_limits[fi].clone())
}

/// Whether the frontend of the listener at `addr` is stopped by `disable frontend`.
fn frontend_paused(
    proxy: &Proxy,
    addr: SocketAddr,
    rx: &mut watch::Receiver<std::collections::HashSet<String>>,
) -> bool {
    let names = rx.borrow_and_update();
    if names.is_empty() {
        return false;
    }
    let active = proxy.active.load();
    active.binds.get(&addr).is_some_and(|&fi| names.contains(&active.snap.frontends[fi].name))
}

/// Accepts connections one at a time. Once a connection waits in the backlog, it takes its
/// frontend's `maxconn` slot first and a global slot second, then accepts: a frontend at its limit
/// stops accepting, so the connections beyond it wait in the kernel backlog (as HAProxy's do)
/// instead of holding global slots other frontends need; and a bind with nothing to accept holds
/// no slot, so another bind of the same frontend can use it.
async fn accept_loop(l: Arc<ArcSwap<Listener>>, addr: SocketAddr, proxy: Arc<Proxy>, stop: watch::Receiver<bool>) {
    accept_until_stopped(l, addr, proxy, stop).await;
    // Closed on purpose (reload, stop): not a failure of the proxy.
    crate::fate::listener_ok(addr);
}

async fn accept_until_stopped(
    sock: Arc<ArcSwap<Listener>>,
    addr: SocketAddr,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
) {
    let mut reloads = proxy.reloads.subscribe();
    let mut paused = proxy.paused.subscribe();
    let mut accept_errors = ErrorLog::default();
    loop {
        let l = sock.load_full();
        reloads.borrow_and_update();
        // `disable frontend`: connections wait in the backlog until `enable frontend`.
        if frontend_paused(&proxy, addr, &mut paused) {
            tokio::select! {
                _ = paused.changed() => {}
                _ = reloads.changed() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let mut ready = tokio::select! {
            r = l.readable() => match r {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("cannot wait for connections on {addr}: {e}");
                    return;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
            _ = paused.changed() => continue,
        };
        let fe_permit = match frontend_limit(&proxy, addr) {
            None => None,
            Some(sem) => tokio::select! {
                p = sem.acquire_owned() => match p { Ok(p) => Some(p), Err(_) => return },
                // A reload may give this bind another frontend or limit: look again.
                _ = reloads.changed() => continue,
                _ = stop.wait_for(|s| *s) => return,
            },
        };
        let permit = tokio::select! {
            p = proxy.global_limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.wait_for(|s| *s) => return,
        };
        // Nonblocking: the connection may be gone (taken by another process sharing the socket
        // during a binary upgrade); then the slots go back and the loop waits again.
        let accepted = match ready.try_io(|l| accept_nonblocking(l.get_ref())) {
            Ok(r) => r.and_then(|(sock, peer)| Ok((tokio::net::TcpStream::from_std(sock)?, peer))),
            Err(_would_block) => continue,
        };
        match accepted {
            Ok((sock, peer)) => {
                let p = proxy.clone();
                // Watched: the `track_proxy` watchdog sees a connection stuck in one poll.
                let conn = p.serve_conn(sock, peer, addr, super::Slots::new(fe_permit, permit));
                proxy.tracker.spawn(crate::fate::watched(conn));
            }
            Err(e) => {
                let now = std::time::Instant::now();
                if let Some(dropped) = accept_errors.should_log(now) {
                    let limit = if is_out_of_descriptors(&e) {
                        " (out of file descriptors: raise `ulimit -n` or lower maxconn)"
                    } else {
                        ""
                    };
                    let more =
                        if dropped > 0 { format!("; {dropped} more failures not logged") } else { String::new() };
                    tracing::warn!("accept on {addr} failed: {e}{limit}{more}");
                }
                if is_out_of_descriptors(&e) {
                    crate::fate::out_of_fds(addr);
                } else if !still_listening(l.get_ref()) {
                    // Reported at once (the VIP moves away); listening again only after a while,
                    // so the instances see the failure even when the socket recovers at once.
                    tracing::error!("{addr} no longer listens: {e}");
                    crate::fate::listener_failed(addr, &format!("not listening ({e})"));
                    tokio::select! {
                        _ = tokio::time::sleep(LISTEN_AGAIN_AFTER) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    if let Some(new) = relisten(addr) {
                        sock.store(Arc::new(new));
                    }
                }
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// How long a listener that stopped listening stays failed before it tries to listen again.
const LISTEN_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A socket that no longer listens (aborted by `ss -K`, say) is a failed listener for the VRRP
/// instances tracking the proxy until a new socket listens in its place. listen(2) again on the
/// aborted socket succeeds, but the kernel leaves that socket shut down and every connection it
/// accepts inherits it (writes fail, the client's request is answered with a reset); and the
/// reactor keeps reporting the old socket closed, so its accept loop would spin.
fn relisten(addr: SocketAddr) -> Option<Listener> {
    match bind(addr).and_then(watch_readable) {
        Ok(l) => {
            tracing::warn!("{addr} had stopped listening: listening again on a new socket");
            crate::fate::listener_ok(addr);
            Some(l)
        }
        Err(e) => {
            tracing::error!("{addr} no longer listens and cannot listen again: {e}");
            crate::fate::listener_failed(addr, &format!("not listening ({e})"));
            None
        }
    }
}

fn still_listening(l: &std::net::TcpListener) -> bool {
    socket2::SockRef::from(l).is_listener().unwrap_or(false)
}

/// `accept4` with `SOCK_NONBLOCK`: the socket comes out non-blocking, instead of one more
/// `ioctl(FIONBIO)` per connection after `std`'s accept (which sets only `SOCK_CLOEXEC`).
fn accept_nonblocking(l: &std::net::TcpListener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    use nix::libc::{SOCK_CLOEXEC, SOCK_NONBLOCK};
    let (sock, peer) = socket2::SockRef::from(l).accept4(SOCK_CLOEXEC | SOCK_NONBLOCK)?;
    let peer = peer.as_socket().ok_or_else(|| io::Error::other("accepted a connection without an IP address"))?;
    Ok((sock.into(), peer))
}

/// How long an accept loop waits after a failed accept before trying again.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(n) if n == nix::libc::EMFILE || n == nix::libc::ENFILE)
}

/// Rate limit for a repeating error log line: at most one line per [`ErrorLog::EVERY`], and the
/// next line says how many were left out. Pure (the caller passes `now`) so tests drive it.
#[derive(Debug, Default)]
pub struct ErrorLog {
    last: Option<std::time::Instant>,
    dropped: u64,
}

impl ErrorLog {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// Whether to log a failure seen at `now`; if so, how many were left out since the last line.
    pub fn should_log(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < Self::EVERY => {
                self.dropped += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.dropped))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_socket_is_non_blocking_and_knows_its_peer() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut sock, peer) = accept_nonblocking(&l).unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // Nothing sent yet: a blocking socket would wait here forever.
        let err = std::io::Read::read(&mut sock, &mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        l.set_nonblocking(true).unwrap();
        assert_eq!(accept_nonblocking(&l).unwrap_err().kind(), io::ErrorKind::WouldBlock, "no second connection");
    }

    #[test]
    fn only_a_tcp_socket_listening_on_the_address_is_adopted() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let fd = || OwnedFd::from(l.try_clone().unwrap());
        let got = inherited_listener(fd(), addr).unwrap();
        assert_eq!(got.local_addr().unwrap(), addr);
        let other: SocketAddr = format!("127.0.0.1:{}", addr.port().wrapping_add(1).max(1)).parse().unwrap();
        let e = inherited_listener(fd(), other).unwrap_err();
        assert!(e.to_string().contains(&other.to_string()), "{e}");
        // Bound but not listening, and not TCP.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uaddr = udp.local_addr().unwrap();
        assert!(inherited_listener(OwnedFd::from(udp), uaddr).is_err());
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        let saddr = s.local_addr().unwrap().as_socket().unwrap();
        assert!(inherited_listener(OwnedFd::from(s), saddr).is_err());
    }

    #[test]
    fn a_repeating_accept_error_is_logged_once_a_second_with_the_count_left_out() {
        let t0 = std::time::Instant::now();
        let ms = |n: u64| t0 + std::time::Duration::from_millis(n);
        let mut log = ErrorLog::default();
        assert_eq!(log.should_log(t0), Some(0));
        // The accept loop retries every 50 ms: nineteen more failures within the second stay quiet.
        for n in 1..20 {
            assert_eq!(log.should_log(ms(n * 50)), None, "at {} ms", n * 50);
        }
        assert_eq!(log.should_log(ms(1000)), Some(19));
        assert_eq!(log.should_log(ms(1999)), None);
        assert_eq!(log.should_log(ms(2000)), Some(1));
        // After a quiet spell the next failure is logged at once.
        assert_eq!(log.should_log(ms(60_000)), Some(0));
    }

    #[test]
    fn descriptor_exhaustion_is_recognised() {
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::EMFILE)));
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::ENFILE)));
        assert!(!is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::ECONNABORTED)));
    }
}
