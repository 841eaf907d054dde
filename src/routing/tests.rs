//! Matchers, combinators and errors, driven with hand-built requests.

use super::*;
use crate::routing::{Acl, Facts, Live, RoutingError};
use std::collections::HashMap;
use std::path::Path;

struct Nb(HashMap<&'static str, usize>);
impl Live for Nb {
    fn nbsrv(&self, b: &str) -> usize {
        self.0.get(b).copied().unwrap_or(0)
    }
}

struct Req {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    src: std::net::IpAddr,
    port: u16,
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Req {
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Req {
        method: method.parse().unwrap(),
        uri: uri.parse().unwrap(),
        headers: h,
        src: "192.0.2.10".parse().unwrap(),
        port: 80,
    }
}

impl Req {
    fn facts(&self) -> Facts<'_> {
        Facts {
            method: Some(&self.method),
            uri: Some(&self.uri),
            headers: Some(&self.headers),
            src: self.src,
            dst_port: self.port,
        }
    }
}

fn live() -> Nb {
    Nb(HashMap::from([("static", 0), ("php", 2)]))
}

fn m(expr: &str, r: &Req) -> bool {
    Acl::parse(expr, Path::new("."))
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(&r.facts(), &live())
}

#[test]
fn path_matchers() {
    let r = req("GET", "/img/logo.PNG?x=1", &[]);
    assert!(m("path /img/logo.PNG", &r));
    assert!(!m("path /img/logo.png", &r));
    assert!(m("path -i /img/logo.png", &r));
    assert!(m("path_beg /js /img", &r));
    assert!(m("path_end -i .png .jpg", &r));
    assert!(!m("path_end .png", &r));
    assert!(m("path_sub logo", &r));
    assert!(m("path_dir img", &r));
    assert!(!m("path_dir im", &r));
    assert!(m("path_reg ^/img/.*\\.PNG$", &r));
    assert!(m("path_reg -i \\.png$", &r));
}

#[test]
fn url_matchers_see_the_query() {
    let r = req("GET", "/a.php?id=3", &[]);
    assert!(m("url /a.php?id=3", &r));
    assert!(m("url_beg /a.php", &r));
    assert!(m("url_sub id=3", &r));
    assert!(m("url_end id=3", &r));
    assert!(m("url_reg /*.php", &r));
    assert!(!m("url_reg \\.php$", &r), "the query follows .php");
    assert!(m("url_reg \\.php$", &req("GET", "/x/a.php", &[])));
}

#[test]
fn header_matchers() {
    let r = req(
        "GET",
        "/",
        &[
            ("Host", "WWW.Example.com"),
            ("X-A", "one, two"),
            ("X-A", "three"),
        ],
    );
    assert!(m("hdr(host) -i www.example.com", &r));
    assert!(!m("hdr(host) www.example.com", &r));
    assert!(m("hdr_beg(host) -i www.", &r));
    assert!(m("hdr_end(host) .com", &r));
    assert!(m("hdr_sub(host) Example", &r));
    assert!(m("hdr_reg(host) ^WWW\\.", &r));
    assert!(m("hdr(x-a) two", &r), "comma-separated values are split");
    assert!(m("req.hdr_cnt(x-a) eq 3", &r));
    assert!(m("hdr_cnt(x-b) eq 0", &r));
    assert!(!m("hdr(x-b) anything", &r));
}

#[test]
fn src_method_port_and_nbsrv() {
    let mut r = req("POST", "/", &[]);
    assert!(m("src 192.0.2.0/24", &r));
    assert!(m("src 10.0.0.1 192.0.2.10", &r));
    assert!(!m("src 198.51.100.0/24", &r));
    r.src = "2001:db8::5".parse().unwrap();
    assert!(m("src 2001:db8::/32", &r));
    assert!(!m("src 192.0.2.0/24", &r));
    r.src = "::ffff:192.0.2.9".parse().unwrap();
    assert!(
        m("src 192.0.2.0/24", &r),
        "v4-mapped addresses match v4 networks"
    );
    assert!(m("method GET POST", &r));
    assert!(!m("method get", &r));
    assert!(m("method -i post", &r));
    assert!(m("dst_port 80 443", &r));
    assert!(m("dst_port 1:1024", &r));
    assert!(!m("dst_port gt 80", &r));
    assert!(m("nbsrv(static) lt 1", &r));
    assert!(!m("nbsrv(php) lt 1", &r));
    assert!(m("nbsrv(php) ge 2", &r));
    assert!(m("nbsrv(php) ne 0", &r));
    assert!(m("nbsrv(php) le 2", &r));
    assert!(!m("nbsrv(php) gt 2", &r));
}

#[test]
fn pattern_file() {
    let dir = std::env::temp_dir().join(format!("lbha-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("paths.lst"),
        "# static files\n/static\n\n/assets\n",
    )
    .unwrap();
    let a = Acl::parse("path_beg -f paths.lst", &dir).unwrap();
    let r = req("GET", "/assets/app.js", &[]);
    assert!(a.matches(&r.facts(), &live()));
    assert!(matches!(
        Acl::parse("path_beg -f missing.lst", &dir),
        Err(RoutingError::File { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn acl_errors() {
    let p = Path::new(".");
    assert_eq!(Acl::parse("", p).unwrap_err(), RoutingError::Empty);
    assert!(matches!(
        Acl::parse("pathh /a", p),
        Err(RoutingError::UnknownFetch(_))
    ));
    assert!(matches!(
        Acl::parse("hdr() x", p),
        Err(RoutingError::UnknownFetch(_))
    ));
    assert!(matches!(
        Acl::parse("path_beg", p),
        Err(RoutingError::MissingPattern(_))
    ));
    assert!(matches!(
        Acl::parse("path_reg (", p),
        Err(RoutingError::BadRegex { .. })
    ));
    assert!(matches!(
        Acl::parse("src 300.1.1.1", p),
        Err(RoutingError::BadCidr(_))
    ));
    assert!(matches!(
        Acl::parse("src 192.0.2.0/33", p),
        Err(RoutingError::BadCidr(_))
    ));
    assert!(matches!(
        Acl::parse("nbsrv(x) lt", p),
        Err(RoutingError::BadInt(_))
    ));
    assert!(matches!(
        Acl::parse("nbsrv(x) lt one", p),
        Err(RoutingError::BadInt(_))
    ));
    assert!(matches!(
        Acl::parse("path -z /a", p),
        Err(RoutingError::BadFlag(_))
    ));
    assert_eq!(
        Acl::parse("nbsrv(static) lt 1", p)
            .unwrap()
            .referenced_backends(),
        vec!["static"]
    );
}

fn cond(expr: &str) -> Result<Condition, RoutingError> {
    let names = ["a", "b", "c"];
    Condition::parse(
        expr,
        &|n| names.iter().position(|x| *x == n),
        Path::new("."),
    )
}

/// ACL `a` = path_beg /a, `b` = method POST, `c` = hdr(x) 1.
fn eval(expr: &str, r: &Req) -> bool {
    let acls = vec![
        Acl::parse("path_beg /a", Path::new(".")).unwrap(),
        Acl::parse("method POST", Path::new(".")).unwrap(),
        Acl::parse("hdr(x) 1", Path::new(".")).unwrap(),
    ];
    cond(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .eval(&acls, &r.facts(), &live())
}

#[test]
fn combinators() {
    let get_a = req("GET", "/a", &[]);
    let post_a = req("POST", "/a", &[("x", "1")]);
    assert!(eval("if a", &get_a));
    assert!(!eval("unless a", &get_a));
    assert!(!eval("if a b", &get_a), "implicit AND");
    assert!(eval("if a b", &post_a));
    assert!(eval("if b or a", &get_a));
    assert!(eval("if b || a", &get_a));
    assert!(eval("if !b", &get_a));
    assert!(eval("if ! b", &get_a));
    assert!(!eval("if a !b", &post_a));
    assert!(eval("if b c or a", &get_a), "AND binds tighter than OR");
    assert!(!eval("if b c or !a", &get_a));
    assert!(eval("if { path_beg /a } { method GET }", &get_a));
    assert!(eval("if {path_beg /a}", &get_a));
    assert!(!eval("if !{ path_beg /a }", &get_a));
    assert!(eval("if TRUE", &get_a));
    assert!(!eval("if FALSE", &get_a));
    assert!(eval("if METH_GET", &get_a));
    assert!(eval("unless LOCALHOST", &get_a));
    assert!(eval("if { nbsrv(static) lt 1 }", &get_a));
}

#[test]
fn condition_errors() {
    assert_eq!(cond("").unwrap_err(), RoutingError::EmptyCondition);
    assert_eq!(cond("if").unwrap_err(), RoutingError::EmptyCondition);
    assert!(matches!(
        cond("when a"),
        Err(RoutingError::MissingKeyword(_))
    ));
    assert!(matches!(cond("if zzz"), Err(RoutingError::UnknownAcl(_))));
    assert!(matches!(
        cond("if a or"),
        Err(RoutingError::DanglingOperator(_))
    ));
    assert!(matches!(
        cond("if or a"),
        Err(RoutingError::DanglingOperator(_))
    ));
    assert!(matches!(
        cond("if a !"),
        Err(RoutingError::DanglingOperator(_))
    ));
    assert!(matches!(
        cond("if { path_beg /a"),
        Err(RoutingError::UnbalancedBrace)
    ));
    assert!(matches!(cond("if a }"), Err(RoutingError::UnbalancedBrace)));
    assert!(matches!(
        cond("if { nope x }"),
        Err(RoutingError::UnknownFetch(_))
    ));
    assert_eq!(
        cond("if a { nbsrv(s1) lt 1 } or { nbsrv(s2) eq 0 }")
            .unwrap()
            .referenced_backends(),
        vec!["s1", "s2"]
    );
}
