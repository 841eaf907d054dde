//! `http-request do-resolve(...)` and `http-request early-hint`: converted one to one, and
//! refused where HAProxy 2.6 refuses them.

use super::*;

#[test]
fn do_resolve_and_early_hint_convert_one_to_one() {
    let c = conv(
        "resolvers mydns\n  nameserver ns1 127.0.0.1:53\n\
         defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 http-request do-resolve(txn.dstip,mydns,ipv4) hdr(Host),lower\n\
         \x20 http-request do-resolve(txn.any,mydns) hdr(x-name) if { path /a }\n\
         \x20 http-request set-dst var(txn.dstip)\n\
         \x20 http-request early-hint Link \"</style.css>; rel=preload\"\n\
         \x20 http-request early-hint x-path %[path] if { path /x }\n\
         \x20 default_backend be\n\
         backend be\n  server clear 0.0.0.0:0\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let r = &t["frontend"][0]["http_request"];
    assert_eq!(r[0]["do_resolve"]["var"].as_str(), Some("txn.dstip"));
    assert_eq!(r[0]["do_resolve"]["resolvers"].as_str(), Some("mydns"));
    assert_eq!(r[0]["do_resolve"]["family"].as_str(), Some("ipv4"));
    assert_eq!(r[0]["do_resolve"]["expr"].as_str(), Some("hdr(Host),lower"));
    assert!(r[1]["do_resolve"].get("family").is_none());
    assert!(r[1]["if"].as_str().is_some());
    assert_eq!(r[3]["early_hint"]["name"].as_str(), Some("Link"));
    assert_eq!(r[3]["early_hint"]["value"].as_str(), Some("</style.css>; rel=preload"));
    assert_eq!(r[4]["early_hint"]["value"].as_str(), Some("%[path]"));
    let s = snap(&c);
    let fe = &s.frontends[0].http_request;
    assert!(matches!(
        &fe[0].action,
        HttpAction::DoResolve { resolvers, family: crate::dns::action::Family::V4, .. } if resolvers == "mydns"
    ));
    assert!(matches!(&fe[1].action, HttpAction::DoResolve { family: crate::dns::action::Family::V6, .. }));
    assert!(matches!(&fe[3].action, HttpAction::EarlyHint(n, _) if n == "link"));
}

#[test]
fn do_resolve_and_early_hint_are_refused_as_haproxy_refuses_them() {
    let cfg = |rule: &str| {
        format!(
            "resolvers mydns\n  nameserver ns1 127.0.0.1:53\n\
             defaults\n  mode http\nfrontend fe\n  bind :80\n  {rule}\n  default_backend be\n\
             backend be\n  server a 127.0.0.1:1\n"
        )
    };
    for (rule, why) in [
        ("http-request do-resolve(txn.ip,mydns,ipv5) hdr(host)", "Available options are 'ipv4' and 'ipv6'"),
        ("http-request do-resolve(txn.ip,mydns)", "Can't parse"),
        ("http-request do-resolve(txn.ip) hdr(host)", "Can't parse"),
        ("http-request early-hint link", "needs a value"),
    ] {
        let e = conv_err(&cfg(rule));
        assert!(e.iter().any(|m| m.contains("h.cfg:7") && m.contains(why)), "{rule}: {e:?}");
    }
    // Not an `http-response` action (HAProxy refuses it): reported, never converted.
    let c = conv(&cfg("http-response early-hint link x"));
    assert_eq!(kinds(&c).first().map(|k| k.0), Some(7), "{:?}", c.reports);
    assert!(!c.toml.contains("early_hint"), "{}", c.toml);
}

#[test]
fn do_resolve_takes_any_variable_name_as_haproxy_does() {
    // `haproxy -c` accepts these; the address is then stored nowhere (lbha warns).
    for var in ["ip", "bad.ip", ""] {
        let c = conv(&format!(
            "resolvers mydns\n  nameserver ns1 127.0.0.1:53\n\
             defaults\n  mode http\nfrontend fe\n  bind :80\n  http-request do-resolve({var},mydns) hdr(host)\n\
             \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n"
        ));
        let t = table(&c);
        assert_eq!(t["frontend"][0]["http_request"][0]["do_resolve"]["var"].as_str(), Some(var), "{}", c.toml);
        let s = snap(&c);
        assert!(matches!(&s.frontends[0].http_request[0].action, HttpAction::DoResolve { var: None, .. }));
    }
}

#[test]
fn tcp_request_content_do_resolve_converts_and_is_refused_where_lbha_cannot_run_it() {
    let c = conv(
        "resolvers mydns\n  nameserver ns1 127.0.0.1:53\n\
         defaults\n  mode tcp\nfrontend fe\n  bind :80\n\
         \x20 tcp-request content do-resolve(sess.dstip,mydns,ipv4) req.ssl_sni,lower\n\
         \x20 tcp-request content set-dst var(sess.dstip)\n\
         \x20 default_backend be\n\
         backend be\n  server clear 0.0.0.0:0\n",
    );
    let t = table(&c);
    assert_eq!(
        t["frontend"][0]["tcp_request"][0]["content"].as_str(),
        Some("do-resolve(sess.dstip,mydns,ipv4) req.ssl_sni,lower")
    );
    let s = snap(&c);
    assert!(matches!(s.frontends[0].tcp.content[0].action, crate::tcprules::Action::DoResolve { .. }));
    // In mode http (lbha runs it as http-request do-resolve only) and in session rules: errors.
    for (mode, rule, why) in [
        ("http", "tcp-request content do-resolve(sess.ip,mydns) req.hdr(host)", "not supported by lbha yet"),
        ("tcp", "tcp-request session do-resolve(sess.ip,mydns) str(a)", "tcp-request content only"),
        ("tcp", "tcp-request content do-resolve(sess.ip,nodns) str(a)", "no such resolvers section"),
    ] {
        let c = conv(&format!(
            "resolvers mydns\n  nameserver ns1 127.0.0.1:53\ndefaults\n  mode {mode}\nfrontend fe\n  bind :80\n  {rule}\n\
             \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n"
        ));
        let e = crate::config::parse(&c.toml, Path::new("lbha.toml")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(why), "{rule}: {e}");
    }
}
