//! Frames a new master sends so that neighbours repoint the VIPs at it: gratuitous ARP for IPv4 and
//! unsolicited Neighbor Advertisement for IPv6, byte-compatible with keepalived (`vrrp_arp.c`,
//! `vrrp_ndisc.c`). Pure builders; sending (AF_PACKET, repeat counts, spacing) is the caller's job.
//!
//! Gratuitous ARP (RFC 5227 §3 announcement form as keepalived sends it, a *request*):
//!
//! ```text
//! Ethernet: dst ff:ff:ff:ff:ff:ff | src MAC | type 0x0806
//! +---------------+---------------+-------+-------+---------------+
//! | HTYPE 1       | PTYPE 0x0800  | HLEN 6| PLEN 4| OPER 1        |
//! +---------------+---------------+-------+-------+---------------+
//! | sender MAC (6) | sender IP = VIP (4) | target MAC ff..ff (6) | target IP = VIP (4) |
//! ```
//!
//! Unsolicited Neighbor Advertisement (RFC 4861 §4.4, §7.2.6), sent from the VIP to ff02::1 with hop
//! limit 255:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Type 136    |    Code 0     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|S|O|                     Reserved                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Target Address (16)                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type 2 (TLLA)|   Length 1    |   Link-layer address (6)  ... |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! S is 0 (unsolicited), O is 1 (override caches), R is set when the node forwards IPv6, as keepalived
//! does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::codec::InternetSum;

/// All-nodes multicast group, destination of unsolicited NAs.
pub const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
const NA_FLAG_ROUTER: u32 = 0x8000_0000;
const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
const ND_OPT_TARGET_LLADDR: u8 = 2;
const NA_LEN: usize = 32;

/// Complete 42-byte Ethernet frame announcing that `ip` is at `mac`.
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&BROADCAST_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&BROADCAST_MAC);
    f.extend_from_slice(&ip.octets());
    f
}

/// ICMPv6 Neighbor Advertisement for target `ip` at `mac`, with the checksum computed for source `ip`
/// and destination ff02::1 (the addresses it must be sent with).
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> Vec<u8> {
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    let mut m = Vec::with_capacity(NA_LEN);
    m.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERT, 0, 0, 0]);
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&ip.octets());
    m.extend_from_slice(&[ND_OPT_TARGET_LLADDR, 1]);
    m.extend_from_slice(&mac);
    let mut sum = InternetSum::default();
    sum.pseudo_header(IpAddr::V6(ip), IpAddr::V6(ALL_NODES_V6), m.len(), IPPROTO_ICMPV6);
    sum.add(&m);
    m[2..4].copy_from_slice(&sum.finish().to_be_bytes());
    m
}

/// Complete Ethernet + IPv6 + NA frame (86 bytes) as keepalived writes it to an AF_PACKET socket.
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> Vec<u8> {
    let icmp = unsolicited_na(mac, ip, router);
    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&ALL_NODES_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    // Version 6, traffic class 0, flow label 0.
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(NA_LEN as u16).to_be_bytes());
    f.push(IPPROTO_ICMPV6);
    f.push(255);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&ALL_NODES_V6.octets());
    f.extend_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::super::pcap::{self, Frame};
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];

    fn hex(s: &str) -> Vec<u8> {
        pcap::hex(s)
    }

    #[test]
    fn garp_matches_documented_frame() {
        let want = hex("ffffffffffff02000000000a0806000108000604000102000000000ac0000264ffffffffffffc0000264");
        assert_eq!(garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100)), want);
    }

    /// Every gratuitous ARP keepalived sent in capture 07 is byte-identical to ours, in two bursts of
    /// 2 repeats x 2 VIPs, 2 s apart (`vrrp_garp_master_repeat 2`, `vrrp_garp_master_delay 2`).
    #[test]
    fn garp_capture_07() {
        let frames = pcap::read_capture("07-garp-ipv4.pcap");
        assert_eq!(frames.len(), 8);
        let vips = [Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 101)];
        for (i, f) in frames.iter().enumerate() {
            let vip = vips[i % 2];
            assert_eq!(f.data, garp_frame(MAC, vip), "frame {i}");
        }
        let gap = frames[4].ts - frames[0].ts;
        assert!((1.99..2.05).contains(&gap), "second burst after {gap} s, expected the 2 s garp_master_delay");
    }

    /// GARPs in the other captures: sender IP == target IP distinguishes them from the ordinary ARP
    /// requests for the unicast peer.
    #[test]
    fn garp_in_advert_captures() {
        let mut seen = 0;
        for name in ["01-v2-basic.pcap", "05-v2-unicast.pcap", "03-v3-ipv4.pcap"] {
            for f in pcap::read_capture(name) {
                if f.ethertype() != Some(ETHERTYPE_ARP) || f.data.len() < 42 {
                    continue;
                }
                let sender_ip = &f.data[28..32];
                if sender_ip != &f.data[38..42] || f.data[6..12] != MAC {
                    continue;
                }
                let ip = Ipv4Addr::new(sender_ip[0], sender_ip[1], sender_ip[2], sender_ip[3]);
                assert_eq!(f.data, garp_frame(MAC, ip), "{name}");
                seen += 1;
            }
        }
        // 01: 8, 05: 8, 03: 4.
        assert_eq!(seen, 20);
    }

    #[test]
    fn na_capture_07() {
        let frames: Vec<Frame> = pcap::read_capture("07-una-ipv6.pcap");
        assert_eq!(frames.len(), 4);
        let vip: Ipv6Addr = "2001:db8::100".parse().expect("literal");
        let want_icmp = hex("8800f7232000000020010db8000000000000000000000100020102000000000a");
        assert_eq!(unsolicited_na(MAC, vip, false), want_icmp);
        for f in &frames {
            assert_eq!(f.data, unsolicited_na_frame(MAC, vip, false));
            assert_eq!(f.data[54..], want_icmp[..]);
        }
        let gap = frames[2].ts - frames[0].ts;
        assert!((1.99..2.05).contains(&gap), "second burst after {gap} s");
    }

    #[test]
    fn na_router_flag_and_checksum() {
        let vip: Ipv6Addr = "2001:db8::100".parse().expect("literal");
        let m = unsolicited_na(MAC, vip, true);
        assert_eq!(m[4], 0xa0, "R and O set, S clear");
        // A correct checksum makes the sum over pseudo-header and message fold to zero.
        let mut sum = InternetSum::default();
        sum.pseudo_header(IpAddr::V6(vip), IpAddr::V6(ALL_NODES_V6), m.len(), 58);
        sum.add(&m);
        assert_eq!(sum.finish(), 0);
        assert_ne!(m, unsolicited_na(MAC, vip, false));
    }
}
