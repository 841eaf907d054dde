//! Cookie insert, rewrite, prefix and passive modes with every flag.

use super::*;

#[test]
fn insert_sets_cookie_on_first_response_then_sticks() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    let (d, _, resp) = simple(&spec, &[], &[]);
    assert_eq!((d.server, d.cookie), (None, CookieState::Absent));
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"]);
    assert!(resp.get(header::CACHE_CONTROL).is_none(), "no nocache");
    let (d, seen, resp) = simple(&spec, &[("cookie", "SERVERID=b")], &[]);
    assert_eq!((d.server, d.cookie), (Some(1), CookieState::Valid));
    assert!(resp.get(header::SET_COOKIE).is_none(), "direct: nothing to set");
    assert_eq!(
        values(&seen, header::COOKIE),
        ["SERVERID=b"],
        "without indirect the server sees the cookie (the seed's caveat)"
    );
}

#[test]
fn insert_drops_the_servers_own_cookie_of_that_name() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    let (_, _, resp) = simple(&spec, &[], &[("set-cookie", "SERVERID=mine"), ("set-cookie", "x=1")]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["x=1", "SERVERID=b; path=/"]);
}

#[test]
fn insert_indirect_hides_the_cookie_from_the_server() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.indirect = true;
    let spec = cookie_spec(c);
    let (d, seen, _) = simple(&spec, &[("cookie", "a=1; SERVERID=a; z=2")], &[]);
    assert_eq!(d.server, Some(0));
    assert_eq!(values(&seen, header::COOKIE), ["a=1; z=2"]);
    let (_, seen, _) = simple(&spec, &[("cookie", "SERVERID=a")], &[]);
    assert!(seen.get(header::COOKIE).is_none(), "empty Cookie header removed");
    // Even an invalid persistence cookie never reaches the server.
    let (d, seen, _) = simple(&spec, &[("cookie", "SERVERID=zzz")], &[]);
    assert_eq!(d.cookie, CookieState::Invalid);
    assert!(seen.get(header::COOKIE).is_none());
}

#[test]
fn insert_nocache_marks_cacheable_responses_private() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.nocache = true;
    let spec = cookie_spec(c);
    // A lifetime or a validator makes a response storable (HAProxy 2.6).
    let (_, _, resp) = simple(&spec, &[], &[("cache-control", "public, max-age=60")]);
    assert_eq!(values(&resp, header::CACHE_CONTROL), ["public, max-age=60", "private"]);
    for lifetime in [
        ("cache-control", "s-maxage=5"),
        ("expires", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("etag", "\"v1\""),
    ] {
        let (_, _, resp) = simple(&spec, &[], &[lifetime]);
        assert_eq!(values(&resp, header::CACHE_CONTROL).last().map(String::as_str), Some("private"), "{lifetime:?}");
    }
    // Neither: no cache stores it, nothing added (HAProxy leaves it alone too).
    let (_, _, resp) = simple(&spec, &[], &[]);
    assert!(resp.get(header::CACHE_CONTROL).is_none());
    let (_, _, resp) = simple(&spec, &[], &[("cache-control", "public")]);
    assert_eq!(values(&resp, header::CACHE_CONTROL), ["public"]);
    // Already private, or a status caches do not keep: nothing added.
    let (_, _, resp) = simple(&spec, &[], &[("cache-control", "no-store, max-age=5")]);
    assert_eq!(values(&resp, header::CACHE_CONTROL), ["no-store, max-age=5"]);
    let etag = [("etag", "\"v1\"")];
    let (_, _, resp) = exchange(&spec, None, &[], "/", ALL_UP, 0, &etag, 302, clock(Instant::now(), 0));
    assert!(resp.get(header::CACHE_CONTROL).is_none());
    // No cookie inserted (direct): nothing to protect.
    let (_, _, resp) = simple(&spec, &[("cookie", "SERVERID=b")], &etag);
    assert!(resp.get(header::CACHE_CONTROL).is_none());
}

#[test]
fn insert_nocache_leaves_answers_to_other_methods_than_get_and_head_alone() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.nocache = true;
    let spec = cookie_spec(c);
    let d = Decision { uncacheable_method: true, ..Decision::default() };
    let mut resp = hm(&[("cache-control", "max-age=60")]);
    spec.on_response(&d, 1, 200, &mut resp, None, clock(Instant::now(), 0));
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"], "the cookie is still inserted");
    assert_eq!(values(&resp, header::CACHE_CONTROL), ["max-age=60"]);
}

