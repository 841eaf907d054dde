//! `defaults`, `frontend`, `backend` and `listen` sections → lbha's proxy tables.

use super::ast::{Directive, Section};
use super::checks::HttpChk;
use super::keywords::{OPTIONS_TCP_CHECK, OPTIONS_UNSUPPORTED, PROXY_IGNORED, PROXY_UNSUPPORTED};
use super::rules::Rules;
use super::server::{self, ServerParams};
use super::{Cx, src};
use crate::balance::{Algorithm, HashType};
use crate::convert::out::{Src, TableOut};
use crate::convert::report::{Loc, ReportKind};
use toml_edit::Value;

/// Key order in proxy tables, as the README lists them.
pub const ORDER: &[&str] = &[
    "name",
    "id",
    "mode",
    "bind",
    "maxconn",
    "timeout",
    "http_connection_mode",
    "forwardfor",
    "forwardfor_except",
    "forwardfor_header",
    "forwardfor_if_none",
    "retries",
    "redispatch",
    "balance",
    "hash_type",
    "allbackups",
    "abortonclose",
    "clitcpka",
    "srvtcpka",
    "socket_stats",
    "source",
    "rate_limit_sessions",
    "acl",
    "use_backend",
    "default_backend",
    "http_request",
    "http_response",
    "check",
    "servers",
    "cookie",
    "stick_table",
    "stick",
    "appsession",
    "persist",
    "option_persist",
    "persist_rules",
    "use_server",
    "log",
    "log_targets",
    "httplog",
    "tcplog",
    "dontlognull",
    "http_ignore_probes",
    "dontlog_normal",
    "log_separate_errors",
    "log_health_checks",
    "log_format",
    "log_format_sd",
    "capture_request",
    "capture_response",
    "capture_cookie",
    "unique_id_format",
    "unique_id_header",
    "errorfile",
    "errorfiles",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "http_error",
    "stats",
    "compression",
];

/// Keys that only mean something on the backend side: the validator's own list.
use crate::config::validate::BACKEND_ONLY_KEYS as BACKEND_KEYS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl ProxyKind {
    pub fn table(self) -> &'static str {
        match self {
            Self::Defaults => "defaults",
            Self::Frontend => "frontend",
            Self::Backend => "backend",
            Self::Listen => "listen",
        }
    }

    /// lbha's "allowed in" rule for a key (the one `config::validate` applies).
    pub fn lbha_allows(self, key: &str) -> bool {
        const FRONT_ONLY: &[&str] = &[
            "bind",
            "use_backend",
            "maxconn",
            "httplog",
            "tcplog",
            "dontlognull",
            "http_ignore_probes",
            "monitor_uri",
            "monitor_fail",
            "http_buffer_request",
            "expect_proxy",
            "capture_cookie",
            "clitcpka",
            "socket_stats",
            "rate_limit_sessions",
        ];
        match self {
            Self::Listen => true,
            Self::Frontend => key == "stick_table" || !BACKEND_KEYS.contains(&key),
            Self::Backend => !FRONT_ONLY.contains(&key) && key != "default_backend",
            Self::Defaults => ![
                "name",
                "id",
                "acl",
                "http_request",
                "http_response",
                "http_after_response",
                "bind",
                "use_backend",
                "servers",
                "stick_table",
                "stick",
                "appsession",
                "use_server",
                "persist_rules",
                "tcp_request",
                "tcp_response",
                "expect_proxy",
                "capture_cookie",
            ]
            .contains(&key),
        }
    }

    /// Whether HAProxy gives the setting a meaning in this kind of section (it ignores backend
    /// settings in a frontend and frontend settings in a backend, with a warning).
    fn haproxy_allows(self, key: &str) -> bool {
        const FE: &[&str] = &[
            "bind",
            "maxconn",
            "use_backend",
            "default_backend",
            "httplog",
            "tcplog",
            "dontlognull",
            "clitcpka",
            "socket_stats",
            "rate_limit_sessions",
        ];
        match self {
            Self::Frontend => key == "stick_table" || !BACKEND_KEYS.contains(&key),
            Self::Backend => !FE.contains(&key) && key != "http_ignore_probes",
            Self::Defaults => !["bind", "use_backend", "servers", "acl", "id"].contains(&key),
            Self::Listen => true,
        }
    }
}

