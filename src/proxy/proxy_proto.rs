//! PROXY protocol v1 and v2: HAProxy's `accept-proxy` (and `tcp-request connection expect-proxy
//! layer4`) on binds, `send-proxy`/`send-proxy-v2` towards servers and `check-send-proxy` on
//! checks. Parsing and building the header lines are the `ppp` crate's; framing on a stream (how
//! many bytes to wait for, where the header ends) and what lbha takes from it are here, pure.

use ppp::v2;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// The largest header accepted: v1 lines are at most 107 bytes; a v2 header is cut at a size
/// HAProxy's default buffer would hold with room to spare.
pub const MAX_HEADER: usize = 4096;

/// What a received header says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    /// The original client and the address it connected to; `None` for v1 `UNKNOWN`, a v2
    /// `LOCAL` command (a health check from the sender) or an address family lbha cannot use.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// v2 `PP2_TYPE_AUTHORITY` (the sender's TLS SNI).
    pub authority: Option<String>,
    /// v2 `PP2_TYPE_UNIQUE_ID`.
    pub unique_id: Option<Vec<u8>>,
    pub version: u8,
}

/// What the bytes seen so far come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A header may still follow: read more.
    Need,
    /// A whole header of `len` bytes.
    Done(Received, usize),
    Bad(String),
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V1_MAX: usize = 107;
/// Signature, version/command, family/protocol and length.
const V2_MIN: usize = 16;

/// Looks at the first bytes of a connection (pure: tests feed it byte slices).
pub fn scan(buf: &[u8]) -> Scan {
    let n = buf.len();
    if n == 0 {
        return Scan::Need;
    }
    if V1_PREFIX.starts_with(&buf[..n.min(V1_PREFIX.len())]) {
        if n < V1_PREFIX.len() {
            return Scan::Need;
        }
        let Some(cr) = buf.iter().take(V1_MAX).position(|&b| b == b'\r') else {
            return if n >= V1_MAX { Scan::Bad("v1 header longer than 107 bytes".into()) } else { Scan::Need };
        };
        if n < cr + 2 {
            return Scan::Need;
        }
        let line = &buf[..cr + 2];
        return match ppp::v1::Header::try_from(line) {
            Ok(h) => {
                let addrs = match h.addresses {
                    ppp::v1::Addresses::Tcp4(a) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    ppp::v1::Addresses::Tcp6(a) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    ppp::v1::Addresses::Unknown => None,
                };
                Scan::Done(Received { addrs, version: 1, ..Received::default() }, line.len())
            }
            Err(e) => Scan::Bad(format!("invalid v1 header {:?}: {e}", String::from_utf8_lossy(line))),
        };
    }
    let sig = v2::PROTOCOL_PREFIX;
    if !sig.starts_with(&buf[..n.min(sig.len())]) {
        return Scan::Bad("not a PROXY protocol header".into());
    }
    if n < V2_MIN {
        return Scan::Need;
    }
    let total = V2_MIN + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if total > MAX_HEADER {
        return Scan::Bad(format!("v2 header of {total} bytes is larger than {MAX_HEADER}"));
    }
    if n < total {
        return Scan::Need;
    }
    match v2::Header::try_from(&buf[..total]) {
        Ok(h) => {
            let mut r = Received { version: 2, ..Received::default() };
            if h.command == v2::Command::Proxy {
                r.addrs = match h.addresses {
                    v2::Addresses::IPv4(a) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    v2::Addresses::IPv6(a) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
                };
            }
            for tlv in h.tlvs() {
                let tlv = match tlv {
                    Ok(t) => t,
                    Err(e) => return Scan::Bad(format!("invalid v2 TLV: {e}")),
                };
                match tlv.kind {
                    k if k == v2::Type::Authority as u8 => {
                        r.authority = Some(String::from_utf8_lossy(&tlv.value).into_owned());
                    }
                    k if k == v2::Type::UniqueId as u8 => r.unique_id = Some(tlv.value.to_vec()),
                    _ => {}
                }
            }
            Scan::Done(r, total)
        }
        Err(e) => Scan::Bad(format!("invalid v2 header: {e}")),
    }
}

