//! `defaults`: the `[defaults]` table. PUT replaces every setting the API covers.

use super::common::*;
use super::*;
use crate::api::json::{self, Toggle};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// HAProxy's defaults may be named (2.7+); lbha has one unnamed section.
    pub name: Option<String>,
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
    pub maxconn: Option<u32>,
    pub default_backend: Option<String>,
    pub client_timeout: Option<u64>,
    pub server_timeout: Option<u64>,
    pub connect_timeout: Option<u64>,
    pub http_request_timeout: Option<u64>,
    pub http_keep_alive_timeout: Option<u64>,
    pub tunnel_timeout: Option<u64>,
    pub check_timeout: Option<u64>,
    pub default_server: Option<DefaultServer>,
}

const TIMEOUTS: [&str; 7] = ["client", "server", "connect", "http_request", "http_keep_alive", "tunnel", "check"];

fn table_mut(doc: &mut DocumentMut) -> ApiResult<&mut dyn TableLike> {
    doc.entry("defaults")
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| ApiError::Internal("`defaults` in the config is not a table".into()))
}

impl Defaults {
    fn read(t: &dyn TableLike) -> Defaults {
        let (adv_check, httpchk_params) = read_httpchk(t);
        let ts: Vec<Option<u64>> = TIMEOUTS.iter().map(|k| read_timeout(t, k)).collect();
        Defaults {
            name: None,
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
            abortonclose: get_bool(t, "abortonclose").map(Toggle::on),
            maxconn: get_int(t, "maxconn").map(|n| n as u32),
            default_backend: get_str(t, "default_backend"),
            client_timeout: ts[0],
            server_timeout: ts[1],
            connect_timeout: ts[2],
            http_request_timeout: ts[3],
            http_keep_alive_timeout: ts[4],
            tunnel_timeout: ts[5],
            check_timeout: ts[6],
            default_server: DefaultServer::read(t),
        }
    }

    fn write(&self, t: &mut dyn TableLike) -> ApiResult<()> {
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
        set_bool(t, "abortonclose", self.abortonclose.map(Toggle::is_on));
        set_int(t, "maxconn", self.maxconn.map(i64::from));
        set_str(t, "default_backend", self.default_backend.as_deref());
        write_timeouts(
            t,
            &[
                ("client", self.client_timeout),
                ("server", self.server_timeout),
                ("connect", self.connect_timeout),
                ("http_request", self.http_request_timeout),
                ("http_keep_alive", self.http_keep_alive_timeout),
                ("tunnel", self.tunnel_timeout),
                ("check", self.check_timeout),
            ],
        )?;
        DefaultServer::write(self.default_server.as_ref(), t)
    }
}

pub fn get(doc: &DocumentMut) -> Json {
    match doc.get("defaults").and_then(|i| i.as_table_like()) {
        Some(t) => json::to_value(&Defaults::read(t)),
        None => json::to_value(&Defaults::default()),
    }
}

pub fn replace(doc: &mut DocumentMut, body: &Json) -> ApiResult<Json> {
    let all: Vec<&str> = FORWARDFOR_ONLY.iter().chain(BALANCE_ONLY).copied().collect();
    let d: Defaults = json::decode(body, &all)?;
    if let Some(n) = d.name.as_deref().filter(|n| !n.is_empty() && *n != "unnamed_defaults_1") {
        return Err(ApiError::unsupported("name", &format!("lbha has one unnamed defaults section, not `{n}`")));
    }
    if let Some(b) = &d.default_backend {
        json::check_name("default_backend", b)?;
    }
    nonzero("maxconn", d.maxconn)?;
    d.write(table_mut(doc)?)?;
    Ok(json::to_value(&Defaults { name: None, ..d }))
}
