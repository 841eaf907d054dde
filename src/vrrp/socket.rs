//! Raw IP protocol 112 sockets for one instance: a receive socket joined to 224.0.0.18 / ff02::12 (or
//! `vrrp_mcast_group4|6`) on the instance's interface, and a send socket bound to the device and the source address with TTL /
//! hop limit 255 and TOS 0xc0 (keepalived's settings, vrrp.md §7).
//!
//! The receive socket is not bound to the group, so unicast adverts (`unicast_peer`) arrive on it
//! too; the caller tells them apart by destination for the TTL rule.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{IPPROTO_VRRP, MCAST_V4, MCAST_V6, VRRP_TOS, VRRP_TTL};

/// Largest datagram we read: an IPv4 header with options plus 255 IPv6-sized addresses.
const RECV_BUF: usize = 60 + 8 + 255 * 16 + 64;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot open a raw VRRP socket on {ifname}: permission denied (needs CAP_NET_RAW)")]
    PermissionDenied { ifname: String },
    #[error("{what} on {ifname}: {source}")]
    Setup { what: &'static str, ifname: String, source: io::Error },
    #[error("receive on {ifname}: {source}")]
    Recv { ifname: String, source: io::Error },
    #[error("send to {dst} on {ifname}: {source}")]
    Send { dst: IpAddr, ifname: String, source: io::Error },
}

/// A malformed IPv4 header in front of a received advert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("IPv4 header truncated ({0} bytes)")]
    Truncated(usize),
    #[error("not an IPv4 header (version {0})")]
    Version(u8),
    #[error("IPv4 header length {0} is invalid")]
    Ihl(usize),
}

/// An IP payload with the addressing facts the decoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

/// Splits a raw IPv4 datagram (raw sockets deliver the header) into addressing and payload, honouring
/// IHL (options) and the total length field, so trailing bytes are not taken as payload.
pub fn split_ipv4(buf: &[u8]) -> Result<Received, HeaderError> {
    if buf.len() < 20 {
        return Err(HeaderError::Truncated(buf.len()));
    }
    let version = buf[0] >> 4;
    if version != 4 {
        return Err(HeaderError::Version(version));
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    if ihl < 20 || ihl > buf.len() {
        return Err(HeaderError::Ihl(ihl));
    }
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    // The kernel may report the total length in host order or with the header excluded on some
    // paths; only use it when it is plausible.
    let end = if total >= ihl && total <= buf.len() { total } else { buf.len() };
    let ip4 = |o: usize| IpAddr::V4(Ipv4Addr::new(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]));
    Ok(Received { src: ip4(12), dst: ip4(16), ttl: buf[8], payload: buf[ihl..end].to_vec() })
}

/// Where adverts go and how: the multicast group joined and sent to (`vrrp_mcast_group4|6`), and
/// the TTL / hop limit of unicast adverts (`unicast_ttl`; multicast ones always carry 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub group: IpAddr,
    pub unicast_ttl: u8,
}

impl Wire {
    pub fn of(cfg: &crate::config::vrrp::VrrpInstance) -> Wire {
        Wire { group: cfg.mcast_group(), unicast_ttl: cfg.opts.unicast_ttl }
    }
}

/// The two sockets of one instance.
pub struct VrrpSocket {
    ifname: String,
    ipv6: bool,
    rx: AsyncFd<Socket>,
    tx: AsyncFd<Socket>,
}

impl VrrpSocket {
    /// Opens both sockets on `ifname` (index `ifindex`), sending from `src` (the primary IPv4
    /// address, the IPv6 link-local address, or `unicast_src_ip`).
    pub fn open(ifname: &str, ifindex: u32, src: IpAddr, wire: Wire) -> Result<VrrpSocket, SocketError> {
        Self::open_with(ifname, ifindex, src, wire, true)
    }

    /// Sockets on a VMAC sending from its parent's address: the bound device alone picks the
    /// way out (IP_MULTICAST_IF by that address would name the parent, which the kernel refuses).
    pub fn open_on_vmac(ifname: &str, ifindex: u32, src: IpAddr, wire: Wire) -> Result<VrrpSocket, SocketError> {
        Self::open_with(ifname, ifindex, src, wire, false)
    }

