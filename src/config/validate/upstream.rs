//! Validation of the server-connection keys (`proto`, `pool_max_conn`, `max_reuse`, server
//! `pool_purge_delay`, `maxqueue`, `minconn`; backend `http_reuse`, `fullconn`); the rules they
//! feed are in `proxy::upstream`.

use super::{Ctx, FieldPath, model};
use crate::config::snapshot::{Backend, Frontend};
use crate::proxy::upstream::{BackendOpts, HttpReuse, ServerOpts, default_fullconn as ten_percent};

/// A count where HAProxy takes -1 for "no limit".
fn limit(v: Option<i64>, key: &str, sp: &FieldPath, cx: &mut Ctx) -> Option<i64> {
    match v {
        Some(n) if !(-1..=i64::from(u32::MAX)).contains(&n) => {
            cx.err_v(sp.key(key), "must be -1 (no limit) or a count", n);
            None
        }
        Some(-1) | None => None,
        Some(n) => Some(n),
    }
}

pub(super) fn server(sv: &model::Server, sp: &FieldPath, cx: &mut Ctx) -> ServerOpts {
    let h2 = match sv.proto.as_deref() {
        None => false,
        Some("h2") => true,
        Some(other) => {
            cx.err_v(sp.key("proto"), "only \"h2\" is supported (HTTP/1.1 is the default)", other);
            false
        }
    };
    let minconn = sv.minconn.unwrap_or(0);
    if sv.minconn.is_some() && sv.maxconn.is_none() {
        cx.err(sp.key("minconn"), "has no effect without `maxconn` (the limit it rises to)");
    }
    if let (Some(min), Some(max)) = (sv.minconn, sv.maxconn)
        && min > max
    {
        cx.err_v(sp.key("minconn"), format!("must not exceed maxconn ({max})"), min);
    }
    if sv.send_proxy || sv.send_proxy_v2 {
        for (set, key) in [(sv.pool_max_conn.is_some(), "pool_max_conn"), (sv.max_reuse.is_some(), "max_reuse")] {
            if set {
                cx.err(sp.key(key), "has no effect with send_proxy: such connections are never reused");
            }
        }
    }
    ServerOpts {
        h2,
        pool_max_conn: limit(sv.pool_max_conn, "pool_max_conn", sp, cx).map(|n| n as usize),
        max_reuse: limit(sv.max_reuse, "max_reuse", sp, cx).map(|n| n as u32),
        pool_purge_delay: sv.pool_purge_delay.map(|d| d.0),
        maxqueue: sv.maxqueue.unwrap_or(0),
        minconn,
    }
}

pub(super) fn backend(s: &model::Section, defaults: &model::Section, p: &FieldPath, cx: &mut Ctx) -> BackendOpts {
    let http_reuse = match s.http_reuse.as_deref().or(defaults.http_reuse.as_deref()) {
        None => HttpReuse::default(),
        Some(t) => HttpReuse::parse(t).unwrap_or_else(|e| {
            let key = if s.http_reuse.is_some() {
                p.key("http_reuse")
            } else {
                FieldPath::root().key("defaults").key("http_reuse")
            };
            cx.err_v(key, e, t);
            HttpReuse::default()
        }),
    };
    BackendOpts { http_reuse, fullconn: s.fullconn.or(defaults.fullconn).unwrap_or(0) }
}

/// HAProxy's default `fullconn` for backends that set none: 10% of the `maxconn` of the
/// frontends whose rules name them (`global_maxconn` for a frontend without its own).
pub(super) fn default_fullconn(frontends: &[Frontend], backends: &mut [Backend], global_maxconn: u32) {
    for (bi, b) in backends.iter_mut().enumerate() {
        if b.reuse.fullconn > 0 {
            continue;
        }
        let sum: u64 = frontends
            .iter()
            .filter(|f| f.default_backend == Some(bi) || f.switching.iter().any(|r| r.backend == bi))
            .map(|f| u64::from(f.maxconn.unwrap_or(global_maxconn)))
            .sum();
        b.reuse.fullconn = if sum == 0 { 0 } else { ten_percent(sum) };
    }
}
