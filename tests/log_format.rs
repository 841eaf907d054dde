//! `log-format`, captures, unique ids, `dontlog-normal`, `log-separate-errors` and `log-tag`,
//! compared field by field with the real HAProxy 2.6: both log the same request to a UDP syslog
//! receiver of the test, from the same configuration, to the same backend.

mod common;
mod kit;

use common::{Lbha, Syslog, TempDir, free_port, haproxy_bin, raw};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_haproxy(dir: &TempDir, cfg: &str, port: u16) -> Haproxy {
    start_haproxy_tz(dir, cfg, port, "UTC")
}

fn start_haproxy_tz(dir: &TempDir, cfg: &str, port: u16, tz: &str) -> Haproxy {
    let path = dir.write("haproxy.cfg", cfg);
    let child = Command::new(haproxy_bin().unwrap())
        .args(["-db", "-f"])
        .arg(&path)
        .env("TZ", tz)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let mut h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(h.0.try_wait().unwrap().is_none(), "haproxy exited; config:\n{cfg}");
        assert!(Instant::now() < deadline, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

/// The message after `TAG[PID]: `, and the `<PRI>`.
fn split(line: &str) -> (String, String) {
    let pri = line[..line.find('>').unwrap() + 1].to_string();
    let msg = line.split_once("]: ").map(|x| x.1).unwrap_or(line).trim_end_matches('\n').to_string();
    (pri, msg)
}

/// Fields that differ by nature between two runs: the client and frontend ports and timers.
const FORMAT: &str = "%ci %fi %f %ft %b %s %si %ST %B %tsc %rc %ac/%fc/%bc/%sc %sq/%bq %hr %hs %{+Q}r %HM %HU %HP %HQ %HV %ID %[src] %[unique-id] %CC %CS";

fn haproxy_cfg(port: u16, syslog: u16, server: u16, dead: u16) -> String {
    format!(
        "global\n  log 127.0.0.1:{syslog} local0 info\n  log-tag lbtest\n\
         defaults\n  mode http\n  log global\n  retries 0\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  capture request header Host len 20\n  capture request header X-Nope len 8\n\
         \x20 capture response header Content-Type len 5\n  capture cookie SESS len 12\n  unique-id-format %[req.hdr(x-trace)]-%ci\n  unique-id-header X-Req-ID\n\
         \x20 log-format \"{FORMAT}\"\n  option log-separate-errors\n\
         \x20 use_backend dead if {{ path /dead }}\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:{server}\n\
         backend dead\n  server d 127.0.0.1:{dead}\n"
    )
}

fn lbha_cfg(port: u16, syslog: u16, server: u16, dead: u16) -> String {
    format!(
        r#"
[global]
log = ["127.0.0.1:{syslog} local0 info"]
log_tag = "lbtest"
[defaults]
mode = "http"
log = "global"
retries = 0
timeout = {{ connect = "2s", client = "10s", server = "10s" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
capture_request = [{{ header = "Host", len = 20 }}, {{ header = "X-Nope", len = 8 }}]
capture_response = [{{ header = "Content-Type", len = 5 }}]
capture_cookie = {{ name = "SESS", len = 12 }}
unique_id_format = "%[req.hdr(x-trace)]-%ci"
unique_id_header = "X-Req-ID"
log_format = "{FORMAT}"
log_separate_errors = true
use_backend = [{{ backend = "dead", if = "{{ path /dead }}" }}]
default_backend = "b"
[[backend]]
name = "b"
servers = [{{ name = "s", addr = "127.0.0.1:{server}" }}]
[[backend]]
name = "dead"
servers = [{{ name = "d", addr = "127.0.0.1:{dead}" }}]
"#
    )
}

#[test]
fn log_format_lines_match_haproxys_field_by_field() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let web = kit::Web::start("W");
    web.add_header("Content-Type: text/plain");
    web.add_header("Set-Cookie: SESSNEW=n1; Path=/; HttpOnly");
    let dead = free_port();
    let dir = TempDir::new("logfmt");
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let (hp, lp) = (free_port(), free_port());
    let _h = start_haproxy(&dir, &haproxy_cfg(hp, hs.port(), web.port, dead), hp);
    let _l = Lbha::start(&lbha_cfg(lp, ls.port(), web.port, dead), &[lp]);
    let req = "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Trace: t42\r\nCookie: a=1; SESSID=abcdefghijklmnop\r\nConnection: close\r\n\r\n";
    for port in [hp, lp] {
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200);
    }
    // Both sent the unique id to the server.
    let ids: Vec<String> = web.requests().iter().filter_map(|r| r.header("x-req-id").map(str::to_string)).collect();
    assert_eq!(ids, ["t42-127.0.0.1", "t42-127.0.0.1"]);
    let theirs = hs.until("/a/b");
    let ours = ls.until("/a/b");
    let (tp, tm) = split(theirs.last().unwrap());
    let (op, om) = split(ours.last().unwrap());
    assert_eq!(op, tp, "priority\n  haproxy: {theirs:?}\n  lbha:    {ours:?}");
    assert!(ours.last().unwrap().contains(" lbtest["), "log_tag: {ours:?}");
    // The syslog header (RFC 3164, no host name unless log-send-hostname) matches once the
    // digits of the date and pid are masked.
    let mask = |l: &str| {
        l[..l.find("]: ").unwrap()].chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>()
    };
    assert_eq!(mask(ours.last().unwrap()), mask(theirs.last().unwrap()));
    let tf: Vec<&str> = tm.split(' ').collect();
    let of: Vec<&str> = om.split(' ').collect();
    assert_eq!(of.len(), tf.len(), "field count\n  haproxy: {tm}\n  lbha:    {om}");
    for (i, (t, o)) in tf.iter().zip(&of).enumerate() {
        // %ac/%fc/%bc/%sc (field 11) count connections, which the two count at different moments.
        if i == 11 {
            assert_eq!(o.split('/').count(), 4, "{om}");
            continue;
        }
        assert_eq!(o, t, "field {i}\n  haproxy: {tm}\n  lbha:    {om}");
    }

    // An error (connection refused: 503) is logged at level err with log-separate-errors.
    let req = "GET /dead HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    for port in [hp, lp] {
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 503);
    }
    let theirs = hs.until("/dead");
    let ours = ls.until("/dead");
    let (tp, tm) = split(theirs.last().unwrap());
    let (op, om) = split(ours.last().unwrap());
    assert_eq!(tp, "<131>", "{theirs:?}");
    assert_eq!(op, tp, "{ours:?}");
    let pick = |m: &str, i: usize| m.split(' ').nth(i).unwrap().to_string();
    // %s (field 5): the server the failed connect went to.
    for i in [2, 4, 5, 7, 9, 10] {
        assert_eq!(pick(&om, i), pick(&tm, i), "field {i}\n  haproxy: {tm}\n  lbha:    {om}");
    }
}

