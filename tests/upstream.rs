//! The server side of HTTP mode: HTTP/2 to servers (`proto = "h2"`) with streams multiplexed on
//! pooled connections, gRPC end to end through an HTTP/2 frontend (real grpcio server and client),
//! `http_reuse`, `max_reuse`, `pool_max_conn`, server `pool_purge_delay`, `maxqueue`, and
//! `minconn`/`fullconn`. Reuse is observed from the server side: each test server answers with
//! the number of the connection that carried the request.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// What a test server saw: connections, requests, requests at once (now and at most).
#[derive(Default)]
struct Count {
    conns: AtomicUsize,
    requests: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// An HTTP/1.1 server answering `conn N` (N: 1 for its first connection, ...); `/hold` answers
/// after 1.5 s.
fn conn_id_server() -> (u16, Arc<Count>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(Count::default());
    let c2 = count.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let id = c2.conns.fetch_add(1, SeqCst) + 1;
            let count = c2.clone();
            std::thread::spawn(move || {
                while let Some(head) = read_request_head(&mut c) {
                    count.requests.fetch_add(1, SeqCst);
                    let now = count.active.fetch_add(1, SeqCst) + 1;
                    count.max_active.fetch_max(now, SeqCst);
                    if String::from_utf8_lossy(&head).starts_with("GET /hold") {
                        std::thread::sleep(Duration::from_millis(1500));
                    }
                    count.active.fetch_sub(1, SeqCst);
                    let body = format!("conn {id}");
                    let r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if c.write_all(r.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

/// Sends `GET path` on an open client connection (keep-alive) and returns the body.
fn ask(s: &mut std::net::TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).unwrap();
    let r = read_response(s, false).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn config(fe: u16, be_extra: &str, server: &str) -> String {
    format!(
        "[global]\nmaxconn = 1000\n\n[[frontend]]\nname = \"fe\"\nmode = \"http\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"be\"\n\n[[backend]]\nname = \"be\"\nmode = \"http\"\n{be_extra}servers = [{server}]\n"
    )
}

/// `http_reuse` as HAProxy: the first request of a client connection on a connection of its own
/// (`safe`), on one already reused (`aggressive`), on any (`always`); `never` keeps a server
/// connection to one client connection.
#[test]
fn http_reuse_modes_choose_connections_as_haproxy() {
    let run = |mode: &str| -> Vec<String> {
        let (srv, _) = conn_id_server();
        let fe = free_port();
        let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\" }}");
        let _lb = Lbha::start(&config(fe, &format!("http_reuse = \"{mode}\"\n"), &server), &[fe]);
        // A: two requests; B: one; then A again.
        let mut a = connect(fe);
        let mut b = connect(fe);
        let a1 = ask(&mut a, "/");
        let a2 = ask(&mut a, "/");
        let b1 = ask(&mut b, "/");
        let a3 = ask(&mut a, "/");
        vec![a1, a2, b1, a3]
    };
    // safe: B's first request opens a connection although A's is idle; A's next may take either.
    let safe = run("safe");
    assert_eq!(safe[..3], ["conn 1", "conn 1", "conn 2"]);
    assert!(["conn 1", "conn 2"].contains(&safe[3].as_str()), "{safe:?}");
    // aggressive: A's connection was reused once, so B's first request may take it.
    assert_eq!(run("aggressive"), ["conn 1", "conn 1", "conn 1", "conn 1"]);
    // always: B's first request goes on the idle one too.
    assert_eq!(run("always"), ["conn 1", "conn 1", "conn 1", "conn 1"]);
    // never: each client connection keeps its own.
    assert_eq!(run("never"), ["conn 1", "conn 1", "conn 2", "conn 1"]);
}

/// `aggressive` differs from `always` on a connection used only once.
#[test]
fn aggressive_takes_only_connections_reused_before() {
    let run = |mode: &str| -> Vec<String> {
        let (srv, _) = conn_id_server();
        let fe = free_port();
        let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\" }}");
        let _lb = Lbha::start(&config(fe, &format!("http_reuse = \"{mode}\"\n"), &server), &[fe]);
        let (mut a, mut b) = (connect(fe), connect(fe));
        vec![ask(&mut a, "/"), ask(&mut b, "/")]
    };
    assert_eq!(run("aggressive"), ["conn 1", "conn 2"]);
    assert_eq!(run("always"), ["conn 1", "conn 1"]);
}

#[test]
fn max_reuse_pool_max_conn_and_pool_purge_delay_bound_reuse() {
    let run = |server_extra: &str, pause: Duration| -> (Vec<String>, usize) {
        let (srv, count) = conn_id_server();
        let fe = free_port();
        let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\"{server_extra} }}");
        let _lb = Lbha::start(&config(fe, "http_reuse = \"always\"\n", &server), &[fe]);
        let mut a = connect(fe);
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(ask(&mut a, "/"));
            std::thread::sleep(pause);
        }
        (out, count.conns.load(SeqCst))
    };
    let (ids, _) = run(", max_reuse = 1", Duration::ZERO);
    assert_eq!(ids, ["conn 1", "conn 1", "conn 2", "conn 2"], "reused once, then closed");
    let (_, conns) = run(", pool_max_conn = 0", Duration::ZERO);
    assert_eq!(conns, 4, "no idle connection kept");
    let (ids, _) = run(", pool_max_conn = -1", Duration::ZERO);
    assert_eq!(ids, ["conn 1"; 4]);
    // Far longer than the delay: every idle connection is closed before the next request.
    let (_, conns) = run(", pool_purge_delay = \"100ms\"", Duration::from_millis(1200));
    assert_eq!(conns, 4, "idle connections purged after the server's pool_purge_delay");
}

/// Polls `show stat` until the backend's queue holds `n` requests.
fn wait_queued(lb: &Lbha, n: usize) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = lb.ctl(&["show stat"]);
        let qcur = stat
            .lines()
            .find(|l| l.starts_with("be,BACKEND,"))
            .and_then(|l| l.split(',').nth(2))
            .and_then(|q| q.parse::<usize>().ok());
        if qcur == Some(n) {
            return;
        }
        assert!(Instant::now() < until, "queue never held {n}: {stat}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_get(fe: u16, path: &'static str) -> std::thread::JoinHandle<u16> {
    std::thread::spawn(move || get(fe, path).status)
}

/// `maxqueue` bounds a server's own queue (requests persistence sends to it), not the backend's:
/// with the server at `maxconn` and `maxqueue` requests waiting, the next request waits in the
/// backend's queue and is served, as in HAProxy (whose backend queue has no bound but
/// `timeout queue`).
#[test]
fn maxqueue_does_not_bound_the_backend_queue() {
    let (srv, count) = conn_id_server();
    let fe = free_port();
    let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\", maxconn = 1, maxqueue = 1 }}");
    let lb = Lbha::start(&config(fe, "timeout = { queue = \"30s\" }\n", &server), &[fe]);
    let first = spawn_get(fe, "/hold");
    let until = Instant::now() + Duration::from_secs(10);
    while count.active.load(SeqCst) == 0 {
        assert!(Instant::now() < until, "first request never reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = spawn_get(fe, "/hold");
    wait_queued(&lb, 1);
    let third = spawn_get(fe, "/");
    wait_queued(&lb, 2);
    assert_eq!(first.join().unwrap(), 200);
    assert_eq!(second.join().unwrap(), 200, "the queued request is served");
    assert_eq!(third.join().unwrap(), 200, "beyond maxqueue, still queued and served");
    let stat = lb.ctl(&["show stat"]);
    let row = stat.lines().find(|l| l.starts_with("be,s,")).unwrap_or_else(|| panic!("{stat}"));
    assert_eq!(row.split(',').nth(25), Some("1"), "qlimit is the server's maxqueue: {row}");
}

/// `minconn`/`fullconn`: with the backend far below `fullconn`, the server takes `minconn`
/// requests at once, the others wait in the queue; without `minconn` they all go at once.
#[test]
fn minconn_limits_a_server_while_the_backend_is_quiet() {
    let run = |server_extra: &str| -> usize {
        let (srv, count) = conn_id_server();
        let fe = free_port();
        let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\", maxconn = 10{server_extra} }}");
        let _lb = Lbha::start(&config(fe, "fullconn = 100\ntimeout = { queue = \"30s\" }\n", &server), &[fe]);
        let all: Vec<_> = (0..3).map(|_| spawn_get(fe, "/hold")).collect();
        for t in all {
            assert_eq!(t.join().unwrap(), 200);
        }
        count.max_active.load(SeqCst)
    };
    // 3 requests: limit max(1, 3 × 10 / 100) = 1.
    assert_eq!(run(", minconn = 1"), 1);
    assert!(run("") >= 2, "without minconn the requests run at once");
}

#[test]
fn bad_upstream_keys_are_located_errors() {
    let fe = free_port();
    let check = |be_extra: &str, server_extra: &str, needle: &str| {
        let server = format!("{{ name = \"s\", addr = \"127.0.0.1:1\"{server_extra} }}");
        let dir = TempDir::new("upcheck");
        let cfg = dir.write("lbha.toml", &config(fe, be_extra, &server));
        let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&cfg).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(needle), "want {needle:?} in {text}");
        assert!(text.contains("lbha.toml:"), "located: {text}");
    };
    check("", ", proto = \"h3\"", "servers[0].proto");
    check("http_reuse = \"sometimes\"\n", "", "http_reuse");
    check("", ", minconn = 5", "has no effect without `maxconn`");
    check("", ", maxconn = 5, minconn = 9", "must not exceed maxconn");
    check("", ", max_reuse = -2", "servers[0].max_reuse");
}

