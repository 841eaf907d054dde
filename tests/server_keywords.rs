//! Server-line keywords of issue 17 end to end: `redir` (a 302 instead of forwarding) and
//! `source` (the local address of server connections), against test servers on loopback.

mod common;
mod kit;

use common::*;
use kit::Web;

fn http_listen(port: u16, servers: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "500ms", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{servers}]
"#
    )
}

#[test]
fn redir_answers_get_and_head_with_a_302_and_forwards_the_rest() {
    let w = Web::start("W");
    let port = free_port();
    let servers = format!("{{ name = \"s\", addr = \"127.0.0.1:{}\", redir = \"http://img.example.com\" }}", w.port);
    let _l = Lbha::start(&http_listen(port, &servers), &[port]);
    let r = get(port, "/a/b?x=1");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://img.example.com/a/b?x=1"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("connection"), Some("close"));
    let head = raw(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n").expect("HEAD answered");
    assert_eq!((head.status, head.header("location")), (302, Some("http://img.example.com/h")));
    assert!(w.requests().is_empty(), "GET and HEAD never reach the server");
    let post = raw(port, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        .expect("POST answered");
    assert_eq!(post.status, 200);
    assert_eq!(w.count("/p"), 1, "other methods are forwarded");
}
