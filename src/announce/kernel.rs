//! The kernel side of announcements, over rtnetlink: the VIP held as a `local` route (the node
//! accepts and binds it; FRR's zebra ignores local routes), and the announcement itself, the VIP
//! as a host address on [`DEVICE`], a TUN device only lbha's process keeps alive. FRR sees a
//! connected route on that device and redistributes it. The device dies with the process, even on
//! `kill -9`, and the kernel deletes its addresses and tells zebra (RTM_DELADDR). A kernel route
//! through the device would not do: its silent removal leaves zebra 8.4 announcing it (seen in
//! netns-tests/announce.rs).

use super::decide::Route;
use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

const EEXIST: i32 = 17;
const ESRCH: i32 = 3;
const ENOENT: i32 = 2;
const EADDRNOTAVAIL: i32 = 99;
const RT_TABLE_LOCAL: u32 = 255;

/// The announcement device. Multi-queue: a binary upgrade's new process attaches to the same
/// device, which lives while either process holds it; FRR's route-map matches this name.
pub const DEVICE: &str = "lbha-announce";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot create the announcement device {name}: {why}")]
    Device { name: String, why: String },
    #[error("no interface named {0:?} in this network namespace")]
    UnknownInterface(String),
    #[error("cannot {op} {what}: {why}")]
    Route { op: &'static str, what: String, why: String },
}

/// The TUN device of this process: routes through it last exactly as long as the process.
struct Device {
    name: String,
    index: u32,
    _fd: OwnedFd,
}

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;
const IFF_MULTI_QUEUE: i16 = 0x0100;
nix::ioctl_write_ptr_bad!(tunsetiff, nix::request_code_write!(b'T', 202, std::mem::size_of::<libc_int>()), IfReq);
#[allow(non_camel_case_types)]
type libc_int = i32;

