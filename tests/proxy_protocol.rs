//! PROXY protocol end to end, with the real HAProxy 2.6 on both sides of lbha:
//! client (from 127.0.0.2) → haproxy `send-proxy[-v2]` → lbha `accept-proxy` → lbha
//! `send-proxy[-v2]` → haproxy `accept-proxy`, which answers with the `src` it was told. The
//! client's own address and port must survive both hops, in TCP and HTTP mode, v1 and v2. Also:
//! a missing or malformed header closes the connection and is logged; `expect_proxy` with a
//! condition; health checks carry the header (`check-send-proxy`).

mod common;
mod kit;

use common::*;
use kit::{Web, wait_log};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_haproxy(dir: &TempDir, cfg: &str, ports: &[u16]) -> Haproxy {
    let path = dir.write("haproxy.cfg", cfg);
    let bin = haproxy_bin().expect("checked by the caller");
    let child = Command::new(bin)
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let mut h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    for &p in ports {
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(h.0.try_wait().unwrap().is_none(), "haproxy exited; config:\n{cfg}");
            assert!(Instant::now() < deadline, "haproxy did not listen on {p}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    h
}

/// A connection to 127.0.0.1:`port` from 127.0.0.2, so the address lbha sees from its peer
/// (127.0.0.1, haproxy) differs from the client's.
fn connect_from_2(port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send_proxy_kw(v2: bool) -> &'static str {
    if v2 { "send-proxy-v2" } else { "send-proxy" }
}

/// Runs the chain with `mode` in lbha, `v_in` from haproxy to lbha and `v_out` from lbha on.
fn chain(mode: &str, v_in_2: bool, v_out_2: bool) {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("pp-chain");
    let (front, mid, back) = (free_port(), free_port(), free_port());
    let hcfg = format!(
        "global\n  maxconn 100\ndefaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend front\n  mode tcp\n  bind 127.0.0.1:{front}\n  default_backend to_lbha\n\
         backend to_lbha\n  mode tcp\n  server l 127.0.0.1:{mid} {}\n\
         frontend back\n  mode http\n  bind 127.0.0.1:{back} accept-proxy\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%[src]:%[src_port] %[dst_port]\"\n",
        send_proxy_kw(v_in_2)
    );
    let _h = start_haproxy(&dir, &hcfg, &[front, back]);
    let out_key = if v_out_2 { "send_proxy_v2" } else { "send_proxy" };
    let lcfg = format!(
        r#"
[defaults]
mode = "{mode}"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}

[[listen]]
name = "mid"
bind = ["127.0.0.1:{mid} accept-proxy"]
servers = [{{ name = "h", addr = "127.0.0.1:{back}", {out_key} = true }}]
"#
    );
    let l = Lbha::start(&lcfg, &[]);
    // lbha's port refuses a connection without a header; wait for it to listen without one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", mid)).is_err() {
        assert!(Instant::now() < deadline, "lbha did not listen:\n{}", l.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        let mut c = connect_from_2(front);
        let me = c.local_addr().unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let resp = read_response(&mut c, false).unwrap_or_else(|e| panic!("no answer: {e}\n{}", l.log_text()));
        assert_eq!(resp.status, 200, "{}", l.log_text());
        // The destination is the first hop's (haproxy's front port), carried through lbha.
        assert_eq!(resp.text(), format!("{}:{} {front}", me.ip(), me.port()), "{}", l.log_text());
    }
}

#[test]
fn tcp_mode_v2_in_v1_out() {
    chain("tcp", true, false);
}

#[test]
fn tcp_mode_v1_in_v2_out() {
    chain("tcp", false, true);
}

#[test]
fn http_mode_v1_in_v2_out() {
    chain("http", false, true);
}

#[test]
fn http_mode_v2_in_v1_out() {
    chain("http", true, false);
}

fn lbha_http(bind: &str, web: &Web, extra: &str) -> Lbha {
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "2s", server = "5s" }}

[[frontend]]
name = "f"
bind = ["{bind}"]
forwardfor = true
default_backend = "b"
{extra}

[[backend]]
name = "b"
servers = [{{ name = "w", addr = "127.0.0.1:{}" }}]
"#,
        web.port
    );
    Lbha::start(&cfg, &[])
}

