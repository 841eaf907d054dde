//! Runtime servers through the Data Plane API (`POST`/`DELETE .../runtime/servers`, and address
//! changes on `PUT`): the same commands as the control socket's `add server`, `del server` and
//! `set server ... addr`, run by the daemon the same way, so they survive a reload too.

use super::error::{ApiError, ApiResult};
use super::json::{self, Toggle};
use crate::control::ServerRef;
use crate::control::servers_rt::RtCommand;
use serde::Deserialize;

/// The original's `runtime_add_server` (v2.8), the fields lbha honours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddServer {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub weight: Option<u32>,
    pub check: Option<Toggle>,
    pub backup: Option<Toggle>,
    pub maxconn: Option<u32>,
    pub ssl: Option<Toggle>,
    pub verify: Option<String>,
    pub inter: Option<u64>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub cookie: Option<String>,
}

/// Fields of `runtime_add_server` lbha has no runtime setting for (`id` is read-only there).
const HAPROXY_ONLY: &[&str] = &[
    "id",
    "allow_0rtt",
    "check_proto",
    "check_via_socks4",
    "npn",
    "pool_low_conn",
    "send_proxy_v2_ssl_cn",
    "ssl_reuse",
    "tfo",
    "ws",
];

/// How a `runtime_add_server` field becomes `add server` words.
#[derive(Clone, Copy)]
enum Word {
    /// `enabled`/`disabled`: the first word or the second (none: nothing to say).
    Toggle(&'static str, Option<&'static str>),
    /// A string: the keyword and the value.
    Text(&'static str),
    /// An integer (durations in milliseconds): the keyword and the number.
    Int(&'static str),
    /// One of a few words: the keyword and the value.
    Enum(&'static str, &'static [&'static str]),
    /// A list of strings: the keyword and the values joined by commas.
    List(&'static str),
}

/// The other fields of the original's `runtime_add_server` (v2.8) and their `add server` words,
/// so the API takes every keyword the control socket does.
const WORDS: &[(&str, Word)] = &[
    ("agent-addr", Word::Text("agent-addr")),
    ("agent-check", Word::Toggle("agent-check", Some("no-agent-check"))),
    ("agent-inter", Word::Int("agent-inter")),
    ("agent-port", Word::Int("agent-port")),
    ("agent-send", Word::Text("agent-send")),
    ("alpn", Word::Text("alpn")),
    ("check-send-proxy", Word::Toggle("check-send-proxy", None)),
    ("check-sni", Word::Text("check-sni")),
    ("check-ssl", Word::Toggle("check-ssl", Some("no-check-ssl"))),
    ("check_alpn", Word::Text("check-alpn")),
    ("ciphers", Word::Text("ciphers")),
    ("ciphersuites", Word::Text("ciphersuites")),
    ("crl_file", Word::Text("crl-file")),
    ("downinter", Word::Int("downinter")),
    ("error_limit", Word::Int("error-limit")),
    ("fastinter", Word::Int("fastinter")),
    ("force_sslv3", Word::Toggle("force-sslv3", None)),
    ("force_tlsv10", Word::Toggle("force-tlsv10", None)),
    ("force_tlsv11", Word::Toggle("force-tlsv11", None)),
    ("force_tlsv12", Word::Toggle("force-tlsv12", None)),
    ("force_tlsv13", Word::Toggle("force-tlsv13", None)),
    ("health_check_address", Word::Text("addr")),
    ("health_check_port", Word::Int("port")),
    ("maintenance", Word::Toggle("disabled", Some("enabled"))),
    ("maxqueue", Word::Int("maxqueue")),
    ("max_reuse", Word::Int("max-reuse")),
    ("minconn", Word::Int("minconn")),
    ("no_sslv3", Word::Toggle("no-sslv3", None)),
    ("no_tlsv10", Word::Toggle("no-tlsv10", None)),
    ("no_tlsv11", Word::Toggle("no-tlsv11", None)),
    ("no_tlsv12", Word::Toggle("no-tlsv12", None)),
    ("no_tlsv13", Word::Toggle("no-tlsv13", None)),
    ("observe", Word::Enum("observe", &["layer4", "layer7"])),
    ("on-error", Word::Enum("on-error", &["fastinter", "fail-check", "sudden-death", "mark-down"])),
    ("on-marked-down", Word::Enum("on-marked-down", &["shutdown-sessions"])),
    ("on-marked-up", Word::Enum("on-marked-up", &["shutdown-backup-sessions"])),
    ("pool_max_conn", Word::Int("pool-max-conn")),
    ("pool_purge_delay", Word::Int("pool-purge-delay")),
    ("proto", Word::Text("proto")),
    ("proxy-v2-options", Word::List("proxy-v2-options")),
    ("send-proxy", Word::Toggle("send-proxy", Some("no-send-proxy"))),
    ("send-proxy-v2", Word::Toggle("send-proxy-v2", Some("no-send-proxy-v2"))),
    ("send_proxy_v2_ssl", Word::Toggle("send-proxy-v2-ssl", None)),
    ("slowstart", Word::Int("slowstart")),
    ("sni", Word::Text("sni")),
    ("source", Word::Text("source")),
    ("ssl_cafile", Word::Text("ca-file")),
    ("ssl_certificate", Word::Text("crt")),
    ("ssl_max_ver", Word::Enum("ssl-max-ver", &["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"])),
    ("ssl_min_ver", Word::Enum("ssl-min-ver", &["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"])),
    ("tls_tickets", Word::Toggle("", Some("no-tls-tickets"))),
    ("track", Word::Text("track")),
    ("verifyhost", Word::Text("verifyhost")),
];

/// The words of the [`WORDS`] fields of `body` (taken out of it), checked as the original's
/// schema checks them.
fn more_words(body: &mut serde_json::Map<String, serde_json::Value>) -> ApiResult<Vec<String>> {
    use serde_json::Value as J;
    let mut w = Vec::new();
    for (field, how) in WORDS {
        let Some(v) = body.remove(*field) else { continue };
        if v.is_null() {
            continue;
        }
        let enum_err = |allowed: &[&str]| ApiError::Schema {
            code: 606,
            message: format!("{field} in body should be one of [{}]", allowed.join(" ")),
        };
        let text = |v: &J| -> ApiResult<String> {
            let s = v.as_str().ok_or_else(|| ApiError::BadRequest(format!("{field}: expected a string")))?;
            json::check_no_space(field, s)?;
            Ok(s.to_string())
        };
        match *how {
            Word::Toggle(on, off) => {
                let word = match v.as_str() {
                    Some("enabled") => Some(on),
                    Some("disabled") => off,
                    _ => return Err(enum_err(&["enabled", "disabled"])),
                };
                w.extend(word.filter(|x| !x.is_empty()).map(str::to_string));
            }
            Word::Text(kw) => w.extend([kw.to_string(), text(&v)?]),
            Word::Int(kw) => {
                let n = v.as_i64().ok_or_else(|| ApiError::BadRequest(format!("{field}: expected an integer")))?;
                w.extend([kw.to_string(), n.to_string()]);
            }
            Word::Enum(kw, allowed) => {
                let s = v.as_str().filter(|s| allowed.contains(s)).ok_or_else(|| enum_err(allowed))?;
                w.extend([kw.to_string(), s.to_string()]);
            }
            Word::List(kw) => {
                let items = v
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<ApiResult<Vec<_>>>())
                    .transpose()?
                    .ok_or_else(|| ApiError::BadRequest(format!("{field}: expected a list of strings")))?;
                w.extend([kw.to_string(), items.join(",")]);
            }
        }
    }
    Ok(w)
}

/// The `add server` words for a request body.
pub fn add_words(a: &AddServer) -> ApiResult<Vec<String>> {
    json::check_name("name", &a.name)?;
    let ip: std::net::IpAddr = a.address.parse().map_err(|_| ApiError::Schema {
        code: 605,
        message: format!("address: an IP address is required, got {:?}", a.address),
    })?;
    let port = a.port.ok_or_else(|| ApiError::required("port", "body"))?;
    let mut w = vec![std::net::SocketAddr::new(ip, port).to_string()];
    let mut kv = |k: &str, v: String| {
        w.push(k.to_string());
        w.push(v);
    };
    if let Some(x) = a.weight {
        json::check_range("weight", i64::from(x), 0, 256)?;
        kv("weight", x.to_string());
    }
    if let Some(x) = a.maxconn {
        kv("maxconn", x.to_string());
    }
    if let Some(x) = a.inter {
        kv("inter", x.to_string());
    }
    if let Some(x) = a.rise {
        kv("rise", x.to_string());
    }
    if let Some(x) = a.fall {
        kv("fall", x.to_string());
    }
    if let Some(x) = &a.verify {
        kv("verify", x.clone());
    }
    if let Some(x) = &a.cookie {
        kv("cookie", x.clone());
    }
    for (t, on, off) in [(a.check, "check", "no-check"), (a.backup, "backup", "no-backup"), (a.ssl, "ssl", "no-ssl")] {
        if let Some(t) = t {
            w.push(if t.is_on() { on } else { off }.to_string());
        }
    }
    Ok(w)
}

/// Decodes a `POST` body into the `add server` command.
pub fn add_command(backend: &str, body: &serde_json::Value) -> ApiResult<RtCommand> {
    let mut rest = body.clone();
    let more = match rest.as_object_mut() {
        Some(m) => more_words(m)?,
        None => Vec::new(),
    };
    let a: AddServer = json::decode(&rest, HAPROXY_ONLY)?;
    let mut words = add_words(&a)?;
    words.extend(more);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let fields = crate::dynamic::parse_add(&a.name, &refs).map_err(ApiError::BadRequest)?;
    Ok(RtCommand::AddServer(ServerRef { backend: backend.to_string(), server: a.name }, Box::new(fields)))
}

/// Runs a runtime change, mapping its refusal onto the API's statuses.
pub async fn run(proxy: &crate::proxy::Proxy, cmd: RtCommand) -> ApiResult<String> {
    crate::dynamic::submit(proxy, cmd).await.map_err(|(status, m)| match status {
        404 => ApiError::NotFound(m),
        409 => ApiError::Conflict(m),
        503 => ApiError::Internal(m),
        _ => ApiError::BadRequest(m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_becomes_add_server_keywords() {
        let c = add_command(
            "be",
            &json!({"name": "s3", "address": "127.0.0.1", "port": 8080, "weight": 5, "check": "enabled", "backup": "disabled"}),
        )
        .unwrap();
        let RtCommand::AddServer(r, f) = c else { panic!("not an add") };
        assert_eq!((r.backend.as_str(), r.server.as_str(), f.addr.as_str()), ("be", "s3", "127.0.0.1:8080"));
        assert_eq!((f.weight, f.check, f.backup), (Some(5), true, false));
        let v6 = add_command("be", &json!({"name": "s", "address": "::1", "port": 80})).unwrap();
        let RtCommand::AddServer(_, f) = v6 else { panic!() };
        assert_eq!(f.addr, "[::1]:80");
    }

    /// The fields beyond the original's first few become the control socket's keywords.
    #[test]
    fn the_other_fields_become_their_keywords() {
        let c = add_command(
            "be",
            &json!({"name": "s", "address": "127.0.0.1", "port": 80, "agent-check": "enabled", "agent-port": 9999,
                "agent-inter": 2000, "health_check_port": 8081, "observe": "layer7", "error_limit": 3,
                "on-error": "mark-down", "on-marked-up": "shutdown-backup-sessions", "track": "be/a",
                "send-proxy-v2": "enabled", "proxy-v2-options": ["ssl", "authority"], "maintenance": "enabled",
                "tls_tickets": "disabled", "ssl": "enabled", "verify": "none", "ssl_min_ver": "TLSv1.2",
                "source": "127.0.0.2", "slowstart": 5000, "maxqueue": 7}),
        )
        .unwrap();
        let RtCommand::AddServer(_, f) = c else { panic!("not an add") };
        assert!(f.agent_check && f.send_proxy_v2 && f.disabled && f.no_tls_tickets && f.ssl);
        assert_eq!((f.agent_port, f.check_port, f.error_limit, f.maxqueue), (Some(9999), Some(8081), Some(3), Some(7)));
        assert_eq!(
            (f.observe.as_deref(), f.on_error.as_deref(), f.on_marked_up.as_deref(), f.track.as_deref()),
            (Some("layer7"), Some("mark-down"), Some("shutdown-backup-sessions"), Some("be/a"))
        );
        assert_eq!(f.proxy_v2_options.as_deref(), Some("ssl,authority"));
        assert_eq!((f.ssl_min_ver.as_deref(), f.source.as_deref()), (Some("TLSv1.2"), Some("127.0.0.2")));
        assert_eq!(f.slowstart.map(|d| d.0.as_millis()), Some(5000));
    }

    #[test]
    fn bad_bodies_are_refused_with_the_field() {
        let e = add_command("be", &json!({"name": "s", "address": "nope", "port": 80})).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(add_command("be", &json!({"name": "s", "address": "127.0.0.1"})).unwrap_err().status(), 422);
        assert_eq!(
            add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "weight": 999}))
                .unwrap_err()
                .status(),
            422
        );
        let e =
            add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "tfo": "enabled"})).unwrap_err();
        assert!(e.to_string().contains("tfo"), "{e}");
        for bad in [
            json!({"name": "s", "address": "127.0.0.1", "port": 1, "observe": "layer5"}),
            json!({"name": "s", "address": "127.0.0.1", "port": 1, "agent-check": "yes"}),
        ] {
            assert_eq!(add_command("be", &bad).unwrap_err().status(), 422, "{bad}");
        }
        let e =
            add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "error_limit": 0})).unwrap_err();
        assert!(e.to_string().contains("error-limit"), "{e}");
        assert!(add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "bogus": 1})).is_err());
    }
}
