//! A chunked request's trailers on their way to an HTTP/1 server, on every path: streamed,
//! after a bodiless request on the same connections (the lean paths hand the connections to
//! hyper), read by `wait-for-body`, by `balance url_param`, by `option http-buffer-request`,
//! across an HTTP/2 hop (`proto h2`), and from an HTTP/2 client; compared with HAProxy 2.6.
//!
//! HAProxy forwards the trailers, names lowercased, whether `Trailer` announces them or not, and
//! forwards `Trailer` itself. hyper's HTTP/1 client, which lbha sends bodies through, writes only
//! announced trailers: lbha forwards the announced ones, and announces the others itself when a
//! body wait read them before the request went out. Known gap: unannounced trailers of a streamed
//! body are dropped (the tests pin it). Never forwarded in trailers: framing (`Content-Length`,
//! `Transfer-Encoding`), `Host` and the connection's fields (and what hyper never writes).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A server that answers each request with the bytes it received for it (head, body framing and
/// trailers, as they came), keeping the connection open.
fn recorder() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                while let Some(raw) = read_one(&mut r) {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", raw.len());
                    if w.write_all(head.as_bytes()).and_then(|()| w.write_all(&raw)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// An h2c server (hyper) that answers with the request's body, `|`, and its trailer fields as
/// `name: value` lines (or `none`).
fn h2_recorder() -> u16 {
    use hyper::service::service_fn;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            for _ in 0..64 {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        use http_body_util::BodyExt;
                        let got = req.into_body().collect().await?;
                        let t = got.trailers().map_or("none".to_string(), |t| {
                            t.iter()
                                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
                                .collect::<Vec<_>>()
                                .join("\r\n")
                        });
                        let body = format!("{}|{t}", String::from_utf8_lossy(&got.to_bytes()));
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body))))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    port
}

/// One request's bytes: the head, then a chunked body to the end of its trailers or a
/// `Content-Length` one. None at the end of the connection or on a malformed request.
fn read_one(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let mut next = |r: &mut BufReader<TcpStream>, raw: &mut Vec<u8>| -> Option<String> {
        line.clear();
        r.read_until(b'\n', &mut line).ok().filter(|n| *n > 0)?;
        raw.extend_from_slice(&line);
        Some(String::from_utf8_lossy(&line).trim_end().to_ascii_lowercase())
    };
    let (mut chunked, mut length) = (false, 0usize);
    loop {
        let l = next(r, &mut raw)?;
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("transfer-encoding:") {
            chunked |= v.trim().ends_with("chunked");
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    if !chunked {
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).ok()?;
        raw.extend_from_slice(&body);
        return Some(raw);
    }
    loop {
        let size = next(r, &mut raw)?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            while !next(r, &mut raw)?.is_empty() {}
            return Some(raw);
        }
        let mut data = vec![0u8; n + 2];
        r.read_exact(&mut data).ok()?;
        raw.extend_from_slice(&data);
    }
}

/// A chunked POST to `path` with these extra head fields and trailer lines.
fn chunked(path: &str, head: &str, trailers: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: example.com\r\n{head}Transfer-Encoding: chunked\r\n\r\n4\r\nid=7\r\n0\r\n{trailers}\r\n"
    )
}

/// What the server received for `req` sent on `c`.
fn through(c: &mut TcpStream, req: &str) -> String {
    c.write_all(req.as_bytes()).unwrap();
    let r = read_response(c, false).unwrap();
    assert_eq!(r.status, 200, "{req:?}: {}", r.text());
    r.text()
}

fn send(port: u16, req: &str) -> String {
    through(&mut connect(port), req)
}

/// The trailer section the server received: from the last chunk's size line on.
fn trailer_section(got: &str) -> &str {
    got.rfind("\r\n0\r\n").map_or("<not chunked>", |i| &got[i + 2..])
}

/// The head's `trailer` fields, in order.
fn announced(got: &str) -> Vec<String> {
    let head = got.split("\r\n\r\n").next().unwrap_or("");
    head.lines().filter_map(|l| l.to_ascii_lowercase().strip_prefix("trailer: ").map(str::to_string)).collect()
}

