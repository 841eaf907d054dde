//! TLS termination (SNI, ALPN), HTTP/2 to HTTP/1.1 servers, TLS towards servers, WebSocket.

mod common;
mod kit;
use common::*;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{Read, Write};
use std::sync::Arc;

/// A self-signed certificate for `localhost`, written as one PEM file (chain + key).
fn cert(dir: &TempDir, file: &str) -> (std::path::PathBuf, rustls_pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let p = dir.write(file, &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    (p, ck.cert.der().clone())
}

fn client_config(trust: &rustls_pki_types::CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

async fn tls_connect(
    port: u16,
    cfg: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn tls_config(port: u16, crt: &std::path::Path, backend: u16) -> String {
    format!(
        r#"
[defaults]
mode = "http"
forwardfor = true
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "tls"
bind = ["127.0.0.1:{port} ssl crt {} alpn h2,http/1.1"]
servers = [{{ name = "a", addr = "127.0.0.1:{backend}" }}]
"#,
        crt.display()
    )
}

#[test]
fn https_http1_and_h2_via_alpn() {
    let dir = TempDir::new("tls");
    let (crt, der) = cert(&dir, "site.pem");
    let a = Backend::start("A");
    let port = free_port();
    let _l = Lbha::start(&tls_config(port, &crt, a.port), &[port]);
    rt().block_on(async {
        // HTTP/1.1 over TLS.
        let tls = tls_connect(port, client_config(&der, &[b"http/1.1"])).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/")
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "A");
        // HTTP/2 over TLS, proxied to the HTTP/1.1 server.
        let tls = tls_connect(port, client_config(&der, &[b"h2", b"http/1.1"])).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let req =
                hyper::Request::get("https://localhost/x").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "A");
        }
    });
    let h = a.seen.last_headers.lock().unwrap().clone();
    let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("host").as_deref(), Some("localhost"), ":authority becomes Host: {h:?}");
    assert_eq!(get("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(get("x-forwarded-for").as_deref(), Some("127.0.0.1"));
}

#[test]
fn cleartext_h2_prior_knowledge() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\n[[listen]]\nname = \"h2c\"\nbind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post("http://h2c.test/echo")
            .body(http_body_util::Full::new(bytes::Bytes::from("hello h2")))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "hello h2");
    });
}

/// `tune_bufsize` holds over HTTP/2 as over HTTP/1: a `:path` or a header block that would not
/// fit gets 414 or 431 and is not forwarded; a larger buffer lets the same request through.
#[test]
fn h2_heads_larger_than_tune_bufsize_get_414_or_431() {
    let a = Backend::start("A");
    let (port, roomy) = (free_port(), free_port());
    let listen = |name: &str, port: u16| {
        format!(
            "[[listen]]\nname = \"{name}\"\nbind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
            a.port
        )
    };
    let cfg = format!("[defaults]\nmode = \"http\"\n{}", listen("h2c", port));
    let _l = Lbha::start(&cfg, &[port]);
    let long = |n: usize| "a".repeat(n);
    let status = |port: u16, path: String, header: usize| {
        rt().block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
            tokio::spawn(conn);
            let mut req = hyper::Request::get(format!("http://h2c.test{path}"));
            if header > 0 {
                req = req.header("x-big", long(header));
            }
            let resp = send.send_request(req.body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap()).await;
            resp.unwrap_or_else(|e| panic!("{}-byte path, {header}-byte header: {e}", path.len())).status().as_u16()
        })
    };
    let requests = || a.seen.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status(port, format!("/{}", long(14 * 1024)), 0), 200);
    assert_eq!(requests(), 1);
    assert_eq!(status(port, format!("/{}", long(17 * 1024)), 0), 414, "17 KiB :path");
    assert_eq!(status(port, "/".into(), 17 * 1024), 431, "17 KiB header");
    assert_eq!(requests(), 1, "nothing more reached the server");

    let cfg = format!("[global]\ntune_bufsize = 32768\n[defaults]\nmode = \"http\"\n{}", listen("roomy", roomy));
    let _l2 = Lbha::start(&cfg, &[roomy]);
    assert_eq!(status(roomy, format!("/{}", long(17 * 1024)), 0), 200);
    assert_eq!(status(roomy, format!("/{}", long(40 * 1024)), 0), 414, "past the larger buffer");
    assert_eq!(requests(), 2);
}

