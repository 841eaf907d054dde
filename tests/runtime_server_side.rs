//! Issue 17, runtime server side: `set server B/S ssl on|off`, `add server ... track`, ids of
//! runtime servers across reloads and restarts, and `on-marked-up shutdown-backup-sessions` when a
//! server leaves maintenance by command; with real backends on 127.0.0.1, and HAProxy 2.6 as the
//! oracle for its replies and behaviour.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend on one port that answers `tls` to a TLS client and `plain` to a plain one (it looks
/// at the first byte), so a test sees which way the proxy spoke to it.
fn sniff_backend() -> u16 {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            // Bounded: the tests end long before.
            let until = tokio::time::Instant::now() + Duration::from_secs(180);
            while let Ok(Ok((tcp, _))) = tokio::time::timeout_at(until, listener.accept()).await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 1];
                    if tcp.peek(&mut first).await.is_err() {
                        return;
                    }
                    if first[0] == 0x16 {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            answer(tls, "tls").await;
                        }
                    } else {
                        answer(tcp, "plain").await;
                    }
                });
            }
        });
    });
    port
}

/// Answers every bodiless request on the connection with `body` until the client closes.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        head.drain(..end);
        let r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if s.write_all(r.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Waits (at most 15 s) until a request through `port` is answered `body`.
fn wait_body(port: u16, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = raw(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").map(|r| r.text());
        if got.as_deref().ok() == Some(body) {
            return;
        }
        assert!(Instant::now() < deadline, "no answer {body} within 15 s (last: {got:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `show servers state` line of server `name` (split in fields).
fn state_of(state: &str, name: &str) -> Vec<String> {
    state
        .lines()
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .find(|f| f.len() > 20 && f[3] == name)
        .unwrap_or_else(|| panic!("no server {name} in\n{state}"))
}

/// Waits (at most 15 s) until `name`'s `srv_op_state` is `want` (2 running, 0 stopped).
fn wait_op(l: &Lbha, backend: &str, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = l.ctl(&[&format!("show servers state {backend}")]);
        if state_of(&st, name)[5] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached op state {want}:\n{st}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn set_server_ssl_switches_traffic_as_haproxy_and_is_kept_by_reload_and_restart() {
    let back = sniff_backend();
    let keep = TempDir::new("ssl-state");
    let state = keep.0.join("server-state");
    let port = free_port();
    let text = format!(
        "[global]\nserver_state_file = \"{}\"\n[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"s\", addr = \"127.0.0.1:{back}\", ssl = true, verify = \"none\" }}]\n\
         [[backend]]\nname = \"other\"\nservers = [{{ name = \"p\", addr = \"127.0.0.1:{back}\" }}]\n",
        state.display()
    );
    let mut l = Lbha::start(&text, &[port]);
    wait_body(port, "tls");

    // HAProxy on the same servers: its replies are the reference.
    let hport = free_port();
    let hsock = keep.0.join("haproxy.sock");
    let hcfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         listen web\n  bind 127.0.0.1:{hport}\n  server s 127.0.0.1:{back} ssl verify none\n\
         backend other\n  server p 127.0.0.1:{back}\n",
        hsock.display()
    );
    let (_h, _hdir) = haproxy(&hcfg, hport);
    wait_body(hport, "tls");
    for cmd in
        ["set server web/s ssl off", "set server web/s ssl maybe", "set server web/s ssl", "set server web/nope ssl on"]
    {
        assert_eq!(l.ctl(&[cmd]), ask_socket(&hsock, cmd), "{cmd}");
    }
    wait_body(port, "plain");
    wait_body(hport, "plain");
    // A server without TLS settings: HAProxy's words first, then what lbha's check found.
    let ours = l.ctl(&["set server other/p ssl on"]);
    let theirs = ask_socket(&hsock, "set server other/p ssl on");
    assert!(ours.starts_with(theirs.trim_end()), "lbha: {ours}\nhaproxy: {theirs}");
    assert!(ours.contains("ca_file"), "{ours}");
    assert_eq!(state_of(&l.ctl(&["show servers state web"]), "s")[20], "0", "srv_use_ssl follows the change");

    // Kept by a reload, then back on, then off again across a restart.
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    wait_body(port, "plain");
    assert_eq!(l.ctl(&["set server web/s ssl on"]), "server ssl setting updated.\n\n");
    wait_body(port, "tls");
    assert_eq!(state_of(&l.ctl(&["show servers state web"]), "s")[20], "1");
    assert_eq!(l.ctl(&["set server web/s ssl off"]), "server ssl setting updated.\n\n");
    wait_body(port, "plain");
    l.signal(15);
    assert!(l.wait_exit(Duration::from_secs(15)).is_some(), "lbha did not stop");
    let l2 = Lbha::start(&text, &[port]);
    wait_body(port, "plain");
    // Unlike HAProxy (`not supported on dynamic servers`), a runtime server takes it too.
    let add = format!("add server web/r 127.0.0.1:{back} ssl verify none");
    assert_eq!(
        l2.ctl(&[&add, "set server web/r ssl off"]),
        "New server registered.\n\nserver ssl setting updated.\n\n"
    );
    assert_eq!(state_of(&l2.ctl(&["show servers state web"]), "r")[20], "0");
    assert_eq!(l2.ctl(&["set server web/r ssl on"]), "server ssl setting updated.\n\n");
    assert_eq!(state_of(&l2.ctl(&["show servers state web"]), "r")[20], "1");
}

/// HAProxy's `add server ... track`: the new server follows the tracked one's checks; it may not
/// track another runtime server, and a tracked server is not deleted.
#[test]
fn a_runtime_server_tracks_a_file_server_as_in_haproxy() {
    let a = Backend::start("a");
    let a_port = a.port;
    let b = Backend::start("b");
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"a\", addr = \"127.0.0.1:{a_port}\", check = true, inter = 100, rise = 1, fall = 1 }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    let keep = TempDir::new("track-haproxy");
    let hsock = keep.0.join("haproxy.sock");
    let hport = free_port();
    let hcfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         listen web\n  bind 127.0.0.1:{hport}\n  server a 127.0.0.1:{a_port} check inter 100 rise 1 fall 1\n",
        hsock.display()
    );
    let (_h, _hdir) = haproxy(&hcfg, hport);
    let add = format!("add server web/t 127.0.0.1:{} track a", b.port);
    for cmd in [
        add.as_str(),
        "add server web/u 127.0.0.1:1 track web/t",
        "add server web/v 127.0.0.1:1 track web/zz",
        "disable server web/a",
        "del server web/a",
        "enable server web/a",
        "enable server web/t",
    ] {
        assert_eq!(l.ctl(&[cmd]).trim_end(), ask_socket(&hsock, cmd).trim_end(), "{cmd}");
    }
    let e = l.ctl(&["add server web/w 127.0.0.1:1 track a check"]);
    assert!(e.contains("unable to enable checks and tracking at the same time"), "{e}");
    // Both servers take traffic; `t` is up because `a` is.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 && Instant::now() < deadline {
        seen.insert(get(port, "/").text());
    }
    assert!(seen.contains("b"), "the tracking server takes traffic: {seen:?}");
    // `a` goes away: its checks mark it down and `t` with it, though `b` still answers.
    drop(a);
    wait_op(&l, "web", "a", "0");
    wait_op(&l, "web", "t", "0");
    assert_eq!(get(port, "/").status, 503, "no server is up");
    assert!(l.log_text().contains("is DOWN via web/a"), "{}", l.log_text());
    // `a` comes back: `t` follows it up, also after a reload.
    let _a2 = Backend::start_on("a", a_port);
    wait_op(&l, "web", "t", "2");
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    wait_op(&l, "web", "t", "2");
    wait_body(port, "b");
}

/// A runtime server keeps the id it was given, or the one it got, across a reload that renumbers
/// the file's servers and across a restart with `server_state_file`.
#[test]
fn runtime_server_ids_survive_reload_and_restart() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let keep = TempDir::new("ids-state");
    let state = keep.0.join("server-state");
    let port = free_port();
    let text = format!(
        "[global]\nserver_state_file = \"{}\"\n[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"s1\", addr = \"127.0.0.1:{}\" }}, {{ name = \"s2\", addr = \"127.0.0.1:{}\" }}]\n",
        state.display(),
        a.port,
        a.port
    );
    let mut l = Lbha::start(&text, &[port]);
    let c = format!("add server web/c 127.0.0.1:{}", b.port);
    let d = format!("add server web/d 127.0.0.1:{} id 10", b.port);
    assert_eq!(l.ctl(&[&c, &d]), "New server registered.\n\nNew server registered.\n\n");
    let ids = |l: &Lbha| {
        let st = l.ctl(&["show servers state web"]);
        ["s1", "s2", "c", "d"]
            .iter()
            .filter(|n| st.lines().any(|x| x.split(' ').nth(3) == Some(**n)))
            .map(|n| (n.to_string(), state_of(&st, n)[2].clone()))
            .collect::<Vec<_>>()
    };
    let want = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(ids(&l), want(&[("s1", "1"), ("s2", "2"), ("c", "3"), ("d", "10")]));
    // s2 leaves: a reload would have given c the id 2 had it not kept its own.
    assert_eq!(l.ctl(&["disable server web/s2", "del server web/s2"]), "\nServer deleted.\n\n");
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    assert_eq!(ids(&l), want(&[("s1", "1"), ("c", "3"), ("d", "10")]));
    l.signal(15);
    assert!(l.wait_exit(Duration::from_secs(15)).is_some(), "lbha did not stop");
    let l2 = Lbha::start(&text, &[port]);
    assert_eq!(ids(&l2), want(&[("s1", "1"), ("c", "3"), ("d", "10")]));
}

/// Opens a session through `port` to an echo server and checks it echoes.
fn session(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(echo(&mut s, b"hi").unwrap(), b"hi");
    s
}

/// Whether the proxy closes the session (end of file or a reset) within 5 s; a session left open
/// reads nothing until then.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// `on-marked-up shutdown-backup-sessions`: a server taken out of maintenance by `enable server`
/// or `set server state ready|drain` while up closes the backup servers' sessions, as HAProxy
/// does; one brought back with weight 0 does not.
#[test]
fn leaving_maintenance_closes_backup_sessions_as_haproxy() {
    let (main, backup) = (echo_server(), echo_server());
    let (hmain, hbackup) = (echo_server(), echo_server());
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"tcp\"\ntimeout = {{ connect = \"1s\", client = \"30s\", server = \"30s\" }}\n\
         [[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"s\", addr = \"127.0.0.1:{main}\", on_marked_up = \"shutdown-backup-sessions\" }}, \
         {{ name = \"b\", addr = \"127.0.0.1:{backup}\", backup = true }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    let keep = TempDir::new("backup-cut");
    let hsock = keep.0.join("haproxy.sock");
    let hport = free_port();
    let hcfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         listen l\n  bind 127.0.0.1:{hport}\n  server s 127.0.0.1:{hmain} on-marked-up shutdown-backup-sessions\n  server b 127.0.0.1:{hbackup} backup\n",
        hsock.display()
    );
    let (_h, _hdir) = haproxy(&hcfg, hport);
    for (back, weight0) in [
        ("enable server l/s", false),
        ("set server l/s state ready", false),
        ("set server l/s state drain", false),
        ("set server l/s state ready", true),
    ] {
        let mut want = None;
        for (p, ask) in
            [(hport, &(|c: &str| ask_socket(&hsock, c)) as &dyn Fn(&str) -> String), (port, &|c: &str| l.ctl(&[c]))]
        {
            ask("set server l/s weight 1");
            ask("disable server l/s");
            let mut s = session(p);
            if weight0 {
                ask("set server l/s weight 0");
            }
            ask(back);
            let cut = closed(&mut s);
            match want {
                None => want = Some(cut),
                Some(w) => assert_eq!(cut, w, "`{back}` (weight 0: {weight0}): lbha closed the backup session: {cut}"),
            }
        }
        assert_eq!(want, Some(!weight0), "HAProxy closes on `{back}` unless the weight is 0");
    }
}

