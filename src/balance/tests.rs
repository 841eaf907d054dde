use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Hand-driven server facts.
struct Fake {
    up: RefCell<Vec<bool>>,
    conns: RefCell<Vec<u32>>,
    weight: RefCell<Vec<u32>>,
}

impl Fake {
    fn new(weights: &[u32]) -> Fake {
        Fake {
            up: RefCell::new(vec![true; weights.len()]),
            conns: RefCell::new(vec![0; weights.len()]),
            weight: RefCell::new(weights.to_vec()),
        }
    }
}

impl ServerState for Fake {
    fn usable(&self, i: usize) -> bool {
        self.up.borrow()[i]
    }
    fn conns(&self, i: usize) -> u32 {
        self.conns.borrow()[i]
    }
    fn weight(&self, i: usize) -> u32 {
        self.weight.borrow()[i]
    }
}

fn specs(weights: &[u32]) -> Vec<ServerSpec> {
    weights
        .iter()
        .map(|&w| ServerSpec {
            weight: w,
            backup: false,
            maxconn: None,
        })
        .collect()
}

fn sel(algo: &str, weights: &[u32]) -> Selector {
    Selector::new(
        &Algorithm::parse(algo).unwrap(),
        HashType::MapBased,
        &specs(weights),
        false,
    )
}

fn counts(s: &Selector, st: &Fake, n: usize) -> Vec<usize> {
    let mut c = vec![0; st.up.borrow().len()];
    for _ in 0..n {
        c[s.pick(&Request::default(), st).unwrap()] += 1;
    }
    c
}

#[test]
fn parse_every_form() {
    assert_eq!(Algorithm::parse("roundrobin"), Ok(Algorithm::RoundRobin));
    assert_eq!(Algorithm::parse("static-rr"), Ok(Algorithm::StaticRr));
    assert_eq!(Algorithm::parse("leastconn"), Ok(Algorithm::LeastConn));
    assert_eq!(Algorithm::parse("first"), Ok(Algorithm::First));
    assert_eq!(Algorithm::parse("source"), Ok(Algorithm::Source));
    assert_eq!(
        Algorithm::parse("uri"),
        Ok(Algorithm::Uri {
            len: None,
            depth: None,
            whole: false
        })
    );
    assert_eq!(
        Algorithm::parse("uri len 10 depth 2 whole"),
        Ok(Algorithm::Uri {
            len: Some(10),
            depth: Some(2),
            whole: true
        })
    );
    assert_eq!(
        Algorithm::parse("url_param userid"),
        Ok(Algorithm::UrlParam("userid".into()))
    );
    assert_eq!(
        Algorithm::parse("hdr(User-Agent)"),
        Ok(Algorithm::Hdr("user-agent".into()))
    );
    assert_eq!(
        Algorithm::parse("random"),
        Ok(Algorithm::Random { draws: 2 })
    );
    assert_eq!(
        Algorithm::parse("random(3)"),
        Ok(Algorithm::Random { draws: 3 })
    );
    assert_eq!(HashType::parse("consistent"), Ok(HashType::Consistent));
    assert_eq!(HashType::parse("map-based"), Ok(HashType::MapBased));
}

#[test]
fn parse_errors() {
    for bad in [
        "",
        "fastest",
        "roundrobin now",
        "uri len",
        "uri len 0",
        "uri bogus",
        "url_param",
        "url_param a b",
        "hdr()",
        "hdr(a b",
        "random(0)",
        "random(x)",
        "randomly",
    ] {
        assert!(Algorithm::parse(bad).is_err(), "{bad:?} should fail");
    }
    assert!(HashType::parse("ring").is_err());
}

#[test]
fn smooth_round_robin_interleaves_by_weight() {
    let st = Fake::new(&[3, 1]);
    let s = sel("roundrobin", &[3, 1]);
    let seq: Vec<usize> = (0..8)
        .map(|_| s.pick(&Request::default(), &st).unwrap())
        .collect();
    assert_eq!(seq, [0, 0, 1, 0, 0, 0, 1, 0]);
    let st = Fake::new(&[1, 1, 1]);
    assert_eq!(
        counts(&sel("roundrobin", &[1, 1, 1]), &st, 300),
        [100, 100, 100]
    );
}

#[test]
fn round_robin_follows_runtime_weights() {
    let st = Fake::new(&[1, 1]);
    let s = sel("roundrobin", &[1, 1]);
    assert_eq!(counts(&s, &st, 100), [50, 50]);
    st.weight.borrow_mut()[1] = 4;
    assert_eq!(counts(&s, &st, 100), [20, 80]);
    st.weight.borrow_mut()[0] = 0;
    assert_eq!(counts(&s, &st, 10), [0, 10]);
}

