//! `show sess`, `shutdown session ID` and `shutdown sessions server B/S` on the control socket,
//! against live TCP sessions and HTTP keep-alive connections (serving and parked).

mod common;
mod kit;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A TCP echo server for any number of connections (a thread each).
fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

struct Bed {
    lb: Lbha,
    tcp: u16,
    web: u16,
    _w: (Backend, Backend),
}

/// `tcpl`: TCP, round robin over two echo servers `a` and `b`; `web`: HTTP, round robin over
/// two web servers `w1` and `w2`.
fn bed() -> Bed {
    let (a, b) = (echo(), echo());
    let (w1, w2) = (Backend::start("W1"), Backend::start("W2"));
    let (tcp, web) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
timeout = {{ connect = "1s", client = "30s", server = "30s", http_keep_alive = "30s" }}

[[listen]]
name = "tcpl"
mode = "tcp"
bind = ["127.0.0.1:{tcp}"]
balance = "roundrobin"
servers = [{{ name = "a", addr = "127.0.0.1:{a}" }}, {{ name = "b", addr = "127.0.0.1:{b}" }}]

[[listen]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{web}"]
balance = "roundrobin"
servers = [{{ name = "w1", addr = "127.0.0.1:{}" }}, {{ name = "w2", addr = "127.0.0.1:{}" }}]
"#,
        w1.port, w2.port
    );
    let lb = Lbha::start(&cfg, &[tcp, web]);
    Bed { lb, tcp, web, _w: (w1, w2) }
}

/// The answers of one control connection, split at their empty lines.
fn answers(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut cur = String::new();
    for line in out.split_inclusive('\n') {
        if line == "\n" {
            v.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
        }
    }
    v
}

fn one(lb: &Lbha, cmd: &str) -> String {
    answers(&lb.ctl(&[cmd])).remove(0)
}

