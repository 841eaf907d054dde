//! Differential test of the hashing balancers: the same haproxy.cfg runs under HAProxy 2.6 and
//! under lbha (`run --haproxy-config`), many keys go through both, and each key must reach the
//! same server on both sides, for every `balance` that hashes (`source`, `uri` with its options
//! and absolute-form targets, `url_param` with POST bodies, `hdr` with `use_domain_only`, `hash`,
//! `rdp-cookie`) with both `hash-type` methods, the four hash functions and the
//! `avalanche` modifier, over weighted servers with one explicit `id`.

mod common;

use common::{Lbha, free_port, haproxy, haproxy_bin};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Keys sent through each section.
const KEYS: usize = 32;

/// A server that answers every connection with its name (as an HTTP response, which also does
/// for mode tcp) and closes; stopped when dropped.
struct TagServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TagServer {
    fn start(name: &'static str) -> TagServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                // The request (or the RDP connection request): one read is enough to answer.
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}", name.len())
                        .as_bytes(),
                );
            }
        });
        TagServer { port, stop, thread: Some(thread) }
    }
}

impl Drop for TagServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const HASH_TYPES: [&str; 8] = [
    "map-based",
    "map-based djb2",
    "map-based wt6",
    "map-based crc32 avalanche",
    "consistent",
    "consistent djb2",
    "consistent wt6 avalanche",
    "consistent crc32",
];

/// `(balance, mode)`.
const ALGOS: [(&str, &str); 14] = [
    ("source", "http"),
    ("uri", "http"),
    ("uri whole", "http"),
    ("uri len 12 depth 2", "http"),
    ("uri depth 1", "http"),
    ("uri path-only", "http"),
    ("uri path-only whole depth 2", "http"),
    ("url_param id", "http"),
    ("url_param id check_post", "http"),
    ("hdr(x-key)", "http"),
    ("hdr(host) use_domain_only", "http"),
    ("hash path", "http"),
    ("hash src", "http"),
    ("rdp-cookie", "tcp"),
];

/// One `listen` section per (algorithm, hash type), alternating two weight sets (the second
/// with a common divisor, which map-based hashing divides out).
fn config(ports: &[u16], servers: &[u16]) -> String {
    let mut cfg = String::from(
        "global\n  maxconn 2000\ndefaults\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n",
    );
    for (n, ((algo, mode), ht)) in ALGOS.iter().flat_map(|a| HASH_TYPES.iter().map(move |h| (a, h))).enumerate() {
        let weights: [u32; 4] = if n % 2 == 0 { [1, 3, 2, 5] } else { [10, 20, 30, 20] };
        cfg +=
            &format!("listen l{n}\n  mode {mode}\n  bind 127.0.0.1:{}\n  balance {algo}\n  hash-type {ht}\n", ports[n]);
        if *mode == "tcp" {
            cfg += "  tcp-request inspect-delay 5s\n  tcp-request content accept if RDP_COOKIE\n";
        }
        for (i, (port, w)) in servers.iter().zip(weights).enumerate() {
            // The second server's id is set, the others numbered around it as HAProxy does.
            let id = if i == 1 { " id 9" } else { "" };
            cfg += &format!("  server s{} 127.0.0.1:{port} weight {w}{id}\n", i + 1);
        }
    }
    cfg
}

