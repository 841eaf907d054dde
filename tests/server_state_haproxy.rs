//! `show servers state` and tracked maintenance compared with HAProxy 2.6 on one haproxy.cfg:
//! the columns of servers with `id`, `cookie`, `backup`, `weight` and `disabled` byte for byte,
//! and the admin-state bits and stats status of servers tracking one put in maintenance or drain
//! (HAProxy's inherited `IMAINT`/`IDRAIN`, "MAINT (via B/S)"). Then lbha alone: what tracking
//! inherits survives a reload and a restart with `server_state_file`, and the Data Plane API's
//! runtime server shows it.

mod api_support;
mod common;
use api_support::ApiLbha;
use common::hand_checked::HandChecked;
use common::*;
use std::net::TcpListener;
use std::path::Path;

/// The config, with HAProxy's stats socket at `sock` (lbha has its own from the harness).
/// `chk` accepts the checks of `api/t` (connections wait in the backlog; no traffic goes to the
/// other servers, whose ports are never used).
fn cfg(sock: Option<&Path>, port: u16, chk: u16) -> String {
    let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
    format!(
        "global\n{stats}\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend web\n\
         backend web\n    id 40\n    cookie SRV insert\n\
         \x20   server a 127.0.0.1:9 id 7 cookie ca weight 3\n\
         \x20   server b 127.0.0.1:9 backup cookie cb\n\
         \x20   server c 127.0.0.1:9 weight 0 disabled cookie cc\n\
         \x20   server f 127.0.0.1:9 weight 0 cookie cf\n\
         \x20   server g 127.0.0.1:9 cookie cg weight 256 id 3\n\
         backend api\n\
         \x20   server t 127.0.0.1:{chk} check inter 60s\n\
         \x20   server d 127.0.0.1:9 track api/t\n\
         \x20   server e 127.0.0.1:9 track api/d\n\
         backend probes\n\
         \x20   server x 127.0.0.1:9 check inter 60s port {chk} addr 127.0.0.1\n\
         \x20   server y 127.0.0.1:9 check inter 60s port {chk}\n\
         \x20   server z 127.0.0.1:9 agent-check agent-port {chk} agent-addr 127.0.0.1 agent-inter 60s\n"
    )
}

/// The lines of backend `be` in a `show servers state` answer, split in fields, the time since
/// the last change left out (it differs by when each process started and changed).
fn lines(state: &str, be: &str) -> Vec<Vec<String>> {
    state
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == be)
        .map(|mut f| {
            f[9] = "T".into();
            f
        })
        .collect()
}

/// Per server of backend `api`: name and `srv_admin_state`.
fn admin_bits(state: &str) -> Vec<(String, String)> {
    lines(state, "api").into_iter().map(|f| (f[3].clone(), f[6].clone())).collect()
}

/// `show stat` status of `backend/server`.
fn stat_status(stat: &str, be: &str, sv: &str) -> String {
    stat.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.len() > 17 && f[0] == be && f[1] == sv)
        .map(|f| f[17].to_string())
        .unwrap_or_else(|| panic!("no {be}/{sv} in:\n{stat}"))
}

