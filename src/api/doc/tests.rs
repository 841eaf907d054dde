//! The document layer on real lbha.toml text: results parse as valid configs, and what an
//! operation does not touch (comments, spelling, order) stays as it was.

use crate::api::error::ApiError;
use crate::api::resources::{Kind, Scope, Write, read, write};
use serde_json::{Value as Json, json};
use std::path::Path;
use toml_edit::DocumentMut;

const BASE: &str = r#"# operator's header comment
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }  # keep me

[[backend]]
name = "app"   # the app
servers = [
  { name = "a1", addr = "127.0.0.1:9001" },
  # second server
  { name = "a2", addr = "127.0.0.1:9002", weight = 2 },
]

[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
default_backend = "app"
"#;

fn doc() -> DocumentMut {
    BASE.parse().expect("base parses")
}

fn scope(pairs: &[(&str, &str)]) -> Scope {
    let mut s = Scope::default();
    for (k, v) in pairs {
        let v = Some(v.to_string());
        match *k {
            "backend" => s.backend = v,
            "frontend" => s.frontend = v,
            "parent_type" => s.parent_type = v,
            _ => s.parent_name = v,
        }
    }
    s
}

fn valid(d: &DocumentMut) {
    let text = d.to_string();
    if let Err(e) = crate::config::parse(&text, Path::new("t.toml")) {
        panic!("{e}\n---\n{text}");
    }
}

#[test]
fn seed_sequence_on_a_document_keeps_comments_and_validates() {
    let mut d = doc();
    let none = Scope::default();
    write(&mut d, Kind::Backends, &none, Write::Create(&json!({"adv_check":"httpchk","balance":{"algorithm":"roundrobin"},"forwardfor":{"enabled":"enabled"},"httpchk_params":{"method":"GET","uri":"/check","version":"HTTP/1.1"},"mode":"http","name":"test_backendtr"}))).unwrap();
    let sb = scope(&[("backend", "test_backendtr")]);
    write(&mut d, Kind::Servers, &sb, Write::Create(&json!({"name": "server1", "address": "127.0.0.1", "port": 9191, "check": "enabled", "maxconn": 30, "weight": 100}))).unwrap();
    write(&mut d, Kind::Frontends, &none, Write::Create(&json!({"default_backend":"test_backendtr","http_connection_mode":"http-keep-alive","maxconn":2000,"mode":"http","name":"test_frontendtr"}))).unwrap();
    let sf = scope(&[("frontend", "test_frontendtr")]);
    write(&mut d, Kind::Binds, &sf, Write::Create(&json!({"name": "http", "address": "127.0.0.1", "port": 8181})))
        .unwrap();
    write(&mut d, Kind::SwitchingRules, &sf, Write::Create(&json!({"name": "test_backendtr", "index": 0}))).unwrap();
    write(&mut d, Kind::SwitchingRules, &sf, Write::Create(&json!({"id": 0, "name": "app", "index": 1}))).unwrap();
    valid(&d);
    let text = d.to_string();
    for kept in ["# operator's header comment", "# keep me", "# the app", "# second server", "connect = \"5s\""] {
        assert!(text.contains(kept), "{kept:?} lost:\n{text}");
    }
    assert!(text.contains("check = { http = \"GET /check HTTP/1.1\" }"), "{text}");
    assert!(text.contains("bind = [\n  { name = \"http\", addr = \"127.0.0.1:8181\" },\n]"), "{text}");
    let rules = read(&d, Kind::SwitchingRules, &sf, None).unwrap();
    assert_eq!(rules, json!([{"index":0,"name":"test_backendtr"},{"index":1,"name":"app"}]));
    let b = read(&d, Kind::Backends, &none, Some("test_backendtr")).unwrap();
    assert_eq!(
        b,
        json!({"name":"test_backendtr","mode":"http","balance":{"algorithm":"roundrobin"},"adv_check":"httpchk","httpchk_params":{"method":"GET","uri":"/check","version":"HTTP/1.1"},"forwardfor":{"enabled":"enabled"}})
    );
    let s = read(&d, Kind::Servers, &sb, Some("server1")).unwrap();
    assert_eq!(
        s,
        json!({"name":"server1","address":"127.0.0.1","port":9191,"check":"enabled","maxconn":30,"weight":100})
    );
    // The new backend sits after the existing one, before the frontends.
    assert!(text.find("test_backendtr").unwrap() < text.find("name = \"web\"").unwrap(), "{text}");
}

#[test]
fn unchanged_values_keep_their_spelling() {
    let mut d = doc();
    let none = Scope::default();
    write(
        &mut d,
        Kind::Defaults,
        &none,
        Write::Replace(
            None,
            &json!({"mode":"http","connect_timeout":5000,"client_timeout":30000,"server_timeout":60000}),
        ),
    )
    .unwrap();
    let text = d.to_string();
    assert!(text.contains("connect = \"5s\""), "{text}");
    assert!(text.contains("server = 60000"), "{text}");
    assert!(text.contains("# keep me"), "{text}");
    valid(&d);
}

#[test]
fn server_replace_and_delete() {
    let mut d = doc();
    let sb = scope(&[("backend", "app")]);
    write(
        &mut d,
        Kind::Servers,
        &sb,
        Write::Replace(Some("a2"), &json!({"name":"a2","address":"127.0.0.1","port":9003,"weight":5})),
    )
    .unwrap();
    let text = d.to_string();
    assert!(text.contains("# second server\n  { name = \"a2\", addr = \"127.0.0.1:9003\", weight = 5 }"), "{text}");
    write(&mut d, Kind::Servers, &sb, Write::Delete("a1")).unwrap();
    let list = read(&d, Kind::Servers, &sb, None).unwrap();
    assert_eq!(list, json!([{"name":"a2","address":"127.0.0.1","port":9003,"weight":5}]));
    valid(&d);
}

#[test]
fn errors_of_the_original() {
    let mut d = doc();
    let none = Scope::default();
    let e = write(&mut d, Kind::Backends, &none, Write::Create(&json!({"name":"app"}))).unwrap_err();
    assert_eq!(e, ApiError::Conflict("object already exists: Object app already exists".into()));
    let e = write(
        &mut d,
        Kind::Servers,
        &scope(&[("backend", "nope")]),
        Write::Create(&json!({"name":"x","address":"127.0.0.1","port":1})),
    )
    .unwrap_err();
    assert_eq!(e, ApiError::BadRequest("missing parent: backend nope does not exist".into()));
    let e = read(&d, Kind::Backends, &none, Some("nope")).unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(read(&d, Kind::Servers, &scope(&[("backend", "nope")]), None).unwrap(), json!([]));
    let e = write(&mut d, Kind::Servers, &none, Write::Create(&json!({"name":"x","address":"127.0.0.1","port":1})))
        .unwrap_err();
    assert_eq!(e.to_string(), "backend in query is required");
    let sf = scope(&[("frontend", "web")]);
    let e = write(&mut d, Kind::SwitchingRules, &sf, Write::Create(&json!({"name":"app","index":1}))).unwrap_err();
    assert_eq!(e, ApiError::BadRequest("index out of range: Object with id 1 in frontend web out of range".into()));
    let e = write(&mut d, Kind::Backends, &none, Write::Create(&json!({"name":"bad name"}))).unwrap_err();
    assert_eq!(e.code(), 605);
    let e =
        write(&mut d, Kind::Backends, &none, Write::Create(&json!({"name":"x","cookie":{"name":"S"}}))).unwrap_err();
    assert!(e.to_string().starts_with("cookie: not supported by lbha"), "{e}");
    // Nothing of the failed writes is in the document.
    assert_eq!(d.to_string(), BASE);
}

#[test]
fn indexes_renumber_after_delete_and_insert_shifts() {
    let mut d = doc();
    let sf = scope(&[("frontend", "web")]);
    for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
        write(
            &mut d,
            Kind::Acls,
            &scope(&[("parent_type", "frontend"), ("parent_name", "web")]),
            Write::Create(&json!({"index": i, "acl_name": n, "criterion": "path_beg", "value": format!("/{n}")})),
        )
        .unwrap();
        write(
            &mut d,
            Kind::SwitchingRules,
            &sf,
            Write::Create(&json!({"index": i, "name": "app", "cond": "if", "cond_test": n})),
        )
        .unwrap();
    }
    write(&mut d, Kind::SwitchingRules, &sf, Write::Delete("2")).unwrap();
    let rules = read(&d, Kind::SwitchingRules, &sf, None).unwrap();
    let tests: Vec<_> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_i64().unwrap(), r["cond_test"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(tests, vec![(0, "a".into()), (1, "b".into()), (2, "d".into())]);
    write(
        &mut d,
        Kind::SwitchingRules,
        &sf,
        Write::Create(&json!({"index": 0, "name": "app", "cond": "unless", "cond_test": "a"})),
    )
    .unwrap();
    let first = read(&d, Kind::SwitchingRules, &sf, Some("0")).unwrap();
    assert_eq!(first, json!({"index":0,"name":"app","cond":"unless","cond_test":"a"}));
    assert_eq!(read(&d, Kind::SwitchingRules, &sf, Some("4")).unwrap_err().status(), 404);
    valid(&d);
    let acl = read(&d, Kind::Acls, &scope(&[("parent_type", "frontend"), ("parent_name", "web")]), Some("3")).unwrap();
    assert_eq!(acl, json!({"index":3,"acl_name":"d","criterion":"path_beg","value":"/d"}));
}

#[test]
fn http_request_rules_round_trip() {
    let mut d = doc();
    let p = scope(&[("parent_type", "frontend"), ("parent_name", "web")]);
    let rules = [
        json!({"index":0,"type":"deny","deny_status":403,"cond":"if","cond_test":"{ path_beg /admin }"}),
        json!({"index":1,"type":"redirect","redir_type":"prefix","redir_value":"https://example.com","redir_code":301}),
        json!({"index":2,"type":"set-header","hdr_name":"X-A","hdr_format":"1"}),
        json!({"index":3,"type":"del-header","hdr_name":"X-B"}),
        json!({"index":4,"type":"return","return_status_code":200,"return_content_type":"text/plain","return_content":"ok","return_content_format":"string"}),
    ];
    for r in &rules {
        write(&mut d, Kind::HttpRequestRules, &p, Write::Create(r)).unwrap();
    }
    assert_eq!(read(&d, Kind::HttpRequestRules, &p, None).unwrap(), json!(rules));
    valid(&d);
}

#[test]
fn listen_sections_are_frontends_and_backends_but_not_deleted_through_them() {
    let mut d: DocumentMut =
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:1\"]\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n"
            .parse()
            .unwrap();
    let none = Scope::default();
    assert_eq!(read(&d, Kind::Backends, &none, None).unwrap(), json!([{"name":"l"}]));
    assert_eq!(read(&d, Kind::Frontends, &none, None).unwrap(), json!([{"name":"l"}]));
    let e = write(&mut d, Kind::Backends, &none, Write::Delete("l")).unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn bind_options_are_kept_when_a_bind_is_replaced() {
    let mut d: DocumentMut = "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:8443 proto h2\"]\n".parse().unwrap();
    let sf = scope(&[("frontend", "fe")]);
    assert_eq!(
        read(&d, Kind::Binds, &sf, None).unwrap(),
        json!([{"name": "127.0.0.1:8443", "address": "127.0.0.1", "port": 8443}])
    );
    write(
        &mut d,
        Kind::Binds,
        &sf,
        Write::Replace(Some("127.0.0.1:8443"), &json!({"address": "127.0.0.1", "port": 9443})),
    )
    .unwrap();
    assert!(
        d.to_string().contains("bind = [{ name = \"127.0.0.1:8443\", addr = \"127.0.0.1:9443 proto h2\" }]"),
        "{d}"
    );
}

#[test]
fn abortonclose_round_trips_on_backends_and_defaults() {
    let mut d = doc();
    let none = Scope::default();
    write(&mut d, Kind::Backends, &none, Write::Create(&json!({"name":"q","mode":"http","abortonclose":"enabled"})))
        .unwrap();
    write(&mut d, Kind::Defaults, &none, Write::Replace(None, &json!({"mode":"http","abortonclose":"disabled"})))
        .unwrap();
    let text = d.to_string();
    assert!(text.contains("abortonclose = true"), "{text}");
    assert!(text.contains("abortonclose = false"), "{text}");
    valid(&d);
    let b = read(&d, Kind::Backends, &none, Some("q")).unwrap();
    assert_eq!(b["abortonclose"], json!("enabled"));
    let bad = write(&mut d, Kind::Backends, &none, Write::Create(&json!({"name":"r","abortonclose":"maybe"})));
    assert!(bad.is_err());
}

#[test]
fn bind_tls_fields_become_bind_words_and_read_back() {
    let mut d: DocumentMut = "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:8443 proto h2\"]\n".parse().unwrap();
    let sf = scope(&[("frontend", "fe")]);
    let body = json!({"name": "tls", "address": "127.0.0.1", "port": 9443, "ssl": true,
        "ssl_certificate": "site.pem", "alpn": "h2,http/1.1", "verify": "optional", "ssl_cafile": "ca.pem",
        "ssl_min_ver": "TLSv1.2", "strict_sni": true, "no_tlsv13": false, "accept_proxy": true});
    write(&mut d, Kind::Binds, &sf, Write::Create(&body)).unwrap();
    let text = d.to_string();
    assert!(
        text.contains("addr = \"127.0.0.1:9443 ssl crt site.pem ca-file ca.pem alpn h2,http/1.1 verify optional ssl-min-ver TLSv1.2 strict-sni accept-proxy\""),
        "{text}"
    );
    let got = read(&d, Kind::Binds, &sf, Some("tls")).unwrap();
    let want = json!({"name": "tls", "address": "127.0.0.1", "port": 9443, "ssl": true,
        "ssl_certificate": "site.pem", "alpn": "h2,http/1.1", "verify": "optional", "ssl_cafile": "ca.pem",
        "ssl_min_ver": "TLSv1.2", "strict_sni": true, "accept_proxy": true});
    assert_eq!(got, want);
    // A replace sets the fields it is given: TLS off, and the word the API has no field for
    // (`proto h2`) stays.
    let plain = json!({"address": "127.0.0.1", "port": 8444});
    write(&mut d, Kind::Binds, &sf, Write::Replace(Some("127.0.0.1:8443"), &plain)).unwrap();
    assert!(d.to_string().contains("addr = \"127.0.0.1:8444 proto h2\""), "{d}");
    let bad = json!({"name": "x", "port": 1, "ssl_min_ver": "TLSv9"});
    assert_eq!(write(&mut d, Kind::Binds, &sf, Write::Create(&bad)).unwrap_err().status(), 422);
    let spaced = json!({"name": "y", "port": 2, "ssl": true, "ssl_certificate": "a b.pem"});
    assert_eq!(write(&mut d, Kind::Binds, &sf, Write::Create(&spaced)).unwrap_err().status(), 422);
    let unsupported = json!({"name": "z", "port": 3, "tfo": true});
    assert_eq!(write(&mut d, Kind::Binds, &sf, Write::Create(&unsupported)).unwrap_err().status(), 400);
}

#[test]
fn server_tls_proxy_agent_and_dns_fields_map_onto_server_keys() {
    let mut d = doc();
    let sb = scope(&[("backend", "app")]);
    let body = json!({"name": "t1", "address": "127.0.0.1", "port": 9443, "ssl": "enabled",
        "ssl_cafile": "ca.pem", "verify": "required", "sni": "str(localhost)", "alpn": "h2,http/1.1",
        "ssl_min_ver": "TLSv1.3", "tls_tickets": "disabled", "send-proxy-v2": "enabled",
        "proxy-v2-options": ["ssl", "authority"], "check-ssl": "enabled", "agent-check": "enabled",
        "agent-port": 9999, "agent-inter": 2000, "slowstart": 30000, "maxqueue": 10,
        "init-addr": "last,libc,none", "resolve-prefer": "ipv4", "on-marked-down": "shutdown-sessions"});
    write(&mut d, Kind::Servers, &sb, Write::Create(&body)).unwrap();
    let text = d.to_string();
    for kv in [
        "ssl = true",
        "ca_file = \"ca.pem\"",
        "sni = \"str(localhost)\"",
        "no_tls_tickets = true",
        "send_proxy_v2 = true",
        "proxy_v2_options = \"ssl,authority\"",
        "agent_port = 9999",
        "slowstart = 30000",
        "init_addr = \"last,libc,none\"",
        "on_marked_down = \"shutdown-sessions\"",
    ] {
        assert!(text.contains(kv), "{kv} in {text}");
    }
    let got = read(&d, Kind::Servers, &sb, Some("t1")).unwrap();
    assert_eq!(got, body);
    // A value only lbha's own file spells so is left out of the answer, not the server.
    let mut d: DocumentMut =
        "[[backend]]\nname = \"b\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:1\", ssl_min_ver = \"tls1.2\", ssl = true }]\n"
            .parse()
            .unwrap();
    let got = read(&d, Kind::Servers, &scope(&[("backend", "b")]), Some("s")).unwrap();
    assert_eq!(got, json!({"name": "s", "address": "127.0.0.1", "port": 1, "ssl": "enabled"}));
    let bad = json!({"name": "u", "address": "127.0.0.1", "port": 1, "verify": "optional"});
    assert_eq!(
        write(&mut d, Kind::Servers, &scope(&[("backend", "b")]), Write::Create(&bad)).unwrap_err().status(),
        422
    );
}

#[test]
fn server_passive_check_track_id_source_and_redir_fields_map_onto_server_keys() {
    let mut d = doc();
    let sb = scope(&[("backend", "app")]);
    let body = json!({"name": "p1", "address": "127.0.0.1", "port": 9444, "observe": "layer7",
        "error_limit": 3, "on-error": "sudden-death", "on-marked-up": "shutdown-backup-sessions",
        "on-marked-down": "shutdown-sessions", "track": "app/a1", "id": 42, "source": "127.0.0.2:2000-2010",
        "redir": "http://img.example", "resolve_opts": "prevent-dup-ip,ignore-weight"});
    write(&mut d, Kind::Servers, &sb, Write::Create(&body)).unwrap();
    let text = d.to_string();
    for kv in [
        "observe = \"layer7\"",
        "error_limit = 3",
        "on_error = \"sudden-death\"",
        "on_marked_up = \"shutdown-backup-sessions\"",
        "track = \"app/a1\"",
        "id = 42",
        "source = \"127.0.0.2:2000-2010\"",
        "redir = \"http://img.example\"",
        "resolve_opts = \"prevent-dup-ip,ignore-weight\"",
    ] {
        assert!(text.contains(kv), "{kv} in {text}");
    }
    assert_eq!(read(&d, Kind::Servers, &sb, Some("p1")).unwrap(), body);
    // A replace without them takes them off the server.
    let plain = json!({"name": "p1", "address": "127.0.0.1", "port": 9444});
    write(&mut d, Kind::Servers, &sb, Write::Replace(Some("p1"), &plain)).unwrap();
    let text = d.to_string();
    assert!(!text.contains("observe") && !text.contains("id = 42") && !text.contains("redir"), "{text}");
    for bad in [
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "observe": "layer5"}),
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "on-error": "restart"}),
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "on-marked-up": "shutdown-sessions"}),
    ] {
        assert_eq!(write(&mut d, Kind::Servers, &sb, Write::Create(&bad)).unwrap_err().status(), 422, "{bad}");
    }
    for bad in [
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "id": 0}),
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "error_limit": 0}),
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "resolve_opts": "prevent-dup-ip,bogus"}),
        json!({"name": "u", "address": "127.0.0.1", "port": 1, "redir": "two words"}),
    ] {
        let e = write(&mut d, Kind::Servers, &sb, Write::Create(&bad)).unwrap_err();
        assert!(matches!(e.status(), 400 | 422), "{bad}: {e}");
    }
}

