//! Table keys: how samples become keys, how the runtime API's `key KEY` reads, how `show table`
//! prints them. The derived order (bytes, then numbers) is HAProxy's tree order, which is the
//! order `show table` lists entries in.

use super::def::KeyKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TKey {
    Ip([u8; 4]),
    Ipv6([u8; 16]),
    /// 32 bits: a negative sample is stored as its two's complement (HAProxy prints 4294967291).
    Int(u32),
    /// At most the table's `len` bytes.
    Str(Box<[u8]>),
    /// Exactly the table's `len` bytes.
    Bin(Box<[u8]>),
}

/// Hashed as the key's bytes in one write (an address as one integer), which is all a table
/// of one key type needs: keys of different variants never share a table. The derived hash
/// wrote the variant, a length and the bytes, on every lookup of a tracked request.
impl std::hash::Hash for TKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            TKey::Ip(a) => h.write_u32(u32::from_ne_bytes(*a)),
            TKey::Ipv6(a) => h.write_u128(u128::from_ne_bytes(*a)),
            TKey::Int(v) => h.write_u32(*v),
            TKey::Str(b) | TKey::Bin(b) => h.write(b),
        }
    }
}

/// Why the runtime API refuses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTextError {
    Invalid,
    /// Binary tables: 2.6 does not read keys from the command line.
    Unsupported,
}

impl TKey {
    /// An address sample: IPv4 tables take IPv4 and IPv4-mapped IPv6 addresses, IPv6 tables map
    /// IPv4 into `::ffff:a.b.c.d`, string tables take the text, binary tables the bytes.
    pub fn from_ip(a: IpAddr, kind: KeyKind) -> Option<TKey> {
        match (kind, a) {
            (KeyKind::Ip, IpAddr::V4(v4)) => Some(TKey::Ip(v4.octets())),
            (KeyKind::Ip, IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| TKey::Ip(v4.octets())),
            (KeyKind::Ipv6, IpAddr::V4(v4)) => Some(TKey::Ipv6(v4.to_ipv6_mapped().octets())),
            (KeyKind::Ipv6, IpAddr::V6(v6)) => Some(TKey::Ipv6(v6.octets())),
            (KeyKind::String { .. }, a) => Some(TKey::from_bytes(a.to_string().as_bytes(), kind)),
            (KeyKind::Binary { .. }, IpAddr::V4(v4)) => Some(TKey::from_bytes(&v4.octets(), kind)),
            (KeyKind::Binary { .. }, IpAddr::V6(v6)) => Some(TKey::from_bytes(&v6.octets(), kind)),
            (KeyKind::Integer, _) => None,
        }
    }

    /// An integer sample (cut to 32 bits, as HAProxy's integer tables do).
    pub fn from_int(v: i64, kind: KeyKind) -> Option<TKey> {
        match kind {
            KeyKind::Integer => Some(TKey::Int(v as u32)),
            KeyKind::String { .. } => Some(TKey::from_bytes(v.to_string().as_bytes(), kind)),
            KeyKind::Binary { .. } => Some(TKey::from_bytes(&v.to_be_bytes(), kind)),
            KeyKind::Ip | KeyKind::Ipv6 => None,
        }
    }

    /// A text or binary sample; ip/ipv6/integer tables parse the text.
    pub fn from_bytes(b: &[u8], kind: KeyKind) -> TKey {
        match kind {
            KeyKind::String { len } => TKey::Str(b[..b.len().min(len)].into()),
            KeyKind::Binary { len } => {
                let mut v = vec![0u8; len];
                let n = b.len().min(len);
                v[..n].copy_from_slice(&b[..n]);
                TKey::Bin(v.into())
            }
            _ => {
                let text = String::from_utf8_lossy(b);
                TKey::from_text(&text, kind).unwrap_or(TKey::Int(0))
            }
        }
    }