/// One frontend per path: `fe` (rules on the path, url_param, an HTTP/2 hop), `buf` with
/// `option http-buffer-request`, `h2` taking HTTP/2 clients; `hop` is the HTTP/2 hop's far end.
fn config(fe: u16, buf: u16, h2: u16, hop: u16, srv: u16, h2srv: u16) -> String {
    format!(
        r#"
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s

frontend fe
  bind 127.0.0.1:{fe}
  http-request wait-for-body time 2s if {{ path_beg /wait }}
  use_backend param if {{ path_beg /param }}
  use_backend viah2 if {{ path_beg /h2 }}
  use_backend h2srv if {{ path_beg /toh2 }}
  default_backend plain

frontend buf
  bind 127.0.0.1:{buf}
  option http-buffer-request
  default_backend plain

frontend h2
  bind 127.0.0.1:{h2} proto h2
  default_backend plain

frontend hop
  bind 127.0.0.1:{hop} proto h2
  default_backend plain

backend plain
  server s 127.0.0.1:{srv}

backend param
  balance url_param id
  server s 127.0.0.1:{srv}

backend viah2
  server s 127.0.0.1:{hop} proto h2

backend h2srv
  server s 127.0.0.1:{h2srv} proto h2
"#
    )
}

struct Ports {
    fe: u16,
    buf: u16,
    h2: u16,
}

fn start() -> (Lbha, Ports) {
    let (srv, h2srv) = (recorder(), h2_recorder());
    let (fe, buf, h2, hop) = (free_port(), free_port(), free_port(), free_port());
    let lb = Lbha::start_haproxy(&config(fe, buf, h2, hop, srv, h2srv), &[fe, buf, h2, hop]);
    (lb, Ports { fe, buf, h2 })
}

const SUM: &str = "0\r\nx-sum: 1\r\n\r\n";
const NONE: &str = "0\r\n\r\n";

