//! Request keys for `source`, `uri`, `url_param`, `hdr`, `hash` and `rdp-cookie`, the stable hash they go through, and
//! the map-based mapping.
//!
//! The hash is fixed (FNV-1a then a 64-bit finaliser), not randomly keyed: two lbha nodes behind
//! one VIP, or one node after a restart, must send a client to the same server.

use super::{Algorithm, Candidates, Request};
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
    },
    UrlParam(String),
    /// `None` for a name the `http` crate refuses (only reachable by building an `Algorithm` by
    /// hand, as `Algorithm::parse` rejects it): every request then lacks the key.
    Hdr(Option<HeaderName>),
    /// `hash EXPR`, `rdp-cookie`: the key the caller computed ([`Request::key`]).
    Given,
}

impl KeySource {
    /// `algo` must be a hashing algorithm; others map to `Source`, which is never built for them.
    pub(super) fn new(algo: &Algorithm) -> KeySource {
        match algo {
            Algorithm::Uri { len, depth, whole } => KeySource::Uri { len: *len, depth: *depth, whole: *whole },
            Algorithm::UrlParam(p) => KeySource::UrlParam(p.clone()),
            Algorithm::Hdr(h) => KeySource::Hdr(HeaderName::from_bytes(h.as_bytes()).ok()),
            Algorithm::Hash(_) | Algorithm::RdpCookie(_) => KeySource::Given,
            _ => KeySource::Source,
        }
    }

    /// Hash of the request's key, or None when the request has none (HAProxy then falls back
    /// to round robin).
    pub(super) fn hash(&self, req: &Request<'_>) -> Option<u64> {
        match self {
            KeySource::Source => req.src.map(|ip| match ip.to_canonical() {
                IpAddr::V4(v4) => hash_bytes(&v4.octets()),
                IpAddr::V6(v6) => hash_bytes(&v6.octets()),
            }),
            KeySource::Uri { len, depth, whole } => {
                req.path_and_query.map(|pq| hash_bytes(uri_key(pq, *len, *depth, *whole).as_bytes()))
            }
            KeySource::UrlParam(name) => url_param(req.path_and_query?, name).map(|v| hash_bytes(v.as_bytes())),
            KeySource::Hdr(name) => {
                let value = req.headers?.get(name.as_ref()?)?;
                (!value.is_empty()).then(|| hash_bytes(value.as_bytes()))
            }
            KeySource::Given => req.key.map(hash_bytes),
        }
    }
}

/// The part of the URI `balance uri` hashes: the path (with the query if `whole`), stopped
/// before the `depth + 1`-th slash, then cut to `len` characters.
pub(super) fn uri_key(pq: &str, len: Option<usize>, depth: Option<usize>, whole: bool) -> &str {
    let mut end = pq.len();
    let mut slashes = 0usize;
    for (at, b) in pq.bytes().enumerate() {
        if b == b'?' && !whole {
            end = at;
            break;
        }
        if b == b'/' {
            slashes += 1;
            if depth.is_some_and(|d| slashes > d) {
                end = at;
                break;
            }
        }
    }
    let key = &pq[..end];
    match len.and_then(|l| key.char_indices().nth(l)) {
        Some((cut, _)) => &key[..cut],
        None => key,
    }
}

/// The non-empty value of query parameter `name` (first occurrence, not percent-decoded, as in
/// HAProxy).
pub(super) fn url_param<'a>(pq: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = pq.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| match pair.split_once('=') {
        Some((k, v)) if k == name && !v.is_empty() => Some(v),
        _ => None,
    })
}

/// 64-bit FNV-1a, finalised with [`mix64`] so nearby keys land far apart.
pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// HAProxy's map-based hashing: the key selects a slot among the candidates' total runtime
/// weight. Any change to the candidate set remaps most keys.
pub(super) fn map_based(h: u64, c: &Candidates<'_>) -> Option<usize> {
    let (total, _) = c.totals();
    if total == 0 {
        return None;
    }
    c.by_cumulative_weight(h % total)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fake, near, normal};
    use super::super::{Algorithm, HashType, Request, Selector};
    use super::{uri_key, url_param};
    use http::{HeaderMap, HeaderValue};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn sel(algo: &str, weights: &[u32]) -> (Selector, Fake) {
        let specs = normal(weights);
        let s = Selector::new(&Algorithm::parse(algo).unwrap(), HashType::MapBased, &specs, false);
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
        assert_eq!(uri_key("/a/b/c?x=1", None, None, false), "/a/b/c");
        assert_eq!(uri_key("/a/b/c?x=1", None, None, true), "/a/b/c?x=1");
        assert_eq!(uri_key("/a/b/c/d", None, Some(2), false), "/a/b");
        assert_eq!(uri_key("/a/b/c/d", None, Some(1), false), "/a");
        assert_eq!(uri_key("/a/b", None, Some(5), false), "/a/b");
        assert_eq!(uri_key("/abcdef", Some(3), None, false), "/ab");
        assert_eq!(uri_key("/a/bcdef/g", Some(4), Some(2), false), "/a/b");
        assert_eq!(uri_key("/ab?q/z", None, Some(1), true), "/ab?q");
        assert_eq!(uri_key("/é/x", Some(2), None, false), "/é");
        assert_eq!(uri_key("", Some(2), Some(1), false), "");
    }

    #[test]
    fn url_param_finds_the_value() {
        assert_eq!(url_param("/p?userid=42&x=1", "userid"), Some("42"));
        assert_eq!(url_param("/p?x=1&userid=42", "userid"), Some("42"));
        assert_eq!(url_param("/p?x=1&userid=42#frag", "userid"), Some("42"));
        assert_eq!(url_param("/p?userid=&userid=7", "userid"), Some("7"));
        assert_eq!(url_param("/p?user=42", "userid"), None);
        assert_eq!(url_param("/p?userid", "userid"), None);
        assert_eq!(url_param("/p/userid=42", "userid"), None);
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
    fn source_v4_mapped_matches_v4() {
        let (s, f) = sel("source", &[1; 16]);
        for n in 0..50u32 {
            let v4 = Ipv4Addr::from(0xc000_0200 + n);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            assert_eq!(s.pick(&from(IpAddr::V4(v4)), &f), s.pick(&from(mapped), &f));
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(s.pick(&from(v6), &f).is_some());
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
            ("url_param userid", path("/a?userid=")),
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
        for h in [&empty, &blank] {
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
