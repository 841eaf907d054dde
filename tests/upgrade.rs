//! `lbha upgrade`: a new executable takes the listening sockets over the control socket
//! (SCM_RIGHTS), so a client never sees a refused connection; the old process drains.

mod common;
use common::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn http_config(port: u16, servers: &[u16], extra: &str) -> String {
    let list: Vec<String> =
        servers.iter().enumerate().map(|(i, p)| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    format!(
        "[global]\nhard_stop_after = \"5s\"\n[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n{extra}\n[[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{}]\n",
        list.join(", ")
    )
}

/// Running (not exited, not a zombie: the test container's init may not reap).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            s.rsplit_once(')').is_some_and(|(_, rest)| !matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
        }
        Err(_) => false,
    }
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

/// Kills the processes an upgrade started (the harness only knows the first one).
#[derive(Default)]
struct Reaper(Mutex<Vec<u32>>);

impl Reaper {
    fn add(&self, pid: u32) {
        self.0.lock().unwrap().push(pid);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Runs `lbha upgrade` against `l`'s socket; returns the new pid (registered with `reaper`).
fn upgrade(l: &Lbha, reaper: &Reaper) -> u32 {
    let (code, out, err) = l.cli(&["upgrade"]);
    assert_eq!(code, 0, "upgrade failed:\n{out}{err}\n{}", l.log_text());
    let new = l.served_pid();
    reaper.add(new);
    assert!(out.contains(&format!("handed over to pid {new}")), "{out}");
    new
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
    first_failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut f = self.first_failures.lock().unwrap();
        if f.len() < 5 {
            f.push(what);
        }
    }
}

/// One exchange on a fresh connection; a refused connect is counted apart.
fn one_request(port: u16, t: &Tally) {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            t.refused.fetch_add(1, Ordering::SeqCst);
            return;
        }
        Err(e) => return t.fail(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let r = s
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .and_then(|()| read_response(&mut s, false));
    match r {
        Ok(r) if r.status == 200 => {
            t.ok.fetch_add(1, Ordering::SeqCst);
        }
        Ok(r) => t.fail(format!("status {}", r.status)),
        Err(e) => t.fail(format!("fresh connection: {e}")),
    }
}

/// Up to 20 exchanges on one kept-alive connection, honouring `Connection: close`.
fn keep_alive_requests(port: u16, t: &Tally) {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            t.refused.fetch_add(1, Ordering::SeqCst);
            return;
        }
        Err(e) => return t.fail(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    for _ in 0..20 {
        let r = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").and_then(|()| read_response(&mut s, false));
        match r {
            Ok(r) if r.status == 200 => {
                t.ok.fetch_add(1, Ordering::SeqCst);
                if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                    return;
                }
            }
            Ok(r) => return t.fail(format!("status {}", r.status)),
            Err(e) => return t.fail(format!("kept-alive connection: {e}")),
        }
    }
}

/// Client threads, bounded to 60 s and 100,000 exchanges each: half open a connection per
/// request, half keep connections alive.
fn load(port: u16, threads: usize) -> (Arc<AtomicBool>, Arc<Tally>, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let handles = (0..threads)
        .map(|n| {
            let (stop, t) = (stop.clone(), tally.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 100_000 {
                    i += 1;
                    if n % 2 == 0 { one_request(port, &t) } else { keep_alive_requests(port, &t) }
                }
            })
        })
        .collect();
    (stop, tally, handles)
}

