//! Advert encoding and decoding, and the RFC 1071 checksum with its three v3 IPv4 variants.

use std::net::IpAddr;

use super::{
    AUTH_LEN, AUTH_TYPE_NONE, AUTH_TYPE_SIMPLE, Advert, Auth, ChecksumForm, DecodeError, DecodeOptions, Decoded,
    EncodeError, HEADER_LEN, IPPROTO_VRRP, MCAST_V4, TYPE_ADVERTISEMENT, V3_MAX_INTERVAL_CS, Version,
};

/// Decodes with the RFC's TTL rule (exactly 255). See [`decode_with`].
pub fn decode(ip_payload: &[u8], src: IpAddr, dst: IpAddr, ttl_or_hop_limit: u8) -> Result<Advert, DecodeError> {
    decode_with(ip_payload, src, dst, ttl_or_hop_limit, &DecodeOptions::STRICT_TTL).map(|d| d.advert)
}

/// Validates and decodes one advert in the order of RFC 5798 §7.1 / keepalived: TTL, version and
/// family, complete length, type, checksum, address count, interval, auth type. Bytes after the
/// message (Ethernet padding, keepalived's HMAC trailer) are ignored and not checksummed.
pub fn decode_with(
    ip_payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl_or_hop_limit: u8,
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let peek_vrid = ip_payload.get(1).copied();
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(DecodeError::MixedFamilies { vrid: peek_vrid });
    }
    if !(opts.min_ttl..=opts.max_ttl).contains(&ttl_or_hop_limit) {
        return Err(DecodeError::Ttl { vrid: peek_vrid, ttl: ttl_or_hop_limit });
    }
    let Some(header) = ip_payload.get(..HEADER_LEN) else {
        return Err(DecodeError::Truncated { vrid: peek_vrid, len: ip_payload.len(), needed: HEADER_LEN });
    };
    let vrid = header[1];
    let version = match header[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => {
            return Err(DecodeError::Version { vrid, version: other });
        }
    };
    if version == Version::V2 && src.is_ipv6() {
        return Err(DecodeError::V2OverIpv6 { vrid });
    }
    let count = usize::from(header[3]);
    let addr_len = if src.is_ipv4() { 4 } else { 16 };
    let auth_len = if version == Version::V2 { AUTH_LEN } else { 0 };
    let msg_len = HEADER_LEN + count * addr_len + auth_len;
    let Some(msg) = ip_payload.get(..msg_len) else {
        return Err(DecodeError::Truncated { vrid: Some(vrid), len: ip_payload.len(), needed: msg_len });
    };
    let kind = header[0] & 0x0f;
    if kind != TYPE_ADVERTISEMENT {
        return Err(DecodeError::Type { vrid, kind });
    }
    let checksum = verify_checksum(msg, version, src, dst)?;
    // Found by `cargo fuzz`: VRID 0 decoded, and then could not be encoded again.
    if vrid == 0 {
        return Err(DecodeError::ZeroVrid);
    }
    if count == 0 {
        return Err(DecodeError::NoAddresses { vrid });
    }
    let max_advert_int = match version {
        Version::V2 => u16::from(header[5]),
        Version::V3 => u16::from_be_bytes([header[4], header[5]]) & V3_MAX_INTERVAL_CS,
    };
    if max_advert_int == 0 {
        return Err(DecodeError::ZeroInterval { vrid });
    }
    let auth = match version {
        Version::V3 => Auth::None,
        Version::V2 => {
            let mut data = [0u8; AUTH_LEN];
            data.copy_from_slice(&msg[msg_len - AUTH_LEN..]);
            match header[4] {
                AUTH_TYPE_NONE => Auth::None,
                AUTH_TYPE_SIMPLE => Auth::SimplePassword(data),
                auth_type => return Err(DecodeError::AuthType { vrid, auth_type }),
            }
        }
    };
    let addresses = msg[HEADER_LEN..HEADER_LEN + count * addr_len]
        .chunks_exact(addr_len)
        .map(|c| match <[u8; 4]>::try_from(c) {
            Ok(v4) => IpAddr::from(v4),
            Err(_) => {
                let mut v6 = [0u8; 16];
                v6.copy_from_slice(c);
                IpAddr::from(v6)
            }
        })
        .collect();
    Ok(Decoded { advert: Advert { version, vrid, priority: header[2], max_advert_int, auth, addresses }, checksum })
}

