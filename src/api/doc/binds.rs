//! `binds?frontend=`: entries of a frontend's `bind` list, `"ADDR:PORT"` or
//! `{ name, addr }`. An unnamed bind is named `ADDR:PORT`, as HAProxy names it.

use super::*;
use crate::api::json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::InlineTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
}

const HAPROXY_ONLY: &[&str] = &[
    "port-range-end",
    "ssl",
    "ssl_certificate",
    "ssl_cafile",
    "crt_list",
    "alpn",
    "ciphers",
    "ciphersuites",
    "verify",
    "ssl_min_ver",
    "ssl_max_ver",
    "strict_sni",
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
    "accept_proxy",
    "v4v6",
    "v6only",
    "transparent",
    "defer_accept",
    "tfo",
    "allow_0rtt",
    "maxconn",
    "nice",
    "level",
    "interface",
    "namespace",
    "thread",
    "process",
];

impl Bind {
    /// Decodes and fills in the name; returns the bind and its `ADDR:PORT` text.
    pub fn decode(body: &Json) -> ApiResult<(Bind, String)> {
        let mut b: Bind = json::decode(body, HAPROXY_ONLY)?;
        let address = b.address.clone().unwrap_or_else(|| "*".into());
        if address != "*" && address.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::BadRequest(format!("address: lbha binds an IP address or `*` (value: {address})")));
        }
        let port = b.port.ok_or_else(|| ApiError::required("port", "body"))?;
        json::check_range("port", i64::from(port), 1, 65535)?;
        let addr = join_addr(&address, port);
        let name = b.name.clone().unwrap_or_else(|| addr.clone());
        json::check_no_space("name", &name)?;
        b.name = Some(name);
        b.address = Some(address);
        Ok((b, addr))
    }

    fn read(v: &toml_edit::Value) -> Option<Bind> {
        let (name, addr) = match v {
            toml_edit::Value::String(s) => (None, s.value().clone()),
            toml_edit::Value::InlineTable(t) => (get_str(t, "name"), get_str(t, "addr").unwrap_or_default()),
            _ => return None,
        };
        // A bind line may carry options after the address (`ssl crt ...`, `proto h2`).
        let addr = addr.split_whitespace().next().unwrap_or("").to_string();
        let (host, port) = split_addr(&addr);
        Some(Bind {
            name: Some(name.unwrap_or_else(|| addr.clone())),
            address: Some(if host.is_empty() { "*".into() } else { host }),
            port,
        })
    }

    /// The options after the address in an existing bind line, kept when the bind is replaced.
    fn options(v: &toml_edit::Value) -> String {
        let line = match v {
            toml_edit::Value::String(s) => s.value().clone(),
            toml_edit::Value::InlineTable(t) => get_str(t, "addr").unwrap_or_default(),
            _ => String::new(),
        };
        line.trim().split_once(char::is_whitespace).map(|x| format!(" {}", x.1.trim())).unwrap_or_default()
    }

    fn to_toml(&self, addr: &str) -> toml_edit::Value {
        match &self.name {
            Some(n) if Some(n.as_str()) != addr.split_whitespace().next() => {
                let mut t = InlineTable::new();
                t.insert("name", n.as_str().into());
                t.insert("addr", addr.into());
                t.into()
            }
            _ => addr.into(),
        }
    }
}

fn binds(t: &dyn TableLike) -> Vec<Bind> {
    array(t, "bind").into_iter().flat_map(|a| a.iter()).filter_map(Bind::read).collect()
}

fn position(t: &dyn TableLike, name: &str) -> Option<usize> {
    binds(t).iter().position(|b| b.name.as_deref() == Some(name))
}

pub fn list(doc: &DocumentMut, frontend: &str) -> Json {
    let Some(t) = find(doc, Side::Frontend, frontend).and_then(|r| section(doc, r)) else {
        return Json::Array(Vec::new());
    };
    Json::Array(binds(t).iter().map(json::to_value).collect())
}

pub fn get(doc: &DocumentMut, frontend: &str, name: &str) -> ApiResult<Json> {
    let r = parent(doc, Side::Frontend, frontend)?;
    let t = section(doc, r).ok_or_else(|| ApiError::missing_parent("frontend", frontend))?;
    binds(t)
        .into_iter()
        .find(|b| b.name.as_deref() == Some(name))
        .map(|b| json::to_value(&b))
        .ok_or_else(|| ApiError::missing_object(name))
}

pub fn create(doc: &mut DocumentMut, frontend: &str, body: &Json) -> ApiResult<Json> {
    let (b, addr) = Bind::decode(body)?;
    let r = parent(doc, Side::Frontend, frontend)?;
    let t = section_mut(doc, r)?;
    let name = b.name.clone().unwrap_or_default();
    if position(t, &name).is_some() {
        return Err(ApiError::exists(&name));
    }
    let a = array_mut(t, "bind")?;
    let len = a.len();
    insert_elem(a, len, b.to_toml(&addr));
    Ok(json::to_value(&b))
}

pub fn replace(doc: &mut DocumentMut, frontend: &str, name: &str, body: &Json) -> ApiResult<Json> {
    let (b, addr) = Bind::decode(body)?;
    let r = parent(doc, Side::Frontend, frontend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    let b = Bind { name: Some(name.to_string()), ..b };
    let arr = array_mut(t, "bind")?;
    let opts = arr.get(i).map(Bind::options).unwrap_or_default();
    replace_elem(arr, i, b.to_toml(&format!("{addr}{opts}")));
    Ok(json::to_value(&b))
}

pub fn delete(doc: &mut DocumentMut, frontend: &str, name: &str) -> ApiResult<()> {
    let r = parent(doc, Side::Frontend, frontend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    remove_elem(t, "bind", i)
}
