//! Any byte stream a peer may send after the hello: framing, every message, update bodies
//! against the last definition, and the table handover's reader. Nothing may panic; what
//! decodes must survive encode → decode unchanged.
#![no_main]

use lbha::peers::codec::DEFAULT_MAX_LEN;
use lbha::peers::{Entry, Message, Shape, next_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut shape: Option<Shape> = None;
    while let Ok(Some((frame, used))) = next_frame(rest, DEFAULT_MAX_LEN) {
        rest = &rest[used..];
        let Ok(msg) = Message::decode(frame) else { continue };
        let mut out = Vec::new();
        msg.encode(&mut out);
        let (again, n) = next_frame(&out, usize::MAX).expect("own framing").expect("whole frame");
        assert_eq!(n, out.len());
        assert_eq!(Message::decode(again).expect("own encoding decodes"), msg);
        match &msg {
            Message::Definition(d) => shape = Shape::from_definition(d).ok(),
            Message::Update(u) => {
                let Some(s) = &shape else { continue };
                let Ok(e) = Entry::decode(u.body, s) else { continue };
                let mut body = Vec::new();
                e.encode(&mut body);
                assert_eq!(Entry::decode(&body, s).expect("own entry decodes"), e);
            }
            _ => {}
        }
    }
});
