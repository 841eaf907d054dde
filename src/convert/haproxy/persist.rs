//! Session persistence: `cookie`, `stick-table`, `stick` and HAProxy 1.4's `appsession`, plus
//! the per-server `cookie` values, fitted to what lbha's validation requires.

use super::ast::Directive;
use super::proxy::{ProxyKind, St};
use super::{Cx, src};
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

/// A size as HAProxy writes it (`1000`, `100k`, `1m`): an integer, or the text with its unit.
fn size(cx: &mut Cx, d: &Directive, v: Option<&str>, what: &str) -> Option<Value> {
    let Some(v) = v else {
        cx.error(d, format!("missing {what}"));
        return None;
    };
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    match (&v[..digits], &v[digits..]) {
        (n, "") if !n.is_empty() => n.parse::<i64>().ok().map(Value::from),
        (n, "k" | "K" | "m" | "M" | "g" | "G") if !n.is_empty() => Some(Value::from(v.to_ascii_lowercase())),
        _ => {
            cx.error(d, format!("bad size for {what}: `{v}` (expected a number with an optional k, m or g)"));
            None
        }
    }
}

/// `cookie NAME [rewrite|insert|prefix] [indirect] [nocache] [preserve] [httponly] [secure]
/// [domain D] [maxidle T] [maxlife T] ...`.
pub(super) fn cookie(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(name) = d.arg(1) else {
        cx.error(d, "missing cookie name");
        return;
    };
    if !st.allowed(cx, d, "cookie") {
        return;
    }
    let mut t = InlineTable::new();
    t.insert("name", name.into());
    let mut left = Vec::new();
    let mut attrs = toml_edit::Array::new();
    let mut i = 2;
    while let Some(w) = d.arg(i) {
        i += 1;
        match w {
            "rewrite" | "insert" | "prefix" => {
                t.insert("mode", w.into());
            }
            "indirect" | "nocache" | "preserve" | "httponly" | "secure" => {
                t.insert(w, true.into());
            }
            "domain" => {
                match d.arg(i) {
                    Some(v) if !t.contains_key("domain") => {
                        t.insert("domain", v.into());
                    }
                    Some(v) => left.push(format!("domain {v}")),
                    None => cx.error(d, "`domain` needs a value"),
                }
                i += 1;
            }
            "maxidle" | "maxlife" => {
                if let Some(v) = cx.time_s(d, d.arg(i), w) {
                    t.insert(w, v);
                }
                i += 1;
            }
            "attr" => {
                let Some(v) = d.arg(i) else {
                    cx.error(d, "`attr` needs a value");
                    return;
                };
                // HAProxy refuses them too: each value is one `; ATTR` of the Set-Cookie.
                if v.bytes().any(|b| b.is_ascii_control() || b == b';') {
                    cx.error(d, format!("`attr` values have no control characters or ';' (got `{v}`)"));
                    return;
                }
                attrs.push(v);
                i += 1;
            }
            "dynamic" => {
                t.insert("dynamic", true.into());
            }
            "postonly" => left.push(w.to_string()),
            other => {
                cx.error(d, format!("unknown cookie option `{other}`"));
                return;
            }
        }
    }
    if !attrs.is_empty() {
        t.insert("attr", Value::Array(attrs));
    }
    if !left.is_empty() {
        cx.report(d, ReportKind::Approximated, format!("`{}` is not supported yet and was left out", left.join(" ")));
    }
    st.out.set("cookie", Value::InlineTable(t), src(d));
}

/// `stick-table type T [len N] size N [expire T] [nopurge] [peers P] [store LIST] ...`.
pub(super) fn stick_table(st: &mut St, d: &Directive, cx: &mut Cx) {
    if !st.allowed(cx, d, "stick_table") {
        return;
    }
    if let Some(t) = table_args(d, 1, true, &mut st.out, cx) {
        st.out.set("stick_table", Value::InlineTable(t), src(d));
    }
}

