//! `server`, `default-server` and address syntax (`bind` and `server` addresses).

use super::ast::Directive;
use super::keywords::SERVER_UNSUPPORTED;
use super::proxy::St;
use super::{Cx, src};
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

/// Field order of a server's inline table (`config::model::Server`).
const FIELDS: &[&str] = &[
    "weight",
    "backup",
    "disabled",
    "maxconn",
    "check",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "check_addr",
    "check_port",
    "cookie",
    "slowstart",
    "on_marked_down",
    "on_marked_up",
    "observe",
    "error_limit",
    "on_error",
    "ssl",
    "verify",
    "ca_file",
    "sni",
    "crt",
    "alpn",
    "ciphers",
    "ciphersuites",
    "ssl_min_ver",
    "ssl_max_ver",
    "no_sslv3",
    "no_tlsv10",
    "no_tlsv11",
    "no_tlsv12",
    "no_tlsv13",
    "force_sslv3",
    "force_tlsv10",
    "force_tlsv11",
    "force_tlsv12",
    "force_tlsv13",
    "no_tls_tickets",
    "verifyhost",
    "crl_file",
    "send_proxy",
    "send_proxy_v2",
    "proxy_v2_options",
    "check_send_proxy",
    "check_ssl",
    "check_sni",
    "check_alpn",
    "agent_check",
    "agent_port",
    "agent_addr",
    "agent_inter",
    "agent_send",
    "init_addr",
    "resolvers",
    "resolve_prefer",
    "resolve_net",
    "resolve_opts",
    "proto",
    "pool_max_conn",
    "max_reuse",
    "pool_purge_delay",
    "maxqueue",
    "minconn",
    "track",
    "id",
    "redir",
    "source",
];

/// TLS version words of a server line and their lbha keys (booleans).
const VERSION_WORDS: &[(&str, &str)] = &[
    ("no-sslv3", "no_sslv3"),
    ("no-tlsv10", "no_tlsv10"),
    ("no-tlsv11", "no_tlsv11"),
    ("no-tlsv12", "no_tlsv12"),
    ("no-tlsv13", "no_tlsv13"),
    ("force-sslv3", "force_sslv3"),
    ("force-tlsv10", "force_tlsv10"),
    ("force-tlsv11", "force_tlsv11"),
    ("force-tlsv12", "force_tlsv12"),
    ("force-tlsv13", "force_tlsv13"),
    ("no-tls-tickets", "no_tls_tickets"),
];

/// Settings that only matter to a server with `check` (`rise` and `fall` are kept: HAProxy
/// starts the check counter at `rise` with or without checks, and shows it).
const CHECK_ONLY: &[&str] = &[
    "inter",
    "fastinter",
    "downinter",
    "check_addr",
    "check_port",
    "on_marked_down",
    "observe",
    "error_limit",
    "on_error",
    "check_ssl",
    "check_sni",
    "check_alpn",
];

