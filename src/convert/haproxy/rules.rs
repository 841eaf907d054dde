//! `acl`, `use_backend`, `http-request`, `http-response`, `redirect` and `block`. Conditions are
//! re-quoted for lbha's condition parser and checked with it, so an ACL lbha cannot evaluate is
//! reported here, at its haproxy.cfg line, together with every rule that depends on it.

use super::ast::Directive;
use super::proxy::St;
use super::{Cx, src};
use crate::convert::out::Src;
use crate::convert::report::ReportKind;
use crate::routing::{Acl, Condition};
use toml_edit::{Array, InlineTable, Value};

#[derive(Default)]
pub struct Rules {
    acls: Vec<AclOut>,
    /// `block` rules: HAProxy moves them before every `http-request` rule.
    blocks: Vec<(Value, Src)>,
    requests: Vec<(Value, Src)>,
    /// `redirect` rules: HAProxy runs them after every `http-request` rule.
    redirects: Vec<(Value, Src)>,
}

struct AclOut {
    name: String,
    /// Set when this acl holds another criterion of the acl named here (HAProxy ORs them).
    alt_of: Option<String>,
    /// The fetch and its flags, which repeated definitions must share to merge.
    head: Vec<String>,
    patterns: Vec<String>,
    src: Src,
}

/// A word for lbha's ACL/condition lexer: bare when plain, else single-quoted (a `'` inside is
/// written as `"'"` between quoted parts, which the lexer joins into one word).
pub fn word(w: &str) -> String {
    if matches!(w, "{" | "}" | "!" | "||") {
        return w.to_string();
    }
    let plain = !w.is_empty() && w.chars().all(|c| !c.is_whitespace() && !c.is_control() && !"'\"#\\{}".contains(c));
    if plain {
        return w.to_string();
    }
    let mut out = String::new();
    for (i, part) in w.split('\'').enumerate() {
        if i > 0 {
            out.push_str("\"'\"");
        }
        if !part.is_empty() {
            out.push('\'');
            out.push_str(part);
            out.push('\'');
        }
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Makes `-f FILE` pattern files absolute from the haproxy.cfg directory, so the converted file
/// finds them wherever it is written. Returns whether anything changed.
fn absolute_pattern_files(ws: &mut [String], base: &std::path::Path) -> bool {
    let mut changed = false;
    for i in 1..ws.len() {
        if ws[i - 1] == "-f" && !std::path::Path::new(&ws[i]).is_absolute() {
            ws[i] = base.join(&ws[i]).display().to_string();
            changed = true;
        }
    }
    changed
}

fn words(ws: &[String]) -> String {
    ws.iter().map(|w| word(w)).collect::<Vec<_>>().join(" ")
}

/// A log-format string that holds no variable, unescaped (`%%` is `%`); `None` when dynamic.
pub fn literal(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '%' && it.next() != Some('%') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// How many words of an ACL are the fetch and its flags.
fn head_len(ws: &[String]) -> usize {
    let mut i = 1;
    while let Some(w) = ws.get(i) {
        match w.as_str() {
            "--" => return i + 1,
            "-f" | "-m" | "-u" => i += 2,
            w if w.starts_with('-') && w.len() > 1 => i += 1,
            _ => break,
        }
    }
    i.min(ws.len())
}

pub(super) fn acl(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(name) = d.arg(1) else {
        cx.error(d, "missing acl name");
        return;
    };
    if d.args.len() < 3 {
        cx.error(d, "missing criterion");
        return;
    }
    if !st.allowed(cx, d, "acl") {
        return;
    }
    let mut owned = d.args[2..].to_vec();
    if absolute_pattern_files(&mut owned, cx.base_dir) {
        cx.report(
            d,
            ReportKind::Note,
            format!("relative pattern file written as an absolute path from {}", cx.base_dir.display()),
        );
    }
    let ws = &owned[..];
    // In mode tcp lbha compiles ACLs over sample expressions (`tcprules`).
    let tcp_ok = super::tcp::tcp_mode(st) && crate::tcprules::Acl::parse(&words(ws)).is_ok();
    if let (Err(e), false) = (Acl::parse(&words(ws)), tcp_ok) {
        let why = e.to_string();
        cx.drop(&mut st.out, d, ReportKind::Unsupported, format!("{why}; rules that use this acl are dropped too"));
        return;
    }
    let n = head_len(ws);
    let (head, patterns) = ws.split_at(n);
    match st.rules.acls.iter_mut().find(|a| a.name == name && a.alt_of.is_none()) {
        Some(a) if a.head == head => {
            a.patterns.extend(patterns.iter().cloned());
            let s = src(d);
            a.src.comments.extend(s.comments);
            a.src.comments.extend(s.trailing);
        }
        Some(_) => {
            // HAProxy ORs the definitions of one name; lbha takes one criterion per acl, so each
            // other criterion gets its own acl and conditions name them all (see `expand`).
            let same = st.rules.acls.iter_mut().find(|a| a.alt_of.as_deref() == Some(name) && a.head == head);
            if let Some(a) = same {
                a.patterns.extend(patterns.iter().cloned());
                return;
            }
            let mut n = 2;
            let alt = loop {
                let cand = format!("{name}.{n}");
                if !st.rules.acls.iter().any(|a| a.name == cand) {
                    break cand;
                }
                n += 1;
            };
            cx.report(
                d,
                ReportKind::Note,
                format!("another criterion for acl `{name}`: written as acl `{alt}`, and conditions on `{name}` test both as HAProxy does"),
            );
            st.rules.acls.push(AclOut {
                name: alt,
                alt_of: Some(name.to_string()),
                head: head.to_vec(),
                patterns: patterns.to_vec(),
                src: src(d),
            });
        }
        None => st.rules.acls.push(AclOut {
            alt_of: None,
            name: name.to_string(),
            head: head.to_vec(),
            patterns: patterns.to_vec(),
            src: src(d),
        }),
    }
}

/// The condition starting at word `i` (`if ...` / `unless ...`), checked against the ACLs
/// declared so far: `Ok(None)` when there is none.
pub(super) fn condition(
    st: &St,
    d: &Directive,
    i: usize,
    cx: &Cx,
) -> Result<Option<(&'static str, String)>, (ReportKind, String)> {
    let kw = match d.arg(i) {
        None => return Ok(None),
        Some("if") => "if",
        Some("unless") => "unless",
        Some(other) => {
            return Err((ReportKind::Unknown, format!("unexpected `{other}` (expected `if` or `unless`)")));
        }
    };
    // `!{ ... }` is `!` then `{`, as HAProxy reads it.
    let mut ws: Vec<String> = d.args[i + 1..]
        .iter()
        .flat_map(|w| match w.as_str() {
            "!{" => vec!["!".to_string(), "{".to_string()],
            _ => vec![w.clone()],
        })
        .collect();
    absolute_pattern_files(&mut ws, cx.base_dir);
    let alts = |n: &str| -> Option<Vec<String>> {
        let more: Vec<String> =
            st.rules.acls.iter().filter(|a| a.alt_of.as_deref() == Some(n)).map(|a| a.name.clone()).collect();
        if more.is_empty() { None } else { Some(std::iter::once(n.to_string()).chain(more).collect()) }
    };
    let ws = expand(&ws, &alts);
    let text = words(&ws);
    let names: Vec<&str> = st.rules.acls.iter().map(|a| a.name.as_str()).collect();
    let lookup = |n: &str| names.iter().position(|x| *x == n);
    let tcp_ok = super::tcp::tcp_mode(st) && crate::tcprules::Cond::parse(&format!("{kw} {text}"), &lookup).is_ok();
    Condition::parse(&format!("{kw} {text}"), &lookup)
        .map(|_| ())
        .or_else(|e| if tcp_ok { Ok(()) } else { Err(e) })
        .map_err(|e| (ReportKind::Unsupported, format!("condition not converted: {e}")))?;
    Ok(Some((kw, text)))
}

/// Rewrites a condition so an acl name with several criteria (`alts` gives all of its acls)
/// tests every one: `a x` becomes `a x || a x.2`, `!x` becomes `!x !x.2`.
fn expand(ws: &[String], alts: &dyn Fn(&str) -> Option<Vec<String>>) -> Vec<String> {
    let mut terms: Vec<Vec<Vec<String>>> = vec![vec![]];
    let mut i = 0;
    let mut neg = false;
    let mut changed = false;
    while i < ws.len() {
        let w = ws[i].as_str();
        let cur = terms.last_mut().expect("one term at least");
        match w {
            "||" | "or" => {
                terms.push(vec![]);
                neg = false;
            }
            "!" => neg = !neg,
            "{" => {
                let end = ws[i..].iter().position(|x| x == "}").map_or(ws.len(), |p| i + p + 1);
                let mut atom: Vec<String> = if neg { vec!["!".into()] } else { vec![] };
                atom.extend(ws[i..end].iter().cloned());
                for c in cur.iter_mut() {
                    c.extend(atom.iter().cloned());
                }
                if cur.is_empty() {
                    cur.push(atom);
                }
                neg = false;
                i = end;
                continue;
            }
            _ => {
                let (n, name) = match w.strip_prefix('!') {
                    Some(rest) if !rest.is_empty() => (!neg, rest),
                    _ => (neg, w),
                };
                let names = alts(name).unwrap_or_else(|| vec![name.to_string()]);
                changed |= names.len() > 1;
                let prev = if cur.is_empty() { vec![vec![]] } else { std::mem::take(cur) };
                *cur = if n {
                    prev.into_iter()
                        .map(|mut c| {
                            c.extend(names.iter().map(|x| format!("!{x}")));
                            c
                        })
                        .collect()
                } else {
                    prev.into_iter()
                        .flat_map(|c| {
                            names.iter().map(move |x| {
                                let mut c = c.clone();
                                c.push(x.clone());
                                c
                            })
                        })
                        .collect()
                };
                neg = false;
            }
        }
        i += 1;
    }
    if !changed {
        return ws.to_vec();
    }
    let mut out = Vec::new();
    for alts_of_term in terms {
        for c in alts_of_term {
            if !out.is_empty() {
                out.push("||".to_string());
            }
            out.extend(c);
        }
    }
    out
}

pub(super) fn with_condition(
    st: &St,
    d: &Directive,
    i: usize,
    mut t: InlineTable,
    cx: &Cx,
) -> Result<InlineTable, (ReportKind, String)> {
    if let Some((kw, text)) = condition(st, d, i, cx)? {
        t.insert(kw, text.into());
    }
    Ok(t)
}

pub(super) fn use_backend(st: &mut St, d: &Directive, cx: &mut Cx) {
    let Some(name) = d.arg(1) else {
        cx.error(d, "missing backend name");
        return;
    };
    // A dynamic name stays a log-format string, which lbha evaluates per request.
    let name = literal(name).filter(|n| !n.contains('%')).unwrap_or_else(|| name.to_string());
    if !st.allowed(cx, d, "use_backend") {
        return;
    }
    let mut t = InlineTable::new();
    t.insert("backend", name.into());
    match with_condition(st, d, 2, t, cx) {
        Ok(t) => st.out.push("use_backend", Value::InlineTable(t), src(d)),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// Why an action cannot be converted.
enum Fail {
    Unsupported(String),
    Bad(String),
}

type Parsed = (&'static str, Value, usize, Vec<String>);

fn value_at(d: &Directive, i: usize, what: &str) -> Result<String, Fail> {
    d.arg(i).map(str::to_string).ok_or_else(|| Fail::Bad(format!("`{what}` needs a value")))
}

fn status_at(d: &Directive, i: usize, what: &str) -> Result<i64, Fail> {
    let v = value_at(d, i, what)?;
    match v.parse::<u16>() {
        Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(i64::from(n)),
        _ => Err(Fail::Bad(format!("bad number for {what}: `{v}`"))),
    }
}

/// A file an action reads, made absolute from the haproxy.cfg directory.
fn file_at(d: &Directive, i: usize, what: &str, base: &std::path::Path) -> Result<String, Fail> {
    let f = value_at(d, i, what)?;
    Ok(if std::path::Path::new(&f).is_absolute() { f } else { base.join(&f).display().to_string() })
}

fn return_action(d: &Directive, mut i: usize, base: &std::path::Path) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    let mut headers = Array::new();
    while let Some(w) = d.arg(i) {
        match w {
            "if" | "unless" => break,
            "status" => {
                t.insert("status", status_at(d, i + 1, w)?.into());
                i += 2;
            }
            "content-type" => {
                t.insert("content_type", value_at(d, i + 1, w)?.into());
                i += 2;
            }
            "string" => {
                t.insert("body", value_at(d, i + 1, w)?.into());
                i += 2;
            }
            // A value with `%` is a log-format string in lbha too (`%%` stays an escape).
            "hdr" => {
                let n = value_at(d, i + 1, w)?;
                let v = value_at(d, i + 2, w)?;
                headers.push(format!("{n}: {v}"));
                i += 3;
            }
            "lf-string" => {
                t.insert("lf_string", value_at(d, i + 1, w)?.into());
                i += 2;
            }
            "file" | "lf-file" | "errorfile" => {
                t.insert(w.replace('-', "_").as_str(), file_at(d, i + 1, w, base)?.into());
                i += 2;
            }
            "errorfiles" => {
                t.insert("errorfiles", value_at(d, i + 1, w)?.into());
                i += 2;
            }
            "default-errorfiles" => {
                t.insert("default_errorfiles", true.into());
                i += 1;
            }
            other => return Err(Fail::Bad(format!("unknown return option `{other}`"))),
        }
    }
    if !headers.is_empty() {
        t.insert("headers", Value::Array(headers));
    }
    Ok(("return", Value::InlineTable(t), i, Vec::new()))
}

fn deny_action(d: &Directive, mut i: usize, base: &std::path::Path) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    let mut headers = Array::new();
    while let Some(w) = d.arg(i) {
        match w {
            "if" | "unless" => break,
            "deny_status" | "status" => {
                t.insert("status", status_at(d, i + 1, w)?.into());
                i += 2;
            }
            "hdr" => {
                let n = value_at(d, i + 1, w)?;
                let v = value_at(d, i + 2, w)?;
                headers.push(format!("{n}: {v}"));
                i += 3;
            }
            "content-type" | "string" | "lf-string" | "errorfiles" => {
                t.insert(w.replace('-', "_").as_str(), value_at(d, i + 1, w)?.into());
                i += 2;
            }
            "file" | "lf-file" | "errorfile" => {
                t.insert(w.replace('-', "_").as_str(), file_at(d, i + 1, w, base)?.into());
                i += 2;
            }
            "default-errorfiles" => {
                t.insert("default_errorfiles", true.into());
                i += 1;
            }
            other => return Err(Fail::Bad(format!("unknown deny option `{other}`"))),
        }
    }
    if !headers.is_empty() {
        t.insert("headers", Value::Array(headers));
    }
    Ok(("deny", Value::InlineTable(t), i, Vec::new()))
}

fn redirect_action(d: &Directive, start: usize) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    let kind = d.arg(start).unwrap_or_default();
    let target = value_at(d, start + 1, kind)?;
    match kind {
        // lbha's location, prefix and scheme are log-format strings, as HAProxy's.
        "location" | "prefix" | "scheme" => t.insert(kind, target.into()),
        _ => {
            return Err(Fail::Bad(format!("expected `location`, `prefix` or `scheme`, got `{kind}`")));
        }
    };
    let mut i = start + 2;
    let mut left = Vec::new();
    while let Some(w) = d.arg(i) {
        match w {
            "if" | "unless" => break,
            "code" => {
                t.insert("code", status_at(d, i + 1, w)?.into());
                i += 2;
            }
            "drop-query" | "append-slash" => {
                t.insert(w.replace('-', "_").as_str(), true.into());
                i += 1;
            }
            "ignore-empty" => {
                left.push(w.to_string());
                i += 1;
            }
            "set-cookie" | "clear-cookie" => {
                t.insert(w.replace('-', "_").as_str(), value_at(d, i + 1, w)?.into());
                i += 2;
            }
            other => return Err(Fail::Bad(format!("unknown redirect option `{other}`"))),
        }
    }
    if !left.is_empty() {
        left = vec![format!("redirect options `{}` are not supported yet and were left out", left.join(" "))];
    }
    Ok(("redirect", Value::InlineTable(t), i, left))
}

fn header_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let name = value_at(d, 2, action)?;
    match action {
        "del-header" => {
            if d.arg(3) == Some("-m") {
                let mut t = InlineTable::new();
                t.insert("name", name.into());
                t.insert("match", value_at(d, 4, "-m")?.into());
                return Ok(("del_header", Value::InlineTable(t), 5, Vec::new()));
            }
            Ok(("del_header", Value::from(name), 3, Vec::new()))
        }
        _ => {
            let value = value_at(d, 3, action)?;
            let mut t = InlineTable::new();
            t.insert("name", name.into());
            t.insert("value", value.into());
            let key = if action == "set-header" { "set_header" } else { "add_header" };
            Ok((key, Value::InlineTable(t), 4, Vec::new()))
        }
    }
}

/// `ACTION NAME REGEX FMT` (`replace-header`, `replace-value`).
fn replace_header_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    t.insert("name", value_at(d, 2, action)?.into());
    t.insert("regex", value_at(d, 3, action)?.into());
    t.insert("replace", value_at(d, 4, action)?.into());
    let key = if action == "replace-header" { "replace_header" } else { "replace_value" };
    Ok((key, Value::InlineTable(t), 5, Vec::new()))
}

/// `ACTION REGEX FMT` (`replace-path`, `replace-pathq`, `replace-uri`).
fn replace_action(d: &Directive, key: &'static str) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    t.insert("regex", value_at(d, 2, key)?.into());
    t.insert("replace", value_at(d, 3, key)?.into());
    Ok((key, Value::InlineTable(t), 4, Vec::new()))
}

/// `set-var(VAR) EXPR` / `unset-var(VAR)`.
fn var_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let var = action
        .split_once('(')
        .and_then(|(_, r)| r.strip_suffix(')'))
        .ok_or_else(|| Fail::Bad(format!("expected `{action}` as set-var(scope.name)")))?;
    if action.starts_with("unset-var") {
        return Ok(("unset_var", Value::from(var), 2, Vec::new()));
    }
    let mut t = InlineTable::new();
    t.insert("var", var.into());
    t.insert("expr", value_at(d, 2, action)?.into());
    Ok(("set_var", Value::InlineTable(t), 3, Vec::new()))
}

