use super::*;
use crate::peers::codec::{DEFAULT_MAX_LEN, next_frame};
use crate::peers::handshake::{VERSION, check_hello, take_line};
use crate::peers::pcap;

/// The tables of hapA.cfg / hapB.cfg, in configuration order.
fn tables() -> Vec<LocalTable> {
    let t = |name: &str, key_type, key_len| LocalTable { name: name.into(), key_type, key_len };
    vec![
        t("be_src", KeyType::Ip, 4),
        t("be_cookie", KeyType::String, 33),
        t("st_int", KeyType::Integer, 4),
        t("st_ipv6", KeyType::Ipv6, 16),
        t("st_bin", KeyType::Binary, 8),
    ]
}

fn known(n: &[u8]) -> bool {
    n == b"hapA" || n == b"hapB"
}

#[test]
fn callee_handshake() {
    let mut s = Session::callee(tables(), 0, false);
    let check = check_hello(b"HAProxyS 2.1\nhapX\nhapB 1 1\n", "hapA", known, 1024).unwrap();
    assert_eq!(s.on_hello(0, &check), [Out::Status(Status::ErrHost), Out::Close]);
    assert_eq!(s.phase(), Phase::Closed);

    let mut s = Session::callee(tables(), 0, true);
    let check = check_hello(b"HAProxyS 2.0\nhapA\nhapB 1 1\n", "hapA", known, 1024).unwrap();
    let out = s.on_hello(0, &check);
    assert_eq!(
        out,
        [Out::Status(Status::Success), Out::Control(Control::Heartbeat), Out::Control(Control::ResyncRequest)]
    );
    assert_eq!(s.phase(), Phase::Open);
    assert!(!s.version().has_timed_updates(), "a 2.0 peer gets no timed updates");
    let mut bytes = Vec::new();
    out.iter().for_each(|o| o.encode(&mut bytes));
    assert_eq!(bytes, b"200\n\x00\x04\x00\x00");
}

#[test]
fn caller_status() {
    let mut s = Session::caller(tables(), 0, false, VERSION);
    assert_eq!(s.on_status(0, 200), []);
    assert_eq!(s.phase(), Phase::Open);
    let mut s = Session::caller(tables(), 0, false, VERSION);
    assert_eq!(s.on_status(0, 502), [Out::Close]);
    assert!(Session::wants_downgrade(502));
    assert!(!Session::wants_downgrade(503));
}

/// Orders each run of acks by table id: 2.6 sends them in its own table-list order.
fn normalize(outs: &mut [Out]) {
    let mut i = 0;
    while i < outs.len() {
        let run = outs[i..].iter().take_while(|o| matches!(o, Out::Ack(_))).count();
        outs[i..i + run].sort_by_key(|o| match o {
            Out::Ack(a) => a.table_id,
            _ => 0,
        });
        i += run.max(1);
    }
}

fn frames(bytes: &[u8]) -> Vec<(usize, Message<'_>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while let Some((f, n)) = next_frame(&bytes[at..], DEFAULT_MAX_LEN).unwrap() {
        out.push((at, Message::decode(f).unwrap()));
        at += n;
    }
    out
}

