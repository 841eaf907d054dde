//! `http-request do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR` against a real DNS server
//! (dnsmasq, started here on 127.0.0.1), run by lbha (`run --haproxy-config`) and by HAProxy
//! 2.6 on the same haproxy.cfg: the variable each gets for each name, a changed record seen by
//! the next request (`hold valid` keeps nothing, as in HAProxy), and HAProxy's recipe end to end (`set-dst` from the
//! variable, `server clear 0.0.0.0:0`) reaching a backend on the resolved 127.0.0.0/8 address.

mod common;
use common::dnsmasq::{self, Dnsmasq};
use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

/// Frontend `port` answers the variable each rule set, per path.
fn config(port: u16, dns: u16) -> String {
    format!(
        "resolvers mydns\n  nameserver ns1 127.0.0.1:{dns}\n  hold valid 1h\n  timeout retry 200ms\n  resolve_retries 2\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request do-resolve(txn.v4,mydns,ipv4) hdr(host),lower if {{ path /v4 }}\n  \
         http-request do-resolve(txn.v6,mydns,ipv6) hdr(host),lower if {{ path /v6 }}\n  \
         http-request do-resolve(txn.any,mydns) hdr(host),lower if {{ path /any }}\n  \
         http-request do-resolve(txn.none,mydns,ipv4) hdr(nothing) if {{ path /none }}\n  \
         http-request return status 200 content-type text/plain lf-string \"v4=%[var(txn.v4)] v6=%[var(txn.v6)] any=%[var(txn.any)] none=%[var(txn.none)]\"\n"
    )
}

fn ask(port: u16, path: &str, host: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(req.as_bytes())?;
        read_response(&mut s, false)
    });
    match answer {
        Ok(r) => format!("{} {}", r.status, r.text()),
        Err(e) => format!("error: {e}"),
    }
}

const CASES: &[(&str, &str)] = &[
    ("/v4", "app.test"),
    ("/v4", "APP.test"),
    ("/v4", "dual.test"),
    ("/v6", "dual.test"),
    ("/any", "dual.test"),
    ("/v4", "only6.test"),
    ("/v6", "app.test"),
    ("/any", "app.test"),
    ("/v4", "nx.test"),
    ("/any", "nx.test"),
    ("/none", "app.test"),
];

fn run_cases(port: u16) -> Vec<String> {
    CASES.iter().map(|(p, h)| ask(port, p, h)).collect()
}

#[test]
fn do_resolve_sets_the_variable_as_haproxy_and_resolves_again_for_the_next_request() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("doresolve");
    let hosts =
        dir.write("hosts", "127.0.0.2 app.test\n127.0.0.3 dual.test\n2001:db8::3 dual.test\n2001:db8::6 only6.test\n");
    let dns_port = free_port();
    let dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    dns.wait_for("app.test", false, &["127.0.0.2"]);

    let port = free_port();
    let lbha = Lbha::start_haproxy(&config(port, dns_port), &[port]);
    let ours = run_cases(port);
    let want = [
        "200 v4=127.0.0.2 v6= any= none=",
        "200 v4=127.0.0.2 v6= any= none=",
        "200 v4=127.0.0.3 v6= any= none=",
        "200 v4= v6=2001:db8::3 any= none=",
        "200 v4= v6= any=2001:db8::3 none=",
        "200 v4=2001:db8::6 v6= any= none=",
        "200 v4= v6=127.0.0.2 any= none=",
        "200 v4= v6= any=127.0.0.2 none=",
        "200 v4= v6= any= none=",
        "200 v4= v6= any= none=",
        "200 v4= v6= any= none=",
    ];
    for ((case, got), want) in CASES.iter().zip(&ours).zip(want) {
        assert_eq!(got, want, "lbha: {case:?}\n{}", lbha.log_text());
    }

    let haproxy_port = free_port();
    let theirs = haproxy_bin().map(|_| {
        let h = haproxy(&config(haproxy_port, dns_port), haproxy_port);
        (h, run_cases(haproxy_port))
    });
    if let Some((_, theirs)) = &theirs {
        for ((case, o), t) in CASES.iter().zip(&ours).zip(theirs) {
            assert_eq!(o, t, "lbha and HAProxy differ: {case:?}");
        }
    } else {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
    }

    // The record changes: the next request resolves again, in both, whatever `hold valid` (1h)
    // says (HAProxy frees a resolution once its requests have their answer).
    std::fs::write(&hosts, "127.0.0.9 app.test\n127.0.0.4 fresh.test\n").unwrap();
    dns.reload();
    dns.wait_for("app.test", false, &["127.0.0.9"]);
    assert_eq!(ask(port, "/v4", "app.test"), "200 v4=127.0.0.9 v6= any= none=", "lbha");
    assert_eq!(ask(port, "/v4", "fresh.test"), "200 v4=127.0.0.4 v6= any= none=");
    if theirs.is_some() {
        assert_eq!(ask(haproxy_port, "/v4", "app.test"), "200 v4=127.0.0.9 v6= any= none=", "HAProxy");
    }
}

