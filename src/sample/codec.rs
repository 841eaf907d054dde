//! Byte-level helpers of the converters: encodings (`hex`, `base64`, `url_dec`, `json`) and
//! HAProxy's own small hashes (`djb2`, `sdbm`, `full_hash`). Standard algorithms come from crates.

use super::conv::{DigestAlg, JsonMode};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

pub(super) fn hex_upper(b: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    b.iter().flat_map(|c| [HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]).collect()
}

pub(super) fn base64_encode(b: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.encode(b).into_bytes()
}

/// HAProxy's `base64dec`: the length must be a multiple of 4 with `=` padding; trailing bits are
/// ignored.
pub(super) fn base64_decode(b: &[u8]) -> Option<Vec<u8>> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    if !b.len().is_multiple_of(4) {
        return None;
    }
    ENGINE.decode(b).ok()
}

/// HAProxy's `url_decode`: `%XX` decoded (a bad escape fails), `+` becomes a space in form mode,
/// which a `?` also turns on; input ends at a NUL byte.
pub(super) fn url_decode(s: &[u8], mut form: bool) -> Option<Vec<u8>> {
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(if form { b' ' } else { b'+' }),
            b'%' => {
                let hi = (*s.get(i + 1)? as char).to_digit(16)?;
                let lo = (*s.get(i + 2)? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => {
                form |= c == b'?';
                out.push(c);
            }
        }
        i += 1;
    }
    Some(out)
}

/// HAProxy's `json` converter: escapes for a JSON string body; code points above 0xFF and
/// non-printable characters as `\uXXXX`. `None` when the input is rejected (strict UTF-8 modes).
pub(super) fn json_escape(s: &[u8], mode: JsonMode) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        let (c, len, flaws) = match mode {
            JsonMode::Ascii => (s[i] as u32, 1, Utf8Flaws::default()),
            JsonMode::Utf8 { .. } => utf8_next(&s[i..]),
        };
        i += len;
        if let JsonMode::Utf8 { skip, permissive } = mode {
            // Permissive modes accept overlong encodings; the others reject every flaw.
            let bad = flaws.bad_seq || flaws.inv_range || (!permissive && flaws.overlong);
            if bad || c > 0xffff {
                if skip {
                    continue;
                }
                return None;
            }
        }
        json_char(&mut out, c);
    }
    Some(out)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Utf8Flaws {
    bad_seq: bool,
    overlong: bool,
    inv_range: bool,
}

/// HAProxy's `utf8_next`: one (possibly overlong, up to 6-byte) sequence, its length and flaws.
fn utf8_next(s: &[u8]) -> (u32, usize, Utf8Flaws) {
    let first = s[0];
    let bad = |c: u32, len| (c, len, Utf8Flaws { bad_seq: true, ..Utf8Flaws::default() });
    let (mut c, extra) = match first {
        0x00..=0x7f => return (first as u32, 1, Utf8Flaws::default()),
        0xc0..=0xdf => ((first & 0x1f) as u32, 1),
        0xe0..=0xef => ((first & 0x0f) as u32, 2),
        0xf0..=0xf7 => ((first & 0x07) as u32, 3),
        0xf8..=0xfb => ((first & 0x03) as u32, 4),
        0xfc..=0xfd => ((first & 0x01) as u32, 5),
        _ => return bad(first as u32, 1),
    };
    if s.len() < extra + 1 {
        return bad(first as u32, 1);
    }
    for (k, &b) in s[1..=extra].iter().enumerate() {
        if b & 0xc0 != 0x80 {
            return bad(c, k + 1);
        }
        c = (c << 6) | (b & 0x3f) as u32;
    }
    let len = extra + 1;
    let overlong = (c <= 0x7f && len > 1)
        || ((0x80..=0x7ff).contains(&c) && len > 2)
        || ((0x800..=0xffff).contains(&c) && len > 3)
        || ((0x10000..=0x1fffff).contains(&c) && len > 4);
    let inv_range = (0xd800..=0xdfff).contains(&c) || (0xfffe..=0xffff).contains(&c);
    (c, len, Utf8Flaws { bad_seq: false, overlong, inv_range })
}

fn json_char(out: &mut Vec<u8>, c: u32) {
    match c {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5c => out.extend_from_slice(b"\\\\"),
        0x2f => out.extend_from_slice(b"\\/"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x0d => out.extend_from_slice(b"\\r"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x20..=0x7e => out.push(c as u8),
        _ => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
    }
}

/// `url_enc`: everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) as
/// `%XX`; input ends at a NUL byte, as HAProxy's `encode_chunk`.
pub(super) fn url_encode(s: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        }
    }
    out
}

/// `ub64enc`: base64url without padding.
pub(super) fn base64url_encode(b: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b).into_bytes()
}