/// The `show sess` line of the session from client socket `c`, waiting for it to appear with
/// `want` in it (a route is noted once its server is picked).
fn line_of(lb: &Lbha, c: &TcpStream, want: &str) -> String {
    let src = format!(" src={} ", c.local_addr().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = one(lb, "show sess");
        if let Some(l) = list.lines().find(|l| l.contains(&src) && l.contains(want)) {
            return l.to_string();
        }
        assert!(Instant::now() < deadline, "no session {src} with {want:?} in:\n{list}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn id_of(line: &str) -> String {
    line.split(':').next().unwrap().to_string()
}

/// A TCP session through the proxy, checked to be up.
fn tcp_session(port: u16) -> TcpStream {
    let mut c = connect(port);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(echo_msg(&mut c, b"hi").unwrap(), b"hi");
    c
}

fn echo_msg(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    Ok(back)
}

/// An HTTP keep-alive connection that got one answer; returns it and the body (the server).
fn http_conn(port: u16) -> (TcpStream, String) {
    let mut c = connect(port);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = http_get(&mut c).expect("an answer");
    (c, body)
}

fn http_get(c: &mut TcpStream) -> std::io::Result<String> {
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")?;
    let r = read_response(c, false)?;
    assert_eq!(r.status, 200);
    Ok(r.text())
}

/// The client sees the connection end (EOF or reset) within the read timeout.
fn ends(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 64];
    match c.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

fn srv_of(line: &str) -> String {
    line.split(" srv=").nth(1).unwrap().split(' ').next().unwrap().to_string()
}

/// TCP sessions until both servers have at least two (round robin also counts the start-up
/// probes, so the first ones need not alternate).
fn tcp_on_both(b: &Bed) -> Vec<(TcpStream, String)> {
    let mut out: Vec<(TcpStream, String)> = Vec::new();
    while ["a", "b"].iter().any(|s| out.iter().filter(|(_, x)| x == s).count() < 2) {
        assert!(out.len() < 12, "round robin never reached both servers");
        let c = tcp_session(b.tcp);
        let srv = srv_of(&line_of(&b.lb, &c, "srv="));
        out.push((c, srv));
    }
    out
}

/// HTTP keep-alive connections until both web servers answered at least two.
fn web_on_both(b: &Bed) -> Vec<(TcpStream, String)> {
    let mut out: Vec<(TcpStream, String)> = Vec::new();
    while ["W1", "W2"].iter().any(|s| out.iter().filter(|(_, x)| x == s).count() < 2) {
        assert!(out.len() < 12, "round robin never reached both servers");
        out.push(http_conn(b.web));
    }
    out
}

#[test]
fn show_sess_lists_tcp_and_http_sessions_with_their_routes() {
    let b = bed();
    let mut tcp = tcp_on_both(&b);
    let t2 = tcp.iter().position(|(_, s)| s == "b").unwrap();
    let (t2, _) = tcp.remove(t2);
    let t1 = tcp.iter().position(|(_, s)| s == "a").unwrap();
    let (t1, _) = tcp.remove(t1);
    let (h, server) = http_conn(b.web);
    let srv = if server == "W1" { "w1" } else { "w2" };
    let l1 = line_of(&b.lb, &t1, "srv=");
    let l2 = line_of(&b.lb, &t2, "srv=");
    let lh = line_of(&b.lb, &h, &format!("srv={srv} "));
    for l in [&l1, &l2] {
        assert!(l.starts_with("0x"), "{l}");
        assert!(l.contains(": proto=tcpv4 src=127.0.0.1:"), "{l}");
        assert!(l.contains(" fe=tcpl be=tcpl srv="), "{l}");
        assert!(l.contains(" age="), "{l}");
    }
    let on = srv_of;
    assert_eq!(on(&l1), "a", "{l1}");
    assert_eq!(on(&l2), "b", "{l2}");
    assert!(lh.contains(" fe=web be=web srv="), "{lh}");

    // The detail of one, and of all.
    let d = one(&b.lb, &format!("show sess {}", id_of(&l1)));
    assert!(d.starts_with(&format!("{}: [", id_of(&l1))), "{d}");
    assert!(d.contains(&format!("proto=tcpv4 source={}", t1.local_addr().unwrap())), "{d}");
    assert!(d.contains(&format!("  frontend=tcpl (id=1 mode=tcp), addr=127.0.0.1:{}\n", b.tcp)), "{d}");
    assert!(d.contains("  backend=tcpl (id=1 mode=tcp)\n"), "{d}");
    assert!(d.contains(&format!("  server={} (id=", on(&l1))), "{d}");
    let all = one(&b.lb, "show sess all");
    for l in [&l1, &l2, &lh] {
        assert!(all.contains(&format!("{}: [", id_of(l))), "{all}");
    }
    assert_eq!(one(&b.lb, "show sess 0xfffffff"), "Session not found.\n");

    // A connection that has sent nothing yet has no backend.
    let fresh = connect(b.web);
    let lf = line_of(&b.lb, &fresh, "fe=web");
    assert!(lf.contains(" be=<NONE> srv=<none> "), "{lf}");

    // Levels as HAProxy: operator reads, only admin ends sessions.
    let out = answers(&b.lb.ctl(&["user", "show sess"]));
    assert_eq!(out[1], "Permission denied\n");
    let out = answers(&b.lb.ctl(&["operator", "show sess", &format!("shutdown session {}", id_of(&l1))]));
    assert!(out[1].contains(&id_of(&l1)), "{out:?}");
    assert_eq!(out[2], "Permission denied\n");
    let out = answers(&b.lb.ctl(&["operator", "shutdown sessions server tcpl/a"]));
    assert_eq!(out[1], "Permission denied\n");
    drop(h);
}

#[test]
fn shutdown_session_ends_exactly_that_one() {
    let b = bed();
    let mut t1 = tcp_session(b.tcp);
    let mut t2 = tcp_session(b.tcp);
    let l1 = line_of(&b.lb, &t1, "srv=");
    assert_eq!(one(&b.lb, &format!("shutdown session {}", id_of(&l1))), "");
    assert!(ends(&mut t1), "the killed TCP session sees its end");
    assert_eq!(echo_msg(&mut t2, b"still").unwrap(), b"still", "the other one still works");
    // Gone from the list; killing it again is HAProxy's error.
    assert!(!one(&b.lb, "show sess").contains(&format!("{}:", id_of(&l1))));
    assert_eq!(one(&b.lb, &format!("shutdown session {}", id_of(&l1))), "No such session (use 'show sess').\n");

    // HTTP keep-alive connections: one idle after an exchange (parked), one that never sent.
    let (mut h1, _) = http_conn(b.web);
    let (mut h2, _) = http_conn(b.web);
    let mut fresh = connect(b.web);
    let lh1 = line_of(&b.lb, &h1, "srv=w");
    let lf = line_of(&b.lb, &fresh, "fe=web");
    // Long enough for both to have moved to the parking lot.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(one(&b.lb, &format!("shutdown session {}", id_of(&lh1))), "");
    assert!(ends(&mut h1), "the killed keep-alive connection sees its end");
    assert_eq!(one(&b.lb, &format!("shutdown session {}", id_of(&lf))), "");
    assert!(ends(&mut fresh), "the killed silent connection sees its end");
    assert!(http_get(&mut h2).is_ok(), "the other keep-alive connection still works");
    assert_eq!(echo_msg(&mut t2, b"again").unwrap(), b"again");

    // Bad ids, as HAProxy answers them.
    assert_eq!(one(&b.lb, "shutdown session"), "Session pointer expected (use 'show sess').\n");
    assert_eq!(one(&b.lb, "shutdown session zz"), "Session pointer expected (use 'show sess').\n");
    assert_eq!(one(&b.lb, "shutdown session 0xfffffff"), "No such session (use 'show sess').\n");
}

#[test]
fn shutdown_sessions_server_ends_those_on_that_server() {
    let b = bed();
    let mut tcp = tcp_on_both(&b);
    let mut web = web_on_both(&b);
    for (c, s) in &web {
        line_of(&b.lb, c, &format!("srv={} ", s.to_lowercase()));
    }

    assert_eq!(one(&b.lb, "shutdown sessions server tcpl/a"), "");
    for (c, s) in &mut tcp {
        if s == "a" {
            assert!(ends(c), "a session on tcpl/a ends");
        } else {
            assert_eq!(echo_msg(c, b"b").unwrap(), b"b", "a session on tcpl/b goes on");
        }
    }
    assert_eq!(one(&b.lb, "shutdown sessions server web/w2"), "");
    for (c, s) in &mut web {
        if s == "W2" {
            assert!(ends(c), "a connection whose request went to web/w2 ends");
        } else {
            // Its next request is balanced afresh: any server answers.
            assert!(http_get(c).is_ok(), "a connection on web/w1 goes on");
        }
    }
    // New sessions still reach the server: only the open ones were ended.
    let mut again = tcp_session(b.tcp);
    assert_eq!(echo_msg(&mut again, b"x").unwrap(), b"x");

    assert_eq!(one(&b.lb, "shutdown sessions server nope/a"), "No such backend.\n");
    assert_eq!(one(&b.lb, "shutdown sessions server tcpl/nope"), "No such server.\n");
    assert_eq!(one(&b.lb, "shutdown sessions server tcpl"), "Require 'backend/server'.\n");
    assert_eq!(one(&b.lb, "shutdown sessions server"), "Require 'backend/server'.\n");
}

/// A TLS keep-alive connection and a plain request still waiting for its answer both end at
/// `shutdown session`, without an answer.
#[test]
fn tls_connections_and_requests_in_flight_end_too() {
    let dir = TempDir::new("sess-tls");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let w = Backend::start("W1");
    let (tls, web) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "30s", http_keep_alive = "30s" }}

[[listen]]
name = "secure"
bind = ["127.0.0.1:{tls} ssl crt {}"]
servers = [{{ name = "w1", addr = "127.0.0.1:{}" }}]

[[listen]]
name = "web"
bind = ["127.0.0.1:{web}"]
servers = [{{ name = "w1", addr = "127.0.0.1:{}" }}]
"#,
        crt.display(),
        w.port,
        w.port
    );
    let lb = Lbha::start(&cfg, &[tls, web]);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let ccfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(ccfg), "localhost".try_into().unwrap()).unwrap();
    let tcp = connect(tls);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("W1") {
        let n = s.read(&mut buf).expect("the answer");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let l = line_of(&lb, &s.sock, "srv=w1");
    assert!(l.contains(" fe=secure be=secure srv=w1 "), "{l}");
    assert!(one(&lb, &format!("show sess {}", id_of(&l))).contains(" ssl=1 "), "TLS is shown");
    assert_eq!(one(&lb, &format!("shutdown session {}", id_of(&l))), "");
    let ended = match s.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    assert!(ended, "the killed TLS connection sees its end");

    // A request waiting for `/slow` (answered after 3 s): killed, it gets no answer at all.
    let mut c = connect(web);
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let l = line_of(&lb, &c, "srv=w1");
    assert_eq!(one(&lb, &format!("shutdown session {}", id_of(&l))), "");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    let r = c.read_to_end(&mut all);
    assert!(
        r.is_ok() || r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "closed, not timed out: {r:?}"
    );
    assert!(all.is_empty(), "no answer: {}", String::from_utf8_lossy(&all));
    // The proxy still serves.
    let (_c, body) = http_conn(web);
    assert_eq!(body, "W1");
}

