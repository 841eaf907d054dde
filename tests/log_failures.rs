//! Log lines of failures and edge cases, compared field by field with the real HAProxy 2.6: one
//! haproxy.cfg runs under both (lbha converts it at start), the same client does the same thing
//! to each, and each line is found on the test's UDP syslog receiver by the client's port.
//! Timers compare by shape (`-1`, or a number), values that differ by nature (ports, dates,
//! counters of the process) by form; everything else must be equal, except the differences
//! listed in a case as known (asserted to still differ, so a fix shows).

mod common;

use common::{Lbha, Syslog, free_port, haproxy_bin};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// How a field of the two lines must compare.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Rule {
    Eq,
    /// A timer: both `-1`, or both a non-negative number (`+` allowed, as `%Tt` with `+`).
    Time,
    /// Both a number, or both the same non-number (`-`).
    Number,
    /// The digits masked (dates).
    Digits,
    /// The client's own port on each side.
    ClientPort,
    /// The frontend's own port on each side.
    FrontPort,
}

use Rule::*;

/// Every variable of HAProxy's log-format table that lbha supports, and `%[...]` samples (some
/// empty). Named, so a line splits back into fields (`" @"` never occurs in a value here).
/// The last column: HTTP only (HAProxy refuses it in a tcp proxy's format).
const FIELDS: &[(&str, &str, Rule, bool)] = &[
    ("ci", "%ci", Eq, false),
    ("cp", "%cp", ClientPort, false),
    ("fi", "%fi", Eq, false),
    ("fp", "%fp", FrontPort, false),
    ("bi", "%bi", Eq, false),
    ("bp", "%bp", Number, false),
    ("si", "%si", Eq, false),
    ("sp", "%sp", Eq, false),
    ("tr", "%tr", Digits, true),
    ("ft", "%ft", Eq, false),
    ("f", "%f", Eq, false),
    ("b", "%b", Eq, false),
    ("s", "%s", Eq, false),
    ("TR", "%TR", Time, true),
    ("Tw", "%Tw", Time, false),
    ("Tc", "%Tc", Time, false),
    ("Tr", "%Tr", Time, true),
    ("Ta", "%Ta", Time, true),
    ("Th", "%Th", Time, false),
    ("Ti", "%Ti", Time, true),
    ("Tq", "%Tq", Time, true),
    ("Tt", "%Tt", Time, false),
    ("ST", "%ST", Eq, false),
    ("B", "%B", Eq, false),
    ("U", "%U", Eq, false),
    ("tsc", "%tsc", Eq, false),
    ("ts", "%ts", Eq, false),
    ("ac", "%ac", Eq, false),
    ("fc", "%fc", Eq, false),
    ("bc", "%bc", Eq, false),
    ("sc", "%sc", Eq, false),
    ("rc", "%rc", Eq, false),
    ("rt", "%rt", Number, false),
    ("sq", "%sq", Eq, false),
    ("bq", "%bq", Eq, false),
    ("hr", "%hr", Eq, false),
    ("hs", "%hs", Eq, false),
    ("r", "%{+Q}r", Eq, true),
    ("HM", "%HM", Eq, true),
    ("HU", "%HU", Eq, true),
    ("HP", "%HP", Eq, true),
    ("HV", "%HV", Eq, true),
    ("HQ", "%HQ", Eq, true),
    ("CC", "%CC", Eq, true),
    ("CS", "%CS", Eq, true),
    ("ID", "%ID", Eq, false),
    ("lc", "%lc", Number, false),
    ("src", "%[src]", Eq, false),
    ("dport", "%[dst_port,sub(0)]", Number, false),
    ("meth", "%[capture.req.method]", Eq, false),
    ("uri", "%[capture.req.uri]", Eq, false),
    ("ver", "%[capture.req.ver]", Eq, false),
    ("rver", "%[capture.res.ver]", Eq, false),
    ("rhdr", "%[capture.res.hdr(0)]", Eq, false),
    ("srv", "%[srv_name]", Eq, false),
    ("var", "%[var(txn.nope)]", Eq, false),
    ("qvar", "%{+Q}[var(txn.nope)]", Eq, false),
    ("cap", "%[capture.req.hdr(0)]", Eq, false),
    ("str", "%[str(s),upper]", Eq, false),
];

