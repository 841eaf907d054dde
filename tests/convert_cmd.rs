//! `lbha convert`, `lbha check --haproxy-config`: the seed's configs, the corpus, reports,
//! `--strict`, atomic output and located errors, through the real binary.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(dir);
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

fn lbha(args: &[&str]) -> Output {
    Command::new(lbha_bin()).args(args).output().unwrap()
}

/// `lbha` that may wrongly start serving (`run`): killed after 20 s, so a regression fails the
/// test instead of hanging it.
fn lbha_bounded(args: &[&str]) -> Output {
    use std::process::Stdio;
    let mut child =
        Reaped::new(Command::new(lbha_bin()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "lbha {args:?} is still running after 20 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.take().wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_seed_and_corpus_config_converts_and_passes_check() {
    let dir = TempDir::new("convert-all");
    let mut checked = 0;
    for f in data("seeds").into_iter().chain(data("convert")) {
        if f.extension().is_none_or(|e| e != "cfg") {
            continue;
        }
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.0.join(format!("{name}.toml"));
        let conv = lbha(&["convert", "--haproxy", s(&f), "-o", s(&out)]);
        if name.contains("typo") {
            // The seed's `sever web1 ip:port check`: reported at its line; the backend left without
            // servers is valid but answers 503, which the warning points out at the haproxy.cfg line.
            let err = text(&conv.stderr);
            assert!(err.contains("05_typo_sever.cfg:5: unknown keyword: `sever web1 ip:port check`"), "{err}");
            assert!(
                err.contains("05_typo_sever.cfg:3: warning: backend[0].servers: a backend without servers"),
                "{err}"
            );
            let strict = lbha(&["convert", "--haproxy", s(&f), "--strict"]);
            assert_eq!(strict.status.code(), Some(1), "{name}");
        }
        assert!(conv.status.success(), "{name}: {}", text(&conv.stderr));
        let check = lbha(&["check", "-c", s(&out)]);
        assert!(check.status.success(), "{name}: {}", text(&check.stderr));
        let direct = lbha(&["check", "--haproxy-config", s(&f)]);
        assert!(direct.status.success(), "{name}: {}", text(&direct.stderr));
        assert!(text(&direct.stdout).contains("is valid"));
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} configs");
}

#[test]
fn reports_go_to_stderr_and_strict_fails_without_writing() {
    let dir = TempDir::new("convert-strict");
    let seed = data("seeds").into_iter().find(|p| s(p).ends_with("02_reference.cfg")).unwrap();
    let out = dir.0.join("lbha.toml");
    // The seed converts whole; with an option lbha lacks in place of its `option abortonclose`
    // (same line numbers), --strict refuses it.
    let r = lbha(&["convert", "--haproxy", s(&seed), "--strict", "-o", s(&out)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&std::fs::read(&out).unwrap()).contains("abortonclose = true"));
    std::fs::remove_file(&out).unwrap();
    let lacking = std::fs::read_to_string(&seed).unwrap().replace("option abortonclose", "option logasap");
    let seed = dir.write("02_reference.cfg", &lacking);
    let r = lbha(&["convert", "--haproxy", s(&seed), "--strict", "-o", s(&out)]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    // A proxy's own `log` line converts (to `log_targets`): no report for it.
    assert!(!err.contains("02_reference.cfg:23:"), "{err}");
    assert!(err.contains("02_reference.cfg:31: not supported yet by lbha: `option logasap`"), "{err}");
    assert!(err.contains("02_reference.cfg:84: note: `server static_server_1`: the server's `cookie` value"), "{err}");
    assert!(err.contains("02_reference.cfg:11: ignored: `nbproc 16`"), "{err}");
    assert!(
        err.contains("02_reference.cfg:37: note: `contimeout 5000`: deprecated keyword, written as `timeout connect`"),
        "{err}"
    );
    assert!(err.contains("--strict: 1 directive(s) were not converted exactly; nothing written"), "{err}");
    assert!(!out.exists());
    // Without --strict the same file converts to stdout, with its comments.
    let r = lbha(&["convert", "--haproxy", s(&seed)]);
    assert!(r.status.success());
    let toml = text(&r.stdout);
    assert!(toml.contains("# 定义一个名叫php_web的acl"), "{toml}");
    assert!(toml.contains("{ name = \"php_web\", cond = \"url_reg /*.php$\" }"), "{toml}");
    // A file with nothing lost passes --strict.
    let clean = dir.write("clean.cfg", "defaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend be\nbackend be\n  server a 127.0.0.1:8081 check\n");
    let r = lbha(&["convert", "--haproxy", s(&clean), "--strict", "-o", s(&out)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(out.exists());
}

#[test]
fn output_is_replaced_atomically() {
    let dir = TempDir::new("convert-atomic");
    let out = dir.write("lbha.toml", "old contents\n");
    let src = dir.write("h.cfg", "listen l\n  bind 127.0.0.1:9000\n  server a 127.0.0.1:9001\n");
    let r = lbha(&["convert", "--haproxy", s(&src), "-o", s(&out)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("[[listen]]") && !written.contains("old contents"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn malformed_input_exits_1_with_file_and_line() {
    let dir = TempDir::new("convert-bad");
    for (body, expect) in [
        ("frontend fe\n  bind 127.0.0.1:80\n  stats realm \"open\n", "h.cfg:3:15: unterminated \" quote"),
        ("frontnd fe\n", "h.cfg:1: unknown keyword `frontnd` out of section"),
        (
            "backend be\n  server a 127.0.0.1:1 weight heavy\n",
            "h.cfg:2: `server a 127.0.0.1:1 weight heavy`: bad number for weight: `heavy`",
        ),
        ("global\n  maxconn 99999999999\n", "h.cfg:2: `maxconn 99999999999`: bad number for maxconn"),
    ] {
        let f = dir.write("h.cfg", body);
        for args in [vec!["convert", "--haproxy", s(&f)], vec!["check", "--haproxy-config", s(&f)]] {
            let r = lbha(&args);
            assert_eq!(r.status.code(), Some(1), "{args:?} {body}");
            let err = text(&r.stderr).replace(s(&dir.0), "").replace("//", "").replace("/h.cfg", "h.cfg");
            assert!(err.contains(expect), "{args:?}: {err}");
        }
    }
    let r = lbha(&["convert", "--haproxy", "/nonexistent/haproxy.cfg"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains("/nonexistent/haproxy.cfg:0: cannot read"));
}

#[test]
fn keepalived_converts_with_includes() {
    let f = data("keepalived").into_iter().find(|p| s(p).ends_with("02_backup_unicast.conf")).unwrap();
    let r = lbha(&["convert", "--keepalived", s(&f)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let toml = text(&r.stdout);
    let t: toml::Table = toml::from_str(&toml).unwrap();
    let names: Vec<&str> = t["vrrp_instance"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["VI_WEB", "VI_DB"]);
    assert_eq!(t["vrrp_instance"][0]["version"].as_integer(), Some(3));
    assert!(toml.contains("conf.d/10-web.conf:9"), "{toml}");
    // Both files at once go into one lbha.toml.
    let h = data("seeds").into_iter().find(|p| s(p).ends_with("01_proxy_status.cfg")).unwrap();
    let k = data("keepalived").into_iter().find(|p| s(p).ends_with("01_master.conf")).unwrap();
    let r = lbha(&["convert", "--haproxy", s(&h), "--keepalived", s(&k)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let t: toml::Table = toml::from_str(&text(&r.stdout)).unwrap();
    assert!(t.contains_key("listen") && t.contains_key("vrrp_instance") && t.contains_key("vrrp_script"));
    // keepalived's e-mail settings join haproxy.cfg's [global]; what lbha lacks is reported.
    assert_eq!(t["global"]["notification_email"][0].as_str(), Some("ops@example.org"), "{}", text(&r.stdout));
    assert_eq!(t["global"]["router_id"].as_str(), Some("LB1"));
    // Its global VRRP defaults go into every instance.
    let i = &t["vrrp_instance"][0];
    assert_eq!(i["skip_check_adv_addr"].as_bool(), Some(true), "{}", text(&r.stdout));
    assert_eq!((i["garp_interval"].as_str(), i["gna_interval"].as_str()), (Some("0s"), Some("0s")));
    assert!(!text(&r.stderr).contains("01_master.conf:10"), "{}", text(&r.stderr));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(lbha(&["convert"]).status.code(), Some(2));
    assert_eq!(lbha(&["check", "-c", "a.toml", "--haproxy-config", "b.cfg"]).status.code(), Some(2));
    assert_eq!(lbha(&["run", "-c", "a.toml", "--haproxy-config", "b.cfg"]).status.code(), Some(2));
}

/// Issue 14 item 4: a protection that cannot be converted fails convert, check and run (exit 1,
/// nothing written, the lines named) unless --allow-weaker accepts the weaker result.
#[test]
fn lost_protections_fail_unless_allow_weaker() {
    let dir = TempDir::new("convert-weaker");
    let port = free_port();
    let src = dir.write(
        "h.cfg",
        &format!(
            "listen st\n  bind 127.0.0.1:{port}\n  mode http\n  stats enable\n  stats uri /stats\n  stats http-request auth unless {{ src 10.1.2.3 }}\n  http-request deny if {{ fc_rtt gt 10 }}\n"
        ),
    );
    let out = dir.0.join("lbha.toml");
    let r = lbha(&["convert", "--haproxy", s(&src), "-o", s(&out)]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    for needle in [
        "h.cfg:6: not converted, less protection than the original: `stats http-request auth",
        "h.cfg:7: not converted, less protection than the original: `http-request deny",
        "2 access rule(s)",
        "--allow-weaker",
        "nothing written",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    assert!(!out.exists());
    let sock = dir.0.join("lbha.sock");
    for args in [vec!["check", "--haproxy-config", s(&src)], vec!["run", "-S", s(&sock), "--haproxy-config", s(&src)]] {
        let r = lbha_bounded(&args);
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        let err = text(&r.stderr);
        assert!(err.contains("h.cfg:6:") && err.contains("--allow-weaker"), "{args:?}: {err}");
    }
    let r = lbha(&["convert", "--haproxy", s(&src), "-o", s(&out), "--allow-weaker"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(out.exists());
    let r = lbha(&["check", "--haproxy-config", s(&src), "--allow-weaker"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
}

/// The converted file carries the userlists' passwords: it is no more readable than its source.
#[test]
fn output_is_no_looser_than_the_source() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("convert-mode");
    let src = dir.write(
        "h.cfg",
        "userlist api\n  user admin insecure-password s3cret\nlisten l\n  bind 127.0.0.1:9000\n  server a 127.0.0.1:9001\n",
    );
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = dir.0.join("lbha.toml");
    let r = lbha(&["convert", "--haproxy", s(&src), "-o", s(&out)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(std::fs::read_to_string(&out).unwrap().contains("s3cret"));
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o077, 0, "group/other bits");
}

/// What keepalived 2.2.7 accepts with a warning converts and loads with the same warning, at the
/// keepalived.conf line: a long `auth_pass` (truncated), a prefix on unicast addresses, an unknown
/// `track_script`, `nopreempt` with `state MASTER`, `authentication` with version 3.
#[test]
fn keepalived_leniency_converts_with_its_warnings() {
    let dir = TempDir::new("convert-lenient");
    let conf = dir.0.join("lenient.conf");
    let out = dir.0.join("out.toml");
    let instance = |name: &str, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id 51\n    priority 100\n{extra}\
             \n    virtual_ipaddress {{\n        192.0.2.100\n    }}\n}}\n"
        )
    };
    let text_in = instance(
        "VI_1",
        "    state MASTER\n    nopreempt\n    unicast_src_ip 192.0.2.11/24\n    unicast_peer {\n        192.0.2.12/24\n    }\n\
         authentication {\n        auth_type PASS\n        auth_pass 123456789abc\n    }\n    track_script {\n        nosuch\n    }",
    ) + &instance(
        "VI_2",
        "    version 3\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }",
    )
    .replace("51", "52");
    std::fs::write(&conf, text_in).unwrap();
    let r = lbha(&["convert", "--keepalived", s(&conf), "-o", s(&out)]);
    let err = text(&r.stderr);
    assert!(r.status.success(), "{err}");
    for want in [
        "lenient.conf:6: warning: vrrp_instance[0].nopreempt: (VI_1) nopreempt will not work with initial state MASTER",
        "truncating auth_pass to 8 characters (\"12345678\")",
        "track script nosuch not found, ignoring",
        "(VI_2) VRRP version 3 does not support authentication - ignored",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    let check = lbha(&["check", "-c", s(&out)]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

/// `track_file` / `vrrp_track_file` blocks and an instance's `track_file` references convert,
/// with `reverse` and `init_file`, and the result loads.
#[test]
fn keepalived_track_files_and_processes_convert() {
    let dir = TempDir::new("convert-trackfile");
    let conf = dir.0.join("tf.conf");
    let out = dir.0.join("out.toml");
    std::fs::write(
        &conf,
        "vrrp_track_file tf1 {\n    file /run/lbha/tf1\n    weight -10 reverse\n    init_file 2 overwrite\n}\n\
         track_file tf2 {\n    file /run/lbha/tf2\n}\n\
         vrrp_track_process hap {\n    process haproxy\n    quorum 2\n    weight -20 reverse\n    delay 1.5\n}\n\
         vrrp_sync_group G {\n    group {\n        VI_1\n    }\n    notify_master \"/bin/m.sh G\"\n    notify /bin/any.sh\n    track_interface {\n        eth1\n    }\n}\n\
         vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    track_file {\n        tf1\n        tf2 weight 0\n    }\n\
         \n    track_process {\n        hap weight 5\n    }\n\
         \n    virtual_ipaddress {\n        192.0.2.100\n    }\n}\n",
    )
    .unwrap();
    let r = lbha(&["convert", "--keepalived", s(&conf), "-o", s(&out)]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let toml = std::fs::read_to_string(&out).unwrap();
    for want in [
        "[[vrrp_track_file]]\nname = \"tf1\"\nfile = \"/run/lbha/tf1\"\nweight = -10\nreverse = true\ninit_file = { overwrite = true, value = 2 }",
        "[[vrrp_track_file]]\nname = \"tf2\"\nfile = \"/run/lbha/tf2\"",
        "{ name = \"tf2\", weight = 0 }",
        "[[vrrp_track_process]]\nname = \"hap\"\nprocess = \"haproxy\"\nquorum = 2\nweight = -20\nreverse = true\ndelay = \"1.5s\"",
        "track_process = [{ name = \"hap\", weight = 5 }]",
        "[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\ntrack_interface = [{ name = \"eth1\" }]\nnotify_master = \"/bin/m.sh G\"\nnotify = \"/bin/any.sh\"",
    ] {
        assert!(toml.contains(want), "{want:?} not in {toml}");
    }
    let check = lbha(&["check", "-c", s(&out)]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn debians_stock_haproxy_cfg_converts_strictly() {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/debian/haproxy.cfg");
    let installed = PathBuf::from("/etc/haproxy/haproxy.cfg");
    for f in [copy].into_iter().chain(installed.exists().then_some(installed)) {
        let r = lbha(&["convert", "--haproxy", s(&f), "--strict"]);
        assert!(r.status.success(), "{}: {}", f.display(), text(&r.stderr));
        let toml = text(&r.stdout);
        assert!(toml.contains("timeout = \"30s\""), "{toml}");
    }
}