/// `early-hint NAME FMT`.
fn early_hint_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    t.insert("name", value_at(d, 2, action)?.into());
    t.insert("value", value_at(d, 3, action)?.into());
    Ok(("early_hint", Value::InlineTable(t), 4, Vec::new()))
}

/// `do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR`.
fn do_resolve_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let usage = || {
        Fail::Bad(format!(
            "Can't parse '{action}'. Expects 'do-resolve(<varname>,<resolvers>[,<options>]) <expr>'. \
             Available options are 'ipv4' and 'ipv6'."
        ))
    };
    let args = action.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).ok_or_else(usage)?;
    let parts: Vec<&str> = args.split(',').collect();
    let (var, resolvers, family) = match parts.as_slice() {
        [v, r] => (v, r, None),
        [v, r, f @ ("ipv4" | "ipv6")] => (v, r, Some(*f)),
        _ => return Err(usage()),
    };
    // Any variable name, even empty, as HAProxy 2.6 (lbha warns when it has no scope).
    if resolvers.is_empty() {
        return Err(usage());
    }
    let mut t = InlineTable::new();
    t.insert("var", (*var).into());
    t.insert("resolvers", (*resolvers).into());
    if let Some(f) = family {
        t.insert("family", f.into());
    }
    t.insert("expr", d.arg(2).filter(|e| *e != "if" && *e != "unless").ok_or_else(usage)?.into());
    Ok(("do_resolve", Value::InlineTable(t), 3, Vec::new()))
}

