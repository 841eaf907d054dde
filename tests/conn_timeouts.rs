//! Connection lifetimes on both sides: retries on server connections that broke, idle client and
//! server connections closed on their timers, `timeout server` as inactivity.

mod common;
mod kit;

use common::*;
use kit::wait_log;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

fn listen(port: u16, extra: &str, servers: &[u16]) -> String {
    let list: Vec<String> =
        servers.iter().enumerate().map(|(i, p)| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    format!(
        "[defaults]\nmode = \"http\"\n\n[[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n{extra}\nservers = [{}]\n",
        list.join(", ")
    )
}

/// Reads one request head (and a `Content-Length` body); `None` once the peer closed.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let head = read_request_head(s)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let len = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(text)
}

/// A server that answers the first request of each connection and closes the connection when the
/// next one arrives, without answering it: the race of a keep-alive connection the server closes
/// just as a request is sent on it, made certain. Counts every request head it reads. With
/// `at_once`, it closes right after its answer instead (still without `Connection: close`).
fn closes_after_one_answer(at_once: bool) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let heads = Arc::new(AtomicUsize::new(0));
    let h = heads.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            let h = h.clone();
            std::thread::spawn(move || {
                if read_head(&mut s).is_none() {
                    return;
                }
                h.fetch_add(1, SeqCst);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                if !at_once && read_head(&mut s).is_some() {
                    h.fetch_add(1, SeqCst);
                }
            });
        }
    });
    (port, heads)
}

#[test]
fn a_get_sent_on_a_reused_connection_the_server_closed_goes_again_on_a_new_one() {
    let (server, _) = closes_after_one_answer(false);
    let port = free_port();
    let _l = Lbha::start(&listen(port, "", &[server]), &[port]);
    for i in 0..6 {
        let r = get(port, "/");
        assert_eq!((i, r.status, r.text()), (i, 200, "ok".to_string()));
    }
}

#[test]
fn sequential_gets_to_a_server_that_closes_after_each_answer_all_succeed() {
    let (server, _) = closes_after_one_answer(true);
    let port = free_port();
    let _l = Lbha::start(&listen(port, "", &[server]), &[port]);
    let mut c = connect(port);
    for i in 0..12 {
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut c, false).unwrap();
        assert_eq!((i, r.status, r.text()), (i, 200, "ok".to_string()));
    }
}

#[test]
fn a_post_on_a_reused_connection_the_server_closed_is_not_sent_twice() {
    let (server, heads) = closes_after_one_answer(false);
    let port = free_port();
    // `always`: the POST, the first request of its client connection, takes the idle server
    // connection (with the default `safe` it would open its own).
    let _l = Lbha::start(&listen(port, "http_reuse = \"always\"", &[server]), &[port]);
    assert_eq!(get(port, "/").status, 200);
    let r = raw(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx").unwrap();
    assert_eq!(r.status, 502, "a POST may have had its effect: never replayed");
    assert_eq!(heads.load(SeqCst), 2, "the server saw the GET and the POST once each");
}

#[test]
fn connect_retries_to_the_same_server_wait_between_attempts() {
    // The server is down for the first attempt and up within the pauses lbha takes between
    // retries (min(timeout connect, 1 s) each); without the pauses every retry fails at once.
    let server = free_port();
    let port = free_port();
    let l = Lbha::start(&listen(port, "retries = 3\ntimeout = { connect = \"2s\" }", &[server]), &[port]);
    let client = std::thread::spawn(move || get(port, "/").status);
    wait_log(|| l.log_text(), "connect failed");
    let _up = Backend::start_on("A", server);
    assert_eq!(client.join().unwrap(), 200);
}

#[test]
fn tcp_connect_retries_wait_between_attempts_too() {
    let server = free_port();
    let port = free_port();
    let extra = "mode = \"tcp\"\nretries = 3\ntimeout = { connect = \"2s\" }";
    // No readiness probe: in TCP mode its connection would make connect attempts of its own.
    let l = Lbha::start(&listen(port, extra, &[server]), &[]);
    wait_log(|| l.log_text(), &format!("listening on 127.0.0.1:{port}"));
    let client = std::thread::spawn(move || get(port, "/").text());
    wait_log(|| l.log_text(), "connect failed");
    let _up = Backend::start_on("A", server);
    assert_eq!(client.join().unwrap(), "A", "the session reached the server that came up");
}

/// Sends a POST of `len` bytes to `/len`, `chunk` bytes every `every`, from a thread; returns the
/// client stream to read the answer from.
fn trickle_post(port: u16, len: usize, chunk: usize, every: Duration) -> TcpStream {
    let mut c = connect(port);
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(
        format!("POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut w = c.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut left = len;
        while left > 0 {
            let n = chunk.min(left);
            if w.write_all(&vec![b'x'; n]).is_err() {
                return;
            }
            left -= n;
            std::thread::sleep(every);
        }
    });
    c
}

#[test]
fn an_upload_longer_than_timeout_server_is_not_a_server_timeout() {
    // 10 KB at 2 KB/s takes 5 s; the server is never idle for `timeout server` (3 s) meanwhile.
    let a = Backend::start("A");
    let port = free_port();
    let cfg = listen(port, "timeout = { client = \"5s\", server = \"3s\" }", &[a.port]);
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = trickle_post(port, 10_240, 200, Duration::from_millis(100));
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "10240".to_string()));
}

