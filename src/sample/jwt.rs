//! `jwt_verify(alg,key)`: HAProxy 2.6's signature check of a JWS in compact serialization,
//! with its return codes, so rules written against them (`... jwt_verify(...) 1`) keep their
//! meaning. Only the signature is checked, as in HAProxy: no claim (`exp`, `nbf`) is read.
//!
//! Public keys are read when the configuration is validated (HAProxy: "no disk access at
//! runtime"), and found at run time by the key argument's text. Verification is `ring`'s, but
//! for the ECDSA pairings ring lacks: P-521 keys with any of SHA-256/384/512 and P-256 or P-384
//! keys with SHA-512 (ES512 with a key that is not P-521, which RFC 7518 does not pair, and
//! OpenSSL, hence HAProxy 2.6, verifies) go to RustCrypto's `p521`, `p256`, `p384`. ring also
//! lacks RSA keys under 2048 bits: such a key is refused at load.

use p521::ecdsa::signature::hazmat as ecdsa_hazmat;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};

/// HAProxy's return values.
pub const OK: i64 = 1;
pub const KO: i64 = 0;
pub const UNKNOWN_ALG: i64 = -1;
pub const UNMANAGED_ALG: i64 = -2;
pub const INVALID_TOKEN: i64 = -3;
pub const UNKNOWN_CERT: i64 = -5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    S256,
    S384,
    S512,
}

/// A JWS algorithm name of RFC 7518 section 3.1, as HAProxy reads it (exact, case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs(Sha),
    Rs(Sha),
    Es(Sha),
    /// `PS256`..`PS512`: named by the RFC, not managed by HAProxy 2.6.
    Ps,
    None,
}

impl Alg {
    pub fn parse(name: &[u8]) -> Option<Alg> {
        let sha = |s: &[u8]| match s {
            b"256" => Some(Sha::S256),
            b"384" => Some(Sha::S384),
            b"512" => Some(Sha::S512),
            _ => None,
        };
        if name == b"none" {
            return Some(Alg::None);
        }
        let (family, bits) = name.split_at_checked(2)?;
        let sha = sha(bits)?;
        Some(match family {
            b"HS" => Alg::Hs(sha),
            b"RS" => Alg::Rs(sha),
            b"ES" => Alg::Es(sha),
            b"PS" => Alg::Ps,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A public key read from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) file, as HAProxy 2.6's
/// `PEM_read_bio_PUBKEY` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// The DER `RSAPublicKey`.
    Rsa(Vec<u8>),
    /// The uncompressed point.
    Ec(Curve, Vec<u8>),
}

const OID_EC_P256: &str = "1.2.840.10045.3.1.7";
const OID_EC_P384: &str = "1.3.132.0.34";
const OID_EC_P521: &str = "1.3.132.0.35";

impl PublicKey {
    /// Reads the first public key block of a PEM file as HAProxy 2.6 over OpenSSL 3 does:
    /// `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1, or an SPKI so
    /// labelled). `Err(None)`: no such block (HAProxy warns "file not found" and answers -5);
    /// `Err(Some(why))`: a key lbha cannot verify with.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, Option<String>> {
        use x509_parser::prelude::FromDer;
        let mut rest = text;
        loop {
            let Ok((r, pem)) = x509_parser::pem::parse_x509_pem(rest) else { return Err(None) };
            match pem.label.as_str() {
                "PUBLIC KEY" => return Self::from_spki(&pem.contents),
                "RSA PUBLIC KEY" => {
                    return match x509_parser::public_key::RSAPublicKey::from_der(&pem.contents) {
                        Ok((_, rsa)) => Self::rsa(&rsa, &pem.contents),
                        Err(_) => Self::from_spki(&pem.contents),
                    };
                }
                _ => rest = r,
            }
        }
    }

    fn rsa(key: &x509_parser::public_key::RSAPublicKey<'_>, der: &[u8]) -> Result<PublicKey, Option<String>> {
        let digits = &key.modulus[key.modulus.iter().take_while(|&&b| b == 0).count()..];
        let bits = digits.first().map_or(0, |&b| 8 * digits.len() - b.leading_zeros() as usize);
        if bits < 2048 {
            return Err(Some(format!(
                "an RSA key of {bits} bits: lbha verifies RS256/384/512 with keys of 2048 to 8192 bits"
            )));
        }
        Ok(PublicKey::Rsa(der.to_vec()))
    }

    fn from_spki(der: &[u8]) -> Result<PublicKey, Option<String>> {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey as Parsed;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).map_err(|_| None)?;
        match spki.parsed().map_err(|_| None)? {
            Parsed::RSA(rsa) => Self::rsa(&rsa, &spki.subject_public_key.data),
            Parsed::EC(point) => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
                let curve = match curve.as_deref() {
                    Some(OID_EC_P256) => Curve::P256,
                    Some(OID_EC_P384) => Curve::P384,
                    Some(OID_EC_P521) => Curve::P521,
                    other => {
                        return Err(Some(format!(
                            "an EC key on curve {}: lbha verifies P-256, P-384 and P-521",
                            other.unwrap_or("?")
                        )));
                    }
                };
                if point.data().len() != 1 + 2 * curve.scalar_len() || point.data()[0] != 4 {
                    return Err(Some("an EC key whose point is not uncompressed: lbha cannot read it".into()));
                }
                if curve == Curve::P521 && p521::ecdsa::VerifyingKey::from_sec1_bytes(point.data()).is_err() {
                    return Err(Some("a P-521 key whose point is not on the curve".into()));
                }
                Ok(PublicKey::Ec(curve, point.data().to_vec()))
            }
            _ => Err(Some("neither an RSA nor an EC key".into())),
        }
    }
}

