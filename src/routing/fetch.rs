//! Sample fetches: what an ACL looks at (`path`, `hdr(host)`, `src`, `nbsrv(be)`, ...).
//!
//! A fetch can produce several samples (every value of a header) or none (no such header, or an
//! HTTP fetch in TCP mode); an ACL matches when any sample matches, and never when there is none.

use super::pattern::{Kind, MatchMethod, Sample, StrMatch};
use super::{Facts, Live, RoutingError};
use http::HeaderName;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone)]
pub(super) enum Fetch {
    /// Path without the query string.
    Path,
    /// The request target as received (absolute-form keeps scheme and host, as in HAProxy).
    Url,
    Query,
    /// Every value of a query-string parameter (`urlp(name)`).
    UrlParam(String),
    /// Every comma-separated value of a header, as HAProxy's `hdr()` in ACLs.
    Hdr(HeaderName),
    /// Number of comma-separated values of a header, or of all headers.
    HdrCnt(Option<HeaderName>),
    /// Header values read as integers.
    HdrVal(HeaderName),
    /// Header values read as IP addresses (e.g. `X-Forwarded-For`).
    HdrIp(HeaderName),
    Method,
    Src,
    DstPort,
    /// Usable servers of a backend.
    Nbsrv(String),
    /// `always_true` / `always_false`.
    Always(bool),
    /// `req.proto_http`: the connection carries HTTP.
    ProtoHttp,
}

/// String fetches that take the `_beg`, `_end`, ... suffixes.
const SUFFIXES: [(&str, MatchMethod); 7] = [
    ("beg", MatchMethod::Str(StrMatch::Beg)),
    ("end", MatchMethod::Str(StrMatch::End)),
    ("sub", MatchMethod::Str(StrMatch::Sub)),
    ("dir", MatchMethod::Str(StrMatch::Dir)),
    ("dom", MatchMethod::Str(StrMatch::Dom)),
    ("reg", MatchMethod::Reg),
    ("len", MatchMethod::Len),
];

/// The first converter of `fetch(args),conv(args)...`: a comma outside parentheses.
fn first_converter(word: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in word.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let rest = &word[i + 1..];
                return Some(rest.split([',', '(']).next().unwrap_or(rest));
            }
            _ => {}
        }
    }
    None
}

/// Splits `name(arg)`.
fn split_call(word: &str) -> Result<(&str, Option<&str>), RoutingError> {
    if let Some(conv) = first_converter(word) {
        return Err(RoutingError::Converter { converter: conv.to_string(), expr: word.to_string() });
    }
    let bad = |reason| RoutingError::FetchArgument { fetch: word.to_string(), reason };
    match word.split_once('(') {
        None if word.contains(')') => Err(bad("unbalanced parentheses")),
        None => Ok((word, None)),
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(arg) if !arg.contains(['(', ')']) => Ok((name, Some(arg))),
            _ => Err(bad("unbalanced parentheses")),
        },
    }
}

impl Fetch {
    /// Parses a fetch keyword; the match method is `Some` when a suffix (`path_beg`) implies one.
    pub(super) fn parse(word: &str) -> Result<(Fetch, Option<MatchMethod>), RoutingError> {
        let (name, arg) = split_call(word)?;
        if let Some(fetch) = Fetch::by_name(word, name, arg)? {
            return Ok((fetch, None));
        }
        if let Some((base, suffix)) = name.rsplit_once('_')
            && let Some((_, method)) = SUFFIXES.iter().find(|(s, _)| *s == suffix)
            && matches!(base, "path" | "url" | "hdr" | "req.hdr" | "urlp" | "query" | "method")
            && let Some(fetch) = Fetch::by_name(word, base, arg)?
        {
            return Ok((fetch, Some(*method)));
        }
        Err(RoutingError::UnknownFetch { fetch: word.to_string() })
    }

