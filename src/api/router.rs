//! The route table. The router matches requests against this table itself, so the table is
//! the full list of routes, and a test checks each one against the OpenAPI document.

use super::error::ApiError;

pub const BASE: &str = "/v2";

/// (method, path template under [`BASE`]); `{x}` matches one path segment.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/services"),
    ("GET", "/services/haproxy"),
    ("GET", "/services/haproxy/configuration"),
    ("GET", "/services/haproxy/runtime"),
    ("GET", "/info"),
    ("GET", "/health"),
    ("GET", "/specification"),
    ("GET", "/services/haproxy/configuration/version"),
    ("GET", "/services/haproxy/configuration/backends"),
    ("POST", "/services/haproxy/configuration/backends"),
    ("GET", "/services/haproxy/configuration/backends/{name}"),
    ("PUT", "/services/haproxy/configuration/backends/{name}"),
    ("DELETE", "/services/haproxy/configuration/backends/{name}"),
    ("GET", "/services/haproxy/configuration/servers"),
    ("POST", "/services/haproxy/configuration/servers"),
    ("GET", "/services/haproxy/configuration/servers/{name}"),
    ("PUT", "/services/haproxy/configuration/servers/{name}"),
    ("DELETE", "/services/haproxy/configuration/servers/{name}"),
    ("GET", "/services/haproxy/configuration/server_templates"),
    ("POST", "/services/haproxy/configuration/server_templates"),
    ("GET", "/services/haproxy/configuration/server_templates/{prefix}"),
    ("PUT", "/services/haproxy/configuration/server_templates/{prefix}"),
    ("DELETE", "/services/haproxy/configuration/server_templates/{prefix}"),
    ("GET", "/services/haproxy/configuration/frontends"),
    ("POST", "/services/haproxy/configuration/frontends"),
    ("GET", "/services/haproxy/configuration/frontends/{name}"),
    ("PUT", "/services/haproxy/configuration/frontends/{name}"),
    ("DELETE", "/services/haproxy/configuration/frontends/{name}"),
    ("GET", "/services/haproxy/configuration/binds"),
    ("POST", "/services/haproxy/configuration/binds"),
    ("GET", "/services/haproxy/configuration/binds/{name}"),
    ("PUT", "/services/haproxy/configuration/binds/{name}"),
    ("DELETE", "/services/haproxy/configuration/binds/{name}"),
    ("GET", "/services/haproxy/configuration/backend_switching_rules"),
    ("POST", "/services/haproxy/configuration/backend_switching_rules"),
    ("GET", "/services/haproxy/configuration/backend_switching_rules/{index}"),
    ("PUT", "/services/haproxy/configuration/backend_switching_rules/{index}"),
    ("DELETE", "/services/haproxy/configuration/backend_switching_rules/{index}"),
    ("GET", "/services/haproxy/configuration/server_switching_rules"),
    ("POST", "/services/haproxy/configuration/server_switching_rules"),
    ("GET", "/services/haproxy/configuration/server_switching_rules/{index}"),
    ("PUT", "/services/haproxy/configuration/server_switching_rules/{index}"),
    ("DELETE", "/services/haproxy/configuration/server_switching_rules/{index}"),
    ("GET", "/services/haproxy/configuration/acls"),
    ("POST", "/services/haproxy/configuration/acls"),
    ("GET", "/services/haproxy/configuration/acls/{index}"),
    ("PUT", "/services/haproxy/configuration/acls/{index}"),
    ("DELETE", "/services/haproxy/configuration/acls/{index}"),
    ("GET", "/services/haproxy/configuration/http_request_rules"),
    ("POST", "/services/haproxy/configuration/http_request_rules"),
    ("GET", "/services/haproxy/configuration/http_request_rules/{index}"),
    ("PUT", "/services/haproxy/configuration/http_request_rules/{index}"),
    ("DELETE", "/services/haproxy/configuration/http_request_rules/{index}"),
    ("GET", "/services/haproxy/configuration/defaults"),
    ("PUT", "/services/haproxy/configuration/defaults"),
    ("GET", "/services/haproxy/configuration/named_defaults"),
    ("GET", "/services/haproxy/configuration/named_defaults/{name}"),
    ("PUT", "/services/haproxy/configuration/named_defaults/{name}"),
    ("GET", "/services/haproxy/configuration/raw"),
    ("POST", "/services/haproxy/configuration/raw"),
    ("GET", "/services/haproxy/configuration/global"),
    ("PUT", "/services/haproxy/configuration/global"),
    ("GET", "/services/haproxy/transactions"),
    ("POST", "/services/haproxy/transactions"),
    ("GET", "/services/haproxy/transactions/{id}"),
    ("PUT", "/services/haproxy/transactions/{id}"),
    ("DELETE", "/services/haproxy/transactions/{id}"),
    ("GET", "/services/haproxy/reloads"),
    ("GET", "/services/haproxy/reloads/{id}"),
    ("GET", "/services/haproxy/runtime/info"),
    ("GET", "/services/haproxy/runtime/servers"),
    ("POST", "/services/haproxy/runtime/servers"),
    ("GET", "/services/haproxy/runtime/servers/{name}"),
    ("PUT", "/services/haproxy/runtime/servers/{name}"),
    ("GET", "/services/haproxy/runtime/stick_tables"),
    ("GET", "/services/haproxy/runtime/stick_tables/{name}"),
    ("GET", "/services/haproxy/runtime/stick_table_entries"),
    ("DELETE", "/services/haproxy/runtime/servers/{name}"),
    ("GET", "/services/haproxy/stats/native"),
];