/// Reads one header off `sock`, consuming exactly its bytes (what follows is the client's
/// data), within `limit`. Peeks first, so nothing past the header is taken; a header split over
/// several segments is waited for in short steps.
pub async fn read(sock: &TcpStream, limit: Duration) -> Result<Received, String> {
    let fut = async {
        let mut buf = vec![0u8; MAX_HEADER];
        let mut last = 0;
        loop {
            let n = sock.peek(&mut buf).await.map_err(|e| format!("reading the PROXY header: {e}"))?;
            if n == 0 {
                return Err("connection closed before a PROXY header".to_string());
            }
            match scan(&buf[..n]) {
                Scan::Done(r, len) => {
                    // The bytes are already queued (peeked), so this does not wait.
                    let mut got = 0;
                    while got < len {
                        sock.readable().await.map_err(|e| format!("reading the PROXY header: {e}"))?;
                        match sock.try_read(&mut buf[got..len]) {
                            Ok(0) => return Err("connection closed inside the PROXY header".to_string()),
                            Ok(k) => got += k,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(format!("reading the PROXY header: {e}")),
                        }
                    }
                    return Ok(r);
                }
                Scan::Bad(why) => return Err(why),
                Scan::Need => {
                    // `peek` returns at once while anything is queued: wait for more to arrive.
                    if n == last {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    last = n;
                }
            }
        }
    };
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| Err("timeout waiting for the PROXY header".into()))
}

/// `send-proxy` (v1) or `send-proxy-v2`, with the `proxy-v2-options` lbha can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendProxy {
    pub v2: bool,
    /// `proxy-v2-options ssl`: PP2_TYPE_SSL with the client's TLS version.
    pub ssl: bool,
    /// `proxy-v2-options authority`: PP2_TYPE_AUTHORITY with the client's SNI.
    pub authority: bool,
    /// `proxy-v2-options unique-id`: PP2_TYPE_UNIQUE_ID with the request's `unique-id-format`
    /// id (left out when there is none, as HAProxy does).
    pub unique_id: bool,
}

/// A request's unique id (`unique-id-format`), kept in its extensions for the PROXY header.
#[derive(Debug, Clone)]
pub struct UniqueId(pub String);

/// What the client side of a connection tells a server through the header.
#[derive(Debug, Clone, Default)]
pub struct Origin<'a> {
    /// Client and the address it reached; `None` makes a v1 `UNKNOWN` / v2 `LOCAL` header
    /// (HAProxy's form for its own health checks).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// TLS version name of the client connection (`TLSv1.3`), when it came over TLS.
    pub tls_version: Option<&'a str>,
    pub sni: Option<&'a str>,
    pub unique_id: Option<&'a [u8]>,
}

/// The header bytes for one server connection.
pub fn build(how: SendProxy, origin: &Origin<'_>) -> Vec<u8> {
    let addrs = origin.addrs.map(|(s, d)| same_family(s, d));
    if !how.v2 {
        return match addrs {
            Some((s, d)) => {
                let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                format!("PROXY {proto} {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()).into_bytes()
            }
            None => b"PROXY UNKNOWN\r\n".to_vec(),
        };
    }
    let mut b = match addrs {
        Some(a) => v2::Builder::with_addresses(v2::Version::Two | v2::Command::Proxy, v2::Protocol::Stream, a),
        None => v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        ),
    };
    // Writing to a Vec cannot fail; a TLV that did would only be left out.
    if how.authority
        && let Some(sni) = origin.sni
    {
        b = b.write_tlv(v2::Type::Authority, sni.as_bytes()).unwrap_or_else(|_| unreachable_builder());
    }
    if how.ssl {
        b = b.write_tlv(v2::Type::SSL, &ssl_tlv(origin.tls_version)).unwrap_or_else(|_| unreachable_builder());
    }
    if how.unique_id
        && let Some(id) = origin.unique_id
    {
        b = b.write_tlv(v2::Type::UniqueId, id).unwrap_or_else(|_| unreachable_builder());
    }
    b.build().unwrap_or_default()
}

