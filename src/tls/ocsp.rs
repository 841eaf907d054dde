//! OCSP responses as HAProxy handles them for stapling: read for their one single response's
//! certificate ID, status and dates, checked as HAProxy checks them before serving one, and
//! matched to a certificate by that ID. The signature is the client's to check.

use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

/// One DER element: tag, content, the whole encoding, and what follows it.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(b: &[u8]) -> Option<Tlv<'_>> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, &b[head..end], &b[..end], &b[end..]))
}

/// The next element, which must have `tag`.
fn want(b: &[u8], tag: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let (t, c, w, r) = tlv(b)?;
    (t == tag).then_some((c, w, r))
}

const SEQ: u8 = 0x30;
const OCTETS: u8 = 0x04;
const GENTIME: u8 = 0x18;
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
const BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked(ASN1Time),
    Unknown,
}

#[derive(Debug, Clone)]
pub enum Responder {
    Name(Vec<(String, String)>),
    Key(Vec<u8>),
}

/// What `show ssl ocsp-response` prints and stapling needs.
#[derive(Debug, Clone)]
pub struct Response {
    /// The certificate ID's DER: HAProxy's key for the response.
    pub id: Vec<u8>,
    pub hash_oid: Vec<u8>,
    pub name_hash: Vec<u8>,
    pub key_hash: Vec<u8>,
    pub serial: Vec<u8>,
    pub status: Status,
    pub this_update: ASN1Time,
    pub next_update: Option<ASN1Time>,
    pub produced_at: ASN1Time,
    pub responder: Responder,
    pub version: u8,
    pub singles: usize,
}

fn time(whole: &[u8]) -> Option<ASN1Time> {
    ASN1Time::from_der(whole).ok().map(|(_, t)| t)
}

/// Reads a DER OCSP response; `Err` holds HAProxy's message.
pub fn parse(der: &[u8]) -> Result<Response, String> {
    let unable = || "Unable to parse OCSP response".to_string();
    let (resp, _, _) = want(der, SEQ).ok_or_else(unable)?;
    let (status, _, rest) = want(resp, 0x0a).ok_or_else(unable)?;
    if status != [0] {
        return Err("OCSP response status not successful".into());
    }
    let basic_err = || "Failed to get basic response from OCSP Response".to_string();
    let (bytes, _, _) = want(rest, 0xa0).ok_or_else(basic_err)?;
    let (bytes, _, _) = want(bytes, SEQ).ok_or_else(basic_err)?;
    let (oid, _, rest) = want(bytes, 0x06).ok_or_else(basic_err)?;
    if oid != BASIC {
        return Err(basic_err());
    }
    let (basic, _, _) = want(rest, OCTETS).ok_or_else(basic_err)?;
    let (basic, _, _) = want(basic, SEQ).ok_or_else(unable)?;
    let (tbs, _, _) = want(basic, SEQ).ok_or_else(unable)?;
    let mut rest = tbs;
    let mut version = 0;
    if let Some((v, _, r)) = want(rest, 0xa0) {
        version = want(v, 0x02).and_then(|(n, _, _)| n.last().copied()).unwrap_or(0);
        rest = r;
    }
    let (tag, rid, _, r) = tlv(rest).ok_or_else(unable)?;
    let responder = match tag {
        0xa1 => {
            let (_, name) = x509_parser::x509::X509Name::from_der(rid).map_err(|_| unable())?;
            Responder::Name(super::peer::name_entries(&name))
        }
        0xa2 => Responder::Key(want(rid, OCTETS).ok_or_else(unable)?.0.to_vec()),
        _ => return Err(unable()),
    };
    let (_, produced, r) = want(r, GENTIME).ok_or_else(unable)?;
    let produced_at = time(produced).ok_or_else(unable)?;
    let (responses, _, _) = want(r, SEQ).ok_or_else(unable)?;
    let mut singles = Vec::new();
    let mut rest = responses;
    while !rest.is_empty() {
        let (s, _, r) = want(rest, SEQ).ok_or_else(unable)?;
        singles.push(s);
        rest = r;
    }
    if singles.len() > 1 {
        return Err(format!("OCSP response ignored because contains multiple single responses ({})", singles.len()));
    }
    let single = singles.first().ok_or_else(|| "Failed to get OCSP single response".to_string())?;
    let (cid, id, r) = want(single, SEQ).ok_or_else(unable)?;
    let (alg, _, c) = want(cid, SEQ).ok_or_else(unable)?;
    let (hash_oid, _, _) = want(alg, 0x06).ok_or_else(unable)?;
    let (name_hash, _, c) = want(c, OCTETS).ok_or_else(unable)?;
    let (key_hash, _, c) = want(c, OCTETS).ok_or_else(unable)?;
    let (serial, _, _) = want(c, 0x02).ok_or_else(unable)?;
    let (tag, st, _, r) = tlv(r).ok_or_else(unable)?;
    let status = match tag {
        0x80 => Status::Good,
        0xa1 => Status::Revoked(want(st, GENTIME).and_then(|(_, w, _)| time(w)).ok_or_else(unable)?),
        _ => Status::Unknown,
    };
    let (_, this, r) = want(r, GENTIME).ok_or_else(unable)?;
    let this_update = time(this).ok_or_else(unable)?;
    let next_update = want(r, 0xa0).and_then(|(n, _, _)| want(n, GENTIME)).and_then(|(_, w, _)| time(w));
    Ok(Response {
        id: id.to_vec(),
        hash_oid: hash_oid.to_vec(),
        name_hash: name_hash.to_vec(),
        key_hash: key_hash.to_vec(),
        serial: serial.to_vec(),
        status,
        this_update,
        next_update,
        produced_at,
        responder,
        version,
        singles: singles.len(),
    })
}

