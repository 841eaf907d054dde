//! An HTTP check from `check.http` (HAProxy's `option httpchk`), its legacy `headers` and
//! `expect`, and the `http_check` rules (HAProxy 2.2+'s `http-check connect|send|expect|comment`
//! lines), assembled as HAProxy 2.6 does. A ruleset the fast HTTP check can run (one request, at
//! most one plain expect) runs there; any other on the `tcp-check` engine.

use super::super::error::FieldPath;
use super::super::model;
use super::Ctx;
use crate::health::httpseq::{self, HttpRule, HttpSend, Line};
use crate::health::tcpcheck::{ExpectStep, Rule, Seq, Step};
use crate::health::{CheckKind, Expect, ExpectRule, HttpCheck};

/// The check of a section with `http`; `None` after an error (reported).
pub(super) fn kind(d: &model::CheckDef, at: &FieldPath, cx: &mut Ctx) -> Option<CheckKind> {
    let http = d.http.as_deref().unwrap_or_default();
    let mut text = http.to_string();
    for h in &d.headers {
        text.push_str("\\r\\n");
        text.push_str(&h.replace(' ', "\\ "));
    }
    let opt = match HttpCheck::from_haproxy(&text) {
        Ok(c) => c,
        Err(e) => {
            cx.err_v(at.clone(), e.to_string(), http);
            return None;
        }
    };
    let mut disable_on_404 = d.disable_on_404 == Some(true);
    let mut send_state = d.send_state == Some(true);
    let mut steps = Vec::new();
    let mut comment = None;
    let mut bad = false;
    for (i, line) in d.http_check.iter().flatten().enumerate() {
        match httpseq::parse_line(line, &mut comment) {
            Ok(Line::Rule(s)) => steps.push(*s),
            Ok(Line::DisableOn404) => disable_on_404 = true,
            Ok(Line::SendState) => send_state = true,
            Err(e) => {
                cx.err_v(at.key("http_check").index(i), e, line);
                bad = true;
            }
        }
    }
    if let Some(e) = &d.expect {
        if steps.iter().any(|s| matches!(s, Step::Expect(_))) {
            cx.err(at.key("expect"), "use either `expect` or `expect` rules in `http_check`, not both");
            bad = true;
        }
        match Expect::parse(e) {
            Ok(x) => {
                steps.push(Step::Expect(ExpectStep { negate: x.negate, rule: legacy(x.rule), ..Default::default() }))
            }
            Err(err) => {
                cx.err_v(at.key("expect"), err.to_string(), e);
                bad = true;
            }
        }
    }
    let steps = match httpseq::assemble(HttpSend::from_option(&opt), steps) {
        Ok(s) => s,
        Err(e) => {
            cx.err(at.key("http_check"), e);
            return None;
        }
    };
    if bad {
        return None;
    }
    let seq = Seq { steps, http: true, disable_on_404, send_state, ..Default::default() };
    if let Some(mut c) = httpseq::as_simple(&seq) {
        c.disable_on_404 = disable_on_404;
        c.send_state = send_state;
        return Some(CheckKind::Http(c));
    }

    Some(CheckKind::Seq(seq))
}

/// The legacy `expect` text's rule as an HTTP expect rule.
fn legacy(r: ExpectRule) -> Rule {
    Rule::Http(match r {
        ExpectRule::Status2xx3xx => HttpRule::Status(vec![200..=399]),
        ExpectRule::Status(v) => HttpRule::Status(v),
        ExpectRule::RStatus(re) => HttpRule::RStatus(re),
        ExpectRule::String(s) => HttpRule::Body(s.into_bytes()),
        // Compiled by `Expect::parse` already; the bytes form accepts the same syntax.
        ExpectRule::RString(re) => match regex::bytes::Regex::new(re.as_str()) {
            Ok(b) => HttpRule::RBody(b),
            Err(_) => HttpRule::Body(re.as_str().as_bytes().to_vec()),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::health::CheckKind;
    use std::path::Path;

    fn parse(check: &str) -> Result<crate::config::Snapshot, String> {
        let src = format!(
            "[[backend]]\nname = \"b\"\nmode = \"http\"\ncheck = {check}\nservers = [{{ name = \"a\", addr = \"127.0.0.1:2\", check = true }}]\n"
        );
        crate::config::parse(&src, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    fn kind(check: &str) -> CheckKind {
        let s = parse(check).unwrap_or_else(|e| panic!("{check}: {e}"));
        s.backends[0].servers[0].check.as_ref().expect("checked").kind.clone()
    }

    #[test]
    fn simple_rulesets_stay_on_the_fast_check_and_others_become_sequences() {
        assert!(matches!(kind("{ http = \"GET /\", expect = \"status 200\" }"), CheckKind::Http(_)));
        let k = kind("{ http = \"\", http_check = [\"send meth GET uri /h hdr Host x\", \"expect ! string down\"] }");
        let CheckKind::Http(h) = k else { panic!("{k:?}") };
        assert_eq!((h.method.as_str(), h.uri.as_str(), h.header("host")), ("GET", "/h", Some("x")));
        let k = kind("{ http = \"/\", http_check = [\"expect status 200\", \"expect hdr name x-ok\"] }");
        let CheckKind::Seq(s) = k else { panic!("{k:?}") };
        assert!(s.http && s.steps.len() == 3);
        let k = kind("{ http = \"/\", http_check = [\"send body x\", \"disable-on-404\"] }");
        let CheckKind::Seq(s) = k else { panic!("{k:?}") };
        assert!(s.disable_on_404);
    }

    #[test]
    fn bad_rules_are_located_errors() {
        let e = parse("{ http = \"/\", http_check = [\"expect status 200\", \"expect hdr nam x\"] }").unwrap_err();
        assert!(e.contains("t.toml:5") && e.contains("check.http_check[1]") && e.contains("name keyword"), "{e}");
        let e = parse("{ http = \"/\", http_check = [\"connect\", \"expect status 200\"] }").unwrap_err();
        assert!(e.contains("missing send rule"), "{e}");
        let e = parse("{ http = \"/\", expect = \"status 200\", http_check = [\"expect status 201\"] }").unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn send_state_rides_on_the_simple_check() {
        for check in [
            "{ http = \"/\", http_check = [\"send-state\"] }",
            "{ http = \"/\", send_state = true, expect = \"status 200\" }",
        ] {
            let CheckKind::Http(h) = kind(check) else { panic!("{check}") };
            assert!(h.send_state, "{check}");
        }
        let CheckKind::Http(h) = kind("{ http = \"/\" }") else { panic!() };
        assert!(!h.send_state);
        let k =
            kind("{ http = \"/\", http_check = [\"send-state\", \"expect status 200\", \"expect hdr name x-ok\"] }");
        let CheckKind::Seq(s) = k else { panic!("{k:?}") };
        assert!(s.send_state);
    }

    #[test]
    fn rules_without_httpchk_are_ignored_with_haproxys_warning() {
        let s = parse("{ http_check = [\"expect status 200\"] }").expect("loads");
        assert!(matches!(s.backends[0].servers[0].check.as_ref().unwrap().kind, CheckKind::Tcp));
        assert!(s.warnings.iter().any(|w| w.to_string().contains("are ignored")), "{:?}", s.warnings);
    }
}
