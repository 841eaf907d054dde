//! Health checks and server states end to end: real lbha, test servers on loopback that the tests
//! stop and restart. A dead server leaves rotation after `fall` failed checks and comes back after
//! `rise` good ones; backups take over and give back; HTTP checks reach the server exactly as
//! written; `on_marked_down = "shutdown-sessions"` closes sessions of a server going down.

mod common;
mod kit;

use common::*;
use kit::{Web, wait_log};
use std::io::{Read, Write};
use std::time::Duration;

fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n).map(|_| get(port, "/").text()).collect()
}

fn listen(port: u16, servers: &str, extra: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "500ms", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{servers}]
{extra}
"#
    )
}

#[test]
fn dead_server_leaves_after_fall_checks_and_returns_after_rise() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let chk = "check = true, inter = 150, rise = 3, fall = 2";
    let servers = format!(
        "{{ name = \"a\", addr = \"127.0.0.1:{}\", {chk} }}, {{ name = \"b\", addr = \"127.0.0.1:{}\", {chk} }}",
        a.port, b.port
    );
    let l = Lbha::start(&listen(port, &servers, "check = { http = \"GET /health\" }"), &[port]);
    let both = bodies(port, 4);
    assert!(both.contains(&"A".into()) && both.contains(&"B".into()));
    // Servers start UP but one failure short of DOWN (HAProxy's default); one passed check
    // makes them fully UP, so `fall` failures are then needed.
    wait_log(|| l.log_text(), "Health check for server web/a succeeded");
    let a_port = a.stop();
    wait_log(|| l.log_text(), "Server web/a is DOWN, reason: Layer4 connection refused");
    let log = l.log_text();
    let failures_before_down =
        log.split("Server web/a is DOWN").next().unwrap_or("").matches("Health check for server web/a failed").count();
    assert_eq!(failures_before_down, 1, "fall = 2: one failure logged as going down, the second takes it DOWN\n{log}");
    assert!(bodies(port, 10).iter().all(|x| x == "B"), "A out of rotation");
    let a = Web::start_on("A", a_port);
    wait_log(|| l.log_text(), "Server web/a is UP");
    assert!(a.count("/health") >= 3, "rise = 3: at least three passed checks before UP, saw {}", a.count("/health"));
    let back = bodies(port, 6);
    assert_eq!(back.iter().filter(|x| *x == "A").count(), 3, "{back:?}");
}

#[test]
fn backup_takes_over_and_gives_back() {
    let a = Web::start("A");
    let k = Web::start("K");
    let port = free_port();
    let chk = "check = true, inter = 100, rise = 1, fall = 1";
    let servers = format!(
        "{{ name = \"a\", addr = \"127.0.0.1:{}\", {chk} }}, {{ name = \"k\", addr = \"127.0.0.1:{}\", backup = true, {chk} }}",
        a.port, k.port
    );
    let l = Lbha::start(&listen(port, &servers, ""), &[port]);
    assert!(bodies(port, 10).iter().all(|x| x == "A"), "backup idle");
    let a_port = a.stop();
    wait_log(|| l.log_text(), "Server web/a is DOWN");
    assert!(bodies(port, 10).iter().all(|x| x == "K"), "backup took over");
    let _a = Web::start_on("A", a_port);
    wait_log(|| l.log_text(), "Server web/a is UP");
    assert!(bodies(port, 10).iter().all(|x| x == "A"), "given back");
}

