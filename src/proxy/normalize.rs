//! `http-request normalize-uri NORMALIZER`: HAProxy 2.6's URI normalizers, pure functions over
//! the request target's path and query (no I/O), so each is tested on HAProxy's own examples.
//!
//! The fragment never reaches the rules: the request parser drops it (as `fragment-strip`
//! would), so `fragment-strip` has nothing left to do and `fragment-encode`, which would keep
//! it, cannot be honoured and is refused at load.

/// One normalizer, as HAProxy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalizer {
    PathStripDot,
    PathStripDotdot { full: bool },
    PathMergeSlashes,
    PercentDecodeUnreserved { strict: bool },
    PercentToUppercase { strict: bool },
    QuerySortByName,
    FragmentStrip,
}

/// A `strict` normalizer met an invalid percent sequence: HAProxy answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

impl Normalizer {
    /// `NAME [full|strict]`, as written after `normalize-uri`.
    pub fn parse(text: &str) -> Result<Normalizer, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        Ok(match words.as_slice() {
            ["path-strip-dot"] => Normalizer::PathStripDot,
            ["path-strip-dotdot"] => Normalizer::PathStripDotdot { full: false },
            ["path-strip-dotdot", "full"] => Normalizer::PathStripDotdot { full: true },
            ["path-merge-slashes"] => Normalizer::PathMergeSlashes,
            ["percent-decode-unreserved"] => Normalizer::PercentDecodeUnreserved { strict: false },
            ["percent-decode-unreserved", "strict"] => Normalizer::PercentDecodeUnreserved { strict: true },
            ["percent-to-uppercase"] => Normalizer::PercentToUppercase { strict: false },
            ["percent-to-uppercase", "strict"] => Normalizer::PercentToUppercase { strict: true },
            ["query-sort-by-name"] => Normalizer::QuerySortByName,
            ["fragment-strip"] => Normalizer::FragmentStrip,
            ["fragment-encode"] => {
                return Err("`fragment-encode` cannot be honoured: lbha's request parser drops the fragment (as `fragment-strip`) before any rule runs".into());
            }
            _ => {
                return Err(format!(
                    "unknown normalizer `{text}` (expected path-strip-dot, path-strip-dotdot [full], path-merge-slashes, percent-decode-unreserved [strict], percent-to-uppercase [strict], query-sort-by-name or fragment-strip)"
                ));
            }
        })
    }

    /// The normalized path-and-query, or `None` when nothing changes.
    pub fn apply(self, pq: &[u8]) -> Result<Option<Vec<u8>>, Invalid> {
        let (path, query) = match pq.iter().position(|&c| c == b'?') {
            Some(i) => (&pq[..i], Some(&pq[i..])),
            None => (pq, None),
        };
        let with_path = |p: Vec<u8>| {
            let mut out = p;
            out.extend_from_slice(query.unwrap_or_default());
            out
        };
        let out = match self {
            Normalizer::PathStripDot => with_path(strip_dot(path)),
            Normalizer::PathStripDotdot { full } => with_path(strip_dotdot(path, full)),
            Normalizer::PathMergeSlashes => with_path(merge_slashes(path)),
            Normalizer::PercentDecodeUnreserved { strict } => percent_decode_unreserved(pq, strict)?,
            Normalizer::PercentToUppercase { strict } => percent_to_uppercase(pq, strict)?,
            Normalizer::QuerySortByName => match query {
                Some(q) => {
                    let mut out = path.to_vec();
                    out.push(b'?');
                    out.extend_from_slice(&sort_query(&q[1..]));
                    out
                }
                None => return Ok(None),
            },
            Normalizer::FragmentStrip => match pq.iter().position(|&c| c == b'#') {
                Some(i) => pq[..i].to_vec(),
                None => return Ok(None),
            },
        };
        Ok((out != pq).then_some(out))
    }
}

/// The segments after the leading `/` (a path without one is one segment).
fn segments(path: &[u8]) -> (bool, Vec<&[u8]>) {
    match path.strip_prefix(b"/") {
        Some(rest) => (true, rest.split(|&c| c == b'/').collect()),
        None => (false, path.split(|&c| c == b'/').collect()),
    }
}

fn join(rooted: bool, segs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&segs.join(&b'/'));
    out
}

/// `/./` segments go; a last `.` leaves its slash (`/a/.` is `/a/`).
fn strip_dot(path: &[u8]) -> Vec<u8> {
    let (rooted, segs) = segments(path);
    let n = segs.len();
    let mut out: Vec<&[u8]> = Vec::with_capacity(n);
    for (i, s) in segs.iter().enumerate() {
        if *s == b"." {
            if i + 1 == n {
                out.push(b"");
            }
            continue;
        }
        out.push(s);
    }
    join(rooted, &out)
}

/// `seg/..` pairs merge; leading `..` stay unless `full`; a last `..` leaves its slash.
fn strip_dotdot(path: &[u8], full: bool) -> Vec<u8> {
    let (rooted, segs) = segments(path);
    let n = segs.len();
    let mut out: Vec<&[u8]> = Vec::with_capacity(n);
    // How many of `out`'s first segments are kept `..`s, which a later `..` does not eat.
    let mut kept = 0;
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == n;
        if *s == b".." {
            if out.len() > kept {
                out.pop();
            } else if !full {
                out.push(s);
                kept += 1;
            }
            if last {
                out.push(b"");
            }
            continue;
        }
        out.push(s);
    }
    join(rooted, &out)
}

