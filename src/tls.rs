//! TLS settings built at config load: certificate files are read and checked once, so a bad or
//! missing file is a config error naming it, and a handshake never touches the disk.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod cafile;
pub mod certs;
pub mod lines;
pub mod ocsp;
pub mod peer;
pub mod policy;
pub mod random;
pub mod store;
mod verifyhost;
pub use verifyhost::ServerCheck;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: String },
    #[error("{path} holds no certificate")]
    NoCert { path: PathBuf },
    #[error("{path} holds no private key")]
    NoKey { path: PathBuf },
    #[error("{path}: key does not fit the certificate or is not supported: {error}")]
    BadKey { path: PathBuf, error: String },
    #[error("{path}: no .pem file in this directory")]
    EmptyDir { path: PathBuf },
    #[error("{path}: {error}")]
    Ca { path: PathBuf, error: String },
    #[error("{0}")]
    Policy(String),
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A PEM file with the certificate chain and the private key (HAProxy's `crt` file).
fn load_pair(path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read_err = |e: rustls_pki_types::pem::Error| TlsError::Read { path: path.to_path_buf(), error: e.to_string() };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(path).map_err(read_err)?.collect::<Result<_, _>>().map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCert { path: path.to_path_buf() });
    }
    let key = load_key(path)?;
    let mut ck = CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| TlsError::BadKey { path: path.to_path_buf(), error: e.to_string() })?;
    // HAProxy staples `FILE.ocsp` (a DER OCSP response) when it exists.
    let ocsp = PathBuf::from(format!("{}.ocsp", path.display()));
    if ocsp.exists() {
        let der = std::fs::read(&ocsp).map_err(|e| TlsError::Read { path: ocsp.clone(), error: e.to_string() })?;
        if der.is_empty() {
            return Err(TlsError::Read { path: ocsp, error: "empty OCSP response".into() });
        }
        ck.ocsp = Some(der);
    }
    Ok(Arc::new(ck))
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: path.to_path_buf() },
        e => TlsError::Read { path: path.to_path_buf(), error: e.to_string() },
    })
}

/// `crt` may be a file or a directory of `.pem` files (one certificate each, chosen by SNI; the
/// first in name order is the default, as in HAProxy).
pub fn load_certs(crt: &Path) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    Ok(load_files(crt)?.into_iter().map(|(_, k)| k).collect())
}

/// [`load_certs`] with the file each certificate came from.
pub fn load_files(crt: &Path) -> Result<Vec<(PathBuf, Arc<CertifiedKey>)>, TlsError> {
    if crt.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(crt)
            .map_err(|e| TlsError::Read { path: crt.to_path_buf(), error: e.to_string() })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(TlsError::EmptyDir { path: crt.to_path_buf() });
        }
        files.into_iter().map(|f| load_pair(&f).map(|k| (f, k))).collect()
    } else {
        Ok(vec![(crt.to_path_buf(), load_pair(crt)?)])
    }
}

/// Server side of a `bind ... ssl crt FILE [alpn LIST]`.
pub fn server_config(crt: &Path, alpn: &[String]) -> Result<Arc<ServerConfig>, TlsError> {
    let opts = BindTls { crt: vec![crt.to_path_buf()], alpn: alpn.to_vec(), ..Default::default() };
    Ok(bind_config(&opts)?.0)
}

/// HAProxy's `verify` on a bind: whether a client certificate is asked for and required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientVerify {
    #[default]
    None,
    Optional,
    Required,
}

/// Everything a `bind ... ssl` line sets.
#[derive(Debug, Clone, Default)]
pub struct BindTls {
    /// `crt` files or directories, in order: the first certificate is the default.
    pub crt: Vec<PathBuf>,
    pub crt_list: Vec<PathBuf>,
    /// `strict-sni`: refuse a handshake whose SNI no certificate serves.
    pub strict_sni: bool,
    pub alpn: Vec<String>,
    pub policy: policy::Policy,
    pub verify: ClientVerify,
    pub ca_file: Option<PathBuf>,
    pub crl_file: Option<PathBuf>,
    /// `crt-base`: where the relative certificate paths of `crt-list` lines are taken from (else
    /// the list's directory).
    pub crt_base: Option<PathBuf>,
    /// `ca-base`: where relative `ca-file`/`crl-file` of `crt-list` lines are taken from.
    pub ca_base: Option<PathBuf>,
    /// `no-ca-names`: no CA names in the request for a client certificate.
    pub no_ca_names: bool,
}

/// A CA file's certificates, checked as trust anchors, and their DER (what the runtime API
/// shows and replaces).
fn ca_roots(ca: &Path) -> Result<(rustls::RootCertStore, Vec<Vec<u8>>), TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut ders = Vec::new();
    let err = |e: String| TlsError::Ca { path: ca.to_path_buf(), error: e };
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| err(e.to_string()))?;
    for c in certs {
        let c = c.map_err(|e| err(e.to_string()))?;
        ders.push(c.to_vec());
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCert { path: ca.to_path_buf() });
    }
    Ok((roots, ders))
}

