//! Test harness: runs the real `lbha` binary on loopback against backends the test starts.
#![allow(dead_code)]

pub mod dnsmasq;
pub mod hand_checked;
pub mod pki;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A free loopback port for lbha to bind. Taken below the kernel's ephemeral range (32768 and
/// up), so no outgoing connection of a parallel test can grab it between this check and lbha's
/// bind; spread by process id and handed out once per process.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919);
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + (base.wrapping_add(n) % 12_000) as u16;
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("lbha-test-{tag}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails the test, naming the tool and its Debian package, when `tool` is not on the PATH; a
/// missing tool must not read as a failure of lbha, nor pass as a skip.
pub fn require_tool(tool: &str, package: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|d| d.join(tool).is_file()) {
        panic!("this test needs `{tool}` on the PATH (Debian: apt-get install {package})");
    }
}

pub fn lbha_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lbha")
}

/// Reads one request head byte by byte (so nothing after it is consumed); `None` when the peer
/// closes first.
pub fn read_request_head(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// A server for `CONNECT`, on up to `conns` connections: `CONNECT refused.example:443` gets a 403,
/// any other target `200 Connection established`, then every byte comes back after `prefix`.
pub fn connect_server(conns: usize, prefix: &'static [u8]) -> u16 {
    let server = StdListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in server.incoming().take(conns) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let Some(head) = read_request_head(&mut c) else { return };
                if head.starts_with(b"CONNECT refused.example:443 ") {
                    let _ = c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
                    return;
                }
                let _ = c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let mut buf = [0u8; 1024];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&[prefix, &buf[..n]].concat()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A child process killed (by PID, from Rust) and reaped when dropped, also when the test panics.
pub struct Reaped(Option<Child>);

impl Reaped {
    pub fn new(c: Child) -> Reaped {
        Reaped(Some(c))
    }
    /// The child itself, no longer killed on drop (to wait for its output).
    pub fn take(mut self) -> Child {
        self.0.take().expect("child present")
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("child present")
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("child present")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running lbha daemon, killed on drop.
pub struct Lbha {
    pub child: Child,
    pub dir: TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    /// Its control socket, inside the test's temporary directory.
    pub sock: PathBuf,
}

impl Lbha {
    /// Starts lbha with `config` and waits until every port in `wait_ports` accepts.
    pub fn start(config: &str, wait_ports: &[u16]) -> Lbha {
        Self::start_with(&["run", "-c"], "lbha.toml", config, wait_ports)
    }

    /// Starts `lbha run --haproxy-config` on an haproxy.cfg text.
    pub fn start_haproxy(haproxy_cfg: &str, wait_ports: &[u16]) -> Lbha {
        Self::start_with(&["run", "--haproxy-config"], "haproxy.cfg", haproxy_cfg, wait_ports)
    }

    /// [`Lbha::start_haproxy`] with extra environment variables.
    pub fn start_haproxy_env(haproxy_cfg: &str, env: &[(&str, &str)], wait_ports: &[u16]) -> Lbha {
        let dir = TempDir::new("lbha");
        let stderr = Stdio::from(std::fs::File::create(dir.0.join("lbha.log")).unwrap());
        Self::start_to_env(dir, &["run", "--haproxy-config"], "haproxy.cfg", haproxy_cfg, stderr, env, wait_ports)
    }

    fn start_with(args: &[&str], file: &str, config: &str, wait_ports: &[u16]) -> Lbha {
        let dir = TempDir::new("lbha");
        let log = dir.0.join("lbha.log");
        let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
        Self::start_to(dir, args, file, config, stderr, wait_ports)
    }

    /// Starts `lbha run -c` on `config` written into `dir`, beside files the test put there
    /// (map files, pages) that the config names by relative path.
    pub fn start_in(dir: TempDir, config: &str, wait_ports: &[u16]) -> Lbha {
        let log = dir.0.join("lbha.log");
        let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
        Self::start_to(dir, &["run", "-c"], "lbha.toml", config, stderr, wait_ports)
    }

    /// Starts `lbha run -c` with its stderr going to `stderr`; `log` stays empty.
    pub fn start_with_stderr(config: &str, stderr: std::os::fd::OwnedFd, wait_ports: &[u16]) -> Lbha {
        Self::start_to(TempDir::new("lbha"), &["run", "-c"], "lbha.toml", config, Stdio::from(stderr), wait_ports)
    }

    /// [`Lbha::start`] with extra environment variables (`TZ` for local-time log fields).
    pub fn start_env(config: &str, env: &[(&str, &str)], wait_ports: &[u16]) -> Lbha {
        let dir = TempDir::new("lbha");
        let stderr = Stdio::from(std::fs::File::create(dir.0.join("lbha.log")).unwrap());
        Self::start_to_env(dir, &["run", "-c"], "lbha.toml", config, stderr, env, wait_ports)
    }

    fn start_to(dir: TempDir, args: &[&str], file: &str, config: &str, stderr: Stdio, wait_ports: &[u16]) -> Lbha {
        Self::start_to_env(dir, args, file, config, stderr, &[], wait_ports)
    }

    fn start_to_env(
        dir: TempDir,
        args: &[&str],
        file: &str,
        config: &str,
        stderr: Stdio,
        env: &[(&str, &str)],
        wait_ports: &[u16],
    ) -> Lbha {
        let cfg = dir.write(file, config);
        let log = dir.0.join("lbha.log");
        let sock = dir.0.join("ctl.sock");
        let child = Command::new(lbha_bin())
            .args(args)
            .arg(&cfg)
            .arg("-S")
            .arg(&sock)
            .envs(env.iter().copied())
            .env("LBHA_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn lbha");
        let mut l = Lbha { child, dir, config: cfg, log, sock };
        for &p in wait_ports {
            l.wait_port(p);
        }
        l
    }

    pub fn wait_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("lbha exited early ({st}):\n{}", self.log_text());
            }
            if listening(port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("lbha did not listen on {port}:\n{}", self.log_text());
    }

    /// `Pid:` of `show info`: the process serving the control socket (after `lbha upgrade`, the
    /// new one).
    pub fn served_pid(&self) -> u32 {
        let info = self.ctl(&["show info"]);
        info.lines()
            .find_map(|x| x.strip_prefix("Pid: "))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid in show info:\n{info}"))
    }

    /// Sends command lines on one control connection and returns everything answered.
    pub fn ctl(&self, lines: &[&str]) -> String {
        use std::os::unix::net::UnixStream;
        let mut s =
            UnixStream::connect(&self.sock).unwrap_or_else(|e| panic!("control socket {}: {e}", self.sock.display()));
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        for l in lines {
            s.write_all(l.as_bytes()).unwrap();
            s.write_all(b"\n").unwrap();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Runs the `lbha` CLI against this daemon's socket: (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(lbha_bin()).arg("-S").arg(&self.sock).args(args).output().expect("run lbha cli");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        send_signal(self.child.id(), sig);
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Lbha {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signals a process the test started, by PID (no external `kill`, so it works when the tool is
/// missing and never reports failure as success).
/// Whether a socket listens on `port` (any address), read from `/proc/net/tcp{,6}` instead of
/// connecting: a connection that sends nothing is a probe HAProxy (and lbha) answer, count and
/// log (`CR--`, `<BADREQ>`), which would show in every test's log and counters.
pub fn listening(port: u16) -> bool {
    let want = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).unwrap_or_default().lines().skip(1).any(|l| {
            let mut fields = l.split_whitespace();
            let local = fields.nth(1).unwrap_or("");
            // The fourth field is the state; 0A is LISTEN.
            fields.nth(1) == Some("0A") && format!("{local} ").ends_with(&want)
        })
    })
}

pub fn send_signal(pid: u32, sig: i32) {
    let sig = nix::sys::signal::Signal::try_from(sig).unwrap_or_else(|e| panic!("signal {sig}: {e}"));
    if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig) {
        panic!("cannot send {sig} to pid {pid}: {e}");
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from a blocking stream (Content-Length, chunked, or until close).
pub fn read_response(s: &mut TcpStream, head_request: bool) -> std::io::Result<Resp> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before headers"));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap_or("").split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(a, b)| (a.trim().to_string(), b.trim().to_string())))
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
    } else if let Some(cl) = get("content-length") {
        body.resize(cl.parse().unwrap_or(0), 0);
        s.read_exact(&mut body)?;
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte)?;
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        s.read_to_end(&mut body)?;
    }
    Ok(Resp { status, headers, body })
}

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw(port: u16, bytes: &[u8]) -> std::io::Result<Resp> {
    let mut s = connect(port);
    s.write_all(bytes)?;
    read_response(&mut s, false)
}

pub fn get(port: u16, path: &str) -> Resp {
    raw(port, format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).unwrap()
}

/// What a test backend saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    pub last_headers: std::sync::Mutex<Vec<(String, String)>>,
    pub last_body_len: AtomicUsize,
    /// Requests being handled right now, and the most seen at once.
    pub active: AtomicUsize,
    pub max_active: AtomicUsize,
}

/// An HTTP/1.1 backend on its own thread and runtime: answers `name` as the body (or behaves
/// according to the request path: `/slow` sleeps 3 s, `/echo` returns the request body, `/big`
/// returns 10 MiB), and counts connections and requests.
pub struct Backend {
    pub port: u16,
    pub seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    pub fn start(name: &'static str) -> Backend {
        Self::start_on(name, 0)
    }

    pub fn start_on(name: &'static str, port: u16) -> Backend {
        let std_l = StdListener::bind(("127.0.0.1", port)).unwrap();
        std_l.set_nonblocking(true).unwrap();
        let port = std_l.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(serve_backend(std_l, name, s2, rx));
        });
        Backend { port, seen, stop: Some(tx), thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve_backend(
    std_l: StdListener,
    name: &'static str,
    seen: Arc<Seen>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    use http_body_util::BodyExt;
    let l = tokio::net::TcpListener::from_std(std_l).unwrap();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (sock, _) = tokio::select! {
            r = l.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = &mut stop => break,
        };
        seen.connections.fetch_add(1, Ordering::SeqCst);
        let seen = seen.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move {
                    seen.requests.fetch_add(1, Ordering::SeqCst);
                    let now = seen.active.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.max_active.fetch_max(now, Ordering::SeqCst);
                    let headers: Vec<(String, String)> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                        .collect();
                    *seen.last_headers.lock().unwrap() = headers;
                    let path = req.uri().path().to_string();
                    let mut body_len = 0usize;
                    let mut echo = Vec::new();
                    let mut b = req.into_body();
                    while let Some(Ok(frame)) = b.frame().await {
                        if let Some(d) = frame.data_ref() {
                            body_len += d.len();
                            if path == "/echo" {
                                echo.extend_from_slice(d);
                            }
                        }
                    }
                    seen.last_body_len.store(body_len, Ordering::SeqCst);
                    let _active = ActiveGuard(seen.clone());
                    let body: http_body_util::Full<bytes::Bytes> = match path.as_str() {
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            http_body_util::Full::new(bytes::Bytes::from(name))
                        }
                        "/echo" => http_body_util::Full::new(bytes::Bytes::from(echo)),
                        "/big" => http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 10 << 20])),
                        "/len" => http_body_util::Full::new(bytes::Bytes::from(body_len.to_string())),
                        "/wait" => {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            http_body_util::Full::new(bytes::Bytes::from(name))
                        }
                        _ => http_body_util::Full::new(bytes::Bytes::from(name)),
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                .await;
        });
    }
    conns.abort_all();
}

