use super::*;

fn no_files(_: &str, _: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    Ok(Vec::new())
}

fn parse_ok(src: &str) -> Config {
    parse(src, Path::new("/etc/keepalived/keepalived.conf"), &mut no_files).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn blocks_words_comments_and_lines() {
    let c = parse_ok(
        "! Configuration File for keepalived\nglobal_defs {\n   router_id LVS_DEVEL\n}\n\nvrrp_instance VI_1\n{\n    state MASTER   # the master\n    virtual_ipaddress { 192.0.2.16/24 dev eth0 label eth0:1 }\n    notify_master \"/etc/keepalived/notify.sh master\"\n}\n",
    );
    assert_eq!(c.stmts.len(), 2);
    assert_eq!(c.stmts[0].comments, [" Configuration File for keepalived"]);
    assert_eq!(c.stmts[0].children()[0].words, ["router_id", "LVS_DEVEL"]);
    let vi = &c.stmts[1];
    assert_eq!((vi.loc.line, vi.words.clone()), (6, vec!["vrrp_instance".to_string(), "VI_1".to_string()]));
    let kids = vi.children();
    assert_eq!(kids[0].trailing.as_deref(), Some(" the master"));
    assert_eq!(kids[1].children()[0].words, ["192.0.2.16/24", "dev", "eth0", "label", "eth0:1"]);
    assert_eq!(kids[2].words, ["notify_master", "/etc/keepalived/notify.sh master"]);
    assert_eq!(kids[2].loc.to_string(), "/etc/keepalived/keepalived.conf:10");
}

#[test]
fn parameters_and_continuation() {
    let c = parse_ok("$IF=eth1\nvrrp_instance A {\n  interface $IF\n  priority \\\n    ${PRIO}\n}\n");
    let kids = c.stmts[0].children();
    assert_eq!(kids[0].words, ["interface", "eth1"]);
    assert_eq!(kids[1].words, ["priority", "${PRIO}"]);
    assert!(c.reports.iter().any(|r| r.message.contains("$PRIO")));
}

#[test]
fn includes_go_through_the_loader_with_their_own_locations() {
    let mut calls = Vec::new();
    let mut loader = |pat: &str, dir: &Path| {
        calls.push((pat.to_string(), dir.to_path_buf()));
        Ok(vec![
            (PathBuf::from("/etc/keepalived/conf.d/a.conf"), "vrrp_script chk {\n  script \"true\"\n}\n".to_string()),
            (PathBuf::from("/etc/keepalived/conf.d/b.conf"), "\nvrrp_instance B {\n}\n".to_string()),
        ])
    };
    let c = parse("include conf.d/*.conf\n", Path::new("/etc/keepalived/keepalived.conf"), &mut loader).unwrap();
    assert_eq!(calls, [("conf.d/*.conf".to_string(), PathBuf::from("/etc/keepalived"))]);
    assert_eq!(c.stmts[0].loc.to_string(), "/etc/keepalived/conf.d/a.conf:1");
    assert_eq!(c.stmts[1].loc.to_string(), "/etc/keepalived/conf.d/b.conf:2");
}

#[test]
fn include_loops_stop() {
    let mut loader = |_: &str, _: &Path| Ok(vec![(PathBuf::from("/k/self.conf"), "include self.conf\n".to_string())]);
    let e = parse("include self.conf\n", Path::new("/k/self.conf"), &mut loader).unwrap_err();
    assert!(e.to_string().contains("nest deeper"), "{e}");
}

#[test]
fn structural_errors_are_located() {
    let err = |s: &str| parse(s, Path::new("k.conf"), &mut no_files).unwrap_err().to_string();
    assert_eq!(err("vrrp_instance A {\n  state MASTER\n"), "k.conf:1: unterminated block: `{` has no matching `}`");
    assert_eq!(err("}\n"), "k.conf:1: unmatched `}`");
    assert_eq!(err("{\n}\n"), "k.conf:1: `{` without a keyword before it");
    assert_eq!(err("vrrp_script x {\n script \"abc\n}\n"), "k.conf:2: unterminated \" quote");
}

#[test]
fn include_fan_out_is_bounded() {
    // Every file includes itself three times: 3^8 files without a bound on the total.
    let mut loader =
        |_: &str, _: &Path| Ok(vec![(PathBuf::from("/k/x.conf"), "include a\ninclude b\ninclude c\n".to_string())]);
    let e = parse("include x\n", Path::new("/k/x.conf"), &mut loader).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(e.to_string().contains("nest deeper"), "{e}");
}