#[test]
fn frontend_log_fields_and_backend_reuse_fields_map_onto_section_keys() {
    let mut d = doc();
    let body = json!({"name": "logs", "mode": "http", "default_backend": "app", "clflog": true,
        "dontlognull": "enabled", "http-buffer-request": "enabled", "log_format": "%ci:%cp [%t] %ST %[req.hdr(host)]",
        "log_tag": "edge", "unique_id_format": "%{+X}o %ci:%cp", "unique_id_header": "X-Unique-ID",
        "monitor_uri": "/up"});
    write(&mut d, Kind::Frontends, &Scope::default(), Write::Create(&body)).unwrap();
    let text = d.to_string();
    for kv in [
        "httplog = \"clf\"",
        "dontlognull = true",
        "http_buffer_request = true",
        "log_format = \"%ci:%cp [%t] %ST %[req.hdr(host)]\"",
        "monitor_uri = \"/up\"",
    ] {
        assert!(text.contains(kv), "{kv} in {text}");
    }
    assert_eq!(read(&d, Kind::Frontends, &Scope::default(), Some("logs")).unwrap(), body);
    let plain = json!({"name": "logs", "httplog": true});
    write(&mut d, Kind::Frontends, &Scope::default(), Write::Replace(Some("logs"), &plain)).unwrap();
    assert!(d.to_string().contains("httplog = true") && !d.to_string().contains("log_format"), "{d}");
    let spaced = json!({"name": "x", "log_tag": "two words"});
    assert_eq!(write(&mut d, Kind::Frontends, &Scope::default(), Write::Create(&spaced)).unwrap_err().status(), 422);

    let be = json!({"name": "app", "http_reuse": "safe", "log_health_checks": "enabled", "fullconn": 1000});
    write(&mut d, Kind::Backends, &Scope::default(), Write::Replace(Some("app"), &be)).unwrap();
    let text = d.to_string();
    assert!(text.contains("http_reuse = \"safe\"") && text.contains("fullconn = 1000"), "{text}");
    assert_eq!(read(&d, Kind::Backends, &Scope::default(), Some("app")).unwrap(), be);
    // The servers of a replaced backend stay: the resource covers the section's own keys only.
    assert!(text.contains("a2"), "{text}");
}

