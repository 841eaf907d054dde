//! HAProxy's TCP-level rules: `tcp-request connection|session|content` and `tcp-response
//! content` with `accept`, `reject`, `set-var`, `unset-var`, `inspect-delay`, and `use_backend`
//! in `mode tcp` (static names and `%[...]` sample expressions), so TLS pass-through can be
//! routed by SNI.
//!
//! This module is pure: conditions are evaluated against a `SampleContext`, the map store and a
//! "final" flag, and a rule set answers accept, reject, or "wait for more data from rule i".
//! The proxy (`proxy::tcp_rules`) buffers the client's first bytes and drives it.
//!
//! The condition language here reads `sample::SampleExpr` fetches; `routing::Condition` cannot
//! (it has no payload or TLS fetches). The two are to be unified.

mod cond;
pub mod config;
mod matcher;

pub use cond::{Acl, Cond, Env, Tri};
pub use matcher::{Method, NoPatterns, PatternStore, fold_entries};

use crate::sample::{LogFormat, SampleExpr, Value, VarRef};
use std::time::Duration;

#[derive(Debug)]
pub enum Action {
    Accept,
    Reject,
    SetVar(VarRef, SampleExpr),
    UnsetVar(VarRef),
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

/// A backend's `tcp-response content` rules.
#[derive(Debug, Default)]
pub struct BackRules {
    pub response: Vec<Rule>,
    /// A listen's declared ACLs, as the response rules see them.
    pub acls: Vec<Acl>,
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
    /// Rule `i` needs more data than has arrived: run again from `i` when more comes.
    Wait(usize),
}

/// Runs `rules` from index `from`: the first matching `accept` or `reject` decides; `set-var`
/// and `unset-var` act and go on; no decision is an accept, as in HAProxy.
pub fn run(
    rules: &[Rule],
    from: usize,
    acls: &[Acl],
    env: &Env<'_>,
    set_var: &dyn Fn(&VarRef, Option<Value>),
) -> Verdict {
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
            Action::SetVar(v, e) => {
                if let Some(val) = e.eval(env.ctx, env.maps) {
                    set_var(v, Some(val));
                }
            }
            Action::UnsetVar(v) => set_var(v, None),
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
/// `unset-var(scope.name)`.
pub fn parse_action(text: &str) -> Result<Action, String> {
    let text = text.trim();
    let (head, rest) = match text.find(|c: char| c.is_whitespace()) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    };
    let var = |inner: &str| {
        VarRef::parse(inner).ok_or_else(|| format!("`{inner}` is not a variable name (scope.name)")).and_then(|v| {
            if v.scope == crate::sample::VarScope::Proc {
                Err("`proc.` variables are not supported in TCP rules yet".to_string())
            } else {
                Ok(v)
            }
        })
    };
    match head {
        "accept" | "reject" if !rest.is_empty() => Err(format!("`{head}` takes no argument, got `{rest}`")),
        "accept" => Ok(Action::Accept),
        "reject" => Ok(Action::Reject),
        h if h.starts_with("set-var(") && h.ends_with(')') => {
            let v = var(&h[8..h.len() - 1])?;
            if rest.is_empty() {
                return Err("`set-var` needs a sample expression".into());
            }
            let e = SampleExpr::parse(rest).map_err(|e| e.to_string())?;
            Ok(Action::SetVar(v, e))
        }
        h if h.starts_with("unset-var(") && h.ends_with(')') && rest.is_empty() => {
            Ok(Action::UnsetVar(var(&h[10..h.len() - 1])?))
        }
        "" => Err("missing action (expected accept, reject, set-var(...) or unset-var(...))".into()),
        other => Err(format!(
            "action `{other}` is not supported (supported: accept, reject, set-var(scope.name) EXPR, unset-var(scope.name))"
        )),
    }
}

#[cfg(test)]
mod tests;
