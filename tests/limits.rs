//! Connection limits and resources: frontend `maxconn` against the global one, the descriptor
//! limit, and memory per idle connection. Real lbha binary, loopback only.

mod common;
use common::*;
mod kit;
use kit::{log_count, wait_log};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Two HTTP frontends on one backend: `a` limited to `a_maxconn`, `b` unlimited, and a global
/// limit shared by both.
fn two_frontends(global: u32, a_port: u16, a_maxconn: u32, b_port: u16, backend: u16) -> String {
    format!(
        r#"
[global]
maxconn = {global}

[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "5s", http_request = "30s", http_keep_alive = "30s" }}

[[frontend]]
name = "a"
bind = ["127.0.0.1:{a_port}"]
maxconn = {a_maxconn}
default_backend = "app"

[[frontend]]
name = "b"
bind = ["127.0.0.1:{b_port}"]
default_backend = "app"

[[backend]]
name = "app"
servers = [{{ name = "s", addr = "127.0.0.1:{backend}" }}]
"#
    )
}

#[test]
fn connections_parked_by_a_frontend_limit_take_no_global_slot() {
    let app = Backend::start("app");
    let (a, b) = (free_port(), free_port());
    let _l = Lbha::start(&two_frontends(20, a, 2, b, app.port), &[a, b]);
    // Two idle connections fill `a`; forty more wait beyond its limit, twice the global maxconn.
    let held: Vec<TcpStream> = (0..2).map(|_| connect(a)).collect();
    let parked: Vec<TcpStream> = (0..40).map(|_| connect(a)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // Several in turn: an accept loop holds one global slot ahead while it waits, so one request
    // alone could pass even with the global slots gone.
    for i in 0..5 {
        let r = raw(b, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("request {i}: frontend b stopped serving while a is at its maxconn: {e}"));
        assert_eq!(r.status, 200);
    }
    // A parked connection is served once `a` has room again.
    let mut waiting = parked.into_iter().next().unwrap();
    waiting.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    drop(held);
    let r = read_response(&mut waiting, false).expect("a parked connection is served when a slot frees");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "app");
}

/// Starts lbha with its descriptor limit (soft and hard) set to `nofile`, so it cannot raise it.
fn start_with_nofile(config: &str, nofile: u64, wait_ports: &[u16]) -> Lbha {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("limits");
    let cfg = dir.write("lbha.toml", config);
    let log = dir.0.join("lbha.log");
    let sock = dir.0.join("ctl.sock");
    let mut cmd = std::process::Command::new(lbha_bin());
    cmd.args(["run", "-c"])
        .arg(&cfg)
        .arg("-S")
        .arg(&sock)
        .env("LBHA_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(move || {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile).map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().expect("spawn lbha");
    let mut l = Lbha { child, dir, config: cfg, log, sock };
    for &p in wait_ports {
        l.wait_port(p);
    }
    l
}

fn one_frontend(maxconn: u32, port: u16, backend: u16) -> String {
    format!(
        r#"
[global]
maxconn = {maxconn}

[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "5s", http_request = "30s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s", addr = "127.0.0.1:{backend}" }}]
"#
    )
}

#[test]
fn a_descriptor_limit_too_low_for_maxconn_is_reported_at_start() {
    let app = Backend::start("app");
    let port = free_port();
    let l = start_with_nofile(&one_frontend(1000, port, app.port), 256, &[port]);
    wait_log(|| l.log_text(), "descriptor limit (256) too low for maxconn = 1000");
    let log = l.log_text();
    assert!(log.contains("raise `ulimit -n`"), "{log}");
    // 256 minus the listener and the reserve, two per connection.
    assert!(log.contains("lower maxconn to 95 or less"), "{log}");
}

#[test]
fn a_limit_that_fits_maxconn_gives_no_warning() {
    let app = Backend::start("app");
    let port = free_port();
    let l = start_with_nofile(&one_frontend(50, port, app.port), 256, &[port]);
    assert_eq!(get(port, "/").status, 200);
    let log = l.log_text();
    assert!(!log.contains("descriptor limit"), "{log}");
}

