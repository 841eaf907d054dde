//! TLS of health checks (issue 17): `check_ssl`, `check_sni`, `check_alpn`, and the server's
//! `verify`, `ca_file`, `crt` and policy applied to them, as HAProxy does. An `ssl` server is
//! checked over TLS unless `check_port` or `check_addr` send its checks elsewhere.

use super::super::error::FieldPath;
use super::super::model;
use super::super::snapshot::ServerTls;
use super::{Ctx, tls_side};
use crate::health::CheckTls;
use std::net::SocketAddr;
use std::sync::Arc;

/// The client config of a `check_ssl` server that has no `ssl`: its `verify`, `ca_file`, `crt`
/// and policy, as for traffic.
fn own_config(sv: &model::Server, sp: &FieldPath, cx: &mut Ctx) -> Option<Arc<rustls::ClientConfig>> {
    own_config_for(sv, sp, "check_ssl", cx)
}

/// [`own_config`] for what `why` names (`check_ssl`, a `tcp-check connect ssl`).
fn own_config_for(sv: &model::Server, sp: &FieldPath, why: &str, cx: &mut Ctx) -> Option<Arc<rustls::ClientConfig>> {
    let bases = cx.tls_defaults.bases.clone();
    let (verify, ca) = tls_side::server_verify(sv, sp, &bases.ca, &format!("`{why}` with "), cx)?;
    let policy = tls_side::server_policy(sv, sp, &cx.tls_defaults.server.clone(), cx)?;
    let crt = sv.crt.as_ref().map(|c| bases.crt.join(c));
    let check = tls_side::server_check(sv, sp, verify, cx)?;
    match crate::tls::server_side_config(verify, ca.as_deref(), crt.as_deref(), &check, &policy) {
        Ok((c, _warnings)) => Some(c),
        Err(e) => {
            cx.err(sp.key("check_ssl"), format!("{why}: {e}"));
            None
        }
    }
}

/// The warning for `check_ssl = false` on a server with `ssl` whose checks would follow it.
pub const PLAIN_CHECKS: &str = "`false` on an `ssl` server: its health checks go plain, not over TLS (HAProxy's \
                                `no-check-ssl`); remove it to check over TLS";

/// The TLS of this server's checks, or `None` for plain checks.
pub(super) fn check_tls(
    sv: &model::Server,
    sp: &FieldPath,
    target: SocketAddr,
    server: Option<&ServerTls>,
    cx: &mut Ctx,
) -> Option<CheckTls> {
    let implied = sv.ssl && sv.check_port.is_none() && sv.check_addr.is_none();
    if implied && sv.check_ssl == Some(false) {
        // Earlier lbha versions took `false` as unset (checks over TLS, following `ssl`).
        cx.warn(sp.key("check_ssl"), PLAIN_CHECKS);
    }
    if !sv.check_ssl.unwrap_or(implied) {
        for (set, key) in [(sv.check_sni.is_some(), "check_sni"), (sv.check_alpn.is_some(), "check_alpn")] {
            if set {
                cx.warn(sp.key(key), "has no effect: checks are not over TLS (set `check_ssl = true`)");
            }
        }
        return None;
    }
    let base = match server {
        Some(s) => s.config.clone(),
        None if sv.ssl => return None, // the server's TLS error is reported already
        None => own_config(sv, sp, cx)?,
    };
    let mut config = (*base).clone();
    config.alpn_protocols = match sv.check_alpn.as_deref().map(tls_side::alpn_list) {
        None => Vec::new(),
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            cx.err_v(sp.key("check_alpn"), e, sv.check_alpn.as_deref().unwrap_or(""));
            return None;
        }
    };
    let name = match &sv.check_sni {
        Some(n) => match rustls_pki_types::ServerName::try_from(n.clone()) {
            Ok(n) => n,
            Err(_) => {
                cx.err_v(sp.key("check_sni"), "not a valid server name", n);
                return None;
            }
        },
        None => server.map_or_else(|| rustls_pki_types::ServerName::IpAddress(target.ip().into()), |s| s.sni.clone()),
    };
    Some(CheckTls { config: Arc::new(config), name })
}