#[test]
fn dontlog_normal_keeps_only_errors_and_the_default_httplog_has_haproxys_fields() {
    let web = kit::Web::start("W");
    let syslog = Syslog::new();
    let (port, dead) = (free_port(), free_port());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
retries = 0
timeout = {{ connect = "2s" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
httplog = true
dontlog_normal = true
http_request = [{{ deny = {{}}, if = "{{ path /no }}" }}]
capture_request = [{{ header = "Host", len = 4 }}]
use_backend = [{{ backend = "dead", if = "{{ path /dead }}" }}]
default_backend = "b"
[[backend]]
name = "b"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
[[backend]]
name = "dead"
servers = [{{ name = "d", addr = "127.0.0.1:{dead}" }}]
"#,
        syslog.port(),
        web.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    let ok = "GET /fine HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    // A denial is an error for dontlog_normal (HAProxy's PR state), so it is logged.
    let denied = "GET /no HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(port, denied.as_bytes()).unwrap().status, 403);
    assert_eq!(raw(port, ok.as_bytes()).unwrap().status, 200);
    let bad = "GET /dead HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(port, bad.as_bytes()).unwrap().status, 503);
    let lines = syslog.until("/dead");
    assert!(!lines.iter().any(|l| l.contains("/fine")), "a normal request was logged: {lines:?}");
    let deny = lines.iter().find(|l| l.contains("/no ")).expect("the denial is logged");
    assert!(deny.contains(" 403 ") && deny.contains(" PR-- "), "{deny}");
    let (pri, msg) = split(lines.last().unwrap());
    // Without log_separate_errors an error stays at info, as in HAProxy.
    assert_eq!(pri, "<134>");
    let f: Vec<&str> = msg.split(' ').collect();
    // %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r
    assert_eq!(f[2], "f", "{msg}");
    assert!(f[3].starts_with("dead/"), "{msg}");
    assert_eq!(f[5], "503", "{msg}");
    assert_eq!(f[7..10], ["-", "-", "SC--"], "{msg}");
    assert_eq!(f[12], "{exam}", "capture cut to its len: {msg}");
    assert_eq!(f[13..], ["\"GET", "/dead", "HTTP/1.1\""], "{msg}");
}

/// A proxy's own `log` lines (`log_targets`) get its lines; with `log = "global"` the global
/// targets too, with `log = "none"` (`no log`) only its own.
#[test]
fn per_proxy_log_targets() {
    let web = kit::Web::start("W");
    let (global, own, only) = (Syslog::new(), Syslog::new(), Syslog::new());
    let (a, b) = (free_port(), free_port());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
httplog = true
[[frontend]]
name = "both"
bind = ["127.0.0.1:{a}"]
log_targets = ["127.0.0.1:{} format raw local1"]
default_backend = "b"
[[frontend]]
name = "mine"
bind = ["127.0.0.1:{b}"]
log = "none"
log_targets = ["127.0.0.1:{} format short local1"]
default_backend = "b"
[[backend]]
name = "b"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
"#,
        global.port(),
        own.port(),
        only.port(),
        web.port
    );
    let _l = Lbha::start(&cfg, &[a, b]);
    let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(a, req("/to-both").as_bytes()).unwrap().status, 200);
    assert_eq!(raw(b, req("/to-mine").as_bytes()).unwrap().status, 200);
    let g = global.until("/to-both");
    assert!(g.last().unwrap().starts_with("<134>"), "{g:?}");
    let o = own.until("/to-both");
    assert!(o.last().unwrap().starts_with("127.0.0.1:"), "raw format: {o:?}");
    let m = only.until("/to-mine");
    assert!(m.last().unwrap().starts_with("<6>127.0.0.1:"), "short format: {m:?}");
    // The global target never saw the `log = "none"` frontend's request.
    assert!(!global.drain().iter().any(|l| l.contains("/to-mine")));
}

/// `log_health_checks`: each change of a server's check result is logged, before the server
/// is even marked down.
#[test]
fn log_health_checks_logs_each_result_change() {
    let syslog = Syslog::new();
    let (port, dead) = (free_port(), free_port());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
default_backend = "b"
[[backend]]
name = "b"
log_health_checks = true
servers = [{{ name = "s", addr = "127.0.0.1:{dead}", check = true, inter = "100ms", fall = 3 }}]
"#,
        syslog.port()
    );
    let _l = Lbha::start(&cfg, &[port]);
    let lines = syslog.until("Health check for server b/s failed, reason: ");
    let line = lines.last().unwrap();
    assert!(line.starts_with("<133>") && line.contains("check duration: "), "{line}");
}

