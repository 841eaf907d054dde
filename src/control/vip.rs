//! The arguments of `vip add|del|list`, shared by the control socket and `lbha vip`:
//! `ADDR[/LEN] dev IFACE [label LABEL] [instance NAME]`, where ADDR may be a range
//! (`198.51.100.1-100/24`, `198.51.100.1-198.51.100.100/24`, `2001:db8::1-ff/64`) standing for
//! the seed's loop of `ifconfig eth0:$i` lines. Pure: no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most addresses one command may add or remove.
pub const MAX_RANGE: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipArgError {
    #[error("malformed address {text:?}: {why}")]
    Address { text: String, why: String },
    #[error("malformed range {text:?}: {why}")]
    Range { text: String, why: String },
    #[error("range {text:?} holds {count} addresses; at most {MAX_RANGE} at once")]
    TooMany { text: String, count: u128 },
    #[error("`{0}` needs a value")]
    MissingValue(&'static str),
    #[error("`{0}` given twice")]
    Twice(&'static str),
    #[error("missing `dev IFACE`: name the interface the address goes on")]
    MissingDev,
    #[error("invalid interface name {0:?} (1-15 characters, no '/', ':' or spaces)")]
    BadDev(String),
    #[error("invalid label {label:?}: {why}")]
    BadLabel { label: String, why: String },
    #[error("unexpected argument {0:?} (expected dev, label or instance)")]
    Unexpected(String),
    #[error("missing address: vip {0} ADDR[/LEN] dev IFACE ...")]
    MissingAddress(&'static str),
}

/// One address or a run of consecutive ones, with the prefix length if one was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRange {
    pub first: IpAddr,
    pub count: u32,
    pub prefix: Option<u8>,
}

impl VipRange {
    /// The addresses in order.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        (0..self.count).map(move |i| match self.first {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + i)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + u128::from(i))),
        })
    }

    /// The prefix written, else a host prefix (/32, /128) as keepalived assumes.
    pub fn prefix_or_host(&self) -> u8 {
        self.prefix.unwrap_or(if self.first.is_ipv4() { 32 } else { 128 })
    }

    pub fn last(&self) -> IpAddr {
        self.addrs().last().unwrap_or(self.first)
    }
}

impl std::fmt::Display for VipRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.first)?;
        if self.count > 1 {
            write!(f, "-{}", self.last())?;
        }
        if let Some(p) = self.prefix {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

fn parse_addr(text: &str, whole: &str) -> Result<IpAddr, VipArgError> {
    let addr: IpAddr = text
        .parse()
        .map_err(|_| VipArgError::Address { text: whole.to_string(), why: format!("{text:?} is not an IP address") })?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(VipArgError::Address {
            text: whole.to_string(),
            why: format!("{addr} cannot be a virtual address"),
        });
    }
    if let IpAddr::V4(v4) = addr
        && v4.is_broadcast()
    {
        return Err(VipArgError::Address { text: whole.to_string(), why: format!("{addr} is the broadcast address") });
    }
    Ok(addr)
}

/// Parses `ADDR[/LEN]` or `FIRST-LAST[/LEN]`; LAST is a whole address of the same family, or
/// only the last IPv4 octet (decimal) or IPv6 group (hex).
pub fn parse_range(text: &str) -> Result<VipRange, VipArgError> {
    let (addrs, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let (first_text, last_text) = match addrs.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (addrs, None),
    };
    let first = parse_addr(first_text, text)?;
    let max = if first.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => Some(n),
            _ => {
                return Err(VipArgError::Address {
                    text: text.to_string(),
                    why: format!("prefix length {p:?} is not between 0 and {max}"),
                });
            }
        },
    };
    let Some(last_text) = last_text else {
        return Ok(VipRange { first, count: 1, prefix });
    };
    let range_err = |why: String| VipArgError::Range { text: text.to_string(), why };
    let last = match (first, last_text.parse::<IpAddr>()) {
        (_, Ok(l)) if l.is_ipv4() == first.is_ipv4() => parse_addr(last_text, text)?,
        (_, Ok(_)) => return Err(range_err("both ends must be of one address family".into())),
        (IpAddr::V4(a), Err(_)) => {
            let octet: u8 =
                last_text.parse().ok().filter(|_| last_text.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
                    range_err(format!("{last_text:?} is neither an address nor a last octet (0-255)"))
                })?;
            let mut o = a.octets();
            o[3] = octet;
            parse_addr(&Ipv4Addr::from(o).to_string(), text)?
        }
        (IpAddr::V6(a), Err(_)) => {
            let group = u16::from_str_radix(last_text, 16)
                .ok()
                .filter(|_| !last_text.is_empty() && last_text.len() <= 4)
                .ok_or_else(|| range_err(format!("{last_text:?} is neither an address nor a last group (0-ffff)")))?;
            let mut s = a.segments();
            s[7] = group;
            parse_addr(&Ipv6Addr::from(s).to_string(), text)?
        }
    };
    let span = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => i128::from(u32::from(b)) - i128::from(u32::from(a)),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (u128::from(a), u128::from(b));
            if b < a { -1 } else { i128::try_from(b - a).unwrap_or(i128::MAX) }
        }
        _ => return Err(range_err("both ends must be of one address family".into())),
    };
    if span < 0 {
        return Err(range_err(format!("{last} comes before {first}")));
    }
    let count = span as u128 + 1;
    if count > u128::from(MAX_RANGE) {
        return Err(VipArgError::TooMany { text: text.to_string(), count });
    }
    Ok(VipRange { first, count: count as u32, prefix })
}

