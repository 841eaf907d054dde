//! HAProxy's `retry-on`: which failures send a request to a server again. Connection failures
//! are retried by default; the others (layer-7 retries) only for a request that can be sent
//! again as it was, which for lbha means one without a body (HAProxy also replays a body it
//! has fully buffered; lbha streams bodies, so a request with one is never replayed).

/// A set of `retry-on` keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn(u32);

const CONN_FAILURE: u32 = 1;
const EMPTY_RESPONSE: u32 = 1 << 1;
const JUNK_RESPONSE: u32 = 1 << 2;
const RESPONSE_TIMEOUT: u32 = 1 << 3;
const ZERO_RTT_REJECTED: u32 = 1 << 4;
const STATUSES: [u16; 9] = [404, 408, 425, 500, 501, 502, 503, 504, 0];

fn status_bit(code: u16) -> Option<u32> {
    STATUSES.iter().position(|&s| s == code && s != 0).map(|i| 1 << (8 + i))
}

impl Default for RetryOn {
    /// HAProxy's default: `conn-failure`.
    fn default() -> Self {
        RetryOn(CONN_FAILURE)
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made.
    Conn,
    /// The server closed without answering.
    Empty,
    /// The answer was not HTTP.
    Junk,
    /// No answer within `timeout server`.
    Timeout,
    /// An answer with this status.
    Status(u16),
}

impl RetryOn {
    /// Parses `"conn-failure empty-response 503 ..."` (blank or comma separated). `none`
    /// disables retries.
    pub fn parse(text: &str) -> Result<RetryOn, String> {
        let mut bits = 0;
        for w in text.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
            bits |= match w {
                "none" => 0,
                "conn-failure" => CONN_FAILURE,
                "empty-response" => EMPTY_RESPONSE,
                "junk-response" => JUNK_RESPONSE,
                "response-timeout" => RESPONSE_TIMEOUT,
                "0rtt-rejected" => ZERO_RTT_REJECTED,
                // HAProxy: every failure that is safe to retry.
                "all-retryable-errors" => {
                    CONN_FAILURE
                        | EMPTY_RESPONSE
                        | JUNK_RESPONSE
                        | RESPONSE_TIMEOUT
                        | ZERO_RTT_REJECTED
                        | [500, 502, 503, 504].iter().filter_map(|&c| status_bit(c)).fold(0, |a, b| a | b)
                }
                code => match code.parse::<u16>().ok().and_then(status_bit) {
                    Some(b) => b,
                    None => {
                        return Err(format!(
                            "unknown retry-on keyword `{w}` (none, conn-failure, empty-response, junk-response, response-timeout, 0rtt-rejected, 404, 408, 425, 500, 501, 502, 503, 504, all-retryable-errors)"
                        ));
                    }
                },
            };
        }
        Ok(RetryOn(bits))
    }

    pub fn conn_failure(self) -> bool {
        self.0 & CONN_FAILURE != 0
    }

    /// Whether any failure past the connection is retried (the request is then kept for a replay).
    pub fn layer7(self) -> bool {
        self.0 & !CONN_FAILURE != 0
    }

    fn covers(self, f: Failure) -> bool {
        let bit = match f {
            Failure::Conn => CONN_FAILURE,
            Failure::Empty => EMPTY_RESPONSE,
            Failure::Junk => JUNK_RESPONSE,
            Failure::Timeout => RESPONSE_TIMEOUT,
            Failure::Status(c) => status_bit(c).unwrap_or(0),
        };
        self.0 & bit != 0
    }

    /// Whether attempt number `attempt` (0 for the first) that failed with `f` is tried again,
    /// with `retries` allowed. `replayable`: the request has no body (and is no upgrade), so
    /// it can be sent again as it was; a connection failure never sent it, so needs no replay.
    pub fn retry(self, f: Failure, replayable: bool, attempt: u32, retries: u32) -> bool {
        attempt < retries && self.covers(f) && (f == Failure::Conn || replayable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_connection_failures_only() {
        let d = RetryOn::default();
        assert!(d.retry(Failure::Conn, false, 0, 3));
        assert!(!d.retry(Failure::Status(503), true, 0, 3));
        assert!(!d.retry(Failure::Empty, true, 0, 3));
        assert!(!d.layer7());
    }

    #[test]
    fn each_keyword_covers_its_failure_and_only_replayable_requests_go_again() {
        let r = RetryOn::parse("empty-response junk-response response-timeout 404 503").unwrap();
        assert!(!r.conn_failure(), "retry-on replaces the default");
        assert!(!r.retry(Failure::Conn, true, 0, 3));
        for f in [Failure::Empty, Failure::Junk, Failure::Timeout, Failure::Status(404), Failure::Status(503)] {
            assert!(r.retry(f, true, 0, 3), "{f:?}");
            assert!(!r.retry(f, false, 0, 3), "{f:?} with a body is not replayed");
            assert!(!r.retry(f, true, 3, 3), "{f:?} after the last retry");
        }
        assert!(!r.retry(Failure::Status(500), true, 0, 3));
        assert!(!r.retry(Failure::Status(200), true, 0, 3));
    }

    #[test]
    fn all_retryable_errors_and_none() {
        let a = RetryOn::parse("all-retryable-errors").unwrap();
        for f in
            [Failure::Conn, Failure::Empty, Failure::Junk, Failure::Timeout, Failure::Status(500), Failure::Status(504)]
        {
            assert!(a.retry(f, true, 0, 1), "{f:?}");
        }
        assert!(!a.retry(Failure::Status(404), true, 0, 1), "404 is not an error to retry by default");
        assert!(!a.retry(Failure::Status(501), true, 0, 1));
        let n = RetryOn::parse("none").unwrap();
        assert!(!n.retry(Failure::Conn, true, 0, 3));
        assert!(RetryOn::parse("conn-failure,408 425 501 502 504 0rtt-rejected").is_ok());
        let e = RetryOn::parse("conn-failure 418").unwrap_err();
        assert!(e.contains("`418`"), "{e}");
    }
}