/// `http-request capture ... len|id`, `http-response capture ... id`, `http-after-response
/// capture` and `set-log-level` (a level, and `silent`): the same haproxy.cfg run by HAProxy 2.6
/// and by lbha (converted at start), same requests, same log messages and priorities.
#[test]
fn capture_actions_and_set_log_level_match_haproxy() {
    if haproxy_bin().is_none() {
        eprintln!("skipped: haproxy is not installed");
        return;
    }
    let web = kit::Web::start("W");
    let cfg = |port: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 debug\n  log-tag lbtest\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{port}\n  declare capture request len 6\n  declare capture response len 12\n  declare capture response len 3\n\
             \x20 http-request capture req.hdr(user-agent) len 8\n  http-request capture path id 0\n\
             \x20 capture request header X-Late len 3\n\
             \x20 http-request set-log-level err if {{ path /err }}\n  http-request set-log-level silent if {{ path /quiet }}\n\
             \x20 http-response capture res.hdr(content-length),concat(B) id 0\n\
             \x20 http-after-response capture status id 1\n\
             \x20 log-format \"%ST %hr %hs %{{+Q}}r\"\n  default_backend b\n\
             backend b\n  http-request capture req.hdr(x-from-backend) id 2\n  http-request set-var(txn.path) path\n\
             \x20 http-response set-log-level notice if {{ var(txn.path) -m str /notice }}\n\
             \x20 server s 127.0.0.1:{}\n",
            web.port
        )
    };
    let (hport, lport) = (free_port(), free_port());
    let (hlog, llog) = (Syslog::new(), Syslog::new());
    let dir = TempDir::new("capture");
    let _h = start_haproxy(&dir, &cfg(hport, hlog.port()), hport);
    let _l = Lbha::start_haproxy(&cfg(lport, llog.port()), &[lport]);
    let run = |port: u16, log: &Syslog| {
        for (path, extra) in [
            ("/a/longer/path", "User-Agent: curl-like-agent\r\nX-Late: abcdef\r\n"),
            ("/err", "X-From-Backend: yes\r\n"),
            ("/quiet", ""),
            ("/notice", ""),
            ("/end", ""),
        ] {
            let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\n{extra}Connection: close\r\n\r\n");
            assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200, "{path}");
        }
        log.until("/end").iter().map(|l| split(l)).collect::<Vec<_>>()
    };
    let (mut theirs, ours) = (run(hport, &hlog), run(lport, &llog));
    // The start-up probe (a connect without a request) is a `<BADREQ>` line in HAProxy 2.6.
    theirs.retain(|(_, m)| !m.contains("<BADREQ>"));
    assert_eq!(ours.len(), 4, "the silent request is not logged: {ours:#?}");
    assert_eq!(ours, theirs, "lbha vs HAProxy");
    // What the lines say, so the comparison cannot pass on two empty logs.
    assert!(ours[0].1.starts_with("200 {/a/lon|curl-lik|abc} {"), "{:?}", ours[0]);
    assert_eq!(ours[1].0, "<131>", "set-log-level err: {:?}", ours[1]);
    assert_eq!(ours[2].0, "<133>", "set-log-level notice: {:?}", ours[2]);
}

/// `%Th %Ti %TR %Tq`: an idle wait before the first byte (and between keep-alive requests) is
/// `%Ti`, not `%TR`; `%Tq` is their sum, as in HAProxy.
#[test]
fn idle_time_before_a_request_is_ti() {
    use std::io::{Read, Write};
    let web = kit::Web::start("W");
    let syslog = Syslog::new();
    let port = free_port();
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
log_format = "%HP %Th %Ti %TR %Tq"
default_backend = "b"
[[backend]]
name = "b"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
"#,
        syslog.port(),
        web.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let timers = |path: &str| -> Vec<i64> {
        let lines = syslog.until(&format!("{path} "));
        let (_, msg) = split(lines.last().unwrap());
        msg.split(' ').skip(1).map(|t| t.parse().unwrap()).collect()
    };
    for path in ["/one", "/two"] {
        std::thread::sleep(Duration::from_millis(400));
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
        }
        let t = timers(path);
        assert_eq!(t[0], 0, "no handshake on a plain connection: {t:?}");
        assert!(t[1] >= 350, "the wait before the first byte is %Ti: {t:?}");
        assert_eq!(t[3], t[0] + t[1] + t[2], "%Tq = %Th + %Ti + %TR: {t:?}");
    }
}

/// A server that answers every request with a short 200 and closes, remembering the source
/// port of each connection (what `%bp` must show).
fn port_recording_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u16>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten().take(64) {
            s2.lock().unwrap().push(c.peer_addr().unwrap().port());
            let mut c = c;
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if !buf.is_empty() {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
            }
        }
    });
    (port, seen)
}

