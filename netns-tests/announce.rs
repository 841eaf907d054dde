//! `[[announce]]` with FRR: a router namespace running zebra + bgpd with multipath BGP, two lbha
//! nodes each with its own zebra + bgpd that redistribute only the connected routes of lbha's
//! device (`redistribute connected route-map`, `match interface lbha-announce`). The router must
//! see one ECMP path per node that can serve, and lose a node's path when its tracked backend goes
//! down, when its lbha is killed (-9) and when it stops.

use crate::bed::{self, Bed, Node, wait_for};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const VIP: &str = "203.0.113.10";
/// The VRRP pair's VIP on the nodes' own segment (192.0.2.0/24).
const RACK_VIP: &str = "192.0.2.200";
pub const ZEBRA: &str = "/usr/lib/frr/zebra";
pub const BGPD: &str = "/usr/lib/frr/bgpd";
const BFDD: &str =
    "bfd\n profile fast\n  detect-multiplier 3\n  receive-interval 100\n  transmit-interval 100\n exit\nexit\n";

/// The directory of one namespace's FRR: configs, pid files, zserv and vty sockets, owned by
/// the `frr` user the daemons run as (FRR's vty sockets need its `frrvty` group).
pub fn frr_dir(bed: &Bed, name: &str, zebra: &str, bgpd: &str) -> PathBuf {
    let d = bed.dir.join(format!("frr-{name}"));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    std::fs::write(d.join("zebra.conf"), zebra).expect("zebra.conf");
    std::fs::write(d.join("bgpd.conf"), bgpd).expect("bgpd.conf");
    std::fs::write(d.join("bfdd.conf"), BFDD).expect("bfdd.conf");
    bed::run(&["chown", "-R", "frr:frr", &bed.dir.display().to_string()]).expect("chown to frr");
    d
}

