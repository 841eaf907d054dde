//! `reject`, `silent-drop`, `set-src`/`set-dst` (and ports), `set-timeout`: converted one to one
//! from `http-request`, `http-response` and `tcp-request`, nothing dropped.

use super::*;

#[test]
fn connection_actions_convert_one_to_one() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 tcp-request connection silent-drop if { src 192.0.2.0/24 }\n\
         \x20 tcp-request connection set-src src,ipmask(16)\n\
         \x20 tcp-request session set-dst-port int(81)\n\
         \x20 tcp-request content set-src-port int(1000)\n\
         \x20 http-request set-src hdr(x-forwarded-for)\n\
         \x20 http-request set-src-port hdr(x-port)\n\
         \x20 http-request set-dst dst,ipmask(24)\n\
         \x20 http-request set-dst-port int(4000)\n\
         \x20 http-request reject if { path /r }\n\
         \x20 http-request silent-drop if { path /s }\n\
         \x20 http-response silent-drop if { status 500 }\n\
         \x20 http-request set-mark 0x2a\n\
         \x20 http-response set-tos 16\n\
         \x20 tcp-request content set-tos 0x10\n\
         \x20 default_backend be\n\
         backend be\n  http-request set-timeout server 5s\n  http-request set-timeout tunnel req.hdr(x-t)\n\
         \x20 server a 127.0.0.1:1\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let fe = &t["frontend"][0];
    let tr = &fe["tcp_request"];
    assert_eq!(tr[0]["connection"].as_str(), Some("silent-drop"));
    assert_eq!(tr[1]["connection"].as_str(), Some("set-src src,ipmask(16)"));
    assert_eq!(tr[2]["session"].as_str(), Some("set-dst-port int(81)"));
    assert_eq!(tr[3]["content"].as_str(), Some("set-src-port int(1000)"));
    let r = &fe["http_request"];
    assert_eq!(r[0]["set_src"].as_str(), Some("hdr(x-forwarded-for)"));
    assert_eq!(r[1]["set_src_port"].as_str(), Some("hdr(x-port)"));
    assert_eq!(r[2]["set_dst"].as_str(), Some("dst,ipmask(24)"));
    assert_eq!(r[3]["set_dst_port"].as_str(), Some("int(4000)"));
    assert_eq!(r[4]["reject"].as_bool(), Some(true));
    assert_eq!(r[5]["silent_drop"].as_bool(), Some(true));
    assert_eq!(fe["http_response"][0]["silent_drop"].as_bool(), Some(true));
    assert_eq!(r[6]["set_mark"].as_str(), Some("0x2a"));
    assert_eq!(fe["http_response"][1]["set_tos"].as_str(), Some("16"));
    assert_eq!(tr[4]["content"].as_str(), Some("set-tos 0x10"));
    let s = snap(&c);
    assert!(matches!(
        s.frontends[0].http_request[6].action,
        HttpAction::SockOpt(crate::proxy::addrs::SockOpt::Mark(42))
    ));
    let be = &t["backend"][0]["http_request"];
    assert_eq!(be[0]["set_timeout"]["server"].as_str(), Some("5s"));
    assert_eq!(be[1]["set_timeout"]["tunnel"].as_str(), Some("req.hdr(x-t)"));
}

#[test]
fn connection_actions_validate_after_conversion() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 tcp-request connection silent-drop if { src 192.0.2.0/24 }\n\
         \x20 http-request set-src hdr(x-forwarded-for)\n\
         \x20 http-request reject if { path /r }\n\
         \x20 http-request silent-drop if { path /s }\n\
         \x20 default_backend be\nbackend be\n  http-request set-timeout server 5s\n  server a 127.0.0.1:1\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let acts: Vec<String> = s.frontends[0]
        .http_request
        .iter()
        .map(|r| format!("{:?}", r.action).split([' ', '(', '{']).next().unwrap_or("").to_string())
        .collect();
    assert_eq!(acts, ["SetAddr", "Reject", "SilentDrop"]);
    assert!(matches!(s.backends[0].http_request[0].action, HttpAction::SetTimeout(..)));
    assert!(matches!(s.frontends[0].tcp.connection[0].action, crate::tcprules::Action::SilentDrop));
}

