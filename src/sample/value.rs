//! Typed samples and HAProxy's implicit casts between them (`sample_casts` in HAProxy's
//! `sample.c`): a converter or a consumer asks for a type and the value is cast on the way,
//! or the expression is rejected at load time when no cast exists.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Sample types. `Addr` is HAProxy's pseudo type "IPv4 or IPv6", used only for type checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmpType {
    Bool,
    Sint,
    Addr,
    Ipv4,
    Ipv6,
    Str,
    Bin,
    Meth,
}

/// One sample. Strings are bytes: a header or a body need not be UTF-8.
/// A sample as a match method reads it: borrowed from a [`Value`], or lent straight from the
/// request ([`super::Fetch::any_lent`]) so matching copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample<'a> {
    Str(&'a [u8]),
    Int(i64),
    Ip(std::net::IpAddr),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Sint(i64),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Str(Vec<u8>),
    Bin(Vec<u8>),
    /// An HTTP method, kept as its name.
    Meth(String),
}

impl Value {
    pub fn str(s: impl Into<Vec<u8>>) -> Value {
        Value::Str(s.into())
    }

    pub fn ty(&self) -> SmpType {
        match self {
            Value::Bool(_) => SmpType::Bool,
            Value::Sint(_) => SmpType::Sint,
            Value::Ipv4(_) => SmpType::Ipv4,
            Value::Ipv6(_) => SmpType::Ipv6,
            Value::Str(_) => SmpType::Str,
            Value::Bin(_) => SmpType::Bin,
            Value::Meth(_) => SmpType::Meth,
        }
    }

    /// Casts to `to`, or `None` where HAProxy's cast fails (no cast, or e.g. a string that is
    /// not an address). Casting to `Addr` keeps an address and parses a string as v4, then v6.
    pub fn cast(self, to: SmpType) -> Option<Value> {
        use SmpType as T;
        Some(match (self, to) {
            (v, t) if v.ty() == t => v,
            (Value::Ipv4(a), T::Addr) => Value::Ipv4(a),
            (Value::Ipv6(a), T::Addr) => Value::Ipv6(a),
            (Value::Bool(b), T::Sint) => Value::Sint(b as i64),
            (Value::Bool(b), T::Str) => Value::Str(if b { b"1".to_vec() } else { b"0".to_vec() }),
            (Value::Bool(b), T::Bin) => Value::Bin((b as i64).to_be_bytes().to_vec()),
            (Value::Sint(i), T::Bool) => Value::Bool(i != 0),
            (Value::Sint(i), T::Addr | T::Ipv4) => Value::Ipv4(Ipv4Addr::from(i as u32)),
            (Value::Sint(i), T::Ipv6) => Value::Ipv6(Ipv4Addr::from(i as u32).to_ipv6_mapped()),
            (Value::Sint(i), T::Str) => Value::Str(int_text(i)),
            (Value::Sint(i), T::Bin) => Value::Bin(i.to_be_bytes().to_vec()),
            (Value::Ipv4(a), T::Sint) => Value::Sint(u32::from(a) as i64),
            (Value::Ipv4(a), T::Ipv6) => Value::Ipv6(a.to_ipv6_mapped()),
            (Value::Ipv4(a), T::Str) => Value::Str(ipv4_text(a)),
            (Value::Ipv4(a), T::Bin) => Value::Bin(a.octets().to_vec()),
            (Value::Ipv6(a), T::Ipv4) => Value::Ipv4(v6_to_v4(a)?),
            (Value::Ipv6(a), T::Str) => Value::Str(a.to_string().into_bytes()),
            (Value::Ipv6(a), T::Bin) => Value::Bin(a.octets().to_vec()),
            (Value::Str(s), T::Bool) if !s.is_empty() => Value::Bool(read_int64(&s).0 != 0),
            (Value::Str(s), T::Sint) if !s.is_empty() => Value::Sint(read_int64(&s).0),
            (Value::Str(s), T::Addr) => parse_v4(&s).map(Value::Ipv4).or_else(|| parse_v6(&s).map(Value::Ipv6))?,
            (Value::Str(s), T::Ipv4) => Value::Ipv4(parse_v4(&s)?),
            (Value::Str(s), T::Ipv6) => Value::Ipv6(parse_v6(&s)?),
            (Value::Str(s), T::Bin) => Value::Bin(s),
            (Value::Str(s) | Value::Bin(s), T::Meth) => Value::Meth(String::from_utf8_lossy(&s).into_owned()),
            // A binary sample read as a string ends at its first NUL byte (HAProxy's c_bin2str).
            (Value::Bin(mut b), T::Str) => {
                if let Some(nul) = b.iter().position(|&c| c == 0) {
                    b.truncate(nul);
                }
                Value::Str(b)
            }
            (Value::Meth(m), T::Str) => Value::Str(m.into_bytes()),
            (Value::Meth(m), T::Bin) => Value::Bin(m.into_bytes()),
            _ => return None,
        })
    }

