//! Conversion of the server-connection keywords: `http-reuse` and `fullconn` (proxy), and the
//! server parameters `proto`, `pool-max-conn`, `pool-purge-delay`, `max-reuse`, `maxqueue`,
//! `minconn`.

use super::ast::Directive;
use super::proxy::St;
use super::{Cx, src};
use toml_edit::Value;

/// `http-reuse MODE` or `fullconn N`.
pub(super) fn proxy_directive(st: &mut St, d: &Directive, cx: &mut Cx) {
    match d.args[0].as_str() {
        "http-reuse" => match d.arg(1) {
            Some(m @ ("never" | "safe" | "aggressive" | "always")) => {
                if st.allowed(cx, d, "http_reuse") {
                    st.out.set("http_reuse", m, src(d));
                }
            }
            Some(m) => cx.error(d, format!("unknown http-reuse mode `{m}` (never, safe, aggressive, always)")),
            None => cx.error(d, "`http-reuse` needs a mode"),
        },
        _ => {
            if let Some(n) = cx.num::<u32>(d, 1, "fullconn")
                && st.allowed(cx, d, "fullconn")
            {
                st.out.set("fullconn", i64::from(n), src(d));
            }
        }
    }
}

/// One server parameter of this module; returns whether it took `value`.
pub(super) fn server_param(
    w: &str,
    value: Option<&str>,
    mut set: impl FnMut(&'static str, Value),
    cx: &mut Cx,
    d: &Directive,
) -> bool {
    let Some(v) = value else {
        cx.error(d, format!("`{w}` needs a value"));
        return false;
    };
    match w {
        "proto" => match v {
            "h2" => set("proto", "h2".into()),
            // HAProxy's explicit HTTP/1 mux: lbha's default.
            "h1" => {}
            other => cx.error(d, format!("server `proto {other}` is not supported by lbha (h2, h1)")),
        },
        "pool-purge-delay" => {
            if let Some(t) = cx.time(d, Some(v), w) {
                set("pool_purge_delay", t);
            }
        }
        "pool-max-conn" | "max-reuse" => match v.parse::<i64>() {
            Ok(n) if n >= -1 => set(if w == "max-reuse" { "max_reuse" } else { "pool_max_conn" }, n.into()),
            _ => cx.error(d, format!("`{w}` takes -1 or a count, not `{v}`")),
        },
        _ => {
            if let Some(n) = cx.parse_num::<u32>(d, v, w) {
                set(if w == "maxqueue" { "maxqueue" } else { "minconn" }, i64::from(n).into());
            }
        }
    }
    true
}
