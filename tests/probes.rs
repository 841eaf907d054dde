//! Connections that send nothing, or too little: HAProxy 2.6 answers a new connection silent
//! until `timeout http-request` with its 408 page and a `<BADREQ>` line (`cR--`), one closed
//! before its first byte with a `CR--` 400 line (and the 400 page when it can still read),
//! unless `option http-ignore-probes` (closed unanswered, nothing logged nor counted);
//! `option dontlognull` answers them but logs nothing. A keep-alive connection idle after a
//! response is closed silently either way. Each case is checked on lbha alone, and against the
//! real HAProxy when it is installed (same haproxy.cfg, same clients, same log fields).

mod common;
mod kit;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PAGE_408: &str =
    "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n";
const PAGE_400: &str = "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n";

/// The stick counters the frontend tracks for every connection (`show table fe` after each case).
const TRACK: &str = "  stick-table type ip size 1k expire 5m store http_req_cnt,http_err_cnt,http_err_rate(1m)\n\
                     \x20 tcp-request connection track-sc0 src\n";

/// The haproxy.cfg both run; `extra` goes into `defaults`, `fe_extra` into the frontend.
fn cfg(port: u16, syslog: u16, web: u16, extra: &str, fe_extra: &str) -> String {
    format!(
        "global\n  log 127.0.0.1:{syslog} local0\n\
         defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 2s\n  timeout client 10s\n\
         \x20 timeout server 10s\n  timeout http-request 700ms\n{extra}\
         frontend fe\n  bind 127.0.0.1:{port}\n{fe_extra}{TRACK}  default_backend be\n\
         backend be\n  server s 127.0.0.1:{web}\n"
    )
}

fn client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// What the proxy sends to each kind of client, in this order; each followed by a request to
/// `/end-N`, whose line marks where the case's lines end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    /// Connects and sends nothing.
    Silent,
    /// Connects and closes.
    Closed,
    /// Connects and half-closes (it can still read the answer).
    HalfClosed,
    /// Sends half a request line and waits.
    Partial,
    /// Sends half a request line, then half-closes.
    PartialClosed,
    /// One request, then idle past `timeout http-keep-alive`.
    KeepAliveIdle,
}

const CASES: [Case; 6] =
    [Case::Silent, Case::Closed, Case::HalfClosed, Case::Partial, Case::PartialClosed, Case::KeepAliveIdle];

