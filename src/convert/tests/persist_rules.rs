//! `use-server`, `force-persist` and `ignore-persist` convert one to one, in order.

use super::*;

#[test]
fn server_rules_convert_in_order() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  acl api path_beg /api\n  ignore-persist if {{ path_end .css }}\n  force-persist if {{ hdr(x-test) -m found }}\n  use-server b if api\n  use-server %[req.hdr(x-srv)] unless api\n  cookie S insert indirect\n  server a 127.0.0.1:1 cookie a\n  server b 127.0.0.1:2 cookie b\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let be = &t["backend"][0];
    let rules = be["persist_rules"].as_array().unwrap();
    assert_eq!(rules[0]["action"].as_str(), Some("ignore-persist"));
    assert_eq!(rules[0]["if"].as_str(), Some("{ path_end .css }"));
    assert_eq!(rules[1]["action"].as_str(), Some("force-persist"));
    let us = be["use_server"].as_array().unwrap();
    assert_eq!((us[0]["server"].as_str(), us[0]["if"].as_str()), (Some("b"), Some("api")));
    assert_eq!((us[1]["server"].as_str(), us[1]["unless"].as_str()), (Some("%[req.hdr(x-srv)]"), Some("api")));
    let s = snap(&c);
    let r = &s.backends[0].server_rules;
    assert_eq!((r.persist.len(), r.use_server.len()), (2, 2));
}

#[test]
fn server_rules_without_a_condition_are_refused_as_haproxy_does() {
    let errs = conv_err(&format!("{FE_BE}backend be\n  use-server a\n  server a 127.0.0.1:1\n"));
    assert!(errs.iter().any(|e| e.contains("h.cfg:7") && e.contains("requires")), "{errs:?}");
    let errs = conv_err(&format!("{FE_BE}backend be\n  server a 127.0.0.1:1\n  force-persist\n"));
    assert!(errs.iter().any(|e| e.contains("h.cfg:8") && e.contains("`force-persist` requires")), "{errs:?}");
}

#[test]
fn balance_hash_converts_and_its_expression_is_checked() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  balance hash req.cook(clientid)\n  hash-type consistent\n  server a 127.0.0.1:1\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["balance"].as_str(), Some("hash req.cook(clientid)"));
    assert!(snap(&c).backends[0].hash_expr.is_some());
    let c = conv(&format!("{FE_BE}backend be\n  balance hash\n  server a 127.0.0.1:1\n"));
    assert_eq!(kinds(&c), [(7, ReportKind::Unsupported)]);
}

#[test]
fn persist_rdp_cookie_converts() {
    let c = conv(
        "defaults\n  mode tcp\nlisten tse\n  bind :3389\n  persist rdp-cookie\n  balance rdp-cookie\n  server a 127.0.0.1:3389\nlisten t2\n  bind :3390\n  persist rdp-cookie(mycookie)\n  server a 127.0.0.1:3389\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert_eq!(s.backends[0].rdp_persist.as_deref(), Some("msts"));
    assert_eq!(s.backends[1].rdp_persist.as_deref(), Some("mycookie"));
}
