//! keepalived's `virtual_routes` / `static_routes` and `virtual_rules` / `static_rules` entries:
//! parsed from keepalived's syntax (the `ip route` / `ip rule` words keepalived takes), turned into
//! rtnetlink messages (pure, so tested without a kernel), and added or removed idempotently.
//!
//! Supported: routes `[TYPE] [src ADDR] [to] DST[/LEN]|default [via|gw ADDR] [dev IF] [table T]
//! [metric|priority|preference N] [scope S] [proto|protocol P] [tos N] [onlink] [no_track]`, TYPE
//! one of `blackhole unreachable prohibit throw`; rules `[from SRC[/LEN]|all] [to DST[/LEN]|all]
//! [table T] [priority|preference|prio N] [fwmark M[/MASK]] [iif IF] [oif IF] [tos N] [no_track]`
//! with an optional action `blackhole unreachable prohibit`. Anything else (multipath `or` /
//! `nexthop`, metrics such as `mtu`) is refused by name rather than dropped.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;

/// One route, as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteDef {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub table: u32,
    pub metric: Option<u32>,
    pub scope: Option<u8>,
    pub proto: Option<u8>,
    pub tos: u8,
    pub onlink: bool,
    /// `RTN_*`: 1 unicast, 6 blackhole, 7 unreachable, 8 prohibit, 9 throw.
    pub kind: u8,
    /// The entry as written, for logs.
    pub text: String,
}

/// One policy routing rule, as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleDef {
    pub v6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub table: Option<u32>,
    pub priority: Option<u32>,
    pub fwmark: Option<(u32, Option<u32>)>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub tos: u8,
    /// `FR_ACT_*`: 1 to table, 6 blackhole, 7 unreachable, 8 prohibit.
    pub action: u8,
    pub text: String,
}

fn prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| format!("{a:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("prefix length {l:?} is not between 0 and {max}")),
        },
    };
    Ok((addr, len))
}

fn number(key: &str, v: &str) -> Result<u32, String> {
    let n = match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => v.parse(),
    };
    n.map_err(|_| format!("`{key}` needs a number, not {v:?}"))
}

fn table(v: &str) -> Result<u32, String> {
    match v {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        _ => match number("table", v)? {
            0 => Err("table 0 is not a routing table".into()),
            n => Ok(n),
        },
    }
}

fn scope(v: &str) -> Result<u8, String> {
    Ok(match v {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        _ => u8::try_from(number("scope", v)?).map_err(|_| format!("scope {v:?} is above 255"))?,
    })
}

fn proto(v: &str) -> Result<u8, String> {
    Ok(match v {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "ra" => 9,
        "dhcp" => 16,
        "keepalived" => 18,
        "babel" => 42,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        _ => u8::try_from(number("proto", v)?).map_err(|_| format!("proto {v:?} is above 255"))?,
    })
}

fn byte(key: &str, v: &str) -> Result<u8, String> {
    u8::try_from(number(key, v)?).map_err(|_| format!("`{key}` {v:?} is above 255"))
}

