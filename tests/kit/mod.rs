//! Test servers for persistence and health tests: a small HTTP/1.1 server on loopback that the
//! test starts, stops and restarts on the same port, records every request as it arrived (method,
//! target, version, headers) and answers with a chosen status, body and `Set-Cookie`.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn cookie(&self) -> Option<&str> {
        self.header("cookie")
    }
}

/// How the server answers.
#[derive(Default)]
struct Behaviour {
    /// A `Set-Cookie` value; `{n}` becomes a per-server counter. Sent only to requests without
    /// that cookie when `only_without` is set (an application starting a session).
    set_cookie: Option<(String, Option<String>)>,
    body: Option<String>,
    /// Extra header lines (`Name: value`) on every response.
    headers: Vec<String>,
}

struct State {
    name: String,
    stop: AtomicBool,
    status: AtomicU16,
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<Req>>,
    counter: AtomicUsize,
    conns: Mutex<Vec<TcpStream>>,
    connections: AtomicUsize,
}

pub struct Web {
    pub port: u16,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Web {
    pub fn start(name: &str) -> Web {
        Self::start_on(name, 0)
    }

    /// Starts on `port` (0: any free port), retrying briefly while a just-closed socket frees it.
    pub fn start_on(name: &str, port: u16) -> Web {
        let deadline = Instant::now() + Duration::from_secs(5);
        let l = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
            }
        };
        let port = l.local_addr().unwrap().port();
        let state = Arc::new(State {
            name: name.to_string(),
            stop: AtomicBool::new(false),
            status: AtomicU16::new(200),
            behaviour: Mutex::new(Behaviour::default()),
            log: Mutex::new(Vec::new()),
            counter: AtomicUsize::new(0),
            conns: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let st = state.clone();
        let thread = std::thread::spawn(move || accept_loop(l, st));
        Web { port, state, thread: Some(thread) }
    }

    /// Stops listening and closes open connections; the port then refuses connections.
    pub fn stop(mut self) -> u16 {
        self.halt();
        self.port
    }

    fn halt(&mut self) {
        // Once only: after a stop the port may belong to someone else (another test's proxy),
        // which must not see a stray connection.
        let Some(t) = self.thread.take() else { return };
        self.state.stop.store(true, SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let _ = t.join();
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn set_status(&self, s: u16) {
        self.state.status.store(s, SeqCst);
    }

    pub fn set_body(&self, b: &str) {
        self.state.behaviour.lock().unwrap().body = Some(b.to_string());
    }

    /// Adds `line` (`Name: value`) to every response.
    pub fn add_header(&self, line: &str) {
        self.state.behaviour.lock().unwrap().headers.push(line.to_string());
    }

    /// Sends `Set-Cookie: value` (`{n}` → a counter); with `unless_cookie`, only to requests that
    /// do not carry that cookie yet.
    pub fn set_cookie(&self, value: &str, unless_cookie: Option<&str>) {
        self.state.behaviour.lock().unwrap().set_cookie = Some((value.to_string(), unless_cookie.map(str::to_string)));
    }

    pub fn requests(&self) -> Vec<Req> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests whose target starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.state.log.lock().unwrap().iter().filter(|r| r.target.starts_with(prefix)).count()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(SeqCst)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(l: TcpListener, st: Arc<State>) {
    let mut handlers = Vec::new();
    for conn in l.incoming() {
        if st.stop.load(SeqCst) {
            break;
        }
        let Ok(c) = conn else { continue };
        st.connections.fetch_add(1, SeqCst);
        if let Ok(clone) = c.try_clone() {
            st.conns.lock().unwrap().push(clone);
        }
        let st2 = st.clone();
        handlers.push(std::thread::spawn(move || serve(c, st2)));
    }
    drop(l);
    for c in st.conns.lock().unwrap().iter() {
        let _ = c.shutdown(Shutdown::Both);
    }
    for h in handlers {
        let _ = h.join();
    }
}

fn serve(mut c: TcpStream, st: Arc<State>) {
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if st.stop.load(SeqCst) {
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = req.parse(&buf);
        let head_len = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                match c.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
                continue;
            }
            Err(_) => return,
        };
        let r = Req {
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            version: req.version.unwrap_or(1),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
        };
        let body_len: usize = r.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        buf.drain(..head_len);
        while buf.len() < body_len {
            match c.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if st.stop.load(SeqCst) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        buf.drain(..body_len);
        let close = match r.header("connection").map(str::to_ascii_lowercase) {
            Some(v) if v.contains("close") => true,
            Some(v) if v.contains("keep-alive") => false,
            _ => r.version == 0,
        };
        let mut extra = String::new();
        let body = {
            let b = st.behaviour.lock().unwrap();
            if let Some((value, unless)) = &b.set_cookie {
                let has = unless.as_ref().is_some_and(|name| {
                    r.cookie().is_some_and(|c| c.split(';').any(|p| p.trim().starts_with(&format!("{name}="))))
                });
                if !has {
                    let n = st.counter.fetch_add(1, SeqCst) + 1;
                    extra.push_str(&format!("Set-Cookie: {}\r\n", value.replace("{n}", &n.to_string())));
                }
            }
            for h in &b.headers {
                extra.push_str(h);
                extra.push_str("\r\n");
            }
            b.body.clone().unwrap_or_else(|| st.name.clone())
        };
        let head = r.method == "HEAD";
        st.log.lock().unwrap().push(r);
        let status = st.status.load(SeqCst);
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}{}\r\n{}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" },
            if head { "" } else { body.as_str() }
        );
        if c.write_all(resp.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// A TCP server that accepts and holds connections (echoing bytes back), for TCP-mode sessions.
pub struct Hold {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hold {
    pub fn start() -> Hold {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for c in l.incoming() {
                if s2.load(SeqCst) {
                    break;
                }
                let Ok(mut c) = c else { continue };
                let s3 = s2.clone();
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut b = [0u8; 1024];
                    while !s3.load(SeqCst) {
                        match c.read(&mut b) {
                            Ok(0) => return,
                            Ok(n) => {
                                if c.write_all(&b[..n]).is_err() {
                                    return;
                                }
                            }
                            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        Hold { port, stop, thread: Some(thread) }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a [`head_server`] answers each request head it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Never: reads and discards until the client closes (a server that hangs).
    Never,
    /// `101 Switching Protocols`, then echoes bytes (a WebSocket server, asked or not).
    Upgrade,
    /// 101 and echo when the head asks for a WebSocket, else `200` with body `no`.
    UpgradeIfAsked,
}

/// A server for up to four connections that reads one request head on each and answers as told.
pub fn head_server(answer: Answer) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let Some(head) = crate::common::read_request_head(&mut s) else { return };
                let asked = String::from_utf8_lossy(&head).to_ascii_lowercase().contains("upgrade: websocket");
                let upgrade = match answer {
                    Answer::Never => false,
                    Answer::Upgrade => true,
                    Answer::UpgradeIfAsked if asked => true,
                    Answer::UpgradeIfAsked => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno");
                        return;
                    }
                };
                if upgrade {
                    let _ = s.write_all(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                    );
                }
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || (upgrade && s.write_all(&buf[..n]).is_err()) {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Waits until `log()` contains `needle`, up to 15 s; panics with the log otherwise.
pub fn wait_log(log: impl Fn() -> String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if log().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("log never showed {needle:?}:\n{}", log());
}

/// Number of times `needle` occurs in the log.
pub fn log_count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}
