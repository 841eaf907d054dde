//! Validation of a backend's `use_server` and `persist_rules` (HAProxy's `use-server`,
//! `force-persist`, `ignore-persist`) and of `balance hash EXPR`'s expression. As `haproxy -c`:
//! each rule needs a condition, a static `use-server` must name a server of the backend, a
//! `%[...]` name is looked up per request, and the hash expression must read the request.

use super::super::error::FieldPath;
use super::super::model::{Mode, Section};
use super::super::snapshot::Server;
use super::Ctx;
use crate::persist::rules::{PersistAction, PersistRule, ServerRules, ServerTarget, UseServer};
use crate::routing::Condition;
use std::sync::Arc;

/// The condition of one rule, which HAProxy requires.
fn required_cond(
    names: &[&str],
    if_: &Option<String>,
    unless: &Option<String>,
    keyword: &str,
    rp: &FieldPath,
    cx: &mut Ctx,
) -> Option<Condition> {
    if if_.is_none() && unless.is_none() {
        cx.err(rp.clone(), format!("`{keyword}` requires either `if` or `unless` followed by a condition"));
        return None;
    }
    super::http_rules::cond(names, if_, unless, rp, cx)
}

/// The action word of a `persist_rules` entry.
fn action(text: &str) -> Option<PersistAction> {
    match text {
        "force-persist" => Some(PersistAction::Force),
        "ignore-persist" => Some(PersistAction::Ignore),
        _ => None,
    }
}

/// A mode http backend's rules, conditions over its ACLs. A mode tcp backend's are read with its
/// TCP rules (`tcprules::config::back`), over the bytes its content inspection held.
pub(super) fn http(
    s: &Section,
    p: &FieldPath,
    mode: Mode,
    servers: &[Server],
    cx: &mut Ctx,
) -> Arc<ServerRules<Condition>> {
    let mut rules = ServerRules::default();
    if mode != Mode::Http {
        return Arc::new(rules);
    }
    let names = super::persist::acl_names(s);
    for (i, r) in s.persist_rules.as_deref().unwrap_or(&[]).iter().enumerate() {
        let rp = p.key("persist_rules").index(i);
        let Some(action) = action(&r.action) else {
            cx.err_v(rp.key("action"), "expected `force-persist` or `ignore-persist`", &r.action);
            continue;
        };
        if let Some(cond) = required_cond(&names, &r.if_, &r.unless, action.keyword(), &rp, cx) {
            rules.persist.push(PersistRule { action, cond });
        }
    }
    for (i, u) in s.use_server.as_deref().unwrap_or(&[]).iter().enumerate() {
        let up = p.key("use_server").index(i);
        let target = target(&u.server, servers, &up.key("server"), cx);
        let cond = required_cond(&names, &u.if_, &u.unless, "use-server", &up, cx);
        if let (Some(target), Some(cond)) = (target, cond) {
            rules.use_server.push(UseServer { target, cond });
        }
    }
    Arc::new(rules)
}

/// A `use-server` target: a server of the backend, or a `%[...]` log-format name.
pub(super) fn target(text: &str, servers: &[Server], at: &FieldPath, cx: &mut Ctx) -> Option<ServerTarget> {
    if text.contains('%') {
        return super::http_rules::log_format(text, at, cx).map(ServerTarget::Dynamic);
    }
    if text.is_empty() {
        cx.err(at.clone(), "missing server name");
        return None;
    }
    match servers.iter().position(|s| s.name == text) {
        Some(i) => Some(ServerTarget::Server(i)),
        None => {
            cx.err_v(at.clone(), "no such server in this backend", text);
            None
        }
    }
}

/// `balance hash EXPR`'s expression, checked against what the backend's mode can read (HAProxy
/// refuses response fetches; lbha's HTTP requests have no raw buffer, its TCP ones no HTTP).
pub(super) fn hash_expr(
    text: &str,
    mode: Mode,
    at: &FieldPath,
    cx: &mut Ctx,
) -> Option<Arc<crate::sample::SampleExpr>> {
    use crate::sample::Reads;
    let mut expr = match crate::sample::SampleExpr::parse(text) {
        Ok(e) => e,
        Err(e) => {
            cx.err_v(at.clone(), format!("balance hash: {e}"), text);
            return None;
        }
    };
    let why = match (expr.fetch.reads(), mode) {
        (Reads::HttpResponse | Reads::Server, _) => {
            Some("balance hash reads the response, which is not available when the server is chosen")
        }
        (Reads::Payload, Mode::Http) => {
            Some("balance hash reads the raw request buffer: not supported in mode http by lbha (use HTTP fetches)")
        }
        (Reads::HttpRequest | Reads::Http, Mode::Tcp) => Some("balance hash reads HTTP, which needs mode http"),
        _ => None,
    };
    if let Some(why) = why {
        cx.err_v(at.clone(), why, text);
        return None;
    }
    super::http_rules::load_maps(expr.map_refs(), at, cx);
    super::track::exprs(std::iter::once(&mut expr), at, text, cx);
    Some(Arc::new(expr))
}

/// `persist rdp-cookie[(NAME)]` (also from `defaults`): the cookie's name, default `msts`.
pub(super) fn rdp_persist(s: &Section, defaults: &Section, p: &FieldPath, mode: Mode, cx: &mut Ctx) -> Option<String> {
    let (text, at) = match (&s.persist, &defaults.persist) {
        (Some(t), _) => (t, p.key("persist")),
        (None, Some(t)) => (t, FieldPath::root().key("defaults").key("persist")),
        _ => return None,
    };
    let name = match text.trim().strip_prefix("rdp-cookie") {
        Some("") => "msts",
        Some(rest) => match rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).map(str::trim) {
            Some(n) if !n.is_empty() && !n.contains(['(', ')', ' ']) => n,
            _ => {
                cx.err_v(at, "expected `rdp-cookie` or `rdp-cookie(NAME)`", text);
                return None;
            }
        },
        None => {
            cx.err_v(at, "expected `rdp-cookie` or `rdp-cookie(NAME)` (HAProxy's only `persist` method)", text);
            return None;
        }
    };
    if mode == Mode::Http && s.persist.is_some() {
        cx.warn(at, "persist rdp-cookie reads an RDP connection's first bytes: it never matches in mode http");
    }
    Some(name.to_string())
}

#[cfg(test)]
mod tests;