/// `set-var-fmt(VAR) FMT`.
fn var_fmt_action(d: &Directive, action: &str) -> Result<Parsed, Fail> {
    let var = action
        .split_once('(')
        .and_then(|(_, r)| r.strip_suffix(')'))
        .ok_or_else(|| Fail::Bad(format!("expected `{action}` as set-var-fmt(scope.name)")))?;
    let mut t = InlineTable::new();
    t.insert("var", var.into());
    t.insert("fmt", value_at(d, 2, action)?.into());
    Ok(("set_var_fmt", Value::InlineTable(t), 3, Vec::new()))
}

/// `set-status CODE [reason TEXT]`.
fn set_status_action(d: &Directive) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    t.insert("status", status_at(d, 2, "set-status")?.into());
    let mut i = 3;
    if d.arg(3) == Some("reason") {
        t.insert("reason", value_at(d, 4, "reason")?.into());
        i = 5;
    }
    Ok(("set_status", Value::InlineTable(t), i, Vec::new()))
}

/// `wait-for-body time T [at-least SIZE]` (in either order, as HAProxy parses them): a bare
/// number stays milliseconds / bytes as an integer, one with a unit is kept as written.
fn wait_for_body_action(d: &Directive) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    let mut i = 2;
    let num_or_text = |v: String| v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(v));
    while let Some(kw @ ("time" | "at-least")) = d.arg(i) {
        let v = value_at(d, i + 1, kw)?;
        t.insert(if kw == "time" { "time" } else { "at_least" }, num_or_text(v));
        i += 2;
    }
    if !t.contains_key("time") {
        return Err(Fail::Bad("'wait-for-body' expects a 'time' parameter".into()));
    }
    Ok(("wait_for_body", Value::InlineTable(t), i, Vec::new()))
}