struct ActiveGuard(Arc<Seen>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends `msg` on a session through an [`echo_server`] and reads as many bytes back.
pub fn echo(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back)?;
    Ok(back)
}

/// A TCP echo server for up to 8 connections (one thread each), for long-lived session tests.
pub fn echo_server() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A plain TCP server that reads the first bytes of each connection, records them, answers
/// `tag` and closes: it plays a TLS backend that the proxy passes the ClientHello to.
pub fn tag_server(tag: &'static str) -> (u16, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            let rec = rec.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = vec![0u8; 16384];
                let n = s.read(&mut buf).unwrap_or(0);
                // lbha's start-up probe connects and sends nothing: not a session worth recording.
                if n > 0 {
                    rec.lock().unwrap().push(buf[..n].to_vec());
                }
                let _ = s.write_all(tag.as_bytes());
            });
        }
    });
    (port, seen)
}

/// `GET / HTTP/1.0` over TLS with `cfg` (for `localhost`): the whole answer, or the handshake's
/// or the connection's error. A close without close_notify after an answer is fine here.
pub fn https_get_raw(cfg: Arc<rustls::ClientConfig>, port: u16) -> Result<String, String> {
    https_get_kind(cfg, port).map(|(text, _)| text)
}

/// [`https_get_raw`], and whether the handshake was full or resumed.
pub fn https_get_kind(cfg: Arc<rustls::ClientConfig>, port: u16) -> Result<(String, rustls::HandshakeKind), String> {
    let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let tcp = connect(port);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let kind = s.conn.handshake_kind().ok_or("the handshake did not complete")?;
    Ok((String::from_utf8_lossy(&out).to_string(), kind))
}

