//! Converters and the expression parser, end to end. Expected values were printed by HAProxy
//! 2.6.12 for the same expression in `http-request return lf-string "%[...]"` (TZ=UTC), unless
//! a comment says otherwise.

use super::tests_fetch::Fake;
use super::*;

fn fake() -> Fake {
    let mut f = Fake::default();
    f.vars.insert(VarRef::parse("txn.foo").unwrap(), Value::str("abd"));
    f.vars.insert(VarRef::parse("txn.num").unwrap(), Value::Sint(7));
    f
}

fn maps() -> MapSet {
    let mut m = MapSet::default();
    let str_map = b"example.com be_ex\n.example.org be_org\nwww.example.org be_www\n/api be_api\n/api/v2 be_v2\n# comment\n  spaced   value with  spaces  \n";
    let entries = parse_map_file(str_map, false);
    for kind in [MatchKind::Str, MatchKind::Beg, MatchKind::End, MatchKind::Sub, MatchKind::Dir, MatchKind::Dom] {
        m.insert("str.map", kind, &entries).unwrap();
    }
    let ip_map = b"10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n10.1.2.3 host\n::ffff:192.168.0.0/112 v6mapped\n2001:db8::/32 doc\n192.168.0.0/16 private\n";
    m.insert("ip.map", MatchKind::Ip, &parse_map_file(ip_map, false)).unwrap();
    m.insert("int.map", MatchKind::Int, &parse_map_file(b"1:10 low\n5 five\n100: high\n", false)).unwrap();
    m.insert("reg.map", MatchKind::Reg, &parse_map_file(b"^/img/.*\\.png$ png\n^/img/ img\n", false)).unwrap();
    m
}

/// Evaluates `expr` as a log-format field renders it: cast to a string, nothing when absent.
fn eval(expr: &str) -> Option<String> {
    let e = SampleExpr::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
    e.eval_str(&fake(), &maps()).map(|s| String::from_utf8_lossy(&s).into_owned())
}

fn check(cases: &[(&str, &str)]) {
    for (expr, want) in cases {
        assert_eq!(eval(expr).as_deref(), Some(*want), "{expr}");
    }
}

fn fails(exprs: &[&str]) {
    for expr in exprs {
        assert_eq!(eval(expr), None, "{expr} should give no sample");
    }
}

#[test]
fn case_length_and_hex() {
    check(&[
        ("str(aBc),upper", "ABC"),
        ("str(aBc),lower", "abc"),
        ("str(AbC),lower,upper,length", "3"),
        ("str(abc),length", "3"),
        ("str(abc),hex", "616263"),
        ("int(1234),hex", "00000000000004D2"),
        ("bool(1),hex", "0000000000000001"),
        ("ipv4(1.2.3.4),hex", "01020304"),
        ("ipv6(::1),hex", "00000000000000000000000000000001"),
        ("meth(GET),hex", "474554"),
        ("bin(00ff41),hex", "00FF41"),
    ]);
}

#[test]
fn base64_and_url_dec() {
    check(&[
        ("str(abc),base64", "YWJj"),
        ("int(1234),base64", "AAAAAAAABNI="),
        ("bin(0041ff),base64", "AEH/"),
        ("str(YWJj),b64dec", "abc"),
        ("str(YQ==),b64dec", "a"),
        ("str(YR==),b64dec", "a"),
        ("str(a%20b+c),url_dec", "a b+c"),
        ("str(a%20b+c),url_dec(1)", "a b c"),
        ("str(a+b?c+d),url_dec", "a+b?c d"),
    ]);
    fails(&["str(YW=j),b64dec", "str(YWJ),b64dec", "str(a%zzb),url_dec"]);
}