/// Starts zebra, then bgpd once zebra's socket is there, in the foreground (the bed kills them
/// by PID and removes the namespace at the end, also on failure).
pub fn start_frr(bed: &mut Bed, node: &Node, name: &str, dir: &Path) {
    let d = dir.display().to_string();
    let z = format!("{d}/zserv.api");
    let daemon = |bin: &str, conf: &str, pid: &str| -> Vec<String> {
        [
            bin,
            "-f",
            &format!("{d}/{conf}"),
            "-i",
            &format!("{d}/{pid}"),
            "-z",
            &z,
            "--vty_socket",
            &d,
            "-u",
            "frr",
            "-g",
            "frr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let zebra = daemon(ZEBRA, "zebra.conf", "zebra.pid");
    bed.spawn(node, &format!("zebra-{name}.log"), &zebra.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for(Duration::from_secs(10), || Path::new(&z).exists())
        .unwrap_or_else(|| panic!("zebra of {name} did not start"));
    let mut bfdd = daemon("/usr/lib/frr/bfdd", "bfdd.conf", "bfdd.pid");
    bfdd.extend(["--bfdctl".to_string(), format!("{d}/bfdd.sock")]);
    bed.spawn(node, &format!("bfdd-{name}.log"), &bfdd.iter().map(String::as_str).collect::<Vec<_>>());
    let bgpd = daemon(BGPD, "bgpd.conf", "bgpd.pid");
    bed.spawn(node, &format!("bgpd-{name}.log"), &bgpd.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Fast BGP timers for one neighbour, so sessions come up and fail over within seconds.
pub fn neighbor(ip: &str, asn: u32) -> String {
    format!(
        " neighbor {ip} remote-as {asn}\n neighbor {ip} timers 1 3\n neighbor {ip} timers connect 1\n \
         neighbor {ip} advertisement-interval 0\n neighbor {ip} bfd profile fast\n"
    )
}

fn router_bgpd(nodes: &[(&str, u32)]) -> String {
    let mut s = "hostname r\nrouter bgp 65000\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n \
                 bgp bestpath as-path multipath-relax\n"
        .to_string();
    for (ip, asn) in nodes {
        s.push_str(&neighbor(ip, *asn));
    }
    s.push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n");
    s
}

fn node_bgpd(ip: &str, asn: u32) -> String {
    format!(
        "hostname n{asn}\nrouter bgp {asn}\n bgp router-id {ip}\n no bgp ebgp-requires-policy\n{}\
         address-family ipv4 unicast\n  redistribute connected route-map LBHA\n exit-address-family\n\
         route-map LBHA permit 10\n match interface lbha-announce\n",
        neighbor("192.0.2.1", 65000)
    )
}

/// One vtysh command in `node`'s FRR.
pub fn vtysh(node: &Node, dir: &Path, cmd: &str) -> Result<String, String> {
    bed::run(&["ip", "netns", "exec", &node.ns, "vtysh", "--vty_socket", &dir.display().to_string(), "-c", cmd])
}

/// The next hops the router's FIB has for the VIP, sorted.
fn router_paths(router: &Node, dir: &Path) -> Vec<String> {
    fib_paths(router, dir, &format!("{VIP}/32"))
}

/// The next hops (address, or interface for IPv6 link-local ones) `node`'s FIB has for `prefix`
/// (`A/32` or `A/128`), sorted.
pub fn fib_paths(node: &Node, dir: &Path, prefix: &str) -> Vec<String> {
    let show = if prefix.contains(':') { "show ipv6 route" } else { "show ip route" };
    let out = vtysh(node, dir, &format!("{show} {prefix} json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    let mut ips: Vec<String> = v[prefix]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["selected"] == true)
        .flat_map(|r| r["nexthops"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["fib"] == true)
        .filter_map(|n| n["ip"].as_str().map(str::to_string))
        .collect();
    ips.sort();
    ips
}

fn lb_config() -> String {
    format!(
        r#"[global]
hard_stop_after = "2s"
# One proxy thread: a stall stops everything but the watchdog (the announcer too).
nbthread = 1

[[listen]]
name = "web"
mode = "http"
bind = ["{VIP}:80"]
check = {{ inter = "200ms", rise = 1, fall = 1 }}
timeout = {{ connect = "200ms" }}
servers = [{{ name = "s", addr = "127.0.0.1:8080", check = true }}]

[[announce]]
name = "vip"
address = ["{VIP}"]
track_backend = ["web"]

# One config holds both: a VRRP pair on the nodes' own segment next to the BGP announcement.
[[vrrp_instance]]
name = "rack"
interface = "eth0"
virtual_router_id = 51
priority = 100
version = 3
advert_int = "100ms"
virtual_ipaddress = ["{RACK_VIP}/32"]
"#
    )
}

/// `lbha show announce --json` of the daemon started as `name`: (announced, reason) of the VIP.
fn shown(bed: &Bed, name: &str) -> Option<(bool, String)> {
    shown_addr(bed, name, VIP)
}

/// `lbha show announce --json` of the daemon started as `name`: (announced, reason) of `addr`.
pub fn shown_addr(bed: &Bed, name: &str, addr: &str) -> Option<(bool, String)> {
    let v = show_json(bed, name)?;
    let e = v["vips"].as_array().or(v.as_array())?.iter().find(|e| e["address"] == addr)?;
    Some((e["announced"].as_bool()?, e["reason"].as_str()?.to_string()))
}

/// `lbha show announce --json` of the daemon started as `name`.
pub fn show_json(bed: &Bed, name: &str) -> Option<serde_json::Value> {
    let sock = bed.dir.join(format!("{name}.sock")).display().to_string();
    let out = bed::run(&[env!("CARGO_BIN_EXE_lbha"), "-S", &sock, "show", "announce", "--json"]).ok()?;
    serde_json::from_str(&out).ok()
}

/// The node's backend: a second lbha on 127.0.0.1:8080 answering its name.
pub fn backend(bed: &mut Bed, node: &Node, name: &str) -> usize {
    let cfg = format!(
        "[[listen]]\nname = \"be\"\nmode = \"http\"\nbind = [\"127.0.0.1:8080\"]\n\
         http_request = [{{ return = {{ status = 200, body = \"{name}\\n\" }} }}]\n"
    );
    bed.lbha(node, &format!("be-{name}"), &cfg)
}

/// A GET of the VIP from the router namespace (routed to one of the nodes).
fn get_from(router: &Node) -> Option<String> {
    let ns = router.ns.clone();
    let addr: SocketAddr = format!("{VIP}:80").parse().ok()?;
    std::thread::spawn(move || {
        bed::enter_ns(&ns).ok()?;
        bed::http_get(addr, Duration::from_secs(1))
    })
    .join()
    .ok()
    .flatten()
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn vips_are_announced_by_bgp_per_healthy_node_and_withdrawn() {
    if !bed::root_or_skip("vips_are_announced_by_bgp_per_healthy_node_and_withdrawn") {
        return;
    }
    if !Path::new(ZEBRA).exists() || !Path::new(BGPD).exists() || bed::run(&["id", "frr"]).is_err() {
        eprintln!("skipped: FRR is not installed (Debian: apt-get install frr)");
        return;
    }
    let mut bed = Bed::new("announce", &[("r", 1), ("a", 11), ("b", 12)]);
    let (r, a, b) = (bed.node("r"), bed.node("a"), bed.node("b"));
    let (ip_a, ip_b) = (a.ip.clone(), b.ip.clone());
    let rdir = frr_dir(&bed, "r", "hostname r\n", &router_bgpd(&[(&ip_a, 65011), (&ip_b, 65012)]));
    let adir = frr_dir(&bed, "a", "hostname a\n", &node_bgpd(&ip_a, 65011));
    let bdir = frr_dir(&bed, "b", "hostname b\n", &node_bgpd(&ip_b, 65012));
    start_frr(&mut bed, &r, "r", &rdir);
    start_frr(&mut bed, &a, "a", &adir);
    start_frr(&mut bed, &b, "b", &bdir);
    backend(&mut bed, &a, "a");
    let be_b = backend(&mut bed, &b, "b");
    let lb_a = bed.lbha(&a, "lb-a", &lb_config());
    let lb_b = bed.lbha(&b, "lb-b", &lb_config());
    let both = vec![ip_a.clone(), ip_b.clone()];
    let paths = |want: &[String]| wait_for(Duration::from_secs(40), || router_paths(&r, &rdir) == want);

    // Both nodes serve: the router has an ECMP route over both.
    let t = paths(&both).unwrap_or_else(|| panic!("router paths {:?}, want both", router_paths(&r, &rdir)));
    eprintln!("both nodes announced after {}", bed::ms(t));
    let dev = a.ip(&["-o", "addr", "show", "dev", "lbha-announce"]).expect("a's lbha-announce");
    assert!(dev.contains(&format!(" {VIP}/32")), "node a's device: {dev}");
    let hold = a.ip(&["route", "show", "table", "local", VIP]).unwrap_or_default();
    assert!(hold.contains("dev lo") && hold.contains("proto 250"), "node a's hold: {hold}");
    assert!(get_from(&r).is_some_and(|body| body == "a" || body == "b"), "the VIP answers from the router");
    // The VRRP pair in the same configs: one node holds the rack VIP, and `lbha status` shows
    // the instance and the announcement side by side.
    let holds = |n: &Node| {
        n.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap_or_default().contains(&format!(" {RACK_VIP}/32"))
    };
    wait_for(Duration::from_secs(10), || holds(&a) != holds(&b)).expect("exactly one node holds the VRRP VIP");
    let status = |name: &str| {
        let sock = bed.dir.join(format!("{name}.sock")).display().to_string();
        bed::run(&[env!("CARGO_BIN_EXE_lbha"), "-S", &sock, "status"]).unwrap_or_else(|e| e)
    };
    for name in ["lb-a", "lb-b"] {
        let st = status(name);
        assert!(st.contains("rack") && st.contains("\nAnnounce\n"), "{name}'s status:\n{st}");
        assert!(st.contains(&format!("vip {VIP} protocol 250: announced")), "{name}'s status:\n{st}");
    }
    // Only lbha's routes are redistributed: not the nodes' own connected 192.0.2.0/24.
    let bgp: serde_json::Value =
        serde_json::from_str(&vtysh(&r, &rdir, "show ip bgp json").unwrap_or_default()).unwrap_or_default();
    let prefixes: Vec<&String> = bgp["routes"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(prefixes, [&format!("{VIP}/32")], "router's BGP table");

    // b's backend goes down: b withdraws, a stays.
    bed.term(be_b);
    let t = paths(std::slice::from_ref(&ip_a))
        .unwrap_or_else(|| panic!("router paths {:?}, want a only", router_paths(&r, &rdir)));
    eprintln!("b withdrawn {} after its backend stopped", bed::ms(t));
    assert!(bed.log(lb_b).contains("backend web has no server up"), "b logs why");
    assert_eq!(shown(&bed, "lb-b"), Some((false, "backend web has no server up".to_string())), "show announce on b");
    assert_eq!(shown(&bed, "lb-a"), Some((true, String::new())), "show announce on a");

    // The backend returns: b is announced again.
    backend(&mut bed, &b, "b");
    paths(&both).unwrap_or_else(|| panic!("router paths {:?}, want both again", router_paths(&r, &rdir)));

    // kill -9: b's device dies with it, the kernel deletes its address and tells zebra.
    bed.kill9(lb_b);
    let t = paths(std::slice::from_ref(&ip_a)).unwrap_or_else(|| {
        panic!(
            "router paths {:?} after kill -9 of b; b's device: {:?}; b's zebra: {:?}",
            router_paths(&r, &rdir),
            b.ip(&["addr", "show", "dev", "lbha-announce"]),
            vtysh(&b, &bdir, "show ip route")
        )
    });
    eprintln!("b withdrawn {} after kill -9", bed::ms(t));
    assert!(b.ip(&["link", "show", "lbha-announce"]).is_err(), "b's device outlived it");

    // b returns, then loses its link without a word (no FIN, no BGP notification): the router's
    // BFD session (100 ms x 3) drops it, well before the BGP hold time.
    bed.lbha(&b, "lb-b2", &lb_config());
    paths(&both).unwrap_or_else(|| panic!("router paths {:?}, want both after b restarted", router_paths(&r, &rdir)));
    let bfd_up = || {
        let v: serde_json::Value =
            serde_json::from_str(&vtysh(&r, &rdir, "show bfd peers json").unwrap_or_default()).unwrap_or_default();
        v.as_array().map_or(0, |a| a.iter().filter(|p| p["status"] == "up").count())
    };
    wait_for(Duration::from_secs(20), || bfd_up() == 2)
        .unwrap_or_else(|| panic!("router BFD sessions up: {}", bfd_up()));
    b.ip(&["link", "set", "eth0", "down"]).expect("b's link down");
    let t = paths(std::slice::from_ref(&ip_a))
        .unwrap_or_else(|| panic!("router paths {:?} after b lost its link", router_paths(&r, &rdir)));
    eprintln!("b's path dropped {} after its link went down (BFD 100 ms x 3)", bed::ms(t));

    // a's proxy stalls (its one runtime thread stuck 6 s, HAProxy's `debug dev loop`): the
    // announcer cannot run, so the watchdog's last gasp takes the device down and the router
    // drops a's path while the process lives; once the thread moves again a comes back.
    let sock = bed.dir.join("lb-a.sock");
    let looper = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).map_err(|e| e.to_string())?;
        s.write_all(b"expert-mode on; debug dev loop 6000\n").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(15))).map_err(|e| e.to_string())?;
        let mut all = String::new();
        let _ = s.read_to_string(&mut all);
        Ok::<String, String>(all)
    });
    let t = paths(&[]).unwrap_or_else(|| panic!("router paths {:?} while a stalled", router_paths(&r, &rdir)));
    eprintln!("a's path dropped {} after its proxy stalled", bed::ms(t));
    let _ = looper.join();
    paths(std::slice::from_ref(&ip_a))
        .unwrap_or_else(|| panic!("router paths {:?} after a's stall", router_paths(&r, &rdir)));
    let log = bed.log(lb_a);
    assert!(log.contains("announcement device down") && log.contains("proxy stalled"), "a's log:\n{log}");

    // A reload that removes the VIP withdraws it, then lets it go after hard_stop_after; a reload
    // that brings it back announces it again.
    let cfg = bed.dir.join("lb-a.toml");
    let full = lb_config();
    let without = full.split("[[announce]]").next().unwrap_or_default().to_string();
    std::fs::write(&cfg, &without).expect("rewrite lb-a.toml");
    bed.sighup(lb_a);
    paths(&[]).unwrap_or_else(|| panic!("router paths {:?} after a's reload", router_paths(&r, &rdir)));
    let held = || a.ip(&["route", "show", "table", "local", VIP]).unwrap_or_default().contains("proto 250");
    wait_for(Duration::from_secs(15), || !held()).expect("a lets the removed VIP go");
    std::fs::write(&cfg, &full).expect("rewrite lb-a.toml");
    bed.sighup(lb_a);
    paths(std::slice::from_ref(&ip_a))
        .unwrap_or_else(|| panic!("router paths {:?} after a's 2nd reload", router_paths(&r, &rdir)));
    assert!(held(), "a holds the VIP again");

    // A graceful stop withdraws, drains, then lets the VIP go.
    bed.term(lb_a);
    paths(&[]).unwrap_or_else(|| panic!("router paths {:?} after a stopped", router_paths(&r, &rdir)));
    assert!(!a.ip(&["route", "show", "table", "local"]).unwrap_or_default().contains(VIP), "a still holds the VIP");
    let log = bed.log(lb_a);
    let (w, s) = (log.rfind("announce: withdrew"), log.rfind("stopping: no new connections"));
    assert!(matches!((w, s), (Some(w), Some(s)) if w < s), "withdrawal before drain:\n{log}");
}