/// A parsed `vip add|del` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRequest {
    pub range: VipRange,
    pub dev: Option<String>,
    pub label: Option<String>,
    pub instance: Option<String>,
}

/// A valid interface name for the kernel (IFNAMSIZ) and for the sysctl path.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', ':', '\0'])
        && !s.contains(char::is_whitespace)
}

/// Parses `ADDR dev IF [label L] [instance N]` (words after `vip add` / `vip del`). `dev` is
/// required when `need_dev` (add); a delete finds the address by itself.
pub fn parse_request(words: &[&str], op: &'static str, need_dev: bool) -> Result<VipRequest, VipArgError> {
    let Some((first, rest)) = words.split_first() else {
        return Err(VipArgError::MissingAddress(op));
    };
    let range = parse_range(first)?;
    let (mut dev, mut label, mut instance) = (None, None, None);
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let (key, slot): (&'static str, &mut Option<String>) = match *w {
            "dev" => ("dev", &mut dev),
            "label" => ("label", &mut label),
            "instance" | "--instance" => ("instance", &mut instance),
            other => return Err(VipArgError::Unexpected(other.to_string())),
        };
        let value = it.next().ok_or(VipArgError::MissingValue(key))?;
        if slot.is_some() {
            return Err(VipArgError::Twice(key));
        }
        *slot = Some(value.to_string());
    }
    if let Some(d) = &dev
        && !valid_ifname(d)
    {
        return Err(VipArgError::BadDev(d.clone()));
    }
    if need_dev && dev.is_none() {
        return Err(VipArgError::MissingDev);
    }
    if let Some(l) = &label {
        let bad = |why: String| VipArgError::BadLabel { label: l.clone(), why };
        if range.first.is_ipv6() {
            return Err(bad("labels exist only for IPv4 addresses".into()));
        }
        if l.len() > 15 {
            return Err(bad("longer than 15 bytes".into()));
        }
        if let Some(d) = &dev
            && l != d
            && !l.starts_with(&format!("{d}:"))
        {
            return Err(bad(format!("must start with \"{d}:\"")));
        }
    }
    Ok(VipRequest { range, dev, label, instance })
}

