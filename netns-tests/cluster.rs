//! `[cluster]` config sync between two nodes of a pair over the bed's network: a change on lb1 is
//! live on lb2 (latency printed), lb2 down during three changes catches up on return, a real
//! partition (link down) with changes on both sides is detected and the next change refused,
//! and lb2 killed at any point of a sync keeps a whole, valid config. Runtime server changes
//! made while the peer is cut off reach it when it returns; made on both sides, they conflict.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::bed::{self, Bed, Node, VIP, ms, only_on, wait_for};

const KEY: &str = "netns-pair-secret-0123";

pub(crate) fn config(bed: &Bed, me: &Node, name: &str, peer: &Node, peer_name: &str, prio: u8) -> String {
    let dir = bed.dir.display();
    let fp = std::fs::read_to_string(bed.dir.join(format!("{peer_name}.sha256"))).unwrap_or_default();
    format!(
        r#"[global]
state_dir = "{dir}/{name}-state"

[[listen]]
name = "vip"
mode = "http"
bind = ["{VIP}:80"]
http_request = [{{ return = {{ status = 200, body = "pair\n" }} }}]

[[backend]]
name = "be"
mode = "http"
servers = [{{ name = "s1", addr = "203.0.113.10:80" }}, {{ name = "s2", addr = "203.0.113.11:80" }}]

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {prio}
version = 3
advert_int = "100ms"
virtual_ipaddress = ["{VIP}/32"]
unicast_src_ip = "{me_ip}"
unicast_peer = ["{peer_ip}"]

[cluster]
node = "{name}"
bind = "{me_ip}:7946"
peer = {{ name = "{peer_name}", addr = "{peer_ip}:7946", fingerprint = "{fp}" }}
ssl_crt = "{dir}/{name}.pem"
key = "{KEY}"
timeout = "1s"
local_keys = ["global.state_dir"]
"#,
        me_ip = me.ip,
        peer_ip = peer.ip,
    )
}

pub(crate) fn cert(bed: &Bed, name: &str) {
    use std::fmt::Write;
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    std::fs::write(bed.dir.join(format!("{name}.pem")), format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()))
        .unwrap();
    let d = ring::digest::digest(&ring::digest::SHA256, ck.cert.der());
    let hex = d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    std::fs::write(bed.dir.join(format!("{name}.sha256")), hex).unwrap();
}

/// `lbha -S <name>.sock ARGS` from the host (the control socket is a file): (code, stdout, stderr).
fn cli(bed: &Bed, name: &str, args: &[&str]) -> (i32, String, String) {
    let sock = bed.dir.join(format!("{name}.sock"));
    let out = Command::new(env!("CARGO_BIN_EXE_lbha")).arg("-S").arg(&sock).args(args).output().expect("lbha cli");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

fn file(bed: &Bed, name: &str) -> std::path::PathBuf {
    bed.dir.join(format!("{name}.toml"))
}

/// Adds a backend to `name`'s file and reloads it; the reload's result.
fn change(bed: &Bed, name: &str, backend: &str) -> (i32, String, String) {
    let p = file(bed, name);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!("\n[[backend]]\nname = \"{backend}\"\nmode = \"http\"\n"));
    std::fs::write(&p, text).unwrap();
    cli(bed, name, &["reload"])
}

fn has_backend(bed: &Bed, name: &str, backend: &str) -> bool {
    let (_, out, _) = cli(bed, name, &["show", "backends"]);
    out.lines().any(|l| l.trim() == backend)
}