#[test]
fn a_request_body_trickled_under_body_min_rate_is_cut() {
    // 50 bytes/s against a floor of 1000 bytes/s: cut once lbha has waited `timeout client` (2 s)
    // for it, long before the 6 s the whole body would take.
    let a = Backend::start("A");
    let port = free_port();
    let cfg = listen(port, "body_min_rate = 1000\ntimeout = { client = \"2s\", server = \"30s\" }", &[a.port]);
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = trickle_post(port, 300, 10, Duration::from_millis(200));
    let r = read_response(&mut c, false).expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text());
}

/// Reads until the peer closes; the bytes read, or the error that ended the wait (a read timeout
/// means the connection was left open).
fn read_until_closed(s: &mut TcpStream) -> Result<Vec<u8>, std::io::Error> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// The types of the HTTP/2 frames in `bytes`.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

fn h2c(port: u16, timeouts: &str, server: u16) -> String {
    format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ {timeouts} }}\n[[listen]]\nname = \"h2c\"\nbind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{server}\" }}]\n"
    )
}

#[test]
fn an_h2_connection_that_sends_only_its_preface_and_settings_is_closed_with_a_goaway() {
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&h2c(port, "client = \"60s\", http_request = \"1s\"", a.port), &[port]);
    let mut c = connect(port);
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    c.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let got = read_until_closed(&mut c).expect("lbha closes the idle HTTP/2 connection");
    assert!(h2_frame_types(&got).contains(&7), "a GOAWAY before the close: {:?}", h2_frame_types(&got));
}

#[test]
fn an_h2_stream_in_progress_outlives_the_idle_timer_and_the_idle_connection_then_closes() {
    let a = Backend::start("A");
    let port = free_port();
    let timeouts = "client = \"60s\", server = \"30s\", http_request = \"1s\", http_keep_alive = \"1s\"";
    let _l = Lbha::start(&h2c(port, timeouts, a.port), &[port]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use http_body_util::BodyExt;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        // `/slow` answers after 3 s, three times the idle timers.
        let req =
            hyper::Request::get("http://h2c.test/slow").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
        let resp = send.send_request(req).await.expect("the stream is not cut");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "A");
        let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
        assert!(ended.is_ok(), "the connection, idle after its stream, is closed by lbha");
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_http_keep_alive() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg =
        listen(port, "timeout = { client = \"60s\", http_request = \"60s\", http_keep_alive = \"1s\" }", &[a.port]);
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = connect(port);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    let rest = read_until_closed(&mut c).expect("closed after http_keep_alive, not http_request");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn http_request_does_not_cut_a_connection_waiting_for_its_next_request() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg =
        listen(port, "timeout = { client = \"60s\", http_request = \"1s\", http_keep_alive = \"30s\" }", &[a.port]);
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = connect(port);
    for _ in 0..2 {
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, 200);
        // Idle for over twice `http_request`, well within `http_keep_alive`.
        std::thread::sleep(Duration::from_millis(2500));
    }
}

#[test]
fn an_unfinished_first_request_head_is_cut_after_http_request() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg =
        listen(port, "timeout = { client = \"60s\", http_request = \"1s\", http_keep_alive = \"60s\" }", &[a.port]);
    let _l = Lbha::start(&cfg, &[port]);
    let mut c = connect(port);
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    read_until_closed(&mut c).expect("an unfinished first head is cut after http_request");
}

#[test]
fn an_idle_server_connection_is_closed_after_pool_purge_delay() {
    // The server answers one request with keep-alive, then waits for lbha to close the connection.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.local_addr().unwrap().port();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        if read_head(&mut s).is_none() {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 64];
        let _ = closed_tx.send(matches!(s.read(&mut b), Ok(0)));
    });
    let port = free_port();
    let _l = Lbha::start(&listen(port, "pool_purge_delay = \"500ms\"", &[server]), &[port]);
    assert_eq!(get(port, "/").status, 200);
    let eof = closed.recv_timeout(Duration::from_secs(15));
    assert_eq!(eof, Ok(true), "lbha closed its idle connection to the server");
}