    fn open_with(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        wire: Wire,
        multicast_if: bool,
    ) -> Result<VrrpSocket, SocketError> {
        let setup = |what: &'static str| {
            let ifname = ifname.to_string();
            move |source: io::Error| match source.kind() {
                io::ErrorKind::PermissionDenied => SocketError::PermissionDenied { ifname },
                _ => SocketError::Setup { what, ifname, source },
            }
        };
        let domain = if src.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
        let proto = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
        let rx = Socket::new(domain, Type::RAW, proto).map_err(setup("raw socket"))?;
        let tx = Socket::new(domain, Type::RAW, proto).map_err(setup("raw socket"))?;
        for s in [&rx, &tx] {
            s.bind_device(Some(ifname.as_bytes())).map_err(setup("SO_BINDTODEVICE"))?;
            s.set_nonblocking(true).map_err(setup("O_NONBLOCK"))?;
        }
        match src {
            IpAddr::V4(v4) => {
                rx.set_multicast_all_v4(false).map_err(setup("IP_MULTICAST_ALL"))?;
                let group = match wire.group {
                    IpAddr::V4(g) => g,
                    IpAddr::V6(_) => MCAST_V4,
                };
                rx.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(setup("IP_ADD_MEMBERSHIP"))?;
                if multicast_if {
                    tx.set_multicast_if_v4(&v4).map_err(setup("IP_MULTICAST_IF"))?;
                }
                tx.set_multicast_ttl_v4(u32::from(VRRP_TTL)).map_err(setup("IP_MULTICAST_TTL"))?;
                tx.set_ttl_v4(u32::from(wire.unicast_ttl)).map_err(setup("IP_TTL"))?;
                tx.set_tos_v4(u32::from(VRRP_TOS)).map_err(setup("IP_TOS"))?;
                tx.set_multicast_loop_v4(false).map_err(setup("IP_MULTICAST_LOOP"))?;
                // Free bind: `unicast_src_ip` may be a VIP-like address not configured yet.
                tx.set_freebind_v4(true).map_err(setup("IP_FREEBIND"))?;
                tx.bind(&SockAddr::from(SocketAddr::new(src, 0))).map_err(setup("bind to the source address"))?;
            }
            IpAddr::V6(v6) => {
                nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
                    .map_err(|e| setup("IPV6_RECVHOPLIMIT")(io::Error::from(e)))?;
                nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| setup("IPV6_RECVPKTINFO")(io::Error::from(e)))?;
                rx.set_multicast_all_v6(false).map_err(setup("IPV6_MULTICAST_ALL"))?;
                let group = match wire.group {
                    IpAddr::V6(g) => g,
                    IpAddr::V4(_) => MCAST_V6,
                };
                rx.join_multicast_v6(&group, ifindex).map_err(setup("IPV6_ADD_MEMBERSHIP"))?;
                tx.set_multicast_if_v6(ifindex).map_err(setup("IPV6_MULTICAST_IF"))?;
                tx.set_multicast_hops_v6(u32::from(VRRP_TTL)).map_err(setup("IPV6_MULTICAST_HOPS"))?;
                tx.set_unicast_hops_v6(u32::from(wire.unicast_ttl)).map_err(setup("IPV6_UNICAST_HOPS"))?;
                tx.set_tclass_v6(u32::from(VRRP_TOS)).map_err(setup("IPV6_TCLASS"))?;
                tx.set_multicast_loop_v6(false).map_err(setup("IPV6_MULTICAST_LOOP"))?;
                tx.set_freebind_v6(true).map_err(setup("IPV6_FREEBIND"))?;
                let scope = if is_link_local(&v6) { ifindex } else { 0 };
                tx.bind(&SockAddr::from(SocketAddrV6::new(v6, 0, 0, scope)))
                    .map_err(setup("bind to the source address"))?;
            }
        }
        Ok(VrrpSocket {
            ifname: ifname.to_string(),
            ipv6: src.is_ipv6(),
            rx: register(rx).map_err(setup("register with the runtime"))?,
            tx: register(tx).map_err(setup("register with the runtime"))?,
        })
    }

    /// Waits for the next datagram. A malformed IPv4 header is returned as `Ok(Err(..))` so the
    /// caller can count it; `Err` is a socket failure.
    pub async fn recv(&self) -> Result<Result<Received, HeaderError>, SocketError> {
        loop {
            let mut guard =
                self.rx.readable().await.map_err(|source| SocketError::Recv { ifname: self.ifname.clone(), source })?;
            let res = guard.try_io(|fd| self.read_one(fd.get_ref()));
            match res {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(source)) => {
                    return Err(SocketError::Recv { ifname: self.ifname.clone(), source });
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// A datagram already queued in the kernel, asked of the socket itself rather than of the
    /// runtime's readiness (which a process just woken from a pause has not caught up with);
    /// `None` when the queue is empty.
    pub fn try_recv(&self) -> Option<Result<Result<Received, HeaderError>, SocketError>> {
        match self.read_one(self.rx.get_ref()) {
            Ok(r) => Some(Ok(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(source) => Some(Err(SocketError::Recv { ifname: self.ifname.clone(), source })),
        }
    }

    /// One non-blocking read of the receive socket.
    fn read_one(&self, sock: &Socket) -> io::Result<Result<Received, HeaderError>> {
        if self.ipv6 {
            recv_v6(sock).map(Ok)
        } else {
            let mut buf = vec![0u8; RECV_BUF];
            let n = io::Read::read(&mut &*sock, &mut buf)?;
            Ok(split_ipv4(&buf[..n]))
        }
    }

    /// Sends one VRRP message to `dst` (the group or a unicast peer).
    pub async fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        let addr = SockAddr::from(SocketAddr::new(dst, 0));
        let err = |source| SocketError::Send { dst, ifname: self.ifname.clone(), source };
        // Bounded: a socket that stays unwritable for a second is reported, not waited on forever.
        let fut = async {
            loop {
                let mut guard = self.tx.writable().await?;
                match guard.try_io(|fd| fd.get_ref().send_to(payload, &addr)) {
                    Ok(r) => return r.map(|_| ()),
                    Err(_would_block) => continue,
                }
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(1), fut).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(err(io::Error::new(io::ErrorKind::TimedOut, "socket not writable"))),
        }
    }
}

fn register(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket owns its descriptor, which stays open and unchanged until the AsyncFd
    // (which owns the Socket) is dropped.
    unsafe { AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)
}

fn is_link_local(v6: &Ipv6Addr) -> bool {
    (v6.segments()[0] & 0xffc0) == 0xfe80
}

/// IPv6 raw sockets strip the header: hop limit and destination come from ancillary data.
fn recv_v6(sock: &Socket) -> io::Result<Received> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
    let mut buf = vec![0u8; RECV_BUF];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::c_int);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrIn6>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let n = msg.bytes;
    let src = msg
        .address
        .map(|a| IpAddr::V6(a.ip()))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
    let mut dst = None;
    let mut ttl = 0u8;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv6PacketInfo(info) => dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr))),
            ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).unwrap_or(0),
            _ => {}
        }
    }
    let dst = dst.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no destination"))?;
    buf.truncate(n);
    Ok(Received { src, dst, ttl, payload: buf })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ihl_words: u8, total: u16, ttl: u8) -> Vec<u8> {
        let mut h = vec![0u8; usize::from(ihl_words) * 4];
        h[0] = 0x40 | ihl_words;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[8] = ttl;
        h[9] = IPPROTO_VRRP;
        h[12..16].copy_from_slice(&[192, 0, 2, 11]);
        h[16..20].copy_from_slice(&[224, 0, 0, 18]);
        h
    }

    #[test]
    fn splits_header_with_options_and_padding() {
        let mut d = header(6, 24 + 4, 255);
        d.extend_from_slice(&[1, 2, 3, 4]);
        d.extend_from_slice(&[0, 0]); // trailing bytes beyond total length
        let r = split_ipv4(&d).expect("valid");
        assert_eq!(r.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(r.dst, IpAddr::V4(MCAST_V4));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.payload, vec![1, 2, 3, 4]);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(split_ipv4(&[0x45; 10]), Err(HeaderError::Truncated(10)));
        let mut d = header(5, 20, 1);
        d[0] = 0x65;
        assert_eq!(split_ipv4(&d), Err(HeaderError::Version(6)));
        let mut d = header(5, 20, 1);
        d[0] = 0x44;
        assert_eq!(split_ipv4(&d), Err(HeaderError::Ihl(16)));
        let mut d = header(5, 20, 1);
        d[0] = 0x4f;
        assert_eq!(split_ipv4(&d), Err(HeaderError::Ihl(60)));
    }

    #[test]
    fn implausible_total_length_falls_back_to_buffer() {
        let mut d = header(5, 9999, 64);
        d.extend_from_slice(&[9, 9]);
        let r = split_ipv4(&d).expect("valid");
        assert_eq!((r.ttl, r.payload), (64, vec![9, 9]));
    }
}
