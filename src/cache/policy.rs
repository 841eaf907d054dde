//! What may be served from and stored in the cache, as HAProxy 2.6 decides it (RFC 9111 for a
//! shared cache). Pure: headers and a clock value in, a verdict out.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use std::time::{Duration, SystemTime};

/// Headers HAProxy's `process-vary` can key variants on; a `Vary` on anything else is not stored.
pub const VARY_SUPPORTED: [HeaderName; 3] = [header::ACCEPT_ENCODING, header::REFERER, header::ORIGIN];

/// `Cache-Control` directives of all the message's fields, lower-cased, `name` or `name=value`.
fn directives(h: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    h.get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

fn seconds(d: &str, name: &str) -> Option<u64> {
    let v = d.strip_prefix(name)?.trim_start().strip_prefix('=')?.trim().trim_matches('"');
    v.parse().ok()
}

/// What a request allows: looking the object up, and storing the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub lookup: bool,
    pub store: bool,
}

/// `Cache-Control: no-cache` (or `Pragma: no-cache` alone, RFC 9111 §5.4) and `max-age=0` force
/// a trip to the server; `no-store` and `Authorization` forbid storing; only GET (and HEAD, for
/// lookups) touch the cache.
pub fn request(method: &Method, h: &HeaderMap) -> Request {
    let get = method == Method::GET;
    let mut lookup = get || method == Method::HEAD;
    let mut store = get && !h.contains_key(header::AUTHORIZATION);
    let mut any_cc = false;
    for d in directives(h) {
        any_cc = true;
        if d == "no-cache" || seconds(&d, "max-age") == Some(0) {
            lookup = false;
        }
        if d == "no-store" {
            store = false;
        }
    }
    let pragma = h.get_all(header::PRAGMA).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"no-cache"));
    if pragma && !any_cc {
        lookup = false;
    }
    Request { lookup, store }
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStore {
    Status,
    SetCookie,
    Directive,
    Vary,
    NoFreshness,
    Expired,
    TooBig,
}

/// How a response may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    /// Seconds it stays fresh from now, already capped by the cache's `max-age`.
    pub ttl: u64,
    /// The `Age` the server reported, added to the age a hit announces.
    pub age: u64,
    /// The request headers variants are keyed on, lower-case and sorted.
    pub vary: Vec<HeaderName>,
}

/// The cache section's limits the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_age: u64,
    pub max_object: u64,
    pub process_vary: bool,
}

/// HAProxy's `http_check_response_for_cacheability` and `http_calc_maxage`: only 200s without
/// `Set-Cookie`, private/no-cache/no-store or a zero lifetime; freshness from `s-maxage`, then
/// `max-age`, then `Expires` against `Date`; without any, a validator (`ETag`, `Last-Modified`)
/// lets the cache's own `max-age` apply.
pub fn response(status: StatusCode, h: &HeaderMap, limits: Limits, now: SystemTime) -> Result<Storable, NoStore> {
    if status != StatusCode::OK {
        return Err(NoStore::Status);
    }
    if h.contains_key(header::SET_COOKIE) {
        return Err(NoStore::SetCookie);
    }
    let len = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if len.is_some_and(|n| n > limits.max_object) {
        return Err(NoStore::TooBig);
    }
    let (mut smaxage, mut maxage) = (None, None);
    for d in directives(h) {
        if d == "private" || d == "no-store" || d.starts_with("no-cache") || d.starts_with("private=") {
            return Err(NoStore::Directive);
        }
        if let Some(s) = seconds(&d, "s-maxage") {
            smaxage = Some(s);
        } else if let Some(s) = seconds(&d, "max-age") {
            maxage = Some(s);
        }
    }
    let vary = vary(h, limits.process_vary)?;
    let expires = h.get(header::EXPIRES).map(|v| {
        // An invalid date means "already expired" (RFC 9111 §5.3).
        let when = v.to_str().ok().and_then(|s| httpdate::parse_http_date(s).ok());
        let date = h.get(header::DATE).and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok()).unwrap_or(now);
        when.and_then(|w| w.duration_since(date).ok()).map_or(0, |d| d.as_secs())
    });
    let validator = h.contains_key(header::ETAG) || h.contains_key(header::LAST_MODIFIED);
    let fresh = match smaxage.or(maxage).or(expires) {
        Some(s) => s.min(limits.max_age),
        None if validator => limits.max_age,
        None => return Err(NoStore::NoFreshness),
    };
    let age = h.get(header::AGE).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()).unwrap_or(0);
    if fresh <= age {
        return Err(NoStore::Expired);
    }
    Ok(Storable { ttl: fresh - age, age, vary })
}

