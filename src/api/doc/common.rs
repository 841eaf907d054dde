//! JSON pieces shared by several resources (backend, frontend, defaults), with their lbha keys.

use super::*;
use crate::api::json::Toggle;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Http,
    Tcp,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Http => "http",
            ProxyMode::Tcp => "tcp",
        }
    }
    pub fn read(t: &dyn TableLike) -> Option<Self> {
        match get_str(t, "mode")?.as_str() {
            "http" => Some(ProxyMode::Http),
            "tcp" => Some(ProxyMode::Tcp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnMode {
    #[serde(rename = "httpclose")]
    Close,
    #[serde(rename = "http-server-close")]
    ServerClose,
    #[serde(rename = "http-keep-alive")]
    KeepAlive,
}

impl ConnMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnMode::Close => "httpclose",
            ConnMode::ServerClose => "http-server-close",
            ConnMode::KeepAlive => "http-keep-alive",
        }
    }
    pub fn read(t: &dyn TableLike) -> Option<Self> {
        match get_str(t, "http_connection_mode")?.as_str() {
            "httpclose" => Some(ConnMode::Close),
            "http-server-close" => Some(ConnMode::ServerClose),
            "http-keep-alive" => Some(ConnMode::KeepAlive),
            _ => None,
        }
    }
}

/// `forwardfor {enabled}`; lbha has no `except`/`header`/`ifnone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forwardfor {
    pub enabled: Toggle,
}

/// `redispatch {enabled}`; lbha has no `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redispatch {
    pub enabled: Toggle,
}

pub const FORWARDFOR_ONLY: &[&str] =
    &["forwardfor.except", "forwardfor.header", "forwardfor.ifnone", "redispatch.interval"];

pub fn read_toggle_obj(t: &dyn TableLike, key: &str) -> Option<Toggle> {
    get_bool(t, key).map(Toggle::on)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "roundrobin")]
    RoundRobin,
    #[serde(rename = "static-rr")]
    StaticRr,
    #[serde(rename = "leastconn")]
    LeastConn,
    #[serde(rename = "first")]
    First,
    #[serde(rename = "source")]
    Source,
    #[serde(rename = "uri")]
    Uri,
    #[serde(rename = "url_param")]
    UrlParam,
    #[serde(rename = "hdr")]
    Hdr,
    #[serde(rename = "random")]
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    pub algorithm: Algorithm,
    pub hdr_name: Option<String>,
    pub url_param: Option<String>,
    pub uri_len: Option<u32>,
    pub uri_depth: Option<u32>,
    pub uri_whole: Option<bool>,
    pub uri_path_only: Option<bool>,
    pub url_param_check_post: Option<bool>,
    pub hdr_use_domain_only: Option<bool>,
    pub random_draws: Option<u32>,
}

pub const BALANCE_ONLY: &[&str] = &["balance.url_param_max_wait", "balance.rdp_cookie_name", "balance.hash_expression"];

impl Balance {
    /// lbha's `balance` text (HAProxy's syntax).
    pub fn to_text(&self) -> ApiResult<String> {
        use Algorithm::*;
        Ok(match self.algorithm {
            RoundRobin => "roundrobin".into(),
            StaticRr => "static-rr".into(),
            LeastConn => "leastconn".into(),
            First => "first".into(),
            Source => "source".into(),
            Uri => {
                let mut s = String::from("uri");
                if let Some(n) = self.uri_len {
                    s.push_str(&format!(" len {n}"));
                }
                if let Some(n) = self.uri_depth {
                    s.push_str(&format!(" depth {n}"));
                }
                if self.uri_whole == Some(true) {
                    s.push_str(" whole");
                }
                if self.uri_path_only == Some(true) {
                    s.push_str(" path-only");
                }
                s
            }
            UrlParam => {
                let p = self.url_param.as_deref().ok_or_else(|| ApiError::required("balance.url_param", "body"))?;
                crate::api::json::check_no_space("balance.url_param", p)?;
                let post = if self.url_param_check_post == Some(true) { " check_post" } else { "" };
                format!("url_param {p}{post}")
            }
            Hdr => {
                let h = self.hdr_name.as_deref().ok_or_else(|| ApiError::required("balance.hdr_name", "body"))?;
                crate::api::json::check_no_space("balance.hdr_name", h)?;
                let domain = if self.hdr_use_domain_only == Some(true) { " use_domain_only" } else { "" };
                format!("hdr({h}){domain}")
            }
            Random => match self.random_draws {
                Some(n) => format!("random({n})"),
                None => "random".into(),
            },
        })
    }

