//! The control socket and the CLI against a real daemon on loopback.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(port: u16, a: u16, b: u16, extra_global: &str) -> String {
    format!(
        r#"
[global]
{extra_global}
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
balance = "roundrobin"
servers = [
  {{ name = "a", addr = "127.0.0.1:{a}" }},
  {{ name = "b", addr = "127.0.0.1:{b}" }},
]
"#
    )
}

/// Answers of one exchange: each ends at an empty line.
fn answers(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut cur = String::new();
    for line in out.split_inclusive('\n') {
        if line == "\n" {
            v.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
        }
    }
    assert!(cur.is_empty(), "unterminated answer {cur:?} in {out:?}");
    v
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s:?}"))
}

/// Bodies of `n` sequential requests.
fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n).map(|_| get(port, "/").text()).collect()
}

struct Setup {
    lb: Lbha,
    port: u16,
    _a: Backend,
    _b: Backend,
}

fn setup(extra_global: &str) -> Setup {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let lb = Lbha::start(&config(port, a.port, b.port, extra_global), &[port]);
    Setup { lb, port, _a: a, _b: b }
}

/// Waits (bounded) until `show info` reports generation `g`.
fn wait_generation(lb: &Lbha, g: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("Generation: {g}\n");
    while Instant::now() < deadline {
        if lb.ctl(&["show info"]).contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("generation {g} not reached:\n{}", lb.log_text());
}

#[test]
fn every_command_answers_in_text_and_json() {
    let s = setup("control_socket = { mode = \"640\" }");
    let lb = &s.lb;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&lb.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let _ = bodies(s.port, 4);
    let out = lb.ctl(&[
        "help",
        "show info",
        "show stat",
        "show stat json",
        "show info json",
        "show servers state",
        "show servers state web json",
        "show backend",
        "show backend json",
        "show status",
        "show status json",
        "get weight web/a",
        "show stat web 4 -1",
    ]);
    let a = answers(&out);
    assert_eq!(a.len(), 13, "{out}");
    assert!(a[0].contains("show servers state [<backend>]"), "{}", a[0]);
    assert!(a[1].starts_with("Name: lbha\nVersion: "), "{}", a[1]);
    assert!(a[1].contains(&format!("\nPid: {}\n", lb.child.id())), "{}", a[1]);
    assert!(a[1].contains("\nGeneration: 1\n"));
    assert!(a[1].contains("\nCumReq: 4\n"), "{}", a[1]);
    assert!(a[2].starts_with("# pxname,svname,qcur,"), "{}", a[2]);
    assert!(a[2].contains("\nweb,FRONTEND,"));
    assert!(a[2].contains("\nweb,a,"));
    assert!(a[2].contains("\nweb,BACKEND,"));
    let stat = json(&a[3]);
    let rows = stat.as_array().unwrap();
    assert_eq!(rows.len(), 4, "frontend, two servers, backend");
    let server_a = &rows[1];
    let field = |row: &serde_json::Value, name: &str| {
        row.as_array().unwrap().iter().find(|f| f["field"]["name"] == name).map(|f| f["value"]["value"].clone())
    };
    assert_eq!(server_a[0]["objType"], "Server");
    assert_eq!(field(server_a, "svname"), Some("a".into()));
    assert_eq!(field(server_a, "stot"), Some(2.into()));
    assert_eq!(field(&rows[0], "req_tot"), Some(4.into()));
    let info = json(&a[4]);
    let name = info.as_array().unwrap().iter().find(|f| f["field"]["name"] == "Name").unwrap();
    assert_eq!(name["value"], serde_json::json!({"type": "str", "value": "lbha"}));
    let st: Vec<&str> = a[5].lines().collect();
    assert_eq!(st[0], "1");
    assert!(st[1].starts_with("# be_id be_name srv_id srv_name srv_addr"));
    // HAProxy's answer to the line: no comment of lbha's (its mark is for the state file only).
    // be_id 2: the control socket is proxy 1, as HAProxy's `stats socket` (HAProxy 2.6 prints
    // the same ids for this configuration).
    assert!(st[2].starts_with("2 web 1 a 127.0.0.1 2 0 1 1 "), "{}", st[2]);
    assert!(st[3].starts_with("2 web 2 b 127.0.0.1 2 0 1 1 "));
    let sj = json(&a[6]);
    assert_eq!(sj[1]["srv_name"], "b");
    assert_eq!(sj[1]["status"], "UP");
    assert_eq!(sj[1]["admin"], "ready");
    assert_eq!(a[7], "# name\nweb\n");
    assert_eq!(json(&a[8])[0]["servers_up"], 2);
    assert!(a[9].contains("servers up 2/2"), "{}", a[9]);
    assert!(a[9].contains("no VRRP instances configured"));
    let status = json(&a[10]);
    assert_eq!(status["generation"], 1);
    assert_eq!(status["frontends"][0]["binds"][0], format!("127.0.0.1:{}", s.port));
    assert_eq!(status["vrrp"], serde_json::json!([]));
    assert_eq!(a[11], "1 (initial 1)\n");
    let only_servers: Vec<&str> = a[12].lines().skip(1).collect();
    assert_eq!(only_servers.len(), 2, "{}", a[12]);
    assert!(only_servers.iter().all(|l| l.starts_with("web,a,") || l.starts_with("web,b,")));
}

#[test]
fn malformed_input_gets_an_error_line_and_the_connection_stays_open() {
    let s = setup("");
    let lb = &s.lb;
    let long = "x".repeat(100 * 1024);
    let out = lb.ctl(&[
        "frobnicate",
        "set server web/zz state ready",
        "set server nob/a state ready",
        "disable server web",
        "set server web/a weight 999",
        "set server web/a state up",
        "show servers state nob",
        &long,
        "json frobnicate",
        "show info; nope; show backend",
        "",
        "show backend",
    ]);
    let a = answers(&out);
    assert_eq!(a.len(), 13, "{out}");
    assert!(a[0].starts_with("Unknown command: 'frobnicate'"), "{}", a[0]);
    assert_eq!(a[1], "No such server.\n");
    assert_eq!(a[2], "No such backend.\n");
    assert!(a[3].starts_with("Require 'backend/server'"), "{}", a[3]);
    assert!(a[4].starts_with("Invalid weight '999'"), "{}", a[4]);
    assert!(a[5].contains("expects 'ready', 'drain' and 'maint'"));
    assert_eq!(a[6], "Can't find backend.\n");
    assert!(a[7].starts_with("Command line too long"), "{}", a[7]);
    assert!(json(&a[8])["errorStr"].as_str().unwrap().contains("frobnicate"));
    assert!(a[9].starts_with("Name: lbha"));
    assert!(a[10].starts_with("Unknown command: 'nope'"));
    assert_eq!(a[11], "# name\nweb\n");
    assert_eq!(a[12], "# name\nweb\n");

    // Bytes that are not UTF-8, then a good command on the same connection.
    let mut c = UnixStream::connect(&lb.sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"show \xff\xfe info\nshow backend\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let a = answers(&out);
    assert_eq!(a, vec!["Command line is not valid UTF-8.\n", "# name\nweb\n"]);

    // Severity marks and interactive prompt, as HAProxy's.
    let out = lb.ctl(&["set severity-output number", "disable server web/zz", "prompt", "show backend"]);
    assert_eq!(out, "\n[3]: No such server.\n\n\n> # name\nweb\n\n> ");
    // `quit` ends the connection: what follows is not run.
    let mut c = UnixStream::connect(&lb.sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"show backend\nquit\ndisable server web/a\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(out, "# name\nweb\n\n");
    // Nothing changed.
    assert!(lb.ctl(&["show servers state web"]).contains("\n1 web 1 a 127.0.0.1 2 0 1 1 "));
}

#[test]
fn concurrent_clients_are_served() {
    let s = setup("");
    let sock = s.lb.sock.clone();
    // An idle client holding a connection must not stop anyone.
    let idle = UnixStream::connect(&sock).unwrap();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = UnixStream::connect(&sock).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut text = String::new();
                for _ in 0..25 {
                    text.push_str(&format!("set server web/a weight {}\nget weight web/a\nshow stat\n", i + 1));
                }
                c.write_all(text.as_bytes()).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                let mut out = String::new();
                c.read_to_string(&mut out).unwrap();
                out
            })
        })
        .collect();
    for w in workers {
        let out = w.join().unwrap();
        let a = answers(&out);
        assert_eq!(a.len(), 75);
        for chunk in a.chunks(3) {
            assert_eq!(chunk[0], "");
            assert!(chunk[1].ends_with(" (initial 1)\n"), "{}", chunk[1]);
            assert!(chunk[2].starts_with("# pxname,"));
        }
    }
    drop(idle);
}

