//! One test per persistence error: each names the field, and the value where there is one.

use crate::config::parse;
use std::path::Path;

fn errors(backend_extra: &str, servers: &str) -> Vec<String> {
    let src =
        format!("[defaults]\nmode = \"http\"\n\n[[backend]]\nname = \"be\"\nservers = [{servers}]\n{backend_extra}\n");
    crate::config::tests::errors(&src)
}

const PLAIN: &str = "{ name = \"a\", addr = \"127.0.0.1:1\" }, { name = \"b\", addr = \"127.0.0.1:2\" }";
const TWO: &str = "{ name = \"a\", addr = \"127.0.0.1:1\", cookie = \"A\" }, { name = \"b\", addr = \"127.0.0.1:2\", cookie = \"B\" }";

fn has(extra: &str, servers: &str, want: &str) {
    let errs = errors(extra, servers);
    assert!(errs.iter().any(|e| e.contains(want)), "expected {want:?} in {errs:#?}");
}

fn ok(extra: &str, servers: &str) {
    assert_eq!(errors(extra, servers), Vec::<String>::new());
}

#[test]
fn valid_forms() {
    ok(
        "cookie = { name = \"SERVERID\", mode = \"insert\", indirect = true, nocache = true, preserve = true, httponly = true, secure = true, domain = \".example.com\", maxidle = \"30m\", maxlife = \"8h\" }",
        TWO,
    );
    ok("cookie = { name = \"SERVERID\", mode = \"rewrite\" }", TWO);
    ok("cookie = { name = \"JSESSIONID\", mode = \"prefix\", indirect = true }", TWO);
    ok("cookie = { name = \"SERVERID\" }", TWO);
    ok(
        "stick_table = { type = \"string\", len = 64, size = \"1m\", expire = \"5h\" }\nstick = [ { on = \"src\" }, { match = \"cookie(SID)\" }, { store_request = \"hdr(X-User)\" }, { store_response = \"res.cook(JSESSIONID)\" }, { match = \"url_param(sid)\" } ]",
        PLAIN,
    );
    ok("stick_table = { type = \"ip\", size = 1000000 }\nstick = [{ on = \"src\" }]", PLAIN);
    ok("stick_table = { type = \"integer\", size = \"100k\" }\nstick = [{ on = \"url_param(id)\" }]", PLAIN);
    ok("appsession = { cookie = \"JSESSIONID\", len = 64, timeout = \"5h\", request_learn = true }", PLAIN);
    // A backup may go without a cookie (it then clears the client's).
    ok(
        "cookie = { name = \"S\", mode = \"insert\" }",
        "{ name = \"a\", addr = \"127.0.0.1:1\", cookie = \"A\" }, { name = \"bk\", addr = \"127.0.0.1:2\", backup = true }",
    );
}

#[test]
fn snapshot_carries_the_spec() {
    let src = format!(
        "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"be\"\nservers = [{TWO}]\ncookie = {{ name = \"SID\", mode = \"insert\", indirect = true }}\nstick_table = {{ type = \"ip\", size = \"1k\", expire = \"10s\" }}\nstick = [{{ on = \"src\" }}]\n"
    );
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    let p = &snap.backends[0].persist;
    let c = p.cookie.as_ref().unwrap();
    assert_eq!((c.name.as_str(), c.mode, c.indirect), ("SID", crate::config::persist_spec::CookieMode::Insert, true));
    let st = p.stick.as_ref().unwrap();
    assert_eq!(st.table.size, 1024);
    assert_eq!(st.table.expire, Some(std::time::Duration::from_secs(10)));
    assert_eq!(p.servers[1].cookie.as_deref(), Some("B"));
    assert_eq!((p.servers[1].name.as_str(), p.servers[1].num), ("b", 2));
    // A server's `id` is its `server_id` in stick tables, as HAProxy stores its `puid`.
    let src = src.replacen("name = \"b\",", "name = \"b\", id = 7,", 1);
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert_eq!(snap.backends[0].persist.servers.iter().map(|k| k.num).collect::<Vec<_>>(), [1, 7]);
}

