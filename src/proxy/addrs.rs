//! The actions that change a connection's addresses (`set-src`, `set-src-port`, `set-dst`,
//! `set-dst-port`) and the ones that end it abruptly (`reject`, `silent-drop`).
//!
//! As HAProxy 2.6 (which rewrites the connection's own addresses), a changed address holds for
//! the rest of the connection: every later `src`/`dst` fetch, stick key, log field (`%ci`,
//! `%cp`, `%fi`, `%fp`), `option forwardfor` and `send-proxy` header sees it.

use crate::sample::{SmpType, Value};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

/// Which address (or port) an action sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPart {
    Src,
    SrcPort,
    Dst,
    DstPort,
}

impl AddrPart {
    /// The action's HAProxy name.
    pub fn name(self) -> &'static str {
        match self {
            AddrPart::Src => "set-src",
            AddrPart::SrcPort => "set-src-port",
            AddrPart::Dst => "set-dst",
            AddrPart::DstPort => "set-dst-port",
        }
    }

    pub fn from_name(name: &str) -> Option<AddrPart> {
        Some(match name {
            "set-src" => AddrPart::Src,
            "set-src-port" => AddrPart::SrcPort,
            "set-dst" => AddrPart::Dst,
            "set-dst-port" => AddrPart::DstPort,
            _ => return None,
        })
    }

    fn port(self) -> bool {
        matches!(self, AddrPart::SrcPort | AddrPart::DstPort)
    }
}

/// `addr` with the address or port `part` set from `v`, as HAProxy's `tcp_action_req_set_src`
/// and friends: an address keeps the port, a port keeps the address (every address lbha holds
/// has a port, so HAProxy's fallback to 0.0.0.0 never applies); a port is cut to 16 bits as
/// HAProxy's `htons` does. `None` when the sample is not an address (or an integer): the action
/// then does nothing, as in HAProxy.
pub fn apply(addr: SocketAddr, part: AddrPart, v: Value) -> Option<SocketAddr> {
    if part.port() {
        let Value::Sint(p) = v.cast(SmpType::Sint)? else { return None };
        return Some(SocketAddr::new(addr.ip(), p as u16));
    }
    let ip = match v.cast(SmpType::Addr)? {
        Value::Ipv4(a) => IpAddr::V4(a),
        Value::Ipv6(a) => IpAddr::V6(a),
        _ => return None,
    };
    Some(SocketAddr::new(ip, addr.port()))
}

/// The addresses rules set on a connection: none until the first rule sets one. One pointer,
/// since every connection carries it (`ConnCtx` is kept small, see `proxy::sizes`).
#[derive(Debug, Default)]
pub struct Moved(arc_swap::ArcSwapOption<(SocketAddr, SocketAddr)>);

impl Moved {
    /// The addresses of a connection as accepted: a PROXY header's destination is the one the
    /// client reached (HAProxy's `dst`, `%fi`, and what `send-proxy` passes on), the socket's
    /// own address otherwise. The source is the header's already (`peer`).
    pub fn accepted(peer: SocketAddr, received: Option<&super::proxy_proto::Received>) -> Moved {
        match received.and_then(|r| r.addrs) {
            Some((_, dst)) => Moved(arc_swap::ArcSwapOption::from_pointee((peer, dst))),
            None => Moved::default(),
        }
    }

    /// Whether addresses are set (a PROXY header's, or a rule's).
    pub fn is_set(&self) -> bool {
        self.0.load().is_some()
    }

    /// (source, destination): the set ones, or `peer` and `local` as accepted.
    pub fn get(&self, peer: SocketAddr, local: SocketAddr) -> (SocketAddr, SocketAddr) {
        match &*self.0.load() {
            Some(m) => **m,
            None => (peer, local),
        }
    }

    /// Applies an action's sample; false when it did nothing. Two streams of one HTTP/2
    /// connection may set parts at once: each change applies onto the latest addresses.
    pub fn set(&self, peer: SocketAddr, local: SocketAddr, part: AddrPart, v: Value) -> bool {
        let mut applied = false;
        self.0.rcu(|cur| {
            let (mut src, mut dst) = cur.as_deref().copied().unwrap_or((peer, local));
            let slot = if matches!(part, AddrPart::Src | AddrPart::SrcPort) { &mut src } else { &mut dst };
            applied = match apply(*slot, part, v.clone()) {
                Some(new) => {
                    *slot = new;
                    true
                }
                None => false,
            };
            Some(std::sync::Arc::new((src, dst)))
        });
        applied
    }
}

/// `set-mark` / `set-tos`: an option of the client's socket, for the packets sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOpt {
    /// `SO_MARK` (the netfilter mark; needs CAP_NET_ADMIN).
    Mark(u32),
    /// `IP_TOS`, or `IPV6_TCLASS` on an IPv6 socket: the whole 8-bit field.
    Tos(u8),
}