#[test]
fn upgrades_under_load_refuse_and_fail_nothing() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let mut l = Lbha::start(&http_config(port, &[a.port, b.port], ""), &[port]);
    let reaper = Reaper::default();
    let first = l.served_pid();
    let (stop, tally, clients) = load(port, 4);
    wait_until(Duration::from_secs(10), || tally.ok.load(Ordering::SeqCst) > 200);
    let mut pids = vec![first];
    for _ in 0..3 {
        let before = tally.ok.load(Ordering::SeqCst);
        pids.push(upgrade(&l, &reaper));
        // Traffic flows through the new process (and the old one drains) before the next upgrade.
        assert!(wait_until(Duration::from_secs(10), || tally.ok.load(Ordering::SeqCst) > before + 200));
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, refused, failed) =
        (tally.ok.load(Ordering::SeqCst), tally.refused.load(Ordering::SeqCst), tally.failed.load(Ordering::SeqCst));
    println!("3 upgrades under load: {ok} exchanges succeeded, {refused} connections refused, {failed} failed");
    assert_eq!(refused, 0, "refused connections");
    assert_eq!(failed, 0, "failed exchanges: {:?}", tally.first_failures.lock().unwrap());
    let mut distinct = pids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "each upgrade starts a new process: {pids:?}");
    // The first process (the harness's child) drained and exited 0; the middle ones are gone.
    let st = l.wait_exit(Duration::from_secs(15)).expect("the old process exits");
    assert!(st.success(), "old process exit: {st}\n{}", l.log_text());
    for p in &pids[1..3] {
        assert!(wait_until(Duration::from_secs(15), || !alive(*p)), "pid {p} still running");
    }
    assert!(alive(pids[3]));
    assert_eq!(get(port, "/").status, 200);
    let log = l.log_text();
    assert_eq!(log.matches("upgrade: handing 1 listening socket(s)").count(), 3, "{log}");
}

#[test]
fn long_tcp_session_on_the_old_process_lasts_until_hard_stop_after() {
    let e = echo_server();
    let port = free_port();
    let cfg = format!(
        "[global]\nhard_stop_after = \"3s\"\n[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"t\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{e}\" }}]\n"
    );
    let mut l = Lbha::start(&cfg, &[port]);
    let reaper = Reaper::default();
    let mut s = connect(port);
    assert_eq!(echo(&mut s, b"before").unwrap(), b"before");
    let new = upgrade(&l, &reaper);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(echo(&mut s, b"after").unwrap(), b"after", "the session goes on in the draining process");
    let mut s2 = connect(port);
    assert_eq!(echo(&mut s2, b"new").unwrap(), b"new", "new sessions are served by pid {new}");
    assert!(wait_until(Duration::from_secs(15), || echo(&mut s, b"x").is_err()), "cut at hard_stop_after");
    let st = l.wait_exit(Duration::from_secs(10)).expect("the old process exits");
    assert!(st.success(), "{st}");
    assert!(l.log_text().contains("hard_stop_after reached: closing 1 remaining connections"), "{}", l.log_text());
    assert_eq!(echo(&mut s2, b"still").unwrap(), b"still", "the new process's session is untouched");
}

