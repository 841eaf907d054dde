//! `http-request early-hint NAME FMT`: `103 Early Hints` interim responses, built as HAProxy
//! 2.6 builds them. Each run of `early-hint` rules makes one 103 (`HTTP/1.1 103 Early Hints`,
//! its fields, an empty line), which ends at a rule that is not an `early-hint` or carries a
//! condition; HTTP/1.0 clients get none.
//!
//! The bytes go into the connection's [`EarlyHints`] slot, which the lean HTTP/1 path (see
//! `h1server`) puts on each request it serves and writes out while the request is still being
//! processed, before its response. hyper 1 has no way for a server to send a 1xx, so a request
//! hyper serves (HTTP/2, or an HTTP/1 request with a body) carries no slot and gets no 103 (an
//! early hint is advisory: the response itself is unchanged).

use bytes::Bytes;
use http::HeaderName;
use std::sync::{Arc, Mutex};

/// Where a connection's 103 responses wait to be written.
#[derive(Clone, Default)]
pub struct EarlyHints(Arc<Mutex<Hints>>);

#[derive(Default)]
struct Hints {
    /// The 103 being built (empty: none started).
    open: Vec<u8>,
    /// Whole 103 responses to write, in order.
    ready: Vec<u8>,
}

impl EarlyHints {
    /// Adds `name: value` to the 103 being built (starting one); `last` ends it. A value that
    /// cannot be a field value (a CR, LF or NUL in it) is left out.
    pub fn add(&self, name: &HeaderName, value: &[u8], last: bool) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if http::HeaderValue::from_bytes(value).is_ok() {
            if h.open.is_empty() {
                h.open.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\n");
            }
            h.open.extend_from_slice(name.as_str().as_bytes());
            h.open.extend_from_slice(b": ");
            h.open.extend_from_slice(value);
            h.open.extend_from_slice(b"\r\n");
        }
        if last && !h.open.is_empty() {
            let mut done = std::mem::take(&mut h.open);
            done.extend_from_slice(b"\r\n");
            h.ready.extend_from_slice(&done);
        }
    }

    /// The whole 103 responses waiting, to be written now.
    pub fn take(&self) -> Option<Bytes> {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (!h.ready.is_empty()).then(|| Bytes::from(std::mem::take(&mut h.ready)))
    }

    /// Drops a 103 left unfinished (a request whose rules stopped inside a run).
    pub fn clear(&self) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HeaderName {
        HeaderName::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn runs_of_hints_make_one_103_each_as_haproxy() {
        let h = EarlyHints::default();
        assert_eq!(h.take(), None);
        h.add(&name("link"), b"</style.css>; rel=preload; as=style", true);
        h.add(&name("Link"), b"</script.js>; rel=preload; as=script", false);
        assert_eq!(
            h.take().as_deref(),
            Some(&b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n"[..]),
            "an unfinished 103 waits"
        );
        h.add(&name("x-path"), b"/x", true);
        // The bytes HAProxy 2.6 wrote for the same rules.
        assert_eq!(
            h.take().as_deref(),
            Some(&b"HTTP/1.1 103 Early Hints\r\nlink: </script.js>; rel=preload; as=script\r\nx-path: /x\r\n\r\n"[..])
        );
        assert_eq!(h.take(), None);
    }

    #[test]
    fn a_value_that_cannot_be_a_field_is_left_out() {
        let h = EarlyHints::default();
        h.add(&name("link"), b"a\r\nx: y", false);
        h.add(&name("link"), b"</a>", true);
        assert_eq!(h.take().as_deref(), Some(&b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"[..]));
        h.add(&name("link"), b"bad\n", true);
        assert_eq!(h.take(), None, "nothing left to send");
        h.add(&name("link"), b"</b>", false);
        h.clear();
        h.add(&name("link"), b"</c>", true);
        assert_eq!(h.take().as_deref(), Some(&b"HTTP/1.1 103 Early Hints\r\nlink: </c>\r\n\r\n"[..]));
    }
}
