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
    pub ssl: Option<bool>,
    pub ssl_certificate: Option<String>,
    pub ssl_cafile: Option<String>,
    pub crt_list: Option<String>,
    pub crl_file: Option<String>,
    pub alpn: Option<String>,
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    pub verify: Option<Verify>,
    pub ssl_min_ver: Option<TlsVersion>,
    pub ssl_max_ver: Option<TlsVersion>,
    pub strict_sni: Option<bool>,
    pub no_sslv3: Option<bool>,
    pub no_tlsv10: Option<bool>,
    pub no_tlsv11: Option<bool>,
    pub no_tlsv12: Option<bool>,
    pub no_tlsv13: Option<bool>,
    pub force_sslv3: Option<bool>,
    pub force_tlsv10: Option<bool>,
    pub force_tlsv11: Option<bool>,
    pub force_tlsv12: Option<bool>,
    pub force_tlsv13: Option<bool>,
    pub accept_proxy: Option<bool>,
    pub v4v6: Option<bool>,
    pub v6only: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    None,
    Optional,
    Required,
}

/// `ssl_min_ver` / `ssl_max_ver`, spelled as HAProxy's API and bind lines spell them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TlsVersion {
    SSLv3,
    #[serde(rename = "TLSv1.0")]
    TLSv10,
    #[serde(rename = "TLSv1.1")]
    TLSv11,
    #[serde(rename = "TLSv1.2")]
    TLSv12,
    #[serde(rename = "TLSv1.3")]
    TLSv13,
}

/// The API's bind fields and the bind-line words they stand for (`true`: the word takes a
/// value). Words of a line that are not here (`proto h2`, `curves ...`) stay as they are.
const WORDS: &[(&str, &str, bool)] = &[
    ("ssl", "ssl", false),
    ("ssl_certificate", "crt", true),
    ("ssl_cafile", "ca-file", true),
    ("crt_list", "crt-list", true),
    ("crl_file", "crl-file", true),
    ("alpn", "alpn", true),
    ("ciphers", "ciphers", true),
    ("ciphersuites", "ciphersuites", true),
    ("verify", "verify", true),
    ("ssl_min_ver", "ssl-min-ver", true),
    ("ssl_max_ver", "ssl-max-ver", true),
    ("strict_sni", "strict-sni", false),
    ("no_sslv3", "no-sslv3", false),
    ("no_tlsv10", "no-tlsv10", false),
    ("no_tlsv11", "no-tlsv11", false),
    ("no_tlsv12", "no-tlsv12", false),
    ("no_tlsv13", "no-tlsv13", false),
    ("force_sslv3", "force-sslv3", false),
    ("force_tlsv10", "force-tlsv10", false),
    ("force_tlsv11", "force-tlsv11", false),
    ("force_tlsv12", "force-tlsv12", false),
    ("force_tlsv13", "force-tlsv13", false),
    ("accept_proxy", "accept-proxy", false),
    ("v4v6", "v4v6", false),
    ("v6only", "v6only", false),
];

/// Other words of lbha's bind lines that take a value, so a kept word keeps its value.
const VALUED: &[&str] = &["proto", "curves"];

const HAPROXY_ONLY: &[&str] = &[
    "port-range-end",
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
        let fields = json::to_value(&b);
        for (field, _, valued) in WORDS {
            if let (true, Some(Json::String(v))) = (*valued, fields.get(*field)) {
                json::check_no_space(field, v)?;
            }
        }
        Ok((b, addr))
    }

    /// The bind-line words of the fields set, in the order of [`WORDS`].
    fn words(&self) -> String {
        let v = json::to_value(self);
        let mut out = String::new();
        for (field, word, _) in WORDS {
            match v.get(*field) {
                Some(Json::Bool(true)) => {
                    out.push(' ');
                    out.push_str(word);
                }
                Some(Json::String(s)) => {
                    out.push_str(&format!(" {word} {s}"));
                }
                _ => {}
            }
        }
        out
    }

    /// Splits a line's options into the API's fields and the words left as they are.
    fn split_options(opts: &str) -> (serde_json::Map<String, Json>, String) {
        let mut fields = serde_json::Map::new();
        let mut rest = String::new();
        let mut it = opts.split_whitespace();
        while let Some(w) = it.next() {
            match WORDS.iter().find(|(_, word, _)| *word == w) {
                Some((field, _, false)) => {
                    fields.insert(field.to_string(), Json::Bool(true));
                }
                Some((field, _, true)) => {
                    if let Some(v) = it.next() {
                        fields.insert(field.to_string(), Json::String(v.to_string()));
                    }
                }
                None => {
                    rest.push(' ');
                    rest.push_str(w);
                    if VALUED.contains(&w)
                        && let Some(v) = it.next()
                    {
                        rest.push(' ');
                        rest.push_str(v);
                    }
                }
            }
        }
        (fields, rest)
    }

    fn read(v: &toml_edit::Value) -> Option<Bind> {
        let (name, addr) = match v {
            toml_edit::Value::String(s) => (None, s.value().clone()),
            toml_edit::Value::InlineTable(t) => (get_str(t, "name"), get_str(t, "addr").unwrap_or_default()),
            _ => return None,
        };
        // A bind line may carry options after the address (`ssl crt ...`, `proto h2`).
        let (addr, opts) = addr.trim().split_once(char::is_whitespace).unwrap_or((addr.trim(), ""));
        let (host, port) = split_addr(addr);
        let (mut fields, _) = Self::split_options(opts);
        fields.insert("name".into(), Json::String(name.unwrap_or_else(|| addr.to_string())));
        fields.insert("address".into(), Json::String(if host.is_empty() { "*".into() } else { host }));
        if let Some(p) = port {
            fields.insert("port".into(), p.into());
        }
        // A value the API's schema does not take (a version spelled otherwise) is left out of
        // the fields rather than hiding the bind.
        serde_json::from_value(Json::Object(fields.clone())).ok().or_else(|| {
            fields.retain(|k, _| matches!(k.as_str(), "name" | "address" | "port"));
            serde_json::from_value(Json::Object(fields)).ok()
        })
    }

    /// The words of an existing bind line that the API has no field for, kept when the bind is
    /// replaced (the fields themselves come from the request).
    fn options(v: &toml_edit::Value) -> String {
        let line = match v {
            toml_edit::Value::String(s) => s.value().clone(),
            toml_edit::Value::InlineTable(t) => get_str(t, "addr").unwrap_or_default(),
            _ => String::new(),
        };
        let opts = line.trim().split_once(char::is_whitespace).map(|x| x.1).unwrap_or("");
        Self::split_options(opts).1
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
    insert_elem(a, len, b.to_toml(&format!("{addr}{}", b.words())));
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
    replace_elem(arr, i, b.to_toml(&format!("{addr}{}{opts}", b.words())));
    Ok(json::to_value(&b))
}

pub fn delete(doc: &mut DocumentMut, frontend: &str, name: &str) -> ApiResult<()> {
    let r = parent(doc, Side::Frontend, frontend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name).ok_or_else(|| ApiError::missing_object(name))?;
    remove_elem(t, "bind", i)
}
