//! The callee's reading of a hello and the caller's reading of a status line: never a panic,
//! and an accepted hello names a configured peer.
#![no_main]

use lbha::peers::handshake::{HelloCheck, check_hello, parse_status, take_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let known = |n: &[u8]| n == b"b" || n == b"hapB";
    if let Ok(HelloCheck::Accept { hello, used }) = check_hello(data, "a", known, 256) {
        assert!(known(hello.peer));
        assert!(used <= data.len());
    }
    if let Ok(Some((line, n))) = take_line(data, 256) {
        assert!(n <= data.len());
        let _ = parse_status(line);
    }
});
