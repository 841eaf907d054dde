//! Conversion of issue 17's server-side keywords: PROXY protocol, passive health checks.

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
    assert!(sp(1).v2 && sp(1).ssl && sp(1).authority && sp(1).unique_id);
    assert!(sp(2).v2 && sp(2).ssl && !sp(2).authority);
    // Checks carry the header: `a` by default (same address), `c` by check-send-proxy.
    assert_eq!(sv[0].check.as_ref().unwrap().proxy_header.as_deref(), Some(&b"PROXY UNKNOWN\r\n"[..]));
    assert_eq!(sv[2].check.as_ref().unwrap().proxy_header.as_ref().map(Vec::len), Some(16));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert_eq!(table(&c)["frontend"][0]["expect_proxy"]["if"].as_str(), Some("{ src 10.0.0.0/8 }"));

    // Unconditional expect-proxy.
    let c =
        conv(&format!("{FE_BE}  tcp-request connection expect-proxy layer4\nbackend be\n  server a 127.0.0.1:81\n"));
    assert!(snap(&c).frontends[0].expect_proxy.as_ref().is_some_and(|e| e.cond.is_none()));
}

#[test]
fn protocol_checks_and_tcp_check_rules_convert_and_validate() {
    use crate::health::tcpcheck::{Rule, Step};
    let c = conv(
        "defaults\n  mode tcp\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend rd\n\
         backend rd\n  option tcp-check\n  tcp-check connect port 6379\n  tcp-check send PING\\r\\n\n\
         \x20 tcp-check comment \"the answer\"\n  tcp-check expect string +PONG\n  server a 127.0.0.1:81 check\n\
         backend my\n  option mysql-check user haproxy\n  server a 127.0.0.1:82 check\n\
         backend pg\n  option pgsql-check user postgres\n  server a 127.0.0.1:83 check\n\
         backend sm\n  option smtpchk EHLO mx.example\n  server a 127.0.0.1:84 check\n\
         backend last\n  option redis-check\n  option ldap-check\n  server a 127.0.0.1:85 check\n\
         backend ssl\n  option ssl-hello-chk\n  server a 127.0.0.1:86 check\n",
    );
    let s = snap(&c);
    let kind = |b: usize| match &s.backends[b].servers[0].check.as_ref().unwrap().kind {
        CheckKind::Seq(q) => q.clone(),
        other => panic!("{other:?}"),
    };
    let rd = kind(0);
    assert_eq!(rd.steps.len(), 4);
    assert!(matches!(&rd.steps[0], Step::Connect { opts, comment: None } if opts.port == Some(6379)));
    assert_eq!(rd.steps[1], Step::Send { data: b"PING\r\n".to_vec(), comment: None });
    let Step::Expect(e) = &rd.steps[3] else { panic!() };
    assert_eq!((&e.rule, e.comment.as_deref()), (&Rule::String(b"+PONG".to_vec()), Some("the answer")));
    assert_eq!(kind(1).proto, Some("MySQL"));
    assert_eq!(kind(2).proto, Some("PostgreSQL"));
    let Step::Send { data, .. } = &kind(3).steps[3] else { panic!() };
    assert_eq!(data, b"EHLO mx.example\r\n");
    // The last option wins, as in HAProxy.
    assert_eq!(kind(4).proto, Some("LDAP"));
    assert_eq!(kind(5).proto, Some("SSL"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["check"]["tcp_check"][1].as_str(), Some("send PING\\r\\n"));

    // The options of HAProxy 2.6 map one-to-one, log-format strings included.
    let c = conv(&format!(
        "{FE_BE}backend be\n  option tcp-check\n  tcp-check connect port 6379 addr 127.0.0.1 send-proxy linger comment c\n\
         \x20 tcp-check send-lf \"AUTH %[env(PW)]\\r\\n\"\n\
         \x20 tcp-check expect string +OK ok-status L7OKC error-status L7STS tout-status L6TOUT on-error \"no %s\" status-code int(5)\n\
         \x20 server a 127.0.0.1:81 check\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let rules = table(&c)["backend"][0]["check"]["tcp_check"].as_array().unwrap().clone();
    assert_eq!(rules.get(1).and_then(|r| r.as_str()), Some("send-lf AUTH\\ %[env(PW)]\\r\\n"));
    let s = snap(&c);
    let CheckKind::Seq(q) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else { panic!() };
    let Step::Expect(e) = &q.steps[2] else { panic!() };
    assert_eq!(e.ok_status, Some(crate::health::CheckStatus::L7Okc));
    assert_eq!(e.on_error.as_ref().map(|f| f.src.as_str()), Some("no %s"));
    let Step::Connect { opts, .. } = &q.steps[0] else { panic!() };
    assert!(opts.send_proxy && opts.linger && opts.proxy_header.is_some());

    // A rule lbha cannot run is reported and left out.
    let c = conv(&format!(
        "{FE_BE}backend be\n  option tcp-check\n  tcp-check connect via-socks4\n  server a 127.0.0.1:81 check\n"
    ));
    assert_eq!(kinds(&c), [(8, ReportKind::Unsupported)]);
}

#[test]
fn agent_check_parameters_convert_and_validate() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:81 weight 20 agent-check agent-port 9999 agent-inter 3s agent-addr 127.0.0.2 agent-send \"hello\\n\"\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let ag = s.backends[0].servers[0].agent.as_ref().expect("agent kept");
    assert_eq!(ag.addr.to_string(), "127.0.0.2:9999");
    assert_eq!(ag.inter, Duration::from_secs(3));
    assert_eq!(ag.send, b"hello\n");
    // agent-check without agent-port is refused by lbha as by HAProxy.
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 agent-check\n"));
    let e = crate::config::parse(&c.toml, Path::new("lbha.toml")).unwrap_err();
    assert!(format!("{e:?}").contains("agent_port"), "{e:?}");
}

#[test]
fn http_check_disable_on_404_converts() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  option httpchk GET /health\n  http-check disable-on-404\n  server a 127.0.0.1:81 check\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let CheckKind::Http(h) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else { panic!() };
    assert!(h.disable_on_404);
}

#[test]
fn http_check_send_state_converts() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  option httpchk GET /health\n  http-check send-state\n  server a 127.0.0.1:81 check\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert!(c.toml.contains("send_state = true"), "{}", c.toml);
    let s = snap(&c);
    let CheckKind::Http(h) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else { panic!() };
    assert!(h.send_state);
}