/// Parses one `virtual_routes` / `static_routes` entry.
pub fn parse_route(text: &str) -> Result<RouteDef, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut r = RouteDef {
        dst: IpAddr::from([0, 0, 0, 0]),
        dst_len: 0,
        src: None,
        via: None,
        dev: None,
        table: 254,
        metric: None,
        scope: None,
        proto: None,
        tos: 0,
        onlink: false,
        kind: 1,
        text: words.join(" "),
    };
    let mut dst = None;
    let mut i = 0;
    let val = |i: usize, key: &str| words.get(i + 1).copied().ok_or_else(|| format!("`{key}` needs a value"));
    while i < words.len() {
        let w = words[i];
        match w {
            "blackhole" | "unreachable" | "prohibit" | "throw" if dst.is_none() && r.kind == 1 => {
                r.kind = match w {
                    "blackhole" => 6,
                    "unreachable" => 7,
                    "prohibit" => 8,
                    _ => 9,
                };
            }
            "src" => {
                r.src =
                    Some(val(i, w)?.parse().map_err(|_| format!("`src` needs an address, not {:?}", words[i + 1]))?);
                i += 1;
            }
            "to" => {
                dst = Some(val(i, w)?);
                i += 1;
            }
            "via" | "gw" => {
                r.via =
                    Some(val(i, w)?.parse().map_err(|_| format!("`{w}` needs an address, not {:?}", words[i + 1]))?);
                i += 1;
            }
            "dev" => {
                r.dev = Some(val(i, w)?.to_string());
                i += 1;
            }
            "table" => {
                r.table = table(val(i, w)?)?;
                i += 1;
            }
            "metric" | "priority" | "preference" => {
                r.metric = Some(number(w, val(i, w)?)?);
                i += 1;
            }
            "scope" => {
                r.scope = Some(scope(val(i, w)?)?);
                i += 1;
            }
            "proto" | "protocol" => {
                r.proto = Some(proto(val(i, w)?)?);
                i += 1;
            }
            "tos" | "dsfield" => {
                r.tos = byte(w, val(i, w)?)?;
                i += 1;
            }
            "onlink" => r.onlink = true,
            // keepalived: do not track the interface; lbha does not track routes' interfaces.
            "no_track" => {}
            _ if dst.is_none() && (w == "default" || w.parse::<IpAddr>().is_ok() || w.contains('/')) => dst = Some(w),
            other => return Err(format!("route option {other:?} is not supported by lbha")),
        }
        i += 1;
    }
    let Some(d) = dst else {
        return Err("a route needs a destination (ADDR/LEN or default)".into());
    };
    let v6_hint = r.via.or(r.src).is_some_and(|a| a.is_ipv6());
    (r.dst, r.dst_len) = if d == "default" {
        (if v6_hint { IpAddr::from([0u16; 8]) } else { IpAddr::from([0, 0, 0, 0]) }, 0)
    } else {
        prefix(d)?
    };
    for (key, a) in [("via", r.via), ("src", r.src)] {
        if a.is_some_and(|a| a.is_ipv4() != r.dst.is_ipv4()) {
            return Err(format!("`{key}` is not of the destination's address family"));
        }
    }
    if r.kind != 1 && (r.via.is_some() || r.dev.is_some()) {
        return Err("a blackhole, unreachable, prohibit or throw route takes no `via` or `dev`".into());
    }
    if r.kind == 1 && r.via.is_none() && r.dev.is_none() {
        return Err("a route needs `via ADDR` or `dev IF` (or a type such as blackhole)".into());
    }
    Ok(r)
}

/// Parses one `virtual_rules` / `static_rules` entry.
pub fn parse_rule(text: &str) -> Result<RuleDef, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut r = RuleDef {
        v6: false,
        from: None,
        to: None,
        table: None,
        priority: None,
        fwmark: None,
        iif: None,
        oif: None,
        tos: 0,
        action: 0,
        text: words.join(" "),
    };
    let mut i = 0;
    let val = |i: usize, key: &str| words.get(i + 1).copied().ok_or_else(|| format!("`{key}` needs a value"));
    while i < words.len() {
        let w = words[i];
        match w {
            "from" | "to" => {
                let v = val(i, w)?;
                let p = if v == "all" { None } else { Some(prefix(v)?) };
                if w == "from" {
                    r.from = p
                } else {
                    r.to = p
                }
                i += 1;
            }
            "table" | "lookup" => {
                r.table = Some(table(val(i, w)?)?);
                i += 1;
            }
            "priority" | "preference" | "prio" => {
                r.priority = Some(number(w, val(i, w)?)?);
                i += 1;
            }
            "fwmark" => {
                let v = val(i, w)?;
                r.fwmark = Some(match v.split_once('/') {
                    Some((m, k)) => (number(w, m)?, Some(number(w, k)?)),
                    None => (number(w, v)?, None),
                });
                i += 1;
            }
            "iif" | "dev" => {
                r.iif = Some(val(i, w)?.to_string());
                i += 1;
            }
            "oif" => {
                r.oif = Some(val(i, w)?.to_string());
                i += 1;
            }
            "tos" | "dsfield" => {
                r.tos = byte(w, val(i, w)?)?;
                i += 1;
            }
            "blackhole" | "unreachable" | "prohibit" if r.action == 0 => {
                r.action = match w {
                    "blackhole" => 6,
                    "unreachable" => 7,
                    _ => 8,
                };
            }
            "no_track" => {}
            other => return Err(format!("rule option {other:?} is not supported by lbha")),
        }
        i += 1;
    }
    match (r.from, r.to) {
        (Some((a, _)), Some((b, _))) if a.is_ipv4() != b.is_ipv4() => {
            return Err("`from` and `to` are of different address families".into());
        }
        _ => {}
    }
    r.v6 = r.from.or(r.to).is_some_and(|(a, _)| a.is_ipv6());
    match (r.action, r.table) {
        (0, Some(_)) => r.action = 1,
        (0, None) => return Err("a rule needs `table T` or an action (blackhole, unreachable, prohibit)".into()),
        (_, Some(_)) => return Err("a rule with an action takes no `table`".into()),
        _ => {}
    }
    Ok(r)
}

