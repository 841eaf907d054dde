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
    Allow,
    Tarpit,
    Auth,
    SetPath,
    SetUri,
    ReplacePath,
    ReplaceUri,
    ReplaceHeader,
    ReplaceValue,
    SetVar,
    UnsetVar,
    Capture,
    TrackSc0,
    TrackSc1,
    TrackSc2,
    SetLogLevel,
    UseService,
}

/// The rule types kept as one text at a key of lbha's rule, and the API field holding it.
const TEXT_RULES: &[(RuleType, &str, &str)] = &[
    (RuleType::SetPath, "set_path", "path_fmt"),
    (RuleType::SetUri, "set_uri", "uri_fmt"),
    (RuleType::SetLogLevel, "set_log_level", "log_level"),
    (RuleType::UseService, "use_service", "service_name"),
];

/// `replace-*` rules: the key, the API fields of the regex and the replacement, and whether
/// the rule names a header.
const REPLACE_RULES: &[(RuleType, &str, &str, &str, bool)] = &[
    (RuleType::ReplacePath, "replace_path", "path_match", "path_fmt", false),
    (RuleType::ReplaceUri, "replace_uri", "uri_match", "uri_fmt", false),
    (RuleType::ReplaceHeader, "replace_header", "hdr_match", "hdr_format", true),
    (RuleType::ReplaceValue, "replace_value", "hdr_match", "hdr_format", true),
];

const TRACK_RULES: &[(RuleType, &str)] =
    &[(RuleType::TrackSc0, "track_sc0"), (RuleType::TrackSc1, "track_sc1"), (RuleType::TrackSc2, "track_sc2")];

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
    pub hdr_match: Option<String>,
    pub path_fmt: Option<String>,
    pub path_match: Option<String>,
    pub uri_fmt: Option<String>,
    pub uri_match: Option<String>,
    pub auth_realm: Option<String>,
    pub var_scope: Option<String>,
    pub var_name: Option<String>,
    pub var_expr: Option<String>,
    pub capture_sample: Option<String>,
    pub capture_len: Option<i64>,
    pub capture_id: Option<i64>,
    pub track_sc0_key: Option<String>,
    pub track_sc0_table: Option<String>,
    pub track_sc1_key: Option<String>,
    pub track_sc1_table: Option<String>,
    pub track_sc2_key: Option<String>,
    pub track_sc2_table: Option<String>,
    pub log_level: Option<String>,
    pub service_name: Option<String>,
}

impl HttpRequestRule {
    /// The `track_scN_key` / `track_scN_table` fields of counter `n`.
    fn track(&mut self, n: usize) -> (&mut Option<String>, &mut Option<String>) {
        match n {
            0 => (&mut self.track_sc0_key, &mut self.track_sc0_table),
            1 => (&mut self.track_sc1_key, &mut self.track_sc1_table),
            _ => (&mut self.track_sc2_key, &mut self.track_sc2_table),
        }
    }

    /// The value of one of the text fields named in the tables above.
    fn field(&mut self, name: &str) -> &mut Option<String> {
        match name {
            "path_fmt" => &mut self.path_fmt,
            "path_match" => &mut self.path_match,
            "uri_fmt" => &mut self.uri_fmt,
            "uri_match" => &mut self.uri_match,
            "hdr_match" => &mut self.hdr_match,
            "hdr_format" => &mut self.hdr_format,
            "log_level" => &mut self.log_level,
            _ => &mut self.service_name,
        }
    }
}

