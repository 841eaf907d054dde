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
    pub res_payload: Option<Vec<u8>>,
    pub body: Option<Vec<u8>>,
    pub tls: Option<(String, String, Vec<u8>)>,
    pub nbsrv: HashMap<String, i64>,
    /// What `set-var` / `unset-var` converters wrote, in order (read back by `var`).
    pub written: std::cell::RefCell<Vec<(VarRef, Option<Value>)>>,
    /// The backend and the server (`be_name`, `srv_name`, `srv_id`, `queue`, ...).
    pub server: Option<(&'static str, &'static str, i64)>,
    pub res_version: Option<Version>,
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
    fn res_payload(&self) -> Option<&[u8]> {
        self.res_payload.as_deref()
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
        match self.written.borrow().iter().rev().find(|(v, _)| v == var) {
            Some((_, x)) => x.clone(),
            None => self.vars.get(var).cloned(),
        }
    }
    fn set_var(&self, var: &VarRef, value: Option<Value>) -> bool {
        self.written.borrow_mut().push((var.clone(), value));
        true
    }
    fn proxy_name(&self, role: Role) -> Option<&str> {
        match role {
            Role::Frontend => Some("fe"),
            Role::Backend => self.server.map(|s| s.0),
            Role::Server => self.server.map(|s| s.1),
        }
    }
    fn server_id(&self) -> Option<i64> {
        self.server.map(|s| s.2)
    }
    fn proxy_id(&self, role: Role) -> Option<i64> {
        match role {
            Role::Frontend => Some(3),
            _ => self.server.map(|_| 7),
        }
    }
    fn uuid(&self) -> Option<String> {
        Some("9d955481-b327-4e1a-b8b3-70198c820aed".into())
    }
    fn tls_cipher(&self) -> Option<&str> {
        self.tls.as_ref().map(|_| "TLS_AES_256_GCM_SHA384")
    }
    fn tls_resumed(&self) -> Option<bool> {
        Some(false)
    }
    fn res_version(&self) -> Option<Version> {
        self.res_version
    }
    fn queue(&self, backend: Option<&str>) -> Option<i64> {
        (backend.or(self.server.map(|s| s.0)) == Some("be")).then_some(5)
    }
    fn avg_queue(&self, backend: Option<&str>) -> Option<i64> {
        Some(avg_queue(self.queue(backend)?, 2))
    }
    fn srv_conn(&self, backend: Option<&str>, server: &str, queue: bool) -> Option<i64> {
        (backend == Some("be") && server == "s1").then_some(if queue { 1 } else { 3 })
    }
    fn http_auth(&self, userlist: &str) -> Option<bool> {
        Some(userlist == "admins")
    }
    fn fe_rate(&self, frontend: Option<&str>, requests: bool) -> Option<i64> {
        (frontend.unwrap_or("fe") == "fe").then_some(if requests { 7 } else { 4 })
    }
    fn sess_rate(&self, backend: Option<&str>, server: Option<&str>) -> Option<i64> {
        (backend.or(self.server.map(|s| s.0)) == Some("be")).then_some(if server == Some("s1") { 1 } else { 2 })
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
    t.payload = Some(b"\x00\x03abcdef".to_vec());
    assert_eq!(get(&t, "req.payload_lv(0,2)"), Some(Value::Bin(b"abc".to_vec())));
    assert_eq!(get(&t, "res.payload_lv(0,2)"), None, "the request's bytes are not the response's");
}

#[test]
fn url_port_reads_an_absolute_target_as_haproxy_does() {
    // Checked against HAProxy 2.6: an IPv4 host of an http(s) target, 80/443 by default.
    for (target, want) in [
        ("http://127.0.0.1:8080/x", Some(8080)),
        ("http://127.0.0.1/x", Some(80)),
        ("https://127.0.0.1/x", Some(443)),
        ("HTTP://127.0.0.1:83/x", Some(83)),
        ("http://localhost:81/x", None),
        ("http://[::1]:82/x", None),
        ("ftp://127.0.0.1:84/x", None),
        ("/x", None),
    ] {
        let t = Fake { uri: Some(target.parse().unwrap()), ..Fake::default() };
        assert_eq!(get(&t, "url_port"), want.map(Value::Sint), "{target}");
    }
}