/// `auth [realm REALM]`.
fn auth_action(d: &Directive) -> Result<Parsed, Fail> {
    let mut t = InlineTable::new();
    let mut i = 2;
    if d.arg(2) == Some("realm") {
        t.insert("realm", value_at(d, 3, "realm")?.into());
        i = 4;
    }
    Ok(("auth", Value::InlineTable(t), i, Vec::new()))
}

/// `capture SAMPLE len N|id N`. A `len` declares a request slot where HAProxy does, among the
/// `capture request header` / `declare capture` lines, and the rule names it by `id`: the
/// slots keep HAProxy's numbering, which `%hr` and other rules' `id`s depend on.
fn capture_action(st: &mut St, d: &Directive, req: bool) -> Result<Parsed, Fail> {
    let sample = value_at(d, 2, "capture")?;
    let n = |i: usize| -> Result<i64, Fail> {
        let v = value_at(d, i, "capture")?;
        v.parse::<u32>().map(i64::from).map_err(|_| Fail::Bad(format!("bad number for capture: `{v}`")))
    };
    let id = match d.arg(3) {
        Some("id") => n(4)?,
        Some("len")
            if req && matches!(st.kind, super::proxy::ProxyKind::Frontend | super::proxy::ProxyKind::Listen) =>
        {
            let mut slot = InlineTable::new();
            slot.insert("len", n(4)?.into());
            st.out.push("capture_request", slot, src(d));
            st.out.list_mut("capture_request").map_or(0, |l| l.len() as i64 - 1)
        }
        Some("len") if req => {
            return Err(Fail::Bad("`capture ... len` needs a frontend (declare the slot there)".into()));
        }
        _ => return Err(Fail::Bad("expected `capture SAMPLE len N` or `capture SAMPLE id N`".into())),
    };
    let mut t = InlineTable::new();
    t.insert("sample", sample.into());
    t.insert("id", id.into());
    Ok(("capture", Value::InlineTable(t), 5, Vec::new()))
}

