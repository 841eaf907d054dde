//! `[[resolvers]]` sections (HAProxy's `resolvers`) and a server's DNS settings (`resolvers`,
//! `resolve_prefer`, `resolve_net`), validated into the snapshot. The resolution itself is
//! `crate::dns`.

use super::error::{FieldPath, Problem};
use super::units::ConfDuration;
use ipnetwork::IpNetwork;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResolversDef {
    pub name: String,
    /// HAProxy's `nameserver NAME ADDR:PORT` lines.
    pub nameservers: Vec<NameserverDef>,
    /// Adds the `nameserver` lines of /etc/resolv.conf.
    pub parse_resolv_conf: bool,
    pub resolve_retries: Option<u32>,
    pub timeout_resolve: Option<ConfDuration>,
    pub timeout_retry: Option<ConfDuration>,
    pub hold_valid: Option<ConfDuration>,
    pub hold_nx: Option<ConfDuration>,
    pub hold_obsolete: Option<ConfDuration>,
    pub hold_other: Option<ConfDuration>,
    pub hold_refused: Option<ConfDuration>,
    pub hold_timeout: Option<ConfDuration>,
    pub accepted_payload_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameserverDef {
    pub name: String,
    /// `ADDR:PORT`, optionally `udp@ADDR:PORT`.
    pub addr: String,
}

/// How long the last good answer outlives each kind of failure, and a vanished record its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    pub valid: Duration,
    pub nx: Duration,
    pub obsolete: Duration,
    pub other: Duration,
    pub refused: Duration,
    pub timeout: Duration,
}

impl Default for Holds {
    /// HAProxy 2.6's defaults.
    fn default() -> Self {
        let s = Duration::from_secs;
        Holds { valid: s(10), nx: s(30), obsolete: Duration::ZERO, other: s(30), refused: s(30), timeout: s(30) }
    }
}

#[derive(Debug, Clone)]
pub struct Resolvers {
    pub name: String,
    pub nameservers: Vec<SocketAddr>,
    /// Queries sent (to the nameservers in turn) before a resolution fails with a timeout.
    pub retries: u32,
    /// Between two resolutions of a name.
    pub timeout_resolve: Duration,
    /// How long one query waits for its answer before the next is sent.
    pub timeout_retry: Duration,
    pub holds: Holds,
    /// EDNS0 payload size announced; None (512, HAProxy's default) sends no EDNS0 record.
    pub payload_size: Option<u16>,
}

/// A server whose address the resolvers keep current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDns {
    pub resolvers: String,
    pub host: String,
    /// The port of `addr` (0 for SRV: each record gives its own).
    pub port: u16,
    /// `host` names SRV records (`_service._proto.domain`): port and weight come from them.
    pub srv: bool,
    /// `resolve_opts = "ignore-weight"`: SRV weights do not change the server's weight.
    pub ignore_weight: bool,
    pub prefer_v6: bool,
    pub nets: Vec<IpNetwork>,
}

fn dur(d: &Option<ConfDuration>, default: Duration) -> Duration {
    d.as_ref().map_or(default, |d| d.0)
}

