//! `http_request_rules?parent_type=&parent_name=`: a proxy's `http_request` list.

use super::indexed::{Cond, Indexed};
use super::*;
use crate::api::json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::{Array, InlineTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleType {
    Deny,
    Redirect,
    SetHeader,
    AddHeader,
    DelHeader,
    Return,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirType {
    Location,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnHdr {
    pub name: String,
    pub fmt: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestRule {
    pub index: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<RuleType>,
    pub cond: Option<Cond>,
    pub cond_test: Option<String>,
    pub deny_status: Option<u16>,
    pub redir_type: Option<RedirType>,
    pub redir_value: Option<String>,
    pub redir_code: Option<u16>,
    pub hdr_name: Option<String>,
    pub hdr_format: Option<String>,
    pub return_status_code: Option<u16>,
    pub return_content: Option<String>,
    pub return_content_type: Option<String>,
    pub return_content_format: Option<String>,
    pub return_hdrs: Option<Vec<ReturnHdr>>,
}

const HAPROXY_ONLY: &[&str] = &[
    "hdr_match",
    "var_name",
    "var_scope",
    "var_expr",
    "redir_option",
    "auth_realm",
    "capture_id",
    "capture_len",
    "capture_sample",
    "lua_action",
    "lua_params",
    "service_name",
    "track_sc0_key",
    "track_sc0_table",
    "path_fmt",
    "path_match",
    "uri_fmt",
    "uri_match",
    "log_level",
    "nice_value",
    "map_file",
    "map_keyfmt",
    "map_valuefmt",
    "acl_file",
    "acl_keyfmt",
    "spoe_engine",
    "spoe_group",
    "deny_status_code",
];

fn need<'a>(v: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    v.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| ApiError::required(field, "body"))
}

impl Indexed for HttpRequestRule {
    const KEY: &'static str = "http_request";

    fn decode(body: &Json) -> ApiResult<(Option<i64>, Self)> {
        let r: HttpRequestRule = json::decode(body, HAPROXY_ONLY)?;
        if r.kind.is_none() {
            return Err(ApiError::required("type", "body"));
        }
        if let Some(s) = r.deny_status {
            json::check_range("deny_status", i64::from(s), 200, 599)?;
        }
        if let Some(s) = r.return_status_code {
            json::check_range("return_status_code", i64::from(s), 200, 599)?;
        }
        if let Some(c) = r.redir_code
            && ![301, 302, 303, 307, 308].contains(&c)
        {
            return Err(ApiError::Schema {
                code: 606,
                message: "redir_code in body should be one of [301 302 303 307 308]".into(),
            });
        }
        if let Some(f) = &r.return_content_format
            && f != "string"
        {
            return Err(ApiError::unsupported(
                "return_content_format",
                "lbha returns literal content only (\"string\")",
            ));
        }
        Ok((r.index, r))
    }

    fn read(v: &toml_edit::Value, index: usize) -> Option<Json> {
        let t = v.as_inline_table()?;
        let (cond, cond_test) = read_cond(t);
        let mut r = HttpRequestRule {
            index: Some(index as i64),
            cond: cond.and_then(|c| serde_json::from_value(Json::String(c)).ok()),
            cond_test,
            ..Default::default()
        };
        if let Some(d) = sub(t, "deny") {
            r.kind = Some(RuleType::Deny);
            r.deny_status = get_int(d, "status").map(|n| n as u16);
        } else if let Some(d) = sub(t, "redirect") {
            r.kind = Some(RuleType::Redirect);
            if let Some(l) = get_str(d, "location") {
                r.redir_type = Some(RedirType::Location);
                r.redir_value = Some(l);
            } else if let Some(p) = get_str(d, "prefix") {
                r.redir_type = Some(RedirType::Prefix);
                r.redir_value = Some(p);
            }
            r.redir_code = get_int(d, "code").map(|n| n as u16);
        } else if let Some((kind, key)) = [(RuleType::SetHeader, "set_header"), (RuleType::AddHeader, "add_header")]
            .into_iter()
            .find(|(_, k)| t.contains_key(k))
        {
            let h = sub(t, key)?;
            r.kind = Some(kind);
            r.hdr_name = get_str(h, "name");
            r.hdr_format = get_str(h, "value");
        } else if let Some(h) = get_str(t, "del_header") {
            r.kind = Some(RuleType::DelHeader);
            r.hdr_name = Some(h);
        } else if let Some(d) = sub(t, "return") {
            r.kind = Some(RuleType::Return);
            r.return_status_code = get_int(d, "status").map(|n| n as u16);
            r.return_content_type = get_str(d, "content_type");
            r.return_content = get_str(d, "body");
            if r.return_content.is_some() {
                r.return_content_format = Some("string".into());
            }
            let hdrs: Vec<ReturnHdr> = array(d, "headers")
                .into_iter()
                .flat_map(|a| a.iter())
                .filter_map(|v| v.as_str())
                .filter_map(|h| h.split_once(':'))
                .map(|(n, f)| ReturnHdr { name: n.trim().to_string(), fmt: f.trim().to_string() })
                .collect();
            r.return_hdrs = (!hdrs.is_empty()).then_some(hdrs);
        } else {
            return None;
        }
        Some(json::to_value(&r))
    }

    fn to_toml(&self) -> ApiResult<toml_edit::Value> {
        let mut t = InlineTable::new();
        let mut a = InlineTable::new();
        match self.kind {
            Some(RuleType::Deny) => {
                if let Some(s) = self.deny_status {
                    a.insert("status", i64::from(s).into());
                }
                t.insert("deny", a.into());
            }
            Some(RuleType::Redirect) => {
                let value = need(&self.redir_value, "redir_value")?;
                let key = match self.redir_type {
                    Some(RedirType::Location) => "location",
                    Some(RedirType::Prefix) => "prefix",
                    None => return Err(ApiError::required("redir_type", "body")),
                };
                a.insert(key, value.into());
                if let Some(c) = self.redir_code {
                    a.insert("code", i64::from(c).into());
                }
                t.insert("redirect", a.into());
            }
            Some(k @ (RuleType::SetHeader | RuleType::AddHeader)) => {
                a.insert("name", need(&self.hdr_name, "hdr_name")?.into());
                a.insert("value", need(&self.hdr_format, "hdr_format")?.into());
                let key = if k == RuleType::SetHeader { "set_header" } else { "add_header" };
                t.insert(key, a.into());
            }
            Some(RuleType::DelHeader) => {
                t.insert("del_header", need(&self.hdr_name, "hdr_name")?.into());
            }
            Some(RuleType::Return) => {
                if let Some(s) = self.return_status_code {
                    a.insert("status", i64::from(s).into());
                }
                if let Some(ct) = &self.return_content_type {
                    a.insert("content_type", ct.as_str().into());
                }
                if let Some(b) = &self.return_content {
                    a.insert("body", b.as_str().into());
                }
                if let Some(h) = &self.return_hdrs {
                    let arr: Array = h.iter().map(|h| format!("{}: {}", h.name, h.fmt)).collect();
                    a.insert("headers", arr.into());
                }
                t.insert("return", a.into());
            }
            None => return Err(ApiError::required("type", "body")),
        }
        write_cond(&mut t, self.cond, self.cond_test.as_deref())?;
        Ok(t.into())
    }
}
