//! Issue 15's later fetches and converters through the real lbha binary: what only the proxy
//! knows (the server that answered, the response's version and cookies, the request's
//! `Authorization`), and the `set-var` converter writing a variable later rules read.

mod common;
mod kit;

use common::*;
use kit::Web;

#[test]
fn response_rules_know_the_server_and_request_rules_the_credentials() {
    let (app, _other) = (Web::start("app"), Web::start("other"));
    app.set_cookie("sid=s42; Path=/", None);
    let port = free_port();
    // No `log`: the server reaches the response rules without the httplog timers.
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
http_request = [
  {{ set_header = {{ name = "X-Auth", value = "%[http_auth_type]:%[http_auth_user]:%[http_auth_pass]" }} }},
  {{ set_header = {{ name = "X-Host", value = "%[req.hdr(host),host_only,set-var(txn.host),upper]" }} }},
  {{ set_header = {{ name = "X-Url32", value = "%[url32]" }} }},
  {{ set_header = {{ name = "X-Enc", value = "%[urlp(q),url_dec,url_enc]" }} }},
]
http_after_response = [
  {{ set_header = {{ name = "X-After", value = "%[srv_name] %[var(txn.host)] %[fe_name]" }} }},
]

[[backend]]
name = "app"
servers = [{{ name = "other", addr = "127.0.0.1:{}", weight = 0 }}, {{ name = "a", addr = "127.0.0.1:{}" }}]
http_response = [
  {{ set_header = {{ name = "X-Srv", value = "%[srv_name]/%[srv_id]/%[be_name]/%[res.ver]/%[res.cook(sid)]" }} }},
]
"#,
        _other.port, app.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    let r = raw(
        port,
        b"GET /p?q=a%20b HTTP/1.1\r\nHost: Www.Example.com:8080\r\nAuthorization: Basic YWw6cHc=\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-srv"), Some("a/2/app/1.1/s42"));
    assert_eq!(r.header("x-after"), Some("a www.example.com fe"));
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-auth"), Some("Basic:al:pw"));
    assert_eq!(seen.header("x-host"), Some("WWW.EXAMPLE.COM"));
    assert_eq!(seen.header("x-enc"), Some("a%20b"));
    let url32 = seen.header("x-url32").unwrap();
    assert!(url32.parse::<u32>().is_ok(), "{url32}");
}

/// `fe_sess_rate`, `fe_req_rate`, `be_sess_rate` and `srv_sess_rate` read the proxies' own
/// one-second rates: the first request of a fresh process is one of each (a lone event reads
/// whole, so no timing is involved), as HAProxy answers.
#[test]
fn proxy_rates_count_the_first_session_and_request() {
    let app = Web::start("app");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"

[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]
http_response = [
  {{ set_header = {{ name = "X-Rate", value = "%[fe_sess_rate(fe)]/%[fe_req_rate(fe)]/%[be_sess_rate]/%[srv_sess_rate(a)]" }} }},
]
"#,
        app.port
    );
    let _l = Lbha::start(&cfg, &[port]);
    let r = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-rate"), Some("1/1/1/1"));
}