#[test]
fn failed_upgrades_leave_the_old_daemon_serving() {
    let a = Backend::start("A");
    let port = free_port();
    let good = http_config(port, &[a.port], "");
    let l = Lbha::start(&good, &[port]);
    let reaper = Reaper::default();
    let pid = l.served_pid();
    let still_serving = |why: &str| {
        assert_eq!(l.served_pid(), pid, "{why}: the old daemon answers the control socket");
        assert_eq!(get(port, "/").text(), "A", "{why}: the old daemon serves");
    };

    // A config error: the new process reports it and exits; the CLI shows where it is.
    let bad = good.replace("[[listen]]", "[[listen]]\nbogus = 1");
    let line = bad.lines().position(|x| x.starts_with("bogus")).unwrap() + 1;
    std::fs::write(&l.config, &bad).unwrap();
    let (code, out, err) = l.cli(&["upgrade"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("upgrade failed, pid {pid} still serving")), "{err}");
    assert!(err.contains(&format!("lbha.toml:{line}:1")) && err.contains("bogus"), "names the place: {err}");
    still_serving("bad config");

    // No such executable: refused by the CLI before the daemon is asked.
    let (code, _, err) = l.cli(&["upgrade", "--binary", "/nonexistent/lbha"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/lbha") && err.contains("No such file"), "{err}");
    // An executable that is not lbha exits at once.
    let (code, _, err) = l.cli(&["upgrade", "--binary", "/bin/false"]);
    assert_eq!(code, 1);
    assert!(err.contains("exited (exit status: 1) before taking over"), "{err}");
    // One that does not even start (the daemon's own check).
    let script = l.dir.write("not-elf", "not a program\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, _, err) = l.cli(&["upgrade", "--binary", script.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot start") || err.contains("before taking over"), "{err}");
    still_serving("bad binaries");

    // Fixed: the upgrade goes through.
    std::fs::write(&l.config, &good).unwrap();
    let new = upgrade(&l, &reaper);
    assert_ne!(new, pid);
    assert_eq!(get(port, "/").text(), "A");
}

#[test]
fn control_socket_api_and_server_state_pass_over() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let api = free_port();
    let state = TempDir::new("upgrade-api");
    let extra = format!(
        "[[userlist]]\nname = \"ops\"\nusers = [{{ name = \"admin\", insecure_password = \"123456\" }}]\n[api]\nbind = \"127.0.0.1:{api}\"\nuserlist = \"ops\"\nstate_dir = \"{}\"\n",
        state.0.display()
    );
    let l = Lbha::start(&http_config(port, &[a.port, b.port], &extra), &[port, api]);
    let reaper = Reaper::default();
    let old = l.served_pid();
    for cmd in ["set server web/s1 state maint", "set server web/s0 weight 7"] {
        let (code, out, err) = l.cli(&["cmd", cmd]);
        assert_eq!(code, 0, "{cmd}: {out}{err}");
    }
    let new = upgrade(&l, &reaper);
    assert_ne!(new, old);
    // The control socket at the same path answers from the new process.
    let (code, info, _) = l.cli(&["show", "info"]);
    assert_eq!(code, 0);
    assert!(info.contains(&format!("Pid: {new}")), "{info}");
    let (_, servers, _) = l.cli(&["show", "servers", "web"]);
    let s0 = servers.lines().find(|x| x.contains(" s0 ")).unwrap_or_else(|| panic!("{servers}"));
    let s1 = servers.lines().find(|x| x.contains(" s1 ")).unwrap_or_else(|| panic!("{servers}"));
    assert_eq!(s0.split_whitespace().nth(7), Some("7"), "weight kept: {s0}");
    assert_eq!(s1.split_whitespace().nth(6), Some("1"), "maintenance kept: {s1}");
    for _ in 0..10 {
        assert_eq!(get(port, "/").text(), "A", "s1 stays in maintenance");
    }
    // The API answers on its address, from the new process.
    let req = "GET /v2/services/haproxy/configuration/backends HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic YWRtaW46MTIzNDU2\r\n\r\n";
    let r = raw(api, req.as_bytes()).expect("API answers");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"web\""), "{}", r.text());
    assert!(l.log_text().contains("Data Plane API listening"));
}

#[test]
fn a_new_process_failing_after_the_takeover_gives_everything_back() {
    let a = Backend::start("A");
    let port = free_port();
    let good = http_config(port, &[a.port], "");
    let l = Lbha::start(&good, &[port]);
    let pid = l.served_pid();
    // The new config adds an API on an address something else holds: the new process gets the
    // listening sockets and the control socket, then fails to start the API.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = taken.local_addr().unwrap().port();
    let state = TempDir::new("upgrade-rollback");
    let extra = format!(
        "[[userlist]]\nname = \"ops\"\nusers = [{{ name = \"admin\", insecure_password = \"123456\" }}]\n[api]\nbind = \"127.0.0.1:{api}\"\nuserlist = \"ops\"\nstate_dir = \"{}\"\n",
        state.0.display()
    );
    std::fs::write(&l.config, http_config(port, &[a.port], &extra)).unwrap();
    let (code, out, err) = l.cli(&["upgrade"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("cannot bind the API on 127.0.0.1:{api}")), "{err}");
    assert!(l.log_text().contains("upgrade rolled back"), "{}", l.log_text());
    assert_eq!(l.served_pid(), pid, "the old daemon serves the control socket again");
    assert_eq!(get(port, "/").text(), "A");
    // And a later upgrade with a usable config goes through.
    drop(taken);
    std::fs::write(&l.config, &good).unwrap();
    let reaper = Reaper::default();
    assert_ne!(upgrade(&l, &reaper), pid);
}

