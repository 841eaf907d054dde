//! The codec against real HAProxy 2.6 traffic: every TCP stream of every capture in
//! `shared/reference/peers-captures/` is reassembled from the pcap, cut into handshake lines and
//! messages, decoded, re-encoded and compared byte for byte; the decoded fields are compared with
//! the capture's independent decoding (`NN_*.json`), the handshake statuses with what
//! [`check_hello`] would answer, and the tables with HAProxy's own `show table` dumps
//! (`NN_*.show.txt`), rates included through [`FreqCtr`].

use std::collections::HashMap;

use serde_json::Value as Json;

use super::codec::{Message, Update, next_frame};
use super::entry::{Dict, DictRx, Entry, Key, Shape, Value};
use super::freq::FreqCtr;
use super::handshake::{HelloCheck, Status, check_hello, hello, parse_status, take_line};
use super::pcap::{self, CAPTURE_DIR, Connection, Stream};
use super::{DataType, DecodeError};

const CAPTURES: [&str; 7] = [
    "01_resync_full",
    "02_live_updates_heartbeat_expiry",
    "03_rejected_handshakes",
    "04_scripted_peer_v2.1",
    "05_scripted_peer_v2.0",
    "06_failover",
    "07_definition_matching_and_ack_ids",
];

/// Peer name by listening port (hapA.cfg / hapB.cfg).
fn peer_name(port: u16) -> &'static str {
    match port {
        18901 => "hapA",
        18902 => "hapB",
        p => panic!("not a peers port: {p}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A decoded update, kept for the comparison with `show table`.
struct Seen {
    time: f64,
    table: String,
    key: String,
    key_len: usize,
    values: Vec<(DataType, Value<'static>)>,
    server_key: Option<String>,
    periods: HashMap<DataType, u64>,
}

struct Current {
    table_id: u64,
    name: String,
    periods: HashMap<DataType, u64>,
    shape: Shape,
}

/// Per stream direction: the definition in force, last update id per table, dictionary cache.
#[derive(Default)]
struct RxState {
    def: Option<Current>,
    last_id: HashMap<u64, u32>,
    dict: DictRx,
}

fn key_text(key: &Key<'_>) -> String {
    match key {
        Key::Integer(v) => v.to_string(),
        Key::Ip(a) => a.to_string(),
        Key::Ipv6(a) => a.to_string(),
        Key::String(s) => String::from_utf8_lossy(s).into_owned(),
        Key::Binary(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
    }
}

/// The messages of one direction: handshake text first (three lines of hello from the client,
/// one status line from the server), binary messages after.
fn split(stream: &Stream, from_client: bool) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    let lines = if from_client { 3 } else { 1 };
    let mut text_end = 0;
    for _ in 0..lines {
        match take_line(&stream.bytes[text_end..], 1 << 16).unwrap() {
            Some((_, n)) => text_end += n,
            None => {
                text_end = stream.bytes.len();
                break;
            }
        }
    }
    if text_end > 0 {
        out.push((0, &stream.bytes[..text_end]));
        at = text_end;
    }
    while at < stream.bytes.len() {
        let (_, n) = next_frame(&stream.bytes[at..], super::codec::DEFAULT_MAX_LEN)
            .unwrap()
            .unwrap_or_else(|| panic!("incomplete message at {at}: {}", hex(&stream.bytes[at..])));
        out.push((at, &stream.bytes[at..at + n]));
        at += n;
    }
    out
}

fn check_json_value(t: DataType, v: &Value<'_>, want: &Json, resolved: Option<&str>, ctx: &str) {
    let rate = |r: &super::Rate, w: &Json| {
        assert_eq!(r.elapsed, w["ms_into_current_period"].as_u64().unwrap(), "{ctx}");
        assert_eq!(r.curr, w["curr_ctr"].as_u64().unwrap(), "{ctx}");
        assert_eq!(r.prev, w["prev_ctr"].as_u64().unwrap(), "{ctx}");
    };
    match v {
        Value::Signed(s) => assert_eq!(Some(*s), want.as_i64(), "{ctx} {t}"),
        Value::Uint(u) => assert_eq!(Some(*u), want.as_u64(), "{ctx} {t}"),
        Value::Rate(r) => rate(r, want),
        Value::Dict(_) => assert_eq!(resolved, want.as_str(), "{ctx} {t}"),
        Value::UintArray(a) => {
            let w: Vec<u64> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            assert_eq!(a, &w, "{ctx} {t}");
        }
        Value::RateArray(a) => {
            let w = want.as_array().unwrap();
            assert_eq!(a.len(), w.len(), "{ctx} {t}");
            a.iter().zip(w).for_each(|(r, w)| rate(r, w));
        }
    }
}

/// Decodes one binary message, re-encodes it and checks it against the JSON decoding; returns
/// the update for the `show table` comparison.
fn check_message(raw: &[u8], want: &Json, st: &mut RxState, time: f64, ctx: &str) -> Option<Seen> {
    let (frame, n) = next_frame(raw, super::codec::DEFAULT_MAX_LEN).unwrap().unwrap();
    assert_eq!(n, raw.len());
    let msg = match Message::decode(frame) {
        Ok(m) => m,
        Err(e) => {
            // Only capture 05's `ff 00` is no message of the protocol.
            assert_eq!(e, DecodeError::ReservedClass, "{ctx}");
            assert_eq!(want["class_name"], "reserved", "{ctx}");
            return None;
        }
    };
    let mut again = Vec::new();
    msg.encode(&mut again);
    assert_eq!(hex(&again), hex(raw), "{ctx}: message re-encoding");
    let fields = &want["fields"];
    match msg {
        Message::Definition(def) => {
            assert_eq!(Some(def.table_id), fields["table_id"].as_u64(), "{ctx}");
            assert_eq!(Some(String::from_utf8_lossy(def.name).as_ref()), fields["name"].as_str(), "{ctx}");
            assert_eq!(Some(def.key_type), fields["key_type"].as_u64(), "{ctx}");
            assert_eq!(Some(def.key_len), fields["key_len"].as_u64(), "{ctx}");
            assert_eq!(Some(def.data_types), fields["data_types_bitmask"].as_u64(), "{ctx}");
            assert_eq!(def.expire, fields["expire_ms"].as_u64(), "{ctx}");
            for dt in fields["data_types"].as_array().unwrap() {
                let t = DataType::from_id(dt["id"].as_u64().unwrap()).unwrap();
                assert_eq!(Some(t.name()), dt["name"].as_str(), "{ctx}");
                assert_eq!(def.period(t), dt["period_ms"].as_u64(), "{ctx} period of {t}");
            }
            assert!(def.trailing.is_empty(), "{ctx}");
            let shape = Shape::from_definition(&def).unwrap();
            let periods = def.params.iter().filter_map(|p| Some((p.data_type, p.period?))).collect();
            let name = String::from_utf8_lossy(def.name).into_owned();
            st.def = Some(Current { table_id: def.table_id, name, periods, shape });
            None
        }
        Message::Ack(a) => {
            assert_eq!(Some(a.table_id), fields["table_id"].as_u64(), "{ctx}");
            assert_eq!(Some(u64::from(a.update)), fields["update_id"].as_u64(), "{ctx}");
            None
        }
        Message::Control(_) | Message::Error(_) => {
            assert_eq!(want["type"].as_u64(), Some(u64::from(raw[1])), "{ctx}");
            None
        }
        Message::Switch { .. } => panic!("{ctx}: HAProxy 2.6 never sends a table switch"),
        Message::Update(u) => Some(check_update(u, fields, st, time, ctx)),
    }
}

fn check_update(u: Update<'_>, fields: &Json, st: &mut RxState, time: f64, ctx: &str) -> Seen {
    let Current { table_id, name, periods, shape } =
        st.def.as_ref().unwrap_or_else(|| panic!("{ctx}: update before any definition"));
    let last = st.last_id.entry(*table_id).or_default();
    let id = u.id.unwrap_or(last.wrapping_add(1));
    *last = id;
    assert_eq!(Some(u64::from(id)), fields["update_id"].as_u64(), "{ctx}: update id");
    assert_eq!(u.expire.map(u64::from), fields["expire_ms"].as_u64(), "{ctx}: expire");
    assert_eq!(Some(*table_id), fields["table_id"].as_u64(), "{ctx}");
    let entry = Entry::decode(u.body, shape).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let mut body = Vec::new();
    entry.encode(&mut body);
    assert_eq!(hex(&body), hex(u.body), "{ctx}: body re-encoding");
    assert!(entry.trailing.is_empty(), "{ctx}");
    let mut key_bytes = Vec::new();
    Entry { key: entry.key, values: Vec::new(), trailing: &[] }.encode(&mut key_bytes);
    assert_eq!(Some(hex(&key_bytes).as_str()), fields["key_hex"].as_str(), "{ctx}: key");
    let want_values = fields["values"].as_array().unwrap();
    assert_eq!(entry.values.len(), want_values.len(), "{ctx}: value count");
    let mut server_key = None;
    for ((t, v), w) in entry.values.iter().zip(want_values) {
        assert_eq!(Some(u64::from(t.id())), w["id"].as_u64(), "{ctx}");
        let mut one = Vec::new();
        Entry { key: Key::Binary(&[]), values: vec![(*t, v.clone())], trailing: &[] }.encode(&mut one);
        assert_eq!(Some(hex(&one).as_str()), w["hex"].as_str(), "{ctx}: {t}");
        let resolved = match v {
            Value::Dict(d) => st.dict.resolve(d).map(|s| String::from_utf8(s.to_vec()).unwrap()),
            _ => None,
        };
        check_json_value(*t, v, &w["value"], resolved.as_deref(), ctx);
        if let (Value::Dict(d), Some(s)) = (v, &resolved) {
            assert!(!matches!(d, Dict::None));
            server_key = Some(s.clone());
        }
    }
    Seen {
        time,
        table: name.clone(),
        key: key_text(&entry.key),
        key_len: shape.key_len,
        values: entry.values.iter().map(|(t, v)| (*t, own_value(v))).collect(),
        server_key,
        periods: periods.clone(),
    }
}

fn own_value(v: &Value<'_>) -> Value<'static> {
    match v {
        Value::Signed(s) => Value::Signed(*s),
        Value::Uint(u) => Value::Uint(*u),
        Value::Rate(r) => Value::Rate(*r),
        Value::Dict(_) => Value::Dict(Dict::None),
        Value::UintArray(a) => Value::UintArray(a.clone()),
        Value::RateArray(a) => Value::RateArray(a.clone()),
    }
}

/// Checks the handshake text of one direction; returns the hello's verdict for the status check.
fn check_text(raw: &[u8], want: &Json, from_client: bool, server_port: u16, ctx: &str) -> Option<Status> {
    assert_eq!(Some(String::from_utf8_lossy(raw).as_ref()), want["text"].as_str(), "{ctx}");
    if !from_client {
        let (line, _) = take_line(raw, 64).unwrap().unwrap();
        assert_eq!(
            Status::from_code(parse_status(line)).map(|s| u64::from(s.code())),
            want["fields"]["status"].as_u64(),
            "{ctx}"
        );
        return None;
    }
    let is_peer = |n: &[u8]| n == b"hapA" || n == b"hapB";
    match check_hello(raw, peer_name(server_port), is_peer, 1 << 14).unwrap() {
        HelloCheck::Accept { hello: h, used } => {
            assert_eq!(used, raw.len(), "{ctx}");
            let text = String::from_utf8_lossy(h.rest);
            let pid: u32 = text.split(' ').next().unwrap().parse().unwrap();
            let callee = peer_name(server_port);
            let again = hello(h.version, callee, std::str::from_utf8(h.peer).unwrap(), pid);
            assert_eq!(again.as_bytes(), raw, "{ctx}: hello re-encoding");
            Some(Status::Success)
        }
        HelloCheck::Reject(s) => Some(s),
        HelloCheck::Incomplete => panic!("{ctx}: incomplete hello"),
    }
}

/// Runs every check over one capture; returns the updates seen, in time order.
fn check_capture(name: &str) -> Vec<Seen> {
    let json: Json = serde_json::from_slice(&std::fs::read(format!("{CAPTURE_DIR}{name}.json")).unwrap()).unwrap();
    let conns = pcap::connections(&format!("{name}.pcap"));
    let jconns = json["connections"].as_array().unwrap();
    assert_eq!(conns.len(), jconns.len(), "{name}: connections");
    let mut by_conn: HashMap<(u64, bool), Vec<&Json>> = HashMap::new();
    for m in json["messages"].as_array().unwrap() {
        let conn = m["conn"].as_u64().unwrap();
        let c: &Connection = &conns[conn as usize - 1];
        // The decoder names sides after the hello, which may lie (capture 03): go by role.
        let from_client = match m["class_name"].as_str() {
            Some("handshake") => m["type_name"] == "hello",
            _ => m["from"].as_str() != Some(peer_name(c.server.port())),
        };
        by_conn.entry((conn, from_client)).or_default().push(m);
    }
    let mut seen = Vec::new();
    let mut total = 0;
    for (i, c) in conns.iter().enumerate() {
        let jc = &jconns[i];
        assert_eq!(jc["client"].as_str(), Some(c.client.to_string().as_str()), "{name} c{}", i + 1);
        assert_eq!(jc["server"].as_str(), Some(c.server.to_string().as_str()), "{name} c{}", i + 1);
        let mut verdict = None;
        for from_client in [true, false] {
            let stream = if from_client { &c.to_server } else { &c.to_client };
            let msgs = split(stream, from_client);
            let want = by_conn.remove(&(i as u64 + 1, from_client)).unwrap_or_default();
            assert_eq!(msgs.len(), want.len(), "{name} c{} from_client={from_client}: message count", i + 1);
            let mut st = RxState::default();
            for ((at, raw), w) in msgs.iter().zip(&want) {
                let ctx = format!("{name} c{} #{}", i + 1, w["index"]);
                assert_eq!(
                    w["raw_hex"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| hex(w["text"].as_str().unwrap().as_bytes())),
                    hex(raw),
                    "{ctx}"
                );
                total += 1;
                if w["class_name"] == "handshake" {
                    let v = check_text(raw, w, from_client, c.server.port(), &ctx);
                    verdict = verdict.or(v);
                    if !from_client {
                        // The status HAProxy answered is the one check_hello gives.
                        let (line, _) = take_line(raw, 64).unwrap().unwrap();
                        assert_eq!(verdict.map(|s| s.code() as u32), Some(parse_status(line)), "{ctx}: status");
                    }
                    continue;
                }
                if let Some(s) = check_message(raw, w, &mut st, stream.time_at(*at), &ctx) {
                    seen.push(s);
                }
            }
        }
    }
    assert!(by_conn.is_empty(), "{name}: messages of no connection");
    assert_eq!(total, json["messages"].as_array().unwrap().len(), "{name}");
    seen.sort_by(|a, b| a.time.total_cmp(&b.time));
    seen
}

#[test]
fn every_captured_message_decodes_and_re_encodes_byte_for_byte() {
    for name in CAPTURES {
        check_capture(name);
    }
}

#[path = "golden_show.rs"]
mod show;
