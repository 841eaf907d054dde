//! `set|commit|abort|show|new|del ssl cert` with HAProxy 2.6's syntax and replies, and the
//! payload that follows a command ending in `<<` (the next lines, up to an empty line).

use crate::tls::store::Status;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertCmd {
    /// `show ssl cert [FILE|*FILE]`.
    Show(Option<String>),
    /// `set ssl cert FILE <<`, with the payload once read.
    Set {
        file: String,
        payload: Option<String>,
    },
    Commit(String),
    Abort(String),
    New(String),
    Del(String),
    /// `VERB ssl ca-file|crl-file ...`.
    File(super::sslca::FileCmd),
    /// `set|show ssl ocsp-response`.
    Ocsp(super::sslca::OcspCmd),
}

impl CertCmd {
    /// Reading needs operator, changing admin (HAProxy's levels for these commands).
    pub fn level(&self) -> super::parse::Level {
        match self {
            CertCmd::Show(_)
            | CertCmd::File(super::sslca::FileCmd::Show(..))
            | CertCmd::Ocsp(super::sslca::OcspCmd::Show(_)) => super::parse::Level::Operator,
            _ => super::parse::Level::Admin,
        }
    }
}

/// Whether a command line announces a payload (`<<` as its last word).
pub fn wants_payload(line: &str) -> bool {
    line.trim_end().strip_suffix("<<").is_some_and(|rest| rest.is_empty() || rest.ends_with(char::is_whitespace))
}

/// Hands the payload to the line's last command, if it takes one.
pub fn attach(parsed: &mut [super::Parsed], payload: String) {
    match parsed.last_mut() {
        Some(super::Parsed { command: Ok(super::Command::SslCert(CertCmd::Set { payload: p, .. })), .. }) => {
            *p = Some(payload)
        }
        Some(super::Parsed { command: Ok(super::Command::SslCert(c)), .. }) => super::sslca::attach(c, payload),
        Some(super::Parsed { command: Ok(super::Command::Map(m)), .. }) => super::maps::attach(m, payload),
        _ => {}
    }
}

const SET_USAGE: &str = "'set ssl cert expects a filename and a certificate as a payload";

/// The words after `VERB ssl cert`; `Err` holds HAProxy's message.
pub fn parse(verb: &str, rest: &[&str]) -> Result<CertCmd, String> {
    let one = |usage: &str| match rest {
        [f] => Ok(f.to_string()),
        _ => Err(usage.to_string()),
    };
    Ok(match verb {
        "show" => match rest {
            [] => CertCmd::Show(None),
            [f] => CertCmd::Show(Some(f.to_string())),
            [_, extra, ..] => return Err(format!("Unexpected argument '{extra}'.")),
        },
        "set" => match rest {
            [f, "<<"] => CertCmd::Set { file: f.to_string(), payload: None },
            _ => return Err(SET_USAGE.into()),
        },
        "commit" => CertCmd::Commit(one("'commit ssl cert expects a filename")?),
        "abort" => CertCmd::Abort(one("'abort ssl cert' expects a filename")?),
        "new" => CertCmd::New(one("'new ssl cert' expects a filename")?),
        "del" => CertCmd::Del(one("'del ssl cert' expects a certificate name")?),
        _ => return Err(format!("Unknown command: '{verb} ssl cert'. Type 'help' for the list of commands.")),
    })
}

/// `set ssl cert` without its payload (an empty line came at once).
pub fn missing_payload() -> String {
    SET_USAGE.into()
}

/// `show ssl cert`: the transaction, then every file.
pub fn show_list(tx: Option<&std::path::Path>, files: &[std::path::PathBuf]) -> String {
    let mut out = String::new();
    if let Some(t) = tx {
        out.push_str(&format!("# transaction\n*{}\n", t.display()));
    }
    out.push_str("# filename\n");
    for f in files {
        out.push_str(&format!("{}\n", f.display()));
    }
    out
}

