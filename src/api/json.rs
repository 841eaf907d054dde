//! Request bodies: strict decoding with errors that name the field, in the Data Plane API's
//! status codes (400 for malformed input, 422 with go-openapi codes for schema violations).

use super::error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// HAProxy's on/off fields are the strings `enabled` / `disabled`, not booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Toggle {
    Enabled,
    Disabled,
}

impl Toggle {
    pub fn on(b: bool) -> Self {
        if b { Toggle::Enabled } else { Toggle::Disabled }
    }
    pub fn is_on(self) -> bool {
        self == Toggle::Enabled
    }
}

/// Parses a request body as JSON (400 on syntax errors).
pub fn parse_body(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("body: a JSON object is required".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("body: invalid JSON: {e}")))
}

/// Decodes a resource. Nulls mean "not set" (the original's nullable fields); `haproxy_only`
/// lists fields HAProxy's API knows but lbha has no setting for, so they get a precise error.
pub fn decode<T: DeserializeOwned>(body: &Value, haproxy_only: &[&str]) -> ApiResult<T> {
    if !body.is_object() {
        return Err(ApiError::BadRequest(format!("body: expected a JSON object, got {}", kind(body))));
    }
    let cleaned = strip_nulls(body.clone());
    serde_path_to_error::deserialize::<_, T>(cleaned).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        classify(&path, &msg, haproxy_only)
    })
}

fn classify(path: &str, msg: &str, haproxy_only: &[&str]) -> ApiError {
    let prefix = |field: &str| {
        if path == "." || path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
    };
    if let Some(field) = between(msg, "missing field `", "`") {
        return ApiError::required(&prefix(field), "body");
    }
    if let Some(field) = between(msg, "unknown field `", "`") {
        // The path of an unknown field already ends with the field.
        let full = if path == "." || path.is_empty() { field.to_string() } else { path.to_string() };
        if haproxy_only.contains(&full.as_str()) {
            return ApiError::unsupported(&full, "HAProxy's API has this field; lbha has no such setting");
        }
        let expected = msg.split_once(", expected ").map(|x| x.1).unwrap_or("");
        return ApiError::BadRequest(format!("{full}: unknown field (expected {expected})"));
    }
    if msg.starts_with("unknown variant") {
        let allowed: Vec<&str> = msg
            .split_once("expected ")
            .map(|x| x.1)
            .unwrap_or("")
            .split([',', ' '])
            .map(|s| s.trim_matches('`'))
            .filter(|s| !s.is_empty() && *s != "one" && *s != "of" && *s != "or")
            .collect();
        return ApiError::Schema {
            code: 606,
            message: format!("{path} in body should be one of [{}]", allowed.join(" ")),
        };
    }
    ApiError::BadRequest(format!("{path}: {msg}"))
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let rest = s.split_once(a)?.1;
    Some(rest.split_once(b)?.0)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        other => other,
    }
}

/// Names of proxies, servers, binds and backends: the original's pattern `^[A-Za-z0-9-_.:]+$`.
pub fn check_name(field: &str, v: &str) -> ApiResult<()> {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        return Err(ApiError::pattern(field, "^[A-Za-z0-9-_.:]+$"));
    }
    Ok(())
}

pub fn check_range(field: &str, v: i64, min: i64, max: i64) -> ApiResult<()> {
    if v < min || v > max {
        return Err(ApiError::range(field, min, max, v));
    }
    Ok(())
}

/// Strings the original forbids whitespace in (addresses, criteria).
pub fn check_no_space(field: &str, v: &str) -> ApiResult<()> {
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        return Err(ApiError::pattern(field, "^[^\\s]+$"));
    }
    Ok(())
}

/// A resource as JSON, without the fields it does not set (as the original omits them).
pub fn to_value<T: Serialize>(v: &T) -> Value {
    strip_nulls(serde_json::to_value(v).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        port: Option<u16>,
        check: Option<Toggle>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = decode::<T>(&json!({"port": 1}), &[]).unwrap_err();
        assert_eq!(e, ApiError::required("name", "body"));
        let e = decode::<T>(&json!({"name": "a", "port": "x"}), &[]).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("port: invalid type"), "{e}");
        let e = decode::<T>(&json!({"name": "a", "check": "on"}), &[]).unwrap_err();
        assert_eq!(e.code(), 606);
        assert_eq!(e.to_string(), "check in body should be one of [enabled disabled]");
        let e = decode::<T>(&json!({"name": "a", "cookie": "x"}), &["cookie"]).unwrap_err();
        assert!(e.to_string().starts_with("cookie: not supported by lbha"), "{e}");
        let e = decode::<T>(&json!({"name": "a", "bogus": 1}), &[]).unwrap_err();
        assert!(e.to_string().starts_with("bogus: unknown field"), "{e}");
        let e = decode::<T>(&json!([1]), &[]).unwrap_err();
        assert_eq!(e.to_string(), "body: expected a JSON object, got an array");
        assert!(decode::<T>(&json!({"name": "a", "port": null}), &[]).is_ok());
        assert!(parse_body(b"{\"name\": ").unwrap_err().to_string().starts_with("body: invalid JSON"));
    }
}
