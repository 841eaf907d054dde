//! Golden vectors: every VRRP packet keepalived 2.2.7 put on the wire in
//! `shared/reference/vrrp-captures/` decodes to the fields documented in `vrrp-captures.md` and
//! re-encodes to identical bytes.

use std::net::IpAddr;
use std::time::Duration;

use super::codec::checksum_for;
use super::pcap::{self, hex};
use super::*;

struct Case {
    file: &'static str,
    /// VRRP packets in the capture, the last one being the priority-0 advert sent on SIGTERM.
    adverts: usize,
    src: &'static str,
    dst: &'static str,
    version: Version,
    priority: u8,
    max_advert_int: u16,
    interval: Duration,
    auth: Auth,
    addresses: &'static [&'static str],
    checksum: u16,
    form: ChecksumForm,
    payload: &'static str,
    prio0_payload: &'static str,
}

const V4_PAIR: &[&str] = &["192.0.2.100", "192.0.2.101"];
const V2_BASIC: &str = "213396020001c3fec0000264c00002650000000000000000";
const V2_BASIC_PRIO0: &str = "21330002000159ffc0000264c00002650000000000000000";
const V2_PASS: &str = "2133960201015580c0000264c00002657365637265743132";
const V2_PASS_PRIO0: &str = "213300020101eb80c0000264c00002657365637265743132";

fn cases() -> Vec<Case> {
    let secret = Auth::SimplePassword(*b"secret12");
    vec![
        Case {
            file: "01-v2-basic.pcap",
            adverts: 5,
            src: "192.0.2.1",
            dst: "224.0.0.18",
            version: Version::V2,
            priority: 150,
            max_advert_int: 1,
            interval: Duration::from_secs(1),
            auth: Auth::None,
            addresses: V4_PAIR,
            checksum: 0xc3fe,
            form: ChecksumForm::MessageOnly,
            payload: V2_BASIC,
            prio0_payload: V2_BASIC_PRIO0,
        },
        Case {
            file: "02-v2-auth-pass.pcap",
            adverts: 4,
            src: "192.0.2.1",
            dst: "224.0.0.18",
            version: Version::V2,
            priority: 150,
            max_advert_int: 1,
            interval: Duration::from_secs(1),
            auth: secret,
            addresses: V4_PAIR,
            checksum: 0x5580,
            form: ChecksumForm::MessageOnly,
            payload: V2_PASS,
            prio0_payload: V2_PASS_PRIO0,
        },
        Case {
            file: "03-v3-ipv4.pcap",
            adverts: 48,
            src: "192.0.2.1",
            dst: "224.0.0.18",
            version: Version::V3,
            priority: 100,
            max_advert_int: 10,
            interval: Duration::from_millis(100),
            auth: Auth::None,
            addresses: &["192.0.2.100"],
            checksum: 0x05cc,
            form: ChecksumForm::PseudoHeader,
            payload: "31336401000a05ccc0000264",
            prio0_payload: "31330001000a69ccc0000264",
        },
        Case {
            file: "04-v3-ipv6.pcap",
            adverts: 5,
            src: "fe80::ff:fe00:a",
            dst: "ff02::12",
            version: Version::V3,
            priority: 150,
            max_advert_int: 100,
            interval: Duration::from_secs(1),
            auth: Auth::None,
            addresses: &["2001:db8::100"],
            checksum: 0x0c86,
            form: ChecksumForm::PseudoHeader,
            payload: "3133960100640c8620010db8000000000000000000000100",
            prio0_payload: "313300010064a28620010db8000000000000000000000100",
        },
        Case {
            file: "05-v2-unicast.pcap",
            adverts: 4,
            src: "192.0.2.1",
            dst: "192.0.2.2",
            version: Version::V2,
            priority: 150,
            max_advert_int: 1,
            interval: Duration::from_secs(1),
            auth: Auth::None,
            addresses: V4_PAIR,
            checksum: 0xc3fe,
            form: ChecksumForm::MessageOnly,
            payload: V2_BASIC,
            prio0_payload: V2_BASIC_PRIO0,
        },
        Case {
            file: "08-v3-ipv4-unicast.pcap",
            adverts: 3,
            src: "192.0.2.1",
            dst: "192.0.2.2",
            version: Version::V3,
            priority: 100,
            max_advert_int: 100,
            interval: Duration::from_secs(1),
            auth: Auth::None,
            addresses: &["192.0.2.100"],
            checksum: 0x2382,
            form: ChecksumForm::PseudoHeader,
            payload: "3133640100642382c0000264",
            prio0_payload: "",
        },
        Case {
            file: "09-v3-ipv4-unicast-oldck.pcap",
            adverts: 3,
            src: "192.0.2.1",
            dst: "192.0.2.2",
            version: Version::V3,
            priority: 100,
            max_advert_int: 100,
            interval: Duration::from_secs(1),
            auth: Auth::None,
            addresses: &["192.0.2.100"],
            checksum: 0x0572,
            form: ChecksumForm::PseudoHeaderMulticastDst,
            payload: "3133640100640572c0000264",
            prio0_payload: "",
        },
        Case {
            file: "10-v2-auth-long.pcap",
            adverts: 2,
            src: "192.0.2.1",
            dst: "224.0.0.18",
            version: Version::V2,
            priority: 150,
            max_advert_int: 1,
            interval: Duration::from_secs(1),
            auth: secret,
            addresses: V4_PAIR,
            checksum: 0x5580,
            form: ChecksumForm::MessageOnly,
            payload: V2_PASS,
            prio0_payload: V2_PASS_PRIO0,
        },
    ]
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn every_capture_decodes_and_reencodes() {
    for case in cases() {
        let frames = pcap::read_capture(case.file);
        let packets = pcap::vrrp_packets(&frames);
        assert_eq!(packets.len(), case.adverts, "{}", case.file);
        let want_addrs: Vec<IpAddr> = case.addresses.iter().map(|a| ip(a)).collect();
        for (i, p) in packets.iter().enumerate() {
            let ctx = format!("{} packet {i}", case.file);
            assert_eq!((p.src, p.dst, p.ttl), (ip(case.src), ip(case.dst), 255), "{ctx}");
            let d = decode_with(p.payload, p.src, p.dst, p.ttl, &DecodeOptions::STRICT_TTL)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let a = &d.advert;
            let last = i + 1 == packets.len();
            assert_eq!(a.version, case.version, "{ctx}");
            assert_eq!(a.vrid, 51, "{ctx}");
            assert_eq!(a.priority, if last { 0 } else { case.priority }, "{ctx}");
            assert_eq!(a.max_advert_int, case.max_advert_int, "{ctx}");
            assert_eq!(a.advert_interval(), case.interval, "{ctx}");
            assert_eq!(a.auth, case.auth, "{ctx}");
            assert_eq!(a.addresses, want_addrs, "{ctx}");
            assert_eq!(d.checksum, case.form, "{ctx}");
            assert_eq!(decode(p.payload, p.src, p.dst, p.ttl).as_ref(), Ok(a), "{ctx}");
            if !last {
                assert_eq!(p.payload, hex(case.payload), "{ctx}");
                assert_eq!(u16::from_be_bytes([p.payload[6], p.payload[7]]), case.checksum);
            } else if !case.prio0_payload.is_empty() {
                assert_eq!(p.payload, hex(case.prio0_payload), "{ctx}");
            }
            let again = encode_with(a, p.src, p.dst, d.checksum).expect("encode");
            assert_eq!(again, p.payload, "{ctx}: re-encoded bytes differ");
        }
    }
}

/// keepalived with `old_unicast_checksum` (capture 09) puts 224.0.0.18 in the pseudo-header; the
/// default form gives capture 08's checksum for the same advert.
#[test]
fn old_unicast_checksum_form() {
    let (src, dst) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let advert = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        max_advert_int: 100,
        auth: Auth::None,
        addresses: vec![ip("192.0.2.100")],
    };
    assert_eq!(encode(&advert, src, dst).expect("encode"), hex("3133640100642382c0000264"));
    assert_eq!(
        encode_with(&advert, src, dst, ChecksumForm::PseudoHeaderMulticastDst).expect("encode"),
        hex("3133640100640572c0000264")
    );
    // RFC 9568 message-only form, as vrrp-captures.md computed it (0xa802), is accepted too.
    let msg_only = encode_with(&advert, src, dst, ChecksumForm::MessageOnly).expect("encode");
    assert_eq!(msg_only[6..8], [0xa8, 0x02]);
    let d = decode_with(&msg_only, src, dst, 255, &DecodeOptions::STRICT_TTL).expect("decode");
    assert_eq!(d.checksum, ChecksumForm::MessageOnly);
    assert_eq!(d.advert, advert);
}

