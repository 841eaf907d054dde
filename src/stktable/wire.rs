//! Between a table and the peers protocol's update bodies ([`crate::peers::Entry`]): what a
//! received update does to a table, as a 2.6 receiver does it (key cut to the table's length,
//! only the types the table stores, `conn_cur` kept local, rates rebuilt from the snapshot), and
//! the shape, definition and update bodies this node sends for a table. Pure: the sockets are
//! in [`crate::peers::net`].

use super::def::{KeyKind, TableDef};
use super::key::TKey;
use super::table::{EntryMut, EntryView, Table};
use crate::peers::codec::{Definition, Message, Update};
use crate::peers::datatype::{DataType, Encoding};
use crate::peers::entry::{Dict, DictRx, DictTx, Entry, Key, KeyType, Shape, Value};
use crate::peers::freq::FreqCtr;
use crate::peers::session::LocalTable;

/// The wire key type and length a definition announces for `kind`.
pub fn key_type(kind: KeyKind) -> (KeyType, usize) {
    match kind {
        KeyKind::Ip => (KeyType::Ip, 4),
        KeyKind::Ipv6 => (KeyType::Ipv6, 16),
        KeyKind::Integer => (KeyType::Integer, 4),
        KeyKind::String { len } => (KeyType::String, len + 1),
        KeyKind::Binary { len } => (KeyType::Binary, len),
    }
}

/// The shape of this node's updates for `def`: every stored type, array counts included.
pub fn shape(def: &TableDef) -> Shape {
    let (kt, len) = key_type(def.key);
    let mask = def.store.iter().fold(0u64, |m, s| m | s.dt.bit());
    def.store
        .iter()
        .filter(|s| s.dt.is_array())
        .fold(Shape::new(kt, len, mask), |sh, s| sh.with_count(s.dt, u64::from(s.count)))
}

/// The table key a received key stands for; None when it does not fit the table's type.
pub fn table_key(k: &Key<'_>, kind: KeyKind) -> Option<TKey> {
    Some(match (k, kind) {
        (Key::Ip(a), KeyKind::Ip) => TKey::Ip(a.octets()),
        (Key::Ipv6(a), KeyKind::Ipv6) => TKey::Ipv6(a.octets()),
        (Key::Integer(v), KeyKind::Integer) => TKey::Int(*v),
        // A 2.6 receiver keeps at most len bytes of a string key.
        (Key::String(s), KeyKind::String { .. }) => TKey::from_bytes(s, kind),
        (Key::Binary(b), KeyKind::Binary { .. }) => TKey::from_bytes(b, kind),
        _ => return None,
    })
}