/// Server settings from `default-server` lines and a server's own parameters.
#[derive(Debug, Clone, Default)]
pub struct ServerParams {
    fields: Vec<(&'static str, Value)>,
}

impl ServerParams {
    fn set(&mut self, key: &'static str, v: impl Into<Value>) {
        let v = v.into();
        match self.fields.iter_mut().find(|f| f.0 == key) {
            Some(f) => f.1 = v,
            None => self.fields.push((key, v)),
        }
    }
}

/// What a list of parameters held that lbha cannot take.
#[derive(Default)]
struct Leftovers {
    unsupported: Vec<String>,
    unknown: Vec<String>,
}

fn params(d: &Directive, start: usize, p: &mut ServerParams, cx: &mut Cx) -> Leftovers {
    let mut left = Leftovers::default();
    let mut i = start;
    while let Some(w) = d.arg(i) {
        i += 1;
        let value = d.arg(i);
        let mut took_value = true;
        match w {
            "check" => {
                p.set("check", true);
                took_value = false;
            }
            "no-check" => {
                p.set("check", false);
                took_value = false;
            }
            "backup" | "no-backup" => {
                p.set("backup", w == "backup");
                took_value = false;
            }
            "disabled" | "enabled" => {
                p.set("disabled", w == "disabled");
                took_value = false;
            }
            "weight" | "maxconn" | "rise" | "fall" => {
                if let Some(n) = value.and_then(|v| cx.parse_num::<u32>(d, v, w)) {
                    let key = match w {
                        "weight" => "weight",
                        "maxconn" => "maxconn",
                        "rise" => "rise",
                        _ => "fall",
                    };
                    p.set(key, i64::from(n));
                } else if value.is_none() {
                    cx.error(d, format!("`{w}` needs a value"));
                }
            }
            "port" => {
                if let Some(n) = value.and_then(|v| cx.parse_num::<u16>(d, v, w)) {
                    p.set("check_port", i64::from(n));
                } else if value.is_none() {
                    cx.error(d, "`port` needs a value");
                }
            }
            "inter" | "fastinter" | "downinter" => {
                if let Some(t) = cx.time(d, value, w) {
                    let key = match w {
                        "inter" => "inter",
                        "fastinter" => "fastinter",
                        _ => "downinter",
                    };
                    p.set(key, t);
                }
            }
            "cookie" => match value {
                Some(v) => p.set("cookie", v),
                None => cx.error(d, "`cookie` needs a value"),
            },
            // Keywords that take one value and keep their name, with `_` for `-`.
            "resolvers" | "resolve-prefer" | "resolve-net" | "check-sni" | "check-alpn" | "alpn" => match value {
                Some(v) => p.set(
                    match w {
                        "resolvers" => "resolvers",
                        "resolve-prefer" => "resolve_prefer",
                        "resolve-net" => "resolve_net",
                        "check-sni" => "check_sni",
                        "check-alpn" => "check_alpn",
                        _ => "alpn",
                    },
                    v,
                ),
                None => cx.error(d, format!("`{w}` needs a value")),
            },
            "init-addr" => match value {
                Some(v) => p.set("init_addr", v),
                None => cx.error(d, "`init-addr` needs a value"),
            },
            "slowstart" => {
                if let Some(t) = cx.time(d, value, w) {
                    p.set("slowstart", t);
                }
            }
            "track" => match value {
                Some(v) => p.set("track", v),
                None => cx.error(d, "`track` needs [<backend>/]<server>"),
            },
            "on-marked-down" => match value {
                Some("shutdown-sessions") => p.set("on_marked_down", "shutdown-sessions"),
                Some(v) => left.unsupported.push(format!("on-marked-down {v}")),
                None => cx.error(d, "`on-marked-down` needs a value"),
            },
            "on-marked-up" => match value {
                Some(v @ "shutdown-backup-sessions") => p.set("on_marked_up", v),
                Some(v) => cx.error(d, format!("`on-marked-up` expects `shutdown-backup-sessions`, not `{v}`")),
                None => cx.error(d, "`on-marked-up` needs a value"),
            },
            "observe" => match value {
                Some(v @ ("none" | "layer4" | "layer7")) => p.set("observe", v),
                Some(v) => cx.error(d, format!("`observe` expects none, layer4 or layer7, not `{v}`")),
                None => cx.error(d, "`observe` needs a value"),
            },
            "on-error" => match value {
                Some(v @ ("fastinter" | "fail-check" | "sudden-death" | "mark-down")) => p.set("on_error", v),
                Some(v) => cx.error(
                    d,
                    format!("`on-error` expects fastinter, fail-check, sudden-death or mark-down, not `{v}`"),
                ),
                None => cx.error(d, "`on-error` needs a value"),
            },
            // `usesrc`/`interface` and their value stay with the address: validation refuses
            // them by name rather than the server silently losing them.
            "source" => match value {
                Some(v) => match d.arg(i + 1) {
                    Some(w @ ("usesrc" | "interface")) => {
                        p.set("source", format!("{v} {w} {}", d.arg(i + 2).unwrap_or("")).trim_end());
                        i += 2;
                    }
                    _ => p.set("source", v),
                },
                None => cx.error(d, "`source` needs an address"),
            },
            "redir" => match value {
                Some(v) => p.set("redir", v),
                None => cx.error(d, "`redir` needs a prefix"),
            },
            "id" => match value.map(|v| (v, v.parse::<u32>())) {
                Some((_, Ok(n))) if n > 0 => p.set("id", i64::from(n)),
                Some((v, _)) => cx.error(d, format!("`id`: custom id has to be > 0, not `{v}`")),
                None => cx.error(d, "`id` needs a value"),
            },
            "error-limit" => match value.map(|v| (v, v.parse::<u32>())) {
                Some((_, Ok(n))) if n > 0 => p.set("error_limit", i64::from(n)),
                Some((v, _)) => cx.error(d, format!("`error-limit` has to be > 0, not `{v}`")),
                None => cx.error(d, "`error-limit` needs a value"),
            },
            "ssl" | "no-ssl" => {
                p.set("ssl", w == "ssl");
                took_value = false;
            }
            "verify" => match value {
                Some(v @ ("none" | "required")) => p.set("verify", v),
                Some(v) => cx.error(d, format!("`verify` takes none or required, not `{v}`")),
                None => cx.error(d, "`verify` needs a value"),
            },
            "ca-file" => match value {
                Some(f) => p.set("ca_file", cx.tls_path(w, f)),
                None => cx.error(d, "`ca-file` needs a value"),
            },
            "crt" => match value {
                Some(f) => p.set("crt", cx.tls_path(w, f)),
                None => cx.error(d, "`crt` needs a value"),
            },
            "crl-file" => match value {
                Some(f) => p.set("crl_file", cx.tls_path(w, f)),
                None => cx.error(d, "`crl-file` needs a value"),
            },
            "verifyhost" => match value {
                Some(h) => p.set("verifyhost", h),
                None => cx.error(d, "`verifyhost` needs a value"),
            },
            _ if VERSION_WORDS.iter().any(|(word, _)| *word == w) => {
                if let Some((_, key)) = VERSION_WORDS.iter().find(|(word, _)| *word == w) {
                    p.set(key, true);
                }
                took_value = false;
            }
            "ciphers" | "ciphersuites" | "ssl-min-ver" | "ssl-max-ver" => match value {
                Some(v) => p.set(
                    match w {
                        "ciphers" => "ciphers",
                        "ciphersuites" => "ciphersuites",
                        "ssl-min-ver" => "ssl_min_ver",
                        _ => "ssl_max_ver",
                    },
                    v,
                ),
                None => cx.error(d, format!("`{w}` needs a value")),
            },
            // HAProxy's `sni` is an expression: a constant `str(NAME)` becomes the name, anything
            // else stays an expression, evaluated per request.
            "sni" => match value {
                Some(v) => p.set("sni", v.strip_prefix("str(").and_then(|n| n.strip_suffix(')')).unwrap_or(v)),
                None => cx.error(d, "`sni` needs a value"),
            },
            "check-ssl" | "no-check-ssl" => {
                p.set("check_ssl", w == "check-ssl");
                took_value = false;
            }
            "agent-check" | "no-agent-check" => {
                p.set("agent_check", w == "agent-check");
                took_value = false;
            }
            "agent-port" => match value.and_then(|v| cx.parse_num::<u16>(d, v, w)) {
                Some(n) => p.set("agent_port", i64::from(n)),
                None if value.is_none() => cx.error(d, "`agent-port` needs a value"),
                None => {}
            },
            "agent-inter" => {
                if let Some(t) = cx.time(d, value, w) {
                    p.set("agent_inter", t);
                }
            }
            "agent-addr" => match value {
                Some(a) => p.set("agent_addr", a),
                None => cx.error(d, "`agent-addr` needs a value"),
            },
            "agent-send" => match value {
                Some(v) => p.set("agent_send", super::server_side::escape_text(v)),
                None => cx.error(d, "`agent-send` needs a value"),
            },
            "proto" | "pool-max-conn" | "pool-purge-delay" | "max-reuse" | "maxqueue" | "minconn" => {
                took_value = super::upstream::server_param(w, value, |k, v| p.set(k, v), cx, d);
            }
            "send-proxy" | "send-proxy-v2" | "send-proxy-v2-ssl" | "check-send-proxy" | "proxy-v2-options" => {
                took_value = super::server_side::proxy_param(w, value, |k, v| p.set(k, v), cx, d);
            }
            // lbha never gives two servers sharing a name the same address (HAProxy's default
            // `prevent-dup-ip`); `ignore-weight` keeps SRV weights off the server's weight.
            "resolve-opts" => match value {
                Some(v) if v.split(',').all(|o| o == "prevent-dup-ip" || o == "ignore-weight") => {
                    if v.split(',').any(|o| o == "ignore-weight") {
                        p.set("resolve_opts", "ignore-weight");
                    }
                }
                Some(v) => left.unsupported.push(format!("resolve-opts {v}")),
                None => cx.error(d, "`resolve-opts` needs a value"),
            },
            "addr" => match value {
                Some(a) => p.set("check_addr", a),
                None => cx.error(d, "`addr` needs a value"),
            },
            _ => {
                let known = SERVER_UNSUPPORTED.iter().find(|(k, _)| *k == w || (w.starts_with("no-") && *k == &w[3..]));
                match known {
                    Some((_, takes)) => {
                        took_value = *takes && !w.starts_with("no-");
                        left.unsupported.push(match (took_value, value) {
                            (true, Some(v)) => format!("{w} {v}"),
                            _ => w.to_string(),
                        });
                    }
                    None => {
                        took_value = false;
                        left.unknown.push(w.to_string());
                    }
                }
            }
        }
        if took_value {
            i += 1;
        }
    }
    left
}

fn report_leftovers(d: &Directive, left: &Leftovers, what: &str, cx: &mut Cx) {
    if !left.unsupported.is_empty() {
        cx.report(
            d,
            ReportKind::Unsupported,
            format!(
                "{what} parameter(s) `{}` not supported yet by lbha; converted without them",
                left.unsupported.join(" ")
            ),
        );
    }
    if !left.unknown.is_empty() {
        cx.report(
            d,
            ReportKind::Unknown,
            format!("unknown {what} parameter(s) `{}`; converted without them", left.unknown.join(" ")),
        );
    }
}

pub(super) fn default_server(st: &mut St, d: &Directive, cx: &mut Cx) {
    if st.kind != super::proxy::ProxyKind::Defaults && !st.allowed(cx, d, "servers") {
        return;
    }
    let left = params(d, 1, &mut st.servers, cx);
    report_leftovers(d, &left, "default-server", cx);
}

pub(super) fn server(st: &mut St, d: &Directive, cx: &mut Cx) {
    let (Some(name), Some(addr)) = (d.arg(1), d.arg(2)) else {
        cx.error(d, "expected `server <name> <address>[:port] [params]`");
        return;
    };
    entry(st, d, name, addr, 3, None, cx);
}

/// `server-template <prefix> <num>|1-<num> <fqdn>:<port> [params]`: one entry with `template`.
pub(super) fn server_template(st: &mut St, d: &Directive, cx: &mut Cx) {
    let (Some(name), Some(n), Some(addr)) = (d.arg(1), d.arg(2), d.arg(3)) else {
        cx.error(d, "expected `server-template <prefix> <num> <fqdn>[:port] [params]`");
        return;
    };
    let count = match n.split_once('-') {
        None => n.parse::<i64>().ok(),
        Some(("1", hi)) => hi.parse::<i64>().ok(),
        Some(_) => {
            cx.error(d, "a server-template range must start at 1 (lbha names the servers <prefix>1..<prefix>N)");
            return;
        }
    };
    match count {
        Some(c) if c >= 1 => entry(st, d, name, addr, 4, Some(c), cx),
        _ => cx.error(d, format!("`{n}` is not a number of servers")),
    }
}

fn entry(st: &mut St, d: &Directive, name: &str, addr: &str, start: usize, template: Option<i64>, cx: &mut Cx) {
    if !st.allowed(cx, d, "servers") {
        return;
    }
    let addr = match server_addr(addr) {
        Ok(a) => a,
        Err(AddrError::Unsupported(m)) => {
            cx.drop(&mut st.out, d, ReportKind::Unsupported, format!("{m}; the server is dropped"));
            return;
        }
        Err(AddrError::Bad(m)) => {
            cx.error(d, m);
            return;
        }
    };
    let mut p = st.servers.clone();
    let mut own = ServerParams::default();
    let left = params(d, start, &mut own, cx);
    report_leftovers(d, &left, "server", cx);
    for (k, v) in own.fields.iter().cloned() {
        p.set(k, v);
    }
    // Check settings mean nothing without `check` (HAProxy accepts and ignores them; lbha's
    // schema rejects them), so they are left out, and said so when the line itself had them.
    if !p.fields.iter().any(|f| f.0 == "check" && f.1.as_bool() == Some(true)) {
        let useless: Vec<&str> = own.fields.iter().map(|f| f.0).filter(|k| CHECK_ONLY.contains(k)).collect();
        if !useless.is_empty() {
            cx.report(
                d,
                ReportKind::Note,
                format!("`{}` has no effect without `check` (in HAProxy too); left out", useless.join("`, `")),
            );
        }
        p.fields.retain(|f| !CHECK_ONLY.contains(&f.0) && f.0 != "check");
    }
    let mut t = InlineTable::new();
    t.insert("name", name.into());
    t.insert("addr", addr.into());
    if let Some(n) = template {
        t.insert("template", n.into());
    }
    for key in FIELDS {
        if let Some((_, v)) = p.fields.iter().find(|f| f.0 == *key) {
            t.insert(*key, v.clone());
        }
    }
    st.out.push("servers", Value::InlineTable(t), src(d));
}

#[derive(Debug, PartialEq, Eq)]
pub enum AddrError {
    /// Valid for HAProxy, not expressible in lbha.
    Unsupported(String),
    /// Not a valid address.
    Bad(String),
}

const SOCKET_PREFIXES: &[&str] =
    &["unix@", "abns@", "abnsz@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "quic4@", "quic6@", "uxst@", "uxdg@"];

/// Splits `HOST:PORT` (HAProxy also writes IPv6 without brackets: the last `:` starts the port).
fn split_host_port(s: &str) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.to_string(), port));
    }
    let (host, port) = s.rsplit_once(':')?;
    Some((host.to_string(), port))
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn strip_family(s: &str) -> Result<&str, AddrError> {
    if s.starts_with('/') || SOCKET_PREFIXES.iter().any(|p| s.starts_with(p)) {
        return Err(AddrError::Unsupported(
            "UNIX sockets, inherited fds and UDP/QUIC addresses are not supported yet".into(),
        ));
    }
    Ok(["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"].iter().find_map(|p| s.strip_prefix(p)).unwrap_or(s))
}