fn unreachable_builder() -> v2::Builder {
    v2::Builder::new(0x21, 0)
}

/// PP2_TYPE_SSL's value: client flags (PP2_CLIENT_SSL when the client used TLS), verify (0:
/// lbha does not verify client certificates) and the PP2_SUBTYPE_SSL_VERSION sub-TLV.
fn ssl_tlv(version: Option<&str>) -> Vec<u8> {
    let mut v = vec![u8::from(version.is_some())];
    v.extend_from_slice(&0u32.to_be_bytes());
    if let Some(ver) = version {
        v.push(v2::Type::SSLVersion as u8);
        v.extend_from_slice(&(ver.len() as u16).to_be_bytes());
        v.extend_from_slice(ver.as_bytes());
    }
    v
}

/// Both addresses in one family, as HAProxy sends them: IPv4 mapped into IPv6 when they differ.
fn same_family(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if s.is_ipv4() == d.is_ipv4() { (s, d) } else { (v6(s), v6(d)) }
}

/// HAProxy's name of a TLS version, for PP2_SUBTYPE_SSL_VERSION.
pub fn tls_version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "TLS",
    }
}

/// The client-side facts a connection learned after its accept: the PROXY header it came with,
/// and its TLS version and SNI (for `send-proxy-v2` options).
#[derive(Debug, Default)]
pub struct ClientInfo {
    /// Boxed, both: every client connection holds a `ClientInfo`, few use it.
    pub received: Option<Box<Received>>,
    /// TLS version name and SNI, set once the client's handshake is done.
    pub tls: std::sync::OnceLock<Box<(&'static str, Option<String>)>>,
}

impl ClientInfo {
    /// The header for a server, given the client (`src`) and the address it reached (`dst`):
    /// the connection's addresses as the rules left them, which start from a received header's.
    pub fn header_for(&self, how: SendProxy, src: SocketAddr, dst: SocketAddr, unique_id: Option<&[u8]>) -> Vec<u8> {
        let tls = self.tls.get();
        let sni = tls.and_then(|t| t.1.as_deref()).or(self.received.as_ref().and_then(|r| r.authority.as_deref()));
        build(how, &Origin { addrs: Some((src, dst)), tls_version: tls.map(|t| t.0), sni, unique_id })
    }
}

/// How long a stopping process still waits for a PROXY header.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Whether a connection must start with a PROXY header: `accept-proxy` on the bind, or a
/// `tcp-request connection expect-proxy layer4` whose condition holds for the real peer.
pub fn expected(
    peer: SocketAddr,
    local: SocketAddr,
    fe: &crate::config::snapshot::Frontend,
    bind: &crate::config::snapshot::Bind,
    maps: &dyn crate::sample::Maps,
) -> bool {
    bind.accept_proxy
        || fe.expect_proxy.as_ref().is_some_and(|e| {
            let at = RealPeer { src: peer, dst: local };
            e.cond.as_ref().is_none_or(|c| c.eval(&fe.acls, &at, maps))
        })
}

/// What a connection rule can see before the PROXY header: the real peer's addresses.
struct RealPeer {
    src: SocketAddr,
    dst: SocketAddr,
}

impl crate::sample::SampleContext for RealPeer {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.dst)
    }
}