#[test]
fn cookie_name_must_be_a_token() {
    has("cookie = { name = \"SERVER ID\" }", TWO, "backend[0].cookie.name: a cookie name is a token");
    has("cookie = { name = \"\" }", TWO, "backend[0].cookie.name");
}

#[test]
fn cookie_mode_unknown() {
    has(
        "cookie = { name = \"S\", mode = \"inject\" }",
        TWO,
        "cookie.mode: expected \"insert\", \"rewrite\" or \"prefix\"",
    );
}

#[test]
fn rewrite_with_indirect() {
    has(
        "cookie = { name = \"S\", mode = \"rewrite\", indirect = true }",
        TWO,
        "cookie.indirect: `indirect` does not combine with mode rewrite",
    );
}

#[test]
fn preserve_without_insert_or_indirect() {
    has(
        "cookie = { name = \"S\", mode = \"prefix\", preserve = true }",
        TWO,
        "cookie.preserve: `preserve` needs mode insert or `indirect`",
    );
}

#[test]
fn bad_domain() {
    has("cookie = { name = \"S\", mode = \"insert\", domain = \"a;b\" }", TWO, "cookie.domain: a domain has letters");
}

#[test]
fn maxidle_outside_insert_and_too_short() {
    has(
        "cookie = { name = \"S\", mode = \"rewrite\", maxidle = \"1h\" }",
        TWO,
        "cookie.maxidle: `maxidle` applies to mode insert only",
    );
    has(
        "cookie = { name = \"S\", mode = \"insert\", maxlife = \"500ms\" }",
        TWO,
        "cookie.maxlife: must be at least 1s",
    );
}

#[test]
fn server_cookie_value_invalid() {
    has(
        "cookie = { name = \"S\", mode = \"insert\" }",
        "{ name = \"a\", addr = \"127.0.0.1:1\", cookie = \"x|y\" }",
        "servers[0].cookie: cookie values are printable",
    );
}

#[test]
fn server_cookie_without_backend_cookie() {
    has("", TWO, "servers[0].cookie: has no effect without the backend's `cookie`");
}

#[test]
fn server_without_cookie_value() {
    has(
        "cookie = { name = \"S\", mode = \"insert\" }",
        "{ name = \"a\", addr = \"127.0.0.1:1\" }",
        "backend[0].servers[0]: server `a` needs a `cookie` value",
    );
}

#[test]
fn persistence_in_tcp_mode() {
    has(
        "mode = \"tcp\"\ncookie = { name = \"S\", mode = \"insert\" }",
        TWO,
        "backend[0].cookie: cookie persistence needs mode http",
    );
    has(
        "mode = \"tcp\"\nappsession = { cookie = \"J\", timeout = \"1h\" }",
        PLAIN,
        "backend[0].appsession: appsession needs mode http",
    );
    has(
        "mode = \"tcp\"\nstick_table = { type = \"string\", size = 1 }\nstick = [{ on = \"src\" }, { on = \"hdr(x)\" }]",
        PLAIN,
        "backend[0].stick[1]: in mode tcp only `src` can be fetched",
    );
    ok("mode = \"tcp\"\nstick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"src\" }]", PLAIN);
}

#[test]
fn defaults_cookie_skips_tcp_backends_and_unvalued_servers() {
    let src = "[defaults]\nmode = \"http\"\ncookie = { name = \"S\", mode = \"insert\" }\n[[backend]]\nname = \"t\"\nmode = \"tcp\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:1\" }]\n[[backend]]\nname = \"h\"\nservers = [{ name = \"a\", addr = \"127.0.0.1:1\" }]\n";
    let snap = parse(src, Path::new("t.toml")).unwrap();
    assert!(snap.backends[0].persist.cookie.is_none());
    assert!(snap.backends[1].persist.cookie.is_some());
}

