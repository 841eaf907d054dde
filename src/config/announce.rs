//! `[[announce]]`: VIPs this node announces to its router through FRR (active/active scale-out),
//! validated into [`AnnounceSettings`]. Interfaces are not looked up here (a run-time matter).

use super::error::{FieldPath, Problem};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;

/// Routing protocol number of lbha's routes when `protocol` is not given (unassigned in
/// /etc/iproute2/rt_protos and not one FRR uses).
pub const DEFAULT_PROTOCOL: u8 = 250;
/// Where the VIP is held (as a `local` route) when `interface` is not given.
pub const DEFAULT_INTERFACE: &str = "lo";

/// Protocol numbers the kernel reserves (0-4) or FRR's zebra uses for its own routes.
const RESERVED_PROTOCOLS: &[u8] = &[0, 1, 2, 3, 4, 11, 42, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196];

/// What the operator writes.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnounceDef {
    pub name: String,
    /// Host addresses (`192.0.2.10`, `2001:db8::10`, or with `/32` / `/128`).
    pub address: Vec<String>,
    pub interface: Option<String>,
    pub protocol: Option<i64>,
    pub track_backend: Vec<String>,
}

/// One validated `[[announce]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// Interface the VIPs are held on (a `local` route in the local table).
    pub interface: String,
    /// Routing protocol number of the hold routes (found and removed by it).
    pub protocol: u8,
    pub track_backends: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceSettings {
    pub groups: Vec<Announce>,
}

impl AnnounceSettings {
    /// Every protocol number in use, for the start-up sweep of a crashed predecessor's holds.
    pub fn protocols(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.groups.iter().map(|g| g.protocol).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Validates every `[[announce]]`; `backends` are the names `track_backend` may use.
pub fn validate(defs: &[AnnounceDef], backends: &HashSet<&str>, problems: &mut Vec<Problem>) -> AnnounceSettings {
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    let mut seen_addrs = HashSet::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("announce").index(i);
        let start = problems.len();
        if d.name.is_empty() {
            problems.push(Problem::new(p.key("name"), "missing name"));
        } else if !names.insert(d.name.as_str()) {
            problems.push(Problem::new(p.key("name"), "duplicate announce name").with_value(&d.name));
        }
        if d.address.is_empty() {
            problems.push(Problem::new(p.key("address"), "at least one address to announce is needed"));
        }
        let mut addresses = Vec::new();
        for (j, a) in d.address.iter().enumerate() {
            match parse_host(a) {
                Ok(ip) if !seen_addrs.insert(ip) => {
                    problems.push(Problem::new(p.key("address").index(j), "address announced twice").with_value(a))
                }
                Ok(ip) => addresses.push(ip),
                Err(why) => problems.push(Problem::new(p.key("address").index(j), why).with_value(a)),
            }
        }
        let interface = d.interface.clone().unwrap_or_else(|| DEFAULT_INTERFACE.to_string());
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            problems.push(
                Problem::new(p.key("interface"), "not an interface name (1 to 15 characters, no `/` or space)")
                    .with_value(&interface),
            );
        }
        let protocol = match d.protocol {
            None => DEFAULT_PROTOCOL,
            Some(n) => match u8::try_from(n) {
                Ok(v) if !RESERVED_PROTOCOLS.contains(&v) => v,
                _ => {
                    problems.push(
                        Problem::new(
                            p.key("protocol"),
                            "must be between 5 and 255 and not a number the kernel or FRR uses (11, 42, 186-196)",
                        )
                        .with_value(n),
                    );
                    DEFAULT_PROTOCOL
                }
            },
        };
        for (j, b) in d.track_backend.iter().enumerate() {
            if !backends.contains(b.as_str()) {
                problems.push(Problem::new(p.key("track_backend").index(j), "no such backend").with_value(b));
            }
        }
        if problems.len() == start {
            groups.push(Announce {
                name: d.name.clone(),
                addresses,
                interface,
                protocol,
                track_backends: d.track_backend.clone(),
            });
        }
    }
    AnnounceSettings { groups }
}