/// Reads the header [`expected`] asked for and gives the client's address from it (unchanged
/// for `UNKNOWN`/`LOCAL`). `None`: the header was missing or malformed, or did not come within
/// `timeout client` (or a second, once stopping); the connection is closed and the reason logged.
pub async fn accept(
    sock: &TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    fe: &crate::config::snapshot::Frontend,
    active: &super::Active,
    drain: &tokio::sync::watch::Sender<bool>,
) -> Option<(SocketAddr, Option<Received>)> {
    // A stop does not wait `timeout client` for a header: a moment for one on its way, then go.
    let reading = read(sock, fe.timeouts.client);
    tokio::pin!(reading);
    let mut stopping = drain.subscribe();
    let got = tokio::select! {
        r = &mut reading => r,
        () = super::drained(&mut stopping) => match tokio::time::timeout(STOP_GRACE, reading).await {
            Ok(r) => r,
            Err(_) => Err("stopping before the PROXY header came".into()),
        },
    };
    match got {
        Ok(r) => Some((r.addrs.map_or(peer, |(src, _)| src), Some(r))),
        Err(why) => {
            let line = format!("{peer} {}/{local}: PROXY protocol error, connection closed: {why}", fe.name);
            tracing::info!("{line}");
            if fe.log != crate::config::snapshot::LogMode::Off && active.logger.enabled() {
                active.logger.log(crate::log::format::Level::Info, &line);
            }
            None
        }
    }
}

