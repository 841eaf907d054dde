//! Fetches against a fake [`SampleContext`].

use super::*;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use std::collections::HashMap;
use std::net::SocketAddr;

/// A stream as a test describes it; everything absent by default.
#[derive(Default)]
pub(super) struct Fake {
    pub vars: HashMap<VarRef, Value>,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub method: Option<Method>,
    pub uri: Option<Uri>,
    pub headers: Option<HeaderMap>,
    pub res_headers: Option<HeaderMap>,
    pub status: Option<u16>,
    pub payload: Option<Vec<u8>>,
    pub body: Option<Vec<u8>>,
    pub tls: Option<(String, String, Vec<u8>)>,
    pub nbsrv: HashMap<String, i64>,
}

impl SampleContext for Fake {
    fn src(&self) -> Option<SocketAddr> {
        self.src
    }
    fn dst(&self) -> Option<SocketAddr> {
        self.dst
    }
    fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }
    fn uri(&self) -> Option<&Uri> {
        self.uri.as_ref()
    }
    fn version(&self) -> Option<Version> {
        self.method.as_ref().map(|_| Version::HTTP_11)
    }
    fn req_headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }
    fn req_body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
    fn req_payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn res_headers(&self) -> Option<&HeaderMap> {
        self.res_headers.as_ref()
    }
    fn tls(&self) -> Option<bool> {
        Some(self.tls.is_some())
    }
    fn tls_sni(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.0.as_str())
    }
    fn tls_protocol(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.1.as_str())
    }
    fn tls_alpn(&self) -> Option<&[u8]> {
        self.tls.as_ref().map(|t| t.2.as_slice())
    }
    fn var(&self, var: &VarRef) -> Option<Value> {
        self.vars.get(var).cloned()
    }
    fn http_auth(&self, userlist: &str) -> Option<bool> {
        Some(userlist == "admins")
    }
    fn nbsrv(&self, backend: Option<&str>) -> Option<i64> {
        self.nbsrv.get(backend.unwrap_or("current")).copied()
    }
    fn srv_is_up(&self, backend: Option<&str>, server: &str) -> Option<bool> {
        Some(backend == Some("be") && server == "s1")
    }
    fn env(&self, name: &str) -> Option<String> {
        (name == "HOME").then(|| "/root".to_string())
    }
    fn now(&self) -> Option<(i64, u32)> {
        Some((1_500_000_000, 123_456))
    }
    fn random(&self) -> Option<u32> {
        Some(u32::MAX)
    }
    fn hostname(&self) -> Option<&str> {
        Some("lb1")
    }
    fn capture(&self, response: bool, slot: usize) -> Option<Vec<u8>> {
        (!response && slot == 1).then(|| b"example.com".to_vec())
    }
}

fn request() -> Fake {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("Example.com"));
    h.append("x-list", HeaderValue::from_static("a, b"));
    h.append("x-list", HeaderValue::from_static("\"c,d\", e"));
    h.append("cookie", HeaderValue::from_static("sid=1; lang=fr"));
    h.append("cookie", HeaderValue::from_static("sid=2"));
    h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    Fake {
        src: Some("192.0.2.7:40000".parse().unwrap()),
        dst: Some("[::1]:8443".parse().unwrap()),
        method: Some(Method::POST),
        uri: Some("/a/b.php?x=1&y=2&X=3&x=4".parse().unwrap()),
        headers: Some(h),
        body: Some(b"k=v".to_vec()),
        ..Fake::default()
    }
}

fn get(ctx: &Fake, expr: &str) -> Option<Value> {
    SampleExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).eval(ctx, &MapSet::default())
}

fn s(v: &str) -> Option<Value> {
    Some(Value::str(v))
}

#[test]
fn addresses_and_ports() {
    let r = request();
    assert_eq!(get(&r, "src"), Some(Value::Ipv4("192.0.2.7".parse().unwrap())));
    assert_eq!(get(&r, "src_port"), Some(Value::Sint(40000)));
    assert_eq!(get(&r, "dst"), Some(Value::Ipv6("::1".parse().unwrap())));
    assert_eq!(get(&r, "dst_port"), Some(Value::Sint(8443)));
    assert_eq!(get(&r, "src,ipmask(24)"), Some(Value::Ipv4("192.0.2.0".parse().unwrap())));
    assert_eq!(get(&Fake::default(), "src"), None);
}

