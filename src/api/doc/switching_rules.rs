//! `backend_switching_rules?frontend=` (a frontend's `use_backend` list) and
//! `server_switching_rules?backend=` (a backend's `use_server` list): both are a target with an
//! optional condition, stored as `{ KEY = "target", if|unless = "COND" }`.

use super::indexed::{Cond, Indexed};
use super::*;
use crate::api::json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::InlineTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub index: Option<i64>,
    /// Data Plane API v1's name for `index`; used only when `index` is absent.
    #[serde(skip_serializing)]
    pub id: Option<i64>,
    pub name: String,
    pub cond: Option<Cond>,
    pub cond_test: Option<String>,
}

/// `use-server TARGET [if|unless COND]`; the target may be a log-format string (`%[...]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRule {
    pub index: Option<i64>,
    pub target_server: String,
    pub cond: Option<Cond>,
    pub cond_test: Option<String>,
}

/// The target at `key` of a stored rule, with its condition.
fn read_target(v: &toml_edit::Value, key: &str) -> Option<(String, Option<Cond>, Option<String>)> {
    let t = v.as_inline_table()?;
    let (cond, cond_test) = read_cond(t);
    Some((get_str(t, key)?, cond.and_then(|c| serde_json::from_value(Json::String(c)).ok()), cond_test))
}

fn target_toml(key: &str, target: &str, cond: Option<Cond>, cond_test: Option<&str>) -> ApiResult<toml_edit::Value> {
    let mut t = InlineTable::new();
    t.insert(key, target.into());
    write_cond(&mut t, cond, cond_test)?;
    Ok(t.into())
}

impl Indexed for Rule {
    const KEY: &'static str = "use_backend";

    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)> {
        let r: Rule = json::decode(body, &[])?;
        json::check_name("name", &r.name)?;
        Ok((r.index.or(r.id), r))
    }

    fn read(v: &toml_edit::Value, index: usize) -> Option<Json> {
        let (name, cond, cond_test) = read_target(v, "backend")?;
        Some(json::to_value(&Rule { index: Some(index as i64), id: None, name, cond, cond_test }))
    }

    fn to_toml(&self) -> ApiResult<toml_edit::Value> {
        target_toml("backend", &self.name, self.cond, self.cond_test.as_deref())
    }
}

impl Indexed for ServerRule {
    const KEY: &'static str = "use_server";

    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)> {
        let r: ServerRule = json::decode(body, &[])?;
        json::check_no_space("target_server", &r.target_server)?;
        Ok((r.index, r))
    }

    fn read(v: &toml_edit::Value, index: usize) -> Option<Json> {
        let (target_server, cond, cond_test) = read_target(v, "server")?;
        Some(json::to_value(&ServerRule { index: Some(index as i64), target_server, cond, cond_test }))
    }

    fn to_toml(&self) -> ApiResult<toml_edit::Value> {
        target_toml("server", &self.target_server, self.cond, self.cond_test.as_deref())
    }
}
