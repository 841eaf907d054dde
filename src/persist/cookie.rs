//! Cookie text as HAProxy reads and rewrites it: `Cookie` request headers (pairs separated by `;`),
//! `Set-Cookie` response headers (one cookie, then attributes), the persistence value
//! `SRV[|last|first]` (insert and rewrite modes) or `SRV~APP` (prefix mode), and HAProxy's 5-char
//! base64 dates, so cookies issued by HAProxy keep working behind lbha and the other way round.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Between the server id and the application's own value in prefix mode.
pub const PREFIX_DELIM: char = '~';
/// Between the server id and the last-seen / first-seen dates (maxidle, maxlife).
pub const DATE_DELIM: char = '|';

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `(name, value)` pairs of one `Cookie` header value, in order. RFC 2109 `$` attributes and
/// items without `=` are skipped; blanks around names, `=` and values are trimmed.
pub fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|item| {
        let (n, v) = item.split_once('=')?;
        let n = n.trim();
        (!n.is_empty() && !n.starts_with('$')).then(|| (n, v.trim()))
    })
}

/// Value of the first cookie called `name` over all `Cookie` headers (names are case-sensitive).
pub fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(pairs)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// What to do with one cookie while editing headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Keep,
    Drop,
    /// Replace the value, keep the name (and, for `Set-Cookie`, the attributes).
    Value(String),
}

/// Rewrites the request's `Cookie` headers: `f(name, value)` decides each cookie. Untouched
/// headers stay byte for byte; an edited one is rebuilt as `a=1; b=2`, and removed when empty.
pub fn edit_request_cookies(headers: &mut HeaderMap, mut f: impl FnMut(&str, &str) -> Edit) {
    let old: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    let mut changed = false;
    let mut out: Vec<HeaderValue> = Vec::with_capacity(old.len());
    for v in &old {
        let Ok(text) = v.to_str() else {
            out.push(v.clone());
            continue;
        };
        let mut parts: Vec<String> = Vec::new();
        let mut edited = false;
        for item in text.split(';') {
            let kept = match item.split_once('=') {
                Some((n, val)) if !n.trim().is_empty() && !n.trim().starts_with('$') => match f(n.trim(), val.trim()) {
                    Edit::Keep => Some(format!("{}={}", n.trim(), val.trim())),
                    Edit::Drop => {
                        edited = true;
                        None
                    }
                    Edit::Value(nv) => {
                        edited = true;
                        Some(format!("{}={nv}", n.trim()))
                    }
                },
                _ => Some(item.trim().to_string()).filter(|s| !s.is_empty()),
            };
            parts.extend(kept);
        }
        if !edited {
            out.push(v.clone());
            continue;
        }
        changed = true;
        if !parts.is_empty()
            && let Ok(nv) = HeaderValue::from_str(&parts.join("; "))
        {
            out.push(nv);
        }
    }
    if changed {
        headers.remove(COOKIE);
        for v in out {
            headers.append(COOKIE, v);
        }
    }
}

/// One `Set-Cookie` header: the cookie and the attribute text after its first `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// Everything after the first `;`, untouched (`" Path=/; HttpOnly"`), or empty.
    pub attrs: &'a str,
}

impl SetCookie<'_> {
    fn render(&self, value: &str) -> String {
        if self.attrs.is_empty() {
            format!("{}={value}", self.name)
        } else {
            format!("{}={value};{}", self.name, self.attrs)
        }
    }
}

/// Splits a `Set-Cookie` value; `None` when it has no `name=`.
pub fn parse_set_cookie(v: &str) -> Option<SetCookie<'_>> {
    let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
    let (n, val) = pair.split_once('=')?;
    let name = n.trim();
    (!name.is_empty()).then_some(SetCookie { name, value: val.trim(), attrs })
}

/// Value of the first `Set-Cookie` called `name`.
pub fn response_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_set_cookie)
        .find(|c| c.name == name)
        .map(|c| c.value)
}