#[test]
fn url_parts() {
    let r = request();
    assert_eq!(get(&r, "path"), s("/a/b.php"));
    assert_eq!(get(&r, "pathq"), s("/a/b.php?x=1&y=2&X=3&x=4"));
    assert_eq!(get(&r, "url"), s("/a/b.php?x=1&y=2&X=3&x=4"));
    assert_eq!(get(&r, "query"), s("x=1&y=2&X=3&x=4"));
    assert_eq!(get(&r, "urlp(x)"), s("1"));
    assert_eq!(get(&r, "url_param(y)"), s("2"));
    assert_eq!(get(&r, "urlp(X)"), s("3"));
    assert_eq!(get(&r, "urlp(z)"), None);
    assert_eq!(get(&r, "base"), s("Example.com/a/b.php"));
    // sdbm over host then path, then full_hash, as HAProxy's base32.
    let want = super::codec::full_hash(super::codec::sdbm(b"Example.com/a/b.php")) as i64;
    assert_eq!(get(&r, "base32"), Some(Value::Sint(want)));
    let mut abs = request();
    abs.uri = Some("http://10.1.2.3:8080/p?q".parse().unwrap());
    assert_eq!(get(&abs, "url"), s("http://10.1.2.3:8080/p?q"));
    assert_eq!(get(&abs, "path"), s("/p"));
    assert_eq!(get(&abs, "url_ip"), Some(Value::Ipv4("10.1.2.3".parse().unwrap())));
    assert_eq!(get(&r, "url_ip"), None);
    let mut no_query = request();
    no_query.uri = Some("/x".parse().unwrap());
    assert_eq!(get(&no_query, "query"), None);
}

