//! Syslog output received by a test UDP listener: httplog, tcplog, dontlognull, server state changes.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn httplog_tcplog_and_server_state_reach_syslog() {
    let syslog = Syslog::new();
    let a = Backend::start("A");
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in echo.incoming().take(3) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(&buf[..n]);
        }
    });
    let (web, tcp, dead) = (free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local2 info"]
[defaults]
log = "global"
timeout = {{ connect = "1s" }}
[[listen]]
name = "web"
mode = "http"
httplog = true
bind = ["127.0.0.1:{web}"]
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}, {{ name = "gone", addr = "127.0.0.1:{dead}", check = true, inter = 100, fall = 1, weight = 0 }}]
[[listen]]
name = "db"
mode = "tcp"
tcplog = true
dontlognull = true
bind = ["127.0.0.1:{tcp}"]
servers = [{{ name = "e", addr = "127.0.0.1:{echo_port}" }}]
"#,
        syslog.port(),
        a.port
    );
    let _l = Lbha::start(&cfg, &[web, tcp]);
    assert_eq!(get(web, "/hello?x=1").text(), "A");
    let line = syslog.wait_for("\"GET /hello?x=1 HTTP/1.1\"");
    // <150> = local2 (18) * 8 + info (6)
    assert!(line.starts_with("<150>"), "{line}");
    assert!(line.contains("lbha["), "{line}");
    assert!(line.contains(" web web/a "), "{line}");
    // %B as HAProxy counts it: the head in its internal form (20 + `HTTP/1.1` + `200` + `OK`,
    // `content-length: 1` and `date: <29 bytes>` without separators, 1 ending the headers) and
    // the 1-byte body.
    assert!(line.contains(" 200 83 - - ---- "), "status, bytes and termination state: {line}");
    // An empty TCP session is not logged (dontlognull); one that talks is.
    drop(std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap());
    let mut s = connect(tcp);
    s.write_all(b"hi").unwrap();
    let mut back = [0u8; 2];
    s.read_exact(&mut back).unwrap();
    drop(s);
    let line = syslog.wait_for(" db db/e ");
    assert!(line.contains(" 2 "), "bytes from the server: {line}");
    let lines = syslog.lines();
    assert_eq!(lines.iter().filter(|l| l.contains(" db db/")).count(), 1, "{lines:#?}");
    // A health check taking a server down is logged at notice level.
    let line = syslog.wait_for("Server web/gone is DOWN");
    // <149> = local2 * 8 + notice (5)
    assert!(line.starts_with("<149>") && line.contains("Layer4 connection refused"), "{line}");
}

fn one_backend(port: u16, server: u16) -> String {
    format!(
        r#"
[[listen]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "a", addr = "127.0.0.1:{server}" }}]
"#
    )
}

/// `lbha run ... 2>&1 | head` once head has gone: every log write fails with EPIPE, and the
/// daemon must go on serving, through a reload that logs too.
#[test]
fn the_daemon_survives_losing_its_stderr() {
    let a = Backend::start("A");
    let port = free_port();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let mut l = Lbha::start_with_stderr(&one_backend(port, a.port), write_end, &[port]);
    assert_eq!(get(port, "/").text(), "A");
    l.signal(1); // SIGHUP: a reload, logged
    let deadline = Instant::now() + Duration::from_secs(10);
    while !l.ctl(&["show info"]).contains("Reloads: 1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..20 {
        assert_eq!(get(port, "/").text(), "A");
        assert!(l.child.try_wait().unwrap().is_none(), "lbha exited");
    }
    let info = l.ctl(&["show info"]);
    assert!(info.contains("Reloads: 1") && info.contains("Last_reload: ok"), "{info}");
}

/// Colour codes are for terminals; journald and log files get plain text.
#[test]
fn log_lines_to_a_file_carry_no_colour_codes() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&one_backend(port, a.port), &[port]);
    assert_eq!(get(port, "/").text(), "A");
    let log = std::fs::read(&l.log).unwrap();
    assert!(String::from_utf8_lossy(&log).contains("listening on"), "{}", String::from_utf8_lossy(&log));
    assert!(!log.contains(&0x1b), "escape codes in a log file:\n{}", String::from_utf8_lossy(&log));
}

/// A CONNECT that opens a tunnel gets its httplog line like any request.
#[test]
fn connect_tunnel_is_logged() {
    let syslog = Syslog::new();
    let sport = connect_server(1, b"");
    let web = free_port();
    let cfg = format!(
        "[global]\nlog = [\"127.0.0.1:{} local2 info\"]\n[defaults]\nlog = \"global\"\n[[listen]]\nname = \"web\"\nmode = \"http\"\nhttplog = true\nbind = [\"127.0.0.1:{web}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{sport}\" }}]\n",
        syslog.port()
    );
    let _l = Lbha::start(&cfg, &[web]);
    let mut s = connect(web);
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, true).unwrap().status, 200);
    assert_eq!(echo(&mut s, b"ping").unwrap(), b"ping");
    drop(s);
    let line = syslog.wait_for("\"CONNECT example.com:443 HTTP/1.1\"");
    assert!(line.contains(" 200 "), "{line}");
}

/// A backend's `log` lines: its server events go to its own targets (plus the global ones with
/// `log = "global"`), and nowhere with `log = "none"`, as HAProxy sends a backend's events to
/// the backend's loggers.
#[test]
fn backend_log_lines_take_its_server_events() {
    let (global, own) = (Syslog::new(), Syslog::new());
    let web = free_port();
    let (dead1, dead2, dead3) = (free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{g} local2 info"]
[defaults]
log = "global"
timeout = {{ connect = "1s" }}
[[frontend]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{web}"]
default_backend = "own"
[[backend]]
name = "own"
mode = "http"
log_targets = ["127.0.0.1:{o} local3 info"]
servers = [{{ name = "gone", addr = "127.0.0.1:{dead1}", check = true, inter = 100, fall = 1 }}]
[[backend]]
name = "mute"
mode = "http"
log = "none"
servers = [{{ name = "gone", addr = "127.0.0.1:{dead2}", check = true, inter = 100, fall = 1 }}]
[[backend]]
name = "plain"
mode = "http"
servers = [{{ name = "gone", addr = "127.0.0.1:{dead3}", check = true, inter = 100, fall = 1 }}]
"#,
        g = global.port(),
        o = own.port(),
    );
    let _l = Lbha::start(&cfg, &[web]);
    // The backend's own target, facility local3 (19 * 8 + notice 5 = 157), and the global one too.
    let line = own.wait_for("Server own/gone is DOWN");
    assert!(line.starts_with("<157>"), "{line}");
    global.wait_for("Server own/gone is DOWN");
    // A backend without log lines of its own keeps the global targets.
    global.wait_for("Server plain/gone is DOWN");
    // `log = "none"`: its server went down too (all three check at the same pace; a margin for
    // its line to arrive, were it sent) and said nothing.
    std::thread::sleep(Duration::from_millis(500));
    for s in [&global, &own] {
        let lines = s.drain();
        assert!(!lines.iter().any(|l| l.contains("mute/gone")), "{lines:#?}");
    }
    let lines = own.lines();
    assert!(!lines.iter().any(|l| l.contains("plain/gone")), "{lines:#?}");
}
