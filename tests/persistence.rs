//! Session persistence end to end: the real lbha binary, test servers on loopback that the tests
//! stop and start. Each mode keeps 100 requests on one server, holds for every request of one
//! kept-alive connection, survives the death of its server by moving (and re-setting the
//! cookie), and stick entries expire.

mod common;
mod kit;

use common::*;
use kit::Web;
use std::io::Write;
use std::time::Duration;

/// A listen section balancing over `servers` (name, port, extra server keys).
fn config(port: u16, servers: &[(&str, u16, &str)], backend: &str) -> String {
    let list: Vec<String> =
        servers.iter().map(|(n, p, extra)| format!("{{ name = \"{n}\", addr = \"127.0.0.1:{p}\"{extra} }}")).collect();
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
balance = "roundrobin"
servers = [{}]
{backend}
"#,
        list.join(", ")
    )
}

/// Servers `a` and `b` (with `cookie = "ca"` / `"cb"` when `cookies`) and the backend settings.
fn ab_config(port: u16, a: &Web, b: &Web, cookies: bool, backend: &str) -> String {
    let (ca, cb) = if cookies { (", cookie = \"ca\"", ", cookie = \"cb\"") } else { ("", "") };
    config(port, &[("a", a.port, ca), ("b", b.port, cb)], backend)
}

/// GET on a fresh connection with an optional Cookie header.
fn get_with(port: u16, path: &str, cookie: Option<&str>, extra: &str) -> Resp {
    let c = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    raw(port, format!("GET {path} HTTP/1.1\r\nHost: t\r\n{c}{extra}Connection: close\r\n\r\n").as_bytes()).unwrap()
}

/// `NAME=value` of the response's Set-Cookie called `name`.
fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cache_control(r: &Resp) -> Vec<&str> {
    r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("cache-control")).map(|(_, v)| v.as_str()).collect()
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_string()
}

#[test]
fn cookie_insert_indirect_nocache_keeps_100_requests_on_one_server() {
    let a = Web::start("A");
    let b = Web::start("B");
    for w in [&a, &b] {
        w.add_header("Cache-Control: max-age=60");
    }
    let port = free_port();
    let cfg = ab_config(
        port,
        &a,
        &b,
        true,
        r#"cookie = { name = "SERVERID", mode = "insert", indirect = true, nocache = true, httponly = true }"#,
    );
    let _l = Lbha::start(&cfg, &[port]);
    // Without the cookie, requests alternate: persistence is what keeps them together below.
    let plain: Vec<String> = (0..4).map(|_| get_with(port, "/", None, "").text()).collect();
    assert!(plain.contains(&"A".into()) && plain.contains(&"B".into()), "{plain:?}");

    let first = get_with(port, "/", None, "");
    let sc = set_cookie(&first, "SERVERID").expect("Set-Cookie on the first response");
    let want = first.text();
    let value = if want == "A" { "ca" } else { "cb" };
    assert_eq!(sc, format!("SERVERID={value}; path=/; HttpOnly"));
    assert_eq!(cache_control(&first), ["max-age=60", "private"], "nocache");
    let cookie = format!("other=1; {}", pair(&sc));
    for i in 0..100 {
        let r = get_with(port, &format!("/r{i}"), Some(&cookie), "");
        assert_eq!(r.text(), want, "request {i}");
        assert!(set_cookie(&r, "SERVERID").is_none(), "already has it");
    }
    let stuck = if want == "A" { &a } else { &b };
    let seen = stuck.requests();
    let ours: Vec<_> = seen.iter().filter(|r| r.target.starts_with("/r")).collect();
    assert_eq!(ours.len(), 100);
    for r in ours {
        assert_eq!(r.cookie(), Some("other=1"), "indirect: SERVERID removed, the rest kept");
    }
}

