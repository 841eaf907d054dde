//! The operator's Data Plane API sequence (seed notes, section "dataplane"), run with curl
//! against lbha on loopback: transaction → backend → server → frontend → bind → backend
//! switching rule → commit, ending with traffic through the new frontend to the new server.
//!
//! The commands are the seed's, character for character, except for these changes (each is
//! also marked where it happens):
//! - host:port `114.67.72.40:5555`, `127.0.0.1:5555` and `127.0.0.1:8080` → the API's loopback
//!   address (the seed used three spellings of the same API);
//! - `version=4` → the version of the fresh lbha (1);
//! - the transaction id: the seed shows `edbf7220-…` created and then uses `2ad5391a-…`; the
//!   id lbha returned is used;
//! - the server address `114.67.81.96` port 9191 → 127.0.0.1 and the test backend's port
//!   (tests send traffic to loopback only);
//! - `default_backend "test_backend"` → `"test_backendtr"`, the backend the sequence created
//!   (typo in the seed: no `test_backend` exists);
//! - the bind `*:80` → `127.0.0.1:<free port>` (no root, no listening on every interface in a test);
//! - the switching rule: the seed posts index 1 to `test_frontend` with `version=35` and then
//!   shows the list `[{0, test_backendtr}, {1, test_backendproxy}]`; index 1 cannot be inserted
//!   into an empty list (the seed's own note: "otherwise out of range"), so the rule at index 0
//!   for `test_backendtr` is posted first, and both go to `test_frontendtr` in the transaction
//!   (`transaction_id=` instead of `version=35`). `test_backendproxy` is a backend of the
//!   starting config. The seed's `"id": 0` (API v1's name for `index`) is kept;
//! - the GET of the rules runs after the commit (the seed shows `_version` one past the write)
//!   and keeps its stray `version=32`, which a GET ignores.

mod api_support;
mod common;
use api_support::*;
use common::*;

#[test]
fn seed_dataplane_sequence_with_curl() {
    let new_server = Backend::start("NEW");
    let proxy_server = Backend::start("PROXY");
    let api = ApiLbha::start(&format!(
        "[[backend]]\nname = \"test_backendproxy\"\nservers = [{{ name = \"p1\", addr = \"127.0.0.1:{}\" }}]\n",
        proxy_server.port
    ));
    let host = format!("127.0.0.1:{}", api.port);
    let fe_port = free_port();

    // 1. initialize a transaction (version=4 → 1, host changed)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 -H "Content-Type: application/json" http://{host}/v2/services/haproxy/transactions?version=1"#
    ));
    assert_eq!(code, 201, "{body}");
    let t: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["_version"], 1);
    assert_eq!(t["status"], "in_progress");
    let id = t["id"].as_str().unwrap().to_string();

    // 2. add backend (host, transaction id)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST -u admin:123456 -H "Content-Type: application/json" "http://{host}/v2/services/haproxy/configuration/backends?transaction_id={id}" -d '{{"adv_check":"httpchk","balance":{{"algorithm":"roundrobin"}},"forwardfor":{{"enabled":"enabled"}},"httpchk_params":{{"method":"GET","uri":"/check","version":"HTTP/1.1"}},"mode":"http","name":"test_backendtr"}}'"#
    ));
    assert_eq!(code, 202, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["name"], "test_backendtr");

    // 3. add server to backend (address and port → the test backend; host, transaction id)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 \
-H "Content-Type: application/json" \
-d '{{"name": "server1", "address": "127.0.0.1", "port": {}, "check": "enabled", "maxconn": 30, "weight": 100}}' \
"http://{host}/v2/services/haproxy/configuration/servers?backend=test_backendtr&transaction_id={id}""#,
        new_server.port
    ));
    assert_eq!(code, 202, "{body}");

    // 4. add frontend (default_backend typo fixed; host, transaction id)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST -u admin:123456 -H "Content-Type: application/json" "http://{host}/v2/services/haproxy/configuration/frontends?transaction_id={id}" -d '{{"default_backend":"test_backendtr","http_connection_mode":"http-keep-alive","maxconn":2000,"mode":"http","name":"test_frontendtr"}}'"#
    ));
    assert_eq!(code, 202, "{body}");

    // 5. bind ip port to frontend (* → 127.0.0.1, 80 → a free port; host, transaction id)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 \
-H "Content-Type: application/json" \
-d '{{"name": "http", "address": "127.0.0.1", "port": {fe_port}}}' \
"http://{host}/v2/services/haproxy/configuration/binds?frontend=test_frontendtr&transaction_id={id}""#
    ));
    assert_eq!(code, 202, "{body}");

    // 6. backend switching rules: index 0 added (see the module doc), then the seed's rule
    // (frontend name, transaction_id instead of version=35, host)
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 -H "Content-Type: application/json" -d '{{"name": "test_backendtr","index":0}}' "http://{host}/v2/services/haproxy/configuration/backend_switching_rules?frontend=test_frontendtr&transaction_id={id}""#
    ));
    assert_eq!(code, 202, "{body}");
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 -H "Content-Type: application/json" -d '{{"id": 0, "name": "test_backendproxy","index":1}}' "http://{host}/v2/services/haproxy/configuration/backend_switching_rules?frontend=test_frontendtr&transaction_id={id}""#
    ));
    assert_eq!(code, 202, "{body}");
    // The seed's note: index 3 on a list of 2 is out of range.
    let (code, body) = api.curl(&format!(
        r#"curl -X POST --user admin:123456 -H "Content-Type: application/json" -d '{{"name": "test_backendproxy","index":3}}' "http://{host}/v2/services/haproxy/configuration/backend_switching_rules?frontend=test_frontendtr&transaction_id={id}""#
    ));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("index out of range"), "{body}");

    // Nothing is live before the commit.
    assert!(std::net::TcpStream::connect(("127.0.0.1", fe_port)).is_err());
    assert!(!api.config_text().contains("test_frontendtr"));

    // 7. commit transaction (host, transaction id)
    let (code, body) = api.curl(&format!(
        r#"curl -X PUT --user admin:123456 -H "Content-Type: application/json" "http://{host}/v2/services/haproxy/transactions/{id}""#
    ));
    assert_eq!(code, 202, "{body}");
    let c: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(c["status"], "success");
    assert_eq!(c["_version"], 2);

    // The seed's GET of the rules (host, frontend name; its version=32 is ignored by a GET).
    let (code, body) = api.curl(&format!(
        r#"curl -X GET --user admin:123456 -H "Content-Type: application/json"  "http://{host}/v2/services/haproxy/configuration/backend_switching_rules?frontend=test_frontendtr&version=32""#
    ));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"_version":2,"data":[{"index":0,"name":"test_backendtr"},{"index":1,"name":"test_backendproxy"}]})
    );

    // Traffic flows through the new frontend to the new server.
    let mut lbha = api.lbha;
    lbha.wait_port(fe_port);
    for _ in 0..3 {
        let r = get(fe_port, "/");
        assert_eq!((r.status, r.text().as_str()), (200, "NEW"));
    }
    assert!(new_server.seen.requests.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    let api = ApiLbha::with(lbha, api.port, api.state);

    // The written file: comments kept, `lbha check` accepts it, the previous one is kept.
    let text = api.config_text();
    assert!(text.starts_with("# lbha under test; the API edits this file"), "{text}");
    assert!(text.contains("check = { http = \"GET /check HTTP/1.1\" }"), "{text}");
    api.check_file();
    let bak = std::fs::read_to_string(format!("{}.bak", api.lbha.config.display())).unwrap();
    assert!(!bak.contains("test_frontendtr") && bak.contains("test_backendproxy"));
}