/// `option external-check` with its command and PATH.
#[derive(Debug, Clone, Default)]
pub struct ExtCheck {
    pub option: Option<Src>,
    pub command: Option<(String, Src)>,
    pub path: Option<(String, Src)>,
}

/// A converted `defaults` section and what proxies inherit from it beyond its table.
#[derive(Debug, Clone)]
pub struct DefaultsInfo {
    pub name: Option<String>,
    pub loc: Loc,
    pub out: TableOut,
    pub servers: ServerParams,
    pub ext: ExtCheck,
}

pub struct ProxyOut {
    pub kind: ProxyKind,
    pub out: TableOut,
    /// Index of the defaults section this proxy uses.
    pub defaults: Option<usize>,
}

pub(super) struct St<'a> {
    pub kind: ProxyKind,
    pub out: TableOut,
    pub defaults: Option<&'a DefaultsInfo>,
    /// `default-server` settings in force for the next `server` line.
    pub servers: ServerParams,
    pub httpchk: Option<HttpChk>,
    /// An `http-check send` was converted (an `option httpchk` after it is reported).
    pub http_send_seen: bool,
    pub ext: ExtCheck,
    pub rules: Rules,
    /// A `filter compression` line came before any `filter cache` (HAProxy then compresses
    /// before the cache stores).
    pub compression_filter_first: bool,
}

impl St<'_> {
    /// Whether `key` may be set here; otherwise `d` is reported and dropped.
    pub fn allowed(&mut self, cx: &mut Cx, d: &Directive, key: &str) -> bool {
        if self.kind.lbha_allows(key) {
            return true;
        }
        let t = self.kind.table();
        if self.kind.haproxy_allows(key) {
            cx.drop(
                &mut self.out,
                d,
                ReportKind::Unsupported,
                format!("lbha does not take `{key}` in a {t} section yet"),
            );
        } else {
            cx.drop(
                &mut self.out,
                d,
                ReportKind::Ignored,
                format!("has no effect in a {t} section (HAProxy ignores it there too)"),
            );
        }
        false
    }

    fn put(&mut self, cx: &mut Cx, d: &Directive, key: &str, v: impl Into<Value>) {
        if self.allowed(cx, d, key) {
            self.out.set(key, v, src(d));
        }
    }

    /// A setting as this proxy sees it: its own, else its defaults'.
    fn inherited(&self, key: &str) -> Option<&Value> {
        self.out.value(key).or_else(|| self.defaults.and_then(|d| d.out.value(key)))
    }
}

/// `frontend NAME from DEFAULTS`: the named defaults section, if any.
pub fn from_name(sec: &Section) -> Option<&str> {
    match sec.extra.as_slice() {
        [from, name, ..] if from == "from" => Some(name.as_str()),
        _ => None,
    }
}

/// A `defaults` section; `parent` is the one it names with `from` (HAProxy 2.6 starts it from
/// that section's settings, then applies its own).
pub fn convert_defaults(sec: &Section, parent: Option<&DefaultsInfo>, cx: &mut Cx) -> DefaultsInfo {
    let mut st = St {
        kind: ProxyKind::Defaults,
        out: TableOut::default(),
        defaults: parent,
        servers: parent.map(|d| d.servers.clone()).unwrap_or_default(),
        httpchk: None,
        http_send_seen: false,
        ext: parent.map(|d| d.ext.clone()).unwrap_or_default(),
        rules: Rules::default(),
        compression_filter_first: false,
    };
    for d in &sec.directives {
        directive(&mut st, d, cx);
    }
    finish(&mut st, cx);
    let mut out = st.out;
    // What it does not set itself it has from its parent; a table (`timeout`, `check`) field by
    // field, as HAProxy keeps each setting.
    if let Some(p) = parent {
        out.inherit(&p.out, &|_| true);
    }
    DefaultsInfo { name: sec.name.clone(), loc: sec.loc.clone(), out, servers: st.servers, ext: st.ext }
}

