//! `global` → `[global]` and `userlist` → `[[userlist]]`.

use super::ast::{Directive, Section};
use super::keywords::{GLOBAL_IGNORED, GLOBAL_UNSUPPORTED};
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

pub const ORDER: &[&str] = &["maxconn", "nbthread", "spread_checks", "hard_stop_after"];

pub fn convert(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    for d in &sec.directives {
        directive(d, &mut out, cx);
    }
    out
}

fn directive(d: &Directive, out: &mut TableOut, cx: &mut Cx) {
    let kw = d.keyword();
    match kw {
        "maxconn" => {
            if let Some(n) = cx.num::<u32>(d, 1, "maxconn") {
                out.set("maxconn", i64::from(n), src(d));
            }
        }
        "nbthread" => {
            if let Some(n) = cx.num::<u32>(d, 1, "nbthread") {
                out.set("nbthread", i64::from(n), src(d));
            }
        }
        "spread-checks" => {
            if let Some(n) = cx.num::<u8>(d, 1, "spread-checks") {
                out.set("spread_checks", i64::from(n), src(d));
            }
        }
        "hard-stop-after" => {
            if let Some(t) = cx.time(d, d.arg(1), "hard-stop-after") {
                out.set("hard_stop_after", t, src(d));
            }
        }
        "stats" => {
            let msg = match d.arg(1) {
                Some("socket") => {
                    "lbha has its own control socket (/run/lbha/lbha.sock); HAProxy's runtime API is not served"
                }
                _ => "not implemented",
            };
            cx.drop(out, d, ReportKind::Unsupported, msg);
        }
        _ => {
            if let Some((_, reason)) = GLOBAL_IGNORED.iter().find(|(k, _)| *k == kw) {
                cx.drop(out, d, ReportKind::Ignored, *reason);
            } else if GLOBAL_UNSUPPORTED.contains(&kw)
                || kw.starts_with("tune.")
                || kw.starts_with("ssl-")
            {
                let msg = if kw == "log" {
                    "logging is not implemented in lbha yet"
                } else {
                    "not implemented"
                };
                cx.drop(out, d, ReportKind::Unsupported, msg);
            } else {
                cx.drop(
                    out,
                    d,
                    ReportKind::Unknown,
                    "not a global keyword lbha knows",
                );
            }
        }
    }
}

/// `user NAME insecure-password PASS [groups ...]`; hashed passwords and groups are reported.
pub fn userlist(sec: &Section, cx: &mut Cx) -> TableOut {
    let mut out = TableOut::default();
    let Some(name) = &sec.name else {
        cx.errors.push(crate::convert::report::ConvertError {
            loc: sec.loc.clone(),
            column: None,
            message: "userlist needs a name".into(),
        });
        return out;
    };
    out.set(
        "name",
        name.as_str(),
        crate::convert::out::Src::bare(sec.loc.clone()),
    );
    for d in &sec.directives {
        match d.keyword() {
            "user" => {
                let Some(user) = d.arg(1) else {
                    cx.error(d, "missing user name");
                    continue;
                };
                let mut pass = None;
                let mut i = 2;
                let mut groups = false;
                let mut hashed = false;
                while let Some(w) = d.arg(i) {
                    match w {
                        "insecure-password" => pass = d.arg(i + 1),
                        "password" => hashed = true,
                        "groups" => groups = true,
                        _ => {
                            cx.error(d, format!("unknown user option `{w}`"));
                            return out;
                        }
                    }
                    i += 2;
                }
                if hashed {
                    cx.drop(
                        &mut out,
                        d,
                        ReportKind::Unsupported,
                        "hashed passwords are not supported yet; lbha takes insecure_password only",
                    );
                    continue;
                }
                let Some(pass) = pass else {
                    cx.error(d, "missing password");
                    continue;
                };
                if groups {
                    cx.report(
                        d,
                        ReportKind::Unsupported,
                        "user groups are not supported yet; the user is converted without them",
                    );
                }
                let mut t = InlineTable::new();
                t.insert("name", user.into());
                t.insert("insecure_password", pass.into());
                out.push("users", Value::InlineTable(t), src(d));
            }
            "group" => cx.drop(
                &mut out,
                d,
                ReportKind::Unsupported,
                "user groups are not supported yet",
            ),
            _ => cx.drop(&mut out, d, ReportKind::Unknown, "not a userlist keyword"),
        }
    }
    out
}
