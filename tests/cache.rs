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

/// As HAProxy 2.6: a variant on `Accept-Encoding` is keyed on the coding of the response, so a
/// plain one serves every client that does not refuse identity; `Referer` variants match exactly.
#[test]
fn process_vary_keeps_one_object_per_variant() {
    let web = Web::start("s1");
    web.add_header("Cache-Control: max-age=30");
    web.add_header("Vary: Accept-Encoding, Referer");
    let port = free_port();
    let cache = CACHE.replace("max_age = 60", "max_age = 60\nprocess_vary = true");
    let _lb = Lbha::start(&listen(port, web.port, &cache), &[port]);
    for ae in ["gzip", "br", "gzip", "br", ""] {
        req(port, "GET", "/v", &format!("Accept-Encoding: {ae}\r\nReferer: /a\r\n"));
    }
    assert_eq!(web.count("/v"), 1, "a plain variant serves them all");
    req(port, "GET", "/v", "Accept-Encoding: identity;q=0, gzip\r\nReferer: /a\r\n");
    assert_eq!(web.count("/v"), 2, "one that refuses identity goes to the server");
    req(port, "GET", "/v", "Referer: /b\r\n");
    req(port, "GET", "/v", "Referer: /b\r\n");
    assert_eq!(web.count("/v"), 3, "one per referer");
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

/// Answers every request with a compressible text body of 3000 bytes, cacheable for a minute,
/// and `X-N`: how many requests it got so far. The path picks
/// extra headers: `/vary...` a `Vary: Accept-Encoding`, `/gz...` a `Content-Encoding: gzip`.
fn counting_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        for conn in l.incoming().take(200) {
            let Ok(mut s) = conn else { return };
            let n = n.clone();
            std::thread::spawn(move || {
                while let Some(head) = read_request_head(&mut s) {
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let body = "compressible text ".repeat(200)[..3000].to_string();
                    let mut extra = String::new();
                    if path.starts_with("/vary") {
                        extra.push_str("Vary: Accept-Encoding\r\n");
                    }
                    if path.starts_with("/gz") {
                        extra.push_str("Content-Encoding: gzip\r\n");
                    }
                    let out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\nX-N: {k}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if std::io::Write::write_all(&mut s, out.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// What a client sees of one answer: its `Content-Encoding`, whether `Vary` names
/// `Accept-Encoding`, and whether the cache answered it (a hit carries `Age`, which the server
/// never sends).
fn seen(port: u16, path: &str, accept: Option<&str>) -> (Option<String>, bool, &'static str) {
    let extra = accept.map_or(String::new(), |a| format!("Accept-Encoding: {a}\r\n"));
    let r = req(port, "GET", path, &extra);
    assert_eq!(r.status, 200, "{path} {accept:?}");
    let varies = r
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("vary") && v.to_ascii_lowercase().contains("accept-encoding"));
    let from = if r.header("age").is_some() { "cache" } else { "server" };
    (r.header("content-encoding").map(str::to_string), varies, from)
}

/// Cache and compression together, as HAProxy 2.6 runs them (its cache filter before its
/// compression filter): objects are stored as the server sent them and a hit is compressed for
/// a client that accepts gzip, plain for one that does not; compression in a backend does not
/// apply to a hit in the frontend. Each step's `Content-Encoding`, `Vary` and whether the cache
/// answered are compared with HAProxy's on the same config.
#[test]
fn cache_hits_are_compressed_as_haproxy_compresses_them() {
    if !std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join("haproxy").is_file()) {
        eprintln!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let server = counting_server();
    // Where `cache-use`/`cache-store` and `compression` go: (frontend lines, backend lines).
    let cache = "  http-request cache-use c\n  http-response cache-store c\n";
    let comp = "  compression algo gzip\n  compression type text/plain\n";
    let setups = [
        ("both in the backend", String::new(), format!("{cache}{comp}"), ""),
        ("both in the frontend", format!("{cache}{comp}"), String::new(), ""),
        ("cache in the frontend, compression in the backend", cache.to_string(), comp.to_string(), ""),
        ("compression in the frontend, cache in the backend", comp.to_string(), cache.to_string(), ""),
        ("process-vary, both in the backend", String::new(), format!("{cache}{comp}"), "  process-vary on\n"),
    ];
    let steps: &[(&str, Option<&str>)] = &[
        ("/a", Some("gzip")),
        ("/a", Some("gzip")),
        ("/a", None),
        ("/a", Some("deflate")),
        ("/a", Some("gzip;q=0.5, br")),
        ("/b", None),
        ("/b", Some("gzip")),
        ("/b", None),
        ("/vary", Some("gzip")),
        ("/vary", Some("gzip")),
        ("/vary", None),
        ("/vary", Some("deflate")),
        ("/vary", Some("gzip")),
        ("/vary", Some("identity;q=0, gzip")),
        ("/gz", Some("gzip")),
        ("/gz", None),
    ];
    let mut differ = Vec::new();
    for (name, fe, be, vary) in &setups {
        let cfg = |port: u16| {
            format!(
                "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
                 cache c\n  total-max-size 4\n  max-age 60\n{vary}\
                 frontend fe\n  bind 127.0.0.1:{port}\n{fe}  default_backend be\n\
                 backend be\n{be}  server s1 127.0.0.1:{server}\n"
            )
        };
        let (hp, lp) = (free_port(), free_port());
        let (_haproxy, _dir) = haproxy(&cfg(hp), hp);
        let _lb = Lbha::start_haproxy(&cfg(lp), &[lp]);
        for (path, accept) in steps {
            // Paths are per setup: each run starts with its own empty cache.
            let h = seen(hp, path, *accept);
            let l = seen(lp, path, *accept);
            let line = format!("{name}: GET {path} accept {accept:?}: haproxy {h:?}, lbha {l:?}");
            println!("{line}");
            if h != l {
                differ.push(line);
            }
        }
    }
    assert!(differ.is_empty(), "answers that differ from haproxy:\n{}", differ.join("\n"));
}