/// Rewrites the response's `Set-Cookie` headers called `name`; returns whether one was seen.
pub fn edit_set_cookies(headers: &mut HeaderMap, name: &str, mut f: impl FnMut(&SetCookie<'_>) -> Edit) -> bool {
    let old: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    let mut found = false;
    let mut changed = false;
    let mut out = Vec::with_capacity(old.len());
    for v in old {
        let parsed = v.to_str().ok().and_then(parse_set_cookie);
        let Some(c) = parsed.filter(|c| c.name == name) else {
            out.push(v);
            continue;
        };
        found = true;
        match f(&c) {
            Edit::Keep => out.push(v.clone()),
            Edit::Drop => changed = true,
            Edit::Value(nv) => {
                changed = true;
                match HeaderValue::from_str(&c.render(&nv)) {
                    Ok(h) => out.push(h),
                    Err(_) => out.push(v.clone()),
                }
            }
        }
    }
    if changed {
        headers.remove(SET_COOKIE);
        for v in out {
            headers.append(SET_COOKIE, v);
        }
    }
    found
}

/// A persistence cookie's value taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistValue<'a> {
    /// The server's `cookie` value.
    pub server: &'a str,
    /// Prefix mode: the application's value after `~` (None when there was no `~`).
    pub app: Option<&'a str>,
    /// Unix seconds, from `|LAST` (insert/rewrite modes with maxidle/maxlife).
    pub last_seen: Option<u64>,
    /// Unix seconds, from `|LAST|FIRST`.
    pub first_seen: Option<u64>,
}

/// Splits `SRV~APP` (prefix mode) or `SRV|LAST|FIRST` (other modes). Dates that do not decode
/// are ignored, as HAProxy does.
pub fn split_value(value: &str, prefix_mode: bool) -> PersistValue<'_> {
    if prefix_mode {
        return match value.split_once(PREFIX_DELIM) {
            Some((srv, app)) => PersistValue { server: srv, app: Some(app), last_seen: None, first_seen: None },
            None => PersistValue { server: value, app: None, last_seen: None, first_seen: None },
        };
    }
    let mut it = value.splitn(3, DATE_DELIM);
    let server = it.next().unwrap_or("");
    let last_seen = it.next().and_then(decode_date);
    let first_seen = it.next().and_then(decode_date);
    PersistValue { server, app: None, last_seen, first_seen }
}

/// HAProxy's `s30tob64((secs + 3) >> 2)`: a date in 4-second units, 30 bits, 5 base64 chars,
/// rounded up so a fresh cookie is never seen as already stale.
pub fn encode_date(unix_secs: u64) -> String {
    let v = ((unix_secs + 3) >> 2) as u32 & 0x3fff_ffff;
    (0..5).map(|i| B64[((v >> (24 - 6 * i)) & 0x3f) as usize] as char).collect()
}

/// Inverse of [`encode_date`] (HAProxy's `b64tos30() << 2`); None for bad text or a zero date.
pub fn decode_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 5 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &b[..5] {
        let d = B64.iter().position(|&x| x == c)? as u64;
        v = (v << 6) | d;
    }
    (v > 0).then_some(v << 2)
}

/// Attributes of an inserted cookie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertAttrs<'a> {
    pub domain: Option<&'a str>,
    pub httponly: bool,
    pub secure: bool,
    /// `attr` values, already joined by `"; "` (empty: none).
    pub extra: &'a str,
}

/// The `Set-Cookie` value insert mode sends. A server without a cookie value gets a removal
/// (so a client does not stay stuck to, say, a cookie-less backup), as HAProxy does.
pub fn insert_value(
    name: &str,
    server_cookie: Option<&str>,
    dates: Option<(u64, Option<u64>)>,
    attrs: &InsertAttrs<'_>,
) -> String {
    let mut s = match server_cookie {
        None => format!("{name}=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"),
        Some(v) => {
            let mut s = format!("{name}={v}");
            if let Some((last, first)) = dates {
                s.push(DATE_DELIM);
                s.push_str(&encode_date(last));
                if let Some(f) = first {
                    s.push(DATE_DELIM);
                    s.push_str(&encode_date(f));
                }
            }
            s.push_str("; path=/");
            s
        }
    };
    if let Some(d) = attrs.domain {
        s.push_str("; domain=");
        s.push_str(d);
    }
    if attrs.httponly {
        s.push_str("; HttpOnly");
    }
    if attrs.secure {
        s.push_str("; Secure");
    }
    if !attrs.extra.is_empty() {
        s.push_str("; ");
        s.push_str(attrs.extra);
    }
    s
}