    pub fn from_text(s: &str) -> Option<Balance> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let head = *words.first()?;
        let mut b = Balance {
            algorithm: Algorithm::RoundRobin,
            hdr_name: None,
            url_param: None,
            uri_len: None,
            uri_depth: None,
            uri_whole: None,
            uri_path_only: None,
            url_param_check_post: None,
            hdr_use_domain_only: None,
            random_draws: None,
        };
        let (name, arg) = match head.split_once('(') {
            Some((n, rest)) => (n, rest.strip_suffix(')')),
            None => (head, None),
        };
        b.algorithm = match name {
            "roundrobin" => Algorithm::RoundRobin,
            "static-rr" => Algorithm::StaticRr,
            "leastconn" => Algorithm::LeastConn,
            "first" => Algorithm::First,
            "source" => Algorithm::Source,
            "uri" => {
                let mut it = words[1..].iter();
                while let Some(w) = it.next() {
                    match *w {
                        "len" => b.uri_len = it.next().and_then(|n| n.parse().ok()),
                        "depth" => b.uri_depth = it.next().and_then(|n| n.parse().ok()),
                        "whole" => b.uri_whole = Some(true),
                        "path-only" => b.uri_path_only = Some(true),
                        _ => {}
                    }
                }
                Algorithm::Uri
            }
            "url_param" => {
                b.url_param = words.get(1).map(|s| s.to_string());
                b.url_param_check_post = (words.get(2) == Some(&"check_post")).then_some(true);
                Algorithm::UrlParam
            }
            "hdr" => {
                b.hdr_name = arg.map(str::to_string);
                b.hdr_use_domain_only = (words.get(1) == Some(&"use_domain_only")).then_some(true);
                Algorithm::Hdr
            }
            "random" => {
                b.random_draws = arg.and_then(|a| a.parse().ok());
                Algorithm::Random
            }
            _ => return None,
        };
        Some(b)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashMethod {
    #[serde(rename = "map-based")]
    MapBased,
    #[serde(rename = "consistent")]
    Consistent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashType {
    pub method: Option<HashMethod>,
    /// `sdbm`, `djb2`, `wt6` or `crc32` (HAProxy's `hash-type <method> <function>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<HashFunction>,
    /// `avalanche`, the only modifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<HashModifier>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashFunction {
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashModifier {
    Avalanche,
}

impl HashType {
    /// The config's `hash_type` as written (`METHOD [FUNCTION [avalanche]]`).
    pub fn read(t: &dyn TableLike) -> Option<Self> {
        let text = get_str(t, "hash_type")?;
        let mut words = text.split_whitespace();
        let method = match words.next()? {
            "map-based" => HashMethod::MapBased,
            "consistent" => HashMethod::Consistent,
            _ => return None,
        };
        let function = match words.next() {
            None => None,
            Some("sdbm") => Some(HashFunction::Sdbm),
            Some("djb2") => Some(HashFunction::Djb2),
            Some("wt6") => Some(HashFunction::Wt6),
            Some("crc32") => Some(HashFunction::Crc32),
            Some(_) => return None,
        };
        let modifier = match words.next() {
            None => None,
            Some("avalanche") => Some(HashModifier::Avalanche),
            Some(_) => return None,
        };
        Some(HashType { method: Some(method), function, modifier })
    }

    /// The config text; a modifier needs a function before it, as in HAProxy (`sdbm` then).
    pub fn text(&self) -> Option<String> {
        let mut s = String::from(match self.method? {
            HashMethod::MapBased => "map-based",
            HashMethod::Consistent => "consistent",
        });
        let function = match (self.function, self.modifier) {
            (None, Some(_)) => Some(HashFunction::Sdbm),
            (f, _) => f,
        };
        if let Some(f) = function {
            s += match f {
                HashFunction::Sdbm => " sdbm",
                HashFunction::Djb2 => " djb2",
                HashFunction::Wt6 => " wt6",
                HashFunction::Crc32 => " crc32",
            };
        }
        if self.modifier.is_some() {
            s += " avalanche";
        }
        Some(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvCheck {
    Httpchk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMethod {
    HEAD,
    PUT,
    POST,
    GET,
    TRACE,
    PATCH,
    DELETE,
    CONNECT,
    OPTIONS,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpchkParams {
    pub method: Option<HttpMethod>,
    pub uri: Option<String>,
    pub version: Option<String>,
}

impl HttpchkParams {
    /// `option httpchk` text: `"GET /uri HTTP/1.1"`; HAProxy's default method is OPTIONS.
    pub fn to_text(&self) -> ApiResult<String> {
        let mut parts = Vec::new();
        if let Some(m) = self.method {
            parts.push(format!("{m:?}"));
        }
        if let Some(u) = &self.uri {
            crate::api::json::check_no_space("httpchk_params.uri", u)?;
            if parts.is_empty() {
                parts.push("OPTIONS".into());
            }
            parts.push(u.clone());
        } else if !parts.is_empty() {
            parts.push("/".into());
        }
        if let Some(v) = &self.version {
            crate::api::json::check_no_space("httpchk_params.version", v)?;
            if parts.is_empty() {
                parts.push("OPTIONS".into());
                parts.push("/".into());
            }
            parts.push(v.clone());
        }
        Ok(parts.join(" "))
    }

    pub fn from_text(s: &str) -> Option<HttpchkParams> {
        let w: Vec<&str> = s.split_whitespace().collect();
        let method =
            |m: &str| -> Option<HttpMethod> { serde_json::from_value(serde_json::Value::String(m.to_string())).ok() };
        match w.as_slice() {
            [] => None,
            [uri] => Some(HttpchkParams { method: None, uri: Some(uri.to_string()), version: None }),
            [m, uri] => Some(HttpchkParams { method: method(m), uri: Some(uri.to_string()), version: None }),
            [m, uri, v, ..] => {
                Some(HttpchkParams { method: method(m), uri: Some(uri.to_string()), version: Some(v.to_string()) })
            }
        }
    }
}

/// `default_server`: the check timings lbha keeps backend-wide under `check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultServer {
    pub inter: Option<u64>,
    pub fastinter: Option<u64>,
    pub downinter: Option<u64>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

impl DefaultServer {
    pub fn read(t: &dyn TableLike) -> Option<Self> {
        let c = sub(t, "check")?;
        let d = DefaultServer {
            inter: get_ms(c, "inter"),
            fastinter: get_ms(c, "fastinter"),
            downinter: get_ms(c, "downinter"),
            rise: get_int(c, "rise").map(|n| n as u32),
            fall: get_int(c, "fall").map(|n| n as u32),
        };
        (d != DefaultServer::default()).then_some(d)
    }
    pub fn write(d: Option<&Self>, t: &mut dyn TableLike) -> ApiResult<()> {
        let d = d.cloned().unwrap_or_default();
        with_sub(t, "check", |c| {
            set_ms(c, "inter", d.inter);
            set_ms(c, "fastinter", d.fastinter);
            set_ms(c, "downinter", d.downinter);
            set_int(c, "rise", d.rise.map(i64::from));
            set_int(c, "fall", d.fall.map(i64::from));
        })
    }
}

/// The `adv_check` / `httpchk_params` pair as lbha's `check.http`.
pub fn read_httpchk(t: &dyn TableLike) -> (Option<AdvCheck>, Option<HttpchkParams>) {
    match sub(t, "check").and_then(|c| get_str(c, "http")) {
        Some(text) => (Some(AdvCheck::Httpchk), HttpchkParams::from_text(&text)),
        None => (None, None),
    }
}

pub fn write_httpchk(t: &mut dyn TableLike, adv: Option<AdvCheck>, params: Option<&HttpchkParams>) -> ApiResult<()> {
    let text = match (adv, params) {
        (Some(AdvCheck::Httpchk), Some(p)) => Some(p.to_text()?),
        (Some(AdvCheck::Httpchk), None) => Some(String::new()),
        (None, Some(_)) => {
            return Err(ApiError::BadRequest("httpchk_params: needs adv_check \"httpchk\"".into()));
        }
        (None, None) => None,
    };
    with_sub(t, "check", |c| set_str(c, "http", text.as_deref()))
}

/// JSON timeout field → key under lbha's `timeout` table.
pub fn write_timeouts(t: &mut dyn TableLike, pairs: &[(&str, Option<u64>)]) -> ApiResult<()> {
    with_sub(t, "timeout", |tt| {
        for (k, v) in pairs {
            set_ms(tt, k, *v);
        }
    })
}

pub fn read_timeout(t: &dyn TableLike, key: &str) -> Option<u64> {
    sub(t, "timeout").and_then(|tt| get_ms(tt, key))
}

pub fn nonzero(field: &str, v: Option<u32>) -> ApiResult<Option<u32>> {
    if v == Some(0) {
        return Err(ApiError::range(field, 1, i64::from(u32::MAX), 0));
    }
    Ok(v)
}

/// How an API field that maps one to one onto a key of lbha's section is kept there.
#[derive(Clone, Copy)]
pub enum Kept {
    /// The same text: one word, or (`Line`) a line such as a log format.
    Text,
    Line,
    /// `enabled` / `disabled` as a boolean; `Not` for a key that says the opposite.
    Flag,
    Not,
    /// A JSON boolean as a boolean.
    Bool,
    /// A number, or milliseconds as a duration.
    Int,
    Ms,
    /// A list, kept as one comma-separated text.
    List,
}

/// API fields (as the API spells them) and the lbha keys they are kept at.
pub type Mapped = &'static [(&'static str, &'static str, Kept)];

/// `base` with the `map` fields read from `t`. A value the API's schema does not take (a
/// spelling only lbha's file accepts) leaves that field out rather than the whole resource.
pub fn read_kept<T: Serialize + serde::de::DeserializeOwned>(base: T, t: &dyn TableLike, map: Mapped) -> T {
    let serde_json::Value::Object(mut obj) = crate::api::json::to_value(&base) else { return base };
    for (field, key, kept) in map {
        let v = match kept {
            Kept::Text | Kept::Line => get_str(t, key).map(serde_json::Value::from),
            Kept::Flag => get_bool(t, key).map(|b| crate::api::json::to_value(&Toggle::on(b))),
            Kept::Not => get_bool(t, key).map(|b| crate::api::json::to_value(&Toggle::on(!b))),
            Kept::Bool => get_bool(t, key).map(serde_json::Value::from),
            Kept::Int => get_int(t, key).map(serde_json::Value::from),
            Kept::Ms => get_ms(t, key).map(serde_json::Value::from),
            Kept::List => get_str(t, key).map(|s| s.split(',').map(|x| serde_json::Value::from(x.trim())).collect()),
        };
        if let Some(v) = v {
            let mut with = obj.clone();
            with.insert(field.to_string(), v);
            if serde_json::from_value::<T>(serde_json::Value::Object(with.clone())).is_ok() {
                obj = with;
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(obj)).unwrap_or(base)
}

/// Writes (or removes) the `map` fields of `v` in `t`.
pub fn write_kept<T: Serialize>(v: &T, t: &mut dyn TableLike, map: Mapped) {
    let v = crate::api::json::to_value(v);
    for (field, key, kept) in map {
        let f = v.get(*field);
        match kept {
            Kept::Text | Kept::Line => set_str(t, key, f.and_then(serde_json::Value::as_str)),
            Kept::Flag => set_bool(t, key, f.and_then(serde_json::Value::as_str).map(|s| s == "enabled")),
            Kept::Not => set_bool(t, key, f.and_then(serde_json::Value::as_str).map(|s| s == "disabled")),
            Kept::Bool => set_bool(t, key, f.and_then(serde_json::Value::as_bool)),
            Kept::Int => set_int(t, key, f.and_then(serde_json::Value::as_i64)),
            Kept::Ms => set_ms(t, key, f.and_then(serde_json::Value::as_u64)),
            Kept::List => {
                let list = f
                    .and_then(serde_json::Value::as_array)
                    .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(","));
                set_str(t, key, list.as_deref())
            }
        }
    }
}

/// The `map` text fields of `v` hold no whitespace (lbha's keys take single words).
pub fn check_kept<T: Serialize>(v: &T, map: Mapped) -> ApiResult<()> {
    let v = crate::api::json::to_value(v);
    for (field, _, kept) in map {
        if let (Kept::Text, Some(serde_json::Value::String(s))) = (kept, v.get(*field)) {
            crate::api::json::check_no_space(field, s)?;
        }
    }
    Ok(())
}
