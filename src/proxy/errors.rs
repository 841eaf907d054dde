//! Responses the proxy writes itself, with HAProxy's short HTML bodies so clients and monitoring
//! that parse them keep working.

use super::body::ProxyBody;
use http::{Response, StatusCode};

/// Why the proxy answered instead of a server; shown in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    BadRequest(&'static str),
    /// The request line does not fit `tune_bufsize`.
    UriTooLong,
    /// The header section does not fit `tune_bufsize`, or has more than 100 fields.
    HeadersTooLarge,
    /// The request head did not complete within `timeout http-request`.
    RequestTimeout,
    /// The client closed within a request head, or before sending anything (HAProxy's 400, `CR--`).
    ClosedEarly,
    Denied,
    NoServer,
    ServerFailed,
    ServerTimeout,
    ConnectFailed,
    QueueTimeout,
    /// The server the request's hash chose is at `maxconn` with `maxqueue` requests waiting.
    QueueFull,
    /// Health checks marked the server down while the request waited for its response, and the
    /// server has `on-marked-down shutdown-sessions`.
    ServerMarkedDown,
    /// `option abortonclose`: the client closed while its request waited for a slot (`connecting`:
    /// for its server connection). Nothing is sent back.
    ClientAborted {
        connecting: bool,
    },
    /// The client reset its connection, or closed it before its request body's end, while the
    /// body was being forwarded: HAProxy's `CD`, with no answer (the connection is closed).
    ClientReset,
}

impl ProxyError {
    pub fn status(self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::ClosedEarly => StatusCode::BAD_REQUEST,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Denied => StatusCode::FORBIDDEN,
            ProxyError::NoServer
            | ProxyError::ConnectFailed
            | ProxyError::QueueTimeout
            | ProxyError::QueueFull
            | ProxyError::ServerMarkedDown => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ServerFailed => StatusCode::BAD_GATEWAY,
            ProxyError::ServerTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::ClientAborted { .. } | ProxyError::ClientReset => StatusCode::BAD_REQUEST,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            ProxyError::BadRequest(why) => why,
            ProxyError::UriTooLong => "request line larger than the buffer (tune_bufsize)",
            ProxyError::HeadersTooLarge => "header section larger than the buffer (tune_bufsize) or too many fields",
            ProxyError::RequestTimeout => "timeout http-request: the request head did not complete in time",
            ProxyError::ClosedEarly => "the client closed the connection before its request head was complete",
            ProxyError::Denied => "denied by rule",
            ProxyError::NoServer => "no server available",
            ProxyError::ServerFailed => "server returned an invalid or incomplete response",
            ProxyError::ServerTimeout => "server timeout",
            ProxyError::ConnectFailed => "cannot connect to any server",
            ProxyError::QueueTimeout => "timeout queue: every server stayed at maxconn",
            ProxyError::QueueFull => "the server the request hashes to is at maxconn and its queue at maxqueue",
            ProxyError::ServerMarkedDown => {
                "server marked down while the response was awaited (on-marked-down shutdown-sessions)"
            }
            ProxyError::ClientAborted { .. } => "client closed while its request waited for a server (abortonclose)",
            ProxyError::ClientReset => "client reset or closed the connection during its request body",
        }
    }

    /// Whether the client connection closes after this answer. HAProxy 2.6 keeps it after a
    /// denial and a 503 (the client did nothing wrong and may go on), closes it after a bad
    /// request (the stream may be out of step) and after a server failure.
    pub fn closes(self) -> bool {
        !matches!(
            self,
            ProxyError::Denied
                | ProxyError::NoServer
                | ProxyError::ConnectFailed
                | ProxyError::QueueTimeout
                | ProxyError::QueueFull
                | ProxyError::ServerMarkedDown
        )
    }
}

/// A complete error response after which the connection is closed, as HAProxy does for 400,
/// 408, 431, 502 and 504.
pub fn page(status: StatusCode) -> Response<ProxyBody> {
    built(status, true)
}

/// A complete error response that leaves the connection open (denials, 503).
pub fn page_keep(status: StatusCode) -> Response<ProxyBody> {
    built(status, false)
}

/// HAProxy's built-in page, marked so the proxy's own page for the code can replace it.
fn built(status: StatusCode, close: bool) -> Response<ProxyBody> {
    let mut reply = super::errpages::Reply::builtin(status.as_u16());
    // HAProxy's 400 and 408 pages close whoever sends them.
    let close = close || reply.close;
    reply.close = close;
    let mut r = reply.response();
    r.extensions_mut().insert(super::errpages::Builtin { code: status.as_u16(), close });
    r
}