#[test]
fn running_out_of_descriptors_is_logged_at_most_once_a_second() {
    let app = Backend::start("app");
    let port = free_port();
    let started = std::time::Instant::now();
    let l = start_with_nofile(&one_frontend(1000, port, app.port), 96, &[port]);
    // More idle connections than descriptors: the rest wait in the backlog while accepts fail.
    let _idle: Vec<TcpStream> = (0..150).map(|_| connect(port)).collect();
    wait_log(|| l.log_text(), "accept on ");
    std::thread::sleep(Duration::from_secs(2));
    let failures = log_count(&l.log_text(), "accept on ");
    let elapsed = started.elapsed().as_secs();
    // One line a second at most (the first at once); every 50 ms would be about 40 here.
    assert!(failures <= elapsed as usize + 1, "{failures} accept failure lines in {elapsed} s:\n{}", l.log_text());
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A frontend that answers every request itself, so no server connection is counted.
fn answering(port: u16) -> String {
    format!(
        r#"
[global]
maxconn = 10000

[defaults]
mode = "http"
timeout = {{ client = "60s", http_request = "60s", http_keep_alive = "60s" }}

[[frontend]]
name = "web"
bind = ["127.0.0.1:{port}"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", body = "ok" }} }}]
"#
    )
}

/// Waits (up to 10 s) until `f` holds, checking every 100 ms.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

const BURST: usize = 2000;

/// Lifts this test process's soft descriptor limit so it can hold `need` sockets.
fn allow_descriptors(need: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard >= need, "this test needs {need} descriptors; the hard limit is {hard} (raise `ulimit -Hn`)");
    if soft < need {
        setrlimit(Resource::RLIMIT_NOFILE, need, hard).unwrap();
    }
}

#[test]
fn an_idle_connection_costs_little_memory_and_a_burst_gives_it_back() {
    allow_descriptors(BURST as u64 + 256);
    let port = free_port();
    let l = Lbha::start(&answering(port), &[port]);
    let pid = l.child.id();
    // Warm up: the first connections and requests allocate what every later one reuses.
    for _ in 0..20 {
        assert_eq!(get(port, "/").status, 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    let base = rss_kib(pid);

    // Connections that have sent nothing yet: only the socket and a small task.
    let silent: Vec<TcpStream> = (0..BURST).map(|_| connect(port)).collect();
    assert!(eventually(|| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) >= BURST));
    std::thread::sleep(Duration::from_millis(300));
    let per_conn = (rss_kib(pid).saturating_sub(base)) * 1024 / BURST as u64;
    assert!(per_conn < 8 * 1024, "{per_conn} bytes resident per idle connection (bound 8 KiB)");
    drop(silent);

    // A burst of keep-alive connections, each idle after one request, then closed.
    let mut conns = Vec::new();
    for _ in 0..BURST {
        let mut s = connect(port);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s, false).unwrap().status, 200);
        conns.push(s);
    }
    let held = rss_kib(pid);
    let grew = held.saturating_sub(base);
    assert!(grew > 0, "RSS did not grow with {BURST} connections ({base} KiB)");
    drop(conns);
    // At least half of what the burst took goes back to the system (glibc malloc kept all of it;
    // tokio keeps its I/O registration slabs, and under a parallel test run about 60% came back).
    // A proxy thread gives its freed memory back when it next goes idle (at most once a second):
    // one request per check gives the threads that idle moment, as any traffic would.
    let back = eventually(|| {
        let _ = get(port, "/");
        rss_kib(pid) < base + grew / 2
    });
    assert!(back, "RSS {} KiB after closing, {base} KiB before the burst, {held} KiB during it", rss_kib(pid));
}

fn limited_frontend(maxconn: u32, binds: &[u16], backend: u16) -> String {
    let binds: Vec<String> = binds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "30s", server = "30s", tunnel = "60s", http_request = "30s", http_keep_alive = "30s" }}

[[frontend]]
name = "web"
bind = [{}]
maxconn = {maxconn}
default_backend = "app"

[[backend]]
name = "app"
servers = [{{ name = "s", addr = "127.0.0.1:{backend}" }}]
"#,
        binds.join(", ")
    )
}

/// An upgraded connection ends hyper's connection while its bytes still flow: the tunnel keeps the
/// client connection's `maxconn` slot until it closes, so a third client waits.
#[test]
fn open_websocket_tunnels_hold_their_maxconn_slots() {
    use std::io::Read;
    let ws = kit::head_server(kit::Answer::UpgradeIfAsked);
    let port = free_port();
    let _l = Lbha::start(&limited_frontend(2, &[port], ws), &[port]);
    let tunnel = || {
        let mut s = connect(port);
        s.write_all(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap();
        let r = read_response(&mut s, true).unwrap();
        assert_eq!(r.status, 101);
        assert_eq!(echo(&mut s, b"ping").unwrap(), b"ping");
        s
    };
    let (first, second) = (tunnel(), tunnel());
    let mut third = connect(port);
    third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 1];
    let early = third.read(&mut b);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a third connection was served past maxconn 2 with two tunnels open: {early:?}"
    );
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = read_response(&mut third, false).expect("served once a tunnel closes");
    assert_eq!((r.status, r.text().as_str()), (200, "no"));
    drop(second);
}

/// A bind waiting for connections holds no slot of its frontend: with `maxconn 1` and two binds,
/// both serve (one connection at a time).
#[test]
fn every_bind_of_a_frontend_at_maxconn_one_serves() {
    let app = Backend::start("app");
    let (a, b) = (free_port(), free_port());
    let _l = Lbha::start(&limited_frontend(1, &[a, b], app.port), &[a, b]);
    for (i, port) in [a, b, a, b, b, a].into_iter().enumerate() {
        let r = raw(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("request {i} to port {port} not served: {e}"));
        assert_eq!((r.status, r.text().as_str()), (200, "app"));
    }
}
