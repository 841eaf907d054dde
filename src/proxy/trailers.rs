//! A request's trailers on their way to the server. HAProxy 2.6 forwards them (names lowercased)
//! to an HTTP/1 server, announced in `Trailer` or not, and to an HTTP/2 one without the fields
//! that describe the connection. lbha drops the same fields for either protocol, so a trailer
//! never carries framing (`Content-Length`, `Transfer-Encoding`) to a server, and an HTTP/2
//! server never gets a field its protocol forbids (the h2 crate would fail the request).
//!
//! hyper's HTTP/1 client writes only the trailers the request's `Trailer` field announces; the
//! client's `Trailer` is forwarded (as HAProxy does), and when the trailers are already read
//! before the request goes out (a body wait) the ones it does not name are added to it.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Fields that never go to a server in trailers: framing, and what HTTP/2 forbids or HAProxy's
/// HTTP/2 side drops (`host`).
pub fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::CONTENT_LENGTH
            | header::TRANSFER_ENCODING
            | header::HOST
            | header::CONNECTION
            | header::TE
            | header::UPGRADE
            | header::PROXY_AUTHORIZATION
    ) && !matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// `t` without the fields that may not be forwarded.
pub fn keep_forwardable(t: &mut HeaderMap) {
    if t.keys().all(forwardable) {
        return;
    }
    let doomed: Vec<HeaderName> = t.keys().filter(|n| !forwardable(n)).cloned().collect();
    for n in doomed {
        t.remove(n);
    }
}

/// Adds to `headers`' `Trailer` field the names of `trailers` it does not list yet, so hyper's
/// HTTP/1 client writes them; only names that client writes at all, and forwardable ones.
pub fn announce(headers: &mut HeaderMap, trailers: &HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    let mut missing: Vec<&str> = Vec::new();
    for name in trailers.keys() {
        if forwardable(name) && super::h1server::valid_trailer(name) && !listed.contains(name) {
            missing.push(name.as_str());
        }
    }
    if missing.is_empty() {
        return;
    }
    // Names are tokens: joined by ", " they make a valid field value.
    if let Ok(v) = HeaderValue::from_str(&missing.join(", ")) {
        headers.append(header::TRAILER, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn framing_and_connection_fields_never_cross_in_trailers() {
        let mut t = map(&[
            ("x-sum", "1"),
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
            ("host", "evil"),
            ("connection", "close"),
            ("keep-alive", "timeout=1"),
            ("proxy-connection", "close"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("proxy-authorization", "x"),
            ("trailer", "x"),
            ("x-sum", "2"),
        ]);
        keep_forwardable(&mut t);
        let left: Vec<(&str, &str)> = t.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(left, [("x-sum", "1"), ("x-sum", "2"), ("trailer", "x")]);
        let mut plain = map(&[("x-a", "1")]);
        keep_forwardable(&mut plain);
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn unannounced_trailers_are_added_to_the_trailer_field() {
        let mut h = map(&[("trailer", "X-Sum")]);
        announce(&mut h, &map(&[("x-sum", "1"), ("x-two", "2"), ("content-length", "3"), ("content-type", "a/b")]));
        let v: Vec<&str> = h.get_all("trailer").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(v, ["X-Sum", "x-two"], "listed names kept, forbidden and unwritable ones not added");
        let mut none = HeaderMap::new();
        announce(&mut none, &map(&[("x-sum", "1")]));
        assert_eq!(none["trailer"], "x-sum");
        let mut same = map(&[("trailer", "x-sum")]);
        announce(&mut same, &map(&[("x-sum", "1")]));
        assert_eq!(same.get_all("trailer").iter().count(), 1, "nothing to add");
    }
}
