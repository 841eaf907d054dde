//! `tcp-request content` and `tcp-request inspect-delay` in backend sections convert one to
//! one; what HAProxy refuses there is an error on its line.

use super::*;

#[test]
fn backend_content_rules_and_inspect_delay() {
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind :1\n  default_backend be\nbackend be\n  tcp-request inspect-delay 4s\n  tcp-request content reject if { req.ssl_sni -i evil.example }\n  tcp-request content accept if { req_ssl_hello_type 1 }\n  tcp-request content reject unless { nbsrv ge 1 }\n  server a 127.0.0.1:1\n",
    );
    assert_eq!(c.strict_failures(), 0, "{:?}\n{}", c.reports, c.toml);
    let s = snap(&c);
    let t = &s.backends[0].tcp;
    assert_eq!((t.inspect_delay, t.content.len()), (Some(Duration::from_secs(4)), 3));
    // In mode http too: the rules run on each request once the backend is chosen.
    let c =
        conv(&format!("{FE_BE}backend be\n  tcp-request content reject if {{ path /no }}\n  server a 127.0.0.1:1\n"));
    assert_eq!(c.strict_failures(), 0, "{:?}\n{}", c.reports, c.toml);
    assert_eq!(snap(&c).backends[0].tcp.content.len(), 1);
}

#[test]
fn backend_refuses_what_haproxy_refuses() {
    for (line, want) in [
        ("tcp-request connection reject", "not allowed in a backend"),
        ("tcp-request session reject", "not allowed in a backend"),
        ("tcp-request content capture req.len len 4", "no frontend capability"),
    ] {
        let e = conv_err(&format!("defaults\n  mode tcp\nbackend be\n  {line}\n  server a 127.0.0.1:1\n"));
        assert!(e.iter().any(|m| m.contains(":4") && m.contains(want)), "{line}: {e:?}");
    }
}
