//! HTTP mode end to end: real lbha binary, real backends, loopback only.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn config(port: u16, servers: &[u16], extra_listen: &str, defaults: &str) -> String {
    let list: Vec<String> =
        servers.iter().enumerate().map(|(i, p)| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
{defaults}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{}]
{extra_listen}
"#,
        list.join(", ")
    )
}

#[test]
fn round_robin_over_two_backends() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port, b.port], "", ""), &[port]);
    let bodies: Vec<String> = (0..4).map(|_| get(port, "/").text()).collect();
    assert_eq!(bodies.iter().filter(|b| *b == "A").count(), 2, "{bodies:?}");
    assert_eq!(bodies.iter().filter(|b| *b == "B").count(), 2, "{bodies:?}");
    assert_ne!(bodies[0], bodies[1], "{bodies:?}");
}

fn keep_alive_run(mode: &str, n: usize) -> (usize, usize, Vec<Resp>) {
    let a = Backend::start("A");
    let port = free_port();
    let defaults = format!("http_connection_mode = \"{mode}\"");
    let _l = Lbha::start(&config(port, &[a.port], "", &defaults), &[port]);
    let mut s = connect(port);
    let mut resps = Vec::new();
    for _ in 0..n {
        if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
            break;
        }
        match read_response(&mut s, false) {
            Ok(r) => resps.push(r),
            Err(_) => break,
        }
    }
    (a.connections(), a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), resps)
}

#[test]
fn keep_alive_reuses_client_and_server_connections() {
    let (server_conns, server_reqs, resps) = keep_alive_run("http-keep-alive", 20);
    assert_eq!(resps.len(), 20, "all 20 requests answered on one client connection");
    assert!(resps.iter().all(|r| r.status == 200 && r.text() == "A"));
    assert_eq!(server_reqs, 20);
    assert_eq!(server_conns, 1, "one pooled server connection serves every request");
}

#[test]
fn http_server_close_keeps_client_but_closes_server_side() {
    let (server_conns, server_reqs, resps) = keep_alive_run("http-server-close", 10);
    assert_eq!(resps.len(), 10);
    assert_eq!(server_reqs, 10);
    assert_eq!(server_conns, 10, "a new server connection per request");
}

#[test]
fn httpclose_closes_both_sides() {
    let (server_conns, _, resps) = keep_alive_run("httpclose", 3);
    assert_eq!(resps.len(), 1, "the client connection closes after the first response");
    assert_eq!(resps[0].header("connection"), Some("close"));
    assert_eq!(server_conns, 1);
}

#[test]
fn forwardfor_adds_client_address() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port], "forwardfor = true", ""), &[port]);
    let r = get(port, "/");
    assert_eq!(r.status, 200);
    let h = a.seen.last_headers.lock().unwrap().clone();
    let xff: Vec<_> = h.iter().filter(|(k, _)| k == "x-forwarded-for").collect();
    assert_eq!(xff.len(), 1, "{h:?}");
    assert_eq!(xff[0].1, "127.0.0.1");
    assert!(
        !h.iter().any(|(k, _)| k == "connection" || k == "keep-alive"),
        "hop-by-hop headers are not forwarded: {h:?}"
    );
}

#[test]
fn status_503_when_no_server_is_reachable() {
    let dead = free_port();
    let port = free_port();
    let _l = Lbha::start(&config(port, &[dead], "retries = 1", ""), &[port]);
    let r = get(port, "/");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("503 Service Unavailable"));
}

#[test]
fn status_502_on_garbage_from_server() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bad = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"this is not http\r\n\r\n");
        }
    });
    let port = free_port();
    let _l = Lbha::start(&config(port, &[bad], "", ""), &[port]);
    let r = get(port, "/");
    assert_eq!(r.status, 502);
    assert!(r.text().contains("502 Bad Gateway"));
}

#[test]
fn status_504_on_server_timeout() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = config(port, &[a.port], "timeout = { connect = \"1s\", client = \"5s\", server = \"300ms\" }", "");
    let _l = Lbha::start(&cfg, &[port]);
    let r = get(port, "/slow");
    assert_eq!(r.status, 504);
    assert!(r.text().contains("504 Gateway Time-out"));
}