/// hapB's side of capture 01 c7, replayed: a caller that wants a resync gets hapA's push,
/// its lesson and the end of it; it must send what hapB sent: `00 00`, one ack per table for
/// the push, none for the lesson (same ids again), then `00 03`.
#[test]
fn learner_replays_hapb_in_capture_01() {
    let conns = pcap::connections("01_resync_full.pcap");
    let c7 = &conns[6];
    let (status, n) = take_line(&c7.to_client.bytes, 16).unwrap().unwrap();
    assert_eq!(status, b"200");
    let mut s = Session::caller(tables(), 0, true, VERSION);
    let mut outs = s.on_status(0, 200);
    let mut applied = 0;
    let mut learned = None;
    let from_a = frames(&c7.to_client.bytes[n..]);
    for (i, (at, msg)) in from_a.iter().enumerate() {
        let (out, ev) = s.on_message(0, msg);
        outs.extend(out);
        match ev {
            Some(Event::Apply { .. }) => {
                assert!(s.rx_shape().is_some());
                applied += 1;
            }
            Some(Event::Learned { up_to_date }) => learned = Some(up_to_date),
            None => {}
            Some(e) => panic!("unexpected {e:?}"),
        }
        // Acks go out once the data of one TCP segment has been processed.
        let next_time = from_a.get(i + 1).map(|(next, _)| c7.to_client.time_at(n + next));
        if next_time != Some(c7.to_client.time_at(n + at)) {
            outs.extend(s.take_acks(0));
        }
    }
    assert_eq!(applied, 18 * 3, "push, lesson, push again");
    assert_eq!(learned, Some(true), "hapA was up to date: resync finished");
    let hello_len = (0..3).fold(0, |at, _| at + take_line(&c7.to_server.bytes[at..], 64).unwrap().unwrap().1);
    let mut want: Vec<Out> = frames(&c7.to_server.bytes[hello_len..])
        .into_iter()
        .map(|(_, m)| match m {
            Message::Control(c) => Out::Control(c),
            Message::Ack(a) => Out::Ack(a),
            m => panic!("hapB sent {m:?}"),
        })
        .collect();
    normalize(&mut outs);
    normalize(&mut want);
    assert_eq!(outs, want);
}

#[test]
fn teacher_ignores_acks_during_the_lesson() {
    let mut s = Session::callee(tables(), 0, false);
    let check = check_hello(b"HAProxyS 2.1\nhapA\nhapB 1 1\n", "hapA", known, 1024).unwrap();
    s.on_hello(0, &check);
    let ack = Message::Ack(Ack { table_id: 1, update: 86 });
    assert_eq!(s.on_message(0, &ack), (vec![], Some(Event::Acked { table: 0, update: 86 })));
    assert_eq!(s.on_message(0, &Message::Control(Control::ResyncRequest)), (vec![], Some(Event::TeachRequested)));
    assert!(s.tx_timed());
    assert_eq!(s.on_message(0, &ack), (vec![], None));
    assert_eq!(s.teach_done(0, false), [Out::Control(Control::ResyncPartial)]);
    assert_eq!(s.on_message(0, &Message::Control(Control::ResyncConfirm)), (vec![], Some(Event::TeachConfirmed)));
    assert!(!s.tx_timed());
    assert_eq!(s.on_message(0, &ack), (vec![], Some(Event::Acked { table: 0, update: 86 })));
    // An ack for a table id we never announced.
    assert_eq!(s.on_message(0, &Message::Ack(Ack { table_id: 9, update: 1 })), (vec![], None));
}

/// capture 07: unknown name, wrong key length: the definition and its updates are ignored,
/// no ack; the sender's ids are echoed in acks.
#[test]
fn definitions_are_matched_by_name_type_and_length() {
    let mut s = Session::caller(tables(), 0, false, VERSION);
    s.on_status(0, 200);
    let def = |table_id, name: &'static [u8], key_len| {
        Message::Definition(Definition {
            table_id,
            name,
            key_type: 2,
            key_len,
            data_types: 1 << 9,
            expire: Some(300000),
            params: vec![],
            trailing: &[],
        })
    };
    let upd = |id| Message::Update(Update { id: Some(id), expire: None, body: &[0, 0, 0, 7, 77] });
    s.on_message(0, &def(9, b"st_int", 4));
    assert_eq!(s.on_message(0, &upd(1000)).1, Some(Event::Apply { table: 2, id: 1000, expire: None }));
    assert_eq!(s.take_acks(0), [Out::Ack(Ack { table_id: 9, update: 1000 })]);
    s.on_message(0, &def(12, b"no_such_table", 4));
    assert_eq!(s.on_message(0, &upd(5)).1, None);
    s.on_message(0, &def(13, b"st_int", 8));
    assert_eq!(s.on_message(0, &upd(6)).1, None);
    assert!(s.rx_shape().is_none());
    assert_eq!(s.take_acks(0), []);
    s.on_message(0, &def(14, b"st_int", 4));
    assert_eq!(s.on_message(0, &upd(2000)).1, Some(Event::Apply { table: 2, id: 2000, expire: None }));
    // Incremental: previous id of this table + 1.
    let inc = Message::Update(Update { id: None, expire: Some(8000), body: &[0, 0, 0, 8, 1] });
    assert_eq!(s.on_message(0, &inc).1, Some(Event::Apply { table: 2, id: 2001, expire: Some(8000) }));
    assert_eq!(s.take_acks(0), [Out::Ack(Ack { table_id: 14, update: 2001 })]);
    // A switch to the id of an earlier definition of the same table, now superseded: ignored.
    s.on_message(0, &Message::Switch { table_id: 9 });
    assert!(s.rx_shape().is_none());
    s.on_message(0, &Message::Switch { table_id: 14 });
    assert!(s.rx_shape().is_some());
}