/// (User-Agent, `x-haproxy-server-state`) of each check a recording server got.
type Heard = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// An HTTP server that records the state header of each request and answers 200; stops when
/// the returned flag is set or after 60 s.
fn state_recorder() -> (u16, Heard, Arc<std::sync::atomic::AtomicBool>) {
    recorder("x-haproxy-server-state")
}

/// [`state_recorder`] for header `header`.
fn recorder(header: &'static str) -> (u16, Heard, Arc<std::sync::atomic::AtomicBool>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let heard: Heard = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (h, st) = (heard.clone(), stop.clone());
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !st.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let Some(head) = read_request_head(&mut s) else { continue };
            let text = String::from_utf8_lossy(&head).into_owned();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v.trim().to_string())
            };
            if let Some(v) = field(header) {
                h.lock().unwrap().push((field("user-agent").unwrap_or_default(), v));
            }
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, heard, stop)
}

/// `http-check send-state`: lbha's checks carry the header HAProxy's do, value for value, to the
/// same servers (told apart by lbha's User-Agent), on the simple HTTP check and on a rule sequence.
#[test]
fn send_state_headers_read_as_haproxys() {
    compare_send_state("{ http = \"GET /chk\", http_check = [\"send-state\"] }", "");
    compare_send_state(
        "{ http = \"\", http_check = [\"send-state\", \"send meth GET uri /chk hdr User-Agent lbha-seq\", \"expect status 200\", \"expect hdr name content-length\"] }",
        "  http-check send meth GET uri /chk\n  http-check expect status 200\n  http-check expect hdr name content-length\n",
    );
}