#[test]
fn ambiguous_framing_gets_400_and_never_reaches_a_server() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    let cases: &[(&str, &[u8])] = &[
        (
            "CL and TE",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("duplicate CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),
        ("conflicting CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd"),
        ("CL list", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 4\r\n\r\nabcd"),
        ("signed CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd"),
        ("TE not chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabcd"),
        ("TE chunked twice", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n"),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n"),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n"),
        ("bare CR in value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n"),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n"),
        ("absolute-form Host mismatch", b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n"),
    ];
    for (what, bytes) in cases {
        match raw(port, bytes) {
            Ok(r) => assert_eq!(r.status, 400, "{what}: got {}", r.status),
            Err(e) => panic!("{what}: no response ({e})"),
        }
    }
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the server");
}

#[test]
fn bad_chunk_size_is_rejected() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    for body in [
        &b"zz\r\nabcd\r\n0\r\n\r\n"[..],
        b"0x4\r\nabcd\r\n0\r\n\r\n",
        b" 4\r\nabcd\r\n0\r\n\r\n",
        b"-4\r\nabcd\r\n0\r\n\r\n",
        b"4\r\nabcdXY0\r\n\r\n",
        b"ffffffffffffffffff\r\n",
    ] {
        let mut req = b"POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(body);
        let r = raw(port, &req);
        let status = r.map(|r| r.status).unwrap_or(0);
        assert!(status == 400 || status == 0, "bad chunk {:?} got {status}", String::from_utf8_lossy(body));
        assert_ne!(status, 200);
    }
}

/// Past hyper's own 64 KiB limit hyper may answer 431 itself before lbha's 400; either way
/// nothing is forwarded.
#[test]
fn oversized_header_section_is_refused() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    let big = "x".repeat(70 * 1024);
    let r = raw(port, format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").as_bytes()).unwrap();
    assert!(r.status == 400 || r.status == 431, "{}", r.status);
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn ten_mib_bodies_stream_both_ways_in_bounded_memory() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    // The daemon's own size (code, runtime, tables) before any body: what streaming must not grow
    // by the size of a body.
    assert_eq!(get(port, "/").status, 200);
    let base = l.peak_rss_kib();
    // Upload: 10 MiB with Content-Length.
    let mut s = connect(port);
    let size = 10 << 20;
    s.write_all(format!("POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").as_bytes()).unwrap();
    let chunk = vec![b'y'; 64 * 1024];
    for _ in 0..(size / chunk.len()) {
        s.write_all(&chunk).unwrap();
    }
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), size.to_string());
    // Upload chunked.
    s.write_all(b"POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
    for _ in 0..160 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
        s.write_all(&chunk).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.text(), (160 * chunk.len()).to_string());
    // Download.
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 10 << 20);
    let peak = l.peak_rss_kib();
    // Holding one 10 MiB body would grow the peak by 10 MiB at least; streaming it moves 64 KiB
    // pieces.
    assert!(
        base > 0 && peak < base + 8 * 1024,
        "lbha peak RSS {peak} KiB from {base} KiB before the bodies: bodies must stream, not buffer"
    );
    eprintln!("peak RSS {peak} KiB, {base} KiB before the bodies");
}

#[test]
fn listen_answers_by_itself_with_http_request_return() {
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
[[listen]]
name = "hello"
bind = ["127.0.0.1:{port}"]
http_request = [
  {{ deny = {{ status = 403 }}, if = "{{ path_beg /private }}" }},
  {{ return = {{ status = 201, content_type = "text/plain", body = "hi\n", headers = ["X-Test: yes"] }} }},
]
"#
    );
    let _l = Lbha::start(&cfg, &[port]);
    let r = get(port, "/");
    assert_eq!(r.status, 201);
    assert_eq!(r.text(), "hi\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-test"), Some("yes"));
    assert_eq!(get(port, "/private/x").status, 403);
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let a = Backend::start("A");
    let port = free_port();
    let mut l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    let t = std::thread::spawn(move || get(port, "/slow"));
    std::thread::sleep(Duration::from_millis(500));
    l.signal(15);
    let r = t.join().unwrap();
    assert_eq!(r.status, 200, "the request in flight completes");
    assert_eq!(r.text(), "A");
    let st = l.wait_exit(Duration::from_secs(10)).expect("lbha exits after draining");
    assert!(st.success(), "exit status {st}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer accepting");
}

