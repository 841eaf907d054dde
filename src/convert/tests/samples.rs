//! Issue 15's fetches and converters convert one to one: the expressions reach lbha's
//! configuration as written, and it validates.

use super::*;

#[test]
fn new_fetches_and_converters_convert_and_validate() {
    let src = "defaults\n  mode http\nfrontend fe\n  bind :80\n  \
        http-request set-header X-Url32 %[url32]\n  \
        http-request set-header X-Auth %[http_auth_type]/%[http_auth_user]\n  \
        http-request set-header X-Tok %[http_auth_bearer,jwt_payload_query('$.sub')]\n  \
        http-request set-header X-Enc %[path,url_enc]\n  \
        http-request set-header X-Sig %[req.hdr(x-body),hmac(sha256,c2VjcmV0),hex]\n  \
        http-request set-var(txn.n) req.hdr(x-n),ltrim(' '),rtrim(' '),hex2i\n  \
        http-request set-header X-Odd %[var(txn.n),odd,iif(odd,even)]\n  \
        http-request set-header X-Host %[req.hdr(host),host_only,set-var(txn.host)]\n  \
        http-request deny if { req.hdr(x-mac),secure_memcmp(txn.host) -m bool }\n  \
        http-request deny if { hdr_val(x-n) gt 10 }\n  \
        http-request set-header X-Hdrs %[req.hdrs,length]\n  \
        default_backend be\nbackend be\n  \
        http-response set-header X-Srv %[srv_name]/%[srv_id]/%[be_name]/%[res.ver]\n  \
        http-response set-header X-Cook %[res.cook(sid)]\n  \
        http-request set-header X-Q %[queue]/%[avg_queue]/%[srv_conn(s1)]\n  \
        server s1 127.0.0.1:1\n";
    let c = conv(src);
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    for expr in ["url32", "http_auth_bearer,jwt_payload_query($.sub)", "hmac(sha256,c2VjcmV0)", "srv_conn(s1)"] {
        assert!(c.toml.contains(expr), "{expr} not in\n{}", c.toml);
    }
    let s = snap(&c);
    assert_eq!(s.frontends[0].http_request.len(), 11);
    assert_eq!(s.backends[0].http_response.len(), 2);
}

/// The proxies' session and request rates convert as written and fill their omitted proxy the
/// way HAProxy does.
#[test]
fn proxy_rates_convert() {
    let src = "defaults\n  mode tcp\nfrontend fe\n  bind :80\n  \
        tcp-request content reject if { fe_sess_rate gt 100 } || { fe_req_rate(fe) gt 10 }\n  \
        default_backend be\nbackend be\n  \
        tcp-request content reject if { be_sess_rate gt 50 } || { srv_sess_rate(s1) gt 5 }\n  \
        server s1 127.0.0.1:1\n";
    let c = conv(src);
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!((s.frontends[0].tcp.content.len(), s.backends[0].tcp.content.len()), (1, 1));
}

#[test]
fn what_lbha_cannot_honour_is_an_error() {
    let (rule, why) = ("http-request set-header X %[str(a),digest(md5)]", "md5");
    let src = format!(
        "defaults\n  mode http\nfrontend fe\n  bind :80\n  {rule}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:1\n"
    );
    let c = conv(&src);
    let err =
        crate::config::parse(&c.toml, Path::new("lbha.toml")).err().map(|e| locate_errors(&e, &c.origins).join("\n"));
    assert!(err.as_deref().is_some_and(|e| e.contains(why)), "{rule}: {err:?}");
}