/// Runs `case` on a new connection: what its client got, and the client's port.
fn run(case: Case, port: u16) -> (String, u16) {
    let mut s = client(port);
    let cp = s.local_addr().unwrap().port();
    let got = match case {
        Case::Silent => read_all(&mut s),
        Case::Closed => {
            drop(s);
            String::new()
        }
        Case::HalfClosed => {
            s.shutdown(Shutdown::Write).unwrap();
            read_all(&mut s)
        }
        Case::Partial => {
            s.write_all(b"GET /par").unwrap();
            read_all(&mut s)
        }
        Case::PartialClosed => {
            s.write_all(b"GET /par").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            s.shutdown(Shutdown::Write).unwrap();
            read_all(&mut s)
        }
        Case::KeepAliveIdle => {
            s.write_all(b"GET /ka HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            let r = read_response(&mut s, false).unwrap();
            assert_eq!(r.status, 200);
            // The answer to the request is not what this case is about: what follows is.
            read_all(&mut s)
        }
    };
    (got, cp)
}

/// Waits until `show sess` (from `sessions`) no longer lists the client at port `cp`: the
/// proxy has seen its connection end, and logged what it logs for it (a connection leaves the
/// list after its line), so the next connection's line cannot come first. 10 s at most.
fn wait_gone(cp: u16, sessions: &impl Fn() -> String) {
    let needle = format!(" src=127.0.0.1:{cp} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = sessions();
        if !list.contains(&needle) {
            return;
        }
        assert!(Instant::now() < deadline, "the connection from port {cp} is still listed after 10 s:\n{list}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The stored counters of the client's entry in `show table fe`, as `(http_req_cnt,
/// http_err_cnt, http_err_rate)`.
fn counters(table: &str) -> (u64, u64, u64) {
    let row = table.lines().find(|l| l.contains(" key=127.0.0.1 ")).unwrap_or_else(|| panic!("no entry: {table}"));
    let field = |name: &str| -> u64 {
        let f = row.split(' ').find_map(|f| f.strip_prefix(name)).unwrap_or_else(|| panic!("{name}: {row}"));
        f.parse().unwrap_or_else(|e| panic!("{name}{f}: {e}"))
    };
    (field("http_req_cnt="), field("http_err_cnt="), field("http_err_rate(60000)="))
}

/// What one case left: the case, what its client got, its log lines, and the stick counters
/// (see [`counters`]) once its end marker was logged.
type Outcome = (Case, String, Vec<String>, (u64, u64, u64));

/// Runs every case against `port`: what each client got, and each case's log lines;
/// `table` answers `show table fe`, `sessions` `show sess`. Each case's connection is gone
/// from `show sess` before its end marker is sent (see [`wait_gone`]).
fn run_all(port: u16, log: &Syslog, table: impl Fn() -> String, sessions: impl Fn() -> String) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (i, case) in CASES.into_iter().enumerate() {
        let (got, cp) = run(case, port);
        wait_gone(cp, &sessions);
        let end = format!("/end-{i} ");
        let req = format!("GET {} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", end.trim_end());
        assert_eq!(raw(port, req.as_bytes()).unwrap().status, 200);
        let mut lines: Vec<String> = log.until(&end).iter().map(|l| syslog_message(l)).collect();
        lines.pop();
        if case == Case::KeepAliveIdle {
            // The request's own line (its fields are compared elsewhere); nothing may follow it.
            assert!(lines.first().is_some_and(|l| l.contains("\"GET /ka HTTP/1.1\"")), "{lines:#?}");
            lines.remove(0);
        }
        out.push((case, got, lines, counters(&table())));
    }
    out
}

/// A log line without what differs between runs: the client's address, the date and the
/// connection counts (the next client may already be connected); timers become `-1`, `0` (under
/// 300 ms) or `T` (the wait for a timeout).
fn norm(line: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i < 2 {
            continue;
        }
        if i == 4 {
            let t: Vec<String> = f
                .split('/')
                .map(|n| match n.parse::<i64>() {
                    Ok(-1) => "-1".into(),
                    Ok(v) if v < 300 => "0".into(),
                    Ok(_) => "T".into(),
                    Err(_) => n.into(),
                })
                .collect();
            out.push(t.join("/"));
        } else if i == 10 {
            out.push("ac/fc/bc/sc/rc".into());
        } else {
            out.push(f.to_string());
        }
    }
    out.join(" ")
}

/// Status line and body of an answer (header names and order are the HTTP library's own).
fn page(got: &str) -> (String, String) {
    let status = got.lines().next().unwrap_or("").to_string();
    let body = got.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

/// A case, the page its client gets (status, body), and its log line (see [`norm`]).
type Expect = (Case, Option<(u16, &'static str)>, Option<&'static str>);

/// What lbha does for each case under `extra`/`fe_extra`, checked against `expect`, and the
/// same run on HAProxy compared line by line when it is installed.
/// `counted`: the probes and cut heads the frontend counts (`ereq`, `hrsp_4xx`, `req_tot`).
/// `tracked`: the client's `http_req_cnt` and `http_err_cnt` (the rate follows the count)
/// after each case of [`CASES`] and its end marker (one request more each).
fn check(extra: &str, fe_extra: &str, counted: usize, tracked: [(u64, u64); 6], expect: &[Expect]) {
    let web = kit::Web::start("W");
    let (lport, llog) = (free_port(), Syslog::new());
    let l = Lbha::start_haproxy(&cfg(lport, llog.port(), web.port, extra, fe_extra), &[lport]);
    let ours = run_all(lport, &llog, || l.ctl(&["show table fe"]), || l.ctl(&["show sess"]));
    let ours_tracked: Vec<(u64, u64)> = ours.iter().map(|o| (o.3.0, o.3.1)).collect();
    assert_eq!(ours_tracked, tracked, "http_req_cnt, http_err_cnt after each of {CASES:?}");
    assert!(ours.iter().all(|o| o.3.1 == o.3.2), "http_err_rate follows http_err_cnt: {ours:?}");
    for (case, page_want, line_want) in expect {
        let (_, got, lines, _) = ours.iter().find(|(c, ..)| c == case).unwrap();
        match page_want {
            Some((status, body)) => {
                let (st, b) = page(got);
                assert_eq!(
                    st,
                    format!("HTTP/1.1 {status} {}", if *status == 408 { "Request Time-out" } else { "Bad request" }),
                    "{case:?}: {got:?}"
                );
                assert_eq!(b, *body, "{case:?}");
                assert!(got.to_ascii_lowercase().contains("\r\ncache-control: no-cache\r\n"), "{case:?}: {got:?}");
            }
            None => assert_eq!(got, "", "{case:?}: nothing answered"),
        }
        match line_want {
            Some(want) => {
                assert_eq!(lines.len(), 1, "{case:?}: {lines:#?}");
                assert_eq!(norm(&lines[0]), *want, "{case:?}: {}", lines[0]);
            }
            None => assert!(lines.is_empty(), "{case:?}: nothing logged: {lines:#?}\n{}", l.log_text()),
        }
    }
    // Counted as HAProxy counts them, logged or not (`req_tot`, `ereq`, `hrsp_4xx`).
    let answered = counted;
    let stat = l.ctl(&["show stat"]);
    let fe = stat.lines().find(|r| r.starts_with("fe,FRONTEND,")).unwrap_or_else(|| panic!("{stat}"));
    let head: Vec<&str> = stat.lines().next().unwrap().trim_start_matches("# ").split(',').collect();
    let col = |name: &str| fe.split(',').nth(head.iter().position(|h| *h == name).unwrap()).unwrap().to_string();
    let ends = CASES.len() + 1;
    assert_eq!(col("ereq"), answered.to_string(), "{stat}");
    assert_eq!(col("hrsp_4xx"), answered.to_string(), "{stat}");
    assert_eq!(col("req_tot"), (answered + ends).to_string(), "{stat}");

    let Some(bin) = haproxy_bin() else {
        eprintln!("skipped: the comparison with HAProxy (haproxy is not installed)");
        return;
    };
    let (hport, hlog) = (free_port(), Syslog::new());
    let (_h, dir) = haproxy(bin, &cfg(hport, hlog.port(), web.port, extra, fe_extra), hport);
    let theirs = run_all(hport, &hlog, || ask_haproxy(&dir, "show table fe"), || ask_haproxy(&dir, "show sess"));
    for ((case, ours_got, ours_lines, ours_table), (_, their_got, their_lines, their_table)) in ours.iter().zip(&theirs)
    {
        assert_eq!(page(ours_got), page(their_got), "{case:?}: what the client got");
        assert_eq!(ours_table, their_table, "{case:?}: the stick counters, lbha vs HAProxy");
        let o: Vec<String> = ours_lines.iter().map(|l| norm(l)).collect();
        let t: Vec<String> = their_lines.iter().map(|l| norm(l)).collect();
        assert_eq!(o, t, "{case:?}: log lines, lbha vs HAProxy");
    }
}

/// HAProxy on `cfg`, once it listens (seen in /proc, so no probe of ours shows in its log),
/// with its stats socket in the returned directory (see [`ask_haproxy`]).
fn haproxy(bin: &str, cfg: &str, port: u16) -> (Reaped, TempDir) {
    let dir = TempDir::new("probes-haproxy");
    let sock = dir.0.join("stats.sock");
    let cfg = cfg.replacen("global\n", &format!("global\n  stats socket {} level admin\n", sock.display()), 1);
    let path = dir.write("haproxy.cfg", &cfg);
    let child = Command::new(bin).arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let mut child = Reaped::new(child.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(port) {
        assert!(child.try_wait().unwrap().is_none(), "haproxy exited; config:\n{cfg}");
        assert!(Instant::now() < deadline, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, dir)
}

/// A command to the stats socket of [`haproxy`]'s instance.
fn ask_haproxy(dir: &TempDir, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(dir.0.join("stats.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

const LINE_408: &str = "fe fe/<NOSRV> -1/-1/-1/-1/T 408 0 - - cR-- ac/fc/bc/sc/rc 0/0 \"<BADREQ>\"";
const LINE_400: &str = "fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- ac/fc/bc/sc/rc 0/0 \"<BADREQ>\"";

#[test]
fn a_silent_connection_gets_haproxys_408_and_one_that_closes_a_cr_400_line() {
    // A 408 counts the request, a `CR--` 400 an error too (HAProxy's H1 mux).
    check(
        "",
        "",
        5,
        [(2, 0), (4, 1), (6, 2), (8, 2), (10, 3), (12, 3)],
        &[
            (Case::Silent, Some((408, PAGE_408)), Some(LINE_408)),
            (Case::Closed, None, Some(LINE_400)),
            (Case::HalfClosed, Some((400, PAGE_400)), Some(LINE_400)),
            (Case::Partial, Some((408, PAGE_408)), Some(LINE_408)),
            (Case::PartialClosed, Some((400, PAGE_400)), Some(LINE_400)),
            (Case::KeepAliveIdle, None, None),
        ],
    );
}

#[test]
fn http_ignore_probes_closes_silent_connections_unanswered_and_unlogged() {
    // Ignored probes count nothing.
    check(
        "  option http-ignore-probes\n",
        "",
        2,
        [(1, 0), (2, 0), (3, 0), (5, 0), (7, 1), (9, 1)],
        &[
            (Case::Silent, None, None),
            (Case::Closed, None, None),
            (Case::HalfClosed, None, None),
            // A head had begun: not a probe.
            (Case::Partial, Some((408, PAGE_408)), Some(LINE_408)),
            (Case::PartialClosed, Some((400, PAGE_400)), Some(LINE_400)),
            (Case::KeepAliveIdle, None, None),
        ],
    );
}

#[test]
fn no_option_http_ignore_probes_in_a_frontend_undoes_the_defaults() {
    check(
        "  option http-ignore-probes\n",
        "  no option http-ignore-probes\n",
        5,
        [(2, 0), (4, 1), (6, 2), (8, 2), (10, 3), (12, 3)],
        &[(Case::Silent, Some((408, PAGE_408)), Some(LINE_408)), (Case::Closed, None, Some(LINE_400))],
    );
}

#[test]
fn dontlognull_answers_probes_but_does_not_log_them() {
    // Unlogged, still counted.
    check(
        "  option dontlognull\n",
        "",
        5,
        [(2, 0), (4, 1), (6, 2), (8, 2), (10, 3), (12, 3)],
        &[
            (Case::Silent, Some((408, PAGE_408)), None),
            (Case::Closed, None, None),
            (Case::HalfClosed, Some((400, PAGE_400)), None),
            (Case::Partial, Some((408, PAGE_408)), Some(LINE_408)),
            (Case::PartialClosed, Some((400, PAGE_400)), Some(LINE_400)),
            (Case::KeepAliveIdle, None, None),
        ],
    );
}

/// The timers of `<BADREQ>` lines as HAProxy writes them: `%TR` and `%Tq` -1, the wait in `%Ta`,
/// `%B` and `%U` 0; a refused head after an idle keep-alive wait counts that wait in `%Ti`.
#[test]
fn badreq_lines_have_tr_minus_one_as_haproxy() {
    let web = kit::Web::start("W");
    let (port, log) = (free_port(), Syslog::new());
    let cfg = format!(
        r#"
[global]
log = ["127.0.0.1:{} local0"]
[defaults]
mode = "http"
log = "global"
timeout = {{ connect = "2s", client = "10s", server = "10s", http_request = "600ms", http_keep_alive = "5s" }}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
log_format = "TR=%TR Tq=%Tq Th=%Th Ti=%Ti Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta Tt=%Tt ST=%ST B=%B U=%U %tsc %{{+Q}}r"
default_backend = "be"
[[backend]]
name = "be"
servers = [{{ name = "s", addr = "127.0.0.1:{}" }}]
"#,
        log.port(),
        web.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    let bad = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(raw(port, bad).unwrap().status, 400);
    let lines = log.until("BADREQ");
    let l = &syslog_message(lines.last().unwrap());
    assert!(l.starts_with("TR=-1 Tq=-1 Th=0 Ti="), "{l}");
    assert!(l.contains(" Tw=-1 Tc=-1 Tr=-1 Ta="), "{l}");
    assert!(l.ends_with(" ST=400 B=0 U=0 PR-- \"<BADREQ>\""), "{l}");
    // Timed out with nothing sent: the whole wait is %Ta (and %Tt).
    let mut s = client(port);
    assert!(read_all(&mut s).starts_with("HTTP/1.1 408 "));
    let l = syslog_message(&log.until("BADREQ").pop().unwrap());
    let field = |name: &str| -> i64 {
        l.split(' ').find_map(|f| f.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
    };
    assert_eq!((field("TR"), field("Tq"), field("Ti"), field("B"), field("U")), (-1, -1, 0, 0, 0), "{l}");
    assert_eq!((field("Tw"), field("Tc"), field("Tr")), (-1, -1, -1), "{l}");
    assert!(field("Ta") >= 600 && field("Tt") == field("Ta"), "{l}");
    assert!(l.ends_with(" ST=408 B=0 U=0 cR-- \"<BADREQ>\""), "{l}");
    // After a request and an idle wait: the wait is %Ti, %TR still -1.
    let mut s = client(port);
    s.write_all(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(400));
    s.write_all(bad).unwrap();
    assert!(read_all(&mut s).starts_with("HTTP/1.1 400 "));
    let l = syslog_message(&log.until("BADREQ").pop().unwrap());
    let field = |name: &str| -> i64 {
        l.split(' ').find_map(|f| f.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
    };
    assert_eq!((field("TR"), field("Tq")), (-1, -1), "{l}");
    assert!(field("Ti") >= 400 && field("Tt") >= field("Ti"), "{l}");
}

/// A TLS connection that completes its handshake and sends nothing gets the 408 too (inside
/// TLS), and none with `http_ignore_probes` (the native key).
#[test]
fn a_silent_tls_connection_gets_a_408_unless_probes_are_ignored() {
    use std::sync::Arc;
    let dir = TempDir::new("probes-tls");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let (answers, ignores) = (free_port(), free_port());
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "10s", server = "10s", http_request = "500ms" }}
[[frontend]]
name = "answers"
bind = ["127.0.0.1:{answers} ssl crt {crt}"]
http_request = [{{ return = {{ status = 200, content_type = "text/plain", body = "ok" }} }}]
[[frontend]]
name = "ignores"
bind = ["127.0.0.1:{ignores} ssl crt {crt}"]
http_ignore_probes = true
http_request = [{{ return = {{ status = 200, content_type = "text/plain", body = "ok" }} }}]
"#,
        crt = crt.display()
    );
    let _l = Lbha::start(&cfg, &[answers, ignores]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for (port, want) in [(answers, Some(PAGE_408)), (ignores, None)] {
        let conn = rustls::ClientConnection::new(tls.clone(), "localhost".try_into().unwrap()).unwrap();
        let tcp = client(port);
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).unwrap();
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let got = String::from_utf8_lossy(&out);
        match want {
            Some(body) => {
                assert!(got.starts_with("HTTP/1.1 408 Request Time-out\r\n"), "{got:?}");
                assert!(got.ends_with(body), "{got:?}");
            }
            None => assert_eq!(got, "", "port {port}"),
        }
    }
}

/// `http_ignore_probes` is a frontend setting: a backend refuses it, naming the key.
#[test]
fn http_ignore_probes_in_a_backend_is_refused() {
    let dir = TempDir::new("probes-check");
    let path = dir.write(
        "lbha.toml",
        "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"b\"\nhttp_ignore_probes = true\nservers = [{ name = \"s\", addr = \"127.0.0.1:1\" }]\n",
    );
    let out = Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("http_ignore_probes"), "{err}");
}

/// A `timeout http-request` shorter than the wait before a silent connection moves to the
/// parking lot: the 408 comes from the connection's own task (the other path of the same rule),
/// and a `timeout client` shorter than `http_request` bounds the wait (HAProxy 2.6 measured).
#[test]
fn a_short_http_request_or_client_timeout_gives_the_408_too() {
    for timeouts in [r#"client = "10s", http_request = "100ms""#, r#"client = "100ms", http_request = "10s""#] {
        let port = free_port();
        let cfg = format!(
            "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"2s\", server = \"10s\", {timeouts} }}\n\
             [[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{port}\"]\n\
             http_request = [{{ return = {{ status = 200, content_type = \"text/plain\", body = \"ok\" }} }}]\n"
        );
        let _l = Lbha::start(&cfg, &[port]);
        let started = Instant::now();
        let got = read_all(&mut client(port));
        assert!(got.starts_with("HTTP/1.1 408 Request Time-out\r\n") && got.ends_with(PAGE_408), "{timeouts}: {got:?}");
        assert!(started.elapsed() < Duration::from_secs(9), "{timeouts}: the shorter timeout applies");
    }
}

/// TLS clients that never complete their handshake, each followed by a request to `/end-N` on
/// the plain bind (whose line marks where the case's lines end).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hs {
    /// Connects and sends nothing: `timeout client` ends it.
    Silent,
    /// Connects and closes.
    Closed,
    /// Sends a cleartext request instead of a ClientHello.
    Garbage,
    /// Waits longer than `timeout http-request` (shorter than `timeout client`) before its
    /// handshake: the handshake completes.
    Slow,
}

/// The case's client against the TLS bind `port`; what came of it (`Slow`'s handshake).
fn handshake_case(case: Hs, port: u16, tls: &std::sync::Arc<rustls::ClientConfig>) -> String {
    let mut s = client(port);
    match case {
        Hs::Silent => read_all(&mut s),
        Hs::Closed => String::new(),
        Hs::Garbage => {
            // Answered by an alert or nothing (rustls and OpenSSL differ): the line is the point.
            s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            read_all(&mut s);
            String::new()
        }
        Hs::Slow => {
            std::thread::sleep(Duration::from_millis(900));
            let conn = rustls::ClientConnection::new(tls.clone(), "localhost".try_into().unwrap()).unwrap();
            let mut t = rustls::StreamOwned::new(conn, s);
            while t.conn.is_handshaking() {
                if let Err(e) = t.conn.complete_io(&mut t.sock) {
                    return format!("handshake failed: {e}");
                }
            }
            // A request, so that the connection does not end right after the handshake (HAProxy
            // then logs the session's end as "fe/BIND: Success").
            let _ = t.write_all(b"GET /slow HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
            let _ = t.read_to_end(&mut Vec::new());
            "handshake done".to_string()
        }
    }
}

/// A handshake case, what came of it, and its log lines as (priority, message).
type HsOutcome = (Hs, String, Vec<(String, String)>);

/// The handshake cases against one server: per case, its answer and its log lines as
/// (syslog priority, message without the client's address and the date).
fn handshake_run(
    tls_port: u16,
    plain: u16,
    log: &Syslog,
    tls: &std::sync::Arc<rustls::ClientConfig>,
) -> Vec<HsOutcome> {
    let mut out = Vec::new();
    for (i, case) in [Hs::Silent, Hs::Closed, Hs::Garbage, Hs::Slow].into_iter().enumerate() {
        let got = handshake_case(case, tls_port, tls);
        let end = format!("/end-{i} ");
        let req = format!("GET {} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", end.trim_end());
        assert_eq!(raw(plain, req.as_bytes()).unwrap().status, 200);
        let mut lines = log.until(&end);
        lines.pop();
        // `Slow`'s request is not this test's subject: HAProxy serves it, lbha answers a 408, as
        // its HTTP/1 loop starts `timeout http-request` at the accept where HAProxy starts it at
        // the end of the handshake (left to that loop's owner: see the session report).
        let lines = lines
            .iter()
            .filter(|_| case != Hs::Slow)
            .map(|l| {
                let pri = l[..l.find('>').map_or(0, |i| i + 1)].to_string();
                let msg = syslog_message(l);
                (pri, msg.split_once("] ").map_or(msg.clone(), |x| x.1.to_string()))
            })
            .collect();
        out.push((case, got, lines));
    }
    out
}

/// A TLS handshake is bounded by `timeout client` (not `timeout http-request`), and one that
/// does not complete is logged as HAProxy 2.6 logs it: `fe/BIND: REASON` (the bind's name, else
/// its number), at `err` with `option log-separate-errors`; `option dontlognull` hides a
/// timeout and a close, not a failure. Compared with HAProxy when it is installed.
#[test]
fn an_unfinished_tls_handshake_is_bounded_by_timeout_client_and_logged_as_haproxy() {
    use std::sync::Arc;
    let dir = TempDir::new("probes-hs");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let crt = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let web = kit::Web::start("W");
    let cfg = |plain: u16, named: u16, numbered: u16, syslog: u16, extra: &str| {
        format!(
            "global\n  log 127.0.0.1:{syslog} local0\n\
             defaults\n  mode http\n  log global\n  option httplog\n{extra}  timeout connect 2s\n\
             \x20 timeout client 3s\n  timeout server 10s\n  timeout http-request 300ms\n\
             frontend fe\n  bind 127.0.0.1:{plain}\n  bind 127.0.0.1:{named} ssl crt {crt} name tlsbind\n\
             \x20 bind 127.0.0.1:{numbered} ssl crt {crt}\n  default_backend be\n\
             backend be\n  server s 127.0.0.1:{}\n",
            web.port,
            crt = crt.display()
        )
    };
    let info = "<134>".to_string();
    let expect = |bind: &str, pri: &str, dontlognull: bool| {
        let line = |reason: &str| vec![(pri.to_string(), format!("fe/{bind}: {reason}"))];
        vec![
            (Hs::Silent, String::new(), if dontlognull { vec![] } else { line("Timeout during SSL handshake") }),
            (
                Hs::Closed,
                String::new(),
                if dontlognull { vec![] } else { line("Connection closed during SSL handshake") },
            ),
            (Hs::Garbage, String::new(), line("SSL handshake failure")),
            (Hs::Slow, "handshake done".to_string(), vec![]),
        ]
    };
    let haproxy_bin = haproxy_bin();
    for (extra, pri, dontlognull) in [
        ("", &info, false),
        ("  option log-separate-errors\n", &"<131>".to_string(), false),
        ("  option dontlognull\n", &info, true),
    ] {
        let (plain, named, numbered, log) = (free_port(), free_port(), free_port(), Syslog::new());
        let l = Lbha::start_haproxy(&cfg(plain, named, numbered, log.port(), extra), &[plain, named, numbered]);
        let ours = (handshake_run(named, plain, &log, &tls), handshake_run(numbered, plain, &log, &tls));
        assert_eq!(ours.0, expect("tlsbind", pri, dontlognull), "{extra}\n{}", l.log_text());
        assert_eq!(ours.1, expect("3", pri, dontlognull), "{extra}");
        drop(l);
        let Some(bin) = haproxy_bin else {
            eprintln!("skipped: the comparison with HAProxy (haproxy is not installed)");
            continue;
        };
        let (plain, named, numbered, log) = (free_port(), free_port(), free_port(), Syslog::new());
        let _h = haproxy(bin, &cfg(plain, named, numbered, log.port(), extra), numbered);
        let theirs = (handshake_run(named, plain, &log, &tls), handshake_run(numbered, plain, &log, &tls));
        assert_eq!(ours, theirs, "{extra}: lbha, then HAProxy");
    }
}
