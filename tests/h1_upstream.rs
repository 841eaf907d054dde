//! The lean HTTP/1.1 path to plain servers (`proxy::h1client`) against a scripted raw server:
//! chunked responses with trailers, close-delimited ones, a reused connection the server closed,
//! and server framing errors; server connections are reused only after a clean response.

mod common;

use common::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

#[derive(Clone, Copy)]
enum Then {
    /// Answer and keep the connection open.
    Send(&'static str),
    /// Answer, then close.
    SendClose(&'static str),
    /// Close without answering.
    Drop,
}

struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

/// Answers the i-th request it sees per `script[i]` (the last entry for the rest).
fn server(script: Vec<Then>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (requests, connections) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, c) = (requests.clone(), connections.clone());
    std::thread::spawn(move || {
        for s in l.incoming().take(32) {
            let Ok(mut s) = s else { return };
            c.fetch_add(1, SeqCst);
            let (script, r) = (script.clone(), r.clone());
            std::thread::spawn(move || {
                while read_request_head(&mut s).is_some() {
                    let i = r.fetch_add(1, SeqCst);
                    match *script.get(i).or(script.last()).unwrap() {
                        Then::Send(a) => {
                            if s.write_all(a.as_bytes()).is_err() {
                                return;
                            }
                        }
                        Then::SendClose(a) => {
                            let _ = s.write_all(a.as_bytes());
                            return;
                        }
                        Then::Drop => return,
                    }
                }
            });
        }
    });
    Server { port, requests, connections }
}

fn lbha(server: u16) -> (Lbha, u16) {
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "2s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{server}" }}]
"#
    );
    (Lbha::start(&cfg, &[port]), port)
}

fn ask(s: &mut TcpStream, method: &str) -> std::io::Result<Resp> {
    s.write_all(format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())?;
    read_response(s, method == "HEAD")
}

const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
                       5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n";

#[test]
fn chunked_responses_with_trailers_pass_and_their_connection_is_reused() {
    let srv = server(vec![Then::Send(CHUNKED)]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    for _ in 0..3 {
        let r = ask(&mut c, "GET").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    }
    // The trailers are decoded as frames (see `h1client`'s unit tests); hyper's HTTP/1 server
    // side sends only fields a `Trailer` header announced, and that header is hop-by-hop, so an
    // HTTP/1 client gets a clean end of body without them (as through hyper's client).
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n").unwrap();
    let raw = read_to_close(&mut c);
    assert!(raw.ends_with("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "{raw}");
    assert_eq!(srv.requests.load(SeqCst), 4);
    assert_eq!(srv.connections.load(SeqCst), 1, "one server connection for all four responses");
}

#[test]
fn close_delimited_responses_end_with_their_server_connection() {
    let srv = server(vec![Then::SendClose("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    for _ in 0..2 {
        let r = ask(&mut c, "GET").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "until the end"));
    }
    assert_eq!(srv.connections.load(SeqCst), 2, "a close-delimited response's connection is never reused");
}

#[test]
fn head_and_204_answers_without_a_body_keep_the_exchange_in_step() {
    let srv = server(vec![
        Then::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        Then::Send("HTTP/1.1 204 No Content\r\n\r\n"),
        Then::Send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast"),
    ]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    let h = ask(&mut c, "HEAD").unwrap();
    assert_eq!((h.status, h.header("content-length")), (200, Some("5")));
    assert_eq!(ask(&mut c, "GET").unwrap().status, 204);
    let r = ask(&mut c, "GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "last"), "an interim 100 is skipped");
}

#[test]
fn a_reused_connection_the_server_closed_is_replayed_only_for_safe_requests() {
    // The first connection answers once, then closes on the next request without answering.
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let srv = server(vec![Then::Send(ok), Then::Drop, Then::Send(ok)]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "GET").unwrap().text(), "ok");
    let r = ask(&mut c, "GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "sent again on a new connection");
    assert_eq!((srv.requests.load(SeqCst), srv.connections.load(SeqCst)), (3, 2));

    // A POST (even without a body) is not sent twice: the client gets a 502.
    let srv = server(vec![Then::Send(ok), Then::Drop, Then::Send(ok)]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "POST").unwrap().status, 200);
    assert_eq!(ask(&mut c, "POST").unwrap().status, 502);
    assert_eq!(srv.requests.load(SeqCst), 2);
}

#[test]
fn server_framing_errors_never_leave_a_connection_in_the_pool() {
    // Both Content-Length and Transfer-Encoding: refused before anything reaches the client.
    let srv = server(vec![Then::Send(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )]);
    let (_l, port) = lbha(srv.port);
    assert_eq!(get(port, "/").status, 502);

    // A bad chunk size after the head: the response is cut, and the connection is not reused.
    let srv = server(vec![
        Then::Send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        Then::Send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    let (_l, port) = lbha(srv.port);
    let mut c = connect(port);
    let cut = ask(&mut c, "GET");
    assert!(cut.as_ref().map_or(true, |r| r.text() != "hello"), "{cut:?}");
    let r = ask(&mut connect(port), "GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(srv.connections.load(SeqCst), 2);

    // Junk where a response should be.
    let srv = server(vec![Then::SendClose("SSH-2.0-nonsense\r\n\r\n")]);
    let (_l, port) = lbha(srv.port);
    assert_eq!(get(port, "/").status, 502);
}

#[test]
fn requests_with_a_body_go_through_hyper_on_the_same_connection() {
    let b = Backend::start("plain");
    let (_l, port) = lbha(b.port);
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "GET").unwrap().text(), "plain");
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().text(), "abcd");
    assert_eq!(ask(&mut c, "GET").unwrap().text(), "plain");
    assert_eq!(b.seen.requests.load(SeqCst), 3);
}