/// Encodes with the default checksum form (pseudo-header with the real destination for v3).
pub fn encode(advert: &Advert, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
    encode_with(advert, src, dst, ChecksumForm::PseudoHeader)
}

/// Encodes an advert and fills in the checksum. `form` only matters for v3 over IPv4: v2 is always
/// message-only and IPv6 always uses the pseudo-header (the kernel enforces it with `IPV6_CHECKSUM`).
pub fn encode_with(advert: &Advert, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> Result<Vec<u8>, EncodeError> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(EncodeError::MixedFamilies);
    }
    if advert.version == Version::V2 && src.is_ipv6() {
        return Err(EncodeError::V2OverIpv6);
    }
    if advert.version == Version::V3 && advert.auth != Auth::None {
        return Err(EncodeError::AuthOnV3);
    }
    if advert.vrid == 0 {
        return Err(EncodeError::Vrid);
    }
    let count = match u8::try_from(advert.addresses.len()) {
        Ok(0) => return Err(EncodeError::NoAddresses),
        Ok(n) => n,
        Err(_) => {
            return Err(EncodeError::TooManyAddresses { count: advert.addresses.len() });
        }
    };
    if let Some(addr) = advert.addresses.iter().find(|a| a.is_ipv4() != src.is_ipv4()) {
        return Err(EncodeError::AddressFamily { addr: *addr });
    }
    let interval = advert.max_advert_int;
    if interval == 0 || interval > advert.version.max_interval() {
        return Err(EncodeError::Interval { value: interval, version: advert.version.number() });
    }

    let mut buf = Vec::with_capacity(HEADER_LEN + advert.addresses.len() * 16 + AUTH_LEN);
    buf.push((advert.version.number() << 4) | TYPE_ADVERTISEMENT);
    buf.push(advert.vrid);
    buf.push(advert.priority);
    buf.push(count);
    match advert.version {
        Version::V2 => {
            buf.push(advert.auth.wire_type());
            // Range-checked above: at most 255.
            buf.push(interval.to_be_bytes()[1]);
        }
        Version::V3 => buf.extend_from_slice(&interval.to_be_bytes()),
    }
    buf.extend_from_slice(&[0, 0]);
    for addr in &advert.addresses {
        match addr {
            IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
        }
    }
    if advert.version == Version::V2 {
        buf.extend_from_slice(&advert.auth.data());
    }
    let form = effective_form(advert.version, src, form);
    let sum = checksum_for(&buf, src, dst, form);
    buf[6..8].copy_from_slice(&sum.to_be_bytes());
    Ok(buf)
}

pub(super) fn effective_form(version: Version, src: IpAddr, form: ChecksumForm) -> ChecksumForm {
    match (version, src) {
        (Version::V2, _) => ChecksumForm::MessageOnly,
        (Version::V3, IpAddr::V6(_)) => ChecksumForm::PseudoHeader,
        (Version::V3, IpAddr::V4(_)) => form,
    }
}

/// The checksum `msg` (with its checksum field zeroed or not: the field is skipped) should carry.
pub(super) fn checksum_for(msg: &[u8], src: IpAddr, dst: IpAddr, form: ChecksumForm) -> u16 {
    let mut sum = InternetSum::default();
    let dst = match (form, dst) {
        (ChecksumForm::PseudoHeaderMulticastDst, IpAddr::V4(_)) => IpAddr::V4(MCAST_V4),
        _ => dst,
    };
    if form != ChecksumForm::MessageOnly {
        sum.pseudo_header(src, dst, msg.len(), IPPROTO_VRRP);
    }
    sum.add(&msg[..6]);
    sum.add(&msg[8..]);
    sum.finish()
}

/// Tries the sender's possible checksum forms in order of likelihood.
fn verify_checksum(msg: &[u8], version: Version, src: IpAddr, dst: IpAddr) -> Result<ChecksumForm, DecodeError> {
    let received = u16::from_be_bytes([msg[6], msg[7]]);
    let candidates: &[ChecksumForm] = match (version, src) {
        (Version::V2, _) => &[ChecksumForm::MessageOnly],
        (Version::V3, IpAddr::V6(_)) => &[ChecksumForm::PseudoHeader],
        (Version::V3, IpAddr::V4(_)) => {
            &[ChecksumForm::PseudoHeader, ChecksumForm::PseudoHeaderMulticastDst, ChecksumForm::MessageOnly]
        }
    };
    for &form in candidates {
        if checksum_for(msg, src, dst, form) == received {
            return Ok(form);
        }
    }
    let default = effective_form(version, src, ChecksumForm::PseudoHeader);
    Err(DecodeError::Checksum { vrid: msg[1], received, expected: checksum_for(msg, src, dst, default) })
}

