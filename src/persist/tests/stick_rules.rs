//! Stick rules, appsession and their tables, with a fake clock.

use super::*;

fn stick_spec(key: KeyType, expire: u64, rules: Vec<Rule>) -> (Spec, Runtime, Instant) {
    let table = TableSpec { key, size: 100, expire: Some(Duration::from_secs(expire)) };
    let base = Instant::now();
    let spec = Spec { cookie: None, stick: Some(StickSpec { table, rules }), servers: servers(&[None, None, None]) };
    (spec, Runtime::new(Some(table), base), base)
}

fn rule(kind: RuleKind, f: &str) -> Rule {
    Rule::new(kind, Fetch::parse(f).unwrap())
}

#[test]
fn stick_on_src_learns_then_matches_then_expires() {
    let (spec, rt, base) = stick_spec(KeyType::Ip, 10, vec![rule(RuleKind::On, "src")]);
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/", ALL_UP, 2, &[], 200, clock(base, 0));
    assert_eq!(d.server, None, "nothing learned yet");
    assert_eq!(rt.len(), 1);
    for t in [5, 14, 23] {
        let (d, _, _) = exchange(&spec, Some(&rt), &[], "/", ALL_UP, 0, &[], 200, clock(base, t));
        assert_eq!(d.server, Some(2), "t={t}: matched entry, touched");
    }
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/", ALL_UP, 0, &[], 200, clock(base, 40));
    assert_eq!(d.server, None, "expired after 10 s idle");
}

#[test]
fn stick_match_ignores_down_servers_and_store_relearns() {
    let (spec, rt, base) = stick_spec(KeyType::String { len: 32 }, 60, vec![rule(RuleKind::On, "hdr(x-user)")]);
    let req = [("x-user", "alice")];
    exchange(&spec, Some(&rt), &req, "/", ALL_UP, 1, &[], 200, clock(base, 0));
    let one_down: &dyn Fn(usize) -> bool = &|i| i != 1;
    let (d, _, _) = exchange(&spec, Some(&rt), &req, "/", one_down, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, None, "stored server is down: balanced");
    let (d, _, _) = exchange(&spec, Some(&rt), &req, "/", ALL_UP, 2, &[], 200, clock(base, 2));
    assert_eq!(d.server, Some(0), "re-learned on the server that answered");
}

#[test]
fn stick_store_response_learns_from_set_cookie() {
    let (spec, rt, base) = stick_spec(
        KeyType::String { len: 64 },
        60,
        vec![rule(RuleKind::Match, "cookie(SID)"), rule(RuleKind::StoreResponse, "res.cook(SID)")],
    );
    exchange(&spec, Some(&rt), &[], "/", ALL_UP, 2, &[("set-cookie", "SID=xyz; Path=/")], 200, clock(base, 0));
    let (d, _, _) = exchange(&spec, Some(&rt), &[("cookie", "SID=xyz")], "/", ALL_UP, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(2));
    let (d, _, _) = exchange(&spec, Some(&rt), &[("cookie", "SID=other")], "/", ALL_UP, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, None);
    assert_eq!(rt.len(), 1, "match-only rules store nothing");
}

#[test]
fn stick_store_request_only_first_sample_per_table() {
    let (spec, rt, base) = stick_spec(
        KeyType::String { len: 32 },
        60,
        vec![
            rule(RuleKind::StoreRequest, "url_param(user)"),
            rule(RuleKind::StoreRequest, "src"),
            rule(RuleKind::Match, "url_param(user)"),
        ],
    );
    exchange(&spec, Some(&rt), &[], "/?user=bob", ALL_UP, 1, &[], 200, clock(base, 0));
    assert_eq!(rt.len(), 1, "src was not stored: the first store-request wins");
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/x?user=bob", ALL_UP, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(1));
    // Without the parameter, src is the first sample and is stored.
    exchange(&spec, Some(&rt), &[], "/", ALL_UP, 2, &[], 200, clock(base, 2));
    assert_eq!(rt.len(), 2);
}

