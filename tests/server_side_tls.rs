//! Issue 17 items 5 and 6 against a real TLS server that serves a certificate only for one SNI
//! and answers 200 only over one ALPN protocol: health checks over TLS (`check_ssl`,
//! `check_sni`, `check_alpn`, and the server's `verify`/`ca_file` applied to them), and the
//! `alpn` offered to servers for traffic.

mod common;
mod kit;
use common::*;
use kit::wait_log;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Serves its certificate only to handshakes for `good.example`.
#[derive(Debug)]
struct OnlyGood(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OnlyGood {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        (hello.server_name() == Some("good.example")).then(|| self.0.clone())
    }
}

/// An HTTPS server (keep-alive): 200 when the client negotiated ALPN `x-check`, 503 otherwise;
/// records the SNI and ALPN of every request.
/// (SNI, ALPN) of each request the server answered.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn https_server(dir: &TempDir) -> (u16, std::path::PathBuf, Seen) {
    let ck = rcgen::generate_simple_self_signed(vec!["good.example".to_string()]).unwrap();
    let ca = dir.write("server-ca.pem", &ck.cert.pem());
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified =
        Arc::new(rustls::sign::CertifiedKey::from_der(vec![ck.cert.der().clone()], key, &provider).unwrap());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OnlyGood(certified)));
    cfg.alpn_protocols = vec![b"x-check".to_vec(), b"other".to_vec()];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            // Bounded: the test ends long before.
            let until = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
            while let Ok(Ok((tcp, _))) = tokio::time::timeout_at(until, listener.accept()).await {
                let (acceptor, seen) = (acceptor.clone(), seen2.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let (_, c) = tls.get_ref();
                    let sni = c.server_name().unwrap_or("").to_string();
                    let alpn = String::from_utf8_lossy(c.alpn_protocol().unwrap_or(b"")).into_owned();
                    // Keep-alive: requests (bodiless) until the client closes.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                        head.drain(..end);
                        seen.lock().unwrap().push((sni.clone(), alpn.clone()));
                        let answer: &[u8] = if alpn == "x-check" {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        } else {
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                        };
                        if tls.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    (port, ca, seen)
}

#[test]
fn checks_over_tls_pass_only_with_the_right_sni_alpn_and_certificate() {
    let dir = TempDir::new("check-tls");
    let (sport, ca, seen) = https_server(&dir);
    let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
    let other_ca = dir.write("other-ca.pem", &other.cert.pem());
    let port = free_port();
    let tport = free_port();
    let a = format!("127.0.0.1:{sport}");
    let chk = "check = true, inter = 200, rise = 1, fall = 2";
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s", check = "2s" }}
[[listen]]
name = "h"
bind = ["127.0.0.1:{port}"]
check = {{ http = "GET /health" }}
servers = [
  {{ name = "good", addr = "{a}", {chk}, check_ssl = true, verify = "none", check_sni = "good.example", check_alpn = "x-check" }},
  {{ name = "verified", addr = "{a}", {chk}, check_ssl = true, ca_file = "{ca}", check_sni = "good.example", check_alpn = "x-check,http/1.1" }},
  {{ name = "badsni", addr = "{a}", {chk}, check_ssl = true, verify = "none", check_sni = "bad.example", check_alpn = "x-check" }},
  {{ name = "badalpn", addr = "{a}", {chk}, check_ssl = true, verify = "none", check_sni = "good.example", check_alpn = "other" }},
  {{ name = "untrusted", addr = "{a}", {chk}, check_ssl = true, ca_file = "{other_ca}", check_sni = "good.example", check_alpn = "x-check" }},
  {{ name = "plain", addr = "{a}", {chk} }},
]
[[listen]]
name = "t"
bind = ["127.0.0.1:{tport}"]
servers = [
  {{ name = "ssl", addr = "{a}", {chk}, ssl = true, verify = "none", sni = "good.example" }},
  {{ name = "nosni", addr = "{a}", {chk}, ssl = true, verify = "none" }},
]
"#,
        ca = ca.display(),
        other_ca = other_ca.display()
    );
    let l = Lbha::start(&cfg, &[port, tport]);
    let log = || l.log_text();
    wait_log(log, "Health check for server h/good succeeded, reason: Layer7 check passed, code 200");
    wait_log(log, "Health check for server h/verified succeeded, reason: Layer7 check passed, code 200");
    wait_log(log, "Server h/badsni is DOWN, reason: Layer6 invalid response");
    wait_log(log, "Server h/badalpn is DOWN, reason: Layer7 wrong status 503");
    wait_log(log, "Server h/untrusted is DOWN, reason: Layer6 invalid response");
    // A TLS server checked in clear gets no HTTP answer.
    wait_log(log, "Server h/plain is DOWN, reason: Layer7");
    // An `ssl` server is checked over TLS on its own address, with its `sni`; a TCP check
    // passes at Layer6 once the handshake completes.
    wait_log(log, "Health check for server t/ssl succeeded, reason: Layer6 check passed");
    wait_log(log, "Server t/nosni is DOWN, reason: Layer6 invalid response");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&("good.example".into(), "x-check".into())), "{seen:?}");
    assert!(seen.contains(&("good.example".into(), "other".into())), "{seen:?}");
    let text = l.log_text();
    assert!(!text.contains("Server h/good is DOWN") && !text.contains("Server h/verified is DOWN"), "{text}");
}

