//! HAProxy's `source ADDR[:PORT[-PORT]]`: the local address (and port, or port range) that
//! connections to a server are bound to before they connect. The text form is parsed here,
//! pure; [`connect`] is the I/O edge.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use tokio::net::TcpStream;

/// A validated `source`.
#[derive(Debug)]
pub struct Source {
    pub ip: IpAddr,
    /// Inclusive; `None` lets the kernel pick the port.
    pub ports: Option<(u16, u16)>,
    /// Where the next connection starts looking in the range, so consecutive connections do not
    /// all try the same busy port first.
    next: AtomicU32,
}

impl PartialEq for Source {
    fn eq(&self, o: &Self) -> bool {
        self.ip == o.ip && self.ports == o.ports
    }
}

impl Eq for Source {}

impl Source {
    /// The source to use towards `to`: none when of the other address family (a check or
    /// agent address may differ from the server's).
    pub fn towards(src: Option<&std::sync::Arc<Source>>, to: SocketAddr) -> Option<&Source> {
        src.map(|s| &**s).filter(|s| s.ip.is_ipv4() == to.is_ipv4())
    }

    /// Binds a socket of health checks, kept between probes, to the source address; the kernel
    /// picks the port at each connect (a port range is for the traffic's connections only).
    pub fn bind_kept(&self, sock: &socket2::Socket) -> io::Result<()> {
        let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::IpBindAddressNoPort, &true);
        sock.bind(&SocketAddr::new(self.ip, 0).into())
    }

    pub fn new(ip: IpAddr, ports: Option<(u16, u16)>) -> Self {
        Self { ip, ports, next: AtomicU32::new(0) }
    }

    /// `ADDR`, `ADDR:PORT`, `[V6]:PORT`, a bare IPv6 address, and with `ranges` (server lines
    /// only, as in HAProxy) `ADDR:LOW-HIGH`. `usesrc` (transparent proxying) and `interface`
    /// are refused: lbha cannot honour them.
    pub fn parse(text: &str, ranges: bool) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let addr = words.next().ok_or("expected ADDR[:PORT]")?;
        if let Some(w) = words.next() {
            return Err(match w {
                "usesrc" => "`usesrc` (transparent proxying with a foreign source address) is not supported".into(),
                "interface" => "`interface` (binding to a device) is not supported".into(),
                other => format!("unexpected `{other}` after the address"),
            });
        }
        let addr = ["ipv4@", "ipv6@"].iter().find_map(|p| addr.strip_prefix(p)).unwrap_or(addr);
        if let Ok(ip) = addr.parse::<IpAddr>() {
            return Ok(Self::new(ip, None));
        }
        let (host, port) = match addr.strip_prefix('[') {
            Some(rest) => rest.split_once("]:").ok_or_else(|| format!("invalid address `{addr}`"))?,
            None => addr.rsplit_once(':').ok_or_else(|| format!("invalid address `{addr}`"))?,
        };
        let ip: IpAddr = match host {
            "" | "*" => std::net::Ipv4Addr::UNSPECIFIED.into(),
            h => h.parse().map_err(|_| format!("invalid address `{h}` (an IP address is needed)"))?,
        };
        let num = |p: &str| match p.parse::<u16>() {
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(format!("invalid port `{p}`")),
        };
        let ports = match port.split_once('-') {
            Some(_) if !ranges => return Err(format!("port range not permitted here in `{addr}`")),
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo == 0 || hi < lo {
                    return Err(format!("invalid port range `{port}`"));
                }
                (lo, hi)
            }
            None => {
                let p = num(port)?;
                (p, p)
            }
        };
        // Port 0 is the kernel's choice, as no port.
        Ok(Self::new(ip, (ports != (0, 0)).then_some(ports)))
    }

    /// The local addresses to try for one connection: the whole range once, from a rotating
    /// start.
    fn candidates(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let (lo, hi) = self.ports.unwrap_or((0, 0));
        let span = u32::from(hi - lo) + 1;
        let start = self.next.fetch_add(1, Relaxed) % span;
        (0..span).map(move |i| SocketAddr::new(self.ip, lo + ((start + i) % span) as u16))
    }
}

/// Connects to `to`, from `source` when there is one.
pub async fn connect(to: SocketAddr, source: Option<&Source>) -> io::Result<TcpStream> {
    connect_noting(to, source, &mut None).await
}

