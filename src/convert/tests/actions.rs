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
         \x20 default_backend be\n\
         backend be\n  http-request set-timeout server 5s\n  http-request set-timeout tunnel req.hdr(x-t),map_int(t.map,0)\n\
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
    let be = &t["backend"][0]["http_request"];
    assert_eq!(be[0]["set_timeout"]["server"].as_str(), Some("5s"));
    assert_eq!(be[1]["set_timeout"]["tunnel"].as_str(), Some("req.hdr(x-t),map_int(t.map,0)"));
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
