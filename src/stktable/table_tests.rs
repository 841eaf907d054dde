use super::*;
use crate::stktable::def::{TableDef, parse_store};
use std::time::Duration;

fn def(kind: KeyKind, size: usize, expire_s: Option<u64>, store: &[&str]) -> TableDef {
    let store: Vec<String> = store.iter().map(|s| s.to_string()).collect();
    TableDef {
        name: "t".into(),
        key: kind,
        size,
        expire: expire_s.map(Duration::from_secs),
        nopurge: false,
        peers: None,
        store: parse_store(&store).unwrap(),
    }
}

fn ip(n: u8) -> TKey {
    TKey::Ip([127, 0, 0, n])
}

#[test]
fn counters_and_rates_follow_traffic() {
    let mut t = Table::new(def(
        KeyKind::Ip,
        10,
        Some(300),
        &[
            "conn_cnt",
            "conn_cur",
            "conn_rate(10s)",
            "http_req_cnt",
            "http_req_rate(10s)",
            "bytes_in_cnt",
            "bytes_out_rate(1s)",
            "sess_cnt",
            "sess_rate(10s)",
            "http_err_cnt",
            "http_err_rate(10s)",
        ],
    ));
    let t0 = 1_000_000u64;
    {
        let k = ip(1);
        let mut e = t.touch(&k, t0).unwrap();
        e.conn_open();
        e.inc_sess();
        e.inc_http_req();
        e.inc_http_req();
        e.inc_http_err();
        e.add_bytes_in(5_000_000_000);
        e.add_bytes_out(100);
    }
    let v = t.get(&ip(1), t0 + 500).unwrap();
    let r = |dt| v.read(dt, 0).unwrap();
    assert_eq!(r(DataType::CONN_CNT), 1);
    assert_eq!(r(DataType::CONN_CUR), 1);
    assert_eq!(r(DataType::CONN_RATE), 1);
    assert_eq!(r(DataType::HTTP_REQ_CNT), 2);
    assert_eq!(r(DataType::HTTP_REQ_RATE), 2);
    assert_eq!(r(DataType::HTTP_ERR_RATE), 1);
    assert_eq!(r(DataType::SESS_CNT), 1);
    assert_eq!(r(DataType::BYTES_IN_CNT), 5_000_000_000, "64-bit counter");
    assert_eq!(r(DataType::BYTES_OUT_RATE), 100);
    assert_eq!(v.read(DataType::GPC0, 0), None, "not stored");
    assert_eq!(v.expires_in(), 300_000 - 500);
    t.get_mut(&ip(1), t0).unwrap().conn_close();
    t.get_mut(&ip(1), t0).unwrap().conn_close();
    assert_eq!(t.get(&ip(1), t0).unwrap().read(DataType::CONN_CUR, 0), Some(0), "never below 0");
}

/// The sliding window: 10 requests in the first period, read as the period passes (HAProxy's
/// `read_freq_ctr_period`: prev × remaining / period + curr).
#[test]
fn rates_slide_as_haproxy_computes() {
    let mut t = Table::new(def(KeyKind::Integer, 10, None, &["http_req_rate(10s)"]));
    let k = TKey::Int(7);
    let t0 = 20_000u64;
    for _ in 0..10 {
        t.touch(&k, t0).unwrap().inc_http_req();
    }
    let rate = |t: &Table, now| t.get(&k, now).unwrap().read(DataType::HTTP_REQ_RATE, 0).unwrap();
    assert_eq!(rate(&t, t0 + 9_999), 10);
    assert_eq!(rate(&t, t0 + 12_500), 7, "10 × 7.5/10 rounded down");
    assert_eq!(rate(&t, t0 + 19_999), 0);
    assert_eq!(rate(&t, t0 + 30_000), 0);
    let mut f = FreqCtr::default();
    for _ in 0..10 {
        f.update(t0 as u32, 10_000, 1);
    }
    assert_eq!(f.read((t0 + 12_500) as u32, 10_000), 7, "same arithmetic as peers::freq");
}

