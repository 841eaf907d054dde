//! `lbha check`: exit codes and error reports, like `haproxy -c`.

mod common;
use common::*;
use std::process::Command;

fn check(text: &str) -> (i32, String, String) {
    let dir = TempDir::new("check");
    let p = dir.write("conf.toml", text);
    let out = Command::new(lbha_bin()).args(["check", "-c"]).arg(&p).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned().replace(&*p.to_string_lossy(), "FILE"),
    )
}

#[test]
fn shipped_configs_are_valid() {
    let mut files = vec!["etc/quickstart.toml".to_string(), "etc/lbha.toml".to_string()];
    for e in std::fs::read_dir("etc/examples").unwrap() {
        let p = e.unwrap().path();
        // Beside the configs: the pair example's certificates.
        if p.extension().is_some_and(|x| x == "toml") {
            files.push(p.to_string_lossy().into_owned());
        }
    }
    for f in &files {
        let out = Command::new(lbha_bin()).args(["check", "-c", f]).output().unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn every_error_is_reported_at_once_with_place_field_and_value() {
    let (code, _, err) = check(
        r#"[defaults]
mode = "http"

[[frontend]]
name = "fe"
bind = ["127.0.0.1:99999"]
default_backend = "nope"

[[backend]]
name = "be"
servers = [{ name = "a", addr = "127.0.0.1", weight = 300 }]
"#,
    );
    assert_eq!(code, 1);
    assert!(err.contains("FILE:6:9: frontend[0].bind[0]: invalid port \"99999\" (value: 127.0.0.1:99999)"), "{err}");
    assert!(err.contains("FILE:7:19: frontend[0].default_backend: no such backend (value: nope)"), "{err}");
    assert!(err.contains("backend[0].servers[0].addr: expected host:port (value: 127.0.0.1)"), "{err}");
    assert!(err.contains("backend[0].servers[0].weight: must be between 0 and 256 (value: 300)"), "{err}");
    assert!(err.contains("4 errors found"), "{err}");
}

#[test]
fn syntax_error_points_at_line() {
    let (code, _, err) = check("[global]\nmaxconn = = 3\n");
    assert_eq!(code, 1);
    assert!(err.starts_with("FILE:2:"), "{err}");
}

#[test]
fn unknown_keys_are_errors() {
    let (code, _, err) = check("[global]\nmaxconns = 3\n[defaults]\nmod = \"http\"\n");
    assert_eq!(code, 1);
    assert!(err.contains("FILE:2:1: global.maxconns: unknown key `maxconns`"), "{err}");
    assert!(err.contains("FILE:4:1: defaults.mod: unknown key `mod`"), "{err}");
}

#[test]
fn wrong_type_names_the_field() {
    let (code, _, err) = check("[global]\nmaxconn = \"many\"\n");
    assert_eq!(code, 1);
    assert!(err.contains("FILE:2:11: global.maxconn:"), "{err}");
}

#[test]
fn usage_error_exits_2() {
    let out = Command::new(lbha_bin()).args(["check", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_file_exits_1() {
    let out = Command::new(lbha_bin()).args(["check", "-c", "/nonexistent/lbha.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}

/// Issue 14 item 21: type errors (wrong value types) do not stop at the first one.
#[test]
fn every_type_error_is_reported_at_once() {
    let (code, _, err) = check(
        "[global]\nmaxconn = \"many\"\n[[backend]]\nname = \"be\"\nretries = true\nservers = [{ name = \"a\", addr = \"127.0.0.1:80\", weight = \"x\" }]\n",
    );
    assert_eq!(code, 1);
    for want in [
        "FILE:2:11: global.maxconn: invalid type",
        "FILE:5:11: backend[0].retries: invalid type",
        "FILE:6:58: backend[0].servers[0].weight: invalid type",
        "3 errors found",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
}

#[test]
fn announce_frr_keys_are_checked_with_their_place() {
    let (code, _, err) = check(
        r#"[[backend]]
name = "web"

[[announce]]
name = "a"
address = ["192.0.2.10", "2001:db8:ff::10"]
withdraw_grace = "300ms"
frr_vty_socket = "/run/frr"

[[announce]]
name = "b"
address = ["192.0.2.11"]
frr_vty_socket = "/run/other"

[[announce]]
name = "c"
address = ["192.0.2.12"]
withdraw_grace = "soon"
"#,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "announce[1].frr_vty_socket: differs from an earlier [[announce]]: one FRR per node (value: /run/other)"
        ),
        "{err}"
    );
    assert!(err.contains("announce[2].withdraw_grace"), "{err}");
}
