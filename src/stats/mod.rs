//! The stats listener: HTML for people, `;csv` with HAProxy's columns for scripts, Prometheus
//! text for scrapers, all rendered from the same rows.

pub mod csv;
pub mod html;
pub mod prometheus;
pub mod rows;
pub mod srv_status;

pub use csv::{HEADER as CSV_HEADER, csv, csv_from_rows, csv_rows};

use crate::config::snapshot::StatsSettings;
use crate::state::Admin;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use std::time::Duration;

/// The running proxy as the stats read it; `proxy::Active` implements it, so this module
/// reads the proxy without depending on it.
pub trait Source {
    /// The configuration generation (`lbha_config_generation`).
    fn generation(&self) -> u64;
    fn snap(&self) -> &crate::config::snapshot::Snapshot;
    /// Live counters and server states of that snapshot.
    fn rt(&self) -> &crate::state::Attached;
    /// Log lines dropped so far because the sender was behind.
    fn log_dropped(&self) -> u64;
}

impl<T: Source + ?Sized> Source for std::sync::Arc<T> {
    fn generation(&self) -> u64 {
        (**self).generation()
    }
    fn snap(&self) -> &crate::config::snapshot::Snapshot {
        (**self).snap()
    }
    fn rt(&self) -> &crate::state::Attached {
        (**self).rt()
    }
    fn log_dropped(&self) -> u64 {
        (**self).log_dropped()
    }
}

/// Whether the `Authorization` header carries one of the configured `user:password` pairs.
fn authorized<B>(req: &Request<B>, st: &StatsSettings) -> bool {
    if st.auth.is_empty() {
        return true;
    }
    let Some(v) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(b64) = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")) else {
        return false;
    };
    let Some(decoded) = base64_decode(b64.trim()) else {
        return false;
    };
    let Ok(pair) = std::str::from_utf8(&decoded) else {
        return false;
    };
    st.auth.iter().any(|(u, p)| pair.split_once(':') == Some((u.as_str(), p.as_str())))
}

/// Standard base64 (RFC 4648) with padding, as Basic auth uses.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || chunk[..4 - pad].contains(&b'=') {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// The 401 a stats listener answers when `stats auth` is configured and the request does not
/// carry one of its users. Checked before anything else, admin actions included, as HAProxy does.
pub fn challenge<B>(req: &Request<B>, st: &StatsSettings) -> Option<Response<Bytes>> {
    if authorized(req, st) {
        return None;
    }
    let mut r = Response::new(Bytes::from_static(
        b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
    ));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let realm = st.realm.replace('"', "'");
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Some(r)
}

/// Answers a GET on a stats listener: Prometheus text at `metrics_uri`, CSV when the URI has `;csv`,
/// HTML otherwise. `admin` says whether this client may change server states from the page.
pub fn serve<B>(
    req: &Request<B>,
    st: &StatsSettings,
    active: &dyn Source,
    uptime: Duration,
    admin: bool,
) -> Response<Bytes> {
    if let Some(r) = challenge(req, st) {
        return r;
    }
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    let (body, ctype) = if is_metrics(req, st) {
        (prometheus::metrics(active, uptime), prometheus::CONTENT_TYPE)
    } else if pq.contains(";csv") {
        (csv::csv(active), "text/plain")
    } else {
        (html::html(st, active, uptime, admin), "text/html; charset=utf-8")
    };
    let mut r = Response::new(Bytes::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Whether a request is for this stats listener at all: the stats URI's prefix, as HAProxy, and
/// the Prometheus path only where the configuration names one.
pub fn wants<B>(req: &Request<B>, st: &StatsSettings) -> bool {
    is_metrics(req, st) || req.uri().path_and_query().is_some_and(|pq| pq.as_str().starts_with(st.uri.as_str()))
}

fn is_metrics<B>(req: &Request<B>, st: &StatsSettings) -> bool {
    st.metrics_uri.as_deref() == Some(req.uri().path())
}

/// Applies the admin form (`b=BACKEND&s=SERVER&s=...&action=ready|drain|maint`); `changed`
/// hears each server's (backend index, server index, state in force before).
pub fn apply_admin(
    active: &dyn Source,
    form: &str,
    changed: &mut dyn FnMut(usize, usize, Admin),
) -> Result<String, String> {
    let mut backend = None;
    let mut servers = Vec::new();
    let mut action = None;
    for (k, v) in form.split('&').filter_map(|kv| kv.split_once('=')) {
        let v = url_decode(v).ok_or_else(|| format!("bad encoding in {k}"))?;
        match k {
            "b" => backend = Some(v),
            "s" => servers.push(v),
            "action" => action = Some(v),
            _ => {}
        }
    }
    let backend = backend.ok_or("missing backend (b)")?;
    let admin = match action.as_deref() {
        Some("ready") => Admin::Ready,
        Some("drain") => Admin::Drain,
        Some("maint") => Admin::Maint,
        other => return Err(format!("unknown action {other:?} (ready, drain, maint)")),
    };
    let (bi, b) = active.snap().backend(&backend).ok_or_else(|| format!("no backend {backend:?}"))?;
    if servers.is_empty() {
        return Err("no server selected".into());
    }
    for s in &servers {
        let si = b.servers.iter().position(|x| &x.name == s).ok_or_else(|| format!("no server {backend}/{s}"))?;
        let rt = &active.rt().backends[bi].servers[si];
        let old = rt.admin();
        rt.set_admin(admin);
        changed(bi, si, old);
    }
    Ok(format!("{} server(s) of {backend} set to {admin:?}", servers.len()))
}

fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::{StatsSettings, base64_decode, challenge, wants};

    fn settings(metrics_uri: Option<&str>, auth: &[(&str, &str)]) -> StatsSettings {
        StatsSettings {
            uri: "/haproxy?stats".into(),
            auth: auth.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect(),
            realm: "r".into(),
            refresh: None,
            hide_version: false,
            metrics_uri: metrics_uri.map(str::to_string),
            admin: None,
        }
    }

    fn req(pq: &str, basic: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::get(pq);
        if let Some(v) = basic {
            b = b.header("authorization", format!("Basic {v}"));
        }
        b.body(()).unwrap()
    }

    #[test]
    fn metrics_are_served_only_where_named_and_behind_stats_auth() {
        // Without `metrics_uri`, `/metrics` is the application's, as with HAProxy.
        let st = settings(None, &[]);
        assert!(!wants(&req("/metrics", None), &st));
        assert!(wants(&req("/haproxy?stats;csv", None), &st));
        assert!(!wants(&req("/app", None), &st));
        // Named: that path only, and `stats auth` guards it like the page.
        let st = settings(Some("/metrics"), &[("ops", "secret")]);
        assert!(wants(&req("/metrics", None), &st));
        assert!(!wants(&req("/metrics/x", None), &st));
        assert_eq!(challenge(&req("/metrics", None), &st).map(|r| r.status().as_u16()), Some(401));
        // base64("ops:secret")
        assert!(challenge(&req("/metrics", Some("b3BzOnNlY3JldA==")), &st).is_none());
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("YWRtaW46MTIzNDU2").unwrap(), b"admin:123456");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("YQ=").is_none());
        assert!(base64_decode("Y!==").is_none());
        assert!(base64_decode("=AAA").is_none());
    }
}