pub fn convert_proxy(
    sec: &Section,
    kind: ProxyKind,
    defaults: Option<&DefaultsInfo>,
    defaults_index: Option<usize>,
    cx: &mut Cx,
) -> ProxyOut {
    let mut st = St {
        kind,
        out: TableOut::default(),
        defaults,
        servers: defaults.map(|d| d.servers.clone()).unwrap_or_default(),
        httpchk: None,
        http_send_seen: false,
        ext: defaults.map(|d| d.ext.clone()).unwrap_or_default(),
        rules: Rules::default(),
        compression_filter_first: false,
    };
    match &sec.name {
        Some(n) => st.out.set("name", n.as_str(), Src::bare(sec.loc.clone())),
        None => cx.errors.push(crate::convert::report::ConvertError {
            loc: sec.loc.clone(),
            column: None,
            message: format!("{} needs a name", sec.keyword),
        }),
    }
    // HAProxy 1.x `listen NAME ADDR:PORT`.
    if kind == ProxyKind::Listen
        && from_name(sec).is_none()
        && let Some(addr) = sec.extra.first()
    {
        let d = Directive {
            loc: sec.loc.clone(),
            args: vec!["bind".into(), addr.clone()],
            raw: sec.raw.clone(),
            comments: Default::default(),
        };
        bind(&mut st, &d, cx);
    }
    for d in &sec.directives {
        directive(&mut st, d, cx);
    }
    finish(&mut st, cx);
    ProxyOut { kind, out: st.out, defaults: defaults_index }
}

/// lbha takes a proxy's `check` table whole, so a proxy that sets one gets its defaults'
/// check fields too (HAProxy merges them field by field).
pub fn merge_check(p: &mut ProxyOut, d: &DefaultsInfo) {
    if p.out.get("check").is_some() {
        p.out.inherit(&d.out, &|k| k == "check");
    }
}

/// Writes a defaults section's settings into a proxy (when proxies use different defaults).
pub fn inline_defaults(p: &mut ProxyOut, d: &DefaultsInfo) {
    let kind = p.kind;
    let mut from = d.out.clone();
    for e in &mut from.entries {
        for s in &mut e.srcs {
            s.comments.clear();
            s.trailing = None;
        }
    }
    p.out.inherit(&from, &|k| k != "name" && kind.lbha_allows(k));
}

