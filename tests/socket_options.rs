//! Socket options of listeners and connections: dual-stack IPv6 binds (`v4v6`, `v6only` and
//! HAProxy's default), TCP keepalive. Real lbha, real IPv4 and IPv6 clients on loopback.

mod common;
use common::*;
use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

/// GET / from `ip`: the body, or `None` when the connection is refused.
fn get_from(ip: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect((ip.parse::<IpAddr>().unwrap(), port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    Some(read_response(&mut s, false).unwrap().text())
}

fn dual_stack_system() -> bool {
    let ok = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|s| s.trim() == "0")
        && std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("skipped: no ::1 or net.ipv6.bindv6only is not 0");
    }
    ok
}

fn answer(name: &str, binds: &str, body: &str) -> String {
    format!("frontend {name}\n{binds}  http-request return status 200 content-type text/plain string {body}\n")
}

const DEFAULTS: &str = "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n";

#[test]
fn an_ipv6_wildcard_bind_serves_ipv4_clients_as_haproxy_does() {
    if !dual_stack_system() {
        return;
    }
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "{DEFAULTS}{}{}{}",
        answer("plain", &format!("  bind :::{p1}\n"), "plain"),
        answer("both", &format!("  bind :::{p2} v4v6\n"), "both"),
        answer("six", &format!("  bind :::{p3} v6only\n"), "six"),
    );
    let _l = Lbha::start_haproxy(&cfg, &[p1, p2, p3]);
    assert_eq!(get_from("127.0.0.1", p1).as_deref(), Some("plain"));
    assert_eq!(get_from("::1", p1).as_deref(), Some("plain"));
    assert_eq!(get_from("127.0.0.1", p2).as_deref(), Some("both"));
    assert_eq!(get_from("::1", p2).as_deref(), Some("both"));
    assert_eq!(get_from("127.0.0.1", p3), None, "v6only refuses IPv4 clients");
    assert_eq!(get_from("::1", p3).as_deref(), Some("six"));
}

#[test]
fn ipv4_and_ipv6_wildcard_binds_of_one_port_both_serve() {
    if !dual_stack_system() {
        return;
    }
    // Two frontends on one port, as HAProxy allows (its listeners use SO_REUSEPORT): an IPv4
    // client reaches the IPv4 bind, the more specific one; an IPv6 client the other.
    let (p, q) = (free_port(), free_port());
    let cfg = format!(
        "{DEFAULTS}{}{}",
        answer("v4", &format!("  bind 0.0.0.0:{p}\n  bind 127.0.0.1:{q}\n"), "v4"),
        answer("v6", &format!("  bind :::{p}\n  bind :::{q}\n"), "v6"),
    );
    let l = Lbha::start_haproxy(&cfg, &[p, q]);
    for port in [p, q] {
        for _ in 0..3 {
            assert_eq!(get_from("127.0.0.1", port).as_deref(), Some("v4"));
            assert_eq!(get_from("::1", port).as_deref(), Some("v6"));
        }
    }
    // `lbha check` takes it too.
    let (code, out, err) = l.cli(&["check", "--haproxy-config", l.config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `ss` lines of established TCP sockets matching `filter`, with their timers.
fn ss(filter: &str) -> Vec<String> {
    let out = std::process::Command::new("ss").args(["-tnoH", "state", "established", filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// `option tcpka` (and `clitcpka`/`srvtcpka`): SO_KEEPALIVE on lbha's client and server sockets,
/// seen by the kernel (`ss` shows a keepalive timer); without it, none.
#[test]
fn tcp_keepalive_is_set_on_the_sides_asked_for() {
    require_tool("ss", "iproute2");
    let echo_port = echo_server();
    let (both, client_only, neither) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "{DEFAULTS}listen both\n  mode tcp\n  bind 127.0.0.1:{both}\n  option tcpka\n  server e 127.0.0.1:{echo_port}\n\
         listen client_only\n  mode tcp\n  bind 127.0.0.1:{client_only}\n  option clitcpka\n  server e 127.0.0.1:{echo_port}\n\
         listen neither\n  mode tcp\n  bind 127.0.0.1:{neither}\n  server e 127.0.0.1:{echo_port}\n"
    );
    let _l = Lbha::start_haproxy(&cfg, &[both, client_only, neither]);
    for (port, client_side, server_side) in [(both, true, true), (client_only, true, false), (neither, false, false)] {
        let mut c = connect(port);
        assert_eq!(echo(&mut c, b"hello").unwrap(), b"hello");
        let local = c.local_addr().unwrap().port();
        // lbha's accepted socket: local port `port`, peer our client.
        let accepted = ss(&format!("( sport = :{port} and dport = :{local} )"));
        assert_eq!(accepted.len(), 1, "{accepted:?}");
        assert_eq!(accepted[0].contains("keepalive"), client_side, "port {port}: {accepted:?}");
        // lbha's connection to the server: the only one to the echo server now.
        let to_server = ss(&format!("( dport = :{echo_port} )"));
        assert_eq!(to_server.len(), 1, "{to_server:?}");
        assert_eq!(to_server[0].contains("keepalive"), server_side, "port {port}: {to_server:?}");
        drop(c);
        // Wait (bounded) for lbha to close its server connection before the next case.
        for _ in 0..500 {
            if ss(&format!("( dport = :{echo_port} )")).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// In HTTP mode the server connections come from the pool: `option srvtcpka` reaches them too.
#[test]
fn http_server_connections_get_tcp_keepalive() {
    require_tool("ss", "iproute2");
    let a = Backend::start("A");
    let web = free_port();
    let cfg =
        format!("{DEFAULTS}listen web\n  bind 127.0.0.1:{web}\n  option srvtcpka\n  server a 127.0.0.1:{}\n", a.port);
    let _l = Lbha::start_haproxy(&cfg, &[web]);
    assert_eq!(get(web, "/").text(), "A");
    // The connection stays in the pool, idle and established.
    let to_server = ss(&format!("( dport = :{} )", a.port));
    assert!(!to_server.is_empty() && to_server.iter().all(|l| l.contains("keepalive")), "{to_server:?}");
}

/// Connections waiting in the accept queue of the socket listening on 127.0.0.1:`port`, from
/// `/proc/net/tcp` (`rx_queue` of a listening socket).
fn accept_queue(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
                .then(|| usize::from_str_radix(f[4].split(':').nth(1)?, 16).ok())
                .flatten()
        })
        .unwrap_or(0)
}

/// `rate-limit sessions`: past the rate, connections wait in the kernel's backlog (HAProxy's
/// behaviour) and are all served in the end; none is refused.
#[test]
fn rate_limited_connections_wait_in_the_backlog_and_are_all_served() {
    let web = free_port();
    let cfg =
        format!("{DEFAULTS}{}", answer("web", &format!("  bind 127.0.0.1:{web}\n  rate-limit sessions 2\n"), "ok"));
    let _l = Lbha::start_haproxy(&cfg, &[web]);
    // Six connections at once: two a second get accepted, the others wait unaccepted.
    let conns: Vec<TcpStream> = (0..6).map(|_| connect(web)).collect();
    let mut waited = 0;
    for _ in 0..100 {
        waited = waited.max(accept_queue(web));
        if waited > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(waited > 0, "connections past the rate should wait in the accept queue");
    let handles: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
                read_response(&mut s, false).map(|r| r.text())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), "ok");
    }
}
