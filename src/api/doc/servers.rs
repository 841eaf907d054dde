//! `servers?backend=`: entries of a backend's `servers` list.

use super::*;
use crate::api::json::{self, Toggle};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::InlineTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub check: Option<Toggle>,
    pub backup: Option<Toggle>,
    pub maintenance: Option<Toggle>,
    pub weight: Option<u32>,
    pub maxconn: Option<u32>,
    pub inter: Option<u64>,
    pub fastinter: Option<u64>,
    pub downinter: Option<u64>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub health_check_port: Option<u16>,
    pub health_check_address: Option<String>,
    /// The value of the backend's persistence cookie for this server.
    pub cookie: Option<String>,
}

/// Server fields of HAProxy's API that lbha has no setting for.
const HAPROXY_ONLY: &[&str] = &[
    "id",
    "ssl",
    "agent-check",
    "agent-port",
    "agent-inter",
    "agent-addr",
    "send-proxy",
    "send-proxy-v2",
    "check-ssl",
    "tls_tickets",
    "ssl_reuse",
    "tfo",
    "stick",
    "no_verifyhost",
    "maxqueue",
    "minconn",
    "slowstart",
    "pool_max_conn",
    "pool_low_conn",
    "pool_purge_delay",
    "ssl_certificate",
    "ssl_cafile",
    "sni",
    "alpn",
    "proto",
    "resolvers",
    "init-addr",
    "track",
    "source",
    "verify",
    "verifyhost",
    "on-error",
    "observe",
    "resolve-prefer",
    "ws",
];

impl Server {
    pub fn decode(body: &Json) -> ApiResult<Server> {
        let s: Server = json::decode(body, HAPROXY_ONLY)?;
        json::check_name("name", &s.name)?;
        json::check_no_space("address", &s.address)?;
        let port = s.port.ok_or_else(|| {
            ApiError::BadRequest(
                "port: required by lbha (a server without a port would use the client's destination port, which lbha does not do)".into(),
            )
        })?;
        json::check_range("port", i64::from(port), 1, 65535)?;
        if let Some(w) = s.weight {
            json::check_range("weight", i64::from(w), 0, 256)?;
        }
        if let Some(p) = s.health_check_port {
            json::check_range("health_check_port", i64::from(p), 1, 65535)?;
        }
        if let Some(a) = &s.health_check_address
            && a.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ApiError::BadRequest(format!("health_check_address: not an IP address ({a})")));
        }
        super::common::nonzero("maxconn", s.maxconn)?;
        if let Some(c) = &s.cookie {
            json::check_no_space("cookie", c)?;
        }
        Ok(s)
    }

    pub fn read(t: &dyn TableLike) -> Server {
        let (address, port) = split_addr(&get_str(t, "addr").unwrap_or_default());
        let flag = |k: &str| get_bool(t, k).map(Toggle::on);
        Server {
            name: name_of(t).unwrap_or_default().to_string(),
            address,
            port,
            check: flag("check"),
            backup: flag("backup"),
            maintenance: flag("disabled"),
            weight: get_int(t, "weight").map(|n| n as u32),
            maxconn: get_int(t, "maxconn").map(|n| n as u32),
            inter: get_ms(t, "inter"),
            fastinter: get_ms(t, "fastinter"),
            downinter: get_ms(t, "downinter"),
            rise: get_int(t, "rise").map(|n| n as u32),
            fall: get_int(t, "fall").map(|n| n as u32),
            health_check_port: get_int(t, "check_port").map(|n| n as u16),
            health_check_address: get_str(t, "check_addr"),
            cookie: get_str(t, "cookie"),
        }
    }

    pub fn write(&self, t: &mut dyn TableLike) {
        set_str(t, "name", Some(&self.name));
        let addr = join_addr(&self.address, self.port.unwrap_or(0));
        set_str(t, "addr", Some(&addr));
        set_bool(t, "check", self.check.map(Toggle::is_on));
        set_bool(t, "backup", self.backup.map(Toggle::is_on));
        set_bool(t, "disabled", self.maintenance.map(Toggle::is_on));
        set_int(t, "weight", self.weight.map(i64::from));
        set_int(t, "maxconn", self.maxconn.map(i64::from));
        set_ms(t, "inter", self.inter);
        set_ms(t, "fastinter", self.fastinter);
        set_ms(t, "downinter", self.downinter);
        set_int(t, "rise", self.rise.map(i64::from));
        set_int(t, "fall", self.fall.map(i64::from));
        set_int(t, "check_port", self.health_check_port.map(i64::from));
        set_str(t, "check_addr", self.health_check_address.as_deref());
        set_str(t, "cookie", self.cookie.as_deref());
    }
}

fn position(t: &dyn TableLike, name: &str) -> Option<usize> {
    array(t, "servers")?
        .iter()
        .position(|v| v.as_inline_table().and_then(|s| s.get("name")).and_then(|n| n.as_str()) == Some(name))
}

fn parent_table<'a>(doc: &'a DocumentMut, backend: &str) -> ApiResult<&'a dyn TableLike> {
    let r = parent(doc, Side::Backend, backend)?;
    section(doc, r).ok_or_else(|| ApiError::missing_parent("backend", backend))
}

/// A missing parent on a list is an empty list, as in the original.
pub fn list(doc: &DocumentMut, backend: &str) -> Json {
    let Ok(t) = parent_table(doc, backend) else {
        return Json::Array(Vec::new());
    };
    Json::Array(
        array(t, "servers")
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|v| v.as_inline_table())
            .map(|s| json::to_value(&Server::read(s)))
            .collect(),
    )
}

pub fn get(doc: &DocumentMut, backend: &str, name: &str) -> ApiResult<Json> {
    let t = parent_table(doc, backend)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    let s = array(t, "servers")
        .and_then(|a| a.get(i))
        .and_then(|v| v.as_inline_table())
        .ok_or_else(|| ApiError::missing_object(name))?;
    Ok(json::to_value(&Server::read(s)))
}

pub fn create(doc: &mut DocumentMut, backend: &str, body: &Json) -> ApiResult<Json> {
    let s = Server::decode(body)?;
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    if position(t, &s.name).is_some() {
        return Err(ApiError::exists(&s.name));
    }
    let mut it = InlineTable::new();
    s.write(&mut it);
    let a = array_mut(t, "servers")?;
    let len = a.len();
    insert_elem(a, len, it.into());
    Ok(json::to_value(&s))
}

pub fn replace(doc: &mut DocumentMut, backend: &str, name: &str, body: &Json) -> ApiResult<Json> {
    let s = Server::decode(body)?;
    if s.name != name {
        return Err(ApiError::BadRequest(format!(
            "name: `{}` differs from the server in the path (`{name}`); lbha does not rename",
            s.name
        )));
    }
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    let it = array_mut(t, "servers")?
        .get_mut(i)
        .and_then(|v| v.as_inline_table_mut())
        .ok_or_else(|| ApiError::missing_object(name))?;
    s.write(it);
    Ok(json::to_value(&s))
}

pub fn delete(doc: &mut DocumentMut, backend: &str, name: &str) -> ApiResult<()> {
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    remove_elem(t, "servers", i)
}