fn wait_listening(l: &Lbha, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "lbha did not listen:\n{}", l.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the peer closes; true when it closed (or reset) without sending anything.
fn closed_silently(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(c.read(&mut buf), Ok(0) | Err(_)) && c.read(&mut buf).map_or(true, |n| n == 0)
}

#[test]
fn a_missing_or_malformed_header_closes_the_connection_and_is_logged() {
    let web = Web::start("W");
    let port = free_port();
    let l = lbha_http(&format!("127.0.0.1:{port} accept-proxy"), &web, "");
    wait_listening(&l, port);
    // A request where the header should be.
    let mut c = connect(port);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(closed_silently(&mut c), "no answer to a request without a header");
    wait_log(|| l.log_text(), "PROXY protocol error, connection closed: not a PROXY protocol header");
    // A v1 header with a bad address.
    let mut c = connect(port);
    c.write_all(b"PROXY TCP4 300.1.1.1 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(closed_silently(&mut c));
    wait_log(|| l.log_text(), "invalid v1 header");
    // A good one: the client's address is the header's, for logs and X-Forwarded-For.
    let mut c = connect(port);
    c.write_all(
        b"PROXY TCP4 192.0.2.9 198.51.100.1 4321 80\r\nGET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let resp = read_response(&mut c, false).unwrap();
    assert_eq!(resp.status, 200);
    let req = web.requests().pop().expect("the request reached the server");
    assert_eq!(req.header("x-forwarded-for"), Some("192.0.2.9"));
    assert_eq!(web.requests().len(), 1, "the refused connections reached no server");
}

#[test]
fn a_client_sending_nothing_is_closed_after_timeout_client() {
    let web = Web::start("W");
    let port = free_port();
    let l = lbha_http(&format!("127.0.0.1:{port} accept-proxy"), &web, "");
    wait_listening(&l, port);
    let mut c = connect(port);
    assert!(closed_silently(&mut c));
    wait_log(|| l.log_text(), "timeout waiting for the PROXY header");
}

#[test]
fn expect_proxy_applies_only_where_its_condition_holds() {
    let web = Web::start("W");
    let port = free_port();
    let l = lbha_http(&format!("127.0.0.1:{port}"), &web, "expect_proxy = { if = \"{ src 127.0.0.2 }\" }");
    wait_listening(&l, port);
    // From 127.0.0.1: no header expected.
    assert_eq!(get(port, "/").status, 200);
    // From 127.0.0.2: a header is required...
    let mut c = connect_from_2(port);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(closed_silently(&mut c));
    wait_log(|| l.log_text(), "PROXY protocol error");
    // ...and used.
    let mut c = connect_from_2(port);
    c.write_all(b"PROXY TCP4 203.0.113.5 127.0.0.1 999 80\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    let xff: Vec<_> = web.requests().iter().filter_map(|r| r.header("x-forwarded-for").map(str::to_string)).collect();
    assert_eq!(xff, ["127.0.0.1", "203.0.113.5"]);
}

#[test]
fn health_checks_send_the_header_to_an_accept_proxy_server() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("pp-check");
    let (v1, v2) = (free_port(), free_port());
    let mut hcfg = String::from(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n",
    );
    for p in [v1, v2] {
        hcfg.push_str(&format!(
            "frontend f{p}\n  bind 127.0.0.1:{p} accept-proxy\n  http-request return status 200 content-type text/plain string ok\n"
        ));
    }
    let _h = start_haproxy(&dir, &hcfg, &[v1, v2]);
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
check = {{ http = "GET /health" }}
servers = [
  {{ name = "one", addr = "127.0.0.1:{v1}", check = true, inter = 100, send_proxy = true }},
  {{ name = "two", addr = "127.0.0.1:{v2}", check = true, inter = 100, send_proxy_v2 = true, check_send_proxy = true }},
]
"#
    );
    let l = Lbha::start(&cfg, &[port]);
    wait_log(|| l.log_text(), "Health check for server web/one succeeded");
    wait_log(|| l.log_text(), "Health check for server web/two succeeded");
    let log = l.log_text();
    assert!(!log.contains("failed"), "{log}");
}

#[test]
fn a_stop_does_not_wait_timeout_client_for_a_header() {
    let web = Web::start("W");
    let port = free_port();
    let cfg = format!(
        r#"
[global]
hard_stop_after = "60s"

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "120s", server = "5s" }}

[[frontend]]
name = "f"
bind = ["127.0.0.1:{port} accept-proxy"]
default_backend = "b"

[[backend]]
name = "b"
servers = [{{ name = "w", addr = "127.0.0.1:{}" }}]
"#,
        web.port
    );
    let mut l = Lbha::start(&cfg, &[]);
    wait_listening(&l, port);
    // A connection that sends nothing, held open while lbha stops.
    let _silent = connect(port);
    std::thread::sleep(Duration::from_millis(200));
    l.signal(15);
    // Well before `timeout client` (120 s) and `hard_stop_after` (60 s).
    let st = l.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("lbha still running:\n{}", l.log_text()));
    assert!(st.success(), "{st}");
    assert!(l.log_text().contains("stopping before the PROXY header came"), "{}", l.log_text());
}