#[test]
fn insert_preserve_leaves_the_servers_cookie_alone() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.preserve = true;
    let spec = cookie_spec(c);
    let (_, _, resp) = simple(&spec, &[], &[("set-cookie", "SERVERID=logout; Max-Age=0")]);
    assert_eq!(
        values(&resp, header::SET_COOKIE),
        ["SERVERID=logout; Max-Age=0"],
        "the application's own cookie wins and nothing is inserted"
    );
    let (_, _, resp) = simple(&spec, &[], &[]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"]);
}

#[test]
fn insert_attributes() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.httponly = true;
    c.secure = true;
    c.domain = Some(".example.com".into());
    let spec = cookie_spec(c);
    let (_, _, resp) = simple(&spec, &[], &[]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/; domain=.example.com; HttpOnly; Secure"]);
}

#[test]
fn insert_for_a_server_without_cookie_clears_the_clients() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    let (_, _, resp) = exchange(&spec, None, &[], "/", ALL_UP, 2, &[], 200, clock(Instant::now(), 0));
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"]);
}

#[test]
fn down_or_maint_server_is_ignored_and_the_cookie_re_set() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    let a_down: &dyn Fn(usize) -> bool = &|i| i != 0;
    let (d, _, resp) =
        exchange(&spec, None, &[("cookie", "SERVERID=a")], "/", a_down, 1, &[], 200, clock(Instant::now(), 0));
    assert_eq!((d.server, d.cookie), (None, CookieState::Down));
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"]);
}

#[test]
fn redispatch_away_from_the_cookie_server_re_sets_the_cookie() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    let rh = hm(&[("cookie", "SERVERID=a")]);
    let c = clock(Instant::now(), 0);
    let d = spec.on_request(&ReqView { headers: &rh, uri: None, src: None }, None, ALL_UP, c);
    assert_eq!(d.server, Some(0));
    // The connection to server 0 failed and the proxy redispatched to server 1.
    let mut resp = HeaderMap::new();
    spec.on_response(&d, 1, 200, &mut resp, None, c);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"]);
}

#[test]
fn servers_may_share_a_cookie_value() {
    let spec = Spec {
        cookie: Some(CookieSpec::new("SERVERID", CookieMode::Insert)),
        stick: None,
        servers: servers(&[Some("a"), Some("b"), Some("a")]),
    };
    let first_down: &dyn Fn(usize) -> bool = &|i| i != 0;
    let (d, _, _) =
        exchange(&spec, None, &[("cookie", "SERVERID=a")], "/", first_down, 1, &[], 200, clock(Instant::now(), 0));
    assert_eq!((d.server, d.cookie), (Some(2), CookieState::Valid));
}

#[test]
fn unknown_or_empty_cookie_is_invalid() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Insert));
    for v in ["SERVERID=zz", "SERVERID="] {
        let (d, _, resp) = simple(&spec, &[("cookie", v)], &[]);
        assert_eq!((d.server, d.cookie), (None, CookieState::Invalid), "{v}");
        assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; path=/"]);
    }
}

#[test]
fn maxidle_dates_expire_and_refresh() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.maxidle = Some(Duration::from_secs(60));
    let spec = cookie_spec(c);
    let base = Instant::now();
    let (_, _, resp) = exchange(&spec, None, &[], "/", ALL_UP, 0, &[], 200, clock(base, 0));
    let set = values(&resp, header::SET_COOKIE);
    let issued = format!("SERVERID=a|{}; path=/", cookie::encode_date(T0_UNIX));
    assert_eq!(set, std::slice::from_ref(&issued));
    let value = issued.trim_start_matches("SERVERID=").trim_end_matches("; path=/");
    let req = format!("SERVERID={value}");
    // 30 s later: still valid, and the last-seen date is refreshed.
    let (d, _, resp) = exchange(&spec, None, &[("cookie", &req)], "/", ALL_UP, 1, &[], 200, clock(base, 30));
    assert_eq!(d.server, Some(0));
    assert_eq!(
        values(&resp, header::SET_COOKIE),
        [format!("SERVERID=a|{}; path=/", cookie::encode_date(T0_UNIX + 30))]
    );
    // 2 minutes idle: expired, balanced and re-issued.
    let (d, _, resp) = exchange(&spec, None, &[("cookie", &req)], "/", ALL_UP, 1, &[], 200, clock(base, 120));
    assert_eq!((d.server, d.cookie), (None, CookieState::Expired));
    assert!(values(&resp, header::SET_COOKIE)[0].starts_with("SERVERID=b|"));
    // A date more than a day in the future is not trusted either.
    let future = format!("SERVERID=a|{}", cookie::encode_date(T0_UNIX + 200_000));
    let (d, _, _) = exchange(&spec, None, &[("cookie", &future)], "/", ALL_UP, 1, &[], 200, clock(base, 0));
    assert_eq!(d.cookie, CookieState::Expired);
}

