//! `add server B/S ADDR [keywords]`: HAProxy's server-line keywords, turned into the fields of a
//! native `[[backend]] servers` entry so a runtime server goes through the same validation as one
//! written in the file. Pure: no I/O.

use serde::{Deserialize, Serialize};

/// One runtime server as native config fields (names as in lbha.toml).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerFields {
    pub name: String,
    pub addr: String,
    pub weight: Option<u32>,
    pub backup: bool,
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub check: bool,
    pub inter: Option<String>,
    pub fastinter: Option<String>,
    pub downinter: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub check_addr: Option<String>,
    pub check_port: Option<u16>,
    pub cookie: Option<String>,
    pub slowstart: Option<String>,
    pub on_marked_down: Option<String>,
    pub ssl: bool,
    pub verify: Option<String>,
    pub ca_file: Option<String>,
    pub sni: Option<String>,
}

/// HAProxy server keywords that HAProxy 2.6 refuses on `add server` (its own message).
const REFUSED_AT_RUNTIME: &[&str] = &["init-addr", "resolvers", "resolve-opts", "resolve-prefer", "resolve-net"];

/// Server keywords HAProxy knows that lbha does not honour on a runtime server: refused by name
/// rather than dropped.
const NOT_SUPPORTED: &[&str] = &[
    "track",
    "redir",
    "id",
    "agent-check",
    "agent-port",
    "agent-inter",
    "agent-addr",
    "agent-send",
    "send-proxy",
    "send-proxy-v2",
    "check-send-proxy",
    "check-ssl",
    "check-sni",
    "check-alpn",
    "alpn",
    "proto",
    "crt",
    "crl-file",
    "ciphers",
    "ciphersuites",
    "maxqueue",
    "minconn",
    "observe",
    "error-limit",
    "on-error",
    "on-marked-up",
    "source",
    "usesrc",
    "namespace",
    "pool-max-conn",
    "pool-purge-delay",
    "max-reuse",
    "tfo",
    "ws",
];

impl ServerFields {
    /// The `servers` entry for lbha.toml.
    pub fn to_inline_table(&self) -> toml_edit::InlineTable {
        let mut t = toml_edit::InlineTable::new();
        let s = |v: &str| toml_edit::Value::from(v);
        let n = |v: u32| toml_edit::Value::from(i64::from(v));
        t.insert("name", s(&self.name));
        t.insert("addr", s(&self.addr));
        let mut opt_s = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                t.insert(k, s(v));
            }
        };
        opt_s("inter", &self.inter);
        opt_s("fastinter", &self.fastinter);
        opt_s("downinter", &self.downinter);
        opt_s("check_addr", &self.check_addr);
        opt_s("cookie", &self.cookie);
        opt_s("slowstart", &self.slowstart);
        opt_s("on_marked_down", &self.on_marked_down);
        opt_s("verify", &self.verify);
        opt_s("ca_file", &self.ca_file);
        opt_s("sni", &self.sni);
        for (k, v) in [("weight", self.weight), ("maxconn", self.maxconn), ("rise", self.rise), ("fall", self.fall)] {
            if let Some(v) = v {
                t.insert(k, n(v));
            }
        }
        if let Some(p) = self.check_port {
            t.insert("check_port", n(u32::from(p)));
        }
        for (k, v) in [("backup", self.backup), ("disabled", self.disabled), ("check", self.check), ("ssl", self.ssl)] {
            if v {
                t.insert(k, toml_edit::Value::from(true));
            }
        }
        t
    }
}

