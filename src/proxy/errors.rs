//! Responses the proxy writes itself, with HAProxy's short HTML bodies so clients and monitoring
//! that parse them keep working.

use super::body::{ProxyBody, full};
use http::{HeaderValue, Response, StatusCode, header};

/// Why the proxy answered instead of a server; shown in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    BadRequest(&'static str),
    /// The request line does not fit `tune_bufsize`.
    UriTooLong,
    /// The header section does not fit `tune_bufsize`, or has more than 100 fields.
    HeadersTooLarge,
    Denied,
    NoServer,
    ServerFailed,
    ServerTimeout,
    ConnectFailed,
    QueueTimeout,
    /// Health checks marked the server down while the request waited for its response, and the
    /// server has `on-marked-down shutdown-sessions`.
    ServerMarkedDown,
}

impl ProxyError {
    pub fn status(self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::Denied => StatusCode::FORBIDDEN,
            ProxyError::NoServer
            | ProxyError::ConnectFailed
            | ProxyError::QueueTimeout
            | ProxyError::ServerMarkedDown => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ServerFailed => StatusCode::BAD_GATEWAY,
            ProxyError::ServerTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            ProxyError::BadRequest(why) => why,
            ProxyError::UriTooLong => "request line larger than the buffer (tune_bufsize)",
            ProxyError::HeadersTooLarge => "header section larger than the buffer (tune_bufsize) or too many fields",
            ProxyError::Denied => "denied by rule",
            ProxyError::NoServer => "no server available",
            ProxyError::ServerFailed => "server returned an invalid or incomplete response",
            ProxyError::ServerTimeout => "server timeout",
            ProxyError::ConnectFailed => "cannot connect to any server",
            ProxyError::QueueTimeout => "timeout queue: every server stayed at maxconn",
            ProxyError::ServerMarkedDown => {
                "server marked down while the response was awaited (on-marked-down shutdown-sessions)"
            }
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
                | ProxyError::ServerMarkedDown
        )
    }
}

/// HAProxy's body text for a status.
pub fn page_text(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
        414 => "<html><body><h1>414 URI Too Long</h1>\nThe request line is too long.\n</body></html>\n",
        401 => {
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n"
        }
        404 => "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n",
        405 => {
            "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource\n</body></html>\n"
        }
        410 => {
            "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n"
        }
        413 => {
            "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n"
        }
        403 => "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n",
        429 => {
            "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n"
        }
        408 => {
            "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n"
        }
        431 => {
            "<html><body><h1>431 Request Header Fields Too Large</h1>\nThe request header section is too large.\n</body></html>\n"
        }
        500 => "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n",
        502 => {
            "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"
        }
        503 => {
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
        }
        504 => "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
        _ => "<html><body><h1>Error</h1>\nThe request could not be served.\n</body></html>\n",
    }
}

/// A complete error response after which the connection is closed, as HAProxy does for 400,
/// 408, 431, 502 and 504.
pub fn page(status: StatusCode) -> Response<ProxyBody> {
    let mut r = page_keep(status);
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A complete error response that leaves the connection open (denials, 503).
pub fn page_keep(status: StatusCode) -> Response<ProxyBody> {
    let mut r = Response::new(full(page_text(status)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