/// The request as control socket words (for the CLI to send); words are escaped by the caller.
pub fn request_words(r: &VipRequest) -> Vec<String> {
    let mut w = vec![r.range.to_string()];
    for (k, v) in [("dev", &r.dev), ("label", &r.label), ("instance", &r.instance)] {
        if let Some(v) = v {
            w.push(k.to_string());
            w.push(v.clone());
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses() {
        assert_eq!(
            parse_range("198.51.100.7").unwrap(),
            VipRange { first: ip("198.51.100.7"), count: 1, prefix: None }
        );
        let r = parse_range("198.51.100.7/24").unwrap();
        assert_eq!((r.count, r.prefix, r.prefix_or_host()), (1, Some(24), 24));
        assert_eq!(parse_range("2001:db8::5").unwrap().prefix_or_host(), 128);
        assert_eq!(r.to_string(), "198.51.100.7/24");
    }

    #[test]
    fn the_seeds_loop_of_100() {
        let r = parse_range("198.51.100.1-100/24").unwrap();
        assert_eq!(r.count, 100);
        let all: Vec<IpAddr> = r.addrs().collect();
        assert_eq!(all.first(), Some(&ip("198.51.100.1")));
        assert_eq!(all.last(), Some(&ip("198.51.100.100")));
        assert_eq!(r.to_string(), "198.51.100.1-198.51.100.100/24");
        assert_eq!(parse_range(&r.to_string()).unwrap(), r, "the long form round-trips");
    }

    #[test]
    fn full_ranges_cross_octets_and_v6_groups() {
        let r = parse_range("198.51.100.250-198.51.101.4").unwrap();
        assert_eq!(r.count, 11);
        assert_eq!(r.last(), ip("198.51.101.4"));
        let r = parse_range("2001:db8::1-ff/64").unwrap();
        assert_eq!((r.count, r.prefix), (255, Some(64)));
        assert_eq!(r.last(), ip("2001:db8::ff"));
        let r = parse_range("2001:db8::fffe-2001:db8::1:1").unwrap();
        assert_eq!(r.count, 4);
        assert_eq!(r.addrs().nth(2), Some(ip("2001:db8::1:0")));
        assert_eq!(parse_range("198.51.100.5-5").unwrap().count, 1);
    }

    #[test]
    fn bounded_at_4096() {
        assert_eq!(parse_range("198.51.0.0-198.51.15.255").unwrap().count, 4096);
        let e = parse_range("198.51.0.0-198.51.16.0").unwrap_err();
        assert_eq!(e, VipArgError::TooMany { text: "198.51.0.0-198.51.16.0".into(), count: 4097 });
        assert!(e.to_string().contains("at most 4096"), "{e}");
        assert!(matches!(parse_range("2001:db8::-2001:db9::"), Err(VipArgError::TooMany { .. })));
    }

    #[test]
    fn malformed() {
        for (text, want) in [
            ("198.51.100", "is not an IP address"),
            ("198.51.100.1/33", "prefix length \"33\" is not between 0 and 32"),
            ("198.51.100.1/+3", "prefix length"),
            ("2001:db8::1/129", "between 0 and 128"),
            ("198.51.100.9-1", "198.51.100.1 comes before 198.51.100.9"),
            ("198.51.100.1-256", "neither an address nor a last octet"),
            ("198.51.100.1-+5", "neither an address nor a last octet"),
            ("198.51.100.1-2001:db8::1", "one address family"),
            ("2001:db8::1-fffff", "neither an address nor a last group"),
            ("0.0.0.0", "cannot be a virtual address"),
            ("224.0.0.18", "cannot be a virtual address"),
            ("127.0.0.2", "cannot be a virtual address"),
            ("255.255.255.255", "broadcast"),
            ("198.51.100.250-198.51.101.0-3", "neither an address nor a last octet"),
        ] {
            let e = parse_range(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains(text), "the error names the value: {e}");
        }
    }

    #[test]
    fn requests() {
        let r =
            parse_request(&["198.51.100.1-3/24", "dev", "eth0", "label", "eth0:vip", "instance", "VI_1"], "add", true)
                .unwrap();
        assert_eq!(r.range.count, 3);
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!(r.label.as_deref(), Some("eth0:vip"));
        assert_eq!(r.instance.as_deref(), Some("VI_1"));
        let words = request_words(&r);
        let back: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(parse_request(&back, "add", true).unwrap(), r);
        assert_eq!(parse_request(&["198.51.100.1"], "del", false).unwrap().dev, None);
        for (w, want) in [
            (vec![], VipArgError::MissingAddress("add")),
            (vec!["198.51.100.1"], VipArgError::MissingDev),
            (vec!["198.51.100.1", "dev"], VipArgError::MissingValue("dev")),
            (vec!["198.51.100.1", "dev", "a", "dev", "b"], VipArgError::Twice("dev")),
            (vec!["198.51.100.1", "via", "x"], VipArgError::Unexpected("via".into())),
            (vec!["198.51.100.1", "dev", "a/b"], VipArgError::BadDev("a/b".into())),
            (vec!["198.51.100.1", "dev", "0123456789abcdef"], VipArgError::BadDev("0123456789abcdef".into())),
        ] {
            assert_eq!(parse_request(&w, "add", true), Err(want), "{w:?}");
        }
        let e = parse_request(&["198.51.100.1", "dev", "eth0", "label", "eth1:1"], "add", true).unwrap_err();
        assert!(e.to_string().contains("must start with \"eth0:\""), "{e}");
        let e = parse_request(&["2001:db8::1", "dev", "eth0", "label", "eth0:1"], "add", true).unwrap_err();
        assert!(e.to_string().contains("only for IPv4"), "{e}");
    }
}