/// Parses `ADDR [keywords]` of `add server` for server `name`. Errors are HAProxy's wording where
/// HAProxy has one.
pub fn parse_add(name: &str, args: &[&str]) -> Result<ServerFields, String> {
    let Some((addr, kws)) = args.split_first() else {
        return Err("'server' expects <name> and <addr>[:<port>] as arguments.".into());
    };
    let mut f = ServerFields { name: name.to_string(), addr: parse_addr(addr)?, ..ServerFields::default() };
    let mut it = kws.iter();
    while let Some(&kw) = it.next() {
        let mut arg = || it.next().copied().ok_or_else(|| format!("'{kw}' expects an argument."));
        match kw {
            "check" => f.check = true,
            "no-check" => f.check = false,
            "backup" => f.backup = true,
            "no-backup" => f.backup = false,
            "disabled" => f.disabled = true,
            "enabled" => f.disabled = false,
            "ssl" => f.ssl = true,
            "no-ssl" => f.ssl = false,
            "weight" => {
                let v = arg()?;
                let w = number(kw, v)?;
                if w > 256 {
                    return Err(format!("weight of server {name} is not within 0 and 256 ({w})."));
                }
                f.weight = Some(w);
            }
            "maxconn" => f.maxconn = Some(positive(kw, arg()?)?),
            "rise" => f.rise = Some(positive(kw, arg()?)?),
            "fall" => f.fall = Some(positive(kw, arg()?)?),
            "inter" => f.inter = Some(duration(kw, arg()?)?),
            "fastinter" => f.fastinter = Some(duration(kw, arg()?)?),
            "downinter" => f.downinter = Some(duration(kw, arg()?)?),
            "slowstart" => f.slowstart = Some(duration(kw, arg()?)?),
            "port" => {
                let v = arg()?;
                match v.parse::<u16>() {
                    Ok(p) if p > 0 => f.check_port = Some(p),
                    _ => return Err(format!("invalid port '{v}' for 'port' (expected 1-65535).")),
                }
            }
            "addr" => {
                let v = arg()?;
                if v.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("'addr' expects an IP address, got '{v}'."));
                }
                f.check_addr = Some(v.to_string());
            }
            "cookie" => f.cookie = Some(arg()?.to_string()),
            "on-marked-down" => {
                let v = arg()?;
                if v != "shutdown-sessions" {
                    return Err(format!("'on-marked-down' supports only 'shutdown-sessions' in lbha, got '{v}'."));
                }
                f.on_marked_down = Some(v.to_string());
            }
            "verify" => {
                let v = arg()?;
                if !matches!(v, "none" | "required") {
                    return Err(format!("'verify' expects 'none' or 'required', got '{v}'."));
                }
                f.verify = Some(v.to_string());
            }
            "ca-file" => f.ca_file = Some(arg()?.to_string()),
            "sni" => {
                let v = arg()?;
                // HAProxy takes a sample expression; only a constant name is honoured here.
                match v.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
                    Some(n) if !n.is_empty() => f.sni = Some(n.to_string()),
                    _ => return Err(format!("'sni' supports only a constant 'str(NAME)' in lbha, got '{v}'.")),
                }
            }
            k if REFUSED_AT_RUNTIME.contains(&k) => {
                return Err(format!("'{k}' option is not accepted for dynamic server"));
            }
            k if NOT_SUPPORTED.contains(&k) => {
                return Err(format!("'{k}' is not supported by lbha on a server."));
            }
            k => return Err(format!("unknown keyword '{k}'.")),
        }
    }
    Ok(f)
}

/// `host:port`, `[v6]:port` or `v6:port`, kept as written (names resolve at each load).
pub fn parse_addr(a: &str) -> Result<String, String> {
    let bad_port = |p: &str| {
        let c = p.chars().find(|c| !c.is_ascii_digit()).unwrap_or(' ');
        format!("invalid character '{c}' in port number '{p}' in '{a}'")
    };
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| format!("missing port in '{a}' (lbha needs ADDR:PORT)"))?;
        (h, p)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            // A bare IPv6 address has no port; `v6:port` is ambiguous and only read as an address.
            _ if a.parse::<std::net::Ipv6Addr>().is_ok() => {
                return Err(format!("missing port in '{a}' (lbha needs ADDR:PORT, [V6]:PORT for IPv6)"));
            }
            Some((h, p)) => (h, p),
            None => return Err(format!("missing port in '{a}' (lbha needs ADDR:PORT)")),
        }
    };
    if host.is_empty() {
        return Err(format!("missing address in '{a}'"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        Ok(_) => return Err(format!("port 0 in '{a}' is not supported by lbha (name the server's port)")),
        Err(_) if port.is_empty() => return Err(format!("missing port in '{a}' (lbha needs ADDR:PORT)")),
        Err(_) => return Err(bad_port(port)),
    }
    if host.contains(':') {
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid address '{host}' in '{a}'"));
        }
        return Ok(format!("[{host}]:{port}"));
    }
    Ok(format!("{host}:{port}"))
}