/// Which rule list a directive feeds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Request,
    Response,
    After,
}

/// `http-request ACTION ...`, `http-response ACTION ...` and `http-after-response ACTION ...`.
pub(super) fn http_rule(st: &mut St, d: &Directive, phase: Phase, cx: &mut Cx) {
    let key = match phase {
        Phase::Request => "http_request",
        Phase::Response => "http_response",
        Phase::After => "http_after_response",
    };
    let Some(action) = d.arg(1) else {
        cx.error(d, "missing action");
        return;
    };
    if !st.allowed(cx, d, key) {
        return;
    }
    let (req, res) = (phase == Phase::Request, phase == Phase::Response);
    let one =
        |k: &'static str| -> Result<Parsed, Fail> { Ok((k, Value::from(value_at(d, 2, action)?), 3, Vec::new())) };
    let base = cx.base_dir;
    let name = action.split('(').next().unwrap_or(action);
    let parsed = match name {
        "cache-use" if req => cache_action(d, "cache_use"),
        "cache-store" if res => cache_action(d, "cache_store"),
        "set-header" | "add-header" | "del-header" => header_action(d, action),
        "replace-header" | "replace-value" => replace_header_action(d, action),
        "set-var" | "unset-var" => var_action(d, action),
        "set-var-fmt" => var_fmt_action(d, action),
        "set-status" if !req => set_status_action(d),
        "return" if req || res => return_action(d, 2, base),
        "deny" if req || res => deny_action(d, 2, base),
        "tarpit" if req => deny_action(d, 2, base).map(|(_, v, i, notes)| ("tarpit", v, i, notes)),
        "redirect" if req || res => redirect_action(d, 2),
        "allow" if req || res => Ok(("allow", Value::from(true), 2, Vec::new())),
        "auth" if req => auth_action(d),
        "set-path" if req => one("set_path"),
        "set-pathq" if req => one("set_pathq"),
        "set-query" if req => one("set_query"),
        "set-uri" if req => one("set_uri"),
        "set-method" if req => one("set_method"),
        "replace-path" if req => replace_action(d, "replace_path"),
        "replace-pathq" if req => replace_action(d, "replace_pathq"),
        "replace-uri" if req => replace_action(d, "replace_uri"),
        "capture" => capture_action(st, d, req),
        "set-log-level" if req || res => one("set_log_level"),
        "use-service" if req => one("use_service"),
        "reject" if req => Ok(("reject", Value::from(true), 2, Vec::new())),
        "disable-l7-retry" if req => Ok(("disable_l7_retry", Value::from(true), 2, Vec::new())),
        "wait-for-handshake" if req => Ok(("wait_for_handshake", Value::from(true), 2, Vec::new())),
        "wait-for-body" if req || res => wait_for_body_action(d),
        "do-resolve" if req => do_resolve_action(d, action),
        "early-hint" if req => early_hint_action(d, action),
        "strict-mode" if req || res => match d.arg(2) {
            Some(v @ ("on" | "off")) => Ok(("strict_mode", Value::from(v), 3, Vec::new())),
            _ => Err(Fail::Bad("'strict-mode' expects 'on' or 'off'".into())),
        },
        "silent-drop" if req || res => Ok(("silent_drop", Value::from(true), 2, Vec::new())),
        "normalize-uri" if req => {
            let end = d.args.iter().skip(2).position(|w| w == "if" || w == "unless").map_or(d.args.len(), |p| p + 2);
            match d.args.get(2..end).filter(|w| !w.is_empty()) {
                Some(w) => Ok(("normalize_uri", Value::from(w.join(" ")), end, Vec::new())),
                None => Err(Fail::Bad("`normalize-uri` needs a normalizer".into())),
            }
        }
        "set-mark" if req || res => one("set_mark"),
        "set-tos" if req || res => one("set_tos"),
        "set-src" if req => one("set_src"),
        "set-src-port" if req => one("set_src_port"),
        "set-dst" if req => one("set_dst"),
        "set-dst-port" if req => one("set_dst_port"),
        "set-map" | "del-map" | "add-acl" | "del-acl" if req || res => map_edit_action(d, action, base),
        "set-priority-class" | "set-priority-offset" => Err(Fail::Unsupported(format!(
            "`{name}`: lbha's backend queue serves requests first come, first served and cannot honour a priority"
        ))),
        "set-timeout" if req && st.kind == super::proxy::ProxyKind::Frontend => {
            Err(Fail::Bad("`set-timeout`: a frontend has no backend capability (as in HAProxy)".into()))
        }
        "set-timeout" if req => set_timeout_action(d),
        n if super::track::is_stick(n) && (req || (res && !n.starts_with("track-sc"))) => {
            super::track::http_action(d, action).map(|(k, v, i)| (k, v, i, Vec::new())).map_err(Fail::Bad)
        }
        _ => Err(Fail::Unsupported(format!("`{} {action}` is not supported yet", d.keyword()))),
    };
    let relative_acl = matches!(name, "add-acl" | "del-acl")
        && action.split_once('(').is_some_and(|(_, f)| !f.starts_with('/') && f.len() > 1);
    if relative_acl && parsed.is_ok() {
        let msg = format!("relative pattern file written as an absolute path from {}", cx.base_dir.display());
        cx.report(d, ReportKind::Note, msg);
    }
    if let Some((value, s)) = finish_rule(st, d, parsed, cx) {
        if req {
            st.rules.requests.push((value, s));
        } else {
            st.out.push(key, value, s);
        }
    }
}

