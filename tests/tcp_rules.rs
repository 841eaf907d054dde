//! `tcp-request` / `tcp-response` rules and SNI routing in mode tcp, with real TLS clients
//! (rustls) and plain TCP backends that record what they receive.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A real ClientHello for `sni` through `port`: what comes back before the close.
fn hello_through(port: u16, sni: &str) -> String {
    tls_hello(port, sni).unwrap()
}

fn sni_config(port: u16, a: u16, b: u16, d: u16, front: &str) -> String {
    format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "tls_in"
bind = ["127.0.0.1:{port}"]
default_backend = "be_default"
{front}
[[backend]]
name = "be_a"
servers = [{{ name = "a", addr = "127.0.0.1:{a}" }}]
[[backend]]
name = "be_b"
servers = [{{ name = "b", addr = "127.0.0.1:{b}" }}]
[[backend]]
name = "be_default"
servers = [{{ name = "d", addr = "127.0.0.1:{d}" }}]
"#
    )
}

#[test]
fn sni_routing_by_map_file_passes_the_hello_through() {
    let ((a, seen_a), (b, seen_b), (d, _)) = (tag_server("A"), tag_server("B"), tag_server("D"));
    let port = free_port();
    let dir = TempDir::new("tcprules-map");
    dir.write("sni.map", "# sni -> backend\na.example be_a\nb.example be_b\n");
    let front = r#"
tcp_request_inspect_delay = "5s"
tcp_request = [{ content = "accept", if = "{ req_ssl_hello_type 1 }" }]
use_backend = [{ backend = "%[req.ssl_sni,lower,map(sni.map)]" }]
"#;
    let _lb = Lbha::start_in(dir, &sni_config(port, a, b, d, front), &[port]);
    assert_eq!(hello_through(port, "a.example"), "A");
    assert_eq!(hello_through(port, "B.EXAMPLE"), "B", "the SNI is lowered before the map lookup");
    assert_eq!(hello_through(port, "c.example"), "D", "no map entry: the default backend");
    // The backend got the client's ClientHello intact: a handshake record naming the host.
    let got = seen_b.lock().unwrap()[0].clone();
    assert_eq!(got[0], 0x16, "a TLS handshake record");
    assert!(got.windows(9).any(|w| w.eq_ignore_ascii_case(b"b.example")));
    assert_eq!(seen_a.lock().unwrap().len(), 1);
}

#[test]
fn sni_conditions_set_var_and_reject() {
    let ((a, _), (b, seen_b), (d, seen_d)) = (tag_server("A"), tag_server("B"), tag_server("D"));
    let port = free_port();
    let front = r#"
tcp_request_inspect_delay = "5s"
acl = [{ name = "is_b", cond = "var(sess.sni) -m end -i .b.example" }]
tcp_request = [
  { content = "reject", if = "{ req.ssl_sni -i evil.example }" },
  { content = "set-var(sess.sni) req.ssl_sni" },
  { content = "accept", if = "{ req_ssl_hello_type 1 }" },
]
use_backend = [
  { backend = "be_a", if = "{ req.ssl_sni -i a.example }" },
  { backend = "be_b", if = "is_b" },
]
"#;
    let _lb = Lbha::start_in(TempDir::new("tcprules-cond"), &sni_config(port, a, b, d, front), &[port]);
    assert_eq!(hello_through(port, "A.example"), "A");
    assert_eq!(hello_through(port, "www.b.example"), "B", "routed by the variable the content rule set");
    assert_eq!(hello_through(port, "other.example"), "D");
    assert_eq!(hello_through(port, "evil.example"), "", "rejected: no backend sees it");
    let stat = _lb.ctl(&["show stat"]);
    let fe = stat.lines().find(|l| l.starts_with("tls_in,FRONTEND,")).unwrap_or_else(|| panic!("{stat}"));
    assert_eq!(fe.split(',').nth(10), Some("1"), "dreq counts the content reject: {stat}");
    assert_eq!(seen_b.lock().unwrap().len(), 1);
    assert_eq!(seen_d.lock().unwrap().len(), 1);
}

