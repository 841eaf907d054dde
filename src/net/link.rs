//! Interface facts read from the kernel: index, MAC, flags and addresses (getifaddrs via pnet).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A snapshot of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub name: String,
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier present (IFF_RUNNING): a veth whose peer is down, or an unplugged NIC, is not.
    pub running: bool,
    /// Addresses in kernel order (primary addresses come before secondaries of the same subnet).
    pub addrs: Vec<IpAddr>,
}

impl LinkInfo {
    /// Up with carrier: what VRRP needs to send and receive.
    pub fn usable(&self) -> bool {
        self.up && self.running
    }

    /// The address adverts are sent from: the first IPv4 address that is not one of `exclude`
    /// (our own VIPs may have been installed on the interface).
    pub fn primary_v4(&self, exclude: &[IpAddr]) -> Option<Ipv4Addr> {
        self.addrs.iter().find_map(|a| match a {
            IpAddr::V4(v4) if !exclude.contains(a) => Some(*v4),
            _ => None,
        })
    }

    /// The IPv6 link-local address (fe80::/10), source of v3 IPv6 adverts.
    pub fn link_local_v6(&self) -> Option<Ipv6Addr> {
        self.addrs.iter().find_map(|a| match a {
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some(*v6),
            _ => None,
        })
    }
}

/// Every interface of this namespace, read at once.
pub fn all() -> Vec<LinkInfo> {
    pnet::datalink::interfaces()
        .into_iter()
        .map(|i| LinkInfo {
            name: i.name.clone(),
            index: i.index,
            mac: i.mac.map(|m| m.octets()),
            up: i.is_up(),
            running: i.is_running(),
            addrs: i.ips.iter().map(|n| n.ip()).collect(),
        })
        .collect()
}

/// Reads one interface by name; `None` when it does not exist in this namespace.
pub fn lookup(name: &str) -> Option<LinkInfo> {
    all().into_iter().find(|i| i.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(addrs: &[&str]) -> LinkInfo {
        LinkInfo {
            name: "eth0".into(),
            index: 2,
            mac: None,
            up: true,
            running: false,
            addrs: addrs.iter().map(|a| a.parse().expect("ip")).collect(),
        }
    }

    #[test]
    fn primary_skips_vips_and_v6() {
        let i = info(&["fe80::1", "192.0.2.100", "192.0.2.11"]);
        let vip: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(i.primary_v4(&[vip]), Some(Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(i.primary_v4(&[]), Some(Ipv4Addr::new(192, 0, 2, 100)));
        assert_eq!(i.link_local_v6(), "fe80::1".parse().ok());
        assert_eq!(info(&["2001:db8::1"]).link_local_v6(), None);
        assert_eq!(info(&[]).primary_v4(&[]), None);
        assert!(!i.usable(), "up without carrier is not usable");
    }
}
