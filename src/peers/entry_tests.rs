use super::*;
use crate::peers::codec::{DEFAULT_MAX_LEN, Message, next_frame};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '|').collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn round_trip<'a>(body: &'a [u8], shape: &Shape) -> Entry<'a> {
    let e = Entry::decode(body, shape).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    e.encode(&mut out);
    assert_eq!(out, body);
    e
}

fn body_of(msg: &[u8]) -> &[u8] {
    let (f, _) = next_frame(msg, DEFAULT_MAX_LEN).unwrap().unwrap();
    let Ok(Message::Update(u)) = Message::decode(f) else { panic!() };
    u.body
}

fn be_src() -> Shape {
    Shape::new(KeyType::Ip, 4, 0x82677)
}

/// 01 #14: be_src entry of 127.0.0.11 (peers.md §5).
#[test]
fn full_be_src_entry() {
    let msg = hex(
        "0a 80 1b | 00 00 00 07 | 7f 00 00 0b | 01 | 05 | 02 | 02 | f9 f2 01 02 00 | 00 | 02 | f9 f2 01 02 00 | ab | 01 01",
    );
    let e = round_trip(body_of(&msg), &be_src());
    assert_eq!(e.key, Key::Ip(Ipv4Addr::new(127, 0, 0, 11)));
    assert_eq!(e.get(DataType::SERVER_ID), Some(&Value::Signed(1)));
    assert_eq!(e.get(DataType::GPT0), Some(&Value::Uint(5)));
    assert_eq!(e.get(DataType::CONN_RATE), Some(&Value::Rate(Rate { elapsed: 6169, curr: 2, prev: 0 })));
    assert_eq!(e.get(DataType::BYTES_IN_CNT), Some(&Value::Uint(171)));
    assert_eq!(e.get(DataType::SERVER_KEY), Some(&Value::Dict(Dict::Ref(1))));
    assert_eq!(e.values.len(), 10);
}

/// 04: the scripted peer's st_int entry 4242 with gpc [5, 300] and gpc_rate, accepted by hapA.
#[test]
fn integer_key_with_arrays() {
    let shape =
        Shape::new(KeyType::Integer, 4, 0x1800200).with_count(DataType::GPC, 2).with_count(DataType::GPC_RATE, 2);
    let msg = hex("0a 80 12 00 00 00 01 00 00 10 92 4d 05 fc 03 64 03 01 00 00 00");
    let e = round_trip(body_of(&msg), &shape);
    assert_eq!(e.key, Key::Integer(4242));
    assert_eq!(e.get(DataType::HTTP_REQ_CNT), Some(&Value::Uint(77)));
    assert_eq!(e.get(DataType::GPC), Some(&Value::UintArray(vec![5, 300])));
    let rates = vec![Rate { elapsed: 100, curr: 3, prev: 1 }, Rate::default()];
    assert_eq!(e.get(DataType::GPC_RATE), Some(&Value::RateArray(rates)));
    // -5 travels as its 32-bit two's complement.
    let bytes1 = hex("ff ff ff fb");
    let e = round_trip(&bytes1, &Shape::new(KeyType::Integer, 4, 0));
    assert_eq!(e.key, Key::Integer(-5i32 as u32));
}

#[test]
fn ipv6_string_and_binary_keys() {
    let v6 = hex("00000000000000000000ffff7f000011 01");
    let e = round_trip(&v6, &Shape::new(KeyType::Ipv6, 16, DataType::GPC0.bit()));
    assert_eq!(e.key, Key::Ipv6("::ffff:127.0.0.17".parse().unwrap()));
    let s = hex("0a 53 31 53 45 53 53 30 30 30 35 01 04 01 02 73 31");
    let e = round_trip(&s, &Shape::new(KeyType::String, 33, 0x80001));
    assert_eq!(e.key, Key::String(b"S1SESS0005"));
    assert_eq!(e.get(DataType::SERVER_KEY), Some(&Value::Dict(Dict::Define { id: 1, value: b"s1" })));
    let b = hex("de ad be ef 00 00 00 00 01 63 f3 00");
    let e = round_trip(&b, &Shape::new(KeyType::Binary, 8, 0xa200));
    assert_eq!(e.key, Key::Binary(&hex("deadbeef00000000")));
    assert_eq!(e.get(DataType::BYTES_OUT_CNT), Some(&Value::Uint(243)));
}

#[test]
fn shapes_from_definitions() {
    let def = |key_type, key_len| Definition {
        table_id: 1,
        name: b"t",
        key_type,
        key_len,
        data_types: 0,
        expire: None,
        params: Vec::new(),
        trailing: &[],
    };
    assert_eq!(Shape::from_definition(&def(3, 4)), Err(DecodeError::UnknownKeyType(3)));
    assert_eq!(Shape::from_definition(&def(4, 16)), Err(DecodeError::BadKeyLength { key_type: "ip", len: 16 }));
    assert_eq!(Shape::from_definition(&def(5, 4)), Err(DecodeError::BadKeyLength { key_type: "ipv6", len: 4 }));
    assert_eq!(Shape::from_definition(&def(6, 0)), Err(DecodeError::BadKeyLength { key_type: "string", len: 0 }));
    assert!(Shape::from_definition(&def(2, 8)).is_ok(), "integer keys are 4 bytes whatever is announced");
    assert!(Shape::from_definition(&def(6, 33)).is_ok());
}