/// `set-map(FILE) KEY VALUE`, `del-map(FILE) KEY`, `add-acl(FILE) KEY`, `del-acl(FILE) KEY`.
/// A relative pattern file (`add-acl`, `del-acl`) is made absolute as `-f FILE` is, so that the
/// rule edits the file the ACLs read; a map file stays as `map(FILE)` writes it.
fn map_edit_action(d: &Directive, action: &str, base: &std::path::Path) -> Result<Parsed, Fail> {
    let (name, rest) = action.split_once('(').unwrap_or((action, ""));
    let file = rest.strip_suffix(')').filter(|f| !f.is_empty());
    let Some(file) = file else {
        return Err(Fail::Bad(format!("`{name}` needs a file name in parentheses, e.g. `{name}(/etc/haproxy/x.map)`")));
    };
    let key: &'static str = match name {
        "set-map" => "set_map",
        "del-map" => "del_map",
        "add-acl" => "add_acl",
        _ => "del_acl",
    };
    let file = if key.ends_with("_acl") && !std::path::Path::new(file).is_absolute() {
        base.join(file).display().to_string()
    } else {
        file.to_string()
    };
    let mut t = InlineTable::new();
    t.insert("file", file.into());
    t.insert("key", value_at(d, 2, name)?.into());
    let mut next = 3;
    if name == "set-map" {
        t.insert("value", value_at(d, 3, name)?.into());
        next = 4;
    }
    Ok((key, Value::InlineTable(t), next, Vec::new()))
}