/// The headers a `Vary` names: none stored without `process_vary`; `*` or an unsupported name
/// cannot be matched later, so the response is not stored.
fn vary(h: &HeaderMap, process: bool) -> Result<Vec<HeaderName>, NoStore> {
    let mut names = Vec::new();
    for t in h.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if !process {
            return Err(NoStore::Vary);
        }
        match VARY_SUPPORTED.iter().find(|n| n.as_str().eq_ignore_ascii_case(t)) {
            Some(n) if !names.contains(n) => names.push(n.clone()),
            Some(_) => {}
            None => return Err(NoStore::Vary),
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(names)
}

/// The secondary key of a request for the headers a stored response varies on.
pub fn secondary(vary: &[HeaderName], req: &HeaderMap) -> String {
    let mut key = String::new();
    for n in vary {
        key.push_str(n.as_str());
        key.push('=');
        let mut vals: Vec<String> = req
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.split_whitespace().collect::<String>().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        // `Accept-Encoding: gzip, br` and `br, gzip` ask for the same representation.
        if *n == header::ACCEPT_ENCODING {
            vals.sort();
        }
        key.push_str(&vals.join(","));
        key.push('\n');
    }
    key
}

/// RFC 9110 §13.1: whether a conditional request is answered 304 by an object with these
/// validators. `If-None-Match` (weak comparison, `*`) decides when present; else
/// `If-Modified-Since` against `Last-Modified`, or the time the object was stored.
pub fn not_modified(req: &HeaderMap, etag: Option<&HeaderValue>, modified: SystemTime) -> bool {
    let inm: Vec<&str> = req
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !inm.is_empty() {
        let weak = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_string();
        let Some(tag) = etag.and_then(|e| e.to_str().ok()) else { return false };
        return inm.iter().any(|t| *t == "*" || weak(t) == weak(tag));
    }
    let since = req.get(header::IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    since.is_some_and(|s| modified <= s)
}

/// The time a response says its content last changed, for `If-Modified-Since`.
pub fn last_modified(h: &HeaderMap, stored: SystemTime) -> SystemTime {
    [header::LAST_MODIFIED, header::DATE]
        .iter()
        .find_map(|n| httpdate::parse_http_date(h.get(n)?.to_str().ok()?).ok())
        .unwrap_or(stored)
}

/// Whole seconds since the epoch: the store's clock unit.
pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const LIMITS: Limits = Limits { max_age: 60, max_object: 10_000, process_vary: false };

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn store(status: u16, pairs: &[(&str, &str)]) -> Result<u64, NoStore> {
        response(StatusCode::from_u16(status).unwrap(), &map(pairs), LIMITS, now()).map(|s| s.ttl)
    }

    #[test]
    fn requests_that_skip_the_lookup_or_forbid_storing() {
        let r = |m: &str, pairs: &[(&str, &str)]| request(&m.parse().unwrap(), &map(pairs));
        assert_eq!(r("GET", &[]), Request { lookup: true, store: true });
        assert_eq!(r("HEAD", &[]), Request { lookup: true, store: false });
        assert_eq!(r("POST", &[]), Request { lookup: false, store: false });
        assert_eq!(r("GET", &[("cache-control", "no-cache")]), Request { lookup: false, store: true });
        assert_eq!(r("GET", &[("cache-control", "max-age=0")]), Request { lookup: false, store: true });
        assert_eq!(r("GET", &[("cache-control", "no-store")]), Request { lookup: true, store: false });
        assert_eq!(r("GET", &[("pragma", "no-cache")]), Request { lookup: false, store: true });
        assert!(r("GET", &[("pragma", "no-cache"), ("cache-control", "max-age=5")]).lookup);
        assert_eq!(r("GET", &[("authorization", "Basic eDp5")]), Request { lookup: true, store: false });
    }

    #[test]
    fn freshness_comes_from_s_maxage_then_max_age_then_expires_capped_by_the_cache() {
        assert_eq!(store(200, &[("cache-control", "max-age=30")]), Ok(30));
        assert_eq!(store(200, &[("cache-control", "max-age=30, s-maxage=10")]), Ok(10));
        assert_eq!(store(200, &[("cache-control", "max-age=3600")]), Ok(60), "capped by max-age of the cache");
        let date = httpdate::fmt_http_date(now());
        let exp = httpdate::fmt_http_date(now() + Duration::from_secs(20));
        assert_eq!(store(200, &[("date", &date), ("expires", &exp)]), Ok(20));
        assert_eq!(store(200, &[("expires", "0")]), Err(NoStore::Expired), "an invalid date is in the past");
        assert_eq!(store(200, &[("etag", "\"a\"")]), Ok(60), "a validator alone: the cache's max-age");
        assert_eq!(store(200, &[("last-modified", &date)]), Ok(60));
        assert_eq!(store(200, &[]), Err(NoStore::NoFreshness));
        assert_eq!(store(200, &[("cache-control", "max-age=30"), ("age", "10")]), Ok(20));
        assert_eq!(store(200, &[("cache-control", "max-age=30"), ("age", "40")]), Err(NoStore::Expired));
    }

    #[test]
    fn responses_never_stored() {
        let cc = ("cache-control", "max-age=30");
        assert_eq!(store(404, &[cc]), Err(NoStore::Status));
        assert_eq!(store(206, &[cc]), Err(NoStore::Status));
        assert_eq!(store(200, &[cc, ("set-cookie", "a=b")]), Err(NoStore::SetCookie));
        for d in ["private", "no-cache", "no-store", "max-age=0", "s-maxage=0, max-age=9", "no-cache=\"set-cookie\""] {
            assert!(store(200, &[("cache-control", d)]).is_err(), "{d}");
        }
        assert_eq!(store(200, &[cc, ("content-length", "20000")]), Err(NoStore::TooBig));
        assert_eq!(store(200, &[cc, ("vary", "accept-encoding")]), Err(NoStore::Vary), "process-vary off");
    }

    #[test]
    fn process_vary_keys_variants_on_the_supported_headers() {
        let l = Limits { process_vary: true, ..LIMITS };
        let st = |v: &str| response(StatusCode::OK, &map(&[("cache-control", "max-age=9"), ("vary", v)]), l, now());
        assert_eq!(st("Accept-Encoding, Origin").unwrap().vary, [header::ACCEPT_ENCODING, header::ORIGIN]);
        assert_eq!(st("*"), Err(NoStore::Vary));
        assert_eq!(st("user-agent"), Err(NoStore::Vary));
        let v = [header::ACCEPT_ENCODING];
        let a = secondary(&v, &map(&[("accept-encoding", "gzip, br")]));
        assert_eq!(a, secondary(&v, &map(&[("accept-encoding", "br,gzip")])));
        assert_ne!(a, secondary(&v, &map(&[("accept-encoding", "gzip")])));
        assert_eq!(secondary(&[], &map(&[("accept-encoding", "gzip")])), "");
    }

    #[test]
    fn conditional_requests() {
        let tag = HeaderValue::from_static("\"v1\"");
        let t = now();
        let inm = |v: &str| map(&[("if-none-match", v)]);
        assert!(not_modified(&inm("\"v1\""), Some(&tag), t));
        assert!(not_modified(&inm("\"v0\", W/\"v1\""), Some(&tag), t), "weak comparison");
        assert!(not_modified(&inm("*"), Some(&tag), t));
        assert!(!not_modified(&inm("\"v2\""), Some(&tag), t));
        assert!(!not_modified(&inm("\"v1\""), None, t));
        let ims = |d: SystemTime| map(&[("if-modified-since", &httpdate::fmt_http_date(d))]);
        assert!(not_modified(&ims(t), None, t));
        assert!(not_modified(&ims(t + Duration::from_secs(5)), None, t));
        assert!(!not_modified(&ims(t - Duration::from_secs(5)), None, t));
        let both = map(&[("if-none-match", "\"v2\""), ("if-modified-since", &httpdate::fmt_http_date(t))]);
        assert!(!not_modified(&both, Some(&tag), t), "If-None-Match decides when present");
        let lm = map(&[("last-modified", &httpdate::fmt_http_date(t - Duration::from_secs(100)))]);
        assert_eq!(last_modified(&lm, t), t - Duration::from_secs(100));
        assert_eq!(last_modified(&HeaderMap::new(), t), t);
    }
}
