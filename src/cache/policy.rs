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

/// HAProxy 2.6's content-coding bits (cache.c, `vary_encoding`), by which `process-vary` matches
/// `Accept-Encoding`: a stored variant is keyed on the coding of its response, and serves every
/// request that accepts that coding.
pub mod coding {
    pub const GZIP: u32 = 1 << 0;
    pub const DEFLATE: u32 = 1 << 1;
    pub const BR: u32 = 1 << 2;
    pub const COMPRESS: u32 = 1 << 3;
    pub const AES128GCM: u32 = 1 << 4;
    pub const EXI: u32 = 1 << 5;
    pub const PACK200_GZIP: u32 = 1 << 6;
    pub const ZSTD: u32 = 1 << 7;
    pub const IDENTITY: u32 = 1 << 8;
    pub const STAR: u32 = 1 << 9;
    pub const OTHER: u32 = 1 << 10;
}

/// One coding (`gzip`, `br;q=0`, ...) as HAProxy's `parse_encoding_value` reads it: its bit (0
/// for a word that only starts like a known one: it counts for nothing) and whether its weight
/// is exactly `q=0`; `None` for an unknown coding or a malformed weight.
fn coding_of(item: &str) -> Option<(u32, bool)> {
    use coding::*;
    const NAMES: [(&str, u32); 13] = [
        ("aes128gcm", AES128GCM),
        ("br", BR),
        ("compress", COMPRESS),
        ("deflate", DEFLATE),
        ("exi", EXI),
        ("gzip", GZIP),
        ("identity", IDENTITY),
        ("pack200-gzip", PACK200_GZIP),
        ("x-gzip", GZIP),
        ("x-compress", COMPRESS),
        ("zstd", ZSTD),
        ("*", STAR),
        ("", 0),
    ];
    let first = *item.as_bytes().first()?;
    if !b"abcdegipxz*".contains(&first.to_ascii_lowercase()) {
        return None;
    }
    // A prefix match, as HAProxy's (`gzipx` is gzip); what follows is the weight.
    let (bit, rest) = NAMES
        .iter()
        .filter(|(n, _)| n.as_bytes().first() == Some(&first.to_ascii_lowercase()))
        .find_map(|(n, b)| {
            let head = item.get(..n.len())?;
            head.eq_ignore_ascii_case(n).then(|| (*b, &item[n.len()..]))
        })
        .unwrap_or((0, ""));
    if bit == 0 {
        return Some((0, false));
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Some((bit, false));
    }
    let weight = rest.strip_prefix(';')?.trim_start_matches([' ', '\t']);
    Some((bit, weight == "q=0"))
}

/// The codings a request accepts, as HAProxy's `accept_encoding_normalizer`: identity unless
/// refused, each known coding without a zero weight, `*` all but the refused ones, an unknown
/// one [`coding::OTHER`]; no `Accept-Encoding` at all accepts everything. `None` for 16 values
/// or more (HAProxy then neither looks up nor stores a variant).
pub fn accepted_codings(req: &HeaderMap) -> Option<u32> {
    let mut accepted = coding::IDENTITY;
    let mut refused = 0u32;
    let mut count = 0;
    for item in req.get_all(header::ACCEPT_ENCODING).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')) {
        if count == 16 {
            break;
        }
        count += 1;
        let item = String::from_utf8_lossy(item.trim_ascii()).to_ascii_lowercase();
        if item.is_empty() {
            continue;
        }
        match coding_of(&item) {
            Some((bit, true)) => refused |= bit,
            Some((bit, false)) => accepted |= bit,
            None => accepted |= coding::OTHER,
        }
    }
    if count == 16 {
        return None;
    }
    if accepted & coding::STAR != 0 {
        accepted = !0;
    }
    accepted &= !refused;
    Some(if count == 0 { !0 } else { accepted })
}

/// The codings of a response (`Content-Encoding`; none is identity), which key its variant;
/// `None` for an unknown coding, which HAProxy does not store when it varies on
/// `Accept-Encoding`.
pub fn response_codings(h: &HeaderMap) -> Option<u32> {
    let mut bits = 0;
    for item in h.get_all(header::CONTENT_ENCODING).iter().flat_map(|v| v.as_bytes().split(|&b| b == b',')) {
        let item = String::from_utf8_lossy(item.trim_ascii()).into_owned();
        bits |= coding_of(&item)?.0;
    }
    Some(if bits == 0 { coding::IDENTITY } else { bits })
}

