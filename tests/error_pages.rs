//! Error pages compared byte for byte with the real HAProxy 2.6 (Debian's `haproxy`): the same
//! configuration (built-in pages, `errorfile`, `errorloc*`, `http-errors`/`errorfiles`,
//! `http-error`, `defaults` inheritance, backend over frontend) is run by both, the same requests
//! are sent, and status line, headers, body and whether the connection stays open must agree.

mod common;

use common::{Lbha, TempDir, free_port, haproxy_bin};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_haproxy(cfg: &std::path::Path, port: u16) -> Haproxy {
    let child = Command::new(haproxy_bin().unwrap())
        .args(["-db", "-f"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let mut h = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(h.0.try_wait().unwrap().is_none(), "haproxy exited");
        assert!(Instant::now() < deadline, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

/// What a client saw: the head as sent, the body, and whether a second request on the same
/// connection was answered.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    head: String,
    body: String,
    kept_open: bool,
}

fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return if head.is_empty() { None } else { Some(head) },
        }
    }
    Some(head)
}

fn exchange(port: u16, path: &str) -> Seen {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).unwrap();
    let head = read_head(&mut s).expect("a response head");
    let text = String::from_utf8_lossy(&head).into_owned();
    let len = text.lines().find_map(|l| {
        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
    });
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            s.read_exact(&mut body).unwrap();
        }
        None => {
            let _ = s.read_to_end(&mut body);
        }
    }
    // A second request: answered only if the connection stayed open.
    let kept_open = len.is_some()
        && s.write_all(b"GET /deny HTTP/1.1\r\nHost: a\r\n\r\n").is_ok()
        && read_head(&mut s).is_some_and(|h| h.starts_with(b"HTTP/1.1 "));
    Seen { head: text, body: String::from_utf8_lossy(&body).into_owned(), kept_open }
}

const FILES: &[(&str, &str)] = &[
    ("fe503.http", "HTTP/1.1 503 Frontend Down\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nfe down\n"),
    (
        "be503.http",
        "HTTP/1.1 503 Backend Down\r\nContent-Type: text/plain\r\nX-Page: be\r\nContent-Length: 8\r\n\r\nbe down\n",
    ),
    ("lf504.txt", "timed out on %[path] for %[req.hdr(host)]\n"),
    ("d410.http", "HTTP/1.1 410 Gone For Good\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\ngone\n"),
    ("s429.http", "HTTP/1.1 429 Slow Down\r\nRetry-After: 5\r\nContent-Length: 5\r\n\r\nslow\n"),
    (
        "close500.http",
        "HTTP/1.0 500 Broken\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nbroken\n",
    ),
];

/// Paths denied with each built-in code, then the customised ones.
const BUILTIN: &[u16] = &[400, 403, 404, 405, 408, 425, 429, 500, 501, 502, 504];

fn haproxy_cfg(port: u16, dir: &str) -> String {
    let mut denies = String::new();
    for c in BUILTIN {
        denies += &format!("  http-request deny deny_status {c} if {{ path /b{c} }}\n");
    }
    format!(
        "defaults\n  mode http\n  retries 0\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n  errorfile 410 {dir}/d410.http\n\
         http-errors site\n  errorfile 429 {dir}/s429.http\n  errorfile 503 {dir}/fe503.http\n\
         frontend f\n  bind 127.0.0.1:{port}\n  errorfiles site 429\n  errorfile 503 {dir}/fe503.http\n  errorloc 404 http://x.example/nf\n  errorloc303 405 /other\n\
         \x20 http-error status 501 content-type text/plain string \"not here\" hdr X-Why nope\n\
         \x20 http-error status 502 content-type text/plain lf-string \"no gateway to %[path] (%ci)\" hdr X-Where \"%[path]-%ci\" hdr X-Static fixed\n\
         \x20 http-error status 504 content-type text/plain lf-file {dir}/lf504.txt\n  errorfile 500 {dir}/close500.http\n\
         \x20 http-request deny if {{ path /deny }}\n{denies}\
         \x20 http-request deny deny_status 410 if {{ path /gone }}\n  http-request deny deny_status 429 if {{ path /slow }}\n\
         \x20 http-request deny deny_status 404 if {{ path /nf }}\n  http-request deny deny_status 405 if {{ path /other }}\n\
         \x20 http-request deny deny_status 501 if {{ path /ni }}\n  http-request deny deny_status 500 if {{ path /broken }}\n\
         \x20 use_backend empty if {{ path /empty }}\n  use_backend plain if {{ path /plain }}\n  default_backend dead\n\
         backend dead\n  errorfile 503 {dir}/be503.http\n  server s 127.0.0.1:1\n\
         backend plain\n  server s 127.0.0.1:1\n\
         backend empty\n"
    )
}

