//! Sends gratuitous ARP (IPv4) and unsolicited Neighbor Advertisements (IPv6) for VIPs through an
//! AF_PACKET channel (pnet datalink), so neighbours repoint the VIPs at this node's MAC.
//! Blocking: run it on a blocking thread. The channel is opened per burst and closed after it, so
//! no packet socket sits idle receiving every frame of the interface.

use std::net::IpAddr;

use pnet::datalink::{self, Channel};

use super::packet::{garp_frame, unsolicited_na_frame};

#[derive(Debug, thiserror::Error)]
pub enum GarpError {
    #[error("no interface named {0:?}")]
    UnknownInterface(String),
    #[error("interface {0} has no MAC address")]
    NoMac(String),
    #[error("cannot open a packet socket on {ifname}: {source}")]
    Open { ifname: String, source: std::io::Error },
    #[error("interface {0} is not an Ethernet-like link")]
    NotEthernet(String),
    #[error("send on {ifname}: {source}")]
    Send { ifname: String, source: std::io::Error },
}

/// The frames announcing `vips` at `mac`: one GARP per IPv4 VIP, one NA per IPv6 VIP.
pub fn frames(mac: [u8; 6], vips: &[IpAddr], ipv6_router: bool) -> Vec<Vec<u8>> {
    vips.iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => garp_frame(mac, *v4),
            IpAddr::V6(v6) => unsolicited_na_frame(mac, *v6, ipv6_router),
        })
        .collect()
}

/// keepalived's `vrrp_garp_interval` / `vrrp_gna_interval`: the pause after each GARP / NA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spacing {
    pub garp: std::time::Duration,
    pub gna: std::time::Duration,
}

impl Spacing {
    /// The pause after announcing `vip`; none after the last frame of a burst.
    pub fn after(&self, vip: &IpAddr, last: bool) -> std::time::Duration {
        match (last, vip) {
            (true, _) => std::time::Duration::ZERO,
            (false, IpAddr::V4(_)) => self.garp,
            (false, IpAddr::V6(_)) => self.gna,
        }
    }
}

/// Sends `count` rounds of announcements for `vips` on `ifname`, `spacing` apart; returns the
/// frames sent.
pub fn send_burst(ifname: &str, vips: &[IpAddr], count: u32, spacing: Spacing) -> Result<usize, GarpError> {
    if vips.is_empty() || count == 0 {
        return Ok(0);
    }
    let iface = datalink::interfaces()
        .into_iter()
        .find(|i| i.name == ifname)
        .ok_or_else(|| GarpError::UnknownInterface(ifname.to_string()))?;
    let mac = iface.mac.ok_or_else(|| GarpError::NoMac(ifname.to_string()))?.octets();
    // keepalived sets R when the node forwards IPv6.
    let router =
        std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding")).is_ok_and(|s| s.trim() == "1");
    let frames = frames(mac, vips, router);
    let config = datalink::Config {
        read_buffer_size: 256,
        read_timeout: Some(std::time::Duration::from_millis(1)),
        write_timeout: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    let mut tx = match datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, _rx)) => tx,
        Ok(_) => return Err(GarpError::NotEthernet(ifname.to_string())),
        Err(source) => {
            return Err(GarpError::Open { ifname: ifname.to_string(), source });
        }
    };
    let mut sent = 0;
    for round in 0..count {
        for (i, (f, vip)) in frames.iter().zip(vips).enumerate() {
            match tx.send_to(f, None) {
                Some(Ok(())) => sent += 1,
                Some(Err(source)) => {
                    return Err(GarpError::Send { ifname: ifname.to_string(), source });
                }
                None => {}
            }
            let pause = spacing.after(vip, round + 1 == count && i + 1 == frames.len());
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_per_vip_of_the_right_kind() {
        let mac = [2, 0, 0, 0, 0, 0x11];
        let vips: Vec<IpAddr> = vec!["192.0.2.100".parse().expect("ip"), "2001:db8::100".parse().expect("ip")];
        let f = frames(mac, &vips, false);
        assert_eq!(f.len(), 2);
        assert_eq!(&f[0][12..14], &[0x08, 0x06], "ARP ethertype");
        assert_eq!(&f[0][28..32], &[192, 0, 2, 100], "sender IP is the VIP");
        assert_eq!(&f[1][12..14], &[0x86, 0xdd], "IPv6 ethertype");
        assert_eq!(&f[1][6..12], &mac, "source MAC is ours");
    }

    #[test]
    fn nothing_to_send_needs_no_socket() {
        assert_eq!(send_burst("does-not-exist0", &[], 5, Spacing::default()).expect("noop"), 0);
        let vip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(matches!(
            send_burst("does-not-exist0", &[vip], 1, Spacing::default()),
            Err(GarpError::UnknownInterface(_))
        ));
    }

    #[test]
    fn spacing_by_family_and_none_after_the_last_frame() {
        let ms = std::time::Duration::from_millis;
        let s = Spacing { garp: ms(10), gna: ms(20) };
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!((s.after(&v4, false), s.after(&v6, false)), (ms(10), ms(20)));
        assert_eq!((s.after(&v4, true), s.after(&v6, true)), (ms(0), ms(0)));
    }
}