#[test]
fn stick_rules_without_table() {
    has("stick = [{ on = \"src\" }]", TWO, "backend[0].stick: stick rules need a `stick_table`");
}

/// HAProxy accepts a table without rules (it holds counters, filled by the runtime API): no
/// warning, and the table is in the snapshot.
#[test]
fn table_without_rules() {
    ok("stick_table = { type = \"ip\", size = 10 }", PLAIN);
    let src = format!(
        "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"be\"\nservers = [{PLAIN}]\nstick_table = {{ type = \"ip\", size = 10 }}\n"
    );
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    assert_eq!(snap.stick_tables.len(), 1);
    assert!(snap.backends[0].persist.stick.is_none());
}

/// A backend without cookie, table or rules has no persistence at all: the proxy skips the
/// per-request hooks only then.
#[test]
fn plain_backend_has_no_persistence() {
    let src = format!("[defaults]\nmode = \"http\"\n[[backend]]\nname = \"be\"\nservers = [{PLAIN}]\n");
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    assert!(snap.backends[0].persist.stick.is_none());
    assert!(snap.backends[0].persist.is_empty());
}

#[test]
fn table_type() {
    has(
        "stick_table = { type = \"ipv4\", size = 10 }\nstick = [{ on = \"src\" }]",
        TWO,
        "stick_table.type: expected \"ip\", \"ipv6\", \"integer\", \"string\" or \"binary\" (ipv4)",
    );
    has("stick_table = { size = 10 }\nstick = [{ on = \"src\" }]", TWO, "stick_table: missing `type`");
}

#[test]
fn table_len() {
    has(
        "stick_table = { type = \"ip\", len = 4, size = 10 }\nstick = [{ on = \"src\" }]",
        TWO,
        "stick_table.len: only string and binary tables take `len`",
    );
    has(
        "stick_table = { type = \"string\", len = 0, size = 10 }\nstick = [{ on = \"src\" }]",
        TWO,
        "stick_table.len: must be at least 1 (0)",
    );
}

#[test]
fn table_size() {
    has("stick_table = { type = \"ip\" }\nstick = [{ on = \"src\" }]", TWO, "stick_table.size: missing `size`");
    has(
        "stick_table = { type = \"ip\", size = 0 }\nstick = [{ on = \"src\" }]",
        TWO,
        "stick_table.size: must be at least 1 (0)",
    );
    has("stick_table = { type = \"ip\", size = \"lots\" }\nstick = [{ on = \"src\" }]", TWO, "invalid size \"lots\"");
}

#[test]
fn table_expire_zero() {
    has(
        "stick_table = { type = \"ip\", size = 1, expire = 0 }\nstick = [{ on = \"src\" }]",
        TWO,
        "stick_table.expire: must be greater than 0",
    );
}

#[test]
fn rule_with_none_or_two_actions() {
    has(
        "stick_table = { type = \"ip\", size = 1 }\nstick = [{ }]",
        TWO,
        "backend[0].stick[0]: each rule has exactly one of",
    );
    has(
        "stick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"src\", match = \"src\" }]",
        TWO,
        "backend[0].stick[0]: each rule has exactly one of",
    );
}

#[test]
fn rule_fetch_unknown() {
    has(
        "stick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"nope\" }]",
        TWO,
        "stick[0].on: in `nope`: `nope`: unknown fetch method",
    );
    has(
        "stick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"req.hdr(x),nope\" }]",
        TWO,
        "stick[0].on: in `req.hdr(x),nope`: `nope`: unknown converter",
    );
    has(
        "stick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"cookie()\" }]",
        TWO,
        "stick[0].on: cookie() needs a name",
    );
}

#[test]
fn rule_fetch_wrong_direction() {
    has(
        "stick_table = { type = \"string\", size = 1 }\nstick = [{ match = \"res.cook(SID)\" }]",
        TWO,
        "stick[0].match: reads the response",
    );
    has(
        "stick_table = { type = \"string\", size = 1 }\nstick = [{ store_response = \"cookie(SID)\" }]",
        TWO,
        "stick[0].store_response: reads the request",
    );
}