/// What [`bind_config`] builds.
pub type BindConfig = (Arc<ServerConfig>, Option<Arc<lines::PerLine>>, Vec<String>);

/// The rustls server config of a bind, the configs of its `crt-list` lines with options (when
/// any), and the policy's warnings.
pub fn bind_config(o: &BindTls) -> Result<BindConfig, TlsError> {
    let mut entries = Vec::new();
    for crt in &o.crt {
        entries.extend(load_files(crt)?.into_iter().map(|(file, key)| certs::Entry::own(key, Some(file))));
    }
    let mut groups = Vec::new();
    for list in &o.crt_list {
        entries.extend(certs::load_crt_list(list, o.crt_base.as_deref(), &mut groups)?);
    }
    let resolver = Arc::new(certs::Resolver::new(entries, o.strict_sni));
    store::register(&resolver);
    if groups.is_empty() {
        let (cfg, w) = server_for(o, resolver)?;
        return Ok((cfg, None, w));
    }
    let group = |g| Arc::new(certs::GroupResolver { all: resolver.clone(), group: g });
    let (base, mut warnings) = server_for(o, group(0))?;
    let mut configs = vec![base.clone()];
    for (i, g) in groups.iter().enumerate() {
        let at = |e: String| TlsError::Ca { path: g.list.clone(), error: format!("line {}: {e}", g.line) };
        let (lo, lw) = g.opts.over(o).map_err(at)?;
        let (cfg, w) = server_for(&lo, group(i + 1)).map_err(|e| at(e.to_string()))?;
        let fresh: Vec<String> = lw.into_iter().chain(w.into_iter().filter(|w| !warnings.contains(w))).collect();
        warnings.extend(fresh.into_iter().map(|w| format!("{}: line {}: {w}", g.list.display(), g.line)));
        configs.push(cfg);
    }
    Ok((base, Some(Arc::new(lines::PerLine { all: resolver, configs })), warnings))
}