/// `%bi %bp` (the server connection's own address), `%sslv %sslc` (the client's TLS version and
/// cipher), `%Tl %trl` (local time, here in a `TZ` of +05:30), `%Td %Tu` and `%lc`: the same
/// HTTPS requests through HAProxy 2.6 and lbha, compared field by field where the values do not
/// differ by nature.
#[test]
fn tls_backend_source_and_local_time_vars_match_haproxy() {
    if haproxy_bin().is_none() || which("curl").is_none() {
        println!("skipped: needs haproxy and curl (apt-get install haproxy curl)");
        return;
    }
    let dir = TempDir::new("logfmt-tls");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let pem = dir.write("site.pem", &format!("{}{}", cert.pem(), key.serialize_pem()));
    let pem = pem.display();
    let (server, ports) = port_recording_server();
    let fmt = "%HP %bi %bp %sslv %sslc %Tl %trl %Td %Tu %lc %ft";
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let (hp, lp) = (free_port(), free_port());
    let tz = "XST-5:30";
    let hcfg = format!(
        "global\n  log 127.0.0.1:{} local0 info\n\
         defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
         frontend f\n  bind 127.0.0.1:{hp} ssl crt {pem}\n  log-format \"{fmt}\"\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:{server}\n",
        hs.port()
    );
    let _h = start_haproxy_tz(&dir, &hcfg, hp, tz);
    let lcfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0 info"]
[defaults]
mode = "http"
log = "global"
timeout = {{ connect = "2s", client = "10s", server = "10s" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{lp} ssl crt {pem}"]
log_format = "{fmt}"
default_backend = "b"
[[backend]]
name = "b"
servers = [{{ name = "s", addr = "127.0.0.1:{server}" }}]
"#,
        ls.port()
    );
    let _l = common::Lbha::start_env(&lcfg, &[("TZ", tz)], &[lp]);
    let fetch = |port: u16, path: &str| {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://127.0.0.1:{port}{path}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{path} via {port}");
    };
    let lines = |log: &Syslog, port: u16| -> Vec<Vec<String>> {
        fetch(port, "/one");
        fetch(port, "/two");
        let got = log.until("/two ");
        let msgs: Vec<String> =
            got.iter().map(|l| split(l).1).filter(|m| m.starts_with("/one ") || m.starts_with("/two ")).collect();
        msgs.iter().map(|m| m.split(' ').map(str::to_string).collect()).collect()
    };
    let theirs = lines(&hs, hp);
    let before = ports.lock().unwrap().len();
    let ours = lines(&ls, lp);
    let our_ports: Vec<String> = ports.lock().unwrap()[before..].iter().map(u16::to_string).collect();
    assert_eq!((theirs.len(), ours.len()), (2, 2), "{theirs:?} {ours:?}");
    // %HP %bi %sslv %sslc and %ft (with `~` for TLS): the same.
    for i in [0, 1, 3, 4, 12] {
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(o[i], t[i], "field {i}\n  haproxy: {t:?}\n  lbha:    {o:?}");
        }
    }
    assert_eq!(ours[0][3], "TLSv1.3", "{ours:?}");
    // %bp: the port the server saw the request come from.
    assert_eq!([ours[0][2].clone(), ours[1][2].clone()], our_ports[..], "{ours:?}");
    // %Tl and %trl: local time with the zone's offset, in HAProxy's shape.
    let mask = |f: &str| f.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>();
    for (t, o) in theirs.iter().zip(&ours) {
        for i in [5, 7] {
            assert_eq!(o[i + 1], "+0530", "{o:?}");
            assert_eq!(
                (mask(&o[i]), &o[i + 1]),
                (mask(&t[i]), &t[i + 1]),
                "field {i}\n  haproxy: {t:?}\n  lbha:    {o:?}"
            );
        }
        // %Td and %Tu: numbers, the transfer part within the whole.
        let (td, tu): (i64, i64) = (o[9].parse().unwrap(), o[10].parse().unwrap());
        assert!(td >= 0 && tu >= td, "{o:?}");
    }
    // %lc counts the frontend's lines: one more for the second request, in both.
    let lc = |l: &[Vec<String>]| (l[0][11].parse::<i64>().unwrap(), l[1][11].parse::<i64>().unwrap());
    let ((t1, t2), (o1, o2)) = (lc(&theirs), lc(&ours));
    assert_eq!((o2 - o1, t2 - t1), (1, 1), "{theirs:?} {ours:?}");
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(cmd)).find(|p| p.exists())
}

/// `tcp-request content capture SAMPLE len N` in a tcp and an http frontend, shown by
/// `%[capture.req.hdr(N)]` and `%hr` in both modes' `log-format` and read by an
/// `http-request set-header`: lbha (from the same haproxy.cfg) logs what HAProxy 2.6 logs. The
/// SNI capture waits for the ClientHello through its condition: without one it would run on the
/// first (empty) look at the stream and capture nothing, in HAProxy as in lbha.
#[test]
fn tcp_content_captures_in_tcp_and_http_log_formats_match_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let (tag, seen) = common::tag_server("T");
    let web = kit::Web::start("W");
    let cfg = |tp: u16, hp: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n  log-tag lbtest\n\
             defaults\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend t\n  mode tcp\n  bind 127.0.0.1:{tp}\n  declare capture request len 4\n\
             \x20 tcp-request inspect-delay 5s\n  tcp-request content capture req.ssl_sni,upper len 6 if {{ req_ssl_hello_type 1 }}\n\
             \x20 tcp-request content capture src len 20\n  tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
             \x20 log-format \"T %f %b %s [%[capture.req.hdr(1)]] [%[capture.req.hdr(2)]] [%[capture.req.hdr(0)]] %hr %hrl %ts\"\n\
             \x20 default_backend tb\n\
             frontend h\n  mode http\n  bind 127.0.0.1:{hp}\n  tcp-request content capture src,ipmask(8) len 9\n\
             \x20 capture request header Host len 10\n  http-request set-header X-Cap %[capture.req.hdr(0)]-%[capture.req.hdr(1)]\n\
             \x20 log-format \"H %ST %hr [%[capture.req.hdr(0)]] %{{+Q}}r\"\n  default_backend hb\n\
             backend tb\n  mode tcp\n  server t 127.0.0.1:{tag}\n\
             backend hb\n  mode http\n  server w 127.0.0.1:{}\n",
            web.port
        )
    };
    let (htp, hhp, ltp, lhp) = (free_port(), free_port(), free_port(), free_port());
    let (hlog, llog) = (Syslog::new(), Syslog::new());
    let dir = TempDir::new("tcpcapture");
    let _h = start_haproxy(&dir, &cfg(htp, hhp, hlog.port()), htp);
    let _l = Lbha::start_haproxy(&cfg(ltp, lhp, llog.port()), &[ltp, lhp]);
    let run = |tp: u16, hp: u16, log: &Syslog| {
        assert_eq!(common::tls_hello(tp, "svc.example").unwrap(), "T");
        let tline = log.until("SVC.EX").last().map(|l| split(l).1).unwrap();
        let req = "GET /x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
        assert_eq!(raw(hp, req.as_bytes()).unwrap().status, 200);
        let hline = log.until("/x").last().map(|l| split(l).1).unwrap();
        (tline, hline)
    };
    let theirs = run(htp, hhp, &hlog);
    let ours = run(ltp, lhp, &llog);
    assert_eq!(ours, theirs, "lbha vs HAProxy");
    // What the lines say, so the comparison cannot pass on two empty logs.
    assert_eq!(ours.0, "T t tb t [SVC.EX] [127.0.0.1] [-] {|SVC.EX|127.0.0.1} - SVC.EX 127.0.0.1 --", "{ours:?}");
    assert_eq!(ours.1, "H 200 {127.0.0.0|example.co} [127.0.0.0] \"GET /x HTTP/1.1\"", "{ours:?}");
    // The backend got the ClientHello from both, and the header built from both slots.
    assert_eq!(seen.lock().unwrap().len(), 2);
    let caps: Vec<String> = web.requests().iter().filter_map(|r| r.header("x-cap").map(str::to_string)).collect();
    assert_eq!(caps, ["127.0.0.0-example.co", "127.0.0.0-example.co"]);
}