fn queue_config(port: u16, backend: u16, queue: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s", queue = "{queue}" }}
[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "a", addr = "127.0.0.1:{backend}", maxconn = 1 }}]
"#
    )
}

#[test]
fn server_maxconn_queues_requests() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&queue_config(port, a.port, "5s"), &[port]);
    let clients: Vec<_> = (0..4).map(|_| std::thread::spawn(move || get(port, "/wait").status)).collect();
    let statuses: Vec<u16> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, [200; 4], "queued requests are served in turn");
    assert_eq!(a.seen.max_active.load(std::sync::atomic::Ordering::SeqCst), 1, "never more than maxconn at the server");
}

#[test]
fn timeout_queue_bounds_the_wait() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&queue_config(port, a.port, "100ms"), &[port]);
    let clients: Vec<_> = (0..3).map(|_| std::thread::spawn(move || get(port, "/wait").status)).collect();
    let mut statuses: Vec<u16> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 503, 503], "one served, two timed out in the queue");
}

/// HAProxy 2.6 keeps the client connection after its own 403 and 429 (`http-request deny`) and
/// 503 (no server available): the next request on it is served.
#[test]
fn own_403_429_and_503_keep_the_client_connection() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
acl = [{{ name = "nobody", cond = "path_beg /none" }}]
http_request = [
  {{ deny = {{ status = 403 }}, if = "{{ path_beg /deny }}" }},
  {{ deny = {{ status = 429 }}, if = "{{ path_beg /slow-down }}" }},
]
use_backend = [{{ backend = "empty", if = "nobody" }}]
default_backend = "b"

[[backend]]
name = "b"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]

