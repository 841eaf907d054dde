//! `[cluster]` config sync between two real daemons on loopback: a Data Plane API commit on one
//! node is live on the other, a node that was down catches up, changes made on both sides of a
//! split are refused (409) instead of merged, a wrong key or certificate is rejected and logged,
//! manual mode's diff and push, runtime changes passed on.

mod api_support;
mod common;
mod kit;
use api_support::ApiLbha;
use common::*;
use kit::wait_log;
use std::time::{Duration, Instant};

const KEY: &str = "pair-secret-0123456789";

/// One node's fixed parts: its own dir (certificate, state), ports.
struct NodeDef {
    name: &'static str,
    dir: TempDir,
    api: u16,
    sync: u16,
}

fn node(name: &'static str) -> NodeDef {
    let dir = TempDir::new(&format!("cluster-{name}"));
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    dir.write(&format!("{name}.pem"), &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    dir.write(&format!("{name}.der.sha256"), &fingerprint(ck.cert.der()));
    NodeDef { name, dir, api: free_port(), sync: free_port() }
}

fn fingerprint(der: &[u8]) -> String {
    use std::fmt::Write;
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

struct Opts<'a> {
    key: &'a str,
    pin: Option<String>,
    sync: &'a str,
}

fn default_opts() -> Opts<'static> {
    Opts { key: KEY, pin: None, sync: "auto" }
}

/// The config of `me`; the shared part (userlist, backends) is the same on both nodes.
fn config(me: &NodeDef, other: &NodeDef, backend: u16, o: &Opts) -> String {
    let state = me.dir.0.display();
    let pin = o.pin.as_ref().map_or(String::new(), |f| format!(", fingerprint = \"{f}\""));
    format!(
        r#"[global]
state_dir = "{state}"

[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[userlist]]
name = "dataplaneapi"
users = [{{ name = "admin", insecure_password = "123456" }}]

[api]
bind = "127.0.0.1:{api}"
userlist = "dataplaneapi"
state_dir = "{state}"

[cluster]
node = "{name}"
bind = "127.0.0.1:{sync}"
peer = {{ name = "{other_name}", addr = "127.0.0.1:{other_sync}"{pin} }}
ssl_crt = "{state}/{name}.pem"
{key}sync = "{mode}"
local_keys = ["api", "global.state_dir"]

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "127.0.0.1:{backend}" }}]
"#,
        api = me.api,
        name = me.name,
        sync = me.sync,
        other_name = other.name,
        other_sync = other.sync,
        key = if o.key.is_empty() { String::new() } else { format!("key = \"{}\"\n", o.key) },
        mode = o.sync,
    )
}

fn start(n: &NodeDef, text: &str) -> ApiLbha {
    let lbha = Lbha::start(text, &[n.api, n.sync]);
    ApiLbha::with(lbha, n.api, TempDir::new("unused-state"))
}

/// Kills the node (as a crash would) and starts it again on its file as it is now.
fn restart(n: &NodeDef, a: ApiLbha) -> ApiLbha {
    let text = a.config_text();
    drop(a);
    start(n, &text)
}