#[test]
fn headers_and_cookies() {
    let r = request();
    assert_eq!(get(&r, "req.hdr(host)"), s("Example.com"));
    assert_eq!(get(&r, "hdr(x-list)"), s("e"), "last value by default");
    assert_eq!(get(&r, "hdr(x-list,1)"), s("a"));
    assert_eq!(get(&r, "hdr(x-list,3)"), s("\"c,d\""), "commas inside quotes do not split");
    assert_eq!(get(&r, "hdr(x-list,-2)"), s("\"c,d\""));
    assert_eq!(get(&r, "hdr(x-list,9)"), None);
    // Without a name: every header's values (as HAProxy 2.6: a bare `hdr` gives nothing).
    assert_eq!(get(&r, "hdr(,1)"), s("Example.com"));
    assert_eq!(get(&r, "hdr(,0)"), s("10.0.0.1"));
    assert_eq!(get(&r, "hdr"), None);
    assert_eq!(get(&r, "hdr_cnt"), Some(Value::Sint(8)));
    assert_eq!(get(&r, "req.fhdr(x-list)"), s("\"c,d\", e"));
    assert_eq!(get(&r, "req.fhdr(x-list,1)"), s("a, b"));
    assert_eq!(get(&r, "hdr_cnt(x-list)"), Some(Value::Sint(4)));
    assert_eq!(get(&r, "req.fhdr_cnt(x-list)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "hdr_cnt(nope)"), Some(Value::Sint(0)));
    assert_eq!(get(&r, "req.hdr_names"), s("host,x-list,x-list,cookie,cookie,x-forwarded-for"));
    assert_eq!(get(&r, "req.cook(sid)"), s("2"), "last occurrence");
    assert_eq!(get(&r, "cook(lang)"), s("fr"));
    assert_eq!(get(&r, "cook_cnt(sid)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "req.cook_cnt"), Some(Value::Sint(3)));
    assert_eq!(get(&r, "req.cook(nope)"), None);
    assert_eq!(get(&r, "req.hdr(x-forwarded-for),map_ip(none.map,x)"), s("x"));
    assert_eq!(get(&r, "req.hdr(host),lower"), s("example.com"));
    let mut res = request();
    let mut h = HeaderMap::new();
    h.insert("server", HeaderValue::from_static("nginx"));
    res.res_headers = Some(h);
    res.status = Some(503);
    assert_eq!(get(&res, "res.hdr(server)"), s("nginx"));
    assert_eq!(get(&res, "status"), Some(Value::Sint(503)));
    assert_eq!(get(&r, "status"), None);
}

#[test]
fn request_line_and_body() {
    let r = request();
    assert_eq!(get(&r, "method"), Some(Value::Meth("POST".into())));
    assert_eq!(get(&r, "method,lower"), s("post"));
    assert_eq!(get(&r, "req.ver"), s("1.1"));
    assert_eq!(get(&r, "req.body"), Some(Value::Bin(b"k=v".to_vec())));
    assert_eq!(get(&r, "req.body,length"), Some(Value::Sint(3)));
    assert_eq!(get(&Fake::default(), "method"), None, "no HTTP in TCP mode");
}

#[test]
fn tls_facts() {
    let mut t = request();
    assert_eq!(get(&t, "ssl_fc"), Some(Value::Bool(false)));
    assert_eq!(get(&t, "ssl_fc_sni"), None);
    t.tls = Some(("www.example.com".into(), "TLSv1.3".into(), b"h2".to_vec()));
    assert_eq!(get(&t, "ssl_fc"), Some(Value::Bool(true)));
    assert_eq!(get(&t, "ssl_fc_sni"), s("www.example.com"));
    assert_eq!(get(&t, "ssl_fc_protocol"), s("TLSv1.3"));
    assert_eq!(get(&t, "ssl_fc_alpn"), s("h2"));
}

#[test]
fn tcp_payload_and_client_hello() {
    let mut t = Fake { payload: Some(super::hello::tests::client_hello("WWW.Example.com")), ..Fake::default() };
    assert_eq!(get(&t, "req.ssl_sni,lower"), s("www.example.com"));
    assert_eq!(get(&t, "req_ssl_hello_type"), Some(Value::Sint(1)));
    assert_eq!(get(&t, "req.payload(0,1),hex"), s("16"));
    assert_eq!(get(&t, "req.payload(1,2),hex"), s("0301"));
    t.payload = Some(b"GET / HTTP/1.1\r\n".to_vec());
    assert_eq!(get(&t, "req.ssl_sni"), None);
    assert_eq!(get(&t, "req.payload(0,3)"), Some(Value::Bin(b"GET".to_vec())));
    assert_eq!(get(&t, "req.payload(4,0)"), Some(Value::Bin(b"/ HTTP/1.1\r\n".to_vec())));
    assert_eq!(get(&t, "req.payload(10,100)"), None, "not enough data");
}

#[test]
fn vars_backends_and_process() {
    let mut r = request();
    r.vars.insert(VarRef::parse("txn.host").unwrap(), Value::str("a"));
    r.nbsrv.insert("be".into(), 2);
    r.nbsrv.insert("current".into(), 1);
    assert_eq!(get(&r, "var(txn.host)"), s("a"));
    assert_eq!(get(&r, "var(txn.nope)"), None);
    assert_eq!(get(&r, "var(txn.nope,dflt)"), s("dflt"));
    assert_eq!(get(&r, "var(sess.host)"), None, "scopes are distinct");
    assert_eq!(get(&r, "nbsrv(be)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "nbsrv"), Some(Value::Sint(1)));
    assert_eq!(get(&r, "srv_is_up(be/s1)"), Some(Value::Bool(true)));
    assert_eq!(get(&r, "srv_is_up(s1)"), Some(Value::Bool(false)));
    assert_eq!(get(&r, "http_auth(admins)"), Some(Value::Bool(true)));
    assert_eq!(get(&r, "http_auth(users)"), Some(Value::Bool(false)));
    assert_eq!(get(&r, "be_conn"), None, "the fake does not know");
    assert_eq!(get(&r, "env(HOME)"), s("/root"));
    assert_eq!(get(&r, "date"), Some(Value::Sint(1_500_000_000)));
    assert_eq!(get(&r, "date(10,ms)"), Some(Value::Sint(1_500_000_010_123)));
    assert_eq!(get(&r, "date(0,us)"), Some(Value::Sint(1_500_000_000_123_456)));
    assert_eq!(get(&r, "date,http_date"), s("Fri, 14 Jul 2017 02:40:00 GMT"));
    assert_eq!(get(&r, "rand(10)"), Some(Value::Sint(9)));
    assert_eq!(get(&r, "hostname"), s("lb1"));
    assert_eq!(get(&r, "always_true"), Some(Value::Bool(true)));
    assert_eq!(get(&r, "always_false,not"), Some(Value::Bool(true)));
}

#[test]
fn constants() {
    let f = Fake::default();
    assert_eq!(get(&f, "int(-3)"), Some(Value::Sint(-3)));
    assert_eq!(get(&f, "bool(0)"), Some(Value::Bool(false)));
    assert_eq!(get(&f, "ipv6(2001:db8::1)"), Some(Value::Ipv6("2001:db8::1".parse().unwrap())));
    assert_eq!(get(&f, "bin(00ff)"), Some(Value::Bin(vec![0, 255])));
    assert_eq!(get(&f, r#"str("a b")"#), s("a b"));
}

#[test]
fn acls_see_every_occurrence() {
    let r = request();
    let all = |expr: &str| {
        let e = SampleExpr::parse(expr).unwrap();
        e.eval_all(&r, &MapSet::default()).into_iter().map(|v| v.cast(SmpType::Str)).collect::<Vec<_>>()
    };
    let strs = |v: &[&str]| v.iter().map(|s| Some(Value::str(*s))).collect::<Vec<_>>();
    assert_eq!(all("hdr(x-list)"), strs(&["a", "b", "\"c,d\"", "e"]));
    assert_eq!(all("hdr(x-list,1)"), strs(&["a"]), "a named occurrence is one sample");
    assert_eq!(all("req.fhdr(x-list),upper"), strs(&["A, B", "\"C,D\", E"]));
    assert_eq!(all("req.cook(sid)"), strs(&["1", "2"]));
    assert_eq!(all("urlp(x)"), strs(&["1", "4"]));
    assert_eq!(all("urlp(x),add(1)"), strs(&["2", "5"]));
    assert_eq!(all("path"), strs(&["/a/b.php"]));
    assert_eq!(all("hdr(nope)"), strs(&[]));
    assert_eq!(all("hdr(x-list),b64dec"), strs(&[]), "a converter failing drops the occurrence");
}

#[test]
fn capture_slots() {
    let r = request();
    assert_eq!(get(&r, "capture.req.hdr(1)"), s("example.com"));
    assert_eq!(get(&r, "capture.req.hdr(1),upper"), s("EXAMPLE.COM"));
    assert_eq!(get(&r, "capture.req.hdr(0)"), None);
    assert_eq!(get(&r, "capture.res.hdr(1)"), None);
    for bad in ["capture.req.hdr", "capture.req.hdr(-1)", "capture.req.hdr(x)", "capture.res.hdr(1,2)"] {
        assert!(SampleExpr::parse(bad).is_err(), "{bad}");
    }
}