/// [`connect`], writing the connection's local address to `local` as soon as the kernel picks
/// it: a connect that fails or times out still names where it left from (HAProxy logs it as
/// `%bi:%bp`).
pub async fn connect_noting(
    to: SocketAddr,
    source: Option<&Source>,
    local: &mut Option<SocketAddr>,
) -> io::Result<TcpStream> {
    let Some(src) = source else {
        return attempt(to, None, local).await.map_err(Step::into_inner);
    };
    let mut last = None;
    for (tried, from) in src.candidates().enumerate() {
        // A busy range is walked in steps, so other tasks (and the connect timeout) still run.
        if tried > 0 && tried % 256 == 0 {
            tokio::task::yield_now().await;
        }
        match attempt(to, Some((src, from)), local).await {
            Err(Step::Bind(e)) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            // The same local port may already reach this server (a 4-tuple in use): try another.
            Err(Step::Connect(e)) if e.kind() == io::ErrorKind::AddrNotAvailable && src.ports.is_some() => {
                last = Some(e)
            }
            r => return r.map_err(Step::into_inner),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free port in the source range")))
}

/// Where one connect attempt failed: a bind error lets the caller try the next source port.
enum Step {
    Bind(io::Error),
    Connect(io::Error),
}

impl Step {
    fn into_inner(self) -> io::Error {
        match self {
            Step::Bind(e) | Step::Connect(e) => e,
        }
    }
}

/// One non-blocking connect, bound to `bind` first when given. The socket is made here rather
/// than by tokio's `connect` so that its local address can be read while the handshake runs
/// (after a refusal the kernel no longer reports it).
async fn attempt(
    to: SocketAddr,
    bind: Option<(&Source, SocketAddr)>,
    local: &mut Option<SocketAddr>,
) -> Result<TcpStream, Step> {
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None).map_err(Step::Connect)?;
    sock.set_nonblocking(true).map_err(Step::Connect)?;
    if let Some((src, from)) = bind {
        if src.ports.is_some() {
            // A port of the range may be in TIME_WAIT from an earlier connection.
            sock.set_reuse_address(true).map_err(Step::Bind)?;
        } else {
            // The port is chosen at connect, per destination: a bind to `ADDR:0` alone would
            // reserve a port for every connection, whatever the server, and run out of them
            // (HAProxy sets the same option).
            let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::IpBindAddressNoPort, &true);
        }
        sock.bind(&from.into()).map_err(Step::Bind)?;
    }
    match sock.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) => return Err(Step::Connect(e)),
    }
    *local = sock.local_addr().ok().and_then(|a| a.as_socket());
    let stream = TcpStream::from_std(sock.into()).map_err(Step::Connect)?;
    loop {
        stream.writable().await.map_err(Step::Connect)?;
        if let Some(e) = stream.take_error().map_err(Step::Connect)? {
            return Err(Step::Connect(e));
        }
        match stream.peer_addr() {
            Ok(_) => return Ok(stream),
            // Woken before the handshake ended: the readiness is cleared and waited for again.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                let _ = stream.try_io(tokio::io::Interest::WRITABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
            Err(e) => return Err(Step::Connect(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_haproxy_accepts() {
        let s = Source::parse("127.0.0.2", false).unwrap();
        assert_eq!((s.ip.to_string(), s.ports), ("127.0.0.2".into(), None));
        let s = Source::parse("127.0.0.2:2000", false).unwrap();
        assert_eq!(s.ports, Some((2000, 2000)));
        let s = Source::parse("127.0.0.2:2000-2010", true).unwrap();
        assert_eq!(s.ports, Some((2000, 2010)));
        assert_eq!(Source::parse("[::1]:80", false).unwrap().ip.to_string(), "::1");
        assert_eq!(Source::parse("::1", false).unwrap().ip.to_string(), "::1");
        assert_eq!(Source::parse("ipv4@10.0.0.1:0", false).unwrap(), Source::new("10.0.0.1".parse().unwrap(), None));
        assert_eq!(Source::parse("0.0.0.0:5000", false).unwrap().ports, Some((5000, 5000)));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(Source::parse("127.0.0.2:2000-2010", false).unwrap_err().contains("port range not permitted here"));
        assert!(Source::parse("127.0.0.2 usesrc clientip", true).unwrap_err().contains("usesrc"));
        assert!(Source::parse("127.0.0.2 interface eth0", true).unwrap_err().contains("interface"));
        assert!(Source::parse("foo", true).unwrap_err().contains("invalid address"));
        assert!(Source::parse("host.example:80", true).unwrap_err().contains("IP address"));
        assert!(Source::parse("127.0.0.2:70000", true).unwrap_err().contains("invalid port"));
        assert!(Source::parse("127.0.0.2:10-5", true).unwrap_err().contains("invalid port range"));
        assert!(Source::parse("", true).is_err());
    }

    #[test]
    fn the_range_is_walked_once_from_a_rotating_start() {
        let s = Source::parse("127.0.0.2:2000-2002", true).unwrap();
        let ports = |s: &Source| s.candidates().map(|a| a.port()).collect::<Vec<_>>();
        assert_eq!(ports(&s), [2000, 2001, 2002]);
        assert_eq!(ports(&s), [2001, 2002, 2000]);
        let one = Source::parse("127.0.0.2", true).unwrap();
        assert_eq!(ports(&one), [0]);
    }

    #[tokio::test]
    async fn connections_leave_from_the_source_address() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = l.local_addr().unwrap();
        let src = Source::parse("127.0.0.3", false).unwrap();
        let c = connect(to, Some(&src)).await.unwrap();
        let (_s, peer) = l.accept().await.unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.3");
        assert_eq!(c.local_addr().unwrap().ip().to_string(), "127.0.0.3");
        // A range: two live connections take two ports of it.
        let base = std::net::TcpListener::bind("127.0.0.3:0").unwrap().local_addr().unwrap().port().min(65000);
        let src = Source::parse(&format!("127.0.0.3:{base}-{}", base + 3), true).unwrap();
        let a = connect(to, Some(&src)).await.unwrap();
        let b = connect(to, Some(&src)).await.unwrap();
        let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        assert!((base..=base + 3).contains(&pa) && (base..=base + 3).contains(&pb) && pa != pb, "{pa} {pb}");
    }
}
