//! How a server's certificate is checked beyond its chain: HAProxy's `verifyhost` (the name
//! checked need not be the SNI sent), `crl-file` (revoked server certificates) and, for peers,
//! HAProxy's rule that a certificate is checked for a name only when one was asked for, over
//! rustls' WebPki verifier.

use super::TlsError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;

/// A server's `verifyhost` and `crl-file` (with `verify required`).
#[derive(Debug, Clone, Default)]
pub struct ServerCheck {
    pub verifyhost: Option<ServerName<'static>>,
    pub crl_file: Option<PathBuf>,
    /// Check the chain only, not the name: HAProxy's rule when neither `sni` nor `verifyhost`
    /// is set (peers; backend servers are checked against their address instead).
    pub any_name: bool,
}

/// The chain against `roots` (and `crls`), the name against `host` when set, else against the
/// name the connection gives (its SNI or address), or no name with `any_name`.
pub(super) fn verifier(
    roots: rustls::RootCertStore,
    crls: Vec<Vec<u8>>,
    host: Option<ServerName<'static>>,
    any_name: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let mut b = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        b = b.with_crls(crls.into_iter().map(CertificateRevocationListDer::from));
    }
    let inner = b.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(match host {
        Some(host) => Arc::new(VerifyHost { inner, host: Some(host) }),
        None if any_name => Arc::new(VerifyHost { inner, host: None }),
        None => inner,
    })
}

/// The inner verifier against `host`, or (None) with a name mismatch forgiven: WebPki checks
/// the chain (and revocation) before the name, so a name error means the chain was good.
#[derive(Debug)]
struct VerifyHost {
    inner: Arc<WebPkiServerVerifier>,
    host: Option<ServerName<'static>>,
}

impl ServerCertVerifier for VerifyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(host) = &self.host else {
            return match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                r => r,
            };
        };
        self.inner.verify_server_cert(end_entity, intermediates, host, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
