//! Rule actions beyond rewrites, end to end through the real lbha binary: `set-src` and
//! friends (what the server, the rules and the log then see), `reject` and `silent-drop`
//! (closed without an answer, never forwarded), `set-timeout server`, and the map edits
//! (`set-map`, `del-map`, `add-acl`, `del-acl`) that later requests and the control socket see.

mod common;
mod kit;

use common::*;
use kit::{Answer, Web, head_server};
use std::io::{Read, Write};
use std::time::Duration;

/// Sends `req` on a fresh connection and reads what comes back until the close, a reset or
/// `wait` without news: (bytes received, whether the connection ended by itself).
fn send_and_listen(port: u16, req: &str, wait: Duration) -> (Vec<u8>, bool) {
    let mut s = connect(port);
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (out, false);
            }
            // A reset: ended, with nothing more.
            Err(_) => return (out, true),
        }
    }
}

#[test]
fn set_src_moves_the_client_for_rules_forwardfor_and_the_log() {
    let app = Web::start("app");
    let syslog = Syslog::new();
    let port = free_port();
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
forwardfor = true
log_format = "moved %ci:%cp to %fi:%fp %HP"
default_backend = "app"
http_request = [
  {{ set_src = "req.hdr(x-real-ip)", if = "{{ req.hdr(x-real-ip) -m found }}" }},
  {{ set_src_port = "int(4321)", if = "{{ req.hdr(x-real-ip) -m found }}" }},
  {{ set_dst = "str(198.51.100.9)", if = "{{ path /dst }}" }},
  {{ set_dst_port = "int(8443)", if = "{{ path /dst }}" }},
  {{ set_src = "req.hdr(x-bad)", if = "{{ req.hdr(x-bad) -m found }}" }},
  {{ set_header = {{ name = "X-Seen", value = "%[src]:%[src_port] %ci %[dst]:%[dst_port]" }} }},
  {{ deny = {{ status = 403 }}, if = "{{ src 203.0.113.0/24 }}" }},
]
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        syslog.port(),
        app.port
    );
    let _l = Lbha::start(&cfg, &[port]);

    let r = raw(port, b"GET /a HTTP/1.1\r\nHost: x\r\nX-Real-IP: 192.0.2.77\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("192.0.2.77"), "option forwardfor sends the new address");
    let x = seen.header("x-seen").unwrap().to_string();
    assert!(x.starts_with("192.0.2.77:4321 192.0.2.77 127.0.0.1:"), "{x}");
    let line = syslog.wait_for("moved 192.0.2.77");
    assert!(line.contains("moved 192.0.2.77:4321 to 127.0.0.1:"), "{line}");

    // The destination too; an IPv6 source keeps its port.
    let r = raw(port, b"GET /dst HTTP/1.1\r\nHost: x\r\nX-Real-IP: 2001:db8::5\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-seen"), Some("2001:db8::5:4321 2001:db8::5 198.51.100.9:8443"));
    let line = syslog.wait_for("/dst");
    assert!(line.contains("moved 2001:db8::5:4321 to 198.51.100.9:8443 /dst"), "{line}");

    // A value that is no address changes nothing (as HAProxy); later rules see the new source.
    let r = raw(port, b"GET /b HTTP/1.1\r\nHost: x\r\nX-Bad: nope\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    let r = raw(port, b"GET /c HTTP/1.1\r\nHost: x\r\nX-Real-IP: 203.0.113.4\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 403, "an ACL on src after set-src sees the new address");
}