fn add_backend(a: &ApiLbha, name: &str) -> (u16, serde_json::Value) {
    let v = a.version();
    a.json(
        "POST",
        &format!("/v2/services/haproxy/configuration/backends?version={v}"),
        Some(&format!(r#"{{"name":"{name}","mode":"http"}}"#)),
    )
}

fn has_backend(a: &ApiLbha, name: &str) -> bool {
    a.lbha.ctl(&["show backend"]).lines().any(|l| l.trim() == name)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not within {limit:?}");
}

fn status_json(a: &ApiLbha) -> serde_json::Value {
    let (code, out, err) = a.lbha.cli(&["cluster", "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn an_api_commit_on_one_node_is_live_on_the_other_and_runtime_changes_follow() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &default_opts()));

    // Same shared part from the start: in sync, both reachable.
    let st = status_json(&a);
    assert_eq!(st["relation"], "in sync", "{st}");
    assert_eq!(st["nodes"][0]["hash"], st["nodes"][1]["hash"], "{st}");
    assert_eq!(st["nodes"][1]["reachable"], true, "{st}");
    let (_, text, _) = b.lbha.cli(&["cluster", "status"]);
    assert!(text.contains("a (peer at 127.0.0.1:") && text.contains("relation: in sync"), "{text}");

    let t = Instant::now();
    let (s, body) = add_backend(&a, "added");
    assert_eq!(s, 202, "{body}");
    let waited = wait_for("the backend on b", Duration::from_secs(10), || has_backend(&b, "added"));
    eprintln!(
        "sync latency: commit on a to live on b: {:?} (API answered after {:?})",
        t.elapsed(),
        t.elapsed() - waited
    );
    // b's file has its own local settings and a's shared part; `lbha check` accepts it.
    b.check_file();
    let bt = b.config_text();
    assert!(bt.contains(&format!("127.0.0.1:{}", nb.api)) && bt.contains("node = \"b\""), "{bt}");
    assert!(bt.contains("name = \"added\""), "{bt}");
    let st = status_json(&b);
    assert_eq!(st["relation"], "in sync", "{st}");
    assert_eq!(st["nodes"][0]["version"], 1, "{st}");
    assert!(st["nodes"][0]["last_sync"]["outcome"].as_str().unwrap().contains("took version 1"), "{st}");

    // A file edit and `lbha reload` on b goes the other way.
    let edited = b.config_text().replace("name = \"added\"", "name = \"renamed\"");
    std::fs::write(&b.lbha.config, edited).unwrap();
    let (code, _, err) = b.lbha.cli(&["reload"]);
    assert_eq!(code, 0, "{err}");
    wait_for("the rename on a", Duration::from_secs(10), || has_backend(&a, "renamed"));
    assert!(!has_backend(&a, "added"));

    // A runtime server state change is run on the peer too.
    let (code, _, err) = a.lbha.cli(&["server", "state", "be/s1", "maint"]);
    assert_eq!(code, 0, "{err}");
    wait_for("maint on b", Duration::from_secs(10), || {
        b.lbha
            .ctl(&["show servers state be"])
            .lines()
            .any(|l| l.contains("s1") && l.split_whitespace().nth(6) == Some("1"))
    });
}

#[test]
fn a_node_that_was_down_catches_up_and_a_split_conflict_is_refused_with_409() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &default_opts()));
    let b_text = b.config_text();
    drop(b);

    // Three commits while b is down: each applies on a, which says so.
    for n in ["one", "two", "three"] {
        let (s, body) = add_backend(&a, n);
        assert_eq!(s, 202, "{body}");
    }
    wait_log(|| a.lbha.log_text(), "applies on this node only until the peer returns");
    let st = status_json(&a);
    assert_eq!(st["nodes"][1]["reachable"], false, "{st}");
    assert_eq!(st["nodes"][0]["version"], 3, "{st}");

    // b returns with its old file and catches up on all three.
    let b = start(&nb, &b_text);
    wait_for("b catching up", Duration::from_secs(15), || ["one", "two", "three"].iter().all(|n| has_backend(&b, n)));
    let st = status_json(&b);
    assert_eq!(st["relation"], "in sync", "{st}");
    assert_eq!(st["nodes"][0]["version"], 3, "{st}");

    // A split: a changes while b is down, then b changes while a is down.
    drop(b);
    assert_eq!(add_backend(&a, "from_a").0, 202);
    let a_text = a.config_text();
    drop(a);
    let b = start(&nb, &b_text.replace("name = \"be\"", "name = \"be\"\nbalance = \"roundrobin\""));
    assert_eq!(add_backend(&b, "from_b").0, 202);
    let a = start(&na, &a_text);
    // Neither wins on its own: both sides see it.
    wait_log(|| a.lbha.log_text(), "diverged");
    assert!(!has_backend(&a, "from_b") && !has_backend(&b, "from_a"));
    // The next change is refused with the reason, and nothing applies anywhere.
    let before = b.config_text();
    let (s, e) = add_backend(&b, "third_side");
    assert_eq!(s, 409, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("conflict: both nodes changed the config"), "{msg}");
    assert_eq!(b.config_text(), before);
    assert!(!has_backend(&b, "third_side") && !has_backend(&a, "third_side"));

    // The operator looks and decides: a's config wins.
    let (code, diff, err) = a.lbha.cli(&["cluster", "diff"]);
    assert_eq!(code, 0, "{err}");
    assert!(diff.contains("+ backend[from_a].name") && diff.contains("- backend[from_b].name"), "{diff}");
    let (code, _, err) = a.lbha.cli(&["cluster", "push"]);
    assert_ne!(code, 0, "a plain push must not override b's change");
    assert!(err.contains("conflict"), "{err}");
    let (code, out, err) = a.lbha.cli(&["cluster", "push", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pushed version"), "{out}");
    assert!(has_backend(&b, "from_a") && !has_backend(&b, "from_b"));
    assert_eq!(status_json(&b)["relation"], "in sync");
    b.check_file();

    // A node killed and restarted keeps a whole, valid file and its version.
    let b = restart(&nb, b);
    b.check_file();
    assert_eq!(status_json(&b)["relation"], "in sync");
}

#[test]
fn a_wrong_key_or_certificate_is_rejected_and_logged() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let wrong = Opts { key: "another-secret-0123456789", ..default_opts() };
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &wrong));
    assert_eq!(add_backend(&a, "nope").0, 202);
    // Each side refuses the other's greeting or request, and says why.
    wait_log(|| b.lbha.log_text(), "rejected a sync connection");
    wait_log(|| b.lbha.log_text(), "shared key differs");
    wait_log(|| a.lbha.log_text(), "wrong shared key");
    assert!(!has_backend(&b, "nope"));
    drop((a, b));

    // b pins a certificate that is not a's: b refuses a's connections, a refuses b's.
    let (na, nb) = (node("a"), node("b"));
    let b_pin = std::fs::read_to_string(nb.dir.0.join("b.der.sha256")).unwrap();
    let not_a = Opts { pin: Some(b_pin.clone()), ..default_opts() };
    let a = start(&na, &config(&na, &nb, web.port, &Opts { pin: Some(b_pin), ..default_opts() }));
    let b = start(&nb, &config(&nb, &na, web.port, &not_a));
    assert_eq!(add_backend(&a, "nope").0, 202);
    wait_log(|| b.lbha.log_text(), "is not the pinned peer certificate");
    assert!(!has_backend(&b, "nope"));
    // The right pins on both sides work.
    drop((a, b));
    let (na, nb) = (node("a"), node("b"));
    let pin = |n: &NodeDef| std::fs::read_to_string(n.dir.0.join(format!("{}.der.sha256", n.name))).unwrap();
    let a = start(&na, &config(&na, &nb, web.port, &Opts { pin: Some(pin(&nb)), key: "", ..default_opts() }));
    let b = start(&nb, &config(&nb, &na, web.port, &Opts { pin: Some(pin(&na)), key: "", ..default_opts() }));
    assert_eq!(add_backend(&a, "yes").0, 202);
    wait_for("the backend on b", Duration::from_secs(10), || has_backend(&b, "yes"));
}