#[test]
fn a_set_timeout_haproxy_refuses_is_an_error() {
    let e = conv_err(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request set-timeout client 5s\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert!(e.iter().any(|m| m.contains("h.cfg:5") && m.contains("no backend capability")), "{e:?}");
    let e = conv_err(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  default_backend be\n\
         backend be\n  http-request set-timeout client 5s\n  server a 127.0.0.1:1\n",
    );
    assert!(e.iter().any(|m| m.contains("h.cfg:7") && m.contains("`server` or `tunnel`")), "{e:?}");
}

#[test]
fn map_edits_convert_one_to_one() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 http-request set-map(/etc/haproxy/h.map) %[req.hdr(x-k)] %[req.hdr(x-v)] if { req.hdr(x-k) -m found }\n\
         \x20 http-request del-map(/etc/haproxy/h.map) %[req.hdr(x-d)]\n\
         \x20 http-request add-acl(/etc/haproxy/b.lst) %[src]\n\
         \x20 http-response del-acl(b.lst) %[src]\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    let r = &t["frontend"][0]["http_request"];
    assert_eq!(r[0]["set_map"]["file"].as_str(), Some("/etc/haproxy/h.map"));
    assert_eq!(r[0]["set_map"]["key"].as_str(), Some("%[req.hdr(x-k)]"));
    assert_eq!(r[0]["set_map"]["value"].as_str(), Some("%[req.hdr(x-v)]"));
    assert!(r[0]["if"].as_str().is_some());
    assert_eq!(r[1]["del_map"]["key"].as_str(), Some("%[req.hdr(x-d)]"));
    assert!(r[1]["del_map"].get("value").is_none());
    assert_eq!(r[2]["add_acl"]["file"].as_str(), Some("/etc/haproxy/b.lst"));
    let d = &t["frontend"][0]["http_response"][0]["del_acl"];
    // Joined to the haproxy.cfg directory (here the test's `.`), as `-f FILE` is.
    assert_eq!(d["file"].as_str(), Some("./b.lst"));
    let notes: Vec<_> = c.reports.iter().filter(|r| r.kind == ReportKind::Note).collect();
    assert_eq!(notes.len(), 1, "the relative pattern file is made absolute, as -f: {:?}", c.reports);
    assert_eq!(c.reports.len(), 1, "{:?}", c.reports);
    let e = conv_err(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request set-map(x.map) k\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert!(e.iter().any(|m| m.contains("h.cfg:5") && m.contains("needs a value")), "{e:?}");
    let e = conv_err(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request add-acl %[src]\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert!(e.iter().any(|m| m.contains("h.cfg:5") && m.contains("needs a file name")), "{e:?}");
}

#[test]
fn normalize_uri_converts_with_its_option() {
    let c = conv(
        "global\n  expose-experimental-directives\ndefaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 http-request normalize-uri path-strip-dotdot full if { path_beg /a }\n\
         \x20 http-request normalize-uri query-sort-by-name\n\
         \x20 http-request disable-l7-retry if { method POST }\n\
         \x20 http-request wait-for-handshake\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    let r = &t["frontend"][0]["http_request"];
    assert_eq!(r[0]["normalize_uri"].as_str(), Some("path-strip-dotdot full"));
    assert!(r[0]["if"].as_str().is_some());
    assert_eq!(r[1]["normalize_uri"].as_str(), Some("query-sort-by-name"));
    assert_eq!(r[2]["disable_l7_retry"].as_bool(), Some(true));
    assert_eq!(r[3]["wait_for_handshake"].as_bool(), Some(true));
    // Only the global keyword is reported (ignored: lbha needs no opt-in).
    assert!(c.reports.iter().all(|r| r.directive == "expose-experimental-directives"), "{:?}", c.reports);
    let s = snap(&c);
    assert!(matches!(s.frontends[0].http_request[0].action, HttpAction::NormalizeUri(_)));
    assert!(matches!(s.frontends[0].http_request[2].action, HttpAction::NoL7Retry));
}

#[test]
fn strict_mode_converts_on_both_sides() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 http-request strict-mode off if { path_beg /soft }\n\
         \x20 http-response strict-mode on\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    let t = table(&c);
    assert_eq!(t["frontend"][0]["http_request"][0]["strict_mode"].as_str(), Some("off"));
    assert!(t["frontend"][0]["http_request"][0]["if"].as_str().is_some());
    assert_eq!(t["frontend"][0]["http_response"][0]["strict_mode"].as_str(), Some("on"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert!(matches!(s.frontends[0].http_request[0].action, HttpAction::StrictMode(false)));
    assert!(matches!(s.frontends[0].http_response[0].action, HttpAction::StrictMode(true)));
    let e = conv_err(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request strict-mode maybe\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n",
    );
    assert!(e.iter().any(|m| m.contains("h.cfg:5") && m.contains("'on' or 'off'")), "{e:?}");
}