#[test]
fn disabled_servers_get_no_traffic_and_weights_apply() {
    let s = setup("");
    let lb = &s.lb;
    let seen = bodies(s.port, 6);
    assert!(seen.iter().any(|b| b == "A") && seen.iter().any(|b| b == "B"), "{seen:?}");
    assert_eq!(lb.ctl(&["disable server web/b"]), "\n");
    assert!(bodies(s.port, 8).iter().all(|b| b == "A"));
    let stat = lb.ctl(&["show stat"]);
    let row_b = stat.lines().find(|l| l.starts_with("web,b,")).unwrap_or("");
    assert!(row_b.contains(",MAINT,"), "{stat}");
    assert_eq!(lb.ctl(&["enable server web/b"]), "\n");
    let seen = bodies(s.port, 6);
    assert!(seen.iter().any(|b| b == "B"), "{seen:?}");
    // Drain: no new traffic either; weight 0: none at all.
    lb.ctl(&["set server web/b state drain"]);
    assert!(bodies(s.port, 6).iter().all(|b| b == "A"));
    // `enable server` ends maintenance only, as in HAProxy: the drain stays.
    lb.ctl(&["enable server web/b"]);
    let st = lb.ctl(&["show servers state web"]);
    assert!(st.contains("\n1 web 2 b 127.0.0.1 2 8 1 1 "), "{st}");
    lb.ctl(&["set server web/b state ready", "set server web/a weight 0"]);
    assert!(bodies(s.port, 6).iter().all(|b| b == "B"));
    let j = json(answers(&lb.ctl(&["json set server web/a weight 100%"]))[0].trim());
    assert_eq!(j["weight"], 1);
    assert_eq!(j["admin"], "ready");
    // Weights 3:1 (smooth round robin: exact over whole cycles, up to its carried-over state).
    lb.ctl(&["set weight web/a 3"]);
    let seen = bodies(s.port, 40);
    let n = seen.iter().filter(|b| *b == "A").count();
    assert!((28..=32).contains(&n), "{n} of 40 to A");
}