/// A connection the peer holds open for hand-offs was authenticated with the key and certificates
/// of its time: once a reload changed them, it is closed, and the peer, still on the old key,
/// cannot open another (nor tell this node to take over on it).
#[test]
fn a_connection_held_open_closes_when_a_reload_changes_the_key() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &default_opts()));
    wait_log(|| b.lbha.log_text(), &format!("connection to a at 127.0.0.1:{} held open for hand-offs", na.sync));
    let rotated = a.config_text().replace(KEY, "rotated-secret-0123456789");
    std::fs::write(&a.lbha.config, rotated).unwrap();
    let (code, _, err) = a.lbha.cli(&["reload"]);
    assert_eq!(code, 0, "{err}");
    // b's next heartbeat finds it closed; opening it again with the old key is refused.
    wait_log(|| a.lbha.log_text(), "closed: the shared key changed");
    wait_log(|| b.lbha.log_text(), "cannot hold a connection open to a");
}

#[test]
fn manual_mode_diff_then_push() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let manual = Opts { sync: "manual", ..default_opts() };
    let a = start(&na, &config(&na, &nb, web.port, &manual));
    let b = start(&nb, &config(&nb, &na, web.port, &manual));
    assert_eq!(add_backend(&a, "later").0, 202);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!has_backend(&b, "later"), "manual mode pushes nothing by itself");
    assert_eq!(status_json(&a)["relation"], "peer behind");
    let (code, diff, err) = a.lbha.cli(&["cluster", "diff"]);
    assert_eq!(code, 0, "{err}");
    assert!(diff.contains("+ backend[later].name = \"later\""), "{diff}");
    let (code, out, err) = a.lbha.cli(&["cluster", "push"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pushed version 1 to b"), "{out}");
    assert!(has_backend(&b, "later"));
    let (_, diff, _) = a.lbha.cli(&["cluster", "diff"]);
    assert!(diff.contains("no difference"), "{diff}");
}

#[test]
fn lbha_upgrade_hands_the_sync_listener_over() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &default_opts()));
    let held = format!("connection to a at 127.0.0.1:{} held open for hand-offs", na.sync);
    wait_log(|| b.lbha.log_text(), &held);
    let old = a.lbha.served_pid();
    let (code, out, err) = a.lbha.cli(&["upgrade"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("the new process", Duration::from_secs(15), || a.lbha.served_pid() != old);
    let _new = Kill(a.lbha.served_pid());
    // The old process closes the connection b held open to it (b's hand-offs would go to a
    // process that no longer runs VRRP), and b holds one open to the new process.
    wait_log(|| a.lbha.log_text(), "closed: this process stopped");
    wait_for("b holding a connection to the new process", Duration::from_secs(15), || {
        kit::log_count(&b.lbha.log_text(), &held) >= 2
    });
    // The new process listens once the old one let go: b's change reaches it.
    assert_eq!(add_backend(&b, "after_upgrade").0, 202);
    wait_for("the backend on a", Duration::from_secs(10), || has_backend(&a, "after_upgrade"));
}

/// Kills the process `lbha upgrade` started (not the test's child) when the test ends.
struct Kill(u32);

impl Drop for Kill {
    fn drop(&mut self) {
        send_signal(self.0, 9);
    }
}

fn runtime_server(a: &ApiLbha, name: &str) -> (u16, serde_json::Value) {
    a.json("GET", &format!("/v2/services/haproxy/runtime/servers/{name}?backend=be"), None)
}

#[test]
fn runtime_server_changes_through_the_api_reach_the_peer_and_one_that_was_down_catches_up() {
    let web = Backend::start("W");
    let (na, nb) = (node("a"), node("b"));
    let a = start(&na, &config(&na, &nb, web.port, &default_opts()));
    let b = start(&nb, &config(&nb, &na, web.port, &default_opts()));
    let put = |a: &ApiLbha, name: &str, body: &str| {
        a.json("PUT", &format!("/v2/services/haproxy/runtime/servers/{name}?backend=be"), Some(body))
    };

    // The peer runs it before the API answers.
    let (s, body) = put(&a, "s1", r#"{"admin_state":"drain","weight":7}"#);
    assert_eq!(s, 200, "{body}");
    assert_eq!((body["admin_state"].as_str(), body["weight"].as_u64()), (Some("drain"), Some(7)), "{body}");
    let (s, v) = runtime_server(&b, "s1");
    assert_eq!((s, v["admin_state"].as_str(), v["weight"].as_u64()), (200, Some("drain"), Some(7)), "{v}");
    let add = format!(r#"{{"name":"s9","address":"127.0.0.1","port":{}}}"#, web.port);
    let (s, body) = a.json("POST", "/v2/services/haproxy/runtime/servers?backend=be", Some(&add));
    assert_eq!(s, 201, "{body}");
    assert_eq!(runtime_server(&b, "s9").0, 200);
    let (s, body) = put(&a, "s9", r#"{"admin_state":"maint"}"#);
    assert_eq!(s, 200, "{body}");
    let (s, body) = a.json("DELETE", "/v2/services/haproxy/runtime/servers/s9?backend=be", None);
    assert_eq!(s, 204, "{body}");
    assert_eq!(runtime_server(&b, "s9").0, 404);

    // b down: the change applies on a; b, started again, takes what it missed.
    let b_text = b.config_text();
    drop(b);
    let (s, body) = put(&a, "s1", r#"{"admin_state":"maint","weight":3}"#);
    assert_eq!(s, 200, "{body}");
    wait_log(|| a.lbha.log_text(), "applied on this node only");
    let b = start(&nb, &b_text);
    wait_for("b taking the runtime settings", Duration::from_secs(15), || {
        let (_, v) = runtime_server(&b, "s1");
        v["admin_state"] == "maint" && v["weight"] == 3
    });
    assert_eq!(runtime_server(&b, "s9").0, 404);
    wait_for("runtime in sync", Duration::from_secs(10), || status_json(&a)["runtime_relation"] == "in sync");
}
