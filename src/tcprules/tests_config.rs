//! Validation of TCP rules into the snapshot: backend content rules, the stages' fetches, and
//! omitted proxy arguments filled with the rule's section as HAProxy 2.6 does (checked against
//! `haproxy -c`).

use crate::config::Snapshot;
use crate::sample::Fetch;
use std::path::Path;
use std::time::Duration;

/// A frontend `fe`, a backend `bk` (server `s`) and a listen `ls` (server `s`), each with its
/// extra lines.
fn config(mode: &str, fe: &str, bk: &str, ls: &str) -> String {
    format!(
        r#"
[defaults]
mode = "{mode}"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
tcp_request_inspect_delay = "3s"
[[frontend]]
name = "fe"
bind = ["127.0.0.1:18950"]
default_backend = "bk"
{fe}
[[backend]]
name = "bk"
servers = [{{ name = "s", addr = "127.0.0.1:18951" }}]
{bk}
[[listen]]
name = "ls"
bind = ["127.0.0.1:18952"]
servers = [{{ name = "s", addr = "127.0.0.1:18951" }}]
{ls}
"#
    )
}

fn ok(src: &str) -> Snapshot {
    crate::config::parse(src, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n---\n{src}"))
}

fn err(src: &str) -> String {
    match crate::config::parse(src, Path::new("t.toml")) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e.to_string(),
    }
}

fn rule(set: &str, action: &str, cond: &str) -> String {
    format!("tcp_request = [{{ {set} = \"{action}\", if = \"{{ {cond} }}\" }}]")
}

/// The fetches of the first inline condition of `rules[0]`.
fn first_fetch(rules: &[super::Rule]) -> Fetch {
    let c = rules[0].cond.as_ref().expect("a condition");
    c.inline_acls().next().expect("an inline ACL").fetches()[0].clone()
}

#[test]
fn backend_content_rules_and_inspect_delay_are_taken_in_both_modes() {
    for mode in ["tcp", "http"] {
        let bk = rule("content", "reject", "src 192.0.2.1");
        let s = ok(&config(mode, "", &bk, ""));
        let (i, b) = s.backend("bk").unwrap();
        assert_eq!(b.tcp.content.len(), 1, "mode {mode}");
        assert_eq!(b.tcp.inspect_delay, Some(Duration::from_secs(3)), "inherited from defaults");
        // A listen's content rules are its frontend half's: they run once, not twice.
        let s = ok(&config(mode, "", "", &rule("content", "reject", "src 192.0.2.1")));
        let (li, l) = s.backend("ls").unwrap();
        assert!(l.tcp.content.is_empty() && li != i);
        assert_eq!(s.frontend("ls").unwrap().1.tcp.content.len(), 1);
    }
}