#[test]
fn runtime_state_survives_sighup_and_reload_command() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let port = free_port();
    let port2 = free_port();
    let lb = Lbha::start(&config(port, a.port, b.port, ""), &[port]);
    lb.ctl(&["disable server web/b", "set server web/a weight 7"]);

    // SIGHUP with a config that adds a frontend.
    let mut cfg2 = config(port, a.port, b.port, "");
    cfg2.push_str(&format!(
        "[[listen]]\nname = \"more\"\nbind = [\"127.0.0.1:{port2}\"]\nservers = [{{ name = \"x\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port
    ));
    std::fs::write(&lb.config, &cfg2).unwrap();
    lb.signal(1);
    wait_generation(&lb, 2);
    let st = lb.ctl(&["show servers state web"]);
    assert!(st.contains("\n1 web 1 a 127.0.0.1 2 0 7 1 "), "{st}");
    assert!(st.contains("\n1 web 2 b 127.0.0.1 0 1 1 1 "), "{st}");
    assert!(bodies(port, 4).iter().all(|b| b == "A"));
    assert!(lb.ctl(&["show info"]).contains("\nLast_reload: ok\n"));

    // The reload command answers with the new generation; state still holds.
    assert_eq!(lb.ctl(&["reload"]), "Success=1\n--\nconfiguration reloaded: generation 3\n\n");
    let j = json(answers(&lb.ctl(&["json reload"]))[0].trim());
    assert_eq!(j, serde_json::json!({"success": true, "generation": 4}));
    let st = lb.ctl(&["show servers state web"]);
    assert!(st.contains("\n1 web 2 b 127.0.0.1 0 1 1 1 "), "{st}");

    // A bad config: every error, the old one keeps serving.
    std::fs::write(
        &lb.config,
        "[global]\nmaxconn = 0\n[[backend]]\nname = \"x\"\nbalance = \"nope\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:1\" }]\n",
    )
    .unwrap();
    let out = lb.ctl(&["reload"]);
    assert!(out.starts_with("Success=0\n--\nreload failed, still serving generation 4:\n"), "{out}");
    assert!(out.contains("lbha.toml:2:"), "{out}");
    assert!(out.contains("global.maxconn"), "{out}");
    assert!(out.contains("backend[0].balance"), "{out}");
    let j = json(answers(&lb.ctl(&["json reload"]))[0].trim());
    assert_eq!(j["success"], false);
    assert_eq!(j["errors"].as_array().unwrap().len(), 2, "{j}");
    assert!(lb.ctl(&["show info"]).contains("\nGeneration: 4\n"));
    assert!(bodies(port, 2).iter().all(|b| b == "A"));
    assert!(lb.ctl(&["show status"]).contains("last reload: FAILED, still serving generation 4"));
}

