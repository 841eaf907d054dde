//! Runtime servers on the control socket (`add server`, `del server`, `set server ... addr`,
//! `enable|disable health|frontend`, `set maxconn`, `show servers conn`) with real backends under
//! traffic, and what survives a reload and a restart.

mod api_support;
mod common;
use api_support::ApiLbha;
use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn config(port: u16, servers: &[(&str, u16)], extra: &str) -> String {
    let list: Vec<String> =
        servers.iter().map(|(n, p)| format!("{{ name = \"{n}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    format!(
        "{extra}\n[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{}]\n\
         [[backend]]\nname = \"fixed\"\nbalance = \"static-rr\"\nservers = [{{ name = \"x\", addr = \"127.0.0.1:{}\" }}]\n",
        list.join(", "),
        servers[0].1
    )
}

/// Requests in a loop on another thread until stopped (bounded in time and count), counting
/// answers that were not a 200.
struct Traffic {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let (stop, failed, sent): (_, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let (s, f, n) = (stop.clone(), Arc::clone(&failed), Arc::clone(&sent));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut i = 0;
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline && i < 20_000 {
                i += 1;
                let ok =
                    raw(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").is_ok_and(|r| r.status == 200);
                if !ok {
                    f.fetch_add(1, Ordering::SeqCst);
                }
                n.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Traffic { stop, failed, sent, thread: Some(thread) }
    }

    /// Stops and returns (sent, failed).
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.sent.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits (at most 15 s) until a request is answered by `body`.
fn wait_body(port: u16, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if get(port, "/").text() == body {
            return;
        }
        assert!(Instant::now() < deadline, "no answer from {body} within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n).map(|_| get(port, "/").text()).collect()
}

#[test]
fn a_server_added_under_traffic_takes_requests_and_leaves_cleanly() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let l = Lbha::start(&config(port, &[("a", a.port)], ""), &[port]);
    let traffic = Traffic::start(port);
    let add = format!("add server web/b 127.0.0.1:{} weight 1", b.port);
    assert_eq!(l.ctl(&[&add]), "New server registered.\n\n");
    // As in HAProxy, a new server starts in maintenance.
    assert!(bodies(port, 6).iter().all(|x| x == "a"));
    assert_eq!(l.ctl(&["enable server web/b"]), "\n");
    wait_body(port, "b");
    assert_eq!(l.ctl(&["del server web/b"]), "Only servers in maintenance mode can be deleted.\n\n");
    l.ctl(&["disable server web/b"]);
    assert_eq!(l.ctl(&["del server web/b"]), "Server deleted.\n\n");
    let (sent, failed) = traffic.finish();
    assert!(sent > 0);
    assert_eq!(failed, 0, "no request failed while servers came and went ({sent} sent)");
    assert!(bodies(port, 6).iter().all(|x| x == "a"));
    let state = l.ctl(&["show servers state web"]);
    assert!(!state.contains(" b 127.0.0.1"), "{state}");
    assert_eq!(l.ctl(&["del server web/b"]), "No such server.\n\n");
}

#[test]
fn haproxy_refusals() {
    let a = Backend::start("a");
    let port = free_port();
    let l = Lbha::start(&config(port, &[("a", a.port)], ""), &[port]);
    let ask = |c: &str| l.ctl(&[c]);
    assert_eq!(
        ask("add server fixed/y 127.0.0.1:1"),
        "Backend must use a dynamic load balancing to support dynamic servers.\n\n"
    );
    assert_eq!(ask("add server web/a 127.0.0.1:1"), "Already exists a server with the same name in backend.\n\n");
    assert_eq!(ask("add server nope/a 127.0.0.1:1"), "No such backend.\n\n");
    assert_eq!(ask("add server web/z 127.0.0.1:1 bogus"), "unknown keyword 'bogus'.\n\n");
    assert_eq!(
        ask("add server web/z 127.0.0.1:1 resolvers dns"),
        "'resolvers' option is not accepted for dynamic server\n\n"
    );
    assert_eq!(ask("set server web/a check-port 9000"), "health checks are not enabled on this server\n\n");
    assert_eq!(ask("set server web/a agent up"), "agent checks are not enabled on this server.\n\n");
    assert_eq!(ask("enable health web/a"), "Health check was not configured on this server, cannot enable.\n\n");
    assert_eq!(ask("set server web/a addr 127.0.0.1"), "no need to change the addr by 'stats socket command'\n\n");
    assert_eq!(ask("set server web/a addr bogus"), "Invalid addr 'bogus' by 'stats socket command'\n\n");
    assert_eq!(ask("set maxconn global 0"), "Value out of range.\n\n");
    assert_eq!(ask("enable frontend web"), "All sockets are already enabled.\n\n");
    assert_eq!(ask("enable frontend nope"), "No such frontend.\n\n");
    // A server refused by validation names the problem; nothing changes.
    let e = ask("add server web/z 127.0.0.1:1 ca-file /nonexistent/ca.pem ssl");
    assert!(e.contains("ca_file") || e.contains("ca-file") || e.contains("nonexistent"), "{e}");
    assert!(!ask("show servers state web").contains(" z "));
    // Admin only.
    assert_eq!(l.ctl(&["user", "add server web/z 127.0.0.1:1"]), "\nPermission denied\n\n");
    let conn = ask("show servers conn web");
    assert!(conn.starts_with("# bkname/svname bkid/svid addr port - purge_delay used_cur used_max"), "{conn}");
    assert!(conn.contains(&format!("web/a 1/1 127.0.0.1 {} - ", a.port)), "{conn}");
}

#[test]
fn address_changes_and_runtime_servers_survive_reload_and_restart() {
    let (a, b, c) = (Backend::start("a"), Backend::start("b"), Backend::start("c"));
    let port = free_port();
    let keep = TempDir::new("rt-state");
    let state = keep.0.join("server-state");
    let extra = format!("[global]\nserver_state_file = \"{}\"", state.display());
    let text = config(port, &[("s", a.port)], &extra);
    let mut l = Lbha::start(&text, &[port]);
    let traffic = Traffic::start(port);
    let set = format!("set server web/s addr 127.0.0.1 port {}", b.port);
    assert_eq!(
        l.ctl(&[&set]),
        format!(
            "no need to change the addr, port changed from '{}' to '{}' by 'stats socket command'\n\n",
            a.port, b.port
        )
    );
    wait_body(port, "b");
    let add = format!("add server web/c 127.0.0.1:{}", c.port);
    assert_eq!(l.ctl(&[&add, "enable server web/c"]), "New server registered.\n\n\n");
    wait_body(port, "c");
    let (_, failed) = traffic.finish();
    assert_eq!(failed, 0);
    // Reload: the file still says `a`; the runtime changes are kept.
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    let seen = bodies(port, 8);
    assert!(seen.iter().all(|x| x == "b" || x == "c") && seen.iter().any(|x| x == "c"), "{seen:?}");
    // Restart: the overlay and the admin state come back from next to the state file.
    l.signal(15);
    assert!(l.wait_exit(Duration::from_secs(15)).is_some(), "lbha did not stop");
    assert!(keep.0.join("server-state.runtime.json").exists());
    let l2 = Lbha::start(&text, &[port]);
    let seen = bodies(port, 8);
    assert!(seen.iter().all(|x| x == "b" || x == "c") && seen.iter().any(|x| x == "c"), "{seen:?}");
    let st = l2.ctl(&["show servers state web"]);
    assert!(st.contains(" c 127.0.0.1 2 0 "), "c is up and ready after the restart:\n{st}");
    // A changed file wins: the runtime address of `s` is dropped once the file changes it.
    let edited = text.replace(
        &format!("127.0.0.1:{}\" }}]\n[[backend]]", a.port),
        &format!("127.0.0.1:{}\" }}]\n[[backend]]", c.port),
    );
    std::fs::write(&l2.config, &edited).unwrap();
    assert!(l2.ctl(&["reload"]).starts_with("Success=1"));
    let seen = bodies(port, 6);
    assert!(seen.iter().all(|x| x == "c"), "s now follows the file (c), and c is c: {seen:?}");
    drop(a);
}

#[test]
fn health_checks_can_be_stopped_and_forced() {
    let a = Backend::start("a");
    let dead = free_port();
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"a\", addr = \"127.0.0.1:{}\", check = true, inter = \"100ms\", rise = 1, fall = 1 }}, \
         {{ name = \"d\", addr = \"127.0.0.1:{dead}\", check = true, inter = \"100ms\", rise = 1, fall = 1 }}]\n",
        a.port
    );
    let l = Lbha::start(&text, &[port]);
    let op = |name: &str| {
        let st = l.ctl(&["show servers state web"]);
        st.lines()
            .find(|x| x.split_whitespace().nth(3) == Some(name))
            .and_then(|x| x.split_whitespace().nth(5).map(String::from))
            .unwrap_or_else(|| panic!("{name} in {st}"))
    };
    let wait_op = |name: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while op(name) != want {
            assert!(Instant::now() < deadline, "{name} never reached op state {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_op("d", "0");
    // Without checks a server counts as up, as in HAProxy.
    assert_eq!(l.ctl(&["disable health web/d"]), "\n");
    assert_eq!(op("d"), "2");
    assert_eq!(l.ctl(&["enable health web/d"]), "\n");
    wait_op("d", "0");
    // Forced down (counted as a down transition), the next passing check takes it up again.
    wait_op("a", "2");
    let chkdown = || {
        let st = l.ctl(&["show stat"]);
        let row = st.lines().find(|x| x.starts_with("web,a,")).map(String::from).unwrap_or_else(|| panic!("{st}"));
        row.split(',').nth(22).unwrap_or("").parse::<u64>().unwrap_or(0)
    };
    let before = chkdown();
    assert_eq!(l.ctl(&["set server web/a health down"]), "\n");
    assert_eq!(chkdown(), before + 1);
    wait_op("a", "2");
    // The check port follows `set server ... check-port` (to the dead port: down).
    assert_eq!(l.ctl(&[&format!("set server web/a check-port {dead}")]), "\n");
    wait_op("a", "0");
}

#[test]
fn a_disabled_frontend_accepts_nothing_until_enabled() {
    let a = Backend::start("a");
    let port = free_port();
    let l = Lbha::start(&config(port, &[("a", a.port)], ""), &[port]);
    assert_eq!(l.ctl(&["disable frontend web"]), "\n");
    assert_eq!(l.ctl(&["disable frontend web"]), "All sockets are already disabled.\n\n");
    let before = a.seen.requests.load(Ordering::SeqCst);
    // The connection waits in the backlog; its request is answered once the frontend is back.
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let mut buf = [0u8; 64];
    assert!(s.read(&mut buf).is_err(), "answered while the frontend was disabled");
    assert_eq!(a.seen.requests.load(Ordering::SeqCst), before);
    assert_eq!(l.ctl(&["enable frontend web"]), "\n");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200);
    // Limits: a frontend and a server limit are taken at once and kept by a reload.
    assert_eq!(l.ctl(&["set maxconn frontend web 7", "set maxconn server web/a 3"]), "\n\n");
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    let stat = l.ctl(&["show stat"]);
    let slim =
        |row: &str| stat.lines().find(|x| x.starts_with(row)).and_then(|x| x.split(',').nth(6)).map(String::from);
    assert_eq!(slim("web,FRONTEND").as_deref(), Some("7"), "{stat}");
    assert_eq!(slim("web,a,").as_deref(), Some("3"), "{stat}");
    assert_eq!(l.ctl(&["set maxconn global 50"]), "\n");
    assert!(l.ctl(&["show info"]).contains("Maxconn: 50\n"));
}

#[test]
fn the_data_plane_api_adds_moves_and_deletes_runtime_servers() {
    let (a, b, c) = (Backend::start("A"), Backend::start("B"), Backend::start("C"));
    let fe = free_port();
    let api = ApiLbha::start(&format!(
        "[[backend]]\nname = \"be\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"be\"\n",
        a.port
    ));
    let mut lbha = api.lbha;
    lbha.wait_port(fe);
    let api = ApiLbha::with(lbha, api.port, api.state);
    let rs = "/v2/services/haproxy/runtime/servers";
    let before = api.config_text();
    let body = format!(r#"{{"name":"s2","address":"127.0.0.1","port":{},"weight":1}}"#, b.port);
    let (s, v) = api.json("POST", &format!("{rs}?backend=be"), Some(&body));
    assert_eq!(
        (s, v["admin_state"].as_str(), v["port"].as_u64()),
        (201, Some("maint"), Some(u64::from(b.port))),
        "{v}"
    );
    let (s, v) = api.json("POST", &format!("{rs}?backend=be"), Some(&body));
    assert_eq!(s, 409, "{v}");
    let (s, _) = api.json("POST", &format!("{rs}?backend=nope"), Some(&body));
    assert_eq!(s, 404);
    let (s, v) = api.json("PUT", &format!("{rs}/s2?backend=be"), Some(r#"{"admin_state":"ready"}"#));
    assert_eq!(s, 200, "{v}");
    wait_body(fe, "B");
    // A new port through PUT moves the traffic (`set server addr`).
    let (s, v) = api.json("PUT", &format!("{rs}/s2?backend=be"), Some(&format!(r#"{{"port":{}}}"#, c.port)));
    assert_eq!((s, v["port"].as_u64()), (200, Some(u64::from(c.port))), "{v}");
    wait_body(fe, "C");
    // Runtime only: the configuration file is untouched.
    assert_eq!(api.config_text(), before);
    let (s, v) = api.json("DELETE", &format!("{rs}/s2?backend=be"), None);
    assert_eq!(s, 409, "only servers in maintenance: {v}");
    api.json("PUT", &format!("{rs}/s2?backend=be"), Some(r#"{"admin_state":"maint"}"#));
    assert_eq!(api.call("DELETE", &format!("{rs}/s2?backend=be"), None).status, 204);
    let (s, _) = api.json("GET", &format!("{rs}/s2?backend=be"), None);
    assert_eq!(s, 404);
    assert!(bodies(fe, 4).iter().all(|x| x == "A"));
}

/// `init-addr none` (here without `libc`, so the test makes no DNS query): a name that does not
/// resolve leaves its server in maintenance (resolution) until `set server addr` gives it one.
#[test]
fn an_unresolved_server_waits_for_an_address_and_the_haproxy_config_converts() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let cfg = format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         listen web\n  bind 127.0.0.1:{port}\n  default-server init-addr none\n  server a 127.0.0.1:{}\n  server app app.example.invalid:{} check\n",
        a.port, b.port
    );
    let l = Lbha::start_haproxy(&cfg, &[port]);
    let stat = l.ctl(&["show stat"]);
    assert!(stat.lines().any(|x| x.starts_with("web,app,") && x.contains("MAINT (resolution)")), "{stat}");
    // Even put in service, it has nowhere to send traffic.
    l.ctl(&["enable server web/app"]);
    assert!(bodies(port, 6).iter().all(|x| x == "a"));
    let set = format!("set server web/app addr 127.0.0.1 port {}", b.port);
    assert_eq!(
        l.ctl(&[&set]),
        "IP changed from '0.0.0.0' to '127.0.0.1', no need to change the port by 'stats socket command'\n\n"
    );
    wait_body(port, "b");
    // Its check starts with the address, and a reload keeps it.
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    wait_body(port, "b");
}

/// A burst of `add server` in one session: each is served at once, a refused one changes nothing,
/// the burst reaches the overlay file without a stop (written in batches), one added just before
/// a stop is written by the stop, and all of them come back after a restart.
#[test]
fn a_burst_of_runtime_servers_is_saved_in_batches_and_survives_a_restart() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let keep = TempDir::new("rt-burst");
    let state = keep.0.join("server-state");
    let extra = format!("[global]\nserver_state_file = \"{}\"", state.display());
    let text = config(port, &[("s", a.port)], &extra);
    let mut l = Lbha::start(&text, &[port]);
    let mut lines: Vec<String> =
        (0..40).map(|i| format!("add server web/n{i} 127.0.0.1:{} weight 2", b.port)).collect();
    // Refused by the server checks of a load (`inter` needs `check`): nothing of it is applied.
    lines.insert(20, "add server web/bad 127.0.0.1:1 inter 1s".into());
    lines.push("enable server web/n39".into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = l.ctl(&refs);
    assert_eq!(out.matches("New server registered.").count(), 40, "{out}");
    assert!(out.contains("servers[21].inter: has no effect without `check = true`"), "{out}");
    wait_body(port, "b");
    let st = l.ctl(&["show servers state web"]);
    assert!(st.contains(" n0 ") && st.contains(" n39 ") && !st.contains(" bad "), "{st}");
    // Written without a stop, within the batch window (waited for with a generous bound).
    let saved = keep.0.join("server-state.runtime.json");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&saved).is_ok_and(|t| t.contains("\"n39\"")) {
        assert!(Instant::now() < deadline, "the runtime servers were not written within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!std::fs::read_to_string(&saved).unwrap().contains("\"bad\""));
    let late = format!("add server web/late 127.0.0.1:{}", b.port);
    assert_eq!(l.ctl(&[&late, "enable server web/late"]), "New server registered.\n\n\n");
    l.signal(15);
    assert!(l.wait_exit(Duration::from_secs(15)).is_some(), "lbha did not stop");
    assert!(std::fs::read_to_string(&saved).unwrap().contains("\"late\""), "the stop wrote the last change");
    let l2 = Lbha::start(&text, &[port]);
    let st = l2.ctl(&["show servers state web"]);
    for name in [" n0 ", " n20 ", " n39 ", " late "] {
        assert!(st.contains(name), "{name} after the restart:\n{st}");
    }
    assert!(!st.contains(" bad "), "{st}");
    wait_body(port, "b");
}

/// `set server ... addr` on a runtime server and on a server of the file is served at once (only
/// that server is checked and its backend rebuilt), and a reload keeps both.
#[test]
fn one_server_changes_are_live_and_kept_by_a_reload() {
    let (a, b, c) = (Backend::start("a"), Backend::start("b"), Backend::start("c"));
    let port = free_port();
    let l = Lbha::start(&config(port, &[("s", a.port)], ""), &[port]);
    let add = format!("add server web/r 127.0.0.1:{}", a.port);
    assert_eq!(l.ctl(&[&add, "enable server web/r"]), "New server registered.\n\n\n");
    let to_c = format!("set server web/r addr 127.0.0.1 port {}", c.port);
    assert!(l.ctl(&[&to_c]).contains(&format!("port changed from '{}' to '{}'", a.port, c.port)));
    wait_body(port, "c");
    let to_b = format!("set server web/s addr 127.0.0.1 port {}", b.port);
    assert!(l.ctl(&[&to_b]).contains("port changed"));
    wait_body(port, "b");
    let seen = bodies(port, 8);
    assert!(seen.iter().all(|x| x == "b" || x == "c"), "{seen:?}");
    let m = l.ctl(&["set maxconn server web/r 5"]);
    assert!(m.trim().is_empty(), "{m}");
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    let seen = bodies(port, 8);
    assert!(seen.iter().all(|x| x == "b" || x == "c") && seen.iter().any(|x| x == "c"), "{seen:?}");
    let st = l.ctl(&["show servers state web"]);
    assert!(st.contains(" r 127.0.0.1 2 0 ") && st.contains(&format!(" {} ", c.port)), "{st}");
    drop(a);
}

/// A server that reads a PROXY v2 header before its request, records whether it came, and answers.
fn proxy_v2_backend() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().take(10_000) {
            let Ok(mut c) = c else { return };
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut sig = [0u8; 16];
            if c.read_exact(&mut sig).is_err() {
                continue;
            }
            if &sig[..12] == b"\r\n\r\n\0\r\nQUIT\n" {
                s2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut rest = vec![0u8; usize::from(u16::from_be_bytes([sig[14], sig[15]]))];
                let _ = c.read_exact(&mut rest);
            }
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\npp");
        }
    });
    (port, seen)
}

#[test]
fn a_server_added_with_send_proxy_v2_sends_the_header() {
    let a = Backend::start("a");
    let (pp, seen) = proxy_v2_backend();
    let port = free_port();
    let l = Lbha::start(&config(port, &[("a", a.port)], ""), &[port]);
    let add = format!("add server web/p 127.0.0.1:{pp} send-proxy-v2");
    assert_eq!(l.ctl(&[&add]), "New server registered.\n\n");
    l.ctl(&["disable server web/a"]);
    assert_eq!(l.ctl(&["enable server web/p"]), "\n");
    wait_body(port, "pp");
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) > 0, "no PROXY v2 header reached the server");
    // TLS keywords are validated as the file's: a missing client certificate is refused.
    let bad = l.ctl(&["add server web/t 127.0.0.1:1 ssl verify none crt /nonexistent/c.pem"]);
    assert!(bad.contains("c.pem"), "{bad}");
}

/// An `agent-check` agent answering every connection with the current `word` (bounded in time).
struct Agent {
    port: u16,
    word: Arc<std::sync::Mutex<String>>,
    asked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Agent {
    fn start(word: &str) -> Agent {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let (word, asked, stop) = (Arc::new(std::sync::Mutex::new(word.to_string())), Arc::default(), Arc::default());
        let (w, n, s): (_, Arc<AtomicUsize>, Arc<AtomicBool>) =
            (Arc::clone(&word), Arc::clone(&asked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut c, _)) => {
                        n.fetch_add(1, Ordering::SeqCst);
                        let text = w.lock().unwrap().clone();
                        let _ = c.write_all(text.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Agent { port, word, asked, stop }
    }

    fn say(&self, w: &str) {
        *self.word.lock().unwrap() = w.to_string();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn agents_and_stopping_are_set_from_the_socket_as_in_haproxy() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let agent = Agent::start("ready\n");
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"a\", addr = \"127.0.0.1:{}\", check = true, inter = \"100ms\", rise = 1, fall = 1, \
         agent_check = true, agent_port = {}, agent_inter = \"100ms\" }}, \
         {{ name = \"b\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port, agent.port, b.port
    );
    let l = Lbha::start(&text, &[port]);
    let ask = |c: &str| l.ctl(&[c]);
    let status = |name: &str| {
        let st = ask("show stat");
        let row = st.lines().find(|x| x.starts_with(&format!("web,{name},"))).unwrap_or_else(|| panic!("{st}"));
        row.split(',').nth(17).unwrap_or("").to_string()
    };
    let wait_status = |name: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while status(name) != want {
            assert!(Instant::now() < deadline, "{name} never became {want} (now {})", status(name));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_status("a", "UP");
    // The agent's own state: down keeps the server out whatever its checks say, up lets it back.
    assert_eq!(ask("set server web/a agent down"), "\n");
    // HAProxy's word for a server its agent took down.
    assert_eq!(status("a"), "DOWN (agent)");
    assert!(bodies(port, 6).iter().all(|x| x == "b"));
    assert_eq!(ask("set server web/a agent up"), "\n");
    assert_eq!(status("a"), "UP");
    assert_eq!(ask("set server web/a agent stopping"), "'set server <srv> agent' expects 'up' or 'down'.\n\n");
    // A stopped agent no longer counts and is no longer asked; a disabled agent cannot be set.
    agent.say("down\n");
    wait_status("a", "DOWN (agent)");
    assert_eq!(ask("disable agent web/a"), "\n");
    assert_eq!(status("a"), "UP");
    let asked = agent.asked.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(800));
    assert!(agent.asked.load(Ordering::SeqCst) <= asked + 1, "the agent was still asked after disable agent");
    assert_eq!(status("a"), "UP");
    assert_eq!(ask("set server web/a agent down"), "agent checks are not enabled on this server.\n\n");
    assert_eq!(ask("enable agent web/a"), "\n");
    wait_status("a", "DOWN (agent)");
    agent.say("up\n");
    wait_status("a", "UP");
    // A server without an agent: HAProxy's refusals.
    assert_eq!(ask("enable agent web/b"), "Agent was not configured on this server, cannot enable.\n\n");
    assert_eq!(ask("disable agent web/b"), "\n");
    assert_eq!(ask("set server web/b agent up"), "agent checks are not enabled on this server.\n\n");
    // `health stopping` is NOLB: up, no new traffic; without checks it lasts until `health up`.
    assert_eq!(ask("set server web/b health stopping"), "\n");
    assert_eq!(status("b"), "NOLB");
    assert!(bodies(port, 6).iter().all(|x| x == "a"));
    assert_eq!(ask("set server web/b health up"), "\n");
    assert_eq!(status("b"), "no check");
    wait_body(port, "b");
    // With checks, the next passing check ends it, as in HAProxy.
    assert_eq!(ask("set server web/a health stopping"), "\n");
    wait_status("a", "UP");
}
