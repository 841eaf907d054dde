//! HTTP rule lists (`http_request`, `http_response`, `http_after_response`) in frontends,
//! listens and backends: ACLs, conditions, actions and the map files they read. Everything a
//! rule evaluates is parsed here once.

use super::errpages::{self, PageSource};
use super::{Ctx, header_pair, status};
use crate::config::error::FieldPath;
use crate::config::model::{self, Mode, Section};
use crate::config::snapshot::{HttpAction, HttpRule, NameMatch, RedirectOpts, RedirectTarget, TimeoutValue};
use crate::log::record::LevelSet;
use crate::proxy::logrec::{FrontLog, Slot};
use crate::routing::{Acl, Condition};
use crate::sample::{LogFormat, MatchKind, SampleExpr, Segment, VarRef};
use bytes::Bytes;
use http::{HeaderName, StatusCode};

/// Which rule list an action is in: each allows its own actions, as in HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Request,
    Response,
    After,
}

impl Phase {
    fn key(self) -> &'static str {
        match self {
            Phase::Request => "http_request",
            Phase::Response => "http_response",
            Phase::After => "http_after_response",
        }
    }
    fn allows(self, action: &str) -> bool {
        const HEADERS: &[&str] = &["set_header", "add_header", "del_header", "replace_header", "replace_value"];
        const VARS: &[&str] = &["set_var", "unset_var", "set_var_fmt"];
        const SC: &[&str] = &["sc_inc_gpc0", "sc_inc_gpc1", "sc_inc_gpc", "sc_set_gpt0", "sc_set_gpt"];
        match self {
            Phase::Request => action != "set_status" && action != "cache_store",
            Phase::Response => {
                HEADERS.contains(&action)
                    || VARS.contains(&action)
                    || SC.contains(&action)
                    || [
                        "allow",
                        "deny",
                        "set_status",
                        "redirect",
                        "return",
                        "capture",
                        "set_log_level",
                        "strict_mode",
                        "wait_for_body",
                        "cache_store",
                        "silent_drop",
                        "set_mark",
                        "set_tos",
                        "set_map",
                        "del_map",
                        "add_acl",
                        "del_acl",
                    ]
                    .contains(&action)
            }
            Phase::After => {
                HEADERS.contains(&action) || VARS.contains(&action) || ["set_status", "capture"].contains(&action)
            }
        }
    }
}

/// Registers the map files `refs` name (relative to the config's directory) with the shared
/// map store, which the control socket's map commands change at run time.
pub(super) fn load_maps<'a>(refs: impl IntoIterator<Item = crate::sample::FileRef<'a>>, at: &FieldPath, cx: &mut Ctx) {
    for r in refs {
        match cx.maps.need_ref(r, &at.to_string()) {
            Ok(None) => {}
            Ok(Some(w)) => cx.warn(at.clone(), w),
            Err(e) => {
                let what = if matches!(r, crate::sample::FileRef::Map(..)) { "map file" } else { "jwt_verify key" };
                cx.err_v(at.clone(), format!("{what}: {e}"), r.path());
            }
        }
    }
}

fn lf_maps(lf: &LogFormat) -> Vec<crate::sample::FileRef<'_>> {
    lf.segments
        .iter()
        .flat_map(|s| match s {
            Segment::Expr { expr, .. } => expr.map_refs().collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Parses a log-format value (header value, location, body), loading the maps it reads.
pub(super) fn log_format(text: &str, at: &FieldPath, cx: &mut Ctx) -> Option<LogFormat> {
    match LogFormat::parse(text) {
        Ok(mut lf) => {
            load_maps(lf_maps(&lf), at, cx);
            super::track::log_format(&mut lf, at, text, cx);
            for seg in &lf.segments {
                if let Segment::Expr { expr, .. } = seg {
                    request_side(expr, at, text, cx);
                }
            }
            Some(lf)
        }
        Err(e) => {
            cx.err_v(at.clone(), e.to_string(), text);
            None
        }
    }
}

/// Loads what an `if`/`unless` condition reads besides the request (its anonymous ACLs' map
/// and `-f` files) and checks the userlists and stick tables it names. Every parsed condition goes through here:
/// a pattern file missing from the store would match nothing, silently.
/// Stick-counter fetches get their tables resolved against the section being read.
pub(super) fn register_cond(c: &mut Condition, at: &FieldPath, text: &str, cx: &mut Ctx) {
    load_maps(c.map_refs(), at, cx);
    load_patterns(c.file_refs(), at, cx);
    check_auth(c.auth_refs(), at, cx);
    super::track::exprs(c.inline_acls_mut().flat_map(|a| a.exprs_mut()), at, text, cx);
}

/// Registers `-f` files with the shared store (relative to the config's directory), indexed
/// for their match method; `add acl` / `del acl` then change them at run time.
fn load_patterns(refs: Vec<(&str, MatchKind, bool, bool)>, at: &FieldPath, cx: &mut Ctx) {
    for (file, kind, icase, is_map) in refs {
        if let Err(e) = cx.maps.need(file, kind, icase, !is_map, &at.to_string()) {
            cx.err_v(at.clone(), format!("pattern file: {e}"), file);
        }
    }
}

/// The userlists and groups `http_auth`/`http_auth_group` name must exist: HAProxy refuses
/// the config otherwise, and a check that can never pass would lock everyone out silently.
fn check_auth(refs: Vec<(&str, &[String])>, at: &FieldPath, cx: &mut Ctx) {
    for (list, groups) in refs {
        let Some((_, known)) = cx.userlists.iter().find(|(n, _)| n == list) else {
            cx.err_v(at.clone(), "no such userlist", list);
            continue;
        };
        if let Some(g) = groups.iter().find(|g| !known.contains(g)) {
            let msg = format!("no such group in userlist {list}");
            cx.err_v(at.clone(), msg, g);
        }
    }
}

/// The ACLs of a section, several lines of one name ORed, and their names by index.
pub(super) fn acls<'s>(
    s: &'s Section,
    p: &FieldPath,
    backend_index: &std::collections::HashMap<&str, usize>,
    cx: &mut Ctx,
) -> (Vec<Acl>, Vec<&'s str>) {
    let mut acls: Vec<Acl> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, a) in s.acl.as_deref().unwrap_or(&[]).iter().enumerate() {
        let ap = p.key("acl").index(i);
        if a.name.is_empty() || !a.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
            cx.err_v(ap.key("name"), "acl names use letters, digits, '_', '-', '.', ':'", &a.name);
        }
        let acl = match Acl::parse(&a.cond) {
            Ok(mut acl) => {
                load_maps(acl.map_refs(), &ap.key("cond"), cx);
                load_patterns(acl.file_refs(), &ap.key("cond"), cx);
                check_auth(acl.auth_refs(), &ap.key("cond"), cx);
                super::track::exprs(acl.exprs_mut(), &ap.key("cond"), &a.cond, cx);
                super::check_backend_refs(acl.referenced_backends(), backend_index, &ap.key("cond"), cx);
                acl
            }
            Err(e) => {
                cx.err_v(ap.key("cond"), e.to_string(), &a.cond);
                match Acl::parse("always_false") {
                    Ok(f) => f,
                    Err(_) => continue,
                }
            }
        };
        match names.iter().position(|n| *n == a.name) {
            Some(j) => acls[j].or(acl),
            None => {
                names.push(&a.name);
                acls.push(acl);
            }
        }
    }
    (acls, names)
}

