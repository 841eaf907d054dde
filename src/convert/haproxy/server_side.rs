//! Conversion of the server-side keywords of issue 17: PROXY protocol (`accept-proxy` is a bind
//! word, kept in `proxy::bind`), `tcp-request connection expect-proxy layer4`, and the server
//! parameters `send-proxy`, `send-proxy-v2`, `send-proxy-v2-ssl`, `proxy-v2-options`,
//! `check-send-proxy`.

use super::ast::Directive;
use super::proxy::St;
use super::rules::with_condition;
use super::{Cx, src};
use toml_edit::{InlineTable, Value};

/// `tcp-request connection expect-proxy layer4 [if|unless COND]` → `expect_proxy`.
pub(super) fn expect_proxy(st: &mut St, d: &Directive, cx: &mut Cx) {
    if d.arg(3) != Some("layer4") {
        cx.error(d, "expected `tcp-request connection expect-proxy layer4 [if|unless COND]`");
        return;
    }
    if !st.allowed(cx, d, "expect_proxy") {
        return;
    }
    match with_condition(st, d, 4, InlineTable::new(), cx) {
        Ok(t) if t.is_empty() => st.out.set("expect_proxy", true, src(d)),
        Ok(t) => st.out.set("expect_proxy", Value::InlineTable(t), src(d)),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// One PROXY protocol server parameter; returns whether it took `value`.
pub(super) fn proxy_param(
    w: &str,
    value: Option<&str>,
    mut set: impl FnMut(&'static str, Value),
    cx: &mut Cx,
    d: &Directive,
) -> bool {
    match w {
        "send-proxy" => set("send_proxy", true.into()),
        "send-proxy-v2" => set("send_proxy_v2", true.into()),
        // HAProxy's shorthand for `send-proxy-v2 proxy-v2-options ssl`.
        "send-proxy-v2-ssl" => {
            set("send_proxy_v2", true.into());
            set("proxy_v2_options", "ssl".into());
        }
        "check-send-proxy" => set("check_send_proxy", true.into()),
        _ => {
            let Some(v) = value else {
                cx.error(d, "`proxy-v2-options` needs a value");
                return true;
            };
            let (kept, left): (Vec<&str>, Vec<&str>) =
                v.split(',').filter(|o| !o.is_empty()).partition(|o| matches!(*o, "ssl" | "authority" | "unique-id"));
            if !left.is_empty() {
                let msg = format!("proxy-v2-options `{}` not supported yet by lbha; sent without them", left.join(","));
                cx.report(d, crate::convert::report::ReportKind::Unsupported, msg);
            }
            if !kept.is_empty() {
                set("proxy_v2_options", kept.join(",").into());
            }
            return true;
        }
    }
    false
}

/// The keys of `check` that choose its kind; setting one clears the others (HAProxy keeps the
/// last `option`).
const CHECK_KINDS: &[&str] =
    &["tcp_check", "redis_check", "mysql_check", "pgsql_check", "smtpchk", "ldap_check", "ssl_hello_chk"];

/// `option tcp-check|redis-check|mysql-check|pgsql-check|smtpchk|ldap-check|ssl-hello-chk`.
pub(super) fn check_option(st: &mut St, d: &Directive, prefix: Option<&str>, cx: &mut Cx) {
    let name = d.arg(1).unwrap_or_default();
    let key = match name {
        "tcp-check" => "tcp_check",
        "redis-check" => "redis_check",
        "mysql-check" => "mysql_check",
        "pgsql-check" => "pgsql_check",
        "smtpchk" => "smtpchk",
        "ldap-check" => "ldap_check",
        _ => "ssl_hello_chk",
    };
    if prefix.is_some() {
        st.out.remove_in("check", key);
        return;
    }
    if !st.allowed(cx, d, "check") {
        return;
    }
    let args: Vec<&str> = d.args[2..].iter().map(String::as_str).collect();
    let value: Value = match (name, args.as_slice()) {
        ("tcp-check", []) => {
            // The rules may come before or after the option; keep those already seen.
            match st.out.get_in("check", "tcp_check").cloned() {
                Some(v) => v,
                None => Value::Array(toml_edit::Array::new()),
            }
        }
        ("mysql-check", []) | ("smtpchk", []) => true.into(),
        ("mysql-check", ["user", _] | ["user", _, "post-41" | "pre-41"]) | ("pgsql-check", ["user", _]) => {
            args.join(" ").into()
        }
        ("smtpchk", [verb @ ("EHLO" | "HELO"), domain]) => format!("{verb} {domain}").into(),
        // HAProxy sends its default `HELO localhost` for anything else.
        ("smtpchk", _) => true.into(),
        ("redis-check" | "ldap-check" | "ssl-hello-chk", []) => true.into(),
        _ => {
            cx.error(d, format!("unexpected arguments to `option {name}`"));
            return;
        }
    };
    for k in CHECK_KINDS.iter().filter(|k| **k != key) {
        st.out.remove_in("check", k);
    }
    st.out.set_in("check", key, value, src(d));
}

/// `tcp-check RULE...`: kept as the rule's text, re-escaped the way lbha reads it.
pub(super) fn tcp_check_rule(st: &mut St, d: &Directive, cx: &mut Cx) {
    if d.arg(1).is_none() {
        cx.error(d, "missing tcp-check rule");
        return;
    }
    if !st.allowed(cx, d, "check") {
        return;
    }
    let line = d.args[1..].iter().map(|a| escape(a)).collect::<Vec<_>>().join(" ");
    let mut comment = None;
    if let Err(e) = crate::health::tcpcheck::parse_line(&line, &mut comment) {
        cx.drop(&mut st.out, d, crate::convert::report::ReportKind::Unsupported, e.to_string());
        return;
    }
    st.out.push_in("check", "tcp_check", line, src(d));
}

/// HAProxy's escapes for one word: blanks, backslashes, quotes and control bytes.
pub(super) fn escape(w: &str) -> String {
    let mut s = String::new();
    for c in w.chars() {
        match c {
            ' ' => s.push_str("\\ "),
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\'' => s.push_str("\\'"),
            '\r' => s.push_str("\\r"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

/// A value lbha unescapes again (`agent_send`): backslashes and control bytes escaped, spaces kept.
pub(super) fn escape_text(v: &str) -> String {
    escape(v).replace("\\ ", " ")
}

/// `retry-on KEYWORD...` → `retry_on`.
pub(super) fn retry_on(st: &mut St, d: &Directive, cx: &mut Cx) {
    let text = d.args[1..].join(" ");
    if text.is_empty() {
        cx.error(d, "`retry-on` needs at least one keyword");
        return;
    }
    if let Err(e) = crate::proxy::retry_on::RetryOn::parse(&text) {
        cx.error(d, e);
        return;
    }
    if st.allowed(cx, d, "retry_on") {
        st.out.set("retry_on", text, src(d));
    }
}
