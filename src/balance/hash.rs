//! Request keys for `source`, `uri`, `url_param`, `hdr`, `hash` and `rdp-cookie`, and the hash
//! they go through, as HAProxy 2.6 computes them (`backend.c`), so a key reaches the server
//! HAProxy would pick for the same server list.
//!
//! The hash is fixed per `hash-type`, never randomly keyed: two lbha nodes behind one VIP, or
//! one node after a restart, send a client to the same server.

use super::algorithm::{HashFunction, HashType};
use super::{Algorithm, Request};
use crate::sample::hashes;
use http::HeaderName;
use std::net::IpAddr;

/// Where a hashing algorithm finds its key.
#[derive(Debug)]
pub(super) enum KeySource {
    Source,
    Uri {
        len: Option<usize>,
        depth: Option<usize>,
        whole: bool,
        path_only: bool,
    },
    UrlParam(String),
    /// `None` for a name the `http` crate refuses (only reachable by building an `Algorithm` by
    /// hand, as `Algorithm::parse` rejects it): every request then lacks the key.
    Hdr(Option<HeaderName>, bool),
    /// `hash EXPR`, `rdp-cookie`: the key the caller computed ([`Request::key`]).
    Given,
}

impl KeySource {
    /// `algo` must be a hashing algorithm; others map to `Source`, which is never built for them.
    pub(super) fn new(algo: &Algorithm) -> KeySource {
        match algo {
            Algorithm::Uri { len, depth, whole, path_only } => {
                KeySource::Uri { len: *len, depth: *depth, whole: *whole, path_only: *path_only }
            }
            Algorithm::UrlParam { name, .. } => KeySource::UrlParam(name.clone()),
            Algorithm::Hdr { name, domain_only } => {
                KeySource::Hdr(HeaderName::from_bytes(name.as_bytes()).ok(), *domain_only)
            }
            Algorithm::Hash(_) | Algorithm::RdpCookie(_) => KeySource::Given,
            _ => KeySource::Source,
        }
    }

    /// The request's 32-bit hash, or None when the request has no key (HAProxy then falls back
    /// to round robin).
    pub(super) fn hash(&self, req: &Request<'_>, ht: HashType) -> Option<u32> {
        let h = match self {
            // HAProxy XORs the address's 32-bit words; the hash function is not used.
            KeySource::Source => match req.src? {
                IpAddr::V4(v4) => u32::from(v4),
                IpAddr::V6(v6) => {
                    let o = v6.octets();
                    o.chunks_exact(4).fold(0, |h, w| h ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                }
            },
            KeySource::Uri { len, depth, whole, path_only } => {
                // HAProxy hashes the request line's target: an absolute-form one (all HTTP/2
                // requests with an authority) whole, unless `path-only`.
                let uri = match req.target {
                    Some(t) if !*path_only => t,
                    _ => req.path_and_query?,
                };
                function(ht.function, uri_key(uri.as_bytes(), *len, *depth, *whole))
            }
            KeySource::UrlParam(name) => match url_param(req.path_and_query?, name) {
                Some(v) => function(ht.function, v.as_bytes()),
                None => function(ht.function, post_param(req.post_body?, name.as_bytes())?),
            },
            KeySource::Hdr(name, domain_only) => {
                let v = first_value(req.headers?.get(name.as_ref()?)?.as_bytes())?;
                function(ht.function, if *domain_only { domain_part(v) } else { v })
            }
            KeySource::Given => function(ht.function, req.key?),
        };
        Some(if ht.avalanche { hashes::full_hash(h) } else { h })
    }
}

/// HAProxy's `gen_hash`.
pub(super) fn function(f: HashFunction, bytes: &[u8]) -> u32 {
    match f {
        HashFunction::Sdbm => hashes::sdbm(bytes),
        HashFunction::Djb2 => hashes::djb2(bytes),
        HashFunction::Wt6 => hashes::wt6(bytes),
        HashFunction::Crc32 => crc32fast::hash(bytes),
    }
}

/// The part of the URI `balance uri` hashes, as HAProxy cuts it: at most `len` bytes, then up to
/// (not including) the `depth + 1`-th slash, or the `?` unless `whole`.
pub(super) fn uri_key(uri: &[u8], len: Option<usize>, depth: Option<usize>, whole: bool) -> &[u8] {
    let uri = &uri[..len.map_or(uri.len(), |l| l.min(uri.len()))];
    let mut slashes = 0usize;
    for (at, &b) in uri.iter().enumerate() {
        if b == b'/' {
            slashes += 1;
            if depth.is_some_and(|d| slashes == d + 1) {
                return &uri[..at];
            }
        } else if b == b'?' && !whole {
            return &uri[..at];
        }
    }
    uri
}

/// The value of query parameter `name`, first occurrence, not percent-decoded, possibly empty,
/// as HAProxy's `get_server_ph` finds it (the query is everything after the first `?`).
pub(super) fn url_param<'a>(pq: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = pq.split_once('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// HAProxy's `get_server_ph_post`: `name`'s value in a POST's urlencoded body (what was read
/// of it), found as in the query; as HAProxy, only the value's first byte is checked: a space or
/// line end there gives the empty value, another byte that is not a token character means the
/// body is not urlencoded (None).
pub(super) fn post_param<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut params = body;
    while params.len() > name.len() {
        if params[name.len()] == b'=' && params.starts_with(name) {
            let value = &params[name.len() + 1..];
            let end = value.iter().position(|&b| b == b'&').unwrap_or(value.len());
            return match value.first() {
                None => Some(value),
                Some(&c) if is_token(c) => Some(&value[..end]),
                Some(b' ' | b'\t' | b'\r' | b'\n') => Some(&value[..0]),
                Some(_) => None,
            };
        }
        let amp = params.iter().position(|&b| b == b'&')?;
        params = &params[amp + 1..];
    }
    None
}