#[test]
fn check_tls_settings_are_validated() {
    let dir = TempDir::new("check-tls-cfg");
    let cfg = |server: &str| {
        format!(
            "[defaults]\nmode = \"http\"\n[[listen]]\nname = \"h\"\nbind = [\"127.0.0.1:1\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:2\", check = true, {server} }}]\n"
        )
    };
    let check = |text: String| {
        let p = dir.write("lbha.toml", &text);
        let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&p).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
    };
    let (code, err) = check(cfg("check_ssl = true"));
    assert_ne!(code, Some(0));
    assert!(err.contains("servers[0].ca_file") && err.contains("check_ssl"), "{err}");
    let (code, err) = check(cfg("check_ssl = true, verify = \"none\", check_alpn = \"h2,,x\""));
    assert_ne!(code, Some(0));
    assert!(err.contains("servers[0].check_alpn"), "{err}");
    let (code, err) = check(cfg("check_ssl = true, verify = \"none\", check_sni = \"bad name!\""));
    assert_ne!(code, Some(0));
    assert!(err.contains("servers[0].check_sni"), "{err}");
    let (code, err) = check(cfg("check_sni = \"a.example\""));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("check_sni") && err.contains("has no effect"), "a warning: {err}");
}

#[test]
fn server_alpn_is_offered_for_traffic() {
    let dir = TempDir::new("server-alpn");
    let (sport, _ca, seen) = https_server(&dir);
    let (port, port2) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "a"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{sport}", ssl = true, verify = "none", sni = "good.example", alpn = "x-check,http/1.1" }}]
[[listen]]
name = "b"
bind = ["127.0.0.1:{port2}"]
servers = [{{ name = "s", addr = "127.0.0.1:{sport}", ssl = true, verify = "none", sni = "good.example" }}]
"#
    );
    let _l = Lbha::start(&cfg, &[port, port2]);
    assert_eq!(get(port, "/").status, 200, "the server saw ALPN x-check");
    // Without `alpn`, lbha offers http/1.1, which this server does not speak: no handshake.
    assert_eq!(get(port2, "/").status, 503);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [("good.example".to_string(), "x-check".to_string())]);
}