[[backend]]
name = "empty"
servers = [{{ name = "off", addr = "127.0.0.1:{}", disabled = true }}]
"#,
        a.port,
        free_port()
    );
    let l = Lbha::start(&cfg, &[port]);
    for (path, status) in [("/deny", 403), ("/slow-down", 429), ("/none", 503)] {
        let mut s = connect(port);
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
        let r = read_response(&mut s, false).unwrap();
        assert_eq!(r.status, status, "{path}: {}", l.log_text());
        assert_ne!(r.header("connection"), Some("close"), "{path}");
        s.write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let next = read_response(&mut s, false).unwrap_or_else(|e| panic!("{path}: connection closed ({e})"));
        assert_eq!((next.status, next.text().as_str()), (200, "A"), "{path}");
    }
    // A denied request's body is skipped, not taken for the next request.
    let mut s = connect(port);
    s.write_all(b"POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 403);
    s.write_all(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    if let Ok(next) = read_response(&mut s, false) {
        assert_eq!((next.status, next.text().as_str()), (200, "A"));
    }
}

/// A bad chunk that arrives in the same read as the request head: the 400 comes before any byte
/// reaches a server (lbha does not even connect).
#[test]
fn bad_chunk_in_the_first_read_forwards_nothing() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let sport = server.local_addr().unwrap().port();
    let port = free_port();
    let _l = Lbha::start(&config(port, &[sport], "", ""), &[port]);
    for body in [&b"4\r\nabcd\r\nzz\r\n0\r\n\r\n"[..], b"zz\r\n", b"4\r\nabcdXY0\r\n\r\n"] {
        let mut req = b"POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(body);
        let r = raw(port, &req).unwrap_or_else(|e| panic!("{:?}: no answer ({e})", String::from_utf8_lossy(body)));
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        // Any connection lbha opened before answering would be waiting in the backlog now.
        match server.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{:?}: lbha connected to the server: {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

/// A request line or header block that does not fit `tune_bufsize` (less HAProxy's 1024 bytes for
/// rewrites) gets 414 or 431 and is never forwarded; one that fits goes through.
#[test]
fn heads_larger_than_tune_bufsize_get_414_or_431_and_are_not_forwarded() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, &[a.port], "", ""), &[port]);
    let long = |n: usize| "a".repeat(n);
    let fits = raw(port, format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", long(14 * 1024)).as_bytes()).unwrap();
    assert_eq!(fits.status, 200);
    let requests = || a.seen.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(requests(), 1);
    for (what, req, status) in [
        ("17 KiB request line", format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", long(17 * 1024)), 414),
        ("17 KiB header", format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", long(17 * 1024)), 431),
        (
            "110 header fields (HAProxy takes 100)",
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                (1..110).map(|i| format!("X-{i}: v\r\n")).collect::<String>()
            ),
            431,
        ),
    ] {
        let r = raw(port, req.as_bytes()).unwrap_or_else(|e| panic!("{what}: no answer ({e})"));
        assert_eq!(r.status, status, "{what}");
    }
    assert_eq!(requests(), 1, "nothing more reached the server");

    // A larger buffer lets the same requests through.
    let port = free_port();
    let cfg = format!("[global]\ntune_bufsize = 32768\n{}", config(port, &[a.port], "", ""));
    let _l = Lbha::start(&cfg, &[port]);
    let r = raw(port, format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", long(17 * 1024)).as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(requests(), 2);
}

/// `option forwardfor except NET` and `if-none`, from the native config and from haproxy.cfg.
#[test]
fn forwardfor_except_and_if_none() {
    let a = Backend::start("A");
    let xff = |extra: &str, port: u16| {
        let r = raw(port, format!("GET / HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        let h = a.seen.last_headers.lock().unwrap().clone();
        h.into_iter().filter(|(k, _)| k == "x-forwarded-for").map(|(_, v)| v).collect::<Vec<_>>()
    };
    // The client is 127.0.0.1: inside 127.0.0.0/8, outside 10.0.0.0/8.
    let port = free_port();
    let _l =
        Lbha::start(&config(port, &[a.port], "forwardfor = true\nforwardfor_except = \"127.0.0.0/8\"", ""), &[port]);
    assert!(xff("", port).is_empty(), "the client is in the except network");
    let port = free_port();
    let _l = Lbha::start(
        &config(
            port,
            &[a.port],
            "forwardfor = true\nforwardfor_except = \"10.0.0.0/8\"\nforwardfor_if_none = true",
            "",
        ),
        &[port],
    );
    assert_eq!(xff("", port), ["127.0.0.1"]);
    assert_eq!(xff("X-Forwarded-For: 192.0.2.7\r\n", port), ["192.0.2.7"], "if-none: the client's own is kept alone");

    let port = free_port();
    let _l = Lbha::start_haproxy(
        &format!(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nlisten web\n  bind 127.0.0.1:{port}\n  option forwardfor except 127.0.0.1 if-none\n  server a 127.0.0.1:{}\n",
            a.port
        ),
        &[port],
    );
    assert!(xff("", port).is_empty(), "haproxy.cfg: except");
    assert_eq!(xff("X-Forwarded-For: 192.0.2.7\r\n", port), ["192.0.2.7"], "haproxy.cfg: if-none");
}

/// `CONNECT` in HTTP mode, as HAProxy 2.6: forwarded to the server, its 2xx relayed, then bytes
/// flow both ways; a refusal from the server reaches the client as an ordinary response.
#[test]
fn connect_is_forwarded_and_tunnels_after_a_2xx() {
    let sport = connect_server(2, b"echo:");
    let port = free_port();
    let l = Lbha::start(&config(port, &[sport], "", ""), &[port]);
    let mut s = connect(port);
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
    let r = read_response(&mut s, true).unwrap_or_else(|e| panic!("no answer to CONNECT ({e}):\n{}", l.log_text()));
    assert_eq!(r.status, 200);
    let mut back = vec![0u8; 10];
    s.write_all(b"hello").unwrap();
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, b"echo:hello");
    s.write_all(b"again").unwrap();
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, b"echo:again");

    let r = raw(port, b"CONNECT refused.example:443 HTTP/1.1\r\nHost: refused.example:443\r\n\r\n").unwrap();
    assert_eq!((r.status, r.text().as_str()), (403, "no"));
}

/// Heads the framing guard refuses (unparseable, folded, too many fields, ambiguous framing)
/// never reach hyper or a server: the client gets HAProxy's 400 (or 431) page, the log a
/// `<BADREQ>` line, and a good request before them on the same connection is still answered. A
/// head that arrives in pieces, bare-LF line ends included, is served once complete.
#[test]
fn refused_heads_get_the_proxys_page_and_a_badreq_log_line() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        "[global]\nlog = [\"stderr format raw local0\"]\n{}",
        config(port, &[a.port], "httplog = true\nlog = \"global\"", "")
    );
    let l = Lbha::start(&cfg, &[port]);
    let requests = || a.seen.requests.load(std::sync::atomic::Ordering::SeqCst);
    let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /many HTTP/1.1\r\nHost: t\r\n{fields}\r\n");
    for (what, bad, status) in [
        ("bad request line", "GET /x HTTP/1.1 x\r\nHost: t\r\n\r\n".to_string(), 400),
        ("control byte in the method", "G\x01T /x HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("obs-fold", "GET /x HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n".into(), 400),
        (
            "two different Content-Lengths",
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".into(),
            400,
        ),
        ("101 header fields", many.clone(), 431),
    ] {
        let before = requests();
        // A good request first, in the same write: answered, then the bad one refused.
        let mut s = connect(port);
        s.write_all(format!("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n{bad}").as_bytes()).unwrap();
        let first = read_response(&mut s, false).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(first.status, 200, "{what}");
        let second = read_response(&mut s, false).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(second.status, status, "{what}");
        assert!(
            second.text().contains(&format!("<h1>{status} ")),
            "{what}: the proxy's page, not hyper's: {:?}",
            second.text()
        );
        assert_eq!(second.header("connection"), Some("close"), "{what}");
        assert_eq!(requests(), before + 1, "{what}: only the good request reached the server");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while l.log_text().matches("\"<BADREQ>\"").count() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    let log = l.log_text();
    let count = |needle: &str| log.lines().filter(|line| line.contains(needle)).count();
    assert_eq!(count("\"<BADREQ>\""), 5, "{log}");
    assert_eq!(count(" 400 "), 4, "{log}");
    assert_eq!(count(" 431 "), 1, "{log}");
    assert_eq!(count(" PR-- "), 5, "{log}");

    // `show errors`: the last refused head of the frontend, dumped with its offsets.
    let shown = l.ctl(&["show errors"]);
    assert!(shown.starts_with("Total events captured on ["), "{shown}");
    assert!(shown.contains("] : 5\n"), "{shown}");
    assert!(shown.contains("frontend web (#1): invalid request"), "{shown}");
    assert!(shown.contains("reason: header section too large :"), "{shown}");
    assert!(shown.contains("  00000  GET /many HTTP/1.1\\r\\n\n"), "{shown}");
    assert!(!l.ctl(&["show errors web response"]).contains("frontend web"));
    assert!(l.ctl(&["show errors nope"]).contains("No such proxy."));

    // The same 101 fields written a few bytes at a time: refused once the 101st field shows.
    let mut s = connect(port);
    for piece in many.as_bytes().chunks(700) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_response(&mut s, false).unwrap().status, 431);

    // A good head in pieces, with bare LF line ends: served once complete.
    let before = requests();
    let mut s = connect(port);
    for piece in ["GET /slow HT", "TP/1.1\nHo", "st: t\n", "\n"] {
        s.write_all(piece.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    assert_eq!(requests(), before + 1);
}

/// `timeout http-request` with a head begun: HAProxy's 408 page, a `<BADREQ>` line with `cR--`,
/// and nothing forwarded. A connection idle between requests is closed without an answer (one
/// that never sent a byte: see tests/probes.rs).
#[test]
fn a_head_cut_by_timeout_http_request_gets_a_408() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        "[global]\nlog = [\"stderr format raw local0\"]\n{}",
        config(port, &[a.port], "httplog = true\nlog = \"global\"", "")
    )
    .replace("server = \"5s\" }", "server = \"5s\", http_request = \"400ms\" }");
    assert!(cfg.contains("http_request = \"400ms\""), "{cfg}");
    let l = Lbha::start(&cfg, &[port]);
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Half").unwrap();
    let r = read_response(&mut s, false).expect("a 408");
    assert_eq!(r.status, 408);
    assert!(r.text().contains("<h1>408 Request Time-out</h1>"), "{}", r.text());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !l.log_text().contains(" 408 ") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    let log = l.log_text();
    let line = log.lines().find(|l| l.contains(" 408 ")).unwrap_or_else(|| panic!("no 408 line:\n{log}"));
    assert!(line.contains(" cR-- ") && line.ends_with("\"<BADREQ>\""), "{line}");
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Idle after a request: closed, no answer.
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("closed by the proxy");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}
