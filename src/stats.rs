//! The stats page: HTML for people, `;csv` with HAProxy's columns for scripts.

use crate::config::snapshot::StatsSettings;
use crate::proxy::Active;
use crate::proxy::body::{ProxyBody, full};
use crate::state::{Admin, Counters};
use http::{HeaderValue, Request, Response, StatusCode, header};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// HAProxy's CSV header, in HAProxy's order (the first 50 columns).
pub const CSV_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,";

/// Whether the `Authorization` header carries one of the configured `user:password` pairs.
fn authorized<B>(req: &Request<B>, st: &StatsSettings) -> bool {
    if st.auth.is_empty() {
        return true;
    }
    let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return false;
    };
    let Some(decoded) = base64_decode(b64.trim()) else {
        return false;
    };
    let Ok(pair) = std::str::from_utf8(&decoded) else {
        return false;
    };
    st.auth
        .iter()
        .any(|(u, p)| pair.split_once(':') == Some((u.as_str(), p.as_str())))
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

pub fn serve<B>(
    req: &Request<B>,
    st: &StatsSettings,
    active: &Active,
    uptime: std::time::Duration,
) -> Response<ProxyBody> {
    if !authorized(req, st) {
        let mut r = Response::new(full(
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
        ));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        let realm = st.realm.replace('"', "'");
        if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return r;
    }
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    let (body, ctype) = if pq.contains(";csv") {
        (csv(active), "text/plain")
    } else {
        (html(st, active, uptime), "text/html; charset=utf-8")
    };
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(refresh) = st.refresh
        && !pq.contains(";csv")
        && let Ok(v) = HeaderValue::from_str(&refresh.as_secs().max(1).to_string())
    {
        r.headers_mut().insert("refresh", v);
    }
    r
}

/// One row's figures.
struct Row<'a> {
    px: &'a str,
    sv: &'a str,
    c: &'a Counters,
    slim: Option<u32>,
    status: String,
    weight: String,
    act_bck: (String, String),
    chkdown: String,
    lastchg: String,
    kind: u8,
    check: String,
}

fn rows(active: &Active) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    for (i, f) in active.snap.frontends.iter().enumerate() {
        out.push(Row {
            px: &f.name,
            sv: "FRONTEND",
            c: &active.rt.frontends[i],
            slim: f.maxconn,
            status: "OPEN".into(),
            weight: String::new(),
            act_bck: (String::new(), String::new()),
            chkdown: String::new(),
            lastchg: String::new(),
            kind: 0,
            check: String::new(),
        });
    }
    for (bi, b) in active.snap.backends.iter().enumerate() {
        let brt = &active.rt.backends[bi];
        let mut act = 0;
        let mut bck = 0;
        for (si, s) in b.servers.iter().enumerate() {
            let rt = &brt.servers[si];
            if rt.usable() {
                if s.backup { bck += 1 } else { act += 1 }
            }
            let lastchg = rt
                .last_change
                .lock()
                .map(|l| l.0.elapsed().as_secs().to_string())
                .unwrap_or_default();
            out.push(Row {
                px: &b.name,
                sv: &s.name,
                c: &rt.counters,
                slim: s.maxconn,
                status: if s.check.is_some() || !rt.is_up() || rt.admin() != Admin::Ready {
                    rt.status().to_string()
                } else {
                    "no check".into()
                },
                weight: rt.weight().to_string(),
                act_bck: (
                    u8::from(!s.backup).to_string(),
                    u8::from(s.backup).to_string(),
                ),
                chkdown: rt.down_transitions.load(Relaxed).to_string(),
                lastchg,
                kind: 2,
                check: rt.last_check.lock().map(|c| c.clone()).unwrap_or_default(),
            });
        }
        out.push(Row {
            px: &b.name,
            sv: "BACKEND",
            c: &brt.counters,
            slim: None,
            status: if brt.nbsrv() > 0 {
                "UP".into()
            } else {
                "DOWN".into()
            },
            weight: b
                .servers
                .iter()
                .zip(&brt.servers)
                .filter(|(_, r)| r.usable())
                .map(|(_, r)| r.weight())
                .sum::<u32>()
                .to_string(),
            act_bck: (act.to_string(), bck.to_string()),
            chkdown: String::new(),
            lastchg: String::new(),
            kind: 1,
            check: String::new(),
        });
    }
    out
}

pub fn csv(active: &Active) -> String {
    csv_from_rows(&csv_rows(active))
}

/// The header and `rows` (as [`csv_rows`] gives them) as CSV text.
pub fn csv_from_rows(rows: &[Vec<String>]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for row in rows {
        for field in row {
            s.push_str(&csv_field(field));
            s.push(',');
        }
        s.push('\n');
    }
    s
}

