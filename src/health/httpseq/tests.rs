use super::*;
use crate::health::probe::ProbeError;
use crate::health::status::CheckStatus;
use crate::health::tcpcheck::{Action, Passed, Run};

fn cx() -> CheckCtx<'static> {
    let vars: &'static crate::health::check_ctx::CheckVars = Box::leak(Box::default());
    CheckCtx { backend: "be", server: "s1", target: "127.0.0.1:8080".parse().unwrap(), vars }
}

fn rules(lines: &[&str]) -> Result<Vec<Step>, String> {
    let mut c = None;
    let mut out = Vec::new();
    for l in lines {
        match parse_line(l, &mut c)? {
            Line::Rule(s) => out.push(*s),
            Line::DisableOn404 | Line::SendState => {}
        }
    }
    Ok(out)
}

/// `option httpchk TEXT` and the `http-check` lines as one sequence.
fn seq(opt: &str, lines: &[&str]) -> Seq {
    let o = HttpSend::from_option(&HttpCheck::from_haproxy(opt).unwrap());
    Seq { steps: assemble(o, rules(lines).unwrap()).unwrap(), http: true, ..Default::default() }
}

/// Drives a run: `answers[i]` answers the i-th request, then the server closes. Returns the
/// verdict and the requests sent.
fn drive(s: &Seq, answers: &[&[u8]]) -> (Result<Passed, ProbeError>, Vec<String>) {
    let mut run = Run::new(s, cx());
    let mut sent = Vec::new();
    let mut given = false;
    let mut next = answers.iter();
    for _ in 0..100 {
        match run.step() {
            Action::Connect(o) => run.connected(o.target(cx().target), false),
            Action::Send(d) => {
                sent.push(String::from_utf8_lossy(&d).into_owned());
                given = false;
            }
            Action::Recv if !given => {
                given = true;
                match next.next() {
                    Some(a) => run.feed(a),
                    None => run.closed(),
                }
            }
            Action::Recv => run.closed(),
            Action::Pass(p) => return (Ok(p), sent),
            Action::Fail(e) => return (Err(e), sent),
        }
    }
    panic!("no verdict")
}

const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Role: primary, ready\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn send_merges_into_the_option_request_and_builds_haproxys_request() {
    let s = seq("", &["send meth POST uri /x ver HTTP/1.1 hdr Host a hdr X-A %[str(q)] body hello"]);
    let (r, sent) = drive(&s, &[OK]);
    assert_eq!(sent, ["POST /x HTTP/1.1\r\nHost: a\r\nX-A: q\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"]);
    let p = r.unwrap();
    assert_eq!((p.status, p.code, p.info), (CheckStatus::L7Ok, Some(200), None));
    // The legacy header trick of the option, then a send that sets only the URI keeps the
    // option's method and version but (as HAProxy) replaces its headers.
    let s = seq(r"GET /y HTTP/1.1\r\nHost:\ foo", &[]);
    assert_eq!(drive(&s, &[OK]).1, ["GET /y HTTP/1.1\r\nHost: foo\r\nconnection: close\r\n\r\n"]);
    let s = seq(r"GET /y HTTP/1.1\r\nHost:\ foo", &["send uri /z"]);
    assert_eq!(drive(&s, &[OK]).1, ["GET /z HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: close\r\n\r\n"]);
    // Bare option: OPTIONS / HTTP/1.0, and the implicit `expect status 200-399`.
    let s = seq("", &[]);
    assert_eq!(drive(&s, &[b"HTTP/1.0 302 Found\r\n\r\n"]).1, ["OPTIONS / HTTP/1.0\r\nconnection: close\r\n\r\n"]);
    assert!(drive(&s, &[b"HTTP/1.0 302 Found\r\n\r\n"]).0.is_ok());
    let e = drive(&s, &[b"HTTP/1.0 503 Service Unavailable\r\n\r\n"]).0.unwrap_err();
    assert_eq!(e.to_string(), "Layer7 wrong status, code 503, info: Service Unavailable");
}

