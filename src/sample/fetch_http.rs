//! The HTTP parts fetches read: header values split as HAProxy splits them, cookies, query
//! parameters and `base`. Single-sample forms serve expressions, `*_all` forms serve ACLs, which
//! see every occurrence.

use super::fetch::SampleContext;
use super::value::Value;
use http::HeaderMap;

/// `base`: the Host header followed by the path without its query string.
pub(super) fn base(ctx: &dyn SampleContext) -> Option<Vec<u8>> {
    let path = ctx.uri()?.path().as_bytes();
    match first_header(ctx.req_headers()?, "host").filter(|h| !h.is_empty()) {
        None => Some(path.to_vec()),
        Some(host) => {
            let mut out = host.to_vec();
            if path.starts_with(b"/") {
                out.extend_from_slice(path);
            }
            Some(out)
        }
    }
}

pub(super) fn first_header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    h.get(name).map(|v| v.as_bytes())
}

/// Comma-separated values of a header line, trimmed; commas inside double quotes do not split.
pub(super) fn split_values(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Most lines hold one value: no quote tracking byte by byte then.
    let mut rest = Some(line);
    let mut single = !line.contains(&b',');
    std::iter::from_fn(move || {
        let s = rest?;
        if single {
            (rest, single) = (None, false);
            return Some(s.trim_ascii());
        }
        let mut quoted = false;
        let end = s.iter().position(|&c| {
            if c == b'"' {
                quoted = !quoted;
            }
            c == b',' && !quoted
        });
        let (value, next) = match end {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        rest = next;
        Some(value.trim_ascii())
    })
}

/// A header name as a fetch argument: the text as written, and its parsed form so a lookup does
/// not parse the name again for every request (`None`: no valid header name, found nowhere).
#[derive(Debug, Clone)]
pub struct HdrName {
    text: String,
    key: Option<http::HeaderName>,
}

impl HdrName {
    pub fn new(text: String) -> HdrName {
        let key = http::HeaderName::from_bytes(text.as_bytes()).ok();
        HdrName { text, key }
    }

    /// Every line of this header in `h`.
    pub fn lines<'h>(&self, h: &'h HeaderMap) -> impl Iterator<Item = &'h http::HeaderValue> {
        self.key.as_ref().into_iter().flat_map(move |k| h.get_all(k).iter())
    }
}

impl std::ops::Deref for HdrName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for HdrName {
    fn eq(&self, other: &HdrName) -> bool {
        self.text == other.text
    }
}

impl Eq for HdrName {}

/// The `occ`th value (1-based; negative from the end; 0 or none the last) of header `name`, or
/// of all headers when no name is given. HAProxy 2.6 gives nothing for a bare `hdr`.
pub(super) fn header(h: &HeaderMap, name: Option<&HdrName>, occ: Option<i64>, full: bool) -> Option<Value> {
    if name.is_none() && occ.is_none() {
        return None;
    }
    let occ = occ.unwrap_or(0);
    // Counted from the front: no list of the values is needed.
    if occ >= 0 {
        let mut values = values_iter(h, name, full);
        let v = if occ == 0 { values.last() } else { values.nth((occ - 1) as usize) };
        return v.map(|v| Value::Str(v.to_vec()));
    }
    let values = header_values(h, name, full);
    let i = values.len().checked_sub(occ.unsigned_abs() as usize)?;
    values.get(i).map(|v| Value::Str(v.to_vec()))
}

/// Every `name=value` pair of every Cookie header.
pub(super) fn cookies(h: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    h.get_all("cookie").iter().flat_map(|v| v.as_bytes().split(|&c| c == b';')).filter_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&c| c == b'=')?;
        Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
    })
}

/// The first value of parameter `name` (any parameter when `None`) in a query string.
pub(super) fn url_param<'q>(query: &'q [u8], name: Option<&str>, delims: &[u8], icase: bool) -> Option<&'q [u8]> {
    query.split(|c| delims.contains(c)).find_map(|param| {
        let (n, v) = match param.iter().position(|&c| c == b'=') {
            Some(i) => (&param[..i], &param[i + 1..]),
            None => (param, &param[param.len()..]),
        };
        let hit = match name {
            None => !param.is_empty(),
            Some(want) if icase => n.eq_ignore_ascii_case(want.as_bytes()),
            Some(want) => n == want.as_bytes(),
        };
        hit.then_some(v)
    })
}

/// Every value of header `name` (of all headers when `None`): comma-separated values, or whole
/// lines with `full`.
pub(super) fn header_values<'h>(h: &'h HeaderMap, name: Option<&HdrName>, full: bool) -> Vec<&'h [u8]> {
    values_iter(h, name, full).collect()
}

/// [`header_values`] one by one.
fn values_iter<'h>(h: &'h HeaderMap, name: Option<&HdrName>, full: bool) -> impl Iterator<Item = &'h [u8]> {
    let named = name.map(|n| n.lines(h));
    let all = name.is_none().then(|| h.values());
    let lines = named.into_iter().flatten().chain(all.into_iter().flatten());
    lines.map(|v| v.as_bytes()).flat_map(move |l| {
        let mut split = (!full).then(|| split_values(l));
        let mut whole = full.then_some(l);
        std::iter::from_fn(move || match &mut split {
            Some(s) => s.next(),
            None => whole.take(),
        })
    })
}

/// Every value of parameter `name` (of every parameter when `None`) in a query string.
pub(super) fn url_params<'q>(query: &'q [u8], name: Option<&str>, delims: &[u8], icase: bool) -> Vec<&'q [u8]> {
    query.split(|c| delims.contains(c)).filter_map(|param| url_param(param, name, delims, icase)).collect()
}
