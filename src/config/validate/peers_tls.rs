//! TLS words of `[[peers]]` lines, HAProxy's transport keywords of `peer`/`server`/`default-server`
//! (the dialing side) and of `bind`/`default-bind` (the listener). A word lbha cannot honour is an
//! error naming it: replication is never quietly left in clear text or unverified.

use super::bases::Bases;
use super::tls_side::{BindWords, alpn_list};
use crate::peers::net::{Dial, Listen};
use crate::tls::policy::Policy;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Server policy words HAProxy 2.6 takes on server lines.
const SERVER_POLICY: &[&str] = &[
    "ciphers",
    "ciphersuites",
    "ssl-min-ver",
    "ssl-max-ver",
    "no-sslv3",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "force-sslv3",
    "force-tlsv10",
    "force-tlsv11",
    "force-tlsv12",
    "force-tlsv13",
    "no-tls-tickets",
];

/// The server words of one peer line over `default_server`'s.
#[derive(Debug, Clone, Default)]
pub(super) struct DialWords {
    pub ssl: bool,
    verify: Option<bool>,
    ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    crt: Option<PathBuf>,
    sni: Option<String>,
    verifyhost: Option<String>,
    alpn: Option<String>,
    policy: Policy,
    /// TLS words given, for "has no effect without `ssl`".
    seen: Vec<String>,
    /// Every word taken, in order: what a reload compares.
    text: Vec<String>,
}

impl DialWords {
    pub fn new(defaults: &Policy) -> DialWords {
        DialWords { policy: defaults.clone(), ..Default::default() }
    }

    /// Takes `words` in order (later ones win); words that mean nothing for peers give a warning,
    /// as in HAProxy.
    pub fn take(&mut self, words: &[&str], bases: &Bases, warnings: &mut Vec<String>) -> Result<(), String> {
        let mut it = words.iter().map(|w| w.to_string());
        while let Some(w) = it.next() {
            let mut val = |what: &str| it.next().ok_or_else(|| format!("`{w}` needs {what}"));
            let mut taken = vec![w.clone()];
            match w.as_str() {
                "ssl" => self.ssl = true,
                "no-ssl" => self.ssl = false,
                "verify" => {
                    let v = val("none or required")?;
                    self.verify = Some(match v.as_str() {
                        "required" => true,
                        "none" => false,
                        other => return Err(format!("verify: {other:?} is not none or required")),
                    });
                    taken.push(v);
                }
                "ca-file" | "crl-file" | "crt" => {
                    let f = val("a file")?;
                    let path = if w == "crt" { bases.crt.join(&f) } else { bases.ca.join(&f) };
                    match w.as_str() {
                        "ca-file" => self.ca_file = Some(path),
                        "crl-file" => self.crl_file = Some(path),
                        _ => self.crt = Some(path),
                    }
                    taken.push(f);
                }
                "sni" | "verifyhost" | "alpn" => {
                    let v = val("a value")?;
                    match w.as_str() {
                        "sni" => self.sni = Some(v.clone()),
                        "verifyhost" => self.verifyhost = Some(v.clone()),
                        _ => self.alpn = Some(v.clone()),
                    }
                    taken.push(v);
                }
                p if SERVER_POLICY.contains(&p) => {
                    let mut got = None;
                    self.policy.apply(p, &mut || {
                        got = it.next();
                        got.clone()
                    })?;
                    taken.extend(got);
                }
                // HAProxy: "init_addr, resolvers, check and agent are ignored for peers".
                "check" | "no-check" | "agent-check" | "no-agent-check" => {
                    warnings.push(format!("`{w}`: health checks are ignored for peers (as in HAProxy)"));
                    continue;
                }
                "init-addr" | "resolvers" | "weight" | "cookie" => {
                    let _ = val("a value")?;
                    warnings.push(format!("`{w}` has no effect on peers (as in HAProxy)"));
                    continue;
                }
                other => {
                    return Err(format!(
                        "`{other}` is not supported on peer lines by lbha (ssl, no-ssl, verify, ca-file, crl-file, crt, sni, verifyhost, alpn, ciphers, ciphersuites, ssl-min-ver, ssl-max-ver, no-tlsv1x, force-tlsv1x, no-tls-tickets)"
                    ));
                }
            }
            if !matches!(w.as_str(), "ssl" | "no-ssl") {
                self.seen.push(w.clone());
            }
            self.text.extend(taken);
        }
        Ok(())
    }