/// Verifies `token` with algorithm name `alg` and `key` (an HMAC secret, or the text naming a
/// loaded public key, which `keys` finds). Returns HAProxy's code.
pub fn verify<'k>(token: &[u8], alg: &[u8], key: &[u8], keys: impl Fn(&[u8]) -> Option<&'k PublicKey>) -> i64 {
    let Some(alg) = Alg::parse(alg) else { return UNKNOWN_ALG };
    // HAProxy's `jwt_tokenize`: at most three dot-separated parts; two only for `none`.
    let parts: Vec<&[u8]> = token.split(|&c| c == b'.').collect();
    if parts.len() > 3 || (parts.len() != 3 && !(alg == Alg::None && parts.len() == 2)) {
        return INVALID_TOKEN;
    }
    let signature = parts.get(2).copied().unwrap_or_default();
    if alg == Alg::None {
        return if signature.is_empty() { OK } else { KO };
    }
    if signature.is_empty() {
        return INVALID_TOKEN;
    }
    let Some(signature) = super::codec::base64url_decode(signature) else { return INVALID_TOKEN };
    let signed = &token[..parts[0].len() + 1 + parts[1].len()];
    match alg {
        Alg::None => unreachable!("answered above"),
        Alg::Ps => UNMANAGED_ALG,
        Alg::Hs(sha) => {
            let alg = match sha {
                Sha::S256 => ring::hmac::HMAC_SHA256,
                Sha::S384 => ring::hmac::HMAC_SHA384,
                Sha::S512 => ring::hmac::HMAC_SHA512,
            };
            code(ring::hmac::verify(&ring::hmac::Key::new(alg, key), signed, &signature).is_ok())
        }
        Alg::Rs(sha) => {
            let Some(key) = keys(key) else { return UNKNOWN_CERT };
            let PublicKey::Rsa(der) = key else { return KO };
            let alg: &dyn VerificationAlgorithm = match sha {
                Sha::S256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Sha::S384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Sha::S512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            };
            code(UnparsedPublicKey::new(alg, der).verify(signed, &signature).is_ok())
        }
        Alg::Es(sha) => {
            let Some(key) = keys(key) else { return UNKNOWN_CERT };
            let PublicKey::Ec(curve, point) = key else { return KO };
            // r and s are the two halves, any length, read as numbers (HAProxy hands them to
            // OpenSSL as bignums): an odd length is not a signature.
            if signature.len() % 2 != 0 {
                return INVALID_TOKEN;
            }
            // ring pairs a curve with another hash only in the ASN.1 form.
            let alg: &dyn VerificationAlgorithm = match (curve, sha) {
                (Curve::P521, _) | (_, Sha::S512) => {
                    return code(verify_prehashed(*curve, point, sha, signed, &signature));
                }
                (Curve::P256, Sha::S256) => &sig::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, Sha::S384) => &sig::ECDSA_P256_SHA384_ASN1,
                (Curve::P384, Sha::S256) => &sig::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, Sha::S384) => &sig::ECDSA_P384_SHA384_ASN1,
            };
            let Some(der) = der_signature(&signature, curve.scalar_len()) else { return KO };
            code(UnparsedPublicKey::new(alg, point).verify(signed, &der).is_ok())
        }
    }
}