#[test]
fn http_check_sequences_convert_rule_by_rule() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  option httpchk\n  http-check connect port 8080\n  http-check send meth POST uri /login hdr Content-Type application/json body {{\\\"u\\\":1}}\n\
         \x20 http-check expect status 200-299 comment login\n  http-check expect hdr name set-cookie value -m beg sid=\n\
         \x20 http-check connect port 8081\n  http-check send uri /status\n  http-check expect ! string down\n  server a 127.0.0.1:81 check\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let lines = table(&c)["backend"][0]["check"]["http_check"].as_array().unwrap().len();
    assert_eq!(lines, 7);
    let s = snap(&c);
    let CheckKind::Seq(seq) = &s.backends[0].servers[0].check.as_ref().unwrap().kind else { panic!() };
    assert!(seq.http);
    assert_eq!(seq.steps.len(), 7);

    // A rule lbha cannot run is dropped with the reason; option after send is reported.
    let c = conv(&format!(
        "{FE_BE}backend be\n  http-check send uri /a\n  option httpchk GET /b\n  http-check expect binary 00\n  server a 127.0.0.1:81 check\n"
    ));
    assert_eq!(kinds(&c), [(8, ReportKind::Approximated), (9, ReportKind::Unsupported)]);
}

#[test]
fn track_converts_and_resolves() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  server a 127.0.0.1:81 check\n  server t 127.0.0.1:82 track a\n  server u 127.0.0.1:83 track be/t\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    assert_eq!(sv[1].track, Some(("be".into(), "a".into())));
    assert_eq!(sv[2].track, Some(("be".into(), "t".into())));
    // HAProxy refuses a track of a server without checks; so does the converted config.
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81\n  server t 127.0.0.1:82 track a\n"));
    let e = crate::config::parse(&c.toml, Path::new("lbha.toml")).unwrap_err();
    assert!(format!("{e:?}").contains("does not have any check"), "{e:?}");
}