#[test]
fn response_payload_fetches_read_the_servers_bytes() {
    let mut t = Fake { res_payload: Some(b"EVIL banner".to_vec()), ..Fake::default() };
    assert_eq!(get(&t, "res.len"), Some(Value::Sint(11)));
    assert_eq!(get(&t, "res.payload(0,4)"), Some(Value::Bin(b"EVIL".to_vec())));
    assert_eq!(get(&t, "res.payload(5,0)"), Some(Value::Bin(b"banner".to_vec())));
    assert_eq!(get(&t, "res.payload(5,10)"), None, "not enough data yet");
    assert_eq!(get(&t, "req.len"), None, "no request bytes in this context");
    assert_eq!(get(&t, "res.payload_lv(5,1)"), None, "a length of 98 (`b`): not all there");
    t.res_payload = Some(b"\x03abcdef".to_vec());
    assert_eq!(get(&t, "res.payload_lv(0,1)"), Some(Value::Bin(b"abc".to_vec())));
    assert_eq!(get(&t, "res.payload_lv(0,1,4)"), Some(Value::Bin(b"def".to_vec())));
    assert_eq!(get(&t, "res.ssl_hello_type"), None);
    // A ServerHello record is handshake type 2.
    let mut hello = vec![0x16, 3, 3, 0, 8, 2, 0, 0, 4];
    hello.extend_from_slice(&[3, 3, 0, 0]);
    t.res_payload = Some(hello);
    assert_eq!(get(&t, "rep_ssl_hello_type"), Some(Value::Sint(2)));
    assert_eq!(get(&t, "res.ssl_hello_type"), Some(Value::Sint(2)));
    for bad in ["res.payload_lv(0,0)", "res.payload_lv(-1,1)", "res.payload_lv(1,1,x)", "res.payload_lv(1,1,-5)"] {
        assert!(SampleExpr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn rdp_cookie_of_the_first_bytes() {
    let mut req = vec![3, 0, 0, 0x2c, 0x27, 0xe0, 0, 0, 0, 0, 0];
    req.extend_from_slice(b"Cookie: mstshash=Alice\r\n");
    let mut t = Fake { payload: Some(req), ..Fake::default() };
    assert_eq!(get(&t, "req.rdp_cookie(mstshash)"), s("Alice"));
    assert_eq!(get(&t, "rdp_cookie(MSTSHASH),lower"), s("alice"));
    assert_eq!(get(&t, "req.rdp_cookie"), s("mstshash=Alice"));
    assert_eq!(get(&t, "req.rdp_cookie(msts)"), None);
    assert_eq!(get(&t, "req.rdp_cookie_cnt"), Some(Value::Sint(1)));
    assert_eq!(get(&t, "req.rdp_cookie_cnt(msts)"), Some(Value::Sint(0)));
    t.payload = Some(vec![3, 0, 0]);
    assert_eq!(get(&t, "req.rdp_cookie_cnt"), None, "not enough data yet");
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

#[test]
fn proxy_server_and_tls_facts() {
    let mut r = request();
    assert_eq!(get(&r, "fe_name"), s("fe"));
    assert_eq!(get(&r, "be_name"), None, "no backend yet");
    assert_eq!(get(&r, "be_id"), None, "no backend yet");
    assert_eq!(get(&r, "srv_name"), None);
    r.server = Some(("be", "s1", 2));
    assert_eq!(get(&r, "be_name"), s("be"));
    assert_eq!(get(&r, "srv_name"), s("s1"));
    assert_eq!(get(&r, "srv_id"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "fe_id"), Some(Value::Sint(3)));
    assert_eq!(get(&r, "be_id"), Some(Value::Sint(7)));
    assert!(SampleExpr::parse("be_id(x)").is_err());
    assert_eq!(get(&r, "fe_sess_rate"), Some(Value::Sint(4)));
    assert_eq!(get(&r, "fe_req_rate(fe)"), Some(Value::Sint(7)));
    assert_eq!(get(&r, "fe_sess_rate(other)"), None);
    assert_eq!(get(&r, "be_sess_rate"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "srv_sess_rate(be/s1)"), Some(Value::Sint(1)));
    assert!(SampleExpr::parse("srv_sess_rate").is_err(), "a server is required");
    assert_eq!(get(&r, "uuid"), s("9d955481-b327-4e1a-b8b3-70198c820aed"));
    assert_eq!(get(&r, "uuid(4)"), s("9d955481-b327-4e1a-b8b3-70198c820aed"));
    assert!(SampleExpr::parse("uuid(3)").is_err());
    assert_eq!(get(&r, "queue"), Some(Value::Sint(5)));
    assert_eq!(get(&r, "queue(other)"), None);
    assert_eq!(get(&r, "avg_queue(be)"), Some(Value::Sint(3)), "5 over 2 servers, rounded up");
    assert_eq!(get(&r, "srv_conn(be/s1)"), Some(Value::Sint(3)));
    assert_eq!(get(&r, "srv_queue(be/s1)"), Some(Value::Sint(1)));
    assert_eq!(get(&r, "srv_conn(be/s2)"), None);
    assert_eq!(avg_queue(4, 0), 8, "no usable server: twice the queue, as HAProxy");
    assert_eq!(get(&r, "ssl_fc_has_sni"), Some(Value::Bool(false)), "plain connection");
    assert_eq!(get(&r, "ssl_fc_cipher"), None);
    r.tls = Some(("example.com".into(), "TLSv1.3".into(), b"h2".to_vec()));
    assert_eq!(get(&r, "ssl_fc_has_sni"), Some(Value::Bool(true)));
    assert_eq!(get(&r, "ssl_fc_cipher"), s("TLS_AES_256_GCM_SHA384"));
    assert_eq!(get(&r, "ssl_fc_is_resumed"), Some(Value::Bool(false)));
}

#[test]
fn hashes_with_the_source() {
    let r = request();
    let base = super::codec::full_hash(super::codec::sdbm(b"Example.com/a/b.php"));
    let url = super::codec::full_hash(super::codec::sdbm(b"Example.com/a/b.php?x=1&y=2&X=3&x=4"));
    assert_eq!(get(&r, "url32"), Some(Value::Sint(url as i64)));
    let with_src = |h: u32| Some(Value::Bin([h.to_be_bytes().as_slice(), &[192, 0, 2, 7]].concat()));
    assert_eq!(get(&r, "base32+src"), with_src(base));
    assert_eq!(get(&r, "url32+src"), with_src(url));
    assert_eq!(get(&r, "baseq"), s("Example.com/a/b.php?x=1&y=2&X=3&x=4"));
}

#[test]
fn body_auth_and_lines() {
    let mut r = request();
    r.body = Some(b"a=1&B=2&a=3".to_vec());
    assert_eq!(get(&r, "req.body_param(a)"), Some(Value::Bin(b"1".to_vec())));
    assert_eq!(get(&r, "req.body_param(b)"), None);
    assert_eq!(get(&r, "req.body_param(b,i)"), Some(Value::Bin(b"2".to_vec())));
    assert_eq!(get(&r, "req.body_param"), Some(Value::Bin(b"1".to_vec())));
    assert_eq!(get(&r, "req.body_len"), Some(Value::Sint(11)));
    assert_eq!(get(&r, "req.body_size"), Some(Value::Sint(11)));
    r.headers.as_mut().unwrap().insert("content-length", HeaderValue::from_static("99"));
    assert_eq!(get(&r, "req.body_size"), Some(Value::Sint(99)), "as announced");
    r.body = None;
    assert_eq!(get(&r, "req.body_len"), Some(Value::Sint(0)), "nothing buffered");
    assert_eq!(get(&r, "req.body_param(a)"), None);

    let h = r.headers.as_mut().unwrap();
    h.insert("authorization", HeaderValue::from_static("Basic YWw6cHc6eA=="));
    assert_eq!(get(&r, "http_auth_type"), s("Basic"));
    assert_eq!(get(&r, "http_auth_user"), s("al"));
    assert_eq!(get(&r, "http_auth_pass"), s("pw:x"));
    assert_eq!(get(&r, "http_auth_bearer"), None);
    let h = r.headers.as_mut().unwrap();
    h.insert("authorization", HeaderValue::from_static("bearer   abc.def"));
    h.insert("x-token", HeaderValue::from_static("Bearer t1"));
    assert_eq!(get(&r, "http_auth_type"), s("Bearer"));
    assert_eq!(get(&r, "http_auth_bearer"), s("abc.def"));
    assert_eq!(get(&r, "http_auth_bearer(x-token)"), s("t1"));
    assert_eq!(get(&r, "http_auth_user"), None);
    r.headers.as_mut().unwrap().insert("authorization", HeaderValue::from_static("Digest x"));
    assert_eq!(get(&r, "http_auth_type"), None, "only Basic and Bearer");

    assert_eq!(get(&r, "capture.req.method"), s("POST"));
    assert_eq!(get(&r, "capture.req.uri"), s("/a/b.php?x=1&y=2&X=3&x=4"));
    assert_eq!(get(&r, "capture.req.ver"), s("HTTP/1.1"));
    assert_eq!(get(&r, "capture.res.ver"), None);
    let mut h = HeaderMap::new();
    h.insert("a", HeaderValue::from_static("1"));
    h.append("b", HeaderValue::from_static("x, y"));
    let small = Fake { headers: Some(h), ..Fake::default() };
    assert_eq!(get(&small, "req.hdrs"), Some(Value::Bin(b"a: 1\r\nb: x, y\r\n\r\n".to_vec())));
}

#[test]
fn response_cookies_headers_and_typed_headers() {
    let mut r = request();
    let mut h = HeaderMap::new();
    h.append("set-cookie", HeaderValue::from_static("sid=abc; Path=/; HttpOnly"));
    h.append("set-cookie", HeaderValue::from_static("n=42"));
    h.append("set-cookie", HeaderValue::from_static("sid=def"));
    h.append("x-n", HeaderValue::from_static("7, 8"));
    h.append("x-ip", HeaderValue::from_static("2001:db8::1"));
    r.res_headers = Some(h);
    assert_eq!(get(&r, "res.cook(sid)"), s("def"), "last occurrence");
    assert_eq!(get(&r, "scook"), s("abc"), "first without a name");
    assert_eq!(get(&r, "set-cookie(n)"), s("42"));
    assert_eq!(get(&r, "res.cook_cnt(sid)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "scook_cnt"), Some(Value::Sint(3)));
    assert_eq!(get(&r, "res.cook_val(n)"), Some(Value::Sint(42)));
    assert_eq!(get(&r, "cook_val(sid)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "cookie(sid)"), s("2"), "request rules: the request's");
    r.status = Some(200);
    assert_eq!(get(&r, "cookie(sid)"), s("def"), "response rules: the response's");
    assert_eq!(get(&r, "res.hdr_cnt(x-n)"), Some(Value::Sint(2)));
    assert_eq!(get(&r, "res.fhdr_cnt(x-n)"), Some(Value::Sint(1)));
    assert_eq!(get(&r, "shdr_cnt"), Some(Value::Sint(6)));
    assert_eq!(get(&r, "res.hdr_names(;)"), s("set-cookie;set-cookie;set-cookie;x-n;x-ip"));
    assert_eq!(get(&r, "res.hdr_val(x-n)"), Some(Value::Sint(8)));
    assert_eq!(get(&r, "shdr_val(x-n,1)"), Some(Value::Sint(7)));
    assert_eq!(get(&r, "res.hdr_ip(x-ip)"), Some(Value::Ipv6("2001:db8::1".parse().unwrap())));
    assert_eq!(get(&r, "hdr_ip(x-forwarded-for)"), Some(Value::Ipv4("10.0.0.1".parse().unwrap())));
    assert_eq!(get(&r, "req.hdr_val(host)"), Some(Value::Sint(0)), "no digits: 0, as HAProxy's cast");
    assert_eq!(get(&r, "hdr_ip(host)"), None);
    assert_eq!(get(&r, "res.hdrs,length"), Some(Value::Sint(110)));
    r.res_version = Some(Version::HTTP_2);
    assert_eq!(get(&r, "res.ver"), s("2.0"));
    assert_eq!(get(&r, "capture.res.ver"), s("HTTP/2.0"));
    // ACLs see every occurrence, typed.
    let all = SampleExpr::parse("res.hdr_val(x-n)").unwrap().eval_all(&r, &MapSet::default());
    assert_eq!(all, vec![Value::Sint(7), Value::Sint(8)]);
}

#[test]
fn every_fetch_says_what_it_reads() {
    for (expr, reads) in [
        ("src", Reads::Internal),
        ("var(txn.x)", Reads::Internal),
        ("path", Reads::HttpRequest),
        ("req.body_param(a)", Reads::HttpRequest),
        ("http_auth_bearer", Reads::HttpRequest),
        ("capture.req.uri", Reads::HttpRequest),
        ("status", Reads::HttpResponse),
        ("res.cook(a)", Reads::HttpResponse),
        ("capture.res.ver", Reads::HttpResponse),
        ("cookie(a)", Reads::Http),
        ("req.len", Reads::Payload),
        ("req.ssl_sni", Reads::Payload),
        ("req.payload_lv(0,1)", Reads::Payload),
        ("res.len", Reads::ResPayload),
        ("res.payload(0,1)", Reads::ResPayload),
        ("res.payload_lv(0,1)", Reads::ResPayload),
        ("rep_ssl_hello_type", Reads::ResPayload),
        ("ssl_fc_cipher", Reads::Tls),
        ("ssl_c_used", Reads::Tls),
        ("srv_name", Reads::Server),
        ("srv_id", Reads::Server),
        ("be_name", Reads::Internal),
    ] {
        assert_eq!(SampleExpr::parse(expr).unwrap().fetch.reads(), reads, "{expr}");
    }
    let f = SampleExpr::parse("srv_queue(be/s1)").unwrap().fetch;
    assert_eq!(f.backend_arg(), Some(Some("be")));
    assert_eq!(SampleExpr::parse("queue").unwrap().fetch.backend_arg(), Some(None));
    assert_eq!(SampleExpr::parse("path").unwrap().fetch.backend_arg(), None);
}
