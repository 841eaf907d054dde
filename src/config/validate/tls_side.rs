//! Validation of the TLS keywords of issue 17: the policy options of `ssl` binds and servers
//! (`ciphers`, `ssl-min-ver`, `no-tlsv12`, ...), the `global` `ssl-default-*` defaults under
//! them, and client certificates (`ca-file`, `verify`, `crl-file`).

use super::super::error::FieldPath;
use super::super::model;
use super::Ctx;
use crate::tls::policy::Policy;
use crate::tls::{BindTls, ClientVerify};
use std::path::{Path, PathBuf};

/// `global` `ssl-default-bind-*` and `ssl-default-server-*`, the start of every bind's and
/// server's policy.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsDefaults {
    pub bind: Policy,
    pub server: Policy,
    pub bases: super::bases::Bases,
    /// `ssl_server_verify = "none"`: servers without their own `verify` are not verified.
    pub server_verify_none: bool,
}

pub(super) fn defaults(g: &model::Global, cx: &mut Ctx) -> TlsDefaults {
    let p = FieldPath::root().key("global");
    let mut side = |ciphers: &Option<String>,
                    suites: &Option<String>,
                    curves: Option<&Option<String>>,
                    options: &Option<String>,
                    kind: &str| {
        let mut pol = Policy::default();
        if let Some(o) = options
            && let Err(e) = pol.apply_words(o)
        {
            cx.err_v(p.key(&format!("ssl_default_{kind}_options")), e, o);
        }
        pol.ciphers = ciphers.clone().or(pol.ciphers);
        pol.ciphersuites = suites.clone().or(pol.ciphersuites);
        if let Some(c) = curves {
            pol.curves = c.clone().or(pol.curves);
        }
        let any = ciphers.is_some() || suites.is_some() || curves.is_some_and(Option::is_some) || options.is_some();
        if any {
            match pol.resolve() {
                Ok(r) => {
                    for w in r.warnings {
                        cx.warn(p.key(&format!("ssl_default_{kind}_options")), w);
                    }
                }
                Err(e) => cx.err(p.key(&format!("ssl_default_{kind}_{}", blamed_key(&e))), e),
            }
        }
        pol
    };
    let bind = side(
        &g.ssl_default_bind_ciphers,
        &g.ssl_default_bind_ciphersuites,
        Some(&g.ssl_default_bind_curves),
        &g.ssl_default_bind_options,
        "bind",
    );
    let server = side(
        &g.ssl_default_server_ciphers,
        &g.ssl_default_server_ciphersuites,
        None,
        &g.ssl_default_server_options,
        "server",
    );
    let server_verify_none = match g.ssl_server_verify.as_deref() {
        None | Some("required") => false,
        Some("none") => true,
        Some(other) => {
            cx.err_v(p.key("ssl_server_verify"), "must be \"required\" or \"none\"", other);
            false
        }
    };
    TlsDefaults { bind, server, bases: super::bases::Bases::new(g, cx.base_dir), server_verify_none }
}

/// The `global` key an error from `Policy::resolve` is about.
fn blamed_key(e: &str) -> &'static str {
    if e.starts_with("ciphersuites") {
        "ciphersuites"
    } else if e.starts_with("ciphers") {
        "ciphers"
    } else if e.starts_with("curves") {
        "curves"
    } else {
        "options"
    }
}

/// The server key a policy error is about.
pub(super) fn server_key(e: &str) -> &'static str {
    match blamed_key(e) {
        "options" if e.starts_with("ssl-min-ver") => "ssl_min_ver",
        "options" if e.starts_with("ssl-max-ver") => "ssl_max_ver",
        "options" => "ssl",
        k => k,
    }
}

/// The TLS words of one bind line beyond `ssl`, `crt` and `alpn`.
#[derive(Debug, Default)]
pub(super) struct BindWords {
    policy: Policy,
    verify: Option<ClientVerify>,
    ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    crt_list: Vec<PathBuf>,
    crt_base: Option<PathBuf>,
    ca_base: Option<PathBuf>,
    strict_sni: bool,
    no_ca_names: bool,
    /// Words given, for "has no effect without ssl".
    pub seen: Vec<String>,
}

impl BindWords {
    pub fn new(defaults: &Policy) -> BindWords {
        BindWords { policy: defaults.clone(), ..Default::default() }
    }

