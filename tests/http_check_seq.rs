//! HAProxy 2.2+'s `http-check` sequences end to end: one haproxy.cfg with status, header and body
//! expectations and multi-step sequences (a `connect` to a second port, a POST with a body)
//! against real loopback HTTP servers, run by lbha (`run --haproxy-config`, the converter's
//! mapping) and by HAProxy 2.6 itself; each server must end UP or DOWN the same way in both.
//! Without the `haproxy` binary the HAProxy half is skipped (said on stderr).

mod common;
mod kit;

use common::*;
use kit::Web;
use std::time::{Duration, Instant};

/// (backend, server it checks, its check status (HAProxy's `check_status`), the `http-check`
/// lines).
fn cases(a: u16, b: u16, c: u16) -> Vec<(&'static str, u16, &'static str, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    vec![
        ("hdr_ok", a, "L7OK", s(&["expect status 200", "expect hdr name x-role value primary", "expect string ready"])),
        ("hdr_missing", b, "L7STS", s(&["expect status 200", "expect hdr name x-role value primary"])),
        ("fhdr_sub", a, "L7OK", s(&["expect fhdr name -m beg X-Ro value -m sub ready"])),
        ("fhdr_whole", a, "L7STS", s(&["expect fhdr name x-role value primary"])),
        ("not_2xx", b, "L7STS", s(&["expect ! rstatus ^2"])),
        ("body_neg", b, "L7OK", s(&["expect ! string ready"])),
        (
            "multi",
            a,
            "L7OK",
            vec![
                "connect".into(),
                "send meth GET uri /one ver HTTP/1.1 hdr Host h.example".into(),
                "expect status 200".into(),
                format!("connect port {c}"),
                "send meth POST uri /two body hello".into(),
                "expect string C".into(),
            ],
        ),
        (
            "multi_bad",
            a,
            "L7RSP",
            vec![
                "connect".into(),
                "send uri /three".into(),
                "expect status 200".into(),
                format!("connect port {c}"),
                "send uri /four".into(),
                "expect string nope".into(),
            ],
        ),
    ]
}

fn haproxy_cfg(front: u16, stats: Option<&str>, cases: &[(&str, u16, &str, Vec<String>)]) -> String {
    let mut cfg = String::from("global\n");
    if let Some(s) = stats {
        cfg.push_str(&format!("  stats socket {s}\n"));
    }
    cfg.push_str(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n  timeout check 1s\n",
    );
    for (name, port, _, lines) in cases {
        cfg.push_str(&format!("backend {name}\n  option httpchk GET /h\n"));
        for l in lines {
            cfg.push_str(&format!("  http-check {l}\n"));
        }
        cfg.push_str(&format!("  server s 127.0.0.1:{port} check inter 200 rise 1 fall 1\n"));
    }
    cfg.push_str(&format!("frontend f\n  bind 127.0.0.1:{front}\n  default_backend hdr_ok\n"));
    cfg
}

/// `(backend, status, check_status)` of the servers in a `show stat` CSV.
fn states(csv: &str) -> Vec<(String, String, String)> {
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n);
    let (Some(st), Some(sv), Some(cs)) = (col("status"), col("svname"), col("check_status")) else {
        return Vec::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > st.max(cs) && f[sv] == "s")
        .map(|f| (f[0].to_string(), f[st].to_string(), code(f[cs].trim_start_matches("* "))))
        .collect()
}

/// HAProxy's check status code; lbha's `check_status` column holds its description.
fn code(s: &str) -> String {
    let by_desc = [
        ("Layer7 check passed", "L7OK"),
        ("Layer7 wrong status", "L7STS"),
        ("Layer7 invalid response", "L7RSP"),
        ("Layer7 timeout", "L7TOUT"),
        ("Layer4", "L4CON"),
    ];
    by_desc.iter().find(|(d, _)| s.starts_with(d)).map_or(s, |(_, c)| c).to_string()
}

/// Waits (bounded) until `ask` reports every backend as expected; returns the last report.
fn settle(ask: impl Fn() -> String, want: &[(String, String, String)]) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut got = states(&ask());
        got.sort();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn http_check_sequences_decide_as_haproxy_does() {
    let a = Web::start("A");
    a.add_header("X-Role: primary, ready");
    a.set_body("A is ready");
    let b = Web::start("B");
    let c = Web::start("C");
    let cases = cases(a.port, b.port, c.port);
    let mut want: Vec<(String, String, String)> = cases
        .iter()
        .map(|(n, _, cs, _)| {
            let up = if cs.ends_with("OK") { "UP" } else { "DOWN" };
            (n.to_string(), up.to_string(), cs.to_string())
        })
        .collect();
    want.sort();

    let port = free_port();
    let l = Lbha::start_haproxy(&haproxy_cfg(port, None, &cases), &[port]);
    let got = settle(|| l.ctl(&["show stat"]), &want);
    assert_eq!(got, want, "lbha\n{}", l.log_text());
    // The requests as configured: the first on the server's port, the POST on the second one.
    let reqs = a.requests();
    let one = reqs.iter().find(|r| r.target == "/one").expect("GET /one arrived");
    assert_eq!((one.method.as_str(), one.version, one.header("host")), ("GET", 1, Some("h.example")));
    assert!(reqs.iter().any(|r| r.method == "GET" && r.target == "/h"), "option httpchk's request");
    let two = c.requests().into_iter().find(|r| r.target == "/two").expect("POST /two arrived");
    assert_eq!((two.method.as_str(), two.header("content-length")), ("POST", Some("5")));
    drop(l);

    if haproxy_bin().is_none() {
        eprintln!("skipped: HAProxy comparison (no /usr/sbin/haproxy)");
        return;
    }
    let dir = TempDir::new("hapstat");
    let sock = dir.0.join("stats.sock");
    let port = free_port();
    let (_h, _d) = haproxy(&haproxy_cfg(port, Some(&sock.display().to_string()), &cases), port);
    let got = settle(|| if sock.exists() { ask_socket(&sock, "show stat") } else { String::new() }, &want);
    assert_eq!(got, want, "HAProxy 2.6 decides the same");
}
