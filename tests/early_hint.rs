//! `http-request early-hint NAME FMT`: the `103 Early Hints` bytes lbha writes, compared with
//! HAProxy 2.6's on the same haproxy.cfg; the 103 reaches the client while the server has not
//! answered yet; HTTP/1.0 clients get none.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

fn config(port: u16, backend: u16) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request early-hint link \"</style.css>; rel=preload; as=style\"\n  \
         http-request early-hint Link \"</script.js>; rel=preload; as=script\" if {{ path /x }}\n  \
         http-request early-hint x-path %[path]\n  \
         http-request set-header foo bar\n  \
         http-request early-hint link \"</late.css>\"\n  \
         http-request return status 200 content-type text/plain string ok if {{ path /x }} || {{ path /y }}\n  \
         default_backend b\n\
         backend b\n  server s 127.0.0.1:{backend}\n"
    )
}

/// Everything the proxy wrote until it closed.
fn exchange(port: u16, req: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The 103 responses before the final one, and the final status line.
fn split(all: &str) -> (&str, &str) {
    let at = all.find("HTTP/1.1 200").or_else(|| all.find("HTTP/1.0 200")).unwrap_or(all.len());
    (&all[..at], all[at..].lines().next().unwrap_or(""))
}

const HINTS_X: &str = "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nlink: </script.js>; rel=preload; as=script\r\nx-path: /x\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nlink: </late.css>\r\n\r\n";
const HINTS_Y: &str = "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nx-path: /y\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nlink: </late.css>\r\n\r\n";

fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("HTTP/1.1 /x", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(), HINTS_X),
        ("HTTP/1.1 /y", "GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".into(), HINTS_Y),
        ("HTTP/1.0", "GET /y HTTP/1.0\r\nHost: a\r\n\r\n".into(), ""),
    ]
}

#[test]
fn early_hints_are_the_bytes_haproxy_writes() {
    let port = free_port();
    let dead = free_port();
    let lbha = Lbha::start_haproxy(&config(port, dead), &[port]);
    let ours: Vec<String> = cases().iter().map(|(_, req, _)| exchange(port, req)).collect();
    for ((name, _, want), got) in cases().iter().zip(&ours) {
        let (hints, status) = split(got);
        assert_eq!(hints, *want, "lbha: {name}\n{got}\n{}", lbha.log_text());
        assert!(status.contains(" 200 "), "lbha: {name}: {got}");
    }
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let hport = free_port();
    let _h = haproxy(&config(hport, dead), hport);
    for ((name, req, _), o) in cases().iter().zip(&ours) {
        let theirs = exchange(hport, req);
        assert_eq!(split(o).0, split(&theirs).0, "lbha and HAProxy differ: {name}");
    }
}

#[test]
fn the_hint_leaves_before_the_server_answers() {
    // The server answers only once the client has read the 103: a hint held back until the
    // response would leave both waiting, and the test fails at its bound.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = backend.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut s, _) = backend.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        read_request_head(&mut s).expect("a request");
        let got = rx.recv_timeout(Duration::from_secs(10)).is_ok();
        let body = if got { "after-hint" } else { "no-hint" };
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let _ = s.write_all(resp.as_bytes());
    });
    let port = free_port();
    let lbha = Lbha::start_haproxy(&config(port, bport), &[port]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(b"GET /z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"</late.css>\r\n\r\n") && got.len() < 4096 {
        if c.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        got.push(byte[0]);
    }
    let _ = tx.send(());
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    server.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{text}\n{}", lbha.log_text());
    assert!(text.contains("x-path: /z\r\n"), "{text}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.ends_with("after-hint"), "{rest}");
}
