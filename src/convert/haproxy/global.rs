//! `global` → `[global]` and `userlist` → `[[userlist]]`.

use super::ast::{Directive, Section};
use super::keywords::{GLOBAL_IGNORED, GLOBAL_UNSUPPORTED};
use super::{Cx, src};
use crate::convert::out::TableOut;
use crate::convert::report::ReportKind;
use toml_edit::{InlineTable, Value};

pub const ORDER: &[&str] = &[
    "maxconn",
    "maxconnrate",
    "maxsessrate",
    "maxsslrate",
    "nbthread",
    "spread_checks",
    "hard_stop_after",
    "log",
    "log_format",
    "log_tag",
    "log_send_hostname",
    "control_socket",
    "server_state_file",
    "tune_bufsize",
    "user",
    "group",
    "localpeer",
    "ssl_default_bind_ciphers",
    "ssl_default_bind_ciphersuites",
    "ssl_default_bind_curves",
    "ssl_default_bind_options",
    "ssl_default_server_ciphers",
    "ssl_default_server_ciphersuites",
    "ssl_default_server_options",
    "ca_base",
    "crt_base",
];

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
        "maxconnrate" | "maxsessrate" | "maxsslrate" => {
            if let Some(n) = cx.num::<u32>(d, 1, kw) {
                out.set(kw, i64::from(n), src(d));
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
        "log" => log(d, out, cx),
        "log-tag" => match d.arg(1) {
            Some(t) => out.set("log_tag", t, src(d)),
            None => cx.error(d, "missing tag"),
        },
        "log-send-hostname" => match d.arg(1) {
            Some(h) => out.set("log_send_hostname", h, src(d)),
            None => out.set("log_send_hostname", true, src(d)),
        },
        "stats" if d.arg(1) == Some("socket") => stats_socket(d, out, cx),
        "stats" if d.arg(1) == Some("timeout") => {
            if let Some(t) = cx.time(d, d.arg(2), "stats timeout") {
                out.set_in("control_socket", "timeout", t, src(d));
            }
        }
        "ssl-server-verify" => match d.arg(1) {
            Some(v @ ("none" | "required")) => out.set("ssl_server_verify", v, src(d)),
            Some(v) => cx.error(d, format!("`ssl-server-verify` takes `none` or `required`, not `{v}`")),
            None => cx.error(d, "missing value (none or required)"),
        },
        "stats" => {
            let msg = format!("`stats {}` is not supported yet", d.arg(1).unwrap_or(""));
            cx.drop(out, d, ReportKind::Unsupported, msg);
        }
        "tune.bufsize" => {
            if let Some(n) = cx.num::<u32>(d, 1, "tune.bufsize") {
                out.set("tune_bufsize", i64::from(n), src(d));
            }
        }
        "localpeer" => match d.arg(1) {
            Some(v) => out.set("localpeer", v, src(d)),
            None => cx.error(d, "missing name"),
        },
        // `uid`/`gid` are the numeric forms; lbha's keys take either.
        "user" | "uid" | "group" | "gid" => match d.arg(1) {
            Some(v) => out.set(if matches!(kw, "user" | "uid") { "user" } else { "group" }, v, src(d)),
            None => cx.error(d, "missing name"),
        },
        // TLS defaults: lbha's validation maps them onto rustls (and refuses what it cannot honour).
        "ssl-default-bind-ciphers"
        | "ssl-default-bind-ciphersuites"
        | "ssl-default-bind-curves"
        | "ssl-default-bind-options"
        | "ssl-default-server-ciphers"
        | "ssl-default-server-ciphersuites"
        | "ssl-default-server-options" => {
            let words: Vec<&str> = (1..).map_while(|i| d.arg(i)).collect();
            if words.is_empty() {
                cx.error(d, "missing value");
            } else {
                out.set(&kw.replace('-', "_"), words.join(" "), src(d));
            }
        }
        "ca-base" | "crt-base" => match d.arg(1) {
            Some(dir) => {
                let dir = if std::path::Path::new(dir).is_absolute() {
                    dir.to_string()
                } else {
                    cx.base_dir.join(dir).display().to_string()
                };
                out.set(&kw.replace('-', "_"), dir, src(d));
                *if kw == "ca-base" { &mut cx.ca_base } else { &mut cx.crt_base } = true;
            }
            None => cx.error(d, "missing directory"),
        },
        "server-state-file" => match d.arg(1) {
            Some(f) => out.set("server_state_file", f, src(d)),
            None => cx.error(d, "missing file name"),
        },
        _ => {
            if let Some((_, reason)) = GLOBAL_IGNORED.iter().find(|(k, _)| *k == kw) {
                cx.drop(out, d, ReportKind::Ignored, *reason);
            } else if GLOBAL_UNSUPPORTED.contains(&kw) || kw.starts_with("tune.") || kw.starts_with("ssl-") {
                let msg = if kw == "log" { "logging is not implemented in lbha yet" } else { "not implemented" };
                cx.drop(out, d, ReportKind::Unsupported, msg);
            } else {
                cx.drop(out, d, ReportKind::Unknown, "not a global keyword lbha knows");
            }
        }
    }
}

/// `log TARGET [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]` → `log = ["TARGET
/// FACILITY LEVEL"]`, checked with lbha's own target parser.
fn log(d: &Directive, out: &mut TableOut, cx: &mut Cx) {
    if let Some(line) = log_line(d, out, cx) {
        out.push("log", line, src(d));
    }
}