/// The `nameserver` lines of a resolv.conf text.
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Validates the sections; `resolv_conf` reads /etc/resolv.conf (injected for tests).
pub fn validate(
    defs: &[ResolversDef],
    resolv_conf: impl Fn() -> Result<String, String>,
    problems: &mut Vec<Problem>,
) -> Vec<Resolvers> {
    let mut out: Vec<Resolvers> = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        let p = FieldPath::root().key("resolvers").index(i);
        if d.name.is_empty() {
            problems.push(Problem::new(p.key("name"), "missing name"));
        } else if out.iter().any(|r| r.name == d.name) {
            problems.push(Problem::new(p.key("name"), "duplicate resolvers name").with_value(&d.name));
        }
        let mut nameservers = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (j, ns) in d.nameservers.iter().enumerate() {
            let np = p.key("nameservers").index(j);
            if ns.name.is_empty() {
                problems.push(Problem::new(np.key("name"), "missing nameserver name"));
            } else if !names.insert(ns.name.as_str()) {
                problems.push(Problem::new(np.key("name"), "duplicate nameserver name").with_value(&ns.name));
            }
            let a = ns.addr.strip_prefix("udp@").unwrap_or(&ns.addr);
            if a.starts_with("tcp@") {
                problems.push(
                    Problem::new(np.key("addr"), "DNS over TCP (`tcp@`) is not supported by lbha: use UDP")
                        .with_value(&ns.addr),
                );
                continue;
            }
            match a.parse::<SocketAddr>() {
                Ok(sa) => nameservers.push(sa),
                Err(_) => problems
                    .push(Problem::new(np.key("addr"), "expected IP:PORT (or udp@IP:PORT)").with_value(&ns.addr)),
            }
        }
        if d.parse_resolv_conf {
            match resolv_conf() {
                Ok(t) => nameservers.extend(resolv_conf_nameservers(&t)),
                Err(e) => problems.push(Problem::new(p.key("parse_resolv_conf"), e)),
            }
        }
        if nameservers.is_empty() && !d.nameservers.iter().any(|n| n.addr.contains("tcp@")) {
            problems.push(Problem::new(p.key("nameservers"), "a resolvers section needs at least one nameserver"));
        }
        let retries = d.resolve_retries.unwrap_or(3);
        if !(1..=100).contains(&retries) {
            problems.push(Problem::new(p.key("resolve_retries"), "expected 1 to 100").with_value(retries));
        }
        let payload_size = match d.accepted_payload_size {
            None => None,
            Some(n @ 512..=65535) => Some(n as u16),
            Some(n) => {
                problems.push(Problem::new(p.key("accepted_payload_size"), "expected 512 to 65535").with_value(n));
                None
            }
        };
        let one = Duration::from_secs(1);
        let h = Holds::default();
        let r = Resolvers {
            name: d.name.clone(),
            nameservers,
            retries,
            timeout_resolve: dur(&d.timeout_resolve, one),
            timeout_retry: dur(&d.timeout_retry, one),
            holds: Holds {
                valid: dur(&d.hold_valid, h.valid),
                nx: dur(&d.hold_nx, h.nx),
                obsolete: dur(&d.hold_obsolete, h.obsolete),
                other: dur(&d.hold_other, h.other),
                refused: dur(&d.hold_refused, h.refused),
                timeout: dur(&d.hold_timeout, h.timeout),
            },
            payload_size,
        };
        for (k, v) in [("timeout_resolve", r.timeout_resolve), ("timeout_retry", r.timeout_retry)] {
            if v.is_zero() {
                problems.push(Problem::new(p.key(k), "must be more than 0").with_value("0"));
            }
        }
        out.push(r);
    }
    out
}

