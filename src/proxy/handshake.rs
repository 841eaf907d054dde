//! A client's TLS handshake that does not complete, as HAProxy 2.6 treats it (measured, HTTP and
//! TCP mode alike): bounded by `timeout client` (the embryonic session's timeout, not `timeout
//! http-request`), and logged as one line `CLIENT:PORT [ACCEPT_DATE] FRONTEND/BIND: REASON`
//! when the frontend logs sessions (`option httplog`, `option tcplog`, a `log-format`), at level
//! `err` under `option log-separate-errors`, else `info`. `option dontlognull` hides a timeout
//! and a close before the ClientHello, not a failure. `BIND` is the bind's `name`, else its
//! number in the frontend (1 for the first).

use std::net::SocketAddr;
use std::time::SystemTime;

/// Why a handshake did not complete: HAProxy's connection error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `timeout client` came first (`CO_ER_SSL_TIMEOUT`).
    Timeout,
    /// The client closed before the server answered a ClientHello (`CO_ER_SSL_EMPTY`).
    Closed,
    /// A protocol error, a reset, or a close after the server answered (`CO_ER_SSL_HANDSHAKE`).
    Failed,
}

impl Failure {
    /// The failure an error of the handshake stands for; `before_hello`: the server had not
    /// answered a ClientHello yet. A reset is a failure either way (as HAProxy, which sees the
    /// socket's error before OpenSSL does).
    pub fn of(err: &std::io::Error, before_hello: bool) -> Failure {
        if err.kind() == std::io::ErrorKind::UnexpectedEof && before_hello { Failure::Closed } else { Failure::Failed }
    }

    /// HAProxy's text for it (`conn_err_code_str`).
    pub fn reason(self) -> &'static str {
        match self {
            Failure::Timeout => "Timeout during SSL handshake",
            Failure::Closed => "Connection closed during SSL handshake",
            Failure::Failed => "SSL handshake failure",
        }
    }

    /// Whether the line is written: `dontlognull` hides a connection that carried nothing.
    pub fn logged(self, dontlognull: bool) -> bool {
        !dontlognull || self == Failure::Failed
    }
}

/// The bind's label in the line: its `name`, else its number in the frontend (HAProxy's luid).
pub fn bind_label(name: Option<&str>, index: usize) -> String {
    name.map_or_else(|| (index + 1).to_string(), str::to_string)
}

/// The line, as HAProxy's `session_prepare_log_prefix` plus the reason.
pub fn line(peer: SocketAddr, accepted: SystemTime, frontend: &str, bind: &str, f: Failure) -> String {
    let mut date = Vec::with_capacity(24);
    crate::log::format::accept_date_into(&mut date, accepted);
    let date = String::from_utf8_lossy(&date);
    format!("{}:{} [{date}] {frontend}/{bind}: {}", peer.ip(), peer.port(), f.reason())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn failures_read_as_haproxys() {
        let eof = Error::new(ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(Failure::of(&eof, true), Failure::Closed);
        assert_eq!(Failure::of(&eof, false), Failure::Failed, "closed after the server's answer");
        assert_eq!(Failure::of(&Error::from(ErrorKind::ConnectionReset), true), Failure::Failed);
        assert_eq!(Failure::of(&Error::new(ErrorKind::InvalidData, "bad record"), true), Failure::Failed);
        assert!(!Failure::Timeout.logged(true) && !Failure::Closed.logged(true) && Failure::Failed.logged(true));
        assert!(Failure::Timeout.logged(false) && Failure::Closed.logged(false));
    }

    #[test]
    fn the_line_is_haproxys_embryonic_session_line() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_614_032_171);
        let peer: SocketAddr = "127.0.0.1:55100".parse().unwrap();
        let l = line(peer, at, "fe", &bind_label(None, 2), Failure::Timeout);
        let date = crate::log::format::accept_date(at);
        assert_eq!(l, format!("127.0.0.1:55100 [{date}] fe/3: Timeout during SSL handshake"));
        let v6: SocketAddr = "[::1]:4000".parse().unwrap();
        let l = line(v6, at, "fe", &bind_label(Some("tls"), 0), Failure::Failed);
        assert!(l.starts_with("::1:4000 [") && l.ends_with("] fe/tls: SSL handshake failure"), "{l}");
    }
}
