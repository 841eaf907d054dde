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
    lbha::peers::Message::Definition(def).encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x06, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00]);
    lbha::peers::Message::Switch { table_id: 99 }.encode(&mut bad);
    bad.extend_from_slice(&[0x0a, 0x80, 0x09, 0x00, 0x00, 0x00, 0x02, 192, 0, 2, 77, 0x05]);
    let _ = talk(&bad);
    let after = a.ctl(&["show table st"]);
    assert!(after.contains("used:1") && !after.contains("192.0.2.77"), "{after}");
    assert_eq!(data_of(&after, "192.0.2.9"), data_of(&before, "192.0.2.9"), "the table is untouched");
    let log = a.log_text();
    assert!(log.contains("errors so far"), "errors are logged and counted:\n{log}");
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