#[test]
fn server_state_file_carries_runtime_state_across_a_restart() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let state_dir = TempDir::new("state");
    let state = state_dir.0.join("lib").join("server-state");
    let extra = format!("server_state_file = \"{}\"", state.display());
    let port = free_port();
    let cfg = config(port, a.port, b.port, &extra);
    let mut lb = Lbha::start(&cfg, &[port]);
    lb.ctl(&["disable server web/b", "set server web/a weight 5"]);
    // Written at once, atomically.
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.starts_with("1\n# be_id "), "{text}");
    assert!(text.contains("\n1 web 1 a 127.0.0.1 2 0 5 1 "), "{text}");
    assert!(text.contains("\n1 web 2 b 127.0.0.1 0 1 1 1 "), "{text}");
    lb.ctl(&["set server web/a weight 6"]);
    lb.signal(15);
    assert!(lb.wait_exit(Duration::from_secs(15)).is_some_and(|s| s.success()));
    assert!(!lb.sock.exists(), "the socket file is removed at stop");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("\n1 web 1 a 127.0.0.1 2 0 6 1 "), "{text}");

    let lb2 = Lbha::start(&cfg, &[port]);
    let st = lb2.ctl(&["show servers state"]);
    assert!(st.contains("\n1 web 1 a 127.0.0.1 2 0 6 1 "), "{st}");
    assert!(st.contains("\n1 web 2 b 127.0.0.1 0 1 1 1 "), "{st}");
    assert!(bodies(port, 6).iter().all(|b| b == "A"));
}

fn spawn_with_socket(dir: &TempDir, name: &str, cfg: &str, sock: &Path, stderr: Stdio) -> Reaped {
    let path = dir.write(name, cfg);
    let child = Command::new(lbha_bin())
        .args(["run", "-c"])
        .arg(&path)
        .arg("-S")
        .arg(sock)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Reaped::new(child)
}

fn wait_socket(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(sock).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never answered", sock.display());
}

