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
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

const BACKLOG: i32 = 4096;

/// Opens a listening socket for lbha's own services (API, console): IPv6-only on an IPv6 address,
/// and exclusive. `IP_FREEBIND` lets a backup node bind a VIP it does not hold yet.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    bind_with(addr, Some(true), false)
}

/// Opens a proxy listener as HAProxy does. `v6only` is the bind's `v6only`/`v4v6` (`None` leaves
/// the system's default, so `[::]:P` takes IPv4 too on Linux's default). `SO_REUSEPORT` lets
/// `0.0.0.0:P` (or `127.0.0.1:P`) and a dual-stack `[::]:P` both listen, as HAProxy's do; the
/// kernel gives an IPv4 client to the IPv4 socket, the more specific match.
pub fn bind_proxy(addr: SocketAddr, v6only: Option<bool>) -> io::Result<std::net::TcpListener> {
    bind_with(addr, v6only, true)
}

fn bind_with(addr: SocketAddr, v6only: Option<bool>, reuseport: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if reuseport {
        sock.set_reuse_port(true)?;
    }
    if let (true, Some(only)) = (addr.is_ipv6(), v6only) {
        sock.set_only_v6(only)?;
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
            for b in f.binds.iter() {
                let addr = b.addr;
                if !self.running.contains_key(&addr) {
                    let l = bind_proxy(addr, b.v6only).map_err(|source| BindError {
                        addr,
                        frontend: f.name.clone(),
                        source,
                    })?;
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
            for b in f.binds.iter() {
                let addr = b.addr;
                if self.running.contains_key(&addr) || fresh.iter().any(|(a, _)| *a == addr) {
                    continue;
                }
                let l = match inherited.remove(&addr) {
                    Some(fd) => inherited_listener(fd, addr),
                    None => bind_proxy(addr, b.v6only),
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
        let names: std::collections::HashSet<&str> = active.snap.frontends.iter().map(|f| f.name.as_str()).collect();
        proxy.rates.lock().unwrap_or_else(|p| p.into_inner()).retain_frontends(|n| names.contains(n));
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

/// Counts an accept on the listener at `addr` against the rate limits that apply to it, or says
/// how long to wait first.
fn admit_rate(proxy: &Proxy, addr: SocketAddr) -> Result<(), std::time::Duration> {
    let active = proxy.active.load();
    let g = &active.snap.global;
    let Some(&fi) = active.binds.get(&addr) else { return Ok(()) };
    let fe = &active.snap.frontends[fi];
    let tls = fe.binds.iter().any(|b| b.addr == addr && b.tls.is_some());
    let limits = super::rate::Limits {
        conn: g.maxconnrate,
        sess: g.maxsessrate,
        ssl: g.maxsslrate.filter(|_| tls),
        frontend: fe.rate_limit_sessions.map(|n| (fe.name.as_str(), n)),
    };
    if !limits.any() {
        return Ok(());
    }
    let mut rates = proxy.rates.lock().unwrap_or_else(|p| p.into_inner());
    rates.admit(std::time::Instant::now(), &limits)
}

/// Whether the frontend of the listener at `addr` has `option clitcpka`.
fn frontend_tcpka(proxy: &Proxy, addr: SocketAddr) -> bool {
    let active = proxy.active.load();
    active.binds.get(&addr).is_some_and(|&fi| active.snap.frontends[fi].clitcpka)
}

/// The `v6only`/`v4v6` choice of the bind at `addr` in the active snapshot.
fn bind_v6only(proxy: &Proxy, addr: SocketAddr) -> Option<bool> {
    let active = proxy.active.load();
    let fi = *active.binds.get(&addr)?;
    active.snap.frontends[fi].binds.iter().find(|b| b.addr == addr)?.v6only
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
    // With `nbthread > 1`, a proxy thread that cannot take an accepted socket (registering it with
    // its reactor fails: ENOMEM, ENOSPC past `fs.epoll.max_user_watches`) sends the error back
    // here, where it counts as a failed accept: logged rate-limited, reported, backed off.
    let (failed_tx, mut failed) = mpsc::unbounded_channel();
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
        // A failure a proxy thread sent back while this loop went on accepting.
        if let Ok(e) = failed.try_recv() {
            if !after_failure(e, &sock, &l, addr, &proxy, &mut stop, &mut accept_errors).await {
                return;
            }
            continue;
        }
        let woke = tokio::select! {
            r = l.readable() => Ok(r),
            _ = stop.wait_for(|s| *s) => return,
            _ = paused.changed() => continue,
            Some(e) = failed.recv() => Err(e),
        };
        let mut ready = match woke {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                tracing::error!("cannot wait for connections on {addr}: {e}");
                return;
            }
            Err(e) => {
                if !after_failure(e, &sock, &l, addr, &proxy, &mut stop, &mut accept_errors).await {
                    return;
                }
                continue;
            }
        };
        // Past a rate limit, connections wait in the backlog until the rate has fallen back.
        if let Err(wait) = admit_rate(&proxy, addr) {
            drop(ready);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = reloads.changed() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
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
            Ok(r) => r.and_then(|(sock, peer)| {
                if frontend_tcpka(&proxy, addr) {
                    let _ = socket2::SockRef::from(&sock).set_keepalive(true);
                }
                start_serving(&proxy, sock, peer, addr, super::Slots::new(fe_permit, permit), &failed_tx)
            }),
            Err(_would_block) => continue,
        };
        if let Err(e) = accepted
            && !after_failure(e, &sock, &l, addr, &proxy, &mut stop, &mut accept_errors).await
        {
            return;
        }
    }
}

/// What the accept loop of `addr` does after a failed accept (or a proxy thread that could not
/// take an accepted socket): logs it at most once a second, reports descriptor exhaustion or a
/// socket that stopped listening to `fate` (listening again on a new socket), and backs off
/// instead of spinning. False once the loop is told to stop.
async fn after_failure(
    e: io::Error,
    sock: &ArcSwap<Listener>,
    l: &Listener,
    addr: SocketAddr,
    proxy: &Proxy,
    stop: &mut watch::Receiver<bool>,
    accept_errors: &mut ErrorLog,
) -> bool {
    let now = std::time::Instant::now();
    if let Some(dropped) = accept_errors.should_log(now) {
        let limit = if is_out_of_descriptors(&e) {
            " (out of file descriptors: raise `ulimit -n` or lower maxconn)"
        } else {
            ""
        };
        let more = if dropped > 0 { format!("; {dropped} more failures not logged") } else { String::new() };
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
            _ = stop.wait_for(|s| *s) => return false,
        }
        if let Some(new) = relisten(addr, bind_v6only(proxy, addr)) {
            sock.store(Arc::new(new));
        }
    }
    // EMFILE and friends: back off instead of spinning.
    tokio::select! {
        _ = tokio::time::sleep(ACCEPT_RETRY) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Starts the task serving an accepted connection: on this runtime, or with `nbthread > 1` on the
/// proxy thread `workers::Spread` picks, where the socket joins that thread's reactor and the
/// connection stays (see `workers`). Watched: the `track_proxy` watchdog sees a connection stuck
/// in one poll. Tracked on either: a reload, stop or upgrade drains every thread's connections.
fn start_serving(
    proxy: &Arc<Proxy>,
    sock: std::net::TcpStream,
    peer: SocketAddr,
    addr: SocketAddr,
    slots: super::Slots,
    failed: &mpsc::UnboundedSender<io::Error>,
) -> io::Result<()> {
    let Some(spread) = proxy.workers.get() else {
        let sock = tokio::net::TcpStream::from_std(sock)?;
        let conn = proxy.clone().serve_conn(sock, peer, addr, slots);
        proxy.tracker.spawn(crate::fate::watched(conn));
        return Ok(());
    };
    let (handle, live) = spread.assign();
    let (p, slots, failed) = (proxy.clone(), slots.on_thread(live), failed.clone());
    let conn = async move {
        // On the chosen thread, so the socket is in its reactor. A failure goes back to the
        // accept loop (gone only once it stopped, when nothing is left to back off).
        match tokio::net::TcpStream::from_std(sock) {
            Ok(sock) => p.serve_conn(sock, peer, addr, slots).await,
            Err(e) => {
                drop(slots);
                let _ = failed.send(e);
            }
        }
    };
    proxy.tracker.spawn_on(crate::fate::watched(conn), handle);
    Ok(())
}

/// How long a listener that stopped listening stays failed before it tries to listen again.
const LISTEN_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A socket that no longer listens (aborted by `ss -K`, say) is a failed listener for the VRRP
/// instances tracking the proxy until a new socket listens in its place. listen(2) again on the
/// aborted socket succeeds, but the kernel leaves that socket shut down and every connection it
/// accepts inherits it (writes fail, the client's request is answered with a reset); and the
/// reactor keeps reporting the old socket closed, so its accept loop would spin.
fn relisten(addr: SocketAddr, v6only: Option<bool>) -> Option<Listener> {
    match bind_proxy(addr, v6only).and_then(watch_readable) {
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

    /// Connects to `ip:port` and returns the port of the listener that accepted it, or `None` if
    /// the connection was refused.
    fn accepted_by(ip: &str, port: u16, ls: &[&std::net::TcpListener]) -> Option<usize> {
        let c = std::net::TcpStream::connect((ip.parse::<std::net::IpAddr>().unwrap(), port)).ok()?;
        // The handshake may finish on the listener's side a moment after connect returns.
        for _ in 0..200 {
            for (i, l) in ls.iter().enumerate() {
                l.set_nonblocking(true).unwrap();
                if let Ok((_, peer)) = l.accept() {
                    // A dual-stack socket sees an IPv4 client as IPv4-mapped (`::ffff:a.b.c.d`).
                    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
                    assert_eq!(canonical(peer), canonical(c.local_addr().unwrap()));
                    return Some(i);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("connected to {ip}:{port} but no listener has the connection");
    }

    fn system_dual_stack() -> bool {
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|s| s.trim() == "0")
    }

    #[test]
    fn an_ipv6_wildcard_bind_takes_ipv4_unless_v6only() {
        if !system_dual_stack() {
            eprintln!("skipped: net.ipv6.bindv6only is not 0");
            return;
        }
        // No option: the system default (dual-stack), as HAProxy leaves it.
        let l = bind_proxy("[::]:0".parse().unwrap(), None).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(accepted_by("127.0.0.1", port, &[&l]), Some(0));
        assert_eq!(accepted_by("::1", port, &[&l]), Some(0));
        // `v4v6`: dual-stack.
        let l = bind_proxy("[::]:0".parse().unwrap(), Some(false)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(accepted_by("127.0.0.1", port, &[&l]), Some(0));
        // `v6only`: IPv4 clients are refused.
        let l = bind_proxy("[::]:0".parse().unwrap(), Some(true)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(accepted_by("127.0.0.1", port, &[&l]), None);
        assert_eq!(accepted_by("::1", port, &[&l]), Some(0));
        // lbha's own services stay IPv6-only.
        let l = bind("[::]:0".parse().unwrap()).unwrap();
        assert_eq!(accepted_by("127.0.0.1", l.local_addr().unwrap().port(), &[&l]), None);
    }

    #[test]
    fn ipv4_and_dual_stack_ipv6_binds_of_one_port_both_listen() {
        if !system_dual_stack() {
            eprintln!("skipped: net.ipv6.bindv6only is not 0");
            return;
        }
        for v4 in ["0.0.0.0", "127.0.0.1"] {
            let l4 = bind_proxy(format!("{v4}:0").parse().unwrap(), None).unwrap();
            let port = l4.local_addr().unwrap().port();
            let l6 = bind_proxy(format!("[::]:{port}").parse().unwrap(), None).unwrap();
            // IPv4 goes to the IPv4 socket (the more specific), IPv6 to the other.
            for _ in 0..4 {
                assert_eq!(accepted_by("127.0.0.1", port, &[&l4, &l6]), Some(0), "{v4}");
                assert_eq!(accepted_by("::1", port, &[&l4, &l6]), Some(1), "{v4}");
            }
        }
        // A port held by a socket without SO_REUSEPORT stays taken.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let e = bind_proxy(format!("127.0.0.1:{port}").parse().unwrap(), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
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

    /// A proxy thread whose reactor refuses the socket (here EEXIST: its descriptor number is
    /// registered there already; in production ENOSPC or ENOMEM) sends the error back to the
    /// accept loop instead of only logging it, and frees the connection's slots.
    #[test]
    fn a_worker_that_cannot_take_a_socket_sends_the_error_back() {
        struct Fd(std::os::fd::RawFd);
        impl std::os::fd::AsRawFd for Fd {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0
            }
        }
        let src = "[[listen]]\nname = \"w\"\nbind = [\"127.0.0.1:1\"]\nservers = []\n";
        let proxy = Proxy::new(crate::config::parse(src, std::path::Path::new("t.toml")).unwrap());
        let worker = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        proxy.workers.set(super::super::workers::Spread::new(vec![worker.handle().clone()])).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (sock, peer) = accept_nonblocking(&l).unwrap();
        // The same descriptor number, registered first (not owned: the socket closes it).
        let fd = Fd(std::os::fd::AsRawFd::as_raw_fd(&sock));
        // SAFETY: the worker closes the socket it could not take while `taken` is registered; the
        // kernel drops a closed descriptor from its epoll set, and `taken`'s deregistration then
        // fails quietly (or, if the number was reused meanwhile, touches only this test's
        // private runtime).
        let taken =
            worker.block_on(async { unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } });
        let taken = taken.unwrap();
        let global = Arc::new(Semaphore::new(1));
        let slots = super::super::Slots::new(None, global.clone().try_acquire_owned().unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let addr = l.local_addr().unwrap();
        start_serving(&proxy, sock, peer, addr, slots, &tx).unwrap();
        // Only the worker's task holds a sender now: nothing sent means `None` once it ended.
        drop(tx);
        let e = worker.block_on(async { rx.recv().await }).expect("the error came back");
        assert_eq!(e.raw_os_error(), Some(nix::libc::EEXIST), "{e}");
        assert_eq!(global.available_permits(), 1, "the slot went back");
        assert_eq!(proxy.workers.get().unwrap().live(), [0], "no longer counted on the thread");
        drop(taken);
    }

    #[test]
    fn descriptor_exhaustion_is_recognised() {
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::EMFILE)));
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::ENFILE)));
        assert!(!is_out_of_descriptors(&io::Error::from_raw_os_error(nix::libc::ECONNABORTED)));
    }
}