const HAPROXY_ONLY: &[&str] = &[
    "redir_option",
    "lua_action",
    "lua_params",
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
        } else if get_bool(t, "allow") == Some(true) {
            r.kind = Some(RuleType::Allow);
        } else if let Some(d) = sub(t, "tarpit") {
            r.kind = Some(RuleType::Tarpit);
            r.deny_status = get_int(d, "status").map(|n| n as u16);
        } else if let Some(a) = sub(t, "auth") {
            r.kind = Some(RuleType::Auth);
            r.auth_realm = get_str(a, "realm");
        } else if let Some(v) = sub(t, "set_var") {
            r.kind = Some(RuleType::SetVar);
            let var = get_str(v, "var")?;
            let (scope, name) = var.split_once('.')?;
            (r.var_scope, r.var_name) = (Some(scope.to_string()), Some(name.to_string()));
            r.var_expr = get_str(v, "expr");
        } else if let Some(var) = get_str(t, "unset_var") {
            r.kind = Some(RuleType::UnsetVar);
            let (scope, name) = var.split_once('.')?;
            (r.var_scope, r.var_name) = (Some(scope.to_string()), Some(name.to_string()));
        } else if let Some(c) = sub(t, "capture") {
            r.kind = Some(RuleType::Capture);
            r.capture_sample = get_str(c, "sample");
            r.capture_len = get_int(c, "len");
            r.capture_id = get_int(c, "id");
        } else if let Some((i, (kind, key))) = TRACK_RULES.iter().enumerate().find(|(_, (_, k))| t.contains_key(k)) {
            r.kind = Some(*kind);
            let (k, tb) = match t.get(key)? {
                toml_edit::Value::String(s) => (Some(s.value().clone()), None),
                toml_edit::Value::InlineTable(f) => (get_str(f, "key"), get_str(f, "table")),
                _ => return None,
            };
            let (rk, rt) = r.track(i);
            (*rk, *rt) = (k, tb);
        } else if let Some((kind, key, field)) = TEXT_RULES.iter().find(|(_, k, _)| t.contains_key(k)) {
            r.kind = Some(*kind);
            *r.field(field) = get_str(t, key);
        } else if let Some((kind, key, re, fmt, hdr)) = REPLACE_RULES.iter().find(|(_, k, ..)| t.contains_key(k)) {
            let a = sub(t, key)?;
            r.kind = Some(*kind);
            *r.field(re) = get_str(a, "regex");
            *r.field(fmt) = get_str(a, "replace");
            if *hdr {
                r.hdr_name = get_str(a, "name");
            }
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
            Some(RuleType::Allow) => {
                t.insert("allow", true.into());
            }
            Some(RuleType::Tarpit) => {
                if let Some(s) = self.deny_status {
                    a.insert("status", i64::from(s).into());
                }
                t.insert("tarpit", a.into());
            }
            Some(RuleType::Auth) => {
                if let Some(r) = &self.auth_realm {
                    json::check_no_space("auth_realm", r)?;
                    a.insert("realm", r.as_str().into());
                }
                t.insert("auth", a.into());
            }
            Some(k @ (RuleType::SetVar | RuleType::UnsetVar)) => {
                let scope = need(&self.var_scope, "var_scope")?;
                if !["proc", "sess", "txn", "req", "res"].contains(&scope) {
                    return Err(ApiError::Schema {
                        code: 606,
                        message: "var_scope in body should be one of [proc sess txn req res]".into(),
                    });
                }
                let var = format!("{scope}.{}", need(&self.var_name, "var_name")?);
                if k == RuleType::UnsetVar {
                    t.insert("unset_var", var.into());
                } else {
                    a.insert("var", var.into());
                    a.insert("expr", need(&self.var_expr, "var_expr")?.into());
                    t.insert("set_var", a.into());
                }
            }
            Some(RuleType::Capture) => {
                a.insert("sample", need(&self.capture_sample, "capture_sample")?.into());
                match (self.capture_len, self.capture_id) {
                    (Some(l), None) => a.insert("len", l.into()),
                    (None, Some(i)) => a.insert("id", i.into()),
                    _ => {
                        return Err(ApiError::BadRequest(
                            "capture: give capture_len or capture_id (one of them)".into(),
                        ));
                    }
                };
                t.insert("capture", a.into());
            }
            Some(k @ (RuleType::TrackSc0 | RuleType::TrackSc1 | RuleType::TrackSc2)) => {
                let i = TRACK_RULES.iter().position(|(r, _)| *r == k).unwrap_or(0);
                let mut me = self.clone();
                let (key, table) = me.track(i);
                let field = format!("track_sc{i}_key");
                let key = need(key, &field)?;
                a.insert("key", key.into());
                if let Some(tb) = table {
                    a.insert("table", tb.as_str().into());
                }
                t.insert(TRACK_RULES[i].1, a.into());
            }
            Some(k) if TEXT_RULES.iter().any(|(r, ..)| *r == k) => {
                let (_, key, field) = TEXT_RULES.iter().find(|(r, ..)| *r == k).copied().unwrap_or(TEXT_RULES[0]);
                let mut me = self.clone();
                t.insert(key, need(me.field(field), field)?.into());
            }
            Some(k) => {
                let (_, key, re, fmt, hdr) =
                    REPLACE_RULES.iter().find(|(r, ..)| *r == k).copied().unwrap_or(REPLACE_RULES[0]);
                let mut me = self.clone();
                if hdr {
                    a.insert("name", need(&self.hdr_name, "hdr_name")?.into());
                }
                a.insert("regex", need(me.field(re), re)?.into());
                // An empty replacement is a real one (`replace-path /api(.*) \1` may yield "").
                a.insert("replace", me.field(fmt).clone().ok_or_else(|| ApiError::required(fmt, "body"))?.into());
                t.insert(key, a.into());
            }
            None => return Err(ApiError::required("type", "body")),
        }
        write_cond(&mut t, self.cond, self.cond_test.as_deref())?;
        Ok(t.into())
    }
}