    fn by_name(word: &str, name: &str, arg: Option<&str>) -> Result<Option<Fetch>, RoutingError> {
        let bad = |reason| RoutingError::FetchArgument { fetch: word.to_string(), reason };
        let none = |f: Fetch| match arg {
            None => Ok(Some(f)),
            Some(_) => Err(bad("takes no argument")),
        };
        let required = |what| match arg.map(str::trim) {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(bad(what)),
        };
        let header = |a: &str| {
            if a.contains(',') {
                return Err(bad("header occurrence selection is not supported"));
            }
            HeaderName::from_bytes(a.as_bytes()).map_err(|_| bad("not a valid header name"))
        };
        Ok(Some(match name {
            "path" => return none(Fetch::Path),
            "url" => return none(Fetch::Url),
            "query" => return none(Fetch::Query),
            "method" => return none(Fetch::Method),
            "src" => return none(Fetch::Src),
            "dst_port" => return none(Fetch::DstPort),
            "always_true" => return none(Fetch::Always(true)),
            "always_false" => return none(Fetch::Always(false)),
            "req.proto_http" => return none(Fetch::ProtoHttp),
            "urlp" | "url_param" => Fetch::UrlParam(required("needs a parameter name: urlp(<name>)")?.to_string()),
            "hdr" | "req.hdr" => Fetch::Hdr(header(required("needs a header name: hdr(<name>)")?)?),
            "hdr_val" | "req.hdr_val" => Fetch::HdrVal(header(required("needs a header name")?)?),
            "hdr_ip" | "req.hdr_ip" => Fetch::HdrIp(header(required("needs a header name")?)?),
            "hdr_cnt" | "req.hdr_cnt" => match arg.map(str::trim) {
                None | Some("") => Fetch::HdrCnt(None),
                Some(a) => Fetch::HdrCnt(Some(header(a)?)),
            },
            "nbsrv" => Fetch::Nbsrv(required("needs a backend name: nbsrv(<backend>)")?.to_string()),
            _ => return Ok(None),
        }))
    }

    pub(super) fn kind(&self) -> Kind {
        match self {
            Fetch::Path | Fetch::Url | Fetch::Query | Fetch::UrlParam(_) | Fetch::Hdr(_) | Fetch::Method => Kind::Str,
            Fetch::HdrCnt(_) | Fetch::HdrVal(_) | Fetch::DstPort | Fetch::Nbsrv(_) => Kind::Int,
            Fetch::Src | Fetch::HdrIp(_) => Kind::Ip,
            Fetch::Always(_) | Fetch::ProtoHttp => Kind::Bool,
        }
    }

    pub(super) fn backend(&self) -> Option<&str> {
        match self {
            Fetch::Nbsrv(b) => Some(b),
            _ => None,
        }
    }

    /// Feeds each sample to `f` until it returns true; returns whether it did.
    pub(super) fn any(&self, facts: &Facts<'_>, live: &dyn Live, f: &mut dyn FnMut(Sample<'_>) -> bool) -> bool {
        match self {
            Fetch::Path => facts.uri.is_some_and(|u| f(Sample::Str(u.path().as_bytes()))),
            Fetch::Url => facts.uri.is_some_and(|u| {
                if u.authority().is_some() {
                    f(Sample::Str(u.to_string().as_bytes()))
                } else {
                    let pq = u.path_and_query().map_or_else(|| u.path(), |pq| pq.as_str());
                    f(Sample::Str(pq.as_bytes()))
                }
            }),
            Fetch::Query => facts.uri.and_then(|u| u.query()).is_some_and(|q| f(Sample::Str(q.as_bytes()))),
            Fetch::UrlParam(name) => facts.uri.and_then(|u| u.query()).is_some_and(|q| {
                q.split('&').any(|pair| match pair.split_once('=') {
                    Some((k, v)) if k == name => f(Sample::Str(v.as_bytes())),
                    _ => false,
                })
            }),
            Fetch::Hdr(name) => header_values(facts, name, &mut |v| f(Sample::Str(v))),
            Fetch::HdrVal(name) => header_values(facts, name, &mut |v| {
                std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).is_some_and(|n| f(Sample::Int(n)))
            }),
            Fetch::HdrIp(name) => header_values(facts, name, &mut |v| parse_ip(v).is_some_and(|ip| f(Sample::Ip(ip)))),
            Fetch::HdrCnt(name) => facts.headers.is_some_and(|h| {
                let mut n: i64 = 0;
                let mut count = |v: &http::HeaderValue| {
                    split_values(v.as_bytes(), &mut |_| {
                        n += 1;
                        false
                    });
                };
                match name {
                    Some(name) => h.get_all(name).iter().for_each(&mut count),
                    None => h.values().for_each(&mut count),
                }
                f(Sample::Int(n))
            }),
            Fetch::Method => facts.method.is_some_and(|m| f(Sample::Str(m.as_str().as_bytes()))),
            Fetch::Src => f(Sample::Ip(facts.src)),
            Fetch::DstPort => f(Sample::Int(i64::from(facts.dst_port))),
            Fetch::Nbsrv(b) => f(Sample::Int(i64::try_from(live.nbsrv(b)).unwrap_or(i64::MAX))),
            Fetch::Always(b) => f(Sample::Bool(*b)),
            Fetch::ProtoHttp => f(Sample::Bool(facts.method.is_some())),
        }
    }
}