/// `if`/`unless` of one rule against the section's ACL names.
pub(super) fn cond(
    names: &[&str],
    if_: &Option<String>,
    unless: &Option<String>,
    rp: &FieldPath,
    cx: &mut Ctx,
) -> Option<Condition> {
    let (text, key) = match (if_, unless) {
        (Some(_), Some(_)) => {
            cx.err(rp.clone(), "use either `if` or `unless`, not both");
            return None;
        }
        (Some(c), None) => (format!("if {c}"), "if"),
        (None, Some(c)) => (format!("unless {c}"), "unless"),
        (None, None) => return None,
    };
    let lookup = |n: &str| names.iter().position(|x| *x == n);
    match Condition::parse(&text, &lookup) {
        Ok(mut c) => {
            register_cond(&mut c, &rp.key(key), text.split_once(' ').map_or("", |x| x.1), cx);
            Some(c)
        }
        Err(e) => {
            cx.err_v(rp.key(key), e.to_string(), text.split_once(' ').map(|x| x.1).unwrap_or(""));
            None
        }
    }
}

/// One rule list of a section; `(acls, names)` are the section's declared ACLs.
pub(super) fn rules(
    list: &Option<Vec<model::HttpRule>>,
    phase: Phase,
    mode: Mode,
    (acls, names): (&[Acl], &[&str]),
    p: &FieldPath,
    mut slots: Option<&mut FrontLog>,
    cx: &mut Ctx,
) -> Vec<HttpRule> {
    let key = phase.key();
    let list = list.as_deref().unwrap_or(&[]);
    if !list.is_empty() && mode == Mode::Tcp {
        cx.err(p.key(key), format!("`{key}` rules need mode http"));
    }
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let rp = p.key(key).index(i);
        let cond = cond(names, &r.if_, &r.unless, &rp, cx);
        if phase == Phase::Request
            && let Some(c) = &cond
        {
            never_matching(c, acls, names, &rp.key(if r.if_.is_some() { "if" } else { "unless" }), cx);
        }
        cx.request_rule = phase == Phase::Request;
        let action = action(r, &rp, phase, slots.as_deref_mut(), cx);
        cx.request_rule = false;
        if let Some(action) = action {
            out.push(HttpRule { action, cond });
        }
    }
    out
}

/// What a fetch needs that an `http_request` rule never has, in HAProxy's words.
fn response_only(f: &crate::sample::Fetch) -> Option<&'static str> {
    use crate::sample::Reads;
    match f.reads() {
        Reads::HttpResponse => Some("HTTP response"),
        Reads::ResPayload => Some("response buffer"),
        _ => None,
    }
}

/// The response-only part of an ACL whose every fetch is response-only: such an ACL never
/// matches in a request rule.
fn response_acl(a: &Acl) -> Option<&'static str> {
    let mut what = None;
    for f in a.fetches() {
        what = Some(response_only(f)?);
    }
    what
}

/// Warns, as HAProxy does, of the ACLs of a request rule's condition that only read the
/// response (HAProxy: "acl will never match because it only involves keywords that are
/// incompatible with ...").
fn never_matching(c: &Condition, acls: &[Acl], names: &[&str], at: &FieldPath, cx: &mut Ctx) {
    for a in c.inline_acls() {
        if let Some(what) = response_acl(a) {
            let msg = format!(
                "an ACL here never matches: it reads only the {what}, which http_request rules never see (HAProxy warns the same)"
            );
            cx.warn(at.clone(), msg);
        }
    }
    for i in c.named().collect::<Vec<_>>() {
        if let Some(what) = acls.get(i).and_then(response_acl) {
            let name = names.get(i).copied().unwrap_or("?");
            let msg = format!(
                "acl `{name}` never matches here: it reads only the {what}, which http_request rules never see (HAProxy warns the same)"
            );
            cx.warn(at.clone(), msg);
        }
    }
}

/// An `http_request` action's sample that reads the response: refused, as HAProxy refuses it
/// ("may not be reliably used here because it needs 'HTTP response' which is not available").
fn request_side(e: &SampleExpr, at: &FieldPath, text: &str, cx: &mut Ctx) {
    if !cx.request_rule {
        return;
    }
    if let Some(what) = response_only(&e.fetch) {
        let msg = format!(
            "this sample needs the {what}, which is not available in http_request rules (HAProxy refuses it too)"
        );
        cx.err_v(at.clone(), msg, text);
    }
}

fn regex(text: &str, at: &FieldPath, cx: &mut Ctx) -> Option<regex::bytes::Regex> {
    regex::bytes::Regex::new(text).map_err(|e| cx.err_v(at.clone(), format!("bad regex: {e}"), text)).ok()
}

fn header_name(name: &str, at: &FieldPath, cx: &mut Ctx) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| cx.err_v(at.clone(), "invalid header name", name)).ok()
}

fn var_ref(text: &str, at: &FieldPath, cx: &mut Ctx) -> Option<VarRef> {
    VarRef::parse(text)
        .ok_or_else(|| cx.err_v(at.clone(), "expected scope.name with scope proc, sess, txn, req or res", text))
        .ok()
}

/// A body given inline or read from a file (relative to the config's directory) at load time.
fn body_text(inline: Option<&str>, file: Option<&str>, at: &FieldPath, cx: &mut Ctx) -> Option<String> {
    match (inline, file) {
        (Some(s), None) => Some(s.to_string()),
        (None, Some(f)) => {
            let path = super::resolve(cx.base_dir, f);
            std::fs::read_to_string(&path)
                .map_err(|e| cx.err_v(at.clone(), format!("cannot read {}: {e}", path.display()), f))
                .ok()
        }
        (None, None) => Some(String::new()),
        (Some(_), Some(_)) => {
            cx.err(at.clone(), "give the body inline or as a file, not both");
            None
        }
    }
}

/// An answer's headers: its content type and `Name: value` lines. Values with a `%` are
/// log-format strings (HAProxy's `hdr NAME FMT`), rendered per request: the second list.
type Headers = (Vec<(HeaderName, http::HeaderValue)>, Vec<(HeaderName, LogFormat)>);

fn answer_headers(content_type: Option<&str>, lines: &[String], at: &FieldPath, cx: &mut Ctx) -> Headers {
    let mut headers = Vec::new();
    let mut lf_headers = Vec::new();
    if let Some(ct) = content_type {
        headers.extend(header_pair("content-type", ct, &at.key("content_type"), cx));
    }
    for (i, h) in lines.iter().enumerate() {
        let hp = at.key("headers").index(i);
        match h.split_once(':') {
            Some((name, value)) if value.contains('%') => {
                let n = header_name(name.trim(), &hp, cx);
                let v = log_format(value.trim(), &hp, cx);
                lf_headers.extend(n.zip(v));
            }
            Some((name, value)) => headers.extend(header_pair(name.trim(), value.trim(), &hp, cx)),
            None => cx.err_v(hp, "expected \"Name: value\"", h),
        }
    }
    (headers, lf_headers)
}