/// `set-timeout server|tunnel TIME|EXPR`, then the condition.
fn set_timeout_action(d: &Directive) -> Result<Parsed, Fail> {
    let which = match d.arg(2) {
        Some(w @ ("server" | "tunnel")) => w,
        other => {
            let got = other.unwrap_or("nothing");
            return Err(Fail::Bad(format!("`set-timeout` takes `server` or `tunnel` (HAProxy 2.6), got `{got}`")));
        }
    };
    let mut t = InlineTable::new();
    t.insert(which, value_at(d, 3, "set-timeout")?.into());
    Ok(("set_timeout", Value::InlineTable(t), 4, Vec::new()))
}

/// `cache-use NAME` / `cache-store NAME`, then the condition.
fn cache_action(d: &Directive, key: &'static str) -> Result<Parsed, Fail> {
    Ok((key, value_at(d, 2, key)?.into(), 3, Vec::new()))
}

fn finish_rule(st: &mut St, d: &Directive, parsed: Result<Parsed, Fail>, cx: &mut Cx) -> Option<(Value, Src)> {
    let (name, value, next, notes) = match parsed {
        Ok(p) => p,
        Err(Fail::Unsupported(m)) => {
            cx.drop(&mut st.out, d, ReportKind::Unsupported, m);
            return None;
        }
        Err(Fail::Bad(m)) => {
            cx.error(d, m);
            return None;
        }
    };
    let mut t = InlineTable::new();
    t.insert(name, value);
    match with_condition(st, d, next, t, cx) {
        Ok(t) => {
            for n in notes {
                cx.report(d, ReportKind::Approximated, n);
            }
            Some((Value::InlineTable(t), src(d)))
        }
        Err((kind, m)) => {
            cx.drop(&mut st.out, d, kind, m);
            None
        }
    }
}

