//! `backend_switching_rules?frontend=`: a frontend's `use_backend` list.

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

impl Indexed for Rule {
    const KEY: &'static str = "use_backend";

    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)> {
        let r: Rule = json::decode(body, &[])?;
        json::check_name("name", &r.name)?;
        Ok((r.index.or(r.id), r))
    }

    fn read(v: &toml_edit::Value, index: usize) -> Option<Json> {
        let t = v.as_inline_table()?;
        let (cond, cond_test) = read_cond(t);
        Some(json::to_value(&Rule {
            index: Some(index as i64),
            id: None,
            name: get_str(t, "backend")?,
            cond: cond.and_then(|c| serde_json::from_value(Json::String(c)).ok()),
            cond_test,
        }))
    }

    fn to_toml(&self) -> ApiResult<toml_edit::Value> {
        let mut t = InlineTable::new();
        t.insert("backend", self.name.as_str().into());
        write_cond(&mut t, self.cond, self.cond_test.as_deref())?;
        Ok(t.into())
    }
}