#[test]
fn gpc_gpt_and_arrays() {
    let mut t = Table::new(def(KeyKind::Ip, 10, None, &["gpc0", "gpc1", "gpc0_rate(10s)", "gpt0"]));
    {
        let k = ip(1);
        let mut e = t.touch(&k, 0).unwrap();
        assert_eq!(e.inc_gpc(0), Some(1));
        assert_eq!(e.inc_gpc(0), Some(2));
        assert_eq!(e.inc_gpc(1), Some(1));
        assert_eq!(e.inc_gpc(2), None);
        assert!(e.set_gpt(0, 42));
        assert!(!e.set_gpt(1, 1));
    }
    let v = t.get(&ip(1), 10).unwrap();
    assert_eq!(
        (v.gpc(0), v.gpc(1), v.gpc_rate(0), v.gpc_rate(1), v.gpt(0)),
        (Some(2), Some(1), Some(2), None, Some(42))
    );
    assert_eq!(t.get_mut(&ip(1), 10).unwrap().clr_gpc(0), Some(2));
    assert_eq!(t.get(&ip(1), 10).unwrap().gpc(0), Some(0));

    let mut a = Table::new(def(KeyKind::Integer, 10, None, &["gpc(3)", "gpc_rate(3,10s)", "gpt(2)"]));
    {
        let mut e = a.touch(&TKey::Int(1), 0).unwrap();
        assert_eq!(e.inc_gpc(2), Some(1));
        assert_eq!(e.inc_gpc(0), Some(1), "gpc0 falls back to gpc[0]");
        assert_eq!(e.inc_gpc(3), None);
        assert!(e.set_gpt(1, 9));
    }
    let v = a.get(&TKey::Int(1), 1).unwrap();
    assert_eq!((v.gpc(0), v.gpc(1), v.gpc(2)), (Some(1), Some(0), Some(1)));
    assert_eq!((v.gpc_rate(2), v.gpt(0), v.gpt(1)), (Some(1), Some(0), Some(9)));
    assert_eq!(v.read(DataType::GPC_RATE, 2), Some(1));
}

#[test]
fn expiry_refresh_eviction_and_use() {
    let mut t = Table::new(def(KeyKind::Ip, 3, Some(10), &["gpc0"]));
    for n in 1..=3 {
        t.touch(&ip(n), u64::from(n)).unwrap().inc_gpc(0);
    }
    t.touch(&ip(1), 5).unwrap();
    t.touch(&ip(4), 6).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.evicted(), 1);
    assert!(t.get(&ip(2), 6).is_none(), "the least recently touched went");
    assert!(t.get(&ip(1), 6).is_some());
    // ip(3) touched at 3 expires at 10_003; in use it stays.
    t.get_mut(&ip(3), 6).unwrap().acquire();
    assert_eq!(t.purge(20_000), 2);
    assert_eq!(t.len(), 1);
    assert_eq!(t.get(&ip(3), 20_000).unwrap().use_count(), 1);
    assert!(!t.remove(&ip(3)), "in use");
    t.get_mut(&ip(3), 20_000).unwrap().release();
    assert_eq!(t.purge(20_000), 1);
    // A re-created expired entry starts from zero.
    let mut u = Table::new(def(KeyKind::Ip, 3, Some(1), &["gpc0"]));
    u.touch(&ip(1), 0).unwrap().inc_gpc(0);
    assert_eq!(u.touch(&ip(1), 5_000).unwrap().view().gpc(0), Some(0));
}

#[test]
fn nopurge_refuses_when_full() {
    let mut d = def(KeyKind::String { len: 8 }, 2, None, &["gpc0"]);
    d.nopurge = true;
    let mut t = Table::new(d);
    let k = |s: &str| TKey::from_bytes(s.as_bytes(), KeyKind::String { len: 8 });
    assert!(t.touch(&k("a"), 0).is_some());
    assert!(t.touch(&k("b"), 0).is_some());
    assert!(t.touch(&k("c"), 0).is_none());
    assert!(t.touch(&k("a"), 1).is_some(), "existing keys still update");
    assert_eq!(t.get(&k("a"), u64::MAX / 2).unwrap().expires_in(), 0, "no expire: exp=0");
}

#[test]
fn set_value_as_the_runtime_api() {
    let mut t = Table::new(def(KeyKind::Ip, 10, Some(300), &["server_id", "gpt0", "conn_rate(10s)", "bytes_in_cnt"]));
    {
        let k = ip(1);
        let mut e = t.touch(&k, 1000).unwrap();
        assert!(e.set_value(DataType::SERVER_ID, -7));
        assert!(e.set_value(DataType::GPT0, 4_294_967_296), "cut to 32 bits");
        assert!(e.set_value(DataType::CONN_RATE, 7));
        assert!(e.set_value(DataType::BYTES_IN_CNT, 99_999_999_999));
        assert!(!e.set_value(DataType::SERVER_KEY, 1));
        assert!(!e.set_value(DataType::GPC0, 1));
    }
    let v = t.get(&ip(1), 1000).unwrap();
    assert_eq!(v.server_id(), Some(-7));
    assert_eq!(v.read(DataType::GPT0, 0), Some(0));
    assert_eq!(v.read(DataType::CONN_RATE, 0), Some(7));
    assert_eq!(v.read(DataType::BYTES_IN_CNT, 0), Some(99_999_999_999));
    assert_eq!(t.get(&ip(1), 16_000).unwrap().read(DataType::CONN_RATE, 0), Some(3), "fades over the next period");
}