#[test]
fn proxy_v2_options_unique_id_sends_the_request_id_to_haproxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("pp-uid");
    let (front, back) = (free_port(), free_port());
    let hcfg = format!(
        "global\n  maxconn 100\ndefaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend back\n  mode http\n  bind 127.0.0.1:{back} accept-proxy\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"uid=%[fc_pp_unique_id]\"\n"
    );
    let _h = start_haproxy(&dir, &hcfg, &[back]);
    let lcfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}

[[listen]]
name = "front"
bind = ["127.0.0.1:{front}"]
unique_id_format = "req-%[req.hdr(x-n)]"
servers = [{{ name = "h", addr = "127.0.0.1:{back}", send_proxy_v2 = true, proxy_v2_options = "unique-id" }}]
"#
    );
    let l = Lbha::start(&lcfg, &[front]);
    for n in 1..=3 {
        let r = raw(front, format!("GET / HTTP/1.1\r\nHost: t\r\nx-n: {n}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("no answer: {e}\n{}", l.log_text()));
        assert_eq!(r.text(), format!("uid=req-{n}"), "{}", l.log_text());
    }
}

/// With `accept-proxy`, the address the client reached is the header's (HAProxy's `dst` and
/// `%fi`), and `set-dst` changes what `send-proxy` tells the next hop (it used to pass the
/// received header's destination on, whatever the rules did).
#[test]
fn the_received_destination_is_dst_and_set_dst_reaches_send_proxy() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("pp-dst");
    let (mid, back) = (free_port(), free_port());
    let hcfg = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend back\n  bind 127.0.0.1:{back} accept-proxy\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%[dst]:%[dst_port] %[req.hdr(x-dst)]\"\n"
    );
    let _h = start_haproxy(&dir, &hcfg, &[back]);
    let lcfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5s", server = "5s" }}

[[listen]]
name = "mid"
bind = ["127.0.0.1:{mid} accept-proxy"]
http_request = [
  {{ set_header = {{ name = "X-Dst", value = "%[dst]:%[dst_port]" }} }},
  {{ set_dst = "str(203.0.113.77)", if = "{{ path /moved }}" }},
]
servers = [{{ name = "h", addr = "127.0.0.1:{back}", send_proxy_v2 = true }}]
"#
    );
    let l = Lbha::start(&lcfg, &[]);
    wait_listening(&l, mid);
    for (path, want) in
        [("/", "198.51.100.7:8443 198.51.100.7:8443"), ("/moved", "203.0.113.77:8443 198.51.100.7:8443")]
    {
        let mut c = connect(mid);
        let req = format!(
            "PROXY TCP4 192.0.2.5 198.51.100.7 5555 8443\r\nGET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        );
        c.write_all(req.as_bytes()).unwrap();
        let resp = read_response(&mut c, false).unwrap_or_else(|e| panic!("no answer: {e}\n{}", l.log_text()));
        assert_eq!(resp.status, 200, "{}", l.log_text());
        assert_eq!(resp.text(), want, "{path}\n{}", l.log_text());
    }
}