#[test]
fn inspect_delay_expiry_decides_with_what_arrived() {
    let ((a, _), (b, _), (d, seen_d)) = (tag_server("A"), tag_server("B"), tag_server("D"));
    let port = free_port();
    // Partial or missing TLS records wait for the delay; then the rules decide: a client that
    // sent a truncated record is rejected, one that sent plain text goes on with its bytes.
    let front = r#"
tcp_request_inspect_delay = "300ms"
tcp_request = [
  { content = "accept", if = "{ req_ssl_hello_type 1 }" },
  { content = "reject", if = "{ req.payload(0,1) -m bin 16 }" },
]
"#;
    let _lb = Lbha::start_in(TempDir::new("tcprules-delay"), &sni_config(port, a, b, d, front), &[port]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();
    assert_eq!(read_to_close(&mut s), "", "a truncated TLS record is rejected when the delay expires");

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"PING").unwrap();
    assert_eq!(read_to_close(&mut s), "D");
    assert_eq!(seen_d.lock().unwrap().as_slice(), [b"PING".to_vec()], "the inspected bytes reach the server");
}

#[test]
fn connection_rules_and_response_rules() {
    let ((a, _), (b, _), (d, seen_d)) = (tag_server("A"), tag_server("B"), tag_server("D"));
    let port = free_port();
    let front = r#"
tcp_request = [{ connection = "reject", if = "{ dst_port 1 }" }, { connection = "accept", if = "LOCALHOST" }, { connection = "reject" }]
"#;
    let mut cfg = sni_config(port, a, b, d, front);
    let _lb = Lbha::start_in(TempDir::new("tcprules-conn"), &cfg, &[port]);
    assert_eq!(hello_through(port, "x.example"), "D", "accepted: the client is on loopback");
    drop(_lb);

    // A backend that refuses every session by `tcp-response content`.
    let port = free_port();
    cfg = sni_config(port, a, b, d, "").replace(
        "name = \"be_default\"",
        "name = \"be_default\"\ntcp_response = [{ content = \"reject\", unless = \"{ src 192.0.2.1 }\" }]",
    );
    let _lb = Lbha::start_in(TempDir::new("tcprules-resp"), &cfg, &[port]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"hello").unwrap();
    assert_eq!(read_to_close(&mut s), "", "the response is refused");
    assert!(
        !seen_d.lock().unwrap().iter().any(|b| b == b"hello"),
        "the server got the bytes, not the client its answer"
    );
}