/// A server address as lbha's `addr` (`HOST:PORT`, `[V6]:PORT`).
pub fn server_addr(s: &str) -> Result<String, AddrError> {
    let s = strip_family(s)?;
    if s.starts_with('_') {
        // An SRV name: the records give the ports (a port written after it is ignored).
        return Ok(s.split(':').next().unwrap_or(s).to_string());
    }
    let Some((host, port)) = split_host_port(s) else {
        return Err(AddrError::Unsupported(
            "a server without a port (HAProxy reuses the client's destination port) is not supported".into(),
        ));
    };
    if host.is_empty() || host == "*" {
        return Err(AddrError::Bad(format!("missing server address in `{s}`")));
    }
    if port.starts_with(['+', '-']) || port.contains('-') {
        return Err(AddrError::Unsupported("port offsets and ranges on servers are not supported".into()));
    }
    if port.is_empty() {
        return Err(AddrError::Unsupported(
            "a server without a port (HAProxy reuses the client's destination port) is not supported".into(),
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => Ok(join(&host, p)),
        _ => Err(AddrError::Bad(format!("bad port `{port}`"))),
    }
}

/// Largest port range a bind may expand into.
const MAX_RANGE: u32 = 100;

/// One `bind` address (`:80`, `*:80`, `0.0.0.0:80`, `[::]:80`, `:::80`, `10.0.0.1:8080-8081`).
pub fn bind_addr(s: &str) -> Result<Vec<String>, AddrError> {
    let s = strip_family(s.trim())?;
    let Some((host, port)) = split_host_port(s) else {
        return Err(AddrError::Bad(format!("expected ADDRESS:PORT, got `{s}`")));
    };
    let num = |p: &str| match p.parse::<u16>() {
        Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(AddrError::Bad(format!("bad port `{p}`"))),
    };
    let (lo, hi) = match port.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(port)?;
            (p, p)
        }
    };
    if hi < lo || u32::from(hi - lo) >= MAX_RANGE {
        return Err(AddrError::Unsupported(format!(
            "port range {lo}-{hi} is not supported (at most {MAX_RANGE} ports)"
        )));
    }
    let host = if host.is_empty() { "*" } else { host.as_str() };
    Ok((lo..=hi).map(|p| if host == "*" { format!("*:{p}") } else { join(host, p) }).collect())
}
