use super::*;
use crate::peers::error::Disposition;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '|').collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn decode_one(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let (frame, n) = next_frame(bytes, DEFAULT_MAX_LEN)?.expect("complete");
    assert_eq!(n, bytes.len());
    Message::decode(frame)
}

fn round_trip(bytes: &[u8]) -> Message<'_> {
    let msg = decode_one(bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    msg.encode(&mut out);
    assert_eq!(out, bytes);
    msg
}

/// be_src's definition, capture 01 #13 (peers.md §4).
#[test]
fn definition_with_rate_periods() {
    let bytes =
        hex("0a 82 1a | 01 | 06 62 65 5f 73 72 63 | 04 | 04 | f7 d8 83 01 | f0 af 91 00 | 05 f0 e2 03 | 0a f0 e2 03");
    let Message::Definition(d) = round_trip(&bytes) else { panic!() };
    assert_eq!((d.table_id, d.name, d.key_type, d.key_len), (1, &b"be_src"[..], 4, 4));
    assert_eq!(d.data_types, 0x82677);
    assert_eq!(d.expire, Some(300000));
    assert_eq!(d.period(DataType::CONN_RATE), Some(10000));
    assert_eq!(d.period(DataType::HTTP_REQ_RATE), Some(10000));
    assert_eq!(d.params.len(), 2);
}

/// st_int's definition with gpc(2) and gpc_rate(2,10s), capture 01 #6.
#[test]
fn definition_with_arrays() {
    let bytes =
        hex("0a 82 19 | 03 | 06 73 74 5f 69 6e 74 | 02 | 04 | f0 91 ff 5e | f0 af 91 00 | 17 02 | 18 02 f0 e2 03");
    let Message::Definition(d) = round_trip(&bytes) else { panic!() };
    assert_eq!(d.data_types, 0x1800200);
    assert_eq!(d.count(DataType::GPC), 2);
    assert_eq!(d.count(DataType::GPC_RATE), 2);
    assert_eq!(d.period(DataType::GPC_RATE), Some(10000));
    assert_eq!(d.period(DataType::GPC), None);
}

#[test]
fn definition_faults_2_6_ignores_or_refuses() {
    // Old style: stops after the bitmask. Accepted without arrays, ignored with one.
    let old = hex("0a 82 09 | 01 | 03 61 62 63 | 04 | 04 | ff 00");
    let Message::Definition(d) = round_trip(&old) else { panic!() };
    assert_eq!((d.expire, d.params.len(), d.data_types), (None, 0, 0xff));
    let mut payload = hex("01 03 61 62 63 02 04");
    varint::encode(DataType::GPC.bit(), &mut payload);
    let mut framed_old = vec![0x0a, 0x82, payload.len() as u8];
    framed_old.extend_from_slice(&payload);
    assert_eq!(decode_one(&framed_old), Err(DecodeError::MissingParams("gpc")));
    // Expire present, rate group missing or for another type.
    let missing = hex("0a 82 0c 01 03 61 62 63 04 04 20 f0 af 91 00");
    assert_eq!(decode_one(&missing), Err(DecodeError::MissingParams("conn_rate")));
    let wrong = hex("0a 82 0e 01 03 61 62 63 04 04 20 f0 af 91 00 0a 05");
    let err = decode_one(&wrong).unwrap_err();
    assert_eq!(err, DecodeError::ParamsMismatch { expected: "conn_rate", found: 10 });
    assert_eq!(err.disposition(), Disposition::Ignore);
    // Malformed: empty name, name running past the end.
    assert_eq!(decode_one(&hex("0a 82 05 01 00 04 04 00")), Err(DecodeError::EmptyTableName));
    let e = decode_one(&hex("0a 82 03 01 09 61")).unwrap_err();
    assert_eq!(e, DecodeError::Truncated { what: "table name" });
    assert_eq!(e.disposition(), Disposition::ProtocolError);
}

/// A type newer than 2.6 (bit 26, glitch_rate in HAProxy 3.x) with its group: kept verbatim.
#[test]
fn definition_keeps_groups_of_unknown_types() {
    let mut payload = hex("01 03 61 62 63 04 04");
    varint::encode((1 << 26) | (1 << 9), &mut payload);
    varint::encode(300000, &mut payload);
    payload.extend_from_slice(&hex("1a f0 e2 03"));
    let mut bytes = vec![0x0a, 0x82, payload.len() as u8];
    bytes.extend_from_slice(&payload);
    let Message::Definition(d) = round_trip(&bytes) else { panic!() };
    assert_eq!(d.unknown_types(), 1 << 26);
    assert_eq!(d.trailing, hex("1a f0 e2 03"));
}

