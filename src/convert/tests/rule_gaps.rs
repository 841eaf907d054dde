//! `deny`/`return` with error pages and log-format headers, `redirect prefix|scheme` with
//! log-format, per-proxy `log-tag`: converted one to one, nothing left out.

use super::*;

#[test]
fn deny_and_return_replies_convert_one_to_one() {
    let dir = std::env::temp_dir().join(format!("lbha-conv-replies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("404.http");
    std::fs::write(&page, "HTTP/1.1 404 Gone\r\nContent-Length: 5\r\n\r\ngone\n").unwrap();
    let lf = dir.join("lf.txt");
    std::fs::write(&lf, "no %[path]\n").unwrap();
    let (p, l) = (page.display(), lf.display());
    let c = conv(&format!(
        "http-errors site\n  errorfile 503 {p}\n\
         defaults\n  mode http\nfrontend fe\n  bind :80\n\
         \x20 http-request deny deny_status 404 errorfile {p} if {{ path /a }}\n\
         \x20 http-request deny deny_status 503 errorfiles site if {{ path /b }}\n\
         \x20 http-request deny default-errorfiles if {{ path /c }}\n\
         \x20 http-request deny deny_status 404 content-type text/plain lf-file {l} hdr X-A \"%[path]\" hdr X-B 1 if {{ path /d }}\n\
         \x20 http-request return status 404 errorfile {p} if {{ path /e }}\n\
         \x20 http-request return status 503 errorfiles site if {{ path /f }}\n\
         \x20 http-request return status 403 default-errorfiles if {{ path /g }}\n\
         \x20 http-request return status 200 content-type text/plain string ok hdr X-P \"%[path] 100%%\" if {{ path /h }}\n\
         \x20 http-request redirect prefix https://%[req.hdr(host)] if {{ path /i }}\n\
         \x20 http-request redirect scheme %[req.hdr(x-s)] if {{ path /j }}\n\
         \x20 default_backend be\nbackend be\n  server a 127.0.0.1:1\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let r = &t["frontend"][0]["http_request"];
    assert_eq!(r[0]["deny"]["errorfile"].as_str(), Some(p.to_string().as_str()));
    assert_eq!(r[1]["deny"]["errorfiles"].as_str(), Some("site"));
    assert_eq!(r[2]["deny"]["default_errorfiles"].as_bool(), Some(true));
    assert_eq!(r[3]["deny"]["lf_file"].as_str(), Some(l.to_string().as_str()));
    assert_eq!(r[3]["deny"]["headers"][0].as_str(), Some("X-A: %[path]"));
    assert_eq!(r[4]["return"]["errorfile"].as_str(), Some(p.to_string().as_str()));
    assert_eq!(r[7]["return"]["headers"][0].as_str(), Some("X-P: %[path] 100%%"));
    assert_eq!(r[8]["redirect"]["prefix"].as_str(), Some("https://%[req.hdr(host)]"));
    let s = snap(&c);
    let acts: Vec<String> = s.frontends[0]
        .http_request
        .iter()
        .map(|r| format!("{:?}", r.action).split([' ', '(', '{']).next().unwrap_or("").to_string())
        .collect();
    let want = ["ErrorPage", "ErrorPage", "ErrorPage", "ReturnLf", "ErrorPage", "ErrorPage", "ErrorPage", "ReturnLf"];
    assert_eq!(acts[..8], want);
    match &s.frontends[0].http_request[3].action {
        HttpAction::ReturnLf { headers, lf_headers, deny, .. } => {
            assert!(*deny);
            let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["content-type", "x-b"]);
            assert_eq!(lf_headers.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    match &s.frontends[0].http_request[9].action {
        HttpAction::Redirect { target: RedirectTarget::Scheme(f), .. } => assert!(f.segments.len() == 1),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn per_proxy_log_tag_converts() {
    let c = conv(
        "defaults\n  mode http\n  log-tag d\nfrontend fe\n  bind :80\n  log-tag web\n  default_backend be\n\
         backend be\n  log-tag app\n  server a 127.0.0.1:1\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    assert_eq!(t["defaults"]["log_tag"].as_str(), Some("d"));
    assert_eq!(t["frontend"][0]["log_tag"].as_str(), Some("web"));
    assert_eq!(t["backend"][0]["log_tag"].as_str(), Some("app"));
    let s = snap(&c);
    assert_eq!(s.frontends[0].logging.tag.as_deref(), Some("web"));
    assert_eq!(s.backends[0].log_tag.as_deref(), Some("app"));
    assert!(conv_err("defaults\n  log-tag\n").iter().any(|e| e.contains("needs a tag")));
}
