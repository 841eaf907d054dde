//! Validation of the server-side keywords of issue 17: PROXY protocol towards servers
//! (`send_proxy`, `send_proxy_v2`, `proxy_v2_options`, `check_send_proxy`).

use super::super::error::FieldPath;
use super::super::model;
use super::Ctx;
use crate::proxy::proxy_proto::SendProxy;

/// `send-proxy`/`send-proxy-v2` and the v2 options lbha can fill. An option it cannot honour is
/// an error, not a header silently sent without it.
pub(super) fn send_proxy(sv: &model::Server, sp: &FieldPath, cx: &mut Ctx) -> Option<SendProxy> {
    if sv.send_proxy && sv.send_proxy_v2 {
        cx.err(sp.key("send_proxy_v2"), "use either `send_proxy` or `send_proxy_v2`, not both");
    }
    let mut how = SendProxy { v2: sv.send_proxy_v2, ssl: false, authority: false };
    if let Some(opts) = &sv.proxy_v2_options {
        let op = sp.key("proxy_v2_options");
        if !sv.send_proxy_v2 {
            cx.err(op.clone(), "has no effect without `send_proxy_v2 = true`");
        }
        for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match o {
                "ssl" => how.ssl = true,
                "authority" => how.authority = true,
                "unique-id" | "ssl-cipher" | "cert-cn" | "cert-sig" | "cert-key" | "crc32c" => {
                    cx.err_v(op.clone(), "not supported by lbha yet (it can send ssl and authority)", o)
                }
                other => cx.err_v(
                    op.clone(),
                    "unknown option (ssl, authority, unique-id, ssl-cipher, cert-cn, cert-sig, cert-key, crc32c)",
                    other,
                ),
            }
        }
    }
    if sv.check_send_proxy && !sv.check {
        cx.err(sp.key("check_send_proxy"), "has no effect without `check = true`");
    }
    (sv.send_proxy || sv.send_proxy_v2).then_some(how)
}

/// The PROXY header a health check sends first: with `check-send-proxy`, or, as in HAProxy,
/// when the server's traffic has one and the check goes to the same address (no `addr`/`port`).
/// A check has no client: v1 `UNKNOWN` or a v2 `LOCAL` header.
pub(super) fn check_proxy_header(sv: &model::Server) -> Option<Vec<u8>> {
    let same_target = sv.check_addr.is_none() && sv.check_port.is_none();
    if !(sv.check_send_proxy || ((sv.send_proxy || sv.send_proxy_v2) && same_target)) {
        return None;
    }
    let how = SendProxy { v2: sv.send_proxy_v2, ssl: false, authority: false };
    Some(crate::proxy::proxy_proto::build(how, &Default::default()))
}
