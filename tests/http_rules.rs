//! HTTP rule language end to end: the real lbha binary between a client and recording test
//! servers. Each test checks what the server received and what the client got back.

mod common;
mod kit;

use common::*;
use kit::Web;

fn send(port: u16, req: &str) -> Resp {
    raw(port, req.as_bytes()).unwrap()
}

fn get_h(port: u16, path: &str, extra: &str) -> Resp {
    send(port, &format!("GET {path} HTTP/1.1\r\nHost: www.example.com\r\n{extra}Connection: close\r\n\r\n"))
}

/// A frontend with `rules` (TOML lines inside [[frontend]]) in front of backends `app` and
/// `api` (whose own section gets `api_rules`).
fn config(port: u16, app: &Web, api: &Web, rules: &str, api_rules: &str, extra: &str) -> String {
    format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
{rules}

[[backend]]
name = "app"
servers = [{{ name = "a", addr = "127.0.0.1:{}" }}]

[[backend]]
name = "api"
servers = [{{ name = "b", addr = "127.0.0.1:{}" }}]
{api_rules}

{extra}
"#,
        app.port, api.port
    )
}

#[test]
fn request_rewrites_reach_the_server() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let rules = r#"
acl = [
  { name = "is_api", cond = "path_beg /api/" },
  { name = "local", cond = "src 127.0.0.0/8" },
]
http_request = [
  { set_var = { var = "txn.host", expr = "req.hdr(host),lower,field(1,.)" } },
  { set_header = { name = "X-Host-Label", value = "%[var(txn.host)]" } },
  { add_header = { name = "X-Client", value = "%[src] %ci" }, if = "local" },
  { del_header = "X-Debug" },
  { del_header = { name = "X-Secret-", match = "beg" } },
  { replace_header = { name = "X-Tag", regex = "^v(.*)$", replace = "version-\\1" } },
  { replace_value = { name = "X-List", regex = "^b$", replace = "B" } },
  { set_header = { name = "X-Path-Len", value = "%[path,length]" } },
  { replace_path = { regex = "^/old/(.*)", replace = "/new/\\1" } },
  { set_query = "q=%[urlp(q),upper]", if = "{ urlp(q) -m found }" },
  { set_method = "POST", if = "{ path_beg /post-me }" },
  { set_path = "/rewritten%[path]", if = "{ path_beg /move }" },
]
use_backend = [{ backend = "api", if = "is_api" }]
http_response = [
  { set_header = { name = "X-Seen-Host", value = "%[var(txn.host)]" } },
  { set_status = { status = 299, reason = "Fine" }, if = "{ res.hdr(x-app) -m found } { status 200 }" },
]
"#;
    let api_rules = r#"
http_request = [{ set_header = { name = "X-Backend-Rule", value = "api %[var(txn.host)]" } }]
http_response = [{ add_header = { name = "X-Backend-Res", value = "1" } }]
"#;
    app.add_header("X-App: yes");
    let _l = Lbha::start(&config(port, &app, &api, rules, api_rules, ""), &[port]);

    let r = get_h(
        port,
        "/old/page?q=abc",
        "X-Debug: 1\r\nX-Secret-A: 1\r\nx-secret-b: 2\r\nX-Secret: kept\r\nX-Tag: v7\r\nX-List: a, b\r\nX-List: b\r\n",
    );
    assert_eq!(r.status, 299, "{r:?}");
    assert_eq!(r.header("x-seen-host"), Some("www"));
    assert!(r.header("x-backend-res").is_none(), "the api backend's rules do not run for app");
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.target, "/new/page?q=ABC");
    assert_eq!(seen.header("x-host-label"), Some("www"));
    assert_eq!(seen.header("x-client"), Some("127.0.0.1 127.0.0.1"));
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!((seen.header("x-secret-a"), seen.header("x-secret-b")), (None, None));
    assert_eq!(seen.header("x-secret"), Some("kept"), "`-m beg X-Secret-` leaves X-Secret");
    assert_eq!(seen.header("x-tag"), Some("version-7"));
    let lists: Vec<&str> =
        seen.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("x-list")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(lists, ["a,B", "B"]);
    assert_eq!(seen.header("x-path-len"), Some("9"));

    let r = get_h(port, "/post-me", "");
    assert_eq!(r.status, 299);
    assert_eq!(app.requests().pop().unwrap().method, "POST");
    get_h(port, "/move/x", "");
    assert_eq!(app.requests().pop().unwrap().target, "/rewritten/move/x");

    // Frontend rules, then the backend's (which sees the frontend's variable).
    let r = get_h(port, "/api/v1", "");
    assert_eq!(r.status, 200, "api sends no X-App: set-status does not apply");
    assert_eq!(r.header("x-backend-res"), Some("1"));
    let seen = api.requests().pop().unwrap();
    assert_eq!(seen.header("x-backend-rule"), Some("api www"));
    assert_eq!(seen.header("x-host-label"), Some("www"));
}