    /// Truthiness as an ACL without a match method sees it (`-m bool`).
    pub fn is_true(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Sint(i) => *i != 0,
            _ => false,
        }
    }
}

impl SmpType {
    /// Whether HAProxy can cast `self` to `to` at all (checked at load time).
    pub fn casts_to(self, to: SmpType) -> bool {
        use SmpType as T;
        if self == to {
            return true;
        }
        match self {
            T::Bool => matches!(to, T::Sint | T::Str | T::Bin),
            T::Sint => !matches!(to, T::Meth),
            T::Addr => matches!(to, T::Ipv4 | T::Ipv6 | T::Str | T::Bin),
            T::Ipv4 => !matches!(to, T::Bool | T::Meth),
            T::Ipv6 => matches!(to, T::Addr | T::Ipv4 | T::Str | T::Bin),
            T::Str => true,
            T::Bin => matches!(to, T::Str | T::Meth),
            T::Meth => matches!(to, T::Str | T::Bin),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SmpType::Bool => "bool",
            SmpType::Sint => "sint",
            SmpType::Addr => "addr",
            SmpType::Ipv4 => "ipv4",
            SmpType::Ipv6 => "ipv6",
            SmpType::Str => "str",
            SmpType::Bin => "bin",
            SmpType::Meth => "meth",
        }
    }
}