/// The `redirect` keyword of a proxy section.
pub(super) fn redirect_kw(st: &mut St, d: &Directive, cx: &mut Cx) {
    if !st.allowed(cx, d, "http_request") {
        return;
    }
    let parsed = redirect_action(d, 1);
    if let Some(rule) = finish_rule(st, d, parsed, cx) {
        st.rules.redirects.push(rule);
    }
}

/// `monitor fail if|unless COND`.
pub(super) fn monitor(st: &mut St, d: &Directive, cx: &mut Cx) {
    if d.arg(1) != Some("fail") {
        cx.error(d, "expected `monitor fail if|unless COND`");
        return;
    }
    if !st.allowed(cx, d, "monitor_fail") {
        return;
    }
    match condition(st, d, 2, cx) {
        Ok(Some((kw, text))) => st.out.set("monitor_fail", format!("{kw} {text}"), src(d)),
        Ok(None) => cx.error(d, "`monitor fail` needs a condition"),
        Err((kind, m)) => cx.drop(&mut st.out, d, kind, m),
    }
}

/// `block [if|unless COND]`, HAProxy's old `http-request deny`.
pub(super) fn block(st: &mut St, d: &Directive, cx: &mut Cx) {
    if !st.allowed(cx, d, "http_request") {
        return;
    }
    cx.report(
        d,
        ReportKind::Note,
        "deprecated keyword, written as an `http-request deny` rule placed first, as HAProxy does",
    );
    let parsed = Ok(("deny", Value::InlineTable(InlineTable::new()), 1, Vec::new()));
    if let Some(rule) = finish_rule(st, d, parsed, cx) {
        st.rules.blocks.push(rule);
    }
}

pub(super) fn finish(st: &mut St) {
    let rules = std::mem::take(&mut st.rules);
    for a in rules.acls {
        let mut t = InlineTable::new();
        t.insert("name", a.name.into());
        let mut all = a.head;
        all.extend(a.patterns);
        t.insert("cond", words(&all).into());
        st.out.push("acl", Value::InlineTable(t), a.src);
    }
    for (v, s) in rules.blocks.into_iter().chain(rules.requests).chain(rules.redirects) {
        st.out.push("http_request", v, s);
    }
}
