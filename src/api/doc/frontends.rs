//! `frontends`: `[[frontend]]` sections (and every `[[listen]]`).

use super::common::*;
use super::*;
use crate::api::json;
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
}

const HAPROXY_ONLY: &[&str] = &[
    "backlog",
    "id",
    "client_fin_timeout",
    "tarpit_timeout",
    "originalto",
    "httplog",
    "tcplog",
    "clflog",
    "httpslog",
    "dontlognull",
    "dontlog_normal",
    "log_separate_errors",
    "logasap",
    "tcpka",
    "clitcpka",
    "http-buffer-request",
    "log_format",
    "log_tag",
    "unique_id_format",
    "unique_id_header",
    "monitor_uri",
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
        Ok(f)
    }

    pub fn read(t: &dyn TableLike) -> Frontend {
        Frontend {
            name: name_of(t).unwrap_or_default().to_string(),
            mode: ProxyMode::read(t),
            default_backend: get_str(t, "default_backend"),
            http_connection_mode: ConnMode::read(t),
            maxconn: get_int(t, "maxconn").map(|n| n as u32),
            forwardfor: read_toggle_obj(t, "forwardfor").map(|enabled| Forwardfor { enabled }),
            client_timeout: read_timeout(t, "client"),
            http_request_timeout: read_timeout(t, "http_request"),
            http_keep_alive_timeout: read_timeout(t, "http_keep_alive"),
        }
    }

    pub fn write(&self, t: &mut dyn TableLike) -> ApiResult<()> {
        set_str(t, "mode", self.mode.map(ProxyMode::as_str));
        set_str(t, "default_backend", self.default_backend.as_deref());
        set_str(t, "http_connection_mode", self.http_connection_mode.map(ConnMode::as_str));
        set_int(t, "maxconn", self.maxconn.map(i64::from));
        set_bool(t, "forwardfor", self.forwardfor.as_ref().map(|f| f.enabled.is_on()));
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