fn directive(st: &mut St, d: &Directive, cx: &mut Cx) {
    let kw = d.keyword();
    if super::errlog::directive(st, d, cx) {
        return;
    }
    match kw {
        "no" | "default" => {
            let mut inner = d.clone();
            inner.args.remove(0);
            if inner.keyword() == "option" {
                option(st, &inner, Some(kw), cx);
            } else if inner.keyword() == "log" && kw == "no" {
                st.out.remove("log_targets");
                st.put(cx, d, "log", "none");
            } else if inner.keyword() == "log" {
                cx.drop(&mut st.out, d, ReportKind::Unsupported, "logging is not implemented in lbha yet");
            } else {
                cx.error(d, format!("`{kw}` applies only to `option` and `log`"));
            }
        }
        "option" => option(st, d, None, cx),
        "log" => match d.arg(1) {
            Some("global") => st.put(cx, d, "log", "global"),
            Some(_) => {
                if let Some(line) = super::global::log_line(d, &mut st.out, cx)
                    && st.allowed(cx, d, "log_targets")
                {
                    st.out.push("log_targets", line, src(d));
                }
            }
            None => cx.error(d, "missing log target"),
        },
        "log-tag" => match d.arg(1) {
            Some(t) => st.put(cx, d, "log_tag", t),
            None => cx.error(d, "`log-tag` needs a tag"),
        },
        "mode" => match d.arg(1) {
            Some(m @ ("http" | "tcp")) => st.put(cx, d, "mode", m),
            Some("health") => cx.drop(&mut st.out, d, ReportKind::Unsupported, "mode health is not implemented"),
            Some(other) => cx.error(d, format!("unknown mode `{other}` (expected http or tcp)")),
            None => cx.error(d, "missing mode"),
        },
        "bind" => bind(st, d, cx),
        "tcp-check" => super::server_side::tcp_check_rule(st, d, cx),
        "retry-on" => super::server_side::retry_on(st, d, cx),
        "http-reuse" | "fullconn" => super::upstream::proxy_directive(st, d, cx),
        "tcp-request" if d.arg(1) == Some("connection") && d.arg(2) == Some("expect-proxy") => {
            super::server_side::expect_proxy(st, d, cx)
        }
        // HAProxy refuses it in defaults (ids are per proxy).
        "id" if st.kind == ProxyKind::Defaults => cx.error(d, "'id' not allowed in 'defaults' section"),
        "id" => match d.arg(1).map(|v| (v, v.parse::<u32>())) {
            Some((_, Ok(n))) if n > 0 => st.put(cx, d, "id", i64::from(n)),
            Some((v, _)) => cx.error(d, format!("`id`: custom id has to be > 0, not `{v}`")),
            None => cx.error(d, "`id` needs a value"),
        },
        "maxconn" => {
            if let Some(n) = cx.num::<u32>(d, 1, "maxconn") {
                st.put(cx, d, "maxconn", i64::from(n));
            }
        }
        "timeout" => timeout(st, d, d.arg(1), d.arg(2), cx),
        "rate-limit" => match d.arg(1) {
            Some("sessions") => {
                if let Some(n) = cx.num::<u32>(d, 2, "rate-limit sessions") {
                    st.put(cx, d, "rate_limit_sessions", i64::from(n));
                }
            }
            _ => cx.error(d, "expected `rate-limit sessions <rate>`"),
        },
        "contimeout" | "clitimeout" | "srvtimeout" => {
            let name = match kw {
                "contimeout" => "connect",
                "clitimeout" => "client",
                _ => "server",
            };
            cx.report(d, ReportKind::Note, format!("deprecated keyword, written as `timeout {name}`"));
            timeout(st, d, Some(name), d.arg(1), cx);
        }
        // `usesrc`/`interface` stay in the text: validation refuses them by name.
        "source" => match d.arg(1) {
            Some(_) => st.put(cx, d, "source", d.args[1..].join(" ").as_str()),
            None => cx.error(d, "`source` needs an address"),
        },
        "retries" => {
            if let Some(n) = cx.num::<u32>(d, 1, "retries") {
                st.put(cx, d, "retries", i64::from(n));
            }
        }
        "redispatch" => {
            cx.report(d, ReportKind::Note, "deprecated keyword, written as `option redispatch`");
            st.put(cx, d, "redispatch", true);
        }
        "balance" => {
            let text = d.args[1..].join(" ");
            match Algorithm::parse(&text) {
                Ok(_) => st.put(cx, d, "balance", text.as_str()),
                Err(e) => cx.drop(&mut st.out, d, ReportKind::Unsupported, e.to_string()),
            }
        }
        "hash-type" => {
            let text = d.args[1..].join(" ");
            match HashType::parse(&text) {
                Ok(_) => st.put(cx, d, "hash_type", text.as_str()),
                Err(e) => cx.error(d, e.to_string()),
            }
        }
        "default_backend" => match d.arg(1).map(super::rules::literal) {
            Some(Some(name)) => st.put(cx, d, "default_backend", name.as_str()),
            Some(None) => cx.drop(
                &mut st.out,
                d,
                ReportKind::Unsupported,
                "dynamic backend names (log-format) are not supported yet",
            ),
            None => cx.error(d, "missing backend name"),
        },
        "acl" => super::rules::acl(st, d, cx),
        "use_backend" => super::rules::use_backend(st, d, cx),
        "compression" => super::compcache::compression(st, d, cx),
        "http-request" => super::rules::http_rule(st, d, super::rules::Phase::Request, cx),
        "http-response" => super::rules::http_rule(st, d, super::rules::Phase::Response, cx),
        "http-after-response" => super::rules::http_rule(st, d, super::rules::Phase::After, cx),
        "tcp-request" => super::tcp::tcp_rule(st, d, false, cx),
        "tcp-response" => super::tcp::tcp_rule(st, d, true, cx),
        "redirect" => super::rules::redirect_kw(st, d, cx),
        "monitor-uri" => match d.arg(1) {
            Some(uri) => st.put(cx, d, "monitor_uri", uri),
            None => cx.error(d, "missing uri"),
        },
        "monitor" => super::rules::monitor(st, d, cx),
        "block" => super::rules::block(st, d, cx),
        "server" => server::server(st, d, cx),
        "server-template" => server::server_template(st, d, cx),
        "cookie" => super::persist::cookie(st, d, cx),
        "dynamic-cookie-key" => match d.arg(1) {
            Some(k) => st.put(cx, d, "dynamic_cookie_key", k),
            None => cx.error(d, "missing key"),
        },
        "stick-table" => super::persist::stick_table(st, d, cx),
        "stick" => super::persist::stick(st, d, cx),
        "appsession" => super::persist::appsession(st, d, cx),
        "use-server" => super::persist::use_server(st, d, cx),
        "persist" => match d.arg(1) {
            Some(m) if m.starts_with("rdp-cookie") && d.arg(2).is_none() => st.put(cx, d, "persist", m),
            Some(m) => cx.drop(&mut st.out, d, ReportKind::Unknown, format!("unknown persistence method `{m}`")),
            None => cx.error(d, "missing persistence method"),
        },
        "force-persist" | "ignore-persist" => super::persist::persist_rule(st, d, cx),
        "default-server" => server::default_server(st, d, cx),
        "stats" => super::checks::stats(st, d, cx),
        "http-check" => super::checks::http_check(st, d, cx),
        "external-check" => match (d.arg(1), d.arg(2)) {
            (Some("command"), Some(c)) => st.ext.command = Some((c.to_string(), src(d))),
            (Some("path"), Some(p)) => st.ext.path = Some((p.to_string(), src(d))),
            _ => cx.error(d, "expected `external-check command <path>` or `external-check path <PATH>`"),
        },
        // lbha's filters are implicit, in HAProxy's implicit order: the cache stores a response
        // as the server sent it, compression comes after.
        "filter" => match (d.arg(1), d.arg(2)) {
            (Some("compression"), None) => {
                st.compression_filter_first = true;
                cx.report(d, ReportKind::Note, "implied: lbha compresses by the `compression` lines, after the cache");
            }
            (Some("cache"), Some(_)) if st.compression_filter_first => cx.report(
                d,
                ReportKind::Approximated,
                "declared after `filter compression`: HAProxy stores compressed responses, lbha stores them as the server sent them and compresses after the cache",
            ),
            (Some("cache"), Some(_)) => {
                cx.report(d, ReportKind::Note, "implied: lbha caches by the `cache-use`/`cache-store` rules")
            }
            _ => cx.drop(&mut st.out, d, ReportKind::Unsupported, "only the cache and compression filters exist in lbha"),
        },
        _ => {
            if let Some((_, why)) = PROXY_IGNORED.iter().find(|(k, _)| *k == kw) {
                cx.drop(&mut st.out, d, ReportKind::Ignored, *why);
            } else if let Some((_, why)) = PROXY_UNSUPPORTED.iter().find(|(k, _)| *k == kw) {
                cx.drop(&mut st.out, d, ReportKind::Unsupported, *why);
            } else {
                cx.drop(&mut st.out, d, ReportKind::Unknown, format!("not a {} keyword lbha knows", st.kind.table()));
            }
        }
    }
}

