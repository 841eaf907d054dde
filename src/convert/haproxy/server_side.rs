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
                v.split(',').filter(|o| !o.is_empty()).partition(|o| matches!(*o, "ssl" | "authority"));
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