/// What key `k` sends for `algo`: the bytes, and the local address to send them from.
fn request(algo: &str, k: usize) -> (Vec<u8>, Ipv4Addr) {
    let from = Ipv4Addr::new(127, 1 + (k / 200) as u8, (k * 37 % 250) as u8, 1 + (k % 250) as u8);
    // Keys differ from their first bytes: unmixed djb2 or sdbm of keys that differ only at the
    // end stay close together, and the consistent tree would give them all one server.
    let id = format!("{:08x}", (k as u32).wrapping_mul(2_654_435_761));
    let get = |target: &str, extra: &str| {
        // HAProxy refuses a Host that differs from an absolute target's authority.
        let host = target.strip_prefix("http://").and_then(|t| t.split('/').next()).unwrap_or("test");
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let bytes = match algo {
        "rdp-cookie" => {
            let mut b = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
            b.extend_from_slice(format!("Cookie: mstshash={id}\r\n").as_bytes());
            b.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
            b
        }
        a if a.starts_with("url_param") && k == 0 => get("/p?id=&x=1", ""),
        // A POST without the parameter in its query: HAProxy 2.6 looks in the body, with or
        // without `check_post`.
        a if a.starts_with("url_param") && k % 2 == 1 => {
            let body = if k % 4 == 1 { format!("a=1&id={id}&id=x") } else { format!("id={id}") };
            format!(
                "POST /p?x=1 HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        a if a.starts_with("url_param") => get(&format!("/p?x{k}=1&id={id}&id=other"), ""),
        "hdr(x-key)" => get("/", &format!("X-Key: {id}, other\r\n")),
        "hdr(host) use_domain_only" => {
            format!("GET / HTTP/1.1\r\nHost: www{}.{id}.example:8080\r\nConnection: close\r\n\r\n", k % 3).into_bytes()
        }
        // Absolute-form targets too: HAProxy hashes them whole (default port dropped) unless
        // `path-only`.
        a if a.starts_with("uri") && k % 4 == 1 => {
            get(&format!("http://h{}.example/{id}/e{}/f{k}?q={}", k % 5, k % 3, k * 11), "")
        }
        a if a.starts_with("uri") && k % 4 == 3 => {
            get(&format!("http://test:80/{id}/e{}/f{k}?q={}", k % 3, k * 11), "")
        }
        _ => get(&format!("/{id}/e{}/f{k}?q={}", k % 3, k * 11), ""),
    };
    (bytes, from)
}

/// The name of the server that answered `bytes` sent to `port` from `from`.
fn send(port: u16, bytes: &[u8], from: Ipv4Addr) -> String {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.rsplit("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn hashing_balancers_pick_the_server_haproxy_picks() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let servers = [TagServer::start("s1"), TagServer::start("s2"), TagServer::start("s3"), TagServer::start("s4")];
    let sections = ALGOS.len() * HASH_TYPES.len();
    let theirs: Vec<u16> = (0..sections).map(|_| free_port()).collect();
    let ours: Vec<u16> = (0..sections).map(|_| free_port()).collect();
    let server_ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let (_h, _hdir) = haproxy(&config(&theirs, &server_ports), theirs[sections - 1]);
    let _l = Lbha::start_haproxy(&config(&ours, &server_ports), &ours);

    let mut differ = Vec::new();
    for (n, ((algo, _), ht)) in ALGOS.iter().flat_map(|a| HASH_TYPES.iter().map(move |h| (a, h))).enumerate() {
        let mut reached = std::collections::HashSet::new();
        for k in 0..KEYS {
            let (bytes, from) = request(algo, k);
            let want = send(theirs[n], &bytes, from);
            let got = send(ours[n], &bytes, from);
            assert!(want.starts_with('s'), "balance {algo}, hash-type {ht}, key {k}: HAProxy answered {want:?}");
            if got != want {
                differ.push(format!("balance {algo}, hash-type {ht}, key {k}: HAProxy {want}, lbha {got}"));
            }
            reached.insert(want);
        }
        // The keys must spread, or agreeing would prove little; except for source addresses
        // (raw or as `hash src`) unmixed on the consistent tree: all of 127/8 lies in one
        // stretch of it.
        let unmixed =
            matches!(*algo, "source" | "hash src") && ht.starts_with("consistent ") && !ht.ends_with("avalanche");
        assert!(unmixed || reached.len() > 1, "balance {algo}, hash-type {ht}: every key reached {reached:?}");
    }
    assert!(differ.is_empty(), "{} of {} keys differ:\n{}", differ.len(), sections * KEYS, differ.join("\n"));
}