/// RFC 9110's tchar (HAProxy's `HTTP_IS_TOKEN`).
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// HAProxy's `use_domain_only`: the label before the value's last dot (`1wt` of
/// `haproxy.1wt.eu`), or the whole value without a dot after its first byte. As HAProxy's
/// backwards scan, the byte just before that dot belongs to the label even when it is a dot.
pub(super) fn domain_part(v: &[u8]) -> &[u8] {
    let Some(end) = v.iter().skip(1).rposition(|&b| b == b'.').map(|i| i + 1) else {
        return v;
    };
    let start = v[..end - 1].iter().rposition(|&b| b == b'.').map_or(0, |i| i + 1);
    &v[start..end]
}

/// The first comma-separated value of a header, trimmed, as HAProxy's `http_find_header` gives
/// it; None when empty (HAProxy then falls back to round robin).
fn first_value(v: &[u8]) -> Option<&[u8]> {
    let first = v.split(|&b| b == b',').next().unwrap_or_default();
    let first = first.trim_ascii();
    (!first.is_empty()).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector};
    use super::{domain_part, post_param, uri_key, url_param};
    use http::{HeaderMap, HeaderValue};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn sel(algo: &str, weights: &[u32]) -> (Selector, Fake) {
        let specs = normal(weights);
        let s = Selector::new(&Algorithm::parse(algo).unwrap(), HashType::map_based(), &specs, false);
        (s, Fake::from_specs(&specs))
    }

    fn from(ip: IpAddr) -> Request<'static> {
        Request { src: Some(ip), ..Request::default() }
    }

    fn given(key: &[u8]) -> Request<'_> {
        Request { key: Some(key), ..Request::default() }
    }

    #[test]
    fn hash_and_rdp_cookie_hash_the_given_key() {
        for algo in ["hash req.cookie(id)", "rdp-cookie"] {
            let (s, f) = sel(algo, &[1, 1, 1, 1]);
            let spread: std::collections::HashSet<_> =
                (0..64u32).map(|n| s.pick(&given(n.to_string().as_bytes()), &f).unwrap()).collect();
            assert!(spread.len() > 1, "{algo}: keys spread over servers");
            for n in 0..64u32 {
                let k = format!("user{n}");
                let first = s.pick(&given(k.as_bytes()), &f);
                assert_eq!(s.pick(&given(k.as_bytes()), &f), first, "{algo}: one key, one server");
            }
            // No key: round robin, as HAProxy falls back.
            let rr: std::collections::HashSet<_> = (0..8).map(|_| s.pick(&Request::default(), &f).unwrap()).collect();
            assert_eq!(rr.len(), 4, "{algo}");
        }
    }

    fn path(pq: &str) -> Request<'_> {
        Request { path_and_query: Some(pq), ..Request::default() }
    }

    #[test]
    fn uri_key_cuts_query_depth_and_len() {
        let k = |u: &'static str, len, depth, whole| uri_key(u.as_bytes(), len, depth, whole);
        assert_eq!(k("/a/b/c?x=1", None, None, false), b"/a/b/c");
        assert_eq!(k("/a/b/c?x=1", None, None, true), b"/a/b/c?x=1");
        assert_eq!(k("/a/b/c/d", None, Some(2), false), b"/a/b");
        assert_eq!(k("/a/b/c/d", None, Some(1), false), b"/a");
        assert_eq!(k("/a/b", None, Some(5), false), b"/a/b");
        assert_eq!(k("/abcdef", Some(3), None, false), b"/ab");
        // `len` cuts first, then the depth is looked for in what is left.
        assert_eq!(k("/a/bcdef/g", Some(4), Some(2), false), b"/a/b");
        assert_eq!(k("/ab?q/z", None, Some(1), true), b"/ab?q");
        // A slash in the query counts towards the depth only with `whole`.
        assert_eq!(k("/ab?q/z", None, Some(1), false), b"/ab");
        // `len` counts bytes, as HAProxy does.
        assert_eq!(k("/é/x", Some(2), None, false), b"/\xc3");
        assert_eq!(k("", Some(2), Some(1), false), b"");
    }

    #[test]
    fn url_param_finds_the_value() {
        assert_eq!(url_param("/p?userid=42&x=1", "userid"), Some("42"));
        assert_eq!(url_param("/p?x=1&userid=42", "userid"), Some("42"));
        // The first occurrence counts even when empty; HAProxy hashes the empty value.
        assert_eq!(url_param("/p?userid=&userid=7", "userid"), Some(""));
        assert_eq!(url_param("/p?xuserid=1&userid=7", "userid"), Some("7"));
        assert_eq!(url_param("/p?a=1?userid=3", "userid"), None, "the query starts at the first ?");
        assert_eq!(url_param("/p?user=42", "userid"), None);
        assert_eq!(url_param("/p?userid", "userid"), None);
        assert_eq!(url_param("/p/userid=42", "userid"), None);
    }

    #[test]
    fn domain_part_is_haproxy_use_domain_only() {
        let d = |v: &'static str| std::str::from_utf8(domain_part(v.as_bytes())).unwrap();
        assert_eq!(d("haproxy.1wt.eu"), "1wt");
        assert_eq!(d("www.example.com:8080"), "example");
        assert_eq!(d("example.com"), "example");
        assert_eq!(d("localhost"), "localhost");
        // A dot in first place is never the last one looked at, as HAProxy's backwards scan.
        assert_eq!(d(".com"), ".com");
        assert_eq!(d("a.b.c."), "c");
        // The byte just before the last dot is always kept, even a dot.
        assert_eq!(d("x..y"), "x.");
        assert_eq!(d("a.b"), "a");
    }

    #[test]
    fn post_param_reads_an_urlencoded_body() {
        let p = |b: &'static str| post_param(b.as_bytes(), b"id").map(|v| std::str::from_utf8(v).unwrap());
        assert_eq!(p("id=42"), Some("42"));
        assert_eq!(p("a=1&id=42&id=7"), Some("42"));
        assert_eq!(p("xid=1&id=5"), Some("5"));
        assert_eq!(p("id="), Some(""));
        assert_eq!(p("id=&x=1"), Some(""));
        assert_eq!(p("a=1"), None);
        assert_eq!(p("id"), None);
        // Only the value's first byte is checked: a line end there ends it, a non-token byte
        // means the body is not urlencoded; later bytes are taken as they are.
        assert_eq!(p("id=\r\n"), Some(""));
        assert_eq!(p("id={\"a\":1}"), None);
        assert_eq!(p("id=ab cd&x"), Some("ab cd"));
        assert_eq!(p("{\"id\":1}"), None);
    }

    #[test]
    fn uri_hashes_the_absolute_target_unless_path_only() {
        let (s, f) = sel("uri", &[1; 32]);
        let (po, _) = sel("uri path-only", &[1; 32]);
        let mut differ = 0;
        for n in 0..32 {
            let pq = format!("/item/{n}");
            let abs = format!("http://example.com/item/{n}");
            let origin = path(&pq);
            let absolute = Request { target: Some(&abs), ..path(&pq) };
            assert_eq!(po.pick(&absolute, &f), po.pick(&origin, &f), "path-only ignores the authority");
            differ += usize::from(s.pick(&absolute, &f) != s.pick(&origin, &f));
        }
        assert!(differ > 0, "without path-only the scheme and authority are hashed");
    }

    #[test]
    fn url_param_falls_back_to_the_post_body() {
        let (s, f) = sel("url_param id", &[1; 32]);
        let q = s.pick(&path("/p?id=7"), &f);
        let posted = Request { post_body: Some(b"a=1&id=7"), ..path("/p") };
        assert_eq!(s.pick(&posted, &f), q);
        // The query wins over the body.
        let both = Request { post_body: Some(b"id=9"), ..path("/p?id=7") };
        assert_eq!(s.pick(&both, &f), q);
    }

    #[test]
    fn keys_hash_as_haproxy_computes_them() {
        use super::super::algorithm::{HashFunction, HashMethod, HashType};
        use super::KeySource;
        let ht = |function, avalanche| HashType { method: HashMethod::MapBased, function, avalanche };
        let src = |ip: IpAddr| KeySource::Source.hash(&from(ip), ht(HashFunction::Djb2, false));
        // The address's 32-bit words XORed, whatever the function.
        assert_eq!(src(Ipv4Addr::new(192, 0, 2, 1).into()), Some(0xc000_0201));
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        assert_eq!(src(v6.into()), Some(0x2001_0db8 ^ 1));
        // sdbm, djb2, wt6 and crc32 of "abc", as HAProxy's hash.c gives them.
        let given = |f, a| KeySource::Given.hash(&given(b"abc"), ht(f, a));
        assert_eq!(given(HashFunction::Sdbm, false), Some(0x3025_f862));
        assert_eq!(given(HashFunction::Djb2, false), Some(0x0b88_5c8b));
        assert_eq!(given(HashFunction::Crc32, false), Some(0x3524_41c2));
        assert_eq!(given(HashFunction::Sdbm, true), Some(crate::sample::hashes::full_hash(0x3025_f862)));
        // Only the header's first value is hashed.
        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static(" abc , def"));
        let hdr = KeySource::new(&Algorithm::parse("hdr(x-tenant)").unwrap());
        let req = Request { headers: Some(&h), ..Request::default() };
        assert_eq!(hdr.hash(&req, ht(HashFunction::Djb2, false)), Some(0x0b88_5c8b));
    }

    #[test]
    fn source_is_sticky_and_spreads() {
        let (s, f) = sel("source", &[1, 1, 1, 1]);
        let mut per = [0usize; 4];
        for n in 0..4000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            let first = s.pick(&from(ip), &f).unwrap();
            assert_eq!(s.pick(&from(ip), &f), Some(first));
            per[first] += 1;
        }
        for c in per {
            near(c, 1000.0, 0.15);
        }
    }

    #[test]
    fn hash_is_stable_across_selectors() {
        // Two nodes (or a restart) must agree.
        let (a, f) = sel("uri", &[1, 2, 3]);
        let (b, _) = sel("uri", &[1, 2, 3]);
        for n in 0..200 {
            let p = format!("/item/{n}");
            assert_eq!(a.pick(&path(&p), &f), b.pick(&path(&p), &f));
        }
    }

    #[test]
    fn map_based_follows_weights() {
        let (s, f) = sel("uri whole", &[3, 1]);
        let mut per = [0usize; 2];
        for n in 0..8000 {
            per[s.pick(&path(&format!("/x?id={n}")), &f).unwrap()] += 1;
        }
        near(per[0], 6000.0, 0.05);
        near(per[1], 2000.0, 0.15);
    }

    #[test]
    fn uri_options_change_the_key() {
        let (s, f) = sel("uri depth 1", &[1; 32]);
        let a = s.pick(&path("/img/a.png"), &f);
        for p in ["/img/b.png", "/img/c/d.png", "/img?x=1"] {
            assert_eq!(s.pick(&path(p), &f), a, "{p}");
        }
        let (s, f) = sel("uri", &[1; 32]);
        assert_eq!(s.pick(&path("/q?a=1"), &f), s.pick(&path("/q?a=2"), &f));
        let (s, f) = sel("uri whole", &[1; 32]);
        let spread: std::collections::HashSet<_> = (0..50).map(|n| s.pick(&path(&format!("/q?a={n}")), &f)).collect();
        assert!(spread.len() > 10);
    }

    #[test]
    fn url_param_and_hdr_hash_their_value() {
        let (s, f) = sel("url_param userid", &[1; 32]);
        let a = s.pick(&path("/a?userid=7&x=1"), &f);
        assert_eq!(s.pick(&path("/b?y=2&userid=7"), &f), a);

        let (s, f) = sel("hdr(X-Tenant)", &[1; 32]);
        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static("acme"));
        let with = |h: &HeaderMap| s.pick(&Request { headers: Some(h), ..Request::default() }, &f);
        let a = with(&h);
        assert!(a.is_some());
        for _ in 0..5 {
            assert_eq!(with(&h), a);
        }
    }

    #[test]
    fn missing_key_falls_back_to_round_robin() {
        let cases: [(&str, Request<'static>); 5] = [
            ("source", Request::default()),
            ("uri", Request::default()),
            ("url_param userid", path("/a?other=1")),
            ("url_param userid", path("/a?userid")),
            ("hdr(x-tenant)", Request::default()),
        ];
        for (algo, req) in cases {
            let (s, f) = sel(algo, &[1, 1, 1]);
            let picks: Vec<_> = (0..6).filter_map(|_| s.pick(&req, &f)).collect();
            assert_eq!(picks, [0, 1, 2, 0, 1, 2], "{algo}");
        }
        let empty = HeaderMap::new();
        let mut blank = HeaderMap::new();
        blank.insert("x-tenant", HeaderValue::from_static(""));
        let mut first_blank = HeaderMap::new();
        first_blank.insert("x-tenant", HeaderValue::from_static(" , acme"));
        for h in [&empty, &blank, &first_blank] {
            let (s, f) = sel("hdr(x-tenant)", &[1, 1]);
            let req = Request { headers: Some(h), ..Request::default() };
            let picks: Vec<_> = (0..4).filter_map(|_| s.pick(&req, &f)).collect();
            assert_eq!(picks, [0, 1, 0, 1]);
        }
    }

    #[test]
    fn map_based_reshuffles_and_avoids() {
        let (s, mut f) = sel("source", &[1, 1, 1, 1]);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let a = s.pick(&from(ip), &f).unwrap();
        let other = s.pick_avoiding(&from(ip), &f, a).unwrap();
        assert_ne!(other, a);
        f.up[a] = false;
        assert_ne!(s.pick(&from(ip), &f), Some(a));
    }
}