fn lbha_cfg(port: u16, dir: &str) -> String {
    let mut denies = String::new();
    for c in BUILTIN {
        denies += &format!("  {{ deny = {{ status = {c} }}, if = \"{{ path /b{c} }}\" }},\n");
    }
    format!(
        r#"
[defaults]
mode = "http"
retries = 0
timeout = {{ connect = "2s", client = "10s", server = "10s" }}
errorfile = {{ 410 = "{dir}/d410.http" }}
[[http_errors]]
name = "site"
errorfile = {{ 429 = "{dir}/s429.http", 503 = "{dir}/fe503.http" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{port}"]
errorfiles = [{{ name = "site", codes = [429] }}]
errorfile = {{ 503 = "{dir}/fe503.http", 500 = "{dir}/close500.http" }}
errorloc = {{ 404 = "http://x.example/nf" }}
errorloc303 = {{ 405 = "/other" }}
http_error = [
  {{ status = 501, content_type = "text/plain", string = "not here", hdr = ["X-Why: nope"] }},
  {{ status = 502, content_type = "text/plain", lf_string = "no gateway to %[path] (%ci)", hdr = ["X-Where: %[path]-%ci", "X-Static: fixed"] }},
  {{ status = 504, content_type = "text/plain", lf_file = "{dir}/lf504.txt" }},
]
http_request = [
  {{ deny = {{}}, if = "{{ path /deny }}" }},
{denies}  {{ deny = {{ status = 410 }}, if = "{{ path /gone }}" }},
  {{ deny = {{ status = 429 }}, if = "{{ path /slow }}" }},
  {{ deny = {{ status = 404 }}, if = "{{ path /nf }}" }},
  {{ deny = {{ status = 405 }}, if = "{{ path /other }}" }},
  {{ deny = {{ status = 501 }}, if = "{{ path /ni }}" }},
  {{ deny = {{ status = 500 }}, if = "{{ path /broken }}" }},
]
use_backend = [{{ backend = "empty", if = "{{ path /empty }}" }}, {{ backend = "plain", if = "{{ path /plain }}" }}]
default_backend = "dead"
[[backend]]
name = "dead"
errorfile = {{ 503 = "{dir}/be503.http" }}
servers = [{{ name = "s", addr = "127.0.0.1:1" }}]
[[backend]]
name = "plain"
servers = [{{ name = "s", addr = "127.0.0.1:1" }}]
[[backend]]
name = "empty"
"#
    )
}

#[test]
fn error_pages_are_byte_identical_to_haproxys() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("errpages");
    for (name, text) in FILES {
        dir.write(name, text);
    }
    let d = dir.0.display().to_string();
    let (hp, lp) = (free_port(), free_port());
    let hcfg = dir.write("haproxy.cfg", &haproxy_cfg(hp, &d));
    let _h = start_haproxy(&hcfg, hp);
    let _l = Lbha::start(&lbha_cfg(lp, &d), &[lp]);
    let mut paths: Vec<String> = BUILTIN.iter().map(|c| format!("/b{c}")).collect();
    for p in ["/deny", "/gone", "/slow", "/nf", "/other", "/ni", "/broken", "/empty", "/plain", "/x"] {
        paths.push(p.to_string());
    }
    let mut diffs = Vec::new();
    for p in &paths {
        let theirs = exchange(hp, p);
        let ours = exchange(lp, p);
        if theirs != ours {
            diffs.push(format!("{p}\n  haproxy: {theirs:?}\n  lbha:    {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} of {} differ:\n{}", diffs.len(), paths.len(), diffs.join("\n"));
}

#[test]
fn a_bad_errorfile_is_refused_with_its_location() {
    let dir = TempDir::new("errpages-bad");
    dir.write("bad.http", "HTTP/1.1 503 Down\r\nContent-Length: 9\r\n\r\ndown\n");
    let d = dir.0.display().to_string();
    let cfg = dir.write(
        "lbha.toml",
        &format!("[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\nerrorfile = {{ 503 = \"{d}/bad.http\" }}\n"),
    );
    let out = Command::new(common::lbha_bin()).arg("check").arg("-c").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("frontend[0].errorfile.503"), "{err}");
    assert!(err.contains("payload size does not match the announced content-length (5 != 9)"), "{err}");
}

#[test]
fn a_bad_lf_string_error_page_is_refused_with_its_location() {
    let dir = TempDir::new("errpages-badlf");
    let cfg = dir.write(
        "lbha.toml",
        "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n\
         http_error = [{ status = 503, content_type = \"text/plain\", lf_string = \"down %Zz\" }, { status = 502, lf_string = \"x\" }, \
         { status = 504, hdr = [\"X-Ok: %[path]\", \"X-Bad: %[nope()]\"] }]\n",
    );
    let out = Command::new(common::lbha_bin()).arg("check").arg("-c").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("frontend[0].http_error[0].lf_string") && err.contains("%Zz"), "{err}");
    assert!(err.contains("frontend[0].http_error[1].content_type: a body needs a content_type"), "{err}");
    assert!(err.contains("frontend[0].http_error[2].hdr[1]") && err.contains("nope"), "{err}");
    assert!(!err.contains("http_error[2].hdr[0]"), "{err}");
}

/// How much of an answer must agree with HAProxy's: all of it, the same lines in any order
/// (lbha writes `content-type` first), or the status and `location` of a redirect (lbha sends
/// no `cache-control` with one).
#[derive(Clone, Copy)]
enum Same {
    Bytes,
    Lines,
    Location,
}

fn same(how: Same, a: &Seen, b: &Seen) -> bool {
    let lines = |s: &Seen| {
        let mut l: Vec<String> = s.head.lines().map(str::to_ascii_lowercase).filter(|l| !l.is_empty()).collect();
        l[1..].sort();
        l
    };
    let loc = |s: &Seen| {
        let l = lines(s);
        (l[0].clone(), l.into_iter().find(|x| x.starts_with("location:")))
    };
    match how {
        Same::Bytes => a == b,
        Same::Lines => lines(a) == lines(b) && a.body == b.body && a.kept_open == b.kept_open,
        Same::Location => loc(a) == loc(b),
    }
}

const RULE_PAGES: &[(&str, Same)] = &[
    ("/deny", Same::Bytes),
    ("/rf", Same::Bytes),
    ("/df", Same::Bytes),
    ("/rs", Same::Bytes),
    ("/ds", Same::Bytes),
    ("/rd", Same::Bytes),
    ("/dd", Same::Bytes),
    ("/bd", Same::Bytes),
    ("/dh", Same::Bytes),
    ("/dl", Same::Lines),
    ("/rh", Same::Lines),
    ("/pre", Same::Location),
    ("/sch", Same::Location),
];

/// `deny`/`return` with `errorfile`, `errorfiles`, `default-errorfiles`, `lf-file` and
/// log-format `hdr` values, and `redirect prefix|scheme` with log-format, against HAProxy.
#[test]
fn rule_answers_with_error_pages_and_log_formats_match_haproxys() {
    if haproxy_bin().is_none() {
        println!("skipped: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = TempDir::new("errpages-rules");
    for (name, text) in FILES {
        dir.write(name, text);
    }
    dir.write("f403.http", "HTTP/1.1 403 Go Away\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\naway\n");
    dir.write("lf.txt", "denied %[path] on %[req.hdr(host)]\n");
    let d = dir.0.display().to_string();
    let (hp, lp) = (free_port(), free_port());
    let hcfg = format!(
        "defaults\n  mode http\n  retries 0\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
         http-errors site\n  errorfile 503 {d}/fe503.http\n\
         frontend f\n  bind 127.0.0.1:{hp}\n  errorfile 403 {d}/f403.http\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request return status 404 errorfile {d}/s429.http if {{ path /rf }}\n\
         \x20 http-request deny deny_status 404 errorfile {d}/s429.http if {{ path /df }}\n\
         \x20 http-request return status 503 errorfiles site if {{ path /rs }}\n\
         \x20 http-request deny deny_status 404 errorfiles site if {{ path /ds }}\n\
         \x20 http-request return status 403 default-errorfiles if {{ path /rd }}\n\
         \x20 http-request deny deny_status 403 default-errorfiles if {{ path /dd }}\n\
         \x20 use_backend b if {{ path /bd }}\n\
         \x20 http-request deny hdr x-d 1 if {{ path /dh }}\n\
         \x20 http-request deny deny_status 404 content-type text/plain lf-file {d}/lf.txt hdr x-h \"v %[req.hdr(host)]\" hdr x-e \"%[req.hdr(x-none)]\" if {{ path /dl }}\n\
         \x20 http-request return status 200 content-type text/plain string ok hdr x-p \"%[path]\" hdr x-s fixed if {{ path /rh }}\n\
         \x20 http-request redirect prefix /p%[req.hdr(host)] if {{ path /pre }}\n\
         \x20 http-request redirect scheme %[req.hdr(host)]s code 301 if {{ path /sch }}\n\
         \x20 default_backend dead\n\
         backend dead\n  server s 127.0.0.1:1\n\
         backend b\n  errorfile 503 {d}/be503.http\n  http-request return status 503 default-errorfiles\n"
    );
    let lcfg = format!(
        r#"
[defaults]
mode = "http"
retries = 0
timeout = {{ connect = "2s", client = "10s", server = "10s" }}
[[http_errors]]
name = "site"
errorfile = {{ 503 = "{d}/fe503.http" }}
[[frontend]]
name = "f"
bind = ["127.0.0.1:{lp}"]
errorfile = {{ 403 = "{d}/f403.http" }}
http_request = [
  {{ deny = {{}}, if = "{{ path /deny }}" }},
  {{ return = {{ status = 404, errorfile = "{d}/s429.http" }}, if = "{{ path /rf }}" }},
  {{ deny = {{ status = 404, errorfile = "{d}/s429.http" }}, if = "{{ path /df }}" }},
  {{ return = {{ status = 503, errorfiles = "site" }}, if = "{{ path /rs }}" }},
  {{ deny = {{ status = 404, errorfiles = "site" }}, if = "{{ path /ds }}" }},
  {{ return = {{ status = 403, default_errorfiles = true }}, if = "{{ path /rd }}" }},
  {{ deny = {{ status = 403, default_errorfiles = true }}, if = "{{ path /dd }}" }},
  {{ deny = {{ headers = ["x-d: 1"] }}, if = "{{ path /dh }}" }},
  {{ deny = {{ status = 404, content_type = "text/plain", lf_file = "{d}/lf.txt", headers = ["x-h: v %[req.hdr(host)]", "x-e: %[req.hdr(x-none)]"] }}, if = "{{ path /dl }}" }},
  {{ return = {{ status = 200, content_type = "text/plain", body = "ok", headers = ["x-p: %[path]", "x-s: fixed"] }}, if = "{{ path /rh }}" }},
  {{ redirect = {{ prefix = "/p%[req.hdr(host)]" }}, if = "{{ path /pre }}" }},
  {{ redirect = {{ scheme = "%[req.hdr(host)]s", code = 301 }}, if = "{{ path /sch }}" }},
]
use_backend = [{{ backend = "b", if = "{{ path /bd }}" }}]
default_backend = "dead"
[[backend]]
name = "dead"
servers = [{{ name = "s", addr = "127.0.0.1:1" }}]
[[backend]]
name = "b"
errorfile = {{ 503 = "{d}/be503.http" }}
http_request = [{{ return = {{ status = 503, default_errorfiles = true }} }}]
"#
    );
    let hcfg = dir.write("haproxy.cfg", &hcfg);
    let _h = start_haproxy(&hcfg, hp);
    let _l = Lbha::start(&lcfg, &[lp]);
    let mut diffs = Vec::new();
    for (p, how) in RULE_PAGES {
        let theirs = exchange(hp, p);
        let ours = exchange(lp, p);
        if !same(*how, &theirs, &ours) {
            diffs.push(format!("{p}\n  haproxy: {theirs:?}\n  lbha:    {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} of {} differ:\n{}", diffs.len(), RULE_PAGES.len(), diffs.join("\n"));
}