/// ECDSA with a hash ring does not pair with the curve: P-521 with any hash, P-256 or P-384
/// with SHA-512 (RFC 7518 pairs none of these; OpenSSL, hence HAProxy, verifies them all, the
/// digest cut to the curve's order as SEC 1 says). `signature` is `r || s` of even length.
fn verify_prehashed(curve: Curve, point: &[u8], sha: Sha, signed: &[u8], signature: &[u8]) -> bool {
    use ecdsa_hazmat::PrehashVerifier;
    let digest = ring::digest::digest(
        match sha {
            Sha::S256 => &ring::digest::SHA256,
            Sha::S384 => &ring::digest::SHA384,
            Sha::S512 => &ring::digest::SHA512,
        },
        signed,
    );
    let digest = digest.as_ref();
    match curve {
        Curve::P256 => {
            let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else { return false };
            let Some([r, s]) = scalars::<32>(signature) else { return false };
            let Ok(sig) = p256::ecdsa::Signature::from_scalars(r, s) else { return false };
            key.verify_prehash(digest, &sig).is_ok()
        }
        Curve::P384 => {
            let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(point) else { return false };
            let Some([r, s]) = scalars::<48>(signature) else { return false };
            let Ok(sig) = p384::ecdsa::Signature::from_scalars(r, s) else { return false };
            key.verify_prehash(digest, &sig).is_ok()
        }
        Curve::P521 => {
            let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else { return false };
            let Some([r, s]) = scalars::<66>(signature) else { return false };
            let Ok(sig) = p521::ecdsa::Signature::from_scalars(r, s) else { return false };
            key.verify_prehash(digest, &sig).is_ok()
        }
    }
}

/// The two halves of `r || s` as `W`-byte big-endian numbers; `None` when one is wider (it is
/// then not below the curve's order, and no signature).
fn scalars<const W: usize>(signature: &[u8]) -> Option<[[u8; W]; 2]> {
    let mut halves = [[0u8; W]; 2];
    for (half, out) in signature.chunks(signature.len() / 2).zip(&mut halves) {
        let digits = &half[half.iter().take_while(|&&b| b == 0).count()..];
        if digits.len() > W {
            return None;
        }
        out[W - digits.len()..].copy_from_slice(digits);
    }
    Some(halves)
}

fn code(ok: bool) -> i64 {
    if ok { OK } else { KO }
}

