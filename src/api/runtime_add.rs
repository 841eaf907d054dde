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

/// Fields of `runtime_add_server` lbha has no runtime setting for.
const HAPROXY_ONLY: &[&str] = &[
    "id",
    "agent-check",
    "agent-addr",
    "agent-port",
    "agent-send",
    "agent-inter",
    "health_check_port",
    "health_check_address",
    "send-proxy",
    "send-proxy-v2",
    "proxy-v2-options",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "error_limit",
    "fastinter",
    "downinter",
    "alpn",
    "proto",
    "sni",
    "ssl_cafile",
    "ssl_certificate",
    "ciphers",
    "ciphersuites",
    "tls_tickets",
    "maintenance",
    "track",
];

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
    let a: AddServer = json::decode(body, HAPROXY_ONLY)?;
    let words = add_words(&a)?;
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
        let e = add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "agent-check": "enabled"}))
            .unwrap_err();
        assert!(e.to_string().contains("agent-check"), "{e}");
        assert!(add_command("be", &json!({"name": "s", "address": "127.0.0.1", "port": 1, "bogus": 1})).is_err());
    }
}