/// The arguments of `stick-table` from `d.arg(first)` on (`peers` only where `with_peers`);
/// None when the table was dropped.
pub(super) fn table_args(
    d: &Directive,
    first: usize,
    with_peers: bool,
    out: &mut crate::convert::out::TableOut,
    cx: &mut Cx,
) -> Option<InlineTable> {
    let mut t = InlineTable::new();
    let mut left = Vec::new();
    let mut i = first;
    while let Some(w) = d.arg(i) {
        let v = d.arg(i + 1);
        i += 2;
        match w {
            "type" => match v {
                Some(ty @ ("ip" | "ipv6" | "integer" | "string" | "binary")) => {
                    t.insert("type", ty.into());
                }
                Some(other) => {
                    cx.drop(
                        out,
                        d,
                        ReportKind::Unsupported,
                        format!("stick tables of type `{other}` are not supported"),
                    );
                    return None;
                }
                None => cx.error(d, "`type` needs a value"),
            },
            "len" => match v.and_then(|v| cx.parse_num::<u32>(d, v, "len")) {
                Some(n) => {
                    t.insert("len", i64::from(n).into());
                }
                None if v.is_none() => cx.error(d, "`len` needs a value"),
                None => {}
            },
            "size" => {
                if let Some(s) = size(cx, d, v, "size") {
                    t.insert("size", s);
                }
            }
            "expire" => {
                if let Some(e) = cx.time(d, v, "expire") {
                    t.insert("expire", e);
                }
            }
            "nopurge" => {
                t.insert("nopurge", true.into());
                i -= 1;
            }
            "store" => match v {
                Some(list) => {
                    let mut a = toml_edit::Array::new();
                    for item in crate::stktable::def::split_store(list) {
                        a.push(item);
                    }
                    t.insert("store", Value::Array(a));
                }
                None => cx.error(d, "`store` needs a list of data types"),
            },
            "peers" if with_peers => match v {
                Some(p) => {
                    t.insert("peers", p.into());
                }
                None => cx.error(d, "`peers` needs a section name"),
            },
            "recv-only" => {
                left.push(w.to_string());
                i -= 1;
            }
            other => left.push(format!("{other} {}", v.unwrap_or_default())),
        }
    }
    if !left.is_empty() {
        cx.report(d, ReportKind::Approximated, format!("`{}` is not supported yet and was left out", left.join(" ")));
    }
    Some(t)
}