/// Whether a variant stored with `stored` codings may answer a request accepting `accepted`.
pub fn coding_fits(stored: u32, accepted: u32) -> bool {
    stored & coding::OTHER == 0 && stored & accepted == stored
}

/// The part of a secondary key that keys a variant on its codings (see [`secondary`]).
pub fn coding_key(stored: u32) -> String {
    format!("accept-encoding={stored}\n")
}

/// Whether the stored secondary key `stored` answers a request whose exact part (see
/// [`secondary`]) is `exact` and which accepts the codings `accepted`.
pub fn variant_fits(stored: &str, exact: &str, accepted: u32) -> bool {
    let Some(rest) = stored.strip_prefix(exact) else { return false };
    let bits = rest.strip_prefix("accept-encoding=").and_then(|r| r.strip_suffix('\n'));
    bits.and_then(|b| b.parse().ok()).is_some_and(|b| coding_fits(b, accepted))
}

/// The exact part of the secondary key of a request, for the headers a stored response varies
/// on: their values, normalized. `Accept-Encoding` is not in it: a variant is found by the
/// coding of its response instead ([`variant_fits`]), as HAProxy does.
pub fn secondary(vary: &[HeaderName], req: &HeaderMap) -> String {
    let mut key = String::new();
    for n in vary.iter().filter(|n| **n != header::ACCEPT_ENCODING) {
        key.push_str(n.as_str());
        key.push('=');
        let vals: Vec<String> = req
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.split_whitespace().collect::<String>().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
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
        let v = [header::ACCEPT_ENCODING, header::REFERER];
        let a = secondary(&v, &map(&[("accept-encoding", "gzip, br"), ("referer", "/x")]));
        assert_eq!(a, secondary(&v, &map(&[("accept-encoding", "br"), ("referer", "/x")])), "codings are no part");
        assert_ne!(a, secondary(&v, &map(&[("referer", "/y")])));
        assert_eq!(secondary(&[], &map(&[("accept-encoding", "gzip")])), "");
    }

    /// HAProxy 2.6's `accept_encoding_normalizer` and `set_secondary_key_encoding`.
    #[test]
    fn codings_as_haproxy_reads_them() {
        use coding::*;
        let acc = |v: &[&str]| {
            let mut h = HeaderMap::new();
            for x in v {
                h.append(header::ACCEPT_ENCODING, HeaderValue::from_str(x).unwrap());
            }
            accepted_codings(&h)
        };
        assert_eq!(acc(&[]), Some(!0), "no field: anything");
        assert_eq!(acc(&["gzip"]), Some(GZIP | IDENTITY));
        assert_eq!(acc(&["gzip;q=0.5, BR", "deflate"]), Some(GZIP | BR | DEFLATE | IDENTITY));
        assert_eq!(acc(&["identity;q=0, gzip"]), Some(GZIP));
        assert_eq!(acc(&["*, br;q=0"]), Some(!BR));
        assert_eq!(acc(&["foo"]), Some(IDENTITY | OTHER));
        assert_eq!(acc(&["gz"]), Some(IDENTITY), "a word starting like a known one counts for nothing");
        assert_eq!(acc(&["gzip;q=0.0"]), Some(GZIP | IDENTITY), "only `q=0` exactly refuses");
        assert_eq!(acc(&[""]), Some(IDENTITY), "an empty field: identity only");
        assert_eq!(acc(&[&["gzip"; 16].join(",")]), None, "16 values or more");
        let resp = |v: &str| response_codings(&map(&[("content-encoding", v)]));
        assert_eq!(response_codings(&HeaderMap::new()), Some(IDENTITY));
        assert_eq!(resp("gzip"), Some(GZIP));
        assert_eq!(resp("x-gzip, br"), Some(GZIP | BR));
        assert_eq!(resp("foo"), None);
        assert!(coding_fits(IDENTITY, GZIP | IDENTITY));
        assert!(!coding_fits(IDENTITY, GZIP), "identity refused");
        assert!(coding_fits(GZIP, !0));
        assert!(!coding_fits(GZIP, DEFLATE | IDENTITY));
        let k = format!("referer=/x\n{}", coding_key(GZIP));
        assert!(variant_fits(&k, "referer=/x\n", GZIP | IDENTITY));
        assert!(!variant_fits(&k, "referer=/y\n", GZIP | IDENTITY));
        assert!(!variant_fits(&k, "referer=/x\n", IDENTITY));
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
