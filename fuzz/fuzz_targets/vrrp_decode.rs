//! Fuzzes `vrrp::packet::decode_with`, the decoder every received advert goes through.
//!
//! Input layout: `flags, ttl, src, dst, payload`. `flags` bit 0 picks IPv6 (addresses of 16 bytes,
//! else 4), bit 1 the strict TTL rule, bit 2 the multicast group as destination (no dst bytes),
//! bit 3 "repair the checksum": a payload rejected only for its checksum is decoded again with the
//! checksum it should have, so the fuzzer reaches the checks behind it.
//!
//! Beyond "never panics", a decoded advert must survive a round trip: encoding it (with the
//! checksum form it was received with) and decoding that gives the same advert and form.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbha::vrrp::packet::{self, DecodeError, DecodeOptions, MCAST_V4, MCAST_V6, Version};
use libfuzzer_sys::fuzz_target;

fn addr(bytes: &[u8], v6: bool) -> Option<(IpAddr, &[u8])> {
    if v6 {
        let (a, rest) = bytes.split_first_chunk::<16>()?;
        Some((IpAddr::V6(Ipv6Addr::from(*a)), rest))
    } else {
        let (a, rest) = bytes.split_first_chunk::<4>()?;
        Some((IpAddr::V4(Ipv4Addr::from(*a)), rest))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, ttl], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let v6 = flags & 1 != 0;
    let opts = if flags & 2 != 0 { DecodeOptions::STRICT_TTL } else { DecodeOptions::ANY_TTL };
    let Some((src, rest)) = addr(rest, v6) else {
        return;
    };
    let (dst, payload) = if flags & 4 != 0 {
        (if v6 { IpAddr::V6(MCAST_V6) } else { IpAddr::V4(MCAST_V4) }, rest)
    } else {
        let Some(parsed) = addr(rest, v6) else {
            return;
        };
        parsed
    };

    let mut result = packet::decode_with(payload, src, dst, ttl, &opts);
    if flags & 8 != 0
        && let Err(DecodeError::Checksum { expected, .. }) = result
    {
        let mut fixed = payload.to_vec();
        fixed[6..8].copy_from_slice(&expected.to_be_bytes());
        result = packet::decode_with(&fixed, src, dst, ttl, &opts);
        assert!(!matches!(result, Err(DecodeError::Checksum { .. })), "the expected checksum is accepted");
    }
    let decoded = match result {
        Ok(d) => d,
        Err(e) => {
            // Every error is printable and names a counter.
            assert!(!e.reason().is_empty());
            let _ = e.to_string();
            let _ = e.vrid();
            return;
        }
    };
    let a = &decoded.advert;
    assert!(!a.addresses.is_empty());
    assert!(a.addresses.iter().all(|x| x.is_ipv6() == v6), "addresses of the carrying family");
    assert!(a.version == Version::V3 || !v6, "v2 is IPv4 only");
    let _ = a.check_auth(&a.auth);
    let _ = a.check_interval(a.max_advert_int);
    assert!(a.address_list_matches(&a.addresses));
    let _ = a.advert_interval();

    let bytes = match packet::encode_with(a, src, dst, decoded.checksum) {
        Ok(b) => b,
        Err(e) => panic!("a decoded advert must encode again: {e} ({a:?})"),
    };
    match packet::decode_with(&bytes, src, dst, ttl, &opts) {
        Ok(again) => assert_eq!(again, decoded, "round trip"),
        Err(e) => panic!("re-encoded advert rejected: {e} ({a:?})"),
    }
});