#[test]
fn http_request_rules_of_every_common_type_round_trip() {
    let mut d = doc();
    let sc = scope(&[("parent_type", "frontend"), ("parent_name", "web")]);
    let rules = [
        json!({"type": "allow", "cond": "if", "cond_test": "{ src 127.0.0.1 }"}),
        json!({"type": "tarpit", "deny_status": 429}),
        json!({"type": "auth", "auth_realm": "admins"}),
        json!({"type": "set-path", "path_fmt": "/v2%[path]"}),
        json!({"type": "set-uri", "uri_fmt": "/x"}),
        json!({"type": "replace-path", "path_match": "/api/(.*)", "path_fmt": "/\\1"}),
        json!({"type": "replace-uri", "uri_match": "^http://[^/]*(.*)", "uri_fmt": "\\1"}),
        json!({"type": "replace-header", "hdr_name": "Host", "hdr_match": "(.*):80", "hdr_format": "\\1"}),
        json!({"type": "replace-value", "hdr_name": "X-List", "hdr_match": "a", "hdr_format": "b"}),
        json!({"type": "set-var", "var_scope": "txn", "var_name": "host", "var_expr": "req.hdr(host),lower"}),
        json!({"type": "unset-var", "var_scope": "txn", "var_name": "host"}),
        json!({"type": "capture", "capture_sample": "req.hdr(user-agent)", "capture_len": 64}),
        json!({"type": "track-sc0", "track_sc0_key": "src"}),
        json!({"type": "track-sc1", "track_sc1_key": "src", "track_sc1_table": "st"}),
        json!({"type": "set-log-level", "log_level": "silent"}),
        json!({"type": "use-service", "service_name": "prometheus-exporter"}),
    ];
    for (i, r) in rules.iter().enumerate() {
        let mut body = r.clone();
        body["index"] = json!(i);
        write(&mut d, Kind::HttpRequestRules, &sc, Write::Create(&body)).unwrap_or_else(|e| panic!("{r}: {e:?}"));
    }
    let got = read(&d, Kind::HttpRequestRules, &sc, None).unwrap();
    for (i, r) in rules.iter().enumerate() {
        let mut want = r.clone();
        want["index"] = json!(i);
        assert_eq!(got[i], want, "rule {i}");
    }
    let text = d.to_string();
    for kv in ["allow = true", "set_var = { var = \"txn.host\"", "track_sc1 = { key = \"src\", table = \"st\" }"] {
        assert!(text.contains(kv), "{kv} in {text}");
    }
    for (bad, status) in [
        (json!({"index": 0, "type": "set-var", "var_scope": "global", "var_name": "x", "var_expr": "src"}), 422),
        (json!({"index": 0, "type": "set-var", "var_scope": "txn", "var_name": "x"}), 422),
        (json!({"index": 0, "type": "capture", "capture_sample": "src"}), 400),
        (json!({"index": 0, "type": "lua", "lua_action": "x"}), 400),
    ] {
        let e = write(&mut d, Kind::HttpRequestRules, &sc, Write::Create(&bad)).unwrap_err();
        assert_eq!(e.status(), status, "{bad}: {e:?}");
    }
}

