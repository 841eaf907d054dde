//! `compression ...` lines of a proxy and `cache NAME` sections → lbha's `compression` table and
//! `[[cache]]` sections (`cache-use` / `cache-store` rules are in rules.rs).

use super::ast::{Directive, Section};
use super::proxy::St;
use super::{Cx, src};
use crate::convert::out::{Src, TableOut};
use crate::convert::report::{ConvertError, ReportKind};
use toml_edit::Value;

/// Key order of a `[[cache]]` table.
pub const CACHE_ORDER: &[&str] =
    &["name", "total_max_size", "max_object_size", "max_age", "process_vary", "max_secondary_entries"];

/// `compression algo|algo-res|type|type-res|offload|direction|minsize-res ...`.
pub(super) fn compression(st: &mut St, d: &Directive, cx: &mut Cx) {
    let words: Vec<&str> = d.args.iter().skip(2).map(String::as_str).collect();
    match d.arg(1) {
        Some(k @ ("algo" | "algo-res" | "type" | "type-res")) => {
            if words.is_empty() {
                cx.error(d, format!("`compression {k}` needs at least one value"));
                return;
            }
            let sub = if k.starts_with("algo") { "algo" } else { "type" };
            for w in words {
                if sub == "algo" && crate::proxy::compress::Algo::parse(w).is_none() {
                    cx.error(d, format!("unknown compression algorithm `{w}` (gzip, deflate, raw-deflate, identity)"));
                    return;
                }
                // HAProxy adds to the list with each line.
                st.out.push_in("compression", sub, w, src(d));
            }
        }
        Some("offload") => st.out.set_in("compression", "offload", true, src(d)),
        Some("direction") => match d.arg(2) {
            Some("response") => st.out.set_in("compression", "direction", "response", src(d)),
            Some(dir @ ("request" | "both")) => cx.drop(
                &mut st.out,
                d,
                ReportKind::Unsupported,
                format!("compression direction {dir}: lbha compresses responses only (as HAProxy 2.6)"),
            ),
            _ => cx.error(d, "expected `compression direction response|request|both`"),
        },
        Some("minsize-res") => match d.arg(2).map(crate::config::units::parse_size) {
            Some(Ok(n)) => st.out.set_in("compression", "minsize_res", n as i64, src(d)),
            _ => cx.error(d, "`compression minsize-res` needs a size"),
        },
        Some(k @ ("algo-req" | "type-req" | "minsize-req")) => cx.drop(
            &mut st.out,
            d,
            ReportKind::Unsupported,
            format!("compression {k}: lbha compresses responses only (as HAProxy 2.6)"),
        ),
        Some(other) => cx.error(d, format!("unknown compression keyword `{other}`")),
        None => cx.error(d, "missing compression keyword (algo, type, offload)"),
    }
}

/// `cache NAME` with its `total-max-size`, `max-object-size`, `max-age`, `process-vary`,
/// `max-secondary-entries`.
pub(super) fn cache_section(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    let Some(name) = &sec.name else {
        cx.errors.push(ConvertError { loc: sec.loc.clone(), column: None, message: "cache needs a name".into() });
        return out;
    };
    out.set("name", name.as_str(), Src::bare(sec.loc.clone()));
    for d in &sec.directives {
        let key = match d.keyword() {
            "total-max-size" => "total_max_size",
            "max-object-size" => "max_object_size",
            "max-age" => "max_age",
            "max-secondary-entries" => "max_secondary_entries",
            "process-vary" => {
                match d.arg(1) {
                    Some("on") => out.set("process_vary", true, src(d)),
                    Some("off") => out.set("process_vary", false, src(d)),
                    _ => cx.error(d, "expected `process-vary on|off`"),
                }
                continue;
            }
            _ => {
                cx.drop(&mut out, d, ReportKind::Unknown, "not a cache keyword lbha knows");
                continue;
            }
        };
        if let Some(n) = cx.num::<u64>(d, 1, d.keyword()) {
            out.set(key, Value::from(n as i64), src(d));
        }
    }
    out
}
