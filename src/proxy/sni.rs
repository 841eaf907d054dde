//! A server's `sni EXPR` (HAProxy's per-request SNI, e.g. `sni req.hdr(host)`): the expression
//! is evaluated for each request, and the request goes through the server's pool for that SNI
//! value, so a connection is reused only by requests that would send the same SNI.

use super::pool::Pool;
use super::sample_ctx::StreamCtx;
use super::{Active, ConnCtx};
use crate::config::snapshot::ServerTls;
use std::sync::Arc;

/// The pool for this request's SNI; `None` (the server's own pool, its default SNI) when the
/// server has no expression or the expression gives no valid name.
pub fn pool_for<B>(
    pool: &Pool,
    tls: Option<&ServerTls>,
    cx: &ConnCtx,
    active: &Active,
    frontend: usize,
    req: &http::Request<B>,
) -> Option<Arc<Pool>> {
    let expr = tls?.sni_expr.as_ref()?;
    let ctx = StreamCtx::request(cx, active, frontend, req, None);
    let value = expr.eval_str(&ctx, &**cx.proxy.maps.store.load())?;
    pool.for_sni(std::str::from_utf8(&value).ok()?)
}