#[test]
fn control_error_ack_switch() {
    for (bytes, want) in [
        (hex("00 00"), Message::Control(Control::ResyncRequest)),
        (hex("00 01"), Message::Control(Control::ResyncFinished)),
        (hex("00 02"), Message::Control(Control::ResyncPartial)),
        (hex("00 03"), Message::Control(Control::ResyncConfirm)),
        (hex("00 04"), Message::Control(Control::Heartbeat)),
        (hex("01 00"), Message::Error(ErrorCode::Protocol)),
        (hex("01 01"), Message::Error(ErrorCode::SizeLimit)),
        (hex("0a 84 05 01 00 00 00 2c"), Message::Ack(Ack { table_id: 1, update: 44 })),
        (hex("0a 83 01 07"), Message::Switch { table_id: 7 }),
    ] {
        assert_eq!(round_trip(&bytes), want);
    }
    assert_eq!(decode_one(&hex("0a 84 03 01 00 00")), Err(DecodeError::Truncated { what: "ack update id" }));
}

#[test]
fn update_forms() {
    // 01 #14 header: explicit id 7.
    let bytes1 = hex("0a 80 06 00 00 00 07 7f 00");
    let Message::Update(u) = round_trip(&bytes1) else { panic!() };
    assert_eq!((u.id, u.expire, u.body), (Some(7), None, &[0x7f, 0][..]));
    // 01 #41: timed incremental, expire 293881.
    let bytes = hex("0a 86 12 | 00 04 7b f9 | 0a 53 32 53 45 53 53 30 30 30 36 | 02 | 01 02");
    let Message::Update(u) = round_trip(&bytes) else { panic!() };
    assert_eq!((u.id, u.expire, u.message_type()), (None, Some(293881), TYPE_INC_UPDATE_TIMED));
    let bytes2 = hex("0a 81 01 aa");
    let Message::Update(u) = round_trip(&bytes2) else { panic!() };
    assert_eq!((u.id, u.expire), (None, None));
    let bytes3 = hex("0a 85 08 00 00 00 03 00 00 1f 40");
    let Message::Update(u) = round_trip(&bytes3) else { panic!() };
    assert_eq!((u.id, u.expire, u.body), (Some(3), Some(8000), &[][..]));
    assert_eq!(decode_one(&hex("0a 80 03 00 00 00")), Err(DecodeError::Truncated { what: "update id" }));
    assert_eq!(decode_one(&hex("0a 86 02 00 00")), Err(DecodeError::Truncated { what: "update expire" }));
}

