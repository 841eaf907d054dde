//! Test-only reader for the classic pcap files under `shared/reference/vrrp-captures/` (keepalived 2.2.7
//! output): little/big-endian, micro/nanosecond headers; Ethernet (with 802.1Q tags), Linux cooked
//! (SLL) and SLL2 link types; IPv4 (honouring IHL) and IPv6 without extension headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_LINUX_SLL2: u32 = 276;

pub(crate) const CAPTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/vrrp-captures/");

/// One captured frame.
pub(crate) struct Frame {
    /// Capture timestamp in seconds.
    pub ts: f64,
    pub linktype: u32,
    pub data: Vec<u8>,
}

/// The IP layer of a frame.
pub(crate) struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub proto: u8,
    pub payload: &'a [u8],
}

impl Frame {
    /// Ethertype and the bytes after the link-layer header.
    fn link(&self) -> Option<(u16, &[u8])> {
        let d = &self.data;
        let be16 = |at: usize| Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]));
        match self.linktype {
            LINKTYPE_ETHERNET => {
                let mut at = 12;
                let mut et = be16(at)?;
                while et == 0x8100 || et == 0x88a8 {
                    at += 4;
                    et = be16(at)?;
                }
                Some((et, d.get(at + 2..)?))
            }
            LINKTYPE_LINUX_SLL => Some((be16(14)?, d.get(16..)?)),
            LINKTYPE_LINUX_SLL2 => Some((be16(0)?, d.get(20..)?)),
            _ => None,
        }
    }

    pub(crate) fn ethertype(&self) -> Option<u16> {
        self.link().map(|(et, _)| et)
    }

    pub(crate) fn ip(&self) -> Option<IpPacket<'_>> {
        let (et, l3) = self.link()?;
        match et {
            0x0800 => {
                let ihl = usize::from(l3.first()? & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([*l3.get(2)?, *l3.get(3)?]));
                let src: [u8; 4] = l3.get(12..16)?.try_into().ok()?;
                let dst: [u8; 4] = l3.get(16..20)?.try_into().ok()?;
                Some(IpPacket {
                    src: Ipv4Addr::from(src).into(),
                    dst: Ipv4Addr::from(dst).into(),
                    ttl: *l3.get(8)?,
                    proto: *l3.get(9)?,
                    payload: l3.get(ihl..total)?,
                })
            }
            0x86dd => {
                let len = usize::from(u16::from_be_bytes([*l3.get(4)?, *l3.get(5)?]));
                let src: [u8; 16] = l3.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = l3.get(24..40)?.try_into().ok()?;
                Some(IpPacket {
                    src: Ipv6Addr::from(src).into(),
                    dst: Ipv6Addr::from(dst).into(),
                    ttl: *l3.get(7)?,
                    proto: *l3.get(6)?,
                    payload: l3.get(40..40 + len)?,
                })
            }
            _ => None,
        }
    }
}

/// Parses a whole pcap file.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let magic = bytes.get(..4).ok_or("no pcap header")?;
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return Err(format!("not a classic pcap file: magic {magic:02x?}")),
    };
    let u32_at = |at: usize| -> Result<u32, String> {
        let b: [u8; 4] =
            bytes.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or_else(|| format!("truncated at {at}"))?;
        Ok(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let linktype = u32_at(20)? & 0x0fff_ffff;
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let secs = u32_at(at)?;
        let frac = u32_at(at + 4)?;
        let caplen = u32_at(at + 8)? as usize;
        let start = at + 16;
        let data = bytes.get(start..start + caplen).ok_or_else(|| format!("record at {at} truncated"))?;
        let scale = if nanos { 1e-9 } else { 1e-6 };
        frames.push(Frame { ts: f64::from(secs) + f64::from(frac) * scale, linktype, data: data.to_vec() });
        at = start + caplen;
    }
    Ok(frames)
}

/// Reads a capture by file name from the shared reference directory.
pub(crate) fn read_capture(name: &str) -> Vec<Frame> {
    let path = format!("{CAPTURE_DIR}{name}");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    parse(&bytes).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// The VRRP payloads of a capture, with their IP envelope.
pub(crate) fn vrrp_packets(frames: &[Frame]) -> Vec<IpPacket<'_>> {
    frames.iter().filter_map(Frame::ip).filter(|p| p.proto == super::IPPROTO_VRRP).collect()
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not a hex digit: {}", b as char),
        })
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_reference_capture() {
        let dir = std::fs::read_dir(CAPTURE_DIR).expect("capture directory");
        let mut files = 0;
        for entry in dir {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("pcap") {
                continue;
            }
            let frames = parse(&std::fs::read(&path).expect("read")).expect("parse");
            assert!(!frames.is_empty(), "{}", path.display());
            assert!(frames.iter().all(|f| f.ethertype().is_some()));
            files += 1;
        }
        assert_eq!(files, 11);
    }

    #[test]
    fn linux_cooked_and_big_endian_headers() {
        // Big-endian pcap, SLL: one IPv4 frame carrying 2 payload bytes.
        let mut file = hex("a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000071");
        let mut frame = hex("0000 0001 0006 02000000000a 0000 0800");
        frame.extend(hex("45c00016 00010000 ff700000 c0000201 e0000012 abcd"));
        file.extend(hex("00000001 00000002"));
        file.extend((frame.len() as u32).to_be_bytes());
        file.extend((frame.len() as u32).to_be_bytes());
        file.extend(&frame);
        let frames = parse(&file).expect("parse");
        let ip = frames[0].ip().expect("ip");
        assert_eq!(ip.payload, [0xab, 0xcd]);
        assert_eq!(ip.ttl, 255);
        assert_eq!(ip.dst, IpAddr::from([224, 0, 0, 18]));
        assert!(parse(&file[..file.len() - 1]).is_err());
    }
}
