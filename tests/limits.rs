//! Connection limits and resources: frontend `maxconn` against the global one, the descriptor
//! limit, and memory per idle connection. Real lbha binary, loopback only.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Two HTTP frontends on one backend: `a` limited to `a_maxconn`, `b` unlimited, and a global
/// limit shared by both.
fn two_frontends(global: u32, a_port: u16, a_maxconn: u32, b_port: u16, backend: u16) -> String {
    format!(
        r#"
[global]
maxconn = {global}

[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "5s", http_request = "30s", http_keep_alive = "30s" }}

[[frontend]]
name = "a"
bind = ["127.0.0.1:{a_port}"]
maxconn = {a_maxconn}
default_backend = "app"

[[frontend]]
name = "b"
bind = ["127.0.0.1:{b_port}"]
default_backend = "app"

[[backend]]
name = "app"
servers = [{{ name = "s", addr = "127.0.0.1:{backend}" }}]
"#
    )
}

#[test]
fn connections_parked_by_a_frontend_limit_take_no_global_slot() {
    let app = Backend::start("app");
    let (a, b) = (free_port(), free_port());
    let _l = Lbha::start(&two_frontends(20, a, 2, b, app.port), &[a, b]);
    // Two idle connections fill `a`; forty more wait beyond its limit, twice the global maxconn.
    let held: Vec<TcpStream> = (0..2).map(|_| connect(a)).collect();
    let parked: Vec<TcpStream> = (0..40).map(|_| connect(a)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // Several in turn: an accept loop holds one global slot ahead while it waits, so one request
    // alone could pass even with the global slots gone.
    for i in 0..5 {
        let r = raw(b, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("request {i}: frontend b stopped serving while a is at its maxconn: {e}"));
        assert_eq!(r.status, 200);
    }
    // A parked connection is served once `a` has room again.
    let mut waiting = parked.into_iter().next().unwrap();
    waiting.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    drop(held);
    let r = read_response(&mut waiting, false).expect("a parked connection is served when a slot frees");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "app");
}
