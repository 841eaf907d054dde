use super::*;
use crate::sample::{MapSet, MatchKind, SampleContext, client_hello, parse_map_file};
use std::cell::RefCell;
use std::net::SocketAddr;

struct Ctx {
    buf: Vec<u8>,
    src: SocketAddr,
    vars: RefCell<Vec<(VarRef, Value)>>,
}

impl SampleContext for Ctx {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn req_payload(&self) -> Option<&[u8]> {
        Some(&self.buf)
    }
    fn req_len(&self) -> Option<usize> {
        Some(self.buf.len())
    }
    fn var(&self, v: &VarRef) -> Option<Value> {
        self.vars.borrow().iter().find(|(k, _)| k == v).map(|(_, x)| x.clone())
    }
}

fn ctx(buf: &[u8]) -> Ctx {
    Ctx { buf: buf.to_vec(), src: "192.0.2.7:4000".parse().unwrap(), vars: RefCell::new(Vec::new()) }
}

fn env<'a>(c: &'a Ctx, maps: &'a MapSet, final_: bool) -> Env<'a> {
    Env { ctx: c, maps, final_ }
}

fn cond(text: &str) -> Cond {
    Cond::parse(text, &|_| None).unwrap()
}

/// Variables through `set`, captures into `captured`; stick actions do nothing.
struct Fx<'a> {
    set: &'a dyn Fn(&VarRef, Option<Value>),
    captured: RefCell<Vec<(usize, Vec<u8>)>>,
    addrs: RefCell<Vec<(crate::proxy::addrs::AddrPart, Value)>>,
    dropped: RefCell<usize>,
    opts: RefCell<Vec<crate::proxy::addrs::SockOpt>>,
}

impl Effects for Fx<'_> {
    fn set_var(&self, var: &VarRef, value: Option<Value>) {
        (self.set)(var, value)
    }
    fn stick(&self, _: &crate::stktable::track::StickAction, _: &Env<'_>) {}
    fn capture(&self, slot: usize, value: &[u8]) {
        self.captured.borrow_mut().push((slot, value.to_vec()));
    }
    fn set_addr(&self, part: crate::proxy::addrs::AddrPart, value: Value) {
        self.addrs.borrow_mut().push((part, value));
    }
    fn silent_drop(&self) {
        *self.dropped.borrow_mut() += 1;
    }
    fn sockopt(&self, o: crate::proxy::addrs::SockOpt) {
        self.opts.borrow_mut().push(o);
    }
}

fn fx<'a>(set: &'a dyn Fn(&VarRef, Option<Value>)) -> Fx<'a> {
    Fx {
        set,
        captured: RefCell::new(Vec::new()),
        addrs: RefCell::new(Vec::new()),
        dropped: RefCell::new(0),
        opts: RefCell::new(Vec::new()),
    }
}

fn rule(action: &str, c: Option<&str>) -> Rule {
    Rule { action: parse_action(action).unwrap(), cond: c.map(cond) }
}

#[test]
fn hello_rules_wait_for_the_whole_record() {
    let maps = MapSet::default();
    let hello = client_hello("a.example");
    let rules = [rule("accept", Some("if { req_ssl_hello_type 1 }"))];
    let set = |_: &VarRef, _: Option<Value>| {};
    for cut in [0, 3, 5, hello.len() - 1] {
        let c = ctx(&hello[..cut]);
        assert_eq!(run(&rules, 0, &[], &env(&c, &maps, false), &fx(&set)), Verdict::Wait(0), "cut at {cut}");
        // At the delay the rules decide with what is there: no match, so the default accept.
        assert_eq!(run(&rules, 0, &[], &env(&c, &maps, true), &fx(&set)), Verdict::Accept);
    }
    let c = ctx(&hello);
    assert_eq!(run(&rules, 0, &[], &env(&c, &maps, false), &fx(&set)), Verdict::Accept);
    // Not TLS at all: decided at once, nothing to wait for.
    let c = ctx(b"GET / HTTP/1.1\r\n");
    let reject_plain = [rule("reject", Some("unless { req_ssl_hello_type 1 }"))];
    assert_eq!(run(&reject_plain, 0, &[], &env(&c, &maps, false), &fx(&set)), Verdict::Reject);
}

