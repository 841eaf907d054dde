//! The pair keeps its stick tables across a failover (issue 16, item 5). Two load balancers
//! replicate three tables through peers: `stick on src` persistence, sessions learned from the
//! servers' `SID` cookie, and a `track-sc0 src` request-rate limit. 100 clients, each with its own
//! address, are pinned to a server; one more client is being rate-limited. Then every process on
//! the master dies (kill -9) and the clients come back through the backup: each must reach the
//! same server both ways, and the limited client must still be limited. The same run under a
//! keepalived 2.2.7 + HAProxy 2.6 pair (same tables, same peers section) is printed next to it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::bed::{self, Bed, Node, VIP, ms, only_on, wait_for};

const CLIENTS: u8 = 100;
/// Requests a client may send in 60 s before the limit answers 429.
const LIMIT: u32 = 20;
const ABUSER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 60);
const HAPROXY: &str = "/usr/sbin/haproxy";
const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// Client `i`'s own address (192.0.2.150 to .249).
fn client_addr(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 150 + i)
}

/// An HTTP server on `node`:80 in a thread of this process: answers its name, and gives a
/// request without a `SID` cookie a new session (`Set-Cookie: SID=<name>-<n>`), as an application
/// server does. Stopped on drop.
struct App {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl App {
    fn start(node: &Node, name: &'static str) -> App {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, ns, ip) = (stop.clone(), node.ns.clone(), node.ip.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let bound = bed::enter_ns(&ns)
                .and_then(|()| TcpListener::bind(format!("{ip}:80")).map_err(|e| format!("bind {ip}:80: {e}")));
            let listener = match bound {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = listener.set_nonblocking(true);
            let _ = tx.send(Ok(()));
            let sessions = Arc::new(AtomicUsize::new(0));
            let t0 = Instant::now();
            // Bounded: five minutes or the stop flag.
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(300) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let sessions = sessions.clone();
                        std::thread::spawn(move || serve(s, name, &sessions));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => App { stop, handle: Some(handle) },
            Ok(Err(e)) => panic!("app server {name}: {e}"),
            Err(e) => panic!("app server {name} did not start: {e}"),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One request on a fresh connection (health checks connect and close without one).
fn serve(mut s: TcpStream, name: &str, sessions: &AtomicUsize) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let has_session = text.lines().any(|l| l.starts_with("cookie:") && l.contains("sid="));
    let cookie = if has_session {
        String::new()
    } else {
        format!("Set-Cookie: SID={name}-{}; Path=/\r\n", sessions.fetch_add(1, Ordering::Relaxed))
    };
    let body = format!("{name}\n");
    let _ = s.write_all(
        format!(
            "HTTP/1.1 200 OK\r\n{cookie}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// What a client saw: the status, the body's last line and a new `SID` cookie.
#[derive(Debug, Clone, Default)]
struct Answer {
    status: u16,
    body: String,
    sid: Option<String>,
}

/// One GET to the VIP from `src` (run in the client's namespace).
fn get(src: Ipv4Addr, port: u16, sid: Option<&str>) -> Option<Answer> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    sock.bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into()).ok()?;
    let vip: Ipv4Addr = VIP.parse().ok()?;
    let to = SocketAddr::V4(SocketAddrV4::new(vip, port));
    sock.connect_timeout(&to.into(), Duration::from_secs(1)).ok()?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let cookie = sid.map(|v| format!("Cookie: SID={v}\r\n")).unwrap_or_default();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: vip\r\n{cookie}Connection: close\r\n\r\n").as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let sid = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let v = v.trim().strip_prefix("SID=")?;
        n.eq_ignore_ascii_case("set-cookie").then(|| v.split(';').next().unwrap_or("").to_string())
    });
    Some(Answer { status, body: body.trim_end().lines().last().unwrap_or("").to_string(), sid })
}

/// Runs `f` in a thread moved into `node`'s namespace.
fn in_ns<T: Send + 'static>(node: &Node, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = node.ns.clone();
    let r = std::thread::spawn(move || {
        bed::enter_ns(&ns)?;
        Ok::<T, String>(f())
    })
    .join();
    match r {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("client thread panicked"),
    }
}

/// What each client reached before the failover: its server on :80 (stick on src), its session
/// cookie and server on :81 (learned from the cookie).
#[derive(Debug, Clone, Default)]
struct Pinned {
    by_src: String,
    sid: String,
    by_cookie: String,
}

fn pin_clients() -> Result<Vec<Pinned>, String> {
    let mut out = Vec::new();
    for i in 0..CLIENTS {
        let src = client_addr(i);
        let a = get(src, 80, None).ok_or(format!("{src}: no answer on :80"))?;
        let again = get(src, 80, None).ok_or(format!("{src}: no second answer on :80"))?;
        if a.status != 200 || again.body != a.body {
            return Err(format!("{src} not pinned by src on the master: {a:?} then {again:?}"));
        }
        let s = get(src, 81, None).ok_or(format!("{src}: no answer on :81"))?;
        let sid = s.sid.clone().ok_or(format!("{src}: no session cookie: {s:?}"))?;
        let again = get(src, 81, Some(&sid)).ok_or(format!("{src}: no second answer on :81"))?;
        if again.body != s.body {
            return Err(format!("{src} session {sid} not kept on the master: {s:?} then {again:?}"));
        }
        out.push(Pinned { by_src: a.body, sid, by_cookie: s.body });
    }
    Ok(out)
}

/// Statuses of `n` requests from the abuser.
fn hammer(n: u32) -> Vec<u16> {
    (0..n).map(|_| get(ABUSER, 80, None).map_or(0, |a| a.status)).collect()
}

/// One control-socket command (lbha's and HAProxy's speak the same).
fn ask(sock: &Path, cmd: &str) -> String {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("{cmd}\n").as_bytes()).is_err() {
        return String::new();
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn entries(show: &str) -> usize {
    show.lines().filter(|l| l.contains(" key=")).count()
}

/// The abuser's `http_req_rate` in a `show table web` answer.
fn abuser_rate(show: &str) -> Option<u32> {
    let line = show.lines().find(|l| l.contains(&format!(" key={ABUSER} ")))?;
    let v = line.split_once("http_req_rate(60000)=")?.1;
    v.split_whitespace().next()?.parse().ok()
}

/// Whether the backup's tables hold everything the clients made on the master.
fn replicated(sock: &Path) -> bool {
    entries(&ask(sock, "show table pin")) >= usize::from(CLIENTS)
        && entries(&ask(sock, "show table sess")) >= usize::from(CLIENTS)
        && abuser_rate(&ask(sock, "show table web")).is_some_and(|r| r > LIMIT)
}

#[derive(Debug, Default)]
struct Outcome {
    /// Time from the last client request until the backup held every entry (None: never, 15 s).
    replicated: Option<Duration>,
    spread: (usize, usize),
    abuser_before: Vec<u16>,
    failover: Option<Duration>,
    same_by_src: usize,
    same_by_cookie: usize,
    abuser_after: u16,
    /// The abuser's `http_req_rate` on the backup once it took over.
    backup_rate: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stack {
    Lbha,
    Haproxy,
}

const HAPROXY_TABLES: &str = "peers mesh
    peer lb1 192.0.2.11:10000
    peer lb2 192.0.2.12:10000
frontend web
    bind :80
    stick-table type ip size 10k expire 5m store http_req_rate(60s) peers mesh
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 20 }
    default_backend pin
backend pin
    balance roundrobin
    stick-table type ip size 10k expire 30m peers mesh
    stick on src
    server be1 192.0.2.21:80 check inter 200ms
    server be2 192.0.2.22:80 check inter 200ms
frontend app
    bind :81
    default_backend sess
backend sess
    balance roundrobin
    stick-table type string len 64 size 10k expire 30m peers mesh
    stick store-response res.cook(SID)
    stick match req.cook(SID)
    server be1 192.0.2.21:80 check inter 200ms
    server be2 192.0.2.22:80 check inter 200ms
";

/// The same tables, rules and peers as [`HAPROXY_TABLES`] in lbha's keys, plus the VRRP instance.
fn lbha_config(me: &str, priority: u8) -> String {
    let servers = r#"servers = [
  { name = "be1", addr = "192.0.2.21:80", check = true, inter = "200ms" },
  { name = "be2", addr = "192.0.2.22:80", check = true, inter = "200ms" },
]"#;
    format!(
        r#"[global]
localpeer = "{me}"

[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[peers]]
name = "mesh"
peer = ["lb1 192.0.2.11:10000", "lb2 192.0.2.12:10000"]

[[frontend]]
name = "web"
bind = ["*:80"]
default_backend = "pin"
stick_table = {{ type = "ip", size = "10k", expire = "5m", store = ["http_req_rate(60s)"], peers = "mesh" }}
http_request = [
  {{ track_sc0 = "src" }},
  {{ deny = {{ status = 429 }}, if = "{{ sc_http_req_rate(0) gt {LIMIT} }}" }},
]

[[backend]]
name = "pin"
balance = "roundrobin"
{servers}
stick_table = {{ type = "ip", size = "10k", expire = "30m", peers = "mesh" }}
stick = [{{ on = "src" }}]

[[frontend]]
name = "app"
bind = ["*:81"]
default_backend = "sess"

[[backend]]
name = "sess"
balance = "roundrobin"
{servers}
stick_table = {{ type = "string", len = 64, size = "10k", expire = "30m", peers = "mesh" }}
stick = [{{ store_response = "res.cook(SID)" }}, {{ match = "req.cook(SID)" }}]

{}"#,
        bed::v3_instance("VI_1", "eth0", 51, priority, &format!("\"{VIP}/32\""))
    )
}

/// Starts one load balancer; returns its control socket.
fn start_lb(bed: &mut Bed, node: &Node, me: &str, stack: Stack, priority: u8) -> PathBuf {
    let d = bed.dir.clone();
    match stack {
        Stack::Lbha => {
            bed.lbha(node, me, &lbha_config(me, priority));
            d.join(format!("{me}.sock"))
        }
        Stack::Haproxy => {
            let sock = d.join(format!("{me}-haproxy.sock"));
            let cfg = format!(
                "global\n    stats socket {} level admin\ndefaults\n    mode http\n    timeout connect 1s\n    \
                 timeout client 5s\n    timeout server 5s\n{HAPROXY_TABLES}",
                sock.display()
            );
            let hc = d.join(format!("{me}-haproxy.cfg"));
            std::fs::write(&hc, cfg).expect("haproxy cfg");
            let hc = hc.display().to_string();
            bed.spawn(node, &format!("{me}-haproxy.log"), &[HAPROXY, "-db", "-L", me, "-f", &hc]);
            let ka = format!(
                "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
                 priority {priority}\n    advert_int 0.1\n    version 3\n    \
                 virtual_ipaddress {{\n        {VIP}/32\n    }}\n}}\n"
            );
            let kc = d.join(format!("{me}.conf"));
            std::fs::write(&kc, ka).expect("keepalived cfg");
            let (kc, dd) = (kc.display().to_string(), d.display().to_string());
            let (p, r, c) = (format!("{dd}/{me}.pid"), format!("{dd}/{me}_v.pid"), format!("{dd}/{me}_c.pid"));
            bed.spawn(
                node,
                &format!("{me}.log"),
                &[KEEPALIVED, "-n", "-l", "-D", "-P", "-R", "-f", &kc, "-p", &p, "-r", &r, "-c", &c],
            );
            sock
        }
    }
}

