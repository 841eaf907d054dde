//! `set-var-fmt(VAR) FMT` (HAProxy 2.5+) in `tcp-request content`, `http-request` and
//! `http-response` rules: an haproxy.cfg converts with nothing dropped and runs, and a later rule
//! that tests the variable acts on it (a lost variable would let the denied request through).

mod common;
mod kit;
use common::*;
use kit::Web;
use std::process::Command;

fn cfg(port: u16, app: u16) -> String {
    format!(
        r#"
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend fe
  bind 127.0.0.1:{port}
  tcp-request content set-var-fmt(sess.conn) "from=%[src]"
  http-request set-var-fmt(txn.key) "%[req.hdr(x-user)]@%[path]"
  http-request deny if {{ var(txn.key) -m str eve@/admin }}
  http-request set-header X-Key %[var(txn.key)]
  http-request set-header X-Conn %[var(sess.conn)]
  http-response set-var-fmt(txn.st) "st=%[status]"
  http-response set-header X-St %[var(txn.st)]
  default_backend be

backend be
  server a 127.0.0.1:{app}
"#
    )
}

fn ask(port: u16, user: &str) -> Resp {
    let req = format!("GET /admin HTTP/1.1\r\nHost: t\r\nX-User: {user}\r\nConnection: close\r\n\r\n");
    raw(port, req.as_bytes()).unwrap()
}

#[test]
fn set_var_fmt_converts_strictly_and_later_rules_see_the_variable() {
    let app = Web::start("app");
    let port = free_port();
    let text = cfg(port, app.port);
    let dir = TempDir::new("set-var-fmt");
    let file = dir.write("haproxy.cfg", &text);
    let conv =
        Command::new(lbha_bin()).args(["convert", "--haproxy", file.to_str().unwrap(), "--strict"]).output().unwrap();
    let err = String::from_utf8_lossy(&conv.stderr);
    assert!(conv.status.success(), "{err}");
    let toml = String::from_utf8_lossy(&conv.stdout);
    assert!(toml.contains("set_var_fmt = { var = \"txn.key\", fmt = \"%[req.hdr(x-user)]@%[path]\" }"), "{toml}");
    assert!(toml.contains("set-var-fmt(sess.conn) from=%[src]"), "{toml}");

    let _l = Lbha::start_haproxy(&text, &[port]);
    assert_eq!(ask(port, "eve").status, 403, "the variable a deny rule tests was set");
    let r = ask(port, "bob");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-st"), Some("st=200"));
    let seen = app.requests();
    assert_eq!(seen.len(), 1, "eve's request was denied before the server");
    assert_eq!(seen[0].header("x-key"), Some("bob@/admin"));
    assert_eq!(seen[0].header("x-conn"), Some("from=127.0.0.1"));
}
