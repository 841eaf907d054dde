//! `frontends`: `[[frontend]]` sections (and every `[[listen]]`).

use super::common::*;
use super::*;
use crate::api::json::{self, Toggle};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    pub name: String,
    pub mode: Option<ProxyMode>,
    pub default_backend: Option<String>,
    pub http_connection_mode: Option<ConnMode>,
    pub maxconn: Option<u32>,
    pub forwardfor: Option<Forwardfor>,
    pub client_timeout: Option<u64>,
    pub http_request_timeout: Option<u64>,
    pub http_keep_alive_timeout: Option<u64>,
    pub httplog: Option<bool>,
    /// `option httplog clf`.
    pub clflog: Option<bool>,
    pub tcplog: Option<bool>,
    pub dontlognull: Option<Toggle>,
    pub dontlog_normal: Option<Toggle>,
    pub log_separate_errors: Option<Toggle>,
    #[serde(rename = "http-buffer-request")]
    pub http_buffer_request: Option<Toggle>,
    pub log_format: Option<String>,
    pub log_tag: Option<String>,
    pub unique_id_format: Option<String>,
    pub unique_id_header: Option<String>,
    pub monitor_uri: Option<String>,
    /// HAProxy's `id`: the proxy's number.
    pub id: Option<u32>,
}

/// Fields kept one to one at a key of the section (`httplog`/`clflog` share one, below).
const MORE: Mapped = &[
    ("id", "id", Kept::Int),
    ("tcplog", "tcplog", Kept::Bool),
    ("dontlognull", "dontlognull", Kept::Flag),
    ("dontlog_normal", "dontlog_normal", Kept::Flag),
    ("log_separate_errors", "log_separate_errors", Kept::Flag),
    ("http-buffer-request", "http_buffer_request", Kept::Flag),
    ("log_format", "log_format", Kept::Line),
    ("log_tag", "log_tag", Kept::Text),
    ("unique_id_format", "unique_id_format", Kept::Line),
    ("unique_id_header", "unique_id_header", Kept::Text),
    ("monitor_uri", "monitor_uri", Kept::Text),
];

const HAPROXY_ONLY: &[&str] = &[
    "backlog",
    "client_fin_timeout",
    "tarpit_timeout",
    "originalto",
    "httpslog",
    "logasap",
    "tcpka",
    "clitcpka",
    "stick_table",
    "compression",
    "stats_options",
    "description",
    "disabled",
    "httpclose",
    "http-server-close",
    "http-keep-alive",
];

impl Frontend {
    pub fn decode(body: &Json) -> ApiResult<Frontend> {
        let all: Vec<&str> = HAPROXY_ONLY.iter().chain(FORWARDFOR_ONLY).copied().collect();
        let f: Frontend = json::decode(body, &all)?;
        json::check_name("name", &f.name)?;
        if let Some(b) = &f.default_backend {
            json::check_name("default_backend", b)?;
        }
        nonzero("maxconn", f.maxconn)?;
        check_kept(&f, MORE)?;
        Ok(f)
    }

    pub fn read(t: &dyn TableLike) -> Frontend {
        let f = Frontend {
            name: name_of(t).unwrap_or_default().to_string(),
            mode: ProxyMode::read(t),
            default_backend: get_str(t, "default_backend"),
            http_connection_mode: ConnMode::read(t),
            maxconn: get_int(t, "maxconn").map(|n| n as u32),
            forwardfor: read_toggle_obj(t, "forwardfor").map(|enabled| Forwardfor { enabled }),
            client_timeout: read_timeout(t, "client"),
            http_request_timeout: read_timeout(t, "http_request"),
            http_keep_alive_timeout: read_timeout(t, "http_keep_alive"),
            httplog: get_bool(t, "httplog"),
            clflog: get_str(t, "httplog").map(|f| f == "clf"),
            tcplog: None,
            dontlognull: None,
            dontlog_normal: None,
            log_separate_errors: None,
            http_buffer_request: None,
            log_format: None,
            log_tag: None,
            unique_id_format: None,
            unique_id_header: None,
            monitor_uri: None,
            id: None,
        };
        read_kept(f, t, MORE)
    }

    pub fn write(&self, t: &mut dyn TableLike) -> ApiResult<()> {
        set_str(t, "mode", self.mode.map(ProxyMode::as_str));
        set_str(t, "default_backend", self.default_backend.as_deref());
        set_str(t, "http_connection_mode", self.http_connection_mode.map(ConnMode::as_str));
        set_int(t, "maxconn", self.maxconn.map(i64::from));
        set_bool(t, "forwardfor", self.forwardfor.as_ref().map(|f| f.enabled.is_on()));
        match (self.clflog, self.httplog) {
            (Some(true), _) => set_str(t, "httplog", Some("clf")),
            (_, h) => set_bool(t, "httplog", h),
        }
        write_kept(self, t, MORE);
        write_timeouts(
            t,
            &[
                ("client", self.client_timeout),
                ("http_request", self.http_request_timeout),
                ("http_keep_alive", self.http_keep_alive_timeout),
            ],
        )
    }
}

pub fn list(doc: &DocumentMut) -> Json {
    Json::Array(
        all(doc, Side::Frontend)
            .into_iter()
            .filter_map(|r| section(doc, r))
            .map(|t| json::to_value(&Frontend::read(t)))
            .collect(),
    )
}

pub fn get(doc: &DocumentMut, name: &str) -> ApiResult<Json> {
    let r = find(doc, Side::Frontend, name).ok_or_else(|| ApiError::missing_object(name))?;
    let t = section(doc, r).ok_or_else(|| ApiError::missing_object(name))?;
    Ok(json::to_value(&Frontend::read(t)))
}

pub fn create(doc: &mut DocumentMut, body: &Json) -> ApiResult<Json> {
    let f = Frontend::decode(body)?;
    if find(doc, Side::Frontend, &f.name).is_some() {
        return Err(ApiError::exists(&f.name));
    }
    let mut t = new_section(&f.name);
    f.write(&mut t)?;
    append_section(doc, Side::Frontend, t)?;
    Ok(json::to_value(&f))
}

pub fn replace(doc: &mut DocumentMut, name: &str, body: &Json) -> ApiResult<Json> {
    let f = Frontend::decode(body)?;
    if f.name != name {
        return Err(ApiError::BadRequest(format!(
            "name: `{}` differs from the frontend in the path (`{name}`); lbha does not rename",
            f.name
        )));
    }
    let r = find(doc, Side::Frontend, name).ok_or_else(|| ApiError::missing_object(name))?;
    f.write(section_mut(doc, r)?)?;
    Ok(json::to_value(&f))
}

pub fn delete(doc: &mut DocumentMut, name: &str) -> ApiResult<()> {
    let r = find(doc, Side::Frontend, name).ok_or_else(|| ApiError::missing_object(name))?;
    remove_section(doc, r)
}
