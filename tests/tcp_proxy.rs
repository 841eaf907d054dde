//! TCP mode end to end.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};

/// An echo server that reads until EOF, then answers `tag` + what it read and closes: it only
/// answers if the proxy passed the client's half-close on.
fn echo_after_eof(tag: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got);
                let _ = s.write_all(tag.as_bytes());
                let _ = s.write_all(&got);
            });
        }
    });
    port
}

fn tcp_config(port: u16, servers: &[(u16, u32)]) -> String {
    let list: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, (p, w))| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\", weight = {w} }}"))
        .collect();
    format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "db"
bind = ["127.0.0.1:{port}"]
balance = "roundrobin"
servers = [{}]
"#,
        list.join(", ")
    )
}

fn exchange(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(payload).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn half_close_reaches_the_server_and_the_answer_comes_back() {
    let a = echo_after_eof("A:");
    let port = free_port();
    let _l = Lbha::start(&tcp_config(port, &[(a, 1)]), &[port]);
    let payload = vec![b'z'; 300_000];
    let out = exchange(port, &payload);
    assert_eq!(&out[..2], b"A:");
    assert_eq!(out.len(), 2 + payload.len());
}

#[test]
fn weighted_round_robin_in_tcp_mode() {
    let a = echo_after_eof("A");
    let b = echo_after_eof("B");
    let port = free_port();
    let _l = Lbha::start(&tcp_config(port, &[(a, 3), (b, 1)]), &[port]);
    let tags: Vec<u8> = (0..8).map(|_| exchange(port, b"")[0]).collect();
    assert_eq!(tags.iter().filter(|&&t| t == b'A').count(), 6, "{:?}", String::from_utf8_lossy(&tags));
    assert_eq!(tags.iter().filter(|&&t| t == b'B').count(), 2);
}

#[test]
fn dead_server_is_skipped_by_retry_and_redispatch() {
    let a = echo_after_eof("A");
    let dead = free_port();
    let port = free_port();
    let mut cfg = tcp_config(port, &[(dead, 1), (a, 1)]);
    cfg = cfg.replace("balance = \"roundrobin\"", "balance = \"roundrobin\"\nretries = 1\nredispatch = true");
    let _l = Lbha::start(&cfg, &[port]);
    for _ in 0..4 {
        assert_eq!(exchange(port, b"x"), b"Ax");
    }
}
