//! `backends`: `[[backend]]` sections (and `[[listen]]` ones that serve as backends).

use super::common::*;
use super::*;
use crate::api::json::{self, Toggle};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub name: String,
    pub mode: Option<ProxyMode>,
    pub balance: Option<Balance>,
    pub hash_type: Option<HashType>,
    pub adv_check: Option<AdvCheck>,
    pub httpchk_params: Option<HttpchkParams>,
    pub forwardfor: Option<Forwardfor>,
    pub http_connection_mode: Option<ConnMode>,
    pub redispatch: Option<Redispatch>,
    pub retries: Option<u32>,
    pub allbackups: Option<Toggle>,
    pub abortonclose: Option<Toggle>,
    pub connect_timeout: Option<u64>,
    pub server_timeout: Option<u64>,
    pub tunnel_timeout: Option<u64>,
    pub check_timeout: Option<u64>,
    pub http_request_timeout: Option<u64>,
    pub http_keep_alive_timeout: Option<u64>,
    pub default_server: Option<DefaultServer>,
    pub http_reuse: Option<HttpReuse>,
    pub log_health_checks: Option<Toggle>,
    pub fullconn: Option<u32>,
    /// HAProxy's `id`: the proxy's number.
    pub id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpReuse {
    Aggressive,
    Always,
    Never,
    Safe,
}

/// Fields kept one to one at a key of the section.
const MORE: Mapped = &[
    ("id", "id", Kept::Int),
    ("http_reuse", "http_reuse", Kept::Text),
    ("log_health_checks", "log_health_checks", Kept::Flag),
    ("fullconn", "fullconn", Kept::Int),
    ("abortonclose", "abortonclose", Kept::Flag),
];

/// Backend fields of HAProxy's API that lbha has no setting for.
const HAPROXY_ONLY: &[&str] = &[
    "cookie",
    "stick_table",
    "tcpka",
    "persist",
    "prefer_last_server",
    "queue_timeout",
    "server_fin_timeout",
    "tarpit_timeout",
    "source",
    "compression",
    "stats_options",
    "description",
    "disabled",
    "from",
    "httpclose",
    "http-server-close",
    "http-keep-alive",
    "external_check",
    "external_check_command",
    "external_check_path",
];

const TIMEOUTS: [&str; 6] = ["connect", "server", "tunnel", "check", "http_request", "http_keep_alive"];

impl Backend {
    pub fn decode(body: &Json) -> ApiResult<Backend> {
        let all: Vec<&str> = HAPROXY_ONLY.iter().chain(FORWARDFOR_ONLY).chain(BALANCE_ONLY).copied().collect();
        let b: Backend = json::decode(body, &all)?;
        json::check_name("name", &b.name)?;
        if let Some(bal) = &b.balance {
            bal.to_text()?;
        }
        if let Some(r) = b.retries {
            json::check_range("retries", i64::from(r), 0, 1_000_000)?;
        }
        Ok(b)
    }

    pub fn read(t: &dyn TableLike) -> Backend {
        let (adv_check, httpchk_params) = read_httpchk(t);
        let ts: Vec<Option<u64>> = TIMEOUTS.iter().map(|k| read_timeout(t, k)).collect();
        let b = Backend {
            name: name_of(t).unwrap_or_default().to_string(),
            mode: ProxyMode::read(t),
            balance: get_str(t, "balance").and_then(|s| Balance::from_text(&s)),
            hash_type: HashType::read(t),
            adv_check,
            httpchk_params,
            forwardfor: read_toggle_obj(t, "forwardfor").map(|enabled| Forwardfor { enabled }),
            http_connection_mode: ConnMode::read(t),
            redispatch: read_toggle_obj(t, "redispatch").map(|enabled| Redispatch { enabled }),
            retries: get_int(t, "retries").map(|n| n as u32),
            allbackups: get_bool(t, "allbackups").map(Toggle::on),
            abortonclose: None,
            connect_timeout: ts[0],
            server_timeout: ts[1],
            tunnel_timeout: ts[2],
            check_timeout: ts[3],
            http_request_timeout: ts[4],
            http_keep_alive_timeout: ts[5],
            default_server: DefaultServer::read(t),
            http_reuse: None,
            log_health_checks: None,
            fullconn: None,
            id: None,
        };
        read_kept(b, t, MORE)
    }

    /// Writes every key this resource covers; keys it does not cover (servers, check headers
    /// and expect, ...) stay as they are.
    pub fn write(&self, t: &mut dyn TableLike) -> ApiResult<()> {
        set_str(t, "mode", self.mode.map(ProxyMode::as_str));
        let bal = self.balance.as_ref().map(Balance::to_text).transpose()?;
        set_str(t, "balance", bal.as_deref());
        set_str(t, "hash_type", self.hash_type.as_ref().and_then(HashType::text).as_deref());
        write_httpchk(t, self.adv_check, self.httpchk_params.as_ref())?;
        set_bool(t, "forwardfor", self.forwardfor.as_ref().map(|f| f.enabled.is_on()));
        set_str(t, "http_connection_mode", self.http_connection_mode.map(ConnMode::as_str));
        set_bool(t, "redispatch", self.redispatch.as_ref().map(|r| r.enabled.is_on()));
        set_int(t, "retries", self.retries.map(i64::from));
        set_bool(t, "allbackups", self.allbackups.map(Toggle::is_on));
        write_kept(self, t, MORE);
        write_timeouts(
            t,
            &[
                ("connect", self.connect_timeout),
                ("server", self.server_timeout),
                ("tunnel", self.tunnel_timeout),
                ("check", self.check_timeout),
                ("http_request", self.http_request_timeout),
                ("http_keep_alive", self.http_keep_alive_timeout),
            ],
        )?;
        DefaultServer::write(self.default_server.as_ref(), t)
    }
}

pub fn list(doc: &DocumentMut) -> Json {
    Json::Array(
        all(doc, Side::Backend)
            .into_iter()
            .filter_map(|r| section(doc, r))
            .map(|t| json::to_value(&Backend::read(t)))
            .collect(),
    )
}

pub fn get(doc: &DocumentMut, name: &str) -> ApiResult<Json> {
    let r = find(doc, Side::Backend, name).ok_or_else(|| ApiError::missing_object(name))?;
    let t = section(doc, r).ok_or_else(|| ApiError::missing_object(name))?;
    Ok(json::to_value(&Backend::read(t)))
}

pub fn create(doc: &mut DocumentMut, body: &Json) -> ApiResult<Json> {
    let b = Backend::decode(body)?;
    if find(doc, Side::Backend, &b.name).is_some() {
        return Err(ApiError::exists(&b.name));
    }
    let mut t = new_section(&b.name);
    b.write(&mut t)?;
    append_section(doc, Side::Backend, t)?;
    Ok(json::to_value(&b))
}

pub fn replace(doc: &mut DocumentMut, name: &str, body: &Json) -> ApiResult<Json> {
    let b = Backend::decode(body)?;
    if b.name != name {
        return Err(ApiError::BadRequest(format!(
            "name: `{}` differs from the backend in the path (`{name}`); lbha does not rename",
            b.name
        )));
    }
    let r = find(doc, Side::Backend, name).ok_or_else(|| ApiError::missing_object(name))?;
    b.write(section_mut(doc, r)?)?;
    Ok(json::to_value(&b))
}

pub fn delete(doc: &mut DocumentMut, name: &str) -> ApiResult<()> {
    let r = find(doc, Side::Backend, name).ok_or_else(|| ApiError::missing_object(name))?;
    remove_section(doc, r)
}
