//! `global`: the parts of `[global]` lbha has (maxconn, nbthread, spread_checks, hard_stop_after).

use super::*;
use crate::api::json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    pub maxconn: Option<u32>,
    pub nbthread: Option<u32>,
    pub spread_checks: Option<u32>,
    /// Milliseconds, as the original's other durations.
    pub hard_stop_after: Option<u64>,
}

const HAPROXY_ONLY: &[&str] = &[
    "daemon",
    "chroot",
    "user",
    "group",
    "uid",
    "gid",
    "pidfile",
    "master-worker",
    "runtime_apis",
    "nbproc",
    "cpu_maps",
    "log_targets",
    "stats_timeout",
    "tune_options",
    "tune_ssl_default_dh_param",
    "ssl_default_bind_ciphers",
    "ssl_default_bind_ciphersuites",
    "ssl_default_bind_options",
    "ssl_default_server_ciphers",
    "ssl_default_server_ciphersuites",
    "ssl_default_server_options",
    "external_check",
    "lua_loads",
    "localpeer",
    "node",
    "description",
];

pub fn get(doc: &DocumentMut) -> Json {
    let Some(t) = doc.get("global").and_then(|i| i.as_table_like()) else {
        return json::to_value(&Global::default());
    };
    json::to_value(&Global {
        maxconn: get_int(t, "maxconn").map(|n| n as u32),
        nbthread: get_int(t, "nbthread").map(|n| n as u32),
        spread_checks: get_int(t, "spread_checks").map(|n| n as u32),
        hard_stop_after: get_ms(t, "hard_stop_after"),
    })
}

pub fn replace(doc: &mut DocumentMut, body: &Json) -> ApiResult<Json> {
    let g: Global = json::decode(body, HAPROXY_ONLY)?;
    super::common::nonzero("maxconn", g.maxconn)?;
    super::common::nonzero("nbthread", g.nbthread)?;
    if let Some(s) = g.spread_checks {
        json::check_range("spread_checks", i64::from(s), 0, 50)?;
    }
    let t = doc
        .entry("global")
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| ApiError::Internal("`global` in the config is not a table".into()))?;
    set_int(t, "maxconn", g.maxconn.map(i64::from));
    set_int(t, "nbthread", g.nbthread.map(i64::from));
    set_int(t, "spread_checks", g.spread_checks.map(i64::from));
    set_ms(t, "hard_stop_after", g.hard_stop_after);
    Ok(json::to_value(&g))
}