fn answer(
    status: StatusCode,
    (headers, lf_headers): Headers,
    body: String,
    lf: bool,
    deny: bool,
    at: &FieldPath,
    cx: &mut Ctx,
) -> Option<HttpAction> {
    if !lf {
        if deny && body.is_empty() && headers.is_empty() && lf_headers.is_empty() {
            return Some(HttpAction::Deny { status });
        }
        if !deny && lf_headers.is_empty() {
            return Some(HttpAction::Return { status, headers, body: Bytes::from(body) });
        }
        // A deny with its own body still counts as denied.
        let body = LogFormat { segments: vec![Segment::Literal(body.into_bytes())] };
        return Some(HttpAction::ReturnLf { status, headers, body, deny, lf_headers });
    }
    let body = log_format(&body, at, cx)?;
    Some(HttpAction::ReturnLf { status, headers, body, deny, lf_headers })
}

/// The one action of a rule, checked against what its list allows.
/// `slots`: the frontend's capture slots, which a `capture ... len N` extends (`None` in a
/// backend, which has none of its own).
pub(super) fn action(
    r: &model::HttpRule,
    rp: &FieldPath,
    phase: Phase,
    slots: Option<&mut FrontLog>,
    cx: &mut Ctx,
) -> Option<HttpAction> {
    let mut found: Vec<&'static str> = Vec::new();
    macro_rules! has {
        ($($f:ident => $n:literal),*) => { $( if r.$f.is_some() { found.push($n); } )* };
    }
    has!(return_ => "return", deny => "deny", redirect => "redirect", set_header => "set_header",
         add_header => "add_header", del_header => "del_header", allow => "allow", tarpit => "tarpit",
         auth => "auth", replace_header => "replace_header", replace_value => "replace_value",
         set_path => "set_path", set_pathq => "set_pathq", set_query => "set_query", set_uri => "set_uri",
         set_method => "set_method", replace_path => "replace_path", replace_pathq => "replace_pathq",
         replace_uri => "replace_uri", set_var => "set_var", unset_var => "unset_var", set_status => "set_status",
         capture => "capture", set_log_level => "set_log_level", use_service => "use_service",
         track_sc0 => "track_sc0", track_sc1 => "track_sc1", track_sc2 => "track_sc2", sc_inc_gpc0 => "sc_inc_gpc0",
         sc_inc_gpc1 => "sc_inc_gpc1", sc_inc_gpc => "sc_inc_gpc", sc_set_gpt0 => "sc_set_gpt0", sc_set_gpt => "sc_set_gpt");
    has!(cache_use => "cache_use", cache_store => "cache_store");
    has!(set_var_fmt => "set_var_fmt");
    has!(silent_drop => "silent_drop", reject => "reject", set_src => "set_src", set_src_port => "set_src_port",
         set_dst => "set_dst", set_dst_port => "set_dst_port", set_timeout => "set_timeout");
    has!(set_mark => "set_mark", set_tos => "set_tos", normalize_uri => "normalize_uri");
    has!(disable_l7_retry => "disable_l7_retry", wait_for_handshake => "wait_for_handshake");
    has!(wait_for_body => "wait_for_body", strict_mode => "strict_mode", do_resolve => "do_resolve");
    has!(early_hint => "early_hint");
    has!(set_map => "set_map", del_map => "del_map", add_acl => "add_acl", del_acl => "del_acl");
    let name = match found.as_slice() {
        [one] => *one,
        [] => {
            cx.err(rp.clone(), "rule has no action (e.g. deny, return, redirect, set_header, set_var)");
            return None;
        }
        many => {
            cx.err(rp.clone(), format!("one action per rule, found {}", many.join(", ")));
            return None;
        }
    };
    if !phase.allows(name) {
        cx.err(rp.key(name), format!("`{name}` is not an action of {}", phase.key()));
        return None;
    }
    let ap = rp.key(name);
    let lf = |text: &str, cx: &mut Ctx| log_format(text, &ap, cx);
    Some(match name {
        "return" => {
            let ret = r.return_.as_ref()?;
            let st = status(ret.status, 200, &ap.key("status"), 200..=599, cx);
            let inline = [(&ret.body, false), (&ret.lf_string, true)];
            let files = [(&ret.file, false), (&ret.lf_file, true)];
            let given: Vec<(&str, bool, bool)> = inline
                .iter()
                .filter_map(|(t, l)| t.as_deref().map(|t| (t, *l, false)))
                .chain(files.iter().filter_map(|(t, l)| t.as_deref().map(|t| (t, *l, true))))
                .collect();
            let src = PageSource {
                errorfile: ret.errorfile.as_deref(),
                errorfiles: ret.errorfiles.as_deref(),
                default_errorfiles: ret.default_errorfiles,
            };
            if src.given() {
                let extras = (ret.content_type.is_some(), !ret.headers.is_empty());
                return errpages::rule_page(&src, st, !given.is_empty(), extras, false, &ap, cx);
            }
            let headers = answer_headers(ret.content_type.as_deref(), &ret.headers, &ap, cx);
            match given.as_slice() {
                [] => return answer(st, headers, String::new(), false, false, &ap, cx),
                [(t, l, file)] => {
                    let body = if *file { body_text(None, Some(t), &ap, cx)? } else { t.to_string() };
                    return answer(st, headers, body, *l, false, &ap, cx);
                }
                _ => {
                    cx.err(ap, "give one of body, lf_string, file or lf_file");
                    return None;
                }
            }
        }
        "deny" => {
            let d = r.deny.as_ref()?;
            // HAProxy's default: 403 for a request, 502 for a response (`http-response deny`).
            let default = if cx.request_rule { 403 } else { 502 };
            let st = status(d.status, default, &ap.key("status"), 200..=599, cx);
            let src = PageSource {
                errorfile: d.errorfile.as_deref(),
                errorfiles: d.errorfiles.as_deref(),
                default_errorfiles: d.default_errorfiles,
            };
            let bodies = [d.string.is_some(), d.lf_string.is_some(), d.file.is_some(), d.lf_file.is_some()];
            if src.given() {
                let extras = (d.content_type.is_some(), !d.headers.is_empty());
                return errpages::rule_page(&src, st, bodies.contains(&true), extras, true, &ap, cx);
            }
            if bodies.iter().filter(|b| **b).count() > 1 {
                cx.err(ap, "give one of string, lf_string, file or lf_file");
                return None;
            }
            let headers = answer_headers(d.content_type.as_deref(), &d.headers, &ap, cx);
            let text = d.string.as_deref().or(d.lf_string.as_deref());
            let body = body_text(text, d.file.as_deref().or(d.lf_file.as_deref()), &ap, cx)?;
            let lf = d.lf_string.is_some() || d.lf_file.is_some();
            return answer(st, headers, body, lf, true, &ap, cx);
        }
        "tarpit" => {
            let d = r.tarpit.as_ref()?;
            if d.content_type.is_some()
                || d.string.is_some()
                || d.lf_string.is_some()
                || d.file.is_some()
                || d.lf_file.is_some()
                || !d.headers.is_empty()
                || d.errorfile.is_some()
                || d.errorfiles.is_some()
                || d.default_errorfiles
            {
                cx.err(ap, "a tarpit answers with lbha's error page: only `status` is taken");
                return None;
            }
            HttpAction::Tarpit { status: status(d.status, 500, &ap.key("status"), 200..=599, cx) }
        }
        "allow" => {
            if r.allow != Some(true) {
                cx.err(ap, "write `allow = true`");
                return None;
            }
            HttpAction::Allow
        }
        "auth" => HttpAction::Auth { realm: r.auth.as_ref()?.realm.clone().unwrap_or_else(|| "lbha".to_string()) },
        "redirect" => {
            let rd = r.redirect.as_ref()?;
            let target = match (&rd.location, &rd.prefix, &rd.scheme) {
                (Some(l), None, None) => RedirectTarget::Location(lf(l, cx)?),
                (None, Some(pf), None) => RedirectTarget::Prefix(lf(pf.trim_end_matches('/'), cx)?),
                (None, None, Some(s)) => RedirectTarget::Scheme(lf(s, cx)?),
                _ => {
                    cx.err(ap, "redirect needs exactly one of `location`, `prefix` or `scheme`");
                    return None;
                }
            };
            let code = status(rd.code, 302, &ap.key("code"), 301..=308, cx);
            let opts = RedirectOpts {
                drop_query: rd.drop_query,
                append_slash: rd.append_slash,
                set_cookie: rd.set_cookie.clone(),
                clear_cookie: rd.clear_cookie.clone(),
            };
            HttpAction::Redirect { target, code, opts }
        }
        "set_header" | "add_header" => {
            let h = if name == "set_header" { r.set_header.as_ref()? } else { r.add_header.as_ref()? };
            let n = header_name(&h.name, &ap.key("name"), cx);
            let v = log_format(&h.value, &ap.key("value"), cx);
            let (n, v) = (n?, v?);
            if name == "set_header" { HttpAction::SetHeader(n, v) } else { HttpAction::AddHeader(n, v) }
        }
        "del_header" => {
            let (name, method) = match r.del_header.as_ref()? {
                model::DelHeaderAction::Name(n) => (n, None),
                model::DelHeaderAction::Match { name, method } => (name, method.as_deref()),
            };
            let lower = name.to_ascii_lowercase();
            match method.unwrap_or("str") {
                "str" => HttpAction::DelHeader(header_name(name, &ap.key("name"), cx)?),
                "beg" => HttpAction::DelHeaders(NameMatch::Beg(lower)),
                "end" => HttpAction::DelHeaders(NameMatch::End(lower)),
                "sub" => HttpAction::DelHeaders(NameMatch::Sub(lower)),
                "reg" => HttpAction::DelHeaders(NameMatch::Reg(regex(&format!("(?i){name}"), &ap.key("name"), cx)?)),
                other => {
                    cx.err_v(ap.key("match"), "expected str, beg, end, sub or reg", other);
                    return None;
                }
            }
        }
        "replace_header" | "replace_value" => {
            let h = if name == "replace_header" { r.replace_header.as_ref()? } else { r.replace_value.as_ref()? };
            let n = header_name(&h.name, &ap.key("name"), cx);
            let re = regex(&h.regex, &ap.key("regex"), cx);
            let rep = log_format(&h.replace, &ap.key("replace"), cx);
            HttpAction::ReplaceHeader { name: n?, regex: re?, replace: rep?, each_value: name == "replace_value" }
        }
        "set_path" => HttpAction::SetPath(lf(r.set_path.as_deref()?, cx)?),
        "set_pathq" => HttpAction::SetPathQ(lf(r.set_pathq.as_deref()?, cx)?),
        "set_query" => HttpAction::SetQuery(lf(r.set_query.as_deref()?, cx)?),
        "set_uri" => HttpAction::SetUri(lf(r.set_uri.as_deref()?, cx)?),
        "set_method" => HttpAction::SetMethod(lf(r.set_method.as_deref()?, cx)?),
        "replace_path" | "replace_pathq" | "replace_uri" => {
            let rep = match name {
                "replace_path" => r.replace_path.as_ref()?,
                "replace_pathq" => r.replace_pathq.as_ref()?,
                _ => r.replace_uri.as_ref()?,
            };
            let re = regex(&rep.regex, &ap.key("regex"), cx);
            let with = log_format(&rep.replace, &ap.key("replace"), cx);
            let (regex, replace) = (re?, with?);
            match name {
                "replace_uri" => HttpAction::ReplaceUri { regex, replace },
                _ => HttpAction::ReplacePath { regex, replace, with_query: name == "replace_pathq" },
            }
        }
        "set_var" => {
            let sv = r.set_var.as_ref()?;
            let var = var_ref(&sv.var, &ap.key("var"), cx);
            let expr = match SampleExpr::parse(&sv.expr) {
                Ok(mut e) => {
                    load_maps(e.map_refs(), &ap.key("expr"), cx);
                    super::track::exprs([&mut e], &ap.key("expr"), &sv.expr, cx);
                    request_side(&e, &ap.key("expr"), &sv.expr, cx);
                    Some(e)
                }
                Err(e) => {
                    cx.err_v(ap.key("expr"), e.to_string(), &sv.expr);
                    None
                }
            };
            HttpAction::SetVar { var: var?, expr: expr? }
        }
        "unset_var" => HttpAction::UnsetVar(var_ref(r.unset_var.as_deref()?, &ap, cx)?),
        "set_var_fmt" => {
            let sv = r.set_var_fmt.as_ref()?;
            let var = var_ref(&sv.var, &ap.key("var"), cx);
            let fmt = log_format(&sv.fmt, &ap.key("fmt"), cx);
            HttpAction::SetVarFmt { var: var?, fmt: fmt? }
        }
        "capture" => capture(r.capture.as_ref()?, &ap, phase, slots, cx)?,
        "set_log_level" => {
            let text = r.set_log_level.as_deref()?;
            match LevelSet::parse(text) {
                Some(l) => HttpAction::SetLogLevel(l),
                None => {
                    cx.err_v(ap, "expected silent, emerg, alert, crit, err, warning, notice, info or debug", text);
                    return None;
                }
            }
        }
        "use_service" => match r.use_service.as_deref()? {
            "prometheus-exporter" => HttpAction::Metrics,
            other => {
                cx.err_v(ap, "the only service is prometheus-exporter (lbha's metrics)", other);
                return None;
            }
        },
        "set_status" => {
            let ss = r.set_status.as_ref()?;
            let st = status(Some(ss.status), 200, &ap.key("status"), 100..=999, cx);
            HttpAction::SetStatus { status: st, reason: ss.reason.clone() }
        }
        n if n.starts_with("track_sc") || n.starts_with("sc_") => return super::track::http_action(r, n, &ap, cx),
        "cache_use" | "cache_store" => {
            let cache = if name == "cache_use" { r.cache_use.as_deref()? } else { r.cache_store.as_deref()? };
            let Some(c) = cx.caches.iter().find(|c| c.name == cache) else {
                cx.err_v(ap, "no such cache", cache);
                return None;
            };
            if name == "cache_use" { HttpAction::CacheUse(c.clone()) } else { HttpAction::CacheStore(c.clone()) }
        }
        "wait_for_body" => {
            let w = r.wait_for_body.as_ref()?;
            let Some(time) = w.time.map(|t| t.0) else {
                cx.err(ap.key("time"), "wait_for_body needs a time, as HAProxy's `wait-for-body time T`");
                return None;
            };
            if time.is_zero() {
                cx.err_v(ap.key("time"), "must not be null", "0");
                return None;
            }
            HttpAction::WaitForBody { time, at_least: w.at_least.map(|s| s.0 as usize).filter(|&n| n > 0) }
        }
        "early_hint" => {
            let h = r.early_hint.as_ref()?;
            let name = header_name(&h.name, &ap.key("name"), cx);
            let value = lf(&h.value, cx);
            cx.warn(
                ap.clone(),
                "early_hint: the 103 goes to HTTP/1.1 requests without a body only; HTTP/2 and \
                 requests with a body get none (hyper cannot send a 1xx), the response is unchanged",
            );
            HttpAction::EarlyHint(name?, value?)
        }
        "do_resolve" => {
            let d = r.do_resolve.as_ref()?;
            // HAProxy 2.6 accepts any name and, without a scope it knows, stores the address
            // nowhere: the same here, said aloud.
            let var = VarRef::parse(&d.var);
            if var.is_none() {
                cx.warn(
                    ap.key("var"),
                    format!(
                        "`{}` is not scope.name with scope proc, sess, txn, req or res: the name is \
                         resolved and the address stored nowhere, as HAProxy 2.6 does",
                        d.var
                    ),
                );
            }
            let known = cx.resolvers.contains(&d.resolvers);
            if !known {
                cx.err_v(ap.key("resolvers"), "no such resolvers section", &d.resolvers);
            }
            let family = match d.family.as_deref() {
                None => Some(crate::dns::action::Family::V6),
                Some(f) => crate::dns::action::Family::parse(f).or_else(|| {
                    cx.err_v(ap.key("family"), "expects `ipv4` or `ipv6`, as HAProxy's `do-resolve`", f);
                    None
                }),
            };
            let expr = sample_expr(&d.expr, &ap.key("expr"), cx);
            known.then_some(())?;
            HttpAction::DoResolve { var, resolvers: d.resolvers.clone(), family: family?, expr: expr? }
        }
        "strict_mode" => match r.strict_mode.as_deref()? {
            "on" => HttpAction::StrictMode(true),
            "off" => HttpAction::StrictMode(false),
            other => {
                cx.err_v(ap, "expects `on` or `off`, as HAProxy's `strict-mode`", other);
                return None;
            }
        },
        "disable_l7_retry" | "wait_for_handshake" => {
            let on = if name == "disable_l7_retry" { r.disable_l7_retry } else { r.wait_for_handshake };
            if on != Some(true) {
                cx.err(ap, format!("write `{name} = true`"));
                return None;
            }
            if name == "disable_l7_retry" { HttpAction::NoL7Retry } else { HttpAction::WaitForHandshake }
        }
        "reject" | "silent_drop" => {
            let on = if name == "reject" { r.reject } else { r.silent_drop };
            if on != Some(true) {
                cx.err(ap, format!("write `{name} = true`"));
                return None;
            }
            if name == "reject" { HttpAction::Reject } else { HttpAction::SilentDrop }
        }
        "set_src" | "set_src_port" | "set_dst" | "set_dst_port" => {
            let text = match name {
                "set_src" => r.set_src.as_deref()?,
                "set_src_port" => r.set_src_port.as_deref()?,
                "set_dst" => r.set_dst.as_deref()?,
                _ => r.set_dst_port.as_deref()?,
            };
            let part = crate::proxy::addrs::AddrPart::from_name(&name.replace('_', "-"))?;
            HttpAction::SetAddr(part, sample_expr(text, &ap, cx)?)
        }
        "set_timeout" => {
            use crate::proxy::vars::TimeoutKind;
            let st = r.set_timeout.as_ref()?;
            if matches!(ap.0.first(), Some(crate::config::error::Seg::Key(k)) if k == "frontend") {
                cx.err(ap, "set_timeout needs a backend or a listen (a frontend has no server timeout), as in HAProxy");
                return None;
            }
            let (kind, text) = match (&st.server, &st.tunnel) {
                (Some(v), None) => (TimeoutKind::Server, v),
                (None, Some(v)) => (TimeoutKind::Tunnel, v),
                _ => {
                    cx.err(ap, "give one of `server` or `tunnel` (the timeouts set-timeout takes in HAProxy 2.6)");
                    return None;
                }
            };
            let vp = ap.key(if kind == TimeoutKind::Server { "server" } else { "tunnel" });
            // As HAProxy: a time when it parses as one, a sample expression (milliseconds) otherwise.
            let value = match crate::config::units::parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    cx.err_v(vp, "the timeout must not be null", text);
                    return None;
                }
                Ok(d) => TimeoutValue::Fixed(d),
                Err(_) if text.starts_with(|c: char| c.is_ascii_digit()) => {
                    cx.err_v(vp, "expected a time (e.g. 5s) or a sample expression", text);
                    return None;
                }
                Err(_) => TimeoutValue::Expr(sample_expr(text, &vp, cx)?),
            };
            HttpAction::SetTimeout(kind, value)
        }
        "normalize_uri" => {
            let text = r.normalize_uri.as_deref()?;
            match crate::proxy::normalize::Normalizer::parse(text) {
                Ok(n) => HttpAction::NormalizeUri(n),
                Err(e) => {
                    cx.err_v(ap, e, text);
                    return None;
                }
            }
        }
        "set_mark" | "set_tos" => {
            let v = if name == "set_mark" { r.set_mark.as_ref()? } else { r.set_tos.as_ref()? };
            let word = match v {
                model::IntOrExpr::Int(n) => n.to_string(),
                model::IntOrExpr::Expr(s) => s.clone(),
            };
            match crate::proxy::addrs::SockOpt::parse(&name.replace('_', "-"), &word) {
                Ok(o) => HttpAction::SockOpt(o),
                Err(e) => {
                    cx.err_v(ap, e, word);
                    return None;
                }
            }
        }
        "set_map" | "del_map" | "add_acl" | "del_acl" => {
            use crate::config::snapshot::MapEdit;
            let (m, edit) = match name {
                "set_map" => (r.set_map.as_ref()?, MapEdit::SetMap),
                "del_map" => (r.del_map.as_ref()?, MapEdit::DelMap),
                "add_acl" => (r.add_acl.as_ref()?, MapEdit::AddAcl),
                _ => (r.del_acl.as_ref()?, MapEdit::DelAcl),
            };
            if m.file.is_empty() {
                cx.err(ap.key("file"), "name the map or pattern file");
                return None;
            }
            let value = match (edit, &m.value) {
                (MapEdit::SetMap, Some(v)) => Some(log_format(v, &ap.key("value"), cx)?),
                (MapEdit::SetMap, None) => {
                    cx.err(ap.key("value"), "set_map needs a value");
                    return None;
                }
                (_, Some(v)) => {
                    cx.err_v(ap.key("value"), format!("{name} takes a key only"), v);
                    return None;
                }
                (_, None) => None,
            };
            let key = log_format(&m.key, &ap.key("key"), cx)?;
            let pattern = matches!(edit, MapEdit::AddAcl | MapEdit::DelAcl);
            if let Err(e) = cx.maps.need_edited(&m.file, pattern, &rp.to_string()) {
                cx.err_v(ap.key("file"), e, &m.file);
                return None;
            }
            HttpAction::MapEdit { file: m.file.clone(), edit, key, value }
        }
        _ => return None,
    })
}

