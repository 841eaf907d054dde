//! Byte-level helpers of the converters: encodings (`hex`, `base64`, `url_dec`, `json`) and
//! HAProxy's own small hashes (`djb2`, `sdbm`, `full_hash`). Standard algorithms come from crates.

use super::conv::JsonMode;
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

pub(super) fn djb2(b: &[u8]) -> u32 {
    b.iter().fold(5381u32, |h, &c| (h << 5).wrapping_add(h).wrapping_add(c as u32))
}

pub(super) fn sdbm(b: &[u8]) -> u32 {
    sdbm_from(0, b)
}

/// Continues an sdbm hash over more bytes (`base32` hashes the host, then the path).
pub(super) fn sdbm_from(h: u32, b: &[u8]) -> u32 {
    b.iter().fold(h, |h, &c| (c as u32).wrapping_add(h << 6).wrapping_add(h << 16).wrapping_sub(h))
}

/// Bob Jenkins' avalanche, as HAProxy's `full_hash` (the hash converters' `(1)` argument).
pub(super) fn full_hash(mut a: u32) -> u32 {
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
}