#[test]
fn config_errors_are_located() {
    let dir = TempDir::new("tcprules-check");
    let bad = r#"
[defaults]
mode = "tcp"
[[frontend]]
name = "f"
bind = ["127.0.0.1:1"]
acl = [{ name = "h", cond = "path_beg /x" }]
tcp_request = [
  { connection = "reject", if = "{ req.ssl_sni x }" },
  { session = "capture src len 10" },
  { content = "accept", if = "{ nosuch 1 }" },
  { content = "reject", if = "{ nbsrv(typo) lt 1 }" },
  { content = "reject", if = "{ be_conn(x) gt 1 }" },
]
use_backend = [{ backend = "%[req.ssl_sni,map(missing.map)]" }]
"#;
    let cfg = dir.write("bad.toml", bad);
    let out = Command::new(lbha_bin()).args(["check", "-c"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    for want in [
        "frontend[0].acl[0].cond",
        "HTTP fetches are not available",
        "frontend[0].tcp_request[0].if",
        "request contents are not available in tcp-request connection",
        "frontend[0].tcp_request[1].session",
        "`capture` is not available in tcp-request session rules",
        "frontend[0].tcp_request[2].if",
        "unknown fetch",
        "missing.map",
        "nbsrv: no such backend `typo`",
        "frontend[0].tcp_request[4].if",
        "be_conn: no such backend `x`",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

/// On an `ssl` bind in mode tcp, session rules see the handshake (`ssl_fc`, `ssl_fc_sni`) and
/// the clear bytes are relayed.
#[test]
fn session_rules_on_a_tls_bind_read_the_handshake() {
    let (d, seen_d) = tag_server("D");
    let (a, b) = (tag_server("A").0, tag_server("B").0);
    let port = free_port();
    let dir = TempDir::new("tcprules-tls");
    let ck = rcgen::generate_simple_self_signed(vec!["ok.example".to_string(), "no.example".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let front = r#"
tcp_request = [
  { session = "reject", unless = "{ ssl_fc } { ssl_fc_sni -i ok.example }" },
  { content = "set-var(sess.proto) ssl_fc_protocol" },
]
"#;
    let cfg = sni_config(port, a, b, d, front).replace(
        &format!("bind = [\"127.0.0.1:{port}\"]"),
        &format!("bind = [\"127.0.0.1:{port} ssl crt {}\"]", crt.display()),
    );
    let _lb = Lbha::start_in(dir, &cfg, &[port]);
    let talk = |sni: &str| -> String {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        if tls.write_all(b"hello over tls").is_err() {
            return String::new();
        }
        read_to_close(&mut tls)
    };
    assert_eq!(talk("ok.example"), "D", "the right SNI passes the session rule");
    assert_eq!(seen_d.lock().unwrap().as_slice(), [b"hello over tls".to_vec()], "the server gets the clear bytes");
    assert_eq!(talk("no.example"), "", "another SNI is rejected after the handshake");
    assert_eq!(seen_d.lock().unwrap().len(), 1);
}

/// In mode http, `tcp-request connection` rules decide before any HTTP is read, `content`
/// rules on each request (a reject closes the connection without an answer).
#[test]
fn http_frontends_take_connection_and_content_rules() {
    let be = Backend::start("web");
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let front = |name: &str, port: u16, rules: &str| {
        format!(
            "[[frontend]]\nname = \"{name}\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\ntcp_request = {rules}\n"
        )
    };
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"10s\", server = \"10s\" }}\n{}{}{}[[backend]]\nname = \"web\"\nservers = [{{ name = \"w\", addr = \"127.0.0.1:{}\" }}]\n",
        front("conn", p1, r#"[{ connection = "reject", if = "LOCALHOST" }]"#),
        front("content", p2, r#"[{ content = "reject", unless = "{ src 192.0.2.0/24 }" }]"#),
        front("open", p3, r#"[{ content = "accept", if = "{ src 127.0.0.0/8 }" }, { content = "reject" }]"#),
        be.port
    );
    let _lb = Lbha::start_in(TempDir::new("tcprules-http"), &cfg, &[p1, p2, p3]);
    for port in [p1, p2] {
        let r = raw(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(r.is_err() || r.as_ref().is_ok_and(|r| r.status == 0), "port {port} answered");
    }
    assert_eq!(get(p3, "/").status, 200);
    assert_eq!(be.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 1, "only the accepted client's request");

    // A connection rule reading request bytes is refused, with its location.
    let dir = TempDir::new("tcprules-http-bad");
    let bad = cfg.replace(
        r#"{ content = "accept", if = "{ src 127.0.0.0/8 }" }"#,
        r#"{ connection = "accept", if = "{ req.len gt 0 }" }"#,
    );
    let path = dir.write("bad.toml", &bad);
    let out = Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("frontend[2].tcp_request[0].if") && err.contains("tcp-request connection"), "{err}");
}

/// In mode http, `tcp-request connection|session|content set-var(sess.NAME)` sets the
/// connection's session variable, which every HTTP request on it reads; `proc` is the
/// process's; other scopes are refused.
#[test]
fn http_frontends_see_session_variables_of_tcp_rules() {
    let be = Backend::start("web");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"10s\", server = \"10s\" }}\n\
         [[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\n\
         tcp_request = [{{ connection = \"set-var(sess.peer) src\" }}, {{ session = \"set-var(sess.tag) str(s1)\" }}, \
         {{ content = \"set-var(sess.gone) str(x)\" }}, {{ content = \"unset-var(sess.gone)\" }}]\n\
         http_request = [{{ set_header = {{ name = \"X-Sess\", value = \"%[var(sess.peer)]-%[var(sess.tag)]-%[var(sess.gone)]\" }} }}]\n\
         [[backend]]\nname = \"web\"\nservers = [{{ name = \"w\", addr = \"127.0.0.1:{}\" }}]\n",
        be.port
    );
    let _lb = Lbha::start_in(TempDir::new("tcprules-http-vars"), &cfg, &[port]);
    assert_eq!(get(port, "/").status, 200);
    let seen = be.seen.last_headers.lock().unwrap().clone();
    let x = seen.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-sess")).map(|(_, v)| v.clone());
    assert_eq!(x.as_deref(), Some("127.0.0.1-s1-"), "{seen:?}");

    let dir = TempDir::new("tcprules-http-vars-bad");
    let path = dir.write("bad.toml", &cfg.replace("set-var(sess.tag)", "set-var(txn.tag)"));
    let out = Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("frontend[0].tcp_request") && err.contains("`sess` and `proc` scopes only"), "{err}");
}

/// A server that greets each connection with `banner` (or, with `after_read`, answers it to the
/// client's first bytes), then echoes what it reads until the client closes.
fn banner_server(banner: &'static [u8], after_read: bool) -> u16 {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 1024];
                if after_read && !matches!(s.read(&mut buf), Ok(n) if n > 0) {
                    return;
                }
                if s.write_all(banner).is_err() {
                    return;
                }
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&[b"echo:", &buf[..n]].concat()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// What a client that sends `ping\n` gets back through `port`; with `half_close` it then
/// closes its side, so a session let through ends once the server has echoed.
fn ping_through(port: u16, half_close: bool) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"ping\n").unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    read_to_close(&mut s)
}

/// `tcp-response content` over a real server's banner, in lbha and in HAProxy: a reject sends
/// the client nothing, a `close` the banner then the end, a banner that passes flows with the
/// rest; a server that speaks only after the client's bytes gets them while the rules wait.
#[test]
fn response_rules_judge_the_servers_banner_as_haproxy_does() {
    let (evil, good, late, lv) = (
        banner_server(b"EVIL hi\n", false),
        banner_server(b"GOOD hi\n", false),
        banner_server(b"EVIL late\n", true),
        banner_server(b"\x03abcdef\n", false),
    );
    // (backend, server, rules as (action, condition)), each behind its own frontend.
    type Rules = &'static [(&'static str, &'static str)];
    let cases: [(&str, u16, Rules); 5] = [
        ("reject_evil", evil, &[("reject", "{ res.payload(0,4) -m str EVIL }")]),
        ("reject_good", good, &[("reject", "{ res.payload(0,4) -m str EVIL }")]),
        ("close_evil", late, &[("close", "{ res.payload(0,4) -m str EVIL }")]),
        ("reject_late", late, &[("reject", "{ res.payload(0,4) -m str EVIL }")]),
        ("lv", lv, &[("reject", "!{ res.payload_lv(0,1) -m str abc }"), ("accept", "{ res.len gt 3 }")]),
    ];
    let ports: Vec<u16> = cases.iter().map(|_| free_port()).collect();
    let mut toml = String::from(
        "[defaults]\nmode = \"tcp\"\ntimeout = { connect = \"1s\", client = \"10s\", server = \"10s\" }\n",
    );
    let mut cfg =
        String::from("defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n");
    for ((name, server, rules), port) in cases.iter().zip(&ports) {
        let rules_toml: Vec<String> = rules
            .iter()
            .map(|(a, c)| match c.strip_prefix('!') {
                Some(c) => format!("{{ content = \"{a}\", unless = \"{c}\" }}"),
                None => format!("{{ content = \"{a}\", if = \"{c}\" }}"),
            })
            .collect();
        toml += &format!(
            "[[frontend]]\nname = \"f_{name}\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"{name}\"\n\
             [[backend]]\nname = \"{name}\"\ntcp_response_inspect_delay = \"5s\"\ntcp_response = [{}]\n\
             servers = [{{ name = \"s\", addr = \"127.0.0.1:{server}\" }}]\n",
            rules_toml.join(", ")
        );
        cfg += &format!(
            "frontend f_{name}\n  bind 127.0.0.1:{port}\n  default_backend {name}\nbackend {name}\n  tcp-response inspect-delay 5s\n"
        );
        for (a, c) in rules.iter() {
            cfg += &match c.strip_prefix('!') {
                Some(c) => format!("  tcp-response content {a} unless {c}\n"),
                None => format!("  tcp-response content {a} if {c}\n"),
            };
        }
        cfg += &format!("  server s 127.0.0.1:{server}\n");
    }
    let expect = [
        ("reject_evil", true, ""),
        ("reject_good", true, "GOOD hi\necho:ping\n"),
        ("close_evil", false, "EVIL late\n"),
        ("reject_late", true, ""),
        ("lv", true, "\x03abcdef\necho:ping\n"),
    ];
    let check = |who: &str| {
        for ((name, half_close, want), port) in expect.iter().zip(&ports) {
            assert_eq!(ping_through(*port, *half_close), *want, "{who}: {name}");
        }
    };
    {
        let _lb = Lbha::start_in(TempDir::new("tcprules-res"), &toml, &ports);
        check("lbha");
    }
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("skipped the HAProxy half: no haproxy binary");
        return;
    }
    let (_h, _dir) = haproxy(&cfg, ports[ports.len() - 1]);
    for p in &ports {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !listening(*p) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    check("haproxy");
}