/// Sends a real rustls ClientHello for `sni` and returns what comes back before the close
/// (a backend's tag, or nothing when the proxy refused the connection); `Err` when the hello
/// could not even be written.
pub fn tls_hello(port: u16, sni: &str) -> std::io::Result<String> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    while conn.wants_write() {
        conn.write_tls(&mut s)?;
    }
    Ok(read_to_close(&mut s))
}

/// Everything the peer sends until it closes (or the read times out), as text.
pub fn read_to_close(s: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The real HAProxy's binary (Debian's `haproxy`), when installed: tests comparing with it say
/// "skipped" without it.
pub fn haproxy_bin() -> Option<&'static str> {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The real HAProxy (Debian's `haproxy`) on `cfg`, once it listens on `port`; killed on drop.
pub fn haproxy(cfg: &str, port: u16) -> (Reaped, TempDir) {
    let dir = TempDir::new("haproxy");
    let path = dir.write("haproxy.cfg", cfg);
    let child = std::process::Command::new(haproxy_bin().unwrap_or("haproxy"))
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaped::new(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Seen in /proc, as `Lbha::wait_port`: a probe connection would count and log on one side.
    while !listening(port) {
        assert!(child.try_wait().unwrap().is_none(), "haproxy exited; config:\n{cfg}");
        assert!(Instant::now() < deadline, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, dir)
}

/// A `show table` answer with what differs between processes taken out: entry addresses
/// (`0x...:` becomes `0x:`) and remaining lifetimes (a non-zero `exp=N` becomes `exp=~`; exp=0,
/// no expiry, stays).
pub fn normalize_table(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = match l.split_once(": key=") {
                Some((a, rest)) if a.starts_with("0x") => format!("0x: key={rest}"),
                _ => l.to_string(),
            };
            l.split(' ')
                .map(|w| if w.starts_with("exp=") && w != "exp=0" { "exp=~" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (at most 20 s) until HAProxy's and lbha's `show table T` agree for every table, after
/// `normalize_table`: counters settle when each side notices a connection's end.
#[allow(dead_code)]
pub fn wait_tables_agree(tables: &[&str], haproxy: impl Fn(&str) -> String, lbha: impl Fn(&str) -> String, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut diffs = Vec::new();
        for t in tables {
            let h = normalize_table(&haproxy(&format!("show table {t}")));
            let l = normalize_table(&lbha(&format!("show table {t}")));
            if h != l {
                diffs.push(format!("--- haproxy\n{h}\n--- lbha\n{l}"));
            }
        }
        if diffs.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} differ:\n{}", diffs.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One command on a stats/control socket, one connection per command as `socat` does; the
/// answer up to the close.
pub fn ask_socket(sock: &std::path::Path, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A syslog listener on loopback (UDP): the datagrams lbha or HAProxy sends it, kept in arrival
/// order. Each wait is bounded (15 s).
pub struct Syslog {
    sock: std::net::UdpSocket,
    /// Every datagram received so far.
    seen: std::sync::Mutex<Vec<String>>,
    /// How many of them [`Syslog::until`] has handed out.
    taken: std::sync::Mutex<usize>,
}

impl Syslog {
    pub fn new() -> Syslog {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        Syslog { sock, seen: Default::default(), taken: Default::default() }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Receives one datagram if one comes within the read timeout.
    fn recv_one(&self) -> bool {
        let mut buf = [0u8; 8192];
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                self.seen.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
                true
            }
            Err(_) => false,
        }
    }

    /// The datagram after those handed out by this and [`Syslog::until`], if one is there or
    /// comes within the read timeout (100 ms).
    pub fn next(&self) -> Option<String> {
        for _ in 0..2 {
            {
                let seen = self.seen.lock().unwrap();
                let mut taken = self.taken.lock().unwrap();
                if let Some(l) = seen.get(*taken) {
                    *taken += 1;
                    return Some(l.clone());
                }
            }
            if !self.recv_one() {
                return None;
            }
        }
        None
    }

    /// Every datagram received so far, after those waiting on the socket.
    pub fn drain(&self) -> Vec<String> {
        while self.recv_one() {}
        self.lines()
    }

    /// Every datagram received so far.
    pub fn lines(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The datagrams after those the previous call handed out, up to the first that contains
    /// `needle` (included).
    pub fn until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let mut taken = self.taken.lock().unwrap();
                if let Some(i) = seen[*taken..].iter().position(|l| l.contains(needle)) {
                    let out = seen[*taken..*taken + i + 1].to_vec();
                    *taken += i + 1;
                    return out;
                }
                assert!(Instant::now() < deadline, "no log line with {needle:?}; got {:#?}", &seen[*taken..]);
            }
            self.recv_one();
        }
    }

    /// The first datagram received, now or before, that contains `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if let Some(l) = seen.iter().find(|l| l.contains(needle)) {
                    return l.clone();
                }
                assert!(Instant::now() < deadline, "no log line with {needle:?}; got {seen:#?}");
            }
            self.recv_one();
        }
    }
}

/// A syslog datagram's message: what follows the header's `TAG[PID]: `, without the line end.
pub fn syslog_message(line: &str) -> String {
    line.split_once("]: ").map_or(line, |x| x.1).trim_end().to_string()
}