/// `log-tag` in a proxy and in `defaults` over the global one: each line's tag is its
/// frontend's, as HAProxy 2.6 sends it (same haproxy.cfg for both).
#[test]
fn per_proxy_log_tags_match_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let web = kit::Web::start("W");
    let cfg = |a: u16, b: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n  log-tag glob\n\
             defaults\n  mode http\n  log global\n  log-tag dflt\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend fa\n  bind 127.0.0.1:{a}\n  log-tag tag-a\n  log-format \"%f %ST\"\n  default_backend w\n\
             frontend fb\n  bind 127.0.0.1:{b}\n  log-format \"%f %ST\"\n  default_backend w\n\
             backend w\n  server w 127.0.0.1:{}\n",
            web.port
        )
    };
    // The tag of the line that says `needle`: the word before `[PID]: `.
    let tag_of = |log: &Syslog, needle: &str| {
        let line = log.until(needle).last().cloned().unwrap();
        let head = line.split_once("]: ").map(|x| x.0).unwrap_or_default();
        head.rsplit_once('[').map(|x| x.0).unwrap_or_default().rsplit(' ').next().unwrap_or_default().to_string()
    };
    let run = |a: u16, b: u16, log: &Syslog| {
        let req = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        assert_eq!(raw(a, req).unwrap().status, 200);
        let ta = tag_of(log, "fa 200");
        assert_eq!(raw(b, req).unwrap().status, 200);
        (ta, tag_of(log, "fb 200"))
    };
    let (ha, hb, la, lb) = (free_port(), free_port(), free_port(), free_port());
    let (hlog, llog) = (Syslog::new(), Syslog::new());
    let dir = TempDir::new("logtag");
    let _h = start_haproxy(&dir, &cfg(ha, hb, hlog.port()), ha);
    let _l = Lbha::start_haproxy(&cfg(la, lb, llog.port()), &[la, lb]);
    let theirs = run(ha, hb, &hlog);
    let ours = run(la, lb, &llog);
    assert_eq!(ours, theirs, "lbha vs HAProxy");
    assert_eq!(ours, ("tag-a".to_string(), "dflt".to_string()));
}