/// The same commands on HAProxy 2.6 and on lbha, each running one haproxy.cfg: the same answers
/// (sessions' lines compared up to what only HAProxy has: its task and buffer fields).
#[test]
fn replies_match_haproxy() {
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped: haproxy is not installed");
        return;
    }
    let server = echo();
    let cfg = |port: u16, sock: &str| {
        format!(
            "global\n  stats socket {sock} level admin\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             listen px\n  bind 127.0.0.1:{port}\n  server s1 127.0.0.1:{server}\n"
        )
    };
    let hport = free_port();
    let hdir = TempDir::new("sess-hap");
    let hsock = hdir.0.join("admin.sock");
    let (_hap, _d) = haproxy(&cfg(hport, &hsock.display().to_string()), hport);
    let lport = free_port();
    let lb = Lbha::start_haproxy(&cfg(lport, "/nonexistent/unused.sock"), &[lport]);
    let lask = |cmd: &str| answers(&lb.ctl(&[cmd])).concat();
    let hask = |cmd: &str| ask_socket(&hsock, cmd).trim_end_matches('\n').to_string() + "\n";
    let lask = |cmd: &str| {
        let a = lask(cmd);
        if a.is_empty() { "\n".to_string() } else { a }
    };
    for cmd in [
        "shutdown session",
        "shutdown session zz",
        "shutdown session 0x1234",
        "show sess 0x1234",
        "shutdown sessions server",
        "shutdown sessions server px",
        "shutdown sessions server nope/s1",
        "shutdown sessions server px/nope",
        "shutdown sessions server px/s1",
    ] {
        assert_eq!(lask(cmd), hask(cmd), "{cmd}");
    }

    // A live TCP session on each: the same line, then the same kill.
    let mut hc = tcp_session(hport);
    let mut lc = tcp_session(lport);
    let norm = |list: &str, c: &TcpStream| -> (String, String) {
        let src = format!(" src={} ", c.local_addr().unwrap());
        let l = list.lines().find(|l| l.contains(&src)).unwrap_or_else(|| panic!("no {src} in:\n{list}"));
        let (id, rest) = l.split_once(": ").unwrap();
        let rest = rest.replace(&src, " src=C ");
        let upto = rest.find(" ts=").or_else(|| rest.find(" age=")).unwrap();
        (id.to_string(), rest[..upto].to_string())
    };
    let (hid, hline) = norm(&hask("show sess"), &hc);
    let (lid, lline) = norm(&line_of(&lb, &lc, "srv=s1"), &lc);
    assert_eq!(lline, hline);
    assert_eq!(lask(&format!("shutdown session {lid}")), hask(&format!("shutdown session {hid}")));
    assert!(ends(&mut hc) && ends(&mut lc), "both closed");
}