#[test]
fn retry_on_converts_and_validates() {
    let c = conv(&format!(
        "{FE_BE}backend be\n  retries 2\n  retry-on conn-failure 503 empty-response\n  server a 127.0.0.1:81\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let r = snap(&c).backends[0].retry_on;
    use crate::proxy::retry_on::Failure;
    assert!(r.retry(Failure::Status(503), true, 0, 2) && r.retry(Failure::Conn, false, 0, 2));
    assert!(!r.retry(Failure::Status(502), true, 0, 2));
    let e = conv_err(&format!("{FE_BE}backend be\n  retry-on 418\n  server a 127.0.0.1:81\n"));
    assert!(e.iter().any(|m| m.contains("418")), "{e:?}");
}

#[test]
fn check_ssl_sni_alpn_convert_and_validate() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:8080\n  default_backend be\n\
         backend be\n  option httpchk GET /health\n\
         \x20 server a 127.0.0.1:81 check check-ssl verify none check-sni a.example check-alpn h2,http/1.1\n\
         \x20 server b 127.0.0.1:82 ssl verify none check port 9000\n\
         \x20 server c 127.0.0.1:83 ssl verify none check alpn h2,http/1.1\n",
    );
    assert!(kinds(&c).is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let a = &t["backend"][0]["servers"][0];
    assert_eq!(a["check_ssl"].as_bool(), Some(true));
    assert_eq!(a["check_sni"].as_str(), Some("a.example"));
    assert_eq!(a["check_alpn"].as_str(), Some("h2,http/1.1"));
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    let tls = sv[0].check.as_ref().unwrap().tls.as_ref().expect("check-ssl");
    assert_eq!(tls.name, rustls_pki_types::ServerName::try_from("a.example").unwrap());
    assert_eq!(tls.config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert!(sv[1].check.as_ref().unwrap().tls.is_none(), "an ssl server checked on another port: plain");
    assert!(sv[2].check.as_ref().unwrap().tls.is_some(), "an ssl server checked on its address: TLS");
    assert_eq!(t["backend"][0]["servers"][2]["alpn"].as_str(), Some("h2,http/1.1"));
    assert_eq!(sv[2].tls.as_ref().unwrap().config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert!(sv[2].check.as_ref().unwrap().tls.as_ref().unwrap().config.alpn_protocols.is_empty(), "checks: no ALPN");
}

#[test]
fn passive_health_keywords_convert_one_to_one() {
    use crate::health::passive::{Observe, OnError, Spec};
    let c = conv(&format!(
        "{FE_BE}backend be\n  default-server observe layer7 error-limit 5 on-error sudden-death\n\
         \x20 server a 127.0.0.1:81 check on-marked-up shutdown-backup-sessions\n\
         \x20 server b 127.0.0.1:82 check observe layer4 on-error mark-down error-limit 2\n\
         \x20 server k 127.0.0.1:83 backup\n"
    ));
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    assert_eq!(sv[0].observe, Some(Spec { observe: Observe::Layer7, error_limit: 5, on_error: OnError::SuddenDeath }));
    assert!(sv[0].shutdown_backups_on_up);
    assert_eq!(sv[1].observe, Some(Spec { observe: Observe::Layer4, error_limit: 2, on_error: OnError::MarkDown }));
    // Without `check` HAProxy ignores them: left out (as other check settings of default-server).
    assert_eq!(sv[2].observe, None);
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    assert_eq!(t["backend"][0]["servers"][1]["on_error"].as_str(), Some("mark-down"));
    assert_eq!(t["backend"][0]["servers"][1]["error_limit"].as_integer(), Some(2));
    assert_eq!(t["backend"][0]["servers"][0]["on_marked_up"].as_str(), Some("shutdown-backup-sessions"));

    for (bad, want) in [
        ("observe layer5", "`observe` expects"),
        ("error-limit 0", "`error-limit` has to be > 0"),
        ("on-error down", "`on-error` expects"),
        ("on-marked-up shutdown-sessions", "`on-marked-up` expects"),
    ] {
        let e = conv_err(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 check {bad}\n"));
        assert!(e.iter().any(|e| e.contains(want)), "{bad}: {e:?}");
    }
}

#[test]
fn server_ids_convert_and_duplicates_are_refused() {
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 id 5\n  server b 127.0.0.1:82\n"));
    let ids: Vec<u32> = snap(&c).backends[0].servers.iter().map(|s| s.id).collect();
    assert_eq!(ids, [5, 2]);
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 redir http://img.example.com check\n"));
    assert_eq!(table(&c)["backend"][0]["servers"][0]["redir"].as_str(), Some("http://img.example.com"));
    assert!(snap(&c).backends[0].servers[0].redir.is_some());
    let c = conv(&format!(
        "{FE_BE}backend be\n  source 127.0.0.9\n  server a 127.0.0.1:81 source 127.0.0.2:2000-2010\n  server b 127.0.0.1:82\n"
    ));
    let s = snap(&c);
    let src = |i: usize| s.backends[0].servers[i].source.as_deref().map(|s| (s.ip.to_string(), s.ports));
    assert_eq!(src(0), Some(("127.0.0.2".into(), Some((2000, 2010)))));
    assert_eq!(src(1), Some(("127.0.0.9".into(), None)));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    // `usesrc` goes along, for validation to refuse by name (never a silently plain source).
    let c = conv(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 source 127.0.0.2 usesrc clientip\n"));
    let e = crate::config::parse(&c.toml, std::path::Path::new("t.toml")).unwrap_err().to_string();
    assert!(e.contains("servers[0].source") && e.contains("usesrc") && e.contains("not supported"), "{e}");
    let e = conv_err(&format!("{FE_BE}backend be\n  server a 127.0.0.1:81 id 0\n"));
    assert!(e.iter().any(|e| e.contains("custom id has to be > 0")), "{e:?}");
}

#[test]
fn proxy_ids_convert_and_number_as_haproxy() {
    // HAProxy 2.6 numbers these f1 3, b1 2, l1 5, b2 6 (`show stat` iid; the stats socket is
    // its first proxy).
    let c = conv(
        "global\n  stats socket /tmp/x.sock\ndefaults\n  mode http\nfrontend f1\n  bind 127.0.0.1:8080\n  \
         default_backend b2\nbackend b1\n  id 2\n  server s 127.0.0.1:81\nlisten l1\n  bind 127.0.0.1:8081\n  \
         server s 127.0.0.1:81\nbackend b2\n  server s 127.0.0.1:81\n",
    );
    assert!(c.reports.iter().all(|r| !r.message.contains("`id`")), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["id"].as_integer(), Some(2));
    let s = snap(&c);
    let fe: Vec<u32> = s.frontends.iter().map(|f| f.id).collect();
    let be: Vec<(&str, u32)> = s.backends.iter().map(|b| (b.name.as_str(), b.id)).collect();
    assert_eq!(fe, [3, 5]);
    assert_eq!(be, [("l1", 5), ("b1", 2), ("b2", 6)]);
    for (bad, want) in [
        ("backend b\n  id 0\n  server s 127.0.0.1:81\n", "custom id has to be > 0"),
        ("backend b\n  id x\n  server s 127.0.0.1:81\n", "custom id has to be > 0"),
        ("defaults\n  id 4\n", "'id' not allowed in 'defaults' section"),
    ] {
        let e = conv_err(&format!("{FE_BE}{bad}"));
        assert!(e.iter().any(|e| e.contains(want)), "{bad}: {e:?}");
    }
}

#[test]
fn option_persist_converts() {
    let c = conv(&format!("{FE_BE}backend be\n  option persist\n  server s 127.0.0.1:81\n"));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    assert_eq!(table(&c)["backend"][0]["option_persist"].as_bool(), Some(true));
    assert!(snap(&c).backends[0].option_persist);
    let c = conv(&format!("{FE_BE}backend be\n  option persist\n  no option persist\n  server s 127.0.0.1:81\n"));
    assert!(!snap(&c).backends[0].option_persist);
}

#[test]
fn wait_for_body_converts_and_needs_a_time() {
    let c = conv(
        "defaults\n  mode http\nfrontend fe\n  bind 127.0.0.1:8080\n  \
         http-request wait-for-body time 2s at-least 1k if { method POST }\n  \
         http-request wait-for-body time 500\n  default_backend be\nbackend be\n  server s 127.0.0.1:81\n",
    );
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let t = table(&c);
    let rules = t["frontend"][0]["http_request"].as_array().unwrap();
    let w = &rules[0]["wait_for_body"];
    assert_eq!((w["time"].as_str(), w["at_least"].as_str()), (Some("2s"), Some("1k")));
    assert_eq!(rules[1]["wait_for_body"]["time"].as_integer(), Some(500));
    let s = snap(&c);
    let actions: Vec<String> = s.frontends[0].http_request.iter().map(|r| format!("{:?}", r.action)).collect();
    assert!(actions[0].contains("WaitForBody") && actions[0].contains("1024"), "{actions:?}");
    assert!(actions[1].contains("500ms"), "{actions:?}");
    let e = conv_err(&format!("{FE_BE}  http-request wait-for-body at-least 10\n"));
    assert!(e.iter().any(|e| e.contains("expects a 'time'")), "{e:?}");
    let e = crate::config::parse(
        "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\nhttp_request = [{ wait_for_body = { at_least = 4 } }]\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("http_request[0].wait_for_body.time") && e.contains("needs a time"), "{e}");
    // `http-response wait-for-body` and `res.body` too; `http-after-response` has no wait, as
    // in HAProxy.
    let c = conv(&format!(
        "{FE_BE}  http-response wait-for-body time 1s at-least 10\n  \
         http-response set-header X-B %[res.body,length] if {{ res.body_len gt 0 }} {{ res.body_size gt 0 }}\n\
         backend be\n  server s 127.0.0.1:81\n"
    ));
    assert!(c.reports.is_empty(), "{:?}", c.reports);
    let s = snap(&c);
    assert!(format!("{:?}", s.frontends[0].http_response[0].action).contains("WaitForBody"));
    let c = conv(&format!("{FE_BE}  http-after-response wait-for-body time 1s\nbackend be\n  server s 127.0.0.1:81\n"));
    assert_eq!(c.reports.len(), 1, "{:?}", c.reports);
    assert!(snap(&c).frontends[0].http_after_response.is_empty());
    let e = crate::config::parse(
        "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\nhttp_after_response = [{ wait_for_body = { time = \"1s\" } }]\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is not an action of http_after_response"), "{e}");
}

#[test]
fn rise_and_fall_without_check_are_kept() {
    // HAProxy starts the check counter at `rise` with or without checks (`srv_check_health`,
    // an agent's "DOWN 2/5"): kept one to one, no note; `inter` still means nothing and goes.
    let c = conv(&format!(
        "{FE_BE}backend be\n  default-server fall 6\n  server a 127.0.0.1:81 rise 5\n  server b 127.0.0.1:82 inter 3s\n"
    ));
    let s = snap(&c);
    let sv = &s.backends[0].servers;
    assert_eq!((sv[0].rise_fall, sv[1].rise_fall), ((5, 6), (2, 6)));
    assert!(sv[0].check.is_none());
    let t = table(&c);
    assert_eq!(t["backend"][0]["servers"][0]["rise"].as_integer(), Some(5));
    assert!(t["backend"][0]["servers"][1].get("inter").is_none());
    assert_eq!(c.reports.len(), 1, "{:?}", c.reports);
    assert!(format!("{:?}", c.reports[0]).contains("`inter` has no effect without `check`"), "{:?}", c.reports);
}