#[test]
fn servers_state_and_tracked_maintenance_match_haproxy() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let chk = TcpListener::bind("127.0.0.1:0").unwrap();
    let chk_port = chk.local_addr().unwrap().port();
    let hdir = TempDir::new("srvstate-h");
    let hsock = hdir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport, chk_port), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport, chk_port), &[lport]);
    let both = |cmd: &str| (ask_socket(&hsock, cmd), l.ctl(&[cmd]));

    let (h, m) = both("show servers state");
    assert_eq!(h.lines().take(2).collect::<Vec<_>>(), m.lines().take(2).collect::<Vec<_>>());
    assert_eq!(h.lines().count(), m.lines().count(), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(lines(&h, "web"), lines(&m, "web"), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(admin_bits(&h), admin_bits(&m));
    // Check and agent targets (`srv_use_ssl` to `srv_agent_port`): HAProxy's `addr` and `port`
    // are the agent's too.
    let targets = |s: &str| lines(s, "probes").into_iter().map(|f| f[20..].join(" ")).collect::<Vec<_>>();
    assert_eq!(targets(&h), targets(&m), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(targets(&m)[0], format!("0 {chk_port} 127.0.0.1 127.0.0.1 {chk_port}"));

    // Forced maintenance, an enabled `disabled` server, and maintenance passed down a chain.
    for cmd in
        ["set server web/a state maint", "disable server web/b", "enable server web/c", "set server api/t state maint"]
    {
        let (h, m) = both(cmd);
        assert_eq!(h, m, "{cmd}");
    }
    let (h, m) = both("show servers state");
    assert_eq!(lines(&h, "web"), lines(&m, "web"), "--- haproxy\n{h}\n--- lbha\n{m}");
    let want: Vec<(String, String)> = [("t", "1"), ("d", "2"), ("e", "2")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(admin_bits(&h), want, "{h}");
    assert_eq!(admin_bits(&m), want, "{m}");
    let (hs, ms) = both("show stat");
    for (sv, via) in [("d", "MAINT (via api/t)"), ("e", "MAINT (via api/d)"), ("t", "MAINT")] {
        assert_eq!(stat_status(&hs, "api", sv), via);
        assert_eq!(stat_status(&ms, "api", sv), via);
    }

    // A tracker's own drain, under and after the inherited maintenance.
    for (cmd, want) in [
        ("set server api/d state drain", [("t", "1"), ("d", "10"), ("e", "18")]),
        ("set server api/t state ready", [("t", "0"), ("d", "8"), ("e", "16")]),
        ("set server api/d state ready", [("t", "0"), ("d", "0"), ("e", "0")]),
        ("disable server api/d", [("t", "0"), ("d", "1"), ("e", "2")]),
        ("set server api/e state maint", [("t", "0"), ("d", "1"), ("e", "3")]),
        ("enable server api/d", [("t", "0"), ("d", "0"), ("e", "1")]),
    ] {
        both(cmd);
        let (h, m) = both("show servers state api");
        let want: Vec<(String, String)> = want.map(|(a, b)| (a.into(), b.into())).into();
        assert_eq!(admin_bits(&h), want, "haproxy after {cmd}:\n{h}");
        assert_eq!(admin_bits(&m), want, "lbha after {cmd}:\n{m}");
    }
    let (hs, ms) = both("show stat");
    assert_eq!(stat_status(&hs, "api", "e"), "MAINT");
    assert_eq!(stat_status(&ms, "api", "e"), "MAINT");
    drop(chk);
}

/// A tracker takes the maintenance of the server it tracks and keeps it across a reload and a
/// restart (the state file holds the tracked server's forced maintenance; the tracker's
/// inherited bit is computed again, as HAProxy does); the API's runtime server says `maint`,
/// and the tracker returns to its own state when the tracked server leaves maintenance.
#[test]
fn inherited_maintenance_survives_reload_and_restart() {
    let chk = TcpListener::bind("127.0.0.1:0").unwrap();
    let chk_port = chk.local_addr().unwrap().port();
    let fe = free_port();
    let keep = TempDir::new("track-state");
    let state = keep.0.join("server-state");
    let api = ApiLbha::start(&format!(
        "[global]\nserver_state_file = \"{}\"\n\n\
         [[backend]]\nname = \"be\"\nservers = [\n\
         {{ name = \"t\", addr = \"127.0.0.1:{chk_port}\", check = true }},\n\
         {{ name = \"d\", addr = \"127.0.0.1:9\", track = \"t\" }},\n\
         {{ name = \"o\", addr = \"127.0.0.1:9\" }},\n]\n\n\
         [[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"be\"\n",
        state.display()
    ));
    let bits = |l: &Lbha| -> Vec<String> {
        lines(&l.ctl(&["show servers state be"]), "be").into_iter().map(|f| f[6].clone()).collect()
    };
    let rs = "/v2/services/haproxy/runtime/servers";
    assert_eq!(api.lbha.ctl(&["set server be/t state maint"]), "\n");
    assert_eq!(bits(&api.lbha), ["1", "2", "0"]);
    let (s, v) = api.json("GET", &format!("{rs}/d?backend=be"), None);
    assert_eq!((s, v["admin_state"].as_str()), (200, Some("maint")), "{v}");
    // The operator readies the tracker: it stays in the maintenance it inherits.
    assert_eq!(api.lbha.ctl(&["set server be/d state ready"]), "\n");
    assert_eq!(bits(&api.lbha), ["1", "2", "0"]);
    assert!(api.lbha.ctl(&["reload"]).starts_with("Success=1"));
    assert_eq!(bits(&api.lbha), ["1", "2", "0"]);
    let api = api.restart();
    assert_eq!(bits(&api.lbha), ["1", "2", "0"], "{}", api.lbha.log_text());
    let (s, v) = api.json("GET", &format!("{rs}/d?backend=be"), None);
    assert_eq!((s, v["admin_state"].as_str()), (200, Some("maint")), "{v}");
    // Maintenance through the API passes down too, and ends with the tracked server's.
    let (s, _) = api.json("PUT", &format!("{rs}/t?backend=be"), Some(r#"{"admin_state":"ready"}"#));
    assert_eq!(s, 200);
    assert_eq!(bits(&api.lbha), ["0", "0", "0"]);
    let (s, _) = api.json("PUT", &format!("{rs}/t?backend=be"), Some(r#"{"admin_state":"drain"}"#));
    assert_eq!(s, 200);
    assert_eq!(bits(&api.lbha), ["8", "16", "0"]);
    let (s, v) = api.json("GET", &format!("{rs}/d?backend=be"), None);
    assert_eq!((s, v["admin_state"].as_str()), (200, Some("drain")), "{v}");
    drop(chk);
}

/// The runtime `show servers state` answer is HAProxy's to the line (no comment of lbha's), while
/// the `server_state_file` lbha writes carries a comment line after the header that tells it
/// from what earlier lbha versions wrote; HAProxy 2.6 still loads that file with
/// `server-state-file`: a forced maintenance, an operator's enabling of a `disabled` server and
/// a runtime weight come back as lbha had them.
#[test]
fn haproxy_loads_the_marked_state_file() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let chk = TcpListener::bind("127.0.0.1:0").unwrap();
    let chk_port = chk.local_addr().unwrap().port();
    let lport = free_port();
    let ldir = TempDir::new("srvstate-lbha");
    let lstate = ldir.0.join("state");
    let with_file = |cfg: String, file: &Path| {
        cfg.replacen("global\n", &format!("global\n    server-state-file {}\n", file.display()), 1).replacen(
            "defaults\n",
            "defaults\n    load-server-state-from-file global\n",
            1,
        )
    };
    let l = Lbha::start_haproxy(&with_file(cfg(None, lport, chk_port), &lstate), &[lport]);
    for cmd in ["set server web/a state maint", "enable server web/c", "set server web/g weight 7"] {
        l.ctl(&[cmd]);
    }
    let m = l.ctl(&["show servers state"]);
    let comments: Vec<&str> = m.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(comments.len(), 1, "only HAProxy's header:\n{m}");
    let file = std::fs::read_to_string(&lstate).unwrap();
    assert_eq!(file.lines().nth(2), Some("# lbha: srv_admin_state as HAProxy 2.6"), "{file}");
    let count = |s: &str| s.lines().filter(|l| !l.is_empty()).count();
    assert_eq!(count(&file.replacen("# lbha: srv_admin_state as HAProxy 2.6\n", "", 1)), count(&m), "{file}\n{m}");
    let hdir = TempDir::new("srvstate-load");
    let state = hdir.write("state", &file);
    let hsock = hdir.0.join("stats.sock");
    let hport = free_port();
    let (_h, _hd) = haproxy(&with_file(cfg(Some(&hsock), hport, chk_port), &state), hport);
    let h = ask_socket(&hsock, "show servers state web");
    // Name, srv_admin_state, srv_uweight.
    let kept = |s: &str| lines(s, "web").into_iter().map(|f| format!("{} {} {}", f[3], f[6], f[7])).collect::<Vec<_>>();
    assert_eq!(kept(&h), kept(&m), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(kept(&h), ["a 1 3", "b 0 1", "c 4 0", "f 0 0", "g 0 7"].map(String::from).to_vec(), "{h}");
    drop(chk);
}

/// The check columns HAProxy's checks move: op state, admin state, `srv_check_status`,
/// `srv_check_health`, `srv_check_state` (7 while a probe is in flight, as the test holds one
/// at every step).
fn check_columns(state: &str, be: &str) -> Vec<String> {
    lines(state, be)
        .into_iter()
        .map(|f| format!("{} op={} adm={} st={} h={} cs={}", f[3], f[5], f[6], f[10], f[12], f[13]))
        .collect()
}

/// `srv_check_health` at every step of rise and fall and around maintenance, as HAProxy 2.6
/// counts it (`0..rise+fall-1`, up from `rise`; 0 on entering maintenance, `rise` on leaving
/// it with checks, and 0 kept by a server without checks).
#[test]
fn check_health_follows_haproxy_through_rise_fall_and_maintenance() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let (mut hc, mut lc) = (HandChecked::start(), HandChecked::start());
    let cfg = |sock: Option<&Path>, port: u16, chk: u16| {
        let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
        format!(
            "global\n{stats}\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout check 30s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend hc\n\
             backend hc\n    option httpchk\n\
             \x20   server s 127.0.0.1:{chk} check inter 100ms rise 3 fall 4\n\
             \x20   server n 127.0.0.1:9\n\
             \x20   server t 127.0.0.1:9 track s\n"
        )
    };
    let hdir = TempDir::new("chkhealth-h");
    let hsock = hdir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport, hc.port), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport, lc.port), &[lport]);
    let statuses = std::cell::RefCell::new(Vec::new());
    let compare = |step: &str| {
        let (h, m) = (ask_socket(&hsock, "show servers state hc"), l.ctl(&["show servers state hc"]));
        assert_eq!(check_columns(&h, "hc"), check_columns(&m, "hc"), "after {step}\n--- haproxy\n{h}\n--- lbha\n{m}");
        // The stats status word with its counter ("UP 1/4", "DOWN 2/3"), checked server,
        // unchecked one and tracker.
        let (hs, ms) = (ask_socket(&hsock, "show stat"), l.ctl(&["show stat"]));
        let words = |st: &str| ["s", "n", "t"].map(|sv| stat_status(st, "hc", sv)).join(",");
        assert_eq!(words(&hs), words(&ms), "status after {step}");
        statuses.borrow_mut().push(words(&ms));
        check_columns(&m, "hc")[0].clone()
    };
    let mut seen = Vec::new();
    for step in ["200", "500", "500", "500", "500", "200", "200", "500", "200", "200", "200", "500", "200"] {
        let status = step.parse().unwrap();
        hc.answer(status);
        lc.answer(status);
        seen.push(compare(step).split(" h=").nth(1).unwrap().split(' ').next().unwrap().to_string());
    }
    // Up at 3 of 6, down under 3, straight to the top at `rise` successes.
    assert_eq!(seen, ["6", "5", "4", "3", "0", "1", "2", "0", "1", "2", "6", "5", "6"]);
    let words: Vec<String> = statuses.borrow().iter().map(|w| w.split(',').next().unwrap().to_string()).collect();
    #[rustfmt::skip]
    assert_eq!(words, ["UP", "UP 3/4", "UP 2/4", "UP 1/4", "DOWN", "DOWN 1/3", "DOWN 2/3", "DOWN", "DOWN 1/3",
        "DOWN 2/3", "UP", "UP 3/4", "UP"]);
    assert_eq!(statuses.borrow()[1], "UP 3/4,no check,UP 3/4");
    for cmd in [
        "set server hc/s state drain",
        "set server hc/n state drain",
        "set server hc/s state ready",
        "set server hc/n state ready",
        "set server hc/s state maint",
        "set server hc/n state maint",
        "set server hc/s state ready",
        "set server hc/n state ready",
    ] {
        let (h, m) = (ask_socket(&hsock, cmd), l.ctl(&[cmd]));
        assert_eq!(h, m, "{cmd}");
        compare(cmd);
    }
    // The check in progress since before the maintenance counts once it is over.
    for status in [200, 500] {
        hc.answer(status);
        lc.answer(status);
        compare(&status.to_string());
    }
    let last = compare("the end");
    assert!(last.contains(" h=5 "), "{last}");
    // Drained while going down, and NOLB forced by hand on a checked server and on one without
    // checks (whose tracker follows).
    for cmd in [
        "set server hc/s state drain",
        "set server hc/s health stopping",
        "set server hc/n health stopping",
        "set server hc/s state ready",
    ] {
        let (h, m) = (ask_socket(&hsock, cmd), l.ctl(&[cmd]));
        assert_eq!(h, m, "{cmd}");
        compare(cmd);
    }
    hc.answer(500);
    lc.answer(500);
    compare("500 under NOLB");
    let all = statuses.borrow().join("\n");
    for w in ["DRAIN 3/4", "MAINT (via hc/s)", "NOLB 3/4", "UP 1/4"] {
        assert!(all.contains(w), "no {w} in:\n{all}");
    }
}

/// A checked server without an address (`init-addr none`: HAProxy's `RMAINT`, "MAINT
/// (resolution)") puts the servers tracking it, down the chain, in maintenance (`IMAINT`), as
/// HAProxy 2.6 does; in lbha they leave it when the server gets an address.
#[test]
fn a_server_without_an_address_passes_maintenance_to_its_trackers() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let cfg = |sock: Option<&Path>, port: u16| {
        let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
        format!(
            "global\n{stats}\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend rb\n\
             backend rb\n\
             \x20   server r nosuchhost.invalid:80 init-addr none check inter 1h\n\
             \x20   server t 127.0.0.1:9 track r\n\
             \x20   server u 127.0.0.1:9 track rb/t\n\
             \x20   server o 127.0.0.1:9\n"
        )
    };
    let hdir = TempDir::new("rmaint-h");
    let hsock = hdir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport), &[lport]);
    // Address, op and admin state, check status, result, health and state.
    let cols = |s: &str| {
        lines(s, "rb")
            .into_iter()
            .map(|f| format!("{} {} {} {} {}", f[3], f[4], f[5], f[6], f[10..14].join(" ")))
            .collect::<Vec<_>>()
    };
    let (h, m) = (ask_socket(&hsock, "show servers state rb"), l.ctl(&["show servers state rb"]));
    assert_eq!(cols(&h), cols(&m), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(cols(&m)[..3], ["r - 0 32 1 0 0 14", "t 127.0.0.1 0 2 1 0 0 0", "u 127.0.0.1 0 2 1 0 0 0"], "{m}");
    let (hs, ms) = (ask_socket(&hsock, "show stat"), l.ctl(&["show stat"]));
    for (sv, want) in
        [("r", "MAINT (resolution)"), ("t", "MAINT (via rb/r)"), ("u", "MAINT (via rb/t)"), ("o", "no check")]
    {
        assert_eq!(stat_status(&hs, "rb", sv), want);
        assert_eq!(stat_status(&ms, "rb", sv), want);
    }
    // An address ends the maintenance down the chain (HAProxy 2.6 refuses `set server addr` on
    // a server that never had one).
    let chk = TcpListener::bind("127.0.0.1:0").unwrap();
    let chk_port = chk.local_addr().unwrap().port();
    l.ctl(&[&format!("set server rb/r addr 127.0.0.1 port {chk_port}")]);
    let m = l.ctl(&["show servers state rb"]);
    let bits: Vec<String> = lines(&m, "rb").into_iter().map(|f| format!("{} {}", f[3], f[6])).collect();
    assert_eq!(bits, ["r 0", "t 0", "u 0", "o 0"], "{m}");
    let ms = l.ctl(&["show stat"]);
    // Checked and just out of maintenance: at `rise`, one failure from down, as HAProxy shows it
    // (or further up when its first check already passed).
    assert!(["UP 1/3", "UP 2/3", "UP"].contains(&stat_status(&ms, "rb", "t").as_str()), "{ms}");
    drop(chk);
}

/// `srv_fqdn` and a `rise` without `check`, as HAProxy 2.6 shows them: the host name a server
/// was configured by (a plain server, a template, one without an address yet), kept across
/// `set server addr`, `-` for an address; `srv_check_health` starts at `rise` with or without
/// checks (0 for a server without an address).
#[test]
fn fqdn_and_rise_without_check_match_haproxy() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let cfg = |sock: Option<&Path>, port: u16| {
        let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
        format!(
            "global\n{stats}\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend nm\n\
             backend nm\n\
             \x20   server a localhost:9\n\
             \x20   server d 127.0.0.1:9 rise 5\n\
             \x20   server e 127.0.0.1:9 rise 4 fall 7\n\
             \x20   server i 127.0.0.1:9\n\
             \x20   server h nosuchhost.invalid:9 init-addr none rise 3\n\
             \x20   server-template t 2 localhost:9 init-addr none\n\
             \x20   server k 127.0.0.1:9 agent-check agent-port 9 agent-inter 1h rise 4\n"
        )
    };
    let hdir = TempDir::new("fqdn-h");
    let hsock = hdir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport), &[lport]);
    // Name, address, health, agent state, fqdn, port.
    let cols = |s: &str| {
        lines(s, "nm")
            .into_iter()
            .map(|f| format!("{} {} {} {} {} {}", f[3], f[4], f[12], f[14], f[17], f[18]))
            .collect::<Vec<_>>()
    };
    let (h, m) = (ask_socket(&hsock, "show servers state nm"), l.ctl(&["show servers state nm"]));
    assert_eq!(cols(&h), cols(&m), "--- haproxy\n{h}\n--- lbha\n{m}");
    #[rustfmt::skip]
    assert_eq!(cols(&m), ["a 127.0.0.1 2 0 localhost 9", "d 127.0.0.1 5 0 - 9", "e 127.0.0.1 4 0 - 9",
        "i 127.0.0.1 2 0 - 9", "h - 0 0 nosuchhost.invalid 9", "t1 - 0 0 localhost 9", "t2 - 0 0 localhost 9",
        "k 127.0.0.1 4 22 - 9"], "{m}");
    // The agent's state bits lose CHK_ST_ENABLED with `disable agent`, not with maintenance.
    for cmd in [
        "set server nm/a addr 127.0.0.2 port 10",
        "set server nm/i addr 127.0.0.3",
        "disable agent nm/k",
        "set server nm/d state maint",
    ] {
        let (h, m) = (ask_socket(&hsock, cmd), l.ctl(&[cmd]));
        assert_eq!(h, m, "{cmd}");
    }
    let (h, m) = (ask_socket(&hsock, "show servers state nm"), l.ctl(&["show servers state nm"]));
    assert_eq!(cols(&h), cols(&m), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(cols(&m)[0], "a 127.0.0.2 2 0 localhost 10", "{m}");
    assert_eq!(cols(&m)[7], "k 127.0.0.1 4 18 - 9", "{m}");
    // The name and the address set at runtime survive a reload.
    assert!(l.ctl(&["reload"]).starts_with("Success=1"));
    let m = l.ctl(&["show servers state nm"]);
    assert_eq!(cols(&h), cols(&m), "after a reload\n--- haproxy\n{h}\n--- lbha\n{m}");
}

