//! Peers on the real binary: lbha and HAProxy 2.6 replicate a stick table both ways on
//! loopback (an entry set on either side shows on the other with the same data; a node started
//! after its peer fills its table by a full resync), lbha with lbha likewise, and bad peer input
//! gets the protocol's answer without harming the daemon.

mod common;

use common::{Lbha, TempDir, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STORE: &str = "gpc0,http_req_cnt,conn_cnt,server_id,gpt0";

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}

fn ask(sock: &Path, cmd: &str) -> String {
    let Ok(mut s) = UnixStream::connect(sock) else { return String::new() };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The data of `key`'s entry in a `show table` answer: what follows `exp=N`, so process-local
/// fields (address, use count, remaining lifetime) do not count.
fn data_of(show: &str, key: &str) -> Option<String> {
    let line = show.lines().find(|l| l.contains(&format!(" key={key} ")))?;
    let rest = line.split_once(" exp=")?.1;
    Some(rest.split_once(' ').map_or("", |x| x.1).to_string())
}

/// Polls `show table TABLE` on `sock` until `key` has data `want` (or any data when None).
fn wait_entry(sock: &Path, table: &str, key: &str, want: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = ask(sock, &format!("show table {table}"));
        match (data_of(&last, key), want) {
            (Some(d), Some(w)) if d == w => return d,
            (Some(d), None) => return d,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{key} with {want:?} never appeared in {table} at {}:\n{last}", sock.display());
}

fn start_haproxy(dir: &TempDir, sock: &Path, hport: u16, lport: u16) -> Haproxy {
    let cfg = format!(
        "global\n    stats socket {} level admin\ndefaults\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         peers mesh\n    peer hap 127.0.0.1:{hport}\n    peer lb 127.0.0.1:{lport}\n\
         backend st\n    stick-table type ip size 1k expire 5m peers mesh store {STORE}\n",
        sock.display()
    );
    let path = dir.write("hap.cfg", &cfg);
    let _ = std::fs::remove_file(sock);
    let child = Command::new("haproxy")
        .args(["-db", "-L", "hap", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(sock).is_err() {
        assert!(Instant::now() < deadline, "haproxy's stats socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

fn lbha_config(me: &str, peers: &[(&str, u16)]) -> String {
    let list: Vec<String> = peers.iter().map(|(n, p)| format!("\"{n} 127.0.0.1:{p}\"")).collect();
    let store: Vec<String> = STORE.split(',').map(|s| format!("\"{s}\"")).collect();
    format!(
        "[global]\nlocalpeer = \"{me}\"\n[[peers]]\nname = \"mesh\"\npeer = [{}]\n\
         [[backend]]\nname = \"st\"\nstick_table = {{ type = \"ip\", size = \"1k\", expire = \"5m\", peers = \"mesh\", store = [{}] }}\n",
        list.join(", "),
        store.join(", ")
    )
}

#[test]
fn lbha_and_haproxy_replicate_both_ways_and_resync() {
    if !have("haproxy") {
        println!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("peers-hap");
    let hsock: PathBuf = dir.0.join("hap.sock");
    let (hport, lport) = (free_port(), free_port());
    let hap = start_haproxy(&dir, &hsock, hport, lport);
    // An entry HAProxy has before lbha starts reaches lbha by the full resync.
    ask(&hsock, "set table st key 10.0.0.1 data.gpc0 4 data.http_req_cnt 12 data.gpt0 3");
    let lb = Lbha::start(&lbha_config("lb", &[("hap", hport), ("lb", lport)]), &[lport]);
    let want = data_of(&ask(&hsock, "show table st"), "10.0.0.1").unwrap();
    assert_eq!(wait_entry(&lb.sock, "st", "10.0.0.1", Some(&want)), want);

    // lbha -> HAProxy, live.
    let r = lb.ctl(&["set table st key 10.0.0.2 data.gpc0 7 data.http_req_cnt 3 data.conn_cnt 2 data.server_id 5"]);
    assert!(!r.contains("rror"), "{r}");
    let mine = data_of(&lb.ctl(&["show table st"]), "10.0.0.2").unwrap();
    assert_eq!(wait_entry(&hsock, "st", "10.0.0.2", Some(&mine)), mine);

    // HAProxy -> lbha, live; a change of an existing entry too.
    ask(&hsock, "set table st key 10.0.0.3 data.gpc0 9 data.gpt0 1");
    ask(&hsock, "set table st key 10.0.0.1 data.gpc0 5");
    let show = ask(&hsock, "show table st");
    for key in ["10.0.0.3", "10.0.0.1"] {
        let theirs = data_of(&show, key).unwrap();
        assert_eq!(wait_entry(&lb.sock, "st", key, Some(&theirs)), theirs);
    }

    // A restarted HAProxy starts empty and learns everything from lbha.
    drop(hap);
    let _hap = start_haproxy(&dir, &hsock, hport, lport);
    let show = lb.ctl(&["show table st"]);
    for key in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let ours = data_of(&show, key).unwrap();
        assert_eq!(wait_entry(&hsock, "st", key, Some(&ours)), ours);
    }
    // Both fills went through the resync exchange, not live pushes.
    let log = lb.log_text();
    assert!(log.contains("resync from hap") && log.contains("entries to hap"), "{log}");
}

#[test]
fn two_lbha_nodes_replicate_and_a_restarted_node_refills() {
    let (pa, pb) = (free_port(), free_port());
    let peers = [("a", pa), ("b", pb)];
    let a = Lbha::start(&lbha_config("a", &peers), &[pa]);
    a.ctl(&["set table st key 192.0.2.1 data.gpc0 1 data.gpt0 8"]);
    let b = Lbha::start(&lbha_config("b", &peers), &[pb]);
    let first = data_of(&a.ctl(&["show table st"]), "192.0.2.1").unwrap();
    assert_eq!(wait_entry(&b.sock, "st", "192.0.2.1", Some(&first)), first);

    b.ctl(&["set table st key 192.0.2.2 data.gpc0 2 data.http_req_cnt 40"]);
    let d = data_of(&b.ctl(&["show table st"]), "192.0.2.2").unwrap();
    assert_eq!(wait_entry(&a.sock, "st", "192.0.2.2", Some(&d)), d);
    a.ctl(&["set table st key 192.0.2.2 data.gpc0 3"]);
    let d = data_of(&a.ctl(&["show table st"]), "192.0.2.2").unwrap();
    assert_eq!(wait_entry(&b.sock, "st", "192.0.2.2", Some(&d)), d);

    // A reload with the same table keeps its entries and its replication.
    let r = a.ctl(&["reload"]);
    assert!(r.contains("Success=1"), "{r}");
    assert!(a.ctl(&["show table st"]).contains("key=192.0.2.2"));
    a.ctl(&["set table st key 192.0.2.3 data.gpc0 4"]);
    let d = data_of(&a.ctl(&["show table st"]), "192.0.2.3").unwrap();
    assert_eq!(wait_entry(&b.sock, "st", "192.0.2.3", Some(&d)), d);

    // B restarts empty and refills from A.
    drop(b);
    let b = Lbha::start(&lbha_config("b", &peers), &[pb]);
    let show = a.ctl(&["show table st"]);
    for key in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let d = data_of(&show, key).unwrap();
        assert_eq!(wait_entry(&b.sock, "st", key, Some(&d)), d);
    }
}

/// Reads until the peer closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn bad_peer_input_gets_the_protocols_answer_and_harms_nothing() {
    let (pa, pb) = (free_port(), free_port());
    let a = Lbha::start(&lbha_config("a", &[("a", pa), ("b", pb)]), &[pa]);
    a.ctl(&["set table st key 192.0.2.9 data.gpc0 6"]);
    let before = a.ctl(&["show table st"]);
    let talk = |bytes: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", pa)).unwrap();
        s.write_all(bytes).unwrap();
        read_all(&mut s)
    };
    assert_eq!(talk(b"HAProxyS 3.0\na\nb 1 1\n"), b"502\n", "unknown version");
    assert_eq!(talk(b"HAProxyS 2.1\nnot-me\nb 1 1\n"), b"503\n", "wrong local name");
    assert_eq!(talk(b"HAProxyS 2.1\na\nstranger 1 1\n"), b"504\n", "unknown peer");
    assert_eq!(talk(b"GET / HTTP/1.1\r\n\r\n"), b"501\n", "not the protocol");
    // A good hello, then an update whose length runs past the size limit: error, then close.
    let mut bad = b"HAProxyS 2.1\na\nb 1 1\n".to_vec();
    bad.extend_from_slice(&[0x0a, 0x80, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let got = talk(&bad);
    assert!(got.starts_with(b"200\n"), "{got:?}");
    assert!(got[4..].windows(2).any(|w| w[0] == 0x01), "no error message: {got:?}");
    // A definition of `st` (gpc0 only), then a truncated update, then an update for a table id
    // never defined: neither reaches the table.
    let mut bad = b"HAProxyS 2.1\na\nb 1 1\n".to_vec();
    let gpc0 = lbha::peers::DataType::from_name("gpc0").unwrap();
    let def =
        lbha::peers::Definition::for_table(1, b"st", lbha::peers::KeyType::Ip, 4, gpc0.bit(), 300_000, |_| 0, |_| 0);
    lbha::peers::Message::Definition(def.clone()).encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x06, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00]);
    lbha::peers::Message::Switch { table_id: 99 }.encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x09, 0x00, 0x00, 0x00, 0x02, 192, 0, 2, 77, 0x05]);
    let _ = talk(&bad);
    let after = a.ctl(&["show table st"]);
    assert!(after.contains("used:1") && !after.contains("192.0.2.77"), "{after}");
    assert_eq!(data_of(&after, "192.0.2.9"), data_of(&before, "192.0.2.9"), "the table is untouched");
    // An unknown table id is skipped, counted and logged; the session goes on: an update of
    // the defined table behind it is applied.
    let mut bad = b"HAProxyS 2.1\na\nb 1 1\n".to_vec();
    lbha::peers::Message::Definition(def).encode(&mut bad);
    lbha::peers::Message::Switch { table_id: 99 }.encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x09, 0x00, 0x00, 0x00, 0x02, 192, 0, 2, 78, 0x05]);
    lbha::peers::Message::Switch { table_id: 1 }.encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x09, 0x00, 0x00, 0x00, 0x03, 192, 0, 2, 79, 0x05]);
    let mut s = TcpStream::connect(("127.0.0.1", pa)).unwrap();
    s.write_all(&bad).unwrap();
    let d = wait_entry(&a.sock, "st", "192.0.2.79", None);
    assert!(d.split_whitespace().any(|w| w == "gpc0=5"), "{d}");
    drop(s);
    let after = a.ctl(&["show table st"]);
    assert!(!after.contains("192.0.2.78"), "{after}");
    let log = a.log_text();
    assert!(log.contains("errors so far"), "errors are logged and counted:\n{log}");
    assert!(log.contains("switch to table id 99, never defined"), "{log}");
    // Still serving sessions.
    a.ctl(&["set table st key 192.0.2.10 data.gpc0 1"]);
    assert!(a.ctl(&["show table st"]).contains("key=192.0.2.10"));
}

