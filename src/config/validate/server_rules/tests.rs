//! `use_server` and `persist_rules`: what validation accepts and each error, located.

use crate::config::parse;
use crate::persist::rules::{PersistAction, ServerTarget};
use std::path::Path;

const TWO: &str = "{ name = \"a\", addr = \"127.0.0.1:1\" }, { name = \"b\", addr = \"127.0.0.1:2\" }";

fn src(mode: &str, extra: &str) -> String {
    format!(
        "[defaults]\nmode = \"{mode}\"\n\n[[backend]]\nname = \"be\"\nacl = [{{ name = \"api\", cond = \"path_beg /api\" }}]\nservers = [{TWO}]\n{extra}\n"
    )
}

fn errors(extra: &str) -> Vec<String> {
    crate::config::tests::errors(&src("http", extra))
}

fn has(extra: &str, want: &[&str]) {
    let errs = errors(extra);
    assert!(errs.iter().any(|e| want.iter().all(|w| e.contains(w))), "expected {want:?} in {errs:#?}");
}

#[test]
fn valid_rules_reach_the_snapshot_in_order() {
    let extra = "use_server = [{ server = \"b\", if = \"api\" }, { server = \"%[req.hdr(x-srv)]\", unless = \"{ path_beg /x }\" }]\npersist_rules = [{ action = \"ignore-persist\", if = \"api\" }, { action = \"force-persist\", if = \"{ hdr(x-test) -m found }\" }]";
    let snap = parse(&src("http", extra), Path::new("t.toml")).unwrap();
    let r = &snap.backends[0].server_rules;
    assert!(matches!(r.use_server[0].target, ServerTarget::Server(1)));
    assert!(matches!(r.use_server[1].target, ServerTarget::Dynamic(_)));
    let actions: Vec<_> = r.persist.iter().map(|p| p.action).collect();
    assert_eq!(actions, [PersistAction::Ignore, PersistAction::Force]);
}

#[test]
fn each_error_is_located() {
    has("use_server = [{ server = \"nosuch\", if = \"api\" }]", &["use_server[0].server", "no such server", "nosuch"]);
    has("use_server = [{ server = \"a\" }]", &["use_server[0]", "requires either `if` or `unless`"]);
    has("use_server = [{ server = \"a\", if = \"nope\" }]", &["use_server[0].if", "nope"]);
    has("use_server = [{ server = \"a\", if = \"api\", unless = \"api\" }]", &["use_server[0]", "not both"]);
    has("persist_rules = [{ action = \"force-persist\" }]", &["persist_rules[0]", "`force-persist` requires"]);
    has("persist_rules = [{ action = \"persist\", if = \"api\" }]", &["persist_rules[0].action", "persist"]);
    has("use_server = [{ server = \"%[nosuchfetch]\", if = \"api\" }]", &["use_server[0].server"]);
}

#[test]
fn not_in_defaults() {
    let e = crate::config::tests::errors(&format!(
        "[defaults]\nmode = \"http\"\npersist_rules = [{{ action = \"force-persist\", if = \"TRUE\" }}]\n[[backend]]\nname = \"be\"\nservers = [{TWO}]\n"
    ));
    assert!(e.iter().any(|e| e.contains("persist_rules")), "{e:#?}");
}

#[test]
fn balance_hash_reads_what_the_mode_has() {
    let snap = parse(&src("http", "balance = \"hash req.hdr(x-user),lower\""), Path::new("t.toml")).unwrap();
    assert!(snap.backends[0].hash_expr.is_some());
    let snap = parse(&src("tcp", "balance = \"hash req.payload(0,4)\""), Path::new("t.toml")).unwrap();
    assert!(snap.backends[0].hash_expr.is_some());
    assert!(
        parse(&src("tcp", "balance = \"rdp-cookie\""), Path::new("t.toml")).unwrap().backends[0].hash_expr.is_none()
    );
    has("balance = \"hash res.hdr(x)\"", &["balance", "reads the response", "res.hdr(x)"]);
    has("balance = \"hash req.payload(0,4)\"", &["balance", "raw request buffer"]);
    has("balance = \"hash nosuch\"", &["balance", "nosuch"]);
    has("balance = \"hash\"", &["balance", "sample expression"]);
    let e = crate::config::tests::errors(&src("tcp", "balance = \"hash req.hdr(x)\""));
    assert!(e.iter().any(|e| e.contains("needs mode http")), "{e:#?}");
}

#[test]
fn mode_tcp_rules_read_the_held_bytes() {
    let extra = "use_server = [{ server = \"b\", if = \"{ req.ssl_sni -i b.example.com }\" }, { server = \"%[req.ssl_sni,field(1,.)]\", if = \"TRUE\" }]\npersist_rules = [{ action = \"force-persist\", if = \"RDP_COOKIE\" }]";
    let snap = parse(&src("tcp", extra), Path::new("t.toml")).unwrap();
    let b = &snap.backends[0];
    assert!(b.server_rules.is_empty(), "mode tcp keeps them with its TCP rules");
    assert_eq!((b.tcp.server_rules.use_server.len(), b.tcp.server_rules.persist.len()), (2, 1));
    let e = crate::config::tests::errors(&src("tcp", "use_server = [{ server = \"nosuch\", if = \"TRUE\" }]"));
    assert!(e.iter().any(|e| e.contains("use_server[0].server") && e.contains("nosuch")), "{e:#?}");
    let e = crate::config::tests::errors(&src("tcp", "use_server = [{ server = \"a\" }]"));
    assert!(e.iter().any(|e| e.contains("requires either")), "{e:#?}");
    let e = crate::config::tests::errors(&src(
        "tcp",
        "use_server = [{ server = \"a\", if = \"{ req.hdr(host) -m found }\" }]",
    ));
    assert!(e.iter().any(|e| e.contains("use_server[0].if") && e.contains("HTTP")), "{e:#?}");
}

#[test]
fn persist_rdp_cookie_names_its_cookie() {
    let snap = parse(&src("tcp", "persist = \"rdp-cookie\""), Path::new("t.toml")).unwrap();
    assert_eq!(snap.backends[0].rdp_persist.as_deref(), Some("msts"));
    let snap = parse(&src("tcp", "persist = \"rdp-cookie(x)\""), Path::new("t.toml")).unwrap();
    assert_eq!(snap.backends[0].rdp_persist.as_deref(), Some("x"));
    let e = crate::config::tests::errors(&src("tcp", "persist = \"cookie\""));
    assert!(e.iter().any(|e| e.contains("persist") && e.contains("rdp-cookie")), "{e:#?}");
    let e = crate::config::tests::errors(&src("tcp", "persist = \"rdp-cookie()\""));
    assert!(e.iter().any(|e| e.contains("persist")), "{e:#?}");
}