#[test]
fn truncated_and_malformed_bodies() {
    let shape = be_src();
    let msg = hex("0a 80 1b 00 00 00 07 7f 00 00 0b 01 05 02 02 f9 f2 01 02 00 00 02 f9 f2 01 02 00 ab 01 01");
    let body = body_of(&msg);
    for cut in 0..body.len() {
        assert!(Entry::decode(&body[..cut], &shape).is_err(), "cut at {cut}");
    }
    let string = Shape::new(KeyType::String, 33, 0);
    assert_eq!(Entry::decode(&hex("05 61 62"), &string), Err(DecodeError::Truncated { what: "key" }));
    assert_eq!(Entry::decode(&hex("f0"), &string), Err(DecodeError::Truncated { what: "key length" }));
    let dict = Shape::new(KeyType::Integer, 4, DataType::SERVER_KEY.bit());
    assert_eq!(Entry::decode(&hex("00000001 01 00"), &dict), Err(DecodeError::BadDictId(0)));
    assert_eq!(Entry::decode(&hex("00000001 01 81"), &dict), Err(DecodeError::BadDictId(129)));
    assert_eq!(
        Entry::decode(&hex("00000001 04 01 05 73 31"), &dict),
        Err(DecodeError::Truncated { what: "server_key value" })
    );
    assert_eq!(
        Entry::decode(&hex("00000001 05 01 02 73 31 00"), &dict),
        Err(DecodeError::BadDictLength { declared: 5, used: 4 })
    );
    // A huge announced array count allocates nothing up front and fails on the missing bytes.
    let arr = Shape::new(KeyType::Integer, 4, DataType::GPC.bit()).with_count(DataType::GPC, u64::MAX);
    assert_eq!(Entry::decode(&hex("00000001 01 02"), &arr), Err(DecodeError::Truncated { what: "gpc" }));
}

#[test]
fn values_of_types_newer_than_2_6_are_kept_verbatim() {
    let shape = Shape::new(KeyType::Integer, 4, DataType::HTTP_REQ_CNT.bit() | (1 << 25));
    let bytes2 = hex("00000001 07 03");
    let e = round_trip(&bytes2, &shape);
    assert_eq!(e.values, vec![(DataType::HTTP_REQ_CNT, Value::Uint(7))]);
    assert_eq!(e.trailing, &[3]);
}

#[test]
fn negative_server_id_takes_ten_bytes() {
    let shape = Shape::new(KeyType::Integer, 4, DataType::SERVER_ID.bit());
    let e = Entry { key: Key::Integer(1), values: vec![(DataType::SERVER_ID, Value::Signed(-1))], trailing: &[] };
    let mut out = Vec::new();
    e.encode(&mut out);
    assert_eq!(out.len(), 4 + 10);
    assert_eq!(Entry::decode(&out, &shape).unwrap(), e);
}

/// The cache of capture 01: entry 1 defined in a be_cookie update, referenced from be_src.
#[test]
fn dictionary_cache_per_session() {
    let mut rx = DictRx::default();
    assert_eq!(rx.resolve(&Dict::Ref(1)), None, "never defined on this session");
    assert_eq!(rx.resolve(&Dict::Define { id: 1, value: b"s1" }), Some(&b"s1"[..]));
    assert_eq!(rx.resolve(&Dict::Define { id: 2, value: b"s2" }), Some(&b"s2"[..]));
    assert_eq!(rx.resolve(&Dict::Ref(1)), Some(&b"s1"[..]));
    assert_eq!(rx.resolve(&Dict::None), None);
    assert_eq!(rx.resolve(&Dict::Ref(500)), None);

    let mut tx = DictTx::default();
    assert_eq!(tx.value(b"s1"), Dict::Define { id: 1, value: b"s1" });
    assert_eq!(tx.value(b"s2"), Dict::Define { id: 2, value: b"s2" });
    assert_eq!(tx.value(b"s1"), Dict::Ref(1));
    // Slots are reused round robin: after 128 more names, s1's slot holds another one.
    for i in 0..127 {
        tx.value(format!("x{i}").as_bytes());
    }
    assert_eq!(tx.value(b"s1"), Dict::Define { id: 2, value: b"s1" }, "slot 1 went to x126, s2's slot is next");
    // Encoded forms: `01 01` reference, `04 01 02 73 31` definition (01 #11, #14).
    let mut out = Vec::new();
    let e =
        Entry { key: Key::Binary(&[]), values: vec![(DataType::SERVER_KEY, Value::Dict(Dict::Ref(1)))], trailing: &[] };
    e.encode(&mut out);
    assert_eq!(out, hex("01 01"));
}