#[test]
fn src_into_integer_table_is_cast_as_haproxy() {
    ok("stick_table = { type = \"integer\", size = 1 }\nstick = [{ on = \"src\" }]", PLAIN);
}

/// Any sample expression, checked as `haproxy -c` checks it (2.6.12's verdicts).
#[test]
fn sample_expressions_checked_as_haproxy() {
    let t = |ty: &str, rule: &str| format!("stick_table = {{ type = \"{ty}\", size = 10 }}\nstick = [{rule}]");
    for (ty, rule) in [
        ("string", "{ on = \"req.hdr(x-user),lower\" }"),
        ("string", "{ match = \"path,field(2,/)\" }"),
        ("ip", "{ on = \"src,ipmask(24)\" }"),
        ("ip", "{ on = \"req.hdr(x-forwarded-for)\" }"),
        ("integer", "{ on = \"req.hdr(x),length\" }"),
        ("integer", "{ on = \"always_true\" }"),
        ("string", "{ on = \"var(txn.k)\" }"),
        ("string", "{ on = \"dst\" }"),
        ("string", "{ store_response = \"res.hdr(x-srv),lower\" }"),
        ("string", "{ store_response = \"status\" }"),
        ("ip", "{ store_response = \"src\" }"),
        ("string", "{ store_response = \"unique-id\" }"),
    ] {
        ok(&t(ty, rule), PLAIN);
    }
    for (ty, rule, want) in [
        ("string", "{ on = \"res.hdr(x)\" }", "stick[0].on: reads the response"),
        ("string", "{ on = \"status\" }", "stick[0].on: fetch `status` reads the response"),
        ("string", "{ store_response = \"path\" }", "stick[0].store_response: fetch `path` reads the request"),
        ("string", "{ store_response = \"req.hdr(x)\" }", "stick[0].store_response: reads the request"),
        ("ip", "{ on = \"req.body\" }", "a bin sample cannot be used with a table of type ip"),
        ("ip", "{ on = \"always_true\" }", "a bool sample cannot be used with a table of type ip"),
        ("string", "{ on = \"req.payload(0,4)\" }", "not supported in stick rules by lbha yet"),
    ] {
        has(&t(ty, rule), TWO, want);
    }
}

#[test]
fn appsession_errors() {
    has("appsession = { cookie = \"J S\", timeout = \"1h\" }", TWO, "appsession.cookie: a cookie name is a token");
    has("appsession = { cookie = \"J\", len = 0, timeout = \"1h\" }", TWO, "appsession.len: must be at least 1");
    has("appsession = { cookie = \"J\" }", TWO, "backend[0].appsession: missing `timeout`");
    has("appsession = { cookie = \"J\", timeout = 0 }", TWO, "appsession.timeout: must be greater than 0");
    has("appsession = { cookie = \"J\", timeout = \"1h\", size = 0 }", TWO, "appsession.size: must be at least 1");
}

#[test]
fn appsession_with_stick_table() {
    has(
        "appsession = { cookie = \"J\", timeout = \"1h\" }\nstick_table = { type = \"ip\", size = 1 }\nstick = [{ on = \"src\" }]",
        TWO,
        "backend[0].appsession: use either `appsession` or `stick_table`",
    );
}

#[test]
fn not_allowed_in_frontend_or_defaults() {
    let src = "[defaults]\nmode = \"http\"\nstick_table = { type = \"ip\", size = 1 }\n[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\ncookie = { name = \"S\" }\n";
    let e = parse(src, Path::new("t.toml")).unwrap_err().to_string();
    assert!(e.contains("defaults.stick_table: `stick_table` is not allowed in a defaults section"), "{e}");
    assert!(e.contains("frontend[0].cookie: `cookie` is not allowed in a frontend section"), "{e}");
}