#[test]
fn framing_waits_for_whole_messages() {
    let bytes = hex("0a 84 05 01 00 00 00 2c 00 04");
    for cut in 0..8 {
        assert_eq!(next_frame(&bytes[..cut], DEFAULT_MAX_LEN), Ok(None), "cut at {cut}");
    }
    let (f, n) = next_frame(&bytes, DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!((f.class, f.typ, n), (10, 0x84, 8));
    let (f, n) = next_frame(&bytes[8..], DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!((f.class, f.typ, f.payload, n), (0, 4, &[][..], 2));
}

#[test]
fn oversized_and_badly_framed_messages() {
    // 16385 bytes announced: refused before they arrive, with the size-limit answer.
    let mut big = vec![0x0a, 0x80];
    varint::encode(16385, &mut big);
    let e = next_frame(&big, DEFAULT_MAX_LEN).unwrap_err();
    assert_eq!(e, DecodeError::Oversized { len: 16385, max: DEFAULT_MAX_LEN });
    assert_eq!(e.disposition(), Disposition::SizeLimit);
    let mut limit = vec![0x0a, 0x80];
    varint::encode(16384, &mut limit);
    assert_eq!(next_frame(&limit, DEFAULT_MAX_LEN), Ok(None), "at the limit: wait for the payload");
    // A length that does not end within 5 bytes.
    assert_eq!(next_frame(&hex("0a 80 ff ff ff ff ff"), DEFAULT_MAX_LEN), Err(DecodeError::BadLength));
    assert_eq!(next_frame(&hex("0a 80 ff ff ff ff"), DEFAULT_MAX_LEN), Ok(None));
}

#[test]
fn unknown_and_reserved_messages() {
    let e = decode_one(&hex("ff 00")).unwrap_err();
    assert_eq!((e.clone(), e.disposition()), (DecodeError::ReservedClass, Disposition::ProtocolError));
    let e = decode_one(&hex("07 85 02 aa bb")).unwrap_err();
    assert_eq!((e.clone(), e.disposition()), (DecodeError::UnknownClass { class: 7 }, Disposition::Ignore));
    assert_eq!(decode_one(&hex("00 09")), Err(DecodeError::UnknownType { class: 0, typ: 9 }));
    assert_eq!(decode_one(&hex("0a 8f 00")), Err(DecodeError::UnknownType { class: 10, typ: 0x8f }));
    assert_eq!(decode_one(&hex("01 02")), Err(DecodeError::UnknownType { class: 1, typ: 2 }));
    // Message::next steps over a skippable message and reports its length.
    let buf = hex("07 85 02 aa bb 00 04");
    let (r, n) = Message::next(&buf, DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!((r.unwrap_err().disposition(), n), (Disposition::Ignore, 5));
    let (r, _) = Message::next(&buf[n..], DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!(r, Ok(Message::Control(Control::Heartbeat)));
}

/// Every prefix and every one-byte change of a set of real messages: no panic, and whatever
/// decodes encodes back to a message that decodes the same.
#[test]
fn mangled_messages_never_panic() {
    let samples = [
        hex("0a 82 19 03 06 73 74 5f 69 6e 74 02 04 f0 91 ff 5e f0 af 91 00 17 02 18 02 f0 e2 03"),
        hex("0a 82 1a 01 06 62 65 5f 73 72 63 04 04 f7 d8 83 01 f0 af 91 00 05 f0 e2 03 0a f0 e2 03"),
        hex("0a 86 12 00 04 7b f9 0a 53 32 53 45 53 53 30 30 30 36 02 01 02"),
        hex("0a 84 05 01 00 00 00 2c"),
    ];
    for s in &samples {
        for cut in 0..s.len() {
            check_robust(&s[..cut]);
        }
        for i in 0..s.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xef, 0xf0, 0xff] {
                let mut m = s.clone();
                m[i] = b;
                check_robust(&m);
            }
        }
    }
}

fn check_robust(buf: &[u8]) {
    let Ok(Some((frame, _))) = next_frame(buf, DEFAULT_MAX_LEN) else { return };
    let Ok(msg) = Message::decode(frame) else { return };
    let mut out = Vec::new();
    msg.encode(&mut out);
    let (f2, n) = next_frame(&out, DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!(n, out.len());
    assert_eq!(Message::decode(f2).unwrap(), msg);
}

/// The sender side: the definitions hapA sent in capture 01, rebuilt from the configuration.
#[test]
fn definitions_built_for_local_tables_match_haproxy() {
    use crate::peers::entry::KeyType;
    let encode = |d: Definition<'_>| {
        let mut out = Vec::new();
        Message::Definition(d).encode(&mut out);
        out
    };
    let be_src = Definition::for_table(1, b"be_src", KeyType::Ip, 4, 0x82677, 300000, |_| 0, |_| 10000);
    let want = hex("0a 82 1a 01 06 62 65 5f 73 72 63 04 04 f7 d8 83 01 f0 af 91 00 05 f0 e2 03 0a f0 e2 03");
    assert_eq!(encode(be_src), want);
    let st_int = Definition::for_table(3, b"st_int", KeyType::Integer, 4, 0x1800200, 300000, |_| 2, |_| 10000);
    let want = hex("0a 82 19 03 06 73 74 5f 69 6e 74 02 04 f0 91 ff 5e f0 af 91 00 17 02 18 02 f0 e2 03");
    assert_eq!(encode(st_int), want);
    let be_cookie = Definition::for_table(2, b"be_cookie", KeyType::String, 33, 0x80001, 300000, |_| 0, |_| 0);
    let want = hex("0a 82 15 02 09 62 65 5f 63 6f 6f 6b 69 65 06 21 f1 f1 fe 00 f0 af 91 00");
    assert_eq!(encode(be_cookie), want);
}