#[test]
fn sni_expression_is_evaluated_per_request_and_keys_reuse() {
    let dir = TempDir::new("server-sni-expr");
    let (sport, _ca, seen) = https_server(&dir);
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "a"
bind = ["127.0.0.1:{port}"]
http_reuse = "always"
servers = [{{ name = "s", addr = "127.0.0.1:{sport}", ssl = true, verify = "none", sni = "req.hdr(host)", alpn = "x-check" }}]
"#
    );
    let _l = Lbha::start(&cfg, &[port]);
    // One client connection, three requests: the server only has a certificate for
    // good.example, so the second request fails unless it got a connection of its own.
    let mut s = connect(port);
    let mut ask = |host: &str| {
        s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).unwrap();
        read_response(&mut s, false).unwrap().status
    };
    assert_eq!(ask("good.example"), 200);
    assert_eq!(ask("bad.example"), 503, "not sent on the good.example connection");
    assert_eq!(ask("good.example"), 200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![("good.example".to_string(), "x-check".to_string()); 2], "{seen:?}");
}

/// Issue 17 item 6: a `tcp-check` sequence whose `connect ssl sni alpn` upgrades its own
/// connection, written as an haproxy.cfg that HAProxy 2.6 accepts (`haproxy -c`, when installed)
/// and that lbha converts and runs: the right SNI and ALPN pass with the `on-success` text, a
/// wrong ALPN fails with the chosen `error-status` and `on-error` text (`min-recv`: the server
/// keeps the connection open, so the status line decides), a wrong SNI fails the
/// handshake at Layer6, and the same rules over a plain connection get no answer.
#[test]
fn tcp_check_connect_ssl_upgrades_its_connection() {
    let dir = TempDir::new("tcpcheck-tls");
    let (sport, ca, seen) = https_server(&dir);
    let port = free_port();
    let srv = format!("server s 127.0.0.1:{sport} check inter 200 rise 1 fall 2");
    let rules = r"  tcp-check send GET\ /\ HTTP/1.1\r\n\r\n";
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n  timeout check 2s\n  option log-health-checks\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend good\n\
         backend good\n  option tcp-check\n  tcp-check comment tls\n  tcp-check connect ssl sni good.example alpn x-check linger\n{rules}\n  \
         tcp-check expect string 200\\ OK on-success \"TLS\\ ok\\ on\\ %b/%s\"\n  {srv} verify none\n\
         backend verified\n  option tcp-check\n  tcp-check connect ssl sni good.example alpn x-check\n{rules}\n  \
         tcp-check expect string 200\\ OK\n  {srv} ca-file {ca}\n\
         backend badalpn\n  option tcp-check\n  tcp-check connect ssl sni good.example alpn other\n{rules}\n  \
         tcp-check expect min-recv 12 string 200\\ OK error-status L7STS on-error \"not\\ 200\\ from\\ %s\"\n  {srv} verify none\n\
         backend badsni\n  option tcp-check\n  tcp-check connect ssl sni bad.example alpn x-check\n{rules}\n  \
         tcp-check expect string 200\\ OK\n  {srv} verify none\n\
         backend plain\n  option tcp-check\n  tcp-check connect\n{rules}\n  tcp-check expect string 200\\ OK\n  {srv}\n",
        ca = ca.display()
    );
    match haproxy_bin() {
        Some(h) => {
            let path = dir.write("haproxy.cfg", &cfg);
            let out = std::process::Command::new(h).arg("-c").arg("-f").arg(&path).output().unwrap();
            assert!(out.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&out.stderr));
        }
        None => println!("haproxy -c skipped: haproxy is not installed"),
    }
    let l = Lbha::start_haproxy(&cfg, &[port]);
    let log = || l.log_text();
    wait_log(log, "Health check for server good/s succeeded, reason: Layer7 check passed, info: TLS ok on good/s");
    wait_log(log, "Health check for server verified/s succeeded, reason: Layer7 check passed, info: (tcp-check)");
    wait_log(log, "Server badalpn/s is DOWN, reason: Layer7 wrong status, info: not 200 from s");
    wait_log(log, "Server badsni/s is DOWN, reason: Layer6 invalid response");
    wait_log(log, "Server plain/s is DOWN, reason: Layer7");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&("good.example".into(), "x-check".into())), "{seen:?}");
    assert!(seen.contains(&("good.example".into(), "other".into())), "{seen:?}");
    let text = l.log_text();
    assert!(!text.contains("Server good/s is DOWN") && !text.contains("Server verified/s is DOWN"), "{text}");
}
