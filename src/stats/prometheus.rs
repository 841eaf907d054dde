//! Prometheus text exposition of the same figures, under stable `lbha_` names.

use super::Source;
use super::rows::{Kind, Row, rows};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Label values escaped per the exposition format.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&Row<'_>) -> Option<u64>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "current_sessions",
        help: "Sessions open now",
        kind: "gauge",
        value: |r| Some(r.c.cur_sessions.load(Relaxed) as u64),
    },
    Family {
        name: "max_sessions",
        help: "Most sessions open at once",
        kind: "gauge",
        value: |r| Some(r.c.max_sessions.load(Relaxed) as u64),
    },
    Family {
        name: "sessions_total",
        help: "Sessions since start",
        kind: "counter",
        value: |r| Some(r.c.total_sessions.load(Relaxed)),
    },
    Family {
        name: "bytes_in_total",
        help: "Bytes received from clients",
        kind: "counter",
        value: |r| Some(r.c.bytes_in.load(Relaxed)),
    },
    Family {
        name: "bytes_out_total",
        help: "Bytes sent to clients",
        kind: "counter",
        value: |r| Some(r.c.bytes_out.load(Relaxed)),
    },
    Family {
        name: "http_requests_total",
        help: "HTTP requests",
        kind: "counter",
        value: |r| Some(r.c.requests.load(Relaxed)),
    },
    Family {
        name: "requests_denied_total",
        help: "Requests denied by rules",
        kind: "counter",
        value: |r| Some(r.c.denied_req.load(Relaxed)),
    },
    Family {
        name: "responses_denied_total",
        help: "Responses denied by rules",
        kind: "counter",
        value: |r| Some(r.c.denied_resp.load(Relaxed)),
    },
    Family {
        name: "failed_header_rewriting_total",
        help: "Header rewrites that failed (HAProxy's wrew)",
        kind: "counter",
        value: |r| Some(r.c.failed_rewrites.load(Relaxed)),
    },
    Family {
        name: "request_errors_total",
        help: "Invalid requests",
        kind: "counter",
        value: |r| Some(r.c.errors_req.load(Relaxed)),
    },
    Family {
        name: "connection_errors_total",
        help: "Failed connections to servers",
        kind: "counter",
        value: |r| (r.kind != Kind::Frontend).then(|| r.c.errors_conn.load(Relaxed)),
    },
    Family {
        name: "response_errors_total",
        help: "Invalid or missing server responses",
        kind: "counter",
        value: |r| (r.kind != Kind::Frontend).then(|| r.c.errors_resp.load(Relaxed)),
    },
    Family {
        name: "retries_total",
        help: "Connect retries",
        kind: "counter",
        value: |r| (r.kind != Kind::Frontend).then(|| r.c.retries.load(Relaxed)),
    },
    Family {
        name: "redispatches_total",
        help: "Requests moved to another server",
        kind: "counter",
        value: |r| (r.kind != Kind::Frontend).then(|| r.c.redispatches.load(Relaxed)),
    },
    Family {
        name: "current_queue",
        help: "Requests waiting for a server slot",
        kind: "gauge",
        value: |r| (r.kind == Kind::Backend).then(|| r.c.queue.cur.load(Relaxed) as u64),
    },
    Family {
        name: "max_queue",
        help: "Most requests waiting at once",
        kind: "gauge",
        value: |r| (r.kind == Kind::Backend).then(|| r.c.queue.max.load(Relaxed) as u64),
    },
    Family { name: "weight", help: "Effective weight", kind: "gauge", value: |r| r.weight.map(u64::from) },
    Family {
        name: "up",
        help: "1 when UP (or DRAIN), 0 otherwise",
        kind: "gauge",
        value: |r| {
            // A server's word may carry its check counter or the agent ("UP 1/3", "DRAIN (agent)").
            let up = matches!(r.status.split(' ').next(), Some("UP" | "DRAIN")) || r.status == "no check";
            (r.kind != Kind::Frontend).then(|| u64::from(up))
        },
    },
    Family {
        name: "active_servers",
        help: "Usable non-backup servers",
        kind: "gauge",
        value: |r| (r.kind == Kind::Backend).then_some(r.act as u64),
    },
    Family {
        name: "backup_servers",
        help: "Usable backup servers",
        kind: "gauge",
        value: |r| (r.kind == Kind::Backend).then_some(r.bck as u64),
    },
    Family { name: "check_failures_total", help: "Failed health checks", kind: "counter", value: |r| r.chkfail },
    Family {
        name: "check_down_transitions_total",
        help: "Times health checks took the server DOWN",
        kind: "counter",
        value: |r| r.chkdown,
    },
    Family { name: "downtime_seconds_total", help: "Time spent DOWN", kind: "counter", value: |r| r.downtime },
    Family {
        name: "last_change_seconds",
        help: "Seconds since the last UP/DOWN change",
        kind: "gauge",
        value: |r| r.lastchg,
    },
    Family {
        name: "check_duration_milliseconds",
        help: "Duration of the last health check",
        kind: "gauge",
        value: |r| r.check_ms,
    },
];

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// The exposition format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn metrics(active: &dyn Source, uptime: Duration) -> String {
    let rows = rows(active);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP lbha_uptime_seconds Seconds since the daemon started\n# TYPE lbha_uptime_seconds gauge\nlbha_uptime_seconds {}",
        uptime.as_secs()
    );
    let _ = writeln!(
        s,
        "# HELP lbha_config_generation Configurations loaded since start\n# TYPE lbha_config_generation gauge\nlbha_config_generation {}",
        active.generation()
    );
    let _ = writeln!(
        s,
        "# HELP lbha_log_dropped_total Log lines dropped because the queue was full\n# TYPE lbha_log_dropped_total counter\nlbha_log_dropped_total {}",
        active.log_dropped()
    );
    for (kind, prefix) in [(Kind::Frontend, "frontend"), (Kind::Backend, "backend"), (Kind::Server, "server")] {
        for f in FAMILIES {
            let mut lines = String::new();
            for r in rows.iter().filter(|r| r.kind == kind) {
                if let Some(v) = (f.value)(r) {
                    let _ = writeln!(lines, "lbha_{prefix}_{}{{{}}} {v}", f.name, labels(r));
                }
            }
            if !lines.is_empty() {
                let _ = write!(
                    s,
                    "# HELP lbha_{prefix}_{} {}\n# TYPE lbha_{prefix}_{} {}\n{lines}",
                    f.name, f.help, f.name, f.kind
                );
            }
        }
        let name = format!("lbha_{prefix}_http_responses_total");
        let _ = writeln!(s, "# HELP {name} HTTP responses by status class\n# TYPE {name} counter");
        for r in rows.iter().filter(|r| r.kind == kind) {
            for (i, class) in CLASSES.iter().enumerate() {
                let _ = writeln!(s, "{name}{{{},code=\"{class}\"}} {}", labels(r), r.c.http_responses[i].load(Relaxed));
            }
        }
    }
    s
}

fn labels(r: &Row<'_>) -> String {
    match r.kind {
        Kind::Server => format!("proxy=\"{}\",server=\"{}\"", esc(r.px), esc(r.sv)),
        _ => format!("proxy=\"{}\"", esc(r.px)),
    }
}
