//! Conversion of issue 17's server-side keywords: PROXY protocol.

use super::*;

#[test]
fn proxy_protocol_keywords_convert_and_validate() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:8080 accept-proxy\n  bind 127.0.0.1:8081\n\
         \x20 tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 }\n  default_backend be\n\
         backend be\n  server a 127.0.0.1:81 send-proxy check\n  server b 127.0.0.1:82 send-proxy-v2 proxy-v2-options ssl,authority,unique-id\n\
         \x20 server c 127.0.0.1:83 send-proxy-v2-ssl check check-send-proxy port 9000\n",
    );
    let s = snap(&c);
    let fe = &s.frontends[0];
    assert!(fe.binds[0].accept_proxy && !fe.binds[1].accept_proxy);
    assert!(fe.expect_proxy.as_ref().is_some_and(|e| e.cond.is_some()));
    let sv = &s.backends[0].servers;
    let sp = |i: usize| sv[i].send_proxy.expect("send-proxy kept");
    assert!(!sp(0).v2);
    assert!(sp(1).v2 && sp(1).ssl && sp(1).authority);
    assert!(sp(2).v2 && sp(2).ssl && !sp(2).authority);
    // Checks carry the header: `a` by default (same address), `c` by check-send-proxy.
    assert_eq!(sv[0].check.as_ref().unwrap().proxy_header.as_deref(), Some(&b"PROXY UNKNOWN\r\n"[..]));
    assert_eq!(sv[2].check.as_ref().unwrap().proxy_header.as_ref().map(Vec::len), Some(16));
    // unique-id cannot be sent yet: said so, and left out.
    assert_eq!(kinds(&c), [(10, ReportKind::Unsupported)]);
    assert!(c.reports[0].message.contains("unique-id"), "{}", c.reports[0]);
    assert_eq!(table(&c)["frontend"][0]["expect_proxy"]["if"].as_str(), Some("{ src 10.0.0.0/8 }"));

    // Unconditional expect-proxy.
    let c =
        conv(&format!("{FE_BE}  tcp-request connection expect-proxy layer4\nbackend be\n  server a 127.0.0.1:81\n"));
    assert!(snap(&c).frontends[0].expect_proxy.as_ref().is_some_and(|e| e.cond.is_none()));
}