/// Quotes a field holding a comma, quote or line break, as HAProxy's `csv_enc` does.
fn csv_field(f: &str) -> std::borrow::Cow<'_, str> {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\"").replace(['\n', '\r'], " ")).into()
    } else {
        f.into()
    }
}

/// The CSV's rows as unquoted fields, one per column of [`CSV_HEADER`], for other encoders
/// (the control socket's JSON) to share one source of figures.
pub fn csv_rows(active: &Active) -> Vec<Vec<String>> {
    rows(active)
        .into_iter()
        .map(|r| {
            let c = r.c;
            let n = |v: u64| v.to_string();
            let h = |i: usize| n(c.http_responses[i].load(Relaxed));
            let z = || "0".to_string();
            let e = String::new;
            vec![
                r.px.to_string(),
                r.sv.to_string(),
                z(),
                z(),
                n(c.cur_sessions.load(Relaxed).into()),
                n(c.max_sessions.load(Relaxed).into()),
                r.slim.map(|m| m.to_string()).unwrap_or_default(),
                n(c.total_sessions.load(Relaxed)),
                n(c.bytes_in.load(Relaxed)),
                n(c.bytes_out.load(Relaxed)),
                n(c.denied_req.load(Relaxed)),
                z(),
                n(c.errors_req.load(Relaxed)),
                n(c.errors_conn.load(Relaxed)),
                n(c.errors_resp.load(Relaxed)),
                n(c.retries.load(Relaxed)),
                n(c.redispatches.load(Relaxed)),
                r.status,
                r.weight,
                r.act_bck.0,
                r.act_bck.1,
                z(),
                r.chkdown,
                r.lastchg,
                z(),
                e(),
                "1".into(),
                z(),
                z(),
                e(),
                z(),
                e(),
                r.kind.to_string(),
                z(),
                e(),
                z(),
                r.check,
                e(),
                e(),
                h(0),
                h(1),
                h(2),
                h(3),
                h(4),
                h(5),
                z(),
                z(),
                z(),
                n(c.requests.load(Relaxed)),
                z(),
            ]
        })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn html(st: &StatsSettings, active: &Active, uptime: std::time::Duration) -> String {
    let mut s = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Statistics Report</title><style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #999;padding:2px 6px;text-align:right}th{background:#20507a;color:#fff}td.n{text-align:left}tr.UP td{background:#c0ffc0}tr.DOWN td{background:#ffa0a0}tr.MAINT td{background:#c0c0ff}tr.DRAIN td{background:#ffd0a0}</style></head><body>",
    );
    let version = if st.hide_version {
        String::new()
    } else {
        format!(" version {}", env!("CARGO_PKG_VERSION"))
    };
    let _ = write!(
        s,
        "<h1>lbha{}</h1><p>generation {} · uptime {}s</p>",
        esc(&version),
        active.generation,
        uptime.as_secs()
    );
    let mut current = "";
    for r in rows(active) {
        if r.px != current {
            if !current.is_empty() {
                s.push_str("</table>");
            }
            current = r.px;
            let _ = write!(
                s,
                "<h2>{}</h2><table><tr><th>name</th><th>status</th><th>weight</th><th>cur</th><th>max</th><th>limit</th><th>total</th><th>bytes in</th><th>bytes out</th><th>denied</th><th>err req</th><th>err conn</th><th>err resp</th><th>retries</th><th>redisp</th><th>2xx</th><th>5xx</th><th>last check</th><th>last change (s)</th></tr>",
                esc(r.px)
            );
        }
        let c = r.c;
        let _ = write!(
            s,
            "<tr class=\"{}\"><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&r.status),
            esc(r.sv),
            esc(&r.status),
            r.weight,
            c.cur_sessions.load(Relaxed),
            c.max_sessions.load(Relaxed),
            r.slim.map(|m| m.to_string()).unwrap_or_default(),
            c.total_sessions.load(Relaxed),
            c.bytes_in.load(Relaxed),
            c.bytes_out.load(Relaxed),
            c.denied_req.load(Relaxed),
            c.errors_req.load(Relaxed),
            c.errors_conn.load(Relaxed),
            c.errors_resp.load(Relaxed),
            c.retries.load(Relaxed),
            c.redispatches.load(Relaxed),
            c.http_responses[1].load(Relaxed),
            c.http_responses[4].load(Relaxed),
            esc(&r.check),
            r.lastchg,
        );
    }
    if !current.is_empty() {
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("YWRtaW46MTIzNDU2").unwrap(), b"admin:123456");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("YQ=").is_none());
        assert!(base64_decode("Y!==").is_none());
        assert!(base64_decode("=AAA").is_none());
    }

    #[test]
    fn csv_quotes_fields_with_commas() {
        let row = vec!["web".into(), "a".into(), "wrong status, code: 503".into()];
        let text = super::csv_from_rows(&[row]);
        assert!(
            text.ends_with("\nweb,a,\"wrong status, code: 503\",\n"),
            "{text}"
        );
    }
}
