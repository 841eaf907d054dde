//! `add server B/S ADDR [keywords]`: HAProxy's server-line keywords, parsed straight into the
//! config model's [`Server`] (the one list of server keywords), so a runtime server goes through
//! the same validation as one written in the file. Pure: no I/O.

use crate::config::model::Server;
use crate::config::units::ConfDuration;

/// HAProxy server keywords that HAProxy 2.6 refuses on `add server` (its own message).
const REFUSED_AT_RUNTIME: &[&str] =
    &["init-addr", "resolvers", "resolve-opts", "resolve-prefer", "resolve-net", "redir"];

/// Server keywords HAProxy knows that lbha does not honour on a runtime server: refused by name
/// rather than dropped.
const NOT_SUPPORTED: &[&str] = &["usesrc", "namespace", "tfo", "ws"];

/// The `servers` entry for lbha.toml: the keys a server sets, without those left at their defaults.
pub fn inline_table(sv: &Server) -> toml_edit::InlineTable {
    let written = |s: &Server| match toml::Value::try_from(s) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let defaults = written(&Server::default());
    let mut t = toml_edit::InlineTable::new();
    for (k, v) in written(sv) {
        if k != "name" && k != "addr" && defaults.get(&k) == Some(&v) {
            continue;
        }
        // A scalar of a flat struct: its TOML text is a valid inline value.
        if let Ok(v) = v.to_string().parse::<toml_edit::Value>() {
            t.insert(&k, v);
        }
    }
    t
}