/// lbha terminates TLS from the client and speaks TLS to a server (here a second lbha listen that
/// answers by itself over TLS), with `verify none` and with `verify required` against a CA file.
#[test]
fn tls_towards_servers() {
    let dir = TempDir::new("tls-up");
    let (crt, _) = cert(&dir, "up.pem");
    let up = free_port();
    let none = free_port();
    let req = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "tls_server"
bind = ["127.0.0.1:{up} ssl crt {crt}"]
http_request = [{{ return = {{ status = 200, body = "over tls" }} }}]
[[listen]]
name = "verify_none"
bind = ["127.0.0.1:{none}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, verify = "none" }}]
[[listen]]
name = "verify_required"
bind = ["127.0.0.1:{req}"]
servers = [{{ name = "s", addr = "127.0.0.1:{up}", ssl = true, verify = "required", ca_file = "{crt}", sni = "localhost" }}]
"#,
        crt = crt.display()
    );
    let _l = Lbha::start(&cfg, &[up, none, req]);
    assert_eq!(get(none, "/").text(), "over tls");
    assert_eq!(get(req, "/").text(), "over tls");
}

#[test]
fn bad_certificate_is_a_config_error_naming_the_file() {
    let dir = TempDir::new("tls-bad");
    let bad = dir.write("bad.pem", "not a certificate\n");
    let cfg = dir.write(
        "c.toml",
        &format!("[defaults]\nmode = \"http\"\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:1 ssl crt {}\"]\nhttp_request = [{{ deny = {{}} }}]\n", bad.display()),
    );
    let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.pem") && err.contains("listen[0].bind[0]"), "{err}");
}

#[test]
fn websocket_upgrade_tunnels_both_ways() {
    let ws = kit::head_server(kit::Answer::UpgradeIfAsked);
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ tunnel = \"5s\" }}\n[[listen]]\nname = \"ws\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{ws}\" }}]\n"
    );
    let _l = Lbha::start(&cfg, &[port]);
    let mut s = connect(port);
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    for msg in [&b"ping"[..], b"second frame", &[0u8, 1, 2, 255]] {
        s.write_all(msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    // A plain request on the same kind of server is not upgraded.
    assert_eq!(get(port, "/").text(), "no");
}

#[test]
fn unrequested_101_is_refused() {
    let ws = kit::head_server(kit::Answer::Upgrade);
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\n[[listen]]\nname = \"ws\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{ws}\" }}]\n"
    );
    let _l = Lbha::start(&cfg, &[port]);
    assert_eq!(get(port, "/").status, 502);
}

#[test]
fn data_plane_api_over_tls() {
    let dir = TempDir::new("api-tls");
    let (crt, der) = cert(&dir, "api.pem");
    let (port, web) = (free_port(), free_port());
    let state = dir.0.join("state");
    let cfg = format!(
        r#"
[[userlist]]
name = "dataplaneapi"
users = [{{ name = "admin", insecure_password = "123456" }}]
[api]
bind = "127.0.0.1:{port}"
userlist = "dataplaneapi"
state_dir = "{}"
ssl_crt = "{}"
[[listen]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{web}"]
http_request = [{{ return = {{ body = "ok" }} }}]
"#,
        state.display(),
        crt.display()
    );
    let _l = Lbha::start(&cfg, &[port, web]);
    rt().block_on(async {
        let tls = tls_connect(port, client_config(&der, &[b"http/1.1"])).await;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/v2/info")
            .header("host", "localhost")
            .header("authorization", "Basic YWRtaW46MTIzNDU2")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("\"api\""), "{body:?}");
    });
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(raw(port, b"GET /v2/info HTTP/1.1\r\nHost: t\r\n\r\n").is_err());
}

/// An HTTP/2 client over TLS that sends only its preface and SETTINGS is closed after
/// `timeout http-request` with a GOAWAY, instead of holding a connection slot for ever.
#[test]
fn an_idle_tls_h2_connection_is_closed_with_a_goaway() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("tls-h2-idle");
    let (crt, der) = cert(&dir, "site.pem");
    let a = Backend::start("A");
    let port = free_port();
    let cfg = tls_config(port, &crt, a.port).replace("client = \"5s\"", "client = \"60s\", http_request = \"1s\"");
    let _l = Lbha::start(&cfg, &[port]);
    rt().block_on(async {
        let mut tls = tls_connect(port, client_config(&der, &[b"h2"])).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buf = [0u8; 4096];
            // EOF, a TLS close or a reset all end the wait: the connection is gone.
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(read.is_ok(), "lbha closes the idle connection");
        let mut types = Vec::new();
        let mut rest = &got[..];
        while rest.len() >= 9 {
            let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
            types.push(rest[3]);
            rest = &rest[(9 + len).min(rest.len())..];
        }
        assert!(types.contains(&7), "a GOAWAY before the close: {types:?}");
    });
}

