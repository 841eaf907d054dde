//! The tables an `lbha upgrade` hands from the old process to the new one, as HAProxy hands them
//! through a local peer session: every live entry as peers messages (a definition per table, then
//! timed updates, so lifetimes, rates and the server are kept), read back as a peer's lesson.
//! Tables go by their full names (two sections may both have a `/t`); a table whose definition
//! changed takes what still fits, as from a peer. Pure: the bytes travel in a memfd.

use super::def::TableDef;
use super::registry::{Tables, lock};
use super::wire;
use crate::peers::codec::{DEFAULT_MAX_LEN, Message, next_frame};
use crate::peers::entry::{DictRx, DictTx, Entry};
use crate::peers::error::DecodeError;
use crate::peers::handshake::{Hello, HelloCheck, VERSION};
use crate::peers::session::{Event, Session};

/// Every live entry of the tables of `defs`.
pub fn dump(tables: &Tables, defs: &[TableDef], now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dict = DictTx::default();
    for (i, def) in defs.iter().enumerate() {
        let Some(shared) = tables.find(&def.name) else { continue };
        let mut t = lock(shared);
        t.purge(now);
        wire::definition_as(def, &def.name, i as u64 + 1, &mut out);
        for (seq, (k, e)) in t.sorted(now).into_iter().enumerate() {
            wire::update(def, k, &e, Some(seq as u32 + 1), true, now, &mut dict, &mut out);
        }
    }
    out
}

/// Applies a [`dump`] to the tables of `defs`; how many entries were taken.
pub fn restore(bytes: &[u8], tables: &Tables, defs: &[TableDef], now: u64) -> Result<usize, DecodeError> {
    let locals = defs.iter().map(|d| wire::local_table(d, &d.name)).collect();
    let mut sess = Session::callee(locals, now, false);
    sess.on_hello(now, &HelloCheck::Accept { hello: Hello { version: VERSION, peer: b"", rest: b"" }, used: 0 });
    let mut dict = DictRx::default();
    let (mut rest, mut taken) = (bytes, 0);
    while let Some((frame, used)) = next_frame(rest, DEFAULT_MAX_LEN)? {
        rest = &rest[used..];
        let msg = Message::decode(frame)?;
        let (_, ev) = sess.on_message(now, &msg);
        let (Some(Event::Apply { table, expire, .. }), Message::Update(u)) = (ev, &msg) else { continue };
        let Some(shape) = sess.rx_shape() else { continue };
        let entry = Entry::decode(u.body, shape)?;
        let Some(shared) = tables.find(&defs[table].name) else { continue };
        if wire::apply_entry(&mut lock(shared), &entry, &mut dict, expire, now) {
            taken += 1;
        }
    }
    if !rest.is_empty() {
        return Err(DecodeError::Truncated { what: "table handover" });
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stktable::def::{parse_store, split_store, with_server_key};
    use crate::stktable::{KeyKind, Registry, TKey, cli};
    use std::time::Duration;

    fn def(name: &str, store: &str, peers: Option<&str>) -> TableDef {
        TableDef {
            name: name.into(),
            key: KeyKind::Ip,
            size: 100,
            expire: Some(Duration::from_secs(60)),
            nopurge: false,
            peers: peers.map(Into::into),
            store: with_server_key(parse_store(&split_store(store)).unwrap()),
        }
    }

    fn show(tables: &Tables, name: &str, now: u64) -> Vec<String> {
        let mut t = lock(tables.find(name).unwrap());
        let out = cli::run(&cli::parse(cli::Action::Show, &[name]).unwrap(), &mut t, now).unwrap();
        out.lines().skip(1).filter_map(|l| l.split_once(": ")).map(|(_, r)| r.to_string()).collect()
    }

    /// Two sections' `/t` tables and a backend table come across whole: counters, rates,
    /// remaining lifetimes and the server.
    #[test]
    fn a_dump_restores_every_table() {
        let defs = vec![
            def("a/t", "gpc0,http_req_rate(10s),server_id", Some("a")),
            def("b/t", "gpc0", Some("b")),
            def("be", "conn_cnt,bytes_in_cnt", None),
        ];
        let old = Registry::default().attach(&defs);
        let now = 50_000;
        for (i, name) in ["a/t", "b/t", "be"].iter().enumerate() {
            let mut t = lock(old.find(name).unwrap());
            for n in 0..=i as u8 {
                let k = TKey::Ip([10, 0, n, 1]);
                let mut e = t.touch(&k, now - 1000 * u64::from(n)).unwrap();
                e.inc_gpc(0);
                e.inc_http_req();
                e.set_server(2, Some("s2"));
                e.conn_open();
                e.add_bytes_in(100 + u64::from(n));
            }
        }
        let bytes = dump(&old, &defs, now);
        let new = Registry::default().attach(&defs);
        assert_eq!(restore(&bytes, &new, &defs, now), Ok(6));
        for name in ["a/t", "b/t", "be"] {
            let want: Vec<String> =
                show(&old, name, now).iter().map(|l| l.replace("conn_cur=1", "conn_cur=0")).collect();
            assert_eq!(show(&new, name, now), want, "{name}");
        }
    }

    #[test]
    fn a_changed_table_takes_what_fits_and_bad_bytes_are_an_error() {
        let defs = vec![def("t", "gpc0,gpt0", None)];
        let old = Registry::default().attach(&defs);
        lock(old.find("t").unwrap()).touch(&TKey::Ip([1, 2, 3, 4]), 0).unwrap().inc_gpc(0);
        let bytes = dump(&old, &defs, 0);
        let changed = vec![def("t", "gpc0,http_req_cnt", None), def("other", "gpc0", None)];
        let new = Registry::default().attach(&changed);
        assert_eq!(restore(&bytes, &new, &changed, 0), Ok(1));
        assert_eq!(show(&new, "t", 0), ["key=1.2.3.4 use=0 exp=60000 server_id=0 gpc0=1 http_req_cnt=0 server_key=-"]);
        assert!(restore(&bytes[..bytes.len() - 1], &new, &changed, 0).is_err());
        assert_eq!(restore(&[], &new, &changed, 0), Ok(0));
    }
}