#[test]
fn status_header_and_body_expectations() {
    let run = |lines: &[&str], resp: &[u8]| drive(&seq("GET /", lines), &[resp]).0.map_err(|e| e.to_string());
    assert!(run(&["expect status 200,204-299"], OK).is_ok());
    assert!(run(&["expect ! status 500-599"], OK).is_ok());
    assert!(run(&["expect rstatus ^2"], OK).is_ok());
    assert!(run(&["expect hdr name content-type"], OK).is_ok());
    assert!(run(&["expect hdr name -m beg x-r value -m str ready"], OK).is_ok());
    // `hdr` compares each element of the list; `fhdr` the whole line.
    assert!(run(&["expect fhdr name x-role value ready"], OK).is_err());
    assert!(run(&["expect fhdr name x-role value -m end ready"], OK).is_ok());
    assert!(run(&["expect hdr name -m reg ^X-R.*$ value -m reg ^prim"], OK).is_ok());
    assert_eq!(run(&["expect hdr name x-missing"], OK), Err("Layer7 wrong status, code 200, info: OK".into()));
    assert!(run(&["expect string hello"], OK).is_ok());
    assert!(run(&["expect rstring ^h.l+o$"], OK).is_ok());
    assert!(run(&["expect string-lf %s"], b"HTTP/1.1 200 OK\r\n\r\nI am s1").is_ok());
    assert_eq!(
        run(&["expect string bye comment greeting"], OK),
        Err("Layer7 invalid response, code 200, info: HTTP content check did not match comment: greeting".into())
    );
    assert_eq!(
        run(&["expect ! string hello"], OK),
        Err("Layer7 invalid response, code 200, info: HTTP check matched unwanted content".into())
    );
    assert_eq!(
        run(&["expect string x"], b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Err("Layer7 invalid response, code 200, info: HTTP content check could not find a response body".into())
    );
    assert_eq!(
        run(&["expect status 200 error-status L7RSP on-error 'down %s' status-code int(9)"], b"HTTP/1.1 500 X\r\n\r\n"),
        Err("Layer7 invalid response, code 9, info: down s1".into())
    );
    let p = drive(&seq("GET /", &["expect status 200 ok-status L7OKC on-success up"]), &[OK]).0.unwrap();
    assert_eq!((p.status, p.info.as_deref(), p.code), (CheckStatus::L7Okc, Some("up"), Some(200)));
    // Not HTTP at all.
    assert_eq!(run(&[], b"SSH-2.0-x\r\n"), Err("Layer7 invalid response".into()));
}

#[test]
fn a_multi_step_sequence_opens_a_connection_per_exchange() {
    let s = seq(
        "GET /a",
        &[
            "connect",
            "send ver HTTP/1.1",
            "expect status 200",
            "expect hdr name x-role value primary",
            "connect port 8081",
            "send meth HEAD uri /b",
            "expect status 204",
        ],
    );
    let (r, sent) = drive(&s, &[OK, b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"]);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(sent.len(), 2);
    assert!(sent[1].starts_with("HEAD /b HTTP/1.0\r\n"), "{}", sent[1]);
    let (r, _) = drive(&s, &[OK, b"HTTP/1.1 200 OK\r\n\r\n"]);
    let e = r.unwrap_err().to_string();
    assert_eq!(e, "Layer7 wrong status, code 200, info: OK");
}

#[test]
fn rules_must_come_in_haproxys_order() {
    let o = || HttpSend::from_option(&HttpCheck::from_haproxy("").unwrap());
    let e = assemble(o(), rules(&["connect", "expect status 200"]).unwrap()).unwrap_err();
    assert_eq!(e, "unable to add http-check expect rule at step 2 (missing send rule)");
    let e = assemble(o(), rules(&["send uri /a", "expect status 200", "send uri /b"]).unwrap()).unwrap_err();
    assert!(e.contains("send rule at step 3 (missing connect rule)"), "{e}");
    let e = assemble(o(), rules(&["connect", "send uri /a", "connect"]).unwrap()).unwrap_err();
    assert!(e.contains("connect rule at step 3 (missing expect rule)"), "{e}");
    let e = assemble(o(), rules(&["send uri /a", "expect status 200", "connect"]).unwrap()).unwrap_err();
    assert!(e.contains("first step MUST also be a 'connect'"), "{e}");
    // As HAProxy: a `connect` right after the option's request is not enough for an expect.
    let e = assemble(o(), rules(&["connect port 81", "expect status 200"]).unwrap()).unwrap_err();
    assert!(e.contains("expect rule at step 2 (missing send rule)"), "{e}");
    // The option's request merges into the first explicit send, wherever it is.
    let s = assemble(o(), rules(&["connect port 81", "send uri /a", "expect status 200"]).unwrap()).unwrap();
    assert!(matches!(&s[1], Step::SendHttp(h) if h.method() == "OPTIONS" && !h.from_opt));
    assert_eq!(s.len(), 3);
}

#[test]
fn simple_rulesets_run_on_the_fast_check() {
    let c = as_simple(&seq(r"HEAD /i HTTP/1.1\r\nHost:\ w", &["expect status 200"])).unwrap();
    assert_eq!((c.method.as_str(), c.uri.as_str(), c.header("host")), ("HEAD", "/i", Some("w")));
    assert_eq!(c.expect.to_string(), "status 200");
    assert_eq!(as_simple(&seq("", &[])).unwrap().expect, Default::default());
    assert!(as_simple(&seq("", &["expect hdr name x"])).is_none());
    assert!(as_simple(&seq("", &["send body x"])).is_none());
    assert!(as_simple(&seq("", &["expect status 200", "expect string a"])).is_none());
    assert!(as_simple(&seq("", &["expect status 200 comment c"])).is_none());
    assert!(as_simple(&seq("", &["send hdr X %[str(a)]"])).is_none());
}

#[test]
fn disable_on_404_passes_conditionally() {
    let mut s = seq("GET /", &["expect status 200"]);
    s.disable_on_404 = true;
    let p = drive(&s, &[b"HTTP/1.1 404 Not Found\r\n\r\n"]).0.unwrap();
    assert_eq!((p.status, p.code), (CheckStatus::L7Okc, Some(404)));
    assert!(drive(&s, &[b"HTTP/1.1 500 X\r\n\r\n"]).0.is_err());
}

#[test]
fn bad_lines_say_why() {
    let mut c = None;
    for (line, why) in [
        ("expect binary 00", "but got 'binary'"),
        ("expect hdr x", "name keyword"),
        ("expect hdr name -m foo x", "only supports 'str'"),
        ("expect hdr name-lf -m reg x", "regex"),
        ("expect rstatus (", "bad regex"),
        ("expect status 2x0", "invalid status code list"),
        ("expect status 300-200", "invalid range"),
        ("send meth", "expects a string"),
        ("send hdr Host", "<name> and <value>"),
        ("send hdr Host a hdr host b", "already defined"),
        ("send frob 1", "expects 'comment', 'meth'"),
        ("send uri-lf %[nosuch]", "log-format"),
        ("send-binary 00", "only supports"),
        ("connect proto h2", "HTTP/1 only"),
        ("connect proto none", "only `h1`"),
        ("set-var(proc.x) int(1)", "`proc.`"),
        ("unset-var(check.x) y", "unexpected argument"),
        ("disable-on-404 now", "takes no argument"),
    ] {
        let e = parse_line(line, &mut c).unwrap_err();
        assert!(e.contains(why), "{line}: {e}");
    }
    assert!(parse_line("connect proto h1 port 81", &mut c).is_ok());
}

#[test]
fn responses_are_read_until_the_rule_can_decide() {
    assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", false, false), Parsed::NeedMore);
    assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", true, false), Parsed::Invalid);
    let Parsed::Resp(r) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", false, false) else { panic!() };
    assert!(!r.complete && r.body == b"ab");
    let Parsed::Resp(r) =
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", false, false)
    else {
        panic!()
    };
    assert!(r.complete && r.body == b"ab");
    // A body split over reads: the match waits for the rest.
    let s = seq("GET /", &["expect string ready"]);
    let mut run = Run::new(&s, cx());
    assert!(matches!(run.step(), Action::Connect(_)));
    assert!(matches!(run.step(), Action::Send(_)));
    assert_eq!(run.step(), Action::Recv);
    run.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nI'm re");
    assert_eq!(run.step(), Action::Recv);
    run.feed(b"ady");
    assert!(matches!(run.step(), Action::Pass(_)));
}