#[test]
fn server_key_and_update_ids() {
    let mut t = Table::new(TableDef {
        store: crate::stktable::def::with_server_key(vec![]),
        ..def(KeyKind::Ip, 10, None, &[])
    });
    t.touch(&ip(1), 0).unwrap().set_server(2, Some("s2"));
    t.touch(&ip(2), 0).unwrap().set_server(1, Some("s1"));
    t.touch(&ip(3), 0).unwrap().set_server(2, Some("s2"));
    let v = t.get(&ip(3), 0).unwrap();
    assert_eq!((v.server_id(), v.server_key()), (Some(2), Some("s2")));
    assert_eq!(v.update_id(), 3);
    t.touch(&ip(1), 1).unwrap();
    assert_eq!(t.get(&ip(1), 1).unwrap().update_id(), 1, "a touch alone is no change");
    t.touch(&ip(1), 1).unwrap().set_server(1, None);
    assert_eq!((t.get(&ip(1), 1).unwrap().update_id(), t.last_update()), (4, 4));
    assert_eq!(t.get(&ip(1), 1).unwrap().server_key(), None);
}

#[test]
fn entries_are_lean() {
    assert!(std::mem::size_of::<TKey>() <= 24);
    assert!(std::mem::size_of::<Entry>() <= 32);
    let t = Table::new(def(KeyKind::Ip, 1_000_000, Some(60), &["conn_rate(10s)", "http_req_rate(10s)"]));
    assert!(t.entry_bytes() <= 160, "{}", t.entry_bytes());
}

#[test]
fn sorted_and_remove_if() {
    let mut t = Table::new(def(KeyKind::Ip, 10, Some(10), &["gpc0"]));
    for (n, g) in [(20u8, 3u64), (3, 1), (100, 9)] {
        t.touch(&ip(n), 0).unwrap().add(DataType::GPC0, 0, g);
    }
    let keys: Vec<String> = t.sorted(0).iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys, ["127.0.0.3", "127.0.0.20", "127.0.0.100"]);
    assert_eq!(t.remove_if(0, |_, v| v.gpc(0).unwrap() > 2), 2);
    assert_eq!(t.len(), 1);
}

