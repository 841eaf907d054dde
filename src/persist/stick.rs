//! Stick rules (`stick on|match|store-request|store-response <fetch>`) and the sample fetches they
//! read, plus HAProxy 1.4's `appsession` expressed as the same rules over a string table.

use super::cookie;
use super::table::StickKey;
pub use crate::config::persist_spec::{
    DEFAULT_STRING_LEN, Fetch, FetchError, KeyType, Rule, RuleKind, StickCond, StickExpr, TableSpec, appsession_rules,
};
use http::{HeaderMap, Uri};
use std::net::IpAddr;

impl Fetch {
    /// The request-side value, as text or an address.
    pub fn request_value(&self, req: &ReqView<'_>) -> Option<Value> {
        match self {
            Fetch::Src => req.src.map(Value::Ip),
            Fetch::ReqCookie(n) => cookie::request_cookie(req.headers, n).map(Value::text),
            Fetch::ReqHdr(n) => last_hdr(req.headers, n).map(Value::text),
            Fetch::UrlParam(n) => req.uri.and_then(|u| query_param(u, n)).map(Value::text),
            Fetch::SessionId(n) => cookie::request_cookie(req.headers, n)
                .or_else(|| req.uri.and_then(|u| path_param(u.path(), n)))
                .or_else(|| req.uri.and_then(|u| query_param(u, n)))
                .filter(|v| !v.is_empty())
                .map(Value::text),
            Fetch::ResCookie(_) | Fetch::ResHdr(_) | Fetch::Expr(_) => None,
        }
    }

    pub fn response_value(&self, headers: &HeaderMap) -> Option<Value> {
        match self {
            Fetch::ResCookie(n) => cookie::response_cookie(headers, n).filter(|v| !v.is_empty()).map(Value::text),
            Fetch::ResHdr(n) => last_hdr(headers, n).map(Value::text),
            _ => None,
        }
    }
}

/// The request facts fetches read.
#[derive(Debug, Clone, Copy)]
pub struct ReqView<'a> {
    pub headers: &'a HeaderMap,
    pub uri: Option<&'a Uri>,
    pub src: Option<IpAddr>,
}

/// What stick rules read beyond the plain request: their conditions and their sample
/// expressions, evaluated by the proxy over the stream (variables, converters, the response).
pub trait Stream {
    /// Whether a rule's `if`/`unless` holds.
    fn holds(&self, c: &StickCond) -> bool;
    /// The sample of a rule's expression, `None` when it cannot be produced (the rule is skipped).
    fn sample(&self, e: &StickExpr) -> Option<crate::sample::Value>;
}

/// No stream: every condition holds and expressions give nothing (TCP hooks, tests).
pub struct NoStream;

impl Stream for NoStream {
    fn holds(&self, _: &StickCond) -> bool {
        true
    }
    fn sample(&self, _: &StickExpr) -> Option<crate::sample::Value> {
        None
    }
}

/// A fetched sample before it is cast to the table's key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Ip(IpAddr),
    Text(String),
    /// A sample expression's typed value, cast with HAProxy's sample casts.
    Sample(crate::sample::Value),
}

impl Value {
    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    /// Casts to the table's type; None when it does not convert (such a sample is ignored).
    pub fn key(self, t: KeyType) -> Option<StickKey> {
        use crate::sample::{SmpType, Value as S};
        match (t, self) {
            // A typed sample is cast as HAProxy casts it to the table's key type (`ip`: IPv4,
            // an address kept as it is, as `src` is; `integer`: a signed integer; `string`: text).
            (KeyType::Ip, Value::Sample(S::Ipv4(a))) => Some(StickKey::Ip(a.into())),
            (KeyType::Ip, Value::Sample(S::Ipv6(a))) => Some(StickKey::Ip(a.into())),
            (KeyType::Ip, Value::Sample(v)) => match v.cast(SmpType::Ipv4)? {
                S::Ipv4(a) => Some(StickKey::Ip(a.into())),
                _ => None,
            },
            (KeyType::Integer, Value::Sample(v)) => match v.cast(SmpType::Sint)? {
                S::Sint(i) => Some(StickKey::Int(i)),
                _ => None,
            },
            (t @ KeyType::String { .. }, Value::Sample(v)) => match v.cast(SmpType::Str)? {
                S::Str(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()).key(t),
                _ => None,
            },
            (KeyType::Ip, Value::Ip(a)) => Some(StickKey::Ip(a)),
            (KeyType::Ip, Value::Text(s)) => s.trim().parse().ok().map(StickKey::Ip),
            (KeyType::Integer, Value::Text(s)) => s.trim().parse().ok().map(StickKey::Int),
            (KeyType::Integer, Value::Ip(_)) => None,
            (KeyType::String { len }, v) => {
                let mut s = match v {
                    Value::Ip(a) => a.to_string(),
                    Value::Text(s) => s,
                    Value::Sample(_) => return None,
                };
                if s.len() > len {
                    let mut cut = len;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                }
                (!s.is_empty()).then(|| StickKey::Str(s.into_boxed_str()))
            }
        }
    }
}

