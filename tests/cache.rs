//! The small-object cache end to end: the real lbha binary in front of loopback servers that
//! count what reaches them. Hits carry `Age`; conditional requests get 304 from the cache;
//! `Set-Cookie`, `Authorization`, `no-store`, `private` and `Vary` (without `process_vary`) keep
//! responses out; a successful POST drops the object; `show cache` lists it.

mod common;
mod kit;

use common::*;
use kit::Web;

const CACHE: &str = r#"
[[cache]]
name = "c"
total_max_size = 4
max_object_size = 20000
max_age = 60
"#;

fn listen(port: u16, server: u16, cache: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
{cache}
[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "s1", addr = "127.0.0.1:{server}" }}]
http_request = [{{ cache_use = "c" }}]
http_response = [{{ cache_store = "c" }}]
"#
    )
}

fn req(port: u16, method: &str, path: &str, extra: &str) -> Resp {
    let text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    let mut s = connect(port);
    std::io::Write::write_all(&mut s, text.as_bytes()).unwrap();
    read_response(&mut s, method == "HEAD").unwrap()
}

#[test]
fn a_cacheable_response_is_served_from_memory_with_its_age() {
    let web = Web::start("s1");
    web.set_body("cached body");
    web.add_header("Cache-Control: max-age=30");
    web.add_header("ETag: \"e1\"");
    let port = free_port();
    let lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
    let first = req(port, "GET", "/obj?x=1", "");
    assert_eq!((first.status, first.text().as_str()), (200, "cached body"));
    assert_eq!(first.header("age"), None, "a miss comes from the server");
    for _ in 0..3 {
        let hit = req(port, "GET", "/obj?x=1", "");
        assert_eq!((hit.status, hit.text().as_str()), (200, "cached body"));
        assert!(hit.header("age").is_some_and(|a| a.parse::<u64>().is_ok()), "{:?}", hit.headers);
        assert_eq!(hit.header("etag"), Some("\"e1\""));
    }
    let head = req(port, "HEAD", "/obj?x=1", "");
    assert_eq!((head.status, head.header("content-length")), (200, Some("11")));
    assert_eq!(web.count("/obj"), 1, "one request reached the server");
    // Another query string is another object.
    req(port, "GET", "/obj?x=2", "");
    assert_eq!(web.count("/obj"), 2);
    let show = lb.ctl(&["show cache"]);
    assert!(show.contains("c: total-max-size:4194304"), "{show}");
    assert!(show.contains("hits:4"), "{show}");
    assert!(show.contains("test/obj?x=1 size:"), "{show}");
    let json = lb.ctl(&["json show cache"]);
    assert!(json.contains("\"objects\":2") || json.contains("\"objects\": 2"), "{json}");
}

#[test]
fn conditional_requests_are_answered_304_from_the_cache() {
    let web = Web::start("s1");
    web.set_body("v1");
    web.add_header("Cache-Control: max-age=30");
    web.add_header("ETag: \"v1\"");
    web.add_header("Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT");
    let port = free_port();
    let _lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
    assert_eq!(req(port, "GET", "/c", "").status, 200);
    let r = req(port, "GET", "/c", "If-None-Match: \"v0\", \"v1\"\r\n");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert!(r.body.is_empty());
    assert_eq!(req(port, "GET", "/c", "If-None-Match: \"v2\"\r\n").status, 200);
    assert_eq!(req(port, "GET", "/c", "If-Modified-Since: Tue, 02 Jan 2024 00:00:00 GMT\r\n").status, 304);
    assert_eq!(req(port, "GET", "/c", "If-Modified-Since: Sun, 31 Dec 2023 00:00:00 GMT\r\n").status, 200);
    assert_eq!(web.count("/c"), 1);
}