/// A matched route: its template and the value of its `{param}`, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    pub method: &'static str,
    pub template: &'static str,
    pub param: Option<String>,
}

fn segments(p: &str) -> Vec<&str> {
    p.split('/').filter(|s| !s.is_empty()).collect()
}

/// 404 for an unknown path, 405 for a known path with another method.
pub fn route(method: &str, path: &str) -> Result<Matched, ApiError> {
    let rest = path
        .strip_prefix(BASE)
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .ok_or_else(|| ApiError::NotFound(format!("path {path} was not found")))?;
    let got = segments(rest);
    let mut path_known = false;
    for &(m, template) in ROUTES {
        let want = segments(template);
        if want.len() != got.len() {
            continue;
        }
        let mut param = None;
        let ok = want.iter().zip(&got).all(|(w, g)| {
            if w.starts_with('{') {
                param = Some(percent_encoding::percent_decode_str(g).decode_utf8_lossy().into_owned());
                true
            } else {
                w == g
            }
        });
        if !ok {
            continue;
        }
        path_known = true;
        if m == method {
            return Ok(Matched { method: m, template, param });
        }
    }
    if path_known {
        Err(ApiError::MethodNotAllowed(format!("method {method} is not allowed on {path}")))
    } else {
        Err(ApiError::NotFound(format!("path {path} was not found")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_and_decodes_params() {
        let m = route("GET", "/v2/services/haproxy/configuration/backends/a%20b").unwrap();
        assert_eq!(m.template, "/services/haproxy/configuration/backends/{name}");
        assert_eq!(m.param.as_deref(), Some("a b"));
        assert_eq!(route("GET", "/v2/").unwrap().template, "/");
        assert_eq!(route("PATCH", "/v2/info").unwrap_err().status(), 405);
        assert_eq!(route("GET", "/v2/nope").unwrap_err().status(), 404);
        assert_eq!(route("GET", "/v3/info").unwrap_err().status(), 404);
        assert_eq!(route("GET", "/v2info").unwrap_err().status(), 404);
    }

    /// Every route is in the OpenAPI document with its method, and every path of the document
    /// is routed.
    #[test]
    fn every_route_is_in_the_specification() {
        let spec: serde_json::Value = serde_json::from_str(super::super::spec::OPENAPI).expect("openapi.json parses");
        assert_eq!(spec["basePath"], BASE);
        let paths = spec["paths"].as_object().expect("paths");
        for (m, t) in ROUTES {
            let ops = paths.get(*t).unwrap_or_else(|| panic!("{t} is not in openapi.json"));
            assert!(ops.get(m.to_lowercase()).is_some(), "{m} {t} is not in openapi.json");
        }
        for (p, ops) in paths {
            for m in ops.as_object().expect("operations").keys() {
                if m == "parameters" {
                    continue;
                }
                assert!(
                    ROUTES.iter().any(|(rm, rt)| rt == p && rm.eq_ignore_ascii_case(m)),
                    "openapi.json has {m} {p}, which the router does not serve"
                );
            }
        }
    }
}
