//! HAProxy's TCP-level rules: `tcp-request connection|session|content` and `tcp-response
//! content` with `accept`, `reject`, `silent-drop`, `set-src`/`set-dst` (and their ports),
//! `set-mark`, `set-tos`, `set-var`, `unset-var`, `inspect-delay`, and `use_backend`
//! in `mode tcp` (static names and `%[...]` sample expressions), so TLS pass-through can be
//! routed by SNI.
//!
//! This module is pure: conditions are evaluated against a `SampleContext`, the map store and a
//! "final" flag, and a rule set answers accept, reject, or "wait for more data from rule i".
//! The proxy (`proxy::tcp_rules`) buffers the client's first bytes and drives it.
//!
//! Conditions are `routing::Cond` (one grammar and evaluator with HTTP rules) over this
//! module's ACLs, which know when request bytes are still missing; which fetches a rule set may
//! read is checked per stage at validation (`config`).

mod cond;
pub mod config;

pub use crate::routing::{Env, Tri};
pub use cond::{Acl, Cond};

use crate::sample::{LogFormat, SampleExpr, Value, VarRef};
use std::time::Duration;

#[derive(Debug)]
pub enum Action {
    Accept,
    Reject,
    /// `close` (tcp-response content only): the response held so far goes to the client, then
    /// the session ends.
    Close,
    SetVar(VarRef, SampleExpr),
    /// `set-var-fmt(VAR) FMT`: the rendered log-format string.
    SetVarFmt(VarRef, LogFormat),
    UnsetVar(VarRef),
    /// `track-sc*`, `sc-inc-gpc*`, `sc-set-gpt*`, done by the proxy.
    Stick(crate::stktable::track::StickAction),
    /// `capture SAMPLE len N` (a new request capture slot, numbered at validation) or
    /// `capture SAMPLE id N` (a declared one, lbha's form for converted configs).
    Capture(Capture),
    /// `silent-drop`: ends the connection without telling the client (see `proxy::addrs`).
    SilentDrop,
    /// `set-src`, `set-src-port`, `set-dst`, `set-dst-port`.
    SetAddr(crate::proxy::addrs::AddrPart, SampleExpr),
    /// `set-mark`, `set-tos` on the client's socket.
    SockOpt(crate::proxy::addrs::SockOpt),
    /// `do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR` (content rules in mode tcp): the caller
    /// resolves the name and stores the address (see `dns::action`).
    DoResolve {
        /// `None`: a name without a known scope, which HAProxy 2.6 accepts and stores the
        /// address nowhere.
        var: Option<VarRef>,
        resolvers: String,
        family: crate::dns::action::Family,
        expr: SampleExpr,
    },
}

#[derive(Debug)]
pub struct Capture {
    pub expr: SampleExpr,
    /// `len N` as written; `None` for `id N`.
    pub len: Option<usize>,
    /// The request capture slot filled: the `id`, or the slot `len` declared.
    pub slot: usize,
    /// The slot's length (the value is cut to it); set at validation for `id N`.
    pub cut: usize,
}

#[derive(Debug)]
pub struct Rule {
    pub action: Action,
    pub cond: Option<Cond>,
}

/// A frontend's (or listen's) TCP rules; empty for a frontend without any.
#[derive(Debug, Default)]
pub struct FrontRules {
    /// `tcp-request inspect-delay`: `None` makes content rules decide on the first bytes at hand.
    pub inspect_delay: Option<Duration>,
    pub connection: Vec<Rule>,
    pub session: Vec<Rule>,
    pub content: Vec<Rule>,
    /// Declared ACLs, compiled for these rules and (in `mode tcp`) for `use_backend`.
    pub acls: Vec<Acl>,
    /// `use_backend` of a `mode tcp` frontend (an HTTP frontend keeps `Frontend::switching`).
    pub switching: Vec<Switch>,
}

/// A backend's `tcp-request content` and `tcp-response content` rules.
#[derive(Debug, Default)]
pub struct BackRules {
    pub response: Vec<Rule>,
    /// `tcp-response inspect-delay`: how long response rules may wait for the server's data;
    /// `None` makes them decide at once, before any byte has come (as HAProxy does).
    pub response_delay: Option<Duration>,
    /// The section's declared ACLs, as its rules see them.
    pub acls: Vec<Acl>,
    /// A backend's own `tcp-request content` rules, run once it is chosen (a listen's are its
    /// frontend half's, run once).
    pub content: Vec<Rule>,
    /// A backend's `tcp-request inspect-delay`.
    pub inspect_delay: Option<Duration>,
    /// A mode tcp backend's `use-server`, `force-persist`, `ignore-persist` (a mode http
    /// backend's are `Backend::server_rules`).
    pub server_rules: crate::persist::rules::ServerRules<Cond>,
}

/// One content inspection: a section's content rules, its ACLs and its inspect-delay.
#[derive(Debug, Clone, Copy)]
pub struct Inspection<'a> {
    pub rules: &'a [Rule],
    pub acls: &'a [Acl],
    pub delay: Option<Duration>,
}