fn relation(bed: &Bed, name: &str) -> String {
    let (_, out, _) = cli(bed, name, &["cluster", "status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["relation"].as_str().map(str::to_string))
        .unwrap_or_default()
}

struct Pair {
    bed: Bed,
    lb1: Node,
    lb2: Node,
    p1: usize,
    p2: usize,
}

fn pair(tag: &str) -> Pair {
    let mut bed = Bed::new(tag, &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    cert(&bed, "lb1");
    cert(&bed, "lb2");
    let c1 = config(&bed, &lb1, "lb1", &lb2, "lb2", 150);
    let c2 = config(&bed, &lb2, "lb2", &lb1, "lb1", 100);
    let p1 = bed.lbha(&lb1, "lb1", &c1);
    let p2 = bed.lbha(&lb2, "lb2", &c2);
    wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 master");
    wait_for(Duration::from_secs(10), || relation(&bed, "lb1") == "in sync").expect("the pair in sync");
    Pair { bed, lb1, lb2, p1, p2 }
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_change_is_live_on_the_peer_and_a_node_that_was_down_catches_up() {
    if !bed::root_or_skip("a_change_is_live_on_the_peer_and_a_node_that_was_down_catches_up") {
        return;
    }
    let mut p = pair("cluster-sync");
    let mut times = Vec::new();
    for i in 0..5 {
        let name = format!("live{i}");
        let t = Instant::now();
        let (code, _, err) = change(&p.bed, "lb1", &name);
        assert_eq!(code, 0, "{err}");
        wait_for(Duration::from_secs(10), || has_backend(&p.bed, "lb2", &name)).expect("the change live on lb2");
        times.push(t.elapsed());
    }
    let shown: Vec<String> = times.iter().map(|d| ms(*d)).collect();
    eprintln!("cluster sync latency (reload on lb1 until live on lb2, 5 changes): {}", shown.join(" "));

    // Both nodes in the status: roles per instance, versions, reachability.
    let (_, out, _) = cli(&p.bed, "lb1", &["cluster", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["nodes"][0]["vrrp"][0]["role"], "MASTER", "{st}");
    assert_eq!(st["nodes"][1]["vrrp"][0]["role"], "BACKUP", "{st}");
    assert_eq!(st["nodes"][1]["reachable"], true, "{st}");
    assert_eq!(st["nodes"][0]["version"], st["nodes"][1]["version"], "{st}");

    // A runtime VIP added on lb1 is recorded on lb2 too (held by whichever node is master).
    let (code, out, err) = cli(&p.bed, "lb1", &["vip", "add", "192.0.2.101/32", "dev", "eth0"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for(Duration::from_secs(10), || cli(&p.bed, "lb2", &["vip", "list"]).1.contains("192.0.2.101"))
        .expect("the runtime VIP on lb2");
    assert!(p.lb1.has_addr("192.0.2.101") && !p.lb2.has_addr("192.0.2.101"));

    // lb2 down during three changes.
    p.bed.kill9(p.p2);
    for n in ["down1", "down2", "down3"] {
        let (code, out, err) = change(&p.bed, "lb1", n);
        assert_eq!(code, 0, "{err}");
        assert!(format!("{out}{err}").contains("applied on this node only"), "{out}{err}");
    }
    let text = std::fs::read_to_string(file(&p.bed, "lb2")).unwrap();
    let t = Instant::now();
    p.p2 = p.bed.lbha(&p.lb2, "lb2", &text);
    wait_for(Duration::from_secs(20), || ["down1", "down2", "down3"].iter().all(|n| has_backend(&p.bed, "lb2", n)))
        .expect("lb2 caught up");
    eprintln!("cluster catch-up: lb2 had all three changes {} after its start", ms(t.elapsed()));
    assert_eq!(relation(&p.bed, "lb2"), "in sync");
    let _ = (&p.lb1, p.p1);
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_partition_with_changes_on_both_sides_is_refused_and_kills_never_leave_a_bad_file() {
    if !bed::root_or_skip("a_partition_with_changes_on_both_sides_is_refused_and_kills_never_leave_a_bad_file") {
        return;
    }
    let mut p = pair("cluster-split");
    p.lb2.ip(&["link", "set", "eth0", "down"]).unwrap();
    let (code, _, err) = change(&p.bed, "lb1", "side1");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = change(&p.bed, "lb2", "side2");
    assert_eq!(code, 0, "{err}");
    p.lb2.ip(&["link", "set", "eth0", "up"]).unwrap();
    wait_for(Duration::from_secs(15), || p.bed.log(p.p1).contains("diverged")).expect("lb1 sees the split");
    assert!(!has_backend(&p.bed, "lb2", "side1") && !has_backend(&p.bed, "lb1", "side2"), "nothing merged");
    // The next change is refused with the reason; the running config stays.
    let (code, _, err) = change(&p.bed, "lb2", "third");
    assert_ne!(code, 0);
    assert!(err.contains("conflict: both nodes changed the config"), "{err}");
    assert!(!has_backend(&p.bed, "lb2", "third") && !has_backend(&p.bed, "lb1", "third"));
    // lb1's config wins; the operator pushes it.
    let (code, out, err) = cli(&p.bed, "lb1", &["cluster", "push", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(has_backend(&p.bed, "lb2", "side1"));

    // lb2 killed at various points of a sync: its file is always whole and valid.
    for (i, delay) in [0u64, 5, 20, 60, 150].into_iter().enumerate() {
        let name = format!("kill{i}");
        let dir = p.bed.dir.clone();
        let reload = std::thread::spawn(move || {
            let sock = dir.join("lb1.sock");
            let p = dir.join("lb1.toml");
            let mut text = std::fs::read_to_string(&p).unwrap();
            text.push_str(&format!("\n[[backend]]\nname = \"{name}\"\nmode = \"http\"\n"));
            std::fs::write(&p, text).unwrap();
            Command::new(env!("CARGO_BIN_EXE_lbha"))
                .arg("-S")
                .arg(&sock)
                .arg("reload")
                .output()
                .map(|o| o.status.success())
        });
        std::thread::sleep(Duration::from_millis(delay));
        p.bed.kill9(p.p2);
        assert!(matches!(reload.join(), Ok(Ok(true))), "lb1 applies its change whatever happens to lb2");
        let out =
            Command::new(env!("CARGO_BIN_EXE_lbha")).args(["check", "-c"]).arg(file(&p.bed, "lb2")).output().unwrap();
        assert!(
            out.status.success(),
            "lb2's file after a kill at {delay} ms: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(file(&p.bed, "lb2")).unwrap();
        p.p2 = p.bed.lbha(&p.lb2, "lb2", &text);
        let want = format!("kill{i}");
        wait_for(Duration::from_secs(20), || has_backend(&p.bed, "lb2", &want)).expect("lb2 catches up after the kill");
    }
    assert_eq!(relation(&p.bed, "lb1"), "in sync");
}

/// `srv_admin_state` and `srv_uweight` of `be/<srv>` on `name`.
fn server(bed: &Bed, name: &str, srv: &str) -> Option<(String, String)> {
    let (_, out, _) = cli(bed, name, &["cmd", "show servers state be"]);
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.get(3) == Some(&srv))
        .and_then(|w| Some((w.get(6)?.to_string(), w.get(7)?.to_string())))
}

fn has_server(bed: &Bed, name: &str, srv: &str, admin: &str, weight: &str) -> bool {
    server(bed, name, srv) == Some((admin.to_string(), weight.to_string()))
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn runtime_changes_made_while_the_peer_was_cut_off_reach_it_and_conflicts_are_refused() {
    if !bed::root_or_skip("runtime_changes_made_while_the_peer_was_cut_off_reach_it_and_conflicts_are_refused") {
        return;
    }
    let p = pair("cluster-rt");
    // Live: a change on lb1 runs on lb2 before lb1 answers.
    let (code, out, err) = cli(&p.bed, "lb1", &["cmd", "set weight be/s2 9"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(has_server(&p.bed, "lb2", "s2", "0", "9"), "{:?}", server(&p.bed, "lb2", "s2"));

    // lb2 cut off: the changes apply on lb1 only, and say so.
    p.lb2.ip(&["link", "set", "eth0", "down"]).unwrap();
    for c in ["disable server be/s1", "set weight be/s1 30", "set server be/s2 state drain"] {
        let (code, out, err) = cli(&p.bed, "lb1", &["cmd", c]);
        assert_eq!(code, 0, "{c}: {out}{err}");
        assert!(out.contains("applied on this node only"), "{c}: {out}");
    }
    assert!(has_server(&p.bed, "lb2", "s1", "0", "1") && has_server(&p.bed, "lb2", "s2", "0", "9"));
    // Back: lb2, which kept running, takes all three.
    p.lb2.ip(&["link", "set", "eth0", "up"]).unwrap();
    let t = Instant::now();
    wait_for(Duration::from_secs(20), || {
        has_server(&p.bed, "lb2", "s1", "1", "30") && has_server(&p.bed, "lb2", "s2", "8", "9")
    })
    .unwrap_or_else(|| panic!("lb2 caught up: {:?} {:?}", server(&p.bed, "lb2", "s1"), server(&p.bed, "lb2", "s2")));
    eprintln!("runtime catch-up: lb2 had the three changes {} after its link came back", ms(t.elapsed()));
    wait_for(Duration::from_secs(10), || runtime_relation(&p.bed, "lb2") == "in sync").expect("runtime in sync");

    // A partition with runtime changes on both sides: nothing merged, the next change refused.
    p.lb2.ip(&["link", "set", "eth0", "down"]).unwrap();
    assert_eq!(cli(&p.bed, "lb1", &["cmd", "set weight be/s1 41"]).0, 0);
    assert_eq!(cli(&p.bed, "lb2", &["cmd", "set weight be/s2 42"]).0, 0);
    p.lb2.ip(&["link", "set", "eth0", "up"]).unwrap();
    wait_for(Duration::from_secs(15), || p.bed.log(p.p1).contains("runtime settings of lb1 and lb2 diverged"))
        .expect("lb1 sees the runtime split");
    assert!(has_server(&p.bed, "lb2", "s1", "1", "30") && has_server(&p.bed, "lb1", "s2", "8", "9"), "nothing merged");
    let (code, out, err) = cli(&p.bed, "lb2", &["cmd", "set weight be/s1 43"]);
    assert_ne!(code, 0, "{out}");
    assert!(format!("{out}{err}").contains("conflict: both nodes changed"), "{out}{err}");
    assert!(has_server(&p.bed, "lb2", "s1", "1", "30") && has_server(&p.bed, "lb1", "s1", "1", "41"));
    // lb1's settings win.
    let (code, out, err) = cli(&p.bed, "lb1", &["cluster", "push", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(has_server(&p.bed, "lb2", "s1", "1", "41"), "{:?}", server(&p.bed, "lb2", "s1"));
    assert_eq!(runtime_relation(&p.bed, "lb1"), "in sync");
    let _ = (&p.lb1, p.p2);
}

fn runtime_relation(bed: &Bed, name: &str) -> String {
    let (_, out, _) = cli(bed, name, &["cluster", "status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["runtime_relation"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The node that starts a sync (lb1, whose reload pushes the change) killed at various points
/// of it: lb2 keeps a whole, valid file, takes the VIP, and once lb1 is back on its file both
/// hold the change and are in sync.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn killing_the_node_that_starts_a_sync_never_leaves_a_bad_file() {
    if !bed::root_or_skip("killing_the_node_that_starts_a_sync_never_leaves_a_bad_file") {
        return;
    }
    let mut p = pair("cluster-killsrc");
    for (i, delay) in [0u64, 5, 20, 60, 150].into_iter().enumerate() {
        let name = format!("src{i}");
        let dir = p.bed.dir.clone();
        let reload = std::thread::spawn(move || {
            let p = dir.join("lb1.toml");
            let mut text = std::fs::read_to_string(&p).unwrap();
            text.push_str(&format!("\n[[backend]]\nname = \"{name}\"\nmode = \"http\"\n"));
            std::fs::write(&p, text).unwrap();
            Command::new(env!("CARGO_BIN_EXE_lbha")).arg("-S").arg(dir.join("lb1.sock")).arg("reload").output()
        });
        std::thread::sleep(Duration::from_millis(delay));
        p.bed.kill9(p.p1);
        // The reload's own outcome does not matter: lb1 died under it.
        let _ = reload.join();
        let out =
            Command::new(env!("CARGO_BIN_EXE_lbha")).args(["check", "-c"]).arg(file(&p.bed, "lb2")).output().unwrap();
        assert!(
            out.status.success(),
            "lb2's file after lb1's kill at {delay} ms: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // (lb1's address stays on its link: a SIGKILL leaves no time to remove it.)
        wait_for(Duration::from_secs(10), || p.lb2.has_addr(VIP)).expect("lb2 takes the VIP");
        assert!(has_backend(&p.bed, "lb2", "be"), "lb2 still runs its config: {}", p.bed.log(p.p2));
        let text = std::fs::read_to_string(file(&p.bed, "lb1")).unwrap();
        p.p1 = p.bed.lbha(&p.lb1, "lb1", &text);
        let want = format!("src{i}");
        wait_for(Duration::from_secs(20), || {
            has_backend(&p.bed, "lb1", &want)
                && has_backend(&p.bed, "lb2", &want)
                && relation(&p.bed, "lb1") == "in sync"
        })
        .unwrap_or_else(|| {
            p.bed.dump_logs();
            panic!(
                "after lb1's kill at {delay} ms and its restart: lb2 has {want}: {}, relation {:?}",
                has_backend(&p.bed, "lb2", &want),
                relation(&p.bed, "lb1")
            )
        });
        wait_for(Duration::from_secs(10), || only_on(&p.lb1, &p.lb2)).expect("lb1 master again");
    }
}

/// A peer with another shared key: lb2 refuses lb1's sync and says why, lb1 logs the refusal,
/// and the change stays on lb1 only.
#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn a_sync_with_the_wrong_key_is_rejected_and_logged() {
    if !bed::root_or_skip("a_sync_with_the_wrong_key_is_rejected_and_logged") {
        return;
    }
    let mut bed = Bed::new("cluster-key", &[("lb1", 11), ("lb2", 12)]);
    let (lb1, lb2) = (bed.node("lb1"), bed.node("lb2"));
    cert(&bed, "lb1");
    cert(&bed, "lb2");
    let c1 = config(&bed, &lb1, "lb1", &lb2, "lb2", 150);
    let c2 = config(&bed, &lb2, "lb2", &lb1, "lb1", 100).replace(KEY, "another-netns-secret-987");
    let p1 = bed.lbha(&lb1, "lb1", &c1);
    let p2 = bed.lbha(&lb2, "lb2", &c2);
    wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 master: VRRP does not need the key");
    let (code, out, err) = change(&bed, "lb1", "nope");
    assert_eq!(code, 0, "{out}{err}");
    assert!(has_backend(&bed, "lb1", "nope"));
    wait_for(Duration::from_secs(10), || bed.log(p2).contains("rejected a sync connection"))
        .unwrap_or_else(|| panic!("lb2 logs the refusal:\n{}", bed.log(p2)));
    assert!(bed.log(p2).contains("shared key differs"), "{}", bed.log(p2));
    wait_for(Duration::from_secs(10), || bed.log(p1).contains("wrong shared key"))
        .unwrap_or_else(|| panic!("lb1 logs why its sync failed:\n{}", bed.log(p1)));
    assert!(!has_backend(&bed, "lb2", "nope"), "nothing crossed with the wrong key");
    assert_ne!(relation(&bed, "lb1"), "in sync");
}