fn compare_send_state(lbha_check: &str, haproxy_rules: &str) {
    let (p1, heard1, stop1) = state_recorder();
    let (p2, heard2, stop2) = state_recorder();
    let (p3, heard3, stop3) = state_recorder();
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"be\"\nbind = [\"127.0.0.1:{port}\"]\ncheck = {lbha_check}\n\
         servers = [{{ name = \"s1\", addr = \"127.0.0.1:{p1}\", check = true, inter = 200, weight = 3, rise = 2, fall = 3 }}, \
         {{ name = \"s2\", addr = \"127.0.0.1:{p2}\", check = true, inter = 200, weight = 5 }}, \
         {{ name = \"s3\", addr = \"127.0.0.1:{p3}\", check = true, inter = 200, backup = true }}]\n"
    );
    let hport = free_port();
    let hcfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         listen be\n  bind 127.0.0.1:{hport}\n  option httpchk GET /chk\n  http-check send-state\n{haproxy_rules}\
         \x20 server s1 127.0.0.1:{p1} check inter 200 weight 3 rise 2 fall 3\n\
         \x20 server s2 127.0.0.1:{p2} check inter 200 weight 5\n\
         \x20 server s3 127.0.0.1:{p3} check inter 200 backup\n"
    );
    let (_h, _hdir) = haproxy(&hcfg, hport);
    let _l = Lbha::start(&text, &[port]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ours = |v: &(String, String)| v.0.starts_with("lbha");
    for heard in [&heard1, &heard2, &heard3] {
        loop {
            let (l, h) = {
                let v = heard.lock().unwrap();
                (v.iter().filter(|x| ours(x)).count(), v.iter().filter(|x| !ours(x)).count())
            };
            if l >= 3 && h >= 3 {
                break;
            }
            assert!(Instant::now() < deadline, "too few checks: lbha {l}, haproxy {h}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for s in [&stop1, &stop2, &stop3] {
        s.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    for (name, heard) in [("s1", &heard1), ("s2", &heard2), ("s3", &heard3)] {
        let v = heard.lock().unwrap();
        let side = |mine: bool| v.iter().filter(|x| ours(x) == mine).map(|x| x.1.clone()).collect::<Vec<_>>();
        let (l, h) = (side(true), side(false));
        // The first check (server just started: `UP 1/3`) and the steady one (`UP`) agree.
        assert_eq!(l.first(), h.first(), "{name}: first check\nlbha: {l:?}\nhaproxy: {h:?}");
        assert_eq!(l.last(), h.last(), "{name}: last check\nlbha: {l:?}\nhaproxy: {h:?}");
        assert!(l.last().unwrap().contains(&format!("name=be/{name};")), "{l:?}");
    }
}

/// `http-check set-var` / `set-var-fmt` (HAProxy 2.6): variables set by check rules reach the
/// requests after them; the same haproxy.cfg run by HAProxy and by lbha (`run --haproxy-config`)
/// sends the same header.
#[test]
fn check_variables_reach_the_request_as_in_haproxy() {
    let cfg = |port: u16, server: u16| {
        format!(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             listen be\n  bind 127.0.0.1:{port}\n  option httpchk\n\
             \x20 http-check set-var(check.base) str(probe)\n\
             \x20 http-check set-var-fmt(check.tag) \"%[var(check.base)]-%[int(7)]\"\n\
             \x20 http-check unset-var(check.base)\n\
             \x20 http-check send meth GET uri /chk hdr X-Tag %[var(check.tag)] hdr X-Base x%[var(check.base)]\n\
             \x20 http-check expect status 200\n\
             \x20 server s1 127.0.0.1:{server} check inter 200\n"
        )
    };
    let (hp, heard_h, stop_h) = recorder("x-tag");
    let (lp, heard_l, stop_l) = recorder("x-tag");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hdir) = haproxy(&cfg(hport, hp), hport);
    let _l = Lbha::start_haproxy(&cfg(lport, lp), &[lport]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while heard_h.lock().unwrap().is_empty() || heard_l.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no check reached the recorders");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_h.store(true, std::sync::atomic::Ordering::SeqCst);
    stop_l.store(true, std::sync::atomic::Ordering::SeqCst);
    let (h, l) = (heard_h.lock().unwrap()[0].1.clone(), heard_l.lock().unwrap()[0].1.clone());
    assert_eq!(l, h);
    assert_eq!(l, "probe-7");
}

/// A tracking server on the stats: the `tracked` column names the server it follows and the page
/// says `via B/S`, as HAProxy's; its status is the one it follows.
#[test]
fn stats_show_what_a_tracking_server_follows_as_haproxy() {
    let dead = free_port();
    let cfg = |stats: u16, extra: &str| {
        format!(
            "global\n{extra}defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             listen stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /stats\n\
             backend be\n  server a 127.0.0.1:{dead} check inter 200 fall 1\n  server t 127.0.0.1:{dead} track a\n\
             backend b2\n  server t2 127.0.0.1:{dead} track be/t\n"
        )
    };
    let keep = TempDir::new("track-stats");
    let hsock = keep.0.join("haproxy.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hdir) = haproxy(&cfg(hport, &format!("  stats socket {} level admin\n", hsock.display())), hport);
    let l = Lbha::start_haproxy(&cfg(lport, ""), &[lport]);
    // name, status, tracked of the server rows.
    let rows = |csv: &str| -> Vec<(String, String, String)> {
        csv.lines()
            .map(|x| x.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > 31 && (f[0] == "be" || f[0] == "b2") && f[1] != "BACKEND")
            .map(|f| (format!("{}/{}", f[0], f[1]), f[17].to_string(), f[31].to_string()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = rows(&ask_socket(&hsock, "show stat"));
        let o = rows(&l.ctl(&["show stat"]));
        let down = |v: &[(String, String, String)]| v.len() == 3 && v.iter().all(|r| r.1 == "DOWN");
        if down(&h) && down(&o) {
            assert_eq!(o, h);
            assert_eq!(o[1].2, "be/a");
            assert_eq!(o[2].2, "be/t");
            break;
        }
        assert!(Instant::now() < deadline, "servers not DOWN on both sides:\nhaproxy {h:?}\nlbha {o:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = get(lport, "/stats").text();
    for want in
        ["<a class=lfsb href=\"#be/a\">via be/a</a>", "<a class=lfsb href=\"#be/t\">via be/t</a>", "<a name=\"be/a\">"]
    {
        assert!(page.contains(want), "{want} not on the page:\n{page}");
    }
}

/// `set server B/S health up` on a DOWN server marks it up: with `on-marked-up
/// shutdown-backup-sessions` the backup's sessions close, as in HAProxy.
#[test]
fn forcing_health_up_closes_backup_sessions_as_haproxy() {
    let (main, backup) = (echo_server(), echo_server());
    let (hmain, hbackup) = (echo_server(), echo_server());
    let port = free_port();
    let text = format!(
        "[defaults]\nmode = \"tcp\"\ntimeout = {{ connect = \"1s\", client = \"30s\", server = \"30s\" }}\n\
         [[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:{port}\"]\n\
         servers = [{{ name = \"s\", addr = \"127.0.0.1:{main}\", check = true, inter = \"10s\", on_marked_up = \"shutdown-backup-sessions\" }}, \
         {{ name = \"b\", addr = \"127.0.0.1:{backup}\", backup = true }}]\n"
    );
    let l = Lbha::start(&text, &[port]);
    let keep = TempDir::new("health-cut");
    let hsock = keep.0.join("haproxy.sock");
    let hport = free_port();
    let hcfg = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         listen l\n  bind 127.0.0.1:{hport}\n  server s 127.0.0.1:{hmain} check inter 10s on-marked-up shutdown-backup-sessions\n  server b 127.0.0.1:{hbackup} backup\n",
        hsock.display()
    );
    let (_h, _hdir) = haproxy(&hcfg, hport);
    let mut cut = Vec::new();
    for (p, ask) in
        [(hport, &(|c: &str| ask_socket(&hsock, c)) as &dyn Fn(&str) -> String), (port, &|c: &str| l.ctl(&[c]))]
    {
        assert_eq!(ask("set server l/s health down").trim(), "");
        let mut s = session(p);
        assert_eq!(ask("set server l/s health up").trim(), "");
        cut.push(closed(&mut s));
    }
    assert_eq!(cut, [true, true], "haproxy, lbha");
}

type Seen = Arc<std::sync::Mutex<Vec<&'static str>>>;
/// A recorder's port, what it saw, and its stop flag.
type Recorder = (u16, Seen, Arc<std::sync::atomic::AtomicBool>);

/// A listener that records how each connection starts (`tls` for a TLS record, `plain` else)
/// and closes it: the health checks' path. Stops with the flag (bounded to 120 s anyway).
fn path_recorder() -> Recorder {
    use std::sync::atomic::Ordering::Relaxed;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, stop2) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(120);
        while !stop2.load(Relaxed) && Instant::now() < until {
            match listener.accept() {
                Ok((c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut first = [0u8; 1];
                    let kind = match c.peek(&mut first) {
                        Ok(1) if first[0] == 0x16 => "tls",
                        _ => "plain",
                    };
                    s2.lock().unwrap().push(kind);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, seen, stop)
}

/// The path of the checks each recorder sees from now on: the last of at least two new
/// connections (an older checker's probe may still land first), waited for up to 20 s.
fn paths(recorders: &[(&str, &Seen)]) -> Vec<(String, String)> {
    let marks: Vec<usize> = recorders.iter().map(|(_, r)| r.lock().unwrap().len()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = recorders.iter().zip(&marks).all(|((_, r), m)| r.lock().unwrap().len() >= m + 2);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "some server got fewer than two checks in 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    recorders.iter().map(|(n, r)| (n.to_string(), r.lock().unwrap().last().unwrap().to_string())).collect()
}

/// Which way health checks go, compared with HAProxy 2.6 on one haproxy.cfg: `ssl` servers
/// checked on their own address over TLS, elsewhere (`port`) plain, `check-ssl` always TLS,
/// `no-check-ssl` plain; `set server ssl on|off` leaves every check path as it was (as HAProxy:
/// "health check path is not changed"), also across a reload; servers added at runtime with
/// `ssl check` are checked plain unless they say `check-ssl`, as HAProxy's dynamic servers.
#[test]
fn check_paths_stay_as_configured_through_set_server_ssl_as_haproxy() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let names = ["s1", "s2", "s3", "s4", "s5", "s7", "s8", "s9"];
    let side = || names.map(|_| path_recorder());
    let (h, m) = (side(), side());
    let keep = TempDir::new("check-path");
    let hsock = keep.0.join("haproxy.sock");
    let cfg = |stats: &str, port: u16, r: &[Recorder]| {
        format!(
            "global\n{stats}defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n  timeout check 1s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b1\n\
             backend b1\n  option httpchk\n  default-server ssl verify none\n\
             \x20 server s1 127.0.0.1:{} no-ssl check inter 200\n\
             \x20 server s2 127.0.0.1:{} check inter 200\n\
             \x20 server s3 127.0.0.1:9 no-ssl check inter 200 port {}\n\
             \x20 server s4 127.0.0.1:9 check inter 200 port {}\n\
             \x20 server s5 127.0.0.1:{} no-ssl check inter 200 check-ssl\n\
             \x20 server s7 127.0.0.1:{} check inter 200 no-check-ssl\n",
            r[0].0, r[1].0, r[2].0, r[3].0, r[4].0, r[5].0
        )
    };
    let (hport, lport) = (free_port(), free_port());
    let (_hp, _hd) = haproxy(&cfg(&format!("  stats socket {} level admin\n", hsock.display()), hport, &h), hport);
    let l = Lbha::start_haproxy(&cfg("", lport, &m), &[lport]);
    fn rec<'a>(names: &[&'a str], r: &'a [Recorder], n: usize) -> Vec<(&'a str, &'a Seen)> {
        names.iter().zip(r.iter()).take(n).map(|(n, x)| (*n, &x.1)).collect()
    }
    let want = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    let configured =
        want(&[("s1", "plain"), ("s2", "tls"), ("s3", "plain"), ("s4", "plain"), ("s5", "tls"), ("s7", "plain")]);
    assert_eq!(paths(&rec(&names, &h, 6)), configured, "haproxy");
    assert_eq!(paths(&rec(&names, &m, 6)), configured, "lbha");

    for (i, r) in [(0, &h), (1, &m)] {
        let ask = |cmd: &str| if i == 0 { ask_socket(&hsock, cmd) } else { l.ctl(&[cmd]) };
        for cmd in ["set server b1/s1 ssl on", "set server b1/s3 ssl on", "set server b1/s5 ssl on"] {
            assert_eq!(ask(cmd), "server ssl setting updated.\n\n", "{cmd}");
        }
        for cmd in ["set server b1/s2 ssl off", "set server b1/s4 ssl off", "set server b1/s7 ssl off"] {
            assert_eq!(ask(cmd), "server ssl setting updated.\n\n", "{cmd}");
        }
        for (name, at, extra) in [("s8", 6, ""), ("s9", 7, " check-ssl")] {
            let add = format!("add server b1/{name} 127.0.0.1:{} ssl verify none check inter 200{extra}", r[at].0);
            assert_eq!(ask(&add), "New server registered.\n\n", "{add}");
            // HAProxy starts a dynamic server's checks on `enable health`; lbha's run already.
            ask(&format!("enable health b1/{name}"));
            ask(&format!("enable server b1/{name}"));
        }
    }
    let mut after = configured.clone();
    after.extend(want(&[("s8", "plain"), ("s9", "tls")]));
    assert_eq!(paths(&rec(&names, &h, 8)), after, "haproxy");
    assert_eq!(paths(&rec(&names, &m, 8)), after, "lbha");
    // lbha keeps runtime changes across a reload (HAProxy forgets them): the paths stay too.
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    assert_eq!(paths(&rec(&names, &m, 8)), after, "lbha after a reload");
    let st = l.ctl(&["show servers state b1"]);
    assert_eq!(state_of(&st, "s1")[20], "1", "{st}");
    assert_eq!(state_of(&st, "s2")[20], "0", "{st}");
    for x in h.iter().chain(m.iter()) {
        x.2.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