#[test]
fn decode_errors_get_2_6_answers() {
    let mut s = Session::caller(tables(), 0, false, VERSION);
    s.on_status(0, 200);
    let define = Frame { class: 10, typ: 0x82, payload: &[] };
    s.on_message(0, &Message::Switch { table_id: 1 });
    assert_eq!(s.on_decode_error(0, &define, &DecodeError::MissingParams("gpc")), []);
    assert_eq!(s.phase(), Phase::Open);
    let unknown = Frame { class: 7, typ: 0x85, payload: &[] };
    assert_eq!(s.on_decode_error(0, &unknown, &DecodeError::UnknownClass { class: 7 }), []);
    let reserved = Frame { class: 255, typ: 0, payload: &[] };
    assert_eq!(
        s.on_decode_error(0, &reserved, &DecodeError::ReservedClass),
        [Out::Error(ErrorCode::Protocol), Out::Close]
    );
    assert_eq!(s.phase(), Phase::Closed);
    let mut s = Session::caller(tables(), 0, false, VERSION);
    s.on_status(0, 200);
    let big = DecodeError::Oversized { len: 20000, max: DEFAULT_MAX_LEN };
    assert_eq!(s.on_stream_error(0, &big), [Out::Error(ErrorCode::SizeLimit), Out::Close]);
}

/// 01 #3-#25: the forms hapA chose for its push (explicit first in each table, incremental
/// when the id follows the previous one).
#[test]
fn sender_forms_follow_haproxy() {
    let mut s = Session::callee(tables(), 0, false);
    type Push<'a> = (usize, &'a [u32], &'a [Option<u32>]);
    let pushes: [Push; 5] = [
        (3, &[3, 6], &[Some(3), Some(6)]),
        (2, &[7, 10, 11], &[Some(7), Some(10), None]),
        (1, &[3, 4], &[Some(3), None]),
        (
            0,
            &[7, 14, 21, 31, 36, 57, 71, 85, 86],
            &[Some(7), Some(14), Some(21), Some(31), Some(36), Some(57), Some(71), Some(85), None],
        ),
        (4, &[4, 8], &[Some(4), Some(8)]),
    ];
    for (table, ids, forms) in pushes {
        assert!(s.tx_begin(table), "definition first");
        let got: Vec<Option<u32>> = ids.iter().map(|&id| s.tx_update(id)).collect();
        assert_eq!(got, forms, "table {table}");
    }
    assert!(!s.tx_begin(4), "same table: no new definition");
    assert_eq!(s.tx_update(9), Some(9), "first of a batch is explicit");
    assert_eq!(s.tx_update(10), None);
}

#[test]
fn heartbeat_and_dead_peer() {
    let mut s = Session::caller(tables(), 0, false, VERSION);
    s.on_status(1000, 200);
    assert_eq!(s.poll(3999), []);
    assert_eq!(s.poll(4000), [Out::Control(Control::Heartbeat)]);
    assert_eq!(s.next_deadline(), 6000);
    // A message in the first window keeps it open at 6000; nothing in the second closes at 11000.
    s.on_message(5000, &Message::Control(Control::Heartbeat));
    assert_eq!(s.poll(6000), []);
    assert_eq!(s.poll(7000), [Out::Control(Control::Heartbeat)]);
    assert_eq!(s.poll(10999), [Out::Control(Control::Heartbeat)]);
    assert_eq!(s.poll(11000), [Out::Close]);
    assert_eq!(s.phase(), Phase::Closed);
    assert_eq!(s.poll(20000), []);
}