#[test]
fn reject_and_silent_drop_close_without_an_answer() {
    let app = Web::start("app");
    let echo = kit::Hold::start();
    let (port, tport) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
timeout = {{ connect = "2s", client = "5s", server = "5s" }}
[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
http_request = [
  {{ reject = true, if = "{{ path /r }}" }},
  {{ silent_drop = true, if = "{{ path /s }}" }},
]
http_response = [{{ silent_drop = true, if = "{{ res.hdr(x-drop) -m found }}" }}]
[[backend]]
name = "app"
mode = "http"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
[[frontend]]
name = "tfe"
mode = "tcp"
bind = ["127.0.0.1:{tport}"]
default_backend = "echo"
tcp_request = [{{ connection = "silent-drop", if = "{{ dst_port {tport} }}" }}]
[[backend]]
name = "echo"
mode = "tcp"
servers = [{{ name = "e", addr = "127.0.0.1:{}" }}]
"#,
        app.port, echo.port
    );
    let _l = Lbha::start(&cfg, &[port, tport]);
    let wait = Duration::from_secs(2);

    let (got, ended) = send_and_listen(port, "GET /r HTTP/1.1\r\nHost: x\r\n\r\n", wait);
    assert!(got.is_empty() && ended, "reject closes at once, without an answer: {:?}", String::from_utf8_lossy(&got));
    let (got, _) = send_and_listen(port, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", wait);
    assert!(got.is_empty(), "silent-drop answers nothing: {:?}", String::from_utf8_lossy(&got));
    assert_eq!(app.count("/r") + app.count("/s"), 0, "nothing was forwarded");
    // The frontend still serves.
    assert_eq!(get(port, "/ok").status, 200);

    app.add_header("X-Drop: 1");
    let (got, _) = send_and_listen(port, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n", wait);
    assert!(got.is_empty(), "an http-response silent-drop sends nothing of the response: {got:?}");
    assert_eq!(app.count("/late"), 1, "the request went to the server first");

    let (got, _) = send_and_listen(tport, "hello", wait);
    assert!(got.is_empty(), "tcp-request connection silent-drop: no echo: {got:?}");
}

#[test]
fn set_timeout_server_overrides_the_backend_s() {
    let hung = head_server(Answer::Never);
    let app = Web::start("app");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
retries = 0
timeout = {{ connect = "2s", client = "30s", server = "30s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
use_backend = [{{ backend = "hung", if = "{{ path_beg /hung }}" }}]
default_backend = "app"
[[backend]]
name = "hung"
http_request = [
  {{ set_timeout = {{ server = "200ms" }}, if = "{{ path /hung/fixed }}" }},
  {{ set_timeout = {{ server = "req.hdr(x-ms)" }}, if = "{{ path /hung/expr }}" }},
]
servers = [{{ name = "h", addr = "127.0.0.1:{hung}" }}]
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        app.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    // The client waits far less than the backend's 30 s: only the rule's timeout can answer.
    let ask = |path: &str, extra: &str| {
        let mut s = connect(port);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").as_bytes()).unwrap();
        read_response(&mut s, false).map(|r| r.status)
    };
    assert_eq!(ask("/hung/fixed", "").unwrap(), 504);
    assert_eq!(ask("/hung/expr", "X-Ms: 300\r\n").unwrap(), 504);
    assert_eq!(get(port, "/fine").status, 200);
}

#[test]
fn map_edits_from_rules_reach_later_requests_and_the_control_socket() {
    let app = Web::start("app");
    let port = free_port();
    let dir = TempDir::new("rule-maps");
    dir.write("hosts.map", "a b\n");
    dir.write("banned.lst", "mallory\n");
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
acl = [{{ name = "banned", cond = "req.hdr(x-user) -f banned.lst" }}]
http_request = [
  {{ add_acl = {{ file = "banned.lst", key = "%[req.hdr(x-ban)]" }}, if = "{{ req.hdr(x-ban) -m found }}" }},
  {{ del_acl = {{ file = "banned.lst", key = "%[req.hdr(x-unban)]" }}, if = "{{ req.hdr(x-unban) -m found }}" }},
  {{ set_map = {{ file = "hosts.map", key = "%[req.hdr(x-k)]", value = "%[req.hdr(x-v)]" }}, if = "{{ req.hdr(x-k) -m found }}" }},
  {{ del_map = {{ file = "hosts.map", key = "%[req.hdr(x-del)]" }}, if = "{{ req.hdr(x-del) -m found }}" }},
  {{ set_map = {{ file = "new.map", key = "%[path]", value = "seen" }}, if = "{{ path_beg /record }}" }},
  {{ deny = {{}}, if = "banned" }},
  {{ set_header = {{ name = "X-Mapped", value = "%[req.hdr(x-look),map(hosts.map,none)]" }} }},
]
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        app.port
    );
    let lb = Lbha::start_in(dir, &cfg, &[port]);
    let ask = |extra: &str| {
        let r =
            raw(port, format!("GET /x HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").as_bytes()).unwrap();
        (
            r.status,
            if r.status == 200 { app.requests().pop().unwrap().header("x-mapped").map(str::to_string) } else { None },
        )
    };
    assert_eq!(ask("X-Look: a\r\n"), (200, Some("b".into())));
    ask("X-K: a\r\nX-V: z\r\n");
    assert_eq!(ask("X-Look: a\r\n"), (200, Some("z".into())), "set-map changes an existing key");
    ask("X-K: fresh\r\nX-V: 1\r\n");
    assert_eq!(ask("X-Look: fresh\r\n"), (200, Some("1".into())), "set-map adds an absent key");
    ask("X-Del: a\r\n");
    assert_eq!(ask("X-Look: a\r\n"), (200, Some("none".into())), "del-map removes it");

    assert_eq!(ask("X-User: mallory\r\n").0, 403);
    assert_eq!(ask("X-User: eve\r\n").0, 200);
    ask("X-Ban: eve\r\nX-User: nobody\r\n");
    assert_eq!(ask("X-User: eve\r\n").0, 403, "add-acl: the pattern file's ACL matches at once");
    ask("X-Unban: mallory\r\nX-User: nobody\r\n");
    assert_eq!(ask("X-User: mallory\r\n").0, 200, "del-acl");

    let shown = lb.ctl(&["show map hosts.map"]);
    assert!(shown.contains(" fresh 1") && !shown.contains(" a "), "{shown}");
    assert!(lb.ctl(&["show acl banned.lst"]).contains(" eve"));
    // A file no one had written: edited in memory, written only by `commit map`.
    get(port, "/record/1");
    assert!(lb.ctl(&["show map new.map"]).contains(" /record/1 seen"));
    assert!(!lb.dir.0.join("new.map").exists());
    assert_eq!(std::fs::read_to_string(lb.dir.0.join("hosts.map")).unwrap(), "a b\n", "the file is untouched");
}

/// `set-mark` is seen on lbha's client socket by `ss -e` (`fwmark:0x2a`); the mark needs
/// CAP_NET_ADMIN, so without it (or without `ss`) the test says skipped.
#[test]
fn set_mark_marks_the_client_socket() {
    if std::process::Command::new("ss").arg("-V").output().is_err() {
        eprintln!("skipped: no `ss`");
        return;
    }
    let app = Web::start("app");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
http_request = [{{ set_mark = "0x2a", if = "{{ path /mark }}" }}, {{ set_tos = "0x10" }}]
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        app.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    // A kept-alive connection, so that the socket is still there to look at.
    let mut s = connect(port);
    s.write_all(b"GET /mark HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    let me = s.local_addr().unwrap().port();
    let out = std::process::Command::new("ss").args(["-tnHe", "state", "established"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // lbha's side: its local address is the bind (the client's line lists the same two
    // addresses the other way round).
    let line = text.lines().find(|l| {
        let mut f = l.split_whitespace().skip(2);
        f.next() == Some(&format!("127.0.0.1:{port}")) && f.next() == Some(&format!("127.0.0.1:{me}"))
    });
    let Some(line) = line else { panic!("lbha's side of the connection not listed:\n{text}") };
    if !line.contains("fwmark") && !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: no privilege for SO_MARK");
        return;
    }
    assert!(line.contains("fwmark:0x2a"), "{line}");
}

#[test]
fn normalize_uri_rewrites_what_the_server_gets_and_strict_refuses() {
    let app = Web::start("app");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
http_request = [
  {{ normalize_uri = "path-merge-slashes" }},
  {{ normalize_uri = "path-strip-dot" }},
  {{ normalize_uri = "path-strip-dotdot full" }},
  {{ normalize_uri = "percent-decode-unreserved strict" }},
  {{ normalize_uri = "percent-to-uppercase" }},
  {{ normalize_uri = "query-sort-by-name" }},
  {{ deny = {{}}, if = "{{ path_beg /admin }}" }},
]
[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
"#,
        app.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    assert_eq!(get(port, "/a//./b/../../../c/%7e%2f?z=1&a=2&m=%3f").status, 200);
    assert_eq!(app.requests().pop().unwrap().target, "/c/~%2F?a=2&m=%3F&z=1");
    // Rules after the normalizers see the normalized path: no way around the deny.
    assert_eq!(get(port, "/x/../%61dmin/panel").status, 403);
    assert_eq!(get(port, "/%ZZ").status, 400, "strict refuses a bad percent sequence");
    assert_eq!(app.count("/%ZZ") + app.count("/admin"), 0);
}
