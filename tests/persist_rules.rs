//! `use-server`, `force-persist` and `ignore-persist` end to end: one haproxy.cfg runs under the
//! real HAProxy 2.6 and, converted, under lbha, each over its own three test servers on loopback;
//! every request must reach the same server, get the same `Set-Cookie` and show the server the
//! same `Cookie`, and each is also checked against what the manual says it should do.
//!
//! `balance first` keeps the balanced choice fixed (server `a`, the first usable one), so a
//! request that no rule or cookie designates lands on `a` in both.

mod common;
mod kit;

use common::*;
use kit::Web;

/// Server `c` is in maintenance (`disabled`): only `force-persist` reaches it.
fn config(port: u16, webs: &[Web; 3]) -> String {
    format!(
        r#"
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s

listen web
  bind 127.0.0.1:{port}
  balance first
  cookie SRV insert indirect
  acl to_b path_beg /b
  ignore-persist if {{ path_beg /static }}
  force-persist if {{ req.hdr(x-force) -m found }}
  use-server b if to_b
  use-server %[req.hdr(x-srv)] if {{ req.hdr(x-srv) -m found }}
  use-server c if {{ path_beg /c }}
  use-server b if {{ path_beg /c }}
  server a 127.0.0.1:{} cookie a
  server b 127.0.0.1:{} cookie b
  server c 127.0.0.1:{} cookie c disabled
"#,
        webs[0].port, webs[1].port, webs[2].port
    )
}

/// A request: its path and extra header lines.
struct Case {
    path: &'static str,
    headers: &'static str,
    /// The server it reaches, the `SRV` cookie set, the `Cookie` the server sees.
    want: (&'static str, Option<&'static str>, Option<&'static str>),
    why: &'static str,
}

const CASES: &[Case] = &[
    Case { path: "/x", headers: "", want: ("A", Some("SRV=a"), None), why: "balanced, cookie inserted" },
    Case { path: "/x", headers: "Cookie: SRV=b\r\n", want: ("B", None, None), why: "the cookie's server" },
    Case {
        path: "/b",
        headers: "Cookie: SRV=a\r\n",
        want: ("B", None, None),
        why: "use-server before the cookie; direct: no cookie set; indirect: still stripped",
    },
    Case {
        path: "/static/x",
        headers: "Cookie: SRV=b\r\n",
        want: ("A", None, None),
        why: "ignore-persist: the cookie assigns nothing and none is set (indirect still strips it)",
    },
    Case {
        path: "/x",
        headers: "Cookie: SRV=c\r\n",
        want: ("A", Some("SRV=a"), None),
        why: "the cookie's server is in maintenance: balanced, cookie re-set",
    },
    Case {
        path: "/x",
        headers: "Cookie: SRV=c\r\nX-Force: 1\r\n",
        want: ("C", None, None),
        why: "force-persist: the cookie's server in maintenance is taken",
    },
    Case { path: "/x", headers: "X-Srv: b\r\n", want: ("B", None, None), why: "a dynamic use-server name" },
    Case {
        path: "/c",
        headers: "X-Srv: nosuch\r\n",
        want: ("A", Some("SRV=a"), None),
        why: "a dynamic name that names no server ends the rules: balanced",
    },
    Case {
        path: "/c",
        headers: "",
        want: ("B", None, None),
        why: "the rule naming a server in maintenance passes on to the next",
    },
    Case {
        path: "/c",
        headers: "X-Force: 1\r\n",
        want: ("C", None, None),
        why: "force-persist: use-server takes the server in maintenance",
    },
    Case {
        path: "/static/b",
        headers: "",
        want: ("A", None, None),
        why: "ignore-persist does not stop use-server (b only for /b)",
    },
];

/// What `port` does with each case: (server, SRV cookie set, Cookie the server saw).
fn run(port: u16, webs: &[Web; 3]) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let target = format!("{}?n={i}", c.path);
        let r =
            raw(port, format!("GET {target} HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n", c.headers).as_bytes())
                .unwrap();
        let body = r.text();
        let set = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string())
            .find(|v| v.starts_with("SRV="));
        let seen = webs
            .iter()
            .flat_map(|w| w.requests())
            .find(|q| q.target == target)
            .and_then(|q| q.cookie().map(str::to_string));
        out.push((body, set, seen));
    }
    out
}

fn check(who: &str, got: &[(String, Option<String>, Option<String>)]) {
    for (c, g) in CASES.iter().zip(got) {
        let want = (c.want.0.to_string(), c.want.1.map(str::to_string), c.want.2.map(str::to_string));
        assert_eq!(g, &want, "{who}: {} {}: {}", c.path, c.headers.trim(), c.why);
    }
}