fn family(v6: bool) -> AddressFamily {
    if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet }
}

/// The rtnetlink message for `r`; `ifindex` is `dev`'s index.
pub fn route_message(r: &RouteDef, ifindex: Option<u32>) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(r.dst.is_ipv6());
    m.header.destination_prefix_length = r.dst_len;
    m.header.tos = r.tos;
    m.header.protocol = RouteProtocol::from(r.proto.unwrap_or(4));
    m.header.kind = RouteType::from(r.kind);
    // As `ip route`: a unicast route without a gateway is on-link (scope link).
    let default_scope = if r.kind == 1 && r.via.is_none() { 253 } else { 0 };
    m.header.scope = RouteScope::from(r.scope.unwrap_or(default_scope));
    if r.table > 255 {
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
        m.attributes.push(RouteAttribute::Table(r.table));
    } else {
        m.header.table = r.table as u8;
    }
    if r.onlink {
        m.header.flags.insert(RouteFlags::Onlink);
    }
    m.attributes.push(RouteAttribute::Destination(route_addr(r.dst)));
    if let Some(g) = r.via {
        m.attributes.push(RouteAttribute::Gateway(route_addr(g)));
    }
    if let Some(s) = r.src {
        m.attributes.push(RouteAttribute::PrefSource(route_addr(s)));
    }
    if let Some(i) = ifindex {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    if let Some(p) = r.metric {
        m.attributes.push(RouteAttribute::Priority(p));
    }
    m
}

fn route_addr(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

/// The rtnetlink message for `r`.
pub fn rule_message(r: &RuleDef) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(r.v6);
    m.header.tos = r.tos;
    m.header.action = RuleAction::from(r.action);
    match r.table {
        Some(t) if t > 255 => {
            m.header.table = RouteHeader::RT_TABLE_UNSPEC;
            m.attributes.push(RuleAttribute::Table(t));
        }
        Some(t) => m.header.table = t as u8,
        None => m.header.table = RouteHeader::RT_TABLE_UNSPEC,
    }
    if let Some((a, l)) = r.from {
        m.header.src_len = l;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, l)) = r.to {
        m.header.dst_len = l;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some((mark, mask)) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(k) = mask {
            m.attributes.push(RuleAttribute::FwMask(k));
        }
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    m
}

fn code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Adds and removes routes and rules on a netlink route socket.
#[derive(Clone)]
pub struct Routes {
    handle: rtnetlink::Handle,
}

impl Routes {
    pub fn new(handle: rtnetlink::Handle) -> Routes {
        Routes { handle }
    }