/// A server started without an address (`init-addr none`) that the resolvers then give one
/// leaves HAProxy's resolution maintenance as any maintenance: its time since the last change
/// restarts (younger than a server that never changed) and its counter is HAProxy's.
#[test]
fn an_address_from_dns_restarts_the_time_since_the_last_change() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    if !common::dnsmasq::installed() {
        return;
    }
    let dir = TempDir::new("dnschg");
    let hosts = dir.write("hosts", "127.0.0.9 ready.test\n");
    let dns_port = free_port();
    let dm = common::dnsmasq::Dnsmasq::start(&dir.0, &hosts, dns_port);
    dm.wait_for("ready.test", false, &["127.0.0.9"]);
    let chk = TcpListener::bind("127.0.0.1:0").unwrap();
    let chk_port = chk.local_addr().unwrap().port();
    let cfg = |sock: Option<&Path>, port: u16| {
        let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
        format!(
            "global\n{stats}\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             resolvers dns\n    nameserver n1 127.0.0.1:{dns_port}\n    hold valid 1s\n    timeout resolve 1s\n    timeout retry 1s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend rb\n\
             backend rb\n\
             \x20   server r app.test:{chk_port} resolvers dns init-addr none check inter 1h\n\
             \x20   server u app2.test:{chk_port} resolvers dns init-addr none\n\
             \x20   server o 127.0.0.1:9\n"
        )
    };
    let hsock = dir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport), &[lport]);
    let h_state = || ask_socket(&hsock, "show servers state rb");
    let l_state = || l.ctl(&["show servers state rb"]);
    // Per server: address, and seconds since the last change.
    let facts = |s: &str| -> Vec<(String, u64)> {
        s.lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f.len() > 9 && f[1] == "rb")
            .map(|f| (f[4].to_string(), f[9].parse().unwrap()))
            .collect()
    };
    // Both have run a while with no address for `r` and `u`.
    for state in [&h_state as &dyn Fn() -> String, &l_state] {
        let mut waited = 0;
        while facts(&state())[2].1 < 2 {
            assert!(waited < 100, "no change time of 2 s within 10 s:\n{}", state());
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        }
        assert_eq!(facts(&state())[0].0, "-", "{}", state());
    }
    std::fs::write(&hosts, "127.0.0.9 ready.test\n127.0.0.1 app.test\n127.0.0.1 app2.test\n").unwrap();
    dm.reload();
    dm.wait_for("app2.test", false, &["127.0.0.1"]);
    for (who, state) in [("haproxy", &h_state as &dyn Fn() -> String), ("lbha", &l_state)] {
        let mut waited = 0;
        while facts(&state())[..2].iter().any(|f| f.0 == "-") {
            assert!(waited < 150, "{who}: no address from DNS within 15 s:\n{}", state());
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        }
        let f = facts(&state());
        assert!(f[0].1 < f[2].1 && f[1].1 < f[2].1, "{who}: the change time did not restart:\n{}", state());
    }
    // The unchecked server's op state, admin state and counter (the checked one's moves with
    // its first check, whose time differs between the two).
    let cols = |s: &str| {
        lines(s, "rb").into_iter().map(|f| format!("{} {} {} {}", f[3], f[5], f[6], f[12])).collect::<Vec<_>>()
    };
    let (h, m) = (h_state(), l_state());
    assert_eq!(cols(&h)[1..], cols(&m)[1..], "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(cols(&m)[1], "u 2 0 0", "{m}");
    let (hs, ms) = (ask_socket(&hsock, "show stat"), l.ctl(&["show stat"]));
    assert_eq!(stat_status(&hs, "rb", "u"), stat_status(&ms, "rb", "u"));
    drop(chk);
}