/// One `log` line as lbha writes it (checked with lbha's own target parser); `None` when it
/// was reported and dropped.
pub(super) fn log_line(d: &Directive, out: &mut TableOut, cx: &mut Cx) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut opts: Vec<String> = Vec::new();
    let mut left = Vec::new();
    let mut i = 1;
    while let Some(w) = d.arg(i) {
        match (w, d.arg(i + 1)) {
            ("sample", Some(v)) => {
                left.push(format!("{w} {v}"));
                i += 2;
            }
            ("len" | "format", Some(v)) => {
                opts.push(format!("{w} {v}"));
                i += 2;
            }
            _ => {
                words.push(w);
                i += 1;
            }
        }
    }
    let Some(first) = words.first() else {
        cx.error(d, "missing log target");
        return None;
    };
    let target =
        ["udp@", "udp4@", "ipv4@", "udp6@", "ipv6@"].iter().find_map(|p| first.strip_prefix(p)).unwrap_or(first);
    if words.len() > 3 {
        left.push(format!("minimum level {}", words[3]));
        words.truncate(3);
    }
    let mut line = vec![target.to_string()];
    line.extend(opts);
    line.extend(words[1..].iter().map(|w| w.to_string()));
    let line = line.join(" ");
    match crate::log::LogTarget::parse(&line) {
        Ok(_) => {
            if !left.is_empty() {
                cx.report(
                    d,
                    ReportKind::Approximated,
                    format!("`{}` is not supported yet and was left out", left.join(", ")),
                );
            }
            Some(line)
        }
        Err(e) => {
            cx.drop(
                out,
                d,
                ReportKind::Unsupported,
                format!("{e} (lbha logs to UDP, a unix socket, stdout or stderr)"),
            );
            None
        }
    }
}

/// `stats socket PATH [mode M] [level L] ...` → `control_socket = { path, mode, level }`; with no
/// `level` HAProxy's default, `operator`, is written, so the socket stays read-only in lbha.
fn stats_socket(d: &Directive, out: &mut TableOut, cx: &mut Cx) {
    let Some(path) = d.arg(2) else {
        cx.error(d, "missing socket path");
        return;
    };
    if out.get_in("control_socket", "path").is_some() {
        cx.drop(out, d, ReportKind::Unsupported, "lbha has one control socket; the first `stats socket` is used");
        return;
    }
    if path.contains('@') || path.contains(':') {
        cx.drop(
            out,
            d,
            ReportKind::Unsupported,
            "the control socket is a unix socket path; TCP runtime sockets are not supported",
        );
        return;
    }
    out.set_in("control_socket", "path", path, src(d));
    let mut left = Vec::new();
    let mut i = 3;
    while let Some(w) = d.arg(i) {
        match (w, d.arg(i + 1)) {
            ("mode", Some(m)) => out.set_in("control_socket", "mode", m, src(d)),
            ("level", Some(l @ ("user" | "operator" | "admin"))) => out.set_in("control_socket", "level", l, src(d)),
            ("level", Some(l)) => {
                cx.error(d, format!("level `{l}`: expected user, operator or admin"));
                return;
            }
            (w, Some(v)) => left.push(format!("{w} {v}")),
            (w, None) => left.push(w.to_string()),
        }
        i += 2;
    }
    if out.get_in("control_socket", "level").is_none() {
        out.set_in("control_socket", "level", "operator", src(d));
    }
    if !left.is_empty() {
        let msg = format!("`{}` left out: lbha's control socket is guarded by its file mode and level", left.join(" "));
        cx.report(d, ReportKind::Approximated, msg);
    }
}

/// A comma-separated list of names, as `groups` and `users` take them.
fn names(list: &str) -> toml_edit::Array {
    list.split(',').filter(|n| !n.is_empty()).collect()
}

/// `user NAME insecure-password|password PASS [groups G,...]` and `group NAME [users U,...]`.
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
    out.set("name", name.as_str(), crate::convert::out::Src::bare(sec.loc.clone()));
    for d in &sec.directives {
        match d.keyword() {
            "user" => {
                let Some(user) = d.arg(1) else {
                    cx.error(d, "missing user name");
                    continue;
                };
                let mut pass = None;
                let mut i = 2;
                let mut groups = None;
                let mut hashed = false;
                while let Some(w) = d.arg(i) {
                    match w {
                        "insecure-password" => pass = d.arg(i + 1),
                        "password" => {
                            pass = d.arg(i + 1);
                            hashed = true;
                        }
                        "groups" => groups = d.arg(i + 1),
                        _ => {
                            cx.error(d, format!("unknown user option `{w}`"));
                            return out;
                        }
                    }
                    i += 2;
                }
                let Some(pass) = pass else {
                    cx.error(d, "missing password");
                    continue;
                };
                let mut t = InlineTable::new();
                t.insert("name", user.into());
                t.insert(if hashed { "password" } else { "insecure_password" }, pass.into());
                if let Some(g) = groups {
                    t.insert("groups", names(g).into());
                }
                out.push("users", Value::InlineTable(t), src(d));
            }
            // `group NAME [users A,B,...]`.
            "group" => {
                let Some(group) = d.arg(1) else {
                    cx.error(d, "missing group name");
                    continue;
                };
                let mut t = InlineTable::new();
                t.insert("name", group.into());
                match (d.arg(2), d.arg(3), d.arg(4)) {
                    (None, ..) => {}
                    (Some("users"), Some(list), None) => {
                        t.insert("users", names(list).into());
                    }
                    _ => {
                        cx.error(d, "expected `group NAME [users A,B,...]`");
                        continue;
                    }
                }
                out.push("groups", Value::InlineTable(t), src(d));
            }
            _ => cx.drop(&mut out, d, ReportKind::Unknown, "not a userlist keyword"),
        }
    }
    out
}
