//! `if` / `unless` conditions: terms joined by implicit AND, groups joined by `or` / `||`, `!`
//! negates a term, `{ fetch pattern }` is an anonymous ACL. AND binds tighter than OR, as in HAProxy.

use super::acl::{Acl, words};
use super::{Facts, Live, RoutingError};
use std::path::Path;

#[derive(Debug, Clone)]
enum Ref {
    Named(usize),
    Anon(Box<Acl>),
    Const(bool),
}

#[derive(Debug, Clone)]
struct Term {
    negate: bool,
    acl: Ref,
}

#[derive(Debug, Clone)]
pub struct Condition {
    unless: bool,
    /// OR of ANDs.
    groups: Vec<Vec<Term>>,
}

/// HAProxy's predefined ACLs that are not request fetches.
fn predefined(name: &str, base_dir: &Path) -> Option<Result<Ref, RoutingError>> {
    let anon = |e: &str| Some(Acl::parse(e, base_dir).map(|a| Ref::Anon(Box::new(a))));
    match name {
        "TRUE" => Some(Ok(Ref::Const(true))),
        "FALSE" => Some(Ok(Ref::Const(false))),
        "LOCALHOST" => anon("src 127.0.0.0/8 ::1"),
        "METH_GET" => anon("method GET HEAD"),
        "METH_POST" => anon("method POST"),
        "METH_PUT" => anon("method PUT"),
        "METH_DELETE" => anon("method DELETE"),
        "METH_HEAD" => anon("method HEAD"),
        "METH_OPTIONS" => anon("method OPTIONS"),
        _ => None,
    }
}

impl Condition {
    /// Parses `if ...` or `unless ...`; `acl_index` maps a named ACL to its index in the
    /// frontend's list.
    pub fn parse(
        expr: &str,
        acl_index: &dyn Fn(&str) -> Option<usize>,
        base_dir: &Path,
    ) -> Result<Condition, RoutingError> {
        // Braces may touch their contents ("{path_beg /a}"): split them off.
        let mut toks: Vec<String> = Vec::new();
        for w in words(expr) {
            let mut w = w.as_str();
            if let Some(r) = w.strip_prefix("!{") {
                toks.push("!".into());
                toks.push("{".into());
                w = r;
            }
            while let Some(r) = w.strip_prefix('{') {
                toks.push("{".into());
                w = r;
            }
            let mut closing = 0;
            while let Some(r) = w.strip_suffix('}') {
                closing += 1;
                w = r;
            }
            if !w.is_empty() {
                toks.push(w.to_string());
            }
            toks.extend(std::iter::repeat_n("}".to_string(), closing));
        }
        let (kw, rest) = toks.split_first().ok_or(RoutingError::EmptyCondition)?;
        let unless = match kw.as_str() {
            "if" => false,
            "unless" => true,
            other => return Err(RoutingError::MissingKeyword(other.to_string())),
        };
        let mut groups: Vec<Vec<Term>> = vec![Vec::new()];
        let mut negate = false;
        let mut i = 0;
        while i < rest.len() {
            let t = rest[i].as_str();
            match t {
                "or" | "||" => {
                    if negate || groups.last().is_none_or(Vec::is_empty) {
                        return Err(RoutingError::DanglingOperator(t.to_string()));
                    }
                    groups.push(Vec::new());
                }
                "!" => {
                    if negate {
                        return Err(RoutingError::DanglingOperator("!".into()));
                    }
                    negate = true;
                }
                "{" => {
                    let end = rest[i + 1..]
                        .iter()
                        .position(|x| x == "}")
                        .ok_or(RoutingError::UnbalancedBrace)?
                        + i
                        + 1;
                    let inner = rest[i + 1..end].join(" ");
                    let acl = Acl::parse(&inner, base_dir)?;
                    push(&mut groups, &mut negate, Ref::Anon(Box::new(acl)));
                    i = end;
                }
                "}" => return Err(RoutingError::UnbalancedBrace),
                name => {
                    let (neg, name) = match name.strip_prefix('!') {
                        Some(n) if !negate => (true, n),
                        _ => (false, name),
                    };
                    negate |= neg;
                    let r = match acl_index(name) {
                        Some(idx) => Ref::Named(idx),
                        None => match predefined(name, base_dir) {
                            Some(r) => r?,
                            None => return Err(RoutingError::UnknownAcl(name.to_string())),
                        },
                    };
                    push(&mut groups, &mut negate, r);
                }
            }
            i += 1;
        }
        if negate {
            return Err(RoutingError::DanglingOperator("!".into()));
        }
        if groups.iter().all(Vec::is_empty) {
            return Err(RoutingError::EmptyCondition);
        }
        if groups.last().is_some_and(Vec::is_empty) {
            return Err(RoutingError::DanglingOperator("or".into()));
        }
        Ok(Condition { unless, groups })
    }

    pub fn eval(&self, acls: &[Acl], facts: &Facts<'_>, live: &dyn Live) -> bool {
        let hit = self.groups.iter().any(|g| {
            g.iter().all(|t| {
                let m = match &t.acl {
                    Ref::Named(i) => acls.get(*i).is_some_and(|a| a.matches(facts, live)),
                    Ref::Anon(a) => a.matches(facts, live),
                    Ref::Const(b) => *b,
                };
                m != t.negate
            })
        });
        hit != self.unless
    }

    pub fn referenced_backends(&self) -> Vec<&str> {
        self.groups
            .iter()
            .flatten()
            .filter_map(|t| match &t.acl {
                Ref::Anon(a) => Some(a.referenced_backends()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

fn push(groups: &mut [Vec<Term>], negate: &mut bool, acl: Ref) {
    if let Some(g) = groups.last_mut() {
        g.push(Term {
            negate: *negate,
            acl,
        });
    }
    *negate = false;
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
