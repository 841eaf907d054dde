//! What the `ssl_c_*` fetches read from a client certificate, parsed once after the handshake.

use sha1::Digest;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// A client certificate as HAProxy's fetches show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    pub der: Vec<u8>,
    /// Subject and issuer entries in certificate order, with OpenSSL's short names (`CN`, `O`).
    pub subject: Vec<(String, String)>,
    pub issuer: Vec<(String, String)>,
    pub serial: Vec<u8>,
    pub sha1: Vec<u8>,
    /// `YYMMDDhhmmssZ`, as HAProxy prints ASN.1 UTCTime.
    pub not_after: String,
    pub not_before: String,
}

fn entries(name: &X509Name<'_>) -> Vec<(String, String)> {
    let reg = x509_parser::objects::oid_registry();
    name.iter_attributes()
        .map(|a| {
            let key = match x509_parser::objects::oid2abbrev(a.attr_type(), reg) {
                Ok("Email") | Ok("emailAddress") => "emailAddress".to_string(),
                Ok(s) => s.to_string(),
                Err(_) => a.attr_type().to_id_string(),
            };
            let val = a.as_str().map(str::to_string).unwrap_or_else(|_| String::from_utf8_lossy(a.as_slice()).into());
            (key, val)
        })
        .collect()
}

/// A name's entries with OpenSSL's short names (for [`PeerCert::dn`]).
pub fn name_entries(name: &X509Name<'_>) -> Vec<(String, String)> {
    entries(name)
}

fn utc(t: &x509_parser::time::ASN1Time) -> String {
    let d = t.to_datetime();
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        d.year().rem_euclid(100),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

impl PeerCert {
    pub fn parse(der: &[u8]) -> Option<PeerCert> {
        let (_, c) = X509Certificate::from_der(der).ok()?;
        Some(PeerCert {
            der: der.to_vec(),
            subject: entries(c.subject()),
            issuer: entries(c.issuer()),
            serial: c.raw_serial().to_vec(),
            sha1: sha1::Sha1::digest(der).to_vec(),
            not_after: utc(&c.validity().not_after),
            not_before: utc(&c.validity().not_before),
        })
    }

    /// HAProxy's `ssl_c_s_dn([entry[,occ]])`: `/C=FR/O=Org/CN=name`, or one entry's value
    /// (`occ` counts from 1, negative from the end).
    pub fn dn(entries: &[(String, String)], entry: Option<&str>, occ: i64) -> Option<String> {
        let Some(want) = entry else {
            return Some(entries.iter().map(|(k, v)| format!("/{k}={v}")).collect());
        };
        let found: Vec<&String> = entries.iter().filter(|(k, _)| k == want).map(|(_, v)| v).collect();
        let i = match occ {
            0 => found.len().checked_sub(1)?,
            n if n > 0 => (n - 1) as usize,
            n => found.len().checked_sub(n.unsigned_abs() as usize)?,
        };
        found.get(i).map(|s| s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_serial_and_digest() {
        let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CountryName, "FR");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Acme");
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let p = PeerCert::parse(cert.der()).unwrap();
        assert_eq!(PeerCert::dn(&p.subject, None, 0).unwrap(), "/C=FR/O=Acme/CN=alice");
        assert_eq!(PeerCert::dn(&p.issuer, Some("CN"), 0).unwrap(), "alice");
        assert_eq!(PeerCert::dn(&p.subject, Some("OU"), 0), None);
        assert_eq!(p.serial, [1, 2, 3]);
        assert_eq!(p.sha1, sha1::Sha1::digest(cert.der()).to_vec());
        assert_eq!(p.not_after.len(), 13);
        assert!(PeerCert::parse(b"not a certificate").is_none());
    }
}