/// HAProxy's checks before a response is served, at `now` (Unix seconds; 5 minutes of skew).
pub fn check(r: &Response, now: i64) -> Result<(), String> {
    if r.status == Status::Unknown {
        return Err("OCSP single response: certificate status is unknown".into());
    }
    let Some(next) = &r.next_update else {
        return Err("OCSP single response: missing nextupdate".into());
    };
    if r.this_update.timestamp() > now + 300 || next.timestamp() < now - 300 {
        return Err("OCSP single response: no longer valid.".into());
    }
    Ok(())
}

fn digest(oid: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use sha1::Digest;
    if oid == SHA1 {
        Some(sha1::Sha1::digest(data).to_vec())
    } else if oid == SHA256 {
        Some(sha2::Sha256::digest(data).to_vec())
    } else {
        None
    }
}

/// Whether the response is about `cert` (DER): same serial and issuer name, and the issuer's
/// key when the issuer is known (the next certificate of the chain, or a `.issuer` file).
pub fn is_about(r: &Response, cert: &[u8], issuer: Option<&[u8]>) -> bool {
    let Ok((_, c)) = x509_parser::certificate::X509Certificate::from_der(cert) else { return false };
    if c.raw_serial() != r.serial.as_slice() || digest(&r.hash_oid, c.issuer().as_raw()) != Some(r.name_hash.clone()) {
        return false;
    }
    match issuer.and_then(|i| x509_parser::certificate::X509Certificate::from_der(i).ok()) {
        Some((_, i)) => digest(&r.hash_oid, &i.public_key().subject_public_key.data) == Some(r.key_hash.clone()),
        None => true,
    }
}

/// A response as the runtime API takes it: base64, line breaks and spaces ignored.
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// The current time for [`check`].
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// HAProxy's lowercase key of a response (its certificate ID's DER).
pub fn key_hex(r: &Response) -> String {
    r.id.iter().map(|x| format!("{x:02x}")).collect()
}

/// One entry of `show ssl ocsp-response`.
pub fn id_lines(r: &Response) -> String {
    format!(
        "Certificate ID key : {}\n Certificate ID:\n   Issuer Name Hash: {}\n   Issuer Key Hash: {}\n   Serial Number: {}\n",
        key_hex(r),
        hex_upper(&r.name_hash),
        hex_upper(&r.key_hash),
        hex_upper(&r.serial)
    )
}