#[test]
fn server_rules_choose_as_in_haproxy() {
    let ours = [Web::start("A"), Web::start("B"), Web::start("C")];
    let port = free_port();
    let _l = Lbha::start_haproxy(&config(port, &ours), &[port]);
    let lbha = run(port, &ours);
    check("lbha", &lbha);
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let theirs = [Web::start("A"), Web::start("B"), Web::start("C")];
    let hport = free_port();
    let _h = haproxy(&config(hport, &theirs), hport);
    let hap = run(hport, &theirs);
    check("haproxy", &hap);
    assert_eq!(lbha, hap);
}

/// An RDP Connection Request carrying `Cookie: mstshash=USER`.
fn rdp_request(user: &str) -> Vec<u8> {
    let mut b = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
    b.extend_from_slice(format!("Cookie: mstshash={user}\r\n").as_bytes());
    b.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
    b
}

/// The manual's `balance rdp-cookie` example in mode tcp, with three servers.
fn rdp_config(port: u16, servers: &[u16; 3]) -> String {
    format!(
        r#"
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s

listen tse-farm
  bind 127.0.0.1:{port}
  tcp-request inspect-delay 5s
  tcp-request content accept if RDP_COOKIE
  balance rdp-cookie
  server s1 127.0.0.1:{}
  server s2 127.0.0.1:{}
  server s3 127.0.0.1:{}
"#,
        servers[0], servers[1], servers[2]
    )
}