    /// The runtime API's `key KEY`, read as HAProxy 2.6 reads it: an IPv4 text that does not
    /// parse is 0.0.0.0 (`inetaddr_host`), integers are `strtoul` up to 2^32-1, strings are cut.
    pub fn from_text(s: &str, kind: KeyKind) -> Result<TKey, KeyTextError> {
        match kind {
            KeyKind::Ip => Ok(TKey::Ip(s.parse::<Ipv4Addr>().map_or([0; 4], |a| a.octets()))),
            KeyKind::Ipv6 => s.parse::<Ipv6Addr>().map(|a| TKey::Ipv6(a.octets())).map_err(|_| KeyTextError::Invalid),
            KeyKind::Integer => {
                let t = s.trim_start();
                let t = t.strip_prefix('+').unwrap_or(t);
                let digits: &str = &t[..t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())];
                if digits.is_empty() {
                    return Err(KeyTextError::Invalid);
                }
                digits
                    .parse::<u64>()
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .map(TKey::Int)
                    .ok_or(KeyTextError::Invalid)
            }
            KeyKind::String { .. } => Ok(TKey::from_bytes(s.as_bytes(), kind)),
            KeyKind::Binary { .. } => Err(KeyTextError::Unsupported),
        }
    }

    /// Heap bytes the key owns beyond its inline size.
    pub fn heap_len(&self) -> usize {
        match self {
            TKey::Str(b) | TKey::Bin(b) => b.len(),
            _ => 0,
        }
    }
}

impl std::fmt::Display for TKey {
    /// As `show table` prints it: binary keys in upper-case hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TKey::Ip(a) => write!(f, "{}", Ipv4Addr::from(*a)),
            TKey::Ipv6(a) => write!(f, "{}", Ipv6Addr::from(*a)),
            TKey::Int(v) => write!(f, "{v}"),
            TKey::Str(b) => f.write_str(&String::from_utf8_lossy(b)),
            TKey::Bin(b) => b.iter().try_for_each(|x| write!(f, "{x:02X}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_become_keys() {
        let v4: IpAddr = "127.0.0.17".parse().unwrap();
        assert_eq!(TKey::from_ip(v4, KeyKind::Ipv6).unwrap().to_string(), "::ffff:127.0.0.17");
        assert_eq!(TKey::from_ip(v4, KeyKind::Ip), Some(TKey::Ip([127, 0, 0, 17])));
        assert_eq!(TKey::from_ip("::ffff:1.2.3.4".parse().unwrap(), KeyKind::Ip), Some(TKey::Ip([1, 2, 3, 4])));
        assert_eq!(TKey::from_ip("2001:db8::1".parse().unwrap(), KeyKind::Ip), None);
        assert_eq!(TKey::from_int(-5, KeyKind::Integer).unwrap().to_string(), "4294967291");
        let bin = KeyKind::Binary { len: 8 };
        assert_eq!(TKey::from_bytes(&[0xde, 0xad, 0xbe, 0xef], bin).to_string(), "DEADBEEF00000000");
        assert_eq!(TKey::from_bytes(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], bin).to_string(), "0001020304050607");
        assert_eq!(TKey::from_bytes(b"abcdefghij", KeyKind::String { len: 8 }).to_string(), "abcdefgh");
    }

    #[test]
    fn runtime_keys_as_haproxy_2_6_reads_them() {
        assert_eq!(TKey::from_text("1.2.3", KeyKind::Ip), Ok(TKey::Ip([0; 4])));
        assert_eq!(TKey::from_text("::1", KeyKind::Ipv6).unwrap().to_string(), "::1");
        assert_eq!(TKey::from_text("127.0.0.1", KeyKind::Ipv6), Err(KeyTextError::Invalid));
        assert_eq!(TKey::from_text("4294967295", KeyKind::Integer), Ok(TKey::Int(u32::MAX)));
        assert_eq!(TKey::from_text("4294967296", KeyKind::Integer), Err(KeyTextError::Invalid));
        assert_eq!(TKey::from_text("-5", KeyKind::Integer), Err(KeyTextError::Invalid));
        assert_eq!(TKey::from_text("12abc", KeyKind::Integer), Ok(TKey::Int(12)));
        assert_eq!(TKey::from_text("01", KeyKind::Binary { len: 4 }), Err(KeyTextError::Unsupported));
    }

    #[test]
    fn order_is_haproxys_tree_order() {
        let mut v = [TKey::Ip([127, 0, 0, 1]), TKey::Ip([1, 2, 3, 4]), TKey::Ip([10, 0, 0, 1])];
        v.sort();
        assert_eq!(v.iter().map(ToString::to_string).collect::<Vec<_>>(), ["1.2.3.4", "10.0.0.1", "127.0.0.1"]);
        let mut i = [TKey::Int(4294967291), TKey::Int(42), TKey::Int(100000)];
        i.sort();
        assert_eq!(i, [TKey::Int(42), TKey::Int(100000), TKey::Int(4294967291)]);
    }
}
