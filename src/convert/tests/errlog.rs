//! Error pages and logging keywords: each one maps to its lbha key, and the result validates.

use super::*;

#[test]
fn error_page_and_logging_keywords_convert_one_to_one() {
    let dir = std::env::temp_dir().join(format!("lbha-conv-errlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("503.http");
    std::fs::write(&page, "HTTP/1.1 503 Down\r\nContent-Length: 5\r\n\r\ndown\n").unwrap();
    let p = page.display();
    let c = conv(&format!(
        "global\n  log stdout format raw local0\n  log-tag web\n  log-send-hostname lb1\n\
         http-errors site\n  errorfile 503 {p}\n\
         defaults\n  mode http\n  log global\n  errorfile 503 {p}\n  option dontlog-normal\n  option log-separate-errors\n  option log-health-checks\n\
         frontend fe\n  bind 127.0.0.1:8080\n  errorfiles site 503\n  errorloc 403 http://x/denied\n  errorloc303 429 /slow\n\
         \x20 http-error status 500 content-type text/plain string oops hdr X-A b\n\
         \x20 http-error status 502 content-type text/plain lf-string \"no way to %[path]\" hdr X-Where \"%[path] %ci\"\n\
         \x20 log-format \"%ci %[src] %{{+Q}}r %bi:%bp %sslv %sslc %Td %Tu %Tl %trl %lc\"\n  log-format-sd \"[x@1 a=\\\"%ci\\\"]\"\n\
         \x20 capture request header Host len 20\n  declare capture request len 32\n  capture response header Server len 9\n  capture cookie SESS len 16\n\
         \x20 unique-id-format %{{+X}}o%ci\n  unique-id-header X-Id\n  default_backend be\n\
         backend be\n  errorloc302 503 /down\n  server a 127.0.0.1:1\n\
         frontend f2\n  bind 127.0.0.1:8081\n  no log\n  log 127.0.0.1:5514 format short local1\n  default_backend be\n"
    ));
    let t = table(&c);
    assert_eq!(t["global"]["log"][0].as_str(), Some("stdout format raw local0"));
    assert_eq!(t["global"]["log_tag"].as_str(), Some("web"));
    assert_eq!(t["global"]["log_send_hostname"].as_str(), Some("lb1"));
    assert_eq!(t["http_errors"][0]["name"].as_str(), Some("site"));
    assert_eq!(t["http_errors"][0]["errorfile"]["503"].as_str(), Some(p.to_string().as_str()));
    let d = &t["defaults"];
    assert_eq!(d["errorfile"]["503"].as_str(), Some(p.to_string().as_str()));
    assert_eq!((d["dontlog_normal"].as_bool(), d["log_separate_errors"].as_bool()), (Some(true), Some(true)));
    let f = &t["frontend"][0];
    assert_eq!(f["errorfiles"][0]["name"].as_str(), Some("site"));
    assert_eq!(f["errorfiles"][0]["codes"][0].as_integer(), Some(503));
    assert_eq!(f["errorloc"]["403"].as_str(), Some("http://x/denied"));
    assert_eq!(f["errorloc303"]["429"].as_str(), Some("/slow"));
    let he = &f["http_error"][0];
    assert_eq!((he["status"].as_integer(), he["string"].as_str()), (Some(500), Some("oops")));
    assert_eq!(he["hdr"][0].as_str(), Some("X-A: b"));
    assert_eq!(f["http_error"][1]["lf_string"].as_str(), Some("no way to %[path]"));
    assert_eq!(f["http_error"][1]["hdr"][0].as_str(), Some("X-Where: %[path] %ci"));
    assert_eq!(f["log_format"].as_str(), Some("%ci %[src] %{+Q}r %bi:%bp %sslv %sslc %Td %Tu %Tl %trl %lc"));
    assert_eq!(f["log_format_sd"].as_str(), Some("[x@1 a=\"%ci\"]"));
    assert_eq!(f["capture_request"][0]["header"].as_str(), Some("Host"));
    assert_eq!(f["capture_request"][1]["len"].as_integer(), Some(32));
    assert!(f["capture_request"][1].get("header").is_none());
    assert_eq!(f["capture_response"][0]["header"].as_str(), Some("Server"));
    assert_eq!(f["capture_cookie"]["name"].as_str(), Some("SESS"));
    assert_eq!(f["capture_cookie"]["len"].as_integer(), Some(16));
    assert_eq!(f["unique_id_format"].as_str(), Some("%{+X}o%ci"));
    assert_eq!(f["unique_id_header"].as_str(), Some("X-Id"));
    assert_eq!(t["backend"][0]["errorloc302"]["503"].as_str(), Some("/down"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let fe = &s.frontends[0];
    assert_eq!(fe.errors.codes().len(), 5, "{:?}", fe.errors.codes());
    assert!(fe.errors.has_lf());
    assert_eq!(fe.logging.req_slots.len(), 2);
    assert_eq!(fe.logging.cookie, Some(("SESS".to_string(), 16)));
    assert!(fe.logging.format.is_some() && fe.logging.format_sd.is_some() && fe.logging.unique_id.is_some());
    assert!(fe.logging.dontlog_normal && fe.logging.separate_errors);
    assert_eq!(s.backends[0].errors.get(503).map(|r| r.status.as_u16()), Some(302));
    assert!(s.backends[0].log_health_checks);
    assert_eq!(s.global.log_ident.tag.as_deref(), Some("web"));
    let f2 = &t["frontend"][1];
    assert_eq!(f2["log"].as_str(), Some("none"));
    assert_eq!(f2["log_targets"][0].as_str(), Some("127.0.0.1:5514 format short local1"));
    assert!(!s.frontends[1].logging.global && s.frontends[1].logging.targets.len() == 1);
    assert_eq!(s.frontends[1].log, crate::config::snapshot::LogMode::Connect);
    let _ = std::fs::remove_dir_all(&dir);
}