/// The server tag answering one RDP connection sent in two parts: the cookie line arrives after
/// the connection is open, so the inspect-delay wait is what lets the key be read.
fn rdp_session(port: u16, user: &str) -> String {
    use std::io::Write;
    let mut s = connect(port);
    let req = rdp_request(user);
    s.write_all(&req[..6]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    s.write_all(&req[6..]).unwrap();
    read_to_close(&mut s)
}

/// Each user's sessions all reach one server, and users spread over the servers.
fn check_rdp(who: &str, port: u16) {
    for user in ["alice", "bob"] {
        let first = rdp_session(port, user);
        assert!(!first.is_empty(), "{who}: {user} reached no server");
        for i in 0..8 {
            assert_eq!(rdp_session(port, user), first, "{who}: {user}'s session {i}");
        }
    }
    let spread: std::collections::HashSet<String> = (0..20).map(|n| rdp_session(port, &format!("user{n}"))).collect();
    assert!(spread.len() > 1, "{who}: users spread over the servers: {spread:?}");
}

#[test]
fn balance_rdp_cookie_keeps_each_user_on_one_server() {
    let ours = [tag_server("s1"), tag_server("s2"), tag_server("s3")];
    let port = free_port();
    let _l = Lbha::start_haproxy(&rdp_config(port, &[ours[0].0, ours[1].0, ours[2].0]), &[port]);
    check_rdp("lbha", port);
    // The same config keeps users together under HAProxy too (which server each user reaches
    // is compared key by key in tests/balance_haproxy.rs).
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let theirs = [tag_server("s1"), tag_server("s2"), tag_server("s3")];
    let hport = free_port();
    let _h = haproxy(&rdp_config(hport, &[theirs[0].0, theirs[1].0, theirs[2].0]), hport);
    check_rdp("haproxy", hport);
}

/// `balance hash EXPR` in mode http: one key, one server; no sample, round robin.
#[test]
fn balance_hash_keeps_each_key_on_one_server() {
    let webs = [Web::start("A"), Web::start("B"), Web::start("C")];
    let port = free_port();
    let cfg = format!(
        r#"
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s

listen web
  bind 127.0.0.1:{port}
  balance hash req.hdr(x-user),lower
  server a 127.0.0.1:{}
  server b 127.0.0.1:{}
  server c 127.0.0.1:{}
"#,
        webs[0].port, webs[1].port, webs[2].port
    );
    let _l = Lbha::start_haproxy(&cfg, &[port]);
    let ask = |user: Option<&str>| {
        let h = user.map(|u| format!("X-User: {u}\r\n")).unwrap_or_default();
        raw(port, format!("GET / HTTP/1.1\r\nHost: t\r\n{h}Connection: close\r\n\r\n").as_bytes()).unwrap().text()
    };
    let alice = ask(Some("alice"));
    for i in 0..10 {
        assert_eq!(ask(Some(if i % 2 == 0 { "ALICE" } else { "alice" })), alice, "request {i}: lower applies");
    }
    let spread: std::collections::HashSet<String> = (0..20).map(|n| ask(Some(&format!("user{n}")))).collect();
    assert!(spread.len() > 1, "{spread:?}");
    let rr: std::collections::HashSet<String> = (0..3).map(|_| ask(None)).collect();
    assert_eq!(rr.len(), 3, "without the header: round robin");
}

/// The manual's `use-server` example in mode tcp: servers chosen by the TLS SNI, `weight 0`
/// keeping them out of balancing, and `force-persist` reaching a server in maintenance.
fn sni_config(port: u16, s: &[u16; 4]) -> String {
    format!(
        r#"
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s

listen tls
  bind 127.0.0.1:{port}
  tcp-request inspect-delay 5s
  tcp-request content accept if {{ req.ssl_hello_type 1 }}
  force-persist if {{ req.ssl_sni -i maint.example.com }}
  ignore-persist if {{ req.ssl_sni -i www.example.com }}
  use-server www if {{ req.ssl_sni -i www.example.com }}
  use-server mail if {{ req.ssl_sni -i mail.example.com }}
  use-server down if {{ req.ssl_sni -m end .example.com }}
  use-server %[req.ssl_sni,field(1,.)] if {{ req.ssl_sni -m end .example.org }}
  server www 127.0.0.1:{} weight 0
  server mail 127.0.0.1:{} weight 0
  server down 127.0.0.1:{} disabled
  server default 127.0.0.1:{}
"#,
        s[0], s[1], s[2], s[3]
    )
}

const SNI_CASES: &[(&str, &str, &str)] = &[
    ("www.example.com", "www", "use-server by SNI (ignore-persist does not stop it)"),
    ("mail.example.com", "mail", "use-server by SNI"),
    ("other.example.net", "default", "no rule: balanced over the servers with a weight"),
    ("x.example.com", "default", "the rule's server is in maintenance: passed on, balanced"),
    ("maint.example.com", "down", "force-persist: the server in maintenance is taken"),
    ("mail.example.org", "mail", "a dynamic server name"),
    ("nosuch.example.org", "default", "a dynamic name that names no server: balanced"),
];

fn run_sni(port: u16) -> Vec<String> {
    SNI_CASES.iter().map(|(sni, _, _)| tls_hello(port, sni).unwrap()).collect()
}

#[test]
fn use_server_by_sni_in_mode_tcp_as_in_haproxy() {
    let tags = ["www", "mail", "down", "default"];
    let ours: Vec<_> = tags.iter().map(|t| tag_server(t)).collect();
    let port = free_port();
    let _l = Lbha::start_haproxy(&sni_config(port, &[ours[0].0, ours[1].0, ours[2].0, ours[3].0]), &[port]);
    let lbha = run_sni(port);
    for ((sni, want, why), got) in SNI_CASES.iter().zip(&lbha) {
        assert_eq!(got, want, "lbha: {sni}: {why}");
    }
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let theirs: Vec<_> = tags.iter().map(|t| tag_server(t)).collect();
    let hport = free_port();
    let _h = haproxy(&sni_config(hport, &[theirs[0].0, theirs[1].0, theirs[2].0, theirs[3].0]), hport);
    assert_eq!(run_sni(hport), lbha, "HAProxy chose other servers");
}

/// `persist rdp-cookie`: the `msts` cookie names a server by address and port (Windows' token
/// redirection); the same in lbha and HAProxy, server by server.
#[test]
fn persist_rdp_cookie_follows_the_msts_cookie_as_in_haproxy() {
    let cfg = |port: u16, s: &[u16; 3]| {
        format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\nlisten tse\n  bind 127.0.0.1:{port}\n  tcp-request inspect-delay 5s\n  tcp-request content accept if RDP_COOKIE\n  persist rdp-cookie\n  balance roundrobin\n  server s1 127.0.0.1:{}\n  server s2 127.0.0.1:{}\n  server s3 127.0.0.1:{} disabled\n",
            s[0], s[1], s[2]
        )
    };
    let msts = |port: u16| {
        let mut b = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
        let addr = u32::from_le_bytes([127, 0, 0, 1]);
        b.extend_from_slice(format!("Cookie: msts={addr}.{}.0000\r\n", port.swap_bytes()).as_bytes());
        b
    };
    let session = |port: u16, req: &[u8]| {
        use std::io::Write;
        let mut s = connect(port);
        s.write_all(req).unwrap();
        read_to_close(&mut s)
    };
    let run = |port: u16, s: &[u16; 3]| -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(session(port, &msts(s[1])));
        }
        out.push(session(port, &msts(s[0])));
        // The server in maintenance is not taken: balanced instead.
        let down = session(port, &msts(s[2]));
        out.push(if down == "s3" { down } else { "balanced".into() });
        out
    };
    let want = ["s2", "s2", "s2", "s1", "balanced"];
    let ours = [tag_server("s1"), tag_server("s2"), tag_server("s3")];
    let ports = [ours[0].0, ours[1].0, ours[2].0];
    let port = free_port();
    let _l = Lbha::start_haproxy(&cfg(port, &ports), &[port]);
    assert_eq!(run(port, &ports), want, "lbha");
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let theirs = [tag_server("s1"), tag_server("s2"), tag_server("s3")];
    let hports = [theirs[0].0, theirs[1].0, theirs[2].0];
    let hport = free_port();
    let _h = haproxy(&cfg(hport, &hports), hport);
    assert_eq!(run(hport, &hports), want, "haproxy");
}

