//! Idle HTTP/1 client connections are parked (see `proxy::park`): hyper lets go of the socket
//! between requests and a new hyper connection takes the next one. The client must not notice.

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;

/// Longer than `proxy::park::PARK_AFTER`.
const PAST_PARK: Duration = Duration::from_millis(1600);
const PARKED: &str = "idle HTTP/1 connection parked";

/// Waits (generously: timers fire late on a loaded machine) until lbha logged a park.
fn wait_parked(l: &Lbha) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !l.log_text().contains(PARKED) {
        assert!(std::time::Instant::now() < deadline, "no connection parked:\n{}", l.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listen(port: u16, backend: u16, timeouts: &str) -> String {
    format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ {timeouts} }}\n[[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{backend}\" }}]\n"
    )
}

#[test]
fn a_parked_connection_serves_its_next_requests_in_order() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&listen(port, a.port, "client = \"30s\""), &[port]);
    let mut s = connect(port);
    for round in 0..3 {
        s.write_all(format!("GET /r{round} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
        let r = read_response(&mut s, false).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!((r.status, r.text()), (200, "A".to_string()), "round {round}");
        std::thread::sleep(PAST_PARK);
        wait_parked(&l);
    }
    // Two requests in one write after a park: both answered, in order.
    s.write_all(b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    for n in 1..=2 {
        let r = read_response(&mut s, false).unwrap_or_else(|e| panic!("pipelined {n}: {e}"));
        assert_eq!(r.status, 200, "pipelined {n}");
    }
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[test]
fn a_request_head_split_across_a_pause_is_not_lost() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&listen(port, a.port, "client = \"30s\", http_request = \"10s\""), &[port]);
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    wait_parked(&l);
    // The first bytes wake the parked connection; the rest come after a pause of their own.
    s.write_all(b"GET /sp").unwrap();
    std::thread::sleep(PAST_PARK);
    s.write_all(b"lit HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "A".to_string()));
}

#[test]
fn a_parked_connection_still_closes_at_http_keep_alive() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&listen(port, a.port, "client = \"30s\", http_keep_alive = \"5s\""), &[port]);
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    wait_parked(&l);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "closed by the keep-alive timer, not by the read timeout");
}

#[test]
fn a_client_that_leaves_while_parked_is_forgotten() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&listen(port, a.port, "client = \"30s\""), &[port]);
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    wait_parked(&l);
    drop(s);
    // The session ends: `show sess`-style counters come back to zero.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = l.ctl(&["show stat"]);
        let scur = stat
            .lines()
            .find(|x| x.starts_with("web,FRONTEND,"))
            .and_then(|x| x.split(',').nth(4))
            .unwrap_or("?")
            .to_string();
        if scur == "0" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "frontend scur stays {scur}:\n{stat}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