/// One run of the scenario under `stack`; Err says which step failed.
fn scenario(stack: Stack) -> Result<Outcome, String> {
    let tag = if stack == Stack::Lbha { "peersfo-lbha" } else { "peersfo-hap" };
    let mut bed = Bed::new(tag, &[("lb1", 11), ("lb2", 12), ("be1", 21), ("be2", 22), ("client", 50)]);
    let (lb1, lb2, client) = (bed.node("lb1"), bed.node("lb2"), bed.node("client"));
    let _apps = (App::start(&bed.node("be1"), "be1"), App::start(&bed.node("be2"), "be2"));
    for i in 0..CLIENTS {
        client.ip(&["addr", "add", &format!("{}/32", client_addr(i)), "dev", "eth0"])?;
    }
    client.ip(&["addr", "add", &format!("{ABUSER}/32"), "dev", "eth0"])?;
    start_lb(&mut bed, &lb1, "lb1", stack, 150);
    let backup = start_lb(&mut bed, &lb2, "lb2", stack, 100);
    wait_for(Duration::from_secs(15), || only_on(&lb1, &lb2)).ok_or("lb1 never became the only master")?;
    // Both servers up on the master before the clients come: answers from both.
    wait_for(Duration::from_secs(15), || {
        let seen: Vec<String> =
            in_ns(&client, || (0..4).filter_map(|_| get(client_addr(0), 81, None)).map(|a| a.body).collect());
        seen.iter().any(|b| b == "be1") && seen.iter().any(|b| b == "be2")
    })
    .ok_or("the master never answered from both servers")?;

    let pinned = in_ns(&client, pin_clients)?;
    let abuser_before = in_ns(&client, || hammer(LIMIT + 5));
    let t_last = Instant::now();
    let replicated = wait_for(Duration::from_secs(15), || replicated(&backup)).map(|_| t_last.elapsed());
    let spread =
        (pinned.iter().filter(|p| p.by_src == "be1").count(), pinned.iter().filter(|p| p.by_src == "be2").count());

    let t_kill = Instant::now();
    bed::kill_node(&lb1);
    wait_for(Duration::from_secs(15), || lb2.has_addr(VIP)).ok_or("lb2 never took the VIP")?;
    // Back in service through the backup (probed from the client's own address).
    let failover = wait_for(Duration::from_secs(15), || {
        in_ns(&client, || get(Ipv4Addr::new(192, 0, 2, 50), 80, None).is_some_and(|a| a.status == 200))
    })
    .map(|_| t_kill.elapsed());
    let backup_rate = abuser_rate(&ask(&backup, "show table web"));
    let after = pinned.clone();
    let (same_by_src, same_by_cookie, abuser_after) = in_ns(&client, move || {
        let mut same = (0, 0);
        for (i, p) in after.iter().enumerate() {
            let src = client_addr(i as u8);
            if get(src, 80, None).is_some_and(|a| a.status == 200 && a.body == p.by_src) {
                same.0 += 1;
            }
            if get(src, 81, Some(&p.sid)).is_some_and(|a| a.status == 200 && a.body == p.by_cookie) {
                same.1 += 1;
            }
        }
        (same.0, same.1, get(ABUSER, 80, None).map_or(0, |a| a.status))
    });
    Ok(Outcome { replicated, spread, abuser_before, failover, same_by_src, same_by_cookie, abuser_after, backup_rate })
}