    /// Takes `w` if it is a TLS option of binds; `Ok(false)` otherwise.
    pub fn word(
        &mut self,
        w: &str,
        next: &mut dyn FnMut() -> Option<String>,
        bases: &super::bases::Bases,
    ) -> Result<bool, String> {
        let mut val = |what: &str| next().ok_or_else(|| format!("`{w}` needs {what}"));
        match w {
            "ca-file" => self.ca_file = Some(bases.ca.join(val("a file")?)),
            "crl-file" => self.crl_file = Some(bases.ca.join(val("a file")?)),
            "crt-list" => {
                self.crt_list.push(bases.crt.join(val("a file")?));
                self.crt_base = bases.crt_list_base();
                self.ca_base = Some(bases.ca.clone());
            }
            "strict-sni" => self.strict_sni = true,
            "no-ca-names" => self.no_ca_names = true,
            "verify" => {
                self.verify = Some(match val("none, optional or required")?.as_str() {
                    "none" => ClientVerify::None,
                    "optional" => ClientVerify::Optional,
                    "required" => ClientVerify::Required,
                    other => return Err(format!("verify: {other:?} is not none, optional or required")),
                })
            }
            "ca-ignore-err"
            | "crt-ignore-err"
            | "ca-verify-file"
            | "npn"
            | "allow-0rtt"
            | "ca-sign-file"
            | "generate-certificates"
            | "ssl-max-record" => {
                return Err(format!("`{w}` is not supported by lbha yet"));
            }
            _ => {
                if !self.policy.apply(w, &mut *next)? {
                    return Ok(false);
                }
            }
        }
        self.seen.push(w.to_string());
        Ok(true)
    }

    /// The bind's rustls config and the policy's warnings.
    pub fn has_crt_list(&self) -> bool {
        !self.crt_list.is_empty()
    }

    pub fn build(self, crt: Option<PathBuf>, alpn: Vec<String>) -> Result<crate::tls::BindConfig, String> {
        let verify = self.verify.unwrap_or_default();
        if verify != ClientVerify::None && self.ca_file.is_none() {
            return Err(
                "verify: optional and required need `ca-file` with the CAs clients' certificates come from".into()
            );
        }
        let mut warnings = Vec::new();
        // Harmless: no client certificate is asked for, so none can be revoked.
        if self.crl_file.is_some() && verify == ClientVerify::None {
            warnings.push("crl-file: has no effect with `verify none` (the default)".to_string());
        }
        if self.ca_file.is_some() && verify == ClientVerify::None {
            warnings.push("ca-file: no client certificate is asked for with `verify none` (the default)".to_string());
        }
        let o = BindTls {
            crt: crt.into_iter().collect(),
            crt_list: self.crt_list,
            alpn,
            policy: self.policy,
            verify,
            ca_file: self.ca_file,
            crl_file: self.crl_file,
            crt_base: self.crt_base,
            ca_base: self.ca_base,
            strict_sni: self.strict_sni,
            no_ca_names: self.no_ca_names,
        };
        let (cfg, lines, w) = crate::tls::bind_config(&o).map_err(|e| e.to_string())?;
        if lines.is_some() {
            // `crt-list` lines with `verify` use the bind's files (their own warnings are theirs).
            warnings.retain(|w| !w.starts_with("ca-file:") && !w.starts_with("crl-file:"));
        }
        warnings.extend(w);
        Ok((cfg, lines, warnings))
    }
}

/// A server's `verify` (default `required`, or `[global] ssl_server_verify`) and its `ca_file` resolved against the config's
/// directory, for traffic and for checks alike; `required` without a `ca_file` is an error whose
/// text starts with `what` (which setting asked for TLS).
pub(super) fn server_verify(
    sv: &model::Server,
    sp: &FieldPath,
    base_dir: &Path,
    what: &str,
    cx: &mut Ctx,
) -> Option<(bool, Option<PathBuf>)> {
    let default = if cx.tls_defaults.server_verify_none { "none" } else { "required" };
    let verify = match sv.verify.as_deref().unwrap_or(default) {
        "required" => true,
        "none" => false,
        other => {
            cx.err_v(sp.key("verify"), "must be \"required\" or \"none\"", other);
            return None;
        }
    };
    let ca = sv.ca_file.as_ref().map(|c| base_dir.join(c));
    if verify && ca.is_none() {
        cx.err(
            sp.key("ca_file"),
            format!("{what}`verify = \"required\"` needs `ca_file` (or set `verify = \"none\"`)"),
        );
        return None;
    }
    Some((verify, ca))
}

