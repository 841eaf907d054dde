//! `resolvers` sections into `[[resolvers]]` tables.

use super::ast::Section;
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

/// Field order of a `[[resolvers]]` table (`config::resolvers::ResolversDef`).
pub const ORDER: &[&str] = &[
    "name",
    "nameservers",
    "parse_resolv_conf",
    "resolve_retries",
    "timeout_resolve",
    "timeout_retry",
    "hold_valid",
    "hold_nx",
    "hold_obsolete",
    "hold_other",
    "hold_refused",
    "hold_timeout",
    "accepted_payload_size",
];

pub fn resolvers(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    let Some(name) = &sec.name else {
        cx.errors.push(crate::convert::report::ConvertError {
            loc: sec.loc.clone(),
            column: None,
            message: "resolvers needs a name".into(),
        });
        return out;
    };
    out.set("name", name.as_str(), crate::convert::out::Src::bare(sec.loc.clone()));
    for d in &sec.directives {
        match (d.keyword(), d.arg(1)) {
            ("nameserver", Some(n)) => match d.arg(2) {
                Some(a) => {
                    let mut t = InlineTable::new();
                    t.insert("name", n.into());
                    t.insert("addr", a.into());
                    out.push("nameservers", Value::InlineTable(t), src(d));
                }
                None => cx.error(d, "expected `nameserver <name> <address>:<port>`"),
            },
            ("parse-resolv-conf", _) => out.set("parse_resolv_conf", true, src(d)),
            ("resolve_retries", Some(n)) | ("accepted_payload_size", Some(n)) => match n.parse::<i64>() {
                Ok(v) => out.set(&d.keyword().replace('-', "_"), v, src(d)),
                Err(_) => cx.error(d, format!("`{}` needs a number", d.keyword())),
            },
            ("timeout", Some(k @ ("resolve" | "retry"))) => {
                if let Some(t) = cx.time(d, d.arg(2), "timeout") {
                    out.set(&format!("timeout_{k}"), t, src(d));
                }
            }
            ("hold", Some(k @ ("valid" | "nx" | "obsolete" | "other" | "refused" | "timeout"))) => {
                if let Some(t) = cx.time(d, d.arg(2), "hold") {
                    out.set(&format!("hold_{k}"), t, src(d));
                }
            }
            ("timeout" | "hold", _) => cx.error(d, format!("unknown `{}` kind", d.keyword())),
            _ => cx.drop(&mut out, d, ReportKind::Unknown, "not a resolvers keyword supported by lbha"),
        }
    }
    out
}