#[test]
fn integer_table_ignores_samples_that_do_not_convert() {
    let (spec, rt, base) = stick_spec(KeyType::Integer, 60, vec![rule(RuleKind::On, "url_param(id)")]);
    exchange(&spec, Some(&rt), &[], "/?id=abc", ALL_UP, 1, &[], 200, clock(base, 0));
    assert!(rt.is_empty());
    exchange(&spec, Some(&rt), &[], "/?id=42", ALL_UP, 1, &[], 200, clock(base, 0));
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/?id=042", ALL_UP, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(1), "42 and 042 are the same integer");
}

#[test]
fn appsession_learns_from_the_server_and_matches_cookie_path_and_query() {
    let (mut spec, _, _) = stick_spec(KeyType::String { len: 8 }, 60, stick::appsession_rules("JSESSIONID", false));
    if let Some(st) = spec.stick.as_mut() {
        st.table.expire = Some(Duration::from_secs(5 * 3600));
    }
    let base = Instant::now();
    let rt = Runtime::new(spec.stick.as_ref().map(|s| s.table), base);
    exchange(
        &spec,
        Some(&rt),
        &[],
        "/login",
        ALL_UP,
        1,
        &[("set-cookie", "JSESSIONID=ABCDEFGHIJK; Path=/")],
        200,
        clock(base, 0),
    );
    for (req, uri) in [
        (vec![("cookie", "JSESSIONID=ABCDEFGHIJK")], "/cart"),
        (vec![], "/cart;jsessionid=ABCDEFGHxx"),
        (vec![], "/cart?JSESSIONID=ABCDEFGH"),
    ] {
        let (d, _, _) = exchange(&spec, Some(&rt), &req, uri, ALL_UP, 0, &[], 200, clock(base, 1));
        assert_eq!(d.server, Some(1), "{uri}: ids compared on their first `len` bytes");
    }
    // Without request_learn, an id the client invents is not learned.
    exchange(&spec, Some(&rt), &[("cookie", "JSESSIONID=client")], "/", ALL_UP, 2, &[], 200, clock(base, 2));
    assert_eq!(rt.len(), 1);
    // The entry lasts `timeout` after its last use.
    let (d, _, _) = exchange(
        &spec,
        Some(&rt),
        &[("cookie", "JSESSIONID=ABCDEFGH")],
        "/",
        ALL_UP,
        0,
        &[],
        200,
        clock(base, 5 * 3600 + 2),
    );
    assert_eq!(d.server, None);
}

#[test]
fn appsession_request_learn() {
    let (spec, rt, base) = stick_spec(KeyType::String { len: 64 }, 60, stick::appsession_rules("JSESSIONID", true));
    exchange(&spec, Some(&rt), &[("cookie", "JSESSIONID=fromclient")], "/", ALL_UP, 2, &[], 200, clock(base, 0));
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/x;jsessionid=fromclient", ALL_UP, 0, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(2));
}

#[test]
fn cookie_wins_over_stick_table() {
    let (mut spec, rt, base) = stick_spec(KeyType::Ip, 60, vec![rule(RuleKind::On, "src")]);
    spec.cookie = Some(CookieSpec::new("SERVERID", CookieMode::Insert));
    spec.servers = servers(&[Some("a"), Some("b"), Some("c")]);
    exchange(&spec, Some(&rt), &[], "/", ALL_UP, 2, &[], 200, clock(base, 0));
    let (d, _, _) = exchange(&spec, Some(&rt), &[("cookie", "SERVERID=a")], "/", ALL_UP, 1, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(0));
    let (d, _, _) = exchange(&spec, Some(&rt), &[], "/", ALL_UP, 1, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(0), "the last store moved src to server 0");
}