impl SockOpt {
    /// Parses `set-mark VALUE` / `set-tos VALUE` as HAProxy's `strtol(.., 0)`: decimal, `0x`
    /// hexadecimal or `0` octal, the whole word.
    pub fn parse(action: &str, word: &str) -> Result<SockOpt, String> {
        let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
            Some(h) => (h, 16),
            None if word.len() > 1 && word.starts_with('0') => (&word[1..], 8),
            None => (word, 10),
        };
        let n = u64::from_str_radix(digits, radix).ok().filter(|_| !digits.is_empty());
        match (action, n) {
            ("set-mark", Some(n)) if n <= u64::from(u32::MAX) => Ok(SockOpt::Mark(n as u32)),
            ("set-tos", Some(n)) if n <= 255 => Ok(SockOpt::Tos(n as u8)),
            ("set-tos", _) => Err(format!("`set-tos` takes a number from 0 to 255 (decimal or 0x hex), got `{word}`")),
            _ => Err(format!("`{action}` takes a 32-bit number (decimal or 0x hex), got `{word}`")),
        }
    }

    /// Sets it on `fd` (the client's socket). As HAProxy, a failure (no privilege for the mark)
    /// changes nothing and is not an error of the connection.
    pub fn apply(self, fd: RawFd, v6: bool) -> nix::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt};
        if fd < 0 {
            return Ok(());
        }
        // SAFETY: the socket stays open while the rule that sets the option runs.
        let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let v6 = v6_traffic(fd).unwrap_or(v6);
        match self {
            SockOpt::Mark(m) => setsockopt(&sock, sockopt::Mark, &m),
            SockOpt::Tos(t) if v6 => setsockopt(&sock, sockopt::Ipv6TClass, &i32::from(t)),
            SockOpt::Tos(t) => setsockopt(&sock, sockopt::Ipv4Tos, &i32::from(t)),
        }
    }
}

/// The client socket's descriptor, for the rules that act on the socket itself (`silent-drop`,
/// `reject`, `set-mark`, `set-tos`). An HTTP/2 stream's rules run in a task of their own, which
/// can outlive the connection: once the socket is closed its number may belong to another
/// connection, so the connection retires it first ([`ClientFd::retire`]) and a late rule finds
/// nothing to act on.
#[derive(Debug)]
pub struct ClientFd(std::sync::Mutex<RawFd>);

impl ClientFd {
    pub fn new(fd: RawFd) -> ClientFd {
        ClientFd(std::sync::Mutex::new(fd))
    }

    /// The number, for a watch that runs while the connection holds its socket (HTTP/1).
    pub fn raw(&self) -> RawFd {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the open socket; `None` once retired. The socket cannot close meanwhile:
    /// retiring waits for `f`. A mutex, not a read-write lock: 8 bytes less in every
    /// connection, and two rules of one connection acting on its socket at once are rare.
    fn with<R>(&self, f: impl FnOnce(RawFd) -> R) -> Option<R> {
        let fd = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (*fd >= 0).then(|| f(*fd))
    }

    /// Called before the socket closes: later rules leave the number alone.
    pub fn retire(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = -1;
    }

    pub fn silent_drop(&self, v6: bool) -> Drop {
        self.with(|fd| silent_drop(fd, v6)).unwrap_or(Drop::Plain)
    }

    pub fn close_now(&self) {
        self.with(close_now);
    }

    /// `Ok` without effect once the connection is gone.
    pub fn apply(&self, o: SockOpt, v6: bool) -> nix::Result<()> {
        self.with(|fd| o.apply(fd, v6)).unwrap_or(Ok(()))
    }
}

/// Retires a [`ClientFd`] when dropped: declared after the value that owns the socket, so that
/// it drops (and retires) first.
pub struct RetireOnDrop<'a>(pub &'a ClientFd);

impl std::ops::Drop for RetireOnDrop<'_> {
    fn drop(&mut self) {
        self.0.retire();
    }
}

/// What `silent-drop` did to the client's socket before its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// `TCP_REPAIR` (needs CAP_NET_ADMIN): the close sends nothing at all.
    Repair,
    /// No privilege for that: `SO_LINGER 0` makes the close a reset, sent with a TTL (hop
    /// limit) of 1 so that it dies at the first router, as HAProxy does. Hosts on the same
    /// network (and loopback) still receive it.
    LowTtl,
    /// No socket (or every option failed): a plain close.
    Plain,
}