/// A rule's sample expression, parsed once, with the maps it reads loaded.
fn sample_expr(text: &str, at: &FieldPath, cx: &mut Ctx) -> Option<SampleExpr> {
    match SampleExpr::parse(text) {
        Ok(mut e) => {
            load_maps(e.map_refs(), at, cx);
            super::track::exprs([&mut e], at, text, cx);
            request_side(&e, at, text, cx);
            Some(e)
        }
        Err(e) => {
            cx.err_v(at.clone(), e.to_string(), text);
            None
        }
    }
}

/// `capture SAMPLE id N|len N`, as HAProxy 2.6 takes it: `len` only in a frontend's
/// request rules (it declares a slot), `id` checked against the frontend's declared slots.
fn capture(
    c: &model::CaptureAction,
    at: &FieldPath,
    phase: Phase,
    slots: Option<&mut FrontLog>,
    cx: &mut Ctx,
) -> Option<HttpAction> {
    let expr = match SampleExpr::parse(&c.sample) {
        Ok(e) => {
            load_maps(e.map_refs(), &at.key("sample"), cx);
            request_side(&e, &at.key("sample"), &c.sample, cx);
            e
        }
        Err(e) => {
            cx.err_v(at.key("sample"), e.to_string(), &c.sample);
            return None;
        }
    };
    let response = phase != Phase::Request;
    let slot = match (c.len, c.id) {
        (Some(_), Some(_)) | (None, None) => {
            cx.err(at.clone(), "give either `len` (a new slot) or `id` (a declared one)");
            return None;
        }
        (Some(len), None) => {
            if response {
                cx.err(at.key("len"), "response captures take `id` only (declare the slot in capture_response)");
                return None;
            }
            let Some(log) = slots else {
                cx.err(at.key("len"), "a backend has no capture slots of its own: declare it in the frontend");
                return None;
            };
            if len == 0 {
                cx.err_v(at.key("len"), "must be at least 1", 0);
                return None;
            }
            log.req_slots.push(Slot { header: None, len });
            log.req_slots.len() - 1
        }
        (None, Some(id)) => {
            let declared = slots.map(|l| if response { l.res_slots.len() } else { l.req_slots.len() });
            if declared.is_some_and(|n| id >= n) {
                let what = if response { "capture_response" } else { "capture_request" };
                cx.err_v(at.key("id"), format!("no such capture slot (declare it in {what})"), id);
                return None;
            }
            id
        }
    };
    Some(HttpAction::Capture { expr, slot, response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_takes_haproxy_s_actions() {
        for a in ["deny", "return", "redirect", "auth", "tarpit", "set_path", "set_var", "allow"] {
            assert!(Phase::Request.allows(a), "{a}");
        }
        assert!(!Phase::Request.allows("set_status"));
        for a in ["capture", "set_log_level", "use_service"] {
            assert!(Phase::Request.allows(a), "{a}");
        }
        assert!(Phase::Response.allows("capture") && Phase::After.allows("capture"));
        assert!(!Phase::After.allows("set_log_level") && !Phase::Response.allows("use_service"));
        for a in ["allow", "deny", "return", "redirect", "set_status", "set_header", "replace_value", "set_var"] {
            assert!(Phase::Response.allows(a), "{a}");
        }
        for a in ["auth", "tarpit", "set_path", "set_method", "replace_uri"] {
            assert!(!Phase::Response.allows(a), "{a}");
        }
        for a in ["set_header", "add_header", "del_header", "replace_header", "set_status", "unset_var"] {
            assert!(Phase::After.allows(a), "{a}");
        }
        for a in ["deny", "return", "redirect", "allow"] {
            assert!(!Phase::After.allows(a), "{a}");
        }
        // HAProxy: cache-use is a request action, cache-store a response one.
        assert!(Phase::Request.allows("cache_use") && !Phase::Request.allows("cache_store"));
        assert!(Phase::Response.allows("cache_store") && !Phase::Response.allows("cache_use"));
        assert!(!Phase::After.allows("cache_use") && !Phase::After.allows("cache_store"));
    }

    fn problems(src: &str) -> String {
        match crate::config::parse(src, std::path::Path::new("lbha.toml")) {
            Ok(s) => s.warnings.join("\n"),
            Err(e) => e.to_string(),
        }
    }

    /// What `haproxy -c` says of response fetches in request rules: an ACL over them only
    /// never matches (a warning), an action's sample over them is an error.
    #[test]
    fn response_fetches_in_request_rules_warn_in_acls_and_are_refused_in_actions() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n";
        let be = "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n";
        let check = |fe_rules: &str, be_rules: &str| problems(&format!("{fe}{fe_rules}\n{be}{be_rules}\n"));
        let w = check(
            "acl = [{ name = \"st\", cond = \"status 200\" }, { name = \"both\", cond = \"status 200\" }, { name = \"both\", cond = \"path /x\" }]\n\
             http_request = [{ deny = {}, if = \"{ res.hdr(x) -m found }\" }, { deny = {}, if = \"st || both\" }, { deny = {}, unless = \"{ capture.res.hdr(0) -m found }\" }]",
            "http_request = [{ deny = {}, if = \"{ res.len gt 0 }\" }]",
        );
        assert!(w.contains("http_request[0].if: an ACL here never matches: it reads only the HTTP response"), "{w}");
        assert!(w.contains("http_request[1].if: acl `st` never matches here"), "{w}");
        assert!(!w.contains("acl `both`"), "an ACL with a request fetch too can match: {w}");
        assert!(w.contains("http_request[2].unless: an ACL here never matches"), "{w}");
        assert!(
            w.contains("backend[0].http_request[0].if: an ACL here never matches: it reads only the response buffer"),
            "{w}"
        );
        // Response rules read both.
        let ok = check("http_response = [{ deny = {}, if = \"{ status 200 } { path /x }\" }]", "");
        assert!(!ok.contains("never matches"), "{ok}");
        for (rule, at) in [
            ("{ set_header = { name = \"X\", value = \"%[status]\" } }", "set_header.value"),
            ("{ set_var = { var = \"txn.x\", expr = \"res.hdr(x)\" } }", "set_var.expr"),
            ("{ capture = { sample = \"res.ver\", len = 4 } }", "capture.sample"),
        ] {
            let e = check(&format!("http_request = [{rule}]"), "");
            assert!(e.contains(&format!("http_request[0].{at}: this sample needs the HTTP response")), "{rule}: {e}");
        }
        let ok = check("http_response = [{ set_header = { name = \"X\", value = \"%[status]/%[path]\" } }]", "");
        assert!(!ok.contains("needs the"), "{ok}");
    }

    #[test]
    fn captures_log_levels_and_services_are_checked_as_haproxy_does() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n\
                  capture_request = [{ len = 4 }]\n";
        let be = "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n";
        let check = |fe_rules: &str, be_rules: &str| problems(&format!("{fe}{fe_rules}\n{be}{be_rules}\n"));
        // Fine: a new slot, a declared one, a backend naming a frontend's slot (checked at run time).
        let ok = check(
            "http_request = [{ capture = { sample = \"path\", len = 8 } }, { capture = { sample = \"src\", id = 1 } }]",
            "http_request = [{ capture = { sample = \"path\", id = 7 } }, { set_log_level = \"silent\" }]",
        );
        assert_eq!(ok, "");
        let e = check("http_request = [{ capture = { sample = \"path\", id = 1 } }]", "");
        assert!(e.contains("frontend[0].http_request[0].capture.id") && e.contains("no such capture slot"), "{e}");
        let e = check("", "http_request = [{ capture = { sample = \"path\", len = 4 } }]");
        assert!(e.contains("backend[0].http_request[0].capture.len"), "{e}");
        let e = check("http_response = [{ capture = { sample = \"status\", len = 4 } }]", "");
        assert!(e.contains("http_response[0].capture.len") && e.contains("take `id` only"), "{e}");
        let e = check("http_response = [{ capture = { sample = \"status\", id = 0 } }]", "");
        assert!(e.contains("capture.id") && e.contains("capture_response"), "no response slot declared: {e}");
        let e = check("http_request = [{ capture = { sample = \"nope(\", id = 0 } }]", "");
        assert!(e.contains("capture.sample"), "{e}");
        let e = check("http_request = [{ capture = { sample = \"path\" } }]", "");
        assert!(e.contains("either `len`"), "{e}");
        let e = check("http_request = [{ set_log_level = \"loud\" }]", "");
        assert!(e.contains("http_request[0].set_log_level") && e.contains("loud"), "{e}");
        let e = check("http_after_response = [{ set_log_level = \"err\" }]", "");
        assert!(e.contains("is not an action of http_after_response"), "{e}");
        let e = check("http_request = [{ use_service = \"lua.hello\" }]", "");
        assert!(e.contains("http_request[0].use_service") && e.contains("prometheus-exporter"), "{e}");
        let e = check("http_response = [{ use_service = \"prometheus-exporter\" }]", "");
        assert!(e.contains("is not an action of http_response"), "{e}");
    }

    #[test]
    fn do_resolve_and_early_hint_are_checked_as_haproxy_does() {
        let head = "[[resolvers]]\nname = \"dns\"\nnameservers = [{ name = \"a\", addr = \"127.0.0.1:53\" }]\n\
                    [[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n";
        let be = "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"0.0.0.0:0\" }]\n";
        let check = |rules: &str| problems(&format!("{head}{rules}\n{be}"));
        let ok = check(
            "http_request = [{ do_resolve = { var = \"txn.ip\", resolvers = \"dns\", family = \"ipv4\", expr = \"hdr(host),lower\" } }, \
             { set_dst = \"var(txn.ip)\" }]",
        );
        assert_eq!(ok, "");
        let e = check(
            "http_request = [{ do_resolve = { var = \"txn.ip\", resolvers = \"nodns\", expr = \"hdr(host)\" } }]",
        );
        assert!(
            e.contains("http_request[0].do_resolve.resolvers")
                && e.contains("no such resolvers section")
                && e.contains("nodns"),
            "{e}"
        );
        let e = check(
            "http_request = [{ do_resolve = { var = \"txn.ip\", resolvers = \"dns\", family = \"IPV4\", expr = \"hdr(host)\" } }]",
        );
        assert!(e.contains("do_resolve.family") && e.contains("IPV4"), "{e}");
        // HAProxy 2.6 takes a name without a scope and stores the address nowhere: a warning.
        for var in ["ip", "bad.ip", ""] {
            let cfg = format!(
                "{head}http_request = [{{ do_resolve = {{ var = \"{var}\", resolvers = \"dns\", expr = \"hdr(host)\" }} }}]\n{be}"
            );
            let snap = crate::config::parse(&cfg, std::path::Path::new("lbha.toml")).unwrap();
            let action = &snap.frontends[0].http_request[0].action;
            assert!(matches!(action, crate::config::snapshot::HttpAction::DoResolve { var: None, .. }), "{var}");
            let w = snap.warnings.join("\n");
            assert!(w.contains("do_resolve.var") && w.contains("stored nowhere"), "{w}");
        }
        let e =
            check("http_response = [{ do_resolve = { var = \"txn.ip\", resolvers = \"dns\", expr = \"hdr(host)\" } }]");
        assert!(e.contains("not an action of http_response"), "{e}");
        let w = check("http_request = [{ early_hint = { name = \"link\", value = \"</a.css>; rel=preload\" } }]");
        assert!(w.contains("http_request[0].early_hint") && w.contains("HTTP/2"), "the warning: {w}");
        let e = check("http_request = [{ early_hint = { name = \"bad name\", value = \"x\" } }]");
        assert!(e.contains("early_hint.name") && e.contains("invalid header name"), "{e}");
        let e = check("http_response = [{ early_hint = { name = \"link\", value = \"x\" } }]");
        assert!(e.contains("not an action of http_response"), "{e}");
    }

    #[test]
    fn connection_actions_are_checked_as_haproxy_does() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n";
        let be = "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n";
        let check = |fe_rules: &str, be_rules: &str| problems(&format!("{fe}{fe_rules}\n{be}{be_rules}\n"));
        let ok = check(
            "http_request = [{ reject = true }, { silent_drop = true }, { set_src = \"hdr(x-forwarded-for)\" }, \
             { set_dst_port = \"int(81)\" }]\nhttp_response = [{ silent_drop = true }]",
            "http_request = [{ set_timeout = { server = \"5s\" } }, { set_timeout = { tunnel = \"req.hdr(x-t)\" } }]",
        );
        assert_eq!(ok, "");
        let e =
            check("http_request = [{ set_mark = \"0x2a\" }, { set_tos = 16 }]\nhttp_response = [{ set_tos = 0 }]", "");
        assert_eq!(e, "");
        let e = check("http_request = [{ set_tos = 300 }]", "");
        assert!(e.contains("http_request[0].set_tos") && e.contains("0 to 255") && e.contains("300"), "{e}");
        let e = check(
            "http_request = [{ normalize_uri = \"path-strip-dotdot full\" }, { disable_l7_retry = true }, \
             { wait_for_handshake = true }]",
            "",
        );
        assert_eq!(e, "");
        let e = check("http_response = [{ disable_l7_retry = true }]", "");
        assert!(e.contains("is not an action of http_response"), "{e}");
        let e = check("http_request = [{ strict_mode = \"off\" }]\nhttp_response = [{ strict_mode = \"on\" }]", "");
        assert_eq!(e, "");
        let e = check("http_request = [{ strict_mode = \"yes\" }]", "");
        assert!(e.contains("http_request[0].strict_mode") && e.contains("`on` or `off`") && e.contains("yes"), "{e}");
        let e = check("http_after_response = [{ strict_mode = \"off\" }]", "");
        assert!(e.contains("is not an action of http_after_response"), "{e}");
        let e = check("http_request = [{ wait_for_handshake = false }]", "");
        assert!(e.contains("write `wait_for_handshake = true`"), "{e}");
        let e = check("http_request = [{ normalize_uri = \"fragment-encode\" }]", "");
        assert!(e.contains("http_request[0].normalize_uri") && e.contains("cannot be honoured"), "{e}");
        let e = check("http_response = [{ normalize_uri = \"path-strip-dot\" }]", "");
        assert!(e.contains("is not an action of http_response"), "{e}");
        let e = check("http_after_response = [{ set_mark = 1 }]", "");
        assert!(e.contains("is not an action of http_after_response"), "{e}");
        let e = check("http_request = [{ reject = false }]", "");
        assert!(e.contains("http_request[0].reject") && e.contains("write `reject = true`"), "{e}");
        let e = check("http_response = [{ reject = true }]", "");
        assert!(e.contains("is not an action of http_response"), "HAProxy 2.6 has no http-response reject: {e}");
        let e = check("http_after_response = [{ silent_drop = true }]", "");
        assert!(e.contains("is not an action of http_after_response"), "{e}");
        let e = check("http_response = [{ set_src = \"src\" }]", "");
        assert!(e.contains("is not an action of http_response"), "{e}");
        let e = check("http_request = [{ set_src = \"nofetch\" }]", "");
        assert!(e.contains("http_request[0].set_src") && e.contains("nofetch"), "{e}");
        let e = check("http_request = [{ set_timeout = { server = \"5s\" } }]", "");
        assert!(e.contains("frontend[0].http_request[0].set_timeout") && e.contains("needs a backend"), "{e}");
        let e = check("", "http_request = [{ set_timeout = { server = \"0\" } }]");
        assert!(e.contains("set_timeout.server") && e.contains("must not be null"), "{e}");
        let e = check("", "http_request = [{ set_timeout = { server = \"5x\" } }]");
        assert!(e.contains("set_timeout.server") && e.contains("expected a time"), "{e}");
        let e = check("", "http_request = [{ set_timeout = { server = \"5s\", tunnel = \"1s\" } }]");
        assert!(e.contains("give one of `server` or `tunnel`"), "{e}");
        let e = check("", "http_request = [{ set_timeout = { server = \"nofetch(\" } }]");
        assert!(e.contains("set_timeout.server"), "{e}");
    }

    #[test]
    fn map_edits_are_checked_and_register_their_file() {
        let fe = "[[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n";
        let be = "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n";
        let dir = std::env::temp_dir().join(format!("lbha-map-edits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.map"), "k v\n").unwrap();
        let check = |rules: &str| match crate::config::parse(&format!("{fe}{rules}\n{be}"), &dir.join("lbha.toml")) {
            Ok(s) => (s.warnings.join("\n"), Some(s)),
            Err(e) => (e.to_string(), None),
        };
        let (e, snap) = check(
            "http_request = [{ set_map = { file = \"x.map\", key = \"%[path]\", value = \"%[src]\" } }, \
             { del_map = { file = \"x.map\", key = \"k\" } }, { add_acl = { file = \"absent.lst\", key = \"%[src]\" } }]\n\
             http_response = [{ del_acl = { file = \"absent.lst\", key = \"%[src]\" } }]",
        );
        assert_eq!(e, "");
        let snap = snap.unwrap();
        let names: Vec<&str> = snap.maps.files.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"x.map") && names.contains(&"absent.lst"), "{names:?}");
        let e = check("http_request = [{ set_map = { file = \"x.map\", key = \"k\" } }]").0;
        assert!(e.contains("http_request[0].set_map.value") && e.contains("needs a value"), "{e}");
        let e = check("http_request = [{ del_map = { file = \"x.map\", key = \"k\", value = \"v\" } }]").0;
        assert!(e.contains("del_map.value") && e.contains("takes a key only"), "{e}");
        let e = check(
            "http_request = [{ set_map = { file = \"x.map\", key = \"k\", value = \"v\" } }, \
             { add_acl = { file = \"x.map\", key = \"k\" } }]",
        )
        .0;
        assert!(e.contains("http_request[1].add_acl.file") && e.contains("both as a map and as an ACL pattern"), "{e}");
        let e = check("http_request = [{ add_acl = { file = \"\", key = \"k\" } }]").0;
        assert!(e.contains("add_acl.file") && e.contains("name the map"), "{e}");
        let e = check("http_after_response = [{ set_map = { file = \"x.map\", key = \"k\", value = \"v\" } }]").0;
        assert!(e.contains("is not an action of http_after_response"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn error_page_replies_are_checked_as_haproxy_does() {
        let fe = "[[http_errors]]\nname = \"site\"\nerrorfile = {}\n\
                  [[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\n";
        let check = |rules: &str| problems(&format!("{fe}http_request = [{rules}]\n"));
        assert_eq!(check("{ deny = { default_errorfiles = true, status = 429 } }"), "");
        let e = check("{ return = { status = 418, default_errorfiles = true } }");
        assert!(e.contains("http_request[0].return.status") && e.contains("no error page"), "{e}");
        let e = check("{ return = { status = 503, errorfiles = \"nope\" } }");
        assert!(e.contains("return.errorfiles") && e.contains("no such http_errors section"), "{e}");
        // HAProxy: a section without the code answers empty, with a warning.
        let e = check("{ deny = { status = 503, errorfiles = \"site\" } }");
        assert!(e.contains("deny.errorfiles") && e.contains("the answer is empty"), "{e}");
        let e = check("{ deny = { string = \"x\", default_errorfiles = true } }");
        assert!(e.contains("give one of a body, errorfile"), "{e}");
        let e = check("{ deny = { content_type = \"text/plain\", headers = [\"a: b\"], default_errorfiles = true } }");
        assert!(e.contains("deny.content_type") && e.contains("deny.headers") && e.contains("ignored"), "{e}");
        let e = check("{ deny = { errorfile = \"/nonexistent/x.http\" } }");
        assert!(e.contains("deny.errorfile") && e.contains("cannot read"), "{e}");
        let e = check("{ deny = { string = \"x\", lf_file = \"f\" } }");
        assert!(e.contains("give one of string, lf_string, file or lf_file"), "{e}");
        let e = check("{ return = { headers = [\"x-a: %[nope()]\"] } }");
        assert!(e.contains("http_request[0].return.headers[0]") && e.contains("nope"), "{e}");
        let e = check("{ tarpit = { errorfiles = \"site\" } }");
        assert!(e.contains("only `status` is taken"), "{e}");
        let e = check("{ redirect = { prefix = \"/%[nope()]\" } }");
        assert!(e.contains("redirect") && e.contains("nope"), "{e}");
    }

    #[test]
    fn auth_acls_name_existing_userlists_and_groups() {
        let head = "[[userlist]]\nname = \"L\"\nusers = [{ name = \"a\", insecure_password = \"x\", groups = [\"ops\"] }]\n\
                    groups = [{ name = \"ops\" }, { name = \"adm\", users = [\"a\"] }]\n\
                    [[frontend]]\nname = \"f\"\nmode = \"http\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n\
                    [[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:2\" }]\n";
        let acl = |cond: &str| problems(&format!("{head}[[frontend.acl]]\nname = \"x\"\ncond = \"{cond}\"\n"));
        assert_eq!(acl("http_auth_group(L) ops adm"), "");
        assert_eq!(acl("http_auth(L)"), "");
        let e = acl("http_auth_group(L) nope");
        assert!(
            e.contains("frontend[0].acl[0].cond") && e.contains("no such group in userlist L") && e.contains("nope"),
            "{e}"
        );
        let e = acl("http_auth(M)");
        assert!(e.contains("no such userlist") && e.contains("M"), "{e}");
        let e = acl("http_auth_group(L),lower ops");
        assert!(e.contains("group names only"), "{e}");
        let e = problems(&head.replace("users = [\"a\"]", "users = [\"zed\"]"));
        assert!(e.contains("userlist[0].groups[1].users[0]") && e.contains("zed"), "{e}");
        let e = problems(&head.replace("groups = [\"ops\"]", "groups = [\"devs\"]"));
        assert!(e.contains("userlist[0].users[0].groups[0]") && e.contains("devs"), "{e}");
    }

    #[test]
    fn header_names_match_as_del_header_m() {
        assert!(NameMatch::Beg("x-secret-".into()).matches("x-secret-a"));
        assert!(!NameMatch::Beg("x-secret-".into()).matches("x-secret"));
        assert!(NameMatch::End("-id".into()).matches("x-req-id"));
        assert!(NameMatch::Sub("debug".into()).matches("x-debug-level"));
        let re = regex::bytes::Regex::new("(?i)^X-[a-z]+$").unwrap();
        assert!(NameMatch::Reg(re.clone()).matches("x-abc") && !NameMatch::Reg(re).matches("x-a-b"));
    }
}
