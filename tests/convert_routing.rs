//! The seed's configs run through `lbha run --haproxy-config` on loopback and route as the
//! notes describe. The test rewrites bind and server addresses to 127.0.0.1 ports; everything
//! else is the seed's text.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn seed(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds").join(name)).unwrap()
}

/// Replaces every `bind ADDR` by `bind 127.0.0.1:PORT` (ports taken from `binds` by the seed's
/// address) and every `server NAME ADDR` by the loopback address in `servers`.
fn to_loopback(cfg: &str, binds: &HashMap<&str, u16>, servers: &HashMap<&str, u16>) -> String {
    let mut out = String::new();
    for line in cfg.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let rewritten = match words.as_slice() {
            ["bind", addr, ..] => binds.get(addr).map(|p| line.replacen(addr, &format!("127.0.0.1:{p}"), 1)),
            ["server", name, addr, ..] => servers.get(name).map(|p| line.replacen(addr, &format!("127.0.0.1:{p}"), 1)),
            _ => None,
        };
        out.push_str(&rewritten.unwrap_or_else(|| line.to_string()));
        out.push('\n');
    }
    out
}

fn get_auth(port: u16, path: &str, user_pass: Option<&str>) -> Resp {
    let auth = user_pass.map(|up| format!("Authorization: Basic {}\r\n", base64(up.as_bytes()))).unwrap_or_default();
    raw(port, format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n").as_bytes()).unwrap()
}

fn base64(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn reference_config_routes_php_and_static_and_fails_over_on_nbsrv() {
    let php1 = Backend::start("php1");
    let php2 = Backend::start("php2");
    let bak = Backend::start("php_bak");
    let stat = Backend::start("static1");
    let (web, status) = (free_port(), free_port());
    let binds = HashMap::from([("0.0.0.0:80", web), ("0.0.0.0:1080", status)]);
    let servers = HashMap::from([
        ("php_server_1", php1.port),
        ("php_server_2", php2.port),
        ("php_server_bak", bak.port),
        ("static_server_1", stat.port),
    ]);
    let cfg = to_loopback(&seed("02_reference.cfg"), &binds, &servers);
    let lb = Lbha::start_haproxy(&cfg, &[web, status]);

    // `use_backend php_server if php_web` (url_reg /*.php$) and `use_backend static_server if
    // static_web`; `balance source` keeps one client on one php server.
    let php = get(web, "/x.php").text();
    assert!(php == "php1" || php == "php2", "{php}");
    for _ in 0..5 {
        assert_eq!(get(web, "/x.php").text(), php);
        assert_eq!(get(web, "/a.css").text(), "static1");
        assert_eq!(get(web, "/img/logo.png").text(), "static1");
    }
    // url_reg sees the query string too, so `$` no longer follows the extension.
    assert_eq!(get(web, "/img/logo.png?v=2").status, 503);
    // No rule matches and the frontend has no default_backend: 503, as in HAProxy.
    assert_eq!(get(web, "/index.html").status, 503);

    // The status page: `stats auth admin:password`, `stats realm Private lands` (one word).
    let r = get_auth(status, "/admin?stats", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Private\""));
    let r = get_auth(status, "/admin?stats", Some("admin:password"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("php_server_1"));

    // `use_backend php_server if static_down` (nbsrv(static_server) lt 1): once the static
    // server's checks fail (fall 3, inter 2000), static files go to php.
    drop(stat);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = get(web, "/a.css").text();
        if last.starts_with("php") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(last, php, "static files did not fail over:\n{}", lb.log_text());
    assert!(
        php1.seen.requests.load(std::sync::atomic::Ordering::SeqCst)
            + php2.seen.requests.load(std::sync::atomic::Ordering::SeqCst)
            > 0
    );
}

#[test]
fn proxy_status_config_balances_and_serves_stats() {
    let w1 = Backend::start("web_1");
    let w2 = Backend::start("web_2");
    let (http, st) = (free_port(), free_port());
    let binds = HashMap::from([("0.0.0.0:9998", http), ("0.0.0.0:9999", st)]);
    let servers = HashMap::from([("web_1", w1.port), ("web_2", w2.port)]);
    let cfg = to_loopback(&seed("01_proxy_status.cfg"), &binds, &servers);
    let _lb = Lbha::start_haproxy(&cfg, &[http, st]);
    let mut seen: Vec<String> = (0..6).map(|_| get(http, "/").text()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["web_1", "web_2"]);
    // `option forwardfor` from defaults reaches the servers.
    let xff = |b: &Backend| {
        b.seen.last_headers.lock().unwrap().iter().find(|(k, _)| k == "x-forwarded-for").map(|(_, v)| v.clone())
    };
    assert_eq!(xff(&w1).as_deref(), Some("127.0.0.1"));
    assert_eq!(get_auth(st, "/haproxy-status", None).status, 401);
    assert_eq!(get_auth(st, "/haproxy-status", Some("haadmin:123456")).status, 200);
    assert_eq!(get_auth(st, "/haproxy-status;csv", Some("haadmin:123456")).status, 200);
}

#[test]
fn health_check_with_host_header_from_the_seed() {
    // The seed's `option httpchk HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com`: the check
    // reaches the server with that method, path and Host.
    let b = Backend::start("ok");
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\nlisten web\n  bind 127.0.0.1:{port}\n  option httpchk HEAD /index.jsp HTTP/1.1\\r\\nHost:\\ www.xxx.com\n  server web1 127.0.0.1:{} check inter 200\n",
        b.port
    );
    let lb = Lbha::start_haproxy(&cfg, &[port]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut host = None;
    while Instant::now() < deadline && host.is_none() {
        host = b.seen.last_headers.lock().unwrap().iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(host.as_deref(), Some("www.xxx.com"), "{}", lb.log_text());
    assert_eq!(get(port, "/").text(), "ok");
}

#[test]
fn sighup_reloads_the_haproxy_file() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let cfg = |server: u16| {
        format!("defaults\n  mode http\nlisten web\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{server}\n")
    };
    let lb = Lbha::start_haproxy(&cfg(a.port), &[port]);
    assert_eq!(get(port, "/").text(), "A");
    std::fs::write(&lb.config, cfg(b.port)).unwrap();
    lb.signal(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline && last != "B" {
        std::thread::sleep(Duration::from_millis(50));
        last = get(port, "/").text();
    }
    assert_eq!(last, "B", "{}", lb.log_text());
    // A broken file keeps the running configuration and says where the problem is.
    std::fs::write(&lb.config, "listen web\n  bind \"127.0.0.1\n").unwrap();
    lb.signal(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !lb.log_text().contains("unterminated") {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lb.log_text().contains("haproxy.cfg:2:8: unterminated \" quote"), "{}", lb.log_text());
    assert_eq!(get(port, "/").text(), "B");
}

#[test]
fn session_config_keeps_a_client_on_its_server_by_cookie() {
    // The seed's `cookie SERVERID insert indirect nocache` with `server node1 ... cookie A`.
    let n1 = Backend::start("node1");
    let n2 = Backend::start("node2");
    let web = free_port();
    let binds = HashMap::from([("127.0.0.1:8080", web)]);
    let servers = HashMap::from([("node1", n1.port), ("node2", n2.port)]);
    let cfg = to_loopback(&seed("04_session.cfg"), &binds, &servers);
    let _lb = Lbha::start_haproxy(&cfg, &[web]);
    let first = get(web, "/cookie/x");
    let set = first.header("set-cookie").unwrap_or_default().to_string();
    let (server, value) = match first.text().as_str() {
        "node1" => ("node1", "A"),
        "node2" => ("node2", "B"),
        other => panic!("unexpected body {other:?}"),
    };
    assert!(set.starts_with(&format!("SERVERID={value}")), "{set}");
    for _ in 0..6 {
        let r = raw(
            web,
            format!("GET /cookie/y HTTP/1.1\r\nHost: test\r\nCookie: SERVERID={value}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.text(), server);
    }
    // `indirect`: the server never sees the persistence cookie.
    let seen = if server == "node1" { &n1 } else { &n2 };
    assert!(!seen.seen.last_headers.lock().unwrap().iter().any(|(k, v)| k == "cookie" && v.contains("SERVERID")));
}
