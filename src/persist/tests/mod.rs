//! Every cookie mode and flag, and stick rules with a fake clock, through the request → response
//! flow the proxy drives.

mod cookie_modes;
mod server_rules;
mod stick_rules;

pub(super) use super::*;
pub(super) use http::HeaderName;
pub(super) use http::Uri;
pub(super) use std::net::IpAddr;

pub(super) const T0_UNIX: u64 = 1_700_000_000;

pub(super) fn clock(base: Instant, secs: u64) -> Clock {
    Clock { now: base + Duration::from_secs(secs), unix: T0_UNIX + secs }
}

pub(super) fn servers(cookies: &[Option<&str>]) -> Vec<ServerKey> {
    cookies
        .iter()
        .enumerate()
        .map(|(i, c)| ServerKey { cookie: c.map(str::to_string), name: format!("s{i}"), num: i as i32 + 1 })
        .collect()
}

pub(super) fn cookie_spec(c: CookieSpec) -> Spec {
    Spec { cookie: Some(c), stick: None, servers: servers(&[Some("a"), Some("b"), None]) }
}

pub(super) fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

pub(super) fn values(h: &HeaderMap, n: HeaderName) -> Vec<String> {
    h.get_all(n).iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

pub(super) const ALL_UP: &dyn Fn(usize) -> bool = &|_| true;

/// Runs one exchange: request headers in, the server that answered, response headers in.
/// Returns (decision, request headers as the server saw them, response headers as the client saw).
#[allow(clippy::too_many_arguments)]
pub(super) fn exchange(
    spec: &Spec,
    rt: Option<&Runtime>,
    req: &[(&str, &str)],
    uri: &str,
    usable: &dyn Fn(usize) -> bool,
    fallback: usize,
    resp: &[(&str, &str)],
    status: u16,
    c: Clock,
) -> (Decision, HeaderMap, HeaderMap) {
    let mut rh = hm(req);
    let uri: Uri = uri.parse().unwrap();
    let d = spec.on_request(
        &ReqView { headers: &rh, uri: Some(&uri), src: Some("127.0.0.1".parse().unwrap()) },
        rt,
        usable,
        c,
    );
    spec.strip_request(&mut rh);
    let server = d.server.unwrap_or(fallback);
    let mut resp = hm(resp);
    spec.on_response(&d, server, status, &mut resp, rt, c);
    (d, rh, resp)
}

pub(super) fn simple(spec: &Spec, req: &[(&str, &str)], resp: &[(&str, &str)]) -> (Decision, HeaderMap, HeaderMap) {
    exchange(spec, None, req, "/", ALL_UP, 1, resp, 200, clock(Instant::now(), 0))
}
