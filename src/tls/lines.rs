//! Per-certificate options of `crt-list` lines (`cert.pem [alpn h2 verify required] name`):
//! HAProxy's sslbindconf, bind options that hold for the handshakes that select the line. rustls
//! takes one policy per `ServerConfig`, so each distinct option set gets a whole config built at
//! load (the bind's settings with the line's on top), and a handshake on such a bind reads the
//! ClientHello first, chooses the line as the certificate resolver would, then completes with
//! that line's config. Binds without per-line options keep the one-config accept path.

use super::certs::{ListLine, Resolver};
use super::{BindTls, ClientVerify};
use futures::FutureExt;
use futures::future::Either;
use rustls::ServerConfig;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// The options of one `crt-list` line, checked at load; each overrides the bind's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineOpts {
    pub alpn: Option<Vec<String>>,
    pub verify: Option<ClientVerify>,
    /// As written: relative paths are taken from `ca-base`, as on the bind.
    pub ca_file: Option<String>,
    pub crl_file: Option<String>,
    /// Policy words with their values (`ciphers`, `ssl-min-ver`, ...), in order.
    pub policy: Vec<(String, String)>,
    pub no_ca_names: bool,
}

/// What HAProxy 2.6 accepts between the brackets, for the error on anything else.
const KNOWN: &str =
    "alpn, ca-file, ciphers, ciphersuites, crl-file, curves, ecdhe, no-ca-names, ssl-min-ver, ssl-max-ver, verify";

impl LineOpts {
    /// The words between `[` and `]`. HAProxy's own list: other bind options (`no-tlsv12`,
    /// `strict-sni`, ...) are unknown here, as in HAProxy; the ones rustls cannot do are refused.
    pub fn parse(words: &[String]) -> Result<LineOpts, String> {
        let mut o = LineOpts::default();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            let mut val = |what: &str| it.next().cloned().ok_or_else(|| format!("`{w}` needs {what}"));
            match w.as_str() {
                "alpn" => {
                    let list: Vec<String> = val("a protocol list")?.split(',').map(str::to_string).collect();
                    if let Some(p) = list.iter().find(|p| *p != "h2" && *p != "http/1.1") {
                        return Err(format!("alpn: unsupported ALPN protocol {p:?} (h2, http/1.1)"));
                    }
                    o.alpn = Some(list);
                }
                "verify" => {
                    o.verify = Some(match val("none, optional or required")?.as_str() {
                        "none" => ClientVerify::None,
                        "optional" => ClientVerify::Optional,
                        "required" => ClientVerify::Required,
                        other => return Err(format!("verify: {other:?} is not none, optional or required")),
                    })
                }
                "ca-file" => o.ca_file = Some(val("a file")?),
                "crl-file" => o.crl_file = Some(val("a file")?),
                "ciphers" | "ciphersuites" | "curves" | "ecdhe" | "ssl-min-ver" | "ssl-max-ver" => {
                    let v = val("a value")?;
                    // The value is checked now (an unknown version is an error of this line).
                    let mut once = Some(v.clone());
                    super::policy::Policy::default().apply(w, &mut || once.take())?;
                    o.policy.push((w.clone(), v));
                }
                "npn" => {
                    return Err("`npn` is not supported by lbha: rustls has no NPN (use `alpn`, which every current client speaks)".into());
                }
                "no-ca-names" => o.no_ca_names = true,
                "allow-0rtt" | "ca-verify-file" => {
                    return Err(format!("`{w}` is not supported by lbha yet (neither on a bind)"));
                }
                other => return Err(format!("unknown ssl keyword {other:?} in [...] (a crt-list line takes {KNOWN})")),
            }
        }
        Ok(o)
    }

    /// The bind's settings with this line's on top, and what the line sets to no effect.
    pub fn over(&self, bind: &BindTls) -> Result<(BindTls, Vec<String>), String> {
        let mut o = bind.clone();
        let base = bind.ca_base.clone().unwrap_or_default();
        if let Some(a) = &self.alpn {
            o.alpn = a.clone();
        }
        if let Some(v) = self.verify {
            o.verify = v;
        }
        if let Some(c) = &self.ca_file {
            o.ca_file = Some(base.join(c));
        }
        if let Some(c) = &self.crl_file {
            o.crl_file = Some(base.join(c));
        }
        o.no_ca_names |= self.no_ca_names;
        for (w, v) in &self.policy {
            let mut once = Some(v.clone());
            o.policy.apply(w, &mut || once.take())?;
        }
        let mut warnings = Vec::new();
        if o.verify == ClientVerify::None {
            if self.ca_file.is_some() {
                warnings.push("ca-file: no client certificate is asked for with `verify none`".to_string());
            }
            if self.crl_file.is_some() {
                warnings.push("crl-file: has no effect with `verify none`".to_string());
            }
        }
        Ok((o, warnings))
    }
}

