//! Data Plane API behaviour against the real daemon on loopback: versions, transactions,
//! restarts, bad input, auth, runtime changes. Every file the API writes must pass `lbha check`.

mod api_support;
mod common;
use api_support::*;
use common::*;
use serde_json::{Value, json};

const C: &str = "/v2/services/haproxy/configuration";
const T: &str = "/v2/services/haproxy/transactions";

fn backend_cfg(name: &str, port: u16) -> String {
    format!("[[backend]]\nname = \"{name}\"\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:{port}\" }}]\n")
}

#[test]
fn versions_conflicts_and_status_codes() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&backend_cfg("be", b.port));
    assert_eq!(api.version(), 1);

    // Reads are wrapped with the version; the header is on every response.
    let r = api.call("GET", &format!("{C}/backends"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Configuration-Version"), Some("1"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v, json!({"_version": 1, "data": [{"name": "be"}]}));

    // A write needs version or transaction_id, not both, not neither.
    let body = r#"{"name":"b2","mode":"http"}"#;
    let (s, e) = api.json("POST", &format!("{C}/backends"), Some(body));
    assert_eq!((s, e["code"].as_u64()), (400, Some(400)));
    assert_eq!(e["message"], "version or transaction not specified, specify only one");
    let (s, _) = api.json("POST", &format!("{C}/backends?version=1&transaction_id=x"), Some(body));
    assert_eq!(s, 400);

    // Stale version: the original's 409 and message; nothing written.
    let before = api.config_text();
    let (s, e) = api.json("POST", &format!("{C}/backends?version=7"), Some(body));
    assert_eq!(s, 409);
    assert_eq!(
        e,
        json!({"code": 409, "message": "version mismatch: version in configuration file is 1, given version is 7"})
    );
    assert_eq!(api.config_text(), before);

    // A write at the current version: 202, Reload-ID, version +1, live at once.
    let r = api.call("POST", &format!("{C}/backends?version=1"), Some(body));
    assert_eq!(r.status, 202, "{}", r.text());
    let rid = r.header("Reload-ID").expect("Reload-ID").to_string();
    assert!(rid.len() > 11 && rid.as_bytes()[4] == b'-' && rid.ends_with("-1"), "{rid}");
    assert_eq!(r.header("Configuration-Version"), Some("2"));
    assert_eq!(api.version(), 2);
    api.check_file();
    let (s, reload) = api.json("GET", &format!("/v2/services/haproxy/reloads/{rid}"), None);
    assert_eq!((s, reload["status"].as_str()), (200, Some("succeeded")));

    // The same version again is now stale.
    let (s, _) = api.json("DELETE", &format!("{C}/backends/b2?version=1"), None);
    assert_eq!(s, 409);

    // force_reload: the synchronous codes, no Reload-ID.
    let r = api.call(
        "PUT",
        &format!("{C}/backends/b2?version=2&force_reload=true"),
        Some(r#"{"name":"b2","mode":"http","balance":{"algorithm":"leastconn"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("Reload-ID").is_none());
    assert!(api.config_text().contains("balance = \"leastconn\""));
    let r = api.call(
        "POST",
        &format!("{C}/servers?backend=b2&version=3&force_reload=true"),
        Some(r#"{"name":"x","address":"127.0.0.1","port":1}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api.call("DELETE", &format!("{C}/backends/b2?version=4&force_reload=true"), None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(api.version(), 5);
    api.check_file();
    assert!(!api.config_text().contains("b2"));

    // Transactions take a version too.
    let (s, e) = api.json("POST", &format!("{T}?version=4"), None);
    assert_eq!(s, 409, "{e}");
    let (s, _) = api.json("POST", T, None);
    assert_eq!(s, 422);
}

#[test]
fn concurrent_transactions_first_commit_wins_the_other_is_outdated() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&backend_cfg("be", b.port));
    let (_, t1) = api.json("POST", &format!("{T}?version=1"), None);
    let (_, t2) = api.json("POST", &format!("{T}?version=1"), None);
    let (id1, id2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());
    assert_ne!(id1, id2);

    // Isolated: each sees its own staged change only.
    let (s, _) = api.json("POST", &format!("{C}/backends?transaction_id={id1}"), Some(r#"{"name":"one"}"#));
    assert_eq!(s, 202);
    let (s, _) = api.json("POST", &format!("{C}/backends?transaction_id={id2}"), Some(r#"{"name":"two"}"#));
    assert_eq!(s, 202);
    let names = |id: &str| -> Vec<String> {
        let (_, v) = api.json("GET", &format!("{C}/backends?transaction_id={id}"), None);
        v["data"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(id1), ["be", "one"]);
    assert_eq!(names(id2), ["be", "two"]);
    let (_, live) = api.json("GET", &format!("{C}/backends"), None);
    assert_eq!(live["data"], json!([{"name": "be"}]));

    // The first commit wins; the other transaction is outdated at once and cannot commit.
    let r = api.call("PUT", &format!("{T}/{id1}"), None);
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.header("Reload-ID").is_some());
    let (_, t) = api.json("GET", &format!("{T}/{id2}"), None);
    assert_eq!(t["status"], "outdated");
    let (s, e) = api.json("PUT", &format!("{T}/{id2}"), None);
    assert_eq!(s, 406);
    assert_eq!(e["message"], format!("transaction {id2} is outdated and cannot be committed"));
    let (s, _) = api.json("POST", &format!("{C}/backends?transaction_id={id2}"), Some(r#"{"name":"three"}"#));
    assert_eq!(s, 406);
    assert!(api.config_text().contains("\"one\"") && !api.config_text().contains("\"two\""));
    api.check_file();

    // The committed transaction is gone; the outdated one is listed until deleted.
    let (s, _) = api.json("GET", &format!("{T}/{id1}"), None);
    assert_eq!(s, 404);
    let (_, list) = api.json("GET", T, None);
    assert_eq!(list, json!([{"_version": 1, "id": id2, "status": "outdated"}]));
    let (s, _) = api.json("DELETE", &format!("{T}/{id2}"), None);
    assert_eq!(s, 204);
    let (_, list) = api.json("GET", T, None);
    assert_eq!(list, json!([]));
}

#[test]
fn a_transaction_survives_a_restart() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&backend_cfg("be", b.port));
    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap().to_string();
    let (s, _) = api.json(
        "POST",
        &format!("{C}/servers?backend=be&transaction_id={id}"),
        Some(r#"{"name":"s2","address":"127.0.0.1","port":9,"weight":0}"#),
    );
    assert_eq!(s, 202);

    let api = api.restart();
    let (s, t) = api.json("GET", &format!("{T}/{id}"), None);
    assert_eq!((s, t["status"].as_str()), (200, Some("in_progress")));
    let (_, staged) = api.json("GET", &format!("{C}/servers?backend=be&transaction_id={id}"), None);
    assert_eq!(staged["data"].as_array().unwrap().len(), 2);
    assert_eq!(api.version(), 1);
    let (s, _) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202);
    assert_eq!(api.version(), 2);
    api.check_file();

    // The version is persisted too.
    let api = api.restart();
    assert_eq!(api.version(), 2);
    // The restarted daemon runs the committed server.
    let (s, rs) = api.json("GET", "/v2/services/haproxy/runtime/servers?backend=be", None);
    assert_eq!(s, 200);
    let names: Vec<&str> = rs.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["s1", "s2"]);
}

#[test]
fn every_bad_input_class_is_rejected_naming_the_field_and_nothing_is_written() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&format!(
        "{}\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{}\"]\ndefault_backend = \"be\"\n",
        backend_cfg("be", b.port),
        free_port()
    ));
    let before = api.config_text();
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "backends", r#"{"name": "x", "#, 400, "body: invalid JSON"),
        ("POST", "backends", r#"["x"]"#, 400, "body: expected a JSON object"),
        ("POST", "backends", r#"{"name": "x", "colour": "red"}"#, 400, "colour: unknown field"),
        ("POST", "backends", r#"{"name": "x", "cookie": {"name": "S"}}"#, 400, "cookie: not supported by lbha"),
        ("POST", "backends", r#"{"name": "x", "retries": "three"}"#, 400, "retries: invalid type"),
        ("POST", "backends", r#"{"name": "x", "balance": {"algorithm": 5}}"#, 400, "balance.algorithm: invalid type"),
        ("POST", "backends", r#"{"name": "x", "mode": "log"}"#, 422, "mode in body should be one of [http tcp]"),
        ("POST", "backends", r#"{"mode": "http"}"#, 422, "name in body is required"),
        ("POST", "backends", r#"{"name": "a b"}"#, 422, "name in body should match"),
        ("POST", "backends", r#"{"name": "be"}"#, 409, "object already exists: Object be already exists"),
        (
            "POST",
            "servers?backend=nope",
            r#"{"name": "s", "address": "127.0.0.1", "port": 1}"#,
            400,
            "missing parent: backend nope does not exist",
        ),
        (
            "POST",
            "servers?backend=be",
            r#"{"name": "s1", "address": "127.0.0.1", "port": 1}"#,
            409,
            "object already exists",
        ),
        (
            "POST",
            "servers?backend=be",
            r#"{"name": "s", "address": "127.0.0.1", "port": 70000}"#,
            400,
            "port: invalid value",
        ),
        (
            "POST",
            "servers?backend=be",
            r#"{"name": "s", "address": "127.0.0.1", "port": 1, "weight": 300}"#,
            422,
            "weight in body should be less than or equal to 256",
        ),
        ("POST", "servers?backend=be", r#"{"name": "s", "address": "127.0.0.1"}"#, 400, "port: required by lbha"),
        (
            "POST",
            "binds?frontend=fe",
            r#"{"name": "b", "address": "example.com", "port": 80}"#,
            400,
            "address: lbha binds an IP address",
        ),
        (
            "PUT",
            "servers/nope?backend=be",
            r#"{"name": "nope", "address": "127.0.0.1", "port": 1}"#,
            404,
            "missing object",
        ),
        (
            "POST",
            "backend_switching_rules?frontend=fe",
            r#"{"name": "be", "index": 5}"#,
            400,
            "index out of range: Object with id 5 in frontend fe out of range",
        ),
        (
            "POST",
            "backend_switching_rules?frontend=fe",
            r#"{"name": "nope", "index": 0}"#,
            400,
            "use_backend[0].backend: no such backend (value: nope)",
        ),
        (
            "PUT",
            "frontends/fe",
            r#"{"name": "fe", "default_backend": "nope"}"#,
            400,
            "default_backend: no such backend (value: nope)",
        ),
        (
            "POST",
            "acls?parent_type=frontend",
            r#"{"index": 0, "acl_name": "a", "criterion": "path"}"#,
            422,
            "parent_name in query is required",
        ),
        (
            "POST",
            "http_request_rules?parent_type=frontend&parent_name=fe",
            r#"{"index": 0, "type": "lua"}"#,
            422,
            "type in body should be one of",
        ),
    ];
    for (method, path, body, status, msg) in cases {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (s, e) = api.json(method, &format!("{C}/{path}{sep}version=1"), Some(body));
        assert_eq!(s, *status, "{method} {path} {body}: {e}");
        let m = e["message"].as_str().unwrap_or_default();
        assert!(m.contains(msg), "{method} {path} {body}: {m:?} lacks {msg:?}");
        assert_eq!(api.config_text(), before, "{method} {path} {body} wrote the file");
    }
    assert_eq!(api.version(), 1);

    // In a transaction, a bad operation stages nothing, and a commit that would not validate
    // fails, says why, and leaves everything as it was.
    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap();
    let (s, _) = api.json("POST", &format!("{C}/backends?transaction_id={id}"), Some(r#"{"name": 1}"#));
    assert_eq!(s, 400);
    let (s, _) = api.json(
        "POST",
        &format!("{C}/backend_switching_rules?frontend=fe&transaction_id={id}"),
        Some(r#"{"name": "ghost", "index": 0}"#),
    );
    assert_eq!(s, 202);
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 400);
    let m = e["message"].as_str().unwrap();
    assert!(
        m.starts_with("validation error: ")
            && m.contains("frontend[0].use_backend[0].backend: no such backend (value: ghost)"),
        "{m}"
    );
    let (_, t) = api.json("GET", &format!("{T}/{id}"), None);
    assert_eq!(t["status"], "failed");
    assert_eq!(api.config_text(), before);
    assert_eq!(api.version(), 1);
}

#[test]
fn a_commit_whose_reload_fails_restores_the_file_and_keeps_serving() {
    let b = Backend::start("B");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let fe_port = free_port();
    let api = ApiLbha::start(&format!(
        "{}\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe_port}\"]\ndefault_backend = \"be\"\n",
        backend_cfg("be", b.port)
    ));
    let mut lbha = api.lbha;
    lbha.wait_port(fe_port);
    let api = ApiLbha::with(lbha, api.port, api.state);
    let before = api.config_text();
    let (s, e) = api.json(
        "POST",
        &format!("{C}/binds?frontend=fe&version=1"),
        Some(&format!(r#"{{"name": "x", "address": "127.0.0.1", "port": {taken_port}}}"#)),
    );
    assert_eq!(s, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("reload failed, previous configuration kept: cannot bind"), "{e}");
    assert_eq!(api.config_text(), before);
    assert_eq!(api.version(), 1);
    let r = get(fe_port, "/");
    assert_eq!((r.status, r.text().as_str()), (200, "B"));
    drop(taken);
}

#[test]
fn auth_failures() {
    let state = TempDir::new("api-state");
    let port = free_port();
    let sha512 = "$6$saltsalt$1exCt/dOPxcYhFKNrpFEJZM3XdbauNE1U6SSfdUbaG/VkuiiZ9y002RSRJzuNQ03V0IN9WSP0CpiOXuoSRVIU0";
    let extra = format!("[[userlist]]\nname = \"hashed\"\nusers = [{{ name = \"ops\", password = \"{sha512}\" }}]\n");
    let cfg = config(port, &state, &extra).replace("userlist = \"dataplaneapi\"", "userlist = \"hashed\"");
    let lbha = Lbha::start(&cfg, &[port]);
    let api = ApiLbha::with(lbha, port, state);
    let path = format!("{C}/backends");

    let r = api.call_auth("GET", &path, None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"API\""));
    let e: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(e["code"], 401);
    // admin:123456 is in the other userlist, not the API's.
    let r = api.call_auth("GET", &path, None, Some(&format!("Basic {AUTH}")));
    assert_eq!(r.status, 401);
    // ops:1234567 (wrong password), ops:123456 (right), a malformed header, and 401 before 404.
    let r = api.call_auth("GET", &path, None, Some("Basic b3BzOjEyMzQ1Njc="));
    assert_eq!(r.status, 401);
    assert!(!r.text().contains("1234567"), "the password is not echoed");
    let r = api.call_auth("GET", &path, None, Some("Basic b3BzOjEyMzQ1Ng=="));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.call_auth("GET", &path, None, Some("Basic %%%"));
    assert_eq!(r.status, 401);
    let r = api.call_auth("GET", "/v2/nothing", None, None);
    assert_eq!(r.status, 401);
    let r = api.call_auth("GET", "/v2/nothing", None, Some("Basic b3BzOjEyMzQ1Ng=="));
    assert_eq!(r.status, 404);
    // curl --user, as scripts call it.
    let (code, _) = api.curl(&format!("curl --user ops:123456 http://127.0.0.1:{port}{path}"));
    assert_eq!(code, 200);
    let (code, _) = api.curl(&format!("curl --user ops:nope http://127.0.0.1:{port}{path}"));
    assert_eq!(code, 401);
}

#[test]
fn runtime_server_state_changes_at_once_without_a_reload() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let fe_port = free_port();
    let api = ApiLbha::start(&format!(
        "[[backend]]\nname = \"be\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}, {{ name = \"b\", addr = \"127.0.0.1:{}\" }}]\n\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe_port}\"]\ndefault_backend = \"be\"\n",
        a.port, b.port
    ));
    let mut lbha = api.lbha;
    lbha.wait_port(fe_port);
    let api = ApiLbha::with(lbha, api.port, api.state);
    let rs = "/v2/services/haproxy/runtime/servers";
    let (s, list) = api.json("GET", &format!("{rs}?backend=be"), None);
    assert_eq!(s, 200);
    assert_eq!(
        list[0],
        json!({"name":"a","id":"1","address":"127.0.0.1","port":a.port,"admin_state":"ready","operational_state":"up","weight":1})
    );
    let before = api.config_text();
    let (s, v) = api.json("PUT", &format!("{rs}/a?backend=be"), Some(r#"{"admin_state":"maint"}"#));
    assert_eq!((s, v["admin_state"].as_str()), (200, Some("maint")));
    let bodies: Vec<String> = (0..4).map(|_| get(fe_port, "/").text()).collect();
    assert!(bodies.iter().all(|b| b == "B"), "{bodies:?}");
    let (s, _) = api.json("PUT", &format!("{rs}/a?backend=be"), Some(r#"{"admin_state":"ready","weight":3}"#));
    assert_eq!(s, 200);
    let bodies: Vec<String> = (0..8).map(|_| get(fe_port, "/").text()).collect();
    assert_eq!(bodies.iter().filter(|b| *b == "A").count(), 6, "{bodies:?}");
    assert_eq!(api.config_text(), before);
    assert_eq!(api.version(), 1);
    let (s, _) = api.json("PUT", &format!("{rs}/zz?backend=be"), Some(r#"{"admin_state":"drain"}"#));
    assert_eq!(s, 404);
    let (s, _) = api.json("PUT", &format!("{rs}/a?backend=be"), Some(r#"{"admin_state":"sleepy"}"#));
    assert_eq!(s, 422);

    // Native stats see the traffic.
    let (s, st) = api.json("GET", "/v2/services/haproxy/stats/native?type=server&parent=be&name=a", None);
    assert_eq!(s, 200);
    let row = &st[0]["stats"][0];
    assert_eq!((row["name"].as_str(), row["backend_name"].as_str()), (Some("a"), Some("be")));
    assert!(row["stats"]["stot"].as_u64().unwrap() >= 6, "{row}");
}

#[test]
fn edits_outside_the_api_bump_the_version_and_outdate_transactions() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&backend_cfg("be", b.port));
    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap();
    let text = api.config_text().replace("name = \"be\"", "name = \"be\"\nretries = 5");
    std::fs::write(&api.lbha.config, text).unwrap();
    assert_eq!(api.version(), 2);
    let (_, t) = api.json("GET", &format!("{T}/{id}"), None);
    assert_eq!(t["status"], "outdated");
}

#[test]
fn discovery_info_and_specification() {
    let api = ApiLbha::start("");
    let (s, spec) = api.json("GET", "/v2/specification", None);
    assert_eq!(s, 200);
    assert_eq!(spec["swagger"], "2.0");
    assert!(spec["paths"]["/services/haproxy/configuration/backends"]["post"].is_object());
    let (s, info) = api.json("GET", "/v2/info", None);
    assert_eq!(s, 200);
    assert!(info["system"]["cpu_info"]["num_cpus"].as_u64().unwrap() >= 1);
    assert!(info["api"]["version"].as_str().unwrap().starts_with("lbha "));
    let (s, d) = api.json("GET", "/v2/services/haproxy/configuration", None);
    assert_eq!(s, 200);
    assert!(d.as_array().unwrap().iter().any(|e| e["url"] == "/v2/services/haproxy/configuration/backends"));
    let (s, g) =
        api.json("PUT", &format!("{C}/global?version=1"), Some(r#"{"maxconn": 5000, "hard_stop_after": 2000}"#));
    assert_eq!(s, 202, "{g}");
    let (_, g) = api.json("GET", &format!("{C}/global"), None);
    assert_eq!(g, json!({"_version": 2, "data": {"maxconn": 5000, "hard_stop_after": 2000}}));
    api.check_file();
}

/// Userlists take every crypt(3) form HAProxy does ($1$ MD5 here); a 401 reads the same for an
/// unknown user and a wrong password.
#[test]
fn md5_crypt_users_and_401s_that_do_not_tell_who_exists() {
    let state = TempDir::new("api-state");
    let port = free_port();
    // `openssl passwd -1 -salt saltsalt 123456`
    let extra = "[[userlist]]\nname = \"md5\"\nusers = [{ name = \"ops\", password = \"$1$saltsalt$T5MN6iR8aoAeg.OHdYqBf0\" }]\n";
    let cfg = config(port, &state, extra).replace("userlist = \"dataplaneapi\"", "userlist = \"md5\"");
    let api = ApiLbha::with(Lbha::start(&cfg, &[port]), port, state);
    let path = format!("{C}/backends");
    // ops:123456
    assert_eq!(api.call_auth("GET", &path, None, Some("Basic b3BzOjEyMzQ1Ng==")).status, 200);
    // ops:1234567, then nobody:1234567
    let wrong = api.call_auth("GET", &path, None, Some("Basic b3BzOjEyMzQ1Njc="));
    let unknown = api.call_auth("GET", &path, None, Some("Basic bm9ib2R5OjEyMzQ1Njc="));
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body, "{} / {}", wrong.text(), unknown.text());
    assert_eq!(wrong.header("WWW-Authenticate"), unknown.header("WWW-Authenticate"));
}

/// A client that sends its head and then stalls the body is answered 408 and cut after the
/// API's `read_timeout`, instead of holding a connection for ever.
#[test]
fn a_stalled_request_body_is_cut() {
    use std::io::{Read, Write};
    let api = ApiLbha::start("").restart_with(|c| c.replace("[api]\n", "[api]\nread_timeout = \"1s\"\n"));
    // The edited file is a new version for the API; the stalled request must not make another.
    let before = api.version();
    let mut s = connect(api.port);
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    s.write_all(
        format!(
            "POST {C}/backends?version=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {AUTH}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    let r = s.read_to_end(&mut out);
    assert!(r.is_ok(), "the connection was not closed: {r:?}");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(api.version(), before, "nothing written");
}

/// Plain HTTP on a non-loopback address needs `allow_insecure_http = true`. Only `lbha check`
/// here: tests never bind off loopback, so the start with the setting and its warning are the
/// unit test `config::tests::api_section` (with `crate::api::insecure_http_warning`).
#[test]
fn plain_http_off_loopback_needs_an_explicit_setting() {
    let state = TempDir::new("api-state");
    let port = free_port();
    let cfg = config(port, &state, "").replace("bind = \"127.0.0.1:", "bind = \"0.0.0.0:");
    let dir = TempDir::new("insecure");
    let check = |cfg: &str| {
        let path = dir.write("lbha.toml", cfg);
        let out = std::process::Command::new(lbha_bin()).args(["check", "-c"]).arg(&path).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = check(&cfg);
    assert!(!ok, "{err}");
    assert!(err.contains("api.bind: plain HTTP on a non-loopback address"), "{err}");
    let (ok, err) = check(&cfg.replace("[api]\n", "[api]\nallow_insecure_http = true\n"));
    assert!(ok, "{err}");
}

/// The v2 endpoints scripts use besides the resources: `/v2/info` with a real build date,
/// `runtime/info`, `named_defaults`, `configuration/raw` both ways.
#[test]
fn info_runtime_info_named_defaults_and_raw() {
    let b = Backend::start("B");
    let api = ApiLbha::start(&backend_cfg("be", b.port));
    let (_, info) = api.json("GET", "/v2/info", None);
    let date = info["api"]["build_date"].as_str().unwrap().to_string();
    let d = date.as_bytes();
    assert!(date.len() == 20 && d[4] == b'-' && d[10] == b'T' && date.ends_with('Z'), "{date}");
    assert!(date.as_str() >= "2024" && date.as_str() <= "2100", "{date}");

    let (s, ri) = api.json("GET", "/v2/services/haproxy/runtime/info", None);
    assert_eq!(s, 200, "{ri}");
    assert_eq!(ri[0]["info"]["pid"].as_u64(), Some(u64::from(api.lbha.child.id())));
    assert_eq!(ri[0]["info"]["version"], env!("CARGO_PKG_VERSION"));

    let (s, nd) = api.json("GET", &format!("{C}/named_defaults"), None);
    assert_eq!(s, 200, "{nd}");
    assert_eq!(nd["data"][0]["name"], "unnamed_defaults_1");
    assert_eq!(nd["data"][0]["mode"], "http");
    let (s, one) = api.json("GET", &format!("{C}/named_defaults/unnamed_defaults_1"), None);
    assert_eq!((s, one["data"]["name"].as_str()), (200, Some("unnamed_defaults_1")));
    assert_eq!(api.json("GET", &format!("{C}/named_defaults/other"), None).0, 404);

    let (s, whole) = api.json("GET", &format!("{C}/raw"), None);
    assert_eq!(s, 200);
    assert_eq!(whole["_version"], 1);
    assert_eq!(whole["data"].as_str(), Some(api.config_text().as_str()));
    let text = format!("{}\n{}", api.config_text(), backend_cfg("be2", b.port));
    let post = |q: &str, body: &str| {
        let req = format!(
            "POST {C}/raw?{q} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic {AUTH}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        raw(api.port, req.as_bytes()).unwrap()
    };
    let r = post("version=1&only_validate=true", &text);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(api.version(), 1, "only validated");
    let r = post("version=1", "[[backend]]\nname = \"x\"\nservers = 7\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("validation error"), "{}", r.text());
    let r = post("version=1", &text);
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.header("Reload-ID").is_some());
    assert_eq!(api.version(), 2);
    assert_eq!(api.config_text(), text);
    let (_, be2) = api.json("GET", &format!("{C}/backends/be2"), None);
    assert_eq!(be2["data"]["name"], "be2");
    assert_eq!(post("version=1", &text).status, 409, "stale version");
    assert_eq!(post("skip_version=true", &text).status, 202);
    api.check_file();
}

/// Several ACL lines of one name are ORed as in HAProxy (the commit used to fail), `acl_name`
/// filters the list, and a server takes its persistence `cookie` value.
#[test]
fn same_name_acls_are_ored_acl_name_filters_and_servers_take_a_cookie() {
    let (d, st) = (Backend::start("D"), Backend::start("S"));
    let fe = free_port();
    let extra = format!(
        "{}{}[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"dflt\"\n\
         [[backend]]\nname = \"ck\"\ncookie = {{ name = \"SRV\", mode = \"insert\" }}\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:{}\", cookie = \"c1\" }}]\n",
        backend_cfg("dflt", d.port),
        backend_cfg("st", st.port),
        d.port
    );
    let mut api = ApiLbha::start(&extra);
    api.lbha.wait_port(fe);
    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap().to_string();
    let acls = format!("{C}/acls?parent_type=frontend&parent_name=fe&transaction_id={id}");
    for (name, value) in [("static", "/a"), ("static", "/b"), ("other", "/c")] {
        let body = format!(r#"{{"index": 0, "acl_name": "{name}", "criterion": "path_beg", "value": "{value}"}}"#);
        let (s, e) = api.json("POST", &acls, Some(&body));
        assert_eq!(s, 202, "{e}");
    }
    let rule = r#"{"index": 0, "name": "st", "cond": "if", "cond_test": "static"}"#;
    let (s, e) = api.json("POST", &format!("{C}/backend_switching_rules?frontend=fe&transaction_id={id}"), Some(rule));
    assert_eq!(s, 202, "{e}");
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202, "commit: {e}");
    for (path, want) in [("/a/1", "S"), ("/b/1", "S"), ("/c/1", "D"), ("/", "D")] {
        assert_eq!(get(fe, path).text(), want, "{path}");
    }
    let (_, only) = api.json("GET", &format!("{C}/acls?parent_type=frontend&parent_name=fe&acl_name=static"), None);
    let values: Vec<&str> = only["data"].as_array().unwrap().iter().map(|a| a["value"].as_str().unwrap()).collect();
    assert_eq!(values.len(), 2, "{only}");
    assert!(values.contains(&"/a") && values.contains(&"/b"), "{only}");

    let v = api.version();
    let body = format!(r#"{{"name": "s2", "address": "127.0.0.1", "port": {}, "cookie": "c2"}}"#, st.port);
    let (s, e) = api.json("POST", &format!("{C}/servers?backend=ck&version={v}"), Some(&body));
    assert_eq!(s, 202, "{e}");
    let (_, s2) = api.json("GET", &format!("{C}/servers/s2?backend=ck"), None);
    assert_eq!(s2["data"]["cookie"], "c2");
    api.check_file();
}

/// An HTTPS frontend and a TLS server made through the API alone (no `raw`): the bind's TLS
/// fields and the server's `ssl`, `ssl_cafile`, `verify` and `sni` become lbha's keys, the
/// commit validates and reloads, and traffic flows over both TLS legs.
#[test]
fn https_frontends_and_tls_servers_through_the_api() {
    let ca = pki::TestCa::new("API CA");
    let (cert, key) = ca.leaf(None, "localhost", 1, false, None);
    let plain = Backend::start("PLAIN");
    let mut api = ApiLbha::start(&backend_cfg("dflt", plain.port));
    let site = api.state.0.join("site.pem");
    std::fs::write(&site, format!("{cert}{key}")).unwrap();
    let ca_file = api.state.0.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (tls_port, outer) = (free_port(), free_port());

    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap().to_string();
    let q = format!("transaction_id={id}");
    for (path, body) in [
        (format!("{C}/frontends?{q}"), json!({"name": "tls", "mode": "http", "default_backend": "dflt"})),
        (
            format!("{C}/binds?frontend=tls&{q}"),
            json!({"name": "tls", "address": "127.0.0.1", "port": tls_port, "ssl": true,
                   "ssl_certificate": site.display().to_string(), "alpn": "http/1.1", "ssl_min_ver": "TLSv1.2"}),
        ),
        (format!("{C}/backends?{q}"), json!({"name": "viatls", "mode": "http"})),
        (
            format!("{C}/servers?backend=viatls&{q}"),
            json!({"name": "t1", "address": "127.0.0.1", "port": tls_port, "ssl": "enabled",
                   "ssl_cafile": ca_file.display().to_string(), "verify": "required", "sni": "str(localhost)"}),
        ),
        (format!("{C}/frontends?{q}"), json!({"name": "outer", "mode": "http", "default_backend": "viatls"})),
        (format!("{C}/binds?frontend=outer&{q}"), json!({"name": "o", "address": "127.0.0.1", "port": outer})),
    ] {
        let (s, e) = api.json("POST", &path, Some(&body.to_string()));
        assert_eq!(s, 202, "{path}: {e}");
    }
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202, "commit: {e}");
    api.lbha.wait_port(outer);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let client =
        std::sync::Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let answer = https_get_raw(client, tls_port).expect("HTTPS through the API's bind");
    assert!(answer.ends_with("PLAIN"), "{answer}");
    // The outer frontend reaches the same backend through the TLS server leg.
    assert_eq!(get(outer, "/").text(), "PLAIN");

    let (_, b) = api.json("GET", &format!("{C}/binds/tls?frontend=tls"), None);
    assert_eq!(b["data"]["ssl"], true, "{b}");
    assert_eq!(b["data"]["ssl_min_ver"], "TLSv1.2", "{b}");
    let (_, sv) = api.json("GET", &format!("{C}/servers/t1?backend=viatls"), None);
    assert_eq!(sv["data"]["ssl"], "enabled", "{sv}");
    assert_eq!(sv["data"]["verify"], "required", "{sv}");
    api.check_file();

    // The frontend's log and monitor fields go through validation and the reload as well.
    let v = api.version();
    let fe = json!({"name": "outer", "mode": "http", "default_backend": "viatls", "httplog": true,
        "dontlognull": "enabled", "log_format": "%ci %ST %[req.hdr(host)]", "monitor_uri": "/up"});
    let (s, e) = api.json("PUT", &format!("{C}/frontends/outer?version={v}"), Some(&fe.to_string()));
    assert_eq!(s, 202, "{e}");
    assert_eq!(get(outer, "/up").status, 200);
    api.check_file();

    // A field lbha cannot honour is still refused by name, and nothing is written.
    let v = api.version();
    let (s, e) = api.json(
        "POST",
        &format!("{C}/binds?frontend=tls&version={v}"),
        Some(r#"{"name": "x", "port": 1, "tfo": true}"#),
    );
    assert_eq!(s, 400, "{e}");
    assert!(e.to_string().contains("tfo"), "{e}");
    assert_eq!(api.version(), v);
}

/// Rule types beyond the first six, made through the API: each becomes lbha's rule, passes the
/// commit's validation and acts on traffic.
#[test]
fn auth_set_var_replace_path_and_set_header_rules_through_the_api() {
    let b = Backend::start("B");
    let fe = free_port();
    let extra = format!(
        "{}[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"b\"\n",
        backend_cfg("b", b.port)
    );
    let mut api = ApiLbha::start(&extra);
    api.lbha.wait_port(fe);
    let (_, t) = api.json("POST", &format!("{T}?version=1"), None);
    let id = t["id"].as_str().unwrap().to_string();
    let url = format!("{C}/http_request_rules?parent_type=frontend&parent_name=fe&transaction_id={id}");
    for r in [
        json!({"index": 0, "type": "auth", "auth_realm": "admins", "cond": "unless", "cond_test": "{ http_auth(dataplaneapi) }"}),
        json!({"index": 1, "type": "set-var", "var_scope": "txn", "var_name": "p", "var_expr": "path"}),
        json!({"index": 2, "type": "replace-path", "path_match": "/old(.*)", "path_fmt": "\\1"}),
        json!({"index": 3, "type": "set-header", "hdr_name": "X-Was", "hdr_format": "%[var(txn.p)] %[path]"}),
    ] {
        let (s, e) = api.json("POST", &url, Some(&r.to_string()));
        assert_eq!(s, 202, "{r}: {e}");
    }
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202, "commit: {e}");

    let denied = get(fe, "/old/x");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("www-authenticate"), Some("Basic realm=\"admins\""));
    let ok = raw(
        fe,
        format!("GET /old/x HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {AUTH}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    let seen = b.seen.last_headers.lock().unwrap().clone();
    assert!(seen.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-was") && v == "/old/x /x"), "{seen:?}");
    api.check_file();
}

/// `server_switching_rules?backend=`: use-server rules made in a transaction reach the backend
/// at commit; a version-checked PUT and a DELETE change the routing again.
#[test]
fn server_switching_rules_choose_the_server() {
    let (a, b) = (Backend::start("A"), Backend::start("B"));
    let fe = free_port();
    let extra = format!(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"two\"\n\
         [[backend]]\nname = \"two\"\nbalance = \"first\"\nservers = [\
         {{ name = \"a\", addr = \"127.0.0.1:{}\" }}, {{ name = \"b\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port, b.port
    );
    let mut api = ApiLbha::start(&extra);
    api.lbha.wait_port(fe);
    let rules = format!("{C}/server_switching_rules?backend=two");
    let (s, list) = api.json("GET", &rules, None);
    assert_eq!((s, list["data"].clone()), (200, json!([])));
    let (_, t) = api.json("POST", &format!("{T}?version={}", api.version()), None);
    let id = t["id"].as_str().unwrap().to_string();
    let rule = r#"{"index": 0, "target_server": "b", "cond": "if", "cond_test": "{ path_beg /b }"}"#;
    let (s, e) = api.json("POST", &format!("{rules}&transaction_id={id}"), Some(rule));
    assert_eq!(s, 202, "{e}");
    // Not live before the commit.
    assert_eq!(get(fe, "/b/1").text(), "A");
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202, "commit: {e}");
    assert_eq!((get(fe, "/b/1").text(), get(fe, "/x").text()), ("B".to_string(), "A".to_string()));
    let (s, one) = api.json("GET", &format!("{C}/server_switching_rules/0?backend=two"), None);
    assert_eq!(s, 200);
    assert_eq!(one["data"], json!({"index": 0, "target_server": "b", "cond": "if", "cond_test": "{ path_beg /b }"}));

    let put = r#"{"index": 0, "target_server": "b", "cond": "unless", "cond_test": "{ path_beg /b }"}"#;
    let (s, e) =
        api.json("PUT", &format!("{C}/server_switching_rules/0?backend=two&version={}", api.version()), Some(put));
    assert_eq!(s, 202, "{e}");
    assert_eq!((get(fe, "/b/1").text(), get(fe, "/x").text()), ("A".to_string(), "B".to_string()));
    // A rule naming a server the backend lacks is refused at validation; nothing changes.
    let bad = r#"{"index": 1, "target_server": "zz", "cond": "if", "cond_test": "{ always_true }"}"#;
    let (s, e) = api.json("POST", &format!("{rules}&version={}", api.version()), Some(bad));
    assert!(s >= 400, "{s} {e}");
    let (s, _) =
        api.json("DELETE", &format!("{C}/server_switching_rules/0?backend=two&version={}", api.version()), None);
    assert_eq!(s, 202);
    assert_eq!(get(fe, "/x").text(), "A");
    let (s, e) = api.json("GET", &format!("{C}/server_switching_rules/0?backend=two"), None);
    assert_eq!(s, 404, "{e}");
    api.check_file();
}

/// `server_templates` over HTTP, as the server endpoints: a transaction, then `version` writes;
/// the template's servers `<prefix>1..N` run after each commit, and the file stays valid.
#[test]
fn server_templates_through_the_api() {
    let b = Backend::start("B");
    let fe = free_port();
    let extra = format!(
        "[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:{fe}\"]\ndefault_backend = \"be\"\n\
         [[backend]]\nname = \"be\"\nservers = [{{ name = \"s1\", addr = \"127.0.0.1:9\", disabled = true }}]\n"
    );
    let mut api = ApiLbha::start(&extra);
    api.lbha.wait_port(fe);
    let st = format!("{C}/server_templates?backend=be");
    let (s, list) = api.json("GET", &st, None);
    assert_eq!((s, list["data"].clone()), (200, json!([])));
    let (_, t) = api.json("POST", &format!("{T}?version={}", api.version()), None);
    let id = t["id"].as_str().unwrap().to_string();
    let body = format!(
        r#"{{"prefix":"web","num_or_range":"1-3","fqdn":"localhost","port":{},"init-addr":"libc","weight":10}}"#,
        b.port
    );
    let (s, e) = api.json("POST", &format!("{st}&transaction_id={id}"), Some(&body));
    assert_eq!(s, 202, "{e}");
    assert_eq!(e["num_or_range"], "3");
    // Staged only: the live file has no template yet, the transaction sees it.
    assert_eq!(api.json("GET", &st, None).1["data"], json!([]));
    let (_, staged) = api.json("GET", &format!("{st}&transaction_id={id}"), None);
    assert_eq!(staged["data"][0]["prefix"], "web", "{staged}");
    let (s, e) = api.json("PUT", &format!("{T}/{id}"), None);
    assert_eq!(s, 202, "commit: {e}");
    api.check_file();
    let names = |api: &ApiLbha| -> Vec<String> {
        api.lbha
            .ctl(&["show servers state be"])
            .lines()
            .filter_map(|l| l.split(' ').nth(3).map(str::to_string))
            .filter(|n| n.starts_with("web"))
            .collect()
    };
    assert_eq!(names(&api), ["web1", "web2", "web3"]);
    assert_eq!(get(fe, "/").text(), "B");
    let (s, one) = api.json("GET", &format!("{C}/server_templates/web?backend=be"), None);
    assert_eq!(s, 200);
    assert_eq!(
        one["data"],
        json!({"prefix":"web","num_or_range":"3","fqdn":"localhost","port":b.port,"init-addr":"libc","weight":10})
    );
    // The servers resource lists the plain server only.
    let (_, servers) = api.json("GET", &format!("{C}/servers?backend=be"), None);
    assert_eq!(servers["data"].as_array().map(Vec::len), Some(1), "{servers}");

    // PUT with `version`: a new count, live after the reload.
    let put =
        format!(r#"{{"prefix":"web","num_or_range":"2","fqdn":"localhost","port":{},"init-addr":"libc"}}"#, b.port);
    let stale = api.version() - 1;
    let (s, _) = api.json("PUT", &format!("{C}/server_templates/web?backend=be&version={stale}"), Some(&put));
    assert_eq!(s, 409);
    let (s, e) = api.json("PUT", &format!("{C}/server_templates/web?backend=be&version={}", api.version()), Some(&put));
    assert_eq!(s, 202, "{e}");
    assert_eq!(names(&api), ["web1", "web2"]);
    // A bad range is refused naming the field; nothing is written.
    let before = api.config_text();
    let bad = put.replace(r#""2""#, r#""2-5""#);
    let (s, e) = api.json("POST", &format!("{st}&version={}", api.version()), Some(&bad));
    assert_eq!(s, 400, "{e}");
    assert!(e["message"].as_str().unwrap_or("").starts_with("num_or_range:"), "{e}");
    assert_eq!(api.config_text(), before);
    // DELETE with `version`.
    let (s, _) = api.json("DELETE", &format!("{C}/server_templates/web?backend=be&version={}", api.version()), None);
    assert_eq!(s, 202);
    assert!(names(&api).is_empty());
    let (s, _) = api.json("GET", &format!("{C}/server_templates/web?backend=be"), None);
    assert_eq!(s, 404);
    api.check_file();
}