#[test]
fn sni_conditions_maps_and_dynamic_backends() {
    let mut maps = MapSet::default();
    let entries = parse_map_file(b"a.example be_a\nb.example be_b\n", false);
    maps.insert("sni.map", MatchKind::Str, &entries).unwrap();
    let c = ctx(&client_hello("B.Example"));
    let e = env(&c, &maps, true);
    assert_eq!(cond("if { req.ssl_sni -i b.example }").eval(&[], &e), Tri::Pass);
    assert_eq!(cond("if { req.ssl_sni b.example }").eval(&[], &e), Tri::Fail, "case-sensitive without -i");
    assert_eq!(cond("if { req.ssl_sni_end -i .example } !{ src 192.0.2.0/24 }").eval(&[], &e), Tri::Fail);
    assert_eq!(cond("if { req.ssl_sni_end -i .example } || FALSE").eval(&[], &e), Tri::Pass);
    let sw = [
        Switch { target: Target::Backend(9), cond: Some(cond("if { src 10.0.0.0/8 }")) },
        Switch { target: Target::Dynamic(LogFormat::parse("%[req.ssl_sni,lower,map(sni.map)]").unwrap()), cond: None },
    ];
    let by_name = |n: &str| ["be_a", "be_b"].iter().position(|x| *x == n);
    assert_eq!(switch(&sw, &[], &e, &by_name), Some(Some(1)));
    let c = ctx(&client_hello("c.example"));
    assert_eq!(switch(&sw, &[], &env(&c, &maps, true), &by_name), Some(None), "unknown name: the default backend");
}

#[test]
fn named_acls_set_var_and_the_rule_order() {
    let maps = MapSet::default();
    let acls = vec![Acl::parse("req.len ge 4").unwrap(), Acl::parse("var(sess.seen) -m found").unwrap()];
    let names = ["big", "seen"];
    let parse = |t: &str| Cond::parse(t, &|n| names.iter().position(|x| *x == n)).unwrap();
    let rules = [
        Rule { action: parse_action("set-var(sess.seen) req.len").unwrap(), cond: Some(parse("if big")) },
        Rule { action: parse_action("reject").unwrap(), cond: Some(parse("unless seen")) },
    ];
    let c = ctx(b"ab");
    let set = |v: &VarRef, val: Option<Value>| {
        let mut vars = c.vars.borrow_mut();
        vars.retain(|(k, _)| k != v);
        vars.extend(val.map(|x| (v.clone(), x)));
    };
    // `req.len` may still grow: the first rule waits.
    assert_eq!(run(&rules, 0, &acls, &env(&c, &maps, false), &fx(&set)), Verdict::Wait(0));
    assert_eq!(run(&rules, 0, &acls, &env(&c, &maps, true), &fx(&set)), Verdict::Reject);
    let c2 = ctx(b"abcdef");
    let set2 = |v: &VarRef, val: Option<Value>| c2.vars.borrow_mut().extend(val.map(|x| (v.clone(), x)));
    assert_eq!(run(&rules, 0, &acls, &env(&c2, &maps, false), &fx(&set2)), Verdict::Accept);
    assert_eq!(c2.var(&VarRef::parse("sess.seen").unwrap()), Some(Value::Sint(6)));
}

#[test]
fn three_valued_logic_like_haproxy() {
    let maps = MapSet::default();
    let c = ctx(b"");
    let e = env(&c, &maps, false);
    // A missing sample ANDed with a false term is false; ORed with a true one is true.
    assert_eq!(cond("if { req.len gt 10 } FALSE").eval(&[], &e), Tri::Fail);
    assert_eq!(cond("if { req.len gt 10 } || TRUE").eval(&[], &e), Tri::Pass);
    assert_eq!(cond("if !{ req.len gt 10 }").eval(&[], &e), Tri::Miss);
    assert_eq!(cond("unless { req.payload(0,2) -m bin 1603 }").eval(&[], &e), Tri::Miss);
    assert_eq!(cond("if { req.payload(0,2) -m bin 1603 }").eval(&[], &env(&c, &maps, true)), Tri::Fail);
}

#[test]
fn parse_errors_are_clear() {
    let err = |t: &str| Cond::parse(t, &|_| None).unwrap_err().to_string();
    assert!(err("if nosuch").contains("unknown acl `nosuch`"));
    assert!(err("when TRUE").contains("must start with `if` or `unless`"));
    assert!(err("if { src }").contains("needs at least one pattern"));
    assert!(err("if { req.ssl_sni -m nope x }").contains("unknown match method"));
    assert!(err("if { nofetch x }").contains("unknown fetch"));
    assert!(err("if {src 1.2.3.4 }").contains("braces must be separated"));
    assert!(err("if TRUE ||").contains("`||` has nothing to apply to"));
    assert!(parse_action("capture req.ssl_sni").unwrap_err().contains("expected `capture SAMPLE len N`"));
    assert!(parse_action("capture req.ssl_sni len 0").unwrap_err().contains("at least 1"));
    assert!(parse_action("capture req.ssl_sni len x").unwrap_err().contains("needs a number"));
    assert!(parse_action("capture nofetch len 4").unwrap_err().contains("unknown fetch"));
    assert!(parse_action("nope").unwrap_err().contains("capture EXPR len N"));
    assert!(
        matches!(parse_action("set-var(proc.x) src").unwrap(), Action::SetVar(v, _) if v.scope == crate::sample::VarScope::Proc)
    );
    assert!(parse_action("set-var(sess.x)").unwrap_err().contains("needs a sample expression"));
    assert!(parse_action("accept now").unwrap_err().contains("takes no argument"));
    assert!(matches!(parse_action("unset-var(txn.a)").unwrap(), Action::UnsetVar(_)));
}