/// One rustls server config: `o`'s policy, client verification and ALPN over `certs`.
fn server_for(
    o: &BindTls,
    certs: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<(Arc<ServerConfig>, Vec<String>), TlsError> {
    let r = o.policy.resolve().map_err(TlsError::Policy)?;
    let provider = Arc::new(r.provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&r.versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut session_storage = None;
    let builder = match (o.verify, &o.ca_file) {
        (ClientVerify::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Policy("`verify optional|required` needs `ca-file`".into())),
        (v, Some(ca)) => {
            let roots: Vec<Vec<u8>> = ca_roots(ca)?.1;
            let crl = match &o.crl_file {
                Some(crl) => Some((crl.as_path(), load_crls(crl)?)),
                None => None,
            };
            // Swappable by `commit ssl ca-file|crl-file`; it also keeps the sessions.
            let auth = cafile::ClientAuth::new(ca, roots, crl, v == ClientVerify::Optional, provider)
                .map_err(TlsError::Rustls)?;
            if o.no_ca_names {
                auth.hide_ca_names();
            }
            session_storage = Some(auth.clone() as Arc<dyn rustls::server::StoresServerSessions>);
            builder.with_client_cert_verifier(auth)
        }
    };
    let mut cfg = builder.with_cert_resolver(certs);
    cfg.alpn_protocols = o.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    cfg.ignore_client_order = r.server_order;
    if let Some(s) = session_storage {
        cfg.session_storage = s;
    }
    Ok((Arc::new(cfg), r.warnings))
}

/// The CRLs of a `crl-file`, as DER.
fn load_crls(crl: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let err = |e: String| TlsError::Ca { path: crl.to_path_buf(), error: e };
    let crls = rustls_pki_types::CertificateRevocationListDer::pem_file_iter(crl)
        .map_err(|e| err(e.to_string()))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if crls.is_empty() {
        return Err(err("holds no CRL".into()));
    }
    Ok(crls)
}

/// `verify none`: HAProxy's choice for servers with self-signed certificates. Signatures are still
/// checked so the handshake is sound; only the chain and name are not.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Client side towards a server with `ssl`: `verify = "none"`, or `"required"` against `ca_file`.
pub fn client_config(verify: bool, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    Ok(server_side_config(verify, ca_file, None, &ServerCheck::default(), &policy::Policy::default())?.0)
}

/// Client side towards a server: verification, HAProxy's `crt` (a client certificate) and the
/// policy (`ciphers`, `ssl-min-ver`, ...); with the policy's warnings.
pub fn server_side_config(
    verify: bool,
    ca_file: Option<&Path>,
    crt: Option<&Path>,
    check: &ServerCheck,
    policy: &policy::Policy,
) -> Result<(Arc<ClientConfig>, Vec<String>), TlsError> {
    let r = policy.resolve().map_err(TlsError::Policy)?;
    let provider = Arc::new(r.provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&r.versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = if verify {
        let roots = match ca_file {
            Some(ca) => ca_roots(ca)?.0,
            None => rustls::RootCertStore::empty(),
        };
        let crls = match &check.crl_file {
            Some(crl) => load_crls(crl)?,
            None => Vec::new(),
        };
        builder.dangerous().with_custom_certificate_verifier(verifyhost::verifier(
            roots,
            crls,
            check.verifyhost.clone(),
            check.any_name,
            provider.clone(),
        )?)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    let mut cfg = match crt {
        Some(crt) => {
            let ck = load_pair(crt)?;
            builder
                .with_client_auth_cert(ck.cert.clone(), load_key(crt)?)
                .map_err(|e| TlsError::BadKey { path: crt.to_path_buf(), error: e.to_string() })?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if policy.no_tls_tickets {
        cfg.resumption = cfg.resumption.clone().tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
    }
    Ok((Arc::new(cfg), r.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, file: &str, names: &[&str]) -> PathBuf {
        let ck = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let p = dir.join(file);
        std::fs::write(&p, format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem())).unwrap();
        p
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbha-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_pairs_and_reports_bad_files() {
        let d = tmp("load");
        let good = write_pair(&d, "a.pem", &["a.example"]);
        assert!(server_config(&good, &["h2".into()]).is_ok());
        let only_cert = d.join("cert-only.pem");
        let ck = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        std::fs::write(&only_cert, ck.cert.pem()).unwrap();
        assert!(matches!(server_config(&only_cert, &[]), Err(TlsError::NoKey { .. })));
        let only_key = d.join("key-only.pem");
        std::fs::write(&only_key, ck.signing_key.serialize_pem()).unwrap();
        assert!(matches!(server_config(&only_key, &[]), Err(TlsError::NoCert { .. })));
        let mismatched = d.join("mismatch.pem");
        let other = rcgen::generate_simple_self_signed(vec!["y".to_string()]).unwrap();
        std::fs::write(&mismatched, format!("{}{}", ck.cert.pem(), other.signing_key.serialize_pem())).unwrap();
        assert!(matches!(server_config(&mismatched, &[]), Err(TlsError::BadKey { .. })));
        assert!(matches!(server_config(&d.join("missing.pem"), &[]), Err(TlsError::Read { .. })));
        let empty = d.join("empty-dir");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(server_config(&empty, &[]), Err(TlsError::EmptyDir { .. })));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sni_picks_the_matching_certificate() {
        let d = tmp("sni");
        write_pair(&d, "1-default.pem", &["default.example"]);
        write_pair(&d, "2-shop.pem", &["shop.example", "*.shop.example"]);
        let entries = load_certs(&d).unwrap().into_iter().map(|key| certs::Entry::own(key, None)).collect();
        let r = certs::Resolver::new(entries, false);
        assert_eq!(&*r.candidates("shop.example"), [1]);
        assert_eq!(&*r.candidates("api.shop.example"), [1]);
        assert_eq!(&*r.candidates("default.example"), [0]);
        assert!(r.candidates("unknown.example").is_empty());
        let any = [rustls::SignatureScheme::ECDSA_NISTP256_SHA256];
        let default = r.pick(Some("unknown.example"), &any).unwrap();
        assert_eq!(default.cert, r.pick(Some("default.example"), &any).unwrap().cert, "the first is the default");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn crt_list_options_build_one_config_per_set_with_located_errors() {
        let d = tmp("lines");
        write_pair(&d, "a.pem", &["a.example"]);
        write_pair(&d, "b.pem", &["b.example"]);
        let list = d.join("list.txt");
        let build = |text: &str| {
            std::fs::write(&list, text).unwrap();
            bind_config(&BindTls { crt_list: vec![list.clone()], alpn: vec!["http/1.1".into()], ..Default::default() })
        };
        let (_, lines, w) = build("a.pem\nb.pem [alpn h2]\n").unwrap();
        let lines = lines.unwrap();
        assert_eq!(lines.configs.len(), 2);
        assert_eq!(lines.configs[1].alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(lines.configs[0].alpn_protocols, [b"http/1.1".to_vec()], "the bind's own");
        assert!(w.is_empty(), "{w:?}");
        let (_, lines, w) = build(
            "a.pem [ciphers AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256]\nb.pem [alpn h2] b.example\nb.pem [alpn h2]\n",
        )
        .unwrap();
        assert_eq!(lines.unwrap().configs.len(), 3, "equal option sets share a config");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("list.txt: line 1: ciphers") && w[0].contains("AES128-SHA"), "{w:?}");
        let e = build("a.pem\n\nb.pem [ssl-max-ver TLSv1.1]\n").err().unwrap().to_string();
        assert!(e.contains("list.txt: line 3: ssl-max-ver TLSv1.1"), "{e}");
        let e = build("a.pem [ca-file nope.pem verify required]\n").err().unwrap().to_string();
        assert!(e.contains("list.txt: line 1") && e.contains("nope.pem"), "{e}");
        let (_, lines, _) = build("a.pem []\nb.pem\n").unwrap();
        assert!(lines.is_none(), "no options: the one-config path");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
