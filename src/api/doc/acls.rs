//! `acls?parent_type=&parent_name=`: a proxy's `acl` list, `{ name, cond = "CRITERION VALUE" }`.

use super::indexed::Indexed;
use super::*;
use crate::api::json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::InlineTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    pub index: Option<i64>,
    pub acl_name: String,
    pub criterion: String,
    pub value: Option<String>,
}

impl Indexed for Acl {
    const KEY: &'static str = "acl";

    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)> {
        let a: Acl = json::decode(body, &[])?;
        json::check_name("acl_name", &a.acl_name)?;
        json::check_no_space("criterion", &a.criterion)?;
        Ok((a.index, a))
    }

    fn read(v: &toml_edit::Value, index: usize) -> Option<Json> {
        let t = v.as_inline_table()?;
        let cond = get_str(t, "cond")?;
        let (criterion, value) = match cond.trim().split_once(char::is_whitespace) {
            Some((c, v)) => (c.to_string(), Some(v.trim().to_string())),
            None => (cond.trim().to_string(), None),
        };
        Some(json::to_value(&Acl { index: Some(index as i64), acl_name: get_str(t, "name")?, criterion, value }))
    }

    fn to_toml(&self) -> ApiResult<toml_edit::Value> {
        let mut t = InlineTable::new();
        t.insert("name", self.acl_name.as_str().into());
        let cond = match self.value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => format!("{} {v}", self.criterion),
            _ => self.criterion.clone(),
        };
        t.insert("cond", cond.into());
        Ok(t.into())
    }
}