/// Fills what each `tcp-check connect` rule of this server's sequence needs from the server: the
/// TLS of a rule that opens its own (`ssl`, or `sni`/`alpn` on a `default` one over
/// `check_ssl`), on the server's TLS settings as HAProxy uses them, and the PROXY header of
/// `send-proxy` (v2 when the server sends v2).
pub(super) fn seq_connects(
    sv: &model::Server,
    sp: &FieldPath,
    spec: &mut crate::health::CheckSpec,
    server: Option<&ServerTls>,
    cx: &mut Ctx,
) {
    use crate::health::tcpcheck::Step;
    let crate::health::CheckKind::Seq(seq) = &mut spec.kind else { return };
    let own = spec.tls.clone();
    let check_addr = spec.addr;
    for step in &mut seq.steps {
        let Step::Connect { opts, .. } = step else { continue };
        if opts.send_proxy {
            let how = crate::proxy::proxy_proto::SendProxy {
                v2: sv.send_proxy_v2,
                ssl: false,
                authority: false,
                unique_id: false,
            };
            opts.proxy_header = Some(crate::proxy::proxy_proto::build(how, &Default::default()));
        }
        let default_tls = if opts.default { own.as_ref() } else { None };
        let overrides = opts.sni.is_some() || opts.alpn.is_some();
        // Plain, or the check's own TLS unchanged (the prober uses it as it is).
        if !(opts.ssl || default_tls.is_some()) || (default_tls.is_some() && !overrides) {
            continue;
        }
        let base = match (default_tls, server) {
            (Some(t), _) => t.config.clone(),
            (None, Some(s)) => s.config.clone(),
            (None, None) if sv.ssl => return, // the server's TLS error is reported already
            (None, None) => match own_config_for(sv, sp, "tcp_check connect ssl", cx) {
                Some(c) => c,
                None => return,
            },
        };
        let mut config = (*base).clone();
        if let Some(a) = &opts.alpn {
            match tls_side::alpn_list(a) {
                Ok(l) => config.alpn_protocols = l,
                Err(e) => {
                    cx.err_v(sp.key("check"), format!("tcp_check connect alpn: {e}"), a);
                    continue;
                }
            }
        }
        let name = match (&opts.sni, default_tls, server) {
            (Some(n), _, _) => match rustls_pki_types::ServerName::try_from(n.clone()) {
                Ok(n) => n,
                Err(_) => {
                    cx.err_v(sp.key("check"), "tcp_check connect sni: not a valid server name", n);
                    continue;
                }
            },
            (None, Some(t), _) => t.name.clone(),
            (None, None, Some(s)) => s.sni.clone(),
            (None, None, None) => rustls_pki_types::ServerName::IpAddress(opts.target(check_addr).ip().into()),
        };
        opts.tls = Some(CheckTls { config: Arc::new(config), name });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn warnings(server: &str) -> Vec<String> {
        let t = format!(
            "[global]\nssl_server_verify = \"none\"\n[[backend]]\nname = \"b\"\nmode = \"http\"\n\
             servers = [{{ name = \"s\", addr = \"127.0.0.1:1\", check = true{server} }}]\n"
        );
        let snap = crate::config::parse(&t, Path::new("t.toml")).unwrap();
        snap.warnings.iter().map(|w| w.to_string()).filter(|w| w.contains("check_ssl")).collect()
    }

    #[test]
    fn plain_checks_of_an_ssl_server_are_warned_of() {
        let w = warnings(", ssl = true, check_ssl = false");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("backend[0].servers[0].check_ssl"), "{w:?}");
        assert!(w[0].contains("health checks go plain, not over TLS (HAProxy's `no-check-ssl`)"), "{w:?}");
        // Checks sent elsewhere never followed `ssl`; `check_ssl` unset or true, or no `ssl`: silent.
        for quiet in [
            ", ssl = true, check_ssl = false, check_port = 2",
            ", ssl = true, check_ssl = false, check_addr = \"127.0.0.2\"",
            ", ssl = true",
            ", ssl = true, check_ssl = true",
            ", check_ssl = false",
        ] {
            assert_eq!(warnings(quiet), Vec::<String>::new(), "{quiet}");
        }
    }
}