/// Prepares `fd` (the client's TCP socket) so that its close does not tell the client, as
/// HAProxy's `silent-drop`; then shuts its reading side, which sends nothing but ends the
/// connection's reads (every stream of an HTTP/2 one), so that it is closed at once.
pub fn silent_drop(fd: RawFd, v6: bool) -> Drop {
    use nix::sys::socket::{setsockopt, sockopt};
    if fd < 0 {
        return Drop::Plain;
    }
    // SAFETY: the socket stays open while the rule that drops it runs (the connection holds it).
    let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let v6 = v6_traffic(fd).unwrap_or(v6);
    let how = if setsockopt(&sock, sockopt::TcpRepair, &1).is_ok() {
        Drop::Repair
    } else {
        let linger = nix::libc::linger { l_onoff: 1, l_linger: 0 };
        let ttl = if v6 { setsockopt(&sock, sockopt::Ipv6Ttl, &1) } else { setsockopt(&sock, sockopt::Ipv4Ttl, &1) };
        match (setsockopt(&sock, sockopt::Linger, &linger), ttl) {
            (Ok(()), Ok(())) => Drop::LowTtl,
            _ => Drop::Plain,
        }
    };
    // Not both ways: a write shutdown would send a FIN, even in repair mode.
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Read);
    how
}

/// Whether the connection's packets are IPv6, read from the socket: an IPv4 client of a
/// dual-stack `[::]` bind has an IPv6 socket with an IPv4-mapped peer, and its packets take the
/// IPv4 options (`IP_TOS`, `IP_TTL`), not the IPv6 ones. `None` when the socket cannot tell.
fn v6_traffic(fd: RawFd) -> Option<bool> {
    use nix::sys::socket::{SockaddrLike, SockaddrStorage, getpeername};
    let peer = getpeername::<SockaddrStorage>(fd).ok()?;
    match (peer.as_sockaddr_in6(), peer.family()) {
        (Some(a), _) => Some(a.ip().to_ipv4_mapped().is_none()),
        (None, Some(nix::sys::socket::AddressFamily::Inet)) => Some(false),
        _ => None,
    }
}

