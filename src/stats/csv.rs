//! `;csv`: HAProxy's stats CSV (`show stat`), every column HAProxy 2.6 prints, in its order,
//! empty where HAProxy leaves a column empty for the row's type and where lbha keeps no such
//! figure (README, "Stats columns").

use super::Source;
use super::rows::{Kind, rows};
use std::sync::atomic::Ordering::Relaxed;

pub const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The number of columns, HAProxy's `-` separator before the stats modules' columns included.
pub const COLUMNS: usize = 128;

/// Index of the `-` column: the modules' columns (`ssl_sess`, `h2_*`, `h1_*`) follow it.
pub const MODULES_AT: usize = 103;

pub fn csv(active: &dyn Source) -> String {
    // The HTTP page shows no addresses, cookies nor algorithms (HAProxy's `stats show-legends`,
    // which lbha does not take, would).
    csv_from_rows(&csv_rows(active, false))
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

/// A check's reason split as HAProxy's columns: the status's description (`check_desc`) and
/// what follows `info: ` (`last_chk`).
fn check_texts(reason: &str) -> (String, String) {
    if reason.is_empty() {
        return Default::default();
    }
    match reason.split_once(", info: ") {
        Some((desc, info)) => (desc.to_string(), info.to_string()),
        None => (reason.split(',').next().unwrap_or("").to_string(), String::new()),
    }
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
/// socket's JSON) share one source of figures. `legends`: fill `addr`, `cookie` and `algo`, as
/// HAProxy does on its CLI and, with `stats show-legends`, on the HTTP page.
pub fn csv_rows(active: &dyn Source, legends: bool) -> Vec<Vec<String>> {
    // HAProxy's process number (`relative_pid`), 1 for its single process: lbha's one too.
    let pid = 1;
    let now = crate::state::rate_clock();
    let mut out = Vec::new();
    for r in rows(active) {
        let c = r.c;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let h = |i: usize| c.http_responses[i].load(Relaxed);
        let server = r.kind == Kind::Server;
        let backendish = matches!(r.kind, Kind::Backend | Kind::Server);
        let (act, bck) =
            if !backendish { (String::new(), String::new()) } else { (r.act.to_string(), r.bck.to_string()) };
        let listener = r.kind == Kind::Listener;
        let frontend = r.kind == Kind::Frontend;
        let num = |on: bool, v: u64| if on { v.to_string() } else { String::new() };
        let http = r.mode == "http";
        let (check_desc, last_chk) = check_texts(&r.check_status);
        let (rise, fall, health) = match r.rise_fall_health {
            Some((a, b, c)) => (a.to_string(), b.to_string(), c.to_string()),
            None => Default::default(),
        };
        let mut cols: Vec<String> = vec![String::new(); COLUMNS];
        let mut set = |i: usize, v: String| cols[i] = v;
        set(0, r.px.to_string());
        set(1, r.sv_owned.clone().unwrap_or_else(|| r.sv.to_string()));
        set(2, num(backendish, c.queue.cur.load(Relaxed).into()));
        set(3, num(backendish, c.queue.max.load(Relaxed).into()));
        set(4, c.cur_sessions.load(Relaxed).to_string());
        set(5, c.max_sessions.load(Relaxed).to_string());
        set(6, if listener { r.slim.unwrap_or(0).to_string() } else { opt(r.slim) });
        set(7, c.total_sessions.load(Relaxed).to_string());
        // A listener counts its sessions only (README, "Stats columns").
        set(8, num(!listener, n(&c.bytes_in)));
        set(9, num(!listener, n(&c.bytes_out)));
        set(10, num(!server && !listener, n(&c.denied_req)));
        set(11, num(!listener, n(&c.denied_resp)));
        set(12, num(frontend, n(&c.errors_req)));
        set(13, num(backendish, n(&c.errors_conn)));
        set(14, num(backendish, n(&c.errors_resp)));
        set(15, num(backendish, n(&c.retries)));
        set(16, num(backendish, n(&c.redispatches)));
        set(17, r.status.to_string());
        set(18, opt(r.weight));
        set(19, act);
        set(20, bck);
        set(21, opt(r.chkfail));
        set(22, opt(r.chkdown));
        set(23, opt(r.lastchg));
        set(24, opt(r.downtime));
        set(25, opt(r.qlimit));
        set(26, pid.to_string());
        set(27, r.iid.to_string());
        set(28, r.sid.to_string());
        set(30, num(backendish, c.total_sessions.load(Relaxed)));
        set(31, r.tracked.clone().unwrap_or_default());
        set(32, (r.kind as u8).to_string());
        // rate: sessions over the last second; rate_max: lbha keeps no maximum.
        set(33, num(!listener, c.sess_per_sec(now).into()));
        set(34, opt(r.rate_lim));
        set(36, r.check_status.split(',').next().unwrap_or("").to_string());
        set(38, opt(r.check_ms));
        for i in 0..6 {
            set(39 + i, num(http && !listener, h(i)));
        }
        set(45, opt(r.hanafail));
        set(46, num(frontend, c.req_per_sec(now).into()));
        // A frontend's in any mode; a backend's and a server's in mode http, as HAProxy.
        set(48, num(frontend || (http && backendish), n(&c.requests)));
        set(56, last_chk);
        set(65, check_desc);
        set(67, rise);
        set(68, fall);
        set(69, health);
        if legends {
            set(73, r.addr.clone().unwrap_or_default());
            set(74, r.cookie.clone().unwrap_or_default());
            set(76, r.algo.unwrap_or("").to_string());
        }
        set(75, r.mode.to_string());
        set(83, num(!listener, n(&c.failed_rewrites)));
        set(99, opt(r.uweight));
        set(MODULES_AT, "-".into());
        out.push(cols);
    }
    out
}
