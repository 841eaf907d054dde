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
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
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
/// just as a request is sent on it, made certain. Counts every request head it reads.
fn closes_after_one_answer() -> (u16, Arc<AtomicUsize>) {
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
                if read_head(&mut s).is_some() {
                    h.fetch_add(1, SeqCst);
                }
            });
        }
    });
    (port, heads)
}

#[test]
fn a_get_sent_on_a_reused_connection_the_server_closed_goes_again_on_a_new_one() {
    let (server, _) = closes_after_one_answer();
    let port = free_port();
    let _l = Lbha::start(&listen(port, "", &[server]), &[port]);
    for i in 0..6 {
        let r = get(port, "/");
        assert_eq!((i, r.status, r.text()), (i, 200, "ok".to_string()));
    }
}

#[test]
fn a_post_on_a_reused_connection_the_server_closed_is_not_sent_twice() {
    let (server, heads) = closes_after_one_answer();
    let port = free_port();
    let _l = Lbha::start(&listen(port, "", &[server]), &[port]);
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
    match read_response(&mut c, false) {
        Ok(r) => assert_eq!(r.status, 400, "{}", r.text()),
        Err(e) => assert!(e.kind() != std::io::ErrorKind::WouldBlock, "no answer and no close: {e}"),
    }
}