#[test]
fn entries_follow_servers_by_name_not_position() {
    let (spec, rt, base) = stick_spec(KeyType::Ip, 60, vec![rule(RuleKind::On, "src")]);
    exchange(&spec, Some(&rt), &[], "/", ALL_UP, 1, &[], 200, clock(base, 0));
    // A reload removed s0: s1 is now at index 0.
    let mut reloaded = spec.clone();
    reloaded.servers.remove(0);
    let (d, _, _) = exchange(&reloaded, Some(&rt), &[], "/", ALL_UP, 1, &[], 200, clock(base, 1));
    assert_eq!(d.server, Some(0));
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(rt.with_table(|t| t.peek(&StickKey::Ip(src), base)).flatten().is_some());
}

/// `stick on src table T if COND`: the rule reads and writes T (with T's key type), and only
/// when its condition holds.
#[test]
fn rules_on_a_named_table_with_conditions() {
    use crate::stktable::{KeyKind, SharedTable, Table, TableDef};
    let base = Instant::now();
    let named: SharedTable = crate::stktable::registry::shared(Table::new(TableDef {
        name: "shared".into(),
        key: KeyKind::String { len: 8 },
        size: 10,
        expire: None,
        nopurge: false,
        peers: None,
        store: crate::stktable::def::with_server_key(Vec::new()),
    }));
    let own = TableSpec { key: KeyType::Ip, size: 1, expire: None };
    let rt = Runtime::new(Some(own), base).with_other("shared", named.clone());
    let cond =
        |text: &str| StickCond { text: text.into(), cond: crate::routing::Condition::parse(text, &|_| None).unwrap() };
    let mut on = rule(RuleKind::On, "hdr(x-user)");
    on.table = Some("shared".into());
    on.cond = Some(cond("if { path_beg /app }"));
    let mut learn = rule(RuleKind::StoreResponse, "res.hdr(x-srv-user)");
    learn.table = Some("shared".into());
    learn.cond = Some(cond("unless { status 500 }"));
    let spec = Spec {
        cookie: None,
        stick: Some(StickSpec { table: own, rules: vec![on, learn] }),
        servers: servers(&[None, None, None]),
    };
    // The caller evaluates conditions; here "holds" stands for the request being under /app and
    // the response not being a 500.
    let run = |holds: bool, user: &str, fallback: usize, resp: &[(&str, &str)]| {
        let h = hm(&[("x-user", user)]);
        let uri: Uri = "/".parse().unwrap();
        let view = ReqView { headers: &h, uri: Some(&uri), src: None };
        let c = clock(base, 0);
        let d = spec.on_request_if(&view, Some(&rt), &ALL_UP, c, &Holds(holds));
        let mut r = hm(resp);
        spec.on_response_if(&d, d.server.unwrap_or(fallback), 200, &mut r, Some(&rt), c, &Holds(holds));
        d.server
    };
    assert_eq!(run(false, "alice", 1, &[]), None);
    assert_eq!(crate::stktable::registry::lock(&named).len(), 0, "condition false: nothing stored");
    assert_eq!(run(true, "alice", 1, &[]), None, "learned now");
    assert_eq!(crate::stktable::registry::lock(&named).len(), 1, "stored in the named table");
    assert_eq!(rt.len(), 0, "the backend's own table is untouched");
    assert_eq!(run(true, "alice", 0, &[]), Some(1), "matched through the named table");
    assert_eq!(run(false, "alice", 0, &[]), None, "condition false: no match");
    // store-response into the named table, cut to its key length (string len 8).
    run(true, "bob", 2, &[("x-srv-user", "carol-long-name")]);
    let t = crate::stktable::registry::lock(&named);
    assert_eq!(t.len(), 3, "bob (store-request) and carol-lo (store-response)");
}

/// A stream where every condition holds or none does, and expressions give a fixed sample.
struct Holds(bool);

impl crate::persist::Stream for Holds {
    fn holds(&self, _: &StickCond) -> bool {
        self.0
    }
    fn sample(&self, _: &crate::persist::stick::StickExpr) -> Option<crate::sample::Value> {
        None
    }
}