#[test]
fn announced_trailers_reach_the_server_streamed_and_after_the_lean_paths() {
    let (lb, p) = start();
    let got = send(p.fe, &chunked("/plain", "Trailer: X-Sum\r\n", "X-Sum: 1\r\n"));
    assert_eq!(trailer_section(&got), SUM, "streamed: {got:?}\n{}", lb.log_text());
    assert_eq!(announced(&got), ["x-sum"], "the client's Trailer field is forwarded: {got:?}");
    // A bodiless request first: the lean server and client paths carry it, then hand both
    // connections to hyper for the chunked one.
    let mut c = connect(p.fe);
    let first = through(&mut c, "GET /lean HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(first.starts_with("GET /lean HTTP/1.1\r\n"), "{first:?}");
    let got = through(&mut c, &chunked("/plain", "Trailer: X-Sum\r\n", "X-Sum: 1\r\n"));
    assert_eq!(trailer_section(&got), SUM, "after the lean paths: {got:?}\n{}", lb.log_text());
    // Known gap: unannounced trailers of a streamed body are dropped (HAProxy forwards them).
    let got = send(p.fe, &chunked("/plain", "", "X-Sum: 1\r\n"));
    assert_eq!((trailer_section(&got), announced(&got).len()), (NONE, 0), "streamed, unannounced: {got:?}");
}

#[test]
fn trailers_a_body_wait_read_are_announced_and_forwarded() {
    let (lb, p) = start();
    for (port, path) in [(p.fe, "/wait"), (p.fe, "/param?x=1"), (p.buf, "/buffered")] {
        let got = send(port, &chunked(path, "", "X-Sum: 1\r\n"));
        assert!(got.contains("\r\ntransfer-encoding: chunked\r\n"), "{path}: still chunked: {got:?}");
        assert_eq!(trailer_section(&got), SUM, "{path}: {got:?}\n{}", lb.log_text());
        assert_eq!(announced(&got), ["x-sum"], "{path}: announced by lbha: {got:?}");
        assert!(got.contains("\r\n\r\n4\r\nid=7\r\n0\r\n"), "{path}: the body whole: {got:?}");
        // Announced by the client: its field is kept, nothing added.
        let got = send(port, &chunked(path, "Trailer: X-Sum\r\n", "X-Sum: 1\r\n"));
        assert_eq!((trailer_section(&got), announced(&got)), (SUM, vec!["x-sum".to_string()]), "{path}: {got:?}");
    }
    // Without trailers a body the wait read whole goes as it did (from the bytes read).
    let got = send(p.buf, "POST /b HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nid=7\r\n0\r\n\r\n");
    assert!(got.ends_with("\r\n\r\nid=7"), "{got:?}");
}

#[test]
fn trailers_never_carry_framing_or_connection_fields() {
    let (lb, p) = start();
    let bad = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nConnection: close\r\nTE: trailers\r\nX-Sum: 1\r\n";
    let names = "Trailer: content-length, transfer-encoding, host, connection, te, x-sum\r\n";
    for (port, path, head) in [
        (p.fe, "/plain", names),
        (p.fe, "/wait", ""),
        (p.fe, "/wait", names),
        (p.buf, "/buffered", ""),
        (p.fe, "/h2", names),
    ] {
        let got = send(port, &chunked(path, head, bad));
        assert_eq!(trailer_section(&got), SUM, "{path} {head:?}: {got:?}\n{}", lb.log_text());
        assert!(got.ends_with(SUM) && got.matches("\r\n0\r\n").count() == 1, "{path}: one body: {got:?}");
    }
    // A trailer value with a NUL (or a CR) never gets through: the request fails.
    let mut c = connect(p.fe);
    c.write_all(chunked("/plain", "Trailer: x-sum\r\n", "X-Sum: a\0b\r\n").as_bytes()).unwrap();
    let r = read_response(&mut c, false);
    assert!(r.as_ref().is_err() || r.as_ref().unwrap().status == 400, "{:?}", r.map(|r| r.text()));
}

#[test]
fn trailers_cross_an_http2_hop_and_come_from_http2_clients() {
    let (lb, p) = start();
    // HTTP/1 client, HTTP/2 server (the hop), HTTP/1 server behind it.
    let got = send(p.fe, &chunked("/h2", "Trailer: X-Sum\r\n", "X-Sum: 1\r\n"));
    assert_eq!(
        (trailer_section(&got), announced(&got)),
        (SUM, vec!["x-sum".to_string()]),
        "{got:?}\n{}",
        lb.log_text()
    );
    // To an HTTP/2 server: announced or not, all but the forbidden fields.
    let bad = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nConnection: close\r\nTE: trailers\r\nX-Sum: 1\r\n";
    for (head, trailers) in [("", "X-Sum: 1\r\n"), ("Trailer: X-Sum\r\n", "X-Sum: 1\r\n"), ("", bad)] {
        let got = send(p.fe, &chunked("/toh2", head, trailers));
        assert_eq!(got, "id=7|x-sum: 1", "{head:?} {trailers:?}\n{}", lb.log_text());
    }
    // An HTTP/2 client's trailers, announced or not: no Content-Length, so the body goes chunked.
    for trailer_field in [true, false] {
        let got = h2_post(p.h2, trailer_field);
        let want = if trailer_field { SUM } else { NONE };
        assert_eq!(
            trailer_section(&got),
            want,
            "HTTP/2 client, Trailer field {trailer_field}: {got:?}\n{}",
            lb.log_text()
        );
    }
}

/// A POST over HTTP/2 (prior knowledge) whose body is `id=7` and the trailer `x-sum: 1`; the
/// body of the answer.
fn h2_post(port: u16, trailer_field: bool) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use http_body_util::BodyExt;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        let mut t = http::HeaderMap::new();
        t.insert("x-sum", http::HeaderValue::from_static("1"));
        let frames: Vec<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>> =
            vec![Ok(http_body::Frame::data(bytes::Bytes::from_static(b"id=7"))), Ok(http_body::Frame::trailers(t))];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let mut req = hyper::Request::post("http://example.com/h2client");
        if trailer_field {
            req = req.header("trailer", "x-sum");
        }
        let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req.body(body).unwrap()))
            .await
            .expect("answered in time")
            .expect("answered");
        assert_eq!(resp.status(), 200);
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        conn.abort();
        String::from_utf8_lossy(&got).into_owned()
    })
}

