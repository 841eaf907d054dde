//! Backend `tcp-request content` rules and `tcp-request inspect-delay` (mode tcp and mode
//! http), and the live-state fetches and `proc` variables TCP rules read, with the real binary.

mod common;
mod kit;
use common::*;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A real rustls ClientHello for `sni`, as bytes.
fn hello(sni: &str) -> Vec<u8> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Sends `parts` with a pause between them, then reads what comes back before the close.
fn send_in_parts(port: u16, parts: &[&[u8]], end: bool) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        s.write_all(p).unwrap();
    }
    if end {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_to_close(&mut s)
}

/// The `dreq` column of `show stat` for `proxy,SVNAME`.
fn dreq(lb: &Lbha, row: &str) -> String {
    let stat = lb.ctl(&["show stat"]);
    let line = stat.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no {row} in {stat}"));
    line.split(',').nth(10).unwrap_or_default().to_string()
}

/// The `scur` column of `show stat` for `proxy,SVNAME`.
fn scur(lb: &Lbha, row: &str) -> String {
    let stat = lb.ctl(&["show stat"]);
    let line = stat.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no {row} in {stat}"));
    line.split(',').nth(4).unwrap_or_default().to_string()
}

/// SNI routing in the frontend, then each backend's own content rules over the same held
/// bytes: the backend can refuse a name the frontend routed to it, and a backend with its own
/// `inspect-delay` waits for a ClientHello that arrives in pieces.
#[test]
fn backend_content_rules_inspect_the_held_bytes_again() {
    let ((b, seen_b), (d, seen_d), (w, seen_w)) = (tag_server("B"), tag_server("D"), tag_server("W"));
    let (route, direct) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "20s", server = "20s" }}
[[frontend]]
name = "route"
bind = ["127.0.0.1:{route}"]
tcp_request_inspect_delay = "5s"
tcp_request = [{{ content = "accept", if = "{{ req_ssl_hello_type 1 }}" }}]
use_backend = [{{ backend = "be_b", if = "{{ req.ssl_sni -m end .b.example }}" }}]
default_backend = "be_d"
[[frontend]]
name = "direct"
bind = ["127.0.0.1:{direct}"]
default_backend = "be_wait"
[[backend]]
name = "be_b"
tcp_request = [
  {{ content = "reject", if = "{{ req.ssl_sni -i evil.b.example }}" }},
  {{ content = "accept" }},
]
servers = [{{ name = "b", addr = "127.0.0.1:{b}" }}]
[[backend]]
name = "be_d"
servers = [{{ name = "d", addr = "127.0.0.1:{d}" }}]
[[backend]]
name = "be_wait"
tcp_request_inspect_delay = "10s"
tcp_request = [
  {{ content = "accept", if = "{{ req_ssl_hello_type 1 }}" }},
  {{ content = "reject" }},
]
servers = [{{ name = "w", addr = "127.0.0.1:{w}" }}]
"#
    );
    let lb = Lbha::start_in(TempDir::new("tcprules-be"), &cfg, &[route, direct]);
    assert_eq!(tls_hello(route, "www.b.example").unwrap(), "B");
    assert_eq!(tls_hello(route, "other.example").unwrap(), "D");
    assert_eq!(tls_hello(route, "evil.b.example").unwrap(), "", "refused by be_b's own rule");
    assert_eq!(seen_b.lock().unwrap().len(), 1);
    assert_eq!(seen_d.lock().unwrap().len(), 1);
    assert_eq!(dreq(&lb, "be_b,BACKEND,"), "1", "the backend counts its denial");
    assert_eq!(dreq(&lb, "route,FRONTEND,"), "1", "and so does the frontend, as in HAProxy");

    // The frontend holds nothing; the backend waits for the whole record (its inspect-delay),
    // and the server gets the hello intact.
    let h = hello("split.example");
    assert_eq!(send_in_parts(direct, &[&h[..7], &h[7..]], false), "W");
    assert_eq!(seen_w.lock().unwrap().as_slice(), [h]);
    // Plain text that ends: the rules decide at once on what came, and reject (lbha's
    // start-up probe, which sent nothing, was one too).
    let before: u64 = dreq(&lb, "be_wait,BACKEND,").parse().unwrap();
    assert_eq!(send_in_parts(direct, &[b"PING"], true), "");
    assert_eq!(seen_w.lock().unwrap().len(), 1);
    assert_eq!(dreq(&lb, "be_wait,BACKEND,").parse::<u64>().unwrap(), before + 1);
}