/// Whether a shared cache could store this response, by HAProxy 2.6's rules before `nocache`
/// adds `Cache-Control: private`: a heuristically cacheable status; no `private`, `no-cache` or
/// `no-store` directive, nor `Pragma: no-cache`; and an explicit lifetime (`max-age`,
/// `s-maxage`, `Expires`) or a validator (`Last-Modified`, `ETag`), without which HAProxy takes
/// it as not stored. The request method is the caller's part (only GET and HEAD qualify).
pub fn cacheable(status: u16, headers: &HeaderMap) -> bool {
    if !matches!(status, 200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501) {
        return false;
    }
    let has = |h: http::header::HeaderName, words: &[&str]| {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|d| d.trim().split('=').next().unwrap_or("").trim().to_ascii_lowercase())
            .any(|d| words.contains(&d.as_str()))
    };
    if has(http::header::CACHE_CONTROL, &["private", "no-cache", "no-store"])
        || has(http::header::PRAGMA, &["no-cache"])
    {
        return false;
    }
    has(http::header::CACHE_CONTROL, &["max-age", "s-maxage"])
        || [http::header::EXPIRES, http::header::LAST_MODIFIED, http::header::ETAG]
            .iter()
            .any(|h| headers.contains_key(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn all(h: &HeaderMap, name: http::header::HeaderName) -> Vec<String> {
        h.get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn pairs_trim_and_skip_attributes() {
        let v: Vec<_> = pairs(" a=1;b = 2 ; $Path=/; flag; c=").collect();
        assert_eq!(v, [("a", "1"), ("b", "2"), ("c", "")]);
    }

    #[test]
    fn finds_cookie_across_headers() {
        let h = hm(&[("cookie", "x=1; y=2"), ("cookie", "SERVERID=s2; z=3")]);
        assert_eq!(request_cookie(&h, "SERVERID"), Some("s2"));
        assert_eq!(request_cookie(&h, "serverid"), None, "names are case-sensitive");
        assert_eq!(request_cookie(&h, "y"), Some("2"));
    }

    #[test]
    fn edit_drops_in_first_middle_last_and_whole_header() {
        for (input, want) in [
            ("SERVERID=a; x=1", Some("x=1")),
            ("x=1; SERVERID=a; y=2", Some("x=1; y=2")),
            ("x=1;SERVERID=a", Some("x=1")),
            ("SERVERID=a", None),
        ] {
            let mut h = hm(&[("cookie", input), ("cookie", "other=9")]);
            edit_request_cookies(&mut h, |n, _| if n == "SERVERID" { Edit::Drop } else { Edit::Keep });
            let mut expect: Vec<String> = want.into_iter().map(str::to_string).collect();
            expect.push("other=9".into());
            assert_eq!(all(&h, COOKIE), expect, "{input}");
        }
    }

    #[test]
    fn edit_replaces_value_and_leaves_untouched_headers_alone() {
        let mut h = hm(&[("cookie", "JSESSIONID=s1~abc;  keep = me")]);
        edit_request_cookies(&mut h, |n, v| match (n, v.split_once('~')) {
            ("JSESSIONID", Some((_, app))) => Edit::Value(app.to_string()),
            _ => Edit::Keep,
        });
        assert_eq!(all(&h, COOKIE), ["JSESSIONID=abc; keep=me"]);
        let mut h = hm(&[("cookie", "a=1;  b=2")]);
        edit_request_cookies(&mut h, |_, _| Edit::Keep);
        assert_eq!(all(&h, COOKIE), ["a=1;  b=2"], "byte for byte");
    }

    #[test]
    fn set_cookie_parse_and_edit() {
        let c = parse_set_cookie("JSESSIONID=abc; Path=/; HttpOnly").unwrap();
        assert_eq!((c.name, c.value, c.attrs), ("JSESSIONID", "abc", " Path=/; HttpOnly"));
        assert!(parse_set_cookie("garbage").is_none());
        let mut h =
            hm(&[("set-cookie", "other=1"), ("set-cookie", "JSESSIONID=abc; Path=/"), ("set-cookie", "SERVERID=x")]);
        assert_eq!(response_cookie(&h, "JSESSIONID"), Some("abc"));
        let seen = edit_set_cookies(&mut h, "JSESSIONID", |c| Edit::Value(format!("s1~{}", c.value)));
        assert!(seen);
        assert!(edit_set_cookies(&mut h, "SERVERID", |_| Edit::Drop));
        assert!(!edit_set_cookies(&mut h, "nope", |_| Edit::Drop));
        assert_eq!(all(&h, SET_COOKIE), ["other=1", "JSESSIONID=s1~abc; Path=/"]);
    }

    #[test]
    fn dates_match_haproxy_encoding() {
        // (1_700_000_000 + 3) >> 2 = 425_000_000 = 0x1954FC40 → 6-bit groups 25,21,15,49,0.
        assert_eq!(encode_date(1_700_000_000), "ZVPxA");
        assert_eq!(decode_date("ZVPxA"), Some(1_700_000_000));
        for t in [4u64, 1_000_000_000, 1_700_000_001, 4_294_967_292] {
            let d = decode_date(&encode_date(t)).unwrap();
            assert!(d >= t && d - t < 4, "{t} -> {d}");
        }
        assert_eq!(decode_date("AAAAA"), None);
        assert_eq!(decode_date("AB"), None);
        assert_eq!(decode_date("AB*CD"), None);
    }

    #[test]
    fn split_value_modes() {
        let v = split_value("s1~abc~d", true);
        assert_eq!((v.server, v.app), ("s1", Some("abc~d")));
        assert_eq!(split_value("abc", true).app, None);
        let last = encode_date(1_700_000_000);
        let first = encode_date(1_600_000_000);
        let text = format!("s1|{last}|{first}");
        let v = split_value(&text, false);
        assert_eq!(v.server, "s1");
        assert_eq!(v.last_seen, Some(1_700_000_000));
        assert_eq!(v.first_seen, Some(1_600_000_000));
        let v = split_value("s1|bad", false);
        assert_eq!((v.server, v.last_seen), ("s1", None));
        assert_eq!(split_value("s1~x", false).server, "s1~x");
    }

    #[test]
    fn insert_value_forms() {
        let none = InsertAttrs::default();
        assert_eq!(insert_value("SID", Some("a"), None, &none), "SID=a; path=/");
        let all = InsertAttrs { domain: Some(".example.com"), httponly: true, secure: true, extra: "" };
        assert_eq!(insert_value("SID", Some("a"), None, &all), "SID=a; path=/; domain=.example.com; HttpOnly; Secure");
        assert_eq!(insert_value("SID", Some("a"), Some((1_700_000_000, None)), &none), "SID=a|ZVPxA; path=/");
        assert_eq!(
            insert_value("SID", Some("a"), Some((1_700_000_000, Some(1_700_000_000))), &none),
            "SID=a|ZVPxA|ZVPxA; path=/"
        );
        assert_eq!(insert_value("SID", None, None, &none), "SID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/");
    }

    /// Set-Cookie values HAProxy 2.6.12 sent for `cookie SRV insert indirect nocache secure
    /// httponly domain .example.com attr "SameSite=None" attr "Partitioned" dynamic` with
    /// `dynamic-cookie-key "s3cr3t key"`, servers 127.0.0.1:18832 and [::1]:18833 (no `cookie`)
    /// and 127.0.0.1:18834 (`cookie fixed`).
    #[test]
    fn attrs_and_dynamic_values_match_haproxy() {
        use crate::config::persist_spec::dynamic_cookie;
        let attrs = InsertAttrs {
            domain: Some(".example.com"),
            httponly: true,
            secure: true,
            extra: &["SameSite=None", "Partitioned"].join("; "),
        };
        let key = "s3cr3t key";
        let tail = "; path=/; domain=.example.com; HttpOnly; Secure; SameSite=None; Partitioned";
        for (addr, want) in [
            ("127.0.0.1:18832", format!("SRV=ee2fbd396a3da11a{tail}")),
            ("[::1]:18833", format!("SRV=1d3c0f23d0782938{tail}")),
        ] {
            let v = dynamic_cookie(key, addr.parse().unwrap());
            assert_eq!(insert_value("SRV", Some(&v), None, &attrs), want, "{addr}");
        }
        assert_eq!(insert_value("SRV", Some("fixed"), None, &attrs), format!("SRV=fixed{tail}"));
        // The removal sent for a server without a value carries them too, as in HAProxy.
        assert!(insert_value("SRV", None, None, &attrs).ends_with("; Secure; SameSite=None; Partitioned"));
    }

    #[test]
    fn cacheability() {
        let fresh = hm(&[("cache-control", "max-age=5")]);
        assert!(cacheable(200, &fresh));
        assert!(!cacheable(302, &fresh));
        assert!(!cacheable(500, &fresh));
        // Neither a lifetime nor a validator: HAProxy 2.6 takes it as not stored.
        assert!(!cacheable(200, &HeaderMap::new()));
        assert!(!cacheable(200, &hm(&[("cache-control", "public")])));
        assert!(cacheable(200, &hm(&[("cache-control", "public"), ("etag", "\"1\"")])));
        assert!(cacheable(404, &hm(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")])));
        assert!(!cacheable(200, &hm(&[("cache-control", "max-age=5, Private")])));
        assert!(!cacheable(200, &hm(&[("cache-control", "no-store")])));
        assert!(!cacheable(200, &hm(&[("pragma", "no-cache")])));
        assert!(cacheable(200, &hm(&[("cache-control", "public, max-age=60")])));
    }
}
