//! Fuzzes the peers protocol decoder: `lbha::peers` handshake check, framing, messages and
//! update bodies, the way a session reads a stream.
//!
//! Input layout: `mode, bytes`. Mode bit 0 reads `bytes` as a hello (the callee's check);
//! otherwise `bytes` is a binary stream: messages are cut one by one, a definition that decodes
//! becomes the shape the following updates are read with, and dictionary values go through a
//! session cache. Bit 1 lowers the size limit to 64 bytes so the oversize path is reached.
//!
//! Beyond "never panics": every message and update body that decodes encodes to bytes that
//! decode to the same thing, and a frame never claims more bytes than it was given.

#![no_main]

use lbha::peers::entry::DictRx;
use lbha::peers::handshake::{HelloCheck, check_hello};
use lbha::peers::{Entry, Message, Shape, Value, codec, next_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut buf)) = data.split_first() else {
        return;
    };
    if mode & 1 != 0 {
        let known = |n: &[u8]| n == b"hapA" || n == b"hapB";
        if let Ok(HelloCheck::Accept { used, .. }) = check_hello(buf, "hapA", known, 256) {
            assert!(used <= buf.len());
        }
        return;
    }
    let max = if mode & 2 != 0 { 64 } else { codec::DEFAULT_MAX_LEN };
    let mut shape: Option<Shape> = None;
    let mut dict = DictRx::default();
    loop {
        let (frame, n) = match next_frame(buf, max) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                let _ = (e.to_string(), e.disposition());
                return;
            }
        };
        assert!(n >= 2 && n <= buf.len());
        buf = &buf[n..];
        let msg = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                let _ = (e.to_string(), e.disposition());
                if frame.typ == codec::TYPE_DEFINE {
                    shape = None;
                }
                continue;
            }
        };
        let mut out = Vec::new();
        msg.encode(&mut out);
        let (again, m) = next_frame(&out, usize::MAX).unwrap().unwrap();
        assert_eq!(m, out.len());
        assert_eq!(Message::decode(again).unwrap(), msg, "message round trip");
        match msg {
            Message::Definition(d) => shape = Shape::from_definition(&d).ok(),
            Message::Update(u) => {
                let Some(s) = &shape else { continue };
                let Ok(entry) = Entry::decode(u.body, s) else { continue };
                let mut body = Vec::new();
                entry.encode(&mut body);
                assert_eq!(body, u.body, "update body round trip");
                for (_, v) in &entry.values {
                    if let Value::Dict(d) = v {
                        let _ = dict.resolve(d);
                    }
                }
            }
            _ => {}
        }
    }
});
