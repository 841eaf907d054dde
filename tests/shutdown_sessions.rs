//! `on_marked_down = "shutdown-sessions"` in HTTP mode, for the sessions a response body does not
//! cover: a request still waiting for the server's response headers, and a WebSocket tunnel.
//! The server's health port is a separate test server that the test stops, so the data
//! connection stays open and only the mark-down can end the session.

mod common;
mod kit;

use common::*;
use kit::{Answer, Web, head_server, wait_log};
use std::io::{Read, Write};
use std::time::Duration;

fn config(port: u16, data: u16, health: u16, shutdown: bool) -> String {
    let omd = if shutdown { ", on_marked_down = \"shutdown-sessions\"" } else { "" };
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "500ms", client = "30s", server = "30s", tunnel = "30s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{data}", check = true, check_port = {health}, inter = 100, fall = 1, rise = 1{omd} }}]
"#
    )
}

/// A request that the server never answers; its health port closes meanwhile. Returns what the
/// client got within 3 s of the mark-down.
fn awaiting_headers(shutdown: bool) -> std::io::Result<Resp> {
    let health = Web::start("H");
    let data = head_server(Answer::Never);
    let port = free_port();
    let l = Lbha::start(&config(port, data, health.port, shutdown), &[port]);
    let mut c = connect(port);
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    health.stop();
    wait_log(|| l.log_text(), "Server web/s is DOWN");
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    read_response(&mut c, false)
}

#[test]
fn a_request_awaiting_headers_gets_503_when_its_server_is_marked_down() {
    let r = awaiting_headers(true).expect("an answer, not a hang");
    assert_eq!(r.status, 503);
}

#[test]
fn without_shutdown_sessions_the_request_keeps_waiting() {
    let r = awaiting_headers(false);
    assert!(
        r.as_ref().is_err_and(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "still waiting: {:?}",
        r.map(|r| r.status)
    );
}

/// An open WebSocket tunnel whose server is then marked down: the bytes read after that.
fn tunnel_after_down(shutdown: bool) -> std::io::Result<usize> {
    let health = Web::start("H");
    let data = head_server(Answer::Upgrade);
    let port = free_port();
    let l = Lbha::start(&config(port, data, health.port, shutdown), &[port]);
    let mut c = connect(port);
    c.write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 101);
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping", "tunnel is up");
    health.stop();
    wait_log(|| l.log_text(), "Server web/s is DOWN");
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut one = [0u8; 1];
    c.read(&mut one)
}

#[test]
fn a_websocket_tunnel_closes_when_its_server_is_marked_down() {
    let r = tunnel_after_down(true);
    assert!(
        matches!(r, Ok(0)) || r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "tunnel closed by lbha: {r:?}"
    );
}

#[test]
fn without_shutdown_sessions_the_tunnel_stays_open() {
    let r = tunnel_after_down(false);
    assert!(
        r.as_ref().is_err_and(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "tunnel left alone: {r:?}"
    );
}