/// A state file loaded at start gives back each server's time since the last change, and a
/// server saved running starts with its check counter at the top, as HAProxy 2.6 loads it.
#[test]
fn a_loaded_state_file_keeps_the_last_change_as_haproxy() {
    let Some(_) = haproxy_bin() else {
        eprintln!("skipped: HAProxy is not installed");
        return;
    };
    let dir = TempDir::new("statelc");
    let text = format!(
        "1\n{}\n\
         1 st 1 a 127.0.0.1 2 0 1 1 1000 1 0 2 0 0 0 0 - 9 - 0 0 - - 0\n\
         1 st 2 b 127.0.0.1 2 0 1 1 2000 1 0 2 0 0 0 0 - 9 - 0 0 - - 0\n\
         1 st 3 m 127.0.0.1 0 1 1 1 3000 1 0 0 0 0 0 0 - 9 - 0 0 - - 0\n",
        lbha::control::servers_state::HEADER
    );
    let cfg = |sock: Option<&Path>, port: u16, file: &Path| {
        let stats = sock.map(|s| format!("    stats socket {} level admin\n", s.display())).unwrap_or_default();
        format!(
            "global\n{stats}    server-state-file {}\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    load-server-state-from-file global\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend st\n\
             backend st\n\
             \x20   server a 127.0.0.1:9\n\
             \x20   server b 127.0.0.1:9 rise 3 fall 4\n\
             \x20   server m 127.0.0.1:9\n",
            file.display()
        )
    };
    let (hfile, lfile) = (dir.write("h.state", &text), dir.write("l.state", &text));
    let hsock = dir.0.join("stats.sock");
    let (hport, lport) = (free_port(), free_port());
    let (_h, _hd) = haproxy(&cfg(Some(&hsock), hport, &hfile), hport);
    let l = Lbha::start_haproxy(&cfg(None, lport, &lfile), &[lport]);
    // Name, op and admin state, health; the time since the last change apart.
    let cols = |s: &str| {
        s.lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f.len() > 12 && f[1] == "st")
            .map(|f| (format!("{} {} {} {}", f[3], f[5], f[6], f[12]), f[9].parse::<u64>().unwrap()))
            .collect::<Vec<_>>()
    };
    let (h, m) = (ask_socket(&hsock, "show servers state st"), l.ctl(&["show servers state st"]));
    let (hc, mc) = (cols(&h), cols(&m));
    let names = |c: &[(String, u64)]| c.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&hc), names(&mc), "--- haproxy\n{h}\n--- lbha\n{m}");
    assert_eq!(names(&mc), ["a 2 0 4", "b 2 0 6", "m 0 1 0"], "{m}");
    for (c, who) in [(&hc, "haproxy"), (&mc, "lbha")] {
        let since: Vec<u64> = c.iter().map(|x| x.1).collect();
        assert!(since[0] >= 1000 && since[1] >= 2000 && since[2] >= 3000, "{who}: {since:?}");
        assert!(since[0] < 2000 && since[1] < 3000, "{who}: {since:?}");
    }
}
