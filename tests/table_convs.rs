//! HAProxy's `table_*` converters and `in_table` on the real binary, from an unchanged
//! haproxy.cfg (`lbha run --haproxy-config`): a table keyed by a header is read by another
//! header's value. The expected answers are what HAProxy 2.6 gave for the same requests.

mod common;

use common::{Lbha, Resp, connect, free_port, read_response};
use std::io::Write;

fn request(port: u16, path: &str, headers: &str) -> Resp {
    let mut s = connect(port);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes()).unwrap();
    read_response(&mut s, false).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The fields of the answer, `exp` aside (it counts down), and `exp` itself.
fn fields(r: &Resp) -> (String, i64) {
    let body = String::from_utf8_lossy(&r.body).trim().to_string();
    let exp = body.split(' ').find_map(|f| f.strip_prefix("exp=")).and_then(|v| v.parse().ok()).unwrap_or(i64::MIN);
    (body.split(' ').filter(|f| !f.starts_with("exp=")).collect::<Vec<_>>().join(" "), exp)
}

#[test]
fn table_converters_read_entries_by_any_key() {
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n\
         \x20 stick-table type string len 32 size 1k expire 1m store http_req_rate(1m),gpc0,conn_cur\n\
         \x20 http-request track-sc0 req.hdr(x-key) if {{ req.hdr(x-key) -m found }}\n\
         \x20 http-request sc-inc-gpc0(0) if {{ path /flag }}\n\
         \x20 http-request deny deny_status 429 if {{ req.hdr(x-ask),table_gpc0(fe) gt 0 }}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"rate=%[req.hdr(x-ask),table_http_req_rate(fe)] in=%[req.hdr(x-ask),in_table(fe)] exp=%[req.hdr(x-ask),table_expire(fe,-1)] cur=%[req.hdr(x-ask),table_conn_cur(fe)] cnt=%[req.hdr(x-ask),table_conn_cnt(fe)] gpc0=%[req.hdr(x-ask),table_gpc0(fe)]\"\n"
    );
    let _lb = Lbha::start_haproxy(&cfg, &[port]);
    let r = request(port, "/", "x-key: alice\r\nx-ask: alice\r\n");
    assert_eq!(r.status, 200);
    let (f, exp) = fields(&r);
    // conn_cnt is not stored: no sample; the tracking connection is still open (cur=1).
    assert_eq!(f, "rate=1 in=1 cur=1 cnt= gpc0=0");
    assert!((1..=60_000).contains(&exp), "{exp}");
    // A key not in the table: 0, false, and table_expire's default.
    let r = request(port, "/", "x-key: alice\r\nx-ask: bob\r\n");
    assert_eq!(fields(&r), ("rate=0 in=0 cur=0 cnt=0 gpc0=0".to_string(), -1));
    let r = request(port, "/flag", "x-key: bob\r\nx-ask: alice\r\n");
    let (f, exp) = fields(&r);
    assert_eq!((r.status, f.as_str()), (200, "rate=2 in=1 cur=0 cnt= gpc0=0"));
    assert!((1..=60_000).contains(&exp), "{exp}");
    // bob's gpc0 was raised by the /flag request: a rule on another key's entry denies.
    assert_eq!(request(port, "/", "x-ask: bob\r\n").status, 429);
    assert_eq!(request(port, "/", "x-ask: alice\r\n").status, 200);
}

#[test]
fn a_table_converter_naming_no_table_is_refused() {
    let dir = common::TempDir::new("table-convs-bad");
    let cfg = dir.write(
        "lbha.toml",
        "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n\
         http_request = [{ deny = {}, if = \"{ req.hdr(x),table_conn_cur(nope) gt 0 }\" }]\n",
    );
    let out = std::process::Command::new(common::lbha_bin()).arg("check").arg("-c").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("frontend[0].http_request[0]") && err.contains("no stick table named `nope`"), "{err}");
}