/// The changes after an update id, as a push sees them: `(key's last octet, update id)`.
fn changes(t: &mut Table, since: u32, now: u64) -> Vec<(u8, u32)> {
    t.changed_since(since, now)
        .iter()
        .map(|(k, e)| match k {
            TKey::Ip(a) => (a[3], e.update_id()),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn the_journal_gives_what_changed_since_a_cursor_in_update_order() {
    let mut plain = Table::new(def(KeyKind::Ip, 10, Some(10), &["gpc0"]));
    let mut t = Table::new(def(KeyKind::Ip, 10, Some(10), &["gpc0"]));
    // Entries made before replication starts are in the journal too.
    t.touch(&ip(9), 0).unwrap().add(DataType::GPC0, 0, 1);
    plain.touch(&ip(9), 0).unwrap().add(DataType::GPC0, 0, 1);
    t.set_wake(Arc::new(crate::stktable::wake::Wake::default()));
    for tbl in [&mut plain, &mut t] {
        for n in [1u8, 2, 3] {
            tbl.touch(&ip(n), 0).unwrap().add(DataType::GPC0, 0, 1);
        }
        // 1 changes again: it moves to the end, its old record no longer counts.
        tbl.get_mut(&ip(1), 0).unwrap().add(DataType::GPC0, 0, 1);
        // A peer's change keeps the id; a removed entry is gone.
        tbl.touch(&ip(2), 0).unwrap().remote().add(DataType::GPC0, 0, 5);
        assert!(tbl.remove(&ip(3)));
    }
    assert_eq!(changes(&mut t, 0, 0), [(9, 1), (2, 3), (1, 5)]);
    assert_eq!(changes(&mut t, 0, 0), changes(&mut plain, 0, 0), "the journal and the full pass agree");
    assert_eq!(changes(&mut t, 3, 0), [(1, 5)]);
    assert_eq!(changes(&mut t, 5, 0), []);
    assert_eq!(changes(&mut t, 0, 20_000), [], "expired entries are not pushed");
}

#[test]
fn only_a_change_is_journalled() {
    let kind = KeyKind::String { len: 8 };
    let mut t = Table::new(def(kind, 10, None, &["gpc0"]));
    t.set_wake(Arc::new(crate::stktable::wake::Wake::default()));
    let k = TKey::from_bytes(b"alice", kind);
    t.touch(&k, 0).unwrap();
    assert_eq!(t.get_mut(&k, 0).unwrap().view().gpc(0), Some(0), "a read");
    t.touch(&k, 1).unwrap();
    let records = |t: &Table| t.journal.as_ref().unwrap().by_id.values().cloned().collect::<Vec<_>>();
    assert_eq!(
        (t.last_update(), records(&t)),
        (1, vec![k.clone()]),
        "created once, then neither read nor touch records"
    );
    t.get_mut(&k, 2).unwrap().add(DataType::GPC0, 0, 1);
    assert_eq!((t.last_update(), records(&t)), (2, vec![k.clone(), k.clone()]));
    assert_eq!(changes_of(&mut t), [2]);
}

fn changes_of(t: &mut Table) -> Vec<u32> {
    t.changed_since(0, 0).iter().map(|(_, e)| e.update_id()).collect()
}

#[test]
fn the_journal_drops_stale_records_and_keeps_order_across_the_id_wrap() {
    let mut t = Table::new(def(KeyKind::Ip, 10, None, &["gpc0"]));
    t.set_wake(Arc::new(crate::stktable::wake::Wake::default()));
    for _ in 0..5000 {
        t.touch(&ip(1), 0).unwrap().add(DataType::GPC0, 0, 1);
    }
    assert_eq!(changes(&mut t, 0, 0), [(1, 5000)]);
    assert!(t.journal.as_ref().unwrap().by_id.len() <= 2, "rebuilt once stale records piled up");
    // Ids near the wrap: widened, the order holds.
    let j = Journal { seq: u64::from(u32::MAX) + 3, by_id: Default::default() };
    assert_eq!(j.widen(2), Some(u64::from(u32::MAX) + 3));
    assert_eq!(j.widen(u32::MAX), Some(u64::from(u32::MAX)));
    assert_eq!(j.widen(5), None, "after the last id");
}

#[test]
fn each_stored_type_is_found_by_its_id_at_its_offset() {
    let d = def(KeyKind::Ip, 1, None, &["gpc(2)", "conn_rate(10s)", "http_req_cnt", "bytes_in_cnt"]);
    let (by, words) = by_type(&d.store);
    // Id order: conn_rate (3 words), http_req_cnt (1), bytes_in_cnt (2), gpc (1 per element).
    assert_eq!(words, 3 + 1 + 2 + 2);
    let off = |dt: DataType| by[usize::from(dt.id())].map(|(s, o)| (s.dt, o));
    assert_eq!(off(DataType::CONN_RATE), Some((DataType::CONN_RATE, 0)));
    assert_eq!(off(DataType::HTTP_REQ_CNT), Some((DataType::HTTP_REQ_CNT, 3)));
    assert_eq!(off(DataType::BYTES_IN_CNT), Some((DataType::BYTES_IN_CNT, 4)));
    assert_eq!(off(DataType::GPC), Some((DataType::GPC, 6)));
    assert_eq!(off(DataType::CONN_CUR), None);
    let l = Layout { by: &by };
    assert_eq!(l.slot(DataType::GPC, 1).map(|(_, o)| o), Some(7), "element 1 of the array");
    assert_eq!(l.slot(DataType::GPC, 2), None, "past the array");
    assert_eq!(l.slot(DataType::HTTP_REQ_CNT, 1), None, "a plain type has element 0 only");
}

#[test]
fn letting_go_of_a_held_entry_lowers_conn_cur_and_its_use() {
    let def = |store: &[&str]| TableDef {
        name: "t".into(),
        key: KeyKind::Ip,
        size: 10,
        expire: None,
        nopurge: false,
        peers: None,
        store: parse_store(&store.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap(),
    };
    let k = TKey::Ip([10, 0, 0, 1]);
    for store in [&["conn_cur"][..], &["http_req_rate(10s)"][..]] {
        let mut t = Table::new(def(store));
        let h = {
            let mut e = t.touch(&k, 0).unwrap();
            e.acquire();
            e.conn_open();
            e.handle()
        };
        let before = t.last_update();
        t.unhold(h, &k);
        let e = t.get(&k, 0).unwrap();
        assert_eq!(e.use_count(), 0, "{store:?}");
        if store == ["conn_cur"] {
            assert_eq!(e.read(DataType::CONN_CUR, 0), Some(0));
            assert_eq!(t.last_update(), before.wrapping_add(1), "conn_cur down is a change");
        } else {
            assert_eq!(t.last_update(), before, "the use count alone is no change");
        }
        // A stale handle finds nothing.
        assert!(t.remove(&k));
        t.touch(&TKey::Ip([10, 0, 0, 2]), 0);
        t.unhold(h, &k);
        assert_eq!(t.get(&TKey::Ip([10, 0, 0, 2]), 0).unwrap().use_count(), 0);
    }
}
