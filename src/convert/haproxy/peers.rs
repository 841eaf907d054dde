//! `peers NAME` → `[[peers]]`: `peer NAME ADDR:PORT` lines, and 2.x's `bind` plus `server` lines.
use super::ast::Section;
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;

pub const ORDER: &[&str] = &["name", "bind", "peer", "server"];

pub fn convert(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    let Some(name) = &sec.name else {
        cx.errors.push(crate::convert::report::ConvertError {
            loc: sec.loc.clone(),
            column: None,
            message: "peers needs a name".into(),
        });
        return out;
    };
    out.set("name", name.as_str(), crate::convert::out::Src::bare(sec.loc.clone()));
    for d in &sec.directives {
        match d.keyword() {
            kw @ ("peer" | "server") => {
                let Some(peer) = d.arg(1) else {
                    cx.error(d, "missing peer name");
                    continue;
                };
                let line = match d.arg(2) {
                    Some(addr) => format!("{peer} {addr}"),
                    None => peer.to_string(),
                };
                if d.arg(3).is_some() {
                    cx.report(d, ReportKind::Approximated, "peer options are not supported yet and were left out");
                }
                out.push(kw, line.as_str(), src(d));
            }
            "bind" => match d.arg(1) {
                Some(a) => {
                    if d.arg(2).is_some() {
                        cx.report(d, ReportKind::Approximated, "bind options are not supported yet and were left out");
                    }
                    out.set("bind", a, src(d));
                }
                None => cx.error(d, "missing address"),
            },
            "table" => cx.drop(&mut out, d, ReportKind::Unsupported, "`table` in a peers section is not supported yet"),
            _ => cx.drop(&mut out, d, ReportKind::Unsupported, "not supported in a peers section yet"),
        }
    }
    out
}