#[test]
fn server_switching_rules_are_the_backends_use_server_list() {
    let mut d = doc();
    let sb = scope(&[("backend", "app")]);
    let rule = |i: i64, s: &str, cond: Option<&str>| match cond {
        Some(c) => json!({"index": i, "target_server": s, "cond": "if", "cond_test": c}),
        None => json!({"index": i, "target_server": s}),
    };
    let w =
        |d: &mut DocumentMut, body: &serde_json::Value| write(d, Kind::ServerSwitchingRules, &sb, Write::Create(body));
    w(&mut d, &rule(0, "a2", Some("{ path_beg /two }"))).unwrap();
    w(&mut d, &rule(0, "a1", Some("{ path_beg /one }"))).unwrap();
    w(&mut d, &rule(2, "%[req.hdr(x-srv)]", Some("{ req.hdr(x-srv) -m found }"))).unwrap();
    valid(&d);
    assert!(d.to_string().contains(r#"{ server = "a1", if = "{ path_beg /one }" }"#), "{d}");
    let all = read(&d, Kind::ServerSwitchingRules, &sb, None).unwrap();
    assert_eq!(
        all,
        json!([
            {"index": 0, "target_server": "a1", "cond": "if", "cond_test": "{ path_beg /one }"},
            {"index": 1, "target_server": "a2", "cond": "if", "cond_test": "{ path_beg /two }"},
            {"index": 2, "target_server": "%[req.hdr(x-srv)]", "cond": "if", "cond_test": "{ req.hdr(x-srv) -m found }"},
        ])
    );
    let put = json!({"index": 9, "target_server": "a2", "cond": "unless", "cond_test": "{ src 10.0.0.0/8 }"});
    write(&mut d, Kind::ServerSwitchingRules, &sb, Write::Replace(Some("0"), &put)).unwrap();
    let first = read(&d, Kind::ServerSwitchingRules, &sb, Some("0")).unwrap();
    assert_eq!(first, json!({"index": 0, "target_server": "a2", "cond": "unless", "cond_test": "{ src 10.0.0.0/8 }"}));
    write(&mut d, Kind::ServerSwitchingRules, &sb, Write::Delete("1")).unwrap();
    assert_eq!(read(&d, Kind::ServerSwitchingRules, &sb, None).unwrap().as_array().unwrap().len(), 2);
    valid(&d);
    // Errors: no backend in the query, a missing backend, a bad target, an index past the end.
    let e = read(&d, Kind::ServerSwitchingRules, &Scope::default(), None).unwrap_err();
    assert_eq!(e.status(), 422);
    let nob = scope(&[("backend", "nope")]);
    assert_eq!(read(&d, Kind::ServerSwitchingRules, &nob, None).unwrap(), json!([]));
    assert!(w(&mut d, &rule(0, "a b", None)).is_err());
    assert!(w(&mut d, &json!({"index": 0})).is_err());
    assert!(w(&mut d, &rule(7, "a1", None)).is_err());
    assert_eq!(read(&d, Kind::ServerSwitchingRules, &sb, Some("5")).unwrap_err().status(), 404);
    // HAProxy requires a condition, and a server the backend has: validation refuses both.
    w(&mut d, &rule(0, "a1", None)).unwrap();
    assert!(crate::config::parse(&d.to_string(), Path::new("t.toml")).is_err());
    write(&mut d, Kind::ServerSwitchingRules, &sb, Write::Delete("0")).unwrap();
    w(&mut d, &rule(0, "zz", Some("{ always_true }"))).unwrap();
    assert!(crate::config::parse(&d.to_string(), Path::new("t.toml")).is_err());
}

/// `server_templates`: HAProxy's API names (`prefix`, `num_or_range`, `fqdn`) over the backend's
/// `servers` entries with `template`, through the server resource's code; `servers` does not
/// list them, and neither resource reaches the other's entries.
#[test]
fn server_templates_are_servers_with_a_count() {
    let mut d = doc();
    let sb = scope(&[("backend", "app")]);
    let body = json!({"prefix":"web","num_or_range":"1-3","fqdn":"app.example","port":8080,"check":"enabled","weight":20,"init-addr":"none"});
    let out = write(&mut d, Kind::ServerTemplates, &sb, Write::Create(&body)).unwrap().unwrap();
    assert_eq!(out["num_or_range"], "3");
    let text = d.to_string();
    assert!(
        text.contains(r#"{ name = "web", addr = "app.example:8080", check = true, weight = 20, init_addr = "none", template = 3 }"#),
        "{text}"
    );
    valid(&d);
    let want = json!({"prefix":"web","num_or_range":"3","fqdn":"app.example","port":8080,"check":"enabled","weight":20,"init-addr":"none"});
    assert_eq!(read(&d, Kind::ServerTemplates, &sb, Some("web")).unwrap(), want);
    assert_eq!(read(&d, Kind::ServerTemplates, &sb, None).unwrap(), json!([want]));
    // The servers resource sees the plain servers only, and not the template by its prefix.
    let names: Vec<Json> =
        read(&d, Kind::Servers, &sb, None).unwrap().as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, [json!("a1"), json!("a2")]);
    assert_eq!(read(&d, Kind::Servers, &sb, Some("web")).unwrap_err().status(), 404);
    assert_eq!(read(&d, Kind::ServerTemplates, &sb, Some("a1")).unwrap_err().status(), 404);
    // A taken name, either kind, is a conflict.
    let again = json!({"prefix":"a1","num_or_range":"2","fqdn":"x.example","port":80});
    assert_eq!(write(&mut d, Kind::ServerTemplates, &sb, Write::Create(&again)).unwrap_err().status(), 409);
    // Replace: the count and fields change, the entry stays where it was.
    let put = json!({"prefix":"web","num_or_range":5,"fqdn":"app.example","port":9090});
    write(&mut d, Kind::ServerTemplates, &sb, Write::Replace(Some("web"), &put)).unwrap();
    let got = read(&d, Kind::ServerTemplates, &sb, Some("web")).unwrap();
    assert_eq!(got, json!({"prefix":"web","num_or_range":"5","fqdn":"app.example","port":9090}));
    // Errors name the template's fields.
    for (bad, status, msg) in [
        (json!({"num_or_range":"2","fqdn":"x","port":80}), 422, "prefix in body is required"),
        (json!({"prefix":"w","num_or_range":"2-4","fqdn":"x","port":80}), 400, "num_or_range: lbha numbers"),
        (json!({"prefix":"w","num_or_range":"0","fqdn":"x","port":80}), 400, "num_or_range: expected"),
        (json!({"prefix":"w","num_or_range":"2","fqdn":"a b","port":80}), 422, "fqdn in body should match"),
        (json!({"prefix":"w","name":"w","num_or_range":"2","fqdn":"x","port":80}), 400, "name: unknown field"),
        (json!({"prefix":"w","num_or_range":"2","fqdn":"x"}), 400, "port: required by lbha"),
        (json!({"prefix":"w","num_or_range":"2","fqdn":"x","port":80,"bogus":1}), 400, "bogus: unknown field"),
    ] {
        let e = write(&mut d, Kind::ServerTemplates, &sb, Write::Create(&bad)).unwrap_err();
        assert_eq!(e.status(), status, "{bad}: {e}");
        assert!(e.to_string().contains(msg), "{bad}: {e}");
    }
    let e = write(&mut d, Kind::ServerTemplates, &sb, Write::Replace(Some("other"), &put)).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    // A server's delete does not reach a template of that name, nor the other way round.
    assert_eq!(write(&mut d, Kind::Servers, &sb, Write::Delete("web")).unwrap_err().status(), 404);
    assert_eq!(write(&mut d, Kind::ServerTemplates, &sb, Write::Delete("a1")).unwrap_err().status(), 404);
    write(&mut d, Kind::ServerTemplates, &sb, Write::Delete("web")).unwrap();
    assert_eq!(read(&d, Kind::ServerTemplates, &sb, None).unwrap(), json!([]));
    assert!(!d.to_string().contains("template"), "{d}");
    valid(&d);
}

/// The balance options HAProxy 2.6 takes read back as they were written (a PUT of what a GET
/// gave keeps them).
#[test]
fn balance_options_round_trip() {
    use super::common::Balance;
    for text in ["uri len 3 whole path-only", "url_param id check_post", "hdr(Host) use_domain_only", "hdr(Host)"] {
        let b = Balance::from_text(text).unwrap();
        assert_eq!(b.to_text().unwrap(), text);
        assert!(crate::balance::Algorithm::parse(&b.to_text().unwrap()).is_ok());
    }
    assert_eq!(Balance::from_text("uri path-only").unwrap().uri_path_only, Some(true));
}