/// A server that answers `H` to a client's first bytes and keeps the connection until the
/// client ends it; counts the clients it answered.
fn hold_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut b = [0u8; 64];
                let mut answered = false;
                while let Ok(n @ 1..) = std::io::Read::read(&mut s, &mut b) {
                    if !answered {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = s.write_all(b"H");
                        answered = true;
                    }
                    let _ = n;
                }
            });
        }
    });
    (port, n)
}

/// Reads the first byte a connection gets back (or "" on a close).
fn first_byte(s: &mut TcpStream) -> String {
    let mut b = [0u8; 1];
    match std::io::Read::read(s, &mut b) {
        Ok(1) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    }
}

/// `be_conn` and `nbsrv` without argument read the backend the rule is written in, `fe_conn`
/// the frontend, `srv_is_up(SRV)` a server of the rule's backend, and `proc.` variables are
/// shared by every connection.
#[test]
fn tcp_rules_read_live_state_and_process_variables() {
    let (h, held) = hold_server();
    let (d, _) = tag_server("D");
    let (one, two, proc_port) = (free_port(), free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "20s", server = "20s" }}
[[frontend]]
name = "one"
bind = ["127.0.0.1:{one}"]
tcp_request = [{{ connection = "reject", if = "{{ fe_conn gt 1 }}" }}]
default_backend = "hold"
[[frontend]]
name = "two"
bind = ["127.0.0.1:{two}"]
default_backend = "bounded"
[[frontend]]
name = "once"
bind = ["127.0.0.1:{proc_port}"]
tcp_request_inspect_delay = "5s"
tcp_request = [
  {{ connection = "reject", if = "{{ var(proc.first) -m found }}" }},
  {{ content = "set-var(proc.first) src", if = "{{ req.len gt 0 }}" }},
]
default_backend = "plain"
[[backend]]
name = "hold"
servers = [{{ name = "h", addr = "127.0.0.1:{h}" }}]
[[backend]]
name = "bounded"
tcp_request = [
  {{ content = "reject", if = "{{ be_conn gt 1 }}" }},
  {{ content = "reject", unless = "{{ srv_is_up(h2) }}" }},
  {{ content = "reject", if = "{{ nbsrv lt 2 }}" }},
]
servers = [{{ name = "h1", addr = "127.0.0.1:{h}" }}, {{ name = "h2", addr = "127.0.0.1:{h}" }}]
[[backend]]
name = "plain"
servers = [{{ name = "d", addr = "127.0.0.1:{d}" }}]
"#
    );
    let lb = Lbha::start_in(TempDir::new("tcprules-live"), &cfg, &[one, two, proc_port]);
    let open = |port: u16| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"x").unwrap();
        let got = first_byte(&mut s);
        (s, got)
    };
    // lbha's start-up probes end first (their sessions count until then).
    for row in ["one,FRONTEND,", "two,FRONTEND,", "once,FRONTEND,"] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while scur(&lb, row) != "0" {
            assert!(std::time::Instant::now() < deadline, "{row} never idle: {}", lb.ctl(&["show stat"]));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // fe_conn: the first connection holds, the second makes two and is refused.
    let (_a, got) = open(one);
    assert_eq!(got, "H");
    assert_eq!(open(one).1, "", "fe_conn gt 1");
    // be_conn (the rule's backend): the same with the backend's sessions.
    let (_b, got) = open(two);
    assert_eq!(got, "H");
    assert_eq!(open(two).1, "", "be_conn gt 1");
    drop(_b);
    // srv_is_up(h2) and nbsrv: a server in maintenance turns both rules on.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_c, got) = open(two);
        if got == "H" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "be_conn never went back to 0");
        std::thread::sleep(Duration::from_millis(50));
    }
    lb.ctl(&["disable server bounded/h2"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while open(two).1 == "H" {
        assert!(std::time::Instant::now() < deadline, "still let through with h2 in maintenance");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dreq(&lb, "bounded,BACKEND,").parse::<u64>().unwrap() >= 2);
    // proc.first: set by the first connection that sends something (lbha's start-up probe
    // sends nothing), seen by the next one's connection rule.
    assert_eq!(send_in_parts(proc_port, &[b"hi"], true), "D");
    assert_eq!(send_in_parts(proc_port, &[b"hi"], true), "", "the process variable is set");
    assert!(held.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

/// In an HTTP frontend, TCP rules read the same live state (values set at the connection,
/// shown to the server by an HTTP rule): `nbsrv(B)`, `be_conn(B)`, `connslots(B)`, `fe_conn`,
/// `srv_is_up(B/S)`, `rand(N)`, `hostname`, and `proc.` variables.
#[test]
fn http_frontend_tcp_rules_show_live_state() {
    let be = Backend::start("web");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
default_backend = "web"
tcp_request = [
  {{ connection = "set-var(sess.a) nbsrv(web)" }},
  {{ connection = "set-var(sess.b) be_conn(web)" }},
  {{ session = "set-var(sess.c) connslots(web)" }},
  {{ session = "set-var(sess.d) fe_conn" }},
  {{ content = "set-var(sess.e) srv_is_up(web/w)" }},
  {{ content = "set-var(sess.f) rand(1000)" }},
  {{ content = "set-var(sess.g) hostname" }},
  {{ content = "set-var(proc.h) str(p)" }},
]
http_request = [{{ set_header = {{ name = "X-Live", value = "%[var(sess.a)] %[var(sess.b)] %[var(sess.c)] %[var(sess.d)] %[var(sess.e)] %[var(sess.f)] %[var(sess.g)] %[var(proc.h)]" }} }}]
[[backend]]
name = "web"
servers = [{{ name = "w", addr = "127.0.0.1:{}" }}]
"#,
        be.port
    );
    let _lb = Lbha::start_in(TempDir::new("tcprules-http-live"), &cfg, &[port]);
    assert_eq!(get(port, "/").status, 200);
    let seen = be.seen.last_headers.lock().unwrap().clone();
    let live = seen.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-live")).map(|(_, v)| v.clone()).unwrap();
    let words: Vec<&str> = live.split(' ').collect();
    assert_eq!(words.len(), 8, "{live}");
    // One server up; no request in the backend yet; no maxconn: unbounded (-1); this
    // connection in the frontend; the server up.
    assert_eq!(words[..5], ["1", "0", "-1", "1", "1"], "{live}");
    assert!(words[5].parse::<u32>().is_ok_and(|r| r < 1000), "{live}");
    let host = nix_hostname();
    assert_eq!(words[6], host, "{live}");
    assert_eq!(words[7], "p", "{live}");
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// An HTTP frontend's content rules run for each request, a backend's once it is chosen: a reject
/// closes the connection without an answer, `req.len` is HAProxy's measure of the request (the
/// same number the real HAProxy gives), and variables they set are the transaction's.
#[test]
fn http_content_rules_run_per_request() {
    let be = Backend::start("web");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
default_backend = "web"
tcp_request = [
  {{ content = "reject", if = "{{ path /fe-no }}" }},
  {{ content = "set-var(sess.n) str(f),concat(,sess.n)" }},
]
[[backend]]
name = "web"
tcp_request = [
  {{ content = "reject", if = "{{ path /no }}" }},
  {{ content = "set-var(txn.len) req.len" }},
  {{ content = "set-var(sess.n) str(b),concat(,sess.n)" }},
]
http_request = [{{ set_header = {{ name = "X-Len", value = "%[var(txn.len)] %[var(sess.n)]" }} }}]
servers = [{{ name = "w", addr = "127.0.0.1:{}" }}]
"#,
        be.port
    );
    let lb = Lbha::start_in(TempDir::new("tcprules-http-be"), &cfg, &[port]);
    let header = || {
        let seen = be.seen.last_headers.lock().unwrap().clone();
        seen.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-len")).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    // Two requests on one connection: the rules run again for the second.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = b"GET /abc HTTP/1.1\r\nHost: test\r\nUser-Agent: probe\r\n\r\n";
    s.write_all(req).unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200);
    let first = header();
    s.write_all(req).unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    let second = header();
    let (len, n1) = first.split_once(' ').unwrap();
    // The frontend's rules, then the backend's, again for each request, as HAProxy.
    assert_eq!((n1, second.split_once(' ').unwrap().1), ("bf", "bfbf"), "{first} / {second}");
    // HTX: 20 + GET + /abc + HTTP/1.1 + host(4+4) + user-agent(10+5) + 1.
    assert_eq!(len, "59");

    // A reject: no answer, no request to the server, a denial in both stats rows.
    let before = be.seen.requests.load(std::sync::atomic::Ordering::SeqCst);
    let r = raw(port, b"GET /no HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(r.is_err() || r.as_ref().is_ok_and(|r| r.status == 0), "answered: {:?}", r.map(|r| r.status));
    assert_eq!(be.seen.requests.load(std::sync::atomic::Ordering::SeqCst), before);
    assert_eq!(dreq(&lb, "web,BACKEND,"), "1");
    assert_eq!(dreq(&lb, "f,FRONTEND,"), "1");
    let r = raw(port, b"GET /fe-no HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(r.is_err() || r.as_ref().is_ok_and(|r| r.status == 0), "answered: {:?}", r.map(|r| r.status));
    assert_eq!(be.seen.requests.load(std::sync::atomic::Ordering::SeqCst), before);
    assert_eq!(dreq(&lb, "web,BACKEND,"), "1", "refused before any backend");
    assert_eq!(dreq(&lb, "f,FRONTEND,"), "2");

    // The real HAProxy measures the same request the same way.
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped the HAProxy comparison: haproxy is not installed");
        return;
    }
    let hport = free_port();
    let hcfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\
         frontend f\n  bind 127.0.0.1:{hport}\n  default_backend web\n  tcp-request content set-var(sess.n) str(f),concat(,sess.n)\n\
         backend web\n  tcp-request content set-var(txn.len) req.len\n  tcp-request content set-var(sess.n) str(b),concat(,sess.n)\n\
         http-request set-header X-Len \"%[var(txn.len)] %[var(sess.n)]\"\n  server w 127.0.0.1:{}\n",
        be.port
    );
    let (_h, _dir) = haproxy(&hcfg, hport);
    let mut s = TcpStream::connect(("127.0.0.1", hport)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert_eq!(header(), first, "HAProxy's req.len and variables");
    s.write_all(req).unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert_eq!(header(), second, "HAProxy's second request on the connection");
}

/// A TCP server that answers each of `n` connections with `BAD` at once, then waits for the
/// client to close (bounded).
fn bad_server(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.write_all(b"BAD answer\n");
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
            });
        }
    });
    port
}