/// A WebSocket tunnel outlives its HTTP exchange: it is still the session, listed on its server,
/// and ends at `shutdown sessions server` while another tunnel goes on.
#[test]
fn websocket_tunnels_are_sessions_too() {
    let (ws, other) = (kit::head_server(kit::Answer::Upgrade), kit::head_server(kit::Answer::Upgrade));
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "30s", tunnel = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
use_backend = [{{ backend = "two", if = "{{ path_beg /two }}" }}]
default_backend = "one"

[[backend]]
name = "one"
servers = [{{ name = "ws", addr = "127.0.0.1:{ws}" }}]

[[backend]]
name = "two"
servers = [{{ name = "ws", addr = "127.0.0.1:{other}" }}]
"#
    );
    let lb = Lbha::start(&cfg, &[port]);
    let open = |path: &str| {
        let mut c = connect(port);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
        c.write_all(head.as_bytes()).unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, 101);
        assert_eq!(echo_msg(&mut c, b"ping").unwrap(), b"ping", "tunnel is up");
        c
    };
    let mut one_c = open("/one");
    let mut two_c = open("/two");
    line_of(&lb, &one_c, "be=one srv=ws ");
    line_of(&lb, &two_c, "be=two srv=ws ");
    assert_eq!(one(&lb, "shutdown sessions server one/ws"), "");
    assert!(ends(&mut one_c), "the tunnel on one/ws ends");
    assert_eq!(echo_msg(&mut two_c, b"pong").unwrap(), b"pong", "the tunnel on two/ws goes on");
}

