//! `retry-on` end to end: a scripted server fails the first attempt in each way HAProxy names
//! (a status, an empty or junk answer, no answer in time) and answers the next one; lbha sends
//! the request again only when `retry_on` covers the failure and the request has no body.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

#[derive(Clone, Copy)]
enum Then {
    Status(u16),
    Close,
    Junk,
    Hang,
}

/// Answers the i-th request per `script[i]` (the last entry for the rest); counts requests.
fn scripted(script: Vec<Then>) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let script = script.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                while let Some(head) = read_request_head(&mut c) {
                    let i = seen.fetch_add(1, SeqCst);
                    let step = *script.get(i).or(script.last()).unwrap();
                    let text = String::from_utf8_lossy(&head).to_string();
                    // A request with a body: read it (the tests send 4 bytes).
                    if text.to_ascii_lowercase().contains("content-length: 4") {
                        let mut b = [0u8; 4];
                        let _ = std::io::Read::read_exact(&mut c, &mut b);
                    }
                    match step {
                        Then::Status(s) => {
                            let body = format!("attempt {}", i + 1);
                            let _ = c.write_all(
                                format!("HTTP/1.1 {s} X\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
                            );
                        }
                        Then::Close => return,
                        Then::Junk => {
                            let _ = c.write_all(b"SSH-2.0-nonsense\r\n\r\n");
                            return;
                        }
                        // Longer than `timeout server`; the connection is then dropped.
                        Then::Hang => {
                            std::thread::sleep(Duration::from_secs(3));
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, n)
}

fn lbha(server: u16, retry_on: &str) -> (Lbha, u16) {
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "500ms" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
retries = 2
{retry_on}
servers = [{{ name = "s", addr = "127.0.0.1:{server}" }}]
"#
    );
    (Lbha::start(&cfg, &[port]), port)
}

/// One failure of `first`, then 200: retried when `keyword` is in `retry_on`, not without it.
fn retried(first: Then, keyword: &str, without_status: u16) {
    let (server, seen) = scripted(vec![first, Then::Status(200)]);
    let (_l, port) = lbha(server, &format!("retry_on = \"{keyword}\""));
    let r = get(port, "/");
    assert_eq!((r.status, r.text()), (200, "attempt 2".to_string()), "{keyword}");
    assert_eq!(seen.load(SeqCst), 2);

    let (server, seen) = scripted(vec![first, Then::Status(200)]);
    let (_l, port) = lbha(server, "");
    assert_eq!(get(port, "/").status, without_status, "{keyword}: the default retries connection failures only");
    assert_eq!(seen.load(SeqCst), 1);
}

#[test]
fn a_503_is_retried_with_retry_on_503() {
    retried(Then::Status(503), "503", 503);
}

#[test]
fn an_empty_response_is_retried() {
    retried(Then::Close, "empty-response", 502);
}

#[test]
fn a_junk_response_is_retried() {
    retried(Then::Junk, "junk-response", 502);
}

#[test]
fn a_response_timeout_is_retried() {
    retried(Then::Hang, "all-retryable-errors", 504);
}

#[test]
fn retries_stop_at_retries_and_the_last_answer_is_returned() {
    let (server, seen) = scripted(vec![Then::Status(502)]);
    let (_l, port) = lbha(server, "retry_on = \"502 conn-failure\"");
    let r = get(port, "/");
    assert_eq!((r.status, r.text()), (502, "attempt 3".to_string()));
    assert_eq!(seen.load(SeqCst), 3, "one try and retries = 2");
}

#[test]
fn a_request_with_a_body_is_never_replayed() {
    let (server, seen) = scripted(vec![Then::Status(503), Then::Status(200)]);
    let (_l, port) = lbha(server, "retry_on = \"503\"");
    let r = raw(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(seen.load(SeqCst), 1);
    // A bodiless POST is sent again, as HAProxy does.
    let r = raw(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn retry_on_without_conn_failure_does_not_retry_connects() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (l, port) = lbha(dead, "retry_on = \"503\"");
    assert_eq!(get(port, "/").status, 503);
    let log = l.log_text();
    assert_eq!(log.matches("connect failed").count(), 1, "{log}");
}

/// `http-request disable-l7-retry`: the rule's requests get the first answer, others are retried.
#[test]
fn disable_l7_retry_stops_layer7_retries_for_its_requests() {
    let (server, seen) = scripted(vec![Then::Status(503), Then::Status(503), Then::Status(200)]);
    let rules = "retry_on = \"503\"\nhttp_request = [{ disable_l7_retry = true, if = \"{ path /once }\" }]";
    let (_l, port) = lbha(server, rules);
    let r = get(port, "/once");
    assert_eq!((r.status, r.text()), (503, "attempt 1".to_string()));
    assert_eq!(seen.load(SeqCst), 1);
    let r = get(port, "/again");
    assert_eq!((r.status, r.text()), (200, "attempt 3".to_string()), "other requests are still retried");
}
