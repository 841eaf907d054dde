//! `;csv`: HAProxy's stats CSV (`show stat`), the first 50 columns in HAProxy's order.

use super::Source;
use super::rows::{Kind, rows};
use std::sync::atomic::Ordering::Relaxed;

pub const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,";

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub fn csv(active: &dyn Source) -> String {
    csv_from_rows(&csv_rows(active))
}

/// The header and `rows` (as [`csv_rows`] gives them) as CSV text.
pub fn csv_from_rows(rows: &[Vec<String>]) -> String {
    let mut s = String::from(HEADER);
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

/// The rows as unquoted fields, one per column of [`HEADER`], so other encoders (the control
/// socket's JSON) share one source of figures.
pub fn csv_rows(active: &dyn Source) -> Vec<Vec<String>> {
    let pid = std::process::id();
    let mut out = Vec::new();
    for r in rows(active) {
        let c = r.c;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let h = |i: usize| c.http_responses[i].load(Relaxed);
        let server = r.kind == Kind::Server;
        let backendish = r.kind != Kind::Frontend;
        let (act, bck) = if r.kind == Kind::Frontend {
            (String::new(), String::new())
        } else {
            (r.act.to_string(), r.bck.to_string())
        };
        let cols: [String; 50] = [
            r.px.to_string(),
            r.sv.to_string(),
            if backendish { c.queue.cur.load(Relaxed).to_string() } else { String::new() },
            if backendish { c.queue.max.load(Relaxed).to_string() } else { String::new() },
            c.cur_sessions.load(Relaxed).to_string(),
            c.max_sessions.load(Relaxed).to_string(),
            opt(r.slim),
            c.total_sessions.load(Relaxed).to_string(),
            n(&c.bytes_in).to_string(),
            n(&c.bytes_out).to_string(),
            if server { String::new() } else { n(&c.denied_req).to_string() },
            n(&c.denied_resp).to_string(),
            if r.kind == Kind::Frontend { n(&c.errors_req).to_string() } else { String::new() },
            if backendish { n(&c.errors_conn).to_string() } else { String::new() },
            if backendish { n(&c.errors_resp).to_string() } else { String::new() },
            if backendish { n(&c.retries).to_string() } else { String::new() },
            if backendish { n(&c.redispatches).to_string() } else { String::new() },
            r.status.to_string(),
            opt(r.weight),
            act,
            bck,
            opt(r.chkfail),
            opt(r.chkdown),
            opt(r.lastchg),
            opt(r.downtime),
            opt(r.qlimit),
            pid.to_string(),
            r.iid.to_string(),
            r.sid.to_string(),
            String::new(),
            if backendish { c.total_sessions.load(Relaxed).to_string() } else { String::new() },
            r.tracked.clone().unwrap_or_default(),
            (r.kind as u8).to_string(),
            "0".into(),
            String::new(),
            "0".into(),
            r.check_status.split(',').next().unwrap_or("").to_string(),
            String::new(),
            opt(r.check_ms),
            h(0).to_string(),
            h(1).to_string(),
            h(2).to_string(),
            h(3).to_string(),
            h(4).to_string(),
            h(5).to_string(),
            opt(r.hanafail),
            "0".into(),
            "0".into(),
            n(&c.requests).to_string(),
            "0".into(),
        ];
        out.push(cols.to_vec());
    }
    out
}