#[test]
fn capture_fills_its_slot_and_goes_on() {
    let maps = MapSet::default();
    let hello = client_hello("a.example");
    let c = ctx(&hello);
    let mut rules = vec![
        rule("capture req.ssl_sni len 5", None),
        rule("capture req.payload(0,1),hex id 3", None),
        rule("capture var(sess.none) len 4", None),
        rule("reject", Some("if { req.len lt 1 }")),
    ];
    if let Action::Capture(c) = &mut rules[0].action {
        assert_eq!((c.len, c.slot, c.cut), (Some(5), 0, 5));
        c.slot = 5;
    }
    if let Action::Capture(c) = &mut rules[1].action {
        assert_eq!((c.len, c.slot), (None, 3));
        c.cut = 8;
    }
    let fx = fx(&|_, _| {});
    assert_eq!(run(&rules, 0, &[], &env(&c, &maps, true), &fx), Verdict::Accept);
    // The unset variable captures nothing.
    assert_eq!(*fx.captured.borrow(), [(5, b"a.exa".to_vec()), (3, b"16".to_vec())]);
}

#[test]
fn set_var_fmt_stores_the_rendered_string() {
    let maps = MapSet::default();
    let rules =
        [Rule { action: parse_action("set-var-fmt(sess.len) len=%[req.len] of %[req.len]").unwrap(), cond: None }];
    let c = ctx(b"abcd");
    let set = |v: &VarRef, val: Option<Value>| c.vars.borrow_mut().extend(val.map(|x| (v.clone(), x)));
    assert_eq!(run(&rules, 0, &[], &env(&c, &maps, true), &fx(&set)), Verdict::Accept);
    assert_eq!(c.var(&VarRef::parse("sess.len").unwrap()), Some(Value::Str(b"len=4 of 4".to_vec())));
    // `proc.` variables are set from TCP rules as from HTTP ones.
    assert!(parse_action("set-var-fmt(proc.x) a").is_ok());
    assert!(parse_action("set-var-fmt(sess.x) %[nofetch]").unwrap_err().contains("set-var-fmt"));
}

#[test]
fn set_src_acts_and_goes_on_and_silent_drop_decides() {
    use crate::proxy::addrs::AddrPart;
    let maps = MapSet::default();
    let c = ctx(b"");
    let rules = vec![
        rule("set-src src,ipmask(24)", None),
        rule("set-dst-port int(8443)", None),
        rule("set-src-port req.len", Some("if { req.len gt 100 }")),
        rule("set-tos 0x10", None),
        rule("silent-drop", Some("if { src 192.0.2.0/24 }")),
        rule("accept", None),
    ];
    let fx = fx(&|_, _| {});
    assert_eq!(run(&rules, 0, &[], &env(&c, &maps, true), &fx), Verdict::Reject, "a silent-drop ends as a reject");
    assert_eq!(*fx.dropped.borrow(), 1);
    assert_eq!(*fx.opts.borrow(), [crate::proxy::addrs::SockOpt::Tos(16)]);
    let got = fx.addrs.borrow();
    assert_eq!(got.len(), 2, "the rule whose condition failed did nothing: {got:?}");
    assert_eq!(got[0], (AddrPart::Src, Value::Ipv4("192.0.2.0".parse().unwrap())));
    assert_eq!(got[1].0, AddrPart::DstPort);
    assert_eq!(got[1].1.clone().cast(crate::sample::SmpType::Sint), Some(Value::Sint(8443)));
}