/// `r || s` as the DER `ECDSA-Sig-Value`; `None` when a number is wider than the curve's
/// (it is then not below the curve's order, and no signature).
fn der_signature(signature: &[u8], width: usize) -> Option<Vec<u8>> {
    let (r, s) = signature.split_at(signature.len() / 2);
    let mut body = Vec::with_capacity(2 * (width + 3));
    for half in [r, s] {
        let digits = &half[half.iter().take_while(|&&b| b == 0).count()..];
        if digits.len() > width {
            return None;
        }
        // A positive INTEGER: a zero byte in front of a set high bit; zero is one zero byte.
        let pad = digits.first().is_none_or(|&b| b & 0x80 != 0);
        body.extend_from_slice(&[0x02, (digits.len() + usize::from(pad)) as u8]);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    // Short-form lengths: at most 2 x (2 + 49) bytes for P-384.
    let mut der = vec![0x30, body.len() as u8];
    der.extend_from_slice(&body);
    Some(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    // tests/data/jwt: keys made with openssl, tokens signed with `openssl dgst`; HAProxy 2.6
    // answers 1 for each with its key (tests/jwt_verify.rs compares the two).
    const RSA_PUB: &str = include_str!("../../tests/data/jwt/rsa.pub");
    const EC_PUB: &str = include_str!("../../tests/data/jwt/ec.pub");
    const EC384_PUB: &str = include_str!("../../tests/data/jwt/ec384.pub");
    const P521_PUB: &str = include_str!("../../tests/data/jwt/p521.pub");
    const TOKENS: &str = include_str!("../../tests/data/jwt/tokens.txt");

    fn token(alg: &str) -> &'static str {
        TOKENS.lines().find_map(|l| l.strip_prefix(alg)?.strip_prefix(' ')).unwrap()
    }

    fn keys() -> Vec<(&'static str, PublicKey)> {
        [
            ("rsa.pub", RSA_PUB),
            ("ec.pub", EC_PUB),
            ("ec384.pub", EC384_PUB),
            ("p521.pub", P521_PUB),
            ("es512-p256.pub", include_str!("../../tests/data/jwt/es512-p256.pub")),
            ("es512-p384.pub", include_str!("../../tests/data/jwt/es512-p384.pub")),
        ]
        .into_iter()
        .map(|(n, pem)| (n, PublicKey::from_pem(pem.as_bytes()).unwrap()))
        .collect()
    }

    fn run(token: &str, alg: &str, key: &str) -> i64 {
        let keys = keys();
        verify(token.as_bytes(), alg.as_bytes(), key.as_bytes(), |k| {
            keys.iter().find(|(n, _)| n.as_bytes() == k).map(|(_, p)| p)
        })
    }

    /// Swaps the signature part.
    fn with_sig(token: &str, sig: &[u8]) -> String {
        let cut = token.rfind('.').unwrap();
        format!("{}.{}", &token[..cut], String::from_utf8(super::super::codec::base64url_encode(sig)).unwrap())
    }

    fn sig_of(token: &str) -> Vec<u8> {
        super::super::codec::base64url_decode(token.rsplit('.').next().unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn valid_tokens_verify_and_tampered_ones_do_not() {
        assert_eq!(run(token("RS256"), "RS256", "rsa.pub"), OK);
        assert_eq!(run(token("ES256"), "ES256", "ec.pub"), OK);
        assert_eq!(run(token("ES384"), "ES384", "ec384.pub"), OK);
        assert_eq!(run(token("HS256"), "HS256", "secret"), OK);
        assert_eq!(run(token("HS256"), "HS256", "other"), KO);
        assert_eq!(run(token("HS256"), "HS384", "secret"), KO);
        assert_eq!(run(token("RS256"), "RS384", "rsa.pub"), KO);
        let mut flipped = sig_of(token("RS256"));
        flipped[10] ^= 1;
        assert_eq!(run(&with_sig(token("RS256"), &flipped), "RS256", "rsa.pub"), KO);
        let mut flipped = sig_of(token("ES256"));
        flipped[40] ^= 1;
        assert_eq!(run(&with_sig(token("ES256"), &flipped), "ES256", "ec.pub"), KO);
    }

    #[test]
    fn codes_follow_haproxy() {
        // Each answer is HAProxy 2.6's for the same input.
        assert_eq!(run(token("HS256"), "XX256", "secret"), UNKNOWN_ALG);
        assert_eq!(run(token("HS256"), "hs256", "secret"), UNKNOWN_ALG);
        assert_eq!(run("abc", "XX", "k"), UNKNOWN_ALG, "the algorithm is read first");
        assert_eq!(run(token("RS256"), "PS256", "rsa.pub"), UNMANAGED_ALG);
        assert_eq!(run("a.b", "PS256", "rsa.pub"), INVALID_TOKEN, "the token is read before PS is refused");
        assert_eq!(run(token("RS256"), "RS256", "missing.pem"), UNKNOWN_CERT);
        assert_eq!(run(token("RS256"), "ES256", "rsa.pub"), KO, "a key of the other family");
        assert_eq!(run(token("ES256"), "RS256", "ec.pub"), KO);
        let (head, _) = token("HS256").rsplit_once('.').unwrap();
        for bad in
            ["", "abc", "a.b", "a..c", &format!("{}.x", token("HS256")), &format!("{head}."), &format!("{head}.@@@@")]
        {
            assert_eq!(run(bad, "HS256", "secret"), INVALID_TOKEN, "{bad:?}");
        }
        // `none`: two parts, or three with an empty signature.
        assert_eq!(run(head, "none", "x"), OK);
        assert_eq!(run(&format!("{head}."), "none", "x"), OK);
        assert_eq!(run(token("HS256"), "none", "x"), KO);
        assert_eq!(run(&format!("{head}.."), "none", "x"), INVALID_TOKEN);
        assert_eq!(run("", "none", "x"), INVALID_TOKEN);
    }

    #[test]
    fn ecdsa_halves_are_numbers_of_any_length() {
        let s = sig_of(token("ES256"));
        // The same numbers with a zero byte in front of each still verify, as in OpenSSL.
        let padded = [&[0u8][..], &s[..32], &[0u8][..], &s[32..]].concat();
        assert_eq!(run(&with_sig(token("ES256"), &padded), "ES256", "ec.pub"), OK);
        assert_eq!(run(&with_sig(token("ES256"), &s[..63]), "ES256", "ec.pub"), INVALID_TOKEN, "odd length");
        assert_eq!(run(&with_sig(token("ES256"), &[&s[..], &[0]].concat()), "ES256", "ec.pub"), INVALID_TOKEN);
        assert_eq!(run(&with_sig(token("ES256"), &[7u8; 128]), "ES256", "ec.pub"), KO, "halves too large");
        assert_eq!(run(&with_sig(token("ES256"), &[0u8; 64]), "ES256", "ec.pub"), KO, "zero r and s");
        // ES384 over a P-256 key: a valid pairing of curve and hash, a wrong signature.
        assert_eq!(run(token("ES256"), "ES384", "ec.pub"), KO);
        // SHA-512 over P-256 or P-384: OpenSSL's pairing, which HAProxy 2.6 verifies.
        assert_eq!(run(token("ES256"), "ES512", "ec.pub"), KO);
    }

    #[test]
    fn es512_over_p256_and_p384_verifies_as_openssl() {
        // Signed with `openssl dgst -sha512` by the keys of es512-p256.pub / es512-p384.pub;
        // HAProxy 2.6 answers 1 for both.
        let (t256, t384) = (token("ES512P256"), token("ES512P384"));
        assert_eq!(run(t256, "ES512", "es512-p256.pub"), OK);
        assert_eq!(run(t384, "ES512", "es512-p384.pub"), OK);
        assert_eq!(run(t256, "ES512", "es512-p384.pub"), KO, "the other curve");
        assert_eq!(run(t384, "ES512", "es512-p256.pub"), KO);
        assert_eq!(run(t256, "ES384", "es512-p256.pub"), KO, "another hash");
        assert_eq!(run(t256, "ES256", "es512-p256.pub"), KO);
        let s = sig_of(t256);
        assert_eq!(s.len(), 64);
        for i in [0, 31, 32, 63] {
            let mut flipped = s.clone();
            flipped[i] ^= 1;
            assert_eq!(run(&with_sig(t256, &flipped), "ES512", "es512-p256.pub"), KO, "byte {i} flipped");
        }
        let padded = [&[0u8][..], &s[..32], &[0u8][..], &s[32..]].concat();
        assert_eq!(run(&with_sig(t256, &padded), "ES512", "es512-p256.pub"), OK, "zero-padded halves");
        assert_eq!(run(&with_sig(t256, &[7u8; 100]), "ES512", "es512-p256.pub"), KO, "halves too large");
        assert_eq!(run(&with_sig(t384, &[0u8; 96]), "ES512", "es512-p384.pub"), KO, "zero r and s");
    }

    #[test]
    fn p521_verifies_es512_and_the_other_hashes() {
        let es512 = token("ES512");
        assert_eq!(run(es512, "ES512", "p521.pub"), OK);
        assert_eq!(run(token("ES256P521"), "ES256", "p521.pub"), OK, "openssl dgst -sha256 with a P-521 key");
        assert_eq!(run(token("ES256P521"), "ES512", "p521.pub"), KO);
        assert_eq!(run(es512, "ES384", "p521.pub"), KO);
        assert_eq!(run(es512, "ES512", "ec.pub"), KO, "a P-521 signature over a P-256 key");
        assert_eq!(run(token("ES256"), "ES256", "p521.pub"), KO, "a P-256 signature");
        assert_eq!(run(es512, "RS512", "p521.pub"), KO);
        let s = sig_of(es512);
        assert_eq!(s.len(), 132);
        for i in [0, 40, 70, 131] {
            let mut flipped = s.clone();
            flipped[i] ^= 1;
            assert_eq!(run(&with_sig(es512, &flipped), "ES512", "p521.pub"), KO, "byte {i} flipped");
        }
        let mut payload = es512.to_string();
        payload.replace_range(50..51, if &es512[50..51] == "A" { "B" } else { "A" });
        assert_eq!(run(&payload, "ES512", "p521.pub"), KO, "payload changed");
        let padded = [&[0u8][..], &s[..66], &[0u8][..], &s[66..]].concat();
        assert_eq!(run(&with_sig(es512, &padded), "ES512", "p521.pub"), OK, "zero-padded halves");
        assert_eq!(run(&with_sig(es512, &s[..131]), "ES512", "p521.pub"), INVALID_TOKEN, "odd length");
        assert_eq!(run(&with_sig(es512, &[7u8; 200]), "ES512", "p521.pub"), KO, "halves too large");
        assert_eq!(run(&with_sig(es512, &[0u8; 132]), "ES512", "p521.pub"), KO, "zero r and s");
        assert_eq!(run(&with_sig(es512, &[0xffu8; 132]), "ES512", "p521.pub"), KO, "r and s above the order");
    }

    #[test]
    fn keys_are_read_as_haproxy_2_6_reads_them() {
        assert!(matches!(PublicKey::from_pem(RSA_PUB.as_bytes()), Ok(PublicKey::Rsa(_))));
        assert!(matches!(PublicKey::from_pem(EC_PUB.as_bytes()), Ok(PublicKey::Ec(Curve::P256, _))));
        let short = PublicKey::from_pem(include_bytes!("../../tests/data/jwt/rsa2047.pub"));
        assert!(matches!(&short, Err(Some(why)) if why.contains("2047 bits")), "{short:?}");
        // An SPKI labelled `RSA PUBLIC KEY` is read (HAProxy 2.6 over OpenSSL 3 reads it); a
        // certificate or any other label is HAProxy's "file not found".
        let relabelled = RSA_PUB.replace("PUBLIC KEY", "RSA PUBLIC KEY");
        assert_eq!(PublicKey::from_pem(relabelled.as_bytes()), PublicKey::from_pem(RSA_PUB.as_bytes()));
        let ec_labelled = EC_PUB.replace("PUBLIC KEY", "EC PUBLIC KEY");
        assert_eq!(PublicKey::from_pem(ec_labelled.as_bytes()), Err(None));
        assert_eq!(PublicKey::from_pem(b"not pem"), Err(None));
        assert!(matches!(PublicKey::from_pem(P521_PUB.as_bytes()), Ok(PublicKey::Ec(Curve::P521, _))));
        // A point off the curve: its last byte changed.
        let der = x509_parser::pem::parse_x509_pem(P521_PUB.as_bytes()).unwrap().1.contents;
        let mut bad = der.clone();
        *bad.last_mut().unwrap() ^= 1;
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bad);
        let bad = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        assert!(matches!(PublicKey::from_pem(bad.as_bytes()), Err(Some(why)) if why.contains("not on the curve")));
        assert_eq!(Alg::parse(b"ES512"), Some(Alg::Es(Sha::S512)));
        assert_eq!(Alg::parse(b"RS512"), Some(Alg::Rs(Sha::S512)));
        assert_eq!(Alg::parse(b"HS1"), None);
    }
}