/// Digit runs collapsed (dates, pids, ports): the shape of a line.
fn shape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('0') {
                out.push('0');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits (bounded) until `file` holds a line containing `needle` per entry of `starts`, and
/// returns those lines in the order of `starts` (each the first line beginning with it).
fn lines_in(file: &std::path::Path, needle: &str, starts: &[&str]) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let found: Vec<Option<String>> = starts
            .iter()
            .map(|s| text.lines().find(|l| l.contains(needle) && l.starts_with(s)).map(str::to_string))
            .collect();
        if found.iter().all(Option::is_some) {
            return found.into_iter().map(Option::unwrap).collect();
        }
        assert!(Instant::now() < end, "no lines {starts:?} with {needle:?} in {}:\n{text}", file.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `log stdout|stderr format raw|iso|rfc5424|short`, a UDP `format rfc5424` target with
/// `log-format-sd`, and `option httplog clf`: lbha (from the same haproxy.cfg) writes the lines
/// HAProxy 2.6 writes. Dates, pids, client ports, timers and byte counts are masked; the rest
/// must be equal.
#[test]
fn stream_targets_rfc5424_sd_and_clf_lines_match_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let web = kit::Web::start("W");
    let cfg = |fp: u16, gp: u16, cp: u16, syslog: u16| {
        format!(
            "global\n  log stdout format raw local0 info\n  log stdout format iso local0 info\n\
             \x20 log stdout format rfc5424 local0 info\n  log stderr format short local0 info\n\
             \x20 log 127.0.0.1:{syslog} format rfc5424 local0 info\n  log-tag lbtest\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{fp}\n  log-format \"%ci %f %b %s %ST %HM %HU\"\n\
             \x20 log-format-sd [exampleSDID@1234\\ m=\\\"%HM\\\"\\ st=\\\"%ST\\\"\\ c=\\\"%ci\\\"]\n  default_backend b\n\
             frontend g\n  bind 127.0.0.1:{gp}\n  option httplog clf\n  default_backend b\n\
             frontend c\n  bind 127.0.0.1:{cp}\n  option httplog clf\n  capture request header Host len 10\n\
             \x20 capture request header X-None len 4\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:{}\n",
            web.port
        )
    };
    let dir = TempDir::new("logstreams");
    // Runs one daemon (`cmd` with stdout and stderr in files), sends the two requests, and
    // returns the lines: stdout raw, iso, rfc5424, stderr short, UDP rfc5424; for each request.
    let run = |name: &str, mut cmd: Command, [fp, gp, cp]: [u16; 3], syslog: &Syslog| {
        let out = dir.0.join(format!("{name}.out"));
        let err = dir.0.join(format!("{name}.err"));
        cmd.env("TZ", "UTC").stdout(std::fs::File::create(&out).unwrap()).stderr(std::fs::File::create(&err).unwrap());
        let mut child = common::Reaped::new(cmd.spawn().expect("spawn"));
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in [fp, gp, cp] {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "{name} exited: {}",
                    std::fs::read_to_string(&err).unwrap()
                );
                assert!(Instant::now() < deadline, "{name} did not listen on {p}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert_eq!(raw(fp, b"GET /p1?a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap().status, 200);
        assert_eq!(raw(gp, b"GET /p2?b=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap().status, 200);
        assert_eq!(raw(cp, b"GET /p3 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n").unwrap().status, 200);
        let mut all = Vec::new();
        for needle in ["/p1", "/p2", "/p3"] {
            let mut ls = lines_in(&out, needle, &["127.0.0.1 ", "20", "<134>1 "]);
            ls.extend(lines_in(&err, needle, &["<6>"]));
            ls.push(syslog.until(needle).pop().unwrap().trim_end().to_string());
            all.push(ls);
        }
        drop(child);
        all
    };
    let hports = [free_port(), free_port(), free_port()];
    let lports = [free_port(), free_port(), free_port()];
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let hcfg = dir.write("haproxy.cfg", &cfg(hports[0], hports[1], hports[2], hs.port()));
    let mut h = Command::new(haproxy_bin().unwrap());
    h.args(["-db", "-f"]).arg(&hcfg);
    let theirs = run("haproxy", h, hports, &hs);
    let lcfg = dir.write("lbha-haproxy.cfg", &cfg(lports[0], lports[1], lports[2], ls.port()));
    let mut l = Command::new(common::lbha_bin());
    l.args(["run", "--haproxy-config"]).arg(&lcfg).arg("-S").arg(dir.0.join("ctl.sock"));
    let ours = run("lbha", l, lports, &ls);

    // The log-format line: everything after the header is equal.
    let msg = "127.0.0.1 f b s 200 GET /p1?a=1";
    for (t, o) in theirs[0].iter().zip(&ours[0]) {
        let (th, oh) = (t.split_once(msg), o.split_once(msg));
        assert!(th.is_some_and(|(_, rest)| rest.is_empty()), "haproxy: {t}");
        assert!(oh.is_some_and(|(_, rest)| rest.is_empty()), "lbha:    {o}\nhaproxy: {t}");
        assert_eq!(shape(oh.unwrap().0), shape(th.unwrap().0), "header\n  haproxy: {t}\n  lbha:    {o}");
    }
    assert!(
        ours[0][2].contains(" lbtest ")
            && ours[0][2].contains(r#" [exampleSDID@1234 m="GET" st="200" c="127.0.0.1"] "#)
    );
    assert!(ours[0][4].contains(r#" [exampleSDID@1234 m="GET" st="200" c="127.0.0.1"] "#), "{}", ours[0][4]);

    // The CLF lines (without captures, then with them): fields compared one by one, except the
    // date, %B, %cp, %ms, the timers and the connection counts (which the two count at
    // different moments).
    let clf = "127.0.0.1 - - [";
    for (t, o) in theirs[1].iter().zip(&ours[1]).chain(theirs[2].iter().zip(&ours[2])) {
        let (th, tm) = t.split_at(t.find(clf).unwrap_or_else(|| panic!("haproxy: {t}")));
        let (oh, om) = o.split_at(o.find(clf).unwrap_or_else(|| panic!("lbha: {o}\nhaproxy: {t}")));
        assert_eq!(shape(oh), shape(th), "header\n  haproxy: {t}\n  lbha:    {o}");
        let (tf, of): (Vec<&str>, Vec<&str>) = (tm.split(' ').collect(), om.split(' ').collect());
        assert_eq!(of.len(), tf.len(), "field count\n  haproxy: {tm}\n  lbha:    {om}");
        for (i, (a, b)) in tf.iter().zip(&of).enumerate() {
            match i {
                3 => assert_eq!(shape(b), shape(a), "date\n  haproxy: {tm}\n  lbha:    {om}"),
                9 | 12 | 13 | 17..=21 | 23..=26 => assert!(b.parse::<u64>().is_ok(), "field {i}: {om}"),
                _ => assert_eq!(b, a, "field {i}\n  haproxy: {tm}\n  lbha:    {om}"),
            }
        }
    }
    assert!(ours[1][0].contains(r#" "GET /p2?b=2 HTTP/1.1" 200 "#), "{}", ours[1][0]);
    assert!(ours[2][0].contains(r#" "" "" "example.co" "#), "{}", ours[2][0]);
}

/// The message lines of `log` that start with `tag`, once `n` of them arrived (not the line
/// HAProxy logs for the connection that probed its port).
fn tagged(log: &Syslog, tag: &str, n: usize) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < end {
        if let Some(l) = log.next() {
            let (_, m) = split(&l);
            if m.starts_with(tag) && !m.contains("<BADREQ>") {
                out.push(m);
            }
        }
    }
    out
}

/// `%[...]` reading the stream at the end of the exchange, as HAProxy 2.6 does: a variable set
/// by a request rule (`req.*` ones are gone by then), one set by a response rule, the tracked
/// counter and the same entry by table, a map over a variable, `env`, converters over them, and
/// a unique id built from them. The same haproxy.cfg runs under both; the lines are compared
/// whole.
#[test]
fn stream_samples_in_log_formats_match_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let web = kit::Web::start("W");
    let dir = TempDir::new("logfmt-stream");
    let map = dir.write("hosts.map", "# host to site\nexample.com site-a\nother.test site-b\n");
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let (hp, lp) = (free_port(), free_port());
    let fmt = "L %[var(txn.host)] %[var(req.r)] %[var(res.st)] %[sc_http_req_rate(0)] %[src_http_req_rate(st)] \
               %[sc0_http_req_rate] %[var(txn.host),map({MAP},none)] %[env(LBHA_LOGT)] %{+Q}[var(txn.nope)] \
               %[var(txn.nope)] %[ssl_fc] %[var(txn.host),upper] %[var(txn.n),add(2)] %HU %ID";
    let fmt = fmt.replace("{MAP}", &map.display().to_string());
    let cfg = |port: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             backend st\n  stick-table type ip size 1k expire 1m store http_req_rate(1m)\n\
             frontend f\n  bind 127.0.0.1:{port}\n  http-request track-sc0 src table st\n\
             \x20 http-request set-var(txn.host) req.hdr(host),lower\n  http-request set-var(req.r) str(rq)\n\
             \x20 http-request set-var(txn.n) int(40)\n  http-response set-var(res.st) status\n\
             \x20 log-format \"{fmt}\"\n  default_backend b\n\
             \x20 unique-id-format %[var(txn.host)]-%[sc_http_req_rate(0)]\n  unique-id-header X-Uid\n\
             backend b\n  server s 127.0.0.1:{}\n",
            web.port
        )
    };
    let hcfg = cfg(hp, hs.port());
    let path = dir.write("haproxy.cfg", &hcfg);
    let child = Command::new(haproxy_bin().unwrap())
        .args(["-db", "-f"])
        .arg(&path)
        .env("LBHA_LOGT", "from-env")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let _h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", hp)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not listen on {hp}\n{hcfg}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _l = Lbha::start_haproxy_env(&cfg(lp, ls.port()), &[("LBHA_LOGT", "from-env")], &[lp]);
    let send = |port: u16, host: &str, path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200);
    };
    let mut lines = Vec::new();
    for (port, log) in [(hp, &hs), (lp, &ls)] {
        // Each line awaited before the next request: HAProxy logs at the stream's end, which
        // may come after the next request's.
        let mut got = Vec::new();
        for (host, path) in [("Example.COM", "/one"), ("other.test", "/two"), ("nomap.test", "/three")] {
            send(port, host, path);
            got.extend(tagged(log, "L ", 1));
        }
        lines.push(got);
    }
    let (theirs, ours) = (&lines[0], &lines[1]);
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    assert_eq!(ours, theirs);
    assert_eq!(
        ours[0], "L example.com - 200 1 1 1 site-a from-env \"\" - 0 EXAMPLE.COM 42 /one example.com-1",
        "the values themselves, not only the same as HAProxy's"
    );
    assert!(ours[2].contains(" 3 3 3 none "), "{ours:?}");
    // The unique id reads what the rules set (HAProxy renders it after them): both sent it.
    let ids: Vec<String> = web.requests().iter().filter_map(|r| r.header("x-uid").map(str::to_string)).collect();
    let once = ["example.com-1", "other.test-2", "nomap.test-3"];
    assert_eq!(ids, [once, once].concat());
}

/// `%[ssl_fc_sni]`, `%[ssl_fc_protocol]` and `%[ssl_fc]` on a TLS bind, and a unique id built
/// from the SNI, as HAProxy logs them.
#[test]
fn tls_samples_in_log_formats_match_haproxy() {
    if haproxy_bin().is_none() || which("curl").is_none() {
        println!("skipped: needs haproxy and curl (apt-get install haproxy curl)");
        return;
    }
    let web = kit::Web::start("W");
    let dir = TempDir::new("logfmt-sni");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sni.test".to_string()]).unwrap().self_signed(&key).unwrap();
    let pem = dir.write("site.pem", &format!("{}{}", cert.pem(), key.serialize_pem()));
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let (hp, lp) = (free_port(), free_port());
    let cfg = |port: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{port} ssl crt {}\n  unique-id-format %[ssl_fc_sni]-%[ssl_fc]\n\
             \x20 log-format \"S %[ssl_fc_sni] %[ssl_fc_protocol] %[ssl_fc] %ID\"\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:{}\n",
            pem.display(),
            web.port
        )
    };
    let _h = start_haproxy(&dir, &cfg(hp, hs.port()), hp);
    let _l = Lbha::start_haproxy(&cfg(lp, ls.port()), &[lp]);
    let mut lines = Vec::new();
    for (port, log) in [(hp, &hs), (lp, &ls)] {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--tlsv1.3", "--resolve"])
            .arg(format!("sni.test:{port}:127.0.0.1"))
            .arg(format!("https://sni.test:{port}/"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "via {port}");
        lines.push(tagged(log, "S ", 1));
    }
    assert_eq!(lines[1], lines[0]);
    assert_eq!(lines[1], ["S sni.test TLSv1.3 1 sni.test-1"]);
}

/// An `http-error` page whose `lf-string` and header read a variable a rule set: the same
/// body and header as HAProxy's.
#[test]
fn http_error_lf_pages_read_variables_as_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("logfmt-errvar");
    let (hp, lp, dead) = (free_port(), free_port(), free_port());
    let cfg = |port: u16| {
        format!(
            "defaults\n  mode http\n  retries 0\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{port}\n  http-request set-var(txn.who) req.hdr(x-who),upper\n\
             \x20 http-error status 503 content-type text/plain lf-string \"down for %[var(txn.who)] at %[path]\" \
             hdr X-Who \"%[var(txn.who),lower]\"\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:{dead}\n"
        )
    };
    let _h = start_haproxy(&dir, &cfg(hp), hp);
    let _l = Lbha::start_haproxy(&cfg(lp), &[lp]);
    let req = "GET /p HTTP/1.1\r\nHost: h\r\nX-Who: Alice\r\nConnection: close\r\n\r\n";
    let mut got = Vec::new();
    for port in [hp, lp] {
        let r = raw(port, req.as_bytes()).unwrap();
        assert_eq!(r.status, 503);
        let who = r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-who")).map(|(_, v)| v.clone());
        got.push((String::from_utf8_lossy(&r.body).into_owned(), who));
    }
    assert_eq!(got[1], got[0]);
    assert_eq!(got[1], ("down for ALICE at /p".to_string(), Some("alice".to_string())));
}

/// A table or map a format names that does not exist, and a fetch of the request buffer, are
/// located errors (HAProxy refuses the three too).
#[test]
fn log_format_samples_with_unknown_tables_or_maps_are_located_errors() {
    let dir = TempDir::new("logfmt-errs");
    let cases = [
        ("log_format = \"%[src_http_req_rate(nope)]\"", "frontend[0].log_format: no stick table named `nope`"),
        (
            "log_format_sd = \"%[src_http_req_rate]\"",
            "frontend[0].log_format_sd: this section (`fe`) has no stick table",
        ),
        ("log_format = \"%[path,map(missing.map)]\"", "frontend[0].log_format: map file"),
        ("unique_id_format = \"%[src,table_http_req_rate(nope)]\"", "frontend[0].unique_id_format: no stick table"),
        ("log_format = \"%ci %[req.body]\"", "frontend[0].log_format: sample fetch 'req.body' cannot be used"),
        ("http_error = [{ status = 503, lf_string = \"%[var(txn.x),map(gone.map)]\" }]", "frontend[0].http_error[0]"),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let text = format!(
            "[[frontend]]\nname = \"fe\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"be\"\n{line}\n\
             [[backend]]\nname = \"be\"\nmode = \"http\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:1\" }}]\n"
        );
        let path = dir.write(&format!("c{i}.toml"), &text);
        let out = Command::new(common::lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{line}: accepted\n{err}");
        assert!(err.contains(want), "{line}: want {want:?}\n{err}");
    }
}

/// In a tcp frontend the line and the unique id read the session's variables set by
/// `tcp-request content` rules, as HAProxy logs them.
#[test]
fn tcp_log_formats_read_session_variables_as_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let web = kit::Web::start("W");
    let dir = TempDir::new("logfmt-tcpvar");
    let (hs, ls) = (Syslog::new(), Syslog::new());
    let (hp, lp) = (free_port(), free_port());
    let cfg = |port: u16, syslog: u16| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n\
             defaults\n  mode tcp\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{port}\n  tcp-request content set-var(txn.t) str(tv)\n\
             \x20 tcp-request content set-var(sess.s) str(sv),upper\n\
             \x20 log-format \"T %[var(txn.t)] %[var(sess.s),lower] %[var(txn.nope)] %ft %ID\"\n  default_backend b\n\
             \x20 unique-id-format u-%[var(sess.s)]\n\
             backend b\n  server s 127.0.0.1:{}\n",
            web.port
        )
    };
    let _h = start_haproxy(&dir, &cfg(hp, hs.port()), hp);
    let _l = Lbha::start_haproxy(&cfg(lp, ls.port()), &[lp]);
    let mut lines = Vec::new();
    for (port, log) in [(hp, &hs), (lp, &ls)] {
        let req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200);
        lines.push(tagged(log, "T tv", 1));
    }
    assert_eq!(lines[1], lines[0]);
    assert_eq!(lines[1], ["T tv sv - f u-SV"]);
}