/// Issue 14 item 30: an `ssl` bind in mode tcp (with `alpn h2`, as HAProxy accepts) terminates
/// TLS and relays the clear bytes; before, the config was refused.
#[test]
fn ssl_bind_in_tcp_mode_terminates_and_relays() {
    let dir = TempDir::new("tls-tcp");
    let (crt, der) = cert(&dir, "site.pem");
    let echo = echo_server();
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"tcp\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n[[listen]]\nname = \"t\"\nbind = [\"127.0.0.1:{port} ssl crt {} alpn h2\"]\nservers = [{{ name = \"e\", addr = \"127.0.0.1:{echo}\" }}]\n",
        crt.display()
    );
    let _l = Lbha::start(&cfg, &[port]);
    rt().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tls_connect(port, client_config(&der, &[b"h2"])).await;
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        s.write_all(b"through tls").await.unwrap();
        let mut buf = [0u8; 11];
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"through tls");
    });
}

/// An HTTP/2 CONNECT tunnel is an exchange in progress: hyper drops the empty body of the 2xx at
/// once, and before the fix the idle timer then closed the connection (GOAWAY) after
/// `http-keep-alive`, cutting the tunnel.
#[test]
fn an_h2_connect_tunnel_outlives_http_keep_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sport = connect_server(1, b"");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ client = \"30s\", server = \"30s\", tunnel = \"60s\", http_request = \"1s\", http_keep_alive = \"1s\" }}\n[[listen]]\nname = \"h2c\"\nbind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{sport}\" }}]\n"
    );
    let l = Lbha::start(&cfg, &[port]);
    rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        let req =
            hyper::Request::connect("example.com:443").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
        let resp = send.send_request(req).await.unwrap_or_else(|e| panic!("CONNECT failed ({e}):\n{}", l.log_text()));
        assert_eq!(resp.status(), 200);
        let mut t = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
        let mut back = [0u8; 5];
        for round in 0..2 {
            t.write_all(b"hello").await.unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(10), t.read_exact(&mut back))
                .await
                .unwrap_or_else(|_| panic!("round {round}: no echo"))
                .unwrap_or_else(|e| panic!("round {round}: tunnel cut: {e}"));
            assert_eq!(&back, b"hello");
            // Past http-keep-alive and the second lbha gives a GOAWAY to land.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
    });
}

/// An HTTP/2 client that leaves a stream's flow-control window at 0 never takes the response:
/// the connection is closed after `timeout client` instead of holding its slot for ever.
#[test]
fn an_h2_stream_left_at_window_zero_is_closed_after_timeout_client() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ client = \"2s\", server = \"30s\", http_request = \"30s\", http_keep_alive = \"30s\" }}\n[[listen]]\nname = \"h2c\"\nbind = [\"127.0.0.1:{port} proto h2\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port
    );
    let l = Lbha::start(&cfg, &[port]);
    rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(0)
            .handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req =
            hyper::Request::get("http://h2c.test/big").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        // The body is never read: its window stays at 0.
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), conn).await;
        assert!(ended.is_ok(), "the stalled connection is still open after 20 s:\n{}", l.log_text());
        drop(resp);
    });
}

/// Parking (see `proxy::park`) hands the TLS stream back from hyper and makes a new hyper
/// connection for the next request: the session must carry on as if nothing happened.
#[test]
fn a_parked_https_connection_serves_its_next_request() {
    let dir = TempDir::new("tls-park");
    let (crt, der) = cert(&dir, "site.pem");
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&tls_config(port, &crt, a.port), &[port]);
    rt().block_on(async {
        let tls = tls_connect(port, client_config(&der, &[b"http/1.1"])).await;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        for round in 0..3 {
            let req = hyper::Request::get("/")
                .header("host", "localhost")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap_or_else(|e| panic!("request {round}: {e}"));
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "A");
            // Timers fire late on a loaded machine: wait for the park itself.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while !l.log_text().contains("idle HTTP/1 connection parked") {
                assert!(std::time::Instant::now() < deadline, "not parked:\n{}", l.log_text());
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    });
    assert_eq!(a.connections(), 1, "the backend connection is reused across parks too");
}

#[test]
fn a_websocket_upgrade_on_a_parked_connection_tunnels_both_ways() {
    let ws = kit::head_server(kit::Answer::UpgradeIfAsked);
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ tunnel = \"5s\" }}\n[[listen]]\nname = \"ws\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{ws}\" }}]\n"
    );
    let l = Lbha::start(&cfg, &[port]);
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().text(), "no");
    // Timers fire late on a loaded machine: wait for the park itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !l.log_text().contains("idle HTTP/1 connection parked") {
        assert!(std::time::Instant::now() < deadline, "not parked:\n{}", l.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 101);
    for msg in [&b"ping"[..], b"after a park"] {
        s.write_all(msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
}