#[test]
fn server_state_keys() {
    let srv = |extra: &str| format!("{{ name = \"a\", addr = \"127.0.0.1:1\", {extra} }}");
    has(
        "",
        &srv("check = true, on_marked_down = \"kill\""),
        "servers[0].on_marked_down: expected \"shutdown-sessions\" (kill)",
    );
    has("", &srv("slowstart = \"10s\""), "servers[0].slowstart: has no effect without `check = true`");
    has(
        "",
        &srv("on_marked_down = \"shutdown-sessions\""),
        "servers[0].on_marked_down: has no effect without `check = true`",
    );
    let src = format!(
        "[defaults]\nmode = \"http\"\n[[backend]]\nname = \"be\"\nservers = [{}]\n",
        srv("check = true, slowstart = \"10s\", on_marked_down = \"shutdown-sessions\"")
    );
    let snap = parse(&src, Path::new("t.toml")).unwrap();
    let s = &snap.backends[0].servers[0];
    assert_eq!(s.slowstart, std::time::Duration::from_secs(10));
    assert!(s.shutdown_on_down);
}

/// Issue 14 item 5: HAProxy's 32-bit table size.
#[test]
fn table_size_has_haproxy_range() {
    has(
        "stick_table = { type = \"ip\", size = \"5g\" }\nstick = [{ on = \"src\" }]",
        PLAIN,
        "backend[0].stick_table.size: must be at most 4294967295 entries (5368709120)",
    );
}

#[test]
fn stick_rules_with_table_and_conditions() {
    let src = |rules: &str, mode: &str| {
        format!(
            "[defaults]\nmode = \"{mode}\"\n[[backend]]\nname = \"st\"\nstick_table = {{ type = \"string\", len = 16, size = \"1k\" }}\n\
             [[backend]]\nname = \"be\"\nservers = [{PLAIN}]\nacl = [{{ name = \"app\", cond = \"path_beg /app\" }}]\nstick = [{rules}]\n"
        )
    };
    let good = src(
        "{ on = \"src\", table = \"st\", if = \"app\" }, { store_response = \"res.cook(SID)\", table = \"st\", unless = \"{ status 500 }\" }",
        "http",
    );
    let snap = parse(&good, Path::new("t.toml")).unwrap();
    let st = snap.backends[1].persist.stick.as_ref().unwrap();
    assert_eq!(st.rules[0].table.as_deref(), Some("st"));
    assert_eq!(st.rules[0].cond.as_ref().map(|c| c.text.as_str()), Some("if app"));
    assert_eq!(st.rules[1].cond.as_ref().map(|c| c.text.as_str()), Some("unless { status 500 }"));
    let named = snap.stick_tables.iter().find(|t| t.name == "st").unwrap();
    let stored: Vec<&str> = named.store.iter().map(|s| s.dt.name()).collect();
    assert_eq!(stored, ["server_id", "server_key"], "a table stick rules name keeps the server");
    for (rules, mode, want) in [
        ("{ on = \"src\", table = \"nope\" }", "http", "backend[1].stick[0].table: no stick table of this name"),
        ("{ on = \"src\" }", "http", "stick rules need a `stick_table` in this backend (or `table` naming another)"),
        ("{ on = \"src\", table = \"st\", if = \"missing_acl\" }", "http", "backend[1].stick[0].if"),
        ("{ on = \"src\", table = \"st\", if = \"a\", unless = \"b\" }", "http", "use either `if` or `unless`"),
        (
            "{ on = \"src\", table = \"st\", if = \"{ src 10.0.0.0/8 }\" }",
            "tcp",
            "conditions on stick rules need mode http",
        ),
    ] {
        let errs = crate::config::tests::errors(&src(rules, mode));
        assert!(errs.iter().any(|e| e.contains(want)), "{rules}: expected {want:?} in {errs:#?}");
    }
}
