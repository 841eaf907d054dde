//! One test per validation error kind: each must be reported with its line, field and value.

use super::parse;
use std::path::Path;

/// Errors of `src` as `line:col field: message (value)` strings (shared by the config test modules).
pub(crate) fn errors(src: &str) -> Vec<String> {
    match parse(src, Path::new("t.toml")) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .errors
            .iter()
            .map(|l| {
                let mut s = format!("{}:{} {}: {}", l.line, l.column, l.problem.path, l.problem.message);
                if let Some(v) = &l.problem.value {
                    s.push_str(&format!(" ({v})"));
                }
                s
            })
            .collect(),
    }
}

fn has(src: &str, want: &str) {
    let errs = errors(src);
    assert!(errs.iter().any(|e| e.contains(want)), "expected {want:?} in {errs:#?}");
}

const BASE: &str = "[defaults]\nmode = \"http\"\n";

fn with_base(rest: &str) -> String {
    format!("{BASE}{rest}")
}

const BE: &str = "\n[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n";

#[test]
fn valid_minimal_config() {
    let src =
        with_base(&format!("[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\ndefault_backend = \"be\"\n{BE}"));
    assert_eq!(errors(&src), Vec::<String>::new());
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert_eq!(snap.frontends[0].default_backend, Some(0));
    assert_eq!(snap.backends[0].servers[0].weight, 1);
}

#[test]
fn toml_syntax() {
    has("[global\n", "1:8");
}

#[test]
fn unknown_key() {
    has("[global]\nmaxconns = 1\n", "2:1 global.maxconns: unknown key `maxconns`");
    has(&with_base(&format!("{BE}bogus = 1\n")), "backend[0].bogus: unknown key `bogus`");
    has(
        &with_base("[[backend]]\nname = \"b\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\", wieght = 2 }]\n"),
        "backend[0].servers[0].wieght: unknown key `wieght`",
    );
}

#[test]
fn wrong_type() {
    has("[global]\nmaxconn = \"lots\"\n", "2:11 global.maxconn");
    has("[defaults]\nmode = \"htp\"\n", "defaults.mode: unknown variant `htp`");
}

#[test]
fn bad_duration() {
    has("[defaults]\ntimeout = { connect = \"5 parsecs\" }\n", "defaults.timeout.connect: invalid duration");
}

#[test]
fn duplicate_names() {
    let src = with_base(&format!(
        "[[frontend]]\nname = \"x\"\nbind = [\"127.0.0.1:1\"]\n[[frontend]]\nname = \"x\"\nbind = [\"127.0.0.1:2\"]\n{BE}{BE}"
    ));
    has(&src, "frontend[1].name: duplicate frontend or listen name (x)");
    has(&src, "backend[1].name: duplicate backend or listen name (be)");
}

#[test]
fn missing_backend_references() {
    let src = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\ndefault_backend = \"ghost\"\nuse_backend = [{ backend = \"spirit\" }]\n",
    );
    has(&src, "6:19 frontend[0].default_backend: no such backend (ghost)");
    has(&src, "frontend[0].use_backend[0].backend: no such backend (spirit)");
}

#[test]
fn bad_bind() {
    for (bind, msg) in [
        ("127.0.0.1", "expected address:port"),
        ("127.0.0.1:70000", "invalid port"),
        ("host.example:80", "invalid address"),
    ] {
        let src = with_base(&format!("[[frontend]]\nname = \"fe\"\nbind = [\"{bind}\"]\n"));
        has(&src, &format!("5:9 frontend[0].bind[0]: {msg}"));
    }
}

#[test]
fn v4v6_and_v6only_bind_options() {
    let src = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [\"[::]:80 v4v6\", \"[::]:81 v6only\", \"[::]:82 v4v6 v6only\", \"[::]:83\", \"127.0.0.1:80 v6only\"]\n",
    );
    let snap = parse(&src, Path::new("t.toml")).map_err(|e| e.to_string()).unwrap();
    let v6: Vec<Option<bool>> = snap.frontends[0].binds.iter().map(|b| b.v6only).collect();
    // `v6only` wins over `v4v6`, as in HAProxy; on an IPv4 address neither means anything.
    assert_eq!(v6, [Some(false), Some(true), Some(true), None, Some(true)]);
}

