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
/// frames sent. `stop` is asked before each frame: once it says so, no more leave (a process that
/// resigned its VIPs must not claim them again, also from a burst that was already on its way).
pub fn send_burst(
    ifname: &str,
    vips: &[IpAddr],
    count: u32,
    spacing: Spacing,
    stop: impl Fn() -> bool,
) -> Result<usize, GarpError> {
    if vips.is_empty() || count == 0 || stop() {
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
    rounds(&frames, vips, count, spacing, stop, |f| tx.send_to(f, None))
        .map_err(|source| GarpError::Send { ifname: ifname.to_string(), source })
}

/// `count` rounds of `frames` (one per VIP of `vips`) through `send`, `spacing` apart, each frame
/// only while `stop` says not to; returns the frames sent (`send` gives `None` for one it did
/// not send, as pnet's `send_to`).
fn rounds(
    frames: &[Vec<u8>],
    vips: &[IpAddr],
    count: u32,
    spacing: Spacing,
    stop: impl Fn() -> bool,
    mut send: impl FnMut(&[u8]) -> Option<std::io::Result<()>>,
) -> std::io::Result<usize> {
    let mut sent = 0;
    for round in 0..count {
        for (i, (f, vip)) in frames.iter().zip(vips).enumerate() {
            if stop() {
                return Ok(sent);
            }
            if send(f).transpose()?.is_some() {
                sent += 1;
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
        let go = || false;
        assert_eq!(send_burst("does-not-exist0", &[], 5, Spacing::default(), go).expect("noop"), 0);
        let vip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(matches!(
            send_burst("does-not-exist0", &[vip], 1, Spacing::default(), go),
            Err(GarpError::UnknownInterface(_))
        ));
        // Told to stop before the first frame: not even the interface is looked up.
        assert_eq!(send_burst("does-not-exist0", &[vip], 1, Spacing::default(), || true).expect("stopped"), 0);
    }

    #[test]
    fn a_burst_stops_at_the_frame_after_it_is_told_to() {
        let vips: Vec<IpAddr> = vec!["192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip")];
        let frames = frames([2, 0, 0, 0, 0, 1], &vips, false);
        let sent = std::cell::RefCell::new(Vec::new());
        // The process resigns while the third frame (round 2, first VIP) goes out.
        let stop = || sent.borrow().len() >= 3;
        let n = rounds(&frames, &vips, 5, Spacing::default(), stop, |f| {
            sent.borrow_mut().push(f.to_vec());
            Some(Ok(()))
        })
        .expect("sent");
        assert_eq!(n, 3);
        assert_eq!(*sent.borrow(), [frames[0].clone(), frames[1].clone(), frames[0].clone()]);
        // Never told: every round goes out.
        let mut all = 0;
        let n = rounds(
            &frames,
            &vips,
            5,
            Spacing::default(),
            || false,
            |_| {
                all += 1;
                Some(Ok(()))
            },
        )
        .expect("sent");
        assert_eq!((n, all), (10, 10));
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