#[test]
fn static_rr_uses_configured_weights() {
    let st = Fake::new(&[2, 1]);
    let s = sel("static-rr", &[2, 1]);
    assert_eq!(counts(&s, &st, 300), [200, 100]);
}

#[test]
fn down_servers_are_skipped() {
    for algo in [
        "roundrobin",
        "static-rr",
        "leastconn",
        "first",
        "random",
        "source",
    ] {
        let st = Fake::new(&[1, 1, 1]);
        st.up.borrow_mut()[1] = false;
        let s = sel(algo, &[1, 1, 1]);
        let c = counts(&s, &st, 60);
        assert_eq!(c[1], 0, "{algo}");
        st.up.borrow_mut().iter_mut().for_each(|u| *u = false);
        assert_eq!(s.pick(&Request::default(), &st), None, "{algo}");
    }
}

#[test]
fn leastconn_prefers_fewest_per_weight() {
    let st = Fake::new(&[1, 1, 2]);
    *st.conns.borrow_mut() = vec![5, 2, 3];
    let s = sel("leastconn", &[1, 1, 2]);
    // 5/1, 2/1, 3/2=1.5 -> server 2
    assert_eq!(s.pick(&Request::default(), &st), Some(2));
    *st.conns.borrow_mut() = vec![1, 1, 2];
    // ties rotate between 0, 1 and 2 (1/1, 1/1, 2/2)
    let c = counts(&s, &st, 30);
    assert!(c.iter().all(|&n| n == 10), "{c:?}");
}

#[test]
fn first_fills_servers_in_order() {
    let mut sp = specs(&[1, 1, 1]);
    for s in &mut sp {
        s.maxconn = Some(2);
    }
    let s = Selector::new(&Algorithm::First, HashType::MapBased, &sp, false);
    let st = Fake::new(&[1, 1, 1]);
    let mut order = Vec::new();
    for _ in 0..6 {
        let i = s.pick(&Request::default(), &st).unwrap();
        st.conns.borrow_mut()[i] += 1;
        order.push(i);
    }
    assert_eq!(order, [0, 0, 1, 1, 2, 2]);
}

#[test]
fn random_spreads_by_weight() {
    let st = Fake::new(&[1, 3]);
    let s = Selector::new(
        &Algorithm::Random { draws: 1 },
        HashType::MapBased,
        &specs(&[1, 3]),
        false,
    );
    let c = counts(&s, &st, 8000);
    assert!((1600..2400).contains(&c[0]), "{c:?}");
    // Two choices avoid a loaded server.
    let st = Fake::new(&[1, 1]);
    *st.conns.borrow_mut() = vec![100, 0];
    let s = sel("random(2)", &[1, 1]);
    let c = counts(&s, &st, 1000);
    assert!(c[1] > 700, "{c:?}");
}

#[test]
fn backups_only_when_all_normal_servers_are_down() {
    let mut sp = specs(&[1, 1, 1, 1]);
    sp[2].backup = true;
    sp[3].backup = true;
    let s = Selector::new(&Algorithm::RoundRobin, HashType::MapBased, &sp, false);
    let st = Fake::new(&[1, 1, 1, 1]);
    let c = counts(&s, &st, 40);
    assert_eq!((c[2], c[3]), (0, 0));
    st.up.borrow_mut()[0] = false;
    st.up.borrow_mut()[1] = false;
    assert_eq!(
        counts(&s, &st, 10),
        [0, 0, 10, 0],
        "first usable backup only"
    );
    let s = Selector::new(&Algorithm::RoundRobin, HashType::MapBased, &sp, true);
    assert_eq!(
        counts(&s, &st, 10),
        [0, 0, 5, 5],
        "allbackups balances over backups"
    );
    st.up.borrow_mut()[0] = true;
    assert_eq!(
        counts(&s, &st, 10),
        [10, 0, 0, 0],
        "backups give back when a normal server returns"
    );
}

#[test]
fn pick_avoiding_moves_to_another_server() {
    let st = Fake::new(&[1, 1]);
    let s = sel("source", &[1, 1]);
    let req = Request {
        src: Some("192.0.2.7".parse().unwrap()),
        ..Default::default()
    };
    let first = s.pick(&req, &st).unwrap();
    assert_eq!(s.pick_avoiding(&req, &st, first), Some(1 - first));
    st.up.borrow_mut()[1 - first] = false;
    assert_eq!(
        s.pick_avoiding(&req, &st, first),
        Some(first),
        "the only usable one"
    );
}