fn dresp_config(sock: &std::path::Path, tport: u16, hport: u16, bad: u16, web: u16) -> String {
    format!(
        "global\n  stats socket {}\ndefaults\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         listen t\n  mode tcp\n  bind 127.0.0.1:{tport}\n  tcp-response inspect-delay 2s\n  \
         tcp-response content reject if {{ res.payload(0,3) -m str BAD }}\n  server s 127.0.0.1:{bad}\n\
         listen h\n  mode http\n  bind 127.0.0.1:{hport}\n  http-response deny if {{ res.hdr(x-deny) -m found }}\n  \
         server s 127.0.0.1:{web}\n",
        sock.display()
    )
}

/// pxname,svname,dreq,dresp of every row.
fn denied_rows(stat: &str) -> Vec<String> {
    let mut rows: Vec<String> = stat
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            l.split(',')
                .take(12)
                .enumerate()
                .filter(|(i, _)| [0, 1, 10, 11].contains(i))
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    rows.sort();
    rows
}

/// What each proxy's clients get: two TCP sessions rejected, one HTTP response denied.
fn deny_traffic(tport: u16, hport: u16) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..2 {
        out.push(send_in_parts(tport, &[b"hi\n"], true));
    }
    let r = raw(hport, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    out.push(r.status.to_string());
    out
}

#[test]
fn denied_responses_count_in_dresp_as_in_haproxy() {
    let dir = TempDir::new("dresp");
    let web = kit::Web::start("W");
    web.add_header("X-Deny: 1");
    let (tport, hport) = (free_port(), free_port());
    let lb = Lbha::start_haproxy(
        &dresp_config(&dir.0.join("l.sock"), tport, hport, bad_server(2), web.port),
        &[tport, hport],
    );
    let ours = deny_traffic(tport, hport);
    assert_eq!(ours, ["", "", "502"]);
    let lbha = denied_rows(&lb.ctl(&["show stat"]));
    assert_eq!(lbha, ["h,BACKEND,0,1", "h,FRONTEND,0,1", "h,s,,1", "t,BACKEND,0,2", "t,FRONTEND,0,2", "t,s,,2"]);
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let (tport, hport) = (free_port(), free_port());
    let sock = dir.0.join("h.sock");
    let _h = haproxy(&dresp_config(&sock, tport, hport, bad_server(2), web.port), tport);
    assert_eq!(deny_traffic(tport, hport), ours);
    assert_eq!(denied_rows(&ask_socket(&sock, "show stat")), lbha);
}