/// One distinct option set of a bind's `crt-list` lines, and the first line that gave it.
#[derive(Debug, Clone)]
pub struct Group {
    pub words: Vec<String>,
    pub opts: LineOpts,
    pub list: PathBuf,
    pub line: usize,
}

/// The group number of a line with options (1 for the first set in `groups`): lines with the
/// same words share one config.
pub fn group_of(groups: &mut Vec<Group>, list: &Path, l: &ListLine) -> Result<usize, String> {
    if let Some(i) = groups.iter().position(|g| g.words == l.options) {
        return Ok(i + 1);
    }
    let opts = LineOpts::parse(&l.options)?;
    groups.push(Group { words: l.options.clone(), opts, list: list.to_path_buf(), line: l.line });
    Ok(groups.len())
}

/// A bind whose `crt-list` lines have options: the config of each option group (0 is the bind's
/// own) and the resolver that says which line a ClientHello selects.
#[derive(Debug)]
pub struct PerLine {
    pub all: Arc<Resolver>,
    pub configs: Vec<Arc<ServerConfig>>,
}

impl PerLine {
    /// The config of the line the handshake selects (the bind's when none: it refuses the
    /// handshake the same way under `strict-sni`).
    pub fn config_for(&self, hello: &rustls::server::ClientHello<'_>) -> Arc<ServerConfig> {
        let g = self.all.group_of(hello.server_name(), hello.signature_schemes()).unwrap_or(0);
        self.configs.get(g).unwrap_or(&self.configs[0]).clone()
    }
}

/// A TLS accept that did not complete: the error, and whether the server had answered a
/// ClientHello yet (HAProxy tells a close before it from a failure after it).
#[derive(Debug)]
pub struct HandshakeError {
    pub error: std::io::Error,
    pub before_hello: bool,
}

type Accepted<IO> = Result<tokio_rustls::server::TlsStream<IO>, HandshakeError>;
type Boxed<IO> = Pin<Box<dyn Future<Output = Accepted<IO>> + Send>>;

/// The TLS accept of a bind: the plain one-config accept when it has no per-line options,
/// else ClientHello first and the selected line's config (boxed, so the plain path is unchanged).
pub fn accept<IO>(tls: Arc<ServerConfig>, lines: Option<Arc<PerLine>>, io: IO) -> impl Future<Output = Accepted<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + AsRawFd + 'static,
{
    match lines {
        None => Either::Left(
            tokio_rustls::TlsAcceptor::from(tls)
                .accept(io)
                .into_fallible()
                .map(|r| r.map_err(|(error, io)| HandshakeError { error, before_hello: !answered(io.as_raw_fd()) })),
        ),
        Some(lines) => Either::Right(Box::pin(async move {
            let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
                .await
                .map_err(|error| HandshakeError { error, before_hello: true })?;
            let cfg = lines.config_for(&start.client_hello());
            start.into_stream(cfg).await.map_err(|error| HandshakeError { error, before_hello: false })
        }) as Boxed<IO>),
    }
}