/// How one row of the printed table reads an outcome.
type Figure<'a> = &'a dyn Fn(&Outcome) -> String;

/// A table cell: the figure, or why the run failed.
fn cell(o: &Result<Outcome, String>, f: Figure<'_>) -> String {
    match o {
        Ok(o) => f(o),
        Err(e) => format!("failed: {e}"),
    }
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn peers_keep_persistence_and_limits_across_failover() {
    if !bed::root_or_skip("peers_keep_persistence_and_limits_across_failover") {
        return;
    }
    let lbha = scenario(Stack::Lbha);
    let hap = if Path::new(HAPROXY).exists() && Path::new(KEEPALIVED).exists() {
        scenario(Stack::Haproxy)
    } else {
        Err(format!("skipped: needs {HAPROXY} and {KEEPALIVED}"))
    };
    let n = CLIENTS;
    let lines: [(&str, Figure<'_>); 7] = [
        ("clients pinned (be1/be2)", &|o| format!("{}/{}", o.spread.0, o.spread.1)),
        ("abuser on the master (statuses)", &|o| {
            let ok = o.abuser_before.iter().filter(|&&s| s == 200).count();
            let lim = o.abuser_before.iter().filter(|&&s| s == 429).count();
            format!("{ok} x 200, {lim} x 429")
        }),
        ("backup holds every entry after", &|o| o.replicated.map_or("never (15 s)".into(), ms)),
        ("served by the backup after kill -9", &|o| o.failover.map_or("never (15 s)".into(), ms)),
        ("same server by src", &|o| format!("{}/{n}", o.same_by_src)),
        ("same server by learned cookie", &|o| format!("{}/{n}", o.same_by_cookie)),
        ("abuser on the backup (its http_req_rate there)", &|o| {
            format!("{} ({})", o.abuser_after, o.backup_rate.map_or("none".into(), |r| r.to_string()))
        }),
    ];
    println!("| peers failover, {n} clients | lbha pair | keepalived 2.2.7 + HAProxy 2.6 pair |");
    println!("|---|---|---|");
    for (name, f) in lines {
        println!("| {name} | {} | {} |", cell(&lbha, f), cell(&hap, f));
    }
    let o = match lbha {
        Ok(o) => o,
        Err(e) => panic!("lbha pair: {e}"),
    };
    assert!(o.spread.0 > 0 && o.spread.1 > 0, "the clients were spread over both servers: {:?}", o.spread);
    assert!(o.abuser_before.contains(&429), "the abuser was limited on the master: {:?}", o.abuser_before);
    assert!(o.replicated.is_some(), "the backup received every entry through peers");
    assert_eq!(o.same_by_src, usize::from(n), "every client reaches its server by src through the backup");
    assert_eq!(o.same_by_cookie, usize::from(n), "every session reaches its server through the backup");
    assert_eq!(o.abuser_after, 429, "the abuser is still limited on the backup");
}
