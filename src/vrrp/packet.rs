//! VRRP advertisement codec: v2 (RFC 3768, IPv4 only) and v3 (RFC 5798 / RFC 9568, IPv4 and IPv6).
//!
//! The socket layer strips the IP header and hands over the IP payload together with the source and
//! destination addresses and the TTL / hop limit; [`decode`] validates everything that can be checked
//! without instance configuration (TTL, version, family, length, type, checksum, address count,
//! interval). Per-instance checks that need configuration are [`Advert::check_auth`] and
//! [`Advert::check_interval`]. Every error names the VRID when the packet was long enough to carry one,
//! so the caller can charge it to the right instance's counters.
//!
//! VRRPv2 (RFC 3768 §5.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            .........                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Adver Int is in seconds; the checksum covers the VRRP message only (no pseudo-header).
//!
//! VRRPv3 (RFC 5798 §5.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                       IPvX Address(es)                        |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Max Adver Int is 12 bits of centiseconds. The checksum includes the IPv4 / IPv6 pseudo-header
//! (keepalived's default and RFC 5798's wording); RFC 9568 and several vendors compute IPv4 v3 over the
//! message only, and keepalived's `old_unicast_checksum` puts 224.0.0.18 in the pseudo-header of unicast
//! adverts. The receiver accepts all three forms and reports which one matched ([`ChecksumForm`]).
//!
//! IPv6 pseudo-header (RFC 8200 §8.1) and IPv4 pseudo-header as used by keepalived:
//!
//! ```text
//! +--------------------------------+    +--------------------------------+
//! |  Source Address (16 octets)    |    |  Source Address (4 octets)     |
//! |  Destination Address (16)      |    |  Destination Address (4)       |
//! |  Upper-Layer Packet Length (4) |    |  zero (1) | proto 112 (1) |    |
//! |  zero (3)  |  Next Header 112  |    |  VRRP length (2)               |
//! +--------------------------------+    +--------------------------------+
//! ```

#[cfg(test)]
mod golden;
#[cfg(test)]
mod pcap;

mod announce;
mod codec;

pub use announce::{ALL_NODES_V6, garp_frame, unsolicited_na, unsolicited_na_frame};
pub use codec::{decode, decode_with, encode, encode_with};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol / IPv6 next header number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// TTL / hop limit every advert is sent with and (multicast) must arrive with.
pub const VRRP_TTL: u8 = 255;
/// TOS / traffic class keepalived and holo send adverts with (CS6).
pub const VRRP_TOS: u8 = 0xc0;
/// IPv4 multicast group of VRRP.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Largest advertised interval: v3 carries 12 bits of centiseconds (40.95 s).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

const HEADER_LEN: usize = 8;
const AUTH_LEN: usize = 8;
const TYPE_ADVERTISEMENT: u8 = 1;
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_SIMPLE: u8 = 1;

/// Protocol version; v2 exists only over IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// The number carried in the version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Duration of one unit of the advert interval field.
    fn interval_unit(self) -> Duration {
        match self {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => Duration::from_millis(10),
        }
    }

    /// Largest value the interval field can carry.
    fn max_interval(self) -> u16 {
        match self {
            Version::V2 => u16::from(u8::MAX),
            Version::V3 => V3_MAX_INTERVAL_CS,
        }
    }
}

/// VRRPv2 authentication. RFC 3768 removed it, keepalived still speaks simple passwords; IP AH (type 2)
/// travels in a separate IP header and is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    SimplePassword([u8; 8]),
}

impl Auth {
    /// A simple password as keepalived sends it: the first 8 bytes, zero-padded when shorter. The config
    /// layer should warn when `pass` is longer than 8 bytes, as keepalived does.
    pub fn simple_password(pass: &[u8]) -> Auth {
        let mut data = [0u8; AUTH_LEN];
        let n = pass.len().min(AUTH_LEN);
        data[..n].copy_from_slice(&pass[..n]);
        Auth::SimplePassword(data)
    }

