//! `peers NAME` → `[[peers]]`: `peer NAME ADDR:PORT` lines, and 2.x's `bind` plus `server` lines,
//! with their TLS words and `default-bind`/`default-server`.
use super::ast::{Directive, Section};
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;

pub const ORDER: &[&str] = &["name", "default_bind", "bind", "default_server", "peer", "server", "table"];

/// Server words lbha takes on peer lines: with a value, and without.
const DIAL_VALUED: &[&str] = &[
    "verify",
    "ca-file",
    "crl-file",
    "crt",
    "sni",
    "verifyhost",
    "alpn",
    "ciphers",
    "ciphersuites",
    "ssl-min-ver",
    "ssl-max-ver",
];
const DIAL_FLAGS: &[&str] = &[
    "ssl",
    "no-ssl",
    "no-sslv3",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "force-sslv3",
    "force-tlsv10",
    "force-tlsv11",
    "force-tlsv12",
    "force-tlsv13",
    "no-tls-tickets",
];
/// Bind words lbha takes on the peers listener.
const LISTEN_VALUED: &[&str] = &[
    "crt",
    "crt-list",
    "ca-file",
    "crl-file",
    "verify",
    "alpn",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "ssl-min-ver",
    "ssl-max-ver",
];
const LISTEN_FLAGS: &[&str] = &[
    "ssl",
    "no-sslv3",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "force-tlsv12",
    "force-tlsv13",
    "no-tls-tickets",
    "prefer-client-ciphers",
    "strict-sni",
    "no-ca-names",
];

/// The words of `d` from argument `start` that lbha honours, paths made as lbha reads them;
/// None (with a located error) when one cannot be honoured: replication must not lose its TLS
/// or its checks quietly. Words HAProxy ignores on peers are dropped with a report.
fn words(d: &Directive, start: usize, listen: bool, cx: &mut Cx) -> Option<Vec<String>> {
    let (valued, flags) = if listen { (LISTEN_VALUED, LISTEN_FLAGS) } else { (DIAL_VALUED, DIAL_FLAGS) };
    let mut out = Vec::new();
    let mut ok = true;
    let mut i = start;
    while let Some(w) = d.arg(i) {
        i += 1;
        if flags.contains(&w) {
            out.push(w.to_string());
        } else if valued.contains(&w) {
            let Some(v) = d.arg(i) else {
                cx.error(d, format!("`{w}` needs a value"));
                return None;
            };
            i += 1;
            let v = if matches!(w, "ca-file" | "crl-file" | "crt" | "crt-list") {
                cx.tls_path(w, v)
            } else {
                v.to_string()
            };
            out.push(format!("{w} {v}"));
        } else if !listen && matches!(w, "check" | "no-check" | "agent-check" | "no-agent-check") {
            cx.report(d, ReportKind::Ignored, format!("`{w}`: HAProxy ignores health checks on peers"));
        } else if !listen && matches!(w, "init-addr" | "resolvers" | "weight" | "cookie") {
            i += 1;
            cx.report(d, ReportKind::Ignored, format!("`{w}` has no effect on peers"));
        } else {
            let what = if listen { "a peers bind" } else { "peer lines" };
            cx.error(d, format!("`{w}` is not supported on {what} by lbha (replication would not be as configured)"));
            ok = false;
        }
    }
    ok.then_some(out)
}

fn line(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().collect::<Vec<_>>().join(" ")
}

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
    // `default-server` applies to the lines after it: kept as `default_server` when every one
    // comes before the first peer line, else written into each line it applies to.
    let first_line = sec.directives.iter().position(|d| matches!(d.keyword(), "peer" | "server"));
    let expand = sec
        .directives
        .iter()
        .enumerate()
        .any(|(i, d)| d.keyword() == "default-server" && first_line.is_some_and(|f| i > f));
    // One listener: `default-bind` and `bind` words fold into `bind` when there is one.
    let has_bind = sec.directives.iter().any(|d| d.keyword() == "bind");
    let mut defaults: Vec<String> = Vec::new();
    let mut bind: Option<(Vec<String>, crate::convert::out::Src)> = None;
    let mut default_bind: Vec<String> = Vec::new();
    for d in &sec.directives {
        match d.keyword() {
            "default-server" => {
                let Some(w) = words(d, 1, false, cx) else { continue };
                defaults.extend(w.iter().cloned());
                if !expand {
                    out.set("default_server", line(defaults.clone()).as_str(), src(d));
                }
            }
            "default-bind" => {
                let Some(w) = words(d, 1, true, cx) else { continue };
                match (&mut bind, has_bind) {
                    (Some((b, _)), _) => b.extend(w),
                    (None, true) => default_bind.extend(w),
                    (None, false) => {
                        default_bind.extend(w);
                        out.set("default_bind", line(default_bind.clone()).as_str(), src(d));
                    }
                }
            }
            kw @ ("peer" | "server") => {
                let Some(peer) = d.arg(1) else {
                    cx.error(d, "missing peer name");
                    continue;
                };
                // A `server` line of the local peer has no address; keywords hold no `:`.
                let addr = d.arg(2).filter(|a| kw == "peer" || a.contains(':'));
                let start = if addr.is_some() { 3 } else { 2 };
                let Some(w) = words(d, start, false, cx) else { continue };
                let pre = if expand { defaults.clone() } else { Vec::new() };
                let text = line([peer.to_string()].into_iter().chain(addr.map(str::to_string)).chain(pre).chain(w));
                out.push(kw, text.as_str(), src(d));
            }
            "bind" => match d.arg(1) {
                Some(a) => {
                    let Some(w) = words(d, 2, true, cx) else { continue };
                    let mut all = vec![a.to_string()];
                    all.append(&mut default_bind);
                    all.extend(w);
                    bind = Some((all, src(d)));
                }
                None => cx.error(d, "missing address"),
            },
            "table" => {
                let Some(name) = d.arg(1) else {
                    cx.error(d, "`table` needs a name");
                    continue;
                };
                if let Some(args) = super::persist::table_args(d, 2, false, &mut out, cx) {
                    let mut t = toml_edit::InlineTable::new();
                    t.insert("name", name.into());
                    t.extend(args);
                    out.push("table", toml_edit::Value::InlineTable(t), src(d));
                }
            }
            _ => cx.drop(&mut out, d, ReportKind::Unsupported, "not supported in a peers section yet"),
        }
    }
    if let Some((b, at)) = bind {
        out.set("bind", line(b).as_str(), at);
    }
    out
}