// ---- HTTP/2 to servers ----

/// An h2c server (hyper): answers `h2 conn N` with the HTTP version it saw; a request for `/wait`
/// waits until `quorum` requests are in flight at once (at most 5 s), so a test can see streams
/// share a connection.
fn h2_server(quorum: usize) -> (u16, Arc<Count>) {
    use hyper::service::service_fn;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(Count::default());
    let c2 = count.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let id = c2.conns.fetch_add(1, SeqCst) + 1;
                let count = c2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let count = count.clone();
                        async move {
                            count.requests.fetch_add(1, SeqCst);
                            let now = count.active.fetch_add(1, SeqCst) + 1;
                            count.max_active.fetch_max(now, SeqCst);
                            let until = tokio::time::Instant::now() + Duration::from_secs(5);
                            let wait = req.uri().path() == "/wait";
                            while wait && count.max_active.load(SeqCst) < quorum && tokio::time::Instant::now() < until
                            {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            count.active.fetch_sub(1, SeqCst);
                            let body = format!("h2 conn {id} {:?} {}", req.version(), req.uri());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    (port, count)
}

/// `proto = "h2"`: requests of several client connections go as concurrent streams on one
/// HTTP/2 connection to the server.
#[test]
fn proto_h2_multiplexes_client_requests_on_one_server_connection() {
    let (srv, count) = h2_server(3);
    let fe = free_port();
    let server = format!("{{ name = \"s\", addr = \"127.0.0.1:{srv}\", proto = \"h2\" }}");
    let _lb = Lbha::start(&config(fe, "http_reuse = \"always\"\n", &server), &[fe]);
    // Requests arriving together before any connection exists each open one (as in HAProxy):
    // one first, so the others find it.
    assert!(get(fe, "/").text().contains("HTTP/2.0 http://test/"));
    let all: Vec<_> = (0..3).map(|_| std::thread::spawn(move || get(fe, "/wait?y=1"))).collect();
    for t in all {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("HTTP/2.0 http://test/wait?y=1"), "{}", r.text());
    }
    assert_eq!(count.max_active.load(SeqCst), 3, "three streams at once");
    assert_eq!(count.conns.load(SeqCst), 1, "on one connection");
}

/// `add server ... proto h2` at runtime: the new server is spoken to in HTTP/2.
#[test]
fn a_runtime_server_can_speak_h2() {
    let (srv, count) = h2_server(1);
    let (h1, _) = conn_id_server();
    let fe = free_port();
    let server = format!("{{ name = \"old\", addr = \"127.0.0.1:{h1}\" }}");
    let lb = Lbha::start(&config(fe, "", &server), &[fe]);
    let add = format!("add server be/new 127.0.0.1:{srv} proto h2 maxqueue 10 max-reuse 100");
    assert_eq!(lb.ctl(&[&add]), "New server registered.\n\n");
    assert_eq!(lb.ctl(&["disable server be/old", "enable server be/new"]), "\n\n");
    let r = get(fe, "/rt");
    assert!(r.text().contains("HTTP/2.0"), "{}", r.text());
    assert_eq!(count.requests.load(SeqCst), 1);
    assert!(lb.ctl(&["add server be/bad 127.0.0.1:1 proto h3"]).contains("'proto'"));
}

/// gRPC through lbha: an HTTP/2 frontend, an h2c server. A real grpcio server and client
/// (Debian python3-grpcio): unary and server-streaming calls, a status with details and
/// trailing metadata reach the client.
#[test]
fn grpc_end_to_end_through_h2_frontend_and_server() {
    let ok =
        std::process::Command::new("python3").args(["-c", "import grpc"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3-grpcio is not installed");
        return;
    }
    let dir = TempDir::new("grpc");
    let script = dir.write("svc.py", GRPC_PY);
    let srv = free_port();
    let server = std::process::Command::new("python3")
        .arg(&script)
        .args(["server", &srv.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Reaped::new(server);
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", srv)).is_err() {
        assert!(Instant::now() < until, "grpc server did not start");
        assert!(server.try_wait().unwrap().is_none(), "grpc server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fe = free_port();
    let cfg = format!(
        "[[frontend]]\nname = \"fe\"\nmode = \"http\"\nbind = [\"127.0.0.1:{fe} proto h2\"]\ndefault_backend = \"be\"\n\n[[backend]]\nname = \"be\"\nmode = \"http\"\nservers = [{{ name = \"g\", addr = \"127.0.0.1:{srv}\", proto = \"h2\" }}]\n"
    );
    let lb = Lbha::start(&cfg, &[fe]);
    let out = std::process::Command::new("python3").arg(&script).args(["client", &fe.to_string()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}\n{}", String::from_utf8_lossy(&out.stderr), lb.log_text());
    assert!(text.contains("unary: echo:hello"), "{text}");
    assert!(text.contains("stream: part0,part1,part2"), "{text}");
    assert!(text.contains("status: NOT_FOUND no such thing"), "{text}");
    assert!(text.contains("trailer: x-why=because"), "{text}");
}

const GRPC_PY: &str = r#"
import sys, grpc
from concurrent import futures

def unary(req, ctx):
    return b"echo:" + req

def stream(req, ctx):
    for i in range(3):
        yield b"part%d" % i

def fail(req, ctx):
    ctx.set_trailing_metadata((("x-why", "because"),))
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

ident = lambda b: b
handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
    "Stream": grpc.unary_stream_rpc_method_handler(stream, ident, ident),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
}

if sys.argv[1] == "server":
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Svc", handlers),))
    s.add_insecure_port("127.0.0.1:" + sys.argv[2])
    s.start()
    s.wait_for_termination(60)
else:
    ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[2])
    print("unary: " + ch.unary_unary("/t.Svc/Unary", ident, ident)(b"hello", timeout=10).decode())
    parts = [p.decode() for p in ch.unary_stream("/t.Svc/Stream", ident, ident)(b"", timeout=10)]
    print("stream: " + ",".join(parts))
    try:
        ch.unary_unary("/t.Svc/Fail", ident, ident)(b"", timeout=10)
        print("status: OK?")
    except grpc.RpcError as e:
        print("status: %s %s" % (e.code().name, e.details()))
        for k, v in e.trailing_metadata() or ():
            print("trailer: %s=%s" % (k, v))
"#;

/// An HTTP/2-over-TLS server (rustls, ALPN `h2` only) answering `tls <alpn> <version>`.
fn h2_tls_server(dir: &TempDir) -> (u16, std::path::PathBuf) {
    use hyper::service::service_fn;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.write("ca.pem", &ck.cert.pem());
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else { return };
                    let alpn = String::from_utf8_lossy(tls.get_ref().1.alpn_protocol().unwrap_or(b"none")).to_string();
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let body = format!("tls {alpn} {:?} {}", req.version(), req.uri());
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    (port, ca)
}

/// `ssl` + `proto = "h2"`: HTTP/2 over TLS, `h2` offered in ALPN, the certificate verified.
#[test]
fn proto_h2_over_tls_offers_h2_in_alpn() {
    let dir = TempDir::new("h2tls");
    let (srv, ca) = h2_tls_server(&dir);
    let fe = free_port();
    let server = format!(
        "{{ name = \"s\", addr = \"127.0.0.1:{srv}\", ssl = true, ca_file = \"{}\", sni = \"localhost\", proto = \"h2\" }}",
        ca.display()
    );
    let lb = Lbha::start(&config(fe, "", &server), &[fe]);
    let r = get(fe, "/secure");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), lb.log_text());
    assert_eq!(r.text(), "tls h2 HTTP/2.0 https://test/secure");
}
