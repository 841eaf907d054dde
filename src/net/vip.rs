//! Virtual addresses over rtnetlink: add, delete and list one address with its prefix length and
//! optional `eth0:1`-style label on an interface named by the caller.
//!
//! Idempotent (adding a present address or deleting an absent one succeeds and reports `false`) and
//! exact: only the address with the same prefix length is ever deleted, so an administrator's
//! `192.0.2.5/24` survives removal of a VIP `192.0.2.5/32` (keepalived PRs #155/#353).

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};

/// Longest interface name or label the kernel accepts (IFNAMSIZ - 1).
pub const MAX_LABEL_LEN: usize = 15;

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EADDRNOTAVAIL: i32 = 99;

/// One virtual address as installed on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 alias label; must start with the interface name and a colon.
    pub label: Option<String>,
}

impl Vip {
    /// A host VIP (/32 or /128), keepalived's default.
    pub fn host(addr: IpAddr) -> Vip {
        Vip { addr, prefix: if addr.is_ipv4() { 32 } else { 128 }, label: None }
    }
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("no interface named {0:?} in this network namespace")]
    UnknownInterface(String),
    #[error("cannot {op} {vip} on {ifname}: permission denied (needs CAP_NET_ADMIN)")]
    PermissionDenied { op: &'static str, vip: String, ifname: String },
    #[error("invalid VIP {vip}: {why}")]
    Invalid { vip: String, why: String },
    #[error("cannot {op} {vip} on {ifname}: {source}")]
    Kernel { op: &'static str, vip: String, ifname: String, source: std::io::Error },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
}

/// Checks what the kernel would reject, with a clearer message.
pub fn check(ifname: &str, vip: &Vip) -> Result<(), VipError> {
    let bad = |why: String| VipError::Invalid { vip: vip.to_string(), why };
    let max = if vip.addr.is_ipv4() { 32 } else { 128 };
    if vip.prefix > max {
        return Err(bad(format!("prefix length above {max}")));
    }
    if let Some(label) = &vip.label {
        if vip.addr.is_ipv6() {
            return Err(bad("labels exist only for IPv4 addresses".into()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(bad(format!("label longer than {MAX_LABEL_LEN} bytes")));
        }
        if label != ifname && !label.starts_with(&format!("{ifname}:")) {
            return Err(bad(format!("label must start with \"{ifname}:\"")));
        }
    }
    Ok(())
}

/// A netlink route socket for address changes. Created inside a tokio runtime; the connection
/// task ends when the handle is dropped.
#[derive(Clone)]
pub struct VipHandle {
    handle: rtnetlink::Handle,
}

impl VipHandle {
    pub fn new() -> Result<VipHandle, VipError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(VipError::Socket)?;
        tokio::spawn(conn);
        Ok(VipHandle { handle })
    }

    /// The netlink handle itself (links: `super::vmac`).
    pub fn netlink(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    /// Routes and rules over the same socket.
    pub fn routes(&self) -> super::route::Routes {
        super::route::Routes::new(self.handle.clone())
    }

    /// The interface index, or [`VipError::UnknownInterface`].
    pub async fn index(&self, ifname: &str) -> Result<u32, VipError> {
        let mut links = self.handle.link().get().match_name(ifname.to_string()).execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(VipError::UnknownInterface(ifname.to_string())),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == ENODEV => {
                Err(VipError::UnknownInterface(ifname.to_string()))
            }
            Err(e) => Err(VipError::Netlink(e.to_string())),
        }
    }

    /// Every address on `ifname`, with prefix length and label.
    pub async fn list(&self, ifname: &str) -> Result<Vec<Vip>, VipError> {
        let index = self.index(ifname).await?;
        Ok(self.messages(index).await?.iter().filter_map(vip_of).collect())
    }

    async fn messages(&self, index: u32) -> Result<Vec<AddressMessage>, VipError> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| VipError::Netlink(e.to_string()))
    }

    /// Adds `vip` to `ifname`. `Ok(false)`: it was already there with that prefix length.
    pub async fn add(&self, ifname: &str, vip: &Vip) -> Result<bool, VipError> {
        check(ifname, vip)?;
        let index = self.index(ifname).await?;
        self.add_at(index, ifname, vip).await
    }

    /// Adds each of `vips` to `ifname` with one interface lookup, stopping at the first error;
    /// `Ok` has one entry per VIP (`false`: already there).
    pub async fn add_many(&self, ifname: &str, vips: &[Vip]) -> Result<Vec<bool>, (Vec<bool>, VipError)> {
        let mut done = Vec::with_capacity(vips.len());
        let index = match self.index(ifname).await {
            Ok(i) => i,
            Err(e) => return Err((done, e)),
        };
        for v in vips {
            match check(ifname, v) {
                Ok(()) => {}
                Err(e) => return Err((done, e)),
            }
            match self.add_at(index, ifname, v).await {
                Ok(b) => done.push(b),
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }

    async fn add_at(&self, index: u32, ifname: &str, vip: &Vip) -> Result<bool, VipError> {
        let mut req = self.handle.address().add(index, vip.addr, vip.prefix);
        let msg = req.message_mut();
        if let Some(label) = &vip.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if vip.addr.is_ipv6() {
            // Usable at once and never stuck in dadfailed when two nodes briefly hold it.
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EEXIST => Ok(false),
            Err(e) => Err(kernel_error("add", ifname, vip, e)),
        }
    }

    /// Removes exactly `vip` (same address and prefix length) from `ifname`. `Ok(false)`: absent.
    pub async fn del(&self, ifname: &str, vip: &Vip) -> Result<bool, VipError> {
        let mut r = self.del_many(ifname, std::slice::from_ref(vip)).await?;
        Ok(r.pop().unwrap_or(false))
    }

    /// Removes each of `vips` (exact address and prefix length) with one address dump, so a
    /// range of thousands does not cost a dump per address. Tries every one and returns the first
    /// error; `Ok` has one entry per VIP (`false`: absent).
    pub async fn del_many(&self, ifname: &str, vips: &[Vip]) -> Result<Vec<bool>, VipError> {
        let index = self.index(ifname).await?;
        let mut present: HashMap<(IpAddr, u8), AddressMessage> = self
            .messages(index)
            .await?
            .into_iter()
            .filter_map(|m| vip_of(&m).map(|v| ((v.addr, v.prefix), m)))
            .collect();
        let mut out = Vec::with_capacity(vips.len());
        let mut first_err = None;
        for vip in vips {
            let Some(found) = present.remove(&(vip.addr, vip.prefix)) else {
                out.push(false);
                continue;
            };
            match self.handle.address().del(found).execute().await {
                Ok(()) => out.push(true),
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == EADDRNOTAVAIL => out.push(false),
                Err(e) => {
                    out.push(false);
                    first_err.get_or_insert(kernel_error("delete", ifname, vip, e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

fn kernel_error(op: &'static str, ifname: &str, vip: &Vip, e: rtnetlink::Error) -> VipError {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.raw_code().abs() {
            EPERM | EACCES => VipError::PermissionDenied { op, vip: vip.to_string(), ifname: ifname.to_string() },
            ENODEV => VipError::UnknownInterface(ifname.to_string()),
            _ => VipError::Kernel { op, vip: vip.to_string(), ifname: ifname.to_string(), source: m.to_io() },
        },
        other => VipError::Netlink(other.to_string()),
    }
}

/// The local address of an address message (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6).
fn vip_of(m: &AddressMessage) -> Option<Vip> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    let addr = match m.header.family {
        AddressFamily::Inet => local.or(address)?,
        _ => address.or(local)?,
    };
    Some(Vip { addr, prefix: m.header.prefix_len, label })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str, prefix: u8, label: Option<&str>) -> Vip {
        Vip { addr: s.parse().expect("ip"), prefix, label: label.map(str::to_string) }
    }

    #[test]
    fn checks_prefix_and_label() {
        assert!(check("eth0", &v("192.0.2.1", 24, Some("eth0:1"))).is_ok());
        assert!(check("eth0", &v("2001:db8::1", 128, None)).is_ok());
        for (vip, want) in [
            (v("192.0.2.1", 33, None), "prefix length above 32"),
            (v("2001:db8::1", 129, None), "prefix length above 128"),
            (v("192.0.2.1", 32, Some("eth1:1")), "must start with \"eth0:\""),
            (v("192.0.2.1", 32, Some("eth0:123456789ab")), "longer than 15"),
            (v("2001:db8::1", 64, Some("eth0:1")), "only for IPv4"),
        ] {
            let err = check("eth0", &vip).expect_err("invalid").to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn host_vips_and_display() {
        assert_eq!(Vip::host("192.0.2.9".parse().expect("ip")).prefix, 32);
        assert_eq!(Vip::host("2001:db8::9".parse().expect("ip")).prefix, 128);
        assert_eq!(v("192.0.2.1", 24, Some("eth0:1")).to_string(), "192.0.2.1/24 label eth0:1");
    }

    #[test]
    fn parses_address_messages() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = 24;
        m.attributes = vec![
            AddressAttribute::Address("192.0.2.0".parse().expect("ip")),
            AddressAttribute::Local("192.0.2.7".parse().expect("ip")),
            AddressAttribute::Label("eth0:1".into()),
        ];
        assert_eq!(vip_of(&m), Some(v("192.0.2.7", 24, Some("eth0:1"))));
        m.attributes.clear();
        assert_eq!(vip_of(&m), None);
    }
}