#[test]
fn cookies_credentials_and_directives_keep_responses_out() {
    // Set-Cookie: never stored.
    let web = Web::start("s1");
    web.add_header("Cache-Control: max-age=30");
    web.set_cookie("sid={n}", None);
    let port = free_port();
    let _lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
    for _ in 0..2 {
        assert!(req(port, "GET", "/sc", "").header("set-cookie").is_some());
    }
    assert_eq!(web.count("/sc"), 2);
    drop(_lb);

    let web = Web::start("s1");
    web.add_header("Cache-Control: max-age=30");
    let port = free_port();
    let _lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
    // Authorization: the response is not stored.
    req(port, "GET", "/auth", "Authorization: Basic dTpw\r\n");
    req(port, "GET", "/auth", "");
    assert_eq!(web.count("/auth"), 2);
    // Request no-store: not stored; request no-cache: stored object bypassed.
    req(port, "GET", "/ns", "Cache-Control: no-store\r\n");
    req(port, "GET", "/ns", "");
    req(port, "GET", "/ns", "");
    assert_eq!(web.count("/ns"), 2, "stored by the second request only");
    req(port, "GET", "/ns", "Cache-Control: no-cache\r\n");
    assert_eq!(web.count("/ns"), 3);
    // POST is never cached.
    req(port, "POST", "/p", "Content-Length: 0\r\n");
    req(port, "POST", "/p", "Content-Length: 0\r\n");
    assert_eq!(web.count("/p"), 2);
    drop(_lb);

    for header in ["Cache-Control: private, max-age=30", "Cache-Control: no-store", "Vary: Accept-Encoding"] {
        let web = Web::start("s1");
        web.add_header(header);
        if header.starts_with("Vary") {
            web.add_header("Cache-Control: max-age=30");
        }
        let port = free_port();
        let _lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
        req(port, "GET", "/d", "");
        req(port, "GET", "/d", "");
        assert_eq!(web.count("/d"), 2, "{header}: not stored");
    }
}

#[test]
fn process_vary_keeps_one_object_per_variant() {
    let web = Web::start("s1");
    web.add_header("Cache-Control: max-age=30");
    web.add_header("Vary: Accept-Encoding");
    let port = free_port();
    let cache = CACHE.replace("max_age = 60", "max_age = 60\nprocess_vary = true");
    let _lb = Lbha::start(&listen(port, web.port, &cache), &[port]);
    for ae in ["gzip", "br", "gzip", "br"] {
        req(port, "GET", "/v", &format!("Accept-Encoding: {ae}\r\n"));
    }
    assert_eq!(web.count("/v"), 2, "one per variant");
}

#[test]
fn large_objects_are_streamed_but_not_stored() {
    let web = Web::start("s1");
    web.set_body(&"z".repeat(30_000));
    web.add_header("Cache-Control: max-age=30");
    let port = free_port();
    let _lb = Lbha::start(&listen(port, web.port, CACHE), &[port]);
    assert_eq!(req(port, "GET", "/big", "").body.len(), 30_000);
    assert_eq!(req(port, "GET", "/big", "").body.len(), 30_000);
    assert_eq!(web.count("/big"), 2);
}

#[test]
fn backend_rules_cache_and_a_successful_post_drops_the_object() {
    let web = Web::start("s1");
    web.add_header("Cache-Control: max-age=30");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}
{CACHE}
[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "be"

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "127.0.0.1:{}" }}]
http_request = [{{ cache_use = "c", if = "{{ path_beg /s }}" }}]
http_response = [{{ cache_store = "c" }}]
"#,
        web.port
    );
    let _lb = Lbha::start(&cfg, &[port]);
    req(port, "GET", "/s/a", "");
    req(port, "GET", "/s/a", "");
    assert_eq!(web.count("/s/a"), 1);
    req(port, "GET", "/other", "");
    req(port, "GET", "/other", "");
    assert_eq!(web.count("/other"), 2, "the condition limits the cache to /s");
    req(port, "POST", "/s/a", "Content-Length: 0\r\n");
    req(port, "GET", "/s/a", "");
    assert_eq!(web.count("/s/a"), 3, "the POST reached the server and dropped the object");
}

#[test]
fn cache_rules_are_validated_with_located_errors() {
    let dir = TempDir::new("cache-bad");
    let bad = r#"
[defaults]
mode = "http"

[[cache]]
name = "c"
total_max_size = 5000

[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
http_request = [{ cache_use = "nope" }, { cache_store = "c" }]
default_backend = "be"

[[backend]]
name = "be"
servers = [{ name = "s1", addr = "127.0.0.1:2" }]
http_response = [{ cache_use = "c" }]
"#;
    let path = dir.write("lbha.toml", bad);
    let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for want in [
        "cache[0].total_max_size",
        "frontend[0].http_request[0].cache_use",
        "no such cache",
        "frontend[0].http_request[1].cache_store: `cache_store` is not an action of http_request",
        "backend[0].http_response[0].cache_use: `cache_use` is not an action of http_response",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