fn timeout(st: &mut St, d: &Directive, name: Option<&str>, value: Option<&str>, cx: &mut Cx) {
    let key = match name {
        Some("connect") => "connect",
        Some("client") => "client",
        Some("server") => "server",
        Some("http-request") => "http_request",
        Some("http-keep-alive") => "http_keep_alive",
        Some("tunnel") => "tunnel",
        Some("check") => "check",
        Some("queue") => "queue",
        Some("tarpit") => "tarpit",
        Some("client-fin") => "client_fin",
        Some("server-fin") => "server_fin",
        Some(other) => {
            cx.drop(&mut st.out, d, ReportKind::Unknown, format!("unknown timeout `{other}`"));
            return;
        }
        None => {
            cx.error(d, "missing timeout name");
            return;
        }
    };
    if let Some(v) = cx.time(d, value, &format!("timeout {}", name.unwrap_or_default()))
        && st.allowed(cx, d, "timeout")
    {
        st.out.set_in("timeout", key, v, src(d));
    }
}

/// `bind ADDR[,ADDR...] [params]`.
fn bind(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(list) = d.arg(1) else {
        cx.error(d, "missing address");
        return;
    };
    // What lbha takes from a bind line: TLS termination, ALPN, cleartext HTTP/2 and a name.
    let (mut kept, mut name, mut left) = (Vec::new(), None, Vec::new());
    let mut i = 2;
    while let Some(w) = d.arg(i) {
        let v = d.arg(i + 1);
        match (w, v) {
            ("ssl", _) => kept.push("ssl".to_string()),
            ("crt", Some(f)) => kept.push(format!("crt {}", cx.tls_path(w, f))),
            ("alpn", Some(a)) => kept.push(format!("alpn {a}")),
            ("proto", Some("h2")) => kept.push("proto h2".to_string()),
            ("accept-proxy", _) => kept.push("accept-proxy".to_string()),
            ("v4v6" | "v6only", _) => kept.push(w.to_string()),
            ("name", Some(n)) => name = Some(n),
            ("ca-file" | "crl-file" | "crt-list", Some(f)) => kept.push(format!("{w} {}", cx.tls_path(w, f))),
            // TLS policy and client verification: lbha's validation maps them onto rustls.
            ("ciphers" | "ciphersuites" | "curves" | "ecdhe" | "ssl-min-ver" | "ssl-max-ver" | "verify", Some(v)) => {
                kept.push(format!("{w} {v}"))
            }
            (
                "no-sslv3"
                | "no-tlsv10"
                | "no-tlsv11"
                | "no-tlsv12"
                | "no-tlsv13"
                | "force-tlsv12"
                | "force-tlsv13"
                | "no-tls-tickets"
                | "prefer-client-ciphers"
                | "strict-sni"
                | "no-ca-names",
                _,
            ) => {
                kept.push(w.to_string());
                i += 1;
                continue;
            }
            (w, _) => {
                left.push(w.to_string());
                i += 1;
                continue;
            }
        }
        i += if matches!(w, "ssl" | "accept-proxy" | "v4v6" | "v6only") { 1 } else { 2 };
    }
    if !st.allowed(cx, d, "bind") {
        return;
    }
    if !left.is_empty() {
        let msg = format!("bind options `{}` are not supported yet; the address is bound without them", left.join(" "));
        // Without these, clients HAProxy refuses (old TLS versions, weak ciphers, connections
        // beyond the bind's maxconn) get in.
        const LIMITS: &[&str] = &[
            "maxconn",
            "ssl-min-ver",
            "no-sslv3",
            "no-tlsv10",
            "no-tlsv11",
            "no-tlsv12",
            "force-tlsv12",
            "force-tlsv13",
            "ciphers",
            "ciphersuites",
            "curves",
            "ecdhe",
            "strict-sni",
            "ca-file",
            "crl-file",
        ];
        let kind = if left.iter().any(|w| LIMITS.contains(&w.as_str())) {
            ReportKind::Weakens
        } else {
            ReportKind::Unsupported
        };
        cx.report(d, kind, msg);
    }
    for a in list.split(',') {
        match server::bind_addr(a) {
            Ok(addrs) => {
                for s in addrs {
                    let line = std::iter::once(s).chain(kept.iter().cloned()).collect::<Vec<_>>().join(" ");
                    let value: Value = match name {
                        Some(n) => {
                            let mut t = toml_edit::InlineTable::new();
                            t.insert("name", n.into());
                            t.insert("addr", line.into());
                            Value::InlineTable(t)
                        }
                        None => line.into(),
                    };
                    st.out.push("bind", value, src(d));
                }
            }
            Err(server::AddrError::Unsupported(m)) => {
                cx.drop(&mut st.out, d, ReportKind::Unsupported, format!("`{a}`: {m}"))
            }
            Err(server::AddrError::Bad(m)) => cx.error(d, format!("`{a}`: {m}")),
        }
    }
}