/// `stick on|match|store-request|store-response PATTERN [table T] [if|unless COND]`.
pub(super) fn stick(st: &mut St, d: &Directive, cx: &mut Cx) {
    let key = match d.arg(1) {
        Some("on") => "on",
        Some("match") => "match",
        Some("store-request") => "store_request",
        Some("store-response") => "store_response",
        Some(other) => {
            cx.drop(&mut st.out, d, ReportKind::Unknown, format!("unknown stick rule `{other}`"));
            return;
        }
        None => {
            cx.error(d, "missing stick rule");
            return;
        }
    };
    let Some(pattern) = d.arg(2) else {
        cx.error(d, "missing pattern");
        return;
    };
    if !st.allowed(cx, d, "stick") {
        return;
    }
    let mut next = 3;
    let table = match d.arg(3) {
        Some("table") => match d.arg(4) {
            Some(t) => {
                next = 5;
                Some(t)
            }
            None => {
                cx.error(d, "`table` needs a table name");
                return;
            }
        },
        _ => None,
    };
    // The classic fetches, or any sample expression with its converters (lbha checks its side
    // and type against the table when it loads the result).
    if crate::persist::stick::Fetch::parse(pattern).is_err()
        && let Err(e) = crate::sample::SampleExpr::parse(pattern)
    {
        cx.drop(&mut st.out, d, ReportKind::Unsupported, format!("stick pattern `{pattern}` is not supported: {e}"));
        return;
    }
    let mut t = InlineTable::new();
    t.insert(key, pattern.into());
    if let Some(name) = table {
        t.insert("table", name.into());
    }
    match super::rules::with_condition(st, d, next, t, cx) {
        Ok(t) => st.out.push("stick", Value::InlineTable(t), src(d)),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// `use-server SERVER if|unless COND` (SERVER may be a log-format string).
pub(super) fn use_server(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(name) = d.arg(1) else {
        cx.error(d, "missing server name");
        return;
    };
    if d.arg(2).is_none() {
        cx.error(d, "`use-server` requires either `if` or `unless` followed by a condition (as in HAProxy)");
        return;
    }
    if !st.allowed(cx, d, "use_server") {
        return;
    }
    let mut t = InlineTable::new();
    t.insert("server", name.into());
    match super::rules::with_condition(st, d, 2, t, cx) {
        Ok(t) => st.out.push("use_server", Value::InlineTable(t), src(d)),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// `force-persist if|unless COND` and `ignore-persist if|unless COND`, one ordered list.
pub(super) fn persist_rule(st: &mut St, d: &Directive, cx: &mut Cx) {
    if d.arg(1).is_none() {
        let why = format!("`{}` requires either `if` or `unless` followed by a condition (as in HAProxy)", d.args[0]);
        cx.error(d, why);
        return;
    }
    if !st.allowed(cx, d, "persist_rules") {
        return;
    }
    let mut t = InlineTable::new();
    t.insert("action", d.args[0].as_str().into());
    match super::rules::with_condition(st, d, 1, t, cx) {
        Ok(t) => st.out.push("persist_rules", Value::InlineTable(t), src(d)),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// `appsession COOKIE len N timeout T [request-learn] [prefix] [mode M]`.
pub(super) fn appsession(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(cookie) = d.arg(1) else {
        cx.error(d, "missing cookie name");
        return;
    };
    if !st.allowed(cx, d, "appsession") {
        return;
    }
    let mut t = InlineTable::new();
    t.insert("cookie", cookie.into());
    let mut left = Vec::new();
    let mut i = 2;
    while let Some(w) = d.arg(i) {
        match w {
            "len" => {
                if let Some(n) = d.arg(i + 1).and_then(|v| cx.parse_num::<u32>(d, v, "len")) {
                    t.insert("len", i64::from(n).into());
                }
                i += 2;
            }
            "timeout" => {
                if let Some(v) = cx.time(d, d.arg(i + 1), "timeout") {
                    t.insert("timeout", v);
                }
                i += 2;
            }
            "request-learn" => {
                t.insert("request_learn", true.into());
                i += 1;
            }
            "prefix" => {
                left.push("prefix".to_string());
                i += 1;
            }
            "mode" => {
                left.push(format!("mode {}", d.arg(i + 1).unwrap_or_default()));
                i += 2;
            }
            other => {
                cx.error(d, format!("unknown appsession option `{other}`"));
                return;
            }
        }
    }
    if !left.is_empty() {
        let msg = format!(
            "`{}` left out: lbha looks the session id up in the cookie, `;jsessionid=` and the query string",
            left.join(" ")
        );
        cx.report(d, ReportKind::Approximated, msg);
    }
    st.out.set("appsession", Value::InlineTable(t), src(d));
}

/// Fits what was read to lbha's rules: persistence needs mode http (HAProxy ignores it in tcp
/// mode too), server cookie values need a backend cookie, and a backend cookie needs a value on
/// every non-backup server.
pub(super) fn finish(st: &mut St, cx: &mut Cx) {
    if st.kind == ProxyKind::Defaults {
        return;
    }
    let mode = st
        .out
        .value("mode")
        .or_else(|| st.defaults.and_then(|d| d.out.value("mode")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let http = mode.as_deref() == Some("http");
    if !http {
        for key in ["cookie", "appsession"] {
            if let Some(e) = st.out.remove(key)
                && let Some(s) = e.srcs.first()
            {
                cx.report_at(
                    &s.loc,
                    ReportKind::Ignored,
                    key,
                    "persistence by cookie needs mode http (HAProxy ignores it in tcp mode too)",
                );
            }
        }
    }
    let own_cookie = st.out.get("cookie").is_some();
    // `dynamic` with a key (here or inherited): servers without a value get HAProxy's derived one.
    let dynamic = st
        .out
        .value("cookie")
        .or_else(|| st.defaults.and_then(|d| d.out.value("cookie")))
        .and_then(|c| c.as_inline_table()?.get("dynamic")?.as_bool())
        .unwrap_or(false)
        && (st.out.get("dynamic_cookie_key").is_some()
            || st.defaults.is_some_and(|d| d.out.get("dynamic_cookie_key").is_some()));
    let any_cookie = own_cookie || (http && st.defaults.is_some_and(|d| d.out.get("cookie").is_some()));
    let Some(servers) = st.out.list_mut("servers") else {
        return;
    };
    for (v, s) in servers.iter_mut() {
        let Value::InlineTable(t) = v else { continue };
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let backup = t.get("backup").and_then(Value::as_bool).unwrap_or(false);
        match (t.contains_key("cookie"), any_cookie) {
            (true, false) => {
                t.remove("cookie");
                let msg =
                    "the server's `cookie` value has no effect without a backend `cookie` (in HAProxy too); left out";
                cx.report_at(&s.loc, ReportKind::Note, &format!("server {name}"), msg);
            }
            (false, true) if own_cookie && !backup && !dynamic => {
                t.insert("cookie", name.as_str().into());
                let msg = "HAProxy sets no persistence cookie for a server without `cookie`; lbha needs a value, so the server's name is used";
                cx.report_at(&s.loc, ReportKind::Approximated, &format!("server {name}"), msg);
            }
            _ => {}
        }
    }
}