#[test]
fn answers_deny_return_redirect_auth_and_after_response() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let rules = r#"
http_request = [
  { allow = true, if = "{ path /allowed } { hdr(x-admin) -m found }" },
  { deny = { status = 429, content_type = "text/plain", string = "slow down" }, if = "{ path_beg /slow }" },
  { deny = {}, if = "{ path_beg /admin } || { path /allowed }" },
  { return = { status = 200, content_type = "text/plain", lf_string = "hello %[req.hdr(x-name)] from %[path]" }, if = "{ path /hello }" },
  { redirect = { scheme = "https", code = 301 }, if = "{ path_beg /secure } !{ ssl_fc }" },
  { redirect = { prefix = "http://other.example", drop_query = true, append_slash = true, set_cookie = "SEEN=1" }, if = "{ path_beg /moved }" },
  { redirect = { location = "/to/%[urlp(to)]", code = 302 }, if = "{ path /go }" },
  { auth = { realm = "Private" }, if = "{ path_beg /private } !{ http_auth(users) }" },
  { tarpit = { status = 503 }, if = "{ path_beg /trap }" },
]
http_after_response = [
  { set_header = { name = "X-Frame-Options", value = "DENY" } },
  { set_status = { status = 418 }, if = "{ status 404 }" },
]
"#;
    let extra = r#"
[[userlist]]
name = "users"
users = [{ name = "alice", insecure_password = "secret" }]
"#;
    let _l = Lbha::start(&config(port, &app, &api, rules, "", extra), &[port]);

    let r = get_h(port, "/slow/x", "");
    assert_eq!((r.status, r.text().as_str()), (429, "slow down"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "after-response runs on lbha's own answers");
    let r = get_h(port, "/admin", "");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    // `allow` stops the list: the deny after it does not apply.
    assert_eq!(get_h(port, "/allowed", "X-Admin: 1\r\n").status, 200);
    assert_eq!(get_h(port, "/allowed", "").status, 403);

    let r = get_h(port, "/hello", "X-Name: bob\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "hello bob from /hello"));

    let r = get_h(port, "/secure/x?a=1", "");
    assert_eq!((r.status, r.header("location")), (301, Some("https://www.example.com/secure/x?a=1")));
    assert_eq!(r.header("cache-control"), None, "a 301 may be cached, as in HAProxy");
    let r = get_h(port, "/moved/x?a=1", "");
    assert_eq!((r.status, r.header("location")), (302, Some("http://other.example/moved/x/")));
    assert_eq!(r.header("cache-control"), Some("no-cache"), "HAProxy marks 302, 303 and 307 uncacheable");
    assert_eq!(r.header("set-cookie"), Some("SEEN=1; path=/;"));
    let r = get_h(port, "/go?to=there", "");
    assert_eq!(r.header("location"), Some("/to/there"));

    let r = get_h(port, "/private", "");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Private\""));
    // alice:secret
    let ok = get_h(port, "/private", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n");
    assert_eq!(ok.status, 200);
    let bad = get_h(port, "/private", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n");
    assert_eq!(bad.status, 401);

    // A tarpit holds the request for `timeout tarpit` (here `timeout connect`, 1s), then answers.
    let r = get_h(port, "/trap", "");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("503 Service Unavailable"));

    app.set_status(404);
    let r = get_h(port, "/missing", "");
    assert_eq!(r.status, 418, "after-response set-status applies to the server's answer");
    // Only /private with good credentials, /allowed with X-Admin and /missing reached the server.
    let targets: Vec<String> = app.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/allowed", "/private", "/missing"]);
}