/// Shuts the client's socket both ways: the connection (all of an HTTP/2 connection's
/// streams) ends at once, as HAProxy's `reject` does.
pub fn close_now(fd: RawFd) {
    if fd >= 0 {
        let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_descriptor_is_left_alone() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let fd = ClientFd::new(s.as_raw_fd());
        fd.retire();
        fd.close_now();
        assert_eq!(fd.silent_drop(false), Drop::Plain);
        assert!(fd.apply(SockOpt::Tos(0x20), false).is_ok());
        // The socket was not touched: it still carries data both ways.
        use std::io::{Read, Write};
        (&s).write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        (&c).read_exact(&mut b).unwrap();
        (&c).write_all(b"y").unwrap();
        (&s).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"y");
    }

    #[test]
    fn the_option_family_is_the_packets_not_the_sockets() {
        use std::os::fd::AsRawFd;
        let family = |bind: &str, to: &str| {
            let Ok(l) = std::net::TcpListener::bind(bind) else { return None };
            let port = l.local_addr().unwrap().port();
            let _c = std::net::TcpStream::connect(format!("{to}:{port}")).ok()?;
            let (s, _) = l.accept().unwrap();
            v6_traffic(s.as_raw_fd())
        };
        assert_eq!(family("127.0.0.1:0", "127.0.0.1"), Some(false));
        // An IPv6 socket reached over IPv4 (a dual-stack bind): IPv4 packets.
        match family("[::ffff:127.0.0.1]:0", "127.0.0.1") {
            Some(v6) => assert!(!v6, "an IPv4-mapped peer takes the IPv4 options"),
            None => eprintln!("skipped: no dual-stack IPv6 socket here"),
        }
        match family("[::1]:0", "[::1]") {
            Some(v6) => assert!(v6),
            None => eprintln!("skipped: no ::1 here"),
        }
        assert_eq!(v6_traffic(-1), None);
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_keeps_the_port_and_a_port_keeps_the_address() {
        let a = sa("192.0.2.1:4000");
        assert_eq!(apply(a, AddrPart::Src, Value::str("198.51.100.7")), Some(sa("198.51.100.7:4000")));
        assert_eq!(apply(a, AddrPart::Src, Value::str("2001:db8::1")), Some(sa("[2001:db8::1]:4000")));
        assert_eq!(apply(a, AddrPart::Src, Value::Ipv4("203.0.113.9".parse().unwrap())), Some(sa("203.0.113.9:4000")));
        assert_eq!(apply(a, AddrPart::SrcPort, Value::Sint(81)), Some(sa("192.0.2.1:81")));
        assert_eq!(apply(a, AddrPart::DstPort, Value::str("8080")), Some(sa("192.0.2.1:8080")));
        // HAProxy's htons: cut to 16 bits.
        assert_eq!(apply(a, AddrPart::SrcPort, Value::Sint(65536 + 5)), Some(sa("192.0.2.1:5")));
        assert_eq!(
            apply(sa("0.0.0.0:1"), AddrPart::Dst, Value::Ipv4(std::net::Ipv4Addr::UNSPECIFIED)),
            Some(sa("0.0.0.0:1"))
        );
    }

    #[test]
    fn what_is_no_address_changes_nothing() {
        let a = sa("192.0.2.1:4000");
        assert_eq!(apply(a, AddrPart::Src, Value::str("not-an-ip")), None);
        assert_eq!(apply(a, AddrPart::Src, Value::str("")), None);
        // HAProxy's string-to-integer cast reads the leading digits: none is port 0.
        assert_eq!(apply(a, AddrPart::SrcPort, Value::str("http")), Some(sa("192.0.2.1:0")));
        assert_eq!(apply(a, AddrPart::SrcPort, Value::str("")), None);
        let m = Moved::default();
        let (peer, local) = (a, sa("127.0.0.1:80"));
        assert!(!m.set(peer, local, AddrPart::Src, Value::str("x")));
        assert_eq!(m.get(peer, local), (peer, local));
    }

    #[test]
    fn moved_addresses_hold_for_the_connection() {
        let (peer, local) = (sa("127.0.0.1:5000"), sa("127.0.0.1:80"));
        let m = Moved::default();
        assert_eq!(m.get(peer, local), (peer, local));
        assert!(m.set(peer, local, AddrPart::Src, Value::str("192.0.2.10")));
        assert!(m.set(peer, local, AddrPart::DstPort, Value::Sint(8443)));
        assert_eq!(m.get(peer, local), (sa("192.0.2.10:5000"), sa("127.0.0.1:8443")));
        assert!(m.set(peer, local, AddrPart::SrcPort, Value::Sint(7)));
        assert!(m.set(peer, local, AddrPart::Dst, Value::str("::1")));
        assert_eq!(m.get(peer, local), (sa("192.0.2.10:7"), sa("[::1]:8443")));
    }

    #[test]
    fn names_are_haproxy_s() {
        for p in [AddrPart::Src, AddrPart::SrcPort, AddrPart::Dst, AddrPart::DstPort] {
            assert_eq!(AddrPart::from_name(p.name()), Some(p));
        }
        assert_eq!(AddrPart::from_name("set-srcport"), None);
    }

    #[test]
    fn marks_and_tos_parse_as_strtol_and_reach_the_socket() {
        assert_eq!(SockOpt::parse("set-mark", "42"), Ok(SockOpt::Mark(42)));
        assert_eq!(SockOpt::parse("set-mark", "0x2a"), Ok(SockOpt::Mark(42)));
        assert_eq!(SockOpt::parse("set-mark", "052"), Ok(SockOpt::Mark(42)));
        assert_eq!(SockOpt::parse("set-tos", "0x10"), Ok(SockOpt::Tos(16)));
        assert_eq!(SockOpt::parse("set-tos", "0"), Ok(SockOpt::Tos(0)));
        assert!(SockOpt::parse("set-tos", "256").unwrap_err().contains("0 to 255"));
        assert!(SockOpt::parse("set-mark", "4294967296").unwrap_err().contains("32-bit"));
        assert!(SockOpt::parse("set-mark", "0x").is_err() && SockOpt::parse("set-mark", "12ab").is_err());
        use nix::sys::socket::{getsockopt, sockopt};
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        SockOpt::Tos(0x20).apply(s.as_raw_fd(), false).unwrap();
        assert_eq!(getsockopt(&s, sockopt::Ipv4Tos).unwrap(), 0x20);
        // The mark needs CAP_NET_ADMIN: checked only where it was allowed.
        if SockOpt::Mark(7).apply(s.as_raw_fd(), false).is_ok() {
            assert_eq!(getsockopt(&s, sockopt::Mark).unwrap(), 7);
        }
    }

    #[test]
    fn a_dropped_socket_sends_no_answer() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let how = silent_drop(s.as_raw_fd(), false);
        assert_ne!(how, Drop::Plain, "as root or not, one of the two ways applies");
        drop(s);
        c.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
        // Nothing is written: data for a socket that is gone would draw a reset from the kernel.
        let mut buf = [0u8; 8];
        match how {
            // Nothing came: the read waits (TCP_REPAIR closed without a FIN or reset).
            Drop::Repair => {
                let e = c.read(&mut buf).unwrap_err();
                assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{e}");
            }
            // A reset on loopback (its TTL of 1 is enough here), never a FIN's clean end.
            _ => assert!(!matches!(c.read(&mut buf), Ok(0))),
        }
    }
}