/// Issue 14 item 23: a daemon run from an haproxy.cfg starts its successor the same way, and the
/// successor's reloads read the haproxy.cfg too.
#[test]
fn upgrade_keeps_the_haproxy_config_source() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let cfg = |server: u16| {
        format!(
            "global\n  hard-stop-after 5s\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nlisten web\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{server}\n"
        )
    };
    let l = Lbha::start_haproxy(&cfg(a.port), &[port]);
    let reaper = Reaper::default();
    let old = l.served_pid();
    let new = upgrade(&l, &reaper);
    assert_ne!(new, old);
    assert_eq!(get(port, "/").text(), "A");
    std::fs::write(&l.config, cfg(b.port)).unwrap();
    let (code, out, err) = l.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}\n{}", l.log_text());
    assert_eq!(get(port, "/").text(), "B", "the new process reloads from the haproxy.cfg");
}

/// An operator socket (what `lbha convert` writes for a `stats socket` without `level`) still
/// refuses changes, but `upgrade` and the new process's `_upgrade` go by the peer's uid: before,
/// both got `Permission denied` and converted configs could never be upgraded.
#[test]
fn upgrade_works_on_an_operator_socket() {
    let a = Backend::start("A");
    let port = free_port();
    let cfg =
        http_config(port, &[a.port], "").replace("[global]\n", "[global]\ncontrol_socket = { level = \"operator\" }\n");
    let l = Lbha::start(&cfg, &[port]);
    let reaper = Reaper::default();
    assert_eq!(l.ctl(&["reload"]), "Permission denied\n\n");
    let old = l.served_pid();
    let new = upgrade(&l, &reaper);
    assert_ne!(new, old);
    assert_eq!(get(port, "/").text(), "A");
}

/// `show table NAME` lines without the process-local parts (address, remaining lifetime).
fn table_data(l: &Lbha, name: &str) -> Vec<String> {
    let show = l.ctl(&[&format!("show table {name}")]);
    show.lines()
        .filter_map(|x| x.split_once(" key=").map(|(_, r)| r))
        .map(|r| {
            let (key, rest) = r.split_once(' ').unwrap_or((r, ""));
            let data = rest.split_once(" exp=").map_or(rest, |x| x.1).split_once(' ').map_or("", |x| x.1);
            format!("{key} {data}")
        })
        .collect()
}