/// RFC 1071 one's-complement sum. Chunks must have even length except the last one.
#[derive(Default)]
pub(crate) struct InternetSum {
    acc: u64,
}

impl InternetSum {
    pub(crate) fn add(&mut self, data: &[u8]) {
        let mut chunks = data.chunks_exact(2);
        for w in &mut chunks {
            self.acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = chunks.remainder() {
            self.acc += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }

    /// IPv4 (RFC 768 style) or IPv6 (RFC 8200 §8.1) pseudo-header; `src` and `dst` share a family.
    pub(crate) fn pseudo_header(&mut self, src: IpAddr, dst: IpAddr, len: usize, proto: u8) {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.add(&s.octets());
                self.add(&d.octets());
                self.add(&[0, proto]);
                // VRRP messages are at most 8 + 255 * 16 bytes, far below 64 KiB.
                self.add(&(len as u16).to_be_bytes());
            }
            (s, d) => {
                self.add(&ipv6_octets(s));
                self.add(&ipv6_octets(d));
                self.add(&(len as u32).to_be_bytes());
                self.add(&[0, 0, 0, proto]);
            }
        }
    }

    pub(crate) fn finish(&self) -> u16 {
        let mut sum = self.acc;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

fn ipv6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::MCAST_V6;
    use super::super::pcap::hex;
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const DST4: IpAddr = IpAddr::V4(MCAST_V4);
    const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0xa));
    const DST6: IpAddr = IpAddr::V6(MCAST_V6);

    /// keepalived's v2 advert from capture 01 (VRID 51, priority 150, two VIPs).
    fn v2() -> Vec<u8> {
        hex("213396020001c3fec0000264c00002650000000000000000")
    }
    /// keepalived's v3 IPv4 advert from capture 03.
    fn v3() -> Vec<u8> {
        hex("31336401000a05ccc0000264")
    }
    /// keepalived's v3 IPv6 advert from capture 04.
    fn v6() -> Vec<u8> {
        hex("3133960100640c8620010db8000000000000000000000100")
    }

    /// Rewrites the checksum so that a mutation is judged by the check it targets.
    fn fix_checksum(pkt: &mut [u8], src: IpAddr, dst: IpAddr) {
        let version = if pkt[0] >> 4 == 2 { Version::V2 } else { Version::V3 };
        let form = effective_form(version, src, ChecksumForm::PseudoHeader);
        let sum = checksum_for(pkt, src, dst, form);
        pkt[6..8].copy_from_slice(&sum.to_be_bytes());
    }

    fn mutated(base: Vec<u8>, at: usize, value: u8, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut p = base;
        p[at] = value;
        fix_checksum(&mut p, src, dst);
        p
    }

    /// Name, packet, source, destination, TTL, expected error.
    type Case = (&'static str, Vec<u8>, IpAddr, IpAddr, u8, DecodeError);

    #[test]
    fn one_mutated_byte_per_error_variant() {
        let cases: Vec<Case> = vec![
            ("ttl", v2(), SRC4, DST4, 254, DecodeError::Ttl { vrid: Some(51), ttl: 254 }),
            ("mixed families", v2(), SRC4, DST6, 255, DecodeError::MixedFamilies { vrid: Some(51) }),
            (
                "version 4",
                mutated(v2(), 0, 0x41, SRC4, DST4),
                SRC4,
                DST4,
                255,
                DecodeError::Version { vrid: 51, version: 4 },
            ),
            ("v2 over IPv6", mutated(v6(), 0, 0x21, SRC6, DST6), SRC6, DST6, 255, DecodeError::V2OverIpv6 { vrid: 51 }),
            (
                "count larger than the packet",
                mutated(v2(), 3, 3, SRC4, DST4),
                SRC4,
                DST4,
                255,
                DecodeError::Truncated { vrid: Some(51), len: 24, needed: 28 },
            ),
            ("type 2", mutated(v3(), 0, 0x32, SRC4, DST4), SRC4, DST4, 255, DecodeError::Type { vrid: 51, kind: 2 }),
            (
                "address byte flipped",
                {
                    let mut p = v2();
                    p[9] ^= 0x01;
                    p
                },
                SRC4,
                DST4,
                255,
                DecodeError::Checksum { vrid: 51, received: 0xc3fe, expected: 0xc3fd },
            ),
            (
                "count 0",
                {
                    let mut p = mutated(v3(), 3, 0, SRC4, DST4);
                    p.truncate(8);
                    fix_checksum(&mut p, SRC4, DST4);
                    p
                },
                SRC4,
                DST4,
                255,
                DecodeError::NoAddresses { vrid: 51 },
            ),
            ("v3 interval 0", mutated(v3(), 5, 0, SRC4, DST4), SRC4, DST4, 255, DecodeError::ZeroInterval { vrid: 51 }),
            ("v2 interval 0", mutated(v2(), 5, 0, SRC4, DST4), SRC4, DST4, 255, DecodeError::ZeroInterval { vrid: 51 }),
            (
                "auth type 2 (AH)",
                mutated(v2(), 4, 2, SRC4, DST4),
                SRC4,
                DST4,
                255,
                DecodeError::AuthType { vrid: 51, auth_type: 2 },
            ),
        ];
        for (name, pkt, src, dst, ttl, want) in cases {
            let got = decode(&pkt, src, dst, ttl);
            assert_eq!(got, Err(want.clone()), "{name}");
            assert_eq!(want.vrid(), Some(51), "{name}");
            assert!(!want.reason().is_empty() && !want.to_string().is_empty());
        }
    }

    #[test]
    fn vrid_zero_is_refused_after_the_checksum() {
        let p = mutated(v3(), 1, 0, SRC4, DST4);
        assert_eq!(decode(&p, SRC4, DST4, 255), Err(DecodeError::ZeroVrid));
        assert_eq!((DecodeError::ZeroVrid.vrid(), DecodeError::ZeroVrid.reason()), (Some(0), "vrid"));
        let mut bad_sum = p.clone();
        bad_sum[6] ^= 1;
        assert!(matches!(decode(&bad_sum, SRC4, DST4, 255), Err(DecodeError::Checksum { vrid: 0, .. })));
    }

    #[test]
    fn v6_checksum_covers_the_pseudo_header() {
        let other_src: IpAddr = "fe80::1".parse().expect("literal");
        assert!(decode(&v6(), SRC6, DST6, 255).is_ok());
        assert!(matches!(decode(&v6(), other_src, DST6, 255), Err(DecodeError::Checksum { vrid: 51, .. })));
    }

    #[test]
    fn v3_reserved_bits_are_ignored() {
        let mut p = v3();
        p[4] |= 0xf0;
        fix_checksum(&mut p, SRC4, DST4);
        let a = decode(&p, SRC4, DST4, 255).expect("decode");
        assert_eq!(a.max_advert_int, 10);
    }

    #[test]
    fn short_inputs_report_what_they_can() {
        assert_eq!(decode(&[], SRC4, DST4, 255), Err(DecodeError::Truncated { vrid: None, len: 0, needed: 8 }));
        assert_eq!(
            decode(&v2()[..5], SRC4, DST4, 255),
            Err(DecodeError::Truncated { vrid: Some(51), len: 5, needed: 8 })
        );
        // Missing the auth data: 16 of 24 bytes.
        assert_eq!(
            decode(&v2()[..16], SRC4, DST4, 255),
            Err(DecodeError::Truncated { vrid: Some(51), len: 16, needed: 24 })
        );
        assert_eq!(DecodeError::Ttl { vrid: None, ttl: 1 }.vrid(), None);
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let mut p = v3();
        p.extend_from_slice(&[0; 14]);
        let a = decode(&p, SRC4, DST4, 255).expect("padded frame");
        assert_eq!(encode(&a, SRC4, DST4).expect("encode"), v3());
    }

    #[test]
    fn ttl_options() {
        let unicast = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let p = hex("3133640100642382c0000264");
        assert!(decode(&p, SRC4, unicast, 64).is_err());
        assert!(decode_with(&p, SRC4, unicast, 64, &DecodeOptions::ANY_TTL).is_ok());
        let peer = DecodeOptions { min_ttl: 250, max_ttl: 255 };
        assert!(decode_with(&p, SRC4, unicast, 251, &peer).is_ok());
        assert!(decode_with(&p, SRC4, unicast, 249, &peer).is_err());
        assert_eq!(DecodeOptions::default(), DecodeOptions::STRICT_TTL);
    }

    /// Pseudo-random buffers, truncations and bit flips of valid adverts: decode must return, never
    /// panic, and whatever it accepts must re-encode to a prefix-compatible message.
    #[test]
    fn random_and_truncated_inputs_never_panic() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let seeds = [(v2(), SRC4, DST4), (v3(), SRC4, DST4), (v6(), SRC6, DST6)];
        let mut accepted = 0;
        for i in 0..6000 {
            let (mut buf, src, dst) = match i % 3 {
                0 => {
                    let len = (next() % 96) as usize;
                    let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    // Steer a share of the random buffers past the version check.
                    if let Some(first) = b.first_mut() {
                        *first = if next() % 2 == 0 { 0x21 } else { 0x31 };
                    }
                    let (src, dst) = if next() % 2 == 0 { (SRC4, DST4) } else { (SRC6, DST6) };
                    (b, src, dst)
                }
                _ => {
                    let (b, src, dst) = seeds[(next() % 3) as usize].clone();
                    (b, src, dst)
                }
            };
            if i % 3 == 1 {
                let cut = (next() as usize) % (buf.len() + 1);
                buf.truncate(cut);
            } else if i % 3 == 2 && !buf.is_empty() {
                let at = (next() as usize) % buf.len();
                buf[at] ^= 1 << (next() % 8);
            }
            let ttl = if next() % 8 == 0 { next() as u8 } else { 255 };
            for form in [false, true] {
                let res = if form {
                    decode_with(&buf, src, dst, ttl, &DecodeOptions::ANY_TTL).map(|d| d.advert)
                } else {
                    decode(&buf, src, dst, ttl)
                };
                match res {
                    Ok(a) => {
                        accepted += 1;
                        let out = encode_with(&a, src, dst, ChecksumForm::PseudoHeader)
                            .expect("accepted adverts are encodable");
                        assert_eq!(out[1..4], buf[1..4]);
                    }
                    Err(e) => {
                        assert!(!e.reason().is_empty());
                    }
                }
            }
        }
        assert!(accepted > 0, "the loop exercised the success path too");
    }

    #[test]
    fn encode_rejects_what_the_wire_cannot_carry() {
        let base = Advert {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            max_advert_int: 1,
            auth: Auth::None,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
        };
        let with = |f: &dyn Fn(&mut Advert)| {
            let mut a = base.clone();
            f(&mut a);
            a
        };
        let v6addr: IpAddr = "2001:db8::1".parse().expect("literal");
        let cases: Vec<(Advert, IpAddr, IpAddr, EncodeError)> = vec![
            (base.clone(), SRC4, DST6, EncodeError::MixedFamilies),
            (base.clone(), SRC6, DST6, EncodeError::V2OverIpv6),
            (
                with(&|a| {
                    a.version = Version::V3;
                    a.auth = Auth::simple_password(b"x");
                }),
                SRC4,
                DST4,
                EncodeError::AuthOnV3,
            ),
            (with(&|a| a.vrid = 0), SRC4, DST4, EncodeError::Vrid),
            (with(&|a| a.addresses.clear()), SRC4, DST4, EncodeError::NoAddresses),
            (
                with(&|a| a.addresses = vec![base.addresses[0]; 256]),
                SRC4,
                DST4,
                EncodeError::TooManyAddresses { count: 256 },
            ),
            (with(&|a| a.addresses.push(v6addr)), SRC4, DST4, EncodeError::AddressFamily { addr: v6addr }),
            (with(&|a| a.max_advert_int = 256), SRC4, DST4, EncodeError::Interval { value: 256, version: 2 }),
            (
                with(&|a| {
                    a.version = Version::V3;
                    a.max_advert_int = 4096;
                }),
                SRC4,
                DST4,
                EncodeError::Interval { value: 4096, version: 3 },
            ),
            (with(&|a| a.max_advert_int = 0), SRC4, DST4, EncodeError::Interval { value: 0, version: 2 }),
        ];
        for (advert, src, dst, want) in cases {
            assert_eq!(encode(&advert, src, dst), Err(want));
        }
        // 255 IPv6 addresses is the largest advert and round-trips.
        let big = Advert {
            version: Version::V3,
            vrid: 255,
            priority: 255,
            max_advert_int: V3_MAX_INTERVAL_CS,
            auth: Auth::None,
            addresses: (0..255u16).map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))).collect(),
        };
        let bytes = encode(&big, SRC6, DST6).expect("encode");
        assert_eq!(bytes.len(), 8 + 255 * 16);
        assert_eq!(decode(&bytes, SRC6, DST6, 255), Ok(big));
    }
}
