//! Error pages and logging keywords of proxies: `errorfile`, `errorloc*`, `errorfiles`,
//! `http-error`, `log-format`, `log-format-sd`, `capture`, `declare capture`,
//! `unique-id-format`, `unique-id-header`, and `http-errors` sections.

use super::ast::{Directive, Section};
use super::proxy::St;
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

/// Converts one proxy directive this module owns; `false` when it is not one of them.
pub(super) fn directive(st: &mut St, d: &Directive, cx: &mut Cx) -> bool {
    let kw = d.keyword();
    match kw {
        "errorfile" | "errorloc" | "errorloc302" | "errorloc303" => {
            let key = kw;
            match (d.arg(1), d.arg(2)) {
                (Some(code), Some(v)) if code.parse::<u16>().is_ok() => {
                    if st.allowed(cx, d, key) {
                        st.out.set_in(key, code, v, src(d));
                    }
                }
                _ => cx.error(d, format!("expected `{kw} CODE {}`", if kw == "errorfile" { "FILE" } else { "URL" })),
            }
        }
        "errorfiles" => match d.arg(1) {
            Some(name) => {
                let mut t = InlineTable::new();
                t.insert("name", name.into());
                let mut codes = toml_edit::Array::new();
                for c in d.args.iter().skip(2) {
                    match c.parse::<i64>() {
                        Ok(n) => codes.push(n),
                        Err(_) => {
                            cx.error(d, format!("`{c}` is not a status code"));
                            return true;
                        }
                    }
                }
                if !codes.is_empty() {
                    t.insert("codes", Value::Array(codes));
                }
                if st.allowed(cx, d, "errorfiles") {
                    st.out.push("errorfiles", t, src(d));
                }
            }
            None => cx.error(d, "missing http-errors section name"),
        },
        "http-error" => http_error(st, d, cx),
        "log-format" | "log-format-sd" | "unique-id-format" | "unique-id-header" => match d.arg(1) {
            Some(v) => {
                let key = kw.replace('-', "_");
                // The lexer split an unquoted format at its spaces; HAProxy joins them back.
                let text = d.args[1..].join(" ");
                let text = if kw == "unique-id-header" { v.to_string() } else { text };
                if st.allowed(cx, d, &key) {
                    st.out.set(&key, text, src(d));
                }
            }
            None => cx.error(d, format!("missing {kw} value")),
        },
        "capture" => capture(st, d, cx),
        "declare" if d.arg(1) == Some("capture") => {
            let dir = d.arg(2).unwrap_or("");
            match (dir, d.arg(3), d.arg(4).and_then(|l| l.parse::<i64>().ok())) {
                ("request" | "response", Some("len"), Some(len)) => {
                    let key = if dir == "request" { "capture_request" } else { "capture_response" };
                    let mut t = InlineTable::new();
                    t.insert("len", len.into());
                    if st.allowed(cx, d, key) {
                        st.out.push(key, t, src(d));
                    }
                }
                _ => cx.error(d, "expected `declare capture request|response len N`"),
            }
        }
        _ => return false,
    }
    true
}

/// `capture request|response header NAME len N`.
fn capture(st: &mut St, d: &Directive, cx: &mut Cx) {
    let dir = d.arg(1).unwrap_or("");
    match (dir, d.arg(2), d.arg(3), d.arg(4), d.arg(5).and_then(|l| l.parse::<i64>().ok())) {
        ("request" | "response", Some("header"), Some(name), Some("len"), Some(len)) => {
            let key = if dir == "request" { "capture_request" } else { "capture_response" };
            let mut t = InlineTable::new();
            t.insert("header", name.into());
            t.insert("len", len.into());
            if st.allowed(cx, d, key) {
                st.out.push(key, t, src(d));
            }
        }
        ("cookie", Some(name), Some("len"), Some(len), _) => match len.parse::<i64>() {
            Ok(len) => {
                let mut t = InlineTable::new();
                t.insert("name", name.into());
                t.insert("len", len.into());
                if st.allowed(cx, d, "capture_cookie") {
                    st.out.set("capture_cookie", t, src(d));
                }
            }
            Err(_) => cx.error(d, "expected `capture cookie NAME len N`"),
        },
        _ => cx.error(d, "expected `capture request|response header NAME len N`"),
    }
}

/// `http-error status CODE [content-type T] [string S|file F|lf-string S|lf-file F|errorfile F|
/// errorfiles NAME|default-errorfiles] [hdr NAME VALUE]...`.
fn http_error(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(code) = (d.arg(1) == Some("status")).then(|| d.arg(2).and_then(|c| c.parse::<i64>().ok())).flatten()
    else {
        cx.error(d, "expected `http-error status CODE ...`");
        return;
    };
    let mut t = InlineTable::new();
    t.insert("status", code.into());
    let mut hdrs = toml_edit::Array::new();
    let mut i = 3;
    while let Some(w) = d.arg(i) {
        match w {
            "default-errorfiles" => {
                t.insert("default_errorfiles", true.into());
                i += 1;
            }
            "hdr" => match (d.arg(i + 1), d.arg(i + 2)) {
                (Some(n), Some(v)) => {
                    hdrs.push(format!("{n}: {v}"));
                    i += 3;
                }
                _ => {
                    cx.error(d, "`hdr` needs a name and a value");
                    return;
                }
            },
            "content-type" | "string" | "file" | "lf-string" | "lf-file" | "errorfile" | "errorfiles" => {
                let Some(v) = d.arg(i + 1) else {
                    cx.error(d, format!("missing value after `{w}`"));
                    return;
                };
                t.insert(&w.replace('-', "_")[..], v.into());
                i += 2;
            }
            other => {
                cx.error(d, format!("unknown http-error argument `{other}`"));
                return;
            }
        }
    }
    if !hdrs.is_empty() {
        t.insert("hdr", Value::Array(hdrs));
    }
    if st.allowed(cx, d, "http_error") {
        st.out.push("http_error", t, src(d));
    }
}

/// `http-errors NAME` with its `errorfile CODE FILE` lines → `[[http_errors]]`.
pub(super) fn section(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    if let Some(n) = &sec.name {
        out.set("name", n.as_str(), crate::convert::out::Src::bare(sec.loc.clone()));
    }
    for d in &sec.directives {
        match (d.keyword(), d.arg(1), d.arg(2)) {
            ("errorfile", Some(code), Some(file)) if code.parse::<u16>().is_ok() => {
                out.set_in("errorfile", code, file, src(d));
            }
            ("errorfile", ..) => cx.error(d, "expected `errorfile CODE FILE`"),
            _ => cx.drop(&mut out, d, ReportKind::Unknown, "http-errors sections hold only errorfile lines"),
        }
    }
    out
}
