//! The HTML stats page: one table per proxy, colour by state, and (with `admin`) a form that sets
//! servers READY / DRAIN / MAINT.

use super::Source;
use super::rows::{Kind, rows};
use crate::config::snapshot::StatsSettings;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn human_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

const STYLE: &str = "body{font-family:sans-serif;font-size:13px;margin:1em}h1{font-size:18px}h2{font-size:15px;margin:1.2em 0 .3em}\
table{border-collapse:collapse}th,td{border:1px solid #aaa;padding:2px 6px;text-align:right;white-space:nowrap}\
th{background:#20507a;color:#fff}td.n{text-align:left}tr.fe td{background:#e8eef8}tr.be td{background:#dde4ee;font-weight:bold}\
tr.UP td,tr.no.check td{background:#c0ffc0}tr.DOWN td{background:#ff9090}tr.MAINT td{background:#c8c8ff}\
tr.DRAIN td{background:#ffd090}.legend span{padding:1px 6px;margin-right:6px}";

pub fn html(st: &StatsSettings, active: &dyn Source, uptime: Duration, admin: bool) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Statistics Report</title><style>{STYLE}</style>"
    );
    if let Some(r) = st.refresh {
        let _ = write!(s, "<meta http-equiv=\"refresh\" content=\"{}\">", r.as_secs().max(1));
    }
    s.push_str("</head><body>");
    let version = if st.hide_version { String::new() } else { format!(" {}", env!("CARGO_PKG_VERSION")) };
    let _ = write!(
        s,
        "<h1>lbha{} statistics</h1><p>pid {} · uptime {} · configuration generation {} · <a href=\"{}\">CSV</a></p>",
        esc(&version),
        std::process::id(),
        human_secs(uptime.as_secs()),
        active.generation(),
        esc(&format!("{};csv", st.uri)),
    );
    s.push_str("<p class=legend><span style=\"background:#c0ffc0\">UP</span><span style=\"background:#ff9090\">DOWN</span><span style=\"background:#ffd090\">DRAIN</span><span style=\"background:#c8c8ff\">MAINT</span></p>");
    // Listener rows (`option socket-stats`) are in the CSV only.
    let all: Vec<_> = rows(active).into_iter().filter(|r| r.kind != Kind::Listener).collect();
    let mut current = "";
    let mut open = false;
    for r in &all {
        if r.px != current {
            if open {
                s.push_str("</table>");
                if admin && current_has_servers(&all, current) {
                    admin_form_end(&mut s, current);
                }
            }
            current = r.px;
            open = true;
            let _ = write!(s, "<h2>{}</h2>", esc(r.px));
            if admin && current_has_servers(&all, current) {
                let _ = write!(s, "<form method=\"post\" action=\"{}\">", esc(&st.uri));
            }
            s.push_str("<table><tr>");
            if admin {
                s.push_str("<th></th>");
            }
            for h in [
                "name",
                "status",
                "weight",
                "cur",
                "max",
                "limit",
                "total",
                "queue",
                "queue max",
                "bytes in",
                "bytes out",
                "denied",
                "err req",
                "err conn",
                "err resp",
                "retries",
                "redisp",
                "2xx",
                "4xx",
                "5xx",
                "last check",
                "check ms",
                "last change",
                "downtime",
                "down",
            ] {
                let _ = write!(s, "<th>{h}</th>");
            }
            s.push_str("</tr>");
        }
        let c = r.c;
        let class = match r.kind {
            Kind::Frontend | Kind::Listener => "fe".to_string(),
            Kind::Backend => "be".to_string(),
            // "MAINT (via B/S)" is a MAINT row.
            Kind::Server => r.status.split(" (via ").next().unwrap_or_default().to_string(),
        };
        let _ = write!(s, "<tr class=\"{}\">", esc(&class));
        if admin {
            if r.kind == Kind::Server {
                let _ = write!(s, "<td><input type=\"checkbox\" name=\"s\" value=\"{}\"></td>", esc(r.sv));
            } else {
                s.push_str("<td></td>");
            }
        }
        let name = if r.backup { format!("{} (backup)", r.sv) } else { r.sv.to_string() };
        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
        let (q, qmax) = if r.kind == Kind::Backend {
            (c.queue.cur.load(Relaxed).to_string(), c.queue.max.load(Relaxed).to_string())
        } else {
            (String::new(), String::new())
        };
        let cells = [
            esc(&name),
            esc(&r.status),
            opt(r.weight.map(u64::from)),
            c.cur_sessions.load(Relaxed).to_string(),
            c.max_sessions.load(Relaxed).to_string(),
            opt(r.slim.map(u64::from)),
            c.total_sessions.load(Relaxed).to_string(),
            q,
            qmax,
            c.bytes_in.load(Relaxed).to_string(),
            c.bytes_out.load(Relaxed).to_string(),
            c.denied_req.load(Relaxed).to_string(),
            c.errors_req.load(Relaxed).to_string(),
            c.errors_conn.load(Relaxed).to_string(),
            c.errors_resp.load(Relaxed).to_string(),
            c.retries.load(Relaxed).to_string(),
            c.redispatches.load(Relaxed).to_string(),
            c.http_responses[1].load(Relaxed).to_string(),
            c.http_responses[3].load(Relaxed).to_string(),
            c.http_responses[4].load(Relaxed).to_string(),
            esc(&r.check_status),
            opt(r.check_ms),
            r.lastchg.map(human_secs).unwrap_or_default(),
            r.downtime.map(human_secs).unwrap_or_default(),
            opt(r.chkdown),
        ];
        // A tracking server's check cells say whose checks it follows, as HAProxy's page does.
        let via = r.tracked.as_deref().map(|t| {
            let t = esc(t);
            format!("<td class=ac colspan=2><a class=lfsb href=\"#{t}\">via {t}</a></td>")
        });
        for (i, cell) in cells.iter().enumerate() {
            match (i, &via) {
                (0, _) if r.kind == Kind::Server => {
                    let _ = write!(s, "<td class=n><a name=\"{}/{}\"></a>{cell}</td>", esc(r.px), esc(r.sv));
                }
                (0 | 20, _) => {
                    let _ = write!(s, "<td class=n>{cell}</td>");
                }
                (23, Some(v)) => s.push_str(v),
                (24, Some(_)) => {}
                _ => {
                    let _ = write!(s, "<td>{cell}</td>");
                }
            }
        }
        s.push_str("</tr>");
    }
    if open {
        s.push_str("</table>");
        if admin && current_has_servers(&all, current) {
            admin_form_end(&mut s, current);
        }
    }
    s.push_str("</body></html>\n");
    s
}

fn current_has_servers(all: &[super::rows::Row<'_>], px: &str) -> bool {
    all.iter().any(|r| r.px == px && r.kind == Kind::Server)
}

fn admin_form_end(s: &mut String, backend: &str) {
    let _ = write!(
        s,
        "<input type=\"hidden\" name=\"b\" value=\"{}\">Set the checked servers to <select name=\"action\"><option value=\"ready\">READY</option><option value=\"drain\">DRAIN</option><option value=\"maint\">MAINT</option></select> <input type=\"submit\" value=\"Apply\"></form>",
        esc(backend)
    );
}
