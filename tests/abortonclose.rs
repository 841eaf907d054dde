//! `option abortonclose`: a client that closes while its request waits in the queue of a full
//! server never reaches the server; without the option the request is served, as HAProxy 2.6
//! does. Real lbha binary, loopback only.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

fn config(port: u16, server: u16, abortonclose: bool) -> String {
    format!(
        r#"
[defaults]
mode = "http"
abortonclose = {abortonclose}
timeout = {{ connect = "5s", client = "30s", server = "30s", queue = "30s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{server}", maxconn = 1 }}]
"#
    )
}

/// Waits (up to 20 s) until `f` holds.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Takes the server's only slot with a slow request, then queues one whose client half-closes
/// right after sending it; returns lbha and its port, the server, that client and the slow one's thread.
type Setup = (Lbha, u16, Backend, TcpStream, std::thread::JoinHandle<Resp>);

fn queued_then_closed(abortonclose: bool) -> Setup {
    let app = Backend::start("app");
    let port = free_port();
    let l = Lbha::start(&config(port, app.port, abortonclose), &[port]);
    let slow = std::thread::spawn(move || get(port, "/slow"));
    assert!(eventually(|| app.seen.active.load(SeqCst) == 1), "the slow request never reached the server");
    let mut queued = connect(port);
    queued.write_all(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    queued.shutdown(Shutdown::Write).unwrap();
    queued.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    (l, port, app, queued, slow)
}

#[test]
fn with_abortonclose_a_client_that_closes_while_queued_never_reaches_the_server() {
    let (_l, port, app, mut queued, slow) = queued_then_closed(true);
    // lbha shuts the connection without an answer (HAProxy's CQ).
    let mut got = Vec::new();
    let _ = queued.read_to_end(&mut got);
    assert!(got.is_empty(), "an aborted request got an answer: {}", String::from_utf8_lossy(&got));
    assert_eq!(slow.join().unwrap().status, 200);
    // The slot is free again: the next request is served, and it is only the second one seen.
    assert_eq!(get(port, "/after").status, 200);
    assert_eq!(app.seen.requests.load(SeqCst), 2, "the aborted request reached the server");
}

#[test]
fn without_abortonclose_a_half_closed_client_is_still_served() {
    let (_l, _port, app, mut queued, slow) = queued_then_closed(false);
    let resp = read_response(&mut queued, false).expect("the queued request is answered");
    assert_eq!(resp.status, 200);
    assert_eq!(slow.join().unwrap().status, 200);
    assert_eq!(app.seen.requests.load(SeqCst), 2);
}
