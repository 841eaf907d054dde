//! Idle timeouts while a body streams: a server that stops in the middle of its response body is
//! cut after `timeout server`, a client that stops in the middle of its request body after
//! `timeout client`, so neither pins a connection forever.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Answers one request with a head promising 10 bytes, sends 3, then holds the connection.
fn stalling_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = [0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        // Hold until lbha gives up and closes its side.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    port
}

fn config(port: u16, server: u16) -> String {
    format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"600ms\", server = \"600ms\" }}\n\n[[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{server}\" }}]\n"
    )
}

#[test]
fn a_response_body_that_stalls_is_cut_after_timeout_server() {
    let server = stalling_server();
    let port = free_port();
    let _l = Lbha::start(&config(port, server), &[port]);
    let mut c = connect(port);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // Reads until lbha closes the connection; a hang would end with the 10 s read timeout.
    let end = loop {
        match c.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("abc"), "only the 3 bytes the server sent: {text}");
    assert!(
        end.is_ok() || end.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "connection closed by lbha, not left hanging ({:?} after {:?})",
        end,
        start.elapsed()
    );
}

#[test]
fn a_request_body_that_stalls_is_cut_after_timeout_client() {
    let echo = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&config(port, echo.addr().port()), &[port]);
    let mut c = connect(port);
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let end = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        end.is_ok() || end.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "connection closed by lbha: {end:?} {text}"
    );
    // Whatever lbha answered, it was not a 2xx for a request whose body never arrived.
    assert!(!text.starts_with("HTTP/1.1 2"), "{text}");
}