fn header_values(facts: &Facts<'_>, name: &HeaderName, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    facts.headers.is_some_and(|h| h.get_all(name).iter().any(|v| split_values(v.as_bytes(), f)))
}

/// Splits a header value on commas outside double quotes, trimming spaces and tabs.
fn split_values(value: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count() };
    let mut emit = |part: &[u8]| {
        let start = trim(part);
        let end = part.len() - part.iter().rev().take_while(|b| matches!(b, b' ' | b'\t')).count();
        f(&part[start.min(end)..end])
    };
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                if emit(&value[start..at]) {
                    return true;
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    emit(&value[start..])
}

/// An address, optionally with a port (`192.0.2.1:4000`, `[2001:db8::1]:443`).
fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(v).ok()?;
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|sa| sa.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method, Uri};

    #[test]
    fn a_converter_is_named_as_one() {
        let err = |w: &str| Fetch::parse(w).unwrap_err().to_string();
        assert_eq!(err("req.hdr(host),lower"), "converter `lower` in `req.hdr(host),lower` is not supported yet");
        assert_eq!(
            err("path,map_beg(/etc/x.map)"),
            "converter `map_beg` in `path,map_beg(/etc/x.map)` is not supported yet"
        );
        assert_eq!(err("hdr(x-a,-1),lower"), "converter `lower` in `hdr(x-a,-1),lower` is not supported yet");
        assert!(err("hdr(host").contains("unbalanced parentheses"));
    }

    struct NoBackends;
    impl Live for NoBackends {
        fn nbsrv(&self, backend: &str) -> usize {
            if backend == "three" { 3 } else { 0 }
        }
    }

    fn collect(fetch: &str, facts: &Facts<'_>) -> Vec<String> {
        let (f, _) = Fetch::parse(fetch).unwrap();
        let mut out = Vec::new();
        f.any(facts, &NoBackends, &mut |s| {
            out.push(match s {
                Sample::Str(b) => String::from_utf8_lossy(b).into_owned(),
                Sample::Int(n) => n.to_string(),
                Sample::Ip(ip) => ip.to_string(),
                Sample::Bool(b) => b.to_string(),
            });
            false
        });
        out
    }

    fn tcp() -> Facts<'static> {
        Facts { method: None, uri: None, headers: None, src: "192.0.2.1".parse().unwrap(), dst_port: 443 }
    }

    #[test]
    fn parses_names_suffixes_and_arguments() {
        let ok = |w: &str| Fetch::parse(w).unwrap();
        assert!(matches!(ok("path"), (Fetch::Path, None)));
        assert!(matches!(ok("path_beg"), (Fetch::Path, Some(MatchMethod::Str(StrMatch::Beg)))));
        assert!(matches!(ok("url_reg"), (Fetch::Url, Some(MatchMethod::Reg))));
        assert!(matches!(ok("path_len"), (Fetch::Path, Some(MatchMethod::Len))));
        assert!(matches!(ok("hdr_dom(Host)"), (Fetch::Hdr(h), Some(MatchMethod::Str(StrMatch::Dom))) if h == "host"));
        assert!(matches!(ok("req.hdr(x-a)"), (Fetch::Hdr(_), None)));
        assert!(matches!(ok("urlp_end(id)"), (Fetch::UrlParam(p), Some(_)) if p == "id"));
        assert!(matches!(ok("url_param(id)"), (Fetch::UrlParam(_), None)));
        assert!(matches!(ok("hdr_cnt"), (Fetch::HdrCnt(None), None)));
        assert!(matches!(ok("req.hdr_cnt(x-foo)"), (Fetch::HdrCnt(Some(_)), None)));
        assert!(matches!(ok("nbsrv(static_server)"), (Fetch::Nbsrv(b), None) if b == "static_server"));
        assert_eq!(ok("nbsrv(be)").0.backend(), Some("be"));
        assert_eq!(ok("path").0.backend(), None);
    }

    #[test]
    fn rejects_bad_fetches() {
        let e = |w: &str| Fetch::parse(w).unwrap_err();
        assert_eq!(e("pth"), RoutingError::UnknownFetch { fetch: "pth".into() });
        assert_eq!(e("path_foo"), RoutingError::UnknownFetch { fetch: "path_foo".into() });
        assert_eq!(e("src_beg"), RoutingError::UnknownFetch { fetch: "src_beg".into() });
        let reason = |w: &str| match e(w) {
            RoutingError::FetchArgument { fetch, reason } => {
                assert_eq!(fetch, w);
                reason
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("path(x)"), "takes no argument");
        assert_eq!(reason("path_beg(x)"), "takes no argument");
        assert!(reason("hdr").contains("header name"));
        assert!(reason("hdr()").contains("header name"));
        assert!(reason("hdr(a b)").contains("valid header name"));
        assert!(reason("hdr(host,1)").contains("occurrence"));
        assert!(reason("nbsrv").contains("backend name"));
        assert!(reason("urlp").contains("parameter"));
        assert!(reason("hdr(host").contains("parentheses"));
        assert!(reason("path)").contains("parentheses"));
    }

    #[test]
    fn http_samples() {
        let uri: Uri = "/a/b.php?x=1&id=7&id=8&flag".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append("host", HeaderValue::from_static("www.example.com"));
        h.append("accept", HeaderValue::from_static("text/html, \"a,b\" ,application/json"));
        h.append("accept", HeaderValue::from_static("*/*"));
        h.append("content-length", HeaderValue::from_static("42"));
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.5, [2001:db8::1]:443, junk"));
        let facts = Facts { method: Some(&Method::GET), uri: Some(&uri), headers: Some(&h), ..tcp() };
        assert_eq!(collect("path", &facts), ["/a/b.php"]);
        assert_eq!(collect("url", &facts), ["/a/b.php?x=1&id=7&id=8&flag"]);
        assert_eq!(collect("query", &facts), ["x=1&id=7&id=8&flag"]);
        assert_eq!(collect("urlp(id)", &facts), ["7", "8"]);
        assert!(collect("urlp(flag)", &facts).is_empty());
        assert_eq!(collect("hdr(Host)", &facts), ["www.example.com"]);
        assert_eq!(collect("hdr(accept)", &facts), ["text/html", "\"a,b\"", "application/json", "*/*"]);
        assert!(collect("hdr(x-none)", &facts).is_empty());
        assert_eq!(collect("hdr_cnt(accept)", &facts), ["4"]);
        assert_eq!(collect("hdr_cnt(x-none)", &facts), ["0"]);
        assert_eq!(collect("hdr_cnt", &facts), ["9"]);
        assert_eq!(collect("hdr_val(content-length)", &facts), ["42"]);
        assert!(collect("hdr_val(host)", &facts).is_empty());
        assert_eq!(collect("hdr_ip(x-forwarded-for)", &facts), ["203.0.113.5", "2001:db8::1"]);
        assert_eq!(collect("method", &facts), ["GET"]);
        assert_eq!(collect("req.proto_http", &facts), ["true"]);
    }

    #[test]
    fn absolute_form_url_keeps_scheme_and_host() {
        let uri: Uri = "http://example.com:8080/x?y".parse().unwrap();
        let facts = Facts { uri: Some(&uri), ..tcp() };
        assert_eq!(collect("url", &facts), ["http://example.com:8080/x?y"]);
        assert_eq!(collect("path", &facts), ["/x"]);
    }

    #[test]
    fn connection_samples_and_tcp_mode() {
        let facts = tcp();
        assert_eq!(collect("src", &facts), ["192.0.2.1"]);
        assert_eq!(collect("dst_port", &facts), ["443"]);
        assert_eq!(collect("nbsrv(three)", &facts), ["3"]);
        assert_eq!(collect("nbsrv(other)", &facts), ["0"]);
        assert_eq!(collect("always_true", &facts), ["true"]);
        assert_eq!(collect("always_false", &facts), ["false"]);
        assert_eq!(collect("req.proto_http", &facts), ["false"]);
        for f in ["path", "url", "query", "urlp(a)", "hdr(host)", "hdr_cnt(host)", "method", "hdr_ip(x)"] {
            assert!(collect(f, &facts).is_empty(), "{f} in tcp mode");
        }
    }

    #[test]
    fn splits_header_values() {
        let parts = |v: &str| {
            let mut out = Vec::new();
            split_values(v.as_bytes(), &mut |p| {
                out.push(String::from_utf8_lossy(p).into_owned());
                false
            });
            out
        };
        assert_eq!(parts(""), [""]);
        assert_eq!(parts("a"), ["a"]);
        assert_eq!(parts(" a ,\tb,, c "), ["a", "b", "", "c"]);
        assert_eq!(parts(r#""x,\"y,z""#), [r#""x,\"y,z""#]);
        assert_eq!(parts("  "), [""]);
    }
}