/// A non-persistent TUN device named `name`: it exists while the returned descriptor is open.
fn create_tun(name: &str) -> Result<OwnedFd, String> {
    use nix::fcntl::{OFlag, open};
    let fd = open("/dev/net/tun", OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    let mut req = IfReq { name: [0; 16], flags: IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq`, which `IfReq` lays out (name, then the flags of the union).
    unsafe { tunsetiff(fd.as_raw_fd(), &req) }.map_err(|e| format!("TUNSETIFF: {e}"))?;
    Ok(fd)
}

const SIOCGIFFLAGS: u16 = 0x8913;
const SIOCSIFFLAGS: u16 = 0x8914;
const IFF_UP: i16 = 0x1;
nix::ioctl_readwrite_bad!(siocgifflags, SIOCGIFFLAGS, IfReq);
nix::ioctl_write_ptr_bad!(siocsifflags, SIOCSIFFLAGS, IfReq);

/// Takes [`DEVICE`] down (every announcement withdrawn at once: the kernel drops the routes of
/// its addresses and tells zebra) or up again, with two ioctls and no runtime: the last gasp of
/// a stalled or panicking process (`fate`).
pub fn set_device_up(up: bool) -> std::io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let mut req = IfReq { name: [0; 16], flags: 0, _pad: [0; 22] };
    req.name[..DEVICE.len()].copy_from_slice(DEVICE.as_bytes());
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write a `struct ifreq` (name, then the flags).
    unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }?;
    req.flags = if up { req.flags | IFF_UP } else { req.flags & !IFF_UP };
    // SAFETY: as above.
    unsafe { siocsifflags(sock.as_raw_fd(), &req) }?;
    Ok(())
}

/// The netlink socket and this process's announcement device.
pub struct Kernel {
    handle: rtnetlink::Handle,
    dev: Device,
}

impl Kernel {
    /// Opens the netlink socket and creates (or attaches to) [`DEVICE`]. Inside a tokio runtime.
    pub async fn open() -> Result<Kernel, KernelError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(KernelError::Socket)?;
        tokio::spawn(conn);
        let name = DEVICE.to_string();
        let dev_err = |why: String| KernelError::Device { name: name.clone(), why };
        let fd = create_tun(&name).map_err(dev_err)?;
        let index = index(&handle, &name).await?;
        handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| dev_err(format!("cannot set it up: {e}")))?;
        Ok(Kernel { handle, dev: Device { name, index, _fd: fd } })
    }

    pub fn device(&self) -> &str {
        &self.dev.name
    }

    /// Holds `addr` on `ifname` as a `local` route of `protocol`. Idempotent.
    pub async fn hold(&self, ifname: &str, addr: IpAddr, protocol: u8) -> Result<(), KernelError> {
        let idx = index(&self.handle, ifname).await?;
        let msg = message(addr, protocol, RT_TABLE_LOCAL, RouteType::Local, RouteScope::Host, idx);
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EEXIST => Ok(()),
            Err(e) => Err(route_err("hold", format!("{addr} on {ifname}"), e)),
        }
    }

    /// Removes the hold of `addr` on `ifname`. Idempotent.
    pub async fn release(&self, ifname: &str, addr: IpAddr, protocol: u8) -> Result<(), KernelError> {
        let idx = index(&self.handle, ifname).await?;
        let msg = message(addr, protocol, RT_TABLE_LOCAL, RouteType::Local, RouteScope::Host, idx);
        self.delete(msg, "release", format!("{addr} on {ifname}")).await
    }

    /// Announces: the VIP as a host address on the device. Idempotent.
    pub async fn announce(&self, r: &Route) -> Result<(), KernelError> {
        let host = if r.addr.is_ipv4() { 32 } else { 128 };
        let mut req = self.handle.address().add(self.dev.index, r.addr, host);
        if r.addr.is_ipv6() {
            // Usable at once, never stuck in duplicate address detection.
            let msg = req.message_mut();
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EEXIST => Ok(()),
            Err(e) => Err(route_err("announce", format!("{} on {}", r.addr, self.dev.name), e)),
        }
    }

    /// Withdraws: removes the VIP from the device. Idempotent.
    pub async fn withdraw(&self, r: &Route) -> Result<(), KernelError> {
        let host = if r.addr.is_ipv4() { 32 } else { 128 };
        let mut msg = AddressMessage::default();
        msg.header.family = if r.addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        msg.header.prefix_len = host;
        msg.header.index = self.dev.index;
        msg.attributes.push(AddressAttribute::Address(r.addr));
        if r.addr.is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(r.addr));
        }
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EADDRNOTAVAIL => Ok(()),
            Err(e) => Err(route_err("withdraw", format!("{} on {}", r.addr, self.dev.name), e)),
        }
    }

    /// Deletes every hold route of `protocol` in the local table whose address is not in `keep`
    /// (a crashed predecessor's, for VIPs since removed). Returns how many went.
    pub async fn sweep(&self, protocol: u8, keep: &[IpAddr]) -> Result<usize, KernelError> {
        let mut n = 0;
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessage::default();
            q.header.address_family = family;
            let all: Vec<RouteMessage> = self
                .handle
                .route()
                .get(q)
                .execute()
                .try_collect()
                .await
                .map_err(|e| route_err("list", "routes".to_string(), e))?;
            for m in all {
                let stale = m.header.protocol == RouteProtocol::from(protocol)
                    && table_of(&m) == RT_TABLE_LOCAL
                    && destination(&m).is_some_and(|d| !keep.contains(&d));
                if stale {
                    self.delete(m, "sweep", format!("a stale hold of protocol {protocol}")).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    async fn delete(&self, msg: RouteMessage, op: &'static str, what: String) -> Result<(), KernelError> {
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if matches!(e.raw_code().abs(), ESRCH | ENOENT) => Ok(()),
            Err(e) => Err(route_err(op, what, e)),
        }
    }
}

fn route_err(op: &'static str, what: String, e: rtnetlink::Error) -> KernelError {
    let why = match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
        other => other.to_string(),
    };
    KernelError::Route { op, what, why }
}

async fn index(handle: &rtnetlink::Handle, ifname: &str) -> Result<u32, KernelError> {
    let mut links = handle.link().get().match_name(ifname.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        _ => Err(KernelError::UnknownInterface(ifname.to_string())),
    }
}

fn destination(m: &RouteMessage) -> Option<IpAddr> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

/// A host route to `addr` through interface `oif`.
fn message(addr: IpAddr, protocol: u8, table: u32, kind: RouteType, scope: RouteScope, oif: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    m.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
    m.header.table = u8::try_from(table).unwrap_or(252);
    m.header.protocol = RouteProtocol::from(protocol);
    m.header.scope = scope;
    m.header.kind = kind;
    m.attributes.push(RouteAttribute::Destination(RouteAddress::from(addr)));
    m.attributes.push(RouteAttribute::Table(table));
    m.attributes.push(RouteAttribute::Oif(oif));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_route_messages() {
        let m = message("2001:db8::10".parse().unwrap(), 250, 250, RouteType::Unicast, RouteScope::Link, 7);
        assert_eq!(destination(&m), "2001:db8::10".parse().ok());
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 128);
        assert_eq!(m.header.protocol, RouteProtocol::Other(250));
        assert_eq!(table_of(&m), 250);
        assert!(m.attributes.contains(&RouteAttribute::Oif(7)));
        let m = message("192.0.2.10".parse().unwrap(), 99, 255, RouteType::Local, RouteScope::Host, 1);
        assert_eq!((m.header.destination_prefix_length, m.header.table), (32, 255));
        assert_eq!(m.header.kind, RouteType::Local);
    }

    #[test]
    fn ifreq_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }
}