/// Applies one received update to `t` at `now`: `expire` (timed updates) sets the remaining
/// lifetime, otherwise the table's own expiry counts from now. `server_key` is the string the
/// update's dictionary value resolved to. False when the key does not fit or the table is full.
pub fn apply(
    t: &mut Table,
    key: &Key<'_>,
    values: &[(DataType, Value<'_>)],
    server_key: Option<&str>,
    expire: Option<u32>,
    now: u64,
) -> bool {
    let Some(k) = table_key(key, t.kind()) else { return false };
    {
        let Some(mut e) = t.touch(&k, now).map(EntryMut::remote) else { return false };
        let now32 = now as u32;
        for (dt, v) in values {
            if dt.is_local() || !e.view().has(*dt) {
                continue;
            }
            match v {
                Value::Signed(x) => {
                    if *dt == DataType::SERVER_ID {
                        let name = e.view().server_key().map(str::to_string);
                        e.set_server(*x as i32, name.as_deref());
                    }
                }
                Value::Uint(x) => {
                    e.set_value(*dt, *x as i64);
                }
                Value::Rate(r) => {
                    e.set_freq(*dt, 0, FreqCtr::from_wire(now32, r));
                }
                Value::UintArray(a) => {
                    for (i, x) in a.iter().enumerate() {
                        e.set_at(*dt, i, *x);
                    }
                }
                Value::RateArray(a) => {
                    for (i, r) in a.iter().enumerate() {
                        e.set_freq(*dt, i, FreqCtr::from_wire(now32, r));
                    }
                }
                Value::Dict(_) => {
                    if let Some(name) = server_key {
                        let id = e.view().server_id().unwrap_or(0);
                        e.set_server(id, Some(name));
                    }
                }
            }
        }
    }
    if let Some(ms) = expire {
        t.set_expire_in(&k, now, u64::from(ms));
    }
    true
}

/// Applies a decoded update, resolving its `server_key` through the session's dictionary `dict`.
pub fn apply_entry(t: &mut Table, entry: &Entry<'_>, dict: &mut DictRx, expire: Option<u32>, now: u64) -> bool {
    let mut server_key = None;
    for (_, v) in &entry.values {
        if let Value::Dict(d) = v {
            server_key = dict.resolve(d).map(|b| String::from_utf8_lossy(b).into_owned());
        }
    }
    apply(t, &entry.key, &entry.values, server_key.as_deref(), expire, now)
}

/// How a session matches received definitions against `def`, which goes by `name`.
pub fn local_table(def: &TableDef, name: &str) -> LocalTable {
    let (key_type, len) = key_type(def.key);
    LocalTable { name: name.to_string(), key_type, key_len: len as u64 }
}

/// The wire key of a table key.
pub fn wire_key(k: &TKey) -> Key<'_> {
    match k {
        TKey::Ip(a) => Key::Ip((*a).into()),
        TKey::Ipv6(a) => Key::Ipv6((*a).into()),
        TKey::Int(v) => Key::Integer(*v),
        TKey::Str(s) => Key::String(s),
        TKey::Bin(b) => Key::Binary(b),
    }
}

/// The definition message this node sends for `def` as its table `table_id`.
pub fn definition(def: &TableDef, table_id: u64, out: &mut Vec<u8>) {
    definition_as(def, def.wire_name(), table_id, out);
}

/// A definition of `def` under another name.
pub fn definition_as(def: &TableDef, name: &str, table_id: u64, out: &mut Vec<u8>) {
    let sh = shape(def);
    let count = |dt| def.stored(dt).map_or(0, |s| u64::from(s.count));
    let period = |dt| def.stored(dt).map_or(0, |s| u64::from(s.period));
    let d = Definition::for_table(
        table_id,
        name.as_bytes(),
        sh.key_type,
        sh.key_len as u64,
        sh.data_types,
        def.expire_ms(),
        count,
        period,
    );
    Message::Definition(d).encode(out);
}

/// One update message for the entry `k`: `id` None is the incremental form, `timed` adds the
/// entry's remaining lifetime (lessons to 2.1 peers). `dict` is the session's server_key cache.
/// Local-only types (`conn_cur`) travel as 0, which a receiver ignores.
#[allow(clippy::too_many_arguments)]
pub fn update(
    def: &TableDef,
    k: &TKey,
    e: &EntryView<'_>,
    id: Option<u32>,
    timed: bool,
    now: u64,
    dict: &mut DictTx,
    out: &mut Vec<u8>,
) {
    let sh = shape(def);
    let now32 = now as u32;
    let rd = |dt, i| e.read(dt, i).unwrap_or(0);
    let wire_rate = |dt, i| e.freq(dt, i).map(|f| f.to_wire(now32)).unwrap_or_default();
    let server_key = e.server_key();
    let mut values = Vec::new();
    for dt in DataType::in_mask(sh.data_types) {
        let n = def.stored(dt).map_or(1, |s| s.count as usize);
        let v = match dt.encoding() {
            _ if dt.is_local() => Value::Uint(0),
            Encoding::Signed => Value::Signed(rd(dt, 0)),
            Encoding::Uint | Encoding::Ull => Value::Uint(rd(dt, 0) as u64),
            Encoding::Rate => Value::Rate(wire_rate(dt, 0)),
            Encoding::UintArray => Value::UintArray((0..n).map(|i| rd(dt, i) as u64).collect()),
            Encoding::RateArray => Value::RateArray((0..n).map(|i| wire_rate(dt, i)).collect()),
            Encoding::Dict => Value::Dict(server_key.map_or(Dict::None, |s| dict.value(s.as_bytes()))),
        };
        values.push((dt, v));
    }
    let mut body = Vec::new();
    Entry { key: wire_key(k), values, trailing: &[] }.encode(&mut body);
    let expire = timed.then(|| e.expires_in().min(u64::from(u32::MAX)) as u32);
    Message::Update(Update { id, expire, body: &body }).encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::codec::{Frame, Message, next_frame};
    use crate::peers::entry::Entry;
    use crate::stktable::cli;
    use crate::stktable::def::{parse_store, split_store, with_server_key};
    use std::time::Duration;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().filter(|w| *w != "|").map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    fn message(bytes: &[u8]) -> Message<'_> {
        let (f, n): (Frame<'_>, usize) = next_frame(bytes, 16384).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        Message::decode(f).unwrap()
    }

    /// Capture 01, #13 and #14 (peers.md §4, §5): hapA's be_src definition and the update of
    /// 127.0.0.11, applied to lbha's be_src, print what hapA's `show table be_src` printed.
    #[test]
    fn captured_update_gives_haproxys_entry() {
        let store = split_store(
            "server_id,conn_cnt,conn_cur,conn_rate(10s),http_req_cnt,http_req_rate(10s),gpc0,gpt0,bytes_in_cnt",
        );
        let def = TableDef {
            name: "be_src".into(),
            key: KeyKind::Ip,
            size: 1024,
            expire: Some(Duration::from_secs(300)),
            nopurge: false,
            peers: None,
            store: with_server_key(parse_store(&store).unwrap()),
        };
        let d = hex(
            "0a 82 1a | 01 | 06 62 65 5f 73 72 63 | 04 | 04 | f7 d8 83 01 | f0 af 91 00 | 05 f0 e2 03 | 0a f0 e2 03",
        );
        let Message::Definition(defn) = message(&d) else { panic!("not a definition") };
        let their = Shape::from_definition(&defn).unwrap();
        let ours = shape(&def);
        assert_eq!((ours.key_type, ours.key_len, ours.data_types), (their.key_type, their.key_len, their.data_types));
        let u = hex(
            "0a 80 1b | 00 00 00 07 | 7f 00 00 0b | 01 | 05 | 02 | 02 | f9 f2 01 02 00 | 00 | 02 | f9 f2 01 02 00 | ab | 01 01",
        );
        let Message::Update(up) = message(&u) else { panic!("not an update") };
        assert_eq!(up.id, Some(7));
        let entry = Entry::decode(up.body, &their).unwrap();
        let mut t = Table::new(def);
        let now = 1_000_000;
        let wake = std::sync::Arc::new(crate::stktable::wake::Wake::default());
        t.set_wake(wake.clone());
        wake.arm();
        assert!(apply(&mut t, &entry.key, &entry.values, Some("s1"), None, now));
        assert_eq!(t.last_update(), 0, "a peer's update is not a local change: nothing to push on");
        assert!(t.changed_since(0, now).is_empty());
        assert!(wake.is_armed(), "and no session is woken for it");
        t.touch(&TKey::Ip([127, 0, 0, 12]), now).unwrap().inc_http_req();
        assert!(!wake.is_armed(), "a local change wakes the sessions");
        let out = cli::run(&cli::parse(cli::Action::Show, &["be_src"]).unwrap(), &mut t, now).unwrap();
        let line = out.lines().nth(1).unwrap();
        let (_, rest) = line.split_once(": ").unwrap();
        assert_eq!(
            rest,
            "key=127.0.0.11 use=0 exp=300000 server_id=1 gpt0=5 gpc0=2 conn_cnt=2 conn_rate(10000)=2 conn_cur=0 http_req_cnt=2 http_req_rate(10000)=2 bytes_in_cnt=171 server_key=s1"
        );
        // A timed update's lifetime wins over the table's.
        assert!(apply(&mut t, &entry.key, &entry.values, Some("s1"), Some(8000), now));
        assert_eq!(t.get(&TKey::Ip([127, 0, 0, 11]), now + 1000).unwrap().expires_in(), 7000);
    }

    /// What this node sends for an entry, read back by a receiver, gives the same entry.
    #[test]
    fn sent_updates_rebuild_the_entry() {
        let store = split_store("server_id,gpc(2),gpc_rate(2,10s),conn_cur,http_req_rate(10s),bytes_in_cnt");
        let def = TableDef {
            name: "t".into(),
            key: KeyKind::String { len: 8 },
            size: 10,
            expire: Some(Duration::from_secs(60)),
            nopurge: false,
            peers: Some("mesh".into()),
            store: with_server_key(parse_store(&store).unwrap()),
        };
        let now = 5_000_000;
        let mut src = Table::new(def.clone());
        let key = TKey::from_bytes(b"client", def.key);
        {
            let mut e = src.touch(&key, now).unwrap();
            e.set_server(3, Some("s3"));
            e.inc_gpc(1);
            e.inc_http_req();
            e.add_bytes_in(1234);
            e.conn_open();
        }
        let view = src.get(&key, now).unwrap();
        let id = view.update_id();
        let mut out = Vec::new();
        let mut dict = DictTx::default();
        update(&def, &key, &view, Some(id), true, now, &mut dict, &mut out);
        let Message::Update(up) = message(&out) else { panic!("not an update") };
        assert_eq!((up.id, up.expire), (Some(id), Some(60_000)));
        let entry = Entry::decode(up.body, &shape(&def)).unwrap();
        let mut dst = Table::new(def);
        assert!(apply(&mut dst, &entry.key, &entry.values, Some("s3"), up.expire, now));
        let show = |t: &mut Table| {
            let out = cli::run(&cli::parse(cli::Action::Show, &["t"]).unwrap(), t, now).unwrap();
            out.lines().nth(1).unwrap().split_once(": ").unwrap().1.to_string()
        };
        // conn_cur stays local to each node, as in HAProxy.
        assert_eq!(show(&mut dst), show(&mut src).replace("conn_cur=1", "conn_cur=0"));
        assert_eq!(dst.get(&key, now).unwrap().update_id(), 0, "a received entry is not pushed on");
        assert_eq!(src.changed_since(0, now).len(), 1);
        assert!(src.changed_since(id, now).is_empty());
    }

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let kind = KeyKind::String { len: 4 };
        assert_eq!(table_key(&Key::String(b"S1SESS0005"), kind), Some(TKey::from_bytes(b"S1SE", kind)));
        assert_eq!(table_key(&Key::Integer(5), KeyKind::Ip), None);
        assert_eq!(key_type(KeyKind::String { len: 32 }), (KeyType::String, 33));
    }
}