    /// Auth Type field value.
    pub fn wire_type(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::SimplePassword(_) => AUTH_TYPE_SIMPLE,
        }
    }

    fn data(&self) -> [u8; AUTH_LEN] {
        match self {
            Auth::None => [0; AUTH_LEN],
            Auth::SimplePassword(p) => *p,
        }
    }
}

/// One VRRP advertisement, version-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advert interval as the wire has it: seconds for v2, centiseconds for v3.
    pub max_advert_int: u16,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
    /// Virtual addresses; all of the family of the carrying IP header.
    pub addresses: Vec<IpAddr>,
}

impl Advert {
    /// The advertised interval as a duration.
    pub fn advert_interval(&self) -> Duration {
        self.version.interval_unit() * u32::from(self.max_advert_int)
    }

    /// Compares the received authentication with the configured one (keepalived: type first, then the
    /// password in constant time). v3 carries no authentication and always passes.
    pub fn check_auth(&self, configured: &Auth) -> Result<(), DecodeError> {
        if self.version == Version::V3 {
            return Ok(());
        }
        let vrid = self.vrid;
        match (&self.auth, configured) {
            (Auth::None, Auth::None) => Ok(()),
            (Auth::SimplePassword(got), Auth::SimplePassword(want)) => {
                let diff = got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b));
                if diff == 0 { Ok(()) } else { Err(DecodeError::Password { vrid }) }
            }
            (got, want) => {
                Err(DecodeError::AuthMismatch { vrid, received: got.wire_type(), expected: want.wire_type() })
            }
        }
    }

    /// v2 receivers must drop adverts whose interval differs from their own (it would let two masters
    /// coexist); v3 only logs and the backup adopts the master's interval, so v3 always passes.
    /// `configured` is in wire units (seconds for v2).
    pub fn check_interval(&self, configured: u16) -> Result<(), DecodeError> {
        if self.version == Version::V2 && self.max_advert_int != configured {
            return Err(DecodeError::IntervalMismatch { vrid: self.vrid, received: self.max_advert_int, configured });
        }
        Ok(())
    }

    /// Whether the advertised address set equals `configured`, ignoring order. A mismatch is logged and
    /// counted, never a reason to drop (RFC 5798 §7.1, keepalived `addr_list_err`).
    pub fn address_list_matches(&self, configured: &[IpAddr]) -> bool {
        self.addresses.len() == configured.len()
            && self.addresses.iter().all(|a| configured.contains(a))
            && configured.iter().all(|a| self.addresses.contains(a))
    }
}

/// The advert interval field value for `interval`, if it is exactly representable for `version` and
/// within range (v2: 1..=255 whole seconds; v3: 1..=4095 whole centiseconds).
pub fn wire_interval(version: Version, interval: Duration) -> Option<u16> {
    let unit = version.interval_unit().as_nanos();
    let nanos = interval.as_nanos();
    if nanos == 0 || !nanos.is_multiple_of(unit) {
        return None;
    }
    let units = u16::try_from(nanos / unit).ok()?;
    (units <= version.max_interval()).then_some(units)
}

/// Which checksum computation a v3 IPv4 advert matched, or which one to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumForm {
    /// Pseudo-header with the real destination (RFC 5798, keepalived >= 1.3.6 default).
    #[default]
    PseudoHeader,
    /// Pseudo-header with 224.0.0.18 as destination even for unicast (keepalived <= 1.3.6,
    /// `old_unicast_checksum`).
    PseudoHeaderMulticastDst,
    /// VRRP message only (RFC 9568, keepalived `v3_checksum_as_v2`, and always for v2).
    MessageOnly,
}

/// A decoded advert and how its checksum was computed by the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub advert: Advert,
    /// v2 always reports `MessageOnly`, IPv6 always `PseudoHeader`.
    pub checksum: ChecksumForm,
}