/// `show ssl ocsp-response ID`: OpenSSL's print of the response data, up to the single
/// response's dates (extensions, signature and certificates are left out).
pub fn details(r: &Response, time: impl Fn(&ASN1Time) -> String) -> String {
    let responder = match &r.responder {
        Responder::Name(e) => e.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", "),
        Responder::Key(k) => hex_upper(k),
    };
    let alg = if r.hash_oid == SHA1 {
        "sha1"
    } else if r.hash_oid == SHA256 {
        "sha256"
    } else {
        "unknown"
    };
    let status = match &r.status {
        Status::Good => "good".to_string(),
        Status::Revoked(t) => format!("revoked\n    Revocation Time: {}", time(t)),
        Status::Unknown => "unknown".to_string(),
    };
    let mut out = format!(
        "OCSP Response Data:\n    OCSP Response Status: successful (0x0)\n    Response Type: Basic OCSP Response\n    Version: {} (0x{:x})\n    Responder Id: {responder}\n    Produced At: {}\n    Responses:\n    Certificate ID:\n      Hash Algorithm: {alg}\n      Issuer Name Hash: {}\n      Issuer Key Hash: {}\n      Serial Number: {}\n    Cert Status: {status}\n    This Update: {}\n",
        r.version + 1,
        r.version,
        time(&r.produced_at),
        hex_upper(&r.name_hash),
        hex_upper(&r.key_hash),
        hex_upper(&r.serial),
        time(&r.this_update),
    );
    if let Some(n) = &r.next_update {
        out.push_str(&format!("    Next Update: {}\n", time(n)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response produced by `openssl ocsp` (CA "Test CA", serial 1002, good).
    const RESP: &[u8] = include_bytes!("testdata/good.ocsp");

    #[test]
    fn reads_an_openssl_response() {
        let r = parse(RESP).unwrap();
        assert_eq!(r.singles, 1);
        assert_eq!(r.status, Status::Good);
        assert_eq!(hex_upper(&r.serial), "1002");
        assert_eq!(r.hash_oid, SHA1);
        assert!(key_hex(&r).starts_with("303b300906052b0e03021a0500"));
        assert!(matches!(&r.responder, Responder::Name(n) if n[0] == ("CN".to_string(), "Test CA".to_string())));
        let now = r.this_update.timestamp();
        assert!(check(&r, now).is_ok());
        assert!(check(&r, now + 400 * 86400).unwrap_err().contains("no longer valid"));
        let text = details(&r, |t| t.timestamp().to_string());
        assert!(text.contains("Cert Status: good\n") && text.contains("Hash Algorithm: sha1\n"), "{text}");
        assert!(text.contains("Responder Id: CN = Test CA\n"), "{text}");
    }

    #[test]
    fn matches_its_certificate_and_issuer() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec();
        let leaf = der(include_str!("testdata/ocsp-leaf.crt"));
        let ca = der(include_str!("testdata/ocsp-ca.crt"));
        let other = der(include_str!("testdata/ocsp-other-ca.crt"));
        let r = parse(RESP).unwrap();
        assert!(is_about(&r, &leaf, Some(&ca)));
        assert!(is_about(&r, &leaf, None), "no issuer known: serial and issuer name");
        assert!(!is_about(&r, &leaf, Some(&other)), "another issuer key");
        assert!(!is_about(&r, &ca, None), "another certificate");
    }

    #[test]
    fn refuses_what_is_not_a_usable_response() {
        assert_eq!(parse(b"junk").unwrap_err(), "Unable to parse OCSP response");
        // tryLater (3), no response bytes.
        assert_eq!(parse(&[0x30, 0x03, 0x0a, 0x01, 0x03]).unwrap_err(), "OCSP response status not successful");
        assert!(parse(&RESP[..RESP.len() / 2]).is_err(), "truncated");
        assert!(tlv(&[0x30, 0x85, 0, 0, 0, 0, 0]).is_none());
    }
}