#[test]
fn http_check_forms_reach_the_server_as_written() {
    let forms: [(&str, &str); 4] = [
        ("", ""),
        ("/index.html", ""),
        ("GET /test/index.php", ""),
        ("HEAD /index.jsp HTTP/1.1", "\"Host: www.xxx.com\""),
    ];
    let webs: Vec<Web> = (0..forms.len()).map(|_| Web::start("W")).collect();
    let mut cfg = String::from(
        "[defaults]\nmode = \"http\"\ntimeout = { connect = \"500ms\", client = \"5s\", server = \"5s\" }\n",
    );
    for (i, ((http, headers), w)) in forms.iter().zip(&webs).enumerate() {
        cfg.push_str(&format!(
            "\n[[backend]]\nname = \"b{i}\"\ncheck = {{ http = \"{http}\", headers = [{headers}] }}\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{}\", check = true, inter = 100 }}]\n",
            w.port
        ));
    }
    let port = free_port();
    cfg.push_str(&format!("\n[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"b0\"\n"));
    let _l = Lbha::start(&cfg, &[port]);
    let want = [
        ("OPTIONS", "/", 0, None),
        ("OPTIONS", "/index.html", 0, None),
        ("GET", "/test/index.php", 0, None),
        ("HEAD", "/index.jsp", 1, Some("www.xxx.com")),
    ];
    for (w, (method, target, version, host)) in webs.iter().zip(want) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.requests().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = w.requests().first().cloned().expect("a check arrived");
        assert_eq!((r.method.as_str(), r.target.as_str(), r.version), (method, target, version));
        if let Some(h) = host {
            assert_eq!(r.header("host"), Some(h));
        }
    }
}

#[test]
fn http_check_expectations_take_servers_down_with_the_reason() {
    let a = Web::start("A");
    let b = Web::start("B");
    a.set_status(500);
    b.set_body("starting");
    let mut cfg = String::from(
        "[defaults]\nmode = \"http\"\ntimeout = { connect = \"500ms\", client = \"5s\", server = \"5s\" }\n",
    );
    for (name, w, check) in [
        ("st", &a, "{ http = \"GET /health\" }"),
        ("body", &b, "{ http = \"GET /health\", expect = \"string ready\" }"),
    ] {
        cfg.push_str(&format!(
            "\n[[backend]]\nname = \"{name}\"\ncheck = {check}\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{}\", check = true, inter = 100, fall = 1, rise = 1 }}]\n",
            w.port
        ));
    }
    let port = free_port();
    cfg.push_str(&format!("\n[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"st\"\n"));
    let l = Lbha::start(&cfg, &[port]);
    wait_log(|| l.log_text(), "Server st/s is DOWN, reason: Layer7 wrong status 500");
    wait_log(|| l.log_text(), "Server body/s is DOWN, reason: Layer7 wrong content, code 200, expect string");
    assert_eq!(get(port, "/").status, 503, "no server left");
    a.set_status(200);
    wait_log(|| l.log_text(), "Server st/s is UP");
    assert_eq!(get(port, "/").text(), "A");
}

/// A TCP session through lbha to a server whose health port then closes.
fn tcp_session_after_down(shutdown: bool) -> std::io::Result<usize> {
    let hold = kit::Hold::start();
    let health = Web::start("H");
    let port = free_port();
    let omd = if shutdown { ", on_marked_down = \"shutdown-sessions\"" } else { "" };
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "500ms", client = "30s", server = "30s" }}

[[listen]]
name = "t"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{}", check = true, check_port = {}, inter = 100, fall = 1, rise = 1{omd} }}]
"#,
        hold.port, health.port
    );
    let l = Lbha::start(&cfg, &[port]);
    let mut c = connect(port);
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping", "session is up");
    health.stop();
    wait_log(|| l.log_text(), "Server t/s is DOWN");
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut one = [0u8; 1];
    c.read(&mut one)
}

#[test]
fn on_marked_down_shutdown_sessions_closes_open_sessions() {
    let r = tcp_session_after_down(true);
    assert!(
        matches!(r, Ok(0)) || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "session closed by lbha"
    );
}

#[test]
fn without_on_marked_down_sessions_stay_open() {
    let r = tcp_session_after_down(false);
    assert!(
        r.as_ref().is_err_and(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "session left alone: {r:?}"
    );
}

#[test]
fn slowstart_ramps_a_returning_server_up() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let chk = "check = true, inter = 100, rise = 1, fall = 1, weight = 100";
    let servers = format!(
        "{{ name = \"a\", addr = \"127.0.0.1:{}\", {chk}, slowstart = \"60s\" }}, {{ name = \"b\", addr = \"127.0.0.1:{}\", {chk} }}",
        a.port, b.port
    );
    let l = Lbha::start(&listen(port, &servers, ""), &[port]);
    let start = bodies(port, 20);
    assert_eq!(start.iter().filter(|x| *x == "A").count(), 10, "no ramp for a server up from the start");
    let a_port = a.stop();
    wait_log(|| l.log_text(), "Server web/a is DOWN");
    let _a = Web::start_on("A", a_port);
    wait_log(|| l.log_text(), "Server web/a is UP");
    // Within the first seconds of a 60 s ramp A weighs a few percent of B (1 to 5 of 100),
    // so it gets a request or a few of 120 instead of 60, but it is back in rotation.
    let after = bodies(port, 120);
    let to_a = after.iter().filter(|x| *x == "A").count();
    assert!((1..=10).contains(&to_a), "A got {to_a} of 120 while ramping");
}