#[test]
fn a_second_daemon_is_refused_and_a_stale_socket_is_replaced() {
    let dir = TempDir::new("two");
    let sock = dir.0.join("run").join("lbha.sock");
    let a = Backend::start("A");
    let (p1, p2) = (free_port(), free_port());
    let mut first = spawn_with_socket(&dir, "one.toml", &config(p1, a.port, a.port, ""), &sock, Stdio::null());
    wait_socket(&sock);
    let second = spawn_with_socket(&dir, "two.toml", &config(p2, a.port, a.port, ""), &sock, Stdio::piped());
    let out = second.take().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another lbha is answering"), "{err}");
    assert_eq!(err.matches("another lbha is answering").count(), 1, "a fatal error is printed once: {err}");
    assert!(err.contains(&sock.display().to_string()), "{err}");
    // The first still serves.
    assert_eq!(get(p1, "/").text(), "A");

    // Killed hard, the first leaves its socket file behind; a new daemon replaces it.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(sock.exists());
    let mut third = spawn_with_socket(&dir, "three.toml", &config(p2, a.port, a.port, ""), &sock, Stdio::null());
    wait_socket(&sock);
    let mut c = UnixStream::connect(&sock).unwrap();
    c.write_all(b"show backend\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(out, "# name\nweb\n\n");
    let _ = third.kill();
    let _ = third.wait();
}

#[test]
fn cli_commands_and_exit_codes() {
    let s = setup("");
    let lb = &s.lb;
    let (code, out, err) = lb.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("generation 1"), "{out}");
    // The harness's readiness probe may count as a session: the counts are not checked.
    let fe = out.lines().find(|l| l.starts_with("  web ")).unwrap_or("");
    assert!(fe.starts_with("  web   http  "), "{out}");
    assert!(fe.ends_with(&format!("  127.0.0.1:{}", s.port)), "{out}");
    assert!(out.contains("web  http  roundrobin  servers up 2/2"), "{out}");
    assert!(out.contains("\nVRRP\n  no VRRP instances configured\n"), "{out}");
    let (code, out, _) = lb.cli(&["status", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(out.trim())["backends"][0]["total"], 2);

    assert_eq!(lb.cli(&["server", "disable", "web/b"]).0, 0);
    let (code, out, _) = lb.cli(&["show", "servers", "web", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(out.trim())[1]["admin"], "maint");
    let (code, _, err) = lb.cli(&["server", "disable", "web/zz"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such server."), "{err}");
    assert_eq!(lb.cli(&["server", "disable", "web"]).0, 2);
    assert_eq!(lb.cli(&["server", "weight", "web/a", "300"]).0, 2);
    assert_eq!(lb.cli(&["server", "state", "web/b", "ready"]).0, 0);
    assert_eq!(lb.cli(&["server", "weight", "web/a", "50%"]).0, 0);
    assert_eq!(lb.cli(&["server", "enable", "web/b"]).0, 0);
    let (code, out, _) = lb.cli(&["show", "stat"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("# pxname,svname,"));
    let (code, out, _) = lb.cli(&["show", "info", "--json"]);
    assert_eq!(code, 0);
    assert!(json(out.trim()).is_array());
    let (code, out, _) = lb.cli(&["show", "backends"]);
    assert_eq!((code, out.as_str()), (0, "# name\nweb\n"));

    let (code, out, err) = lb.cli(&["reload"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "configuration reloaded: generation 2\n");
    std::fs::write(&lb.config, "[global]\nmaxconn = 0\n").unwrap();
    let (code, out, err) = lb.cli(&["reload"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("reload failed, still serving generation 2"), "{err}");
    assert!(err.contains("global.maxconn: must be at least 1"), "{err}");

    let (code, out, err) = lb.cli(&["cmd", "show info; nope"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("Name: lbha"), "{out}");
    assert!(err.contains("Unknown command: 'nope'"), "{err}");
    assert_eq!(lb.cli(&["cmd", "get weight web/a"]).1, "1 (initial 1)\n");

    let out = Command::new(lbha_bin()).args(["-S", "/nonexistent-lbha/x.sock", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-lbha/x.sock"), "{err}");
    assert_eq!(Command::new(lbha_bin()).args(["server"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn vrrp_commands_answer_without_vrrp() {
    let dir = TempDir::new("ctl-vrrp");
    let s = setup(&format!("state_dir = \"{}\"", dir.0.join("state").display()));
    let lb = &s.lb;
    let out = lb.ctl(&[
        "show vrrp",
        "vip list",
        "json vip list",
        "vip add 198.51.100.1/24 dev lo",
        "vip add 198.51.100.1-5000 dev eth0",
        "vip add 198.51.100.1",
        "vip del 198.51.100.1",
        "json vip del 198.51.100.1",
        "vip list instance VI_1",
        "show vrrp json",
    ]);
    let a = answers(&out);
    assert_eq!(a.len(), 10, "{out}");
    assert!(a[0].starts_with("no VRRP instances configured\nruntime VIPs file: "), "{}", a[0]);
    assert!(a[0].contains("/state/runtime-vips.json"), "{}", a[0]);
    assert_eq!(a[1], "no VIPs\n");
    assert_eq!(a[2], "[]\n");
    assert!(a[3].starts_with("no vrrp_instance is configured; `lbha vip add --direct`"), "{}", a[3]);
    assert!(a[4].contains("malformed range \"198.51.100.1-5000\""), "{}", a[4]);
    assert!(a[5].starts_with("missing `dev IFACE`"), "{}", a[5]);
    assert_eq!(a[6], "198.51.100.1 is not a runtime VIP\n");
    assert_eq!(json(&a[7])["errorStr"], "198.51.100.1 is not a runtime VIP");
    assert_eq!(a[8], "No vrrp_instance named 'VI_1'.\n");
    assert_eq!(json(&a[9])["instances"], serde_json::json!([]));
    assert!(!dir.0.join("state").exists(), "nothing was written");

    // The CLI reaches the daemon, so it never manages host addresses here.
    let (code, out, _) = lb.cli(&["vip", "list"]);
    assert_eq!((code, out.as_str()), (0, "no VIPs\n"));
    let (code, _, err) = lb.cli(&["vip", "add", "198.51.100.1/24", "dev", "lo"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no vrrp_instance is configured"), "{err}");
    let (code, _, err) = lb.cli(&["vip", "add", "198.51.100.300", "dev", "lo"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("malformed address \"198.51.100.300\""), "{err}");
    let (code, out, _) = lb.cli(&["show", "vrrp", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["orphans"], serde_json::json!([]));
}

/// HAProxy's socket levels: a `user` or `operator` socket reads but changes nothing (server
/// commands, reload, VIPs need `admin`); an admin connection can lower itself, never raise.
#[test]
fn levels_limit_what_a_socket_may_do() {
    for level in ["user", "operator"] {
        let s = setup(&format!("control_socket = {{ level = \"{level}\" }}"));
        let out = s.lb.ctl(&[
            "show stat",
            "get weight web/a",
            "disable server web/a",
            "set server web/a state maint",
            "set weight web/a 0",
            "reload",
            "vip del 10.0.0.1",
            "show servers state web",
        ]);
        // `upgrade` is not here: it goes by the peer's uid, not the level (unit test
        // `daemon::control::tests::upgrade_goes_by_peer_uid_not_by_socket_level`).
        let a = answers(&out);
        assert_eq!(a.len(), 8, "{out}");
        assert!(a[0].starts_with("# pxname,"), "{level}: {}", a[0]);
        assert_eq!(a[1], "1 (initial 1)\n");
        for denied in &a[2..7] {
            assert_eq!(denied, "Permission denied\n", "{level}: {out}");
        }
        assert!(a[7].contains("web"), "{}", a[7]);
        assert_eq!(bodies(s.port, 4).iter().filter(|b| *b == "A").count(), 2, "a still serves");
        assert!(!s.lb.log_text().contains("reload"), "no reload ran:\n{}", s.lb.log_text());
    }
    let s = setup("");
    let out = s.lb.ctl(&["user", "disable server web/a", "get weight web/a"]);
    assert_eq!(answers(&out), ["", "Permission denied\n", "1 (initial 1)\n"], "{out}");
    assert_eq!(answers(&s.lb.ctl(&["disable server web/a"])), [""], "the default level is admin");
    assert!(bodies(s.port, 4).iter().all(|b| b == "B"));
}

#[test]
fn an_idle_connection_is_closed_after_the_configured_timeout() {
    // HAProxy's `stats timeout 1s`; lbha's default (60 s) would outlast the read below.
    let s = setup("control_socket = { timeout = \"1s\" }");
    let mut c = UnixStream::connect(&s.lb.sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"prompt\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).expect("the daemon closes the idle connection");
    assert!(out.ends_with("> "), "{out:?}");
}