/// Parses `ADDR [keywords]` of `add server` for server `name`. Errors are HAProxy's wording where
/// HAProxy has one.
pub fn parse_add(name: &str, args: &[&str]) -> Result<Server, String> {
    let Some((addr, kws)) = args.split_first() else {
        return Err("'server' expects <name> and <addr>[:<port>] as arguments.".into());
    };
    let mut f = Server { name: name.to_string(), addr: parse_addr(addr)?, ..Server::default() };
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
            "proto" => match arg()? {
                "h2" => f.proto = Some("h2".into()),
                "h1" => f.proto = None,
                v => return Err(format!("'proto' supports only 'h2' (and 'h1', the default) in lbha, got '{v}'.")),
            },
            "maxqueue" => f.maxqueue = Some(number(kw, arg()?)?),
            "minconn" => f.minconn = Some(number(kw, arg()?)?),
            "pool-max-conn" | "max-reuse" => {
                let v = arg()?;
                let n = match v.parse::<i64>() {
                    Ok(n) if (-1..=i64::from(u32::MAX)).contains(&n) => n,
                    _ => return Err(format!("'{kw}' expects -1 or a positive integer, got '{v}'.")),
                };
                if kw == "max-reuse" { f.max_reuse = Some(n) } else { f.pool_max_conn = Some(n) }
            }
            "pool-purge-delay" => f.pool_purge_delay = Some(duration(kw, arg()?)?),
            "on-marked-down" => {
                let v = arg()?;
                if v != "shutdown-sessions" {
                    return Err(format!("'on-marked-down' supports only 'shutdown-sessions' in lbha, got '{v}'."));
                }
                f.on_marked_down = Some(v.to_string());
            }
            // Values are checked by the server's validation, as the file's.
            "observe" => f.observe = Some(arg()?.to_string()),
            "on-error" => f.on_error = Some(arg()?.to_string()),
            "on-marked-up" => f.on_marked_up = Some(arg()?.to_string()),
            // Resolved against the served backends when the server is validated.
            "track" => f.track = Some(arg()?.to_string()),
            // Validated as the file's (`usesrc` is refused there by name).
            "source" => f.source = Some(arg()?.to_string()),
            "id" => {
                let v = arg()?;
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => f.id = Some(n),
                    _ => return Err("'id' : custom id has to be > 0.".into()),
                }
            }
            "error-limit" => {
                let v = arg()?;
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => f.error_limit = Some(n),
                    _ => return Err("error-limit has to be > 0.".into()),
                }
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
            "send-proxy" | "no-send-proxy" => f.send_proxy = kw == "send-proxy",
            "send-proxy-v2" | "no-send-proxy-v2" => f.send_proxy_v2 = kw == "send-proxy-v2",
            // HAProxy's shorthand for `send-proxy-v2 proxy-v2-options ssl`.
            "send-proxy-v2-ssl" => {
                f.send_proxy_v2 = true;
                f.proxy_v2_options = Some("ssl".into());
            }
            "proxy-v2-options" => f.proxy_v2_options = Some(arg()?.to_string()),
            "check-send-proxy" => f.check_send_proxy = true,
            "check-ssl" | "no-check-ssl" => f.check_ssl = Some(kw == "check-ssl"),
            "check-sni" => f.check_sni = Some(arg()?.to_string()),
            "check-alpn" => f.check_alpn = Some(arg()?.to_string()),
            "alpn" => f.alpn = Some(arg()?.to_string()),
            "crt" => f.crt = Some(arg()?.to_string()),
            "ciphers" => f.ciphers = Some(arg()?.to_string()),
            "ciphersuites" => f.ciphersuites = Some(arg()?.to_string()),
            "ssl-min-ver" => f.ssl_min_ver = Some(arg()?.to_string()),
            "ssl-max-ver" => f.ssl_max_ver = Some(arg()?.to_string()),
            "verifyhost" => f.verifyhost = Some(arg()?.to_string()),
            "crl-file" => f.crl_file = Some(arg()?.to_string()),
            "no-sslv3" => f.no_sslv3 = true,
            "no-tlsv10" => f.no_tlsv10 = true,
            "no-tlsv11" => f.no_tlsv11 = true,
            "no-tlsv12" => f.no_tlsv12 = true,
            "no-tlsv13" => f.no_tlsv13 = true,
            "force-sslv3" => f.force_sslv3 = true,
            "force-tlsv10" => f.force_tlsv10 = true,
            "force-tlsv11" => f.force_tlsv11 = true,
            "force-tlsv12" => f.force_tlsv12 = true,
            "force-tlsv13" => f.force_tlsv13 = true,
            "no-tls-tickets" => f.no_tls_tickets = true,
            "agent-check" | "no-agent-check" => f.agent_check = kw == "agent-check",
            "agent-port" => {
                let v = arg()?;
                match v.parse::<u16>() {
                    Ok(p) if p > 0 => f.agent_port = Some(p),
                    _ => return Err(format!("invalid port '{v}' for 'agent-port' (expected 1-65535).")),
                }
            }
            "agent-inter" => f.agent_inter = Some(duration(kw, arg()?)?),
            "agent-addr" => f.agent_addr = Some(arg()?.to_string()),
            // Kept HAProxy-escaped (`\n`), as the file's `agent_send`.
            "agent-send" => f.agent_send = Some(arg()?.to_string()),
            k if REFUSED_AT_RUNTIME.contains(&k) => {
                return Err(format!("'{k}' option is not accepted for dynamic server"));
            }
            k if NOT_SUPPORTED.contains(&k) => {
                return Err(format!("'{k}' is not supported by lbha on a server."));
            }
            k => return Err(format!("unknown keyword '{k}'.")),
        }
    }
    // HAProxy 2.6 checks a dynamic server over TLS only with an explicit `check-ssl`, even when
    // its traffic is TLS and its checks go to its own address.
    if f.check && f.ssl && f.check_ssl.is_none() {
        f.check_ssl = Some(false);
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

fn duration(kw: &str, v: &str) -> Result<ConfDuration, String> {
    let d = crate::config::units::parse_duration(v).map_err(|e| format!("'{kw}': {e}"))?;
    if d.is_zero() {
        return Err(format!("'{kw}' has to be > 0."));
    }
    Ok(ConfDuration(std::time::Duration::from_millis(d.as_millis().max(1) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(line: &str) -> Result<Server, String> {
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
        assert_eq!(f.inter, Some(ConfDuration(std::time::Duration::from_secs(1))));
        assert_eq!(f.cookie.as_deref(), Some("c1"));
        let t = inline_table(&f).to_string();
        assert!(t.contains("name = \"s\"") && t.contains("check = true") && t.contains("weight = 5"), "{t}");
        let f = add("[::1]:80 ssl verify none sni str(api.example) disabled").unwrap();
        assert_eq!((f.addr.as_str(), f.ssl, f.disabled), ("[::1]:80", true, true));
        assert_eq!(f.sni.as_deref(), Some("api.example"));
        assert_eq!(add("app.internal:80").unwrap().addr, "app.internal:80");
        assert_eq!(add("::1:80").unwrap_err(), "missing port in '::1:80' (lbha needs ADDR:PORT, [V6]:PORT for IPv6)");
        let f = add(
            "127.0.0.1:80 proto h2 maxconn 10 minconn 2 maxqueue 5 pool-max-conn -1 max-reuse 9 pool-purge-delay 2s",
        )
        .unwrap();
        let t = inline_table(&f).to_string();
        for want in [
            "proto = \"h2\"",
            "minconn = 2",
            "maxqueue = 5",
            "pool_max_conn = -1",
            "max_reuse = 9",
            "pool_purge_delay = \"2000ms\"",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        assert!(add("127.0.0.1:80 proto h3").unwrap_err().contains("'proto'"));
        // TLS, PROXY protocol, check and agent keywords: the file's keys, validated as the file's.
        let f = add(
            "127.0.0.1:443 ssl verify none alpn h2,http/1.1 crt /c.pem ciphers ECDHE ciphersuites TLS_AES_128_GCM_SHA256 \
             ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 check check-ssl check-sni c.example check-alpn h2 send-proxy-v2-ssl \
             check-send-proxy agent-check agent-port 9999 agent-inter 2s agent-addr 127.0.0.2 agent-send ready\\n",
        )
        .unwrap();
        let t = inline_table(&f).to_string();
        for want in [
            "alpn = \"h2,http/1.1\"",
            "crt = \"/c.pem\"",
            "ciphers = \"ECDHE\"",
            "ciphersuites = \"TLS_AES_128_GCM_SHA256\"",
            "ssl_min_ver = \"TLSv1.2\"",
            "ssl_max_ver = \"TLSv1.3\"",
            "check_ssl = true",
            "check_sni = \"c.example\"",
            "check_alpn = \"h2\"",
            "send_proxy_v2 = true",
            "proxy_v2_options = \"ssl\"",
            "check_send_proxy = true",
            "agent_check = true",
            "agent_port = 9999",
            "agent_inter = \"2000ms\"",
            "agent_addr = \"127.0.0.2\"",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        assert_eq!(f.agent_send.as_deref(), Some("ready\\n"));
        let f = add("127.0.0.1:80 send-proxy proxy-v2-options authority no-check-ssl no-agent-check").unwrap();
        assert!(f.send_proxy && f.check_ssl == Some(false) && !f.agent_check);
        assert_eq!(f.proxy_v2_options.as_deref(), Some("authority"));
        assert!(add("127.0.0.1:80 agent-port 0").unwrap_err().contains("'agent-port'"));
        assert_eq!(add("127.0.0.1:80 alpn").unwrap_err(), "'alpn' expects an argument.");
        assert!(add("127.0.0.1:80 max-reuse -5").unwrap_err().contains("'max-reuse'"));
        // Passive checks, as HAProxy 2.6 takes them at runtime.
        let f = add(
            "127.0.0.1:80 check observe layer7 error-limit 3 on-error mark-down on-marked-up shutdown-backup-sessions",
        )
        .unwrap();
        let t = inline_table(&f).to_string();
        for want in [
            "observe = \"layer7\"",
            "error_limit = 3",
            "on_error = \"mark-down\"",
            "on_marked_up = \"shutdown-backup-sessions\"",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        assert_eq!(add("127.0.0.1:80 error-limit 0").unwrap_err(), "error-limit has to be > 0.");
        assert_eq!(add("127.0.0.1:80 id 7").unwrap().id, Some(7));
        assert_eq!(
            add("127.0.0.1:80 source 127.0.0.2:2000-2010").unwrap().source.as_deref(),
            Some("127.0.0.2:2000-2010")
        );
        assert_eq!(add("127.0.0.1:80 id 0").unwrap_err(), "'id' : custom id has to be > 0.");
        assert_eq!(add("127.0.0.1:80 error-limit -1").unwrap_err(), "error-limit has to be > 0.");
    }

    /// The table a runtime server is written as reads back to the same server, with only the
    /// keys it sets, and the saved JSON of the old per-field mirror still reads.
    #[test]
    fn the_written_server_reads_back_the_same() {
        let f = add("[::1]:80 check inter 1500ms fall 2 backup cookie c ssl verify none pool-max-conn -1").unwrap();
        let t = inline_table(&f);
        let keys: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        // `check_ssl = false` too: an `ssl` dynamic server is checked plain without `check-ssl`.
        assert_eq!(keys.len(), 11, "{t}");
        assert_eq!(f.check_ssl, Some(false));
        let back: Server =
            toml::from_str(&format!("s = {t}")).map(|m: toml::Table| m["s"].clone().try_into().unwrap()).unwrap();
        assert_eq!(back, f);
        let old = r#"{"name":"c","addr":"127.0.0.1:1","weight":null,"backup":false,"check":true,"inter":"1000ms","sni":null}"#;
        let s: Server = serde_json::from_str(old).unwrap();
        assert_eq!(s, add("127.0.0.1:1 check inter 1s").map(|f| Server { name: "c".into(), ..f }).unwrap());
    }

    #[test]
    fn haproxy_refusals_and_unknown_keywords() {
        assert_eq!(parse_add("s", &[]).unwrap_err(), "'server' expects <name> and <addr>[:<port>] as arguments.");
        assert_eq!(add("127.0.0.1:x").unwrap_err(), "invalid character 'x' in port number 'x' in '127.0.0.1:x'");
        assert!(add("127.0.0.1").unwrap_err().starts_with("missing port"));
        assert_eq!(add("127.0.0.1:1 bogus").unwrap_err(), "unknown keyword 'bogus'.");
        let f = add("127.0.0.1:1 ssl no-tlsv13 no-tls-tickets verifyhost h.example crl-file c.pem").unwrap();
        assert!(f.no_tlsv13 && f.no_tls_tickets && !f.force_tlsv12);
        assert_eq!((f.verifyhost.as_deref(), f.crl_file.as_deref()), (Some("h.example"), Some("c.pem")));
        assert_eq!(add("127.0.0.1:1 weight 300").unwrap_err(), "weight of server s is not within 0 and 256 (300).");
        assert_eq!(
            add("127.0.0.1:1 init-addr none").unwrap_err(),
            "'init-addr' option is not accepted for dynamic server"
        );
        assert_eq!(
            add("127.0.0.1:1 resolvers r").unwrap_err(),
            "'resolvers' option is not accepted for dynamic server"
        );
        assert_eq!(add("127.0.0.1:1 track be/a").unwrap().track.as_deref(), Some("be/a"));
        assert_eq!(add("127.0.0.1:1 tfo").unwrap_err(), "'tfo' is not supported by lbha on a server.");
        assert_eq!(add("127.0.0.1:1 redir http://x").unwrap_err(), "'redir' option is not accepted for dynamic server");
        assert_eq!(add("127.0.0.1:1 weight").unwrap_err(), "'weight' expects an argument.");
        assert_eq!(add("127.0.0.1:1 weight x").unwrap_err(), "'weight' expects an integer argument, got 'x'.");
        assert_eq!(add("127.0.0.1:1 rise 0").unwrap_err(), "'rise' has to be > 0.");
        assert!(add("127.0.0.1:1 inter soon").unwrap_err().starts_with("'inter': "));
        assert!(add("127.0.0.1:1 sni req.hdr(host)").is_err());
        assert!(add("127.0.0.1:0").is_err());
    }
}