fn merge_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &c in path {
        if !(c == b'/' && out.last() == Some(&b'/')) {
            out.push(c);
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn percent_decode_unreserved(s: &[u8], strict: bool) -> Result<Vec<u8>, Invalid> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    let c = h * 16 + l;
                    if unreserved(c) {
                        out.push(c);
                    } else {
                        out.extend_from_slice(&s[i..i + 3]);
                    }
                    i += 3;
                    continue;
                }
                _ if strict => return Err(Invalid),
                _ => {}
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Ok(out)
}

fn percent_to_uppercase(s: &[u8], strict: bool) -> Result<Vec<u8>, Invalid> {
    let mut out = s.to_vec();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if s.get(i + 1).copied().and_then(hex).is_some() && s.get(i + 2).copied().and_then(hex).is_some() {
                out[i + 1] = s[i + 1].to_ascii_uppercase();
                out[i + 2] = s[i + 2].to_ascii_uppercase();
                i += 3;
                continue;
            }
            if strict {
                return Err(Invalid);
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Parameters by name (the part before `=`), a stable sort: equal names keep their order.
fn sort_query(q: &[u8]) -> Vec<u8> {
    let mut params: Vec<&[u8]> = q.split(|&c| c == b'&').collect();
    let name = |p: &[u8]| -> Vec<u8> { p.split(|&c| c == b'=').next().unwrap_or_default().to_vec() };
    params.sort_by_key(|p| name(p));
    params.join(&b'&')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, output)` pairs: HAProxy 2.6's documented examples.
    fn check(n: &str, cases: &[(&str, &str)]) {
        let n = Normalizer::parse(n).unwrap();
        for (input, want) in cases {
            let got = n.apply(input.as_bytes()).unwrap().unwrap_or_else(|| input.as_bytes().to_vec());
            assert_eq!(String::from_utf8_lossy(&got), *want, "{n:?} on {input}");
        }
    }

    #[test]
    fn path_normalizers_as_the_manual() {
        check(
            "path-strip-dot",
            &[("/.", "/"), ("/./bar/", "/bar/"), ("/a/./a", "/a/a"), ("/.well-known/", "/.well-known/")],
        );
        check("path-strip-dot", &[("/a/.?x=/./", "/a/?x=/./"), ("/a/..", "/a/..")]);
        let dotdot = [
            ("/foo/../", "/"),
            ("/foo/../bar/", "/bar/"),
            ("/foo/bar/../", "/foo/"),
            ("/../bar/", "/../bar/"),
            ("/bar/../../", "/../"),
            ("/foo//../", "/foo/"),
            ("/foo/%2E%2E/", "/foo/%2E%2E/"),
        ];
        check("path-strip-dotdot", &dotdot);
        check("path-strip-dotdot full", &[("/../bar/", "/bar/"), ("/bar/../../", "/"), ("/foo/../bar/", "/bar/")]);
        check("path-strip-dotdot", &[("/a/b/..?q=../", "/a/?q=../")]);
        check("path-merge-slashes", &[("//", "/"), ("/foo//bar", "/foo/bar"), ("/a///b?x=//", "/a/b?x=//")]);
    }

    #[test]
    fn percent_normalizers_as_the_manual() {
        check(
            "percent-decode-unreserved",
            &[("/%61dmin", "/admin"), ("/foo%3Fbar=baz", "/foo%3Fbar=baz"), ("/%%36%36", "/%66"), ("/%ZZ", "/%ZZ")],
        );
        check("percent-decode-unreserved", &[("/a?x=%7e%41", "/a?x=~A"), ("/%2F", "/%2F")]);
        let strict = Normalizer::parse("percent-decode-unreserved strict").unwrap();
        assert_eq!(strict.apply(b"/%%36%36"), Err(Invalid));
        assert_eq!(strict.apply(b"/%ZZ"), Err(Invalid));
        assert_eq!(strict.apply(b"/%4"), Err(Invalid));
        assert_eq!(strict.apply(b"/%41"), Ok(Some(b"/A".to_vec())));
        check("percent-to-uppercase", &[("/%6f", "/%6F"), ("/%zz", "/%zz"), ("/a?b=%2f%3a", "/a?b=%2F%3A")]);
        let strict = Normalizer::parse("percent-to-uppercase strict").unwrap();
        assert_eq!(strict.apply(b"/%zz"), Err(Invalid));
        assert_eq!(strict.apply(b"/%6F"), Ok(None), "nothing to change");
    }

    #[test]
    fn query_and_fragment_normalizers_as_the_manual() {
        check(
            "query-sort-by-name",
            &[
                ("/?c=3&a=1&b=2", "/?a=1&b=2&c=3"),
                ("/?aaa=3&a=1&aa=2", "/?a=1&aa=2&aaa=3"),
                ("/?a=3&b=4&a=1&b=5&a=2", "/?a=3&a=1&a=2&b=4&b=5"),
                ("/p", "/p"),
                ("/p?", "/p?"),
            ],
        );
        check("fragment-strip", &[("/#foo", "/"), ("/a?b#c", "/a?b")]);
        assert!(Normalizer::parse("fragment-encode").unwrap_err().contains("cannot be honoured"));
        assert!(Normalizer::parse("path-strip-dot full").unwrap_err().contains("unknown normalizer"));
        assert!(Normalizer::parse("percent-to-uppercase loose").is_err());
    }
}