/// `option persist`: three listens over the same servers. `b` is DOWN (its check port is closed)
/// but serves; `c` is in maintenance; `d` is DOWN and refuses connections. `p1` has `option
/// persist`, `p2` adds `option redispatch`, `p3` has neither.
fn persist_config(ports: [u16; 3], webs: &[Web; 3], closed: u16, sock: &std::path::Path) -> String {
    let servers = format!(
        "  server a 127.0.0.1:{} cookie a\n  \
         server b 127.0.0.1:{} cookie b check port {closed} inter 100ms fall 1 rise 1\n  \
         server c 127.0.0.1:{} cookie c disabled\n  \
         server d 127.0.0.1:{closed} cookie d check inter 100ms fall 1 rise 1\n",
        webs[0].port, webs[1].port, webs[2].port
    );
    let listen = |name: &str, port: u16, opts: &str| {
        format!(
            "listen {name}\n  bind 127.0.0.1:{port}\n  balance first\n  cookie SRV insert indirect\n{opts}  \
             use-server b if {{ path /usb }}\n  use-server c if {{ path /usc }}\n{servers}"
        )
    };
    format!(
        "global\n  stats socket {}\n\ndefaults\n  mode http\n  retries 1\n  timeout connect 2s\n  \
         timeout client 5s\n  timeout server 5s\n\n{}\n{}\n{}",
        sock.display(),
        listen("p1", ports[0], "  option persist\n"),
        listen("p2", ports[1], "  option persist\n  option redispatch\n"),
        listen("p3", ports[2], ""),
    )
}

/// Waits (bounded) until servers b and d of every listen are DOWN in `show stat`.
fn wait_down(stat: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = stat();
        let down = out
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split(',').collect();
                f.len() > 17 && ["b", "d"].contains(&f[1]) && f[17].starts_with("DOWN")
            })
            .count();
        if down == 6 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "b and d never went DOWN:\n{out}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// (listen, cookie, path, expected status and body). `/usb` and `/usc` are `use-server` to
/// the DOWN `b` and the maintenance `c`: `option persist` takes them there too.
const PERSIST_CASES: &[(usize, &str, &str, &str)] = &[
    (0, "b", "/", "200 B"),
    (0, "c", "/", "200 C"),
    (0, "d", "/", "503"),
    (0, "", "/", "200 A"),
    (0, "", "/usb", "200 B"),
    (0, "", "/usc", "200 C"),
    (1, "b", "/", "200 B"),
    (1, "d", "/", "200 A"),
    (2, "b", "/", "200 A"),
    (2, "c", "/", "200 A"),
    (2, "d", "/", "200 A"),
    (2, "", "/usb", "200 A"),
    (2, "", "/usc", "200 A"),
];

fn run_persist(ports: [u16; 3]) -> Vec<String> {
    PERSIST_CASES
        .iter()
        .map(|(l, cookie, path, _)| {
            let cookie = if cookie.is_empty() { String::new() } else { format!("Cookie: SRV={cookie}\r\n") };
            let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{cookie}Connection: close\r\n\r\n");
            let r = raw(ports[*l], req.as_bytes()).unwrap();
            if r.status == 200 { format!("200 {}", r.text()) } else { r.status.to_string() }
        })
        .collect()
}

#[test]
fn option_persist_sends_to_a_down_server_as_in_haproxy() {
    let want: Vec<String> = PERSIST_CASES.iter().map(|c| c.3.to_string()).collect();
    let dir = TempDir::new("option-persist");
    let closed = free_port();
    let ours = [Web::start("A"), Web::start("B"), Web::start("C")];
    let ports = [free_port(), free_port(), free_port()];
    let l = Lbha::start_haproxy(&persist_config(ports, &ours, closed, &dir.0.join("l.sock")), &ports);
    wait_down(|| l.ctl(&["show stat"]));
    let lbha = run_persist(ports);
    assert_eq!(lbha, want, "lbha");
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let theirs = [Web::start("A"), Web::start("B"), Web::start("C")];
    let hports = [free_port(), free_port(), free_port()];
    let sock = dir.0.join("h.sock");
    let _h = haproxy(&persist_config(hports, &theirs, closed, &sock), hports[0]);
    wait_down(|| ask_socket(&sock, "show stat"));
    assert_eq!(run_persist(hports), want, "haproxy");
}