/// A server's `verifyhost` and `crl_file` (from `ca_base`); with `verify = "none"` they check
/// nothing, which is said.
pub(super) fn server_check(
    sv: &model::Server,
    sp: &FieldPath,
    verify: bool,
    cx: &mut Ctx,
) -> Option<crate::tls::ServerCheck> {
    if !verify {
        for (set, key) in [(sv.verifyhost.is_some(), "verifyhost"), (sv.crl_file.is_some(), "crl_file")] {
            if set {
                cx.warn(sp.key(key), "has no effect with `verify = \"none\"`");
            }
        }
        return Some(crate::tls::ServerCheck::default());
    }
    let verifyhost = match &sv.verifyhost {
        Some(h) => match rustls_pki_types::ServerName::try_from(h.clone()) {
            Ok(n) => Some(n),
            Err(_) => {
                cx.err_v(sp.key("verifyhost"), "not a host name or address", h);
                return None;
            }
        },
        None => None,
    };
    let crl_file = sv.crl_file.as_ref().map(|f| cx.tls_defaults.bases.ca.join(f));
    Some(crate::tls::ServerCheck { verifyhost, crl_file, any_name: false })
}

/// A server's version words (`no_tlsv13 = true`, ...) with their HAProxy names.
fn server_version_words(sv: &model::Server) -> [(bool, &'static str, &'static str); 11] {
    [
        (sv.no_sslv3, "no-sslv3", "no_sslv3"),
        (sv.no_tlsv10, "no-tlsv10", "no_tlsv10"),
        (sv.no_tlsv11, "no-tlsv11", "no_tlsv11"),
        (sv.no_tlsv12, "no-tlsv12", "no_tlsv12"),
        (sv.no_tlsv13, "no-tlsv13", "no_tlsv13"),
        (sv.force_sslv3, "force-sslv3", "force_sslv3"),
        (sv.force_tlsv10, "force-tlsv10", "force_tlsv10"),
        (sv.force_tlsv11, "force-tlsv11", "force_tlsv11"),
        (sv.force_tlsv12, "force-tlsv12", "force_tlsv12"),
        (sv.force_tlsv13, "force-tlsv13", "force_tlsv13"),
        (sv.no_tls_tickets, "no-tls-tickets", "no_tls_tickets"),
    ]
}

/// The server key a policy error is about, the version words included.
pub(super) fn server_policy_key(sv: &model::Server, e: &str) -> &'static str {
    server_version_words(sv)
        .into_iter()
        .find(|(on, word, _)| *on && e.starts_with(word))
        .map_or_else(|| server_key(e), |(_, _, key)| key)
}

/// A server's policy: `ssl-default-server-*` then its own version words, `ciphers`, `ssl_min_ver`, ...
pub(super) fn server_policy(sv: &model::Server, sp: &FieldPath, defaults: &Policy, cx: &mut Ctx) -> Option<Policy> {
    let mut pol = defaults.clone();
    let mut ok = true;
    for (on, word, _) in server_version_words(sv) {
        if on {
            // Takes no value, so cannot fail.
            let _ = pol.apply(word, &mut || None);
        }
    }
    for (key, word, v) in [
        ("ciphers", "ciphers", &sv.ciphers),
        ("ciphersuites", "ciphersuites", &sv.ciphersuites),
        ("ssl_min_ver", "ssl-min-ver", &sv.ssl_min_ver),
        ("ssl_max_ver", "ssl-max-ver", &sv.ssl_max_ver),
    ] {
        if let Some(v) = v {
            let mut once = Some(v.clone());
            if let Err(e) = pol.apply(word, &mut || once.take()) {
                cx.err_v(sp.key(key), e, v);
                ok = false;
            }
        }
    }
    ok.then_some(pol)
}

/// Whether a server's `sni` is a sample expression (HAProxy's syntax) rather than a name: it
/// parses as one (`req.hdr(host)`, `ssl_fc_sni`, `req.ssl_sni,lower`; a host name is no known
/// fetch), or has arguments (so a bad expression is reported as such).
fn sni_is_expr(v: &str) -> bool {
    v.contains('(') || crate::sample::SampleExpr::parse(v).is_ok()
}

/// A server's `sni`: a constant name, or an expression evaluated per request (a constant
/// `str(NAME)` is taken as the name). The default is the server's address.
pub(super) fn server_sni(
    sv: &model::Server,
    sp: &FieldPath,
    addr: std::net::SocketAddr,
    cx: &mut Ctx,
) -> Option<(rustls_pki_types::ServerName<'static>, Option<std::sync::Arc<crate::sample::SampleExpr>>)> {
    let default = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let Some(v) = &sv.sni else { return Some((default, None)) };
    let name = match v.strip_prefix("str(").and_then(|n| n.strip_suffix(')')) {
        Some(n) => n,
        None if sni_is_expr(v) => {
            return match crate::sample::SampleExpr::parse(v) {
                Ok(e) => Some((default, Some(std::sync::Arc::new(e)))),
                Err(e) => {
                    cx.err_v(sp.key("sni"), e.to_string(), v);
                    None
                }
            };
        }
        None => v,
    };
    match rustls_pki_types::ServerName::try_from(name.to_string()) {
        Ok(n) => Some((n, None)),
        Err(_) => {
            cx.err_v(sp.key("sni"), "not a valid server name", v);
            None
        }
    }
}