/// External checks run on the daemon's check thread like the others: the command's exit status
/// takes the server down with HAProxy's reason and brings it back.
#[test]
fn external_check_exit_status_decides() {
    use std::os::unix::fs::PermissionsExt;
    let a = Web::start("A");
    let dir = TempDir::new("extchk");
    let flag = dir.0.join("healthy");
    let script = dir.write("check.sh", &format!("#!/bin/sh\n[ -e '{}' ] && exit 0\nexit 3\n", flag.display()));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = free_port();
    let servers =
        format!("{{ name = \"a\", addr = \"127.0.0.1:{}\", check = true, inter = 100, rise = 1, fall = 1 }}", a.port);
    let extra = format!("check = {{ external = {{ command = \"{}\", path = \"/bin:/usr/bin\" }} }}", script.display());
    let l = Lbha::start(&listen(port, &servers, &extra), &[port]);
    wait_log(|| l.log_text(), "Server web/a is DOWN, reason: External check error, code 3");
    std::fs::write(&flag, "").expect("flag");
    wait_log(|| l.log_text(), "Server web/a is UP");
    assert_eq!(get(port, "/").text(), "A");
}

#[test]
fn a_tracking_server_follows_the_server_it_tracks() {
    let a = Web::start("A");
    let t = Web::start("T");
    let port = free_port();
    let servers = format!(
        "{{ name = \"a\", addr = \"127.0.0.1:{}\", check = true, inter = 100, rise = 1, fall = 1 }}, {{ name = \"t\", addr = \"127.0.0.1:{}\", track = \"a\" }}",
        a.port, t.port
    );
    let l = Lbha::start(&listen(port, &servers, ""), &[port]);
    let both = bodies(port, 4);
    assert!(both.contains(&"A".into()) && both.contains(&"T".into()), "{both:?}");
    let a_port = a.stop();
    wait_log(|| l.log_text(), "Server web/t is DOWN via web/a");
    // Both out: `t` has no checks of its own, yet it left with `a`.
    assert_eq!(get(port, "/").status, 503);
    assert!(t.count("/") >= 1 && t.requests().iter().all(|r| r.target == "/"), "t is never checked");
    let _a = Web::start_on("A", a_port);
    wait_log(|| l.log_text(), "Server web/t is UP via web/a");
    let back = bodies(port, 4);
    assert!(back.contains(&"A".into()) && back.contains(&"T".into()), "{back:?}");
}

#[test]
fn check_and_agent_targets_change_at_runtime() {
    let a = Web::start("A");
    let dead = free_port();
    let port = free_port();
    let servers = format!(
        "{{ name = \"a\", addr = \"127.0.0.1:{}\", check = true, check_port = {dead}, inter = 100, rise = 1, fall = 1 }}",
        a.port
    );
    let l = Lbha::start(&listen(port, &servers, ""), &[port]);
    wait_log(|| l.log_text(), "Server web/a is DOWN");
    assert_eq!(l.ctl(&[&format!("set server web/a check-addr 127.0.0.1 port {}", a.port)]).trim(), "");
    wait_log(|| l.log_text(), "Server web/a is UP");
    assert_eq!(get(port, "/").text(), "A");
    // HAProxy's refusals.
    assert!(l.ctl(&["set server web/a check-addr nope"]).contains("invalid addr 'nope'"));
    assert!(l.ctl(&["set server web/a check-addr 127.0.0.1 port x"]).contains("provided port is not an integer"));
    assert!(l.ctl(&["set server web/a agent-port 80"]).contains("agent checks are not enabled on this server"));
    // `show servers state` carries the new check target.
    let state = l.ctl(&["show servers state web"]);
    assert!(state.contains(&format!(" {} ", a.port)), "{state}");
}