/// Receive-side knobs that depend on how the advert arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Accepted TTL / hop-limit range. Multicast requires exactly 255; keepalived skips the check for
    /// unicast unless a peer has `min_ttl` / `max_ttl`.
    pub min_ttl: u8,
    pub max_ttl: u8,
}

impl DecodeOptions {
    /// RFC behaviour: TTL / hop limit must be 255.
    pub const STRICT_TTL: DecodeOptions = DecodeOptions { min_ttl: VRRP_TTL, max_ttl: VRRP_TTL };
    /// No TTL check (keepalived unicast default).
    pub const ANY_TTL: DecodeOptions = DecodeOptions { min_ttl: 0, max_ttl: u8::MAX };
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions::STRICT_TTL
    }
}

/// Why a received packet was dropped. Variants carry the VRID whenever the packet was long enough to
/// contain one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("source and destination address families differ")]
    MixedFamilies { vrid: Option<u8> },
    #[error("invalid TTL/hop limit {ttl}, expected 255")]
    Ttl { vrid: Option<u8>, ttl: u8 },
    #[error("packet too short: {len} bytes, need {needed}")]
    Truncated { vrid: Option<u8>, len: usize, needed: usize },
    #[error("unsupported VRRP version {version}")]
    Version { vrid: u8, version: u8 },
    #[error("VRRPv2 is IPv4 only, received over IPv6")]
    V2OverIpv6 { vrid: u8 },
    #[error("packet type {kind}, only 1 (advertisement) exists")]
    Type { vrid: u8, kind: u8 },
    #[error("bad checksum {received:#06x}, expected {expected:#06x}")]
    Checksum { vrid: u8, received: u16, expected: u16 },
    /// VRID 0 is reserved (RFC 5798 §5.2.3): no instance can have it, and no advert can carry it.
    #[error("VRID 0 is reserved")]
    ZeroVrid,
    #[error("advert carries no addresses")]
    NoAddresses { vrid: u8 },
    #[error("advert interval is 0")]
    ZeroInterval { vrid: u8 },
    #[error("unsupported auth type {auth_type}")]
    AuthType { vrid: u8, auth_type: u8 },
    #[error("received auth type {received}, configured {expected}")]
    AuthMismatch { vrid: u8, received: u8, expected: u8 },
    #[error("invalid password")]
    Password { vrid: u8 },
    #[error("advert interval {received} received, {configured} configured")]
    IntervalMismatch { vrid: u8, received: u16, configured: u16 },
}

impl DecodeError {
    /// The VRID the packet claimed, for per-instance counters.
    pub fn vrid(&self) -> Option<u8> {
        match *self {
            DecodeError::MixedFamilies { vrid }
            | DecodeError::Ttl { vrid, .. }
            | DecodeError::Truncated { vrid, .. } => vrid,
            DecodeError::ZeroVrid => Some(0),
            DecodeError::Version { vrid, .. }
            | DecodeError::V2OverIpv6 { vrid }
            | DecodeError::Type { vrid, .. }
            | DecodeError::Checksum { vrid, .. }
            | DecodeError::NoAddresses { vrid }
            | DecodeError::ZeroInterval { vrid }
            | DecodeError::AuthType { vrid, .. }
            | DecodeError::AuthMismatch { vrid, .. }
            | DecodeError::Password { vrid }
            | DecodeError::IntervalMismatch { vrid, .. } => Some(vrid),
        }
    }

    /// Short stable name, usable as a counter label.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::MixedFamilies { .. } => "mixed_families",
            DecodeError::Ttl { .. } => "ttl",
            DecodeError::Truncated { .. } => "length",
            DecodeError::Version { .. } => "version",
            DecodeError::V2OverIpv6 { .. } => "version_family",
            DecodeError::Type { .. } => "type",
            DecodeError::Checksum { .. } => "checksum",
            DecodeError::ZeroVrid => "vrid",
            DecodeError::NoAddresses { .. } => "address_count",
            DecodeError::ZeroInterval { .. } => "interval",
            DecodeError::AuthType { .. } => "auth_type",
            DecodeError::AuthMismatch { .. } => "auth_mismatch",
            DecodeError::Password { .. } => "auth_password",
            DecodeError::IntervalMismatch { .. } => "interval_mismatch",
        }
    }
}