/// HAProxy's `read_int64`: optional sign, then digits up to the first non-digit, saturating.
/// Returns the value and how many bytes were consumed.
pub fn read_int64(s: &[u8]) -> (i64, usize) {
    let (neg, start) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = s[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut n: u64 = 0;
    for &c in &s[start..start + digits] {
        n = n.checked_mul(10).and_then(|n| n.checked_add((c - b'0') as u64)).unwrap_or(u64::MAX);
    }
    let value = if neg {
        if n > 1 << 63 { i64::MIN } else { (n as i64).wrapping_neg() }
    } else {
        n.min(i64::MAX as u64) as i64
    };
    (value, start + digits)
}

fn parse_v4(s: &[u8]) -> Option<Ipv4Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_v6(s: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// HAProxy's `v6tov4`: v4-mapped (`::ffff:a.b.c.d`), v4-compatible (`::a.b.c.d`) and 6to4
/// (`2002:AABB:CCDD::/48`, whatever follows) addresses carry an IPv4 address.
pub fn v6_to_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = a.octets();
    if o[..8].iter().all(|&b| b == 0) && (o[8..12] == [0, 0, 0xff, 0xff] || o[8..12] == [0, 0, 0, 0]) {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if o[0] == 0x20 && o[1] == 0x02 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Decimal digits of `n` into the end of `buf`; the index of the first digit. Header values and
/// map keys format numbers on every request: without `fmt`'s machinery.
fn digits(mut n: u64, buf: &mut [u8; 20]) -> usize {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

/// `i` as `i.to_string()` writes it.
fn int_text(i: i64) -> Vec<u8> {
    let mut buf = [0u8; 20];
    let at = digits(i.unsigned_abs(), &mut buf);
    let mut out = Vec::with_capacity(buf.len() - at + 1);
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
    out
}

/// `a` as `a.to_string()` writes it (dotted quad).
fn ipv4_text(a: Ipv4Addr) -> Vec<u8> {
    let mut out = Vec::with_capacity(15);
    for (k, o) in a.octets().into_iter().enumerate() {
        if k > 0 {
            out.push(b'.');
        }
        let mut buf = [0u8; 20];
        let at = digits(o.into(), &mut buf);
        out.extend_from_slice(&buf[at..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_int64_matches_haproxy() {
        assert_eq!(read_int64(b"12abc"), (12, 2));
        assert_eq!(read_int64(b"abc"), (0, 0));
        assert_eq!(read_int64(b" 5"), (0, 0));
        assert_eq!(read_int64(b"-5"), (-5, 2));
        assert_eq!(read_int64(b"+7"), (7, 2));
        assert_eq!(read_int64(b"123456789012345678901234").0, i64::MAX);
        assert_eq!(read_int64(b"-9223372036854775808").0, i64::MIN);
        assert_eq!(read_int64(b"-99999999999999999999").0, i64::MIN);
    }

    #[test]
    fn casts_follow_haproxy_matrix() {
        assert_eq!(Value::str("12abc").cast(SmpType::Sint), Some(Value::Sint(12)));
        assert_eq!(Value::str("").cast(SmpType::Sint), None);
        assert_eq!(Value::Bool(true).cast(SmpType::Bin), Some(Value::Bin(vec![0, 0, 0, 0, 0, 0, 0, 1])));
        assert_eq!(Value::Sint(1234).cast(SmpType::Bin), Some(Value::Bin(1234i64.to_be_bytes().to_vec())));
        assert_eq!(Value::Ipv4(Ipv4Addr::new(10, 0, 0, 1)).cast(SmpType::Sint), Some(Value::Sint(167772161)));
        assert_eq!(Value::Sint(167772161).cast(SmpType::Ipv4), Some(Value::Ipv4(Ipv4Addr::new(10, 0, 0, 1))));
        let mapped: Ipv6Addr = "::ffff:1.2.3.4".parse().unwrap();
        assert_eq!(Value::Ipv6(mapped).cast(SmpType::Ipv4), Some(Value::Ipv4(Ipv4Addr::new(1, 2, 3, 4))));
        assert_eq!(Value::Ipv6("2001:db8::1".parse().unwrap()).cast(SmpType::Ipv4), None);
        assert_eq!(Value::Ipv6(mapped).cast(SmpType::Sint), None);
        assert_eq!(Value::Bin(b"ab\0cd".to_vec()).cast(SmpType::Str), Some(Value::str("ab")));
        assert_eq!(Value::str("::1").cast(SmpType::Addr), Some(Value::Ipv6(Ipv6Addr::LOCALHOST)));
        assert_eq!(Value::str("1.2.3.4").cast(SmpType::Addr), Some(Value::Ipv4(Ipv4Addr::new(1, 2, 3, 4))));
        assert_eq!(Value::str("nope").cast(SmpType::Ipv4), None);
        assert_eq!(Value::Meth("GET".into()).cast(SmpType::Str), Some(Value::str("GET")));
        assert_eq!(Value::Bool(false).cast(SmpType::Str), Some(Value::str("0")));
    }

    #[test]
    fn static_cast_table() {
        assert!(SmpType::Str.casts_to(SmpType::Sint));
        assert!(!SmpType::Ipv6.casts_to(SmpType::Sint));
        assert!(!SmpType::Bin.casts_to(SmpType::Sint));
        assert!(!SmpType::Bool.casts_to(SmpType::Ipv4));
        assert!(SmpType::Ipv4.casts_to(SmpType::Addr));
        assert!(!SmpType::Meth.casts_to(SmpType::Sint));
    }

    #[test]
    fn numbers_and_addresses_format_as_display_does() {
        for i in [0, 7, -7, 10, 99, 100, 12345, -40000, i64::MAX, i64::MIN] {
            assert_eq!(int_text(i), i.to_string().into_bytes(), "{i}");
            assert_eq!(Value::Sint(i).cast(SmpType::Str), Some(Value::Str(i.to_string().into_bytes())));
        }
        for a in ["0.0.0.0", "127.0.0.1", "10.20.255.9", "255.255.255.255", "192.0.2.100"] {
            let ip: Ipv4Addr = a.parse().unwrap();
            assert_eq!(ipv4_text(ip), a.as_bytes());
            assert_eq!(Value::Ipv4(ip).cast(SmpType::Str), Some(Value::Str(a.as_bytes().to_vec())));
        }
    }
}
