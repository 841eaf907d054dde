//! Differential test of `lbha::sample` against the real HAProxy 2.6 (Debian's `haproxy`): every
//! expression is evaluated by HAProxy in `http-request return lf-string "%[...]"` on loopback and
//! by lbha's library on the same request; the two bodies must be equal.

mod common;

use common::{TempDir, free_port, raw};
use http::{HeaderMap, HeaderValue, Method, Uri};
use lbha::sample::{MapSet, MatchKind, SampleContext, SampleExpr, Value, VarRef, parse_map_file};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Expressions whose output is printable text (HAProxy escapes some bytes when rendering a
/// log-format string; that rendering is not what this test compares).
const EXPRS: &[&str] = &[
    "str(aBc),upper",
    "str(aBc),lower,length",
    "str(abc),hex",
    "int(1234),hex",
    "bool(1),hex",
    "ipv4(1.2.3.4),hex",
    "meth(GET),hex",
    "str(abc),base64",
    "int(1234),base64",
    "str(YWJj),b64dec",
    "str(YR==),b64dec",
    "str(YW=j),b64dec",
    "str(a%20b+c),url_dec",
    "str(a%20b+c),url_dec(1)",
    "str(a+b?c+d),url_dec",
    "str(a%zzb),url_dec",
    "str(abc),crc32",
    "str(abc),crc32(1)",
    "str(abc),djb2(1)",
    "str(abc),sdbm(1)",
    "str(abc),xxh64(42)",
    "str(abc),xxh32",
    "str(abc),xxh32(-1)",
    "str(abc),xxh3(42)",
    "str(),xxh3",
    "url_port",
    "str(abc),sha1,hex",
    "str(abc),sha2(384),hex",
    "str(12abc),add(1)",
    "str( 5),add(1)",
    "int(7),div(0)",
    "int(-7),mod(2)",
    "int(-9223372036854775808),div(-1)",
    "int(9223372036854775807),mul(3)",
    "int(-9223372036854775808),sub(1)",
    "int(12),xor(10)",
    "int(3),add(txn.num)",
    "int(3),sub(txn.nope)",
    "int(0),not",
    "int(-3),neg,bool",
    "str(a.b.c.d),field(-2,.,2)",
    "str(a.b.c.d),field(2,.,0)",
    "str(a.b.c.d),field(5,.)",
    "str(..a..b..c),word(-1,.,2)",
    "str(..a..b..c),word(2,.)",
    "str(abcdef),bytes(2,3)",
    "str(abcdef),bytes(1,-1)",
    "str(abcdef),bytes(-1)",
    "str(abc),regsub(x*,-,g)",
    "str(aXbXc),regsub(x,_,ig)",
    "str(hello world),regsub('(\\w+) (\\w+)',\\2-\\1)",
    "str(abc),concat(<,txn.foo,>)",
    "str(abc),strcmp(txn.foo)",
    "str(abe),strcmp(txn.foo)",
    "ipv4(192.168.1.77),ipmask(255.255.0.0)",
    "ipv6(2001:db8::1234),ipmask(24,64)",
    "ipv6(::ffff:192.168.1.77),ipmask(24)",
    "int(1500000000),utime(%Y-%m-%d %H:%M:%S %a %j %U %W %u %p)",
    "int(1500000000),utime(%d/%b/%Y:%T,3600)",
    "int(1500000000),http_date(3600)",
    "int(1500000000),ltime(%Y-%m-%d %H:%M:%S %z %Z,-60)",
    "int(1500000000005),http_date(0,ms)",
    "int(-1),http_date",
    "req.hdr(host),lower,map(MAPS/str.map,none)",
    "str(/api/v2/x),map_beg(MAPS/str.map)",
    "str(a.www.example.org),map_dom(MAPS/str.map)",
    "str(/x/api?y),map_dir(MAPS/str.map)",
    "str(foo.example.com),map_end(MAPS/str.map)",
    "str(spaced),map(MAPS/str.map)",
    "str(10.1.2.3),map_ip(MAPS/ip.map)",
    "ipv6(::ffff:10.1.9.9),map_ip(MAPS/ip.map)",
    "int(7),map_int(MAPS/int.map)",
    "int(500),map_int(MAPS/int.map)",
    "str(/img/a.png),map_reg(MAPS/reg.map)",
    "base",
    "base32",
    "path",
    "pathq",
    "url",
    "query",
    "urlp(x)",
    "urlp(X)",
    "hdr(x-list)",
    "hdr(x-list,1)",
    "hdr(x-list,-2)",
    "hdr(x-list,0)",
    "hdr",
    "hdr(,1)",
    "hdr(,-1)",
    "hdr_cnt",
    "urlp",
    "cook",
    "req.fhdr(x-list)",
    "hdr_cnt(x-list)",
    "req.fhdr_cnt(x-list)",
    "req.cook(sid)",
    "cook_cnt(sid)",
    "req.cook_cnt",
    "req.ver",
    "method",
    "var(txn.foo)",
    // Added with issue 15's second pass.
    "str(a b&c=d/~_.-),url_enc",
    "str(xxabcxy),ltrim(xy)",
    "str(xxabcxy),rtrim(xy)",
    "int(3),even",
    "int(-3),odd",
    "int(5),cpl",
    "bin(01020304050607),be2dec(:,2)",
    "bin(01020304050607),be2dec(-,2,1)",
    "bin(7f000001),be2dec(.,1)",
    "bin(01020304050607),be2hex",
    "bin(01020304050607),be2hex(:,2)",
    "bin(0102030405060708),be2hex(,3,1)",
    "int(258),htonl,hex",
    "str(fF),hex2i",
    "bin(fbff61),ub64enc",
    "str(-_9h),ub64dec,hex",
    "str(abc),digest(sha256),hex",
    "str(abc),digest(sha512),hex",
    "str(abc),hmac(sha256,SmVmZQ==),hex",
    "str(abc),hmac(sha1,txn.key),hex",
    "str(abd),secure_memcmp(txn.foo)",
    "str(abe),secure_memcmp(txn.foo)",
    "str(Example.COM:8080),host_only",
    "str([::1]:80),host_only",
    "str(a:80x),port_only",
    "str(a),add_item(',',txn.foo)",
    "str(),add_item(',',txn.foo,'!')",
    "str(a),add_item(',',,x)",
    "int(1),iif(yes,no)",
    "str(abc),crc32c",
    "str(abc),crc32c(1)",
    "str(hello world),wt6",
    "str(hello world),wt6(1)",
    r#"str('{"a":{"b":[1,{"c":"x\u00e9"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.a.b[1].c')"#,
    r#"str('{"a":{"b":[1,{"c":"x"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.n')"#,
    r#"str('{"a":{"b":[1,{"c":"x"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.n','int')"#,
    r#"str('{"a":{"b":[1,{"c":"x"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.big')"#,
    r#"str('{"a":{"b":[1,{"c":"x"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.t')"#,
    r#"str('{"a":{"b":[1,{"c":"x"}]},"n":1.5,"big":12345678,"t":true}'),json_query('$.a.b')"#,
    r#"str('{"u":"\u20ac"}'),json_query('$.u')"#,
    "str(eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c),jwt_header_query('$.alg')",
    // Not compared: `jwt_payload_query` / `jwt_header_query` without a path. The manual says
    // they give the decoded part, lbha does; HAProxy 2.6.12 gives nothing (a bug fixed later).
    "str(eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c),jwt_payload_query('$.iat','int')",
    "req.hdr(host),lower,map_str_int(MAPS/val.map),add(1)",
    "str(nope),map_str_int(MAPS/val.map,-1)",
    "str(ip),map_str_ip(MAPS/ipval.map)",
    "str(/u/bob/42),map_regm(MAPS/regm.map)",
    "url32",
    "url32+src,hex",
    "base32+src,hex",
    "baseq",
    "http_auth_type",
    "http_auth_user",
    "http_auth_pass",
    "capture.req.ver",
    "req.body_len",
    "req.body_size",
    "cookie(sid)",
    "cook_val(sid)",
    "hdr_val(x-num)",
    "hdr_ip(x-forwarded-for)",
    "req.hdrs,hex",
];

const MAPS: &[(&str, &str)] = &[
    (
        "str.map",
        "example.com be_ex\n.example.org be_org\nwww.example.org be_www\n/api be_api\n/api/v2 be_v2\n# comment\n  spaced   value with  spaces  \n",
    ),
    ("ip.map", "10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n10.1.2.3 host\n2001:db8::/32 doc\n192.168.0.0/16 private\n"),
    ("int.map", "1:10 low\n5 five\n100: high\n"),
    ("reg.map", "^/img/.*\\.png$ png\n^/img/ img\n"),
    ("val.map", "example.com 12\n"),
    ("ipval.map", "ip 192.0.2.9\n"),
    ("regm.map", "^/u/([a-z]+)/([0-9]+)$ user=\\1&id=\\2\n"),
];

const HEADERS: &[(&str, &str)] = &[
    ("host", "Example.com"),
    ("x-list", "a, b"),
    ("x-list", "\"c,d\", e"),
    ("cookie", "sid=1; lang=fr"),
    ("cookie", "sid=2"),
    ("authorization", "Basic YWw6cHc6eA=="),
    ("x-num", "42"),
    ("x-forwarded-for", "192.0.2.1, 2001:db8::7"),
];

/// The request as lbha's library sees it.
struct Req {
    uri: Uri,
    headers: HeaderMap,
}

impl SampleContext for Req {
    fn src(&self) -> Option<std::net::SocketAddr> {
        Some("127.0.0.1:1".parse().unwrap())
    }
    fn method(&self) -> Option<&Method> {
        Some(&Method::GET)
    }
    fn uri(&self) -> Option<&Uri> {
        Some(&self.uri)
    }
    fn version(&self) -> Option<http::Version> {
        Some(http::Version::HTTP_11)
    }
    fn req_headers(&self) -> Option<&HeaderMap> {
        Some(&self.headers)
    }
    fn var(&self, var: &VarRef) -> Option<Value> {
        match var.name.as_str() {
            "foo" => Some(Value::str("abd")),
            "num" => Some(Value::Sint(7)),
            "key" => Some(Value::str("SmVmZQ==")),
            _ => None,
        }
    }
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy_bin() -> &'static str {
    common::haproxy_bin().expect("this test compares with the real HAProxy 2.6: apt-get install haproxy")
}

#[test]
fn expressions_evaluate_as_in_haproxy() {
    let dir = TempDir::new("sample-haproxy");
    let maps_dir = dir.0.display().to_string();
    let mut set = MapSet::default();
    for (name, text) in MAPS {
        dir.write(name, text);
    }
    let exprs: Vec<String> = EXPRS.iter().map(|e| e.replace("MAPS", &maps_dir)).collect();
    let port = free_port();
    let mut cfg = format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  http-request set-var(txn.foo) str(abd)\n  http-request set-var(txn.num) int(7)\n  http-request set-var(txn.key) str(SmVmZQ==)\n"
    );
    for (i, e) in exprs.iter().enumerate() {
        let quoted = e.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$");
        cfg.push_str(&format!(
            "  http-request return status 200 content-type text/plain lf-string \"[%[{quoted}]]\" if {{ path_beg /{i}/ }}\n"
        ));
        let parsed = SampleExpr::parse(e).unwrap_or_else(|err| panic!("lbha rejects `{e}`: {err}"));
        for r in parsed.map_refs() {
            let lbha::sample::FileRef::Map(path, kind, _) = r else { continue };
            let entries = parse_map_file(&std::fs::read(path).unwrap(), false);
            set.insert(path, kind, &entries).unwrap();
        }
    }
    assert!(set.get(&format!("{maps_dir}/str.map"), MatchKind::Beg).is_some());
    let cfg_path = dir.write("haproxy.cfg", &cfg);
    let check = Command::new(haproxy_bin()).arg("-c").arg("-f").arg(&cfg_path).output().expect("run haproxy -c");
    assert!(check.status.success(), "haproxy refuses the configuration:\n{}", String::from_utf8_lossy(&check.stderr));
    let child = Command::new(haproxy_bin())
        .args(["-db", "-f"])
        // lbha's library defaults to UTC for `ltime`; make HAProxy's local time the same.
        .env("TZ", "UTC")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn haproxy");
    let mut hap = Haproxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(hap.0.try_wait().unwrap().is_none(), "haproxy exited; config:\n{cfg}");
        assert!(Instant::now() < deadline, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut mismatches = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let target = format!("/{i}/a/b.php?x=1&y=2&X=3&x=4");
        let mut req = format!("GET {target} HTTP/1.1\r\n");
        let mut headers = HeaderMap::new();
        for (n, v) in HEADERS {
            req.push_str(&format!("{n}: {v}\r\n"));
            headers.append(*n, HeaderValue::from_static(v));
        }
        req.push_str("connection: close\r\n\r\n");
        let theirs = raw(port, req.as_bytes()).expect("haproxy answers");
        assert_eq!(theirs.status, 200, "{e}");
        let ctx = Req { uri: target.parse().unwrap(), headers };
        let expr = SampleExpr::parse(e).unwrap();
        let ours = [b"[".as_slice(), &expr.eval_str(&ctx, &set).unwrap_or_default(), b"]"].concat();
        if ours != theirs.body {
            mismatches.push(format!(
                "{e}\n  haproxy: {}\n  lbha:    {}",
                String::from_utf8_lossy(&theirs.body),
                String::from_utf8_lossy(&ours)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), exprs.len(), mismatches.join("\n"));
}

#[test]
fn haproxy_and_lbha_reject_the_same_expressions() {
    let dir = TempDir::new("sample-haproxy-bad");
    let bad = [
        "str(a),lower(x)",
        "str(a),field(0,.)",
        "ipv6(::1),add(1)",
        "meth(GET),add(1)",
        "str(a),json(foo)",
        "str(a),regsub(a,b,x)",
        "str(a),nope",
        "str(a),add(x1)",
        "str(a),field(1,)",
        "bin(0)",
        "nofetch",
        "str(a),sha2(100)",
        "str(a),concat(a,b)",
        "str(a),http_date(0,h)",
        "str(a),word(1,.,x)",
        "src,ipmask(33)",
        "req.hdr(host,x)",
        "var(foo)",
        "str(a),field(1,.,2,3)",
        "str(a",
        "str(a),url_enc(path)",
        "str(a),digest(nope)",
        "str(a),hmac(sha256,!)",
        "str(a),json_query('')",
        "str(a),json_query('$.a',str)",
        "bin(01),be2dec(:,9)",
        "bin(01),be2hex(:,0)",
        "str(a),add_item(',')",
        "str(a),secure_memcmp(foo)",
        "str(a),set-var(txn.x,ifbogus)",
        "uuid(3)",
        "str(a),iif(x)",
        "req.payload_lv(0,0)",
        "req.payload_lv(-1,1)",
        "req.payload_lv(1,1,x)",
        "req.payload_lv(1,1,-5)",
        "srv_sess_rate",
    ];
    for e in bad {
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:{}\n  \
             http-request return status 200 content-type text/plain lf-string \"%[{e}]\"\n",
            free_port()
        );
        let path = dir.write("bad.cfg", &cfg);
        let out = Command::new(haproxy_bin()).arg("-c").arg("-f").arg(&path).output().expect("run haproxy -c");
        assert!(!out.status.success(), "haproxy accepts `{e}`");
        assert!(SampleExpr::parse(e).is_err(), "lbha accepts `{e}`");
    }
}