impl FrontRules {
    pub fn inspection(&self) -> Inspection<'_> {
        Inspection { rules: &self.content, acls: &self.acls, delay: self.inspect_delay }
    }
}

impl BackRules {
    pub fn inspection(&self) -> Inspection<'_> {
        Inspection { rules: &self.content, acls: &self.acls, delay: self.inspect_delay }
    }

    /// The `tcp-response content` inspection of the server's first bytes.
    pub fn response_inspection(&self) -> Inspection<'_> {
        Inspection { rules: &self.response, acls: &self.acls, delay: self.response_delay }
    }
}

#[derive(Debug)]
pub enum Target {
    Backend(usize),
    /// `use_backend %[...]`: a name computed per connection; an unknown name means the default
    /// backend, as in HAProxy.
    Dynamic(LogFormat),
}

#[derive(Debug)]
pub struct Switch {
    pub target: Target,
    pub cond: Option<Cond>,
}

/// Where a rule set stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// `close`: pass on what is held, then end the session.
    Close,
    /// Rule `i` needs more data than has arrived: run again from `i` when more comes.
    Wait(usize),
    /// Rule `i` is a `do-resolve` that matched: the caller resolves, then runs from `i + 1`.
    Resolve(usize),
}

/// What the proxy does for the actions that act and go on: `set-var`/`unset-var`, the
/// stick-counter actions, and `capture` (slot, value).
pub trait Effects {
    fn set_var(&self, var: &VarRef, value: Option<Value>);
    fn stick(&self, action: &crate::stktable::track::StickAction, env: &Env<'_>);
    fn capture(&self, slot: usize, value: &[u8]);
    /// `set-src` and friends: a sample that is no address changes nothing.
    fn set_addr(&self, part: crate::proxy::addrs::AddrPart, value: Value);
    /// `silent-drop`, before the connection is closed as for a reject.
    fn silent_drop(&self);
    /// `set-mark`, `set-tos`.
    fn sockopt(&self, o: crate::proxy::addrs::SockOpt);
}

/// Runs `rules` from index `from`: the first matching `accept` or `reject` decides; `set-var`,
/// `unset-var`, `capture` and the stick-counter actions act (through `fx`) and go on; no
/// decision is an accept, as in HAProxy.
pub fn run(rules: &[Rule], from: usize, acls: &[Acl], env: &Env<'_>, fx: &dyn Effects) -> Verdict {
    for (i, rule) in rules.iter().enumerate().skip(from) {
        if let Some(c) = &rule.cond {
            match c.eval(acls, env) {
                Tri::Miss => return Verdict::Wait(i),
                Tri::Fail => continue,
                Tri::Pass => {}
            }
        }
        match &rule.action {
            Action::Accept => return Verdict::Accept,
            Action::Reject => return Verdict::Reject,
            Action::Close => return Verdict::Close,
            Action::SilentDrop => {
                fx.silent_drop();
                return Verdict::Reject;
            }
            Action::SockOpt(o) => fx.sockopt(*o),
            Action::DoResolve { .. } => return Verdict::Resolve(i),
            Action::SetAddr(part, e) => {
                if let Some(v) = e.eval(env.ctx, env.maps) {
                    fx.set_addr(*part, v);
                }
            }
            Action::SetVar(v, e) => {
                if let Some(val) = e.eval(env.ctx, env.maps) {
                    fx.set_var(v, Some(val));
                }
            }
            Action::SetVarFmt(v, f) => fx.set_var(v, Some(Value::Str(f.render(env.ctx, env.maps, &|_, _| None)))),
            Action::UnsetVar(v) => fx.set_var(v, None),
            Action::Stick(a) => fx.stick(a, env),
            // A sample that cannot be fetched leaves the slot empty, as in HAProxy.
            Action::Capture(c) => {
                if let Some(v) = c.expr.eval_str(env.ctx, env.maps) {
                    fx.capture(c.slot, &v[..v.len().min(c.cut)]);
                }
            }
        }
    }
    Verdict::Accept
}

/// The backend `use_backend` rules pick: `Some(Some(i))` a backend, `Some(None)` a dynamic
/// name that names none (HAProxy then stops and uses the default), `None` no rule matched.
pub fn switch(
    rules: &[Switch],
    acls: &[Acl],
    env: &Env<'_>,
    by_name: &dyn Fn(&str) -> Option<usize>,
) -> Option<Option<usize>> {
    for r in rules {
        if r.cond.as_ref().is_some_and(|c| c.eval(acls, env) != Tri::Pass) {
            continue;
        }
        return Some(match &r.target {
            Target::Backend(b) => Some(*b),
            Target::Dynamic(f) => {
                let name = f.render(env.ctx, env.maps, &|_, _| None);
                std::str::from_utf8(&name).ok().and_then(by_name)
            }
        });
    }
    None
}

/// Parses a rule's action words: `accept`, `reject`, `set-var(scope.name) EXPR`,
/// `unset-var(scope.name)`, `capture EXPR len N|id N`, and the stick-counter actions.
pub fn parse_action(text: &str) -> Result<Action, String> {
    let text = text.trim();
    let (head, rest) = match text.find(|c: char| c.is_whitespace()) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    };
    let var =
        |inner: &str| VarRef::parse(inner).ok_or_else(|| format!("`{inner}` is not a variable name (scope.name)"));
    match head {
        "accept" | "reject" | "silent-drop" | "close" if !rest.is_empty() => {
            Err(format!("`{head}` takes no argument, got `{rest}`"))
        }
        "accept" => Ok(Action::Accept),
        "reject" => Ok(Action::Reject),
        "close" => Ok(Action::Close),
        "silent-drop" => Ok(Action::SilentDrop),
        "set-mark" | "set-tos" => crate::proxy::addrs::SockOpt::parse(head, rest).map(Action::SockOpt),
        h if crate::proxy::addrs::AddrPart::from_name(h).is_some() => {
            let part = crate::proxy::addrs::AddrPart::from_name(h).ok_or("unreachable")?;
            // The expression is one word, as in HAProxy.
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("`{h}` needs one sample expression, got `{rest}`"));
            }
            Ok(Action::SetAddr(part, SampleExpr::parse(rest).map_err(|e| e.to_string())?))
        }
        h if h.starts_with("set-var(") && h.ends_with(')') => {
            let v = var(&h[8..h.len() - 1])?;
            if rest.is_empty() {
                return Err("`set-var` needs a sample expression".into());
            }
            let e = SampleExpr::parse(rest).map_err(|e| e.to_string())?;
            Ok(Action::SetVar(v, e))
        }
        h if h.starts_with("set-var-fmt(") && h.ends_with(')') => {
            let v = var(&h[12..h.len() - 1])?;
            let f = LogFormat::parse(rest).map_err(|e| format!("`set-var-fmt`: {e}"))?;
            Ok(Action::SetVarFmt(v, f))
        }
        h if h.starts_with("unset-var(") && h.ends_with(')') && rest.is_empty() => {
            Ok(Action::UnsetVar(var(&h[10..h.len() - 1])?))
        }
        "capture" => capture(rest).map(Action::Capture),
        h if h.starts_with("do-resolve(") && h.ends_with(')') => do_resolve(&h[11..h.len() - 1], rest),
        "" => Err("missing action (expected accept, reject, set-var(...) or unset-var(...))".into()),
        other => match crate::stktable::track::parse_words(other, rest)? {
            Some(a) => Ok(Action::Stick(a)),
            None => Err(format!(
                "action `{other}` is not supported (supported: accept, reject, close (tcp-response), silent-drop, set-src|set-src-port|set-dst|set-dst-port EXPR, set-mark N, set-tos N, set-var(scope.name) EXPR, unset-var(scope.name), capture EXPR len N, track-sc0|1|2 KEY [table T], sc-inc-gpc0|1(SC), sc-inc-gpc(IDX,SC), sc-set-gpt0(SC) VALUE, sc-set-gpt(IDX,SC) VALUE)"
            )),
        },
    }
}