#[test]
fn maxlife_keeps_the_first_date_and_ends_old_sessions() {
    let mut c = CookieSpec::new("SERVERID", CookieMode::Insert);
    c.maxlife = Some(Duration::from_secs(3600));
    let spec = cookie_spec(c);
    let base = Instant::now();
    let first = cookie::encode_date(T0_UNIX);
    let (_, _, resp) = exchange(&spec, None, &[], "/", ALL_UP, 0, &[], 200, clock(base, 0));
    assert_eq!(values(&resp, header::SET_COOKIE), [format!("SERVERID=a|{first}|{first}; path=/")]);
    let req = format!("SERVERID=a|{first}|{first}");
    let (d, _, resp) = exchange(&spec, None, &[("cookie", &req)], "/", ALL_UP, 1, &[], 200, clock(base, 600));
    assert_eq!(d.server, Some(0));
    assert_eq!(
        values(&resp, header::SET_COOKIE),
        [format!("SERVERID=a|{}|{first}; path=/", cookie::encode_date(T0_UNIX + 600))],
        "first date kept, last date moves"
    );
    let (d, _, _) = exchange(&spec, None, &[("cookie", &req)], "/", ALL_UP, 1, &[], 200, clock(base, 7200));
    assert_eq!((d.server, d.cookie), (None, CookieState::Old));
}

#[test]
fn rewrite_replaces_the_servers_value() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Rewrite));
    let (_, _, resp) = simple(&spec, &[], &[("set-cookie", "SERVERID=placeholder; Path=/app")]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b; Path=/app"], "value rewritten, attributes kept");
    // No Set-Cookie from the server: rewrite adds none.
    let (_, _, resp) = simple(&spec, &[], &[]);
    assert!(resp.get(header::SET_COOKIE).is_none());
    let (d, seen, _) = simple(&spec, &[("cookie", "SERVERID=a")], &[]);
    assert_eq!(d.server, Some(0));
    assert_eq!(values(&seen, header::COOKIE), ["SERVERID=a"], "rewrite never strips");
}

#[test]
fn prefix_wraps_and_unwraps_the_application_cookie() {
    let spec = cookie_spec(CookieSpec::new("JSESSIONID", CookieMode::Prefix));
    let (_, _, resp) = simple(&spec, &[], &[("set-cookie", "JSESSIONID=abc123; Path=/")]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["JSESSIONID=b~abc123; Path=/"]);
    let (d, seen, resp) =
        simple(&spec, &[("cookie", "x=1; JSESSIONID=b~abc123")], &[("set-cookie", "JSESSIONID=new; Path=/")]);
    assert_eq!(d.server, Some(1));
    assert_eq!(values(&seen, header::COOKIE), ["x=1; JSESSIONID=abc123"]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["JSESSIONID=b~new; Path=/"]);
    // A cookie without the prefix is passed through unchanged.
    let (d, seen, _) = simple(&spec, &[("cookie", "JSESSIONID=plain")], &[]);
    assert_eq!(d.cookie, CookieState::Invalid);
    assert_eq!(values(&seen, header::COOKIE), ["JSESSIONID=plain"]);
}

#[test]
fn passive_mode_reads_only_and_indirect_drops_the_servers_repeat() {
    let spec = cookie_spec(CookieSpec::new("SERVERID", CookieMode::Passive));
    let (d, seen, resp) = simple(&spec, &[("cookie", "SERVERID=a")], &[("set-cookie", "SERVERID=a")]);
    assert_eq!(d.server, Some(0));
    assert_eq!(values(&seen, header::COOKIE), ["SERVERID=a"]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=a"]);
    let mut c = CookieSpec::new("SERVERID", CookieMode::Passive);
    c.indirect = true;
    let spec = cookie_spec(c);
    let (_, _, resp) = simple(&spec, &[("cookie", "SERVERID=a")], &[("set-cookie", "SERVERID=a")]);
    assert!(resp.get(header::SET_COOKIE).is_none(), "direct + indirect: client already has it");
    let (_, _, resp) = simple(&spec, &[], &[("set-cookie", "SERVERID=b")]);
    assert_eq!(values(&resp, header::SET_COOKIE), ["SERVERID=b"], "not direct: kept");
}