#[test]
fn only_the_sections_addresses_may_connect() {
    let pa = free_port();
    let mut cfg = lbha_config("a", &[("a", pa)]);
    cfg = cfg.replace(
        &format!("peer = [\"a 127.0.0.1:{pa}\"]"),
        &format!("peer = [\"a 127.0.0.1:{pa}\", \"b 127.0.0.2:{pa}\"]"),
    );
    let a = Lbha::start(&cfg, &[pa]);
    // A valid hello from 127.0.0.1, which is not b's address: closed without an answer.
    let mut s = TcpStream::connect(("127.0.0.1", pa)).unwrap();
    let _ = s.write_all(b"HAProxyS 2.1\na\nb 1 1\n");
    assert_eq!(read_all(&mut s), b"", "no status for an unlisted address");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.log_text().contains("not in the section") {
        assert!(Instant::now() < deadline, "not logged:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 2.x's `table` lines in a `peers` section: the table is `mesh/t1` on both sides (show table,
/// set table and on the wire), and entries cross both ways.
#[test]
fn peers_section_tables_replicate_with_haproxy() {
    if !have("haproxy") {
        println!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("peers-tbl");
    let hsock: PathBuf = dir.0.join("hap.sock");
    let (hport, lport) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket {} level admin\n\
         peers mesh\n    peer hap 127.0.0.1:{hport}\n    peer lb 127.0.0.1:{lport}\n\
         \x20   table t1 type string len 32 size 1k expire 5m store gpc0,http_req_cnt\n",
        hsock.display()
    );
    let path = dir.write("hap.cfg", &cfg);
    let child = Command::new("haproxy")
        .args(["-db", "-L", "hap", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let _hap = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&hsock).is_err() {
        assert!(Instant::now() < deadline, "haproxy's stats socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let lb = Lbha::start(
        &format!(
            "[global]\nlocalpeer = \"lb\"\n[[peers]]\nname = \"mesh\"\npeer = [\"hap 127.0.0.1:{hport}\", \"lb 127.0.0.1:{lport}\"]\n\
             table = [{{ name = \"t1\", type = \"string\", len = 32, size = \"1k\", expire = \"5m\", store = [\"gpc0\", \"http_req_cnt\"] }}]\n"
        ),
        &[lport],
    );
    assert!(lb.ctl(&["show table"]).contains("# table: mesh/t1, type: string, size:1024, used:0"));
    let r = lb.ctl(&["set table mesh/t1 key alice data.gpc0 7 data.http_req_cnt 2"]);
    assert!(!r.contains("rror") && !r.contains("No such"), "{r}");
    let mine = data_of(&lb.ctl(&["show table mesh/t1"]), "alice").unwrap();
    assert_eq!(wait_entry(&hsock, "mesh/t1", "alice", Some(&mine)), mine);
    ask(&hsock, "set table mesh/t1 key bob data.gpc0 3");
    let theirs = data_of(&ask(&hsock, "show table mesh/t1"), "bob").unwrap();
    assert_eq!(wait_entry(&lb.sock, "mesh/t1", "bob", Some(&theirs)), theirs);
}

/// Holds the peer connections it forwards until the test lets them go, so both nodes' hellos
/// cross; counts connections held and pairs open. It can also cut every open pair, and `mute`
/// swallows what dialers send (counted in `swallowed`), as a peer that never reads.
#[derive(Default)]
struct Gate {
    go: std::sync::atomic::AtomicBool,
    stop: std::sync::atomic::AtomicBool,
    held: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
    mute: std::sync::atomic::AtomicBool,
    swallowed: std::sync::atomic::AtomicUsize,
    pairs: std::sync::Mutex<Vec<TcpStream>>,
}

impl Gate {
    /// Forwards connections to `listen` on to `target`, each once `go` is set.
    fn forward(self: &std::sync::Arc<Self>, listen: std::net::TcpListener, target: u16) {
        use std::sync::atomic::Ordering::SeqCst;
        listen.set_nonblocking(true).unwrap();
        let g = self.clone();
        std::thread::spawn(move || {
            while !g.stop.load(SeqCst) {
                let Ok((c, _)) = listen.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let g = g.clone();
                std::thread::spawn(move || {
                    c.set_nonblocking(false).unwrap();
                    g.held.fetch_add(1, SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !g.go.load(SeqCst) && Instant::now() < deadline && !g.stop.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let Ok(s) = TcpStream::connect(("127.0.0.1", target)) else { return };
                    g.open.fetch_add(1, SeqCst);
                    g.pairs.lock().unwrap().extend([c.try_clone().unwrap(), s.try_clone().unwrap()]);
                    let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
                    let g2 = g.clone();
                    let up = std::thread::spawn(move || {
                        let mut b = [0u8; 4096];
                        while let Ok(n @ 1..) = (&c2).read(&mut b) {
                            if g2.mute.load(SeqCst) {
                                g2.swallowed.fetch_add(n, SeqCst);
                            } else if (&s2).write_all(&b[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = s2.shutdown(std::net::Shutdown::Both);
                    });
                    let _ = std::io::copy(&mut &s, &mut &c);
                    let _ = c.shutdown(std::net::Shutdown::Both);
                    let _ = up.join();
                    g.open.fetch_sub(1, SeqCst);
                });
            }
        });
    }

    /// Holds new connections, ends every open pair and waits until none is left.
    fn cut(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.go.store(false, SeqCst);
        for s in self.pairs.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.open.load(SeqCst) != 0 {
            assert!(Instant::now() < deadline, "the cut sessions never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Waits until `what` is in the log of `node`.
fn wait_log(node: &Lbha, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node.log_text().contains(what) {
        assert!(Instant::now() < deadline, "{what:?} never logged:\n{}", node.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A session that ends takes nothing with it: the next one pushes every change the peer did not
/// acknowledge, whether made while no session was up (and the ended session had pushed nothing)
/// or pushed by the ended session into a connection the peer never read. The peer, resynced
/// already, asks for no lesson, so only pushes can carry them. Only `a` dials (`b` knows `a` at
/// a closed port), through the gate.
#[test]
fn a_new_session_pushes_what_the_ended_one_did_not_deliver() {
    use std::sync::atomic::Ordering::SeqCst;
    let (pa, pb, closed) = (free_port(), free_port(), free_port());
    let lb = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gb = lb.local_addr().unwrap().port();
    let gate = std::sync::Arc::new(Gate::default());
    gate.go.store(true, SeqCst);
    gate.forward(lb, pb);
    struct Stop(std::sync::Arc<Gate>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop.store(true, SeqCst);
            self.0.cut();
        }
    }
    let _stop = Stop(gate.clone());
    let a = Lbha::start(&lbha_config("a", &[("a", pa), ("b", gb)]), &[pa]);
    a.ctl(&["set table st key 198.51.100.1 data.gpc0 1"]);
    let b = Lbha::start(&lbha_config("b", &[("a", closed), ("b", pb)]), &[pb]);
    // b learns from a, so it asks no later session for a lesson.
    wait_log(&b, "resync from a");
    let has = |d: String, want: &str| d.split_whitespace().any(|w| w == want);
    assert!(has(wait_entry(&b.sock, "st", "198.51.100.1", None), "gpc0=1"));
    // A change made while no session is up.
    gate.cut();
    a.ctl(&["set table st key 198.51.100.5 data.gpc0 5"]);
    gate.go.store(true, SeqCst);
    assert!(has(wait_entry(&b.sock, "st", "198.51.100.5", None), "gpc0=5"));
    // A change pushed into a session b never reads, which then ends.
    gate.mute.store(true, SeqCst);
    let before = gate.swallowed.load(SeqCst);
    a.ctl(&["set table st key 198.51.100.6 data.gpc0 6"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    // More than a heartbeat: the update (with its table definition) was sent.
    while gate.swallowed.load(SeqCst) < before + 16 {
        assert!(Instant::now() < deadline, "a never pushed 198.51.100.6");
        std::thread::sleep(Duration::from_millis(10));
    }
    gate.cut();
    gate.mute.store(false, SeqCst);
    gate.go.store(true, SeqCst);
    assert!(has(wait_entry(&b.sock, "st", "198.51.100.6", None), "gpc0=6"));
    let logs = b.log_text();
    assert!(logs.matches("accepted").count() >= 3, "three sessions were opened:\n{logs}");
}

/// Two nodes dialing each other at the same moment (HAProxy's collision): each side takes the
/// newer session and drops the older, so at most both die and reconnect after a random delay;
/// in the end one session remains and both tables hold everything.
#[test]
fn two_nodes_dialing_at_once_end_with_one_session() {
    use std::sync::atomic::Ordering::SeqCst;
    let (pa, pb) = (free_port(), free_port());
    let (la, lb) =
        (std::net::TcpListener::bind("127.0.0.1:0").unwrap(), std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let (ga, gb) = (la.local_addr().unwrap().port(), lb.local_addr().unwrap().port());
    let gate = std::sync::Arc::new(Gate::default());
    gate.forward(la, pa);
    gate.forward(lb, pb);
    struct Stop(std::sync::Arc<Gate>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop.store(true, SeqCst);
        }
    }
    let _stop = Stop(gate.clone());
    // Each node reaches the other through its gate.
    let a = Lbha::start(&lbha_config("a", &[("a", pa), ("b", gb)]), &[pa]);
    let b = Lbha::start(&lbha_config("b", &[("a", ga), ("b", pb)]), &[pb]);
    a.ctl(&["set table st key 198.51.100.1 data.gpc0 1"]);
    b.ctl(&["set table st key 198.51.100.2 data.gpc0 2"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while gate.held.load(SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the nodes never dialed");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Both hellos are held: let them cross.
    gate.go.store(true, SeqCst);
    for (node, key, want) in [(&b, "198.51.100.1", "gpc0=1"), (&a, "198.51.100.2", "gpc0=2")] {
        let d = wait_entry(&node.sock, "st", key, None);
        assert!(d.split_whitespace().any(|w| w == want), "{key}: {d}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while gate.open.load(SeqCst) != 1 {
        assert!(Instant::now() < deadline, "{} sessions open", gate.open.load(SeqCst));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The survivor carries new changes both ways.
    b.ctl(&["set table st key 198.51.100.3 data.gpc0 3"]);
    a.ctl(&["set table st key 198.51.100.4 data.gpc0 4"]);
    let has = |d: String, want: &str| d.split_whitespace().any(|w| w == want);
    assert!(has(wait_entry(&a.sock, "st", "198.51.100.3", None), "gpc0=3"));
    assert!(has(wait_entry(&b.sock, "st", "198.51.100.4", None), "gpc0=4"));
    assert_eq!(gate.open.load(SeqCst), 1, "one session between the two nodes");
    let logs = a.log_text() + &b.log_text();
    assert!(logs.matches("session with").count() >= 4, "both sessions were opened:\n{logs}");
    assert!(logs.contains("replaces this one"), "one gave way:\n{logs}");
}

/// A peer certificate signed by `ca`: the same one serves the listener and dials out, so it is
/// for both server and client authentication. Certificate and key in one PEM, as `crt` takes.
fn peer_pem(ca: &common::pki::TestCa, cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.extended_key_usages =
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    format!("{}{}", p.signed_by(&key, &ca.issuer).unwrap().pem(), key.serialize_pem())
}

/// Mutual TLS words for a peers section: the listener asks for a client certificate from `ca`,
/// the dialer checks the peer's against it and shows its own.
fn mtls(crt: &Path, ca: &Path) -> String {
    format!("ssl crt {} ca-file {} verify required", crt.display(), ca.display())
}

fn lbha_tls_config(me: &str, peers: &[(&str, u16)], crt: &Path, ca: &Path) -> String {
    let words = mtls(crt, ca);
    lbha_config(me, peers).replace(
        "name = \"mesh\"\n",
        &format!("name = \"mesh\"\ndefault_bind = \"{words}\"\ndefault_server = \"{words}\"\n"),
    )
}

/// Waits until `what` is in the log of `node`, or fails with the log.
fn wait_log_any(node: &Lbha, what: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = node.log_text();
        if what.iter().all(|w| log.contains(w)) {
            return;
        }
        assert!(Instant::now() < deadline, "{what:?} never logged:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two lbha nodes replicate over mutual TLS; the listener speaks nothing but TLS; a third node
/// whose certificate comes from another CA is refused both ways (its client certificate by the
/// listener, its server certificate by the dialer), each refusal logged, and none of its entries
/// gets in.
#[test]
fn lbha_nodes_replicate_over_tls_and_refuse_another_ca() {
    let dir = TempDir::new("peers-tls");
    let (ca, rogue_ca) = (common::pki::TestCa::new("peers CA"), common::pki::TestCa::new("rogue CA"));
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (crt_a, crt_b) = (dir.write("a.pem", &peer_pem(&ca, "a")), dir.write("b.pem", &peer_pem(&ca, "b")));
    let crt_c = dir.write("c.pem", &peer_pem(&rogue_ca, "c"));
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let all = [("a", pa), ("b", pb), ("c", pc)];
    let a = Lbha::start(&lbha_tls_config("a", &all, &crt_a, &ca_file), &[pa]);
    a.ctl(&["set table st key 192.0.2.1 data.gpc0 1 data.gpt0 8"]);
    let b = Lbha::start(&lbha_tls_config("b", &all[..2], &crt_b, &ca_file), &[pb]);
    let first = data_of(&a.ctl(&["show table st"]), "192.0.2.1").unwrap();
    assert_eq!(wait_entry(&b.sock, "st", "192.0.2.1", Some(&first)), first);
    b.ctl(&["set table st key 192.0.2.2 data.gpc0 2 data.http_req_cnt 40"]);
    let d = data_of(&b.ctl(&["show table st"]), "192.0.2.2").unwrap();
    assert_eq!(wait_entry(&a.sock, "st", "192.0.2.2", Some(&d)), d);

    // A clear-text hello gets no peers status from a TLS listener.
    let mut s = TcpStream::connect(("127.0.0.1", pa)).unwrap();
    let _ = s.write_all(b"HAProxyS 2.1\na\nb 1 1\n");
    let got = read_all(&mut s);
    assert!(!got.starts_with(b"200") && !got.starts_with(b"50"), "a clear-text answer: {got:?}");

    // The rogue node trusts a's CA too (so its own check passes and a's is the one that refuses)
    // and dials a with its rogue certificate.
    let both_cas = dir.write("both-cas.pem", &format!("{}{}", rogue_ca.pem, ca.pem));
    let c = Lbha::start(&lbha_tls_config("c", &[("a", pa), ("c", pc)], &crt_c, &both_cas), &[pc]);
    c.ctl(&["set table st key 203.0.113.9 data.gpc0 9"]);
    // a refuses c's client certificate, and c's server certificate when a dials c.
    wait_log_any(
        &a,
        &[
            "TLS handshake failed: invalid peer certificate",
            &format!("TLS handshake with 127.0.0.1:{pc} failed: invalid peer certificate"),
        ],
    );
    assert!(a.log_text().contains("errors so far"), "and counted:\n{}", a.log_text());
    assert!(!a.ctl(&["show table st"]).contains("203.0.113.9"), "nothing from the rogue node");
    // The good pair still replicates.
    a.ctl(&["set table st key 192.0.2.3 data.gpc0 3"]);
    let d = data_of(&a.ctl(&["show table st"]), "192.0.2.3").unwrap();
    assert_eq!(wait_entry(&b.sock, "st", "192.0.2.3", Some(&d)), d);
    assert!(!a.ctl(&["show table st"]).contains("203.0.113.9"), "nothing from the rogue node");
}

fn start_haproxy_tls(dir: &TempDir, sock: &Path, hport: u16, lport: u16, words: &str) -> Haproxy {
    let cfg = format!(
        "global\n    stats socket {} level admin\ndefaults\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         peers mesh\n    default-bind {words}\n    default-server {words}\n    peer hap 127.0.0.1:{hport}\n    peer lb 127.0.0.1:{lport}\n\
         backend st\n    stick-table type ip size 1k expire 5m peers mesh store {STORE}\n",
        sock.display()
    );
    let path = dir.write("hap.cfg", &cfg);
    let check = Command::new("haproxy").args(["-c", "-q", "-f"]).arg(&path).output().expect("haproxy -c");
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
    let _ = std::fs::remove_file(sock);
    let child = Command::new("haproxy")
        .args(["-db", "-L", "hap", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(sock).is_err() {
        assert!(Instant::now() < deadline, "haproxy's stats socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

/// Entries cross both ways between lbha and HAProxy, and HAProxy's resync fills an empty lbha.
fn replicate_with_haproxy(lb: &Lbha, hsock: &Path) {
    let want = data_of(&ask(hsock, "show table st"), "10.0.0.1").unwrap();
    assert_eq!(wait_entry(&lb.sock, "st", "10.0.0.1", Some(&want)), want);
    let r = lb.ctl(&["set table st key 10.0.0.2 data.gpc0 7 data.http_req_cnt 3 data.server_id 5"]);
    assert!(!r.contains("rror"), "{r}");
    let mine = data_of(&lb.ctl(&["show table st"]), "10.0.0.2").unwrap();
    assert_eq!(wait_entry(hsock, "st", "10.0.0.2", Some(&mine)), mine);
    ask(hsock, "set table st key 10.0.0.3 data.gpc0 9 data.gpt0 1");
    let theirs = data_of(&ask(hsock, "show table st"), "10.0.0.3").unwrap();
    assert_eq!(wait_entry(&lb.sock, "st", "10.0.0.3", Some(&theirs)), theirs);
}

/// lbha and HAProxy 2.6 replicate over mutual TLS, each direction of connection on its own:
/// first only HAProxy can dial (lbha knows it at a closed port), so lbha's listener checks
/// HAProxy's client certificate; then only lbha can dial (run from the same haproxy.cfg text,
/// converted), so HAProxy checks lbha's.
#[test]
fn lbha_and_haproxy_replicate_over_tls_both_ways() {
    if !have("haproxy") {
        println!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("peers-hap-tls");
    let ca = common::pki::TestCa::new("peers CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (crt_hap, crt_lb) = (dir.write("hap.pem", &peer_pem(&ca, "hap")), dir.write("lb.pem", &peer_pem(&ca, "lb")));
    let hsock: PathBuf = dir.0.join("hap.sock");
    let (hport, lport, closed) = (free_port(), free_port(), free_port());

    // HAProxy dials lbha.
    let hap = start_haproxy_tls(&dir, &hsock, hport, lport, &mtls(&crt_hap, &ca_file));
    ask(&hsock, "set table st key 10.0.0.1 data.gpc0 4 data.http_req_cnt 12 data.gpt0 3");
    let lb = Lbha::start(&lbha_tls_config("lb", &[("hap", closed), ("lb", lport)], &crt_lb, &ca_file), &[lport]);
    replicate_with_haproxy(&lb, &hsock);
    wait_log(&lb, "session with hap (127.0.0.1:");
    assert!(lb.log_text().contains("accepted"), "HAProxy dialed:\n{}", lb.log_text());
    drop(lb);
    drop(hap);

    // lbha dials HAProxy, from an haproxy.cfg converted by lbha itself.
    let _hap = start_haproxy_tls(&dir, &hsock, hport, closed, &mtls(&crt_hap, &ca_file));
    ask(&hsock, "set table st key 10.0.0.1 data.gpc0 4 data.http_req_cnt 12 data.gpt0 3");
    let words = mtls(&crt_lb, &ca_file);
    let cfg = format!(
        "global\n    localpeer lb\ndefaults\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         peers mesh\n    default-bind {words}\n    default-server {words}\n    peer hap 127.0.0.1:{hport}\n    peer lb 127.0.0.1:{lport}\n\
         backend st\n    stick-table type ip size 1k expire 5m peers mesh store {STORE}\n"
    );
    let lb = Lbha::start_haproxy(&cfg, &[lport]);
    replicate_with_haproxy(&lb, &hsock);
    wait_log(&lb, &format!("session with hap (127.0.0.1:{hport}) established"));
    assert!(!lb.log_text().contains("accepted"), "only lbha dialed:\n{}", lb.log_text());
}