fn option(st: &mut St, d: &Directive, prefix: Option<&str>, cx: &mut Cx) {
    let Some(name) = d.arg(1) else {
        cx.error(d, "missing option name");
        return;
    };
    let mode = match name {
        "httpclose" | "forceclose" => Some("httpclose"),
        "http-server-close" => Some("http-server-close"),
        "http-keep-alive" => Some("http-keep-alive"),
        _ => None,
    };
    if let Some(m) = mode {
        if name == "forceclose" {
            cx.report(d, ReportKind::Note, "deprecated option, written as `option httpclose`");
        }
        match prefix {
            None => st.put(cx, d, "http_connection_mode", m),
            Some("default") => {
                st.out.remove("http_connection_mode");
            }
            _ => {
                let current = st.inherited("http_connection_mode").and_then(Value::as_str);
                if current == Some(m) || (current.is_none() && m == "http-keep-alive") {
                    if m == "http-keep-alive" {
                        cx.report(d, ReportKind::Approximated, "lbha has no tunnel mode; connections stay keep-alive");
                    }
                    st.put(cx, d, "http_connection_mode", "http-keep-alive");
                }
            }
        }
        return;
    }
    let flag = |st: &mut St, cx: &mut Cx, key: &str| match prefix {
        None => st.put(cx, d, key, true),
        Some("no") => st.put(cx, d, key, false),
        _ => {
            st.out.remove(key);
        }
    };
    match name {
        "forwardfor" => {
            flag(st, cx, "forwardfor");
            // The options belong to the line: a section's own `option forwardfor` replaces the
            // whole of what it had before.
            for key in ["forwardfor_except", "forwardfor_header", "forwardfor_if_none"] {
                st.out.remove(key);
            }
            if prefix.is_some() {
                return;
            }
            let mut i = 2;
            while let Some(w) = d.arg(i) {
                match (w, d.arg(i + 1)) {
                    ("except", Some(net)) => st.put(cx, d, "forwardfor_except", net),
                    ("header", Some(name)) => st.put(cx, d, "forwardfor_header", name),
                    ("if-none", _) => st.put(cx, d, "forwardfor_if_none", true),
                    _ => {
                        // HAProxy refuses the line too.
                        cx.error(
                            d,
                            format!("`option forwardfor` takes `except NET`, `header NAME` and `if-none`, not `{w}`"),
                        );
                        return;
                    }
                }
                i += if w == "if-none" { 1 } else { 2 };
            }
        }
        "redispatch" => {
            if d.args.len() > 2 {
                cx.report(
                    d,
                    ReportKind::Approximated,
                    "the redispatch interval is not supported; lbha redispatches on the last retry",
                );
            }
            flag(st, cx, "redispatch");
        }
        "persist" => flag(st, cx, "option_persist"),
        "allbackups" => flag(st, cx, "allbackups"),
        "abortonclose" => flag(st, cx, "abortonclose"),
        "clitcpka" | "srvtcpka" => flag(st, cx, name),
        "socket-stats" => flag(st, cx, "socket_stats"),
        // Both sides, each where the section has it (a frontend has no server side).
        "tcpka" => {
            for key in ["clitcpka", "srvtcpka"] {
                if st.kind.lbha_allows(key) {
                    flag(st, cx, key);
                }
            }
        }
        "http-buffer-request" => flag(st, cx, "http_buffer_request"),
        "http-ignore-probes" => flag(st, cx, "http_ignore_probes"),
        "httplog" if prefix.is_none() && d.args.last().is_some_and(|a| a == "clf") => st.put(cx, d, "httplog", "clf"),
        "httplog" | "tcplog" | "dontlognull" => flag(st, cx, name),
        "dontlog-normal" | "log-separate-errors" | "log-health-checks" => flag(st, cx, &name.replace('-', "_")),
        "httpslog" => {
            cx.report(d, ReportKind::Approximated, "written as `option httplog`: lbha's lines have no TLS fields");
            flag(st, cx, "httplog");
        }
        "httpchk" => {
            if prefix.is_some() {
                st.httpchk = None;
                st.out.remove_in("check", "http");
                st.out.remove_in("check", "headers");
                return;
            }
            let a = &d.args[2..];
            let (method, uri, version) = match a {
                [] => (None, None, None),
                [u] => (None, Some(u.clone()), None),
                [m, u] => (Some(m.clone()), Some(u.clone()), None),
                [m, u, v] => (Some(m.clone()), Some(u.clone()), Some(v.clone())),
                _ => {
                    cx.error(d, "too many arguments (expected [<method>] <uri> [<version>])");
                    return;
                }
            };
            if st.http_send_seen {
                cx.report(
                    d,
                    ReportKind::Approximated,
                    "`option httpchk` after `http-check send`: HAProxy lets the option's method, URI, version and headers override the send rule's; lbha's `http_check` send overrides the option's. Put `option httpchk` first in HAProxy to keep the same check",
                );
            }
            st.httpchk = Some(HttpChk { method, uri, version, srcs: vec![src(d)] });
        }
        "external-check" => match prefix {
            None => st.ext.option = Some(src(d)),
            _ => st.ext.option = None,
        },
        "http-use-htx" => {
            cx.drop(&mut st.out, d, ReportKind::Ignored, "HAProxy 2.x always uses HTX; no meaning for lbha")
        }
        n if OPTIONS_TCP_CHECK.contains(&n) => super::server_side::check_option(st, d, prefix, cx),
        n => match OPTIONS_UNSUPPORTED.iter().find(|(k, _)| *k == n) {
            Some((_, why)) => cx.drop(&mut st.out, d, ReportKind::Unsupported, *why),
            None => cx.drop(&mut st.out, d, ReportKind::Unknown, format!("unknown option `{n}`")),
        },
    }
}

fn finish(st: &mut St, cx: &mut Cx) {
    super::checks::finish(st, cx);
    super::persist::finish(st, cx);
    super::rules::finish(st);
}