/// Keeps the client's TLS version and SNI once its handshake is done.
pub fn note_tls(info: &ClientInfo, conn: &rustls::ServerConnection) {
    let version = conn.protocol_version().map_or("TLS", tls_version_name);
    let _ = info.tls.set(Box::new((version, conn.server_name().map(str::to_string))));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_v1_line_gives_the_client_and_its_length() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        match scan(line) {
            Scan::Done(r, len) => {
                assert_eq!(r.addrs, Some((sa("192.0.2.7:56324"), sa("198.51.100.1:443"))));
                assert_eq!((r.version, len), (1, 45));
            }
            other => panic!("{other:?}"),
        }
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n";
        assert!(
            matches!(scan(v6), Scan::Done(Received { addrs: Some((s, _)), .. }, 44) if s == sa("[2001:db8::1]:1000"))
        );
        assert!(matches!(scan(b"PROXY UNKNOWN\r\n"), Scan::Done(Received { addrs: None, version: 1, .. }, 15)));
    }

    #[test]
    fn a_header_cut_short_asks_for_more_at_every_length() {
        let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
        for i in 0..v1.len() {
            assert_eq!(scan(&v1[..i]), Scan::Need, "v1 cut at {i}");
        }
        let v2 = build(
            SendProxy { v2: true, ssl: true, authority: true, unique_id: false },
            &Origin {
                addrs: Some((sa("192.0.2.7:1"), sa("198.51.100.1:2"))),
                tls_version: Some("TLSv1.3"),
                sni: Some("a.example"),
                unique_id: None,
            },
        );
        for i in 0..v2.len() {
            assert_eq!(scan(&v2[..i]), Scan::Need, "v2 cut at {i}");
        }
        assert!(matches!(scan(&v2), Scan::Done(_, n) if n == v2.len()));
    }

    #[test]
    fn anything_else_is_refused_at_once() {
        for bad in
            [&b"GET / HTTP/1.1\r\n"[..], b"G", b"\x16\x03\x01", b"PROXY TCP4 nonsense\r\n", b"PROXY TCP9 1 2 3 4\r\n"]
        {
            assert!(matches!(scan(bad), Scan::Bad(_)), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"PROXY ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(scan(&long), Scan::Bad(why) if why.contains("107")));
        // A v2 signature with a wrong version nibble.
        let mut v2 = build(SendProxy { v2: true, ssl: false, authority: false, unique_id: false }, &Origin::default());
        v2[12] = 0x11;
        assert!(matches!(scan(&v2), Scan::Bad(_)));
        // A declared length beyond the limit is refused before it is waited for.
        let mut big = v2::PROTOCOL_PREFIX.to_vec();
        big.extend([0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(scan(&big), Scan::Bad(why) if why.contains("larger")));
    }

    #[test]
    fn v2_carries_addresses_authority_and_ssl_and_reads_back() {
        let how = SendProxy { v2: true, ssl: true, authority: true, unique_id: true };
        let o = Origin {
            addrs: Some((sa("[2001:db8::5]:4000"), sa("[2001:db8::1]:443"))),
            tls_version: Some("TLSv1.2"),
            sni: Some("www.example"),
            unique_id: Some(b"req-42"),
        };
        let bytes = build(how, &o);
        let Scan::Done(r, _) = scan(&bytes) else { panic!() };
        assert_eq!(r.addrs, o.addrs);
        assert_eq!(r.authority.as_deref(), Some("www.example"));
        assert_eq!(r.unique_id.as_deref(), Some(&b"req-42"[..]));
        // Without an id (no `unique-id-format`) the TLV is left out, as HAProxy does.
        let Scan::Done(r, _) = scan(&build(how, &Origin { unique_id: None, ..o.clone() })) else { panic!() };
        assert_eq!(r.unique_id, None);
        let h = v2::Header::try_from(bytes.as_slice()).unwrap();
        let ssl = h.tlvs().map(Result::unwrap).find(|t| t.kind == v2::Type::SSL as u8).expect("ssl tlv");
        assert_eq!(ssl.value[0], 1, "PP2_CLIENT_SSL");
        assert_eq!(&ssl.value[1..5], &[0, 0, 0, 0]);
        assert_eq!(ssl.value[5], v2::Type::SSLVersion as u8);
        assert_eq!(&ssl.value[8..], b"TLSv1.2");
    }

    #[test]
    fn checks_and_unknown_clients_send_local_or_unknown() {
        let none = Origin::default();
        assert_eq!(
            build(SendProxy { v2: false, ssl: false, authority: false, unique_id: false }, &none),
            b"PROXY UNKNOWN\r\n"
        );
        let local = build(SendProxy { v2: true, ssl: false, authority: false, unique_id: false }, &none);
        assert_eq!(local.len(), 16);
        assert_eq!(local[12], 0x20, "version 2, LOCAL");
        assert!(matches!(scan(&local), Scan::Done(Received { addrs: None, version: 2, .. }, 16)));
    }

    #[test]
    fn mixed_families_are_sent_as_ipv6() {
        let o = Origin { addrs: Some((sa("192.0.2.7:1"), sa("[2001:db8::1]:2"))), ..Origin::default() };
        let line = build(SendProxy { v2: false, ssl: false, authority: false, unique_id: false }, &o);
        assert_eq!(line, b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1 2\r\n");
    }

    #[test]
    fn a_forwarded_header_keeps_the_first_hop_destination_and_authority() {
        let info = ClientInfo {
            received: Some(Box::new(Received {
                addrs: Some((sa("192.0.2.7:1"), sa("203.0.113.9:443"))),
                authority: Some("app.example".into()),
                ..Received::default()
            })),
            ..ClientInfo::default()
        };
        // The connection's addresses start from the received header's (`Moved::accepted`).
        let bytes = info.header_for(
            SendProxy { v2: true, ssl: false, authority: true, unique_id: false },
            sa("192.0.2.7:1"),
            sa("203.0.113.9:443"),
            None,
        );
        let Scan::Done(r, _) = scan(&bytes) else { panic!() };
        assert_eq!(r.addrs, Some((sa("192.0.2.7:1"), sa("203.0.113.9:443"))));
        assert_eq!(r.authority.as_deref(), Some("app.example"));
    }

    #[tokio::test]
    async fn read_takes_the_header_and_leaves_the_data() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            // Split across two writes, with a pause, so the reader sees a partial header.
            c.write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 5").await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.write_all(b"6324 443\r\nhello").await.unwrap();
            c
        });
        let (mut s, _) = l.accept().await.unwrap();
        let r = read(&s, Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.addrs.unwrap().0, sa("192.0.2.7:56324"));
        let mut rest = [0u8; 5];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"hello");
        drop(client.await);
        // A client that sends nothing is given up on after the limit.
        let _c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let e = read(&s, Duration::from_millis(100)).await.unwrap_err();
        assert!(e.contains("timeout"), "{e}");
    }
}
