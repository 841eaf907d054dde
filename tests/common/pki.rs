//! A test CA made with rcgen, and the certificates and CRLs it signs (serials `0a NN`).

/// A self-signed CA (key usages for signing certificates and CRLs).
pub struct TestCa {
    pub pem: String,
    pub der: rustls_pki_types::CertificateDer<'static>,
    pub key_pem: String,
    pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// A CA whose subject is `CN=<cn>`.
    pub fn new(cn: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        TestCa { pem: cert.pem(), der: cert.der().clone(), key_pem, issuer: rcgen::Issuer::new(p, key) }
    }

    /// A client certificate, or a server one for `localhost`, and its key, as PEM. The subject is
    /// `O=<org>` (when given) and `CN=<cn>`; `key` signs it instead of a new key.
    pub fn leaf(
        &self,
        org: Option<&str>,
        cn: &str,
        serial: u8,
        client: bool,
        key: Option<&rcgen::KeyPair>,
    ) -> (String, String) {
        let own = rcgen::KeyPair::generate().unwrap();
        let key = key.unwrap_or(&own);
        let names = if client { vec![] } else { vec!["localhost".to_string()] };
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(o) = org {
            p.distinguished_name.push(rcgen::DnType::OrganizationName, o);
        }
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, serial]));
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        (p.signed_by(key, &self.issuer).unwrap().pem(), key.serialize_pem())
    }

    /// A CRL revoking the serials `0a NN` of `revoked`, as PEM.
    pub fn crl(&self, revoked: &[u8]) -> String {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(&[0x0a, *s]),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 2),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap()
        .pem()
        .unwrap()
    }
}
