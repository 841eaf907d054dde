//! `nbthread = 2`: one current-thread runtime per proxy thread, each client connection served on
//! the thread the accept loop handed it to (`proxy::workers`). Connections are served on both
//! threads, and a reload, a `lbha upgrade` and its drain work across them; `nbthread = 1` starts
//! no proxy thread of its own.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn http_config(port: u16, servers: &[u16], threads: usize) -> String {
    let list: Vec<String> =
        servers.iter().enumerate().map(|(i, p)| format!("{{ name = \"s{i}\", addr = \"127.0.0.1:{p}\" }}")).collect();
    format!(
        "[global]\nnbthread = {threads}\nhard_stop_after = \"5s\"\n[defaults]\nmode = \"http\"\n\
         timeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n[[listen]]\nname = \"web\"\n\
         bind = [\"127.0.0.1:{port}\"]\nservers = [{}]\n",
        list.join(", ")
    )
}

/// The threads of `pid` whose name starts with `prefix`: (name, tid).
fn threads_named(pid: u32, prefix: &str) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let tid: u32 = e.file_name().to_str()?.parse().ok()?;
                    let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    Some((comm.trim().to_string(), tid))
                })
                .filter(|(n, _)| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The proxy thread of each live session, from `show sess all` (`tid=` of each session), sorted.
fn session_threads(l: &Lbha) -> Vec<u32> {
    let all = l.ctl(&["show sess all"]);
    let mut tids: Vec<u32> = all
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("tid="))
        .map(|t| t.parse().unwrap_or_else(|_| panic!("tid={t} in:\n{all}")))
        .collect();
    tids.sort();
    tids
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

/// Running (not exited, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')').is_some_and(|(_, rest)| !matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
    })
}

#[test]
fn two_threads_serve_parallel_keep_alive_clients_on_both() {
    let a = Backend::start("A");
    let port = free_port();
    let l = Lbha::start(&http_config(port, &[a.port], 2), &[port]);
    let pid = l.child.id();
    let workers = threads_named(pid, "lbha-proxy-");
    assert_eq!(workers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["lbha-proxy-1"], "one worker thread");
    // 16 clients at once, 50 requests each on one kept-alive connection: the accept loop hands
    // them to the two threads in turn (the fewest live connections first). They hold their
    // connections open until the sessions have been listed.
    let (done_tx, done) = std::sync::mpsc::channel();
    let mut release = Vec::new();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (done_tx, (release_tx, released)) = (done_tx.clone(), std::sync::mpsc::channel::<()>());
            release.push(release_tx);
            std::thread::spawn(move || {
                let mut s = connect(port);
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut ok = 0;
                for _ in 0..50 {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                    let r = read_response(&mut s, false).expect("an answer on the kept-alive connection");
                    assert_eq!((r.status, r.text()), (200, "A".to_string()));
                    ok += 1;
                }
                let _ = done_tx.send(());
                // Until the test lists the sessions (it drops the sender), at most 60 s.
                let _ = released.recv_timeout(Duration::from_secs(60));
                ok
            })
        })
        .collect();
    for _ in 0..16 {
        done.recv_timeout(Duration::from_secs(60)).expect("every client finished its requests");
    }
    // Each connection is on the thread it was accepted for: 8 each (fewest live first).
    let tids = session_threads(&l);
    drop(release);
    let served: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
    assert_eq!(served, 800);
    assert_eq!(tids, [[0; 8], [1; 8]].concat(), "the 16 connections are spread over both threads");
    assert!(a.connections() >= 1, "the server saw the requests");
    let (_, info, _) = l.cli(&["show", "info"]);
    assert!(info.lines().any(|x| x == "Nbthread: 2"), "{info}");

    // One thread: no worker thread at all.
    let port1 = free_port();
    let one = Lbha::start(&http_config(port1, &[a.port], 1), &[port1]);
    assert_eq!(get(port1, "/").text(), "A");
    assert!(threads_named(one.child.id(), "lbha-proxy-").is_empty(), "nbthread 1 started a proxy thread");
}

