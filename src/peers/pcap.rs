//! Test-only: reads the classic pcap files of `shared/reference/peers-captures/` (Ethernet or
//! Linux cooked, IPv4, TCP) and reassembles each TCP connection into its two byte streams, with
//! the capture time of every segment so messages can be dated.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

pub(crate) const CAPTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/peers-captures/");

/// One direction of one connection.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub bytes: Vec<u8>,
    /// (stream offset, capture time) of each segment that added bytes.
    pub times: Vec<(usize, f64)>,
}

impl Stream {
    /// Capture time of the segment holding byte `offset`.
    pub fn time_at(&self, offset: usize) -> f64 {
        let i = self.times.partition_point(|&(o, _)| o <= offset);
        self.times[i.saturating_sub(1)].1
    }
}

/// A connection in capture order: client is the side that sent the SYN.
#[derive(Debug)]
pub(crate) struct Connection {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    pub to_server: Stream,
    pub to_client: Stream,
    /// Capture time of the SYN.
    pub start: f64,
    /// Answered by a RST instead of a SYN-ACK.
    pub refused: bool,
}

struct Segment<'a> {
    ts: f64,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    syn: bool,
    ack: bool,
    rst: bool,
    payload: &'a [u8],
}

fn records(bytes: &[u8]) -> Vec<(f64, u32, &[u8])> {
    let le = match &bytes[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a classic pcap: {m:02x?}"),
    };
    let nanos = matches!(&bytes[..4], [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]);
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    let linktype = u32_at(20) & 0x0fff_ffff;
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let frac = f64::from(u32_at(at + 4)) * if nanos { 1e-9 } else { 1e-6 };
        let caplen = u32_at(at + 8) as usize;
        out.push((f64::from(u32_at(at)) + frac, linktype, &bytes[at + 16..at + 16 + caplen]));
        at += 16 + caplen;
    }
    out
}

fn segment(ts: f64, linktype: u32, frame: &[u8]) -> Option<Segment<'_>> {
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let (ethertype, l3) = match linktype {
        1 => (be16(frame, 12), &frame[14..]),
        113 => (be16(frame, 14), &frame[16..]),
        _ => return None,
    };
    if ethertype != 0x0800 || l3[9] != 6 {
        return None;
    }
    let ihl = usize::from(l3[0] & 0x0f) * 4;
    let total = usize::from(be16(l3, 2));
    let ip = |at: usize| Ipv4Addr::new(l3[at], l3[at + 1], l3[at + 2], l3[at + 3]);
    let tcp = &l3[ihl..total];
    let off = usize::from(tcp[12] >> 4) * 4;
    Some(Segment {
        ts,
        src: SocketAddrV4::new(ip(12), be16(tcp, 0)),
        dst: SocketAddrV4::new(ip(16), be16(tcp, 2)),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        syn: tcp[13] & 0x02 != 0,
        ack: tcp[13] & 0x10 != 0,
        rst: tcp[13] & 0x04 != 0,
        payload: &tcp[off..],
    })
}

/// All TCP connections of a capture file, in the order their SYN appears.
pub(crate) fn connections(name: &str) -> Vec<Connection> {
    let path = format!("{CAPTURE_DIR}{name}");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut conns: Vec<Connection> = Vec::new();
    // (src, dst) -> (connection index, first sequence number of data).
    let mut open: HashMap<(SocketAddrV4, SocketAddrV4), (usize, u32)> = HashMap::new();
    for (ts, linktype, frame) in records(&bytes) {
        let Some(s) = segment(ts, linktype, frame) else { continue };
        if s.syn {
            let idx = if s.ack {
                match open.get(&(s.dst, s.src)) {
                    Some(&(i, _)) => i,
                    None => continue,
                }
            } else {
                conns.push(Connection {
                    client: s.src,
                    server: s.dst,
                    to_server: Stream::default(),
                    to_client: Stream::default(),
                    start: ts,
                    refused: false,
                });
                conns.len() - 1
            };
            open.insert((s.src, s.dst), (idx, s.seq.wrapping_add(1)));
            continue;
        }
        if s.rst {
            // A RST to a SYN that got no SYN-ACK: the connect was refused.
            if let Some(c) = conns.iter_mut().rev().find(|c| c.client == s.dst && c.server == s.src) {
                c.refused |= !open.contains_key(&(s.src, s.dst));
            }
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        let &(idx, isn) = open.get(&(s.src, s.dst)).unwrap_or_else(|| panic!("{name}: data without SYN at {ts}"));
        let conn = &mut conns[idx];
        let stream = if s.src == conn.client { &mut conn.to_server } else { &mut conn.to_client };
        let at = s.seq.wrapping_sub(isn) as usize;
        assert!(at <= stream.bytes.len(), "{name}: gap in the stream at {ts}");
        let new = &s.payload[(stream.bytes.len() - at).min(s.payload.len())..];
        if !new.is_empty() {
            stream.times.push((stream.bytes.len(), s.ts));
            stream.bytes.extend_from_slice(new);
        }
    }
    conns
}