/// The fields of a proxy in mode http (`true`) or tcp.
fn fields_of(http: bool) -> impl Iterator<Item = &'static (&'static str, &'static str, Rule, bool)> {
    FIELDS.iter().filter(move |f| http || !f.3)
}

fn log_format(http: bool) -> String {
    fields_of(http).map(|(n, v, _, _)| format!("{n}={v}")).collect::<Vec<_>>().join(" @")
}

/// The test's servers: an HTTP server whose behaviour the path picks, a TCP echo server that
/// resets on `rst`, and a port nothing listens on.
struct Servers {
    web: u16,
    tcp: u16,
    dead: u16,
    /// `/hold` requests the web server holds right now.
    holding: Arc<AtomicUsize>,
    /// What the web server saw of each request body cut short: how the connection ended.
    cut: Cut,
}

/// How the connections whose request body was cut short ended, as the web server saw them.
type Cut = Arc<std::sync::Mutex<Vec<String>>>;

/// Request body bytes the web server has read, all requests together: a client that cuts its
/// body waits for the bytes it sent to get there first, so what the server saw before the cut
/// does not depend on how fast the proxy forwarded them.
static BODY_READ: AtomicUsize = AtomicUsize::new(0);

/// Waits (3 s at most) until the web server has read `n` more body bytes than `from`.
fn wait_body_read(from: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while BODY_READ.load(SeqCst) < from + n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How a read that did not complete a body ended.
fn ending(r: std::io::Result<usize>) -> &'static str {
    match r {
        Ok(0) => "closed (FIN)",
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset (RST)",
        _ => "failed",
    }
}

/// One request head (and the body its `Content-Length` announces) from `s`; `None` at the end
/// (a body cut short noted in `cut`, with the bytes of it that came).
fn read_request(s: &mut TcpStream, cut: &Cut) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        if let Err(how) = read_chunks(s) {
            cut.lock().unwrap().push(format!("chunked body, then {how}"));
            return None;
        }
        return Some(head);
    }
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    let (mut got, mut buf) = (0, [0u8; 4096]);
    while got < len {
        match s.read(&mut buf[..(len - got).min(4096)]) {
            Ok(n) if n > 0 => {
                got += n;
                BODY_READ.fetch_add(n, SeqCst);
            }
            r => {
                cut.lock().unwrap().push(format!("{got} of {len} body bytes, then {}", ending(r)));
                return None;
            }
        }
    }
    Some(head)
}

/// A chunked body, to its last chunk and the end of its trailers; how the connection ended if
/// it is cut.
fn read_chunks(s: &mut TcpStream) -> Result<(), &'static str> {
    let line = |s: &mut TcpStream| {
        let mut l = Vec::new();
        let mut b = [0u8; 1];
        while !l.ends_with(b"\r\n") {
            match s.read(&mut b) {
                Ok(1) => l.push(b[0]),
                r => return Err(ending(r)),
            }
        }
        Ok(String::from_utf8_lossy(&l[..l.len() - 2]).into_owned())
    };
    loop {
        let size = line(s)?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "bad chunk")?;
        if size == 0 {
            while !line(s)?.is_empty() {}
            return Ok(());
        }
        let mut data = vec![0u8; size + 2];
        s.read_exact(&mut data).map_err(|e| ending(Err(e)))?;
        BODY_READ.fetch_add(size, SeqCst);
    }
}

