//! How a server's certificate is checked beyond its chain: HAProxy's `verifyhost` (the name
//! checked need not be the SNI sent) and `crl-file` (revoked server certificates), over
//! rustls' WebPki verifier.

use super::TlsError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;

/// A server's `verifyhost` and `crl-file` (with `verify required`).
#[derive(Debug, Clone, Default)]
pub struct ServerCheck {
    pub verifyhost: Option<ServerName<'static>>,
    pub crl_file: Option<PathBuf>,
}

/// The chain against `roots` (and `crls`), the name against `host` when set, else against the
/// name the connection gives (its SNI or address).
pub(super) fn verifier(
    roots: rustls::RootCertStore,
    crls: Vec<Vec<u8>>,
    host: Option<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let mut b = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        b = b.with_crls(crls.into_iter().map(CertificateRevocationListDer::from));
    }
    let inner = b.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok(match host {
        Some(host) => Arc::new(VerifyHost { inner, host }),
        None => inner,
    })
}

#[derive(Debug)]
struct VerifyHost {
    inner: Arc<WebPkiServerVerifier>,
    host: ServerName<'static>,
}

impl ServerCertVerifier for VerifyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.host, ocsp, now)
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
