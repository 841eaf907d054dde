//! `tcp-request` and `tcp-response` lines: `inspect-delay`, and `connection|session|content`
//! rules with their action words kept as HAProxy writes them (lbha's `tcp_request` takes
//! `accept`, `reject`, `set-var(...) EXPR`, `unset-var(...)`, `capture EXPR len|id N`).

use super::ast::Directive;
use super::proxy::St;
use super::{Cx, src};
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

/// Whether the proxy is in mode tcp as converted so far (HAProxy's default mode is tcp).
pub(super) fn tcp_mode(st: &St) -> bool {
    let own = st.out.value("mode").or_else(|| st.defaults.and_then(|d| d.out.value("mode")));
    own.and_then(Value::as_str).is_none_or(|m| m == "tcp")
}

pub(super) fn tcp_rule(st: &mut St, d: &Directive, response: bool, cx: &mut Cx) {
    let (kw, key) = if response { ("tcp-response", "tcp_response") } else { ("tcp-request", "tcp_request") };
    match d.arg(1) {
        Some("inspect-delay") => {
            let delay_key = if response { "tcp_response_inspect_delay" } else { "tcp_request_inspect_delay" };
            if let Some(v) = cx.time(d, d.arg(2), &format!("{kw} inspect-delay"))
                && st.allowed(cx, d, delay_key)
            {
                st.out.set(delay_key, v, src(d));
            }
            return;
        }
        Some(set @ ("connection" | "session" | "content")) if !response || set == "content" => {}
        Some(other) => {
            cx.error(d, format!("unknown `{kw}` ruleset `{other}`"));
            return;
        }
        None => {
            cx.error(d, format!("`{kw}` needs a ruleset (connection, session, content) or inspect-delay"));
            return;
        }
    }
    let set = d.arg(1).unwrap_or_default();
    if !response && set != "content" && st.kind == super::proxy::ProxyKind::Backend {
        cx.error(d, format!("tcp-request {set} is not allowed in a backend (not a frontend), as in HAProxy"));
        return;
    }
    let end = d.args.iter().skip(2).position(|w| w == "if" || w == "unless").map_or(d.args.len(), |p| p + 2);
    let mut action = d.args[2..end].join(" ");
    // `capture SAMPLE len N` declares a request slot where HAProxy does, among `capture request
    // header` and `declare capture` (the numbering `%hr` and `capture.req.hdr(N)` see), and
    // lbha's rule names it by `id`.
    if let [cap, sample, len, n] = &d.args[2..end]
        && cap == "capture"
        && len == "len"
        && set == "content"
        && !response
        && let Ok(n) = n.parse::<u32>()
        && n > 0
        && matches!(st.kind, super::proxy::ProxyKind::Frontend | super::proxy::ProxyKind::Listen)
        && st.allowed(cx, d, "capture_request")
    {
        let mut slot = InlineTable::new();
        slot.insert("len", i64::from(n).into());
        st.out.push("capture_request", slot, src(d));
        let id = st.out.list_mut("capture_request").map_or(0, |l| l.len() - 1);
        action = format!("capture {sample} id {id}");
    }
    if d.args.get(2).is_some_and(|a| a == "capture") && st.kind == super::proxy::ProxyKind::Backend {
        cx.error(d, format!("'{kw} {set} capture': a backend has no frontend capability (as in HAProxy)"));
        return;
    }
    if d.args.get(2).is_some_and(|a| a == "capture") && (set != "content" || response) {
        cx.error(d, format!("'capture' is not allowed in '{kw} {set}' rules (as in HAProxy: content rules only)"));
        return;
    }
    if response && !tcp_mode(st) {
        let why = "tcp-response content rules on HTTP responses are not supported by lbha yet (they run in mode tcp)";
        cx.drop(&mut st.out, d, ReportKind::Unsupported, why);
        return;
    }
    if let Err(e) = crate::tcprules::parse_action(&action) {
        cx.drop(&mut st.out, d, ReportKind::Unsupported, e);
        return;
    }
    if !st.allowed(cx, d, key) {
        return;
    }
    let mut t = InlineTable::new();
    t.insert(set, action.into());
    match super::rules::condition(st, d, end, cx) {
        Ok(Some((k, text))) => {
            t.insert(k, text.into());
        }
        Ok(None) => {}
        Err((kind, m)) => {
            cx.drop(&mut st.out, d, kind, m);
            return;
        }
    }
    st.out.push(key, Value::InlineTable(t), src(d));
}
