//! Server-line keywords of issue 17 end to end: `redir` (a 302 instead of forwarding) and
//! `source` (the local address of server connections), against test servers on loopback.

mod common;
mod kit;

use common::*;
use kit::Web;

fn http_listen(port: u16, servers: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "500ms", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{servers}]
"#
    )
}

#[test]
fn redir_answers_get_and_head_with_a_302_and_forwards_the_rest() {
    let w = Web::start("W");
    let port = free_port();
    let servers = format!("{{ name = \"s\", addr = \"127.0.0.1:{}\", redir = \"http://img.example.com\" }}", w.port);
    let _l = Lbha::start(&http_listen(port, &servers), &[port]);
    let r = get(port, "/a/b?x=1");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://img.example.com/a/b?x=1"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("connection"), Some("close"));
    let head = raw(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n").expect("HEAD answered");
    assert_eq!((head.status, head.header("location")), (302, Some("http://img.example.com/h")));
    assert!(w.requests().is_empty(), "GET and HEAD never reach the server");
    let post = raw(port, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        .expect("POST answered");
    assert_eq!(post.status, 200);
    assert_eq!(w.count("/p"), 1, "other methods are forwarded");
}

/// The prefix `/` alone keeps the URL as it is (HAProxy 2.6 answers `location: /a/b?x=1`).
#[test]
fn redir_slash_keeps_the_path() {
    let w = Web::start("W");
    let port = free_port();
    let servers = format!("{{ name = \"s\", addr = \"127.0.0.1:{}\", redir = \"/\" }}", w.port);
    let _l = Lbha::start(&http_listen(port, &servers), &[port]);
    let r = get(port, "/a/b?x=1");
    assert_eq!((r.status, r.header("location")), (302, Some("/a/b?x=1")));
    assert!(w.requests().is_empty());
}

/// A server answering every request (or TCP session) with the address it came from, then
/// closing; at most 16 connections.
fn peer_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming().take(16) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                use std::io::Write;
                let Ok(peer) = c.peer_addr() else { return };
                if read_request_head(&mut c).is_none() {
                    return;
                }
                let body = peer.to_string();
                let _ =
                    write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            });
        }
    });
    port
}

fn peer_via(port: u16) -> std::net::SocketAddr {
    let text = get(port, "/").text();
    text.parse().unwrap_or_else(|_| panic!("not an address: {text:?}"))
}

#[test]
fn source_binds_server_connections_to_the_chosen_address() {
    let (srv, port) = (peer_server(), free_port());
    let servers = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\", source = \"127.0.0.2\" }}");
    let l = Lbha::start(&http_listen(port, &servers), &[port]);
    assert_eq!(peer_via(port).ip().to_string(), "127.0.0.2");
    drop(l);

    // A port range on the server line: the connection leaves from one of its ports.
    let base = std::net::TcpListener::bind("127.0.0.4:0").expect("bind").local_addr().expect("addr").port().min(65000);
    let (srv, port) = (peer_server(), free_port());
    let servers = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\", source = \"127.0.0.4:{base}-{}\" }}", base + 4);
    let l = Lbha::start(&http_listen(port, &servers), &[port]);
    let peer = peer_via(port);
    assert_eq!(peer.ip().to_string(), "127.0.0.4");
    assert!((base..=base + 4).contains(&peer.port()), "{peer} outside {base}-{}", base + 4);
    drop(l);

    // TCP mode, from the `[defaults]` source.
    let (srv, port) = (peer_server(), free_port());
    let cfg = format!(
        "[defaults]\nmode = \"tcp\"\nsource = \"127.0.0.3\"\ntimeout = {{ connect = \"500ms\", client = \"5s\", server = \"5s\" }}\n\n[[listen]]\nname = \"t\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{srv}\" }}]\n"
    );
    let _l = Lbha::start(&cfg, &[port]);
    assert_eq!(peer_via(port).ip().to_string(), "127.0.0.3");
}

/// A listener noting the address of every connection it accepts (then closed); at most 64.
fn recording_listener(answer: &'static [u8]) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().take(64) {
            let Ok(mut c) = c else { continue };
            if let Ok(peer) = c.peer_addr() {
                s.lock().unwrap().push(peer);
            }
            use std::io::Write;
            let _ = c.write_all(answer);
        }
    });
    (port, seen)
}

/// Health checks and the agent leave from the server's `source` too, as HAProxy's do.
#[test]
fn checks_and_agent_leave_from_the_source_address() {
    let (srv, checks) = recording_listener(b"HTTP/1.0 200 OK\r\n\r\n");
    let (agent_port, agent) = recording_listener(b"up\n");
    let port = free_port();
    let servers = format!(
        "{{ name = \"s\", addr = \"127.0.0.1:{srv}\", source = \"127.0.0.5\", check = true, inter = \"100ms\", agent_check = true, agent_port = {agent_port}, agent_inter = \"100ms\" }}"
    );
    // An HTTP check: a TCP check's connection is reset before the listener accepts it.
    let cfg = http_listen(port, &servers) + "check = { http = \"GET /\" }\n";
    let _l = Lbha::start(&cfg, &[port]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (checks.lock().unwrap().len() < 2 || agent.lock().unwrap().is_empty()) && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (checks, agent) = (checks.lock().unwrap().clone(), agent.lock().unwrap().clone());
    assert!(checks.len() >= 2 && !agent.is_empty(), "checks {checks:?}, agent {agent:?}");
    assert!(
        checks.iter().chain(&agent).all(|a| a.ip().to_string() == "127.0.0.5"),
        "checks {checks:?}, agent {agent:?}"
    );
}