#[test]
fn backend_refuses_connection_and_session_rules_and_capture() {
    for set in ["connection", "session"] {
        let e = err(&config("tcp", "", &rule(set, "reject", "src 192.0.2.1"), ""));
        assert!(e.contains(&format!("tcp-request {set} is not allowed because backend bk is not a frontend")), "{e}");
    }
    let e = err(&config("tcp", "", r#"tcp_request = [{ content = "capture req.len len 10" }]"#, ""));
    assert!(e.contains("`capture` needs a frontend"), "{e}");
}

#[test]
fn omitted_proxy_arguments_are_the_rules_own_section() {
    // In a backend: its own servers and sessions.
    let bk = "tcp_request = [\n  { content = \"reject\", if = \"{ nbsrv lt 1 }\" },\n  { content = \"reject\", if = \"{ be_conn gt 10 }\" },\n  { content = \"reject\", if = \"{ connslots lt 0 }\" },\n  { content = \"reject\", unless = \"{ srv_is_up(s) }\" },\n]";
    let s = ok(&config("tcp", "", bk, ""));
    let rules = &s.backend("bk").unwrap().1.tcp.content;
    let got: Vec<Fetch> = (0..4).map(|i| first_fetch(&rules[i..])).collect();
    let bk = Some("bk".to_string());
    assert_eq!(
        got,
        [
            Fetch::Nbsrv(bk.clone()),
            Fetch::BeConn(bk.clone()),
            Fetch::Connslots(bk.clone()),
            Fetch::SrvIsUp { backend: bk, server: "s".into() },
        ]
    );
    // A listen has both halves.
    let ls = "tcp_request = [{ connection = \"reject\", if = \"{ fe_conn gt 10 }\" }, { content = \"reject\", if = \"{ nbsrv lt 1 }\" }]";
    let s = ok(&config("tcp", "", "", ls));
    let t = &s.frontend("ls").unwrap().1.tcp;
    assert_eq!(first_fetch(&t.connection), Fetch::FeConn(Some("ls".into())));
    assert_eq!(first_fetch(&t.content), Fetch::Nbsrv(Some("ls".into())));
    // Where the section lacks the capability, HAProxy refuses the configuration.
    for (f, cap) in [("nbsrv lt 1", "backend"), ("be_conn gt 1", "backend"), ("connslots gt 1", "backend")] {
        let e = err(&config("tcp", &rule("content", "reject", f), "", ""));
        assert!(e.contains(&format!("has no {cap} capability")), "{f}: {e}");
    }
    let e = err(&config("tcp", "", &rule("content", "reject", "fe_conn gt 1"), ""));
    assert!(e.contains("has no frontend capability"), "{e}");
    let e = err(&config("tcp", &rule("content", "reject", "srv_is_up(s)"), "", ""));
    assert!(e.contains("no server `s` in this section"), "{e}");
    // Named arguments are kept; in set-var expressions too.
    let fe = r#"tcp_request = [{ content = "set-var(sess.n) nbsrv(bk)" }, { connection = "set-var(proc.c) fe_conn" }]"#;
    let s = ok(&config("tcp", fe, "", ""));
    let t = &s.frontend("fe").unwrap().1.tcp;
    match (&t.content[0].action, &t.connection[0].action) {
        (super::Action::SetVar(_, a), super::Action::SetVar(v, b)) => {
            assert_eq!(a.fetch, Fetch::Nbsrv(Some("bk".into())));
            assert_eq!((v.scope, &b.fetch), (crate::sample::VarScope::Proc, &Fetch::FeConn(Some("fe".into()))));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_http_frontends_acl_for_http_rules_keeps_its_runtime_meaning() {
    // `nbsrv` without argument in an ACL only HTTP rules use: the chosen backend at run time
    // (the HTTP side's meaning), not a TCP-rule error.
    let fe = "acl = [{ name = \"down\", cond = \"nbsrv lt 1\" }]\nhttp_request = [{ deny = {}, if = \"down\" }]";
    ok(&config("http", fe, "", ""));
}

#[test]
fn stages_take_what_haproxy_gives_them() {
    for f in ["rand(10) gt 100", "hostname -m found", "var(proc.x) -m found", "nbsrv(bk) lt 1", "srv_is_up(bk/s)"] {
        for set in ["connection", "session", "content"] {
            ok(&config("tcp", &rule(set, "reject", f), "", ""));
        }
        ok(&config("http", "", &rule("content", "reject", f), ""));
    }
    // An HTTP backend's content rules run on the parsed request: HTTP fetches and `req.len`
    // work; TLS-hello and payload fetches give nothing, with HAProxy's warning.
    for f in ["path /no", "req.len gt 10", "method GET"] {
        ok(&config("http", "", &rule("content", "reject", f), ""));
    }
    let s = ok(&config("http", "", &rule("content", "reject", "req.ssl_sni -m found"), ""));
    assert!(s.warnings.iter().any(|w| w.contains("L6 sample fetches give nothing")), "{:?}", s.warnings);
    // In mode tcp, HTTP fetches stay refused; `set-var(proc.x)` is taken everywhere.
    let e = err(&config("tcp", "", &rule("content", "reject", "path /no"), ""));
    assert!(e.contains("HTTP fetches are not available"), "{e}");
    ok(&config("http", r#"tcp_request = [{ connection = "set-var(proc.x) src" }]"#, "", ""));
    let e = err(&config("http", r#"tcp_request = [{ connection = "set-var(txn.x) src" }]"#, "", ""));
    assert!(e.contains("`sess` and `proc` scopes only"), "{e}");
    ok(&config("http", "", r#"tcp_request = [{ content = "set-var(txn.x) src" }]"#, ""));
    // An HTTP frontend's content rules run on each request too.
    ok(&config("http", r#"tcp_request = [{ content = "set-var(txn.x) src" }]"#, "", ""));
    for f in ["path /no", "req.len gt 10"] {
        ok(&config("http", &rule("content", "reject", f), "", ""));
    }
    let e = err(&config("http", &rule("connection", "reject", "path /no"), "", ""));
    assert!(e.contains("HTTP fetches are not available"), "{e}");
}

#[test]
fn response_rules_read_the_servers_bytes_and_refuse_the_requests() {
    let bk = r#"tcp_response_inspect_delay = "2s"
tcp_response = [
  { content = "reject", if = "{ res.payload(0,4) -m str EVIL }" },
  { content = "close", if = "{ res.payload_lv(0,1) -m str bye }" },
  { content = "set-var(sess.kind) res.ssl_hello_type" },
  { content = "accept", if = "{ srv_name s }" },
]"#;
    let s = ok(&config("tcp", "", bk, ""));
    let (_, b) = s.backend("bk").unwrap();
    assert_eq!(b.tcp.response.len(), 4);
    assert_eq!(b.tcp.response_delay, Some(Duration::from_secs(2)));
    assert!(matches!(b.tcp.response[1].action, super::Action::Close));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // An ACL over the other direction's buffer never matches: HAProxy's warning.
    let s = ok(&config(
        "tcp",
        &rule("content", "reject", "res.len gt 0"),
        "tcp_response = [{ content = \"reject\", if = \"{ req.len gt 0 }\" }]",
        "",
    ));
    let w = s.warnings.join("\n");
    assert!(w.contains("never matches: it reads the response buffer, which tcp-request content"), "{w}");
    assert!(w.contains("never matches: it reads the request buffer, which tcp-response content"), "{w}");
    // In an action's sample it is an error, as in HAProxy.
    let e = err(&config("tcp", "tcp_request = [{ content = \"set-var(sess.a) res.len\" }]", "", ""));
    assert!(
        e.contains("frontend[0].tcp_request[0].content") && e.contains("reads the response buffer, none of which"),
        "{e}"
    );
    let e = err(&config("tcp", "", "tcp_response = [{ content = \"set-var(sess.a) req.payload(0,2)\" }]", ""));
    assert!(e.contains("backend[0].tcp_response[0].content") && e.contains("reads the request buffer"), "{e}");
    // `close` is tcp-response's alone; payload_lv's arguments are HAProxy's.
    let e = err(&config("tcp", "tcp_request = [{ content = \"close\" }]", "", ""));
    assert!(e.contains("`close` is an action of tcp-response content only"), "{e}");
    let e = err(&config(
        "tcp",
        "",
        "tcp_response = [{ content = \"accept\", if = \"{ res.payload_lv(0,0) -m len 1 }\" }]",
        "",
    ));
    assert!(e.contains("payload length must be > 0"), "{e}");
}

#[test]
fn response_rules_of_an_http_backend_are_refused_not_ignored() {
    let e = err(&config("http", "", "tcp_response = [{ content = \"reject\", if = \"{ src 192.0.2.1 }\" }]", ""));
    assert!(e.contains("backend[0].tcp_response") && e.contains("not supported by lbha yet"), "{e}");
}
