//! Stick rules with `if`/`unless` conditions: the persistence hooks with the conditions evaluated
//! over the request (on, match, store-request) or the response (store-response), against the
//! ACLs of the section the rules are written in.

use super::sample_ctx::StreamCtx;
use super::{Active, ConnCtx};
use crate::persist::{Clock, Decision, ReqView, StickCond};
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

/// The proxy's request hook: the persistence decision for this request (empty without
/// persistence). Usable means up and not in maintenance; draining servers keep their sessions.
pub fn request(active: &Active, cx: &ConnCtx, fi: usize, bi: usize, req: &http::request::Parts) -> Decision {
    let be = &active.snap.backends[bi];
    let spec = &be.persist;
    if spec.is_empty() {
        return Decision::default();
    }
    let rt = &active.rt.backends[bi];
    let ctx = StreamCtx {
        backend: Some(bi),
        method: Some(&req.method),
        uri: Some(&req.uri),
        version: Some(req.version),
        req_headers: Some(&req.headers),
        ..StreamCtx::conn(cx, active, fi)
    };
    let maps = cx.proxy.maps.store.load();
    let holds = |c: &StickCond| c.cond.eval(acls(active, bi), &ctx, &**maps);
    let view = ReqView { headers: &req.headers, uri: Some(&req.uri), src: Some(cx.peer.ip()) };
    let usable = |i: usize| rt.server_usable(i);
    let mut d = spec.on_request_if(&view, rt.persist.as_deref(), &usable, Clock::system(), &holds);
    d.uncacheable_method = !matches!(req.method, http::Method::GET | http::Method::HEAD);
    d
}

/// The proxy's response hook, once server `server` has answered.
pub fn response(
    active: &Active,
    cx: &ConnCtx,
    (fi, bi): (usize, usize),
    d: &Decision,
    server: usize,
    resp: &mut http::response::Parts,
) {
    let be = &active.snap.backends[bi];
    if be.persist.is_empty() {
        return;
    }
    let status = resp.status.as_u16();
    // The conditions read the response as the server sent it, before persistence edits it.
    let seen = resp.headers.clone();
    let ctx = StreamCtx {
        backend: Some(bi),
        status: Some(status),
        res_headers: Some(&seen),
        ..StreamCtx::conn(cx, active, fi)
    };
    let maps = cx.proxy.maps.store.load();
    let holds = |c: &StickCond| c.cond.eval(acls(active, bi), &ctx, &**maps);
    let rt = active.rt.backends[bi].persist.as_deref();
    be.persist.on_response_if(d, server, status, &mut resp.headers, rt, Clock::system(), &holds);
}
