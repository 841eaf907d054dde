//! `bytes_in_*`/`bytes_out_*` stick counters against the real HAProxy 2.6: the same requests of
//! many shapes (headers, bodies by length and in chunks, keep-alive, responses with and without
//! a body, chunked, HAProxy's own answers, headers rules add or remove) through both on one
//! haproxy.cfg, then `show table` must read the same. HTTP counts the messages as HAProxy holds
//! them (its HTX form), TCP the raw bytes.

mod common;

use common::{
    Lbha, TempDir, ask_socket, connect, free_port, listening, read_request_head, read_response, wait_tables_agree,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's answer by path.
fn answer(path: &str) -> Vec<u8> {
    if path == "/big" {
        return [&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..], &[b'x'; 1000]].concat();
    }
    let a: &[u8] = match path {
        "/empty" => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "/nobody" => b"HTTP/1.1 204 No Content\r\n\r\n",
        "/fields" => b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Foo: barbaz\r\nConnection: keep-alive\r\n\r\nabc",
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
        "/reason" => b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 2\r\n\r\nok",
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    };
    a.to_vec()
}

/// Reads a request body as its head frames it (length or chunks), so the connection can go on.
fn skip_body(r: &mut BufReader<TcpStream>, head: &str) -> Option<()> {
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    };
    if let Some(n) = field("content-length") {
        let mut b = vec![0u8; n.parse().ok()?];
        r.read_exact(&mut b).ok()?;
    } else if field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).ok()?;
            let n = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut b = vec![0u8; n + 2];
            r.read_exact(&mut b).ok()?;
            if n == 0 {
                break;
            }
        }
    }
    Some(())
}

/// A keep-alive server answering by path, for at most 200 connections.
fn server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(200) {
            let Ok(s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                while let Some(head) = read_request_head(&mut r) {
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    if skip_body(&mut r, &head).is_none() || w.write_all(&answer(&path)).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(http: u16, tcp: u16, server: u16, sock: &str) -> String {
    let store = "bytes_in_cnt,bytes_in_rate(1m),bytes_out_cnt,bytes_out_rate(1m),http_req_cnt";
    format!(
        "global\n    stats socket {sock} level admin\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{http}\n\
         \x20   stick-table type string len 32 size 1k expire 5m store {store}\n\
         \x20   tcp-request connection track-sc1 src table conns\n\
         \x20   http-request track-sc0 req.hdr(x-k)\n\
         \x20   http-request deny if {{ path /deny }}\n\
         \x20   http-request return status 200 content-type text/plain string hello if {{ path /ret }}\n\
         \x20   http-request set-header X-Add 12345 if {{ path /edit }}\n\
         \x20   http-request del-header X-Del if {{ path /edit }}\n\
         \x20   http-response set-header X-Resp abc\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{server}\n\
         backend conns\n    stick-table type ip size 1k expire 5m store {store}\n\
         frontend ft\n    mode tcp\n    bind 127.0.0.1:{tcp}\n\
         \x20   stick-table type ip size 1k expire 5m store bytes_in_cnt,bytes_out_cnt\n\
         \x20   tcp-request connection track-sc0 src\n\
         \x20   default_backend bt\n\
         backend bt\n    mode tcp\n    server s1 127.0.0.1:{server}\n"
    )
}

/// One connection: each request sent, its response read; `key` fills the `KEY` of each.
fn exchange(port: u16, key: &str, reqs: &[&str]) -> Vec<u16> {
    let mut s = connect(port);
    reqs.iter()
        .map(|r| {
            s.write_all(r.replace("KEY", key).as_bytes()).unwrap();
            let head = r.starts_with("HEAD ");
            read_response(&mut s, head).map_or(0, |r| r.status)
        })
        .collect()
}

const CLOSE: &str = "Connection: close\r\n";

/// The requests, each tracked under its own key.
fn traffic(port: u16, tcp: u16) -> Vec<(String, Vec<u16>)> {
    let get = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: h\r\nX-K: KEY\r\n{extra}{CLOSE}\r\n");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("plain", vec![get("/", "")]),
        ("long-uri", vec![get("/abcdefghij?q=1", "")]),
        ("fields", vec![get("/", "X-Long: 0123456789\r\nX-A: 1\r\nX-A: 22\r\nAccept: */*\r\n")]),
        ("keep-alive", vec![get("/big", "").replace(CLOSE, ""), get("/", "").replace(CLOSE, ""), get("/fields", "")]),
        ("http10", vec!["GET / HTTP/1.0\r\nX-K: KEY\r\n\r\n".to_string()]),
        (
            "post-length",
            vec![format!("POST /up HTTP/1.1\r\nHost: h\r\nX-K: KEY\r\nContent-Length: 10\r\n{CLOSE}\r\n0123456789")],
        ),
        (
            "post-chunked",
            vec![format!(
                "POST /up HTTP/1.1\r\nHost: h\r\nX-K: KEY\r\nTransfer-Encoding: chunked\r\n{CLOSE}\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
            )],
        ),
        ("empty", vec![get("/empty", "")]),
        ("no-body", vec![get("/nobody", "")]),
        ("server-fields", vec![get("/fields", "")]),
        ("chunked", vec![get("/chunked", "")]),
        ("reason", vec![get("/reason", "")]),
        ("head", vec![get("/big", "").replacen("GET", "HEAD", 1)]),
        ("deny", vec![get("/deny", "")]),
        ("return", vec![get("/ret", "")]),
        ("edit", vec![get("/edit", "X-Del: 123456\r\n")]),
        ("expect", vec![get("/", "Expect: 100-continue\r\nUser-Agent: t/1\r\n")]),
    ];
    let mut seen: Vec<(String, Vec<u16>)> = cases
        .iter()
        .map(|(key, reqs)| {
            let reqs: Vec<&str> = reqs.iter().map(String::as_str).collect();
            (key.to_string(), exchange(port, key, &reqs))
        })
        .collect();
    // Raw bytes through the TCP frontend.
    let mut s = connect(tcp);
    s.write_all(format!("GET /fields HTTP/1.1\r\nHost: h\r\n{CLOSE}\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    seen.push(("tcp".to_string(), vec![out.len() as u16]));
    seen
}

#[test]
fn byte_counters_match_haproxy_2_6() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("scbytes");
    let origin = server();
    let hsock = dir.0.join("hap.sock");
    let (hport, htcp, lport, ltcp) = (free_port(), free_port(), free_port(), free_port());
    let hcfg = dir.write("hap.cfg", &config(hport, htcp, origin, &hsock.display().to_string()));
    let _hap = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&hcfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let lsock = dir.0.join("lbha-stats.sock");
    let lb = Lbha::start_haproxy(&config(lport, ltcp, origin, &lsock.display().to_string()), &[lport, ltcp]);
    // As lbha's start waits for its ports: seen in /proc, no probe connection on either side.
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [hport, htcp] {
        while !listening(port) {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (h_seen, l_seen) = (traffic(hport, htcp), traffic(lport, ltcp));
    assert_eq!(h_seen, l_seen, "answers (status per request; bytes for tcp)");
    // The last bytes count when each side notices the connection's end.
    wait_tables_agree(&["fe", "conns", "ft"], |c| ask_socket(&hsock, c), |c| ask_socket(&lb.sock, c), "byte counters");
}