/// `do-resolve(VAR,RESOLVERS[,ipv4|ipv6]) EXPR`: the words in the parentheses, and the rest.
fn do_resolve(args: &str, rest: &str) -> Result<Action, String> {
    let usage = || {
        format!(
            "Can't parse 'do-resolve({args})'. Expects 'do-resolve(<varname>,<resolvers>[,<options>]) <expr>'. \
             Available options are 'ipv4' and 'ipv6'."
        )
    };
    let parts: Vec<&str> = args.split(',').collect();
    let (var, resolvers, family) = match parts.as_slice() {
        [v, r] => (*v, *r, crate::dns::action::Family::V6),
        [v, r, f] => (*v, *r, crate::dns::action::Family::parse(f).ok_or_else(usage)?),
        _ => return Err(usage()),
    };
    if resolvers.is_empty() || rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(usage());
    }
    // HAProxy 2.6 takes any name here and sets nothing when its scope is not one it knows.
    let var = VarRef::parse(var);
    let expr = SampleExpr::parse(rest).map_err(|e| e.to_string())?;
    Ok(Action::DoResolve { var, resolvers: resolvers.to_string(), family, expr })
}

/// `capture EXPR len N` or `capture EXPR id N`: the words after `capture`. The expression is
/// one word, as in HAProxy.
fn capture(rest: &str) -> Result<Capture, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [sample, kind @ ("len" | "id"), n] = words.as_slice() else {
        return Err(format!("expected `capture SAMPLE len N` (or `id N`), got `capture {rest}`"));
    };
    let n: usize = n.parse().map_err(|_| format!("`capture ... {kind}` needs a number, got `{n}`"))?;
    let expr = SampleExpr::parse(sample).map_err(|e| e.to_string())?;
    Ok(match *kind {
        "len" if n == 0 => return Err("`capture ... len` must be at least 1".into()),
        "len" => Capture { expr, len: Some(n), slot: 0, cut: n },
        _ => Capture { expr, len: None, slot: n, cut: 0 },
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_config;
