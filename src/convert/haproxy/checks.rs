//! Health checks (`option httpchk`, `http-check`, `external-check`) and the stats page.

use super::ast::Directive;
use super::proxy::{ProxyKind, St};
use super::{Cx, src};
use crate::convert::out::Src;
use crate::convert::report::ReportKind;
use toml_edit::{Array, InlineTable, Value};

/// `option httpchk`'s request.
pub struct HttpChk {
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub srcs: Vec<Src>,
}

pub(super) fn stats(st: &mut St, d: &Directive, cx: &mut Cx) {
    let what = d.arg(1).unwrap_or_default();
    match what {
        "enable" | "uri" | "auth" | "realm" | "refresh" | "hide-version" | "admin" => {}
        "show-legends" | "show-node" | "show-desc" | "show-modules" | "scope" | "http-request" | "bind-process" => {
            cx.drop(&mut st.out, d, ReportKind::Unsupported, format!("`stats {what}` is not supported yet"));
            return;
        }
        "disable" => {
            st.out.remove("stats");
            return;
        }
        _ => {
            cx.drop(&mut st.out, d, ReportKind::Unknown, format!("unknown stats keyword `{what}`"));
            return;
        }
    }
    if !st.allowed(cx, d, "stats") {
        return;
    }
    let s = src(d);
    let need = |cx: &mut Cx| {
        let v = d.arg(2).map(str::to_string);
        if v.is_none() {
            cx.error(d, format!("`stats {what}` needs a value"));
        }
        v
    };
    match what {
        "enable" => st.out.ensure_table("stats", s),
        "uri" => {
            if let Some(u) = need(cx) {
                st.out.set_in("stats", "uri", u, s);
            }
        }
        "auth" => {
            if let Some(a) = need(cx) {
                st.out.push_in("stats", "auth", a, s);
            }
        }
        "realm" => {
            if let Some(r) = need(cx) {
                if d.args.len() > 3 {
                    cx.report(
                        d,
                        ReportKind::Note,
                        format!("the realm is one word: HAProxy uses `{r}` and ignores `{}` (escape spaces as '\\ ' to keep them); converted the same way", d.args[3..].join(" ")),
                    );
                }
                st.out.set_in("stats", "realm", r, s);
            }
        }
        "refresh" => {
            if let Some(t) = cx.time_s(d, d.arg(2), "stats refresh") {
                st.out.set_in("stats", "refresh", t, s);
            }
        }
        "admin" => match super::rules::condition(st, d, 2, cx) {
            Ok(Some((kw, text))) => st.out.set_in("stats", "admin", format!("{kw} {text}"), s),
            Ok(None) => cx.error(d, "`stats admin` needs `if` or `unless` and a condition"),
            Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
        },
        _ => st.out.set_in("stats", "hide_version", true, s),
    }
}

pub(super) fn http_check(st: &mut St, d: &Directive, cx: &mut Cx) {
    match d.arg(1) {
        Some("disable-on-404") => {
            if st.allowed(cx, d, "check") {
                st.out.set_in("check", "disable_on_404", true, src(d));
            }
        }
        Some("send-state") => {
            if st.allowed(cx, d, "check") {
                st.out.set_in("check", "send_state", true, src(d));
            }
        }
        Some(_) => {
            // `connect`, `send`, `expect`, `comment`...: kept as the rule's text, in order.
            if !st.allowed(cx, d, "check") {
                return;
            }
            let line = d.args[1..].iter().map(|a| super::server_side::escape(a)).collect::<Vec<_>>().join(" ");
            if let Err(e) = crate::health::httpseq::parse_line(&line, &mut None) {
                cx.drop(&mut st.out, d, ReportKind::Unsupported, e);
                return;
            }
            if d.arg(1) == Some("send") {
                st.http_send_seen = true;
            }
            st.out.push_in("check", "http_check", line, src(d));
        }
        None => cx.error(d, "missing http-check action"),
    }
}

/// Escapes a word for lbha's `check.http` text, which splits on spaces and reads `\` escapes.
fn check_word(w: &str) -> String {
    w.replace('\\', "\\\\").replace(' ', "\\ ")
}

/// Writes the collected `option httpchk` / `http-check send` and `external-check` settings.
pub(super) fn finish(st: &mut St, cx: &mut Cx) {
    if let Some(chk) = st.httpchk.take() {
        // A header block after the version (`HTTP/1.1\r\nHost:\ www`) becomes header lines.
        let mut headers = Vec::new();
        let version = chk.version.map(|v| match v.find(['\r', '\n']) {
            Some(i) => {
                headers.extend(v[i..].split(['\r', '\n']).filter(|l| !l.is_empty()).map(str::to_string));
                v[..i].to_string()
            }
            None => v,
        });
        let words: Vec<String> = [chk.method, chk.uri, version]
            .into_iter()
            .flatten()
            .filter(|w| !w.is_empty())
            .map(|w| check_word(&w))
            .collect();
        let first = chk.srcs.first().cloned();
        if let Some(first) = first {
            let d = Directive {
                loc: first.loc.clone(),
                args: vec!["option".into(), "httpchk".into()],
                raw: "option httpchk".into(),
                comments: Default::default(),
            };
            if st.allowed(cx, &d, "check") {
                for s in chk.srcs {
                    st.out.set_in("check", "http", words.join(" "), s);
                }
                if !headers.is_empty() {
                    let mut a = Array::new();
                    for h in headers {
                        a.push(h.replace('\\', "\\\\"));
                    }
                    st.out.set_in("check", "headers", a, first);
                }
            }
        }
    }
    if let Some(opt) = st.ext.option.clone() {
        let command = st.ext.command.clone().or_else(|| st.defaults.and_then(|d| d.ext.command.clone()));
        let path = st.ext.path.clone().or_else(|| st.defaults.and_then(|d| d.ext.path.clone()));
        match command {
            Some(_) if !st.kind.lbha_allows("check") => {}
            Some((c, _)) if st.kind != ProxyKind::Defaults => {
                let mut t = InlineTable::new();
                t.insert("command", c.into());
                if let Some((p, _)) = path {
                    t.insert("path", p.into());
                }
                st.out.set_in("check", "external", Value::InlineTable(t), opt);
            }
            Some(_) => {}
            None if st.kind == ProxyKind::Defaults || !st.kind.lbha_allows("check") => {}
            None => cx.errors.push(crate::convert::report::ConvertError {
                loc: opt.loc,
                column: None,
                message: "option external-check needs `external-check command <path>`".into(),
            }),
        }
    }
}