/// The stick tables pass to the new process whole, a peers section's table too (a node with no
/// peer up to refill it); a reload before keeps them as well.
#[test]
fn stick_tables_pass_over() {
    let a = Backend::start("A");
    let port = free_port();
    let pport = free_port();
    let extra = format!(
        "[[peers]]\nname = \"mesh\"\npeer = [\"me 127.0.0.1:{pport}\"]\n\
         table = [{{ name = \"t\", type = \"string\", len = 16, size = 100, expire = \"10m\", store = [\"gpc0\"] }}]\n\
         [[backend]]\nname = \"st\"\nstick_table = {{ type = \"ip\", size = 100, expire = \"10m\", store = [\"gpc0\", \"http_req_cnt\", \"http_req_rate(10s)\", \"gpt0\"] }}\n"
    );
    let cfg = http_config(port, &[a.port], &extra).replacen("[global]\n", "[global]\nlocalpeer = \"me\"\n", 1);
    let l = Lbha::start(&cfg, &[port]);
    let reaper = Reaper::default();
    for cmd in [
        "set table st key 192.0.2.1 data.gpc0 4 data.http_req_cnt 9 data.gpt0 2",
        "set table st key 192.0.2.2 data.gpc0 1",
        "set table mesh/t key alice data.gpc0 5",
    ] {
        let out = l.ctl(&[cmd]);
        assert!(!out.contains("rror") && !out.contains("No such"), "{cmd}: {out}");
    }
    let before = (table_data(&l, "st"), table_data(&l, "mesh/t"));
    assert_eq!((before.0.len(), before.1.len()), (2, 1), "{before:?}");
    let r = l.ctl(&["reload"]);
    assert!(r.contains("Success=1"), "{r}");
    assert_eq!((table_data(&l, "st"), table_data(&l, "mesh/t")), before, "kept by the reload");
    let old = l.served_pid();
    let new = upgrade(&l, &reaper);
    assert_ne!(new, old);
    assert_eq!((table_data(&l, "st"), table_data(&l, "mesh/t")), before, "handed to pid {new}");
    assert!(l.log_text().contains("took 3 stick table entries"), "{}", l.log_text());
}

/// A server mid-way down (checks failing, not yet `fall` of them) stays mid-way across an
/// upgrade: the new process counts on from the old one's check counter (one more failure does
/// not take it down, the next does) and keeps its time since the last change.
#[test]
fn check_counter_and_last_change_pass_over() {
    let mut hc = common::hand_checked::HandChecked::start();
    let port = free_port();
    let cfg = format!(
        "global\n  hard-stop-after 5s\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n  timeout check 30s\n\
         listen web\n  bind 127.0.0.1:{port}\n  option httpchk\n  server s 127.0.0.1:{} check inter 100ms rise 3 fall 4\n  server o 127.0.0.1:9\n",
        hc.port
    );
    let l = Lbha::start_haproxy(&cfg, &[port]);
    let reaper = Reaper::default();
    // Name, op state, health; and the time since the last change of `s`.
    let state = |l: &Lbha| {
        let text = l.ctl(&["show servers state web"]);
        let f: Vec<Vec<String>> = text
            .lines()
            .map(|x| x.split(' ').map(String::from).collect::<Vec<_>>())
            .filter(|f| f.len() > 12 && f[1] == "web")
            .collect();
        (
            f.iter().map(|f| format!("{} {} {}", f[3], f[5], f[12])).collect::<Vec<_>>(),
            f[0][9].parse::<u64>().unwrap(),
            text,
        )
    };
    for status in [200, 200, 200, 500, 500] {
        hc.answer(status);
    }
    // Up, two failures from the top of 6 (UP 2/4), unchanged since start.
    assert_eq!(state(&l).0, ["s 2 4", "o 2 2"], "{}", state(&l).2);
    assert!(wait_until(Duration::from_secs(10), || state(&l).1 >= 2), "{}", state(&l).2);
    let before = state(&l).1;
    let old = l.served_pid();
    let new = upgrade(&l, &reaper);
    assert_ne!(new, old);
    let (cols, since, text) = state(&l);
    assert_eq!(cols, ["s 2 4", "o 2 2"], "the counter passed over:\n{text}");
    assert!(since >= before, "the time since the last change passed over ({since} < {before}):\n{text}");
    let (_, stat, _) = l.cli(&["show", "stat"]);
    assert!(stat.lines().any(|x| x.starts_with("web,s,") && x.contains(",UP 2/4,")), "{stat}");
    // The old process's probe in flight ends with its checks; the new one's count on.
    hc.skip();
    hc.answer(500);
    assert_eq!(state(&l).0[0], "s 2 3", "{}", state(&l).2);
    hc.answer(500);
    assert_eq!(state(&l).0[0], "s 0 0", "{}", state(&l).2);
}