#[test]
fn hashes() {
    check(&[
        ("str(abc),crc32", "891568578"),
        ("str(abc),crc32()", "891568578"),
        ("str(abc),crc32(1)", "930845320"),
        ("str(abc),djb2", "193485963"),
        ("str(abc),djb2(1)", "2235766107"),
        ("str(abc),sdbm", "807794786"),
        ("str(abc),sdbm(1)", "659243622"),
        ("str(abc),xxh64", "4952883123889572249"),
        ("str(abc),xxh64(42)", "1423657621850124518"),
        // HAProxy 2.6's answers.
        ("str(abc),xxh32", "852579327"),
        ("str(abc),xxh32(42)", "21474302"),
        ("str(abc),xxh32(-1)", "2989167648"),
        ("str(abc),xxh3", "8696274497037089104"),
        ("str(abc),xxh3(42)", "-2863288879874843453"),
        ("str(),xxh3", "3244421341483603138"),
        ("str(abc),sha1,hex", "A9993E364706816ABA3E25717850C26C9CD0D89D"),
        ("str(abc),sha2,hex", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
        ("str(abc),sha2(224),hex", "23097D223405D8228642A477BDA255B32AADBCE4BDA0B3F7E36C9DA7"),
        (
            "str(abc),sha2(512),hex",
            "DDAF35A193617ABACC417349AE20413112E6FA4E89A97EA20A9EEEE64B55D39A2192992A274FC1A836BA3C23A3FEEBBD454D4423643CE80E2A9AC94FA54CA49F",
        ),
    ]);
}

#[test]
fn arithmetic_saturates_like_haproxy() {
    check(&[
        ("str(12abc),add(1)", "13"),
        ("str(abc),add(1)", "1"),
        ("str(-5),add(1)", "-4"),
        ("str( 5),add(1)", "1"),
        ("int(7),div(0)", "9223372036854775807"),
        ("int(7),mod(0)", "0"),
        ("int(-7),div(2)", "-3"),
        ("int(-7),mod(2)", "-1"),
        ("int(-5),mod(3)", "-2"),
        ("int(5),mod(-3)", "2"),
        ("int(3),mul(-2)", "-6"),
        ("int(9223372036854775807),add(1)", "9223372036854775807"),
        ("int(-9223372036854775808),sub(1)", "-9223372036854775808"),
        ("int(-9223372036854775808),div(-1)", "9223372036854775807"),
        ("int(-9223372036854775808),neg", "9223372036854775807"),
        ("str(123456789012345678901234),add(0)", "9223372036854775807"),
        ("int(12),and(10)", "8"),
        ("int(12),or(3)", "15"),
        ("int(12),xor(10)", "6"),
        ("int(5),neg", "-5"),
        ("int(5),not", "0"),
        ("int(0),not", "1"),
        ("int(5),bool", "1"),
        ("int(12),neg,bool", "1"),
        ("ipv4(10.0.0.1),add(1)", "167772162"),
        ("ipv4(1.2.3.4),add(1)", "16909061"),
        ("int(3),add(txn.num)", "10"),
        ("int(3),mul(txn.foo)", "0"),
    ]);
    fails(&["int(3),sub(txn.nope)"]);
}

#[test]
fn field_word_bytes() {
    check(&[
        ("str(a.b.c),field(2,.)", "b"),
        ("str(a.b.c),field(-1,.)", "c"),
        ("str(a.b.c),field(2,.,0)", "b.c"),
        ("str(a.b.c.d),field(2,.,2)", "b.c"),
        ("str(a.b.c.d),field(-2,.,2)", "b.c"),
        ("str(a.b.c.d),field(-2,.,0)", "a.b.c"),
        ("str(a.b;c.d),field(2,.;)", "b"),
        ("str(),field(1,.)", ""),
        ("str(a..b.c),word(2,.)", "b"),
        ("str(..a..b..),word(1,.)", "a"),
        ("str(..a..b..),word(-1,.)", "b"),
        ("str(..a..b..c),word(-1,.,2)", "b..c"),
        ("str(..a..b..c),word(2,.,0)", "b..c"),
        ("str(abcdef),bytes(2)", "cdef"),
        ("str(abcdef),bytes(2,3)", "cde"),
        ("str(abcdef),bytes(6)", ""),
        ("str(abcdef),bytes(0,100)", "abcdef"),
        ("str(abcdef),bytes(0,0)", ""),
        ("str(abcdef),bytes(1,-1)", "bcdef"),
    ]);
    fails(&["str(a.b.c.d),field(5,.)", "str(a.b.c.d),field(-5,.)", "str(..a..b..),word(3,.)", "str(abcdef),bytes(-1)"]);
}

#[test]
fn regsub_json_concat_strcmp() {
    check(&[
        ("str(aaa),regsub(a,b,g)", "bbb"),
        ("str(aaa),regsub(a,b)", "baa"),
        ("str(abc),regsub(x*,-,g)", "-a-b-c-"),
        ("str(abc),regsub(b,-)", "a-c"),
        ("str(aXbXc),regsub(x,_,ig)", "a_b_c"),
        (r#"str(hello world),regsub("(\w+) (\w+)",\\2-\\1)"#, "world-hello"),
        (r"str(abc),regsub(^,>,g)", ">abc"),
        (r"str(abc),regsub(b,\\x41\\0)", "aAbc"),
        ("str(abc),concat(<,txn.foo,>)", "abc<abd>"),
        ("str(abc),concat(,txn.num)", "abc7"),
        ("str(abc),concat(<,txn.nope,>)", "abc<>"),
        ("str(abc),strcmp(txn.foo)", "-1"),
        ("str(abe),strcmp(txn.foo)", "1"),
        ("str(abd),strcmp(txn.foo)", "0"),
        ("str(ab),strcmp(txn.foo)", "-1"),
    ]);
    fails(&["str(abc),strcmp(txn.nope)"]);
    // Escaping per the converter's source (sample_conv_json): control bytes as \u00XX.
    check(&[
        (r#"str('a"b/c'),json"#, r#"a\"b\/c"#),
        ("str(é),json(utf8s)", r"\u00e9"),
        ("str(é),json", r"\u00c3\u00a9"),
    ]);
}

#[test]
fn ipmask() {
    check(&[
        ("ipv4(192.168.1.77),ipmask(24)", "192.168.1.0"),
        ("ipv4(192.168.1.77),ipmask(255.255.0.0)", "192.168.0.0"),
        ("ipv6(2001:db8::1234),ipmask(24,64)", "2001:db8::"),
        ("ipv6(::ffff:192.168.1.77),ipmask(24)", "192.168.1.0"),
        ("str(10.1.2.3),ipmask(8)", "10.0.0.0"),
        ("int(3),ipmask(24)", "0.0.0.0"),
    ]);
    fails(&["ipv6(2001:db8::1),ipmask(24)"]);
}

#[test]
fn dates() {
    check(&[
        ("int(1500000000),utime(%Y-%m-%d %H:%M:%S)", "2017-07-14 02:40:00"),
        (
            "int(1500000000),utime(%a %e %j %U %W %u %w %C %y %I %p %s %%)",
            "Fri 14 195 28 28 5 5 20 17 02 AM 1500000000 %",
        ),
        ("int(1500000000),utime(%Z %z)", "GMT +0000"),
        ("int(1500000000),utime(%d/%b/%Y:%H:%M:%S,3600)", "14/Jul/2017:03:40:00"),
        ("int(1500000000),ltime(%Y-%m-%dT%H:%M:%S %z %Z)", "2017-07-14T02:40:00 +0000 UTC"),
        ("str(abc),ltime()", ""),
        ("int(1500000000),http_date", "Fri, 14 Jul 2017 02:40:00 GMT"),
        ("int(1500000000),http_date(3600)", "Fri, 14 Jul 2017 03:40:00 GMT"),
        ("int(1500000000123),http_date(0,ms)", "Fri, 14 Jul 2017 02:40:00.123 GMT"),
        ("int(1500000000005),http_date(0,ms)", "Fri, 14 Jul 2017 02:40:00.5 GMT"),
        ("int(1500000000000005),http_date(0,us)", "Fri, 14 Jul 2017 02:40:00.5 GMT"),
        ("int(-1),http_date", "Sun, 13 Jun 1141709097 06:26:07 GMT"),
    ]);
}

#[test]
fn maps_with_defaults() {
    check(&[
        ("str(example.com),map(str.map)", "be_ex"),
        ("str(nope),map(str.map,dflt)", "dflt"),
        ("str(spaced),map(str.map)", "value with  spaces"),
        ("str(/api/v2/x),map_beg(str.map)", "be_v2"),
        ("str(/api/v3),map_beg(str.map)", "be_api"),
        ("str(a.www.example.org),map_dom(str.map)", "be_org"),
        ("str(www.example.org),map_dom(str.map)", "be_org"),
        ("str(/x/api/y),map_dir(str.map)", "be_api"),
        ("str(/x/api?y),map_dir(str.map)", "be_api"),
        ("str(foo.example.com),map_end(str.map)", "be_ex"),
        ("str(xx/apiyy),map_sub(str.map)", "be_api"),
        ("str(10.1.2.3),map_ip(ip.map)", "host"),
        ("ipv4(10.1.9.9),map_ip(ip.map)", "ten-one"),
        ("ipv4(10.9.9.9),map_ip(ip.map)", "ten"),
        ("ipv6(::ffff:10.1.2.3),map_ip(ip.map)", "host"),
        ("ipv4(192.168.3.4),map_ip(ip.map)", "private"),
        ("ipv6(2001:db8:1::5),map_ip(ip.map)", "doc"),
        ("int(5),map_int(int.map)", "low"),
        ("int(500),map_int(int.map)", "high"),
        ("int(50),map_int(int.map,none)", "none"),
        ("str(/img/a.png),map_reg(reg.map)", "png"),
        ("str(/img/a.jpg),map_reg(reg.map)", "img"),
    ]);
    fails(&["str(nope),map(str.map)", "str(#),map(str.map)", "str(x),map(unloaded.map)"]);
    let e = SampleExpr::parse("req.hdr(host),lower,map_dom(hosts.map,www),map(other.map)").unwrap();
    assert_eq!(
        e.map_refs().collect::<Vec<_>>(),
        vec![
            FileRef::Map("hosts.map", MatchKind::Dom, MapOut::Str),
            FileRef::Map("other.map", MatchKind::Str, MapOut::Str)
        ]
    );
}

#[test]
fn parse_errors_name_word_argument_and_reason() {
    // (expression, word, argument, part of the reason); HAProxy 2.6 rejects each of these.
    let cases: &[(&str, &str, Option<usize>, &str)] = &[
        ("str(a),lower(x)", "lower", None, "takes no arguments"),
        ("str(a),field(0,.)", "field", Some(1), "0 for index"),
        ("ipv6(::1),add(1)", "add", None, "cannot be applied"),
        ("meth(GET),add(1)", "add", None, "cannot be applied"),
        ("bool(1),ipmask(8)", "ipmask", None, "cannot be applied"),
        ("str(a),map()", "map", Some(1), "empty map file name"),
        ("str(a),json(foo)", "json", Some(1), "Allowed values"),
        ("str(a),regsub(a,b,x)", "regsub", Some(3), "invalid regex flag 'x'"),
        ("str(a),regsub((,b)", "regsub", Some(1), "bad regex"),
        ("str(a),nope", "nope", None, "unknown converter"),
        ("str(a),add(x1)", "add", Some(1), "integer or a variable name"),
        ("str(a),field(1,)", "field", Some(2), "Empty separators list"),
        ("bin(0)", "bin", Some(1), "not a valid bin constant"),
        ("nofetch", "nofetch", None, "unknown fetch method"),
        ("str(a),sha2(100)", "sha2", Some(1), "224, 256, 384 and 512"),
        ("str(a),concat(a,b)", "concat", Some(2), "variable name 'b'"),
        ("str(a),http_date(0,h)", "http_date", Some(2), "'s', 'ms' or 'us'"),
        ("str(a),word(1,.,x)", "word", Some(3), "not an integer"),
        ("src,ipmask(33)", "ipmask", Some(1), "IPv4 mask"),
        ("req.hdr(host,x)", "req.hdr", Some(2), "not an integer"),
        ("var(foo)", "var", Some(1), "variable name"),
        ("str(a),field(1,.,2,3)", "field", Some(4), "too many arguments"),
        ("str(a", "str", None, "expected ')'"),
        ("str(a),lower x", " x", None, "missing comma"),
        ("str(a)x", "x", None, "missing comma"),
        ("str(a),map", "map", Some(1), "missing argument"),
        ("str('a)", "str", Some(1), "unterminated quote"),
    ];
    for (expr, word, arg, reason) in cases {
        let e = SampleExpr::parse(expr).expect_err(expr);
        assert_eq!((e.word.as_str(), e.arg), (*word, *arg), "{expr}: {e}");
        assert!(e.reason.contains(reason), "{expr}: {e}");
        assert!(e.to_string().contains(expr), "the message quotes the expression: {e}");
    }
}

#[test]
fn lenient_where_haproxy_is() {
    // Accepted by HAProxy 2.6: repeated and trailing commas, `int` into `ipmask`, empty optional
    // arguments, a variable of any type before any converter.
    for expr in ["str(a),,lower", "str(a),lower,", "int(1),ipmask(24)", "str(a),crc32()", "var(txn.x),lower,add(1)"] {
        SampleExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
}

#[test]
fn log_format_segments() {
    let lf = LogFormat::parse("%{+Q}[str(a),upper] x%%y %ci%[int(3),mul(2)]a%!b").unwrap();
    assert!(matches!(&lf.segments[0], Segment::Expr { flags, .. } if flags == &["+Q"]));
    assert!(matches!(&lf.segments[1], Segment::Literal(t) if t == b" x%y "));
    assert!(matches!(&lf.segments[2], Segment::LogVar { name, .. } if name == "ci"));
    let out = lf.render(&fake(), &maps(), &|name, _| Some(format!("<{name}>").into_bytes()));
    assert_eq!(String::from_utf8(out).unwrap(), "A x%y <ci>6a!b");
    assert!(LogFormat::parse("plain text").unwrap().is_literal());
    assert!(!lf.is_literal());
    // A missing sample renders as nothing, as HAProxy's lf-string does.
    let lf = LogFormat::parse("[%[str(abc),strcmp(txn.nope)]]").unwrap();
    assert_eq!(lf.render(&fake(), &maps(), &|_, _| None), b"[]");

    for (bad, reason) in [
        ("a%", "truncated"),
        ("a% b", "use '%%'"),
        ("a%5", "use '%%'"),
        ("a%[src", "expected ']'"),
        ("a%[src x]", "expected ']'"),
        ("%[str(a),]", "expected a converter name"),
        ("a%{+Q}", "after '%{...}'"),
        ("%{+Q", "missing '}'"),
        ("%[nofetch]", "unknown fetch"),
    ] {
        let e = LogFormat::parse(bad).expect_err(bad);
        assert!(e.reason.contains(reason), "{bad}: {e}");
    }
}

#[test]
fn odd_input_never_panics() {
    // Deterministic pseudo-random expressions and log formats built from the syntax's sharp
    // edges; parsing must fail cleanly or succeed, and evaluation must not panic.
    const PIECES: &[&str] = &[
        "str(",
        "int(",
        "(",
        ")",
        ",",
        "'",
        "\"",
        "\\",
        "%",
        "[",
        "]",
        "{",
        "}",
        "a",
        "é",
        "-1",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "txn.foo",
        " ",
        "lower",
        "map(str.map",
        "regsub(",
        "field(",
        "word(",
        "bytes(",
        "ipmask(",
        "http_date(",
        "utime(%Y%",
        "json(utf8p",
        "hdr(",
        "url_dec",
        "concat(",
        "add(",
        "div(",
        "b64dec",
        "sha2(",
        ".",
        "*",
        "?",
        "$",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (ctx, maps) = (fake(), maps());
    for _ in 0..8_000 {
        let len = 1 + next() % 10;
        let text: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
        if let Ok(e) = SampleExpr::parse(&text) {
            let _ = e.eval(&ctx, &maps);
        }
        if let Ok(lf) = LogFormat::parse(&text) {
            let _ = lf.render(&ctx, &maps, &|_, _| None);
        }
        let entries = parse_map_file(text.as_bytes(), false);
        for kind in [MatchKind::Str, MatchKind::Beg, MatchKind::Dom, MatchKind::Reg, MatchKind::Ip, MatchKind::Int] {
            if let Ok(m) = PatternMap::build(kind, &entries) {
                let _ = m.lookup(&Value::str(text.as_bytes()));
            }
        }
    }
    // Extreme but valid arguments.
    for expr in [
        "str(a.b),field(1,.,9223372036854775807)",
        "str(a.b),word(-1,.,9223372036854775807)",
        "str(a.b),field(-9223372036854775808,.)",
        "str(ab),bytes(9223372036854775807,9223372036854775807)",
        "int(9223372036854775807),http_date(9223372036854775807,us)",
        "int(-9223372036854775808),utime(%c,-9223372036854775808)",
        "int(-9223372036854775808),http_date(-1,ms)",
    ] {
        let _ = eval(expr);
    }
}

#[test]
fn text_and_number_converters() {
    check(&[
        ("str(a b&c=d/é),url_enc", "a%20b%26c%3Dd%2F%C3%A9"),
        ("str(a b),url_enc(query)", "a%20b"),
        ("str(xxabcxy),ltrim(xy)", "abcxy"),
        ("str(xxabcxy),rtrim(xy)", "xxabc"),
        ("str(xyxy),ltrim(xy)", ""),
        ("str(ab),cut_crlf", "ab"),
        ("str(3),even", "0"),
        ("int(4),even", "1"),
        ("int(-3),odd", "1"),
        ("int(5),cpl", "-6"),
        ("bin(01020304050607),be2dec(:,2)", "258:772:1286:7"),
        ("bin(01020304050607),be2dec(-,2,1)", "258-772-1286"),
        ("bin(7f000001),be2dec(.,1)", "127.0.0.1"),
        ("bin(01020304050607),be2hex", "01020304050607"),
        ("bin(01020304050607),be2hex(:,2)", "0102:0304:0506:07"),
        ("int(258),htonl,hex", "00000102"),
        ("str(ff),hex2i", "255"),
        ("str(abc),ub64enc", "YWJj"),
        ("bin(fbff),ub64enc", "-_8"),
        ("str(-_8),ub64dec,hex", "FBFF"),
        ("str(abc),digest(sha256),hex", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
        ("str(abc),digest(SHA1),hex", "A9993E364706816ABA3E25717850C26C9CD0D89D"),
        // RFC 4231 test case 2 ("Jefe", base64 "SmVmZQ==").
        (
            "str(what do ya want for nothing?),hmac(sha256,SmVmZQ==),hex",
            "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843",
        ),
        ("str(abd),secure_memcmp(txn.foo)", "1"),
        ("str(abe),secure_memcmp(txn.foo)", "0"),
        ("str(ab),secure_memcmp(txn.foo)", "0"),
        ("str(Example.COM:8080),host_only", "example.com"),
        ("str([::1]:80),host_only", "[::1]"),
        ("str(a.b:8080),port_only", "8080"),
        ("str([::1]),port_only", "0"),
        ("str(a),add_item(',',txn.foo)", "a,abd"),
        ("str(),add_item(',',txn.foo,!)", "abd!"),
        ("str(a),add_item(',',txn.nope)", "a"),
        ("str(a),add_item(',',,x)", "a,x"),
        ("int(1),iif(yes,no)", "yes"),
        ("int(0),iif(yes,no)", "no"),
        ("str(a:80x),port_only", "872"),
        ("str(abc),crc32c", "910901175"),
        ("str(abc),crc32c(1)", "1285784220"),
        ("str(abc),wt6", "2483038440"),
        ("str(hello world),wt6(1)", "2174767729"),
    ]);
    assert_eq!(eval("str(-1),hex2i"), None, "not hex");
    for bad in [
        "str(a),url_enc(path)",
        "str(a),ltrim",
        "bin(01),be2dec(:,9)",
        "bin(01),be2dec(:,2,2)",
        "bin(01),be2hex(:)",
        "str(a),digest(md4)",
        "str(a),hmac(sha256,!!)",
        "str(a),secure_memcmp(foo)",
        "str(a),add_item(',')",
        "str(a),iif(a)",
        "str(a),cpl(1)",
    ] {
        assert!(SampleExpr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn json_and_jwt_queries() {
    let doc = r#"str('{"a":{"b":[1,{"c":"x\u00e9"}]},"n":1.5,"t":true}')"#;
    check(&[
        (&format!("{doc},json_query('$.n')"), "1.5"),
        (&format!("{doc},json_query('$.n',int),add(1)"), "2"),
        (&format!("{doc},json_query('$.t')"), "1"),
    ]);
    assert_eq!(eval(&format!("{doc},json_query('$.a.b')")), None, "arrays give nothing in 2.6");
    let e = SampleExpr::parse(&format!("{doc},json_query('$.a.b[1].c')")).unwrap();
    assert_eq!(e.eval_str(&fake(), &maps()), Some(b"x\xe9".to_vec()), "\\u00e9 is the byte 0xe9, as mjson");
    assert_eq!(eval(&format!("{doc},json_query('$.a')")), None, "objects give nothing");
    assert!(SampleExpr::parse("str(a),json_query('')").is_err());
    assert!(SampleExpr::parse("str(a),json_query('$.a',str)").is_err());
    // {"alg":"HS256","typ":"JWT"} . {"sub":"1234567890","name":"John Doe","iat":1516239022} . sig
    let jwt = "str(eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c)";
    check(&[
        (&format!("{jwt},jwt_header_query('$.alg')"), "HS256"),
        (&format!("{jwt},jwt_header_query"), r#"{"alg":"HS256","typ":"JWT"}"#),
        (&format!("{jwt},jwt_payload_query('$.name')"), "John Doe"),
        (&format!("{jwt},jwt_payload_query('$.iat',int)"), "1516239022"),
    ]);
    assert_eq!(eval("str(eyJhIjoxfQ),jwt_payload_query"), None, "no payload part");
    assert_eq!(eval("str(eyJhIjoxfQ),jwt_header_query('$.a')").as_deref(), Some("1"));
}

#[test]
fn map_outputs_and_back_references() {
    let mut m = maps();
    let vals = parse_map_file(b"a 12\nb x\nc 10.0.0.1\n", false);
    for kind in [MatchKind::Str, MatchKind::Beg] {
        m.insert("typed.map", kind, &vals).unwrap();
    }
    m.insert("regm.map", MatchKind::Reg, &parse_map_file(b"^/u/([a-z]+)/(\\d+)$ user=\\1&id=\\2\n", false)).unwrap();
    let ev = |e: &str| SampleExpr::parse(e).unwrap_or_else(|err| panic!("{e}: {err}")).eval(&fake(), &m);
    assert_eq!(ev("str(a),map_str_int(typed.map),add(1)"), Some(Value::Sint(13)));
    assert_eq!(ev("str(b),map_str_int(typed.map)"), None, "not an integer value");
    assert_eq!(ev("str(z),map_beg_int(typed.map,-1)"), Some(Value::Sint(-1)));
    assert_eq!(ev("str(c),map_str_ip(typed.map)"), Some(Value::Ipv4("10.0.0.1".parse().unwrap())));
    assert_eq!(ev("str(/u/bob/42),map_regm(regm.map)"), Some(Value::str("user=bob&id=42")));
    assert_eq!(ev("str(/x),map_regm(regm.map,none)"), Some(Value::str("none")));
    assert_eq!(ev("str(10.1.2.3),map_ip_str(ip.map)"), Some(Value::str("host")));
    assert_eq!(ev("int(7),map_int_int(int.map,0)"), None, "`low` is no integer (refused when the map loads)");
    for bad in ["str(a),map_str_int(f,x)", "str(a),map_str_ip(f,nope)", "str(a),map_foo(f)", "str(a),map_str_bool(f)"] {
        assert!(SampleExpr::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(SampleExpr::parse("str(a),map_str_int(f)").unwrap().out_type(), Some(SmpType::Sint));
}

#[test]
fn set_var_converter_stores_and_passes_on() {
    let f = fake();
    let m = maps();
    let e = SampleExpr::parse("str(abc),set-var(txn.copy),upper").unwrap();
    assert_eq!(e.eval(&f, &m), Some(Value::str("ABC")));
    assert_eq!(f.var(&VarRef::parse("txn.copy").unwrap()), Some(Value::str("abc")));
    // Conditions: the variable exists (txn.foo does) / is a smaller integer.
    let e = SampleExpr::parse("str(new),set-var(txn.foo,ifnotexists)").unwrap();
    assert_eq!(e.eval(&f, &m), Some(Value::str("new")), "the input passes whatever the condition");
    assert_eq!(f.var(&VarRef::parse("txn.foo").unwrap()), Some(Value::str("abd")), "kept");
    let e = SampleExpr::parse("int(9),set-var(txn.num,ifexists,iflt)").unwrap();
    e.eval(&f, &m);
    assert_eq!(f.var(&VarRef::parse("txn.num").unwrap()), Some(Value::Sint(9)), "7 < 9: set");
    SampleExpr::parse("int(3),set-var(txn.num,iflt)").unwrap().eval(&f, &m);
    assert_eq!(f.var(&VarRef::parse("txn.num").unwrap()), Some(Value::Sint(9)), "9 > 3: kept");
    SampleExpr::parse("str(x),unset-var(txn.num)").unwrap().eval(&f, &m);
    assert_eq!(f.var(&VarRef::parse("txn.num").unwrap()), None);
    assert!(SampleExpr::parse("str(a),set-var(txn.x,ifbogus)").is_err());
    assert!(SampleExpr::parse("str(a),set-var(bogus)").is_err());
    assert!(e.convs[0].reads_stream(), "a log line must read the stream's variables");
}

#[test]
fn jwt_verify_parses_as_haproxy_and_names_its_key_file() {
    // HAProxy 2.6's refusals.
    for (expr, reason) in [
        ("req.hdr(x),jwt_verify(XX256,k)", "unknown JWT algorithm: XX256"),
        ("req.hdr(x),jwt_verify(PS256,k)", "RSASSA-PSS JWS signing not managed yet"),
        ("req.hdr(x),jwt_verify(HS256)", "argument"),
    ] {
        let e = SampleExpr::parse(expr).unwrap_err().to_string();
        assert!(e.contains(reason), "{expr}: {e}");
    }
    let refs = |e: &str| {
        let e = SampleExpr::parse(e).unwrap();
        e.map_refs().map(|r| format!("{r:?}")).collect::<Vec<_>>()
    };
    assert_eq!(refs("req.hdr(x),jwt_verify(RS256,/k.pem)"), [r#"JwtKey { path: "/k.pem", required: true }"#]);
    assert_eq!(refs("req.hdr(x),jwt_verify(txn.alg,k.pem)"), [r#"JwtKey { path: "k.pem", required: false }"#]);
    assert!(refs("req.hdr(x),jwt_verify(HS256,secret)").is_empty(), "an HMAC secret is no file");
    assert_eq!(refs("req.hdr(x),jwt_verify(ES512,/p521.pem)"), [r#"JwtKey { path: "/p521.pem", required: true }"#]);
    assert!(refs("req.hdr(x),jwt_verify(RS256,txn.key)").is_empty(), "a variable names a key loaded elsewhere");
}