#[test]
fn dynamic_backend_names_and_maps_variables_and_monitor() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let dir = TempDir::new("rules-map");
    dir.write("hosts.map", "# host to backend\napi.example.com api\nwww.example.com app\n");
    let map = dir.0.join("hosts.map");
    let rules = format!(
        r#"
monitor_uri = "/up"
monitor_fail = "if {{ hdr(x-fail) -m found }} || {{ nbsrv(api) lt 1 }}"
acl = [{{ name = "known", cond = "req.hdr(host),lower -M -f {map}" }}]
http_request = [
  {{ deny = {{ status = 400 }}, unless = "known" }},
  {{ set_var = {{ var = "sess.seen", expr = "int(1)" }} }},
  {{ set_var = {{ var = "proc.hits", expr = "var(proc.hits),add(1)" }}, if = "{{ var(proc.hits) -m found }}" }},
  {{ set_var = {{ var = "proc.hits", expr = "int(1)" }}, unless = "{{ var(proc.hits) -m found }}" }},
  {{ set_header = {{ name = "X-Hits", value = "%[var(proc.hits)]" }} }},
]
use_backend = [{{ backend = "%[req.hdr(host),lower,map({map},app)]" }}]
"#,
        map = map.display()
    );
    let _l = Lbha::start(&config(port, &app, &api, &rules, "", ""), &[port]);

    let r = send(port, "GET /x HTTP/1.1\r\nHost: API.example.com\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    let seen = api.requests().pop().expect("the map sent api.example.com to api");
    assert_eq!(seen.header("x-hits"), Some("1"));
    let r = send(port, "GET /y HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().expect("www goes to app");
    assert_eq!(seen.header("x-hits"), Some("2"), "proc variables are shared by connections");
    let r = send(port, "GET /z HTTP/1.1\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400);

    let r = get_h(port, "/up", "");
    assert_eq!(r.status, 200, "monitor-uri is answered by lbha");
    assert!(app.requests().iter().all(|r| r.target != "/up"));
    assert_eq!(get_h(port, "/up", "X-Fail: 1\r\n").status, 503, "monitor fail holds");
}

#[test]
fn bad_rules_are_refused_with_their_location() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    for (rules, want) in [
        (r#"http_request = [{ set_header = { name = "X", value = "%[nosuch]" } }]"#, "unknown fetch method"),
        (r#"http_request = [{ set_var = { var = "bad", expr = "int(1)" } }]"#, "scope.name"),
        (r#"http_request = [{ deny = {}, set_path = "/x" }]"#, "one action per rule"),
        (r#"http_response = [{ set_path = "/x" }]"#, "not an action of http_response"),
        (r#"http_after_response = [{ deny = {} }]"#, "not an action of http_after_response"),
        (r#"http_request = [{ tarpit = { string = "x" } }]"#, "only `status`"),
        (r#"acl = [{ name = "a", cond = "path,nosuchconv x" }]"#, "unknown converter"),
        (r#"use_backend = [{ backend = "%[req.hdr(host),map(/nonexistent.map)]" }]"#, "cannot read /nonexistent.map"),
        (r#"http_request = [{ replace_path = { regex = "(", replace = "x" } }]"#, "bad regex"),
    ] {
        let dir = TempDir::new("rules-bad");
        let cfg = dir.write("lbha.toml", &config(port, &app, &api, rules, "", ""));
        let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{rules}: accepted");
        assert!(err.contains(want), "{rules}: {err}");
        assert!(err.contains("lbha.toml:"), "{rules}: located: {err}");
    }
}

#[test]
fn a_converted_haproxy_config_runs_the_same_rules() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let cfg = format!(
        r#"
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s

frontend fe
  bind 127.0.0.1:{port}
  acl is_api path_beg /api/
  http-request set-var(txn.lang) req.hdr(accept-language),lower,word(1,;)
  http-request set-header X-Lang %[var(txn.lang)]
  http-request replace-path ^/v1/(.*) /\1
  redirect scheme https code 301 if {{ path_beg /login }} !{{ ssl_fc }}
  http-request return status 200 content-type text/plain lf-string "pong %[method]" if {{ path /ping }}
  http-request use-service prometheus-exporter if {{ path /metrics }}
  use_backend %[str(api)] if is_api
  default_backend app
  http-after-response set-header X-Frame-Options SAMEORIGIN

backend app
  server a 127.0.0.1:{}

backend api
  http-request set-header X-Via-Api 1
  http-response set-header X-Api yes
  server b 127.0.0.1:{}
"#,
        app.port, api.port
    );
    let _l = Lbha::start_haproxy(&cfg, &[port]);
    let r = get_h(port, "/v1/users", "Accept-Language: EN;q=1\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    let seen = app.requests().pop().unwrap();
    assert_eq!((seen.target.as_str(), seen.header("x-lang")), ("/users", Some("en")));
    let r = get_h(port, "/login", "");
    assert_eq!((r.status, r.header("location")), (301, Some("https://www.example.com/login")));
    let r = get_h(port, "/ping", "");
    assert_eq!(r.text(), "pong GET");
    let before = app.requests().len();
    let r = get_h(port, "/metrics", "");
    assert_eq!((r.status, r.header("content-type")), (200, Some("text/plain; version=0.0.4; charset=utf-8")));
    assert!(r.text().contains("lbha_uptime_seconds "), "{}", r.text());
    assert!(r.text().contains("lbha_frontend_http_requests_total{proxy=\"fe\""), "{}", r.text());
    assert_eq!(app.requests().len(), before, "use-service answered without the server");
    let r = get_h(port, "/api/x", "");
    assert_eq!(r.header("x-api"), Some("yes"));
    assert_eq!(api.requests().pop().unwrap().header("x-via-api"), Some("1"));
}

/// A self-signed certificate for `localhost`, written as one PEM file (chain + key).
fn cert(dir: &TempDir) -> (std::path::PathBuf, rustls_pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let p = dir.write("site.pem", &format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()));
    (p, ck.cert.der().clone())
}

#[test]
fn tls_fetches_and_redirect_to_https() {
    use http_body_util::BodyExt;
    use std::sync::Arc;
    let (app, api) = (Web::start("app"), Web::start("api"));
    let (port, tls_port) = (free_port(), free_port());
    let dir = TempDir::new("rules-tls");
    let (crt, der) = cert(&dir);
    let rules = r#"
http_request = [
  { redirect = { scheme = "https", code = 301 }, unless = "{ ssl_fc }" },
  { set_header = { name = "X-Tls", value = "%[ssl_fc] %[ssl_fc_sni] %[ssl_fc_alpn] %[ssl_fc_protocol]" } },
]
"#;
    let cfg = config(port, &app, &api, rules, "", "").replace(
        &format!("bind = [\"127.0.0.1:{port}\"]"),
        &format!("bind = [\"127.0.0.1:{port}\", \"127.0.0.1:{tls_port} ssl crt {} alpn http/1.1\"]", crt.display()),
    );
    let _l = Lbha::start(&cfg, &[port, tls_port]);
    let r = get_h(port, "/a?b=1", "");
    assert_eq!((r.status, r.header("location")), (301, Some("https://www.example.com/a?b=1")));
    assert!(app.requests().is_empty());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let mut cc = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cc.alpn_protocols = vec![b"http/1.1".to_vec()];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", tls_port)).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cc)).connect(name, tcp).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/x")
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.into_body().collect().await;
    });
    let seen = app.requests().pop().expect("the TLS request reached the server");
    assert_eq!(seen.header("x-tls"), Some("1 localhost http/1.1 TLSv1.3"));
}

#[test]
fn buffered_request_bodies_feed_req_body() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let rules = r#"
http_buffer_request = true
http_request = [
  { deny = { status = 403 }, if = "{ req.body -m sub forbidden }" },
  { set_header = { name = "X-Body", value = "%[req.body,length] %[req.body,lower]" } },
]
"#;
    let extra = "[global]\ntune_bufsize = 1024\n";
    let _l = Lbha::start(&config(port, &app, &api, rules, "", extra), &[port]);
    let post = |body: &str, chunked: bool| {
        let framing = if chunked {
            format!("Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
        } else {
            format!("Content-Length: {}\r\n\r\n{body}", body.len())
        };
        send(port, &format!("POST /up HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n{framing}"))
    };
    let r = post("Hello", false);
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-body"), Some("5 hello"));
    assert_eq!(seen.header("content-length"), Some("5"), "the body still reaches the server");
    let r = post("World!", true);
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-body"), Some("6 world!"));
    assert_eq!(seen.header("content-length"), Some("6"), "a buffered chunked body goes with its length");
    let r = get_h(port, "/nobody", "");
    assert_eq!(r.status, 200);
    let seen = app.requests().pop().unwrap();
    assert_eq!(seen.header("x-body"), Some("0"), "a request without a body has an empty req.body");
    assert_eq!(seen.header("content-length"), None, "and gets no Content-Length");
    assert_eq!(post("this is forbidden", false).status, 403);
    assert_eq!(post(&"x".repeat(2000), false).status, 413, "a body larger than tune_bufsize");
    assert_eq!(app.requests().len(), 3);
}

/// `userlist` groups from an haproxy.cfg: `http_auth_group(L) G...` matches users in any of the
/// groups (by `group ... users` or `user ... groups`), and the fetch itself gives the user name.
#[test]
fn userlist_groups_gate_requests_as_in_haproxy() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let cfg = format!(
        r#"
userlist L
  group admins users alice
  group ops
  user alice insecure-password a
  user bob insecure-password b groups ops

defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s

frontend fe
  bind 127.0.0.1:{port}
  acl adm http_auth_group(L) admins
  acl staff http_auth_group(L) ops admins
  http-request auth realm lb unless {{ http_auth(L) }}
  http-request deny if {{ path_beg /admin }} !adm
  http-request deny if {{ path_beg /staff }} !staff
  http-request set-header X-User %[http_auth_group(L)]
  default_backend app

backend app
  server a 127.0.0.1:{}

backend api
  server b 127.0.0.1:{}
"#,
        app.port, api.port
    );
    let _l = Lbha::start_haproxy(&cfg, &[port]);
    use base64::Engine;
    let auth = |user: &str, pw: &str| {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        format!("Authorization: Basic {b}\r\n")
    };
    assert_eq!(get_h(port, "/x", "").status, 401);
    assert_eq!(get_h(port, "/x", &auth("bob", "wrong")).status, 401);
    assert_eq!(get_h(port, "/admin/x", &auth("bob", "b")).status, 403, "bob is not in admins");
    assert_eq!(get_h(port, "/staff/x", &auth("bob", "b")).status, 200, "bob is in ops (user ... groups)");
    assert_eq!(get_h(port, "/admin/x", &auth("alice", "a")).status, 200, "alice is in admins (group ... users)");
    assert_eq!(get_h(port, "/staff/x", &auth("alice", "a")).status, 200);
    assert_eq!(app.requests().pop().unwrap().header("x-user"), Some("alice"));
}

#[test]
fn uri_rewrites_unset_var_and_answers_from_files() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let dir = TempDir::new("rules-files");
    let plain = dir.write("plain.txt", "static %[path] body\n");
    let lf = dir.write("lf.txt", "dynamic %[path] for %[req.hdr(x-name)]\n");
    let denied = dir.write("denied.txt", "go away\n");
    let rules = format!(
        r#"
http_request = [
  {{ set_var = {{ var = "txn.gone", expr = "str(here)" }} }},
  {{ unset_var = "txn.gone", if = "{{ path_beg /unset }}" }},
  {{ set_header = {{ name = "X-Gone", value = "%[var(txn.gone)]" }}, if = "{{ var(txn.gone) -m found }}" }},
  {{ set_pathq = "/pq%[path]?n=1", if = "{{ path_beg /setpq }}" }},
  {{ replace_pathq = {{ regex = "^/rpq/([^?]*)\\?(.*)$", replace = "/rpq-new/\\1?\\2&x=1" }} }},
  {{ set_uri = "/su%[path]?from=uri", if = "{{ path_beg /seturi }}" }},
  {{ replace_uri = {{ regex = "^/ru/(.*)", replace = "/ru-new/\\1" }} }},
  {{ return = {{ status = 200, content_type = "text/plain", file = "{plain}" }}, if = "{{ path /file }}" }},
  {{ return = {{ status = 201, content_type = "text/plain", lf_file = "{lf}", headers = ["X-From: lf"] }}, if = "{{ path /lffile }}" }},
  {{ deny = {{ status = 451, content_type = "text/plain", file = "{denied}" }}, if = "{{ path /denied }}" }},
]
"#,
        plain = plain.display(),
        lf = lf.display(),
        denied = denied.display()
    );
    let _l = Lbha::start(&config(port, &app, &api, &rules, "", ""), &[port]);

    let target = |path: &str| {
        let r = get_h(port, path, "");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        app.requests().pop().unwrap()
    };
    assert_eq!(target("/setpq/a?old=1").target, "/pq/setpq/a?n=1");
    assert_eq!(target("/rpq/b?k=v").target, "/rpq-new/b?k=v&x=1");
    assert_eq!(target("/seturi/c?q=2").target, "/su/seturi/c?from=uri");
    assert_eq!(target("/ru/d?z=3").target, "/ru-new/d?z=3", "replace-uri sees the query too");
    let kept = target("/kept");
    assert_eq!((kept.target.as_str(), kept.header("x-gone")), ("/kept", Some("here")));
    assert_eq!(target("/unset").header("x-gone"), None, "unset-var removed txn.gone");

    let before = app.requests().len();
    let r = get_h(port, "/file", "");
    assert_eq!((r.status, r.text().as_str()), (200, "static %[path] body\n"), "`file` is sent as it is");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let r = get_h(port, "/lffile", "X-Name: bob\r\n");
    assert_eq!((r.status, r.text().as_str()), (201, "dynamic /lffile for bob\n"), "`lf_file` is a log format");
    assert_eq!(r.header("x-from"), Some("lf"));
    let r = get_h(port, "/denied", "");
    assert_eq!((r.status, r.text().as_str()), (451, "go away\n"));
    assert_eq!(app.requests().len(), before, "answers from files never reach the server");
}

#[test]
fn response_rules_answer_rewrite_and_keep_variables() {
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    for h in ["X-Drop: 1", "X-Ver: v3", "X-Multi: a, b", "X-Kept: yes"] {
        app.add_header(h);
    }
    let rules = r#"
http_request = [{ set_var = { var = "txn.path", expr = "path" } }]
http_response = [
  { allow = true, if = "{ var(txn.path) -m beg /rallow }" },
  { deny = { status = 502, content_type = "text/plain", string = "bad answer" }, if = "{ var(txn.path) -m beg /rdeny } || { var(txn.path) -m beg /rallow }" },
  { return = { status = 203, content_type = "text/plain", lf_string = "ret %[var(txn.path)]" }, if = "{ var(txn.path) -m beg /rreturn }" },
  { redirect = { location = "/elsewhere", code = 303 }, if = "{ var(txn.path) -m beg /rredirect }" },
  { del_header = "X-Drop" },
  { replace_header = { name = "X-Ver", regex = "^v(.*)$", replace = "version-\\1" } },
  { replace_value = { name = "X-Multi", regex = "^b$", replace = "B" } },
  { set_var = { var = "txn.ver", expr = "res.hdr(x-ver)" } },
  { set_header = { name = "X-Var", value = "%[var(txn.ver)]" } },
]
"#;
    let _l = Lbha::start(&config(port, &app, &api, rules, "", ""), &[port]);

    let r = get_h(port, "/plain", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-drop"), None);
    assert_eq!(r.header("x-ver"), Some("version-3"));
    assert_eq!(r.header("x-multi"), Some("a,B"));
    assert_eq!(r.header("x-var"), Some("version-3"), "set-var reads the rewritten response");
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(r.text(), "app");

    let r = get_h(port, "/rallow", "");
    assert_eq!(r.status, 200, "allow stops the list before the deny: {r:?}");
    assert_eq!(r.header("x-drop"), Some("1"), "and before the rewrites");
    assert_eq!(r.header("x-var"), None);

    let r = get_h(port, "/rdeny", "");
    assert_eq!((r.status, r.text().as_str()), (502, "bad answer"));
    assert_eq!(r.header("x-kept"), None, "the server's answer is replaced");
    let r = get_h(port, "/rreturn", "");
    assert_eq!((r.status, r.text().as_str()), (203, "ret /rreturn"));
    let r = get_h(port, "/rredirect", "");
    assert_eq!((r.status, r.header("location")), (303, Some("/elsewhere")));
    let targets: Vec<String> = app.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        ["/plain", "/rallow", "/rdeny", "/rreturn", "/rredirect"],
        "response rules run after the server"
    );
}

/// `fe_conn`, `be_conn` and `connslots` read the live counters: a request held open on the
/// backend and an idle client connection show in the values a later request sees.
#[test]
fn connection_count_fetches_see_live_sessions() {
    use std::io::Write;
    let (app, api) = (Web::start("app"), Web::start("api"));
    let port = free_port();
    let rules = r#"
http_request = [{ set_header = { name = "X-Fe", value = "%[fe_conn] %[be_conn(app)] %[connslots(app)] %[connslots(api)]" } }]
"#;
    let api_rules = r#"http_request = [{ set_header = { name = "X-Be", value = "%[be_conn] %[connslots]" } }]"#;
    let cfg = config(port, &app, &api, rules, "", "").replace(
        &format!("servers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]", app.port),
        &format!(
            "servers = [{{ name = \"a\", addr = \"127.0.0.1:{}\", maxconn = 10, maxqueue = 5 }}]\n{api_rules}",
            app.port
        ),
    );
    let _l = Lbha::start(&cfg, &[port]);

    // Alone: sessions of earlier requests may take a moment to close, so ask until they have.
    let alone = |want_fe: &str, want_be: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = get_h(port, "/x", "");
            assert_eq!(r.status, 200);
            let seen = app.requests().pop().unwrap();
            let got = (seen.header("x-fe").unwrap_or("").to_string(), seen.header("x-be").unwrap_or("").to_string());
            if got == (want_fe.to_string(), want_be.to_string()) || std::time::Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert_eq!(alone("1 0 15 -1", "1 15"), ("1 0 15 -1".into(), "1 15".into()), "api has no maxconn: -1");

    // Hold one request on the server (its body never ends) and one idle client connection.
    let conns = app.connections();
    let mut held = connect(port);
    held.write_all(b"POST /held HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 100\r\n\r\npart").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.connections() == conns {
        assert!(std::time::Instant::now() < deadline, "the held request did not reach the server");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _idle = connect(port);
    assert_eq!(
        alone("3 1 14 -1", "2 14"),
        ("3 1 14 -1".into(), "2 14".into()),
        "three client connections, one session on the server"
    );
    drop(held);
    assert_eq!(alone("2 0 15 -1", "1 15"), ("2 0 15 -1".into(), "1 15".into()), "the held session ended");
}
