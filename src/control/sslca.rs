//! `new|set|add|commit|abort|del|show ssl ca-file|crl-file` and `set|show ssl ocsp-response`
//! with HAProxy 2.6's syntax and replies (`add ssl ca-file` is HAProxy 2.8's).

use crate::tls::cafile::{Kind, Shown};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCmd {
    /// `show ssl ca-file|crl-file [FILE[:INDEX]|*FILE]`.
    Show(Kind, Option<String>),
    /// `set|add ssl ca-file FILE <<`, `set ssl crl-file FILE <<`, with the payload once read.
    Set {
        kind: Kind,
        file: String,
        add: bool,
        payload: Option<String>,
    },
    Commit(Kind, String),
    Abort(Kind, String),
    New(Kind, String),
    Del(Kind, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspCmd {
    /// `set ssl ocsp-response <base64>` or `<<` with the base64 as payload.
    Set(Option<String>),
    /// `show ssl ocsp-response [ID]`.
    Show(Option<String>),
}

fn kind_of(what: &str) -> Kind {
    if what == "crl-file" { Kind::Crl } else { Kind::Ca }
}

/// The words after `VERB ssl ca-file|crl-file|ocsp-response`; `Err` holds HAProxy's message.
pub fn parse(verb: &str, what: &str, rest: &[&str]) -> Result<super::sslcert::CertCmd, String> {
    use super::sslcert::CertCmd;
    if what == "ocsp-response" {
        return Ok(CertCmd::Ocsp(match (verb, rest) {
            ("set", ["<<"]) => OcspCmd::Set(None),
            ("set", [b64]) => OcspCmd::Set(Some(b64.to_string())),
            ("set", _) => return Err(OCSP_USAGE.into()),
            ("show", []) => OcspCmd::Show(None),
            ("show", [id]) => OcspCmd::Show(Some(id.to_string())),
            ("show", [_, extra, ..]) => return Err(format!("Unexpected argument '{extra}'.")),
            _ => return Err(format!("Unknown command: '{verb} ssl {what}'. Type 'help' for the list of commands.")),
        }));
    }
    let kind = kind_of(what);
    let name = match kind {
        Kind::Ca => "CA file name",
        Kind::Crl => "CRL file name",
    };
    let one = |usage: String| match rest {
        [f] => Ok(f.to_string()),
        _ => Err(usage),
    };
    Ok(CertCmd::File(match verb {
        "show" => match rest {
            [] => FileCmd::Show(kind, None),
            [f] => FileCmd::Show(kind, Some(f.to_string())),
            [_, extra, ..] => return Err(format!("Unexpected argument '{extra}'.")),
        },
        "set" | "add" if verb == "set" || kind == Kind::Ca => match rest {
            [f, "<<"] => FileCmd::Set { kind, file: f.to_string(), add: verb == "add", payload: None },
            _ => return Err(set_usage(kind, verb)),
        },
        "commit" => FileCmd::Commit(kind, one(format!("'commit ssl {what} expects a filename"))?),
        "abort" => FileCmd::Abort(kind, one(format!("'abort ssl {what}' expects a filename"))?),
        "new" => FileCmd::New(kind, one(format!("'new ssl {what}' expects a filename"))?),
        "del" => FileCmd::Del(kind, one(format!("'del ssl {what}' expects a {name}"))?),
        _ => return Err(format!("Unknown command: '{verb} ssl {what}'. Type 'help' for the list of commands.")),
    }))
}

const OCSP_USAGE: &str = "'set ssl ocsp-response' expects response in base64 encoding.";

/// HAProxy's usage line of `set|add ssl ca-file|crl-file`.
pub fn set_usage(kind: Kind, verb: &str) -> String {
    match kind {
        Kind::Ca => format!("'{verb} ssl ca-file expects a filename and CAs as a payload"),
        Kind::Crl => "'set ssl crl-file expects a filename and CRLs as a payload".into(),
    }
}

/// `set ssl ocsp-response` without a response.
pub fn ocsp_usage() -> String {
    OCSP_USAGE.into()
}

/// Hands a payload to `set|add ssl ca-file|crl-file` and `set ssl ocsp-response <<`.
pub fn attach(cmd: &mut super::sslcert::CertCmd, payload: String) {
    use super::sslcert::CertCmd;
    match cmd {
        CertCmd::File(FileCmd::Set { payload: p, .. }) => *p = Some(payload),
        CertCmd::Ocsp(OcspCmd::Set(p @ None)) => *p = Some(payload),
        _ => {}
    }
}

/// `show ssl ca-file|crl-file`: the transaction, then every file (CA files with their count).
pub fn show_list(kind: Kind, tx: Option<&Shown>, files: &[Shown]) -> String {
    let line = |s: &Shown, star: &str| match kind {
        Kind::Ca => format!("{star}{} - {} certificate(s)\n", s.file.display(), s.items.len()),
        Kind::Crl => format!("{star}{}\n", s.file.display()),
    };
    let mut out = String::new();
    if let Some(t) = tx {
        out.push_str("# transaction\n");
        out.push_str(&line(t, "*"));
    }
    out.push_str("# filename\n");
    for f in files {
        out.push_str(&line(f, ""));
    }
    out
}

/// `FILE:INDEX` (1-based, as HAProxy numbers certificates) or `FILE`.
pub fn split_index(name: &str) -> (&str, Option<usize>) {
    match name.rsplit_once(':') {
        Some((f, i)) if !f.is_empty() && i.parse::<usize>().is_ok() => (f, i.parse().ok()),
        _ => (name, None),
    }
}

/// `show ssl ca-file|crl-file FILE[:INDEX]`: HAProxy's fields for every item, or the one asked.
pub fn show_one(kind: Kind, name: &str, index: Option<usize>, shown: Option<Shown>) -> Result<String, String> {
    let Some(s) = shown else {
        return Err(format!("Can't display the {} file : Not found!", kind.word()));
    };
    // HAProxy prints nothing for an empty CA file or a CA index out of range.
    if kind == Kind::Ca && index.map_or(s.items.is_empty(), |i| i == 0 || i > s.items.len()) {
        return Ok(String::new());
    }
    let mut out = format!("Filename: {name}\nStatus: {}\n", if s.used { "Used" } else { "Unused" });
    for (i, der) in s.items.iter().enumerate() {
        if index.is_some_and(|n| n != i + 1) {
            continue;
        }
        match kind {
            Kind::Ca => {
                out.push_str(&format!(" \nCertificate #{}:\n", i + 1));
                super::sslcert::cert_lines(
                    std::slice::from_ref(&rustls_pki_types::CertificateDer::from(der.as_slice())),
                    &mut out,
                );
            }
            Kind::Crl => {
                out.push_str(&format!(" \nCertificate Revocation List #{}:\n", i + 1));
                crl_lines(der, &mut out);
            }
        }
    }
    Ok(out)
}

/// OpenSSL's names of signature algorithms, for the ones certificates and CRLs use.
fn sig_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    let s = oid.to_id_string();
    match s.as_str() {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.10" => "rsassaPss".into(),
        "1.3.101.112" => "ED25519".into(),
        _ => s,
    }
}

/// The lines HAProxy prints for one CRL.
fn crl_lines(der: &[u8], out: &mut String) {
    use x509_parser::prelude::FromDer;
    let Ok((_, crl)) = x509_parser::revocation_list::CertificateRevocationList::from_der(der) else {
        out.push_str("(unreadable)\n");
        return;
    };
    let version = crl.version().map_or(1, |v| v.0 + 1);
    out.push_str(&format!("Version {version}\n"));
    out.push_str(&format!("Signature Algorithm: {}\n", sig_name(&crl.signature_algorithm.algorithm)));
    let issuer = crate::tls::peer::PeerCert::dn(&crate::tls::peer::name_entries(crl.issuer()), None, 0);
    out.push_str(&format!("Issuer: {}\n", issuer.unwrap_or_default()));
    out.push_str(&format!("Last Update: {}\n", super::sslcert::openssl_time(&crl.last_update())));
    if let Some(n) = crl.next_update() {
        out.push_str(&format!("Next Update: {}\n", super::sslcert::openssl_time(&n)));
    }
    let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
    if revoked.is_empty() {
        out.push_str("No Revoked Certificates.\n");
        return;
    }
    out.push_str("Revoked Certificates:\n");
    for r in revoked {
        let serial: String = r.raw_serial().iter().map(|b| format!("{b:02X}")).collect();
        out.push_str(&format!(
            "    Serial Number: {serial}\n        Revocation Date: {}\n",
            super::sslcert::openssl_time(&r.revocation_date)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::sslcert::CertCmd;
    use super::*;

    #[test]
    fn commands_and_usage_errors() {
        assert_eq!(
            parse("set", "ca-file", &["/a.pem", "<<"]),
            Ok(CertCmd::File(FileCmd::Set { kind: Kind::Ca, file: "/a.pem".into(), add: false, payload: None }))
        );
        assert!(matches!(
            parse("add", "ca-file", &["/a.pem", "<<"]),
            Ok(CertCmd::File(FileCmd::Set { add: true, .. }))
        ));
        assert!(parse("add", "crl-file", &["/a", "<<"]).unwrap_err().starts_with("Unknown command"));
        assert_eq!(
            parse("set", "ca-file", &["/a.pem"]).unwrap_err(),
            "'set ssl ca-file expects a filename and CAs as a payload"
        );
        assert_eq!(
            parse("set", "crl-file", &[]).unwrap_err(),
            "'set ssl crl-file expects a filename and CRLs as a payload"
        );
        assert_eq!(parse("commit", "ca-file", &[]).unwrap_err(), "'commit ssl ca-file expects a filename");
        assert_eq!(parse("abort", "crl-file", &[]).unwrap_err(), "'abort ssl crl-file' expects a filename");
        assert_eq!(parse("del", "ca-file", &[]).unwrap_err(), "'del ssl ca-file' expects a CA file name");
        assert_eq!(parse("del", "crl-file", &[]).unwrap_err(), "'del ssl crl-file' expects a CRL file name");
        assert_eq!(parse("new", "crl-file", &[]).unwrap_err(), "'new ssl crl-file' expects a filename");
        assert_eq!(parse("set", "ocsp-response", &[]).unwrap_err(), OCSP_USAGE);
        assert_eq!(parse("set", "ocsp-response", &["<<"]), Ok(CertCmd::Ocsp(OcspCmd::Set(None))));
        assert_eq!(parse("show", "ocsp-response", &[]), Ok(CertCmd::Ocsp(OcspCmd::Show(None))));
        assert_eq!(split_index("/a.pem:2"), ("/a.pem", Some(2)));
        assert_eq!(split_index("/a:b.pem"), ("/a:b.pem", None));
    }

    #[test]
    fn payload_goes_to_set_and_ocsp() {
        let mut p = super::super::parse_line("set ssl ca-file /a.pem <<");
        super::super::sslcert::attach(&mut p, "PEM".into());
        assert!(
            matches!(&p[0].command, Ok(super::super::Command::SslCert(CertCmd::File(FileCmd::Set { payload: Some(x), .. }))) if x == "PEM")
        );
        let mut p = super::super::parse_line("set ssl ocsp-response <<");
        super::super::sslcert::attach(&mut p, "QUJD".into());
        assert!(
            matches!(&p[0].command, Ok(super::super::Command::SslCert(CertCmd::Ocsp(OcspCmd::Set(Some(x))))) if x == "QUJD")
        );
    }

    #[test]
    fn lists_and_crls_like_haproxy() {
        use std::sync::Arc;
        let s = |f: &str, n: usize| Shown { file: f.into(), used: true, items: Arc::new(vec![vec![]; n]) };
        assert_eq!(
            show_list(Kind::Ca, Some(&s("/a", 2)), &[s("/a", 1)]),
            "# transaction\n*/a - 2 certificate(s)\n# filename\n/a - 1 certificate(s)\n"
        );
        assert_eq!(show_list(Kind::Crl, None, &[s("/c", 1)]), "# filename\n/c\n");
        assert_eq!(show_one(Kind::Crl, "/x", None, None).unwrap_err(), "Can't display the CRL file : Not found!");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, "Test CA");
        let issuer = rcgen::Issuer::new(p, key);
        let crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&[0x10, 0x01]),
                revocation_time: rcgen::date_time_ymd(2024, 1, 2),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        let shown = Shown { file: "/c".into(), used: true, items: Arc::new(vec![crl.der().to_vec()]) };
        assert_eq!(
            show_one(Kind::Crl, "/c", None, Some(shown)).unwrap(),
            "Filename: /c\nStatus: Used\n \nCertificate Revocation List #1:\nVersion 2\nSignature Algorithm: ecdsa-with-SHA256\nIssuer: /CN=Test CA\nLast Update: Jan  1 00:00:00 2024 GMT\nNext Update: Jan  1 00:00:00 2099 GMT\nRevoked Certificates:\n    Serial Number: 1001\n        Revocation Date: Jan  2 00:00:00 2024 GMT\n"
        );
    }
}