    async fn ifindex(&self, dev: &Option<String>) -> Result<Option<u32>, String> {
        let Some(name) = dev else { return Ok(None) };
        let mut links = self.handle.link().get().match_name(name.clone()).execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(Some(l.header.index)),
            _ => Err(format!("no interface named {name:?} in this network namespace")),
        }
    }

    /// Adds `r`; `Ok(false)`: it was there already.
    pub async fn add_route(&self, r: &RouteDef) -> Result<bool, String> {
        let idx = self.ifindex(&r.dev).await?;
        match self.handle.route().add(route_message(r, idx)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if code(&e) == Some(EEXIST) => Ok(false),
            Err(e) => Err(format!("cannot add route {}: {e}", r.text)),
        }
    }

    /// Removes `r`; `Ok(false)`: it was not there.
    pub async fn del_route(&self, r: &RouteDef) -> Result<bool, String> {
        let idx = match self.ifindex(&r.dev).await {
            Ok(i) => i,
            // Gone with its interface.
            Err(_) => return Ok(false),
        };
        match self.handle.route().del(route_message(r, idx)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(code(&e), Some(ESRCH | ENOENT)) => Ok(false),
            Err(e) => Err(format!("cannot delete route {}: {e}", r.text)),
        }
    }

    pub async fn add_rule(&self, r: &RuleDef) -> Result<bool, String> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(r);
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if code(&e) == Some(EEXIST) => Ok(false),
            Err(e) => Err(format!("cannot add rule {}: {e}", r.text)),
        }
    }

    pub async fn del_rule(&self, r: &RuleDef) -> Result<bool, String> {
        match self.handle.rule().del(rule_message(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(code(&e), Some(ESRCH | ENOENT)) => Ok(false),
            Err(e) => Err(format!("cannot delete rule {}: {e}", r.text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_route_forms() {
        let r = parse_route("src 192.0.2.100 to 198.51.100.0/24 via 192.0.2.1 dev eth1 metric 5").unwrap();
        assert_eq!((r.dst, r.dst_len), ("198.51.100.0".parse().unwrap(), 24));
        assert_eq!(r.src, Some("192.0.2.100".parse().unwrap()));
        assert_eq!(r.via, Some("192.0.2.1".parse().unwrap()));
        assert_eq!((r.dev.as_deref(), r.metric, r.table, r.kind), (Some("eth1"), Some(5), 254, 1));
        let r = parse_route("0.0.0.0/0 gw 192.0.2.1 table 100").unwrap();
        assert_eq!((r.dst_len, r.table), (0, 100));
        let r = parse_route("blackhole 203.0.113.0/24 table 1000").unwrap();
        assert_eq!((r.kind, r.table), (6, 1000));
        let r = parse_route("2001:db8:1::/48 via 2001:db8::1 proto static scope global").unwrap();
        assert_eq!((r.dst_len, r.proto, r.scope), (48, Some(4), Some(0)));
        let r = parse_route("default via 2001:db8::1").unwrap();
        assert!(r.dst.is_ipv6());
        assert_eq!(parse_route("198.51.100.0/24 dev eth0 no_track table main").unwrap().table, 254);
    }

    #[test]
    fn route_errors_name_the_problem() {
        for (text, want) in [
            ("198.51.100.0/24 via 192.0.2.1 or 192.0.2.2", "\"or\" is not supported"),
            ("198.51.100.0/24 mtu 1400 dev eth0", "\"mtu\" is not supported"),
            ("198.51.100.0/24", "needs `via ADDR` or `dev IF`"),
            ("via 192.0.2.1", "needs a destination"),
            ("198.51.100.0/33 dev eth0", "prefix length"),
            ("198.51.100.0/24 via 2001:db8::1", "address family"),
            ("blackhole 198.51.100.0/24 dev eth0", "takes no `via` or `dev`"),
            ("198.51.100.0/24 dev eth0 table 0", "table 0"),
            ("198.51.100.0/24 dev", "needs a value"),
        ] {
            let e = parse_route(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn keepalived_rule_forms_and_errors() {
        let r = parse_rule("from 192.0.2.100 table 100 priority 100").unwrap();
        assert_eq!(
            (r.from, r.table, r.priority, r.action),
            (Some(("192.0.2.100".parse().unwrap(), 32)), Some(100), Some(100), 1)
        );
        let r = parse_rule("from all to 2001:db8::/32 fwmark 1/0x3 iif eth0 lookup 1000").unwrap();
        assert!(r.v6);
        assert_eq!((r.from, r.fwmark, r.iif.as_deref()), (None, Some((1, Some(3))), Some("eth0")));
        assert_eq!(parse_rule("to 198.51.100.0/24 blackhole").unwrap().action, 6);
        for (text, want) in [
            ("from 192.0.2.0/24", "needs `table T` or an action"),
            ("from 192.0.2.0/24 table 1 uidrange 1-2", "\"uidrange\" is not supported"),
            ("from 192.0.2.0/24 to 2001:db8::/32 table 1", "different address families"),
            ("to 198.51.100.0/24 table 1 prohibit", "takes no `table`"),
        ] {
            let e = parse_rule(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn messages_carry_what_ip_would_send() {
        let m = route_message(&parse_route("198.51.100.0/24 dev eth0 table 1000").unwrap(), Some(7));
        assert_eq!(m.header.scope, RouteScope::Link, "no gateway: on-link");
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(m.attributes.contains(&RouteAttribute::Oif(7)));
        let m = route_message(&parse_route("198.51.100.0/24 via 192.0.2.1").unwrap(), None);
        assert_eq!((m.header.scope, m.header.table, m.header.kind), (RouteScope::Universe, 254, RouteType::Unicast));
        let m = rule_message(&parse_rule("from 192.0.2.0/24 table 100 priority 10").unwrap());
        assert_eq!((m.header.src_len, m.header.table, m.header.action), (24, 100, RuleAction::ToTable));
        assert!(m.attributes.contains(&RuleAttribute::Priority(10)));
    }
}
