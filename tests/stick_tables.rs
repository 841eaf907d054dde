//! Stick tables on the real binary: the runtime API's `show|clear|set table` answer as HAProxy
//! 2.6 does (same commands run against a real `haproxy` on loopback, outputs compared), `stick
//! on` entries appear in `show table`, and a reload keeps the entries.

mod common;

use common::{Lbha, TempDir, ask_socket, free_port, normalize_table};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FE_STORE: &str = "gpc0,gpc1,gpt0,conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),bytes_in_cnt,bytes_in_rate(1m),bytes_out_cnt,bytes_out_rate(1m),gpc0_rate(10s),gpc1_rate(10s),server_id";
const INT_STORE: &str = "http_req_cnt,gpc(2),gpc_rate(2,10s),gpt(2)";

fn toml_list(store: &str) -> String {
    let items = lbha::stktable::def::split_store(store);
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

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

fn wait_sock(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(p).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no socket at {}", p.display());
}

/// The same tables in both: a frontend table with every counter, a table-only backend with
/// arrays, a nopurge string table, an ipv6 and a binary one.
fn configs(hport: u16, lport: u16, hsock: &Path) -> (String, String) {
    let hap = format!(
        "global\n    stats socket {} level admin\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{hport}\n    default_backend be\n    stick-table type ip size 100 expire 5m store {FE_STORE}\n\
         backend be\n    server s1 127.0.0.1:1\n\
         backend st_int\n    stick-table type integer size 1k expire 5m store {INT_STORE}\n\
         backend st_str\n    stick-table type string len 8 size 4 nopurge store gpc0\n\
         backend st_v6\n    stick-table type ipv6 size 1k store gpt0\n\
         backend st_bin\n    stick-table type binary len 4 size 1k store gpc0\n",
        hsock.display()
    );
    let lb = format!(
        "[defaults]\nmode = \"http\"\n\
         [[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{lport}\"]\ndefault_backend = \"be\"\n\
         stick_table = {{ type = \"ip\", size = 100, expire = \"5m\", store = [{}] }}\n\
         [[backend]]\nname = \"be\"\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:1\" }}]\n\
         [[backend]]\nname = \"st_int\"\nstick_table = {{ type = \"integer\", size = \"1k\", expire = \"5m\", store = [{}] }}\n\
         [[backend]]\nname = \"st_str\"\nstick_table = {{ type = \"string\", len = 8, size = 4, nopurge = true, store = [\"gpc0\"] }}\n\
         [[backend]]\nname = \"st_v6\"\nstick_table = {{ type = \"ipv6\", size = \"1k\", store = [\"gpt0\"] }}\n\
         [[backend]]\nname = \"st_bin\"\nstick_table = {{ type = \"binary\", len = 4, size = \"1k\", store = [\"gpc0\"] }}\n",
        toml_list(FE_STORE),
        toml_list(INT_STORE)
    );
    (hap, lb)
}

const COMMANDS: &[&str] = &[
    "show table",
    "set table fe key 127.0.0.1 data.gpc0 5 data.conn_rate 7 data.server_id 3",
    "set table fe key 10.0.0.1 data.gpc0 1 data.gpc1 2 data.bytes_in_cnt 99999999999",
    "set table fe key 1.2.3.4",
    "set table fe key 5.5.5.5 data.gpc0 -1 data.gpt0 4294967296 data.server_id -7",
    "show table fe",
    "show table fe data.gpc0 gt 4",
    "show table fe data.gpc0 gt 0 data.gpc1 gt 1",
    "show table fe data.conn_rate eq 7",
    "show table fe data.gpc0 gt 4294967294",
    "show table fe key 127.0.0.1",
    "show table fe key 127.0.0.2",
    "show table fe key",
    "show table fe data.foo gt 4",
    "show table fe data.gpc0 xx 4",
    "show table fe data.gpc0 gt x",
    "show table fe data.conn_rate eq 7 key 127.0.0.1",
    "show table fe junk",
    "show table nope",
    "set table fe data.gpc0 1",
    "set table fe key 1.2.3.4 junk 1",
    "set table fe key 1.2.3.4 data.nope 1",
    "set table fe key 1.2.3.4 data.gpc0",
    "set table fe key 1.2.3.4 data.gpc0 x",
    "clear table",
    "clear table fe junk",
    "clear table fe key 127.0.0.9",
    "clear table fe data.gpc0 gt 4",
    "show table fe",
    "clear table fe key 10.0.0.1",
    "show table fe",
    "set table st_int key 9 data.gpc 3 data.gpc_rate 3 data.gpt 4",
    "set table st_int key 4294967295 data.http_req_cnt 3",
    "set table st_int key 4294967296 data.http_req_cnt 3",
    "set table st_int key -5 data.gpc 3",
    "set table st_int key 7 data.gpc0 3",
    "show table st_int",
    "set table st_str key abcdefghijklmnop data.gpc0 1",
    "set table st_str key k2 data.gpc0 2",
    "set table st_str key k3 data.gpc0 3",
    "set table st_str key k4 data.gpc0 4",
    "set table st_str key k5 data.gpc0 5",
    "show table st_str",
    "show table st_str data.gpc0 ge 3",
    "set table st_v6 key 127.0.0.1 data.gpt0 1",
    "set table st_v6 key 2001:db8::1 data.gpt0 2",
    "show table st_v6",
    "show table st_v6 key 2001:db8::1",
    "set table st_bin key 0102 data.gpc0 1",
    "show table st_bin key 01",
    "clear table st_bin key 01",
    "show table st_bin",
    "clear table fe",
    "show table",
];

#[test]
fn runtime_commands_answer_as_haproxy_2_6() {
    if !have("haproxy") {
        println!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("sticktables");
    let hsock = dir.0.join("hap.sock");
    let (hport, lport) = (free_port(), free_port());
    let (hap_cfg, lb_cfg) = configs(hport, lport, &hsock);
    let cfg = dir.write("hap.cfg", &hap_cfg);
    let hap = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    wait_sock(&hsock);
    let lb = Lbha::start(&lb_cfg, &[lport]);
    let mut diffs = Vec::new();
    for cmd in COMMANDS {
        let h = normalize_table(&ask_socket(&hsock, cmd));
        let l = normalize_table(&ask_socket(&lb.sock, cmd));
        if h != l {
            diffs.push(format!("$ {cmd}\n--- haproxy\n{h}\n--- lbha\n{l}"));
        }
    }
    drop(hap);
    assert!(diffs.is_empty(), "{} answers differ:\n{}", diffs.len(), diffs.join("\n"));
}

fn backend_server(port: u16) -> std::thread::JoinHandle<()> {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                while common::read_request_head(&mut s).is_some() {
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// `stick on src` writes `server_id` and `server_key`; `set table` changes what the rule finds;
/// a reload with the same table keeps every entry; a reload that changes the table starts empty.
#[test]
fn stick_entries_are_visible_settable_and_survive_reload() {
    let (port, s1, s2) = (free_port(), free_port(), free_port());
    let _b1 = backend_server(s1);
    let _b2 = backend_server(s2);
    let cfg = |size: u32| {
        format!(
            "[defaults]\nmode = \"http\"\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"be\"\n\
             [[backend]]\nname = \"be\"\nbalance = \"roundrobin\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{s1}\" }}, {{ name = \"b\", addr = \"127.0.0.1:{s2}\" }}]\n\
             stick_table = {{ type = \"ip\", size = {size}, expire = \"5m\", store = [\"gpc0\"] }}\nstick = [{{ on = \"src\" }}]\n"
        )
    };
    let lb = Lbha::start(&cfg(100), &[port]);
    assert_eq!(common::get(port, "/").status, 200);
    let out = lb.ctl(&["show table be"]);
    let line = out.lines().find(|l| l.contains("key=127.0.0.1")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(" use=0 exp=") && line.contains(" server_id=1 gpc0=0 server_key=a"), "{line}");
    // Point the client at server b by hand, as an operator would.
    lb.ctl(&["set table be key 127.0.0.1 data.server_id 2 data.gpc0 9"]);
    let out = lb.ctl(&["show table be key 127.0.0.1"]);
    assert!(out.contains("server_id=2 gpc0=9 server_key=a"), "{out}");
    // server_key still names a: the name wins, as in HAProxy.
    assert_eq!(common::get(port, "/").status, 200);
    std::fs::write(&lb.config, cfg(100)).unwrap();
    let r = lb.ctl(&["reload"]);
    assert!(r.contains("Success=1"), "{r}");
    let out = lb.ctl(&["show table be"]);
    assert!(out.contains("key=127.0.0.1") && out.contains("gpc0=9"), "kept across reload: {out}");
    std::fs::write(&lb.config, cfg(200)).unwrap();
    let r = lb.ctl(&["reload"]);
    assert!(r.contains("Success=1"), "{r}");
    let out = lb.ctl(&["show table be"]);
    assert!(out.starts_with("# table: be, type: ip, size:200, used:0"), "{out}");
    let denied = lb.ctl(&["user", "set table be key 1.1.1.1 data.gpc0 1", "show table be"]);
    assert!(denied.contains("Permission denied"), "{denied}");
}

/// A pipelined batch on one control connection (how `bench/peers.py` fills a table): every
/// command runs and is answered, in order, though the answers leave together.
#[test]
fn a_pipelined_batch_is_answered_in_full_and_in_order() {
    let cfg = "[[backend]]\nname = \"t\"\nstick_table = { type = \"ip\", size = 10000, expire = \"5m\", store = [\"gpc0\"] }\n";
    let lb = Lbha::start(cfg, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&lb.sock).is_err() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut batch = String::new();
    for i in 0..1000 {
        batch += &format!(
            "set table t key 10.0.{}.{} data.gpc0 {i}\nshow table t key 10.0.{}.{}\n",
            i / 256,
            i % 256,
            i / 256,
            i % 256
        );
    }
    let out = ask_socket(&lb.sock, batch.trim_end());
    let shown: Vec<&str> = out.lines().filter(|l| l.contains(" key=")).collect();
    assert_eq!(shown.len(), 1000, "one answer per show");
    for (i, l) in shown.iter().enumerate() {
        assert!(
            l.contains(&format!("key=10.0.{}.{} ", i / 256, i % 256)) && l.ends_with(&format!("gpc0={i}")),
            "{i}: {l}"
        );
    }
    assert!(ask_socket(&lb.sock, "show table").contains("used:1000"));
}