/// Whether this end of a TCP connection has sent anything (the server's answer to a
/// ClientHello): bytes the peer acknowledged or segments in flight, from `TCP_INFO`.
fn answered(fd: std::os::fd::RawFd) -> bool {
    use nix::libc;
    // SAFETY: `getsockopt` writes at most `len` bytes into the zeroed `tcp_info` it is given.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let ok = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) == 0 };
    ok && (info.tcpi_bytes_acked > 0 || info.tcpi_unacked > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse_and_refuse_what_rustls_cannot_do() {
        let o = LineOpts::parse(&words("alpn h2,http/1.1 verify required ca-file ca.pem ssl-min-ver TLSv1.3")).unwrap();
        assert_eq!(o.alpn, Some(vec!["h2".to_string(), "http/1.1".to_string()]));
        assert_eq!(o.verify, Some(ClientVerify::Required));
        assert_eq!(o.ca_file.as_deref(), Some("ca.pem"));
        assert_eq!(o.policy, [("ssl-min-ver".to_string(), "TLSv1.3".to_string())]);
        assert!(LineOpts::parse(&words("npn h2")).unwrap_err().contains("NPN"));
        assert!(LineOpts::parse(&words("allow-0rtt")).unwrap_err().contains("not supported"));
        assert!(LineOpts::parse(&words("no-ca-names")).unwrap().no_ca_names);
        let e = LineOpts::parse(&words("no-tlsv12")).unwrap_err();
        assert!(e.starts_with("unknown ssl keyword \"no-tlsv12\""), "HAProxy refuses it too: {e}");
        assert!(LineOpts::parse(&words("verify sometimes")).unwrap_err().contains("sometimes"));
        assert!(LineOpts::parse(&words("ssl-min-ver TLSv9")).unwrap_err().contains("TLSv9"));
        assert!(LineOpts::parse(&words("alpn h3")).unwrap_err().contains("h3"));
        assert!(LineOpts::parse(&words("ciphers")).unwrap_err().contains("`ciphers` needs"));
    }

    #[test]
    fn line_options_override_the_bind() {
        let bind = BindTls {
            alpn: vec!["http/1.1".into()],
            ca_file: Some("/b/ca.pem".into()),
            ca_base: Some("/etc/ca".into()),
            ..Default::default()
        };
        let (o, w) = LineOpts::parse(&words("alpn h2 verify optional crl-file crl.pem")).unwrap().over(&bind).unwrap();
        assert_eq!(o.alpn, ["h2"]);
        assert_eq!((o.verify, o.ca_file.as_deref()), (ClientVerify::Optional, Some(Path::new("/b/ca.pem"))));
        assert_eq!(o.crl_file.as_deref(), Some(Path::new("/etc/ca/crl.pem")));
        assert!(w.is_empty());
        let (_, w) = LineOpts::parse(&words("ca-file x.pem")).unwrap().over(&bind).unwrap();
        assert!(w[0].starts_with("ca-file"), "{w:?}");
        let (o, _) = LineOpts::parse(&words("ssl-min-ver TLSv1.3")).unwrap().over(&bind).unwrap();
        assert_eq!(o.policy.resolve().unwrap().versions, [&rustls::version::TLS13]);
    }

    #[test]
    fn same_options_share_a_group() {
        let mut g = Vec::new();
        let line = |n, opts: &str| ListLine { line: n, file: "/c.pem".into(), options: words(opts), filters: vec![] };
        assert_eq!(group_of(&mut g, Path::new("/l"), &line(1, "alpn h2")).unwrap(), 1);
        assert_eq!(group_of(&mut g, Path::new("/l"), &line(2, "verify none")).unwrap(), 2);
        assert_eq!(group_of(&mut g, Path::new("/l"), &line(3, "alpn h2")).unwrap(), 1);
        assert!(group_of(&mut g, Path::new("/l"), &line(4, "npn h2")).is_err());
        assert_eq!((g.len(), g[1].line), (2, 2));
    }
}