    /// The client side towards a peer at `addr` (None for the local peer, which is only
    /// checked); None without `ssl`. `verify_none`: `[global] ssl_server_verify = "none"`.
    pub fn build(&self, addr: Option<SocketAddr>, verify_none: bool) -> Result<(Option<Dial>, Vec<String>), String> {
        let mut warnings = Vec::new();
        if !self.ssl {
            for w in &self.seen {
                warnings.push(format!("`{w}` has no effect without `ssl`"));
            }
            return Ok((None, warnings));
        }
        let verify = self.verify.unwrap_or(!verify_none);
        if verify && self.ca_file.is_none() {
            return Err(
                "`ssl` checks the peer's certificate (`verify required`, the default): give the `ca-file` it comes from, or `verify none`"
                    .into(),
            );
        }
        if !verify {
            for (set, w) in [(self.verifyhost.is_some(), "verifyhost"), (self.crl_file.is_some(), "crl-file")] {
                if set {
                    warnings.push(format!("`{w}` has no effect with `verify none`"));
                }
            }
        }
        let sni = match &self.sni {
            None => None,
            Some(v) => {
                let n = v.strip_prefix("str(").and_then(|n| n.strip_suffix(')')).unwrap_or(v);
                match ServerName::try_from(n.to_string()) {
                    Ok(name) if !n.contains('(') => Some(name),
                    _ => {
                        return Err(format!(
                            "sni: {v:?} is not a name (a peer's SNI is a constant: `str(NAME)` or NAME)"
                        ));
                    }
                }
            }
        };
        let verifyhost = match &self.verifyhost {
            Some(h) => Some(ServerName::try_from(h.clone()).map_err(|_| format!("verifyhost: {h:?} is not a name"))?),
            None => None,
        };
        // HAProxy checks the name only when one was asked for (`sni` or `verifyhost`).
        let check = crate::tls::ServerCheck {
            any_name: sni.is_none() && verifyhost.is_none(),
            verifyhost,
            crl_file: if verify { self.crl_file.clone() } else { None },
        };
        let (cfg, w) =
            crate::tls::server_side_config(verify, self.ca_file.as_deref(), self.crt.as_deref(), &check, &self.policy)
                .map_err(|e| e.to_string())?;
        warnings.extend(w);
        let mut cfg = (*cfg).clone();
        // No ALPN unless asked for, as HAProxy's peers.
        cfg.alpn_protocols = match &self.alpn {
            Some(a) => alpn_list(a).map_err(|e| format!("alpn: {e}"))?,
            None => Vec::new(),
        };
        let ip = addr.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
        let name = sni.unwrap_or(ServerName::IpAddress(ip.into()));
        Ok((Some(Dial { config: Arc::new(cfg), name, words: self.text.join(" ") }), warnings))
    }
}

/// The bind words of the listener: `default_bind`'s, then `bind`'s after its address.
pub(super) struct ListenWords {
    pub ssl: bool,
    crt: Option<PathBuf>,
    alpn: Vec<String>,
    tls: BindWords,
    text: Vec<String>,
}

impl ListenWords {
    pub fn new(defaults: &Policy) -> ListenWords {
        ListenWords { ssl: false, crt: None, alpn: Vec::new(), tls: BindWords::new(defaults), text: Vec::new() }
    }

    pub fn take(&mut self, words: &[&str], bases: &Bases) -> Result<(), String> {
        let mut it = words.iter().map(|w| w.to_string());
        while let Some(w) = it.next() {
            let start = self.text.len();
            self.text.push(w.clone());
            match w.as_str() {
                "ssl" => self.ssl = true,
                "crt" => {
                    let f = it.next().ok_or("`crt` needs a file")?;
                    self.crt = Some(bases.crt.join(&f));
                    self.text.push(f);
                }
                "alpn" => {
                    let a = it.next().ok_or("`alpn` needs a protocol list")?;
                    self.alpn = a.split(',').map(str::to_string).collect();
                    self.text.push(a);
                }
                other => {
                    let text = &mut self.text;
                    let mut next = || {
                        let v = it.next();
                        text.extend(v.clone());
                        v
                    };
                    if !self.tls.word(other, &mut next, bases)? {
                        self.text.truncate(start);
                        return Err(format!(
                            "`{other}` is not supported on a peers bind by lbha (ssl, crt, crt-list, alpn, ca-file, verify, crl-file, ciphers, ciphersuites, curves, ssl-min-ver, ssl-max-ver, no-tlsv1x, strict-sni, no-ca-names)"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The server side of the listener; None without `ssl`.
    pub fn build(self) -> Result<(Option<Listen>, Vec<String>), String> {
        if !self.ssl {
            if self.crt.is_some() {
                return Err("`crt` needs `ssl`".into());
            }
            let w = self.tls.seen.iter().map(|w| format!("`{w}` has no effect without `ssl`")).collect();
            return Ok((None, w));
        }
        if self.crt.is_none() && !self.tls.has_crt_list() {
            return Err("`ssl` needs `crt FILE` or `crt-list FILE`".into());
        }
        let words = self.text.join(" ");
        let (cfg, lines, warnings) = self.tls.build(self.crt, self.alpn)?;
        if lines.is_some() {
            return Err("crt-list lines with their own options are not supported on a peers bind".into());
        }
        Ok((Some(Listen { config: cfg, words }), warnings))
    }
}