/// Why an advert cannot be put on the wire. Config validation should make these unreachable; they
/// exist so a bad value is an error, not a corrupt packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("source and destination address families differ")]
    MixedFamilies,
    #[error("address {addr} is not of the family of the IP header")]
    AddressFamily { addr: IpAddr },
    #[error("VRRPv2 cannot be sent over IPv6")]
    V2OverIpv6,
    #[error("authentication is a VRRPv2 feature")]
    AuthOnV3,
    #[error("VRID 0 is invalid")]
    Vrid,
    #[error("an advert must carry at least one address")]
    NoAddresses,
    #[error("{count} addresses, at most 255 fit")]
    TooManyAddresses { count: usize },
    #[error("advert interval {value} out of range for VRRP{version}")]
    Interval { value: u16, version: u8 },
}

#[cfg(test)]
mod tests {
    use super::pcap::hex;
    use super::*;

    const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const DST4: IpAddr = IpAddr::V4(MCAST_V4);

    /// keepalived's v2 advert from capture 01 (VRID 51, priority 150, two VIPs).
    fn v2() -> Vec<u8> {
        hex("213396020001c3fec0000264c00002650000000000000000")
    }
    /// keepalived's v3 IPv4 advert from capture 03.
    fn v3() -> Vec<u8> {
        hex("31336401000a05ccc0000264")
    }

    #[test]
    fn simple_password_pads_and_truncates() {
        assert_eq!(Auth::simple_password(b"abc"), Auth::SimplePassword(*b"abc\0\0\0\0\0"));
        assert_eq!(Auth::simple_password(b"secret1234567"), Auth::SimplePassword(*b"secret12"));
        assert_eq!(Auth::None.wire_type(), 0);
        assert_eq!(Auth::simple_password(b"").wire_type(), 1);
    }

    #[test]
    fn interval_checks_per_version() {
        let a = decode(&v2(), SRC4, DST4, 255).expect("decode");
        assert_eq!(a.check_interval(2), Err(DecodeError::IntervalMismatch { vrid: 51, received: 1, configured: 2 }));
        let a3 = decode(&v3(), SRC4, DST4, 255).expect("decode");
        assert_eq!(a3.check_interval(100), Ok(()), "v3 adopts the master's interval");
        assert_eq!(a3.check_auth(&Auth::simple_password(b"x")), Ok(()));
    }

    #[test]
    fn wire_interval_conversion() {
        assert_eq!(wire_interval(Version::V2, Duration::from_secs(1)), Some(1));
        assert_eq!(wire_interval(Version::V2, Duration::from_millis(1500)), None);
        assert_eq!(wire_interval(Version::V2, Duration::from_secs(256)), None);
        assert_eq!(wire_interval(Version::V3, Duration::from_millis(100)), Some(10));
        assert_eq!(wire_interval(Version::V3, Duration::from_millis(40950)), Some(4095));
        assert_eq!(wire_interval(Version::V3, Duration::from_millis(40960)), None);
        assert_eq!(wire_interval(Version::V3, Duration::from_millis(15)), None);
        assert_eq!(wire_interval(Version::V3, Duration::ZERO), None);
    }

    #[test]
    fn address_list_comparison_ignores_order() {
        let a = decode(&v2(), SRC4, DST4, 255).expect("decode");
        let mut vips = a.addresses.clone();
        vips.reverse();
        assert!(a.address_list_matches(&vips));
        assert!(!a.address_list_matches(&vips[..1]));
        vips[0] = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert!(!a.address_list_matches(&vips));
    }
}
