//! The text handshake (peers.md §1): the caller sends three lines, the callee answers one status
//! line, then both sides switch to binary messages.
//!
//! ```text
//! HAProxyS 2.1\n          protocol name, space, major.minor
//! <callee's peer name>\n
//! <caller's name> <pid> <relative pid>\n
//! ```
//!
//! Lines end in LF, optionally preceded by CR. The callee judges each line as soon as it has it,
//! as HAProxy 2.6 does, so a bad first line is answered without waiting for the other two.

/// Protocol version this implementation speaks; 2.0 is accepted from peers (no timed updates).
pub const VERSION: Version = Version { major: 2, minor: 1 };
/// Announced after a peer answered 502 (HAProxy's downgrade).
pub const VERSION_DOWNGRADED: Version = Version { major: 2, minor: 0 };
const PROTO: &[u8] = b"HAProxyS ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// Whether the timed update forms (0x85/0x86) may be sent to a peer of this version.
    pub fn has_timed_updates(self) -> bool {
        self.major == 2 && self.minor >= 1
    }
}

/// Status codes of the handshake answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success = 200,
    /// The local peer (same name, other process) collides with an existing session.
    TryAgain = 300,
    /// First line is not `HAProxyS ...`, or the third line has no space.
    ErrProto = 501,
    /// Major version is not 2 or minor version above 1.
    ErrVersion = 502,
    /// Second line is not the callee's name.
    ErrHost = 503,
    /// Third line names no configured peer.
    ErrPeer = 504,
}

impl Status {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The status line as sent.
    pub fn line(self) -> String {
        format!("{}\n", self.code())
    }

    pub fn from_code(code: u32) -> Option<Status> {
        Some(match code {
            200 => Status::Success,
            300 => Status::TryAgain,
            501 => Status::ErrProto,
            502 => Status::ErrVersion,
            503 => Status::ErrHost,
            504 => Status::ErrPeer,
            _ => return None,
        })
    }
}

/// Why no status can be given: the connection is simply closed (2.6 does the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("handshake line longer than {0} bytes")]
    TooLong(usize),
}

/// Cuts one line off `buf`: the line without CR/LF and the bytes taken; `Ok(None)` when the LF
/// has not arrived yet.
pub fn take_line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, LineError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i < max => {
            let line = &buf[..i];
            Ok(Some((line.strip_suffix(b"\r").unwrap_or(line), i + 1)))
        }
        Some(_) => Err(LineError::TooLong(max)),
        None if buf.len() >= max => Err(LineError::TooLong(max)),
        None => Ok(None),
    }
}

/// The hello a caller sends. `pid` is the caller's process id; the relative pid is always 1.
pub fn hello(version: Version, callee: &str, caller: &str, pid: u32) -> String {
    format!("HAProxyS {}.{}\n{callee}\n{caller} {pid} 1\n", version.major, version.minor)
}

/// A hello accepted by the callee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello<'a> {
    pub version: Version,
    /// The caller's peer name.
    pub peer: &'a [u8],
    /// What follows the name on the third line (pid and relative pid, not checked).
    pub rest: &'a [u8],
}

/// Outcome of feeding the bytes received so far to the callee's hello check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloCheck<'a> {
    /// More bytes needed.
    Incomplete,
    /// Answer this status and close.
    Reject(Status),
    /// Answer 200 (unless the session layer finds a reason for 300); `used` bytes were the hello,
    /// binary messages may follow right behind.
    Accept { hello: Hello<'a>, used: usize },
}

/// Reads a hello from the start of `buf` as the callee named `local`; `is_peer` tells whether
/// a name belongs to the peers section.
pub fn check_hello<'a>(
    buf: &'a [u8],
    local: &str,
    is_peer: impl Fn(&[u8]) -> bool,
    max_line: usize,
) -> Result<HelloCheck<'a>, LineError> {
    let Some((first, n1)) = take_line(buf, max_line)? else {
        return Ok(HelloCheck::Incomplete);
    };
    let Some(version) = first.strip_prefix(PROTO) else {
        return Ok(HelloCheck::Reject(Status::ErrProto));
    };
    let version = match parse_version(version) {
        Some(v) if v.major == 2 && v.minor <= 1 => v,
        _ => return Ok(HelloCheck::Reject(Status::ErrVersion)),
    };
    let Some((host, n2)) = take_line(&buf[n1..], max_line)? else {
        return Ok(HelloCheck::Incomplete);
    };
    if host != local.as_bytes() {
        return Ok(HelloCheck::Reject(Status::ErrHost));
    }
    let Some((last, n3)) = take_line(&buf[n1 + n2..], max_line)? else {
        return Ok(HelloCheck::Incomplete);
    };
    let Some(space) = last.iter().position(|&b| b == b' ') else {
        return Ok(HelloCheck::Reject(Status::ErrProto));
    };
    let peer = &last[..space];
    if !is_peer(peer) {
        return Ok(HelloCheck::Reject(Status::ErrPeer));
    }
    Ok(HelloCheck::Accept { hello: Hello { version, peer, rest: &last[space + 1..] }, used: n1 + n2 + n3 })
}

