//! Reload without dropping a connection (SIGHUP): listeners kept, snapshot swapped, a bad file
//! keeps the running config, old TCP sessions bounded by `hard_stop_after` when made stale.

mod common;
use common::*;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn http_config(port: u16, servers: &[u16], extra_bind: Option<u16>) -> String {
    let list: Vec<String> =
        servers.iter().enumerate().map(|(i, p)| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    let binds = match extra_bind {
        Some(b) => format!("\"127.0.0.1:{port}\", \"127.0.0.1:{b}\""),
        None => format!("\"127.0.0.1:{port}\""),
    };
    format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n[[listen]]\nname = \"web\"\nbind = [{binds}]\nservers = [{}]\n",
        list.join(", ")
    )
}

fn hup(l: &Lbha, text: &str) {
    let tmp = l.config.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &l.config).unwrap();
    l.signal(1);
}

fn count(l: &Lbha, what: &str) -> usize {
    l.log_text().matches(what).count()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn fifty_reloads_under_load_fail_no_request() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let l = Lbha::start(&http_config(port, &[a.port, b.port], None), &[port]);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 200_000 {
                    i += 1;
                    // Half the clients keep connections alive, half open one per request.
                    let result = if n % 2 == 0 {
                        raw(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").map(|r| r.status)
                    } else {
                        let mut s = connect(port);
                        (0..20)
                            .map(|_| {
                                s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")?;
                                read_response(&mut s, false).map(|r| r.status)
                            })
                            .find(|r| !matches!(r, Ok(200)))
                            .unwrap_or(Ok(200))
                    };
                    match result {
                        Ok(200) => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    for i in 0..50 {
        let servers: &[u16] = if i % 2 == 0 { &[a.port] } else { &[a.port, b.port] };
        hup(&l, &http_config(port, servers, None));
        let want = i + 1;
        assert!(
            wait_until(Duration::from_secs(5), || count(&l, "configuration reloaded") >= want),
            "reload {want} not seen"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    println!("50 reloads: {ok} exchanges succeeded, {failed} failed");
    assert!(ok > 100, "load ran ({ok})");
    assert_eq!(failed, 0);
    assert_eq!(count(&l, "reload failed"), 0);
}

#[test]
fn bad_config_keeps_the_running_one() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&http_config(port, &[a.port], None), &[port]);
    hup(&l, "[[listen]]\nname = 3\n");
    assert!(wait_until(Duration::from_secs(5), || count(&l, "reload failed") == 1));
    assert!(l.log_text().contains("lbha.toml:2:8"), "the error names the place: {}", l.log_text());
    assert_eq!(get(port, "/").text(), "A");
}

#[test]
fn reload_opens_new_binds_and_closes_removed_ones() {
    let a = Backend::start("A");
    let port = free_port();
    let extra = free_port();
    let l = Lbha::start(&http_config(port, &[a.port], None), &[port]);
    hup(&l, &http_config(port, &[a.port], Some(extra)));
    assert!(wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(("127.0.0.1", extra)).is_ok()));
    assert_eq!(get(extra, "/").text(), "A");
    hup(&l, &http_config(port, &[a.port], None));
    assert!(wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(("127.0.0.1", extra)).is_err()));
    assert_eq!(get(port, "/").text(), "A");
}

fn tcp_config(port: u16, server: u16, hard_stop: &str) -> String {
    format!(
        "[global]\nhard_stop_after = \"{hard_stop}\"\n[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"t\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{server}\" }}]\n"
    )
}

#[test]
fn long_tcp_session_survives_reload_and_is_bounded_once_stale() {
    let e1 = echo_server();
    let e2 = echo_server();
    let port = free_port();
    let l = Lbha::start(&tcp_config(port, e1, "300ms"), &[port]);
    let mut s = connect(port);
    assert_eq!(echo(&mut s, b"one").unwrap(), b"one");
    // Same server after the reload: the session is not stale and keeps running.
    hup(&l, &tcp_config(port, e1, "300ms").replace("[defaults]", "[defaults]\nretries = 2"));
    assert!(wait_until(Duration::from_secs(5), || count(&l, "configuration reloaded") == 1));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(echo(&mut s, b"two").unwrap(), b"two", "graceful reload keeps the session");
    // Its server is replaced: the session gets hard_stop_after, then it is cut.
    hup(&l, &tcp_config(port, e2, "300ms"));
    assert!(wait_until(Duration::from_secs(5), || count(&l, "configuration reloaded") == 2));
    assert!(wait_until(Duration::from_secs(10), || echo(&mut s, b"x").is_err()), "stale session cut");
    // The socket closes as the session ends, a moment before the line is logged.
    assert!(wait_until(Duration::from_secs(5), || l.log_text().contains("tcp session closed by reload (Stale)")));
    // New sessions go to the new server.
    let mut s2 = connect(port);
    assert_eq!(echo(&mut s2, b"new").unwrap(), b"new");
}

#[test]
fn reload_terminate_cuts_old_sessions_at_once() {
    let e1 = echo_server();
    let port = free_port();
    // A long grace period: only --terminate can explain a prompt cut.
    let l = Lbha::start(&tcp_config(port, e1, "1h"), &[port]);
    let mut s = connect(port);
    assert_eq!(echo(&mut s, b"one").unwrap(), b"one");
    let (code, out, err) = l.cli(&["reload", "--terminate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(wait_until(Duration::from_secs(10), || echo(&mut s, b"x").is_err()), "old session cut");
    assert!(wait_until(Duration::from_secs(5), || l.log_text().contains("tcp session closed by reload (Now)")));
    let mut s2 = connect(port);
    assert_eq!(echo(&mut s2, b"new").unwrap(), b"new", "new sessions are served");
}

/// Issue 14 item 16: a reload changing `[global] maxconn` resizes the running limit (a connection
/// waiting for a slot is served once the limit grows), `show info` says so, and a setting only a
/// restart applies is named in the reload answer.
#[test]
fn reload_resizes_global_maxconn_and_names_restart_only_settings() {
    let e = echo_server();
    let port = free_port();
    let cfg = |maxconn: u32, extra: &str| {
        format!(
            "[global]\nmaxconn = {maxconn}\n{extra}hard_stop_after = \"2s\"\n[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"t\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{e}\" }}]\n"
        )
    };
    let l = Lbha::start(&cfg(2, "nbthread = 1\n"), &[port]);
    let (mut a, mut b) = (connect(port), connect(port));
    assert_eq!(echo(&mut a, b"a").unwrap(), b"a");
    assert_eq!(echo(&mut b, b"b").unwrap(), b"b");
    // The third waits in the kernel backlog: both slots are taken.
    let mut c = connect(port);
    c.write_all(b"c").unwrap();
    std::fs::write(&l.config, cfg(3, "nbthread = 2\n")).unwrap();
    let (code, out, err) = l.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning: global.nbthread"), "{out}");
    let mut back = [0u8; 1];
    std::io::Read::read_exact(&mut c, &mut back).expect("served once maxconn grew to 3");
    assert_eq!(&back, b"c");
    let (_, info, _) = l.cli(&["show", "info"]);
    assert!(info.lines().any(|x| x == "Maxconn: 3"), "{info}");
}
