//! `show errors`: the last request each frontend refused for its head, dumped as HAProxy 2.6
//! dumps it (the date, the proxy, the client, then the bytes line by line with their offsets),
//! so an operator can see exactly what a client sent.

use crate::log::format::accept_date;
use crate::state::ErrorCapture;
use std::fmt::Write;
use std::time::SystemTime;

/// One frontend's capture: its name, its number (`#N`, 1-based in config order) and the capture.
pub struct Shown<'a> {
    pub proxy: &'a str,
    pub id: usize,
    pub capture: ErrorCapture,
}

/// The whole answer: HAProxy's header line, then each capture.
pub fn render(now: SystemTime, total: u64, shown: &[Shown<'_>], buffer: usize) -> String {
    let mut out = format!("Total events captured on [{}] : {total}\n", accept_date(now));
    for s in shown {
        let c = &s.capture;
        out.push_str(" \n");
        let _ = writeln!(out, "[{}] frontend {} (#{}): invalid request", accept_date(c.at), s.proxy, s.id);
        let _ = writeln!(out, "  backend <NONE> (#-1), server <NONE> (#-1), event #{}, src {}", c.event, c.client);
        let _ = writeln!(out, "  buffer starts at 0 (including 0 out), {} free,", buffer.saturating_sub(c.bytes.len()));
        let _ = writeln!(out, "  len {}, wraps at {buffer}, reason: {} :", c.bytes.len(), c.reason);
        out.push_str("  \n");
        dump(&mut out, &c.bytes);
    }
    out
}

/// The bytes as HAProxy's `dump_text_line` shows them: a line per line of the request (or per
/// 64 bytes of a longer one), each with its offset, non-printable bytes escaped.
fn dump(out: &mut String, bytes: &[u8]) {
    let mut at = 0;
    while at < bytes.len() {
        let _ = write!(out, "  {at:05}  ");
        let end = bytes.len().min(at + 64);
        let line_end = bytes[at..end].iter().position(|&b| b == b'\n').map_or(end, |p| at + p + 1);
        for &b in &bytes[at..line_end] {
            match b {
                b'\r' => out.push_str("\\r"),
                b'\n' => out.push_str("\\n"),
                b'\t' => out.push_str("\\t"),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(b as char),
                _ => {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
        out.push('\n');
        at = line_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_capture_dumps_line_by_line_with_offsets_and_escapes() {
        let c = ErrorCapture {
            at: UNIX_EPOCH + Duration::from_millis(1_765_000_000_123),
            event: 3,
            client: "127.0.0.1:40000".parse().unwrap(),
            reason: "duplicate Content-Length",
            bytes: b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n".to_vec(),
        };
        let text = render(
            UNIX_EPOCH + Duration::from_secs(1_765_000_001),
            4,
            &[Shown { proxy: "fe", id: 2, capture: c.clone() }],
            16384,
        );
        let want = concat!(
            "Total events captured on [06/Dec/2025:05:46:41.000] : 4\n \n",
            "[06/Dec/2025:05:46:40.123] frontend fe (#2): invalid request\n",
            "  backend <NONE> (#-1), server <NONE> (#-1), event #3, src 127.0.0.1:40000\n",
            "  buffer starts at 0 (including 0 out), 16351 free,\n",
            "  len 33, wraps at 16384, reason: duplicate Content-Length :\n  \n",
            "  00000  GET / HTTP/1.1\\r\\n\n",
            "  00016  Host: a\\r\\n\n",
            "  00025  X: \\x01\\r\\n\n",
            "  00031  \\r\\n\n",
        );
        assert_eq!(text, want);
        // A line longer than 64 bytes is cut into pieces.
        let long = ErrorCapture { bytes: vec![b'a'; 70], ..c };
        let text = render(UNIX_EPOCH, 1, &[Shown { proxy: "fe", id: 1, capture: long }], 100);
        assert!(text.ends_with(&format!("  00000  {}\n  00064  aaaaaa\n", "a".repeat(64))), "{text}");
    }
}