/// Client threads until `stop` (bounded: 60 s, 100,000 exchanges each): half open a connection
/// per request, half keep one alive for up to 20 (honouring `Connection: close`). Returns (ok,
/// refused, failures).
type Tally = (AtomicUsize, AtomicUsize, Mutex<Vec<String>>);

fn load(port: u16, n: usize) -> (Arc<AtomicBool>, Arc<Tally>, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Tally> = Arc::default();
    let handles = (0..n)
        .map(|i| {
            let (stop, t) = (stop.clone(), tally.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut rounds = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && rounds < 100_000 {
                    rounds += 1;
                    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(s) => s,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            t.1.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        Err(e) => {
                            t.2.lock().unwrap().push(format!("connect: {e}"));
                            continue;
                        }
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let (req, times): (&[u8], usize) = if i % 2 == 0 {
                        (b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1)
                    } else {
                        (b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 20)
                    };
                    for _ in 0..times {
                        match s.write_all(req).and_then(|()| read_response(&mut s, false)) {
                            Ok(r) if r.status == 200 => {
                                t.0.fetch_add(1, Ordering::SeqCst);
                                if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                                    break;
                                }
                            }
                            Ok(r) => {
                                t.2.lock().unwrap().push(format!("status {}", r.status));
                                break;
                            }
                            Err(e) => {
                                t.2.lock().unwrap().push(format!("exchange: {e}"));
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    (stop, tally, handles)
}

#[test]
fn reloads_under_load_at_two_threads_fail_no_request() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let l = Lbha::start(&http_config(port, &[a.port, b.port], 2), &[port]);
    let (stop, tally, clients) = load(port, 4);
    assert!(wait_until(Duration::from_secs(10), || tally.0.load(Ordering::SeqCst) > 100), "load runs");
    for i in 0..10 {
        let servers: &[u16] = if i % 2 == 0 { &[a.port] } else { &[a.port, b.port] };
        let tmp = l.config.with_extension("tmp");
        std::fs::write(&tmp, http_config(port, servers, 2)).unwrap();
        std::fs::rename(&tmp, &l.config).unwrap();
        let (code, out, err) = l.cli(&["reload"]);
        assert_eq!(code, 0, "reload {i}: {out}{err}");
    }
    let before = tally.0.load(Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || tally.0.load(Ordering::SeqCst) > before + 100), "served after");
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, refused, failed) =
        (tally.0.load(Ordering::SeqCst), tally.1.load(Ordering::SeqCst), tally.2.lock().unwrap());
    println!("10 reloads at nbthread 2: {ok} exchanges, {refused} refused, {} failed", failed.len());
    assert_eq!(refused, 0);
    assert!(failed.is_empty(), "failed exchanges: {:?}", &failed[..failed.len().min(5)]);
    assert!(!l.log_text().contains("reload failed"), "{}", l.log_text());
}

/// Kills the processes an upgrade started (the harness only knows the first one).
#[derive(Default)]
struct Reaper(Mutex<Vec<u32>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn upgrade(l: &Lbha, reaper: &Reaper) -> u32 {
    let (code, out, err) = l.cli(&["upgrade"]);
    assert_eq!(code, 0, "upgrade failed:\n{out}{err}\n{}", l.log_text());
    let new = l.served_pid();
    reaper.0.lock().unwrap().push(new);
    assert!(out.contains(&format!("handed over to pid {new}")), "{out}");
    new
}

/// HTTP under load across an upgrade: nothing refused or failed, and the old process, its
/// connections on both threads drained, exits cleanly.
#[test]
fn an_upgrade_under_load_at_two_threads_drains_both() {
    let a = Backend::start("A");
    let port = free_port();
    let mut l = Lbha::start(&http_config(port, &[a.port], 2), &[port]);
    let reaper = Reaper::default();
    let (stop, tally, clients) = load(port, 4);
    assert!(wait_until(Duration::from_secs(10), || tally.0.load(Ordering::SeqCst) > 100), "load runs");
    let new = upgrade(&l, &reaper);
    let before = tally.0.load(Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || tally.0.load(Ordering::SeqCst) > before + 100), "served after");
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, refused, failed) =
        (tally.0.load(Ordering::SeqCst), tally.1.load(Ordering::SeqCst), tally.2.lock().unwrap());
    println!("an upgrade at nbthread 2: {ok} exchanges, {refused} refused, {} failed", failed.len());
    assert_eq!(refused, 0);
    assert!(failed.is_empty(), "failed exchanges: {:?}", &failed[..failed.len().min(5)]);
    let st = l.wait_exit(Duration::from_secs(15)).expect("the old process exits");
    assert!(st.success(), "old process exit: {st}\n{}", l.log_text());
    assert!(alive(new));
    assert_eq!(threads_named(new, "lbha-proxy-").len(), 1, "the new process runs two threads too");
}

/// TCP sessions on both threads of the old process go on after an upgrade and are cut at
/// `hard_stop_after`, both counted; the worker thread then ends with the process.
#[test]
fn tcp_sessions_on_both_threads_last_until_hard_stop_after() {
    let e = echo_server();
    let port = free_port();
    let cfg = format!(
        "[global]\nnbthread = 2\nhard_stop_after = \"10s\"\n[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"t\"\n\
         bind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{e}\" }}]\n"
    );
    let mut l = Lbha::start(&cfg, &[port]);
    let reaper = Reaper::default();
    let mut s1 = connect(port);
    assert_eq!(echo(&mut s1, b"one").unwrap(), b"one");
    // The second connection goes to the thread with none: the worker.
    let mut s2 = connect(port);
    assert_eq!(echo(&mut s2, b"two").unwrap(), b"two");
    assert_eq!(session_threads(&l), [0, 1], "one session on each thread");
    upgrade(&l, &reaper);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(echo(&mut s1, b"after").unwrap(), b"after", "the session goes on in the draining process");
    assert_eq!(echo(&mut s2, b"after").unwrap(), b"after", "on both threads");
    assert!(wait_until(Duration::from_secs(30), || echo(&mut s1, b"x").is_err()), "cut at hard_stop_after");
    assert!(wait_until(Duration::from_secs(10), || echo(&mut s2, b"x").is_err()), "cut at hard_stop_after");
    let st = l.wait_exit(Duration::from_secs(30)).expect("the old process exits");
    assert!(st.success(), "{st}");
    assert!(l.log_text().contains("hard_stop_after reached: closing 2 remaining connections"), "{}", l.log_text());
}

/// `shutdown session` ends a session whichever thread serves it.
#[test]
fn shutdown_session_reaches_both_threads() {
    let e = echo_server();
    let port = free_port();
    let cfg = format!(
        "[global]\nnbthread = 2\n[defaults]\nmode = \"tcp\"\n[[listen]]\nname = \"t\"\n\
         bind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", addr = \"127.0.0.1:{e}\" }}]\n"
    );
    let l = Lbha::start(&cfg, &[port]);
    // Held open together: one on each thread.
    let mut socks: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    for s in &mut socks {
        assert_eq!(echo(s, b"hi").unwrap(), b"hi");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let list = l.ctl(&["show sess"]);
    let ids: Vec<&str> = list.lines().filter(|x| x.starts_with("0x")).filter_map(|x| x.split(':').next()).collect();
    assert_eq!(ids.len(), 2, "{list}");
    let cmds: Vec<String> = ids.iter().map(|id| format!("shutdown session {id}")).collect();
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    l.ctl(&cmds);
    for s in &mut socks {
        let mut b = [0u8; 1];
        let got = std::io::Read::read(s, &mut b);
        assert!(matches!(got, Ok(0)) || got.is_err(), "the session was ended: {got:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || !l.ctl(&["show sess"]).lines().any(|x| x.starts_with("0x"))));
}
