//! A backend's `http_request` / `http_response` rules: lbha runs only `cache_use` and
//! `cache_store` there (HAProxy's usual place for them); other actions belong to the frontend.

use super::super::error::FieldPath;
use super::super::model::{self, Mode, Section};
use super::super::snapshot::{HttpAction, HttpRule};
use super::{Ctx, Kind, Named, http_action};
use crate::routing::Condition;

/// The backend's cache rules, request side then response side. A listen section's rules run as
/// its frontend's, so its backend half has none.
pub(super) fn backend_rules(n: &Named, mode: Mode, cx: &mut Ctx) -> (Vec<HttpRule>, Vec<HttpRule>) {
    if n.kind != Kind::Backend {
        return (Vec::new(), Vec::new());
    }
    let s: &Section = n.sec;
    let p = n.path();
    let mut side = |list: &Option<Vec<model::HttpRule>>, key: &str, response: bool| -> Vec<HttpRule> {
        let mut out = Vec::new();
        let list = list.as_deref().unwrap_or(&[]);
        if !list.is_empty() && mode == Mode::Tcp {
            cx.err(p.key(key), format!("`{key}` rules need mode http"));
            return out;
        }
        for (i, r) in list.iter().enumerate() {
            let rp: FieldPath = p.key(key).index(i);
            let cond = cond(&r.if_, &r.unless, &rp, cx);
            match http_action(r, &rp, response, cx) {
                Some(a @ (HttpAction::CacheUse(_) | HttpAction::CacheStore(_))) => out.push(HttpRule { action: a, cond }),
                Some(_) => cx.err(
                    rp,
                    "not supported in a backend: lbha runs only cache_use and cache_store here (put other rules in the frontend)",
                ),
                None => {}
            }
        }
        out
    };
    let req = side(&s.http_request, "http_request", false);
    let resp = side(&s.http_response, "http_response", true);
    (req, resp)
}

/// `if`/`unless` with anonymous ACLs only: lbha backends have no named `acl`.
fn cond(if_: &Option<String>, unless: &Option<String>, rp: &FieldPath, cx: &mut Ctx) -> Option<Condition> {
    let text = match (if_, unless) {
        (Some(_), Some(_)) => {
            cx.err(rp.clone(), "use either `if` or `unless`, not both");
            return None;
        }
        (Some(c), None) => format!("if {c}"),
        (None, Some(c)) => format!("unless {c}"),
        (None, None) => return None,
    };
    match Condition::parse(&text, &|_: &str| None, cx.base_dir) {
        Ok(c) => Some(c),
        Err(e) => {
            cx.err_v(rp.key(if if_.is_some() { "if" } else { "unless" }), e.to_string(), &text);
            None
        }
    }
}
