//! Stick rules with `if`/`unless` conditions: the persistence hooks with the conditions evaluated
//! over the request (on, match, store-request) or the response (store-response), against the
//! ACLs of the section the rules are written in.

use super::Active;
use super::rules::Txn;
use super::sample_ctx::StreamCtx;
use crate::persist::stick::{StickCond, StickExpr, Stream};
use crate::persist::{Clock, Decision, ReqView};
use crate::routing::Acl;

/// The ACLs named conditions refer to: the backend's own, or for a listen section (whose ACLs
/// its frontend half holds) the frontend's of the same name.
fn acls(active: &Active, bi: usize) -> &[Acl] {
    let be = &active.snap.backends[bi];
    if !be.acls.is_empty() {
        return &be.acls;
    }
    active.snap.frontends.iter().find(|f| f.name == be.name).map_or(&[], |f| &f.acls)
}

/// A stick rule pass over one stream: conditions against the section's ACLs, expressions with
/// their converters, both over the same stream view.
struct Pass<'a> {
    ctx: StreamCtx<'a>,
    acls: &'a [Acl],
    maps: &'a dyn crate::sample::Maps,
}

impl Stream for Pass<'_> {
    fn holds(&self, c: &StickCond) -> bool {
        c.cond.eval(self.acls, &self.ctx, self.maps)
    }
    fn sample(&self, e: &StickExpr) -> Option<crate::sample::Value> {
        e.expr.eval(&self.ctx, self.maps)
    }
}

/// The proxy's request hook: the persistence decision for this request (empty without
/// persistence). Usable means up and not in maintenance; draining servers keep their sessions.
/// `t`: the stream (variables, the log record with the unique id, a buffered body), which the
/// rules' expressions may read.
pub fn request(t: &Txn<'_>, bi: usize, req: &http::request::Parts) -> Decision {
    let (active, cx) = (t.active, t.cx);
    let be = &active.snap.backends[bi];
    let spec = &be.persist;
    if spec.is_empty() && be.server_rules.is_empty() {
        return Decision::default();
    }
    let rt = &active.rt.backends[bi];
    let ctx = request_ctx(t, bi, req);
    let maps = cx.proxy.maps.lazy();
    let pass = Pass { ctx, acls: acls(active, bi), maps: &maps };
    // force-persist / ignore-persist, then use-server (HAProxy's order, before the cookie).
    let holds = |c: &crate::routing::Condition| c.eval(pass.acls, &pass.ctx, pass.maps);
    let resolve = |f: &crate::sample::LogFormat| {
        let name = super::rules::render_in(f, &pass.ctx, t, pass.maps);
        be.servers.iter().position(|s| s.name.as_bytes() == name.as_slice())
    };
    // As HAProxy's `process_server_rules`: `option persist` lets `use-server` take a server
    // that is DOWN or in maintenance, as `force-persist` does.
    let pre = be.server_rules.pre(&holds, &resolve, &|i| be.option_persist || rt.server_usable(i));
    // `option persist` takes a DOWN server the cookie or a stick entry names, as `force-persist`.
    let any_state = be.option_persist || pre.mode == crate::persist::rules::PersistMode::Force;
    let usable = |i: usize| rt.server_takes(i, any_state);
    let mut d = if spec.is_empty() {
        Decision::from_pre(pre)
    } else {
        let view = ReqView { headers: &req.headers, uri: Some(&req.uri), src: Some(cx.src().ip()) };
        spec.on_request_with(&view, rt.persist.as_deref(), &usable, Clock::system(), &pass, pre)
    };
    d.uncacheable_method = !matches!(req.method, http::Method::GET | http::Method::HEAD);
    d
}

/// The stream as the request-side rules read it in backend `bi`.
fn request_ctx<'a>(t: &'a Txn<'a>, bi: usize, req: &'a http::request::Parts) -> StreamCtx<'a> {
    StreamCtx {
        backend: Some(bi),
        vars: Some(t.vars),
        method: Some(&req.method),
        uri: Some(&req.uri),
        version: Some(req.version),
        req_headers: Some(&req.headers),
        req_body: t.req_body(),
        log: t.log,
        ..StreamCtx::conn(t.cx, t.active, t.frontend)
    }
}

/// `balance hash EXPR`: the expression's value over the request, the balancer's key. None
/// without the expression or without a sample (the balancer then falls back to round robin).
pub fn balance_key(t: &Txn<'_>, bi: usize, req: &http::request::Parts) -> Option<Vec<u8>> {
    let e = t.active.snap.backends[bi].hash_expr.as_ref()?;
    let maps = t.cx.proxy.maps.lazy();
    bin(e.eval(&request_ctx(t, bi, req), &maps)?)
}

/// A sample as the bytes a hash reads: HAProxy's cast to binary (integers as 8 big-endian
/// bytes, addresses in network order, strings as they are).
pub fn bin(v: crate::sample::Value) -> Option<Vec<u8>> {
    match v.cast(crate::sample::SmpType::Bin)? {
        crate::sample::Value::Bin(b) => Some(b),
        _ => None,
    }
}

/// The proxy's response hook, once server `server` has answered.
pub fn response(t: &Txn<'_>, bi: usize, d: &Decision, server: usize, resp: &mut http::response::Parts) {
    let (active, cx) = (t.active, t.cx);
    let be = &active.snap.backends[bi];
    if be.persist.is_empty() {
        return;
    }
    let status = resp.status.as_u16();
    // The conditions read the response as the server sent it, before persistence edits it.
    let seen = resp.headers.clone();
    let ctx = StreamCtx {
        backend: Some(bi),
        vars: Some(t.vars),
        status: Some(status),
        res_headers: Some(&seen),
        log: t.log,
        ..StreamCtx::conn(cx, active, t.frontend)
    };
    let maps = cx.proxy.maps.lazy();
    let pass = Pass { ctx, acls: acls(active, bi), maps: &maps };
    let rt = active.rt.backends[bi].persist.as_deref();
    be.persist.on_response_if(d, server, status, &mut resp.headers, rt, Clock::system(), &pass);
}
