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
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let s = rest?;
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

/// The `occ`th value (1-based; negative from the end; 0 or none the last) of header `name`, or
/// of all headers when no name is given. HAProxy 2.6 gives nothing for a bare `hdr`.
pub(super) fn header(h: &HeaderMap, name: Option<&str>, occ: Option<i64>, full: bool) -> Option<Value> {
    if name.is_none() && occ.is_none() {
        return None;
    }
    let occ = occ.unwrap_or(0);
    let values = header_values(h, name, full);
    let i = match occ {
        0 => values.len().checked_sub(1)?,
        n if n > 0 => (n - 1) as usize,
        n => values.len().checked_sub(n.unsigned_abs() as usize)?,
    };
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
pub(super) fn header_values<'h>(h: &'h HeaderMap, name: Option<&str>, full: bool) -> Vec<&'h [u8]> {
    let lines: Vec<&[u8]> = match name {
        Some(n) => h.get_all(n).iter().map(|v| v.as_bytes()).collect(),
        None => h.values().map(|v| v.as_bytes()).collect(),
    };
    if full { lines } else { lines.into_iter().flat_map(split_values).collect() }
}

/// Every value of parameter `name` (of every parameter when `None`) in a query string.
pub(super) fn url_params<'q>(query: &'q [u8], name: Option<&str>, delims: &[u8], icase: bool) -> Vec<&'q [u8]> {
    query.split(|c| delims.contains(c)).filter_map(|param| url_param(param, name, delims, icase)).collect()
}