fn key_map(s: &Selector, st: &Fake, keys: usize) -> Vec<usize> {
    (0..keys)
        .map(|k| {
            let ip = std::net::IpAddr::from([198, 51, (k >> 8) as u8, k as u8]);
            s.pick(
                &Request {
                    src: Some(ip),
                    ..Default::default()
                },
                st,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn source_hash_is_sticky_and_spread() {
    let st = Fake::new(&[1, 1, 1, 1]);
    let s = sel("source", &[1, 1, 1, 1]);
    let a = key_map(&s, &st, 4000);
    assert_eq!(a, key_map(&s, &st, 4000), "same client, same server");
    let mut c = [0; 4];
    a.iter().for_each(|&i| c[i] += 1);
    assert!(c.iter().all(|&n| (800..1200).contains(&n)), "{c:?}");
}

#[test]
fn consistent_hash_moves_about_one_nth() {
    let n = 10;
    let w = vec![1; n];
    let s = Selector::new(&Algorithm::Source, HashType::Consistent, &specs(&w), false);
    let st = Fake::new(&w);
    let before = key_map(&s, &st, 20000);
    st.up.borrow_mut()[3] = false;
    let after = key_map(&s, &st, 20000);
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    let limit = 20000.0 * 1.5 / n as f64;
    assert!((moved as f64) <= limit, "moved {moved} > {limit}");
    assert!(
        before.iter().zip(&after).all(|(a, b)| a == b || *a == 3),
        "only the removed server's keys move"
    );
    // Map-based, by contrast, moves most keys.
    let m = Selector::new(&Algorithm::Source, HashType::MapBased, &specs(&w), false);
    st.up.borrow_mut()[3] = true;
    let b2 = key_map(&m, &st, 20000);
    st.up.borrow_mut()[3] = false;
    let a2 = key_map(&m, &st, 20000);
    assert!(b2.iter().zip(&a2).filter(|(a, b)| a != b).count() > 20000 / 2);
}

#[test]
fn uri_url_param_and_header_keys() {
    let st = Fake::new(&[1, 1, 1, 1, 1, 1, 1, 1]);
    let w = [1; 8];
    let uri = sel("uri", &w);
    let pick = |s: &Selector, pq: &str| {
        s.pick(
            &Request {
                path_and_query: Some(pq),
                ..Default::default()
            },
            &st,
        )
        .unwrap()
    };
    assert_eq!(
        pick(&uri, "/a/b?x=1"),
        pick(&uri, "/a/b?x=2"),
        "query ignored without `whole`"
    );
    let depth = sel("uri depth 1", &w);
    assert_eq!(pick(&depth, "/img/a.png"), pick(&depth, "/img/b.png"));
    let len = sel("uri len 4", &w);
    assert_eq!(pick(&len, "/abcdef"), pick(&len, "/abcxyz"));
    let param = sel("url_param user", &w);
    let mut seen = HashMap::new();
    for k in 0..50 {
        let a = pick(&param, &format!("/p?user=u{k}&x={k}"));
        let b = pick(&param, &format!("/q?x=9&user=u{k}"));
        assert_eq!(a, b);
        seen.insert(a, ());
    }
    assert!(seen.len() > 3, "keys spread");
    let hdr = sel("hdr(x-tenant)", &w);
    let mut h = http::HeaderMap::new();
    h.insert("x-tenant", "acme".parse().unwrap());
    let r = Request {
        headers: Some(&h),
        ..Default::default()
    };
    let first = hdr.pick(&r, &st);
    assert!((0..20).all(|_| hdr.pick(&r, &st) == first));
}

#[test]
fn missing_key_falls_back_to_round_robin() {
    let st = Fake::new(&[1, 1]);
    let s = sel("hdr(x-none)", &[1, 1]);
    assert_eq!(counts(&s, &st, 10), [5, 5]);
}

#[test]
fn uri_key_cuts() {
    assert_eq!(hash::uri_key("/a/b/c?q", None, None, false), "/a/b/c");
    assert_eq!(hash::uri_key("/a/b/c?q", None, None, true), "/a/b/c?q");
    assert_eq!(hash::uri_key("/a/b/c", None, Some(2), false), "/a/b");
    assert_eq!(hash::uri_key("/a/b/c", Some(3), None, false), "/a/");
}