fn number(kw: &str, v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| format!("'{kw}' expects an integer argument, got '{v}'."))
}

fn positive(kw: &str, v: &str) -> Result<u32, String> {
    match number(kw, v)? {
        0 => Err(format!("'{kw}' has to be > 0.")),
        n => Ok(n),
    }
}

fn duration(kw: &str, v: &str) -> Result<String, String> {
    let d = crate::config::units::parse_duration(v).map_err(|e| format!("'{kw}': {e}"))?;
    if d.is_zero() {
        return Err(format!("'{kw}' has to be > 0."));
    }
    Ok(format!("{}ms", d.as_millis().max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(line: &str) -> Result<ServerFields, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        parse_add("s", &w)
    }

    #[test]
    fn keywords_become_native_fields() {
        let f =
            add("127.0.0.1:8080 check weight 5 inter 1s rise 1 fall 2 backup maxconn 10 cookie c1 port 9000").unwrap();
        assert_eq!(f.addr, "127.0.0.1:8080");
        assert!(f.check && f.backup && !f.disabled);
        assert_eq!(
            (f.weight, f.maxconn, f.rise, f.fall, f.check_port),
            (Some(5), Some(10), Some(1), Some(2), Some(9000))
        );
        assert_eq!(f.inter.as_deref(), Some("1000ms"));
        assert_eq!(f.cookie.as_deref(), Some("c1"));
        let t = f.to_inline_table().to_string();
        assert!(t.contains("name = \"s\"") && t.contains("check = true") && t.contains("weight = 5"), "{t}");
        let f = add("[::1]:80 ssl verify none sni str(api.example) disabled").unwrap();
        assert_eq!((f.addr.as_str(), f.ssl, f.disabled), ("[::1]:80", true, true));
        assert_eq!(f.sni.as_deref(), Some("api.example"));
        assert_eq!(add("app.internal:80").unwrap().addr, "app.internal:80");
        assert_eq!(add("::1:80").unwrap_err(), "missing port in '::1:80' (lbha needs ADDR:PORT, [V6]:PORT for IPv6)");
    }

    #[test]
    fn haproxy_refusals_and_unknown_keywords() {
        assert_eq!(parse_add("s", &[]).unwrap_err(), "'server' expects <name> and <addr>[:<port>] as arguments.");
        assert_eq!(add("127.0.0.1:x").unwrap_err(), "invalid character 'x' in port number 'x' in '127.0.0.1:x'");
        assert!(add("127.0.0.1").unwrap_err().starts_with("missing port"));
        assert_eq!(add("127.0.0.1:1 bogus").unwrap_err(), "unknown keyword 'bogus'.");
        assert_eq!(add("127.0.0.1:1 weight 300").unwrap_err(), "weight of server s is not within 0 and 256 (300).");
        assert_eq!(
            add("127.0.0.1:1 init-addr none").unwrap_err(),
            "'init-addr' option is not accepted for dynamic server"
        );
        assert_eq!(
            add("127.0.0.1:1 resolvers r").unwrap_err(),
            "'resolvers' option is not accepted for dynamic server"
        );
        assert_eq!(add("127.0.0.1:1 track be/a").unwrap_err(), "'track' is not supported by lbha on a server.");
        assert_eq!(add("127.0.0.1:1 weight").unwrap_err(), "'weight' expects an argument.");
        assert_eq!(add("127.0.0.1:1 weight x").unwrap_err(), "'weight' expects an integer argument, got 'x'.");
        assert_eq!(add("127.0.0.1:1 rise 0").unwrap_err(), "'rise' has to be > 0.");
        assert!(add("127.0.0.1:1 inter soon").unwrap_err().starts_with("'inter': "));
        assert!(add("127.0.0.1:1 sni req.hdr(host)").is_err());
        assert!(add("127.0.0.1:0").is_err());
    }
}