/// The same requests through HAProxy 2.6 and lbha: the trailer section the server gets is the
/// same where lbha forwards trailers (announced; or read by a body wait, which lbha announces).
#[test]
fn trailer_sections_match_haproxy() {
    if haproxy_bin().is_none() {
        eprintln!("skipped: haproxy is not installed");
        return;
    }
    let srv = recorder();
    let (fe, buf, h2, hop) = (free_port(), free_port(), free_port(), free_port());
    // `/toh2` is not sent to HAProxy: its server need not listen.
    let cfg = config(fe, buf, h2, hop, srv, free_port());
    let (_hap, _dir) = haproxy(&cfg, fe);
    for port in [buf, h2, hop] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !listening(port) {
            assert!(std::time::Instant::now() < deadline, "haproxy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (hfe, hbuf) = (fe, buf);
    let (lb, p) = start();
    let bad = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nX-Sum: 1\r\n";
    let cases = [
        ("/plain", "Trailer: X-Sum\r\n", "X-Sum: 1\r\n", false),
        ("/plain", "Trailer: X-Sum, X-Two\r\n", "X-Sum: 1\r\nx-sum: 2\r\nX-Two: a b\r\n", false),
        ("/wait", "", "X-Sum: 1\r\n", false),
        ("/param?x=1", "", "X-Sum: 1\r\n", false),
        ("/buffered", "", "X-Sum: 1\r\n", true),
        ("/h2", "Trailer: X-Sum\r\n", "X-Sum: 1\r\n", false),
        // Framing in trailers: HAProxy drops Content-Length and forwards Transfer-Encoding to an
        // HTTP/1 server; lbha drops both (through the HTTP/2 hop HAProxy drops both too).
        ("/h2", "Trailer: content-length, transfer-encoding, x-sum\r\n", bad, false),
    ];
    // Known difference: fields of one name come together (hyper writes a header map), where
    // HAProxy keeps the client's order.
    let got = send(p.fe, &chunked("/plain", "Trailer: X-Sum, X-Two\r\n", "X-Sum: 1\r\nX-Two: a\r\nx-sum: 2\r\n"));
    assert_eq!(trailer_section(&got), "0\r\nx-sum: 1\r\nx-sum: 2\r\nx-two: a\r\n\r\n", "{got:?}");
    for (path, head, trailers, buffered) in cases {
        let req = chunked(path, head, trailers);
        let theirs = send(if buffered { hbuf } else { hfe }, &req);
        let ours = send(if buffered { p.buf } else { p.fe }, &req);
        assert_eq!(
            trailer_section(&ours),
            trailer_section(&theirs),
            "{path} {head:?}:\nhaproxy: {theirs:?}\nlbha:    {ours:?}\n{}",
            lb.log_text()
        );
        let want = if head.is_empty() { vec![] } else { vec![head[9..head.len() - 2].to_string()] };
        assert_eq!(announced(&theirs), want.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>(), "{theirs:?}");
    }
    // An HTTP/2 client's announced trailers.
    let (theirs, ours) = (h2_post(h2, true), h2_post(p.h2, true));
    assert_eq!(
        trailer_section(&ours),
        trailer_section(&theirs),
        "HTTP/2 client:\nhaproxy: {theirs:?}\nlbha:    {ours:?}"
    );
    // The known gap, seen from HAProxy's side: it forwards unannounced trailers of a streamed
    // body too (lbha drops them, as the first test pins).
    let theirs = h2_post(h2, false);
    assert_eq!((trailer_section(&theirs), announced(&theirs).len()), (SUM, 0), "{theirs:?}");
    let theirs = send(hfe, &chunked("/plain", "", "X-Sum: 1\r\n"));
    assert_eq!((trailer_section(&theirs), announced(&theirs).len()), (SUM, 0), "{theirs:?}");
}