/// An ALPN list, `"h2,http/1.1"` (server `alpn`, `check_alpn`).
pub(super) fn alpn_list(s: &str) -> Result<Vec<Vec<u8>>, String> {
    let list: Vec<Vec<u8>> = s.split(',').map(|p| p.trim().as_bytes().to_vec()).collect();
    if list.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err("expected protocol names separated by commas, such as \"h2,http/1.1\"".into());
    }
    Ok(list)
}

/// A server's `alpn` over its client config (`proto h2` still offers only `h2`).
pub(super) fn server_alpn(
    sv: &model::Server,
    sp: &FieldPath,
    config: std::sync::Arc<rustls::ClientConfig>,
    cx: &mut Ctx,
) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    let Some(a) = &sv.alpn else { return Some(config) };
    match alpn_list(a) {
        Ok(list) => {
            let mut c = (*config).clone();
            c.alpn_protocols = list;
            Some(std::sync::Arc::new(c))
        }
        Err(e) => {
            cx.err_v(sp.key("alpn"), e, a);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_server_verify_sets_the_default_a_servers_own_verify_overrides() {
        let cfg = |global: &str, server: &str| {
            format!(
                "[global]\n{global}\n[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:1\", ssl = true{server} }}]\n"
            )
        };
        let parse = |t: String| crate::config::parse(&t, Path::new("t.toml")).map(|_| ()).map_err(|e| e.to_string());
        let e = parse(cfg("", "")).unwrap_err();
        assert!(e.contains("needs `ca_file`"), "{e}");
        parse(cfg("ssl_server_verify = \"none\"", "")).unwrap();
        let e = parse(cfg("ssl_server_verify = \"none\"", ", verify = \"required\"")).unwrap_err();
        assert!(e.contains("needs `ca_file`"), "{e}");
        let e = parse(cfg("ssl_server_verify = \"required\"", "")).unwrap_err();
        assert!(e.contains("needs `ca_file`"), "{e}");
        let e = parse(cfg("ssl_server_verify = \"maybe\"", ", verify = \"none\"")).unwrap_err();
        assert!(e.contains("global.ssl_server_verify") && e.contains("must be \"required\" or \"none\""), "{e}");
    }

    #[test]
    fn sni_names_and_expressions() {
        for e in ["req.hdr(host)", "ssl_fc_sni", "req.hdr(host),lower", "var(txn.sni)", "req.ssl_sni"] {
            assert!(sni_is_expr(e), "{e}");
        }
        for n in ["www.example.com", "a.example", "localhost.localdomain"] {
            assert!(!sni_is_expr(n), "{n}");
        }
    }

    #[test]
    fn alpn_lists() {
        assert_eq!(alpn_list("h2,http/1.1").unwrap(), vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(alpn_list("h2,,x").is_err());
        assert!(alpn_list("").is_err());
    }

    fn words(line: &str) -> Result<BindWords, String> {
        let mut b = BindWords::new(&Policy::default());
        let mut it = line.split_whitespace();
        while let Some(w) = it.next() {
            let mut next = || it.next().map(str::to_string);
            let bases = super::super::bases::Bases::new(&model::Global::default(), Path::new("/etc/lbha"));
            if !b.word(w, &mut next, &bases)? {
                return Err(format!("not a TLS word: {w}"));
            }
        }
        Ok(b)
    }

    #[test]
    fn bind_words_and_their_errors() {
        let b = words("ca-file ca.pem verify optional crl-file crl.pem ssl-min-ver TLSv1.2 ciphers HIGH").unwrap();
        assert_eq!(b.ca_file.as_deref(), Some(Path::new("/etc/lbha/ca.pem")));
        assert_eq!(b.verify, Some(ClientVerify::Optional));
        assert_eq!(b.seen.len(), 5);
        assert!(words("verify sometimes").unwrap_err().contains("sometimes"));
        assert!(words("ca-ignore-err all").unwrap_err().contains("not supported"));
        assert!(words("crt-list l.txt").unwrap().has_crt_list());
        assert!(words("no-ca-names").unwrap().no_ca_names);
        assert!(words("verify").unwrap_err().contains("`verify` needs"));
        assert!(words("maxconn 10").unwrap_err().contains("not a TLS word"));
        let e = words("verify required").unwrap().build(Some("/nonexistent.pem".into()), vec![]).unwrap_err();
        assert!(e.contains("ca-file"), "{e}");
        let e = words("crl-file c.pem").unwrap().build(Some("/nonexistent.pem".into()), vec![]).unwrap_err();
        assert!(e.contains("/nonexistent.pem"), "crl-file alone is only a warning: {e}");
    }
}