/// HAProxy's `base64urldec`: unpadded (a length of 1 modulo 4 fails), trailing bits ignored.
pub(super) fn base64url_decode(b: &[u8]) -> Option<Vec<u8>> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    if b.len() % 4 == 1 {
        return None;
    }
    ENGINE.decode(b).ok()
}

/// `be2dec`: each `chunk` bytes as an unsigned big-endian number, `sep` between them;
/// `truncate` drops a last, shorter chunk.
pub(super) fn be2dec(b: &[u8], sep: &[u8], chunk: usize, truncate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in b.chunks(chunk).enumerate() {
        if truncate && c.len() < chunk {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep);
        }
        let n = c.iter().fold(0u64, |n, &x| (n << 8) | u64::from(x));
        out.extend_from_slice(n.to_string().as_bytes());
    }
    out
}

/// `be2hex`: upper-case hex, `sep` every `chunk` bytes (0: one chunk); `truncate` drops a
/// last, shorter chunk.
pub(super) fn be2hex(b: &[u8], sep: &[u8], chunk: usize, truncate: bool) -> Vec<u8> {
    let chunk = if chunk == 0 { b.len().max(1) } else { chunk };
    let mut out = Vec::new();
    for (i, c) in b.chunks(chunk).enumerate() {
        if truncate && c.len() < chunk {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(&hex_upper(c));
    }
    out
}

/// CRC-32C (Castagnoli), as HAProxy's `hash_crc32c`.
pub(super) fn crc32c(b: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &x in b {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// HAProxy's `hash_wt6`.
pub(crate) fn wt6(b: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965au32, 0x5ca6_953au32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &x in b {
        let t = u32::from(x);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// `digest(alg)`.
pub(super) fn digest(alg: DigestAlg, b: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    match alg {
        DigestAlg::Sha1 => sha1::Sha1::digest(b).to_vec(),
        DigestAlg::Sha224 => sha2::Sha224::digest(b).to_vec(),
        DigestAlg::Sha256 => sha2::Sha256::digest(b).to_vec(),
        DigestAlg::Sha384 => sha2::Sha384::digest(b).to_vec(),
        DigestAlg::Sha512 => sha2::Sha512::digest(b).to_vec(),
    }
}

/// `hmac(alg,key)`: RFC 2104 over [`digest`].
pub(super) fn hmac(alg: DigestAlg, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let block = if matches!(alg, DigestAlg::Sha384 | DigestAlg::Sha512) { 128 } else { 64 };
    let mut k = if key.len() > block { digest(alg, key) } else { key.to_vec() };
    k.resize(block, 0);
    let pad = |x: u8| k.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = digest(alg, &[pad(0x36).as_slice(), msg].concat());
    digest(alg, &[pad(0x5c), inner].concat())
}

pub(crate) fn djb2(b: &[u8]) -> u32 {
    b.iter().fold(5381u32, |h, &c| (h << 5).wrapping_add(h).wrapping_add(c as u32))
}

pub(crate) fn sdbm(b: &[u8]) -> u32 {
    sdbm_from(0, b)
}

/// Continues an sdbm hash over more bytes (`base32` hashes the host, then the path).
pub(super) fn sdbm_from(h: u32, b: &[u8]) -> u32 {
    b.iter().fold(h, |h, &c| (c as u32).wrapping_add(h << 6).wrapping_add(h << 16).wrapping_sub(h))
}

/// Bob Jenkins' avalanche, as HAProxy's `full_hash` (the hash converters' `(1)` argument).
pub(crate) fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed55d16).wrapping_add(a << 12);
    a = (a ^ 0xc761c23c) ^ (a >> 19);
    a = a.wrapping_add(0x165667b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2646c) ^ (a << 9);
    a = a.wrapping_add(0xfd7046c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_haproxy() {
        assert_eq!(base64_encode(b"abc"), b"YWJj");
        assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"YQ"), None, "unpadded");
        assert_eq!(base64_decode(b"Y==="), None);
        assert_eq!(base64_decode(b"YR=="), Some(b"a".to_vec()), "trailing bits ignored");
        assert_eq!(base64_decode(b"Y!Jj"), None);
    }

    #[test]
    fn url_decode_like_haproxy() {
        assert_eq!(url_decode(b"a%20b+c", false).unwrap(), b"a b+c");
        assert_eq!(url_decode(b"a%20b+c", true).unwrap(), b"a b c");
        assert_eq!(url_decode(b"a+b?c+d", false).unwrap(), b"a+b?c d");
        assert_eq!(url_decode(b"%4", false), None);
        assert_eq!(url_decode(b"%zz", false), None);
        assert_eq!(url_decode(b"ab\0cd", false).unwrap(), b"ab");
    }

    #[test]
    fn json_modes() {
        assert_eq!(json_escape(b"a\"b\\c/d\n\x01", JsonMode::Ascii).unwrap(), br#"a\"b\\c\/d\n\u0001"#);
        assert_eq!(json_escape("é".as_bytes(), JsonMode::Ascii).unwrap(), br"\u00c3\u00a9");
        let utf8 = JsonMode::Utf8 { skip: false, permissive: false };
        let utf8s = JsonMode::Utf8 { skip: true, permissive: false };
        assert_eq!(json_escape("é€".as_bytes(), utf8).unwrap(), br"\u00e9\u20ac");
        assert_eq!(json_escape(b"a\xffb", utf8), None);
        assert_eq!(json_escape(b"a\xffb", utf8s).unwrap(), b"ab");
        assert_eq!(json_escape("a😀".as_bytes(), utf8), None);
        assert_eq!(json_escape("a😀".as_bytes(), utf8s).unwrap(), b"a");
        // Overlong "/" (0xc0 0xaf): only the permissive modes decode it.
        let utf8p = JsonMode::Utf8 { skip: false, permissive: true };
        assert_eq!(json_escape(b"a\xc0\xafb", utf8), None);
        assert_eq!(json_escape(b"a\xc0\xafb", utf8s).unwrap(), b"ab");
        assert_eq!(json_escape(b"a\xc0\xafb", utf8p).unwrap(), br"a\/b");
        // A surrogate is rejected even in permissive mode; a cut sequence is a bad sequence.
        assert_eq!(json_escape(b"\xed\xa0\x80", utf8p), None);
        assert_eq!(json_escape(b"a\xe2\x82", utf8s).unwrap(), b"a");
        // The same header through HAProxy 2.6.12 (`req.hdr(x),json(...)`).
        let utf8ps = JsonMode::Utf8 { skip: true, permissive: true };
        let input = b"a\xc0\xafb\xe2\x82";
        assert_eq!(json_escape(input, utf8p), None);
        assert_eq!(json_escape(input, utf8ps).unwrap(), br"a\/b");
        assert_eq!(json_escape(input, utf8s).unwrap(), b"ab");
        assert_eq!(json_escape(input, utf8), None);
        assert_eq!(json_escape(input, JsonMode::Ascii).unwrap(), br"a\u00c0\u00afb\u00e2\u0082");
        assert_eq!(json_escape(b"a\"b\\c/d\te\x7f\xc3\xa9", utf8s).unwrap(), br#"a\"b\\c\/d\te\u007f\u00e9"#);
    }

    #[test]
    fn hashes_match_haproxy() {
        // Values printed by HAProxy 2.6 for `str(abc),djb2` and `str(abc),sdbm`.
        assert_eq!(djb2(b"abc"), 193_485_963);
        assert_eq!(sdbm(b"abc"), 807_794_786);
        assert_eq!(hex_upper(b"\x01\xab"), b"01AB");
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2 ("Jefe").
        let mac = hmac(DigestAlg::Sha256, b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex_upper(&mac), b"5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843");
        let mac = hmac(DigestAlg::Sha512, b"Jefe", b"what do ya want for nothing?");
        assert!(hex_upper(&mac).starts_with(b"164B7A7BFCF819E2E395FBE73B56E0A387BD64222E831FD610270CD7EA250554"));
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        let mac = hmac(DigestAlg::Sha256, &[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex_upper(&mac), b"60E431591EE0B67F0D8A26AACBF5B77F8E0BC6213728C5140546040F0EE37F54");
    }

    #[test]
    fn encoders_like_haproxy() {
        // The manual's examples.
        let b = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(be2dec(&b, b":", 2, false), b"258:772:1286:7");
        assert_eq!(be2dec(&b, b"-", 2, true), b"258-772-1286");
        assert_eq!(be2dec(&b, b"", 2, true), b"2587721286");
        assert_eq!(be2dec(&[127, 0, 0, 1], b".", 1, false), b"127.0.0.1");
        assert_eq!(be2hex(&b, b"", 0, false), b"01020304050607");
        assert_eq!(be2hex(&b, b":", 2, false), b"0102:0304:0506:07");
        assert_eq!(be2hex(&b, b"--", 2, true), b"0102--0304--0506");
        assert_eq!(be2hex(&[1, 2, 3, 4, 5, 6, 7, 8], b"", 3, true), b"010203040506");
        assert_eq!(url_encode(b"a b&c=d/~_.-"), b"a%20b%26c%3Dd%2F~_.-");
        assert_eq!(base64url_encode(&[0xfb, 0xff]), b"-_8");
        assert_eq!(base64url_decode(b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64url_decode(b"-_8="), None, "no padding in base64url");
        assert_eq!(base64url_decode(b"a"), None);
        // Castagnoli's check value, and HAProxy's for `str(abc),crc32c`.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b"abc"), 910_901_175);
    }
}