#[test]
fn bind_used_twice() {
    let src = with_base(
        "[[frontend]]\nname = \"a\"\nbind = [\"127.0.0.1:80\"]\n[[frontend]]\nname = \"b\"\nbind = [\"127.0.0.1:80\"]\n",
    );
    has(&src, "frontend[1].bind[0]: address already bound by `a`");
}

#[test]
fn frontend_without_bind_and_backend_without_servers_are_warnings() {
    // As in HAProxy; the Data Plane API adds binds and servers one call at a time.
    let src = with_base("[[frontend]]\nname = \"fe\"\ndefault_backend = \"be\"\n[[backend]]\nname = \"be\"\n");
    assert_eq!(errors(&src), Vec::<String>::new());
    let snap = parse(&src, Path::new("t.toml")).map_err(|e| e.to_string()).unwrap();
    assert_eq!(
        snap.warnings,
        [
            "t.toml:3:1: warning: frontend[0].bind: a frontend without bind addresses receives no traffic",
            "t.toml:6:1: warning: backend[0].servers: a backend without servers answers every request with 503",
        ]
    );
}

#[test]
fn named_binds() {
    let ok = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [{ name = \"http\", addr = \"127.0.0.1:80\" }, \"127.0.0.1:81\"]\n",
    );
    assert_eq!(errors(&ok), Vec::<String>::new());
    let dup = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [{ name = \"a\", addr = \"127.0.0.1:80\" }, { name = \"a\", addr = \"127.0.0.1:81\" }]\n",
    );
    has(&dup, "frontend[0].bind[1].name: duplicate bind name (a)");
    let unknown = with_base("[[frontend]]\nname = \"fe\"\nbind = [{ addr = \"127.0.0.1:80\", ssl = true }]\n");
    has(&unknown, "unknown field `ssl`");
}

#[test]
fn api_section() {
    let src = with_base("[api]\nbind = \"127.0.0.1:x\"\nuserlist = \"nope\"\n");
    has(&src, "api.bind: invalid port \"x\" (127.0.0.1:x)");
    has(&src, "api.userlist: no such userlist (nope)");
    let src =
        with_base("[[userlist]]\nname = \"u\"\nusers = [{ name = \"a\", password = \"$1$x$y\" }, { name = \"b\" }]\n");
    has(&src, "userlist[0].users[0].password: malformed MD5-crypt hash");
    has(&src, "userlist[0].users[1].password: missing password");
    let ok = with_base(
        "[[userlist]]\nname = \"u\"\nusers = [{ name = \"a\", insecure_password = \"x\" }]\n[api]\nbind = \"127.0.0.1:5555\"\nuserlist = \"u\"\n",
    );
    let snap = parse(&ok, Path::new("t.toml")).map_err(|e| e.to_string()).unwrap();
    let api = snap.api.unwrap();
    assert_eq!(api.state_dir, Path::new("/var/lib/lbha"));
    assert_eq!(api.max_open_transactions, 20);
    assert!(!api.insecure_http);
    assert_eq!(crate::api::insecure_http_warning(&api), None);
    assert_eq!(api.read_timeout, std::time::Duration::from_secs(30));
    let open = ok.replace("127.0.0.1:5555", "0.0.0.0:5555");
    has(&open, "api.bind: plain HTTP on a non-loopback address sends the API's passwords in clear");
    let allowed = format!("{open}allow_insecure_http = true\nread_timeout = \"2s\"\n");
    let api = parse(&allowed, Path::new("t.toml")).map_err(|e| e.to_string()).unwrap().api.unwrap();
    assert!(api.insecure_http);
    // What the daemon logs when it starts such an API (tests bind loopback only, so the start
    // itself is not run off loopback).
    let w = crate::api::insecure_http_warning(&api).expect("a warning");
    assert!(w.contains("serves plain HTTP on 0.0.0.0:5555") && w.contains("in clear"), "{w}");
    assert_eq!(api.read_timeout, std::time::Duration::from_secs(2));
}

#[test]
fn bad_server() {
    let src = with_base(
        "[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:x\", weight = 257 }, { name = \"a\", addr = \"127.0.0.1:1\" }, { addr = \"127.0.0.1:2\" }]\n",
    );
    has(&src, "backend[0].servers[0].addr: invalid port \"x\" (127.0.0.1:x)");
    has(&src, "backend[0].servers[0].weight: must be between 0 and 256 (257)");
    has(&src, "backend[0].servers[1].name: duplicate server name in this backend (a)");
    has(&src, "backend[0].servers[2].name: missing server name");
}

#[test]
fn key_not_allowed_in_section() {
    let src = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\nservers = []\n[[backend]]\nname = \"be\"\nbind = [\"127.0.0.1:81\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n",
    );
    has(&src, "frontend[0].servers: `servers` is not allowed in a frontend section");
    has(&src, "backend[0].bind: `bind` is not allowed in a backend section");
    has("[defaults]\nname = \"d\"\n", "defaults.name: `name` is not allowed in a defaults section");
}

#[test]
fn missing_name() {
    has(&with_base("[[frontend]]\nbind = [\"127.0.0.1:80\"]\n"), "frontend[0].name: missing name");
}

#[test]
fn mode_mismatch() {
    let src = "[[frontend]]\nname = \"fe\"\nmode = \"http\"\nbind = [\"127.0.0.1:80\"]\ndefault_backend = \"be\"\n[[backend]]\nname = \"be\"\nmode = \"tcp\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n".to_string();
    has(&src, "frontend[0].default_backend: backend `be` is in mode Tcp but this frontend is in mode Http");
}

#[test]
fn bad_balance() {
    has(&with_base(&BE.replace("name = \"be\"", "name = \"be\"\nbalance = \"fastest\"")), "backend[0].balance:");
    has(&with_base(&BE.replace("name = \"be\"", "name = \"be\"\nhash_type = \"bogus\"")), "backend[0].hash_type:");
}

#[test]
fn bad_acl_and_condition() {
    let src = with_base(&format!(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\nacl = [{{ name = \"a\", cond = \"no_such_fetch x\" }}, {{ name = \"b\", cond = \"nbsrv(ghost) lt 1\" }}]\nuse_backend = [{{ backend = \"be\", if = \"undefined_acl\" }}]\n{BE}"
    ));
    has(&src, "frontend[0].acl[0].cond:");
    has(&src, "frontend[0].acl[1].cond: nbsrv() names no such backend (ghost)");
    has(&src, "frontend[0].use_backend[0].if:");
}

#[test]
fn http_rules() {
    let src = with_base(
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:80\"]\nhttp_request = [{ return = { status = 99 } }, { deny = {}, del_header = \"x\" }, { if = \"TRUE\" }]\n",
    );
    has(&src, "listen[0].http_request[0].return.status: status must be in 200..=599 (99)");
    has(&src, "listen[0].http_request[1]: one action per rule, found deny, del_header");
    has(&src, "listen[0].http_request[2]: rule has no action");
}

#[test]
fn global_limits() {
    has("[global]\nnbthread = 0\n", "global.nbthread: must be at least 1 and at most 64");
    has("[global]\nspread_checks = 80\n", "global.spread_checks: must be between 0 and 50");
}

#[test]
fn check_settings_without_check() {
    let src = with_base(
        "[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\", inter = \"1s\" }]\n",
    );
    has(&src, "backend[0].servers[0].inter: has no effect without `check = true`");
}

#[test]
fn all_errors_at_once_sorted_by_line() {
    let src = with_base(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\ndefault_backend = \"x\"\n[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:x\" }]\n",
    );
    let errs = errors(&src);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("6:19 "), "{errs:#?}");
    assert!(errs[1].contains("servers[0].addr"), "{errs:#?}");
}

#[test]
fn listen_makes_frontend_and_backend() {
    let src = with_base(
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:80\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:81\" }]\n",
    );
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert_eq!(snap.frontends[0].name, "l");
    assert_eq!(snap.backends[0].name, "l");
    assert_eq!(snap.frontends[0].default_backend, Some(0));
}

#[test]
fn defaults_are_inherited() {
    let src = "[defaults]\nmode = \"http\"\nretries = 7\nforwardfor = true\ntimeout = { server = \"9s\" }\n[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:80\"]\ntimeout = { connect = \"1s\" }\nservers = [{ name = \"a\", addr = \"127.0.0.1:81\" }]\n";
    let snap = parse(src, Path::new("t.toml")).unwrap();
    let b = &snap.backends[0];
    assert_eq!(b.retries, 7);
    assert!(b.forwardfor.is_some());
    assert_eq!(b.timeouts.server, std::time::Duration::from_secs(9));
    assert_eq!(b.timeouts.connect, std::time::Duration::from_secs(1));
}

#[test]
fn control_socket_and_state_file() {
    let snap = parse("", Path::new("/etc/lbha/t.toml")).unwrap();
    assert_eq!(snap.global.control_socket.path, Path::new("/run/lbha/lbha.sock"));
    assert_eq!(snap.global.control_socket.mode, 0o600);
    assert_eq!(snap.global.server_state_file, None);
    assert_eq!(snap.global.state_dir, Path::new("/var/lib/lbha"));
    let snap = parse(
        "[global]\ncontrol_socket = { path = \"ctl.sock\", mode = \"0660\" }\nserver_state_file = \"state/servers\"\nstate_dir = \"var\"\n",
        Path::new("/etc/lbha/t.toml"),
    )
    .unwrap();
    assert_eq!(snap.global.control_socket.path, Path::new("/etc/lbha/ctl.sock"));
    assert_eq!(snap.global.control_socket.mode, 0o660);
    assert_eq!(snap.global.server_state_file.as_deref(), Some(Path::new("/etc/lbha/state/servers")));
    assert_eq!(snap.global.state_dir, Path::new("/etc/lbha/var"));
    let snap = parse("[global]\ncontrol_socket = { mode = 640 }\n", Path::new("t.toml")).unwrap();
    assert_eq!(snap.global.control_socket.mode, 0o640);
    has(
        "[global]\ncontrol_socket = { mode = \"680\" }\n",
        "2:27 global.control_socket.mode: expected permission bits in octal",
    );
    has(
        "[global]\ncontrol_socket = { mode = 1777 }\n",
        "global.control_socket.mode: expected permission bits in octal, such as \"600\" or \"0660\" (1777)",
    );
    has("[global]\ncontrol_socket = { path = \"\" }\n", "global.control_socket.path: must not be empty");
    has("[global]\nserver_state_file = \"\"\n", "global.server_state_file: must not be empty");
    has("[global]\nstate_dir = \"\"\n", "global.state_dir: must not be empty");
    assert_eq!(snap_level("").unwrap(), Level::Admin);
    assert_eq!(snap_level("level = \"user\"").unwrap(), Level::User);
    assert_eq!(snap_level("level = \"operator\"").unwrap(), Level::Operator);
    has(
        "[global]\ncontrol_socket = { level = \"root\" }\n",
        "global.control_socket.level: expected \"user\", \"operator\" or \"admin\" (root)",
    );
}

use crate::control::parse::Level;
fn snap_level(kv: &str) -> Result<Level, String> {
    let text = format!("[global]\ncontrol_socket = {{ {kv} }}\n");
    parse(&text, Path::new("t.toml")).map(|s| s.global.control_socket.level).map_err(|e| e.to_string())
}

/// Issue 14 item 20: a listen's `default_backend` is honoured, and a name that matches no backend
/// is an error wherever it is written.
#[test]
fn listen_default_backend_is_honoured_or_refused() {
    let listen =
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:81\"]\nservers = [{ name = \"x\", addr = \"127.0.0.1:82\" }]\n";
    let src = with_base(&format!("{listen}default_backend = \"be\"\n{BE}"));
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    let be = snap.backends.iter().position(|b| b.name == "be").unwrap();
    assert_eq!(snap.frontends[0].default_backend, Some(be));
    // Without one, the listen keeps its own servers.
    let snap = parse(&with_base(&format!("{listen}{BE}")), Path::new("t.toml")).unwrap();
    let own = snap.backends.iter().position(|b| b.name == "l").unwrap();
    assert_eq!(snap.frontends[0].default_backend, Some(own));
    has(
        &with_base(&format!("{listen}default_backend = \"nope\"\n{BE}")),
        "7:19 listen[0].default_backend: no such backend (nope)",
    );
    has(
        &with_base("[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:81\"]\nuse_backend = [{ backend = \"gone\" }]\n"),
        "listen[0].use_backend[0].backend: no such backend (gone)",
    );
}

/// Issue 14 item 5: every number has HAProxy's range, so what `check` (and the API) accepts starts.
#[test]
fn numbers_have_haproxy_ranges() {
    has("[global]\nnbthread = 4294967295\n", "2:12 global.nbthread: must be at least 1 and at most 64 (4294967295)");
    has("[global]\nnbthread = 65\n", "global.nbthread: must be at least 1 and at most 64 (65)");
    has("[global]\nmaxconn = 4294967295\n", "2:11 global.maxconn: must be at least 1 and at most 2147483647");
    has("[global]\nhard_stop_after = \"25d\"\n", "2:19 global.hard_stop_after: timer overflow");
    has("[global]\nproxy_stall_threshold = \"10ms\"\n", "global.proxy_stall_threshold: must be at least 30 ms (10 ms)");
    has(&with_base("[[frontend]]\nname = \"f\"\nmaxconn = 3000000000\n"), "frontend[0].maxconn: must be at least 1");
    let be = |extra: &str, srv: &str| {
        with_base(&format!(
            "[[backend]]\nname = \"b\"\n{extra}servers = [{{ name = \"a\", addr = \"127.0.0.1:80\"{srv} }}]\n"
        ))
    };
    has(&be("retries = 4294967295\n", ""), "backend[0].retries: must be at least 0 and at most 2147483647");
    has(&be("", ", maxconn = 4294967295"), "backend[0].servers[0].maxconn: must be at least 1 and at most");
    has(&be("", ", check = true, rise = 4294967295"), "backend[0].servers[0].rise: must be at least 1 and at most");
    has(&be("", ", check = true, check_port = 0"), "backend[0].servers[0].check_port: must be between 1 and 65535");
    has(&be("timeout = { server = 2147483648 }\n", ""), "backend[0].timeout.server: timer overflow");
    has(&be("", ", check = true, inter = \"30d\""), "backend[0].servers[0].inter: timer overflow");
    // The largest values HAProxy takes are accepted.
    let ok = format!(
        "[global]\nnbthread = 64\nmaxconn = 2147483647\n{}",
        be("retries = 2147483647\ntimeout = { server = 2147483647 }\n", ", maxconn = 2147483647")
    );
    assert_eq!(errors(&ok), Vec::<String>::new());
}

#[test]
fn forwardfor_options_need_their_forwardfor_and_valid_values() {
    let listen =
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:80\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:81\" }]\n";
    has(
        &format!("[defaults]\nmode = \"http\"\nforwardfor_except = \"10.0.0.0/8\"\n{listen}"),
        "defaults.forwardfor_except: needs `forwardfor = true` in the same section",
    );
    has(&format!("{listen}forwardfor = true\nforwardfor_except = \"10.0.0.0/33\"\n"), "listen[0].forwardfor_except");
    has(
        &format!("{listen}forwardfor = true\nforwardfor_header = \"X Bad\"\n"),
        "listen[0].forwardfor_header: not a valid header name",
    );
    let src = format!(
        "[defaults]\nmode = \"http\"\nforwardfor = true\nforwardfor_except = \"10.0.0.0/8\"\nforwardfor_if_none = true\n{listen}"
    );
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    let ff = snap.backends[0].forwardfor.as_ref().unwrap();
    assert!(ff.if_none && ff.except.unwrap().contains("10.1.1.1".parse().unwrap()));
    assert_eq!(snap.frontends[0].forwardfor, snap.backends[0].forwardfor);
}

#[test]
fn connection_keys_default_inherit_and_stay_on_their_side() {
    let fe = "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:80\"]\ndefault_backend = \"be\"\n";
    let snap = parse(&with_base(&format!("{fe}{BE}")), Path::new("t.toml")).unwrap();
    assert_eq!(snap.backends[0].pool_purge_delay, std::time::Duration::from_secs(5), "HAProxy's default");
    assert_eq!(snap.frontends[0].body_min_rate, 512);
    let src = format!("{BASE}pool_purge_delay = \"1s\"\nbody_min_rate = 0\n{fe}{BE}");
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert_eq!(snap.backends[0].pool_purge_delay, std::time::Duration::from_secs(1));
    assert_eq!(snap.frontends[0].body_min_rate, 0);
    let src = with_base(&format!("{fe}pool_purge_delay = \"1s\"\n{BE}body_min_rate = 10\n"));
    has(&src, "frontend[0].pool_purge_delay: `pool_purge_delay` is not allowed in a frontend section");
    has(&src, "backend[0].body_min_rate: `body_min_rate` is not allowed in a backend section");
}

/// Issue 14 item 30: what HAProxy accepts (with at most a warning) is accepted here too.
#[test]
fn accepted_as_haproxy_does() {
    let ok = |src: &str, warning: &str| match parse(src, Path::new("t.toml")) {
        Ok(snap) => assert!(
            warning.is_empty() || snap.warnings.iter().any(|w| w.contains(warning)),
            "expected warning {warning:?} in {:?}",
            snap.warnings
        ),
        Err(e) => panic!("refused:\n{e}\n--- config\n{src}"),
    };
    let be = "[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n";
    // alpn on a plain bind
    ok(
        &with_base(&format!(
            "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:81 alpn h2,http/1.1\"]\ndefault_backend = \"be\"\n{be}"
        )),
        "`alpn` has no effect without `ssl`",
    );
    // a proxy's tcplog overrides an inherited httplog
    let src = "[global]\nlog = [\"127.0.0.1:514 local0\"]\n[defaults]\nmode = \"tcp\"\nlog = \"global\"\nhttplog = true\n[[listen]]\nname = \"t\"\ntcplog = true\nbind = [\"127.0.0.1:82\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n";
    let snap = parse(src, Path::new("t.toml")).unwrap();
    assert_eq!(snap.frontends[0].log, super::snapshot::LogMode::Tcp);
    // httplog inherited by a TCP proxy falls back to tcplog, with HAProxy's warning
    ok(
        "[global]\nlog = [\"127.0.0.1:514 local0\"]\n[defaults]\nlog = \"global\"\nhttplog = true\n[[listen]]\nname = \"t\"\nmode = \"tcp\"\nbind = [\"127.0.0.1:87\"]\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n",
        "falling back to tcplog",
    );
    // a TCP frontend in front of an HTTP backend
    ok(
        &with_base(&format!(
            "[[frontend]]\nname = \"f\"\nmode = \"tcp\"\nbind = [\"127.0.0.1:83\"]\ndefault_backend = \"be\"\n{be}"
        )),
        "this tcp frontend relays bytes",
    );
    // server verify none without ssl
    ok(
        &with_base(
            "[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\", verify = \"none\" }]\n",
        ),
        "verify: has no effect without `ssl = true`",
    );
    // stats in a TCP listen: ignored with a warning
    let src = "[[listen]]\nname = \"l\"\nmode = \"tcp\"\nbind = [\"127.0.0.1:84\"]\nstats = { uri = \"/s\" }\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n";
    ok(src, "listen[0].stats: ignored: the stats page needs mode http");
    assert!(parse(src, Path::new("t.toml")).unwrap().frontends[0].stats.is_none());
    has(
        &with_base("[[frontend]]\nname = \"f\"\nhttplog = \"common\"\nbind = [\"127.0.0.1:86\"]\n"),
        "frontend[0].httplog: expected true, false or \"clf\" (common)",
    );
    // An HTTP frontend cannot use a TCP backend (HAProxy refuses it too).
    has(
        "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:85\"]\ndefault_backend = \"be\"\n[[backend]]\nname = \"be\"\nmode = \"tcp\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\" }]\n",
        "backend `be` is in mode Tcp but this frontend is in mode Http",
    );
}

/// Issue 14 item 21: one value of the wrong type does not hide the others, nor the semantic errors.
#[test]
fn every_type_error_is_reported() {
    let src = "[global]\nmaxconn = \"many\"\nnbthread = 0\n[defaults]\nmode = \"http\"\nretries = \"x\"\n[[backend]]\nname = \"be\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\", weight = \"heavy\" }, { name = \"b\", addr = \"127.0.0.1:81\", weight = 999 }]\n[[backend]]\nname = 7\nservers = [{ name = \"c\", addr = \"127.0.0.1:82\" }]\nbogus = 1\n";
    let errs = errors(src);
    for want in [
        "2:11 global.maxconn:",
        "3:12 global.nbthread: must be at least 1",
        "6:11 defaults.retries:",
        "9:58 backend[0].servers[0].weight: invalid type",
        "backend[0].servers[1].weight: must be between 0 and 256 (999)",
        "11:8 backend[1].name:",
        "13:1 backend[1].bogus: unknown key `bogus`",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(want) || e.contains(want)), "missing {want:?} in {errs:#?}");
    }
    // A name of the wrong type is one error, not also a "missing name".
    assert!(!errs.iter().any(|e| e.contains("missing name")), "{errs:#?}");
    // In file order.
    let lines: Vec<usize> = errs.iter().map(|e| e.split(':').next().unwrap().parse().unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{errs:#?}");
}

#[test]
fn stats_admin_is_refused_in_defaults_as_haproxy_does() {
    has(
        "[defaults]\nmode = \"http\"\nstats = { uri = \"/s\", admin = \"if TRUE\" }\n",
        "defaults.stats.admin: not allowed in [defaults]",
    );
}
