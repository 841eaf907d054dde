//! Passive health checks end to end (HAProxy's `observe`, `error-limit`, `on-error`) and
//! `on-marked-up shutdown-backup-sessions`: real lbha, test servers on loopback that answer 500
//! or refuse connections. The same haproxy.cfg goes to HAProxy too, when installed, and both
//! must log the same reason.

mod common;
mod kit;

use common::*;
use kit::{Web, wait_log};
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HAPROXY: &str = "/usr/sbin/haproxy";

fn layer7_cfg(port: u16, a: u16, b: u16) -> String {
    format!(
        "defaults\n  mode http\n  timeout connect 500ms\n  timeout client 5s\n  timeout server 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n\
         \x20 server a 127.0.0.1:{a} check inter 60s observe layer7 error-limit 3 on-error mark-down\n\
         \x20 server b 127.0.0.1:{b} check inter 60s\n"
    )
}

/// Sends requests (at most 30) until `log` shows `needle`; the statuses seen.
fn until_logged(port: u16, log: impl Fn() -> String, needle: &str) -> Vec<u16> {
    let mut seen = Vec::new();
    for _ in 0..30 {
        if log().contains(needle) {
            return seen;
        }
        seen.push(get(port, "/").status);
    }
    wait_log(log, needle);
    seen
}

const LAYER7_DOWN: &str = "Server be/a is DOWN, reason: Health analyze, info: \"Detected 3 consecutive errors, last one was: Wrong http response\"";

#[test]
fn layer7_errors_mark_the_server_down_with_haproxys_reason() {
    let a = Web::start("A");
    a.set_status(500);
    let b = Web::start("B");
    let port = free_port();
    let l = Lbha::start_haproxy(&layer7_cfg(port, a.port, b.port), &[port]);
    let seen = until_logged(port, || l.log_text(), LAYER7_DOWN);
    // The third 500 trips; the checker task applies it, so on a busy machine one more request
    // may reach A first (HAProxy applies it in the request's own stream: exactly 3, below).
    let errors = seen.iter().filter(|s| **s == 500).count();
    assert!((3..=4).contains(&errors), "three 500s from A took it down: {seen:?}");
    // A is out of rotation: B answers everything.
    for _ in 0..6 {
        assert_eq!(get(port, "/").text(), "B");
    }
    let stat = l.ctl(&["show stat"]);
    let row = stat.lines().find(|r| r.starts_with("be,a,")).expect("server row");
    let header = stat.lines().next().unwrap_or("");
    let col = header.trim_start_matches("# ").split(',').position(|c| c == "hanafail").expect("hanafail column");
    assert_eq!(row.split(',').nth(col), Some("1"), "{stat}");
}

#[test]
fn haproxy_logs_the_same_reason_for_the_same_config() {
    if !Path::new(HAPROXY).is_file() {
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    let a = Web::start("A");
    a.set_status(500);
    let b = Web::start("B");
    let port = free_port();
    let dir = TempDir::new("haproxy");
    let cfg = dir.write("haproxy.cfg", &layer7_cfg(port, a.port, b.port));
    let log_path = dir.0.join("haproxy.log");
    let stderr = std::fs::File::create(&log_path).expect("log file");
    let mut hap = Reaped::new(
        Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn haproxy"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(port) {
        if let Ok(Some(st)) = hap.try_wait() {
            panic!("haproxy exited ({st}): {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "haproxy never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let seen = until_logged(port, log, LAYER7_DOWN);
    assert_eq!(seen.iter().filter(|s| **s == 500).count(), 3, "{seen:?}");
}

#[test]
fn layer4_refused_connections_fail_checks() {
    // Traffic goes to a closed port; the checks go to a live one (`check_port`) and pass.
    let live = Web::start("L");
    let b = Web::start("B");
    let dead = free_port();
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
retries = 0
timeout = {{ connect = "500ms", client = "5s", server = "5s" }}

[[listen]]
name = "be"
bind = ["127.0.0.1:{port}"]
servers = [
  {{ name = "a", addr = "127.0.0.1:{dead}", check = true, check_port = {live}, inter = "60s", fall = 3, observe = "layer4", error_limit = 2 }},
  {{ name = "b", addr = "127.0.0.1:{b}" }},
]
"#,
        live = live.port,
        b = b.port
    );
    let l = Lbha::start(&cfg, &[port]);
    let needle = "Server be/a is DOWN, reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\"";
    let seen = until_logged(port, || l.log_text(), needle);
    // fail-check: each trip (2 refused connects) is one failed check; fall = 3 from fully UP,
    // or 1 if no check has passed yet (servers start one failure from DOWN, as in HAProxy).
    let refused = seen.iter().filter(|s| **s == 503).count();
    // (One more refused connect may come before the checker task applies the last trip.)
    assert!((2..=7).contains(&refused), "between 1 and 3 trips: {seen:?}");
    for _ in 0..4 {
        assert_eq!(get(port, "/").text(), "B");
    }
}

fn backup_session_after_up(shutdown: bool) -> std::io::Result<usize> {
    let echo_port = echo_server();
    let a_port = free_port();
    let port = free_port();
    let omu = if shutdown { ", on_marked_up = \"shutdown-backup-sessions\"" } else { "" };
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "500ms", client = "30s", server = "30s" }}

[[listen]]
name = "db"
bind = ["127.0.0.1:{port}"]
servers = [
  {{ name = "a", addr = "127.0.0.1:{a_port}", check = true, inter = 100, rise = 1, fall = 1{omu} }},
  {{ name = "k", addr = "127.0.0.1:{echo_port}", backup = true }},
]
"#
    );
    let l = Lbha::start(&cfg, &[port]);
    wait_log(|| l.log_text(), "Server db/a is DOWN");
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(echo(&mut c, b"ping").expect("the backup answers"), b"ping");
    let _a = Web::start_on("A", a_port);
    wait_log(|| l.log_text(), "Server db/a is UP");
    if !shutdown {
        assert_eq!(echo(&mut c, b"more").expect("the session stays on the backup"), b"more");
        return Ok(4);
    }
    let mut buf = [0u8; 16];
    c.read(&mut buf)
}

#[test]
fn on_marked_up_closes_the_backup_servers_sessions() {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    match backup_session_after_up(true) {
        Ok(0) => {}
        Err(e) if !matches!(e.kind(), WouldBlock | TimedOut) => {}
        other => panic!("the backup session stayed open: {other:?}"),
    }
}

#[test]
fn without_on_marked_up_backup_sessions_stay() {
    assert_eq!(backup_session_after_up(false).expect("open"), 4);
}