fn last_hdr<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .next_back()
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `NAME=value` from the query string (first occurrence, no decoding, as HAProxy's `url_param`).
pub fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// `;NAME=value` in the path (`/shop;jsessionid=ABC?x=1`), name case-insensitive; the value ends
/// at the next `;`, `/` or the end of the path.
pub fn path_param<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    path.split(';').skip(1).find_map(|seg| {
        let (k, v) = seg.split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.split('/').next().unwrap_or(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parse_every_fetch_form() {
        assert_eq!(Fetch::parse("src"), Ok(Fetch::Src));
        for (t, f) in [
            ("cookie(SID)", Fetch::ReqCookie("SID".into())),
            ("req.cook(SID)", Fetch::ReqCookie("SID".into())),
            ("hdr(X-User)", Fetch::ReqHdr("X-User".into())),
            ("req.hdr(X-User)", Fetch::ReqHdr("X-User".into())),
            ("url_param(id)", Fetch::UrlParam("id".into())),
            ("urlp(id)", Fetch::UrlParam("id".into())),
            ("res.cook(JSESSIONID)", Fetch::ResCookie("JSESSIONID".into())),
            ("set-cookie(JSESSIONID)", Fetch::ResCookie("JSESSIONID".into())),
            ("res.hdr(X-Srv)", Fetch::ResHdr("X-Srv".into())),
            ("shdr(X-Srv)", Fetch::ResHdr("X-Srv".into())),
        ] {
            assert_eq!(Fetch::parse(t).as_ref(), Ok(&f), "{t}");
            assert_eq!(f.on_response(), t.starts_with("res") || t.starts_with("s"));
        }
        assert_eq!(Fetch::parse("dst"), Err(FetchError::Unknown));
        assert_eq!(Fetch::parse("cookie(SID"), Err(FetchError::Unknown));
        assert_eq!(Fetch::parse("cookie()"), Err(FetchError::MissingName("cookie".into())));
    }

    #[test]
    fn request_values() {
        let h = headers(&[("cookie", "SID=abc; x=1"), ("x-user", "a, b"), ("x-user", "c , d ")]);
        let uri: Uri = "/p;JSESSIONID=pp1/x?id=42&JSESSIONID=qq".parse().unwrap();
        let src: IpAddr = "127.0.0.9".parse().unwrap();
        let r = ReqView { headers: &h, uri: Some(&uri), src: Some(src) };
        let val = |f: &str| Fetch::parse(f).unwrap().request_value(&r);
        assert_eq!(val("src"), Some(Value::Ip(src)));
        assert_eq!(val("cookie(SID)"), Some(Value::text("abc")));
        assert_eq!(val("hdr(x-user)"), Some(Value::text("d")));
        assert_eq!(val("url_param(id)"), Some(Value::text("42")));
        assert_eq!(val("url_param(nope)"), None);
        assert_eq!(val("res.cook(SID)"), None, "response fetch on a request");
        // Session id: cookie first, then path parameter, then query parameter.
        let sid = |h: &HeaderMap, u: &str| {
            let uri: Uri = u.parse().unwrap();
            Fetch::SessionId("JSESSIONID".into()).request_value(&ReqView { headers: h, uri: Some(&uri), src: None })
        };
        let with_cookie = headers(&[("cookie", "JSESSIONID=ck")]);
        assert_eq!(sid(&with_cookie, "/a;jsessionid=pp"), Some(Value::text("ck")));
        assert_eq!(sid(&HeaderMap::new(), "/a;jsessionid=pp?JSESSIONID=q"), Some(Value::text("pp")));
        assert_eq!(sid(&HeaderMap::new(), "/a?JSESSIONID=q"), Some(Value::text("q")));
        assert_eq!(sid(&HeaderMap::new(), "/a"), None);
    }

    #[test]
    fn response_values() {
        let h = headers(&[("set-cookie", "JSESSIONID=xyz; Path=/"), ("x-srv", "s2")]);
        let val = |f: &str| Fetch::parse(f).unwrap().response_value(&h);
        assert_eq!(val("res.cook(JSESSIONID)"), Some(Value::text("xyz")));
        assert_eq!(val("res.hdr(x-srv)"), Some(Value::text("s2")));
        assert_eq!(val("cookie(JSESSIONID)"), None);
    }

    #[test]
    fn path_params() {
        assert_eq!(path_param("/a;jsessionid=ABC", "JSESSIONID"), Some("ABC"));
        assert_eq!(path_param("/a;jsessionid=ABC/b", "JSESSIONID"), Some("ABC"));
        assert_eq!(path_param("/a;x=1;JSESSIONID=Z", "JSESSIONID"), Some("Z"));
        assert_eq!(path_param("/a", "JSESSIONID"), None);
    }

    #[test]
    fn casts_to_table_types() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(Value::Ip(ip).key(KeyType::Ip), Some(StickKey::Ip(ip)));
        assert_eq!(Value::text("10.0.0.1").key(KeyType::Ip), Some(StickKey::Ip(ip)));
        assert_eq!(Value::text("nope").key(KeyType::Ip), None);
        assert_eq!(Value::text("-7").key(KeyType::Integer), Some(StickKey::Int(-7)));
        assert_eq!(Value::text("x").key(KeyType::Integer), None);
        assert_eq!(Value::Ip(ip).key(KeyType::Integer), None);
        assert_eq!(Value::Ip(ip).key(KeyType::String { len: 32 }), Some(StickKey::Str("10.0.0.1".into())));
        assert_eq!(Value::text("abcdef").key(KeyType::String { len: 4 }), Some(StickKey::Str("abcd".into())));
        assert_eq!(
            Value::text("ééé").key(KeyType::String { len: 3 }),
            Some(StickKey::Str("é".into())),
            "cut on a char boundary"
        );
        assert_eq!(Value::text("").key(KeyType::String { len: 3 }), None);
    }

    #[test]
    fn typed_samples_cast_as_haproxy_casts_to_the_table_type() {
        use crate::sample::Value as S;
        let v4: std::net::Ipv4Addr = "10.1.2.0".parse().unwrap();
        let smp = |v: S, t: KeyType| Value::Sample(v).key(t);
        assert_eq!(smp(S::Ipv4(v4), KeyType::Ip), Some(StickKey::Ip(v4.into())));
        assert_eq!(smp(S::str("10.1.2.0"), KeyType::Ip), Some(StickKey::Ip(v4.into())));
        assert_eq!(smp(S::Sint(1), KeyType::Ip), Some(StickKey::Ip("0.0.0.1".parse().unwrap())));
        assert_eq!(smp(S::str("alice"), KeyType::Ip), None, "not an address: no key");
        assert_eq!(smp(S::Ipv4(v4), KeyType::Integer), Some(StickKey::Int(0x0a01_0200)));
        assert_eq!(smp(S::str("42abc"), KeyType::Integer), Some(StickKey::Int(42)), "HAProxy's read_int64");
        assert_eq!(smp(S::Bool(true), KeyType::Integer), Some(StickKey::Int(1)));
        assert_eq!(smp(S::Sint(-3), KeyType::String { len: 8 }), Some(StickKey::Str("-3".into())));
        assert_eq!(smp(S::Ipv4(v4), KeyType::String { len: 32 }), Some(StickKey::Str("10.1.2.0".into())));
        assert_eq!(smp(S::str("abcdefgh"), KeyType::String { len: 4 }), Some(StickKey::Str("abcd".into())));
        assert_eq!(smp(S::Bin(b"ab\0cd".to_vec()), KeyType::String { len: 8 }), Some(StickKey::Str("ab".into())));
        assert_eq!(smp(S::str(""), KeyType::String { len: 8 }), None, "an empty key is no key");
    }

    #[test]
    fn appsession_maps_to_rules() {
        let r = appsession_rules("JSESSIONID", false);
        assert_eq!(r.len(), 2);
        assert!(r[0].matches() && !r[0].stores_request());
        assert_eq!(r[1].kind, RuleKind::StoreResponse);
        let r = appsession_rules("JSESSIONID", true);
        assert!(r[2].stores_request());
    }
}