/// OpenSSL's `ASN1_TIME_print`: `Dec  6 10:10:24 2026 GMT`.
pub(crate) fn openssl_time(t: &x509_parser::time::ASN1Time) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let d = t.to_datetime();
    format!(
        "{} {:2} {:02}:{:02}:{:02} {} GMT",
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.year()
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The lines HAProxy prints for a certificate and its chain.
pub(crate) fn cert_lines(chain: &[rustls_pki_types::CertificateDer<'_>], out: &mut String) {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let Some(der) = chain.first() else { return };
    let (Ok((_, c)), Some(p)) = (X509Certificate::from_der(der), crate::tls::peer::PeerCert::parse(der)) else {
        return;
    };
    let dn = |e: &[(String, String)]| crate::tls::peer::PeerCert::dn(e, None, 0).unwrap_or_default();
    out.push_str(&format!("Serial: {}\n", hex(&p.serial)));
    out.push_str(&format!("notBefore: {}\n", openssl_time(&c.validity().not_before)));
    out.push_str(&format!("notAfter: {}\n", openssl_time(&c.validity().not_after)));
    // Printed even when empty, as HAProxy does.
    let names: Vec<String> = match c.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(n) => Some(format!("DNS:{n}")),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    out.push_str(&format!("Subject Alternative Name: {}\n", names.join(", ")));
    let alg = match c.public_key().parsed() {
        Ok(PublicKey::EC(ec)) => format!("EC{}", ec.key_size()),
        Ok(PublicKey::RSA(rsa)) => format!("RSA{}", rsa.key_size()),
        _ => "Unknown".into(),
    };
    out.push_str(&format!("Algorithm: {alg}\n"));
    out.push_str(&format!("SHA1 FingerPrint: {}\n", hex(&p.sha1)));
    out.push_str(&format!("Subject: {}\n", dn(&p.subject)));
    out.push_str(&format!("Issuer: {}\n", dn(&p.issuer)));
    for der in chain.iter().skip(1) {
        if let Some(p) = crate::tls::peer::PeerCert::parse(der) {
            out.push_str(&format!("Chain Subject: {}\nChain Issuer: {}\n", dn(&p.subject), dn(&p.issuer)));
        }
    }
}

/// `show ssl cert FILE`: HAProxy's fields.
pub fn show_one(name: &str, st: Option<Status>) -> Result<String, String> {
    let Some(st) = st else {
        return Err("Can't display the certificate: Not found or the certificate is a bundle!".into());
    };
    let mut out = format!("Filename: {name}\n");
    match &st {
        Status::Used(ck) => {
            out.push_str("Status: Used\n");
            cert_lines(&ck.cert, &mut out);
        }
        Status::Unused(ck) => {
            out.push_str("Status: Unused\n");
            cert_lines(&ck.cert, &mut out);
        }
        Status::Empty => out.push_str("Status: Empty\n"),
    }
    let key = match &st {
        Status::Used(ck) | Status::Unused(ck) => ck.ocsp.as_deref().and_then(|d| crate::tls::ocsp::parse(d).ok()),
        Status::Empty => None,
    };
    out.push_str(&format!("OCSP Response Key: {}\n", key.map(|r| crate::tls::ocsp::key_hex(&r)).unwrap_or_default()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_usage_errors() {
        assert_eq!(parse("show", &[]), Ok(CertCmd::Show(None)));
        assert_eq!(parse("show", &["*/a.pem"]), Ok(CertCmd::Show(Some("*/a.pem".into()))));
        assert_eq!(parse("set", &["/a.pem", "<<"]), Ok(CertCmd::Set { file: "/a.pem".into(), payload: None }));
        assert_eq!(parse("set", &["/a.pem"]).unwrap_err(), SET_USAGE);
        assert_eq!(parse("commit", &["/a.pem"]), Ok(CertCmd::Commit("/a.pem".into())));
        assert_eq!(parse("commit", &[]).unwrap_err(), "'commit ssl cert expects a filename");
        assert_eq!(parse("abort", &[]).unwrap_err(), "'abort ssl cert' expects a filename");
        assert_eq!(parse("new", &[]).unwrap_err(), "'new ssl cert' expects a filename");
        assert_eq!(parse("del", &[]).unwrap_err(), "'del ssl cert' expects a certificate name");
        assert!(wants_payload("set ssl cert /a.pem <<"));
        assert!(wants_payload("set ssl cert /a.pem <<  "));
        assert!(!wants_payload("set ssl cert /a<<"));
        assert!(!wants_payload("show ssl cert"));
    }

    #[test]
    fn payload_goes_to_the_last_set() {
        let mut p = super::super::parse_line("show ssl cert; set ssl cert /a.pem <<");
        attach(&mut p, "PEM".into());
        assert_eq!(
            p[1].command,
            Ok(super::super::Command::SslCert(CertCmd::Set { file: "/a.pem".into(), payload: Some("PEM".into()) }))
        );
    }

    #[test]
    fn shows_like_haproxy() {
        assert_eq!(show_list(None, &["/a.pem".into()]), "# filename\n/a.pem\n");
        assert_eq!(
            show_list(Some(std::path::Path::new("/a.pem")), &["/a.pem".into()]),
            "# transaction\n*/a.pem\n# filename\n/a.pem\n"
        );
        assert!(show_one("/x", None).unwrap_err().starts_with("Can't display the certificate"));
        assert_eq!(
            show_one("/n.pem", Some(Status::Empty)).unwrap(),
            "Filename: /n.pem\nStatus: Empty\nOCSP Response Key: \n"
        );
        let ck = rcgen::generate_simple_self_signed(vec!["a.example".to_string()]).unwrap();
        let der = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let key = rustls::sign::CertifiedKey::from_der(
            vec![ck.cert.der().clone()],
            der,
            &rustls::crypto::ring::default_provider(),
        )
        .unwrap();
        let text = show_one("/a.pem", Some(Status::Used(std::sync::Arc::new(key)))).unwrap();
        assert!(text.contains("Status: Used\nSerial: "), "{text}");
        assert!(text.contains("Subject Alternative Name: DNS:a.example\nAlgorithm: EC256\n"), "{text}");
        assert!(text.contains("Subject: /CN=rcgen self signed cert\n"), "{text}");
        let nb = text.lines().find(|l| l.starts_with("notBefore: ")).unwrap();
        assert!(nb.ends_with(" GMT") && nb.len() == "notBefore: Dec  6 10:10:24 2026 GMT".len(), "{nb}");
    }
}
