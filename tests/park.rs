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

/// `Proxy::idle_wait`: a parked connection and one that has sent nothing wait on the proxy's one
/// shared wake; a stop or a reload must still reach each of them long before their idle timers.
const LONG_IDLE: &str = "client = \"30s\", http_request = \"1h\", http_keep_alive = \"1h\"";

fn parked_client(l: &Lbha, port: u16) -> std::net::TcpStream {
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    wait_parked(l);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn closed_by_lbha(s: &mut std::net::TcpStream, what: &str) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what}: the idle connection was not closed ({other:?})"),
    }
}

#[test]
fn a_stop_closes_parked_and_silent_connections() {
    let a = Backend::start("A");
    let port = free_port();
    let mut l =
        Lbha::start(&format!("[global]\nhard_stop_after = \"1h\"\n{}", listen(port, a.port, LONG_IDLE)), &[port]);
    let mut parked = parked_client(&l, port);
    let mut silent = connect(port);
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    l.signal(15);
    closed_by_lbha(&mut parked, "parked, at a stop");
    closed_by_lbha(&mut silent, "sent nothing, at a stop");
    assert!(l.wait_exit(Duration::from_secs(30)).is_some(), "lbha stopped:\n{}", l.log_text());
}

#[test]
fn a_reload_cuts_idle_connections_it_ends_and_keeps_the_others() {
    let a = Backend::start("A");
    let (port, other) = (free_port(), free_port());
    let l = Lbha::start(&listen(port, a.port, LONG_IDLE), &[port]);
    let mut parked = parked_client(&l, port);
    // A reload that keeps the bind: the parked connection stays and serves its next request.
    let (code, out, err) = l.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    parked.write_all(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut parked, false).unwrap().status, 200, "kept across a plain reload");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while l.log_text().matches(PARKED).count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not parked again:
{}",
            l.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A terminating reload cuts it.
    let (code, out, err) = l.cli(&["reload", "--terminate"]);
    assert_eq!(code, 0, "{out}{err}");
    closed_by_lbha(&mut parked, "parked, at a terminating reload");
    // A reload that removes its bind cuts a connection that has sent nothing.
    let mut silent = connect(port);
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let tmp = l.config.with_extension("tmp");
    std::fs::write(&tmp, listen(other, a.port, LONG_IDLE)).unwrap();
    std::fs::rename(&tmp, &l.config).unwrap();
    l.signal(1);
    closed_by_lbha(&mut silent, "sent nothing, bind removed by a reload");
}

/// The frontend's current sessions (`scur`) as `show stat` reports them.
fn scur(l: &Lbha) -> String {
    let stat = l.ctl(&["show stat"]);
    stat.lines().find(|x| x.starts_with("web,FRONTEND,")).and_then(|x| x.split(',').nth(4)).unwrap_or("?").to_string()
}

/// A connection that sends nothing for a while leaves its task for the lot (`proxy::lot`); it is
/// served when it speaks, and one that never does gets HAProxy's 408 at `timeout http-request`
/// (closed unanswered with `http_ignore_probes`: see tests/probes.rs).
#[test]
fn a_silent_connection_in_the_lot_is_served_when_it_speaks_and_closed_at_http_request() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&listen(port, a.port, "client = \"30s\", http_request = \"8s\""), &[port]);
    let mut late = connect(port);
    let mut mute = connect(port);
    mute.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Longer than the lot's grace (200 ms), shorter than `http_request`.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(scur(&l), "2", "both connections count while in the lot");
    late.write_all(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut late, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "A".to_string()));
    let mut answer = String::new();
    let _ = mute.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408 Request Time-out\r\n"), "sent nothing, past http_request: {answer:?}");
}

/// A parked connection keeps its `maxconn` slot and its session: a second client waits until
/// the parked one is closed by `timeout http-keep-alive`, and is then served; the first is served
/// again after several parks before that.
#[test]
fn a_parked_connection_holds_its_maxconn_slot_until_its_keep_alive_ends() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        "[global]\nmaxconn = 1\n{}",
        listen(port, a.port, "client = \"30s\", http_request = \"30s\", http_keep_alive = \"4s\"")
    );
    let l = Lbha::start(&cfg, &[port]);
    let mut first = connect(port);
    for round in 0..2 {
        first.write_all(format!("GET /r{round} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(read_response(&mut first, false).unwrap().status, 200, "round {round}");
        std::thread::sleep(PAST_PARK);
        wait_parked(&l);
    }
    assert_eq!(scur(&l), "1", "the parked connection is still a session");
    // Queued in the kernel's backlog behind the parked connection's slot.
    let mut second = connect(port);
    second.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    second.write_all(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    first.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    closed_by_lbha(&mut first, "parked, past http_keep_alive");
    let r = read_response(&mut second, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "A".to_string()), "served once the slot came back");
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn a_connection_back_from_the_lot_keeps_the_keep_alive_rules_and_times_its_next_head() {
    let a = Backend::start("A");
    let port = free_port();
    let t = "client = \"30s\", http_request = \"2s\", http_keep_alive = \"30s\"";
    let l = Lbha::start(&listen(port, a.port, t), &[port]);
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    wait_parked(&l);
    // Longer than `http_request` since the accept: between requests `http_keep_alive` rules.
    std::thread::sleep(Duration::from_secs(3));
    s.write_all(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "A".to_string()));
    // Parked again, then a head that begins and stalls: `http_request` from its first byte, 408.
    let parks = l.log_text().matches(PARKED).count();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while l.log_text().matches(PARKED).count() == parks {
        assert!(std::time::Instant::now() < deadline, "not parked again:\n{}", l.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    s.write_all(b"GET /3 HTTP/1.1\r\nHo").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(a.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
