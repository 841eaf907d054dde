//! `use-server`, `force-persist` and `ignore-persist` against cookies and stick tables: what
//! HAProxy 2.6 does with each (checked against it in tests/persist_rules.rs).

use super::rules::{PersistMode, Pre};
use super::*;

/// One exchange after the rules decided `pre`.
#[allow(clippy::too_many_arguments)]
fn with_pre(
    spec: &Spec,
    rt: Option<&Runtime>,
    pre: Pre,
    req: &[(&str, &str)],
    usable: &dyn Fn(usize) -> bool,
    fallback: usize,
    resp: &[(&str, &str)],
    c: Clock,
) -> (Decision, HeaderMap, HeaderMap) {
    let mut rh = hm(req);
    let uri: Uri = "/".parse().unwrap();
    let view = ReqView { headers: &rh, uri: Some(&uri), src: Some("127.0.0.1".parse().unwrap()) };
    let d = spec.on_request_with(&view, rt, usable, c, &NoStream, pre);
    spec.strip_request(&mut rh);
    let server = d.server.unwrap_or(fallback);
    let mut resp = hm(resp);
    spec.on_response(&d, server, 200, &mut resp, rt, c);
    (d, rh, resp)
}

fn now() -> Clock {
    clock(Instant::now(), 0)
}

fn insert_indirect() -> Spec {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.indirect = true;
    cookie_spec(c)
}

#[test]
fn use_server_wins_over_a_valid_cookie_and_sets_none() {
    let spec = insert_indirect();
    let pre = Pre { mode: PersistMode::Normal, server: Some(1) };
    let (d, seen, resp) = with_pre(&spec, None, pre, &[("cookie", "SERVERID=a")], ALL_UP, 0, &[], now());
    assert_eq!(d.server, Some(1), "the use-server rule's server");
    assert_eq!(d.cookie, CookieState::Invalid, "the cookie assigned nothing");
    assert!(seen.get("cookie").is_none(), "indirect: still stripped");
    assert!(values(&resp, header::SET_COOKIE).is_empty(), "direct: no cookie inserted (HAProxy's SF_DIRECT)");
    // Without a cookie either: a use-server request is direct.
    let (_, _, resp) = with_pre(&spec, None, pre, &[], ALL_UP, 0, &[], now());
    assert!(values(&resp, header::SET_COOKIE).is_empty());
    // Without rules the same cookie assigns its server.
    let (d, _, _) = with_pre(&spec, None, Pre::default(), &[("cookie", "SERVERID=a")], ALL_UP, 1, &[], now());
    assert_eq!(d.server, Some(0));
}

#[test]
fn use_server_wins_over_a_stick_match_which_still_stores() {
    let table = TableSpec { key: KeyType::Ip, size: 10, expire: None };
    let rules = vec![Rule::new(RuleKind::On, Fetch::parse("src").unwrap())];
    let spec = Spec { cookie: None, stick: Some(StickSpec { table, rules }), servers: servers(&[None, None, None]) };
    let rt = Runtime::new(Some(table), Instant::now());
    let (d, _, _) = with_pre(&spec, Some(&rt), Pre::default(), &[], ALL_UP, 0, &[], now());
    assert_eq!(d.server, None);
    let pre = Pre { mode: PersistMode::Normal, server: Some(2) };
    let (d, _, _) = with_pre(&spec, Some(&rt), pre, &[], ALL_UP, 0, &[], now());
    assert_eq!(d.server, Some(2), "use-server before the stick match");
    let (d, _, _) = with_pre(&spec, Some(&rt), Pre::default(), &[], ALL_UP, 0, &[], now());
    assert_eq!(d.server, Some(2), "stick on stored the server use-server chose");
}

#[test]
fn ignore_persist_assigns_nothing_by_cookie_but_keeps_the_stick_table() {
    let spec = insert_indirect();
    let pre = Pre { mode: PersistMode::Ignore, server: None };
    let req = [("cookie", "SERVERID=a")];
    let (d, seen, resp) = with_pre(&spec, None, pre, &req, ALL_UP, 1, &[("set-cookie", "SERVERID=x")], now());
    assert_eq!(d.server, None, "balanced");
    assert_eq!(d.cookie, CookieState::Invalid, "read, assigned nothing");
    assert!(seen.get("cookie").is_none(), "indirect: stripped all the same, as HAProxy does");
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=x"], "neither removed nor inserted");

    let table = TableSpec { key: KeyType::Ip, size: 10, expire: None };
    let rules = vec![Rule::new(RuleKind::On, Fetch::parse("src").unwrap())];
    let spec = Spec { cookie: None, stick: Some(StickSpec { table, rules }), servers: servers(&[None, None]) };
    let rt = Runtime::new(Some(table), Instant::now());
    with_pre(&spec, Some(&rt), pre, &[], ALL_UP, 1, &[], now());
    let (d, _, _) = with_pre(&spec, Some(&rt), pre, &[], ALL_UP, 0, &[], now());
    assert_eq!(d.server, Some(1), "stick rules apply under ignore-persist, as in HAProxy");
}

#[test]
fn force_persist_takes_the_cookies_server_when_the_caller_allows_it() {
    let spec = insert_indirect();
    let down0: &dyn Fn(usize) -> bool = &|i| i != 0;
    let req = [("cookie", "SERVERID=a")];
    let (d, _, _) = with_pre(&spec, None, Pre::default(), &req, down0, 1, &[], now());
    assert_eq!((d.server, d.cookie), (None, CookieState::Down));
    let pre = Pre { mode: PersistMode::Force, server: None };
    // With force-persist the proxy's `usable` says yes to the DOWN server.
    let (d, _, _) = with_pre(&spec, None, pre, &req, ALL_UP, 1, &[], now());
    assert_eq!(d.server, Some(0));
    assert!(d.forced() && d.prefer().forced);
}