/// The HTTP server: `/close` closes without answering, `/hang` never answers (until the peer
/// leaves, 3 s at most), `/cd` sends a head and part of the body then pauses 500 ms, `/hold`
/// waits 700 ms, `/big` answers 300 000 bytes; anything else a short 200 with a cookie, on a
/// kept-alive connection.
fn web_server(holding: Arc<AtomicUsize>, cut: Cut) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(200) {
            let Ok(mut c) = c else { continue };
            let (holding, cut) = (holding.clone(), cut.clone());
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                while let Some(head) = read_request(&mut c, &cut) {
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    if path.starts_with("/close") {
                        return;
                    } else if path.starts_with("/hang") {
                        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                        let _ = c.read(&mut [0u8; 16]);
                        return;
                    } else if path.starts_with("/cd") {
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
                        let _ = c.write_all(&[b'x'; 1000]);
                        std::thread::sleep(Duration::from_millis(500));
                        let _ = c.write_all(&[b'x'; 99000]);
                        return;
                    } else if path.ends_with("/hold") {
                        holding.fetch_add(1, SeqCst);
                        std::thread::sleep(Duration::from_millis(700));
                        holding.fetch_sub(1, SeqCst);
                    }
                    let body = if path.starts_with("/big") { vec![b'y'; 300_000] } else { b"ok\n".to_vec() };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: SESSNEW=n1; Path=/\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if c.write_all(head.as_bytes()).is_err() || c.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The TCP server: echoes until the peer closes; a read that starts with `rst` gets a reset.
fn tcp_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(100) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    if buf[..n].starts_with(b"rst") {
                        let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                        return;
                    }
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One proxy's ports.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    tcp_ok: u16,
    tcp_dead: u16,
}

fn config(p: Ports, syslog: u16, s: &Servers) -> String {
    let (fmt, tfmt) = (log_format(true), log_format(false));
    let (web, tcp, dead) = (s.web, s.tcp, s.dead);
    format!(
        "global\n  log 127.0.0.1:{syslog} local0 info\n\
         defaults\n  log global\n  retries 1\n  timeout connect 500ms\n  timeout client 1s\n  timeout server 1s\n\
         \x20 timeout queue 300ms\n  timeout tarpit 200ms\n\
         frontend f\n  mode http\n  bind 127.0.0.1:{http}\n  log-format \"{fmt}\"\n\
         \x20 capture request header Host len 20\n  capture response header Content-Type len 12\n  capture cookie SESS len 12\n\
         \x20 unique-id-format u-%[req.hdr(x-trace)]\n\
         \x20 http-request deny if {{ path /deny }}\n  http-request tarpit if {{ path /tarpit }}\n\
         \x20 http-request return status 200 content-type text/plain string ret if {{ path /return }}\n\
         \x20 http-request redirect location /elsewhere if {{ path /redirect }}\n\
         \x20 use_backend refused if {{ path_beg /refused }}\n  use_backend redisp if {{ path_beg /redisp }}\n\
         \x20 use_backend nosrv if {{ path_beg /nosrv }}\n  use_backend queue if {{ path_beg /queue }}\n\
         \x20 use_backend full if {{ path_beg /full }}\n  use_backend redir if {{ path_beg /redir }}\n\
         \x20 use_backend hashfull if {{ path_beg /hashfull }}\n\
         \x20 use_backend keep if {{ path_beg /keep }}\n  default_backend web\n\
         backend web\n  mode http\n  server w 127.0.0.1:{web}\n\
         backend refused\n  mode http\n  server d 127.0.0.1:{dead}\n\
         backend redisp\n  mode http\n  option redispatch\n  cookie SRV\n\
         \x20 server d 127.0.0.1:{dead} cookie d\n  server w 127.0.0.1:{web} cookie w\n\
         backend nosrv\n  mode http\n  server m 127.0.0.1:{web} disabled\n\
         backend queue\n  mode http\n  server q 127.0.0.1:{web} maxconn 1\n\
         backend redir\n  mode http\n  server r 127.0.0.1:{web} redir http://elsewhere.example\n\
         backend keep\n  mode http\n  server r 127.0.0.1:{web} redir /\n\
         backend full\n  mode http\n  timeout queue 2s\n  server q 127.0.0.1:{web} maxconn 1 maxqueue 1\n\
         backend hashfull\n  mode http\n  timeout queue 2s\n  balance hdr(x-trace)\n\
         \x20 server h1 127.0.0.1:{web} maxconn 1 maxqueue 1\n  server h2 127.0.0.1:{web} maxconn 1 maxqueue 1\n\
         frontend tok\n  mode tcp\n  bind 127.0.0.1:{tok}\n  log-format \"{tfmt}\"\n  default_backend tcp\n\
         frontend tdead\n  mode tcp\n  bind 127.0.0.1:{tdead}\n  log-format \"{tfmt}\"\n  default_backend tdead\n\
         backend tcp\n  mode tcp\n  server t 127.0.0.1:{tcp}\n\
         backend tdead\n  mode tcp\n  server t 127.0.0.1:{dead}\n",
        http = p.http,
        tok = p.tcp_ok,
        tdead = p.tcp_dead,
    )
}

fn connect(port: u16) -> (TcpStream, u16) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cp = s.local_addr().unwrap().port();
    (s, cp)
}