/// An HTTP server on `ip:port` answering its own address and the request's path.
fn backend_on(ip: &'static str, port: u16) -> std::thread::JoinHandle<()> {
    let l = TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
    std::thread::spawn(move || {
        for s in l.incoming().take(20) {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let Some(head) = read_request_head(&mut s) else { continue };
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            if path == "/stop" {
                return;
            }
            let body = format!("{ip} {path}");
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes());
        }
    })
}

#[test]
fn the_recipe_reaches_the_resolved_address_through_a_0_0_0_0_server() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("doresolve2");
    let hosts = dir.write("hosts", "127.0.0.2 a.test\n127.0.0.3 b.test\n");
    let dns_port = free_port();
    let dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    dns.wait_for("a.test", false, &["127.0.0.2"]);
    // The server at 0.0.0.0:0 keeps the client's destination port: the backends listen on the
    // frontend's port, on the addresses the names resolve to.
    let port = free_port();
    let backends = [backend_on("127.0.0.2", port), backend_on("127.0.0.3", port)];
    let cfg = format!(
        "resolvers mydns\n  nameserver ns1 127.0.0.1:{dns_port}\n  timeout retry 200ms\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request do-resolve(txn.dstip,mydns,ipv4) hdr(host),lower\n  \
         http-request deny if !{{ var(txn.dstip) -m found }}\n  \
         http-request set-dst var(txn.dstip)\n  default_backend b\n\
         backend b\n  server clear 0.0.0.0:0\n"
    );
    // The backends listen on the port too: lbha is known to listen once it answers.
    let lbha = Lbha::start_haproxy(&cfg, &[]);
    for _ in 0..200 {
        if ask(port, "/", "nx.test").starts_with("403") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ask(port, "/x", "a.test"), "200 127.0.0.2 /x", "{}", lbha.log_text());
    assert_eq!(ask(port, "/y", "B.test"), "200 127.0.0.3 /y");
    assert_eq!(ask(port, "/z", "nx.test").split(' ').next(), Some("403"), "no address: denied, as the recipe says");
    drop(lbha);
    for ip in ["127.0.0.2", "127.0.0.3"] {
        if let Ok(mut s) = std::net::TcpStream::connect((ip, port)) {
            let _ = s.write_all(b"GET /stop HTTP/1.1\r\n\r\n");
        }
    }
    for b in backends {
        b.join().unwrap();
    }
}

#[test]
fn tcp_request_content_do_resolve_routes_a_mode_tcp_connection() {
    if !dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("doresolve3");
    let hosts = dir.write("hosts", "127.0.0.2 a.test\n");
    let dns_port = free_port();
    let dns = Dnsmasq::start(&dir.0, &hosts, dns_port);
    dns.wait_for("a.test", false, &["127.0.0.2"]);
    let port = free_port();
    let backend = backend_on("127.0.0.2", port);
    let cfg = format!(
        "resolvers mydns\n  nameserver ns1 127.0.0.1:{dns_port}\n  timeout retry 200ms\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         tcp-request content do-resolve(sess.dstip,mydns,ipv4) str(a.test)\n  \
         tcp-request content reject if !{{ var(sess.dstip) -m found }}\n  \
         tcp-request content set-dst var(sess.dstip)\n  default_backend b\n\
         backend b\n  server clear 0.0.0.0:0\n"
    );
    let lbha = Lbha::start_haproxy(&cfg, &[]);
    let mut got = String::new();
    for _ in 0..200 {
        got = ask(port, "/t", "x");
        if got.starts_with("200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(got, "200 127.0.0.2 /t", "{}", lbha.log_text());
    drop(lbha);
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.2", port)) {
        let _ = s.write_all(b"GET /stop HTTP/1.1\r\n\r\n");
    }
    backend.join().unwrap();
}