/// A server's DNS settings; None when it names no resolvers. `known` are the section names.
pub fn server(
    sv: &super::model::Server,
    sp: &FieldPath,
    known: &[String],
    problems: &mut Vec<Problem>,
) -> Option<ServerDns> {
    for (set, k) in [
        (sv.resolve_prefer.is_some(), "resolve_prefer"),
        (sv.resolve_net.is_some(), "resolve_net"),
        (sv.resolve_opts.is_some(), "resolve_opts"),
    ] {
        if set && sv.resolvers.is_none() {
            problems.push(Problem::new(sp.key(k), "only means something with `resolvers`"));
        }
    }
    let name = sv.resolvers.as_ref()?;
    if !known.contains(name) {
        problems.push(Problem::new(sp.key("resolvers"), "no such [[resolvers]] section").with_value(name));
    }
    let prefer_v6 = match sv.resolve_prefer.as_deref() {
        None | Some("ipv6") => true,
        Some("ipv4") => false,
        Some(o) => {
            problems.push(Problem::new(sp.key("resolve_prefer"), "expected ipv4 or ipv6").with_value(o));
            true
        }
    };
    let mut ignore_weight = false;
    for o in sv.resolve_opts.as_deref().unwrap_or("").split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "prevent-dup-ip" => {}
            "ignore-weight" => ignore_weight = true,
            "allow-dup-ip" => problems.push(
                Problem::new(
                    sp.key("resolve_opts"),
                    "`allow-dup-ip` is not supported by lbha: servers sharing a name take one address each",
                )
                .with_value(o),
            ),
            _ => problems
                .push(Problem::new(sp.key("resolve_opts"), "expected prevent-dup-ip or ignore-weight").with_value(o)),
        }
    }
    let mut nets = Vec::new();
    for n in sv.resolve_net.as_deref().unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match n.parse::<IpNetwork>() {
            Ok(net) => nets.push(net),
            Err(_) => {
                problems.push(Problem::new(sp.key("resolve_net"), "expected networks like 10.0.0.0/8").with_value(n))
            }
        }
    }
    if sv.addr.parse::<SocketAddr>().is_ok() {
        // An address needs no resolution (a runtime `set server addr` may also have put one there).
        return None;
    }
    if sv.addr.starts_with('_') {
        // SRV: the records give the ports; a port written after the name is ignored, as HAProxy does.
        let host = sv.addr.split(':').next().unwrap_or("");
        if host.split('.').filter(|l| !l.is_empty()).count() < 3 {
            problems.push(
                Problem::new(sp.key("addr"), "expected an SRV name `_service._proto.domain`").with_value(&sv.addr),
            );
            return None;
        }
        return Some(ServerDns {
            resolvers: name.clone(),
            host: host.to_string(),
            port: 0,
            srv: true,
            ignore_weight,
            prefer_v6,
            nets,
        });
    }
    let Some((host, port)) = sv.addr.rsplit_once(':') else {
        problems.push(Problem::new(sp.key("addr"), "expected name:port").with_value(&sv.addr));
        return None;
    };
    let Ok(port) = port.parse::<u16>() else {
        problems.push(Problem::new(sp.key("addr"), "expected name:port").with_value(&sv.addr));
        return None;
    };
    Some(ServerDns {
        resolvers: name.clone(),
        host: host.to_string(),
        port,
        srv: false,
        ignore_weight,
        prefer_v6,
        nets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(p: &Problem) -> String {
        format!("{}: {} {:?}", p.path, p.message, p.value)
    }

    fn parse(text: &str) -> (Vec<Resolvers>, Vec<String>) {
        #[derive(Deserialize)]
        struct F {
            resolvers: Vec<ResolversDef>,
        }
        let f: F = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let r = validate(
            &f.resolvers,
            || Ok("# x\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n".into()),
            &mut problems,
        );
        (r, problems.iter().map(show).collect())
    }

    #[test]
    fn sections_take_haproxy_defaults_and_resolv_conf() {
        let (r, e) = parse(
            r#"[[resolvers]]
name = "dns"
nameservers = [{ name = "a", addr = "127.0.0.1:5353" }, { name = "b", addr = "udp@127.0.0.2:53" }]
parse_resolv_conf = true
hold_valid = "2s"
accepted_payload_size = 1232
"#,
        );
        assert!(e.is_empty(), "{e:?}");
        let r = &r[0];
        assert_eq!(r.nameservers.len(), 4);
        assert_eq!(r.nameservers[2], "192.0.2.53:53".parse().unwrap());
        assert_eq!(r.holds.valid, Duration::from_secs(2));
        assert_eq!(r.holds.nx, Duration::from_secs(30));
        assert_eq!((r.retries, r.payload_size), (3, Some(1232)));
    }

    #[test]
    fn bad_sections_are_located() {
        let (_, e) = parse(
            r#"[[resolvers]]
name = "dns"
nameservers = [{ name = "a", addr = "tcp@127.0.0.1:53" }, { name = "a", addr = "nowhere" }]
accepted_payload_size = 100
resolve_retries = 0
"#,
        );
        let all = e.join("\n");
        for want in [
            "nameservers[0].addr",
            "not supported",
            "nameservers[1].name",
            "nameservers[1].addr",
            "accepted_payload_size",
            "resolve_retries",
        ] {
            assert!(all.contains(want), "{want} missing in {all}");
        }
    }

    #[test]
    fn server_settings() {
        let sp = FieldPath::root().key("backend").index(0).key("servers").index(0);
        let known = vec!["dns".to_string()];
        let mut sv = super::super::model::Server {
            addr: "app.example:8080".into(),
            resolvers: Some("dns".into()),
            resolve_prefer: Some("ipv4".into()),
            resolve_net: Some("10.0.0.0/8, 192.0.2.0/24".into()),
            ..Default::default()
        };
        let mut p = Vec::new();
        let d = server(&sv, &sp, &known, &mut p).unwrap();
        assert!(p.is_empty());
        assert_eq!((d.host.as_str(), d.port, d.prefer_v6, d.nets.len()), ("app.example", 8080, false, 2));
        sv.addr = "_http._tcp.app.example".into();
        let d = server(&sv, &sp, &known, &mut p).unwrap();
        assert_eq!((d.host.as_str(), d.port, d.srv), ("_http._tcp.app.example", 0, true));
        sv.addr = "_http._tcp.app.example:80".into();
        assert_eq!(server(&sv, &sp, &known, &mut p).unwrap().host, "_http._tcp.app.example");
        assert!(p.is_empty());
        sv.resolve_opts = Some("prevent-dup-ip,ignore-weight".into());
        assert!(server(&sv, &sp, &known, &mut p).unwrap().ignore_weight);
        assert!(p.is_empty());
        sv.resolve_opts = Some("allow-dup-ip".into());
        server(&sv, &sp, &known, &mut p);
        assert!(p.pop().unwrap().message.contains("allow-dup-ip"));
        sv.resolve_opts = None;
        sv.addr = "_http._tcp".into();
        assert!(server(&sv, &sp, &known, &mut p).is_none());
        sv.addr = "app.example:80".into();
        sv.resolvers = Some("other".into());
        sv.resolve_prefer = Some("ipv5".into());
        server(&sv, &sp, &known, &mut p);
        let all: Vec<String> = p.iter().map(show).collect();
        let all = all.join("\n");
        assert!(all.contains("_service._proto.domain") && all.contains("no such") && all.contains("ipv5"), "{all}");
    }
}