/// Everything until the peer closes (or 5 s pass).
fn drain(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The status of the first response in `bytes`, 0 without one.
fn status(bytes: &[u8]) -> u16 {
    let t = String::from_utf8_lossy(bytes);
    t.strip_prefix("HTTP/1.").and_then(|r| r.get(2..5)).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends `req` on a new connection and reads to the close: the client port and the status.
fn send(port: u16, req: &str) -> (u16, u16) {
    let (mut s, cp) = connect(port);
    s.write_all(req.as_bytes()).unwrap();
    (cp, status(&drain(&mut s)))
}

fn get(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: example.com\r\nX-Trace: t1\r\nCookie: SESSID=abc\r\nConnection: close\r\n\r\n"
    )
}

/// Resets the connection (SO_LINGER 0) when dropped.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// What a case does on one side: the client ports whose lines to compare, and the statuses the
/// client saw (compared too).
type Run = fn(Ports, &Servers) -> Vec<(u16, u16)>;

struct Case {
    name: &'static str,
    /// HAProxy's termination state for the case (checked on its line, so a case that stopped
    /// testing what it says shows).
    tsc: &'static str,
    run: Run,
    /// Fields known to differ, each with why: asserted to differ. `status`: the two answer
    /// the client differently (asserted), so the lines are not compared.
    known: &'static [(&'static str, &'static str)],
    /// Fields that differ by nature in this case (how much was buffered when the client left):
    /// compared as numbers.
    by_nature: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "normal",
            tsc: "----",
            run: |p, _| vec![send(p.http, &get("/ok?x=1"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "server refuses (503 SC)",
            tsc: "SC--",
            run: |p, _| vec![send(p.http, &get("/refused"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "server closes without answering (502 SH)",
            tsc: "SH--",
            run: |p, _| vec![send(p.http, &get("/close"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "server timeout (504 sH)",
            tsc: "sH--",
            run: |p, _| vec![send(p.http, &get("/hang"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "client closes before a full request (CR)",
            tsc: "CR--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                s.write_all(b"GET /partial HTTP/1.1\r\nHost: exa").unwrap();
                std::thread::sleep(Duration::from_millis(100));
                s.shutdown(Shutdown::Write).unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "client closes during the response (CD)",
            tsc: "CD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                s.write_all(get("/cd").as_bytes()).unwrap();
                // The head (and what came with it), then a reset with the rest unread.
                let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                reset(s);
                vec![(cp, status(&got))]
            },
            known: &[],
            by_nature: &["B"],
        },
        Case {
            // Neither notices a reset while it waits on the server (no `abortonclose`).
            name: "client resets while the server is slow (504 sH)",
            tsc: "sH--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                s.write_all(get("/hang").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                reset(s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "client resets in the queue (503 sQ)",
            tsc: "sQ--",
            run: |p, s| {
                let http = p.http;
                let first = std::thread::spawn(move || send(http, &get("/queue/hold")));
                wait_holding(s, 1);
                let (mut c, cp) = connect(p.http);
                c.write_all(get("/queue/wait").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                reset(c);
                first.join().unwrap();
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            // `%U` counts the 1000 body bytes that came, not the 100 000 declared.
            name: "client aborts during the request body",
            tsc: "CD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                let from = BODY_READ.load(SeqCst);
                s.write_all(b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\n").unwrap();
                s.write_all(&[b'u'; 1000]).unwrap();
                wait_body_read(from, 1000);
                reset(s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            // A close (FIN, not a reset) halfway through the body is the same abort to HAProxy:
            // no answer (the client reads the close: status 0 on both), `-1`, `CD`, `%B` 0.
            name: "client closes during the request body",
            tsc: "CD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                let from = BODY_READ.load(SeqCst);
                s.write_all(b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\n").unwrap();
                s.write_all(&[b'u'; 1000]).unwrap();
                wait_body_read(from, 1000);
                s.shutdown(Shutdown::Write).unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            // A chunked body cut by a close: `%U` counts the chunks' data that came.
            name: "client closes during a chunked request body",
            tsc: "CD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                let from = BODY_READ.load(SeqCst);
                s.write_all(b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .unwrap();
                s.write_all(b"1f4\r\n").unwrap();
                s.write_all(&[b'u'; 500]).unwrap();
                s.write_all(b"\r\n").unwrap();
                wait_body_read(from, 500);
                s.shutdown(Shutdown::Write).unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "client timeout (408 cR)",
            tsc: "cR--",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                s.write_all(b"GET /slowclient HTTP/1.1\r\nHost: exa").unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "bad request (400 PR)",
            tsc: "PR--",
            run: |p, _| vec![send(p.http, "GET /bad HTTP/1.1\r\nHost: example.com\r\nBad Header\r\n\r\n")],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "deny (403 PR)",
            tsc: "PR--",
            run: |p, _| vec![send(p.http, &get("/deny"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "tarpit (500 PT)",
            tsc: "PT--",
            run: |p, _| vec![send(p.http, &get("/tarpit"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "http-request return (LR)",
            tsc: "LR--",
            run: |p, _| vec![send(p.http, &get("/return"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "redirect (302 LR)",
            tsc: "LR--",
            run: |p, _| vec![send(p.http, &get("/redirect"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "server redir (302 LC)",
            tsc: "LC--",
            run: |p, _| vec![send(p.http, &get("/redir/a?x=1"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "server redir / (302 LC)",
            tsc: "LC--",
            run: |p, _| vec![send(p.http, &get("/keep/a?x=1"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "no server available (503)",
            tsc: "SC--",
            run: |p, _| vec![send(p.http, &get("/nosrv"))],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "queue timeout (503 sQ)",
            tsc: "sQ--",
            run: |p, s| {
                let http = p.http;
                let first = std::thread::spawn(move || send(http, &get("/queue/hold")));
                wait_holding(s, 1);
                let out = send(p.http, &get("/queue/wait"));
                first.join().unwrap();
                vec![out]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "beyond maxqueue",
            tsc: "----",
            run: |p, s| {
                let http = p.http;
                let first = std::thread::spawn(move || send(http, &get("/full/hold")));
                wait_holding(s, 1);
                let second = std::thread::spawn(move || send(http, &get("/full/queued")));
                // Time for the second to join the queue; the first holds its slot 700 ms.
                std::thread::sleep(Duration::from_millis(300));
                let out = send(p.http, &get("/full/third"));
                first.join().unwrap();
                second.join().unwrap();
                vec![out]
            },
            // Both queue the third in the backend's queue, which `maxqueue` does not bound.
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "hashed server beyond maxqueue (503 SQ)",
            tsc: "SQ--",
            run: |p, s| {
                // Every request has the same X-Trace, so the same server: the second waits for
                // it (the other server is idle), the third finds its queue at maxqueue.
                let http = p.http;
                let first = std::thread::spawn(move || send(http, &get("/hashfull/hold")));
                wait_holding(s, 1);
                let second = std::thread::spawn(move || send(http, &get("/hashfull/queued")));
                // Time for the second to join the queue; the first holds its slot 700 ms.
                std::thread::sleep(Duration::from_millis(300));
                let out = send(p.http, &get("/hashfull/third"));
                first.join().unwrap();
                second.join().unwrap();
                vec![out]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "retried and redispatched",
            tsc: "----",
            run: |p, _| {
                let req = "GET /redisp HTTP/1.1\r\nHost: example.com\r\nCookie: SRV=d\r\nConnection: close\r\n\r\n";
                vec![send(p.http, req)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "keep-alive second request",
            tsc: "----",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                let mut out = Vec::new();
                for path in ["/ka1", "/ka2"] {
                    std::thread::sleep(Duration::from_millis(100));
                    write!(s, "GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
                    let r = common::read_response(&mut s, false).unwrap();
                    out.push((cp, r.status));
                }
                drop(s);
                out
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "large bodies",
            tsc: "----",
            run: |p, _| {
                let body = vec![b'b'; 200_000];
                let (mut s, cp) = connect(p.http);
                let head = format!(
                    "POST /big HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                s.write_all(&body).unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            // `%U` with the chunks' data and the end of the trailers.
            name: "chunked request body",
            tsc: "----",
            run: |p, _| {
                let (mut s, cp) = connect(p.http);
                s.write_all(b"POST /chunks HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
                s.write_all(b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n").unwrap();
                vec![(cp, status(&drain(&mut s)))]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "HTTP/1.0 without Host",
            tsc: "----",
            run: |p, _| vec![send(p.http, "GET /h10 HTTP/1.0\r\n\r\n")],
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "tcp: normal",
            tsc: "----",
            run: |p, _| {
                let (mut s, cp) = connect(p.tcp_ok);
                s.write_all(b"hello").unwrap();
                let mut back = [0u8; 5];
                s.read_exact(&mut back).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                drain(&mut s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "tcp: server refuses",
            tsc: "SC--",
            run: |p, _| {
                let (mut s, cp) = connect(p.tcp_dead);
                drain(&mut s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "tcp: client aborts (CD)",
            tsc: "CD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.tcp_ok);
                s.write_all(b"hello").unwrap();
                let mut back = [0u8; 5];
                s.read_exact(&mut back).unwrap();
                reset(s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
        Case {
            name: "tcp: server aborts (SD)",
            tsc: "SD--",
            run: |p, _| {
                let (mut s, cp) = connect(p.tcp_ok);
                s.write_all(b"hello").unwrap();
                let mut back = [0u8; 5];
                s.read_exact(&mut back).unwrap();
                s.write_all(b"rst").unwrap();
                drain(&mut s);
                vec![(cp, 0)]
            },
            known: &[],
            by_nature: &[],
        },
    ]
}

/// The cases whose client cuts its request body.
const CUT: &[&str] = &[
    "client aborts during the request body",
    "client closes during the request body",
    "client closes during a chunked request body",
];

/// The web server's note of the first body cut short since `from` (waited for, 3 s at most).
fn next_cut(cut: &Cut, from: usize) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(c) = cut.lock().unwrap().get(from) {
            return Some(c.clone());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_holding(s: &Servers, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.holding.load(SeqCst) < n {
        assert!(Instant::now() < deadline, "the server never got the held request");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first line on `log` from index `from` on whose `cp=` is `cp` and that is not `used`
/// yet (it becomes so), waited for (5 s at most). From the case's own lines only: a client
/// port comes back in a later case, and a line of an earlier one may still be unread.
fn line_of(log: &Syslog, cp: u16, from: usize, used: &mut Vec<usize>) -> Option<String> {
    let needle = format!("cp={cp} @");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = log.drain();
        let found = (from..lines.len()).find(|i| !used.contains(i) && lines[*i].contains(&needle));
        if let Some(i) = found {
            used.push(i);
            return Some(common::syslog_message(&lines[i]));
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// The fields of a message, by name.
fn fields(msg: &str) -> Vec<(String, String)> {
    msg.split(" @")
        .map(|f| f.split_once('=').map_or((f.into(), String::new()), |(n, v)| (n.into(), v.into())))
        .collect()
}

fn is_time(v: &str) -> bool {
    v == "-1" || v.trim_start_matches('+').parse::<u64>().is_ok()
}

/// Whether `ours` and `theirs` agree on field `name` by its rule.
fn agree(rule: Rule, theirs: &str, ours: &str, (tp, op): (Ports, Ports), (tcp, ocp): (u16, u16)) -> bool {
    let mask = |s: &str| s.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>();
    let num = |s: &str| s.parse::<u64>().is_ok();
    match rule {
        Eq => theirs == ours,
        Time => is_time(theirs) && is_time(ours) && (theirs == "-1") == (ours == "-1"),
        Number => (num(theirs) && num(ours)) || theirs == ours,
        Digits => mask(theirs) == mask(ours),
        ClientPort => theirs == tcp.to_string() && ours == ocp.to_string(),
        FrontPort => {
            let fp = |p: Ports, v: &str| [p.http, p.tcp_ok, p.tcp_dead].iter().any(|x| x.to_string() == v);
            fp(tp, theirs) && fp(op, ours)
        }
    }
}

#[test]
fn failure_log_lines_match_haproxy_field_by_field() {
    let Some(bin) = haproxy_bin() else {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    };
    assert!(bin.ends_with("haproxy"));
    let holding = Arc::new(AtomicUsize::new(0));
    let cut = Cut::default();
    let web = web_server(holding.clone(), cut.clone());
    let servers = Servers { web, tcp: tcp_server(), dead: free_port(), holding, cut };
    let ports = || Ports { http: free_port(), tcp_ok: free_port(), tcp_dead: free_port() };
    let (tp, op) = (ports(), ports());
    let (tlog, olog) = (Syslog::new(), Syslog::new());
    let (_h, _hdir) = common::haproxy(&config(tp, tlog.port(), &servers), tp.tcp_dead);
    let _l = Lbha::start_haproxy(&config(op, olog.port(), &servers), &[op.http, op.tcp_ok, op.tcp_dead]);
    let mut report = Vec::new();
    let mut failures = 0;
    for case in cases() {
        let from = (tlog.drain().len(), olog.drain().len());
        let mut used = (Vec::new(), Vec::new());
        // A cut request body: what the server saw of it is compared too.
        let cuts = CUT.contains(&case.name);
        let c0 = servers.cut.lock().unwrap().len();
        let theirs = (case.run)(tp, &servers);
        let tcut = cuts.then(|| next_cut(&servers.cut, c0));
        let c1 = servers.cut.lock().unwrap().len();
        let ours = (case.run)(op, &servers);
        let ocut = cuts.then(|| next_cut(&servers.cut, c1));
        if tcut != ocut {
            failures += 1;
            report.push(format!("{}: the server saw {tcut:?} vs {ocut:?}", case.name));
        } else if cuts {
            report.push(format!("  [{}] the server saw {tcut:?} from both", case.name));
        }
        let statuses = |v: &[(u16, u16)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
        let (ts, os) = (statuses(&theirs), statuses(&ours));
        if let Some((_, why)) = case.known.iter().find(|k| k.0 == "status") {
            if ts == os {
                failures += 1;
                report.push(format!("{}: the client saw {ts:?} from both; known difference gone: {why}", case.name));
            }
            report.push(format!("  [{}] known to answer {ts:?} vs {os:?}: {why}", case.name));
            continue;
        }
        if ts != os {
            failures += 1;
            report.push(format!("{}: the client saw {ts:?} vs {os:?}", case.name));
        }
        for (t, o) in theirs.iter().zip(&ours) {
            let tl = line_of(&tlog, t.0, from.0, &mut used.0);
            let ol = line_of(&olog, o.0, from.1, &mut used.1);
            let (tl, ol) = match (tl, ol) {
                (Some(tl), Some(ol)) => (tl, ol),
                missing => {
                    failures += 1;
                    report.push(format!("{}: a line is missing (haproxy, lbha): {missing:?}", case.name));
                    continue;
                }
            };
            let (tf, of) = (fields(&tl), fields(&ol));
            let tsc = tf.iter().find(|f| f.0 == "tsc").map(|f| f.1.as_str());
            if tsc != Some(case.tsc) {
                failures += 1;
                report.push(format!("{}: HAProxy logged {tsc:?}, the case expects {}", case.name, case.tsc));
            }
            let want: Vec<_> = fields_of(!case.name.starts_with("tcp")).collect();
            assert_eq!(tf.len(), want.len(), "haproxy's line: {tl}");
            assert_eq!(of.len(), want.len(), "lbha's line: {ol}");
            for (i, (name, _, rule, _)) in want.into_iter().enumerate() {
                let (tv, ov) = (&tf[i].1, &of[i].1);
                let rule = if case.by_nature.contains(name) { Number } else { *rule };
                let ok = agree(rule, tv, ov, (tp, op), (t.0, o.0));
                let known = case.known.iter().find(|k| k.0 == *name);
                match (ok, known) {
                    (true, None) | (false, Some(_)) => {}
                    (false, None) => {
                        failures += 1;
                        report.push(format!("{}: {name}: haproxy {tv:?} lbha {ov:?}", case.name));
                    }
                    (true, Some(k)) => {
                        failures += 1;
                        report
                            .push(format!("{}: {name} agrees now ({tv:?}), known difference gone: {}", case.name, k.1));
                    }
                }
            }
            report.push(format!("  [{}]\n    haproxy: {tl}\n    lbha:    {ol}", case.name));
        }
    }
    println!("{}", report.join("\n"));
    assert_eq!(
        failures,
        0,
        "differences:\n{}",
        report.iter().filter(|l| !l.starts_with("  [")).cloned().collect::<Vec<_>>().join("\n")
    );
}