#[test]
fn cookie_insert_holds_for_every_request_of_one_keep_alive_connection() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = ab_config(port, &a, &b, true, r#"cookie = { name = "SERVERID", mode = "insert" }"#);
    let _l = Lbha::start(&cfg, &[port]);
    let mut s = connect(port);
    s.write_all(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let first = read_response(&mut s, false).unwrap();
    let cookie = pair(&set_cookie(&first, "SERVERID").unwrap());
    let want = first.text();
    for i in 0..99 {
        s.write_all(format!("GET /ka{i} HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n").as_bytes()).unwrap();
        let r = read_response(&mut s, false).unwrap();
        assert_eq!(r.text(), want, "request {i} on the same connection");
    }
    let stuck = if want == "A" { &a } else { &b };
    assert_eq!(stuck.count("/ka"), 99);
    // Without `indirect` the server sees the cookie (the seed's caveat).
    assert!(
        stuck.requests().iter().filter(|r| r.target.starts_with("/ka")).all(|r| r.cookie() == Some(cookie.as_str()))
    );
}

#[test]
fn cookie_rewrite_replaces_the_applications_value() {
    let a = Web::start("A");
    let b = Web::start("B");
    for w in [&a, &b] {
        w.set_cookie("SERVERID=app-chosen; Path=/", None);
    }
    let port = free_port();
    let cfg = ab_config(port, &a, &b, true, r#"cookie = { name = "SERVERID", mode = "rewrite" }"#);
    let _l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/", None, "");
    let want = first.text();
    let value = if want == "A" { "ca" } else { "cb" };
    assert_eq!(set_cookie(&first, "SERVERID").as_deref(), Some(format!("SERVERID={value}; Path=/").as_str()));
    let cookie = format!("SERVERID={value}");
    for i in 0..100 {
        assert_eq!(get_with(port, "/", Some(&cookie), "").text(), want, "request {i}");
    }
}

#[test]
fn cookie_prefix_wraps_the_application_session() {
    let a = Web::start("A");
    let b = Web::start("B");
    for w in [&a, &b] {
        w.set_cookie("JSESSIONID=s{n}; Path=/", Some("JSESSIONID"));
    }
    let port = free_port();
    let cfg = ab_config(port, &a, &b, true, r#"cookie = { name = "JSESSIONID", mode = "prefix" }"#);
    let _l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/", None, "");
    let want = first.text();
    let value = if want == "A" { "ca" } else { "cb" };
    let sc = set_cookie(&first, "JSESSIONID").unwrap();
    assert_eq!(sc, format!("JSESSIONID={value}~s1; Path=/"));
    for i in 0..100 {
        let r = get_with(port, &format!("/p{i}"), Some(&pair(&sc)), "");
        assert_eq!(r.text(), want, "request {i}");
    }
    let stuck = if want == "A" { &a } else { &b };
    assert!(
        stuck.requests().iter().filter(|r| r.target.starts_with("/p")).all(|r| r.cookie() == Some("JSESSIONID=s1")),
        "the application sees its own value"
    );
}

/// The stuck server dies: the next request with its cookie is redispatched to the other server,
/// which re-sets the cookie; the new cookie then sticks.
fn redispatch_case(checks: bool) {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let chk = if checks { ", check = true, inter = 100, fall = 1, rise = 1" } else { "" };
    let (sa, sb) = (format!(", cookie = \"ca\"{chk}"), format!(", cookie = \"cb\"{chk}"));
    let cfg = config(
        port,
        &[("a", a.port, &sa), ("b", b.port, &sb)],
        "retries = 1\nredispatch = true\ncookie = { name = \"SERVERID\", mode = \"insert\", indirect = true }",
    );
    let l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/", None, "");
    let cookie = pair(&set_cookie(&first, "SERVERID").unwrap());
    let (dead, alive, other_value) = if first.text() == "A" { (a, b, "cb") } else { (b, a, "ca") };
    let dead_name = dead.name().to_lowercase();
    dead.stop();
    if checks {
        kit::wait_log(|| l.log_text(), &format!("Server web/{dead_name} is DOWN"));
    }
    let r = get_with(port, "/", Some(&cookie), "");
    assert_eq!(r.status, 200, "{}", l.log_text());
    assert_eq!(r.text(), alive.name());
    let fresh = set_cookie(&r, "SERVERID").expect("cookie re-set");
    assert_eq!(pair(&fresh), format!("SERVERID={other_value}"));
    for i in 0..100 {
        assert_eq!(get_with(port, "/", Some(&pair(&fresh)), "").text(), alive.name(), "request {i}");
    }
}

#[test]
fn cookie_redispatches_when_the_server_dies_before_checks_notice() {
    redispatch_case(false);
}

#[test]
fn cookie_moves_when_checks_mark_the_server_down() {
    redispatch_case(true);
}

#[test]
fn appsession_learns_the_servers_session_and_matches_cookie_path_and_query() {
    let a = Web::start("A");
    let b = Web::start("B");
    for w in [&a, &b] {
        w.set_cookie(&format!("JSESSIONID={}-{{n}}; Path=/", w.name()), Some("JSESSIONID"));
    }
    let port = free_port();
    let cfg = ab_config(port, &a, &b, false, r#"appsession = { cookie = "JSESSIONID", len = 64, timeout = "1500ms" }"#);
    let _l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/login", None, "");
    let want = first.text();
    let sid = pair(&set_cookie(&first, "JSESSIONID").unwrap());
    let id = sid.trim_start_matches("JSESSIONID=").to_string();
    assert_eq!(id, format!("{want}-1"));
    for i in 0..100 {
        assert_eq!(get_with(port, "/cart", Some(&sid), "").text(), want, "cookie {i}");
    }
    assert_eq!(get_with(port, &format!("/cart;jsessionid={id}"), None, "").text(), want);
    assert_eq!(get_with(port, &format!("/cart?JSESSIONID={id}"), None, "").text(), want);
    // Unused for longer than `timeout`: forgotten. Two requests then go round robin.
    std::thread::sleep(Duration::from_millis(2000));
    let after: Vec<String> = (0..2).map(|_| get_with(port, "/cart", Some(&sid), "").text()).collect();
    assert_ne!(after[0], after[1], "entry expired: balanced again ({after:?})");
}

#[test]
fn appsession_request_learn_keeps_client_presented_ids() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = ab_config(
        port,
        &a,
        &b,
        false,
        r#"appsession = { cookie = "JSESSIONID", len = 64, timeout = "5h", request_learn = true }"#,
    );
    let _l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/", Some("JSESSIONID=from-client"), "").text();
    for i in 0..100 {
        assert_eq!(get_with(port, "/", Some("JSESSIONID=from-client"), "").text(), first, "request {i}");
    }
}

/// `stick on <fetch>`: the first request learns, the next 100 stick, a different key is balanced
/// to the next server, and after `expire` the learned key is forgotten.
fn stick_case(table: &str, rule: &str, key_a: &str, key_b: &str) {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = ab_config(port, &a, &b, false, &format!("stick_table = {table}\nstick = [{{ on = \"{rule}\" }}]"));
    let _l = Lbha::start(&cfg, &[port]);
    let req = |key: &str| {
        let (path, hdr) = if rule.starts_with("url_param") {
            (format!("/?user={key}"), String::new())
        } else if rule.starts_with("hdr") {
            ("/".to_string(), format!("X-User: {key}\r\n"))
        } else {
            ("/".to_string(), String::new())
        };
        get_with(port, &path, None, &hdr).text()
    };
    let first = req(key_a);
    for i in 0..100 {
        assert_eq!(req(key_a), first, "{rule}: request {i}");
    }
    // Round robin only moves when it picks, so the next pick is the other server.
    std::thread::sleep(Duration::from_millis(1500));
    let after = req(key_a);
    assert_ne!(after, first, "{rule}: expired, balanced to the next server");
    if !key_b.is_empty() {
        assert_ne!(req(key_b), after, "{rule}: another key is balanced on its own");
        assert_eq!(req(key_a), after, "{rule}: re-learned");
    }
}

#[test]
fn stick_on_src_expires() {
    stick_case("{ type = \"ip\", size = 100, expire = \"1s\" }", "src", "", "");
}

#[test]
fn stick_on_header_and_url_param() {
    stick_case("{ type = \"string\", size = \"1k\", expire = \"1s\" }", "hdr(X-User)", "alice", "bob");
    stick_case("{ type = \"string\", size = \"1k\", expire = \"1s\" }", "url_param(user)", "alice", "bob");
}

#[test]
fn stick_store_response_learns_from_the_servers_cookie() {
    let a = Web::start("A");
    let b = Web::start("B");
    for w in [&a, &b] {
        w.set_cookie(&format!("SID={}{{n}}", w.name()), Some("SID"));
    }
    let port = free_port();
    let cfg = ab_config(
        port,
        &a,
        &b,
        false,
        "stick_table = { type = \"string\", len = 32, size = 1000 }\nstick = [{ match = \"cookie(SID)\" }, { store_response = \"res.cook(SID)\" }]",
    );
    let _l = Lbha::start(&cfg, &[port]);
    let first = get_with(port, "/", None, "");
    let sid = pair(&set_cookie(&first, "SID").unwrap());
    for i in 0..100 {
        assert_eq!(get_with(port, "/", Some(&sid), "").text(), first.text(), "request {i}");
    }
}

#[test]
fn seed_backend_example_is_valid_and_behaves_as_described() {
    let text = std::fs::read_to_string("etc/examples/seed-backend.toml").unwrap();
    let out = std::process::Command::new(lbha_bin())
        .args(["check", "-c", "etc/examples/seed-backend.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Run it on free ports: every 127.0.0.1:PORT of the file gets a fresh one. Six ports taken
    // by probing can race with other tests' listeners, so a start that fails is retried.
    let start = || {
        let mut cfg = text.clone();
        let mut ports = std::collections::HashMap::new();
        for word in text.split('"') {
            if let Some(p) = word.strip_prefix("127.0.0.1:")
                && let Ok(p) = p.parse::<u16>()
            {
                ports.entry(p).or_insert_with(free_port);
            }
        }
        for (old, new) in &ports {
            cfg = cfg.replace(&format!("127.0.0.1:{old}\""), &format!("127.0.0.1:{new}\""));
        }
        let front = ports[&18080];
        (Lbha::start(&cfg, &[front]), front)
    };
    let (l, front) = (0..2).find_map(|_| std::panic::catch_unwind(start).ok()).unwrap_or_else(start);
    // .php goes to php_server, which inserts SERVERID; static files go to static_server.
    let php = get_with(front, "/shop/index.php", None, "");
    assert!(php.text().starts_with("php"), "{}: {}", php.text(), l.log_text());
    let sc = set_cookie(&php, "SERVERID").expect("php_server inserts SERVERID");
    assert_eq!(cache_control(&php), ["max-age=60", "private"]);
    for i in 0..100 {
        let r = get_with(front, "/shop/cart.php", Some(&pair(&sc)), "");
        assert_eq!(r.text(), php.text(), "request {i}");
    }
    assert_eq!(get_with(front, "/logo.png", None, "").text(), "static 1");
}

#[test]
fn tcp_mode_stick_on_src_keeps_100_connections_on_one_server() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[listen]]
name = "t"
bind = ["127.0.0.1:{port}"]
balance = "roundrobin"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}, {{ name = "b", addr = "127.0.0.1:{}" }}]
stick_table = {{ type = "ip", size = "1k", expire = "1s" }}
stick = [{{ on = "src" }}]
"#,
        a.port, b.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    // The start-up probe was a TCP session too: let it finish (and learn) before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let first = get(port, "/").text();
    for i in 0..100 {
        assert_eq!(get(port, "/").text(), first, "connection {i}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_ne!(get(port, "/").text(), first, "expired: balanced to the next server");
}

#[test]
fn drain_keeps_persistent_clients_and_maint_moves_them() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = ab_config(port, &a, &b, true, r#"cookie = { name = "SERVERID", mode = "insert", indirect = true }"#);
    let l = Lbha::start(&cfg, &[port]);
    let out = l.ctl(&["set server web/a state drain"]);
    assert!(!out.to_lowercase().contains("error"), "{out}");
    // New clients avoid a draining server; clients stuck to it keep it.
    for i in 0..10 {
        assert_eq!(get_with(port, "/", None, "").text(), "B", "new client {i}");
        assert_eq!(get_with(port, "/", Some("SERVERID=ca"), "").text(), "A", "persistent client {i}");
    }
    l.ctl(&["set server web/a state maint"]);
    let r = get_with(port, "/", Some("SERVERID=ca"), "");
    assert_eq!(r.text(), "B", "maintenance breaks persistence");
    assert_eq!(set_cookie(&r, "SERVERID").map(|c| pair(&c)).as_deref(), Some("SERVERID=cb"));
}

/// `nocache` marks only what a cache could keep, as HAProxy 2.6 does: a GET or HEAD answer that
/// carries the inserted cookie and a lifetime or validator. A POST answer, or one without either,
/// gets the cookie and no `Cache-Control: private`.
#[test]
fn nocache_marks_only_cacheable_answers_that_carry_the_inserted_cookie() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = ab_config(port, &a, &b, true, r#"cookie = { name = "SERVERID", mode = "insert", nocache = true }"#);
    let _l = Lbha::start(&cfg, &[port]);
    let plain = get_with(port, "/", None, "");
    assert!(set_cookie(&plain, "SERVERID").is_some());
    assert!(cache_control(&plain).is_empty(), "no lifetime nor validator: not cacheable");
    for w in [&a, &b] {
        w.add_header("ETag: \"v1\"");
    }
    let get = get_with(port, "/", None, "");
    assert!(set_cookie(&get, "SERVERID").is_some());
    assert_eq!(cache_control(&get), ["private"]);
    let post = raw(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx").unwrap();
    assert!(set_cookie(&post, "SERVERID").is_some(), "the cookie is inserted on a POST answer too");
    assert!(cache_control(&post).is_empty(), "no cache keeps a POST answer");
}

/// HAProxy 2.6's `stick on|match|store-response ... table T if|unless COND`, the haproxy.cfg
/// lines unchanged, run by lbha and by the real HAProxy with the same requests: a rule applies
/// only where its condition holds, and writes and reads the named table (listed there by
/// `show table`), not the backend's.
#[test]
fn stick_rules_with_a_named_table_and_conditions_as_haproxy() {
    let (a, b) = (Web::start("a"), Web::start("b"));
    b.add_header("X-Sess: sb");
    let cfg = |port: u16, sock: &str| {
        format!(
            "global\n    stats socket {sock} level admin\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             backend st\n    stick-table type string len 32 size 1k expire 5m\n\
             listen web\n    bind 127.0.0.1:{port}\n    balance roundrobin\n    acl app path_beg /app\n\
             \x20   stick on hdr(x-user) table st if app\n\
             \x20   stick store-response res.hdr(x-sess) table st if {{ status 200 }}\n\
             \x20   stick match req.hdr(x-sess) table st unless {{ path_beg /free }}\n\
             \x20   server a 127.0.0.1:{}\n    server b 127.0.0.1:{}\n",
            a.port, b.port
        )
    };
    let who = |port: u16, path: &str, hdr: &str| {
        let r = get_with(port, path, None, hdr);
        assert_eq!(r.status, 200, "{path}");
        String::from_utf8_lossy(&r.body).trim().to_string()
    };
    let check = |port: u16, show: &dyn Fn() -> String, label: &str| {
        let first = who(port, "/app/x", "X-User: u1\r\n");
        for _ in 0..4 {
            assert_eq!(who(port, "/app/y", "X-User: u1\r\n"), first, "{label}: /app sticks by x-user");
        }
        // Outside /app the rule does not apply: round robin reaches both servers.
        let other: Vec<String> = (0..4).map(|_| who(port, "/other", "X-User: u1\r\n")).collect();
        assert!(other.iter().any(|s| s == "a") && other.iter().any(|s| s == "b"), "{label}: {other:?}");
        // b's X-Sess was learned (status 200) into st: the session sticks to b, except under
        // /free where the match rule does not apply.
        for _ in 0..4 {
            assert_eq!(who(port, "/s", "X-Sess: sb\r\n"), "b", "{label}: learned session");
        }
        let free: Vec<String> = (0..4).map(|_| who(port, "/free", "X-Sess: sb\r\n")).collect();
        assert!(free.iter().any(|s| s == "a"), "{label}: /free is balanced: {free:?}");
        let t = show();
        assert!(t.contains("# table: st, type: string"), "{label}: {t}");
        assert!(t.contains("key=u1 ") && t.contains("key=sb "), "{label}: both keys in st:\n{t}");
        assert_eq!(t.matches(" key=").count(), 2, "{label}: only those:\n{t}");
    };
    let port = free_port();
    // lbha's `-S` replaces the stats socket line.
    let lb = Lbha::start_haproxy(&cfg(port, "/nonexistent/unused.sock"), &[port]);
    check(port, &|| lb.ctl(&["show table st"]), "lbha");
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped the HAProxy run: no haproxy");
        return;
    }
    let hport = free_port();
    let hdir = TempDir::new("stick-cond-hap");
    let hsock = hdir.0.join("hap.sock");
    let (_hap, _d) = haproxy(&cfg(hport, &hsock.display().to_string()), hport);
    check(
        hport,
        &|| {
            let mut s = std::os::unix::net::UnixStream::connect(&hsock).unwrap();
            s.write_all(b"show table st\n").unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out).unwrap();
            out
        },
        "haproxy",
    );
}

/// HAProxy 2.6's `stick` rules over any sample expression: converters (`req.hdr(x-user),lower`,
/// `res.hdr(x-sess),upper`) and a variable the `http-request` rules set, cast to the table's key
/// type (an integer table here). The same haproxy.cfg lines run by lbha and by the real HAProxy
/// with the same requests; the tables list the same keys.
#[test]
fn stick_rules_over_sample_expressions_as_haproxy() {
    let (a, b) = (Web::start("a"), Web::start("b"));
    b.add_header("X-Sess: sb");
    let cfg = |port: u16, port2: u16, sock: &str| {
        format!(
            "global\n    stats socket {sock} level admin\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             listen web\n    bind 127.0.0.1:{port}\n    balance roundrobin\n\
             \x20   stick-table type string len 32 size 1k expire 5m\n\
             \x20   stick on req.hdr(x-user),lower\n\
             \x20   stick store-response res.hdr(x-sess),upper\n\
             \x20   stick match req.hdr(x-sess),upper\n\
             \x20   server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n\
             listen num\n    bind 127.0.0.1:{port2}\n    balance roundrobin\n\
             \x20   stick-table type integer size 1k expire 5m\n\
             \x20   http-request set-var(txn.uid) req.hdr(x-uid),mul(2)\n\
             \x20   stick on var(txn.uid)\n\
             \x20   server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n",
            a = a.port,
            b = b.port
        )
    };
    let who = |port: u16, hdr: &str| {
        let r = get_with(port, "/", None, hdr);
        assert_eq!(r.status, 200);
        String::from_utf8_lossy(&r.body).trim().to_string()
    };
    let check = |port: u16, port2: u16, show: &dyn Fn(&str) -> String, label: &str| {
        let first = who(port, "X-User: Alice\r\n");
        for u in ["alice", "ALICE", "aLiCe"] {
            assert_eq!(who(port, &format!("X-User: {u}\r\n")), first, "{label}: {u} sticks as alice");
        }
        // b answered with X-Sess: sb at some point: learned as SB, matched in any case.
        for _ in 0..2 {
            who(port, "");
        }
        for s in ["sb", "SB", "Sb"] {
            assert_eq!(who(port, &format!("X-Sess: {s}\r\n")), "b", "{label}: session {s}");
        }
        let t = show("web");
        assert!(t.contains("key=alice ") && t.contains("key=SB "), "{label}: the converted keys:\n{t}");
        assert!(!t.contains("key=Alice "), "{label}: {t}");
        let first = who(port2, "X-Uid: 21\r\n");
        for _ in 0..4 {
            assert_eq!(who(port2, "X-Uid: 21\r\n"), first, "{label}: uid 21 sticks");
        }
        let t = show("num");
        assert!(t.contains("type: integer") && t.contains("key=42 "), "{label}: the variable's value:\n{t}");
    };
    let (port, port2) = (free_port(), free_port());
    let lb = Lbha::start_haproxy(&cfg(port, port2, "/nonexistent/unused.sock"), &[port, port2]);
    check(port, port2, &|t| lb.ctl(&[&format!("show table {t}")]), "lbha");
    if std::process::Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped the HAProxy run: no haproxy");
        return;
    }
    let (hport, hport2) = (free_port(), free_port());
    let hdir = TempDir::new("stick-expr-hap");
    let hsock = hdir.0.join("hap.sock");
    let (_hap, _d) = haproxy(&cfg(hport, hport2, &hsock.display().to_string()), hport);
    check(
        hport,
        hport2,
        &|t| {
            let mut s = std::os::unix::net::UnixStream::connect(&hsock).unwrap();
            s.write_all(format!("show table {t}\n").as_bytes()).unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out).unwrap();
            out
        },
        "haproxy",
    );
}