/// `major.minor`, both decimal, nothing around them (HAProxy's read_uint twice).
fn parse_version(s: &[u8]) -> Option<Version> {
    let dot = s.iter().position(|&b| b == b'.')?;
    Some(Version { major: decimal(&s[..dot])?, minor: decimal(&s[dot + 1..])? })
}

fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // read_uint saturates; anything that long is no version 2.x anyway.
    Some(s.iter().fold(0u32, |acc, &d| acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))))
}

/// The caller's reading of the status line, as C `atoi` does: leading digits, else 0.
pub fn parse_status(line: &[u8]) -> u32 {
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    let digits = line[start..].iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0u32, |acc, &d| acc.wrapping_mul(10).wrapping_add(u32::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &[u8]) -> bool {
        name == b"hapA" || name == b"hapB"
    }

    fn check(buf: &[u8]) -> HelloCheck<'_> {
        check_hello(buf, "hapA", known, 1024).unwrap()
    }

    #[test]
    fn the_captured_hello_is_accepted() {
        let buf = b"HAProxyS 2.1\nhapA\nhapB 1643 1\n\x00\x00";
        let HelloCheck::Accept { hello, used } = check(buf) else { panic!("{:?}", check(buf)) };
        assert_eq!(used, buf.len() - 2, "binary messages may follow right behind");
        assert_eq!(hello.version, VERSION);
        assert_eq!(hello.peer, b"hapB");
        assert_eq!(hello.rest, b"1643 1");
        assert_eq!(super::hello(VERSION, "hapA", "hapB", 1643).as_bytes(), &buf[..used]);
    }

    /// The rejections of capture 03 (results.json) and the 2.0 downgrade of capture 05.
    #[test]
    fn status_codes_as_haproxy_2_6_answers() {
        let cases: &[(&[u8], Option<Status>)] = &[
            (b"HAProxyX 2.1\nhapA\nhapB 1 1\n", Some(Status::ErrProto)),
            (b"HAProxyS 3.0\nhapA\nhapB 1 1\n", Some(Status::ErrVersion)),
            (b"HAProxyS 2.2\nhapA\nhapB 1 1\n", Some(Status::ErrVersion)),
            (b"HAProxyS 2.1\nhapX\nhapB 1 1\n", Some(Status::ErrHost)),
            (b"HAProxyS 2.1\nhapA\nintruder 1 1\n", Some(Status::ErrPeer)),
            (b"HAProxyS 2.1\nhapA\nhapB\n", Some(Status::ErrProto)),
            (b"HAProxyS 2.x\nhapA\nhapB 1 1\n", Some(Status::ErrVersion)),
            (b"HAProxyS 2.1 \nhapA\nhapB 1 1\n", Some(Status::ErrVersion)),
            (b"HAProxyS 2.0\nhapA\nhapB 1 1\n", None),
            (b"HAProxyS 2.1\r\nhapA\r\nhapB 1 1\r\n", None),
        ];
        for (buf, want) in cases {
            let got = check(buf);
            match want {
                Some(s) => assert_eq!(got, HelloCheck::Reject(*s), "{}", String::from_utf8_lossy(buf)),
                None => assert!(matches!(got, HelloCheck::Accept { .. }), "{}: {got:?}", String::from_utf8_lossy(buf)),
            }
        }
        let HelloCheck::Accept { hello, .. } = check(b"HAProxyS 2.0\nhapA\nhapB 1 1\n") else { unreachable!() };
        assert!(!hello.version.has_timed_updates());
    }

    #[test]
    fn each_line_is_judged_as_soon_as_it_is_complete() {
        assert_eq!(check(b""), HelloCheck::Incomplete);
        assert_eq!(check(b"HAProxyS 2.1"), HelloCheck::Incomplete);
        assert_eq!(check(b"HAProxyX 2.1\n"), HelloCheck::Reject(Status::ErrProto));
        assert_eq!(check(b"HAProxyS 2.1\nhapA"), HelloCheck::Incomplete);
        assert_eq!(check(b"HAProxyS 2.1\nhapX\n"), HelloCheck::Reject(Status::ErrHost));
        assert_eq!(check(b"HAProxyS 2.1\nhapA\nhapB 1 1"), HelloCheck::Incomplete);
    }

    #[test]
    fn an_endless_line_closes_without_status() {
        assert_eq!(check_hello(&[b'a'; 64], "hapA", known, 64), Err(LineError::TooLong(64)));
        assert_eq!(check_hello(b"HAProxyS 2.1\n0123456789\n", "hapA", known, 8), Err(LineError::TooLong(8)));
    }

    #[test]
    fn status_lines() {
        assert_eq!(Status::Success.line(), "200\n");
        assert_eq!(Status::ErrPeer.line(), "504\n");
        for code in [200, 300, 501, 502, 503, 504] {
            assert_eq!(Status::from_code(code).map(|s| u32::from(s.code())), Some(code));
        }
        assert_eq!(Status::from_code(404), None);
        assert_eq!(parse_status(b"200"), 200);
        assert_eq!(parse_status(b" 502x"), 502);
        assert_eq!(parse_status(b"abc"), 0);
        assert_eq!(take_line(b"200\r\nrest", 16), Ok(Some((&b"200"[..], 5))));
    }
}