/// `%[unique-id]` in an `http-request` rule generates the id on first use, as HAProxy 2.6 does:
/// the rule, the `unique-id-header` the server sees and the log line carry the same value, made
/// from the stream as it was when the rule first read it (`txn.a` is `one` then, `two` later).
/// The same haproxy.cfg runs under both; then a classic `%{+X}o %ci:%cp_%Ts_%rt` id, whose value
/// differs per run, is checked to be one value in all three places.
#[test]
fn unique_id_in_rules_is_generated_once_as_haproxy() {
    let web = kit::Web::start("W");
    let dir = TempDir::new("uid-rules");
    let cfg = |port: u16, syslog: u16, format: &str| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0 info\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{port}\n  option dontlognull\n\
             \x20 unique-id-format {format}\n  unique-id-header X-Uid\n\
             \x20 http-request set-var(txn.a) str(one)\n  http-request set-header X-Id %[unique-id]\n\
             \x20 http-request set-var(txn.a) str(two)\n\
             \x20 log-format \"L %ID %[var(txn.a)] %[unique-id]\"\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:{}\n",
            web.port
        )
    };
    let send = |port: u16, path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200);
    };
    let seen = |path: &str| {
        let r = web.requests().into_iter().rev().find(|r| r.target == path).expect("the server saw it");
        (r.header("x-id").map(str::to_string), r.header("x-uid").map(str::to_string))
    };
    let stream_fmt = "id-%[var(txn.a)]-%[req.hdr(host)]";
    let mut lines = Vec::new();
    if let Some(bin) = haproxy_bin() {
        let (hs, hp) = (Syslog::new(), free_port());
        let path = dir.write("haproxy.cfg", &cfg(hp, hs.port(), stream_fmt));
        let child = Command::new(bin)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let _h = Haproxy(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", hp)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen on {hp}");
            std::thread::sleep(Duration::from_millis(20));
        }
        send(hp, "/h");
        lines.push((tagged(&hs, "L ", 1), seen("/h")));
    } else {
        println!("skipped the HAProxy half: haproxy is not installed");
    }
    let (ls, lp) = (Syslog::new(), free_port());
    let l = Lbha::start_haproxy(&cfg(lp, ls.port(), stream_fmt), &[lp]);
    send(lp, "/l");
    lines.push((tagged(&ls, "L ", 1), seen("/l")));
    let want = (vec!["L id-one-t two id-one-t".to_string()], (Some("id-one-t".into()), Some("id-one-t".into())));
    for (i, got) in lines.iter().enumerate() {
        assert_eq!(got, &want, "run {i} (the last is lbha's)");
    }
    drop(l);
    // A classic id reads nothing of the stream: still one value in the rule, the header and the log.
    let (ls, lp) = (Syslog::new(), free_port());
    let _l = Lbha::start_haproxy(&cfg(lp, ls.port(), "%{+X}o\\ %ci:%cp_%Ts_%rt"), &[lp]);
    send(lp, "/c");
    let line = tagged(&ls, "L ", 1);
    let (x_id, x_uid) = seen("/c");
    let id = x_id.expect("X-Id set from %[unique-id]");
    assert!(id.starts_with("127.0.0.1:") || id.starts_with("7F000001:"), "{id}");
    assert_eq!(x_uid.as_deref(), Some(id.as_str()));
    assert_eq!(line, [format!("L {id} two {id}")]);
}