/// `[global] user` with announcements is refused: the announcement device is made from
/// /dev/net/tun, which only root may open, and lbha would have given up root by then.
pub fn check_user(s: &AnnounceSettings, user: Option<&str>, problems: &mut Vec<Problem>) {
    if let Some(u) = user
        && !s.groups.is_empty()
    {
        problems.push(
            Problem::new(
                FieldPath::root().key("announce").index(0),
                "not supported with [global] user yet: lbha stays root to create its announcement device",
            )
            .with_value(u),
        );
    }
}

/// A host address: no prefix, or `/32` (IPv4) / `/128` (IPv6).
fn parse_host(s: &str) -> Result<IpAddr, String> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.trim().parse().map_err(|_| "not an IP address".to_string())?;
    let host = if ip.is_ipv4() { "32" } else { "128" };
    if let Some(len) = len
        && len.trim() != host
    {
        return Err(format!("only host routes are announced (/{host})"));
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err("cannot be announced (unspecified, multicast or loopback)".into());
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(defs: &str) -> (AnnounceSettings, Vec<String>) {
        #[derive(Deserialize)]
        struct F {
            announce: Vec<AnnounceDef>,
        }
        let f: F = toml::from_str(defs).expect("toml");
        let backends: HashSet<&str> = ["web"].into_iter().collect();
        let mut problems = Vec::new();
        let s = validate(&f.announce, &backends, &mut problems);
        (s, problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect())
    }

    #[test]
    fn defaults_and_full_form() {
        let (s, p) = run("[[announce]]\nname = \"a\"\naddress = [\"192.0.2.10\", \"2001:db8::10/128\"]\n\
             [[announce]]\nname = \"b\"\naddress = [\"192.0.2.11/32\"]\ninterface = \"dummy0\"\n\
             protocol = 99\ntrack_backend = [\"web\"]\n");
        assert!(p.is_empty(), "{p:?}");
        let a = &s.groups[0];
        assert_eq!((a.interface.as_str(), a.protocol), ("lo", 250));
        assert_eq!(a.addresses, ["192.0.2.10".parse::<IpAddr>().unwrap(), "2001:db8::10".parse().unwrap()]);
        let b = &s.groups[1];
        assert_eq!((b.interface.as_str(), b.protocol), ("dummy0", 99));
        assert_eq!(b.track_backends, ["web"]);
        assert_eq!(s.protocols(), [99, 250]);
    }

    #[test]
    fn a_user_to_switch_to_is_refused() {
        let (s, p) = run("[[announce]]\nname = \"a\"\naddress = [\"192.0.2.10\"]\n");
        assert!(p.is_empty());
        let mut problems = Vec::new();
        check_user(&s, Some("lbha"), &mut problems);
        assert!(problems[0].message.starts_with("not supported with [global] user"), "{:?}", problems[0].message);
        problems.clear();
        check_user(&s, None, &mut problems);
        check_user(&AnnounceSettings::default(), Some("lbha"), &mut problems);
        assert!(problems.is_empty());
    }

    #[test]
    fn bad_values_are_located() {
        let (s, p) = run("[[announce]]\nname = \"a\"\naddress = [\"192.0.2.10/24\", \"x\", \"127.0.0.1\"]\n\
             protocol = 186\ntrack_backend = [\"nope\"]\n\
             [[announce]]\nname = \"a\"\naddress = []\n\
             [[announce]]\nname = \"c\"\naddress = [\"192.0.2.20\", \"192.0.2.20\"]\nprotocol = 300\n");
        assert!(s.groups.is_empty());
        let want = [
            "announce[0].address[0]: only host routes are announced (/32)",
            "announce[0].address[1]: not an IP address",
            "announce[0].address[2]: cannot be announced",
            "announce[0].protocol: must be between 5 and 255",
            "announce[0].track_backend[0]: no such backend",
            "announce[1].name: duplicate announce name",
            "announce[1].address: at least one address",
            "announce[2].address[1]: address announced twice",
            "announce[2].protocol: must be between 5 and 255",
        ];
        for w in want {
            assert!(p.iter().any(|l| l.starts_with(w)), "missing {w:?} in {p:?}");
        }
    }
}