#[test]
fn new_actions_parse_as_haproxy_writes_them() {
    assert!(matches!(parse_action("silent-drop").unwrap(), Action::SilentDrop));
    assert!(parse_action("silent-drop now").unwrap_err().contains("takes no argument"));
    assert!(matches!(parse_action("set-src src,ipmask(16)").unwrap(), Action::SetAddr(p, _) if p.name() == "set-src"));
    assert!(
        matches!(parse_action("set-dst-port int(80)").unwrap(), Action::SetAddr(p, _) if p.name() == "set-dst-port")
    );
    assert!(parse_action("set-src").unwrap_err().contains("needs one sample expression"));
    assert!(parse_action("set-src src junk").unwrap_err().contains("needs one sample expression"));
    assert!(parse_action("set-src nofetch").unwrap_err().contains("unknown fetch"));
    assert!(matches!(parse_action("set-mark 0x2a").unwrap(), Action::SockOpt(crate::proxy::addrs::SockOpt::Mark(42))));
    assert!(parse_action("set-tos").unwrap_err().contains("0 to 255"));
}

/// The server's first bytes, as `tcp-response content` sees them.
struct Res(Vec<u8>);

impl SampleContext for Res {
    fn res_payload(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
}

#[test]
fn response_rules_wait_for_the_servers_bytes_then_decide() {
    let maps = MapSet::default();
    let set = |_: &VarRef, _: Option<Value>| {};
    let rules = [
        rule("reject", Some("if { res.payload(0,4) -m str EVIL }")),
        rule("close", Some("if { res.payload_lv(0,1) -m str bye }")),
        rule("accept", Some("if { res.len ge 4 }")),
    ];
    let run_on = |b: &[u8], final_: bool| {
        let c = Res(b.to_vec());
        run(&rules, 0, &[], &Env { ctx: &c, maps: &maps, final_ }, &fx(&set))
    };
    assert_eq!(run_on(b"EV", false), Verdict::Wait(0), "four bytes are needed to judge the banner");
    assert_eq!(run_on(b"EVIL", false), Verdict::Reject);
    assert_eq!(run_on(b"\x05bye", false), Verdict::Wait(1), "the length says two more bytes come");
    assert_eq!(run_on(b"\x03bye", false), Verdict::Close);
    assert_eq!(run_on(b"GOOD", false), Verdict::Wait(1), "the length-prefixed block is still short");
    assert_eq!(run_on(b"\x01xGOOD", false), Verdict::Accept);
    // At the delay (or the server's end) the rules decide on what came: nothing matched.
    assert_eq!(run_on(b"EV", true), Verdict::Accept);
    // A request-side rule has no request buffer here: it does not wait for one.
    let req = [rule("reject", Some("if { req.len gt 0 }"))];
    let c = Res(Vec::new());
    assert_eq!(run(&req, 0, &[], &Env { ctx: &c, maps: &maps, final_: false }, &fx(&set)), Verdict::Accept);
}

#[test]
fn do_resolve_parses_as_haproxy_and_hands_the_rule_to_the_caller() {
    use crate::dns::action::Family;
    assert!(matches!(
        parse_action("do-resolve(sess.ip,mydns,ipv4) req.ssl_sni,lower").unwrap(),
        Action::DoResolve { resolvers, family: Family::V4, .. } if resolvers == "mydns"
    ));
    assert!(matches!(
        parse_action("do-resolve(txn.ip,dns) str(a.test)").unwrap(),
        Action::DoResolve { family: Family::V6, .. }
    ));
    for bad in [
        "do-resolve(txn.ip,dns,ipv5) str(a)",
        "do-resolve(txn.ip,dns)",
        "do-resolve(txn.ip) str(a)",
        "do-resolve(txn.ip,,ipv4) str(a)",
    ] {
        assert!(parse_action(bad).unwrap_err().contains("Available options are 'ipv4' and 'ipv6'"), "{bad}");
    }
    // Any name, as HAProxy 2.6: without a scope it knows, the address is stored nowhere.
    for var in ["ip", "bad.ip", ""] {
        let a = parse_action(&format!("do-resolve({var},dns) str(a)")).unwrap();
        assert!(matches!(a, Action::DoResolve { var: None, .. }), "{var}");
    }
    let maps = MapSet::default();
    let c = ctx(b"");
    let rules = vec![
        rule("do-resolve(sess.ip,dns) str(a.test)", Some("if { src 10.0.0.0/8 }")),
        rule("do-resolve(sess.ip,dns) str(a.test)", None),
        rule("reject", None),
    ];
    let fx = fx(&|_, _| {});
    assert_eq!(
        run(&rules, 0, &[], &env(&c, &maps, true), &fx),
        Verdict::Resolve(1),
        "the first one's condition failed"
    );
    assert_eq!(run(&rules, 2, &[], &env(&c, &maps, true), &fx), Verdict::Reject, "then on from the next rule");
}