/// An HTTP/2 connection with a stream waiting for `/slow` (answered after 3 s): killed, the
/// stream fails without an answer and the connection ends.
#[test]
fn an_h2_connection_and_its_stream_in_flight_end() {
    let w = Backend::start("W1");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ client = \"30s\", server = \"30s\" }}\n[[listen]]\nname = \"h2c\"\n\
         bind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"w1\", addr = \"127.0.0.1:{}\" }}]\n",
        w.port
    );
    let lb = Lbha::start(&cfg, &[port]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let me = tcp.local_addr().unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        let req =
            hyper::Request::get("http://h2c.test/slow").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
        let stream = tokio::spawn(send.send_request(req));
        let src = format!(" src={me} ");
        let id = tokio::task::spawn_blocking({
            let sock = lb.sock.clone();
            move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let list = ask_socket(&sock, "show sess");
                    if let Some(l) = list.lines().find(|l| l.contains(&src) && l.contains("srv=w1")) {
                        return id_of(l);
                    }
                    assert!(Instant::now() < deadline, "no {src} on w1 in:\n{list}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
        .await
        .unwrap();
        let sock = lb.sock.clone();
        let answer =
            tokio::task::spawn_blocking(move || ask_socket(&sock, &format!("shutdown session {id}"))).await.unwrap();
        assert_eq!(answer, "\n");
        let got = tokio::time::timeout(Duration::from_secs(10), stream).await.expect("the stream ends").unwrap();
        assert!(got.is_err(), "no answer: {:?}", got.map(|r| r.status()));
        tokio::time::timeout(Duration::from_secs(10), conn).await.expect("the connection ends").unwrap().ok();
    });
}

/// A TCP session waiting in the queue (its server is at `maxconn`) is listed without a server
/// and can be killed there; the one on the server goes on.
#[test]
fn a_queued_tcp_session_can_be_killed() {
    let server = echo();
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "30s", server = "30s", queue = "30s" }}

[[listen]]
name = "q"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{server}", maxconn = 1 }}]
"#
    );
    let lb = Lbha::start(&cfg, &[port]);
    let mut busy = tcp_session(port);
    let mut queued = connect(port);
    let l = line_of(&lb, &queued, "be=q srv=<none> ");
    assert_eq!(one(&lb, &format!("shutdown session {}", id_of(&l))), "");
    assert!(ends(&mut queued), "the queued session ends");
    assert_eq!(echo_msg(&mut busy, b"on").unwrap(), b"on", "the one on the server goes on");
}

/// A listener whose accept queue is full: a further connect's SYN is dropped, so connecting to
/// it waits out `timeout connect`. The queued connections are kept open with it.
fn unanswering() -> (u16, Vec<TcpStream>, socket2::Socket) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    // Backlog 0 still queues one connection; with it queued the queue is full, and the kernel
    // drops the next SYN (a second connect here would hang itself).
    let queued = vec![TcpStream::connect(("127.0.0.1", port)).unwrap()];
    (port, queued, s)
}

#[test]
fn a_tcp_session_killed_while_its_server_connect_hangs_ends_at_once() {
    let (hang, _queued, _l) = unanswering();
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
timeout = {{ connect = "60s", client = "60s", server = "60s" }}

[[listen]]
name = "slow"
mode = "tcp"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "h", addr = "127.0.0.1:{hang}" }}]
"#
    );
    let lb = Lbha::start(&cfg, &[port]);
    let mut c = connect(port);
    // The session is routed to `h` and stays in its connect.
    let line = line_of(&lb, &c, "srv=h");
    assert_eq!(one(&lb, &format!("shutdown session {}", id_of(&line))), "");
    // Before this was fixed the session ended only when the 60 s connect timeout ran out.
    assert!(ends(&mut c), "the session killed in its connect sees its end");
    assert!(!one(&lb, "show sess").contains(&format!("{}:", id_of(&line))));
}