/// The alternative sums vrrp-captures.md lists for the multicast v3 captures.
#[test]
fn documented_message_only_sums() {
    for (file, want) in [("03-v3-ipv4.pcap", [0xa8, 0x5c]), ("04-v3-ipv6.pcap", [0x09, 0xae])] {
        let frames = pcap::read_capture(file);
        let p = &pcap::vrrp_packets(&frames)[0];
        let mut msg = p.payload.to_vec();
        let sum = checksum_for(&msg, p.src, p.dst, ChecksumForm::MessageOnly);
        assert_eq!(sum.to_be_bytes(), want, "{file}");
        msg[6..8].copy_from_slice(&want);
        let got = decode(&msg, p.src, p.dst, 255);
        if p.src.is_ipv6() {
            // IPv6 has a mandatory pseudo-header: the message-only form is a checksum error.
            assert!(matches!(got, Err(DecodeError::Checksum { vrid: 51, .. })));
        } else {
            assert!(got.is_ok());
        }
    }
}

#[test]
fn shutdown_capture_holds_the_priority_zero_adverts() {
    let frames = pcap::read_capture("06-shutdown-prio0.pcap");
    let packets = pcap::vrrp_packets(&frames);
    let want = [
        V2_BASIC_PRIO0,
        V2_PASS_PRIO0,
        "31330001000a69ccc0000264",
        "313300010064a28620010db8000000000000000000000100",
        V2_BASIC_PRIO0,
    ];
    assert_eq!(packets.len(), want.len());
    for (p, w) in packets.iter().zip(want) {
        assert_eq!(p.payload, hex(w));
        let a = decode(p.payload, p.src, p.dst, p.ttl).expect("decode");
        assert_eq!(a.priority, 0);
        assert_eq!(encode(&a, p.src, p.dst).expect("encode"), p.payload);
    }
}

#[test]
fn captured_passwords_check_against_configuration() {
    let frames = pcap::read_capture("10-v2-auth-long.pcap");
    let p = &pcap::vrrp_packets(&frames)[0];
    let a = decode(p.payload, p.src, p.dst, p.ttl).expect("decode");
    // keepalived truncated `auth_pass secret1234567` to 8 characters; so do we.
    assert_eq!(a.check_auth(&Auth::simple_password(b"secret1234567")), Ok(()));
    assert_eq!(a.check_auth(&Auth::simple_password(b"secret12")), Ok(()));
    assert_eq!(a.check_auth(&Auth::simple_password(b"secret13")), Err(DecodeError::Password { vrid: 51 }));
    assert_eq!(a.check_auth(&Auth::None), Err(DecodeError::AuthMismatch { vrid: 51, received: 1, expected: 0 }));
    assert_eq!(a.check_interval(1), Ok(()));
}
